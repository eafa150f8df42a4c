#!/usr/bin/env python3
"""Plays kmp-send against kmp-remote: N delivery jobs over C connections to
RUN/remote.sock, each a Job frame with the message file's descriptor attached
(SCM_RIGHTS), each waiting for its JobReply. Prints the outcome counts and the
rate. Used by bench/remote.sh; see bench/README.md."""

import argparse
import json
import os
import socket
import struct
import sys
import tempfile
import threading
import time


def frame(obj):
    body = json.dumps(obj).encode()
    return struct.pack(">I", len(body)) + body


def read_frame(sock):
    def exact(n):
        buf = b""
        while len(buf) < n:
            chunk = sock.recv(n - len(buf))
            if not chunk:
                raise EOFError("kmp-remote closed the connection")
            buf += chunk
        return buf
    (n,) = struct.unpack(">I", exact(4))
    return json.loads(exact(n))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--socket", required=True)
    ap.add_argument("-n", type=int, default=10000)
    ap.add_argument("-c", type=int, default=20)
    ap.add_argument("-l", type=int, default=4096)
    ap.add_argument("--rcpt", default="user@remote.example")
    args = ap.parse_args()

    body = b"From: bench@example.org\nTo: %s\nSubject: bench\n\n" % args.rcpt.encode()
    line = b"0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuv\n"
    while len(body) < args.l:
        body += line
    body = body[: args.l - 1] + b"\n"
    tmp = tempfile.NamedTemporaryFile(delete=False)
    tmp.write(body)
    tmp.close()

    counts = {}
    lock = threading.Lock()
    next_job = [0]

    def worker():
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(args.socket)
        while True:
            with lock:
                i = next_job[0]
                if i >= args.n:
                    break
                next_job[0] += 1
            fd = os.open(tmp.name, os.O_RDONLY)
            job = {
                "v": 1, "qid": "B%06d" % i, "sender": "bench@example.org",
                "size": len(body), "arrived": int(time.time()),
                "recipients": [{"index": 0, "address": args.rcpt, "delivery_id": "B%06d.0" % i}],
            }
            socket.send_fds(s, [frame(job)], [fd])
            os.close(fd)
            reply = read_frame(s)
            with lock:
                for r in reply["results"]:
                    counts[r["outcome"]] = counts.get(r["outcome"], 0) + 1
        s.close()

    start = time.monotonic()
    threads = [threading.Thread(target=worker) for _ in range(args.c)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    secs = time.monotonic() - start
    os.unlink(tmp.name)
    print("jobs=%d secs=%.2f rate=%.1f outcomes=%s" % (args.n, secs, args.n / secs, json.dumps(counts, sort_keys=True)))
    sys.exit(0 if counts.get("sent", 0) == args.n else 1)


if __name__ == "__main__":
    main()
