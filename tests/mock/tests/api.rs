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
