//! Connections at once, in all and per client address: the one counter
//! kmp-smtpd, kmp-pop3d and kmp-imapd share.
//!
//! A connection takes a [`Slot`] before anything else is done for it and
//! gives it back when the slot is dropped, whichever way the session ends
//! (a panic in its task included).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};

/// Why a connection was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The server is full.
    Total,
    /// This address has its share already.
    PerIp,
}

/// The connections being served.
#[derive(Debug, Default)]
pub struct Counter {
    counts: Mutex<Counts>,
}

#[derive(Debug, Default)]
struct Counts {
    total: usize,
    per_ip: HashMap<IpAddr, usize>,
}

/// One admitted connection; dropping it gives the place back.
#[derive(Debug)]
pub struct Slot {
    counter: Arc<Counter>,
    ip: IpAddr,
}

impl Counter {
    pub fn new() -> Arc<Counter> {
        Arc::new(Counter::default())
    }

    fn lock(&self) -> MutexGuard<'_, Counts> {
        // A panic while holding the lock leaves only counters behind: go on.
        self.counts.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Admits a connection from `ip` if fewer than `max_total` are served in
    /// all and fewer than `max_per_ip` from that address. An IPv4 client on
    /// an IPv6 socket (`::ffff:a.b.c.d`) counts as its IPv4 address.
    pub fn admit(
        self: &Arc<Counter>,
        ip: IpAddr,
        max_total: usize,
        max_per_ip: usize,
    ) -> Result<Slot, Refused> {
        let ip = ip.to_canonical();
        let mut c = self.lock();
        if c.total >= max_total {
            return Err(Refused::Total);
        }
        let n = c.per_ip.entry(ip).or_insert(0);
        if *n >= max_per_ip {
            return Err(Refused::PerIp);
        }
        *n += 1;
        c.total += 1;
        Ok(Slot {
            counter: self.clone(),
            ip,
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
        if let Some(n) = c.per_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                c.per_ip.remove(&self.ip);
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
}
