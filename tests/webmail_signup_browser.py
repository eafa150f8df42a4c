"""The sign-up page in headless Chromium (python3-selenium,
chromium-driver), for its screenshot. Run by tests/webmail_signup.rs:

    webmail_signup_browser.py URL SHOT_FILE

Follows the login page's link to the sign-up page, fills in the form
(name, password twice, the answer) without sending it, and saves the page
as SHOT_FILE. Prints "ok".
"""

import re
import sys
import time

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

URL, SHOT = sys.argv[1:3]

opts = webdriver.ChromeOptions()
opts.binary_location = "/usr/bin/chromium"
for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
          "--window-size=1200,900", "--lang=zh-CN", "--no-first-run"):
    opts.add_argument(a)
opts.add_experimental_option("prefs", {"intl.accept_languages": "zh-CN,zh"})
d = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
d.set_page_load_timeout(60)
try:
    d.get(URL + "/login")
    d.find_element(By.ID, "signup-link").click()
    d.find_element(By.ID, "signup-local").send_keys("wang.fang")
    for f in ("signup-password", "signup-password2"):
        d.find_element(By.ID, f).send_keys("Tr0ub4dor-and-3x")
    q = d.find_element(By.ID, "signup-question").text
    a, b = map(int, re.findall(r"\d+", q)[:2])
    d.find_element(By.ID, "signup-answer").send_keys(str(a + b))
    time.sleep(0.3)
    d.save_screenshot(SHOT)
    print("ok")
finally:
    d.quit()
