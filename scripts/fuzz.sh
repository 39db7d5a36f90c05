#!/usr/bin/env bash
# Fuzzes the translators, stream decoders and config parser with cargo fuzz (libFuzzer):
# every target in fuzz/fuzz_targets (or those named) for SECONDS each (default 60), one after
# another on one core. Each run starts from the committed seeds (fuzz/seeds/TARGET, and
# fuzz/seeds/request for every request_* target) and the corpus grown by earlier runs
# (fuzz/corpus/TARGET, not committed). Prints executions per target; a crash leaves its input
# in fuzz/artifacts/TARGET and makes the script exit 1 once every target has run. Replay one:
#   fuzz/target/x86_64-unknown-linux-gnu/release/TARGET fuzz/artifacts/TARGET/crash-...
#
# Built with `-s none` (no sanitizer; the core has no unsafe code) on the default toolchain:
# stable works, nightly is not needed. FUZZ_SANITIZER=address asks for AddressSanitizer, which
# needs `-Z` flags: nightly when rustup has it, else stable with RUSTC_BOOTSTRAP=1.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

seconds=${1:-60}
shift || true
if ! [[ "$seconds" =~ ^[1-9][0-9]*$ ]]; then
  die "usage: scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]"
fi

CARGO_FUZZ_VERSION=0.13.2
if [ "$("$TOOLS/bin/cargo-fuzz" --version 2>/dev/null)" != "cargo-fuzz $CARGO_FUZZ_VERSION" ]; then
  say "installing cargo-fuzz $CARGO_FUZZ_VERSION (one-time build)"
  cargo install -q --locked cargo-fuzz --version "$CARGO_FUZZ_VERSION" --root "$TOOLS"
fi

command -v c++ >/dev/null || ensure_apt g++ # libfuzzer-sys builds libFuzzer from source

sanitizer=${FUZZ_SANITIZER:-none}
toolchain=()
if [ "$sanitizer" != none ]; then
  if rustup run nightly rustc --version >/dev/null 2>&1; then
    toolchain=(+nightly)
  else
    export RUSTC_BOOTSTRAP=1
  fi
fi
export PATH="$TOOLS/bin:$PATH"
fuzz=(cargo "${toolchain[@]}" fuzz)
fuzz_flags=(--sanitizer "$sanitizer" --fuzz-dir fuzz)

targets=("$@")
[ ${#targets[@]} -gt 0 ] || mapfile -t targets < <(cargo-fuzz list --fuzz-dir fuzz)

logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
say "building the fuzz targets (sanitizer: $sanitizer)"
"${fuzz[@]}" build "${fuzz_flags[@]}" >"$logs/build" 2>&1 || { cat "$logs/build"; exit 1; }
bin_dir=fuzz/target/$(rustc -vV | sed -n 's/^host: //p')/release

say "fuzzing each target for ${seconds}s"
crashed=()
total=0
for target in "${targets[@]}"; do
  corpus=fuzz/corpus/$target
  mkdir -p "$corpus"
  # Seeds of the target, and those its seam's targets share (seeds/request for request_*).
  seeds=()
  for dir in "fuzz/seeds/$target" "fuzz/seeds/${target%_*}"; do
    [ -d "$dir" ] && seeds+=("$dir")
  done
  log=$logs/$target
  status=ok
  mkdir -p "fuzz/artifacts/$target"
  "$bin_dir/$target" "$corpus" "${seeds[@]}" -artifact_prefix="fuzz/artifacts/$target/" \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    >"$log" 2>&1 || status=CRASH
  runs=$(awk '/^stat::number_of_executed_units:/ {print $2}' "$log" | tail -1)
  total=$((total + ${runs:-0}))
  printf '%-22s %12s executions  %s\n' "$target" "${runs:-?}" "$status"
  if [ "$status" != ok ]; then
    crashed+=("$target")
    grep -m1 -A3 -E "panicked at|ERROR: libFuzzer|==ERROR" "$log" | sed 's/^/    /' || tail -5 "$log"
    grep -m1 -o "Test unit written to [^ ]*" "$log" | sed "s/.*written to /    input: /" || true
  fi
done
printf '%-22s %12s executions\n' total "$total"
if [ ${#crashed[@]} -gt 0 ]; then
  die "crashes in: ${crashed[*]} (inputs under fuzz/artifacts/)"
fi
