#!/usr/bin/env bash
# Install or upgrade intercom-gateway on a systemd Linux box.
#
#   sudo deploy/install.sh [--root DIR] [--low-port] [--no-start] BINARY
#
#   --root DIR   install into DIR instead of / (packaging, tests). With a
#                non-/ root nothing outside DIR is touched: no useradd, no
#                chown, no systemctl.
#   --low-port   also install the drop-in granting CAP_NET_BIND_SERVICE
#                (needed for INTERCOM_HTTP_PORT=443).
#   --no-start   on /, install and enable but do not (re)start the service.
#
# Upgrades keep the replaced binary as intercom-gateway.previous; the new
# gateway backs the store up into the data directory's backup/ before it
# migrates it at its first start; deploy/rollback.sh swaps the binary back and
# restores that backup. Re-running with the same binary is a no-op for the
# binary. An existing gateway.env is never overwritten.
set -euo pipefail

NAME=intercom-gateway
SVC_USER=intercom
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

# usage [CODE]: the comment block above (to stdout for --help, else stderr), then exit CODE (2).
usage() {
  local code="${1:-2}"
  awk 'NR == 1 { next } /^#/ { sub(/^# ?/, ""); print; next } { exit }' "${BASH_SOURCE[0]}" \
    | if [ "$code" = 0 ]; then cat; else cat >&2; fi
  exit "$code"
}
say() { echo "install: $*"; }
die() { echo "install: error: $*" >&2; exit 1; }

ROOT=/ LOW_PORT=0 NO_START=0 BIN=""
while [ $# -gt 0 ]; do
  case "$1" in
    --root) [ $# -ge 2 ] || usage; ROOT="$2"; shift 2 ;;
    --root=*) ROOT="${1#--root=}"; shift ;;
    --low-port) LOW_PORT=1; shift ;;
    --no-start) NO_START=1; shift ;;
    -h|--help) usage 0 ;;
    -*) die "unknown option $1" ;;
    *) [ -z "$BIN" ] || die "only one BINARY"; BIN="$1"; shift ;;
  esac
done
[ -n "$BIN" ] || usage
[ -f "$BIN" ] || die "binary not found: $BIN"
[ -d "$ROOT" ] || die "root dir not found: $ROOT"
ROOT="$(cd "$ROOT" && pwd)"
REAL=0; [ "$ROOT" = / ] && REAL=1
R="${ROOT%/}"    # prefix for paths: "" for the real root
if [ "$REAL" = 1 ] && [ "$(id -u)" != 0 ]; then die "installing to / needs root (or use --root DIR)"; fi

bindir="$R/usr/local/bin"
etcdir="$R/etc/$NAME"
datadir="$R/var/lib/$NAME"
unitdir="$R/etc/systemd/system"
docdir="$R/usr/local/share/doc/$NAME"
umask 022

# --- 1. service user --------------------------------------------------------
if [ "$REAL" = 1 ]; then
  if getent passwd "$SVC_USER" >/dev/null; then
    say "user $SVC_USER exists"
  else
    nologin="$(command -v nologin || echo /usr/sbin/nologin)"
    if command -v useradd >/dev/null; then
      useradd --system --user-group --no-create-home --home-dir "/var/lib/$NAME" \
        --shell "$nologin" --comment "intercom gateway" "$SVC_USER"
    else # busybox / alpine
      addgroup -S "$SVC_USER" && adduser -S -D -H -h "/var/lib/$NAME" -s "$nologin" -G "$SVC_USER" "$SVC_USER"
    fi
    say "created system user $SVC_USER"
  fi
elif [ -f "$R/etc/passwd" ]; then
  # Fake root with its own passwd: add entries there, nowhere else.
  if grep -q "^$SVC_USER:" "$R/etc/passwd"; then
    say "user $SVC_USER already in $R/etc/passwd"
  else
    id=999
    id_used() { awk -F: -v id="$1" '$3 == id { f = 1 } END { exit !f }' "$R/etc/passwd" \
      ${2:+"$2"}; }
    while id_used "$id" "$( [ -f "$R/etc/group" ] && echo "$R/etc/group")"; do
      id=$((id - 1)); [ "$id" -ge 100 ] || die "no free system uid in $R/etc/passwd"
    done
    echo "$SVC_USER:x:$id:$id:intercom gateway:/var/lib/$NAME:/usr/sbin/nologin" >>"$R/etc/passwd"
    [ -f "$R/etc/group" ] && ! grep -q "^$SVC_USER:" "$R/etc/group" \
      && echo "$SVC_USER:x:$id:" >>"$R/etc/group"
    say "added $SVC_USER ($id) to $R/etc/passwd"
  fi
else
  say "note: --root $ROOT has no etc/passwd; not creating user $SVC_USER (create it on the target)"
fi

# --- 2. binary (keep previous for rollback) --------------------------------
mkdir -p "$bindir"
dst="$bindir/$NAME"
if [ -e "$dst" ] && cmp -s "$BIN" "$dst"; then
  say "binary unchanged: $dst"
  BIN_CHANGED=0
else
  install -m 0755 "$BIN" "$dst.new"
  if [ -e "$dst" ]; then
    mv -f "$dst" "$dst.previous"
    say "kept old binary as $dst.previous"
  fi
  mv -f "$dst.new" "$dst"
  say "installed $dst"
  BIN_CHANGED=1
fi
install -m 0755 "$here/rollback.sh" "$bindir/$NAME-rollback"

# --- 3. config --------------------------------------------------------------
install -d -m 0750 "$etcdir"
install -m 0644 "$here/gateway.env.example" "$etcdir/gateway.env.example"
if [ -e "$etcdir/gateway.env" ]; then
  say "kept existing $etcdir/gateway.env (see gateway.env.example for new settings)"
else
  install -m 0640 "$here/gateway.env.example" "$etcdir/gateway.env"
  say "created $etcdir/gateway.env"
fi

# --- 4. data dir (systemd's StateDirectory= would also create it) -----------
install -d -m 0750 "$datadir"
if [ "$REAL" = 1 ]; then
  chown root:"$SVC_USER" "$etcdir" "$etcdir/gateway.env"
  chown "$SVC_USER:$SVC_USER" "$datadir"
fi

if [ "$BIN_CHANGED" = 1 ] && [ -e "$dst.previous" ] && [ -f "$datadir/gateway.kv" ]; then
  say "the store in $datadir is backed up into $datadir/backup/ before the new gateway migrates it (at its start); $NAME-rollback restores binary and store"
fi

# --- 5. unit (+ optional drop-in) and docs ----------------------------------
install -d -m 0755 "$unitdir"
install -m 0644 "$here/$NAME.service" "$unitdir/$NAME.service"
dropin="$unitdir/$NAME.service.d/low-port.conf"
if [ "$LOW_PORT" = 1 ]; then
  install -d -m 0755 "$unitdir/$NAME.service.d"
  install -m 0644 "$here/low-port.conf" "$dropin"
  say "installed $dropin (CAP_NET_BIND_SERVICE)"
fi
# Several gateways: the leaf node's unit and the example configurations (not enabled).
install -m 0644 "$here/intercom-nats-leaf.service" "$unitdir/intercom-nats-leaf.service"
install -m 0644 "$here/nats-leaf.conf.example" "$etcdir/nats-leaf.conf.example"
install -d -m 0755 "$docdir"
install -m 0644 "$here/README.md" "$docdir/README.md"
install -m 0644 "$here/nats-hub.conf.example" "$docdir/nats-hub.conf.example"
say "installed $unitdir/$NAME.service"

# --- 6. systemd -------------------------------------------------------------
if [ "$REAL" = 1 ] && [ -d /run/systemd/system ] && command -v systemctl >/dev/null; then
  systemctl daemon-reload
  if [ "$NO_START" = 1 ]; then
    systemctl enable "$NAME"
  elif systemctl is-active --quiet "$NAME"; then
    systemctl enable "$NAME"
    systemctl restart "$NAME"
    say "restarted $NAME (binary changed: $BIN_CHANGED)"
  else
    systemctl enable --now "$NAME"
  fi
  systemctl --no-pager --lines=0 status "$NAME" || true
else
  say "not touching systemd (root=$ROOT, systemd running: $([ -d /run/systemd/system ] && echo yes || echo no))"
fi
say "done"
