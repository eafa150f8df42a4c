//! Checks at the SMTP door (issue 19, second part), for kmp-smtpd:
//!
//! - at RCPT ([`Scanner::recipient`]): the user's block list (550 5.7.1),
//!   the connection checks of [`conn`] (DNSBL/DNSWL weights, reverse DNS,
//!   HELO; 554 5.7.1 from `scan.dnsbl_threshold` on, otherwise their score
//!   goes into the message's), and greylisting ([`greylist`], the table in
//!   kmp-authd; 451 4.7.1);
//! - at the end of DATA ([`Scanner::message`]): spamd ([`spamd`]), rspamd
//!   ([`rspamd`]) and clamd ([`clamd`]) on the held message, and
//!   [`verdict`]: refuse (550 5.7.1
//!   spam, 554 5.7.0 virus, 451 4.7.1 scanner down under `tempfail`) or
//!   accept with the `X-Spam-*` headers and, for spam, `X-Kmpromail-Junk`,
//!   which kmp-local turns into filing into Junk.
//!
//! None of it applies to authenticated submission or relay networks: the
//! caller asks [`Scanner::applies`]. Settings are `[scan]`; per domain and
//! per user they come with kmp-authd's recipient lookup
//! ([`crate::ipc::authd::SpamPrefs`]).

pub mod clamd;
pub mod conn;
pub mod greylist;
pub mod rspamd;
pub mod senders;
pub mod socket;
pub mod spamd;
pub mod verdict;

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use hickory_resolver::TokioResolver;

use crate::config::Config;
use crate::ipc::authd::SpamPrefs;
use crate::net::Cidr;
use crate::proto::smtp::reply::Reply;
use socket::Address;
pub use verdict::{Outcome, JUNK_HEADER};

/// What a connection check does when it fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckMode {
    Off,
    Score,
    Reject,
}

impl CheckMode {
    fn parse(s: &str) -> CheckMode {
        match s {
            "score" => CheckMode::Score,
            "reject" => CheckMode::Reject,
            _ => CheckMode::Off,
        }
    }
}

/// `[scan]`, validated.
#[derive(Debug, Clone)]
pub struct Settings {
    pub hostname: String,
    pub spamd: Option<Address>,
    pub spamd_user: String,
    pub rspamd: Option<Address>,
    pub clamd: Option<Address>,
    pub connect_timeout: Duration,
    pub timeout: Duration,
    pub tempfail: bool,
    pub max_size: u64,
    pub tag_score: u32,
    pub reject_score: u32,
    pub zones: Vec<conn::Zone>,
    pub threshold: i64,
    pub fcrdns: CheckMode,
    pub fcrdns_score: i64,
    pub helo: CheckMode,
    pub helo_score: i64,
    pub dns_servers: Vec<SocketAddr>,
    pub dns_cache_size: usize,
    pub greylist: bool,
    pub greylist_rules: greylist::Rules,
    pub greylist_nets: Vec<Cidr>,
    /// Lower-case; a leading dot covers subdomains.
    pub greylist_domains: Vec<String>,
    pub ipv6_prefix: u8,
}

impl Settings {
    /// The settings of `cfg`, or every problem found.
    pub fn from_config(cfg: &Config) -> Result<Settings, Vec<String>> {
        let mut problems = Vec::new();
        let mut addr = |key: &str| match Address::parse(cfg.str(key)) {
            Ok(a) => a,
            Err(e) => {
                problems.push(format!("{key}: {e}"));
                None
            }
        };
        let spamd = addr("scan.spamd");
        let rspamd = addr("scan.rspamd");
        let clamd = addr("scan.clamd");
        let zones = conn::parse_zones(cfg.list("scan.dnsbl")).unwrap_or_else(|e| {
            problems.push(e);
            Vec::new()
        });
        let mut dns_servers = Vec::new();
        for s in cfg.list("scan.dns_servers") {
            match parse_server(s) {
                Some(a) => dns_servers.push(a),
                None => problems.push(format!(
                    "scan.dns_servers: {s:?} is not \"ip\" or \"ip:port\""
                )),
            }
        }
        let mut greylist_nets = Vec::new();
        let mut greylist_domains = Vec::new();
        for w in cfg.list("scan.greylist_whitelist") {
            if w.contains('/') || w.parse::<IpAddr>().is_ok() {
                match w.parse::<Cidr>() {
                    Ok(c) => greylist_nets.push(c),
                    Err(e) => problems.push(format!("scan.greylist_whitelist: {e}")),
                }
            } else {
                greylist_domains.push(w.trim().to_ascii_lowercase());
            }
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        let secs = |k: &str| cfg.duration(k).as_secs();
        Ok(Settings {
            hostname: cfg.str("system.hostname").to_string(),
            spamd,
            spamd_user: cfg.str("scan.spamd_user").to_string(),
            rspamd,
            clamd,
            connect_timeout: cfg.duration("scan.connect_timeout"),
            timeout: cfg.duration("scan.timeout"),
            tempfail: cfg.str("scan.on_failure") == "tempfail",
            max_size: cfg.u64("scan.max_size"),
            tag_score: cfg.u64("scan.tag_score") as u32,
            reject_score: cfg.u64("scan.reject_score") as u32,
            zones,
            threshold: cfg.u64("scan.dnsbl_threshold") as i64,
            fcrdns: CheckMode::parse(cfg.str("scan.fcrdns")),
            fcrdns_score: cfg.u64("scan.fcrdns_score") as i64,
            helo: CheckMode::parse(cfg.str("scan.helo")),
            helo_score: cfg.u64("scan.helo_score") as i64,
            dns_servers,
            dns_cache_size: cfg.usize("scan.dns_cache_size"),
            greylist: cfg.bool("scan.greylist"),
            greylist_rules: greylist::Rules {
                delay: secs("scan.greylist_delay"),
                retry_window: secs("scan.greylist_retry_window"),
                lifetime: secs("scan.greylist_lifetime"),
                auto_whitelist: cfg.u64("scan.greylist_auto_whitelist"),
            },
            greylist_nets,
            greylist_domains,
            ipv6_prefix: cfg.u64("system.ipv6_prefix").min(128) as u8,
        })
    }

    /// Whether any content scanner is configured (the message is held).
    pub fn scans_content(&self) -> bool {
        self.spamd.is_some() || self.rspamd.is_some() || self.clamd.is_some()
    }

    fn checks_connection(&self) -> bool {
        !self.zones.is_empty() || self.fcrdns != CheckMode::Off || self.helo != CheckMode::Off
    }
}

/// What `kmpctl check` says about `[scan]`: values kmp-smtpd cannot use
/// (it leaves those parts off), and scanners configured but not answering.
pub fn check_warnings(cfg: &Config) -> Vec<String> {
    let s = match Settings::from_config(cfg) {
        Ok(s) => s,
        Err(problems) => return problems,
    };
    let mut out = Vec::new();
    let action = if s.tempfail {
        "mail is refused with 451 4.7.1"
    } else {
        "mail is accepted unchecked"
    };
    for (key, addr) in [
        ("scan.spamd", &s.spamd),
        ("scan.rspamd", &s.rspamd),
        ("scan.clamd", &s.clamd),
    ] {
        if let Some(a) = addr {
            if let Err(e) = socket::Conn::open(a, Duration::from_secs(2), Duration::from_secs(2)) {
                out.push(format!(
                    "{key}: nothing answers at {a} ({e}): {action} until it does"
                ));
            }
        }
    }
    out
}

/// The DNS lists [`small_isp`] turns on: Spamhaus ZEN (a listing alone
/// refuses), SpamCop (half of that) and DNSWL (an allow list).
pub const SMALL_ISP_DNSBL: &str = "zen.spamhaus.org 10, bl.spamcop.net 5, list.dnswl.org -5";

/// Where Debian's scanners listen out of the box.
const DEBIAN_SPAMD: &str = "127.0.0.1:783";
const DEBIAN_RSPAMD: &str = "127.0.0.1:11333";
const DEBIAN_CLAMD: &str = "/run/clamav/clamd.ctl";

/// Sets in `cfg` the checks at the door a small ISP would turn on
/// (`kmpctl init --spam-checks`, the demo): HELO and reverse DNS scored,
/// not refused (a home server with a bad PTR still gets its mail through
/// unless the content is spammy too); the DNS lists of
/// [`SMALL_ISP_DNSBL`]; and the content scanners that `installed` (a
/// program path) says are there, at Debian's addresses: spamd, else
/// rspamd, and clamd. A scanner installed but not running lets mail
/// through marked unchecked (`scan.on_failure = accept`), and `kmpctl
/// check` says so. Greylisting stays off: it delays every new
/// correspondent's first mail, a choice for the admin to make. The
/// sender checks (`[auth]`) are on by default already. Returns one line
/// per scanner left off, for the admin.
pub fn small_isp(
    cfg: &mut Config,
    installed: &dyn Fn(&str) -> bool,
) -> Result<Vec<String>, String> {
    cfg.set("scan.helo", "score")?;
    cfg.set("scan.fcrdns", "score")?;
    cfg.set("scan.dnsbl", SMALL_ISP_DNSBL)?;
    let mut off: Vec<String> = Vec::new();
    if installed("/usr/sbin/spamd") {
        cfg.set("scan.spamd", DEBIAN_SPAMD)?;
    } else if installed("/usr/bin/rspamd") {
        cfg.set("scan.rspamd", DEBIAN_RSPAMD)?;
    } else {
        off.push(
            "spam scanning off: neither spamd (apt-get install spamd) nor rspamd is installed"
                .into(),
        );
    }
    if installed("/usr/sbin/clamd") {
        cfg.set("scan.clamd", DEBIAN_CLAMD)?;
    } else {
        off.push(
            "virus scanning off: clamd is not installed (apt-get install clamav-daemon)".into(),
        );
    }
    Ok(off)
}

/// `ip` or `ip:port` (port 53).
fn parse_server(s: &str) -> Option<SocketAddr> {
    s.parse::<SocketAddr>()
        .ok()
        .or_else(|| s.parse::<IpAddr>().ok().map(|ip| SocketAddr::new(ip, 53)))
}

/// What the connection checks found for one client.
#[derive(Debug, Clone, Default)]
pub struct ConnVerdict {
    pub score: i64,
    pub tests: Vec<String>,
    /// Refused outright (a `reject` mode check, or the threshold reached).
    pub refuse: Option<(Reply, String)>,
}

/// What the session's recipients asked for, gathered at RCPT.
#[derive(Debug, Clone, Default)]
pub struct Gathered {
    pub tag: Option<u32>,
    pub reject: Option<Option<u32>>,
    pub allowed: bool,
    /// Every recipient so far has the connection checks on.
    pub conn_all: bool,
    pub recipients: usize,
    pub single: Option<String>,
}

/// The scanning side of kmp-smtpd, shared by its sessions.
pub struct Scanner {
    pub settings: Settings,
    /// Made on first use, inside the runtime.
    resolver: OnceLock<Option<TokioResolver>>,
    cache: conn::Cache,
}

impl std::fmt::Debug for Scanner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scanner")
            .field("settings", &self.settings)
            .finish()
    }
}

impl Scanner {
    pub fn new(settings: Settings) -> Arc<Scanner> {
        let cache = conn::Cache::new(settings.dns_cache_size);
        Arc::new(Scanner {
            settings,
            resolver: OnceLock::new(),
            cache,
        })
    }

    /// The scanner of `cfg`; its problems are logged and the parts they
    /// concern left off (kmpctl check reports them before a start).
    pub fn from_config(cfg: &Config) -> Arc<Scanner> {
        match Settings::from_config(cfg) {
            Ok(s) => Scanner::new(s),
            Err(problems) => {
                for p in problems {
                    crate::error!("{p}");
                }
                let mut c = cfg.clone();
                for k in [
                    "scan.spamd",
                    "scan.rspamd",
                    "scan.clamd",
                    "scan.dnsbl",
                    "scan.dns_servers",
                    "scan.greylist_whitelist",
                ] {
                    let _ = c.set(k, "");
                }
                Scanner::new(Settings::from_config(&c).unwrap_or_else(|_| {
                    // Invariant: the keys that can fail were emptied.
                    unreachable!("scan settings without the failing keys")
                }))
            }
        }
    }

    /// Whether messages are held for scanning (content scanners, or a
    /// connection score to write into the headers).
    pub fn holds(&self) -> bool {
        self.settings.scans_content() || self.settings.checks_connection()
    }

    fn resolver(&self) -> Option<&TokioResolver> {
        self.resolver
            .get_or_init(|| {
                match crate::remote::route::resolver(
                    &self.settings.dns_servers,
                    crate::remote::settings::Family::Any,
                ) {
                    Ok(r) => Some(r),
                    Err(e) => {
                        crate::warn!("scan: no resolver for the connection checks: {e}");
                        None
                    }
                }
            })
            .as_ref()
    }

    /// Whether the checks apply to a session: port 25, not logged in, not
    /// from a relay network.
    pub fn applies(mx: bool, authenticated: bool, relay: bool) -> bool {
        mx && !authenticated && !relay
    }

    /// The block list of one recipient: a refusal when it names the sender.
    pub fn blocked(prefs: &SpamPrefs, sender: &str) -> Option<Reply> {
        senders::matches(&prefs.block_senders, sender).then(|| {
            Reply::new(
                550,
                "5.7.1",
                "Sender address rejected: blocked by the recipient",
            )
        })
    }

    /// The connection checks for a client (DNS answers cached).
    pub async fn connection(&self, ip: IpAddr, local: Option<IpAddr>, helo: &str) -> ConnVerdict {
        let s = &self.settings;
        let mut v = ConnVerdict::default();
        if !s.checks_connection() {
            return v;
        }
        let dns = match self.cache.get(ip) {
            Some(d) => d,
            None => match self.resolver() {
                Some(r) => {
                    let d = conn::lookup(r, ip, &s.zones, s.fcrdns != CheckMode::Off).await;
                    self.cache.put(ip, d.clone());
                    d
                }
                None => conn::DnsResult::default(),
            },
        };
        for z in &dns.listed {
            v.score += z.weight;
            v.tests.push(format!("KMP_DNSBL_{}", z.name));
        }
        let lit = crate::net::literal(ip);
        if dns.fcrdns == Some(false) {
            match s.fcrdns {
                CheckMode::Reject => {
                    v.refuse = Some((
                        Reply::owned(
                            550,
                            "5.7.25",
                            format!("Client host [{lit}] has no forward-confirmed reverse DNS"),
                        ),
                        "fcrdns".into(),
                    ))
                }
                CheckMode::Score => {
                    v.score += s.fcrdns_score;
                    v.tests.push("KMP_NO_FCRDNS".into());
                }
                CheckMode::Off => {}
            }
        }
        if let Some(t) = conn::helo_problem(helo, &s.hostname, local) {
            match s.helo {
                CheckMode::Reject if v.refuse.is_none() => {
                    v.refuse = Some((
                        Reply::new(550, "5.7.1", "Helo command rejected: bad host name"),
                        t.to_ascii_lowercase(),
                    ))
                }
                CheckMode::Score => {
                    v.score += s.helo_score;
                    v.tests.push(t.into());
                }
                _ => {}
            }
        }
        if v.refuse.is_none() && v.score >= s.threshold {
            let zones: Vec<&str> = dns.listed.iter().map(|z| z.name.as_str()).collect();
            let text = if zones.is_empty() {
                format!(
                    "Service unavailable; client host [{lit}] refused (score {})",
                    v.score
                )
            } else {
                format!(
                    "Service unavailable; client host [{lit}] blocked using {}",
                    zones.join(", ")
                )
            };
            v.refuse = Some((
                Reply::owned(554, "5.7.1", text),
                format!("connection score={} tests={}", v.score, v.tests.join(",")),
            ));
        }
        v
    }

    /// The greylisting question for kmp-authd, or None when the client or
    /// the sender's domain is whitelisted (or greylisting is off).
    pub fn greylist_request(
        &self,
        ip: IpAddr,
        sender: &str,
        recipient: &str,
    ) -> Option<crate::ipc::authd::Request> {
        let s = &self.settings;
        if !s.greylist || s.greylist_nets.iter().any(|n| n.contains(ip)) {
            return None;
        }
        let domain = sender
            .rsplit_once('@')
            .map(|(_, d)| d.to_ascii_lowercase())
            .unwrap_or_default();
        let listed = !domain.is_empty()
            && s.greylist_domains
                .iter()
                .any(|d| match d.strip_prefix('.') {
                    Some(parent) => domain == parent || domain.ends_with(d.as_str()),
                    None => domain == *d,
                });
        if listed {
            return None;
        }
        // IPv4 by /24, IPv6 by the configured prefix (/64 by default).
        let net = match ip.to_canonical() {
            IpAddr::V4(a) => {
                let o = a.octets();
                format!("{}.{}.{}.0/24", o[0], o[1], o[2])
            }
            v6 => crate::net::client_net(v6, s.ipv6_prefix.min(64)).to_string(),
        };
        Some(crate::ipc::authd::Request::Greylist {
            net,
            sender: sender.to_string(),
            recipient: recipient.to_string(),
            rules: s.greylist_rules,
        })
    }

    /// Adds one accepted recipient's settings to what the message is judged by.
    pub fn gather(&self, g: &mut Gathered, address: &str, prefs: Option<&SpamPrefs>, sender: &str) {
        let s = &self.settings;
        let tag = prefs.and_then(|p| p.tag_score).unwrap_or(s.tag_score);
        let reject = prefs.and_then(|p| p.reject_score).unwrap_or(s.reject_score);
        let allowed = prefs.is_some_and(|p| senders::matches(&p.allow_senders, sender));
        let conn = prefs.and_then(|p| p.dnsbl).unwrap_or(true);
        g.tag = Some(g.tag.map_or(tag, |t| t.min(tag)));
        let reject = (reject > 0).then_some(reject);
        g.reject = Some(match g.reject {
            None => reject,
            Some(prev) => prev.zip(reject).map(|(a, b)| a.max(b)),
        });
        g.allowed |= allowed;
        g.conn_all = if g.recipients == 0 {
            conn
        } else {
            g.conn_all && conn
        };
        g.recipients += 1;
        g.single = (g.recipients == 1).then(|| address.to_string());
    }

    /// Scans a held message (blocking: run it on a blocking thread).
    /// `env` is what the session knows, for rspamd.
    pub fn message(
        &self,
        msg: &[u8],
        g: &Gathered,
        conn: Option<&ConnVerdict>,
        env: &rspamd::Envelope,
    ) -> Outcome {
        let s = &self.settings;
        let user = if s.spamd_user.is_empty() {
            g.single.clone()
        } else {
            Some(s.spamd_user.clone())
        };
        // clamd first: a virus is refused whatever the spam score.
        let virus = s
            .clamd
            .as_ref()
            .map(|a| clamd::check(a, msg, s.connect_timeout, s.timeout));
        let infected = matches!(virus, Some(Ok(clamd::Verdict::Virus(_))));
        let spam = match (&s.spamd, infected) {
            (Some(a), false) => Some(spamd::check(
                a,
                user.as_deref(),
                msg,
                s.connect_timeout,
                s.timeout,
            )),
            _ => None,
        };
        let rspamd = match (&s.rspamd, infected) {
            (Some(a), false) => {
                let env = rspamd::Envelope {
                    deliver_to: g.single.clone(),
                    ..env.clone()
                };
                Some(rspamd::check(a, &env, msg, s.connect_timeout, s.timeout))
            }
            _ => None,
        };
        let (conn_score, conn_tests) = match conn {
            Some(c) if g.conn_all => (c.score, c.tests.clone()),
            _ => (0, Vec::new()),
        };
        verdict::decide(&verdict::Inputs {
            spam,
            rspamd,
            virus,
            conn_score,
            conn_tests,
            tag: g.tag.unwrap_or(s.tag_score),
            reject: g
                .reject
                .unwrap_or((s.reject_score > 0).then_some(s.reject_score)),
            allowed: g.allowed,
            tempfail: s.tempfail,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_configuration_is_valid_and_scans_nothing() {
        let s = Settings::from_config(&Config::defaults()).unwrap();
        assert!(!s.scans_content());
        assert!(!s.checks_connection());
        assert!(!s.greylist);
    }

    #[test]
    fn a_small_isp_gets_the_scanners_it_has() {
        let mut cfg = Config::defaults();
        let off = small_isp(&mut cfg, &|p: &str| p.ends_with("rspamd")).unwrap();
        let s = Settings::from_config(&cfg).unwrap();
        assert_eq!(s.fcrdns, CheckMode::Score);
        assert_eq!(s.helo, CheckMode::Score);
        assert_eq!(s.zones.len(), 3);
        assert!(s.spamd.is_none() && s.clamd.is_none());
        assert_eq!(s.rspamd, Some(Address::Tcp(DEBIAN_RSPAMD.into())));
        assert_eq!(off.len(), 1, "{off:?}");
        let mut cfg = Config::defaults();
        assert!(small_isp(&mut cfg, &|_: &str| true).unwrap().is_empty());
        let s = Settings::from_config(&cfg).unwrap();
        assert!(s.spamd.is_some() && s.rspamd.is_none() && s.clamd.is_some());
        assert!(!s.greylist);
    }

    #[test]
    fn bad_addresses_and_zones_are_reported() {
        let mut cfg = Config::defaults();
        cfg.set("scan.spamd", "nowhere").unwrap();
        cfg.set("scan.dnsbl", "zen.example ten").unwrap();
        let e = Settings::from_config(&cfg).unwrap_err();
        assert_eq!(e.len(), 2, "{e:?}");
    }

    #[test]
    fn recipients_combine() {
        let mut cfg = Config::defaults();
        cfg.set("scan.greylist", "true").unwrap();
        cfg.set("scan.greylist_whitelist", "10.0.0.0/8,.friendly.test")
            .unwrap();
        let sc = Scanner::new(Settings::from_config(&cfg).unwrap());
        let mut g = Gathered::default();
        let strict = SpamPrefs {
            tag_score: Some(3),
            reject_score: Some(8),
            ..SpamPrefs::default()
        };
        sc.gather(&mut g, "a@x.test", Some(&strict), "s@y.test");
        assert_eq!((g.tag, g.reject), (Some(3), Some(Some(8))));
        sc.gather(&mut g, "b@x.test", None, "s@y.test");
        assert_eq!((g.tag, g.reject), (Some(3), Some(Some(15))));
        let never = SpamPrefs {
            reject_score: Some(0),
            allow_senders: vec!["@y.test".into()],
            dnsbl: Some(false),
            ..SpamPrefs::default()
        };
        sc.gather(&mut g, "c@x.test", Some(&never), "s@y.test");
        assert_eq!(g.reject, Some(None));
        assert!(g.allowed);
        assert!(!g.conn_all);
        assert!(sc
            .greylist_request("10.1.2.3".parse().unwrap(), "a@b.test", "u@x.test")
            .is_none());
        assert!(sc
            .greylist_request(
                "192.0.2.1".parse().unwrap(),
                "a@mx.friendly.test",
                "u@x.test"
            )
            .is_none());
        match sc.greylist_request("192.0.2.1".parse().unwrap(), "a@b.test", "u@x.test") {
            Some(crate::ipc::authd::Request::Greylist { net, .. }) => {
                assert_eq!(net, "192.0.2.0/24")
            }
            r => panic!("{r:?}"),
        }
    }
}
