#!/usr/bin/env bash
# bench/imapd_select.sh - SELECT of a large folder, kmp-imapd beside Dovecot in
# one run. See bench/README.md ("IMAP", cold SELECT).
#
#   bench/imapd_select.sh [BIG=50000] [ROUNDS=3]
#
# Three kinds of SELECT, each then SEARCH UNSEEN SMALLER 100000 and FETCH
# 1:1000 (FLAGS UID RFC822.SIZE), timed by imapd_load.py's `big` step:
# - first: the folder was just written by Python's mailbox module (no index);
# - cold: kmp-imapd restarted (its index is on disk, nothing in memory);
#   ROUNDS times, a restart before each;
# - warm: right after a cold one (the folder's state kept in memory).
# Dovecot (the kit's reference instance, user20, every use under
# `flock /tmp/kit.lock`; started only when down, never stopped) has no state
# across sessions: its `cold` is a new session on its on-disk index.
# PERF=1 records `perf record $PERF_ARGS` (default -g; `--call-graph dwarf`
# for a release build without frame pointers) of kmp-imapd over the first
# SELECT and the first cold round, into $PERF_OUT.first and .cold (default
# /tmp/imapd-select.perf.data.*).
# SRC=DIR copies that Maildir instead of writing BIG messages with Python;
# NOREF=1 leaves Dovecot out; DOVECOT=private runs a Dovecot of its own
# (port PORTBASE+1143, stopped at the end) instead of the kit's. Needs root for Dovecot; builds nothing (BIN,
# default target/release).
set -euo pipefail
BIG=${1:-50000}
ROUNDS=${2:-3}
HERE=$(cd "$(dirname "$0")/.." && pwd)
BIN=${BIN:-$HERE/target/release}
KIT=${KIT:-$HERE/../shared/kit}
LOAD=(python3 "$HERE/bench/imapd_load.py")
DIR=$(mktemp -d /tmp/imapd-select.XXXXXX)
PORTBASE=${PORTBASE:-47300}
PERF_OUT=${PERF_OUT:-/tmp/imapd-select.perf.data}
pids=()
IMAPD=
cleanup() {
  for p in "${pids[@]}" $IMAPD; do kill "$p" 2>/dev/null || true; done
  [ -f "$DIR/dovecot/run/master.pid" ] && kill "$(cat "$DIR/dovecot/run/master.pid")" 2>/dev/null
  sleep 0.5
  rm -rf "$DIR"
}
trap cleanup EXIT

populate() { # DIR COUNT: the same files as bench/imapd.sh's
  mkdir -p "$(dirname "$1")"
  python3 - "$1" "$2" <<'PY'
import mailbox, sys, random
md = mailbox.Maildir(sys.argv[1], create=True)
r = random.Random(1)
for i in range(int(sys.argv[2])):
    body = ("line of text %d\n" % i) * r.randint(5, 200)
    m = mailbox.MaildirMessage("From: Sender %d <s%d@example.test>\nTo: u@example.test\nSubject: message %d\nDate: Mon, 1 Jan 2024 10:00:00 +0000\nMessage-ID: <%d@bench>\n\n%s" % (i, i, i, i, body))
    m.set_subdir("cur")
    if r.random() < 0.5:
        m.set_flags("S")
    md.add(m)
PY
}

wait_port() {
  for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done
  echo "port $1 not open" >&2; return 1
}

start_imapd() {
  "$BIN/kmp-imapd" --config "$CONF" --foreground 2>>"$DIR/imapd.log" & IMAPD=$!
  wait_port "$OURS"
}

stop_imapd() {
  kill "$IMAPD"; wait "$IMAPD" 2>/dev/null || true; IMAPD=
}

"$BIN/kmpctl" init "$DIR/ours" --port-base "$PORTBASE" --hostname mx.example.test >/dev/null
CONF=$DIR/ours/kmpromail.toml
"$BIN/kmpctl" --config "$CONF" domain add example.test >/dev/null
echo secret | "$BIN/kmpctl" --config "$CONF" user add big@example.test --password-stdin >/dev/null
if [ -n "${SRC:-}" ]; then
  # A copy of a folder populated before (no kmpromail-* files): saves the
  # minutes Python takes for 50,000 messages on a loaded machine.
  mkdir -p "$DIR/ours/mail/example.test"
  cp -a "$SRC" "$DIR/ours/mail/example.test/big"
  rm -f "$DIR/ours/mail/example.test/big"/kmpromail-*
else
  populate "$DIR/ours/mail/example.test/big" "$BIG"
fi
"$BIN/kmp-authd" --config "$CONF" --foreground 2>"$DIR/authd.log" & pids+=($!)
sleep 1
OURS=$((PORTBASE + 143))

echo "# load before: $(cut -d' ' -f1-3 /proc/loadavg)"
start_imapd
# perf_big LABEL FILE: the `big` step, under perf when PERF=1.
perf_big() {
  if [ "${PERF:-0}" = 1 ]; then
    # shellcheck disable=SC2086
    perf record ${PERF_ARGS:--g} -o "$2" -p "$IMAPD" 2>/dev/null & PERFPID=$!
    sleep 1
    "${LOAD[@]}" big --port "$OURS" --user big@example.test --label "$1"
    kill -INT "$PERFPID"; wait "$PERFPID" 2>/dev/null || true
  else
    "${LOAD[@]}" big --port "$OURS" --user big@example.test --label "$1"
  fi
}
echo "# kmp-imapd, first SELECT (no index) then warm"
perf_big kmp-imapd-first "$PERF_OUT.first"
for r in $(seq "$ROUNDS"); do
  stop_imapd
  start_imapd
  echo "# kmp-imapd restarted, cold round $r (load $(cut -d' ' -f1 /proc/loadavg))"
  if [ "$r" = 1 ]; then
    perf_big kmp-imapd-cold "$PERF_OUT.cold"
  else
    PERF=0 perf_big kmp-imapd-cold -
  fi
done

if [ "${DOVECOT:-kit}" = private ]; then
  # A Dovecot of our own on PORTBASE+1143, the kit's settings for what
  # matters here (Maildir, index files in the Maildir), stopped at the end.
  DV=$DIR/dovecot; mkdir -p "$DV/run" "$DV/state" "$DV/home/big"
  echo "big:{PLAIN}secret:$(id -u mail):$(id -g mail)::$DV/home/big::" >"$DV/users"
  cat >"$DV/dovecot.conf" <<CONF
base_dir = $DV/run
state_dir = $DV/state
instance_name = dovecot-select-bench
protocols = imap
listen = 127.0.0.1
log_path = $DV/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
first_valid_uid = 1
mail_location = maildir:~/Maildir
passdb {
  driver = passwd-file
  args = scheme=PLAIN $DV/users
}
userdb {
  driver = passwd-file
  args = $DV/users
}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = $((PORTBASE + 1143))
  }
  inet_listener imaps {
    port = 0
  }
}
CONF
  if [ -n "${SRC:-}" ]; then
    cp -a "$SRC" "$DV/home/big/Maildir"
    rm -f "$DV/home/big/Maildir"/kmpromail-*
  else
    populate "$DV/home/big/Maildir" "$BIG"
  fi
  chown -R mail:mail "$DV/home"
  chmod 755 "$DIR" "$DV" "$DV/home"
  /usr/sbin/dovecot -c "$DV/dovecot.conf"
  wait_port $((PORTBASE + 1143))
  echo "# private Dovecot, first SELECT (no index) then warm (load $(cut -d' ' -f1 /proc/loadavg))"
  "${LOAD[@]}" big --port $((PORTBASE + 1143)) --user big --label dovecot-first
  for r in $(seq "$ROUNDS"); do
    echo "# private Dovecot, new session on its index, round $r (load $(cut -d' ' -f1 /proc/loadavg))"
    "${LOAD[@]}" big --port $((PORTBASE + 1143)) --user big --label dovecot-cold
  done
  kill "$(cat "$DV/run/master.pid")"
  sleep 1
elif [ "${NOREF:-0}" != 1 ] && [ "$(id -u)" = 0 ] && [ -x "$KIT/ref-servers.sh" ]; then
  st=$(flock /tmp/kit.lock "$KIT/ref-servers.sh" status 2>/dev/null || true)
  case $st in
    *"imap 127.0.0.1:1143 UP"*) ;;
    # -o: the daemons must not inherit the lock (they would hold it for good).
    *) flock -o /tmp/kit.lock "$KIT/ref-servers.sh" start >"$DIR/ref.log" 2>&1 ;;
  esac
  M=/tmp/mailref/mail/user20/Maildir
  # One lock over the whole Dovecot part: another bench must not rewrite
  # user20's folder under it.
  BIGN=$BIG ROUNDS=$ROUNDS LOADPY="$HERE/bench/imapd_load.py" M=$M \
    flock /tmp/kit.lock bash -c "$(declare -f populate); set -e
      rm -rf \"\$M\"
      populate \"\$M\" \"\$BIGN\"
      chown -R mail:mail /tmp/mailref/mail/user20
      echo \"# Dovecot, first SELECT (no index) then warm (load \$(cut -d' ' -f1 /proc/loadavg))\"
      python3 \"\$LOADPY\" big --port 1143 --user user20 --label dovecot-first
      for r in \$(seq \"\$ROUNDS\"); do
        echo \"# Dovecot, new session on its index, round \$r (load \$(cut -d' ' -f1 /proc/loadavg))\"
        python3 \"\$LOADPY\" big --port 1143 --user user20 --label dovecot-cold
      done"
fi
echo "# load after: $(cut -d' ' -f1-3 /proc/loadavg)"
