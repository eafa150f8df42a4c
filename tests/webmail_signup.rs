//! Sign-up through the webmail's page, the real stack (curl → lighttpd →
//! kmp-webmail → kmp-admind → the user database): off by default (no link
//! on the login page), open for one domain, the question and its token,
//! reserved names and weak passwords refused, a domain that is off
//! refusing, the new user logging in, `approve` leaving the account
//! disabled, and the rate limit per browser address (the webmail names the
//! browser; kmp-admind takes it from `admind.trusted_networks`).
//!
//! With `KMP_WEBMAIL_SHOTS=DIR` and a browser at hand the page is saved as
//! DIR/signup.png (tests/webmail_signup_browser.py).

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::compose::input;
use common::wait_until;
use common::webmail::{form, webmail_instance_with, Http, Webmail};

const GOOD: &str = "Tr0ub4dor-and-3x";

fn start() -> Option<Webmail> {
    let mut w = webmail_instance_with(&[
        ("admind", "trusted_networks = [\"127.0.0.1\"]"),
        ("admind", "signup_max = 4"),
    ])?;
    w.inst.spawn("kmp-admind", &[]);
    let pid = w.inst.path().join("run/kmp-admind.pid");
    wait_until(Duration::from_secs(20), || pid.exists())
        .unwrap_or_else(|_| panic!("kmp-admind did not start: {}", w.inst.log("kmp-admind")));
    w.inst.wait_port(844);
    Some(w)
}

/// The form's token and the answer to its question.
fn question(page: &Http) -> (String, String) {
    let token = input(&page.body, "token").unwrap_or_else(|| panic!("{}", page.body));
    let mut parts = token.split('.');
    parts.next();
    let a: u32 = parts.next().unwrap().parse().unwrap();
    let b: u32 = parts.next().unwrap().parse().unwrap();
    assert!(page.body.contains(&format!("{a} + {b}")), "{}", page.body);
    (token, (a + b).to_string())
}

/// POSTs the sign-up form from `from` (a loopback address curl binds to).
fn post(w: &Webmail, from: &str, fields: &[(&str, &str)]) -> Http {
    let body = form(fields);
    w.curl(&[
        "--interface",
        from,
        "--data-binary",
        &body,
        &w.url("/signup"),
    ])
}

#[test]
fn people_sign_up_where_a_domain_allows_it_and_no_faster_than_allowed() {
    let Some(w) = start() else { return };
    // Off by default: no link, and the page says it is closed.
    let login = w.get("/login", None);
    assert!(!login.body.contains("id=\"signup-link\""), "{}", login.body);
    assert!(w.get("/signup", None).body.contains("id=\"signup-closed\""));

    w.inst
        .ctl_ok(&["domain", "set", "example.test", "--signup", "open"]);
    w.inst.ctl_ok(&["domain", "add", "other.test"]);
    let shown = w.inst.ctl_ok(&["domain", "show", "example.test"]);
    assert!(shown.contains("sign-up:         open"), "{shown}");
    let login = w.get("/login", None);
    assert!(login.body.contains("id=\"signup-link\""), "{}", login.body);
    let page = w.get("/signup", None);
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body.contains("value=\"example.test\""),
        "{}",
        page.body
    );
    assert!(!page.body.contains("value=\"other.test\""), "{}", page.body);
    let (token, answer) = question(&page);
    let fields = |local: &'static str, domain: &'static str, pw: &'static str| {
        vec![
            ("local", local),
            ("domain", domain),
            ("password", pw),
            ("password2", pw),
        ]
    };
    let with = |mut f: Vec<(&'static str, &'static str)>, token: &str, answer: &str| {
        let (t, a) = (token.to_string(), answer.to_string());
        let mut out: Vec<(String, String)> = f
            .drain(..)
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        out.push(("token".into(), t));
        out.push(("answer".into(), a));
        out
    };
    let send = |from: &str, f: Vec<(String, String)>| {
        let pairs: Vec<(&str, &str)> = f.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        post(&w, from, &pairs)
    };
    // Too quick for a person.
    let r = send(
        "127.0.0.1",
        with(fields("zhang.wei", "example.test", GOOD), &token, &answer),
    );
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("quicker"), "{}", r.body);
    std::thread::sleep(Duration::from_secs(3));
    // A wrong answer, a forged question: refused before kmp-admind is asked.
    let r = send(
        "127.0.0.1",
        with(fields("zhang.wei", "example.test", GOOD), &token, "999"),
    );
    assert!(r.body.contains("not right"), "{}", r.body);
    let forged = token.replacen('.', ".1", 1);
    let r = send(
        "127.0.0.1",
        with(fields("zhang.wei", "example.test", GOOD), &forged, &answer),
    );
    assert!(r.body.contains("expired or was changed"), "{}", r.body);
    // 1: signed up; the new user logs in.
    let r = send(
        "127.0.0.1",
        with(fields("zhang.wei", "example.test", GOOD), &token, &answer),
    );
    assert_eq!(r.status, 303, "{}", r.body);
    assert!(
        r.header("location")
            .unwrap_or_default()
            .contains("why=signed_up"),
        "{r:?}"
    );
    assert!(!r.body.contains(GOOD));
    w.login("zhang.wei@example.test", GOOD);
    // 2, 3: a reserved name, a weak password.
    let r = send(
        "127.0.0.1",
        with(fields("Post.Master", "example.test", GOOD), &token, &answer),
    );
    assert!(r.body.contains("reserved"), "{}", r.body);
    let r = send(
        "127.0.0.1",
        with(fields("li.lei", "example.test", "short1"), &token, &answer),
    );
    assert!(r.body.contains("at least 10"), "{}", r.body);
    assert!(!r.body.contains("short1"), "the password is not sent back");
    // 4: a domain that is off.
    let r = send(
        "127.0.0.1",
        with(fields("li.lei", "other.test", GOOD), &token, &answer),
    );
    assert!(r.body.contains("not open"), "{}", r.body);
    assert!(!w
        .inst
        .ctl(&["user", "show", "li.lei@other.test"])
        .status
        .success());
    // 5: the rate limit (4 an hour) bites this browser, and only it.
    let r = send(
        "127.0.0.1",
        with(fields("li.lei", "example.test", GOOD), &token, &answer),
    );
    assert_eq!(r.status, 429, "{}", r.body);
    assert!(r.body.contains("Too many"), "{}", r.body);
    assert!(!w
        .inst
        .ctl(&["user", "show", "li.lei@example.test"])
        .status
        .success());
    // Another browser, and a domain that wants approval: made, disabled.
    w.inst
        .ctl_ok(&["domain", "set", "example.test", "--signup", "approve"]);
    let r = send(
        "127.0.0.2",
        with(fields("li.lei", "example.test", GOOD), &token, &answer),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("id=\"signup-pending\""), "{}", r.body);
    let shown = w.inst.ctl_ok(&["user", "show", "li.lei@example.test"]);
    assert!(shown.contains("disabled"), "{shown}");
    assert_ne!(w.post_login("li.lei@example.test", GOOD).status, 303);
    let log = w.inst.log("kmp-admind");
    assert!(
        log.contains("op=signup object=zhang.wei@example.test status=200"),
        "{log}"
    );
    assert!(
        log.contains("ip=127.0.0.2"),
        "the browser's address, not the webmail's: {log}"
    );
    assert!(!log.contains(GOOD));
    if let Some(py) = common::webmail::browser_python() {
        shot(&w, py);
    }
}

/// The page in headless Chromium, saved as signup.png when
/// `KMP_WEBMAIL_SHOTS` is set.
fn shot(w: &Webmail, py: &str) {
    let shots = std::env::var("KMP_WEBMAIL_SHOTS").unwrap_or_default();
    if shots.is_empty() {
        return;
    }
    let root = env!("CARGO_MANIFEST_DIR");
    let home = tempfile::tempdir().unwrap();
    let out = Command::new(py)
        .arg(format!("{root}/tests/webmail_signup_browser.py"))
        .arg(w.url(""))
        .arg(Path::new(&shots).join("signup.png"))
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
