"""Google Gemini (AI Studio), Gemini on Vertex AI and Claude on Vertex AI end to end.

Real Envoy, the bootstrap from `switchboard render`, the mock speaking Gemini's wire format on both
hosts and Anthropic's on Vertex's rawPredict, the official `openai` SDK: text, streams, tool calls
over two turns (Gemini's thought signature must survive the round trip through the client),
embeddings, errors, and fallback across providers in both directions.
"""

import base64
import json

import openai
import pytest

CONFIG = """
providers:
  gemini: {kind: gemini, base_url: "${MOCK}", api_key: {env: SB_TEST_GEMINI_KEY}}
  vertex:
    kind: vertex
    base_url: "${MOCK}"
    api_key: {env: SB_TEST_VERTEX_TOKEN}
    project: {env: SB_TEST_GCP_PROJECT}
    location: us-central1
  openai: {kind: openai, base_url: "${MOCK}/v1", api_key: sk-openai}
  gemini-503: {kind: gemini, base_url: "${MOCK}/mock/status=503", api_key: k503}
  gemini-429: {kind: gemini, base_url: "${MOCK}/mock/status=429", api_key: k429}
  gemini-404: {kind: gemini, base_url: "${MOCK}/mock/status=404", api_key: k404}
  vertex-429: {kind: vertex, base_url: "${MOCK}/mock/status=429", api_key: t429, project: p, location: europe-west4}
  vertex-401: {kind: vertex, base_url: "${MOCK}/mock/status=401", api_key: t401, project: p, location: global}
  openai-429: {kind: openai, base_url: "${MOCK}/mock/status=429/v1", api_key: sk-429}
  anthropic: {kind: anthropic, base_url: "${MOCK}", api_key: sk-ant}
  anthropic-529: {kind: anthropic, base_url: "${MOCK}/mock/status=529", api_key: sk-ant-529}
  cohere-429: {kind: cohere, base_url: "${MOCK}/mock/status=429", api_key: co-429}
  # The session mock's default AWS credentials (it checks SigV4).
  bedrock: {kind: bedrock, region: us-east-1, base_url: "${MOCK}", access_key_id: AKIDEXAMPLE,
            secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"}
  bedrock-429: {kind: bedrock, region: us-east-1, base_url: "${MOCK}/mock/status=429", access_key_id: AKIDEXAMPLE,
                secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"}
models:
  - {name: gemini-flash, deployments: [{provider: gemini, model: gemini-2.5-flash}]}
  - {name: vertex-gemini, deployments: [{provider: vertex, model: gemini-2.5-pro}]}
  - {name: gemini-embed, deployments: [{provider: gemini, model: gemini-embedding-001}]}
  - {name: vertex-embed, deployments: [{provider: vertex, model: text-embedding-005}]}
  - {name: gpt, deployments: [{provider: openai, model: gpt-4o-mini}]}
  - {name: gemini-503-then-openai, deployments: [{provider: gemini-503, model: gemini-2.5-flash}], fallbacks: [gpt]}
  - {name: gemini-429-then-openai, deployments: [{provider: gemini-429, model: gemini-2.5-flash}], fallbacks: [gpt]}
  - {name: openai-429-then-gemini, deployments: [{provider: openai-429, model: gpt-4o}], fallbacks: [gemini-flash]}
  - {name: vertex-429-then-gemini, deployments: [{provider: vertex-429, model: gemini-2.5-pro}], fallbacks: [gemini-flash]}
  - {name: only-gemini-429, deployments: [{provider: gemini-429, model: gemini-2.5-flash}]}
  - {name: only-gemini-503, deployments: [{provider: gemini-503, model: gemini-2.5-flash}]}
  - {name: only-gemini-404, deployments: [{provider: gemini-404, model: gemini-9}]}
  - {name: only-vertex-401, deployments: [{provider: vertex-401, model: gemini-2.5-pro}]}
  - {name: vertex-claude, deployments: [{provider: vertex, model: "claude-sonnet-4-5@20250929"}]}
  - {name: claude, deployments: [{provider: anthropic, model: claude-sonnet-4-5}]}
  - {name: vertex-claude-429-then-gemini, deployments: [{provider: vertex-429, model: "claude-sonnet-4-5@20250929"}], fallbacks: [gemini-flash]}
  - {name: gemini-503-then-vertex-claude, deployments: [{provider: gemini-503, model: gemini-2.5-flash}], fallbacks: [vertex-claude]}
  - {name: anthropic-529-then-gemini, deployments: [{provider: anthropic-529, model: claude-sonnet-4-5}], fallbacks: [gemini-flash]}
  - {name: cohere-429-then-gemini, deployments: [{provider: cohere-429, model: command-a-03-2025}], fallbacks: [gemini-flash]}
  - {name: gemini-429-then-claude, deployments: [{provider: gemini-429, model: gemini-2.5-flash}], fallbacks: [claude]}
  - {name: bedrock-claude, deployments: [{provider: bedrock, model: "anthropic.claude-3-5-sonnet-20240620-v1:0"}]}
  - {name: bedrock-429-then-gemini, deployments: [{provider: bedrock-429, model: "anthropic.claude-3-5-sonnet-20240620-v1:0"}], fallbacks: [gemini-flash]}
  - {name: gemini-503-then-bedrock, deployments: [{provider: gemini-503, model: gemini-2.5-flash}], fallbacks: [bedrock-claude]}
"""

ENV = {
    "SB_TEST_GEMINI_KEY": "gemini-key-from-env",
    "SB_TEST_VERTEX_TOKEN": "ya29.vertex-token-from-env",
    "SB_TEST_GCP_PROJECT": "proj-from-env",
}

VERTEX_PREFIX = "/v1/projects/proj-from-env/locations/us-central1/publishers/google/models"
CLAUDE_PATH = "/v1/projects/proj-from-env/locations/us-central1/publishers/anthropic/models/claude-sonnet-4-5@20250929"
# (public model, upstream path without the method, auth header, expected auth value)
PROVIDERS = [
    ("gemini-flash", "/v1beta/models/gemini-2.5-flash", "x-goog-api-key", "gemini-key-from-env"),
    ("vertex-gemini", f"{VERTEX_PREFIX}/gemini-2.5-pro", "authorization", "Bearer ya29.vertex-token-from-env"),
]
MODELS = [p[0] for p in PROVIDERS]

HELLO = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hello there"}]
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
SKIP_SIGNATURE = "skip_thought_signature_validator"


def mock_signature(name: str, args: dict) -> str:
    """The thought signature the mock issues for a function call (see tests/mock/src/gemini.rs)."""
    payload = f"mock-thought:{name}:{json.dumps(args, separators=(',', ':'))}".encode()
    return base64.b64encode(b"\xfb\xff\xbf" + payload).decode()


def only(requests):
    assert len(requests) == 1, requests
    return requests[0]


def streamed_text(chunks) -> str:
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


@pytest.mark.parametrize("model,path,auth_header,auth_value", PROVIDERS)
def test_chat_json(gateway, mock, test_id, model, path, auth_header, auth_value):
    r = gateway.client().chat.completions.create(
        model=model, messages=HELLO, temperature=0.2, max_tokens=50, extra_headers={"x-test-id": test_id}
    )
    assert r.choices[0].message.content == "echo: hello there"
    assert r.choices[0].finish_reason == "stop"
    assert r.id.startswith("mock-gemini-") and r.model in ("gemini-2.5-flash", "gemini-2.5-pro")
    # prompt: 2 words + 2 words + 3 per turn; completion: 3 words.
    assert (r.usage.prompt_tokens, r.usage.completion_tokens, r.usage.total_tokens) == (10, 3, 13)
    sent = only(mock.requests(test_id))
    assert sent["path"] == f"{path}:generateContent"
    assert sent["headers"][auth_header] == auth_value
    assert "sk-client" not in json.dumps(sent["headers"]), "the client's key must not reach Google"
    assert sent["body"] == {
        "contents": [{"role": "user", "parts": [{"text": "hello there"}]}],
        "systemInstruction": {"parts": [{"text": "be brief"}]},
        "generationConfig": {"maxOutputTokens": 50, "temperature": 0.2},
    }


@pytest.mark.parametrize("model,path,auth_header,auth_value", PROVIDERS)
def test_chat_stream(gateway, mock, test_id, model, path, auth_header, auth_value):
    client = gateway.client()
    chunks = list(client.chat.completions.create(
        model=model, messages=HELLO, stream=True, extra_headers={"x-test-id": test_id}
    ))
    assert streamed_text(chunks) == "echo: hello there"
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert all(c.usage is None for c in chunks), "usage chunk shown to a client that did not ask"
    sent = only(mock.requests(test_id))
    assert sent["path"] == f"{path}:streamGenerateContent?alt=sse"
    assert sent["headers"][auth_header] == auth_value

    chunks = list(client.chat.completions.create(
        model=model, messages=HELLO, stream=True, stream_options={"include_usage": True}
    ))
    assert chunks[-1].choices == []
    assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (10, 3)


@pytest.mark.parametrize("model", MODELS)
def test_client_google_key_never_reaches_a_provider(gateway, mock, test_id, model):
    gateway.client().chat.completions.create(
        model=model, messages=HELLO, extra_headers={"x-test-id": test_id, "x-goog-api-key": "client-secret"}
    )
    headers = only(mock.requests(test_id))["headers"]
    assert "client-secret" not in json.dumps(headers)


def test_usage_details(gateway):
    r = gateway.client().chat.completions.create(
        model="gemini-flash", messages=HELLO,
        extra_headers={"x-mock-usage": "prompt:100;completion:30;cached:40;reasoning:12"},
    )
    u = r.usage
    assert (u.prompt_tokens, u.completion_tokens, u.total_tokens) == (100, 30, 130)
    assert u.prompt_tokens_details.cached_tokens == 40
    assert u.completion_tokens_details.reasoning_tokens == 12


def first_turn(client, model, stream, test_id):
    """Asks for the weather; returns the assistant message as the client would send it back."""
    msgs = [{"role": "user", "content": "weather in Paris?"}]
    if not stream:
        r = client.chat.completions.create(model=model, messages=msgs, tools=[WEATHER_TOOL],
                                           extra_headers={"x-test-id": test_id})
        assert r.choices[0].finish_reason == "tool_calls"
        return r.choices[0].message.model_dump(exclude_none=True)
    call, finish = {}, None
    for c in client.chat.completions.create(model=model, messages=msgs, tools=[WEATHER_TOOL], stream=True,
                                            extra_headers={"x-test-id": test_id}):
        for tc in c.choices[0].delta.tool_calls or []:
            assert tc.index == 0
            call.setdefault("id", tc.id)
            call.setdefault("name", tc.function.name)
            call["arguments"] = call.get("arguments", "") + (tc.function.arguments or "")
        finish = c.choices[0].finish_reason or finish
    assert finish == "tool_calls"
    return {"role": "assistant", "content": None, "tool_calls": [
        {"id": call["id"], "type": "function", "function": {"name": call["name"], "arguments": call["arguments"]}}
    ]}


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("stream", [False, True])
def test_two_turn_tool_conversation_keeps_the_thought_signature(gateway, mock, test_id, model, stream):
    client = gateway.client()
    assistant = first_turn(client, model, stream, test_id)
    call = assistant["tool_calls"][0]
    assert call["function"]["name"] == "get_weather"
    assert json.loads(call["function"]["arguments"]) == {"city": "mock"}
    assert "_sig_" in call["id"], call["id"]

    msgs = [
        {"role": "user", "content": "weather in Paris?"},
        assistant,
        {"role": "tool", "tool_call_id": call["id"], "content": "sunny"},
    ]
    r = client.chat.completions.create(model=model, messages=msgs, tools=[WEATHER_TOOL],
                                       extra_headers={"x-test-id": test_id})
    assert r.choices[0].message.content == "tool result: sunny"

    first, second = mock.requests(test_id)
    assert first["body"]["tools"] == [{"functionDeclarations": [{
        "name": "get_weather", "description": "Weather for a city",
        "parametersJsonSchema": WEATHER_TOOL["function"]["parameters"]}]}]
    model_turn, results = second["body"]["contents"][1:]
    assert model_turn == {"role": "model", "parts": [{
        "functionCall": {"name": "get_weather", "args": {"city": "mock"}},
        "thoughtSignature": mock_signature("get_weather", {"city": "mock"}),
    }]}
    assert results == {"role": "user", "parts": [
        {"functionResponse": {"name": "get_weather", "response": {"output": "sunny"}}}]}


def test_tool_history_from_another_provider_gets_the_skip_signature(gateway, mock, test_id):
    msgs = [
        {"role": "user", "content": "weather in Paris?"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_abc123", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]},
        {"role": "tool", "tool_call_id": "call_abc123", "content": "{\"temp\": 21}"},
    ]
    r = gateway.client().chat.completions.create(model="gemini-flash", messages=msgs, tools=[WEATHER_TOOL],
                                                 extra_headers={"x-test-id": test_id})
    assert r.choices[0].message.content == 'tool result: {"temp":21}'
    parts = only(mock.requests(test_id))["body"]["contents"][1]["parts"]
    assert parts[0]["thoughtSignature"] == SKIP_SIGNATURE


def test_a_tampered_signature_is_refused_by_gemini(gateway):
    msgs = [
        {"role": "user", "content": "weather in Paris?"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_x-0_sig_AAAA", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "call_x-0_sig_AAAA", "content": "sunny"},
    ]
    with pytest.raises(openai.BadRequestError) as e:
        gateway.client().chat.completions.create(model="gemini-flash", messages=msgs, tools=[WEATHER_TOOL])
    assert "Thought signature is not valid" in e.value.body["message"]


@pytest.mark.parametrize("model,path,tokens", [
    ("gemini-embed", "/v1beta/models/gemini-embedding-001:batchEmbedContents", 0),
    ("vertex-embed", f"{VERTEX_PREFIX}/text-embedding-005:predict", 3),
])
def test_embeddings(gateway, mock, test_id, model, path, tokens):
    client = gateway.client()
    # The SDK asks for base64 and decodes it; ask for floats too and compare.
    r = client.embeddings.create(model=model, input=["one two", "three"], extra_headers={"x-test-id": test_id})
    floats = client.embeddings.create(model=model, input=["one two", "three"], encoding_format="float")
    assert [d.index for d in r.data] == [0, 1]
    assert len(r.data[0].embedding) == 8
    # Floats are printed as the shortest f32 text, base64 carries the f32 bits: equal as f32.
    for b64, flt in zip(r.data, floats.data):
        assert b64.embedding == pytest.approx(flt.embedding, rel=1e-6, abs=1e-7)
    assert r.data[0].embedding != r.data[1].embedding
    assert r.usage.prompt_tokens == tokens  # AI Studio reports no token counts for embeddings
    sent = mock.requests(test_id)[0]
    assert sent["path"] == path
    short = client.embeddings.create(model=model, input="one", dimensions=4)
    assert len(short.data[0].embedding) == 4


@pytest.mark.parametrize("model,first_path", [
    ("gemini-503-then-openai", "/v1beta/models/gemini-2.5-flash:"),
    ("gemini-429-then-openai", "/v1beta/models/gemini-2.5-flash:"),
])
@pytest.mark.parametrize("stream", [False, True])
def test_fallback_gemini_to_openai(gateway, mock, test_id, model, first_path, stream):
    r = gateway.client().chat.completions.create(model=model, messages=HELLO, stream=stream,
                                                 extra_headers={"x-test-id": test_id})
    text = streamed_text(r) if stream else r.choices[0].message.content
    assert text == "echo: hello there"
    first, last = mock.requests(test_id)
    assert first["path"].startswith(first_path) and "contents" in first["body"]
    assert last["path"] == "/v1/chat/completions"
    assert last["headers"]["authorization"] == "Bearer sk-openai"
    assert last["body"]["model"] == "gpt-4o-mini" and last["body"]["messages"] == HELLO


@pytest.mark.parametrize("model,first_path", [
    ("openai-429-then-gemini", "/v1/chat/completions"),
    ("vertex-429-then-gemini", "/v1/projects/p/locations/europe-west4/publishers/google/models/gemini-2.5-pro:"),
    ("vertex-claude-429-then-gemini",
     "/v1/projects/p/locations/europe-west4/publishers/anthropic/models/claude-sonnet-4-5@20250929:"),
    ("anthropic-529-then-gemini", "/v1/messages"),
    ("cohere-429-then-gemini", "/v2/chat"),
    ("bedrock-429-then-gemini", "/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse"),
])
@pytest.mark.parametrize("stream", [False, True])
def test_fallback_to_gemini(gateway, mock, test_id, model, first_path, stream):
    r = gateway.client().chat.completions.create(model=model, messages=HELLO, stream=stream,
                                                 extra_headers={"x-test-id": test_id})
    text = streamed_text(r) if stream else r.choices[0].message.content
    assert text == "echo: hello there"
    first, last = mock.requests(test_id)
    assert first["path"].startswith(first_path)
    assert last["path"].startswith("/v1beta/models/gemini-2.5-flash:")
    assert last["headers"]["x-goog-api-key"] == "gemini-key-from-env"
    assert "authorization" not in last["headers"]
    assert last["body"]["contents"] == [{"role": "user", "parts": [{"text": "hello there"}]}]


@pytest.mark.parametrize("model,exc,status", [
    ("only-gemini-429", openai.RateLimitError, 429),
    ("only-gemini-503", openai.InternalServerError, 503),
    ("only-gemini-404", openai.NotFoundError, 404),
    ("only-vertex-401", openai.AuthenticationError, 401),
])
def test_google_errors_raise_the_right_sdk_exception(gateway, model, exc, status):
    with pytest.raises(exc) as e:
        gateway.client().chat.completions.create(model=model, messages=HELLO)
    assert e.value.status_code == status
    assert e.value.body["message"] and e.value.body["code"]
    if status == 429:
        assert e.value.response.headers["retry-after"] == "1"


@pytest.mark.parametrize("model", MODELS)
def test_broken_streams_and_answers(gateway, model):
    client = gateway.client()
    with pytest.raises(openai.APIError) as e:
        for _ in client.chat.completions.create(model=model, messages=HELLO, stream=True,
                                                extra_headers={"x-mock-cut": "1"}):
            pass
    assert "ended before it was complete" in str(e.value)
    with pytest.raises(openai.APIError):
        for _ in client.chat.completions.create(model=model, messages=HELLO, stream=True,
                                                extra_headers={"x-mock-malformed": "1"}):
            pass
    with pytest.raises(openai.InternalServerError) as e:
        client.chat.completions.create(model=model, messages=HELLO, extra_headers={"x-mock-malformed": "1"})
    assert e.value.status_code == 502


ANTHROPIC_HELLO = [{"role": "user", "content": [{"type": "text", "text": "hello there"}]}]


@pytest.mark.parametrize("model,last_path,messages", [
    ("gemini-503-then-vertex-claude", f"{CLAUDE_PATH}:", ANTHROPIC_HELLO),
    ("gemini-429-then-claude", "/v1/messages", ANTHROPIC_HELLO),
    ("gemini-503-then-bedrock", "/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse",
     [{"role": "user", "content": [{"text": "hello there"}]}]),
])
@pytest.mark.parametrize("stream", [False, True])
def test_fallback_gemini_to_claude(gateway, mock, test_id, model, last_path, messages, stream):
    r = gateway.client().chat.completions.create(model=model, messages=HELLO, stream=stream,
                                                 extra_headers={"x-test-id": test_id})
    text = streamed_text(r) if stream else r.choices[0].message.content
    assert text == "echo: hello there"
    first, last = mock.requests(test_id)
    assert first["path"].startswith("/v1beta/models/gemini-2.5-flash:")
    assert last["path"].startswith(last_path)
    assert last["body"]["messages"] == messages


# ---------------------------------------------------------------------------------------------
# Claude on Vertex AI


@pytest.mark.parametrize("stream", [False, True])
def test_vertex_claude_chat(gateway, mock, test_id, stream):
    r = gateway.client().chat.completions.create(model="vertex-claude", messages=HELLO, stream=stream,
                                                 extra_headers={"x-test-id": test_id})
    if stream:
        chunks = list(r)
        assert streamed_text(chunks) == "echo: hello there"
        assert chunks[-1].choices[0].finish_reason == "stop"
    else:
        assert r.choices[0].message.content == "echo: hello there"
        assert r.choices[0].finish_reason == "stop"
        assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens > 0
    sent = only(mock.requests(test_id))
    assert sent["path"] == f"{CLAUDE_PATH}:{'streamRawPredict' if stream else 'rawPredict'}"
    assert sent["headers"]["authorization"] == "Bearer ya29.vertex-token-from-env"
    assert "x-api-key" not in sent["headers"] and "anthropic-version" not in sent["headers"]
    body = sent["body"]
    assert "model" not in body and body["anthropic_version"] == "vertex-2023-10-16"
    assert body["system"] == [{"type": "text", "text": "be brief"}]


@pytest.mark.parametrize("stream", [False, True])
def test_vertex_claude_two_turn_tools(gateway, mock, test_id, stream):
    client = gateway.client()
    assistant = first_turn(client, "vertex-claude", stream, test_id)
    call = assistant["tool_calls"][0]
    assert call["function"]["name"] == "get_weather"
    assert json.loads(call["function"]["arguments"]) == {"city": "mock"}
    msgs = [
        {"role": "user", "content": "weather in Paris?"},
        assistant,
        {"role": "tool", "tool_call_id": call["id"], "content": "sunny"},
    ]
    r = client.chat.completions.create(model="vertex-claude", messages=msgs, tools=[WEATHER_TOOL],
                                       extra_headers={"x-test-id": test_id})
    assert r.choices[0].message.content == "tool result: sunny"
    second = mock.requests(test_id)[1]
    assert second["path"] == f"{CLAUDE_PATH}:rawPredict"
    assert second["body"]["messages"][1]["content"][0]["type"] == "tool_use"


def test_vertex_claude_errors(gateway):
    client = gateway.client()
    with pytest.raises(openai.InternalServerError) as e:
        client.chat.completions.create(model="vertex-claude", messages=HELLO, extra_headers={"x-mock-status": "529"})
    assert e.value.status_code == 503 and e.value.body["code"] == "overloaded_error"
    with pytest.raises(openai.RateLimitError) as e:
        client.chat.completions.create(model="vertex-claude", messages=HELLO, extra_headers={"x-mock-status": "429"})
    assert e.value.body["code"] == "resource_exhausted"
    with pytest.raises(openai.BadRequestError) as e:
        client.embeddings.create(model="vertex-claude", input="x")
    assert e.value.body["param"] == "model"
