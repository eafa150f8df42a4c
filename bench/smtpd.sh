#!/usr/bin/env bash
# smtpd.sh - kmp-smtpd benchmarks (see bench/README.md, "SMTP receiver").
#
#   bench/smtpd.sh idle [N]        RSS of kmp-smtpd holding N idle sessions (default 1000)
#   bench/smtpd.sh throughput [N]  N x 4 KB over 20 sessions with smtp-source until all
#                                  are in the Maildir, ours and the kit's reference
#                                  Postfix side by side (default N 10000)
#
# Uses the release binaries (cargo build --release); every loop is bounded.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-idle}
n=${2:-}
bin=target/release
kit=${KIT:-$PWD/../shared/kit}
bins=(--bin kmpctl --bin kmp-authd --bin kmp-smtpd)
[ "$mode" = throughput ] && bins+=(--bin kmp-send --bin kmp-local)
cargo build --release -q "${bins[@]}"

dir=$(mktemp -d /tmp/kmp-bench-smtpd.XXXXXX)
base=${PORT_BASE:-43000}
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT

"$bin/kmpctl" init "$dir" --port-base "$base" --hostname mx.example.test >/dev/null
conf=$dir/kmpromail.toml
# More sessions from one address than the defaults allow: the load comes from loopback.
python3 - "$conf" <<'PY'
import sys
p = sys.argv[1]
s = open(p).read()
s = s.replace("[smtpd]\n", "[smtpd]\nmax_connections = 5000\nmax_connections_per_ip = 5000\n", 1)
open(p, "w").write(s)
PY
ctl() { "$bin/kmpctl" --config "$conf" "$@"; }
ctl domain add example.test >/dev/null
for i in $(seq 1 20); do
  echo secret | ctl user add "user$i@example.test" --password-stdin >/dev/null
done
start() {
  "$bin/$1" --config "$conf" --foreground >"$dir/log/$1.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 1 200); do [ -e "$dir/run/$1.pid" ] && return 0; sleep 0.05; done
  echo "$1 did not start: $(cat "$dir/log/$1.log")" >&2
  exit 1
}
start kmp-authd

case "$mode" in
idle)
  start kmp-smtpd
  python3 bench/smtpd_idle.py 127.0.0.1 $((base + 25)) "$(cat "$dir/run/kmp-smtpd.pid")" "${n:-1000}"
  ;;
throughput)
  start kmp-local
  start kmp-send
  start kmp-smtpd
  n=${n:-10000}
  # One message first: it creates the Maildir the kit's script watches.
  python3 -c '
import smtplib, sys
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]))
s.sendmail("bench@example.test", ["user5@example.test"], b"Subject: warm-up\r\n\r\nx\r\n")
s.quit()' $((base + 25))
  for _ in $(seq 1 200); do [ -d "$dir/mail/example.test/user5/new" ] && break; sleep 0.05; done
  # -o: the reference daemons started inside must not inherit the lock.
  flock -o /tmp/kit.lock bash -c "
    \"$kit/ref-servers.sh\" start >/tmp/kmp-bench-ref.log 2>&1 || true
    \"$kit/bench.sh\" --only smtp --label postfix -n $n -c 20 -l 4096 --purge
    \"$kit/bench.sh\" --only smtp --label kmpromail -n $n -c 20 -l 4096 \
      --smtp 127.0.0.1:$((base + 25)) --maildir \"$dir/mail/example.test/user5\" --purge
  " | grep RESULT
  ;;
*)
  echo "usage: $0 idle|throughput [N]" >&2
  exit 64
  ;;
esac
