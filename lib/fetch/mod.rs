//! kmp-fetch, the fetch agent: collects users' mail from their other POP3
//! and IMAP mailboxes into the queue, each account's mail into a folder of
//! the local user.
//!
//! What it owns: the remote sessions ([`pop3`], `imapc`), the seen state
//! and last results in `paths.fetch` ([`state`]), the schedule with its
//! back-off and limits ([`server`]), the control socket `RUN/fetch.sock`.
//! What it does not: it never opens a Maildir or the user database. The
//! accounts come from kmp-authd (`ipc::authd::Request::FetchAccounts`),
//! their passwords sealed to this program's key ([`seal`]); the mail goes
//! into the queue's drop directory as kmp-inject's does ([`handoff`]), and
//! kmp-send and kmp-local deliver it, quota and Sieve included.
//!
//! Threads, not tokio: every remote session is a blocking conversation
//! (the IMAP client is blocking), one thread per account being fetched, at
//! most `fetch.max_concurrency` of them and `fetch.max_per_user` per user,
//! so a slow or dead server holds only its own thread.

pub mod handoff;
pub mod pop3;
pub mod seal;
pub mod server;
pub mod session;
pub mod state;

use std::path::PathBuf;
use std::time::Duration;

use crate::config::Config;
use crate::paths::Paths;

/// What kmp-fetch takes from the configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    pub hostname: String,
    pub state_dir: PathBuf,
    pub incoming: PathBuf,
    pub kick: PathBuf,
    pub authd_socket: PathBuf,
    pub socket: PathBuf,
    pub private_key: PathBuf,
    pub ca_file: Option<PathBuf>,
    pub interval: Duration,
    pub min_interval: Duration,
    pub max_backoff: Duration,
    pub max_concurrency: usize,
    pub max_per_user: usize,
    pub max_size: u64,
    pub timeout: Duration,
}

impl Settings {
    pub fn from_config(cfg: &Config) -> Settings {
        let paths = Paths::new(cfg);
        Settings {
            hostname: cfg.str("system.hostname").to_string(),
            state_dir: cfg.path_of("paths.fetch"),
            incoming: paths.incoming(),
            kick: paths.kick_socket(),
            authd_socket: paths.authd_socket(),
            socket: socket(&paths),
            private_key: cfg.path_of("fetch.private_key"),
            ca_file: match cfg.str("fetch.ca_file") {
                "" => None,
                p => Some(PathBuf::from(p)),
            },
            interval: cfg.duration("fetch.interval"),
            min_interval: cfg.duration("fetch.min_interval"),
            max_backoff: cfg.duration("fetch.max_backoff"),
            max_concurrency: cfg.usize("fetch.max_concurrency").max(1),
            max_per_user: cfg.usize("fetch.max_per_user").max(1),
            max_size: cfg.u64("fetch.max_message_size"),
            timeout: cfg.duration("fetch.timeout"),
        }
    }
}

/// kmp-fetch's control socket.
pub fn socket(paths: &Paths) -> PathBuf {
    paths.run.join("fetch.sock")
}
