#!/usr/bin/env python3
"""Sieve at delivery: the cost of a 20-rule script in kmp-local, and the same
script in Dovecot's LDA with Pigeonhole, in one run on the same messages.

  1. kmp-local, no script: M messages (default 10000) to U users (default
     100), one job per message with one recipient, over 4 connections (as
     kmp-send drives it: job frames on local.sock, the message's descriptor
     attached);
  2. kmp-local, the same messages, each user with the 20-rule script as the
     active script (MAILDIR/sieve/bench.sieve, .dovecot.sieve linking to it);
  3. Dovecot's LDA (/usr/lib/dovecot/dovecot-lda with Pigeonhole), the same
     script and messages: one dovecot-lda process per message, as an MTA
     runs it, 4 at a time, from a private configuration in the temporary
     directory, running as `nobody`.

Every delivery is fsynced in all three (kmp-local always; Dovecot with
mail_fsync = always). Prints messages/s of each, the script's cost (1 - 2/1),
our rate over Dovecot's (2/3), where the messages landed in both (they must
agree), and the load average before and after.

Usage: python3 bench/sieve_driver.py [--bin target/release] [--users 100] [--messages 10000]
"""
import argparse, json, os, pwd, shutil, socket, statistics, struct, subprocess, sys, tempfile, threading, time
from concurrent.futures import ThreadPoolExecutor

LDA = "/usr/lib/dovecot/dovecot-lda"
WORKERS = 4

# Twenty rules: header, address, envelope, size, body and exists tests,
# anyof/allof/not, fileinto :create with flags, stop. Most messages pass
# most rules; about one in three is filed somewhere.
SCRIPT = r'''require ["fileinto", "mailbox", "imap4flags", "envelope", "body", "relational", "comparator-i;ascii-numeric"];
if header :contains "subject" "invoice" { fileinto :create "Invoices"; stop; }
if address :domain :is "from" "bank.test" { fileinto :create :flags "\\Flagged" "Bank"; stop; }
if exists "list-id" { fileinto :create "Lists"; stop; }
if header :matches "subject" "*[SPAM]*" { fileinto :create "Junk"; stop; }
if anyof (header :contains "from" "boss", header :contains "subject" "urgent") { addflag "\\Flagged"; }
if size :over 200K { fileinto :create "Big"; stop; }
if header :is "x-priority" "1" { addflag "$Important"; }
if allof (address :localpart :is "from" "noreply", not header :contains "subject" "receipt") { fileinto :create "Notices"; stop; }
if envelope :domain :is "from" "partner.test" { fileinto :create "Partners"; stop; }
if header :contains "subject" ["report", "报告"] { fileinto :create "Reports"; stop; }
if header :contains "to" "team@" { addflag "Team"; }
if header :value "ge" :comparator "i;ascii-numeric" "x-spam-score" "5" { fileinto :create "Junk"; stop; }
if address :all :is "from" ["a@friends.test", "b@friends.test", "c@friends.test"] { fileinto :create "Friends"; stop; }
if header :contains "subject" "meeting" { addflag "$Meeting"; }
if body :contains "unsubscribe" { fileinto :create "Newsletters"; stop; }
if header :matches "subject" "order *" { fileinto :create "Orders"; stop; }
if not exists "date" { addflag "NoDate"; }
if header :contains "cc" "auditor" { fileinto :copy :create "Audit"; }
if address :domain :matches "from" "*.edu.test" { fileinto :create "School"; stop; }
if header :contains "subject" "travel" { fileinto :create "Travel"; stop; }
'''
SCRIPT = SCRIPT.replace('fileinto :copy :create "Audit"', 'fileinto :create "Audit"')

TOPICS = [
    ("Subject: invoice 42\nFrom: shop@store.test\n", ""),
    ("Subject: your statement\nFrom: alerts@bank.test\n", ""),
    ("Subject: weekly digest\nFrom: list@lists.test\nList-Id: <dev.lists.test>\n", ""),
    ("Subject: hello again\nFrom: friend@else.test\n", ""),
    ("Subject: urgent: call me\nFrom: boss@work.test\n", ""),
    ("Subject: monthly report\nFrom: sales@work.test\n", ""),
    ("Subject: =?GB2312?B?1tyxqLjm?=\nFrom: cn@work.test\n", ""),
    ("Subject: lunch?\nFrom: a@friends.test\n", ""),
    ("Subject: news\nFrom: news@paper.test\n", "To unsubscribe, click here.\n"),
    ("Subject: order 1234\nFrom: noreply@shop.test\n", ""),
    ("Subject: plain mail\nFrom: someone@else.test\nX-Priority: 1\n", ""),
    ("Subject: travel plans\nFrom: agent@trips.test\n", ""),
]


def message(i, user):
    head, extra = TOPICS[i % len(TOPICS)]
    body = extra + ("x" * 75 + "\n") * 50
    return (f"{head}To: {user}\nDate: Sat, 05 Dec 2026 05:00:00 +0000\n"
            f"Message-ID: <{i}@bench.test>\n\nmessage {i}\n{body}").encode()


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


def kmp_run(sockpath, qprefix, msgs, users):
    """Delivers every message through kmp-local over WORKERS connections."""
    def worker(w):
        c = socket.socket(socket.AF_UNIX)
        c.connect(sockpath)
        for n in range(w, len(msgs), WORKERS):
            path, size = msgs[n]
            j = {"v": 1, "qid": f"{qprefix}{n}", "sender": "bench@other.test", "size": size,
                 "arrived": int(time.time()),
                 "recipients": [{"index": 0, "address": users[n % len(users)],
                                 "delivery_id": f"{qprefix}{n}.0"}]}
            with open(path, "rb") as f:
                socket.send_fds(c, [frame(j)], [f.fileno()])
            reply = read_frame(c)
            bad = [r for r in reply["results"] if r["outcome"] != "sent"]
            if bad:
                raise SystemExit(f"kmp-local did not deliver: {bad[:3]}")
        c.close()
    t = time.time()
    ths = [threading.Thread(target=worker, args=(w,)) for w in range(WORKERS)]
    for th in ths:
        th.start()
    for th in ths:
        th.join()
    return time.time() - t


def folders(home):
    """Messages per folder of a Maildir (new/ and cur/), INBOX as ""."""
    out = {}
    for entry in [""] + sorted(e for e in os.listdir(home) if e.startswith(".")):
        d = os.path.join(home, entry)
        if not os.path.isdir(os.path.join(d, "cur")):
            continue
        n = sum(len(os.listdir(os.path.join(d, s))) for s in ("new", "cur"))
        if n:
            out[entry.lstrip(".") or "INBOX"] = n
    return out


def total(homes):
    t = {}
    for h in homes:
        for k, v in folders(h).items():
            t[k] = t.get(k, 0) + v
    return t


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="target/release")
    ap.add_argument("--users", type=int, default=100)
    ap.add_argument("--messages", type=int, default=10000)
    ap.add_argument("--port-base", default="42000")
    ap.add_argument("--rounds", type=int, default=3,
                    help="extra pairs of runs without and with the script, alternating which goes first")
    a = ap.parse_args()
    if not os.access(LDA, os.X_OK):
        raise SystemExit(f"{LDA} is missing: apt-get install dovecot-core dovecot-sieve")
    bindir = os.path.abspath(a.bin)
    ctl = os.path.join(bindir, "kmpctl")
    d = tempfile.mkdtemp(prefix="kmp-bench-sieve.")
    os.chmod(d, 0o755)
    procs = []
    load_before = open("/proc/loadavg").read().split()[:3]
    try:
        subprocess.run([ctl, "init", d, "--port-base", a.port_base], check=True, capture_output=True)
        conf = os.path.join(d, "kmpromail.toml")
        subprocess.run([ctl, "--config", conf, "domain", "add", "bench.test"], check=True, capture_output=True)
        users = [f"u{i}@bench.test" for i in range(a.users)]
        dump = "".join(json.dumps({"type": "user", "address": u, "password": "", "quota_bytes": 0,
                                   "quota_messages": 0, "state": "active", "mail_path": "",
                                   "forwards": [], "keep_copy": False, "pop3_subfolders": False,
                                   "login_delay": 0, "created": 0}) + "\n" for u in users)
        p = subprocess.run([ctl, "--config", conf, "db", "load"], input=dump.encode(), capture_output=True)
        if p.returncode != 0:
            for u in users:
                subprocess.run([ctl, "--config", conf, "user", "add", u], check=True, capture_output=True)
        # The messages, one file each, the same bytes for both servers.
        mdir = os.path.join(d, "msgs")
        os.mkdir(mdir)
        msgs = []
        for n in range(a.messages):
            data = message(n, users[n % len(users)])
            path = os.path.join(mdir, str(n))
            with open(path, "wb") as f:
                f.write(data)
            msgs.append((path, len(data)))

        for prog in ["kmp-authd", "kmp-local"]:
            log = open(os.path.join(d, "log", prog + ".log"), "w")
            procs.append(subprocess.Popen([os.path.join(bindir, prog), "--config", conf, "--foreground"],
                                          stdout=log, stderr=log))
        sockpath = os.path.join(d, "run", "local.sock")
        for _ in range(500):
            if os.path.exists(os.path.join(d, "run", "kmp-local.pid")) and os.path.exists(os.path.join(d, "run", "authd.sock")):
                break
            time.sleep(0.02)
        # Maildirs made first (one message each), so both runs find them.
        kmp_run(sockpath, "WARM", [msgs[i % len(msgs)] for i in range(len(users))], users)
        homes = [os.path.join(d, "mail", "bench.test", u.split("@")[0]) for u in users]

        # 1. No script.
        t_plain = kmp_run(sockpath, "PLAIN", msgs, users)
        before = total(homes)

        # 2. The 20-rule script, active for every user.
        for h in homes:
            os.makedirs(os.path.join(h, "sieve"), exist_ok=True)
            with open(os.path.join(h, "sieve", "bench.sieve"), "w") as f:
                f.write(SCRIPT)
            os.symlink("sieve/bench.sieve", os.path.join(h, ".dovecot.sieve"))
        t_sieve = kmp_run(sockpath, "SIEVE", msgs, users)
        after = total(homes)
        ours = {k: after.get(k, 0) - before.get(k, 0) for k in after}
        ours = {k: v for k, v in ours.items() if v}

        # 3. Dovecot LDA + Pigeonhole, as nobody.
        nobody = pwd.getpwnam("nobody")
        dv = os.path.join(d, "dovecot")
        for sub in ("run", "state", "home"):
            os.makedirs(os.path.join(dv, sub))
        with open(os.path.join(dv, "dovecot.conf"), "w") as f:
            f.write(f"""base_dir = {dv}/run
state_dir = {dv}/state
log_path = {dv}/dovecot.log
mail_location = maildir:~/Maildir
protocols =
ssl = no
postmaster_address = postmaster@bench.test
hostname = bench.test
mail_fsync = always
protocol lda {{
  mail_plugins = sieve
}}
plugin {{
  sieve = file:~/sieve;active=~/.dovecot.sieve
}}
""")
        dhomes = []
        for u in users:
            h = os.path.join(dv, "home", u.split("@")[0])
            os.makedirs(os.path.join(h, "sieve"))
            with open(os.path.join(h, "sieve", "bench.sieve"), "w") as f:
                f.write(SCRIPT)
            os.symlink("sieve/bench.sieve", os.path.join(h, ".dovecot.sieve"))
            dhomes.append(h)
        subprocess.run(["chown", "-R", f"{nobody.pw_uid}:{nobody.pw_gid}", dv], check=True)

        def lda(n, user, home):
            path, _ = msgs[n % len(msgs)]
            env = {"HOME": home, "USER": user.split("@")[0], "PATH": "/usr/bin:/bin"}
            with open(path, "rb") as f:
                r = subprocess.run([LDA, "-c", os.path.join(dv, "dovecot.conf"), "-f", "bench@other.test",
                                    "-a", user], stdin=f, env=env, user=nobody.pw_uid,
                                   group=nobody.pw_gid, extra_groups=[], capture_output=True)
            if r.returncode != 0:
                raise SystemExit(f"dovecot-lda: {r.returncode}: {r.stderr.decode(errors='replace')}")

        # Maildirs made first here too (without the script's cost counted:
        # the script is compiled then, as ours was in the warm-up).
        with ThreadPoolExecutor(WORKERS) as ex:
            list(ex.map(lambda i: lda(i, users[i], dhomes[i]), range(len(users))))
        warm = total([os.path.join(h, "Maildir") for h in dhomes])
        t = time.time()
        with ThreadPoolExecutor(WORKERS) as ex:
            list(ex.map(lambda n: lda(n, users[n % len(users)], dhomes[n % len(users)]), range(len(msgs))))
        t_dovecot = time.time() - t
        dtotal = total([os.path.join(h, "Maildir") for h in dhomes])
        theirs = {k: dtotal.get(k, 0) - warm.get(k, 0) for k in dtotal}
        theirs = {k: v for k, v in theirs.items() if v}

        # 4. Pairs again, the order alternating (without, with; with, without;
        # ...), so that a drift of the machine or of the growing Maildirs
        # falls on both sides alike; the median pair's cost is the steady one.
        links = [os.path.join(h, ".dovecot.sieve") for h in homes]
        pairs = []
        for r in range(a.rounds):
            t_pair = {}
            for with_script in ((False, True) if r % 2 == 0 else (True, False)):
                for link in links:
                    if with_script and not os.path.lexists(link):
                        os.symlink("sieve/bench.sieve", link)
                    elif not with_script and os.path.lexists(link):
                        os.unlink(link)
                t_pair[with_script] = kmp_run(sockpath, f"R{r}{int(with_script)}.", msgs, users)
            pairs.append(1 - t_pair[False] / t_pair[True])

        m = len(msgs)
        r_plain, r_sieve, r_dv = m / t_plain, m / t_sieve, m / t_dovecot
        print(f"{m} messages to {len(users)} users, {WORKERS} at a time, every delivery fsynced")
        print(f"kmp-local, no script:          {t_plain:8.2f} s  {r_plain:8.0f} messages/s")
        print(f"kmp-local, 20-rule script:     {t_sieve:8.2f} s  {r_sieve:8.0f} messages/s")
        print(f"dovecot-lda + Pigeonhole:      {t_dovecot:8.2f} s  {r_dv:8.0f} messages/s")
        print(f"script cost: {100 * (1 - r_sieve / r_plain):.1f}% of our rate (target < 10%)")
        if pairs:
            print(f"script cost in {len(pairs)} more pairs: "
                  + " ".join(f"{100 * c:.1f}%" for c in pairs)
                  + f"; median {100 * statistics.median(pairs):.1f}%")
        print(f"ratio kmp-local/dovecot-lda with the script: {r_sieve / r_dv:.2f} (target >= 2)")
        print(f"where they landed, kmp-local:  {json.dumps(ours, sort_keys=True, ensure_ascii=False)}")
        print(f"where they landed, Dovecot:    {json.dumps(theirs, sort_keys=True, ensure_ascii=False)}")
        print("filing agrees" if ours == theirs else "FILING DIFFERS")
        load_after = open("/proc/loadavg").read().split()[:3]
        print(f"load average before: {' '.join(load_before)}  after: {' '.join(load_after)}  "
              f"({os.cpu_count()} CPUs)")
        if ours != theirs:
            sys.exit(1)
    finally:
        for p in procs:
            p.terminate()
            p.wait()
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
