//! Quota warnings at the level the user chose in the webmail: set through
//! the settings form (curl, as a browser posts it), then mail over SMTP
//! (Python's smtplib) through kmp-smtpd, kmp-send and kmp-local crosses it;
//! one warning, none more until usage falls below the line (messages
//! expunged over IMAP) and crosses it again. A delivery refused for a full
//! mailbox warns once, however many are refused.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::compose::{as_refs, fields_of, post_compose, set};
use common::webmail::{webmail_instance_with, Webmail};
use common::{python, wait_until};

const LEVEL_SUBJECT: &str = "Subject: Your mailbox is ";
const REFUSED_SUBJECT: &str = "Subject: Your mailbox is full: mail to you is being refused";

fn maildir(w: &Webmail) -> PathBuf {
    w.inst.path().join("mail/example.test/u")
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut v = Vec::new();
    for sub in ["new", "cur"] {
        if let Ok(rd) = fs::read_dir(dir.join(sub)) {
            v.extend(rd.map(|e| e.unwrap().path()));
        }
    }
    v
}

/// The messages whose text contains `what`.
fn count(w: &Webmail, what: &str) -> usize {
    files(&maildir(w))
        .iter()
        .filter(|p| {
            fs::read_to_string(p)
                .map(|t| t.contains(what))
                .unwrap_or(false)
        })
        .count()
}

fn smtp(w: &Webmail, n: usize) {
    let out = python(
        r#"
import smtplib, sys
port, n = int(sys.argv[1]), sys.argv[2]
with smtplib.SMTP('127.0.0.1', port, timeout=60) as s:
    s.sendmail('alice@remote.test', ['u@example.test'],
               ('Subject: message %s\r\n\r\nhello\r\n' % n).encode())
"#,
        &[&(w.inst.base + 25).to_string(), &n.to_string()],
    );
    assert!(
        out.status.success(),
        "smtplib: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Sends message `n` and waits until it is in the Maildir.
fn deliver(w: &Webmail, n: usize) {
    smtp(w, n);
    let mark = format!("Subject: message {n}\n");
    wait_until(Duration::from_secs(30), || count(w, &mark) == 1).unwrap_or_else(|_| {
        panic!(
            "message {n} was not delivered:\n{}",
            w.inst.log("kmp-local")
        )
    });
}

/// Expunges every message but `keep` of the INBOX over IMAP.
fn expunge_all_but(w: &Webmail, keep: usize) {
    let out = python(
        r#"
import imaplib, sys
port, keep = int(sys.argv[1]), int(sys.argv[2])
M = imaplib.IMAP4('127.0.0.1', port)
M.login('u@example.test', 'secret')
typ, data = M.select('INBOX')
n = int(data[0])
if n > keep:
    M.store('%d:%d' % (keep + 1, n), '+FLAGS', '(\\Deleted)')
    M.expunge()
M.logout()
"#,
        &[&(w.inst.base + 143).to_string(), &keep.to_string()],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn start_delivery(w: &mut Webmail) {
    let inst = &mut w.inst;
    inst.spawn("kmp-local", &[]);
    inst.wait_socket("local.sock");
    inst.spawn("kmp-remote", &[]);
    inst.wait_socket("remote.sock");
    let pid = inst.path().join("run/kmp-send.pid");
    inst.spawn("kmp-send", &[]);
    wait_until(Duration::from_secs(20), || pid.exists())
        .unwrap_or_else(|_| panic!("kmp-send never got ready:\n{}", inst.log("kmp-send")));
    inst.spawn("kmp-smtpd", &[]);
    inst.wait_port(25);
}

#[test]
fn the_users_level_warns_once_and_again_after_falling_below_and_a_refusal_warns_once() {
    let Some(mut w) = webmail_instance_with(&[
        ("send", "min_backoff = \"1s\""),
        ("send", "max_backoff = \"2s\""),
        ("send", "scan_interval = \"1s\""),
        ("smtpd", "auth_plaintext = true"),
    ]) else {
        return;
    };
    // Ten messages at most; the system warns at 90%, the user asks for 60%.
    w.inst.ctl_ok(&[
        "user",
        "quota",
        "u@example.test",
        "0",
        "--quota-messages",
        "10",
    ]);
    let sid = w.login("u@example.test", "secret");
    let page = w.get("/settings", Some(&sid));
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body.contains("name=\"quota_warning\""),
        "{}",
        page.body
    );
    assert!(page.body.contains("(90%)"), "the system's level is shown");
    assert!(
        !page.body.contains("value=\"40\""),
        "nothing below the minimum"
    );
    let csrf = page.csrf();
    let form = |level: &str| {
        vec![
            ("csrf", csrf.clone()),
            ("page_size", "25".to_string()),
            ("lang", String::new()),
            ("skin", "default".to_string()),
            ("tz", "UTC".to_string()),
            ("quota_warning", level.to_string()),
        ]
    };
    // A level not offered is refused and nothing is stored.
    let bad: Vec<(&str, String)> = form("7");
    let pairs: Vec<(&str, &str)> = bad.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let r = w.post("/settings", Some(&sid), &pairs);
    assert_eq!(r.status, 400, "{}", r.body);
    let good = form("60");
    let pairs: Vec<(&str, &str)> = good.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let r = w.post("/settings", Some(&sid), &pairs);
    assert_eq!(r.status, 303, "{}", r.body);
    let page = w.get("/settings", Some(&sid));
    assert!(page.body.contains("value=\"60\" selected"), "{}", page.body);

    start_delivery(&mut w);
    // 5 of 10: below the user's 60%.
    for n in 1..=5 {
        deliver(&w, n);
    }
    assert_eq!(count(&w, LEVEL_SUBJECT), 0);
    // The 6th reaches 60%: one warning that names the user's level.
    deliver(&w, 6);
    wait_until(Duration::from_secs(10), || count(&w, LEVEL_SUBJECT) == 1)
        .unwrap_or_else(|_| panic!("no warning at 60%:\n{}", w.inst.log("kmp-local")));
    let warning = files(&maildir(&w))
        .into_iter()
        .map(|p| fs::read_to_string(p).unwrap())
        .find(|t| t.contains(LEVEL_SUBJECT))
        .unwrap();
    assert!(
        warning.contains("(the warning is sent at 60%)"),
        "{warning}"
    );
    // Further deliveries above the line: no second warning.
    deliver(&w, 7);
    assert_eq!(count(&w, LEVEL_SUBJECT), 1);

    // The user makes room (below the line), then crosses it again.
    expunge_all_but(&w, 2);
    deliver(&w, 8);
    // The warning is forgotten by the delivery, just after its file shows.
    wait_until(Duration::from_secs(10), || {
        !maildir(&w).join("kmp-quota-warned").exists()
    })
    .unwrap_or_else(|_| panic!("the warning was not forgotten below the line"));
    assert_eq!(count(&w, LEVEL_SUBJECT), 0, "the old warning was expunged");
    for n in 9..=11 {
        deliver(&w, n);
    }
    // 2 + 4 = 6 of 10.
    wait_until(Duration::from_secs(10), || count(&w, LEVEL_SUBJECT) == 1)
        .unwrap_or_else(|_| panic!("no second warning:\n{}", w.inst.log("kmp-local")));

    // Full: 7 now (6 and the warning); fill to 10, then three are refused.
    for n in 12..=14 {
        deliver(&w, n);
    }
    assert_eq!(files(&maildir(&w)).len(), 10);
    for n in 15..=17 {
        smtp(&w, n);
    }
    wait_until(Duration::from_secs(30), || count(&w, REFUSED_SUBJECT) == 1)
        .unwrap_or_else(|_| panic!("no refusal warning:\n{}", w.inst.log("kmp-local")));
    // Retries (every second or two) and the other refused messages: still one.
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(count(&w, REFUSED_SUBJECT), 1);
    assert_eq!(count(&w, "Subject: message 15\n"), 0);
    let log = w.inst.log("kmp-local");
    assert!(log.contains("dsn=4.2.2"), "{log}");

    // Saving a draft into the full mailbox: APPEND is refused with
    // [OVERQUOTA]; the form comes back as typed, saying why.
    let page = w.get("/compose", Some(&sid));
    let mut f = fields_of(&page.body);
    set(&mut f, "to", "bob@example.test");
    set(&mut f, "subject", "草稿 kept");
    set(&mut f, "body", "正文\n");
    set(&mut f, "action", "save");
    let r = post_compose(&w, &sid, &as_refs(&f), &[]);
    assert_eq!(r.status, 507, "{}", r.body);
    assert!(
        r.body
            .contains("Your mailbox is full, so the message could not be saved"),
        "{}",
        r.body
    );
    assert!(
        r.body.contains("OVERQUOTA"),
        "the server's reason: {}",
        r.body
    );
    assert!(
        r.body.contains("草稿 kept"),
        "what was typed is kept: {}",
        r.body
    );

    // Sending from the full mailbox: the message goes, the copy in Sent
    // cannot be kept, and the page after says so.
    let page = w.get("/compose", Some(&sid));
    let mut f = fields_of(&page.body);
    set(&mut f, "to", "far@remote.test");
    set(&mut f, "subject", "sent anyway");
    set(&mut f, "body", "hello\n");
    set(&mut f, "save_sent", "1");
    set(&mut f, "action", "send");
    let r = post_compose(&w, &sid, &as_refs(&f), &[]);
    assert_eq!(r.status, 303, "{}", r.body);
    let loc = r.header("location").unwrap().to_string();
    assert!(loc.contains("done=sent_not_saved"), "{loc}");
    let list = w.get(&loc[loc.find("/list").unwrap()..], Some(&sid));
    assert!(
        list.body.contains("no copy of it was kept in Sent"),
        "{}",
        list.body
    );
}
