#!/usr/bin/env python3
"""bigmsg.py - one big message end to end, and each daemon's memory for it.

    python3 bench/bigmsg.py [--size-mb 50] [--bin target/release] [--port-base 44000]

Makes a throw-away instance (kmpctl init), starts every daemon, and sends
one message of SIZE MB (8-bit text, LF in the file, dot lines) over SMTP
(smtplib) to a local user and to a remote one routed to Postfix's smtp-sink
(a Python sink when smtp-sink is not installed); then reads it back with
POP3 RETR and IMAP FETCH BODY[] (BODY.PEEK[]); then sends it once more
through kmp-inject (the sendmail interface).

For kmp-smtpd, kmp-send, kmp-local, kmp-remote, kmp-pop3d and kmp-imapd it
reports VmHWM (peak RSS, /proc/PID/status) at idle, after all stages, and
the growth; for kmp-inject, which is one process per message, the peak RSS
(ru_maxrss from wait4) of a 1 KB message against the big one. The target of
issue 13 is a growth under 16 MB for each.

Every wait is bounded; the instance is removed at the end (--keep keeps it).
"""

import argparse
import imaplib
import os
import poplib
import shutil
import smtplib
import socket
import subprocess
import sys
import tempfile
import threading
import time

DAEMONS = ["kmp-authd", "kmp-local", "kmp-remote", "kmp-send", "kmp-smtpd", "kmp-pop3d", "kmp-imapd"]
WATCHED = ["kmp-smtpd", "kmp-send", "kmp-local", "kmp-remote", "kmp-pop3d", "kmp-imapd"]
TARGET_KB = 16 * 1024


def hwm(pid):
    """VmHWM of a process in kB."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def wait(what, pred, limit):
    """Polls pred every 50 ms for at most limit seconds."""
    end = time.time() + limit
    while time.time() < end:
        if pred():
            return
        time.sleep(0.05)
    sys.exit(f"timed out waiting for {what}")


def message(size):
    """SIZE bytes with LF line ends: UTF-8 and GBK, dots at line starts."""
    head = (
        "From: alice@example.test\nTo: alice@example.test, bob@far.test\n"
        "Subject: =?UTF-8?B?5aSn6YKu5Lu2?=\nMIME-Version: 1.0\n"
        "Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n"
    ).encode()
    lines = [
        "Grüße aus Köln, 你好，邮件 ".encode(),
        b".a line with a leading dot",
        b"..two of them",
        "繁體中文 Big5 和 GBK 的信".encode(),
    ]
    parts = [head]
    n, i = len(head), 0
    while n < size:
        line = lines[i % len(lines)] + b" %d\n" % i
        parts.append(line)
        n += len(line)
        i += 1
    return b"".join(parts)


class PySink(threading.Thread):
    """A one-port SMTP sink that counts messages and throws the data away."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.sock = socket.create_server(("127.0.0.1", port))
        self.count = 0

    def run(self):
        while True:
            c, _ = self.sock.accept()
            threading.Thread(target=self.session, args=(c,), daemon=True).start()

    def session(self, c):
        f = c.makefile("rb")
        c.sendall(b"220 sink ESMTP\r\n")
        for line in f:
            verb = line[:4].upper()
            if verb == b"EHLO":
                c.sendall(b"250-sink\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 SIZE 0\r\n")
            elif verb == b"DATA":
                c.sendall(b"354 go on\r\n")
                for body in f:
                    if body == b".\r\n":
                        break
                self.count += 1
                c.sendall(b"250 2.0.0 taken\r\n")
            elif verb == b"QUIT":
                c.sendall(b"221 bye\r\n")
                break
            else:
                c.sendall(b"250 2.0.0 ok\r\n")
        c.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size-mb", type=int, default=50)
    ap.add_argument("--bin", default=None, help="directory of the binaries (target/release, else target/debug)")
    ap.add_argument("--port-base", type=int, default=44000)
    ap.add_argument("--keep", action="store_true")
    a = ap.parse_args()
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    bindir = a.bin or next(
        (d for d in (f"{root}/target/release", f"{root}/target/debug") if os.path.exists(f"{d}/kmp-remote")),
        None,
    )
    if not bindir:
        sys.exit("no binaries: cargo build --release first")
    size = a.size_mb << 20
    base = a.port_base
    sink_port = base + 26
    d = tempfile.mkdtemp(prefix="kmp-bench-bigmsg.")
    procs = {}
    sink_proc = None
    try:
        ctl = lambda *args, inp=None: subprocess.run(
            [f"{bindir}/kmpctl", "--config", f"{d}/kmpromail.toml", *args],
            input=inp, check=True, capture_output=True,
        )
        subprocess.run([f"{bindir}/kmpctl", "init", d, "--port-base", str(base), "--hostname", "mx.example.test"],
                       check=True, capture_output=True)
        conf = f"{d}/kmpromail.toml"
        s = open(conf).read()
        limit = f'max_message_size = "{a.size_mb * 2}M"\n'
        s = s.replace("[smtpd]\n", '[smtpd]\n' + limit + 'relay_networks = ["127.0.0.0/8"]\n', 1)
        s = s.replace("[imapd]\n", "[imapd]\n" + limit, 1) if "[imapd]\n" in s else s + "\n[imapd]\n" + limit
        s += f'\n[remote.routes]\n"far.test" = ["127.0.0.1:{sink_port}"]\n'
        open(conf, "w").write(s)
        ctl("domain", "add", "example.test")
        ctl("user", "add", "alice@example.test", "--password-stdin", inp=b"secret\n")

        if shutil.which("smtp-sink"):
            args = ["smtp-sink", "-c"]
            if os.geteuid() == 0:
                args += ["-u", "nobody"]
            sink_proc = subprocess.Popen(args + [f"127.0.0.1:{sink_port}", "100"],
                                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
            sink_name = "smtp-sink"
        else:
            PySink(sink_port).start()
            sink_name = "python sink"

        for p in DAEMONS:
            log = open(f"{d}/log/{p}.log", "w")
            procs[p] = subprocess.Popen([f"{bindir}/{p}", "--config", conf, "--foreground"],
                                        stdout=log, stderr=log, stdin=subprocess.DEVNULL)
            wait(f"{p} ready", lambda: os.path.exists(f"{d}/run/{p}.pid"), 30)
        time.sleep(1)
        idle = {p: hwm(procs[p].pid) for p in WATCHED}

        msg = message(size)
        times = {}
        t0 = time.time()
        with smtplib.SMTP("127.0.0.1", base + 25, timeout=300) as c:
            c.ehlo("bench.test")
            c.sendmail("alice@example.test", ["alice@example.test", "bob@far.test"],
                       msg.replace(b"\n", b"\r\n"), mail_options=["BODY=8BITMIME"])
        times["SMTP in (until 250)"] = time.time() - t0
        maildir = f"{d}/mail/example.test/alice"

        def in_maildir():
            return any(os.listdir(f"{maildir}/{s}") for s in ("new", "cur") if os.path.isdir(f"{maildir}/{s}"))

        wait("local delivery", in_maildir, 300)
        times["until in the Maildir"] = time.time() - t0
        remote_log = f"{d}/log/kmp-remote.log"
        wait("remote delivery", lambda: "status=sent" in open(remote_log).read(), 300)
        times[f"until taken by {sink_name}"] = time.time() - t0

        t1 = time.time()
        p = poplib.POP3("127.0.0.1", base + 110, timeout=300)
        p.user("alice@example.test")
        p.pass_("secret")
        resp, lines, octets = p.retr(1)
        p.quit()
        times["POP3 RETR"] = time.time() - t1
        pop3_bytes = sum(len(x) + 2 for x in lines)

        t1 = time.time()
        m = imaplib.IMAP4("127.0.0.1", base + 143)
        m.login("alice@example.test", "secret")
        m.select("INBOX", readonly=True)
        typ, data = m.fetch("1", "(BODY.PEEK[])")
        m.logout()
        times["IMAP FETCH BODY[]"] = time.time() - t1
        imap_bytes = len(data[0][1]) if data and isinstance(data[0], tuple) else 0
        del data, lines

        peak = {p: hwm(procs[p].pid) for p in WATCHED}

        # kmp-inject: one process per message, so its own peak as GNU time
        # reports it (ru_maxrss of a child forked from this Python would
        # count Python's own pages).
        def inject(body):
            out = f"{d}/inject.rss"
            cmd = [f"{bindir}/kmp-inject", "-C", conf, "-i", "alice@example.test"]
            if os.path.exists("/usr/bin/time"):
                cmd = ["/usr/bin/time", "-f", "%M", "-o", out] + cmd
            q = subprocess.run(cmd, input=body, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            if q.returncode != 0:
                sys.exit(f"kmp-inject failed: {q.stderr.decode()}")
            try:
                return int(open(out).read().split()[-1])
            except (OSError, ValueError, IndexError):
                return 0

        inject_small = inject(b"Subject: small\n\n" + b"x" * 1000 + b"\n")
        t1 = time.time()
        inject_big = inject(msg)
        times["kmp-inject (sendmail)"] = time.time() - t1

        print(f"RESULT bigmsg: one {a.size_mb} MB message ({len(msg)} bytes), binaries {bindir}, "
              f"remote to {sink_name}; POP3 RETR {pop3_bytes} bytes, IMAP FETCH {imap_bytes} bytes; "
              f"load average {os.getloadavg()[0]:.1f}")
        for k, v in times.items():
            print(f"  {k:32} {v:7.2f} s")
        print(f"  {'process':12} {'idle kB':>9} {'peak kB':>9} {'growth MB':>10}  target < 16 MB")
        ok = True
        for p in WATCHED:
            grew = peak[p] - idle[p]
            ok &= grew < TARGET_KB
            print(f"  {p:12} {idle[p]:9} {peak[p]:9} {grew / 1024:10.1f}  {'ok' if grew < TARGET_KB else 'OVER'}")
        grew = inject_big - inject_small
        ok &= grew < TARGET_KB
        print(f"  {'kmp-inject':12} {inject_small:9} {inject_big:9} {grew / 1024:10.1f}  "
              f"{'ok' if grew < TARGET_KB else 'OVER'}  (1 KB message vs the big one)")
        return 0 if ok else 1
    finally:
        for p in reversed(list(procs.values())):
            p.terminate()
        for p in procs.values():
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        if sink_proc:
            sink_proc.terminate()
            sink_proc.wait(timeout=10)
        if a.keep:
            print(f"instance kept in {d}")
        else:
            shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
