//! Jobs run in process against a directory in memory and real Maildirs in
//! a temporary directory: what each recipient's result is and what lands
//! in which Maildir.

use std::fs::{self, File};
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::deliver::{run_job, Settings};
use super::quota::WARNED_MARKER;
use super::testdir::Mem;
use crate::clock::Clock;
use crate::ipc::job::{Job, JobRecipient, JobReply, Outcome, VERSION};
use crate::queue::Notify;

struct Fixture {
    root: tempfile::TempDir,
    settings: Settings,
    /// One arrival time for every job: a retry is the same message.
    arrived: u64,
    senders: super::deliver::Senders,
}

impl Fixture {
    fn new() -> Fixture {
        let root = tempfile::tempdir().unwrap();
        let settings = Settings {
            hostname: "mx.example.test".into(),
            mail_root: root.path().join("mail"),
            hop_limit: 5,
            delivered_to_limit: 1,
            max_alias_depth: 10,
            quota_warning_percent: 90,
            sieve: super::sieve::SieveSettings::none(),
            lists: crate::lists::distribute::Settings::new(root.path().join("mail")),
        };
        Fixture {
            senders: Default::default(),
            root,
            settings,
            arrived: Clock::System.now(),
        }
    }

    fn maildir(&self, user: &str) -> PathBuf {
        let (l, d) = user.split_once('@').unwrap();
        self.settings.mail_root.join(d).join(l)
    }

    fn run(&self, dir: &mut Mem, qid: &str, rcpts: &[&str], msg: &[u8]) -> JobReply {
        self.run_file(dir, qid, rcpts, msg, msg.len(), false)
    }

    /// A job whose file holds `file` and whose size says `size`.
    fn run_file(
        &self,
        dir: &mut Mem,
        qid: &str,
        rcpts: &[&str],
        file: &[u8],
        size: usize,
        fresh: bool,
    ) -> JobReply {
        self.run_from(dir, qid, rcpts, file, size, fresh, 0)
    }

    /// As [`Self::run_file`], from the kmp-send that started at `generation`.
    #[allow(clippy::too_many_arguments)]
    fn run_from(
        &self,
        dir: &mut Mem,
        qid: &str,
        rcpts: &[&str],
        file: &[u8],
        size: usize,
        fresh: bool,
        generation: u64,
    ) -> JobReply {
        let msg = &file[..size];
        let path = self.root.path().join(format!("msg.{qid}"));
        fs::write(&path, file).unwrap();
        let file = File::open(&path).unwrap();
        let job = Job {
            v: VERSION,
            qid: qid.into(),
            sender: "sender@other.test".into(),
            envid: None,
            ret: None,
            smtputf8: false,
            body_8bit: false,
            size: msg.len() as u64,
            fresh,
            generation,
            arrived: self.arrived,
            recipients: rcpts
                .iter()
                .enumerate()
                .map(|(i, a)| JobRecipient {
                    index: i as u32,
                    address: a.to_string(),
                    notify: Notify::default(),
                    orcpt: None,
                    delivery_id: format!("{qid}.{i}"),
                })
                .collect(),
        };
        run_job(
            &self.settings,
            &self.senders,
            dir,
            &Clock::System,
            &job,
            &file,
        )
    }
}

/// Every message file in a Maildir's new/ and cur/.
fn messages(maildir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for sub in ["new", "cur"] {
        if let Ok(rd) = fs::read_dir(maildir.join(sub)) {
            out.extend(rd.map(|e| e.unwrap().path()));
        }
    }
    out.sort();
    out
}

const MSG: &[u8] = b"Received: from a by b\nSubject: hello\n\nbody\n";

#[test]
fn only_the_jobs_size_is_delivered_never_what_follows() {
    let fx = Fixture::new();
    let mut d = Mem::new().user("a@example.test", &[], false, true);
    let file = [
        MSG,
        b"{\"envelope\":\"secret bcc\"}\nkmp-envelope 0000000000000019\n",
    ]
    .concat();
    let r = fx.run_file(&mut d, "QS", &["a@example.test"], &file, MSG.len(), false);
    assert_eq!(r.results[0].outcome, Outcome::Sent, "{r:?}");
    let m = messages(&fx.maildir("a@example.test"));
    let text = fs::read(&m[0]).unwrap();
    assert!(text.ends_with(MSG), "{}", String::from_utf8_lossy(&text));
}

#[test]
fn a_fresh_job_skips_the_look_up_and_a_retry_does_not() {
    let fx = Fixture::new();
    let mut d = Mem::new().user("a@example.test", &[], false, true);
    let r = fx.run_file(&mut d, "QF1", &["a@example.test"], MSG, MSG.len(), true);
    assert_eq!(r.results[0].text, "delivered to maildir");
    // The same job again, not fresh (kmp-send after a crash): found.
    let r = fx.run_file(&mut d, "QF1", &["a@example.test"], MSG, MSG.len(), false);
    assert_eq!(r.results[0].text, "already delivered to maildir");
    assert_eq!(messages(&fx.maildir("a@example.test")).len(), 1);
    // Fresh means "cannot exist": the look-up is skipped (which is why
    // kmp-send marks only a message's first, single job so).
    let r = fx.run_file(&mut d, "QF1", &["a@example.test"], MSG, MSG.len(), true);
    assert_eq!(r.results[0].text, "delivered to maildir");
    assert_eq!(messages(&fx.maildir("a@example.test")).len(), 2);
}

#[test]
fn a_fresh_job_of_a_dead_kmp_send_after_its_successors_job_looks_first() {
    let fx = Fixture::new();
    let mut d = Mem::new().user("a@example.test", &[], false, true);
    // kmp-send started at 200 took the message in again after the one
    // started at 100 died with its fresh job still unread in the socket:
    // the successor's (not fresh) job comes first and delivers.
    let r = fx.run_from(
        &mut d,
        "QG1",
        &["a@example.test"],
        MSG,
        MSG.len(),
        false,
        200,
    );
    assert_eq!(r.results[0].text, "delivered to maildir");
    // The dead sender's fresh job must not skip the look-up.
    let r = fx.run_from(
        &mut d,
        "QG1",
        &["a@example.test"],
        MSG,
        MSG.len(),
        true,
        100,
    );
    assert_eq!(r.results[0].text, "already delivered to maildir");
    assert_eq!(messages(&fx.maildir("a@example.test")).len(), 1);
    // The newest sender's own fresh jobs still skip it.
    let r = fx.run_from(
        &mut d,
        "QG2",
        &["a@example.test"],
        MSG,
        MSG.len(),
        true,
        200,
    );
    assert_eq!(r.results[0].text, "delivered to maildir");
}

#[test]
fn a_user_gets_the_message_with_return_path_and_delivered_to() {
    let fx = Fixture::new();
    let mut d = Mem::new().user("a@example.test", &[], false, true);
    let r = fx.run(&mut d, "Q1", &["a+tag@example.test"], MSG);
    assert_eq!(r.results[0].outcome, Outcome::Sent, "{r:?}");
    assert_eq!(r.results[0].dsn, "2.0.0");
    assert_eq!(r.results[0].text, "delivered to maildir");
    let md = fx.maildir("a@example.test");
    assert!(md.join(".Sent/maildirfolder").exists());
    let m = messages(&md);
    assert_eq!(m.len(), 1);
    let text = fs::read(&m[0]).unwrap();
    assert_eq!(
        text,
        [
            b"Return-Path: <sender@other.test>\nDelivered-To: a@example.test\n".as_slice(),
            MSG
        ]
        .concat()
    );
    let name = m[0].file_name().unwrap().to_string_lossy().to_string();
    assert!(
        name.contains(&format!(",S={},W={}", text.len(), text.len() + 6)),
        "{name}"
    );
}

#[test]
fn many_recipients_share_one_file_without_revealing_each_other() {
    let fx = Fixture::new();
    let mut d = Mem::new()
        .user("a@example.test", &[], false, true)
        .user("b@example.test", &[], false, true)
        .user("c@example.test", &[], false, true)
        .alias("team@example.test", &["b@example.test", "c@example.test"]);
    let r = fx.run(
        &mut d,
        "Q2",
        &["a@example.test", "b@example.test", "c@example.test"],
        MSG,
    );
    assert!(
        r.results.iter().all(|x| x.outcome == Outcome::Sent),
        "{r:?}"
    );
    let files: Vec<PathBuf> = ["a", "b", "c"]
        .iter()
        .map(|u| messages(&fx.maildir(&format!("{u}@example.test"))).remove(0))
        .collect();
    assert_eq!(fs::metadata(&files[0]).unwrap().nlink(), 3);
    assert_eq!(
        fs::metadata(&files[0]).unwrap().ino(),
        fs::metadata(&files[2]).unwrap().ino()
    );
    let text = fs::read_to_string(&files[1]).unwrap();
    assert!(
        text.starts_with("Return-Path: <sender@other.test>\nReceived:"),
        "{text}"
    );
    // An alias to two users: one file, Delivered-To the alias.
    let r = fx.run(&mut d, "Q3", &["team@example.test"], MSG);
    assert_eq!(r.results[0].outcome, Outcome::Sent);
    let b = messages(&fx.maildir("b@example.test"));
    let newest = b.iter().find(|p| !files.contains(p)).unwrap();
    assert_eq!(fs::metadata(newest).unwrap().nlink(), 2);
    assert!(fs::read_to_string(newest)
        .unwrap()
        .contains("Delivered-To: team@example.test\n"));
}

#[test]
fn a_retry_with_the_same_delivery_id_does_not_deliver_twice() {
    let fx = Fixture::new();
    let mut d = Mem::new().user("a@example.test", &[], false, true).user(
        "b@example.test",
        &[],
        false,
        true,
    );
    for _ in 0..3 {
        let r = fx.run(&mut d, "Q4", &["a@example.test", "b@example.test"], MSG);
        assert!(r.results.iter().all(|x| x.outcome == Outcome::Sent));
    }
    assert_eq!(messages(&fx.maildir("a@example.test")).len(), 1);
    assert_eq!(messages(&fx.maildir("b@example.test")).len(), 1);
    // Even after a reader moved it to cur/ and flagged it.
    let m = messages(&fx.maildir("a@example.test")).remove(0);
    let cur = fx
        .maildir("a@example.test")
        .join("cur")
        .join(format!("{}:2,S", m.file_name().unwrap().to_string_lossy()));
    fs::rename(&m, &cur).unwrap();
    let r = fx.run(&mut d, "Q4", &["a@example.test"], MSG);
    assert_eq!(r.results[0].text, "already delivered to maildir");
    assert_eq!(messages(&fx.maildir("a@example.test")), [cur]);
}

#[test]
fn unknown_disabled_and_unreachable_directory() {
    let fx = Fixture::new();
    let mut d = Mem::new().user("off@example.test", &[], false, false);
    let r = fx.run(
        &mut d,
        "Q5",
        &["nobody@example.test", "off@example.test"],
        MSG,
    );
    assert_eq!(r.results[0].outcome, Outcome::Bounced);
    assert_eq!(r.results[0].dsn, "5.1.1");
    assert_eq!(r.results[1].outcome, Outcome::Bounced);
    assert_eq!(r.results[1].dsn, "5.2.1");
    assert!(r.results[1]
        .diagnostic
        .as_deref()
        .unwrap()
        .contains("disabled"));
    let r = fx.run(&mut d, "Q5b", &["no at sign"], MSG);
    assert_eq!(
        (r.results[0].outcome, r.results[0].dsn.as_str()),
        (Outcome::Bounced, "5.1.3")
    );
    d.down = true;
    let r = fx.run(&mut d, "Q6", &["nobody@example.test"], MSG);
    assert_eq!(r.results[0].outcome, Outcome::Deferred);
    assert_eq!(r.results[0].dsn, "4.3.0");
}

#[test]
fn forwards_and_remote_alias_targets_go_back_to_kmp_send() {
    let fx = Fixture::new();
    let mut d = Mem::new()
        .user("f@example.test", &["x@other.test"], false, true)
        .user("k@example.test", &["y@other.test"], true, true)
        .user("u@example.test", &[], false, true)
        .alias(
            "mix@example.test",
            &["u@example.test", "z@other.test", "gone@example.test"],
        );
    let r = fx.run(
        &mut d,
        "Q7",
        &["f@example.test", "k@example.test", "mix@example.test"],
        MSG,
    );
    assert_eq!(r.results[0].outcome, Outcome::Sent);
    assert_eq!(r.results[0].text, "forwarded");
    assert_eq!(r.results[0].expanded, ["x@other.test"]);
    assert!(messages(&fx.maildir("f@example.test")).is_empty());
    assert_eq!(r.results[1].expanded, ["y@other.test"]);
    assert_eq!(messages(&fx.maildir("k@example.test")).len(), 1);
    // The unknown member goes back too, to bounce on its own.
    assert_eq!(r.results[2].expanded, ["z@other.test", "gone@example.test"]);
    assert_eq!(messages(&fx.maildir("u@example.test")).len(), 1);
}

#[test]
fn loops_bounce_with_5_4_6() {
    let fx = Fixture::new();
    let mut d = Mem::new()
        .user("a@example.test", &[], false, true)
        .alias("l1@example.test", &["l2@example.test"])
        .alias("l2@example.test", &["l1@example.test"]);
    let looped = b"Delivered-To: a@example.test\nSubject: x\n\nbody\n";
    let r = fx.run(&mut d, "Q8", &["a@example.test"], looped);
    assert_eq!(
        (r.results[0].outcome, r.results[0].dsn.as_str()),
        (Outcome::Bounced, "5.4.6")
    );
    let hops =
        b"Received: 1\nReceived: 2\nReceived: 3\nReceived: 4\nReceived: 5\nReceived: 6\n\nx\n";
    let r = fx.run(&mut d, "Q9", &["a@example.test"], hops);
    assert_eq!(
        (r.results[0].outcome, r.results[0].dsn.as_str()),
        (Outcome::Bounced, "5.4.6")
    );
    let r = fx.run(&mut d, "Q10", &["l1@example.test"], MSG);
    assert_eq!(
        (r.results[0].outcome, r.results[0].dsn.as_str()),
        (Outcome::Bounced, "5.4.6")
    );
    assert!(
        r.results[0].text.contains("alias loop"),
        "{}",
        r.results[0].text
    );
    assert!(messages(&fx.maildir("a@example.test")).is_empty());
}

#[test]
fn over_quota_defers_and_one_warning_is_sent() {
    let fx = Fixture::new();
    let mut d =
        Mem::new()
            .user("q@example.test", &[], false, true)
            .quota("q@example.test", 1000, 0);
    // 300 bytes each with the prefix: the third reaches 90%.
    let body = vec![b'x'; 225];
    let msg = [b"Subject: q\n\n".as_slice(), &body, b"\n"].concat();
    let md = fx.maildir("q@example.test");
    let mut outcomes = Vec::new();
    for i in 0..6 {
        let r = fx.run(&mut d, &format!("QQ{i}"), &["q@example.test"], &msg);
        outcomes.push((r.results[0].outcome, r.results[0].dsn.clone()));
    }
    let sent = outcomes.iter().filter(|o| o.0 == Outcome::Sent).count();
    assert_eq!(sent, 3, "{outcomes:?}");
    assert!(
        outcomes
            .iter()
            .any(|o| o == &(Outcome::Deferred, "4.2.2".to_string())),
        "{outcomes:?}"
    );
    let all = messages(&md);
    let warnings: Vec<&PathBuf> = all
        .iter()
        .filter(|p| {
            fs::read_to_string(p)
                .unwrap()
                .contains("Subject: Your mailbox is")
        })
        .collect();
    assert_eq!(warnings.len(), 1, "{outcomes:?}");
    assert!(md.join(WARNED_MARKER).exists());
    // Usage falls below the line: the marker goes, and a later crossing warns again.
    for p in &all {
        fs::remove_file(p).unwrap();
    }
    fs::remove_file(md.join("maildirsize")).unwrap();
    let r = fx.run(&mut d, "QR", &["q@example.test"], &msg);
    assert_eq!(r.results[0].outcome, Outcome::Sent);
    assert!(!md.join(WARNED_MARKER).exists());
}

#[test]
fn an_unwritable_maildir_defers_and_loses_nothing() {
    let fx = Fixture::new();
    let mut d = Mem::new().user("ro@example.test", &[], false, true);
    let md = fx.maildir("ro@example.test");
    crate::maildir::Maildir::create(&md).unwrap();
    // tmp/ that is not a directory: what root sees of a broken Maildir
    // (chmod does not stop root; the daemon test covers that as a user).
    fs::remove_dir(md.join("tmp")).unwrap();
    File::create(md.join("tmp"))
        .unwrap()
        .write_all(b"x")
        .unwrap();
    let r = fx.run(&mut d, "QW", &["ro@example.test"], MSG);
    assert_eq!(r.results[0].outcome, Outcome::Deferred, "{r:?}");
    assert!(r.results[0].dsn.starts_with("4."));
    fs::remove_file(md.join("tmp")).unwrap();
    let r = fx.run(&mut d, "QW", &["ro@example.test"], MSG);
    assert_eq!(r.results[0].outcome, Outcome::Sent);
    assert_eq!(messages(&md).len(), 1);
}

#[test]
fn malformed_and_big_messages_are_delivered_byte_for_byte() {
    let fx = Fixture::new();
    let mut d = Mem::new().user("m@example.test", &[], false, true);
    let mut long_header = Vec::new();
    for i in 0..10_000 {
        long_header.extend_from_slice(format!("X-Line-{i}: v\n").as_bytes());
    }
    long_header.extend_from_slice(b"\nbody\n");
    let table: Vec<Vec<u8>> = vec![
        b"no separator, no header at all".to_vec(),
        b"Subject: bare\rcr and\0nul\n\n\xff\xfe 8-bit body\r\n".to_vec(),
        [
            b"Subject: ".as_slice(),
            &[b'l'; 1000],
            b"\n\n",
            &[b'b'; 5000],
            b"\n",
        ]
        .concat(),
        "Subject: caf\u{e9} \u{4e2d}\u{6587}\n\nx\n"
            .as_bytes()
            .to_vec(),
        long_header,
        Vec::new(),
    ];
    for (i, msg) in table.iter().enumerate() {
        let r = fx.run(&mut d, &format!("QM{i}"), &["m@example.test"], msg);
        assert_eq!(r.results[0].outcome, Outcome::Sent, "{i}: {r:?}");
    }
    let prefix = b"Return-Path: <sender@other.test>\nDelivered-To: m@example.test\n";
    let mut got: Vec<Vec<u8>> = messages(&fx.maildir("m@example.test"))
        .iter()
        .map(|p| fs::read(p).unwrap())
        .collect();
    let mut want: Vec<Vec<u8>> = table
        .iter()
        .map(|m| [prefix.as_slice(), m].concat())
        .collect();
    got.sort();
    want.sort();
    assert_eq!(got, want);
}

#[test]
fn twenty_mailboxes_share_one_file_in_parallel_and_a_retry_finds_them_all() {
    let fx = Fixture::new();
    let users: Vec<String> = (0..20).map(|i| format!("m{i}@example.test")).collect();
    let mut d = Mem::new();
    for u in &users {
        d = d.user(u, &[], false, true);
    }
    d = d.alias(
        "list@example.test",
        &users.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
    );
    let r = fx.run(&mut d, "QF", &["list@example.test"], MSG);
    assert_eq!(r.results[0].outcome, Outcome::Sent, "{r:?}");
    let files: Vec<PathBuf> = users
        .iter()
        .map(|u| {
            let m = messages(&fx.maildir(u));
            assert_eq!(m.len(), 1, "{u}");
            m[0].clone()
        })
        .collect();
    let ino = fs::metadata(&files[0]).unwrap().ino();
    assert!(files.iter().all(|f| fs::metadata(f).unwrap().ino() == ino));
    assert_eq!(fs::metadata(&files[0]).unwrap().nlink(), 20);
    assert!(fs::read_to_string(&files[7])
        .unwrap()
        .contains("Delivered-To: list@example.test\n"));
    // Half of them moved on by a reader; the retry writes nothing anywhere.
    for f in files.iter().step_by(2) {
        let cur = f.parent().unwrap().parent().unwrap().join("cur");
        fs::rename(
            f,
            cur.join(format!("{}:2,S", f.file_name().unwrap().to_string_lossy())),
        )
        .unwrap();
    }
    let r = fx.run(&mut d, "QF", &["list@example.test"], MSG);
    assert_eq!(r.results[0].outcome, Outcome::Sent);
    for u in &users {
        assert_eq!(messages(&fx.maildir(u)).len(), 1, "{u}");
    }
    let tmp_left: usize = users
        .iter()
        .map(|u| fs::read_dir(fx.maildir(u).join("tmp")).unwrap().count())
        .sum();
    assert_eq!(tmp_left, 0);
}

mod lists {
    use super::*;
    use crate::lists::store::{Member, Store};
    use crate::lists::{held, List, Policy};
    use std::os::unix::fs::MetadataExt;

    fn list(fx: &Fixture, members: &[&str]) -> List {
        let mut l = List::new(
            &crate::userdb::Address::parse("news@example.test").unwrap(),
            1,
        );
        l.subject_prefix = "[news]".into();
        l.archive = true;
        let st = Store::open(&l.state_dir(&fx.settings.mail_root)).unwrap();
        for m in members {
            st.subscribe(&Member::new(m, 1)).unwrap();
        }
        l
    }

    #[test]
    fn a_post_is_one_file_linked_into_every_member_and_the_archive() {
        let fx = Fixture::new();
        let users: Vec<String> = (0..20).map(|i| format!("u{i}@example.test")).collect();
        let mut refs: Vec<&str> = users.iter().map(String::as_str).collect();
        refs.push("sender@other.test");
        let l = list(&fx, &refs[..20]);
        let mut d = Mem::new().list(l.clone());
        for u in &users {
            d = d.user(u, &[], false, true);
        }
        // A non-member: held, nothing delivered.
        let r = fx.run(&mut d, "QL1", &["news@example.test"], MSG);
        assert_eq!(r.results[0].outcome, Outcome::Sent, "{r:?}");
        assert!(r.results[0].text.contains("held"), "{r:?}");
        let state = l.state_dir(&fx.settings.mail_root);
        assert_eq!(held::list(&state).unwrap().len(), 1);
        assert!(messages(&fx.maildir("u0@example.test")).is_empty());
        // A member posts: every member and the archive get the same inode.
        let mut sender = Member::new("sender@other.test", 1);
        sender.nomail = true;
        Store::open(&state).unwrap().subscribe(&sender).unwrap();
        let mut d2 = Mem::new().list(l.clone());
        for u in &users {
            d2 = d2.user(u, &[], false, true);
        }
        let r = fx.run(&mut d2, "QL2", &["news@example.test"], MSG);
        assert_eq!(r.results[0].outcome, Outcome::Sent, "{r:?}");
        assert!(r.results[0].text.contains("distributed"), "{r:?}");
        let mut inodes = std::collections::HashSet::new();
        for u in &users {
            let m = messages(&fx.maildir(u));
            assert_eq!(m.len(), 1, "{u}");
            inodes.insert(fs::metadata(&m[0]).unwrap().ino());
        }
        let arch = messages(&state.join("archive"));
        assert_eq!(arch.len(), 1);
        inodes.insert(fs::metadata(&arch[0]).unwrap().ino());
        assert_eq!(inodes.len(), 1);
        let text = fs::read_to_string(&arch[0]).unwrap();
        assert!(text.contains("List-Id: <news.example.test>\n"), "{text}");
        assert!(text.contains("Subject: [news] hello\n"), "{text}");
        assert!(
            text.starts_with(
                "Return-Path: <news-owner@example.test>\nDelivered-To: news@example.test\n"
            ),
            "{text}"
        );
        // The same job again (a retry): no second copy.
        let r = fx.run(&mut d2, "QL2", &["news@example.test"], MSG);
        assert_eq!(r.results[0].outcome, Outcome::Sent);
        assert_eq!(messages(&fx.maildir("u0@example.test")).len(), 1);
        // Its own copy coming back is dropped.
        let back = fs::read(&arch[0]).unwrap();
        let r = fx.run(&mut d2, "QL3", &["news@example.test"], &back);
        assert!(r.results[0].text.contains("loop"), "{r:?}");
        assert_eq!(messages(&fx.maildir("u0@example.test")).len(), 1);
    }

    #[test]
    fn a_member_leading_back_to_the_list_is_skipped_and_refusals_bounce() {
        let fx = Fixture::new();
        let mut l = list(&fx, &["loop@example.test", "a@example.test"]);
        l.policy = Policy::Open;
        l.max_size = 10;
        let mut d = Mem::new()
            .list(l.clone())
            .alias("loop@example.test", &["news@example.test"])
            .user("a@example.test", &[], false, true);
        let r = fx.run(&mut d, "QL4", &["news@example.test"], MSG);
        assert_eq!(r.results[0].outcome, Outcome::Bounced, "{r:?}");
        assert_eq!(r.results[0].dsn, "5.3.4");
        l.max_size = 0;
        let mut d = Mem::new()
            .list(l)
            .alias("loop@example.test", &["news@example.test"])
            .user("a@example.test", &[], false, true);
        let r = fx.run(&mut d, "QL5", &["news@example.test"], MSG);
        assert_eq!(r.results[0].outcome, Outcome::Sent, "{r:?}");
        assert_eq!(messages(&fx.maildir("a@example.test")).len(), 1);
        // news-owner@ without owners: nobody to take it.
        let r = fx.run(&mut d, "QL6", &["news-owner@example.test"], MSG);
        assert_eq!(r.results[0].outcome, Outcome::Bounced, "{r:?}");
    }
}
