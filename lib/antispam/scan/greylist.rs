//! Greylisting's table: triplets (client network, sender, recipient) seen,
//! when first and last, whether a retry passed; and per client network how
//! many retries passed (auto-whitelisting). Kept by kmp-authd (one table
//! for every kmp-smtpd, like the bans) and saved to `DB/authd-greylist`
//! at most every [`SAVE_EVERY`] (temporary file and rename, no fsync: a
//! crash forgets a few seconds, which costs a sender one more retry).

use std::collections::HashMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// The file in `paths.db`.
pub const FILE: &str = "authd-greylist";
/// The table is written at most this often (seconds).
pub const SAVE_EVERY: u64 = 5;
/// At most this many triplets are kept; the oldest go first.
const MAX_TRIPLETS: usize = 1_000_000;

/// The knobs of one question (from kmp-smtpd's configuration).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rules {
    pub delay: u64,
    pub retry_window: u64,
    pub lifetime: u64,
    /// Passed retries after which a network is whitelisted; 0: never.
    pub auto_whitelist: u64,
}

/// The answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Answer {
    pub pass: bool,
    /// Seconds until a retry passes (when not `pass`).
    pub wait: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Triplet {
    first: u64,
    last: u64,
    passed: bool,
}

/// The table.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Table {
    triplets: HashMap<String, Triplet>,
    /// Network -> (passed retries, last time).
    clients: HashMap<String, (u64, u64)>,
    #[serde(skip)]
    pub dirty: bool,
    #[serde(skip)]
    pub saved_at: u64,
}

impl Table {
    /// Loads the table (an unreadable one starts empty, with the reason).
    pub fn load(path: &Path) -> (Table, Option<String>) {
        match std::fs::read(path) {
            Ok(b) => match serde_json::from_slice(&b) {
                Ok(t) => (t, None),
                Err(e) => (Table::default(), Some(format!("{}: {e}", path.display()))),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => (Table::default(), None),
            Err(e) => (Table::default(), Some(format!("{}: {e}", path.display()))),
        }
    }

    /// Writes the table (temporary file, rename).
    pub fn save(&mut self, path: &Path, now: u64) -> std::io::Result<()> {
        let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
        // Invariant: plain strings and numbers always serialise.
        let data = serde_json::to_vec(self).expect("greylist serialises");
        std::fs::write(&tmp, data)?;
        std::fs::rename(&tmp, path)?;
        self.dirty = false;
        self.saved_at = now;
        Ok(())
    }

    /// Whether a save is due.
    pub fn save_due(&self, now: u64) -> bool {
        self.dirty && now >= self.saved_at + SAVE_EVERY
    }

    /// Decides on one attempt and records it.
    pub fn check(&mut self, net: &str, sender: &str, rcpt: &str, r: Rules, now: u64) -> Answer {
        self.expire(r, now);
        if r.auto_whitelist > 0 {
            if let Some((n, _)) = self.clients.get(net) {
                if *n >= r.auto_whitelist {
                    self.clients.insert(net.to_string(), (*n, now));
                    self.dirty = true;
                    return Answer {
                        pass: true,
                        wait: 0,
                    };
                }
            }
        }
        let key = format!(
            "{net}\0{}\0{}",
            sender.to_ascii_lowercase(),
            rcpt.to_ascii_lowercase()
        );
        self.dirty = true;
        match self.triplets.get_mut(&key) {
            Some(t) if t.passed => {
                t.last = now;
                Answer {
                    pass: true,
                    wait: 0,
                }
            }
            Some(t) if now >= t.first + r.delay => {
                t.passed = true;
                t.last = now;
                let c = self.clients.entry(net.to_string()).or_insert((0, now));
                c.0 += 1;
                c.1 = now;
                Answer {
                    pass: true,
                    wait: 0,
                }
            }
            Some(t) => {
                t.last = now;
                Answer {
                    pass: false,
                    wait: t.first + r.delay - now,
                }
            }
            None => {
                if self.triplets.len() >= MAX_TRIPLETS {
                    let oldest = self
                        .triplets
                        .iter()
                        .min_by_key(|(_, t)| t.last)
                        .map(|(k, _)| k.clone());
                    if let Some(k) = oldest {
                        self.triplets.remove(&k);
                    }
                }
                self.triplets.insert(
                    key,
                    Triplet {
                        first: now,
                        last: now,
                        passed: false,
                    },
                );
                Answer {
                    pass: r.delay == 0,
                    wait: r.delay,
                }
            }
        }
    }

    /// Forgets triplets never retried within the window, passed ones unused
    /// for their lifetime, and whitelisted networks unused as long.
    fn expire(&mut self, r: Rules, now: u64) {
        let before = self.triplets.len() + self.clients.len();
        self.triplets.retain(|_, t| {
            if t.passed {
                now < t.last + r.lifetime
            } else {
                now < t.first + r.retry_window
            }
        });
        self.clients.retain(|_, (_, last)| now < *last + r.lifetime);
        if self.triplets.len() + self.clients.len() != before {
            self.dirty = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const R: Rules = Rules {
        delay: 60,
        retry_window: 3600,
        lifetime: 86400,
        auto_whitelist: 2,
    };

    #[test]
    fn first_waits_retry_passes_then_the_network_is_whitelisted() {
        let mut t = Table::default();
        let a = t.check("192.0.2.0/24", "a@x.test", "u@ours.test", R, 1000);
        assert_eq!(
            a,
            Answer {
                pass: false,
                wait: 60
            }
        );
        let a = t.check("192.0.2.0/24", "a@x.test", "u@ours.test", R, 1030);
        assert_eq!(
            a,
            Answer {
                pass: false,
                wait: 30
            }
        );
        assert!(
            t.check("192.0.2.0/24", "a@x.test", "u@ours.test", R, 1060)
                .pass
        );
        assert!(
            t.check("192.0.2.0/24", "A@X.test", "u@ours.test", R, 5000)
                .pass
        );
        // A second triplet passes after its delay: the network has 2 passes.
        assert!(
            !t.check("192.0.2.0/24", "b@x.test", "u@ours.test", R, 5000)
                .pass
        );
        assert!(
            t.check("192.0.2.0/24", "b@x.test", "u@ours.test", R, 5100)
                .pass
        );
        assert!(
            t.check("192.0.2.0/24", "new@y.test", "v@ours.test", R, 5200)
                .pass
        );
        // Another network is not.
        assert!(
            !t.check("198.51.100.0/24", "a@x.test", "u@ours.test", R, 5200)
                .pass
        );
        // A triplet never retried expires.
        assert!(
            !t.check("203.0.113.0/24", "a@x.test", "u@ours.test", R, 10_000)
                .pass
        );
        assert!(
            !t.check("203.0.113.0/24", "a@x.test", "u@ours.test", R, 20_000)
                .pass
        );
    }

    #[test]
    fn the_table_survives_a_save_and_load() {
        let dir = std::env::temp_dir().join(format!("kmp-grey-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join(FILE);
        let mut t = Table::default();
        t.check("n", "s@x.test", "r@y.test", R, 100);
        t.save(&p, 100).unwrap();
        let (mut u, err) = Table::load(&p);
        assert!(err.is_none());
        assert!(u.check("n", "s@x.test", "r@y.test", R, 200).pass);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
