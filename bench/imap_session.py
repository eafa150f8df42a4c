#!/usr/bin/env python3
"""The cost of one short IMAP session on a large folder, as the webmail
makes one per page: log in, EXAMINE INBOX, then a command, LOGOUT.

    python3 bench/imap_session.py [--bin target/release] [--messages 10000] [--sessions 100]

Makes a `kmpctl init` instance (port base 46000 unless --port-base), one
user with MESSAGES small messages in INBOX, starts it, and for each
command runs SESSIONS sessions one after another, printing kmp-imapd's CPU
time per session (user + system, from /proc) and the wall time per
session. CPU time is the figure that matters on a busy machine; the first
five sessions of each kind are a warm-up and not counted. See
bench/README.md ("IMAP sessions").
"""
import argparse
import mailbox
import os
import random
import socket
import subprocess
import tempfile
import time

COMMANDS = [
    ("login + EXAMINE", []),
    ("+ UID SORT (whole order)", [b"UID SORT (REVERSE DATE) UTF-8 ALL"]),
    ("+ UID SORT PARTIAL 1:50", [b"UID SORT RETURN (COUNT PARTIAL 1:50) (REVERSE DATE) UTF-8 ALL"]),
    ("+ LIST", [b'LIST "" "*" RETURN (SUBSCRIBED CHILDREN SPECIAL-USE)']),
]


def cpu_seconds(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def command(s, line, tag):
    s.sendall(tag + b" " + line + b"\r\n")
    buf = b""
    while not any(tag + w in buf for w in (b" OK", b" NO", b" BAD")):
        data = s.recv(65536)
        if not data:
            raise SystemExit(f"connection closed during {line!r}")
        buf += data
    if tag + b" OK" not in buf:
        raise SystemExit(f"{line!r}: {buf[-200:]!r}")


def sessions(port, user, cmds, n):
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port))
        s.recv(1000)
        command(s, b'LOGIN "%s" secret' % user.encode(), b"a")
        command(s, b"EXAMINE INBOX", b"b")
        for i, c in enumerate(cmds):
            command(s, c, b"c%d" % i)
        s.sendall(b"z LOGOUT\r\n")
        s.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="target/release")
    ap.add_argument("--messages", type=int, default=10000)
    ap.add_argument("--sessions", type=int, default=100)
    ap.add_argument("--port-base", type=int, default=46000)
    a = ap.parse_args()
    ctl = os.path.join(os.path.abspath(a.bin), "kmpctl")
    d = tempfile.mkdtemp(prefix="kmp-bench-imap.")
    conf = os.path.join(d, "kmpromail.toml")
    user = "bench@example.test"
    run = lambda *args, **kw: subprocess.run([ctl, "--config", conf, *args], check=True,
                                             capture_output=True, **kw)
    try:
        subprocess.run([ctl, "init", d, "--port-base", str(a.port_base), "--trust-loopback"],
                       check=True, capture_output=True)
        run("domain", "add", "example.test", "--postmaster", user)
        run("user", "add", user, "--password-stdin", input=b"secret\n")
        home = os.path.join(d, "mail", "example.test", "bench")
        os.makedirs(os.path.dirname(home), exist_ok=True)
        md = mailbox.Maildir(home, create=True)
        r = random.Random(1)
        for i in range(a.messages):
            body = ("line of text %d\n" % i) * r.randint(5, 200)
            m = mailbox.MaildirMessage(
                "From: Sender %d <s%d@example.test>\nTo: %s\nSubject: message %d\n"
                "Date: Mon, 1 Jan 2024 10:%02d:00 +0000\nMessage-ID: <%d@bench>\n\n%s"
                % (i, i, user, i, i % 60, i, body))
            m.set_subdir("cur")
            md.add(m)
        run("start")
        pid = int(open(os.path.join(d, "run", "kmp-imapd.pid")).read().split()[0])
        port = a.port_base + 143
        print(f"{a.messages} messages in INBOX, {a.sessions} sessions of each kind, one at a time")
        for name, cmds in COMMANDS:
            sessions(port, user, cmds, 5)
            c0, t0 = cpu_seconds(pid), time.time()
            sessions(port, user, cmds, a.sessions)
            cpu = (cpu_seconds(pid) - c0) / a.sessions * 1000
            wall = (time.time() - t0) / a.sessions * 1000
            print(f"{name:28s} kmp-imapd CPU {cpu:6.2f} ms/session   wall {wall:6.2f} ms/session")
        print("load average: " + " ".join(open("/proc/loadavg").read().split()[:3]))
    finally:
        subprocess.run([ctl, "--config", conf, "stop"], capture_output=True)
        subprocess.run(["rm", "-rf", d])


if __name__ == "__main__":
    main()
