#!/usr/bin/env bash
# The whole test suite: format, lints, native unit tests, the core's tests on wasm32 under
# Node (wasm-bindgen-test), then end to end with the real Envoy, the mock provider, the
# official `openai` SDK and the coding agents (Claude Code, Codex CLI). Installs what it needs
# on first run; quiet and idempotent after.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

ensure_wasm_target
ensure_venv

# wasm-bindgen's test runner must match the wasm-bindgen crate version exactly.
ensure_wasm_bindgen_runner() {
  local version
  version=$(awk '/^name = "wasm-bindgen"$/ {getline; gsub(/[version =\"]/, ""); print; exit}' Cargo.lock)
  [ -n "$version" ] || die "wasm-bindgen not found in Cargo.lock"
  if [ "$("$TOOLS/bin/wasm-bindgen-test-runner" --version 2>/dev/null | awk '{print $2}')" = "$version" ]; then
    return 0
  fi
  say "installing wasm-bindgen-test-runner $version (one-time build)"
  cargo install -q wasm-bindgen-cli --version "$version" --root "$TOOLS"
}
command -v node >/dev/null || ensure_apt nodejs

# Runs a cargo test command; prints one summary line, or everything when something fails.
run_tests() {
  local log
  log=$(mktemp)
  if "$@" >"$log" 2>&1; then
    awk '/^test result/ {p += $4; f += $6} END {printf "%d passed, %d failed\n", p, f}' "$log"
    rm -f "$log"
  else
    cat "$log"
    exit 1
  fi
}

say "format"
cargo fmt --all -- --check

say "clippy (native and wasm32; unwrap/expect/panic/indexing denied in filter code)"
cargo clippy -q --workspace --all-targets -- -D warnings
"${CARGO_WASM[@]}" clippy -q -p switchboard -p switchboard-core --lib --target "$WASM_TARGET" -- -D warnings

say "unit tests (native)"
run_tests cargo test -q --workspace

say "core unit tests on wasm32 (wasm-bindgen-test on Node)"
ensure_wasm_bindgen_runner
CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER="$TOOLS/bin/wasm-bindgen-test-runner" \
  run_tests cargo test -p switchboard-core --lib --target "$WASM_TARGET"

say "build (wasm module, CLI, mock provider, rate-limit service)"
build_wasm
build_native

say "the fleet backend's engine (Redis; envoyproxy/ratelimit for the reference-engine test)"
ensure_redis
ensure_ratelimit

say "end to end (real Envoy + mock providers + openai SDK + coding agents)"
ensure_agents
# Here the agent tests must run: a missing agent fails them instead of skipping them.
SWITCHBOARD_REQUIRE_AGENTS=1 "$VENV/bin/python" -m pytest -q -p no:cacheprovider tests/e2e "$@"
