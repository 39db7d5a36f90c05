//! AWS Signature Version 4 in the `Authorization` header: a pure function of the request, the
//! time and the credentials, returning the headers to add.
//!
//! The canonical URI follows AWS's rule for every service but S3: the path as sent on the wire
//! (its segments already URI-encoded once) is URI-encoded again. A Bedrock model id such as
//! `anthropic.claude-3-5-sonnet-20240620-v1:0` travels as `...-v1%3A0` and is signed as
//! `...-v1%253A0`. Paths are not normalised (`.`/`..` segments): callers build their own paths.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

const ALGORITHM: &str = "AWS4-HMAC-SHA256";

pub struct Credentials<'a> {
    pub access_key_id: &'a str,
    pub secret_access_key: &'a str,
    /// Temporary credentials' token; sent as `x-amz-security-token` and signed.
    pub session_token: Option<&'a str>,
}

/// What is signed of a request.
pub struct Request<'a> {
    pub method: &'a str,
    /// The `Host` header as sent (with the port when it is not the scheme's default).
    pub host: &'a str,
    /// The path as sent on the wire.
    pub path: &'a str,
    /// Query parameters, not encoded.
    pub query: &'a [(&'a str, &'a str)],
    /// Headers to sign besides `host`, `x-amz-date` and `x-amz-security-token`.
    pub headers: &'a [(&'a str, &'a str)],
    pub payload: &'a [u8],
}

/// Where the signature is valid: region and service signing name (Bedrock's is `bedrock`).
pub struct Scope<'a> {
    pub region: &'a str,
    pub service: &'a str,
}

/// Signs the request at `now_ms` (Unix milliseconds). Returns the headers to add:
/// `x-amz-date`, `x-amz-security-token` (with a session token) and `authorization`.
pub fn sign(
    req: &Request,
    creds: &Credentials,
    scope: &Scope,
    now_ms: u64,
) -> Vec<(String, String)> {
    let (date, timestamp) = amz_date(now_ms);
    let mut headers: Vec<(String, String)> = vec![
        ("host".to_owned(), req.host.to_owned()),
        ("x-amz-date".to_owned(), timestamp.clone()),
    ];
    if let Some(token) = creds.session_token {
        headers.push(("x-amz-security-token".to_owned(), token.to_owned()));
    }
    headers.extend(
        req.headers
            .iter()
            .map(|(n, v)| (n.to_ascii_lowercase(), (*v).to_owned())),
    );
    let (canonical, signed_headers) = canonical_request(req, &headers);
    let credential_scope = format!("{date}/{}/{}/aws4_request", scope.region, scope.service);
    let string_to_sign = format!(
        "{ALGORITHM}\n{timestamp}\n{credential_scope}\n{}",
        hex(&Sha256::digest(canonical.as_bytes()))
    );
    let mut key = hmac(
        format!("AWS4{}", creds.secret_access_key).as_bytes(),
        date.as_bytes(),
    );
    for part in [scope.region, scope.service, "aws4_request"] {
        key = hmac(&key, part.as_bytes());
    }
    let signature = hex(&hmac(&key, string_to_sign.as_bytes()));

    let mut out = vec![("x-amz-date".to_owned(), timestamp)];
    if let Some(token) = creds.session_token {
        out.push(("x-amz-security-token".to_owned(), token.to_owned()));
    }
    out.push((
        "authorization".to_owned(),
        format!(
            "{ALGORITHM} Credential={}/{credential_scope}, SignedHeaders={signed_headers}, Signature={signature}",
            creds.access_key_id
        ),
    ));
    out
}

/// The canonical request and the `SignedHeaders` list, from lowercase-named headers.
fn canonical_request(req: &Request, headers: &[(String, String)]) -> (String, String) {
    let uri = if req.path.is_empty() {
        "/".to_owned()
    } else {
        req.path
            .split('/')
            .map(uri_encode)
            .collect::<Vec<_>>()
            .join("/")
    };

    let mut query: Vec<(String, String)> = req
        .query
        .iter()
        .map(|(k, v)| (uri_encode(k), uri_encode(v)))
        .collect();
    query.sort();
    let query = query
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");

    // Repeated headers are signed as one, values joined by commas in the order sent.
    let mut names: Vec<&str> = headers.iter().map(|(n, _)| n.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    let mut canonical_headers = String::new();
    for name in &names {
        let values: Vec<String> = headers
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| collapse_spaces(v))
            .collect();
        canonical_headers.push_str(name);
        canonical_headers.push(':');
        canonical_headers.push_str(&values.join(","));
        canonical_headers.push('\n');
    }
    let signed_headers = names.join(";");

    let canonical = format!(
        "{}\n{uri}\n{query}\n{canonical_headers}\n{signed_headers}\n{}",
        req.method,
        hex(&Sha256::digest(req.payload))
    );
    (canonical, signed_headers)
}

/// Trims a header value and collapses runs of spaces into one, as SigV4 requires.
fn collapse_spaces(value: &str) -> String {
    value.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// RFC 3986 encoding as AWS defines it: everything but `A-Za-z0-9-_.~` is `%XX` (uppercase).
pub fn uri_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    // HMAC accepts keys of any length, so construction cannot fail.
    match Hmac::<Sha256>::new_from_slice(key) {
        Ok(mut mac) => {
            mac.update(data);
            mac.finalize().into_bytes().to_vec()
        }
        Err(_) => Vec::new(),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `(YYYYMMDD, YYYYMMDDTHHMMSSZ)` in UTC for Unix milliseconds.
fn amz_date(now_ms: u64) -> (String, String) {
    let secs = now_ms / 1000;
    let (year, month, day) = civil_from_days(secs / 86_400);
    let rem = secs % 86_400;
    let date = format!("{year:04}{month:02}{day:02}");
    let timestamp = format!(
        "{date}T{:02}{:02}{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    );
    (date, timestamp)
}

/// Gregorian date of a day count since 1970-01-01 (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::test;

    /// 2015-08-30T12:36:00Z, the time of AWS's SigV4 test suite.
    const SUITE_TIME_MS: u64 = 1_440_938_160_000;
    const SUITE_TOKEN: &str = "AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpSPfIeoIYRqTflfKD8YUuwthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBAz+scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA==";

    struct Vector {
        name: &'static str,
        method: &'static str,
        path: &'static str,
        query: &'static [(&'static str, &'static str)],
        headers: &'static [(&'static str, &'static str)],
        payload: &'static str,
        session_token: Option<&'static str>,
        authorization: &'static str,
    }

    /// Cases of AWS's published SigV4 test suite (aws-sig-v4-test-suite, as distributed with
    /// the AWS General Reference: credentials AKIDEXAMPLE, region us-east-1, service
    /// `service`). The `authorization` values are the suite's `.authz` files, verbatim.
    const VECTORS: &[Vector] = &[
        Vector {
            name: "get-vanilla",
            method: "GET",
            path: "/",
            query: &[],
            headers: &[],
            payload: "",
            session_token: None,
            authorization: "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
        },
        Vector {
            name: "post-vanilla",
            method: "POST",
            path: "/",
            query: &[],
            headers: &[],
            payload: "",
            session_token: None,
            authorization: "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b",
        },
        Vector {
            name: "post-x-www-form-urlencoded",
            method: "POST",
            path: "/",
            query: &[],
            headers: &[("Content-Type", "application/x-www-form-urlencoded")],
            payload: "Param1=value1",
            session_token: None,
            authorization: "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a",
        },
        Vector {
            name: "post-sts-header-before",
            method: "POST",
            path: "/",
            query: &[],
            headers: &[],
            payload: "",
            session_token: Some(SUITE_TOKEN),
            authorization: "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date;x-amz-security-token, Signature=85d96828115b5dc0cfc3bd16ad9e210dd772bbebba041836c64533a82be05ead",
        },
        Vector {
            name: "get-utf8",
            method: "GET",
            path: "/\u{1234}",
            query: &[],
            headers: &[],
            payload: "",
            session_token: None,
            authorization: "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85",
        },
        Vector {
            name: "get-unreserved",
            method: "GET",
            path: "/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
            query: &[],
            headers: &[],
            payload: "",
            session_token: None,
            authorization: "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f",
        },
        Vector {
            name: "get-vanilla-query-order-key-case",
            method: "GET",
            path: "/",
            query: &[("Param2", "value2"), ("Param1", "value1")],
            headers: &[],
            payload: "",
            session_token: None,
            authorization: "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500",
        },
        Vector {
            name: "get-vanilla-query-order-value",
            method: "GET",
            path: "/",
            query: &[("Param1", "value2"), ("Param1", "value1")],
            headers: &[],
            payload: "",
            session_token: None,
            authorization: "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5772eed61e12b33fae39ee5e7012498b51d56abc0abb7c60486157bd471c4694",
        },
        Vector {
            name: "get-vanilla-utf8-query",
            method: "GET",
            path: "/",
            query: &[("\u{1234}", "bar")],
            headers: &[],
            payload: "",
            session_token: None,
            authorization: "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=2cdec8eed098649ff3a119c94853b13c643bcf08f8b0a1d91e12c9027818dd04",
        },
        Vector {
            name: "get-vanilla-query-unreserved",
            method: "GET",
            path: "/",
            query: &[(
                "-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
                "-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
            )],
            headers: &[],
            payload: "",
            session_token: None,
            authorization: "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=9c3e54bfcdf0b19771a7f523ee5669cdf59bc7cc0884027167c21bb143a40197",
        },
        Vector {
            name: "get-header-value-trim",
            method: "GET",
            path: "/",
            query: &[],
            headers: &[("My-Header1", " value1"), ("My-Header2", " \"a   b   c\"")],
            payload: "",
            session_token: None,
            authorization: "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;my-header1;my-header2;x-amz-date, Signature=acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736",
        },
        Vector {
            name: "get-header-key-duplicate",
            method: "GET",
            path: "/",
            query: &[],
            headers: &[
                ("My-Header1", "value2"),
                ("My-Header1", "value2"),
                ("My-Header1", "value1"),
            ],
            payload: "",
            session_token: None,
            authorization: "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;my-header1;x-amz-date, Signature=c9d5ea9f3f72853aea855b47ea873832890dbdd183b4468f858259531a5138ea",
        },
        Vector {
            name: "post-header-value-case",
            method: "POST",
            path: "/",
            query: &[],
            headers: &[("My-Header1", "VALUE1")],
            payload: "",
            session_token: None,
            authorization: "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;my-header1;x-amz-date, Signature=cdbc9802e29d2942e5e10b5bccfdd67c5f22c7c4e8ae67b53629efa58b974b7d",
        },
    ];

    #[test]
    fn aws_test_suite_vectors() {
        for v in VECTORS {
            let headers = sign(
                &Request {
                    method: v.method,
                    host: "example.amazonaws.com",
                    path: v.path,
                    query: v.query,
                    headers: v.headers,
                    payload: v.payload.as_bytes(),
                },
                &Credentials {
                    access_key_id: "AKIDEXAMPLE",
                    secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
                    session_token: v.session_token,
                },
                &Scope {
                    region: "us-east-1",
                    service: "service",
                },
                SUITE_TIME_MS,
            );
            let get = |name: &str| {
                headers
                    .iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, value)| value.as_str())
            };
            assert_eq!(get("authorization"), Some(v.authorization), "{}", v.name);
            assert_eq!(get("x-amz-date"), Some("20150830T123600Z"), "{}", v.name);
            assert_eq!(get("x-amz-security-token"), v.session_token, "{}", v.name);
        }
    }

    /// The suite's `get-vanilla-query-order-key-case.creq`, verbatim.
    #[test]
    fn canonical_request_matches_the_suite() {
        let req = Request {
            method: "GET",
            host: "example.amazonaws.com",
            path: "/",
            query: &[("Param2", "value2"), ("Param1", "value1")],
            headers: &[],
            payload: b"",
        };
        let headers = [
            ("host".to_owned(), "example.amazonaws.com".to_owned()),
            ("x-amz-date".to_owned(), "20150830T123600Z".to_owned()),
        ];
        let (creq, signed) = canonical_request(&req, &headers);
        assert_eq!(
            creq,
            "GET\n/\nParam1=value1&Param2=value2\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(signed, "host;x-amz-date");
    }

    #[test]
    fn model_ids_are_encoded_twice_in_the_canonical_uri() {
        let req = Request {
            method: "POST",
            host: "bedrock-runtime.us-east-1.amazonaws.com",
            path: "/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse",
            query: &[],
            headers: &[],
            payload: b"{}",
        };
        let (creq, _) = canonical_request(&req, &[]);
        assert!(
            creq.starts_with(
                "POST\n/model/anthropic.claude-3-5-sonnet-20240620-v1%253A0/converse\n"
            ),
            "{creq}"
        );
    }

    /// A moment (which names the case) and how SigV4 writes its date and time.
    struct DateCase {
        unix_ms: u64,
        date: &'static str,
        stamp: &'static str,
    }

    #[test]
    fn dates_from_unix_time() {
        let cases = [
            DateCase {
                unix_ms: 0,
                date: "19700101",
                stamp: "19700101T000000Z",
            },
            DateCase {
                unix_ms: SUITE_TIME_MS,
                date: "20150830",
                stamp: "20150830T123600Z",
            },
            DateCase {
                unix_ms: 951_782_400_000,
                date: "20000229",
                stamp: "20000229T000000Z",
            },
            DateCase {
                unix_ms: 1_709_251_199_000,
                date: "20240229",
                stamp: "20240229T235959Z",
            },
            DateCase {
                unix_ms: 4_102_444_800_000,
                date: "21000101",
                stamp: "21000101T000000Z",
            },
        ];
        for case in cases {
            assert_eq!(
                amz_date(case.unix_ms),
                (case.date.to_owned(), case.stamp.to_owned()),
                "{}",
                case.unix_ms
            );
        }
    }
}
