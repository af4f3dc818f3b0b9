#!/usr/bin/env bash
# Swap intercom-gateway back to the binary kept by the last upgrade, and the
# store back to the backup taken before that binary migrated it.
#
#   sudo deploy/rollback.sh [--root DIR] [--data DIR] [--binary-only]
#
#   --root DIR      roll back the installation in DIR instead of / (tests).
#   --data DIR      the data directory (default: INTERCOM_DATA of
#                   /etc/intercom-gateway/gateway.env, else /var/lib/intercom-gateway).
#   --binary-only   swap the binaries, leave the store as it is.
#
# Swaps /usr/local/bin/intercom-gateway and intercom-gateway.previous, so
# running it twice rolls forward again. Each binary is asked which store
# schema it knows (`intercom-gateway schema --known`; 0.1.0 predates the
# command: schema 1). When the binary rolled back to knows an older schema
# than the current one, the current binary first restores the newest backup
# in DATA/backup/ that the older one can open (`restore --schema N`): the
# one the upgrade made before migrating. The migrated store is kept aside
# there as a backup ("before restore"); calls and bindings recorded since the
# upgrade are in that backup, not in the restored store. Rolling forward
# needs no restore: the newer gateway migrates the store again at start.
# On / with systemd running, stops the service first and starts it again
# if it was running or enabled. Also installed as
# /usr/local/bin/intercom-gateway-rollback.
set -euo pipefail

NAME=intercom-gateway
SVC_USER=intercom

usage() {
  local code="${1:-2}"
  awk 'NR == 1 { next } /^#/ { sub(/^# ?/, ""); print; next } { exit }' "${BASH_SOURCE[0]}" \
    | if [ "$code" = 0 ]; then cat; else cat >&2; fi
  exit "$code"
}
say() { echo "rollback: $*"; }
die() { echo "rollback: $*" >&2; exit 1; }

ROOT=/ DATA="" BINARY_ONLY=0
while [ $# -gt 0 ]; do
  case "$1" in
    --root) [ $# -ge 2 ] || usage; ROOT="$2"; shift 2 ;;
    --root=*) ROOT="${1#--root=}"; shift ;;
    --data) [ $# -ge 2 ] || usage; DATA="$2"; shift 2 ;;
    --data=*) DATA="${1#--data=}"; shift ;;
    --binary-only) BINARY_ONLY=1; shift ;;
    -h|--help) usage 0 ;;
    *) usage ;;
  esac
done
[ -d "$ROOT" ] || die "root dir not found: $ROOT"
ROOT="$(cd "$ROOT" && pwd)"
R="${ROOT%/}"
REAL=0; [ "$ROOT" = / ] && REAL=1
cur="$R/usr/local/bin/$NAME"
prev="$cur.previous"

[ -f "$prev" ] || die "nothing to roll back to: $prev missing"
[ -f "$cur" ] || die "$cur missing"
if [ "$REAL" = 1 ] && [ "$(id -u)" != 0 ]; then die "needs root"; fi

if [ -z "$DATA" ]; then
  env_file="$R/etc/$NAME/gateway.env"
  DATA="$( { [ -f "$env_file" ] && sed -n 's/^[[:space:]]*INTERCOM_DATA=//p' "$env_file" | tail -n 1; } || true)"
  DATA="${DATA%\"}"; DATA="${DATA#\"}"; DATA="${DATA%\'}"; DATA="${DATA#\'}"
  DATA="$R${DATA:-/var/lib/$NAME}"
fi

systemd=0
if [ "$REAL" = 1 ] && [ -d /run/systemd/system ] && command -v systemctl >/dev/null; then systemd=1; fi
restart=0
if [ "$systemd" = 1 ] && { systemctl is-active --quiet "$NAME" || systemctl is-enabled --quiet "$NAME"; }; then
  restart=1
fi

# known BINARY: the newest store schema it opens (1 when it cannot say: 0.1.0).
known() {
  local n
  n="$("$1" schema --known 2>/dev/null | tail -n 1)" || n=""
  if [[ "$n" =~ ^[0-9]+$ ]]; then echo "$n"; else echo 1; fi
}

# --- the store (before the swap: a failure leaves everything as it was) ---------
if [ "$BINARY_ONLY" = 0 ] && [ -f "$DATA/gateway.kv" ]; then
  cur_known="$(known "$cur")"
  prev_known="$(known "$prev")"
  if [ "$cur_known" -gt "$prev_known" ]; then
    if [ "$systemd" = 1 ] && systemctl is-active --quiet "$NAME"; then
      systemctl stop "$NAME"
      say "stopped $NAME"
    fi
    say "the previous binary knows store schema $prev_known, this one $cur_known: restoring the backup for it"
    if ! out="$("$cur" restore --schema "$prev_known" --data "$DATA" 2>&1)"; then
      echo "$out" >&2
      [ "$restart" = 1 ] && systemctl start "$NAME"
      die "store not restored; binaries not swapped"
    fi
    say "$out"
    if [ "$REAL" = 1 ] && getent passwd "$SVC_USER" >/dev/null; then
      chown -R "$SVC_USER:$SVC_USER" "$DATA"
    fi
  else
    say "store kept: the previous binary knows schema $prev_known, this one $cur_known"
  fi
fi

# --- the binaries: three renames in one directory; the unit always sees a complete file
mv -f "$cur" "$cur.rollback-tmp"
mv -f "$prev" "$cur"
mv -f "$cur.rollback-tmp" "$prev"
say "$cur <- previous binary (the replaced one is now $prev)"

if [ "$restart" = 1 ]; then
  systemctl restart "$NAME"
  say "restarted $NAME"
fi
