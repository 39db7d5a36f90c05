//! An OpenAI chat request → the `generateContent` body.

use super::signature::signature_from_call_id;
use super::wire::{
    Blob, Content, FileData, FunctionCall, FunctionCallingConfig, FunctionDeclaration,
    FunctionResponse, GenerateContentRequest, GenerationConfig, Part, ThinkingConfig, ToolConfig,
    ToolDeclarations,
};
use crate::api::chat::{
    ChatRequest, ContentPart, ImageSource, Message, MessageContent, ResponseFormat, Role,
    ToolChoice,
};
use crate::api::ApiError;
use crate::providers::checks::{self, Constraints, ToolNames};
use crate::providers::params::unsupported;
use crate::providers::Attempt;
use serde_json::{Map, Value};
use std::collections::HashMap;

/// Sent on the first call of a turn that has no signature (history made elsewhere); Google
/// documents it for exactly this case.
pub const SKIP_SIGNATURE: &str = "skip_thought_signature_validator";

/// Unmodelled OpenAI fields that change nothing in the answer (like the typed `user` and
/// `metadata`, which are ignored too).
const IGNORED_FIELDS: [&str; 1] = ["store"];

const NOT_ON_GEMINI: &str = "Gemini does not support it";

/// What the `generateContent` reference documents of requests.
const CONSTRAINTS: Constraints = Constraints {
    name: "Gemini",
    temperature: 0.0..=2.0,
    top_p: 0.0..=1.0,
    penalties: -2.0..=2.0,
    max_stop_sequences: 5,
    stop_needs_text: false,
    tool_names: Some(ToolNames {
        max_len: 128,
        extra: &['.', ':'],
    }),
    image_types: &[
        "image/png",
        "image/jpeg",
        "image/webp",
        "image/heic",
        "image/heif",
    ],
    max_image_bytes: 20 * 1024 * 1024,
    max_images: 3000,
};

/// `candidateCount` goes from 1 to 8.
const MAX_CANDIDATES: u32 = 8;

/// The `generateContent` body for a chat request (no model: it is in the path).
pub fn generate_content_body(req: &ChatRequest, attempt: &Attempt) -> Result<Vec<u8>, ApiError> {
    let refuse = |param: &str| unsupported(attempt.settings, param, NOT_ON_GEMINI);
    if req.logprobs == Some(true) {
        refuse("logprobs")?;
    }
    if req.top_logprobs.is_some() {
        refuse("top_logprobs")?;
    }
    if req.logit_bias.as_ref().is_some_and(|b| !b.is_empty()) {
        refuse("logit_bias")?;
    }
    if req.parallel_tool_calls == Some(false) {
        refuse("parallel_tool_calls")?;
    }
    let mut top_k = None;
    for (name, value) in &req.extra {
        match name.as_str() {
            "top_k" => {
                top_k = Some(value.as_u64().ok_or_else(|| {
                    ApiError::invalid_param("top_k", "`top_k` must be a positive integer")
                })?)
            }
            n if IGNORED_FIELDS.contains(&n) => {}
            other => refuse(other)?,
        }
    }

    let (system_instruction, contents) = contents(&req.messages)?;
    let candidate_count = match req.n {
        Some(n) if n > MAX_CANDIDATES => {
            unsupported(
                attempt.settings,
                "n",
                &format!("Gemini returns at most {MAX_CANDIDATES} candidates"),
            )?;
            None
        }
        n => n,
    };
    let sampling =
        |param: &str, value: Option<f64>| CONSTRAINTS.sampling(attempt.settings, param, value);
    let tools = match &req.tools {
        Some(tools) if !tools.is_empty() => vec![ToolDeclarations {
            function_declarations: tools
                .iter()
                .enumerate()
                .map(|(i, t)| {
                    if t.kind != "function" {
                        return Err(ApiError::invalid_param(
                            format!("tools[{i}].type"),
                            format!("tool type `{}` is not supported by Gemini", t.kind),
                        ));
                    }
                    Ok(FunctionDeclaration {
                        name: t.function.name.clone(),
                        description: t.function.description.clone(),
                        parameters_json_schema: t.function.parameters.clone(),
                    })
                })
                .collect::<Result<_, _>>()?,
        }],
        _ => Vec::new(),
    };
    checks::check(req, &CONSTRAINTS)?;
    if contents.is_empty() {
        return Err(checks::empty_conversation(CONSTRAINTS.name));
    }
    let tool_config = req.tool_choice.as_ref().map(|choice| {
        let (mode, allowed) = match choice {
            ToolChoice::None => ("NONE", Vec::new()),
            ToolChoice::Auto => ("AUTO", Vec::new()),
            ToolChoice::Required => ("ANY", Vec::new()),
            ToolChoice::Function(name) => ("ANY", vec![name.clone()]),
        };
        ToolConfig {
            function_calling_config: FunctionCallingConfig {
                mode,
                allowed_function_names: allowed,
            },
        }
    });
    let (response_mime_type, response_json_schema) = match &req.response_format {
        None | Some(ResponseFormat::Text) => (None, None),
        Some(ResponseFormat::JsonObject) => (Some("application/json"), None),
        Some(ResponseFormat::JsonSchema { json_schema }) => {
            (Some("application/json"), json_schema.schema.clone())
        }
    };
    let generation_config = GenerationConfig {
        stop_sequences: req.stop.as_ref().map(|s| s.0.clone()).unwrap_or_default(),
        candidate_count,
        max_output_tokens: req.max_output_tokens().or(attempt.settings.max_tokens),
        temperature: sampling("temperature", req.temperature)?,
        top_p: sampling("top_p", req.top_p)?,
        top_k,
        seed: req.seed,
        presence_penalty: sampling("presence_penalty", req.presence_penalty)?,
        frequency_penalty: sampling("frequency_penalty", req.frequency_penalty)?,
        response_mime_type,
        response_json_schema,
        thinking_config: req
            .reasoning_effort
            .as_deref()
            .map(|effort| thinking_config(attempt.upstream_model, effort)),
    };
    let body = GenerateContentRequest {
        contents,
        system_instruction,
        tools,
        tool_config,
        generation_config,
    };
    serde_json::to_vec(&body).map_err(|e| ApiError::server(e.to_string()))
}

/// `reasoning_effort` → a thinking budget for Gemini 2.x, a thinking level for later models.
fn thinking_config(model: &str, effort: &str) -> ThinkingConfig {
    let model = model.strip_prefix("models/").unwrap_or(model);
    if model.starts_with("gemini-2") {
        let budget = match effort {
            "none" | "minimal" => 0,
            "low" => 1024,
            "high" => 24576,
            _ => 8192,
        };
        ThinkingConfig {
            thinking_budget: Some(budget),
            thinking_level: None,
        }
    } else {
        let level = if effort == "none" { "minimal" } else { effort };
        ThinkingConfig {
            thinking_budget: None,
            thinking_level: Some(level.to_owned()),
        }
    }
}

/// OpenAI messages → Gemini `systemInstruction` and `contents` (roles `user` and `model`, each
/// run of same-role turns merged, tool results as `functionResponse` parts of a user turn).
fn contents(messages: &[Message]) -> Result<(Option<Content>, Vec<Content>), ApiError> {
    let mut system: Vec<Part> = Vec::new();
    let mut contents: Vec<Content> = Vec::new();
    let mut call_names: HashMap<&str, &str> = HashMap::new();
    for (i, m) in messages.iter().enumerate() {
        let (role, parts) = match m.role {
            Role::System | Role::Developer => {
                system.extend(text_parts(m, i)?);
                continue;
            }
            Role::User => ("user", user_parts(m, i)?),
            Role::Assistant => {
                for call in m.tool_calls.iter().flatten() {
                    call_names.insert(call.id.as_str(), call.function.name.as_str());
                }
                ("model", assistant_parts(m, i)?)
            }
            Role::Tool | Role::Function => {
                let name = m
                    .tool_call_id
                    .as_deref()
                    .and_then(|id| call_names.get(id).copied())
                    .or(m.name.as_deref())
                    .ok_or_else(|| {
                        ApiError::invalid_param(
                            format!("messages[{i}].tool_call_id"),
                            "no earlier assistant tool call has this id",
                        )
                    })?;
                let text = m.text();
                let output = serde_json::from_str::<Value>(&text).unwrap_or(Value::String(text));
                let mut response = Map::new();
                response.insert("output".into(), output);
                let part = Part {
                    function_response: Some(FunctionResponse {
                        name: name.to_owned(),
                        response: Value::Object(response),
                    }),
                    ..Part::default()
                };
                ("user", vec![part])
            }
        };
        if parts.is_empty() {
            continue;
        }
        match contents.last_mut() {
            Some(last) if last.role.as_deref() == Some(role) => last.parts.extend(parts),
            _ => contents.push(Content {
                role: Some(role.to_owned()),
                parts,
            }),
        }
    }
    let system = (!system.is_empty()).then_some(Content {
        role: None,
        parts: system,
    });
    Ok((system, contents))
}

fn text_part(text: &str) -> Option<Part> {
    (!text.is_empty()).then(|| Part {
        text: Some(text.to_owned()),
        ..Part::default()
    })
}

/// System and developer messages: text only.
fn text_parts(m: &Message, i: usize) -> Result<Vec<Part>, ApiError> {
    if let Some(MessageContent::Parts(parts)) = &m.content {
        if let Some(j) = parts
            .iter()
            .position(|p| !matches!(p, ContentPart::Text { .. }))
        {
            return Err(ApiError::invalid_param(
                format!("messages[{i}].content[{j}]"),
                "system messages take text parts only",
            ));
        }
    }
    Ok(text_part(&m.text()).into_iter().collect())
}

fn user_parts(m: &Message, i: usize) -> Result<Vec<Part>, ApiError> {
    let parts = match &m.content {
        None => return Ok(Vec::new()),
        Some(MessageContent::Text(t)) => return Ok(text_part(t).into_iter().collect()),
        Some(MessageContent::Parts(parts)) => parts,
    };
    let mut out = Vec::with_capacity(parts.len());
    for (j, p) in parts.iter().enumerate() {
        let param = || format!("messages[{i}].content[{j}]");
        let part = match p {
            ContentPart::Text { text } => text_part(text),
            ContentPart::Refusal { refusal } => text_part(refusal),
            ContentPart::ImageUrl { image_url } => Some(match image_url.source() {
                ImageSource::Base64 { media_type, data } => inline(media_type, data),
                ImageSource::Url(url) => file(media_type_of(url).unwrap_or("image/jpeg"), url),
            }),
            ContentPart::InputAudio { input_audio } => Some(inline(
                &format!("audio/{}", input_audio.format),
                &input_audio.data,
            )),
            ContentPart::File { file: f } => Some(file_part(f).ok_or_else(|| {
                ApiError::invalid_param(
                    param(),
                    "a file part needs `file_data` (a base64 data URL) or `file_id` (a Gemini file URI) with a known media type (`format`)",
                )
            })?),
        };
        out.extend(part);
    }
    Ok(out)
}

fn inline(mime_type: &str, data: &str) -> Part {
    Part {
        inline_data: Some(Blob {
            mime_type: mime_type.to_owned(),
            data: data.to_owned(),
        }),
        ..Part::default()
    }
}

fn file(mime_type: &str, uri: &str) -> Part {
    Part {
        file_data: Some(FileData {
            mime_type: mime_type.to_owned(),
            file_uri: uri.to_owned(),
        }),
        ..Part::default()
    }
}

/// OpenAI `file` parts: `file_data` as a data URL becomes inline bytes; `file_id` is taken as a
/// Gemini file URI (Files API, `gs://` on Vertex), typed by `format` or its extension.
fn file_part(f: &Map<String, Value>) -> Option<Part> {
    let field = |name: &str| f.get(name).and_then(Value::as_str);
    if let Some(data_url) = field("file_data") {
        let (meta, data) = data_url.strip_prefix("data:")?.split_once(',')?;
        return Some(inline(meta.strip_suffix(";base64")?, data));
    }
    let uri = field("file_id")?;
    let mime = field("format")
        .or_else(|| field("filename").and_then(media_type_of))
        .or_else(|| media_type_of(uri))?;
    Some(file(mime, uri))
}

/// The media type a URL's extension implies, for `fileData` (which requires one).
fn media_type_of(url: &str) -> Option<&'static str> {
    let path = url.split(['?', '#']).next().unwrap_or(url);
    let ext = path.rsplit_once('.')?.1.to_ascii_lowercase();
    Some(match ext.as_str() {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "webp" => "image/webp",
        "gif" => "image/gif",
        "heic" => "image/heic",
        "heif" => "image/heif",
        "pdf" => "application/pdf",
        "txt" => "text/plain",
        "mp3" => "audio/mp3",
        "wav" => "audio/wav",
        "mp4" => "video/mp4",
        _ => return None,
    })
}

fn assistant_parts(m: &Message, i: usize) -> Result<Vec<Part>, ApiError> {
    let mut parts: Vec<Part> = text_part(&m.text()).into_iter().collect();
    let calls = m.tool_calls.as_deref().unwrap_or_default();
    let first_call = parts.len();
    for (j, call) in calls.iter().enumerate() {
        let args = if call.function.arguments.trim().is_empty() {
            Value::Object(Map::new())
        } else {
            match serde_json::from_str::<Value>(&call.function.arguments) {
                Ok(v @ Value::Object(_)) => v,
                _ => {
                    return Err(ApiError::invalid_param(
                        format!("messages[{i}].tool_calls[{j}].function.arguments"),
                        "tool call arguments must be a JSON object",
                    ))
                }
            }
        };
        parts.push(Part {
            thought_signature: signature_from_call_id(&call.id),
            function_call: Some(FunctionCall {
                name: call.function.name.clone(),
                args,
            }),
            ..Part::default()
        });
    }
    if !calls.is_empty() && parts.iter().all(|p| p.thought_signature.is_none()) {
        if let Some(first) = parts.get_mut(first_call) {
            first.thought_signature = Some(SKIP_SIGNATURE.to_owned());
        }
    }
    Ok(parts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ModelSettings;
    use crate::providers::gemini::signature::tool_call_id;
    use crate::providers::gemini::YAML;
    use crate::providers::testing::*;
    use crate::testkit::test;
    use serde_json::json;

    fn body_of(model: &str, settings: ModelSettings, request: &str) -> Result<Value, ApiError> {
        let p = provider(YAML);
        let up = send_chat(p.as_ref(), request, &attempt_with(model, settings))?;
        Ok(serde_json::from_slice(&up.body).unwrap())
    }

    fn sig_id(sig: &str) -> String {
        tool_call_id("req-1", 0, Some(sig))
    }

    struct Case {
        name: &'static str,
        /// The upstream model id (thinking depends on its generation).
        model: &'static str,
        settings: ModelSettings,
        request: Value,
        expected: Value,
    }

    #[test]
    fn request_bodies() {
        let signed = sig_id("Zm9v+/8=");
        let cases = [
            Case {
                name: "system, text and sampling",
                model: "gemini-2.5-flash",
                settings: ModelSettings::default(),
                request: json!({"model":"m","messages":[
                    {"role":"system","content":"be brief"},
                    {"role":"developer","content":[{"type":"text","text":"be kind"}]},
                    {"role":"user","content":"hi"}],
                    "temperature":0.2,"top_p":0.9,"max_tokens":50,"stop":"END","seed":7,
                    "presence_penalty":0.1,"frequency_penalty":0.3,"n":2,"top_k":40,
                    "user":"u1","metadata":{"a":"b"},"store":false,
                    "stream_options":{"include_usage":true}}),
                expected: json!({"contents":[{"role":"user","parts":[{"text":"hi"}]}],
                    "systemInstruction":{"parts":[{"text":"be brief"},{"text":"be kind"}]},
                    "generationConfig":{"stopSequences":["END"],"candidateCount":2,
                    "maxOutputTokens":50,"temperature":0.2,"topP":0.9,"topK":40,"seed":7,
                    "presencePenalty":0.1,"frequencyPenalty":0.3}}),
            },
            Case {
                name: "images, audio and files",
                model: "gemini-2.5-flash",
                settings: ModelSettings::default(),
                request: json!({"model":"m","messages":[{"role":"user","content":[
                    {"type":"text","text":"look"},
                    {"type":"image_url","image_url":{"url":"data:image/png;base64,iVBO"}},
                    {"type":"image_url","image_url":{"url":"https://x.test/cat.webp?s=1"}},
                    {"type":"image_url","image_url":{"url":"gs://bucket/dog"}},
                    {"type":"input_audio","input_audio":{"data":"UklG","format":"wav"}},
                    {"type":"file","file":{"file_data":"data:application/pdf;base64,JVBE","filename":"a.pdf"}},
                    {"type":"file","file":{"file_id":"https://generativelanguage.googleapis.com/v1beta/files/abc","format":"video/mp4"}}
                ]}]}),
                expected: json!({"contents":[{"role":"user","parts":[
                    {"text":"look"},
                    {"inlineData":{"mimeType":"image/png","data":"iVBO"}},
                    {"fileData":{"mimeType":"image/webp","fileUri":"https://x.test/cat.webp?s=1"}},
                    {"fileData":{"mimeType":"image/jpeg","fileUri":"gs://bucket/dog"}},
                    {"inlineData":{"mimeType":"audio/wav","data":"UklG"}},
                    {"inlineData":{"mimeType":"application/pdf","data":"JVBE"}},
                    {"fileData":{"mimeType":"video/mp4","fileUri":"https://generativelanguage.googleapis.com/v1beta/files/abc"}}
                ]}]}),
            },
            Case {
                name: "tools, a signed tool turn and merged results",
                model: "gemini-3-pro-preview",
                settings: ModelSettings::default(),
                request: json!({"model":"m","messages":[
                    {"role":"user","content":"weather in Paris and Rome?"},
                    {"role":"assistant","content":null,"tool_calls":[
                        {"id":signed,"type":"function","function":{"name":"weather","arguments":"{\"city\":\"Paris\"}"}},
                        {"id":"call_req1-1","type":"function","function":{"name":"weather","arguments":"{\"city\":\"Rome\"}"}}]},
                    {"role":"tool","tool_call_id":signed,"content":"{\"temp\":21}"},
                    {"role":"tool","tool_call_id":"call_req1-1","content":"sunny"},
                    {"role":"user","content":"thanks"}],
                    "tools":[{"type":"function","function":{"name":"weather","description":"Weather now",
                        "parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"],"additionalProperties":false}}}],
                    "tool_choice":{"type":"function","function":{"name":"weather"}}}),
                expected: json!({"contents":[
                    {"role":"user","parts":[{"text":"weather in Paris and Rome?"}]},
                    {"role":"model","parts":[
                        {"thoughtSignature":"Zm9v+/8=","functionCall":{"name":"weather","args":{"city":"Paris"}}},
                        {"functionCall":{"name":"weather","args":{"city":"Rome"}}}]},
                    {"role":"user","parts":[
                        {"functionResponse":{"name":"weather","response":{"output":{"temp":21}}}},
                        {"functionResponse":{"name":"weather","response":{"output":"sunny"}}},
                        {"text":"thanks"}]}],
                    "tools":[{"functionDeclarations":[{"name":"weather","description":"Weather now",
                        "parametersJsonSchema":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"],"additionalProperties":false}}]}],
                    "toolConfig":{"functionCallingConfig":{"mode":"ANY","allowedFunctionNames":["weather"]}}}),
            },
            Case {
                name: "a tool turn from another provider gets the documented skip signature",
                model: "gemini-3-pro-preview",
                settings: ModelSettings::default(),
                request: json!({"model":"m","messages":[
                    {"role":"user","content":"hi"},
                    {"role":"assistant","content":"let me look","tool_calls":[
                        {"id":"toolu_01","type":"function","function":{"name":"look","arguments":""}}]},
                    {"role":"tool","tool_call_id":"toolu_01","content":"found"}],
                    "tool_choice":"required"}),
                expected: json!({"contents":[
                    {"role":"user","parts":[{"text":"hi"}]},
                    {"role":"model","parts":[{"text":"let me look"},
                        {"thoughtSignature":"skip_thought_signature_validator","functionCall":{"name":"look","args":{}}}]},
                    {"role":"user","parts":[{"functionResponse":{"name":"look","response":{"output":"found"}}}]}],
                    "toolConfig":{"functionCallingConfig":{"mode":"ANY"}}}),
            },
            Case {
                name: "json schema, thinking budget for 2.x, default max tokens from the model",
                model: "gemini-2.5-pro",
                settings: ModelSettings {
                    max_tokens: Some(4096),
                    ..ModelSettings::default()
                },
                request: json!({"model":"m","messages":[{"role":"user","content":"x"}],"reasoning_effort":"low",
                    "response_format":{"type":"json_schema","json_schema":{"name":"s","schema":{"type":"object"}}}}),
                expected: json!({"contents":[{"role":"user","parts":[{"text":"x"}]}],
                    "generationConfig":{"maxOutputTokens":4096,"responseMimeType":"application/json",
                    "responseJsonSchema":{"type":"object"},"thinkingConfig":{"thinkingBudget":1024}}}),
            },
            Case {
                name: "json object, thinking level for later models, tool_choice none",
                model: "gemini-3-flash-preview",
                settings: ModelSettings::default(),
                request: json!({"model":"m","messages":[{"role":"user","content":"x"}],"reasoning_effort":"high",
                    "response_format":{"type":"json_object"},"tool_choice":"none","max_completion_tokens":9}),
                expected: json!({"contents":[{"role":"user","parts":[{"text":"x"}]}],
                    "toolConfig":{"functionCallingConfig":{"mode":"NONE"}},
                    "generationConfig":{"maxOutputTokens":9,"responseMimeType":"application/json",
                    "thinkingConfig":{"thinkingLevel":"high"}}}),
            },
        ];
        for case in cases {
            let got = body_of(case.model, case.settings, &case.request.to_string()).unwrap();
            assert_eq!(got, case.expected, "{}", case.name);
        }
    }

    /// A request Gemini cannot take as it is (the request names the case).
    struct Refusal {
        request: Value,
        /// The parameter the 400 names.
        param: &'static str,
        /// Refused as a parameter Gemini lacks (dropped with `drop_unsupported_params`).
        unsupported: bool,
    }

    #[test]
    fn request_refusals_name_the_parameter() {
        let cases = [
            Refusal {
                request: json!({"model":"m","messages":[{"role":"user","content":"x"}],"logprobs":true}),
                param: "logprobs",
                unsupported: true,
            },
            Refusal {
                request: json!({"model":"m","messages":[{"role":"user","content":"x"}],"top_logprobs":2}),
                param: "top_logprobs",
                unsupported: true,
            },
            Refusal {
                request: json!({"model":"m","messages":[{"role":"user","content":"x"}],"logit_bias":{"1":2}}),
                param: "logit_bias",
                unsupported: true,
            },
            Refusal {
                request: json!({"model":"m","messages":[{"role":"user","content":"x"}],"parallel_tool_calls":false}),
                param: "parallel_tool_calls",
                unsupported: true,
            },
            Refusal {
                request: json!({"model":"m","messages":[{"role":"user","content":"x"}],"service_tier":"flex"}),
                param: "service_tier",
                unsupported: true,
            },
            Refusal {
                request: json!({"model":"m","messages":[{"role":"user","content":"x"}],"top_k":"many"}),
                param: "top_k",
                unsupported: false,
            },
            Refusal {
                request: json!({"model":"m","messages":[{"role":"user","content":"x"}],"tools":[{"type":"code_interpreter","function":{"name":"x"}}]}),
                param: "tools[0].type",
                unsupported: false,
            },
            Refusal {
                request: json!({"model":"m","messages":[{"role":"assistant","tool_calls":[
                    {"id":"a","type":"function","function":{"name":"f","arguments":"[1]"}}]}]}),
                param: "messages[0].tool_calls[0].function.arguments",
                unsupported: false,
            },
            Refusal {
                request: json!({"model":"m","messages":[{"role":"tool","tool_call_id":"nope","content":"x"}]}),
                param: "messages[0].tool_call_id",
                unsupported: false,
            },
            Refusal {
                request: json!({"model":"m","messages":[{"role":"system","content":[
                    {"type":"image_url","image_url":{"url":"https://x/a.png"}}]}]}),
                param: "messages[0].content[0]",
                unsupported: false,
            },
            Refusal {
                request: json!({"model":"m","messages":[{"role":"user","content":[
                    {"type":"file","file":{"file_id":"file-abc"}}]}]}),
                param: "messages[0].content[0]",
                unsupported: false,
            },
            // What Gemini is certain to refuse.
            Refusal {
                request: json!({"model":"m","messages":[{"role":"system","content":"S"},{"role":"user","content":""}]}),
                param: "messages",
                unsupported: false,
            },
            Refusal {
                request: json!({"model":"m","messages":[{"role":"user","content":"x"}],"stop":["a","b","c","d","e","f"]}),
                param: "stop",
                unsupported: false,
            },
            Refusal {
                request: json!({"model":"m","messages":[{"role":"user","content":"x"}],
                    "tools":[{"type":"function","function":{"name":"read file"}}]}),
                param: "tools[0].function.name",
                unsupported: false,
            },
            Refusal {
                request: json!({"model":"m","messages":[{"role":"user","content":[
                    {"type":"image_url","image_url":{"url":"data:image/gif;base64,R0lG"}}]}]}),
                param: "messages[0].content[0].image_url",
                unsupported: false,
            },
            Refusal {
                request: json!({"model":"m","messages":[{"role":"user","content":"x"},
                    {"role":"assistant","tool_calls":[{"id":"a","type":"function","function":{"name":"f","arguments":"{}"}},
                        {"id":"b","type":"function","function":{"name":"f","arguments":"{}"}}]},
                    {"role":"tool","tool_call_id":"a","content":"1"},{"role":"user","content":"and?"}]}),
                param: "messages[1].tool_calls[1]",
                unsupported: false,
            },
            Refusal {
                request: json!({"model":"m","messages":[{"role":"user","content":"x"}],"temperature":2.5}),
                param: "temperature",
                unsupported: false,
            },
            Refusal {
                request: json!({"model":"m","messages":[{"role":"user","content":"x"}],"n":9}),
                param: "n",
                unsupported: true,
            },
        ];
        for case in cases {
            let input = &case.request;
            let err = body_of(
                "gemini-2.5-flash",
                ModelSettings::default(),
                &input.to_string(),
            )
            .unwrap_err();
            assert_refused(&err, case.param, case.unsupported, &input.to_string());
        }
        let lenient = ModelSettings {
            drop_unsupported_params: true,
            ..ModelSettings::default()
        };
        let input = json!({"model":"m","messages":[{"role":"user","content":"x"}],"logprobs":true,
            "top_logprobs":2,"parallel_tool_calls":false,"service_tier":"flex"});
        let got = body_of("gemini-2.5-flash", lenient, &input.to_string()).unwrap();
        assert_eq!(
            got,
            json!({"contents":[{"role":"user","parts":[{"text":"x"}]}]})
        );
    }
}
