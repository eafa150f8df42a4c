"""kmp-webmail in a real browser: Debian's chromium, headless, driven by
python3-selenium through chromium-driver, against the webmail under
lighttpd and a real kmp-imapd. Run by tests/webmail_browser.rs:

    webmail_browser.py URL IMAP_PORT MAIL_DIR XSS_FILE [SHOTS_DIR]

Puts the decoding corpus (MAIL_DIR) in INBOX and the XSS corpus (XSS_FILE)
in a folder of its own over IMAP, then logs in, lists, sorts, reads
messages in GB2312, Big5, HZ and no declared charset, checks a cid: image
loaded in the sandboxed frame, downloads an attachment and compares its
bytes, moves and deletes, searches, opens every XSS vector and checks that
nothing ran, logs out and checks the session is dead. With SHOTS_DIR,
saves screenshots of the mail pages at desktop and phone sizes.
Prints "ok" at the end; any failure is an exception.
"""

import base64
import imaplib
import os
import re
import sys
import tempfile
import time

from selenium import webdriver
from selenium.common.exceptions import NoAlertPresentException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

URL, IMAP_PORT, MAIL_DIR, XSS_FILE = sys.argv[1:5]
SHOTS = sys.argv[5] if len(sys.argv) > 5 else None
USER, PASSWORD = "u@example.test", "secret"

CORPUS = ["gb2312.eml", "big5.eml", "hz.eml", "undeclared-gbk.eml",
          "related-cid.eml", "base64-attachment.eml", "rfc2231-attachment.eml",
          "rfc2047-names.eml", "alternative.eml", "gbk.eml"]
UID = {name: i + 1 for i, name in enumerate(CORPUS)}

# Vectors of our own whose effect, if any script ran, would be visible.
EFFECT_VECTORS = [
    ("title by script", "<script>document.title='XSS'</script>"),
    ("title by onerror", "<img src=x onerror=\"document.title='XSS'\">"),
    ("parent title by svg", "<svg onload=\"parent.document.title='XSS'\"></svg>"),
    ("top title by body", "<body onload=\"top.document.title='XSS'\">x</body>"),
]


def imap():
    c = imaplib.IMAP4("127.0.0.1", int(IMAP_PORT))
    c.login(USER, PASSWORD)
    return c


def crlf(b):
    return re.sub(rb"(?<!\r)\n", b"\r\n", b)


def vectors():
    """(name, charset, bytes) of every vector in the XSS corpus."""
    out, cur = [], None
    for line in open(XSS_FILE, "rb").read().split(b"\n"):
        if line.startswith(b"%% "):
            if cur:
                out.append(cur)
            parts = [p.strip() for p in line[3:].decode().split(";")]
            charset, escaped = "utf-8", False
            for p in parts[1:]:
                if p.startswith("charset="):
                    charset = p[8:]
                elif p == "escaped":
                    escaped = True
            cur = [parts[0], charset, escaped, []]
        elif cur:
            cur[3].append(line)
    if cur:
        out.append(cur)
    result = []
    for name, charset, escaped, lines in out:
        body = b"\n".join(lines)
        if escaped:
            body = re.sub(rb"\\x([0-9a-fA-F]{2})", lambda m: bytes([int(m.group(1), 16)]), body)
        result.append((name, charset, body))
    for name, html in EFFECT_VECTORS:
        result.append((name, "utf-8", html.encode()))
    return result


def html_mail(name, charset, body):
    b64 = base64.encodebytes(body).decode()
    return crlf((
        "From: Attacker <evil@example.test>\n"
        "To: u@example.test\n"
        "Subject: xss %s\n"
        "Date: Sat, 05 Dec 2026 09:30:00 +0000\n"
        "MIME-Version: 1.0\n"
        "Content-Type: text/html; charset=\"%s\"\n"
        "Content-Transfer-Encoding: base64\n\n%s" % (name, charset, b64)).encode())


def seed():
    c = imap()
    for name in CORPUS:
        typ, data = c.append("INBOX", None, None, crlf(open(os.path.join(MAIL_DIR, name), "rb").read()))
        assert typ == "OK", data
    assert c.create("XSS")[0] == "OK"
    n = 0
    for name, charset, body in vectors():
        assert c.append("XSS", None, None, html_mail(name, charset, body))[0] == "OK"
        n += 1
    assert c.create("Kept")[0] == "OK"
    c.logout()
    return n


def browser(download_dir):
    o = webdriver.ChromeOptions()
    o.binary_location = "/usr/bin/chromium"
    for a in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
              "--window-size=1200,800", "--lang=en-US", "--no-first-run"]:
        o.add_argument(a)
    o.add_experimental_option("prefs", {
        "download.default_directory": download_dir,
        "download.prompt_for_download": False,
        "intl.accept_languages": "en-US,en",
    })
    d = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=o)
    d.set_page_load_timeout(60)
    d.execute_cdp_cmd("Page.setDownloadBehavior", {"behavior": "allow", "downloadPath": download_dir})
    return d


def no_alert(d, what):
    try:
        a = d.switch_to.alert
        text = a.text
        a.dismiss()
        raise AssertionError("an alert ran for %s: %r" % (what, text))
    except NoAlertPresentException:
        pass


def text(d):
    return d.find_element(By.TAG_NAME, "body").text


def shot(d, name):
    if not SHOTS:
        return
    for size, (w, h) in (("desktop", (1200, 800)), ("phone", (390, 844))):
        d.set_window_size(w, h)
        time.sleep(0.3)
        d.save_screenshot(os.path.join(SHOTS, "%s-%s.png" % (name, size)))
    d.set_window_size(1200, 800)


def frame_state(d):
    """What the message frame holds, read from the page (same origin)."""
    return d.execute_script("""
        const f = document.querySelector('iframe.mail-html');
        if (!f) return null;
        const doc = f.contentDocument;
        if (!doc || doc.readyState !== 'complete') return {loading: true};
        const all = Array.from(doc.querySelectorAll('*'));
        const handlers = all.filter(e => Array.from(e.attributes).some(a => /^on/i.test(a.name))).length;
        const js = all.filter(e => ['href', 'src', 'action', 'formaction', 'xlink:href'].some(
            n => /^\\s*(javascript|vbscript|data:text)/i.test(e.getAttribute(n) || ''))).length;
        return {
            loading: false,
            title: doc.title,
            scripts: doc.querySelectorAll('script').length,
            handlers: handlers,
            js: js,
            forms: doc.querySelectorAll('form, input, button, iframe, object, embed').length,
            imgs: Array.from(doc.images).map(i => [i.getAttribute('src'), i.complete, i.naturalWidth]),
            text: doc.body ? doc.body.innerText : '',
            marker: f.contentWindow.__xss === undefined ? null : 'set',
        };
    """)


def wait_frame(d):
    st = None
    for _ in range(100):
        st = frame_state(d)
        if st is None or not st.get("loading"):
            return st
        time.sleep(0.1)
    return st


def main():
    n_vectors = seed()
    downloads = tempfile.mkdtemp()
    d = browser(downloads)
    try:
        # Log in.
        d.get(URL + "/login")
        d.find_element(By.NAME, "user").send_keys(USER)
        d.find_element(By.NAME, "password").send_keys(PASSWORD)
        d.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
        WebDriverWait(d, 20).until(lambda d: "/folders" in d.current_url)

        # List and sort.
        d.get(URL + "/list?folder=INBOX")
        rows = d.find_elements(By.CSS_SELECTOR, "tr.msg")
        assert len(rows) == len(CORPUS), len(rows)
        body = text(d)
        for s in ["会议通知", "會議通知", "汉字标题", "无字符集声明的邮件", "张三", "陳大文"]:
            assert s in body, s
        d.find_element(By.CSS_SELECTOR, "nav.sorts a.sort-size").click()
        WebDriverWait(d, 20).until(lambda d: "sort=size" in d.current_url)
        sizes = [r.get_attribute("data-uid") for r in d.find_elements(By.CSS_SELECTOR, "tr.msg")]
        c = imap()
        c.select("INBOX")
        want = c.uid("SORT", "(REVERSE SIZE)", "UTF-8", "ALL")[1][0].decode().split()
        c.logout()
        assert sizes == want, (sizes, want)
        shot(d, "list")

        # Read in each charset.
        expect = {
            "gb2312.eml": "朱镕基和王堃参加了会议",
            "big5.eml": "您好，這是一封繁體中文郵件",
            "hz.eml": "欢迎使用HZ编码",
            "undeclared-gbk.eml": "您好，这是一封没有声明字符集的中文邮件",
        }
        d.get(URL + "/list?folder=INBOX")
        d.find_element(By.XPATH, "//tr[@data-uid='%d']//td[@class='subject']/a" % UID["gb2312.eml"]).click()
        WebDriverWait(d, 20).until(lambda d: "/read" in d.current_url)
        for name, want_text in expect.items():
            if name != "gb2312.eml":
                d.get(URL + "/read?folder=INBOX&uid=%d" % UID[name])
            assert want_text in text(d), (name, text(d))
            no_alert(d, name)
        d.get(URL + "/read?folder=INBOX&uid=%d" % UID["gb2312.eml"])
        shot(d, "read")

        # HTML with a cid: image, loaded in the sandboxed frame.
        d.get(URL + "/read?folder=INBOX&uid=%d" % UID["related-cid.eml"])
        frame = d.find_element(By.CSS_SELECTOR, "iframe.mail-html")
        assert "allow-scripts" not in (frame.get_attribute("sandbox") or "")
        st = None
        for _ in range(50):
            st = wait_frame(d)
            if st and st["imgs"] and all(i[1] for i in st["imgs"]):
                break
            time.sleep(0.1)
        assert "图片如下" in st["text"], st
        cid = [i for i in st["imgs"] if "/part?" in (i[0] or "")]
        assert cid and cid[0][2] > 0, st
        assert not any((i[0] or "").startswith("http") and "/part?" not in i[0] for i in st["imgs"]), st
        shot(d, "read-html")

        # Download an attachment; the same bytes.
        d.get(URL + "/read?folder=INBOX&uid=%d" % UID["base64-attachment.eml"])
        d.find_element(By.CSS_SELECTOR, "a.attachment").click()
        path = os.path.join(downloads, "data.bin")
        for _ in range(100):
            if os.path.exists(path) and not os.path.exists(path + ".crdownload"):
                break
            time.sleep(0.1)
        got = open(path, "rb").read()
        assert got == bytes((7 * i + 3) % 256 for i in range(3000)), len(got)

        # A Chinese attachment name as the file name.
        d.get(URL + "/read?folder=INBOX&uid=%d" % UID["rfc2231-attachment.eml"])
        link = d.find_element(By.XPATH, "//a[@class='attachment'][contains(., '数据.xls')]")
        link.click()
        path = os.path.join(downloads, "数据.xls")
        for _ in range(100):
            if os.path.exists(path):
                break
            time.sleep(0.1)
        assert os.path.exists(path), os.listdir(downloads)

        # Move one and delete one by ticking them in the list.
        d.get(URL + "/list?folder=INBOX&sort=arrival&rev=0")
        d.find_element(By.CSS_SELECTOR, "tr[data-uid='%d'] input[type=checkbox]" % UID["gbk.eml"]).click()
        Select(d.find_element(By.ID, "target")).select_by_visible_text("Kept")
        d.find_element(By.CSS_SELECTOR, "button[value=move]").click()
        WebDriverWait(d, 20).until(lambda d: "done=moved" in d.current_url)
        assert "The messages were moved." in text(d)
        d.find_element(By.CSS_SELECTOR, "tr[data-uid='%d'] input[type=checkbox]" % UID["alternative.eml"]).click()
        d.find_element(By.CSS_SELECTOR, "button[value=delete]").click()
        WebDriverWait(d, 20).until(lambda d: "done=trashed" in d.current_url)
        c = imap()
        c.select("Kept")
        assert len(c.uid("SEARCH", "ALL")[1][0].split()) == 1
        c.select("Trash")
        assert len(c.uid("SEARCH", "ALL")[1][0].split()) == 1
        c.select("INBOX")
        assert len(c.uid("SEARCH", "ALL")[1][0].split()) == len(CORPUS) - 2
        c.logout()

        # Search with Chinese text, all folders.
        d.get(URL + "/search")
        d.find_element(By.ID, "s-subject").send_keys("会议")
        d.find_element(By.CSS_SELECTOR, "form.search-form button").click()
        WebDriverWait(d, 20).until(lambda d: "subject=" in d.current_url)
        found = d.find_elements(By.CSS_SELECTOR, "table.results tr.msg")
        assert len(found) == 1 and "会议通知" in found[0].text, [f.text for f in found]
        shot(d, "search")
        d.get(URL + "/quota")
        shot(d, "quota")
        if SHOTS:
            d.get(URL + "/settings")
            shot(d, "settings")

        # Every XSS vector: nothing runs, in the frame or the page.
        d.get(URL + "/list?folder=XSS&sort=arrival&rev=0")
        c = imap()
        c.select("XSS")
        xss_uids = c.uid("SEARCH", "ALL")[1][0].decode().split()
        c.logout()
        assert len(xss_uids) == n_vectors
        for u in xss_uids:
            d.get(URL + "/read?folder=XSS&uid=%s" % u)
            no_alert(d, "vector %s" % u)
            st = wait_frame(d)
            no_alert(d, "vector %s" % u)
            title = d.title
            assert "XSS" not in title, (u, title)
            if st is None:
                continue  # shown as text: escaped by the template
            assert st["title"] != "XSS", (u, st)
            assert st["scripts"] == 0 and st["handlers"] == 0 and st["js"] == 0, (u, st)
            assert st["forms"] == 0, (u, st)
            assert st["marker"] is None, (u, st)
            body_scripts = d.execute_script(
                "return document.querySelectorAll('main script, main [onload], main [onerror]').length")
            assert body_scripts == 0, u

        # Log out: the old cookie opens nothing any more.
        d.get(URL + "/list")
        old = d.get_cookie("kmpw")
        assert old, "a session cookie"
        d.find_element(By.CSS_SELECTOR, "form.logout button").click()
        WebDriverWait(d, 20).until(lambda d: "/login" in d.current_url)
        d.add_cookie({"name": "kmpw", "value": old["value"], "path": old.get("path", "/")})
        d.get(URL + "/list")
        assert "/login" in d.current_url, d.current_url
        assert not d.find_elements(By.CSS_SELECTOR, "tr.msg")
    finally:
        d.quit()
    print("ok %d vectors" % n_vectors)


main()
