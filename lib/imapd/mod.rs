//! kmp-imapd: IMAP4rev1 (RFC 3501) and IMAP4rev2 (RFC 9051) over the users'
//! Maildir++ folders.
//!
//! Three layers, as every protocol here:
//! - `proto::imap`: the pure parser (framing, literals, typed commands);
//! - [`session`]: the state machine (`State` enum), one handler per command
//!   in `cmd/`, and [`view`], a session's numbering of its selected folder
//!   and the untagged updates it owes the client;
//! - [`server`]: sockets, TLS, kmp-authd, IDLE polling, time.
//!
//! The session reaches mail only through [`store::MailStore`], implemented
//! over `crate::maildir` in [`maildir_store`].

pub mod accounts;
pub mod cmd;
pub mod context;
pub mod events;
pub mod maildir_store;
pub mod message;
pub mod names;
pub mod raw_header;
pub mod server;
pub mod session;
pub mod sortkey;
pub mod store;
pub mod submit;
#[cfg(test)]
mod transcripts;
pub mod url;
pub mod view;

use std::time::Duration;

use crate::config::Config;
use crate::proto::imap::Limits;

/// What the session and server need from the configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The name in the greeting.
    pub hostname: String,
    /// A TLS certificate is configured (STARTTLS offered, LOGINDISABLED on
    /// plaintext non-local connections).
    pub tls_available: bool,
    pub limits: Limits,
    /// Idle time before the server logs a client out (RFC 9051 5.4: at
    /// least 30 minutes).
    pub timeout: Duration,
    /// How long a client may take to accept a response.
    pub write_timeout: Duration,
    /// How long a TLS handshake may take.
    pub handshake_timeout: Duration,
    /// Bad commands in a session before it is closed and reported.
    pub max_errors: u32,
    /// How often an idling session looks at its folder.
    pub idle_poll: Duration,
    /// Most connections at once, and from one address.
    pub max_connections: usize,
    pub max_per_ip: usize,
    /// IPv6 clients are counted by this many leading bits (system.ipv6_prefix).
    pub ipv6_prefix: u8,
    /// Front ends whose ID may name the client they serve.
    pub trusted_networks: Vec<crate::net::Cidr>,
    /// METADATA (RFC 5464): the largest value, the most entries per
    /// mailbox, and the server entries /shared/comment and /shared/admin.
    pub metadata_max_size: usize,
    pub metadata_max_entries: usize,
    pub metadata_max_total: usize,
    pub metadata_comment: String,
    pub metadata_admin: String,
}

impl Settings {
    pub fn from_config(cfg: &Config, tls_available: bool) -> Settings {
        Settings {
            hostname: cfg.str("system.hostname").to_string(),
            tls_available,
            limits: Limits {
                max_line: cfg.usize("imapd.max_line_length"),
                max_literal: 65_536,
                max_append: cfg.u64("imapd.max_message_size"),
                max_literals: 64,
            },
            timeout: cfg.duration("imapd.timeout"),
            write_timeout: cfg.duration("imapd.write_timeout"),
            handshake_timeout: cfg.duration("imapd.handshake_timeout"),
            max_errors: u32::try_from(cfg.u64("imapd.max_errors")).unwrap_or(u32::MAX),
            idle_poll: Duration::from_millis(250),
            max_connections: cfg.usize("imapd.max_connections"),
            max_per_ip: cfg.usize("imapd.max_connections_per_ip"),
            ipv6_prefix: cfg.u64("system.ipv6_prefix").min(128) as u8,
            trusted_networks: cfg.nets("imapd.trusted_networks"),
            metadata_max_size: cfg.usize("imapd.metadata_max_size"),
            metadata_max_entries: cfg.usize("imapd.metadata_max_entries"),
            metadata_max_total: cfg.usize("imapd.metadata_max_total"),
            metadata_comment: cfg.str("imapd.metadata_comment").to_string(),
            metadata_admin: cfg.str("imapd.metadata_admin").to_string(),
        }
    }

    /// Settings for tests.
    pub fn for_tests() -> Settings {
        Settings {
            hostname: "imap.example.test".into(),
            tls_available: false,
            limits: Limits::default(),
            timeout: Duration::from_secs(1800),
            write_timeout: Duration::from_secs(60),
            handshake_timeout: Duration::from_secs(30),
            max_errors: 20,
            idle_poll: Duration::from_millis(250),
            max_connections: 100,
            max_per_ip: 100,
            ipv6_prefix: crate::net::DEFAULT_IPV6_PREFIX,
            trusted_networks: Vec::new(),
            metadata_max_size: 65_536,
            metadata_max_entries: 5000,
            metadata_max_total: 16 << 20,
            metadata_comment: String::new(),
            metadata_admin: String::new(),
        }
    }

    /// Whether `ip` is a trusted front end (`imapd.trusted_networks`).
    pub fn trusted(&self, ip: std::net::IpAddr) -> bool {
        self.trusted_networks.iter().any(|n| n.contains(ip))
    }

    /// The deadlines of a connection's stream.
    pub fn deadlines(&self) -> crate::net::Deadlines {
        crate::net::Deadlines {
            read: self.timeout,
            write: self.write_timeout,
            handshake: self.handshake_timeout,
        }
    }
}
