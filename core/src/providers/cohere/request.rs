//! An OpenAI chat request → a `/v2/chat` body.

use super::wire::{
    ChatBody, UserContent, WireFunction, WireFunctionCall, WireImage, WireMessage, WirePart,
    WireResponseFormat, WireTool, WireToolCall,
};
use crate::api::chat::{
    ChatRequest, ContentPart, Message, MessageContent, ResponseFormat, Role, ToolChoice,
};
use crate::api::ApiError;
use crate::providers::checks::{self, Constraints};
use crate::providers::params::unsupported;
use crate::providers::Attempt;
use serde_json::Value;
use std::collections::BTreeMap;

/// What Cohere's chat reference documents of requests (`p` and the penalties narrower than
/// OpenAI's; tool names and image sizes not documented).
const CONSTRAINTS: Constraints = Constraints {
    name: "Cohere",
    temperature: 0.0..=2.0,
    top_p: 0.01..=0.99,
    penalties: 0.0..=1.0,
    max_stop_sequences: 5,
    stop_needs_text: false,
    tool_names: None,
    image_types: &["image/png", "image/jpeg", "image/webp", "image/gif"],
    max_image_bytes: usize::MAX,
    max_images: usize::MAX,
};

/// Request fields only Cohere knows, passed through when a client sends them.
const NATIVE_FIELDS: &[&str] = &["k", "safety_mode", "thinking", "priority"];

pub(super) fn chat_body<'a>(
    req: &'a ChatRequest,
    attempt: &'a Attempt,
) -> Result<ChatBody<'a>, ApiError> {
    if req.n.is_some_and(|n| n != 1) {
        unsupported(attempt.settings, "n", "Cohere returns one choice")?;
    }
    if req.logit_bias.as_ref().is_some_and(|b| !b.is_empty()) {
        unsupported(
            attempt.settings,
            "logit_bias",
            "Cohere has no token biasing",
        )?;
    }
    if req.logprobs == Some(true) {
        unsupported(
            attempt.settings,
            "logprobs",
            "Cohere's log probabilities are not translated",
        )?;
    }
    if req.top_logprobs.is_some() {
        unsupported(
            attempt.settings,
            "top_logprobs",
            "Cohere's log probabilities are not translated",
        )?;
    }
    if req.parallel_tool_calls == Some(false) {
        unsupported(
            attempt.settings,
            "parallel_tool_calls",
            "Cohere cannot turn parallel tool calls off",
        )?;
    }
    if req.reasoning_effort.is_some() {
        unsupported(
            attempt.settings,
            "reasoning_effort",
            "Cohere takes its own `thinking` field instead",
        )?;
    }
    let mut native = BTreeMap::new();
    for (name, value) in &req.extra {
        match NATIVE_FIELDS.iter().find(|f| **f == name.as_str()) {
            Some(field) => {
                native.insert(*field, value);
            }
            None => unsupported(attempt.settings, name, "Cohere has no such parameter")?,
        }
    }

    let tool_choice = match &req.tool_choice {
        None | Some(ToolChoice::Auto) => None,
        Some(ToolChoice::None) => Some("NONE"),
        Some(ToolChoice::Required) => Some("REQUIRED"),
        Some(ToolChoice::Function(_)) => {
            unsupported(
                attempt.settings,
                "tool_choice",
                "Cohere cannot force a named tool, only `required` or `none`",
            )?;
            None
        }
    };

    let mut tools = Vec::new();
    let mut strict = false;
    for (i, tool) in req.tools.iter().flatten().enumerate() {
        if tool.kind != "function" {
            return Err(ApiError::invalid_param(
                format!("tools[{i}].type"),
                format!("Cohere accepts only function tools, not `{}`", tool.kind),
            ));
        }
        strict |= tool.function.strict == Some(true);
        tools.push(WireTool {
            kind: "function",
            function: WireFunction {
                name: &tool.function.name,
                description: tool.function.description.as_deref(),
                parameters: tool.function.parameters.as_ref().unwrap_or(&EMPTY_SCHEMA),
            },
        });
    }

    let response_format = match &req.response_format {
        None | Some(ResponseFormat::Text) => None,
        Some(ResponseFormat::JsonObject) => {
            Some(WireResponseFormat::JsonObject { json_schema: None })
        }
        Some(ResponseFormat::JsonSchema { json_schema }) => Some(WireResponseFormat::JsonObject {
            json_schema: json_schema.schema.as_ref(),
        }),
    };

    let messages = req
        .messages
        .iter()
        .enumerate()
        .map(|(i, m)| message(i, m))
        .collect::<Result<Vec<_>, _>>()?;
    checks::check(req, &CONSTRAINTS)?;
    let sampling =
        |param: &str, value: Option<f64>| CONSTRAINTS.sampling(attempt.settings, param, value);

    Ok(ChatBody {
        model: attempt.upstream_model,
        messages,
        tools,
        strict_tools: strict.then_some(true),
        tool_choice,
        response_format,
        max_tokens: req.max_output_tokens().or(attempt.settings.max_tokens),
        temperature: sampling("temperature", req.temperature)?,
        p: sampling("top_p", req.top_p)?,
        stop_sequences: req.stop.as_ref().map(|s| s.0.as_slice()),
        seed: req.seed,
        frequency_penalty: sampling("frequency_penalty", req.frequency_penalty)?,
        presence_penalty: sampling("presence_penalty", req.presence_penalty)?,
        stream: req.stream,
        native,
    })
}

/// Cohere requires a parameters schema; a tool without one takes no arguments.
static EMPTY_SCHEMA: std::sync::LazyLock<Value> =
    std::sync::LazyLock::new(|| serde_json::json!({"type": "object", "properties": {}}));

fn message(i: usize, m: &Message) -> Result<WireMessage<'_>, ApiError> {
    Ok(match m.role {
        Role::System | Role::Developer => WireMessage::System {
            content: text_only(i, m)?,
        },
        Role::User => WireMessage::User {
            content: user_content(i, m)?,
        },
        Role::Assistant => {
            let tool_calls: Vec<WireToolCall> = m
                .tool_calls
                .iter()
                .flatten()
                .map(|c| WireToolCall {
                    id: &c.id,
                    kind: "function",
                    function: WireFunctionCall {
                        name: &c.function.name,
                        arguments: &c.function.arguments,
                    },
                })
                .collect();
            let text = text_only(i, m)?;
            let tool_plan = if tool_calls.is_empty() {
                None
            } else {
                m.reasoning_content.as_deref().filter(|p| !p.is_empty())
            };
            WireMessage::Assistant {
                content: (!text.is_empty()).then_some(text),
                tool_calls,
                tool_plan,
            }
        }
        Role::Tool => WireMessage::Tool {
            tool_call_id: m.tool_call_id.as_deref().ok_or_else(|| {
                ApiError::invalid_param(
                    format!("messages[{i}].tool_call_id"),
                    "Cohere needs the `tool_call_id` a tool message answers",
                )
            })?,
            content: text_only(i, m)?,
        },
        Role::Function => {
            return Err(ApiError::invalid_param(
                format!("messages[{i}].role"),
                "Cohere does not accept the legacy `function` role; use `tool`",
            ))
        }
    })
}

/// The text of a message whose role takes only text.
fn text_only(i: usize, m: &Message) -> Result<String, ApiError> {
    if let Some(MessageContent::Parts(parts)) = &m.content {
        if let Some(j) = parts
            .iter()
            .position(|p| !matches!(p, ContentPart::Text { .. } | ContentPart::Refusal { .. }))
        {
            return Err(ApiError::invalid_param(
                format!("messages[{i}].content[{j}]"),
                "Cohere accepts only text in this message's role",
            ));
        }
    }
    Ok(m.text())
}

fn user_content(i: usize, m: &Message) -> Result<UserContent<'_>, ApiError> {
    let parts = match &m.content {
        None => return Ok(UserContent::Text("")),
        Some(MessageContent::Text(t)) => return Ok(UserContent::Text(t)),
        Some(MessageContent::Parts(parts)) => parts,
    };
    parts
        .iter()
        .enumerate()
        .map(|(j, part)| match part {
            ContentPart::Text { text } | ContentPart::Refusal { refusal: text } => {
                Ok(WirePart::Text { text })
            }
            ContentPart::ImageUrl { image_url } => Ok(WirePart::ImageUrl {
                image_url: WireImage {
                    url: &image_url.url,
                    detail: image_url.detail.as_deref(),
                },
            }),
            ContentPart::InputAudio { .. } | ContentPart::File { .. } => {
                Err(ApiError::invalid_param(
                    format!("messages[{i}].content[{j}]"),
                    "Cohere accepts text and images only",
                ))
            }
        })
        .collect::<Result<Vec<_>, _>>()
        .map(UserContent::Parts)
}

#[cfg(test)]
mod tests {
    use crate::api::ApiError;
    use crate::config::ModelSettings;
    use crate::providers::cohere::YAML;
    use crate::providers::testing::*;
    use crate::testkit::test;
    use serde_json::{json, Value};

    fn dropping() -> ModelSettings {
        ModelSettings {
            drop_unsupported_params: true,
            ..ModelSettings::default()
        }
    }

    fn translate(input: &str, settings: ModelSettings) -> Result<Value, ApiError> {
        let p = provider(YAML);
        let up = send_chat(p.as_ref(), input, &attempt_with("command-a", settings))?;
        Ok(serde_json::from_slice(&up.body).unwrap())
    }

    struct Case {
        name: &'static str,
        /// The OpenAI request.
        request: Value,
        settings: ModelSettings,
        /// The `/v2/chat` body.
        expected: Value,
    }

    #[test]
    fn chat_requests() {
        let cases = [
            Case {
                name: "plain text and sampling parameters",
                request: json!({"model":"m","messages":[{"role":"system","content":"be brief"},
                    {"role":"developer","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]},
                    {"role":"user","content":"hi","name":"ann"}],
                    "max_completion_tokens":50,"max_tokens":9,"temperature":0.2,"top_p":0.9,"stop":"END",
                    "seed":7,"frequency_penalty":0.1,"presence_penalty":0.3,"n":1,"user":"u1",
                    "metadata":{"x":"y"},"stream":true,"stream_options":{"include_usage":true}}),
                settings: ModelSettings::default(),
                expected: json!({"model":"command-a","messages":[{"role":"system","content":"be brief"},
                    {"role":"system","content":"a\n\nb"},{"role":"user","content":"hi"}],
                    "max_tokens":50,"temperature":0.2,"p":0.9,"stop_sequences":["END"],"seed":7,
                    "frequency_penalty":0.1,"presence_penalty":0.3,"stream":true}),
            },
            Case {
                name: "images, tools, tool turns and a JSON schema",
                request: json!({"model":"m","messages":[
                    {"role":"user","content":[{"type":"text","text":"what is this?"},
                        {"type":"image_url","image_url":{"url":"data:image/png;base64,AAA","detail":"low"}},
                        {"type":"image_url","image_url":{"url":"https://x/cat.jpg"}}]},
                    {"role":"assistant","content":null,"reasoning_content":"I will look it up.",
                        "tool_calls":[{"id":"c1","type":"function","function":{"name":"lookup","arguments":"{\"q\":\"cat\"}"}}]},
                    {"role":"tool","tool_call_id":"c1","content":[{"type":"text","text":"{\"kind\":\"cat\"}"}]},
                    {"role":"assistant","content":"A cat.","reasoning_content":"not a tool turn"}],
                    "tools":[{"type":"function","function":{"name":"lookup","description":"Looks up",
                        "parameters":{"type":"object","properties":{"q":{"type":"string"}}},"strict":true}},
                        {"type":"function","function":{"name":"now"}}],
                    "tool_choice":"required","parallel_tool_calls":true,
                    "response_format":{"type":"json_schema","json_schema":{"name":"x","schema":{"type":"object"}}}}),
                settings: ModelSettings {
                    max_tokens: Some(1024),
                    ..ModelSettings::default()
                },
                expected: json!({"model":"command-a","messages":[
                    {"role":"user","content":[{"type":"text","text":"what is this?"},
                        {"type":"image_url","image_url":{"url":"data:image/png;base64,AAA","detail":"low"}},
                        {"type":"image_url","image_url":{"url":"https://x/cat.jpg"}}]},
                    {"role":"assistant","tool_plan":"I will look it up.",
                        "tool_calls":[{"id":"c1","type":"function","function":{"name":"lookup","arguments":"{\"q\":\"cat\"}"}}]},
                    {"role":"tool","tool_call_id":"c1","content":"{\"kind\":\"cat\"}"},
                    {"role":"assistant","content":"A cat."}],
                    "tools":[{"type":"function","function":{"name":"lookup","description":"Looks up",
                        "parameters":{"type":"object","properties":{"q":{"type":"string"}}}}},
                        {"type":"function","function":{"name":"now","parameters":{"type":"object","properties":{}}}}],
                    "strict_tools":true,"tool_choice":"REQUIRED",
                    "response_format":{"type":"json_object","json_schema":{"type":"object"}},
                    "max_tokens":1024}),
            },
            Case {
                name: "json_object, tool_choice none, Cohere-only fields pass through",
                request: json!({"model":"m","messages":[{"role":"user","content":"x"}],
                    "response_format":{"type":"json_object"},"tool_choice":"none",
                    "tools":[{"type":"function","function":{"name":"f","parameters":{}}}],
                    "k":40,"safety_mode":"OFF","thinking":{"type":"disabled"}}),
                settings: ModelSettings::default(),
                expected: json!({"model":"command-a","messages":[{"role":"user","content":"x"}],
                    "response_format":{"type":"json_object"},"tool_choice":"NONE",
                    "tools":[{"type":"function","function":{"name":"f","parameters":{}}}],
                    "k":40,"safety_mode":"OFF","thinking":{"type":"disabled"}}),
            },
            Case {
                name: "unsupported parameters dropped when configured",
                request: json!({"model":"m","messages":[{"role":"user","content":"x"}],"n":2,
                    "logit_bias":{"1":5},"logprobs":true,"top_logprobs":2,"parallel_tool_calls":false,
                    "reasoning_effort":"low","tool_choice":{"type":"function","function":{"name":"f"}},
                    "response_format":{"type":"text"},"service_tier":"auto"}),
                settings: dropping(),
                expected: json!({"model":"command-a","messages":[{"role":"user","content":"x"}]}),
            },
        ];
        for case in cases {
            let got = translate(&case.request.to_string(), case.settings).unwrap();
            assert_eq!(got, case.expected, "{}", case.name);
        }
    }

    /// A request Cohere cannot take as it is (`fields` name the case).
    struct Refusal {
        /// Fields set on a one-message request.
        fields: Value,
        /// The parameter the 400 names.
        param: &'static str,
        /// Refused as a parameter Cohere lacks (dropped with `drop_unsupported_params`).
        unsupported: bool,
    }

    #[test]
    fn chat_request_refusals() {
        let cases = [
            Refusal {
                fields: json!({"n":3}),
                param: "n",
                unsupported: true,
            },
            Refusal {
                fields: json!({"logit_bias":{"1":5}}),
                param: "logit_bias",
                unsupported: true,
            },
            Refusal {
                fields: json!({"logprobs":true}),
                param: "logprobs",
                unsupported: true,
            },
            Refusal {
                fields: json!({"top_logprobs":1}),
                param: "top_logprobs",
                unsupported: true,
            },
            Refusal {
                fields: json!({"parallel_tool_calls":false}),
                param: "parallel_tool_calls",
                unsupported: true,
            },
            Refusal {
                fields: json!({"reasoning_effort":"high"}),
                param: "reasoning_effort",
                unsupported: true,
            },
            Refusal {
                fields: json!({"tool_choice":{"type":"function","function":{"name":"f"}}}),
                param: "tool_choice",
                unsupported: true,
            },
            Refusal {
                fields: json!({"service_tier":"auto"}),
                param: "service_tier",
                unsupported: true,
            },
            Refusal {
                fields: json!({"tools":[{"type":"code_interpreter","function":{"name":"f"}}]}),
                param: "tools[0].type",
                unsupported: false,
            },
            // Values OpenAI takes that Cohere's documented ranges do not.
            Refusal {
                fields: json!({"top_p":1.0}),
                param: "top_p",
                unsupported: true,
            },
            Refusal {
                fields: json!({"frequency_penalty":-0.5}),
                param: "frequency_penalty",
                unsupported: true,
            },
            // What Cohere is certain to refuse.
            Refusal {
                fields: json!({"stop":["a","b","c","d","e","f"]}),
                param: "stop",
                unsupported: false,
            },
            Refusal {
                fields: json!({"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/bmp;base64,Qk0="}}]}]}),
                param: "messages[0].content[0].image_url",
                unsupported: false,
            },
            Refusal {
                fields: json!({"messages":[{"role":"user","content":"x"},{"role":"tool","tool_call_id":"c9","content":"r"}]}),
                param: "messages[1].tool_call_id",
                unsupported: false,
            },
            Refusal {
                fields: json!({"messages":[{"role":"user","content":[{"type":"input_audio","input_audio":{"data":"x","format":"wav"}}]}]}),
                param: "messages[0].content[0]",
                unsupported: false,
            },
            Refusal {
                fields: json!({"messages":[{"role":"system","content":[{"type":"image_url","image_url":{"url":"u"}}]}]}),
                param: "messages[0].content[0]",
                unsupported: false,
            },
            Refusal {
                fields: json!({"messages":[{"role":"tool","content":"x"}]}),
                param: "messages[0].tool_call_id",
                unsupported: false,
            },
            Refusal {
                fields: json!({"messages":[{"role":"function","name":"f","content":"x"}]}),
                param: "messages[0].role",
                unsupported: false,
            },
        ];
        for case in cases {
            let param = case.param;
            let mut input = json!({"model":"m","messages":[{"role":"user","content":"x"}]});
            for (k, v) in case.fields.as_object().unwrap() {
                input[k] = v.clone();
            }
            let err = translate(&input.to_string(), ModelSettings::default()).unwrap_err();
            assert_refused(&err, param, case.unsupported, &input.to_string());
            assert!(err.message.contains("Cohere"), "{}", err.message);
        }
    }
}
