#!/usr/bin/env bash
# bench/cgi_floor.sh - the least a CGI request costs under lighttpd on this
# machine: a Rust program that prints three lines, behind the same lighttpd
# modules `kmpctl init` configures, timed by curl. See bench/README.md
# ("Webmail").
#
#   bench/cgi_floor.sh [REQUESTS]
set -euo pipefail
REQUESTS=${1:-200}
PORT=${PORT:-49990}
command -v lighttpd >/dev/null || { echo "bench/cgi_floor.sh: lighttpd is not installed" >&2; exit 1; }
DIR=$(mktemp -d /tmp/cgi-floor.XXXXXX)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$DIR"; }
trap cleanup EXIT
printf 'fn main() { print!("Status: 200 OK\\r\\nContent-Type: text/plain\\r\\n\\r\\nhi\\n"); }\n' >"$DIR/hello.rs"
rustc -O -o "$DIR/hello" "$DIR/hello.rs"
cat >"$DIR/lighttpd.conf" <<CONF
server.modules = ("mod_alias", "mod_rewrite", "mod_cgi")
server.bind = "127.0.0.1"
server.port = $PORT
server.document-root = "$DIR"
url.rewrite-once = ("^/(.*)\$" => "/h/\$1")
alias.url = ("/h" => "$DIR/hello")
\$HTTP["url"] =~ "^/h" {
  cgi.assign = ("" => "")
}
CONF
lighttpd -D -f "$DIR/lighttpd.conf" 2>"$DIR/lighttpd.log" & pid=$!
for _ in $(seq 50); do curl -s -o /dev/null "http://127.0.0.1:$PORT/x" && break; sleep 0.1; done
for _ in $(seq "$REQUESTS"); do curl -s -o /dev/null -w "%{time_total}\n" "http://127.0.0.1:$PORT/x"; done |
  sort -n | awk '{a[NR]=$1} END {printf "RESULT cgi floor: p50 %.2f ms, p99 %.2f ms (%d requests of a three-line CGI program under lighttpd)\n", a[int((NR+1)/2)]*1000, a[int(NR*0.99)]*1000, NR}'
