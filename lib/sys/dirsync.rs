//! Directory fsyncs shared between concurrent writers (group commit).
//!
//! A directory fsync costs a journal commit (milliseconds), and what it makes
//! durable is every entry made in the directory before it started. So when
//! twenty sessions each link a message into `incoming/new/` and each wants it
//! durable, one fsync started after the last link serves all twenty. Here a
//! caller that made its entry takes a ticket; if no fsync of the directory is
//! running it becomes the leader and syncs everything ticketed so far, else it
//! waits for the running one to end and then either finds its ticket covered
//! (an fsync that started after its entry finished) or leads the next round.
//! Nobody returns before an fsync that started after its own entry has
//! succeeded, which is the same promise a private fsync gives.
//!
//! **Waiting for company.** Rounds alone share badly when writers arrive
//! one after another: each finds no round running and leads one of its own
//! (twenty SMTP sessions shared a `new/` fsync by 1.4 on a busy machine). So
//! a writer announces itself with [`coming`] before its own file's fsync,
//! the slow step before its entry, and a leader about to fsync waits, at
//! most [`COMPANY_WAIT`], while writers announced for the directory are
//! still on their way: those that make their entry meanwhile are covered by
//! the same fsync. Waiting changes only when the fsync starts, never what a
//! caller waits for, so the promise above holds as before.
//!
//! A failed fsync fails every caller it was to cover, not only the one that
//! ran it. Letting them try again on their own would be wrong: Linux reports
//! a write-back error once, to the first fsync after it (on an open file),
//! so a second fsync of a freshly opened directory may succeed although the
//! entries the first one was to make durable were never written.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The longest a leader waits for announced writers before it fsyncs: about
/// one small file's fsync on a loaded disk. It bounds the latency a commit
/// can gain, and a writer that announced and then went slow (a big message)
/// costs each round no more than this.
pub const COMPANY_WAIT: Duration = Duration::from_millis(2);

/// The rounds of one directory.
#[derive(Default)]
struct Group {
    state: Mutex<Round>,
    ended: Condvar,
    /// Signalled when an announced writer arrives or withdraws.
    arrived: Condvar,
}

#[derive(Default)]
struct Round {
    /// Tickets given out (one per entry waiting to be durable).
    issued: u64,
    /// Every ticket up to this one is durable.
    done: u64,
    /// An fsync of the directory is running (or its leader is waiting for
    /// company before it starts).
    running: bool,
    /// Writers announced by [`coming`] that have not arrived yet.
    coming: u64,
    /// Rounds that failed, until each caller they covered has seen it.
    failed: Vec<Failure>,
}

/// A failed fsync and the tickets it was to make durable.
struct Failure {
    /// The first and last ticket of the round.
    first: u64,
    last: u64,
    /// Callers of the round that have not taken the error yet.
    left: u64,
    kind: io::ErrorKind,
    text: String,
}

/// Counts of what [`sync`] did, for statistics and tests.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    /// Calls to [`sync`].
    pub requests: u64,
    /// fsyncs actually made.
    pub fsyncs: u64,
}

static GROUPS: OnceLock<Mutex<HashMap<PathBuf, Arc<Group>>>> = OnceLock::new();
static COUNTS: Mutex<Counts> = Mutex::new(Counts {
    requests: 0,
    fsyncs: 0,
});

/// A writer on its way to an entry in a directory (see "Waiting for
/// company" above): made by [`coming`] before the writer's slow step, used
/// by [`Coming::sync`] once the entry is made. Dropped unused (the writer
/// failed), it withdraws, and no leader waits for it any more.
pub struct Coming {
    dir: PathBuf,
    group: Arc<Group>,
    live: bool,
}

/// Announces a writer that will soon make an entry in `dir` and want it
/// durable, so that a round starting meanwhile waits for it a little.
pub fn coming(dir: &Path) -> Coming {
    let group = group(dir);
    group.state.lock().unwrap_or_else(|e| e.into_inner()).coming += 1;
    Coming {
        dir: dir.to_path_buf(),
        group,
        live: true,
    }
}

impl Coming {
    /// [`sync`] for the entry this writer announced and has now made.
    pub fn sync(self) -> io::Result<()> {
        self.sync_using(COMPANY_WAIT, super::fsync_dir)
    }

    /// [`Coming::sync`] with the wait and the fsync given (tests).
    fn sync_using(
        mut self,
        wait: Duration,
        fsync: impl Fn(&Path) -> io::Result<()>,
    ) -> io::Result<()> {
        self.live = false;
        sync_group(&self.dir, &self.group, true, wait, fsync)
    }
}

impl Drop for Coming {
    fn drop(&mut self) {
        if self.live {
            let mut st = self.group.state.lock().unwrap_or_else(|e| e.into_inner());
            st.coming = st.coming.saturating_sub(1);
            self.group.arrived.notify_all();
        }
    }
}

/// Makes the entries the caller made in `dir` durable, sharing the fsync
/// with every other thread of this process doing the same at the same time.
pub fn sync(dir: &Path) -> io::Result<()> {
    sync_with(dir, super::fsync_dir)
}

/// The rounds of `dir`.
fn group(dir: &Path) -> Arc<Group> {
    let groups = GROUPS.get_or_init(Default::default);
    let mut g = groups.lock().unwrap_or_else(|e| e.into_inner());
    g.entry(dir.to_path_buf()).or_default().clone()
}

/// [`sync`] with the fsync given (tests slow it down).
fn sync_with(dir: &Path, fsync: impl Fn(&Path) -> io::Result<()>) -> io::Result<()> {
    sync_group(dir, &group(dir), false, COMPANY_WAIT, fsync)
}

/// [`sync`] in `group`; `arriving`: the caller was announced by [`coming`];
/// `wait`: the longest a leader waits for company.
fn sync_group(
    dir: &Path,
    group: &Group,
    arriving: bool,
    wait: Duration,
    fsync: impl Fn(&Path) -> io::Result<()>,
) -> io::Result<()> {
    bump(|c| c.requests += 1);
    let mut st = group.state.lock().unwrap_or_else(|e| e.into_inner());
    if arriving {
        st.coming = st.coming.saturating_sub(1);
        group.arrived.notify_all();
    }
    st.issued += 1;
    let ticket = st.issued;
    loop {
        if let Some(e) = take_failure(&mut st, ticket) {
            return Err(e);
        }
        if st.done >= ticket {
            return Ok(());
        }
        if !st.running {
            st.running = true;
            // Company: writers announced and still on their way take their
            // tickets while this leader waits, and this round covers them.
            let until = Instant::now() + wait;
            while st.coming > 0 {
                let left = until.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                st = group
                    .arrived
                    .wait_timeout(st, left)
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
            // Everything ticketed until now was linked before this fsync
            // starts, and rounds run one at a time, so this one settles
            // exactly the tickets after `done`.
            let (first, last) = (st.done + 1, st.issued);
            drop(st);
            bump(|c| c.fsyncs += 1);
            let r = fsync(dir);
            st = group.state.lock().unwrap_or_else(|e| e.into_inner());
            st.running = false;
            st.done = last;
            if let Err(e) = &r {
                // Every other caller of the round gets the error too.
                if last > first {
                    st.failed.push(Failure {
                        first,
                        last,
                        left: last - first,
                        kind: e.kind(),
                        text: e.to_string(),
                    });
                }
            }
            group.ended.notify_all();
            return r;
        }
        st = group.ended.wait(st).unwrap_or_else(|e| e.into_inner());
    }
}

/// The error of the failed round that covered `ticket`, if one did (each
/// caller takes it once; the record goes when all have).
fn take_failure(st: &mut Round, ticket: u64) -> Option<io::Error> {
    let i = st
        .failed
        .iter()
        .position(|f| (f.first..=f.last).contains(&ticket))?;
    let f = &mut st.failed[i];
    f.left -= 1;
    let e = io::Error::new(f.kind, format!("{} (shared fsync)", f.text));
    if f.left == 0 {
        st.failed.swap_remove(i);
    }
    Some(e)
}

/// What [`sync`] did in this process so far.
pub fn counts() -> Counts {
    *COUNTS.lock().unwrap_or_else(|e| e.into_inner())
}

fn bump(f: impl FnOnce(&mut Counts)) {
    f(&mut COUNTS.lock().unwrap_or_else(|e| e.into_inner()));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concurrent_syncs_share_fsyncs_and_all_return() {
        let dir = tempfile::tempdir().unwrap();
        let before = counts();
        std::thread::scope(|s| {
            for i in 0..32 {
                let d = dir.path();
                s.spawn(move || {
                    std::fs::write(d.join(i.to_string()), b"x").unwrap();
                    sync(d).unwrap();
                });
            }
        });
        let after = counts();
        assert!(after.requests - before.requests >= 32);
        assert!(after.fsyncs > before.fsyncs);
    }

    #[test]
    fn callers_arriving_during_an_fsync_share_the_next_one() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::time::Duration;
        let dir = tempfile::tempdir().unwrap();
        let made = AtomicUsize::new(0);
        let slow = |_: &Path| -> io::Result<()> {
            made.fetch_add(1, Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(300));
            Ok(())
        };
        std::thread::scope(|s| {
            s.spawn(|| sync_with(dir.path(), slow).unwrap());
            std::thread::sleep(Duration::from_millis(100));
            // Ten callers while the first fsync runs: it started before their
            // entries, so it does not cover them; one more fsync covers all ten.
            for _ in 0..10 {
                s.spawn(|| sync_with(dir.path(), slow).unwrap());
            }
        });
        assert_eq!(made.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn a_caller_returns_only_after_an_fsync_that_started_after_its_entry() {
        use std::sync::atomic::{AtomicU64, Ordering};
        use std::time::Duration;
        let dir = tempfile::tempdir().unwrap();
        // One logical clock for entries, fsync starts and ends, and returns.
        let clock = AtomicU64::new(0);
        let rounds: Mutex<Vec<(u64, u64)>> = Mutex::new(Vec::new());
        let fsync = |_: &Path| -> io::Result<()> {
            let start = clock.fetch_add(1, Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(3));
            let end = clock.fetch_add(1, Ordering::SeqCst);
            rounds.lock().unwrap().push((start, end));
            Ok(())
        };
        let calls: Mutex<Vec<(u64, u64)>> = Mutex::new(Vec::new());
        std::thread::scope(|s| {
            for t in 0..16u64 {
                let (dir, clock, calls, fsync) = (dir.path(), &clock, &calls, &fsync);
                s.spawn(move || {
                    for i in 0..20u64 {
                        std::thread::sleep(Duration::from_micros((t * 7 + i * 13) % 900));
                        let entry = clock.fetch_add(1, Ordering::SeqCst);
                        sync_with(dir, fsync).unwrap();
                        let back = clock.fetch_add(1, Ordering::SeqCst);
                        calls.lock().unwrap().push((entry, back));
                    }
                });
            }
        });
        let rounds = rounds.into_inner().unwrap();
        let calls = calls.into_inner().unwrap();
        assert_eq!(calls.len(), 320);
        for (entry, back) in calls {
            assert!(
                rounds.iter().any(|&(s, e)| s > entry && e < back),
                "a caller (entry {entry}, back {back}) returned without an fsync after its entry"
            );
        }
        // Shared, not one fsync per caller.
        assert!(rounds.len() < 320, "{} fsyncs", rounds.len());
    }

    #[test]
    fn a_failed_fsync_fails_every_caller_it_covered() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::time::Duration;
        let dir = tempfile::tempdir().unwrap();
        let made = AtomicUsize::new(0);
        // The first fsync succeeds slowly; the second (for the ten callers
        // that arrived during the first) fails.
        let flaky = |_: &Path| -> io::Result<()> {
            let n = made.fetch_add(1, Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(300));
            if n == 0 {
                Ok(())
            } else {
                Err(io::Error::other("write-back failed"))
            }
        };
        let failed = AtomicUsize::new(0);
        std::thread::scope(|s| {
            s.spawn(|| sync_with(dir.path(), flaky).unwrap());
            std::thread::sleep(Duration::from_millis(100));
            for _ in 0..10 {
                s.spawn(|| {
                    let e = sync_with(dir.path(), flaky).unwrap_err();
                    assert!(e.to_string().contains("write-back failed"), "{e}");
                    failed.fetch_add(1, Ordering::SeqCst);
                });
            }
        });
        // Nobody tried again on their own (which could have succeeded).
        assert_eq!(made.load(Ordering::SeqCst), 2);
        assert_eq!(failed.load(Ordering::SeqCst), 10);
        // The failure was taken by all: a later caller starts afresh.
        let ok = |_: &Path| -> io::Result<()> { Ok(()) };
        sync_with(dir.path(), ok).unwrap();
    }

    #[test]
    fn a_leader_waits_for_an_announced_writer_and_one_fsync_covers_both() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::time::Duration;
        let dir = tempfile::tempdir().unwrap();
        let made = AtomicUsize::new(0);
        let count = |_: &Path| -> io::Result<()> {
            made.fetch_add(1, Ordering::SeqCst);
            Ok(())
        };
        let wait = Duration::from_secs(20);
        let coming = coming(dir.path());
        let started = Instant::now();
        std::thread::scope(|s| {
            s.spawn(|| {
                // On its way: its file's fsync, then its entry.
                std::thread::sleep(Duration::from_millis(100));
                coming.sync_using(wait, count).unwrap();
            });
            // Arrives first and leads; it waits for the announced writer
            // instead of syncing alone.
            sync_group(dir.path(), &group(dir.path()), false, wait, count).unwrap();
            assert!(started.elapsed() >= Duration::from_millis(100));
        });
        assert_eq!(made.load(Ordering::SeqCst), 1);
        assert!(started.elapsed() < Duration::from_secs(10));
    }

    #[test]
    fn a_writer_that_gives_up_releases_the_leader() {
        use std::time::Duration;
        let dir = tempfile::tempdir().unwrap();
        let ok = |_: &Path| -> io::Result<()> { Ok(()) };
        let wait = Duration::from_secs(20);
        let coming = coming(dir.path());
        let started = Instant::now();
        std::thread::scope(|s| {
            s.spawn(move || {
                std::thread::sleep(Duration::from_millis(100));
                drop(coming); // its write failed: no entry will come
            });
            sync_group(dir.path(), &group(dir.path()), false, wait, ok).unwrap();
        });
        assert!(started.elapsed() < Duration::from_secs(10));
        // With no writer announced, a leader does not wait at all.
        let started = Instant::now();
        sync_group(dir.path(), &group(dir.path()), false, wait, ok).unwrap();
        assert!(started.elapsed() < Duration::from_secs(10));
    }

    #[test]
    fn a_missing_directory_is_an_error_for_its_caller() {
        let dir = tempfile::tempdir().unwrap();
        assert!(sync(&dir.path().join("nope")).is_err());
        sync(dir.path()).unwrap();
    }
}
