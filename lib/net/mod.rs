//! Network helpers shared by the daemons: networks in CIDR form, the one
//! client stream type of every server ([`Stream`]: plain or TLS, with read,
//! write and handshake deadlines) and the one per-address connection counter
//! ([`Counter`]).
//!
//! Clients are counted by network, not always by address ([`client_net`]):
//! an IPv4 client is its address, an IPv6 client its prefix of
//! `system.ipv6_prefix` bits (a /64 by default), because one IPv6 host
//! usually owns a whole /64 and may take a new address from it at will.
//! An IPv4-mapped IPv6 address (`::ffff:192.0.2.1`, what a dual-stack
//! socket reports for an IPv4 client) is the IPv4 address everywhere.

mod limit;
pub mod listen;
mod stream;

pub use limit::{Counter, Refused, Slot};

/// The default of `system.ipv6_prefix`: IPv6 clients are counted per /64.
pub const DEFAULT_IPV6_PREFIX: u8 = 64;
pub use stream::{Deadlines, Stream};

use std::net::IpAddr;
use std::str::FromStr;

/// An IPv4 or IPv6 network: `192.0.2.0/24`, `2001:db8::/32`, or a single address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// The network's first address (the host bits are zero once built by
    /// [`client_net`]; as written by the admin otherwise).
    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    /// The same network with its host bits zero: `2001:db8::1/64` is
    /// `2001:db8::/64`.
    pub fn network(&self) -> Cidr {
        match self.addr {
            IpAddr::V4(a) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                Cidr {
                    addr: IpAddr::V4((u32::from(a) & mask).into()),
                    prefix: self.prefix,
                }
            }
            IpAddr::V6(a) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                Cidr {
                    addr: IpAddr::V6((u128::from(a) & mask).into()),
                    prefix: self.prefix,
                }
            }
        }
    }

    /// The prefix length in bits.
    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// Whether `ip` is inside this network. An IPv4-mapped IPv6 address
    /// (`::ffff:192.0.2.1`) matches the IPv4 network it maps.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(a)) => mask_eq(&net.octets(), &a.octets(), self.prefix),
            (IpAddr::V6(net), IpAddr::V6(a)) => mask_eq(&net.octets(), &a.octets(), self.prefix),
            _ => false,
        }
    }
}

impl FromStr for Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Cidr, String> {
        let bad = || format!("{s:?} is not a network such as 192.0.2.0/24 or 2001:db8::/32");
        let (a, p) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = a.trim().parse().map_err(|_| bad())?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match p {
            Some(p) => p.trim().parse::<u8>().map_err(|_| bad())?,
            None => max,
        };
        if prefix > max {
            return Err(bad());
        }
        // An IPv4-mapped network is the IPv4 one, as a mapped client is.
        if let IpAddr::V6(v6) = addr {
            if let (Some(v4), true) = (v6.to_ipv4_mapped(), prefix >= 96) {
                return Ok(Cidr {
                    addr: IpAddr::V4(v4),
                    prefix: prefix - 96,
                });
            }
        }
        Ok(Cidr { addr, prefix })
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// The network a client is counted and banned under: an IPv4 address (or an
/// IPv4-mapped IPv6 one) as a /32, an IPv6 address as its `/v6_prefix`
/// (a prefix over 128 is taken as 128).
pub fn client_net(ip: IpAddr, v6_prefix: u8) -> Cidr {
    match ip.to_canonical() {
        IpAddr::V4(a) => Cidr {
            addr: IpAddr::V4(a),
            prefix: 32,
        },
        IpAddr::V6(a) => {
            let prefix = v6_prefix.min(128);
            let bits = u128::from(a);
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            Cidr {
                addr: IpAddr::V6((bits & mask).into()),
                prefix,
            }
        }
    }
}

/// A client address as RFC 5321 4.1.3 writes an address literal, without the
/// brackets: `192.0.2.1` or `IPv6:2001:db8::1` (an IPv4-mapped address as
/// the IPv4 one). Logs and the Received header put it in brackets.
pub fn literal(ip: IpAddr) -> String {
    match ip.to_canonical() {
        IpAddr::V4(a) => a.to_string(),
        IpAddr::V6(a) => format!("IPv6:{a}"),
    }
}

fn mask_eq(a: &[u8], b: &[u8], prefix: u8) -> bool {
    let full = (prefix / 8) as usize;
    if a[..full] != b[..full] {
        return false;
    }
    let rest = prefix % 8;
    if rest == 0 {
        return true;
    }
    let mask = 0xffu8 << (8 - rest);
    a[full] & mask == b[full] & mask
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks_contain_their_addresses() {
        let n: Cidr = "192.0.2.0/24".parse().unwrap();
        assert!(n.contains("192.0.2.77".parse().unwrap()));
        assert!(!n.contains("192.0.3.1".parse().unwrap()));
        assert!(n.contains("::ffff:192.0.2.1".parse().unwrap()));
        let n6: Cidr = "2001:db8::/33".parse().unwrap();
        assert!(n6.contains("2001:db8:7fff::1".parse().unwrap()));
        assert!(!n6.contains("2001:db8:8000::1".parse().unwrap()));
        let one: Cidr = "10.1.2.3".parse().unwrap();
        assert!(one.contains("10.1.2.3".parse().unwrap()));
        assert!(!one.contains("10.1.2.4".parse().unwrap()));
        assert!("10.0.0.0/33".parse::<Cidr>().is_err());
        assert!("banana".parse::<Cidr>().is_err());
        let mapped: Cidr = "::ffff:192.0.2.0/120".parse().unwrap();
        assert_eq!(mapped.to_string(), "192.0.2.0/24");
        assert!(mapped.contains("192.0.2.9".parse().unwrap()));
        assert!(mapped.contains("::ffff:192.0.2.9".parse().unwrap()));
        let one: Cidr = "::ffff:192.0.2.1".parse().unwrap();
        assert_eq!(one.to_string(), "192.0.2.1/32");
    }

    #[test]
    fn clients_are_counted_by_ipv6_prefix() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let a = client_net(ip("2001:db8:1:2:aaaa::1"), 64);
        let b = client_net(ip("2001:db8:1:2:bbbb::7"), 64);
        let other = client_net(ip("2001:db8:1:3::1"), 64);
        assert_eq!(a, b, "two addresses of one /64 are one client");
        assert_ne!(a, other);
        assert_eq!(a.to_string(), "2001:db8:1:2::/64");
        assert!(a.contains(ip("2001:db8:1:2:ffff::9")));
        assert!(!a.contains(ip("2001:db8:1:3::1")));
        assert_eq!(
            client_net(ip("2001:db8::1"), 128).to_string(),
            "2001:db8::1/128"
        );
        assert_eq!(client_net(ip("2001:db8::1"), 0).to_string(), "::/0");
        assert_eq!(client_net(ip("2001:db8::1"), 200).prefix(), 128);
        assert_eq!(
            client_net(ip("2001:db8:ffff::1"), 33).to_string(),
            "2001:db8:8000::/33"
        );
        // IPv4 and IPv4-mapped: one address, whatever the IPv6 prefix.
        assert_eq!(
            client_net(ip("::ffff:192.0.2.7"), 64).to_string(),
            "192.0.2.7/32"
        );
        assert_eq!(
            client_net(ip("192.0.2.7"), 0),
            client_net(ip("::ffff:192.0.2.7"), 64)
        );
        assert_eq!(client_net(ip("::1"), 64).to_string(), "::/64");
        let n: Cidr = "2001:db8::1:2:3/64".parse().unwrap();
        assert_eq!(n.network().to_string(), "2001:db8::/64");
        let n: Cidr = "192.0.2.77/24".parse().unwrap();
        assert_eq!(n.network().to_string(), "192.0.2.0/24");
        let n: Cidr = "192.0.2.77/0".parse().unwrap();
        assert_eq!(n.network().to_string(), "0.0.0.0/0");
    }

    #[test]
    fn literals_are_written_as_rfc_5321_says() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(literal(ip("192.0.2.1")), "192.0.2.1");
        assert_eq!(literal(ip("::ffff:192.0.2.1")), "192.0.2.1");
        assert_eq!(literal(ip("2001:DB8::1")), "IPv6:2001:db8::1");
        assert_eq!(literal(ip("::1")), "IPv6:::1");
    }
}
