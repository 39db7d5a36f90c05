//! switchboard-mock: a fake LLM provider for Switchboard's end-to-end tests and benchmarks.
//!
//! This file holds what every wire format shares: the CLI, the server, routing, behaviour
//! directives and request recording. Each wire format is one module (`openai`, `anthropic`,
//! `bedrock`, `gemini`, `vertex`, ...) with `route`, `handle`, `error` and `invalid_key`; the
//! deterministic "model" lives in `conversation`, the format-independent faults in `faults`.
//!
//! # Directives
//!
//! A request steers the mock with `x-mock-<name>: <value>` headers or a path prefix
//! `/mock/<name>=<value>,<flag>,.../` (percent-encoded; `-` and `_` are the same in names;
//! headers win over the prefix). A flag is on unless its value is `0`, `false`, `no` or `off`.
//! Unless noted, every directive works on every wire format the mock speaks (OpenAI chat,
//! Responses and embeddings, Anthropic Messages and token counting, Bedrock Converse,
//! ConverseStream and InvokeModel, Gemini, Vertex for both publishers, Cohere v2); they combine
//! (`status=503,empty`, `stall=200,cut`), and all are deterministic.
//!
//! The answer:
//! - `status=N`: >= 400 answers with the format's error body for N; 2xx/3xx replaces the 200.
//! - `reply=TEXT`: the assistant's text.
//! - `tool_call=NAME {ARGS}`: a call to the offered tool NAME with the JSON object ARGS
//!   (placeholders when absent), how a test makes a coding agent run a tool; the answer to the
//!   tool's result is `reply`, else `tool result: ...` (see `conversation::respond`).
//! - `usage=prompt:P;completion:C;cached:K;cache_write:W;reasoning:R`: the reported tokens.
//! - `delay=MS`: wait before the response headers.
//! - `chunk_delay=MS`: wait between stream events.
//!
//! Faults:
//! - `empty`: a JSON answer with an empty body (`content-length: 0`), or a stream whose headers
//!   are followed by no byte and a clean end; with an error `status`, that status without body.
//! - `malformed`: a JSON body that is not JSON; a stream that after its first event(s) sends
//!   one event of broken JSON and ends there (after the format's end marker where it has one,
//!   e.g. OpenAI's and Cohere's `[DONE]`): the rest of the answer is left out.
//! - `bad_event`: a complete, normal stream with ONE extra event inserted in its middle: a copy
//!   of the event before it whose JSON breaks off halfway (framing and eventstream CRCs valid).
//! - `cut`: the body (half of it, any status) or the stream (its first events; on Bedrock half
//!   of a frame) ends early, cleanly at the HTTP level.
//! - `midstream_error` (Anthropic, OpenAI Responses): a stream that fails after its first
//!   events with an `error` event (Responses: then `response.failed`). Bedrock's in-stream
//!   exceptions: `x-mock-bedrock-exception: <type>`.
//! - `reset`: the headers and the first part of the body (half of a JSON body, sent with its
//!   full `content-length`; half of the stream's events, at least one) go out, then the
//!   connection is closed without finishing the body: no last chunk, or short of its length.
//! - `reset_before_headers`: the connection is closed without any response (HTTP/2: the
//!   stream is reset).
//! - `stall=MS`: the headers and the same first part go out, then nothing for MS ms, then the
//!   rest (with `reset`: then the reset). A huge MS stalls for good.
//! - `huge=BYTES`: a well-formed success padded to at least BYTES bytes (at most 64 MiB):
//!   the assistant's text (or tool arguments) grows, in words of at least 1 KiB, so streams get
//!   long events (formats that repeat the text, such as Responses streams, grow with each
//!   copy); other JSON answers (embeddings, token counts) get a `mock_padding` member.
//! - `bad_crc=prelude|message|both` (bare: both): on Bedrock eventstreams, the middle frame
//!   carries a wrong prelude CRC, message CRC, or both.
//! - `no_content`: a 200 that lacks the content the format requires: OpenAI's choice without
//!   `message` (streams: no content deltas), OpenAI Responses' `output: []` (streams: no
//!   output item), Anthropic's `content: []` (streams: no content block), Gemini's candidate
//!   without `content`, Bedrock's `output.message` without `content` (streams: no content
//!   events), Cohere's `message` without `content`; embeddings without their vectors, token
//!   counts without `input_tokens`.
//! - `echo_key`: a 401 (or the error `status` given) in the format's error shape whose message
//!   repeats the credential the request came with (`x-api-key`, `x-goog-api-key`, `api-key`,
//!   `authorization` without `Bearer `, or the `key` query parameter), as some providers do.
//!
//! Faults spoil the answer the directives ask for, never the format's own refusal of a request
//! (a 400 for a bad translation, Bedrock's 403 for a bad signature): that goes out untouched.

mod anthropic;
mod bedrock;
mod cohere;
mod conversation;
mod faults;
mod gemini;
mod openai;
mod responses;
mod vertex;

use std::collections::VecDeque;
use std::io::Write as _;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::Response;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
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
    let mock = Arc::new(Mock {
        seq: AtomicU64::default(),
        records: Mutex::default(),
        aws: args.aws,
    });
    loop {
        let tcp = match listener.accept().await {
            Ok((tcp, _)) => tcp,
            Err(_) => {
                // Out of file descriptors or the like: give connections time to close.
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        // Stream events are small writes; do not let Nagle hold them back.
        let _ = tcp.set_nodelay(true);
        tokio::spawn(serve_connection(tcp, Arc::clone(&mock)));
    }
}

/// Serves one connection (HTTP/1.1 or HTTP/2). A response marked [`faults::DropConnection`]
/// becomes a service error, on which hyper drops the connection (or the HTTP/2 stream)
/// without writing anything.
async fn serve_connection(tcp: tokio::net::TcpStream, mock: Arc<Mock>) {
    let service = hyper::service::service_fn(move |request: hyper::Request<_>| {
        let mock = Arc::clone(&mock);
        async move {
            let response = handle(&mock, request.map(Body::new)).await;
            match response.extensions().get::<faults::DropConnection>() {
                Some(drop) => Err(*drop),
                None => Ok(response),
            }
        }
    });
    // How a connection ends (clean, reset by the peer, dropped on request) is no concern here.
    let _ = auto::Builder::new(TokioExecutor::new())
        .serve_connection(TokioIo::new(tcp), service)
        .await;
}

// ---------------------------------------------------------------------------------------------
// Directives

/// How a request asks the mock to behave (see the module docs). Built from the path prefix,
/// then the headers (which win).
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
    /// `empty`: no body bytes at all (a stream ends cleanly before its first event).
    pub empty: bool,
    /// `bad_event`: one extra event of broken JSON in the middle of a complete stream.
    pub bad_event: bool,
    /// `reset`: part of the body, then the connection closes without finishing it.
    pub reset: bool,
    /// `reset_before_headers`: the connection closes without a response.
    pub reset_before_headers: bool,
    /// `stall=MS`: part of the body, then nothing for MS ms, then the rest.
    pub stall_ms: Option<u64>,
    /// `huge=BYTES`: a success padded to at least BYTES bytes (capped at
    /// [`faults::MAX_HUGE`]).
    pub huge: Option<usize>,
    /// `bad_crc=prelude|message|both`: a Bedrock eventstream frame with wrong CRC(s).
    pub bad_crc: Option<faults::Crc>,
    /// `no_content`: a success without the content its format requires.
    pub no_content: bool,
    /// `echo_key`: an authentication error that repeats the request's credential.
    pub echo_key: bool,
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
            "stall" => {
                if let Ok(ms) = value.parse() {
                    self.stall_ms = Some(ms);
                }
            }
            "huge" => {
                if let Ok(bytes) = value.parse::<usize>() {
                    self.huge = Some(bytes.min(faults::MAX_HUGE));
                }
            }
            "bad_crc" => {
                if let Some(crc) = faults::Crc::parse(value) {
                    self.bad_crc = crc;
                }
            }
            "malformed" => self.malformed = flag(value),
            "cut" => self.cut = flag(value),
            "midstream_error" => self.midstream_error = flag(value),
            "empty" => self.empty = flag(value),
            "bad_event" => self.bad_event = flag(value),
            "reset" => self.reset = flag(value),
            "reset_before_headers" => self.reset_before_headers = flag(value),
            "no_content" => self.no_content = flag(value),
            "echo_key" => self.echo_key = flag(value),
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

/// How a reply's body goes on the wire.
#[derive(Debug, Default)]
struct Wire {
    /// A 2xx/3xx `status` directive: replaces the status of a successful answer.
    success_status: Option<u16>,
    chunk_delay: Duration,
    /// Pause this long once the first part of the body is out.
    stall: Option<Duration>,
    /// Close the connection, body unfinished, once the first part is out (after the stall).
    reset: bool,
}

impl Wire {
    fn from_directives(directives: &Directives) -> Self {
        Wire {
            success_status: directives.status.filter(|s| *s < 400),
            chunk_delay: Duration::from_millis(directives.chunk_delay_ms),
            stall: directives.stall_ms.map(Duration::from_millis),
            reset: directives.reset,
        }
    }

    /// Whether the body is broken into a first part and the rest.
    fn breaks(&self) -> bool {
        self.stall.is_some() || self.reset
    }
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

    /// Adds a response header.
    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        if let Reply::Full { headers, .. } = &mut self {
            headers.push((name, value.into()));
        }
        self
    }

    fn status(&self) -> u16 {
        match self {
            Reply::Full { status, .. } => *status,
            Reply::Stream { .. } => 200,
        }
    }

    fn into_response(self, wire: &Wire) -> Response {
        let (status, content_type, headers, body) = match self {
            Reply::Full {
                status,
                content_type,
                headers,
                body,
            } if !wire.breaks() => (status, content_type, headers, Body::from(body)),
            Reply::Full {
                status,
                content_type,
                mut headers,
                mut body,
            } => {
                // Announce the whole length, so that a reset leaves the body visibly short.
                let pieces = if body.is_empty() {
                    Vec::new()
                } else {
                    headers.push(("content-length", body.len().to_string()));
                    let rest = body.split_off(body.len() / 2);
                    vec![body, rest]
                };
                let first_part = pieces.len().min(1);
                (
                    status,
                    content_type,
                    headers,
                    paced_body(pieces, first_part, wire),
                )
            }
            Reply::Stream {
                content_type,
                events,
            } => {
                let first_part = faults::middle(events.len());
                let headers = vec![("cache-control", "no-cache".to_owned())];
                (
                    200,
                    content_type,
                    headers,
                    paced_body(events, first_part, wire),
                )
            }
        };
        let status = match wire.success_status {
            Some(forced) if status == 200 => forced,
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

/// A body written piece by piece, `chunk_delay` apart; after `first_part` pieces it stalls
/// and/or fails as the wire asks. A failing body makes hyper close the connection (HTTP/1)
/// or reset the stream (HTTP/2) without ending the body.
fn paced_body(pieces: Vec<Vec<u8>>, first_part: usize, wire: &Wire) -> Body {
    struct State {
        pieces: std::vec::IntoIter<Vec<u8>>,
        sent: usize,
        failed: bool,
    }
    let (chunk_delay, stall, reset) = (wire.chunk_delay, wire.stall, wire.reset);
    let state = State {
        pieces: pieces.into_iter(),
        sent: 0,
        failed: false,
    };
    let stream = futures_util::stream::unfold(state, move |mut state| async move {
        if state.failed {
            return None;
        }
        if state.sent == first_part {
            if let Some(stall) = stall {
                tokio::time::sleep(stall).await;
            }
            if reset {
                // Give hyper a turn to flush what was sent before the connection goes.
                tokio::task::yield_now().await;
                state.failed = true;
                let reset = std::io::Error::other("mock reset (directive)");
                return Some((Err(reset), state));
            }
        }
        let piece = state.pieces.next()?;
        if state.sent > 0 && !chunk_delay.is_zero() {
            tokio::time::sleep(chunk_delay).await;
        }
        state.sent += 1;
        Some((Ok(Bytes::from(piece)), state))
    });
    Body::from_stream(stream)
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

    /// The authentication error with this status whose message repeats `key`.
    fn invalid_key(
        &self,
        status: u16,
        key: &str,
        call: &Call,
        received: &Received,
        mock: &Mock,
    ) -> Reply {
        match self {
            Route::OpenAi(_) => openai::invalid_key(status, key),
            Route::Anthropic(_) => anthropic::invalid_key(status, key, call),
            Route::Gemini(_) | Route::Vertex(_) => gemini::invalid_key(status, key),
            Route::Cohere(_) => cohere::invalid_key(status, key, call),
            Route::Bedrock(_) => bedrock::invalid_key(status, key, call, received, &mock.aws),
        }
    }
}

async fn handle(mock: &Mock, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    if parts.uri.path() == "/_mock" || parts.uri.path().starts_with("/_mock/") {
        return admin(mock, &parts.method, parts.uri.path(), parts.uri.query());
    }
    let seq = mock.seq.fetch_add(1, Ordering::Relaxed) + 1;
    let bytes = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(bytes) => bytes,
        Err(_) => {
            let body = json!({"error": {"message": "request body too large or unreadable",
                "type": "invalid_request_error", "param": null, "code": null}});
            return Reply::json(413, &body).into_response(&Wire::default());
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
    if directives.reset_before_headers {
        let mut response = Response::new(Body::empty());
        response.extensions_mut().insert(faults::DropConnection);
        return response;
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
    // The error status asked for, if any: `echo_key` is a 401 unless told otherwise.
    let asked_error = match directives.status.filter(|s| *s >= 400) {
        None if directives.echo_key => Some(401),
        forced => forced,
    };
    let reply = match route(&parts.method, path_only) {
        None => openai::not_found(&call),
        Some(route) => match asked_error {
            Some(status) if directives.echo_key => {
                let key = faults::presented_key(&parts.headers, parts.uri.query());
                route.invalid_key(status, &key, &call, &received, mock)
            }
            Some(status) => route.error(status, &call, &received, mock),
            None => route.handle(&call, &received, mock),
        },
    };
    // Faults spoil the answer asked for, never the format's refusal of the request.
    let refused = reply.status() >= 400 && Some(reply.status()) != asked_error;
    let mut response = if refused {
        reply.into_response(&Wire::default())
    } else {
        faults::spoil(reply, &directives).into_response(&Wire::from_directives(&directives))
    };
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
    reply.into_response(&Wire::default())
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
                ..Default::default()
            }
        );
    }

    #[test]
    fn fault_directives() {
        let mut d = Directives::default();
        d.apply_list("empty,bad_event,reset,stall=250,huge=1000,bad_crc=prelude,no_content");
        let mut headers = HeaderMap::new();
        headers.insert("x-mock-echo-key", HeaderValue::from_static(""));
        headers.insert(
            "x-mock-reset-before-headers",
            HeaderValue::from_static("yes"),
        );
        headers.insert("x-mock-reset", HeaderValue::from_static("off"));
        d.apply_headers(&headers);
        assert_eq!(
            d,
            Directives {
                empty: true,
                bad_event: true,
                reset: false,
                reset_before_headers: true,
                stall_ms: Some(250),
                huge: Some(1000),
                bad_crc: Some(faults::Crc::Prelude),
                no_content: true,
                echo_key: true,
                ..Default::default()
            }
        );
        // Odd values are ignored or bounded, never fatal.
        let mut d = Directives::default();
        d.apply_list("stall=-1,huge=99999999999999999999,bad_crc=sideways,status=7,delay=%ZZ");
        assert_eq!(d, Directives::default());
        d.apply_list("huge=18446744073709551615,stall=18446744073709551615,bad_crc");
        assert_eq!(d.huge, Some(faults::MAX_HUGE));
        assert_eq!(d.stall_ms, Some(u64::MAX));
        assert_eq!(d.bad_crc, Some(faults::Crc::Both));
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
