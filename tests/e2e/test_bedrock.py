"""AWS Bedrock end to end: Converse, ConverseStream (binary eventstream), InvokeModel embeddings,
SigV4 and cross-provider fallback.

Real Envoy, the bootstrap from `switchboard render`, the mock speaking Bedrock's wire format and
checking every request's SigV4 signature against its own credentials, the official `openai` SDK.
"""

import base64
import json
import struct

import openai
import pytest

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
  bedrock-429: {{kind: bedrock, region: us-east-1, base_url: "${{MOCK}}/mock/status=429",
                access_key_id: {{env: SB_TEST_AWS_KEY_ID}}, secret_access_key: {{env: SB_TEST_AWS_SECRET}}}}
  bedrock-503: {{kind: bedrock, region: us-east-1, base_url: "${{MOCK}}/mock/status=503",
                access_key_id: {{env: SB_TEST_AWS_KEY_ID}}, secret_access_key: {{env: SB_TEST_AWS_SECRET}}}}
  openai: {{kind: openai, base_url: "${{MOCK}}/v1", api_key: sk-openai}}
  openai-429: {{kind: openai, base_url: "${{MOCK}}/mock/status=429/v1", api_key: sk-429}}
models:
  - {{name: claude, deployments: [{{provider: bedrock, model: "{CLAUDE}"}}], max_tokens: 1024}}
  - {{name: claude-sdk-env, deployments: [{{provider: bedrock-sdk-env, model: "{CLAUDE}"}}]}}
  - {{name: claude-wrong-secret, deployments: [{{provider: bedrock-wrong-secret, model: "{CLAUDE}"}}]}}
  - {{name: titan, deployments: [{{provider: bedrock, model: "amazon.titan-embed-text-v2:0"}}]}}
  - {{name: cohere-embed, deployments: [{{provider: bedrock, model: cohere.embed-english-v3}}]}}
  - {{name: gpt, deployments: [{{provider: openai, model: gpt-4o-mini}}]}}
  - {{name: bedrock-then-openai, deployments: [{{provider: bedrock-429, model: "{CLAUDE}"}}], fallbacks: [gpt]}}
  - {{name: openai-then-bedrock, deployments: [{{provider: openai-429, model: p0-model}}], fallbacks: [claude]}}
  - {{name: only-bedrock-429, deployments: [{{provider: bedrock-429, model: "{CLAUDE}"}}]}}
  - {{name: only-bedrock-503, deployments: [{{provider: bedrock-503, model: "{CLAUDE}"}}]}}
"""

ENV = {
    "SB_TEST_AWS_KEY_ID": AWS_KEY_ID,
    "SB_TEST_AWS_SECRET": AWS_SECRET,
    "AWS_ACCESS_KEY_ID": AWS_KEY_ID,
    "AWS_SECRET_ACCESS_KEY": AWS_SECRET,
    "AWS_SESSION_TOKEN": "e2e-session-token",
}

HELLO = [{"role": "user", "content": "hello there"}]
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


@pytest.fixture(scope="module")
def mock():
    """A mock of this module's own, checking signatures against the test credentials."""
    m = Mock("--aws-access-key-id", AWS_KEY_ID, "--aws-secret-access-key", AWS_SECRET)
    yield m
    m.stop()


def only(requests):
    assert len(requests) == 1, requests
    return requests[0]


def signed_by(sent, region="us-east-1"):
    auth = sent["headers"]["authorization"]
    date = sent["headers"]["x-amz-date"]
    assert auth.startswith(f"AWS4-HMAC-SHA256 Credential={AWS_KEY_ID}/{date[:8]}/{region}/bedrock/aws4_request, "), auth
    assert "sk-client" not in json.dumps(sent["headers"]), "the client's key must not reach the provider"
    assert AWS_SECRET not in json.dumps(sent), "the secret must never be sent"


def test_chat_json(gateway, mock, test_id):
    r = gateway.client().chat.completions.create(
        model="claude",
        messages=[{"role": "system", "content": "Be brief."}, *HELLO],
        temperature=0.2, top_p=0.9, stop=["END"],
        extra_headers={"x-test-id": test_id},
    )
    assert r.choices[0].message.content == "echo: hello there"
    assert r.choices[0].finish_reason == "stop"
    assert r.model == CLAUDE
    assert r.usage.prompt_tokens == 10 and r.usage.completion_tokens == 3 and r.usage.total_tokens == 13
    sent = only(mock.requests(test_id))
    assert sent["path"] == f"{CLAUDE_PATH}/converse"
    signed_by(sent)
    assert sent["body"] == {
        "system": [{"text": "Be brief."}],
        "messages": [{"role": "user", "content": [{"text": "hello there"}]}],
        "inferenceConfig": {"maxTokens": 1024, "temperature": 0.2, "topP": 0.9, "stopSequences": ["END"]},
    }


@pytest.mark.parametrize("include_usage", [False, True])
def test_chat_stream(gateway, mock, test_id, include_usage):
    extra = {"stream_options": {"include_usage": True}} if include_usage else {}
    chunks = list(gateway.client().chat.completions.create(
        model="claude", messages=HELLO, stream=True, extra_headers={"x-test-id": test_id}, **extra,
    ))
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "echo: hello there"
    finish = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finish == ["stop"]
    if include_usage:
        assert chunks[-1].choices == [] and chunks[-1].usage.total_tokens == 8
    else:
        assert all(c.usage is None for c in chunks), "usage chunk shown to a client that did not ask"
    sent = only(mock.requests(test_id))
    assert sent["path"] == f"{CLAUDE_PATH}/converse-stream"
    signed_by(sent)
    assert "stream" not in sent["body"] and "stream_options" not in sent["body"]


def test_tool_calls_json_stream_and_results(gateway, mock, test_id):
    client = gateway.client()
    msgs = [{"role": "user", "content": "weather in Paris?"}]
    r = client.chat.completions.create(model="claude", messages=msgs, tools=[WEATHER_TOOL],
                                       tool_choice="required", extra_headers={"x-test-id": test_id})
    call = r.choices[0].message.tool_calls[0]
    assert r.choices[0].finish_reason == "tool_calls"
    assert call.id == "call_mock_1" and call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "mock"}

    stream = client.chat.completions.create(model="claude", messages=msgs, tools=[WEATHER_TOOL],
                                            stream=True, extra_headers={"x-test-id": test_id})
    ids, names, args, finish = [], [], "", None
    for c in stream:
        if not c.choices:
            continue
        finish = c.choices[0].finish_reason or finish
        for tc in c.choices[0].delta.tool_calls or []:
            assert tc.index == 0
            ids += [tc.id] if tc.id else []
            names += [tc.function.name] if tc.function.name else []
            args += tc.function.arguments or ""
    assert ids == ["call_mock_1"] and names == ["get_weather"] and json.loads(args) == {"city": "mock"}
    assert finish == "tool_calls"

    # The tool result goes back as a toolResult block in the user turn after the toolUse turn.
    follow_up = [*msgs, r.choices[0].message.model_dump(exclude_none=True),
                 {"role": "tool", "tool_call_id": call.id, "content": "18C and sunny"}]
    r2 = client.chat.completions.create(model="claude", messages=follow_up, tools=[WEATHER_TOOL],
                                        extra_headers={"x-test-id": test_id})
    assert r2.choices[0].message.content == "tool result: 18C and sunny"
    sent = mock.requests(test_id)
    assert sent[0]["body"]["toolConfig"] == {
        "tools": [{"toolSpec": {"name": "get_weather", "description": "Weather for a city",
                                "inputSchema": {"json": WEATHER_TOOL["function"]["parameters"]}}}],
        "toolChoice": {"any": {}},
    }
    assert sent[2]["body"]["messages"][1:] == [
        {"role": "assistant", "content": [
            {"toolUse": {"toolUseId": "call_mock_1", "name": "get_weather", "input": {"city": "mock"}}}]},
        {"role": "user", "content": [
            {"toolResult": {"toolUseId": "call_mock_1", "content": [{"text": "18C and sunny"}]}}]},
    ]


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


def test_client_aws_headers_do_not_reach_bedrock(gateway, mock, test_id):
    r = gateway.client().chat.completions.create(
        model="claude", messages=HELLO,
        extra_headers={"x-test-id": test_id, "x-amz-security-token": "client-token",
                       "x-amz-date": "19990101T000000Z", "x-amz-content-sha256": "UNSIGNED-PAYLOAD"},
    )
    assert r.choices[0].message.content == "echo: hello there"
    sent = only(mock.requests(test_id))
    assert "x-amz-security-token" not in sent["headers"] and "x-amz-content-sha256" not in sent["headers"]
    assert sent["headers"]["x-amz-date"] != "19990101T000000Z"


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


@pytest.mark.parametrize("stream", [False, True])
def test_bedrock_throttled_falls_back_to_openai(gateway, mock, test_id, stream):
    r = gateway.client().chat.completions.create(model="bedrock-then-openai", messages=HELLO, stream=stream,
                                                 extra_headers={"x-test-id": test_id})
    text = "".join(c.choices[0].delta.content or "" for c in r if c.choices) if stream \
        else r.choices[0].message.content
    assert text == "echo: hello there"
    first, second = mock.requests(test_id)
    assert first["path"] == f"{CLAUDE_PATH}/converse" + ("-stream" if stream else "")
    assert first["raw_path"].startswith("/mock/status=429/model/")
    signed_by(first)
    # Translated afresh for OpenAI: nothing of the Bedrock attempt leaks.
    assert second["path"] == "/v1/chat/completions"
    assert second["headers"]["authorization"] == "Bearer sk-openai"
    assert not any(h.startswith("x-amz-") for h in second["headers"])
    assert second["body"]["model"] == "gpt-4o-mini" and second["body"]["messages"] == HELLO


@pytest.mark.parametrize("stream", [False, True])
def test_openai_throttled_falls_back_to_bedrock(gateway, mock, test_id, stream):
    r = gateway.client().chat.completions.create(model="openai-then-bedrock", messages=HELLO, stream=stream,
                                                 extra_headers={"x-test-id": test_id})
    text = "".join(c.choices[0].delta.content or "" for c in r if c.choices) if stream \
        else r.choices[0].message.content
    assert text == "echo: hello there"
    first, second = mock.requests(test_id)
    assert first["path"] == "/v1/chat/completions" and first["body"]["model"] == "p0-model"
    assert second["path"] == f"{CLAUDE_PATH}/converse" + ("-stream" if stream else "")
    signed_by(second)
    assert second["headers"].get("authorization", "").startswith("AWS4-HMAC-SHA256 ")


@pytest.mark.parametrize("model,exc,status,message", [
    ("only-bedrock-429", openai.RateLimitError, 429, "Too many requests, please wait before trying again."),
    ("only-bedrock-503", openai.InternalServerError, 503, "Bedrock is unable to process your request."),
])
def test_bedrock_errors_raise_the_right_sdk_exception(gateway, model, exc, status, message):
    with pytest.raises(exc) as e:
        gateway.client().chat.completions.create(model=model, messages=HELLO)
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


def test_broken_streams_and_answers(gateway):
    client = gateway.client()
    for directive in ["x-mock-cut", "x-mock-malformed"]:
        with pytest.raises(openai.APIError) as e:
            for _ in client.chat.completions.create(model="claude", messages=HELLO, stream=True,
                                                    extra_headers={directive: "1"}):
                pass
        assert e.value.message
    with pytest.raises(openai.InternalServerError) as e:
        client.chat.completions.create(model="claude", messages=HELLO, extra_headers={"x-mock-malformed": "1"})
    assert e.value.status_code == 502
    assert gateway.alive()
