//! kmp-imapd's session log lines, the same events as kmp-pop3d and kmp-smtpd
//! write: `ID imap connected`, `starttls`, `login`, `login failed`, `refused`
//! and `disconnected` with what the session did. Never given a password.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};

/// One connection's log: its id and what it did so far.
pub struct SessionLog {
    id: String,
    ip: IpAddr,
    user: Option<String>,
    /// Commands the client sent (framed, parsed or not).
    pub commands: u64,
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

impl SessionLog {
    /// Names a new connection from `ip` and logs it.
    pub fn connected(ip: IpAddr, port: u16, implicit_tls: bool) -> SessionLog {
        let ip = ip.to_canonical();
        let id = format!(
            "{:X}{:05X}",
            crate::clock::Clock::System.now(),
            NEXT_ID.fetch_add(1, Ordering::Relaxed) & 0xFFFFF
        );
        crate::info!(
            "{id} imap connected address={ip} port={port} tls={}",
            if implicit_tls { "yes" } else { "no" }
        );
        SessionLog {
            id,
            ip,
            user: None,
            commands: 0,
        }
    }

    /// The connection was turned away before the greeting.
    pub fn refused(&self, reason: &str) {
        crate::warn!(
            "{} imap refused address={} reason={reason}",
            self.id,
            self.ip
        );
    }

    /// A trusted front end named the client it serves (ID): this line ties
    /// the two addresses, and later lines name the client.
    pub fn forwarded(&mut self, ip: IpAddr, port: Option<u16>) {
        let ip = ip.to_canonical();
        let port = port.map(|p| format!(" port={p}")).unwrap_or_default();
        crate::info!(
            "{} imap forwarded address={ip}{port} proxy={}",
            self.id,
            self.ip
        );
        self.ip = ip;
    }

    /// STARTTLS completed.
    pub fn starttls(&self) {
        crate::info!("{} imap starttls address={}", self.id, self.ip);
    }

    /// A login succeeded as `user` (the canonical address).
    pub fn login(&mut self, user: &str) {
        crate::info!(
            "{} imap login user={} address={}",
            self.id,
            printable(user),
            self.ip
        );
        self.user = Some(user.to_string());
    }

    /// A login as `typed` failed; `answer` is the text the client got
    /// (`[AUTHENTICATIONFAILED] ...`), whose response code names the reason.
    pub fn login_failed(&self, typed: &str, answer: &str) {
        let reason = answer
            .strip_prefix('[')
            .and_then(|a| a.split(']').next())
            .unwrap_or("failed")
            .to_ascii_lowercase();
        crate::info!(
            "{} imap login failed user={} address={} reason={reason}",
            self.id,
            printable(typed),
            self.ip
        );
    }

    /// The connection ended; `error` is why, when it was not a clean close.
    pub fn disconnected(&self, error: Option<&std::io::Error>) {
        let user = self.user.as_deref().map(printable).unwrap_or_default();
        let error = match error {
            Some(e) => format!(" error=\"{}\"", printable(&e.to_string()).replace('?', " ")),
            None => String::new(),
        };
        crate::info!(
            "{} imap disconnected address={} user={user} commands={}{error}",
            self.id,
            self.ip,
            self.commands
        );
    }
}

/// A client-supplied string as it may appear in a log line.
fn printable(s: &str) -> String {
    s.chars()
        .take(128)
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' {
                c
            } else {
                '?'
            }
        })
        .collect()
}
