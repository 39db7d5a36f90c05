"""The coding agents pointed straight at the mock, no gateway: Claude Code at its Anthropic
endpoint, Codex CLI at its Responses endpoint. Proves the agent harness (agents.py) and the
mock's side of an agent turn: a plain answer, one tool run and its result, an error."""

from __future__ import annotations

import json

import pytest

from agents import MARKER_COMMAND, MARKER_OUTPUT, run_claude, run_codex
from harness import MOCK, Mock

USAGE = "prompt:100;completion:7;cached:40"


@pytest.fixture(scope="module")
def agent_mock():
    """The mock alone (these tests need neither Envoy nor the Wasm module)."""
    if not MOCK.exists():
        pytest.skip(f"{MOCK} is not built (cargo build --release -p switchboard-mock)")
    m = Mock()
    yield m
    m.stop()


def posts(mock: Mock, test_id: str, path: str) -> list[dict]:
    return [r for r in mock.requests(test_id) if r["method"] == "POST" and r["path"] == path]


# ---------------------------------------------------------------------------------------------
# Claude Code -> Anthropic Messages API

def test_claude_plain_turn(agent_mock, test_id):
    run = run_claude(agent_mock.url, "claude-mock", "say hello", headers={
        "x-test-id": test_id, "x-mock-reply": "hello from the mock", "x-mock-usage": USAGE,
    })
    assert run.exit_code == 0, run.describe()
    assert run.answer == "hello from the mock"
    assert run.result["is_error"] is False
    # The stream's usage as Claude Code read it: input excludes the 40 cached tokens.
    assert run.usage["input_tokens"] == 60
    assert run.usage["cache_read_input_tokens"] == 40
    assert run.usage["output_tokens"] == 7

    (request,) = posts(agent_mock, test_id, "/v1/messages?beta=true")
    assert request["headers"]["x-api-key"] == "sk-ant-agent-test"
    assert request["headers"]["anthropic-version"] == "2023-06-01"
    assert request["headers"]["user-agent"].startswith("claude-cli/2.1.328")
    body = request["body"]
    assert body["model"] == "claude-mock"
    assert body["stream"] is True
    assert body["thinking"]["type"] == "adaptive"
    assert "Bash" in [tool["name"] for tool in body["tools"]]
    first_user = next(m for m in body["messages"] if m["role"] == "user")
    assert first_user["content"][-1]["text"] == "say hello"


def test_claude_tool_turn(agent_mock, test_id):
    run = run_claude(agent_mock.url, "claude-mock", "run the marker command", headers={
        "x-test-id": test_id,
        "x-mock-tool-call": "Bash " + json.dumps({"command": MARKER_COMMAND, "description": "Print a marker"}),
    })
    assert run.exit_code == 0, run.describe()
    assert run.answer == f"tool result: {MARKER_OUTPUT}"
    assert run.result["num_turns"] == 2

    _, answered = posts(agent_mock, test_id, "/v1/messages?beta=true")
    # The follow-up carries the mock's (signed, thinking-first) tool call and the tool's output.
    call_turn, result_turn = answered["body"]["messages"][-2:]
    assert call_turn["role"] == "assistant"
    assert [b["type"] for b in call_turn["content"]] == ["thinking", "tool_use"]
    assert call_turn["content"][0]["signature"]
    tool_use = call_turn["content"][1]
    assert tool_use["name"] == "Bash"
    assert tool_use["input"]["command"] == MARKER_COMMAND
    (tool_result,) = result_turn["content"]
    assert tool_result["type"] == "tool_result"
    assert tool_result["tool_use_id"] == tool_use["id"]
    assert tool_result["is_error"] is False
    assert MARKER_OUTPUT in json.dumps(tool_result["content"])


def test_claude_reports_an_api_error(agent_mock, test_id):
    run = run_claude(agent_mock.url, "claude-mock", "say hello", headers={
        "x-test-id": test_id, "x-mock-status": "400",
    })
    assert run.exit_code == 1, run.describe()
    assert run.result["is_error"] is True
    assert run.result["api_error_status"] == 400
    assert "Invalid request (mock error)" in run.answer
    assert posts(agent_mock, test_id, "/v1/messages?beta=true")


# ---------------------------------------------------------------------------------------------
# Codex CLI -> OpenAI Responses API

def test_codex_plain_turn(agent_mock, test_id):
    run = run_codex(agent_mock.url, "gpt-mock", "say hello", headers={
        "x-test-id": test_id, "x-mock-reply": "hello from the mock", "x-mock-usage": USAGE,
    })
    assert run.exit_code == 0, run.describe()
    assert run.answer == "hello from the mock"
    assert run.usage["input_tokens"] == 100
    assert run.usage["cached_input_tokens"] == 40
    assert run.usage["output_tokens"] == 7
    # Codex asks for a reasoning summary: the mock's shows up as a reasoning item.
    reasoning = [e["item"]["text"] for e in run.events
                 if e["type"] == "item.completed" and e["item"]["type"] == "reasoning"]
    assert reasoning == ["The user wrote: say hello"]

    (request,) = posts(agent_mock, test_id, "/v1/responses")
    assert request["headers"]["authorization"] == "Bearer sk-agent-test"
    assert request["headers"]["user-agent"].startswith("codex_exec/0.169.0")
    body = request["body"]
    assert body["model"] == "gpt-mock"
    assert body["stream"] is True
    assert body["store"] is False
    assert "exec_command" in [t.get("name") for t in body["tools"] if t["type"] == "function"]
    assert body["input"][-1]["role"] == "user"
    assert body["input"][-1]["content"] == [{"type": "input_text", "text": "say hello"}]


def test_codex_tool_turn(agent_mock, test_id):
    run = run_codex(agent_mock.url, "gpt-mock", "run the marker command", headers={
        "x-test-id": test_id,
        "x-mock-tool-call": "exec_command " + json.dumps({"cmd": MARKER_COMMAND}),
    })
    assert run.exit_code == 0, run.describe()
    (command,) = run.commands()
    assert MARKER_COMMAND in command["command"]
    assert command["exit_code"] == 0
    assert command["aggregated_output"].strip() == MARKER_OUTPUT
    assert run.answer.startswith("tool result: ")
    assert MARKER_OUTPUT in run.answer

    asked, answered = posts(agent_mock, test_id, "/v1/responses")
    assert asked["body"]["input"][-1]["role"] == "user"
    # The follow-up sends back the mock's reasoning (with its encrypted content), its call, and
    # the command's output for that call.
    reasoning, call, output = answered["body"]["input"][-3:]
    assert reasoning["type"] == "reasoning"
    assert reasoning["encrypted_content"]
    assert call["type"] == "function_call"
    assert call["name"] == "exec_command"
    assert json.loads(call["arguments"]) == {"cmd": MARKER_COMMAND}
    assert output["type"] == "function_call_output"
    assert output["call_id"] == call["call_id"]
    assert MARKER_OUTPUT in output["output"]


def test_codex_reports_an_api_error(agent_mock, test_id):
    run = run_codex(agent_mock.url, "gpt-mock", "say hello", headers={
        "x-test-id": test_id, "x-mock-status": "400",
    })
    assert run.exit_code == 1, run.describe()
    assert run.answer is None
    assert any(e["type"] == "turn.failed" for e in run.events), run.describe()
    # No retries are configured: one request.
    assert len(posts(agent_mock, test_id, "/v1/responses")) == 1
