"""Virtual keys, model access, rate limits and budgets, enforced by the gateway role.

Real Envoy with two worker threads (`--concurrency 2`): counters live in Envoy's shared data,
so limits must hold whichever worker serves each connection. Every request below opens its
own connection, so the kernel spreads them over both workers (the test checks it did).
"""

import json
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
import openai
import pytest

from common import HELLO, assert_openai_error, scrape, sha256_hex
from harness import LOGS, fill_config, serving

KEYS = {
    "full": "sk-sb-full-access",
    "claude": "sk-sb-claude-only",
    "expired": "sk-sb-expired",
    "rpm": "sk-sb-rpm-five",
    "tpm": "sk-sb-tpm",
    "parallel": "sk-sb-parallel",
    "team-a": "sk-sb-team-a",
    "team-b": "sk-sb-team-b",
    "headers": "sk-sb-headers",
    "budget": "sk-sb-budget",
    "tpm-real": "sk-sb-tpm-real",
    "metered": "sk-sb-metered",
}

# The `priced` model: USD per million tokens.
PRICE_IN, PRICE_OUT = 2.0, 8.0
BUDGET_USD = 0.01

LOGS.mkdir(parents=True, exist_ok=True)
ACCESS_LOG = LOGS / f"keys-access-{uuid.uuid4().hex[:8]}.jsonl"

CONFIG = f"""
options: {{access_log: "{ACCESS_LOG}"}}
providers:
  openai: {{kind: openai, base_url: "${{MOCK}}/v1", api_key: sk-provider-secret}}
models:
  - {{name: gpt-4o-mini, deployments: [{{provider: openai, model: gpt-4o-mini-2024-07-18}}]}}
  - {{name: claude-haiku, deployments: [{{provider: openai, model: claude-upstream}}]}}
  - {{name: claude-sonnet, deployments: [{{provider: openai, model: claude-upstream-2}}]}}
  - {{name: priced, price: {{input: {PRICE_IN}, output: {PRICE_OUT}}},
      deployments: [{{provider: openai, model: gpt-4o-mini-2024-07-18}}]}}
teams:
  - {{name: shared, rpm: 4}}
  - {{name: metered-team, budget: {{usd: 1, period: day}}}}
keys:
  - {{name: full, sha256: {sha256_hex(KEYS["full"])}}}
  - {{name: claude, sha256: {sha256_hex(KEYS["claude"])}, models: ["claude-*"]}}
  - {{name: expired, sha256: {sha256_hex(KEYS["expired"])}, expires: "2020-01-01T00:00:00Z"}}
  - {{name: rpm, sha256: {sha256_hex(KEYS["rpm"])}, rpm: 5}}
  - {{name: tpm, sha256: {sha256_hex(KEYS["tpm"])}, tpm: 500}}
  - {{name: parallel, sha256: {sha256_hex(KEYS["parallel"])}, max_parallel: 2}}
  - {{name: team-a, sha256: {sha256_hex(KEYS["team-a"])}, team: shared}}
  - {{name: team-b, sha256: {sha256_hex(KEYS["team-b"])}, team: shared}}
  - {{name: headers, sha256: {sha256_hex(KEYS["headers"])}}}
  - {{name: budget, sha256: {sha256_hex(KEYS["budget"])}, budget: {{usd: {BUDGET_USD}, period: total}}}}
  - {{name: tpm-real, sha256: {sha256_hex(KEYS["tpm-real"])}, tpm: 1000}}
  - {{name: metered, sha256: {sha256_hex(KEYS["metered"])}, team: metered-team, rpm: 2,
      budget: {{usd: 1, period: day}}}}
"""

def chat(gateway, key=None, headers=None, model="gpt-4o-mini", **body):
    """One request on a fresh connection; returns the httpx response."""
    h = {"content-type": "application/json", **(headers or {})}
    if key:
        h["authorization"] = f"Bearer {key}"
    payload = {"model": model, "messages": HELLO, **body}
    return httpx.post(gateway.url + "/v1/chat/completions", json=payload, headers=h, timeout=20)


def error_of(r, status, code, type_=None):
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/json"
    err = assert_openai_error(r.json()["error"])
    assert err["code"] == code, err
    if type_:
        assert err["type"] == type_, err
    return err


def worker_connections(gateway) -> list[int]:
    stats = gateway.stats("downstream_cx_total")
    return [v for k, v in stats.items() if k.startswith("listener.") and ".worker_" in k]


# --- authentication -------------------------------------------------------------------------

def test_missing_wrong_and_expired_keys_get_401(gateway):
    err = error_of(chat(gateway), 401, "invalid_api_key", "authentication_error")
    assert "didn't provide an API key" in err["message"]
    err = error_of(chat(gateway, key="sk-sb-not-a-key"), 401, "invalid_api_key")
    assert err["message"] == "Incorrect API key provided."
    err = error_of(chat(gateway, key=KEYS["expired"]), 401, "invalid_api_key")
    assert "expired" in err["message"]
    error_of(chat(gateway, headers={"authorization": "Basic dXNlcjpwYXNz"}), 401, "invalid_api_key")
    # The models list needs a key too; health does not.
    assert httpx.get(gateway.url + "/v1/models", timeout=10).status_code == 401
    assert httpx.get(gateway.url + "/health", timeout=10).status_code == 200
    # The SDK raises the right exception.
    with pytest.raises(openai.AuthenticationError):
        gateway.client(api_key="sk-sb-not-a-key").chat.completions.create(model="gpt-4o-mini", messages=HELLO)


@pytest.mark.parametrize("header,value", [
    ("authorization", "Bearer {key}"),
    ("x-api-key", "{key}"),
    ("api-key", "{key}"),
])
def test_key_headers_accepted_and_never_forwarded(gateway, mock, test_id, header, value):
    key = KEYS["headers"]
    r = chat(gateway, headers={header: value.format(key=key), "x-test-id": test_id})
    assert r.status_code == 200, r.text
    sent = mock.requests(test_id)
    assert len(sent) == 1
    upstream = sent[0]["headers"]
    assert upstream["authorization"] == "Bearer sk-provider-secret"
    assert "x-api-key" not in upstream and "api-key" not in upstream
    assert key not in json.dumps(upstream)


def test_sdk_with_a_key(gateway):
    client = gateway.client(api_key=KEYS["full"])
    r = client.chat.completions.create(model="gpt-4o-mini", messages=HELLO)
    assert r.choices[0].message.content == "echo: hello there"
    text = "".join(c.choices[0].delta.content or "" for c in
                   client.chat.completions.create(model="claude-haiku", messages=HELLO, stream=True)
                   if c.choices)
    assert text == "echo: hello there"


# --- model access ---------------------------------------------------------------------------

def test_models_outside_the_keys_globs_get_403(gateway):
    client = gateway.client(api_key=KEYS["claude"])
    assert client.chat.completions.create(model="claude-haiku", messages=HELLO).choices
    with pytest.raises(openai.PermissionDeniedError) as e:
        client.chat.completions.create(model="gpt-4o-mini", messages=HELLO)
    assert e.value.status_code == 403
    err = error_of(chat(gateway, key=KEYS["claude"]), 403, "model_not_allowed", "permission_error")
    assert err["param"] == "model"
    assert err["message"] == "The key `claude` is not allowed to use the model `gpt-4o-mini`."


def test_models_list_shows_only_the_keys_models(gateway):
    assert [m.id for m in gateway.client(api_key=KEYS["claude"]).models.list()] == \
        ["claude-haiku", "claude-sonnet"]
    assert [m.id for m in gateway.client(api_key=KEYS["full"]).models.list()] == \
        ["gpt-4o-mini", "claude-haiku", "claude-sonnet", "priced"]
    with pytest.raises(openai.PermissionDeniedError):
        gateway.client(api_key=KEYS["claude"]).models.retrieve("gpt-4o-mini")


# --- rate limits across both workers --------------------------------------------------------

def burst(n, fn):
    """Runs fn(i) for i < n from n threads at once; returns the results in order."""
    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(fn, range(n)))


def test_requests_per_minute_hold_across_workers(gateway):
    before = worker_connections(gateway)
    results = burst(15, lambda i: chat(gateway, key=KEYS["rpm"]))
    ok = [r for r in results if r.status_code == 200]
    refused = [r for r in results if r.status_code == 429]
    print(f"rpm=5: {len(ok)} admitted, {len(refused)} refused of {len(results)}")
    assert len(ok) == 5 and len(refused) == 10, [r.status_code for r in results]
    for r in refused:
        err = error_of(r, 429, "rate_limit_exceeded", "rate_limit_error")
        assert "requests per minute: limit 5" in err["message"]
        assert 1 <= int(r.headers["retry-after"]) <= 120
    after = worker_connections(gateway)
    assert len(after) == 2 and all(b > a for a, b in zip(before, after)), (before, after)
    with pytest.raises(openai.RateLimitError):
        gateway.client(api_key=KEYS["rpm"]).chat.completions.create(model="gpt-4o-mini", messages=HELLO)


def test_team_limits_are_shared_by_its_keys(gateway):
    results = burst(8, lambda i: chat(gateway, key=KEYS["team-a" if i % 2 else "team-b"]))
    assert sum(r.status_code == 200 for r in results) == 4, [r.status_code for r in results]
    refused = [r for r in results if r.status_code == 429]
    assert all("team `shared`" in r.json()["error"]["message"] for r in refused)


def test_tokens_per_minute_reserve_estimates_across_workers(gateway):
    # Each request is estimated at 3 (11 bytes / 4) + 4 (message) + 100 (max_tokens) = 107
    # tokens; while they are in flight (the mock holds them 3 s), 4 fit in 500 and a 5th not.
    results = burst(10, lambda i: chat(gateway, key=KEYS["tpm"], max_tokens=100,
                                       headers={"x-mock-delay": "3000"}))
    codes = [r.status_code for r in results]
    assert codes.count(200) == 4 and codes.count(429) == 6, codes
    for r in results:
        if r.status_code == 429:
            err = error_of(r, 429, "rate_limit_exceeded")
            assert "tokens per minute: limit 500" in err["message"]
            assert int(r.headers["retry-after"]) >= 1
    # Larger than the limit itself: refused without a retry-after.
    r = chat(gateway, key=KEYS["tpm"], max_tokens=1000)
    err = error_of(r, 429, "rate_limit_exceeded")
    assert err["message"].startswith("Request too large") and "retry-after" not in r.headers


def test_parallel_requests_are_capped_and_released(gateway):
    results = burst(6, lambda i: chat(gateway, key=KEYS["parallel"], headers={"x-mock-delay": "2000"}))
    codes = [r.status_code for r in results]
    assert codes.count(200) == 2 and codes.count(429) == 4, codes
    for r in results:
        if r.status_code == 429:
            assert r.headers["retry-after"] == "1"
            assert "parallel requests" in r.json()["error"]["message"]
    # Finished requests gave their slots back.
    assert [r.status_code for r in burst(2, lambda i: chat(gateway, key=KEYS["parallel"]))] == [200, 200]


def test_client_disconnect_gives_the_parallel_slot_back(gateway):
    # Two streams that the client abandons mid-way (the mock sends a chunk every 300 ms).
    def abandon(_):
        with httpx.stream("POST", gateway.url + "/v1/chat/completions",
                          json={"model": "gpt-4o-mini", "messages": HELLO, "stream": True},
                          headers={"authorization": f"Bearer {KEYS['parallel']}",
                                   "x-mock-chunk-delay": "300"}, timeout=20) as r:
            assert r.status_code == 200
            next(r.iter_raw())
    burst(2, abandon)
    # Envoy ends the streams when the clients go; both slots are free again.
    deadline = time.monotonic() + 5
    while True:
        codes = [r.status_code for r in burst(2, lambda i: chat(gateway, key=KEYS["parallel"]))]
        if codes == [200, 200] or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert codes == [200, 200]


def test_tokens_per_minute_count_what_the_provider_reported(gateway):
    # Estimated at 107 tokens, each request really uses 200 (the mock reports 100 + 100):
    # after five, the minute holds 1000 and the sixth does not fit.
    codes = [chat(gateway, key=KEYS["tpm-real"], max_tokens=100,
                  headers={"x-mock-usage": "prompt:100;completion:100"}).status_code
             for _ in range(7)]
    assert codes == [200] * 5 + [429] * 2, codes


# --- budgets --------------------------------------------------------------------------------

def usd(prompt_tokens, completion_tokens):
    return (prompt_tokens * PRICE_IN + completion_tokens * PRICE_OUT) / 1e6


def test_budget_spent_by_20_concurrent_streams_ends_within_one_estimate(gateway):
    # Each stream asks for 50 tokens; the gateway estimates 3 + 4 prompt tokens + 50, priced
    # $0.000414. The mock reports 10 + 50 (the prompt is underestimated): $0.00042 each.
    # Twenty clients stream until the budget refuses them.
    estimate = usd(3 + 4, 50)
    client = gateway.client(api_key=KEYS["budget"])
    costs, refusals = [], []
    lock = threading.Lock()

    def spend(_):
        while True:
            try:
                stream = client.chat.completions.create(
                    model="priced", messages=HELLO, stream=True, max_tokens=50,
                    stream_options={"include_usage": True},
                    extra_headers={"x-mock-usage": "prompt:10;completion:50", "x-mock-chunk-delay": "5"})
                usage = [c.usage for c in stream if c.usage][-1]
                with lock:
                    costs.append(usd(usage.prompt_tokens, usage.completion_tokens))
            except openai.RateLimitError as e:
                with lock:
                    refusals.append(e)
                return

    burst(20, spend)
    spent = sum(costs)
    overshoot = spent - BUDGET_USD
    print(f"\nbudget ${BUDGET_USD}: {len(costs)} streams spent ${spent:.6f}; "
          f"overshoot ${overshoot:+.6f} (one estimate: ${estimate:.6f}); {len(refusals)} refused")
    assert len(refusals) == 20
    for e in refusals:
        assert e.status_code == 429 and e.body["code"] == "insufficient_quota", e.body
        assert e.body["type"] == "insufficient_quota"
        assert "retry-after" not in e.response.headers  # a total budget never resets
    assert -estimate <= overshoot <= estimate
    # The gateway counted the same spend.
    labels = {"switchboard_key": "budget", "switchboard_team": "none"}
    expected = {
        metric("switchboard_key_cost_nano_usd", model="priced", **labels): round(spent * 1e9),
        ("switchboard_budget_remaining_nano_usd", frozenset(labels.items())):
            max(0, round((BUDGET_USD - spent) * 1e9)),
        metric("switchboard_key_rejections", model="priced", switchboard_reason="budget", **labels): 20,
    }
    assert_settled(gateway, expected)


# --- what the operator sees -----------------------------------------------------------------

def assert_settled(gateway, expected: dict) -> None:
    """Every series in `expected` reaches its value (each worker hands its counters to Envoy on
    its own tick)."""
    metrics = gateway.settled(scrape, expected)
    for series, value in expected.items():
        assert metrics.get(series) == value, (series, metrics.get(series))


def metric(name, model, operation="chat", api="openai_chat", **labels):
    return (name, frozenset({"gen_ai_operation_name": operation, "switchboard_api": api,
                             "gen_ai_request_model": model, **labels}.items()))


def access_log(key: str, n: int, timeout=20.0) -> list[dict]:
    """The ledger lines of a key. `cost_usd` is a JSON number holding an exact decimal: read
    as its text (the budgets left are strings already)."""
    deadline = time.monotonic() + timeout
    while True:
        text = ACCESS_LOG.read_text() if ACCESS_LOG.exists() else ""
        lines = [json.loads(line, parse_float=str) for line in text.splitlines()]
        mine = [line for line in lines if line.get("key") == key]
        if len(mine) >= n or time.monotonic() > deadline:
            return mine
        time.sleep(0.25)


def test_spend_and_limits_per_key_and_team_in_metrics_and_access_log(gateway):
    # Two requests of 10 + 5 tokens ($0.00006 each), then the rpm limit of 2 refuses.
    usage = {"x-mock-usage": "prompt:10;completion:5"}
    codes = [chat(gateway, key=KEYS["metered"], model="priced", max_tokens=10, headers=usage).status_code
             for _ in range(3)]
    assert codes == [200, 200, 429]
    who = {"switchboard_key": "metered", "switchboard_team": "metered-team"}
    expected = {
        metric("switchboard_key_requests", "priced", http_status_class="2xx", **who): 2,
        metric("switchboard_key_requests", "priced", http_status_class="4xx", **who): 1,
        metric("switchboard_key_cost_nano_usd", "priced", **who): 120_000,
        metric("switchboard_key_rejections", "priced", switchboard_reason="rpm", **who): 1,
        ("switchboard_budget_remaining_nano_usd", frozenset(who.items())): 1e9 - 120_000,
        ("switchboard_budget_remaining_nano_usd",
         frozenset({"switchboard_team": "metered-team"}.items())): 1e9 - 120_000,
    }
    assert_settled(gateway, expected)
    # Unknown keys are counted without a key label.
    invalid = metric("switchboard_key_rejections", "none", switchboard_reason="invalid_key")
    before = gateway.flushed(scrape).get(invalid, 0)
    chat(gateway, key="sk-sb-unknown")
    assert gateway.settled(scrape, {invalid: before + 1}).get(invalid) == before + 1
    lines = access_log("metered", 3)
    assert [line["status"] for line in lines] == [200, 200, 429], lines
    assert all(line["team"] == "metered-team" for line in lines)
    assert [line["cost_usd"] for line in lines[:2]] == ["0.00006", "0.00006"]
    assert lines[1]["key_budget_remaining_usd"] == "0.99988"
    assert lines[1]["team_budget_remaining_usd"] == "0.99988"


# --- an open gateway ------------------------------------------------------------------------

def test_open_gateway_serves_callers_without_keys(mock):
    with serving(fill_config(CONFIG, mock) + "auth: {required: false}\n", name="open-gateway") as gw:
        assert chat(gw).status_code == 200
        assert chat(gw, key="sk-placeholder").status_code == 200
        # Known keys keep their limits and model access.
        error_of(chat(gw, key=KEYS["claude"]), 403, "model_not_allowed")
        error_of(chat(gw, key=KEYS["expired"]), 401, "invalid_api_key")
