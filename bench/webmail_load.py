#!/usr/bin/env python3
"""Times webmail requests: Kmpromail's kmp-webmail or Roundcube, both behind
lighttpd on loopback. See bench/README.md ("Webmail").

    webmail_load.py kmpromail|roundcube BASE_URL USER PASSWORD FOLDER UID \
        [--requests N] [--concurrency C]

USER may contain "{n}", replaced by 1..C: one account per concurrent user
(the webmail keeps at most 20 live sessions per account). For each of login, the message list (first page, by date) and opening the
message UID, N requests are made by C concurrent users, each with its own
session; the time of a request is from sending it to its last byte. Prints
one RESULT line per page with p50, p99 and requests/s.
"""
import argparse
import http.client
import re
import statistics
import sys
import threading
import time
import urllib.parse


class Http:
    """One keep-alive-less client with a cookie jar (each request a new
    connection, as a browser's first request to a CGI would cost)."""

    def __init__(self, base):
        u = urllib.parse.urlsplit(base)
        self.host, self.port = u.hostname, u.port or 80
        self.prefix = u.path.rstrip("/")
        self.cookies = {}

    def request(self, method, path, body=None, headers=None):
        h = dict(headers or {})
        if self.cookies:
            h["Cookie"] = "; ".join("%s=%s" % kv for kv in self.cookies.items())
        if body is not None:
            body = urllib.parse.urlencode(body).encode()
            h["Content-Type"] = "application/x-www-form-urlencoded"
        c = http.client.HTTPConnection(self.host, self.port, timeout=60)
        t0 = time.perf_counter()
        c.request(method, self.prefix + path, body=body, headers=h)
        r = c.getresponse()
        data = r.read()
        dt = time.perf_counter() - t0
        for k, v in r.getheaders():
            if k.lower() == "set-cookie":
                name, _, rest = v.partition("=")
                value = rest.split(";", 1)[0]
                if value in ("", "deleted"):
                    self.cookies.pop(name.strip(), None)
                else:
                    self.cookies[name.strip()] = value
        c.close()
        return r.status, dict((k.lower(), v) for k, v in r.getheaders()), data, dt


class Roundcube:
    def __init__(self, base, user, password, folder):
        self.h = Http(base)
        self.user, self.password, self.folder = user, password, folder
        self.token = None

    def login(self):
        st, _, page, _ = self.h.request("GET", "/?_task=login")
        m = re.search(rb'name="_token" value="([^"]+)"', page)
        if not m:
            raise RuntimeError("roundcube: no login token (status %d)" % st)
        st, hdr, _, dt = self.h.request("POST", "/?_task=login", {
            "_token": m.group(1).decode(), "_task": "login", "_action": "login",
            "_timezone": "UTC", "_url": "", "_user": self.user, "_pass": self.password})
        if st not in (301, 302) or "_task=mail" not in hdr.get("location", ""):
            raise RuntimeError("roundcube: login refused (status %d)" % st)
        st, _, page, _ = self.h.request("GET", "/?_task=mail&_mbox=" + urllib.parse.quote(self.folder))
        m = re.search(rb'"request_token":"([^"]+)"', page)
        if not m:
            raise RuntimeError("roundcube: no request token after login")
        self.token = m.group(1).decode()
        return dt

    def list(self):
        st, _, body, dt = self.h.request(
            "GET", "/?_task=mail&_action=list&_mbox=%s&_page=1&_remote=1&_sort=date_DESC"
            % urllib.parse.quote(self.folder),
            headers={"X-Roundcube-Request": self.token})
        if st != 200 or b"add_message_row" not in body:
            raise RuntimeError("roundcube: list failed (status %d)" % st)
        return dt

    def show(self, uid, marker):
        st, _, body, dt = self.h.request(
            "GET", "/?_task=mail&_action=show&_uid=%d&_mbox=%s" % (uid, urllib.parse.quote(self.folder)))
        if st != 200 or marker.encode() not in body:
            raise RuntimeError("roundcube: show failed (status %d)" % st)
        return dt


class Kmpromail:
    """kmp-webmail's pages: the paths are the ones the webmail serves
    (see man/man8/kmp-webmail.8)."""

    def __init__(self, base, user, password, folder):
        self.h = Http(base)
        self.user, self.password, self.folder = user, password, folder

    def login(self):
        st, _, page, _ = self.h.request("GET", "/login")
        m = re.search(rb'name="csrf" value="([^"]+)"', page)
        form = {"user": self.user, "password": self.password}
        if m:
            form["csrf"] = m.group(1).decode()
        st, hdr, _, dt = self.h.request("POST", "/login", form)
        if st not in (302, 303) or not self.h.cookies:
            raise RuntimeError("kmpromail: login refused (status %d)" % st)
        return dt

    def list(self):
        st, _, body, dt = self.h.request(
            "GET", "/list?folder=%s&sort=date" % urllib.parse.quote(self.folder))
        if st != 200 or b"<tr" not in body:
            raise RuntimeError("kmpromail: list failed (status %d)" % st)
        self.listed = body
        return dt

    def show(self, uid, marker):
        # The message's link on the list page, as a browser follows it (it
        # tells the page where the message is in the list, for next and
        # previous); the bare address when the list does not show it.
        path = "/read?folder=%s&uid=%d" % (urllib.parse.quote(self.folder), uid)
        m = re.search(rb'href="[^"]*(/read\?[^"]*uid=%d&amp;[^"]*)"' % uid,
                      getattr(self, "listed", b""))
        if m:
            path = m.group(1).decode().replace("&amp;", "&")
        st, _, body, dt = self.h.request("GET", path)
        if st != 200:
            raise RuntimeError("kmpromail: read failed (status %d)" % st)
        # The HTML body is in its own frame: time that request too.
        m = re.search(rb'<iframe[^>]*src="([^"]+)"', body)
        if m:
            st2, _, frame, dt2 = self.h.request("GET", m.group(1).decode().replace("&amp;", "&"))
            if st2 != 200 or marker.encode() not in frame:
                raise RuntimeError("kmpromail: frame failed (status %d)" % st2)
            dt += dt2
        elif marker.encode() not in body:
            raise RuntimeError("kmpromail: message text not shown")
        return dt


def run(kind, args):
    cls = {"kmpromail": Kmpromail, "roundcube": Roundcube}[kind]
    times = {"login": [], "list": [], "read": []}
    errors = []
    per = max(1, args.requests // args.concurrency)
    lock = threading.Lock()

    def user(n):
        # USER may name one account per concurrent user: "bench{n}@...".
        login = args.user.replace("{n}", str(n + 1))
        try:
            for _ in range(per):
                c = cls(args.base, login, args.password, args.folder)
                t_login = c.login()
                t_list = c.list()
                t_read = c.show(args.uid, args.marker)
                with lock:
                    times["login"].append(t_login)
                    times["list"].append(t_list)
                    times["read"].append(t_read)
        except Exception as e:  # noqa: BLE001 - every failure is reported
            with lock:
                errors.append(str(e))

    t0 = time.perf_counter()
    threads = [threading.Thread(target=user, args=(n,)) for n in range(args.concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    for page, ts in times.items():
        if not ts:
            continue
        ts.sort()
        p99 = ts[min(len(ts) - 1, int(len(ts) * 0.99))]
        print("RESULT [%s] %s: %d requests, %d users: p50 %.1f ms, p99 %.1f ms"
              % (kind, page, len(ts), args.concurrency, statistics.median(ts) * 1000, p99 * 1000))
    n = sum(len(ts) for ts in times.values())
    print("RESULT [%s] all: %d requests in %.1f s (%.0f/s), %d errors%s"
          % (kind, n, wall, n / wall, len(errors), (": " + errors[0]) if errors else ""))
    return 1 if errors else 0


def main():
    p = argparse.ArgumentParser()
    p.add_argument("kind", choices=["kmpromail", "roundcube"])
    p.add_argument("base")
    p.add_argument("user")
    p.add_argument("password")
    p.add_argument("folder")
    p.add_argument("uid", type=int)
    p.add_argument("--marker", default="BENCH-MARKER")
    p.add_argument("--requests", type=int, default=100)
    p.add_argument("--concurrency", type=int, default=1)
    args = p.parse_args()
    sys.exit(run(args.kind, args))


if __name__ == "__main__":
    main()
