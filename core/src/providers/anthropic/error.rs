//! Anthropic's error answers and stream error events → the OpenAI errors clients expect.

use super::wire::WireError;
use crate::api::{ApiError, ErrorKind};
use crate::providers::error_message;
use serde::Deserialize;

/// Maps an Anthropic error answer (`{"type":"error","error":{"type","message"}}`) to the
/// OpenAI error a client expects, keeping Anthropic's message and its error type as `code`.
///
/// Contract: retriable states come out retriable for Envoy and clients: `overloaded_error`
/// (HTTP 529) → 503, `rate_limit_error` → 429. Bodies of another shape are mapped by status.
pub fn anthropic_error(status: u16, body: &[u8]) -> ApiError {
    #[derive(Deserialize)]
    struct Envelope {
        error: WireError,
    }
    match serde_json::from_slice::<Envelope>(body) {
        Ok(env) if !env.error.kind.is_empty() => {
            let message = env
                .error
                .message
                .unwrap_or_else(|| "the provider returned an error".to_owned());
            typed_error(&env.error.kind, message, Some(status))
        }
        _ => {
            let status = client_status(status);
            ApiError::new(ErrorKind::from_status(status), error_message(body)).with_status(status)
        }
    }
}

/// Anthropic's 529 (overloaded) is not a status clients or Envoy's retry policy know.
fn client_status(status: u16) -> u16 {
    if status == 529 {
        503
    } else {
        status
    }
}

/// The OpenAI error for an Anthropic error type; `status` is the HTTP status, if any (stream
/// error events have none).
pub(super) fn typed_error(kind: &str, message: String, status: Option<u16>) -> ApiError {
    let (error_kind, error_status) = match kind {
        "invalid_request_error" => (ErrorKind::InvalidRequest, 400),
        "authentication_error" => (ErrorKind::Authentication, 401),
        "permission_error" => (ErrorKind::Permission, 403),
        "not_found_error" => (ErrorKind::NotFound, 404),
        "request_too_large" => (ErrorKind::InvalidRequest, 413),
        "rate_limit_error" => (ErrorKind::RateLimit, 429),
        // Out of credit: OpenAI's shape for it, and retriable so another provider can answer.
        "billing_error" => (ErrorKind::InsufficientQuota, 429),
        "timeout_error" => (ErrorKind::Timeout, 504),
        "api_error" => (ErrorKind::Server, 500),
        "overloaded_error" => (ErrorKind::Upstream, 503),
        _ => {
            let status = status.map_or(502, client_status);
            (ErrorKind::from_status(status), status)
        }
    };
    let mut err = ApiError::new(error_kind, message).with_status(error_status);
    if !kind.is_empty() {
        err = err.with_code(kind);
    }
    err
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::anthropic::PROVIDER;
    use crate::providers::testing::*;
    use crate::testkit::test;

    #[test]
    fn errors_map_to_openai_statuses() {
        let cases = [
            ErrorCase {
                status: 529,
                body: r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
                expected_status: 503,
                expected_type: "upstream_error",
                expected_code: Some("overloaded_error"),
            },
            ErrorCase {
                status: 429,
                body: r#"{"type":"error","error":{"type":"rate_limit_error","message":"slow"}}"#,
                expected_status: 429,
                expected_type: "rate_limit_error",
                expected_code: Some("rate_limit_error"),
            },
            ErrorCase {
                status: 401,
                body: r#"{"type":"error","error":{"type":"authentication_error","message":"bad key"}}"#,
                expected_status: 401,
                expected_type: "authentication_error",
                expected_code: Some("authentication_error"),
            },
            ErrorCase {
                status: 403,
                body: r#"{"type":"error","error":{"type":"permission_error","message":"no"}}"#,
                expected_status: 403,
                expected_type: "permission_error",
                expected_code: Some("permission_error"),
            },
            ErrorCase {
                status: 404,
                body: r#"{"type":"error","error":{"type":"not_found_error","message":"model: x"}}"#,
                expected_status: 404,
                expected_type: "invalid_request_error",
                expected_code: Some("not_found_error"),
            },
            ErrorCase {
                status: 413,
                body: r#"{"type":"error","error":{"type":"request_too_large","message":"big"}}"#,
                expected_status: 413,
                expected_type: "invalid_request_error",
                expected_code: Some("request_too_large"),
            },
            ErrorCase {
                status: 400,
                body: r#"{"type":"error","error":{"type":"invalid_request_error","message":"messages: bad"}}"#,
                expected_status: 400,
                expected_type: "invalid_request_error",
                expected_code: Some("invalid_request_error"),
            },
            ErrorCase {
                status: 500,
                body: r#"{"type":"error","error":{"type":"api_error","message":"oops"}}"#,
                expected_status: 500,
                expected_type: "server_error",
                expected_code: Some("api_error"),
            },
            ErrorCase {
                status: 402,
                body: r#"{"type":"error","error":{"type":"billing_error","message":"credit"}}"#,
                expected_status: 429,
                expected_type: "insufficient_quota",
                expected_code: Some("billing_error"),
            },
            ErrorCase {
                status: 504,
                body: r#"{"type":"error","error":{"type":"timeout_error","message":"slow"}}"#,
                expected_status: 504,
                expected_type: "timeout_error",
                expected_code: Some("timeout_error"),
            },
            ErrorCase {
                status: 418,
                body: r#"{"type":"error","error":{"type":"teapot_error","message":"short"}}"#,
                expected_status: 418,
                expected_type: "invalid_request_error",
                expected_code: Some("teapot_error"),
            },
            ErrorCase {
                status: 529,
                body: "<html>overloaded</html>",
                expected_status: 503,
                expected_type: "upstream_error",
                expected_code: None,
            },
            ErrorCase {
                status: 502,
                body: "",
                expected_status: 502,
                expected_type: "upstream_error",
                expected_code: None,
            },
        ];
        let p = provider(PROVIDER);
        for case in cases {
            case.check(p.as_ref());
        }
        let e = anthropic_error(
            529,
            br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
        );
        assert_eq!(e.message, "Overloaded");
        assert_eq!(
            anthropic_error(529, b"<html>overloaded</html>").message,
            "<html>overloaded</html>"
        );
    }
}
