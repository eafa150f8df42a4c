//! The fetch agent's records and its control protocol.
//!
//! A [`FetchAccount`] is one remote mailbox a local user collects mail
//! from. kmpctl (and later kmp-admind) writes it into the user database
//! (`userdb::fetch`); kmp-fetch reads it through kmp-authd
//! (`ipc::authd::Request::FetchAccounts`). Its password is sealed to
//! kmp-fetch's key (`fetch::seal`): every other reader sees only the
//! sealed text.
//!
//! kmp-fetch answers [`Request`]s on `RUN/fetch.sock` (run an account now,
//! test one, the status of a user's accounts), one frame each way, in the
//! framing of `ipc::frame`.

use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::frame::{self, FrameError};

/// The protocol version this library speaks.
pub const VERSION: u32 = 1;

/// The longest account name.
pub const MAX_NAME: usize = 64;

/// The remote protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Pop3,
    Imap,
}

impl Protocol {
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Pop3 => "pop3",
            Protocol::Imap => "imap",
        }
    }

    /// The usual port for this protocol and protection.
    pub fn default_port(self, tls: Tls) -> u16 {
        match (self, tls) {
            (Protocol::Pop3, Tls::Implicit) => 995,
            (Protocol::Pop3, _) => 110,
            (Protocol::Imap, Tls::Implicit) => 993,
            (Protocol::Imap, _) => 143,
        }
    }
}

/// How the connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Tls {
    /// TLS from the first byte (995, 993).
    Implicit,
    /// STLS / STARTTLS before the login; a server without it is refused.
    Starttls,
    /// No TLS at all: only when the account says so.
    None,
}

impl Tls {
    pub fn name(self) -> &'static str {
        match self {
            Tls::Implicit => "implicit",
            Tls::Starttls => "starttls",
            Tls::None => "none",
        }
    }
}

/// What happens to a message on the server once it is safely queued here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum Keep {
    /// Left on the server (and never fetched again).
    Keep,
    /// Deleted from the server once fetched.
    Delete,
    /// Left on the server for this many days after it was fetched, then deleted.
    DeleteAfter { days: u32 },
}

impl Keep {
    /// `keep`, `delete` or `delete-after-N`.
    pub fn name(self) -> String {
        match self {
            Keep::Keep => "keep".into(),
            Keep::Delete => "delete".into(),
            Keep::DeleteAfter { days } => format!("delete-after-{days}"),
        }
    }

    /// Reads [`Keep::name`]'s forms (also `delete-after-N-days`).
    pub fn parse(s: &str) -> Option<Keep> {
        match s {
            "keep" => Some(Keep::Keep),
            "delete" => Some(Keep::Delete),
            _ => {
                let n = s.strip_prefix("delete-after-")?;
                let n = n.strip_suffix("-days").unwrap_or(n);
                let days: u32 = n.parse().ok().filter(|d| (1..=3650).contains(d))?;
                Some(Keep::DeleteAfter { days })
            }
        }
    }
}

/// One remote account of a local user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FetchAccount {
    /// The local user, `local@domain` as the user database spells it.
    pub owner: String,
    /// The account's name, unique per owner; the default target folder.
    pub name: String,
    pub protocol: Protocol,
    pub host: String,
    pub port: u16,
    pub tls: Tls,
    /// Check the server's certificate (on unless the account says otherwise).
    #[serde(default = "yes")]
    pub verify: bool,
    /// The login name on the remote server.
    pub username: String,
    /// The remote password, sealed to kmp-fetch's key (`fetch::seal`).
    pub password: String,
    /// IMAP folders to collect from; empty means INBOX. Unused for POP3.
    #[serde(default)]
    pub folders: Vec<String>,
    /// The local folder the mail goes into; empty means one named after the account.
    #[serde(default)]
    pub target: String,
    pub keep: Keep,
    /// Seconds between polls; 0 means `fetch.interval`.
    #[serde(default)]
    pub interval: u64,
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Seconds since the epoch.
    #[serde(default)]
    pub created: u64,
}

fn yes() -> bool {
    true
}

impl FetchAccount {
    /// The local folder mail of this account is filed into.
    pub fn target_folder(&self) -> &str {
        if self.target.is_empty() {
            &self.name
        } else {
            &self.target
        }
    }

    /// The remote folders to collect from.
    pub fn remote_folders(&self) -> Vec<String> {
        if self.folders.is_empty() {
            vec!["INBOX".to_string()]
        } else {
            self.folders.clone()
        }
    }

    /// What is wrong with the record, if anything (a writer checks before storing).
    pub fn check(&self) -> Result<(), String> {
        check_name(&self.name)?;
        if self.host.is_empty()
            || self.host.len() > 253
            || !self
                .host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || ".-:_[]".contains(c))
        {
            return Err(format!("bad host name {:?}", self.host));
        }
        if self.port == 0 {
            return Err("the port must be 1 to 65535".into());
        }
        if self.username.is_empty() || self.username.len() > 256 {
            return Err("the user name must be 1 to 256 bytes".into());
        }
        if self.username.chars().any(|c| c.is_control()) {
            return Err("the user name holds a control character".into());
        }
        if self.password.is_empty() {
            return Err("no password".into());
        }
        for f in self.folders.iter().chain(std::iter::once(&self.target)) {
            if f.len() > 512 || f.chars().any(|c| c.is_control()) {
                return Err(format!("bad folder name {f:?}"));
            }
        }
        if self.folders.len() > 100 {
            return Err("more than 100 folders".into());
        }
        if self.interval != 0 && !(10..=7 * 86400).contains(&self.interval) && self.interval != 1 {
            return Err("the interval must be 10 seconds to 7 days".into());
        }
        Ok(())
    }
}

/// Account names: 1 to 64 characters, any script (it names a folder), no
/// control characters, no `/`, `.` or `%`/`*` (folder syntax), not
/// starting with a space.
pub fn check_name(name: &str) -> Result<(), String> {
    let n = name.chars().count();
    if n == 0 || n > MAX_NAME {
        return Err(format!(
            "an account name has 1 to {MAX_NAME} characters: {name:?}"
        ));
    }
    if name.starts_with(' ') || name.ends_with(' ') {
        return Err(format!(
            "an account name neither starts nor ends with a space: {name:?}"
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| c.is_control() || "/.%*\\\"".contains(*c))
    {
        return Err(format!("an account name may not hold {c:?}: {name:?}"));
    }
    Ok(())
}

/// How the last run of an account went, kept by kmp-fetch.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountStatus {
    pub owner: String,
    pub name: String,
    /// Seconds since the epoch of the last run's end; 0 never ran.
    #[serde(default)]
    pub last_run: u64,
    /// Seconds since the epoch of the last run without error.
    #[serde(default)]
    pub last_ok: u64,
    /// Why the last run failed; empty when it did not.
    #[serde(default)]
    pub error: String,
    /// Runs failed in a row (the back-off grows with it).
    #[serde(default)]
    pub failures: u32,
    /// Seconds since the epoch of the next attempt.
    #[serde(default)]
    pub next_run: u64,
    /// Messages fetched by the last run.
    #[serde(default)]
    pub fetched: u64,
    /// Messages deleted on the server by the last run.
    #[serde(default)]
    pub deleted: u64,
    /// Messages left on the server for being over the size limit.
    #[serde(default)]
    pub too_big: u64,
    /// Messages fetched in all.
    #[serde(default)]
    pub total: u64,
}

/// A request on kmp-fetch's control socket.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// Fetch this account now (from the user database's current record)
    /// and answer once the run has ended.
    Run { owner: String, name: String },
    /// Connect and log in with this record (not stored yet, perhaps), list
    /// the messages, fetch nothing.
    Test { account: FetchAccount },
    /// The status of a user's accounts, or of everyone's (`owner` empty).
    Status { owner: String },
    /// Read the accounts again now (after a change).
    Reload,
}

/// kmp-fetch's answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Reply {
    /// A run ended: its status.
    Ran {
        status: AccountStatus,
    },
    /// A test succeeded: what the server holds.
    Tested {
        messages: u64,
        detail: String,
    },
    Status {
        accounts: Vec<AccountStatus>,
    },
    Done,
    /// The request could not be served.
    Error {
        temporary: bool,
        message: String,
    },
}

/// A request with its version.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Envelope {
    pub v: u32,
    #[serde(flatten)]
    pub body: Request,
}

/// Why a request got no useful answer.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("kmp-fetch is not running ({0}): {1}")]
    Unavailable(PathBuf, std::io::Error),
    #[error("kmp-fetch: {0}")]
    Frame(#[from] FrameError),
    #[error("kmp-fetch: {message}")]
    Refused { temporary: bool, message: String },
}

/// One request on a fresh connection to `socket`, waiting at most `timeout`.
pub fn call(socket: &Path, req: Request, timeout: Duration) -> Result<Reply, ClientError> {
    let mut s =
        UnixStream::connect(socket).map_err(|e| ClientError::Unavailable(socket.into(), e))?;
    let _ = s.set_read_timeout(Some(timeout));
    frame::write(
        &mut s,
        &Envelope {
            v: VERSION,
            body: req,
        },
    )?;
    match frame::read(&mut s)? {
        Reply::Error { temporary, message } => Err(ClientError::Refused { temporary, message }),
        r => Ok(r),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keep_modes_read_back() {
        for k in [Keep::Keep, Keep::Delete, Keep::DeleteAfter { days: 7 }] {
            assert_eq!(Keep::parse(&k.name()), Some(k));
        }
        assert_eq!(
            Keep::parse("delete-after-3-days"),
            Some(Keep::DeleteAfter { days: 3 })
        );
        for bad in ["", "delete-after-0", "delete-after-x", "remove"] {
            assert_eq!(Keep::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn account_names() {
        for good in ["gmail", "新浪邮箱", "Work mail", "a-b_c"] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        for bad in ["", " x", "a/b", "a.b", "x\n", "*", &"x".repeat(65)] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }
}
