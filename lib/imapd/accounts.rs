//! [`Accounts`] over kmp-authd: the store of the user a URLAUTH URL
//! names, found with a recipient lookup (`Request::Lookup`). Only a user
//! whose canonical address is the URL's user, and who is active, counts:
//! plus-addresses, aliases and catch-alls name no mailbox of a URL. And a
//! domain's users (`Request::DomainUsers`) for its address book.

use std::path::PathBuf;
use std::time::Duration;

use super::maildir_store::MaildirStore;
use super::store::{MailStore, StoreError, StoreResult};
use super::url::Accounts;
use crate::ipc::authd::{self, Entry, Reply, Request};

/// How long a lookup may take.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(10);

/// Users' stores through kmp-authd's socket.
pub struct AuthdAccounts {
    pub socket: PathBuf,
}

impl AuthdAccounts {
    /// Asks kmp-authd, waiting at most [`LOOKUP_TIMEOUT`].
    fn call(&self, req: Request) -> StoreResult<Reply> {
        // Called from a command running under block_in_place (or a blocking
        // task): waiting on the runtime here is allowed.
        let handle = tokio::runtime::Handle::try_current()
            .map_err(|_| StoreError::Temporary("no runtime for the user lookup".into()))?;
        handle
            .block_on(async {
                tokio::time::timeout(LOOKUP_TIMEOUT, authd::call(&self.socket, req)).await
            })
            .map_err(|_| StoreError::Temporary("user lookup timed out".into()))?
            .map_err(|e| StoreError::Temporary(format!("user lookup: {e}")))
    }
}

impl Accounts for AuthdAccounts {
    fn domain_users(&self, domain: &str) -> StoreResult<Vec<String>> {
        let req = Request::DomainUsers {
            domain: domain.to_string(),
        };
        match self.call(req)? {
            Reply::Users { addresses } => Ok(addresses),
            _ => Err(StoreError::Temporary(
                "unexpected answer to a user list".into(),
            )),
        }
    }

    fn open(&self, address: &str) -> StoreResult<Option<Box<dyn MailStore>>> {
        let req = Request::Lookup {
            address: address.to_string(),
        };
        let reply = self.call(req)?;
        match reply {
            Reply::Found {
                entry: Entry::User { user },
                ..
            } if user.active && user.address.eq_ignore_ascii_case(address) => {
                let st =
                    MaildirStore::open(&user.mail_path, user.quota_bytes, user.quota_messages)?;
                Ok(Some(Box::new(st)))
            }
            _ => Ok(None),
        }
    }
}
