#!/usr/bin/env python3
"""checks_driver.py - the load and the set-up of bench/checks.sh.

  checks_driver.py --need     name the Debian packages still missing (exit 2 if any)
  checks_driver.py --bin DIR --messages N --clients C --runs R
                              the comparison; as root, inside `unshare -mn`

Kmpromail (kmp-authd and kmp-smtpd of DIR) and a private Postfix (OpenDKIM, policyd-spf,
OpenDMARC, spamass-milter, clamav-milter) accept the same DKIM-signed message N times over C
SMTP sessions, with every check off and then on. One name server (bench/auth_driver.py dns on
127.0.0.1:53, the address of the private /etc/resolv.conf) and one spamd and clamd
(bench/scan_driver.py's) serve both sides. Before timing, each side must refuse GTUBE, EICAR
and a DMARC p=reject forgery and record spf, dkim and dmarc pass and the scanners' headers on
the signed message. Every loop is bounded; every process started here is ended by its pid,
Postfix by `postfix -c DIR stop`.
"""
import argparse
import glob
import os
import re
import shutil
import smtplib
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True  # no __pycache__ left in bench/
from scan_driver import EICAR, scanners  # noqa: E402

# (program, Debian package): what the comparison runs besides Kmpromail.
NEEDS = [
    ("postfix", "postfix"),
    ("opendkim", "opendkim"),
    ("opendmarc", "opendmarc"),
    ("policyd-spf", "postfix-policyd-spf-python"),
    ("spamass-milter", "spamass-milter"),
    ("clamav-milter", "clamav-milter"),
    ("spamd", "spamd"),
    ("spamc", "spamc"),
    ("clamd", "clamav-daemon"),
    ("unshare", "util-linux"),
    ("ip", "iproute2"),
]
GTUBE = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"
HELO = "mail.sender.test"
RCPT = "u@example.test"
# False with --no-spamd: every check but SpamAssassin's, on both sides (spamd's
# 170-200 ms of CPU a message otherwise sets both sides' rate with the checks on).
SPAMD = True
SPAM_REJECT = 15  # scan.reject_score's default, and spamass-milter -r


def need():
    path = os.environ.get("PATH", "") + ":/usr/sbin:/sbin"
    missing = sorted({pkg for prog, pkg in NEEDS if not shutil.which(prog, path=path)})
    try:
        import dkim  # noqa: F401
    except ImportError:
        missing.append("python3-dkim")
    if missing:
        print("checks.sh needs: apt-get install -y " + " ".join(missing), file=sys.stderr)
        print("(keep their services stopped: the script starts its own copies)", file=sys.stderr)
        sys.exit(2)


def write(path, text, mode=0o644):
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)


def check_namespace():
    """Only a fresh network namespace has nothing but the loopback."""
    links = [line.split(":")[0].strip() for line in open("/proc/net/dev").readlines()[2:]]
    if links != ["lo"]:
        sys.exit("checks_driver.py: run me through bench/checks.sh (unshare -mn), not beside %s" % links)


def private_resolver(tmp):
    """Loopback up, and /etc/resolv.conf and /etc/hosts of this mount namespace replaced."""
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    # No 127.0.0.1 in hosts: Postfix's reverse lookup of the client asks DNS, as ours does.
    for name, text in [("resolv.conf", "nameserver 127.0.0.1\noptions timeout:2 attempts:2\n"),
                       ("hosts", "# bench/checks.sh: every name from DNS\n")]:
        write(os.path.join(tmp, name), text)
        subprocess.run(["mount", "--bind", os.path.join(tmp, name), "/etc/" + name], check=True)


def wait_path(path, what, limit=60):
    for _ in range(int(limit / 0.1)):
        if os.path.exists(path):
            return
        time.sleep(0.1)
    sys.exit("%s did not make %s (KEEP=1 keeps the logs)" % (what, path))


def wait_port(port, limit=30):
    for _ in range(int(limit / 0.1)):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    sys.exit("nothing listens on 127.0.0.1:%d" % port)


def set_keys(path, section, keys):
    """Sets KEY = VALUE lines in [section] of a TOML file, replacing earlier ones."""
    lines = open(path).read().split("\n")
    head = "[%s]" % section
    if head not in lines:
        lines += ["", head]
    out, inside = [], False
    for line in lines:
        if line.startswith("["):
            inside = line.strip() == head
            out.append(line)
            if inside:
                out += ["%s = %s" % kv for kv in keys.items()]
            continue
        if inside and line.split("=")[0].strip() in keys:
            continue
        out.append(line)
    write(path, "\n".join(out))


def cpu_seconds(shared):
    """CPU time (total, shared) of every process in this network namespace but this one:
    both mail systems, the milters, and (shared) the scanners and the name server, the pids
    in `shared` and their descendants. Exited processes count through their parent's
    cutime/cstime (a daemon whose parent left the namespace is not seen)."""
    me, ns = os.getpid(), os.readlink("/proc/self/ns/net")
    parent, ticks = {}, {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == me:
            continue
        try:
            if os.readlink("/proc/%s/ns/net" % pid) != ns:
                continue
            stat = open("/proc/%s/stat" % pid).read()
        except OSError:
            continue
        f = stat[stat.rindex(")") + 2:].split()
        parent[int(pid)] = int(f[1])
        ticks[int(pid)] = sum(int(x) for x in f[11:15])  # utime stime cutime cstime

    def is_shared(pid):
        for _ in range(64):
            if pid in shared:
                return True
            if pid not in parent:
                return False
            pid = parent[pid]
        return False

    hz = os.sysconf("SC_CLK_TCK")
    return sum(ticks.values()) / hz, sum(t for p, t in ticks.items() if is_shared(p)) / hz


# --- the messages ---------------------------------------------------------------------------

def signed_message(key, selector):
    import dkim
    body = b"".join(b"line %04d of the benchmark message, some text to hash\r\n" % i for i in range(70))
    msg = (b"From: Bench <bench@sender.test>\r\nTo: u@example.test\r\nSubject: bench\r\n"
           b"Date: Sat, 5 Dec 2026 06:00:00 +0000\r\nMessage-ID: <b@sender.test>\r\n\r\n" + body)
    sig = dkim.sign(msg, selector.encode(), b"sender.test", key,
                    include_headers=[b"from", b"to", b"subject", b"date", b"message-id"])
    return sig + msg


def plain_message(sender, subject, body):
    return ("From: <%s>\r\nTo: <u@example.test>\r\nSubject: %s\r\nDate: Sat, 5 Dec 2026 06:00:00 +0000\r\n"
            "Message-ID: <%s@bench>\r\n\r\n%s\r\n" % (sender, subject, subject.replace(" ", "."), body)).encode()


def probe(port, mail_from, msg, source="127.0.0.1"):
    """One message in its own session: (code, reply text) of the first refusal or of DATA."""
    try:
        s = smtplib.SMTP("127.0.0.1", port, local_hostname=HELO, timeout=120, source_address=(source, 0))
    except smtplib.SMTPConnectError as e:
        return e.smtp_code, e.smtp_error.decode("utf-8", "replace")
    try:
        s.ehlo(HELO)
        for step in (lambda: s.mail(mail_from), lambda: s.rcpt(RCPT)):
            code, text = step()
            if code != 250:
                return code, text.decode("utf-8", "replace")
        code, text = s.data(msg)
        return code, text.decode("utf-8", "replace")
    except smtplib.SMTPResponseException as e:
        return e.smtp_code, e.smtp_error.decode("utf-8", "replace")
    finally:
        try:
            s.quit()
        except smtplib.SMTPException:
            pass


def load(port, n, clients, msg):
    """Sends msg n times over `clients` sessions; returns (accepted, seconds, errors)."""
    per = [n // clients + (1 if i < n % clients else 0) for i in range(clients)]
    done, errors, lock = [0], [], threading.Lock()

    def worker(k):
        s = None
        for _ in range(k):
            try:
                if s is None:
                    s = smtplib.SMTP("127.0.0.1", port, local_hostname=HELO, timeout=300)
                s.sendmail("bench@sender.test", [RCPT], msg)
                with lock:
                    done[0] += 1
            except smtplib.SMTPServerDisconnected:
                s = None  # the server ended the session: the next message starts a new one
            except (smtplib.SMTPException, OSError) as e:
                with lock:
                    errors.append(repr(e))
        if s is not None:
            try:
                s.quit()
            except smtplib.SMTPException:
                pass

    t0 = time.monotonic()
    threads = [threading.Thread(target=worker, args=(k,)) for k in per]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return done[0], time.monotonic() - t0, errors


# --- Kmpromail ------------------------------------------------------------------------------

class Kmpromail:
    name = "kmpromail"

    def __init__(self, tmp, bindir, base):
        self.dir = os.path.join(tmp, "kmp")
        self.bin = os.path.abspath(bindir)
        self.conf = os.path.join(self.dir, "kmpromail.toml")
        self.port = base + 25
        self.tmp = tmp
        self.procs = {}
        subprocess.run([self.bin + "/kmpctl", "init", self.dir, "--port-base", str(base),
                        "--hostname", "mx.example.test"], check=True, stdout=subprocess.DEVNULL)
        self.ctl("domain", "add", "example.test")
        self.ctl("user", "add", RCPT)
        self.ctl("dkim", "keygen", "sender.test", "--algorithm", "rsa")
        self.selector = open(os.path.join(self.dir, "dkim/sender.test/active")).read().strip()
        # All load comes from 127.0.0.1 and must be checked: no per-address limits, no skipping.
        set_keys(self.conf, "smtpd", {"max_connections_per_ip": "100000",
                                      "max_messages_per_connection": "1000000"})
        set_keys(self.conf, "auth", {"skip_networks": "[]", "dns_servers": '["127.0.0.1:53"]'})

    def ctl(self, *args):
        subprocess.run([self.bin + "/kmpctl", "--config", self.conf] + list(args), check=True,
                       stdout=subprocess.DEVNULL)

    def dkim_key(self):
        d = os.path.join(self.dir, "dkim/sender.test")
        return open(os.path.join(d, self.selector + ".pem"), "rb").read(), \
            open(os.path.join(d, self.selector + ".txt")).read().strip()

    def start(self, prog):
        pidfile = os.path.join(self.dir, "run", prog + ".pid")
        log = open(os.path.join(self.dir, "log", prog + ".log"), "a")
        self.procs[prog] = subprocess.Popen([self.bin + "/" + prog, "--config", self.conf, "--foreground"],
                                            stdout=log, stderr=log)
        wait_path(pidfile, prog)

    def stop(self, prog):
        p = self.procs.pop(prog, None)
        if p:
            p.terminate()
            p.wait(timeout=60)
            pidfile = os.path.join(self.dir, "run", prog + ".pid")
            for _ in range(100):
                if not os.path.exists(pidfile):
                    break
                time.sleep(0.05)

    def checks(self, on):
        on_ = "true" if on else "false"
        set_keys(self.conf, "auth", {k: on_ for k in ("spf", "dkim", "arc", "dmarc")})
        t = self.tmp
        set_keys(self.conf, "scan", {
            "spamd": '"%s/spamd.sock"' % t if on and SPAMD else '""',
            "clamd": '"%s/clamd.sock"' % t if on else '""',
            "dnsbl": '["bench.bl 10"]' if on else "[]",  # listed: refused, as by reject_rbl_client
            "helo": '"score"' if on else '"off"',
            "fcrdns": '"score"' if on else '"off"',
            "dns_servers": '["127.0.0.1:53"]',
            "reject_score": str(SPAM_REJECT),
        })
        if "kmp-authd" not in self.procs:
            self.start("kmp-authd")
        self.stop("kmp-smtpd")
        self.start("kmp-smtpd")
        wait_port(self.port)

    def clear(self):
        for f in glob.glob(os.path.join(self.dir, "queue/incoming/*/*")):
            os.unlink(f)

    def queued(self):
        files = glob.glob(os.path.join(self.dir, "queue/incoming/new/*"))
        return open(files[0], "rb").read().decode("utf-8", "replace") if len(files) == 1 else \
            "(%d files queued)" % len(files)

    def close(self):
        for prog in list(self.procs):
            self.stop(prog)


# --- Postfix with its milters ---------------------------------------------------------------

class Postfix:
    name = "postfix"

    def __init__(self, tmp, port):
        self.tmp, self.port = tmp, port
        self.root = os.path.join(tmp, "pf")
        self.etc = os.path.join(self.root, "etc")
        self.milt = os.path.join(self.root, "milter")
        self.procs = []
        self.running = False
        for d in ("etc", "spool", "data", "milter"):
            os.makedirs(os.path.join(self.root, d), mode=0o755)
        shutil.chown(os.path.join(self.root, "data"), "postfix", "postfix")
        r, m = self.root, self.milt
        write(self.etc + "/main.cf", f"""compatibility_level = 3.6
config_directory = {self.etc}
queue_directory = {r}/spool
data_directory = {r}/data
mail_owner = postfix
setgid_group = postdrop
myhostname = mx.example.test
mydomain = example.test
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
# The load comes from 127.0.0.1 and must be checked like a stranger's.
mynetworks = 192.0.2.1/32
relay_domains = example.test
relay_recipient_maps = inline:{{ {RCPT}=ok }}
default_transport = error:the bench instance does not deliver
# Accepted mail waits in the hold queue, as ours waits in incoming/: nothing is delivered.
smtpd_data_restrictions = check_client_access static:HOLD
maillog_file_prefixes = /var, /dev/stdout, /tmp
maillog_file = {r}/maillog
smtpd_client_connection_count_limit = 0
smtpd_client_connection_rate_limit = 0
smtpd_client_message_rate_limit = 0
smtpd_client_recipient_rate_limit = 0
smtpd_relay_restrictions = reject_unauth_destination
smtpd_recipient_restrictions =
smtpd_milters =
milter_default_action = tempfail
policyd-spf_time_limit = 3600
alias_maps =
alias_database =
local_recipient_maps =
biff = no
readme_directory = no
""")
        write(self.etc + "/master.cf", f"""127.0.0.1:{port} inet n - n - 100 smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
policyd-spf unix -      n       n       -       0       spawn
  user=nobody argv=/usr/bin/policyd-spf {r}/policyd-spf.conf
""")
        write(r + "/policyd-spf.conf", """debugLevel = 1
TestOnly = 1
HELO_reject = Fail
Mail_From_reject = Fail
PermError_reject = False
TempError_Defer = False
skip_addresses = 192.0.2.0/24
Header_Type = AR
Authserv_Id = mx.example.test
""")
        write(r + "/ignore-hosts", "192.0.2.1\n")
        write(r + "/opendkim.conf", f"""Mode v
Socket local:{m}/opendkim.sock
PidFile {m}/opendkim.pid
UMask 000
Background no
Syslog no
AuthservID mx.example.test
InternalHosts 192.0.2.1
ResolverConfiguration {r}/unbound.conf
""")
        # OpenDKIM resolves through libunbound, which by default neither asks a server on the
        # loopback nor lets .test (RFC 6761) leave the machine: forward everything to ours.
        write(r + "/unbound.conf", 'server:\n  do-not-query-localhost: no\n  local-zone: "test." nodefault\n'
              'forward-zone:\n  name: "."\n  forward-addr: 127.0.0.1\n')
        write(r + "/opendmarc.conf", f"""Socket local:{m}/opendmarc.sock
PidFile {m}/opendmarc.pid
UMask 000
Background false
Syslog false
AuthservID mx.example.test
TrustedAuthservIDs mx.example.test
IgnoreHosts {r}/ignore-hosts
RejectFailures true
SPFSelfValidate false
SPFIgnoreResults false
FailureReports false
""")
        write(r + "/clamav-milter.conf", f"""MilterSocket unix:{m}/clamav.sock
MilterSocketMode 666
FixStaleSocket yes
ClamdSocket unix:{tmp}/clamd.sock
Foreground yes
PidFile {m}/clamav-milter.pid
LogFile {r}/clamav-milter.log
OnInfected Reject
OnFail Defer
AddHeader Replace
ReadTimeout 120
""")

    def postfix(self, *args, check=True):
        return subprocess.run(["postfix", "-c", self.etc] + list(args), check=check,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)

    def milters(self):
        m, r = self.milt, self.root
        log = open(r + "/milters.log", "a")
        umask = os.umask(0)  # the milters' sockets must be writable by Postfix's cleanup
        try:
            for argv in (["opendkim", "-x", r + "/opendkim.conf"],
                         ["opendmarc", "-c", r + "/opendmarc.conf"],
                         ["spamass-milter", "-p", m + "/spamass.sock", "-m", "-r", str(SPAM_REJECT),
                          "--", "-U", self.tmp + "/spamd.sock"],
                         ["clamav-milter", "-c", r + "/clamav-milter.conf"]):
                self.procs.append(subprocess.Popen(argv, stdout=log, stderr=log))
        finally:
            os.umask(umask)
        for sock in ("opendkim", "opendmarc", "spamass", "clamav"):
            wait_path("%s/%s.sock" % (m, sock), sock)

    def checks(self, on):
        m = self.milt
        conf = {
            "smtpd_peername_lookup": "yes" if on else "no",
            "smtpd_client_restrictions": "reject_rbl_client bench.bl, reject_unknown_client_hostname" if on else "",
            "smtpd_helo_required": "yes",
            "smtpd_helo_restrictions": "reject_invalid_helo_hostname, reject_non_fqdn_helo_hostname" if on else "",
            "smtpd_recipient_restrictions": "check_policy_service unix:private/policyd-spf" if on else "",
            "smtpd_milters": ", ".join("unix:%s/%s.sock" % (m, k) for k in
                                       ("opendkim", "opendmarc", "spamass", "clamav")
                                       if SPAMD or k != "spamass") if on else "",
        }
        subprocess.run(["postconf", "-c", self.etc, "-e"] + ["%s = %s" % kv for kv in conf.items()], check=True)
        if not self.running:
            if not self.procs:
                self.milters()
            out = self.postfix("start", check=False)
            if out.returncode != 0:
                sys.exit("postfix did not start: %s" % out.stdout.decode())
            self.running = True
        else:
            self.postfix("reload")
            time.sleep(1.5)  # the old smtpd processes leave after their sessions
        wait_port(self.port)

    def clear(self):
        subprocess.run(["postsuper", "-c", self.etc, "-d", "ALL"], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)

    def queued(self):
        ids = [os.path.basename(f) for f in glob.glob(self.root + "/spool/hold/*")]
        if len(ids) != 1:
            return "(%d files on hold)" % len(ids)
        return subprocess.run(["postcat", "-c", self.etc, "-h", "-q", ids[0]], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT).stdout.decode("utf-8", "replace")

    def close(self):
        if self.running:
            self.postfix("stop", check=False)
            self.running = False
        for p in self.procs:
            p.terminate()
        for p in self.procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        self.procs = []


# --- the run --------------------------------------------------------------------------------

def verify(side, signed):
    """Each check of `side` really works before anything is timed."""
    side.clear()
    code, text = probe(side.port, "bench@sender.test", signed)
    head = side.queued()
    problems = [] if code == 250 else ["signed message refused: %d %s" % (code, text)]
    wanted = [r"spf=pass", r"dkim=pass", r"dmarc=pass", r"X-Virus-Scanned"] + ([r"X-Spam-Status: No"] if SPAMD else [])
    for want in wanted:
        if not re.search(want, head):
            problems.append("signed message without %r" % want)
    for what, sender, msg, source in [
            ("GTUBE", "x@plain.test", plain_message("x@plain.test", "gtube", GTUBE), "127.0.0.1"),
    ][0 if SPAMD else 1:] + [
            ("EICAR", "x@plain.test", plain_message("x@plain.test", "eicar", EICAR.decode()), "127.0.0.1"),
            ("DMARC p=reject forgery", "bench@forger.test",
             plain_message("bench@sender.test", "forgery", "not from sender.test"), "127.0.0.1"),
            ("client listed in bench.bl (127.0.0.2)", "x@plain.test",
             plain_message("x@plain.test", "listed", "from a listed address"), "127.0.0.2")]:
        code, text = probe(side.port, sender, msg, source)
        if not str(code).startswith("5"):
            problems.append("%s not refused: %d %s" % (what, code, text))
        else:
            print("  %s %s refused: %d %s" % (side.name, what, code, text.splitlines()[0] if text else ""))
    side.clear()
    if problems:
        print(head, file=sys.stderr)
        sys.exit("%s: %s" % (side.name, "; ".join(problems)))
    print("  %s: signed message accepted with spf, dkim and dmarc pass, spam and virus headers" % side.name)


def timed(side, on, n, clients, msg, shared):
    side.checks(on)
    side.clear()
    total0, shared0 = cpu_seconds(shared)
    done, secs, errors = load(side.port, n, clients, msg)
    total1, shared1 = cpu_seconds(shared)
    side.clear()
    if errors or done != n:
        sys.exit("%s checks %s: %d of %d accepted; %s" % (side.name, "on" if on else "off", done, n, errors[:3]))
    rate, own, scan = done / secs, (total1 - total0 - shared1 + shared0) / done, (shared1 - shared0) / done
    print("RESULT [%s] checks %-3s: %d msgs x %d B, %d sessions in %.2f s: %.1f msg/s; CPU/msg %.2f ms "
          "(%.2f ms %s, %.2f ms spamd, clamd and DNS)"
          % (side.name, "on" if on else "off", done, len(msg), clients, secs, rate, 1000 * (own + scan),
             1000 * own, side.name, 1000 * scan), flush=True)
    return rate, own + scan, own


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--need", action="store_true")
    ap.add_argument("--bin", default="target/release")
    ap.add_argument("--messages", type=int, default=200)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--keep", action="store_true", help="leave the temporary directory (logs) behind")
    ap.add_argument("--no-spamd", action="store_true", help="every check but SpamAssassin's, on both sides")
    a = ap.parse_args()
    global SPAMD
    SPAMD = not a.no_spamd
    need()
    if a.need:
        return
    check_namespace()
    tmp = tempfile.mkdtemp(prefix="kmp-checks-bench-")
    os.chmod(tmp, 0o755)
    procs, sides = [], []
    try:
        private_resolver(tmp)
        procs += scanners(tmp)  # spamd and clamd, shared by both sides
        kmp = Kmpromail(tmp, a.bin, 20000)
        sides.append(kmp)
        key, record = kmp.dkim_key()
        write(tmp + "/zone", "\n".join([
            "sender.test TXT v=spf1 ip4:127.0.0.1 -all",
            "_dmarc.sender.test TXT v=DMARC1; p=reject",
            "%s._domainkey.sender.test TXT %s" % (kmp.selector, record),
            "forger.test TXT v=spf1 ip4:127.0.0.1 -all",
            "mail.sender.test A 127.0.0.1",
            "1.0.0.127.in-addr.arpa PTR mail.sender.test",
            "2.0.0.127.bench.bl A 127.0.0.2",  # the RFC 5782 test entry; 127.0.0.1 is not listed
        ]) + "\n")
        procs.append(subprocess.Popen([sys.executable, HERE + "/auth_driver.py", "dns", tmp + "/dns.port",
                                       tmp + "/zone", "127.0.0.1:53"]))
        wait_path(tmp + "/dns.port", "the name server")
        shared = {p.pid for p in procs}
        signed = signed_message(key, kmp.selector)
        pf = Postfix(tmp, 20525)
        sides.append(pf)

        print("checking that every check works on both sides")
        for side in sides:
            side.checks(True)
            verify(side, signed)

        print("load average before: %s" % " ".join("%.2f" % x for x in os.getloadavg()), flush=True)
        res = {}
        for run in range(1, a.runs + 1):
            for on in (False, True):
                for side in sides:
                    res.setdefault((side.name, on), []).append(
                        timed(side, on, a.messages, a.clients, signed, shared))
        load_after = " ".join("%.2f" % x for x in os.getloadavg())
        cost, extra, own, rate_on = {}, {}, {}, {}
        for side in sides:
            best = {on: max(r for r, _, _ in res[(side.name, on)]) for on in (False, True)}
            rate_on[side.name] = best[True]
            cpu = {on: min(c for _, c, _ in res[(side.name, on)]) for on in (False, True)}
            mine = {on: min(o for _, _, o in res[(side.name, on)]) for on in (False, True)}
            cost[side.name] = 1 - best[True] / best[False]
            extra[side.name] = cpu[True] - cpu[False]
            own[side.name] = mine[True] - mine[False]
            print("RESULT [%s] cost of the checks: %.1f%% of the acceptance rate (%.1f -> %.1f msg/s); "
                  "%.2f ms more CPU per message, %.2f ms of it in %s's own processes"
                  % (side.name, 100 * cost[side.name], best[False], best[True], 1000 * extra[side.name],
                     1000 * own[side.name], side.name))

        def ratio(d):
            return "%.2f" % (d["kmpromail"] / d["postfix"]) if d["postfix"] > 0 else "n/a"
        print("RESULT cost kmpromail/postfix: %s (rate), %s (CPU per message), %s (CPU outside the shared "
              "scanners); target < 1; load average after: %s" % (ratio(cost), ratio(extra), ratio(own), load_after))
        print("RESULT checks on: kmpromail/postfix acceptance rate %.2f" % (rate_on["kmpromail"] / rate_on["postfix"]))
    finally:
        for side in reversed(sides):
            side.close()
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        if a.keep:
            print("kept %s" % tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
