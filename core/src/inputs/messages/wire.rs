//! The Messages API as clients speak it: the request (read once, every known field typed so a
//! wrong type is reported with its path), and the answer, stream events and error bodies (
//! written). Content blocks are read flat, one struct for every block type: serde would read
//! an internally tagged enum by buffering each block into a generic tree first.

use crate::api::chat::TextOrParts;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;

// ---------------------------------------------------------------------------------------------
// Request

#[derive(Debug, Default)]
pub(super) struct MessagesRequest {
    pub(super) model: String,
    pub(super) messages: Vec<InputMessage>,
    pub(super) max_tokens: Option<u32>,
    pub(super) system: Option<Content>,
    pub(super) metadata: Option<Metadata>,
    pub(super) stop_sequences: Option<Vec<String>>,
    pub(super) stream: bool,
    pub(super) temperature: Option<f64>,
    pub(super) top_p: Option<f64>,
    pub(super) top_k: Option<u64>,
    pub(super) tools: Option<Vec<ToolDef>>,
    pub(super) tool_choice: Option<ToolChoiceDef>,
    pub(super) thinking: Option<ThinkingDef>,
    pub(super) output_format: Option<OutputFormat>,
    pub(super) output_config: Option<OutputConfig>,
    /// Other top-level members (not `null`), by name.
    pub(super) other: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(super) enum Role {
    User,
    Assistant,
    /// Instructions in the middle of the conversation.
    System,
}

#[derive(Debug, Deserialize)]
pub(super) struct InputMessage {
    pub(super) role: Role,
    pub(super) content: Content,
}

/// A string (one text block), or blocks.
pub(super) type Content = TextOrParts<Block>;

/// A content block of any type: the fields its type uses are set (`cache_control`,
/// `citations` and other hints are not read).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub(super) struct Block {
    #[serde(rename = "type")]
    pub(super) kind: String,
    #[serde(default)]
    pub(super) text: Option<String>,
    /// An image's or document's source (an object), a search result's (a string).
    #[serde(default)]
    pub(super) source: Option<Value>,
    #[serde(default)]
    pub(super) title: Option<String>,
    #[serde(default)]
    pub(super) id: Option<String>,
    #[serde(default)]
    pub(super) name: Option<String>,
    #[serde(default)]
    pub(super) input: Option<Value>,
    #[serde(default)]
    pub(super) tool_use_id: Option<String>,
    #[serde(default)]
    pub(super) content: Option<Content>,
    #[serde(default)]
    pub(super) thinking: Option<String>,
    #[serde(default)]
    pub(super) signature: Option<String>,
    /// A `redacted_thinking` block's encrypted content.
    #[serde(default)]
    pub(super) data: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct Metadata {
    #[serde(default)]
    pub(super) user_id: Option<String>,
}

/// A tool: the client's own (`custom`, the default), or one Anthropic defines or runs
/// (`web_search_20250305`, `bash_20250124`, ...).
#[derive(Debug, Deserialize)]
pub(super) struct ToolDef {
    #[serde(rename = "type", default)]
    pub(super) kind: Option<String>,
    #[serde(default)]
    pub(super) name: String,
    #[serde(default)]
    pub(super) description: Option<String>,
    #[serde(default)]
    pub(super) input_schema: Option<Value>,
    #[serde(default)]
    pub(super) strict: Option<bool>,
}

#[derive(Debug, Deserialize)]
pub(super) struct ToolChoiceDef {
    #[serde(rename = "type")]
    pub(super) kind: String,
    #[serde(default)]
    pub(super) name: Option<String>,
    #[serde(default)]
    pub(super) disable_parallel_tool_use: Option<bool>,
}

#[derive(Debug, Deserialize)]
pub(super) struct ThinkingDef {
    #[serde(rename = "type")]
    pub(super) kind: String,
    #[serde(default)]
    pub(super) budget_tokens: Option<u32>,
    #[serde(default)]
    pub(super) display: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(super) struct OutputFormat {
    #[serde(rename = "type")]
    pub(super) kind: String,
    #[serde(default)]
    pub(super) schema: Option<Value>,
}

/// `output_config`: its `format` is read (`effort` is not mapped).
#[derive(Debug, Deserialize)]
pub(super) struct OutputConfig {
    #[serde(default)]
    pub(super) format: Option<OutputFormat>,
}

impl<'de> Deserialize<'de> for MessagesRequest {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(RequestVisitor)
    }
}

struct RequestVisitor;

impl<'de> Visitor<'de> for RequestVisitor {
    type Value = MessagesRequest;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a Messages request object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<MessagesRequest, A::Error> {
        let mut req = MessagesRequest::default();
        let mut model = None;
        let mut messages = None;
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            // `null` for an optional member means "not set".
            match key.as_ref() {
                "model" => model = Some(map.next_value::<String>()?),
                "messages" => messages = Some(map.next_value::<Vec<InputMessage>>()?),
                "max_tokens" => req.max_tokens = map.next_value()?,
                "system" => req.system = map.next_value()?,
                "metadata" => req.metadata = map.next_value()?,
                "stop_sequences" => req.stop_sequences = map.next_value()?,
                "stream" => req.stream = map.next_value::<Option<bool>>()?.unwrap_or(false),
                "temperature" => req.temperature = map.next_value()?,
                "top_p" => req.top_p = map.next_value()?,
                "top_k" => req.top_k = map.next_value()?,
                "tools" => req.tools = map.next_value()?,
                "tool_choice" => req.tool_choice = map.next_value()?,
                "thinking" => req.thinking = map.next_value()?,
                "output_format" => req.output_format = map.next_value()?,
                "output_config" => req.output_config = map.next_value()?,
                other => {
                    if map.next_value::<Option<IgnoredAny>>()?.is_some() {
                        req.other.push(other.to_owned());
                    }
                }
            }
        }
        req.model = model.ok_or_else(|| de::Error::missing_field("model"))?;
        req.messages = messages.ok_or_else(|| de::Error::missing_field("messages"))?;
        Ok(req)
    }
}

// ---------------------------------------------------------------------------------------------
// Answer and stream events

/// A `message` answer.
#[derive(Debug, Serialize)]
pub(super) struct MessageOut<'a> {
    pub(super) id: &'a str,
    #[serde(rename = "type")]
    pub(super) kind: &'static str,
    pub(super) role: &'static str,
    pub(super) model: &'a str,
    pub(super) content: Vec<BlockOut>,
    pub(super) stop_reason: Option<&'static str>,
    pub(super) stop_sequence: Option<&'static str>,
    pub(super) usage: UsageOut,
}

impl<'a> MessageOut<'a> {
    pub(super) fn new(id: &'a str, model: &'a str) -> Self {
        MessageOut {
            id,
            kind: "message",
            role: "assistant",
            model,
            content: Vec::new(),
            stop_reason: None,
            stop_sequence: None,
            usage: UsageOut::default(),
        }
    }
}

/// A content block of an answer, whole (JSON answers) or as it starts (streams).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(super) enum BlockOut {
    Thinking {
        thinking: String,
        signature: String,
    },
    RedactedThinking {
        data: String,
    },
    Text {
        text: String,
    },
    ToolUse {
        id: String,
        name: String,
        input: Value,
    },
}

/// Anthropic's usage: `input_tokens` leaves out what was read from or written to the cache.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub(super) struct UsageOut {
    pub(super) input_tokens: u64,
    pub(super) cache_creation_input_tokens: u64,
    pub(super) cache_read_input_tokens: u64,
    pub(super) output_tokens: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) output_tokens_details: Option<OutputDetails>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub(super) struct OutputDetails {
    pub(super) thinking_tokens: u64,
}

/// The stream's events, written as `event: <type>` and `data: <json>`.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(super) enum Event<'a> {
    MessageStart {
        message: MessageOut<'a>,
    },
    Ping,
    ContentBlockStart {
        index: u32,
        content_block: BlockOut,
    },
    ContentBlockStop {
        index: u32,
    },
    MessageDelta {
        delta: MessageChange,
        usage: UsageOut,
    },
    MessageStop,
    Error {
        error: ErrorOut<'a>,
    },
}

impl Event<'_> {
    pub(super) fn name(&self) -> &'static str {
        match self {
            Event::MessageStart { .. } => "message_start",
            Event::Ping => "ping",
            Event::ContentBlockStart { .. } => "content_block_start",
            Event::ContentBlockStop { .. } => "content_block_stop",
            Event::MessageDelta { .. } => "message_delta",
            Event::MessageStop => "message_stop",
            Event::Error { .. } => "error",
        }
    }

    /// Appends the event in SSE framing.
    pub(super) fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"event: ");
        out.extend_from_slice(self.name().as_bytes());
        out.extend_from_slice(b"\ndata: ");
        if serde_json::to_writer(&mut *out, self).is_err() {
            out.extend_from_slice(b"{}");
        }
        out.extend_from_slice(b"\n\n");
    }
}

impl DeltaOut<'_> {
    /// Appends the `content_block_delta` event of block `index`: written directly, as it is
    /// the event of nearly every chunk of a stream (serde would escape every member name
    /// too).
    pub(super) fn write_event(&self, index: u32, out: &mut Vec<u8>) {
        let (kind, field, value) = match self {
            DeltaOut::Text { text } => ("text_delta", "text", text),
            DeltaOut::Thinking { thinking } => ("thinking_delta", "thinking", thinking),
            DeltaOut::Signature { signature } => ("signature_delta", "signature", signature),
            DeltaOut::InputJson { partial_json } => {
                ("input_json_delta", "partial_json", partial_json)
            }
        };
        out.extend_from_slice(
            b"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":",
        );
        out.extend_from_slice(index.to_string().as_bytes());
        out.extend_from_slice(b",\"delta\":{\"type\":\"");
        out.extend_from_slice(kind.as_bytes());
        out.extend_from_slice(b"\",\"");
        out.extend_from_slice(field.as_bytes());
        out.extend_from_slice(b"\":");
        if serde_json::to_writer(&mut *out, value).is_err() {
            out.extend_from_slice(b"\"\"");
        }
        out.extend_from_slice(b"}}\n\n");
    }
}

/// A block's delta (`<kind>_delta`).
#[derive(Debug)]
pub(super) enum DeltaOut<'a> {
    Text { text: &'a str },
    Thinking { thinking: &'a str },
    Signature { signature: &'a str },
    InputJson { partial_json: &'a str },
}

#[derive(Debug, Serialize)]
pub(super) struct MessageChange {
    pub(super) stop_reason: &'static str,
    pub(super) stop_sequence: Option<&'static str>,
}

/// `{"type":"error","error":{"type":…,"message":…}}`
#[derive(Debug, Serialize)]
pub(super) struct ErrorEnvelope<'a> {
    #[serde(rename = "type")]
    pub(super) kind: &'static str,
    pub(super) error: ErrorOut<'a>,
}

#[derive(Debug, Serialize)]
pub(super) struct ErrorOut<'a> {
    #[serde(rename = "type")]
    pub(super) kind: &'a str,
    pub(super) message: &'a str,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::test;
    use serde_json::json;

    fn parse(json: &str) -> Result<MessagesRequest, String> {
        let de = &mut serde_json::Deserializer::from_str(json);
        serde_path_to_error::deserialize(de).map_err(|e| e.to_string())
    }

    #[test]
    fn reads_requests_and_names_other_members() {
        let req = parse(
            r#"{"model":"m","max_tokens":10,"stream":null,"temperature":null,"container":null,
            "context_management":{"edits":[]},"mcp_servers":[],
            "system":[{"type":"text","text":"S","cache_control":{"type":"ephemeral"}}],
            "messages":[{"role":"user","content":"hi"},
              {"role":"assistant","content":[{"type":"tool_use","id":"t","name":"f","input":{"a":1}}]},
              {"role":"user","content":[{"type":"tool_result","tool_use_id":"t","content":[{"type":"text","text":"r"}]}]}]}"#,
        )
        .unwrap();
        assert_eq!(req.other, ["context_management", "mcp_servers"]);
        assert!(!req.stream && req.temperature.is_none());
        assert_eq!(req.messages.len(), 3);
        let Content::Parts(blocks) = &req.messages[2].content else {
            panic!("blocks expected")
        };
        assert_eq!(
            blocks[0].content,
            Some(Content::Parts(vec![Block {
                kind: "text".into(),
                text: Some("r".into()),
                ..Block::default()
            }]))
        );
    }

    #[test]
    fn errors_name_the_field() {
        let cases = [
            (r#"{"messages":[]}"#, "missing field `model`"),
            (r#"{"model":"m"}"#, "missing field `messages`"),
            (
                r#"{"model":"m","messages":[{"role":"tool","content":"x"}]}"#,
                "messages[0].role: unknown variant `tool`",
            ),
            (
                r#"{"model":"m","messages":[{"role":"user","content":5}]}"#,
                "messages[0].content: invalid type",
            ),
            (
                r#"{"model":"m","messages":[{"role":"user","content":[{"text":"x"}]}]}"#,
                "messages[0].content[0]: missing field `type`",
            ),
            (
                r#"{"model":"m","messages":[],"max_tokens":"many"}"#,
                "max_tokens: invalid type",
            ),
        ];
        for (json, expected) in cases {
            let err = parse(json).unwrap_err();
            assert!(err.contains(expected), "{json}: got {err}");
        }
    }

    #[test]
    fn deltas_are_content_block_delta_events() {
        let deltas = [
            (
                DeltaOut::Text {
                    text: "a \"b\"\né"
                },
                json!({"type": "text_delta", "text": "a \"b\"\né"}),
            ),
            (
                DeltaOut::Thinking { thinking: "t" },
                json!({"type": "thinking_delta", "thinking": "t"}),
            ),
            (
                DeltaOut::Signature { signature: "s/+=" },
                json!({"type": "signature_delta", "signature": "s/+="}),
            ),
            (
                DeltaOut::InputJson {
                    partial_json: "{\"a\": [1",
                },
                json!({"type": "input_json_delta", "partial_json": "{\"a\": [1"}),
            ),
        ];
        for (delta, expected) in deltas {
            let mut out = Vec::new();
            delta.write_event(12, &mut out);
            let text = String::from_utf8(out).unwrap();
            let data = text
                .strip_prefix("event: content_block_delta\ndata: ")
                .and_then(|rest| rest.strip_suffix("\n\n"))
                .unwrap_or_else(|| panic!("{text}"));
            let got: Value = serde_json::from_str(data).unwrap();
            assert_eq!(
                got,
                json!({"type": "content_block_delta", "index": 12, "delta": expected})
            );
        }
    }

    #[test]
    fn events_are_framed_with_their_type() {
        let mut out = Vec::new();
        Event::ContentBlockStop { index: 2 }.write(&mut out);
        Event::Ping.write(&mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":2}\n\n\
             event: ping\ndata: {\"type\":\"ping\"}\n\n"
        );
        let block = serde_json::to_value(BlockOut::Thinking {
            thinking: String::new(),
            signature: "s".into(),
        })
        .unwrap();
        assert_eq!(
            block,
            json!({"type": "thinking", "thinking": "", "signature": "s"})
        );
    }
}
