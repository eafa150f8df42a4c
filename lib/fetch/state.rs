//! What kmp-fetch remembers of each account, in `paths.fetch`: which
//! remote messages it has fetched (the seen log) and how the last run went
//! (the status file). Only kmp-fetch writes here.
//!
//! An account's files are named after a hash of what identifies the remote
//! mailbox (owner, account name, protocol, host, port, user name), so an
//! account pointed at another mailbox starts afresh and two accounts never
//! share a log.
//!
//! The seen log `ID.seen` is append-only text, one line per event:
//!
//! | line | meaning |
//! |------|---------|
//! | `? FOLDER KEY QID TIME` | about to commit queue file QID for this message |
//! | `+ FOLDER KEY TIME` | fetched (durably in the queue) at TIME |
//! | `* FOLDER KEY TIME` | over the size limit: left on the server, not fetched |
//! | `- FOLDER KEY` | gone from the server: forget it |
//! | `v FOLDER UIDVALIDITY` | the IMAP folder's UIDVALIDITY these keys belong to |
//!
//! FOLDER is the hex of the IMAP folder's name (`-` for POP3); KEY is the
//! POP3 UIDL or the IMAP UID. Crash safety (see `session`): `?` is written
//! before the queue commit and `+` after it; a `?` without its `+` found at
//! start is settled by looking at the drop directory: a file still in
//! `incoming/tmp/` with one link was never committed (it is removed and the
//! message fetched again); otherwise the commit happened. The log is
//! fsynced before anything is deleted on the server, so a message is never
//! deleted whose mark a power cut could lose. A torn last line (a crash in
//! the middle of a write) is ignored. When more than half the lines are
//! dead the log is rewritten (tmp, fsync, rename, directory fsync).

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::ipc::fetch::{AccountStatus, FetchAccount};

/// A pending commit older than this with no file left is taken as never
/// committed (kmp-send removes writers' leftovers after a day).
const PENDING_TRUST: u64 = 12 * 3600;

/// What is known of one remote message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Mark {
    /// When it was fetched (or found too big), seconds since the epoch.
    pub time: u64,
    /// Over the size limit: not fetched, never deleted.
    pub too_big: bool,
}

type Key = (String, String);

/// One account's seen log, loaded.
pub struct Seen {
    path: PathBuf,
    file: File,
    marks: HashMap<Key, Mark>,
    validity: HashMap<String, u32>,
    lines: usize,
}

/// The file-name stem of an account's state.
pub fn account_id(a: &FetchAccount) -> String {
    let text = format!(
        "{}\0{}\0{}\0{}\0{}\0{}",
        a.owner.to_lowercase(),
        a.name,
        a.protocol.name(),
        a.host.to_lowercase(),
        a.port,
        a.username
    );
    let d = ring::digest::digest(&ring::digest::SHA256, text.as_bytes());
    d.as_ref()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn hex(s: &str) -> String {
    if s.is_empty() {
        return "-".into();
    }
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<String> {
    if s == "-" {
        return Some(String::new());
    }
    if !s.len().is_multiple_of(2) {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect();
    String::from_utf8(bytes?).ok()
}

/// A key as it may appear in a line: printable ASCII without spaces (RFC
/// 1939 7: a unique-id is 0x21 to 0x7E), at most 70 characters.
pub fn valid_key(k: &str) -> bool {
    !k.is_empty() && k.len() <= 70 && k.bytes().all(|b| (0x21..=0x7e).contains(&b))
}

impl Seen {
    /// Loads (or starts) the seen log of `id` in `dir`, settling any commit
    /// a crash left pending against the drop directory `incoming`.
    pub fn open(dir: &Path, id: &str, incoming: &Path, now: u64) -> io::Result<Seen> {
        let path = dir.join(format!("{id}.seen"));
        let text = match fs::read(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e),
        };
        let mut marks = HashMap::new();
        let mut validity = HashMap::new();
        let mut pending: HashMap<Key, (String, u64)> = HashMap::new();
        let mut lines = 0;
        let whole = match text.iter().rposition(|&b| b == b'\n') {
            Some(p) => &text[..=p],
            None => &text[..0],
        };
        for line in whole.split(|&b| b == b'\n') {
            let Ok(line) = std::str::from_utf8(line) else {
                continue;
            };
            let f: Vec<&str> = line.split(' ').collect();
            lines += 1;
            let folder = f.get(1).and_then(|h| unhex(h));
            match (f.first().copied(), folder, f.get(2)) {
                (Some("+" | "*"), Some(folder), Some(k)) => {
                    let time = f.get(3).and_then(|t| t.parse().ok()).unwrap_or(0);
                    let key = (folder, k.to_string());
                    pending.remove(&key);
                    marks.insert(
                        key,
                        Mark {
                            time,
                            too_big: f[0] == "*",
                        },
                    );
                }
                (Some("?"), Some(folder), Some(k)) => {
                    let qid = f.get(3).unwrap_or(&"").to_string();
                    let time = f.get(4).and_then(|t| t.parse().ok()).unwrap_or(0);
                    pending.insert((folder, k.to_string()), (qid, time));
                }
                (Some("-"), Some(folder), Some(k)) => {
                    marks.remove(&(folder, k.to_string()));
                }
                (Some("v"), Some(folder), Some(v)) => {
                    if let Ok(v) = v.parse() {
                        // A new UIDVALIDITY: the folder's earlier keys mean nothing.
                        marks.retain(|(f, _): &Key, _| *f != folder);
                        pending.retain(|(f, _): &Key, _| *f != folder);
                        validity.insert(folder, v);
                    }
                }
                _ => lines -= 1,
            }
        }
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        let mut seen = Seen {
            path,
            file,
            marks,
            validity,
            lines,
        };
        if whole.len() != text.len() {
            // A torn line: end it so the next one starts clean.
            seen.file.write_all(b"\n")?;
        }
        for ((folder, key), (qid, time)) in pending {
            if committed(incoming, &qid, time, now) {
                seen.mark(&folder, &key, time, false)?;
            }
        }
        Ok(seen)
    }

    /// What is known of a message.
    pub fn get(&self, folder: &str, key: &str) -> Option<Mark> {
        self.marks
            .get(&(folder.to_string(), key.to_string()))
            .copied()
    }

    /// Every message known in `folder`, with its mark.
    pub fn in_folder(&self, folder: &str) -> Vec<(String, Mark)> {
        let mut v: Vec<(String, Mark)> = self
            .marks
            .iter()
            .filter(|((f, _), _)| f == folder)
            .map(|((_, k), m)| (k.clone(), *m))
            .collect();
        v.sort();
        v
    }

    /// The UIDVALIDITY last seen for an IMAP folder.
    pub fn validity(&self, folder: &str) -> Option<u32> {
        self.validity.get(folder).copied()
    }

    /// A folder's UIDVALIDITY changed (or is new): its old keys mean nothing now.
    pub fn set_validity(&mut self, folder: &str, v: u32) -> io::Result<()> {
        let keys: Vec<String> = self.in_folder(folder).into_iter().map(|(k, _)| k).collect();
        for k in keys {
            self.marks.remove(&(folder.to_string(), k));
        }
        self.validity.insert(folder.to_string(), v);
        self.append(&format!("v {} {v}\n", hex(folder)))
    }

    /// Before the queue commit of queue file `qid`.
    pub fn pending(&mut self, folder: &str, key: &str, qid: &str, now: u64) -> io::Result<()> {
        self.append(&format!("? {} {key} {qid} {now}\n", hex(folder)))
    }

    /// After the queue commit (or, `too_big`, instead of a fetch).
    pub fn mark(&mut self, folder: &str, key: &str, now: u64, too_big: bool) -> io::Result<()> {
        let c = if too_big { '*' } else { '+' };
        self.append(&format!("{c} {} {key} {now}\n", hex(folder)))?;
        self.marks.insert(
            (folder.to_string(), key.to_string()),
            Mark { time: now, too_big },
        );
        Ok(())
    }

    /// The message is gone from the server.
    pub fn forget(&mut self, folder: &str, key: &str) -> io::Result<()> {
        if self
            .marks
            .remove(&(folder.to_string(), key.to_string()))
            .is_some()
        {
            self.append(&format!("- {} {key}\n", hex(folder)))?;
        }
        Ok(())
    }

    /// Makes every line written so far durable (before deletions on the server).
    pub fn sync(&mut self) -> io::Result<()> {
        crate::stats::fsync();
        self.file.sync_data()
    }

    /// Rewrites the log without its dead lines when they are the majority.
    pub fn compact(&mut self) -> io::Result<()> {
        let live = self.marks.len() + self.validity.len();
        if self.lines < 64 || self.lines < live * 2 {
            return Ok(());
        }
        let tmp = self.path.with_extension("seen.tmp");
        let mut out = String::new();
        let mut folders: Vec<(&String, &u32)> = self.validity.iter().collect();
        folders.sort();
        for (f, v) in folders {
            out.push_str(&format!("v {} {v}\n", hex(f)));
        }
        let mut all: Vec<(&Key, &Mark)> = self.marks.iter().collect();
        all.sort();
        for ((f, k), m) in all {
            let c = if m.too_big { '*' } else { '+' };
            out.push_str(&format!("{c} {} {k} {}\n", hex(f), m.time));
        }
        {
            let mut f = File::create(&tmp)?;
            f.write_all(out.as_bytes())?;
            f.sync_all()?;
        }
        fs::rename(&tmp, &self.path)?;
        if let Some(d) = self.path.parent() {
            crate::sys::dirsync::sync(d)?;
        }
        self.file = OpenOptions::new().append(true).open(&self.path)?;
        self.lines = live;
        Ok(())
    }

    fn append(&mut self, line: &str) -> io::Result<()> {
        self.lines += 1;
        self.file.write_all(line.as_bytes())
    }
}

/// Whether the queue file `qid`, pending since `time`, was committed.
fn committed(incoming: &Path, qid: &str, time: u64, now: u64) -> bool {
    if qid.is_empty() || qid.contains('/') || qid.starts_with('.') {
        return false;
    }
    let tmp = incoming.join("tmp").join(qid);
    if let Ok(m) = fs::symlink_metadata(&tmp) {
        if m.nlink() > 1 {
            // Linked into new/, the tmp name not yet removed: committed.
            return true;
        }
        // Never committed: the writer died before the link.
        let _ = fs::remove_file(&tmp);
        return false;
    }
    if incoming.join("new").join(qid).exists() {
        return true;
    }
    // Neither: kmp-send took it from new/, or (long ago) removed a
    // leftover. Recent: taken. Old: fetch again (a second copy at worst).
    now.saturating_sub(time) < PENDING_TRUST
}

/// The status file of an account.
pub fn status_path(dir: &Path, id: &str) -> PathBuf {
    dir.join(format!("{id}.status"))
}

/// Reads an account's status (empty when it never ran).
pub fn read_status(dir: &Path, id: &str) -> AccountStatus {
    fs::read(status_path(dir, id))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

/// Writes an account's status (tmp and rename: readers see the old or the new).
pub fn write_status(dir: &Path, id: &str, s: &AccountStatus) -> io::Result<()> {
    let path = status_path(dir, id);
    let tmp = path.with_extension("status.tmp");
    // Invariant: a status is plain strings and numbers.
    fs::write(&tmp, serde_json::to_vec(s).expect("status serialises"))?;
    fs::rename(&tmp, &path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_survive_a_reload_and_a_torn_line_is_ignored() {
        let d = tempfile::tempdir().unwrap();
        let inc = d.path().join("incoming");
        fs::create_dir_all(inc.join("tmp")).unwrap();
        fs::create_dir_all(inc.join("new")).unwrap();
        let mut s = Seen::open(d.path(), "a", &inc, 100).unwrap();
        s.mark("", "uid1", 100, false).unwrap();
        s.mark("收件箱", "7", 100, true).unwrap();
        s.set_validity("收件箱", 42).unwrap();
        s.mark("收件箱", "8", 101, false).unwrap();
        s.mark("", "uid2", 100, false).unwrap();
        s.forget("", "uid2").unwrap();
        // Pending: one committed (in new/), one not (tmp with one link),
        // one taken by kmp-send (neither, recent).
        s.pending("", "p1", "Q1", 100).unwrap();
        fs::write(inc.join("new/Q1"), b"x").unwrap();
        s.pending("", "p2", "Q2", 100).unwrap();
        fs::write(inc.join("tmp/Q2"), b"x").unwrap();
        s.pending("", "p3", "Q3", 100).unwrap();
        drop(s);
        let mut f = OpenOptions::new()
            .append(true)
            .open(d.path().join("a.seen"))
            .unwrap();
        f.write_all(b"+ - torn").unwrap();
        let s = Seen::open(d.path(), "a", &inc, 200).unwrap();
        assert!(s.get("", "uid1").is_some());
        assert!(s.get("", "uid2").is_none());
        assert!(s.get("", "torn").is_none());
        assert_eq!(s.validity("收件箱"), Some(42));
        assert!(s.get("收件箱", "7").is_none(), "before the UIDVALIDITY");
        assert_eq!(s.get("收件箱", "8").unwrap().time, 101);
        assert!(s.get("", "p1").is_some());
        assert!(s.get("", "p2").is_none());
        assert!(
            !inc.join("tmp/Q2").exists(),
            "the uncommitted file is removed"
        );
        assert!(s.get("", "p3").is_some());
        drop(s);
        // The torn line was ended: later lines read.
        let mut s = Seen::open(d.path(), "a", &inc, 300).unwrap();
        s.mark("", "uid9", 300, false).unwrap();
        drop(s);
        let s = Seen::open(d.path(), "a", &inc, 300).unwrap();
        assert!(s.get("", "uid9").is_some());
    }

    #[test]
    fn compaction_keeps_the_live_marks() {
        let d = tempfile::tempdir().unwrap();
        let inc = d.path().join("incoming");
        let mut s = Seen::open(d.path(), "b", &inc, 1).unwrap();
        for i in 0..200 {
            s.mark("", &format!("u{i}"), 1, false).unwrap();
        }
        for i in 0..150 {
            s.forget("", &format!("u{i}")).unwrap();
        }
        s.compact().unwrap();
        drop(s);
        let text = fs::read_to_string(d.path().join("b.seen")).unwrap();
        assert_eq!(text.lines().count(), 50);
        let s = Seen::open(d.path(), "b", &inc, 1).unwrap();
        assert!(s.get("", "u150").is_some() && s.get("", "u1").is_none());
    }

    #[test]
    fn keys_and_hex() {
        assert!(valid_key("whqtswO00WBw418f9t5JxYwZ"));
        assert!(!valid_key("a b") && !valid_key("") && !valid_key(&"x".repeat(71)));
        assert_eq!(unhex(&hex("收件箱")).unwrap(), "收件箱");
        assert_eq!(unhex("-").unwrap(), "");
        assert!(unhex("zz").is_none());
    }
}
