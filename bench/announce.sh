#!/bin/sh
# kmpctl announce to many mailboxes: the time, the disk used (du before and
# after), the inodes used (files and directories counted under the mail
# root) and the link count of the stored file. See bench/README.md,
# section "Announcements".
#
#   sh bench/announce.sh                               # 100,000 mailboxes, release build
#   MAILBOXES=1000 BIN=target/debug sh bench/announce.sh   # a quick check
#
# Two announcements are timed, on one fresh `kmpctl init` instance:
#   1. into mailboxes that do not exist yet (kmpctl makes each Maildir with
#      its folders, as kmp-local does on a first delivery);
#   2. into the same mailboxes, now existing: the common case.
# Then the second is run again, to time a re-run that finds everyone done.
# DIR=path keeps the instance there (default: a temporary directory,
# removed at the end). Needs no root and no daemon.
set -eu
cd "$(dirname "$0")/.."
MAILBOXES=${MAILBOXES:-100000}
BIN=${BIN:-target/release}
if [ "$BIN" = target/release ]; then
    cargo build --release --bin kmpctl
fi
KMPCTL="$PWD/$BIN/kmpctl"
if [ -n "${DIR:-}" ]; then
    mkdir -p "$DIR"
    KEEP=1
else
    DIR=$(mktemp -d "${TMPDIR:-/tmp}/kmp-announce-bench.XXXXXX")
    KEEP=0
fi
trap '[ "$KEEP" = 1 ] || rm -rf "$DIR"' EXIT
INST="$DIR/instance"
"$KMPCTL" init "$INST" --port-base 40000 --hostname mx.bench.test >/dev/null
CONF="$INST/kmpromail.toml"
MAIL="$INST/mail"

echo "loading $MAILBOXES users"
python3 - "$MAILBOXES" >"$DIR/users.jsonl" <<'PY'
import sys
n = int(sys.argv[1])
print('{"type":"domain","name":"bench.test"}')
for i in range(n):
    print('{"type":"user","address":"u%07d@bench.test","password":"$1$kmpsalt1$K3.x/KNfVXY/h7768.UNo0"}' % i)
PY
"$KMPCTL" -c "$CONF" db load "$DIR/users.jsonl"

printf 'Subject: Welcome\n\nYour mailbox is ready.\n' >"$DIR/first.txt"
printf 'From: Postmaster <postmaster@bench.test>\nSubject: 系统维护通知：周六凌晨两点至四点\n\n尊敬的用户：\n本周六凌晨两点至四点进行系统维护，期间无法收发邮件。\n%s\n' \
    "$(python3 -c 'print(chr(10).join(["维护完成后一切照常。" * 4] * 20))')" >"$DIR/notice.txt"

count_inodes() { find "$MAIL" -xdev -printf '%i\n' | sort -u | wc -l; }
disk_kb() { du -sk "$MAIL" | cut -f1; }
now() { python3 -c 'import time; print(time.monotonic())'; }
run() {
    # $1: label, $2: message file
    kb0=$(disk_kb); in0=$(count_inodes); t0=$(now)
    out=$("$KMPCTL" -c "$CONF" --json announce --all "$2")
    t1=$(now); kb1=$(disk_kb); in1=$(count_inodes)
    python3 - "$1" "$t0" "$t1" "$kb0" "$kb1" "$in0" "$in1" "$out" "$MAILBOXES" <<'PY'
import json, sys
label, t0, t1, kb0, kb1, in0, in1, out, n = sys.argv[1:]
a = json.loads(out)["announcement"]
secs = float(t1) - float(t0)
print("%-26s %7.2f s  %8.0f mailboxes/s  delivered %d, already %d  disk +%d KB  inodes +%d  (%d bytes stored)"
      % (label, secs, int(n) / secs, a["delivered"], a["already"], int(kb1) - int(kb0),
         int(in1) - int(in0), a["size"]))
PY
}

echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
run "1. new Maildirs" "$DIR/first.txt"
run "2. existing Maildirs" "$DIR/notice.txt"
run "3. the same again" "$DIR/notice.txt"
f=$(find "$MAIL/bench.test/u0000000/new" -type f -name "*announce-$(sha256sum "$DIR/notice.txt" | cut -c1-16)*")
echo "stored file of 2: $(stat -c '%s bytes, inode %i, %h links' "$f")"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
