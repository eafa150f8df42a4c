//! The mail queue: the drop directory, the message files and the queue
//! index, and the one code path that writes each of them.
//!
//! # States
//!
//! As qmail's INTERNALS does, this table says which files exist for a
//! message in each state, and what kmp-send does with it when it (re)starts.
//! `Q` is the queue id; every path is under `paths.queue`. The index is the
//! LMDB environment `index/` (one record per message: envelope, per-recipient
//! state, next attempt time, hold flag). A crash may happen between any two
//! rows; each row is a state a restart can find and finish.
//!
//! | # | state                    | files                                   | index record          | on restart                                   |
//! |---|--------------------------|-----------------------------------------|-----------------------|----------------------------------------------|
//! | 1 | being written            | `incoming/tmp/Q` (message, then the envelope trailer) | none    | nothing; removed when older than a day       |
//! | 2 | committed (caller told yes) | `incoming/new/Q` (message and envelope trailer, synced together), renamed from `incoming/tmp/Q` (a second name there only with the link fallback) | none | intake (row 3) |
//! | 3 | indexed                  | `incoming/new/Q`, its trailer maybe cut | all recipients pending| cut the trailer, link `new/Q` into `mess/Q`, sync `mess/`, unlink `new/Q` (when both names are there, only the unlink) |
//! | 4 | queued                   | `mess/Q` (the message alone), maybe a stale `incoming/tmp/Q` | some recipient pending | a trailer a crash brought back is cut again; stale files removed; scheduled at its next attempt time (now after a restart) |
//! | 5 | delivering               | as 4; a job is at kmp-local/kmp-remote  | as 4                  | as 4: the job is sent again with the same delivery ids, so kmp-local does not deliver twice |
//! | 6 | report queued            | as 5, plus the report in row 2 of its own | recipient still pending (the failure is committed after the report) | the recipient is tried again and fails again: a second report rather than none |
//! | 7 | done                     | `mess/Q`                                | every recipient final | `mess/Q` unlinked, then the record deleted; logs `Q: removed` |
//! | 8 | removed                  | none                                    | record, all final (deleted in the next turn's transaction) | record deleted |
//!
//! The order of writes makes every row reachable only from the row above:
//! the envelope is in the message file, synced with it, before the file is
//! renamed into `new/` (so row 2 always has one; versions before the trailer
//! wrote it to `incoming/env/Q`, which is still read when present); the
//! record is committed before the trailer is cut and before the message
//! leaves `new/` (so a message is never in `mess/` without a record, and the
//! envelope is never nowhere); a report (bounce,
//! delay warning) is committed into `incoming/` before the recipient's final
//! state and its `notified` mark are committed to the index; the
//! message file is unlinked before its record is deleted. A record whose
//! message file is nowhere (neither `mess/` nor `incoming/new/`) is a broken
//! invariant that kmp-send logs loudly and drops; a file in `mess/` without a
//! record is moved to `corrupt/` for the administrator.
//!
//! Cutting the trailer is not synced: after a crash the file may have it
//! again, and kmp-send cuts it again on start, before any delivery (the
//! record keeps the message's size; a file that is neither that size nor
//! that size plus a trailer is held, never delivered). kmp-local reads only
//! the job's `size` bytes in any case.
//!
//! Recipients added by kmp-local (alias targets, forwards) are appended to
//! the record with the result that expanded them, in the same transaction.

pub mod envelope;
pub mod id;
pub mod incoming;
pub mod record;
pub mod store;

pub use envelope::{Envelope, Notify, Recipient, Ret};
pub use id::QueueId;
pub use incoming::{kick, Incoming};

use std::io;
use std::path::Path;

/// Why a queue operation failed.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// A file operation failed (disk full, permissions, I/O error).
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: String,
        source: io::Error,
    },
    /// The envelope cannot be queued (no recipients).
    #[error("bad envelope: {0}")]
    BadEnvelope(String),
    /// A queue file or record is unreadable.
    #[error("corrupt queue file: {0}")]
    Corrupt(String),
    /// The queue index failed.
    #[error("queue index: {0}")]
    Index(String),
}

impl QueueError {
    /// An I/O error on `path` while doing `op`.
    pub fn io(op: &'static str, path: &Path, source: io::Error) -> QueueError {
        QueueError::Io {
            op,
            path: path.display().to_string(),
            source,
        }
    }

    /// Whether trying again later may succeed: a caller answers 4xx or exits
    /// 75 then, and 5xx or 65 otherwise.
    pub fn is_temporary(&self) -> bool {
        match self {
            QueueError::Io { .. } | QueueError::Index(_) => true,
            QueueError::BadEnvelope(_) | QueueError::Corrupt(_) => false,
        }
    }
}
