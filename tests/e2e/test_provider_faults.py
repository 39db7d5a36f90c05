"""Broken providers, end to end: every provider kind, JSON and stream, under each of the mock's
faults (`bad_event`, `no_content`, `echo_key`, `empty`, `malformed`, `cut`, `huge`, `bad_crc`,
`status=...`), through the real Envoy and the filter, with 20 requests in flight and 100 per case.

Whatever the provider does, the client gets an OpenAI-shaped answer: a chat completion, an
error JSON with the status the fault maps to, or a stream of chat chunks that ends with
`[DONE]` or with one error event. Never a broken event passed on, never a credential echoed.
Raw HTTP (httpx), so that every byte the client gets is checked.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass

import httpx
import pytest

from common import HELLO, WEATHER_TOOL, assert_openai_error
from harness import MOCK_AWS_KEY_ID, MOCK_AWS_SECRET

KEYS = {
    "openai": "sk-faults-openai-0123456789abcdef",
    "azure": "azurefaults0123456789abcdef0123",
    "anthropic": "sk-ant-faults-0123456789abcdef",
    "gemini": "AIzaFaultsGemini0123456789abcdef",
    "vertex": "ya29.faults-vertex-token-0123456789",
    "cohere": "co-faults-0123456789abcdef",
}

CONFIG = f"""
providers:
  openai: {{kind: openai, base_url: "${{MOCK}}/v1", api_key: {KEYS["openai"]}}}
  azure: {{kind: azure, base_url: "${{MOCK}}", api_key: {KEYS["azure"]}}}
  anthropic: {{kind: anthropic, base_url: "${{MOCK}}", api_key: {KEYS["anthropic"]}}}
  gemini: {{kind: gemini, base_url: "${{MOCK}}", api_key: {KEYS["gemini"]}}}
  vertex: {{kind: vertex, base_url: "${{MOCK}}", api_key: {KEYS["vertex"]}, project: faults, location: us-east5}}
  bedrock:
    kind: bedrock
    region: us-east-1
    base_url: "${{MOCK}}"
    access_key_id: {MOCK_AWS_KEY_ID}
    secret_access_key: {MOCK_AWS_SECRET}
  cohere: {{kind: cohere, base_url: "${{MOCK}}", api_key: {KEYS["cohere"]}}}
models:
  - {{name: openai, deployments: [{{provider: openai, model: gpt-4o-mini}}]}}
  - {{name: azure, deployments: [{{provider: azure, model: gpt-deployment}}]}}
  - {{name: anthropic, deployments: [{{provider: anthropic, model: claude-sonnet-4-5}}]}}
  - {{name: gemini, deployments: [{{provider: gemini, model: gemini-2.5-flash}}]}}
  - {{name: vertex-gemini, deployments: [{{provider: vertex, model: gemini-2.5-flash}}]}}
  - {{name: vertex-claude, deployments: [{{provider: vertex, model: claude-sonnet-4-5}}]}}
  - {{name: bedrock, deployments: [{{provider: bedrock, model: "anthropic.claude-3-5-sonnet-20240620-v1:0"}}]}}
  - {{name: cohere, deployments: [{{provider: cohere, model: command-a-03-2025}}]}}
"""

KINDS = ["openai", "azure", "anthropic", "gemini", "vertex-gemini", "vertex-claude", "bedrock", "cohere"]
# What each kind's requests are signed or authorised with: none of it may reach a client.
SECRETS = {
    "openai": [KEYS["openai"]],
    "azure": [KEYS["azure"]],
    "anthropic": [KEYS["anthropic"]],
    "gemini": [KEYS["gemini"]],
    "vertex-gemini": [KEYS["vertex"]],
    "vertex-claude": [KEYS["vertex"]],
    "bedrock": [MOCK_AWS_KEY_ID, MOCK_AWS_SECRET],
    "cohere": [KEYS["cohere"]],
}
# Providers whose API allows an empty answer: Anthropic documents empty `end_turn` turns
# (Bedrock's Converse passes Claude's on), and OpenAI's stream may finish without content.
EMPTY_ANSWER_ALLOWED = {
    ("anthropic", "json"), ("anthropic", "stream"),
    ("vertex-claude", "json"), ("vertex-claude", "stream"),
    ("bedrock", "stream"),
    ("openai", "stream"), ("azure", "stream"),
}

REQUESTS_PER_CASE = 100
IN_FLIGHT = 20
HUGE = 300_000
# One event over the gateway's 4 MiB limit: Gemini sends a function call whole.
OVERSIZED = 4_500_000


@dataclass(frozen=True)
class Expected:
    """What every answer of a case must be."""

    status: int
    # `None`: a success; else the error code a JSON error or the final error event carries
    # (`...` when any code will do).
    code: object = None
    # A success: its text is empty (an allowed empty answer) / at least this long.
    empty: bool = False
    min_length: int = 0


def expected(kind: str, mode: str, fault: str) -> Expected:
    stream = mode == "stream"
    if fault == "echo_key":
        return Expected(401, ...)
    if fault.startswith("status="):
        return Expected(int(fault.split("=")[1]), ...)
    if fault == "huge":
        return Expected(200, min_length=HUGE)
    if fault == "bad_event" and not stream:
        return Expected(200)  # a JSON answer has no events to break
    if fault == "no_content" and (kind, mode) in EMPTY_ANSWER_ALLOWED:
        return Expected(200, empty=True)
    if fault == "empty" and stream:
        # Nothing before the end: the stream's headers were held for its first event, so it
        # answers as an error the router can fall back from.
        return Expected(502, "stream_interrupted")
    if fault == "cut" and stream:
        return Expected(200, "stream_interrupted")
    if fault == "oversized":
        return Expected(200, ...)  # "larger than 4 MiB", without a code
    # bad_event, bad_crc, malformed, no_content and a broken JSON body.
    return Expected(200 if stream else 502, "invalid_upstream_response")


FAULTS = ["bad_event", "no_content", "echo_key", "empty", "malformed", "cut", "huge", "status=429", "status=503"]
CASES = [(kind, mode, fault) for kind in KINDS for mode in ("json", "stream") for fault in FAULTS]
CASES += [("bedrock", "stream", "bad_crc")]
CASES += [(kind, "stream", "oversized") for kind in ("gemini", "vertex-gemini")]


def directives(fault: str) -> dict[str, str]:
    if fault == "huge":
        return {"x-mock-huge": str(HUGE)}
    if fault == "oversized":
        return {"x-mock-huge": str(OVERSIZED), "x-mock-tool-call": "get_weather"}
    name, _, value = fault.partition("=")
    return {f"x-mock-{name}": value or "1"}


def check_error(body: dict, expect: Expected, where: str) -> None:
    error = body.get("error")
    assert isinstance(error, dict), f"{where}: not an OpenAI error: {body}"
    assert_openai_error(error, where)
    assert isinstance(error["type"], str) and error["type"], where
    if expect.code is not ...:
        assert error["code"] == expect.code, f"{where}: {error}"


def check_json(status: int, text: str, expect: Expected, where: str) -> None:
    assert status == expect.status, f"{where}: {status} {text[:300]}"
    body = json.loads(text)
    if expect.code is not None:
        check_error(body, expect, where)
        return
    assert body["object"] == "chat.completion", where
    message = body["choices"][0]["message"]
    assert message["role"] == "assistant", where
    content = message["content"] or ""
    assert body["choices"][0]["finish_reason"] in ("stop", "length", "tool_calls", "content_filter"), where
    if expect.empty:
        assert content == "" and not message.get("tool_calls"), f"{where}: {message}"
    else:
        assert content.startswith("echo:"), f"{where}: {content[:100]}"
        assert len(content) >= expect.min_length, where


def check_stream(status: int, text: str, expect: Expected, where: str) -> None:
    if status == 502 and expect.status == 200 and expect.code is not None:
        # The fault struck before the stream's first event (some translators write nothing
        # until content comes): its headers were still held, so it answers as a 502 the router
        # can fall back from, with the error the stream would have ended with.
        body = json.loads(text)
        check_error(body, expect, where)
        assert body["error"]["message"].startswith("the provider's stream failed before its first event"), where
        return
    if status != 200:
        # Refused before the stream started: an error JSON.
        check_json(status, text, expect, where)
        return
    assert expect.status == 200, f"{where}: {status} {text[:300]}"
    assert text.endswith("\n\n"), f"{where}: {text[-200:]!r}"
    events = text[:-2].split("\n\n")
    for event in events:
        assert event.startswith("data: ") and "\n" not in event, f"{where}: {event[:200]!r}"
    payloads = [e[len("data: "):] for e in events]
    last = payloads.pop()
    chunks = [json.loads(p) for p in payloads]  # every event before the last is whole JSON
    for chunk in chunks:
        assert chunk["object"] == "chat.completion.chunk" and isinstance(chunk["choices"], list), \
            f"{where}: {chunk}"
    if expect.code is None:
        assert last == "[DONE]", f"{where}: ended with {last[:300]}"
        content = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
        finishes = [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]]
        assert finishes[-1] in ("stop", "length", "tool_calls", "content_filter"), f"{where}: {finishes}"
        if expect.empty:
            assert content == "", where
        else:
            assert content.startswith("echo:") and len(content) >= expect.min_length, where
        return
    assert "[DONE]" not in payloads, where
    check_error(json.loads(last), expect, where)


async def one(client: httpx.AsyncClient, url: str, kind: str, mode: str, fault: str) -> tuple[int, str]:
    body = {"model": kind, "messages": HELLO, "stream": mode == "stream"}
    if fault == "oversized":
        body["tools"] = [WEATHER_TOOL]
    response = await client.post(url, json=body, headers={"authorization": "Bearer sk-client", **directives(fault)})
    return response.status_code, response.text


async def run_case(url: str, kind: str, mode: str, fault: str) -> list[tuple[int, str]]:
    limit = asyncio.Semaphore(IN_FLIGHT)
    limits = httpx.Limits(max_connections=IN_FLIGHT, max_keepalive_connections=IN_FLIGHT)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:
        async def bounded():
            async with limit:
                return await one(client, url, kind, mode, fault)

        return await asyncio.gather(*(bounded() for _ in range(REQUESTS_PER_CASE)))


PARAMS = [pytest.param(kind, mode, fault, id=f"{kind}-{mode}-{fault}") for kind, mode, fault in CASES]


@pytest.mark.parametrize("kind,mode,fault", PARAMS)
def test_every_answer_is_openai_shaped(gateway, kind, mode, fault):
    expect = expected(kind, mode, fault)
    answers = asyncio.run(run_case(f"{gateway.base_url}/chat/completions", kind, mode, fault))
    assert len(answers) == REQUESTS_PER_CASE
    for i, (status, text) in enumerate(answers):
        where = f"{kind} {mode} {fault} #{i}"
        for secret in SECRETS[kind]:
            assert secret not in text, f"{where}: a credential in the answer: {text[:300]}"
            assert secret[:8] not in text, f"{where}: part of a credential in the answer: {text[:300]}"
        if mode == "stream":
            check_stream(status, text, expect, where)
        else:
            check_json(status, text, expect, where)
    assert gateway.alive()
