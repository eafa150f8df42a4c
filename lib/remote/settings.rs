//! kmp-remote's settings, read once from the validated configuration.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::config::Config;
use crate::proto::sasl::Secret;

/// The STARTTLS level for a destination (as Postfix's smtp_tls_security_level).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TlsLevel {
    /// Never STARTTLS.
    None,
    /// STARTTLS when offered; the certificate is not checked; a failed
    /// handshake defers the delivery (trying the next host first).
    May,
    /// STARTTLS required, certificate not checked.
    Encrypt,
    /// STARTTLS required, certificate checked against the CA file and the
    /// server's name.
    Verify,
}

impl TlsLevel {
    pub fn parse(s: &str) -> Option<TlsLevel> {
        match s.trim().to_ascii_lowercase().as_str() {
            "none" => Some(TlsLevel::None),
            "may" => Some(TlsLevel::May),
            "encrypt" => Some(TlsLevel::Encrypt),
            "verify" => Some(TlsLevel::Verify),
            _ => None,
        }
    }

    /// The level's name, as in the configuration.
    pub fn name(self) -> &'static str {
        match self {
            TlsLevel::None => "none",
            TlsLevel::May => "may",
            TlsLevel::Encrypt => "encrypt",
            TlsLevel::Verify => "verify",
        }
    }

    /// Whether a session without TLS must not carry mail.
    pub fn required(self) -> bool {
        matches!(self, TlsLevel::Encrypt | TlsLevel::Verify)
    }
}

/// Which address families kmp-remote connects over (`remote.address_family`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// Both: each mail host's IPv6 and IPv4 addresses, alternating, IPv6 first.
    Any,
    Ipv4,
    Ipv6,
}

impl Family {
    pub fn parse(s: &str) -> Option<Family> {
        match s.trim().to_ascii_lowercase().as_str() {
            "any" => Some(Family::Any),
            "ipv4" => Some(Family::Ipv4),
            "ipv6" => Some(Family::Ipv6),
            _ => None,
        }
    }

    /// Whether an address of `ip`'s family may be used (an IPv4-mapped IPv6
    /// address is IPv4).
    pub fn allows(self, ip: std::net::IpAddr) -> bool {
        match (self, ip.to_canonical()) {
            (Family::Any, _) => true,
            (Family::Ipv4, ip) => ip.is_ipv4(),
            (Family::Ipv6, ip) => ip.is_ipv6(),
        }
    }

    /// The name in the configuration.
    pub fn name(self) -> &'static str {
        match self {
            Family::Any => "any",
            Family::Ipv4 => "ipv4",
            Family::Ipv6 => "ipv6",
        }
    }
}

/// The RFC 5321 4.5.3.2 timeouts, plus connect.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub connect: Duration,
    pub greeting: Duration,
    pub command: Duration,
    pub data_init: Duration,
    pub data_block: Duration,
    pub data_done: Duration,
}

/// Everything kmp-remote needs from the configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    pub helo_name: String,
    pub timeouts: Timeouts,
    pub cache_time: Duration,
    pub max_connections: usize,
    pub max_per_destination: usize,
    pub max_recipients: usize,
    /// Destination (lower-case domain or `*`) → `host[:port]` entries.
    pub routes: BTreeMap<String, Vec<String>>,
    pub tls_level: TlsLevel,
    pub tls_policy: BTreeMap<String, TlsLevel>,
    pub tls_ca_file: String,
    /// Destination → (user, password). The password is a [`Secret`]: these
    /// settings may be printed with `{:?}`.
    pub auth: BTreeMap<String, (String, Secret)>,
    /// Destinations whose credentials may go to a server whose certificate
    /// was not verified (remote.auth_unverified).
    pub auth_unverified: std::collections::BTreeSet<String>,
    /// The port of hosts found in DNS.
    pub smtp_port: u16,
    /// Name servers; empty for the system's.
    pub dns_servers: Vec<std::net::SocketAddr>,
    /// The address families to connect over.
    pub family: Family,
}

impl Settings {
    /// Reads the settings. Bad entries in the maps are reported, every one.
    pub fn from_config(cfg: &Config) -> Result<Settings, Vec<String>> {
        let mut errors = Vec::new();
        let helo_name = match cfg.str("remote.helo_name") {
            "" => cfg.str("system.hostname").to_string(),
            n => n.to_string(),
        };
        let lower = |m: &BTreeMap<String, Vec<String>>| -> BTreeMap<String, Vec<String>> {
            m.iter()
                .map(|(k, v)| {
                    (
                        k.trim().trim_end_matches('.').to_ascii_lowercase(),
                        v.clone(),
                    )
                })
                .collect()
        };
        let routes = lower(cfg.map("remote.routes"));
        for (dest, hosts) in &routes {
            if hosts.is_empty() {
                errors.push(format!("remote.routes: {dest:?} has no host"));
            }
            for h in hosts {
                if let Err(e) = crate::remote::route::parse_host_port(h) {
                    errors.push(format!("remote.routes: {dest:?}: {e}"));
                }
            }
        }
        let mut tls_policy = BTreeMap::new();
        for (dest, v) in lower(cfg.map("remote.tls_policy")) {
            match v.as_slice() {
                [one] => match TlsLevel::parse(one) {
                    Some(l) => {
                        tls_policy.insert(dest, l);
                    }
                    None => errors.push(format!(
                        "remote.tls_policy: {dest:?}: {one:?} is not none, may, encrypt or verify"
                    )),
                },
                _ => errors.push(format!(
                    "remote.tls_policy: {dest:?}: give one level, such as [\"verify\"]"
                )),
            }
        }
        let mut auth = BTreeMap::new();
        for (dest, v) in lower(cfg.map("remote.auth")) {
            match v.as_slice() {
                [u, p] => {
                    auth.insert(dest, (u.clone(), Secret::from(p.as_str())));
                }
                _ => errors.push(format!(
                    "remote.auth: {dest:?}: give [\"user\", \"password\"]"
                )),
            }
        }
        let mut auth_unverified = std::collections::BTreeSet::new();
        for d in cfg.list("remote.auth_unverified") {
            let dest = d.trim().trim_end_matches('.').to_ascii_lowercase();
            if !auth.contains_key(&dest) {
                errors.push(format!(
                    "remote.auth_unverified: {d:?} has no credentials in remote.auth"
                ));
            }
            auth_unverified.insert(dest);
        }
        let mut dns_servers = Vec::new();
        for d in cfg.list("remote.dns_servers") {
            let parsed = d
                .parse::<std::net::SocketAddr>()
                .or_else(|_| d.parse::<std::net::IpAddr>().map(|ip| (ip, 53).into()));
            match parsed {
                Ok(a) => dns_servers.push(a),
                Err(_) => errors.push(format!(
                    "remote.dns_servers: {d:?} is not an address such as \"192.0.2.53\" or \"127.0.0.1:5353\""
                )),
            }
        }
        let tls_level = TlsLevel::parse(cfg.str("remote.tls_level")).unwrap_or(TlsLevel::May);
        // The key is an Enum of exactly these words.
        let family = Family::parse(cfg.str("remote.address_family")).unwrap_or(Family::Any);
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Settings {
            helo_name,
            timeouts: Timeouts {
                connect: cfg.duration("remote.connect_timeout"),
                greeting: cfg.duration("remote.greeting_timeout"),
                command: cfg.duration("remote.command_timeout"),
                data_init: cfg.duration("remote.data_init_timeout"),
                data_block: cfg.duration("remote.data_block_timeout"),
                data_done: cfg.duration("remote.data_done_timeout"),
            },
            cache_time: cfg.duration("remote.connection_cache_time"),
            max_connections: cfg.usize("remote.max_connections").max(1),
            max_per_destination: cfg.usize("remote.max_per_destination").max(1),
            max_recipients: cfg.usize("remote.max_recipients").max(1),
            routes,
            tls_level,
            tls_policy,
            tls_ca_file: cfg.str("remote.tls_ca_file").to_string(),
            auth,
            auth_unverified,
            smtp_port: u16::try_from(cfg.u64("remote.smtp_port")).unwrap_or(25),
            dns_servers,
            family,
        })
    }

    /// The TLS level for a destination.
    pub fn tls_for(&self, dest: &str) -> TlsLevel {
        self.tls_policy.get(dest).copied().unwrap_or(self.tls_level)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(text: &str) -> Result<Settings, Vec<String>> {
        Settings::from_config(&Config::parse(text, "t.toml").unwrap())
    }

    #[test]
    fn auth_unverified_names_destinations_with_credentials() {
        let s = settings(
            "[remote]\nauth_unverified = [\"Relay.Example.\"]\n\
             [remote.auth]\n\"relay.example\" = [\"u\", \"p\"]\n",
        )
        .unwrap();
        assert!(s.auth_unverified.contains("relay.example"));
        assert!(!format!("{s:?}").contains("\"p\""), "{s:?}");
        assert_eq!(s.auth["relay.example"].1.as_bytes(), b"p");
        assert!(settings("").unwrap().auth_unverified.is_empty());
        let e = settings("[remote]\nauth_unverified = [\"typo.example\"]\n").unwrap_err();
        assert!(
            e.iter().any(|e| e.contains("remote.auth_unverified")
                && e.contains("typo.example")
                && e.contains("no credentials")),
            "{e:?}"
        );
    }
}
