//! Where the address books live, reached over IMAP METADATA (RFC 5464), so
//! that webmail hosts keep nothing (see doc/ARCHITECTURE.md):
//!
//! - The personal book: [`BOOK_ENTRY`]`/ID` per contact, its value the
//!   contact's vCard 4.0 text; the value of [`BOOK_ENTRY`] itself is the
//!   list of the user's groups, one name a line (a group may be empty). A
//!   contact's groups are its CATEGORIES. One entry per contact, so two
//!   browsers editing two contacts never overwrite each other, and any
//!   IMAP client can read the book.
//! - The domain book: the server entry [`DIRECTORY_ENTRY`], which
//!   kmp-imapd fills for the logged-in user from the users of their own
//!   domain and the entries its postmaster adds (the postmaster's private
//!   entry [`POSTMASTER_ENTRY`]); read-only, vCards one after the other.
//!
//! Values are read back as untrusted input: an entry that is not a vCard
//! is left out.

use crate::contacts::{self, vcard, Contact};
use crate::imapc::{Client, Error};

/// Below this entry, one per contact; its own value lists the groups.
pub const BOOK_ENTRY: &str = "/private/vendor/kmpromail/contacts";
pub mod complete;

pub use crate::contacts::{DIRECTORY_ENTRY, POSTMASTER_ENTRY};

/// Most entries one SETMETADATA carries (each value is a literal, and
/// kmp-imapd takes 64 literals per command).
const BATCH: usize = 50;

/// A user's address book as read.
#[derive(Debug, Clone, Default)]
pub struct Book {
    /// Sorted for display.
    pub contacts: Vec<Contact>,
    /// Every group: the listed ones and any a contact names.
    pub groups: Vec<String>,
    /// The groups as listed in [`BOOK_ENTRY`] (to write back).
    pub listed: Vec<String>,
}

impl Book {
    /// The contact with `id`.
    pub fn get(&self, id: &str) -> Option<&Contact> {
        self.contacts.iter().find(|c| c.id == id)
    }

    /// Whether a contact has `addr` (any case) among its addresses.
    pub fn has_address(&self, addr: &str) -> bool {
        self.contacts
            .iter()
            .any(|c| c.emails.iter().any(|e| e.eq_ignore_ascii_case(addr)))
    }
}

/// The entry of contact `id`.
pub fn entry(id: &str) -> String {
    format!("{BOOK_ENTRY}/{id}")
}

/// Reads the personal book (one GETMETADATA).
pub fn load(c: &mut Client) -> Result<Book, Error> {
    let listed = c.get_metadata_below("", BOOK_ENTRY)?;
    Ok(from_entries(
        listed.iter().map(|(n, v)| (n.as_str(), v.as_deref())),
    ))
}

/// The book of listed METADATA entries (pure).
pub fn from_entries<'a>(listed: impl IntoIterator<Item = (&'a str, Option<&'a [u8]>)>) -> Book {
    let prefix = format!("{BOOK_ENTRY}/");
    let mut book = Book::default();
    for (name, value) in listed {
        let Some(value) = value else { continue };
        let text = String::from_utf8_lossy(value);
        if name.eq_ignore_ascii_case(BOOK_ENTRY) {
            book.listed = text.lines().filter_map(contacts::group_name).collect();
            continue;
        }
        let Some(id) = name
            .get(prefix.len()..)
            .filter(|_| name[..prefix.len()].eq_ignore_ascii_case(&prefix))
        else {
            continue;
        };
        let id = id.to_ascii_lowercase();
        if !contacts::valid_id(&id) {
            continue;
        }
        if let Some(mut contact) = vcard::parse_one(&text) {
            contact.id = id;
            book.contacts.push(contact);
        }
    }
    contacts::sort(&mut book.contacts);
    book.listed.dedup();
    book.groups = contacts::all_groups(&book.contacts, &book.listed);
    book
}

/// Stores contacts (new ones get an id), in as few commands as the server
/// takes. A contact that is there already is replaced whole.
pub fn save(c: &mut Client, list: &mut [Contact]) -> Result<(), Error> {
    for contact in list.iter_mut() {
        if contact.id.is_empty() {
            contact.id = contacts::new_id();
        }
    }
    let values: Vec<(String, String)> = list
        .iter()
        .map(|x| (entry(&x.id), vcard::write(x, vcard::Version::V4)))
        .collect();
    for chunk in values.chunks(BATCH) {
        let set: Vec<(&str, Option<&[u8]>)> = chunk
            .iter()
            .map(|(e, v)| (e.as_str(), Some(v.as_bytes())))
            .collect();
        c.set_metadata("", &set)?;
    }
    Ok(())
}

/// Removes contacts by id.
pub fn remove(c: &mut Client, ids: &[String]) -> Result<(), Error> {
    let names: Vec<String> = ids.iter().map(|i| entry(i)).collect();
    for chunk in names.chunks(BATCH) {
        let gone: Vec<(&str, Option<&[u8]>)> = chunk.iter().map(|e| (e.as_str(), None)).collect();
        c.set_metadata("", &gone)?;
    }
    Ok(())
}

/// Writes the list of groups.
pub fn save_groups(c: &mut Client, groups: &[String]) -> Result<(), Error> {
    let text: String = groups.iter().map(|g| format!("{g}\n")).collect();
    let value = (!text.is_empty()).then_some(text.as_bytes());
    c.set_metadata("", &[(BOOK_ENTRY, value)])
}

/// Reads the domain's book (empty when the server serves none).
pub fn load_directory(c: &mut Client) -> Result<Vec<Contact>, Error> {
    let got = c.get_metadata("", &[DIRECTORY_ENTRY])?;
    let text = got
        .into_iter()
        .find_map(|(_, v)| v)
        .map(|v| String::from_utf8_lossy(&v).into_owned())
        .unwrap_or_default();
    Ok(directory_from_text(&text))
}

/// The domain's book from the entry's text: each readable card, sorted;
/// unreadable ones are left out rather than hiding the others.
pub fn directory_from_text(text: &str) -> Vec<Contact> {
    let mut list: Vec<Contact> = text
        .split("BEGIN:VCARD")
        .skip(1)
        .filter_map(|rest| {
            let end = rest.find("END:VCARD")? + "END:VCARD".len();
            vcard::parse_one(&format!("BEGIN:VCARD{}\r\n", &rest[..end]))
        })
        .enumerate()
        .map(|(i, mut c)| {
            c.id = format!("d{i}");
            c
        })
        .collect();
    contacts::sort(&mut list);
    list
}

/// The entries the logged-in postmaster added to the domain's book.
pub fn load_postmaster(c: &mut Client) -> Result<Vec<Contact>, Error> {
    let got = c.get_metadata("", &[POSTMASTER_ENTRY])?;
    let text = got
        .into_iter()
        .find_map(|(_, v)| v)
        .map(|v| String::from_utf8_lossy(&v).into_owned())
        .unwrap_or_default();
    let mut list = directory_from_text(&text);
    for c in &mut list {
        c.id.clear();
    }
    Ok(list)
}

/// Writes them back (none: the entry is removed).
pub fn save_postmaster(c: &mut Client, list: &[Contact]) -> Result<(), Error> {
    let text = vcard::write_all(list, vcard::Version::V4);
    let value = (!text.is_empty()).then_some(text.as_bytes());
    c.set_metadata("", &[(POSTMASTER_ENTRY, value)])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn book_from_entries_skips_junk_and_lists_groups() {
        let mut a = Contact {
            full_name: "李四".into(),
            emails: vec!["li@x.cn".into()],
            groups: vec!["同事".into()],
            ..Contact::default()
        };
        a.normalise();
        let card = vcard::write(&a, vcard::Version::V4);
        let good = entry("aa11");
        let bad_id = entry("../x");
        let junk = entry("bb22");
        let book = from_entries([
            (
                BOOK_ENTRY,
                Some(&b"Friends\n\n\xe5\xae\xb6\xe4\xba\xba\n"[..]),
            ),
            (good.as_str(), Some(card.as_bytes())),
            (bad_id.as_str(), Some(card.as_bytes())),
            (junk.as_str(), Some(&b"hello"[..])),
        ]);
        assert_eq!(book.contacts.len(), 1);
        assert_eq!(book.contacts[0].id, "aa11");
        assert_eq!(book.listed, ["Friends", "家人"]);
        assert_eq!(book.groups, ["Friends", "家人", "同事"]);
        assert!(book.has_address("LI@x.cn"));
        let dir = directory_from_text(&format!("{card}garbage{card}"));
        assert_eq!(dir.len(), 2);
    }
}
