#!/bin/sh
# Mailing lists: a 100 KB post to 10,000 members (9,000 local, 1,000 remote
# at smtp-sink), Kmpromail and then mlmmj behind Postfix on the same machine;
# prints the time until every copy is in place and the local disk used, and
# the ratios. See bench/README.md, section "Mailing lists".
#
#   sh bench/lists.sh                                         # full size, release build
#   LOCAL=90 REMOTE=10 BIN=target/debug sh bench/lists.sh     # a quick check
#
# Needs root for the mlmmj side (MLMMJ=0 leaves it out) and Debian's postfix
# and mlmmj.
set -eu
cd "$(dirname "$0")/.."
LOCAL=${LOCAL:-9000}
REMOTE=${REMOTE:-1000}
SIZE=${SIZE:-102400}
BIN=${BIN:-target/release}
MLMMJ=${MLMMJ:-1}
if [ "$BIN" = target/release ]; then
    cargo build --release --bin kmpctl --bin kmp-authd --bin kmp-smtpd --bin kmp-send \
        --bin kmp-local --bin kmp-remote --bin kmp-inject
fi
if [ "$MLMMJ" = 1 ]; then set -- --mlmmj; else set --; fi
exec python3 bench/lists_driver.py --bin "$BIN" --local "$LOCAL" --remote "$REMOTE" --size "$SIZE" "$@"
