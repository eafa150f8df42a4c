"""The address book in a real browser: Debian's chromium, headless, driven
by python3-selenium through chromium-driver, against the webmail under
lighttpd and a real kmp-imapd, the pages in Chinese. Run by
tests/webmail_contacts_browser.rs:

    webmail_contacts_browser.py URL IMAP_PORT DATA_DIR [SHOTS_DIR]

Imports the Chinese Outlook's CSV in GBK through the page's file input,
checks the names listed in pinyin order, makes a group and puts three
contacts into it with the checkboxes, exports the Chinese CSV, deletes
every contact, imports the export again and checks the same contacts and
groups come back; adds the sender of a message in one click; completes
addresses on the compose page. With
SHOTS_DIR, saves screenshots of the pages (desktop and phone sizes).
Prints "ok" at the end; any failure is an exception.
"""

import glob
import imaplib
import os
import sys
import tempfile
import time

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

URL, IMAP_PORT, DATA = sys.argv[1:4]
SHOTS = sys.argv[4] if len(sys.argv) > 4 else None
USER, PASSWORD = "u@example.test", "secret"
NAMES = ["陈小明", "李四", "欧阳娜娜", "王五", "张三", "黃大仙"]


def browser(download_dir):
    o = webdriver.ChromeOptions()
    o.binary_location = "/usr/bin/chromium"
    for a in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
              "--window-size=1200,800", "--lang=zh-CN", "--no-first-run"]:
        o.add_argument(a)
    o.add_experimental_option("prefs", {
        "download.default_directory": download_dir,
        "download.prompt_for_download": False,
        "intl.accept_languages": "zh-CN,zh",
    })
    d = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=o)
    d.set_page_load_timeout(60)
    d.execute_cdp_cmd("Page.setDownloadBehavior", {"behavior": "allow", "downloadPath": download_dir})
    return d


def shot(d, name):
    if not SHOTS:
        return
    for size, (w, h) in (("desktop", (1200, 900)), ("phone", (390, 844))):
        d.set_window_size(w, h)
        time.sleep(0.3)
        d.save_screenshot(os.path.join(SHOTS, "%s-%s.png" % (name, size)))
    d.set_window_size(1200, 800)


def names(d):
    return [e.text for e in d.find_elements(By.CSS_SELECTOR, "tr.contact td.name")]


def tick(d, who):
    for row in d.find_elements(By.CSS_SELECTOR, "tr.contact"):
        if row.find_element(By.CSS_SELECTOR, "td.name").text in who:
            row.find_element(By.CSS_SELECTOR, "td.tick input").click()


def upload(d, path):
    d.get(URL + "/contacts")
    d.find_element(By.ID, "imp-file").send_keys(path)
    d.find_element(By.CSS_SELECTOR, "form[action$='/contacts/import'] button").click()
    WebDriverWait(d, 30).until(lambda d: "done=imported" in d.current_url)


def groups_of(d):
    out = {}
    for row in d.find_elements(By.CSS_SELECTOR, "tr.contact"):
        n = row.find_element(By.CSS_SELECTOR, "td.name").text
        out[n] = sorted(t.text for t in row.find_elements(By.CSS_SELECTOR, "td.groups .tag"))
    return out


def main():
    c = imaplib.IMAP4("127.0.0.1", int(IMAP_PORT))
    c.login(USER, PASSWORD)
    msg = ("From: =?GB2312?B?zfXAz8qm?= <teacher@school.example.cn>\r\n"
           "To: u@example.test\r\nSubject: =?UTF-8?B?5L2c5Lia?=\r\n\r\n请查收。\r\n").encode()
    assert c.append("INBOX", None, None, msg)[0] == "OK"
    c.logout()
    downloads = tempfile.mkdtemp()
    d = browser(downloads)
    try:
        d.get(URL + "/login")
        d.find_element(By.NAME, "user").send_keys(USER)
        d.find_element(By.NAME, "password").send_keys(PASSWORD)
        d.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
        WebDriverWait(d, 20).until(lambda d: "/folders" in d.current_url)

        # Import the Chinese Outlook's file, in GBK.
        upload(d, os.path.join(DATA, "outlook-zh-gbk.csv"))
        assert "已导入 6 位联系人" in d.find_element(By.TAG_NAME, "body").text
        assert names(d) == NAMES, names(d)

        # A group, and three contacts put into it at once.
        d.find_element(By.ID, "g-new").send_keys("项目组")
        d.find_element(By.CSS_SELECTOR, "form[action$='/contacts/groups'] input[value=create] ~ button").click()
        WebDriverWait(d, 20).until(lambda d: "done=group_created" in d.current_url)
        tick(d, ["张三", "王五", "欧阳娜娜"])
        Select(d.find_element(By.ID, "act-group")).select_by_visible_text("项目组")
        d.find_element(By.CSS_SELECTOR, "button[name=do][value=add]").click()
        WebDriverWait(d, 20).until(lambda d: "done=group_added" in d.current_url)
        for a in d.find_elements(By.CSS_SELECTOR, "a.group-link"):
            if a.text.startswith("项目组"):
                a.click()
                break
        WebDriverWait(d, 20).until(lambda d: "group=" in d.current_url)
        assert names(d) == ["欧阳娜娜", "王五", "张三"], names(d)
        d.get(URL + "/contacts")
        before = groups_of(d)
        assert before["张三"] == ["同事", "项目组"], before
        shot(d, "contacts")
        d.get(URL + "/contacts/edit?id=" + d.find_element(
            By.XPATH, "//tr[td[@class='name']/a[text()='张三']]").get_attribute("data-id"))
        assert d.find_element(By.ID, "company").get_attribute("value") == "北京某某科技有限公司"
        shot(d, "contact-edit")

        # Export the Chinese CSV through its link.
        d.get(URL + "/contacts")
        d.find_element(By.CSS_SELECTOR, "a[href*='format=csv-zh']").click()
        end = time.time() + 20
        files = []
        while time.time() < end:
            files = [f for f in glob.glob(os.path.join(downloads, "*.csv"))]
            if files and not glob.glob(os.path.join(downloads, "*.crdownload")):
                break
            time.sleep(0.2)
        assert files, os.listdir(downloads)
        data = open(files[0], "rb").read()
        assert data.decode("gbk").startswith('"英文称谓","名","中间名","姓"'), data[:80]

        # Delete them all, then import the export: the same book again.
        for row in d.find_elements(By.CSS_SELECTOR, "tr.contact td.tick input"):
            row.click()
        d.find_element(By.CSS_SELECTOR, "button[name=do][value=delete]").click()
        WebDriverWait(d, 20).until(lambda d: "done=contacts_deleted" in d.current_url)
        assert names(d) == [], names(d)
        upload(d, files[0])
        assert names(d) == NAMES, names(d)
        assert groups_of(d) == before, (groups_of(d), before)

        # The sender of a message, in one click.
        d.get(URL + "/read?folder=INBOX&uid=1")
        d.find_element(By.CSS_SELECTOR, "form.add-sender button").click()
        WebDriverWait(d, 20).until(lambda d: "done=sender_added" in d.current_url)
        d.get(URL + "/contacts?q=teacher")
        assert names(d) == ["王老师"], names(d)

        # The compose page completes each address of a list from the book
        # (addresses.js rewrites the suggestions after what is typed).
        d.get(URL + "/compose")
        to = d.find_element(By.ID, "to")
        to.send_keys("boss@example.cn, 张")
        opts = [o.get_attribute("value") for o in d.find_elements(By.CSS_SELECTOR, "#kmp-addresses option")]
        assert "boss@example.cn, 张三 <zhangsan@example.cn>" in opts, opts
        assert all(o.startswith("boss@example.cn, ") for o in opts), opts
        to.clear()
        to.send_keys("项目")
        opts = [o.get_attribute("value") for o in d.find_elements(By.CSS_SELECTOR, "#kmp-addresses option")]
        assert opts and opts[0] == "项目组", opts

        # The domain directory.
        d.get(URL + "/contacts?book=domain")
        assert "u@example.test" in d.find_element(By.TAG_NAME, "body").text
    finally:
        d.quit()
    print("ok")


main()
