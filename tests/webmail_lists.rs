//! The webmail's list pages through the real stack: lighttpd and
//! kmp-webmail, kmp-admind (the pages' only door), kmp-local (the lists'
//! state), kmp-send and kmp-smtpd (posts arrive by SMTP, approved posts
//! and rejection notices go through the queue), kmp-imapd (members read
//! what they got). curl is the browser; `webmail_lists_browser.py` drives
//! headless Chromium over the same pages and, with `KMP_WEBMAIL_SHOTS=DIR`,
//! saves their screenshots (doc/webmail/lists*.png).
//!
//! The owner u@example.test approves a held post in the page and the
//! members find it over IMAP; rejects another with a reason and its sender
//! finds the reason; adds and removes members; changes settings; creates a
//! list once the domain allows it. A user with no list sees no link.

mod common;

use std::process::Command;
use std::time::Duration;

use common::wait_until;
use common::webmail::{webmail_instance_with, Webmail};

const LIST: &str = "dev@example.test";

/// The webmail instance with the delivery daemons and kmp-admind, the
/// users v (member), s (poster, no member) and n (nothing to do with
/// lists), and the moderated list dev@example.test owned by u.
fn setup() -> Option<Webmail> {
    let mut w = webmail_instance_with(&[])?;
    for u in ["v", "s", "n"] {
        let out = w.inst.ctl_stdin(
            &[
                "user",
                "add",
                &format!("{u}@example.test"),
                "--password-stdin",
            ],
            Some(b"secret\n"),
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    w.inst.ctl_ok(&[
        "list",
        "add",
        LIST,
        "--owner",
        "u@example.test",
        "--policy",
        "moderated",
        "--description",
        "开发",
    ]);
    w.inst.ctl_ok(&[
        "list",
        "subscribe",
        LIST,
        "u@example.test",
        "v@example.test",
    ]);
    for d in [
        "kmp-local",
        "kmp-remote",
        "kmp-send",
        "kmp-smtpd",
        "kmp-admind",
    ] {
        w.inst.spawn(d, &[]);
        let inst = &w.inst;
        wait_until(Duration::from_secs(20), || {
            inst.path().join(format!("run/{d}.pid")).exists()
        })
        .unwrap_or_else(|_| panic!("{d} did not start: {}", inst.log(d)));
    }
    w.inst.wait_port(25);
    w.inst.wait_port(844);
    Some(w)
}

fn send(w: &Webmail, sender: &str, data: &[u8]) {
    let script = r#"
import smtplib, sys
port, sender, rcpt, path = sys.argv[1:5]
with open(path, "rb") as f:
    data = f.read()
with smtplib.SMTP("127.0.0.1", int(port), timeout=60) as s:
    s.sendmail(sender, [rcpt], data)
"#;
    let path = w.inst.path().join(format!("post-{}", data.len()));
    std::fs::write(&path, data).unwrap();
    let port = (w.inst.base + 25).to_string();
    let o = common::python(script, &[&port, sender, LIST, path.to_str().unwrap()]);
    assert!(
        o.status.success(),
        "smtplib: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Two posts from s: a GB2312 subject and text, a Big5 subject. Waits until
/// both are held.
fn post_two(w: &Webmail) {
    let mut gb = b"From: s@example.test\r\nTo: dev@example.test\r\n\
Subject: =?GB2312?B?1tDOxA==?=\r\nMessage-ID: <gb.1@example.test>\r\nMIME-Version: 1.0\r\n\
Content-Type: text/plain; charset=gb2312\r\n\r\n"
        .to_vec();
    gb.extend_from_slice(b"\xc4\xe3\xba\xc3\xa3\xac\xca\xc0\xbd\xe7\r\n");
    send(w, "s@example.test", &gb);
    let big5 = b"From: s@example.test\r\nTo: dev@example.test\r\n\
Subject: =?big5?B?pKSk5Q==?= second\r\nMessage-ID: <b5.2@example.test>\r\nMIME-Version: 1.0\r\n\
Content-Type: text/plain; charset=utf-8\r\n\r\nthe second post\r\n";
    send(w, "s@example.test", big5);
    wait_until(Duration::from_secs(60), || {
        w.inst.ctl_ok(&["list", "held", LIST]).lines().count() >= 3
    })
    .unwrap_or_else(|_| panic!("not held: {}", log(w)));
}

fn log(w: &Webmail) -> String {
    std::fs::read_to_string(w.inst.path().join("log/kmpromail.log")).unwrap_or_default()
        + &w.inst.log("kmp-local")
        + &w.inst.log("kmp-admind")
        + &std::fs::read_to_string(w.inst.path().join("log/webmail.log")).unwrap_or_default()
}

/// The held posts' ids in the order the page shows them, with the text
/// of each `<article>`.
fn held_articles(body: &str) -> Vec<(String, String)> {
    body.split("<article class=\"held\" data-id=\"")
        .skip(1)
        .map(|a| {
            let id = a[..a.find('"').unwrap()].to_string();
            let end = a.find("</article>").unwrap_or(a.len());
            (id, a[..end].to_string())
        })
        .collect()
}

/// What `user`'s INBOX holds over IMAP, each message decoded to text
/// (subject and body) by Python's email package.
fn inbox(w: &Webmail, user: &str) -> String {
    let script = r#"
import email, email.policy, imaplib, sys
port, user = sys.argv[1:3]
c = imaplib.IMAP4("127.0.0.1", int(port))
c.login(user, "secret")
c.select("INBOX")
out = []
typ, data = c.search(None, "ALL")
for n in data[0].split():
    typ, d = c.fetch(n, "(RFC822)")
    m = email.message_from_bytes(d[0][1], policy=email.policy.default)
    body = m.get_body(preferencelist=("plain",))
    out.append("%s\n%s\n%s" % (m["Message-ID"], m["Subject"], body.get_content() if body else ""))
c.logout()
print("\n----\n".join(out))
"#;
    let port = (w.inst.base + 143).to_string();
    let o = common::python(script, &[&port, user]);
    assert!(
        o.status.success(),
        "imaplib: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn an_owner_moderates_and_manages_the_list_in_the_pages() {
    let Some(w) = setup() else { return };
    post_two(&w);
    let s = w.login("u@example.test", "secret");

    // The navigation shows the list pages to the owner, not to n.
    let page = w.get("/lists", Some(&s));
    assert_eq!(page.status, 200, "{}\n{}", page.body, log(&w));
    assert!(page.body.contains("id=\"nav-lists\""), "{}", page.body);
    assert!(
        page.body.contains(LIST) && page.body.contains("开发"),
        "{}",
        page.body
    );
    let other = w.login("n@example.test", "secret");
    assert!(!w.get("/folders", Some(&other)).body.contains("nav-lists"));
    assert_eq!(
        w.get(&format!("/lists/held?list={LIST}"), Some(&other))
            .status,
        403
    );

    // Held posts with their subjects and text decoded.
    let held = w.get(&format!("/lists/held?list={LIST}"), Some(&s));
    assert_eq!(held.status, 200, "{}", held.body);
    let posts = held_articles(&held.body);
    assert_eq!(posts.len(), 2, "{}", held.body);
    let gb = posts
        .iter()
        .find(|(_, a)| a.contains("中文</h3>"))
        .expect("GB2312 subject");
    let b5 = posts
        .iter()
        .find(|(_, a)| a.contains("中文 second</h3>"))
        .expect("Big5 subject");
    assert!(gb.1.contains("你好，世界"), "{}", gb.1);
    assert!(b5.1.contains("s@example.test"), "{}", b5.1);
    let csrf = held.csrf();

    // Approve one: the members get it over IMAP.
    let r = w.post(
        "/lists/held",
        Some(&s),
        &[
            ("csrf", &csrf),
            ("list", LIST),
            ("id", &gb.0),
            ("action", "approve"),
        ],
    );
    assert_eq!(r.status, 303, "{}", r.body);
    assert!(r
        .header("location")
        .unwrap_or_default()
        .contains("done=held_approved"));
    for m in ["u@example.test", "v@example.test"] {
        wait_until(Duration::from_secs(60), || {
            inbox(&w, m).contains("<gb.1@example.test>")
        })
        .unwrap_or_else(|_| panic!("{m} did not get the post: {}", log(&w)));
    }
    let got = inbox(&w, "v@example.test");
    assert!(got.contains("中文") && got.contains("你好，世界"), "{got}");

    // Reject the other with a reason: its sender gets the reason.
    let reason = "请只发与项目有关的邮件";
    let r = w.post(
        "/lists/held",
        Some(&s),
        &[
            ("csrf", &csrf),
            ("list", LIST),
            ("id", &b5.0),
            ("action", "reject"),
            ("reason", reason),
        ],
    );
    assert_eq!(r.status, 303, "{}", r.body);
    wait_until(Duration::from_secs(60), || {
        inbox(&w, "s@example.test").contains(reason)
    })
    .unwrap_or_else(|_| panic!("no reason for the sender: {}", log(&w)));
    assert!(!inbox(&w, "v@example.test").contains("<b5.2@example.test>"));
    let held = w.get(&format!("/lists/held?list={LIST}"), Some(&s));
    assert!(held_articles(&held.body).is_empty(), "{}", held.body);
    // Without the CSRF token nothing happens.
    let r = w.post(
        "/lists/members",
        Some(&s),
        &[
            ("list", LIST),
            ("action", "remove"),
            ("member", "v@example.test"),
        ],
    );
    assert_eq!(r.status, 403);

    // Members: add two, remove one, paged list.
    let m = w.get(&format!("/lists/members?list={LIST}"), Some(&s));
    assert_eq!(m.status, 200, "{}", m.body);
    assert!(m.body.contains("v@example.test"), "{}", m.body);
    let r = w.post(
        "/lists/members",
        Some(&s),
        &[
            ("csrf", &csrf),
            ("list", LIST),
            ("action", "add"),
            ("addresses", "x@far.example\ny@far.example"),
        ],
    );
    assert_eq!(r.status, 303, "{}", r.body);
    let r = w.post(
        "/lists/members",
        Some(&s),
        &[
            ("csrf", &csrf),
            ("list", LIST),
            ("action", "remove"),
            ("member", "v@example.test"),
        ],
    );
    assert_eq!(r.status, 303, "{}", r.body);
    let members = w.inst.ctl_ok(&["list", "members", LIST]);
    assert!(
        members.contains("x@far.example") && members.contains("y@far.example"),
        "{members}"
    );
    assert!(!members.contains("v@example.test"), "{members}");
    // A refused address: the page says why, nothing changes.
    let r = w.post(
        "/lists/members",
        Some(&s),
        &[
            ("csrf", &csrf),
            ("list", LIST),
            ("action", "add"),
            ("addresses", "a%b@far.example"),
        ],
    );
    assert!(
        r.header("location").unwrap_or_default().contains("error="),
        "{r:?}"
    );

    // Settings.
    let r = w.post(
        "/lists/settings",
        Some(&s),
        &[
            ("csrf", &csrf),
            ("list", LIST),
            ("description", "开发者"),
            ("policy", "members"),
            ("non_member", "hold"),
            ("moderators", "v@example.test"),
            ("posters", ""),
            ("subject_prefix", "[dev]"),
            ("footer", "-- \n退订请回复"),
            ("max_size", "1M"),
        ],
    );
    assert_eq!(r.status, 303, "{}", r.body);
    assert!(
        r.header("location")
            .unwrap_or_default()
            .contains("done=list_saved"),
        "{r:?}"
    );
    let show: serde_json::Value =
        serde_json::from_str(&w.inst.ctl_ok(&["--json", "list", "show", LIST])).unwrap();
    assert_eq!(show["description"], "开发者");
    assert_eq!(show["policy"], "members");
    assert_eq!(show["subject_prefix"], "[dev]");
    assert_eq!(show["moderators"], serde_json::json!(["v@example.test"]));
    assert_eq!(show["max_size"], 1 << 20);
    assert_eq!(show["footer"], "-- \n退订请回复");

    // The new moderator v sees the list, for its held posts only.
    let vs = w.login("v@example.test", "secret");
    let page = w.get("/lists", Some(&vs));
    assert!(
        page.body.contains("id=\"nav-lists\"") && page.body.contains("Moderator"),
        "{}",
        page.body
    );
    assert!(!page.body.contains("/lists/members?list="), "{}", page.body);
    assert_eq!(
        w.get(&format!("/lists/members?list={LIST}"), Some(&vs))
            .status,
        403
    );

    // Members come 50 a page.
    let many: Vec<String> = (0..60).map(|i| format!("m{i:02}@far.example")).collect();
    let mut args = vec!["list", "subscribe", LIST];
    args.extend(many.iter().map(String::as_str));
    w.inst.ctl_ok(&args);
    let p0 = w.get(&format!("/lists/members?list={LIST}"), Some(&s));
    assert!(
        p0.body.contains("id=\"next-page\"") && p0.body.contains("Page 1 of 2"),
        "{}",
        p0.body
    );
    assert_eq!(p0.body.matches("<tr data-member=").count(), 50);
    let p1 = w.get(&format!("/lists/members?list={LIST}&page=1"), Some(&s));
    assert!(
        p1.body.contains("Page 2 of 2") && p1.body.contains("y@far.example"),
        "{}",
        p1.body
    );
    assert_eq!(p1.body.matches("<tr data-member=").count(), 13);

    // Creating a list: refused until the domain allows it.
    let r = w.post(
        "/lists/create",
        Some(&s),
        &[
            ("csrf", &csrf),
            ("name", "team"),
            ("domain", "example.test"),
            ("policy", "members"),
        ],
    );
    assert!(
        r.header("location").unwrap_or_default().contains("error="),
        "{r:?}"
    );
    w.inst
        .ctl_ok(&["domain", "set", "example.test", "--user-lists", "yes"]);
    assert!(w
        .get("/lists", Some(&s))
        .body
        .contains("id=\"create-list\""));
    let r = w.post(
        "/lists/create",
        Some(&s),
        &[
            ("csrf", &csrf),
            ("name", "team"),
            ("domain", "example.test"),
            ("description", "团队"),
            ("policy", "members"),
        ],
    );
    assert!(
        r.header("location")
            .unwrap_or_default()
            .contains("done=list_created"),
        "{r:?}"
    );
    let team = w
        .inst
        .ctl_ok(&["--json", "list", "show", "team@example.test"]);
    assert!(
        team.contains("u@example.test") && team.contains("团队"),
        "{team}"
    );
}

#[test]
fn the_list_pages_in_a_browser() {
    let Some(py) = common::webmail::browser_python() else {
        return;
    };
    let Some(w) = setup() else { return };
    w.inst.ctl_ok(&[
        "list",
        "subscribe",
        LIST,
        "x@far.example",
        "ann@far.example",
    ]);
    w.inst
        .ctl_ok(&["domain", "set", "example.test", "--user-lists", "yes"]);
    post_two(&w);
    let root = env!("CARGO_MANIFEST_DIR");
    let shots = std::env::var("KMP_WEBMAIL_SHOTS").unwrap_or_default();
    let mut cmd = Command::new(py);
    cmd.arg(format!("{root}/tests/webmail_lists_browser.py"))
        .arg(w.url(""))
        .arg(LIST);
    if !shots.is_empty() {
        cmd.arg(&shots);
    }
    let home = tempfile::tempdir().unwrap();
    cmd.env("HOME", home.path());
    let out = cmd.output().expect("run the browser driver");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("ok"),
        "browser test failed:\n{stdout}\n{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        log(&w)
    );
    let members = w.inst.ctl_ok(&["list", "members", LIST]);
    assert!(members.contains("new@far.example"), "{members}");
}
