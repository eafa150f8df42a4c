#!/usr/bin/env python3
"""auth_driver.py - the load of bench/auth.sh.

  auth_driver.py dns PORTFILE ZONEFILE [ADDR:PORT]
                                            serve ZONEFILE (lines "name TXT text",
                                            "name A 1.2.3.4", "name PTR host.name") over UDP
                                            and TCP on 127.0.0.1 (a free port unless
                                            ADDR:PORT is given), write the port
  auth_driver.py load HOST PORT N CONNS MSG send the message file MSG N times over CONNS
                                            sessions; print RESULT line with messages/s

Standard library only, except that the message is signed beforehand (dkimpy).
Every loop is bounded.
"""
import socket
import socketserver
import smtplib
import struct
import sys
import threading
import time


QTYPES = {"A": 1, "PTR": 12, "TXT": 16}


def rdata(qtype, text):
    """The wire form of one record's data."""
    if qtype == 1:
        return socket.inet_aton(text)
    if qtype == 12:
        return b"".join(bytes([len(label)]) + label.encode() for label in text.rstrip(".").split(".")) + b"\0"
    t = text.encode()
    return b"".join(bytes([len(t[i:i + 255])]) + t[i:i + 255] for i in range(0, len(t), 255))


def dns(portfile, zonefile, listen="127.0.0.1:0"):
    zone = {}
    for line in open(zonefile):
        name, kind, text = line.rstrip("\n").split(" ", 2)
        zone.setdefault(name.lower().rstrip("."), []).append((QTYPES[kind], rdata(QTYPES[kind], text)))

    def answer(q):
        if len(q) < 17:
            return None
        qid = q[:2]
        pos, labels = 12, []
        while pos < len(q) and q[pos] != 0 and len(labels) < 64:
            n = q[pos]
            labels.append(q[pos + 1:pos + 1 + n].decode("ascii", "replace"))
            pos += n + 1
        qend = pos + 5
        qtype = struct.unpack(">H", q[pos + 1:pos + 3])[0]
        name = ".".join(labels).lower()
        texts = zone.get(name)
        rcode = 0 if texts is not None else 3
        answers = b""
        count = 0
        for kind, data in texts or []:
            if kind == qtype:
                answers += b"\xc0\x0c" + struct.pack(">HHIH", kind, 1, 300, len(data)) + data
                count += 1
        header = qid + struct.pack(">HHHHH", 0x8180 | rcode, 1, count, 0, 0)
        return header + q[12:qend] + answers

    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    addr, _, want = listen.rpartition(":")
    udp.bind((addr, int(want)))
    port = udp.getsockname()[1]

    class Tcp(socketserver.BaseRequestHandler):
        def handle(self):
            for _ in range(100):
                head = self.request.recv(2)
                if len(head) < 2:
                    return
                n = struct.unpack(">H", head)[0]
                q = b""
                while len(q) < n:
                    more = self.request.recv(n - len(q))
                    if not more:
                        return
                    q += more
                r = answer(q)
                if r is None:
                    return
                self.request.sendall(struct.pack(">H", len(r)) + r)

    socketserver.ThreadingTCPServer.allow_reuse_address = True
    tcp = socketserver.ThreadingTCPServer((addr, port), Tcp)
    threading.Thread(target=tcp.serve_forever, daemon=True).start()
    open(portfile, "w").write(str(port))
    for _ in range(10_000_000):
        q, peer = udp.recvfrom(4096)
        r = answer(q)
        if r is not None:
            udp.sendto(r, peer)


def load(host, port, n, conns, msgfile):
    msg = open(msgfile, "rb").read()
    per = [n // conns + (1 if i < n % conns else 0) for i in range(conns)]
    errors = []

    def worker(k):
        try:
            s = smtplib.SMTP(host, port, timeout=60)
            s.ehlo("client.sender.test")
            for _ in range(k):
                s.sendmail("bench@sender.test", ["u@example.test"], msg)
                # A session takes smtpd.max_messages_per_connection (100): start anew.
                if s.noop()[0] != 250:
                    break
            s.quit()
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(repr(e))

    t0 = time.monotonic()
    threads = [threading.Thread(target=worker, args=(k,)) for k in per]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    dt = time.monotonic() - t0
    if errors:
        print("errors:", errors[:3], file=sys.stderr)
        sys.exit(1)
    print(f"RESULT: {n} messages over {conns} sessions in {dt:.2f} s: {n / dt:.0f} messages/s")


if __name__ == "__main__":
    if sys.argv[1] == "dns":
        dns(*sys.argv[2:5])
    else:
        load(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), sys.argv[6])
