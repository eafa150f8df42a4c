#!/bin/sh
# Checks at the door: kmp-smtpd's acceptance rate with every check of
# [scan] off, then on (spamd and clamd local, a DNSBL answered by the
# driver's own name server, HELO and reverse DNS checks), on the same
# messages, in one run. See bench/README.md, section "Checks at the door".
#
#   sh bench/scan.sh                                        # 2,000 messages, release build
#   MESSAGES=100 BIN=target/debug sh bench/scan.sh          # a quick check
#
# Needs Debian's spamd and clamav-daemon; nothing is downloaded (spamd -L,
# clamd with an EICAR-only signature file the driver writes).
set -eu
cd "$(dirname "$0")/.."
MESSAGES=${MESSAGES:-2000}
CLIENTS=${CLIENTS:-8}
BIN=${BIN:-target/release}
if [ "$BIN" = target/release ]; then
    cargo build --release --bin kmp-smtpd --bin kmp-authd --bin kmp-send --bin kmp-local \
        --bin kmp-remote --bin kmp-pop3d --bin kmp-imapd --bin kmp-sieved --bin kmpctl
fi
exec python3 bench/scan_driver.py --bin "$BIN" --messages "$MESSAGES" --clients "$CLIENTS"
