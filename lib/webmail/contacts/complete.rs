//! What the compose page takes from the address books: the suggestions
//! offered on the To, Cc and Bcc inputs (groups, recent recipients, the
//! personal book, the domain's book), a group's name typed there expanded
//! to its members when the message is sent, and the list of recent
//! recipients, kept in the user's METADATA ([`RECENT_ENTRY`]) and updated
//! after each message sent.

use super::Book;
use crate::contacts::{mailbox, Contact};
use crate::imapc::{Client, Error};

/// The recent recipients, newest first, one mailbox (`Name <addr>`) a line.
pub const RECENT_ENTRY: &str = "/private/vendor/kmpromail/recent-recipients";
/// How many recent recipients are kept.
pub const MAX_RECENT: usize = 50;
/// Most suggestions on one page.
pub const MAX_SUGGESTIONS: usize = 3000;

/// One suggestion: what goes into the input, and how it is shown.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Suggestion {
    pub value: String,
    pub label: String,
}

/// The suggestions, best first: the groups (by name), the recent
/// recipients, the personal contacts (each address), the domain's.
/// `group_label` makes a group's label from its name and size.
pub fn suggestions(
    book: &Book,
    domain: &[Contact],
    recent: &[String],
    group_label: &dyn Fn(&str, usize) -> String,
) -> Vec<Suggestion> {
    let mut out: Vec<Suggestion> = Vec::new();
    let mut seen: Vec<String> = Vec::new();
    let mut add = |value: String, label: String, out: &mut Vec<Suggestion>| {
        let key = value.to_lowercase();
        if !seen.contains(&key) && out.len() < MAX_SUGGESTIONS {
            seen.push(key);
            out.push(Suggestion { value, label });
        }
    };
    for g in &book.groups {
        let n = members(book, g).len();
        if n > 0 {
            add(g.clone(), group_label(g, n), &mut out);
        }
    }
    for r in recent {
        add(r.clone(), r.clone(), &mut out);
    }
    for c in book.contacts.iter().chain(domain) {
        for e in &c.emails {
            let m = mailbox(&c.full_name, e);
            add(m.clone(), m, &mut out);
        }
    }
    out
}

/// The mailboxes of group `g`'s members (each member's first address).
pub fn members(book: &Book, g: &str) -> Vec<String> {
    book.contacts
        .iter()
        .filter(|c| c.groups.iter().any(|x| x == g))
        .filter_map(|c| c.email().map(|e| c.mailbox(e)))
        .collect()
}

/// An address field with each item that is the name of one of the user's
/// groups (and no address) replaced by the group's members. Other items
/// are left exactly as typed, for the address parser to judge.
pub fn expand_groups(field: &str, book: &Book) -> String {
    let items = split_items(field);
    if !items.iter().any(|i| is_group(i.trim(), book)) {
        return field.to_string();
    }
    let mut out: Vec<String> = Vec::new();
    for item in items {
        let t = item.trim();
        if t.is_empty() {
            continue;
        }
        if is_group(t, book) {
            out.extend(members(book, t));
        } else {
            out.push(t.to_string());
        }
    }
    out.join(", ")
}

fn is_group(item: &str, book: &Book) -> bool {
    !item.contains('@') && book.groups.iter().any(|g| g == item) && !members(book, item).is_empty()
}

/// The items of an address field, split as the compose page splits them.
pub fn split_items(s: &str) -> Vec<String> {
    crate::webmail::compose::split_items(s).0
}

/// The recent recipients of the entry's value (untrusted: odd lines out).
pub fn parse_recent(value: Option<&[u8]>) -> Vec<String> {
    let text = value.map(String::from_utf8_lossy).unwrap_or_default();
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && l.contains('@') && l.len() <= 400)
        .filter(|l| !l.chars().any(char::is_control))
        .take(MAX_RECENT)
        .map(str::to_string)
        .collect()
}

/// `sent` (mailboxes, in the message's order) put before `old`, each
/// address once, at most [`MAX_RECENT`].
pub fn push_recent(old: &[String], sent: &[String]) -> Vec<String> {
    let addr = |m: &str| -> String {
        let a = m.rsplit_once('<').map_or(m, |(_, a)| a);
        a.trim_end_matches('>').trim().to_lowercase()
    };
    let mut out: Vec<String> = Vec::new();
    for m in sent.iter().chain(old) {
        if !out.iter().any(|x| addr(x) == addr(m)) {
            out.push(m.clone());
        }
    }
    out.truncate(MAX_RECENT);
    out
}

/// Reads the recent recipients.
pub fn load_recent(c: &mut Client) -> Result<Vec<String>, Error> {
    let got = c.get_metadata("", &[RECENT_ENTRY])?;
    Ok(parse_recent(
        got.into_iter().find_map(|(_, v)| v).as_deref(),
    ))
}

/// Puts the recipients of a message just sent at the top of the list.
pub fn record_recipients(c: &mut Client, sent: &[String]) -> Result<(), Error> {
    if sent.is_empty() {
        return Ok(());
    }
    let list = push_recent(&load_recent(c)?, sent);
    let text: String = list.iter().map(|m| format!("{m}\n")).collect();
    c.set_metadata("", &[(RECENT_ENTRY, Some(text.as_bytes()))])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn book() -> Book {
        let mut a = Contact {
            full_name: "张三".into(),
            emails: vec!["zs@x.cn".into(), "zs2@x.cn".into()],
            groups: vec!["同事".into()],
            ..Contact::default()
        };
        a.normalise();
        let mut b = Contact {
            full_name: "Doe, John".into(),
            emails: vec!["j@x.com".into()],
            groups: vec!["同事".into()],
            ..Contact::default()
        };
        b.normalise();
        let contacts = vec![a, b];
        Book {
            groups: vec!["同事".into(), "空组".into()],
            listed: vec!["同事".into(), "空组".into()],
            contacts,
        }
    }

    #[test]
    fn a_group_name_becomes_its_members() {
        let b = book();
        assert_eq!(
            expand_groups("同事, boss@x.cn", &b),
            "张三 <zs@x.cn>, \"Doe, John\" <j@x.com>, boss@x.cn"
        );
        // Nothing else is touched: a name in quotes, an empty group, text.
        let same = "\"同事\" <t@x.cn>; 空组";
        assert_eq!(expand_groups(same, &b), same);
        assert_eq!(expand_groups("", &b), "");
        assert_eq!(split_items("\"a, b\" <a@x>, c@x").len(), 2);
    }

    #[test]
    fn suggestions_and_recent_recipients() {
        let b = book();
        let dir = vec![Contact {
            full_name: "前台".into(),
            emails: vec!["zs@x.cn".into(), "desk@x.cn".into()],
            ..Contact::default()
        }];
        let recent = vec!["Boss <boss@x.cn>".to_string()];
        let s = suggestions(&b, &dir, &recent, &|g, n| format!("{g} ({n})"));
        let values: Vec<&str> = s.iter().map(|x| x.value.as_str()).collect();
        assert_eq!(
            values,
            [
                "同事",
                "Boss <boss@x.cn>",
                "张三 <zs@x.cn>",
                "张三 <zs2@x.cn>",
                "\"Doe, John\" <j@x.com>",
                "前台 <zs@x.cn>",
                "前台 <desk@x.cn>",
            ]
        );
        assert_eq!(s[0].label, "同事 (2)");
        let r = push_recent(
            &recent,
            &["a@x".to_string(), "BOSS <Boss@X.cn>".to_string()],
        );
        assert_eq!(r, ["a@x", "BOSS <Boss@X.cn>"]);
        assert_eq!(
            parse_recent(Some(b"a@x\n\nnot an address\nb@y\n")),
            ["a@x", "b@y"]
        );
    }
}
