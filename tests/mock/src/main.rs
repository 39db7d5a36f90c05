//! switchboard-mock: a fake LLM provider for Switchboard's end-to-end tests and benchmarks.
//!
//! This file holds what every wire format shares: the CLI, the server, routing, behaviour
//! directives and request recording. Each wire format is one module (`openai`, `anthropic`,
//! `bedrock`, `gemini`, `vertex`, ...) with `route`, `handle` and `error`; the deterministic
//! "model" lives in `conversation`.

mod anthropic;
mod bedrock;
mod cohere;
mod conversation;
mod gemini;
mod openai;
mod responses;
mod vertex;

use std::collections::VecDeque;
use std::convert::Infallible;
use std::io::Write as _;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::Response;
use axum::serve::ListenerExt as _;
use axum::Router;
use serde_json::{json, Map, Value};
use tokio::net::TcpListener;

/// How many recorded requests are kept.
const MAX_RECORDS: usize = 1000;
/// Largest request body accepted.
const MAX_BODY: usize = 64 * 1024 * 1024;
/// Path prefix carrying directives: `/mock/<directives>/rest/of/path`.
const DIRECTIVE_PREFIX: &str = "/mock/";
/// Header prefix carrying directives: `x-mock-<name>: <value>`.
const DIRECTIVE_HEADER: &str = "x-mock-";

const USAGE: &str = "usage: switchboard-mock [--host 127.0.0.1] [--port 0] [--threads 1] \
[--aws-access-key-id AKIDEXAMPLE] [--aws-secret-access-key KEY] [--aws-allow-unsigned]";

/// The credentials Bedrock requests must be signed with unless given: AWS's documentation
/// example keys.
const DEFAULT_AWS_ACCESS_KEY_ID: &str = "AKIDEXAMPLE";
const DEFAULT_AWS_SECRET_ACCESS_KEY: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

// ---------------------------------------------------------------------------------------------
// CLI

#[derive(Debug, PartialEq)]
struct Args {
    host: String,
    port: u16,
    threads: usize,
    /// What Bedrock requests' SigV4 signatures are checked against.
    aws: bedrock::Credentials,
}

#[derive(Debug, PartialEq)]
enum Cli {
    Run(Args),
    Help,
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Cli, String> {
    let mut out = Args {
        host: "127.0.0.1".to_owned(),
        port: 0,
        threads: 1,
        aws: bedrock::Credentials {
            access_key_id: DEFAULT_AWS_ACCESS_KEY_ID.to_owned(),
            secret_access_key: DEFAULT_AWS_SECRET_ACCESS_KEY.to_owned(),
            allow_unsigned: false,
        },
    };
    while let Some(arg) = args.next() {
        if arg == "-h" || arg == "--help" {
            return Ok(Cli::Help);
        }
        if arg == "--aws-allow-unsigned" {
            out.aws.allow_unsigned = true;
            continue;
        }
        let known = [
            "--host",
            "--port",
            "--threads",
            "--aws-access-key-id",
            "--aws-secret-access-key",
        ];
        if !known.contains(&arg.split_once('=').map_or(arg.as_str(), |(name, _)| name)) {
            return Err(format!("unknown argument {arg}"));
        }
        let (name, value) = match arg.split_once('=') {
            Some((name, value)) if name.starts_with("--") => (name.to_owned(), value.to_owned()),
            _ => {
                let value = args.next().ok_or_else(|| format!("{arg} needs a value"))?;
                (arg, value)
            }
        };
        match name.as_str() {
            "--host" => out.host = value,
            "--port" => {
                out.port = value
                    .parse()
                    .map_err(|_| format!("--port: not a port number: {value}"))?
            }
            "--threads" => {
                out.threads = value
                    .parse()
                    .ok()
                    .filter(|n| *n >= 1)
                    .ok_or_else(|| format!("--threads: not a positive number: {value}"))?
            }
            "--aws-access-key-id" => out.aws.access_key_id = value,
            "--aws-secret-access-key" => out.aws.secret_access_key = value,
            _ => return Err(format!("unknown argument {name}")),
        }
    }
    Ok(Cli::Run(out))
}

fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(Cli::Run(args)) => args,
        Ok(Cli::Help) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("switchboard-mock: {message}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("switchboard-mock: cannot start the runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("switchboard-mock: {err}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(args: Args) -> std::io::Result<()> {
    let listener = TcpListener::bind((args.host.as_str(), args.port)).await?;
    let addr = listener.local_addr()?;
    {
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "listening on {addr}")?;
        stdout.flush()?;
    }
    let app = Router::new().fallback(handle).with_state(Arc::new(Mock {
        seq: AtomicU64::default(),
        records: Mutex::default(),
        aws: args.aws,
    }));
    let listener = listener.tap_io(|tcp| {
        // Stream events are small writes; do not let Nagle hold them back.
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, app).await
}

// ---------------------------------------------------------------------------------------------
// Directives

/// How a request asks the mock to behave. Built from the path prefix, then the headers (which
/// win).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Directives {
    /// `status=N`: answer with this status; >= 400 gives the format's error body.
    pub status: Option<u16>,
    /// `delay=MS`: wait before the response headers.
    pub delay_ms: u64,
    /// `malformed`: a body (or stream event) that is not valid JSON.
    pub malformed: bool,
    /// `cut`: a truncated body, or a stream that ends early without its final events.
    pub cut: bool,
    /// `midstream_error`: a stream that fails after its first events with the format's
    /// in-stream error event (where the format has one, e.g. Anthropic's `error`).
    pub midstream_error: bool,
    /// `chunk_delay=MS`: wait between stream events.
    pub chunk_delay_ms: u64,
    /// `usage=prompt:P;completion:C;cached:K;cache_write:W;reasoning:R`.
    pub usage: UsageOverride,
    /// `reply=TEXT`: the assistant text.
    pub reply: Option<String>,
    /// `tool_call=NAME {JSON arguments}`: the tool call to make (see `conversation::respond`).
    pub tool_call: Option<String>,
}

/// Token counts forced by the `usage` directive; `None` means computed (or 0 for the details).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct UsageOverride {
    pub prompt: Option<u64>,
    pub completion: Option<u64>,
    pub cached: Option<u64>,
    pub cache_write: Option<u64>,
    pub reasoning: Option<u64>,
}

impl Directives {
    /// Applies one directive; unknown names and unparsable values are ignored.
    fn set(&mut self, name: &str, value: &str) {
        let value = value.trim();
        match name.trim().replace('-', "_").as_str() {
            "status" => {
                if let Ok(status) = value.parse::<u16>() {
                    if (200..=599).contains(&status) {
                        self.status = Some(status);
                    }
                }
            }
            "delay" => {
                if let Ok(ms) = value.parse() {
                    self.delay_ms = ms;
                }
            }
            "chunk_delay" => {
                if let Ok(ms) = value.parse() {
                    self.chunk_delay_ms = ms;
                }
            }
            "malformed" => self.malformed = flag(value),
            "cut" => self.cut = flag(value),
            "midstream_error" => self.midstream_error = flag(value),
            "reply" => self.reply = Some(value.to_owned()),
            "tool_call" => self.tool_call = Some(value.to_owned()),
            "usage" => {
                for item in value.split([';', ' ']) {
                    let Some((key, number)) = item.split_once([':', '=']) else {
                        continue;
                    };
                    let Ok(number) = number.trim().parse::<u64>() else {
                        continue;
                    };
                    let slot = match key.trim() {
                        "prompt" => &mut self.usage.prompt,
                        "completion" => &mut self.usage.completion,
                        "cached" => &mut self.usage.cached,
                        "cache_write" => &mut self.usage.cache_write,
                        "reasoning" => &mut self.usage.reasoning,
                        _ => continue,
                    };
                    *slot = Some(number);
                }
            }
            _ => {}
        }
    }

    /// Applies a comma-separated, percent-encoded list like `status=503,delay=50,cut`.
    fn apply_list(&mut self, list: &str) {
        for item in list.split(',').filter(|i| !i.is_empty()) {
            let (name, value) = item.split_once('=').unwrap_or((item, ""));
            self.set(&percent_decode(name, false), &percent_decode(value, false));
        }
    }

    /// Applies `x-mock-<name>: <value>` headers.
    fn apply_headers(&mut self, headers: &HeaderMap) {
        for (name, value) in headers {
            if let Some(directive) = name.as_str().strip_prefix(DIRECTIVE_HEADER) {
                self.set(directive, &String::from_utf8_lossy(value.as_bytes()));
            }
        }
    }
}

/// A flag directive is on unless its value says otherwise (`0`, `false`, `no`, `off`).
fn flag(value: &str) -> bool {
    !matches!(
        value.to_ascii_lowercase().as_str(),
        "0" | "false" | "no" | "off"
    )
}

/// Splits `/mock/<directives>/rest?query` into the directive list and `/rest?query`.
fn strip_directive_prefix(raw_path: &str) -> (Option<&str>, String) {
    let Some(rest) = raw_path.strip_prefix(DIRECTIVE_PREFIX) else {
        return (None, raw_path.to_owned());
    };
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (list, remainder) = rest.split_at(end);
    let path = if remainder.starts_with('/') {
        remainder.to_owned()
    } else {
        format!("/{remainder}")
    };
    (Some(list), path)
}

/// Decodes `%XX` escapes (and `+` as a space when `plus` is set); bad escapes stay as they are.
fn percent_decode(text: &str, plus: bool) -> String {
    if !text.contains(['%', '+']) {
        return text.to_owned();
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let hex = |at: usize| {
            bytes
                .get(at)
                .and_then(|c| char::from(*c).to_digit(16))
                .map(|d| d as u8)
        };
        match b {
            b'%' => match (hex(i + 1), hex(i + 2)) {
                (Some(hi), Some(lo)) => {
                    out.push(hi * 16 + lo);
                    i += 3;
                    continue;
                }
                _ => out.push(b),
            },
            b'+' if plus => out.push(b' '),
            _ => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The value of a query parameter, decoded.
fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    query?.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        (percent_decode(key, true) == name).then(|| percent_decode(value, true))
    })
}

// ---------------------------------------------------------------------------------------------
// Recording

/// One request as the mock received it.
#[derive(Debug)]
struct Record {
    seq: u64,
    method: String,
    /// After directive-prefix stripping, with the query string.
    path: String,
    /// As received.
    raw_path: String,
    /// Lowercased names; repeated headers joined with ", ".
    headers: Map<String, Value>,
    /// Parsed JSON, or the raw text when the body is not JSON.
    body: Value,
    /// Whether `body` is parsed JSON (rather than the raw text).
    body_is_json: bool,
}

impl Record {
    fn to_json(&self) -> Value {
        json!({
            "seq": self.seq,
            "method": self.method,
            "path": self.path,
            "raw_path": self.raw_path,
            "headers": self.headers,
            "body": self.body,
        })
    }

    fn test_id(&self) -> Option<&str> {
        self.headers.get("x-test-id").and_then(Value::as_str)
    }
}

struct Mock {
    seq: AtomicU64,
    records: Mutex<VecDeque<Arc<Record>>>,
    aws: bedrock::Credentials,
}

impl Mock {
    fn records(&self) -> std::sync::MutexGuard<'_, VecDeque<Arc<Record>>> {
        self.records.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn record(&self, record: Arc<Record>) {
        let mut records = self.records();
        if records.len() >= MAX_RECORDS {
            records.pop_front();
        }
        records.push_back(record);
    }
}

fn header_map_json(headers: &HeaderMap) -> Map<String, Value> {
    let mut out = Map::new();
    for name in headers.keys() {
        let joined = headers
            .get_all(name)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()))
            .collect::<Vec<_>>()
            .join(", ");
        out.insert(name.as_str().to_owned(), Value::String(joined));
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Replies

/// What a wire-format module answers; turned into an HTTP response here.
#[derive(Debug)]
pub enum Reply {
    Full {
        status: u16,
        content_type: &'static str,
        headers: Vec<(&'static str, String)>,
        body: Vec<u8>,
    },
    /// A streamed body: each event is written and flushed on its own, `chunk_delay` apart.
    Stream {
        content_type: &'static str,
        events: Vec<Vec<u8>>,
    },
}

impl Reply {
    /// A JSON body with this status.
    pub fn json(status: u16, value: &Value) -> Self {
        Reply::Full {
            status,
            content_type: "application/json",
            headers: Vec::new(),
            body: value.to_string().into_bytes(),
        }
    }

    /// A successful JSON answer, spoiled as the `malformed` and `cut` directives ask.
    pub fn json_answer(value: &Value, directives: &Directives) -> Self {
        let mut body = value.to_string().into_bytes();
        if directives.malformed {
            body = b"{\"mock\": \"malformed\", this is not json".to_vec();
        } else if directives.cut {
            body.truncate(body.len() / 2);
        }
        Reply::Full {
            status: 200,
            content_type: "application/json",
            headers: Vec::new(),
            body,
        }
    }

    /// Adds a response header.
    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        if let Reply::Full { headers, .. } = &mut self {
            headers.push((name, value.into()));
        }
        self
    }

    fn into_response(self, status_override: Option<u16>, chunk_delay: Duration) -> Response {
        let (status, content_type, headers, body) = match self {
            Reply::Full {
                status,
                content_type,
                headers,
                body,
            } => (status, content_type, headers, Body::from(body)),
            Reply::Stream {
                content_type,
                events,
            } => {
                let stream = futures_util::stream::unfold(
                    (events.into_iter(), false),
                    move |(mut events, started)| async move {
                        let event = events.next()?;
                        if started && !chunk_delay.is_zero() {
                            tokio::time::sleep(chunk_delay).await;
                        }
                        Some((Ok::<_, Infallible>(Bytes::from(event)), (events, true)))
                    },
                );
                let headers = vec![("cache-control", "no-cache".to_owned())];
                (200, content_type, headers, Body::from_stream(stream))
            }
        };
        // A success status directive (2xx/3xx) replaces the status of a successful answer.
        let status = match status_override {
            Some(forced) if status == 200 && forced < 400 => forced,
            _ => status,
        };
        let mut response = Response::new(body);
        *response.status_mut() =
            StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let map = response.headers_mut();
        map.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        for (name, value) in headers {
            if let Ok(value) = HeaderValue::from_str(&value) {
                map.append(HeaderName::from_static(name), value);
            }
        }
        response
    }
}

/// What a wire-format module is given for one request.
pub struct Call<'a> {
    pub seq: u64,
    pub method: &'a Method,
    /// The path after prefix stripping, without the query string.
    pub path: &'a str,
    /// The body as JSON, or `None` when it is not JSON.
    pub body: Option<&'a Value>,
    pub directives: &'a Directives,
    /// Unix seconds.
    pub created: u64,
}

/// A request exactly as received, for formats that check a signature over it (Bedrock's SigV4).
pub struct Received<'a> {
    /// Path and query, directive prefix included.
    pub raw_path: &'a str,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
}

// ---------------------------------------------------------------------------------------------
// Routing

/// The endpoint a request is for, across wire formats.
enum Route {
    OpenAi(openai::Endpoint),
    Anthropic(anthropic::Endpoint),
    Gemini(gemini::Endpoint),
    Vertex(vertex::Endpoint),
    Cohere(cohere::Endpoint),
    Bedrock(bedrock::Endpoint),
}

fn route(method: &Method, path: &str) -> Option<Route> {
    openai::route(method, path)
        .map(Route::OpenAi)
        .or_else(|| anthropic::route(method, path).map(Route::Anthropic))
        .or_else(|| gemini::route(method, path).map(Route::Gemini))
        .or_else(|| vertex::route(method, path).map(Route::Vertex))
        .or_else(|| cohere::route(method, path).map(Route::Cohere))
        .or_else(|| bedrock::route(method, path).map(Route::Bedrock))
}

impl Route {
    fn handle(&self, call: &Call, received: &Received, mock: &Mock) -> Reply {
        match self {
            Route::OpenAi(endpoint) => openai::handle(endpoint, call),
            Route::Anthropic(endpoint) => anthropic::handle(endpoint, call),
            Route::Gemini(endpoint) => gemini::handle(endpoint, call),
            Route::Vertex(endpoint) => vertex::handle(endpoint, call),
            Route::Cohere(endpoint) => cohere::handle(endpoint, call),
            Route::Bedrock(endpoint) => bedrock::handle(endpoint, call, received, &mock.aws),
        }
    }

    fn error(&self, status: u16, call: &Call, received: &Received, mock: &Mock) -> Reply {
        match self {
            Route::OpenAi(_) => openai::error(status, call),
            Route::Anthropic(_) => anthropic::error(status, call),
            Route::Gemini(_) => gemini::error(status, call),
            Route::Vertex(_) => vertex::error(status, call),
            Route::Cohere(_) => cohere::error(status, call),
            Route::Bedrock(_) => bedrock::error(status, call, received, &mock.aws),
        }
    }
}

async fn handle(State(mock): State<Arc<Mock>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    if parts.uri.path() == "/_mock" || parts.uri.path().starts_with("/_mock/") {
        return admin(&mock, &parts.method, parts.uri.path(), parts.uri.query());
    }
    let seq = mock.seq.fetch_add(1, Ordering::Relaxed) + 1;
    let bytes = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(bytes) => bytes,
        Err(_) => {
            let body = json!({"error": {"message": "request body too large or unreadable",
                "type": "invalid_request_error", "param": null, "code": null}});
            return Reply::json(413, &body).into_response(None, Duration::ZERO);
        }
    };

    let raw_path = parts
        .uri
        .path_and_query()
        .map(|pq| pq.as_str())
        .unwrap_or("/")
        .to_owned();
    let (list, path) = strip_directive_prefix(&raw_path);
    let mut directives = Directives::default();
    if let Some(list) = list {
        directives.apply_list(list);
    }
    directives.apply_headers(&parts.headers);

    let (body, body_is_json) = match serde_json::from_slice::<Value>(&bytes) {
        Ok(value) => (value, true),
        Err(_) => (
            Value::String(String::from_utf8_lossy(&bytes).into_owned()),
            false,
        ),
    };
    let record = Arc::new(Record {
        seq,
        method: parts.method.to_string(),
        path,
        raw_path,
        headers: header_map_json(&parts.headers),
        body,
        body_is_json,
    });
    mock.record(Arc::clone(&record));

    if directives.delay_ms > 0 {
        tokio::time::sleep(Duration::from_millis(directives.delay_ms)).await;
    }

    let path_only = record.path.split('?').next().unwrap_or("");
    let call = Call {
        seq,
        method: &parts.method,
        path: path_only,
        body: record.body_is_json.then_some(&record.body),
        directives: &directives,
        created: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
    };
    let received = Received {
        raw_path: &record.raw_path,
        headers: &parts.headers,
        body: &bytes,
    };
    let reply = match route(&parts.method, path_only) {
        None => openai::not_found(&call),
        Some(route) => match directives.status {
            Some(status) if status >= 400 => route.error(status, &call, &received, &mock),
            _ => route.handle(&call, &received, &mock),
        },
    };
    let mut response = reply.into_response(
        directives.status,
        Duration::from_millis(directives.chunk_delay_ms),
    );
    if let Ok(id) = HeaderValue::from_str(&format!("req_mock_{seq}")) {
        response.headers_mut().insert("x-request-id", id);
    }
    response
}

/// `/_mock/*`: inspection endpoints, never recorded.
fn admin(mock: &Mock, method: &Method, path: &str, query: Option<&str>) -> Response {
    let reply = match (method, path.trim_end_matches('/')) {
        (&Method::GET, "/_mock/health") => Reply::Full {
            status: 200,
            content_type: "text/plain",
            headers: Vec::new(),
            body: b"ok".to_vec(),
        },
        (&Method::GET, "/_mock/requests") => {
            let test_id = query_param(query, "test_id");
            let records: Vec<Arc<Record>> = mock
                .records()
                .iter()
                .filter(|r| test_id.is_none() || r.test_id() == test_id.as_deref())
                .cloned()
                .collect();
            let list: Vec<Value> = records.iter().map(|r| r.to_json()).collect();
            Reply::json(200, &Value::Array(list))
        }
        (&Method::DELETE, "/_mock/requests") => {
            let cleared = {
                let mut records = mock.records();
                let n = records.len();
                records.clear();
                n
            };
            Reply::json(200, &json!({ "cleared": cleared }))
        }
        _ => Reply::json(
            404,
            &json!({"error": {"message": format!("unknown mock endpoint: {method} {path}"),
                "type": "invalid_request_error", "param": null, "code": "unknown_url"}}),
        ),
    };
    reply.into_response(None, Duration::ZERO)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Result<Cli, String> {
        parse_args(list.iter().map(|s| s.to_string()))
    }

    #[test]
    fn cli() {
        assert_eq!(
            args(&[]),
            Ok(Cli::Run(Args {
                host: "127.0.0.1".into(),
                port: 0,
                threads: 1,
                aws: bedrock::Credentials {
                    access_key_id: DEFAULT_AWS_ACCESS_KEY_ID.into(),
                    secret_access_key: DEFAULT_AWS_SECRET_ACCESS_KEY.into(),
                    allow_unsigned: false,
                },
            }))
        );
        assert_eq!(
            args(&[
                "--host",
                "0.0.0.0",
                "--port=8080",
                "--threads",
                "4",
                "--aws-access-key-id",
                "AKIDTEST",
                "--aws-secret-access-key=s3cret",
            ]),
            Ok(Cli::Run(Args {
                host: "0.0.0.0".into(),
                port: 8080,
                threads: 4,
                aws: bedrock::Credentials {
                    access_key_id: "AKIDTEST".into(),
                    secret_access_key: "s3cret".into(),
                    allow_unsigned: false,
                },
            }))
        );
        assert_eq!(args(&["--help"]), Ok(Cli::Help));
        assert!(args(&["--threads", "0"]).is_err());
        assert!(args(&["--port"]).is_err());
        assert!(args(&["--bogus", "1"]).is_err());
    }

    #[test]
    fn prefix_stripping() {
        assert_eq!(
            strip_directive_prefix("/mock/status=503,delay=5/v1/chat/completions?a=1"),
            (
                Some("status=503,delay=5"),
                "/v1/chat/completions?a=1".into()
            )
        );
        assert_eq!(
            strip_directive_prefix("/v1/embeddings"),
            (None, "/v1/embeddings".into())
        );
        assert_eq!(
            strip_directive_prefix("/mock/cut?x=1"),
            (Some("cut"), "/?x=1".into())
        );
    }

    #[test]
    fn directives_merge_header_wins() {
        let mut d = Directives::default();
        d.apply_list("status=503,delay=50,cut,usage=prompt:10;cached:2,reply=hi%20there");
        let mut headers = HeaderMap::new();
        headers.insert("x-mock-status", HeaderValue::from_static("429"));
        headers.insert("x-mock-chunk-delay", HeaderValue::from_static("7"));
        headers.insert("x-mock-usage", HeaderValue::from_static("completion:5"));
        headers.insert("x-mock-cut", HeaderValue::from_static("false"));
        headers.insert("x-mock-malformed", HeaderValue::from_static("1"));
        d.apply_headers(&headers);
        assert_eq!(
            d,
            Directives {
                status: Some(429),
                delay_ms: 50,
                malformed: true,
                cut: false,
                midstream_error: false,
                chunk_delay_ms: 7,
                usage: UsageOverride {
                    prompt: Some(10),
                    completion: Some(5),
                    cached: Some(2),
                    cache_write: None,
                    reasoning: None
                },
                reply: Some("hi there".into()),
                tool_call: None,
            }
        );
    }

    #[test]
    fn query_params() {
        assert_eq!(
            query_param(Some("a=1&test_id=t%201+x"), "test_id"),
            Some("t 1 x".into())
        );
        assert_eq!(query_param(Some("a=1"), "test_id"), None);
        assert_eq!(query_param(None, "test_id"), None);
        assert_eq!(percent_decode("100%", false), "100%");
    }
}
