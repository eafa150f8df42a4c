#!/usr/bin/env bash
# bench/imapd.sh - kmp-imapd against Dovecot's imapd, side by side in one run,
# on the same messages. See bench/README.md ("IMAP").
#
#   bench/imapd.sh [MESSAGES] [BIG] [IDLE_CLIENTS] [SECONDS]
#
# Needs root for the reference Dovecot (the kit in ../shared/kit beside the checkout, or $KIT; every use
# is wrapped in `flock /tmp/kit.lock`). Builds nothing: run
# `cargo build --release --bin kmp-imapd --bin kmp-authd --bin kmpctl` first
# (or set BIN=target/debug).
set -euo pipefail
MESSAGES=${1:-1000}
BIG=${2:-50000}
IDLE=${3:-5000}
SECONDS_=${4:-10}
HUGE_MB=${HUGE_MB:-50}
HERE=$(cd "$(dirname "$0")/.." && pwd)
BIN=${BIN:-$HERE/target/release}
KIT=${KIT:-$HERE/../shared/kit}
LOAD=(python3 "$HERE/bench/imapd_load.py")
DIR=$(mktemp -d /tmp/imapd-bench.XXXXXX)
PORTBASE=${PORTBASE:-47000}
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$DIR"; }
trap cleanup EXIT

# Messages: a mix of sizes, written with Python's mailbox module (any
# Maildir program's files must do).
populate() { # DIR COUNT
  mkdir -p "$(dirname "$1")"
  python3 - "$1" "$2" <<'PY'
import mailbox, sys, random
md = mailbox.Maildir(sys.argv[1], create=True)
r = random.Random(1)
for i in range(int(sys.argv[2])):
    body = ("line of text %d\n" % i) * r.randint(5, 200)
    m = mailbox.MaildirMessage("From: Sender %d <s%d@example.test>\nTo: u@example.test\nSubject: message %d\nDate: Mon, 1 Jan 2024 10:00:00 +0000\nMessage-ID: <%d@bench>\n\n%s" % (i, i, i, i, body))
    m.set_subdir("cur")
    if r.random() < 0.5:
        m.set_flags("S")
    md.add(m)
PY
}

# One message of MB megabytes (base64 attachment), for the FETCH memory test.
populate_huge() { # DIR MB
  mkdir -p "$(dirname "$1")"
  python3 - "$1" "$2" <<'PY'
import mailbox, sys, base64, os
md = mailbox.Maildir(sys.argv[1], create=True)
raw = os.urandom(int(sys.argv[2]) * 1024 * 1024 * 3 // 4)
b64 = base64.encodebytes(raw).decode()
m = mailbox.MaildirMessage("From: a@example.test\nTo: u@example.test\nSubject: huge\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\n\nSee the attachment.\n--b\nContent-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n\n" + b64 + "--b--\n")
m.set_subdir("cur")
md.add(m)
PY
}

"$BIN/kmpctl" init "$DIR/ours" --port-base "$PORTBASE" --hostname mx.example.test >/dev/null
CONF=$DIR/ours/kmpromail.toml
# Every client of the bench comes from 127.0.0.1.
sed -i "s/^\[imapd\]$/[imapd]\nmax_connections = $((IDLE + 1000))\nmax_connections_per_ip = $((IDLE + 1000))/" "$CONF"
grep -q "^max_connections_per_ip = $((IDLE + 1000))" "$CONF" || printf '\n[imapd]\nmax_connections = %d\nmax_connections_per_ip = %d\n' $((IDLE + 1000)) $((IDLE + 1000)) >>"$CONF"
"$BIN/kmpctl" --config "$CONF" domain add example.test >/dev/null
for u in u big huge load; do echo secret | "$BIN/kmpctl" --config "$CONF" user add "$u@example.test" --password-stdin >/dev/null; done
populate "$DIR/ours/mail/example.test/u" "$MESSAGES"
populate "$DIR/ours/mail/example.test/big" "$BIG"
populate_huge "$DIR/ours/mail/example.test/huge" "$HUGE_MB"
"$BIN/kmp-authd" --config "$CONF" --foreground 2>"$DIR/authd.log" & pids+=($!)
sleep 1
"$BIN/kmp-imapd" --config "$CONF" --foreground 2>"$DIR/imapd.log" & IMAPD=$!; pids+=("$IMAPD")
sleep 1
OURS=$((PORTBASE + 143))

REF=0
if [ "$(id -u)" = 0 ] && [ -x "$KIT/ref-servers.sh" ]; then
  REF=1
  # Others use the reference servers too: start them only when down, never stop
  # them, and use the last two users.
  st=$(flock /tmp/kit.lock "$KIT/ref-servers.sh" status 2>/dev/null || true)
  case $st in
    *"imap 127.0.0.1:1143 UP"*) ;;
    # -o: the daemons must not inherit the lock (they would hold it for good).
    *) flock -o /tmp/kit.lock "$KIT/ref-servers.sh" start >"$DIR/ref.log" 2>&1 ;;
  esac
  for u in user19 user20; do
    M=/tmp/mailref/mail/$u/Maildir
    flock /tmp/kit.lock rm -rf "$M"
  done
  populate /tmp/mailref/mail/user19/Maildir "$MESSAGES"
  populate /tmp/mailref/mail/user20/Maildir "$BIG"
  chown -R mail:mail /tmp/mailref/mail/user19 /tmp/mailref/mail/user20
fi

run() { echo "# $*"; "$@"; }
for relogin in --persistent --relogin; do
  run "${LOAD[@]}" ops --port "$OURS" --user u@example.test --clients 50 --seconds "$SECONDS_" --messages "$MESSAGES" "$relogin" --label kmp-imapd
  [ $REF = 1 ] && flock /tmp/kit.lock "${LOAD[@]}" ops --port 1143 --user user19 --clients 50 --seconds "$SECONDS_" --messages "$MESSAGES" "$relogin" --label dovecot
done
run "${LOAD[@]}" big --port "$OURS" --user big@example.test --label kmp-imapd
[ $REF = 1 ] && flock /tmp/kit.lock "${LOAD[@]}" big --port 1143 --user user20 --label dovecot
run "${LOAD[@]}" idle --port "$OURS" --user u@example.test --clients "$IDLE" --pid "$IMAPD" --label kmp-imapd
[ $REF = 1 ] && flock /tmp/kit.lock "${LOAD[@]}" idle --port 1143 --user user19 --clients "$IDLE" --procname imap --label dovecot
run "${LOAD[@]}" bigfetch --port "$OURS" --user huge@example.test --pid "$IMAPD" --label kmp-imapd
# imaptest's load (the kit's bench.sh, both profiles: churn with logins,
# persistent with logout=0) against one user each; its error count must be 0.
if [ -x "$KIT/bench.sh" ] && [ -x "${IMAPTEST_BIN:-/usr/local/bin/imaptest}" ]; then
  run "$KIT/bench.sh" --only imap --imap "127.0.0.1:$OURS" --imap-user load@example.test \
    --imap-clients "${IMAPTEST_CLIENTS:-50}" --imap-secs "${IMAPTEST_SECS:-20}" --label kmp-imapd --out "$DIR/kit-ours"
  [ $REF = 1 ] && flock /tmp/kit.lock "$KIT/bench.sh" --only imap --imap-user user19 \
    --imap-clients "${IMAPTEST_CLIENTS:-50}" --imap-secs "${IMAPTEST_SECS:-20}" --label dovecot --out "$DIR/kit-ref"
fi
exit 0
