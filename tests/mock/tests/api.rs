//! Starts the real binary on a free port and talks HTTP to it.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{HeaderMap, Method, Request};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{json, Value};

struct Server {
    child: Child,
    base: String,
    client: Client<HttpConnector, Full<Bytes>>,
}

struct Answer {
    status: u16,
    headers: HeaderMap,
    body: Bytes,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The `data:` payloads of an SSE body, in order.
    fn events(&self) -> Vec<String> {
        let text = self.text();
        assert!(
            text.ends_with("\n\n"),
            "events end with a blank line: {text:?}"
        );
        text.split("\n\n")
            .filter(|e| !e.is_empty())
            .map(|e| {
                e.strip_prefix("data: ")
                    .unwrap_or_else(|| panic!("not a data event: {e:?}"))
                    .to_owned()
            })
            .collect()
    }

    /// The (name, JSON data) of an SSE body of named events (`event: NAME` then `data: JSON`),
    /// checking that each event's `type` is its name.
    fn named_events(&self) -> Vec<(String, Value)> {
        let text = self.text();
        assert!(
            text.ends_with("\n\n"),
            "events end with a blank line: {text:?}"
        );
        text.split("\n\n")
            .filter(|e| !e.is_empty())
            .map(|e| {
                let (name, data) = e.split_once('\n').unwrap();
                let name = name.strip_prefix("event: ").unwrap().to_owned();
                let data: Value = serde_json::from_str(data.strip_prefix("data: ").unwrap())
                    .unwrap_or_else(|err| panic!("{name}: not JSON ({err}): {data}"));
                assert_eq!(data["type"], name.as_str(), "{data}");
                (name, data)
            })
            .collect()
    }

    /// The JSON chunks of an SSE body, checking that `[DONE]` comes last and only there.
    fn chunks(&self) -> Vec<Value> {
        let events = self.events();
        let (done, chunks) = events.split_last().unwrap();
        assert_eq!(done, "[DONE]");
        chunks
            .iter()
            .map(|c| serde_json::from_str(c).unwrap())
            .collect()
    }
}

impl Server {
    fn start() -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_switchboard-mock"))
            .args(["--host", "127.0.0.1", "--port", "0", "--threads", "2"])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addr = line
            .trim_end()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
        Server {
            child,
            base: format!("http://{addr}"),
            client: Client::builder(TokioExecutor::new()).build_http(),
        }
    }

    fn request(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Request<Full<Bytes>> {
        let mut builder = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base));
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder
            .body(Full::new(Bytes::from(body.to_owned())))
            .unwrap()
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Answer {
        let response = self
            .client
            .request(self.request(method, path, headers, body))
            .await
            .unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        Answer {
            status,
            headers,
            body,
        }
    }

    async fn post(&self, path: &str, headers: &[(&str, &str)], body: &Value) -> Answer {
        self.send(Method::POST, path, headers, &body.to_string())
            .await
    }

    async fn records(&self, query: &str) -> Vec<Value> {
        let answer = self
            .send(Method::GET, &format!("/_mock/requests{query}"), &[], "")
            .await;
        assert_eq!(answer.status, 200);
        answer.json().as_array().unwrap().clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn chat(text: &str) -> Value {
    json!({
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": text}
        ]
    })
}

fn weather_tools() -> Value {
    json!([
        {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}},
        {"type": "function", "function": {
            "name": "get_weather",
            "description": "Weather for a city",
            "parameters": {
                "type": "object",
                "properties": {
                    "city": {"type": "string"},
                    "days": {"type": "integer"},
                    "metric": {"type": "boolean"},
                    "unit": {"type": "string"}
                },
                "required": ["city", "days", "metric"]
            }
        }}
    ])
}

fn content_of(chunks: &[Value]) -> String {
    chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect()
}

#[tokio::test]
async fn chat_json_answer() {
    let server = Server::start();
    let answer = server
        .post("/v1/chat/completions", &[], &chat("hello there world"))
        .await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.header("content-type"), Some("application/json"));
    assert!(answer.header("x-request-id").is_some());
    let body = answer.json();
    assert!(body["id"].as_str().unwrap().starts_with("chatcmpl-mock-"));
    assert_eq!(body["object"], "chat.completion");
    assert!(body["created"].as_u64().unwrap() > 1_600_000_000);
    assert_eq!(body["model"], "gpt-4o-mini");
    assert_eq!(body["system_fingerprint"], "fp_mock");
    let choice = &body["choices"][0];
    assert_eq!(choice["index"], 0);
    assert_eq!(choice["finish_reason"], "stop");
    assert_eq!(choice["logprobs"], Value::Null);
    assert_eq!(choice["message"]["role"], "assistant");
    assert_eq!(choice["message"]["content"], "echo: hello there world");
    assert_eq!(choice["message"]["refusal"], Value::Null);
    assert!(choice["message"].get("tool_calls").is_none());
    // prompt: 2 + 3 words, 3 per message; completion: 4 words.
    assert_eq!(body["usage"]["prompt_tokens"], 11);
    assert_eq!(body["usage"]["completion_tokens"], 4);
    assert_eq!(body["usage"]["total_tokens"], 15);
    assert_eq!(body["usage"]["prompt_tokens_details"]["cached_tokens"], 0);
    assert_eq!(
        body["usage"]["completion_tokens_details"]["reasoning_tokens"],
        0
    );
}

#[tokio::test]
async fn chat_array_content_and_azure_path() {
    let server = Server::start();
    let request = json!({"messages": [{"role": "user", "content": [
        {"type": "text", "text": "first part"},
        {"type": "image_url", "image_url": {"url": "https://example.com/x.png"}},
        {"type": "text", "text": "second"}
    ]}]});
    let answer = server
        .post(
            "/openai/deployments/dep1/chat/completions?api-version=2024-10-21",
            &[],
            &request,
        )
        .await;
    assert_eq!(answer.status, 200);
    let body = answer.json();
    assert_eq!(
        body["choices"][0]["message"]["content"],
        "echo: first part second"
    );
    // No model in the body: the Azure deployment name stands in.
    assert_eq!(body["model"], "dep1");
}

#[tokio::test]
async fn stream_without_usage() {
    let server = Server::start();
    let mut request = chat("hello there world");
    request["stream"] = json!(true);
    let answer = server
        .post("/openai/v1/chat/completions", &[], &request)
        .await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.header("content-type"), Some("text/event-stream"));
    let chunks = answer.chunks();
    assert_eq!(
        chunks[0]["choices"][0]["delta"],
        json!({"role": "assistant", "content": "", "refusal": null})
    );
    // One chunk per word, each with its following space.
    let pieces: Vec<&str> = chunks[1..chunks.len() - 1]
        .iter()
        .map(|c| c["choices"][0]["delta"]["content"].as_str().unwrap())
        .collect();
    assert_eq!(pieces, ["echo: ", "hello ", "there ", "world"]);
    let last = chunks.last().unwrap();
    assert_eq!(last["choices"][0]["delta"], json!({}));
    assert_eq!(last["choices"][0]["finish_reason"], "stop");
    for chunk in &chunks {
        assert_eq!(chunk["object"], "chat.completion.chunk");
        assert_eq!(chunk["id"], chunks[0]["id"]);
        assert_eq!(chunk["model"], "gpt-4o-mini");
        assert!(chunk.get("usage").is_none(), "no usage key: {chunk}");
    }
}

#[tokio::test]
async fn stream_with_usage_and_usage_directive() {
    let server = Server::start();
    let mut request = chat("hello there world");
    request["stream"] = json!(true);
    request["stream_options"] = json!({"include_usage": true});
    let answer = server
        .post(
            "/v1/chat/completions",
            &[(
                "x-mock-usage",
                "prompt:10;completion:5;cached:2;reasoning:1",
            )],
            &request,
        )
        .await;
    let chunks = answer.chunks();
    let (usage_chunk, rest) = chunks.split_last().unwrap();
    assert_eq!(usage_chunk["choices"], json!([]));
    let usage = &usage_chunk["usage"];
    assert_eq!(usage["prompt_tokens"], 10);
    assert_eq!(usage["completion_tokens"], 5);
    assert_eq!(usage["total_tokens"], 15);
    assert_eq!(usage["prompt_tokens_details"]["cached_tokens"], 2);
    assert_eq!(usage["completion_tokens_details"]["reasoning_tokens"], 1);
    for chunk in rest {
        assert_eq!(chunk["usage"], Value::Null);
        assert!(chunk.get("usage").is_some());
    }
    assert_eq!(rest.last().unwrap()["choices"][0]["finish_reason"], "stop");
    assert_eq!(content_of(rest), "echo: hello there world");
}

#[tokio::test]
async fn tool_calls() {
    let server = Server::start();
    let mut request = chat("weather in Paris?");
    request["tools"] = weather_tools();
    request["tool_choice"] = json!({"type": "function", "function": {"name": "get_weather"}});
    let expected_args = json!({"city": "mock", "days": 1, "metric": true});

    let body = server
        .post("/v1/chat/completions", &[], &request)
        .await
        .json();
    let choice = &body["choices"][0];
    assert_eq!(choice["finish_reason"], "tool_calls");
    assert_eq!(choice["message"]["content"], Value::Null);
    let call = &choice["message"]["tool_calls"][0];
    assert_eq!(call["id"], "call_mock_1");
    assert_eq!(call["type"], "function");
    assert_eq!(call["function"]["name"], "get_weather");
    let args: Value =
        serde_json::from_str(call["function"]["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(args, expected_args);

    // Streamed: name first, then the arguments in fragments.
    request["stream"] = json!(true);
    let chunks = server
        .post("/v1/chat/completions", &[], &request)
        .await
        .chunks();
    let first = &chunks[0]["choices"][0]["delta"]["tool_calls"][0];
    assert_eq!(first["index"], 0);
    assert_eq!(first["id"], "call_mock_1");
    assert_eq!(first["type"], "function");
    assert_eq!(first["function"]["name"], "get_weather");
    assert_eq!(first["function"]["arguments"], "");
    let fragments: Vec<&str> = chunks[1..]
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"].as_str())
        .collect();
    assert_eq!(fragments.len(), 3);
    let args: Value = serde_json::from_str(&fragments.concat()).unwrap();
    assert_eq!(args, expected_args);
    assert_eq!(
        chunks.last().unwrap()["choices"][0]["finish_reason"],
        "tool_calls"
    );

    // Without a named tool: the first one.
    request["stream"] = json!(false);
    request["tool_choice"] = json!("auto");
    let body = server
        .post("/v1/chat/completions", &[], &request)
        .await
        .json();
    let call = &body["choices"][0]["message"]["tool_calls"][0];
    assert_eq!(call["function"]["name"], "lookup");
    assert_eq!(call["function"]["arguments"], "{}");

    // tool_choice none: text.
    request["tool_choice"] = json!("none");
    let body = server
        .post("/v1/chat/completions", &[], &request)
        .await
        .json();
    assert_eq!(
        body["choices"][0]["message"]["content"],
        "echo: weather in Paris?"
    );

    // After the tool result: text about it.
    request["tool_choice"] = json!("auto");
    let messages = request["messages"].as_array_mut().unwrap();
    messages.push(json!({"role": "assistant", "content": null, "tool_calls": [
        {"id": "call_mock_1", "type": "function",
         "function": {"name": "get_weather", "arguments": "{}"}}
    ]}));
    messages.push(json!({"role": "tool", "tool_call_id": "call_mock_1", "content": "sunny, 21C"}));
    let body = server
        .post("/v1/chat/completions", &[], &request)
        .await
        .json();
    assert_eq!(
        body["choices"][0]["message"]["content"],
        "tool result: sunny, 21C"
    );
    assert_eq!(body["choices"][0]["finish_reason"], "stop");
}

#[tokio::test]
async fn embeddings_float_and_base64() {
    let server = Server::start();
    let request = json!({"model": "text-embedding-3-small", "input": ["hello world", "bye"]});
    let float = server.post("/v1/embeddings", &[], &request).await.json();
    assert_eq!(float["object"], "list");
    assert_eq!(float["model"], "text-embedding-3-small");
    assert_eq!(
        float["usage"],
        json!({"prompt_tokens": 3, "total_tokens": 3})
    );
    let data = float["data"].as_array().unwrap();
    assert_eq!(data.len(), 2);
    assert_eq!(data[1]["index"], 1);
    assert_eq!(data[1]["object"], "embedding");
    let vectors: Vec<Vec<f32>> = data
        .iter()
        .map(|d| {
            d["embedding"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap() as f32)
                .collect()
        })
        .collect();
    assert_eq!(vectors[0].len(), 8);
    assert_ne!(vectors[0], vectors[1]);

    // Same text, same vector; base64 carries the same floats.
    let mut request = request;
    request["encoding_format"] = json!("base64");
    let b64 = server.post("/v1/embeddings", &[], &request).await.json();
    for (item, vector) in b64["data"].as_array().unwrap().iter().zip(&vectors) {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(item["embedding"].as_str().unwrap())
            .unwrap();
        let decoded: Vec<f32> = bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        assert_eq!(&decoded, vector);
    }

    // A single string, dimensions, token arrays.
    let one = server
        .post(
            "/v1/embeddings",
            &[],
            &json!({"model": "m", "input": "hello world", "dimensions": 3}),
        )
        .await
        .json();
    assert_eq!(one["data"][0]["embedding"].as_array().unwrap().len(), 3);
    let tokens = server
        .post(
            "/v1/embeddings",
            &[],
            &json!({"model": "m", "input": [[1, 2, 3], [4]]}),
        )
        .await
        .json();
    assert_eq!(tokens["data"].as_array().unwrap().len(), 2);
    assert_eq!(tokens["usage"]["prompt_tokens"], 4);

    let bad = server
        .post("/v1/embeddings", &[], &json!({"model": "m"}))
        .await;
    assert_eq!(bad.status, 400);
    assert_eq!(bad.json()["error"]["type"], "invalid_request_error");
}

#[tokio::test]
async fn status_directive_via_path_prefix() {
    let server = Server::start();
    let answer = server
        .post(
            "/mock/status=503/openai/deployments/dep1/chat/completions?api-version=2024-10-21",
            &[],
            &chat("hi"),
        )
        .await;
    assert_eq!(answer.status, 503);
    assert_eq!(
        answer.json(),
        json!({"error": {
            "message": "The engine is currently overloaded, please try again later",
            "type": "server_error", "param": null, "code": null
        }})
    );
    let record = server.records("").await.pop().unwrap();
    assert_eq!(
        record["path"],
        "/openai/deployments/dep1/chat/completions?api-version=2024-10-21"
    );
    assert_eq!(
        record["raw_path"],
        "/mock/status=503/openai/deployments/dep1/chat/completions?api-version=2024-10-21"
    );

    // Without the prefix, the same server answers normally.
    let ok = server.post("/v1/chat/completions", &[], &chat("hi")).await;
    assert_eq!(ok.status, 200);
}

#[tokio::test]
async fn status_directive_via_header_wins() {
    let server = Server::start();
    let answer = server
        .post(
            "/mock/status=503/v1/chat/completions",
            &[("x-mock-status", "429")],
            &chat("hi"),
        )
        .await;
    assert_eq!(answer.status, 429);
    assert_eq!(answer.header("retry-after"), Some("1"));
    assert_eq!(
        answer.json(),
        json!({"error": {"message": "Rate limit reached for requests", "type": "requests",
            "param": null, "code": "rate_limit_exceeded"}})
    );
    for (status, code) in [(401, "invalid_api_key"), (404, "model_not_found")] {
        let answer = server
            .post(
                "/v1/chat/completions",
                &[("x-mock-status", &status.to_string())],
                &chat("hi"),
            )
            .await;
        assert_eq!(answer.status, status);
        assert_eq!(answer.json()["error"]["code"], code);
    }
    let answer = server
        .post(
            "/v1/embeddings",
            &[("x-mock-status", "500")],
            &json!({"input": "x"}),
        )
        .await;
    assert_eq!(answer.status, 500);
    assert_eq!(answer.json()["error"]["type"], "server_error");
}

#[tokio::test]
async fn reply_and_delay_directives() {
    let server = Server::start();
    let started = Instant::now();
    let body = server
        .post(
            "/mock/delay=200,reply=hi%20from%20path/v1/chat/completions",
            &[],
            &chat("ignored"),
        )
        .await
        .json();
    assert!(started.elapsed() >= Duration::from_millis(200));
    assert_eq!(body["choices"][0]["message"]["content"], "hi from path");
    assert_eq!(body["usage"]["completion_tokens"], 3);

    let body = server
        .post(
            "/mock/reply=path/v1/chat/completions",
            &[("x-mock-reply", "from the header")],
            &chat("ignored"),
        )
        .await
        .json();
    assert_eq!(body["choices"][0]["message"]["content"], "from the header");
}

#[tokio::test]
async fn cut() {
    let server = Server::start();
    let answer = server
        .post("/mock/cut/v1/chat/completions", &[], &chat("a b c d"))
        .await;
    assert_eq!(answer.status, 200);
    assert!(serde_json::from_slice::<Value>(&answer.body).is_err());
    assert!(answer.text().starts_with('{'));

    let mut request = chat("a b c d");
    request["stream"] = json!(true);
    request["stream_options"] = json!({"include_usage": true});
    let answer = server
        .post("/v1/chat/completions", &[("x-mock-cut", "1")], &request)
        .await;
    assert_eq!(answer.status, 200);
    let events = answer.events();
    assert_eq!(events.len(), 2);
    for event in &events {
        let chunk: Value = serde_json::from_str(event).unwrap();
        assert_eq!(chunk["choices"][0]["finish_reason"], Value::Null);
    }
}

#[tokio::test]
async fn malformed() {
    let server = Server::start();
    let answer = server
        .post("/mock/malformed/v1/chat/completions", &[], &chat("hi"))
        .await;
    assert_eq!(answer.status, 200);
    assert!(serde_json::from_slice::<Value>(&answer.body).is_err());

    let mut request = chat("hi");
    request["stream"] = json!(true);
    let answer = server
        .post(
            "/v1/chat/completions",
            &[("x-mock-malformed", "true")],
            &request,
        )
        .await;
    let events = answer.events();
    assert_eq!(events.len(), 3);
    assert!(serde_json::from_str::<Value>(&events[0]).is_ok());
    assert_eq!(events[1], "{not json");
    assert_eq!(events[2], "[DONE]");
}

#[tokio::test]
async fn stream_events_are_flushed_one_by_one() {
    let server = Server::start();
    let mut request = chat("one two three four");
    request["stream"] = json!(true);
    let response = server
        .client
        .request(server.request(
            Method::POST,
            "/mock/chunk_delay=100/v1/chat/completions",
            &[],
            &request.to_string(),
        ))
        .await
        .unwrap();
    let mut body = response.into_body();
    let mut arrivals = Vec::new();
    let mut text = Vec::new();
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame.unwrap().into_data() {
            arrivals.push(Instant::now());
            text.extend_from_slice(&data);
        }
    }
    // 8 events (role, 5 words, finish, [DONE]) 100 ms apart: the first arrives long before
    // the last.
    assert!(arrivals.len() >= 2);
    let spread = *arrivals.last().unwrap() - arrivals[0];
    assert!(spread >= Duration::from_millis(500), "{spread:?}");
    assert!(String::from_utf8(text)
        .unwrap()
        .ends_with("data: [DONE]\n\n"));
}

#[tokio::test]
async fn bad_requests() {
    let server = Server::start();
    let answer = server
        .send(Method::POST, "/v1/chat/completions", &[], "not json")
        .await;
    assert_eq!(answer.status, 400);
    assert_eq!(answer.json()["error"]["type"], "invalid_request_error");

    let answer = server.send(Method::POST, "/v1/nothing", &[], "{}").await;
    assert_eq!(answer.status, 404);
    assert!(answer.json()["error"]["message"].is_string());

    let answer = server.send(Method::GET, "/_mock/health", &[], "").await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.text(), "ok");
}

#[tokio::test]
async fn recording_with_test_id() {
    let server = Server::start();
    server
        .post("/v1/chat/completions", &[("x-test-id", "a")], &chat("one"))
        .await;
    let request = server.request(
        Method::POST,
        "/mock/cut/v1/embeddings?x=1",
        &[("x-test-id", "b"), ("x-Repeated", "1")],
        "raw text",
    );
    let mut request = request;
    request
        .headers_mut()
        .append("x-repeated", "2".parse().unwrap());
    server.client.request(request).await.unwrap();
    server
        .post("/v1/chat/completions", &[("x-test-id", "a")], &chat("two"))
        .await;

    let all = server.records("").await;
    assert_eq!(all.len(), 3);
    let seqs: Vec<u64> = all.iter().map(|r| r["seq"].as_u64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");

    let a = server.records("?test_id=a").await;
    assert_eq!(a.len(), 2);
    assert_eq!(a[0]["method"], "POST");
    assert_eq!(a[0]["path"], "/v1/chat/completions");
    assert_eq!(a[0]["body"], chat("one"));
    assert_eq!(a[1]["body"], chat("two"));
    assert_eq!(a[0]["headers"]["x-test-id"], "a");
    assert_eq!(
        a[0]["headers"]["content-length"],
        chat("one").to_string().len().to_string()
    );

    let b = server.records("?test_id=b").await;
    assert_eq!(b.len(), 1);
    assert_eq!(b[0]["body"], "raw text");
    assert_eq!(b[0]["path"], "/v1/embeddings?x=1");
    assert_eq!(b[0]["raw_path"], "/mock/cut/v1/embeddings?x=1");
    assert_eq!(b[0]["headers"]["x-repeated"], "1, 2");

    assert!(server.records("?test_id=zzz").await.is_empty());

    let cleared = server
        .send(Method::DELETE, "/_mock/requests", &[], "")
        .await;
    assert_eq!(cleared.status, 200);
    assert!(server.records("").await.is_empty());
}

// ---------------------------------------------------------------------------------------------
// OpenAI Responses API

fn responses_request(input: Value) -> Value {
    json!({"model": "gpt-5-mini", "instructions": "be brief", "input": input})
}

fn responses_tools() -> Value {
    json!([
        {"type": "web_search"},
        {"type": "namespace", "name": "ns", "tools": []},
        {"type": "function", "name": "lookup", "parameters": {"type": "object"}},
        {"type": "function", "name": "get_weather", "strict": true, "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
            "required": ["city", "days"]
        }}
    ])
}

#[tokio::test]
async fn responses_json_answer() {
    let server = Server::start();
    let answer = server
        .post(
            "/v1/responses",
            &[],
            &responses_request(json!("hello there world")),
        )
        .await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.header("content-type"), Some("application/json"));
    let body = answer.json();
    assert!(body["id"].as_str().unwrap().starts_with("resp_mock_"));
    assert_eq!(body["object"], "response");
    assert!(body["created_at"].as_u64().unwrap() > 1_600_000_000);
    assert_eq!(body["status"], "completed");
    assert_eq!(body["model"], "gpt-5-mini");
    assert_eq!(body["instructions"], "be brief");
    assert_eq!(body["error"], Value::Null);
    let output = body["output"].as_array().unwrap();
    assert_eq!(output.len(), 1, "no reasoning unless asked: {output:?}");
    let message = &output[0];
    assert!(message["id"].as_str().unwrap().starts_with("msg_mock_"));
    assert_eq!(message["type"], "message");
    assert_eq!(message["status"], "completed");
    assert_eq!(message["role"], "assistant");
    assert_eq!(
        message["content"],
        json!([{"type": "output_text", "text": "echo: hello there world", "annotations": [],
            "logprobs": []}])
    );
    // prompt: 2 + 3 words, 3 per turn; completion: 4 words.
    assert_eq!(
        body["usage"],
        json!({"input_tokens": 11, "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": 4, "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": 15})
    );
}

#[tokio::test]
async fn responses_message_items_roles_and_reasoning() {
    let server = Server::start();
    let mut request = responses_request(json!([
        {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "rules here"}]},
        {"role": "user", "content": "first question"},
        {"type": "reasoning", "id": "rs_old", "summary": [], "encrypted_content": "x"},
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "an answer"}]},
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "two words"}]}
    ]));
    request["reasoning"] = json!({"effort": "low", "summary": "auto"});
    request["include"] = json!(["reasoning.encrypted_content"]);
    let body = server
        .post(
            "/v1/responses",
            &[("x-mock-usage", "prompt:50;cached:20")],
            &request,
        )
        .await
        .json();
    let output = body["output"].as_array().unwrap();
    assert_eq!(output.len(), 2);
    let reasoning = &output[0];
    assert_eq!(reasoning["type"], "reasoning");
    assert!(reasoning["id"].as_str().unwrap().starts_with("rs_mock_"));
    assert_eq!(
        reasoning["summary"],
        json!([{"type": "summary_text", "text": "The user wrote: two words"}])
    );
    assert!(reasoning["encrypted_content"].as_str().unwrap().len() > 8);
    assert_eq!(output[1]["content"][0]["text"], "echo: two words");
    assert_eq!(
        body["reasoning"],
        json!({"effort": "low", "summary": "auto"})
    );
    // The summary's 5 words are reasoning, counted in the output tokens.
    assert_eq!(
        body["usage"],
        json!({"input_tokens": 50, "input_tokens_details": {"cached_tokens": 20},
            "output_tokens": 3 + 5, "output_tokens_details": {"reasoning_tokens": 5},
            "total_tokens": 58})
    );

    // Effort without a summary: a reasoning item with an empty summary, no encrypted content
    // unless included.
    request["reasoning"] = json!({"effort": "high"});
    request["include"] = json!([]);
    let body = server.post("/v1/responses", &[], &request).await.json();
    assert_eq!(
        body["output"][0],
        json!({"id": body["output"][0]["id"], "type": "reasoning", "summary": []})
    );
    assert_eq!(
        body["usage"]["output_tokens_details"]["reasoning_tokens"],
        5
    );
}

#[tokio::test]
async fn responses_function_calls() {
    let server = Server::start();
    let mut request = responses_request(json!("weather in Paris?"));
    request["tools"] = responses_tools();
    request["tool_choice"] = json!({"type": "function", "name": "get_weather"});
    let body = server.post("/v1/responses", &[], &request).await.json();
    let call = &body["output"][0];
    assert!(call["id"].as_str().unwrap().starts_with("fc_mock_"));
    assert_eq!(call["type"], "function_call");
    assert_eq!(call["status"], "completed");
    assert_eq!(call["call_id"], "call_mock_1");
    assert_eq!(call["name"], "get_weather");
    let arguments: Value = serde_json::from_str(call["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(arguments, json!({"city": "mock", "days": 1}));
    // The request's tools are echoed back, hosted ones included.
    assert_eq!(body["tools"], responses_tools());

    // Hosted and namespace tools are never called: `auto` picks the first function.
    request["tool_choice"] = json!("auto");
    let body = server.post("/v1/responses", &[], &request).await.json();
    assert_eq!(body["output"][0]["name"], "lookup");

    request["tool_choice"] = json!("none");
    let body = server.post("/v1/responses", &[], &request).await.json();
    assert_eq!(
        body["output"][0]["content"][0]["text"],
        "echo: weather in Paris?"
    );

    // The call's output comes back: text about it.
    request["tool_choice"] = json!("auto");
    request["input"] = json!([
        {"role": "user", "content": "weather in Paris?"},
        {"type": "function_call", "call_id": "call_abc", "name": "get_weather", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "call_abc", "output": "sunny, 21C"}
    ]);
    let body = server.post("/v1/responses", &[], &request).await.json();
    assert_eq!(
        body["output"][0]["content"][0]["text"],
        "tool result: sunny, 21C"
    );

    // An output for a call that is not in the input: OpenAI's 400.
    request["input"] = json!([
        {"role": "user", "content": "weather in Paris?"},
        {"type": "function_call_output", "call_id": "call_missing", "output": "sunny"}
    ]);
    let answer = server.post("/v1/responses", &[], &request).await;
    assert_eq!(answer.status, 400);
    let error = &answer.json()["error"];
    assert_eq!(error["type"], "invalid_request_error");
    assert_eq!(error["param"], "input");
    assert!(error["message"].as_str().unwrap().contains("call_missing"));
}

/// Names of a Responses stream's events, checking `sequence_number` counts from 0.
fn sequence(events: &[(String, Value)]) -> Vec<&str> {
    for (i, (_, data)) in events.iter().enumerate() {
        assert_eq!(data["sequence_number"], i, "{data}");
    }
    events.iter().map(|(name, _)| name.as_str()).collect()
}

#[tokio::test]
async fn responses_stream_text() {
    let server = Server::start();
    let mut request = responses_request(json!("one two"));
    request["stream"] = json!(true);
    let answer = server
        .post(
            "/openai/v1/responses",
            &[("x-mock-usage", "cached:2")],
            &request,
        )
        .await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.header("content-type"), Some("text/event-stream"));
    let events = answer.named_events();
    assert_eq!(
        sequence(&events),
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.content_part.added",
            "response.output_text.delta",
            "response.output_text.delta",
            "response.output_text.delta",
            "response.output_text.done",
            "response.content_part.done",
            "response.output_item.done",
            "response.completed"
        ]
    );
    let (_, created) = &events[0];
    assert_eq!(created["response"]["status"], "in_progress");
    assert_eq!(created["response"]["output"], json!([]));
    assert_eq!(created["response"]["usage"], Value::Null);
    let item_id = events[2].1["item"]["id"].as_str().unwrap();
    assert_eq!(events[2].1["item"]["status"], "in_progress");
    assert_eq!(events[2].1["output_index"], 0);
    let deltas: String = events
        .iter()
        .filter(|(name, _)| name == "response.output_text.delta")
        .map(|(_, data)| {
            assert_eq!(data["item_id"], item_id);
            assert_eq!(data["content_index"], 0);
            data["delta"].as_str().unwrap()
        })
        .collect();
    assert_eq!(deltas, "echo: one two");
    assert_eq!(events[7].1["text"], "echo: one two");
    assert_eq!(events[9].1["item"]["content"][0]["text"], "echo: one two");
    let completed = &events[10].1["response"];
    assert_eq!(completed["status"], "completed");
    assert_eq!(completed["id"], created["response"]["id"]);
    assert_eq!(completed["output"][0], events[9].1["item"]);
    // be brief (2) + one two (2), 3 per turn; echo: one two (3).
    assert_eq!(completed["usage"]["input_tokens"], 10);
    assert_eq!(
        completed["usage"]["input_tokens_details"]["cached_tokens"],
        2
    );
    assert_eq!(completed["usage"]["output_tokens"], 3);
    assert_eq!(completed["usage"]["total_tokens"], 13);
}

#[tokio::test]
async fn responses_stream_reasoning_and_function_call() {
    let server = Server::start();
    let mut request = responses_request(json!("weather?"));
    request["stream"] = json!(true);
    request["tools"] = responses_tools();
    request["tool_choice"] = json!({"type": "function", "name": "get_weather"});
    request["reasoning"] = json!({"summary": "auto"});
    let events = server
        .post("/v1/responses", &[], &request)
        .await
        .named_events();
    assert_eq!(
        sequence(&events),
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.reasoning_summary_part.added",
            "response.reasoning_summary_text.delta",
            "response.reasoning_summary_text.delta",
            "response.reasoning_summary_text.delta",
            "response.reasoning_summary_text.delta",
            "response.reasoning_summary_text.done",
            "response.reasoning_summary_part.done",
            "response.output_item.done",
            "response.output_item.added",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.done",
            "response.output_item.done",
            "response.completed"
        ]
    );
    let summary: String = events
        .iter()
        .filter(|(name, _)| name == "response.reasoning_summary_text.delta")
        .map(|(_, data)| {
            assert_eq!(data["summary_index"], 0);
            data["delta"].as_str().unwrap()
        })
        .collect();
    assert_eq!(summary, "The user wrote: weather?");
    let added = &events[11].1;
    assert_eq!(added["output_index"], 1);
    assert_eq!(added["item"]["type"], "function_call");
    assert_eq!(added["item"]["arguments"], "");
    assert_eq!(added["item"]["name"], "get_weather");
    assert_eq!(added["item"]["call_id"], "call_mock_1");
    let arguments: String = events[12..15]
        .iter()
        .map(|(_, data)| {
            assert_eq!(data["item_id"], added["item"]["id"]);
            data["delta"].as_str().unwrap()
        })
        .collect();
    assert_eq!(arguments, r#"{"city":"mock","days":1}"#);
    assert_eq!(events[15].1["arguments"], arguments.as_str());
    let completed = &events[17].1["response"];
    assert_eq!(completed["output"][0]["type"], "reasoning");
    assert_eq!(completed["output"][1]["arguments"], arguments.as_str());
    // "The user wrote: weather?" is 4 words of reasoning.
    assert_eq!(
        completed["usage"]["output_tokens_details"]["reasoning_tokens"],
        4
    );
}

#[tokio::test]
async fn responses_errors_and_spoiled_streams() {
    let server = Server::start();
    let mut request = responses_request(json!("a b c d"));
    request["stream"] = json!(true);

    // Before the stream: OpenAI's error bodies, via header or path prefix.
    let answer = server
        .post("/v1/responses", &[("x-mock-status", "429")], &request)
        .await;
    assert_eq!(answer.status, 429);
    assert_eq!(answer.header("retry-after"), Some("1"));
    assert_eq!(answer.json()["error"]["code"], "rate_limit_exceeded");
    let answer = server
        .post("/mock/status=503/v1/responses", &[], &request)
        .await;
    assert_eq!(answer.status, 503);
    assert_eq!(answer.json()["error"]["type"], "server_error");

    // cut: the stream ends before response.completed.
    let events = server
        .post("/v1/responses", &[("x-mock-cut", "1")], &request)
        .await
        .named_events();
    assert_eq!(events.len(), 4);
    assert!(!events.iter().any(|(n, _)| n == "response.completed"));

    // midstream_error: an error event, then response.failed, and nothing after.
    let events = server
        .post("/mock/midstream_error/v1/responses", &[], &request)
        .await
        .named_events();
    let names = sequence(&events);
    assert_eq!(names[names.len() - 2..], ["error", "response.failed"]);
    let (_, error) = &events[events.len() - 2];
    assert_eq!(error["code"], "server_error");
    assert!(error["message"].as_str().unwrap().len() > 10);
    let failed = &events[events.len() - 1].1["response"];
    assert_eq!(failed["status"], "failed");
    assert_eq!(failed["error"]["code"], "server_error");
    assert_eq!(failed["usage"], Value::Null);

    // malformed: a data line that is not JSON after the first events.
    let answer = server
        .post("/v1/responses", &[("x-mock-malformed", "1")], &request)
        .await;
    let text = answer.text();
    assert!(text.starts_with("event: response.created\n"), "{text}");
    assert!(text.ends_with("data: {not json\n\n"), "{text}");

    // Not JSON, no input, a previous response the mock cannot have.
    let answer = server
        .send(Method::POST, "/v1/responses", &[], "not json")
        .await;
    assert_eq!(answer.status, 400);
    let answer = server
        .post("/v1/responses", &[], &json!({"model": "m"}))
        .await;
    assert_eq!(answer.status, 400);
    assert_eq!(answer.json()["error"]["param"], "input");
    let answer = server
        .post(
            "/v1/responses",
            &[],
            &json!({"model": "m", "input": "x", "previous_response_id": "resp_1"}),
        )
        .await;
    assert_eq!(answer.status, 400);
    assert_eq!(answer.json()["error"]["param"], "previous_response_id");
}

// ---------------------------------------------------------------------------------------------
// The tool_call directive (how a test makes a coding agent run a tool), across formats

/// One wire format's request offering a `Bash` tool (after another one), and how to read the
/// tool call from its JSON answer: (name, arguments).
struct ToolCallCase {
    path: &'static str,
    request: Value,
    called: fn(&Value) -> Option<(String, Value)>,
}

fn tool_call_cases() -> Vec<ToolCallCase> {
    let schema = json!({"type": "object", "properties": {"command": {"type": "string"}},
        "required": ["command"]});
    vec![
        ToolCallCase {
            path: "/v1/chat/completions",
            request: json!({"model": "m", "messages": [{"role": "user", "content": "go"}],
            "tools": [
                {"type": "function", "function": {"name": "Agent", "parameters": {}}},
                {"type": "function", "function": {"name": "Bash", "parameters": schema}}
            ]}),
            called: |body| {
                let call = &body["choices"][0]["message"]["tool_calls"][0]["function"];
                let arguments = serde_json::from_str(call["arguments"].as_str()?).ok()?;
                Some((call["name"].as_str()?.to_owned(), arguments))
            },
        },
        ToolCallCase {
            path: "/v1/messages?beta=true",
            request: json!({"model": "m", "max_tokens": 100,
            "messages": [{"role": "user", "content": "go"}],
            "tools": [
                {"name": "Agent", "input_schema": {}},
                {"name": "Bash", "input_schema": schema}
            ]}),
            called: |body| {
                let block = &body["content"][0];
                (block["type"] == "tool_use").then(|| {
                    (
                        block["name"].as_str().unwrap().to_owned(),
                        block["input"].clone(),
                    )
                })
            },
        },
        ToolCallCase {
            path: "/v1/responses",
            request: json!({"model": "m", "input": "go", "tools": [
                {"type": "function", "name": "Agent", "parameters": {}},
                {"type": "function", "name": "Bash", "parameters": schema}
            ]}),
            called: |body| {
                let item = &body["output"][0];
                let arguments = serde_json::from_str(item["arguments"].as_str()?).ok()?;
                Some((item["name"].as_str()?.to_owned(), arguments))
            },
        },
    ]
}

#[tokio::test]
async fn tool_call_directive_across_formats() {
    let server = Server::start();
    for case in tool_call_cases() {
        let called = |body: Value| (case.called)(&body);
        let post = |path: String, headers: &'static [(&'static str, &'static str)]| {
            let server = &server;
            let request = &case.request;
            async move { server.post(&path, headers, request).await.json() }
        };
        // Without the directive: the first tool offered, with placeholders.
        assert_eq!(
            called(post(case.path.to_owned(), &[]).await),
            Some(("Agent".to_owned(), json!({}))),
            "{}",
            case.path
        );
        // The directive picks the tool and its arguments.
        assert_eq!(
            called(
                post(
                    case.path.to_owned(),
                    &[("x-mock-tool-call", r#"Bash {"command": "echo hi"}"#)]
                )
                .await
            ),
            Some(("Bash".to_owned(), json!({"command": "echo hi"}))),
            "{}",
            case.path
        );
        // In the path prefix, percent-encoded; without arguments, placeholders.
        assert_eq!(
            called(
                post(
                    format!(
                        "/mock/tool_call=Bash%20%7B%22command%22%3A%22ls%22%7D{}",
                        case.path
                    ),
                    &[]
                )
                .await
            ),
            Some(("Bash".to_owned(), json!({"command": "ls"}))),
            "{}",
            case.path
        );
        assert_eq!(
            called(post(format!("/mock/tool_call=Bash{}", case.path), &[]).await),
            Some(("Bash".to_owned(), json!({"command": "mock"}))),
            "{}",
            case.path
        );
        // A tool that is not offered: no tool call at all.
        assert_eq!(
            called(post(case.path.to_owned(), &[("x-mock-tool-call", "Missing")]).await),
            None,
            "{}",
            case.path
        );
    }
}

// ---------------------------------------------------------------------------------------------
// What Claude Code sends to Anthropic's endpoint

#[tokio::test]
async fn anthropic_claude_code_requests() {
    let server = Server::start();
    // Claude Code's shape: `?beta=true`, adaptive thinking shown as omitted, and a system
    // message right after the user's.
    let request = json!({"model": "claude-x", "max_tokens": 32000, "stream": true,
    "thinking": {"type": "adaptive", "display": "omitted"},
    "output_config": {"effort": "high"},
    "system": [{"type": "text", "text": "be brief", "cache_control": {"type": "ephemeral"}}],
    "messages": [
        {"role": "user", "content": [{"type": "text", "text": "hello there"}]},
        {"role": "system", "content": [{"type": "text", "text": "env: linux"}]}
    ]});
    let answer = server
        .post(
            "/v1/messages?beta=true",
            &[("anthropic-beta", "claude-code-20250219")],
            &request,
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    let events = answer.named_events();
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "message_start",
            "ping",
            "content_block_start",
            "content_block_delta",
            "content_block_stop",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    // The thinking block: signed, its text omitted.
    assert_eq!(
        events[2].1["content_block"],
        json!({"type": "thinking", "thinking": ""})
    );
    assert_eq!(events[3].1["delta"]["type"], "signature_delta");
    assert!(events[3].1["delta"]["signature"].as_str().unwrap().len() > 8);
    // The system message after the user's does not take the floor: the user is answered.
    let text: String = events
        .iter()
        .filter_map(|(_, d)| d.pointer("/delta/text").and_then(Value::as_str))
        .collect();
    assert_eq!(text, "echo: hello there");
    let start_usage = &events[0].1["message"]["usage"];
    // be brief (2) + hello there (2) + env: linux (2), 3 per turn.
    assert_eq!(start_usage["input_tokens"], 15);
    // Omitted thinking is still billed: "The user wrote: hello there" is 5 words.
    assert_eq!(events[10].1["usage"]["output_tokens"], 3 + 5);

    // Token counting for the same conversation.
    let answer = server
        .post(
            "/v1/messages/count_tokens?beta=true",
            &[],
            &json!({"model": "claude-x", "system": request["system"],
                "messages": request["messages"], "tools": [{"name": "Bash", "input_schema": {}}]}),
        )
        .await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.json(), json!({"input_tokens": 15}));
    let answer = server
        .post(
            "/v1/messages/count_tokens",
            &[("x-mock-usage", "prompt:1234")],
            &json!({"model": "claude-x", "messages": [{"role": "user", "content": "hi"}]}),
        )
        .await;
    assert_eq!(answer.json(), json!({"input_tokens": 1234}));
    let answer = server
        .post(
            "/v1/messages/count_tokens",
            &[],
            &json!({"model": "claude-x", "messages": [{"role": "system", "content": "hi"}]}),
        )
        .await;
    assert_eq!(answer.status, 400);
    assert_eq!(answer.json()["error"]["type"], "invalid_request_error");
}
