//! The UID index's trust rule (lib/maildir/index/stamp.rs): a new view of a
//! folder reads no directory when the index ends with a sync stamp that
//! matches `new/` and `cur/`, and sees every change another program made
//! there — a message added to `cur/` or `new/`, a file renamed (flags) or
//! removed — even when that program put the directory's mtime back. A torn
//! or damaged stamp costs a directory read, never a UID.
//!
//! Directories are aged by setting their mtime into the past (the stamp is
//! written only for mtimes older than two seconds), so no test sleeps.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use kmpromail::maildir::{Flags, Maildir, Uid};

/// Files written straight into `cur/` as another program (mutt, Python's
/// `mailbox`) would: no `S=`/`W=` in the name.
fn outside_files(md: &Maildir, n: usize, sub: &str, first: usize) -> Vec<String> {
    (first..first + n)
        .map(|i| {
            let base = format!("{}.M{i}P99Q{i}.elsewhere", 1_700_000_000 + i);
            let name = if sub == "cur" {
                format!("{base}:2,")
            } else {
                base.clone()
            };
            fs::write(
                md.root().join(sub).join(name),
                format!("Subject: {i}\n\nbody {i}\n"),
            )
            .unwrap();
            base
        })
        .collect()
}

fn set_mtime(dir: &Path, t: SystemTime) {
    File::open(dir).unwrap().set_modified(t).unwrap();
}

fn mtime(dir: &Path) -> SystemTime {
    fs::metadata(dir).unwrap().modified().unwrap()
}

/// Puts both directories' mtimes ten seconds back.
fn age(md: &Maildir) {
    let t = SystemTime::now() - Duration::from_secs(10);
    set_mtime(&md.root().join("new"), t);
    set_mtime(&md.root().join("cur"), t);
}

fn index_path(md: &Maildir) -> PathBuf {
    md.root().join("kmpromail-uidlist")
}

fn last_record(md: &Maildir) -> String {
    let text = fs::read_to_string(index_path(md)).unwrap();
    text.lines().last().unwrap().to_string()
}

fn uids_and_bases(md: &Maildir) -> Vec<(u32, String)> {
    md.inbox()
        .open()
        .unwrap()
        .messages()
        .map(|m| (m.uid.0, m.base.clone()))
        .collect()
}

/// A Maildir of `n` outside messages whose index ends with a sync stamp.
fn stamped(n: usize) -> (tempfile::TempDir, Maildir) {
    let d = tempfile::tempdir().unwrap();
    let md = Maildir::create(d.path().join("u")).unwrap();
    outside_files(&md, n, "cur", 0);
    age(&md);
    let mb = md.inbox().open().unwrap();
    assert_eq!(mb.len(), n);
    assert!(mb.dir_reads() >= 2, "the first open reads both directories");
    assert!(
        last_record(&md).starts_with("S N"),
        "a sync of settled directories ends the index with a stamp: {}",
        last_record(&md)
    );
    (d, md)
}

#[test]
fn a_new_view_trusts_a_stamped_index_and_reads_no_directory() {
    let (_d, md) = stamped(20);
    let before = uids_and_bases(&md);
    let mb = md.inbox().open().unwrap();
    assert_eq!(mb.dir_reads(), 0, "nothing changed: no readdir");
    assert_eq!(
        mb.messages()
            .map(|m| (m.uid.0, m.base.clone()))
            .collect::<Vec<_>>(),
        before
    );
    // A sync of that view with nothing changed writes nothing either.
    let len = fs::metadata(index_path(&md)).unwrap().len();
    let mut mb = mb;
    assert!(mb.sync().unwrap().is_empty());
    assert_eq!(fs::metadata(index_path(&md)).unwrap().len(), len);
}

#[test]
fn a_message_added_to_cur_by_another_program_is_seen_even_with_the_old_mtime() {
    let (_d, md) = stamped(5);
    let cur = md.root().join("cur");
    let old = mtime(&cur);
    let added = outside_files(&md, 1, "cur", 100);
    // The program put cur/'s mtime back (as a restore would): ctime moved.
    set_mtime(&cur, old);
    let mb = md.inbox().open().unwrap();
    assert!(mb.dir_reads() > 0);
    assert_eq!(mb.len(), 6);
    let last = mb.messages().last().unwrap();
    assert_eq!((last.uid, last.base.as_str()), (Uid(6), added[0].as_str()));
}

#[test]
fn a_message_delivered_to_new_by_another_program_is_seen() {
    let (_d, md) = stamped(5);
    let added = outside_files(&md, 1, "new", 100);
    let mb = md.inbox().open().unwrap();
    assert_eq!(mb.len(), 6);
    assert!(mb.get(Uid(6)).is_some_and(|m| m.base == added[0]));
    // Our own delivery, too.
    md.inbox()
        .deliver(&mut &b"Subject: x\n\ny\n"[..], None)
        .unwrap();
    assert_eq!(md.inbox().open().unwrap().len(), 7);
}

#[test]
fn a_file_renamed_by_another_program_shows_its_new_flags() {
    let (_d, md) = stamped(5);
    let before = uids_and_bases(&md);
    let cur = md.root().join("cur");
    let old = mtime(&cur);
    let (uid, base) = before[2].clone();
    fs::rename(
        cur.join(format!("{base}:2,")),
        cur.join(format!("{base}:2,FS")),
    )
    .unwrap();
    set_mtime(&cur, old);
    let mb = md.inbox().open().unwrap();
    let m = mb.get(Uid(uid)).unwrap();
    assert!(m.flags.flags.contains(Flags::SEEN | Flags::FLAGGED));
    assert_eq!(uids_and_bases(&md), before, "a rename keeps the UID");
}

#[test]
fn a_file_removed_by_another_program_is_gone() {
    let (_d, md) = stamped(5);
    let before = uids_and_bases(&md);
    let cur = md.root().join("cur");
    let old = mtime(&cur);
    fs::remove_file(cur.join(format!("{}:2,", before[0].1))).unwrap();
    set_mtime(&cur, old);
    let mb = md.inbox().open().unwrap();
    assert_eq!(mb.len(), 4);
    assert!(mb.get(Uid(before[0].0)).is_none());
    assert!(mb.uid_next().0 > 5, "the UID is not given again");
}

#[test]
fn a_change_by_another_view_voids_the_stamp() {
    let (_d, md) = stamped(5);
    let mut a = md.inbox().open().unwrap();
    a.store(
        &[Uid(1)],
        kmpromail::maildir::FlagOp::Add,
        Flags::SEEN,
        &[],
        None,
    )
    .unwrap();
    assert!(
        !last_record(&md).starts_with("S "),
        "a record after the stamp"
    );
    let b = md.inbox().open().unwrap();
    assert!(
        b.dir_reads() > 0,
        "a stamp followed by a record is not trusted"
    );
    assert!(b.get(Uid(1)).unwrap().flags.flags.contains(Flags::SEEN));
}

#[test]
fn a_fresh_directory_change_is_not_stamped_until_it_settles() {
    let (_d, md) = stamped(5);
    outside_files(&md, 1, "cur", 100);
    // cur/ changed just now: the sync that reads it must not vouch for it,
    // since a change in the same clock tick would not show.
    let mb = md.inbox().open().unwrap();
    assert_eq!(mb.len(), 6);
    assert!(!last_record(&md).starts_with("S "));
    age(&md);
    let mb = md.inbox().open().unwrap();
    assert!(mb.dir_reads() > 0);
    assert!(last_record(&md).starts_with("S "));
    assert_eq!(md.inbox().open().unwrap().dir_reads(), 0);
}

#[test]
fn a_torn_or_damaged_stamp_costs_a_read_and_no_uid() {
    let (_d, md) = stamped(8);
    let before = uids_and_bases(&md);
    let path = index_path(&md);
    let text = fs::read_to_string(&path).unwrap();
    // Torn mid-stamp (a crash while it was appended): the last line has no
    // newline and is cut off.
    let torn = &text[..text.len() - 7];
    fs::write(&path, torn).unwrap();
    let mb = md.inbox().open().unwrap();
    assert!(
        mb.dir_reads() > 0,
        "no whole stamp: the directories are read"
    );
    assert_eq!(uids_and_bases(&md), before);
    assert!(fs::read_to_string(&path).unwrap().ends_with('\n'));
    // A whole line that does not parse: the file is rewritten clean with
    // every UID, and the next sync stamps it again.
    let mut text = fs::read_to_string(&path).unwrap();
    text.push_str("S N1.x C2.3.4\n");
    fs::write(&path, text).unwrap();
    let mb = md.inbox().open().unwrap();
    assert!(mb.dir_reads() > 0);
    assert_eq!(uids_and_bases(&md), before);
    assert!(!fs::read_to_string(&path).unwrap().contains("S N1.x"));
    assert_eq!(md.inbox().open().unwrap().dir_reads(), 0);
}

#[test]
fn a_lost_index_is_rebuilt_from_the_files() {
    let (_d, md) = stamped(4);
    let v = md.inbox().open().unwrap().uid_validity();
    fs::remove_file(index_path(&md)).unwrap();
    let mb = md.inbox().open().unwrap();
    assert!(mb.dir_reads() > 0);
    assert_eq!(mb.len(), 4);
    assert_ne!(
        mb.uid_validity(),
        v,
        "UIDs start over under a new UIDVALIDITY"
    );
}

#[test]
fn a_large_folder_from_another_program_is_sized_and_numbered_in_delivery_order() {
    // Enough unsized files for the scan to spread the counting over threads.
    let d = tempfile::tempdir().unwrap();
    let md = Maildir::create(d.path().join("u")).unwrap();
    let n = 5000;
    let mut want = Vec::new();
    for i in 0..n {
        // Microseconds not zero-padded: names alone do not sort in time order.
        let base = format!("1700000000.M{}P7Q{i}.elsewhere", n - i);
        let body = format!("Subject: {i}\n\n{}", "line\n".repeat(i % 7));
        let bare = body.matches('\n').count() as u64;
        fs::write(md.root().join("cur").join(format!("{base}:2,S")), &body).unwrap();
        want.push((n - i, base, body.len() as u64 + bare));
    }
    want.sort();
    let mb = md.inbox().open().unwrap();
    assert_eq!(mb.len(), n);
    for (m, (_, base, vsize)) in mb.messages().zip(&want) {
        assert_eq!((&m.base, m.vsize), (base, *vsize), "UID {}", m.uid.0);
        assert!(m.flags.flags.contains(Flags::SEEN));
    }
}
