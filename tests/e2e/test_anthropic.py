"""Anthropic end to end, what is Anthropic's own: the official `openai` SDK against Envoy +
Switchboard, with the mock speaking Anthropic's Messages API (JSON and SSE). Parameters and
headers, tool results and tool choice, reasoning, structured output, images, unsupported
parameters, a stream failing with an error event. (Chat, streams, a tool call, errors and
fallback both ways: test_conformance.py.)
"""

import json

import openai
import pytest

from common import BRIEF_HELLO, WEATHER_TOOL, assert_clean_stream, extra_field, only, streamed_text

CONFIG = """
providers:
  anthropic:
    kind: anthropic
    base_url: "${MOCK}"
    api_key: {env: SB_TEST_ANTHROPIC_KEY}
    beta: [prompt-caching-2024-07-31]
    headers: {X-Team: e2e}
models:
  - {name: claude, deployments: [{provider: anthropic, model: claude-sonnet-4-5}], max_tokens: 1024}
  - name: claude-lenient
    deployments: [{provider: anthropic, model: claude-sonnet-4-5}]
    drop_unsupported_params: true
"""

ENV = {"SB_TEST_ANTHROPIC_KEY": "sk-ant-from-env"}


def test_parameters_translate(gateway, mock, test_id):
    r = gateway.client().chat.completions.create(
        model="claude", messages=BRIEF_HELLO, temperature=0.2, stop="END", user="u-1",
        extra_headers={"x-test-id": test_id},
    )
    assert r.choices[0].message.content == "echo: hello there"
    sent = only(mock.requests(test_id))
    assert sent["path"] == "/v1/messages"
    assert sent["body"] == {
        "model": "claude-sonnet-4-5",
        "max_tokens": 1024,
        "system": [{"type": "text", "text": "be brief"}],
        "messages": [{"role": "user", "content": [{"type": "text", "text": "hello there"}]}],
        "temperature": 0.2,
        "stop_sequences": ["END"],
        "metadata": {"user_id": "u-1"},
    }


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
        text = streamed_text(r) if stream else r.choices[0].message.content
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
    r = client.chat.completions.create(model="claude", messages=BRIEF_HELLO, reasoning_effort="low",
                                       extra_headers={"x-test-id": test_id})
    message = r.choices[0].message
    assert message.content == "echo: hello there"
    assert extra_field(message, "reasoning_content") == "The user wrote: hello there"
    assert r.usage.completion_tokens_details.reasoning_tokens == 5
    assert r.usage.completion_tokens == 3 + 5

    chunks = list(client.chat.completions.create(model="claude", messages=BRIEF_HELLO, reasoning_effort="low",
                                                 stream=True, extra_headers={"x-test-id": test_id}))
    assert_clean_stream(chunks)
    reasoning = "".join(extra_field(c.choices[0].delta, "reasoning_content") or "" for c in chunks if c.choices)
    assert reasoning == "The user wrote: hello there"
    assert streamed_text(chunks) == "echo: hello there"
    for sent in mock.requests(test_id):
        # max_tokens (1024 for this model) is raised above the thinking budget.
        assert sent["body"]["thinking"] == {"type": "enabled", "budget_tokens": 1024}
        assert sent["body"]["max_tokens"] == 2048


def test_structured_output_through_a_forced_tool(gateway, mock, test_id):
    schema = {"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
              "required": ["name", "age"]}
    fmt = {"type": "json_schema", "json_schema": {"name": "person", "schema": schema}}
    client = gateway.client()
    r = client.chat.completions.create(model="claude", messages=BRIEF_HELLO, response_format=fmt,
                                       extra_headers={"x-test-id": test_id})
    assert r.choices[0].finish_reason == "stop" and r.choices[0].message.tool_calls is None
    assert json.loads(r.choices[0].message.content) == {"name": "mock", "age": 1}
    chunks = list(client.chat.completions.create(model="claude", messages=BRIEF_HELLO, response_format=fmt,
                                                 stream=True, extra_headers={"x-test-id": test_id}))
    assert json.loads(streamed_text(chunks)) == {"name": "mock", "age": 1}
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
        gateway.client().chat.completions.create(model="claude", messages=BRIEF_HELLO, seed=7,
                                                 extra_headers={"x-test-id": test_id})
    assert e.value.body["param"] == "seed"
    assert mock.requests(test_id) == [], "refused before reaching the provider"
    r = gateway.client().chat.completions.create(model="claude-lenient", messages=BRIEF_HELLO, seed=7,
                                                 extra_headers={"x-test-id": test_id})
    assert r.choices[0].message.content == "echo: hello there"
    sent = only(mock.requests(test_id))["body"]
    assert "seed" not in sent and sent["max_tokens"] == 4096


def test_an_error_event_ends_the_stream(gateway):
    stream = gateway.client().chat.completions.create(model="claude", messages=BRIEF_HELLO, stream=True,
                                                      extra_headers={"x-mock-midstream-error": "1"})
    seen = []
    with pytest.raises(openai.APIError) as e:
        for chunk in stream:
            seen.append(chunk)
    assert "Overloaded" in str(e.value)
    assert gateway.alive()
