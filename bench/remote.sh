#!/usr/bin/env bash
# bench/remote.sh - remote delivery throughput, Kmpromail and Postfix side by side
# in one run, both relaying the same load to the same local smtp-sink.
#
#   e2e   (default) smtp-source -> kmp-smtpd -> kmp-send -> kmp-remote -> smtp-sink
#         against   smtp-source -> Postfix smtpd -> qmgr -> smtp(8) -> smtp-sink
#   agent kmp-remote alone, fed jobs by bench/remote_driver.py (playing kmp-send)
#
# The clock runs from the first message injected until smtp-sink has counted all
# of them. Every loop is bounded in time. Run as root (Postfix and smtp-sink need
# it); see bench/README.md.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

N=10000; C=20; L=4096; MODE=e2e; TIMEOUT=600
SINK_PORT=${SINK_PORT:-24025}; PF_PORT=${PF_PORT:-24026}; BASE=${BASE:-25000}
while [ $# -gt 0 ]; do
  case "$1" in
    -n) N=$2; shift ;;
    -c) C=$2; shift ;;
    -l) L=$2; shift ;;
    --mode) MODE=$2; shift ;;
    --timeout) TIMEOUT=$2; shift ;;
    -h|--help) sed -n 2,12p "$0"; exit 0 ;;
    *) echo "unknown option $1" >&2; exit 64 ;;
  esac
  shift
done

WORK=$(mktemp -d /tmp/kmp-bench-remote.XXXXXX)
chmod 755 "$WORK"   # Postfix's own users must reach its queue under it
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
  [ -f "$WORK/postfix/etc/main.cf" ] && postfix -c "$WORK/postfix/etc" stop >/dev/null 2>&1
  rm -rf "$WORK"
}
trap cleanup EXIT

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_port() { local _; for _ in $(seq 1 100); do port_open "$1" && return 0; sleep 0.1; done; return 1; }

SINK_OUT=""
start_sink() {
  SINK_OUT=$WORK/sink-$1.out
  local u=(); [ "$(id -u)" = 0 ] && u=(-u root)
  /usr/sbin/smtp-sink "${u[@]}" -c "127.0.0.1:$SINK_PORT" 256 > "$SINK_OUT" 2>&1 &
  SINK_PID=$!; PIDS+=("$SINK_PID")
  wait_port "$SINK_PORT" || { echo "smtp-sink did not start" >&2; exit 1; }
}
stop_sink() { kill "$SINK_PID" 2>/dev/null; wait "$SINK_PID" 2>/dev/null; }
sink_count() { tail -c 200 "$SINK_OUT" 2>/dev/null | tr '\r' '\n' | grep -o 'mesg=[0-9]*' | tail -1 | cut -d= -f2; }

# Waits until the sink counted N messages; prints the seconds since $1 (epoch ns).
wait_sink() {
  local t0=$1 deadline=$((SECONDS + TIMEOUT)) n last=-1 moved=$SECONDS
  while [ $SECONDS -lt $deadline ]; do
    n=$(sink_count); [ "${n:-0}" -ge "$N" ] && break
    [ "${n:-0}" != "$last" ] && { last=${n:-0}; moved=$SECONDS; }
    [ $((SECONDS - moved)) -gt 60 ] && break   # stalled for a minute
    sleep 0.05
  done
  n=$(sink_count)
  [ "${n:-0}" -ge "$N" ] || { echo "timed out with ${n:-0} of $N messages at the sink" >&2; return 1; }
  awk -v a="$t0" -v b="$(date +%s%N)" 'BEGIN { printf "%.2f", (b - a) / 1e9 }'
}

result() { # label secs
  awk -v l="$1" -v s="$2" -v n="$N" 'BEGIN { printf "RESULT %-9s %d messages of %d bytes in %6.2f s: %7.1f msg/s\n", l, n, '"$L"', s, n / s }'
}

echo "building release binaries..." >&2
bins=(--bin kmpctl --bin kmp-remote)
[ "$MODE" = e2e ] && bins+=(--bin kmp-send --bin kmp-smtpd --bin kmp-authd)
cargo build -q --release "${bins[@]}" || exit 1
BIN=$PWD/target/release

# --- Kmpromail --------------------------------------------------------------
start_sink ours
K=$WORK/kmp
"$BIN/kmpctl" init "$K" --port-base "$BASE" --hostname relay.example.test >/dev/null || exit 1
cat >> "$K/kmpromail.toml" <<CONF

[remote]
max_per_destination = $C
connection_cache_time = "5s"

[remote.routes]
"*" = ["127.0.0.1:$SINK_PORT"]
CONF
sed -i 's/^\[smtpd\]$/[smtpd]\nrelay_networks = ["127.0.0.0\/8"]\nmax_connections_per_ip = 5000\nmax_connections = 5000/' "$K/kmpromail.toml"
start_daemon() { "$BIN/$1" --config "$K/kmpromail.toml" --foreground > "$K/log/$1.log" 2>&1 & PIDS+=($!); }
start_daemon kmp-remote
for _ in $(seq 1 100); do [ -f "$K/run/kmp-remote.pid" ] && break; sleep 0.1; done
if [ "$MODE" = agent ]; then
  t0=$(date +%s%N)
  python3 bench/remote_driver.py --socket "$K/run/remote.sock" -n "$N" -c "$C" -l "$L" >&2 || exit 1
  ours=$(wait_sink "$t0") || exit 1
else
  start_daemon kmp-authd; start_daemon kmp-send; start_daemon kmp-smtpd
  wait_port $((BASE + 25)) || { echo "kmp-smtpd did not start" >&2; tail "$K"/log/*.log >&2; exit 1; }
  sleep 0.5
  t0=$(date +%s%N)
  smtp-source -s "$C" -m "$N" -l "$L" -f bench@example.org -t user@remote.example \
    127.0.0.1:$((BASE + 25)) > "$WORK/source-ours.out" 2>&1 || cat "$WORK/source-ours.out" >&2
  ours=$(wait_sink "$t0") || { tail -5 "$K"/log/*.log >&2; exit 1; }
fi
result ours "$ours"
stop_sink

# --- Postfix ----------------------------------------------------------------
start_sink postfix
P=$WORK/postfix
mkdir -p "$P/etc" "$P/spool" "$P/data"; chown postfix:postfix "$P/data"
cat > "$P/etc/main.cf" <<CONF
compatibility_level = 3.6
config_directory = $P/etc
queue_directory = $P/spool
data_directory = $P/data
mail_owner = postfix
setgid_group = postdrop
myhostname = relay.example.test
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
relayhost = [127.0.0.1]:$SINK_PORT
smtpd_relay_restrictions = permit_mynetworks, reject
smtpd_client_connection_count_limit = 0
smtpd_client_connection_rate_limit = 0
smtpd_client_message_rate_limit = 0
default_destination_concurrency_limit = $C
smtp_destination_concurrency_limit = $C
smtp_tls_security_level = none
maillog_file_prefixes = /var, /dev/stdout, $WORK
maillog_file = $P/maillog
biff = no
alias_maps =
alias_database =
local_recipient_maps =
CONF
cat > "$P/etc/master.cf" <<CONF
127.0.0.1:$PF_PORT inet n - n - 100 smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
CONF
postfix -c "$P/etc" post-install create-missing >/dev/null 2>&1
postfix -c "$P/etc" set-permissions >/dev/null 2>&1
postfix -c "$P/etc" start >/dev/null 2>&1 ||
  { echo "postfix did not start:" >&2; script -qc "postfix -c $P/etc check" /dev/null >&2; exit 1; }
wait_port "$PF_PORT" || { echo "postfix smtpd did not listen" >&2; exit 1; }
t0=$(date +%s%N)
smtp-source -s "$C" -m "$N" -l "$L" -f bench@example.org -t user@remote.example \
  "127.0.0.1:$PF_PORT" > "$WORK/source-postfix.out" 2>&1 || cat "$WORK/source-postfix.out" >&2
theirs=$(wait_sink "$t0") || exit 1
result postfix "$theirs"
if [ "$MODE" = e2e ]; then
  awk -v a="$ours" -v b="$theirs" 'BEGIN { printf "RESULT ratio     ours/postfix = %.2f\n", b / a }'
else
  echo "RESULT (agent mode feeds kmp-remote alone; Postfix ran its whole pipeline: no ratio)"
fi
