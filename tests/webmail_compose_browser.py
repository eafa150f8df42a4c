"""Writing mail in a real browser: Debian's chromium, headless, driven by
python3-selenium through chromium-driver, against the webmail under
lighttpd, kmp-imapd and kmp-smtpd. Run by tests/webmail_compose.rs:

    webmail_compose_browser.py URL IMAP_PORT POP3_PORT LIMIT [SHOTS_DIR]

Composes a message with two attachments (one with a Chinese name), checks
that a file above the limit (LIMIT bytes) is refused in the page before
any upload, saves the draft, reopens it from the Drafts list, changes it,
sends it; the recipients read it over IMAP and POP3 and the attachment
bytes match. Then replies to all and forwards as attachment a message in
INBOX; the forwarded original arrives byte for byte. With SHOTS_DIR,
saves compose.png and compose-phone.png there. Prints "ok" at the end.
"""

import email
import email.policy
import imaplib
import os
import poplib
import re
import sys
import tempfile
import time

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

URL, IMAP_PORT, POP3_PORT, LIMIT = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
SHOTS = sys.argv[5] if len(sys.argv) > 5 else None
USER, PASSWORD = "u@example.test", "secret"

ORIGINAL = (b"From: =?GB2312?B?sauyqg==?= <bob@example.test>\r\n"
            b"To: u@example.test, dave@example.test\r\n"
            b"Cc: carol@example.test\r\n"
            b"Subject: =?GB2312?B?yM7O8cfltaU=?=\r\n"
            b"Message-ID: <browser-orig@example.test>\r\n"
            b"Date: Sat, 05 Dec 2026 03:00:00 +0000\r\n"
            b"Content-Type: text/plain; charset=GB2312\r\n\r\n"
            + "中文正文".encode("gb2312") + b"\r\n")


def imap(user=USER):
    c = imaplib.IMAP4("127.0.0.1", IMAP_PORT)
    c.login(user, PASSWORD)
    return c


def wait_mail(user, pred, what):
    for _ in range(300):
        c = imap(user)
        c.select("INBOX")
        typ, d = c.uid("SEARCH", None, "ALL")
        for uid in d[0].split():
            typ, f = c.uid("FETCH", uid, "(BODY.PEEK[])")
            raw = f[0][1]
            msg = email.message_from_bytes(raw, policy=email.policy.default)
            if pred(msg, raw):
                c.logout()
                return msg, raw
        c.logout()
        time.sleep(0.1)
    raise AssertionError("no %s for %s" % (what, user))


def browser():
    o = webdriver.ChromeOptions()
    o.binary_location = "/usr/bin/chromium"
    for a in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
              "--window-size=1200,900", "--lang=en-US", "--no-first-run"]:
        o.add_argument(a)
    o.add_experimental_option("prefs", {"intl.accept_languages": "en-US,en"})
    d = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=o)
    d.set_page_load_timeout(60)
    return d


def value(d, id_):
    return d.find_element(By.ID, id_).get_attribute("value")


def fill(d, id_, text):
    e = d.find_element(By.ID, id_)
    e.clear()
    e.send_keys(text)


def click(d, id_, until):
    """Clicks element id_ and waits for a page whose URL holds `until`."""
    d.find_element(By.ID, id_).click()
    try:
        WebDriverWait(d, 30).until(lambda d: until in d.current_url)
    except Exception:
        raise AssertionError("after %s: %s\n%s" % (id_, d.current_url, d.page_source[:3000]))


def main():
    tmp = tempfile.mkdtemp()
    a_name, b_name = "季度报告.txt", "data.bin"
    a_bytes = "第一季度\r\n收入 100\r\n".encode("utf-8")
    b_bytes = bytes((i * 31) % 256 for i in range(50000))
    big = os.path.join(tmp, "big.bin")
    for name, data in ((a_name, a_bytes), (b_name, b_bytes), ("big.bin", b"x" * (LIMIT + 1))):
        with open(os.path.join(tmp, name), "wb") as f:
            f.write(data)
    c = imap()
    typ, data = c.append("INBOX", None, None, ORIGINAL)
    assert typ == "OK", data
    orig_uid = re.search(rb"APPENDUID \d+ (\d+)", data[0]).group(1).decode()
    c.logout()

    d = browser()
    try:
        d.get(URL + "/login")
        d.find_element(By.NAME, "user").send_keys(USER)
        d.find_element(By.NAME, "password").send_keys(PASSWORD)
        d.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
        WebDriverWait(d, 20).until(lambda d: "/folders" in d.current_url)
        d.get(URL + "/compose")
        assert d.find_element(By.ID, "compose"), d.page_source
        # A file above the limit: refused in the page, nothing uploaded.
        d.find_element(By.ID, "files").send_keys(big)
        warn = d.find_element(By.ID, "too-large")
        assert warn.is_displayed(), "the limit is checked on file choice"
        assert value(d, "files") == "", "the file is taken off the form"
        fill(d, "to", "Bob <bob@example.test>")
        fill(d, "cc", "carol@example.test")
        fill(d, "subject", "浏览器 test")
        fill(d, "body", "第一行\nsecond line\n")
        Select(d.find_element(By.ID, "priority")).select_by_value("high")
        d.find_element(By.ID, "files").send_keys(
            os.path.join(tmp, a_name) + "\n" + os.path.join(tmp, b_name))
        assert not d.find_element(By.ID, "too-large").is_displayed()
        click(d, "save", "/compose?draft=")
        listed = [e.text for e in d.find_elements(By.CSS_SELECTOR, "#attached .name")]
        assert listed == [a_name, b_name], listed
        if SHOTS:
            for name, w in (("compose.png", 1200), ("compose-phone.png", 390)):
                # The whole page, the attachments below the text included.
                d.set_window_size(w, 900)
                time.sleep(0.3)
                h = d.execute_script("return document.documentElement.scrollHeight")
                d.set_window_size(w, min(h + 140, 2400))
                time.sleep(0.3)
                d.save_screenshot(os.path.join(SHOTS, name))
            d.set_window_size(1200, 900)
        # Reopen it from the Drafts list.
        d.get(URL + "/list?folder=Drafts")
        links = d.find_elements(By.CSS_SELECTOR, "td.subject a")
        assert len(links) == 1, d.page_source
        links[0].click()
        WebDriverWait(d, 20).until(lambda d: "/compose?draft=" in d.current_url)
        assert value(d, "subject") == "浏览器 test"
        assert value(d, "to") == "Bob <bob@example.test>", value(d, "to")
        fill(d, "subject", "浏览器 sent")
        body = d.find_element(By.ID, "body")
        body.send_keys("third line\n")
        click(d, "send", "done=sent")

        def is_sent(msg, raw):
            return msg["Subject"] == "浏览器 sent"

        for user in ("bob@example.test", "carol@example.test"):
            msg, raw = wait_mail(user, is_sent, "the sent mail")
            atts = {a.get_filename(): a.get_payload(decode=True) for a in msg.iter_attachments()}
            assert atts == {a_name: a_bytes, b_name: b_bytes}, list(atts)
            text = msg.get_body(("plain",)).get_content()
            assert "第一行" in text and "third line" in text, text
            assert msg["X-Priority"].startswith("1")
        p = poplib.POP3("127.0.0.1", POP3_PORT)
        p.user("bob@example.test")
        p.pass_(PASSWORD)
        resp, lines, octets = p.retr(1)
        p.quit()
        msg = email.message_from_bytes(b"\r\n".join(lines) + b"\r\n", policy=email.policy.default)
        atts = {a.get_filename(): a.get_payload(decode=True) for a in msg.iter_attachments()}
        assert atts == {a_name: a_bytes, b_name: b_bytes}, list(atts)
        c = imap()
        c.select("Drafts")
        assert c.uid("SEARCH", None, "ALL")[1][0].split() == [], "the draft is gone"
        c.logout()

        # Reply to all: bob, dave and carol, not u.
        d.get(URL + "/read?folder=INBOX&uid=" + orig_uid)
        click(d, "reply-all", "reply=")
        assert value(d, "to") == "鲍勃 <bob@example.test>", value(d, "to")
        assert value(d, "cc") == "dave@example.test, carol@example.test", value(d, "cc")
        assert "> 中文正文" in value(d, "body")
        d.find_element(By.ID, "body").send_keys("OK from the browser")
        click(d, "send", "done=sent")
        msg, raw = wait_mail("dave@example.test",
                             lambda m, r: m["In-Reply-To"] == "<browser-orig@example.test>", "the reply")
        assert msg["Subject"] == "Re: 任务清单", msg["Subject"]

        # Forward as attachment to dave: the original, byte for byte.
        d.get(URL + "/read?folder=INBOX&uid=" + orig_uid)
        click(d, "forward-attachment", "forward=")
        fill(d, "to", "dave@example.test")
        click(d, "send", "done=sent")
        msg, raw = wait_mail("dave@example.test",
                             lambda m, r: m.get_content_type() == "multipart/mixed", "the forward")
        part = raw.split(b"Content-Type: message/rfc822", 1)[1].split(b"\r\n\r\n", 1)[1]
        assert part.startswith(ORIGINAL), part[:300]
        c = imap()
        c.select("INBOX")
        flags = c.uid("FETCH", orig_uid, "(FLAGS)")[1][0].decode()
        assert "\\Answered" in flags and "$Forwarded" in flags, flags
        c.logout()
    finally:
        d.quit()
    print("ok")


if __name__ == "__main__":
    main()
