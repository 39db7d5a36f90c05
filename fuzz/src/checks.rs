//! What every output must be, whatever the input: the assertions the targets make beyond "no
//! panic".

use serde::de::IgnoredAny;
use serde_json::Value;
use switchboard_core::usage::pricing::{Price, Rates};
use switchboard_core::usage::Usage;

/// Asserts `bytes` are JSON as a client reads them: UTF-8 and of JSON's grammar, numbers of
/// any size (a pass-through's may be beyond f64, which clients read as infinite).
pub fn assert_json(bytes: &[u8], what: &str) {
    let text = match std::str::from_utf8(bytes) {
        Ok(text) => text,
        Err(e) => panic!(
            "{what} is not UTF-8 ({e}): {}",
            String::from_utf8_lossy(bytes)
        ),
    };
    if let Err(e) = serde_json::from_str::<IgnoredAny>(text) {
        panic!("{what} is not JSON ({e}): {text}");
    }
}

/// Parses `bytes`, which the gateway wrote, as JSON, naming `what` when they are not.
pub fn json(bytes: &[u8], what: &str) -> Value {
    match serde_json::from_slice(bytes) {
        Ok(value) => value,
        Err(e) => panic!(
            "{what} is not JSON ({e}): {}",
            String::from_utf8_lossy(bytes)
        ),
    }
}

/// Asserts `value` is an object whose `object` member is `expected`.
pub fn assert_object(value: &Value, expected: &str, what: &str) {
    assert_eq!(
        value.get("object").and_then(Value::as_str),
        Some(expected),
        "{what}: {value}"
    );
}

/// True for an OpenAI error body: `{"error": {"message": "...", ...}}`.
pub fn is_error_body(value: &Value) -> bool {
    value
        .get("error")
        .and_then(|e| e.get("message"))
        .is_some_and(Value::is_string)
}

/// Reported usage is summed and priced (as the record and the budgets do) without overflow.
pub fn price_usage(usage: Option<Usage>) {
    let Some(usage) = usage else { return };
    let rates = Rates {
        input: 3_000_000,
        output: 15_000_000,
        cache_read: 300_000,
        cache_write: 3_750_000,
    };
    let price = Price {
        base: rates,
        tiers: vec![(200_000, rates)],
    };
    let _ = usage.total_tokens();
    let _ = price.cost(&usage);
}

/// One event of a client stream.
#[derive(Debug, PartialEq, Eq)]
pub struct ClientEvent<'a> {
    pub name: Option<&'a str>,
    pub data: String,
}

/// The events of a client stream, asserting it is SSE as the gateway writes it: UTF-8 events
/// of an optional `event: NAME` line and `data: DATA` lines (joined with `\n`), each ended by a
/// blank line, so every client's parser reads the same events.
pub fn client_events(out: &[u8]) -> Vec<ClientEvent<'_>> {
    let Ok(text) = std::str::from_utf8(out) else {
        panic!(
            "client stream is not UTF-8: {}",
            String::from_utf8_lossy(out)
        );
    };
    let Some(body) = text.strip_suffix("\n\n") else {
        panic!("client stream does not end with a blank line: {text:?}");
    };
    body.split("\n\n")
        .map(|block| {
            let mut lines = block.split('\n').peekable();
            let name = lines
                .next_if(|line| line.starts_with("event: "))
                .and_then(|line| line.strip_prefix("event: "));
            let data: Vec<&str> = lines
                .map(|line| match line.strip_prefix("data: ") {
                    Some(data) if !data.contains('\r') => data,
                    _ => panic!("client event line {line:?} is not data: in {text:?}"),
                })
                .collect();
            assert!(!data.is_empty(), "client event without data: {block:?}");
            ClientEvent {
                name,
                data: data.join("\n"),
            }
        })
        .collect()
}

/// How a client stream must end: with `[DONE]` or one error event, and nothing after either.
/// `translated`: the gateway wrote every event (not passed through from an OpenAI-wire
/// provider), so each other event must be a chat chunk.
pub fn assert_stream_shape(events: &[ClientEvent], translated: bool) {
    let Some((last, before)) = events.split_last() else {
        panic!("client stream without any event");
    };
    let last_is_error = serde_json::from_str(&last.data).is_ok_and(|v| is_error_body(&v));
    assert!(
        last.data == "[DONE]" || last_is_error,
        "client stream ends with neither [DONE] nor an error: {last:?}"
    );
    for event in before {
        assert_ne!(event.data, "[DONE]", "an event after [DONE]: {events:?}");
        if translated {
            let value: Value = match serde_json::from_str(&event.data) {
                Ok(v) => v,
                Err(e) => panic!("translated event is not JSON ({e}): {event:?}"),
            };
            assert!(
                !is_error_body(&value),
                "an event after an error: {events:?}"
            );
            assert_object(&value, "chat.completion.chunk", "translated event");
        }
    }
}

/// The events of an input API's stream as (name, data): each named, with a JSON object of
/// that `type` as its data.
fn typed_events<'e>(events: &'e [ClientEvent]) -> Vec<(&'e str, Value)> {
    events
        .iter()
        .map(|event| {
            let Some(name) = event.name else {
                panic!("an event without a name: {event:?}");
            };
            let data: Value = match serde_json::from_str(&event.data) {
                Ok(data) => data,
                Err(e) => panic!("event data is not JSON ({e}): {event:?}"),
            };
            assert_eq!(data["type"], name, "event type and name differ: {event:?}");
            (name, data)
        })
        .collect()
}

/// An Anthropic Messages stream as clients read it: `message_start` first (unless the
/// stream is one `error`); content blocks numbered in order, each delta of its block's kind
/// while the block is open; and at the end `message_delta` and `message_stop` (`complete`,
/// every block closed) or an `error`, neither anywhere else.
pub fn assert_messages_stream(events: &[ClientEvent], complete: bool) {
    let events = typed_events(events);
    let names: Vec<&str> = events.iter().map(|(name, _)| *name).collect();
    let (last, before) = match names.split_last() {
        Some(split) => split,
        None => panic!("a stream without any event"),
    };
    let ending: &[&str] = if complete {
        &["message_delta", "message_stop"]
    } else {
        &["error"]
    };
    assert!(
        names.ends_with(ending),
        "does not end with {ending:?}: {names:?}"
    );
    assert!(
        !before.iter().any(|n| *n == "message_stop" || *n == "error"),
        "{last} is not the only end: {names:?}"
    );
    if names != ["error"] {
        assert_eq!(names.first(), Some(&"message_start"), "{names:?}");
    }
    // Per block: its type, and whether it is still open.
    let mut blocks: Vec<(String, bool)> = Vec::new();
    for (name, data) in &events {
        let index = data["index"].as_u64().and_then(|i| usize::try_from(i).ok());
        match *name {
            "content_block_start" => {
                assert_eq!(index, Some(blocks.len()), "blocks out of order: {data}");
                let kind = data["content_block"]["type"].as_str().unwrap_or_default();
                blocks.push((kind.to_owned(), true));
            }
            "content_block_delta" | "content_block_stop" => {
                let block = index.and_then(|i| blocks.get_mut(i));
                let Some((kind, open)) = block else {
                    panic!("{name} of a block never started: {data}");
                };
                assert!(*open, "{name} of a closed block: {data}\n{names:?}");
                if *name == "content_block_stop" {
                    *open = false;
                    continue;
                }
                let expected = match data["delta"]["type"].as_str() {
                    Some("text_delta") => "text",
                    Some("thinking_delta" | "signature_delta") => "thinking",
                    Some("input_json_delta") => "tool_use",
                    other => panic!("unknown delta {other:?}: {data}"),
                };
                assert_eq!(kind, expected, "a delta of another block's kind: {data}");
            }
            _ => {}
        }
    }
    if complete {
        assert!(
            blocks.iter().all(|(_, open)| !open),
            "a complete stream leaves a block open"
        );
    }
}

/// An OpenAI Responses stream as clients read it: `sequence_number`s counting from 0;
/// `response.created` and `response.in_progress` first; items added in `output_index`
/// order, each event of an item naming it while it is open (until `response.output_item.done`);
/// and at the end `response.completed` or `.incomplete` (`complete`) or `error` then
/// `response.failed`, neither anywhere else, with the response's status and every item added
/// (and done, when complete).
pub fn assert_responses_stream(events: &[ClientEvent], complete: bool) {
    let events = typed_events(events);
    let names: Vec<&str> = events.iter().map(|(name, _)| *name).collect();
    for (i, (_, data)) in events.iter().enumerate() {
        assert_eq!(
            data["sequence_number"].as_u64(),
            u64::try_from(i).ok(),
            "sequence numbers: {data}"
        );
    }
    assert!(
        names.starts_with(&["response.created", "response.in_progress"]),
        "{names:?}"
    );
    let terminal = |n: &str| {
        matches!(
            n,
            "response.completed" | "response.incomplete" | "response.failed" | "error"
        )
    };
    let ends = if complete { 1 } else { 2 };
    let (before, end) = names.split_at(names.len().saturating_sub(ends));
    assert!(
        !before.iter().any(|n| terminal(n)),
        "an end before the last events: {names:?}"
    );
    let status = match (complete, end) {
        (true, ["response.completed"]) => "completed",
        (true, ["response.incomplete"]) => "incomplete",
        (false, ["error", "response.failed"]) => "failed",
        _ => panic!("complete: {complete}, but ends with {end:?}"),
    };
    // Per item: its id, and whether it is still open.
    let mut items: Vec<(String, bool)> = Vec::new();
    for (name, data) in &events {
        let Some(index) = data["output_index"].as_u64() else {
            continue;
        };
        let index = usize::try_from(index).unwrap_or(usize::MAX);
        if *name == "response.output_item.added" {
            assert_eq!(index, items.len(), "items out of order: {data}");
            let id = data["item"]["id"].as_str().unwrap_or_default();
            items.push((id.to_owned(), true));
            continue;
        }
        let Some((id, open)) = items.get_mut(index) else {
            panic!("{name} of an item never added: {data}");
        };
        assert!(*open, "{name} of a done item: {data}\n{names:?}");
        if let Some(item_id) = data["item_id"].as_str() {
            assert_eq!(item_id, id, "{name} names another item: {data}");
        }
        if *name == "response.output_item.done" {
            *open = false;
        }
    }
    if complete {
        assert!(
            items.iter().all(|(_, open)| !open),
            "a complete stream leaves an item open"
        );
    }
    let Some((_, last)) = events.last() else {
        return;
    };
    let response = &last["response"];
    assert_eq!(response["status"], status, "{last}");
    let output = response["output"].as_array().map_or(0, Vec::len);
    assert_eq!(output, items.len(), "the response lacks items: {last}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_events_join_data_lines_and_keep_names() {
        let events = client_events(b"event: e\ndata: a\ndata: b\n\ndata: [DONE]\n\n");
        assert_eq!(
            events,
            [
                ClientEvent {
                    name: Some("e"),
                    data: "a\nb".into()
                },
                ClientEvent {
                    name: None,
                    data: "[DONE]".into()
                },
            ]
        );
    }

    #[test]
    #[should_panic(expected = "is not data:")]
    fn a_bare_line_inside_an_event_is_refused() {
        client_events(b"data: a\nb\n\n");
    }

    #[test]
    #[should_panic(expected = "an event after [DONE]")]
    fn nothing_follows_done() {
        assert_stream_shape(&client_events(b"data: [DONE]\n\ndata: [DONE]\n\n"), false);
    }

    #[test]
    #[should_panic(expected = "neither [DONE] nor an error")]
    fn a_stream_ends_in_done_or_an_error() {
        assert_stream_shape(
            &client_events(b"data: {\"object\":\"chat.completion.chunk\"}\n\n"),
            true,
        );
    }

    #[test]
    fn a_translated_stream_is_chunks_then_an_error() {
        let out = b"data: {\"object\":\"chat.completion.chunk\"}\n\ndata: {\"error\":{\"message\":\"cut\"}}\n\n";
        assert_stream_shape(&client_events(out), true);
    }

    /// SSE of `event: TYPE` events, each with `data` (a JSON object, members after `type`).
    fn typed_sse(events: &[(&str, &str)]) -> Vec<u8> {
        let mut out = String::new();
        for (kind, members) in events {
            let sep = if members.is_empty() { "" } else { "," };
            out.push_str(&format!(
                "event: {kind}\ndata: {{\"type\":\"{kind}\"{sep}{members}}}\n\n"
            ));
        }
        out.into_bytes()
    }

    const MESSAGES_START: [(&str, &str); 2] = [("message_start", r#""message":{}"#), ("ping", "")];

    fn messages_stream(blocks: &[(&str, &str)], end: &[(&str, &str)]) -> Vec<u8> {
        typed_sse(&[&MESSAGES_START[..], blocks, end].concat())
    }

    const TEXT_BLOCK: [(&str, &str); 3] = [
        (
            "content_block_start",
            r#""index":0,"content_block":{"type":"text","text":""}"#,
        ),
        (
            "content_block_delta",
            r#""index":0,"delta":{"type":"text_delta","text":"a"}"#,
        ),
        ("content_block_stop", r#""index":0"#),
    ];
    const MESSAGES_END: [(&str, &str); 2] =
        [("message_delta", r#""delta":{}"#), ("message_stop", "")];

    #[test]
    fn messages_streams_end_with_message_stop_or_an_error() {
        let complete = messages_stream(&TEXT_BLOCK, &MESSAGES_END);
        assert_messages_stream(&client_events(&complete), true);
        let failed = messages_stream(&TEXT_BLOCK[..2], &[("error", r#""error":{}"#)]);
        assert_messages_stream(&client_events(&failed), false);
        let only_error = typed_sse(&[("error", r#""error":{}"#)]);
        assert_messages_stream(&client_events(&only_error), false);
    }

    #[test]
    #[should_panic(expected = "does not end with")]
    fn an_incomplete_messages_stream_ends_with_an_error() {
        let cut = messages_stream(&TEXT_BLOCK, &[]);
        assert_messages_stream(&client_events(&cut), false);
    }

    #[test]
    #[should_panic(expected = "content_block_delta of a closed block")]
    fn a_messages_block_takes_no_delta_after_its_stop() {
        let late = [&TEXT_BLOCK[..], &TEXT_BLOCK[1..2]].concat();
        assert_messages_stream(&client_events(&messages_stream(&late, &MESSAGES_END)), true);
    }

    #[test]
    #[should_panic(expected = "a delta of another block's kind")]
    fn a_messages_delta_is_of_its_block_s_kind() {
        let blocks = [
            (
                "content_block_start",
                r#""index":0,"content_block":{"type":"tool_use"}"#,
            ),
            (
                "content_block_delta",
                r#""index":0,"delta":{"type":"text_delta","text":"a"}"#,
            ),
            ("content_block_stop", r#""index":0"#),
        ];
        assert_messages_stream(
            &client_events(&messages_stream(&blocks, &MESSAGES_END)),
            true,
        );
    }

    /// A Responses stream of these events, numbered from 0.
    fn responses_stream(events: &[(&str, &str)]) -> Vec<u8> {
        let numbered: Vec<(&str, String)> = events
            .iter()
            .enumerate()
            .map(|(i, (kind, members))| {
                let sep = if members.is_empty() { "" } else { "," };
                (*kind, format!(r#""sequence_number":{i}{sep}{members}"#))
            })
            .collect();
        let borrowed: Vec<(&str, &str)> = numbered.iter().map(|(k, m)| (*k, m.as_str())).collect();
        typed_sse(&borrowed)
    }

    const RESPONSES_START: [(&str, &str); 2] = [
        ("response.created", r#""response":{}"#),
        ("response.in_progress", r#""response":{}"#),
    ];
    const MESSAGE_ITEM: [(&str, &str); 3] = [
        (
            "response.output_item.added",
            r#""output_index":0,"item":{"id":"m"}"#,
        ),
        (
            "response.output_text.delta",
            r#""output_index":0,"item_id":"m""#,
        ),
        (
            "response.output_item.done",
            r#""output_index":0,"item":{"id":"m"}"#,
        ),
    ];

    #[test]
    fn responses_streams_end_completed_or_failed() {
        let completed = [
            &RESPONSES_START[..],
            &MESSAGE_ITEM,
            &[(
                "response.completed",
                r#""response":{"status":"completed","output":[{}]}"#,
            )],
        ]
        .concat();
        assert_responses_stream(&client_events(&responses_stream(&completed)), true);
        let failed = [
            &RESPONSES_START[..],
            &MESSAGE_ITEM[..2],
            &[
                ("error", r#""code":"c""#),
                (
                    "response.failed",
                    r#""response":{"status":"failed","output":[{}]}"#,
                ),
            ],
        ]
        .concat();
        assert_responses_stream(&client_events(&responses_stream(&failed)), false);
    }

    #[test]
    #[should_panic(expected = "sequence numbers")]
    fn responses_events_count_from_zero() {
        let events = [
            &RESPONSES_START[..],
            &[("response.completed", r#""response":{"status":"completed"}"#)],
        ]
        .concat();
        let mut out = responses_stream(&events);
        out.splice(0..0, responses_stream(&RESPONSES_START[..1]));
        assert_responses_stream(&client_events(&out), true);
    }

    #[test]
    #[should_panic(expected = "of a done item")]
    fn a_responses_item_takes_no_event_after_it_is_done() {
        let late = [
            &RESPONSES_START[..],
            &MESSAGE_ITEM,
            &MESSAGE_ITEM[1..2],
            &[(
                "response.completed",
                r#""response":{"status":"completed","output":[{}]}"#,
            )],
        ]
        .concat();
        assert_responses_stream(&client_events(&responses_stream(&late)), true);
    }

    #[test]
    #[should_panic(expected = "the response lacks items")]
    fn the_last_response_holds_every_item() {
        let events = [
            &RESPONSES_START[..],
            &MESSAGE_ITEM,
            &[(
                "response.completed",
                r#""response":{"status":"completed","output":[]}"#,
            )],
        ]
        .concat();
        assert_responses_stream(&client_events(&responses_stream(&events)), true);
    }
}
