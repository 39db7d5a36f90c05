"""Google Gemini (AI Studio), Gemini on Vertex AI and Claude on Vertex AI end to end, what is
Google's own: generation parameters, thought signatures of tool history from another provider
(and a tampered one), embeddings, Google's error codes. (Chat, streams, a tool call over two
turns keeping its thought signature, errors and fallback both ways for the three:
test_conformance.py.)

Real Envoy, the bootstrap from `switchboard render`, the mock speaking Gemini's wire format on both
hosts and Anthropic's on Vertex's rawPredict, the official `openai` SDK.
"""

import openai
import pytest

from common import BRIEF_HELLO, WEATHER_TOOL, only

CONFIG = """
providers:
  gemini: {kind: gemini, base_url: "${MOCK}", api_key: {env: SB_TEST_GEMINI_KEY}}
  vertex:
    kind: vertex
    base_url: "${MOCK}"
    api_key: {env: SB_TEST_VERTEX_TOKEN}
    project: {env: SB_TEST_GCP_PROJECT}
    location: us-central1
  vertex-eu:
    {kind: vertex, base_url: "${MOCK}", api_key: {env: SB_TEST_VERTEX_TOKEN}, project: p, location: europe-west4}
models:
  - {name: gemini-flash, deployments: [{provider: gemini, model: gemini-2.5-flash}]}
  - {name: vertex-gemini, deployments: [{provider: vertex, model: gemini-2.5-pro}]}
  - {name: gemini-embed, deployments: [{provider: gemini, model: gemini-embedding-001}]}
  - {name: vertex-embed, deployments: [{provider: vertex, model: text-embedding-005}]}
  - {name: vertex-claude, deployments: [{provider: vertex, model: "claude-sonnet-4-5@20250929"}]}
  - {name: eu-gemini, deployments: [{provider: vertex-eu, model: gemini-2.5-pro}]}
  - {name: eu-claude, deployments: [{provider: vertex-eu, model: "claude-sonnet-4-5@20250929"}]}
"""

ENV = {
    "SB_TEST_GEMINI_KEY": "gemini-key-from-env",
    "SB_TEST_VERTEX_TOKEN": "ya29.vertex-token-from-env",
    "SB_TEST_GCP_PROJECT": "proj-from-env",
}

VERTEX_PREFIX = "/v1/projects/proj-from-env/locations/us-central1/publishers/google/models"
MODELS = ["gemini-flash", "vertex-gemini"]
SKIP_SIGNATURE = "skip_thought_signature_validator"


@pytest.mark.parametrize("model", MODELS)
def test_generation_parameters_translate(gateway, mock, test_id, model):
    r = gateway.client().chat.completions.create(
        model=model, messages=BRIEF_HELLO, temperature=0.2, max_tokens=50, extra_headers={"x-test-id": test_id}
    )
    assert r.choices[0].message.content == "echo: hello there"
    assert only(mock.requests(test_id))["body"] == {
        "contents": [{"role": "user", "parts": [{"text": "hello there"}]}],
        "systemInstruction": {"parts": [{"text": "be brief"}]},
        "generationConfig": {"maxOutputTokens": 50, "temperature": 0.2},
    }


@pytest.mark.parametrize("model,path", [
    ("eu-gemini", "/v1/projects/p/locations/europe-west4/publishers/google/models/gemini-2.5-pro:generateContent"),
    ("eu-claude", "/v1/projects/p/locations/europe-west4/publishers/anthropic/models/claude-sonnet-4-5@20250929:"
                  "rawPredict"),
])
def test_vertex_project_and_location_are_in_the_path(gateway, mock, test_id, model, path):
    r = gateway.client().chat.completions.create(model=model, messages=BRIEF_HELLO,
                                                 extra_headers={"x-test-id": test_id})
    assert r.choices[0].message.content == "echo: hello there"
    assert only(mock.requests(test_id))["path"] == path


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


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("status,code", [(429, "resource_exhausted"), (503, "unavailable"), (404, "not_found"),
                                         (401, "unauthenticated")])
def test_googles_error_status_is_the_code(gateway, model, status, code):
    with pytest.raises(openai.APIStatusError) as e:
        gateway.client().chat.completions.create(model=model, messages=BRIEF_HELLO,
                                                 extra_headers={"x-mock-status": str(status)})
    assert e.value.status_code == status
    assert e.value.body["message"] and e.value.body["code"] == code
    if status == 429:
        assert e.value.response.headers["retry-after"] == "1"


# ---------------------------------------------------------------------------------------------
# Claude on Vertex AI


def test_vertex_claude_errors(gateway):
    client = gateway.client()
    with pytest.raises(openai.RateLimitError) as e:
        client.chat.completions.create(model="vertex-claude", messages=BRIEF_HELLO,
                                       extra_headers={"x-mock-status": "429"})
    assert e.value.body["code"] == "resource_exhausted"
    with pytest.raises(openai.BadRequestError) as e:
        client.embeddings.create(model="vertex-claude", input="x")
    assert e.value.body["param"] == "model"
