"""Cohere v2 end to end, what is Cohere's own: the official `openai` SDK against Envoy +
Switchboard, with the mock speaking Cohere's `/v2/chat` (JSON and typed SSE events) and
`/v2/embed`. Parameters, the tool plan, images and JSON schemas, embeddings, unsupported
parameters, Cohere's own statuses (402, 498) and messages. (Chat, streams, a tool call and its
result, errors and fallback both ways: test_conformance.py.)
"""

import struct

import openai
import pytest

from common import BRIEF_HELLO, WEATHER_TOOL, extra_field, only, streamed_text

CONFIG = """
providers:
  cohere: {kind: cohere, base_url: "${MOCK}", api_key: {env: SB_TEST_COHERE_KEY}}
  cohere-query: {kind: cohere, base_url: "${MOCK}", api_key: co-literal, embed_input_type: search_query}
  cohere-402: {kind: cohere, base_url: "${MOCK}/mock/status=402", api_key: co-402}
  cohere-429: {kind: cohere, base_url: "${MOCK}/mock/status=429", api_key: co-429}
  cohere-498: {kind: cohere, base_url: "${MOCK}/mock/status=498", api_key: co-498}
  cohere-503: {kind: cohere, base_url: "${MOCK}/mock/status=503", api_key: co-503}
  openai: {kind: openai, base_url: "${MOCK}/v1", api_key: sk-openai}
models:
  - {name: command-a, deployments: [{provider: cohere, model: command-a-03-2025}]}
  - name: command-a-lenient
    deployments: [{provider: cohere, model: command-a-03-2025}]
    drop_unsupported_params: true
  - {name: embed, deployments: [{provider: cohere, model: embed-v4.0}]}
  - {name: embed-query, deployments: [{provider: cohere-query, model: embed-v4.0}]}
  - {name: gpt-4o-mini, deployments: [{provider: openai, model: gpt-4o-mini-2024-07-18}]}
  - {name: cohere-402-then-openai, deployments: [{provider: cohere-402, model: command-r}], fallbacks: [gpt-4o-mini]}
  - {name: only-429, deployments: [{provider: cohere-429, model: command-r}]}
  - {name: only-402, deployments: [{provider: cohere-402, model: command-r}]}
  - {name: only-498, deployments: [{provider: cohere-498, model: command-r}]}
  - {name: only-503, deployments: [{provider: cohere-503, model: command-r}]}
"""

ENV = {"SB_TEST_COHERE_KEY": "co-key-from-env"}


def test_parameters_translate(gateway, mock, test_id):
    r = gateway.client().chat.completions.create(
        model="command-a", messages=BRIEF_HELLO, temperature=0.2, top_p=0.9, stop=["END"], max_tokens=50,
        seed=7, extra_headers={"x-test-id": test_id},
    )
    assert r.choices[0].message.content == "echo: hello there"
    assert only(mock.requests(test_id))["body"] == {
        "model": "command-a-03-2025", "messages": BRIEF_HELLO, "temperature": 0.2, "p": 0.9,
        "stop_sequences": ["END"], "max_tokens": 50, "seed": 7,
    }


def test_tool_plan_and_required_choice(gateway, mock, test_id):
    r = gateway.client().chat.completions.create(
        model="command-a", messages=[{"role": "user", "content": "weather in Paris?"}], tools=[WEATHER_TOOL],
        tool_choice="required", extra_headers={"x-test-id": test_id},
    )
    assert r.choices[0].finish_reason == "tool_calls"
    # Cohere's tool plan comes back as reasoning_content.
    assert extra_field(r.choices[0].message, "reasoning_content") == "I will call get_weather."
    assert only(mock.requests(test_id))["body"]["tool_choice"] == "REQUIRED"


def test_streamed_tool_plan(gateway):
    chunks = list(gateway.client().chat.completions.create(
        model="command-a", messages=[{"role": "user", "content": "weather in Paris?"}], tools=[WEATHER_TOOL],
        stream=True,
    ))
    plan = "".join(extra_field(c.choices[0].delta, "reasoning_content") or "" for c in chunks if c.choices)
    assert plan == "I will call get_weather."
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_images_and_json_schema(gateway, mock, test_id):
    content = [
        {"type": "text", "text": "what is this"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo=", "detail": "low"}},
    ]
    schema = {"type": "object", "properties": {"kind": {"type": "string"}}}
    r = gateway.client().chat.completions.create(
        model="command-a", messages=[{"role": "user", "content": content}],
        response_format={"type": "json_schema", "json_schema": {"name": "thing", "schema": schema}},
        extra_headers={"x-test-id": test_id},
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
    as_base64 = client.embeddings.create(model="embed", input=["one", "two words"],
                                         extra_headers={"x-test-id": test_id})
    as_float = client.embeddings.create(model="embed", input=["one", "two words"], encoding_format="float",
                                        extra_headers={"x-test-id": test_id})
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
                                           extra_headers={"x-test-id": test_id})
    assert len(r.data[0].embedding) == 4
    body = only(mock.requests(test_id))["body"]
    assert body["input_type"] == "search_query" and body["output_dimension"] == 4


def test_unsupported_parameters(gateway, mock, test_id):
    client = gateway.client()
    named = {"type": "function", "function": {"name": "get_weather"}}
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model="command-a", messages=BRIEF_HELLO, tools=[WEATHER_TOOL], tool_choice=named,
                                       extra_headers={"x-test-id": test_id})
    assert e.value.body["param"] == "tool_choice"
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model="command-a", messages=BRIEF_HELLO, logit_bias={"1": 5},
                                       extra_headers={"x-test-id": test_id})
    assert e.value.body["param"] == "logit_bias"
    assert mock.requests(test_id) == [], "refused before reaching Cohere"
    r = client.chat.completions.create(model="command-a-lenient", messages=BRIEF_HELLO, logit_bias={"1": 5}, n=1,
                                       tools=[WEATHER_TOOL], tool_choice=named, extra_headers={"x-test-id": test_id})
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
        gateway.client().chat.completions.create(model=model, messages=BRIEF_HELLO)
    assert e.value.status_code == status
    assert e.value.body["type"] == kind
    assert "(mock)" in e.value.body["message"], "Cohere's message is kept"


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_payment_required_falls_back(gateway, mock, test_id, stream):
    r = gateway.client().chat.completions.create(model="cohere-402-then-openai", messages=BRIEF_HELLO, stream=stream,
                                                 extra_headers={"x-test-id": test_id})
    assert (streamed_text(r) if stream else r.choices[0].message.content) == "echo: hello there"
    first, second = mock.requests(test_id)
    assert first["path"] == "/v2/chat" and first["body"]["model"] == "command-r"
    assert first["headers"]["authorization"] == "Bearer co-402"
    # The retry is translated afresh for OpenAI: its path, key, model and body shape.
    assert second["path"] == "/v1/chat/completions"
    assert second["headers"]["authorization"] == "Bearer sk-openai"
    assert second["body"]["model"] == "gpt-4o-mini-2024-07-18"
    assert second["body"]["messages"] == BRIEF_HELLO and "p" not in second["body"]
