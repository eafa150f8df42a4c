//! The limits and rules kmp-smtpd enforces, read once from the validated
//! configuration, so the session never touches the configuration itself.

use std::net::IpAddr;
use std::time::Duration;

use crate::config::Config;
use crate::net::Cidr;

/// Everything the session and the server decide by.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Greeting, EHLO and Received name this host.
    pub hostname: String,
    /// Where `RCPT TO:<postmaster>` goes.
    pub postmaster: String,
    pub max_message_size: u64,
    pub max_recipients: usize,
    pub max_hops: usize,
    pub max_messages: usize,
    pub max_bad_commands: usize,
    pub max_connections: usize,
    pub max_connections_per_ip: usize,
    /// New connections per minute per address; 0 for none.
    pub max_connection_rate: usize,
    /// IPv6 clients are counted by this many leading bits (system.ipv6_prefix).
    pub ipv6_prefix: u8,
    /// Load average above which new connections are refused; 0 for none.
    pub max_load: u64,
    pub command_timeout: Duration,
    pub data_timeout: Duration,
    pub relay_networks: Vec<Cidr>,
    pub deny_clients: Vec<Cidr>,
    /// Lower-cased.
    pub deny_senders: Vec<String>,
    /// Lower-cased; a leading dot covers subdomains.
    pub deny_sender_domains: Vec<String>,
    /// Lower-cased.
    pub deny_recipients: Vec<String>,
    pub auth_plaintext: bool,
    pub sender_login_check: bool,
    /// Whether a certificate is loaded (STARTTLS offered, port 465 served).
    pub tls: bool,
    /// The sender checks (`[auth]`), when any is on.
    pub auth: Option<std::sync::Arc<crate::mailauth::verify::Checker>>,
    /// Connection checks, greylisting and content scanners (`[scan]`).
    pub scan: std::sync::Arc<crate::antispam::scan::Scanner>,
}

impl Policy {
    /// The policy `cfg` describes; `tls` says whether a certificate was loaded.
    pub fn from_config(cfg: &Config, tls: bool) -> Policy {
        let lower =
            |k: &str| -> Vec<String> { cfg.list(k).iter().map(|s| s.to_lowercase()).collect() };
        let hostname = cfg.str("system.hostname").to_string();
        let postmaster = match cfg.str("system.postmaster") {
            p if p.contains('@') => p.to_string(),
            p => format!("{p}@{hostname}"),
        };
        Policy {
            hostname,
            postmaster,
            max_message_size: cfg.u64("smtpd.max_message_size"),
            max_recipients: cfg.usize("smtpd.max_recipients"),
            max_hops: cfg.usize("smtpd.max_hops"),
            max_messages: cfg.usize("smtpd.max_messages_per_connection"),
            max_bad_commands: cfg.usize("smtpd.max_bad_commands"),
            max_connections: cfg.usize("smtpd.max_connections"),
            max_connections_per_ip: cfg.usize("smtpd.max_connections_per_ip"),
            max_connection_rate: cfg.usize("smtpd.max_connection_rate"),
            ipv6_prefix: cfg.u64("system.ipv6_prefix").min(128) as u8,
            max_load: cfg.u64("system.max_load"),
            command_timeout: cfg.duration("smtpd.command_timeout"),
            data_timeout: cfg.duration("smtpd.data_timeout"),
            relay_networks: cfg.nets("smtpd.relay_networks"),
            deny_clients: cfg.nets("smtpd.deny_clients"),
            deny_senders: lower("smtpd.deny_senders"),
            deny_sender_domains: lower("smtpd.deny_sender_domains"),
            deny_recipients: lower("smtpd.deny_recipients"),
            auth_plaintext: cfg.bool("smtpd.auth_plaintext"),
            sender_login_check: cfg.bool("smtpd.sender_login_check"),
            tls,
            auth: auth_checker(cfg),
            scan: crate::antispam::scan::Scanner::from_config(cfg),
        }
    }

    /// Whether `ip` may relay without AUTH.
    pub fn may_relay(&self, ip: IpAddr) -> bool {
        self.relay_networks.iter().any(|n| n.contains(ip))
    }

    /// Whether sessions from `ip` are refused outright.
    pub fn client_denied(&self, ip: IpAddr) -> bool {
        self.deny_clients.iter().any(|n| n.contains(ip))
    }

    /// Whether `address` (local@domain) is a refused sender.
    pub fn sender_denied(&self, address: &str, domain: &str) -> bool {
        let address = address.to_lowercase();
        self.deny_senders.contains(&address)
            || self
                .deny_sender_domains
                .iter()
                .any(|d| match d.strip_prefix('.') {
                    Some(parent) => domain == parent || domain.ends_with(d.as_str()),
                    None => domain == d,
                })
    }

    /// Whether `address` is a refused recipient.
    pub fn recipient_denied(&self, address: &str) -> bool {
        let address = address.to_lowercase();
        self.deny_recipients.contains(&address)
    }
}

/// The `[auth]` checker, or None when every check is off. A resolver that
/// cannot be made (a bad `auth.dns_servers`, no /etc/resolv.conf) turns
/// the checks off with a warning rather than keeping kmp-smtpd down.
fn auth_checker(cfg: &Config) -> Option<std::sync::Arc<crate::mailauth::verify::Checker>> {
    use crate::mailauth::verify::{Checker, Settings};
    let settings = match Settings::from_config(cfg) {
        Ok(s) if s.any() => s,
        Ok(_) => return None,
        Err(e) => {
            crate::warn!("sender checks off: {e}");
            return None;
        }
    };
    match Checker::new(settings) {
        Ok(c) => Some(std::sync::Arc::new(c)),
        Err(e) => {
            crate::warn!("sender checks off: no resolver: {e}");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deny_lists_match_as_documented() {
        let mut cfg = Config::defaults();
        cfg.set("smtpd.deny_senders", "Spam@Example.test").unwrap();
        cfg.set("smtpd.deny_sender_domains", "bad.test,.worse.test")
            .unwrap();
        cfg.set("smtpd.deny_recipients", "nobody@example.test")
            .unwrap();
        cfg.set("smtpd.deny_clients", "192.0.2.0/24,2001:db8::/32")
            .unwrap();
        cfg.set("smtpd.relay_networks", "10.0.0.0/8").unwrap();
        let p = Policy::from_config(&cfg, false);
        assert!(p.sender_denied("spam@example.TEST", "example.test"));
        assert!(p.sender_denied("a@bad.test", "bad.test"));
        assert!(!p.sender_denied("a@notbad.test", "notbad.test"));
        assert!(p.sender_denied("a@x.worse.test", "x.worse.test"));
        assert!(p.sender_denied("a@worse.test", "worse.test"));
        assert!(!p.sender_denied("a@good.test", "good.test"));
        assert!(p.recipient_denied("NOBODY@example.test"));
        assert!(p.client_denied("192.0.2.9".parse().unwrap()));
        assert!(p.client_denied("2001:db8::5".parse().unwrap()));
        assert!(!p.client_denied("127.0.0.1".parse().unwrap()));
        assert!(p.may_relay("10.1.1.1".parse().unwrap()));
        assert!(!Policy::from_config(&Config::defaults(), false)
            .may_relay("127.0.0.1".parse().unwrap()));
    }
}
