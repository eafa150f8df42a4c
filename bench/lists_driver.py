#!/usr/bin/env python3
"""Mailing lists: one post of SIZE bytes (default 100 KB) to a list of
LOCAL + REMOTE members (default 9,000 local, 1,000 remote at smtp-sink),
first through Kmpromail, then (with --mlmmj) through Debian's mlmmj driven
by a private Postfix on the same machine.

For each: the time from the end of the SMTP session that posts until every
local member's copy is in its Maildir and every remote copy has been
accepted by smtp-sink, and the disk the local copies take (du, which counts
a hard-linked file once), and the ratios.

Ours: `kmpctl init` in a temporary directory, users loaded with
`kmpctl db load`, an open list with `kmpctl list add/subscribe`, remote
members' domain routed to smtp-sink, `kmpctl start`.

mlmmj: a private Postfix (its own config and queue directories in the
temporary directory, smtpd on a free port) delivering example.test to
Maildirs with virtual(8), the list address to mlmmj-receive through
pipe(8), example.net to smtp-sink; mlmmj-send hands each copy back to that
Postfix over SMTP (control/relayhost, control/smtpport), as mlmmj is run.
Needs root and Debian's postfix and mlmmj.

Usage: python3 bench/lists_driver.py [--bin target/release] [--local 9000]
       [--remote 1000] [--size 102400] [--mlmmj]
"""
import argparse, json, os, pwd, shutil, smtplib, socket, subprocess, sys, tempfile, time

LIST = "news@example.test"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def free_base():
    offs = [25, 587, 465, 110, 995, 143, 993, 26, 27, 28, 80, 443, 190]
    for base in range(41000, 60000, 1000):
        ok = True
        for o in offs:
            s = socket.socket()
            try:
                s.bind(("127.0.0.1", base + o))
            except OSError:
                ok = False
            s.close()
        if ok:
            return base
    sys.exit("no free port base")


def wait_port(port, limit=20):
    end = time.time() + limit
    while time.time() < end:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    sys.exit(f"nothing listens on {port}")


def message(size):
    body_line = "The quick brown fox jumps over the lazy dog. 0123456789 abcdefghij\n"
    body = body_line * (size // len(body_line) + 1)
    head = (f"From: poster@example.org\nTo: {LIST}\nSubject: benchmark post\n"
            "Message-ID: <bench.lists@example.org>\nMIME-Version: 1.0\n"
            "Content-Type: text/plain; charset=us-ascii\n\n")
    text = (head + body).replace("\n", "\r\n")
    return text[:size - 2].encode() + b"\r\n"


def sink(tmp, port, root):
    d = os.path.join(tmp, "sink")
    os.makedirs(d, exist_ok=True)
    args = ["/usr/sbin/smtp-sink"]
    if root:
        args += ["-u", "root"]
    args += ["-d", d + "/%H%M%S.", f"127.0.0.1:{port}", "200"]
    p = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(port)
    return p, d


def count_files(d):
    try:
        return len(os.listdir(d))
    except FileNotFoundError:
        return 0


def all_delivered(maildirs, sink_dir, remote, limit):
    """Seconds until every Maildir has a message in new/ and the sink has
    `remote` messages; polls."""
    t0 = time.time()
    pending = list(maildirs)
    while time.time() - t0 < limit:
        pending = [m for m in pending if count_files(os.path.join(m, "new")) == 0]
        if not pending and count_files(sink_dir) >= remote:
            return time.time() - t0
        time.sleep(0.05)
    sys.exit(f"timed out: {len(pending)} local copies and "
             f"{remote - count_files(sink_dir)} remote copies missing")


def copies_k(maildirs):
    """KB of disk the message files in the Maildirs' new/ and cur/ take, each
    inode counted once (directories are left out: both systems make one
    Maildir per member, and ours adds the special-use folders)."""
    seen, blocks = set(), 0
    for m in maildirs:
        for sub in ("new", "cur"):
            try:
                names = os.listdir(os.path.join(m, sub))
            except FileNotFoundError:
                continue
            for n in names:
                st = os.stat(os.path.join(m, sub, n))
                if st.st_ino not in seen:
                    seen.add(st.st_ino)
                    blocks += st.st_blocks
    return blocks * 512 // 1024


def post(port, data):
    with smtplib.SMTP("127.0.0.1", port, timeout=300) as s:
        s.sendmail("poster@example.org", [LIST], data)


def ours(a, data, root):
    tmp = tempfile.mkdtemp(prefix="kmp-lists-bench-")
    ctl = os.path.join(a.bin, "kmpctl")
    base = free_base()
    sp = free_port()
    subprocess.run([ctl, "init", tmp, "--port-base", str(base), "--hostname", "mx.example.test"],
                   check=True, stdout=subprocess.DEVNULL)
    conf = os.path.join(tmp, "kmpromail.toml")
    # The poster's domain (example.org) would be looked up for its DMARC
    # policy (lists.dmarc_rewrite); mlmmj does no such lookup, and a
    # machine without DNS would wait for it: the benchmark measures
    # delivery only.
    with open(conf) as f:
        text = f.read()
    text = text.replace("[lists]\n", '[lists]\ndmarc_rewrite = "never"\n', 1)
    with open(conf, "w") as f:
        f.write(text)
    with open(conf, "a") as f:
        f.write(f'\n[remote.routes]\n"example.net" = ["127.0.0.1:{sp}"]\n')
    env = dict(os.environ, KMPROMAIL_CONFIG=conf)
    run = lambda *args, **kw: subprocess.run([ctl, *args], env=env, check=True,
                                             stdout=subprocess.DEVNULL, **kw)
    run("domain", "add", "example.test")
    local = [f"m{i:05}@example.test" for i in range(a.local)]
    remote = [f"r{i:05}@example.net" for i in range(a.remote)]
    users = "".join(json.dumps({"type": "user", "address": u}) + "\n" for u in local)
    run("db", "load", input=users.encode())
    run("list", "add", LIST, "--policy", "open")
    members = local + remote
    for i in range(0, len(members), 2000):
        run("list", "subscribe", LIST, *members[i:i + 2000])
    sinkp, sink_dir = sink(tmp, sp, root)
    try:
        run("start")
        mail = os.path.join(tmp, "mail", "example.test")
        dirs = [os.path.join(mail, u.split("@")[0]) for u in local]
        t0 = time.time()
        post(base + 25, data)
        smtp = time.time() - t0
        secs = all_delivered(dirs, sink_dir, a.remote, 3600)
        disk = copies_k(dirs)
    finally:
        subprocess.run([ctl, "stop"], env=env, stdout=subprocess.DEVNULL)
        sinkp.kill()
    shutil.rmtree(tmp, ignore_errors=True)
    return smtp, secs, disk


def mlmmj(a, data, root):
    if not root:
        sys.exit("--mlmmj needs root (Postfix, pipe to mlmmj as another user)")
    for p in ["/usr/sbin/postfix", "/usr/bin/mlmmj-receive", "/usr/bin/mlmmj-send"]:
        if not os.path.exists(p):
            sys.exit(f"{p} is missing (apt-get install postfix mlmmj)")
    tmp = tempfile.mkdtemp(prefix="mlmmj-bench-")
    os.chmod(tmp, 0o755)
    etc, spool, datadir = (os.path.join(tmp, "postfix", x) for x in ("etc", "spool", "data"))
    mail = os.path.join(tmp, "mail")
    mlspool = os.path.join(tmp, "mlmmj")
    for d in (etc, spool, datadir, mail, mlspool):
        os.makedirs(d)
    nobody = pwd.getpwnam("nobody")
    vmail = pwd.getpwnam("mail")
    os.chown(mail, vmail.pw_uid, vmail.pw_gid)
    shutil.chown(datadir, "postfix", "postfix")
    smtp_port, sp = free_port(), free_port()
    local = [f"m{i:05}" for i in range(a.local)]
    remote = [f"r{i:05}@example.net" for i in range(a.remote)]
    with open(os.path.join(etc, "vmailbox"), "w") as f:
        for u in local:
            f.write(f"{u}@example.test {u}/\n")
        f.write(f"{LIST} news/\n")
    with open(os.path.join(etc, "transport"), "w") as f:
        f.write(f"{LIST} mlmmj:news\nexample.net smtp:[127.0.0.1]:{sp}\n")
    with open(os.path.join(etc, "main.cf"), "w") as f:
        f.write(f"""compatibility_level = 3.6
config_directory = {etc}
queue_directory = {spool}
data_directory = {datadir}
mail_owner = postfix
setgid_group = postdrop
myhostname = mx.example.test
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
relayhost =
maillog_file = {tmp}/postfix/maillog
maillog_file_prefixes = /var, /dev/stdout, {tmp}
message_size_limit = 0
virtual_mailbox_limit = 0
virtual_mailbox_domains = example.test
virtual_mailbox_base = {mail}
virtual_mailbox_maps = texthash:{etc}/vmailbox
virtual_minimum_uid = 1
virtual_uid_maps = static:{vmail.pw_uid}
virtual_gid_maps = static:{vmail.pw_gid}
virtual_destination_concurrency_limit = 20
transport_maps = texthash:{etc}/transport
recipient_delimiter = +
mlmmj_destination_recipient_limit = 1
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
smtpd_client_connection_count_limit = 0
smtpd_client_connection_rate_limit = 0
smtpd_client_message_rate_limit = 0
smtpd_client_recipient_rate_limit = 0
smtp_tls_security_level = none
default_destination_concurrency_limit = 20
""")
    master = open("/etc/postfix/master.cf").read()
    master = master.replace("smtp      inet  n       -       y       -       -       smtpd",
                            f"127.0.0.1:{smtp_port} inet  n       -       n       -       -       smtpd")
    master = "\n".join(l for l in master.splitlines() if not l.startswith("smtp      inet"))
    master += ("\nmlmmj unix - n n - - pipe flags=ORhu user=nobody "
               f"argv=/usr/bin/mlmmj-receive -F -L {mlspool}/$nexthop/\n")
    open(os.path.join(etc, "master.cf"), "w").write(master)
    ml = os.path.join(mlspool, "news")
    for d in ["incoming", "queue", "queue/discarded", "archive", "text", "subconf", "unsubconf",
              "bounce", "control", "moderation", "subscribers.d", "digesters.d", "requeue",
              "nomailsubs.d", "index"]:
        os.makedirs(os.path.join(ml, d), exist_ok=True)
    open(os.path.join(ml, "control", "listaddress"), "w").write(LIST + "\n")
    open(os.path.join(ml, "control", "relayhost"), "w").write("127.0.0.1\n")
    open(os.path.join(ml, "control", "smtpport"), "w").write(f"{smtp_port}\n")
    open(os.path.join(ml, "control", "noarchive"), "w").write("")
    by_letter = {}
    for m in [f"{u}@example.test" for u in local] + remote:
        by_letter.setdefault(m[0], []).append(m)
    for k, v in by_letter.items():
        open(os.path.join(ml, "subscribers.d", k), "w").write("\n".join(v) + "\n")
    subprocess.run(["chown", "-R", f"{nobody.pw_uid}:{nobody.pw_gid}", mlspool], check=True)
    sinkp, sink_dir = sink(tmp, sp, True)
    pf = ["postfix", "-c", etc]
    try:
        subprocess.run(pf + ["check"], check=True)
        subprocess.run(pf + ["start"], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(smtp_port)
        dirs = [os.path.join(mail, u) for u in local]
        t0 = time.time()
        post(smtp_port, data)
        smtp = time.time() - t0
        secs = all_delivered(dirs, sink_dir, a.remote, 3600)
        disk = copies_k(dirs)
    finally:
        subprocess.run(pf + ["stop"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        sinkp.kill()
    shutil.rmtree(tmp, ignore_errors=True)
    return smtp, secs, disk


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="target/release")
    ap.add_argument("--local", type=int, default=9000)
    ap.add_argument("--remote", type=int, default=1000)
    ap.add_argument("--size", type=int, default=100 * 1024)
    ap.add_argument("--mlmmj", action="store_true")
    a = ap.parse_args()
    a.bin = os.path.abspath(a.bin)
    root = os.geteuid() == 0
    data = message(a.size)
    print(f"load before: {os.getloadavg()[0]:.2f}")
    print(f"post of {len(data)} bytes to {a.local} local + {a.remote} remote members")
    s, t, k = ours(a, data, root)
    print(f"RESULT kmpromail smtp={s:.2f}s all_copies={t:.2f}s local_disk={k}KB")
    if a.mlmmj:
        s2, t2, k2 = mlmmj(a, data, root)
        print(f"RESULT mlmmj+postfix smtp={s2:.2f}s all_copies={t2:.2f}s local_disk={k2}KB")
        print(f"RESULT ratio time={t2 / max(t, 1e-9):.2f}x disk={k2 / max(k, 1):.1f}x")
    print(f"load after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
