#!/bin/bash
# Fetching N messages of S bytes from one POP3 account into a folder:
# kmp-fetch (through the queue and kmp-local into the account's folder)
# side by side with fetchmail delivering through Postfix into Maildir (the
# comparison kit's reference Postfix, ../shared/kit/ref-servers.sh).
#
# Both fetch from the same source: a Kmpromail instance's kmp-pop3d (plain
# POP3 on loopback), refilled with the same N messages before each run, and
# both leave the messages on the server (keep). For each: the wall time from
# the start of the fetch until the N-th message is in the Maildir, and the
# CPU seconds of the programs involved (kmp-fetch, kmp-send, kmp-local,
# kmp-authd; fetchmail and Postfix's master with its reaped children).
#
# Usage: bench/fetch.sh [-n COUNT] [-s BYTES] [--kit DIR] [--ours-only]
#   (root, for the reference Postfix; the default is 5000 messages of 20 KB)
set -euo pipefail

N=5000
SIZE=20480
# The kit beside the project's checkout (../shared/kit); --kit elsewhere.
KIT=$(cd "$(dirname "$0")/../.." && pwd)/shared/kit
OURS_ONLY=0
while [ $# -gt 0 ]; do
  case "$1" in
    -n) N=$2; shift 2 ;;
    -s) SIZE=$2; shift 2 ;;
    --kit) KIT=$2; shift 2 ;;
    --ours-only) OURS_ONLY=1; shift ;;
    *) echo "usage: $0 [-n COUNT] [-s BYTES] [--kit DIR] [--ours-only]" >&2; exit 64 ;;
  esac
done

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${BIN:-$ROOT/target/release}
[ -x "$BIN/kmp-fetch" ] || BIN=$ROOT/target/debug
KMPCTL=$BIN/kmpctl
WORK=$(mktemp -d /tmp/kmp-bench-fetch.XXXXXX)
SRC=$WORK/src
DST=$WORK/dst
PIDS=()
cleanup() {
  if [ "${REF_DIR:-}" = "$WORK/ref" ] && [ -d "$REF_DIR" ]; then
    "$KIT/ref-servers.sh" stop >/dev/null 2>&1 || true
  fi
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

free_base() {
  local b
  for b in 41000 42000 43000 44000 45000 46000; do
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$((b + 110))") 2>/dev/null; then echo "$b"; return; fi
  done
  echo "no free port base" >&2; exit 69
}

start() { # DIR PROGRAM
  "$BIN/$2" --config "$1/kmpromail.toml" --foreground >>"$1/log/$2.log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 1 100); do [ -e "$1/run/$2.pid" ] && return 0; sleep 0.1; done
  echo "$2 did not start: $(tail -5 "$1/log/$2.log")" >&2; exit 70
}

# CPU seconds (user + system, children reaped included) of some pids.
cpu() {
  local t=0 p f
  for p in "$@"; do
    [ -r "/proc/$p/stat" ] || continue
    f=$(sed 's/.*) //' "/proc/$p/stat")
    t=$((t + $(echo "$f" | awk '{print $12 + $13 + $14 + $15}')))
  done
  echo "scale=2; $t / $(getconf CLK_TCK)" | bc
}

count() { # MAILDIR
  echo $(( $(find "$1/new" "$1/cur" -type f 2>/dev/null | wc -l) ))
}

wait_for() { # MAILDIR N
  for _ in $(seq 1 36000); do
    [ "$(count "$1")" -ge "$2" ] && return 0
    sleep 0.05
  done
  echo "only $(count "$1") of $2 arrived" >&2; exit 70
}

fill() { # N messages into the source INBOX
  local box=$SRC/mail/remote.test/r
  rm -rf "$box"; mkdir -p "$box/new" "$box/cur" "$box/tmp"
  python3 - "$box/new" "$N" "$SIZE" <<'EOF'
import sys, os
d, n, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
line = "The quick brown fox jumps over the lazy dog 0123456789.\n"
body = (line * (size // len(line) + 1))[:size]
for i in range(n):
    with open(os.path.join(d, f"1767225600.M{i}P1.bench"), "w") as f:
        f.write(f"From: a@remote.test\nTo: r@remote.test\nSubject: bench {i}\n"
                f"Message-Id: <bench.{i}@remote.test>\nDate: Thu, 1 Jan 2026 00:00:00 +0000\n\n{body}\n")
EOF
}

# The source: a Kmpromail instance serving POP3.
SB=$(free_base)
"$KMPCTL" init "$SRC" --port-base "$SB" >/dev/null
printf '\n[authd]\nmax_failures = 1000\n' >>"$SRC/kmpromail.toml"
"$KMPCTL" -c "$SRC/kmpromail.toml" domain add remote.test >/dev/null
echo rpass | "$KMPCTL" -c "$SRC/kmpromail.toml" user add r@remote.test --password-stdin >/dev/null
start "$SRC" kmp-authd
start "$SRC" kmp-pop3d
POP3=$((SB + 110))

echo "fetching $N messages of $SIZE bytes over POP3 (127.0.0.1:$POP3)"

# Ours.
fill
DB=$((SB + 1000))
"$KMPCTL" init "$DST" --port-base "$DB" >/dev/null
"$KMPCTL" -c "$DST/kmpromail.toml" domain add example.test >/dev/null
echo secret | "$KMPCTL" -c "$DST/kmpromail.toml" user add u@example.test --password-stdin >/dev/null
sed -i 's/^\[fetch\]$/[fetch]\nmin_interval = "1s"\nmax_message_size = "100M"/' "$DST/kmpromail.toml"
for p in kmp-authd kmp-local kmp-send kmp-fetch; do start "$DST" "$p"; done
echo rpass | "$KMPCTL" -c "$DST/kmpromail.toml" fetch add u@example.test bench --protocol pop3 \
  --host 127.0.0.1 --port "$POP3" --tls none --username r@remote.test --password-stdin \
  --disable >/dev/null
OURS_PIDS=$(cat "$DST"/run/kmp-{authd,local,send,fetch}.pid)
# shellcheck disable=SC2086
c0=$(cpu $OURS_PIDS)
t0=$(date +%s.%N)
"$KMPCTL" -c "$DST/kmpromail.toml" fetch run u@example.test bench >/dev/null
wait_for "$DST/mail/example.test/u/.bench" "$N"
t1=$(date +%s.%N)
# shellcheck disable=SC2086
c1=$(cpu $OURS_PIDS)
ours_t=$(echo "$t1 - $t0" | bc)
ours_c=$(echo "$c1 - $c0" | bc)
printf 'RESULT kmp-fetch  messages=%d time=%.2fs cpu=%.2fs rate=%.0f msg/s\n' \
  "$N" "$ours_t" "$ours_c" "$(echo "$N / $ours_t" | bc -l)"

[ "$OURS_ONLY" = 1 ] && exit 0

# fetchmail through the kit's reference Postfix.
command -v fetchmail >/dev/null || { echo "fetchmail is not installed (apt-get install fetchmail)" >&2; exit 69; }
[ -x "$KIT/ref-servers.sh" ] || { echo "no comparison kit at $KIT" >&2; exit 69; }
fill
# A private reference Postfix (and Dovecot, which the kit starts with it)
# under the work directory on ports of its own, so that nobody else's
# /tmp/mailref is touched.
chmod 755 "$WORK"
export REF_DIR=$WORK/ref REF_SMTP_PORT=$((SB + 3526)) REF_IMAP_PORT=$((SB + 3143)) \
  REF_POP3_PORT=$((SB + 3110)) REF_USERS=1
"$KIT/ref-servers.sh" start >"$WORK/ref.log" 2>&1 &
REF_LAUNCHER=$!
for _ in $(seq 1 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$REF_SMTP_PORT") 2>/dev/null && break
  sleep 0.2
done
REF_MAIL=$REF_DIR/mail/user1/Maildir
RC=$WORK/fetchmailrc
cat >"$RC" <<EOF
set no bouncemail
poll 127.0.0.1 port $POP3 proto pop3 uidl
  user "r@remote.test" there with password "rpass" is "user1@example.test" here
  smtphost 127.0.0.1/$REF_SMTP_PORT smtpname user1@example.test
  keep fetchall sslproto '' no sslcertck
EOF
chmod 600 "$RC"
MASTER=$(tr -d ' ' <"$REF_DIR/postfix/spool/pid/master.pid" 2>/dev/null || true)
# Postfix's master and its children (smtpd, cleanup, qmgr, virtual stay
# alive between messages; those that exited are in master's reaped time).
# shellcheck disable=SC2046
c0=$(cpu "$MASTER" $(pgrep -P "$MASTER"))
t0=$(date +%s.%N)
/usr/bin/time -f '%U %S' -o "$WORK/fm.time" fetchmail -f "$RC" -i "$WORK/fetchids" --nodetach \
  --silent >/dev/null 2>"$WORK/fm.err" || true
wait_for "$REF_MAIL" "$N"
t1=$(date +%s.%N)
# shellcheck disable=SC2046
c1=$(cpu "$MASTER" $(pgrep -P "$MASTER"))
fm_t=$(echo "$t1 - $t0" | bc)
fm_c=$(echo "$c1 - $c0 + $(awk '{print $1 + $2}' "$WORK/fm.time")" | bc)
printf 'RESULT fetchmail  messages=%d time=%.2fs cpu=%.2fs rate=%.0f msg/s\n' \
  "$N" "$fm_t" "$fm_c" "$(echo "$N / $fm_t" | bc -l)"
printf 'RESULT ratio time fetchmail/ours = %.2f, cpu fetchmail/ours = %.2f\n' \
  "$(echo "$fm_t / $ours_t" | bc -l)" "$(echo "$fm_c / $ours_c" | bc -l)"
"$KIT/ref-servers.sh" stop >/dev/null 2>&1 || true
wait "$REF_LAUNCHER" 2>/dev/null || true
