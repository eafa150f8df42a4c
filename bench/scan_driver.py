#!/usr/bin/env python3
"""Acceptance rate of kmp-smtpd with the [scan] checks off and on (bench/scan.sh)."""
import argparse, os, shutil, signal, smtplib, socket, struct, subprocess, sys, tempfile, threading, time

EICAR = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"

def dns_server(sock):
    """Answers every A query with NXDOMAIN except *.bench.bl (listed: 127.0.0.2)."""
    def run():
        while True:
            try:
                data, peer = sock.recvfrom(1500)
            except OSError:
                return
            qid, flags = data[:2], 0x8180
            # question: from byte 12 to the end of QNAME + 4
            i = 12
            labels = []
            while data[i] != 0:
                labels.append(data[i + 1:i + 1 + data[i]].decode())
                i += data[i] + 1
            q = data[12:i + 5]
            name = ".".join(labels).lower()
            if name.endswith("bench.bl") and not name.startswith("1.0.0.127"):
                ans = b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04\x7f\x00\x00\x02"
                sock.sendto(qid + struct.pack(">HHHHH", flags, 1, 1, 0, 0) + q + ans, peer)
            else:
                sock.sendto(qid + struct.pack(">HHHHH", 0x8183, 1, 0, 0, 0) + q, peer)
    threading.Thread(target=run, daemon=True).start()

def wait_socket(path, req, want, limit=120):
    end = time.time() + limit
    while time.time() < end:
        try:
            s = socket.socket(socket.AF_UNIX)
            s.settimeout(5)
            s.connect(path)
            s.sendall(req)
            if want in s.recv(256):
                return
        except OSError:
            pass
        time.sleep(0.3)
    sys.exit("%s never answered" % path)

def scanners(tmp):
    os.chmod(tmp, 0o755)
    conf = os.path.join(tmp, "sa")
    os.mkdir(conf)
    for f in os.listdir("/etc/spamassassin"):
        if f.endswith(".pre"):
            shutil.copy(os.path.join("/etc/spamassassin", f), conf)
    open(os.path.join(conf, "local.cf"), "w").write("")
    args = ["/usr/sbin/spamd", "--siteconfigpath=" + conf, "-L", "-x", "--syslog=stderr",
            "--max-children=4", "--socketpath=" + tmp + "/spamd.sock", "--pidfile=" + tmp + "/spamd.pid"]
    if os.getuid() == 0:
        args += ["-u", "nobody"]
    spamd = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    db = os.path.join(tmp, "db")
    os.mkdir(db)
    open(os.path.join(db, "kmp.ndb"), "w").write("Kmp-Eicar-Test:0:*:%s\n" % EICAR.hex())
    cc = os.path.join(tmp, "clamd.conf")
    open(cc, "w").write("LocalSocket %s/clamd.sock\nDatabaseDirectory %s\nForeground yes\nTemporaryDirectory %s\n%s"
                        % (tmp, db, tmp, "User root\n" if os.getuid() == 0 else ""))
    clamd = subprocess.Popen(["/usr/sbin/clamd", "-c", cc], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_socket(tmp + "/spamd.sock", b"PING SPAMC/1.5\r\n\r\n", b"PONG")
    wait_socket(tmp + "/clamd.sock", b"zPING\0", b"PONG")
    return [spamd, clamd]

def message(i):
    body = ("Hello, this is message %d of the benchmark.\n" % i) * 60
    return ("From: <sender%d@remote.test>\r\nTo: <u@example.test>\r\nSubject: bench %d\r\n"
            "Date: Sat, 05 Dec 2026 08:00:00 +0000\r\nMessage-ID: <%d@bench>\r\n\r\n%s" % (i % 50, i, i, body))

def send_all(port, n, clients):
    done, errors = [0], []
    lock = threading.Lock()
    def worker(k):
        s = smtplib.SMTP("127.0.0.1", port, local_hostname="mail.remote.test", timeout=120)
        for i in range(k, n, clients):
            try:
                s.sendmail("sender%d@remote.test" % (i % 50), ["u@example.test"], message(i))
                with lock:
                    done[0] += 1
            except smtplib.SMTPException as e:
                errors.append(str(e))
        s.quit()
    t0 = time.time()
    ts = [threading.Thread(target=worker, args=(k,)) for k in range(clients)]
    for t in ts: t.start()
    for t in ts: t.join()
    return done[0], time.time() - t0, errors

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="target/release")
    ap.add_argument("--messages", type=int, default=2000)
    ap.add_argument("--clients", type=int, default=8)
    a = ap.parse_args()
    ctl = os.path.abspath(os.path.join(a.bin, "kmpctl"))
    tmp = tempfile.mkdtemp(prefix="kmp-scan-bench-")
    procs = []
    try:
        procs = scanners(tmp)
        dns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        dns.bind(("127.0.0.1", 0))
        dns_server(dns)
        inst = os.path.join(tmp, "inst")
        base = 42000 + os.getpid() % 1000 * 10
        run = lambda *args: subprocess.run([ctl, "-c", inst + "/kmpromail.toml"] + list(args), check=True,
                                           stdout=subprocess.DEVNULL)
        subprocess.run([ctl, "init", inst, "--port-base", str(base), "--hostname", "mx.example.test"],
                       check=True, stdout=subprocess.DEVNULL)
        run("domain", "add", "example.test")
        run("user", "add", "u@example.test")
        conf = open(inst + "/kmpromail.toml").read()
        print("load average before: %.2f" % os.getloadavg()[0])
        results = {}
        for label, scan in [("off", ""), ("on", (
                '\n[scan]\nspamd = "%s/spamd.sock"\nclamd = "%s/clamd.sock"\ndns_servers = ["%s:%d"]\n'
                'dnsbl = ["bench.bl 3"]\nhelo = "score"\nfcrdns = "score"\n') % (tmp, tmp, *dns.getsockname()))]:
            open(inst + "/kmpromail.toml", "w").write(conf + scan)
            run("start")
            try:
                n, secs, errors = send_all(base + 25, a.messages, a.clients)
            finally:
                run("stop")
            results[label] = n / secs
            print("checks %-3s: %d messages in %.1f s: %.0f msg/s%s" % (
                label, n, secs, n / secs, (", %d refused (%s)" % (len(errors), errors[0])) if errors else ""))
        print("cost of the checks: %.1f%%" % (100 * (1 - results["on"] / results["off"])))
        print("load average after: %.2f" % os.getloadavg()[0])
    finally:
        for p in procs:
            p.terminate()
            p.wait()
        shutil.rmtree(tmp, ignore_errors=True)

if __name__ == "__main__":
    main()
