"""The announcement banner in a real browser: Debian's chromium, headless,
driven by python3-selenium through chromium-driver, against the webmail
under lighttpd and a real kmp-imapd. Run by tests/announce_browser.rs:

    announce_browser.py URL SUBJECT

The INBOX holds an unread announcement (kmpctl announce) and an ordinary
message. The INBOX list shows the banner with the announcement's subject
(in Chinese); its link opens the announcement; back on the list the
banner is gone. Prints "ok" at the end; any failure is an exception. With
KMP_SHOTS set to a directory, the page with the banner is saved there.
"""

import os
import sys

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

URL, SUBJECT = sys.argv[1:3]
USER, PASSWORD = "u@example.test", "secret"


def browser():
    o = webdriver.ChromeOptions()
    o.binary_location = "/usr/bin/chromium"
    for a in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
              "--window-size=1200,800", "--lang=zh-CN", "--no-first-run"]:
        o.add_argument(a)
    o.add_experimental_option("prefs", {"intl.accept_languages": "zh-CN,zh"})
    d = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=o)
    d.set_page_load_timeout(60)
    return d


def banners(d):
    return d.find_elements(By.ID, "announcement")


def main():
    d = browser()
    try:
        d.get(URL + "/login")
        d.find_element(By.NAME, "user").send_keys(USER)
        d.find_element(By.NAME, "password").send_keys(PASSWORD)
        d.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
        WebDriverWait(d, 20).until(lambda d: "/login" not in d.current_url)

        d.get(URL + "/list?folder=INBOX")
        b = banners(d)
        assert len(b) == 1, d.page_source
        text = b[0].text
        assert "系统公告" in text, text
        assert SUBJECT in text, text
        if os.environ.get("KMP_SHOTS"):
            d.save_screenshot(os.path.join(os.environ["KMP_SHOTS"], "announce-banner.png"))
        # Other folders show no banner.
        d.get(URL + "/list?folder=Sent")
        assert not banners(d), d.page_source

        d.get(URL + "/list?folder=INBOX")
        d.find_element(By.ID, "announcement-read").click()
        WebDriverWait(d, 20).until(lambda d: "/read" in d.current_url)
        body = d.find_element(By.TAG_NAME, "body").text
        assert SUBJECT in body, body
        assert "维护期间无法收发邮件" in body, body

        d.get(URL + "/list?folder=INBOX")
        assert not banners(d), d.page_source
        # The ordinary message is still listed, unread.
        assert "Ordinary mail" in d.find_element(By.TAG_NAME, "body").text
    finally:
        d.quit()
    print("ok")


main()
