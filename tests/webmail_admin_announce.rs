//! A postmaster's announcement to their domain through the webmail page:
//! kmp-admind takes it (the role checked) and leaves it in the spool,
//! kmp-local delivers it to every user of the domain as one stored file;
//! every a.example user finds it over IMAP and as the banner on the INBOX
//! page, no b.example user does, and sending it again delivers nothing
//! twice.

mod common;

use std::os::unix::fs::MetadataExt;
use std::time::Duration;

use common::webmail::{webmail_admin_instance, Webmail};
use common::{python, wait_until};

const SUBJECT: &str = "系统维护通知";

/// The INBOX files of `user` that carry the announcement header.
fn announcements(w: &Webmail, user: &str) -> Vec<std::path::PathBuf> {
    let v: serde_json::Value =
        serde_json::from_str(&w.inst.ctl_ok(&["--json", "user", "show", user])).unwrap();
    let root = std::path::PathBuf::from(v["mail_path"].as_str().unwrap());
    let mut out = Vec::new();
    for sub in ["new", "cur"] {
        for e in std::fs::read_dir(root.join(sub))
            .into_iter()
            .flatten()
            .flatten()
        {
            let text = std::fs::read(e.path()).unwrap_or_default();
            if text.starts_with(b"X-Kmpromail-Announcement: ") {
                out.push(e.path());
            }
        }
    }
    out
}

/// The subjects of announcements in `user`'s INBOX, over IMAP.
fn imap_subjects(w: &Webmail, user: &str, password: &str) -> String {
    let out = python(
        r#"
import imaplib, sys, email
from email.header import decode_header, make_header
c = imaplib.IMAP4('127.0.0.1', int(sys.argv[1]))
c.login(sys.argv[2], sys.argv[3])
c.select('INBOX', readonly=True)
typ, data = c.search(None, 'HEADER', 'X-Kmpromail-Announcement', '""')
for n in data[0].split():
    typ, d = c.fetch(n, '(BODY.PEEK[HEADER.FIELDS (SUBJECT)])')
    m = email.message_from_bytes(d[0][1])
    print(str(make_header(decode_header(m['Subject']))))
c.logout()
"#,
        &[&(w.inst.base + 143).to_string(), user, password],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn a_postmaster_announces_to_their_domain_once() {
    let Some(mut w) = webmail_admin_instance(&[]) else {
        return;
    };
    w.inst.spawn("kmp-local", &[]);
    w.inst.wait_socket("local.sock");
    let pm = w.login("pm@a.example", "pw-pm");
    let r = w.get("/admin/announce?d=a.example", Some(&pm));
    assert_eq!(r.status, 200, "{}", r.body);
    let csrf = r.csrf();
    // Another domain's form and its submission are refused.
    assert_eq!(w.get("/admin/announce?d=b.example", Some(&pm)).status, 403);
    let send = |d: &str, subject: &str| {
        w.post(
            "/admin/announce",
            Some(&pm),
            &[
                ("csrf", &csrf),
                ("d", d),
                ("subject", subject),
                ("text", "今晚 22:00 至 23:00 系统维护，期间无法收发邮件。\n"),
            ],
        )
    };
    assert_eq!(send("b.example", "x").status, 403);
    // No subject: the form again, with the text kept.
    let r = send("a.example", "");
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("今晚 22:00"), "{}", r.body);

    let r = send("a.example", SUBJECT);
    assert_eq!(r.status, 303, "{}", r.body);
    wait_until(Duration::from_secs(30), || {
        announcements(&w, "u@a.example").len() == 1 && announcements(&w, "pm@a.example").len() == 1
    })
    .unwrap_or_else(|_| panic!("not delivered: {}", w.inst.log("kmp-local")));
    // One stored file for the domain.
    let (a, b) = (
        announcements(&w, "u@a.example")[0].clone(),
        announcements(&w, "pm@a.example")[0].clone(),
    );
    assert_eq!(
        std::fs::metadata(&a).unwrap().ino(),
        std::fs::metadata(&b).unwrap().ino()
    );
    assert!(imap_subjects(&w, "u@a.example", "pw-u").contains(SUBJECT));
    assert!(imap_subjects(&w, "bob@b.example", "pw-bob")
        .trim()
        .is_empty());
    assert!(announcements(&w, "bob@b.example").is_empty());
    // The banner on u's INBOX page.
    let u = w.login("u@a.example", "pw-u");
    let r = w.get("/list", Some(&u));
    assert!(r.body.contains("id=\"announcement\""), "{}", r.body);
    assert!(r.body.contains(SUBJECT), "{}", r.body);

    // Sent again: nobody gets it twice.
    let r = send("a.example", SUBJECT);
    assert_eq!(r.status, 303, "{}", r.body);
    let spool = w.inst.path().join("announce");
    wait_until(Duration::from_secs(30), || {
        std::fs::read_dir(&spool)
            .unwrap()
            .flatten()
            .next()
            .is_none()
    })
    .unwrap_or_else(|_| panic!("the spool was not emptied: {}", w.inst.log("kmp-local")));
    assert_eq!(announcements(&w, "u@a.example").len(), 1);
    assert_eq!(announcements(&w, "pm@a.example").len(), 1);
    let log = w.inst.log("kmp-admind");
    assert!(
        log.contains("op=domain.announce object=a.example status=200"),
        "{log}"
    );
}
