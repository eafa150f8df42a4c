#!/usr/bin/env bash
# bench/imapd_persistent.sh - kmp-imapd alone under imaptest's persistent
# profile (logout=0), for profiling: CPU time per operation from
# /proc/PID/stat, and optionally a perf profile. See bench/README.md
# ("IMAP: persistent sessions, CPU per operation").
#
#   bench/imapd_persistent.sh [CLIENTS] [SECONDS] [MESSAGES]
#
# BIN (default target/release) names the binaries; PERF=1 records
# `perf record -g` of kmp-imapd into $OUT/perf.data (OUT defaults to a
# temporary directory that is kept when PERF=1). Builds nothing.
set -euo pipefail
CLIENTS=${1:-50}
SECS=${2:-20}
MESSAGES=${3:-100}
HERE=$(cd "$(dirname "$0")/.." && pwd)
BIN=${BIN:-$HERE/target/release}
IMAPTEST=${IMAPTEST_BIN:-/usr/local/bin/imaptest}
PORTBASE=${PORTBASE:-$((20000 + RANDOM % 20000))}
DIR=$(mktemp -d /tmp/imapd-persistent.XXXXXX)
OUT=${OUT:-$DIR}
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  [ "${PERF:-0}" = 1 ] || [ "${KEEP:-0}" = 1 ] || rm -rf "$DIR"
}
trap cleanup EXIT

"$BIN/kmpctl" init "$DIR/inst" --port-base "$PORTBASE" --hostname mx.example.test >/dev/null
CONF=$DIR/inst/kmpromail.toml
# Every client comes from 127.0.0.1: without this, the clients over the
# per-address limit are refused and reconnect, and the run measures that.
sed -i "s/^\[imapd\]$/[imapd]\nmax_connections_per_ip = $((CLIENTS + 10))/" "$CONF"
grep -q "^max_connections_per_ip = $((CLIENTS + 10))" "$CONF" ||
  printf '\n[imapd]\nmax_connections_per_ip = %d\n' $((CLIENTS + 10)) >>"$CONF"
"$BIN/kmpctl" --config "$CONF" domain add example.test >/dev/null 2>&1
mkdir -p "$DIR/inst/mail/example.test"
echo secret | "$BIN/kmpctl" --config "$CONF" user add load@example.test --password-stdin >/dev/null
python3 - "$DIR/inst/mail/example.test/load" "$MESSAGES" <<'PY'
import mailbox, sys
md = mailbox.Maildir(sys.argv[1], create=True)
for i in range(int(sys.argv[2])):
    m = mailbox.MaildirMessage("From: s%d@example.test\nTo: load@example.test\nSubject: message %d\n\n%s" % (i, i, "text\n" * 20))
    m.set_subdir("cur")
    md.add(m)
PY
"$BIN/kmp-authd" --config "$CONF" --foreground 2>"$DIR/authd.log" & pids+=($!)
sleep 1
"$BIN/kmp-imapd" --config "$CONF" --foreground 2>"$DIR/imapd.log" & IMAPD=$!; pids+=("$IMAPD")
for _ in $(seq 50); do
  (exec 3<>"/dev/tcp/127.0.0.1/$((PORTBASE + 143))") 2>/dev/null && break
  sleep 0.1
done
ticks() { awk '{print $14 + $15}' "/proc/$IMAPD/stat"; }
HZ=$(getconf CLK_TCK)
if [ "${PERF:-0}" = 1 ]; then
  perf record -g -o "$OUT/perf.data" -p "$IMAPD" -- sleep "$SECS" >/dev/null 2>&1 & pids+=($!)
fi
# Messages for imaptest's APPENDs, in mbox form.
python3 - "$DIR/append.mbox" <<'PY'
import sys
with open(sys.argv[1], 'w') as f:
    for i in range(100):
        f.write('From bench@example.test Mon Jan  1 00:00:00 2024\n')
        f.write('From: Bench <bench%d@example.test>\nTo: load@example.test\nSubject: appended %d\n'
                'Message-ID: <a%d@bench.test>\n\n%s\n' % (i, i, i, 'filler text\n' * (i % 50 + 5)))
PY
before=$(ticks)
"$IMAPTEST" host=127.0.0.1 port=$((PORTBASE + 143)) user=load@example.test pass=secret \
  mbox="$DIR/append.mbox" clients="$CLIENTS" secs="$SECS" logout=0 >"$DIR/imaptest.out" 2>&1 || true
after=$(ticks)
# imaptest's totals: a header line of command names, then (4th line after
# "Totals:") their counts.
ops=$(grep -A4 '^Totals:' "$DIR/imaptest.out" | sed -n 5p | awk '{s = 0; for (i = 1; i <= NF; i++) s += $i; print s}')
tail -n 8 "$DIR/imaptest.out"
echo "kmp-imapd CPU: $(( (after - before) * 1000 / HZ )) ms for ${ops:-?} operations"
if [ -n "${ops:-}" ] && [ "$ops" -gt 0 ]; then
  echo "CPU per operation: $(( (after - before) * 1000000 / HZ / ops )) us"
fi
[ "${PERF:-0}" = 1 ] && { wait "${pids[-1]}" 2>/dev/null || true; echo "perf data: $OUT/perf.data"; }
exit 0
