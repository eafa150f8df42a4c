//! The user database: domains, users, aliases and mailing lists' records
//! (the lists' members and state live with each list, see `crate::lists`).
//!
//! Readers go through [`Directory`], the seam where LDAP can serve instead of
//! LMDB. [`lmdb::Lmdb`] is the LMDB implementation; it also carries the write
//! side that only `kmpctl` uses. [`dump`] is the text form of the whole
//! database (`kmpctl db dump/load`).
//!
//! What this module owns: the record types, address normalisation
//! ([`address`]), password hashing and verification ([`password`]). What it
//! does not: who may read hashes (kmp-authd and kmpctl only — a program that
//! does not import this module cannot), bans and caches (lib/authd).

pub mod address;
pub mod dump;
pub mod fetch;
pub mod limits;
pub mod lmdb;
pub mod password;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use address::{Address, AddressError};
pub use password::PasswordError;

use crate::ipc::authd::{SpamPrefs, UserInfo};

/// A domain we receive mail for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Domain {
    /// Lower-case A-label form.
    pub name: String,
    /// Seconds since the epoch.
    #[serde(default)]
    pub created: u64,
    /// The quota new users of the domain get, in bytes (0: none).
    #[serde(default)]
    pub quota_bytes: u64,
    /// The quota new users of the domain get, in messages (0: none).
    #[serde(default)]
    pub quota_messages: u64,
    /// Spam thresholds and DNSBL on/off for the domain's users
    /// (`kmpctl domain spam`); the users' own settings win.
    #[serde(default, skip_serializing_if = "SpamPrefs::is_default")]
    pub spam: SpamPrefs,
    /// The domain's postmasters: addresses who may administer it through
    /// kmp-admind (`kmpctl domain admin add`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub admins: Vec<String>,
    /// Its limits (`kmpctl domain set`); none by default.
    #[serde(default, skip_serializing_if = "limits::Limits::is_none")]
    pub limits: limits::Limits,
}

/// Whether a user may log in and receive mail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum State {
    #[default]
    Active,
    Disabled,
}

impl State {
    pub fn name(self) -> &'static str {
        match self {
            State::Active => "active",
            State::Disabled => "disabled",
        }
    }
}

/// A mailbox user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// `local@domain`: the local part as given, the domain normalised.
    pub address: String,
    /// A crypt(3)-style hash; empty when the user cannot log in.
    #[serde(default)]
    pub password: String,
    #[serde(default)]
    pub quota_bytes: u64,
    #[serde(default)]
    pub quota_messages: u64,
    #[serde(default)]
    pub state: State,
    /// The Maildir; empty for the default `paths.mail/DOMAIN/LOCAL`.
    #[serde(default)]
    pub mail_path: String,
    #[serde(default)]
    pub forwards: Vec<String>,
    #[serde(default)]
    pub keep_copy: bool,
    #[serde(default)]
    pub pop3_subfolders: bool,
    #[serde(default)]
    pub login_delay: u64,
    /// Seconds since the epoch.
    #[serde(default)]
    pub created: u64,
    /// Allow and block lists of senders, spam thresholds, Junk filing
    /// (`kmpctl user spam`).
    #[serde(default, skip_serializing_if = "SpamPrefs::is_default")]
    pub spam: SpamPrefs,
}

impl User {
    /// A new active user with no password, quota or forwards.
    pub fn new(addr: &Address, created: u64) -> User {
        User {
            address: addr.to_string(),
            password: String::new(),
            quota_bytes: 0,
            quota_messages: 0,
            state: State::Active,
            mail_path: String::new(),
            forwards: Vec::new(),
            keep_copy: false,
            pop3_subfolders: false,
            login_delay: 0,
            created,
            spam: SpamPrefs::default(),
        }
    }

    /// The parsed address (stored records are valid).
    pub fn addr(&self) -> Result<Address, AddressError> {
        Address::parse(&self.address)
    }

    /// The Maildir: the stored path, else `mail_root/DOMAIN/local`.
    pub fn maildir(&self, mail_root: &Path) -> PathBuf {
        if !self.mail_path.is_empty() {
            return PathBuf::from(&self.mail_path);
        }
        match self.address.rsplit_once('@') {
            Some((l, d)) => mail_root.join(d).join(l.to_lowercase()),
            None => mail_root.join(&self.address),
        }
    }

    /// What the daemons see: everything but the hash.
    pub fn info(&self, mail_root: &Path) -> UserInfo {
        UserInfo {
            address: self.address.clone(),
            mail_path: self.maildir(mail_root),
            quota_bytes: self.quota_bytes,
            quota_messages: self.quota_messages,
            active: self.state == State::Active,
            forwards: self.forwards.clone(),
            keep_copy: self.keep_copy,
            pop3_subfolders: self.pop3_subfolders,
            login_delay: self.login_delay,
            spam: self.spam.clone(),
            max_message_bytes: None,
        }
    }
}

/// An alias: mail to `address` goes to `targets`. `@domain` is the domain's
/// catch-all.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alias {
    pub address: String,
    pub targets: Vec<String>,
}

/// What an address resolves to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolved {
    User(User),
    Alias(Alias),
    /// A mailing list's address: its record and which of its addresses.
    List(crate::lists::List, crate::lists::Role),
    NotFound,
}

/// Why the database could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("there is no user database at {0} (kmpctl init creates one)")]
    Missing(PathBuf),
    #[error("the user database at {0} is damaged or not an LMDB database: {1}")]
    Corrupt(PathBuf, String),
    #[error("the user database is full (its map size is too small): {0}")]
    Full(String),
    #[error("the user database: {0}")]
    Io(String),
    #[error("permission denied on the user database {0}")]
    Permission(PathBuf),
    #[error("{0} exists already")]
    Exists(String),
    #[error("{0}")]
    NotFound(String),
    #[error("domain {0} still has {1}; use --force to delete them too")]
    HasLists(String, String),
    #[error("domain {0} still has {n} and {m}; use --force to delete them too",
        n = plural(*.1, "user", "users"), m = plural(*.2, "alias", "aliases"))]
    NotEmpty(String, usize, usize),
    #[error("{0}")]
    Address(#[from] AddressError),
    #[error("{0}")]
    Password(#[from] PasswordError),
    #[error("{0}")]
    Invalid(String),
    /// Over one of the domain's limits: nothing was written.
    #[error("{0}")]
    Limit(String),
}

impl DbError {
    /// The sysexits code a program should exit with.
    pub fn exit_code(&self) -> i32 {
        use crate::exit;
        match self {
            DbError::Missing(_) | DbError::Corrupt(..) => exit::OSFILE,
            DbError::Full(_) | DbError::Io(_) => exit::IOERR,
            DbError::Permission(_) => exit::NOPERM,
            DbError::Exists(_) => exit::CANTCREAT,
            DbError::NotFound(_) => exit::NOUSER,
            DbError::NotEmpty(..) | DbError::HasLists(..) => exit::DATAERR,
            DbError::Address(_) | DbError::Password(_) | DbError::Invalid(_) => exit::DATAERR,
            DbError::Limit(_) => exit::CANTCREAT,
        }
    }

    /// Whether a daemon should answer "try again later".
    pub fn is_temporary(&self) -> bool {
        matches!(
            self,
            DbError::Missing(_)
                | DbError::Corrupt(..)
                | DbError::Full(_)
                | DbError::Io(_)
                | DbError::Permission(_)
        )
    }
}

/// Reading the directory: what kmp-authd needs. LDAP implements this too.
pub trait Directory: Send + Sync {
    /// A domain by its normalised name.
    fn domain(&self, name: &str) -> Result<Option<Domain>, DbError>;
    /// A user by address (local part matched without regard to case).
    fn user(&self, addr: &Address) -> Result<Option<User>, DbError>;
    /// An alias by address, or a catch-all by `@domain`.
    fn alias(&self, addr: &Address) -> Result<Option<Alias>, DbError>;
    /// A mailing list by its post address (local part matched without
    /// regard to case). A directory without lists has none.
    fn list(&self, _addr: &Address) -> Result<Option<crate::lists::List>, DbError> {
        Ok(None)
    }
    /// A number that changes whenever the directory does (LMDB's last
    /// transaction id); 0 when there is no such thing.
    fn version(&self) -> u64 {
        0
    }

    /// Resolves a recipient: the user, else an alias, else a list's
    /// address, else plus-addressing (`user+tag` → `user`, then its alias),
    /// else the domain's catch-all. Also says whether the domain is ours.
    fn resolve(&self, addr: &Address) -> Result<(Resolved, bool), DbError> {
        resolve_with(
            addr,
            |a| self.user(a),
            |a| self.alias(a),
            |a| self.list(a),
            |d| self.domain(d),
        )
    }
}

/// `1 user`, `2 users`.
fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The separator of plus-addressing.
pub const DETAIL_SEPARATOR: char = '+';

/// The resolution order of [`Directory::resolve`], over any getters.
pub fn resolve_with(
    addr: &Address,
    mut user: impl FnMut(&Address) -> Result<Option<User>, DbError>,
    mut alias: impl FnMut(&Address) -> Result<Option<Alias>, DbError>,
    mut list: impl FnMut(&Address) -> Result<Option<crate::lists::List>, DbError>,
    mut domain: impl FnMut(&str) -> Result<Option<Domain>, DbError>,
) -> Result<(Resolved, bool), DbError> {
    if domain(addr.domain())?.is_none() {
        return Ok((Resolved::NotFound, false));
    }
    if let Some(u) = user(addr)? {
        return Ok((Resolved::User(u), true));
    }
    if let Some(a) = alias(addr)? {
        return Ok((Resolved::Alias(a), true));
    }
    // A list's addresses come before plus-addressing and the catch-all, which
    // would otherwise take `list-owner@` and the like.
    if let Some((l, role)) = find_list(addr, &mut list)? {
        return Ok((Resolved::List(l, role), true));
    }
    if let Some(base) = addr.without_detail(DETAIL_SEPARATOR) {
        if let Some(u) = user(&base)? {
            return Ok((Resolved::User(u), true));
        }
        if let Some(a) = alias(&base)? {
            return Ok((Resolved::Alias(a), true));
        }
    }
    if let Some(a) = alias(&Address::catch_all(addr.domain()))? {
        return Ok((Resolved::Alias(a), true));
    }
    Ok((Resolved::NotFound, true))
}

/// The list `addr` is an address of, and which: the post address, else each
/// reading of [`crate::lists::address::forms`] in turn.
pub fn find_list(
    addr: &Address,
    list: &mut impl FnMut(&Address) -> Result<Option<crate::lists::List>, DbError>,
) -> Result<Option<(crate::lists::List, crate::lists::Role)>, DbError> {
    if addr.is_catch_all() {
        return Ok(None);
    }
    if let Some(l) = list(addr)? {
        return Ok(Some((l, crate::lists::Role::Post)));
    }
    for (local, role) in crate::lists::address::forms(addr.local()) {
        if let Some(l) = list(&Address::from_parts(&local, addr.domain()))? {
            return Ok(Some((l, role)));
        }
    }
    Ok(None)
}

/// Seconds since the epoch, for `created`.
pub fn now() -> u64 {
    crate::clock::Clock::System.now()
}
