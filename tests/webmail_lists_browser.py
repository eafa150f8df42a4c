"""The webmail's list pages in headless Chromium (python3-selenium and
chromium-driver), against lighttpd, kmp-webmail, kmp-admind and the
delivery daemons. Run by tests/webmail_lists.rs:

    webmail_lists_browser.py URL LIST [SHOTS_DIR]

Logs in as the list's owner, opens the list pages from the navigation,
adds a member with the form, reads the held posts (Chinese subjects
decoded), approves one with its button, opens the settings. With
SHOTS_DIR, saves screenshots of each page at desktop and phone sizes
(lists, lists-members, lists-held, lists-settings).
Prints "ok" at the end; any failure is an exception.
"""

import os
import sys
import time

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

URL, LIST = sys.argv[1:3]
SHOTS = sys.argv[3] if len(sys.argv) > 3 else None
USER, PASSWORD = "u@example.test", "secret"


def browser():
    o = webdriver.ChromeOptions()
    o.binary_location = "/usr/bin/chromium"
    for a in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
              "--window-size=1200,800", "--lang=en-US", "--no-first-run"]:
        o.add_argument(a)
    o.add_experimental_option("prefs", {"intl.accept_languages": "en-US,en"})
    d = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=o)
    d.set_page_load_timeout(60)
    return d


def text(d):
    return d.find_element(By.TAG_NAME, "body").text


def wait_text(d, want):
    """Waits until the page (after a click, the next one) shows `want`."""
    WebDriverWait(d, 20, ignored_exceptions=[StaleElementReferenceException]).until(
        lambda d: want in text(d))


def shot(d, name):
    if not SHOTS:
        return
    for size, (w, h) in (("desktop", (1200, 800)), ("phone", (390, 844))):
        d.set_window_size(w, h)
        time.sleep(0.3)
        suffix = "" if size == "desktop" else "-phone"
        d.save_screenshot(os.path.join(SHOTS, "%s%s.png" % (name, suffix)))
    d.set_window_size(1200, 800)


def main():
    d = browser()
    try:
        d.get(URL + "/login")
        d.find_element(By.NAME, "user").send_keys(USER)
        d.find_element(By.NAME, "password").send_keys(PASSWORD)
        d.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
        WebDriverWait(d, 20).until(lambda d: "/folders" in d.current_url)
        d.find_element(By.ID, "nav-lists").click()
        wait_text(d, LIST)
        shot(d, "lists")

        # The list's first link: its members.
        d.find_element(By.CSS_SELECTOR, "tr[data-list] a").click()
        wait_text(d, "Add members")
        assert "v@example.test" in text(d), text(d)
        d.find_element(By.ID, "addresses").send_keys("new@far.example")
        d.find_element(By.CSS_SELECTOR, "#add-members button[type=submit]").click()
        wait_text(d, "The members were added.")
        assert "new@far.example" in text(d), text(d)
        shot(d, "lists-members")

        d.find_element(By.ID, "tab-held").click()
        wait_text(d, "中文 second")
        body = text(d)
        assert "中文" in body and "中文 second" in body, body
        assert "你好，世界" in body, body
        shot(d, "lists-held")
        articles = d.find_elements(By.CSS_SELECTOR, "article.held")
        gb = [a for a in articles
              if a.find_element(By.CSS_SELECTOR, "h3").text == "中文"][0]
        gb.find_element(By.CSS_SELECTOR, "button.approve").click()
        wait_text(d, "The post was approved")
        assert len(d.find_elements(By.CSS_SELECTOR, "article.held")) == 1

        d.find_element(By.ID, "tab-settings").click()
        wait_text(d, "Subject prefix")
        assert d.find_element(By.ID, "description").get_attribute("value") == "开发"
        shot(d, "lists-settings")
    finally:
        d.quit()
    print("ok")


main()
