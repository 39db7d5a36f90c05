//! Request constraints the providers document, checked before a request is sent: a request a
//! provider is certain to refuse gets a local 400 naming the field by its OpenAI path
//! (`messages[2].tool_call_id`), not a round trip and the provider's own wording. Each
//! provider states its limits in one [`Constraints`]; what only its translation knows (an
//! empty conversation once system messages are lifted out, its own roles) it checks itself.
//!
//! A value OpenAI's API accepts but the provider does not (a temperature of 1.5 for a model
//! that takes 0 to 1) is an unsupported parameter: refused, or left out where the model drops
//! them (`params::unsupported`). Anything else the provider cannot take is refused.

use super::params::unsupported;
use crate::api::chat::{ChatRequest, ContentPart, ImageSource, MessageContent, Role, ToolChoice};
use crate::api::ApiError;
use crate::config::ModelSettings;
use std::ops::RangeInclusive;

/// What a provider documents of the requests it takes (`None`, `usize::MAX`: not limited, or
/// not documented).
pub struct Constraints {
    /// The provider as messages name it ("Anthropic").
    pub name: &'static str,
    pub temperature: RangeInclusive<f64>,
    pub top_p: RangeInclusive<f64>,
    /// `frequency_penalty` and `presence_penalty`, where they are sent.
    pub penalties: RangeInclusive<f64>,
    pub max_stop_sequences: usize,
    /// Each stop sequence must hold something besides white space (Anthropic).
    pub stop_needs_text: bool,
    pub tool_names: Option<ToolNames>,
    /// Media types of inline (`data:`) images; empty: any.
    pub image_types: &'static [&'static str],
    /// Largest inline image, decoded.
    pub max_image_bytes: usize,
    pub max_images: usize,
}

/// The names a provider gives tools: letters, digits, `_`, `-` and `extra`, up to `max_len`.
pub struct ToolNames {
    pub max_len: usize,
    pub extra: &'static [char],
}

/// OpenAI's own ranges: a value outside them is invalid whatever the provider.
const OPENAI_TEMPERATURE: RangeInclusive<f64> = 0.0..=2.0;
const OPENAI_TOP_P: RangeInclusive<f64> = 0.0..=1.0;
const OPENAI_PENALTIES: RangeInclusive<f64> = -2.0..=2.0;

/// OpenAI's own range of a sampling parameter, and the provider's.
pub fn openai_range(param: &str) -> RangeInclusive<f64> {
    match param {
        "temperature" => OPENAI_TEMPERATURE,
        "top_p" => OPENAI_TOP_P,
        _ => OPENAI_PENALTIES,
    }
}

impl Constraints {
    fn range(&self, param: &str) -> &RangeInclusive<f64> {
        match param {
            "temperature" => &self.temperature,
            "top_p" => &self.top_p,
            _ => &self.penalties,
        }
    }

    /// A sampling parameter (`temperature`, `top_p`, `frequency_penalty`,
    /// `presence_penalty`) as the provider takes it: a 400 outside OpenAI's own range; outside
    /// the provider's only, unsupported (`None` when the model drops it).
    pub fn sampling(
        &self,
        settings: &ModelSettings,
        param: &str,
        value: Option<f64>,
    ) -> Result<Option<f64>, ApiError> {
        let Some(value) = value else {
            return Ok(None);
        };
        let openai = openai_range(param);
        if !openai.contains(&value) {
            return Err(ApiError::invalid_param(
                param,
                format!(
                    "`{param}` must be between {} and {}.",
                    openai.start(),
                    openai.end()
                ),
            ));
        }
        let provider = self.range(param);
        if provider.contains(&value) {
            return Ok(Some(value));
        }
        let why = format!(
            "{} accepts values from {} to {}",
            self.name,
            provider.start(),
            provider.end()
        );
        unsupported(settings, param, &why)?;
        Ok(None)
    }
}

/// Runs the shared checks on a chat request: output cap, stop sequences, tools, images, tool
/// results (the sampling parameters are checked where they are translated, by
/// [`Constraints::sampling`], so that a dropped one is left out).
pub fn check(req: &ChatRequest, c: &Constraints) -> Result<(), ApiError> {
    max_tokens(req)?;
    stop_sequences(req, c)?;
    tools(req, c)?;
    images(req, c)?;
    tool_results(req, c.name)
}

fn max_tokens(req: &ChatRequest) -> Result<(), ApiError> {
    for (param, value) in [
        ("max_completion_tokens", req.max_completion_tokens),
        ("max_tokens", req.max_tokens),
    ] {
        if value == Some(0) {
            return Err(ApiError::invalid_param(
                param,
                format!("`{param}` must be at least 1."),
            ));
        }
    }
    Ok(())
}

fn stop_sequences(req: &ChatRequest, c: &Constraints) -> Result<(), ApiError> {
    let stops = req
        .stop
        .as_ref()
        .map(|s| s.0.as_slice())
        .unwrap_or_default();
    if stops.len() > c.max_stop_sequences {
        return Err(ApiError::invalid_param(
            "stop",
            format!(
                "{} accepts at most {} stop sequences; {} were given.",
                c.name,
                c.max_stop_sequences,
                stops.len()
            ),
        ));
    }
    if c.stop_needs_text {
        if let Some(i) = stops.iter().position(|s| s.trim().is_empty()) {
            let param = if stops.len() == 1 {
                "stop".to_owned()
            } else {
                format!("stop[{i}]")
            };
            return Err(ApiError::invalid_param(
                param,
                format!(
                    "{} refuses stop sequences that are empty or only white space.",
                    c.name
                ),
            ));
        }
    }
    Ok(())
}

/// Tool names the provider takes, each once; a named `tool_choice` among them.
fn tools(req: &ChatRequest, c: &Constraints) -> Result<(), ApiError> {
    let tools = req.tools.as_deref().unwrap_or_default();
    for (i, tool) in tools.iter().enumerate() {
        let name = tool.function.name.as_str();
        if let Some(rule) = &c.tool_names {
            let allowed = |ch: char| {
                ch.is_ascii_alphanumeric() || ch == '_' || ch == '-' || rule.extra.contains(&ch)
            };
            if name.is_empty() || name.len() > rule.max_len || !name.chars().all(allowed) {
                let extra: String = rule.extra.iter().map(|ch| format!(", `{ch}`")).collect();
                return Err(ApiError::invalid_param(
                    format!("tools[{i}].function.name"),
                    format!(
                        "{} takes tool names of 1 to {} letters, digits, `_`, `-`{extra}; `{name}` is not one.",
                        c.name, rule.max_len,
                    ),
                ));
            }
        }
        if tools
            .get(..i)
            .unwrap_or_default()
            .iter()
            .any(|t| t.function.name == name)
        {
            return Err(ApiError::invalid_param(
                format!("tools[{i}].function.name"),
                format!(
                    "{} needs tool names to be unique; `{name}` is given twice.",
                    c.name
                ),
            ));
        }
    }
    if let Some(ToolChoice::Function(name)) = &req.tool_choice {
        if !tools.is_empty() && !tools.iter().any(|t| &t.function.name == name) {
            return Err(ApiError::invalid_param(
                "tool_choice",
                format!(
                    "{} needs `tool_choice` to name one of the `tools`; `{name}` is not one.",
                    c.name
                ),
            ));
        }
    }
    Ok(())
}

/// Inline images of a type, a size and a number the provider takes.
fn images(req: &ChatRequest, c: &Constraints) -> Result<(), ApiError> {
    let mut count = 0;
    for (i, m) in req.messages.iter().enumerate() {
        let Some(MessageContent::Parts(parts)) = &m.content else {
            continue;
        };
        for (j, part) in parts.iter().enumerate() {
            let ContentPart::ImageUrl { image_url } = part else {
                continue;
            };
            count += 1;
            let param = || format!("messages[{i}].content[{j}].image_url");
            if count > c.max_images {
                return Err(ApiError::invalid_param(
                    param(),
                    format!(
                        "{} takes at most {} images in a request.",
                        c.name, c.max_images
                    ),
                ));
            }
            let ImageSource::Base64 { media_type, data } = image_url.source() else {
                continue;
            };
            if !c.image_types.is_empty() && !c.image_types.contains(&media_type) {
                return Err(ApiError::invalid_param(
                    param(),
                    format!(
                        "{} takes images of type {}, not `{media_type}`.",
                        c.name,
                        c.image_types.join(", ")
                    ),
                ));
            }
            // Base64: four characters for three bytes.
            let bytes = data.trim_end_matches('=').len() / 4 * 3;
            if bytes > c.max_image_bytes {
                return Err(ApiError::invalid_param(
                    param(),
                    format!(
                        "{} takes images of at most {} MB; this one is {:.1} MB.",
                        c.name,
                        c.max_image_bytes as f64 / 1e6,
                        bytes as f64 / 1e6
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// Every tool message answers a call of the assistant message right before it (only tool
/// messages between), and every call is answered before the conversation goes on.
fn tool_results(req: &ChatRequest, name: &str) -> Result<(), ApiError> {
    // The calls of the last assistant message not answered yet: (message, call, id).
    let mut pending: Vec<(usize, usize, &str)> = Vec::new();
    for (i, m) in req.messages.iter().enumerate() {
        if m.role == Role::Tool {
            let Some(id) = m.tool_call_id.as_deref() else {
                continue;
            };
            match pending.iter().position(|(_, _, call)| *call == id) {
                Some(at) => {
                    pending.remove(at);
                }
                None => {
                    return Err(ApiError::invalid_param(
                        format!("messages[{i}].tool_call_id"),
                        format!(
                            "{name} needs a tool message to answer a call of the assistant message right before it; no call `{id}` is waiting for its result."
                        ),
                    ))
                }
            }
            continue;
        }
        if let Some((at, j, id)) = pending.first() {
            return Err(ApiError::invalid_param(
                format!("messages[{at}].tool_calls[{j}]"),
                format!("{name} needs the result of every tool call right after it; call `{id}` has none."),
            ));
        }
        if m.role == Role::Assistant {
            pending.extend(
                m.tool_calls
                    .iter()
                    .flatten()
                    .enumerate()
                    .map(|(j, call)| (i, j, call.id.as_str())),
            );
        }
    }
    match pending.first() {
        Some((at, j, id)) => Err(ApiError::invalid_param(
            format!("messages[{at}].tool_calls[{j}]"),
            format!(
                "{name} needs the result of every tool call right after it; call `{id}` has none."
            ),
        )),
        None => Ok(()),
    }
}

/// A 400 for a conversation with nothing but system messages (the providers that take the
/// system prompt apart need at least one message besides).
pub fn empty_conversation(name: &str) -> ApiError {
    ApiError::invalid_param(
        "messages",
        format!(
            "{name} needs at least one user or assistant message with content besides system and developer messages."
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::testing::chat_request;
    use crate::testkit::test;

    const TEST: Constraints = Constraints {
        name: "Test",
        temperature: 0.0..=1.0,
        top_p: 0.0..=1.0,
        penalties: 0.0..=1.0,
        max_stop_sequences: 2,
        stop_needs_text: true,
        tool_names: Some(ToolNames {
            max_len: 8,
            extra: &['.'],
        }),
        image_types: &["image/png"],
        max_image_bytes: 6,
        max_images: 2,
    };

    const USER: &str = r#"{"role":"user","content":"x"}"#;
    const CALLS: &str = r#"{"role":"assistant","tool_calls":[{"id":"a","type":"function","function":{"name":"f","arguments":"{}"}},{"id":"b","type":"function","function":{"name":"f","arguments":"{}"}}]}"#;

    fn tool(id: &str) -> String {
        format!(r#"{{"role":"tool","tool_call_id":"{id}","content":"r"}}"#)
    }

    fn image(url: &str) -> String {
        format!(
            r#"{{"role":"user","content":[{{"type":"image_url","image_url":{{"url":"{url}"}}}}]}}"#
        )
    }

    fn tools(names: &[&str]) -> String {
        let tools: Vec<String> = names
            .iter()
            .map(|n| format!(r#"{{"type":"function","function":{{"name":"{n}"}}}}"#))
            .collect();
        format!(r#""tools":[{}]"#, tools.join(","))
    }

    /// A request (its messages, then other fields) and the param its 400 names, if any.
    struct Case {
        name: &'static str,
        messages: Vec<String>,
        fields: String,
        refused: Option<&'static str>,
    }

    fn case(
        name: &'static str,
        messages: &[&str],
        fields: &str,
        refused: Option<&'static str>,
    ) -> Case {
        Case {
            name,
            messages: messages.iter().map(|m| (*m).to_owned()).collect(),
            fields: fields.to_owned(),
            refused,
        }
    }

    #[test]
    fn requests_a_provider_refuses_are_400s_naming_the_field() {
        let (t_a, t_b) = (tool("a"), tool("b"));
        let cases = [
            case("a plain request", &[USER], "", None),
            case(
                "an output cap of 0",
                &[USER],
                r#""max_tokens":0"#,
                Some("max_tokens"),
            ),
            case(
                "the newer cap of 0",
                &[USER],
                r#""max_completion_tokens":0"#,
                Some("max_completion_tokens"),
            ),
            case("two stop sequences", &[USER], r#""stop":["a","b"]"#, None),
            case(
                "too many stop sequences",
                &[USER],
                r#""stop":["a","b","c"]"#,
                Some("stop"),
            ),
            case(
                "one blank stop sequence",
                &[USER],
                r#""stop":"\n""#,
                Some("stop"),
            ),
            case(
                "a blank one in a list",
                &[USER],
                r#""stop":["END"," \t"]"#,
                Some("stop[1]"),
            ),
            case(
                "an empty one",
                &[USER],
                r#""stop":["","END"]"#,
                Some("stop[0]"),
            ),
            case(
                "tool names within the rule",
                &[USER],
                &tools(&["f", "a.b-c_D9"]),
                None,
            ),
            case(
                "a space in a tool name",
                &[USER],
                &tools(&["f", "get it"]),
                Some("tools[1].function.name"),
            ),
            case(
                "a tool name too long",
                &[USER],
                &tools(&["abcdefghi"]),
                Some("tools[0].function.name"),
            ),
            case(
                "an empty tool name",
                &[USER],
                &tools(&[""]),
                Some("tools[0].function.name"),
            ),
            case(
                "a tool given twice",
                &[USER],
                &tools(&["f", "g", "f"]),
                Some("tools[2].function.name"),
            ),
            case(
                "tool_choice naming no tool",
                &[USER],
                &format!(
                    r#"{},"tool_choice":{{"type":"function","function":{{"name":"g"}}}}"#,
                    tools(&["f"])
                ),
                Some("tool_choice"),
            ),
            case(
                "an image of a type taken",
                &[&image("data:image/png;base64,AAAAAAAA")],
                "",
                None,
            ),
            case("a remote image", &[&image("https://x/y.gif")], "", None),
            case(
                "an image of another type",
                &[&image("data:image/bmp;base64,AAAA")],
                "",
                Some("messages[0].content[0].image_url"),
            ),
            case(
                "an image too large",
                &[&image("data:image/png;base64,AAAAAAAAAAAA")],
                "",
                Some("messages[0].content[0].image_url"),
            ),
            case(
                "too many images",
                &[
                    USER,
                    &image("https://x/1.png"),
                    &image("https://x/2.png"),
                    &image("https://x/3.png"),
                ],
                "",
                Some("messages[3].content[0].image_url"),
            ),
            case(
                "every call answered, then the conversation goes on",
                &[USER, CALLS, &t_b, &t_a, USER],
                "",
                None,
            ),
            case(
                "a result no call waits for",
                &[USER, CALLS, &t_a, &t_b, &tool("c")],
                "",
                Some("messages[4].tool_call_id"),
            ),
            case(
                "a result after the conversation went on",
                &[USER, CALLS, &t_a, USER, &t_b],
                "",
                Some("messages[1].tool_calls[1]"),
            ),
            case(
                "a result answered twice",
                &[USER, CALLS, &t_a, &t_a],
                "",
                Some("messages[3].tool_call_id"),
            ),
            case(
                "a call left without its result",
                &[USER, CALLS, &t_a],
                "",
                Some("messages[1].tool_calls[1]"),
            ),
            case(
                "a result with no call before it",
                &[USER, &t_a],
                "",
                Some("messages[1].tool_call_id"),
            ),
        ];
        for case in cases {
            let comma = if case.fields.is_empty() { "" } else { "," };
            let json = format!(
                r#"{{"model":"m","messages":[{}]{comma}{}}}"#,
                case.messages.join(","),
                case.fields
            );
            let (req, _) = chat_request(&json);
            let got = check(&req, &TEST).err();
            assert_eq!(
                got.as_ref().map(|e| (e.status, e.param.as_deref())),
                case.refused.map(|p| (400, Some(p))),
                "{}: {:?}",
                case.name,
                got.as_ref().map(|e| &e.message)
            );
        }
    }

    /// A sampling value: what is sent, or whether the 400 is an unsupported parameter.
    struct Sampling {
        param: &'static str,
        value: f64,
        /// Sent as is, left out (model dropping unsupported parameters), or refused.
        expected: Result<Option<f64>, bool>,
        dropping: bool,
    }

    #[test]
    fn sampling_parameters_out_of_range() {
        let cases = [
            Sampling {
                param: "temperature",
                value: 0.7,
                expected: Ok(Some(0.7)),
                dropping: false,
            },
            Sampling {
                param: "temperature",
                value: 1.5,
                expected: Err(true),
                dropping: false,
            },
            Sampling {
                param: "temperature",
                value: 1.5,
                expected: Ok(None),
                dropping: true,
            },
            // Outside OpenAI's own range: invalid, whatever the model drops.
            Sampling {
                param: "temperature",
                value: 2.5,
                expected: Err(false),
                dropping: true,
            },
            Sampling {
                param: "temperature",
                value: -0.1,
                expected: Err(false),
                dropping: false,
            },
            Sampling {
                param: "top_p",
                value: 1.1,
                expected: Err(false),
                dropping: true,
            },
            Sampling {
                param: "frequency_penalty",
                value: -1.0,
                expected: Err(true),
                dropping: false,
            },
            Sampling {
                param: "presence_penalty",
                value: -3.0,
                expected: Err(false),
                dropping: false,
            },
            Sampling {
                param: "presence_penalty",
                value: 0.5,
                expected: Ok(Some(0.5)),
                dropping: false,
            },
        ];
        for case in cases {
            let settings = ModelSettings {
                drop_unsupported_params: case.dropping,
                ..ModelSettings::default()
            };
            let name = format!("{} {} dropping {}", case.param, case.value, case.dropping);
            match (
                TEST.sampling(&settings, case.param, Some(case.value)),
                case.expected,
            ) {
                (Ok(sent), Ok(expected)) => assert_eq!(sent, expected, "{name}"),
                (Err(e), Err(unsupported)) => {
                    crate::providers::testing::assert_refused(&e, case.param, unsupported, &name)
                }
                (got, _) => panic!("{name}: {got:?}"),
            }
        }
        assert_eq!(
            TEST.sampling(&ModelSettings::default(), "top_p", None),
            Ok(None)
        );
    }
}
