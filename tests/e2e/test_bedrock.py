"""AWS Bedrock end to end, what is Bedrock's own: Converse parameters, the tool choice,
images, InvokeModel embeddings, SigV4 (credentials from the SDK's environment, a wrong secret),
Bedrock's error messages, its in-stream exceptions. (Chat, ConverseStream's binary eventstream,
a tool call and its result, errors and fallback both ways: test_conformance.py.)

Real Envoy, the bootstrap from `switchboard render`, the mock speaking Bedrock's wire format and
checking every request's SigV4 signature against its own credentials, the official `openai` SDK.
"""

import base64
import json
import struct

import openai
import pytest

from common import HELLO, WEATHER_TOOL, only
from harness import Mock

# The mock checks signatures against these (its `--aws-*` flags); the gateway reads them from
# the environment.
AWS_KEY_ID = "AKIDSWITCHBOARDE2E"
AWS_SECRET = "e2e/Secret+Key/for/SigV4"
CLAUDE = "anthropic.claude-3-5-sonnet-20240620-v1:0"
CLAUDE_PATH = "/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0"

CONFIG = f"""
providers:
  bedrock:
    kind: bedrock
    region: us-east-1
    base_url: "${{MOCK}}"
    access_key_id: {{env: SB_TEST_AWS_KEY_ID}}
    secret_access_key: {{env: SB_TEST_AWS_SECRET}}
  # Credentials from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN by default.
  bedrock-sdk-env: {{kind: bedrock, region: eu-west-3, base_url: "${{MOCK}}"}}
  bedrock-wrong-secret:
    kind: bedrock
    region: us-east-1
    base_url: "${{MOCK}}"
    access_key_id: {AWS_KEY_ID}
    secret_access_key: not-the-secret
models:
  - {{name: claude, deployments: [{{provider: bedrock, model: "{CLAUDE}"}}], max_tokens: 1024}}
  - {{name: claude-sdk-env, deployments: [{{provider: bedrock-sdk-env, model: "{CLAUDE}"}}]}}
  - {{name: claude-wrong-secret, deployments: [{{provider: bedrock-wrong-secret, model: "{CLAUDE}"}}]}}
  - {{name: titan, deployments: [{{provider: bedrock, model: "amazon.titan-embed-text-v2:0"}}]}}
  - {{name: cohere-embed, deployments: [{{provider: bedrock, model: cohere.embed-english-v3}}]}}
"""

ENV = {
    "SB_TEST_AWS_KEY_ID": AWS_KEY_ID,
    "SB_TEST_AWS_SECRET": AWS_SECRET,
    "AWS_ACCESS_KEY_ID": AWS_KEY_ID,
    "AWS_SECRET_ACCESS_KEY": AWS_SECRET,
    "AWS_SESSION_TOKEN": "e2e-session-token",
}


@pytest.fixture(scope="module")
def mock():
    """A mock of this module's own, checking signatures against the test credentials."""
    m = Mock("--aws-access-key-id", AWS_KEY_ID, "--aws-secret-access-key", AWS_SECRET)
    yield m
    m.stop()


def signed_by(sent, region="us-east-1"):
    auth = sent["headers"]["authorization"]
    date = sent["headers"]["x-amz-date"]
    assert auth.startswith(f"AWS4-HMAC-SHA256 Credential={AWS_KEY_ID}/{date[:8]}/{region}/bedrock/aws4_request, "), auth
    assert "sk-client" not in json.dumps(sent["headers"]), "the client's key must not reach the provider"
    assert AWS_SECRET not in json.dumps(sent), "the secret must never be sent"


def test_parameters_translate(gateway, mock, test_id):
    r = gateway.client().chat.completions.create(
        model="claude",
        messages=[{"role": "system", "content": "Be brief."}, *HELLO],
        temperature=0.2, top_p=0.9, stop=["END"],
        extra_headers={"x-test-id": test_id},
    )
    assert r.choices[0].message.content == "echo: hello there"
    sent = only(mock.requests(test_id))
    assert sent["path"] == f"{CLAUDE_PATH}/converse"
    signed_by(sent)
    assert sent["body"] == {
        "system": [{"text": "Be brief."}],
        "messages": [{"role": "user", "content": [{"text": "hello there"}]}],
        "inferenceConfig": {"maxTokens": 1024, "temperature": 0.2, "topP": 0.9, "stopSequences": ["END"]},
    }


def test_a_required_tool_choice_is_any_tool(gateway, mock, test_id):
    r = gateway.client().chat.completions.create(
        model="claude", messages=[{"role": "user", "content": "weather in Paris?"}], tools=[WEATHER_TOOL],
        tool_choice="required", extra_headers={"x-test-id": test_id})
    (call,) = r.choices[0].message.tool_calls
    assert r.choices[0].finish_reason == "tool_calls" and call.function.name == "get_weather"
    sent = only(mock.requests(test_id))
    signed_by(sent)
    assert sent["body"]["toolConfig"] == {
        "tools": [{"toolSpec": {"name": "get_weather", "description": "Weather for a city",
                                "inputSchema": {"json": WEATHER_TOOL["function"]["parameters"]}}}],
        "toolChoice": {"any": {}},
    }


def test_images_go_inline(gateway, mock, test_id):
    content = [{"type": "text", "text": "what is this"},
               {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}]
    r = gateway.client().chat.completions.create(model="claude", messages=[{"role": "user", "content": content}],
                                                 extra_headers={"x-test-id": test_id})
    assert r.choices[0].message.content == "echo: what is this"
    assert only(mock.requests(test_id))["body"]["messages"][0]["content"] == [
        {"text": "what is this"}, {"image": {"format": "png", "source": {"bytes": "iVBORw0KGgo="}}}]


def test_embeddings_titan_and_cohere(gateway, mock, test_id):
    client = gateway.client()
    titan = client.embeddings.create(model="titan", input="hello world", dimensions=16,
                                     extra_headers={"x-test-id": test_id})
    assert len(titan.data) == 1 and len(titan.data[0].embedding) == 16
    assert titan.usage.prompt_tokens == 2
    as_floats = client.embeddings.create(model="titan", input="hello world", dimensions=16,
                                         encoding_format="float")
    # The same f32s: exact through base64, shortest decimal form as floats.
    assert all(abs(a - b) < 1e-6 for a, b in zip(as_floats.data[0].embedding, titan.data[0].embedding))

    cohere = client.embeddings.create(model="cohere-embed", input=["one", "two", "three"],
                                      extra_headers={"x-test-id": test_id})
    assert [d.index for d in cohere.data] == [0, 1, 2]
    assert len({tuple(d.embedding) for d in cohere.data}) == 3

    sent = mock.requests(test_id)
    assert sent[0]["path"] == "/model/amazon.titan-embed-text-v2%3A0/invoke"
    assert sent[0]["body"] == {"inputText": "hello world", "dimensions": 16}
    assert sent[1]["path"] == "/model/cohere.embed-english-v3/invoke"
    assert sent[1]["body"] == {"texts": ["one", "two", "three"], "input_type": "search_document"}
    for s in sent:
        signed_by(s)

    with pytest.raises(openai.BadRequestError) as e:
        client.embeddings.create(model="titan", input=["a", "b"])
    assert e.value.body["param"] == "input"


def test_raw_base64_embedding_bytes(gateway):
    """The SDK's default asks for base64: the bytes are little-endian f32s of the mock's vector."""
    r = gateway.client().embeddings.with_raw_response.create(model="titan", input="x", encoding_format="base64")
    data = r.http_response.json()["data"][0]["embedding"]
    floats = struct.unpack("<8f", base64.b64decode(data))
    assert abs(sum(f * f for f in floats) - 1) < 0.01


def test_sdk_default_credentials_with_session_token(gateway, mock, test_id):
    r = gateway.client().chat.completions.create(model="claude-sdk-env", messages=HELLO,
                                                 extra_headers={"x-test-id": test_id})
    assert r.choices[0].message.content == "echo: hello there"
    sent = only(mock.requests(test_id))
    signed_by(sent, region="eu-west-3")
    assert sent["headers"]["x-amz-security-token"] == "e2e-session-token"
    assert "x-amz-security-token" in sent["headers"]["authorization"], "the session token is signed"


@pytest.mark.parametrize("stream", [False, True])
def test_wrong_secret_is_refused_by_the_signature_check(gateway, mock, test_id, stream):
    with pytest.raises(openai.PermissionDeniedError) as e:
        r = gateway.client().chat.completions.create(model="claude-wrong-secret", messages=HELLO, stream=stream,
                                                     extra_headers={"x-test-id": test_id})
        list(r)
    assert e.value.status_code == 403
    assert e.value.body["message"].startswith("The request signature we calculated does not match")
    assert e.value.body["type"] == "permission_error"
    assert "not-the-secret" not in json.dumps(e.value.body)
    assert len(mock.requests(test_id)) == 1


@pytest.mark.parametrize("status,message", [
    (429, "Too many requests, please wait before trying again."),
    (503, "Bedrock is unable to process your request."),
])
def test_bedrocks_error_message_is_kept(gateway, status, message):
    with pytest.raises(openai.APIStatusError) as e:
        gateway.client().chat.completions.create(model="claude", messages=HELLO,
                                                 extra_headers={"x-mock-status": str(status)})
    assert e.value.status_code == status
    assert e.value.body["message"] == message


def test_unsupported_parameter_is_refused_before_bedrock(gateway, mock, test_id):
    with pytest.raises(openai.BadRequestError) as e:
        gateway.client().chat.completions.create(model="claude", messages=HELLO, n=2,
                                                 extra_headers={"x-test-id": test_id})
    assert e.value.body["param"] == "n"
    assert mock.requests(test_id) == []


@pytest.mark.parametrize("exception,code", [("throttlingException", "throttlingException"),
                                            ("modelStreamErrorException", "modelStreamErrorException")])
def test_mid_stream_exception_becomes_an_sdk_error(gateway, exception, code):
    text = ""
    with pytest.raises(openai.APIError) as e:
        for c in gateway.client().chat.completions.create(
                model="claude", messages=HELLO, stream=True,
                extra_headers={"x-mock-bedrock-exception": exception}):
            text += c.choices[0].delta.content or "" if c.choices else ""
    assert text == "echo: ", "the text before the exception arrives"
    assert e.value.message == f"Mock {exception} in the middle of the stream."
    assert e.value.code == code
