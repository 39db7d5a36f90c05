"""Anthropic end to end: the official `openai` SDK against Envoy + Switchboard, with the mock
speaking Anthropic's Messages API (JSON and SSE). Text, tool calls (streamed and not),
reasoning, structured output, errors, and fallback both ways between OpenAI and Anthropic.
"""

import json

import openai
import pytest

CONFIG = """
providers:
  anthropic:
    kind: anthropic
    base_url: "${MOCK}"
    api_key: {env: SB_TEST_ANTHROPIC_KEY}
    beta: [prompt-caching-2024-07-31]
    headers: {X-Team: e2e}
  anthropic-529: {kind: anthropic, base_url: "${MOCK}/mock/status=529", api_key: sk-ant-529}
  openai: {kind: openai, base_url: "${MOCK}/v1", api_key: sk-openai}
  openai-429: {kind: openai, base_url: "${MOCK}/mock/status=429/v1", api_key: sk-openai-429}
  openai-503: {kind: openai, base_url: "${MOCK}/mock/status=503/v1", api_key: sk-openai-503}
models:
  - {name: claude, deployments: [{provider: anthropic, model: claude-sonnet-4-5}], max_tokens: 1024}
  - name: claude-lenient
    deployments: [{provider: anthropic, model: claude-sonnet-4-5}]
    drop_unsupported_params: true
  - {name: gpt, deployments: [{provider: openai, model: gpt-4o-mini}]}
  - {name: openai-429-then-claude, deployments: [{provider: openai-429, model: gpt-p0}], fallbacks: [claude]}
  - {name: openai-503-then-claude, deployments: [{provider: openai-503, model: gpt-p0}], fallbacks: [claude]}
  - {name: claude-overloaded-then-gpt, deployments: [{provider: anthropic-529, model: claude-p0}], fallbacks: [gpt]}
  - {name: claude-overloaded, deployments: [{provider: anthropic-529, model: claude-p0}]}
"""

ENV = {"SB_TEST_ANTHROPIC_KEY": "sk-ant-from-env"}

HELLO = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hello there"}]
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
CLAUDE_WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Weather for a city",
    "input_schema": WEATHER_TOOL["function"]["parameters"],
}


def only(requests):
    assert len(requests) == 1, requests
    return requests[0]


def text_of(chunks):
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


def extra(obj, name):
    """A field the OpenAI SDK does not model (e.g. `reasoning_content`)."""
    return (obj.model_extra or {}).get(name)


def assert_clean_stream(chunks):
    """One OpenAI stream: one id, the role chunk first and only once, one finish chunk."""
    assert len({c.id for c in chunks}) == 1
    roles = [c.choices[0].delta.role for c in chunks if c.choices and c.choices[0].delta.role]
    assert roles == ["assistant"] and chunks[0].choices[0].delta.role == "assistant"
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert len(finishes) == 1


def assert_anthropic_request(sent, model="claude-sonnet-4-5"):
    assert sent["path"] == "/v1/messages"
    headers = sent["headers"]
    assert headers["x-api-key"] == "sk-ant-from-env"
    assert headers["anthropic-version"] == "2023-06-01"
    assert headers["anthropic-beta"] == "prompt-caching-2024-07-31"
    assert headers["x-team"] == "e2e"
    assert "authorization" not in headers, "the client's key must not reach the provider"
    assert "sk-client" not in json.dumps(headers)
    assert sent["body"]["model"] == model


def test_text_json(gateway, mock, test_id):
    r = gateway.client().chat.completions.create(
        model="claude", messages=HELLO, temperature=0.2, stop="END", user="u-1",
        extra_headers={"x-test-id": test_id},
    )
    assert r.choices[0].message.content == "echo: hello there"
    assert r.choices[0].finish_reason == "stop"
    assert r.id.startswith("msg_mock_") and r.model == "claude-sonnet-4-5" and r.created > 0
    assert (r.usage.prompt_tokens, r.usage.completion_tokens, r.usage.total_tokens) == (10, 3, 13)
    sent = only(mock.requests(test_id))
    assert_anthropic_request(sent)
    assert sent["body"] == {
        "model": "claude-sonnet-4-5",
        "max_tokens": 1024,
        "system": [{"type": "text", "text": "be brief"}],
        "messages": [{"role": "user", "content": [{"type": "text", "text": "hello there"}]}],
        "temperature": 0.2,
        "stop_sequences": ["END"],
        "metadata": {"user_id": "u-1"},
    }


def test_cache_reads_count_once(gateway, test_id):
    r = gateway.client().chat.completions.create(
        model="claude", messages=HELLO,
        extra_headers={"x-test-id": test_id, "x-mock-usage": "prompt:50;cached:20;completion:4"},
    )
    assert r.usage.prompt_tokens == 50 and r.usage.prompt_tokens_details.cached_tokens == 20
    assert r.usage.total_tokens == 54


@pytest.mark.parametrize("include_usage", [False, True])
def test_text_stream(gateway, mock, test_id, include_usage):
    kwargs = {"stream_options": {"include_usage": True}} if include_usage else {}
    chunks = list(gateway.client().chat.completions.create(
        model="claude", messages=HELLO, stream=True, extra_headers={"x-test-id": test_id}, **kwargs,
    ))
    assert text_of(chunks) == "echo: hello there"
    assert_clean_stream(chunks)
    finish = [c for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finish[0].choices[0].finish_reason == "stop"
    if include_usage:
        assert chunks[-1].choices == [] and chunks[-1].usage.total_tokens == 13
        assert all(c.usage is None for c in chunks[:-1])
    else:
        assert all(c.usage is None for c in chunks), "usage chunk shown to a client that did not ask"
    sent = only(mock.requests(test_id))
    assert_anthropic_request(sent)
    assert sent["body"]["stream"] is True and "stream_options" not in sent["body"]


def test_tool_calls_json_and_stream(gateway, mock, test_id):
    client = gateway.client()
    msgs = [{"role": "user", "content": "weather in Paris?"}]
    r = client.chat.completions.create(model="claude", messages=msgs, tools=[WEATHER_TOOL],
                                       extra_headers={"x-test-id": test_id})
    assert r.choices[0].finish_reason == "tool_calls"
    assert r.choices[0].message.content is None
    (call,) = r.choices[0].message.tool_calls
    assert call.id == "toolu_mock_1" and call.type == "function"
    assert call.function.name == "get_weather" and json.loads(call.function.arguments) == {"city": "mock"}

    chunks = list(client.chat.completions.create(model="claude", messages=msgs, tools=[WEATHER_TOOL],
                                                 stream=True, extra_headers={"x-test-id": test_id}))
    assert_clean_stream(chunks)
    deltas = [tc for c in chunks if c.choices for tc in (c.choices[0].delta.tool_calls or [])]
    assert {d.index for d in deltas} == {0}
    assert [(d.id, d.function.name) for d in deltas if d.id] == [("toolu_mock_1", "get_weather")]
    assert all(d.function.name is None for d in deltas[1:]), "id and name are sent once"
    assert json.loads("".join(d.function.arguments or "" for d in deltas)) == {"city": "mock"}
    assert chunks[-1].choices[0].finish_reason == "tool_calls"

    for sent in mock.requests(test_id):
        assert_anthropic_request(sent)
        assert sent["body"]["tools"] == [CLAUDE_WEATHER_TOOL]
        assert "tool_choice" not in sent["body"]


def test_tool_results_go_back_in_one_user_turn(gateway, mock, test_id):
    msgs = [
        {"role": "user", "content": "weather in Paris and Rome?"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "toolu_a", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}},
            {"id": "toolu_b", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Rome"}'}},
        ]},
        {"role": "tool", "tool_call_id": "toolu_a", "content": "18C"},
        {"role": "tool", "tool_call_id": "toolu_b", "content": "21C"},
    ]
    for stream in (False, True):
        r = gateway.client().chat.completions.create(
            model="claude", messages=msgs, tools=[WEATHER_TOOL], tool_choice="auto", stream=stream,
            extra_headers={"x-test-id": test_id},
        )
        text = text_of(list(r)) if stream else r.choices[0].message.content
        assert text == "tool result: 21C"
    sent = mock.requests(test_id)[0]["body"]
    assert sent["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "weather in Paris and Rome?"}]},
        {"role": "assistant", "content": [
            {"type": "tool_use", "id": "toolu_a", "name": "get_weather", "input": {"city": "Paris"}},
            {"type": "tool_use", "id": "toolu_b", "name": "get_weather", "input": {"city": "Rome"}},
        ]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_a", "content": [{"type": "text", "text": "18C"}]},
            {"type": "tool_result", "tool_use_id": "toolu_b", "content": [{"type": "text", "text": "21C"}]},
        ]},
    ]
    assert sent["tool_choice"] == {"type": "auto"}


@pytest.mark.parametrize("choice,expected", [
    ("required", {"type": "any"}),
    ("none", {"type": "none"}),
    ({"type": "function", "function": {"name": "get_weather"}}, {"type": "tool", "name": "get_weather"}),
])
def test_tool_choice(gateway, mock, test_id, choice, expected):
    r = gateway.client().chat.completions.create(
        model="claude", messages=[{"role": "user", "content": "hi"}], tools=[WEATHER_TOOL],
        tool_choice=choice, parallel_tool_calls=False, extra_headers={"x-test-id": test_id},
    )
    assert r.choices[0].finish_reason == ("stop" if choice == "none" else "tool_calls")
    sent = only(mock.requests(test_id))["body"]
    if expected["type"] != "none":
        expected = {**expected, "disable_parallel_tool_use": True}
    assert sent["tool_choice"] == expected


def test_reasoning_json_and_stream(gateway, mock, test_id):
    client = gateway.client()
    r = client.chat.completions.create(model="claude", messages=HELLO, reasoning_effort="low",
                                       extra_headers={"x-test-id": test_id})
    message = r.choices[0].message
    assert message.content == "echo: hello there"
    assert extra(message, "reasoning_content") == "The user wrote: hello there"
    assert r.usage.completion_tokens_details.reasoning_tokens == 5
    assert r.usage.completion_tokens == 3 + 5

    chunks = list(client.chat.completions.create(model="claude", messages=HELLO, reasoning_effort="low",
                                                 stream=True, extra_headers={"x-test-id": test_id}))
    assert_clean_stream(chunks)
    reasoning = "".join(extra(c.choices[0].delta, "reasoning_content") or "" for c in chunks if c.choices)
    assert reasoning == "The user wrote: hello there"
    assert text_of(chunks) == "echo: hello there"
    for sent in mock.requests(test_id):
        # max_tokens (1024 for this model) is raised above the thinking budget.
        assert sent["body"]["thinking"] == {"type": "enabled", "budget_tokens": 1024}
        assert sent["body"]["max_tokens"] == 2048


def test_structured_output_through_a_forced_tool(gateway, mock, test_id):
    schema = {"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
              "required": ["name", "age"]}
    fmt = {"type": "json_schema", "json_schema": {"name": "person", "schema": schema}}
    client = gateway.client()
    r = client.chat.completions.create(model="claude", messages=HELLO, response_format=fmt,
                                       extra_headers={"x-test-id": test_id})
    assert r.choices[0].finish_reason == "stop" and r.choices[0].message.tool_calls is None
    assert json.loads(r.choices[0].message.content) == {"name": "mock", "age": 1}
    chunks = list(client.chat.completions.create(model="claude", messages=HELLO, response_format=fmt,
                                                 stream=True, extra_headers={"x-test-id": test_id}))
    assert json.loads(text_of(chunks)) == {"name": "mock", "age": 1}
    assert chunks[-1].choices[0].finish_reason == "stop"
    sent = mock.requests(test_id)[0]["body"]
    assert sent["tool_choice"] == {"type": "tool", "name": "person"}
    assert sent["tools"][0]["name"] == "person" and sent["tools"][0]["input_schema"] == schema


def test_images(gateway, mock, test_id):
    content = [
        {"type": "text", "text": "what is this"},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo=", "detail": "low"}},
    ]
    gateway.client().chat.completions.create(model="claude", messages=[{"role": "user", "content": content}],
                                             extra_headers={"x-test-id": test_id})
    assert only(mock.requests(test_id))["body"]["messages"][0]["content"] == [
        {"type": "text", "text": "what is this"},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.png"}},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
    ]


def test_unsupported_parameter_is_named_or_dropped(gateway, mock, test_id):
    with pytest.raises(openai.BadRequestError) as e:
        gateway.client().chat.completions.create(model="claude", messages=HELLO, seed=7,
                                                 extra_headers={"x-test-id": test_id})
    assert e.value.body["param"] == "seed"
    assert mock.requests(test_id) == [], "refused before reaching the provider"
    r = gateway.client().chat.completions.create(model="claude-lenient", messages=HELLO, seed=7,
                                                 extra_headers={"x-test-id": test_id})
    assert r.choices[0].message.content == "echo: hello there"
    sent = only(mock.requests(test_id))["body"]
    assert "seed" not in sent and sent["max_tokens"] == 4096


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("model", ["openai-429-then-claude", "openai-503-then-claude"])
def test_fallback_from_openai_to_anthropic(gateway, mock, test_id, model, stream):
    r = gateway.client().chat.completions.create(model=model, messages=HELLO, stream=stream,
                                                 extra_headers={"x-test-id": test_id})
    if stream:
        chunks = list(r)
        assert_clean_stream(chunks)
        assert text_of(chunks) == "echo: hello there"
    else:
        assert r.choices[0].message.content == "echo: hello there" and r.model == "claude-sonnet-4-5"
    first, second = mock.requests(test_id)
    assert first["path"] == "/v1/chat/completions" and first["body"]["model"] == "gpt-p0"
    # The fallback is translated afresh from the client's request: Anthropic's path, key and body.
    assert_anthropic_request(second)
    assert second["body"]["messages"] == [{"role": "user", "content": [{"type": "text", "text": "hello there"}]}]
    assert "stream_options" not in second["body"]


@pytest.mark.parametrize("stream", [False, True])
def test_fallback_from_overloaded_anthropic_to_openai(gateway, mock, test_id, stream):
    r = gateway.client().chat.completions.create(model="claude-overloaded-then-gpt", messages=HELLO,
                                                 stream=stream, extra_headers={"x-test-id": test_id})
    if stream:
        chunks = list(r)
        assert text_of(chunks) == "echo: hello there"
        assert all(c.usage is None for c in chunks)
    else:
        assert r.choices[0].message.content == "echo: hello there" and r.model == "gpt-4o-mini"
    first, second = mock.requests(test_id)
    assert first["path"] == "/v1/messages" and first["headers"]["x-api-key"] == "sk-ant-529"
    assert second["path"] == "/v1/chat/completions"
    assert second["headers"]["authorization"] == "Bearer sk-openai"
    assert "x-api-key" not in second["headers"] and "anthropic-version" not in second["headers"]
    assert second["body"]["model"] == "gpt-4o-mini" and second["body"]["messages"] == HELLO


def test_overloaded_without_fallback_is_a_503(gateway):
    with pytest.raises(openai.InternalServerError) as e:
        gateway.client().chat.completions.create(model="claude-overloaded", messages=HELLO)
    assert e.value.status_code == 503
    assert e.value.body["message"] == "Overloaded" and e.value.body["code"] == "overloaded_error"


@pytest.mark.parametrize("status,exc", [
    (429, openai.RateLimitError),
    (401, openai.AuthenticationError),
    (400, openai.BadRequestError),
    (500, openai.InternalServerError),
])
def test_anthropic_errors_raise_the_right_sdk_exception(gateway, status, exc):
    with pytest.raises(exc) as e:
        gateway.client().chat.completions.create(model="claude", messages=HELLO,
                                                 extra_headers={"x-mock-status": str(status)})
    assert e.value.status_code == status and e.value.body["message"]


@pytest.mark.parametrize("directive", ["midstream-error", "cut", "malformed"])
def test_broken_streams_end_with_an_error(gateway, directive):
    stream = gateway.client().chat.completions.create(model="claude", messages=HELLO, stream=True,
                                                      extra_headers={f"x-mock-{directive}": "1"})
    seen = []
    with pytest.raises(openai.APIError) as e:
        for chunk in stream:
            seen.append(chunk)
    if directive == "midstream-error":
        assert "Overloaded" in str(e.value)
    assert gateway.alive()


def test_malformed_json_answer_is_a_502(gateway):
    with pytest.raises(openai.InternalServerError) as e:
        gateway.client().chat.completions.create(model="claude", messages=HELLO,
                                                 extra_headers={"x-mock-malformed": "1"})
    assert e.value.status_code == 502
