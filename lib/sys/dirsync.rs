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

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, OnceLock};

/// The rounds of one directory.
#[derive(Default)]
struct Group {
    state: Mutex<Round>,
    ended: Condvar,
}

#[derive(Default)]
struct Round {
    /// Tickets given out (one per entry waiting to be durable).
    issued: u64,
    /// Every ticket up to this one is durable.
    done: u64,
    /// An fsync of the directory is running.
    running: bool,
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

/// Makes the entries the caller made in `dir` durable, sharing the fsync
/// with every other thread of this process doing the same at the same time.
pub fn sync(dir: &Path) -> io::Result<()> {
    sync_with(dir, super::fsync_dir)
}

/// [`sync`] with the fsync given (tests slow it down).
fn sync_with(dir: &Path, fsync: impl Fn(&Path) -> io::Result<()>) -> io::Result<()> {
    let group = {
        let groups = GROUPS.get_or_init(Default::default);
        let mut g = groups.lock().unwrap_or_else(|e| e.into_inner());
        g.entry(dir.to_path_buf()).or_default().clone()
    };
    bump(|c| c.requests += 1);
    let mut st = group.state.lock().unwrap_or_else(|e| e.into_inner());
    st.issued += 1;
    let ticket = st.issued;
    loop {
        if st.done >= ticket {
            return Ok(());
        }
        if !st.running {
            // Everything ticketed until now was linked before this fsync starts.
            st.running = true;
            let upto = st.issued;
            drop(st);
            bump(|c| c.fsyncs += 1);
            let r = fsync(dir);
            st = group.state.lock().unwrap_or_else(|e| e.into_inner());
            st.running = false;
            if r.is_ok() {
                st.done = st.done.max(upto);
            }
            // On failure the waiters find their tickets uncovered and try
            // themselves, so each of them sees its own error.
            group.ended.notify_all();
            return r;
        }
        st = group.ended.wait(st).unwrap_or_else(|e| e.into_inner());
    }
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
    fn a_missing_directory_is_an_error_for_its_caller() {
        let dir = tempfile::tempdir().unwrap();
        assert!(sync(&dir.path().join("nope")).is_err());
        sync(dir.path()).unwrap();
    }
}
