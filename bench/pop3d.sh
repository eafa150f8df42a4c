#!/usr/bin/env bash
# POP3: kmp-pop3d and Dovecot's POP3 side by side in one run, on copies of
# the same Maildir. See bench/README.md, section POP3.
#
#   bench/pop3d.sh            (as root: the reference Dovecot needs it)
#
# Env: N (messages, 5000), SIZE (bytes each, 20480), CLIENTS (50), SECS (10),
# HOLD (connections held for the RSS reading, 1000), BASE (port base, 27000),
# KIT (../shared/kit beside the checkout), REF_USER (the Dovecot user whose Maildir is used, user20).
set -euo pipefail
cd "$(dirname "$0")/.."

N=${N:-5000}
SIZE=${SIZE:-20480}
CLIENTS=${CLIENTS:-50}
SECS=${SECS:-10}
HOLD=${HOLD:-1000}
BASE=${BASE:-27000}
KIT=${KIT:-$PWD/../shared/kit}
REF_USER=${REF_USER:-user20}
REF_MAILDIR=/tmp/mailref/mail/$REF_USER/Maildir

cargo build -q --release --locked --bin kmpctl --bin kmp-authd --bin kmp-pop3d
cargo build -q --release --locked --bench pop3
client() { cargo bench -q --locked --bench pop3 -- "$@"; }
bin=target/release

work=$(mktemp -d /tmp/pop3bench.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# Our instance: one user with the big Maildir, CLIENTS users for the logins.
$bin/kmpctl init "$work" --port-base "$BASE" --hostname mx.example.test >/dev/null
sed -i "s/^\[pop3d\]$/[pop3d]\nmax_connections = $((HOLD + 100))\nmax_connections_per_ip = $((HOLD + 100))/" "$work/kmpromail.toml"
ctl() { $bin/kmpctl --config "$work/kmpromail.toml" "$@"; }
ctl domain add example.test >/dev/null
echo pw | ctl user add bench@example.test --password-stdin >/dev/null
for i in $(seq 1 "$CLIENTS"); do echo pw | ctl user add "l$i@example.test" --password-stdin >/dev/null; done
$bin/kmp-authd --config "$work/kmpromail.toml" --foreground 2>"$work/log/kmp-authd.log" &
pids+=($!)
$bin/kmp-pop3d --config "$work/kmpromail.toml" --foreground 2>"$work/log/kmp-pop3d.log" &
pop3d=$!
pids+=("$pop3d")
for _ in $(seq 1 100); do [ -f "$work/run/kmp-pop3d.pid" ] && break; sleep 0.1; done

# N messages of SIZE bytes, LF line ends, Dovecot-style names with S= and W=.
python3 - "$work/pristine" "$N" "$SIZE" <<'EOF'
import os, sys, time
root, n, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for d in ("new", "cur", "tmp"):
    os.makedirs(os.path.join(root, d), exist_ok=True)
now = int(time.time())
for i in range(n):
    head = f"From: sender{i}@example.test\nTo: bench@example.test\nSubject: message {i}\nMessage-ID: <{i}.{now}@example.test>\n\n"
    body, k = [], 0
    while len(head) + sum(map(len, body)) < size:
        line = f"{k:06d} " + "abcdefghij" * 7 + "\n"
        body.append("." + line if k % 50 == 0 else line)
        k += 1
    msg = (head + "".join(body)).encode()[:size]
    if not msg.endswith(b"\n"):
        msg = msg[:-1] + b"\n"
    w = len(msg) + msg.count(b"\n")
    name = f"{now}.M{i}P{os.getpid()}.bench,S={len(msg)},W={w}"
    with open(os.path.join(root, "new", name), "wb") as f:
        f.write(msg)
EOF
ours_md="$work/mail/example.test/bench"
mkdir -p "$(dirname "$ours_md")"

echo "== POP3: $N messages of $SIZE bytes, RETR all then DELE all, one session"
cp -a "$work/pristine" "$ours_md"
echo -n "kmp-pop3d: "; client retr "127.0.0.1:$((BASE + 110))" bench@example.test pw

# The reference Dovecot (shared with other developers: under the kit lock).
flock /tmp/kit.lock bash -s -- "$KIT" "$REF_MAILDIR" "$work/pristine" "$CLIENTS" "$SECS" <<'EOF'
set -euo pipefail
kit=$1 md=$2 pristine=$3 clients=$4 secs=$5
started=0
if ! (exec 3<>/dev/tcp/127.0.0.1/1110) 2>/dev/null; then
  "$kit/ref-servers.sh" start >/tmp/pop3bench-ref.log 2>&1
  started=1
fi
rm -rf "$md"
cp -a "$pristine" "$md"
chown -R mail:mail "$md"
echo -n "dovecot:   "; cargo bench -q --locked --bench pop3 -- retr 127.0.0.1:1110 "$(basename "$(dirname "$md")")" secret
echo "== POP3: logins per second, $clients parallel clients, ${secs}s (USER, PASS, QUIT)"
echo -n "dovecot:   "; cargo bench -q --locked --bench pop3 -- logins 127.0.0.1:1110 'user{}' secret "$clients" "$secs" 19
rm -rf "$md"; mkdir -p "$md"/{new,cur,tmp}; chown -R mail:mail "$md"
[ "$started" = 1 ] && "$kit/ref-servers.sh" stop >/dev/null 2>&1
true
EOF
echo -n "kmp-pop3d: "; client logins "127.0.0.1:$((BASE + 110))" 'l{}@example.test' pw "$CLIENTS" "$SECS"

echo "== kmp-pop3d: RSS with $HOLD connected sessions"
rss() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
idle=$(rss "$pop3d")
echo "idle RSS: $idle kB"
fifo="$work/hold.out"
client hold "127.0.0.1:$((BASE + 110))" "$HOLD" 15 >"$fifo" &
holder=$!
for _ in $(seq 1 150); do grep -q RESULT "$fifo" 2>/dev/null && break; sleep 0.1; done
cat "$fifo"
r=$(rss "$pop3d")
echo "RESULT rss sessions=$HOLD rss_kb=$r per_session_kb=$(( (r - idle) / HOLD ))"
kill "$holder" 2>/dev/null || true
