"""Conformance: what every provider kind must do through the gateway, asked with the official
`openai` SDK. One gateway serves every kind the mock speaks (OpenAI, Azure, an OpenAI-compatible
preset, Anthropic, Bedrock, Gemini, Gemini and Claude on Vertex AI, Cohere), each answering in its
own wire format; every test runs for each kind:

- chat as JSON and as a stream (text, finish, usage when asked), usage details;
- a tool call (JSON and stream) and its result sent back;
- the provider's errors as the SDK's exception classes, a client error never fallen back from;
- broken streams and answers: an error event or a 502, never a clean end;
- fallback both ways: this kind failing and another answering, every other kind failing and
  this one answering;
- the client's credentials never reaching the provider.

Each kind's row says what its requests must look like at the mock (path, credentials, body):
every attempt, direct or fallen back to, is checked against it. What is one provider's own
(parameter translation, reasoning, embeddings, its error messages) stays in its own file.
"""

from __future__ import annotations

import base64
import json
import re
import uuid
from dataclasses import dataclass
from typing import Callable

import openai
import pytest

from common import (ANTHROPIC_WEATHER_TOOL, BRIEF_HELLO, BRIEF_HELLO_USAGE, WEATHER_TOOL,
                    assert_clean_stream, assert_openai_error, extra_field, only, streamed_text)
from harness import MOCK_AWS_KEY_ID, MOCK_AWS_SECRET


# ---------------------------------------------------------------------------------------------
# What each wire format's requests look like

TEMPERATURE = 0.2
ASK_WEATHER = "weather in Paris?"
CALL_ARGUMENTS = {"city": "mock"}  # the mock's placeholder arguments for the weather tool
TOOL_OUTPUT = "sunny"


@dataclass(frozen=True)
class Wire:
    """A wire format: what a chat request (BRIEF_HELLO at TEMPERATURE) and the weather tool
    become in it, and how a tool call and its result go back."""

    # (kind, stream) -> the request body, exactly.
    chat_body: Callable[["Kind", bool], dict]
    # The weather tool as offered: the body's tool members (tools, tool choice), exactly.
    tools: dict
    # (the assistant message as the client sent it back, the call's id) -> the conversation
    # member of the body and its value for [user asks, assistant calls, tool answers].
    history: Callable[[dict, str], tuple[str, list]]
    # The status a client gets for the provider's 500.
    status_500: int = 500
    # Whether the provider reports reasoning tokens apart.
    reports_reasoning: bool = False


def openai_body(kind, stream):
    body = {"model": kind.model, "messages": BRIEF_HELLO, "temperature": TEMPERATURE}
    # The gateway asks for usage on every stream so that it can account for it.
    return {**body, "stream": True, "stream_options": {"include_usage": True}} if stream else body


def anthropic_body(kind, stream):
    body = {"max_tokens": 4096, "system": [{"type": "text", "text": "be brief"}],
            "messages": [{"role": "user", "content": [{"type": "text", "text": "hello there"}]}],
            "temperature": TEMPERATURE}
    # Claude on Vertex AI names its model in the path, and the API version in the body.
    body |= {"anthropic_version": "vertex-2023-10-16"} if kind.provider == "vertex" else {"model": kind.model}
    return {**body, "stream": True} if stream else body


def bedrock_body(kind, stream):
    # Converse and ConverseStream differ in the path alone.
    return {"system": [{"text": "be brief"}], "messages": [{"role": "user", "content": [{"text": "hello there"}]}],
            "inferenceConfig": {"temperature": TEMPERATURE}}


def gemini_body(kind, stream):
    return {"contents": [{"role": "user", "parts": [{"text": "hello there"}]}],
            "systemInstruction": {"parts": [{"text": "be brief"}]},
            "generationConfig": {"temperature": TEMPERATURE}}


def cohere_body(kind, stream):
    # Cohere reports usage on every stream: nothing to ask for.
    body = {"model": kind.model, "messages": BRIEF_HELLO, "temperature": TEMPERATURE}
    return {**body, "stream": True} if stream else body


def openai_history(assistant, call_id):
    return "messages", [{"role": "user", "content": ASK_WEATHER}, assistant,
                        {"role": "tool", "tool_call_id": call_id, "content": TOOL_OUTPUT}]


def anthropic_history(assistant, call_id):
    return "messages", [
        {"role": "user", "content": [{"type": "text", "text": ASK_WEATHER}]},
        {"role": "assistant", "content": [
            {"type": "tool_use", "id": call_id, "name": "get_weather", "input": CALL_ARGUMENTS}]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": call_id, "content": [{"type": "text", "text": TOOL_OUTPUT}]}]},
    ]


def bedrock_history(assistant, call_id):
    return "messages", [
        {"role": "user", "content": [{"text": ASK_WEATHER}]},
        {"role": "assistant", "content": [
            {"toolUse": {"toolUseId": call_id, "name": "get_weather", "input": CALL_ARGUMENTS}}]},
        {"role": "user", "content": [{"toolResult": {"toolUseId": call_id, "content": [{"text": TOOL_OUTPUT}]}}]},
    ]


def mock_thought_signature(name: str, args: dict) -> str:
    """The thought signature the mock issues for a Gemini function call (tests/mock/src/gemini.rs)."""
    payload = f"mock-thought:{name}:{json.dumps(args, separators=(',', ':'))}".encode()
    return base64.b64encode(b"\xfb\xff\xbf" + payload).decode()


def gemini_history(assistant, call_id):
    # The call's thought signature travelled in its id, and goes back to Gemini with the call.
    return "contents", [
        {"role": "user", "parts": [{"text": ASK_WEATHER}]},
        {"role": "model", "parts": [{"functionCall": {"name": "get_weather", "args": CALL_ARGUMENTS},
                                     "thoughtSignature": mock_thought_signature("get_weather", CALL_ARGUMENTS)}]},
        {"role": "user", "parts": [{"functionResponse": {"name": "get_weather", "response": {"output": TOOL_OUTPUT}}}]},
    ]


def cohere_history(assistant, call_id):
    # The tool plan came to the client as reasoning_content, and goes back as Cohere's.
    return "messages", [
        {"role": "user", "content": ASK_WEATHER},
        {"role": "assistant", "tool_calls": assistant["tool_calls"], "tool_plan": assistant["reasoning_content"]},
        {"role": "tool", "tool_call_id": call_id, "content": TOOL_OUTPUT},
    ]


OPENAI = Wire(openai_body, {"tools": [WEATHER_TOOL]}, openai_history, reports_reasoning=True)
ANTHROPIC = Wire(anthropic_body, {"tools": [ANTHROPIC_WEATHER_TOOL]}, anthropic_history)
BEDROCK = Wire(bedrock_body, {"toolConfig": {"tools": [{"toolSpec": {
    "name": "get_weather", "description": "Weather for a city",
    "inputSchema": {"json": WEATHER_TOOL["function"]["parameters"]}}}]}}, bedrock_history, status_500=502)
GEMINI = Wire(gemini_body, {"tools": [{"functionDeclarations": [{
    "name": "get_weather", "description": "Weather for a city",
    "parametersJsonSchema": WEATHER_TOOL["function"]["parameters"]}]}]}, gemini_history,
    status_500=502, reports_reasoning=True)
COHERE = Wire(cohere_body, {"tools": [WEATHER_TOOL]}, cohere_history, status_500=502)
# The body members that carry tools or the tool choice, in any format.
TOOL_MEMBERS = {"tools", "tool_choice", "toolConfig"}


# ---------------------------------------------------------------------------------------------
# The kinds

# A provider section of each kind, at the mock under `{base}` (a failing copy puts the mock's
# `/mock/status=N` prefix there); the credentials come from ENV but for one literal key.
PROVIDERS = {
    "openai": 'kind: openai, base_url: "{base}/v1", api_key: {{env: SB_TEST_OPENAI_KEY}}',
    "azure": 'kind: azure, base_url: "{base}", api_key: {{env: SB_TEST_AZURE_KEY}}, api_version: "2024-10-21"',
    "groq": 'kind: groq, base_url: "{base}/openai/v1", api_key: gsk-literal',
    "anthropic": ('kind: anthropic, base_url: "{base}", api_key: {{env: SB_TEST_ANTHROPIC_KEY}}, '
                  'beta: [prompt-caching-2024-07-31], headers: {{X-Team: e2e}}'),
    "bedrock": ('kind: bedrock, region: us-east-1, base_url: "{base}", access_key_id: {{env: SB_TEST_AWS_KEY_ID}}, '
                'secret_access_key: {{env: SB_TEST_AWS_SECRET}}'),
    "gemini": 'kind: gemini, base_url: "{base}", api_key: {{env: SB_TEST_GEMINI_KEY}}',
    "vertex": ('kind: vertex, base_url: "{base}", api_key: {{env: SB_TEST_VERTEX_TOKEN}}, '
               'project: {{env: SB_TEST_GCP_PROJECT}}, location: us-central1'),
    "cohere": 'kind: cohere, base_url: "{base}", api_key: {{env: SB_TEST_COHERE_KEY}}',
}

ENV = {
    "SB_TEST_OPENAI_KEY": "sk-openai-from-env",
    "SB_TEST_AZURE_KEY": "azure-key-from-env",
    "SB_TEST_ANTHROPIC_KEY": "sk-ant-from-env",
    "SB_TEST_AWS_KEY_ID": MOCK_AWS_KEY_ID,
    "SB_TEST_AWS_SECRET": MOCK_AWS_SECRET,
    "SB_TEST_GEMINI_KEY": "gemini-key-from-env",
    "SB_TEST_VERTEX_TOKEN": "ya29.vertex-token-from-env",
    "SB_TEST_GCP_PROJECT": "proj-from-env",
    "SB_TEST_COHERE_KEY": "co-key-from-env",
}

VERTEX = "/v1/projects/proj-from-env/locations/us-central1/publishers"
BEDROCK_CLAUDE = "anthropic.claude-3-5-sonnet-20240620-v1:0"
BEDROCK_PATH = "/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0"
SIGV4 = re.compile(rf"AWS4-HMAC-SHA256 Credential={MOCK_AWS_KEY_ID}/\d{{8}}/us-east-1/bedrock/aws4_request, "
                   r"SignedHeaders=host;x-amz-date, Signature=[0-9a-f]{64}")


@dataclass(frozen=True)
class Kind:
    """One row of the matrix: a provider kind (its public model has the row's name)."""

    name: str
    provider: str
    model: str
    wire: Wire
    path: str
    stream_path: str
    # The headers its requests carry to authenticate and identify themselves: a value, or a
    # pattern it must match.
    headers: dict
    # What its answers' ids start with, and what its tool calls' ids are (a pattern).
    id_prefix: str
    tool_call_id: str = "call_mock_1"
    # The status it answers when overloaded (a fallback's trigger as much as 429).
    overload: int = 503
    # Which kind answers when this one fails.
    partner: str = "openai"


KINDS = [
    Kind("openai", "openai", "gpt-4o-mini-2024-07-18", OPENAI, "/v1/chat/completions", "/v1/chat/completions",
         {"authorization": "Bearer sk-openai-from-env"}, "chatcmpl-mock-", partner="anthropic"),
    Kind("azure", "azure", "my-deployment", OPENAI,
         "/openai/deployments/my-deployment/chat/completions?api-version=2024-10-21",
         "/openai/deployments/my-deployment/chat/completions?api-version=2024-10-21",
         {"api-key": "azure-key-from-env"}, "chatcmpl-mock-"),
    Kind("groq", "groq", "llama-3.1-8b-instant", OPENAI, "/openai/v1/chat/completions", "/openai/v1/chat/completions",
         {"authorization": "Bearer gsk-literal"}, "chatcmpl-mock-"),
    Kind("anthropic", "anthropic", "claude-sonnet-4-5", ANTHROPIC, "/v1/messages", "/v1/messages",
         {"x-api-key": "sk-ant-from-env", "anthropic-version": "2023-06-01",
          "anthropic-beta": "prompt-caching-2024-07-31", "x-team": "e2e"},
         "msg_mock_", tool_call_id="toolu_mock_1", overload=529),
    Kind("bedrock", "bedrock", BEDROCK_CLAUDE, BEDROCK, f"{BEDROCK_PATH}/converse", f"{BEDROCK_PATH}/converse-stream",
         {"authorization": SIGV4, "x-amz-date": re.compile(r"\d{8}T\d{6}Z")}, "chatcmpl-"),
    Kind("gemini", "gemini", "gemini-2.5-flash", GEMINI, "/v1beta/models/gemini-2.5-flash:generateContent",
         "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse",
         {"x-goog-api-key": "gemini-key-from-env"}, "mock-gemini-", tool_call_id=r"call_\w+-0_sig_[-\w]+"),
    Kind("vertex-gemini", "vertex", "gemini-2.5-pro", GEMINI, f"{VERTEX}/google/models/gemini-2.5-pro:generateContent",
         f"{VERTEX}/google/models/gemini-2.5-pro:streamGenerateContent?alt=sse",
         {"authorization": "Bearer ya29.vertex-token-from-env"}, "mock-gemini-",
         tool_call_id=r"call_\w+-0_sig_[-\w]+"),
    Kind("vertex-claude", "vertex", "claude-sonnet-4-5@20250929", ANTHROPIC,
         f"{VERTEX}/anthropic/models/claude-sonnet-4-5@20250929:rawPredict",
         f"{VERTEX}/anthropic/models/claude-sonnet-4-5@20250929:streamRawPredict",
         {"authorization": "Bearer ya29.vertex-token-from-env"}, "msg_mock_", tool_call_id="toolu_mock_1",
         overload=529),
    Kind("cohere", "cohere", "command-a-03-2025", COHERE, "/v2/chat", "/v2/chat",
         {"authorization": "Bearer co-key-from-env"}, "mock-cohere-"),
]
BY_NAME = {k.name: k for k in KINDS}
# Every header some kind authenticates with: a request carries its own kind's alone.
CREDENTIAL_HEADERS = {name for k in KINDS for name in k.headers}


def failing(kind: Kind, status: int) -> str:
    """The provider section of `kind` whose every answer is `status`."""
    return f"{kind.provider}-{status}"


def fallback_model(failing_kind: Kind, status: int, answering: Kind) -> str:
    """The public model whose first deployment is `failing_kind` answering `status`, and whose
    fallback is `answering`."""
    return f"{failing_kind.name}-{status}-then-{answering.name}"


def render_config() -> str:
    statuses = {p: {429} for p in PROVIDERS}
    for k in KINDS:
        statuses[k.provider].add(k.overload)
    providers = []
    for name, section in PROVIDERS.items():
        providers.append(f"  {name}: {{{section.format(base='${MOCK}')}}}")
        providers += [f"  {name}-{s}: {{{section.format(base='${MOCK}/mock/status=' + str(s))}}}"
                      for s in sorted(statuses[name])]
    models = [f'  - {{name: {k.name}, deployments: [{{provider: {k.provider}, model: "{k.model}"}}]}}' for k in KINDS]
    pairs = [(k, 429, BY_NAME[k.partner]) for k in KINDS]
    pairs += [(other, other.overload, k) for k in KINDS for other in KINDS if other is not k]
    models += [f'  - {{name: {fallback_model(first, status, then)}, '
               f'deployments: [{{provider: {failing(first, status)}, model: "{first.model}"}}], '
               f'fallbacks: [{then.name}]}}' for first, status, then in pairs]
    return "\n".join(["providers:", *providers, "models:", *models]) + "\n"


CONFIG = render_config()


def each_kind(*values, ids=None):
    """pytest params: every kind, or every kind with each of `values` (ids `<kind>-<id>`)."""
    if not values:
        return [pytest.param(k, id=k.name) for k in KINDS]
    ids = ids or [str(v) for v in values]
    return [pytest.param(k, v, id=f"{k.name}-{i}") for k in KINDS for v, i in zip(values, ids)]


# Every kind, answering as JSON and as a stream.
KIND_MODES = each_kind(False, True, ids=["json", "stream"])


# ---------------------------------------------------------------------------------------------
# Checks

def assert_sent_by(kind: Kind, sent: dict, stream: bool) -> None:
    """`sent` went to `kind`'s endpoint with its credentials: none of another kind's, no key of
    the client's, no AWS secret (it signs, it is never sent), none of the gateway's own headers
    but its request tag."""
    headers = sent["headers"]
    assert sent["path"] == (kind.stream_path if stream else kind.path), sent["path"]
    for name, want in kind.headers.items():
        value = headers.get(name, "")
        assert (want.fullmatch(value) if isinstance(want, re.Pattern) else value == want), (name, value)
    foreign = sorted(h for h in headers
                     if h not in kind.headers and (h in CREDENTIAL_HEADERS or h.startswith("x-amz-")))
    assert not foreign, f"credential headers of other kinds reached {kind.name}: {foreign}"
    assert "sk-client" not in json.dumps(headers), "the client's key must not reach the provider"
    assert MOCK_AWS_SECRET not in json.dumps(sent), "the AWS secret must never be sent"
    leaked = [h for h in headers if h.startswith("x-switchboard-") and h != "x-switchboard-request"]
    assert not leaked, leaked


def assert_request_of(kind: Kind, sent: dict, stream: bool) -> None:
    """`sent` is the request `kind` must get for the chat request: its endpoint, credentials and
    body, exactly."""
    assert_sent_by(kind, sent, stream)
    assert sent["body"] == kind.wire.chat_body(kind, stream)


def chat(gateway, model: str, stream: bool, test_id: str | None = None, headers: dict | None = None, **kwargs):
    """The chat request (BRIEF_HELLO at TEMPERATURE): the completion, or the stream's chunks."""
    headers = {**({"x-test-id": test_id} if test_id else {}), **(headers or {})}
    client = gateway.client()
    if stream:
        return list(client.chat.completions.create(model=model, messages=BRIEF_HELLO, temperature=TEMPERATURE,
                                                   stream=True, extra_headers=headers, **kwargs))
    return client.chat.completions.create(model=model, messages=BRIEF_HELLO, temperature=TEMPERATURE,
                                          extra_headers=headers, **kwargs)


def assert_hello_answered(kind: Kind, answer, stream: bool) -> None:
    """The answer to the chat request, by `kind`: a completion with its usage, or the chunks of
    a stream that did not ask for usage."""
    if stream:
        assert_clean_stream(answer)
        assert streamed_text(answer) == "echo: hello there"
        assert [c.choices[0].finish_reason for c in answer if c.choices][-1] == "stop"
        assert answer[0].id.startswith(kind.id_prefix) and {c.model for c in answer} == {kind.model}
        assert all(c.usage is None for c in answer), "usage chunk shown to a client that did not ask"
        return
    assert answer.object == "chat.completion" and answer.id.startswith(kind.id_prefix), answer.id
    assert answer.model == kind.model and answer.created > 0
    assert answer.choices[0].message.role == "assistant"
    assert answer.choices[0].message.content == "echo: hello there"
    assert answer.choices[0].finish_reason == "stop"
    usage = answer.usage
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == BRIEF_HELLO_USAGE


# ---------------------------------------------------------------------------------------------
# Chat

@pytest.mark.parametrize("kind", each_kind())
def test_chat(gateway, mock, test_id, kind):
    assert_hello_answered(kind, chat(gateway, kind.name, False, test_id), False)
    assert_request_of(kind, only(mock.requests(test_id)), stream=False)


@pytest.mark.parametrize("kind,include_usage", each_kind(False, True, ids=["plain", "with-usage"]))
def test_stream(gateway, mock, test_id, kind, include_usage):
    options = {"stream_options": {"include_usage": True}} if include_usage else {}
    chunks = chat(gateway, kind.name, True, test_id, **options)
    if include_usage:
        *chunks, last = chunks
        assert last.choices == [] and last.id == chunks[0].id
        assert (last.usage.prompt_tokens, last.usage.completion_tokens, last.usage.total_tokens) == BRIEF_HELLO_USAGE
    assert_hello_answered(kind, chunks, True)
    assert_request_of(kind, only(mock.requests(test_id)), stream=True)


@pytest.mark.parametrize("kind,stream", KIND_MODES)
def test_usage_details(gateway, kind, stream):
    """Cache reads are part of the prompt, counted once; reasoning is part of the completion."""
    usage = {"x-mock-usage": "prompt:100;completion:30;cached:40;reasoning:12"}
    options = {"stream_options": {"include_usage": True}} if stream else {}
    r = gateway.client().chat.completions.create(model=kind.name, messages=BRIEF_HELLO, stream=stream,
                                                 extra_headers=usage, **options)
    u = list(r)[-1].usage if stream else r.usage
    assert (u.prompt_tokens, u.completion_tokens, u.total_tokens) == (100, 30, 130)
    assert u.prompt_tokens_details.cached_tokens == 40
    assert u.completion_tokens_details.reasoning_tokens == (12 if kind.wire.reports_reasoning else 0)


@pytest.mark.parametrize("kind", each_kind())
def test_client_credentials_never_reach_the_provider(gateway, mock, test_id, kind):
    """A client's own provider credentials (and AWS signing headers) stay behind: the provider
    gets the configured ones, the request signed afresh."""
    client_headers = {"x-api-key": "client-secret", "x-goog-api-key": "client-secret", "api-key": "client-secret",
                      "x-amz-security-token": "client-secret",
                      "x-amz-date": "19990101T000000Z", "x-amz-content-sha256": "UNSIGNED-PAYLOAD"}
    r = chat(gateway, kind.name, False, test_id, headers=client_headers)
    assert r.choices[0].message.content == "echo: hello there"
    sent = only(mock.requests(test_id))
    assert "client-secret" not in json.dumps(sent["headers"])
    assert "x-amz-content-sha256" not in sent["headers"]
    assert sent["headers"].get("x-amz-date") != "19990101T000000Z"
    assert_request_of(kind, sent, stream=False)


# ---------------------------------------------------------------------------------------------
# Tools

def tool_call_turn(gateway, kind: Kind, stream: bool, test_id: str) -> dict:
    """Asks for the weather; checks the call; returns the assistant message as a client sends it
    back."""
    client = gateway.client()
    ask = dict(model=kind.name, messages=[{"role": "user", "content": ASK_WEATHER}], tools=[WEATHER_TOOL],
               extra_headers={"x-test-id": test_id})
    if not stream:
        r = client.chat.completions.create(**ask)
        assert r.choices[0].finish_reason == "tool_calls"
        message = r.choices[0].message
        assert message.content is None
        (call,) = message.tool_calls
        assert re.fullmatch(kind.tool_call_id, call.id), call.id
        assert call.type == "function" and call.function.name == "get_weather"
        assert json.loads(call.function.arguments) == CALL_ARGUMENTS
        return message.model_dump(exclude_none=True)
    chunks = list(client.chat.completions.create(**ask, stream=True))
    assert_clean_stream(chunks)
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "tool_calls"
    assert streamed_text(chunks) == ""
    deltas = [tc for c in chunks if c.choices for tc in (c.choices[0].delta.tool_calls or [])]
    assert {d.index for d in deltas} == {0}
    first = deltas[0]
    assert re.fullmatch(kind.tool_call_id, first.id), first.id
    assert first.type == "function" and first.function.name == "get_weather"
    assert all(d.id is None and d.function.name is None for d in deltas[1:]), "id and name are sent once"
    arguments = "".join(d.function.arguments or "" for d in deltas)
    assert json.loads(arguments) == CALL_ARGUMENTS
    plan = "".join(extra_field(c.choices[0].delta, "reasoning_content") or "" for c in chunks if c.choices)
    message = {"role": "assistant", "content": None, "tool_calls": [
        {"id": first.id, "type": "function", "function": {"name": "get_weather", "arguments": arguments}}]}
    return {**message, "reasoning_content": plan} if plan else message


@pytest.mark.parametrize("kind,stream", KIND_MODES)
def test_tool_call_and_its_result(gateway, mock, test_id, kind, stream):
    """The model calls the offered tool (as JSON or streamed); the client sends the call and
    its result back; the model answers from the result."""
    assistant = tool_call_turn(gateway, kind, stream, test_id)
    call_id = assistant["tool_calls"][0]["id"]
    follow_up = [{"role": "user", "content": ASK_WEATHER}, assistant,
                 {"role": "tool", "tool_call_id": call_id, "content": TOOL_OUTPUT}]
    r = gateway.client().chat.completions.create(model=kind.name, messages=follow_up, tools=[WEATHER_TOOL],
                                                 extra_headers={"x-test-id": test_id})
    assert r.choices[0].message.content == f"tool result: {TOOL_OUTPUT}"
    assert r.choices[0].finish_reason == "stop"
    asked, answered = mock.requests(test_id)
    assert_sent_by(kind, asked, stream)
    assert_sent_by(kind, answered, stream=False)
    for sent in (asked, answered):
        assert {k: v for k, v in sent["body"].items() if k in TOOL_MEMBERS} == kind.wire.tools
    member, history = kind.wire.history(assistant, call_id)
    assert answered["body"][member] == history


# ---------------------------------------------------------------------------------------------
# Errors

ERRORS = [
    (400, openai.BadRequestError, "invalid_request_error"),
    (401, openai.AuthenticationError, "authentication_error"),
    (404, openai.NotFoundError, "invalid_request_error"),
    (429, openai.RateLimitError, "rate_limit_error"),
    (500, openai.InternalServerError, None),
    (503, openai.InternalServerError, None),
]
ERROR_CASES = [pytest.param(k, status, exc, kind_of_error, stream,
                            id=f"{k.name}-{status}-{'stream' if stream else 'json'}")
               for k in KINDS for status, exc, kind_of_error in ERRORS for stream in (False, True)]
# Anthropic's overload is its own status: a 503 for the client.
ERROR_CASES += [pytest.param(k, 529, openai.InternalServerError, None, stream,
                             id=f"{k.name}-529-{'stream' if stream else 'json'}")
                for k in KINDS if k.wire is ANTHROPIC for stream in (False, True)]


@pytest.mark.parametrize("kind,status,exc,error_type,stream", ERROR_CASES)
def test_provider_error_is_the_sdks_exception(gateway, kind, status, exc, error_type, stream):
    with pytest.raises(exc) as e:
        r = gateway.client().chat.completions.create(model=kind.name, messages=BRIEF_HELLO, stream=stream,
                                                     extra_headers={"x-mock-status": str(status)})
        list(r) if stream else None
    expected = {500: kind.wire.status_500, 529: 503}.get(status, status)
    assert e.value.status_code == expected
    error = assert_openai_error(e.value.body)
    if error_type:
        assert error["type"] == error_type, error
    if status == 529:
        assert (error["code"], error["message"]) == ("overloaded_error", "Overloaded"), error


@pytest.mark.parametrize("kind", each_kind())
def test_client_error_is_not_fallen_back_from(gateway, mock, test_id, kind):
    """A 400 is the request's fault: another provider would refuse it too."""
    model = fallback_model(kind, 429, BY_NAME[kind.partner])
    with pytest.raises(openai.BadRequestError) as e:
        gateway.client().chat.completions.create(model=model, messages=BRIEF_HELLO, temperature=TEMPERATURE,
                                                 extra_headers={"x-test-id": test_id, "x-mock-status": "400"})
    assert e.value.status_code == 400
    assert_request_of(kind, only(mock.requests(test_id)), stream=False)


@pytest.mark.parametrize("kind,fault", each_kind("cut", "malformed", "bad_event"))
def test_broken_stream_ends_with_an_error(gateway, kind, fault):
    """A stream the provider breaks after its first events ends with an error event, which the
    SDK raises: never a clean end, whatever part of the text came before."""
    chunks = []
    with pytest.raises(openai.APIError) as e:
        for chunk in gateway.client().chat.completions.create(model=kind.name, messages=BRIEF_HELLO, stream=True,
                                                              extra_headers={f"x-mock-{fault}": "1"}):
            chunks.append(chunk)
    assert not isinstance(e.value, openai.APIStatusError), "the stream had begun: an event, not a status"
    assert e.value.code == ("stream_interrupted" if fault == "cut" else "invalid_upstream_response")
    assert e.value.message
    if fault == "cut":
        assert e.value.message == "the provider's stream ended before it was complete"
    assert "echo: hello there".startswith(streamed_text(chunks))
    assert all(c.choices[0].finish_reason is None for c in chunks if c.choices), "no finish before the error"
    assert gateway.alive()


@pytest.mark.parametrize("kind,fault", each_kind("cut", "malformed"))
def test_broken_answer_is_a_502(gateway, kind, fault):
    with pytest.raises(openai.InternalServerError) as e:
        gateway.client().chat.completions.create(model=kind.name, messages=BRIEF_HELLO,
                                                 extra_headers={f"x-mock-{fault}": "1"})
    assert e.value.status_code == 502
    assert assert_openai_error(e.value.body)["code"] == "invalid_upstream_response"


# ---------------------------------------------------------------------------------------------
# Fallback

def assert_fell_back(mock, test_id: str, first: Kind, then: Kind, answer, stream: bool) -> None:
    """The answer is `then`'s, after one attempt at `first`; each attempt was written afresh
    for its own provider from the client's request."""
    assert_hello_answered(then, answer, stream)
    attempt, fallback = mock.requests(test_id)
    assert_request_of(first, attempt, stream)
    assert_request_of(then, fallback, stream)


@pytest.mark.parametrize("kind,stream", KIND_MODES)
def test_fallback_from_this_kind(gateway, mock, test_id, kind, stream):
    """This kind is rate limited (429): its partner answers."""
    partner = BY_NAME[kind.partner]
    answer = chat(gateway, fallback_model(kind, 429, partner), stream, test_id)
    assert_fell_back(mock, test_id, kind, partner, answer, stream)


@pytest.mark.parametrize("kind,stream", KIND_MODES)
def test_fallback_to_this_kind(gateway, mock, subtests, kind, stream):
    """Every other kind is overloaded (its own overload status): this kind answers."""
    for other in KINDS:
        if other is kind:
            continue
        with subtests.test(msg=f"{other.name} overloaded"):
            test_id = uuid.uuid4().hex
            answer = chat(gateway, fallback_model(other, other.overload, kind), stream, test_id)
            assert_fell_back(mock, test_id, other, kind, answer, stream)
