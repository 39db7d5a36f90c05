"""The real coding agents as test clients: Claude Code (Anthropic Messages API) and Codex CLI
(OpenAI Responses API), run non-interactively and offline against a server (the gateway or the
mock).

They are pinned by tests/package.json and installed into .tools/agents by `ensure_agents` in
scripts/lib.sh; a test using them is skipped, saying so, when they are missing, and fails
instead when SWITCHBOARD_REQUIRE_AGENTS=1 (as scripts/test.sh sets it, having installed them).

Each run gets a clean environment (no variable of the caller's reaches the agent, so no real
key either), a throwaway home and config directory, and a fresh working directory outside any
Git repository; all are removed afterwards. Extra HTTP headers (`x-test-id`, `x-mock-*`
directives) go on every request the agent sends, so a test can find its requests in the mock
and steer it. To make an agent run one tool, send the mock's `tool_call` directive naming the
agent's shell tool (`x-mock-tool-call: Bash {"command": "..."}` for Claude Code,
`exec_command {"cmd": "..."}` for Codex): the agent runs it and sends the output back, which
the mock answers with `tool result: <output>`.

Unless the headers say otherwise, `x-mock-tool-call: none` is sent: the mock's default, calling
the first tool offered, has Claude Code start a subagent (its first tool is `Agent`) whose
request does the same, without end. (A header directive beats the same directive in a
`/mock/...` path prefix: pass `headers={"x-mock-tool-call": None}` to leave it out.)
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
AGENTS_BIN = ROOT / ".tools/agents/node_modules/.bin"
CLAUDE = AGENTS_BIN / "claude"
CODEX = AGENTS_BIN / "codex"
# Agent state (Codex refuses to set up its helpers under the system temp directory).
STATE = ROOT / ".run/agents"
DEFAULT_TIMEOUT_S = 60.0
# What the agents send unless told otherwise (see above).
DEFAULT_HEADERS = {"x-mock-tool-call": "none"}
# Tools Claude Code may run without asking (in print mode it would otherwise refuse them).
CLAUDE_ALLOWED_TOOLS = ("Bash",)
# A command for a tool turn: shell arithmetic, so the answer can only hold 42 if a shell really
# ran it.
MARKER_COMMAND = "echo sb-tool-$((6*7))"
MARKER_OUTPUT = "sb-tool-42"


@dataclass
class AgentRun:
    """What one agent run did."""

    exit_code: int | None  # None when it timed out (and was killed)
    stdout: str
    stderr: str
    seconds: float
    # The agent's final answer, from its machine-readable output (None if it gave none).
    answer: str | None
    # Token usage as the agent understood it: Claude Code's result `usage` (Anthropic's field
    # names), Codex's `turn.completed` usage (summed over the turn's requests).
    usage: dict | None
    # Claude Code: its `--output-format json` result object. Codex: None.
    result: dict | None = None
    # Codex: its `--json` events, in order. Claude Code: empty.
    events: list[dict] = field(default_factory=list)

    @property
    def timed_out(self) -> bool:
        return self.exit_code is None

    def commands(self) -> list[dict]:
        """Codex's finished shell commands (`command`, `aggregated_output`, `exit_code`)."""
        return [
            e["item"]
            for e in self.events
            if e.get("type") == "item.completed" and e.get("item", {}).get("type") == "command_execution"
        ]

    def describe(self) -> str:
        """For assertion messages."""
        return f"exit {self.exit_code} after {self.seconds:.1f}s\nstdout:\n{self.stdout}\nstderr:\n{self.stderr}"


def _require(binary: Path, name: str) -> None:
    if os.access(binary, os.X_OK):
        return
    message = f"{name} is not installed at {binary} (run `. scripts/lib.sh && ensure_agents`)"
    if os.environ.get("SWITCHBOARD_REQUIRE_AGENTS") == "1":
        pytest.fail(message)
    pytest.skip(message)


def _base_env(home: Path) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "TERM": "dumb",
        "NO_COLOR": "1",
    }


def _headers(headers: dict[str, str | None] | None) -> dict[str, str]:
    """The defaults, overridden by `headers`; a None value removes a header."""
    merged = DEFAULT_HEADERS | (headers or {})
    return {k: v for k, v in merged.items() if v is not None}


def _run(argv: list[str], env: dict[str, str], cwd: Path, timeout: float):
    """Runs the agent in its own process group, so a timeout also ends what it started."""
    started = time.monotonic()
    proc = subprocess.Popen(
        argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
        code = proc.returncode
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        stdout, stderr = proc.communicate()
        code = None
    return code, stdout.decode(errors="replace"), stderr.decode(errors="replace"), time.monotonic() - started


class _Scratch:
    """A state directory under .run/agents and a working directory outside any Git repository."""

    def __enter__(self):
        STATE.mkdir(parents=True, exist_ok=True)
        self.state = Path(tempfile.mkdtemp(prefix="agent-", dir=STATE))
        self.work = Path(tempfile.mkdtemp(prefix="agent-work-"))
        return self

    def __exit__(self, *exc):
        shutil.rmtree(self.state, ignore_errors=True)
        shutil.rmtree(self.work, ignore_errors=True)


def run_claude(url: str, model: str, prompt: str, *, headers: dict[str, str | None] | None = None,
               api_key: str = "sk-ant-agent-test", timeout: float = DEFAULT_TIMEOUT_S, retries: int = 0,
               allowed_tools: tuple[str, ...] = CLAUDE_ALLOWED_TOOLS) -> AgentRun:
    """`claude -p PROMPT --model MODEL` against `url`, the server root (Claude Code appends
    `/v1/messages`; a `/mock/<directives>` prefix works). `retries`: how often it retries a
    failed request (its own default is 10, with backoff)."""
    _require(CLAUDE, "Claude Code")
    with _Scratch() as scratch:
        env = _base_env(scratch.state) | {
            "CLAUDE_CONFIG_DIR": str(scratch.state / ".claude"),
            "ANTHROPIC_BASE_URL": url,
            "ANTHROPIC_API_KEY": api_key,
            "CLAUDE_CODE_MAX_RETRIES": str(retries),
            # One header per line.
            "ANTHROPIC_CUSTOM_HEADERS": "\n".join(f"{k}: {v}" for k, v in _headers(headers).items()),
            # No telemetry, error reports, update checks or other calls home.
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
            "DISABLE_TELEMETRY": "1",
            "DISABLE_ERROR_REPORTING": "1",
            "DISABLE_AUTOUPDATER": "1",
        }
        argv = [str(CLAUDE), "-p", prompt, "--model", model, "--output-format", "json",
                "--no-session-persistence"]
        if allowed_tools:
            argv += ["--allowedTools", ",".join(allowed_tools)]
        code, stdout, stderr, seconds = _run(argv, env, scratch.work, timeout)
    try:
        result = json.loads(stdout)
    except ValueError:
        result = None
    if not isinstance(result, dict):
        result = None
    return AgentRun(
        exit_code=code, stdout=stdout, stderr=stderr, seconds=seconds,
        answer=result.get("result") if result else None,
        usage=result.get("usage") if result else None,
        result=result,
    )


def _toml_string(text: str) -> str:
    # A JSON string (ASCII, escaped) is a valid TOML basic string.
    return json.dumps(text)


def codex_config(url: str, headers: dict[str, str], retries: int = 0) -> str:
    """Codex's config.toml: one provider speaking the Responses API at `url` + `/v1`, sending
    `headers`, retrying `retries` times, with no WebSocket attempt, and nothing sent home."""
    table = ", ".join(f"{_toml_string(k)} = {_toml_string(v)}" for k, v in headers.items())
    return f"""\
model_provider = "switchboard"
check_for_update_on_startup = false

[analytics]
enabled = false

[feedback]
enabled = false

[history]
persistence = "none"

[otel]
exporter = "none"

[model_providers.switchboard]
name = "Switchboard"
base_url = {_toml_string(url.rstrip("/") + "/v1")}
env_key = "SWITCHBOARD_AGENT_KEY"
wire_api = "responses"
request_max_retries = {retries}
stream_max_retries = {retries}
supports_websockets = false
http_headers = {{ {table} }}
"""


def run_codex(url: str, model: str, prompt: str, *, headers: dict[str, str | None] | None = None,
              api_key: str = "sk-agent-test", timeout: float = DEFAULT_TIMEOUT_S, retries: int = 0) -> AgentRun:
    """`codex exec -m MODEL PROMPT` against `url`, the server root (Codex is given `url/v1` and
    appends `/responses`). Shell commands run unsandboxed in the throwaway working directory,
    without asking. `retries`: how often it retries a failed request or stream (its own
    default is 5, with backoff)."""
    _require(CODEX, "Codex CLI")
    with _Scratch() as scratch:
        codex_home = scratch.state / "codex"
        codex_home.mkdir()
        (codex_home / "config.toml").write_text(codex_config(url, _headers(headers), retries))
        env = _base_env(scratch.state) | {"CODEX_HOME": str(codex_home), "SWITCHBOARD_AGENT_KEY": api_key}
        argv = [str(CODEX), "exec", "--json", "--strict-config", "--skip-git-repo-check", "--ephemeral",
                "--color", "never", "--sandbox", "danger-full-access", "--cd", str(scratch.work),
                "-m", model, prompt]
        code, stdout, stderr, seconds = _run(argv, env, scratch.work, timeout)
    events = []
    for line in stdout.splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict):
            events.append(event)
    messages = [
        e["item"].get("text") for e in events
        if e.get("type") == "item.completed" and e.get("item", {}).get("type") == "agent_message"
    ]
    usage = next((e.get("usage") for e in reversed(events) if e.get("type") == "turn.completed"), None)
    return AgentRun(
        exit_code=code, stdout=stdout, stderr=stderr, seconds=seconds,
        answer=messages[-1] if messages else None, usage=usage, events=events,
    )
