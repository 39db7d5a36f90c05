"""The fleet backend's engine for end-to-end tests: Redis with append-only persistence, and a
rate-limit service (switchboard-rls, or envoyproxy/ratelimit) reading the configuration that
`switchboard render --rls-config` writes. Each can be stopped and started again on the same
port (and Redis on the same data), to test failures and restarts."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

from harness import CLI, LOGS, ROOT, WASM, free_port, stop_process

RLS = ROOT / "target/release/switchboard-rls"
REFERENCE_RLS = ROOT / ".tools/bin/ratelimit"


def _wait(check, proc: subprocess.Popen, what: str, log: Path, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited ({proc.returncode}): {log.read_text(errors='replace')[-2000:]}")
        if check():
            return
        time.sleep(0.05)
    raise RuntimeError(f"{what} not ready in {seconds}s: {log.read_text(errors='replace')[-2000:]}")


class Redis:
    """redis-server on loopback, persisting to its own directory (AOF, fsync every second)."""

    def __init__(self, name: str):
        if not shutil.which("redis-server"):
            raise RuntimeError("redis-server is missing (scripts/test.sh installs it)")
        self.dir = LOGS / f"redis-{name}-{os.getpid()}-{time.monotonic_ns()}"
        self.dir.mkdir(parents=True)
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}"
        self.proc = None
        self.start()

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--dir", str(self.dir),
             "--appendonly", "yes", "--appendfsync", "everysec", "--save", "", "--daemonize", "no",
             "--logfile", str(self.dir / "redis.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait(lambda: self.cli("ping") == "PONG", self.proc, "redis", self.dir / "redis.log")

    def stop(self) -> None:
        """A clean shutdown (the append-only file is flushed)."""
        stop_process(self.proc)

    def cli(self, *args: str) -> str:
        r = subprocess.run(["redis-cli", "-p", str(self.port), *args], capture_output=True, text=True,
                           timeout=5)
        return r.stdout.strip()

    def counters(self, pattern: str = "*") -> dict[str, int]:
        keys = [k for k in self.cli("--scan", "--pattern", pattern).splitlines() if k]
        return {k: int(self.cli("get", k) or 0) for k in keys}


def render_service_config(filter_yaml: str, name: str) -> Path:
    """The service's configuration for a filter YAML, as `switchboard render --rls-config` writes it."""
    source = LOGS / f"{name}-{os.getpid()}-{time.monotonic_ns()}.filter.yaml"
    source.write_text(filter_yaml)
    directory = LOGS / f"{source.stem}-rls"
    directory.mkdir()
    out = directory / "switchboard.yaml"
    subprocess.run([str(CLI), "render", str(source), "--wasm", str(WASM), "-o", os.devnull,
                    "--rls-config", str(out)], check=True, capture_output=True)
    return out


class Rls:
    """switchboard-rls on a fixed port (so Envoy's cluster finds it again after a restart)."""

    def __init__(self, config: Path, redis: Redis, redis_timeout: str = "100ms"):
        self.config = config
        self.redis = redis
        self.redis_timeout = redis_timeout
        self.port = free_port()
        self.log_path = LOGS / f"rls-{self.port}.log"
        self.proc = None
        self.start()

    def start(self) -> None:
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [str(RLS), "--config", str(self.config), "--redis", self.redis.url,
             "--listen", f"127.0.0.1:{self.port}", "--redis-timeout", self.redis_timeout],
            stdout=subprocess.PIPE, stderr=log)
        line = self.proc.stdout.readline().decode()
        if not re.search(r"listening on 127\.0\.0\.1:\d+", line):
            stop_process(self.proc)
            raise RuntimeError(f"switchboard-rls did not start: {line!r}; see {self.log_path}")

    def stop(self) -> None:
        stop_process(self.proc)

    def pause(self) -> None:
        """Freezes the process: calls to it hang (Envoy's timeout must end them)."""
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        self.proc.send_signal(signal.SIGCONT)


class ReferenceRls:
    """envoyproxy/ratelimit (the committed pin) over the same Redis, reading the same file."""

    def __init__(self, config: Path, redis: Redis):
        if not REFERENCE_RLS.exists():
            raise RuntimeError(f"{REFERENCE_RLS} is missing (scripts/test.sh builds it)")
        self.port, http, debug, metrics = (free_port() for _ in range(4))
        self.log_path = LOGS / f"ratelimit-{self.port}.log"
        env = {
            **os.environ,
            "USE_STATSD": "false", "USE_PROMETHEUS": "true", "PROMETHEUS_ADDR": f"127.0.0.1:{metrics}",
            "LOG_LEVEL": "warn", "LOG_FORMAT": "json",
            "REDIS_SOCKET_TYPE": "tcp", "REDIS_URL": f"127.0.0.1:{redis.port}",
            "RUNTIME_ROOT": str(config.parent.parent), "RUNTIME_SUBDIRECTORY": "",
            "RUNTIME_APPDIRECTORY": config.parent.name, "RUNTIME_WATCH_ROOT": "false",
            "RUNTIME_IGNOREDOTFILES": "true", "HEALTHY_WITH_AT_LEAST_ONE_CONFIG_LOADED": "true",
            "LOCAL_CACHE_SIZE_IN_BYTES": "0", "RESPONSE_DYNAMIC_METADATA": "true",
            "HOST": "127.0.0.1", "PORT": str(http), "GRPC_HOST": "127.0.0.1", "GRPC_PORT": str(self.port),
            "DEBUG_HOST": "127.0.0.1", "DEBUG_PORT": str(debug),
        }
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen([str(REFERENCE_RLS)], env=env, stdout=self._log, stderr=subprocess.STDOUT)

        def healthy() -> bool:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{http}/healthcheck", timeout=1) as r:
                    return r.status == 200
            except OSError:
                return False

        _wait(healthy, self.proc, "envoyproxy/ratelimit", self.log_path)

    def stop(self) -> None:
        stop_process(self.proc)
        self._log.close()
