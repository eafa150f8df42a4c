//! Counters and latency histograms of one daemon, for `kmpctl stats`.
//!
//! Everything lives in process-wide atomics: counting an event is one
//! relaxed add, so the daemons are not slowed by being measured. A latency
//! goes into a fixed histogram of [`BUCKETS`] buckets, four per power of two
//! of microseconds (so any quantile read from it is within 19% of the true
//! value) from 1 µs to about 12 days; its memory never grows.
//!
//! A daemon publishes its numbers by writing them, once a second and only
//! when they changed, to `RUN/PROGRAM.stats` (JSON, written to a temporary
//! name and renamed, never fsynced: losing it loses nothing). [`publish`] is
//! called when the daemon writes its pid file, so every daemon has it.
//! `kmpctl stats` reads these files; it never talks to a daemon, so a busy
//! or hung daemon cannot hang it, and reading costs the daemon nothing.
//!
//! What is counted, and by whom:
//! - `accepted`: messages kmp-smtpd queued (after the durable commit), with
//!   the `accept` latency: end of the message data to the commit done.
//! - `received`: messages kmp-send took into its queue index.
//! - `delivered`, `deferred`, `bounced`: recipient results of kmp-local and
//!   kmp-remote, with the `delivery` latency: arrival in the queue (the time
//!   in the queue id) to the result. `expired`: recipients kmp-send bounced
//!   because their message outlived the queue lifetime.
//! - `fsyncs`: fsync calls of queue files, Maildir files and directories.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Once;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// What is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counter {
    Accepted,
    Received,
    Delivered,
    Deferred,
    Bounced,
    Expired,
    Fsyncs,
}

impl Counter {
    pub const ALL: [Counter; 7] = [
        Counter::Accepted,
        Counter::Received,
        Counter::Delivered,
        Counter::Deferred,
        Counter::Bounced,
        Counter::Expired,
        Counter::Fsyncs,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Counter::Accepted => "accepted",
            Counter::Received => "received",
            Counter::Delivered => "delivered",
            Counter::Deferred => "deferred",
            Counter::Bounced => "bounced",
            Counter::Expired => "expired",
            Counter::Fsyncs => "fsyncs",
        }
    }
}

/// The stages whose latency is measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// End of the message data to the durable commit (kmp-smtpd).
    Accept,
    /// Arrival in the queue to a delivery result (kmp-local, kmp-remote).
    Delivery,
}

impl Stage {
    pub const ALL: [Stage; 2] = [Stage::Accept, Stage::Delivery];

    pub fn name(self) -> &'static str {
        match self {
            Stage::Accept => "accept",
            Stage::Delivery => "delivery",
        }
    }
}

/// Histogram buckets: 0-3 µs one each, then four per power of two.
pub const BUCKETS: usize = 160;

/// A fixed-size latency histogram.
pub struct Histogram {
    buckets: [AtomicU64; BUCKETS],
    count: AtomicU64,
    sum_us: AtomicU64,
}

impl Histogram {
    const fn new() -> Histogram {
        Histogram {
            buckets: [const { AtomicU64::new(0) }; BUCKETS],
            count: AtomicU64::new(0),
            sum_us: AtomicU64::new(0),
        }
    }

    fn record(&self, d: Duration) {
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        self.buckets[bucket(us)].fetch_add(1, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_us.fetch_add(us, Ordering::Relaxed);
    }

    fn snapshot(&self) -> Latency {
        Latency {
            count: self.count.load(Ordering::Relaxed),
            sum_us: self.sum_us.load(Ordering::Relaxed),
            buckets: self
                .buckets
                .iter()
                .enumerate()
                .filter_map(|(i, b)| {
                    let n = b.load(Ordering::Relaxed);
                    (n > 0).then_some((i, n))
                })
                .collect(),
        }
    }
}

/// The bucket of a latency of `us` microseconds.
pub fn bucket(us: u64) -> usize {
    if us < 4 {
        return us as usize;
    }
    let k = 63 - us.leading_zeros() as usize; // 2 or more
    let sub = ((us >> (k - 2)) & 3) as usize;
    (4 + (k - 2) * 4 + sub).min(BUCKETS - 1)
}

/// The largest latency, in microseconds, that falls into bucket `i`.
pub fn bucket_top(i: usize) -> u64 {
    if i < 4 {
        return i as u64;
    }
    let k = (i - 4) / 4 + 2;
    let sub = ((i - 4) % 4) as u64;
    ((5 + sub) << (k - 2)) - 1
}

struct Stats {
    counters: [AtomicU64; 7],
    latency: [Histogram; 2],
}

static STATS: Stats = Stats {
    counters: [const { AtomicU64::new(0) }; 7],
    latency: [Histogram::new(), Histogram::new()],
};

fn slot(c: Counter) -> usize {
    Counter::ALL.iter().position(|&x| x == c).unwrap_or(0)
}

/// Counts one event.
pub fn count(c: Counter) {
    STATS.counters[slot(c)].fetch_add(1, Ordering::Relaxed);
}

/// Counts one fsync.
pub fn fsync() {
    count(Counter::Fsyncs);
}

/// Records a latency of `stage`.
pub fn latency(stage: Stage, d: Duration) {
    let i = match stage {
        Stage::Accept => 0,
        Stage::Delivery => 1,
    };
    STATS.latency[i].record(d);
}

/// Counts a message kmp-smtpd queued, whose commit took `d`.
pub fn accepted(d: Duration) {
    count(Counter::Accepted);
    latency(Stage::Accept, d);
}

/// Counts a delivery result for a message with queue id `qid`: the outcome,
/// and the time since the message arrived (read from the id) for results
/// that end the recipient's stay in the queue.
pub fn delivery(qid: &str, outcome: crate::ipc::job::Outcome) {
    use crate::ipc::job::Outcome;
    let c = match outcome {
        Outcome::Sent | Outcome::Relayed => Counter::Delivered,
        Outcome::Deferred => Counter::Deferred,
        Outcome::Bounced => Counter::Bounced,
    };
    count(c);
    if c != Counter::Deferred {
        if let Some(arrived) = arrival_us(qid) {
            let now = now_us();
            latency(
                Stage::Delivery,
                Duration::from_micros(now.saturating_sub(arrived)),
            );
        }
    }
}

/// The arrival time in a queue id: 8 hex digits of seconds, 5 of microseconds.
pub fn arrival_us(qid: &str) -> Option<u64> {
    let secs = u64::from_str_radix(qid.get(..8)?, 16).ok()?;
    let micros = u64::from_str_radix(qid.get(8..13)?, 16).ok()?;
    Some(secs * 1_000_000 + micros)
}

/// One latency distribution as written in the stats file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Latency {
    pub count: u64,
    pub sum_us: u64,
    /// (bucket, count) for the buckets that are not empty.
    pub buckets: Vec<(usize, u64)>,
}

impl Latency {
    /// Adds another distribution into this one.
    pub fn merge(&mut self, o: &Latency) {
        self.count += o.count;
        self.sum_us += o.sum_us;
        let mut all: BTreeMap<usize, u64> = self.buckets.iter().copied().collect();
        for &(i, n) in &o.buckets {
            *all.entry(i).or_default() += n;
        }
        self.buckets = all.into_iter().collect();
    }

    /// The mean in seconds.
    pub fn mean(&self) -> Option<f64> {
        (self.count > 0).then(|| self.sum_us as f64 / self.count as f64 / 1e6)
    }

    /// The `q` quantile (0.99 for p99) in seconds: the top of the bucket it
    /// falls in, so never below the true value.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        if self.count == 0 {
            return None;
        }
        let want = ((self.count as f64) * q).ceil().max(1.0) as u64;
        let mut seen = 0;
        for &(i, n) in &self.buckets {
            seen += n;
            if seen >= want {
                return Some(bucket_top(i) as f64 / 1e6);
            }
        }
        self.buckets
            .last()
            .map(|&(i, _)| bucket_top(i) as f64 / 1e6)
    }
}

/// A daemon's stats file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    pub program: String,
    pub pid: u32,
    /// Seconds since the epoch: when the daemon started publishing, and when
    /// this was written.
    pub started: u64,
    pub updated: u64,
    pub counters: BTreeMap<String, u64>,
    pub latency: BTreeMap<String, Latency>,
}

/// This process's numbers now.
pub fn snapshot(program: &str, started: u64) -> Snapshot {
    Snapshot {
        program: program.to_string(),
        pid: std::process::id(),
        started,
        updated: now_us() / 1_000_000,
        counters: Counter::ALL
            .iter()
            .map(|&c| {
                let n = STATS.counters[slot(c)].load(Ordering::Relaxed);
                (c.name().to_string(), n)
            })
            .collect(),
        latency: Stage::ALL
            .iter()
            .enumerate()
            .map(|(i, s)| (s.name().to_string(), STATS.latency[i].snapshot()))
            .collect(),
    }
}

/// The stats file of `program` in the run directory.
pub fn file(run: &Path, program: &str) -> PathBuf {
    run.join(format!("{program}.stats"))
}

/// Starts the thread that writes this process's stats file (once per process).
pub fn publish(run: &Path, program: &str) {
    static STARTED: Once = Once::new();
    let (run, program) = (run.to_path_buf(), program.to_string());
    STARTED.call_once(move || {
        let spawned = std::thread::Builder::new()
            .name("stats".into())
            .spawn(move || writer(&run, &program));
        if let Err(e) = spawned {
            crate::warn!("no stats for kmpctl stats: {e}");
        }
    });
}

/// Writes the file now, then each second when something changed.
fn writer(run: &Path, program: &str) {
    let started = now_us() / 1_000_000;
    let path = file(run, program);
    let tmp = run.join(format!(".{program}.stats.tmp"));
    let mut last = None;
    loop {
        let s = snapshot(program, started);
        let key = (s.counters.clone(), s.latency.clone());
        if last.as_ref() != Some(&key) {
            let ok = serde_json::to_vec(&s)
                .map_err(std::io::Error::other)
                .and_then(|b| std::fs::write(&tmp, b))
                .and_then(|()| std::fs::rename(&tmp, &path));
            if ok.is_ok() {
                last = Some(key);
            }
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}

fn now_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_cover_every_latency_in_order_and_within_a_quarter() {
        let mut prev = 0;
        for us in [
            0u64,
            1,
            2,
            3,
            4,
            5,
            7,
            8,
            9,
            15,
            16,
            100,
            999,
            1000,
            123_456,
            1 << 39,
        ] {
            let b = bucket(us);
            assert!(b >= prev, "{us}");
            prev = b;
            assert!(bucket_top(b) >= us, "{us} in {b} tops at {}", bucket_top(b));
            if us >= 4 {
                assert!(bucket_top(b) as f64 <= us as f64 * 1.25, "{us}");
            }
        }
        assert_eq!(bucket(u64::MAX), BUCKETS - 1);
        for i in 4..BUCKETS - 1 {
            assert_eq!(bucket(bucket_top(i)), i);
            assert_eq!(bucket(bucket_top(i) + 1), i + 1);
        }
    }

    #[test]
    fn mean_and_p99_from_the_histogram() {
        let mut l = Latency::default();
        for ms in 1..=100u64 {
            let us = ms * 1000;
            l.merge(&Latency {
                count: 1,
                sum_us: us,
                buckets: vec![(bucket(us), 1)],
            });
        }
        assert!((l.mean().unwrap() - 0.0505).abs() < 1e-9);
        let p99 = l.quantile(0.99).unwrap();
        assert!((0.099..=0.099 * 1.25).contains(&p99), "{p99}");
        assert_eq!(Latency::default().quantile(0.99), None);
    }

    #[test]
    fn arrival_comes_from_the_queue_id() {
        let id = crate::queue::QueueId::generate(1_700_000_000_123_456);
        assert_eq!(arrival_us(id.as_str()), Some(1_700_000_000_123_456));
        assert_eq!(arrival_us("short"), None);
    }
}
