//! The narrow view of a user's mail the IMAP session needs.
//!
//! The session never touches files itself: it asks a [`MailStore`] (one per
//! logged-in user) and the [`Folder`] it opens. The implementation over the
//! project's Maildir library is in `maildir_store.rs`; keeping the seam this
//! small lets the session be tested on its own and keeps the Maildir rules in
//! one place.

use std::collections::BTreeSet;

/// Errors from the store, for the NO / BYE replies.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No such folder (NO [NONEXISTENT]).
    #[error("no such mailbox")]
    NoSuchFolder,
    /// The folder exists already (NO [ALREADYEXISTS]).
    #[error("mailbox already exists")]
    Exists,
    /// A name that cannot be stored (NO [CANNOT]).
    #[error("{0}")]
    BadName(String),
    /// Refused for a reason the user can act on (NO [CANNOT]).
    #[error("{0}")]
    Refused(String),
    /// Over quota (NO [OVERQUOTA]).
    #[error("quota exceeded")]
    OverQuota,
    /// The message is gone (expunged by someone else).
    #[error("message expunged")]
    Gone,
    /// A temporary failure (NO [UNAVAILABLE]).
    #[error("{0}")]
    Temporary(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// System flags of a message, as bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct SysFlags(pub u8);

impl SysFlags {
    pub const SEEN: u8 = 1;
    pub const ANSWERED: u8 = 2;
    pub const FLAGGED: u8 = 4;
    pub const DELETED: u8 = 8;
    pub const DRAFT: u8 = 16;

    pub fn has(self, bit: u8) -> bool {
        self.0 & bit != 0
    }
}

/// Flags and keywords of a message.
#[derive(Debug, Clone, PartialEq, Eq, Default, Hash)]
pub struct MsgFlags {
    pub sys: SysFlags,
    pub keywords: BTreeSet<String>,
}

/// One message as a folder's state lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MsgMeta {
    pub uid: u32,
    pub flags: MsgFlags,
    pub modseq: u64,
    /// INTERNALDATE, seconds since the epoch.
    pub internal_date: i64,
    /// RFC822.SIZE: the size with CRLF line ends.
    pub size: u64,
    /// Delivered since the folder was last opened by anyone (Maildir new/).
    pub recent: bool,
}

/// A folder's state as every session of the process that has it selected
/// shares it: one [`MsgMeta`] per message, behind an `Arc`, so a session's
/// view holds pointers rather than copies and sees which messages changed
/// by comparing them. `recent` is always false here: \Recent is a
/// session's own (see [`State::recent`]).
#[derive(Debug, Clone, Default)]
pub struct State {
    /// Bumped on every change; equal generations mean equal states.
    pub generation: u64,
    pub uidvalidity: u32,
    pub uidnext: u32,
    pub highest_modseq: u64,
    /// Ascending UID order.
    pub messages: std::sync::Arc<Vec<std::sync::Arc<MsgMeta>>>,
    /// UIDs that became \Recent for this session in this call.
    pub recent: Vec<u32>,
}

/// What [`Folder::store_flags`] did to one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stored {
    /// The message's flags and MODSEQ now; `changed` if this call changed them.
    Done {
        flags: MsgFlags,
        modseq: u64,
        changed: bool,
    },
    /// Left alone: its MODSEQ is above UNCHANGEDSINCE (RFC 7162 3.1.3).
    Modified,
    /// Expunged meanwhile.
    Gone,
}

/// A folder as LIST shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FolderInfo {
    /// The name, UTF-8, `/` between levels, `INBOX` for the inbox.
    pub name: String,
    /// RFC 6154 attribute (`\Sent`, ...), if any.
    pub special_use: Option<&'static str>,
}

/// Quota usage and limits (RFC 9208); limits of 0 mean none.
#[derive(Debug, Clone, Copy, Default)]
pub struct Quota {
    pub used_bytes: u64,
    pub limit_bytes: u64,
    pub used_messages: u64,
    pub limit_messages: u64,
}

/// Counts for STATUS, without opening the folder for a session.
#[derive(Debug, Clone, Copy, Default)]
pub struct FolderStatus {
    pub messages: u32,
    pub recent: u32,
    pub unseen: u32,
    pub deleted: u32,
    pub size: u64,
    pub uidnext: u32,
    pub uidvalidity: u32,
    pub highest_modseq: u64,
}

/// One user's mail.
pub trait MailStore: Send {
    /// Every folder, INBOX first.
    fn folders(&mut self) -> StoreResult<Vec<FolderInfo>>;
    fn create(&mut self, name: &str) -> StoreResult<()>;
    fn delete(&mut self, name: &str) -> StoreResult<()>;
    fn rename(&mut self, from: &str, to: &str) -> StoreResult<()>;
    /// Subscribed names.
    fn subscriptions(&mut self) -> StoreResult<Vec<String>>;
    fn set_subscribed(&mut self, name: &str, on: bool) -> StoreResult<()>;
    /// Opens a folder for a session.
    fn open(&mut self, name: &str) -> StoreResult<Box<dyn Folder>>;
    fn status(&mut self, name: &str) -> StoreResult<FolderStatus>;
    /// Appends a message (LF or CRLF line ends); returns (UIDVALIDITY, UID).
    fn append(
        &mut self,
        folder: &str,
        message: &[u8],
        flags: &MsgFlags,
        internal_date: Option<i64>,
    ) -> StoreResult<(u32, u32)>;
    /// A file a large APPEND message is written to as it arrives, in the
    /// user's own storage (never in memory), for [`MailStore::append_file`].
    fn stage(&mut self) -> StoreResult<std::fs::File>;
    /// Appends the first `size` bytes of a staged file (LF or CRLF line
    /// ends); returns (UIDVALIDITY, UID).
    fn append_file(
        &mut self,
        folder: &str,
        file: &mut std::fs::File,
        size: u64,
        flags: &MsgFlags,
        internal_date: Option<i64>,
    ) -> StoreResult<(u32, u32)>;
    fn quota(&mut self) -> StoreResult<Quota>;
    /// METADATA entries (RFC 5464) of a folder, or of the user's server
    /// when `folder` is None.
    fn metadata(&mut self, _folder: Option<&str>) -> StoreResult<Metadata> {
        Err(StoreError::Refused("METADATA is not kept here".into()))
    }
    /// Sets (Some) or removes (None) entries, all or none; false (and
    /// nothing changed) when more than `max_entries` would result.
    fn set_metadata(
        &mut self,
        _folder: Option<&str>,
        _changes: &[(String, Option<Vec<u8>>)],
        _max_entries: usize,
    ) -> StoreResult<bool> {
        Err(StoreError::Refused("METADATA is not kept here".into()))
    }
    /// Whether a folder exists (APPEND answers TRYCREATE before anything else).
    fn exists(&mut self, name: &str) -> StoreResult<bool> {
        match self.status(name) {
            Ok(_) => Ok(true),
            Err(StoreError::NoSuchFolder) => Ok(false),
            Err(e) => Err(e),
        }
    }
    /// A folder's URLAUTH key (RFC 4467 7), made first with `create`.
    fn urlauth_key(&mut self, _folder: &str, _create: bool) -> StoreResult<Option<[u8; 32]>> {
        Ok(None)
    }
    /// Forgets the URLAUTH key of one folder, or of every folder.
    fn reset_urlauth_keys(&mut self, _folder: Option<&str>) -> StoreResult<()> {
        Ok(())
    }
}

/// METADATA entry names (lower case) and values.
pub type Metadata = std::collections::BTreeMap<String, Vec<u8>>;

/// A folder open in a session.
pub trait Folder: Send {
    /// Whether anything may have changed since the last [`Folder::state`]
    /// (cheap: a generation number, directory and index times).
    fn changed(&mut self) -> bool;
    /// The folder now, shared with the other sessions that have it
    /// selected. `claim_recent`: move new mail to cur/ (a read-write SELECT
    /// claims \Recent).
    fn state(&mut self, claim_recent: bool) -> StoreResult<State>;
    /// Changes the flags of messages (replace, add or remove `change`)
    /// against the flags they have in the store now, not the session's
    /// copy, so concurrent sessions each change only the flags they name.
    /// With `unchanged_since`, a message with a higher MODSEQ is left alone.
    /// One answer per UID, in order.
    fn store_flags(
        &mut self,
        uids: &[u32],
        mode: crate::proto::imap::StoreMode,
        change: &MsgFlags,
        unchanged_since: Option<u64>,
    ) -> StoreResult<Vec<Stored>>;
    /// The message, with its stored (LF) line ends.
    fn read(&mut self, uid: u32) -> StoreResult<Vec<u8>>;
    /// The message's file, open for reading (stored line ends), for
    /// answers that read only its header or stream it in pieces.
    fn open_message(&mut self, uid: u32) -> StoreResult<std::fs::File>;
    /// The message's header, through the blank line that ends it, at most
    /// [`MAX_HEADER`](super::sortkey::MAX_HEADER) bytes (SORT and THREAD
    /// keys); stored line ends.
    fn header(&mut self, uid: u32) -> StoreResult<Vec<u8>> {
        let mut m = self.read(uid)?;
        let end = m
            .windows(2)
            .position(|w| w == b"\n\n")
            .map(|p| p + 2)
            .unwrap_or(m.len())
            .min(super::sortkey::MAX_HEADER);
        m.truncate(end);
        Ok(m)
    }
    /// Where the folder's SORT key cache file is, when it is a file: its
    /// parsed keys are then shared by every session of the process
    /// ([`super::sortkey`]).
    fn sort_cache_path(&self) -> Option<std::path::PathBuf> {
        None
    }
    /// The folder's SORT key cache file ([`super::sortkey`]), if any.
    fn sort_cache_load(&mut self) -> Option<Vec<u8>> {
        None
    }
    /// Adds lines to the SORT key cache file (best effort: it is a cache).
    fn sort_cache_append(&mut self, _lines: &[u8]) {}
    /// Replaces the SORT key cache file whole (best effort).
    fn sort_cache_replace(&mut self, _data: &[u8]) {}
    /// Copies messages to another folder; returns its UIDVALIDITY and the
    /// (source UID, new UID) pairs.
    fn copy(&mut self, uids: &[u32], dest: &str) -> StoreResult<(u32, Vec<(u32, u32)>)>;
    /// Moves messages (copy then expunge, atomic per message where the
    /// store can); same answer as copy.
    fn move_to(&mut self, uids: &[u32], dest: &str) -> StoreResult<(u32, Vec<(u32, u32)>)>;
    /// Frees what can be read again later (while the session idles).
    fn release(&mut self);
    /// Removes messages for good.
    fn expunge(&mut self, uids: &[u32]) -> StoreResult<()>;
    /// UIDs expunged after `modseq`, as of the last look at the folder (RFC 7162
    /// QRESYNC), or None when the store no longer knows that far back.
    fn expunged_since(&mut self, _modseq: u64) -> StoreResult<Option<Vec<u32>>> {
        Ok(None)
    }
}
