#!/usr/bin/env python3
"""CPU time and fsyncs per message of each daemon of an instance while N
messages of SIZE bytes go in through kmp-smtpd (Postfix's smtp-source, SESSIONS
sessions, one message per connection, as the kit's bench.sh) and on into one
Maildir. Wall-clock rates on a shared machine are noise; the CPU the daemons
spend per message (user and system, from /proc/PID/stat) and the fsyncs they
make (the `fsyncs` counter of RUN/PROGRAM.stats: files and directories, not
LMDB's own fdatasync) are what a change to the commit path moves.

Usage: smtpd_cost.py HOST PORT INSTANCE_DIR N [SESSIONS] [SIZE]
Prints one RESULT line per daemon and one for all of them.
"""
import json
import os
import shutil
import subprocess
import sys
import time

DAEMONS = ["kmp-smtpd", "kmp-send", "kmp-local", "kmp-authd"]
TICK = os.sysconf("SC_CLK_TCK")


def cpu(pid):
    """(user, system) seconds of process PID."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) / TICK, int(fields[12]) / TICK


def fsyncs(run, name):
    try:
        with open(os.path.join(run, f"{name}.stats")) as f:
            return json.load(f)["counters"].get("fsyncs", 0)
    except (OSError, ValueError, KeyError):
        return 0


def delivered(maildir):
    n = 0
    for sub in ("new", "cur"):
        try:
            n += len(os.listdir(os.path.join(maildir, sub)))
        except FileNotFoundError:
            pass
    return n


def snapshot(run, pids):
    return {d: (cpu(p), fsyncs(run, d)) for d, p in pids.items()}


def main():
    host, port, inst, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    sessions = int(sys.argv[5]) if len(sys.argv) > 5 else 20
    size = int(sys.argv[6]) if len(sys.argv) > 6 else 4096
    source = shutil.which("smtp-source") or "/usr/sbin/smtp-source"
    run = os.path.join(inst, "run")
    maildir = os.path.join(inst, "mail", "example.test", "user5")
    pids = {}
    for d in DAEMONS:
        with open(os.path.join(run, f"{d}.pid")) as f:
            pids[d] = int(f.read().split()[0])
    time.sleep(1.5)  # the stats files are written once a second
    start_count = delivered(maildir)
    before = snapshot(run, pids)
    t0 = time.monotonic()
    subprocess.run(
        [source, "-s", str(sessions), "-m", str(n), "-l", str(size),
         "-f", "bench@example.test", "-t", "user5@example.test",
         "-M", "bench.test", f"{host}:{port}"],
        check=True, stdout=subprocess.DEVNULL, timeout=1800)
    deadline = time.monotonic() + 600
    while delivered(maildir) < start_count + n and time.monotonic() < deadline:
        time.sleep(0.05)
    wall = time.monotonic() - t0
    got = delivered(maildir) - start_count
    time.sleep(1.5)
    after = snapshot(run, pids)
    load = open("/proc/loadavg").read().split()[:3]
    total_u = total_s = total_f = 0.0
    for d in DAEMONS:
        (u0, s0), f0 = before[d]
        (u1, s1), f1 = after[d]
        u, s, f = (u1 - u0) * 1000 / n, (s1 - s0) * 1000 / n, (f1 - f0) / n
        total_u, total_s, total_f = total_u + u, total_s + s, total_f + f
        print(f"RESULT cost {d}: {u:.3f} ms user + {s:.3f} ms system, {f:.2f} fsyncs per message")
    print(f"RESULT cost all: {total_u:.3f} ms user + {total_s:.3f} ms system = "
          f"{total_u + total_s:.3f} ms CPU, {total_f:.2f} fsyncs per message; "
          f"{got}/{n} delivered in {wall:.1f} s, load average {' '.join(load)}")


if __name__ == "__main__":
    main()
