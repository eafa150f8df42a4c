#!/usr/bin/env python3
"""kmp-local alone, driven as kmp-send drives it (jobs on local.sock with the
message's descriptor attached), against a fresh `kmpctl init` instance with
kmp-authd.

  1. one 4 KB message to N local users (default 1000) in one job: time, and
     disk use of the N Maildir copies (hard links) against N real copies;
  2. M messages of 4 KB (default 10000) to 100 users, one job per message
     with one recipient, over 4 connections: deliveries per second.

Usage: python3 bench/local_fanout.py [--bin target/release] [--users 1000] [--messages 10000]
"""
import argparse, json, os, shutil, socket, struct, subprocess, sys, tempfile, threading, time


def frame(obj):
    body = json.dumps(obj).encode()
    return struct.pack(">I", len(body)) + body


def read_frame(sock):
    def exact(n):
        buf = b""
        while len(buf) < n:
            chunk = sock.recv(n - len(buf))
            if not chunk:
                raise EOFError("closed")
            buf += chunk
        return buf
    (n,) = struct.unpack(">I", exact(4))
    return json.loads(exact(n))


def job(qid, rcpts, size):
    return {
        "v": 1, "qid": qid, "sender": "bench@other.test", "size": size,
        "arrived": int(time.time()),
        "recipients": [{"index": i, "address": a, "delivery_id": f"{qid}.{i}"}
                       for i, a in enumerate(rcpts)],
    }


def send_job(sock, j, path):
    with open(path, "rb") as f:
        socket.send_fds(sock, [frame(j)], [f.fileno()])
    reply = read_frame(sock)
    bad = [r for r in reply["results"] if r["outcome"] != "sent"]
    if bad:
        raise SystemExit(f"not delivered: {bad[:3]}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="target/release")
    ap.add_argument("--users", type=int, default=1000)
    ap.add_argument("--messages", type=int, default=10000)
    a = ap.parse_args()
    bindir = os.path.abspath(a.bin)
    ctl = os.path.join(bindir, "kmpctl")
    d = tempfile.mkdtemp(prefix="kmp-bench-local.")
    procs = []
    try:
        subprocess.run([ctl, "init", d, "--port-base", "41000"], check=True, capture_output=True)
        conf = os.path.join(d, "kmpromail.toml")
        k = lambda *args: subprocess.run([ctl, "--config", conf, *args], check=True, capture_output=True)
        k("domain", "add", "bench.test")
        users = [f"u{i}@bench.test" for i in range(max(a.users, 100))]
        dump = "".join(json.dumps({"type": "user", "address": u, "password": "", "quota_bytes": 0,
                                   "quota_messages": 0, "state": "active", "mail_path": "",
                                   "forwards": [], "keep_copy": False, "pop3_subfolders": False,
                                   "login_delay": 0, "created": 0}) + "\n" for u in users)
        p = subprocess.run([ctl, "--config", conf, "db", "load"], input=dump.encode(), capture_output=True)
        if p.returncode != 0:
            for u in users:
                k("user", "add", u)
        for prog in ["kmp-authd", "kmp-local"]:
            log = open(os.path.join(d, "log", prog + ".log"), "w")
            procs.append(subprocess.Popen([os.path.join(bindir, prog), "--config", conf, "--foreground"],
                                          stdout=log, stderr=log))
        sockpath = os.path.join(d, "run", "local.sock")
        for _ in range(500):
            if os.path.exists(os.path.join(d, "run", "kmp-local.pid")) and os.path.exists(os.path.join(d, "run", "authd.sock")):
                break
            time.sleep(0.02)
        msg = os.path.join(d, "msg")
        body = b"Subject: bench\nFrom: bench@other.test\n\n" + (b"x" * 75 + b"\n") * 53
        with open(msg, "wb") as f:
            f.write(body)
        size = len(body)

        # 1. One message, N recipients.
        s = socket.socket(socket.AF_UNIX)
        s.connect(sockpath)
        t = time.time()
        send_job(s, job("FANOUT", users[:a.users], size), msg)
        dt = time.time() - t
        print(f"one message of {size} bytes to {a.users} new users (Maildirs created): {dt:.2f} s "
              f"({a.users / dt:.0f} recipients/s)")
        t = time.time()
        send_job(s, job("FANOUT2", users[:a.users], size), msg)
        dt = time.time() - t
        print(f"one message of {size} bytes to {a.users} existing Maildirs: {dt:.2f} s "
              f"({a.users / dt:.0f} recipients/s)")
        inodes, names, blocks = set(), 0, 0
        for u in users[:a.users]:
            new = os.path.join(d, "mail", "bench.test", u.split("@")[0], "new")
            for f in os.listdir(new):
                st = os.stat(os.path.join(new, f))
                names += 1
                if st.st_ino not in inodes:
                    inodes.add(st.st_ino)
                    blocks += st.st_blocks * 512
        per_copy = blocks / max(len(inodes), 1)
        print(f"disk: {names} message names on {len(inodes)} files, {blocks / 1024:.0f} kB, "
              f"against {names * per_copy / 1024:.0f} kB for {names} copies")

        # 2. M messages, 100 users, 4 connections.
        per = a.messages // 4
        def worker(w):
            c = socket.socket(socket.AF_UNIX)
            c.connect(sockpath)
            for i in range(per):
                n = w * per + i
                send_job(c, job(f"M{n}", [users[n % 100]], size), msg)
        t = time.time()
        ths = [threading.Thread(target=worker, args=(w,)) for w in range(4)]
        for th in ths:
            th.start()
        for th in ths:
            th.join()
        dt = time.time() - t
        print(f"{per * 4} messages of {size} bytes to 100 users, 4 connections: {dt:.2f} s "
              f"({per * 4 / dt:.0f} messages/s, each fsynced)")
    finally:
        for p in procs:
            p.terminate()
            p.wait()
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
