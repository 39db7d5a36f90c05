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
        struct Case {
            name: &'static str,
            pattern: &'static str,
            model: &'static str,
            matches: bool,
        }
        let table = [
            Case {
                name: "a trailing star matches a longer name",
                pattern: "claude-*",
                model: "claude-3-5-sonnet",
                matches: true,
            },
            Case {
                name: "a trailing star matches nothing",
                pattern: "claude-*",
                model: "claude-",
                matches: true,
            },
            Case {
                name: "a trailing star keeps the prefix",
                pattern: "claude-*",
                model: "gpt-4o",
                matches: false,
            },
            Case {
                name: "a lone star matches anything",
                pattern: "*",
                model: "anything",
                matches: true,
            },
            Case {
                name: "a literal matches itself",
                pattern: "gpt-4o",
                model: "gpt-4o",
                matches: true,
            },
            Case {
                name: "a literal is not a prefix",
                pattern: "gpt-4o",
                model: "gpt-4o-mini",
                matches: false,
            },
            Case {
                name: "a question mark matches one character",
                pattern: "gpt-4?",
                model: "gpt-4o",
                matches: true,
            },
            Case {
                name: "a question mark needs a character",
                pattern: "gpt-4?",
                model: "gpt-4",
                matches: false,
            },
            Case {
                name: "a leading star matches a suffix",
                pattern: "*-mini",
                model: "gpt-4o-mini",
                matches: true,
            },
            Case {
                name: "a leading star keeps the suffix",
                pattern: "*-mini",
                model: "gpt-4o-mini-2",
                matches: false,
            },
            Case {
                name: "stars between literals",
                pattern: "a*b*c",
                model: "axxbyyc",
                matches: true,
            },
            Case {
                name: "stars between literals keep the last one",
                pattern: "a*b*c",
                model: "axxbyy",
                matches: false,
            },
            Case {
                name: "a double star matches nothing",
                pattern: "a**",
                model: "a",
                matches: true,
            },
            Case {
                name: "a slash is an ordinary character",
                pattern: "meta/*",
                model: "meta/llama-3.1",
                matches: true,
            },
            Case {
                name: "an empty pattern matches an empty name",
                pattern: "",
                model: "",
                matches: true,
            },
            Case {
                name: "an empty pattern matches nothing else",
                pattern: "",
                model: "x",
                matches: false,
            },
        ];
        for case in table {
            assert_eq!(
                glob_match(case.pattern, case.model),
                case.matches,
                "{}: {} ~ {}",
                case.name,
                case.pattern,
                case.model
            );
        }
        // Pathological patterns stay fast.
        let long = "a".repeat(2000);
        assert!(!glob_match("*a*a*a*a*a*a*b", &long));
    }

    #[test]
    fn finds_the_presented_key() {
        struct Case {
            name: &'static str,
            authorization: Option<&'static str>,
            x_api_key: Option<&'static str>,
            api_key: Option<&'static str>,
            expected: Presented,
        }
        let key = |k: &str| Presented::Key(k.into());
        let table = [
            Case {
                name: "a bearer token",
                authorization: Some("Bearer sk-1"),
                x_api_key: None,
                api_key: None,
                expected: key("sk-1"),
            },
            Case {
                name: "the scheme in any case, spaces trimmed",
                authorization: Some("bearer   sk-1 "),
                x_api_key: None,
                api_key: None,
                expected: key("sk-1"),
            },
            Case {
                name: "authorization before x-api-key",
                authorization: Some("Bearer sk-1"),
                x_api_key: Some("sk-2"),
                api_key: None,
                expected: key("sk-1"),
            },
            Case {
                name: "x-api-key before api-key",
                authorization: None,
                x_api_key: Some("sk-2"),
                api_key: Some("sk-3"),
                expected: key("sk-2"),
            },
            Case {
                name: "api-key alone",
                authorization: None,
                x_api_key: None,
                api_key: Some("sk-3"),
                expected: key("sk-3"),
            },
            Case {
                name: "a blank x-api-key is skipped",
                authorization: None,
                x_api_key: Some(" "),
                api_key: Some("sk-3"),
                expected: key("sk-3"),
            },
            Case {
                name: "another scheme is malformed",
                authorization: Some("Basic dXNlcjpwYXNz"),
                x_api_key: None,
                api_key: None,
                expected: Presented::Malformed,
            },
            Case {
                name: "a bearer without a token is malformed",
                authorization: Some("Bearer"),
                x_api_key: None,
                api_key: None,
                expected: Presented::Malformed,
            },
            Case {
                name: "an empty authorization is none",
                authorization: Some(""),
                x_api_key: None,
                api_key: None,
                expected: Presented::None,
            },
            Case {
                name: "no header at all",
                authorization: None,
                x_api_key: None,
                api_key: None,
                expected: Presented::None,
            },
        ];
        for case in table {
            assert_eq!(
                presented(case.authorization, case.x_api_key, case.api_key),
                case.expected,
                "{}: {:?} {:?} {:?}",
                case.name,
                case.authorization,
                case.x_api_key,
                case.api_key
            );
        }
    }
}
