"""Foundation: OpenAI, Azure and a preset end to end; fallback; bad input; header hygiene.

Real Envoy, the bootstrap from `switchboard render`, the mock provider, the official `openai` SDK.
"""

import json
import urllib.request

import httpx
import openai
import pytest

CONFIG = """
options:
  max_request_bytes: 65536
providers:
  openai: {kind: openai, base_url: "${MOCK}/v1", api_key: {env: SB_TEST_OPENAI_KEY}}
  azure: {kind: azure, base_url: "${MOCK}", api_key: {env: SB_TEST_AZURE_KEY}, api_version: "2024-10-21"}
  groq: {kind: groq, base_url: "${MOCK}/openai/v1", api_key: gsk-literal}
  openai-503: {kind: openai, base_url: "${MOCK}/mock/status=503/v1", api_key: sk-503}
  openai-429: {kind: openai, base_url: "${MOCK}/mock/status=429/v1", api_key: sk-429}
  openai-400: {kind: openai, base_url: "${MOCK}/mock/status=400/v1", api_key: sk-400}
  openai-401: {kind: openai, base_url: "${MOCK}/mock/status=401/v1", api_key: sk-401}
  refused: {kind: openai, base_url: "http://127.0.0.1:${DEAD_PORT}/v1", api_key: sk-dead}
models:
  - {name: gpt-4o-mini, deployments: [{provider: openai, model: gpt-4o-mini-2024-07-18}]}
  - {name: azure-gpt, deployments: [{provider: azure, model: my-deployment}]}
  - {name: llama, deployments: [{provider: groq, model: llama-3.1-8b-instant}]}
  - {name: embed-small, deployments: [{provider: openai, model: text-embedding-3-small}]}
  - {name: azure-embed, deployments: [{provider: azure, model: emb-deployment}]}
  - {name: fb-503, deployments: [{provider: openai-503, model: p0-model}], fallbacks: [gpt-4o-mini]}
  - {name: fb-429, deployments: [{provider: openai-429, model: p0-model}], fallbacks: [gpt-4o-mini]}
  - {name: fb-refused, deployments: [{provider: refused, model: p0-model}], fallbacks: [gpt-4o-mini]}
  - {name: fb-400, deployments: [{provider: openai-400, model: p0-model}], fallbacks: [gpt-4o-mini]}
  - {name: only-429, deployments: [{provider: openai-429, model: m}]}
  - {name: only-503, deployments: [{provider: openai-503, model: m}]}
  - {name: only-401, deployments: [{provider: openai-401, model: m}]}
  - {name: only-refused, deployments: [{provider: refused, model: m}]}
"""

ENV = {"SB_TEST_OPENAI_KEY": "sk-openai-from-env", "SB_TEST_AZURE_KEY": "azure-key-from-env"}

HELLO = [{"role": "user", "content": "hello there"}]
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}

# (public model, upstream path, auth header, expected auth value, upstream model in body)
PROVIDERS = [
    ("gpt-4o-mini", "/v1/chat/completions", "authorization", "Bearer sk-openai-from-env", "gpt-4o-mini-2024-07-18"),
    ("azure-gpt", "/openai/deployments/my-deployment/chat/completions?api-version=2024-10-21", "api-key",
     "azure-key-from-env", "my-deployment"),
    ("llama", "/openai/v1/chat/completions", "authorization", "Bearer gsk-literal", "llama-3.1-8b-instant"),
]


def only(requests):
    assert len(requests) == 1, requests
    return requests[0]


def no_switchboard_headers(headers):
    leaked = {k: v for k, v in headers.items() if k.startswith("x-switchboard-") and k != "x-switchboard-request"}
    assert not leaked, leaked


@pytest.mark.parametrize("model,path,auth_header,auth_value,upstream_model", PROVIDERS)
def test_chat_json(gateway, mock, test_id, model, path, auth_header, auth_value, upstream_model):
    client = gateway.client()
    r = client.chat.completions.create(
        model=model, messages=HELLO, temperature=0.2, extra_headers={"x-test-id": test_id}
    )
    assert r.choices[0].message.content == "echo: hello there"
    assert r.choices[0].finish_reason == "stop"
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens > 0
    sent = only(mock.requests(test_id))
    assert sent["path"] == path
    assert sent["headers"][auth_header] == auth_value
    assert "sk-client" not in json.dumps(sent["headers"]), "the client's key must not reach the provider"
    no_switchboard_headers(sent["headers"])
    assert sent["body"] == {"model": upstream_model, "messages": HELLO, "temperature": 0.2}


@pytest.mark.parametrize("model,path,auth_header,auth_value,upstream_model", PROVIDERS)
def test_chat_stream(gateway, mock, test_id, model, path, auth_header, auth_value, upstream_model):
    client = gateway.client()
    stream = client.chat.completions.create(
        model=model, messages=HELLO, stream=True, extra_headers={"x-test-id": test_id}
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "echo: hello there"
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert all(c.usage is None for c in chunks), "usage chunk shown to a client that did not ask"
    sent = only(mock.requests(test_id))
    assert sent["path"] == path
    assert sent["headers"][auth_header] == auth_value
    # The gateway asks for usage on every stream so it can account for it.
    assert sent["body"]["stream_options"] == {"include_usage": True}
    assert sent["body"]["model"] == upstream_model


def test_stream_usage_when_asked(gateway, test_id):
    stream = gateway.client().chat.completions.create(
        model="gpt-4o-mini", messages=HELLO, stream=True, stream_options={"include_usage": True},
        extra_headers={"x-test-id": test_id},
    )
    chunks = list(stream)
    assert chunks[-1].choices == [] and chunks[-1].usage.total_tokens > 0


def test_tools_json_and_stream(gateway, mock, test_id):
    client = gateway.client()
    msgs = [{"role": "user", "content": "weather in Paris?"}]
    r = client.chat.completions.create(model="gpt-4o-mini", messages=msgs, tools=[WEATHER_TOOL],
                                       extra_headers={"x-test-id": test_id})
    call = r.choices[0].message.tool_calls[0]
    assert r.choices[0].finish_reason == "tool_calls"
    assert call.function.name == "get_weather" and json.loads(call.function.arguments) == {"city": "mock"}
    stream = client.chat.completions.create(model="gpt-4o-mini", messages=msgs, tools=[WEATHER_TOOL],
                                            stream=True, extra_headers={"x-test-id": test_id})
    args, names = "", []
    for c in stream:
        for tc in (c.choices[0].delta.tool_calls or []) if c.choices else []:
            names += [tc.function.name] if tc.function.name else []
            args += tc.function.arguments or ""
    assert names == ["get_weather"] and json.loads(args) == {"city": "mock"}
    assert mock.requests(test_id)[0]["body"]["tools"] == [WEATHER_TOOL]


def test_images_pass_through(gateway, mock, test_id):
    content = [
        {"type": "text", "text": "what is this"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo=", "detail": "low"}},
    ]
    gateway.client().chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": content}],
        extra_headers={"x-test-id": test_id},
    )
    assert only(mock.requests(test_id))["body"]["messages"][0]["content"] == content


@pytest.mark.parametrize("model,path,auth_header,auth_value", [
    ("embed-small", "/v1/embeddings", "authorization", "Bearer sk-openai-from-env"),
    ("azure-embed", "/openai/deployments/emb-deployment/embeddings?api-version=2024-10-21", "api-key",
     "azure-key-from-env"),
])
def test_embeddings(gateway, mock, test_id, model, path, auth_header, auth_value):
    client = gateway.client()
    r = client.embeddings.create(model=model, input=["one", "two"], extra_headers={"x-test-id": test_id})
    assert [d.index for d in r.data] == [0, 1]
    assert len(r.data[0].embedding) > 0 and r.usage.prompt_tokens > 0
    sent = only(mock.requests(test_id))
    assert sent["path"] == path and sent["headers"][auth_header] == auth_value
    # The SDK asks for base64 by default and decodes it: the bytes must survive the gateway.
    assert sent["body"]["input"] == ["one", "two"]


@pytest.mark.parametrize("model", ["fb-503", "fb-429", "fb-refused"])
@pytest.mark.parametrize("stream", [False, True])
def test_fallback_to_next_priority(gateway, mock, test_id, model, stream):
    client = gateway.client()
    r = client.chat.completions.create(model=model, messages=HELLO, stream=stream,
                                       extra_headers={"x-test-id": test_id})
    text = "".join(c.choices[0].delta.content or "" for c in r if c.choices) if stream else r.choices[0].message.content
    assert text == "echo: hello there"
    sent = mock.requests(test_id)
    # The fallback request is translated afresh: its own path, key and model; nothing of attempt 1 leaks.
    last = sent[-1]
    assert last["path"] == "/v1/chat/completions"
    assert last["headers"]["authorization"] == "Bearer sk-openai-from-env"
    assert last["body"]["model"] == "gpt-4o-mini-2024-07-18"
    if model != "fb-refused":
        assert len(sent) == 2 and sent[0]["path"].startswith("/v1/chat/completions")
        assert sent[0]["body"]["model"] == "p0-model"


def test_400_is_not_retried(gateway, mock, test_id):
    with pytest.raises(openai.BadRequestError) as e:
        gateway.client().chat.completions.create(model="fb-400", messages=HELLO, extra_headers={"x-test-id": test_id})
    assert e.value.status_code == 400
    assert len(mock.requests(test_id)) == 1


@pytest.mark.parametrize("model,exc,status", [
    ("only-429", openai.RateLimitError, 429),
    ("only-503", openai.InternalServerError, 503),
    ("only-401", openai.AuthenticationError, 401),
    ("only-refused", openai.InternalServerError, 503),
    ("no-such-model", openai.NotFoundError, 404),
])
def test_errors_raise_the_right_sdk_exception(gateway, model, exc, status):
    with pytest.raises(exc) as e:
        gateway.client().chat.completions.create(model=model, messages=HELLO)
    assert e.value.status_code == status
    assert isinstance(e.value.body, dict) and e.value.body.get("message"), e.value.body


def test_stream_errors(gateway):
    client = gateway.client()
    with pytest.raises(openai.APIError):
        for _ in client.chat.completions.create(model="gpt-4o-mini", messages=HELLO, stream=True,
                                                extra_headers={"x-mock-cut": "1"}):
            pass
    with pytest.raises(openai.InternalServerError) as e:
        client.chat.completions.create(model="gpt-4o-mini", messages=HELLO, extra_headers={"x-mock-malformed": "1"})
    assert e.value.status_code == 502


def raw(gateway, method, path, body=b"", headers=None):
    return httpx.request(method, gateway.url + path, content=body,
                         headers={"content-type": "application/json", **(headers or {})}, timeout=10)


BAD_INPUTS = [
    ("POST", "/v1/chat/completions", b"this is not json", 400, None),
    ("POST", "/v1/chat/completions", b"", 400, None),
    ("POST", "/v1/chat/completions", b'{"messages":[{"role":"user","content":"x"}]}', 400, "model"),
    ("POST", "/v1/chat/completions", b'{"model":"gpt-4o-mini"}', 400, "messages"),
    ("POST", "/v1/chat/completions", b'{"model":"gpt-4o-mini","messages":"hi"}', 400, "messages"),
    ("POST", "/v1/chat/completions", b'{"model":"gpt-4o-mini","messages":[{"role":"user","content":"x"}],"temperature":"hot"}', 400, "temperature"),
    ("POST", "/v1/chat/completions", b'{"model":42,"messages":[]}', 400, "model"),
    ("POST", "/v1/chat/completions", b'{"model":"nope","messages":[{"role":"user","content":"x"}]}', 404, "model"),
    ("POST", "/v1/chat/completions", b'{"model":"gpt-4o-mini","messages":[{"role":"user","content":"' + b"x" * 70000 + b'"}]}', 413, None),
    ("GET", "/v1/chat/completions", b"", 405, None),
    ("PUT", "/v1/embeddings", b"{}", 405, None),
    ("POST", "/v1/unknown", b"{}", 404, None),
    ("POST", "/v1/embeddings", b'{"model":"embed-small","input":{"a":1}}', 400, "input"),
]


@pytest.mark.parametrize("method,path,body,status,param", BAD_INPUTS)
def test_bad_input_gets_openai_error_and_envoy_keeps_serving(gateway, method, path, body, status, param):
    r = raw(gateway, method, path, body)
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/json"
    err = r.json()["error"]
    assert set(err) == {"message", "type", "param", "code"} and err["message"]
    assert err["param"] == param
    # The next request is served normally.
    ok = gateway.client().chat.completions.create(model="gpt-4o-mini", messages=HELLO)
    assert ok.choices[0].message.content == "echo: hello there"
    assert gateway.alive()


def test_chunked_body_over_limit(gateway):
    def body():
        yield b'{"model":"gpt-4o-mini","messages":[{"role":"user","content":"'
        for _ in range(20):
            yield b"y" * 8192
        yield b'"}]}'
    r = httpx.post(gateway.url + "/v1/chat/completions", content=body(), timeout=10)
    assert r.status_code == 413 and r.json()["error"]["code"] == "request_too_large"


def test_client_cannot_steer_routing(gateway, mock, test_id):
    r = raw(gateway, "POST", "/v1/chat/completions",
            json.dumps({"model": "gpt-4o-mini", "messages": HELLO}).encode(),
            {"x-test-id": test_id, "x-switchboard-cluster": "sb_only-503", "x-switchboard-request": "chat.1",
             "x-switchboard-anything": "x"})
    assert r.status_code == 200, r.text
    sent = only(mock.requests(test_id))
    # Routed by the body, not the client's header; the routing header never leaves Envoy.
    assert sent["body"]["model"] == "gpt-4o-mini-2024-07-18"
    assert "x-switchboard-cluster" not in sent["headers"]


def test_generic_path_drops_client_switchboard_headers(gateway, mock, test_id):
    # A request the fast routes do not take (here: a request id with a quote) reaches the
    # filter that reads every header: it drops what a client sent under our prefix.
    r = raw(gateway, "POST", "/v1/chat/completions",
            json.dumps({"model": "gpt-4o-mini", "messages": HELLO}).encode(),
            {"x-test-id": test_id, "x-request-id": 'odd"id', "x-switchboard-anything": "x"})
    assert r.status_code == 200, r.text
    sent = only(mock.requests(test_id))
    assert "x-switchboard-anything" not in sent["headers"]
    assert sent["headers"]["x-request-id"] == "odd_id"


def test_models_endpoint(gateway):
    ids = [m.id for m in gateway.client().models.list()]
    assert ids[:3] == ["gpt-4o-mini", "azure-gpt", "llama"]
    assert gateway.client().models.retrieve("llama").id == "llama"
    with pytest.raises(openai.NotFoundError):
        gateway.client().models.retrieve("nope")


def test_health(gateway):
    with urllib.request.urlopen(gateway.url + "/health", timeout=5) as r:
        assert json.loads(r.read()) == {"status": "ok"}
