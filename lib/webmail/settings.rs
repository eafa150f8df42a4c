//! The `[webmail]` keys, typed, and the IP allow and deny lists.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::config::Config;
use crate::net::Cidr;

/// How to reach a server: host, port and transport security.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Server {
    pub host: String,
    pub port: u16,
    /// `plain`, `starttls` or `tls`.
    pub security: String,
}

/// What kmp-webmail reads from the configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    pub imap: Server,
    pub imap_ca_file: Option<PathBuf>,
    pub imap_timeout: Duration,
    pub submission: Server,
    /// `webmail.managesieve`: the rule editor's kmp-sieved.
    pub managesieve: Server,
    /// `webmail.lists_smtp`: where one-click unsubscribes go, without login.
    pub lists_smtp: Server,
    /// `webmail.admind`: kmp-admind's URL (None: no administration pages).
    pub admind: Option<String>,
    /// `webmail.admind_ca_file` (None: the system's CA certificates).
    pub admind_ca_file: Option<PathBuf>,
    pub key_file: PathBuf,
    pub skins_dir: PathBuf,
    pub lang_dir: PathBuf,
    pub session_lifetime: Duration,
    pub max_request_size: u64,
    pub allow: Vec<Cidr>,
    pub deny: Vec<Cidr>,
    pub page_size: u32,
    /// Most bytes of attachments one message may carry
    /// (`webmail.max_attachment_size`, see [`attachment_limit`]).
    pub max_attachments: u64,
    /// `local.quota_warning_percent`: the level of users who chose none
    /// (0: kmp-local sends no warnings, and the settings page offers none).
    pub quota_warning: u64,
    /// `local.quota_warning_min_percent`: the lowest level offered.
    pub quota_warning_min: u64,
}

impl Settings {
    /// The settings in `cfg`; an address that is not `host:port` is an error.
    pub fn from_config(cfg: &Config) -> Result<Settings, String> {
        let ca = cfg.str("webmail.imap_ca_file");
        let admind = cfg.str("webmail.admind");
        let admind_ca = cfg.str("webmail.admind_ca_file");
        Ok(Settings {
            imap: Server::parse(cfg.str("webmail.imap"), cfg.str("webmail.imap_security"))
                .map_err(|e| format!("webmail.imap: {e}"))?,
            imap_ca_file: (!ca.is_empty()).then(|| PathBuf::from(ca)),
            imap_timeout: cfg.duration("webmail.imap_timeout"),
            submission: Server::parse(
                cfg.str("webmail.submission"),
                cfg.str("webmail.submission_security"),
            )
            .map_err(|e| format!("webmail.submission: {e}"))?,
            managesieve: Server::parse(
                cfg.str("webmail.managesieve"),
                cfg.str("webmail.managesieve_security"),
            )
            .map_err(|e| format!("webmail.managesieve: {e}"))?,
            lists_smtp: Server::parse(
                cfg.str("webmail.lists_smtp"),
                cfg.str("webmail.lists_smtp_security"),
            )
            .map_err(|e| format!("webmail.lists_smtp: {e}"))?,
            admind: (!admind.is_empty()).then(|| admind.to_string()),
            admind_ca_file: (!admind_ca.is_empty()).then(|| PathBuf::from(admind_ca)),
            key_file: cfg.path_of("webmail.key_file"),
            skins_dir: cfg.path_of("webmail.skins_dir"),
            lang_dir: cfg.path_of("webmail.lang_dir"),
            session_lifetime: cfg.duration("webmail.session_lifetime"),
            max_request_size: cfg.u64("webmail.max_request_size"),
            allow: cfg.nets("webmail.allow"),
            deny: cfg.nets("webmail.deny"),
            page_size: cfg.u64("webmail.page_size").min(500) as u32,
            max_attachments: attachment_limit(
                cfg.u64("webmail.max_attachment_size"),
                cfg.u64("smtpd.max_message_size"),
                cfg.u64("webmail.max_request_size"),
            ),
            quota_warning: cfg.u64("local.quota_warning_percent"),
            quota_warning_min: cfg.u64("local.quota_warning_min_percent"),
        })
    }

    /// Whether a browser at `ip` may use the webmail: not denied, and
    /// allowed when there is an allow list. An unknown address (no
    /// REMOTE_ADDR) is refused when either list is set.
    pub fn admits(&self, ip: Option<IpAddr>) -> bool {
        match ip {
            None => self.allow.is_empty() && self.deny.is_empty(),
            Some(ip) => {
                !self.deny.iter().any(|n| n.contains(ip))
                    && (self.allow.is_empty() || self.allow.iter().any(|n| n.contains(ip)))
            }
        }
    }
}

/// The attachment limit: `configured` when set, else what fits in a
/// message of the SMTP size limit once base64 has grown it by a third
/// (less 64 KiB for the text and headers); never more than a request body
/// may carry (less 256 KiB for the form's other fields).
pub fn attachment_limit(configured: u64, smtp_size: u64, request_size: u64) -> u64 {
    let wanted = if configured > 0 {
        configured
    } else {
        (smtp_size / 4 * 3).saturating_sub(64 << 10)
    };
    wanted.min(request_size.saturating_sub(256 << 10)).max(1)
}

/// The quota warning levels a user may choose: a fixed ladder from
/// `min` up, and the system's own level.
pub fn quota_levels(default: u64, min: u64) -> Vec<u32> {
    if default == 0 {
        return Vec::new();
    }
    let mut v: Vec<u32> = [50u32, 60, 70, 75, 80, 85, 90, 95, 98]
        .into_iter()
        .chain([min.min(100) as u32, default.min(100) as u32])
        .filter(|&n| u64::from(n) >= min)
        .collect();
    v.sort_unstable();
    v.dedup();
    v
}

impl Server {
    /// `host:port`, `[v6]:port`.
    pub fn parse(addr: &str, security: &str) -> Result<Server, String> {
        let bad = || format!("{addr:?} is not host:port");
        let (host, port) = addr.trim().rsplit_once(':').ok_or_else(bad)?;
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        let port: u16 = port.parse().map_err(|_| bad())?;
        if host.is_empty() || port == 0 {
            return Err(bad());
        }
        Ok(Server {
            host: host.to_string(),
            port,
            security: security.to_string(),
        })
    }

    /// A connection to it: in TLS from the start for `tls`, else plain
    /// (the caller runs STARTTLS for `starttls`).
    pub fn connect(
        &self,
        ca_file: Option<&std::path::Path>,
        timeout: Duration,
    ) -> Result<crate::imapc::conn::Stream, crate::imapc::Error> {
        crate::imapc::conn::open(
            &self.host,
            self.port,
            self.security == "tls",
            ca_file,
            timeout,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_parse() {
        assert_eq!(
            Server::parse("[::1]:143", "plain").unwrap(),
            Server {
                host: "::1".into(),
                port: 143,
                security: "plain".into()
            }
        );
        assert_eq!(
            Server::parse("mail.example.com:993", "tls").unwrap().port,
            993
        );
        assert!(Server::parse("nohost", "tls").is_err());
        assert!(Server::parse(":143", "tls").is_err());
        assert!(Server::parse("a:0", "tls").is_err());
    }

    #[test]
    fn the_attachment_limit_follows_the_smtp_size_limit() {
        let k = 1u64 << 10;
        // Unset: three quarters of the SMTP limit, less 64 KiB.
        assert_eq!(
            attachment_limit(0, 25 << 20, 32 << 20),
            (25 << 20) / 4 * 3 - 64 * k
        );
        // Set: as set, within what a request may carry.
        assert_eq!(attachment_limit(100 * k, 25 << 20, 32 << 20), 100 * k);
        assert_eq!(
            attachment_limit(1 << 30, 25 << 20, 32 << 20),
            (32 << 20) - 256 * k
        );
        assert_eq!(attachment_limit(0, 1024, 64 * k), 1, "never zero");
        let s = Settings::from_config(&Config::defaults()).unwrap();
        assert_eq!(s.max_attachments, attachment_limit(0, 25 << 20, 32 << 20));
    }

    #[test]
    fn deny_wins_over_allow() {
        let mut cfg = Config::defaults();
        cfg.set("webmail.allow", "192.0.2.0/24").unwrap();
        cfg.set("webmail.deny", "192.0.2.7").unwrap();
        let s = Settings::from_config(&cfg).unwrap();
        assert!(s.admits(Some("192.0.2.1".parse().unwrap())));
        assert!(!s.admits(Some("192.0.2.7".parse().unwrap())));
        assert!(!s.admits(Some("198.51.100.1".parse().unwrap())));
        assert!(!s.admits(None));
        let open = Settings::from_config(&Config::defaults()).unwrap();
        assert!(open.admits(Some("198.51.100.1".parse().unwrap())));
        assert!(open.admits(None));
    }
}
