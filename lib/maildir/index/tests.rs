use super::*;
use crate::maildir::{Flags, Maildir, Uid};
use std::io::Cursor;

fn setup(n: usize) -> (tempfile::TempDir, Maildir, u32) {
    let d = tempfile::tempdir().unwrap();
    let md = Maildir::create(d.path().join("u")).unwrap();
    for i in 0..n {
        md.inbox()
            .deliver(&mut Cursor::new(format!("m{i}\n").into_bytes()), None)
            .unwrap();
    }
    let mb = md.inbox().open().unwrap();
    let v = mb.uid_validity();
    (d, md, v)
}

fn uid_of_bases(md: &Maildir) -> Vec<(u32, String)> {
    md.inbox()
        .open()
        .unwrap()
        .messages()
        .map(|m| (m.uid.0, m.base.clone()))
        .collect()
}

#[test]
fn a_torn_last_line_is_cut_off() {
    let (_d, md, v) = setup(3);
    let path = md.root().join(INDEX_FILE);
    let before = uid_of_bases(&md);
    let mut f = OpenOptions::new().append(true).open(&path).unwrap();
    f.write_all(b"+ 9 9 1 2 3 C:S half-writ").unwrap();
    drop(f);
    let mb = md.inbox().open().unwrap();
    assert_eq!(mb.uid_validity(), v);
    assert_eq!(uid_of_bases(&md), before);
    assert!(fs::read_to_string(&path).unwrap().ends_with('\n'));
}

#[test]
fn corrupt_lines_are_rebuilt_keeping_uids() {
    let (_d, md, v) = setup(4);
    let before = uid_of_bases(&md);
    let path = md.root().join(INDEX_FILE);
    let text = fs::read_to_string(&path).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    lines[2] = "+ garbage \u{1} line";
    lines.push("= 77 nonsense");
    fs::write(&path, lines.join("\n") + "\n").unwrap();
    let mb = md.inbox().open().unwrap();
    assert_eq!(mb.uid_validity(), v, "the header survived: UIDs kept");
    // The damaged record's message is found again as a new message with a
    // new UID above every UID given before; the others keep theirs.
    let after = uid_of_bases(&md);
    assert_eq!(after.len(), 4);
    for (uid, base) in &before {
        if *uid != 2 {
            assert!(after.contains(&(*uid, base.clone())));
        }
    }
    assert!(after.iter().any(|(u, b)| *u == 5 && *b == before[1].1));
    assert!(
        !fs::read_to_string(&path).unwrap().contains("garbage"),
        "rewritten clean"
    );
}

#[test]
fn a_lost_header_changes_uidvalidity_but_keeps_numbers() {
    let (_d, md, v) = setup(2);
    let before = uid_of_bases(&md);
    let path = md.root().join(INDEX_FILE);
    let text = fs::read_to_string(&path).unwrap();
    let body: String = text.lines().skip(1).map(|l| format!("{l}\n")).collect();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    fs::write(&path, format!("junk header\n{body}")).unwrap();
    let mb = md.inbox().open().unwrap();
    assert_ne!(mb.uid_validity(), v);
    assert_eq!(uid_of_bases(&md), before);
}

#[test]
fn a_deleted_index_is_rewritten_from_an_open_view() {
    let (_d, md, v) = setup(3);
    let mut mb = md.inbox().open().unwrap();
    mb.expunge(&[Uid(1)]).unwrap();
    assert_eq!(mb.sync().unwrap().expunged, vec![Uid(1)]);
    fs::remove_file(md.root().join(INDEX_FILE)).unwrap();
    let c = mb.sync().unwrap();
    assert!(c.is_empty(), "{c:?}");
    let again = md.inbox().open().unwrap();
    assert_eq!(again.uid_validity(), v);
    assert_eq!(again.uid_next(), Uid(4), "UID 1 is not given again");
    // Nobody holding a view: rebuilt from the files, new UIDVALIDITY.
    drop(mb);
    fs::remove_file(md.root().join(INDEX_FILE)).unwrap();
    let fresh = md.inbox().open().unwrap();
    assert_eq!(fresh.len(), 2);
}

#[test]
fn the_log_is_compacted_when_mostly_dead() {
    let (_d, md, v) = setup(5);
    let mut mb = md.inbox().open().unwrap();
    for _ in 0..300 {
        mb.store(
            &[Uid(1), Uid(2), Uid(3), Uid(4)],
            crate::maildir::FlagOp::Add,
            crate::maildir::Flags::SEEN,
            &[],
            None,
        )
        .unwrap();
        mb.store(
            &[Uid(1), Uid(2), Uid(3), Uid(4)],
            crate::maildir::FlagOp::Remove,
            crate::maildir::Flags::SEEN,
            &[],
            None,
        )
        .unwrap();
    }
    let lines = fs::read_to_string(md.root().join(INDEX_FILE))
        .unwrap()
        .lines()
        .count();
    assert!(lines < 1100, "{lines}");
    let other = md.inbox().open().unwrap();
    assert_eq!(other.uid_validity(), v);
    assert_eq!(other.highest_modseq(), mb.highest_modseq());
    assert_eq!(mb.sync().unwrap().changed.len(), 4);
    assert!(mb.sync().unwrap().is_empty());
}

#[test]
fn uidl_is_dovecots_format() {
    let (_d, md, v) = setup(1);
    let mb = md.inbox().open().unwrap();
    let m = mb.messages().next().unwrap();
    assert_eq!(m.uidl(v), format!("00000001{v:08X}"));
    assert_eq!(m.uidl(0x1a2b), "0000000100001A2B");
}

#[test]
fn parse_helpers() {
    assert_eq!(
        parse_where("C:FS"),
        Some((Loc::Cur, Some("FS".to_string())))
    );
    assert_eq!(parse_where("N"), Some((Loc::New, None)));
    assert_eq!(parse_where("C:"), Some((Loc::Cur, Some(String::new()))));
    assert_eq!(parse_where("X"), None);
    assert_eq!(parse_where("Cx"), None);
    assert_eq!(
        parse_header("kmpromail-uidlist 1 V5 N7 M9"),
        Some((5, 7, 9, None))
    );
    assert_eq!(
        parse_header("kmpromail-uidlist 1 V5 N7 M9 T4"),
        Some((5, 7, 9, Some(4)))
    );
    assert_eq!(parse_header("kmpromail-uidlist 1 V0 N7 M9"), None);
    assert_eq!(parse_header("dovecot 3 V5"), None);
}

fn tail_matches_full(md: &Maildir) {
    let full = Index::load(md.root()).unwrap();
    let tail = Index::load_tail(md.root()).unwrap();
    assert_eq!(
        (tail.validity, tail.uid_next, tail.highest_modseq),
        (full.validity, full.uid_next, full.highest_modseq)
    );
}

#[test]
fn the_tail_gives_what_a_full_load_gives() {
    use crate::maildir::{FlagOp, Flags};
    let (_d, md, _) = setup(4);
    tail_matches_full(&md);
    let mut mb = md.inbox().open().unwrap();
    mb.set_move_new(true);
    mb.sync().unwrap(); // moves without new MODSEQs: "=" lines with old ones
    tail_matches_full(&md);
    mb.store(&[Uid(2)], FlagOp::Add, Flags::SEEN, &[], None)
        .unwrap();
    tail_matches_full(&md);
    mb.expunge(&[Uid(4)]).unwrap();
    tail_matches_full(&md);
    let a = md
        .inbox()
        .append(&mut Cursor::new(b"x\n"), Flags::empty(), &[], None)
        .unwrap();
    assert_eq!(a.uid, Uid(5), "the expunged UID 4 is not given again");
    tail_matches_full(&md);
    // Push every "+" record out of the last 64 KB: the full load is used.
    for i in 0..1500 {
        let op = if i % 2 == 0 {
            FlagOp::Add
        } else {
            FlagOp::Remove
        };
        mb.store(&[Uid(1), Uid(2), Uid(3)], op, Flags::FLAGGED, &[], None)
            .unwrap();
    }
    tail_matches_full(&md);
    let b = md
        .inbox()
        .append(&mut Cursor::new(b"y\n"), Flags::empty(), &[], None)
        .unwrap();
    assert_eq!(b.uid, Uid(6));
    mb.sync().unwrap();
    assert_eq!(mb.uid_next(), Uid(7));
    assert_eq!(
        mb.highest_modseq().0,
        Index::load(md.root()).unwrap().highest_modseq
    );
}

/// Issue 11: a UID given out (APPENDUID, a sync that numbers new mail) must
/// be on disk first, or a crash would give it again to another message.
#[test]
fn every_path_that_gives_uids_fsyncs_the_index_first() {
    let (_d, md, _) = setup(0);
    let syncs = || SYNCS.with(|c| c.get());
    let before = syncs();
    let a = md
        .inbox()
        .append(&mut &b"Subject: a\n\nx\n"[..], Flags::SEEN, &[], None)
        .unwrap();
    assert!(syncs() > before, "APPEND gave UID {:?} unsynced", a.uid);
    let text = fs::read_to_string(md.root().join(INDEX_FILE)).unwrap();
    assert!(text.contains(&format!("+ {} ", a.uid.0)), "{text}");
    // A delivery numbered by the next sync.
    let mut mb = md.inbox().open().unwrap();
    md.inbox()
        .deliver(&mut Cursor::new(b"m\n".to_vec()), None)
        .unwrap();
    let before = syncs();
    let c = mb.rescan().unwrap();
    assert_eq!(c.added.len(), 1);
    assert!(syncs() > before, "sync gave a UID unsynced");
    // COPY into another folder.
    let before = syncs();
    mb.copy(&[a.uid], &md.folder("Sent").unwrap()).unwrap();
    assert!(syncs() > before, "COPY gave a UID unsynced");
}

/// Issue 11: a folder deleted and created again in the same second, and an
/// index rebuilt twice in one second, get a new UIDVALIDITY each time.
#[test]
fn uidvalidity_is_never_given_twice_in_a_maildir() {
    let (_d, md, inbox_v) = setup(1);
    let mut seen = vec![inbox_v];
    for _ in 0..3 {
        md.create_folder("Work").unwrap();
        let f = md.folder("Work").unwrap();
        let a = f
            .append(&mut &b"Subject: w\n\nx\n"[..], Flags::empty(), &[], None)
            .unwrap();
        assert_eq!(a.uid, Uid(1));
        assert!(!seen.contains(&a.uid_validity), "{seen:?} {a:?}");
        seen.push(a.uid_validity);
        md.delete_folder("Work").unwrap();
    }
    // The INBOX index lost and rebuilt at once, twice.
    for _ in 0..2 {
        fs::remove_file(md.root().join(INDEX_FILE)).unwrap();
        let v = md.inbox().open().unwrap().uid_validity();
        assert!(!seen.contains(&v), "{seen:?} {v}");
        seen.push(v);
    }
    // A folder without the `maildirfolder` marker (an older program made
    // it) still counts the Maildir's root's value.
    md.create_folder("Old").unwrap();
    let old = md.root().join(".Old");
    fs::remove_file(old.join(crate::maildir::folder::MAILDIRFOLDER)).unwrap();
    let v = md.folder("Old").unwrap().open().unwrap().uid_validity();
    assert!(!seen.contains(&v), "{seen:?} {v}");
    seen.push(v);
    assert!(!old.join(VALIDITY_FILE).exists());
    let last: u32 = fs::read_to_string(md.root().join(VALIDITY_FILE))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(last, v);
    let mut sorted = seen.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, seen, "UIDVALIDITY only grows");
}

#[test]
fn tombstones_survive_a_rewrite_and_say_how_far_back_they_go() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut idx = Index::load(d).unwrap();
    for i in 0..4 {
        idx.add(msg(&format!("m{i}")));
    }
    idx.commit(d).unwrap();
    let before = idx.highest_modseq;
    idx.expunge(2).unwrap();
    idx.expunge(3).unwrap();
    idx.commit(d).unwrap();
    assert_eq!(idx.expunged_since(before), Some(vec![2, 3]));
    assert_eq!(idx.expunged_since(before + 1), Some(vec![3]));
    // A rewrite keeps them, and a fresh reader finds them.
    idx.rewrite(d).unwrap();
    let again = Index::load(d).unwrap();
    assert_eq!(again.msgs.len(), 2);
    assert_eq!(again.expunged_since(0), Some(vec![2, 3]));
    // A file from before tombstones: its M is the floor.
    let text = std::fs::read_to_string(d.join(INDEX_FILE)).unwrap();
    let old: String = text
        .lines()
        .filter(|l| !l.starts_with('-'))
        .map(|l| l.split(" T").next().unwrap().to_string() + "\n")
        .collect();
    std::fs::write(d.join(INDEX_FILE), old).unwrap();
    let old = Index::load(d).unwrap();
    assert_eq!(old.expunged_since(0), None);
    assert_eq!(old.expunged_since(old.highest_modseq), Some(vec![]));
}

#[test]
fn tombstones_are_bounded() {
    let mut idx = Index::fresh();
    for i in 0..(2 * MAX_TOMBSTONES as u32 + 1) {
        idx.bury(i + 1, i as u64 + 10);
    }
    assert_eq!(idx.tombstones.len(), MAX_TOMBSTONES);
    assert!(idx.expunged_since(5).is_none());
    let floor = idx.tomb_floor;
    assert_eq!(idx.expunged_since(floor).unwrap().len(), MAX_TOMBSTONES);
}

fn msg(base: &str) -> Message {
    Message {
        uid: Uid(0),
        modseq: ModSeq(0),
        base: base.to_string(),
        flags: MailFlags::default(),
        size: 1,
        vsize: 1,
        internal_date: 1,
        loc: Loc::Cur,
        info: Some(String::new()),
    }
}

/// Flag changes and expunges skip the index fsync while this boot's MODSEQ
/// ceiling covers them; a crash of the machine that loses their records
/// loses no MODSEQ: the next boot finds the file operations again and
/// numbers them above every MODSEQ given before (ceiling.rs).
#[test]
fn modseqs_lost_in_a_crash_are_never_given_again() {
    use crate::maildir::FlagOp;
    let boot = |b: &str| ceiling::BOOT.with(|c| *c.borrow_mut() = Some(b.to_string()));
    boot("one");
    let (_d, md, v) = setup(3);
    let syncs = || SYNCS.with(|c| c.get());
    let mut mb = md.inbox().open().unwrap();
    let before = syncs();
    mb.store(&[Uid(1)], FlagOp::Add, Flags::SEEN, &[], None)
        .unwrap();
    assert!(syncs() > before, "no ceiling yet: fsynced");
    assert!(md.root().join(ceiling::CEILING_FILE).exists());
    let path = md.root().join(INDEX_FILE);
    let durable = fs::metadata(&path).unwrap().len();
    let before = syncs();
    mb.store(&[Uid(2)], FlagOp::Add, Flags::FLAGGED, &[], None)
        .unwrap();
    assert_eq!(mb.expunge(&[Uid(3)]).unwrap(), vec![Uid(3)]);
    assert_eq!(syncs(), before, "under the ceiling: not fsynced");
    let given = mb.highest_modseq();
    drop(mb);
    // The machine crashes: the unsynced records are lost, the renames and
    // the unlink were kept.
    OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(durable)
        .unwrap();
    boot("two");
    let before = syncs();
    let mut after = md.inbox().open().unwrap();
    // What it found again is recorded with an fsync: no ceiling of this
    // boot covered it yet (its commit writes one).
    assert!(syncs() > before);
    assert_eq!(after.uid_validity(), v);
    assert!(after.highest_modseq() > given);
    let m = after.get(Uid(2)).unwrap();
    assert!(m.flags.flags.contains(Flags::FLAGGED));
    assert!(m.modseq > given, "{m:?} {given:?}");
    assert!(after.get(Uid(3)).is_none());
    assert_eq!(after.expunged_since(given), Some(vec![Uid(3)]));
    // Changes under the new boot's ceiling are not.
    let before = syncs();
    after
        .store(&[Uid(1)], FlagOp::Add, Flags::FLAGGED, &[], None)
        .unwrap();
    after
        .store(&[Uid(2)], FlagOp::Remove, Flags::FLAGGED, &[], None)
        .unwrap();
    assert_eq!(syncs(), before);
    let ceiling: u64 = fs::read_to_string(md.root().join(ceiling::CEILING_FILE))
        .unwrap()
        .trim_end()
        .strip_prefix("two ")
        .unwrap()
        .parse()
        .unwrap();
    assert!(ceiling >= after.highest_modseq().0);
    // UIDs stay durable whatever the ceiling says.
    let before = syncs();
    md.inbox()
        .append(&mut &b"Subject: a\n\nx\n"[..], Flags::empty(), &[], None)
        .unwrap();
    assert!(syncs() > before);
    ceiling::BOOT.with(|c| *c.borrow_mut() = None);
}
