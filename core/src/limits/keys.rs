//! Virtual keys: the config holds only their SHA-256; a presented key is hashed and looked up.
//! Also the model globs a key may use, and where clients put their key.

use sha2::{Digest, Sha256};

/// Prefix of keys made by `switchboard key new` (any string works as a key).
pub const KEY_PREFIX: &str = "sk-sb-";

pub fn sha256(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

pub fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    bytes
        .iter()
        .flat_map(|b| [b >> 4, b & 0xf])
        .filter_map(|n| DIGITS.get(usize::from(n)).map(|&d| char::from(d)))
        .collect()
}

/// 64 hex digits (either case) as the 32 bytes of a SHA-256.
pub fn parse_sha256(hex: &str) -> Option<[u8; 32]> {
    let hex = hex.trim().as_bytes();
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (byte, pair) in out.iter_mut().zip(hex.chunks_exact(2)) {
        let digit = |c: u8| char::from(c).to_digit(16);
        let (hi, lo) = match pair {
            [hi, lo] => (digit(*hi)?, digit(*lo)?),
            _ => return None,
        };
        *byte = (hi * 16 + lo) as u8;
    }
    Some(out)
}

/// Whether `name` matches `pattern`, where `*` is any run of characters and `?` one character.
pub fn glob_match(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    // Greedy match with backtracking to the last star: linear in practice, never exponential.
    let (mut pi, mut ni) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some((pi, ni));
                pi += 1;
            }
            Some(&c) if c == '?' || Some(&c) == n.get(ni) => {
                pi += 1;
                ni += 1;
            }
            _ => match star {
                Some((sp, sn)) => {
                    pi = sp + 1;
                    ni = sn + 1;
                    star = Some((sp, sn + 1));
                }
                None => return false,
            },
        }
    }
    p.get(pi..)
        .is_some_and(|rest| rest.iter().all(|&c| c == '*'))
}

/// Where a client's key was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Presented {
    None,
    Key(String),
    /// An `Authorization` header that is not `Bearer <key>`.
    Malformed,
}

/// The key a client sent: `Authorization: Bearer <key>`, else `x-api-key`, else `api-key`
/// (the headers the OpenAI, Anthropic and Azure SDKs use).
pub fn presented(
    authorization: Option<&str>,
    x_api_key: Option<&str>,
    api_key: Option<&str>,
) -> Presented {
    if let Some(value) = authorization.map(str::trim).filter(|v| !v.is_empty()) {
        let mut parts = value.splitn(2, ' ');
        let scheme = parts.next().unwrap_or_default();
        let key = parts.next().map(str::trim).unwrap_or_default();
        return if scheme.eq_ignore_ascii_case("bearer") && !key.is_empty() {
            Presented::Key(key.to_owned())
        } else {
            Presented::Malformed
        };
    }
    match [x_api_key, api_key]
        .into_iter()
        .flatten()
        .map(str::trim)
        .find(|v| !v.is_empty())
    {
        Some(key) => Presented::Key(key.to_owned()),
        None => Presented::None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::test;

    #[test]
    fn hashes_to_lowercase_hex() {
        // SHA-256("abc"), FIPS 180-2 appendix B.1.
        let hex = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        assert_eq!(to_hex(&sha256("abc")), hex);
        assert_eq!(parse_sha256(hex), Some(sha256("abc")));
        assert_eq!(parse_sha256(&hex.to_uppercase()), Some(sha256("abc")));
        for bad in [
            "",
            "abc",
            &hex[..63],
            &format!("{hex}0"),
            &hex.replace('b', "g"),
        ] {
            assert_eq!(parse_sha256(bad), None, "{bad}");
        }
    }

    #[test]
    fn globs_match_model_names() {
        let table = [
            ("claude-*", "claude-3-5-sonnet", true),
            ("claude-*", "claude-", true),
            ("claude-*", "gpt-4o", false),
            ("*", "anything", true),
            ("gpt-4o", "gpt-4o", true),
            ("gpt-4o", "gpt-4o-mini", false),
            ("gpt-4?", "gpt-4o", true),
            ("gpt-4?", "gpt-4", false),
            ("*-mini", "gpt-4o-mini", true),
            ("*-mini", "gpt-4o-mini-2", false),
            ("a*b*c", "axxbyyc", true),
            ("a*b*c", "axxbyy", false),
            ("a**", "a", true),
            ("meta/*", "meta/llama-3.1", true),
            ("", "", true),
            ("", "x", false),
        ];
        for (pattern, name, expected) in table {
            assert_eq!(glob_match(pattern, name), expected, "{pattern} ~ {name}");
        }
        // Pathological patterns stay fast.
        let long = "a".repeat(2000);
        assert!(!glob_match("*a*a*a*a*a*a*b", &long));
    }

    #[test]
    fn finds_the_presented_key() {
        let key = |k: &str| Presented::Key(k.into());
        let table = [
            (Some("Bearer sk-1"), None, None, key("sk-1")),
            (Some("bearer   sk-1 "), None, None, key("sk-1")),
            (Some("Bearer sk-1"), Some("sk-2"), None, key("sk-1")),
            (None, Some("sk-2"), Some("sk-3"), key("sk-2")),
            (None, None, Some("sk-3"), key("sk-3")),
            (None, Some(" "), Some("sk-3"), key("sk-3")),
            (Some("Basic dXNlcjpwYXNz"), None, None, Presented::Malformed),
            (Some("Bearer"), None, None, Presented::Malformed),
            (Some(""), None, None, Presented::None),
            (None, None, None, Presented::None),
        ];
        for (authorization, x_api_key, api_key, expected) in table {
            assert_eq!(
                presented(authorization, x_api_key, api_key),
                expected,
                "{authorization:?} {x_api_key:?} {api_key:?}"
            );
        }
    }
}
