#!/usr/bin/env bash
# The main job: builds Switchboard, installs Envoy 1.40, renders examples/quickstart.yaml and
# runs the gateway on 127.0.0.1:10000 in the foreground. Providers whose credentials are in
# the environment are served for real; the others from the local mock provider, which it
# starts when one needs it (`switchboard env` says which variables each provider reads).
#
#   SWITCHBOARD_CONFIG=my.yaml scripts/run.sh     # another filter configuration
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

CONFIG="${SWITCHBOARD_CONFIG:-$ROOT/examples/quickstart.yaml}"
RUN_DIR="$ROOT/.run"
mkdir -p "$RUN_DIR"

say "building"
build_wasm
build_native
ensure_venv

render=("$CLI" render "$CONFIG" --wasm "$WASM" -o "$RUN_DIR/envoy.yaml")
mock_pid=""
cleanup() { [ -n "$mock_pid" ] && kill "$mock_pid" 2>/dev/null || true; }
trap cleanup EXIT INT TERM

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
  mock_pid=$!
  for _ in $(seq 50); do grep -q listening "$RUN_DIR/mock.out" 2>/dev/null && break; sleep 0.1; done
  grep -q listening "$RUN_DIR/mock.out" || die "mock provider did not start (see $RUN_DIR/mock.log)"
  render+=(--mock-upstream "http://127.0.0.1:$mock_port")
  if [ "$(from_report every)" = every ]; then
    say "no provider keys in the environment ($(from_report status)):"
    say "serving every model from the local MOCK provider on 127.0.0.1:$mock_port"
  else
    render+=(--mock-providers "$mocked")
    say "$(from_report status)"
    say "(MOCK: the local mock provider on 127.0.0.1:$mock_port)"
  fi
elif [ -n "$env_report" ]; then
  say "$(from_report status): serving the real providers"
fi
"${render[@]}"

port=$(awk '/^listener:/ {for (i=1;i<=NF;i++) if ($i ~ /port:/) {gsub(/[^0-9]/, "", $(i+1)); print $(i+1)}}' "$CONFIG")
port="${port:-10000}"
cat >&2 <<MSG

Switchboard is starting on http://127.0.0.1:$port (Ctrl-C stops it). Try:

  curl -s http://127.0.0.1:$port/v1/chat/completions -H 'content-type: application/json' \\
    -d '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Say hello"}]}'

  python3 -c 'import openai; c = openai.OpenAI(base_url="http://127.0.0.1:$port/v1", api_key="unused");
print(c.chat.completions.create(model="gpt-4o-mini", messages=[{"role":"user","content":"hi"}]).choices[0].message.content)'

MSG
"$ENVOY" -c "$RUN_DIR/envoy.yaml" --base-id "${SWITCHBOARD_BASE_ID:-7}" -l warning \
  --concurrency "${SWITCHBOARD_CONCURRENCY:-2}" --log-path "$RUN_DIR/envoy.log" &
envoy_pid=$!
trap 'kill $envoy_pid 2>/dev/null; cleanup' EXIT INT TERM
wait $envoy_pid
