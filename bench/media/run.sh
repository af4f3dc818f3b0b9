#!/usr/bin/env bash
# One-shot media relay benchmark: builds the C parts, runs C / Node / Deno naive /
# Deno best (+ Deno FFI) at 10, 25, 50 calls plus a loss-free-rate search, and
# prints one table (ratios vs Node and C).  ~3 minutes.  Extra args go to bench.ts:
#   --all            also the other Deno variants (pumps, K=2/4/8, workers, node:dgram, ...)
#   --calls 10,25,50 --duration 2 --tries 3 --no-search --json FILE --prio none
set -euo pipefail
cd "$(dirname "$0")"
command -v cc >/dev/null || { echo "needs a C compiler (cc)" >&2; exit 1; }
command -v node >/dev/null || { echo "needs node" >&2; exit 1; }
# The native media engine's library (deno-product-native).
bash ../../scripts/build_native.sh >/dev/null
exec deno run -A bench.ts "$@"
