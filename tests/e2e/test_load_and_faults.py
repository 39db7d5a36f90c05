"""Under load and broken providers: fallback that survives concurrent traffic, and every answer a
client can get — the filter's, the provider's (any status, any body or none) and Envoy's own — in
the client API's shape. Each case runs 100 requests with 20 in flight and asserts every answer.

The mock fails on request through the `/mock/<directives>/` prefix of a provider's base URL
(tests/mock/src/main.rs lists the directives).
"""

from __future__ import annotations

import json
import socket
import subprocess

import httpx
import openai
import pytest

from common import HELLO, assert_openai_error, concurrently, streamed_text
from harness import CLI, ROOT

# One provider per way of failing; `good` and `claude` are the fallbacks.
CONFIG = """
options:
  request_timeout: 3s
  max_response_bytes: 1000000
providers:
  good: {kind: openai, base_url: "${MOCK}/v1", api_key: sk-good}
  claude: {kind: anthropic, base_url: "${MOCK}", api_key: sk-claude}
  slow: {kind: openai, base_url: "${MOCK}/mock/delay=300/v1", api_key: sk-slow}
  s429: {kind: openai, base_url: "${MOCK}/mock/status=429/v1", api_key: sk-429}
  s503: {kind: openai, base_url: "${MOCK}/mock/status=503/v1", api_key: sk-503}
  refused: {kind: openai, base_url: "http://127.0.0.1:${DEAD_PORT}/v1", api_key: sk-dead}
  empty: {kind: openai, base_url: "${MOCK}/mock/empty/v1", api_key: sk-empty}
  gone: {kind: openai, base_url: "${MOCK}/mock/reset_before_headers/v1", api_key: sk-gone}
  e503: {kind: openai, base_url: "${MOCK}/mock/empty,status=503/v1", api_key: sk-e503}
  e429: {kind: openai, base_url: "${MOCK}/mock/empty,status=429/v1", api_key: sk-e429}
  huge: {kind: openai, base_url: "${MOCK}/mock/huge=3000000/v1", api_key: sk-huge}
  broken: {kind: openai, base_url: "${MOCK}/mock/malformed/v1", api_key: sk-broken}
  cut: {kind: openai, base_url: "${MOCK}/mock/cut/v1", api_key: sk-cut}
  reset: {kind: openai, base_url: "${MOCK}/mock/reset/v1", api_key: sk-reset}
  stall: {kind: openai, base_url: "${MOCK}/mock/stall=60000/v1", api_key: sk-stall}
models:
  - {name: good, deployments: [{provider: good, model: good-up}]}
  - {name: claude, deployments: [{provider: claude, model: claude-up}], max_tokens: 64}
  - {name: slow, deployments: [{provider: slow, model: slow-up}]}
  - {name: to-good-429, deployments: [{provider: s429, model: m}], fallbacks: [good]}
  - {name: to-good-503, deployments: [{provider: s503, model: m}], fallbacks: [good]}
  - {name: to-good-refused, deployments: [{provider: refused, model: m}], fallbacks: [good]}
  - {name: to-good-empty, deployments: [{provider: empty, model: m}], fallbacks: [good]}
  - {name: to-good-gone, deployments: [{provider: gone, model: m}], fallbacks: [good]}
  - {name: to-claude-429, deployments: [{provider: s429, model: m}], fallbacks: [claude]}
  - {name: to-claude-503, deployments: [{provider: s503, model: m}], fallbacks: [claude]}
  - {name: to-claude-refused, deployments: [{provider: refused, model: m}], fallbacks: [claude]}
  - {name: to-slow-429, deployments: [{provider: s429, model: m}], fallbacks: [slow]}
  - {name: empty, deployments: [{provider: empty, model: m}]}
  - {name: e503, deployments: [{provider: e503, model: m}]}
  - {name: e429, deployments: [{provider: e429, model: m}]}
  - {name: huge, deployments: [{provider: huge, model: m}]}
  - {name: broken, deployments: [{provider: broken, model: m}]}
  - {name: cut, deployments: [{provider: cut, model: m}]}
  - {name: reset, deployments: [{provider: reset, model: m}]}
  - {name: stall, deployments: [{provider: stall, model: m}]}
"""


def answered_by(client, model: str, stream: bool) -> tuple[str, str]:
    """One request; the `x-switchboard` summary of who answered and the text the client got."""
    raw = client.chat.completions.with_raw_response.create(model=model, messages=HELLO, stream=stream)
    summary = raw.headers.get("x-switchboard", "")
    parsed = raw.parse()
    return summary, streamed_text(parsed) if stream else parsed.choices[0].message.content


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize("model,deployment", [
    ("to-good-429", "good/0"), ("to-good-503", "good/0"), ("to-good-refused", "good/0"),
    ("to-good-empty", "good/0"), ("to-good-gone", "good/0"),
    ("to-claude-429", "claude/0"), ("to-claude-503", "claude/0"), ("to-claude-refused", "claude/0"),
    ("to-slow-429", "slow/0"),
])
def test_fallback_answers_every_request_under_load(gateway, model, deployment, stream):
    client = gateway.client(timeout=30)
    results = concurrently(lambda _: answered_by(client, model, stream))
    failures = [r for r in results if isinstance(r, Exception)]
    assert not failures, f"{len(failures)} of 100 failed, first: {failures[:1]}"
    for summary, text in results:
        # Once outlier detection ejects the failing primary (5 5xx in a row), requests go to
        # the fallback's priority at once: one attempt instead of two.
        assert f'deployment="{deployment}"' in summary, summary
        assert "attempts=1" in summary or "attempts=2" in summary, summary
        assert text == "echo: hello there"
    overflow = gateway.stats("upstream_rq_retry_overflow")
    assert not any(overflow.values()), overflow


def status_and_error(gateway, model: str, stream: bool = False) -> tuple[int, dict, str]:
    """Status, OpenAI error object and content type of a request that must fail."""
    body = {"model": model, "messages": HELLO, "stream": stream}
    r = httpx.post(f"{gateway.base_url}/chat/completions", json=body, timeout=30)
    return r.status_code, r.json()["error"], r.headers.get("content-type", "")


@pytest.mark.parametrize("model,status,message", [
    ("empty", 502, "a 200 without a body"),
    ("e503", 503, "without a body"),
    ("e429", 429, "without a body"),
    ("huge", 502, "larger than this gateway's limit"),
    ("broken", 502, ""),
])
@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_every_failure_is_an_openai_error_under_load(gateway, model, status, message, stream):
    if stream and model == "huge":
        pytest.skip("a stream is not buffered: its size is not the answer limit's business")
    if stream and model == "broken":
        pytest.skip("its first events are whole: it ends with an error event (test_provider_faults)")
    results = concurrently(lambda _: status_and_error(gateway, model, stream))
    for result in results:
        assert not isinstance(result, Exception), result
        got, error, content_type = result
        assert content_type == "application/json"
        assert_openai_error(error)
        if stream and model == "empty":
            # A stream that fails before its first event is an error answer (the router could
            # fall back from it), not a 200 stream.
            assert got == 502, result
            assert error["message"].startswith("the provider's stream failed before its first event")
        else:
            assert got == status, result
            assert message in error["message"]


def stream_outcome(client, model: str) -> str:
    """How a stream ended for the SDK: `complete`, `error event`, or `cut` (the connection
    closed without the stream's end)."""
    try:
        chunks = list(client.chat.completions.create(model=model, messages=HELLO, stream=True))
    except openai.APIError as e:
        if isinstance(e, openai.APIConnectionError):
            return "cut"
        return "error event"
    assert chunks
    return "complete"


def test_a_stream_cut_cleanly_ends_with_an_error_event(gateway):
    client = gateway.client(timeout=30)
    assert set(concurrently(lambda _: stream_outcome(client, "cut"))) == {"error event"}


def test_a_stream_reset_or_timed_out_after_its_headers_is_cut_for_the_client(gateway):
    """Envoy resets the client's stream when the provider's resets after the response started
    (the router's `onUpstreamReset` → `resetStream()`), and when the request timeout strikes
    mid-stream (`onResponseTimeout`, response started → reset): no filter callback runs after
    that, so nothing can be appended. The client sees the connection close without the chunked
    body's end, which the SDKs raise as a connection error — never a clean end."""
    client = gateway.client(timeout=30)
    assert set(concurrently(lambda _: stream_outcome(client, "reset"), total=40)) == {"cut"}
    assert set(concurrently(lambda _: stream_outcome(client, "stall"), total=20)) == {"cut"}
    assert gateway.alive()


def raw_request(gateway, data: bytes) -> tuple[int, bytes, bytes]:
    """Sends raw bytes; the status, headers and body of the answer."""
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=5) as s:
        s.sendall(data)
        answer = b""
        while chunk := s.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), head.lower(), body


@pytest.mark.parametrize("request_bytes,status", [
    (b"GET /health HTTP/1.1\r\nHost: x\r\n" + b"".join(b"x-h%d: %s\r\n" % (i, b"a" * 100) for i in range(1200))
     + b"\r\n", 431),
    (b"GARBAGE\r\n\r\n", 400),
    (b"GET /health HTTP/1.0\r\n\r\n", 426),
    (b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\ncontent-length: 5\r\ntransfer-encoding: chunked\r\n\r\nhello",
     400),
], ids=["headers-too-large", "malformed", "http-1.0", "length-and-chunked"])
def test_envoys_own_refusals_are_openai_json(gateway, request_bytes, status):
    got, head, body = raw_request(gateway, request_bytes)
    assert got == status
    assert b"content-type: application/json" in head
    assert assert_openai_error(json.loads(body)["error"])["type"] == "invalid_request_error"


@pytest.mark.parametrize("path,body,param", [
    ("/v1/chat/completions", b'{"model":"good","model":"claude","messages":[{"role":"user","content":"x"}]}', "model"),
    ("/chat/completions", b'{"model":"good","messages":[{"role":"user","content":"x","content":"y"}]}',
     "messages[0].content"),
    ("/v1/embeddings", b'{"model":"good","input":"a","input":"b"}', "input"),
])
@pytest.mark.parametrize("request_id", ["plain-id", 'quoted"id'], ids=["endpoint-route", "generic-route"])
def test_duplicate_keys_are_refused_on_every_route(gateway, path, body, param, request_id):
    r = httpx.post(gateway.url + path, content=body,
                   headers={"content-type": "application/json", "x-request-id": request_id})
    assert r.status_code == 400, r.text
    assert r.json()["error"]["param"] == param


@pytest.mark.parametrize("request_id", ["plain-id", 'quoted"id'], ids=["endpoint-route", "generic-route"])
def test_internal_and_hop_headers_never_reach_a_provider(gateway, mock, test_id, request_id):
    sent = {"x-switchboard-cluster": "sb_claude", "x-switchboard-anything": "1", "x-envoy-max-retries": "5",
            "x-envoy-debug": "1", "proxy-authorization": "Basic c2VjcmV0", "cookie": "session=1",
            "x-request-id": request_id, "x-test-id": test_id}
    r = httpx.post(f"{gateway.base_url}/chat/completions", headers=sent,
                   json={"model": "good", "messages": HELLO})
    assert r.status_code == 200, r.text
    [upstream] = mock.requests(test_id)
    leaked = sorted(h for h in upstream["headers"]
                    if h.startswith(("x-envoy-", "proxy-authorization", "cookie"))
                    or (h.startswith("x-switchboard-") and h != "x-switchboard-request"))
    assert leaked == []
    assert upstream["path"] == "/v1/chat/completions", "the client's routing header was ignored"


def test_a_header_that_is_not_utf8_cannot_take_the_vm_down(gateway):
    for _ in range(4):  # both workers, twice
        status, _, _ = raw_request(
            gateway, b"GET /v1/models HTTP/1.1\r\nHost: x\r\nx-odd: caf\xe9\r\nconnection: close\r\n\r\n")
        assert status == 200
    results = concurrently(lambda _: httpx.get(f"{gateway.base_url}/models").status_code, total=40)
    assert set(results) == {200}


def test_cli_help_and_a_closed_pipe(tmp_path):
    help_run = subprocess.run([str(CLI), "--help"], capture_output=True, text=True)
    assert help_run.returncode == 0 and "render" in help_run.stdout
    validate = subprocess.run(f"'{CLI}' validate '{ROOT}/examples/quickstart.yaml' | head -c 10",
                              shell=True, capture_output=True, text=True)
    assert validate.returncode == 0
    assert "panicked" not in validate.stderr
