//! The webmail's fetch page through the real stack: curl → lighttpd →
//! kmp-webmail → kmp-admind → the user database and kmp-fetch, which
//! collects from the instance's own kmp-pop3d (the mailbox of another
//! user, bob) into a folder with a Chinese name, delivered by kmp-send and
//! kmp-local and found there over IMAP. A wrong password shows its error
//! on the page; the password is never sent back to the browser. And the
//! `webmail` service: a domain without it (or without `imap`) cannot log
//! in to the webmail, while IMAP clients still can.
//!
//! With `KMP_WEBMAIL_SHOTS=DIR` and a browser at hand, the page is saved
//! as DIR/fetch.png (tests/webmail_fetch_browser.py); that is how
//! doc/webmail/fetch.png is made.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::webmail::{webmail_instance, Http, Webmail, PY_MUTF7};
use common::{python, set_config, wait_until};

const FOLDER: &str = "新浪邮箱";
const BOB_PASS: &str = "secret";

/// The instance with kmp-admind and kmp-fetch running beside the
/// compose harness's daemons (kmp-send, kmp-local, kmp-pop3d).
fn start() -> Option<Webmail> {
    let mut w = common::compose::start(&[
        // The wrong password below must not ban the loopback.
        ("authd", "max_failures = 1000"),
        ("fetch", "min_interval = \"1s\""),
    ])?;
    let ca = format!(
        "ca_file = \"{}\"",
        w.inst.path().join("tls/cert.pem").display()
    );
    set_config(&w.inst, "fetch", &ca);
    for p in ["kmp-admind", "kmp-fetch"] {
        w.inst.spawn(p, &[]);
        let pid = w.inst.path().join(format!("run/{p}.pid"));
        wait_until(Duration::from_secs(20), || pid.exists())
            .unwrap_or_else(|_| panic!("{p} did not start: {}", w.inst.log(p)));
    }
    w.inst.wait_port(844);
    Some(w)
}

/// Puts `n` messages with a GB2312 subject into bob's INBOX.
fn fill_bob(w: &Webmail, n: usize) {
    let dir = w.inst.path().join("mail/example.test/bob");
    for sub in ["new", "cur", "tmp"] {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
    }
    for i in 0..n {
        let text = format!(
            "From: a@remote.test\r\nTo: bob@example.test\r\nSubject: =?GB2312?B?suLK1Q==?= {i}\r\nMessage-Id: <web.{i}@remote.test>\r\nDate: Thu, 1 Jan 2026 00:00:00 +0000\r\n\r\nhello {i}\r\n"
        );
        std::fs::write(dir.join(format!("new/1767225600.M{i}P1.web")), text).unwrap();
    }
}

/// The messages in the user's folder, counted over IMAP.
fn imap_count(w: &Webmail, folder: &str) -> usize {
    let script = format!(
        "import base64, imaplib, sys\n{PY_MUTF7}\nc = imaplib.IMAP4('127.0.0.1', int(sys.argv[1]))\nc.login('u@example.test', 'secret')\ntyp, data = c.select(quoted(sys.argv[2]), readonly=True)\nprint(data[0].decode() if typ == 'OK' else '0')\nc.logout()\n"
    );
    let out = python(&script, &[&(w.inst.base + 143).to_string(), folder]);
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(0)
}

/// Follows the session cookie: a response may renew it (kmp-admind's
/// token is kept in it).
fn follow(session: &mut String, r: &Http) {
    if let Some(s) = r.session().filter(|s| !s.is_empty()) {
        *session = s;
    }
}

fn form<'a>(
    w: &Webmail,
    name: &'a str,
    password: &'a str,
    port: &'a str,
) -> Vec<(&'a str, &'a str)> {
    let _ = w;
    vec![
        ("name", name),
        ("protocol", "pop3"),
        ("host", "localhost"),
        ("port", port),
        ("tls", "implicit"),
        ("username", "bob@example.test"),
        ("password", password),
        ("target", FOLDER),
        ("keep", "keep"),
        // Paused: only "fetch now" collects, so each count is its own.
        ("disabled", "1"),
    ]
}

#[test]
fn a_user_adds_an_account_fetches_now_and_sees_a_wrong_password() {
    let Some(w) = start() else { return };
    fill_bob(&w, 2);
    let mut s = w.login("u@example.test", "secret");
    let page = w.get("/fetch", Some(&s));
    assert_eq!(page.status, 200, "{}", page.body);
    follow(&mut s, &page);
    assert!(page.body.contains("id=\"fetch-none\""), "{}", page.body);
    assert!(page.body.contains("id=\"nav-fetch\""), "{}", page.body);
    let csrf = page.csrf();
    let port = (w.inst.base + 995).to_string();

    // Without TLS, only with consent: refused, nothing stored, the typed
    // values back but not the password.
    let mut plain = form(&w, "新浪", BOB_PASS, "110");
    plain.retain(|(k, _)| *k != "tls");
    plain.extend([("tls", "none"), ("csrf", csrf.as_str())]);
    let r = w.post("/fetch/save", Some(&s), &plain);
    assert_eq!(r.status, 400, "{}", r.body);
    follow(&mut s, &r);
    assert!(r.body.contains("id=\"fetch-result\""), "{}", r.body);
    assert!(!r.body.contains(BOB_PASS), "{}", r.body);
    assert!(r.body.contains("value=\"localhost\""), "{}", r.body);
    let listed = w
        .inst
        .ctl_ok(&["fetch", "list", "u@example.test", "--json"]);
    assert_eq!(listed.trim(), "[]");
    // No CSRF token: 403 and nothing done.
    let mut no_csrf = form(&w, "新浪", BOB_PASS, &port);
    let r = w.post("/fetch/save", Some(&s), &no_csrf);
    assert_eq!(r.status, 403, "{}", r.body);

    no_csrf.push(("csrf", csrf.as_str()));
    let r = w.post("/fetch/save", Some(&s), &no_csrf);
    assert_eq!(r.status, 303, "{}", r.body);
    assert!(
        r.header("location")
            .unwrap_or_default()
            .contains("done=fetch_added"),
        "{r:?}"
    );
    follow(&mut s, &r);
    let page = w.get("/fetch?done=fetch_added", Some(&s));
    follow(&mut s, &page);
    assert!(page.body.contains("data-account=\"新浪\""), "{}", page.body);
    assert!(!page.body.contains(BOB_PASS));
    // The edit form never carries the password.
    let edit = w.get("/fetch?edit=%E6%96%B0%E6%B5%AA", Some(&s));
    follow(&mut s, &edit);
    assert_eq!(edit.status, 200, "{}", edit.body);
    assert!(
        edit.body.contains("name=\"password\" value=\"\""),
        "{}",
        edit.body
    );
    assert!(!edit.body.contains(BOB_PASS));

    // Test, then fetch now: the two messages land in 新浪邮箱.
    let act = |s: &str, action: &str, extra: &[(&str, &str)]| {
        let mut f = vec![
            ("csrf", csrf.as_str()),
            ("name", "新浪"),
            ("action", action),
        ];
        f.extend_from_slice(extra);
        w.post("/fetch/act", Some(s), &f)
    };
    let r = act(&s, "test", &[]);
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        r.body
            .contains("class=\"notice\" role=\"status\" id=\"fetch-result\""),
        "{}",
        r.body
    );
    let r = act(&s, "run", &[]);
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        r.body
            .contains("class=\"notice\" role=\"status\" id=\"fetch-result\""),
        "{}",
        r.body
    );
    wait_until(Duration::from_secs(30), || imap_count(&w, FOLDER) >= 2).unwrap_or_else(|_| {
        panic!(
            "{} in {FOLDER}: {}\n{}",
            imap_count(&w, FOLDER),
            w.inst.log("kmp-fetch"),
            w.inst.log("kmp-local")
        )
    });
    assert_eq!(imap_count(&w, FOLDER), 2);
    // Fetched once: another run finds nothing new.
    let r = act(&s, "run", &[]);
    assert!(r.body.contains("id=\"fetch-result\""), "{}", r.body);
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(imap_count(&w, FOLDER), 2);

    // A wrong password: saved (only the password changes), then its error
    // on the page, in the result and in the list.
    let r = w.post(
        "/fetch/save",
        Some(&s),
        &[
            ("csrf", csrf.as_str()),
            ("edit", "1"),
            ("name", "新浪"),
            ("protocol", "pop3"),
            ("host", "localhost"),
            ("port", port.as_str()),
            ("tls", "implicit"),
            ("username", "bob@example.test"),
            ("password", "not-the-password"),
            ("target", FOLDER),
            ("keep", "keep"),
            ("disabled", "1"),
        ],
    );
    assert_eq!(r.status, 303, "{}", r.body);
    let r = act(&s, "run", &[]);
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        r.body
            .contains("class=\"error\" role=\"alert\" id=\"fetch-result\""),
        "{}",
        r.body
    );
    assert!(r.body.contains("fetch-account failing"), "{}", r.body);
    assert!(!r.body.contains("not-the-password"));
    if let Some(py) = common::webmail::browser_python() {
        shot(&w, py, &s);
    }

    // Remove asks first, then removes.
    let r = act(&s, "remove", &[]);
    assert!(r.body.contains("id=\"fetch-confirm\""), "{}", r.body);
    assert!(w
        .inst
        .ctl_ok(&["fetch", "list", "u@example.test"])
        .contains("新浪"));
    let r = act(&s, "remove", &[("confirm", "1")]);
    assert_eq!(r.status, 303, "{}", r.body);
    let listed = w
        .inst
        .ctl_ok(&["fetch", "list", "u@example.test", "--json"]);
    assert_eq!(listed.trim(), "[]");
    // What was fetched stays.
    assert_eq!(imap_count(&w, FOLDER), 2);
    assert!(!w.inst.log("kmp-fetch").contains("not-the-password"));
    assert!(!w.inst.log("kmp-admind").contains("not-the-password"));
}

/// The page in headless Chromium, saved as fetch.png when
/// `KMP_WEBMAIL_SHOTS` is set.
fn shot(w: &Webmail, py: &str, session: &str) {
    let shots = std::env::var("KMP_WEBMAIL_SHOTS").unwrap_or_default();
    if shots.is_empty() {
        return;
    }
    let root = env!("CARGO_MANIFEST_DIR");
    let home = tempfile::tempdir().unwrap();
    let out = Command::new(py)
        .arg(format!("{root}/tests/webmail_fetch_browser.py"))
        .arg(w.url(""))
        .arg(session)
        .arg(Path::new(&shots).join("fetch.png"))
        .env("HOME", home.path())
        .output()
        .expect("run the browser driver");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_domain_without_the_webmail_service_cannot_log_in_to_the_webmail() {
    let Some(w) = webmail_instance() else { return };
    let imap_login = || {
        let script = "import imaplib, sys\nc = imaplib.IMAP4('127.0.0.1', int(sys.argv[1]))\nc.login('u@example.test', 'secret')\nprint('in')\n";
        let out = python(script, &[&(w.inst.base + 143).to_string()]);
        String::from_utf8_lossy(&out.stdout).contains("in")
    };
    assert_eq!(w.post_login("u@example.test", "secret").status, 303);
    w.inst.ctl_ok(&[
        "domain",
        "set",
        "example.test",
        "--services",
        "pop3,imap,smtp,fetch,managesieve",
    ]);
    let r = w.post_login("u@example.test", "secret");
    assert_ne!(r.status, 303, "{}", r.body);
    assert!(r.session().is_none_or(|s| s.is_empty()), "{r:?}");
    // A mail client still reads its mail over IMAP.
    assert!(imap_login());
    // Webmail without IMAP is no webmail either: it reads through kmp-imapd.
    w.inst.ctl_ok(&[
        "domain",
        "set",
        "example.test",
        "--services",
        "pop3,webmail,smtp,fetch,managesieve",
    ]);
    assert_ne!(w.post_login("u@example.test", "secret").status, 303);
    assert!(!imap_login());
    w.inst
        .ctl_ok(&["domain", "set", "example.test", "--services", "all"]);
    assert_eq!(w.post_login("u@example.test", "secret").status, 303);
    // kmp-authd said why, and counted no failure (the password was right).
    let log = w.inst.log("kmp-authd");
    assert!(
        log.contains("service=webmail") && log.contains("service webmail not allowed"),
        "{log}"
    );
}
