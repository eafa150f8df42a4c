"""The fetch page in headless Chromium (python3-selenium, chromium-driver),
for its screenshot. Run by tests/webmail_fetch.rs:

    webmail_fetch_browser.py URL SESSION SHOT_FILE

Opens the page with the session cookie, checks the account list and the
form are there, and saves the page as SHOT_FILE. Prints "ok".
"""

import sys
import time

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

URL, SESSION, SHOT = sys.argv[1:4]

opts = webdriver.ChromeOptions()
opts.binary_location = "/usr/bin/chromium"
for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
          "--window-size=1200,900", "--lang=zh-CN", "--no-first-run"):
    opts.add_argument(a)
opts.add_experimental_option("prefs", {"intl.accept_languages": "zh-CN,zh"})
d = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
d.set_page_load_timeout(60)
try:
    d.set_window_size(1200, 900)
    d.get(URL + "/login")
    d.add_cookie({"name": "kmpw", "value": SESSION, "path": "/"})
    d.get(URL + "/fetch")
    assert d.find_elements(By.CSS_SELECTOR, "tr.fetch-account"), d.page_source
    assert d.find_element(By.ID, "fetch-form")
    assert d.find_element(By.ID, "fetch-password").get_attribute("value") == ""
    time.sleep(0.3)
    d.save_screenshot(SHOT)
    print("ok")
finally:
    d.quit()
