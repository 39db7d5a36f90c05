//! Claude on Vertex AI: Anthropic's Messages format on Vertex's paths,
//! `/v1/projects/{p}/locations/{l}/publishers/anthropic/models/{model}:rawPredict` and
//! `:streamRawPredict`. (Gemini on Vertex is in `gemini`.)
//!
//! Vertex's own rules are checked here: no `model` in the body (it is in the path),
//! `anthropic_version: vertex-2023-10-16` in the body, and `stream: true` exactly on
//! `streamRawPredict`. The answer is then the Anthropic mock's, for the model in the path.
//! Errors: 429 is Vertex's quota error (Google's shape); other statuses are Claude's own
//! (Anthropic's shape), as Vertex passes them through.

use axum::http::Method;
use serde_json::{json, Value};

use crate::{anthropic, gemini, Call, Reply};

const VERTEX_ANTHROPIC_VERSION: &str = "vertex-2023-10-16";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    RawPredict { model: String, stream: bool },
}

pub fn route(method: &Method, path: &str) -> Option<Endpoint> {
    if *method != Method::POST || !path.starts_with("/v1/projects/") {
        return None;
    }
    let (prefix, tail) = path.rsplit_once("/models/")?;
    if !prefix.ends_with("/publishers/anthropic") {
        return None;
    }
    let (model, verb) = tail.split_once(':')?;
    let stream = match verb {
        "rawPredict" => false,
        "streamRawPredict" => true,
        _ => return None,
    };
    Some(Endpoint::RawPredict {
        model: model.to_owned(),
        stream,
    })
}

fn invalid(message: &str) -> Reply {
    Reply::json(
        400,
        &json!({"type": "error", "error": {"type": "invalid_request_error", "message": message}}),
    )
}

pub fn handle(endpoint: &Endpoint, call: &Call) -> Reply {
    let Endpoint::RawPredict { model, stream } = endpoint;
    let Some(body) = call.body.and_then(Value::as_object) else {
        return invalid("There was an error parsing the body: not valid JSON.");
    };
    if body.contains_key("model") {
        return invalid("model: Extra inputs are not permitted");
    }
    if body.get("anthropic_version").and_then(Value::as_str) != Some(VERTEX_ANTHROPIC_VERSION) {
        return invalid(&format!(
            "anthropic_version: Input should be '{VERTEX_ANTHROPIC_VERSION}'"
        ));
    }
    if body.get("stream").and_then(Value::as_bool).unwrap_or(false) != *stream {
        return invalid("stream must be true on streamRawPredict and absent on rawPredict");
    }
    let mut messages_body = body.clone();
    messages_body.remove("anthropic_version");
    messages_body.insert("model".to_owned(), json!(model));
    let messages_body = Value::Object(messages_body);
    let inner = Call {
        body: Some(&messages_body),
        ..*call
    };
    anthropic::handle(&anthropic::Endpoint::Messages, &inner)
}

pub fn error(status: u16, call: &Call) -> Reply {
    if status == 429 {
        gemini::error(status, call)
    } else {
        anthropic::error(status, call)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Directives;

    const PATH: &str =
        "/v1/projects/p/locations/us-east5/publishers/anthropic/models/claude-sonnet-4-5@20250929";

    fn run(path: &str, body: &Value) -> (u16, Vec<u8>) {
        let d = Directives::default();
        let endpoint = route(&Method::POST, path).expect("route");
        let call = Call {
            seq: 3,
            method: &Method::POST,
            path,
            body: Some(body),
            directives: &d,
            created: 0,
        };
        match handle(&endpoint, &call) {
            Reply::Full { status, body, .. } => (status, body),
            Reply::Stream { events, .. } => (200, events.concat()),
        }
    }

    fn request(extra: Value) -> Value {
        let mut body = json!({"anthropic_version": "vertex-2023-10-16", "max_tokens": 100,
            "messages": [{"role": "user", "content": "hello there"}]});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        body
    }

    #[test]
    fn routes() {
        assert_eq!(
            route(&Method::POST, &format!("{PATH}:streamRawPredict")),
            Some(Endpoint::RawPredict {
                model: "claude-sonnet-4-5@20250929".into(),
                stream: true
            })
        );
        assert_eq!(
            route(
                &Method::POST,
                "/v1/projects/p/locations/l/publishers/google/models/g:rawPredict"
            ),
            None
        );
        assert_eq!(
            route(&Method::POST, &format!("{PATH}:generateContent")),
            None
        );
    }

    #[test]
    fn answers_in_anthropic_format_for_the_model_in_the_path() {
        let (status, out) = run(&format!("{PATH}:rawPredict"), &request(json!({})));
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&out));
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["content"][0]["text"], "echo: hello there");
        assert_eq!(v["model"], "claude-sonnet-4-5@20250929");
        let (status, out) = run(
            &format!("{PATH}:streamRawPredict"),
            &request(json!({"stream": true})),
        );
        assert_eq!(status, 200);
        assert!(String::from_utf8(out)
            .unwrap()
            .contains("event: message_stop"));
    }

    #[test]
    fn vertex_rules_are_enforced() {
        let raw = format!("{PATH}:rawPredict");
        let cases = [
            (raw.clone(), request(json!({"model": "claude"}))),
            (
                raw.clone(),
                request(json!({"anthropic_version": "2023-06-01"})),
            ),
            (raw, request(json!({"stream": true}))),
            (format!("{PATH}:streamRawPredict"), request(json!({}))),
        ];
        for (path, body) in cases {
            let (status, out) = run(&path, &body);
            assert_eq!(status, 400, "{body}");
            let v: Value = serde_json::from_slice(&out).unwrap();
            assert_eq!(v["error"]["type"], "invalid_request_error");
        }
    }
}
