"""Coming from LiteLLM: a LiteLLM proxy config.yaml whose providers point at the mock is turned
into a filter configuration by `switchboard import litellm`, rendered and served by Envoy, and the
official `openai` SDK gets answers from every imported model, through an alias and through a
fallback (one provider answers 429).
"""

import re
import subprocess

import pytest

from common import HELLO
from harness import CLI, LOGS, MOCK_AWS_KEY_ID, MOCK_AWS_SECRET, serving

LITELLM_CONFIG = """
model_list:
  - model_name: gpt-4o
    litellm_params:
      model: openai/gpt-4o-2024-08-06
      api_base: ${MOCK}/v1
      api_key: os.environ/SB_TEST_OPENAI_KEY
      weight: 3
  - model_name: gpt-4o
    litellm_params:
      model: azure/my-gpt4o
      api_base: ${MOCK}
      api_key: os.environ/SB_TEST_AZURE_KEY
      api_version: "2024-10-21"
      weight: 1
  - model_name: claude
    litellm_params:
      model: anthropic/claude-sonnet-4-5
      api_base: ${MOCK}
      api_key: sk-ant-written-in-the-file
      max_tokens: 1024
  - model_name: bedrock-claude
    litellm_params:
      model: bedrock/converse/anthropic.claude-3-5-sonnet-20240620-v1:0
      aws_region_name: us-east-1
      aws_bedrock_runtime_endpoint: ${MOCK}
      aws_access_key_id: os.environ/SB_TEST_AWS_KEY_ID
      aws_secret_access_key: os.environ/SB_TEST_AWS_SECRET
  - model_name: gemini-flash
    litellm_params:
      model: gemini/gemini-2.5-flash
      api_base: ${MOCK}
      api_key: os.environ/SB_TEST_GEMINI_KEY
  - model_name: vertex-gemini
    litellm_params:
      model: vertex_ai/gemini-2.5-pro
      api_base: ${MOCK}
      vertex_project: os.environ/SB_TEST_GCP_PROJECT
      vertex_location: us-central1
  - model_name: command-r
    litellm_params:
      model: cohere_chat/command-r
      api_base: ${MOCK}
      api_key: os.environ/SB_TEST_COHERE_KEY
  - model_name: llama
    litellm_params:
      model: groq/llama-3.1-8b-instant
      api_base: ${MOCK}/openai/v1
      api_key: os.environ/SB_TEST_GROQ_KEY
  - model_name: flaky-gpt
    litellm_params:
      model: openai/gpt-4o-mini
      api_base: ${MOCK}/mock/status=429/v1
      api_key: os.environ/SB_TEST_OPENAI_KEY
router_settings:
  model_group_alias: {"gpt-4": "gpt-4o"}
  fallbacks: [{"flaky-gpt": ["claude"]}]
  num_retries: 2
  timeout: 30
litellm_settings:
  drop_params: true
  success_callback: ["langfuse"]
general_settings:
  master_key: sk-1234
"""

LITERAL_KEY = "sk-ant-written-in-the-file"

ENV = {
    "SB_TEST_OPENAI_KEY": "sk-openai-from-env",
    "SB_TEST_AZURE_KEY": "azure-key-from-env",
    # The session mock's AWS credentials (it checks SigV4).
    "SB_TEST_AWS_KEY_ID": MOCK_AWS_KEY_ID,
    "SB_TEST_AWS_SECRET": MOCK_AWS_SECRET,
    "SB_TEST_GEMINI_KEY": "gemini-key-from-env",
    "SB_TEST_GCP_PROJECT": "proj-from-env",
    "VERTEX_ACCESS_TOKEN": "ya29.vertex-token-from-env",
    "SB_TEST_COHERE_KEY": "co-key-from-env",
    "SB_TEST_GROQ_KEY": "gsk-from-env",
}

# (model, upstream path, auth header, its value)
MODELS = [
    ("claude", "/v1/messages", "x-api-key", "sk-ant-from-envoy-env"),
    ("bedrock-claude", "/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse", "authorization", None),
    ("gemini-flash", "/v1beta/models/gemini-2.5-flash:generateContent", "x-goog-api-key", "gemini-key-from-env"),
    ("vertex-gemini",
     "/v1/projects/proj-from-env/locations/us-central1/publishers/google/models/gemini-2.5-pro:generateContent",
     "authorization", "Bearer ya29.vertex-token-from-env"),
    ("command-r", "/v2/chat", "authorization", "Bearer co-key-from-env"),
    ("llama", "/openai/v1/chat/completions", "authorization", "Bearer gsk-from-env"),
]


@pytest.fixture(scope="module")
def imported(mock):
    """`switchboard import litellm` over the LiteLLM file: (configuration, stderr, exit status)."""
    LOGS.mkdir(parents=True, exist_ok=True)
    source = LOGS / f"litellm-{mock.port}.config.yaml"
    source.write_text(LITELLM_CONFIG.replace("${MOCK}", mock.url))
    written = LOGS / f"litellm-{mock.port}.switchboard.yaml"
    done = subprocess.run([str(CLI), "import", "litellm", str(source), "-o", str(written)],
                          capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"})
    return written.read_text(), done.stderr, done.returncode


@pytest.fixture(scope="module")
def literal_key_env(imported):
    """The variable the report says the literal Anthropic key is now read from."""
    _, report, _ = imported
    line = next(l for l in report.splitlines() if l.startswith("left out: model_list[2].litellm_params.api_key:"))
    return re.search(r"\{env: (\w+)\}", line).group(1)


@pytest.fixture(scope="module")
def served(imported, literal_key_env):
    config, _, _ = imported
    with serving(config, name="litellm-import", env={**ENV, literal_key_env: "sk-ant-from-envoy-env"}) as gw:
        yield gw


def test_the_report_lists_what_was_left_out_and_the_exit_status_says_so(imported):
    config, report, status = imported
    assert status == 3, report
    left_out = [l for l in report.splitlines() if l.startswith("left out: ")]
    paths = [l.split(": ")[1] for l in left_out]
    assert paths == [
        "model_list[2].litellm_params.api_key",
        "model_list[5].litellm_params",  # Vertex: Google credentials, not a refreshed token
        "litellm_settings.success_callback",
        "general_settings.master_key",
    ], report
    assert report.splitlines()[-1].endswith("8 models, 9 providers, 9 deployments; 4 item(s) left out (exit status 3)")
    for secret in (LITERAL_KEY, "sk-1234"):
        assert secret not in config and secret not in report


def test_the_configuration_carries_the_routing(imported):
    import yaml

    config = yaml.safe_load(imported[0])
    models = {m["name"]: m for m in config["models"]}
    assert list(models) == ["gpt-4o", "claude", "bedrock-claude", "gemini-flash", "vertex-gemini",
                            "command-r", "llama", "flaky-gpt"]
    assert models["gpt-4o"]["aliases"] == ["gpt-4"]
    assert [d["weight"] for d in models["gpt-4o"]["deployments"]] == [3, 1]
    assert models["flaky-gpt"]["fallbacks"] == ["claude"]
    assert models["claude"]["max_tokens"] == 1024
    assert all(m["drop_unsupported_params"] for m in models.values())
    assert config["options"] == {"request_timeout": "30s", "retries": 2}


@pytest.mark.parametrize("model,path,auth_header,auth_value", MODELS)
def test_every_imported_model_answers(served, mock, test_id, model, path, auth_header, auth_value):
    r = served.client().chat.completions.create(model=model, messages=HELLO, extra_headers={"x-test-id": test_id})
    assert r.choices[0].message.content == "echo: hello there"
    (sent,) = mock.requests(test_id)
    assert sent["path"] == path
    if auth_value is None:  # SigV4, checked by the mock against its credentials
        assert sent["headers"][auth_header].startswith(f"AWS4-HMAC-SHA256 Credential={MOCK_AWS_KEY_ID}/")
    else:
        assert sent["headers"][auth_header] == auth_value


def test_deployments_of_one_model_share_its_traffic_by_weight(served, mock, test_id):
    client = served.client()
    for _ in range(12):
        r = client.chat.completions.create(model="gpt-4o", messages=HELLO, extra_headers={"x-test-id": test_id})
        assert r.choices[0].message.content == "echo: hello there"
    paths = [s["path"] for s in mock.requests(test_id)]
    openai_calls = paths.count("/v1/chat/completions")
    azure_calls = sum(p.startswith("/openai/deployments/my-gpt4o/chat/completions") for p in paths)
    assert openai_calls + azure_calls == 12 and openai_calls > azure_calls > 0, paths


def test_the_alias_reaches_its_model(served, mock, test_id):
    r = served.client().chat.completions.create(model="gpt-4", messages=HELLO, extra_headers={"x-test-id": test_id})
    assert r.choices[0].message.content == "echo: hello there"
    (sent,) = mock.requests(test_id)
    assert sent["body"]["model"] in ("gpt-4o-2024-08-06", "my-gpt4o")


def test_a_429_falls_back_as_litellm_would(served, mock, test_id):
    raw = served.client().chat.completions.with_raw_response.create(
        model="flaky-gpt", messages=HELLO, extra_headers={"x-test-id": test_id})
    assert raw.parse().choices[0].message.content == "echo: hello there"
    assert 'provider="anthropic"' in raw.headers["x-switchboard"]
    assert "attempts=2" in raw.headers["x-switchboard"]
    first, second = mock.requests(test_id)
    assert first["path"].startswith("/v1/chat/completions") and first["body"]["model"] == "gpt-4o-mini"
    assert second["path"] == "/v1/messages"
    assert second["headers"]["x-api-key"] == "sk-ant-from-envoy-env"
    assert second["body"]["model"] == "claude-sonnet-4-5" and second["body"]["max_tokens"] == 1024


def test_drop_params_drops_what_the_provider_cannot_take(served, mock, test_id):
    r = served.client().chat.completions.create(model="bedrock-claude", messages=HELLO, logprobs=True,
                                                 extra_headers={"x-test-id": test_id})
    assert r.choices[0].message.content == "echo: hello there"
    (sent,) = mock.requests(test_id)
    assert "logprobs" not in sent["body"]


def test_models_are_listed(served):
    listed = {m.id for m in served.client().models.list()}
    assert listed == {"gpt-4o", "claude", "bedrock-claude", "gemini-flash", "vertex-gemini", "command-r",
                      "llama", "flaky-gpt"}
