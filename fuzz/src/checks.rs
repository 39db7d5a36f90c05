//! What every output must be, whatever the input: the assertions the targets make beyond "no
//! panic".

use serde::de::IgnoredAny;
use serde_json::Value;
use switchboard_core::usage::pricing::{Price, Rates};
use switchboard_core::usage::Usage;

/// Asserts `bytes` are JSON as a client reads them: UTF-8 and of JSON's grammar, numbers of
/// any size (a pass-through's may be beyond f64, which clients read as infinite).
pub fn assert_json(bytes: &[u8], what: &str) {
    let text = match std::str::from_utf8(bytes) {
        Ok(text) => text,
        Err(e) => panic!(
            "{what} is not UTF-8 ({e}): {}",
            String::from_utf8_lossy(bytes)
        ),
    };
    if let Err(e) = serde_json::from_str::<IgnoredAny>(text) {
        panic!("{what} is not JSON ({e}): {text}");
    }
}

/// Parses `bytes`, which the gateway wrote, as JSON, naming `what` when they are not.
pub fn json(bytes: &[u8], what: &str) -> Value {
    match serde_json::from_slice(bytes) {
        Ok(value) => value,
        Err(e) => panic!(
            "{what} is not JSON ({e}): {}",
            String::from_utf8_lossy(bytes)
        ),
    }
}

/// Asserts `value` is an object whose `object` member is `expected`.
pub fn assert_object(value: &Value, expected: &str, what: &str) {
    assert_eq!(
        value.get("object").and_then(Value::as_str),
        Some(expected),
        "{what}: {value}"
    );
}

/// True for an OpenAI error body: `{"error": {"message": "...", ...}}`.
pub fn is_error_body(value: &Value) -> bool {
    value
        .get("error")
        .and_then(|e| e.get("message"))
        .is_some_and(Value::is_string)
}

/// Reported usage is summed and priced (as the record and the budgets do) without overflow.
pub fn price_usage(usage: Option<Usage>) {
    let Some(usage) = usage else { return };
    let rates = Rates {
        input: 3_000_000,
        output: 15_000_000,
        cache_read: 300_000,
        cache_write: 3_750_000,
    };
    let price = Price {
        base: rates,
        tiers: vec![(200_000, rates)],
    };
    let _ = usage.total_tokens();
    let _ = price.cost(&usage);
}

/// One event of a client stream.
#[derive(Debug, PartialEq, Eq)]
pub struct ClientEvent<'a> {
    pub name: Option<&'a str>,
    pub data: String,
}

/// The events of a client stream, asserting it is SSE as the gateway writes it: UTF-8 events
/// of an optional `event: NAME` line and `data: DATA` lines (joined with `\n`), each ended by a
/// blank line, so every client's parser reads the same events.
pub fn client_events(out: &[u8]) -> Vec<ClientEvent<'_>> {
    let Ok(text) = std::str::from_utf8(out) else {
        panic!(
            "client stream is not UTF-8: {}",
            String::from_utf8_lossy(out)
        );
    };
    let Some(body) = text.strip_suffix("\n\n") else {
        panic!("client stream does not end with a blank line: {text:?}");
    };
    body.split("\n\n")
        .map(|block| {
            let mut lines = block.split('\n').peekable();
            let name = lines
                .next_if(|line| line.starts_with("event: "))
                .and_then(|line| line.strip_prefix("event: "));
            let data: Vec<&str> = lines
                .map(|line| match line.strip_prefix("data: ") {
                    Some(data) if !data.contains('\r') => data,
                    _ => panic!("client event line {line:?} is not data: in {text:?}"),
                })
                .collect();
            assert!(!data.is_empty(), "client event without data: {block:?}");
            ClientEvent {
                name,
                data: data.join("\n"),
            }
        })
        .collect()
}

/// How a client stream must end: with `[DONE]` or one error event, and nothing after either.
/// `translated`: the gateway wrote every event (not passed through from an OpenAI-wire
/// provider), so each other event must be a chat chunk.
pub fn assert_stream_shape(events: &[ClientEvent], translated: bool) {
    let Some((last, before)) = events.split_last() else {
        panic!("client stream without any event");
    };
    let last_is_error = serde_json::from_str(&last.data).is_ok_and(|v| is_error_body(&v));
    assert!(
        last.data == "[DONE]" || last_is_error,
        "client stream ends with neither [DONE] nor an error: {last:?}"
    );
    for event in before {
        assert_ne!(event.data, "[DONE]", "an event after [DONE]: {events:?}");
        if translated {
            let value: Value = match serde_json::from_str(&event.data) {
                Ok(v) => v,
                Err(e) => panic!("translated event is not JSON ({e}): {event:?}"),
            };
            assert!(
                !is_error_body(&value),
                "an event after an error: {events:?}"
            );
            assert_object(&value, "chat.completion.chunk", "translated event");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_events_join_data_lines_and_keep_names() {
        let events = client_events(b"event: e\ndata: a\ndata: b\n\ndata: [DONE]\n\n");
        assert_eq!(
            events,
            [
                ClientEvent {
                    name: Some("e"),
                    data: "a\nb".into()
                },
                ClientEvent {
                    name: None,
                    data: "[DONE]".into()
                },
            ]
        );
    }

    #[test]
    #[should_panic(expected = "is not data:")]
    fn a_bare_line_inside_an_event_is_refused() {
        client_events(b"data: a\nb\n\n");
    }

    #[test]
    #[should_panic(expected = "an event after [DONE]")]
    fn nothing_follows_done() {
        assert_stream_shape(&client_events(b"data: [DONE]\n\ndata: [DONE]\n\n"), false);
    }

    #[test]
    #[should_panic(expected = "neither [DONE] nor an error")]
    fn a_stream_ends_in_done_or_an_error() {
        assert_stream_shape(
            &client_events(b"data: {\"object\":\"chat.completion.chunk\"}\n\n"),
            true,
        );
    }

    #[test]
    fn a_translated_stream_is_chunks_then_an_error() {
        let out = b"data: {\"object\":\"chat.completion.chunk\"}\n\ndata: {\"error\":{\"message\":\"cut\"}}\n\n";
        assert_stream_shape(&client_events(out), true);
    }
}
