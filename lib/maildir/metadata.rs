//! IMAP METADATA entries (RFC 5464) kept beside the mail they annotate.
//!
//! A folder's entries (`/private/...` and `/shared/...`) are in the file
//! `kmpromail-metadata` in the folder's directory, so DELETE and RENAME of a
//! folder take them along with the messages without a second bookkeeping;
//! the entries of the user's server (mailbox `""`) are in
//! `ROOT/kmpromail-server-metadata`. The webmail keeps its preferences
//! there, which is why webmail hosts hold no state.
//!
//! The file is text, one entry a line after a header:
//!
//! ```text
//! kmpromail-metadata 1
//! /private/comment 4d7920696e626f78
//! ```
//!
//! The entry name (lower case, RFC 5464 3.2: names are case-insensitive) and
//! its value in hex, since values are binary (RFC 5464 5.4 allows literal8).
//! An update takes `kmpromail-metadata.lock` in the same directory, reads the
//! file, applies the change and replaces the file whole (`replace.rs`:
//! written, fsynced, renamed), so readers, who take no lock, see the old
//! entries or the new, never a mix. A line that does not parse is skipped.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use super::error::{Error, Result};
use super::{lock, write_atomic, Folder, Maildir};

/// A folder's entries.
pub const FOLDER_FILE: &str = "kmpromail-metadata";
/// The server entries of the user (RFC 5464 mailbox `""`), at the root.
pub const SERVER_FILE: &str = "kmpromail-server-metadata";
const LOCK_FILE: &str = "kmpromail-metadata.lock";
const MAGIC: &str = "kmpromail-metadata 1";

/// Entry names and their values.
pub type Entries = BTreeMap<String, Vec<u8>>;

/// What [`Folder::set_metadata`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Updated {
    /// Every change was made.
    Done,
    /// Nothing was changed: the entries would have been more than allowed
    /// (RFC 5464 4.3, `[METADATA TOOMANY]`).
    TooMany,
}

impl Folder {
    /// The folder's METADATA entries.
    pub fn metadata(&self) -> Result<Entries> {
        read(&self.dir.join(FOLDER_FILE))
    }

    /// Sets (Some) or removes (None) entries, all or none: with more than
    /// `max_entries` afterwards nothing changes.
    pub fn set_metadata(
        &self,
        changes: &[(String, Option<Vec<u8>>)],
        max_entries: usize,
    ) -> Result<Updated> {
        if !self.exists() {
            return Err(Error::NoFolder(self.name().to_string()));
        }
        update(&self.dir, FOLDER_FILE, changes, max_entries)
    }
}

impl Maildir {
    /// The user's server entries (RFC 5464 mailbox `""`).
    pub fn server_metadata(&self) -> Result<Entries> {
        read(&self.root().join(SERVER_FILE))
    }

    /// Like [`Folder::set_metadata`], for the server entries.
    pub fn set_server_metadata(
        &self,
        changes: &[(String, Option<Vec<u8>>)],
        max_entries: usize,
    ) -> Result<Updated> {
        update(self.root(), SERVER_FILE, changes, max_entries)
    }
}

fn update(
    dir: &Path,
    file: &str,
    changes: &[(String, Option<Vec<u8>>)],
    max_entries: usize,
) -> Result<Updated> {
    let _lock = lock::exclusive(&dir.join(LOCK_FILE))?;
    let path: PathBuf = dir.join(file);
    let mut entries = read(&path)?;
    let before = entries.clone();
    for (name, value) in changes {
        let name = name.to_ascii_lowercase();
        match value {
            Some(v) => {
                entries.insert(name, v.clone());
            }
            None => {
                entries.remove(&name);
            }
        }
    }
    if entries.len() > max_entries && entries.len() > before.len() {
        return Ok(Updated::TooMany);
    }
    if entries == before {
        return Ok(Updated::Done);
    }
    let mut text = format!("{MAGIC}\n");
    for (name, value) in &entries {
        text.push_str(name);
        text.push(' ');
        for b in value {
            text.push_str(&format!("{b:02x}"));
        }
        text.push('\n');
    }
    write_atomic(&path, text.as_bytes())?;
    // Durable before the client hears OK: the webmail's preferences live
    // here and nowhere else.
    crate::sys::fsync_dir(dir).map_err(super::error::io_err("fsync", dir))?;
    Ok(Updated::Done)
}

fn read(path: &Path) -> Result<Entries> {
    let text = match fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Entries::new()),
        Err(e) => return Err(Error::io("read", path, e)),
    };
    let mut lines = text.lines();
    if lines.next() != Some(MAGIC) {
        return Ok(Entries::new());
    }
    Ok(lines
        .filter_map(|l| {
            let (name, hex) = l.split_once(' ').unwrap_or((l, ""));
            Some((name.to_string(), unhex(hex)?))
        })
        .filter(|(n, _)| !n.is_empty())
        .collect())
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_kept_per_folder_and_follow_a_rename() {
        let d = tempfile::tempdir().unwrap();
        let md = Maildir::create(d.path().join("u")).unwrap();
        md.create_folder("Work").unwrap();
        let work = md.folder("Work").unwrap();
        let value = "注释\u{0}\n binary".as_bytes().to_vec();
        let r = work
            .set_metadata(&[("/private/Comment".into(), Some(value.clone()))], 10)
            .unwrap();
        assert_eq!(r, Updated::Done);
        assert_eq!(work.metadata().unwrap()["/private/comment"], value);
        assert!(md.inbox().metadata().unwrap().is_empty());
        md.rename_folder("Work", "Play").unwrap();
        let play = md.folder("Play").unwrap();
        assert_eq!(play.metadata().unwrap()["/private/comment"], value);
        // Removal, and the cap on the number of entries (all or none).
        let two = [
            ("/private/a".to_string(), Some(b"1".to_vec())),
            ("/private/b".to_string(), Some(b"2".to_vec())),
        ];
        assert_eq!(play.set_metadata(&two, 2).unwrap(), Updated::TooMany);
        assert_eq!(play.metadata().unwrap().len(), 1);
        play.set_metadata(&[("/private/comment".into(), None)], 2)
            .unwrap();
        assert_eq!(play.set_metadata(&two, 2).unwrap(), Updated::Done);
        assert_eq!(play.metadata().unwrap().len(), 2);
        // Server entries are apart from INBOX's.
        md.set_server_metadata(&[("/private/vendor/x".into(), Some(b"y".to_vec()))], 5)
            .unwrap();
        assert_eq!(md.server_metadata().unwrap().len(), 1);
        assert!(md.inbox().metadata().unwrap().is_empty());
        md.delete_folder("Play").unwrap();
        md.create_folder("Play").unwrap();
        assert!(md.folder("Play").unwrap().metadata().unwrap().is_empty());
    }
}
