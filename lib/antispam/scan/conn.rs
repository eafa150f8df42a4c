//! Connection checks: DNS block and allow lists (RFC 5782), forward-
//! confirmed reverse DNS, HELO sanity. Each gives a score and names what
//! hit; the sum is compared with `scan.dnsbl_threshold` by the caller.
//! DNS answers per client address are cached (bounded, 10 minutes);
//! hickory's own cache keeps the records for their TTL besides.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hickory_resolver::proto::rr::{RData, RecordType};
use hickory_resolver::TokioResolver;

/// How long a client's DNS results are reused.
const CACHE_TIME: Duration = Duration::from_secs(600);
/// At most this many PTR names are followed forward.
const MAX_PTR: usize = 5;

/// A zone and its weight (negative for an allow list).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Zone {
    pub name: String,
    pub weight: i64,
}

/// Parses `scan.dnsbl` entries, `zone weight` (weight 1 when left out).
pub fn parse_zones(list: &[String]) -> Result<Vec<Zone>, String> {
    list.iter()
        .map(|e| {
            let mut w = e.split_whitespace();
            let name = w.next().unwrap_or_default().trim_end_matches('.');
            let weight = match w.next() {
                Some(n) => n
                    .parse::<i64>()
                    .map_err(|_| format!("scan.dnsbl: {e:?}: the weight is not a whole number"))?,
                None => 1,
            };
            if name.is_empty()
                || w.next().is_some()
                || !name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b'_')
            {
                return Err(format!("scan.dnsbl: {e:?} is not \"zone weight\""));
            }
            Ok(Zone {
                name: name.to_ascii_lowercase(),
                weight,
            })
        })
        .collect()
}

/// The name to look `ip` up under in `zone`: IPv4 octets reversed, IPv6
/// nibbles reversed (RFC 5782 2.1, 2.4).
pub fn query_name(ip: IpAddr, zone: &str) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            format!("{}.{}.{}.{}.{zone}.", o[3], o[2], o[1], o[0])
        }
        IpAddr::V6(v6) => {
            let mut s = String::with_capacity(64 + zone.len());
            for b in v6.octets().iter().rev() {
                s.push_str(&format!("{:x}.{:x}.", b & 0xf, b >> 4));
            }
            s.push_str(zone);
            s.push('.');
            s
        }
    }
}

/// What the HELO name says, by itself: `Some(test name)` when it is bad.
/// `local` is the address the client connected to.
pub fn helo_problem(helo: &str, hostname: &str, local: Option<IpAddr>) -> Option<&'static str> {
    let h = helo.trim().trim_end_matches('.');
    if h.parse::<IpAddr>().is_ok() {
        return Some("KMP_HELO_BARE_IP");
    }
    if h.eq_ignore_ascii_case(hostname) {
        return Some("KMP_HELO_OURS");
    }
    if let Some(lit) = h.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
        let lit = lit.strip_prefix("IPv6:").unwrap_or(lit);
        if let (Ok(ip), Some(l)) = (lit.parse::<IpAddr>(), local) {
            if ip == l && !l.is_loopback() {
                return Some("KMP_HELO_OURS");
            }
        }
        return None;
    }
    if !h.contains('.') {
        return Some("KMP_HELO_NOT_FQDN");
    }
    None
}

/// The DNS part of a client's checks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DnsResult {
    /// The zones that list the client, with their weights.
    pub listed: Vec<Zone>,
    /// Reverse DNS confirmed (None: not checked or DNS failed).
    pub fcrdns: Option<bool>,
}

/// The cache of [`DnsResult`]s per client address.
pub struct Cache {
    max: usize,
    entries: Mutex<HashMap<IpAddr, (Instant, DnsResult)>>,
}

impl Cache {
    pub fn new(max: usize) -> Cache {
        Cache {
            max,
            entries: Mutex::new(HashMap::new()),
        }
    }

    pub fn get(&self, ip: IpAddr) -> Option<DnsResult> {
        // A panic elsewhere leaves only cache entries behind: go on.
        let e = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        e.get(&ip)
            .filter(|(t, _)| t.elapsed() < CACHE_TIME)
            .map(|(_, r)| r.clone())
    }

    pub fn put(&self, ip: IpAddr, r: DnsResult) {
        if self.max == 0 {
            return;
        }
        let mut e = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if e.len() >= self.max {
            e.retain(|_, (t, _)| t.elapsed() < CACHE_TIME);
            if e.len() >= self.max {
                e.clear();
            }
        }
        e.insert(ip, (Instant::now(), r));
    }
}

/// Looks `ip` up in every zone and, with `fcrdns`, checks its reverse DNS.
pub async fn lookup(r: &TokioResolver, ip: IpAddr, zones: &[Zone], fcrdns: bool) -> DnsResult {
    let mut out = DnsResult::default();
    for z in zones {
        if listed(r, &query_name(ip, &z.name)).await {
            out.listed.push(z.clone());
        }
    }
    if fcrdns {
        out.fcrdns = confirmed(r, ip).await;
    }
    out
}

/// Whether `name` has an A record in 127.0.0.0/8 (RFC 5782 2.1); the
/// 127.255.255.0/24 codes some lists use for errors do not count.
async fn listed(r: &TokioResolver, name: &str) -> bool {
    match r.lookup(name, RecordType::A).await {
        Ok(l) => l.answers().iter().any(|rec| match &rec.data {
            RData::A(a) => {
                let o = a.0.octets();
                o[0] == 127 && !(o[1] == 255 && o[2] == 255)
            }
            _ => false,
        }),
        Err(_) => false,
    }
}

/// Whether a PTR name of `ip` resolves back to `ip`; None when DNS failed
/// (a timeout is not the client's fault).
async fn confirmed(r: &TokioResolver, ip: IpAddr) -> Option<bool> {
    let rev = query_name(
        ip,
        if ip.is_ipv4() {
            "in-addr.arpa"
        } else {
            "ip6.arpa"
        },
    );
    let names: Vec<String> = match r.lookup(rev.as_str(), RecordType::PTR).await {
        Ok(l) => l
            .answers()
            .iter()
            .filter_map(|rec| match &rec.data {
                RData::PTR(p) => Some(p.0.to_ascii()),
                _ => None,
            })
            .take(MAX_PTR)
            .collect(),
        Err(e) if e.is_nx_domain() || e.is_no_records_found() => return Some(false),
        Err(_) => return None,
    };
    for n in names {
        let n = if n.ends_with('.') { n } else { format!("{n}.") };
        if let Ok(ips) = r.lookup_ip(n.as_str()).await {
            if ips.iter().any(|a| a == ip) {
                return Some(true);
            }
        }
    }
    Some(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_names() {
        assert_eq!(
            query_name("192.0.2.99".parse().unwrap(), "zen.example"),
            "99.2.0.192.zen.example."
        );
        let v6 = query_name("2001:db8::1".parse().unwrap(), "bl.test");
        assert_eq!(
            v6,
            "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.bl.test."
        );
    }

    #[test]
    fn zones_parse() {
        let z = parse_zones(&[
            "zen.example 10".into(),
            "wl.example -5".into(),
            "x.test".into(),
        ])
        .unwrap();
        assert_eq!(z[0].weight, 10);
        assert_eq!(z[1].weight, -5);
        assert_eq!(z[2].weight, 1);
        assert!(parse_zones(&["zen.example ten".into()]).is_err());
        assert!(parse_zones(&["a b c".into()]).is_err());
        assert!(parse_zones(&["bad/zone 1".into()]).is_err());
    }

    #[test]
    fn helo_checks() {
        let local = Some("192.0.2.1".parse().unwrap());
        assert_eq!(
            helo_problem("192.0.2.7", "mx.ours", local),
            Some("KMP_HELO_BARE_IP")
        );
        assert_eq!(
            helo_problem("MX.ours", "mx.ours", local),
            Some("KMP_HELO_OURS")
        );
        assert_eq!(
            helo_problem("[192.0.2.1]", "mx.ours", local),
            Some("KMP_HELO_OURS")
        );
        assert_eq!(helo_problem("[192.0.2.8]", "mx.ours", local), None);
        assert_eq!(
            helo_problem("localhost", "mx.ours", local),
            Some("KMP_HELO_NOT_FQDN")
        );
        assert_eq!(helo_problem("mail.example.com", "mx.ours", local), None);
    }
}
