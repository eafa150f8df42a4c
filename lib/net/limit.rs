//! Connections at once, in all and per client address: the one counter
//! kmp-smtpd, kmp-pop3d and kmp-imapd share.
//!
//! A connection takes a [`Slot`] before anything else is done for it and
//! gives it back when the slot is dropped, whichever way the session ends
//! (a panic in its task included).
//!
//! Clients are counted by [`client_net`]: an IPv6 client by its prefix of
//! `system.ipv6_prefix` bits, so a host cannot take a new address of its /64
//! for each connection to get past the per-client limit.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use super::{client_net, Cidr, DEFAULT_IPV6_PREFIX};

/// Why a connection was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The server is full.
    Total,
    /// This address has its share already.
    PerIp,
}

/// The connections being served.
#[derive(Debug)]
pub struct Counter {
    counts: Mutex<Counts>,
    /// `system.ipv6_prefix`, changed on reload.
    v6_prefix: AtomicU8,
}

impl Default for Counter {
    fn default() -> Counter {
        Counter {
            counts: Mutex::default(),
            v6_prefix: AtomicU8::new(DEFAULT_IPV6_PREFIX),
        }
    }
}

#[derive(Debug, Default)]
struct Counts {
    total: usize,
    per_ip: HashMap<Cidr, usize>,
}

/// One admitted connection; dropping it gives the place back.
#[derive(Debug)]
pub struct Slot {
    counter: Arc<Counter>,
    net: Cidr,
}

impl Counter {
    pub fn new() -> Arc<Counter> {
        Arc::new(Counter::default())
    }

    /// Counts IPv6 clients by their first `bits` bits from now on
    /// (`system.ipv6_prefix`); slots taken before keep their network.
    pub fn set_ipv6_prefix(&self, bits: u8) {
        self.v6_prefix.store(bits.min(128), Ordering::Relaxed);
    }

    fn lock(&self) -> MutexGuard<'_, Counts> {
        // A panic while holding the lock leaves only counters behind: go on.
        self.counts.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Admits a connection from `ip` if fewer than `max_total` are served in
    /// all and fewer than `max_per_ip` from that client: that address for
    /// IPv4 (an IPv4 client on an IPv6 socket, `::ffff:a.b.c.d`, counts as
    /// its IPv4 address), its network of `system.ipv6_prefix` bits for IPv6.
    pub fn admit(
        self: &Arc<Counter>,
        ip: IpAddr,
        max_total: usize,
        max_per_ip: usize,
    ) -> Result<Slot, Refused> {
        let net = client_net(ip, self.v6_prefix.load(Ordering::Relaxed));
        let mut c = self.lock();
        if c.total >= max_total {
            return Err(Refused::Total);
        }
        let n = c.per_ip.entry(net).or_insert(0);
        if *n >= max_per_ip {
            return Err(Refused::PerIp);
        }
        *n += 1;
        c.total += 1;
        Ok(Slot {
            counter: self.clone(),
            net,
        })
    }

    /// Connections served now.
    pub fn total(&self) -> usize {
        self.lock().total
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut c = self.counter.lock();
        c.total = c.total.saturating_sub(1);
        if let Some(n) = c.per_ip.get_mut(&self.net) {
            *n -= 1;
            if *n == 0 {
                c.per_ip.remove(&self.net);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_per_address_and_in_all() {
        let c = Counter::new();
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let s1 = c.admit(a, 3, 2).unwrap();
        let _s2 = c.admit(mapped, 3, 2).unwrap();
        assert_eq!(c.admit(a, 3, 2).unwrap_err(), Refused::PerIp);
        let _s3 = c.admit(b, 3, 2).unwrap();
        assert_eq!(c.admit(b, 3, 2).unwrap_err(), Refused::Total);
        drop(s1);
        assert_eq!(c.total(), 2);
        let _s4 = c.admit(a, 3, 2).unwrap();
    }

    #[test]
    fn ipv6_clients_count_by_prefix() {
        let c = Counter::new();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let _a = c.admit(ip("2001:db8:0:1::a"), 10, 2).unwrap();
        let _b = c.admit(ip("2001:db8:0:1::b"), 10, 2).unwrap();
        assert_eq!(
            c.admit(ip("2001:db8:0:1:ffff::c"), 10, 2).unwrap_err(),
            Refused::PerIp,
            "a third address of the same /64 is the same client"
        );
        let _other = c.admit(ip("2001:db8:0:2::a"), 10, 2).unwrap();
        c.set_ipv6_prefix(128);
        let _d = c.admit(ip("2001:db8:0:1::d"), 10, 2).unwrap();
        drop(_a);
        c.set_ipv6_prefix(64);
        let _e = c.admit(ip("2001:db8:0:1::e"), 10, 2).unwrap();
        assert_eq!(c.total(), 4);
    }
}
