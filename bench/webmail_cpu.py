#!/usr/bin/env python3
"""CPU time per webmail request: kmp-webmail run directly as a CGI program
(no web server), and what each request costs kmp-imapd, kmp-authd and
kmp-admind. See bench/README.md ("Webmail: CPU per request").

    bench/webmail_cpu.py [--bin target/release] [--messages 10000]
        [--requests 100] [--keep]

Makes an instance (`kmpctl init --trust-loopback`) with one user whose INBOX
holds MESSAGES small messages and one 100 KB HTML message (as
bench/webmail.sh does), starts it, logs in once, and then runs REQUESTS of
each page one after another: login (the POST of the form), the first page
of the INBOX by date, the HTML message's page (/read) and its frame
(/frame). For each it prints the CPU time (user + system) of the CGI
process (the children's times of os.times, once it is reaped) and of the daemons (from /proc/PID/stat, in clock
ticks, over all the requests of that page), divided by REQUESTS, and the
p50 wall time of the CGI process. CPU time is what to compare on a busy
machine: wall time counts other people's builds too.
"""
import argparse
import mailbox
import os
import random
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse

DAEMONS = ["kmp-imapd", "kmp-authd", "kmp-admind"]
TICK = os.sysconf("SC_CLK_TCK")


def sh(*args, stdin=None):
    r = subprocess.run(list(args), input=stdin, capture_output=True)
    if r.returncode != 0:
        sys.exit("%s: %s" % (" ".join(args), r.stderr.decode(errors="replace")))
    return r.stdout.decode(errors="replace")


def fill_inbox(path, n):
    md = mailbox.Maildir(path, create=True)
    r = random.Random(1)
    for i in range(n):
        body = ("line of text %d\n" % i) * r.randint(5, 200)
        m = mailbox.MaildirMessage(
            "From: Sender %d <s%d@example.test>\nTo: bench@example.test\nSubject: message %d\n"
            "Date: Mon, 1 Jan 2024 10:%02d:00 +0000\nMessage-ID: <%d@bench>\n\n%s"
            % (i, i, i, i % 60, i, body))
        m.set_subdir("cur")
        if r.random() < 0.5:
            m.set_flags("S")
        md.add(m)
    rows = "".join("<tr><td style=\"color:#333\">row %d</td><td><b>cell</b> text %d</td></tr>\n"
                   % (i, i) for i in range(1800))
    html = "<html><body><h1>BENCH-MARKER</h1><table>%s</table></body></html>" % rows
    m = mailbox.MaildirMessage(
        "From: HTML Sender <html@example.test>\nTo: bench@example.test\nSubject: the HTML one\n"
        "Date: Tue, 2 Jan 2024 10:00:00 +0000\nMessage-ID: <html@bench>\nMIME-Version: 1.0\n"
        "Content-Type: text/html; charset=utf-8\n\n" + html)
    m.set_subdir("cur")
    md.add(m)


class Cgi:
    """Runs kmp-webmail as a web server would, one process per request."""

    def __init__(self, program, config):
        self.program, self.config = program, config
        self.cookies = {}

    def request(self, method, path, form=None):
        path_info, _, query = path.partition("?")
        body = urllib.parse.urlencode(form).encode() if form is not None else b""
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "KMPROMAIL_CONFIG": self.config,
            "GATEWAY_INTERFACE": "CGI/1.1",
            "REQUEST_METHOD": method,
            "SCRIPT_NAME": "/kmp-webmail",
            "PATH_INFO": path_info,
            "QUERY_STRING": query,
            "REQUEST_URI": path,
            "REMOTE_ADDR": "127.0.0.1",
            "REMOTE_PORT": "40000",
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "80",
            "HTTP_HOST": "127.0.0.1",
            "HTTP_ACCEPT_LANGUAGE": "en",
        }
        if self.cookies:
            env["HTTP_COOKIE"] = "; ".join("%s=%s" % kv for kv in self.cookies.items())
        if form is not None:
            env["CONTENT_TYPE"] = "application/x-www-form-urlencoded"
            env["CONTENT_LENGTH"] = str(len(body))
        t0 = time.perf_counter()
        p = subprocess.Popen([self.program], env=env, stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        out, _ = p.communicate(body)
        wall = time.perf_counter() - t0
        head, _, page = out.partition(b"\r\n\r\n")
        status = 0
        for line in head.decode(errors="replace").split("\r\n"):
            k, _, v = line.partition(":")
            if k.lower() == "status":
                status = int(v.split()[0])
            elif k.lower() == "set-cookie":
                name, _, rest = v.strip().partition("=")
                value = rest.split(";", 1)[0]
                if value:
                    self.cookies[name] = value
                else:
                    self.cookies.pop(name, None)
        return status, page, wall


def children_cpu():
    r = os.times()
    return r.children_user + r.children_system


def daemon_ticks(run_dir):
    out = {}
    for d in DAEMONS:
        try:
            pid = open(os.path.join(run_dir, d + ".pid")).read().split()[0]
            f = open("/proc/%s/stat" % pid).read()
            fields = f[f.rindex(")") + 2:].split()
            out[d] = int(fields[11]) + int(fields[12])
        except (OSError, ValueError, IndexError):
            pass
    return out


def main():
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    p = argparse.ArgumentParser()
    p.add_argument("--bin", default=os.path.join(here, "target/release"))
    p.add_argument("--messages", type=int, default=10000)
    p.add_argument("--requests", type=int, default=100)
    p.add_argument("--port-base", type=int, default=47000)
    p.add_argument("--keep", action="store_true", help="leave the instance running")
    args = p.parse_args()
    ctl = os.path.join(args.bin, "kmpctl")
    webmail = os.path.join(args.bin, "kmp-webmail")
    tmp = tempfile.mkdtemp(prefix="webmail-cpu.")
    inst = os.path.join(tmp, "i")
    sh(ctl, "init", inst, "--port-base", str(args.port_base), "--hostname", "mx.example.test",
       "--trust-loopback")
    conf = os.path.join(inst, "kmpromail.toml")
    sh(ctl, "--config", conf, "domain", "add", "example.test")
    sh(ctl, "--config", conf, "user", "add", "bench1@example.test", "--password-stdin",
       stdin=b"secret\n")
    os.makedirs(os.path.join(inst, "mail/example.test"), exist_ok=True)
    fill_inbox(os.path.join(inst, "mail/example.test/bench1"), args.messages)
    uid_html = args.messages + 1
    sh(ctl, "--config", conf, "start")
    try:
        imap = args.port_base + 143
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", imap), 1).close()
                break
            except OSError:
                time.sleep(0.2)
        cgi = Cgi(webmail, conf)

        def login():
            cgi.cookies.clear()
            st, page, _ = cgi.request("GET", "/login")
            m = re.search(rb'name="csrf" value="([^"]+)"', page)
            if st != 200 or not m:
                sys.exit("no login form (status %d)" % st)
            return {"csrf": m.group(1).decode(), "user": "bench1@example.test",
                    "password": "secret"}

        # Warm up: the first SELECT of the big folder, the login cache.
        form = login()
        st, _, _ = cgi.request("POST", "/login", form)
        if st != 303 or "kmpw" not in cgi.cookies:
            sys.exit("login refused (status %d)" % st)
        session = dict(cgi.cookies)
        q = "folder=INBOX&uid=%d" % uid_html
        # Login last: each login ends the account's oldest sessions past
        # 20, the one the other pages use among them.
        pages = [
            ("list", ("GET", "/list?folder=INBOX&sort=date")),
            # As the list links it: the newest message, at place 0 of the order.
            ("read", ("GET", "/read?" + q + "&at=0&sort=date&rev=1")),
            ("frame", ("GET", "/frame?" + q)),
            ("login", None),
        ]
        for name, req in pages[:-1]:
            cgi.cookies = dict(session)
            cgi.request(*req)
        run_dir = os.path.join(inst, "run")
        print("RESULT %d messages, %d requests of each page, %s; load average %s"
              % (args.messages, args.requests, args.bin,
                 " ".join(open("/proc/loadavg").read().split()[:3])))
        for name, req in pages:
            walls = []
            cpu = 0.0
            before = daemon_ticks(run_dir)
            for _ in range(args.requests):
                if name == "login":
                    form = login()
                    c0 = children_cpu()
                    st, body, wall = cgi.request("POST", "/login", form)
                    ok = st == 303
                else:
                    cgi.cookies = dict(session)
                    c0 = children_cpu()
                    st, body, wall = cgi.request(*req)
                    ok = st == 200 and (name != "frame" or b"BENCH-MARKER" in body)
                cpu += children_cpu() - c0
                if not ok:
                    sys.exit("%s: status %d" % (name, st))
                walls.append(wall)
            after = daemon_ticks(run_dir)
            daemons = ", ".join(
                "%s %.2f ms" % (d, (after[d] - before.get(d, 0)) * 1000.0 / TICK / args.requests)
                for d in DAEMONS if d in after)
            print("RESULT %-5s kmp-webmail %.2f ms CPU, wall p50 %.1f ms; %s"
                  % (name, cpu * 1000 / args.requests, statistics.median(walls) * 1000, daemons))
    finally:
        if not args.keep:
            subprocess.run([ctl, "--config", conf, "stop"], capture_output=True)
            subprocess.run(["rm", "-rf", tmp])
        else:
            print("instance left running in %s" % inst)


if __name__ == "__main__":
    main()
