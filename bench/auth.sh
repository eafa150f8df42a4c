#!/usr/bin/env bash
# auth.sh - the cost of the sender checks at kmp-smtpd's door (see bench/README.md,
# "Sender checks").
#
#   bench/auth.sh [N] [CONNS]   N messages (default 2000) over CONNS sessions (default 10),
#                               DKIM-signed (RSA-2048) by a domain with SPF and DMARC
#                               p=reject, accepted by kmp-smtpd with every check of [auth]
#                               on, then with every check off, RUNS times (default 2)
#
# Only kmp-authd and kmp-smtpd run: what is measured is acceptance (the 250 after the
# queue file's fsync), not delivery. DNS is answered by bench/auth_driver.py on
# 127.0.0.1, so the numbers are the checks' own cost (parsing, hashing, RSA) plus
# loopback DNS, with mail-auth's caches warm after the first message.
# BIN=target/debug checks the script without a release build. Every loop is bounded.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-2000}
conns=${2:-10}
runs=${RUNS:-2}
bin=${BIN:-target/release}
if [ "$bin" = target/release ]; then
  cargo build --release -q --bin kmpctl --bin kmp-authd --bin kmp-smtpd
fi
py=python3
/usr/bin/python3 -c 'import dkim' 2>/dev/null && py=/usr/bin/python3
$py -c 'import dkim' || { echo "needs dkimpy: apt-get install python3-dkim" >&2; exit 1; }

dir=$(mktemp -d /tmp/kmp-bench-auth.XXXXXX)
base=${PORT_BASE:-44000}
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT

"$bin/kmpctl" init "$dir" --port-base "$base" --hostname mx.example.test >/dev/null
conf=$dir/kmpromail.toml
ctl() { "$bin/kmpctl" --config "$conf" "$@"; }
ctl domain add example.test >/dev/null
echo secret | ctl user add u@example.test --password-stdin >/dev/null
ctl dkim keygen sender.test --algorithm rsa >/dev/null
sel=$(cat "$dir/dkim/sender.test/active")
{
  echo "sender.test TXT v=spf1 ip4:127.0.0.1 -all"
  echo "_dmarc.sender.test TXT v=DMARC1; p=reject"
  echo "$sel._domainkey.sender.test TXT $(cat "$dir/dkim/sender.test/$sel.txt")"
} >"$dir/zone"
$py bench/auth_driver.py dns "$dir/dns.port" "$dir/zone" &
pids+=($!)
for _ in $(seq 1 100); do [ -s "$dir/dns.port" ] && break; sleep 0.05; done
dnsport=$(cat "$dir/dns.port")

# One 4 KB message, signed once (the verifier's work is the same every time).
$py - "$dir/dkim/sender.test/$sel.pem" "$sel" >"$dir/msg.eml" <<'PY'
import sys, dkim
key = open(sys.argv[1], "rb").read()
body = b"".join(b"line %04d of the benchmark message, some text to hash\r\n" % i for i in range(70))
msg = (b"From: Bench <bench@sender.test>\r\nTo: u@example.test\r\nSubject: bench\r\n"
       b"Date: Sat, 5 Dec 2026 06:00:00 +0000\r\nMessage-ID: <b@sender.test>\r\n\r\n" + body)
sig = dkim.sign(msg, sys.argv[2].encode(), b"sender.test", key,
                include_headers=[b"from", b"to", b"subject", b"date", b"message-id"])
sys.stdout.buffer.write(sig + msg)
PY

setting() { # setting KEY VALUE: put KEY = VALUE first in [auth] or [smtpd]
  python3 - "$conf" "$1" "$2" <<'PY'
import re, sys
p, key, value = sys.argv[1:4]
section, name = key.split(".")
s = open(p).read()
s = re.sub(r"(?m)^%s = .*\n" % re.escape(name), "", s) if section == "auth" else s
head = "[%s]\n" % section
s = s.replace(head, "%s%s = %s\n" % (head, name, value), 1) if head in s else s + "\n%s%s = %s\n" % (head, name, value)
open(p, "w").write(s)
PY
}
setting smtpd.max_connections_per_ip 1000
setting auth.dns_servers "[\"127.0.0.1:$dnsport\"]"
setting auth.skip_networks "[]"

start() {
  "$bin/$1" --config "$conf" --foreground >>"$dir/log/$1.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 1 200); do [ -e "$dir/run/$1.pid" ] && return 0; sleep 0.05; done
  echo "$1 did not start: $(cat "$dir/log/$1.log")" >&2
  exit 1
}
start kmp-authd
smtpd=
run() { # run on|off
  for k in spf dkim arc dmarc; do
    if [ "$1" = on ]; then setting "auth.$k" true; else setting "auth.$k" false; fi
  done
  if [ -n "$smtpd" ]; then
    kill "$smtpd"
    for _ in $(seq 1 200); do [ -e "$dir/run/kmp-smtpd.pid" ] || break; sleep 0.05; done
  fi
  start kmp-smtpd
  smtpd=${pids[-1]}
  printf 'checks %-3s ' "$1"
  $py bench/auth_driver.py load 127.0.0.1 $((base + 25)) "$n" "$conns" "$dir/msg.eml"
  rm -f "$dir"/queue/incoming/new/* "$dir"/queue/incoming/env/* 2>/dev/null || true
}
for _ in $(seq 1 "$runs"); do
  run on
  run off
done
grep -c 'auth: spf=pass dkim=pass dmarc=pass deliver' "$dir/log/kmp-smtpd.log" |
  sed 's/^/messages checked and passed: /'
