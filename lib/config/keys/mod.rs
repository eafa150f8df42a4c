//! The key table. Each section's keys live in a file of their own, owned by
//! the program that reads them; [`KEYS`] is their concatenation, in the order
//! the sections appear in the sample file and the man page.

use std::sync::LazyLock;

mod admind;
mod auth;
mod authd;
mod fetch;
mod imapd;
mod lists;
mod lists_mail;
mod local;
mod paths;
mod pop3d;
mod privileges;
mod remote;
mod scan;
mod send;
mod sieve;
mod sieved;
mod smtpd;
mod system;
mod tls;
mod webmail;

/// One configuration key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Key {
    /// `section.name`.
    pub name: &'static str,
    /// What values it takes.
    pub kind: Kind,
    /// The default, in text form (see `Value::from_text`).
    pub default: &'static str,
    /// One or more sentences for the sample file and the man page.
    pub doc: &'static str,
}

impl Key {
    /// The section and the name within it.
    pub fn split(&self) -> (&'static str, &'static str) {
        match self.kind {
            Kind::Map => (self.name, ""),
            _ => self.name.split_once('.').unwrap_or(("", self.name)),
        }
    }
}

/// The kinds of value a key takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Free text.
    Str,
    /// An absolute path, or empty for "none".
    Path,
    /// true or false.
    Bool,
    /// A whole number within bounds.
    Int { min: u64, max: u64 },
    /// A number of bytes (`10M`) within bounds.
    Size { min: u64, max: u64 },
    /// A duration (`5m`), bounds in seconds.
    Duration { min: u64, max: u64 },
    /// One of these words.
    Enum(&'static [&'static str]),
    /// A list of strings.
    List,
    /// A list of listening addresses, `host:port`.
    Listen,
    /// A list of networks in CIDR form.
    Nets,
    /// A table of names to lists of strings, its own `[section]`.
    Map,
}

/// Every key, in the order of the sample file.
pub static KEYS: LazyLock<Vec<Key>> = LazyLock::new(|| {
    [
        system::KEYS,
        paths::KEYS,
        privileges::KEYS,
        tls::KEYS,
        authd::KEYS,
        smtpd::KEYS,
        scan::KEYS,
        send::KEYS,
        local::KEYS,
        lists::KEYS,
        lists_mail::KEYS,
        remote::KEYS,
        pop3d::KEYS,
        imapd::KEYS,
        webmail::KEYS,
        sieve::KEYS,
        sieved::KEYS,
        auth::KEYS,
        fetch::KEYS,
        admind::KEYS,
    ]
    .concat()
});

/// The key named `name`.
pub fn find(name: &str) -> Option<&'static Key> {
    KEYS.iter().find(|k| k.name == name)
}

/// The key whose name is closest to `name`, for "did you mean" hints.
pub fn nearest(name: &str) -> Option<&'static str> {
    KEYS.iter()
        .map(|k| (distance(k.name, name), k.name))
        .filter(|(d, _)| *d <= 3)
        .min()
        .map(|(_, n)| n)
}

/// Levenshtein distance, for short key names.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}
