//! Maildir++: the one durable Maildir writer and reader of Kmpromail.
//!
//! kmp-local delivers with it, kmp-pop3d and kmp-imapd read and change
//! mailboxes with it; nothing else writes into a Maildir. The on-disk format is
//! Maildir++ exactly as Courier and Dovecot use it, so their tools, mutt,
//! mblaze and Python's `mailbox.Maildir` read our mailboxes and we read theirs.
//!
//! # Layout
//!
//! ```text
//! ROOT/                      INBOX: tmp/ new/ cur/
//! ROOT/.Sent/ .Drafts/ .Trash/ .Junk/   special-use folders, made for every user
//! ROOT/.Work.2024/           folder "Work.2024" ('.' is the hierarchy delimiter)
//! ROOT/.&kK5O9g-/            folder "邮件" (modified UTF-7, RFC 3501 5.1.3)
//! ROOT/maildirsize           quota (quota.rs)       ROOT/subscriptions
//! FOLDER/maildirfolder       marks a folder (not INBOX)
//! FOLDER/kmpromail-uidlist   UIDs, MODSEQs (index.rs), + .lock
//! FOLDER/kmpromail-modseq    MODSEQ ceiling of this boot (index/ceiling.rs)
//! FOLDER/dovecot-keywords    keyword letters a–z (flags.rs)
//! ROOT/kmpromail-pop3.lock   POP3 maildrop lock (lock.rs)
//! ROOT/kmpromail-uidvalidity the last UIDVALIDITY given here (index.rs), + .lock
//! ```
//!
//! Messages are stored with LF line endings, named
//! `SECS.M<usec>P<pid>Q<n>[_<delivery id>].HOST,S=<size>,W=<CRLF size>` and
//! `...:2,<flags>` once in `cur/` (name.rs), so neither size needs a read.
//! IMAP APPEND, COPY and MOVE put messages in `new/` too (IMAP `\Recent`),
//! named `...:2,<flags>` there when they have flags.
//!
//! # API at a glance
//!
//! ```no_run
//! use kmpromail::maildir::{Maildir, Flags, FlagOp, Uid, quota::Limits};
//! # fn main() -> Result<(), kmpromail::maildir::Error> {
//! // kmp-local: a new user, a delivery, the quota check.
//! let md = Maildir::create("/var/kmpromail/mail/example.com/joe")?;
//! let usage = md.quota(Some(Limits { bytes: 1 << 30, messages: 0 }))?;
//! if !usage.would_exceed(1234) {
//!     let d = md.inbox().deliver(&mut std::io::Cursor::new(b"Subject: hi\n\nhello\n"), Some("QID.0"))?;
//!     assert!(!d.duplicate); // a retry with "QID.0" returns duplicate: true instead
//! }
//! // One message to many users (single instance): maildir::deliver_many.
//!
//! // kmp-pop3d: lock, list INBOX in UID order, RETR, delete at QUIT.
//! let _lock = md.lock_maildrop()?; // Error::Locked -> "[IN-USE]"
//! let mut inbox = md.inbox().open()?;
//! let listing: Vec<(Uid, u64)> = inbox.messages().map(|m| (m.uid, m.vsize)).collect();
//! let _file = inbox.open_message(listing[0].0)?; // LF on disk: send as CRLF, dot-stuffed
//! let _gone = inbox.expunge(&[listing[0].0])?;
//!
//! // kmp-imapd: folders, sync, flags, append, copy/move.
//! md.create_folder("Work.2024")?;
//! let mut work = md.folder("Work.2024")?.open()?;
//! let changes = work.sync()?; // added / expunged / changed UIDs since the last sync
//! let uid = md.folder("Work.2024")?.append(&mut &b"Subject: x\n\nbody\n"[..], Flags::SEEN, &[], None)?.uid;
//! work.store(&[uid], FlagOp::Add, Flags::SEEN, &["$Important"], None)?;
//! let copied = work.copy(&[uid], &md.folder("Sent")?)?; // (source UID, new UID) pairs
//! # let _ = (usage, changes, copied); Ok(()) }
//! ```
//!
//! - [`Maildir`]: a user's Maildir: [`Maildir::create`], [`Maildir::folder`],
//!   [`Maildir::inbox`], folder management (`create_folder`, `delete_folder`,
//!   `rename_folder`, `list_folders`, `subscribe`, `unsubscribe`,
//!   `subscriptions`: folder.rs), [`Maildir::quota`], [`Maildir::lock_maildrop`].
//! - [`Folder`]: one mailbox (INBOX or a `.folder`): [`Folder::deliver`],
//!   [`Folder::find_delivery`], [`Folder::append`] (IMAP APPEND, returns the
//!   UID), [`Folder::open`] → [`Mailbox`].
//! - [`Mailbox`]: an open view for a session: [`Mailbox::sync`] (scan + index
//!   update, fast when nothing changed), `messages()` in UID order, `get(uid)`,
//!   `store` (flags by UID, with CONDSTORE's UNCHANGEDSINCE), `expunge`,
//!   `copy`, `move_to`, `open_message`, `uid_validity`, `uid_next`,
//!   `highest_modseq`, `keywords`.
//! - [`deliver_many`]: single-instance delivery to many Maildirs.
//! - Errors: [`Error`], with [`Error::is_temporary`]; temporary failures never
//!   lose a message nor leave a partial file in `new/`/`cur/`.
//!
//! Folder names in this API are UTF-8 IMAP names with `.` as the delimiter
//! (`"INBOX"`, case-insensitive, is the root); kmp-imapd converts from and to
//! modified UTF-7 on the wire with [`crate::proto::utf7`].

pub mod deliver;
pub mod error;
pub mod flags;
pub mod folder;
pub mod index;
pub mod lock;
pub mod mailbox;
pub mod metadata;
pub mod migrate;
pub mod name;
pub mod ops;
pub mod quota;
pub(crate) mod replace;
pub mod stage;
pub mod urlauth;

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

pub use deliver::{deliver_many, Delivered, Target};
pub use error::{Error, Result};
pub use flags::{FlagOp, Flags, Keywords, MailFlags};
pub use folder::{FolderInfo, SpecialUse};
pub use index::{Loc, Message, ModSeq, Uid};
pub use lock::MaildropLock;
pub use mailbox::{Appended, Changes, CopyResult, Mailbox, StoreResult, Written};

use error::io_err;
pub(crate) use replace::{temp_file, write_atomic};

/// A user's Maildir++ directory. Cheap to make: no I/O until used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Maildir {
    root: PathBuf,
}

/// One mailbox: INBOX (the Maildir's root) or a `.folder` below it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Folder {
    pub(crate) root: PathBuf,
    pub(crate) dir: PathBuf,
    name: String,
}

impl Maildir {
    /// The Maildir at `root`, without touching the disk.
    pub fn new(root: impl Into<PathBuf>) -> Maildir {
        Maildir { root: root.into() }
    }

    /// Creates (or completes) a user's Maildir: `tmp/ new/ cur/` (0700), the
    /// special-use folders Sent, Drafts, Trash and Junk, and `subscriptions`
    /// listing them. Safe to call on an existing Maildir: nothing there changes.
    pub fn create(root: impl Into<PathBuf>) -> Result<Maildir> {
        let md = Maildir::new(root);
        folder::create_user(&md)?;
        Ok(md)
    }

    /// The Maildir of a user who logs in (IMAP, POP3): created with its
    /// special-use folders when it does not exist yet ([`Maildir::create`]),
    /// else taken as it is. The one rule for both servers: a Maildir that
    /// exists (one moved in from another server, say) never gets folders
    /// its owner did not make, which every client would then show, and
    /// every synchronising client (mbsync, offlineimap) would copy.
    pub fn open_or_create(root: impl Into<PathBuf>) -> Result<Maildir> {
        let md = Maildir::new(root);
        if md.root.join("cur").is_dir() {
            Ok(md)
        } else {
            folder::create_user(&md)?;
            Ok(md)
        }
    }

    /// The directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// INBOX.
    pub fn inbox(&self) -> Folder {
        Folder {
            root: self.root.clone(),
            dir: self.root.clone(),
            name: "INBOX".to_string(),
        }
    }

    /// The folder of an IMAP name (UTF-8, `.`-delimited; `INBOX` in any case
    /// is the root). Checks the name, not whether the folder exists.
    pub fn folder(&self, name: &str) -> Result<Folder> {
        if name.eq_ignore_ascii_case("INBOX") {
            return Ok(self.inbox());
        }
        let dir = folder::dir_name(name)?;
        Ok(Folder {
            root: self.root.clone(),
            dir: self.root.join(dir),
            name: name.to_string(),
        })
    }

    /// Takes the POP3 maildrop lock ([`Error::Locked`] if another session has it).
    pub fn lock_maildrop(&self) -> Result<MaildropLock> {
        MaildropLock::acquire(&self.root)
    }

    /// The user's quota usage; `limits` from the user database (see quota.rs).
    pub fn quota(&self, limits: Option<quota::Limits>) -> Result<quota::Usage> {
        quota::usage(&self.root, limits)
    }
}

impl Folder {
    /// The IMAP name (UTF-8): `INBOX` or e.g. `Work.2024`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The folder's directory.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Whether the folder exists (has a `cur/`).
    pub fn exists(&self) -> bool {
        self.dir.join("cur").is_dir()
    }

    /// Delivers a message into `new/`, durably; see [`deliver::deliver`].
    pub fn deliver(&self, data: &mut dyn Read, delivery_id: Option<&str>) -> Result<Delivered> {
        deliver::deliver(self, data, delivery_id)
    }

    /// The message delivered with this id, if it is in `new/` or `cur/`.
    /// `arrived` (the queue's arrival time), when given, lets the search skip
    /// a directory unchanged since then.
    pub fn find_delivery(
        &self,
        delivery_id: &str,
        arrived: Option<SystemTime>,
    ) -> Result<Option<Delivered>> {
        deliver::find_delivery(self, delivery_id, arrived)
    }

    /// Opens the folder for a session: reads the UID index and scans the
    /// files. New messages stay in `new/` (and count as IMAP `\Recent`) until
    /// [`Mailbox::set_move_new`] asks for them to be moved on sight.
    pub fn open(&self) -> Result<Mailbox> {
        Mailbox::open(self.clone())
    }

    /// Adds a message with flags and an internal date (IMAP APPEND) into
    /// `new/` (so it is `\Recent`) and gives it its UID at once (for
    /// UIDPLUS's APPENDUID).
    pub fn append(
        &self,
        data: &mut dyn Read,
        flags: Flags,
        keywords: &[&str],
        internal_date: Option<SystemTime>,
    ) -> Result<Appended> {
        mailbox::append(self, data, flags, keywords, internal_date)
    }

    /// [`Folder::append`] for a message that must be kept byte for byte in
    /// its CRLF form (an IMAP APPEND whose bare LFs are content): stored as
    /// given, with `W=` equal to `S=`, so readers send it unchanged.
    pub fn append_verbatim(
        &self,
        data: &mut dyn Read,
        flags: Flags,
        keywords: &[&str],
        internal_date: Option<SystemTime>,
    ) -> Result<Appended> {
        mailbox::append_as(self, data, flags, keywords, internal_date, true)
    }

    /// The first half of an APPEND: the message written into `tmp/` and
    /// fsynced, invisible until [`Mailbox::append_written`] links it into
    /// `new/` (`verbatim` as in [`Folder::append_verbatim`]).
    pub fn write_message(
        &self,
        data: &mut dyn Read,
        internal_date: Option<SystemTime>,
        verbatim: bool,
    ) -> Result<Written> {
        mailbox::write_message(self, data, internal_date, verbatim)
    }

    /// The second half of an APPEND without an open view of the folder:
    /// `written` linked into `new/`, with its UID from the index on disk.
    /// (With a view open, [`Mailbox::append_written`].)
    pub fn append_written(
        &self,
        written: Written,
        flags: Flags,
        keywords: &[&str],
    ) -> Result<Appended> {
        mailbox::append_written_to(self, written, flags, keywords)
    }

    /// Removes files older than 36 hours from `tmp/` (the Maildir
    /// specification's rule): leftovers of crashes. Returns how many.
    pub fn clean_tmp(&self) -> Result<usize> {
        let tmp = self.dir.join("tmp");
        let limit = SystemTime::now() - Duration::from_secs(36 * 3600);
        let mut n = 0;
        for e in fs::read_dir(&tmp)
            .map_err(io_err("readdir", &tmp))?
            .flatten()
        {
            let old = e
                .metadata()
                .ok()
                .filter(|m| m.is_file())
                .and_then(|m| m.modified().ok())
                .is_some_and(|t| t < limit);
            if old && fs::remove_file(e.path()).is_ok() {
                n += 1;
            }
        }
        Ok(n)
    }
}

/// Creates (or truncates) a file readable by its owner only: mail metadata
/// (folder names, keywords, quota) is nobody else's business.
pub(crate) fn private_file(path: &Path) -> Result<fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(io_err("create", path))
}
