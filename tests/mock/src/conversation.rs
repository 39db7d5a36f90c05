//! The deterministic "model": given a conversation in a format-neutral shape, decide what the
//! assistant answers (text or a tool call) and how many tokens that cost.
//!
//! Each wire-format module turns its request into a [`Conversation`], calls [`respond`], and
//! renders the [`Answer`] and [`Usage`] in its own shape. Nothing here knows about any wire format.

use serde_json::{Map, Value};

use crate::Directives;

/// Extra tokens counted per message, on top of its words.
const TOKENS_PER_MESSAGE: u64 = 3;

/// Shortest word of `huge` padding; longer for big sizes, so that a padded stream carries
/// about a thousand events at most.
const PADDING_WORD: usize = 1024;

/// Id of the (single) tool call the mock makes.
pub const TOOL_CALL_ID: &str = "call_mock_1";

/// One message of the conversation, reduced to its role and its text.
#[derive(Debug, Clone, PartialEq)]
pub struct Turn {
    /// `system`, `user`, `assistant` or `tool` (a tool result); other roles are kept as sent.
    pub role: String,
    /// The text of the message (text parts joined with a space).
    pub text: String,
}

impl Turn {
    pub fn new(role: impl Into<String>, text: impl Into<String>) -> Self {
        Turn {
            role: role.into(),
            text: text.into(),
        }
    }
}

/// A tool the client offered.
#[derive(Debug, Clone, PartialEq)]
pub struct Tool {
    pub name: String,
    /// JSON schema of the arguments (`{"type":"object","properties":..,"required":[..]}`).
    pub parameters: Value,
}

/// What the client allowed regarding tools.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum ToolChoice {
    /// The model may call a tool (the mock always does when the last turn is from the user).
    #[default]
    Auto,
    /// The model must not call a tool.
    None,
    /// The model must call this tool.
    Named(String),
}

/// A request, format-neutral.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Conversation {
    pub turns: Vec<Turn>,
    pub tools: Vec<Tool>,
    pub tool_choice: ToolChoice,
}

/// A tool call the assistant makes.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    /// Always a JSON object.
    pub arguments: Value,
}

impl ToolCall {
    /// The arguments as compact JSON text (what OpenAI-style APIs carry as a string).
    pub fn arguments_json(&self) -> String {
        self.arguments.to_string()
    }
}

/// What the assistant answers.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    Text(String),
    ToolCall(ToolCall),
}

/// Token counts to report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Usage {
    pub prompt: u64,
    pub completion: u64,
    /// Part of `prompt` served from a prompt cache.
    pub cached: u64,
    /// Part of `prompt` written to a prompt cache (reported by the wires that report it).
    pub cache_write: u64,
    /// Part of `completion` spent on reasoning.
    pub reasoning: u64,
}

impl Usage {
    pub fn total(&self) -> u64 {
        self.prompt.saturating_add(self.completion)
    }
}

/// Decides the answer and the usage for a conversation.
///
/// Rules, in order, where "the last turn" ignores system turns after it (instructions added
/// mid-conversation do not take the floor):
/// 1. a `tool_call=NAME {ARGS}` directive, the last turn from the user and a tool NAME offered:
///    a call to NAME with ARGS (a JSON object; placeholders for the required arguments when
///    absent). This is how a test makes a coding agent run one tool: the agent sends the
///    result back in its next request, which rule 4 answers;
/// 2. a `reply` directive answers with that text;
/// 3. no `tool_call` directive (`tool_call=none` turns this off), tools offered, tool choice not
///    `none` and the last turn from the user: a tool call to the named tool (or the first one)
///    with every required argument set to a placeholder;
/// 4. the last turn is a tool result: `tool result: <its text>`;
/// 5. otherwise `echo: <text of the last user turn>`.
///
/// A `huge` directive then pads the answer to at least that many bytes: words of `x` after the
/// text, or a `mock_padding` argument of a tool call.
///
/// Usage comes from the `usage` directive where given, else prompt = words of all turns plus
/// 3 per turn, completion = words of the answer (at least 1).
pub fn respond(conversation: &Conversation, directives: &Directives) -> (Answer, Usage) {
    let mut answer = decide(conversation, directives);
    if let Some(size) = directives.huge {
        pad(&mut answer, size);
    }
    let completion_words = match &answer {
        Answer::Text(text) => words(text),
        Answer::ToolCall(call) => words(&call.arguments_json()),
    };
    let over = &directives.usage;
    let usage = Usage {
        prompt: over
            .prompt
            .unwrap_or_else(|| prompt_tokens(&conversation.turns)),
        completion: over.completion.unwrap_or(completion_words.max(1)),
        cached: over.cached.unwrap_or(0),
        cache_write: over.cache_write.unwrap_or(0),
        reasoning: over.reasoning.unwrap_or(0),
    };
    (answer, usage)
}

fn decide(conversation: &Conversation, directives: &Directives) -> Answer {
    let last = conversation.turns.iter().rev().find(|t| t.role != "system");
    let last_role = last.map(|t| t.role.as_str());
    let may_call = last_role == Some("user") && conversation.tool_choice != ToolChoice::None;
    let forced = directives.tool_call.as_deref().map(forced_call);
    if let (true, Some((name, arguments))) = (may_call, &forced) {
        if let Some(tool) = conversation.tools.iter().find(|t| &t.name == name) {
            return Answer::ToolCall(ToolCall {
                id: TOOL_CALL_ID.to_owned(),
                name: tool.name.clone(),
                arguments: arguments
                    .clone()
                    .unwrap_or_else(|| placeholder_arguments(&tool.parameters)),
            });
        }
    }
    if let Some(reply) = &directives.reply {
        return Answer::Text(reply.clone());
    }
    if may_call && forced.is_none() {
        let tool = match &conversation.tool_choice {
            ToolChoice::Named(name) => conversation
                .tools
                .iter()
                .find(|t| &t.name == name)
                .or(conversation.tools.first()),
            _ => conversation.tools.first(),
        };
        if let Some(tool) = tool {
            return Answer::ToolCall(ToolCall {
                id: TOOL_CALL_ID.to_owned(),
                name: tool.name.clone(),
                arguments: placeholder_arguments(&tool.parameters),
            });
        }
    }
    if let (Some("tool"), Some(turn)) = (last_role, last) {
        return Answer::Text(format!("tool result: {}", turn.text));
    }
    let last_user = conversation
        .turns
        .iter()
        .rev()
        .find(|t| t.role == "user")
        .map(|t| t.text.as_str())
        .unwrap_or("");
    Answer::Text(format!("echo: {last_user}"))
}

fn pad(answer: &mut Answer, size: usize) {
    match answer {
        Answer::Text(text) => {
            let word = "x".repeat((size / 1000).max(PADDING_WORD));
            text.reserve(size.saturating_sub(text.len()) + word.len());
            while text.len() < size {
                text.push(' ');
                text.push_str(&word);
            }
        }
        Answer::ToolCall(call) => {
            let missing = size.saturating_sub(call.arguments_json().len());
            if let Value::Object(arguments) = &mut call.arguments {
                arguments.insert(
                    "mock_padding".to_owned(),
                    Value::String("x".repeat(missing)),
                );
            }
        }
    }
}

/// The `tool_call` directive's tool name and arguments: `NAME`, then optionally a JSON object
/// (anything else there counts as absent).
fn forced_call(directive: &str) -> (&str, Option<Value>) {
    let directive = directive.trim();
    let end = directive
        .find(|c: char| c.is_whitespace() || c == '{')
        .unwrap_or(directive.len());
    let (name, arguments) = directive.split_at(end);
    let arguments = serde_json::from_str::<Value>(arguments.trim())
        .ok()
        .filter(Value::is_object);
    (name, arguments)
}

/// What the mock "thinks" when asked to reason: `The user wrote: <text of the last turn>`
/// (system turns after it aside).
pub fn thought(conversation: &Conversation) -> String {
    let last = conversation
        .turns
        .iter()
        .rev()
        .find(|t| t.role != "system")
        .map(|t| t.text.as_str())
        .unwrap_or("");
    format!("The user wrote: {last}")
}

/// Prompt tokens: words of every turn plus a fixed overhead per turn.
pub fn prompt_tokens(turns: &[Turn]) -> u64 {
    turns
        .iter()
        .map(|t| words(&t.text) + TOKENS_PER_MESSAGE)
        .sum()
}

/// Number of whitespace-separated words.
pub fn words(text: &str) -> u64 {
    text.split_whitespace().count() as u64
}

/// An object with every `required` property of the schema set to a placeholder:
/// `"mock"` for strings, 1 for numbers and integers, true for booleans, `[]` for arrays,
/// `{}` for objects, `"mock"` when the type is missing or unknown.
pub fn placeholder_arguments(schema: &Value) -> Value {
    let mut out = Map::new();
    let properties = schema.get("properties");
    let required = schema
        .get("required")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    for name in required.iter().filter_map(Value::as_str) {
        let property = properties.and_then(|p| p.get(name));
        out.insert(name.to_owned(), placeholder(property));
    }
    Value::Object(out)
}

fn placeholder(property: Option<&Value>) -> Value {
    let ty = property.and_then(|p| p.get("type"));
    // `"type": ["string", "null"]` counts as its first non-null type.
    let ty = match ty {
        Some(Value::Array(types)) => types
            .iter()
            .filter_map(Value::as_str)
            .find(|t| *t != "null"),
        Some(Value::String(t)) => Some(t.as_str()),
        _ => None,
    };
    match ty {
        Some("number") | Some("integer") => Value::from(1),
        Some("boolean") => Value::Bool(true),
        Some("array") => Value::Array(Vec::new()),
        Some("object") => Value::Object(Map::new()),
        _ => Value::String("mock".to_owned()),
    }
}

/// Splits a reply into stream pieces: each word with the whitespace that follows it.
/// Concatenating the pieces gives the text back exactly.
pub fn stream_pieces(text: &str) -> Vec<&str> {
    let mut pieces = Vec::new();
    let mut start = 0;
    let mut after_space = false;
    for (i, c) in text.char_indices() {
        let space = c.is_whitespace();
        if after_space && !space {
            pieces.push(&text[start..i]);
            start = i;
        }
        after_space = space;
    }
    if start < text.len() {
        pieces.push(&text[start..]);
    }
    pieces
}

/// Splits a string into about `n` fragments on character boundaries (fewer if it is short).
pub fn fragments(text: &str, n: usize) -> Vec<&str> {
    let chars = text.chars().count();
    let n = n.clamp(1, chars.max(1));
    let per = chars.div_ceil(n).max(1);
    let mut out = Vec::with_capacity(n);
    let mut rest = text;
    while !rest.is_empty() {
        let cut = rest
            .char_indices()
            .nth(per)
            .map(|(i, _)| i)
            .unwrap_or(rest.len());
        let (head, tail) = rest.split_at(cut);
        out.push(head);
        rest = tail;
    }
    if out.is_empty() {
        out.push(text);
    }
    out
}

/// A deterministic, unit-length embedding of `text` with `dims` components.
///
/// Components are multiples of 1/4096 so that they are exact in f32 and print briefly in JSON,
/// and the float and base64 encodings of the same vector agree bit for bit.
pub fn embedding(text: &str, dims: usize) -> Vec<f32> {
    let seed = fnv1a(text.as_bytes());
    let raw: Vec<f64> = (0..dims as u64)
        .map(|i| {
            let x = splitmix64(seed ^ i.wrapping_mul(0x9E37_79B9_7F4A_7C15));
            // Top 53 bits to [0, 1), then to [-1, 1).
            (x >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
        })
        .collect();
    let norm = raw.iter().map(|x| x * x).sum::<f64>().sqrt();
    let norm = if norm > 0.0 { norm } else { 1.0 };
    raw.iter()
        .map(|x| ((x / norm * 4096.0).round() / 4096.0) as f32)
        .collect()
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn user(text: &str) -> Turn {
        Turn::new("user", text)
    }

    #[test]
    fn echoes_last_user_turn_and_counts_words() {
        let conv = Conversation {
            turns: vec![Turn::new("system", "be brief"), user("hello there world")],
            ..Default::default()
        };
        let (answer, usage) = respond(&conv, &Directives::default());
        assert_eq!(answer, Answer::Text("echo: hello there world".into()));
        assert_eq!(usage.prompt, 2 + 3 + 3 + 3);
        assert_eq!(usage.completion, 4);
        assert_eq!(usage.total(), 15);
    }

    #[test]
    fn tool_call_with_required_placeholders() {
        let conv = Conversation {
            turns: vec![user("weather?")],
            tools: vec![
                Tool {
                    name: "other".into(),
                    parameters: json!({}),
                },
                Tool {
                    name: "get_weather".into(),
                    parameters: json!({
                        "type": "object",
                        "properties": {
                            "city": {"type": "string"},
                            "days": {"type": "integer"},
                            "metric": {"type": "boolean"},
                            "temp": {"type": ["number", "null"]},
                            "note": {"type": "string"}
                        },
                        "required": ["city", "days", "metric", "temp"]
                    }),
                },
            ],
            tool_choice: ToolChoice::Named("get_weather".into()),
        };
        let (answer, _) = respond(&conv, &Directives::default());
        let Answer::ToolCall(call) = answer else {
            panic!("expected a tool call")
        };
        assert_eq!(call.id, "call_mock_1");
        assert_eq!(call.name, "get_weather");
        assert_eq!(
            call.arguments,
            json!({"city": "mock", "days": 1, "metric": true, "temp": 1})
        );
    }

    #[test]
    fn tool_result_and_tool_choice_none() {
        let tools = vec![Tool {
            name: "t".into(),
            parameters: json!({}),
        }];
        let conv = Conversation {
            turns: vec![
                user("q"),
                Turn::new("assistant", ""),
                Turn::new("tool", "42"),
            ],
            tools: tools.clone(),
            tool_choice: ToolChoice::Auto,
        };
        assert_eq!(
            respond(&conv, &Directives::default()).0,
            Answer::Text("tool result: 42".into())
        );
        let conv = Conversation {
            turns: vec![user("q")],
            tools,
            tool_choice: ToolChoice::None,
        };
        assert_eq!(
            respond(&conv, &Directives::default()).0,
            Answer::Text("echo: q".into())
        );
    }

    #[test]
    fn huge_pads_text_in_long_words_and_tool_calls_with_an_argument() {
        let directives = Directives {
            huge: Some(5000),
            ..Default::default()
        };
        let conv = Conversation {
            turns: vec![user("hi")],
            ..Default::default()
        };
        let (answer, usage) = respond(&conv, &directives);
        let Answer::Text(text) = answer else {
            panic!("text expected")
        };
        assert!(text.starts_with("echo: hi x"));
        assert!((5000..5000 + 1025).contains(&text.len()), "{}", text.len());
        let pieces = stream_pieces(&text);
        assert_eq!(pieces.len(), 2 + 5);
        assert!(pieces[2..]
            .iter()
            .all(|p| p.trim_end().len() == PADDING_WORD));
        assert_eq!(usage.completion, 2 + 5);

        let conv = Conversation {
            turns: vec![user("weather?")],
            tools: vec![Tool {
                name: "t".into(),
                parameters: json!({"required": ["city"]}),
            }],
            tool_choice: ToolChoice::Auto,
        };
        let Answer::ToolCall(call) = respond(&conv, &directives).0 else {
            panic!("tool call expected")
        };
        assert_eq!(call.arguments["city"], "mock");
        let size = call.arguments_json().len();
        assert!((5000..5040).contains(&size), "{size}");
    }

    #[test]
    fn tool_call_directive_picks_tool_and_arguments() {
        let tools = vec![
            Tool {
                name: "Agent".into(),
                parameters: json!({"required": ["prompt"]}),
            },
            Tool {
                name: "Bash".into(),
                parameters: json!({"required": ["command"]}),
            },
        ];
        let asking = Conversation {
            // A system turn after the user's does not take the floor.
            turns: vec![user("run it"), Turn::new("system", "env: linux")],
            tools: tools.clone(),
            tool_choice: ToolChoice::Auto,
        };
        let directives = |tool_call: &str| Directives {
            tool_call: Some(tool_call.into()),
            reply: Some("done".into()),
            ..Default::default()
        };
        let call = |answer: Answer| match answer {
            Answer::ToolCall(call) => (call.name, call.arguments),
            Answer::Text(text) => panic!("expected a tool call, got {text:?}"),
        };
        assert_eq!(
            call(respond(&asking, &directives(r#"Bash {"command": "echo hi"}"#)).0),
            ("Bash".to_owned(), json!({"command": "echo hi"}))
        );
        assert_eq!(
            call(respond(&asking, &directives("Bash{\"command\":\"ls\"}")).0),
            ("Bash".to_owned(), json!({"command": "ls"}))
        );
        assert_eq!(
            call(respond(&asking, &directives("Bash")).0),
            ("Bash".to_owned(), json!({"command": "mock"}))
        );
        // A tool not offered: no tool call at all (not the first tool), the reply instead.
        assert_eq!(
            respond(&asking, &directives("Missing {}")).0,
            Answer::Text("done".into())
        );
        // The tool's result comes back: the reply directive, else the result.
        let answered = Conversation {
            turns: vec![
                user("run it"),
                Turn::new("assistant", ""),
                Turn::new("tool", "hi"),
            ],
            tools,
            tool_choice: ToolChoice::Auto,
        };
        assert_eq!(
            respond(&answered, &directives("Bash")).0,
            Answer::Text("done".into())
        );
        let without_reply = Directives {
            tool_call: Some("Bash".into()),
            ..Default::default()
        };
        assert_eq!(
            respond(&answered, &without_reply).0,
            Answer::Text("tool result: hi".into())
        );
    }

    #[test]
    fn pieces_and_fragments_concatenate_back() {
        let text = "echo: hello  wörld\tand more";
        let pieces = stream_pieces(text);
        assert_eq!(pieces, ["echo: ", "hello  ", "wörld\t", "and ", "more"]);
        assert_eq!(pieces.concat(), text);
        assert!(stream_pieces("").is_empty());
        for s in ["{\"city\":\"mock\"}", "{}", "é", ""] {
            let f = fragments(s, 3);
            assert_eq!(f.concat(), s);
            assert!(f.len() <= 3);
        }
        assert_eq!(fragments("{\"city\":\"mock\"}", 3).len(), 3);
    }

    #[test]
    fn embeddings_are_deterministic_and_unit() {
        let a = embedding("hello", 8);
        assert_eq!(a, embedding("hello", 8));
        assert_ne!(a, embedding("hellp", 8));
        assert_eq!(a.len(), 8);
        let norm: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 0.01, "{norm}");
    }
}
