"""The OpenAI Responses API as an input end to end: the official `openai` SDK's
`responses.create` and `responses.stream` through the real Envoy to OpenAI (passed through, as
OpenAI speaks Responses), Anthropic, Bedrock and Gemini (translated) on the mock; errors as the
SDK's exception classes; the hosted-tools policy; virtual keys; the `switchboard_api` metric
label; fallback across formats both ways, JSON and streams, concurrent; and Codex CLI completing
a text turn and a tool turn on an OpenAI-backed and an Anthropic-backed model.
"""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor

import openai
import pytest

from agents import MARKER_COMMAND, MARKER_OUTPUT, run_codex
from common import only, scrape, sha256_hex
from harness import fill_config, serving

CONFIG = """
providers:
  openai: {kind: openai, base_url: "${MOCK}/v1", api_key: sk-openai}
  openai-429: {kind: openai, base_url: "${MOCK}/mock/status=429/v1", api_key: sk-openai-429}
  anthropic: {kind: anthropic, base_url: "${MOCK}", api_key: sk-ant}
  anthropic-503: {kind: anthropic, base_url: "${MOCK}/mock/status=503", api_key: sk-ant-503}
  # The session mock's default AWS credentials (it checks SigV4).
  bedrock: {kind: bedrock, region: us-east-1, base_url: "${MOCK}", access_key_id: "${MOCK_AWS_KEY_ID}",
            secret_access_key: "${MOCK_AWS_SECRET}"}
  gemini: {kind: gemini, base_url: "${MOCK}", api_key: gemini-key}
models:
  - {name: gpt, deployments: [{provider: openai, model: gpt-4o-mini}]}
  - {name: claude, deployments: [{provider: anthropic, model: claude-sonnet-4-5}], max_tokens: 1024}
  - {name: bedrock-claude, deployments: [{provider: bedrock, model: "anthropic.claude-3-5-sonnet-20240620-v1:0"}]}
  - {name: gemini, deployments: [{provider: gemini, model: gemini-2.5-flash}]}
  - {name: openai-429-then-claude, deployments: [{provider: openai-429, model: gpt-p0}], fallbacks: [claude]}
  - {name: claude-503-then-gpt, deployments: [{provider: anthropic-503, model: claude-p0}], fallbacks: [gpt]}
  - {name: metered-gpt, deployments: [{provider: openai, model: gpt-4o-mini}]}
  - {name: metered-claude, deployments: [{provider: anthropic, model: claude-sonnet-4-5}]}
"""

BEDROCK_PATH = "/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0"
# (public model, upstream path of a JSON answer, of a stream, the provider's model name)
PROVIDERS = {
    "gpt": ("/v1/responses", "/v1/responses", "gpt-4o-mini"),
    "claude": ("/v1/messages", "/v1/messages", "claude-sonnet-4-5"),
    "bedrock-claude": (f"{BEDROCK_PATH}/converse", f"{BEDROCK_PATH}/converse-stream",
                       "anthropic.claude-3-5-sonnet-20240620-v1:0"),
    "gemini": ("/v1beta/models/gemini-2.5-flash:generateContent",
               "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse", "gemini-2.5-flash"),
}
MODELS = list(PROVIDERS)
PROVIDER_NAMES = {"gpt": "openai", "claude": "anthropic", "bedrock-claude": "bedrock", "gemini": "gemini"}
TRANSLATED = [m for m in MODELS if m != "gpt"]
# The mock reasons (Responses' reasoning items, Anthropic's thinking) on OpenAI and Anthropic.
REASONING_MODELS = ["gpt", "claude"]

WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "Weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                   "required": ["city"], "additionalProperties": False},
    "strict": True,
}
PERSON = {"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
          "required": ["name", "age"], "additionalProperties": False}
USAGE = {"x-mock-usage": "prompt:50;completion:4;cached:20"}


def posts(mock, test_id):
    return [r for r in mock.requests(test_id) if r["method"] == "POST"]


def assert_sent_to(sent, model, stream=False):
    json_path, stream_path, upstream = PROVIDERS[model]
    assert sent["path"] == (stream_path if stream else json_path)
    assert "sk-client" not in json.dumps(sent["headers"]), "the client's key must not reach the provider"
    if model == "gpt":
        assert sent["body"]["model"] == upstream
        assert sent["headers"]["authorization"] == "Bearer sk-openai"


def collect(stream_manager):
    """Every event of a `responses.stream`, and the final response."""
    with stream_manager as stream:
        events = list(stream)
        return events, stream.get_final_response()


def assert_clean_events(events):
    """The documented shape: created first, completed last, sequence numbers 0..n-1, and every
    item event naming the item added at its output index."""
    assert events[0].type == "response.created" and events[-1].type == "response.completed"
    assert [e.sequence_number for e in events] == list(range(len(events)))
    ids = {}
    for e in events:
        if e.type == "response.output_item.added":
            assert e.output_index == len(ids)
            ids[e.output_index] = e.item.id
        elif getattr(e, "item_id", None) is not None:
            assert ids[e.output_index] == e.item_id, e
    assert len({e.response.id for e in events if hasattr(e, "response")}) == 1


# ---------------------------------------------------------------------------------------------
# responses.create

@pytest.mark.parametrize("model", MODELS)
def test_string_input(gateway, mock, test_id, model):
    raw = gateway.client().responses.with_raw_response.create(
        model=model, input="hello there", instructions="be brief", max_output_tokens=200,
        extra_headers={"x-test-id": test_id, **USAGE},
    )
    r = raw.parse()
    assert r.output_text == "echo: hello there"
    assert r.status == "completed" and r.object == "response"
    assert r.model == PROVIDERS[model][2]
    assert r.instructions == "be brief" and r.max_output_tokens == 200
    assert (r.usage.input_tokens, r.usage.input_tokens_details.cached_tokens, r.usage.output_tokens,
            r.usage.total_tokens) == (50, 20, 4, 54)
    (message,) = r.output
    assert message.type == "message" and message.role == "assistant" and message.status == "completed"
    sent = only(mock.requests(test_id))
    assert_sent_to(sent, model)
    if model == "gpt":
        # Passed through: the client's body with the model replaced.
        assert sent["body"] == {"model": "gpt-4o-mini", "input": "hello there", "instructions": "be brief",
                                "max_output_tokens": 200}
        assert "x-switchboard-dropped-tools" not in raw.headers
    else:
        assert r.id.startswith("resp_sb_") and message.id.startswith("msg_sb_")
        assert r.store is False
    assert raw.headers["x-switchboard"].startswith(f'provider="{PROVIDER_NAMES[model]}"')


@pytest.mark.parametrize("model", MODELS)
def test_item_input(gateway, mock, test_id, model):
    items = [
        {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "be brief"}]},
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "first question"}]},
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "first answer"}]},
        {"role": "user", "content": [{"type": "input_text", "text": "second"},
                                     {"type": "input_text", "text": "question"}]},
    ]
    r = gateway.client().responses.create(model=model, input=items, extra_headers={"x-test-id": test_id})
    assert r.output_text == "echo: second question"
    sent = only(mock.requests(test_id))
    assert_sent_to(sent, model)
    if model == "claude":
        assert sent["body"]["system"] == [{"type": "text", "text": "be brief"}]
        assert [m["role"] for m in sent["body"]["messages"]] == ["user", "assistant", "user"]
        assert sent["body"]["messages"][1]["content"] == [{"type": "text", "text": "first answer"}]
    if model == "gpt":
        assert sent["body"]["input"] == items


@pytest.mark.parametrize("model", MODELS)
def test_function_tool_round_trip(gateway, mock, test_id, model):
    client = gateway.client()
    question = [{"role": "user", "content": "weather in Paris?"}]
    # Converse and Gemini cannot turn parallel calls off (a 400 there, as on the chat endpoint).
    parallel = {"parallel_tool_calls": False} if model in ("gpt", "claude") else {}
    r = client.responses.create(model=model, input=question, tools=[WEATHER], tool_choice="auto",
                                extra_headers={"x-test-id": test_id}, **parallel)
    calls = [item for item in r.output if item.type == "function_call"]
    assert len(calls) == 1, r.output
    (call,) = calls
    assert call.name == "get_weather" and call.call_id and call.status == "completed"
    assert json.loads(call.arguments) == {"city": "mock"}
    # The output items go back as they came, with the call's result.
    follow_up = question + [item.model_dump(exclude_none=True) for item in r.output] + [
        {"type": "function_call_output", "call_id": call.call_id, "output": "18C and sunny"}]
    r2 = client.responses.create(model=model, input=follow_up, tools=[WEATHER],
                                 extra_headers={"x-test-id": test_id})
    assert r2.output_text == "tool result: 18C and sunny"
    asked, answered = mock.requests(test_id)
    assert_sent_to(asked, model)
    if model == "claude":
        assert asked["body"]["tools"] == [{"name": "get_weather", "description": "Weather for a city",
                                           "input_schema": WEATHER["parameters"]}]
        assert asked["body"]["tool_choice"] == {"type": "auto", "disable_parallel_tool_use": True}
        tool_use, tool_result = answered["body"]["messages"][-2:]
        assert tool_use["content"][-1]["type"] == "tool_use" and tool_use["content"][-1]["id"] == call.call_id
        assert tool_result["content"][0]["tool_use_id"] == call.call_id
    if model == "gpt":
        assert asked["body"]["tools"] == [WEATHER]


@pytest.mark.parametrize("model", REASONING_MODELS)
def test_reasoning_summary(gateway, mock, test_id, model):
    r = gateway.client().responses.create(model=model, input="hello there",
                                          reasoning={"effort": "low", "summary": "auto"},
                                          extra_headers={"x-test-id": test_id})
    reasoning, message = r.output
    assert reasoning.type == "reasoning"
    assert [s.text for s in reasoning.summary] == ["The user wrote: hello there"]
    assert message.content[0].text == "echo: hello there"
    assert r.usage.output_tokens_details.reasoning_tokens == 5
    assert r.reasoning.effort == "low" and r.reasoning.summary == "auto"
    sent = only(mock.requests(test_id))
    if model == "claude":
        assert sent["body"]["thinking"] == {"type": "enabled", "budget_tokens": 1024}
    else:
        assert sent["body"]["reasoning"] == {"effort": "low", "summary": "auto"}


def test_reasoning_without_a_summary_comes_as_reasoning_text(gateway):
    r = gateway.client().responses.create(model="claude", input="hello there", reasoning={"effort": "low"})
    reasoning = r.output[0]
    assert reasoning.summary == [] and [c.text for c in reasoning.content] == ["The user wrote: hello there"]


@pytest.mark.parametrize("model", MODELS)
def test_json_schema_format(gateway, mock, test_id, model):
    fmt = {"format": {"type": "json_schema", "name": "person", "schema": PERSON, "strict": True}}
    client = gateway.client()
    if model == "bedrock-claude":
        # Converse has no structured output: refused before reaching Bedrock.
        with pytest.raises(openai.BadRequestError) as e:
            client.responses.create(model=model, input="who?", text=fmt, extra_headers={"x-test-id": test_id})
        assert e.value.body["param"] == "response_format"
        assert mock.requests(test_id) == []
        return
    r = client.responses.create(model=model, input="who?", text=fmt, extra_headers={"x-test-id": test_id})
    assert r.text.format.type == "json_schema" and r.text.format.name == "person"
    sent = only(mock.requests(test_id))["body"]
    if model == "claude":
        # Through a forced tool, whose input comes back as the text.
        assert json.loads(r.output_text) == {"name": "mock", "age": 1}
        assert sent["tool_choice"] == {"type": "tool", "name": "person"}
    elif model == "gemini":
        assert sent["generationConfig"]["responseMimeType"] == "application/json"
        assert sent["generationConfig"]["responseJsonSchema"] == PERSON
    else:
        assert sent["text"] == fmt


# ---------------------------------------------------------------------------------------------
# responses.stream

@pytest.mark.parametrize("model", MODELS)
def test_stream_text(gateway, mock, test_id, model):
    events, final = collect(gateway.client().responses.stream(
        model=model, input="hello there", extra_headers={"x-test-id": test_id, **USAGE}))
    assert_clean_events(events)
    assert "".join(e.delta for e in events if e.type == "response.output_text.delta") == "echo: hello there"
    assert final.output_text == "echo: hello there" and final.status == "completed"
    assert (final.usage.input_tokens, final.usage.output_tokens, final.usage.total_tokens) == (50, 4, 54)
    types = [e.type for e in events]
    assert types[:4] == ["response.created", "response.in_progress", "response.output_item.added",
                         "response.content_part.added"]
    assert types[-4:] == ["response.output_text.done", "response.content_part.done",
                          "response.output_item.done", "response.completed"]
    assert_sent_to(only(mock.requests(test_id)), model, stream=True)


@pytest.mark.parametrize("model", MODELS)
def test_stream_tool_call(gateway, mock, test_id, model):
    events, final = collect(gateway.client().responses.stream(
        model=model, input="weather in Paris?", tools=[WEATHER], extra_headers={"x-test-id": test_id}))
    assert_clean_events(events)
    arguments = "".join(e.delta for e in events if e.type == "response.function_call_arguments.delta")
    assert json.loads(arguments) == {"city": "mock"}
    (done,) = [e for e in events if e.type == "response.function_call_arguments.done"]
    assert done.arguments == arguments
    (call,) = [item for item in final.output if item.type == "function_call"]
    assert call.name == "get_weather" and call.arguments == arguments and call.call_id
    assert_sent_to(only(mock.requests(test_id)), model, stream=True)


@pytest.mark.parametrize("model", REASONING_MODELS)
def test_stream_reasoning(gateway, test_id, model):
    events, final = collect(gateway.client().responses.stream(
        model=model, input="hello there", reasoning={"effort": "low", "summary": "auto"},
        extra_headers={"x-test-id": test_id}))
    assert_clean_events(events)
    summary = "".join(e.delta for e in events if e.type == "response.reasoning_summary_text.delta")
    assert summary == "The user wrote: hello there"
    (done,) = [e for e in events if e.type == "response.reasoning_summary_text.done"]
    assert done.text == summary
    assert [item.type for item in final.output] == ["reasoning", "message"]
    assert final.output_text == "echo: hello there"


# ---------------------------------------------------------------------------------------------
# Errors

@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("status,exc", [
    (400, openai.BadRequestError),
    (401, openai.AuthenticationError),
    (429, openai.RateLimitError),
    (500, openai.InternalServerError),
])
def test_errors_raise_the_sdk_s_exceptions(gateway, model, status, exc):
    with pytest.raises(exc) as e:
        gateway.client().responses.create(model=model, input="hi", extra_headers={"x-mock-status": str(status)})
    # As on the chat endpoint, a 500 of Bedrock's or Gemini's is a bad gateway.
    expected = 502 if status == 500 and model in ("bedrock-claude", "gemini") else status
    assert e.value.status_code == expected and e.value.body["message"]


def test_gateway_refusals_are_openai_errors(gateway):
    client = gateway.client()
    with pytest.raises(openai.NotFoundError) as e:
        client.responses.create(model="no-such-model", input="hi")
    assert e.value.body["code"] == "model_not_found"
    with pytest.raises(openai.BadRequestError) as e:
        client.responses.create(model="claude", input=[{"role": "wizard", "content": "hi"}])
    assert e.value.body["param"] == "input[0].role"


@pytest.mark.parametrize("model", ["gpt", "claude"])
@pytest.mark.parametrize("directive", ["midstream-error", "cut"])
def test_broken_streams_end_with_an_error_event(gateway, model, directive):
    with gateway.client().responses.stream(model=model, input="hello there",
                                           extra_headers={f"x-mock-{directive}": "1"}) as stream:
        events = list(stream)
        with pytest.raises(RuntimeError):
            stream.get_final_response()
    types = [e.type for e in events]
    assert types[0] == "response.created" and "response.completed" not in types
    errors = [e for e in events if e.type == "error"]
    assert len(errors) == 1 and errors[0].message
    assert [e.sequence_number for e in events] == list(range(len(events)))
    if directive == "cut":
        assert errors[0].code == "stream_interrupted"
    if model == "claude" or directive == "midstream-error":
        assert types[-2:] == ["error", "response.failed"]
        assert events[-1].response.status == "failed"
    assert gateway.alive()


def test_previous_response_id_is_refused_only_where_translated(gateway, mock, test_id):
    client = gateway.client()
    with pytest.raises(openai.BadRequestError) as e:
        client.responses.create(model="claude", input="more", previous_response_id="resp_1",
                                extra_headers={"x-test-id": test_id})
    assert e.value.body["param"] == "previous_response_id"
    assert "stores nothing" in e.value.body["message"]
    assert mock.requests(test_id) == [], "refused before reaching Anthropic"
    # OpenAI gets it as sent (the mock stores nothing, so it answers OpenAI's own 400).
    with pytest.raises(openai.BadRequestError) as e:
        client.responses.create(model="gpt", input="more", previous_response_id="resp_1",
                                extra_headers={"x-test-id": test_id})
    assert e.value.body["message"] == "Previous response with id 'resp_1' not found."
    assert only(mock.requests(test_id))["body"]["previous_response_id"] == "resp_1"


# ---------------------------------------------------------------------------------------------
# Hosted tools

CODEX_LIKE_TOOLS = [
    WEATHER,
    {"type": "namespace", "name": "agents", "description": "Sub-agents", "tools": [
        {"type": "function", "name": "spawn", "description": "Start one",
         "parameters": {"type": "object", "properties": {"task": {"type": "string"}}, "required": ["task"]},
         "strict": False}]},
    {"type": "web_search", "external_web_access": True},
    {"type": "file_search", "vector_store_ids": ["vs_1"]},
]


@pytest.mark.parametrize("model", TRANSLATED)
def test_hosted_tools_are_dropped_and_named_where_translated(gateway, mock, test_id, model):
    client = gateway.client()
    raw = client.responses.with_raw_response.create(
        model=model, input="spawn one", tools=CODEX_LIKE_TOOLS,
        extra_headers={"x-test-id": test_id, "x-mock-tool-call": 'agents__spawn {"task": "x"}'})
    assert raw.headers["x-switchboard-dropped-tools"] == "web_search, file_search"
    (call,) = raw.parse().output
    # The namespace's function is called by its namespace and name, as OpenAI does.
    assert (call.type, call.namespace, call.name) == ("function_call", "agents", "spawn")
    assert json.loads(call.arguments) == {"task": "x"}
    if model == "claude":
        sent = only(mock.requests(test_id))["body"]
        assert [t["name"] for t in sent["tools"]] == ["get_weather", "agents__spawn"]
    # The call and its output go back; the answer reads the output.
    follow_up = [{"role": "user", "content": "spawn one"}, call.model_dump(exclude_none=True),
                 {"type": "function_call_output", "call_id": call.call_id, "output": "spawned"}]
    r = client.responses.create(model=model, input=follow_up, tools=CODEX_LIKE_TOOLS)
    assert r.output_text == "tool result: spawned"


def test_hosted_tools_reach_openai_untouched(gateway, mock, test_id):
    raw = gateway.client().responses.with_raw_response.create(
        model="gpt", input="hello there", tools=CODEX_LIKE_TOOLS,
        extra_headers={"x-test-id": test_id, "x-mock-tool-call": "none"})
    assert "x-switchboard-dropped-tools" not in raw.headers
    assert raw.parse().output_text == "echo: hello there"
    assert only(mock.requests(test_id))["body"]["tools"] == CODEX_LIKE_TOOLS


def test_tool_choice_naming_a_hosted_tool_is_refused_where_translated(gateway, mock, test_id):
    with pytest.raises(openai.BadRequestError) as e:
        gateway.client().responses.create(model="claude", input="search", tools=CODEX_LIKE_TOOLS,
                                          tool_choice={"type": "file_search"}, extra_headers={"x-test-id": test_id})
    assert e.value.body["param"] == "tool_choice"
    assert mock.requests(test_id) == []


# ---------------------------------------------------------------------------------------------
# Virtual keys and metrics

KEY_FULL = "sk-sb-responses-full"
KEY_CLAUDE = "sk-sb-responses-claude"


@pytest.fixture(scope="module")
def keyed(mock):
    config = fill_config(CONFIG, mock) + f"""
keys:
  - {{name: full, sha256: {sha256_hex(KEY_FULL)}}}
  - {{name: claude-only, sha256: {sha256_hex(KEY_CLAUDE)}, models: ["claude*"]}}
"""
    with serving(config, name="responses-keys") as gw:
        yield gw


def test_virtual_keys(keyed, mock, test_id):
    for model in ("gpt", "claude"):
        r = keyed.client(api_key=KEY_FULL).responses.create(model=model, input="hello there",
                                                            extra_headers={"x-test-id": test_id})
        assert r.output_text == "echo: hello there"
    assert all(KEY_FULL not in json.dumps(sent["headers"]) for sent in mock.requests(test_id))
    with pytest.raises(openai.AuthenticationError):
        keyed.client(api_key="sk-sb-not-a-key").responses.create(model="gpt", input="hi")
    restricted = keyed.client(api_key=KEY_CLAUDE)
    assert restricted.responses.create(model="claude", input="hi").output_text == "echo: hi"
    with pytest.raises(openai.PermissionDeniedError):
        restricted.responses.create(model="gpt", input="hi")
    with pytest.raises(openai.PermissionDeniedError):
        with restricted.responses.stream(model="gpt", input="hi") as stream:
            list(stream)


def series(name, model, provider, **labels):
    return (name, frozenset({"gen_ai_operation_name": "chat", "switchboard_api": "openai_responses",
                             "gen_ai_request_model": model, "gen_ai_provider_name": provider,
                             "switchboard_deployment": f"{model}_0", **labels}.items()))


def test_metrics_label_the_responses_api(gateway):
    client = gateway.client()
    usage = {"x-mock-usage": "prompt:30;completion:7;cached:10;reasoning:2"}
    for model in ("metered-gpt", "metered-claude"):
        client.responses.create(model=model, input="hi", extra_headers=usage)
        collect(client.responses.stream(model=model, input="hi", extra_headers=usage))
    expected = {}
    # Anthropic reports no reasoning tokens apart (thinking counts as output).
    for model, provider, reasoning in (("metered-gpt", "openai", 4), ("metered-claude", "anthropic", 0)):
        expected[series("switchboard_requests", model, provider, http_status_class="2xx")] = 2
        for kind, value in (("input", 60), ("output", 14), ("cache_read", 20), ("reasoning", reasoning)):
            expected[series("switchboard_gen_ai_client_token_usage", model, provider,
                            gen_ai_token_type=kind)] = value
    got = gateway.settled(scrape, expected)
    for key, value in expected.items():
        assert got.get(key) == value, (key, got.get(key))


# ---------------------------------------------------------------------------------------------
# Fallback across formats, concurrent

FALLBACKS = {
    # model: (the first attempt's path and model, the fallback's, the answer's model)
    "openai-429-then-claude": (("/v1/responses", "gpt-p0"), ("/v1/messages", "claude-sonnet-4-5"),
                               "claude-sonnet-4-5"),
    "claude-503-then-gpt": (("/v1/messages", "claude-p0"), ("/v1/responses", "gpt-4o-mini"), "gpt-4o-mini"),
}


class InFlight:
    """Counts the requests in flight, and the most at once."""

    def __init__(self):
        self.lock = threading.Lock()
        self.now = self.most = 0

    def __enter__(self):
        with self.lock:
            self.now += 1
            self.most = max(self.most, self.now)

    def __exit__(self, *exc):
        with self.lock:
            self.now -= 1


def fallback_request(gateway, mock, in_flight: InFlight, i: int):
    with in_flight:
        return fallback_attempts(gateway, mock, i)


def fallback_attempts(gateway, mock, i: int):
    model = list(FALLBACKS)[i % 2]
    stream = i % 4 >= 2
    test_id = f"responses-fallback-{i}-{gateway.port}"
    prompt = f"request number {i}"
    client = gateway.client(timeout=60)
    # Every attempt takes a while, so that the requests overlap.
    headers = {"x-test-id": test_id, "x-mock-delay": "100"}
    if stream:
        events, final = collect(client.responses.stream(model=model, input=prompt, extra_headers=headers))
        assert_clean_events(events)
        assert "".join(e.delta for e in events if e.type == "response.output_text.delta") == f"echo: {prompt}"
    else:
        final = client.responses.create(model=model, input=prompt, extra_headers=headers)
    assert final.output_text == f"echo: {prompt}", (i, final)
    assert final.status == "completed" and final.model == FALLBACKS[model][2]
    attempts = mock.requests(test_id)
    first, fallback, _ = FALLBACKS[model]
    # The failing provider first, unless outlier detection has ejected it after its failures.
    assert [(a["path"], a["body"]["model"]) for a in attempts] in ([first, fallback], [fallback]), (i, attempts)
    # Each attempt is written afresh for its provider from the client's request.
    assert all(a["body"].get("stream", False) is stream for a in attempts), (i, attempts)
    return model, stream, len(attempts)


def test_fallback_both_ways_json_and_streams_concurrently(gateway, mock):
    in_flight = InFlight()
    with ThreadPoolExecutor(max_workers=24) as pool:
        done = list(pool.map(lambda i: fallback_request(gateway, mock, in_flight, i), range(100)))
    assert len(done) == 100 and in_flight.most >= 20
    assert {(model, stream) for model, stream, _ in done} == {(m, s) for m in FALLBACKS for s in (False, True)}
    # Each way, JSON and streams, fell back from a failed attempt.
    assert {(model, stream) for model, stream, attempts in done if attempts == 2} == {
        (m, s) for m in FALLBACKS for s in (False, True)}
    assert gateway.alive()


# ---------------------------------------------------------------------------------------------
# Codex CLI

@pytest.mark.parametrize("model", ["gpt", "claude"])
def test_codex_text_turn(gateway, mock, test_id, model):
    run = run_codex(gateway.url, model, "say hello", headers={
        "x-test-id": test_id, "x-mock-reply": "hello from the gateway", "x-mock-usage": USAGE["x-mock-usage"]})
    assert run.exit_code == 0, run.describe()
    assert run.answer == "hello from the gateway"
    assert (run.usage["input_tokens"], run.usage["cached_input_tokens"], run.usage["output_tokens"]) == (50, 20, 4)
    sent = posts(mock, test_id)
    assert len(sent) == 1, sent
    assert_sent_to(sent[0], model, stream=True)
    if model == "claude":
        tools = [t["name"] for t in sent[0]["body"]["tools"]]
        assert "exec_command" in tools
        # Codex's namespace tool is offered flattened.
        assert any("__" in t for t in tools), tools


@pytest.mark.parametrize("model", ["gpt", "claude"])
def test_codex_tool_turn(gateway, mock, test_id, model):
    run = run_codex(gateway.url, model, "run the marker command", headers={
        "x-test-id": test_id, "x-mock-tool-call": "exec_command " + json.dumps({"cmd": MARKER_COMMAND})})
    assert run.exit_code == 0, run.describe()
    (command,) = run.commands()
    assert MARKER_COMMAND in command["command"] and command["exit_code"] == 0
    assert command["aggregated_output"].strip() == MARKER_OUTPUT
    assert run.answer.startswith("tool result: ") and MARKER_OUTPUT in run.answer
    asked, answered = posts(mock, test_id)
    assert_sent_to(answered, model, stream=True)
    if model == "claude":
        call_turn, result_turn = answered["body"]["messages"][-2:]
        (tool_use,) = [b for b in call_turn["content"] if b["type"] == "tool_use"]
        assert tool_use["name"] == "exec_command" and tool_use["input"]["cmd"] == MARKER_COMMAND
        (tool_result,) = result_turn["content"]
        assert tool_result["tool_use_id"] == tool_use["id"]
        assert MARKER_OUTPUT in json.dumps(tool_result["content"])
    else:
        call, output = answered["body"]["input"][-2:]
        assert call["type"] == "function_call" and output["type"] == "function_call_output"
        assert output["call_id"] == call["call_id"] and MARKER_OUTPUT in output["output"]
