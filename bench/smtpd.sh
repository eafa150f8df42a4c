#!/usr/bin/env bash
# smtpd.sh - kmp-smtpd benchmarks (see bench/README.md, "SMTP receiver").
#
#   bench/smtpd.sh idle [N]        RSS of kmp-smtpd holding N idle sessions (default 1000)
#   bench/smtpd.sh throughput [N]  N x 4 KB over 20 sessions with smtp-source until all
#                                  are in the Maildir, ours and the kit's reference
#                                  Postfix side by side (default N 10000), RUNS times
#                                  (default 2), after measuring the disk's fsync limit
#                                  (bench/fsync_rate.py) on the instance's file system
#   bench/smtpd.sh cost [N]        our side only: N x 4 KB over 20 sessions (smtp-source,
#                                  default N 3000) into one Maildir, printing each daemon's
#                                  CPU time and fsyncs per message (bench/smtpd_cost.py);
#                                  meaningful while others build, where rates are not
#
# BIN: where the binaries are (default target/release, built first; with BIN set, nothing
# is built, e.g. BIN=target/debug after cargo build).
# KIT: the comparison kit (default ../shared/kit or ../../shared/kit beside the checkout).
# The reference Postfix must be running already (the kit's ref-servers.sh start): this
# script never starts or stops it.
#
# Uses the release binaries (cargo build --release); every loop is bounded.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-idle}
n=${2:-}
bin=${BIN:-target/release}
kit=${KIT:-$PWD/../shared/kit}
bins=(--bin kmpctl --bin kmp-authd --bin kmp-smtpd)
case "$mode" in throughput|cost) bins+=(--bin kmp-send --bin kmp-local) ;; esac
[ -n "${BIN:-}" ] || cargo build --release -q "${bins[@]}"

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
  python3 bench/fsync_rate.py "$dir" 3 1 20 | tee "$dir/fsync.txt"
  limit20=$(sed -n 's/^RESULT fsync: 20 writer(s): \([0-9]*\) .*/\1/p' "$dir/fsync.txt")
  if ! (exec 3<>/dev/tcp/127.0.0.1/2526) 2>/dev/null; then
    echo "the reference Postfix is not listening on 127.0.0.1:2526 (start it with $kit/ref-servers.sh start)" >&2
    exit 1
  fi
  e2e() { sed -n 's/.*=> \([0-9.]*\) msg\/s end-to-end.*/\1/p'; }
  # The whole machine's busy CPU time (all but idle and iowait), in clock
  # ticks: each side's run is the only load, so busy time per message is
  # what that mail system (with smtp-source and the kit's counting, alike
  # for both) costs the machine.
  busy() { awk '/^cpu /{print $2+$3+$4+$7+$8+$9}' /proc/stat; }
  hz=$(getconf CLK_TCK)
  pf_maildir=/tmp/mailref/mail/user5/Maildir
  our_maildir=$dir/mail/example.test/user5
  for run in $(seq 1 "${RUNS:-2}"); do
    echo "run $run, load average $(cut -d' ' -f1-3 /proc/loadavg)"
    : >"$dir/run.txt"
    for side in postfix kmpromail; do
      if [ "$side" = postfix ]; then md=$pf_maildir; args=(); else md=$our_maildir; args=(--smtp "127.0.0.1:$((base + 25))" --maildir "$our_maildir"); fi
      # The previous run's files go before the clock starts, not inside it.
      find "$md/new" "$md/cur" -maxdepth 1 -type f -delete 2>/dev/null || true
      sync
      b0=$(busy)
      flock /tmp/kit.lock "$kit/bench.sh" --only smtp --label "$side" -n "$n" -c 20 -l 4096 "${args[@]}" |
        grep RESULT | tee -a "$dir/run.txt"
      b1=$(busy)
      printf 'RESULT [%s] machine CPU: %.3f ms per message (%d ticks busy)\n' "$side" \
        "$(echo "1000 * ($b1 - $b0) / $hz / $n" | bc -l)" "$((b1 - b0))" | tee -a "$dir/run.txt"
    done
    pf=$(grep '\[postfix\]' "$dir/run.txt" | e2e)
    ours=$(grep '\[kmpromail\]' "$dir/run.txt" | e2e)
    cpu() { sed -n "s/^RESULT \[$1\] machine CPU: \([0-9.]*\) ms.*/\1/p" "$dir/run.txt"; }
    if [ -n "$pf" ] && [ -n "$ours" ] && [ -n "$limit20" ]; then
      printf 'RESULT run %d: kmpromail/postfix end to end %.2fx; machine CPU per message postfix/kmpromail %.2fx; kmpromail at %.0f%% of the fsync limit (20 writers, %s files/s); load average after %s\n' \
        "$run" "$(echo "$ours / $pf" | bc -l)" "$(echo "$(cpu postfix) / $(cpu kmpromail)" | bc -l)" \
        "$(echo "100 * $ours / $limit20" | bc -l)" "$limit20" "$(cut -d' ' -f1-3 /proc/loadavg)"
    fi
  done
  ;;
cost)
  start kmp-local
  start kmp-send
  start kmp-smtpd
  python3 bench/smtpd_cost.py 127.0.0.1 $((base + 25)) "$dir" "${n:-3000}"
  ;;
*)
  echo "usage: $0 idle|throughput|cost [N]" >&2
  exit 64
  ;;
esac
