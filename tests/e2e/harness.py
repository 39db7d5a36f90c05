"""Runs the real pieces for end-to-end tests: the mock provider, `switchboard render`, and Envoy.

Every process gets free ports and its own Envoy `--base-id`, so suites can run side by side.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
WASM = ROOT / "target/wasm32-unknown-unknown/release/switchboard.wasm"
CLI = ROOT / "target/release/switchboard"
MOCK = ROOT / "target/release/switchboard-mock"
ENVOY = ROOT / ".venv/bin/envoy"
LOGS = ROOT / ".run/e2e"
# How often each worker hands its gathered counters to Envoy (the filter's METRICS_FLUSH).
METRICS_FLUSH_S = 1.0
# The credentials the mock checks Bedrock's SigV4 signatures against unless told otherwise
# (AWS's documentation example keys).
MOCK_AWS_KEY_ID = "AKIDEXAMPLE"
MOCK_AWS_SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def require_artifacts() -> None:
    missing = [str(p) for p in (WASM, CLI, MOCK, ENVOY) if not p.exists()]
    if missing:
        raise RuntimeError(
            "missing build artifacts (run scripts/test.sh, which builds them): " + ", ".join(missing)
        )


def stop_process(proc: subprocess.Popen | None, timeout: float = 10) -> None:
    """Asks a process we started to stop; kills it if it has not within `timeout` seconds."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def fill_config(config: str, mock: "Mock", dead_port: int | None = None, **more: str) -> str:
    """A filter config with its placeholders filled: `${MOCK}` (the mock's URL), `${DEAD_PORT}`
    (a port nothing listens on), `${MOCK_AWS_KEY_ID}` and `${MOCK_AWS_SECRET}` (the credentials
    the mock checks), and `${NAME}` for each NAME in `more`."""
    values = {"MOCK": mock.url, "MOCK_AWS_KEY_ID": MOCK_AWS_KEY_ID, "MOCK_AWS_SECRET": MOCK_AWS_SECRET, **more}
    if dead_port is not None:
        values["DEAD_PORT"] = str(dead_port)
    for name, value in values.items():
        config = config.replace("${" + name + "}", value)
    return config


def http_json(method: str, url: str, body: bytes | None = None, headers: dict | None = None):
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    with urllib.request.urlopen(req, timeout=10) as resp:
        data = resp.read()
        return json.loads(data) if data else None


class Mock:
    """The mock provider (tests/mock): speaks the providers' wire formats and records requests."""

    def __init__(self, *extra_args: str, env: dict | None = None):
        LOGS.mkdir(parents=True, exist_ok=True)
        self.log_path = LOGS / f"mock-{os.getpid()}-{time.monotonic_ns()}.log"
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [str(MOCK), "--port", "0", *extra_args],
            stdout=subprocess.PIPE,
            stderr=self._log,
            env={**os.environ, **(env or {})},
        )
        line = self.proc.stdout.readline().decode().strip()
        match = re.search(r"listening on ([\d.]+):(\d+)", line)
        if not match:
            self.stop()
            raise RuntimeError(f"mock did not start: {line!r}; see {self.log_path}")
        self.port = int(match.group(2))
        self.url = f"http://127.0.0.1:{self.port}"

    def requests(self, test_id: str) -> list[dict]:
        """Requests the mock received carrying `x-test-id: <test_id>`, oldest first."""
        return http_json("GET", f"{self.url}/_mock/requests?test_id={test_id}")

    def stop(self) -> None:
        stop_process(self.proc, timeout=5)
        self._log.close()


# SWITCHBOARD_BASE_ID: the first Envoy --base-id to use (engineers sharing a machine keep apart).
_base_ids = iter(range(int(os.environ.get("SWITCHBOARD_BASE_ID") or 1000 + (os.getpid() % 500) * 40),
                       10**6))


class Gateway:
    """Envoy running the bootstrap `switchboard render` makes from a filter config."""

    def __init__(self, config: str, name: str = "gw", env: dict | None = None, concurrency: int = 2,
                 mock_upstream: str | None = None):
        LOGS.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.admin_port = free_port()
        doc = yaml.safe_load(config)
        doc["listener"] = {"address": "127.0.0.1", "port": self.port}
        doc["admin"] = {"address": "127.0.0.1", "port": self.admin_port}
        stem = f"{name}-{self.port}"
        self.config_path = LOGS / f"{stem}.filter.yaml"
        self.config_path.write_text(yaml.safe_dump(doc, sort_keys=False))
        self.bootstrap_path = LOGS / f"{stem}.envoy.yaml"
        cmd = [str(CLI), "render", str(self.config_path), "--wasm", str(WASM), "-o", str(self.bootstrap_path)]
        if mock_upstream:
            cmd += ["--mock-upstream", mock_upstream]
        subprocess.run(cmd, check=True, capture_output=True, env={**os.environ, **(env or {})})
        self.log_path = LOGS / f"{stem}.envoy.log"
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [str(ENVOY), "-c", str(self.bootstrap_path), "--base-id", str(next(_base_ids)),
             "--concurrency", str(concurrency), "-l", "warning",
             # Access-log lines reach their file within a quarter second (Envoy: 10 s).
             "--file-flush-interval-msec", "250"],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
        )
        self.url = f"http://127.0.0.1:{self.port}"
        self.base_url = f"{self.url}/v1"
        self.admin_url = f"http://127.0.0.1:{self.admin_port}"
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"envoy exited ({self.proc.returncode}):\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.admin_url}/ready", timeout=1) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"envoy not ready in 30s:\n{self.log_tail()}")

    def client(self, **kwargs):
        import openai

        kwargs.setdefault("api_key", "sk-client")
        kwargs.setdefault("max_retries", 0)
        kwargs.setdefault("timeout", 20)
        return openai.OpenAI(base_url=self.base_url, **kwargs)

    def stats(self, prefix: str = "") -> dict[str, int]:
        with urllib.request.urlopen(f"{self.admin_url}/stats?filter={prefix}", timeout=5) as r:
            out = {}
            for line in r.read().decode().splitlines():
                name, _, value = line.partition(": ")
                if value.strip().lstrip("-").isdigit():
                    out[name] = int(value)
            return out

    def prometheus(self) -> str:
        with urllib.request.urlopen(f"{self.admin_url}/stats/prometheus", timeout=5) as r:
            return r.read().decode()

    def settled(self, scrape, want: dict, timeout: float = 5.0) -> dict:
        """`scrape(self)` once every series in `want` has its value (counters reach Envoy at
        the filter's next tick, within a second), or at the deadline."""
        deadline = time.monotonic() + timeout
        while True:
            got = scrape(self)
            if all(got.get(k) == v for k, v in want.items()) or time.monotonic() > deadline:
                return got
            time.sleep(0.2)

    def flushed(self, scrape) -> dict:
        """`scrape(self)` after one flush period, so counters of earlier requests on every worker
        have reached Envoy (a baseline to count from)."""
        time.sleep(METRICS_FLUSH_S + 0.2)
        return scrape(self)

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        stop_process(self.proc)
        self._log.close()


@contextmanager
def serving(config: str, name: str, env: dict | None = None):
    """A Gateway for the `with` block, stopped at its end; Envoy must not have died meanwhile."""
    gw = Gateway(config, name=name, env=env)
    try:
        yield gw
        alive = gw.alive()
    finally:
        gw.stop()
    assert alive, f"envoy died during the tests:\n{gw.log_tail()}"
