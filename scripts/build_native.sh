#!/usr/bin/env bash
# Builds the optional native media engine (native/media_engine.c) for each architecture whose C
# compiler is present: dist/native/libintercom_media.x86_64.so (cc / gcc) and
# dist/native/libintercom_media.aarch64.so (aarch64-linux-gnu-gcc, Debian's gcc-aarch64-linux-gnu).
# Usage: scripts/build_native.sh [--require x86_64,aarch64] [--out DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
out=dist/native
require=""
while [ $# -gt 0 ]; do
  case "$1" in
    --require) require="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    *) echo "Cannot build the native engine: unknown argument $1" >&2; exit 2 ;;
  esac
done
mkdir -p "$out"
src=native/media_engine.c
flags=(-O2 -std=gnu11 -Wall -Wextra -Werror -shared -fPIC -fvisibility=default)
built=()
build() { # arch compiler
  local arch=$1 cc=$2 lib="$out/libintercom_media.$1.so"
  if ! command -v "$cc" >/dev/null 2>&1; then
    return 1
  fi
  if [ -f "$lib" ] && [ "$lib" -nt "$src" ] && [ "$lib" -nt "$0" ]; then
    built+=("$arch"); return 0
  fi
  "$cc" "${flags[@]}" -o "$lib.tmp" "$src" -lpthread -lm
  mv "$lib.tmp" "$lib"
  built+=("$arch")
}
host=$(uname -m)
case "$host" in
  x86_64) build x86_64 cc || true; build aarch64 aarch64-linux-gnu-gcc || true ;;
  aarch64) build aarch64 cc || true; build x86_64 x86_64-linux-gnu-gcc || true ;;
esac
for want in ${require//,/ }; do
  if [[ ! " ${built[*]} " == *" $want "* ]]; then
    echo "Cannot build the native media engine for $want: no C compiler for it (apt-get install gcc gcc-aarch64-linux-gnu)" >&2
    exit 1
  fi
done
echo "native media engine: ${built[*]:-none} in $out"
