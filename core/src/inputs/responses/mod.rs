//! OpenAI Responses in: `POST /v1/responses` (what Codex CLI speaks). An OpenAI provider is
//! given the client's body as it is (`model` replaced, see `providers::openai`); for every
//! other provider the request is decoded into the canonical OpenAI chat body, and the answer
//! encoded back into a `response` object or the Responses event stream.
//!
//! One file per seam: `wire` (the API's types), `decode`, `encode` (JSON answers), `stream`
//! (the event sequence), `error`. What the translation does:
//!
//! - `input`: a string is one user message. `message` items of every role (`developer` as
//!   `system`, which every OpenAI-compatible server takes) with `input_text`, `output_text`, `refusal`, `input_image` (URL or data URL),
//!   `input_file` (`file_data`) and `input_audio` parts; `function_call` and
//!   `function_call_output` items become the assistant's tool calls and the tool turns
//!   answering them, consecutive assistant output being one assistant turn. `instructions`
//!   becomes the first, system, message.
//! - Reasoning items passed back: their text (`content`, else `summary`) goes with the
//!   assistant turn after them as `reasoning_content`; `encrypted_content` is OpenAI's alone
//!   to read and is left out. Translated answers carry no `encrypted_content`, whatever
//!   `include` asks. Items this gateway made up (ids `…_sb_…`, see `wire::is_minted`) are
//!   taken out again when a later turn goes to OpenAI, which cannot resolve them (reasoning
//!   items dropped, other items sent without their id).
//! - Outputs of tools only OpenAI runs (`web_search_call`, `file_search_call`, `compaction`, …)
//!   have no chat form and are left out.
//! - Tools: `function` tools (`strict` kept) are offered as they are. The function tools of a
//!   `namespace` are offered flattened as `{namespace}__{name}`; a call of one comes back as
//!   a `function_call` naming `namespace` and `name` apart, as OpenAI's do. Every other tool
//!   (hosted ones such as `web_search`, `file_search`, `code_interpreter`, `image_generation`,
//!   `mcp`; `local_shell`, `shell`, `apply_patch`, `custom`, …) is not offered: the model
//!   answers without it, and the answer's `x-switchboard-dropped-tools` header lists the
//!   types dropped. Codex sends `web_search` and a `namespace` tool on every request, so it
//!   keeps working on every provider. A `tool_choice` naming such a tool is refused (400);
//!   `allowed_tools` narrows the function tools offered. Without tools left, `tool_choice`
//!   and `parallel_tool_calls` are not sent.
//! - `reasoning.effort` → `reasoning_effort` (`max` → `xhigh`); `reasoning.summary` decides
//!   how the provider's reasoning text comes back: as a summary (`summary_text`,
//!   `response.reasoning_summary_text.*` events) when one was asked for, else as reasoning
//!   content (`reasoning_text`, `response.reasoning_text.*`).
//! - `text.format` → `response_format` (`json_schema`, `json_object`; `text` needs none);
//!   `max_output_tokens` → `max_completion_tokens`; `temperature`, `top_p`, `stream` as they
//!   are; `user` (else `safety_identifier`) → `user`.
//! - Not sent on (no chat counterpart, or one providers refuse), echoed in the answer:
//!   `metadata`, `store`, `include`, `prompt_cache_key`, `prompt_cache_retention`,
//!   `client_metadata`, `truncation`, `service_tier`, `top_logprobs`, `max_tool_calls`,
//!   `text.verbosity`. Nothing is stored: answers say `store: false`.
//! - Refused with a 400 where the request is translated (they need what OpenAI stores):
//!   `previous_response_id`, `conversation`, `prompt`, `background: true`, `item_reference`
//!   items, images and files given by `file_id`, files by `file_url`.
//! - Answers: the chat completion's reasoning, text and tool calls become `reasoning`,
//!   `message` and `function_call` output items (in that order); `finish_reason: length` and
//!   `content_filter` make the response `incomplete` with that reason; usage is renamed
//!   (`input_tokens`, `output_tokens`, their details). Ids are minted from the completion's.

mod decode;
mod encode;
mod error;
mod stream;
pub mod wire;

pub use decode::decode;
pub use encode::encode_answer;
pub use error::{write_error_event, write_stream_error};
pub use stream::StreamEncoder;

use crate::api::ApiError;

/// Joins a namespace and a function name into the one name a chat tool has (a separator
/// every provider's tool names allow).
const NAMESPACE_SEPARATOR: &str = "__";

/// What encoding a Responses answer needs of its request.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Context {
    /// The response object's members that echo the request (JSON members, no braces).
    echo: String,
    /// Reasoning text comes back as a summary (one was asked for), else as reasoning content.
    summary: bool,
    /// Flattened namespace function names: (flat name, namespace, name).
    namespaced: Vec<(String, String, String)>,
    /// Types of the tools not offered on a translated path.
    dropped_tools: Vec<String>,
    /// The 400 a translated path answers: the first thing only OpenAI can serve.
    untranslatable: Option<ApiError>,
}

impl Context {
    /// A tool call's name as a `function_call` item gives it: (namespace, name).
    fn call_name(&self, name: &str) -> (Option<String>, String) {
        match self.namespaced.iter().find(|(flat, _, _)| flat == name) {
            Some((_, namespace, function)) => (Some(namespace.clone()), function.clone()),
            None => (None, name.to_owned()),
        }
    }

    /// The types of the tools a translated path did not offer, comma-separated.
    pub fn dropped_tools(&self) -> Option<String> {
        (!self.dropped_tools.is_empty()).then(|| self.dropped_tools.join(", "))
    }

    /// Whether the request can be translated, else the 400 it gets.
    pub fn check_translatable(&self) -> Result<(), ApiError> {
        match &self.untranslatable {
            Some(err) => Err(err.clone()),
            None => Ok(()),
        }
    }
}
