#!/usr/bin/env python3
"""bench/imap_sort.py - time SORT on a large folder, as a webmail asks it.

    python3 bench/imap_sort.py populate DIR COUNT
    python3 bench/imap_sort.py time --port P --user U [--password secret]
                               [--folder INBOX] [--label NAME]

`populate` writes COUNT messages into the Maildir DIR with Python's mailbox
module (so any Maildir program's files do): varied senders, recipients,
dates and subjects (replies, forwards, list tags, and a fifth in GB2312,
GBK or Big5 encoded words), sizes from 0.3 to 8 KB.

`time` logs in, selects the folder and times, one line each:
- cold: the first SORT (DATE) of the first session on this folder (for
  kmp-imapd with no `kmpromail-sortcache` file yet, so each header is read
  and parsed once; Dovecot builds its cache fields here);
- warm: SORT by DATE, REVERSE DATE, FROM, SUBJECT and SIZE in that session;
- new session: logout, login, select, SORT (DATE) again (kmp-imapd reads
  the keys from the cache file beside the UID index, not the messages).
SELECT time is printed too, so the cost of the SORT itself is apart.
"""

import argparse
import imaplib
import random
import socket
import sys
import time

CRITERIA = ["(DATE)", "(REVERSE DATE)", "(FROM)", "(SUBJECT)", "(SIZE)"]


def populate(path, count):
    import base64
    import mailbox

    import os
    os.makedirs(os.path.dirname(path.rstrip("/")), exist_ok=True)
    md = mailbox.Maildir(path, create=True)
    r = random.Random(5)
    words = ["budget", "meeting", "report", "invoice", "holiday", "release", "schedule", "lunch"]
    cn = ["会议通知", "周报", "项目进度", "报销单", "放假安排"]
    names = ["Alice", "Bob", "Carol", "Dave", "Erin", "Frank", "Grace", "Heidi"]
    for i in range(count):
        if i % 5 == 0:
            cs = ("gb2312", "gbk", "big5")[i % 3]
            text = r.choice(cn)
            if cs == "big5":
                text = text.replace("会议通知", "會議通知").replace("周报", "週報").replace(
                    "项目进度", "項目進度").replace("报销单", "報銷單").replace("放假安排", "放假安排")
            subject = "=?%s?b?%s?=" % (cs, base64.b64encode(text.encode(cs)).decode())
        else:
            subject = "%s %d" % (r.choice(words), r.randint(1, 500))
        subject = r.choice(["", "", "Re: ", "Fwd: ", "[list] Re: "]) + subject
        name = r.choice(names)
        day = r.randint(1, 28)
        hour = r.randint(0, 23)
        body = ("line of text %d\n" % i) * r.randint(15, 400)
        m = mailbox.MaildirMessage(
            "From: %s <%s%d@example.test>\nTo: user%d@example.test\n"
            "Subject: %s\nDate: Mon, %d Jan 2024 %02d:%02d:00 +0000\n"
            "Message-ID: <%d@bench>\n\n%s"
            % (name, name.lower(), i % 97, i % 13, subject, day, hour, i % 60, i, body)
        )
        m.set_subdir("cur")
        if r.random() < 0.5:
            m.set_flags("S")
        md.add(m)


def sort_once(M, crit):
    t = time.monotonic()
    typ, d = M._simple_command("SORT", crit, "UTF-8", "ALL")
    dt = time.monotonic() - t
    if typ != "OK":
        raise SystemExit("SORT %s: %s %s" % (crit, typ, d))
    got = M.untagged_responses.pop("SORT", [b""])[0] or b""
    return dt, len(got.split())


def session(args):
    M = imaplib.IMAP4("127.0.0.1", args.port)
    M.login(args.user, args.password)
    t = time.monotonic()
    typ, d = M.select(args.folder, readonly=True)
    if typ != "OK":
        raise SystemExit("SELECT: %s" % d)
    return M, time.monotonic() - t


def timing(args):
    socket.setdefaulttimeout(600)
    rows = []
    M, sel = session(args)
    rows.append(("cold", "SELECT", sel, None))
    # Only the first SORT of a session finds no keys in memory.
    dt, n = sort_once(M, CRITERIA[0])
    rows.append(("cold", CRITERIA[0], dt, n))
    for c in CRITERIA:
        dt, n = sort_once(M, c)
        rows.append(("warm", c, dt, n))
    M.logout()
    M, sel = session(args)
    rows.append(("new session", "SELECT", sel, None))
    dt, n = sort_once(M, CRITERIA[0])
    rows.append(("new session", CRITERIA[0], dt, n))
    M.logout()
    for phase, what, dt, n in rows:
        print("%-10s %-12s %-15s %8.3f s%s" % (args.label, phase, what, dt,
                                               "" if n is None else "  (%d messages)" % n))


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    pp = sub.add_parser("populate")
    pp.add_argument("dir")
    pp.add_argument("count", type=int)
    pt = sub.add_parser("time")
    pt.add_argument("--port", type=int, required=True)
    pt.add_argument("--user", required=True)
    pt.add_argument("--password", default="secret")
    pt.add_argument("--folder", default="INBOX")
    pt.add_argument("--label", default="server")
    args = p.parse_args()
    if args.cmd == "populate":
        populate(args.dir, args.count)
    else:
        timing(args)


if __name__ == "__main__":
    sys.exit(main())
