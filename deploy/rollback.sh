#!/usr/bin/env bash
# Swap intercom-gateway back to the binary kept by the last upgrade.
#
#   sudo deploy/rollback.sh [--root DIR]
#
# Swaps /usr/local/bin/intercom-gateway and intercom-gateway.previous, so
# running it twice rolls forward again. On / with systemd running, restarts
# the service if it is enabled or active. Also installed as
# /usr/local/bin/intercom-gateway-rollback.
set -euo pipefail

NAME=intercom-gateway
ROOT=/
while [ $# -gt 0 ]; do
  case "$1" in
    --root) [ $# -ge 2 ] || { echo "usage: $0 [--root DIR]" >&2; exit 2; }; ROOT="$2"; shift 2 ;;
    --root=*) ROOT="${1#--root=}"; shift ;;
    -h|--help) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "usage: $0 [--root DIR]" >&2; exit 2 ;;
  esac
done
[ -d "$ROOT" ] || { echo "rollback: root dir not found: $ROOT" >&2; exit 1; }
ROOT="$(cd "$ROOT" && pwd)"
R="${ROOT%/}"
cur="$R/usr/local/bin/$NAME"
prev="$cur.previous"

[ -f "$prev" ] || { echo "rollback: nothing to roll back to: $prev missing" >&2; exit 1; }
[ -f "$cur" ] || { echo "rollback: $cur missing" >&2; exit 1; }
if [ "$ROOT" = / ] && [ "$(id -u)" != 0 ]; then echo "rollback: needs root" >&2; exit 1; fi

# Three renames in one directory; the unit always sees a complete file.
mv -f "$cur" "$cur.rollback-tmp"
mv -f "$prev" "$cur"
mv -f "$cur.rollback-tmp" "$prev"
echo "rollback: $cur <- previous binary (the replaced one is now $prev)"

if [ "$ROOT" = / ] && [ -d /run/systemd/system ] && command -v systemctl >/dev/null; then
  if systemctl is-active --quiet "$NAME" || systemctl is-enabled --quiet "$NAME"; then
    systemctl restart "$NAME"
    echo "rollback: restarted $NAME"
  fi
fi
