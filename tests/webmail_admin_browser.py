"""The domain administration pages in a real browser: Debian's chromium,
headless, driven by python3-selenium through chromium-driver. Run by
tests/webmail_admin_browser.rs:

    webmail_admin_browser.py URL [SHOTS_DIR]

Logs in as pm@a.example (the postmaster of a.example, browser language
zh-CN), follows the navigation's administration link, adds the user 张三
with a password typed twice (first mistyped: the refusal shows in the
form with the name kept), edits a user, asks to delete one (the
confirmation page), adds an alias, and, as admin@sys.example, opens the
overview that lists every domain (an IDN one in Unicode). With SHOTS_DIR,
saves admin-*.png of each page there. Prints "ok" at the end; any failure
is an exception.
"""

import os
import sys
import time

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

URL = sys.argv[1]
SHOTS = sys.argv[2] if len(sys.argv) > 2 else None


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


def shot(d, name, height=1000):
    if SHOTS:
        d.set_window_size(1200, height)
        time.sleep(0.3)
        d.save_screenshot(os.path.join(SHOTS, name))


def login(d, user, password):
    d.delete_all_cookies()
    d.get(URL + "/login")
    d.find_element(By.NAME, "user").send_keys(user)
    d.find_element(By.NAME, "password").send_keys(password)
    d.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
    WebDriverWait(d, 20).until(lambda d: "/login" not in d.current_url)


def main():
    d = browser()
    try:
        login(d, "pm@a.example", "pw-pm")
        d.find_element(By.ID, "nav-admin").click()
        WebDriverWait(d, 20).until(lambda d: d.find_elements(By.CSS_SELECTOR, "table.admin-limits"))
        assert "域管理" in d.page_source
        assert "b.example" not in d.page_source
        shot(d, "admin-domain.png", 1100)

        d.find_element(By.ID, "admin-users").click()
        WebDriverWait(d, 20).until(lambda d: d.find_elements(By.ID, "add-user-submit"))
        d.find_element(By.ID, "local").send_keys("张三")
        d.find_element(By.ID, "password").send_keys("pass-one-1")
        d.find_element(By.ID, "password2").send_keys("pass-two-2")
        d.find_element(By.ID, "quota_mb").send_keys("50")
        d.find_element(By.ID, "add-user-submit").click()
        WebDriverWait(d, 20).until(lambda d: d.find_elements(By.ID, "refused"))
        assert d.find_element(By.ID, "local").get_attribute("value") == "张三"
        assert d.find_element(By.ID, "password").get_attribute("value") == ""
        shot(d, "admin-users-refused.png", 1300)
        d.find_element(By.ID, "password").send_keys("pass-one-1")
        d.find_element(By.ID, "password2").send_keys("pass-one-1")
        d.find_element(By.ID, "add-user-submit").click()
        WebDriverWait(d, 20).until(lambda d: "done=admin_user_added" in d.current_url)
        assert "张三@a.example" in d.page_source
        shot(d, "admin-users.png", 1300)

        d.get(URL + "/admin/user?a=u@a.example")
        WebDriverWait(d, 20).until(lambda d: d.find_elements(By.ID, "save-user"))
        d.find_element(By.ID, "forwards").send_keys("李四@b.example")
        d.find_element(By.ID, "save-user").click()
        WebDriverWait(d, 20).until(lambda d: "done=admin_user_saved" in d.current_url)
        assert "李四@b.example" in d.find_element(By.ID, "forwards").get_attribute("value")
        shot(d, "admin-user.png", 1100)

        d.find_element(By.ID, "delete-user").click()
        WebDriverWait(d, 20).until(lambda d: d.find_elements(By.ID, "delete-confirm"))
        assert d.find_element(By.ID, "keep-yes").is_selected()
        shot(d, "admin-user-delete.png")

        d.find_element(By.ID, "admin-aliases").click()
        WebDriverWait(d, 20).until(lambda d: d.find_elements(By.ID, "add-alias-submit"))
        d.find_element(By.ID, "local").send_keys("销售")
        d.find_element(By.ID, "targets").send_keys("u@a.example\nbob@b.example")
        d.find_element(By.ID, "add-alias-submit").click()
        WebDriverWait(d, 20).until(lambda d: "done=admin_alias_saved" in d.current_url)
        d.find_element(By.ID, "catch_all").click()
        d.find_element(By.ID, "targets").send_keys("pm@a.example")
        d.find_element(By.ID, "add-alias-submit").click()
        WebDriverWait(d, 20).until(lambda d: d.find_elements(By.CSS_SELECTOR, "tr[data-alias='@a.example']"))
        assert "销售@a.example" in d.page_source
        shot(d, "admin-aliases.png", 1100)

        d.find_element(By.ID, "admin-announce").click()
        WebDriverWait(d, 20).until(lambda d: d.find_elements(By.ID, "announce-submit"))
        d.find_element(By.ID, "subject").send_keys("系统维护通知")
        d.find_element(By.ID, "text").send_keys("各位同事：\n今晚 22:00 至 23:00 系统维护，期间无法收发邮件。\n\n管理员")
        shot(d, "admin-announce.png")

        login(d, "admin@sys.example", "pw-admin")
        d.get(URL + "/admin")
        WebDriverWait(d, 20).until(lambda d: d.find_elements(By.CSS_SELECTOR, "table.admin-domains"))
        assert "例子.测试" in d.page_source
        shot(d, "admin-all-domains.png", 1300)
    finally:
        d.quit()
    print("ok")


main()
