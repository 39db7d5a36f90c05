"""Foundation: what the gateway does whatever the provider (test_conformance.py runs every kind
through chat, streams, tools, errors and fallback): OpenAI's and Azure's embeddings, images
passed through, a connection refused, bad input, header hygiene, the models list, health.

Real Envoy, the bootstrap from `switchboard render`, the mock provider, the official `openai` SDK.
"""

import json
import urllib.request

import httpx
import openai
import pytest

from common import HELLO, assert_openai_error, only, streamed_text

CONFIG = """
options:
  max_request_bytes: 65536
providers:
  openai: {kind: openai, base_url: "${MOCK}/v1", api_key: {env: SB_TEST_OPENAI_KEY}}
  azure: {kind: azure, base_url: "${MOCK}", api_key: {env: SB_TEST_AZURE_KEY}, api_version: "2024-10-21"}
  groq: {kind: groq, base_url: "${MOCK}/openai/v1", api_key: gsk-literal}
  openai-503: {kind: openai, base_url: "${MOCK}/mock/status=503/v1", api_key: sk-503}
  refused: {kind: openai, base_url: "http://127.0.0.1:${DEAD_PORT}/v1", api_key: sk-dead}
models:
  - {name: gpt-4o-mini, deployments: [{provider: openai, model: gpt-4o-mini-2024-07-18}]}
  - {name: azure-gpt, deployments: [{provider: azure, model: my-deployment}]}
  - {name: llama, deployments: [{provider: groq, model: llama-3.1-8b-instant}]}
  - {name: embed-small, deployments: [{provider: openai, model: text-embedding-3-small}]}
  - {name: azure-embed, deployments: [{provider: azure, model: emb-deployment}]}
  - {name: fb-refused, deployments: [{provider: refused, model: p0-model}], fallbacks: [gpt-4o-mini]}
  - {name: only-503, deployments: [{provider: openai-503, model: m}]}
  - {name: only-refused, deployments: [{provider: refused, model: m}]}
"""

ENV = {"SB_TEST_OPENAI_KEY": "sk-openai-from-env", "SB_TEST_AZURE_KEY": "azure-key-from-env"}


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


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_a_refused_connection_falls_back(gateway, mock, test_id, stream):
    r = gateway.client().chat.completions.create(model="fb-refused", messages=HELLO, stream=stream,
                                                 extra_headers={"x-test-id": test_id})
    assert (streamed_text(r) if stream else r.choices[0].message.content) == "echo: hello there"
    # Only the fallback reached a provider: its own path, key and model.
    sent = only(mock.requests(test_id))
    assert sent["path"] == "/v1/chat/completions"
    assert sent["headers"]["authorization"] == "Bearer sk-openai-from-env"
    assert sent["body"]["model"] == "gpt-4o-mini-2024-07-18"


@pytest.mark.parametrize("model,status", [("only-refused", 503), ("no-such-model", 404)])
def test_gateway_errors_raise_the_right_sdk_exception(gateway, model, status):
    exc = {503: openai.InternalServerError, 404: openai.NotFoundError}[status]
    with pytest.raises(exc) as e:
        gateway.client().chat.completions.create(model=model, messages=HELLO)
    assert e.value.status_code == status
    assert_openai_error(e.value.body)


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
    assert assert_openai_error(r.json()["error"])["param"] == param
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
