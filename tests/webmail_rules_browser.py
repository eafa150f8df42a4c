"""The rule editor in a real browser: Debian's chromium, headless, driven
by python3-selenium through chromium-driver. Run by
tests/webmail_rules_browser.rs:

    webmail_rules_browser.py URL IMAP_PORT SMTP_PORT [SHOT_FILE]

Makes the folder 财务 over IMAP, logs in, builds the rule "Subject
contains 发票 → move to 财务" on the rules page, sends a matching message
and one that does not match with smtplib, and finds each in its folder
over IMAP. With SHOT_FILE, saves a screenshot of the rules page there.
Prints "ok" at the end; any failure is an exception.
"""

import imaplib
import smtplib
import sys
import time
from email.message import EmailMessage

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select, WebDriverWait

URL, IMAP_PORT, SMTP_PORT = sys.argv[1:4]
SHOT = sys.argv[4] if len(sys.argv) > 4 else None
USER, PASSWORD = "u@example.test", "secret"


def imap():
    c = imaplib.IMAP4("127.0.0.1", int(IMAP_PORT))
    c._encoding = "utf-8"
    c.login(USER, PASSWORD)
    c.enable("UTF8=ACCEPT")
    return c


def subjects(folder):
    c = imap()
    typ, _ = c.select('"%s"' % folder, readonly=True)
    assert typ == "OK", folder
    typ, data = c.fetch("1:*", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    out = []
    for item in data:
        if isinstance(item, tuple):
            from email import message_from_bytes
            from email.header import decode_header, make_header
            out.append(str(make_header(decode_header(message_from_bytes(item[1])["Subject"] or ""))))
    c.logout()
    return out


def send(subject):
    m = EmailMessage()
    m["From"] = "boss@example.test"
    m["To"] = USER
    m["Subject"] = subject
    m.set_content("请查收。\n")
    with smtplib.SMTP("127.0.0.1", int(SMTP_PORT), timeout=30) as s:
        s.send_message(m)


def wait_for(folder, subject):
    last = []
    for _ in range(100):
        try:
            last = subjects(folder)
        except Exception:
            last = []
        if subject in last:
            return
        time.sleep(0.2)
    raise AssertionError("%r not in %s: %r" % (subject, folder, last))


def browser():
    o = webdriver.ChromeOptions()
    o.binary_location = "/usr/bin/chromium"
    for a in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
              "--window-size=1200,1000", "--lang=zh-CN", "--no-first-run"]:
        o.add_argument(a)
    o.add_experimental_option("prefs", {"intl.accept_languages": "zh-CN,zh"})
    d = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=o)
    d.set_page_load_timeout(60)
    return d


def main():
    c = imap()
    assert c.create('"财务"')[0] == "OK"
    c.logout()
    d = browser()
    try:
        d.get(URL + "/login")
        d.find_element(By.NAME, "user").send_keys(USER)
        d.find_element(By.NAME, "password").send_keys(PASSWORD)
        d.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
        WebDriverWait(d, 20).until(lambda d: "/login" not in d.current_url)
        d.find_element(By.ID, "nav-rules").click()
        WebDriverWait(d, 20).until(lambda d: d.find_elements(By.ID, "rule-form"))
        d.find_element(By.ID, "rule-name").send_keys("发票归档")
        Select(d.find_element(By.ID, "field_0")).select_by_value("subject")
        Select(d.find_element(By.ID, "op_0")).select_by_value("contains")
        d.find_element(By.ID, "value_0").send_keys("发票")
        Select(d.find_element(By.ID, "rule-action")).select_by_value("move")
        Select(d.find_element(By.ID, "rule-folder")).select_by_value("财务")
        d.find_element(By.ID, "rule-add").click()
        WebDriverWait(d, 20).until(lambda d: "done=rules" in d.current_url)
        rule = d.find_element(By.CSS_SELECTOR, "li.rule[data-rule='0']").text
        assert "发票归档" in rule and "财务" in rule, rule
        # A second, disabled rule, for the picture.
        d.find_element(By.ID, "rule-name").send_keys("大邮件")
        Select(d.find_element(By.ID, "field_0")).select_by_value("size")
        Select(d.find_element(By.ID, "op_0")).select_by_value("over")
        d.find_element(By.ID, "value_0").send_keys("10M")
        Select(d.find_element(By.ID, "rule-action")).select_by_value("forward_keep")
        d.find_element(By.ID, "rule-to").send_keys("archive@example.test")
        d.find_element(By.CSS_SELECTOR, "input[name=flagged]").click()
        d.find_element(By.CSS_SELECTOR, "input[name=enabled]").click()
        # "Another condition" adds a fourth row and keeps what was typed.
        assert not d.find_elements(By.ID, "field_3")
        d.find_element(By.ID, "rule-more").click()
        WebDriverWait(d, 20).until(lambda d: d.find_elements(By.ID, "field_3"))
        assert d.find_element(By.ID, "value_0").get_attribute("value") == "10M"
        assert d.find_element(By.ID, "rule-to").get_attribute("value") == "archive@example.test"
        # Enter in a field saves the rule; it does not add another row.
        d.find_element(By.ID, "rule-to").send_keys(Keys.ENTER)
        WebDriverWait(d, 20).until(lambda d: d.find_elements(By.CSS_SELECTOR, "li.rule.disabled[data-rule='1']"))
        if SHOT:
            d.set_window_size(1200, 1400)
            time.sleep(0.3)
            d.save_screenshot(SHOT)
    finally:
        d.quit()
    send("2026年12月 发票")
    send("周报")
    wait_for("财务", "2026年12月 发票")
    wait_for("INBOX", "周报")
    assert "2026年12月 发票" not in subjects("INBOX")
    print("ok")


main()
