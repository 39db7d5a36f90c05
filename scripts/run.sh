#!/usr/bin/env bash
# The main job: builds Switchboard, installs Envoy 1.40, renders examples/quickstart.yaml and
# runs the gateway on 127.0.0.1:10000 in the foreground. With no provider keys in the
# environment it also starts the local mock provider and serves from it.
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

KEYS=(OPENAI_API_KEY ANTHROPIC_API_KEY AZURE_OPENAI_API_KEY GEMINI_API_KEY COHERE_API_KEY AWS_ACCESS_KEY_ID)
present=()
for k in "${KEYS[@]}"; do [ -n "${!k:-}" ] && present+=("$k"); done

render=("$CLI" render "$CONFIG" --wasm "$WASM" -o "$RUN_DIR/envoy.yaml")
mock_pid=""
cleanup() { [ -n "$mock_pid" ] && kill "$mock_pid" 2>/dev/null || true; }
trap cleanup EXIT INT TERM

if [ ${#present[@]} -eq 0 ]; then
  mock_port="${SWITCHBOARD_MOCK_PORT:-10080}"
  "$MOCK" --port "$mock_port" > "$RUN_DIR/mock.out" 2> "$RUN_DIR/mock.log" &
  mock_pid=$!
  for _ in $(seq 50); do grep -q listening "$RUN_DIR/mock.out" 2>/dev/null && break; sleep 0.1; done
  grep -q listening "$RUN_DIR/mock.out" || die "mock provider did not start (see $RUN_DIR/mock.log)"
  render+=(--mock-upstream "http://127.0.0.1:$mock_port")
  say "no provider keys in the environment (${KEYS[*]}):"
  say "serving every model from the local MOCK provider on 127.0.0.1:$mock_port"
else
  say "provider keys found: ${present[*]} — serving the real providers"
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
