//! Keeping credentials out of what clients (and logs) see. Some providers repeat the key a
//! request came with in their error messages ("Incorrect API key provided: sk-..."), whole, cut
//! short or as the header it came in; those messages are forwarded to clients. Every provider's
//! error mapping goes through [`Secrets::error`] (by way of `Provider::error_response`) and every
//! stream's error event through [`RedactedStream`] (by way of `Provider::chat_stream`).
//!
//! What is hidden: the provider's own credentials ([`Secrets`]: its key or token, its extra
//! header values, AWS keys), whole or any part of at least [`MIN_PART`] characters, and
//! anything shaped like a credential whoever it belongs to: a `Bearer` token, a token with a
//! well-known key prefix (`sk-`, `AIza`, `AKIA`, ...), or a long random-looking token.

use super::StreamTranslator;
use crate::api::ApiError;
use crate::usage::Usage;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::sync::Arc;

/// What stands where a credential was.
pub const REDACTED: &str = "[REDACTED]";

/// The shortest part of a configured credential that is hidden where it appears, and the
/// shortest credential kept at all (a shorter value cannot be told from ordinary words).
pub const MIN_PART: usize = 8;

/// A token this long, with letters and digits mixed, is taken for a credential.
const RANDOM_TOKEN: usize = 32;

/// Prefixes of well-known credential formats, and the shortest token each starts.
const KEY_PREFIXES: [(&str, usize); 13] = [
    ("sk-", 20),
    ("sk_", 20),
    ("AIza", 30),
    ("ya29.", 20),
    ("AKIA", 20),
    ("ASIA", 20),
    ("xai-", 20),
    ("gsk_", 20),
    ("pplx-", 20),
    ("hf_", 20),
    ("ghp_", 20),
    ("github_pat_", 30),
    ("eyJ", 30),
];

/// A provider's credentials as configured, shared by the provider and its streams.
#[derive(Debug, Clone, Default)]
pub struct Secrets(Arc<Known>);

#[derive(Debug, Default)]
struct Known {
    /// The credentials, longest first.
    values: Vec<String>,
    /// Every run of [`MIN_PART`] bytes of them, so that a word is checked in one pass.
    parts: HashSet<[u8; MIN_PART]>,
}

impl Secrets {
    /// The credentials among `values` ([`MIN_PART`] characters or more).
    pub fn new<'a>(values: impl IntoIterator<Item = &'a str>) -> Self {
        let mut values: Vec<String> = values
            .into_iter()
            .map(str::trim)
            .filter(|v| v.len() >= MIN_PART)
            .map(str::to_owned)
            .collect();
        values.sort_by_key(|v| std::cmp::Reverse(v.len()));
        values.dedup();
        let parts = values
            .iter()
            .flat_map(|v| v.as_bytes().windows(MIN_PART))
            .filter_map(|w| <[u8; MIN_PART]>::try_from(w).ok())
            .collect();
        Secrets(Arc::new(Known { values, parts }))
    }

    /// `text` with every credential hidden (see the module doc).
    pub fn redact(&self, text: &str) -> String {
        let mut text = text.to_owned();
        // Whole values first: one may hold separators (a header value with spaces).
        for secret in &self.0.values {
            if text.contains(secret.as_str()) {
                text = text.replace(secret.as_str(), REDACTED);
            }
        }
        let mut out = String::with_capacity(text.len());
        let mut after_bearer = false;
        let mut rest = text.as_str();
        while !rest.is_empty() {
            let start = rest.find(|c| !is_separator(c)).unwrap_or(rest.len());
            let (gap, tail) = rest.split_at(start);
            out.push_str(gap);
            let end = tail.find(is_separator).unwrap_or(tail.len());
            let (word, tail) = tail.split_at(end);
            rest = tail;
            if word.is_empty() {
                continue;
            }
            let token = word.trim_end_matches(['.', ':']);
            // The word after `Bearer` and the spaces that follow it is its token.
            let bearer_token = after_bearer && gap.chars().all(|c| c == ' ');
            after_bearer = token.eq_ignore_ascii_case("bearer");
            if token.len() >= MIN_PART && (bearer_token || self.is_secret(token)) {
                out.push_str(REDACTED);
                out.push_str(word.get(token.len()..).unwrap_or_default());
            } else {
                out.push_str(word);
            }
        }
        out
    }

    /// Whether a word is, or holds, a credential.
    fn is_secret(&self, word: &str) -> bool {
        let holds_part = word
            .as_bytes()
            .windows(MIN_PART)
            .filter_map(|w| <[u8; MIN_PART]>::try_from(w).ok())
            .any(|w| self.0.parts.contains(&w));
        holds_part
            || word
                .split(|c: char| !is_token_char(c))
                .any(looks_like_a_key)
    }

    /// `error` with credentials hidden from everything it tells the client.
    pub fn error(&self, mut error: ApiError) -> ApiError {
        self.redact_fields(&mut error.message, &mut error.param, &mut error.code);
        error
    }

    /// An error's message, param and code, credentials hidden.
    fn redact_fields(
        &self,
        message: &mut String,
        param: &mut Option<String>,
        code: &mut Option<String>,
    ) {
        *message = self.redact(message);
        for field in [param, code] {
            if let Some(value) = field.as_mut() {
                *value = self.redact(value);
            }
        }
    }
}

/// Characters that end a word: white space, quotes, brackets and list punctuation (a header
/// echo `'x-api-key: "sk-..."'` leaves the key a word of its own).
fn is_separator(c: char) -> bool {
    c.is_whitespace()
        || matches!(
            c,
            '"' | '\'' | '`' | ',' | ';' | '(' | ')' | '[' | ']' | '{' | '}' | '<' | '>'
        )
}

/// Characters of a credential token.
fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')
}

/// A token shaped like a credential: a well-known key prefix, or long, mixed and not a UUID.
fn looks_like_a_key(token: &str) -> bool {
    if KEY_PREFIXES
        .iter()
        .any(|(prefix, min)| token.starts_with(prefix) && token.len() >= *min)
    {
        return true;
    }
    // Dots separate words in host names and versions, never in the keys this rule is for.
    token.split('.').any(|token| {
        let digits = token.bytes().filter(u8::is_ascii_digit).count();
        let letters = token.bytes().filter(u8::is_ascii_alphabetic).count();
        token.len() >= RANDOM_TOKEN && digits >= 4 && letters >= 4 && !is_uuid(token)
    })
}

/// `8-4-4-4-12` hex digits: a request id, not a credential.
fn is_uuid(token: &str) -> bool {
    let groups: Vec<&str> = token.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, len)| g.len() == len && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// A stream translator whose error event, if it writes one, has credentials hidden.
pub struct RedactedStream {
    inner: Box<dyn StreamTranslator>,
    secrets: Secrets,
}

impl RedactedStream {
    pub fn new(inner: Box<dyn StreamTranslator>, secrets: Secrets) -> Self {
        RedactedStream { inner, secrets }
    }

    /// Runs one step of the inner translator; when it fails in it, its error event (the last
    /// thing it wrote) is rewritten with credentials hidden.
    fn step(
        &mut self,
        out: &mut Vec<u8>,
        run: impl FnOnce(&mut dyn StreamTranslator, &mut Vec<u8>),
    ) {
        let start = out.len();
        let failed_before = self.inner.failed();
        run(self.inner.as_mut(), out);
        if !failed_before && self.inner.failed() {
            self.redact_last_event(out, start);
        }
    }

    fn redact_last_event(&self, out: &mut Vec<u8>, start: usize) {
        let written = out.get(start..).unwrap_or_default();
        let Some(at) = last_data_line(written) else {
            return;
        };
        let data_start = start + at + DATA.len();
        let data = out.get(data_start..).unwrap_or_default();
        let data = data.strip_suffix(b"\n\n").unwrap_or(data);
        let text = String::from_utf8_lossy(data);
        let redacted = match serde_json::from_str::<ErrorEvent>(&text) {
            // Members kept in their order.
            Ok(mut event) => {
                let e = &mut event.error;
                self.secrets
                    .redact_fields(&mut e.message, &mut e.param, &mut e.code);
                serde_json::to_string(&event).unwrap_or_default()
            }
            // Every translator writes that shape; should one not, its text is redacted.
            Err(_) => self.secrets.redact(&text),
        };
        if redacted.as_bytes() != data {
            out.truncate(data_start);
            out.extend_from_slice(redacted.as_bytes());
            out.extend_from_slice(b"\n\n");
        }
    }
}

/// An OpenAI error event, as `ApiError::to_json` writes it.
#[derive(Serialize, Deserialize)]
struct ErrorEvent {
    error: ErrorBody,
}

#[derive(Serialize, Deserialize)]
struct ErrorBody {
    message: String,
    #[serde(rename = "type")]
    kind: String,
    param: Option<String>,
    code: Option<String>,
}

const DATA: &[u8] = b"data: ";

/// Where the last `data: ` line of `written` starts: the error event's, as its JSON holds no
/// line break (a `data: ` quoted in its message is inside a line).
fn last_data_line(written: &[u8]) -> Option<usize> {
    let line_start = |at: usize| at == 0 || written.get(at - 1) == Some(&b'\n');
    (0..written.len())
        .rev()
        .find(|&at| line_start(at) && written.get(at..).is_some_and(|w| w.starts_with(DATA)))
}

impl StreamTranslator for RedactedStream {
    fn feed(&mut self, chunk: &[u8], out: &mut Vec<u8>) {
        self.step(out, |inner, out| inner.feed(chunk, out));
    }

    fn finish(&mut self, out: &mut Vec<u8>) {
        self.step(out, |inner, out| inner.finish(out));
    }

    fn usage(&self) -> Option<Usage> {
        self.inner.usage()
    }

    fn failed(&self) -> bool {
        self.inner.failed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::testing::*;
    use crate::providers::ResponseContext;
    use crate::stream::eventstream::encode;
    use crate::testkit::test;

    const KEY: &str = "sk-proj-Tq8vX2mN5pL9rK3wZ7yB4cF6";
    const AWS_SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
    const SIGNATURE: &str = "5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7";

    fn secrets() -> Secrets {
        Secrets::new([KEY, "AKIDEXAMPLE", AWS_SECRET, "blue", "team-token-7781"])
    }

    struct Case {
        name: &'static str,
        text: String,
        expected: String,
    }

    #[test]
    fn credentials_are_hidden_whole_partial_or_by_their_shape() {
        let cases = [
            Case {
                name: "the key in the message (OpenAI's wording)",
                text: format!("Incorrect API key provided: {KEY}. You can find your API key at https://platform.openai.com/account/api-keys."),
                expected: "Incorrect API key provided: [REDACTED]. You can find your API key at https://platform.openai.com/account/api-keys.".into(),
            },
            Case {
                name: "a quoted header echo",
                text: format!("header 'x-api-key: \"{KEY}\"' is not valid"),
                expected: "header 'x-api-key: \"[REDACTED]\"' is not valid".into(),
            },
            Case {
                name: "a key cut short, and a key's tail",
                text: format!("invalid api token: {}… (ends in {})", &KEY[..14], &KEY[20..]),
                expected: "invalid api token: [REDACTED] (ends in [REDACTED])".into(),
            },
            Case {
                name: "a key masked in the middle",
                text: "Incorrect API key provided: sk-proj-************************B4cF6.".into(),
                expected: "Incorrect API key provided: [REDACTED].".into(),
            },
            Case {
                name: "an AWS authorization header echo",
                text: format!("The security token included in the request is invalid: AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20231114/us-east-1/bedrock/aws4_request, SignedHeaders=host;x-amz-date, Signature={SIGNATURE}"),
                expected: "The security token included in the request is invalid: AWS4-HMAC-SHA256 Credential=[REDACTED]/20231114/us-east-1/bedrock/aws4_request, SignedHeaders=host;x-amz-date, [REDACTED]".into(),
            },
            Case {
                name: "an AWS secret key and an extra header's value",
                text: format!("secret {AWS_SECRET} with X-Team-Token: team-token-7781"),
                expected: "secret [REDACTED] with X-Team-Token: [REDACTED]".into(),
            },
            Case {
                name: "keys of others, by their shape",
                text: "Bearer abcdefgh12345678 or key=AIzaSyDaGmWKa4JsXZ-HjGw7ISLn_3namBGewQe or sk-live-51HqLyjWDarjtT1zdp7dc or ya29.a0AfH6SMBx-long-token-here, or 7Fq2mZ9xL4pR8vT3nW6yB1cK5hJ0gD2sA4eU".into(),
                expected: "Bearer [REDACTED] or [REDACTED] or [REDACTED] or [REDACTED], or [REDACTED]".into(),
            },
            Case {
                name: "ids, names, paths and short values are left alone",
                text: "request 0f6b1f4e-8a2d-4c3b-9e5f-1a2b3c4d5e6f: model claude-sonnet-4-5-20250929 or gemini-2.5-flash-preview-09-2025 at projects/my-project-123/locations/us-central1/publishers/google/models/gemini-2.5-pro is blue; Bearer k".into(),
                expected: "request 0f6b1f4e-8a2d-4c3b-9e5f-1a2b3c4d5e6f: model claude-sonnet-4-5-20250929 or gemini-2.5-flash-preview-09-2025 at projects/my-project-123/locations/us-central1/publishers/google/models/gemini-2.5-pro is blue; Bearer k".into(),
            },
        ];
        for case in cases {
            assert_eq!(secrets().redact(&case.text), case.expected, "{}", case.name);
        }
    }

    /// A provider, and its error answer that repeats the credential it was sent.
    struct Echo {
        yaml: &'static str,
        /// The credential as the provider repeats it.
        key: &'static str,
        status: u16,
        body: String,
    }

    /// The shapes the mock's `echo_key` answers in, one per wire format.
    fn echoes() -> Vec<Echo> {
        const AUTH: &str = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20231114/us-east-1/bedrock/aws4_request, SignedHeaders=host;x-amz-date, Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7";
        vec![
            Echo {
                yaml: "kind: openai\napi_key: sk-test-0123456789abcdef",
                key: "sk-test-0123456789abcdef",
                status: 401,
                body: r#"{"error":{"message":"Incorrect API key provided: sk-test-0123456789abcdef. You can find your API key at https://platform.openai.com/account/api-keys.","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}"#.into(),
            },
            Echo {
                yaml: "kind: azure\nbase_url: https://r.openai.azure.com\napi_key: 0123456789abcdef0123456789abcdef",
                key: "0123456789abcdef0123456789abcdef",
                status: 401,
                body: r#"{"error":{"message":"Incorrect API key provided: 0123456789abcdef0123456789abcdef.","type":"invalid_request_error","code":"invalid_api_key"}}"#.into(),
            },
            Echo {
                yaml: "kind: anthropic\napi_key: sk-ant-api03-abcdefghijklmnop",
                key: "sk-ant-api03-abcdefghijklmnop",
                status: 401,
                body: r#"{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key: sk-ant-api03-abcdefghijklmnop"}}"#.into(),
            },
            Echo {
                yaml: "kind: gemini\napi_key: AIzaSyTestKey0123456789",
                key: "AIzaSyTestKey0123456789",
                status: 401,
                body: r#"{"error":{"code":401,"message":"API key not valid: AIzaSyTestKey0123456789. Please pass a valid API key.","status":"UNAUTHENTICATED"}}"#.into(),
            },
            Echo {
                yaml: "kind: vertex\napi_key: ya29.test-token-0123456789\nproject: p\nlocation: us-east5",
                key: "ya29.test-token-0123456789",
                status: 401,
                body: r#"{"error":{"code":401,"message":"Request had invalid authentication credentials: ya29.test-token-0123456789","status":"UNAUTHENTICATED"}}"#.into(),
            },
            Echo {
                yaml: "kind: cohere\napi_key: co-test-key-0123456789",
                key: "co-test-key-0123456789",
                status: 401,
                body: r#"{"id":"e1","message":"invalid api token: co-test-key-0123456789"}"#.into(),
            },
            Echo {
                yaml: "kind: bedrock\nregion: us-east-1\naccess_key_id: AKIDEXAMPLE\nsecret_access_key: wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
                key: "AKIDEXAMPLE",
                status: 403,
                body: format!(r#"{{"message":"The security token included in the request is invalid: {AUTH}"}}"#),
            },
            Echo {
                yaml: "kind: openai\napi_key: sk-test-0123456789abcdef\nheaders: {OpenAI-Organization: org-Secret0123}",
                key: "org-Secret0123",
                status: 400,
                body: r#"{"error":{"message":"Organization 'org-Secret0123' is not yours (header OpenAI-Organization: \"org-Secret0123\")","type":"invalid_request_error"}}"#.into(),
            },
        ]
    }

    #[test]
    fn no_provider_error_shows_the_credential() {
        for echo in echoes() {
            let p = provider(echo.yaml);
            let e = p.error_response(echo.status, echo.body.as_bytes());
            let seen = format!("{e} {:?} {:?}", e.param, e.code);
            assert!(!seen.contains(echo.key), "{}: {seen}", echo.yaml);
            assert!(seen.contains(REDACTED), "{}: {seen}", echo.yaml);
            // Cut short at any point, whatever is left of it is hidden too.
            for cut in [echo.body.len() / 2, echo.body.len() - 40] {
                let e = p.error_response(echo.status, echo.body.get(..cut).unwrap().as_bytes());
                assert!(
                    !e.message.contains(&echo.key[..MIN_PART]),
                    "{}: {}",
                    echo.yaml,
                    e.message
                );
            }
        }
    }

    /// A provider, and a stream whose error event repeats its credential.
    struct StreamEcho {
        yaml: &'static str,
        model: &'static str,
        key: &'static str,
        input: Vec<u8>,
    }

    #[test]
    fn an_error_event_quoting_a_data_line_stays_json() {
        // The invalid event's text, quoted in the message, holds `data: ` and a token taken
        // for a key.
        let token = "0123456789abcdefghij0123456789abcdef";
        let input = format!("event: message_start\ndata: \"x data: {token}\"\n\n");
        let p = provider("kind: anthropic\napi_key: sk-ant-api03-abcdefghijklmnop");
        let mut t = p.chat_stream(&ctx(false));
        let mut out = Vec::new();
        t.feed(input.as_bytes(), &mut out);
        t.finish(&mut out);
        let text = String::from_utf8(out).unwrap();
        let last = text.trim_end().rsplit("\n\n").next().unwrap();
        let event: serde_json::Value =
            serde_json::from_str(last.strip_prefix("data: ").unwrap()).unwrap();
        let message = event["error"]["message"].as_str().unwrap();
        assert!(message.contains("x data: [REDACTED]"), "{message}");
        assert!(!message.contains(token), "{message}");
    }

    #[test]
    fn no_stream_error_event_shows_the_credential() {
        let cases = [
            StreamEcho {
                yaml: "kind: openai\napi_key: sk-test-0123456789abcdef",
                model: "gpt",
                key: "sk-test-0123456789abcdef",
                input: b"data: {\"error\":{\"message\":\"key sk-test-0123456789abcdef revoked\",\"type\":\"invalid_request_error\"}}\n\n".to_vec(),
            },
            StreamEcho {
                yaml: "kind: anthropic\napi_key: sk-ant-api03-abcdefghijklmnop",
                model: "claude",
                key: "sk-ant-api03-abcdefghijklmnop",
                input: b"event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"authentication_error\",\"message\":\"invalid x-api-key: sk-ant-api03-abcdefghijklmnop\"}}\n\n".to_vec(),
            },
            StreamEcho {
                yaml: "kind: gemini\napi_key: AIzaSyTestKey0123456789",
                model: "gemini",
                key: "AIzaSyTestKey0123456789",
                input: b"data: {\"error\":{\"code\":401,\"message\":\"API key not valid: AIzaSyTestKey0123456789\",\"status\":\"UNAUTHENTICATED\"}}\n\n".to_vec(),
            },
            StreamEcho {
                yaml: "kind: vertex\napi_key: ya29.test-token-0123456789\nproject: p\nlocation: us-east5",
                model: "claude-x",
                key: "ya29.test-token-0123456789",
                input: b"data: {\"type\":\"error\",\"error\":{\"type\":\"authentication_error\",\"message\":\"token ya29.test-token-0123456789 expired\"}}\n\n".to_vec(),
            },
            StreamEcho {
                yaml: "kind: cohere\napi_key: co-test-key-0123456789",
                model: "command",
                key: "co-test-key-0123456789",
                input: b"data: {\"type\":\"message-end\",\"delta\":{\"finish_reason\":\"ERROR\",\"error\":\"token co-test-key-0123456789 revoked\"}}\n\n".to_vec(),
            },
            StreamEcho {
                yaml: "kind: bedrock\nregion: us-east-1\naccess_key_id: AKIDEXAMPLE\nsecret_access_key: wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY\nsession_token: FwoGZXIvYXdzEBYaDH0123456789",
                model: "anthropic.claude",
                key: "FwoGZXIvYXdzEBYaDH0123456789",
                input: encode(
                    &[(":exception-type", "accessDeniedException"), (":message-type", "exception")],
                    br#"{"message":"session token FwoGZXIvYXdzEBYaDH0123456789 expired"}"#,
                ),
            },
        ];
        for case in cases {
            let p = provider(case.yaml);
            let ctx = ResponseContext {
                upstream_model: case.model,
                ..ctx(false)
            };
            let mut t = p.chat_stream(&ctx);
            let mut out = Vec::new();
            t.feed(&case.input, &mut out);
            t.finish(&mut out);
            let text = String::from_utf8(out).unwrap();
            assert!(t.failed(), "{}: {text}", case.yaml);
            assert!(!text.contains(case.key), "{}: {text}", case.yaml);
            assert!(text.contains(REDACTED), "{}: {text}", case.yaml);
            let last = text.trim_end().rsplit("\n\n").next().unwrap();
            let event: serde_json::Value =
                serde_json::from_str(last.strip_prefix("data: ").unwrap()).unwrap();
            assert!(
                event["error"]["message"].is_string(),
                "{}: {text}",
                case.yaml
            );
        }
    }
}
