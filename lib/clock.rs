//! Time, injected. Programs take a [`Clock`] so that retry schedules, bans and
//! timeouts can be tested by moving time by hand instead of sleeping.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// A source of wall-clock time in seconds and milliseconds since the epoch.
#[derive(Clone, Debug, Default)]
pub enum Clock {
    /// The system's clock.
    #[default]
    System,
    /// A clock that moves only when told to: milliseconds since the epoch.
    Manual(Arc<AtomicU64>),
}

impl Clock {
    /// A manual clock starting at `secs` seconds after the epoch.
    pub fn manual(secs: u64) -> Clock {
        Clock::Manual(Arc::new(AtomicU64::new(secs * 1000)))
    }

    /// Milliseconds since the epoch.
    pub fn now_ms(&self) -> u64 {
        match self {
            Clock::System => SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_millis() as u64)
                .unwrap_or(0),
            Clock::Manual(t) => t.load(Ordering::SeqCst),
        }
    }

    /// Seconds since the epoch.
    pub fn now(&self) -> u64 {
        self.now_ms() / 1000
    }

    /// Moves a manual clock forward; does nothing to the system clock.
    pub fn advance(&self, secs: u64) {
        if let Clock::Manual(t) = self {
            t.fetch_add(secs * 1000, Ordering::SeqCst);
        }
    }
}

/// Nanoseconds on the system's monotonic clock (since boot on Linux and
/// FreeBSD): it orders events of different processes on one host whatever
/// the wall clock does. 0 if the clock cannot be read.
pub fn monotonic_ns() -> u64 {
    use nix::time::{clock_gettime, ClockId};
    clock_gettime(ClockId::CLOCK_MONOTONIC)
        .map(|t| (t.tv_sec() as u64).saturating_mul(1_000_000_000) + t.tv_nsec() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let c = Clock::manual(100);
        assert_eq!(c.now(), 100);
        c.advance(5);
        assert_eq!(c.now(), 105);
        assert!(Clock::System.now() > 1_600_000_000);
    }

    #[test]
    fn the_monotonic_clock_reads_and_does_not_go_back() {
        let a = super::monotonic_ns();
        let b = super::monotonic_ns();
        assert!(a > 0 && b >= a);
    }
}
