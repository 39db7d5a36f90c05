//! Bedrock's error answers and stream exceptions → the OpenAI errors clients expect.

use crate::api::{ApiError, ErrorKind};
use crate::providers::error_message;
use serde::Deserialize;

/// A Bedrock error answer (`{"message": ...}`, or `Message`) mapped by its status.
pub(super) fn bedrock_error(status: u16, body: &[u8]) -> ApiError {
    let message = aws_message(body).unwrap_or_else(|| error_message(body));
    status_error(status, message)
}

/// The `message` of an AWS error body or exception payload.
pub(super) fn aws_message(payload: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct Payload {
        #[serde(alias = "Message")]
        message: String,
    }
    serde_json::from_slice::<Payload>(payload)
        .ok()
        .map(|p| p.message)
}

/// A Bedrock error status mapped to what OpenAI clients expect; throttling stays 429 and
/// unavailability 503, so Envoy's retry policy falls back.
fn status_error(status: u16, message: String) -> ApiError {
    let (kind, status) = match status {
        400 => (ErrorKind::InvalidRequest, 400),
        403 => (ErrorKind::Permission, 403),
        404 => (ErrorKind::NotFound, 404),
        // ModelTimeoutException
        408 => (ErrorKind::Timeout, 504),
        // ModelErrorException, ModelStreamErrorException
        424 => (ErrorKind::Upstream, 502),
        429 => (ErrorKind::RateLimit, 429),
        500 => (ErrorKind::Upstream, 502),
        503 => (ErrorKind::Upstream, 503),
        other => (ErrorKind::from_status(other), other),
    };
    ApiError::new(kind, message).with_status(status)
}

/// An exception event inside a ConverseStream, with the status its exception type carries.
pub(super) fn stream_exception(exception: &str, message: String) -> ApiError {
    let status = match exception {
        "throttlingException" | "serviceQuotaExceededException" => 429,
        "validationException" => 400,
        "accessDeniedException" => 403,
        "resourceNotFoundException" => 404,
        "modelTimeoutException" => 408,
        "serviceUnavailableException" | "modelNotReadyException" => 503,
        // modelStreamErrorException, internalServerException and anything new
        _ => 502,
    };
    status_error(status, message).with_code(exception)
}

#[cfg(test)]
mod tests {
    use crate::providers::bedrock::KEYS;
    use crate::providers::testing::*;
    use crate::testkit::test;

    struct Case {
        error: ErrorCase,
        /// The message a client sees: Bedrock's own.
        message: &'static str,
    }

    #[test]
    fn error_answers_keep_the_message() {
        let p = provider(KEYS);
        let cases = [
            Case {
                error: ErrorCase {
                    status: 429,
                    body: r#"{"message":"Too many requests, please wait before trying again."}"#,
                    expected_status: 429,
                    expected_type: "rate_limit_error",
                    expected_code: None,
                },
                message: "Too many requests, please wait before trying again.",
            },
            Case {
                error: ErrorCase {
                    status: 400,
                    body: r#"{"message":"The provided model identifier is invalid."}"#,
                    expected_status: 400,
                    expected_type: "invalid_request_error",
                    expected_code: None,
                },
                message: "The provided model identifier is invalid.",
            },
            Case {
                error: ErrorCase {
                    status: 403,
                    body: r#"{"Message":"The request signature we calculated does not match the signature you provided."}"#,
                    expected_status: 403,
                    expected_type: "permission_error",
                    expected_code: None,
                },
                message:
                    "The request signature we calculated does not match the signature you provided.",
            },
            Case {
                error: ErrorCase {
                    status: 404,
                    body: r#"{"message":"Model not found"}"#,
                    expected_status: 404,
                    expected_type: "invalid_request_error",
                    expected_code: None,
                },
                message: "Model not found",
            },
            Case {
                error: ErrorCase {
                    status: 408,
                    body: r#"{"message":"Model timed out"}"#,
                    expected_status: 504,
                    expected_type: "timeout_error",
                    expected_code: None,
                },
                message: "Model timed out",
            },
            Case {
                error: ErrorCase {
                    status: 424,
                    body: r#"{"message":"Model error"}"#,
                    expected_status: 502,
                    expected_type: "upstream_error",
                    expected_code: None,
                },
                message: "Model error",
            },
            Case {
                error: ErrorCase {
                    status: 500,
                    body: r#"{"message":"Internal error"}"#,
                    expected_status: 502,
                    expected_type: "upstream_error",
                    expected_code: None,
                },
                message: "Internal error",
            },
            Case {
                error: ErrorCase {
                    status: 503,
                    body: r#"{"message":"Service unavailable"}"#,
                    expected_status: 503,
                    expected_type: "upstream_error",
                    expected_code: None,
                },
                message: "Service unavailable",
            },
            Case {
                error: ErrorCase {
                    status: 502,
                    body: "<html>bad gateway</html>",
                    expected_status: 502,
                    expected_type: "upstream_error",
                    expected_code: None,
                },
                message: "<html>bad gateway</html>",
            },
        ];
        for case in cases {
            let e = case.error.check(p.as_ref());
            assert_eq!(e.message, case.message, "{}", case.error.body);
        }
    }
}
