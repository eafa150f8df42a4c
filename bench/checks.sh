#!/bin/sh
# The checks at the door, Kmpromail against Postfix with its milters, in one run
# (see bench/README.md, "Checks at the door against Postfix").
#
#   sh bench/checks.sh                                    # 200 messages, 4 sessions, release build
#   MESSAGES=40 CLIENTS=4 BIN=target/debug sh bench/checks.sh   # a quick check of the script
#   NO_SPAMD=1 MESSAGES=2000 sh bench/checks.sh           # every check but SpamAssassin's
#
# Both sides get the same DKIM-signed 4 KB message from a domain with SPF and DMARC p=reject,
# from a client whose reverse DNS is confirmed, over the same DNSBL, spamd and clamd, with every
# check off and then on. Kmpromail: kmp-authd and kmp-smtpd. Postfix: a private instance in a
# temporary directory with OpenDKIM, policyd-spf, OpenDMARC, spamass-milter and clamav-milter.
# Runs as root, in a private network and mount namespace (unshare -mn) so that a name server
# on 127.0.0.1:53 and a private /etc/resolv.conf serve every resolver of both sides.
set -eu
cd "$(dirname "$0")/.."
MESSAGES=${MESSAGES:-200}
CLIENTS=${CLIENTS:-4}
RUNS=${RUNS:-1}
BIN=${BIN:-target/release}
[ "$(id -u)" = 0 ] || { echo "checks.sh: must run as root (unshare, postfix)" >&2; exit 1; }
py=python3
/usr/bin/python3 -c 'import dkim' 2>/dev/null && py=/usr/bin/python3
$py bench/checks_driver.py --need || exit 2
if [ "$BIN" = target/release ]; then
    cargo build --release --bin kmp-smtpd --bin kmp-authd --bin kmpctl
fi
exec unshare -mn -- $py bench/checks_driver.py --bin "$BIN" --messages "$MESSAGES" \
    --clients "$CLIENTS" --runs "$RUNS" ${KEEP:+--keep} ${NO_SPAMD:+--no-spamd}
