//! Single-instance delivery to many Maildirs with the directory syncs done
//! in parallel, and shared with the other jobs of the process.
//!
//! The last target that needs the message takes the `tmp/` file itself by a
//! rename that never replaces a name (the library's `move_or_copy`): for the
//! usual job of one mailbox that is one directory operation where a link
//! and an unlink took two.
//!
//! `maildir::deliver_many` links and fsyncs `new/` target after target; a
//! directory fsync costs a journal commit (about 5 ms here), so a message to
//! 1,000 mailboxes spent seconds waiting on them one at a time. Concurrent
//! fsyncs share commits: done from a few threads, 1,000 of them take a tenth
//! of a second (`bench/local_fanout.py`). This module runs the Maildir
//! library's own steps — `find_delivery`, `write_tmp` once, link, fsync
//! `new/`, `quota::record` — with steps 4 and 5 spread over threads. The
//! fsync of `new/` goes through [`crate::sys::dirsync`], so concurrent jobs
//! delivering into one Maildir (a busy mailbox, several connections from
//! kmp-send) share it. The durability argument is the library's, unchanged:
//! nothing is reported delivered before an fsync of its `new/` that started
//! after its link has ended.
//!
//! A job kmp-send marks `fresh` (the first and only job of the message's
//! first attempt in kmp-send's life) cannot have delivered anything before,
//! so the look-up of earlier deliveries by id (a read of `new/` and `cur/`,
//! long in a big mailbox) is skipped for it.

use std::fs;
use std::io::Read;
use std::time::SystemTime;

use crate::maildir::deliver::{link_or_copy, move_or_copy, write_tmp, TmpFile};
use crate::maildir::{self, name, quota, Delivered, Error, Target};

/// Below this many targets the steps run in the job's own thread.
pub const MIN_PARALLEL: usize = 8;
/// Threads for the parallel steps.
pub const THREADS: usize = 8;

/// Delivers `data` to every target: one file, hard-linked into each (a copy
/// on another file system). One result per target, in order. `fresh`: no
/// earlier delivery of these ids can exist (see the module doc).
pub fn deliver(
    targets: &[Target<'_>],
    data: &mut dyn Read,
    fresh: bool,
) -> Vec<maildir::Result<Delivered>> {
    // Earlier deliveries of the same ids (a retry): not written again.
    let mut results: Vec<Option<maildir::Result<Delivered>>> = vec_none(targets.len());
    if !fresh {
        each(&mut results, targets, |slot, t| {
            *slot = match t
                .delivery_id
                .map(|id| t.folder.find_delivery(id, t.arrived))
            {
                Some(Ok(Some(d))) => Some(Ok(d)),
                Some(Err(e)) => Some(Err(e)),
                _ => None,
            };
        });
    }
    let Some(first) = results.iter().position(Option::is_none) else {
        return results.into_iter().flatten().collect();
    };
    // The last target that needs the message is announced to the group
    // commit of its new/ before the write (see sys::dirsync): a round of
    // that directory starting meanwhile waits a moment for this entry.
    let last = results.iter().rposition(Option::is_none).unwrap_or(first);
    let coming = crate::sys::dirsync::coming(&targets[last].folder.path().join("new"));
    // Steps 1-3 once, in the first Maildir that needs the message.
    let tmp = match write_tmp(
        targets[first].folder.path(),
        data,
        None,
        targets[first].delivery_id,
    ) {
        Ok(t) => t,
        Err(e) => {
            return results
                .into_iter()
                .map(|r| r.unwrap_or_else(|| Err(e.same())))
                .collect();
        }
    };
    // Steps 4-5 for all but the last target that needs the message, in
    // parallel when there are many; then the last takes the tmp/ file
    // itself, by a rename (steps 4 and 6 at once), once no link needs its
    // name any more.
    let (before, rest) = results.split_at_mut(last);
    each(before, &targets[..last], |slot, t| {
        if slot.is_none() {
            *slot = Some(place(&tmp, t, None).0);
        }
    });
    let (r, taken) = place(&tmp, &targets[last], Some(coming));
    rest[0] = Some(r);
    // Step 6: a crash before leaves a second name of a delivered file in tmp/.
    if !taken {
        let _ = fs::remove_file(&tmp.path);
    }
    results.into_iter().flatten().collect()
}

/// [`parallel`] from [`MIN_PARALLEL`] items on, else in this thread.
fn each<S: Send, I: Sync>(slots: &mut [S], items: &[I], f: impl Fn(&mut S, &I) + Sync) {
    if slots.len() < MIN_PARALLEL {
        for (s, i) in slots.iter_mut().zip(items) {
            f(s, i);
        }
    } else {
        parallel(slots, items, f);
    }
}

fn vec_none<T>(n: usize) -> Vec<Option<T>> {
    (0..n).map(|_| None).collect()
}

/// Link into `new/` (for the last target, which comes with its
/// announcement, rename the tmp file there: the library's `move_or_copy`),
/// fsync `new/`, count it in `maildirsize`: the library's steps 4 and 5 for
/// one target. Also returns whether the tmp file's own name was taken.
fn place(
    tmp: &TmpFile,
    t: &Target<'_>,
    last: Option<crate::sys::dirsync::Coming>,
) -> (maildir::Result<Delivered>, bool) {
    let dir = t.folder.path();
    let base = name::with_sizes(
        &name::unique(SystemTime::now(), t.delivery_id),
        tmp.size,
        tmp.vsize,
    );
    let dest = dir.join("new").join(&base);
    let taken = match last {
        Some(_) => move_or_copy(tmp, dir, &dest),
        None => link_or_copy(tmp, dir, &dest, None).map(|()| false),
    };
    let taken = match taken {
        Ok(t) => t,
        Err(e) => return (Err(e), false),
    };
    let new = dir.join("new");
    let synced = match last {
        Some(coming) => coming.sync(),
        None => crate::sys::dirsync::sync(&new),
    };
    if let Err(e) = synced {
        return (Err(Error::io("fsync", &new, e)), taken);
    }
    quota::record(t.folder, tmp.size as i64, 1);
    let d = Delivered {
        base,
        path: dest,
        size: tmp.size,
        vsize: tmp.vsize,
        duplicate: false,
    };
    (Ok(d), taken)
}

/// Runs `f` on each (slot, item) pair from [`THREADS`] threads, each taking a
/// contiguous share.
pub fn parallel<S: Send, I: Sync>(slots: &mut [S], items: &[I], f: impl Fn(&mut S, &I) + Sync) {
    let per = slots.len().div_ceil(THREADS).max(1);
    std::thread::scope(|scope| {
        for (s, i) in slots.chunks_mut(per).zip(items.chunks(per)) {
            let f = &f;
            scope.spawn(move || {
                for (slot, item) in s.iter_mut().zip(i) {
                    f(slot, item);
                }
            });
        }
    });
}

/// Runs `f` on each slot from [`THREADS`] threads when there are at least
/// [`MIN_PARALLEL`] of them, else in this thread.
pub fn for_each_mut<S: Send>(slots: &mut [S], f: impl Fn(&mut S) + Sync) {
    if slots.len() < MIN_PARALLEL {
        slots.iter_mut().for_each(f);
        return;
    }
    let units = vec![(); slots.len()];
    parallel(slots, &units, |s, _| f(s));
}
