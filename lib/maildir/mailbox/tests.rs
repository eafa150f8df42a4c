use super::*;
use crate::maildir::{FlagOp, Flags, Maildir};
use std::io::{Cursor, Read};

fn user() -> (tempfile::TempDir, Maildir) {
    let d = tempfile::tempdir().unwrap();
    let md = Maildir::create(d.path().join("u")).unwrap();
    (d, md)
}

fn deliver(md: &Maildir, n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            let body = format!("Subject: {i}\n\nbody {i}\n");
            md.inbox()
                .deliver(&mut Cursor::new(body.into_bytes()), None)
                .unwrap()
                .base
        })
        .collect()
}

fn uids(mb: &Mailbox) -> Vec<u32> {
    mb.messages().map(|m| m.uid.0).collect()
}

#[test]
fn uids_are_stable_across_sessions_and_increase_with_new_mail() {
    let (_d, md) = user();
    let bases = deliver(&md, 3);
    let mut a = md.inbox().open().unwrap();
    assert_eq!(uids(&a), vec![1, 2, 3]);
    let order: Vec<&str> = a.messages().map(|m| m.base.as_str()).collect();
    assert_eq!(
        order,
        bases.iter().map(String::as_str).collect::<Vec<_>>(),
        "delivery order"
    );
    let m = a.get(Uid(1)).unwrap();
    assert_eq!((m.size, m.vsize, m.loc), (19, 22, Loc::New));
    assert!(m.internal_date > 1_600_000_000);
    let validity = a.uid_validity();
    let b = md.inbox().open().unwrap();
    assert_eq!(uids(&b), vec![1, 2, 3]);
    assert_eq!(b.uid_validity(), validity);
    deliver(&md, 2);
    let c = a.sync().unwrap();
    assert_eq!(c.added, vec![Uid(4), Uid(5)]);
    assert!(c.expunged.is_empty() && c.changed.is_empty() && c.recent.is_empty());
    assert_eq!(a.uid_next(), Uid(6));
    let mut buf = String::new();
    a.open_message(Uid(4))
        .unwrap()
        .read_to_string(&mut buf)
        .unwrap();
    assert_eq!(buf, "Subject: 0\n\nbody 0\n");
    assert!(a.sync().unwrap().is_empty());
}

#[test]
fn move_new_marks_recent_for_one_session_only() {
    let (_d, md) = user();
    let mut a = md.inbox().open().unwrap();
    let mut b = md.inbox().open().unwrap();
    a.set_move_new(true);
    b.set_move_new(true);
    deliver(&md, 2);
    let ca = a.sync().unwrap();
    assert_eq!(ca.recent, vec![Uid(1), Uid(2)]);
    let cb = b.sync().unwrap();
    assert_eq!(cb.added, vec![Uid(1), Uid(2)]);
    assert!(cb.recent.is_empty());
    assert!(a
        .messages()
        .all(|m| m.loc == Loc::Cur && m.info.as_deref() == Some("")));
    assert_eq!(fs::read_dir(md.root().join("new")).unwrap().count(), 0);
}

#[test]
fn flags_expunge_and_modseq_are_shared_between_sessions() {
    let (_d, md) = user();
    deliver(&md, 3);
    let mut a = md.inbox().open().unwrap();
    let mut b = md.inbox().open().unwrap();
    let m0 = a.highest_modseq();
    let r = a
        .store(
            &[Uid(1), Uid(2), Uid(99)],
            FlagOp::Add,
            Flags::SEEN,
            &["$Work"],
            None,
        )
        .unwrap();
    assert_eq!(r.changed, vec![Uid(1), Uid(2)]);
    let m1 = a.get(Uid(1)).unwrap();
    assert_eq!(m1.info.as_deref(), Some("Sa"));
    assert!(m1.modseq > m0 && a.highest_modseq() >= m1.modseq);
    assert_eq!(a.keyword_names(m1), vec!["$Work"]);
    assert!(md.root().join("cur").join(m1.file_name()).exists());
    let cb = b.sync().unwrap();
    assert_eq!(cb.changed, vec![Uid(1), Uid(2)]);
    assert_eq!(b.get(Uid(2)).unwrap().flags.flags, Flags::SEEN);
    assert_eq!(b.keyword_names(b.get(Uid(2)).unwrap()), vec!["$Work"]);
    // CONDSTORE: UNCHANGEDSINCE below the message's MODSEQ refuses it.
    let since = b.get(Uid(3)).unwrap().modseq;
    let r = b
        .store(
            &[Uid(1), Uid(3)],
            FlagOp::Add,
            Flags::FLAGGED,
            &[],
            Some(since),
        )
        .unwrap();
    assert_eq!(r.modified, vec![Uid(1)]);
    assert_eq!(r.changed, vec![Uid(3)]);
    let r = b
        .store(&[Uid(1)], FlagOp::Remove, Flags::SEEN, &["$Work"], None)
        .unwrap();
    assert_eq!(r.changed, vec![Uid(1)]);
    assert_eq!(b.get(Uid(1)).unwrap().info.as_deref(), Some(""));
    let before = b.highest_modseq();
    assert_eq!(b.expunge(&[Uid(2), Uid(42)]).unwrap(), vec![Uid(2)]);
    assert!(b.highest_modseq() > before);
    let ca = a.sync().unwrap();
    assert_eq!(ca.expunged, vec![Uid(2)]);
    assert_eq!(ca.changed, vec![Uid(1), Uid(3)]);
    assert_eq!(uids(&a), vec![1, 3]);
    assert_eq!(a.highest_modseq(), b.highest_modseq());
    // UIDs of expunged messages are never given again.
    deliver(&md, 1);
    assert_eq!(a.sync().unwrap().added, vec![Uid(4)]);
}

#[test]
fn changes_by_other_programs_are_seen() {
    let (_d, md) = user();
    deliver(&md, 2);
    let mut a = md.inbox().open().unwrap();
    let m1 = a.get(Uid(1)).unwrap().clone();
    // mutt marks one read, another deletes one: no lock, no index.
    fs::rename(
        md.root().join(m1.rel_path()),
        md.root().join("cur").join(format!("{}:2,RS", m1.base)),
    )
    .unwrap();
    let m2 = a.get(Uid(2)).unwrap().clone();
    fs::remove_file(md.root().join(m2.rel_path())).unwrap();
    let c = a.rescan().unwrap();
    assert_eq!(c.changed, vec![Uid(1)]);
    assert_eq!(c.expunged, vec![Uid(2)]);
    assert_eq!(
        a.get(Uid(1)).unwrap().flags.flags,
        Flags::REPLIED | Flags::SEEN
    );
    let mut s = String::new();
    a.open_message(Uid(1))
        .unwrap()
        .read_to_string(&mut s)
        .unwrap();
    assert!(s.starts_with("Subject: 0"));
}

#[test]
fn append_copy_and_move_return_uids() {
    let (_d, md) = user();
    let sent = md.folder("Sent").unwrap();
    let date = std::time::UNIX_EPOCH + Duration::from_secs(1_500_000_000);
    let a = sent
        .append(
            &mut Cursor::new(b"Subject: a\n\nx\n"),
            Flags::SEEN,
            &["$Label1"],
            Some(date),
        )
        .unwrap();
    assert_eq!(a.uid, Uid(1));
    let b = sent
        .append(
            &mut Cursor::new(b"Subject: b\n\ny\n"),
            Flags::empty(),
            &[],
            None,
        )
        .unwrap();
    assert_eq!(b.uid, Uid(2));
    assert_eq!(a.uid_validity, b.uid_validity);
    let mut s = sent.open().unwrap();
    let m = s.get(Uid(1)).unwrap();
    assert_eq!(m.internal_date, 1_500_000_000);
    assert_eq!(s.keyword_names(m), vec!["$Label1"]);
    // Appended mail waits in new/ (\Recent), flags and all.
    assert!(s.messages().all(|m| m.loc == Loc::New));
    assert_eq!(s.get(Uid(2)).unwrap().info, None);
    let trash = md.folder("Trash").unwrap();
    let c = s.copy(&[Uid(1), Uid(2), Uid(7)], &trash).unwrap();
    assert_eq!(c.pairs, vec![(Uid(1), Uid(1)), (Uid(2), Uid(2))]);
    let t = trash.open().unwrap();
    let tm = t.get(Uid(1)).unwrap();
    assert_eq!(
        (tm.internal_date, tm.flags.flags),
        (1_500_000_000, Flags::SEEN)
    );
    assert_eq!(t.keyword_names(tm), vec!["$Label1"]);
    assert_eq!(t.uid_validity(), c.uid_validity);
    let mv = s.move_to(&[Uid(2)], &trash).unwrap();
    assert_eq!(mv.pairs, vec![(Uid(2), Uid(3))]);
    let ch = s.sync().unwrap();
    assert_eq!(ch.expunged, vec![Uid(2)]);
    assert_eq!(uids(&s), vec![1]);
    let mut t = t;
    assert_eq!(t.sync().unwrap().added, vec![Uid(3)]);
    // A move within one folder is a copy plus an expunge.
    let same = s.move_to(&[Uid(1)], &sent).unwrap();
    assert_eq!(same.pairs, vec![(Uid(1), Uid(3))]);
    s.sync().unwrap();
    assert_eq!(uids(&s), vec![3]);
    assert!(matches!(
        s.copy(&[Uid(3)], &md.folder("Nope").unwrap()),
        Err(Error::NoFolder(_))
    ));
}

#[test]
fn quota_follows_deliveries_and_expunges() {
    let (_d, md) = user();
    let lim = crate::maildir::quota::Limits {
        bytes: 1000,
        messages: 0,
    };
    assert_eq!(md.quota(Some(lim)).unwrap().bytes, 0);
    deliver(&md, 2);
    let u = md.quota(Some(lim)).unwrap();
    assert_eq!((u.bytes, u.messages), (38, 2));
    let mut a = md.inbox().open().unwrap();
    a.copy(&[Uid(1)], &md.folder("Sent").unwrap()).unwrap();
    assert_eq!(md.quota(Some(lim)).unwrap().messages, 3);
    a.expunge(&[Uid(1)]).unwrap();
    let u = md.quota(Some(lim)).unwrap();
    assert_eq!((u.bytes, u.messages), (38, 2));
    // Trash does not count: moving there frees quota, moving back takes it.
    let trash = md.folder("Trash").unwrap();
    let back = a.move_to(&[Uid(2)], &trash).unwrap().pairs[0].1;
    assert_eq!(md.quota(Some(lim)).unwrap().messages, 1);
    a.copy(&[], &trash).unwrap();
    trash.open().unwrap().move_to(&[back], &md.inbox()).unwrap();
    assert_eq!(md.quota(Some(lim)).unwrap().messages, 2);
    let mut t = trash.open().unwrap();
    t.sync().unwrap();
    assert!(t.is_empty());
    // The recalculation agrees with the bookkeeping.
    let kept = md.quota(Some(lim)).unwrap();
    let recalc = crate::maildir::quota::recalculate(md.root(), lim).unwrap();
    assert_eq!((kept.bytes, kept.messages), (recalc.bytes, recalc.messages));
}

/// Issue 11: a STORE must start from the flags the file name has now. Here a
/// program that takes no lock (mutt, a script) renamed the file after this
/// view last looked; the removal of \Seen must keep the \Answered it added.
#[test]
fn store_starts_from_the_flags_on_disk_not_the_view() {
    let (_d, md) = user();
    let uid = md
        .inbox()
        .append(&mut &b"Subject: s\n\nx\n"[..], Flags::SEEN, &[], None)
        .unwrap()
        .uid;
    let mut a = md.inbox().open().unwrap();
    let cur = md.root().join("cur");
    let old = a.message_path(uid).unwrap();
    let base = a.get(uid).unwrap().base.clone();
    fs::rename(&old, cur.join(format!("{base}:2,RS"))).unwrap();
    let r = a
        .store(&[uid], FlagOp::Remove, Flags::SEEN, &[], None)
        .unwrap();
    assert_eq!(r.changed, vec![uid]);
    assert!(cur.join(format!("{base}:2,R")).exists());
    assert!(a.get(uid).unwrap().flags.flags.contains(Flags::REPLIED));
    // Copies and moves carry the flags on disk too.
    fs::rename(
        cur.join(format!("{base}:2,R")),
        cur.join(format!("{base}:2,FR")),
    )
    .unwrap();
    let c = a.copy(&[uid], &md.folder("Sent").unwrap()).unwrap();
    let sent = md.folder("Sent").unwrap().open().unwrap();
    let copied = sent.get(c.pairs[0].1).unwrap();
    assert!(copied.flags.flags.contains(Flags::FLAGGED | Flags::REPLIED));
}

/// Issue 12: a FETCH read the file under the name it had just found; a
/// flag change by another session renamed it in between, and the message
/// was taken for expunged. open_message looks the name up again.
#[test]
fn open_message_follows_a_file_renamed_again_and_again() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let (_d, md) = user();
    let uid = md
        .inbox()
        .append(&mut &b"Subject: r\n\nbody\n"[..], Flags::SEEN, &[], None)
        .unwrap()
        .uid;
    let a = md.inbox().open().unwrap();
    // APPEND leaves the message in new/ (it is \Recent) with its flags.
    let m = a.get(uid).unwrap();
    let cur = md
        .root()
        .join(if m.loc == Loc::New { "new" } else { "cur" });
    let base = m.base.clone();
    let names = [
        cur.join(format!("{base}:2,S")),
        cur.join(format!("{base}:2,FS")),
    ];
    let stop = Arc::new(AtomicBool::new(false));
    let renamer = {
        let (names, stop) = (names.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                fs::rename(&names[i % 2], &names[(i + 1) % 2]).unwrap();
                i += 1;
                // A flag change every few microseconds: the reader finds a
                // name that is gone by the time it opens it now and then.
                std::thread::sleep(std::time::Duration::from_micros(20));
            }
        })
    };
    for _ in 0..2000 {
        let mut f = a.open_message(uid).unwrap();
        let mut s = String::new();
        f.read_to_string(&mut s).unwrap();
        assert_eq!(s, "Subject: r\n\nbody\n");
    }
    stop.store(true, Ordering::Relaxed);
    renamer.join().unwrap();
}

/// Issue 12: APPENDed and COPYed messages were put in cur/ and so were never
/// \Recent. They now wait in new/ until one session that moves new mail
/// takes them (keeping their flags); a second session sees them as old.
#[test]
fn appended_and_copied_mail_is_recent_for_one_session() {
    let (_d, md) = user();
    let sent = md.folder("Sent").unwrap();
    let a = sent
        .append(
            &mut &b"Subject: a\n\nx\n"[..],
            Flags::SEEN,
            &["$Label1"],
            None,
        )
        .unwrap();
    let mut first = sent.open().unwrap();
    let mut second = sent.open().unwrap();
    second.set_move_new(true);
    assert_eq!(second.sync().unwrap().recent, vec![a.uid]);
    first.set_move_new(true);
    assert!(first.sync().unwrap().recent.is_empty());
    let m = first.get(a.uid).unwrap();
    assert_eq!(m.loc, Loc::Cur);
    assert!(m.flags.flags.contains(Flags::SEEN));
    assert_eq!(first.keyword_names(m), vec!["$Label1"]);
    assert_eq!(fs::read_dir(sent.path().join("new")).unwrap().count(), 0);
    // A copy is recent in its new folder.
    let trash = md.folder("Trash").unwrap();
    let c = first.copy(&[a.uid], &trash).unwrap();
    let t = trash.open().unwrap();
    assert_eq!(t.get(c.pairs[0].1).unwrap().loc, Loc::New);
    let mut t2 = trash.open().unwrap();
    t2.set_move_new(true);
    assert_eq!(t2.sync().unwrap().recent, vec![c.pairs[0].1]);
    assert!(t2
        .get(c.pairs[0].1)
        .unwrap()
        .flags
        .flags
        .contains(Flags::SEEN));
}

/// A look that must not claim \Recent (IMAP STATUS through a state whose
/// sessions move new mail) leaves new mail in `new/`, and the next sync
/// that moves still finds it there.
#[test]
fn a_sync_that_keeps_new_mail_leaves_it_to_the_next_moving_one() {
    let (_d, md) = user();
    let mut a = md.inbox().open().unwrap();
    a.set_move_new(true);
    deliver(&md, 2);
    let c = a.sync_keep_new().unwrap();
    assert_eq!(c.added, vec![Uid(1), Uid(2)]);
    assert!(c.recent.is_empty());
    assert!(a.moves_new());
    assert!(a.messages().all(|m| m.loc == Loc::New));
    assert_eq!(fs::read_dir(md.root().join("new")).unwrap().count(), 2);
    // Nothing changed on disk since: the moving sync still reads new/.
    let c = a.sync().unwrap();
    assert!(c.added.is_empty());
    assert_eq!(c.recent, vec![Uid(1), Uid(2)]);
    assert!(a.messages().all(|m| m.loc == Loc::Cur));
    assert_eq!(fs::read_dir(md.root().join("new")).unwrap().count(), 0);
}

/// An APPEND through an open view: written first (no lock), then given its
/// UID from the view's own index, which reports it without reading the
/// index file back; other views and the file agree, and `tmp/` is empty.
#[test]
fn an_append_through_an_open_view_is_in_it_at_once() {
    let (_d, md) = user();
    deliver(&md, 1);
    let inbox = md.inbox();
    let mut a = inbox.open().unwrap();
    // Another writer appends meanwhile: the view catches up before giving
    // its UID.
    let other = inbox
        .append(&mut &b"Subject: o\n\no\n"[..], Flags::empty(), &[], None)
        .unwrap();
    assert_eq!(other.uid, Uid(2));
    let w = inbox
        .write_message(&mut &b"Subject: w\n\nw\n"[..], None, false)
        .unwrap();
    let got = a.append_written(w, Flags::SEEN, &["$Work"]).unwrap();
    assert_eq!(got.uid, Uid(3));
    assert_eq!(got.uid_validity, a.uid_validity());
    let c = a.take_pending();
    assert_eq!(c.added, vec![Uid(2), Uid(3)]);
    let m = a.get(Uid(3)).unwrap().clone();
    assert_eq!((m.loc, m.base.as_str()), (Loc::New, got.base.as_str()));
    assert_eq!(a.keyword_names(&m), vec!["$Work"]);
    assert!(a.sync().unwrap().is_empty(), "not reported twice");
    let b = inbox.open().unwrap();
    assert_eq!(uids(&b), vec![1, 2, 3]);
    assert_eq!(b.get(Uid(3)).unwrap().flags, m.flags);
    assert_eq!(b.keyword_names(b.get(Uid(3)).unwrap()), vec!["$Work"]);
    assert_eq!(fs::read_dir(md.root().join("tmp")).unwrap().count(), 0);
    // A message written but never linked leaves nothing behind.
    drop(inbox.write_message(&mut &b"x\n"[..], None, false).unwrap());
    assert_eq!(fs::read_dir(md.root().join("tmp")).unwrap().count(), 0);
}

/// `dovecot-keywords` is read again when another writer changed it, and
/// only then.
#[test]
fn keywords_are_read_again_when_the_file_changed() {
    let (_d, md) = user();
    deliver(&md, 1);
    let mut a = md.inbox().open().unwrap();
    let mut b = md.inbox().open().unwrap();
    b.store(&[Uid(1)], FlagOp::Add, Flags::empty(), &["$One"], None)
        .unwrap();
    a.sync().unwrap();
    assert_eq!(a.keywords().all(), vec!["$One"]);
    b.store(&[Uid(1)], FlagOp::Add, Flags::empty(), &["$Two"], None)
        .unwrap();
    a.sync().unwrap();
    assert_eq!(a.keywords().all(), vec!["$One", "$Two"]);
    let m = a.get(Uid(1)).unwrap();
    assert_eq!(a.keyword_names(m), vec!["$One", "$Two"]);
    // The file removed by hand: no keywords any more.
    fs::remove_file(md.root().join(crate::maildir::flags::KEYWORDS_FILE)).unwrap();
    a.sync().unwrap();
    assert!(a.keywords().all().is_empty());
}
