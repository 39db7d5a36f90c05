"""Cohere v2 end to end: the official `openai` SDK against Envoy + Switchboard, with the mock
speaking Cohere's `/v2/chat` (JSON and typed SSE events) and `/v2/embed`; fallback both ways
between Cohere and OpenAI.
"""

import json
import struct

import openai
import pytest

CONFIG = """
providers:
  cohere: {kind: cohere, base_url: "${MOCK}", api_key: {env: SB_TEST_COHERE_KEY}}
  cohere-query: {kind: cohere, base_url: "${MOCK}", api_key: co-literal, embed_input_type: search_query}
  cohere-400: {kind: cohere, base_url: "${MOCK}/mock/status=400", api_key: co-400}
  cohere-402: {kind: cohere, base_url: "${MOCK}/mock/status=402", api_key: co-402}
  cohere-429: {kind: cohere, base_url: "${MOCK}/mock/status=429", api_key: co-429}
  cohere-498: {kind: cohere, base_url: "${MOCK}/mock/status=498", api_key: co-498}
  cohere-503: {kind: cohere, base_url: "${MOCK}/mock/status=503", api_key: co-503}
  openai: {kind: openai, base_url: "${MOCK}/v1", api_key: sk-openai}
  openai-503: {kind: openai, base_url: "${MOCK}/mock/status=503/v1", api_key: sk-503}
models:
  - {name: command-a, deployments: [{provider: cohere, model: command-a-03-2025}]}
  - name: command-a-lenient
    deployments: [{provider: cohere, model: command-a-03-2025}]
    drop_unsupported_params: true
  - {name: embed, deployments: [{provider: cohere, model: embed-v4.0}]}
  - {name: embed-query, deployments: [{provider: cohere-query, model: embed-v4.0}]}
  - {name: gpt-4o-mini, deployments: [{provider: openai, model: gpt-4o-mini-2024-07-18}]}
  - {name: cohere-429-then-openai, deployments: [{provider: cohere-429, model: command-r}], fallbacks: [gpt-4o-mini]}
  - {name: cohere-402-then-openai, deployments: [{provider: cohere-402, model: command-r}], fallbacks: [gpt-4o-mini]}
  - {name: cohere-400-then-openai, deployments: [{provider: cohere-400, model: command-r}], fallbacks: [gpt-4o-mini]}
  - {name: openai-503-then-cohere, deployments: [{provider: openai-503, model: gpt-x}], fallbacks: [command-a]}
  - {name: only-429, deployments: [{provider: cohere-429, model: command-r}]}
  - {name: only-402, deployments: [{provider: cohere-402, model: command-r}]}
  - {name: only-498, deployments: [{provider: cohere-498, model: command-r}]}
  - {name: only-503, deployments: [{provider: cohere-503, model: command-r}]}
"""

ENV = {"SB_TEST_COHERE_KEY": "co-key-from-env"}

HELLO = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hello there"}]
# The mock counts words plus 3 per message: prompt 2+2 words + 2*3; completion "echo: hello there".
HELLO_USAGE = (10, 3)
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


def only(requests):
    assert len(requests) == 1, requests
    return requests[0]


def headers(test_id, **extra):
    return {"x-test-id": test_id, **extra}


def streamed_text(chunks):
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


def test_chat_json(gateway, mock, test_id):
    r = gateway.client().chat.completions.create(
        model="command-a", messages=HELLO, temperature=0.2, top_p=0.9, stop=["END"], max_tokens=50,
        seed=7, extra_headers=headers(test_id),
    )
    assert r.choices[0].message.content == "echo: hello there"
    assert r.choices[0].message.role == "assistant"
    assert r.choices[0].finish_reason == "stop"
    assert r.id.startswith("mock-cohere-")
    assert r.model == "command-a-03-2025"
    assert (r.usage.prompt_tokens, r.usage.completion_tokens) == HELLO_USAGE
    assert r.usage.total_tokens == sum(HELLO_USAGE)
    sent = only(mock.requests(test_id))
    assert sent["path"] == "/v2/chat"
    assert sent["headers"]["authorization"] == "Bearer co-key-from-env"
    assert "sk-client" not in json.dumps(sent["headers"])
    assert sent["body"] == {
        "model": "command-a-03-2025", "messages": HELLO, "temperature": 0.2, "p": 0.9,
        "stop_sequences": ["END"], "max_tokens": 50, "seed": 7,
    }


@pytest.mark.parametrize("include_usage", [False, True])
def test_chat_stream(gateway, mock, test_id, include_usage):
    extra = {"stream_options": {"include_usage": True}} if include_usage else {}
    chunks = list(gateway.client().chat.completions.create(
        model="command-a", messages=HELLO, stream=True, extra_headers=headers(test_id), **extra,
    ))
    assert streamed_text(chunks) == "echo: hello there"
    assert chunks[0].choices[0].delta.role == "assistant"
    assert len({c.id for c in chunks}) == 1 and chunks[0].id.startswith("mock-cohere-")
    if include_usage:
        *chunks, usage = chunks
        assert usage.choices == []
        assert (usage.usage.prompt_tokens, usage.usage.completion_tokens) == HELLO_USAGE
    assert all(c.usage is None for c in chunks)
    assert chunks[-1].choices[0].finish_reason == "stop"
    sent = only(mock.requests(test_id))
    assert sent["path"] == "/v2/chat"
    # Cohere reports usage on every stream: nothing to ask for.
    assert sent["body"] == {"model": "command-a-03-2025", "messages": HELLO, "stream": True}


def test_tool_call_json(gateway, mock, test_id):
    r = gateway.client().chat.completions.create(
        model="command-a", messages=[{"role": "user", "content": "weather in Paris?"}], tools=[WEATHER_TOOL],
        tool_choice="required", extra_headers=headers(test_id),
    )
    message = r.choices[0].message
    assert r.choices[0].finish_reason == "tool_calls"
    assert message.content is None
    [call] = message.tool_calls
    assert (call.id, call.type, call.function.name) == ("call_mock_1", "function", "get_weather")
    assert json.loads(call.function.arguments) == {"city": "mock"}
    # Cohere's tool plan comes back as reasoning_content.
    assert message.model_extra["reasoning_content"] == "I will call get_weather."
    body = only(mock.requests(test_id))["body"]
    assert body["tools"] == [WEATHER_TOOL], "Cohere's tool shape is OpenAI's"
    assert body["tool_choice"] == "REQUIRED"


def test_tool_call_stream(gateway, mock, test_id):
    chunks = list(gateway.client().chat.completions.create(
        model="command-a", messages=[{"role": "user", "content": "weather in Paris?"}], tools=[WEATHER_TOOL],
        stream=True, extra_headers=headers(test_id),
    ))
    calls = [tc for c in chunks if c.choices for tc in (c.choices[0].delta.tool_calls or [])]
    assert calls[0].id == "call_mock_1" and calls[0].function.name == "get_weather"
    assert all(tc.index == 0 for tc in calls)
    assert all(tc.id is None and tc.function.name is None for tc in calls[1:])
    assert json.loads("".join(tc.function.arguments or "" for tc in calls)) == {"city": "mock"}
    plan = "".join((c.choices[0].delta.model_extra or {}).get("reasoning_content") or "" for c in chunks if c.choices)
    assert plan == "I will call get_weather."
    assert chunks[-1].choices[0].finish_reason == "tool_calls"
    assert only(mock.requests(test_id))["body"]["stream"] is True


def test_tool_result_round_trip(gateway, mock, test_id):
    messages = [
        {"role": "user", "content": "weather in Paris?"},
        {"role": "assistant", "content": None, "reasoning_content": "I will call get_weather.",
         "tool_calls": [{"id": "call_mock_1", "type": "function",
                         "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}}]},
        {"role": "tool", "tool_call_id": "call_mock_1", "content": "sunny"},
    ]
    r = gateway.client().chat.completions.create(
        model="command-a", messages=messages, tools=[WEATHER_TOOL], extra_headers=headers(test_id),
    )
    assert r.choices[0].message.content == "tool result: sunny"
    sent = only(mock.requests(test_id))["body"]["messages"]
    assert sent[1] == {"role": "assistant", "tool_plan": "I will call get_weather.",
                       "tool_calls": messages[1]["tool_calls"]}
    assert sent[2] == {"role": "tool", "tool_call_id": "call_mock_1", "content": "sunny"}


def test_images_and_json_schema(gateway, mock, test_id):
    content = [
        {"type": "text", "text": "what is this"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo=", "detail": "low"}},
    ]
    schema = {"type": "object", "properties": {"kind": {"type": "string"}}}
    r = gateway.client().chat.completions.create(
        model="command-a", messages=[{"role": "user", "content": content}],
        response_format={"type": "json_schema", "json_schema": {"name": "thing", "schema": schema}},
        extra_headers=headers(test_id),
    )
    assert r.choices[0].message.content == "echo: what is this"
    body = only(mock.requests(test_id))["body"]
    assert body["messages"][0]["content"] == content
    assert body["response_format"] == {"type": "json_object", "json_schema": schema}


def as_f32(vector):
    """An embedding's values as f32s (JSON carries the shortest decimal that rounds to each)."""
    return list(struct.unpack(f"<{len(vector)}f", struct.pack(f"<{len(vector)}f", *vector)))


def test_embeddings(gateway, mock, test_id):
    client = gateway.client()
    # The SDK asks for base64 unless told otherwise, and decodes it.
    as_base64 = client.embeddings.create(model="embed", input=["one", "two words"], extra_headers=headers(test_id))
    as_float = client.embeddings.create(model="embed", input=["one", "two words"], encoding_format="float",
                                        extra_headers=headers(test_id))
    for r in (as_base64, as_float):
        assert [d.index for d in r.data] == [0, 1]
        assert r.model == "embed-v4.0"
        assert r.usage.prompt_tokens == r.usage.total_tokens == 3
    assert [d.embedding for d in as_base64.data] == [as_f32(d.embedding) for d in as_float.data]
    assert len(as_float.data[0].embedding) == 8
    first, second = mock.requests(test_id)
    assert first["path"] == second["path"] == "/v2/embed"
    assert first["headers"]["authorization"] == "Bearer co-key-from-env"
    assert first["body"] == second["body"] == {
        "model": "embed-v4.0", "texts": ["one", "two words"], "input_type": "search_document",
        "embedding_types": ["float"],
    }


def test_embeddings_dimensions_and_input_type(gateway, mock, test_id):
    r = gateway.client().embeddings.create(model="embed-query", input="one", dimensions=4, encoding_format="float",
                                           extra_headers=headers(test_id))
    assert len(r.data[0].embedding) == 4
    body = only(mock.requests(test_id))["body"]
    assert body["input_type"] == "search_query" and body["output_dimension"] == 4


def test_unsupported_parameters(gateway, mock, test_id):
    client = gateway.client()
    named = {"type": "function", "function": {"name": "get_weather"}}
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model="command-a", messages=HELLO, tools=[WEATHER_TOOL], tool_choice=named,
                                       extra_headers=headers(test_id))
    assert e.value.body["param"] == "tool_choice"
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model="command-a", messages=HELLO, logit_bias={"1": 5},
                                       extra_headers=headers(test_id))
    assert e.value.body["param"] == "logit_bias"
    assert mock.requests(test_id) == [], "refused before reaching Cohere"
    r = client.chat.completions.create(model="command-a-lenient", messages=HELLO, logit_bias={"1": 5}, n=1,
                                       tools=[WEATHER_TOOL], tool_choice=named, extra_headers=headers(test_id))
    assert r.choices[0].finish_reason == "tool_calls"
    body = only(mock.requests(test_id))["body"]
    assert "logit_bias" not in body and "tool_choice" not in body


@pytest.mark.parametrize("model,exc,status,kind", [
    ("only-429", openai.RateLimitError, 429, "rate_limit_error"),
    ("only-402", openai.RateLimitError, 429, "insufficient_quota"),
    ("only-498", openai.AuthenticationError, 401, "authentication_error"),
    ("only-503", openai.InternalServerError, 503, "upstream_error"),
])
def test_errors(gateway, model, exc, status, kind):
    with pytest.raises(exc) as e:
        gateway.client().chat.completions.create(model=model, messages=HELLO)
    assert e.value.status_code == status
    assert e.value.body["type"] == kind
    assert "(mock)" in e.value.body["message"], "Cohere's message is kept"


def test_400_is_not_retried(gateway, mock, test_id):
    with pytest.raises(openai.BadRequestError):
        gateway.client().chat.completions.create(model="cohere-400-then-openai", messages=HELLO,
                                                 extra_headers=headers(test_id))
    assert len(mock.requests(test_id)) == 1


def test_stream_errors(gateway):
    client = gateway.client()
    for directive in ("x-mock-cut", "x-mock-malformed"):
        with pytest.raises(openai.APIError):
            for _ in client.chat.completions.create(model="command-a", messages=HELLO, stream=True,
                                                    extra_headers={directive: "1"}):
                pass
    with pytest.raises(openai.InternalServerError) as e:
        client.chat.completions.create(model="command-a", messages=HELLO, extra_headers={"x-mock-malformed": "1"})
    assert e.value.status_code == 502


@pytest.mark.parametrize("model", ["cohere-429-then-openai", "cohere-402-then-openai"])
@pytest.mark.parametrize("stream", [False, True])
def test_fallback_cohere_to_openai(gateway, mock, test_id, model, stream):
    r = gateway.client().chat.completions.create(model=model, messages=HELLO, stream=stream,
                                                 extra_headers=headers(test_id))
    assert (streamed_text(r) if stream else r.choices[0].message.content) == "echo: hello there"
    first, second = mock.requests(test_id)
    assert first["path"] == "/v2/chat" and first["body"]["model"] == "command-r"
    assert first["headers"]["authorization"] in ("Bearer co-429", "Bearer co-402")
    # The retry is translated afresh for OpenAI: its path, key, model and body shape.
    assert second["path"] == "/v1/chat/completions"
    assert second["headers"]["authorization"] == "Bearer sk-openai"
    assert second["body"]["model"] == "gpt-4o-mini-2024-07-18"
    assert second["body"]["messages"] == HELLO and "p" not in second["body"]


@pytest.mark.parametrize("stream", [False, True])
def test_fallback_openai_to_cohere(gateway, mock, test_id, stream):
    r = gateway.client().chat.completions.create(model="openai-503-then-cohere", messages=HELLO, stream=stream,
                                                 extra_headers=headers(test_id))
    if stream:
        chunks = list(r)
        assert streamed_text(chunks) == "echo: hello there"
        assert chunks[-1].choices[0].finish_reason == "stop"
    else:
        assert r.choices[0].message.content == "echo: hello there"
        assert r.usage.total_tokens == sum(HELLO_USAGE)
    first, second = mock.requests(test_id)
    assert first["path"] == "/v1/chat/completions" and first["body"]["model"] == "gpt-x"
    assert second["path"] == "/v2/chat"
    assert second["headers"]["authorization"] == "Bearer co-key-from-env"
    expected = {"model": "command-a-03-2025", "messages": HELLO}
    if stream:
        expected["stream"] = True
    assert second["body"] == expected
