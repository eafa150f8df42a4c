//! The address book on the compose page, end to end under lighttpd: the
//! suggestions offered on To, Cc and Bcc (groups, recent recipients, the
//! personal and the domain book), a group's name in To sent to its
//! members, the recipients of each message sent kept as recent ones, and
//! the "write" links of the address book. The recipients read the mail
//! with Python's imaplib.

mod common;

use common::compose::{as_refs, fields_of, input, post_compose, set, start, unescape};
use common::webmail::{Http, Webmail};

/// The suggestions offered on the page (unescaped option values).
fn offered(page: &str) -> Vec<String> {
    let at = page
        .find("<datalist id=\"kmp-addresses\">")
        .unwrap_or_else(|| panic!("no datalist in {page}"));
    let rest = &page[at..];
    let rest = &rest[..rest.find("</datalist>").unwrap()];
    rest.split("<option value=\"")
        .skip(1)
        .map(|o| unescape(&o[..o.find('"').unwrap()]))
        .collect()
}

/// Sends the compose form with `to` and `subject` as a browser would.
fn send(w: &Webmail, s: &str, to: &str, subject: &str) -> Http {
    let page = w.get("/compose", Some(s));
    assert_eq!(page.status, 200, "{}", page.body);
    let mut f = fields_of(&page.body);
    set(&mut f, "to", to);
    set(&mut f, "subject", subject);
    set(&mut f, "body", "见附件。\n");
    set(&mut f, "action", "send");
    post_compose(w, s, &as_refs(&f), &[])
}

/// The To header of the newest message in `user`'s INBOX, decoded.
fn newest_to(w: &Webmail, user: &str, subject: &str) -> String {
    let script = r#"
import imaplib, email, email.policy, sys, time
port, user, subject = int(sys.argv[1]), sys.argv[2], sys.argv[3]
for _ in range(200):
    m = imaplib.IMAP4('127.0.0.1', port)
    m.login(user, 'secret')
    m.select('INBOX')
    typ, d = m.uid('SEARCH', None, 'ALL')
    for uid in reversed(d[0].split()):
        typ, f = m.uid('FETCH', uid, '(BODY.PEEK[HEADER])')
        msg = email.message_from_bytes(f[0][1], policy=email.policy.default)
        if msg['Subject'] == subject:
            print(str(msg['To']))
            raise SystemExit(0)
    m.logout()
    time.sleep(0.1)
raise SystemExit('no mail for ' + user)
"#;
    let out = common::python(script, &[&(w.inst.base + 143).to_string(), user, subject]);
    assert!(
        out.status.success(),
        "{}\nsmtpd: {}\nsend: {}",
        String::from_utf8_lossy(&out.stderr),
        w.inst.log("kmp-smtpd"),
        w.inst.log("kmp-send")
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn save_contact(w: &Webmail, s: &str, name: &str, email: &str, group: &str) {
    let page = w.get("/contacts/edit", Some(s));
    let r = w.post(
        "/contacts/save",
        Some(s),
        &[
            ("csrf", &page.csrf()),
            ("full_name", name),
            ("email", email),
            ("group", group),
        ],
    );
    assert_eq!(r.status, 303, "{}", r.body);
}

#[test]
fn compose_completes_from_the_books_and_sends_to_a_group() {
    let Some(w) = start(&[]) else { return };
    let s = w.login("u@example.test", "secret");
    save_contact(&w, &s, "鲍勃", "bob@example.test", "同事");
    save_contact(&w, &s, "Doe, Carol", "carol@example.test", "同事");

    // The compose page offers the group, the contacts and the domain's users.
    let page = w.get("/compose", Some(&s));
    assert_eq!(page.status, 200, "{}", page.body);
    for id in ["to", "cc", "bcc"] {
        assert!(
            page.body
                .contains(&format!("list=\"kmp-addresses\" id=\"{id}\" name=\"{id}\"")),
            "{id}"
        );
    }
    assert!(page.body.contains("addresses.js"));
    let o = offered(&page.body);
    assert_eq!(o[0], "同事", "{o:?}");
    for want in [
        "鲍勃 <bob@example.test>",
        "\"Doe, Carol\" <carol@example.test>",
        "dave <dave@example.test>",
    ] {
        assert!(o.iter().any(|x| x == want), "{want} in {o:?}");
    }

    // A group's name in To goes to every member.
    let r = send(&w, &s, "同事", "组发测试");
    assert_eq!(r.status, 303, "{}", r.body);
    for user in ["bob@example.test", "carol@example.test"] {
        let to = newest_to(&w, user, "组发测试");
        assert!(to.contains("bob@example.test"), "{to}");
        assert!(to.contains("carol@example.test"), "{to}");
    }

    // Recipients sent to are offered first after the groups next time.
    let r = send(&w, &s, "dave@example.test", "最近的收件人");
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(
        newest_to(&w, "dave@example.test", "最近的收件人"),
        "dave@example.test"
    );
    let o = offered(&w.get("/compose", Some(&s)).body);
    assert_eq!(o[0], "同事", "{o:?}");
    assert_eq!(o[1], "dave@example.test", "{o:?}");

    // The address book's "write" links open the compose page filled in.
    let list = w.get("/contacts", Some(&s));
    let at = list.body.find("class=\"write\" href=\"").unwrap() + 20;
    let href = unescape(&list.body[at..at + list.body[at..].find('"').unwrap()]);
    let page = w.get(href.trim_start_matches(&w.url("")), Some(&s));
    assert_eq!(
        input(&page.body, "to").as_deref(),
        Some("\"Doe, Carol\" <carol@example.test>")
    );
}
