#!/usr/bin/env bash
# bench/queue.sh - messages per second from the sendmail interface until
# every message is in its Maildir: Kmpromail (kmp-inject -> kmp-send ->
# kmp-local) and Postfix from Debian (sendmail -> postdrop -> pickup ->
# cleanup -> qmgr -> virtual(8) into Maildir), side by side in one run on the
# same machine, both fsyncing (their defaults). Then one message to 1,000
# local recipients through our queue: time, and disk use against 1,000 copies.
#
# Usage: bench/queue.sh            (as root: Postfix's instance needs it)
#   N=10000 USERS=100 SIZE=4096 PAR=8 FANOUT=1000 REL=target/release
# The whole run holds /tmp/kit.lock, as every use of the comparison kit's
# reference servers does, so no other benchmark runs meanwhile.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
REL=${REL:-$ROOT/target/release}
N=${N:-10000}
USERS=${USERS:-100}
SIZE=${SIZE:-4096}
PAR=${PAR:-8}
FANOUT=${FANOUT:-1000}
WORK=${WORK:-/tmp/kmp-bench-queue}
KIT=${KIT:-$ROOT/../shared/kit}
LOCK=${LOCK:-/tmp/kit.lock}

if [ "${BENCH_LOCKED:-}" != 1 ]; then
  exec env BENCH_LOCKED=1 flock "$LOCK" "$0" "$@"
fi

for b in kmpctl kmp-authd kmp-send kmp-local kmp-inject; do
  [ -x "$REL/$b" ] || { echo "missing $REL/$b: cargo build --release" >&2; exit 1; }
done

now() { date +%s.%N; }
count_new() { find "$1" -path '*/new/*' -type f 2>/dev/null | wc -l; }
wait_count() { # dir n timeout
  local t0; t0=$(date +%s)
  while [ "$(count_new "$1")" -lt "$2" ]; do
    sleep 0.2
    if [ $(( $(date +%s) - t0 )) -gt "$3" ]; then echo "timeout: $(count_new "$1") of $2 in $1" >&2; return 1; fi
  done
}

rm -rf "$WORK"; mkdir -p "$WORK"
MSG=$WORK/msg.txt
python3 - "$SIZE" > "$MSG" <<'PY'
import base64, os, sys
size = int(sys.argv[1])
head = "From: bench@example.test\nTo: someone@example.test\nSubject: bench\n\n"
body = base64.encodebytes(os.urandom(size)).decode()
sys.stdout.write((head + body)[: size - 1] + "\n")
PY

PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  if [ -n "${REF_STARTED:-}" ]; then
    REF_DIR=$WORK/ref REF_SMTP_PORT=2626 REF_IMAP_PORT=1243 REF_POP3_PORT=1210 \
      "$KIT/ref-servers.sh" stop > /dev/null 2>&1 || true
  fi
}
trap cleanup EXIT

# --- Kmpromail -----------------------------------------------------------
OURS=$WORK/ours
"$REL/kmpctl" init "$OURS" --port-base 47000 --hostname mx.example.test > /dev/null
C=$OURS/kmpromail.toml
cat >> "$C" <<EOF

[send]
local_concurrency = 8
EOF
"$REL/kmpctl" -c "$C" domain add example.test > /dev/null
for i in $(seq 1 "$USERS"); do echo "user$i@example.test"; done > "$WORK/users.txt"
while read -r u; do "$REL/kmpctl" -c "$C" user add "$u" > /dev/null; done < "$WORK/users.txt"
"$REL/kmp-authd" -c "$C" --foreground 2> "$OURS/log/authd.log" & PIDS+=($!)
sleep 0.5
"$REL/kmp-local" -c "$C" --foreground 2> "$OURS/log/local.log" & PIDS+=($!)
"$REL/kmp-send" -c "$C" --foreground 2> "$OURS/log/send.log" & PIDS+=($!)
for _ in $(seq 1 100); do [ -e "$OURS/run/kmp-send.pid" ] && [ -S "$OURS/run/local.sock" ] && break; sleep 0.1; done

inject_ours() {
  seq 1 "$N" | xargs -P "$PAR" -I{} sh -c \
    "$REL/kmp-inject -C $C -f bench@example.test user\$(( {} % $USERS + 1 ))@example.test < $MSG"
}
t0=$(now); inject_ours; t1=$(now)
wait_count "$OURS/mail" "$N" 900
t2=$(now)
OURS_RATE=$(echo "$N / ($t2 - $t0)" | bc -l)
OURS_INJ=$(echo "$N / ($t1 - $t0)" | bc -l)
printf 'RESULT kmpromail sendmail->maildir %d x %d B to %d users: %.1f msg/s (injection alone %.1f msg/s, %.1f s)\n' \
  "$N" "$SIZE" "$USERS" "$OURS_RATE" "$OURS_INJ" "$(echo "$t2 - $t0" | bc -l)"

# --- Postfix (a private instance made by the kit's script) ---------------
export REF_DIR=$WORK/ref REF_SMTP_PORT=2626 REF_IMAP_PORT=1243 REF_POP3_PORT=1210 REF_USERS=$USERS
"$KIT/ref-servers.sh" start > "$WORK/ref.log" 2>&1 || { cat "$WORK/ref.log"; exit 1; }
REF_STARTED=1
PF=$REF_DIR/postfix/etc
inject_postfix() {
  seq 1 "$N" | xargs -P "$PAR" -I{} sh -c \
    "/usr/sbin/sendmail -C $PF -f bench@example.test user\$(( {} % $USERS + 1 ))@example.test < $MSG"
}
t0=$(now); inject_postfix; t1=$(now)
wait_count "$REF_DIR/mail" "$N" 900
t2=$(now)
PF_RATE=$(echo "$N / ($t2 - $t0)" | bc -l)
PF_INJ=$(echo "$N / ($t1 - $t0)" | bc -l)
printf 'RESULT postfix sendmail->maildir %d x %d B to %d users: %.1f msg/s (injection alone %.1f msg/s, %.1f s)\n' \
  "$N" "$SIZE" "$USERS" "$PF_RATE" "$PF_INJ" "$(echo "$t2 - $t0" | bc -l)"
printf 'RESULT ratio kmpromail/postfix: %.2f\n' "$(echo "$OURS_RATE / $PF_RATE" | bc -l)"
"$KIT/ref-servers.sh" stop > /dev/null 2>&1 || true
REF_STARTED=

# --- One message to many local recipients --------------------------------
for i in $(seq $((USERS + 1)) "$FANOUT"); do "$REL/kmpctl" -c "$C" user add "user$i@example.test" > /dev/null; done
before=$(count_new "$OURS/mail")
rcpts=$(seq 1 "$FANOUT" | sed 's/.*/user&@example.test/' | paste -sd, -)
t0=$(now)
"$REL/kmp-inject" -C "$C" -f bench@example.test "$rcpts" < "$MSG"
wait_count "$OURS/mail" $((before + FANOUT)) 600
t1=$(now)
# Disk use of the fan-out copies: distinct inodes among the newest FANOUT files.
files=$(find "$OURS/mail" -path '*/new/*' -type f -newer "$MSG" -printf '%T@ %i %s\n' | sort -n | tail -n "$FANOUT")
inodes=$(echo "$files" | awk '{print $2}' | sort -u | wc -l)
bytes=$(echo "$files" | awk '!seen[$2]++ {s += $3} END {print s}')
one=$(echo "$files" | head -1 | awk '{print $3}')
printf 'RESULT fan-out 1 message to %d local recipients: %.2f s, %.0f deliveries/s; %d inode(s), %d bytes on disk against %d for %d copies\n' \
  "$FANOUT" "$(echo "$t1 - $t0" | bc -l)" "$(echo "$FANOUT / ($t1 - $t0)" | bc -l)" "$inodes" "$bytes" $((one * FANOUT)) "$FANOUT"
