//! Where mail for a domain goes: the static route table first
//! (`[remote.routes]`, `"*"` for a smarthost), else DNS as RFC 5321 section 5
//! says: MX records in preference order, in random order among equal
//! preferences, the domain's own A/AAAA records when there is no MX, and a
//! null MX (RFC 7505) meaning the domain takes no mail at all.
//!
//! DNS goes through hickory-resolver, whose cache keeps answers for their TTL.
//!
//! Both address families: each mail host's AAAA and A records are asked for
//! together, and its addresses are tried alternating, IPv6 first, before the
//! next host (MX order, with both families per host, rather than RFC 6555
//! racing: one attempt at a time keeps the per-destination limits exact,
//! and a broken family costs one connect timeout per host, not the
//! delivery). `remote.address_family` keeps to one family.

use std::net::{IpAddr, SocketAddr};

use hickory_resolver::proto::rr::RData;
use hickory_resolver::TokioResolver;
use rand::seq::SliceRandom;

use super::settings::{Family, Settings};

/// The most addresses tried for one destination in one attempt (Postfix's
/// smtp_mx_address_limit is 5; we allow a little more for dual stack).
pub const MAX_ADDRESSES: usize = 10;

/// How a destination is reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hosts {
    /// Hosts from the route table, in the order given.
    Static(Vec<(String, u16)>),
    /// MX lookup of this (ASCII) domain.
    Mx(String),
    /// A domain literal: `user@[192.0.2.1]`.
    Literal(IpAddr),
}

/// A recipient domain's route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// The destination: the key for concurrency limits, TLS policy and
    /// credentials (the domain, or `*` for the smarthost).
    pub dest: String,
    pub hosts: Hosts,
}

/// One address to try, with the name it was found under (for logs and for
/// checking the certificate).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub name: String,
    pub addr: SocketAddr,
}

/// Why there is nowhere to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteError {
    /// RFC 7505 null MX: bounce at once, 5.1.10.
    NullMx(String),
    /// The domain does not exist: 5.1.2.
    NoDomain(String),
    /// The domain's mail hosts have no address: 5.4.4.
    NoAddress(String),
    /// DNS failed for now: 4.4.3.
    Temporary(String),
}

impl RouteError {
    /// The enhanced status code (RFC 3463, RFC 7505 for the null MX).
    pub fn dsn(&self) -> &'static str {
        match self {
            RouteError::NullMx(_) => "5.1.10",
            RouteError::NoDomain(_) => "5.1.2",
            RouteError::NoAddress(_) => "5.4.4",
            RouteError::Temporary(_) => "4.4.3",
        }
    }

    pub fn is_temporary(&self) -> bool {
        matches!(self, RouteError::Temporary(_))
    }
}

impl std::fmt::Display for RouteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RouteError::NullMx(d) => write!(f, "Domain {d} does not accept mail (nullMX)"),
            RouteError::NoDomain(d) => {
                write!(f, "Host or domain name not found. Name service error for name={d} type=MX: Host not found")
            }
            RouteError::NoAddress(d) => write!(f, "No address found for the mail hosts of {d}"),
            RouteError::Temporary(m) => write!(f, "{m}"),
        }
    }
}

/// The domain of an address (after the last `@`), lower-cased.
pub fn domain_of(address: &str) -> String {
    address
        .rsplit_once('@')
        .map(|(_, d)| d)
        .unwrap_or("")
        .trim_end_matches('.')
        .to_ascii_lowercase()
}

/// The route for `domain`.
pub fn route_for(settings: &Settings, domain: &str) -> Route {
    let parse = |hosts: &Vec<String>| {
        Hosts::Static(
            hosts
                .iter()
                .filter_map(|h| parse_host_port(h).ok())
                .collect(),
        )
    };
    if let Some(hosts) = settings.routes.get(domain) {
        return Route {
            dest: domain.to_string(),
            hosts: parse(hosts),
        };
    }
    if let Some(lit) = domain.strip_prefix('[').and_then(|d| d.strip_suffix(']')) {
        let lit = lit.strip_prefix("ipv6:").unwrap_or(lit);
        if let Ok(ip) = lit.parse() {
            return Route {
                dest: domain.to_string(),
                hosts: Hosts::Literal(ip),
            };
        }
    }
    if let Some(hosts) = settings.routes.get("*") {
        return Route {
            dest: "*".to_string(),
            hosts: parse(hosts),
        };
    }
    let ascii = idna::domain_to_ascii(domain).unwrap_or_else(|_| domain.to_string());
    Route {
        dest: domain.to_string(),
        hosts: Hosts::Mx(ascii),
    }
}

/// `host`, `host:port`, `[v6]:port` or `[host]:port` → (host, port); port 25
/// by default.
pub fn parse_host_port(s: &str) -> Result<(String, u16), String> {
    let s = s.trim();
    let bad = || format!("{s:?} is not host:port");
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (h, after) = rest.split_once(']').ok_or_else(bad)?;
        match after {
            "" => (h, None),
            p => (h, Some(p.strip_prefix(':').ok_or_else(bad)?)),
        }
    } else if s.matches(':').count() > 1 {
        // A bare IPv6 address without a port.
        (s, None)
    } else {
        match s.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    };
    if host.is_empty() || host.contains(char::is_whitespace) {
        return Err(bad());
    }
    let port = match port {
        Some(p) => p.parse::<u16>().ok().filter(|&p| p != 0).ok_or_else(bad)?,
        None => 25,
    };
    Ok((host.to_string(), port))
}

/// A resolver with its cache: asking `servers`, or those of
/// /etc/resolv.conf when the list is empty, for the address records of
/// `family` (AAAA and A at once for both).
pub fn resolver(servers: &[SocketAddr], family: Family) -> Result<TokioResolver, String> {
    use hickory_resolver::config::{
        ConnectionConfig, LookupIpStrategy, NameServerConfig, ResolverConfig,
    };
    use hickory_resolver::net::runtime::TokioRuntimeProvider;
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
    builder.options_mut().timeout = std::time::Duration::from_secs(5);
    builder.options_mut().attempts = 2;
    builder.options_mut().ip_strategy = match family {
        Family::Any => LookupIpStrategy::Ipv6AndIpv4,
        Family::Ipv4 => LookupIpStrategy::Ipv4Only,
        Family::Ipv6 => LookupIpStrategy::Ipv6Only,
    };
    builder.build().map_err(|e| e.to_string())
}

/// The addresses to try for `route`, best first, of the families `family`
/// allows; hosts found in DNS get port `smtp_port`.
pub async fn resolve(
    resolver: Option<&TokioResolver>,
    route: &Route,
    smtp_port: u16,
    family: Family,
) -> Result<Vec<Candidate>, RouteError> {
    let found = resolve_any(resolver, route, smtp_port).await?;
    let out = by_family(found, family);
    if out.is_empty() {
        let why = format!(
            "no {} address for {} (remote.address_family = {})",
            match family {
                Family::Ipv4 => "IPv4",
                _ => "IPv6",
            },
            route.dest,
            family.name()
        );
        return Err(match route.hosts {
            Hosts::Static(_) => RouteError::Temporary(why),
            _ => RouteError::NoAddress(why),
        });
    }
    Ok(out)
}

/// Keeps the addresses `family` allows and, within each host's run of
/// addresses, alternates the families, IPv6 first, so that a host whose
/// one family is broken is reached over the other before the next host.
pub fn by_family(found: Vec<Candidate>, family: Family) -> Vec<Candidate> {
    let mut out = Vec::with_capacity(found.len());
    let mut i = 0;
    while i < found.len() {
        let j = found[i..]
            .iter()
            .position(|c| c.name != found[i].name)
            .map(|k| i + k)
            .unwrap_or(found.len());
        let (v6, v4): (Vec<&Candidate>, Vec<&Candidate>) = found[i..j]
            .iter()
            .filter(|c| family.allows(c.addr.ip()))
            .partition(|c| c.addr.ip().to_canonical().is_ipv6());
        for k in 0..v6.len().max(v4.len()) {
            out.extend(v6.get(k).map(|c| (*c).clone()));
            out.extend(v4.get(k).map(|c| (*c).clone()));
        }
        i = j;
    }
    out.truncate(MAX_ADDRESSES);
    out
}

/// Every address for `route`, in host order.
async fn resolve_any(
    resolver: Option<&TokioResolver>,
    route: &Route,
    smtp_port: u16,
) -> Result<Vec<Candidate>, RouteError> {
    let mut out = Vec::new();
    match &route.hosts {
        Hosts::Literal(ip) => out.push(Candidate {
            name: ip.to_string(),
            addr: SocketAddr::new(*ip, smtp_port),
        }),
        Hosts::Static(hosts) => {
            let mut last_err = None;
            for (host, port) in hosts {
                if let Ok(ip) = host.parse::<IpAddr>() {
                    out.push(Candidate {
                        name: host.clone(),
                        addr: SocketAddr::new(ip, *port),
                    });
                    continue;
                }
                match tokio::net::lookup_host((host.as_str(), *port)).await {
                    Ok(addrs) => out.extend(addrs.map(|addr| Candidate {
                        name: host.clone(),
                        addr,
                    })),
                    Err(e) => last_err = Some(format!("{host}: {e}")),
                }
            }
            if out.is_empty() {
                let why = last_err.unwrap_or_else(|| "no route host".into());
                return Err(RouteError::Temporary(format!(
                    "cannot find the route's host: {why}"
                )));
            }
        }
        Hosts::Mx(domain) => {
            let Some(r) = resolver else {
                return Err(RouteError::Temporary(
                    "no DNS resolver is configured (see /etc/resolv.conf)".into(),
                ));
            };
            out = resolve_mx(r, domain, smtp_port).await?;
        }
    }
    Ok(out)
}

async fn resolve_mx(
    r: &TokioResolver,
    domain: &str,
    port: u16,
) -> Result<Vec<Candidate>, RouteError> {
    let fq = format!("{domain}.");
    let hosts = match r.mx_lookup(fq.as_str()).await {
        Ok(lookup) => {
            let mut mx: Vec<(u16, String)> = lookup
                .answers()
                .iter()
                .filter_map(|rec| match &rec.data {
                    RData::MX(m) => Some((m.preference, m.exchange.to_ascii())),
                    _ => None,
                })
                .collect();
            // RFC 7505 3: a single MX whose exchange is "." means no mail.
            if mx.len() == 1 && (mx[0].1 == "." || mx[0].1.is_empty()) {
                return Err(RouteError::NullMx(domain.to_string()));
            }
            mx.retain(|(_, h)| h != "." && !h.is_empty());
            order_mx(mx, &mut rand::rng())
        }
        Err(e) if e.is_nx_domain() => return Err(RouteError::NoDomain(domain.to_string())),
        // RFC 5321 5.1: no MX, so the domain itself is the implicit MX.
        Err(e) if e.is_no_records_found() => vec![domain.to_string()],
        Err(e) => {
            return Err(RouteError::Temporary(format!(
                "Name service error for name={domain} type=MX: {e}"
            )))
        }
    };
    let mut out = Vec::new();
    let mut temporary = None;
    for host in hosts {
        if out.len() >= MAX_ADDRESSES {
            break;
        }
        let name = host.trim_end_matches('.').to_string();
        match r.lookup_ip(format!("{name}.").as_str()).await {
            Ok(ips) => out.extend(ips.iter().map(|ip| Candidate {
                name: name.clone(),
                addr: SocketAddr::new(ip, port),
            })),
            Err(e) if e.is_nx_domain() || e.is_no_records_found() => {}
            Err(e) => temporary = Some(format!("Name service error for name={name}: {e}")),
        }
    }
    if out.is_empty() {
        return Err(match temporary {
            Some(t) => RouteError::Temporary(t),
            None => RouteError::NoAddress(domain.to_string()),
        });
    }
    Ok(out)
}

/// MX hosts by preference, shuffled among equal preferences (RFC 5321 5.1:
/// "If there are multiple destinations with the same preference ... the
/// SMTP client SHOULD randomize them").
pub fn order_mx(mut mx: Vec<(u16, String)>, rng: &mut impl rand::Rng) -> Vec<String> {
    mx.sort_by_key(|(p, _)| *p);
    let mut out = Vec::with_capacity(mx.len());
    let mut i = 0;
    while i < mx.len() {
        let j = mx[i..]
            .iter()
            .position(|(p, _)| *p != mx[i].0)
            .map(|k| i + k)
            .unwrap_or(mx.len());
        let mut group: Vec<String> = mx[i..j].iter().map(|(_, h)| h.clone()).collect();
        group.shuffle(rng);
        for h in group {
            if !out.contains(&h) {
                out.push(h);
            }
        }
        i = j;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port_forms() {
        assert_eq!(
            parse_host_port("mx.example.com").unwrap(),
            ("mx.example.com".into(), 25)
        );
        assert_eq!(
            parse_host_port("127.0.0.1:2525").unwrap(),
            ("127.0.0.1".into(), 2525)
        );
        assert_eq!(parse_host_port("[::1]:26").unwrap(), ("::1".into(), 26));
        assert_eq!(parse_host_port("::1").unwrap(), ("::1".into(), 25));
        assert_eq!(
            parse_host_port("[relay.example]").unwrap(),
            ("relay.example".into(), 25)
        );
        for bad in [
            "",
            "host:",
            "host:0",
            "host:99999",
            "[::1",
            "a b:25",
            "[::1]x",
        ] {
            assert!(parse_host_port(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn mx_order_is_by_preference_and_random_among_equals() {
        let mx = vec![
            (20, "c".to_string()),
            (10, "a".to_string()),
            (10, "b".to_string()),
            (30, "d".to_string()),
        ];
        let mut seen_first = std::collections::BTreeSet::new();
        let mut rng = rand::rng();
        for _ in 0..200 {
            let o = order_mx(mx.clone(), &mut rng);
            assert_eq!(o.len(), 4);
            assert_eq!(&o[2..], ["c", "d"]);
            seen_first.insert(o[0].clone());
        }
        assert_eq!(
            seen_first.len(),
            2,
            "both equal-preference hosts come first sometimes"
        );
    }

    #[test]
    fn static_routes_win_and_star_is_the_smarthost() {
        let mut cfg = crate::config::Config::defaults();
        let mut s = Settings::from_config(&cfg).unwrap();
        assert_eq!(
            route_for(&s, "example.com").hosts,
            Hosts::Mx("example.com".into())
        );
        assert_eq!(
            route_for(&s, "bücher.example").hosts,
            Hosts::Mx("xn--bcher-kva.example".into())
        );
        assert_eq!(
            route_for(&s, "[192.0.2.1]").hosts,
            Hosts::Literal("192.0.2.1".parse().unwrap())
        );
        s.routes
            .insert("example.com".into(), vec!["127.0.0.1:2525".into()]);
        s.routes.insert("*".into(), vec!["relay:587".into()]);
        let r = route_for(&s, "example.com");
        assert_eq!(r.dest, "example.com");
        assert_eq!(r.hosts, Hosts::Static(vec![("127.0.0.1".into(), 2525)]));
        let r = route_for(&s, "other.org");
        assert_eq!(r.dest, "*");
        assert_eq!(r.hosts, Hosts::Static(vec![("relay".into(), 587)]));
        assert_eq!(domain_of("A@Example.COM."), "example.com");
        cfg.set("remote.tls_level", "verify").unwrap();
        assert_eq!(
            Settings::from_config(&cfg).unwrap().tls_level,
            super::super::settings::TlsLevel::Verify
        );
    }

    #[tokio::test]
    async fn static_addresses_resolve_in_order() {
        let route = Route {
            dest: "x".into(),
            hosts: Hosts::Static(vec![("127.0.0.1".into(), 2525), ("::1".into(), 26)]),
        };
        let c = resolve(None, &route, 25, Family::Any).await.unwrap();
        assert_eq!(c[0].addr, "127.0.0.1:2525".parse().unwrap());
        assert_eq!(c[1].addr, "[::1]:26".parse().unwrap());
        let mx = Route {
            dest: "x".into(),
            hosts: Hosts::Mx("example.com".into()),
        };
        assert!(resolve(None, &mx, 25, Family::Any)
            .await
            .unwrap_err()
            .is_temporary());
        // One family only: the other's hosts are left out, and none left
        // defers a static route.
        let c = resolve(None, &route, 25, Family::Ipv6).await.unwrap();
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].addr, "[::1]:26".parse().unwrap());
        let v4only = Route {
            dest: "x".into(),
            hosts: Hosts::Static(vec![("127.0.0.1".into(), 2525)]),
        };
        let e = resolve(None, &v4only, 25, Family::Ipv6).await.unwrap_err();
        assert!(e.is_temporary(), "{e}");
        assert!(e.to_string().contains("no IPv6 address"), "{e}");
        // A literal of the other family bounces: there is nowhere to go.
        let lit = route_for(
            &Settings::from_config(&crate::config::Config::defaults()).unwrap(),
            "[ipv6:2001:db8::25]",
        );
        assert_eq!(lit.hosts, Hosts::Literal("2001:db8::25".parse().unwrap()));
        let e = resolve(None, &lit, 25, Family::Ipv4).await.unwrap_err();
        assert_eq!(e.dsn(), "5.4.4");
        let c = resolve(None, &lit, 25, Family::Any).await.unwrap();
        assert_eq!(c[0].addr, "[2001:db8::25]:25".parse().unwrap());
    }

    #[test]
    fn each_hosts_families_alternate_ipv6_first() {
        let c = |name: &str, a: &str| Candidate {
            name: name.into(),
            addr: SocketAddr::new(a.parse().unwrap(), 25),
        };
        let found = vec![
            c("mx1", "192.0.2.1"),
            c("mx1", "192.0.2.2"),
            c("mx1", "2001:db8::1"),
            c("mx2", "192.0.2.9"),
            c("mx3", "2001:db8::3"),
            c("mx3", "2001:db8::4"),
            c("mx3", "::ffff:192.0.2.30"),
        ];
        let addrs = |v: Vec<Candidate>| -> Vec<String> {
            v.iter()
                .map(|c| format!("{} {}", c.name, c.addr.ip()))
                .collect()
        };
        assert_eq!(
            addrs(by_family(found.clone(), Family::Any)),
            [
                "mx1 2001:db8::1",
                "mx1 192.0.2.1",
                "mx1 192.0.2.2",
                "mx2 192.0.2.9",
                "mx3 2001:db8::3",
                "mx3 ::ffff:192.0.2.30",
                "mx3 2001:db8::4",
            ]
        );
        assert_eq!(
            addrs(by_family(found.clone(), Family::Ipv4)),
            [
                "mx1 192.0.2.1",
                "mx1 192.0.2.2",
                "mx2 192.0.2.9",
                "mx3 ::ffff:192.0.2.30",
            ]
        );
        assert_eq!(
            addrs(by_family(found, Family::Ipv6)),
            ["mx1 2001:db8::1", "mx3 2001:db8::3", "mx3 2001:db8::4"]
        );
    }
}
