//! Announcements: one message from the administrator into many INBOXes,
//! stored once (`kmpctl announce`).
//!
//! The message ([`message`]) is written once, fsynced, and hard-linked into
//! each chosen Maildir's `new/` (a million mailboxes: one inode, a million
//! names), following the Maildir library's own steps (`maildir::deliver`):
//! link, fsync `new/`, count it in `maildirsize`. kmp-imapd and kmp-pop3d
//! find it as any new delivery (the link changes `new/`'s mtime, which is
//! what their index sync looks at); its internal date is the stored file's
//! mtime, shared by every link: the time of the announcement.
//!
//! **The record.** Each announcement has a directory
//! `paths.mail/.kmp-announce/ID/` (a domain name cannot start with a dot, so
//! it never meets a Maildir): `message`, the stored file every Maildir links
//! to; `done`, the addresses served, one a line, appended after each batch's
//! `new/` fsyncs (the journal); `complete`, written when a run served every
//! chosen mailbox, at which point `message` is unlinked (the mailboxes hold
//! the only names left). The id comes from the message file's contents, so
//! running the same command again after an interruption finds the record,
//! links the same inode and skips everyone in `done`; for the others it
//! first looks for the announcement's name in `new/` and `cur/` (a batch
//! whose journal line a crash lost). Nobody gets it twice.
//!
//! **Quota.** An announcement is counted in `maildirsize` like any delivery
//! (and never refused for a full mailbox: the administrator's notice must
//! arrive). Not counting it would not make it free: every recount (ours,
//! Dovecot's, Courier's) adds the sizes in the file names, so usage would
//! jump at the next one. The user deletes it to get the space back.

pub mod message;
pub mod spool;

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::maildir::deliver::{link_or_copy, write_tmp, TmpFile};
use crate::maildir::{self, name, quota, Maildir};

/// The directory of the records, below `paths.mail`.
pub const RECORDS: &str = ".kmp-announce";
/// The stored file in a record.
const MESSAGE: &str = "message";
/// The journal of addresses served.
const DONE: &str = "done";
/// Written when every chosen mailbox was served.
const COMPLETE: &str = "complete";

/// The delivery id of announcement `id` in file names (`_announce-ID.`).
pub fn delivery_id(id: &str) -> String {
    format!("announce-{id}")
}

/// Who owns what is made in mailboxes: `privileges.local`'s ids when
/// kmpctl runs as root, None otherwise (an instance of one user).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owner {
    pub uid: u32,
    pub gid: u32,
}

/// One announcement's record directory.
#[derive(Debug)]
pub struct Record {
    dir: PathBuf,
    id: String,
    /// Whether the directory had a journal before this run.
    resumed: bool,
    _lock: maildir::lock::Lock,
}

impl Record {
    /// Opens (creating) the record of `id` under `mail_root` and locks it,
    /// so two runs of one announcement never interleave.
    pub fn open(mail_root: &Path, id: &str) -> Result<Record, String> {
        if !message::valid_id(id) {
            return Err(format!("{id:?} is not an announcement id"));
        }
        // The mail root is made by `kmpctl setup` or `init` with its owner;
        // made here it would be root's.
        if !mail_root.is_dir() {
            return Err(format!(
                "{} (paths.mail) does not exist: kmpctl setup makes it",
                mail_root.display()
            ));
        }
        let dir = mail_root.join(RECORDS).join(id);
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(|e| format!("{}: {e}", dir.display()))?;
        fs::create_dir_all(dir.join("tmp")).map_err(|e| format!("{}: {e}", dir.display()))?;
        let lock = maildir::lock::exclusive(&dir.join("lock")).map_err(|e| e.to_string())?;
        let resumed = dir.join(DONE).exists();
        Ok(Record {
            dir,
            id: id.to_string(),
            resumed,
            _lock: lock,
        })
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Whether an earlier run left a journal: then addresses not in it are
    /// looked for in their Maildir before the link.
    pub fn resumed(&self) -> bool {
        self.resumed
    }

    /// The addresses an earlier run served.
    pub fn done(&self) -> io::Result<HashSet<String>> {
        let f = match File::open(self.dir.join(DONE)) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(HashSet::new()),
            Err(e) => return Err(e),
        };
        io::BufReader::new(f)
            .lines()
            .map(|l| l.map(|l| l.trim().to_string()))
            .filter(|l| !matches!(l, Ok(s) if s.is_empty()))
            .collect()
    }

    /// The journal, opened for appending.
    pub fn journal(&self) -> io::Result<File> {
        OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .open(self.dir.join(DONE))
    }

    /// The stored file of an earlier, interrupted run, if it is still there.
    pub fn stored(&self) -> io::Result<Option<Stored>> {
        let path = self.dir.join(MESSAGE);
        let md = match fs::metadata(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let bytes = fs::read(&path)?;
        let vsize = bytes.len() as u64 + bytes.iter().filter(|&&b| b == b'\n').count() as u64;
        Ok(Some(Stored {
            tmp: TmpFile {
                path,
                unique: String::new(),
                size: md.len(),
                vsize,
            },
            mtime: md.modified()?,
            ino: md.ino(),
            bytes,
        }))
    }

    /// Writes the stored file durably (given to `owner`), the one inode
    /// every Maildir will link to.
    pub fn store(&self, bytes: &[u8], owner: Option<Owner>) -> Result<Stored, String> {
        let tmp = write_tmp(&self.dir, &mut &bytes[..], None, None).map_err(|e| e.to_string())?;
        if let Some(o) = owner {
            std::os::unix::fs::chown(&tmp.path, Some(o.uid), Some(o.gid))
                .map_err(|e| format!("{}: chown: {e}", tmp.path.display()))?;
        }
        let path = self.dir.join(MESSAGE);
        // A crash before the rename leaves a file in the record's tmp/
        // only; the next run writes the message again.
        fs::rename(&tmp.path, &path).map_err(|e| format!("{}: {e}", path.display()))?;
        crate::sys::fsync_dir(&self.dir).map_err(|e| format!("{}: {e}", self.dir.display()))?;
        let md = fs::metadata(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(Stored {
            tmp: TmpFile { path, ..tmp },
            mtime: md.modified().unwrap_or_else(|_| SystemTime::now()),
            ino: md.ino(),
            bytes: bytes.to_vec(),
        })
    }

    /// Every chosen mailbox was served: the record's own name of the
    /// stored file goes (the Maildirs hold the only ones), and `complete`
    /// says when.
    pub fn finish(&self, summary: &str) -> io::Result<()> {
        match fs::remove_file(self.dir.join(MESSAGE)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let _ = fs::remove_dir(self.dir.join("tmp"));
        fs::write(self.dir.join(COMPLETE), summary)
    }
}

/// The stored announcement.
#[derive(Debug)]
pub struct Stored {
    tmp: TmpFile,
    /// Its mtime: the internal date of every link.
    pub mtime: SystemTime,
    /// Its inode: a link elsewhere of the same inode is single-instance.
    pub ino: u64,
    pub bytes: Vec<u8>,
}

impl Stored {
    pub fn size(&self) -> u64 {
        self.tmp.size
    }
}

/// What became of one mailbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placed {
    /// Linked now.
    Linked,
    /// It was there already (an interrupted run linked it).
    Already,
    /// Not served: why.
    Failed(String),
}

/// Puts the announcement into the INBOX of the Maildir `root`, creating the
/// Maildir when it does not exist yet. With `look`, first looks whether an
/// earlier run placed it.
pub fn place(stored: &Stored, id: &str, root: &Path, look: bool, owner: Option<Owner>) -> Placed {
    match place_in(stored, id, root, look, owner) {
        Ok(p) => p,
        Err(e) => Placed::Failed(e),
    }
}

fn place_in(
    stored: &Stored,
    id: &str,
    root: &Path,
    look: bool,
    owner: Option<Owner>,
) -> Result<Placed, String> {
    if !root.join("new").is_dir() {
        make_maildir(root, owner)?;
    }
    let inbox = Maildir::new(root).inbox();
    let did = delivery_id(id);
    if look {
        if let Some(_d) = inbox
            .find_delivery(&did, Some(stored.mtime))
            .map_err(|e| e.to_string())?
        {
            return Ok(Placed::Already);
        }
    }
    let base = name::with_sizes(
        &name::unique(SystemTime::now(), Some(&did)),
        stored.tmp.size,
        stored.tmp.vsize,
    );
    let dest = root.join("new").join(&base);
    link_or_copy(&stored.tmp, root, &dest, Some(stored.mtime)).map_err(|e| e.to_string())?;
    if let Some(o) = owner {
        // A Maildir on another file system got a copy, written by us.
        let md = fs::symlink_metadata(&dest).map_err(|e| format!("{}: {e}", dest.display()))?;
        if md.ino() != stored.ino && md.uid() != o.uid {
            std::os::unix::fs::chown(&dest, Some(o.uid), Some(o.gid))
                .map_err(|e| format!("{}: chown: {e}", dest.display()))?;
        }
    }
    let new = root.join("new");
    crate::sys::dirsync::sync(&new).map_err(|e| format!("{}: fsync: {e}", new.display()))?;
    quota::record(&inbox, stored.tmp.size as i64, 1);
    Ok(Placed::Linked)
}

/// Creates a user's Maildir as kmp-local would on a first delivery, giving
/// what was made (parents included) to `owner`.
fn make_maildir(root: &Path, owner: Option<Owner>) -> Result<(), String> {
    let mut made: Vec<PathBuf> = Vec::new();
    let mut p = Some(root);
    while let Some(d) = p {
        if d.exists() {
            break;
        }
        made.push(d.to_path_buf());
        p = d.parent();
    }
    let had_cur = root.join("cur").is_dir();
    Maildir::open_or_create(root).map_err(|e| format!("{}: {e}", root.display()))?;
    for sub in ["tmp", "new", "cur"] {
        let p = root.join(sub);
        if !p.is_dir() {
            fs::DirBuilder::new()
                .mode(0o700)
                .create(&p)
                .map_err(|e| format!("{}: {e}", p.display()))?;
            made.push(p);
        }
    }
    let Some(o) = owner else { return Ok(()) };
    if !had_cur && made.iter().any(|m| m == root) {
        // A brand-new Maildir: everything in it is ours to give.
        chown_tree(root, o)?;
    }
    for d in made {
        std::os::unix::fs::chown(&d, Some(o.uid), Some(o.gid))
            .map_err(|e| format!("{}: chown: {e}", d.display()))?;
    }
    Ok(())
}

fn chown_tree(dir: &Path, o: Owner) -> Result<(), String> {
    std::os::unix::fs::chown(dir, Some(o.uid), Some(o.gid))
        .map_err(|e| format!("{}: chown: {e}", dir.display()))?;
    let entries = fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for e in entries {
        let e = e.map_err(|e| format!("{}: {e}", dir.display()))?;
        let p = e.path();
        if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            chown_tree(&p, o)?;
        } else {
            std::os::unix::fs::lchown(&p, Some(o.uid), Some(o.gid))
                .map_err(|e| format!("{}: chown: {e}", p.display()))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn stored(rec: &Record) -> Stored {
        rec.store(
            b"X-Kmpromail-Announcement: 0123456789abcdef\nSubject: s\n\nb\n",
            None,
        )
        .unwrap()
    }

    #[test]
    fn one_inode_for_every_mailbox_and_a_second_run_finds_it() {
        let d = tempfile::tempdir().unwrap();
        let id = "0123456789abcdef";
        assert!(Record::open(&d.path().join("missing"), id).is_err());
        let rec = Record::open(d.path(), id).unwrap();
        assert!(!rec.resumed());
        let s = stored(&rec);
        let roots: Vec<PathBuf> = (0..3).map(|i| d.path().join(format!("ex/u{i}"))).collect();
        for r in &roots {
            assert_eq!(place(&s, id, r, false, None), Placed::Linked);
        }
        assert_eq!(
            fs::metadata(d.path().join(".kmp-announce").join(id).join("message"))
                .unwrap()
                .nlink(),
            4
        );
        // Brand-new Maildirs got their folders, as kmp-local makes them.
        assert!(roots[0].join(".Sent/cur").is_dir());
        // Looking finds it in new/, and in cur/ once a client moved it.
        assert_eq!(place(&s, id, &roots[0], true, None), Placed::Already);
        let f = fs::read_dir(roots[1].join("new"))
            .unwrap()
            .next()
            .unwrap()
            .unwrap();
        let cur = roots[1]
            .join("cur")
            .join(format!("{}:2,S", f.file_name().to_str().unwrap()));
        fs::rename(f.path(), cur).unwrap();
        assert_eq!(place(&s, id, &roots[1], true, None), Placed::Already);
        drop(rec);
        let rec = Record::open(d.path(), id).unwrap();
        rec.journal().unwrap().write_all(b"a@x\nb@x\n").unwrap();
        drop(rec);
        let rec = Record::open(d.path(), id).unwrap();
        assert!(rec.resumed());
        assert_eq!(rec.done().unwrap().len(), 2);
        let again = rec.stored().unwrap().unwrap();
        assert_eq!(again.ino, s.ino);
        rec.finish("done\n").unwrap();
        assert!(rec.stored().unwrap().is_none());
        let link = fs::read_dir(roots[2].join("new"))
            .unwrap()
            .next()
            .unwrap()
            .unwrap();
        assert_eq!(link.metadata().unwrap().nlink(), 3);
        assert!(Record::open(d.path(), "../x").is_err());
    }
}
