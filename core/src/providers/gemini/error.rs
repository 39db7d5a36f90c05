//! Google's error answers (`{"error":{"code","message","status","details"}}`) and error events
//! → the OpenAI errors clients expect.

use super::wire::GoogleErrorDetail;
use crate::api::{ApiError, ErrorKind};
use crate::providers::error_message;
use serde::Deserialize;
use serde_json::Value;

impl GoogleErrorDetail {
    /// The error a client sees, from the Google status name, else the HTTP status.
    pub(super) fn to_gateway_error(&self, http: u16) -> ApiError {
        let key_invalid = self
            .details
            .iter()
            .any(|d| d.get("reason").and_then(Value::as_str) == Some("API_KEY_INVALID"));
        let (kind, status) = match self.status.as_deref() {
            _ if key_invalid => (ErrorKind::Authentication, 401),
            Some("RESOURCE_EXHAUSTED") => (ErrorKind::RateLimit, 429),
            Some("UNAVAILABLE" | "ABORTED") => (ErrorKind::Upstream, 503),
            Some("INVALID_ARGUMENT" | "FAILED_PRECONDITION" | "OUT_OF_RANGE") => {
                (ErrorKind::InvalidRequest, 400)
            }
            Some("PERMISSION_DENIED") => (ErrorKind::Permission, 403),
            Some("UNAUTHENTICATED") => (ErrorKind::Authentication, 401),
            Some("NOT_FOUND") => (ErrorKind::NotFound, 404),
            Some("DEADLINE_EXCEEDED") => (ErrorKind::Timeout, 504),
            Some("INTERNAL" | "UNKNOWN" | "DATA_LOSS") => (ErrorKind::Upstream, 502),
            _ => (ErrorKind::from_status(http), http),
        };
        let message = self
            .message
            .clone()
            .unwrap_or_else(|| "the provider returned an error".into());
        let mut err = ApiError::new(kind, message).with_status(status);
        err.code = if key_invalid {
            Some("invalid_api_key".into())
        } else {
            self.status.as_deref().map(str::to_ascii_lowercase)
        };
        if matches!(status, 429 | 503) {
            if let Some(seconds) = self.retry_delay() {
                err = err.with_retry_after(seconds);
            }
        }
        err
    }

    /// `google.rpc.RetryInfo.retryDelay` ("37s", "0.5s"), rounded up to whole seconds.
    fn retry_delay(&self) -> Option<u64> {
        let delay = self
            .details
            .iter()
            .find_map(|d| d.get("retryDelay").and_then(Value::as_str))?;
        let seconds: f64 = delay.strip_suffix('s')?.parse().ok()?;
        (seconds.is_finite() && seconds >= 0.0).then(|| seconds.ceil() as u64)
    }
}

/// A Google API error body (`{"error":{"code","message","status","details"}}`, also inside an
/// array) mapped to what an OpenAI client expects.
pub fn google_error(status: u16, body: &[u8]) -> ApiError {
    #[derive(Deserialize)]
    struct Envelope {
        error: GoogleErrorDetail,
    }
    // A struct also deserializes from an array, so the shape is chosen by the first byte.
    let is_array = body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[');
    let detail = if is_array {
        serde_json::from_slice::<Vec<Envelope>>(body)
            .ok()
            .and_then(|v| v.into_iter().next())
    } else {
        serde_json::from_slice::<Envelope>(body).ok()
    }
    .map(|e| e.error);
    match detail {
        Some(detail) => detail.to_gateway_error(status),
        None => {
            ApiError::new(ErrorKind::from_status(status), error_message(body)).with_status(status)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::gemini::YAML;
    use crate::providers::testing::*;
    use crate::testkit::test;

    struct Case {
        error: ErrorCase,
        /// The `retry-after` a client is told (from Google's RetryInfo).
        retry_after: Option<u64>,
    }

    #[test]
    fn errors() {
        let cases = [
            Case {
                error: ErrorCase {
                    status: 429,
                    body: r#"{"error":{"code":429,"message":"Quota exceeded","status":"RESOURCE_EXHAUSTED","details":[
                        {"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"36.5s"}]}}"#,
                    expected_status: 429,
                    expected_type: "rate_limit_error",
                    expected_code: Some("resource_exhausted"),
                },
                retry_after: Some(37),
            },
            Case {
                error: ErrorCase {
                    status: 503,
                    body: r#"{"error":{"code":503,"message":"The model is overloaded.","status":"UNAVAILABLE"}}"#,
                    expected_status: 503,
                    expected_type: "upstream_error",
                    expected_code: Some("unavailable"),
                },
                retry_after: None,
            },
            Case {
                error: ErrorCase {
                    status: 400,
                    body: r#"{"error":{"code":400,"message":"API key not valid.","status":"INVALID_ARGUMENT","details":[
                        {"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"API_KEY_INVALID","domain":"googleapis.com"}]}}"#,
                    expected_status: 401,
                    expected_type: "authentication_error",
                    expected_code: Some("invalid_api_key"),
                },
                retry_after: None,
            },
            Case {
                error: ErrorCase {
                    status: 400,
                    body: r#"{"error":{"code":400,"message":"Function call is missing a thought_signature","status":"INVALID_ARGUMENT"}}"#,
                    expected_status: 400,
                    expected_type: "invalid_request_error",
                    expected_code: Some("invalid_argument"),
                },
                retry_after: None,
            },
            Case {
                error: ErrorCase {
                    status: 403,
                    body: r#"{"error":{"code":403,"message":"denied","status":"PERMISSION_DENIED"}}"#,
                    expected_status: 403,
                    expected_type: "permission_error",
                    expected_code: Some("permission_denied"),
                },
                retry_after: None,
            },
            Case {
                error: ErrorCase {
                    status: 401,
                    body: r#"{"error":{"code":401,"message":"no token","status":"UNAUTHENTICATED"}}"#,
                    expected_status: 401,
                    expected_type: "authentication_error",
                    expected_code: Some("unauthenticated"),
                },
                retry_after: None,
            },
            Case {
                error: ErrorCase {
                    status: 404,
                    body: r#"[{"error":{"code":404,"message":"models/x is not found","status":"NOT_FOUND"}}]"#,
                    expected_status: 404,
                    expected_type: "invalid_request_error",
                    expected_code: Some("not_found"),
                },
                retry_after: None,
            },
            Case {
                error: ErrorCase {
                    status: 500,
                    body: r#"{"error":{"code":500,"message":"oops","status":"INTERNAL"}}"#,
                    expected_status: 502,
                    expected_type: "upstream_error",
                    expected_code: Some("internal"),
                },
                retry_after: None,
            },
            Case {
                error: ErrorCase {
                    status: 504,
                    body: r#"{"error":{"code":504,"message":"slow","status":"DEADLINE_EXCEEDED"}}"#,
                    expected_status: 504,
                    expected_type: "timeout_error",
                    expected_code: Some("deadline_exceeded"),
                },
                retry_after: None,
            },
            Case {
                error: ErrorCase {
                    status: 503,
                    body: "<html>busy</html>",
                    expected_status: 503,
                    expected_type: "upstream_error",
                    expected_code: None,
                },
                retry_after: None,
            },
        ];
        let p = provider(YAML);
        for case in cases {
            let e = case.error.check(p.as_ref());
            assert_eq!(e.retry_after, case.retry_after, "{}", case.error.body);
        }
        let e = google_error(503, b"<html>busy</html>");
        assert_eq!(e.message, "<html>busy</html>");
    }
}
