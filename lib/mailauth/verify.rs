//! The checks of kmp-smtpd at the end of DATA, before the 250: SPF (RFC
//! 7208) of the HELO and MAIL FROM identities, DKIM (RFC 6376), ARC (RFC
//! 8617, recorded only), DMARC (RFC 7489) with its policy applied, and one
//! Authentication-Results header (RFC 8601) saying what was found.
//!
//! mail-auth does the protocol work with its hickory resolver; this module
//! decides what the results mean for the message ([`Decision`]), as the
//! `[auth]` keys say. It is async and asks DNS; it never touches the queue.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use mail_auth::common::headers::HeaderWriter;
use mail_auth::dmarc::verify::DmarcParameters;
use mail_auth::dmarc::Policy;
use mail_auth::spf::verify::SpfParameters;
use mail_auth::{
    AuthenticatedMessage, AuthenticationResults, DkimOutput, DkimResult, DmarcResult,
    MessageAuthenticator, Parameters, RecordSet, SpfOutput, SpfResult, Txt, MX,
};

use super::cache::Bounded;
use super::header::{self, JUNK_HEADER};
use crate::config::Config;
use crate::net::Cidr;

/// What a DMARC failure under a policy gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyAction {
    Reject,
    Quarantine,
    Tag,
}

/// The checks' settings, read once from the validated configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    pub spf: bool,
    pub dkim: bool,
    pub arc: bool,
    pub dmarc: bool,
    pub dmarc_reject: PolicyAction,
    pub dmarc_quarantine: PolicyAction,
    pub spf_fail_rejects: bool,
    pub temp_error_defers: bool,
    pub skip_networks: Vec<Cidr>,
    pub authserv_id: String,
    pub dns_servers: Vec<SocketAddr>,
    pub dns_timeout: Duration,
    pub cache_entries: usize,
}

impl Settings {
    /// The settings `cfg` describes; an unreadable `auth.dns_servers` entry
    /// is an error naming it.
    pub fn from_config(cfg: &Config) -> Result<Settings, String> {
        let action = |k: &str| match cfg.str(k) {
            "reject" => PolicyAction::Reject,
            "quarantine" => PolicyAction::Quarantine,
            _ => PolicyAction::Tag,
        };
        let authserv_id = match cfg.str("auth.authserv_id") {
            "" => cfg.str("system.hostname").to_string(),
            s => s.to_string(),
        };
        Ok(Settings {
            spf: cfg.bool("auth.spf"),
            dkim: cfg.bool("auth.dkim"),
            arc: cfg.bool("auth.arc"),
            dmarc: cfg.bool("auth.dmarc"),
            dmarc_reject: action("auth.dmarc_reject"),
            dmarc_quarantine: action("auth.dmarc_quarantine"),
            spf_fail_rejects: cfg.str("auth.spf_fail") == "reject",
            temp_error_defers: cfg.str("auth.temp_error") == "tempfail",
            skip_networks: cfg.nets("auth.skip_networks"),
            authserv_id,
            dns_servers: dns_servers(cfg.list("auth.dns_servers"))?,
            dns_timeout: cfg.duration("auth.dns_timeout"),
            cache_entries: cfg.usize("auth.cache_entries"),
        })
    }

    /// Whether any check is on.
    pub fn any(&self) -> bool {
        self.spf || self.dkim || self.arc || self.dmarc
    }
}

/// `auth.dns_servers` as socket addresses (port 53 unless given).
pub fn dns_servers(list: &[String]) -> Result<Vec<SocketAddr>, String> {
    list.iter()
        .map(|d| {
            d.parse::<SocketAddr>()
                .or_else(|_| d.parse::<IpAddr>().map(|ip| SocketAddr::new(ip, 53)))
                .map_err(|_| {
                    format!("auth.dns_servers: {d:?} is not an address such as \"192.0.2.53\" or \"127.0.0.1:5353\"")
                })
        })
        .collect()
}

/// A hickory resolver asking `servers` (or /etc/resolv.conf's), each
/// question bounded by `timeout`.
pub fn authenticator(
    servers: &[SocketAddr],
    timeout: Duration,
) -> Result<MessageAuthenticator, String> {
    use mail_auth::hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig};
    use mail_auth::hickory_resolver::net::runtime::TokioRuntimeProvider;
    use mail_auth::hickory_resolver::TokioResolver;
    let mut builder = if servers.is_empty() {
        TokioResolver::builder_tokio().map_err(|e| e.to_string())?
    } else {
        let ns = servers
            .iter()
            .map(|a| {
                let (mut udp, mut tcp) = (ConnectionConfig::udp(), ConnectionConfig::tcp());
                udp.port = a.port();
                tcp.port = a.port();
                NameServerConfig::new(a.ip(), true, vec![udp, tcp])
            })
            .collect();
        TokioResolver::builder_with_config(
            ResolverConfig::from_name_servers(ns),
            TokioRuntimeProvider::default(),
        )
    };
    builder.options_mut().timeout = timeout;
    builder.options_mut().attempts = 2;
    Ok(MessageAuthenticator(
        builder.build().map_err(|e| e.to_string())?,
    ))
}

/// Who sent the message, as the session knows it.
#[derive(Debug, Clone)]
pub struct Client<'a> {
    pub ip: IpAddr,
    /// The HELO/EHLO argument.
    pub helo: &'a str,
    /// The MAIL FROM address; empty for the null reverse path.
    pub mail_from: &'a str,
}

/// What becomes of the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Deliver,
    /// Deliver, marked for Junk.
    Quarantine(String),
    /// 550 at the end of DATA, with this enhanced code and text.
    Reject(&'static str, String),
    /// 451 at the end of DATA.
    Defer(String),
}

/// The checks' verdict and the headers to add on top of the message.
#[derive(Debug, Clone)]
pub struct Decision {
    pub outcome: Outcome,
    /// Authentication-Results (and X-Kmpromail-Junk), LF line ends.
    pub headers: String,
    /// One line for the log: `spf=pass dkim=fail dmarc=fail (reject)`.
    pub summary: String,
}

type Caches = (
    Bounded<Box<str>, Txt>,
    Bounded<Box<str>, RecordSet<MX>>,
    Bounded<Box<str>, RecordSet<Ipv4Addr>>,
    Bounded<Box<str>, RecordSet<Ipv6Addr>>,
    Bounded<IpAddr, RecordSet<Box<str>>>,
);

/// mail-auth's parameters with our caches.
type Cached<'a, P> = Parameters<
    'a,
    P,
    Bounded<Box<str>, Txt>,
    Bounded<Box<str>, RecordSet<MX>>,
    Bounded<Box<str>, RecordSet<Ipv4Addr>>,
    Bounded<Box<str>, RecordSet<Ipv6Addr>>,
    Bounded<IpAddr, RecordSet<Box<str>>>,
>;

/// The checks of one kmp-smtpd, with their resolver and caches.
pub struct Checker {
    pub settings: Settings,
    auth: MessageAuthenticator,
    caches: Caches,
}

impl std::fmt::Debug for Checker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checker")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Checker {
    /// A checker for `settings` (its resolver is made here, which needs a
    /// tokio runtime only when it is used).
    pub fn new(settings: Settings) -> Result<Checker, String> {
        let auth = authenticator(&settings.dns_servers, settings.dns_timeout)?;
        let n = settings.cache_entries;
        Ok(Checker {
            auth,
            caches: (
                Bounded::new(n),
                Bounded::new(n),
                Bounded::new(n),
                Bounded::new(n),
                Bounded::new(n),
            ),
            settings,
        })
    }

    /// Whether mail from `ip` is checked at all (authenticated clients and
    /// relay networks are the caller's to exclude).
    pub fn applies(&self, ip: IpAddr) -> bool {
        self.settings.any() && !self.settings.skip_networks.iter().any(|n| n.contains(ip))
    }

    /// Checks `msg` (the queue's LF form, without our Received header).
    pub async fn check(&self, client: &Client<'_>, msg: &[u8]) -> Decision {
        let limit = self.settings.dns_timeout * 4;
        match tokio::time::timeout(limit, self.run(client, msg)).await {
            Ok(d) => d,
            Err(_) => {
                let outcome = if self.settings.temp_error_defers {
                    Outcome::Defer("the sender's DNS did not answer in time".into())
                } else {
                    Outcome::Deliver
                };
                Decision {
                    outcome,
                    headers: format!(
                        "Authentication-Results: {};\n\tnone (checks timed out)\n",
                        self.settings.authserv_id
                    ),
                    summary: "timeout".into(),
                }
            }
        }
    }

    fn params<P>(&self, p: P) -> Cached<'_, P> {
        Parameters::new(p)
            .with_txt_cache(&self.caches.0)
            .with_mx_cache(&self.caches.1)
            .with_ipv4_cache(&self.caches.2)
            .with_ipv6_cache(&self.caches.3)
            .with_ptr_cache(&self.caches.4)
    }

    async fn run(&self, client: &Client<'_>, msg: &[u8]) -> Decision {
        let s = &self.settings;
        let host = s.authserv_id.as_str();
        let wire = header::crlf(msg);
        let Some(am) = AuthenticatedMessage::parse(&wire) else {
            return Decision {
                outcome: Outcome::Deliver,
                headers: format!("Authentication-Results: {host}; none\n"),
                summary: "unparsable".into(),
            };
        };
        let helo = client.helo;
        let helo_is_name = !helo.starts_with('[') && helo.contains('.');
        let mut ar = AuthenticationResults::new(host);
        let mut summary = Vec::new();
        let mut temp = false;

        // SPF: HELO first (RFC 7208 2.3), then MAIL FROM; for the null
        // reverse path the HELO identity stands for it (2.4).
        let mail_from_domain = client
            .mail_from
            .rsplit_once('@')
            .map_or(helo, |(_, d)| d)
            .to_lowercase();
        let spf_mf = if s.spf {
            let spf_helo = if helo_is_name {
                let o = self
                    .auth
                    .verify_spf(self.params(SpfParameters::verify_ehlo(client.ip, helo, host)))
                    .await;
                ar = ar.with_spf_ehlo_result(&o, client.ip, helo);
                Some(o)
            } else {
                None
            };
            let mf = if client.mail_from.is_empty() {
                spf_helo.clone()
            } else {
                Some(
                    self.auth
                        .verify_spf(self.params(SpfParameters::verify_mail_from(
                            client.ip,
                            helo,
                            host,
                            client.mail_from,
                        )))
                        .await,
                )
            };
            if let Some(o) = &mf {
                if !client.mail_from.is_empty() || !helo_is_name {
                    ar = ar.with_spf_mailfrom_result(o, client.ip, client.mail_from, helo);
                }
                summary.push(format!("spf={}", spf_word(o.result())));
                temp |= o.result() == SpfResult::TempError;
            }
            mf
        } else {
            None
        };

        // DKIM, every signature.
        let dkim: Vec<DkimOutput<'_>> = if s.dkim || s.dmarc {
            self.auth.verify_dkim(self.params(&am)).await
        } else {
            Vec::new()
        };
        if s.dkim {
            ar = ar.with_dkim_results(&dkim, am.from());
            let words: Vec<&str> = dkim.iter().map(|o| dkim_word(o.result())).collect();
            summary.push(format!(
                "dkim={}",
                if words.is_empty() {
                    "none".to_string()
                } else {
                    words.join(",")
                }
            ));
            temp |= !dkim.is_empty()
                && dkim
                    .iter()
                    .all(|o| matches!(o.result(), DkimResult::TempError(_)));
        }

        // ARC: recorded, not acted on.
        if s.arc {
            let arc = self.auth.verify_arc(self.params(&am)).await;
            if !arc.sets().is_empty() || *arc.result() != DkimResult::None {
                ar = ar.with_arc_result(&arc, client.ip);
                summary.push(format!("arc={}", dkim_word(arc.result())));
            }
        }

        // DMARC for the From domain, with its policy applied.
        let mut outcome = Outcome::Deliver;
        let mut dmarc_pass = false;
        if s.dmarc {
            let none = SpfOutput::new(mail_from_domain.clone());
            let spf_for_dmarc = spf_mf.as_ref().unwrap_or(&none);
            let d = self
                .auth
                .verify_dmarc(self.params(DmarcParameters::new(
                    &am,
                    &dkim,
                    &mail_from_domain,
                    spf_for_dmarc,
                )))
                .await;
            ar = ar.with_dmarc_result(&d);
            let result = d.result();
            dmarc_pass = result == DmarcResult::Pass;
            let policy = d.policy();
            summary.push(format!("dmarc={}", dmarc_word(&result)));
            match result {
                DmarcResult::Fail(_) => {
                    let action = match policy {
                        Policy::Reject => s.dmarc_reject,
                        Policy::Quarantine => s.dmarc_quarantine,
                        Policy::None | Policy::Unspecified => PolicyAction::Tag,
                    };
                    let domain = d.domain().to_string();
                    outcome = match action {
                        PolicyAction::Reject => Outcome::Reject(
                            "5.7.1",
                            format!("DMARC policy of {domain} rejects this message"),
                        ),
                        PolicyAction::Quarantine => {
                            Outcome::Quarantine(format!("DMARC quarantine policy of {domain}"))
                        }
                        PolicyAction::Tag => Outcome::Deliver,
                    };
                    summary.push(format!("({})", policy_word(policy)));
                }
                DmarcResult::TempError(_) => temp = true,
                _ => {}
            }
        }
        if outcome == Outcome::Deliver && !dmarc_pass {
            if let Some(o) = &spf_mf {
                if s.spf_fail_rejects && o.result() == SpfResult::Fail {
                    outcome = Outcome::Reject(
                        "5.7.23",
                        format!("SPF of {} does not allow {}", o.domain(), client.ip),
                    );
                }
            }
        }
        if temp && !dmarc_pass && s.temp_error_defers && matches!(outcome, Outcome::Deliver) {
            outcome = Outcome::Defer("a DNS error in the sender's checks; try again later".into());
        }
        let mut headers = header::to_lf(&ar.to_header());
        if s.dkim && dkim.is_empty() {
            // RFC 8601 2.7.1: "none" when the message was not signed.
            if let Some(h) = headers.strip_suffix('\n') {
                headers = format!("{h};\n\tdkim=none\n");
            }
        }
        if let Outcome::Quarantine(why) = &outcome {
            headers.push_str(&format!("{JUNK_HEADER}: yes ({why})\n"));
        }
        Decision {
            outcome,
            headers,
            summary: summary.join(" "),
        }
    }
}

fn spf_word(r: SpfResult) -> &'static str {
    match r {
        SpfResult::Pass => "pass",
        SpfResult::Fail => "fail",
        SpfResult::SoftFail => "softfail",
        SpfResult::Neutral => "neutral",
        SpfResult::TempError => "temperror",
        SpfResult::PermError => "permerror",
        SpfResult::None => "none",
    }
}

fn dkim_word(r: &DkimResult) -> &'static str {
    match r {
        DkimResult::Pass => "pass",
        DkimResult::Neutral(_) => "neutral",
        DkimResult::Fail(_) => "fail",
        DkimResult::PermError(_) => "permerror",
        DkimResult::TempError(_) => "temperror",
        DkimResult::None => "none",
    }
}

fn dmarc_word(r: &DmarcResult) -> &'static str {
    match r {
        DmarcResult::Pass => "pass",
        DmarcResult::Fail(_) => "fail",
        DmarcResult::TempError(_) => "temperror",
        DmarcResult::PermError(_) => "permerror",
        DmarcResult::None => "none",
    }
}

fn policy_word(p: Policy) -> &'static str {
    match p {
        Policy::Reject => "reject",
        Policy::Quarantine => "quarantine",
        Policy::None | Policy::Unspecified => "none",
    }
}
