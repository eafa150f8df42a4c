//! The kmp-authd protocol: requests from the daemons and kmpctl, and replies.
//!
//! kmp-authd is the only reader of password hashes. Every other program asks
//! it over the Unix socket `RUN/authd.sock`: one request frame, one reply
//! frame, as many times as the client likes on one connection.

use std::net::IpAddr;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::frame::{self, FrameError};
use crate::proto::sasl::Secret;

/// The protocol version this library speaks.
pub const VERSION: u32 = 1;

/// The protocol a request comes from; bans and logs name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Service {
    Smtp,
    Submission,
    Pop3,
    Imap,
    Webmail,
    Admin,
    Sieve,
}

/// A request to kmp-authd, with its version.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Envelope<T> {
    pub v: u32,
    #[serde(flatten)]
    pub body: T,
}

/// What a client asks.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// Verify a login. `user` is as typed (with or without @domain); the
    /// password is a [`Secret`], so printing the request shows none of it.
    Login {
        user: String,
        password: Secret,
        service: Service,
        ip: Option<IpAddr>,
    },
    /// Look up one recipient address: a user, an alias, or nothing.
    Lookup { address: String },
    /// Report abuse that is not a failed password (garbage, floods): counts
    /// toward the same ban as failed logins.
    Failure {
        ip: IpAddr,
        service: Service,
        reason: String,
    },
    /// Whether an address is banned now.
    BanCheck { ip: IpAddr },
    /// Every ban in force.
    BanList,
    /// Ban an address or network (CIDR) for `seconds`.
    BanAdd {
        net: String,
        seconds: u64,
        reason: String,
    },
    /// Lift a ban.
    BanDel { net: String },
    /// The addresses of a domain's active users, for the domain's address
    /// book (kmp-imapd serves it to the domain's own users only).
    DomainUsers { domain: String },
    /// The fetch accounts of active users (kmp-fetch): one owner's, or
    /// everyone's when `owner` is None. Passwords stay sealed.
    FetchAccounts { owner: Option<String> },
    /// Greylisting (kmp-smtpd, `scan.greylist`): one attempt of a triplet.
    Greylist {
        net: String,
        sender: String,
        recipient: String,
        rules: crate::antispam::scan::greylist::Rules,
    },
    /// Is anyone there.
    Ping,
}

/// A user as the daemons see it: never the password hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserInfo {
    /// The canonical address, `local@domain`, lower-case domain in A-label form.
    pub address: String,
    /// The user's Maildir.
    pub mail_path: PathBuf,
    /// Quota in bytes, 0 for none.
    #[serde(default)]
    pub quota_bytes: u64,
    /// Quota in messages, 0 for none.
    #[serde(default)]
    pub quota_messages: u64,
    /// Whether mail is accepted and logins allowed.
    pub active: bool,
    /// Addresses mail is forwarded to.
    #[serde(default)]
    pub forwards: Vec<String>,
    /// With forwards: keep a copy in the mailbox too.
    #[serde(default)]
    pub keep_copy: bool,
    /// POP3 shows subfolders too, not only INBOX.
    #[serde(default)]
    pub pop3_subfolders: bool,
    /// POP3 LOGIN-DELAY in seconds, 0 for none.
    #[serde(default)]
    pub login_delay: u64,
    /// Spam settings: the user's own over the domain's.
    #[serde(default, skip_serializing_if = "SpamPrefs::is_default")]
    pub spam: SpamPrefs,
    /// The largest message the user's domain receives (its limits), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_message_bytes: Option<u64>,
}

/// A user's (or a domain's) spam settings (lib/antispam/scan). Every field
/// left out means "as the level above": the domain, then `[scan]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpamPrefs {
    /// Senders (`a@example.com`, `@example.com`) whose mail skips the spam
    /// verdict and is never filed into Junk.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow_senders: Vec<String>,
    /// Senders refused at RCPT (550 5.7.1).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub block_senders: Vec<String>,
    /// The spam score from which mail is spam (Junk).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag_score: Option<u32>,
    /// The spam score from which mail is refused (0: never).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reject_score: Option<u32>,
    /// Whether the connection checks (DNSBL, reverse DNS, HELO) apply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dnsbl: Option<bool>,
    /// Spam is not filed into Junk (the headers are still written).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub no_junk: bool,
}

impl SpamPrefs {
    pub fn is_default(&self) -> bool {
        *self == SpamPrefs::default()
    }

    /// These settings over `domain`'s: the user's wins where it is set.
    pub fn over(&self, domain: &SpamPrefs) -> SpamPrefs {
        SpamPrefs {
            allow_senders: self.allow_senders.clone(),
            block_senders: self.block_senders.clone(),
            tag_score: self.tag_score.or(domain.tag_score),
            reject_score: self.reject_score.or(domain.reject_score),
            dnsbl: self.dnsbl.or(domain.dnsbl),
            no_junk: self.no_junk,
        }
    }
}

/// What an address is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Entry {
    /// A mailbox. Plus-addressing (`user+tag`) already resolved to the user.
    User { user: UserInfo },
    /// An alias (or a domain's catch-all) with its targets, one level deep.
    Alias {
        address: String,
        targets: Vec<String>,
    },
    /// One of a mailing list's addresses: the list's record, and which of
    /// its addresses (`role`: post, owner, bounce-ARG, ...) was asked for.
    List {
        list: crate::lists::List,
        #[serde(flatten)]
        role: crate::lists::Role,
    },
    /// Nothing by that name.
    NotFound,
}

/// Why a login failed. Deliberately no difference between "no such user" and
/// "wrong password".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LoginFailure {
    BadCredentials,
    Disabled,
    Banned,
}

impl LoginFailure {
    /// Its name in log lines (`reason=bad_credentials`), as on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            LoginFailure::BadCredentials => "bad_credentials",
            LoginFailure::Disabled => "disabled",
            LoginFailure::Banned => "banned",
        }
    }
}

/// A ban in force.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ban {
    pub net: String,
    /// Seconds since the epoch when it ends.
    pub until: u64,
    pub reason: String,
}

/// kmp-authd's answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Reply {
    LoginOk {
        user: UserInfo,
    },
    LoginFailed {
        reason: LoginFailure,
    },
    /// Answer to Lookup. `local_domain` says whether the domain is ours at all.
    Found {
        entry: Entry,
        local_domain: bool,
    },
    Ban {
        banned: bool,
        until: Option<u64>,
    },
    Bans {
        bans: Vec<Ban>,
    },
    /// Answer to DomainUsers: canonical addresses, sorted; empty for a
    /// domain that is not ours.
    Users {
        addresses: Vec<String>,
    },
    /// Answer to FetchAccounts.
    FetchAccounts {
        accounts: Vec<super::fetch::FetchAccount>,
    },
    Done,
    Pong,
    /// Answer to Greylist.
    Greylist {
        answer: crate::antispam::scan::greylist::Answer,
    },
    /// The request could not be served. `temporary`: try again later (the
    /// database is busy or broken); otherwise the request itself was wrong.
    Error {
        temporary: bool,
        message: String,
    },
}

/// Why a request got no useful answer.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("kmp-authd is not running ({0}): {1}")]
    Unavailable(PathBuf, std::io::Error),
    #[error("kmp-authd: {0}")]
    Frame(#[from] FrameError),
    #[error("kmp-authd: {message}")]
    Refused { temporary: bool, message: String },
}

impl ClientError {
    /// Whether the caller should answer "try again later" (4xx, exit 75).
    pub fn is_temporary(&self) -> bool {
        match self {
            ClientError::Unavailable(..) => true,
            ClientError::Frame(e) => e.is_temporary(),
            ClientError::Refused { temporary, .. } => *temporary,
        }
    }
}

fn wrap(body: Request) -> Envelope<Request> {
    Envelope { v: VERSION, body }
}

fn check(reply: Reply) -> Result<Reply, ClientError> {
    match reply {
        Reply::Error { temporary, message } => Err(ClientError::Refused { temporary, message }),
        r => Ok(r),
    }
}

/// A blocking connection to kmp-authd, for kmpctl and benchmarks.
pub struct Client {
    stream: UnixStream,
}

impl Client {
    /// Connects to the socket at `path`.
    pub fn connect(path: &Path) -> Result<Client, ClientError> {
        let stream =
            UnixStream::connect(path).map_err(|e| ClientError::Unavailable(path.into(), e))?;
        let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
        Ok(Client { stream })
    }

    /// Sends one request and waits for its reply. An `Error` reply is an `Err`.
    pub fn call(&mut self, req: Request) -> Result<Reply, ClientError> {
        frame::write(&mut self.stream, &wrap(req))?;
        check(frame::read(&mut self.stream)?)
    }
}

/// An async connection to kmp-authd, for the daemons.
pub struct AsyncClient {
    /// Buffered so that a reply (length and body) takes one read.
    stream: tokio::io::BufReader<tokio::net::UnixStream>,
    /// Taken from [`IDLE`] rather than opened for this request.
    reused: bool,
}

/// Connections to kmp-authd a process keeps between requests, with the
/// socket each goes to. A daemon asks kmp-authd once or twice per client
/// connection (the login or the recipient lookup; the ban check when the
/// published table cannot be read):
/// keeping a few connections open spares both sides a connect, an accept
/// and a task per request. They are kept outside any tokio runtime, so a
/// process with several runtimes may share them.
static IDLE: std::sync::Mutex<Vec<(PathBuf, UnixStream)>> = std::sync::Mutex::new(Vec::new());

/// Most connections kept idle per process.
pub const MAX_IDLE: usize = 16;

impl AsyncClient {
    /// Connects to the socket at `path`.
    pub async fn connect(path: &Path) -> Result<AsyncClient, ClientError> {
        let stream = tokio::net::UnixStream::connect(path)
            .await
            .map_err(|e| ClientError::Unavailable(path.into(), e))?;
        Ok(AsyncClient {
            stream: tokio::io::BufReader::new(stream),
            reused: false,
        })
    }

    /// A kept connection to `path` that kmp-authd has not closed, else a
    /// new one.
    pub async fn checkout(path: &Path) -> Result<AsyncClient, ClientError> {
        while let Some(s) = take_idle(path) {
            // Nothing may be waiting on an idle connection: a read that
            // does not block means kmp-authd closed it (or broke the
            // protocol), and it goes.
            let mut probe = [0u8; 1];
            let flags =
                nix::sys::socket::MsgFlags::MSG_PEEK | nix::sys::socket::MsgFlags::MSG_DONTWAIT;
            match nix::sys::socket::recv(std::os::fd::AsRawFd::as_raw_fd(&s), &mut probe, flags) {
                Err(nix::errno::Errno::EAGAIN) => {}
                _ => continue,
            }
            if let Ok(stream) = tokio::net::UnixStream::from_std(s) {
                return Ok(AsyncClient {
                    stream: tokio::io::BufReader::new(stream),
                    reused: true,
                });
            }
        }
        AsyncClient::connect(path).await
    }

    /// Keeps the connection for the next request to `path`, unless
    /// [`MAX_IDLE`] are kept already.
    pub fn keep(self, path: &Path) {
        // Bytes beyond the last reply: out of step, not kept.
        if !self.stream.buffer().is_empty() {
            return;
        }
        let Ok(s) = self.stream.into_inner().into_std() else {
            return;
        };
        let mut idle = IDLE.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < MAX_IDLE {
            idle.push((path.to_path_buf(), s));
        }
    }

    /// Sends one request and waits for its reply. An `Error` reply is an `Err`.
    pub async fn call(&mut self, req: Request) -> Result<Reply, ClientError> {
        frame::write_async(self.stream.get_mut(), &wrap(req)).await?;
        check(frame::read_async(&mut self.stream).await?)
    }

    /// Whether the connection was kept from an earlier request: if it
    /// fails, kmp-authd may have restarted since, and a new connection is
    /// worth one more try.
    pub fn reused(&self) -> bool {
        self.reused
    }
}

fn take_idle(path: &Path) -> Option<UnixStream> {
    let mut idle = IDLE.lock().unwrap_or_else(|p| p.into_inner());
    let i = idle.iter().rposition(|(p, _)| p == path)?;
    Some(idle.swap_remove(i).1)
}

/// Whether `ip` is banned by the table kmp-authd publishes beside its
/// socket `socket`; None when it cannot be read or is not owned by the
/// socket's owner (kmp-authd's user).
pub fn published_ban(socket: &Path, ip: IpAddr) -> Option<bool> {
    use std::os::unix::fs::MetadataExt;
    type Table = (PathBuf, u32, crate::authd::bans::Published);
    static TABLE: std::sync::Mutex<Option<Table>> = std::sync::Mutex::new(None);
    let mut t = TABLE.lock().unwrap_or_else(|p| p.into_inner());
    if t.as_ref().is_none_or(|(s, _, _)| s != socket) {
        let owner = std::fs::metadata(socket).ok()?.uid();
        *t = Some((socket.to_path_buf(), owner, Default::default()));
    }
    let (_, owner, table) = t.as_mut()?;
    let path = socket.with_file_name(crate::authd::bans::PUBLISHED);
    table.banned(&path, *owner, ip, crate::clock::Clock::System.now())
}

/// Whether `ip` is banned: from the table kmp-authd publishes beside its
/// socket (`authd::bans::Published`), or, when that cannot be read, by
/// asking kmp-authd (`BanCheck`). What a daemon asks when a client
/// connects.
pub async fn is_banned(socket: &Path, ip: IpAddr) -> Result<bool, ClientError> {
    if let Some(b) = published_ban(socket, ip) {
        return Ok(b);
    }
    match call(socket, Request::BanCheck { ip }).await? {
        Reply::Ban { banned, .. } => Ok(banned),
        other => Err(ClientError::Refused {
            temporary: true,
            message: format!("unexpected answer to a ban check: {other:?}"),
        }),
    }
}

/// One request, on a kept connection when there is one (a new one
/// otherwise, or when the kept one turns out closed): what a daemon does
/// per login or lookup. The connection is kept again after a reply.
pub async fn call(path: &Path, req: Request) -> Result<Reply, ClientError> {
    loop {
        let mut c = AsyncClient::checkout(path).await?;
        match c.call(req.clone()).await {
            Ok(r) => {
                c.keep(path);
                return Ok(r);
            }
            // A reply, even a refusal, leaves the connection in step.
            Err(e @ ClientError::Refused { .. }) => {
                c.keep(path);
                return Err(e);
            }
            Err(_) if c.reused() => continue,
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_login_request_never_prints_its_password() {
        let req = wrap(Request::Login {
            user: "bob@example.test".into(),
            password: Secret::from("hunter2-secret".to_string()),
            service: Service::Imap,
            ip: None,
        });
        let shown = format!("{req:?} {req:#?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("bob@example.test"), "{shown}");
        // On the wire it is still the password kmp-authd must check.
        let body = frame::encode(&req);
        let back: Envelope<Request> = frame::decode(&body[4..]).unwrap();
        match back.body {
            Request::Login { password, .. } => assert_eq!(password.as_bytes(), b"hunter2-secret"),
            other => panic!("{other:?}"),
        }
    }
}
