"""Anthropic Messages in, end to end: the official `anthropic` SDK (and Claude Code) against
Envoy + Switchboard, with the mock behind it speaking Anthropic's Messages API (passed through
natively), OpenAI's chat API, Bedrock's Converse and Gemini's API (translated both ways).
Answers, streams (text, thinking, tool use), tool round trips, token counting, errors as the
SDK's exception classes, virtual keys in both auth headers, metrics, and fallback across
formats, JSON and streams, under concurrency.
"""

import json
import uuid
from concurrent.futures import ThreadPoolExecutor

import anthropic
import httpx
import pytest

from agents import MARKER_COMMAND, MARKER_OUTPUT, run_claude
from common import ANTHROPIC_WEATHER_TOOL, HELLO, only, scrape, sha256_hex

# The mocks' signatures: Anthropic's thinking blocks, Bedrock's reasoning.
ANTHROPIC_SIGNATURE = "c2lnbmF0dXJlLW1vY2s="
BEDROCK_SIGNATURE = "bW9jay1iZWRyb2NrLXJlYXNvbmluZw=="

KEYS = {"full": "sk-sb-messages-full", "claude-only": "sk-sb-messages-claude"}


CONFIG = f"""
providers:
  anthropic: {{kind: anthropic, base_url: "${{MOCK}}", api_key: sk-ant-upstream, beta: [configured-beta-2025]}}
  anthropic-429: {{kind: anthropic, base_url: "${{MOCK}}/mock/status=429", api_key: sk-ant-429}}
  anthropic-529: {{kind: anthropic, base_url: "${{MOCK}}/mock/status=529", api_key: sk-ant-529}}
  openai: {{kind: openai, base_url: "${{MOCK}}/v1", api_key: sk-openai}}
  openai-503: {{kind: openai, base_url: "${{MOCK}}/mock/status=503/v1", api_key: sk-openai-503}}
  bedrock: {{kind: bedrock, region: us-east-1, base_url: "${{MOCK}}", access_key_id: "${{MOCK_AWS_KEY_ID}}",
            secret_access_key: "${{MOCK_AWS_SECRET}}"}}
  gemini: {{kind: gemini, base_url: "${{MOCK}}", api_key: gemini-key}}
models:
  - {{name: claude, deployments: [{{provider: anthropic, model: claude-sonnet-4-5}}]}}
  - {{name: gpt, deployments: [{{provider: openai, model: gpt-4o-mini}}]}}
  - {{name: gpt-lenient, drop_unsupported_params: true, deployments: [{{provider: openai, model: gpt-4o-mini}}]}}
  - {{name: bedrock-claude, deployments: [{{provider: bedrock, model: "anthropic.claude-sonnet-4-5-v1:0"}}]}}
  - {{name: gemini, deployments: [{{provider: gemini, model: gemini-2.5-flash}}]}}
  - {{name: claude-429, deployments: [{{provider: anthropic-429, model: claude-p0}}]}}
  - {{name: claude-overloaded, deployments: [{{provider: anthropic-529, model: claude-p0}}]}}
  - {{name: gpt-503, deployments: [{{provider: openai-503, model: gpt-p0}}]}}
  - {{name: claude-429-then-gpt, deployments: [{{provider: anthropic-429, model: claude-p0}}], fallbacks: [gpt]}}
  - {{name: gpt-503-then-claude, deployments: [{{provider: openai-503, model: gpt-p0}}], fallbacks: [claude]}}
  - {{name: claude-then-gpt, deployments: [{{provider: anthropic, model: claude-sonnet-4-5}}], fallbacks: [gpt]}}
keys:
  - {{name: full, sha256: {sha256_hex(KEYS["full"])}}}
  - {{name: claude-only, sha256: {sha256_hex(KEYS["claude-only"])}, models: ["claude*"]}}
"""

BACKENDS = ["claude", "gpt", "bedrock-claude", "gemini"]
# Where each backend's request lands at the mock (the path its provider is given).
UPSTREAM_PATH = {
    "claude": "/v1/messages",
    "gpt": "/v1/chat/completions",
    "bedrock-claude": "/model/anthropic.claude-sonnet-4-5-v1%3A0/converse",
    "gemini": "/v1beta/models/gemini-2.5-flash:generateContent",
}
STREAM_PATH = {
    "claude": "/v1/messages",
    "gpt": "/v1/chat/completions",
    "bedrock-claude": "/model/anthropic.claude-sonnet-4-5-v1%3A0/converse-stream",
    "gemini": "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse",
}
# The mock calls the first tool offered unless told otherwise.
NO_TOOL = {"x-mock-tool-call": "none"}


def client(gateway, key=KEYS["full"], bearer=False, **kwargs) -> anthropic.Anthropic:
    auth = {"auth_token": key} if bearer else {"api_key": key}
    return anthropic.Anthropic(base_url=gateway.url, max_retries=0, timeout=20, **auth, **kwargs)


def headers(test_id, **more):
    return {"x-test-id": test_id, **more}


# ---------------------------------------------------------------------------------------------
# Answers

@pytest.mark.parametrize("model", BACKENDS)
def test_create_text(gateway, mock, test_id, model):
    # OpenAI and Gemini report no cache writes.
    written = 5 if model in ("claude", "bedrock-claude") else 0
    usage = f"prompt:50;cached:20;completion:4;cache_write:{written}"
    c = client(gateway)
    m = c.messages.create(
        model=model, max_tokens=300, system="be brief", messages=HELLO, stop_sequences=["END"],
        metadata={"user_id": "u-1"}, extra_body={"temperature": 0.5},
        extra_headers=headers(test_id, **{"x-mock-usage": usage}),
    )
    assert m.type == "message" and m.role == "assistant"
    assert [b.type for b in m.content] == ["text"]
    assert m.content[0].text == "echo: hello there"
    assert m.stop_reason == "end_turn"
    # Anthropic's meaning: input_tokens leaves out the cache reads and writes.
    assert (m.usage.input_tokens, m.usage.cache_read_input_tokens, m.usage.cache_creation_input_tokens,
            m.usage.output_tokens) == (50 - 20 - written, 20, written, 4)
    request = only(mock.requests(test_id))
    assert request["path"] == UPSTREAM_PATH[model]
    assert "sk-sb-" not in json.dumps(request["headers"]), "the virtual key must not reach the provider"
    if model == "claude":
        # Passed through: the client's body with the model replaced, its version header (the
        # SDK's own), and not the provider's configured betas.
        assert request["body"] == {"model": "claude-sonnet-4-5", "max_tokens": 300, "system": "be brief",
                                   "messages": HELLO, "stop_sequences": ["END"], "metadata": {"user_id": "u-1"},
                                   "temperature": 0.5}
        assert request["headers"]["x-api-key"] == "sk-ant-upstream"
        assert request["headers"]["anthropic-version"] == c.default_headers["anthropic-version"]
        assert "anthropic-beta" not in request["headers"]
    if model == "gpt":
        assert request["body"] == {"model": "gpt-4o-mini", "messages": [{"role": "system", "content": "be brief"},
                                   *HELLO], "max_completion_tokens": 300, "temperature": 0.5, "stop": ["END"],
                                   "user": "u-1"}


def test_the_clients_betas_and_fields_reach_anthropic(gateway, mock, test_id):
    betas = "context-management-2025-06-27,interleaved-thinking-2025-05-14"
    m = client(gateway).messages.create(
        model="claude", max_tokens=50, messages=HELLO,
        extra_body={"context_management": {"edits": [{"type": "clear_tool_uses_20250919"}]}},
        extra_headers=headers(test_id, **{"anthropic-beta": betas}),
    )
    assert m.content[0].text == "echo: hello there"
    request = only(mock.requests(test_id))
    assert request["headers"]["anthropic-beta"] == betas
    assert request["body"]["context_management"] == {"edits": [{"type": "clear_tool_uses_20250919"}]}
    # Hints Anthropic alone uses are dropped on the way to another provider.
    other = uuid.uuid4().hex
    client(gateway).messages.create(
        model="gpt", max_tokens=50, messages=HELLO,
        extra_body={"context_management": {"edits": []}, "service_tier": "auto"},
        extra_headers=headers(other, **{"anthropic-beta": betas}),
    )
    assert set(only(mock.requests(other))["body"]) == {"model", "messages", "max_completion_tokens"}


def test_a_request_without_version_gets_the_default(gateway, mock, test_id):
    r = httpx.post(f"{gateway.url}/v1/messages?beta=true", timeout=10, json={
        "model": "claude", "max_tokens": 20, "messages": HELLO,
    }, headers={"x-api-key": KEYS["full"], "x-test-id": test_id})
    assert r.status_code == 200, r.text
    assert only(mock.requests(test_id))["headers"]["anthropic-version"] == "2023-06-01"


# ---------------------------------------------------------------------------------------------
# Streams

def stream_events(stream) -> list:
    return [event for event in stream]


@pytest.mark.parametrize("model", BACKENDS)
def test_stream_text(gateway, mock, test_id, model):
    with client(gateway).messages.stream(
        model=model, max_tokens=300, messages=HELLO,
        extra_headers=headers(test_id, **{"x-mock-usage": "prompt:12;completion:3"}),
    ) as stream:
        events = stream_events(stream)
        final = stream.get_final_message()
    kinds = [e.type for e in events]
    assert kinds[0] == "message_start" and kinds[-1] == "message_stop", kinds
    assert kinds[-2] == "message_delta", kinds
    assert kinds.count("content_block_start") == kinds.count("content_block_stop") == 1, kinds
    assert "".join(e.delta.text for e in events if e.type == "content_block_delta") == "echo: hello there"
    assert final.content[0].text == "echo: hello there" and final.stop_reason == "end_turn"
    assert (final.usage.input_tokens, final.usage.output_tokens) == (12, 3)
    assert only(mock.requests(test_id))["path"] == STREAM_PATH[model]


@pytest.mark.parametrize("model", BACKENDS)
def test_stream_thinking(gateway, mock, test_id, model):
    with client(gateway).messages.stream(
        model=model, max_tokens=4096, messages=HELLO, thinking={"type": "enabled", "budget_tokens": 2048},
        extra_headers=headers(test_id),
    ) as stream:
        final = stream.get_final_message()
    assert final.content[-1].text == "echo: hello there"
    thinking = [b for b in final.content if b.type == "thinking"]
    body = only(mock.requests(test_id))["body"]
    if model == "claude":
        assert body["thinking"] == {"type": "enabled", "budget_tokens": 2048}
        assert [(b.thinking, b.signature) for b in thinking] == [("The user wrote: hello there", ANTHROPIC_SIGNATURE)]
    elif model == "bedrock-claude":
        # 2048 reads as low effort: Claude on Bedrock gets Anthropic's budget for it.
        assert body["additionalModelRequestFields"] == {"thinking": {"type": "enabled", "budget_tokens": 1024}}
        assert [(b.thinking, b.signature) for b in thinking] == [("The user wrote: hello there", BEDROCK_SIGNATURE)]
    elif model == "gpt":
        assert body["reasoning_effort"] == "low" and thinking == []
    else:
        assert body["generationConfig"]["thinkingConfig"] == {"thinkingBudget": 1024}


# ---------------------------------------------------------------------------------------------
# Tools

@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize("model", BACKENDS)
def test_tool_round_trip_with_thinking(gateway, mock, test_id, model, stream):
    """The model calls a tool; the client sends the call (with its signed thinking) and the
    result back; the model answers from the result. Every provider checks what it gets back."""
    c = client(gateway)
    ask = dict(model=model, max_tokens=4096, tools=[ANTHROPIC_WEATHER_TOOL],
               thinking={"type": "enabled", "budget_tokens": 2048},
               messages=[{"role": "user", "content": "weather in Paris?"}])
    call = {"x-mock-tool-call": 'get_weather {"city": "Paris"}'}
    if stream:
        with c.messages.stream(**ask, extra_headers=headers(test_id, **call)) as s:
            first = s.get_final_message()
    else:
        first = c.messages.create(**ask, extra_headers=headers(test_id, **call))
    assert first.stop_reason == "tool_use"
    (tool_use,) = [b for b in first.content if b.type == "tool_use"]
    assert (tool_use.name, tool_use.input) == ("get_weather", {"city": "Paris"})
    signed = {"claude": ANTHROPIC_SIGNATURE, "bedrock-claude": BEDROCK_SIGNATURE}.get(model)
    assert [b.signature for b in first.content if b.type == "thinking"] == ([signed] if signed else [])

    history = ask["messages"] + [
        {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": tool_use.id, "content": "18C"}]},
    ]
    second = c.messages.create(**{**ask, "messages": history}, extra_headers=headers(test_id))
    assert second.content[-1].text == "tool result: 18C"
    assert second.stop_reason == "end_turn"
    if model == "bedrock-claude":
        # The signed reasoning went back first in its turn, so the loop kept thinking.
        body = mock.requests(test_id)[-1]["body"]
        assert body["messages"][1]["content"][0] == {
            "reasoningContent": {"reasoningText": {"text": "The user wrote: weather in Paris?", "signature": BEDROCK_SIGNATURE}}}
        assert "thinking" in body["additionalModelRequestFields"]


def test_server_tools_are_refused_or_dropped_where_translated(gateway, mock, test_id):
    web_search = {"type": "web_search_20250305", "name": "web_search", "max_uses": 2}
    ask = dict(max_tokens=50, messages=HELLO, tools=[web_search, ANTHROPIC_WEATHER_TOOL], extra_headers=headers(test_id, **NO_TOOL))
    with pytest.raises(anthropic.BadRequestError) as e:
        client(gateway).messages.create(model="gpt", **ask)
    assert e.value.status_code == 400
    assert e.value.body["error"]["type"] == "invalid_request_error"
    assert "Unsupported parameter `tools[0]`" in e.value.body["error"]["message"]
    assert mock.requests(test_id) == []
    m = client(gateway).messages.create(model="gpt-lenient", **ask)
    assert m.content[0].text == "echo: hello there"
    assert [t["function"]["name"] for t in only(mock.requests(test_id))["body"]["tools"]] == ["get_weather"]


# ---------------------------------------------------------------------------------------------
# Token counting

def test_count_tokens_native_on_anthropic_estimated_elsewhere(gateway, mock, test_id):
    c = client(gateway)
    counted = c.messages.count_tokens(model="claude", messages=HELLO, tools=[ANTHROPIC_WEATHER_TOOL],
                                      extra_headers=headers(test_id, **{"x-mock-usage": "prompt:321"}))
    assert counted.input_tokens == 321
    request = only(mock.requests(test_id))
    assert request["path"] == "/v1/messages/count_tokens"
    assert request["body"]["model"] == "claude-sonnet-4-5"
    other = uuid.uuid4().hex
    estimated = c.messages.count_tokens(model="gpt", messages=HELLO, extra_headers=headers(other))
    # "hello there": 11 bytes / 4 -> 3 tokens, + 4 for the message.
    assert estimated.input_tokens == 7
    assert estimated.model_extra == {"estimated": True}
    assert mock.requests(other) == []
    # A model that may fall back to a provider that cannot count is estimated too.
    assert c.messages.count_tokens(model="claude-then-gpt", messages=HELLO).model_extra == {"estimated": True}


# ---------------------------------------------------------------------------------------------
# Errors and keys

@pytest.mark.parametrize("case", [
    dict(model="claude", key="sk-sb-unknown", exc=anthropic.AuthenticationError, status=401, kind="authentication_error"),
    dict(model="gpt", key=KEYS["claude-only"], exc=anthropic.PermissionDeniedError, status=403, kind="permission_error"),
    dict(model="no-such-model", exc=anthropic.NotFoundError, status=404, kind="not_found_error"),
    dict(model="claude-429", exc=anthropic.RateLimitError, status=429, kind="rate_limit_error"),
    dict(model="claude", headers={"x-mock-status": "400"}, exc=anthropic.BadRequestError, status=400,
         kind="invalid_request_error"),
    dict(model="gpt", headers={"x-mock-status": "400"}, exc=anthropic.BadRequestError, status=400,
         kind="invalid_request_error"),
    dict(model="bedrock-claude", headers={"x-mock-status": "429"}, exc=anthropic.RateLimitError, status=429,
         kind="rate_limit_error"),
    dict(model="gemini", headers={"x-mock-status": "400"}, exc=anthropic.BadRequestError, status=400,
         kind="invalid_request_error"),
    dict(model="claude-overloaded", exc=anthropic.ServiceUnavailableError, status=503, kind="overloaded_error"),
    dict(model="gpt-503", exc=anthropic.ServiceUnavailableError, status=503, kind="overloaded_error"),
    dict(model="gemini", headers={"x-mock-status": "503"}, exc=anthropic.ServiceUnavailableError, status=503,
         kind="overloaded_error"),
], ids=["401", "403", "404-model", "429", "400-anthropic", "400-openai", "429-bedrock", "400-gemini",
        "529-anthropic", "503-openai", "503-gemini"])
@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_errors_raise_the_sdks_exceptions(gateway, case, stream):
    c = client(gateway, key=case.get("key", KEYS["full"]))
    with pytest.raises(case["exc"]) as e:
        ask = dict(model=case["model"], max_tokens=50, messages=HELLO, extra_headers=case.get("headers"))
        if stream:
            with c.messages.stream(**ask) as s:
                s.get_final_message()
        else:
            c.messages.create(**ask)
    assert e.value.status_code == case["status"]
    assert e.value.body["type"] == "error"
    assert e.value.body["error"]["type"] == case["kind"]
    assert e.value.body["error"]["message"]
    assert isinstance(e.value, anthropic.InternalServerError) == (case["status"] >= 500)


@pytest.mark.parametrize("model,fault", [
    ("claude", "midstream_error"), ("claude", "cut"), ("gpt", "cut"), ("bedrock-claude", "cut"),
])
def test_broken_streams_end_with_an_error_event(gateway, model, fault):
    with pytest.raises(anthropic.APIStatusError) as e:
        with client(gateway).messages.stream(model=model, max_tokens=50, messages=HELLO,
                                            extra_headers={f"x-mock-{fault}": "1"}) as s:
            s.get_final_message()
    assert e.value.body["type"] == "error"
    assert e.value.body["error"]["type"] in ("overloaded_error", "api_error")


def test_virtual_keys_in_either_header(gateway, test_id):
    for bearer in (False, True):
        m = client(gateway, key=KEYS["claude-only"], bearer=bearer).messages.create(
            model="claude", max_tokens=20, messages=HELLO, extra_headers=headers(test_id))
        assert m.content[0].text == "echo: hello there"
    with pytest.raises(anthropic.AuthenticationError):
        client(gateway, key="sk-sb-unknown", bearer=True).messages.create(model="claude", max_tokens=20, messages=HELLO)


def test_metrics_carry_the_messages_api(gateway):
    series = ("switchboard_requests", frozenset({
        "gen_ai_operation_name": "chat", "switchboard_api": "anthropic_messages", "gen_ai_request_model": "gemini",
        "gen_ai_provider_name": "gemini", "switchboard_deployment": "gemini_0", "http_status_class": "2xx"}.items()))
    before = gateway.flushed(scrape).get(series, 0)
    for _ in range(3):
        client(gateway).messages.create(model="gemini", max_tokens=20, messages=HELLO)
    assert gateway.settled(scrape, {series: before + 3}).get(series) == before + 3


# ---------------------------------------------------------------------------------------------
# Fallback across formats

@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize("model,paths", [
    ("claude-429-then-gpt", ["/v1/messages", "/v1/chat/completions"]),
    ("gpt-503-then-claude", ["/v1/chat/completions", "/v1/messages"]),
])
def test_fallback_across_formats(gateway, mock, test_id, model, paths, stream):
    text = ask(gateway, model, "hello there", stream, test_id)
    assert text == "echo: hello there"
    requests = mock.requests(test_id)
    assert [r["path"] for r in requests] == paths
    first_key = requests[0]["headers"].get("x-api-key") or requests[0]["headers"]["authorization"]
    assert first_key in ("sk-ant-429", "Bearer sk-openai-503")
    # Each attempt gets its own provider's request: the second carries nothing of the first.
    if paths[1] == "/v1/messages":
        assert requests[1]["body"]["model"] == "claude-sonnet-4-5" and requests[1]["body"]["messages"] == [
            {"role": "user", "content": "hello there"}]
        assert requests[1]["headers"]["x-api-key"] == "sk-ant-upstream"
    else:
        assert requests[1]["body"]["model"] == "gpt-4o-mini"
        assert requests[1]["headers"]["authorization"] == "Bearer sk-openai"
        assert "x-api-key" not in requests[1]["headers"]


def ask(gateway, model, prompt, stream, test_id=None) -> str:
    """One question, answered as JSON or as a stream; the answer's text."""
    c = client(gateway)
    extra = headers(test_id) if test_id else None
    request = dict(model=model, max_tokens=100, messages=[{"role": "user", "content": prompt}], extra_headers=extra)
    if stream:
        with c.messages.stream(**request) as s:
            texts = list(s.text_stream)
            final = s.get_final_message()
        assert final.stop_reason == "end_turn"
        return "".join(texts)
    m = c.messages.create(**request)
    assert m.stop_reason == "end_turn"
    return "".join(b.text for b in m.content if b.type == "text")


def test_concurrent_fallbacks_json_and_streams(gateway):
    """100 requests, 20 at a time, over both fallback directions and plain models, JSON and
    streams: every client gets its own answer."""
    models = ["claude-429-then-gpt", "gpt-503-then-claude", "claude", "gpt", "bedrock-claude"]
    jobs = [(models[i % len(models)], i % 2 == 1, f"request number {i}") for i in range(100)]
    with ThreadPoolExecutor(max_workers=20) as pool:
        answers = list(pool.map(lambda job: ask(gateway, job[0], job[2], job[1]), jobs))
    for (model, stream, prompt), answer in zip(jobs, answers):
        assert answer == f"echo: {prompt}", (model, stream)


# ---------------------------------------------------------------------------------------------
# Claude Code

@pytest.mark.parametrize("model", ["claude", "gpt"])
def test_claude_code_text_turn(gateway, mock, test_id, model):
    run = run_claude(gateway.url, model, "say hello", api_key=KEYS["full"],
                     headers={"x-test-id": test_id, "x-mock-reply": "hello through the gateway"})
    assert run.exit_code == 0, run.describe()
    assert run.answer == "hello through the gateway"
    posts = [r for r in mock.requests(test_id) if r["method"] == "POST"]
    assert posts and all(r["path"] == UPSTREAM_PATH[model] for r in posts), posts
    if model == "gpt":
        # Claude Code's adaptive thinking and `effort: high` ask nothing of a model that may
        # not reason; its context editing and cache hints stay behind.
        body = posts[0]["body"]
        assert not {"reasoning_effort", "thinking", "output_config", "context_management"} & set(body), body
        assert body["stream"] is True and body["max_completion_tokens"] >= 1024


@pytest.mark.parametrize("model", ["claude", "gpt"])
def test_claude_code_tool_turn(gateway, mock, test_id, model):
    run = run_claude(gateway.url, model, "run the marker command", api_key=KEYS["full"], headers={
        "x-test-id": test_id,
        "x-mock-tool-call": "Bash " + json.dumps({"command": MARKER_COMMAND, "description": "Print a marker"}),
    })
    assert run.exit_code == 0, run.describe()
    assert run.answer == f"tool result: {MARKER_OUTPUT}"
    assert run.result["num_turns"] == 2
    posts = [r for r in mock.requests(test_id) if r["method"] == "POST"]
    assert len(posts) == 2, posts
    last = posts[-1]["body"]
    if model == "gpt":
        tool = [m for m in last["messages"] if m["role"] == "tool"]
        assert len(tool) == 1 and MARKER_OUTPUT in json.dumps(tool[0]["content"])
    else:
        call_turn = last["messages"][-2]
        assert [b["type"] for b in call_turn["content"]] == ["thinking", "tool_use"]
