//! Incremental Server-Sent Events parsing: bytes in, whole events out, however the bytes are
//! split. Memory is bounded: an event larger than the limit is an error, not a buffer.

/// One parsed event. `data` lines are joined with `\n` as the SSE spec says.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SseEvent {
    pub event: Option<String>,
    pub data: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventTooLarge;

#[derive(Debug)]
pub struct SseParser {
    /// Bytes of a line not yet terminated.
    partial: Vec<u8>,
    current: SseEvent,
    has_data: bool,
    /// A `\r` ended the previous chunk: a `\n` starting the next one belongs to it.
    after_cr: bool,
    max_event_bytes: usize,
    event_bytes: usize,
}

impl SseParser {
    pub fn new(max_event_bytes: usize) -> Self {
        SseParser {
            partial: Vec::new(),
            current: SseEvent::default(),
            has_data: false,
            after_cr: false,
            max_event_bytes,
            event_bytes: 0,
        }
    }

    /// Feeds bytes, calling `on_event` for every event completed by them.
    pub fn feed(
        &mut self,
        mut chunk: &[u8],
        mut on_event: impl FnMut(SseEvent),
    ) -> Result<(), EventTooLarge> {
        // An empty chunk leaves a pending `\r` pending: its `\n` may still come.
        if self.after_cr && !chunk.is_empty() {
            if let Some(rest) = chunk.strip_prefix(b"\n") {
                chunk = rest;
            }
            self.after_cr = false;
        }
        while let Some(pos) = memchr::memchr2(b'\n', b'\r', chunk) {
            let (line, rest) = chunk.split_at(pos);
            let is_cr = rest.first() == Some(&b'\r');
            let mut rest = rest.get(1..).unwrap_or_default();
            if is_cr {
                match rest.first() {
                    Some(b'\n') => rest = rest.get(1..).unwrap_or_default(),
                    None => self.after_cr = true,
                    _ => {}
                }
            }
            self.account(line.len())?;
            if self.partial.is_empty() {
                self.line(line, &mut on_event);
            } else {
                let mut full = std::mem::take(&mut self.partial);
                full.extend_from_slice(line);
                self.line(&full, &mut on_event);
            }
            chunk = rest;
        }
        if !chunk.is_empty() {
            self.account(chunk.len())?;
            self.partial.extend_from_slice(chunk);
        }
        Ok(())
    }

    /// True when no partial event is pending (a clean end of stream).
    pub fn is_idle(&self) -> bool {
        self.partial.is_empty() && !self.has_data && self.current.event.is_none()
    }

    /// Flushes an event left unterminated at end of stream (some servers omit the blank line).
    pub fn finish(&mut self, mut on_event: impl FnMut(SseEvent)) {
        if !self.partial.is_empty() {
            let line = std::mem::take(&mut self.partial);
            self.line(&line, &mut on_event);
        }
        self.dispatch(&mut on_event);
    }

    fn account(&mut self, n: usize) -> Result<(), EventTooLarge> {
        self.event_bytes += n;
        if self.event_bytes > self.max_event_bytes {
            Err(EventTooLarge)
        } else {
            Ok(())
        }
    }

    fn line(&mut self, line: &[u8], on_event: &mut impl FnMut(SseEvent)) {
        if line.is_empty() {
            self.dispatch(on_event);
            return;
        }
        if line.first() == Some(&b':') {
            return; // comment
        }
        let (field, value) = match line.iter().position(|&b| b == b':') {
            Some(i) => {
                let (f, v) = line.split_at(i);
                let v = v.get(1..).unwrap_or_default();
                (f, v.strip_prefix(b" ").unwrap_or(v))
            }
            None => (line, &b""[..]),
        };
        // Checked the fast way first: nearly every value is valid UTF-8 (mostly ASCII).
        let value = match std::str::from_utf8(value) {
            Ok(text) => std::borrow::Cow::Borrowed(text),
            Err(_) => String::from_utf8_lossy(value),
        };
        match field {
            b"data" => {
                if self.has_data {
                    self.current.data.push('\n');
                }
                self.current.data.push_str(&value);
                self.has_data = true;
            }
            b"event" => self.current.event = Some(value.into_owned()),
            _ => {} // id, retry and unknown fields carry nothing we translate
        }
    }

    fn dispatch(&mut self, on_event: &mut impl FnMut(SseEvent)) {
        if self.has_data || self.current.event.is_some() {
            on_event(std::mem::take(&mut self.current));
        }
        self.has_data = false;
        self.event_bytes = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::test;

    fn parse_split(input: &[u8], split: usize) -> Vec<SseEvent> {
        let mut p = SseParser::new(1 << 20);
        let mut out = Vec::new();
        let (a, b) = input.split_at(split);
        p.feed(a, |e| out.push(e)).unwrap();
        p.feed(b, |e| out.push(e)).unwrap();
        p.finish(|e| out.push(e));
        out
    }

    #[test]
    fn any_split_gives_the_same_events() {
        let inputs: [&[u8]; 3] = [
            b"event: a\ndata: {\"x\":1}\n\n: comment\ndata: line1\ndata: line2\n\ndata:[DONE]\n\n",
            b"event: a\r\ndata: {\"x\":1}\r\n\r\ndata: line1\r\ndata: line2\r\r",
            b"data: tail-without-blank-line",
        ];
        for input in inputs {
            let whole = parse_split(input, 0);
            assert!(!whole.is_empty());
            for split in 0..=input.len() {
                assert_eq!(parse_split(input, split), whole, "split at {split}");
            }
        }
        let first = parse_split(inputs[0], 0);
        assert_eq!(first[0].event.as_deref(), Some("a"));
        assert_eq!(first[1].data, "line1\nline2");
        assert_eq!(first[2].data, "[DONE]");
        assert_eq!(parse_split(inputs[1], 0)[1].data, "line1\nline2");
    }

    #[test]
    fn an_empty_chunk_between_cr_and_lf_keeps_them_one_line_end() {
        let mut p = SseParser::new(1 << 20);
        let mut out = Vec::new();
        for chunk in [&b"data: x\r"[..], b"", b"\ndata: y\r\n\r\n"] {
            p.feed(chunk, |e| out.push(e)).unwrap();
        }
        assert_eq!(out, parse_split(b"data: x\r\ndata: y\r\n\r\n", 0));
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].data, "x\ny");
    }

    #[test]
    fn oversized_events_are_refused() {
        let mut p = SseParser::new(16);
        assert!(p.feed(b"data: 0123456789", |_| {}).is_ok());
        assert_eq!(p.feed(b"0123456789", |_| {}), Err(EventTooLarge));
    }
}
