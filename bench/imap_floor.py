#!/usr/bin/env python3
"""The IMAP part of a webmail request, timed alone: what kmp-webmail's pages
ask kmp-imapd, sent by Python's imaplib. See bench/README.md ("Webmail").

    bench/imap_floor.py PORT USER PASSWORD [--requests N]

Prints the p50 of: connect + LOGIN + LOGOUT; the same with the session's
GETMETADATA; and the list page's commands (GETMETADATA, EXAMINE INBOX, an
ESORT of the first 25 by date, a FETCH of their summaries).
"""
import argparse
import imaplib
import time

imaplib.Commands["GETMETADATA"] = ("AUTH", "SELECTED")
imaplib.Commands["UID SORT"] = ("SELECTED",)
SESSION = "(/private/vendor/kmpromail/webmail/session/x /private/vendor/kmpromail/webmail/prefs)"


def p50(f, n):
    ts = []
    for _ in range(n):
        t0 = time.perf_counter()
        f()
        ts.append(time.perf_counter() - t0)
    ts.sort()
    return ts[len(ts) // 2] * 1000


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("port", type=int)
    ap.add_argument("user")
    ap.add_argument("password")
    ap.add_argument("--requests", type=int, default=200)
    a = ap.parse_args()

    def connect():
        c = imaplib.IMAP4("127.0.0.1", a.port)
        c.login(a.user, a.password)
        return c

    def login():
        connect().logout()

    def login_meta():
        c = connect()
        c._simple_command("GETMETADATA", '""', SESSION)
        c.logout()

    def list_page():
        c = connect()
        c._simple_command("GETMETADATA", '""', SESSION)
        c.select("INBOX", readonly=True)
        typ, _ = c._simple_command("UID SORT", "RETURN (COUNT PARTIAL 1:25)", "(REVERSE DATE)", "UTF-8", "ALL")
        assert typ == "OK"
        uids = []
        for line in c.untagged_responses.pop("ESEARCH", []):
            words = line.decode().split()
            if "PARTIAL" in words:
                uids = words[words.index("PARTIAL") + 2].rstrip(")").split(",")
        assert uids, "no messages in the INBOX"
        c.uid("FETCH", ",".join(uids), "(UID FLAGS RFC822.SIZE INTERNALDATE ENVELOPE)")
        c.logout()

    for name, f in (("login", login), ("login + GETMETADATA", login_meta), ("list page's commands", list_page)):
        print("RESULT imap floor: %s p50 %.2f ms (%d requests)" % (name, p50(f, a.requests), a.requests))


if __name__ == "__main__":
    main()
