//! Errors inside a Responses stream: the `error` event (`type`, `code`, `message`, `param`),
//! which clients see before `response.failed`. Error answers outside a stream are OpenAI's
//! error JSON, as on the chat endpoints.

use super::stream::write_event;
use super::wire::ChatErrorDetail;
use crate::api::ApiError;
use serde::Serialize;

/// The members of an `error` event, and the `error` of the failed response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(super) struct StreamError {
    pub code: String,
    pub message: String,
    pub param: Option<String>,
}

impl StreamError {
    /// A gateway error: its code, else its type.
    pub fn from_api(err: &ApiError) -> Self {
        StreamError {
            code: err
                .code
                .clone()
                .unwrap_or_else(|| err.kind.type_name().to_owned()),
            message: err.message.clone(),
            param: err.param.clone(),
        }
    }

    /// An OpenAI error event's detail, as the provider translators end failed streams.
    pub fn from_chat(detail: ChatErrorDetail) -> Self {
        let code = match detail.code {
            Some(serde_json::Value::String(code)) => Some(code),
            Some(serde_json::Value::Number(n)) => Some(n.to_string()),
            _ => None,
        };
        StreamError {
            code: code
                .or(detail.kind)
                .unwrap_or_else(|| "server_error".to_owned()),
            message: detail
                .message
                .unwrap_or_else(|| "the provider's stream failed".to_owned()),
            param: detail.param,
        }
    }
}

/// Appends an `error` event for a stream that has sent nothing yet (its first event).
pub fn write_stream_error(err: &ApiError, out: &mut Vec<u8>) {
    write_error_event(err, 0, out);
}

/// Appends an `error` event numbered `sequence` (one past the stream's last event).
pub fn write_error_event(err: &ApiError, sequence: u64, out: &mut Vec<u8>) {
    write_event(out, sequence, "error", &StreamError::from_api(err));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::test;

    #[test]
    fn error_events_carry_code_message_and_param() {
        let cases = [
            (
                ApiError::upstream("cut").with_code("stream_interrupted"),
                r#"{"type":"error","sequence_number":0,"code":"stream_interrupted","message":"cut","param":null}"#,
            ),
            (
                ApiError::invalid_param("tools", "bad tool"),
                r#"{"type":"error","sequence_number":0,"code":"invalid_request_error","message":"bad tool","param":"tools"}"#,
            ),
        ];
        for (err, expected) in cases {
            let mut out = Vec::new();
            write_stream_error(&err, &mut out);
            assert_eq!(
                String::from_utf8(out).unwrap(),
                format!("event: error\ndata: {expected}\n\n")
            );
        }
    }

    #[test]
    fn chat_error_details_become_stream_errors() {
        let detail = |json: &str| {
            serde_json::from_str::<super::super::wire::ChatError>(json)
                .unwrap()
                .error
        };
        struct Case {
            name: &'static str,
            json: &'static str,
            code: &'static str,
            message: &'static str,
        }
        let cases = [
            Case {
                name: "code and message",
                json: r#"{"error":{"message":"slow","type":"rate_limit_error","code":"rate_limit_exceeded"}}"#,
                code: "rate_limit_exceeded",
                message: "slow",
            },
            Case {
                name: "no code: the type",
                json: r#"{"error":{"message":"boom","type":"server_error","code":null}}"#,
                code: "server_error",
                message: "boom",
            },
            Case {
                name: "a numeric code, no message",
                json: r#"{"error":{"code":500}}"#,
                code: "500",
                message: "the provider's stream failed",
            },
            Case {
                name: "nothing: defaults",
                json: r#"{"error":{}}"#,
                code: "server_error",
                message: "the provider's stream failed",
            },
        ];
        for case in cases {
            let e = StreamError::from_chat(detail(case.json));
            assert_eq!(
                (e.code.as_str(), e.message.as_str()),
                (case.code, case.message),
                "{}: {}",
                case.name,
                case.json
            );
        }
    }
}
