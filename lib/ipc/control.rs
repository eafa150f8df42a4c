//! The kmp-send control protocol: `kmpctl queue` and `mailq` ask kmp-send
//! over its socket `RUN/send.sock`, one request frame, one reply frame.
//!
//! Listing and flushing are open to every local user (as Postfix's `mailq`
//! and `postqueue -f` are); hold, release, delete and requeue need the
//! caller to be root or kmp-send's own user (checked with SO_PEERCRED).

use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::frame::{self, FrameError};
use crate::queue::record::Record;

/// The protocol version this library speaks.
pub const VERSION: u32 = 1;

/// A request with its version.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Versioned {
    pub v: u32,
    #[serde(flatten)]
    pub req: Request,
}

/// What kmpctl asks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// Every queued message.
    List,
    /// One message's whole record.
    Show { qid: String },
    /// Try every deferred message now.
    Flush,
    /// Stop trying a message until released.
    Hold { qid: String },
    /// Release a held message and try it now.
    Release { qid: String },
    /// Remove a message without notice to anyone.
    Delete { qid: String },
    /// Route the message's recipients afresh, release it and try it now.
    Requeue { qid: String },
}

impl Request {
    /// Whether the request changes the queue (and so needs privilege).
    pub fn is_privileged(&self) -> bool {
        !matches!(self, Request::List | Request::Show { .. } | Request::Flush)
    }
}

/// One recipient in a listing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListRcpt {
    pub address: String,
    /// `pending`, `sent`, `bounced`, ...
    pub status: String,
    /// The last result's text (the deferral reason for a pending one).
    pub text: String,
}

/// One message in a listing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListEntry {
    pub qid: String,
    pub size: u64,
    /// Seconds since the epoch.
    pub arrived: u64,
    /// Empty for the null sender.
    pub sender: String,
    pub held: bool,
    /// Being attempted right now.
    pub active: bool,
    /// Seconds since the epoch of the next attempt.
    pub next_attempt: u64,
    pub attempts: u32,
    /// Why the last attempt did not finish it.
    pub reason: String,
    /// The recipients not yet done.
    pub recipients: Vec<ListRcpt>,
}

/// Why a request failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    NotFound,
    Denied,
    BadRequest,
    Temporary,
}

/// kmp-send's answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Reply {
    List {
        entries: Vec<ListEntry>,
    },
    Show {
        qid: String,
        active: bool,
        record: Box<Record>,
    },
    /// Done; `count` messages were affected.
    Done {
        count: u64,
    },
    Error {
        kind: ErrorKind,
        message: String,
    },
}

/// Why a request got no answer.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("kmp-send is not running ({0}): {1}")]
    Unavailable(PathBuf, std::io::Error),
    #[error("permission denied: {0}")]
    Denied(PathBuf),
    #[error("kmp-send: {0}")]
    Frame(#[from] FrameError),
}

/// Sends one request to kmp-send at `socket` and returns its reply.
pub fn call(socket: &Path, req: Request) -> Result<Reply, ClientError> {
    let mut s = UnixStream::connect(socket).map_err(|e| {
        if e.kind() == std::io::ErrorKind::PermissionDenied {
            ClientError::Denied(socket.into())
        } else {
            ClientError::Unavailable(socket.into(), e)
        }
    })?;
    let _ = s.set_read_timeout(Some(Duration::from_secs(60)));
    frame::write(&mut s, &Versioned { v: VERSION, req })?;
    Ok(frame::read(&mut s)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_have_a_stable_wire_form() {
        let r = Versioned {
            v: VERSION,
            req: Request::Hold { qid: "ABC".into() },
        };
        let s = serde_json::to_string(&r).unwrap();
        assert_eq!(s, r#"{"v":1,"op":"hold","qid":"ABC"}"#);
        let back: Versioned = serde_json::from_str(&s).unwrap();
        assert_eq!(back.req, r.req);
        assert!(back.req.is_privileged());
        assert!(!Request::List.is_privileged());
    }
}
