"""Usage, cost and metrics end to end: a scripted mix of requests (JSON, streams, fallbacks,
errors, embeddings) through the real Envoy, the mock reporting known usage (`x-mock-usage`), then
exact token counts and cost checked in Envoy's `/stats/prometheus` and in the JSON access log.

Every expected number is worked out by hand below from the prices in CONFIG (USD per million
tokens): cost = (input - cached - written) * input_rate + cached * cache_read
+ written * cache_write + output * output_rate.
"""

import json
import re
import time
import uuid

import httpx
import openai
import pytest

from common import HELLO, scrape
from harness import LOGS, Gateway, fill_config, serving

CONFIG = """
options:
  access_log: "${ACCESS_LOG}"
  overhead_sampling: 1   # every request's overhead measured, so every one is counted
providers:
  openai: {kind: openai, base_url: "${MOCK}/v1", api_key: sk-openai}
  azure: {kind: azure, base_url: "${MOCK}", api_key: azure-key, api_version: "2024-10-21"}
  groq: {kind: groq, base_url: "${MOCK}/openai/v1", api_key: gsk}
  anthropic: {kind: anthropic, base_url: "${MOCK}", api_key: sk-ant}
  o429: {kind: openai, base_url: "${MOCK}/mock/status=429/v1", api_key: sk-429}
  o503: {kind: openai, base_url: "${MOCK}/mock/status=503/v1", api_key: sk-503}
  refused: {kind: openai, base_url: "http://127.0.0.1:${DEAD_PORT}/v1", api_key: sk-dead}
models:
  - name: gpt-4o
    price: {input: 2.5, output: 10, cache_read: 1.25}
    deployments: [{provider: openai, model: gpt-4o-2024-08-06}]
  - name: azure-gpt
    deployments: [{provider: azure, model: prod-4o, price: {input: 5, output: 15}}]
  - name: llama
    price:
      input: 0.05
      output: 0.08
      tiers: [{above_prompt_tokens: 1000, input: 0.2, output: 0.4}]
    deployments: [{provider: groq, model: llama-3.1-8b-instant}]
  - name: fb-429
    price: {input: 100, output: 100}
    deployments: [{provider: o429, model: m}]
    fallbacks: [gpt-4o]
  - name: fb-refused
    deployments: [{provider: refused, model: m, price: {input: 100, output: 100}}]
    fallbacks: [gpt-4o]
  - name: only-503
    price: {input: 100, output: 100}
    deployments: [{provider: o503, model: m}]
  - name: unpriced
    deployments: [{provider: openai, model: my-finetune}]
  - name: embed
    price: {input: 0.02, output: 0}
    deployments: [{provider: openai, model: text-embedding-3-small}]
  - name: claude
    price: {input: 3, output: 15, cache_read: 0.3, cache_write: 3.75}
    max_tokens: 1024
    deployments: [{provider: anthropic, model: claude-sonnet-4-5}]
"""

# Labels of a series: (requested model, provider, deployment) as Prometheus shows them.
GPT = ("gpt-4o", "openai", "gpt-4o_0")
AZURE = ("azure-gpt", "azure", "azure-gpt_0")
LLAMA = ("llama", "groq", "llama_0")
FB429_ANSWER = ("fb-429", "openai", "gpt-4o_0")  # the fallback served by gpt-4o's deployment
FB429_FAILED = ("fb-429", "o429", "fb-429_0")
REFUSED_ANSWER = ("fb-refused", "openai", "gpt-4o_0")
REFUSED_FAILED = ("fb-refused", "refused", "fb-refused_0")
ONLY503 = ("only-503", "o503", "only-503_0")
UNPRICED = ("unpriced", "openai", "unpriced_0")
EMBED = ("embed", "openai", "embed_0")
CLAUDE = ("claude", "anthropic", "claude_0")
NOTHING = ("none", "none", "none")


def usage_header(prompt=0, completion=0, cached=0, reasoning=0, written=0):
    return {"x-mock-usage": f"prompt:{prompt};completion:{completion};cached:{cached};"
                            f"cache_write:{written};reasoning:{reasoning}"}


class Mix:
    """Runs the scripted requests once; remembers each one's request id and what the client saw."""

    def __init__(self, gw: Gateway):
        self.gw = gw
        self.client = gw.client()
        self.ids: dict[str, str] = {}
        self.seen: dict[str, object] = {}

    def headers(self, name: str, extra: dict | None = None) -> dict:
        self.ids[name] = f"{name}-{uuid.uuid4().hex[:8]}"
        return {"x-request-id": self.ids[name], **(extra or {})}

    def chat(self, name, model, usage, **kwargs):
        raw = self.client.chat.completions.with_raw_response.create(
            model=model, messages=HELLO, extra_headers=self.headers(name, usage), **kwargs)
        self.seen[name] = (raw.headers, raw.parse())

    def stream(self, name, model, usage, include_usage=False):
        kwargs = {"stream_options": {"include_usage": True}} if include_usage else {}
        chunks = list(self.client.chat.completions.create(
            model=model, messages=HELLO, stream=True, extra_headers=self.headers(name, usage), **kwargs))
        self.seen[name] = chunks

    def run(self):
        # A. JSON: 100 uncached * 2.5 + 20 cached * 1.25 + 30 out * 10 = 250 + 25 + 300 = 575 µ$
        self.chat("json", "gpt-4o", usage_header(120, 30, cached=20))
        # B. stream, no usage asked: 200 * 2.5 + 50 * 10 = 500 + 500 = 1000 µ$ (10 of the 50
        #    output tokens are reasoning: billed once, as output)
        self.stream("stream", "gpt-4o", usage_header(200, 50, reasoning=10))
        # C. stream with usage: 40 * 2.5 + 40 * 1.25 + 20 * 10 = 100 + 50 + 200 = 350 µ$
        self.stream("stream_usage", "gpt-4o", usage_header(80, 20, cached=40), include_usage=True)
        # D. Azure, the deployment's own price: 1000 * 5 + 100 * 15 = 5000 + 1500 = 6500 µ$
        self.chat("azure", "azure-gpt", usage_header(1000, 100))
        # E. above the tier (2000 > 1000): 2000 * 0.2 + 100 * 0.4 = 400 + 40 = 440 µ$
        self.chat("tier", "llama", usage_header(2000, 100))
        # F. below it: 500 * 0.05 + 100 * 0.08 = 25 + 8 = 33 µ$
        self.chat("below_tier", "llama", usage_header(500, 100))
        # G. 429 then the fallback answers: only the answer is priced, at gpt-4o's rates:
        #    10 * 2.5 + 5 * 10 = 25 + 50 = 75 µ$ (fb-429's own $100/M never applies)
        self.chat("fallback_429", "fb-429", usage_header(10, 5))
        # H. connection refused, the fallback streams: 30 * 2.5 + 10 * 10 = 75 + 100 = 175 µ$
        self.stream("fallback_refused", "fb-refused", usage_header(30, 10))
        # I. every attempt 503: an error, nothing priced
        with pytest.raises(openai.InternalServerError):
            self.chat("error_503", "only-503", usage_header(10, 5))
        # J. unknown model: refused before routing
        with pytest.raises(openai.NotFoundError):
            self.chat("unknown", "no-such-model", usage_header(10, 5))
        # K. no price configured: tokens counted, cost unknown (not zero)
        self.chat("unpriced", "unpriced", usage_header(7, 3))
        # L. embeddings: 50 * 0.02 = 1 µ$
        raw = self.client.embeddings.with_raw_response.create(
            model="embed", input="hello", extra_headers=self.headers("embeddings", usage_header(50)))
        self.seen["embeddings"] = (raw.headers, raw.parse())
        # M. a stream cut short by the provider: the client got a 200 and an error event, the
        #    provider never reported usage: an upstream error, no tokens, no cost
        with httpx.stream("POST", self.gw.base_url + "/chat/completions", timeout=20,
                          headers=self.headers("cut", {"x-mock-cut": "1"}),
                          json={"model": "gpt-4o", "messages": HELLO, "stream": True}) as r:
            self.seen["cut"] = (r.status_code, r.read().decode())
        # N. Anthropic, which reports cache writes: 1000 in = 200 read + 500 written + 300 plain;
        #    300 * 3 + 200 * 0.3 + 500 * 3.75 + 100 * 15 = 900 + 60 + 1875 + 1500 = 4335 µ$
        self.chat("anthropic", "claude", usage_header(1000, 100, cached=200, written=500))
        # O. Anthropic stream: 60 * 3 + 40 * 3.75 + 20 * 15 = 180 + 150 + 300 = 630 µ$
        self.stream("anthropic_stream", "claude", usage_header(100, 20, written=40))


@pytest.fixture(scope="module")
def gw(mock, dead_port):
    LOGS.mkdir(parents=True, exist_ok=True)
    access_log = LOGS / f"usage-access-{uuid.uuid4().hex[:8]}.jsonl"
    with serving(fill_config(CONFIG, mock, dead_port, ACCESS_LOG=str(access_log)), name="usage") as gateway:
        gateway.access_log = access_log
        yield gateway


@pytest.fixture(scope="module")
def mix(gw):
    m = Mix(gw)
    m.run()
    return m


# The API clients of each operation speak in these tests (the `switchboard_api` label).
API_OF = {"chat": "openai_chat", "embeddings": "openai_embeddings"}


def key(metric, target, operation="chat", **extra):
    model, provider, deployment = target
    labels = {"gen_ai_operation_name": operation, "switchboard_api": API_OF[operation],
              "gen_ai_request_model": model,
              "gen_ai_provider_name": provider, "switchboard_deployment": deployment, **extra}
    return (metric, frozenset(labels.items()))


def tokens(target, input, output, cache_read=0, reasoning=0, operation="chat", cache_write=0):
    """The five token series of one target."""
    name = "switchboard_gen_ai_client_token_usage"
    return {
        key(name, target, operation, gen_ai_token_type="input"): input,
        key(name, target, operation, gen_ai_token_type="output"): output,
        key(name, target, operation, gen_ai_token_type="cache_read"): cache_read,
        key(name, target, operation, gen_ai_token_type="cache_write"): cache_write,
        key(name, target, operation, gen_ai_token_type="reasoning"): reasoning,
    }


def requests(target, status_class, n, operation="chat"):
    return {key("switchboard_requests", target, operation, http_status_class=status_class): n}


def errors(target, error_type, n):
    return {key("switchboard_upstream_errors", target, error_type=error_type): n}


def cost(target, nano_usd, operation="chat"):
    return {key("switchboard_cost_nano_usd", target, operation): nano_usd}


def fallbacks(target, n):
    return {key("switchboard_fallbacks", target): n}


def summary(headers):
    """The `x-switchboard` dictionary (`provider="openai", ..., input=120, ...`): strings
    unquoted, numbers as ints."""
    items = (item.split("=", 1) for item in headers["x-switchboard"].split(", "))
    return {k: v.strip('"') if v.startswith('"') else int(v) for k, v in items}


def test_the_client_sees_what_it_asked_for(mix):
    headers, completion = mix.seen["json"]
    assert completion.usage.prompt_tokens == 120
    assert headers["x-switchboard-cost"] == "0.000575"
    assert summary(headers) == {"provider": "openai", "deployment": "gpt-4o/0", "attempts": 1, "input": 120,
                                "output": 30, "cached": 20, "cache-write": 0, "reasoning": 0}

    headers, _ = mix.seen["fallback_429"]
    assert (headers["x-switchboard-cost"], summary(headers)["attempts"]) == ("0.000075", 2)
    assert summary(headers)["deployment"] == "gpt-4o/0"
    headers, _ = mix.seen["unpriced"]
    assert "x-switchboard-cost" not in headers and summary(headers)["input"] == 7
    headers, _ = mix.seen["embeddings"]
    assert headers["x-switchboard-cost"] == "0.000001"
    headers, completion = mix.seen["anthropic"]
    assert completion.usage.prompt_tokens == 1000  # Anthropic's 300 + 200 read + 500 written
    assert (headers["x-switchboard-cost"], summary(headers)["cache-write"]) == ("0.004335", 500)

    # Usage was asked from the provider on every stream, but only C's client sees a usage chunk.
    assert all(c.usage is None for c in mix.seen["stream"])
    assert all(c.usage is None for c in mix.seen["fallback_refused"])
    usage_chunks = [c for c in mix.seen["stream_usage"] if c.usage is not None]
    assert len(usage_chunks) == 1 and usage_chunks[0].usage.prompt_tokens == 80
    status, text = mix.seen["cut"]
    assert status == 200 and "stream_interrupted" in text and "[DONE]" not in text


def test_prometheus_counts_exactly_the_tokens_and_cost(gw, mix):
    expected = {}
    # gpt-4o: A + B + C (+ the cut stream M, which reported no usage)
    expected |= requests(GPT, "2xx", 4)
    expected |= tokens(GPT, input=120 + 200 + 80, output=30 + 50 + 20, cache_read=20 + 40, reasoning=10)
    expected |= cost(GPT, (575 + 1000 + 350) * 1000)  # µ$ → nano-dollars
    expected |= errors(GPT, "stream_interrupted", 1)
    # Azure
    expected |= requests(AZURE, "2xx", 1)
    expected |= tokens(AZURE, 1000, 100)
    expected |= cost(AZURE, 6500 * 1000)
    # llama, both tiers
    expected |= requests(LLAMA, "2xx", 2)
    expected |= tokens(LLAMA, 2000 + 500, 100 + 100)
    expected |= cost(LLAMA, (440 + 33) * 1000)
    # 429 → fallback: labelled with the model asked for and the deployment that served it
    expected |= requests(FB429_ANSWER, "2xx", 1)
    expected |= tokens(FB429_ANSWER, 10, 5)
    expected |= cost(FB429_ANSWER, 75 * 1000)
    expected |= fallbacks(FB429_ANSWER, 1)
    expected |= errors(FB429_FAILED, "rate_limited", 1)
    # refused → fallback stream
    expected |= requests(REFUSED_ANSWER, "2xx", 1)
    expected |= tokens(REFUSED_ANSWER, 30, 10)
    expected |= cost(REFUSED_ANSWER, 175 * 1000)
    expected |= fallbacks(REFUSED_ANSWER, 1)
    expected |= errors(REFUSED_FAILED, "no_response", 1)
    # 503: the route retries it once (retries = 1), both attempts fail; nothing is priced
    expected |= requests(ONLY503, "5xx", 1)
    expected |= errors(ONLY503, "server_error", 2)
    expected |= fallbacks(ONLY503, 1)
    # unknown model: no model, provider or deployment
    expected |= requests(NOTHING, "4xx", 1)
    # unpriced: tokens, no cost series
    expected |= requests(UNPRICED, "2xx", 1)
    expected |= tokens(UNPRICED, 7, 3)
    # embeddings
    expected |= requests(EMBED, "2xx", 1, "embeddings")
    expected |= tokens(EMBED, 50, 0, operation="embeddings")
    expected |= cost(EMBED, 1 * 1000, "embeddings")
    # Anthropic: cache reads and writes, each at its own rate
    expected |= requests(CLAUDE, "2xx", 2)
    expected |= tokens(CLAUDE, 1000 + 100, 100 + 20, cache_read=200, cache_write=500 + 40)
    expected |= cost(CLAUDE, (4335 + 630) * 1000)

    counters = ("switchboard_requests", "switchboard_gen_ai_client_token_usage",
                "switchboard_cost_nano_usd", "switchboard_fallbacks", "switchboard_upstream_errors")
    got = {k: v for k, v in gw.settled(scrape, expected).items() if k[0] in counters}
    assert got == expected


def test_histograms_count_every_request(gw, mix):
    # Histograms reach /stats/prometheus at Envoy's stats flush (every 5 s).
    duration = "switchboard_gen_ai_client_operation_duration_count"
    first_chunk = "switchboard_gen_ai_client_operation_time_to_first_chunk_count"
    overhead = "switchboard_gateway_overhead_count"
    expected_requests = {GPT: 4, AZURE: 1, LLAMA: 2, FB429_ANSWER: 1, REFUSED_ANSWER: 1,
                         ONLY503: 1, NOTHING: 1, UNPRICED: 1, CLAUDE: 2}
    expected = {key(duration, t): n for t, n in expected_requests.items()}
    expected |= {key(overhead, t): n for t, n in expected_requests.items()}
    expected[key(duration, EMBED, "embeddings")] = 1
    expected[key(overhead, EMBED, "embeddings")] = 1
    # streams: B, C and M on gpt-4o; H via the fallback
    expected[key(first_chunk, GPT)] = 3
    expected[key(first_chunk, REFUSED_ANSWER)] = 1
    expected[key(first_chunk, CLAUDE)] = 1
    deadline = time.monotonic() + 15
    while True:
        got = {k: v for k, v in scrape(gw).items() if k[0] in (duration, first_chunk, overhead)}
        if got == expected or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert got == expected
    # Durations are in ms: every request here took less than 10 s.
    buckets = [(k, v) for k, v in scrape(gw).items()
               if k[0] == "switchboard_gen_ai_client_operation_duration_bucket"
               and ("le", "10000") in k[1]]
    assert sum(v for _, v in buckets) == sum(expected_requests.values()) + 1


def access_log_lines(gw, ids: dict, timeout=20.0) -> dict:
    """The access log's JSON lines by request id, waiting for Envoy's file flush."""
    deadline = time.monotonic() + timeout
    while True:
        lines = {}
        if gw.access_log.exists():
            for line in gw.access_log.read_text().splitlines():
                entry = json.loads(line)
                lines[entry["request_id"]] = entry
        if all(i in lines for i in ids.values()) or time.monotonic() > deadline:
            return lines
        time.sleep(0.25)


# (request, model, provider, deployment, attempts, input, output, cached, reasoning, cost, status)
LEDGER = [
    ("json", "gpt-4o", "openai", "gpt-4o/0", 1, 120, 30, 20, 0, 0.000575, 200),
    ("stream", "gpt-4o", "openai", "gpt-4o/0", 1, 200, 50, 0, 10, 0.001, 200),
    ("stream_usage", "gpt-4o", "openai", "gpt-4o/0", 1, 80, 20, 40, 0, 0.00035, 200),
    ("azure", "azure-gpt", "azure", "azure-gpt/0", 1, 1000, 100, 0, 0, 0.0065, 200),
    ("tier", "llama", "groq", "llama/0", 1, 2000, 100, 0, 0, 0.00044, 200),
    ("below_tier", "llama", "groq", "llama/0", 1, 500, 100, 0, 0, 0.000033, 200),
    ("fallback_429", "fb-429", "openai", "gpt-4o/0", 2, 10, 5, 0, 0, 0.000075, 200),
    ("fallback_refused", "fb-refused", "openai", "gpt-4o/0", 2, 30, 10, 0, 0, 0.000175, 200),
    ("error_503", "only-503", "o503", "only-503/0", 2, None, None, None, None, None, 503),
    ("unknown", None, None, None, 0, None, None, None, None, None, 404),
    ("unpriced", "unpriced", "openai", "unpriced/0", 1, 7, 3, 0, 0, None, 200),
    ("embeddings", "embed", "openai", "embed/0", 1, 50, 0, 0, 0, 0.000001, 200),
    ("cut", "gpt-4o", "openai", "gpt-4o/0", 1, None, None, None, None, None, 200),
    ("anthropic", "claude", "anthropic", "claude/0", 1, 1000, 100, 200, 0, 0.004335, 200),
    ("anthropic_stream", "claude", "anthropic", "claude/0", 1, 100, 20, 0, 0, 0.00063, 200),
]

CACHE_WRITES = {"anthropic": 500, "anthropic_stream": 40}


def test_access_log_is_the_spend_ledger(gw, mix):
    lines = access_log_lines(gw, mix.ids)
    assert all(i in lines for i in mix.ids.values()) and len(mix.ids) == len(LEDGER)
    for name, model, provider, deployment, attempts, inp, out, cached, reasoning, usd, status in LEDGER:
        line = lines[mix.ids[name]]
        got = {k: line[k] for k in ("model", "provider", "deployment", "attempts", "input_tokens",
                                    "output_tokens", "cached_tokens", "reasoning_tokens", "cost_usd",
                                    "status", "method", "path", "cache_write_tokens")}
        assert got == {"model": model, "provider": provider, "deployment": deployment,
                       "attempts": attempts, "input_tokens": inp, "output_tokens": out,
                       "cached_tokens": cached, "reasoning_tokens": reasoning, "cost_usd": usd,
                       "cache_write_tokens": None if inp is None else CACHE_WRITES.get(name, 0),
                       "status": status, "method": "POST",
                       "path": "/v1/embeddings" if name == "embeddings" else "/v1/chat/completions"}, name
        assert line["overhead_us"] > 0, name
        assert isinstance(line["duration_ms"], int) and line["start_time"], name
        streamed = name in ("stream", "stream_usage", "fallback_refused", "cut", "anthropic_stream")
        assert (line["time_to_first_chunk_ms"] is not None) == streamed, name
    # The ledger adds up to the cost counter:
    # 575 + 1000 + 350 + 6500 + 440 + 33 + 75 + 175 + 1 + 4335 + 630 = 14114 µ$
    costs = [line["cost_usd"] for line in lines.values() if line["cost_usd"] is not None]
    assert round(sum(costs) * 1e6) == 14114
    def total_cost(gw):
        return {"total": sum(v for k, v in scrape(gw).items() if k[0] == "switchboard_cost_nano_usd")}
    assert gw.settled(total_cost, {"total": 14114 * 1000}) == {"total": 14114 * 1000}


def test_every_ledger_line_is_json(gw, mix):
    import socket

    # Rejected by Envoy's HTTP codec (a local reply, flag DPE).
    with socket.create_connection(("127.0.0.1", gw.port), timeout=5) as s:
        s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n")
        assert s.recv(100).startswith(b"HTTP/1.1 400")
    # A request id a client chose, with quotes: Envoy writes the id unescaped, so the filter
    # replaces what would break the line.
    httpx.get(gw.url + "/health", headers={"x-request-id": 'quote"and\\backslash'}, timeout=5)
    odd = "quote_and_backslash"
    deadline = time.monotonic() + 10
    while True:
        entries = [json.loads(line) for line in gw.access_log.read_text().splitlines()]
        codec = [e for e in entries if e["response_flags"] == "DPE"]
        health = [e for e in entries if e.get("request_id") == odd]
        if (codec and health) or time.monotonic() > deadline:
            break
        time.sleep(0.25)
    assert codec and codec[0]["status"] == 400 and codec[0].get("cost_usd") is None
    assert health and health[0]["path"] == "/health" and health[0]["model"] is None


def test_grafana_dashboard_reads_metrics_that_exist(gw, mix):
    """Every metric and label the dashboard queries is in the scrape."""
    from harness import ROOT

    dashboard = json.loads((ROOT / "examples/grafana-dashboard.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    assert len(exprs) >= 10
    scraped = scrape(gw)
    names = {k[0] for k in scraped}
    labels = {name for k in scraped for name, _ in k[1]} | {"le"}
    for expr in exprs:
        for metric in re.findall(r"\b(switchboard_\w+)\{", expr):
            assert re.sub(r"_bucket$", "", metric) in {re.sub(r"_(bucket|count|sum)$", "", n) for n in names}, expr
        for group in re.findall(r"by \(([^)]*)\)", expr):
            for label in group.split(","):
                assert label.strip() in labels, (label, expr)


PRICE_FILE = {  # LiteLLM's format: USD per token, provider-prefixed keys
    "sample_spec": {"input_cost_per_token": 0.0, "litellm_provider": "one of ..."},
    "gpt-4o-2024-08-06": {"input_cost_per_token": 2.5e-06, "output_cost_per_token": 1e-05,
                          "cache_read_input_token_cost": 1.25e-06, "mode": "chat"},
    "azure/gpt-4o": {"input_cost_per_token": 2.75e-06, "output_cost_per_token": 1.1e-05, "mode": "chat"},
}


def test_render_bakes_litellm_prices(tmp_path):
    import subprocess

    from harness import CLI, WASM

    prices = tmp_path / "prices.json"
    prices.write_text(json.dumps(PRICE_FILE))
    config = tmp_path / "sb.yaml"
    config.write_text("""
options: {prices_file: prices.json}
providers:
  openai: {kind: openai, api_key: sk}
  azure: {kind: azure, base_url: "https://r.openai.azure.com", api_key: k}
models:
  - name: gpt-4o
    deployments:
      - {provider: openai, model: gpt-4o-2024-08-06}
      - {provider: azure, model: prod-4o, price_as: azure/gpt-4o}
      - {provider: azure, model: other, price: {input: 1, output: 2}}
  - name: mystery
    deployments: [{provider: openai, model: my-finetune}]
""")
    out = subprocess.run([str(CLI), "validate", str(config)], capture_output=True, text=True, check=True).stdout
    assert "models[0].deployments[0] (openai gpt-4o-2024-08-06): priced from LiteLLM `gpt-4o-2024-08-06`" in out
    assert "models[0].deployments[1] (azure prod-4o): priced from LiteLLM `azure/gpt-4o`" in out
    assert "models[0].deployments[2] (azure other): priced by its `price:`" in out
    assert "models[1].deployments[0] (openai my-finetune): no price" in out

    bootstrap = tmp_path / "envoy.yaml"
    result = subprocess.run([str(CLI), "render", str(config), "--prices", str(prices), "--wasm", str(WASM),
                             "--format", "json", "-o", str(bootstrap)], capture_output=True, text=True, check=True)
    assert "warning: models[1].deployments[0] (openai my-finetune): no price" in result.stderr
    envoy = json.loads(bootstrap.read_text())
    hcm = envoy["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    gateway = next(f for f in hcm["http_filters"] if f["name"] == "switchboard")
    filter_config = json.loads(gateway["typed_config"]["config"]["configuration"]["value"])
    deployments = filter_config["models"][0]["deployments"]
    assert deployments[0]["price"] == {"input": 2.5, "output": 10.0, "cache_read": 1.25}
    assert deployments[1]["price"] == {"input": 2.75, "output": 11.0}
    assert deployments[2]["price"] == {"input": 1, "output": 2}
    assert "price" not in filter_config["models"][1]["deployments"][0]
    assert hcm["access_log"][0]["name"] == "envoy.access_loggers.stdout"
    assert {t["tag_name"] for t in envoy["stats_config"]["stats_tags"]} >= {
        "gen_ai.request.model", "gen_ai.provider.name", "switchboard.deployment", "gen_ai.token.type"}
