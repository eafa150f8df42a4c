//! The maildrop as POP3 sees it, and the seam between the server and the
//! Maildir library: open (create the Maildir if missing, take the POP3 lock,
//! list INBOX with sizes and stable unique ids), read one message, remove the
//! messages marked deleted.
//!
//! The calls block (they read directories and files); the server makes them
//! outside its event loop.

use std::fs::File;
use std::io;

use crate::ipc::authd::UserInfo;

use super::session::{MessageInfo, OpenFailure};

/// Where maildrops come from.
pub trait Store: Send + Sync + 'static {
    /// Locks and lists the user's maildrop. The lock is held until the
    /// returned value is dropped (or the process dies).
    fn open(&self, user: &UserInfo) -> Result<Box<dyn Maildrop>, OpenFailure>;
}

/// One locked maildrop, listed once at login (RFC 1939: message numbers do
/// not change during a session).
pub trait Maildrop: Send {
    /// The messages in maildrop order; message number N is index N-1.
    fn messages(&self) -> Vec<MessageInfo>;
    /// Opens message `index` for reading. `NotFound` when another program
    /// (an IMAP session, say) removed it since the listing.
    fn open_message(&self, index: usize) -> io::Result<File>;
    /// Removes the messages at `indexes`; how many were removed. A message
    /// already gone counts as removed.
    fn expunge(&mut self, indexes: &[usize]) -> Expunged;
}

/// The result of an expunge at QUIT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expunged {
    pub removed: usize,
    pub failed: usize,
}
