//! Sending digests: an issue is prepared once, handed to the queue once,
//! and distributed by kmp-local once, whatever crashes in between.
//!
//! The posts wait in `STATE/digest/` ([`super::digest::DigestBox`]). When
//! a digest is due ([`super::digest::due`]: the list's count or size
//! threshold, or its interval since the first waiting post) or asked for
//! (`kmpctl list digest`), [`run`]:
//!
//! | step | writes | a crash after it leaves |
//! |---|---|---|
//! | 1 | `issue-K.posts` (the post numbers), `issue-K.eml` (the digest), each written to a temporary name, fsynced, renamed | a prepared issue: the next run takes it up instead of building another |
//! | 2 | `state` = K, the posts' files removed | the same; removing again is harmless |
//! | 3 | a mail from the null sender to `LIST-digest-K@` through kmp-inject | the issue in the queue; the next run hands it over again |
//! | 4 | `issue-K.queued` | nothing left to do here |
//!
//! kmp-local, given mail for `LIST-digest-K@` ([`super::distribute`]),
//! reads `issue-K.eml` (never the mail, which anyone could send), delivers
//! it to the digest members with the same single-instance links, delivery
//! ids and per-member done-marks as a post (the "queue id" being
//! `digestK`), and removes the issue's files. A second mail for the same
//! issue (step 3 repeated) finds no file and is dropped: each digest goes
//! to each member once. One flock (`STATE/digest/.lock`) serialises
//! [`run`] in kmp-local and kmpctl and the distribution of an issue.
//!
//! Who runs it: kmp-local after each post kept for the digest (so the
//! count and size thresholds act at once), and after each issue it
//! distributed; `kmpctl list digest --due` from cron for the interval
//! (hourly is enough for the default of a day).

use std::io::Write;
use std::path::{Path, PathBuf};

use super::digest::{self, DigestBox, Issue, State};
use super::{List, Role};

/// The lock file in the digest directory.
pub const LOCK: &str = ".lock";
/// At most this many posts go into one issue; the rest wait for the next.
pub const MAX_POSTS: usize = 500;

/// What a run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ran {
    /// Nothing waiting, or not due.
    Nothing,
    /// Issue `issue` with `posts` posts was handed to the queue.
    Queued { issue: u64, posts: usize },
    /// Issue `issue` is in the queue already, not yet distributed.
    Waiting { issue: u64 },
}

impl std::fmt::Display for Ran {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Ran::Nothing => f.write_str("no digest due"),
            Ran::Queued { issue, posts } => {
                write!(f, "digest #{issue} queued ({posts} post(s))")
            }
            Ran::Waiting { issue } => write!(f, "digest #{issue} is queued, not yet delivered"),
        }
    }
}

/// What building an issue needs besides the list.
#[derive(Debug, Clone)]
pub struct Options<'a> {
    /// `lists.digest_plain`: RFC 1153 text instead of MIME.
    pub plain: bool,
    /// `system.hostname`, for the Message-ID.
    pub hostname: &'a str,
    /// Unix seconds.
    pub now: u64,
    /// Send what is waiting even if not due (`kmpctl list digest` without
    /// `--due`).
    pub force: bool,
}

/// The digest directory of a list's state directory.
pub fn dir(state: &Path) -> PathBuf {
    state.join("digest")
}

/// The prepared issue `k`'s message file.
pub fn issue_file(state: &Path, k: u64) -> PathBuf {
    dir(state).join(format!("issue-{k}.eml"))
}

/// Prepares and queues the list's next digest if one is due (see the module
/// doc). `inject` hands a mail to the queue: return path (empty: null),
/// recipients, message.
pub fn run(
    list: &List,
    state: &Path,
    o: &Options<'_>,
    inject: &mut super::commands::Inject<'_>,
) -> Result<Ran, String> {
    let d = dir(state);
    super::store::make_dirs(&d).map_err(|e| format!("{}: {e}", d.display()))?;
    let _lock = crate::maildir::lock::exclusive(&d.join(LOCK)).map_err(|e| e.to_string())?;
    give(&d, LOCK);
    let bx = DigestBox::new(&d);
    let (k, posts) = match prepared(&d) {
        Some(k) => {
            let n = finish(&bx, &d, k, o.now)?;
            (k, n)
        }
        None => {
            let pending = bx.pending();
            let bytes: u64 = pending.iter().map(|(_, b)| b).sum();
            let first = bx.first_waiting().unwrap_or(o.now);
            let due = digest::due(&list.digest, o.now, pending.len(), bytes, first);
            if pending.is_empty() || !(o.force || due) {
                return Ok(Ran::Nothing);
            }
            let posts = bx.posts(MAX_POSTS);
            if posts.is_empty() {
                return Ok(Ran::Nothing);
            }
            let k = bx.state().issue + 1;
            let is = Issue {
                list: &list.address,
                number: k,
                now: o.now,
                hostname: o.hostname,
            };
            let from = list.role_address(&Role::Owner);
            let bytes = if o.plain {
                digest::plain(&is, &posts, &from, &list.address)
            } else {
                digest::mime(&is, &posts, &from, &list.address)
            };
            let numbers: String = posts.iter().map(|p| format!("{}\n", p.number)).collect();
            // Step 1: the numbers first, so a prepared issue always has them.
            write_durable(&d.join(format!("issue-{k}.posts")), numbers.as_bytes())?;
            give(&d, &format!("issue-{k}.posts"));
            write_durable(&issue_file(state, k), &bytes)?;
            give(&d, &format!("issue-{k}.eml"));
            pause("prepared");
            // Step 2.
            finish(&bx, &d, k, o.now)?;
            (k, posts.len())
        }
    };
    let queued = d.join(format!("issue-{k}.queued"));
    if queued.exists() {
        return Ok(Ran::Waiting { issue: k });
    }
    // Step 3: the mail that has kmp-local distribute the issue.
    let to = list.role_address(&Role::Digest(k.to_string()));
    let trigger = format!(
        "From: <{from}>\nTo: <{to}>\nSubject: digest #{k} of {list}\nAuto-Submitted: auto-generated\nPrecedence: list\n\nIssue {k} of the digest of {list} is ready in the list's state directory.\n",
        from = list.role_address(&Role::Owner),
        list = list.address,
    );
    inject("", std::slice::from_ref(&to), trigger.as_bytes())?;
    pause("queued");
    // Step 4.
    std::fs::write(&queued, b"").map_err(|e| format!("{}: {e}", queued.display()))?;
    give(&d, &format!("issue-{k}.queued"));
    Ok(Ran::Queued { issue: k, posts })
}

/// The posts of prepared issue `k` leave the box, and the issue count
/// becomes `k` (step 2; also on taking up an issue a crash left). Returns
/// how many posts the issue has.
fn finish(bx: &DigestBox, d: &Path, k: u64, now: u64) -> Result<usize, String> {
    let list = d.join(format!("issue-{k}.posts"));
    let text = match std::fs::read_to_string(&list) {
        Ok(t) => t,
        // Written before the message, so only gone if removed by hand.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(format!("{}: {e}", list.display())),
    };
    let numbers: Vec<u64> = text.lines().filter_map(|l| l.trim().parse().ok()).collect();
    let st = bx.state();
    let next = State {
        issue: st.issue.max(k),
        last_sent: if st.issue < k { now } else { st.last_sent },
    };
    bx.sent(next, &numbers)
        .map_err(|e| format!("{}: {e}", d.display()))?;
    give(d, "state");
    Ok(numbers.len())
}

/// Run as root (kmpctl), gives the file `name` of the digest directory `d`
/// to the directory's owner (vmail), so that kmp-local can lock, read and
/// replace it.
fn give(d: &Path, name: &str) {
    use std::os::unix::fs::MetadataExt;
    if !crate::sys::privs::is_root() {
        return;
    }
    if let Ok(m) = std::fs::metadata(d) {
        let _ = std::os::unix::fs::chown(d.join(name), Some(m.uid()), Some(m.gid()));
    }
}

/// The lowest prepared issue (an `issue-K.eml`), if any.
pub fn prepared(d: &Path) -> Option<u64> {
    std::fs::read_dir(d)
        .ok()?
        .flatten()
        .filter_map(|e| {
            let name = e.file_name();
            let n = name.to_str()?;
            n.strip_prefix("issue-")?.strip_suffix(".eml")?.parse().ok()
        })
        .min()
}

/// Removes the files of issue `k` once it is distributed.
pub fn done(state: &Path, k: u64) {
    let d = dir(state);
    // The message first: without it the issue is done, and a crash before
    // the others leaves only files nothing reads.
    for ext in ["eml", "queued", "posts"] {
        let _ = std::fs::remove_file(d.join(format!("issue-{k}.{ext}")));
    }
    let _ = crate::sys::dirsync::sync(&d);
}

/// Writes `data` to `path`: a temporary name, fsync, rename, fsync of the
/// directory. A crash leaves the old file or the new one, whole.
fn write_durable(path: &Path, data: &[u8]) -> Result<(), String> {
    let err = |e: std::io::Error| format!("{}: {e}", path.display());
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp).map_err(err)?;
    f.write_all(data).map_err(err)?;
    f.sync_all().map_err(err)?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(err)?;
    if let Some(parent) = path.parent() {
        crate::sys::dirsync::sync(parent).map_err(err)?;
    }
    Ok(())
}

/// A test hook, in debug builds only: with `KMP_TEST_DIGEST_PAUSE=POINT`
/// (`prepared` or `queued`) the run stops there for a minute, so a crash
/// test can kill it at that step.
fn pause(point: &str) {
    #[cfg(debug_assertions)]
    if std::env::var("KMP_TEST_DIGEST_PAUSE").is_ok_and(|p| p == point) {
        eprintln!("pausing at {point} (KMP_TEST_DIGEST_PAUSE)");
        std::thread::sleep(std::time::Duration::from_secs(60));
    }
    #[cfg(not(debug_assertions))]
    let _ = point;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::userdb::Address;

    fn list() -> List {
        let mut l = List::new(&Address::parse("dev@example.test").unwrap(), 0);
        l.digest.enabled = true;
        l.digest.max_messages = 2;
        l
    }

    fn opts(now: u64, force: bool) -> Options<'static> {
        Options {
            plain: false,
            hostname: "mx.example.test",
            now,
            force,
        }
    }

    #[test]
    fn an_issue_is_prepared_once_and_queued_once_across_crashes() {
        let t = tempfile::tempdir().unwrap();
        let state = t.path();
        let bx = DigestBox::new(&dir(state));
        let mut sent: Vec<(String, Vec<String>, Vec<u8>)> = Vec::new();
        let mut inject = |f: &str, to: &[String], d: &[u8]| {
            sent.push((f.to_string(), to.to_vec(), d.to_vec()));
            Ok(())
        };
        bx.add(1, b"Subject: one\n\nfirst\n").unwrap();
        // One post, threshold two, interval not passed: nothing.
        // The box dates a post by its file: now is the clock's.
        let now = crate::userdb::now();
        assert_eq!(
            run(&list(), state, &opts(now, false), &mut inject).unwrap(),
            Ran::Nothing
        );
        bx.add(2, b"Subject: two\n\nsecond\n").unwrap();
        assert_eq!(
            run(&list(), state, &opts(now, false), &mut inject).unwrap(),
            Ran::Queued { issue: 1, posts: 2 }
        );
        assert!(bx.pending().is_empty());
        assert_eq!(bx.state().issue, 1);
        // Run again before kmp-local took it: nothing more is sent.
        assert_eq!(
            run(&list(), state, &opts(now, true), &mut inject).unwrap(),
            Ran::Waiting { issue: 1 }
        );
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].0, "");
        assert_eq!(sent[0].1, ["dev-digest-1@example.test"]);
        let issue = std::fs::read(issue_file(state, 1)).unwrap();
        let text = String::from_utf8_lossy(&issue);
        assert!(text.contains("dev Digest V1 #1"), "{text}");

        // A crash after step 1 of issue 2: the next run takes it up, and the
        // posts are not put in a third issue.
        done(state, 1);
        bx.add(3, b"Subject: three\n\nthird\n").unwrap();
        let d = dir(state);
        write_durable(&d.join("issue-2.posts"), b"3\n").unwrap();
        write_durable(&issue_file(state, 2), b"Subject: dev Digest V1 #2\n\nx\n").unwrap();
        let mut sent = Vec::new();
        let mut inject = |f: &str, to: &[String], d: &[u8]| {
            sent.push((f.to_string(), to.to_vec(), d.to_vec()));
            Ok(())
        };
        assert_eq!(
            run(&list(), state, &opts(now, false), &mut inject).unwrap(),
            Ran::Queued { issue: 2, posts: 1 }
        );
        assert!(bx.pending().is_empty());
        assert_eq!(bx.state().issue, 2);
        done(state, 2);
        assert_eq!(prepared(&d), None);
        assert_eq!(
            run(&list(), state, &opts(now, true), &mut inject).unwrap(),
            Ran::Nothing
        );
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].1, ["dev-digest-2@example.test"]);
    }

    #[test]
    fn a_failed_hand_over_is_tried_again() {
        let t = tempfile::tempdir().unwrap();
        let state = t.path();
        let bx = DigestBox::new(&dir(state));
        bx.add(5, b"Subject: x\n\ny\n").unwrap();
        let mut fail =
            |_: &str, _: &[String], _: &[u8]| -> Result<(), String> { Err("queue full".into()) };
        let e = run(&list(), state, &opts(10, true), &mut fail).unwrap_err();
        assert!(e.contains("queue full"));
        let mut n = 0;
        let mut ok = |_: &str, _: &[String], _: &[u8]| {
            n += 1;
            Ok(())
        };
        assert_eq!(
            run(&list(), state, &opts(20, false), &mut ok).unwrap(),
            Ran::Queued { issue: 1, posts: 1 }
        );
        assert_eq!(n, 1);
    }
}
