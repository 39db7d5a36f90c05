#!/usr/bin/env bash
# Builds switchboard.wasm (the Envoy filter), the `switchboard` CLI and the mock provider.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
build_wasm
build_native
size=$(stat -c %s "$WASM")
echo "switchboard.wasm: $WASM ($((size / 1024)) KiB)"
echo "cli:              $CLI"
echo "rate-limit svc:   $RLS (the fleet backend's service)"
