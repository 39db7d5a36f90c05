//! What a request is expected to use, before it runs, without a tokenizer: the prompt is
//! its text's UTF-8 length / 4 (characters / 4 for English, the usual rule of thumb; bytes
//! rather than characters so other scripts, which need more tokens per character, are not
//! underestimated) plus a few tokens per message, and the answer is as long as allowed:
//! `max_completion_tokens`/`max_tokens`, else the model's `max_tokens`, else 4096.
//! Budgets and token limits reserve this and settle on the real count when the answer ends.

use crate::api::chat::{ChatRequest, ContentPart, MessageContent};
use crate::api::embeddings::EmbeddingInput;
use crate::config::ModelSettings;
use crate::flow::ParsedRequest;
use crate::usage::Usage;

pub const BYTES_PER_TOKEN: u64 = 4;
/// Role and framing tokens each message adds.
pub const TOKENS_PER_MESSAGE: u64 = 4;
/// An image, as OpenAI counts a 1024×1024 image in high detail.
pub const TOKENS_PER_IMAGE: u64 = 765;
/// The answer's length when neither the request nor the model sets `max_tokens`.
pub const DEFAULT_MAX_TOKENS: u64 = 4096;

fn text_tokens(bytes: usize) -> u64 {
    (bytes as u64).div_ceil(BYTES_PER_TOKEN)
}

/// Expected prompt and completion tokens, as a `Usage` ready to be priced.
pub fn tokens(request: &ParsedRequest, settings: &ModelSettings) -> Usage {
    let ParsedRequest::Embeddings(req) = request else {
        return request
            .chat()
            .map(|req| chat_tokens(req, settings))
            .unwrap_or_default();
    };
    Usage {
        prompt_tokens: match &req.input {
            EmbeddingInput::Text(t) => text_tokens(t.len()),
            EmbeddingInput::Texts(ts) => ts.iter().map(|t| text_tokens(t.len())).sum(),
            EmbeddingInput::Tokens(ids) => ids.len() as u64,
            EmbeddingInput::TokenBatches(b) => b.iter().map(|ids| ids.len() as u64).sum(),
        },
        ..Usage::default()
    }
}

/// A chat request's prompt, and its answer at its cap.
fn chat_tokens(req: &ChatRequest, settings: &ModelSettings) -> Usage {
    Usage {
        prompt_tokens: chat_prompt(req),
        completion_tokens: req
            .max_output_tokens()
            .or(settings.max_tokens)
            .map_or(DEFAULT_MAX_TOKENS, u64::from)
            .saturating_mul(u64::from(req.n.unwrap_or(1).max(1))),
        ..Usage::default()
    }
}

/// The prompt tokens of a chat request (what count_tokens estimates where the provider
/// cannot count).
pub fn chat_prompt(req: &ChatRequest) -> u64 {
    let mut bytes = 0usize;
    let mut fixed = 0u64;
    for m in &req.messages {
        fixed += TOKENS_PER_MESSAGE;
        bytes += m.name.as_ref().map_or(0, String::len);
        match &m.content {
            Some(MessageContent::Text(t)) => bytes += t.len(),
            Some(MessageContent::Parts(parts)) => {
                for p in parts {
                    match p {
                        ContentPart::Text { text } => bytes += text.len(),
                        ContentPart::Refusal { refusal } => bytes += refusal.len(),
                        ContentPart::ImageUrl { .. } => fixed += TOKENS_PER_IMAGE,
                        ContentPart::InputAudio { input_audio } => bytes += input_audio.data.len(),
                        ContentPart::File { file } => {
                            bytes += serde_json::to_string(file).map_or(0, |s| s.len())
                        }
                    }
                }
            }
            None => {}
        }
        for call in m.tool_calls.iter().flatten() {
            bytes += call.function.name.len() + call.function.arguments.len();
        }
    }
    for tool in req.tools.iter().flatten() {
        let f = &tool.function;
        bytes += f.name.len() + f.description.as_ref().map_or(0, String::len);
        bytes += f
            .parameters
            .as_ref()
            .and_then(|p| serde_json::to_string(p).ok())
            .map_or(0, |s| s.len());
    }
    text_tokens(bytes) + fixed
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::test;

    fn chat(json: &str) -> ParsedRequest {
        ParsedRequest::Chat(Box::new(serde_json::from_str(json).unwrap()))
    }

    fn settings(max_tokens: Option<u32>) -> ModelSettings {
        ModelSettings {
            max_tokens,
            ..ModelSettings::default()
        }
    }

    #[test]
    fn estimates_prompt_and_answer() {
        struct Case {
            name: &'static str,
            json: &'static str,
            /// The model's `max_tokens`.
            default_cap: Option<u32>,
            prompt: u64,
            completion: u64,
        }
        let table = [
            Case {
                name: "11 bytes -> 3 tokens, + 4 for the message; no cap anywhere -> 4096",
                json: r#"{"model":"m","messages":[{"role":"user","content":"hello there"}]}"#,
                default_cap: None,
                prompt: 7,
                completion: 4096,
            },
            Case {
                name: "the model's default cap",
                json: r#"{"model":"m","messages":[{"role":"user","content":"hello there"}]}"#,
                default_cap: Some(500),
                prompt: 7,
                completion: 500,
            },
            Case {
                name: "the request's max_tokens wins",
                json: r#"{"model":"m","messages":[{"role":"user","content":"hi"}],"max_tokens":20}"#,
                default_cap: Some(500),
                prompt: 5,
                completion: 20,
            },
            Case {
                name: "max_completion_tokens, times n",
                json: r#"{"model":"m","messages":[{"role":"user","content":"hi"}],"max_completion_tokens":30,"n":3}"#,
                default_cap: None,
                prompt: 5,
                completion: 90,
            },
            Case {
                name: "parts: text counts by bytes, an image as a fixed block",
                json: r#"{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"12345678"},{"type":"image_url","image_url":{"url":"https://x/y.png"}}]}],"max_tokens":1}"#,
                default_cap: None,
                prompt: 2 + 4 + 765,
                completion: 1,
            },
            Case {
                name: "tool calls and tool definitions are prompt too",
                json: r#"{"model":"m","max_tokens":1,"messages":[{"role":"assistant","tool_calls":[{"id":"c","type":"function","function":{"name":"abcd","arguments":"{\"x\":1234}"}}]}],
                   "tools":[{"type":"function","function":{"name":"abcd","description":"efgh","parameters":{"a":1}}}]}"#,
                default_cap: None,
                prompt: (4 + 10 + 4 + 4 + 7u64).div_ceil(4) + 4,
                completion: 1,
            },
            Case {
                name: "non-Latin text: UTF-8 bytes, so 6 characters are 18 bytes -> 5 tokens",
                json: r#"{"model":"m","messages":[{"role":"user","content":"日本語のテキ"}],"max_tokens":1}"#,
                default_cap: None,
                prompt: 5 + 4,
                completion: 1,
            },
        ];
        for case in table {
            let u = tokens(&chat(case.json), &settings(case.default_cap));
            assert_eq!(
                (u.prompt_tokens, u.completion_tokens),
                (case.prompt, case.completion),
                "{}: {}",
                case.name,
                case.json
            );
        }
    }

    #[test]
    fn estimates_embeddings_input() {
        for (input, prompt) in [
            (r#""abcdefgh""#, 2),
            (r#"["abcd","abcde"]"#, 3),
            ("[1,2,3]", 3),
            ("[[1,2],[3]]", 3),
        ] {
            let json = format!(r#"{{"model":"e","input":{input}}}"#);
            let req = ParsedRequest::Embeddings(serde_json::from_str(&json).unwrap());
            let u = tokens(&req, &settings(Some(99)));
            assert_eq!(
                (u.prompt_tokens, u.completion_tokens),
                (prompt, 0),
                "{input}"
            );
        }
    }
}
