"""The fleet backend: two Envoys, one rate-limit service (switchboard-rls), one Redis.

Limits and budgets of a key whose requests are spread over both Envoys hold once, not once per
Envoy; concurrent streams overshoot a budget by no more than what their estimates missed; spend
and limits carry on across an Envoy restart and a Redis restart (append-only persistence); a
failed service gives an OpenAI-shaped 503 within the configured timeout (fail-closed) or serves
and counts the miss (fail-open). One test runs the reference engine, envoyproxy/ratelimit, to
show the filter speaks Envoy's standard protocol.
"""

from __future__ import annotations

import json
import threading
import time

import httpx
import pytest

from common import HELLO, sha256_hex
from fleet_engine import Redis, ReferenceRls, Rls, render_service_config
from harness import Gateway

PRICE_IN, PRICE_OUT = 2.0, 8.0
# What the mock reports for most requests here: 100 + 100 tokens, $0.001 (10 budget units).
USAGE = {"x-mock-usage": "prompt:100;completion:100"}
UNIT_USD = 0.0001

KEYS = {name: f"sk-fleet-{name}" for name in
        ("rpm", "tpm", "budget", "streams", "restart", "down", "open")}


def filter_yaml(mock_url: str, rls_port: int, failure_mode: str = "closed", timeout: str = "200ms") -> str:
    return f"""
options: {{access_log: "off"}}
providers:
  openai: {{kind: openai, base_url: "{mock_url}/v1", api_key: sk-provider}}
models:
  - {{name: priced, price: {{input: {PRICE_IN}, output: {PRICE_OUT}}}, max_tokens: 50,
      deployments: [{{provider: openai, model: gpt-4o-mini-2024-07-18}}]}}
limits: {{backend: fleet, service: {{address: 127.0.0.1, port: {rls_port}}}, timeout: {timeout},
          failure_mode: {failure_mode}}}
teams:
  - {{name: crowd, rpm: 1000}}
keys:
  - {{name: rpm, sha256: {sha256_hex(KEYS["rpm"])}, rpm: 6}}
  - {{name: tpm, sha256: {sha256_hex(KEYS["tpm"])}, tpm: 1000}}
  - {{name: budget, sha256: {sha256_hex(KEYS["budget"])}, budget: {{usd: 0.01, period: day}}}}
  - {{name: streams, sha256: {sha256_hex(KEYS["streams"])}, team: crowd, budget: {{usd: 0.005, period: total}}}}
  - {{name: restart, sha256: {sha256_hex(KEYS["restart"])}, budget: {{usd: 0.01, period: month}}}}
  - {{name: down, sha256: {sha256_hex(KEYS["down"])}, rpm: 1000}}
  - {{name: open, sha256: {sha256_hex(KEYS["open"])}, rpm: 1000, budget: {{usd: 1, period: day}}}}
"""


class Fleet:
    """Redis and switchboard-rls for this module, and gateways pointed at them."""

    def __init__(self, mock):
        self.mock = mock
        self.redis = Redis("fleet")
        self.rls = Rls(render_service_config(filter_yaml(mock.url, 1), "fleet"), self.redis)
        self.gateways: list[Gateway] = []

    def gateway(self, name: str, **kwargs) -> Gateway:
        gw = Gateway(filter_yaml(self.mock.url, self.rls.port, **kwargs), name=name)
        self.gateways.append(gw)
        return gw

    def stop(self) -> None:
        for gw in self.gateways:
            gw.stop()
        self.rls.stop()
        self.redis.stop()


@pytest.fixture(scope="module")
def fleet(mock):
    f = Fleet(mock)
    yield f
    f.stop()


@pytest.fixture(scope="module")
def pair(fleet):
    """Two Envoys (fail-closed); a test may replace one (a restart)."""
    return [fleet.gateway("fleet-a"), fleet.gateway("fleet-b")]


def post(gw: Gateway, key: str, headers: dict | None = None, **body) -> httpx.Response:
    payload = {"model": "priced", "messages": HELLO, **body}
    return httpx.post(gw.url + "/v1/chat/completions", json=payload, timeout=20,
                      headers={"authorization": f"Bearer {key}", **(headers or {})})


def error_code(r: httpx.Response) -> str:
    assert r.headers["content-type"] == "application/json", r.text
    return r.json()["error"]["code"]


def within_one_minute_window() -> None:
    """Requests per minute count in the service's minute windows: start early in one."""
    into = time.time() % 60
    if into > 40:
        time.sleep(60 - into + 0.2)


def counter(fleet: Fleet, limit: str, key: str) -> int:
    found = fleet.redis.counters(f"sbrl|switchboard|limit={limit}|key={key}|*")
    assert len(found) <= 1, found
    return sum(found.values())


def prometheus_value(gw: Gateway, name: str, **labels) -> int:
    total = 0
    for line in gw.prometheus().splitlines():
        if not line.startswith(name + "{"):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += int(float(line.rsplit(" ", 1)[1]))
    return total


def settled(read, want: int, timeout: float = 5.0) -> int:
    """`read()` once it gives `want` (counters reach Envoy's stats within a second), or at the
    deadline."""
    deadline = time.monotonic() + timeout
    while (got := read()) != want and time.monotonic() < deadline:
        time.sleep(0.2)
    return got


def test_requests_per_minute_are_shared_by_two_envoys(fleet, pair):
    within_one_minute_window()
    responses = [post(pair[i % 2], KEYS["rpm"]) for i in range(10)]
    codes = [r.status_code for r in responses]
    print(f"\nrpm 6 over two Envoys: {codes}")
    assert codes == [200] * 6 + [429] * 4
    for r in responses[6:]:
        assert error_code(r) == "rate_limit_exceeded"
        assert r.json()["error"]["type"] == "rate_limit_error"
        assert "requests per minute: limit 6" in r.json()["error"]["message"]
        assert 1 <= int(r.headers["retry-after"]) <= 60
        assert not any(h.startswith("x-ratelimit") or h == "x-switchboard-limit" for h in r.headers)
    # A refused call counts nothing: the service's minute holds the six admitted.
    assert counter(fleet, "rpm", "rpm") == 6
    rejected = lambda: sum(prometheus_value(gw, "switchboard_key_rejections", switchboard_key="rpm",
                                            switchboard_reason="rpm") for gw in pair)
    assert settled(rejected, 4) == 4


def test_tokens_per_minute_are_shared_and_settled_to_real_usage(fleet, pair):
    # Estimated at 57 tokens, each request really uses 200: five fill the minute's 1000.
    within_one_minute_window()
    codes = [post(pair[i % 2], KEYS["tpm"], USAGE).status_code for i in range(7)]
    assert codes == [200] * 5 + [429] * 2, codes
    assert counter(fleet, "tpm", "tpm") == 1000


def test_a_budget_is_spent_once_across_two_envoys(fleet, pair):
    # $0.01 a day, $0.001 a request: ten requests in all, not ten per Envoy.
    responses = [post(pair[i % 2], KEYS["budget"], USAGE) for i in range(12)]
    codes = [r.status_code for r in responses]
    assert codes == [200] * 10 + [429] * 2, codes
    for r in responses[10:]:
        assert error_code(r) == "insufficient_quota"
        assert r.json()["error"]["type"] == "insufficient_quota"
        # Until midnight UTC.
        assert 0 < int(r.headers["retry-after"]) <= 86_400
    assert counter(fleet, "budget", "budget") == 100  # units of $0.0001


def test_concurrent_streams_overshoot_within_their_estimates(fleet, pair):
    """20 streams at once, over both Envoys, against a $0.005 total budget. Each reserves its
    estimate (57 tokens: 5 units) at admission and really costs 100 + 150 tokens = $0.0014
    (14 units). The service admits while reservations fit, so at most 10 run; the overshoot is
    what the admitted streams' estimates missed."""
    n, budget_units = 20, 50
    # Each stream lasts seconds (its chunks 400 ms apart), so every reservation is still held
    # when the counter is read, however loaded the machine.
    headers = {"x-mock-usage": "prompt:100;completion:150", "x-mock-chunk-delay": "400"}
    statuses: list[int | None] = [None] * n
    costs: list[int] = []
    lock = threading.Lock()
    start, headers_in, read_on = (threading.Barrier(n), threading.Barrier(n + 1),
                                  threading.Barrier(n + 1))

    def stream(i: int) -> None:
        gw = pair[i % 2]
        start.wait()
        with httpx.stream("POST", gw.url + "/v1/chat/completions", timeout=30,
                          headers={"authorization": f"Bearer {KEYS['streams']}", **headers},
                          json={"model": "priced", "messages": HELLO, "stream": True,
                                "stream_options": {"include_usage": True}}) as r:
            statuses[i] = r.status_code
            headers_in.wait()
            read_on.wait()
            body = r.read().decode()
        if r.status_code == 200:
            events = [json.loads(line[6:]) for line in body.splitlines()
                      if line.startswith("data: {")]
            usage = [e["usage"] for e in events if e.get("usage")][-1]
            with lock:
                costs.append((usage["prompt_tokens"], usage["completion_tokens"]))
        else:
            assert r.status_code == 429 and '"insufficient_quota"' in body, body

    threads = [threading.Thread(target=stream, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    headers_in.wait(timeout=30)
    admitted = statuses.count(200)
    in_flight = counter(fleet, "budget", "streams")
    read_on.wait(timeout=30)
    for t in threads:
        t.join(timeout=30)
    spent = counter(fleet, "budget", "streams")
    estimate = in_flight // admitted
    overshoot = spent - budget_units
    bound = admitted * (14 - estimate)
    print(f"\n20 concurrent streams, budget {budget_units} units (${budget_units * UNIT_USD:.4f}): "
          f"{admitted} admitted holding {in_flight} units ({estimate} each), "
          f"{n - admitted} refused; spent {spent} units (${spent * UNIT_USD:.4f}); "
          f"overshoot {overshoot} units (${overshoot * UNIT_USD:.4f}), "
          f"bound {bound} units (${bound * UNIT_USD:.4f})")
    assert statuses.count(429) == n - admitted
    # Every reservation is one estimate, and only as many as the budget holds were admitted.
    assert in_flight == admitted * estimate
    assert admitted == budget_units // estimate
    assert len(costs) == admitted
    assert all(c == (100, 150) for c in costs), costs
    assert spent == admitted * 14
    assert 0 <= overshoot <= bound


def test_spend_and_limits_carry_on_across_envoy_and_redis_restarts(fleet, pair):
    # $0.01 a month, $0.001 a request.
    codes = [post(pair[i % 2], KEYS["restart"], USAGE).status_code for i in range(4)]
    assert codes == [200] * 4
    pair[0].stop()
    pair[0] = fleet.gateway("fleet-a2")
    codes = [post(pair[0], KEYS["restart"], USAGE).status_code for i in range(2)]
    assert codes == [200] * 2
    assert counter(fleet, "budget_month", "restart") == 60

    fleet.redis.stop()
    fleet.redis.start()
    assert counter(fleet, "budget_month", "restart") == 60, "the counters were persisted"
    # The service reconnects on its own; until it has, requests fail closed (503).
    unavailable = 0
    deadline = time.monotonic() + 10
    while (r := post(pair[1], KEYS["restart"], USAGE)).status_code == 503:
        assert error_code(r) == "rate_limit_service_unavailable"
        unavailable += 1
        assert time.monotonic() < deadline, "the service did not reconnect to Redis"
        time.sleep(0.1)
    assert r.status_code == 200, r.text
    codes = [post(pair[i % 2], KEYS["restart"], USAGE).status_code for i in range(5)]
    print(f"\nafter the Redis restart: {unavailable} request(s) got 503 while the service "
          f"reconnected; then {codes}")
    assert codes == [200] * 3 + [429] * 2
    assert counter(fleet, "budget_month", "restart") == 100


def refused_while(gw: Gateway, fail, repair) -> float:
    """Seconds a request took to be refused (fail-closed) while `fail()` is in effect; `repair()`
    undoes it."""
    fail()
    try:
        began = time.monotonic()
        r = post(gw, KEYS["down"])
        took = time.monotonic() - began
    finally:
        repair()
    assert r.status_code == 503 and error_code(r) == "rate_limit_service_unavailable"
    assert r.headers["retry-after"] == "1"
    return took


def test_a_failed_service_fails_closed_within_the_timeout(fleet, pair):
    gw = pair[1]
    assert post(gw, KEYS["down"]).status_code == 200
    # The service hangs: Envoy's 200ms timeout ends the call.
    hung = refused_while(gw, fleet.rls.pause, fleet.rls.resume)
    assert 0.2 <= hung < 1.0, hung
    assert post(gw, KEYS["down"]).status_code == 200
    # The service is gone: refused at once.
    gone = refused_while(gw, fleet.rls.stop, fleet.rls.start)
    assert gone < 0.2, gone
    print(f"\nfail-closed: 503 after {hung * 1000:.0f} ms with the service hung (timeout 200 ms), "
          f"{gone * 1000:.0f} ms with it gone")
    deadline = time.monotonic() + 10
    while post(gw, KEYS["down"]).status_code != 200:
        assert time.monotonic() < deadline, "Envoy did not reach the restarted service"
        time.sleep(0.1)


def test_a_failed_service_fails_open_and_counts_the_miss(fleet):
    gw = fleet.gateway("fleet-open", failure_mode="open")
    assert post(gw, KEYS["open"], USAGE).status_code == 200
    fleet.rls.stop()
    try:
        responses = [post(gw, KEYS["open"], USAGE) for _ in range(3)]
    finally:
        fleet.rls.start()
    assert [r.status_code for r in responses] == [200] * 3
    for stage in ("rate", "budget"):
        missed = lambda: prometheus_value(gw, "switchboard_key_limit_misses", switchboard_key="open",
                                          switchboard_limit=stage)
        assert settled(missed, 3) == 3, stage


def test_the_reference_engine_shares_requests_per_minute(mock):
    """envoyproxy/ratelimit (the committed pin, no refunds) over the same protocol: an rpm-only
    key counted once across two Envoys."""
    redis = Redis("reference")
    only_rpm = f"""
options: {{access_log: "off"}}
providers:
  openai: {{kind: openai, base_url: "{mock.url}/v1", api_key: sk-provider}}
models:
  - {{name: priced, deployments: [{{provider: openai, model: gpt-4o-mini-2024-07-18}}]}}
limits: {{backend: fleet, service: {{address: 127.0.0.1, port: PORT}}, timeout: 500ms}}
keys:
  - {{name: rpm, sha256: {sha256_hex(KEYS["rpm"])}, rpm: 4}}
"""
    reference = ReferenceRls(render_service_config(only_rpm.replace("PORT", "1"), "reference"), redis)
    gateways = []
    try:
        gateways = [Gateway(only_rpm.replace("PORT", str(reference.port)), name=f"reference-{n}")
                    for n in "ab"]
        within_one_minute_window()
        responses = [post(gateways[i % 2], KEYS["rpm"]) for i in range(8)]
        codes = [r.status_code for r in responses]
        print(f"\nenvoyproxy/ratelimit, rpm 4 over two Envoys: {codes}")
        assert codes == [200] * 4 + [429] * 4
        assert all(error_code(r) == "rate_limit_exceeded" for r in responses[4:])
        # Its counter (it counts refused calls too).
        keys = redis.counters("switchboard_limit_rpm_key_rpm_*")
        assert list(keys.values()) == [8], keys
    finally:
        for gw in gateways:
            gw.stop()
        reference.stop()
        redis.stop()
