//! A stream input and the points the fuzzer cuts it at, so every decoder is fed in pieces as
//! the network delivers them.
//!
//! Layout (read with `arbitrary`): one byte, the number of cuts (0 to 15); two bytes per cut,
//! its offset (modulo the stream's length + 1); one byte of flags for the target; the rest is
//! the body. A seed is `\0\0` followed by a body (no cut, no flag).

use arbitrary::Unstructured;

pub struct Cut<'a> {
    pub flags: u8,
    pub body: &'a [u8],
    offsets: Vec<u16>,
}

impl<'a> Cut<'a> {
    pub fn parse(data: &'a [u8]) -> Cut<'a> {
        let mut u = Unstructured::new(data);
        let count: u8 = u.int_in_range(0..=15).unwrap_or(0);
        let offsets = (0..count).map(|_| u.arbitrary().unwrap_or(0)).collect();
        let flags = u.arbitrary().unwrap_or(0);
        Cut {
            flags,
            body: u.take_rest(),
            offsets,
        }
    }

    /// `stream` (the body, or what a target made of it) in pieces at the cuts: one piece
    /// when there is none, and an empty piece where two cuts meet.
    pub fn split<'s>(&self, stream: &'s [u8]) -> Vec<&'s [u8]> {
        let mut offsets: Vec<usize> = self
            .offsets
            .iter()
            .map(|&o| usize::from(o) % (stream.len() + 1))
            .collect();
        offsets.sort_unstable();
        let mut pieces = Vec::with_capacity(offsets.len() + 1);
        let mut start = 0;
        for offset in offsets {
            pieces.push(stream.get(start..offset).unwrap_or_default());
            start = offset;
        }
        pieces.push(stream.get(start..).unwrap_or_default());
        pieces
    }
}

#[cfg(test)]
mod tests {
    use super::Cut;

    #[test]
    fn a_seed_is_its_body_whole() {
        let cut = Cut::parse(b"\0\0data: x\n\n");
        assert_eq!((cut.flags, cut.body), (0, &b"data: x\n\n"[..]));
        assert_eq!(cut.split(cut.body), [b"data: x\n\n"]);
    }

    #[test]
    fn cuts_are_sorted_offsets_and_meeting_cuts_feed_an_empty_piece() {
        // Three cuts (offsets 7, 2, 7 as little-endian u16), flags 5, then the body.
        let cut = Cut::parse(b"\x03\x07\x00\x02\x00\x07\x00\x05abcdefghij");
        assert_eq!((cut.flags, cut.body), (5, &b"abcdefghij"[..]));
        let pieces = cut.split(cut.body);
        assert_eq!(pieces, [&b"ab"[..], b"cdefg", b"", b"hij"]);
        // Offsets wrap to the stream they cut: 7, 2, 7 of 3 bytes are 3, 2, 3.
        assert_eq!(cut.split(b"xyz"), [&b"xy"[..], b"z", b"", b""]);
    }
}
