#!/usr/bin/env bash
# bench/webmail.sh - kmp-webmail against Roundcube 1.6 (Debian's roundcube-core,
# SQLite, lighttpd + php-cgi as FastCGI with OPcache), both reading the same
# kmp-imapd, side by side in one run. See bench/README.md ("Webmail").
#
#   bench/webmail.sh [MESSAGES] [REQUESTS] [USERS]
#
# MESSAGES in the INBOX (default 10000), REQUESTS of each page per webmail
# (default 200), USERS concurrent (default 1; run again with 50). Needs
# lighttpd, php-cgi and roundcube-core + roundcube-sqlite3 installed. Builds
# nothing: run `make build` first (or set BIN=target/debug).
set -euo pipefail
MESSAGES=${1:-10000}
REQUESTS=${2:-200}
USERS=${3:-1}
HERE=$(cd "$(dirname "$0")/.." && pwd)
BIN=${BIN:-$HERE/target/release}
DIR=$(mktemp -d /tmp/webmail-bench.XXXXXX)
PORTBASE=${PORTBASE:-48000}
RC_PORT=$((PORTBASE + 81))
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  if [ -f "$DIR/ours/kmpromail.toml" ]; then "$BIN/kmpctl" --config "$DIR/ours/kmpromail.toml" stop >/dev/null 2>&1 || true; fi
  rm -rf "$DIR"
}
trap cleanup EXIT
for p in lighttpd php-cgi; do command -v "$p" >/dev/null || { echo "bench/webmail.sh: $p is not installed" >&2; exit 1; }; done
[ -d /usr/share/roundcube ] || { echo "bench/webmail.sh: roundcube-core is not installed" >&2; exit 1; }

"$BIN/kmpctl" init "$DIR/ours" --port-base "$PORTBASE" --hostname mx.example.test --trust-loopback >/dev/null
CONF=$DIR/ours/kmpromail.toml
# Every browser of the bench comes from 127.0.0.1: lift the per-address limits
# that 50 users from 50 addresses would never meet.
if grep -q '^\[imapd\]$' "$CONF"; then
  sed -i "s/^\[imapd\]$/[imapd]\nmax_connections_per_ip = 1000/" "$CONF"
else
  printf '\n[imapd]\nmax_connections_per_ip = 1000\n' >>"$CONF"
fi
"$BIN/kmpctl" --config "$CONF" domain add example.test --postmaster bench1@example.test >/dev/null 2>&1 || "$BIN/kmpctl" --config "$CONF" domain add example.test >/dev/null
# One account per concurrent user (bench1..benchUSERS), each with the same INBOX.
for n in $(seq "$USERS"); do
  echo secret | "$BIN/kmpctl" --config "$CONF" user add "bench$n@example.test" --password-stdin >/dev/null
done

# The INBOX: MESSAGES small messages, then one 100 KB HTML message (the one
# both webmails open), written with Python's mailbox module.
mkdir -p "$DIR/ours/mail/example.test"
python3 - "$DIR/ours/mail/example.test/bench1" "$MESSAGES" <<'PY'
import mailbox, sys, random
md = mailbox.Maildir(sys.argv[1], create=True)
r = random.Random(1)
for i in range(int(sys.argv[2])):
    body = ("line of text %d\n" % i) * r.randint(5, 200)
    m = mailbox.MaildirMessage("From: Sender %d <s%d@example.test>\nTo: bench@example.test\nSubject: message %d\nDate: Mon, 1 Jan 2024 10:%02d:00 +0000\nMessage-ID: <%d@bench>\n\n%s" % (i, i, i, i % 60, i, body))
    m.set_subdir("cur")
    if r.random() < 0.5:
        m.set_flags("S")
    md.add(m)
rows = "".join("<tr><td style=\"color:#333\">row %d</td><td><b>cell</b> text %d</td></tr>\n" % (i, i) for i in range(1800))
html = "<html><body><h1>BENCH-MARKER</h1><table>%s</table></body></html>" % rows
m = mailbox.MaildirMessage("From: HTML Sender <html@example.test>\nTo: bench@example.test\nSubject: the HTML one\nDate: Tue, 2 Jan 2024 10:00:00 +0000\nMessage-ID: <html@bench>\nMIME-Version: 1.0\nContent-Type: text/html; charset=utf-8\n\n" + html)
m.set_subdir("cur")
md.add(m)
PY
UID_HTML=$((MESSAGES + 1))
for n in $(seq 2 "$USERS"); do
  mkdir -p "$DIR/ours/mail/example.test/bench$n"
  cp -al "$DIR/ours/mail/example.test/bench1/cur" "$DIR/ours/mail/example.test/bench$n/cur"
  mkdir -p "$DIR/ours/mail/example.test/bench$n/new" "$DIR/ours/mail/example.test/bench$n/tmp"
done

"$BIN/kmpctl" --config "$CONF" start >/dev/null
IMAP=$((PORTBASE + 143))
for _ in $(seq 50); do python3 -c "import socket,sys; socket.create_connection(('127.0.0.1',$IMAP),1)" 2>/dev/null && break; sleep 0.2; done
# Both webmails' first SELECT of the big folder happens in a warm-up, not a timed request.
python3 - "$IMAP" "$USERS" <<'PY'
import imaplib, sys
for n in range(1, int(sys.argv[2]) + 1):
    c = imaplib.IMAP4("127.0.0.1", int(sys.argv[1])); c.login("bench%d@example.test" % n, "secret"); c.select("INBOX"); c.logout()
PY

# Roundcube: its own configuration directory, SQLite database, temp and logs.
RC=$DIR/rc
mkdir -p "$RC/config" "$RC/temp" "$RC/logs"
cp /etc/roundcube/defaults.inc.php /etc/roundcube/mimetypes.php "$RC/config/"
python3 - "$RC/db.sqlite" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1]); db.executescript(open("/usr/share/roundcube/SQL/sqlite.initial.sql").read()); db.close()
PY
cat >"$RC/config/config.inc.php" <<EOF
<?php
\$config = [];
\$config['db_dsnw'] = 'sqlite:///$RC/db.sqlite?mode=0600';
\$config['imap_host'] = ['127.0.0.1:$IMAP'];
\$config['smtp_host'] = '127.0.0.1:$((PORTBASE + 587))';
\$config['des_key'] = '$(head -c 18 /dev/urandom | base64)';
\$config['temp_dir'] = '$RC/temp/';
\$config['log_dir'] = '$RC/logs/';
\$config['plugins'] = [];
\$config['skin'] = 'elastic';
\$config['enable_installer'] = false;
\$config['mail_pagesize'] = 50;
\$config['login_rate_limit'] = 0;
EOF
cat >"$RC/lighttpd.conf" <<EOF
server.modules = ("mod_fastcgi", "mod_access", "mod_setenv")
server.document-root = "/var/lib/roundcube/public_html"
server.bind = "127.0.0.1"
server.port = $RC_PORT
server.pid-file = "$RC/lighttpd.pid"
server.errorlog = "$RC/logs/lighttpd.log"
server.follow-symlink = "enable"
index-file.names = ("index.php")
mimetype.assign = (".css" => "text/css", ".js" => "application/javascript", ".png" => "image/png", ".svg" => "image/svg+xml")
fastcgi.server = (".php" => ((
  "bin-path" => "/usr/bin/php-cgi -d opcache.enable=1",
  "socket" => "$RC/php.sock",
  "max-procs" => 1,
  "bin-environment" => ("PHP_FCGI_CHILDREN" => "4", "PHP_FCGI_MAX_REQUESTS" => "10000", "ROUNDCUBE_CONFIG_DIR" => "$RC/config"),
  "bin-copy-environment" => ("PATH")
)))
EOF
lighttpd -D -f "$RC/lighttpd.conf" 2>"$RC/logs/stderr" & pids+=($!)
for _ in $(seq 50); do python3 -c "import socket; socket.create_connection(('127.0.0.1',$RC_PORT),1)" 2>/dev/null && break; sleep 0.2; done

OURS_URL=
if [ -f "$DIR/ours/webmail/lighttpd.conf" ]; then
  OURS_URL=http://127.0.0.1:$((PORTBASE + 80))
  for _ in $(seq 50); do python3 -c "import socket; socket.create_connection(('127.0.0.1',$((PORTBASE + 80))),1)" 2>/dev/null && break; sleep 0.2; done
fi

LOAD=(python3 "$HERE/bench/webmail_load.py")
# One untimed round each, so both have their caches (OPcache, Roundcube's
# session table, kmp-imapd's folder state) warm, as on a live system.
"${LOAD[@]}" roundcube "http://127.0.0.1:$RC_PORT" "bench{n}@example.test" secret INBOX "$UID_HTML" --requests "$USERS" --concurrency "$USERS" | grep -v "^RESULT.*: [0-9]* requests, " || true
if [ -n "$OURS_URL" ]; then
  "${LOAD[@]}" kmpromail "$OURS_URL" "bench{n}@example.test" secret INBOX "$UID_HTML" --requests "$USERS" --concurrency "$USERS" | grep -v "^RESULT.*: [0-9]* requests, " || true
fi
echo "RESULT $MESSAGES messages in INBOX, $REQUESTS requests of each page, $USERS concurrent user(s); load average $(cut -d' ' -f1-3 /proc/loadavg)"
"${LOAD[@]}" roundcube "http://127.0.0.1:$RC_PORT" "bench{n}@example.test" secret INBOX "$UID_HTML" \
  --requests "$REQUESTS" --concurrency "$USERS"
rss_php=0; n=0
for p in $(pgrep -f "^/usr/bin/php-cgi" || true); do
  if grep -q "$RC/php.sock" "/proc/$p/cmdline" 2>/dev/null || [ "$(readlink "/proc/$p/cwd" 2>/dev/null)" != "" ]; then
    r=$(awk '/VmHWM/ {print $2}' "/proc/$p/status" 2>/dev/null || echo 0); rss_php=$((rss_php + r)); n=$((n + 1))
  fi
done
echo "RESULT [roundcube] memory: $n php-cgi processes, peak RSS $((rss_php / 1024)) MB in all"
if [ -n "$OURS_URL" ]; then
  "${LOAD[@]}" kmpromail "$OURS_URL" "bench{n}@example.test" secret INBOX "$UID_HTML" \
    --requests "$REQUESTS" --concurrency "$USERS"
  # Peak RSS of one request: kmp-webmail under GNU time, for a few requests.
  if [ -x /usr/bin/time ]; then
    WM=$(sed -n 's/^alias.url = ("\/kmp-webmail" => "\(\/[^"]*\)")$/\1/p' "$DIR/ours/webmail/lighttpd.conf" | head -1)
    if [ -n "$WM" ]; then
      printf '#!/bin/sh\nexec /usr/bin/time -a -o %s -f %%M %s "$@"\n' "$DIR/rss.txt" "$WM" >"$DIR/wm-timed"
      chmod +x "$DIR/wm-timed"
      sed -i "s|\"$WM\"|\"$DIR/wm-timed\"|" "$DIR/ours/webmail/lighttpd.conf"
      "$BIN/kmpctl" --config "$CONF" stop >/dev/null; "$BIN/kmpctl" --config "$CONF" start >/dev/null
      for _ in $(seq 50); do python3 -c "import socket; socket.create_connection(('127.0.0.1',$((PORTBASE + 80))),1)" 2>/dev/null && break; sleep 0.2; done
      "${LOAD[@]}" kmpromail "$OURS_URL" "bench{n}@example.test" secret INBOX "$UID_HTML" --requests 10 >/dev/null
      sort -n "$DIR/rss.txt" | awk '{a[NR]=$1} END {if (NR) printf "RESULT [kmpromail] memory: peak RSS per request p50 %d kB, max %d kB (%d requests)\n", a[int((NR+1)/2)], a[NR], NR}'
    fi
  fi
else
  echo "RESULT [kmpromail] skipped: this instance has no webmail/lighttpd.conf (kmpctl init writes one when the webmail is built)"
fi
