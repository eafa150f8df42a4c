//! The INBOX list's announcement banner under lighttpd with curl: the
//! search for an unread announcement covers the whole INBOX once per
//! session and then only what arrived since (the mark in the session
//! cookie), and whichever cookie the browser sends — the first one, or
//! one carrying a mark — the banner is the same: shown while the newest
//! announcement is unread, gone once it is read, back for a new one.

mod common;

use common::webmail::webmail_instance;

const BANNER: &str = "id=\"announcement\"";

fn announce(w: &common::webmail::Webmail, name: &str, subject: &str) {
    let file = w.inst.path().join(name);
    std::fs::write(&file, format!("Subject: {subject}\n\n请注意。\n")).unwrap();
    w.inst
        .ctl_ok(&["announce", "--all", file.to_str().unwrap()]);
}

/// Marks every message of the INBOX read, over IMAP.
fn read_all(w: &common::webmail::Webmail) {
    let out = common::python(
        r#"
import imaplib, sys
M = imaplib.IMAP4('127.0.0.1', int(sys.argv[1]))
M.login('u@example.test', 'secret')
M.select('INBOX')
typ, _ = M.store('1:*', '+FLAGS', '\\Seen')
assert typ == 'OK'
M.logout()
"#,
        &[&(w.inst.base + 143).to_string()],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_banner_follows_new_announcements_whatever_cookie_is_sent() {
    let Some(w) = webmail_instance() else { return };
    let first = w.login("u@example.test", "secret");
    let page = w.get("/list?folder=INBOX", Some(&first));
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(!page.body.contains(BANNER), "{}", page.body);
    // The page keeps how far it searched in a renewed cookie.
    let marked = page.session().expect("the cookie with the search mark");
    assert_ne!(marked, first);

    announce(&w, "one.txt", "第一次通知");
    for cookie in [&first, &marked] {
        let page = w.get("/list?folder=INBOX", Some(cookie));
        assert!(page.body.contains(BANNER), "{}", page.body);
        assert!(page.body.contains("第一次通知"), "{}", page.body);
    }
    // With the mark of that page: still shown, found again without a search
    // of the whole INBOX.
    let page = w.get("/list?folder=INBOX", Some(&marked));
    let found = page.session().expect("the mark now names the announcement");
    let page = w.get("/list?folder=INBOX", Some(&found));
    assert!(page.body.contains(BANNER), "{}", page.body);
    assert!(page.session().is_none(), "nothing changed, no new cookie");

    read_all(&w);
    for cookie in [&first, &marked, &found] {
        let page = w.get("/list?folder=INBOX", Some(cookie));
        assert!(!page.body.contains(BANNER), "{}", page.body);
    }

    announce(&w, "two.txt", "第二次通知");
    for cookie in [&first, &marked, &found] {
        let page = w.get("/list?folder=INBOX", Some(cookie));
        assert!(page.body.contains("第二次通知"), "{}", page.body);
    }
    // Other folders never search.
    let page = w.get("/list?folder=Sent", Some(&found));
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(!page.body.contains(BANNER), "{}", page.body);
}
