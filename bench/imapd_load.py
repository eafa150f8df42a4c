#!/usr/bin/env python3
"""IMAP load client for bench/imapd.sh (asyncio, no dependencies).

Modes:
  ops   N clients, each: LOGIN, SELECT INBOX, then a loop of FETCH (flags and
        envelope of 10 messages), FETCH BODY.PEEK[] of one, STORE +/-FLAGS,
        SEARCH UNSEEN; with --relogin, LOGOUT and a new connection and LOGIN
        every 10 operations. Prints ops/s.
  idle  N clients LOGIN, SELECT INBOX and IDLE; prints the server's memory
        (VmRSS, VmHWM from /proc) once all are idling: of --pid, or summed
        over every process named --procname (Dovecot's imap processes).
  big   SELECT and SEARCH on INBOX, twice (cold then warm); prints times.
  bigfetch  FETCH BODY.PEEK[] of INBOX's first message (a large one) and
        BODY.PEEK[HEADER]; prints how far --pid's VmHWM rose above its VmRSS
        before (the peak is reset first through /proc/PID/clear_refs).
"""
import argparse, asyncio, os, random, time


class Client:
    def __init__(self, r, w):
        self.r, self.w, self.n = r, w, 0

    @classmethod
    async def open(cls, host, port, user, password):
        r, w = await asyncio.open_connection(host, port, limit=1 << 24)
        c = cls(r, w)
        await r.readline()
        await c.cmd(f'LOGIN "{user}" "{password}"')
        return c

    async def cmd(self, text):
        self.n += 1
        tag = f"t{self.n}"
        self.w.write(f"{tag} {text}\r\n".encode())
        await self.w.drain()
        while True:
            line = await self.r.readline()
            if not line:
                raise ConnectionError("closed")
            if line.endswith(b"}\r\n"):
                n = int(line[line.rindex(b"{") + 1:-3].rstrip(b"+"))
                await self.r.readexactly(n)
                continue
            if line.startswith(tag.encode() + b" "):
                if not line.split()[1] == b"OK":
                    raise RuntimeError(line)
                return

    async def close(self):
        try:
            await self.cmd("LOGOUT")
        except Exception:
            pass
        self.w.close()


async def worker(a, stop, counts, i):
    rnd = random.Random(i)
    c = await Client.open(a.host, a.port, a.user, a.password)
    await c.cmd("SELECT INBOX")
    done = 0
    while time.monotonic() < stop:
        k = rnd.randint(1, max(1, a.messages - 10))
        op = done % 4
        if op == 0:
            await c.cmd(f"FETCH {k}:{k + 9} (FLAGS UID ENVELOPE)")
        elif op == 1:
            await c.cmd(f"FETCH {k} BODY.PEEK[]")
        elif op == 2:
            await c.cmd(f"STORE {k} {'+' if rnd.random() < 0.5 else '-'}FLAGS (\\Seen)")
        else:
            await c.cmd("SEARCH UNSEEN")
        done += 1
        counts[i] = done
        if a.relogin and done % 10 == 0:
            await c.close()
            c = await Client.open(a.host, a.port, a.user, a.password)
            await c.cmd("SELECT INBOX")
    await c.close()


def status_kb(pid, key="VmRSS"):
    """A /proc/PID/status field in kB (0 when the process is gone)."""
    if not pid:
        return 0
    try:
        with open(f"/proc/{pid}/status") as f:
            for l in f:
                if l.startswith(key + ":"):
                    return int(l.split()[1])
    except OSError:
        pass
    return 0


def rss_kb(pid):
    return status_kb(pid)


def pids_named(name):
    """Processes whose command name is `name` (Dovecot's imap processes)."""
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/comm") as f:
                    if f.read().strip() == name:
                        out.append(int(d))
            except OSError:
                pass
    return out


def memory(a):
    """(VmRSS, VmHWM, processes) of the server, in kB."""
    pids = pids_named(a.procname) if a.procname else [a.pid] if a.pid else []
    return (sum(status_kb(p) for p in pids), sum(status_kb(p, "VmHWM") for p in pids), len(pids))


def reset_peak(pid):
    """Resets VmHWM to VmRSS (Linux 4.0+, own processes or root)."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


async def main():
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["ops", "idle", "big", "bigfetch"])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--user", required=True)
    p.add_argument("--password", default="secret")
    p.add_argument("--clients", type=int, default=50)
    p.add_argument("--seconds", type=float, default=10)
    p.add_argument("--messages", type=int, default=1000)
    p.add_argument("--relogin", action="store_true")
    p.add_argument("--persistent", action="store_true", help="the default: one login per client")
    p.add_argument("--pid", type=int, default=0)
    p.add_argument("--procname", default="", help="sum the memory of every process of this name")
    p.add_argument("--label", default="")
    a = p.parse_args()
    if a.mode == "ops":
        counts = [0] * a.clients
        stop = time.monotonic() + a.seconds
        t = time.monotonic()
        await asyncio.gather(*(worker(a, stop, counts, i) for i in range(a.clients)))
        el = time.monotonic() - t
        print(f"RESULT {a.label} ops clients={a.clients} relogin={a.relogin} ops={sum(counts)} ops/s={sum(counts)/el:.0f}")
    elif a.mode == "idle":
        cs = []
        base = memory(a)[0]
        for i in range(0, a.clients, 100):
            batch = await asyncio.gather(*(Client.open(a.host, a.port, a.user, a.password) for _ in range(min(100, a.clients - i))))
            for c in batch:
                await c.cmd("SELECT INBOX")
                c.w.write(b"i IDLE\r\n")
                await c.w.drain()
                await c.r.readline()
            cs.extend(batch)
        await asyncio.sleep(2)
        rss, hwm, n = memory(a)
        print(f"RESULT {a.label} idle clients={len(cs)} processes={n} rss_before_kb={base} rss_kb={rss} hwm_kb={hwm} per_client_kb={(rss - base) / max(1, len(cs)):.1f}")
        for c in cs:
            c.w.close()
    elif a.mode == "bigfetch":
        c = await Client.open(a.host, a.port, a.user, a.password)
        await c.cmd("SELECT INBOX")
        for what in ["BODY.PEEK[HEADER]", "BODY.PEEK[]", "BODY.PEEK[TEXT]", "BINARY.PEEK[]"]:
            await asyncio.sleep(0.5)
            before = status_kb(a.pid)
            reset = reset_peak(a.pid)
            t = time.monotonic()
            await c.cmd(f"FETCH 1 {what}")
            el = time.monotonic() - t
            hwm = status_kb(a.pid, "VmHWM")
            rise = hwm - before if reset else "unknown"
            print(f"RESULT {a.label} bigfetch {what} s={el:.3f} rss_before_kb={before} hwm_kb={hwm} rise_kb={rise}")
        await c.close()
    else:
        for run in ["cold", "warm"]:
            c = await Client.open(a.host, a.port, a.user, a.password)
            t = time.monotonic()
            await c.cmd("SELECT INBOX")
            sel = time.monotonic() - t
            t = time.monotonic()
            await c.cmd("SEARCH UNSEEN SMALLER 100000")
            srch = time.monotonic() - t
            t = time.monotonic()
            await c.cmd("FETCH 1:1000 (FLAGS UID RFC822.SIZE)")
            fetch = time.monotonic() - t
            await c.close()
            print(f"RESULT {a.label} big {run} select_s={sel:.3f} search_s={srch:.3f} fetch1000_s={fetch:.3f}")


asyncio.run(main())
