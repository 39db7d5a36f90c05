//! Anthropic Messages in: `POST /v1/messages` and `/v1/messages/count_tokens` (with or without
//! `/v1`, `?beta=true`) decoded into the canonical OpenAI chat body, answers and streams
//! encoded back into Messages' shapes. A provider that speaks Messages itself (Anthropic) is
//! given the client's body instead (see `Provider::native_api`); what follows is the way
//! through every other provider.
//!
//! One file per seam: `wire` (the Messages API's types), `decode`, `encode` (JSON answers),
//! `stream` (events), `error`.
//!
//! What maps to what:
//! - `system` (a string or text blocks) and `system` messages → system messages; user text,
//!   images (base64 → `data:` URLs, URLs) and documents (base64 PDFs → `file` parts, text
//!   sources and search results → text) → user content; `tool_result` blocks → `tool`
//!   messages, before the user's other blocks (`is_error` has no counterpart);
//!   `tool_use` → `tool_calls`; `thinking` / `redacted_thinking` → `thinking_blocks` (the
//!   providers with signed reasoning hand them back, see `api::chat::ThinkingBlock`).
//! - `max_tokens` → `max_completion_tokens`; `stop_sequences` → `stop`; `temperature`,
//!   `top_p`; `top_k` → `top_k` (taken where the chat path takes it); `metadata.user_id` →
//!   `user`; custom `tools` → functions (`strict` kept); `tool_choice` auto / any / tool /
//!   none → auto / required / the function / none, `disable_parallel_tool_use` →
//!   `parallel_tool_calls: false`; `output_format` (or `output_config.format`) →
//!   `response_format: json_schema`.
//! - Reasoning: a manual thinking budget → `reasoning_effort` `low` (< 4096), `medium`
//!   (< 16384) or `high`. `adaptive` thinking asks for nothing, and `output_config.effort` is
//!   left out: the provider's own default decides. (Claude Code sends adaptive thinking and
//!   `effort: high` with every request; mapped, they would have every model that cannot
//!   reason refuse it.) `display: omitted` is honoured on the way back (thinking blocks
//!   without their text).
//! - Dropped, as they only tune how Anthropic serves a request: `cache_control` (on blocks,
//!   tools and the request), `citations`, `output_config.effort`, `context_management`,
//!   `service_tier`,
//!   `inference_geo`, `speed`, `diagnostics`, `user_profile_id`, `workspace_id`, and the
//!   server tools' calls and results in earlier turns (the text around them stays).
//! - What no other provider can do — tools Anthropic defines or runs (`web_search_*`,
//!   `bash_*`, `code_execution_*`, ...), `mcp_servers`, `container`, files by Anthropic file
//!   id, documents by URL, unknown members and block types — is refused with a 400 naming it
//!   when the request is translated, as the chat path refuses what a provider cannot honour,
//!   and left out when the model sets `drop_unsupported_params`
//!   (`check_translatable`, on every attempt that translates).
//!
//! Answers: `thinking_blocks` → `thinking` / `redacted_thinking` blocks (reasoning without
//! a signature → a `thinking` block with an empty signature), text → a `text` block,
//! `tool_calls` → `tool_use` blocks (arguments parsed: a call whose arguments are not a JSON
//! object is an invalid answer); `finish_reason` stop / length / tool_calls / content_filter
//! → `end_turn` / `max_tokens` / `tool_use` / `refusal`; usage with Anthropic's meaning:
//! `input_tokens` leaves out the cache reads and writes, which are
//! `cache_read_input_tokens` / `cache_creation_input_tokens`.

mod decode;
mod encode;
mod error;
mod stream;
mod wire;

pub use decode::decode;
pub use encode::encode_answer;
pub use error::{error_body, error_type, write_stream_error};
pub use stream::StreamEncoder;

use crate::api::ApiError;
use crate::config::ModelSettings;
use crate::providers::params::unsupported;
use std::borrow::Cow;

/// What translating a Messages request, and encoding its answer, needs of it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Context {
    /// Thinking was asked with `display: omitted`: thinking blocks go out without text.
    pub omit_thinking: bool,
    /// What the request asks that only Anthropic can do.
    pub untranslatable: Vec<Untranslatable>,
    /// The request hands back thinking without a signature (made by another provider),
    /// which Anthropic refuses.
    pub unsigned_thinking: bool,
}

/// A part of a request only Anthropic can serve: the parameter, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Untranslatable {
    pub param: String,
    pub why: String,
}

/// Refuses (400 naming the parameter) what a translated request would lose, unless the
/// model drops unsupported parameters.
pub fn check_translatable(ctx: &Context, settings: &ModelSettings) -> Result<(), ApiError> {
    for item in &ctx.untranslatable {
        unsupported(settings, &item.param, &item.why)?;
    }
    Ok(())
}

/// The client's body as Anthropic takes it: as it came, unless it hands back thinking
/// blocks without a signature (written by another provider after a fallback), which are
/// left out (with the turns they leave empty).
pub fn native_body<'a>(ctx: &Context, raw: &'a [u8]) -> Result<Cow<'a, [u8]>, ApiError> {
    if !ctx.unsigned_thinking {
        return Ok(Cow::Borrowed(raw));
    }
    let mut body: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(raw).map_err(|e| ApiError::invalid(e.to_string()))?;
    if let Some(serde_json::Value::Array(messages)) = body.get_mut("messages") {
        for message in messages.iter_mut() {
            if let Some(serde_json::Value::Array(blocks)) = message.get_mut("content") {
                blocks.retain(|b| {
                    let unsigned = b.get("type").and_then(|t| t.as_str()) == Some("thinking")
                        && b.get("signature")
                            .and_then(|s| s.as_str())
                            .is_none_or(str::is_empty);
                    !unsigned
                });
            }
        }
        messages.retain(|m| {
            m.get("content")
                .and_then(|c| c.as_array())
                .is_none_or(|blocks| !blocks.is_empty())
        });
    }
    serde_json::to_vec(&body)
        .map(Cow::Owned)
        .map_err(|e| ApiError::server(e.to_string()))
}

/// The answer of a count_tokens request the gateway estimates itself (no provider that can
/// count serves the model): `estimated` says so.
pub fn count_tokens_answer(input_tokens: u64) -> Vec<u8> {
    format!("{{\"input_tokens\":{input_tokens},\"estimated\":true}}").into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::test;
    use serde_json::{json, Value};

    fn item(param: &str) -> Untranslatable {
        Untranslatable {
            param: param.into(),
            why: "only Anthropic's Messages API has it".into(),
        }
    }

    #[test]
    fn untranslatable_parts_are_refused_by_name_unless_dropped() {
        let ctx = Context {
            untranslatable: vec![item("mcp_servers"), item("tools[1]")],
            ..Context::default()
        };
        let err = check_translatable(&ctx, &ModelSettings::default()).unwrap_err();
        assert_eq!(
            (err.status, err.param.as_deref()),
            (400, Some("mcp_servers"))
        );
        assert!(
            err.message.starts_with(
                "Unsupported parameter `mcp_servers`: only Anthropic's Messages API has it"
            ),
            "{}",
            err.message
        );
        let dropping = ModelSettings {
            drop_unsupported_params: true,
            ..ModelSettings::default()
        };
        assert!(check_translatable(&ctx, &dropping).is_ok());
        assert!(check_translatable(&Context::default(), &ModelSettings::default()).is_ok());
    }

    #[test]
    fn native_bodies_lose_only_unsigned_thinking() {
        let raw = br#"{"model":"m","messages":[{"role":"user","content":"x"},
            {"role":"assistant","content":[{"type":"thinking","thinking":"a","signature":""}]},
            {"role":"assistant","content":[{"type":"thinking","thinking":"b","signature":"s"},
              {"type":"thinking","thinking":"c"},{"type":"text","text":"T"}]},
            {"role":"user","content":"y"}]}"#;
        let clean = Context::default();
        assert!(matches!(native_body(&clean, raw), Ok(Cow::Borrowed(_))));
        let ctx = Context {
            unsigned_thinking: true,
            ..Context::default()
        };
        let got: Value = serde_json::from_slice(&native_body(&ctx, raw).unwrap()).unwrap();
        assert_eq!(
            got,
            json!({"model":"m","messages":[{"role":"user","content":"x"},
                {"role":"assistant","content":[{"type":"thinking","thinking":"b","signature":"s"},
                  {"type":"text","text":"T"}]},
                {"role":"user","content":"y"}]})
        );
    }

    #[test]
    fn estimated_counts_say_so() {
        let v: Value = serde_json::from_slice(&count_tokens_answer(42)).unwrap();
        assert_eq!(v, json!({"input_tokens": 42, "estimated": true}));
    }
}
