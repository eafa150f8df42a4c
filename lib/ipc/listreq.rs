//! Requests about a mailing list's state (members, held posts) from
//! kmp-admind to kmp-local over `RUN/lists.sock`: one request frame, one
//! reply frame, per connection or in a row.
//!
//! Why kmp-local: the state lives under the mail directory, owned by the
//! delivery user (`vmail`), and kmp-admind (`kmpadm`) must not own it.
//! kmp-local already holds the list's member store open while it delivers,
//! signs and checks the list's cookies, and sends the list's mails through
//! kmp-inject; so it performs these requests with the same functions as
//! mail requests (a moderation here is the moderation by reply, with a
//! cookie kmp-local mints for itself). The socket is mode 0660 in the group
//! of kmp-admind's user, and kmp-local also checks the peer's uid.
//!
//! kmp-admind has authorised the request and read the list's record from
//! the user database; the record travels with the request, so kmp-local
//! needs no second lookup. The caller is named (`by`) for the log.

use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::frame::{self, FrameError};
use crate::lists::held::Held;
use crate::lists::store::Member;
use crate::lists::List;

/// The protocol version this library speaks.
pub const VERSION: u32 = 1;

/// The most members one `Members` request returns.
pub const MAX_PAGE: u64 = 1000;

/// The most bytes of a held post's text a preview carries.
pub const MAX_PREVIEW: usize = 64 * 1024;

/// A request with its version.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Versioned {
    pub v: u32,
    /// The list's record, as kmp-admind read it.
    pub list: Box<List>,
    /// Who asks (for the log).
    pub by: String,
    #[serde(flatten)]
    pub req: Request,
}

/// What is asked about the list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// Members in address order, `limit` (at most [`MAX_PAGE`]) from `offset`.
    Members { offset: u64, limit: u64 },
    /// Adds members (already checked by the caller), without confirmation.
    Subscribe {
        addresses: Vec<String>,
        digest: bool,
    },
    /// Removes a member.
    Unsubscribe { address: String },
    /// Changes a member's options.
    SetMember {
        address: String,
        digest: Option<bool>,
        nomail: Option<bool>,
    },
    /// Every held post, oldest first.
    Held,
    /// One held post with a preview of its text.
    HeldShow { id: String },
    /// Sends a held post on to the list.
    Approve { id: String },
    /// Throws a held post away; the sender gets the reason if one is given.
    Reject { id: String, reason: String },
    /// Removes the list's state directory (the list is being deleted).
    Remove,
}

/// A held post for reading: its description, then the header fields and
/// the text decoded to UTF-8.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Preview {
    pub held: Held,
    pub from: String,
    pub subject: String,
    pub date: String,
    /// The first text part, decoded, at most [`MAX_PREVIEW`] bytes.
    pub text: String,
    /// The names of attached files.
    pub attachments: Vec<String>,
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

/// kmp-local's answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Reply {
    Members {
        total: u64,
        members: Vec<Member>,
    },
    Subscribed {
        added: Vec<String>,
        already: Vec<String>,
    },
    Member {
        member: Member,
    },
    Held {
        posts: Vec<Held>,
    },
    Preview {
        post: Box<Preview>,
    },
    /// Done; what was done, for the caller.
    Done {
        text: String,
    },
    Error {
        kind: ErrorKind,
        message: String,
    },
}

/// Why a request got no answer.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("kmp-local is not running ({0}): {1}")]
    Unavailable(PathBuf, std::io::Error),
    #[error("kmp-local: {0}")]
    Frame(#[from] FrameError),
}

/// Sends one request about `list` to kmp-local at `socket`.
pub fn call(socket: &Path, list: &List, by: &str, req: Request) -> Result<Reply, ClientError> {
    let mut s =
        UnixStream::connect(socket).map_err(|e| ClientError::Unavailable(socket.into(), e))?;
    // An approval runs kmp-inject; anything else is one LMDB transaction.
    let _ = s.set_read_timeout(Some(Duration::from_secs(60)));
    let _ = s.set_write_timeout(Some(Duration::from_secs(10)));
    frame::write(
        &mut s,
        &Versioned {
            v: VERSION,
            list: Box::new(list.clone()),
            by: by.to_string(),
            req,
        },
    )?;
    Ok(frame::read(&mut s)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_travel_as_tagged_json() {
        let l = List::new(&crate::userdb::Address::parse("dev@a.test").unwrap(), 1);
        let v = Versioned {
            v: VERSION,
            list: Box::new(l),
            by: "o@a.test".into(),
            req: Request::Reject {
                id: "Q1.2".into(),
                reason: "off topic".into(),
            },
        };
        let text = serde_json::to_string(&v).unwrap();
        assert!(text.contains(r#""op":"reject""#), "{text}");
        let back: Versioned = serde_json::from_str(&text).unwrap();
        assert_eq!(back.req, v.req);
        assert_eq!(back.list.address, "dev@a.test");
    }
}
