#!/usr/bin/env python3
"""The disk's fsync limit, and what each way of committing a message costs.

    python3 bench/fsync_rate.py DIR [SECONDS] [WRITERS...]
    python3 bench/fsync_rate.py --modes file,commit,syncfs-link,syncfs DIR [SECONDS] [WRITERS...]

For each writer count (default 1 and 20), that many threads write 4 KB files
in DIR over and over for SECONDS (default 3); the files are removed
afterwards. Prints one RESULT line per mode and count. Modes:

  file         create, write, fsync, close: the disk's fsync limit (the
               default, and the only line bench/smtpd.sh reads). One
               durable acceptance costs at least this.
  commit       today's commit (queue::Incoming, maildir::deliver): create in
               tmp/, write, fsync the file, link into new/, then a share of
               one fsync of new/ (group commit: a writer waits for an fsync
               that started after its link, and one fsync serves every
               writer that linked while the previous one ran).
  syncfs       the same steps with each fsync replaced by a share of one
               syncfs(2) of the file system (group commit as above): write,
               shared syncfs, link, shared syncfs. Two waits, the order of
               the steps kept (data durable before its name).
  syncfs-link  write, link, one shared syncfs: one wait, but a power loss
               may leave a name in new/ for a file whose data never reached
               the disk (a torn file the reader must recognise).

syncfs(2) flushes everything dirty on the file system, other programs'
writes too, so on a file system shared with busy writers every flush costs
more: run this on the file system the spool is on, while its usual load runs.
"""
import ctypes
import os
import resource
import sys
import threading
import time

MODES = ["file", "commit", "syncfs", "syncfs-link"]
_libc = ctypes.CDLL(None, use_errno=True)


class Group:
    """Leader/follower group commit, as lib/sys/dirsync.rs does it: a caller
    returns only once an `op` that started after its call has ended."""

    def __init__(self, op):
        self.op = op
        self.cv = threading.Condition()
        self.issued = 0
        self.done = 0
        self.running = False
        self.calls = 0

    def sync(self):
        with self.cv:
            self.issued += 1
            ticket = self.issued
            while True:
                if self.done >= ticket:
                    return
                if not self.running:
                    self.running = True
                    upto = self.issued
                    self.cv.release()
                    try:
                        self.calls += 1
                        self.op()
                    finally:
                        self.cv.acquire()
                        self.running = False
                    self.done = max(self.done, upto)
                    self.cv.notify_all()
                    return
                self.cv.wait()


def fsync_path(p):
    fd = os.open(p, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def syncfs_fd(fd):
    if _libc.syncfs(fd) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))


def run(d, seconds, writers, mode):
    tmp, new = os.path.join(d, "tmp"), os.path.join(d, "new")
    os.makedirs(tmp, exist_ok=True)
    os.makedirs(new, exist_ok=True)
    dirfd = os.open(d, os.O_RDONLY)
    dir_group = Group(lambda: fsync_path(new))
    fs_group = Group(lambda: syncfs_fd(dirfd))
    stop = time.monotonic() + seconds
    counts = [0] * writers
    block = os.urandom(4096)

    def one(k, n):
        name = f"f.{k}.{n}"
        if mode == "file":
            fd = os.open(os.path.join(d, name), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            os.write(fd, block)
            os.fsync(fd)
            os.close(fd)
            return
        t, w = os.path.join(tmp, name), os.path.join(new, name)
        fd = os.open(t, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.write(fd, block)
        if mode == "commit":
            os.fsync(fd)
        os.close(fd)
        if mode == "syncfs":
            fs_group.sync()
        os.link(t, w)
        if mode == "commit":
            dir_group.sync()
        else:
            fs_group.sync()
        os.unlink(t)

    def work(k):
        n = 0
        while time.monotonic() < stop:
            one(k, n)
            n += 1
        counts[k] = n

    t0, r0 = time.monotonic(), resource.getrusage(resource.RUSAGE_SELF)
    ts = [threading.Thread(target=work, args=(k,)) for k in range(writers)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    dt = time.monotonic() - t0
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    os.close(dirfd)
    for sub in (d, tmp, new):
        for name in os.listdir(sub):
            p = os.path.join(sub, name)
            if os.path.isfile(p):
                os.unlink(p)
    os.rmdir(tmp)
    os.rmdir(new)
    n = sum(counts)
    return n / dt, n, dir_group.calls + fs_group.calls, cpu * 1e6 / max(n, 1)


def main():
    args = sys.argv[1:]
    modes = ["file"]
    if args[:1] == ["--modes"]:
        modes = args[1].split(",")
        args = args[2:]
        for m in modes:
            if m not in MODES:
                sys.exit(f"unknown mode {m}; modes: {', '.join(MODES)}")
    if not args:
        sys.exit(__doc__)
    d = args[0]
    seconds = float(args[1]) if len(args) > 1 else 3.0
    writers = [int(w) for w in args[2:]] or [1, 20]
    work = os.path.join(d, "fsync-rate")
    os.makedirs(work, exist_ok=True)
    for w in writers:
        for m in modes:
            rate, n, flushes, cpu = run(work, seconds, w, m)
            if m == "file":
                print(
                    f"RESULT fsync: {w} writer(s): {rate:.0f} fsynced 4 KB files/s "
                    f"({cpu:.0f} us CPU per file)",
                    flush=True,
                )
            else:
                print(
                    f"RESULT {m}: {w} writer(s): {rate:.0f} committed 4 KB files/s "
                    f"({n} files, {flushes} shared flushes, {cpu:.0f} us CPU per file)",
                    flush=True,
                )
    os.rmdir(work)


if __name__ == "__main__":
    main()
