#!/usr/bin/env python3
"""The disk's fsync limit: small files written and fsynced per second.

    python3 bench/fsync_rate.py DIR [SECONDS] [WRITERS...]

For each writer count (default 1 and 20), that many threads each create a
4 KB file in DIR, write it, fsync it and close it, over and over for SECONDS
(default 3); the files are removed afterwards. Prints one RESULT line per
count. This is what one durable acceptance costs at best (one fsynced file
per message), so an end-to-end rate can be read as a fraction of it.
"""
import os
import sys
import threading
import time


def run(d, seconds, writers):
    stop = time.monotonic() + seconds
    counts = [0] * writers
    block = os.urandom(4096)

    def work(k):
        n = 0
        while time.monotonic() < stop:
            p = os.path.join(d, f"f.{k}.{n}")
            fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            os.write(fd, block)
            os.fsync(fd)
            os.close(fd)
            n += 1
        counts[k] = n

    t0 = time.monotonic()
    ts = [threading.Thread(target=work, args=(k,)) for k in range(writers)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    dt = time.monotonic() - t0
    for name in os.listdir(d):
        os.unlink(os.path.join(d, name))
    return sum(counts) / dt


def main():
    d = sys.argv[1]
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 3.0
    writers = [int(w) for w in sys.argv[3:]] or [1, 20]
    work = os.path.join(d, "fsync-rate")
    os.makedirs(work, exist_ok=True)
    for w in writers:
        rate = run(work, seconds, w)
        print(f"RESULT fsync: {w} writer(s): {rate:.0f} fsynced 4 KB files/s")
    os.rmdir(work)


if __name__ == "__main__":
    main()
