#!/usr/bin/env bash
# Fuzzes the native media engine: builds native/fuzz_media_engine.c (which includes
# native/media_engine.c) with clang's libFuzzer, ASan and UBSan, and runs it for a time.
#
# Usage: scripts/fuzz_native.sh [--seconds N] [--corpus DIR]
#   --seconds N   how long to fuzz (default 60; CI runs 60, a release 600 or more)
#   --corpus DIR  inputs kept between runs (default .cache/fuzz-media-engine); the harness starts
#                 from nothing when it is empty
# Prints what libFuzzer found, then "1 passed, 0 failed" (no crash, no model check broken) or
# "0 passed, 1 failed" with the crashing input kept in the corpus directory's parent.
set -uo pipefail
cd "$(dirname "$0")/.."

seconds=60
corpus=.cache/fuzz-media-engine
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) seconds="$2"; shift 2 ;;
    --corpus) corpus="$2"; shift 2 ;;
    *) echo "Cannot fuzz: unknown argument $1" >&2; exit 2 ;;
  esac
done

if ! command -v clang >/dev/null; then
  apt-get update -qq && apt-get install -y -qq clang >/dev/null
fi
command -v clang >/dev/null || { echo "Cannot fuzz: no clang"; echo "0 passed, 1 failed"; exit 1; }

out=.cache/fuzz-build
mkdir -p "$out" "$corpus"
if ! clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
  native/fuzz_media_engine.c -lpthread -lm -o "$out/fuzz_media_engine"; then
  echo "Cannot fuzz: the harness does not build"
  echo "0 passed, 1 failed"
  exit 1
fi

log="$out/fuzz.log"
# -max_len: a datagram batch of the longest datagrams the harness makes (4 KiB).
"$out/fuzz_media_engine" -max_total_time="$seconds" -max_len=4096 -print_final_stats=1 \
  -artifact_prefix="$out/" "$corpus" >"$log" 2>&1
rc=$?
grep -E '^(#[0-9]+ +DONE|stat::number_of_executed_units|stat::peak_rss_mb|==[0-9]+==ERROR|SUMMARY)' "$log" || tail -n 20 "$log"
if [ "$rc" -eq 0 ]; then
  echo "media engine fuzzed for ${seconds} s: $(grep -oE 'stat::number_of_executed_units: [0-9]+' "$log" | grep -oE '[0-9]+$') inputs, no crash, no broken check"
  echo "1 passed, 0 failed"
else
  echo "media engine fuzzing FAILED (rc $rc): see $log and $out/crash-*"
  tail -n 40 "$log"
  echo "0 passed, 1 failed"
  exit 1
fi
