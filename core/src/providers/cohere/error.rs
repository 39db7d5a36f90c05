//! Cohere's error answers (`{"message": ...}`) → the OpenAI errors clients expect.

use crate::api::{ApiError, ErrorKind};
use crate::providers::error_message;

/// Cohere's `{"message": ...}` error (sometimes with an `id`) mapped to what OpenAI clients
/// expect; retriable states come out as 429/503 so Envoy falls back.
pub(super) fn cohere_error(status: u16, body: &[u8]) -> ApiError {
    let message = error_message(body);
    let (kind, status, code) = match status {
        402 => (
            ErrorKind::InsufficientQuota,
            429,
            Some("insufficient_quota"),
        ),
        422 => (ErrorKind::InvalidRequest, 400, None),
        498 => (ErrorKind::Authentication, 401, Some("invalid_api_key")),
        499 => (ErrorKind::Upstream, 503, Some("request_cancelled")),
        503 => (ErrorKind::Upstream, 503, None),
        504 => (ErrorKind::Timeout, 504, None),
        500..=599 => (ErrorKind::Upstream, 502, None),
        _ => (ErrorKind::from_status(status), status, None),
    };
    let err = ApiError::new(kind, message).with_status(status);
    match code {
        Some(code) => err.with_code(code),
        None => err,
    }
}

#[cfg(test)]
mod tests {
    use crate::providers::cohere::YAML;
    use crate::providers::testing::*;
    use crate::testkit::test;

    #[test]
    fn errors() {
        let cases = [
            ErrorCase {
                status: 400,
                body: r#"{"id":"e1","message":"cohere says 400"}"#,
                expected_status: 400,
                expected_type: "invalid_request_error",
                expected_code: None,
            },
            ErrorCase {
                status: 401,
                body: r#"{"id":"e1","message":"cohere says 401"}"#,
                expected_status: 401,
                expected_type: "authentication_error",
                expected_code: None,
            },
            ErrorCase {
                status: 402,
                body: r#"{"id":"e1","message":"cohere says 402"}"#,
                expected_status: 429,
                expected_type: "insufficient_quota",
                expected_code: Some("insufficient_quota"),
            },
            ErrorCase {
                status: 404,
                body: r#"{"id":"e1","message":"cohere says 404"}"#,
                expected_status: 404,
                expected_type: "invalid_request_error",
                expected_code: None,
            },
            ErrorCase {
                status: 422,
                body: r#"{"id":"e1","message":"cohere says 422"}"#,
                expected_status: 400,
                expected_type: "invalid_request_error",
                expected_code: None,
            },
            ErrorCase {
                status: 429,
                body: r#"{"id":"e1","message":"cohere says 429"}"#,
                expected_status: 429,
                expected_type: "rate_limit_error",
                expected_code: None,
            },
            ErrorCase {
                status: 498,
                body: r#"{"id":"e1","message":"cohere says 498"}"#,
                expected_status: 401,
                expected_type: "authentication_error",
                expected_code: Some("invalid_api_key"),
            },
            ErrorCase {
                status: 499,
                body: r#"{"id":"e1","message":"cohere says 499"}"#,
                expected_status: 503,
                expected_type: "upstream_error",
                expected_code: Some("request_cancelled"),
            },
            ErrorCase {
                status: 500,
                body: r#"{"id":"e1","message":"cohere says 500"}"#,
                expected_status: 502,
                expected_type: "upstream_error",
                expected_code: None,
            },
            ErrorCase {
                status: 503,
                body: r#"{"id":"e1","message":"cohere says 503"}"#,
                expected_status: 503,
                expected_type: "upstream_error",
                expected_code: None,
            },
            ErrorCase {
                status: 504,
                body: r#"{"id":"e1","message":"cohere says 504"}"#,
                expected_status: 504,
                expected_type: "timeout_error",
                expected_code: None,
            },
        ];
        let p = provider(YAML);
        for case in cases {
            let e = case.check(p.as_ref());
            assert_eq!(
                e.message,
                format!("cohere says {}", case.status),
                "Cohere's message is kept"
            );
        }
        assert_eq!(
            p.error_response(503, b"<html>busy</html>").message,
            "<html>busy</html>"
        );
    }
}
