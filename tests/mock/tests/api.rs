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

// ---------------------------------------------------------------------------------------------
// Faults, as they go on the wire: a raw HTTP/1.1 client, one connection per request.

/// What came back on one connection.
#[derive(Debug)]
struct Raw {
    /// `None` when not even a status line arrived.
    status: Option<u16>,
    /// Lowercased names.
    headers: Vec<(String, String)>,
    /// The body, de-chunked.
    body: Vec<u8>,
    /// Whether the body was whole: its last chunk, or all of its content-length.
    complete: bool,
    /// Whether the body was chunked (or else sized by content-length).
    chunked: bool,
    /// Whether the server closed the connection before the deadline.
    closed: bool,
    /// Bytes on the wire.
    received: usize,
    /// Since the request went out: when the first body byte arrived, the last byte, and when
    /// the connection closed (or patience ran out).
    first_body_at: Option<Duration>,
    last_at: Option<Duration>,
    ended_at: Duration,
}

impl Raw {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// A whole, well-framed answer with this status.
    fn assert_whole(&self, status: u16, what: &str) {
        assert_eq!(self.status, Some(status), "{what}: {}", self.text());
        assert!(self.complete, "{what}: body not whole: {:?}", self.text());
    }
}

/// Parses a chunked body: the data, and whether the last (zero) chunk came.
fn dechunk(mut wire: &[u8]) -> (Vec<u8>, bool) {
    let mut body = Vec::new();
    loop {
        let Some(line_end) = wire.windows(2).position(|w| w == b"\r\n") else {
            return (body, false);
        };
        let size_text = std::str::from_utf8(&wire[..line_end]).unwrap();
        let size = usize::from_str_radix(size_text.split(';').next().unwrap().trim(), 16)
            .unwrap_or_else(|_| panic!("bad chunk size {size_text:?}"));
        wire = &wire[line_end + 2..];
        if size == 0 {
            return (body, wire.starts_with(b"\r\n"));
        }
        if wire.len() < size + 2 {
            body.extend_from_slice(&wire[..size.min(wire.len())]);
            return (body, false);
        }
        body.extend_from_slice(&wire[..size]);
        assert_eq!(&wire[size..size + 2], b"\r\n", "chunk data ends with CRLF");
        wire = &wire[size + 2..];
    }
}

fn parse_raw(wire: &[u8], reads: &[(Duration, usize)], closed: bool, ended_at: Duration) -> Raw {
    let mut raw = Raw {
        status: None,
        headers: Vec::new(),
        body: Vec::new(),
        complete: false,
        chunked: false,
        closed,
        received: wire.len(),
        first_body_at: None,
        last_at: reads.last().map(|(at, _)| *at),
        ended_at,
    };
    let Some(head_end) = wire.windows(4).position(|w| w == b"\r\n\r\n") else {
        return raw;
    };
    let head = std::str::from_utf8(&wire[..head_end]).unwrap();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap();
    raw.status = status_line.split(' ').nth(1).and_then(|s| s.parse().ok());
    for line in lines {
        let (name, value) = line.split_once(':').unwrap();
        raw.headers
            .push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
    }
    let body_start = head_end + 4;
    raw.first_body_at = reads
        .iter()
        .find(|(_, total)| *total > body_start)
        .map(|(at, _)| *at);
    let rest = &wire[body_start..];
    if raw.header("transfer-encoding") == Some("chunked") {
        raw.chunked = true;
        (raw.body, raw.complete) = dechunk(rest);
    } else {
        let length: usize = raw
            .header("content-length")
            .expect("a body sized by content-length or chunks")
            .parse()
            .unwrap();
        raw.body = rest[..rest.len().min(length)].to_vec();
        raw.complete = rest.len() >= length;
    }
    raw
}

/// A request as raw bytes; `connection: close`, so that the end of a whole answer is the end of
/// the connection too.
fn raw_request(addr: &str, path: &str, headers: &[(String, String)], body: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "POST {path} HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nconnection: close\r\n",
        body.len()
    );
    for (name, value) in headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str("\r\n");
    let mut out = out.into_bytes();
    out.extend_from_slice(body);
    out
}

/// Sends a request on a new connection and reads until the server closes it or `patience`
/// runs out.
async fn exchange(addr: &str, request: &[u8], patience: Duration) -> Raw {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    tcp.write_all(request).await.unwrap();
    let started = Instant::now();
    let deadline = tokio::time::Instant::now() + patience;
    let mut wire = Vec::new();
    let mut reads = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    let closed = loop {
        match tokio::time::timeout_at(deadline, tcp.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break true,
            Ok(Ok(n)) => {
                wire.extend_from_slice(&buf[..n]);
                reads.push((started.elapsed(), wire.len()));
            }
            Err(_) => break false,
        }
    };
    parse_raw(&wire, &reads, closed, started.elapsed())
}

/// One stream event: its name (SSE `event:`, eventstream `:event-type`, `[DONE]`, or `data`)
/// and its JSON, `None` when broken.
#[derive(Debug)]
struct Event {
    name: String,
    json: Option<Value>,
    /// Eventstream only: whether the prelude and message CRCs are right.
    crcs: (bool, bool),
}

/// The events of an SSE body (LF or CRLF framing).
fn sse_events(body: &[u8]) -> Vec<Event> {
    let text = String::from_utf8(body.to_vec())
        .unwrap()
        .replace("\r\n", "\n");
    assert!(
        text.is_empty() || text.ends_with("\n\n"),
        "events end with a blank line: {text:?}"
    );
    text.split("\n\n")
        .filter(|e| !e.is_empty())
        .map(|e| {
            let mut name = None;
            let mut data = None;
            for line in e.lines() {
                if let Some(n) = line.strip_prefix("event: ") {
                    name = Some(n.to_owned());
                } else if let Some(d) = line.strip_prefix("data: ") {
                    data = Some(d.to_owned());
                }
            }
            let data = data.unwrap_or_else(|| panic!("an event without data: {e:?}"));
            let done = data == "[DONE]";
            Event {
                name: name.unwrap_or_else(|| if done { "[DONE]" } else { "data" }.to_owned()),
                json: if done {
                    Some(Value::Null)
                } else {
                    serde_json::from_str(&data).ok()
                },
                crcs: (true, true),
            }
        })
        .collect()
}

/// The frames of an eventstream body, CRCs checked; a partial last frame is left out.
fn eventstream_events(mut body: &[u8]) -> Vec<Event> {
    let word = |b: &[u8], at: usize| u32::from_be_bytes(b[at..at + 4].try_into().unwrap());
    let mut out = Vec::new();
    while body.len() >= 12 {
        let total = word(body, 0) as usize;
        if body.len() < total {
            break;
        }
        let frame = &body[..total];
        let headers_len = word(frame, 4) as usize;
        let prelude_ok = crc32fast::hash(&frame[..8]) == word(frame, 8);
        let message_ok = crc32fast::hash(&frame[..total - 4]) == word(frame, total - 4);
        let mut headers = &frame[12..12 + headers_len];
        let mut name = String::new();
        while !headers.is_empty() {
            let name_len = headers[0] as usize;
            let header = std::str::from_utf8(&headers[1..1 + name_len]).unwrap();
            assert_eq!(headers[1 + name_len], 7, "string headers only");
            let value_len = u16::from_be_bytes([headers[2 + name_len], headers[3 + name_len]]);
            let value_start = 4 + name_len;
            let value = &headers[value_start..value_start + value_len as usize];
            if header == ":event-type" || header == ":exception-type" {
                name = String::from_utf8(value.to_vec()).unwrap();
            }
            headers = &headers[value_start + value_len as usize..];
        }
        out.push(Event {
            name,
            json: serde_json::from_slice(&frame[12 + headers_len..total - 4]).ok(),
            crcs: (prelude_ok, message_ok),
        });
        body = &body[total..];
    }
    out
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Json,
    Sse,
    EventStream,
}

/// One endpoint of one wire format, with a request it answers with 200.
struct Format {
    name: &'static str,
    path: &'static str,
    body: Value,
    /// The credential, as its format sends it.
    key: (&'static str, &'static str),
    kind: Kind,
    /// JSON answers: where the content is (absent or `[]` under `no_content`).
    content: &'static str,
    /// Where an error body carries its message.
    error_message: &'static str,
    /// Signed with SigV4 (Bedrock).
    signed: bool,
    /// How many times the answer carries its text: Responses streams repeat it after the
    /// deltas (in the `done` events and the completed response).
    text_copies: usize,
}

const HELLO: &str = "hello there";

fn formats() -> Vec<Format> {
    let chat = json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": HELLO}]});
    let mut chat_stream = chat.clone();
    chat_stream["stream"] = json!(true);
    let responses = json!({"model": "gpt-5-mini", "input": HELLO});
    let mut responses_stream = responses.clone();
    responses_stream["stream"] = json!(true);
    let claude = json!({"model": "claude", "max_tokens": 100,
        "messages": [{"role": "user", "content": HELLO}]});
    let mut claude_stream = claude.clone();
    claude_stream["stream"] = json!(true);
    let vertex_claude = json!({"anthropic_version": "vertex-2023-10-16", "max_tokens": 100,
        "messages": [{"role": "user", "content": HELLO}]});
    let mut vertex_claude_stream = vertex_claude.clone();
    vertex_claude_stream["stream"] = json!(true);
    let gemini = json!({"contents": [{"role": "user", "parts": [{"text": HELLO}]}]});
    let converse = json!({"messages": [{"role": "user", "content": [{"text": HELLO}]}]});
    let cohere = json!({"model": "command-a", "messages": [{"role": "user", "content": HELLO}]});
    let mut cohere_stream = cohere.clone();
    cohere_stream["stream"] = json!(true);
    let bearer = ("authorization", "Bearer sk-mock-secret-1");
    let vertex_token = ("authorization", "Bearer ya29.mock-secret-2");
    let goog = ("x-goog-api-key", "AIza-mock-secret-3");
    let anthropic_key = ("x-api-key", "sk-ant-mock-secret-4");
    let cohere_key = ("authorization", "bearer co-mock-secret-5");
    // The SigV4 authorization is computed per request; its access key id is what shows.
    let aws = ("authorization", "AKIDEXAMPLE");
    let format = |name, path, body, key, kind, content, error_message| Format {
        name,
        path,
        body,
        key,
        kind,
        content,
        error_message,
        signed: false,
        text_copies: 1,
    };
    let signed = |name, path, body, kind, content| Format {
        signed: true,
        ..format(name, path, body, aws, kind, content, "/message")
    };
    vec![
        format("openai chat", "/v1/chat/completions", chat, bearer, Kind::Json,
            "/choices/0/message", "/error/message"),
        format("openai chat stream", "/v1/chat/completions", chat_stream, bearer, Kind::Sse,
            "", "/error/message"),
        format("openai responses", "/v1/responses", responses, bearer, Kind::Json,
            "/output/0/content", "/error/message"),
        Format {
            text_copies: 5,
            ..format("openai responses stream", "/v1/responses", responses_stream, bearer,
                Kind::Sse, "", "/error/message")
        },
        format("openai embeddings", "/v1/embeddings", json!({"model": "e", "input": HELLO}),
            bearer, Kind::Json, "/data/0/embedding", "/error/message"),
        format("anthropic", "/v1/messages", claude, anthropic_key, Kind::Json, "/content",
            "/error/message"),
        format("anthropic stream", "/v1/messages", claude_stream, anthropic_key, Kind::Sse, "",
            "/error/message"),
        format("anthropic count_tokens", "/v1/messages/count_tokens",
            json!({"model": "claude", "messages": [{"role": "user", "content": HELLO}]}),
            anthropic_key, Kind::Json, "/input_tokens", "/error/message"),
        format("vertex anthropic",
            "/v1/projects/p/locations/us-east5/publishers/anthropic/models/claude:rawPredict",
            vertex_claude, vertex_token, Kind::Json, "/content", "/error/message"),
        format("vertex anthropic stream",
            "/v1/projects/p/locations/us-east5/publishers/anthropic/models/claude:streamRawPredict",
            vertex_claude_stream, vertex_token, Kind::Sse, "", "/error/message"),
        format("gemini", "/v1beta/models/gemini-2.5-flash:generateContent", gemini.clone(),
            goog, Kind::Json, "/candidates/0/content", "/error/message"),
        format("gemini stream",
            "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse", gemini.clone(),
            goog, Kind::Sse, "", "/error/message"),
        format("gemini embeddings", "/v1beta/models/e:batchEmbedContents",
            json!({"requests": [{"model": "models/e", "content": {"parts": [{"text": HELLO}]}}]}),
            goog, Kind::Json, "/embeddings/0/values", "/error/message"),
        format("vertex gemini",
            "/v1/projects/p/locations/global/publishers/google/models/gemini-2.5-flash:generateContent",
            gemini.clone(), vertex_token, Kind::Json, "/candidates/0/content", "/error/message"),
        format("vertex gemini stream",
            "/v1/projects/p/locations/global/publishers/google/models/gemini-2.5-flash:streamGenerateContent?alt=sse",
            gemini, vertex_token, Kind::Sse, "", "/error/message"),
        format("vertex embeddings",
            "/v1/projects/p/locations/global/publishers/google/models/text-embedding-005:predict",
            json!({"instances": [{"content": HELLO}]}), vertex_token, Kind::Json,
            "/predictions/0/embeddings/values", "/error/message"),
        format("cohere chat", "/v2/chat", cohere, cohere_key, Kind::Json, "/message/content",
            "/message"),
        format("cohere chat stream", "/v2/chat", cohere_stream, cohere_key, Kind::Sse, "",
            "/message"),
        format("cohere embed", "/v2/embed",
            json!({"model": "embed-v4.0", "texts": [HELLO], "input_type": "search_query",
                "embedding_types": ["float"]}),
            cohere_key, Kind::Json, "/embeddings/float", "/message"),
        signed("bedrock converse", "/model/m/converse", converse.clone(), Kind::Json,
            "/output/message/content"),
        signed("bedrock converse-stream", "/model/m/converse-stream", converse,
            Kind::EventStream, ""),
        signed("bedrock titan embeddings", "/model/amazon.titan-embed-text-v2/invoke",
            json!({"inputText": HELLO}), Kind::Json, "/embedding"),
        signed("bedrock cohere embeddings", "/model/cohere.embed-english-v3/invoke",
            json!({"texts": [HELLO], "input_type": "search_query"}), Kind::Json, "/embeddings"),
    ]
}

impl Format {
    /// The request with these directives (as `x-mock-*` headers), signed when Bedrock's.
    fn request(&self, addr: &str, directives: &[(&str, &str)]) -> Vec<u8> {
        let body = self.body.to_string().into_bytes();
        let mut headers: Vec<(String, String)> = directives
            .iter()
            .map(|(name, value)| (format!("x-mock-{name}"), (*value).to_owned()))
            .collect();
        if self.signed {
            headers.extend(sigv4::sign(addr, self.path, &body));
        } else {
            headers.push((self.key.0.to_owned(), self.key.1.to_owned()));
        }
        raw_request(addr, self.path, &headers, &body)
    }

    async fn send(&self, addr: &str, directives: &[(&str, &str)]) -> Raw {
        exchange(
            addr,
            &self.request(addr, directives),
            Duration::from_secs(20),
        )
        .await
    }

    fn events(&self, raw: &Raw) -> Vec<Event> {
        match self.kind {
            Kind::Json => panic!("{}: not a stream", self.name),
            Kind::Sse => sse_events(&raw.body),
            Kind::EventStream => eventstream_events(&raw.body),
        }
    }

    fn names(&self, raw: &Raw) -> Vec<String> {
        self.events(raw).into_iter().map(|e| e.name).collect()
    }

    /// The credential as `echo_key` should repeat it.
    fn shown_key(&self) -> &'static str {
        match self.key.1.split_once(' ') {
            Some((_, token)) => token,
            None => self.key.1,
        }
    }
}

/// A just-good-enough SigV4 signer for the mock's default credentials.
mod sigv4 {
    use hmac::{Hmac, Mac};
    use sha2::{Digest, Sha256};

    const ACCESS_KEY_ID: &str = "AKIDEXAMPLE";
    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

    fn hmac(key: &[u8], data: &str) -> Vec<u8> {
        let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
        mac.update(data.as_bytes());
        mac.finalize().into_bytes().to_vec()
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Now as `YYYYMMDDTHHMMSSZ`.
    fn amz_date() -> String {
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        // Days to civil date (Howard Hinnant's algorithm).
        let z = (secs / 86_400) as i64 + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        let year = yoe + era * 400 + i64::from(month <= 2);
        let rem = secs % 86_400;
        format!(
            "{year:04}{month:02}{day:02}T{:02}{:02}{:02}Z",
            rem / 3600,
            rem / 60 % 60,
            rem % 60
        )
    }

    /// `x-amz-date` and `authorization` for a POST of `body` to `path` (no query, nothing to
    /// encode in it) on `host`.
    pub fn sign(host: &str, path: &str, body: &[u8]) -> Vec<(String, String)> {
        let date_time = amz_date();
        let date = &date_time[..8];
        let scope = format!("{date}/us-east-1/bedrock/aws4_request");
        let canonical = format!(
            "POST\n{path}\n\nhost:{host}\nx-amz-date:{date_time}\n\nhost;x-amz-date\n{}",
            hex(&Sha256::digest(body))
        );
        let to_sign = format!(
            "AWS4-HMAC-SHA256\n{date_time}\n{scope}\n{}",
            hex(&Sha256::digest(canonical.as_bytes()))
        );
        let key = [date, "us-east-1", "bedrock", "aws4_request"]
            .iter()
            .fold(format!("AWS4{SECRET}").into_bytes(), |key, part| {
                hmac(&key, part)
            });
        let signature = hex(&hmac(&key, &to_sign));
        vec![
            ("x-amz-date".to_owned(), date_time.clone()),
            (
                "authorization".to_owned(),
                format!(
                    "AWS4-HMAC-SHA256 Credential={ACCESS_KEY_ID}/{scope}, \
                     SignedHeaders=host;x-amz-date, Signature={signature}"
                ),
            ),
        ]
    }
}

fn addr(server: &Server) -> String {
    server.base.trim_start_matches("http://").to_owned()
}

/// Every format answers normally, then with each fault; what goes on the wire is checked
/// against the normal answer.
#[tokio::test]
async fn faults_on_every_format() {
    let server = Server::start();
    let addr = addr(&server);
    for format in formats() {
        let name = format.name;
        let normal = format.send(&addr, &[]).await;
        normal.assert_whole(200, name);
        if format.kind == Kind::Json {
            let body = normal.json();
            assert!(body.pointer(format.content).is_some(), "{name}: {body}");
        } else {
            assert!(normal.chunked, "{name}: streams are chunked");
            let events = format.events(&normal);
            assert!(events.len() >= 3, "{name}: {events:?}");
            assert!(
                events
                    .iter()
                    .all(|e| e.json.is_some() && e.crcs == (true, true)),
                "{name}"
            );
        }

        // empty: a success with nothing in it, cleanly ended.
        let raw = format.send(&addr, &[("empty", "1")]).await;
        raw.assert_whole(200, name);
        assert!(raw.body.is_empty(), "{name}: {}", raw.text());
        if format.kind == Kind::Json {
            assert_eq!(raw.header("content-length"), Some("0"), "{name}");
        } else {
            assert!(
                raw.chunked,
                "{name}: a stream with no events still ends with its last chunk"
            );
        }

        // status=503,empty: that status, no body.
        let raw = format
            .send(&addr, &[("status", "503"), ("empty", "1")])
            .await;
        raw.assert_whole(503, name);
        assert!(raw.body.is_empty(), "{name}: {}", raw.text());

        // cut: ends early, cleanly.
        let raw = format.send(&addr, &[("cut", "1")]).await;
        raw.assert_whole(200, name);
        assert!(raw.closed);
        assert!(!raw.body.is_empty(), "{name}");
        assert!(raw.body.len() < normal.body.len(), "{name}");
        match format.kind {
            Kind::Json => {
                assert!(
                    serde_json::from_slice::<Value>(&raw.body).is_err(),
                    "{name}"
                );
                // Half of the body (ids and counters may differ by a digit from the normal).
                assert!(
                    raw.body.len().abs_diff(normal.body.len() / 2) <= 2,
                    "{name}"
                );
                assert_eq!(raw.body[0], b'{', "{name}");
            }
            _ => {
                let (normal_events, events) = (format.names(&normal), format.names(&raw));
                assert!(events.len() < normal_events.len(), "{name}: {events:?}");
                assert_eq!(events[..], normal_events[..events.len()], "{name}");
            }
        }

        // reset: headers and part of the body, then the connection ends mid-body.
        let raw = format.send(&addr, &[("reset", "1")]).await;
        assert_eq!(raw.status, Some(200), "{name}");
        assert!(!raw.complete, "{name}: the body must not end cleanly");
        assert!(raw.closed, "{name}");
        assert!(!raw.body.is_empty(), "{name}: part of the body comes first");
        match format.kind {
            Kind::Json => {
                let announced: usize = raw.header("content-length").unwrap().parse().unwrap();
                assert_eq!(raw.body.len(), announced / 2, "{name}");
            }
            _ => {
                assert!(raw.chunked, "{name}");
                assert!(!format.events(&raw).is_empty(), "{name}");
            }
        }

        // reset_before_headers: not a byte.
        let raw = format.send(&addr, &[("reset-before-headers", "1")]).await;
        assert_eq!(raw.received, 0, "{name}: {raw:?}");
        assert!(raw.closed, "{name}");

        // stall: the first part, a pause, then the rest.
        let raw = format.send(&addr, &[("stall", "400")]).await;
        raw.assert_whole(200, name);
        let first = raw.first_body_at.unwrap();
        let last = raw.last_at.unwrap();
        // The stall sits between the first part and the rest (the machine may be slow to send
        // the first part; only the gap is the mock's).
        assert!(
            last - first >= Duration::from_millis(390),
            "{name}: {first:?} {last:?}"
        );
        match format.kind {
            Kind::Json => {
                raw.json();
            }
            _ => assert_eq!(format.names(&raw), format.names(&normal), "{name}"),
        }

        // huge: well-formed and at least that big.
        let raw = format.send(&addr, &[("huge", "200000")]).await;
        raw.assert_whole(200, name);
        assert!(raw.body.len() >= 200_000, "{name}: {}", raw.body.len());
        assert!(
            raw.body.len() < 400_000 * format.text_copies,
            "{name}: {}",
            raw.body.len()
        );
        match format.kind {
            Kind::Json => {
                raw.json();
            }
            _ => {
                let events = format.events(&raw);
                assert!(events.len() > 100, "{name}: {} events", events.len());
                assert!(
                    events
                        .iter()
                        .all(|e| e.json.is_some() && e.crcs == (true, true)),
                    "{name}"
                );
            }
        }

        // no_content: a whole, well-formed 200 without the content.
        let raw = format.send(&addr, &[("no-content", "1")]).await;
        raw.assert_whole(200, name);
        assert!(!raw.text().contains("echo"), "{name}: {}", raw.text());
        match format.kind {
            Kind::Json => {
                let body = raw.json();
                let content = body.pointer(format.content);
                assert!(
                    content.is_none() || content == Some(&json!([])),
                    "{name}: {body}"
                );
            }
            _ => {
                let (normal_names, names) = (format.names(&normal), format.names(&raw));
                assert!(
                    format.events(&raw).iter().all(|e| e.json.is_some()),
                    "{name}"
                );
                assert!(names.len() < normal_names.len(), "{name}: {names:?}");
                assert_eq!(names.first(), normal_names.first(), "{name}");
                assert_eq!(names.last(), normal_names.last(), "{name}");
            }
        }

        // echo_key: a 401 in the format's error shape repeating the credential.
        let raw = format.send(&addr, &[("echo-key", "1")]).await;
        raw.assert_whole(401, name);
        let body = raw.json();
        let message = body
            .pointer(format.error_message)
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("{name}: {body}"));
        assert!(message.contains(format.shown_key()), "{name}: {message}");
        let raw = format
            .send(&addr, &[("echo-key", "1"), ("status", "403")])
            .await;
        raw.assert_whole(403, name);
        assert!(raw.text().contains(format.shown_key()), "{name}");

        if format.kind == Kind::Json {
            let raw = format.send(&addr, &[("malformed", "1")]).await;
            raw.assert_whole(200, name);
            assert!(
                serde_json::from_slice::<Value>(&raw.body).is_err(),
                "{name}"
            );
            continue;
        }

        // bad_event: the normal stream plus one broken event in its middle.
        let raw = format.send(&addr, &[("bad-event", "1")]).await;
        raw.assert_whole(200, name);
        let events = format.events(&raw);
        let normal_names = format.names(&normal);
        assert_eq!(events.len(), normal_names.len() + 1, "{name}: {events:?}");
        let broken: Vec<usize> = (0..events.len())
            .filter(|i| events[*i].json.is_none())
            .collect();
        assert_eq!(
            broken,
            [(normal_names.len() / 2).max(1)],
            "{name}: {events:?}"
        );
        let mut names: Vec<String> = events.iter().map(|e| e.name.clone()).collect();
        let broken_name = names.remove(broken[0]);
        assert_eq!(names, normal_names, "{name}");
        assert_eq!(
            broken_name,
            names[broken[0] - 1],
            "{name}: a copy of the event before"
        );
        assert!(events.iter().all(|e| e.crcs == (true, true)), "{name}");

        // malformed: a broken event early on (the stream's end marker may follow).
        let raw = format.send(&addr, &[("malformed", "1")]).await;
        raw.assert_whole(200, name);
        assert!(
            format.events(&raw).iter().any(|e| e.json.is_none()),
            "{name}"
        );
    }
}

#[tokio::test]
async fn bad_crcs_on_bedrock_streams() {
    let server = Server::start();
    let addr = addr(&server);
    let format = formats()
        .into_iter()
        .find(|f| f.kind == Kind::EventStream)
        .unwrap();
    let normal = format.events(&format.send(&addr, &[]).await);
    let middle = normal.len() / 2;
    for (value, crcs) in [
        ("prelude", (false, true)),
        ("message", (true, false)),
        ("both", (false, false)),
        ("1", (false, false)),
    ] {
        let raw = format.send(&addr, &[("bad-crc", value)]).await;
        raw.assert_whole(200, value);
        let events = format.events(&raw);
        assert_eq!(events.len(), normal.len(), "{value}");
        for (i, event) in events.iter().enumerate() {
            let expected = if i == middle { crcs } else { (true, true) };
            assert_eq!(event.crcs, expected, "{value}: frame {i}");
            assert!(event.json.is_some(), "{value}: frame {i} keeps its JSON");
        }
    }
}

#[tokio::test]
async fn faults_combine() {
    let server = Server::start();
    let addr = addr(&server);
    let formats = formats();
    let chat = &formats[0];
    let stream = &formats[1];
    let normal = stream.send(&addr, &[]).await;

    // stall then cut: the shortened stream, paused in its middle, ends cleanly.
    let raw = stream.send(&addr, &[("stall", "300"), ("cut", "1")]).await;
    raw.assert_whole(200, "stall,cut");
    assert_eq!(stream.names(&raw), ["data", "data"]);
    assert!(raw.last_at.unwrap() - raw.first_body_at.unwrap() >= Duration::from_millis(290));

    // stall then reset: the first part, the pause, then the abort.
    let raw = stream
        .send(&addr, &[("stall", "300"), ("reset", "1")])
        .await;
    assert!(raw.closed && !raw.complete);
    assert!(raw.last_at.unwrap() < Duration::from_millis(200));
    assert!(raw.ended_at >= Duration::from_millis(300));
    assert_eq!(stream.names(&raw).len(), stream.names(&normal).len() / 2);

    // An error status, reset halfway through its body.
    let raw = chat.send(&addr, &[("status", "429"), ("reset", "1")]).await;
    assert_eq!(raw.status, Some(429));
    assert!(raw.closed && !raw.complete && !raw.body.is_empty());

    // A cut error body; an empty stream that stalls before its clean end.
    let raw = chat.send(&addr, &[("status", "500"), ("cut", "1")]).await;
    raw.assert_whole(500, "status,cut");
    assert!(
        raw.text().starts_with("{\"error\"") && serde_json::from_slice::<Value>(&raw.body).is_err()
    );
    let raw = stream
        .send(&addr, &[("empty", "1"), ("stall", "300")])
        .await;
    raw.assert_whole(200, "empty,stall");
    assert!(raw.body.is_empty());
    assert!(raw.last_at.unwrap() >= Duration::from_millis(300));

    // huge with a bad event and a success status; no_content with echo_key is the echo.
    let raw = stream
        .send(
            &addr,
            &[("huge", "50000"), ("bad-event", "1"), ("status", "201")],
        )
        .await;
    raw.assert_whole(201, "huge,bad_event");
    assert_eq!(
        stream
            .events(&raw)
            .iter()
            .filter(|e| e.json.is_none())
            .count(),
        1
    );
    assert!(raw.body.len() >= 50_000);

    // The path prefix carries the same directives.
    let request = raw_request(
        &addr,
        "/mock/status=503,empty/v1/chat/completions",
        &[],
        chat.body.to_string().as_bytes(),
    );
    let raw = exchange(&addr, &request, Duration::from_secs(10)).await;
    raw.assert_whole(503, "prefix");
    assert!(raw.body.is_empty());
}

#[tokio::test]
async fn refusals_are_not_spoiled() {
    let server = Server::start();
    let addr = addr(&server);
    // A request the format refuses keeps its 400, whole, whatever the faults asked.
    let bad = raw_request(
        &addr,
        "/mock/reset,empty,stall=5000/v1/messages",
        &[],
        br#"{"model": "claude", "messages": []}"#,
    );
    let raw = exchange(&addr, &bad, Duration::from_secs(10)).await;
    raw.assert_whole(400, "refusal");
    assert_eq!(raw.json()["error"]["type"], "invalid_request_error");
    assert!(raw.last_at.unwrap() < Duration::from_secs(2));
    // Bedrock refuses an unsigned request before any fault or echo.
    let unsigned = raw_request(&addr, "/mock/echo_key,reset/model/m/converse", &[], b"{}");
    let raw = exchange(&addr, &unsigned, Duration::from_secs(10)).await;
    raw.assert_whole(403, "unsigned");
    assert_eq!(
        raw.header("x-amzn-errortype")
            .map(|t| t.split(':').next().unwrap()),
        Some("MissingAuthenticationTokenException")
    );
}

/// Whether an error says that the connection closed before the message's end.
fn ends_early(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(error);
    while let Some(error) = cause {
        if error
            .downcast_ref::<hyper::Error>()
            .is_some_and(hyper::Error::is_incomplete_message)
            || error
                .downcast_ref::<std::io::Error>()
                .is_some_and(|e| e.kind() == std::io::ErrorKind::UnexpectedEof)
        {
            return true;
        }
        cause = error.source();
    }
    false
}

#[tokio::test]
async fn reset_is_a_client_error() {
    let server = Server::start();
    let mut request = chat("one two three four five");
    request["stream"] = json!(true);
    for (path, body) in [
        ("/mock/reset/v1/chat/completions", request.to_string()),
        ("/mock/reset/v1/chat/completions", chat("x").to_string()),
    ] {
        let response = server
            .client
            .request(server.request(Method::POST, path, &[], &body))
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        // hyper's client sees the body end before its last chunk or its length.
        let error = response.into_body().collect().await.unwrap_err();
        assert!(ends_early(&error), "{error:?}");
    }
    // No response at all: an error before any status.
    let request = server.request(
        Method::POST,
        "/mock/reset_before_headers/v1/chat/completions",
        &[],
        &chat("x").to_string(),
    );
    let error = server.client.request(request).await.unwrap_err();
    assert!(!error.is_connect(), "the connection was made: {error:?}");
    // The server carries on.
    let ok = server
        .post("/v1/chat/completions", &[], &chat("still here"))
        .await;
    assert_eq!(ok.status, 200);
}

#[tokio::test]
async fn a_huge_stall_stalls_for_good() {
    let server = Server::start();
    let addr = addr(&server);
    let formats = formats();
    for format in [&formats[0], &formats[1]] {
        let request = format.request(&addr, &[("stall", "18446744073709551615")]);
        let raw = exchange(&addr, &request, Duration::from_millis(800)).await;
        assert_eq!(raw.status, Some(200), "{}", format.name);
        assert!(!raw.closed && !raw.complete, "{}", format.name);
        assert!(!raw.body.is_empty(), "{}: the first part came", format.name);
    }
    let ok = server
        .post("/v1/chat/completions", &[], &chat("still here"))
        .await;
    assert_eq!(ok.status, 200);
}

/// 100 requests, 20 in flight, each with a fault that takes time: all answer as asked, and
/// in about the time of five rounds, not of a hundred requests one after the other.
#[tokio::test]
async fn concurrent_faults() {
    let server = Server::start();
    let addr = addr(&server);
    let formats = std::sync::Arc::new(formats());
    let started = Instant::now();
    let mut running = tokio::task::JoinSet::new();
    let mut done = 0;
    for i in 0..100usize {
        if running.len() == 20 {
            running.join_next().await.unwrap().unwrap();
            done += 1;
        }
        let (addr, formats) = (addr.clone(), std::sync::Arc::clone(&formats));
        running.spawn(async move {
            let format = &formats[i % formats.len()];
            let case = i % 5;
            let directives: &[(&str, &str)] = match case {
                0 => &[("stall", "200")],
                1 => &[("delay", "200"), ("reset", "1")],
                2 => &[("delay", "200"), ("reset-before-headers", "1")],
                3 => &[("delay", "200"), ("status", "503"), ("empty", "1")],
                _ => &[("delay", "200"), ("huge", "20000")],
            };
            let raw = format.send(&addr, directives).await;
            let what = format!("{} {directives:?}", format.name);
            match case {
                0 => raw.assert_whole(200, &what),
                1 => assert!(
                    raw.status == Some(200) && !raw.complete && raw.closed,
                    "{what}"
                ),
                2 => assert_eq!(raw.received, 0, "{what}"),
                3 => {
                    raw.assert_whole(503, &what);
                    assert!(raw.body.is_empty(), "{what}");
                }
                _ => {
                    raw.assert_whole(200, &what);
                    assert!(raw.body.len() >= 20_000, "{what}");
                }
            }
        });
    }
    while let Some(result) = running.join_next().await {
        result.unwrap();
        done += 1;
    }
    assert_eq!(done, 100);
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
}
