#!/usr/bin/env bash
# bench/imap_sort.sh - SORT on a large folder, kmp-imapd and Dovecot side by
# side on the same messages. See bench/README.md ("IMAP SORT").
#
#   bench/imap_sort.sh [MESSAGES=50000]
#
# Builds nothing: run `cargo build --release --bin kmp-imapd --bin kmp-authd
# --bin kmpctl` first (or set BIN=target/debug). As root, the same messages
# go to user17 of the kit's reference Dovecot (../shared/kit beside the
# checkout, or $KIT; every use under `flock /tmp/kit.lock`; started only if
# it is down, never stopped); REF=0 skips Dovecot.
set -euo pipefail
MESSAGES=${1:-50000}
HERE=$(cd "$(dirname "$0")/.." && pwd)
BIN=${BIN:-$HERE/target/release}
KIT=${KIT:-$HERE/../shared/kit}
PY=(python3 "$HERE/bench/imap_sort.py")
DIR=$(mktemp -d /tmp/imap-sort-bench.XXXXXX)
PORTBASE=${PORTBASE:-47200}
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$DIR"; }
trap cleanup EXIT

"$BIN/kmpctl" init "$DIR/ours" --port-base "$PORTBASE" --hostname mx.example.test >/dev/null
CONF=$DIR/ours/kmpromail.toml
"$BIN/kmpctl" --config "$CONF" domain add example.test >/dev/null 2>&1
echo secret | "$BIN/kmpctl" --config "$CONF" user add big@example.test --password-stdin >/dev/null 2>&1
echo "# populating $MESSAGES messages"
"${PY[@]}" populate "$DIR/ours/mail/example.test/big" "$MESSAGES"
"$BIN/kmp-authd" --config "$CONF" --foreground 2>"$DIR/authd.log" & pids+=($!)
sleep 1
"$BIN/kmp-imapd" --config "$CONF" --foreground 2>"$DIR/imapd.log" & pids+=($!)
for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/$((PORTBASE + 143))) 2>/dev/null && break; sleep 0.2; done
# The UID index is built by the first SELECT; keep that out of the SORT
# numbers with one SELECT first, and start without a sort key cache.
python3 - "$((PORTBASE + 143))" <<'PY'
import imaplib, sys
M = imaplib.IMAP4('127.0.0.1', int(sys.argv[1])); M.login('big@example.test', 'secret'); M.select('INBOX'); M.logout()
PY
rm -f "$DIR/ours/mail/example.test/big/kmpromail-sortcache"
echo "# uptime: $(uptime)"
"${PY[@]}" time --port $((PORTBASE + 143)) --user big@example.test --label kmp-imapd
echo "# sort key cache: $(wc -c <"$DIR/ours/mail/example.test/big/kmpromail-sortcache") bytes"

if [ "${REF:-1}" = 1 ] && [ "$(id -u)" = 0 ] && [ -x "$KIT/ref-servers.sh" ]; then
  st=$(flock /tmp/kit.lock "$KIT/ref-servers.sh" status 2>/dev/null || true)
  case $st in
    *"imap 127.0.0.1:1143 UP"*) ;;
    *) flock /tmp/kit.lock "$KIT/ref-servers.sh" start >"$DIR/ref.log" 2>&1 ;;
  esac
  M=/tmp/mailref/mail/user17/Maildir
  flock /tmp/kit.lock rm -rf "$M"
  "${PY[@]}" populate "$M" "$MESSAGES"
  chown -R mail:mail /tmp/mailref/mail/user17
  python3 - <<'PY'
import imaplib
M = imaplib.IMAP4('127.0.0.1', 1143); M.login('user17', 'secret'); M.select('INBOX'); M.logout()
PY
  echo "# uptime: $(uptime)"
  flock /tmp/kit.lock "${PY[@]}" time --port 1143 --user user17 --label dovecot
fi
