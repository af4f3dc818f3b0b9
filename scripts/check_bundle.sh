#!/usr/bin/env bash
# Release proof that needs no runtime download: `deno task bundle` produces one JavaScript file,
# and that file runs with the product's permissions: --version, then serve and GET /healthz.
# Runs the gateway inside a private network namespace (it joins a multicast group).
# Prints "N passed, M failed".
set -uo pipefail
cd "$(dirname "$0")/.."
DENO="${DENO:-deno}"
passed=0
failed=0
check() { # name, command…
  local name=$1
  shift
  if "$@"; then passed=$((passed + 1)); echo "ok   $name"; else failed=$((failed + 1)); echo "FAIL $name"; fi
}

check "deno task bundle writes dist/intercom-gateway.js" "$DENO" task bundle
version=$(sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' deno.json | head -n 1)
perms=(--unstable-net --unstable-kv --allow-net --allow-read --allow-write --allow-env --allow-sys=networkInterfaces,statfs)
check "the bundle prints the version of deno.json ($version)" \
  bash -c "[ \"\$('$DENO' run ${perms[*]} dist/intercom-gateway.js --version)\" = '$version' ]"

data=$(mktemp -d)
serve_and_probe() {
  unshare -rn bash -c "
    ip link set lo up multicast on && ip route add 224.0.0.0/4 dev lo
    '$DENO' run ${perms[*]} dist/intercom-gateway.js serve --data '$data' --http-host 127.0.0.1 \
      --http-port 18080 --door-port 18302 --media-port 18303 --log-format text &
    pid=\$!
    ok=1
    for _ in \$(seq 1 50); do
      if curl -fsS http://127.0.0.1:18080/healthz 2>/dev/null | grep -q '\"ok\":true'; then ok=0; break; fi
      sleep 0.2
    done
    kill -TERM \$pid
    wait \$pid
    rc=\$?
    [ \$ok -eq 0 ] && [ \$rc -eq 0 ]
  "
}
check "the bundle serves /healthz and exits 0 on SIGTERM" serve_and_probe
rm -rf "$data"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
