//! Address books: the contact model, its text forms (vCard 3.0 and 4.0,
//! RFC 2426 and RFC 6350; Outlook's CSV in its English and Chinese
//! headings, UTF-8 or GBK), ordering and search. Pure: no I/O. Where the
//! contacts are kept (IMAP METADATA of the user) is the webmail's business,
//! see `webmail::pages::contacts` and doc/ARCHITECTURE.md.
//!
//! A contact's fields are the ones both formats carry, so that a contact
//! exported in either and imported again is the same contact (the round trip
//! tests at the bottom of `vcard.rs` and `outlook.rs` hold it to that).

pub mod csv;
pub mod outlook;
pub mod vcard;

use std::cmp::Ordering;

/// The server METADATA entry (RFC 5464, mailbox `""`) through which
/// kmp-imapd serves a user the address book of their own domain: its
/// users, then the entries its postmaster adds, as vCards one after the
/// other. Read-only.
pub const DIRECTORY_ENTRY: &str = "/shared/vendor/kmpromail/directory";
/// Where a domain's postmaster (the user `postmaster@DOMAIN`) keeps the
/// entries added to the domain's book: a private server entry of theirs,
/// vCards one after the other.
pub const POSTMASTER_ENTRY: &str = "/private/vendor/kmpromail/directory";

/// Most contacts one import may bring (and one address book holds).
pub const MAX_CONTACTS: usize = 4000;
/// Longest value of one field, in bytes; longer ones are cut at a
/// character boundary.
pub const MAX_FIELD: usize = 2000;
/// Most e-mail addresses of one contact.
pub const MAX_EMAILS: usize = 10;
/// Most groups one contact is in.
pub const MAX_GROUPS: usize = 50;
/// Longest group name, in characters.
pub const MAX_GROUP_NAME: usize = 60;

/// A postal address.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Address {
    pub street: String,
    pub city: String,
    pub region: String,
    pub postcode: String,
    pub country: String,
}

impl Address {
    pub fn is_empty(&self) -> bool {
        self.fields().iter().all(|f| f.is_empty())
    }

    fn fields(&self) -> [&String; 5] {
        [
            &self.street,
            &self.city,
            &self.region,
            &self.postcode,
            &self.country,
        ]
    }

    fn fields_mut(&mut self) -> [&mut String; 5] {
        [
            &mut self.street,
            &mut self.city,
            &mut self.region,
            &mut self.postcode,
            &mut self.country,
        ]
    }
}

/// One contact.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Contact {
    /// The id: lower-case letters and digits (see [`valid_id`]); empty
    /// until stored.
    pub id: String,
    /// The name as shown (vCard FN). Never empty once [`Contact::normalise`]d.
    pub full_name: String,
    pub given: String,
    pub middle: String,
    pub family: String,
    /// Honorific before the name ("Dr.", Outlook's "Title" / 英文称谓).
    pub prefix: String,
    /// After the name ("Jr.", Outlook's "Suffix" / 中文称谓).
    pub suffix: String,
    /// E-mail addresses, the preferred one first.
    pub emails: Vec<String>,
    pub mobile: String,
    pub work_phone: String,
    pub home_phone: String,
    pub company: String,
    pub department: String,
    pub job_title: String,
    pub work_address: Address,
    pub home_address: Address,
    /// As written (`1980-02-29` is what we write; imports keep what they got).
    pub birthday: String,
    pub web: String,
    pub note: String,
    /// The groups this contact is in (vCard CATEGORIES, Outlook Categories).
    pub groups: Vec<String>,
}

/// Why a text could not be read as contacts. Each names the string key of
/// the message the webmail shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImportError {
    /// Not UTF-8 (with or without BOM), UTF-16 with BOM, nor GBK.
    Encoding,
    /// A quoted field is never closed, or a quote stands inside a bare field.
    Quoting { line: usize },
    /// No Outlook heading we know (neither English nor Chinese).
    Headings,
    /// A vCard without FN (nor N) or without EMAIL, or not closed.
    Card { number: usize, why: &'static str },
    /// Nothing in it.
    Empty,
    /// More than [`MAX_CONTACTS`].
    TooMany,
}

impl ImportError {
    /// The string key of the webmail's message.
    pub fn key(&self) -> &'static str {
        match self {
            ImportError::Encoding => "err_import_encoding",
            ImportError::Quoting { .. } => "err_import_quoting",
            ImportError::Headings => "err_import_headings",
            ImportError::Card { .. } => "err_import_card",
            ImportError::Empty => "err_import_empty",
            ImportError::TooMany => "err_import_too_many",
        }
    }

    /// Where: the line or the card's number (from 1), 0 when none.
    pub fn at(&self) -> usize {
        match self {
            ImportError::Quoting { line } => *line,
            ImportError::Card { number, .. } => *number,
            _ => 0,
        }
    }
}

impl Contact {
    /// Trims every field, cuts long ones, drops empty and repeated
    /// addresses and groups, and fills the full name from the parts (or
    /// the first address) when it is empty.
    pub fn normalise(&mut self) {
        for f in self.text_fields_mut() {
            *f = clean(f);
        }
        let mut emails: Vec<String> = Vec::new();
        for e in self.emails.drain(..) {
            let e = clean(&e);
            if !e.is_empty() && !emails.iter().any(|x| x.eq_ignore_ascii_case(&e)) {
                emails.push(e);
            }
        }
        emails.truncate(MAX_EMAILS);
        self.emails = emails;
        let mut groups: Vec<String> = Vec::new();
        for g in self.groups.drain(..) {
            if let Some(g) = group_name(&g) {
                if !groups.contains(&g) {
                    groups.push(g);
                }
            }
        }
        groups.truncate(MAX_GROUPS);
        self.groups = groups;
        if self.full_name.is_empty() {
            self.full_name = self.name_from_parts();
        }
        if self.full_name.is_empty() {
            self.full_name = self.emails.first().cloned().unwrap_or_default();
        }
    }

    /// "张 三" as 张三 (family first, no space, for CJK names), "John Q
    /// Public" for others.
    pub fn name_from_parts(&self) -> String {
        let cjk = [&self.family, &self.given]
            .iter()
            .any(|s| s.chars().any(is_cjk));
        if cjk {
            format!("{}{}{}", self.family, self.middle, self.given)
        } else {
            [&self.given, &self.middle, &self.family]
                .iter()
                .filter(|s| !s.is_empty())
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(" ")
        }
    }

    /// The first address, if any.
    pub fn email(&self) -> Option<&str> {
        self.emails.first().map(String::as_str)
    }

    /// `"Name" <addr>` for a To field (the name quoted when it needs it).
    pub fn mailbox(&self, addr: &str) -> String {
        mailbox(&self.full_name, addr)
    }

    /// Whether `query` (any case) is in the name, an address, the
    /// company, a phone number or a group.
    pub fn matches(&self, query: &str) -> bool {
        let q = query.trim().to_lowercase();
        if q.is_empty() {
            return true;
        }
        let hay = [
            &self.full_name,
            &self.given,
            &self.family,
            &self.company,
            &self.department,
            &self.mobile,
            &self.work_phone,
            &self.home_phone,
        ];
        hay.iter().any(|h| h.to_lowercase().contains(&q))
            || self.emails.iter().any(|e| e.to_lowercase().contains(&q))
            || self.groups.iter().any(|g| g.to_lowercase().contains(&q))
    }

    fn text_fields_mut(&mut self) -> Vec<&mut String> {
        let mut v = vec![
            &mut self.full_name,
            &mut self.given,
            &mut self.middle,
            &mut self.family,
            &mut self.prefix,
            &mut self.suffix,
            &mut self.mobile,
            &mut self.work_phone,
            &mut self.home_phone,
            &mut self.company,
            &mut self.department,
            &mut self.job_title,
            &mut self.birthday,
            &mut self.web,
            &mut self.note,
        ];
        v.extend(self.work_address.fields_mut());
        v.extend(self.home_address.fields_mut());
        v
    }
}

/// `"Name" <addr>`, `addr` alone without a name; the name quoted when it
/// holds anything but letters, digits and spaces (RFC 5322 3.2.3).
pub fn mailbox(name: &str, addr: &str) -> String {
    let name = name.trim();
    if name.is_empty() || name.eq_ignore_ascii_case(addr) {
        return addr.to_string();
    }
    let plain = name
        .chars()
        .all(|c| c.is_alphanumeric() || c == ' ' || !c.is_ascii());
    if plain {
        format!("{name} <{addr}>")
    } else {
        let q = name.replace('\\', "\\\\").replace('"', "\\\"");
        format!("\"{q}\" <{addr}>")
    }
}

/// A group name as kept: trimmed, control characters and commas out (a
/// comma separates CATEGORIES), at most [`MAX_GROUP_NAME`] characters.
/// None when nothing is left.
pub fn group_name(s: &str) -> Option<String> {
    let g: String = s
        .chars()
        .filter(|c| !c.is_control() && *c != ',' && *c != ';' && *c != '\\')
        .take(MAX_GROUP_NAME)
        .collect();
    let g = g.trim().to_string();
    (!g.is_empty()).then_some(g)
}

/// A contact id: 1 to 64 lower-case ASCII letters, digits or `-`.
pub fn valid_id(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// A new random id (16 hex digits).
pub fn new_id() -> String {
    let n: u64 = rand::random();
    format!("{n:016x}")
}

/// Whether `c` is a CJK ideograph (the names that sort by reading).
pub fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xF900..=0xFAFF | 0x20000..=0x2FA1F)
}

/// The sort key of a name: Latin letters without regard to case, then
/// Chinese by reading. GB2312's first level (the 3,755 common characters)
/// is in pinyin order, so a character's GB18030 bytes order it as a Chinese
/// reader expects (张 after 李, 王 after 李); characters outside it follow
/// in code order. Latin names come before Chinese ones, as in a phone book.
pub fn sort_key(name: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(name.len() * 2);
    for c in name.chars() {
        if c.is_ascii() {
            key.push(c.to_ascii_lowercase() as u8);
            continue;
        }
        let mut buf = [0u8; 4];
        let s = c.encode_utf8(&mut buf);
        let (bytes, _, unmappable) = encoding_rs::GB18030.encode(s);
        if unmappable {
            key.push(0xFF);
            key.extend_from_slice(s.as_bytes());
        } else {
            key.extend_from_slice(&bytes);
        }
    }
    key
}

/// Orders contacts by name as [`sort_key`] does, then by address.
pub fn compare(a: &Contact, b: &Contact) -> Ordering {
    sort_key(&a.full_name)
        .cmp(&sort_key(&b.full_name))
        .then_with(|| a.email().cmp(&b.email()))
}

/// Sorts contacts for display.
pub fn sort(list: &mut [Contact]) {
    list.sort_by_cached_key(|c| (sort_key(&c.full_name), c.email().map(str::to_string)));
}

/// The groups named in any of `list`, with those in `known` (which may
/// have none yet), sorted as names are.
pub fn all_groups(list: &[Contact], known: &[String]) -> Vec<String> {
    let mut g: Vec<String> = known.to_vec();
    for c in list {
        for x in &c.groups {
            if !g.contains(x) {
                g.push(x.clone());
            }
        }
    }
    g.sort_by_cached_key(|n| sort_key(n));
    g
}

/// Trims, drops control characters (but keeps line breaks for notes as
/// `\n`), cuts at [`MAX_FIELD`] bytes.
fn clean(s: &str) -> String {
    let s: String = s
        .replace("\r\n", "\n")
        .chars()
        .filter(|c| !c.is_control() || *c == '\n' || *c == '\t')
        .collect();
    let s = s.trim();
    let mut end = s.len().min(MAX_FIELD);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(n: &str) -> Contact {
        let mut c = Contact {
            full_name: n.into(),
            ..Contact::default()
        };
        c.normalise();
        c
    }

    #[test]
    fn chinese_names_sort_by_pinyin_and_latin_first() {
        let mut l: Vec<Contact> = ["张三", "王五", "李四", "bob", "Alice", "赵六", "陈七"]
            .iter()
            .map(|n| named(n))
            .collect();
        sort(&mut l);
        let names: Vec<&str> = l.iter().map(|c| c.full_name.as_str()).collect();
        // chen, li, wang, zhang, zhao
        assert_eq!(
            names,
            ["Alice", "bob", "陈七", "李四", "王五", "张三", "赵六"]
        );
    }

    #[test]
    fn search_finds_chinese_and_ignores_case() {
        let mut c = Contact {
            given: "三".into(),
            family: "张".into(),
            emails: vec!["Zhang.San@Example.CN".into()],
            groups: vec!["同事".into()],
            ..Contact::default()
        };
        c.normalise();
        assert_eq!(c.full_name, "张三");
        assert!(c.matches("张"));
        assert!(c.matches("zhang.san"));
        assert!(c.matches("同事"));
        assert!(!c.matches("李"));
        assert!(c.matches("  "));
    }

    #[test]
    fn normalise_cleans_and_names() {
        let mut c = Contact {
            given: " John ".into(),
            family: "Public\u{7}".into(),
            emails: vec!["a@x".into(), "".into(), "A@X".into(), "b@x".into()],
            groups: vec![
                "Friends".into(),
                " Friends ".into(),
                ",".into(),
                "x,y".into(),
            ],
            ..Contact::default()
        };
        c.normalise();
        assert_eq!(c.full_name, "John Public");
        assert_eq!(c.emails, ["a@x", "b@x"]);
        assert_eq!(c.groups, ["Friends", "xy"]);
        let mut only = Contact {
            emails: vec!["x@y".into()],
            ..Contact::default()
        };
        only.normalise();
        assert_eq!(only.full_name, "x@y");
        assert_eq!(mailbox("张三", "z@x"), "张三 <z@x>");
        assert_eq!(mailbox("Doe, John", "j@x"), "\"Doe, John\" <j@x>");
        assert_eq!(mailbox("", "j@x"), "j@x");
        assert!(valid_id(&new_id()));
        assert!(!valid_id("../x"));
        assert!(!valid_id("ABC"));
    }
}
