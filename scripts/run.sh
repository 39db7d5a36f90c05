#!/usr/bin/env bash
# The main job: builds Switchboard, installs Envoy 1.40, renders examples/quickstart.yaml and
# runs the gateway on 127.0.0.1:10000 in the foreground. Providers whose credentials are in
# the environment are served for real; the others from the local mock provider, which it
# starts when one needs it (`switchboard env` says which variables each provider reads).
#
#   SWITCHBOARD_CONFIG=my.yaml scripts/run.sh     # another filter configuration
#   scripts/run.sh --fleet   # examples/fleet.yaml: Redis + switchboard-rls + TWO gateways
#                            # (127.0.0.1:10000 and :10001) sharing limits and budgets
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

FLEET=false
if [ "${1:-}" = --fleet ]; then
  FLEET=true
fi
if $FLEET; then
  CONFIG="${SWITCHBOARD_CONFIG:-$ROOT/examples/fleet.yaml}"
else
  CONFIG="${SWITCHBOARD_CONFIG:-$ROOT/examples/quickstart.yaml}"
fi
RUN_DIR="$ROOT/.run"
mkdir -p "$RUN_DIR"

say "building"
build_wasm
build_native
ensure_venv

pids=()
cleanup() {
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do stop_pid "${pids[$i]}"; done
}
trap cleanup EXIT INT TERM

mock_args=()
# One line per variable a provider reads: provider, NAME, set|unset, required|optional. A
# provider with a required variable unset is served by the mock.
env_report=$("$CLI" env "$CONFIG")
# From the report: `mocked` (those providers, comma-separated), `status` (each provider and
# why it is served as it is) or `every` ("every" when the mock serves them all).
from_report() {
  awk -F'\t' -v want="$1" '
    !($1 in seen) { seen[$1] = 1; names[++n] = $1 }
    $4 == "required" && $3 == "set" { real[$1] = real[$1] (real[$1] ? ", " : "") $2 }
    $4 == "required" && $3 == "unset" { missing[$1] = missing[$1] (missing[$1] ? ", " : "") $2 }
    END {
      for (i = 1; i <= n; i++) {
        p = names[i]
        if (p in missing) {
          mocked = mocked (mocked ? "," : "") p; m++
          status = status sep p ": MOCK (" missing[p] " not set)"
        } else {
          status = status sep p ": real" ((p in real) ? " (" real[p] ")" : "")
        }
        sep = "; "
      }
      if (want == "mocked") print mocked
      else if (want == "status") print status
      else if (m > 0 && m == n) print "every"
    }' <<<"$env_report"
}

mocked=$(from_report mocked)
if [ -n "$mocked" ]; then
  mock_port="${SWITCHBOARD_MOCK_PORT:-10080}"
  "$MOCK" --port "$mock_port" > "$RUN_DIR/mock.out" 2> "$RUN_DIR/mock.log" &
  pids+=($!)
  for _ in $(seq 50); do grep -q listening "$RUN_DIR/mock.out" 2>/dev/null && break; sleep 0.1; done
  grep -q listening "$RUN_DIR/mock.out" || die "mock provider did not start (see $RUN_DIR/mock.log)"
  mock_args=(--mock-upstream "http://127.0.0.1:$mock_port")
  if [ "$(from_report every)" = every ]; then
    say "no provider keys in the environment ($(from_report status)):"
    say "serving every model from the local MOCK provider on 127.0.0.1:$mock_port"
  else
    mock_args+=(--mock-providers "$mocked")
    say "$(from_report status)"
    say "(MOCK: the local mock provider on 127.0.0.1:$mock_port)"
  fi
elif [ -n "$env_report" ]; then
  say "$(from_report status): serving the real providers"
fi

start_envoy() { # bootstrap base_id log
  "$ENVOY" -c "$1" --base-id "$2" -l warning --concurrency "${SWITCHBOARD_CONCURRENCY:-2}" \
    --log-path "$3" &
  pids+=($!)
}

if ! $FLEET; then
  "$CLI" render "$CONFIG" --wasm "$WASM" -o "$RUN_DIR/envoy.yaml" "${mock_args[@]}"
  port=$(awk '/^listener:/ {for (i=1;i<=NF;i++) if ($i ~ /port:/) {gsub(/[^0-9]/, "", $(i+1)); print $(i+1)}}' "$CONFIG")
  port="${port:-10000}"
  cat >&2 <<MSG

Switchboard is starting on http://127.0.0.1:$port (Ctrl-C stops it). Try:

  curl -s http://127.0.0.1:$port/v1/chat/completions -H 'content-type: application/json' \\
    -d '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Say hello"}]}'

  python3 -c 'import openai; c = openai.OpenAI(base_url="http://127.0.0.1:$port/v1", api_key="unused");
print(c.chat.completions.create(model="gpt-4o-mini", messages=[{"role":"user","content":"hi"}]).choices[0].message.content)'

MSG
  start_envoy "$RUN_DIR/envoy.yaml" "${SWITCHBOARD_BASE_ID:-7}" "$RUN_DIR/envoy.log"
  wait "${pids[-1]}"
  exit
fi

# The fleet: one Redis (its append-only file in .run/fleet/redis keeps the spend across runs),
# one switchboard-rls, two gateways rendered from the same file (ports 10000 and 10001).
FLEET_DIR="$RUN_DIR/fleet"
mkdir -p "$FLEET_DIR/rls"
ensure_redis
start_redis "$FLEET_DIR/redis"
pids+=("$REDIS_PID")
rls_port=$(free_port)
for i in 0 1; do
  "$VENV/bin/python" - "$CONFIG" "$FLEET_DIR/gateway-$i.yaml" "$i" "$rls_port" <<'PY'
import sys, yaml
source, out, i, rls_port = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
doc = yaml.safe_load(open(source))
doc["listener"] = {**doc.get("listener", {}), "port": doc.get("listener", {}).get("port", 10000) + i}
doc["admin"] = {**doc.get("admin", {}), "port": doc.get("admin", {}).get("port", 9901) + i}
doc["limits"]["service"] = {"address": "127.0.0.1", "port": rls_port}
yaml.safe_dump(doc, open(out, "w"), sort_keys=False)
PY
  "$CLI" render "$FLEET_DIR/gateway-$i.yaml" --wasm "$WASM" -o "$FLEET_DIR/envoy-$i.yaml" \
    --rls-config "$FLEET_DIR/rls/switchboard.yaml" "${mock_args[@]}"
done
start_rls "$FLEET_DIR/rls/switchboard.yaml" "$REDIS_PORT" "$FLEET_DIR/rls.log" "$rls_port"
pids+=("$RLS_PID")
base_id="${SWITCHBOARD_BASE_ID:-7}"
start_envoy "$FLEET_DIR/envoy-0.yaml" "$base_id" "$FLEET_DIR/envoy-0.log"
start_envoy "$FLEET_DIR/envoy-1.yaml" "$((base_id + 1))" "$FLEET_DIR/envoy-1.log"
cat >&2 <<MSG

Two gateways share limits and budgets (Ctrl-C stops everything):
  http://127.0.0.1:10000 and http://127.0.0.1:10001
  rate-limit service switchboard-rls on 127.0.0.1:$rls_port, Redis on 127.0.0.1:$REDIS_PORT
  (counters persist in $FLEET_DIR/redis)

The DEMO key sk-switchboard-fleet-demo has 30 requests a minute and \$0.05 a day; spread requests
over both gateways and watch them share it:

  for port in 10000 10001 10000 10001; do
    curl -s http://127.0.0.1:\$port/v1/chat/completions -H 'authorization: Bearer sk-switchboard-fleet-demo' \\
      -H 'content-type: application/json' -d '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}'
    echo
  done
  redis-cli -p $REDIS_PORT --scan --pattern 'sbrl|*'     # the shared counters

MSG
# Until Ctrl-C, or until one of them exits (then the rest are stopped).
wait -n "${pids[@]}" || true
