#!/bin/sh
# Sieve at delivery: kmp-local without a script, with a 20-rule script, and
# Dovecot's LDA with Pigeonhole running the same script on the same
# messages, in one run; prints the rates, the script's cost, the ratio and
# the load average. See bench/README.md, section "Sieve".
#
#   sh bench/sieve.sh                     # 10,000 messages to 100 users, release build
#   MESSAGES=500 USERS=20 BIN=target/debug sh bench/sieve.sh   # a quick check
#
# Needs Debian's dovecot-core and dovecot-sieve (/usr/lib/dovecot/dovecot-lda),
# and root (kmp-local drops to its user; dovecot-lda runs as nobody).
set -eu
cd "$(dirname "$0")/.."
MESSAGES=${MESSAGES:-10000}
USERS=${USERS:-100}
BIN=${BIN:-target/release}
ROUNDS=${ROUNDS:-3}
if [ "$BIN" = target/release ]; then
    cargo build --release --bin kmp-local --bin kmp-authd --bin kmpctl
fi
exec python3 bench/sieve_driver.py --bin "$BIN" --users "$USERS" --messages "$MESSAGES" --rounds "$ROUNDS"
