//! Moving in from Dovecot and Courier, and back out to Dovecot, without any
//! IMAP or POP3 client noticing.
//!
//! Moving in: the first time a folder is opened without our index
//! (`kmpromail-uidlist`), its `dovecot-uidlist` (Dovecot, versions 1 and 3)
//! or `courierimapuiddb` (Courier IMAP, the version 1 format Dovecot's
//! version 1 copies) is read, and the new index keeps that UIDVALIDITY,
//! every message's UID, and UIDNEXT; mail that arrived after the list was
//! last written (files it does not name) gets UIDs above, as it would have
//! there. The foreign file is only read, never changed.
//!
//! ```text
//! 1 <uidvalidity> <uidnext>                     version 1 (and Courier)
//! <uid> <file name>
//! 3 V<uidvalidity> N<uidnext> G<guid> ...       version 3 (Dovecot 1.1 on)
//! <uid> [<key><value> ...] :<file name>         keys: P POP3 UIDL, O POP3
//!                                               order, G GUID, S/W sizes
//! ```
//!
//! A record names a file by its base (what comes before `:2,`). Dovecot's
//! UIDNEXT in the header may lag behind its last records (it rewrites the
//! header only now and then), so UIDNEXT is the larger of the header's and
//! the highest UID + 1.
//!
//! POP3 UIDLs: Dovecot shows a message's `P` value when it has one, else
//! `pop3_uidl_format`, by default `%08Xu%08Xv`, which Dovecot writes in
//! lowercase hex. Our own UIDLs are the same numbers in uppercase; so that
//! no POP3 client fetches its kept mail again, the UIDL of every imported
//! message, as Dovecot showed it, is written to `kmpromail-pop3-uidl`
//! (`<uid> <uidl>` a line) beside the index, once, and POP3 shows that one
//! ([`pop3_uidls`]). Messages that arrive later get ours.
//!
//! That file also marks the folder's list as taken over: if our index is
//! lost later, it is rebuilt with a new UIDVALIDITY (as any lost index),
//! not from the old list again, which would number the mail that came
//! since differently under the same UIDVALIDITY. A Maildir moved back in
//! from Dovecot after a stay here must therefore come without our files
//! (`kmpromail-*`), as doc/MIGRATION.md says.
//!
//! Keywords need nothing: `dovecot-keywords` is our keyword file too
//! (flags.rs). Subscriptions: folder.rs reads Dovecot's version 2 file as
//! well as the plain one, and Courier's `courierimapsubscribed`.
//!
//! Moving back: [`export_dovecot`] writes a `dovecot-uidlist` (version 3)
//! beside our index, with our UIDVALIDITY, UIDs and UIDNEXT, and each
//! message's POP3 UIDL as its `P` value (Dovecot shows that instead of its
//! own format), so Dovecot picks up where we stopped.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::Path;

use super::error::{Error, Result};
use super::{name, Folder, Maildir};

/// Dovecot's UID list in each folder.
pub const DOVECOT_UIDLIST: &str = "dovecot-uidlist";
/// Courier IMAP's UID list in each folder.
pub const COURIER_UIDDB: &str = "courierimapuiddb";
/// The POP3 UIDLs of imported messages, beside our index.
pub const POP3_UIDL_FILE: &str = "kmpromail-pop3-uidl";
/// Longest foreign UID list read (bytes): far above any real folder's.
const MAX_LIST: u64 = 256 << 20;

/// Who wrote a foreign UID list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    Dovecot,
    Courier,
}

/// A foreign UID list, read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UidList {
    pub source: Source,
    pub validity: u32,
    /// UIDNEXT: at least the highest UID + 1.
    pub uid_next: u32,
    /// Message base name → UID (each UID once, each base once).
    pub uids: HashMap<String, u32>,
    /// UID → POP3 UIDL as the old server showed it.
    pub uidls: BTreeMap<u32, String>,
}

/// Parses a `dovecot-uidlist` or `courierimapuiddb`. None when the header is
/// not one we know or says UIDVALIDITY 0; bad records are skipped.
pub fn parse_uidlist(text: &str, source: Source) -> Option<UidList> {
    let mut lines = text.lines();
    let header = lines.next()?;
    let mut f = header.split_ascii_whitespace();
    let version = f.next()?;
    let (validity, mut uid_next) = match version {
        "1" | "2" => (f.next()?.parse().ok()?, f.next()?.parse().ok()?),
        "3" => {
            let (mut v, mut n) = (None, None);
            for t in f {
                if let Some(x) = t.strip_prefix('V') {
                    v = x.parse::<u32>().ok();
                } else if let Some(x) = t.strip_prefix('N') {
                    n = x.parse::<u32>().ok();
                }
            }
            (v?, n?)
        }
        _ => return None,
    };
    if validity == 0 {
        return None;
    }
    let mut list = UidList {
        source,
        validity,
        uid_next: uid_next.max(1),
        uids: HashMap::new(),
        uidls: BTreeMap::new(),
    };
    let mut taken = std::collections::HashSet::new();
    for line in lines {
        let Some((uid, file, ext)) = parse_record(line, version) else {
            continue;
        };
        let base = name::split(file).0;
        if uid == 0 || base.is_empty() || list.uids.contains_key(base) || !taken.insert(uid) {
            continue;
        }
        list.uids.insert(base.to_string(), uid);
        if let Some(p) = ext.iter().find_map(|e| e.strip_prefix('P')) {
            if !p.is_empty() && p.len() <= 70 && p.bytes().all(|b| b.is_ascii_graphic()) {
                list.uidls.insert(uid, p.to_string());
            }
        }
        uid_next = uid_next.max(uid.saturating_add(1));
    }
    list.uid_next = uid_next.max(1);
    Some(list)
}

/// One record: UID, file name, extension fields.
fn parse_record<'a>(line: &'a str, version: &str) -> Option<(u32, &'a str, Vec<&'a str>)> {
    let (uid, rest) = line.split_once(' ')?;
    let uid: u32 = uid.parse().ok()?;
    if version == "3" {
        // Extensions up to " :", then the file name (which may hold spaces
        // in theory; ours never do, and such a file is not indexed anyway).
        let (ext, file) = match rest.strip_prefix(':') {
            Some(file) => ("", file),
            None => rest.split_once(" :")?,
        };
        Some((uid, file, ext.split_ascii_whitespace().collect()))
    } else {
        // Version 2 put flags between the UID and the name.
        Some((uid, rest.split_ascii_whitespace().last()?, Vec::new()))
    }
}

/// The foreign UID list of the folder in `dir`, if it has one we can read:
/// Dovecot's first, else Courier's.
pub(crate) fn read_foreign(dir: &Path) -> Result<Option<UidList>> {
    for (file, source) in [
        (DOVECOT_UIDLIST, Source::Dovecot),
        (COURIER_UIDDB, Source::Courier),
    ] {
        let path = dir.join(file);
        let text = match fs::metadata(&path) {
            Ok(md) if md.is_file() && md.len() <= MAX_LIST => {
                fs::read(&path).map_err(|e| Error::io("read", &path, e))?
            }
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(Error::io("stat", &path, e)),
        };
        if let Some(l) = parse_uidlist(&String::from_utf8_lossy(&text), source) {
            return Ok(Some(l));
        }
    }
    Ok(None)
}

/// Before the first message is added to a folder that has no index of ours
/// but a foreign UID list (an APPEND, COPY or MOVE into a folder no session
/// opened yet): opens it once, which imports the list, so the files already
/// there keep their UIDs and the new one comes after them.
pub(crate) fn import_first(folder: &Folder) -> Result<()> {
    let dir = folder.path();
    if dir.join(super::index::INDEX_FILE).exists()
        || !(dir.join(DOVECOT_UIDLIST).exists() || dir.join(COURIER_UIDDB).exists())
    {
        return Ok(());
    }
    folder.open().map(|_| ())
}

/// The POP3 UIDLs to keep for the imported messages of `list` (Dovecot's
/// `P` values, else its default format in lowercase hex), as the file
/// [`POP3_UIDL_FILE`] holds them. Courier's POP3 server names messages by
/// their file names, not by UID, so a Courier import keeps none (the file
/// is written all the same: it marks the list as taken over).
pub(crate) fn uidl_file(list: &UidList) -> String {
    if list.source != Source::Dovecot {
        return String::new();
    }
    let mut uids: Vec<u32> = list.uids.values().copied().collect();
    uids.sort_unstable();
    let mut text = String::with_capacity(uids.len() * 28);
    for uid in uids {
        let uidl = match list.uidls.get(&uid) {
            Some(p) => p.clone(),
            None => format!("{uid:08x}{:08x}", list.validity),
        };
        text.push_str(&format!("{uid} {uidl}\n"));
    }
    text
}

/// The POP3 UIDLs kept from a move (UID → UIDL) of a folder; empty when it
/// has none. The file is written once, just after the index that gives
/// the UIDs.
pub fn pop3_uidls(folder: &Folder) -> Result<HashMap<u32, String>> {
    let path = folder.path().join(POP3_UIDL_FILE);
    let text = match fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(HashMap::new()),
        Err(e) => return Err(Error::io("read", &path, e)),
    };
    Ok(text
        .lines()
        .filter_map(|l| {
            let (uid, uidl) = l.split_once(' ')?;
            Some((uid.parse().ok()?, uidl.to_string()))
        })
        .collect())
}

/// The POP3 UIDL of a message as kmp-pop3d shows it for INBOX: the kept
/// one, else UID and UIDVALIDITY in 8 uppercase hex digits each.
pub fn uidl_of(kept: &HashMap<u32, String>, uid: u32, validity: u32) -> String {
    kept.get(&uid)
        .cloned()
        .unwrap_or_else(|| format!("{uid:08X}{validity:08X}"))
}

/// What [`export_dovecot`] wrote.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Exported {
    /// Folders (IMAP names) given a `dovecot-uidlist`.
    pub folders: Vec<String>,
    /// Messages listed in all.
    pub messages: usize,
}

/// Writes `dovecot-uidlist` (version 3) into every folder of `md`, from our
/// index (each folder is synced first), with the POP3 UIDL of each INBOX
/// message as its `P` value, and the subscriptions in Dovecot's version 2
/// form; `dovecot-keywords` is shared already. Dovecot's own index files
/// (`dovecot.index*`, and at the root the folder list's cache,
/// `dovecot.list.index*`) of an earlier life are stale then: Dovecot would
/// trust them over the list, so they are removed. Each file is replaced
/// atomically. Run it with the servers stopped: mail that arrives later
/// is not in the list, and Dovecot would number it itself.
pub fn export_dovecot(md: &Maildir) -> Result<Exported> {
    let mut out = Exported::default();
    for info in md.list_folders()? {
        if !info.selectable {
            continue;
        }
        let folder = md.folder(&info.name)?;
        let mut mb = folder.open()?;
        let kept = if info.name == "INBOX" {
            pop3_uidls(&folder)?
        } else {
            HashMap::new()
        };
        let dir = folder.path().to_path_buf();
        mb.sync()?;
        let validity = mb.uid_validity();
        let guid = guid_of(&dir, validity);
        let mut text = format!("3 V{validity} N{} G{guid}\n", mb.uid_next().0);
        for m in mb.messages() {
            let uid = m.uid.0;
            if info.name == "INBOX" {
                let uidl = uidl_of(&kept, uid, validity);
                text.push_str(&format!("{uid} P{uidl} :{}\n", m.base));
            } else {
                text.push_str(&format!("{uid} :{}\n", m.base));
            }
            out.messages += 1;
        }
        super::write_atomic(&dir.join(DOVECOT_UIDLIST), text.as_bytes())?;
        for e in fs::read_dir(&dir)
            .map_err(|e| Error::io("readdir", &dir, e))?
            .flatten()
        {
            let n = e.file_name();
            let n = n.to_string_lossy();
            if n.starts_with("dovecot.index") || n.starts_with("dovecot.list.index") {
                let _ = fs::remove_file(e.path());
            }
        }
        out.folders.push(info.name);
    }
    md.write_dovecot_subscriptions()?;
    Ok(out)
}

/// A mailbox GUID for Dovecot's header (128 bits in hex), stable for a
/// folder directory and UIDVALIDITY.
fn guid_of(dir: &Path, validity: u32) -> String {
    let mut h: u64 = 0xcbf29ce484222325;
    let mut g: u64 = 0x84222325cbf29ce4;
    for b in dir.as_os_str().as_encoded_bytes() {
        h = (h ^ u64::from(*b)).wrapping_mul(0x100000001b3);
        g = (g ^ u64::from(*b))
            .wrapping_mul(0x100000001b3)
            .rotate_left(7);
    }
    format!("{h:016x}{:016x}", g ^ u64::from(validity))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_3_with_extensions() {
        let text = "3 V1796441616 N4 G319101060e86136b7b2c000083ecc375\n\
                    1 :1796441614.M359120P11387.vm,S=19,W=22\n\
                    2 W2481 P0000000ffoo G1a2b :1796441614.M399135P11387.vm,S=19,W=22:2,\n\
                    7 O3 :1796441615.V801I2bM5.vm\n\
                    garbage\n\
                    2 :dup-uid\n\
                    9 :1796441614.M359120P11387.vm,S=19,W=22\n";
        let l = parse_uidlist(text, Source::Dovecot).unwrap();
        assert_eq!(l.validity, 1796441616);
        assert_eq!(l.uid_next, 8, "UIDNEXT follows the last record");
        assert_eq!(l.uids.len(), 3);
        assert_eq!(l.uids["1796441614.M399135P11387.vm,S=19,W=22"], 2);
        assert_eq!(l.uids["1796441615.V801I2bM5.vm"], 7);
        assert_eq!(l.uidls.get(&2).map(String::as_str), Some("0000000ffoo"));
        let file = uidl_file(&l);
        assert_eq!(
            file,
            "1 000000016b138610\n2 0000000ffoo\n7 000000076b138610\n"
        );
    }

    #[test]
    fn version_1_and_courier() {
        let text = "1 1234567 10\n3 1700000000.123_0.host\n5 1700000001.456.host:2,S\n";
        let l = parse_uidlist(text, Source::Courier).unwrap();
        assert_eq!((l.validity, l.uid_next), (1234567, 10));
        assert_eq!(l.uids["1700000001.456.host"], 5);
        assert_eq!(uidl_file(&l), "");
        let v2 = "2 99 3\n1 S 1700000000.1.host\n";
        assert_eq!(
            parse_uidlist(v2, Source::Dovecot).unwrap().uids["1700000000.1.host"],
            1
        );
        for bad in ["", "4 V1 N1\n", "1 0 5\n", "3 N5\n", "1 x 5\n"] {
            assert_eq!(parse_uidlist(bad, Source::Dovecot), None, "{bad:?}");
        }
    }

    #[test]
    fn kept_uidls_win_over_ours() {
        let kept: HashMap<u32, String> = [(1, "abc".to_string())].into();
        assert_eq!(uidl_of(&kept, 1, 5), "abc");
        assert_eq!(uidl_of(&kept, 2, 0x6b13), "0000000200006B13");
    }
}
