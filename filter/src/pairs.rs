//! proxy-wasm's encoding of header maps, for the host calls in `envoy::abi`. Values are decoded
//! leniently: Envoy passes header bytes that are not UTF-8 (obs-text) through.

pub fn lossy(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// proxy-wasm's map encoding: the pair count, each pair's name and value lengths (u32 LE),
/// then each name and value followed by a NUL.
pub fn encode_pairs(pairs: &[(&str, &str)]) -> Vec<u8> {
    let size = 4 + pairs
        .iter()
        .map(|(n, v)| 10 + n.len() + v.len())
        .sum::<usize>();
    let mut out = Vec::with_capacity(size);
    out.extend_from_slice(&(pairs.len() as u32).to_le_bytes());
    for (name, value) in pairs {
        out.extend_from_slice(&(name.len() as u32).to_le_bytes());
        out.extend_from_slice(&(value.len() as u32).to_le_bytes());
    }
    for (name, value) in pairs {
        out.extend_from_slice(name.as_bytes());
        out.push(0);
        out.extend_from_slice(value.as_bytes());
        out.push(0);
    }
    out
}

/// The inverse of `encode_pairs`; a malformed map yields the pairs read before the fault.
pub fn decode_pairs(bytes: &[u8]) -> Vec<(String, String)> {
    let word = |at: usize| -> Option<usize> {
        let b = bytes.get(at..at.checked_add(4)?)?;
        Some(u32::from_le_bytes(<[u8; 4]>::try_from(b).ok()?) as usize)
    };
    let Some(count) = word(0) else {
        return Vec::new();
    };
    let mut pairs = Vec::with_capacity(count.min(256));
    let mut at = 4usize.saturating_add(count.saturating_mul(8));
    for n in 0..count {
        let (Some(name_len), Some(value_len)) = (word(4 + n * 8), word(8 + n * 8)) else {
            break;
        };
        let Some(name) = bytes.get(at..at.saturating_add(name_len)) else {
            break;
        };
        at = at.saturating_add(name_len + 1);
        let Some(value) = bytes.get(at..at.saturating_add(value_len)) else {
            break;
        };
        at = at.saturating_add(value_len + 1);
        pairs.push((lossy(name.to_vec()), lossy(value.to_vec())));
    }
    pairs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_round_trip_and_tolerate_bad_bytes_and_truncation() {
        let pairs = [(":path", "/v1/x"), ("a", ""), ("x-y", "zz")];
        let bytes = encode_pairs(&pairs);
        let back = decode_pairs(&bytes);
        let expected: Vec<(String, String)> = pairs
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect();
        assert_eq!(back, expected);
        // A value that is not UTF-8 is kept, with replacement characters.
        let mut latin1 = encode_pairs(&[("h", "ab")]);
        let at = latin1.len() - 3;
        latin1[at] = 0xff;
        assert_eq!(
            decode_pairs(&latin1),
            [("h".to_owned(), "\u{fffd}b".to_owned())]
        );
        // Cut anywhere: never a panic, only the pairs read before the cut.
        for cut in 0..bytes.len() {
            let got = decode_pairs(&bytes[..cut]);
            assert!(got.len() <= pairs.len());
        }
        assert!(decode_pairs(&[]).is_empty());
        assert!(decode_pairs(&[255, 255, 255, 255]).is_empty());
    }
}
