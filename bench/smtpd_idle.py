#!/usr/bin/env python3
"""Open N SMTP connections to HOST:PORT, read each greeting, then print the
RSS of process PID before and after, and close them all.

Usage: smtpd_idle.py HOST PORT PID [N]
"""
import socket
import sys
import time


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return -1


def main():
    host, port, pid = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    n = int(sys.argv[4]) if len(sys.argv) > 4 else 1000
    before = rss_kb(pid)
    conns, greeted = [], 0
    for _ in range(n):
        s = socket.create_connection((host, port), timeout=10)
        conns.append(s)
    for s in conns:
        if s.recv(512).startswith(b"220"):
            greeted += 1
    # Each idle session has also said EHLO, as real clients do.
    for s in conns:
        s.sendall(b"EHLO idle.test\r\n")
    for s in conns:
        s.recv(4096)
    time.sleep(1)
    after = rss_kb(pid)
    print(f"RESULT smtpd idle: {greeted}/{n} sessions greeted; RSS {before} kB before, "
          f"{after} kB holding them ({after / 1024:.1f} MB)")
    for s in conns:
        s.close()
    return 0 if greeted == n else 1


if __name__ == "__main__":
    sys.exit(main())
