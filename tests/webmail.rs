//! kmp-webmail black-box: the CGI under the lighttpd `kmpctl init`
//! configured, against a real kmp-imapd and kmp-authd, with curl as the
//! browser (and Python's imaplib to look at the store behind it). Skipped
//! with a message when lighttpd is not installed.

mod common;

use common::webmail::{webmail_instance, webmail_instance_with, Http, Webmail, PY_MUTF7};
use common::{python, wait_until};
use std::time::Duration;

/// Makes folders and messages through IMAP: `工作` with one unread and one
/// read message, `Archive.報告` empty.
fn seed(w: &Webmail) {
    let script = r#"
import imaplib, sys, base64
c = imaplib.IMAP4('127.0.0.1', int(sys.argv[1]))
c.login('u@example.test', 'secret')
for name in ['工作', 'Archive', 'Archive.報告']:
    typ, _ = c.create(quoted(name))
    assert typ == 'OK', name
msg = b'From: a@example.test\r\nSubject: hi\r\n\r\nbody\r\n'
assert c.append(quoted('工作'), None, None, msg)[0] == 'OK'
assert c.append(quoted('工作'), '(\\Seen)', None, msg)[0] == 'OK'
assert c.append('Trash', None, None, msg)[0] == 'OK'
c.logout()
print('ok')
"#;
    let out = python(
        &format!("{PY_MUTF7}{script}"),
        &[&(w.inst.base + 143).to_string()],
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("ok"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The folder row for `name` on a folders page, if listed.
fn row<'a>(page: &'a Http, name: &str) -> Option<&'a str> {
    let at = page.body.find(&format!("data-folder=\"{name}\""))?;
    let rest = &page.body[at..];
    Some(&rest[..rest.find("</tr>").unwrap_or(rest.len())])
}

/// A cell's text in a row: `unread` or `total`.
fn cell(row: &str, class: &str) -> String {
    let at = row
        .find(&format!("class=\"num {class}\">"))
        .unwrap_or_else(|| panic!("no {class} in {row}"));
    let rest = &row[at..];
    let start = rest.find('>').unwrap() + 1;
    rest[start..rest.find("</td>").unwrap()].trim().to_string()
}

fn assert_security_headers(r: &Http) {
    let csp = r.header("content-security-policy").expect("CSP");
    for part in [
        "default-src 'none'",
        "style-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    ] {
        assert!(csp.contains(part), "CSP {csp:?} lacks {part}");
    }
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(r.header("referrer-policy"), Some("no-referrer"));
}

#[test]
fn login_folders_and_logout_through_lighttpd() {
    let Some(w) = webmail_instance() else { return };
    seed(&w);
    let page = w.get("/login", None);
    assert_eq!(page.status, 200, "{}", page.body);
    assert_security_headers(&page);
    assert_eq!(page.header("cache-control"), Some("no-store"));

    // A login POST without the form's token: refused.
    let forged = w.post(
        "/login",
        None,
        &[("user", "u@example.test"), ("password", "secret")],
    );
    assert_eq!(forged.status, 403, "{}", forged.body);
    assert!(forged.session().is_none());
    let kmpl = page.cookie("kmpl").expect("a login form cookie");
    let stale = w.curl(&[
        "-H",
        &format!("Cookie: kmpl={kmpl}"),
        "--data-binary",
        "csrf=AAAA&user=u%40example.test&password=secret",
        &w.url("/login"),
    ]);
    assert_eq!(stale.status, 403, "a wrong token");

    // A wrong password: refused, no session.
    let bad = w.post_login("u@example.test", "wrong");
    assert_eq!(bad.status, 403);
    assert!(bad.session().is_none());
    assert!(
        bad.body.contains("Wrong email address or password"),
        "{}",
        bad.body
    );

    // The right one: a sealed, HttpOnly, SameSite=Strict cookie (no Secure over HTTP).
    let ok = w.post_login("u@example.test", "secret");
    assert_eq!(ok.status, 303, "{}", ok.body);
    assert_eq!(ok.header("location"), Some("/folders"));
    let set = ok.set_cookies().join("\n");
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Strict"),
        "{set}"
    );
    assert!(!set.contains("Secure"), "{set}");
    let s = ok.session().unwrap();
    assert!(
        !s.contains("secret") && !s.contains("example"),
        "the cookie is sealed"
    );

    // The folders: specials first with their names, the Chinese one with counts.
    let f = w.get("/folders", Some(&s));
    assert_eq!(f.status, 200, "{}", f.body);
    assert_security_headers(&f);
    for label in ["Inbox", "Drafts", "Sent", "Trash", "Junk"] {
        assert!(f.body.contains(&format!(">{label}</a>")), "{label} missing");
    }
    let work = row(&f, "工作").expect("工作 listed");
    assert!(work.contains(">工作</a>"), "{work}");
    assert_eq!(cell(work, "unread"), "1");
    assert_eq!(cell(work, "total"), "2");
    assert!(row(&f, "Archive.報告").is_some(), "nested folder listed");
    let inbox_at = f.body.find("data-folder=\"INBOX\"").unwrap();
    let trash_at = f.body.find("data-folder=\"Trash\"").unwrap();
    let work_at = f.body.find("data-folder=\"工作\"").unwrap();
    assert!(
        inbox_at < trash_at && trash_at < work_at,
        "specials come first"
    );

    // Create, rename, delete by POST with the page's CSRF token.
    let csrf = f.csrf();
    let c = w.post(
        "/folders/create",
        Some(&s),
        &[("csrf", &csrf), ("name", "项目"), ("parent", "工作")],
    );
    assert_eq!(c.status, 303, "{}", c.body);
    assert_eq!(c.header("location"), Some("/folders?done=created"));
    let f = w.get("/folders?done=created", Some(&s));
    assert!(f.body.contains("The folder was created."));
    assert!(row(&f, "工作.项目").is_some(), "created");
    let r = w.post(
        "/folders/rename",
        Some(&s),
        &[("csrf", &csrf), ("folder", "工作.项目"), ("name", "計劃")],
    );
    assert_eq!(r.status, 303, "{}", r.body);
    let f = w.get("/folders", Some(&s));
    assert!(
        row(&f, "工作.项目").is_none() && row(&f, "工作.計劃").is_some(),
        "renamed"
    );
    let d = w.post(
        "/folders/delete",
        Some(&s),
        &[("csrf", &csrf), ("folder", "工作.計劃")],
    );
    assert_eq!(d.status, 303, "{}", d.body);
    let f = w.get("/folders", Some(&s));
    assert!(row(&f, "工作.計劃").is_none(), "deleted");

    // Without a token, or with another session's: refused, nothing made.
    let other = w.login("u@example.test", "secret");
    let other_csrf = w.get("/folders", Some(&other)).csrf();
    assert_ne!(other_csrf, csrf);
    for token in [None, Some(other_csrf.as_str()), Some("garbage")] {
        let mut form = vec![("name", "偷偷"), ("parent", "")];
        if let Some(t) = token {
            form.push(("csrf", t));
        }
        let x = w.post("/folders/create", Some(&s), &form);
        assert_eq!(x.status, 403, "token {token:?}: {}", x.body);
        assert!(x.body.contains("Nothing was changed"));
    }
    let f = w.get("/folders", Some(&s));
    assert!(row(&f, "偷偷").is_none(), "a forged POST changed nothing");

    // Emptying Trash removes its message.
    let t = row(&f, "Trash").unwrap().to_string();
    assert_eq!(cell(&t, "total"), "1");
    let e = w.post(
        "/folders/empty",
        Some(&s),
        &[("csrf", &csrf), ("folder", "Trash")],
    );
    assert_eq!(e.status, 303, "{}", e.body);
    let f = w.get("/folders", Some(&s));
    assert_eq!(cell(row(&f, "Trash").unwrap(), "total"), "0");
    // Only Trash and Junk can be emptied.
    let e = w.post(
        "/folders/empty",
        Some(&s),
        &[("csrf", &csrf), ("folder", "工作")],
    );
    assert_eq!(e.status, 400);
    let f = w.get("/folders", Some(&s));
    assert_eq!(cell(row(&f, "工作").unwrap(), "total"), "2");

    // Logout: the cookie is cleared, and a copy of it is dead.
    let out = w.post("/logout", Some(&s), &[("csrf", &csrf)]);
    assert_eq!(out.status, 303, "{}", out.body);
    assert_eq!(out.header("location"), Some("/login?why=bye"));
    assert_eq!(out.session().as_deref(), Some(""));
    assert!(out.set_cookies().join("").contains("Max-Age=0"));
    let after = w.get("/folders", Some(&s));
    assert_eq!(after.status, 303);
    assert_eq!(after.header("location"), Some("/login?why=expired"));
    // The other session lives on.
    assert_eq!(w.get("/folders", Some(&other)).status, 200);
}

#[test]
fn tampered_cookies_and_bad_requests_are_refused_and_change_nothing() {
    let Some(w) = webmail_instance_with(&[("webmail", "max_request_size = \"64K\"")]) else {
        return;
    };
    let mk = w.inst.ctl_stdin(
        &["user", "add", "v@example.test", "--password-stdin"],
        Some(b"other-secret\n"),
    );
    assert!(mk.status.success());
    let s = w.login("u@example.test", "secret");
    let v = w.login("v@example.test", "other-secret");
    assert_eq!(w.get("/folders", Some(&v)).status, 200);
    // Another user's cookie with one byte changed: refused.
    for i in [0, v.len() / 2, v.len() - 1] {
        let mut b = v.clone().into_bytes();
        b[i] = if b[i] == b'A' { b'B' } else { b'A' };
        let t = String::from_utf8(b).unwrap();
        let r = w.get("/folders", Some(&t));
        assert_eq!(r.status, 303, "byte {i}");
        assert_eq!(r.header("location"), Some("/login?why=expired"));
    }
    for junk in ["", "x", "%00", &"A".repeat(5000)] {
        assert_eq!(w.get("/folders", Some(junk)).status, 303, "{junk:?}");
    }
    let f = w.get("/folders", Some(&s));
    let csrf = f.csrf();

    // Bad names: refused with the error page, nothing made.
    for name in ["../x", "a.b", "..", "a/b", ""] {
        let r = w.post(
            "/folders/create",
            Some(&s),
            &[("csrf", &csrf), ("name", name), ("parent", "")],
        );
        assert_eq!(r.status, 400, "{name:?}: {}", r.body);
        assert!(
            r.body.contains("Nothing") || r.body.contains("cannot be used"),
            "{}",
            r.body
        );
    }
    let r = w.post(
        "/folders/create",
        Some(&s),
        &[("csrf", &csrf), ("name", "x"), ("parent", "../INBOX")],
    );
    assert_eq!(r.status, 400);
    let r = w.post(
        "/folders/delete",
        Some(&s),
        &[("csrf", &csrf), ("folder", "INBOX")],
    );
    assert_eq!(r.status, 400, "INBOX cannot be deleted");
    let r = w.post(
        "/folders/rename",
        Some(&s),
        &[("csrf", &csrf), ("folder", "Sent"), ("name", "X")],
    );
    assert_eq!(r.status, 400, "Sent cannot be renamed");
    let f2 = w.get("/folders", Some(&s));
    assert!(row(&f2, "x").is_none() && row(&f2, "X").is_none() && row(&f2, "Sent").is_some());

    // A skin name with ../ is refused, and the settings stay as they were.
    let r = w.post(
        "/settings",
        Some(&s),
        &[
            ("csrf", &csrf),
            ("page_size", "50"),
            ("lang", ""),
            ("skin", "../default"),
            ("tz", "UTC"),
        ],
    );
    assert_eq!(r.status, 400, "{}", r.body);
    let page = w.get("/settings", Some(&s));
    assert!(
        page.body.contains("<option value=\"25\" selected>"),
        "page size unchanged"
    );
    // The style sheet is only served by name from the allow-list.
    assert_eq!(w.get("/static/style.css?skin=../../etc", None).status, 200);
    assert_eq!(w.get("/static/../kmpromail.toml", None).status, 404);
    assert_eq!(w.get("/static/login.html", None).status, 404);

    // A multipart form (as a form with a file field sends) works as well.
    let mp = w.curl(&[
        "-H",
        &format!("Cookie: kmpw={s}"),
        "-F",
        &format!("csrf={csrf}"),
        "-F",
        "name=多部分",
        "-F",
        "parent=",
        "-F",
        "attachment=@/dev/null;filename=空.txt",
        &w.url("/folders/create"),
    ]);
    assert_eq!(mp.status, 303, "{}", mp.body);
    assert!(row(&w.get("/folders", Some(&s)), "多部分").is_some());

    // Unknown pages, GET on a POST-only path, garbage bodies.
    let r = w.get("/no/such/page", Some(&s));
    assert_eq!(r.status, 404);
    assert_security_headers(&r);
    assert_eq!(w.get("/folders/create", Some(&s)).status, 400);
    let garbage = w.curl(&[
        "-H",
        &format!("Cookie: kmpw={s}"),
        "-H",
        "Content-Type: multipart/form-data; boundary=zz",
        "--data-binary",
        "--zz\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\nx\r\n--zz",
        &w.url("/folders/create"),
    ]);
    assert_eq!(garbage.status, 400, "{}", garbage.body);
    let pct = w.curl(&["--data-binary", "user=%zz&password=%", &w.url("/login")]);
    assert_eq!(pct.status, 400);
    // A body over webmail.max_request_size: 413 before it is read.
    let big = format!(
        "csrf={csrf}&name=big&parent=&pad={}",
        "x".repeat(100 * 1024)
    );
    let r = w.curl(&[
        "-H",
        &format!("Cookie: kmpw={s}"),
        "--data-binary",
        &big,
        &w.url("/folders/create"),
    ]);
    assert_eq!(r.status, 413, "{}", r.body);
    assert!(r.body.contains("too large"));
    assert!(row(&w.get("/folders", Some(&s)), "big").is_none());
}

#[test]
fn deny_list_and_failed_logins_count_against_the_browsers_address() {
    if std::net::TcpListener::bind("127.0.0.5:0").is_err() {
        eprintln!("SKIPPED: 127.0.0.5 is not usable here");
        return;
    }
    let Some(w) = webmail_instance_with(&[
        ("webmail", "deny = [\"127.0.0.7\"]"),
        ("authd", "max_failures = 2"),
    ]) else {
        return;
    };
    let from = |ip: &str, pairs: &[(&str, &str)]| {
        w.post_login_with(&["--interface", ip], &w.url(""), pairs[0].1, pairs[1].1)
    };
    let denied = w.curl(&["--interface", "127.0.0.7", &w.url("/login")]);
    assert_eq!(denied.status, 403);
    assert!(denied
        .body
        .contains("cannot be used from your network address"));
    let denied = from(
        "127.0.0.7",
        &[("user", "u@example.test"), ("password", "secret")],
    );
    assert_eq!(denied.status, 403);
    assert!(denied.session().is_none());

    for _ in 0..2 {
        let r = from(
            "127.0.0.5",
            &[("user", "u@example.test"), ("password", "nope")],
        );
        assert_eq!(r.status, 403);
    }
    // kmp-authd banned the browser's address, not the web server's.
    wait_until(Duration::from_secs(10), || {
        w.inst.ctl_ok(&["ban", "list"]).contains("127.0.0.5")
    })
    .unwrap_or_else(|_| panic!("no ban: {}", w.inst.ctl_ok(&["ban", "list"])));
    let bans = w.inst.ctl_ok(&["ban", "list"]);
    assert!(!bans.contains("127.0.0.1 "), "{bans}");
    let r = from(
        "127.0.0.5",
        &[("user", "u@example.test"), ("password", "secret")],
    );
    assert!(r.session().is_none(), "a banned browser cannot log in");
    let r = from(
        "127.0.0.1",
        &[("user", "u@example.test"), ("password", "secret")],
    );
    assert_eq!(r.status, 303, "{}", r.body);
}

#[test]
fn settings_live_in_the_users_store_and_https_cookies_are_secure() {
    let Some(w) = webmail_instance() else { return };
    let s = w.login("u@example.test", "secret");
    let csrf = w.get("/settings", Some(&s)).csrf();
    let r = w.post(
        "/settings",
        Some(&s),
        &[
            ("csrf", &csrf),
            ("page_size", "50"),
            ("lang", "zh-CN"),
            ("skin", "dark"),
            ("tz", "+08:00"),
        ],
    );
    assert_eq!(r.status, 303, "{}", r.body);
    // A new session (another browser, another webmail host) sees them.
    let s2 = w.login("u@example.test", "secret");
    let f = w.get("/folders", Some(&s2));
    assert!(f.body.contains(">收件箱</a>"), "{}", f.body);
    assert!(f.body.contains("已发送") && f.body.contains("垃圾邮件"));
    assert!(f.body.contains("style.css?skin=dark"));
    let page = w.get("/settings", Some(&s2));
    assert!(page.body.contains("<option value=\"50\" selected>"));
    assert!(page.body.contains("<option value=\"+08:00\" selected>"));
    // The dark skin's style sheet, from the allow-list.
    let css = w.get("/static/style.css?skin=dark", None);
    assert_eq!(css.status, 200);
    assert!(css.header("content-type").unwrap().starts_with("text/css"));
    assert!(css.body.contains("--bg"));

    // Over HTTPS (the instance's certificate), the cookie is Secure.
    let conf = std::fs::read_to_string(w.inst.path().join("webmail/lighttpd.conf")).unwrap();
    if !conf.contains("ssl.engine") {
        eprintln!("SKIPPED the HTTPS part: lighttpd has no TLS module (lighttpd-mod-openssl)");
        return;
    }
    let https = w.post_login_with(&["-k"], &w.https_url(""), "u@example.test", "secret");
    assert_eq!(https.status, 303, "{}", https.body);
    assert!(https.set_cookies().join("").contains("; Secure"));
    let zh = w.curl(&[
        "-k",
        "-H",
        "Accept-Language: zh-TW,zh;q=0.8",
        &w.https_url("/login"),
    ]);
    assert!(zh.body.contains("<h1>登入</h1>"), "{}", zh.body);
}

#[test]
fn the_cgi_sends_plain_http_from_afar_to_https() {
    // The program itself, run as a web server runs a CGI.
    let Some(w) = webmail_instance() else { return };
    let run = |method: &str, addr: &str, https: &str| {
        let out = std::process::Command::new(common::bin("kmp-webmail"))
            .env_clear()
            .env("KMPROMAIL_CONFIG", w.inst.config())
            .env("REQUEST_METHOD", method)
            .env("PATH_INFO", "/login")
            .env("SCRIPT_NAME", "/webmail")
            .env("REQUEST_URI", "/webmail/login")
            .env("REMOTE_ADDR", addr)
            .env("HTTP_HOST", "mail.example.test:8080")
            .env("HTTPS", https)
            .env("CONTENT_LENGTH", "0")
            .output()
            .unwrap();
        assert!(out.status.success());
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let far = run("GET", "192.0.2.1", "");
    assert!(far.starts_with("Status: 303"), "{far}");
    assert!(
        far.contains("Location: https://mail.example.test/webmail/login"),
        "{far}"
    );
    let post = run("POST", "192.0.2.1", "");
    assert!(post.starts_with("Status: 403"), "{post}");
    let tls = run("GET", "192.0.2.1", "on");
    assert!(tls.starts_with("Status: 200"), "{tls}");
    // minijinja writes the slash as &#x2f;, which browsers read as /.
    assert!(
        tls.contains("action=\"&#x2f;webmail/login\""),
        "links under SCRIPT_NAME: {tls}"
    );
}

#[test]
fn kmpctl_start_runs_lighttpd_for_the_webmail_and_stop_ends_it() {
    let installed = ["/usr/sbin/lighttpd", "/usr/local/sbin/lighttpd"]
        .iter()
        .any(|p| std::path::Path::new(p).is_file());
    if !installed {
        eprintln!("SKIPPED: lighttpd is not installed (apt-get install lighttpd)");
        return;
    }
    let inst = common::Instance::new();
    inst.ctl_ok(&["domain", "add", "example.test"]);
    let o = inst.ctl_stdin(
        &["user", "add", "u@example.test", "--password-stdin"],
        Some(b"secret\n"),
    );
    assert!(o.status.success());
    inst.ctl_ok(&["start"]);
    struct Stop<'a>(&'a common::Instance);
    impl Drop for Stop<'_> {
        fn drop(&mut self) {
            let _ = self.0.ctl(&["stop"]);
        }
    }
    let _stop = Stop(&inst);
    let pid_file = inst.path().join("run/lighttpd.pid");
    assert!(pid_file.exists(), "lighttpd runs under the supervisor");
    let out = common::tool("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}"])
        .arg(format!("http://{}/login", inst.addr(80)))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "200");
    let log = std::fs::read_to_string(inst.path().join("log/kmpromail.log")).unwrap_or_default();
    assert!(log.contains("lighttpd started (pid"), "{log}");
    let status = inst.ctl_ok(&["status"]);
    let line = status
        .lines()
        .find(|l| l.starts_with("lighttpd"))
        .unwrap_or_else(|| panic!("{status}"));
    assert!(
        line.contains("running") && line.contains(&inst.addr(80)),
        "{line}"
    );
    inst.ctl_ok(&["stop"]);
    assert!(!pid_file.exists());
    assert!(
        std::net::TcpStream::connect(inst.addr(80)).is_err(),
        "lighttpd ended"
    );
}

/// The pages in a real browser: chromium headless through selenium, in
/// Chinese (the pages carry no JavaScript; the forms need none). The
/// style sheet must pass the Content-Security-Policy, the session cookie
/// must be out of the page's reach, and the forms must work.
#[test]
fn chromium_logs_in_makes_a_folder_and_logs_out() {
    let python = ["/usr/bin/python3", "python3"].into_iter().find(|p| {
        std::process::Command::new(p)
            .args(["-c", "import selenium"])
            .output()
            .is_ok_and(|o| o.status.success())
    });
    let driver = ["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"]
        .into_iter()
        .find(|p| std::path::Path::new(p).is_file());
    let (Some(python), Some(driver)) = (python, driver) else {
        eprintln!("SKIPPED: needs python3-selenium and chromium-driver (see tests/tools.txt)");
        return;
    };
    let Some(w) = webmail_instance() else { return };
    seed(&w);
    let script = r#"
import sys, time
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
base, driver = sys.argv[1], sys.argv[2]
def until(f, what):
    for _ in range(100):
        if f():
            return
        time.sleep(0.1)
    raise AssertionError(what)
o = Options()
for a in ['--headless=new', '--no-sandbox', '--disable-gpu', '--window-size=1200,800', '--lang=zh-CN']:
    o.add_argument(a)
o.add_experimental_option('prefs', {'intl.accept_languages': 'zh-CN'})
o.set_capability('goog:loggingPrefs', {'browser': 'ALL'})
d = webdriver.Chrome(service=Service(driver), options=o)
try:
    d.get(base + '/login')
    assert d.find_element(By.TAG_NAME, 'h1').text == '登录', d.page_source
    # The style sheet passed the CSP: the header has the skin's colour.
    bg = d.find_element(By.CSS_SELECTOR, 'header.top').value_of_css_property('background-color')
    assert bg in ('rgba(31, 95, 191, 1)', 'rgb(31, 95, 191)'), bg
    d.find_element(By.ID, 'user').send_keys('u@example.test')
    d.find_element(By.ID, 'password').send_keys('secret')
    d.find_element(By.CSS_SELECTOR, 'section.login button[type=submit]').click()
    until(lambda: d.current_url.endswith('/folders'), 'no folders page after login')
    body = d.find_element(By.TAG_NAME, 'body').text
    for word in ['收件箱', '草稿箱', '已发送', '已删除', '垃圾邮件', '工作']:
        assert word in body, (word, body)
    # HttpOnly: the page's own scripts cannot read the session.
    assert d.execute_script('return document.cookie') == ''
    d.find_element(By.ID, 'new-name').send_keys('浏览器')
    d.find_element(By.CSS_SELECTOR, 'section.create button[type=submit]').click()
    until(lambda: 'done=created' in d.current_url, 'no notice of the new folder')
    assert '文件夹已创建。' in d.find_element(By.TAG_NAME, 'body').text
    assert d.find_elements(By.CSS_SELECTOR, 'tr[data-folder="浏览器"]')
    d.find_element(By.CSS_SELECTOR, 'form.logout button').click()
    until(lambda: '/login?why=bye' in d.current_url, 'not logged out')
    assert '您已退出。' in d.find_element(By.TAG_NAME, 'body').text
    d.get(base + '/folders')
    until(lambda: '/login' in d.current_url, 'the old session still works')
    csp = [e for e in d.get_log('browser') if 'Content Security Policy' in e.get('message', '')]
    assert not csp, csp
    print('ok')
finally:
    d.quit()
"#;
    let out = std::process::Command::new(python)
        .arg("-c")
        .arg(script)
        .arg(w.url(""))
        .arg(driver)
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("ok"),
        "browser: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Expiry and the sliding renewal, with cookies sealed here under the
/// instance's own key (as a browser would hold them days later).
#[test]
fn expired_sessions_end_and_active_ones_slide() {
    use kmpromail::webmail::seal::Keys;
    let Some(w) = webmail_instance() else { return };
    let keys = Keys::load(&w.inst.path().join("webmail/key")).unwrap();
    let s = w.login("u@example.test", "secret");
    let mut sealed = keys.open(&s).expect("the instance's key opens its cookie");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(
        sealed.expires > now + 8 * 3600 - 120,
        "the default 8h lifetime"
    );

    // Ten minutes left: the page renews the cookie for the whole lifetime.
    sealed.expires = now + 600;
    let soon = keys.seal(&sealed).unwrap();
    let r = w.get("/folders", Some(&soon));
    assert_eq!(r.status, 200, "{}", r.body);
    let renewed = r.session().expect("a renewed cookie");
    let back = keys.open(&renewed).unwrap();
    assert!(
        back.expires > now + 8 * 3600 - 120,
        "{}",
        back.expires - now
    );
    assert_eq!(back.sid, sealed.sid);
    // A fresh one is not rewritten on every request.
    assert!(w.get("/folders", Some(&renewed)).session().is_none());

    // Past its expiry: refused and cleared, though its id is still listed.
    sealed.expires = now - 1;
    let old = keys.seal(&sealed).unwrap();
    let r = w.get("/folders", Some(&old));
    assert_eq!(r.status, 303);
    assert_eq!(r.header("location"), Some("/login?why=expired"));
    assert_eq!(r.session().as_deref(), Some(""));
    // A made-up session id, even sealed with the right key: not listed.
    sealed.expires = now + 3600;
    sealed.sid = "BBBBBBBBBBBBBBBBBBBBBB".into();
    let forged = keys.seal(&sealed).unwrap();
    assert_eq!(w.get("/folders", Some(&forged)).status, 303);
}

/// Logins of one user at the same moment (two browsers, two webmail hosts)
/// each keep their session: every session has its own METADATA entry, so no
/// login overwrites another's. Logging one out leaves the others alive.
#[test]
fn simultaneous_logins_of_one_user_all_keep_their_sessions() {
    let Some(w) = webmail_instance() else { return };
    let sessions: Vec<String> = std::thread::scope(|s| {
        let logins: Vec<_> = (0..8)
            .map(|_| s.spawn(|| w.login("u@example.test", "secret")))
            .collect();
        logins.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (i, c) in sessions.iter().enumerate() {
        let r = w.get("/folders", Some(c));
        assert_eq!(r.status, 200, "session {i} of 8 was lost: {}", r.body);
    }
    let page = w.get("/folders", Some(&sessions[0]));
    let out = w.post("/logout", Some(&sessions[0]), &[("csrf", &page.csrf())]);
    assert_eq!(out.status, 303, "{}", out.body);
    assert_eq!(w.get("/folders", Some(&sessions[0])).status, 303);
    for c in &sessions[1..] {
        assert_eq!(w.get("/folders", Some(c)).status, 200);
    }
}

/// A login writes its session and prunes the user's list in one
/// SETMETADATA: past 20 sessions the ones ending soonest go, never the new
/// one, and exactly 20 stay usable.
#[test]
fn a_user_keeps_twenty_sessions_and_the_newest_always_works() {
    let Some(w) = webmail_instance() else { return };
    let mut sessions = Vec::new();
    for i in 0..22 {
        let c = w.login("u@example.test", "secret");
        let r = w.get("/folders", Some(&c));
        assert_eq!(
            r.status, 200,
            "login {i} made no working session: {}",
            r.body
        );
        sessions.push(c);
    }
    let alive = sessions
        .iter()
        .filter(|c| w.get("/folders", Some(c)).status == 200)
        .count();
    assert_eq!(alive, 20, "sessions alive after 22 logins");
}

/// Every page's title is its name and the product's, as plain text: no
/// markup (or a form's CSRF token) spilled into the browser's tab, history
/// or bookmarks.
#[test]
fn page_titles_are_plain_text() {
    let Some(w) = webmail_instance() else { return };
    let s = w.login("u@example.test", "secret");
    for path in [
        "/folders",
        "/list?folder=INBOX",
        "/search",
        "/quota",
        "/settings",
        "/compose",
        "/contacts",
    ] {
        let page = w.get(path, Some(&s));
        assert_eq!(page.status, 200, "{path}: {}", page.body);
        let title = page
            .body
            .split_once("<title>")
            .and_then(|(_, rest)| rest.split_once("</title>"))
            .map(|(t, _)| t.to_string())
            .unwrap_or_else(|| panic!("{path}: no title"));
        assert!(
            !title.contains('<') && !title.contains('\n') && title.ends_with("Kmpromail"),
            "{path}: title {title:?}"
        );
    }
}
