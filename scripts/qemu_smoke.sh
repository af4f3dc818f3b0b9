#!/usr/bin/env bash
# Smoke test of the aarch64 Deno under qemu-user (see scripts/arm64_deno.sh):
# Deno KV (sqlite), UDP on loopback and, inside `unshare -rn` only, a
# multicast join/send/receive on 238.9.9.1:8302 over lo.
#
#   bash scripts/qemu_smoke.sh            # prints timings, exit 1 on failure
#
# Type-checks with the native deno first (the DENO_DIR check cache is shared
# across architectures), so the qemu run skips the ~100 s emulated tsc.
set -euo pipefail
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ARM="$(bash "$repo_root/scripts/arm64_deno.sh")"
work="$(mktemp -d)"; trap 'rm -rf "$work"' EXIT
export DENO_DIR="$work/deno_dir" NO_COLOR=1
TIMEFORMAT='%R s'

cat >"$work/smoke_test.ts" <<'EOF'
function eq<T>(a: T, b: T) { if (a !== b) throw new Error(`${a} !== ${b}`); }
for (let i = 0; i < 20; i++) Deno.test(`trivial ${i}`, () => eq(String(i * 2), `${i + i}`));
Deno.test("kv", async () => {
  const dir = await Deno.makeTempDir();
  const kv = await Deno.openKv(`${dir}/kv.sqlite`);
  await kv.set(["a"], 1);
  eq((await kv.atomic().check({ key: ["b"], versionstamp: null }).set(["b"], 2).commit()).ok, true);
  eq((await kv.get<number>(["a"])).value, 1);
  kv.close();
  await Deno.remove(dir, { recursive: true });
});
Deno.test("udp", async () => {
  const a = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
  const b = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
  await b.send(new TextEncoder().encode("XXXCID"), a.addr);
  eq(new TextDecoder().decode((await a.receive())[0]), "XXXCID");
  a.close(); b.close();
});
EOF
cat >"$work/mcast.ts" <<'EOF'
const rx = Deno.listenDatagram({ transport: "udp", hostname: "0.0.0.0", port: 8302, reuseAddress: true });
const m = await rx.joinMulticastV4("238.9.9.1", "127.0.0.1");
const tx = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
const t = setTimeout(() => { console.log("multicast: TIMEOUT"); Deno.exit(2); }, 10000);
await tx.send(new TextEncoder().encode("XXXCID-mc"), { transport: "udp", hostname: "238.9.9.1", port: 8302 });
const [d] = await rx.receive();
clearTimeout(t);
console.log(`multicast ok on ${Deno.build.arch}: ${new TextDecoder().decode(d)}`);
await m.leave(); rx.close(); tx.close();
EOF
P=(--unstable-kv --unstable-net --allow-read --allow-write --allow-net=127.0.0.1)
cd "$work"
timed() { # timed LABEL LOG CMD...: run CMD, print wall time, dump LOG on failure
  local label="$1" log="$2"; shift 2
  echo -n "$label "
  { time "$@" >"$log" 2>&1; } 2>&1 || { echo "FAILED"; cat "$log"; exit 1; }
}
timed "native deno check:" check.log deno check -q smoke_test.ts mcast.ts
timed "native deno test: " native.log deno test -q "${P[@]}" smoke_test.ts
timed "qemu arm64 test:  " arm.log "$ARM" test -q "${P[@]}" smoke_test.ts
grep -E '^ok \|' arm.log
if unshare -rn true 2>/dev/null; then
  # shellcheck disable=SC2016  # $1 is expanded by the inner bash
  unshare -rn bash -c 'ip link set lo up multicast on && ip route add 224.0.0.0/4 dev lo &&
    "$1" run --unstable-net --allow-net mcast.ts' _ "$ARM"
else
  echo "multicast: skipped (unshare -rn not permitted here)"
fi
