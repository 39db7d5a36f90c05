//! Errors in Anthropic's shape: `{"type":"error","error":{"type":…,"message":…}}`, with
//! Anthropic's error types, as JSON answers and as a stream's `error` event.

use super::wire::{ErrorEnvelope, ErrorOut, Event};
use crate::api::ApiError;
use serde::Deserialize;

/// Anthropic's error types (an error that came from Anthropic keeps its own as `code`).
const ANTHROPIC_TYPES: [&str; 10] = [
    "invalid_request_error",
    "authentication_error",
    "billing_error",
    "permission_error",
    "not_found_error",
    "request_too_large",
    "rate_limit_error",
    "timeout_error",
    "api_error",
    "overloaded_error",
];

fn anthropic_type(name: &str) -> Option<&'static str> {
    ANTHROPIC_TYPES.iter().copied().find(|t| *t == name)
}

/// The Anthropic error type of an error: the one Anthropic gave, else the status's.
pub fn error_type(err: &ApiError) -> &'static str {
    err.code
        .as_deref()
        .and_then(anthropic_type)
        .unwrap_or(match err.status {
            401 => "authentication_error",
            402 => "billing_error",
            403 => "permission_error",
            404 => "not_found_error",
            413 => "request_too_large",
            429 => "rate_limit_error",
            408 | 504 => "timeout_error",
            503 | 529 => "overloaded_error",
            400..=499 => "invalid_request_error",
            _ => "api_error",
        })
}

/// `{"type":"error","error":{"type":…,"message":…}}`
pub fn error_body(err: &ApiError) -> Vec<u8> {
    let envelope = ErrorEnvelope {
        kind: "error",
        error: ErrorOut {
            kind: error_type(err),
            message: &err.message,
        },
    };
    serde_json::to_vec(&envelope).unwrap_or_else(|_| b"{\"type\":\"error\"}".to_vec())
}

/// Appends the stream's `error` event, which Anthropic's SDKs raise.
pub fn write_stream_error(err: &ApiError, out: &mut Vec<u8>) {
    Event::Error {
        error: ErrorOut {
            kind: error_type(err),
            message: &err.message,
        },
    }
    .write(out);
}

/// Appends the `error` event for an OpenAI stream's error event (`{"error":{…}}`, which
/// carries no status: its type says which).
pub(super) fn write_openai_stream_error(data: &str, out: &mut Vec<u8>) {
    #[derive(Deserialize)]
    struct Envelope {
        error: Detail,
    }
    #[derive(Deserialize)]
    struct Detail {
        #[serde(default)]
        message: Option<String>,
        #[serde(rename = "type", default)]
        kind: Option<String>,
        #[serde(default)]
        code: Option<serde_json::Value>,
    }
    let detail = serde_json::from_str::<Envelope>(data).map(|e| e.error).ok();
    let code = detail
        .as_ref()
        .and_then(|d| d.code.as_ref())
        .and_then(|c| c.as_str())
        .and_then(anthropic_type);
    let kind = code.unwrap_or(match detail.as_ref().and_then(|d| d.kind.as_deref()) {
        Some("rate_limit_error" | "insufficient_quota") => "rate_limit_error",
        Some("timeout_error") => "timeout_error",
        Some(other) => anthropic_type(other).unwrap_or("api_error"),
        None => "api_error",
    });
    let message = detail
        .and_then(|d| d.message)
        .unwrap_or_else(|| "the provider's stream failed".to_owned());
    Event::Error {
        error: ErrorOut {
            kind,
            message: &message,
        },
    }
    .write(out);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::ErrorKind;
    use crate::testkit::test;
    use serde_json::{json, Value};

    struct Case {
        name: &'static str,
        error: ApiError,
        expected_type: &'static str,
    }

    #[test]
    fn errors_take_anthropics_types() {
        let cases = [
            Case {
                name: "bad request",
                error: ApiError::invalid_param("max_tokens", "missing"),
                expected_type: "invalid_request_error",
            },
            Case {
                name: "wrong method",
                error: ApiError::invalid("no").with_status(405),
                expected_type: "invalid_request_error",
            },
            Case {
                name: "bad key",
                error: ApiError::new(ErrorKind::Authentication, "no key"),
                expected_type: "authentication_error",
            },
            Case {
                name: "model not allowed",
                error: ApiError::new(ErrorKind::Permission, "no"),
                expected_type: "permission_error",
            },
            Case {
                name: "unknown model",
                error: ApiError::model_not_found("x"),
                expected_type: "not_found_error",
            },
            Case {
                name: "body too large",
                error: ApiError::invalid("big").with_status(413),
                expected_type: "request_too_large",
            },
            Case {
                name: "rate limited",
                error: ApiError::new(ErrorKind::RateLimit, "slow"),
                expected_type: "rate_limit_error",
            },
            Case {
                name: "budget spent",
                error: ApiError::new(ErrorKind::InsufficientQuota, "spent"),
                expected_type: "rate_limit_error",
            },
            Case {
                name: "Anthropic's own type wins (out of credit, answered 429)",
                error: ApiError::new(ErrorKind::InsufficientQuota, "credit")
                    .with_code("billing_error"),
                expected_type: "billing_error",
            },
            Case {
                name: "no deployment could answer",
                error: ApiError::upstream("busy").with_status(503),
                expected_type: "overloaded_error",
            },
            Case {
                name: "broken answer",
                error: ApiError::upstream("broken"),
                expected_type: "api_error",
            },
            Case {
                name: "gateway fault",
                error: ApiError::server("oops"),
                expected_type: "api_error",
            },
            Case {
                name: "timeout",
                error: ApiError::new(ErrorKind::Timeout, "late"),
                expected_type: "timeout_error",
            },
        ];
        for case in cases {
            let v: Value = serde_json::from_slice(&error_body(&case.error)).unwrap();
            assert_eq!(
                v,
                json!({"type": "error", "error": {"type": case.expected_type, "message": case.error.message}}),
                "{}",
                case.name
            );
        }
    }

    #[test]
    fn stream_errors_are_error_events() {
        let mut out = Vec::new();
        write_stream_error(&ApiError::new(ErrorKind::RateLimit, "slow"), &mut out);
        write_openai_stream_error(
            r#"{"error":{"message":"Overloaded","type":"upstream_error","param":null,"code":"overloaded_error"}}"#,
            &mut out,
        );
        write_openai_stream_error(
            r#"{"error":{"message":"cut","type":"upstream_error","param":null,"code":"stream_interrupted"}}"#,
            &mut out,
        );
        write_openai_stream_error(
            r#"{"error":{"message":"x","type":"insufficient_quota"}}"#,
            &mut out,
        );
        write_openai_stream_error("{\"error\":", &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"rate_limit_error\",\"message\":\"slow\"}}\n\n\
             event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n\
             event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"api_error\",\"message\":\"cut\"}}\n\n\
             event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"rate_limit_error\",\"message\":\"x\"}}\n\n\
             event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"api_error\",\"message\":\"the provider's stream failed\"}}\n\n"
        );
    }
}
