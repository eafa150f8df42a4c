//! kmp-local, black-box: the real daemon (with kmp-authd when it is there),
//! this test acting as kmp-send on `local.sock`, and assertions on the
//! results and on the Maildirs.

mod common;

use std::fs;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::Instance;
use kmpromail::ipc::frame;
use kmpromail::ipc::job::{self, Job, JobRecipient, JobReply, Outcome, VERSION};
use kmpromail::queue::Notify;

/// kmp-send's side of one connection.
struct Sender {
    stream: UnixStream,
    dir: PathBuf,
}

impl Sender {
    fn connect(inst: &Instance) -> Sender {
        inst.wait_socket("local.sock");
        let stream = UnixStream::connect(inst.path().join("run/local.sock")).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .unwrap();
        let dir = inst.path().join("msgs");
        fs::create_dir_all(&dir).unwrap();
        Sender { stream, dir }
    }

    /// Sends one job for `msg` to `rcpts` (delivery ids `QID.i`) and waits for the reply.
    fn job(&mut self, qid: &str, sender: &str, rcpts: &[&str], msg: &[u8]) -> JobReply {
        self.send(qid, sender, rcpts, msg);
        let reply: JobReply = frame::read(&mut self.stream).unwrap();
        assert_eq!(reply.results.len(), rcpts.len());
        reply
    }

    /// Sends one job without waiting for its reply.
    fn send(&mut self, qid: &str, sender: &str, rcpts: &[&str], msg: &[u8]) {
        let path = self.dir.join(qid);
        fs::write(&path, msg).unwrap();
        let file = fs::File::open(&path).unwrap();
        let job = Job {
            v: VERSION,
            qid: qid.into(),
            sender: sender.into(),
            envid: None,
            ret: None,
            smtputf8: false,
            body_8bit: false,
            size: msg.len() as u64,
            fresh: false,
            generation: 0,
            arrived: 1_700_000_000,
            recipients: rcpts
                .iter()
                .enumerate()
                .map(|(i, a)| JobRecipient {
                    index: i as u32,
                    address: a.to_string(),
                    notify: Notify::default(),
                    orcpt: None,
                    delivery_id: format!("{qid}.{i}"),
                    folder: None,
                })
                .collect(),
        };
        job::send(&self.stream, &job, file.as_raw_fd()).unwrap();
    }
}

fn start_local(inst: &mut Instance) {
    inst.spawn("kmp-local", &[]);
    inst.wait_socket("local.sock");
}

/// Every message file of a Maildir (new/ and cur/).
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

#[test]
fn without_kmp_authd_every_recipient_is_deferred_never_bounced() {
    let mut inst = Instance::new();
    start_local(&mut inst);
    let mut s = Sender::connect(&inst);
    let r = s.job(
        "QDOWN",
        "a@other.test",
        &["u@example.test", "v@example.test"],
        b"Subject: x\n\nbody\n",
    );
    for x in &r.results {
        assert_eq!(x.outcome, Outcome::Deferred, "{r:?}");
        assert_eq!(x.dsn, "4.3.0");
        assert_eq!(x.relay, "local");
    }
    // The connection goes on: a second job on it is answered too.
    let r = s.job("QDOWN2", "", &["u@example.test"], b"x\n");
    assert_eq!(r.results[0].outcome, Outcome::Deferred);
    let log = inst.log("kmp-local");
    assert!(
        log.contains("QDOWN: to=<u@example.test>, relay=local, delay=")
            && log.contains("dsn=4.3.0, status=deferred (cannot look up the recipient"),
        "{log}"
    );
    assert!(messages(&inst.path().join("mail/example.test/u")).is_empty());
}

#[test]
fn a_job_without_its_file_is_deferred_and_garbage_closes_only_that_connection() {
    let mut inst = Instance::new();
    start_local(&mut inst);
    // A job frame with no descriptor attached.
    let mut raw = UnixStream::connect(inst.path().join("run/local.sock")).unwrap();
    raw.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let job = Job {
        v: VERSION,
        qid: "QNOFD".into(),
        sender: String::new(),
        envid: None,
        ret: None,
        smtputf8: false,
        body_8bit: false,
        size: 1,
        fresh: false,
        generation: 0,
        arrived: 1,
        recipients: vec![JobRecipient {
            index: 7,
            address: "u@example.test".into(),
            notify: Notify::default(),
            orcpt: None,
            delivery_id: "QNOFD.7".into(),
            folder: None,
        }],
    };
    frame::write(&mut raw, &job).unwrap();
    let r: JobReply = frame::read(&mut raw).unwrap();
    assert_eq!(r.results[0].index, 7);
    assert_eq!(r.results[0].outcome, Outcome::Deferred);
    // Garbage: that connection closes, the daemon goes on.
    let mut bad = UnixStream::connect(inst.path().join("run/local.sock")).unwrap();
    std::io::Write::write_all(&mut bad, b"\0\0\0\x05hello").unwrap();
    let mut buf = [0u8; 1];
    bad.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    assert_eq!(std::io::Read::read(&mut bad, &mut buf).unwrap(), 0);
    let mut s = Sender::connect(&inst);
    let r = s.job("QAFTER", "", &["u@example.test"], b"x\n");
    assert_eq!(r.results[0].outcome, Outcome::Deferred);
}

// ---- with kmp-authd and the user database -------------------------------

/// An instance with kmp-authd and kmp-local running and example.test set up.
fn with_users(extra_config: &str) -> Instance {
    let mut inst = Instance::new();
    if !extra_config.is_empty() {
        common::set_config(&inst, "local", extra_config);
    }
    inst.ctl_ok(&["domain", "add", "example.test"]);
    inst.spawn("kmp-authd", &[]);
    inst.wait_socket("authd.sock");
    start_local(&mut inst);
    inst
}

fn maildir(inst: &Instance, address: &str) -> PathBuf {
    let (l, d) = address.split_once('@').unwrap();
    inst.path().join("mail").join(d).join(l)
}

fn outcome(r: &JobReply, i: usize) -> (Outcome, &str) {
    (r.results[i].outcome, r.results[i].dsn.as_str())
}

const MSG: &[u8] = b"From: a@other.test\nSubject: hello\nMessage-ID: <1@other.test>\n\nbody\n";

/// Issue 13: kmp-send keeps several jobs in flight on one connection;
/// kmp-local delivers them at once and answers in the order they came.
#[test]
fn pipelined_jobs_on_one_connection_are_answered_in_order() {
    let inst = with_users("");
    let users: Vec<String> = (0..12).map(|i| format!("p{i}@example.test")).collect();
    for u in &users {
        inst.ctl_ok(&["user", "add", u]);
    }
    let mut s = Sender::connect(&inst);
    // Job k has k+1 recipients, so each reply says which job it answers.
    for k in 0..12 {
        let rcpts: Vec<&str> = users[..=k].iter().map(|u| u.as_str()).collect();
        s.send(&format!("QP{k}"), "a@other.test", &rcpts, MSG);
    }
    for k in 0..12 {
        let reply: JobReply = frame::read(&mut s.stream).unwrap();
        assert_eq!(reply.results.len(), k + 1, "reply {k} out of order");
        assert!(
            reply.results.iter().all(|r| r.outcome == Outcome::Sent),
            "{reply:?}"
        );
    }
    for (i, u) in users.iter().enumerate() {
        assert_eq!(messages(&maildir(&inst, u)).len(), 12 - i, "{u}");
    }
    // The connection goes on with one job at a time.
    let r = s.job("QP12", "a@other.test", &[users[0].as_str()], MSG);
    assert_eq!(outcome(&r, 0), (Outcome::Sent, "2.0.0"));
}

#[test]
fn users_aliases_forwards_catch_all_and_plus_addressing() {
    let inst = with_users("");
    for u in ["a", "b", "c", "f", "k", "catch"] {
        inst.ctl_ok(&["user", "add", &format!("{u}@example.test")]);
    }
    inst.ctl_ok(&[
        "alias",
        "add",
        "team@example.test",
        "a@example.test",
        "b@example.test",
    ]);
    inst.ctl_ok(&[
        "alias",
        "add",
        "all@example.test",
        "team@example.test",
        "c@example.test",
        "out@remote.test",
    ]);
    inst.ctl_ok(&["user", "forward", "f@example.test", "far@remote.test"]);
    inst.ctl_ok(&[
        "user",
        "forward",
        "k@example.test",
        "kfar@remote.test",
        "--keep-copy",
    ]);
    inst.ctl_ok(&["domain", "add", "catchall.test"]);
    inst.ctl_ok(&["alias", "add", "@catchall.test", "catch@example.test"]);
    let mut s = Sender::connect(&inst);

    // Nested alias: local members get it, the remote one goes back to kmp-send.
    let r = s.job("QALIAS", "a@other.test", &["all@example.test"], MSG);
    assert_eq!(outcome(&r, 0), (Outcome::Sent, "2.0.0"), "{r:?}");
    assert_eq!(r.results[0].expanded, ["out@remote.test"]);
    for u in ["a", "b", "c"] {
        assert_eq!(
            messages(&maildir(&inst, &format!("{u}@example.test"))).len(),
            1,
            "{u}"
        );
    }
    let log = inst.log("kmp-local");
    assert!(
        log.contains(
            "QALIAS: to=<a@example.test>, orig_to=<all@example.test>, relay=local, delay="
        ) && log.contains("dsn=2.0.0, status=sent (delivered to maildir)"),
        "{log}"
    );

    // Forward without a copy, with a copy; plus-addressing; catch-all.
    let r = s.job(
        "QFWD",
        "a@other.test",
        &[
            "f@example.test",
            "k@example.test",
            "c+lists@example.test",
            "whoever@catchall.test",
        ],
        MSG,
    );
    assert!(
        r.results.iter().all(|x| x.outcome == Outcome::Sent),
        "{r:?}"
    );
    assert_eq!(r.results[0].expanded, ["far@remote.test"]);
    assert_eq!(r.results[0].text, "forwarded");
    assert!(messages(&maildir(&inst, "f@example.test")).is_empty());
    assert_eq!(r.results[1].expanded, ["kfar@remote.test"]);
    assert_eq!(messages(&maildir(&inst, "k@example.test")).len(), 1);
    assert_eq!(messages(&maildir(&inst, "c@example.test")).len(), 2);
    assert_eq!(messages(&maildir(&inst, "catch@example.test")).len(), 1);

    // What a real Maildir reader sees: Python's mailbox module.
    let out = common::python(
        r#"
import mailbox, sys
md = mailbox.Maildir(sys.argv[1], create=False)
for key, msg in sorted(md.items(), key=lambda kv: kv[1]['Delivered-To'] or ''):
    print(msg['Return-Path'], msg['Delivered-To'], msg['Subject'], msg.get_payload().strip())
print(' '.join(sorted(md.list_folders())))
"#,
        &[maildir(&inst, "c@example.test").to_str().unwrap()],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        text,
        // One file shared by the alias's members names the alias; one
        // shared by several envelope recipients names none (Bcc stays hidden).
        "<a@other.test> None hello body\n\
         <a@other.test> all@example.test hello body\n\
         Drafts Junk Sent Trash\n",
        "{text}"
    );
}

#[test]
fn disabled_unknown_and_mail_loops_bounce_with_their_codes() {
    let inst = with_users("hop_limit = 3");
    inst.ctl_ok(&["user", "add", "off@example.test"]);
    inst.ctl_ok(&["user", "disable", "off@example.test"]);
    inst.ctl_ok(&["user", "add", "on@example.test"]);
    inst.ctl_ok(&["alias", "add", "l1@example.test", "l2@example.test"]);
    inst.ctl_ok(&["alias", "add", "l2@example.test", "l1@example.test"]);
    let mut s = Sender::connect(&inst);
    let r = s.job(
        "QBAD",
        "a@other.test",
        &["off@example.test", "nobody@example.test", "l1@example.test"],
        MSG,
    );
    assert_eq!(outcome(&r, 0), (Outcome::Bounced, "5.2.1"), "{r:?}");
    assert_eq!(outcome(&r, 1), (Outcome::Bounced, "5.1.1"));
    assert_eq!(outcome(&r, 2), (Outcome::Bounced, "5.4.6"));
    assert!(r.results[2].text.contains("alias loop"), "{r:?}");
    let looped = b"Delivered-To: on@example.test\nSubject: again\n\nx\n";
    let r = s.job("QLOOP", "a@other.test", &["on@example.test"], looped);
    assert_eq!(outcome(&r, 0), (Outcome::Bounced, "5.4.6"));
    assert!(r.results[0].text.contains("mail forwarding loop"));
    let hops = b"Received: 1\nReceived: 2\nReceived: 3\nReceived: 4\nSubject: far\n\nx\n";
    let r = s.job("QHOPS", "a@other.test", &["on@example.test"], hops);
    assert_eq!(outcome(&r, 0), (Outcome::Bounced, "5.4.6"));
    let three = b"Received: 1\nReceived: 2\nReceived: 3\nSubject: near\n\nx\n";
    let r = s.job("QHOP3", "a@other.test", &["on@example.test"], three);
    assert_eq!(outcome(&r, 0), (Outcome::Sent, "2.0.0"));
    assert_eq!(messages(&maildir(&inst, "on@example.test")).len(), 1);
    assert!(!maildir(&inst, "off@example.test").join("new").exists());
    let log = inst.log("kmp-local");
    assert!(
        log.contains("QBAD: to=<nobody@example.test>, relay=local"),
        "{log}"
    );
    assert!(
        log.contains("dsn=5.1.1, status=bounced (unknown user"),
        "{log}"
    );

    // SIGHUP re-reads [local]: a higher hop limit lets the far message in.
    let text = fs::read_to_string(inst.config()).unwrap();
    fs::write(
        inst.config(),
        text.replace("hop_limit = 3", "hop_limit = 10"),
    )
    .unwrap();
    signal(&inst, nix::sys::signal::Signal::SIGHUP);
    common::wait_until(Duration::from_secs(10), || {
        inst.log("kmp-local").contains("configuration reloaded")
    })
    .expect("kmp-local reloaded its configuration");
    let r = s.job("QHOPS2", "a@other.test", &["on@example.test"], hops);
    assert_eq!(outcome(&r, 0), (Outcome::Sent, "2.0.0"), "{r:?}");
}

fn signal(inst: &Instance, sig: nix::sys::signal::Signal) {
    let pid = nix::unistd::Pid::from_raw(inst.pid("kmp-local").unwrap() as i32);
    nix::sys::signal::kill(pid, sig).unwrap();
}

#[test]
fn parallel_connections_are_served_and_sigterm_ends_cleanly() {
    let inst = with_users("");
    let users: Vec<String> = (0..5).map(|i| format!("p{i}@example.test")).collect();
    for u in &users {
        inst.ctl_ok(&["user", "add", u]);
    }
    std::thread::scope(|scope| {
        for t in 0..4 {
            let (inst, users) = (&inst, &users);
            scope.spawn(move || {
                let mut s = Sender::connect(inst);
                for j in 0..25 {
                    let rcpts: Vec<&str> = users.iter().map(|u| u.as_str()).collect();
                    let r = s.job(&format!("QP{t}x{j}"), "a@other.test", &rcpts, MSG);
                    assert!(
                        r.results.iter().all(|x| x.outcome == Outcome::Sent),
                        "{r:?}"
                    );
                }
            });
        }
    });
    for u in &users {
        assert_eq!(messages(&maildir(&inst, u)).len(), 100, "{u}");
    }
    signal(&inst, nix::sys::signal::Signal::SIGTERM);
    let pid_file = inst.path().join("run/kmp-local.pid");
    common::wait_until(Duration::from_secs(10), || {
        !pid_file.exists() && !inst.path().join("run/local.sock").exists()
    })
    .expect("kmp-local removed its pid file and socket");
}

#[test]
fn over_quota_defers_with_4_2_2_and_the_user_is_warned_once() {
    let inst = with_users("quota_warning_percent = 50");
    inst.ctl_ok(&["user", "add", "q@example.test", "--quota", "4000"]);
    let mut s = Sender::connect(&inst);
    let body = vec![b'z'; 900];
    let msg = [b"Subject: fill\n\n".as_slice(), &body, b"\n"].concat();
    let mut seen = Vec::new();
    for i in 0..6 {
        let r = s.job(&format!("QQ{i}"), "a@other.test", &["q@example.test"], &msg);
        seen.push(outcome(&r, 0).0);
        if r.results[0].outcome == Outcome::Deferred {
            assert_eq!(r.results[0].dsn, "4.2.2", "{r:?}");
        }
    }
    assert!(seen.contains(&Outcome::Deferred), "{seen:?}");
    let md = maildir(&inst, "q@example.test");
    let with = |what: &str| {
        messages(&md)
            .iter()
            .filter(|p| fs::read_to_string(p).unwrap().contains(what))
            .count()
    };
    assert_eq!(with("% full\n"), 1, "{seen:?}");
    // However many were refused, one warning that mail is refused.
    assert_eq!(with("Subject: Your mailbox is full: mail"), 1, "{seen:?}");
    let size = fs::read_to_string(md.join("maildirsize")).unwrap();
    assert!(size.starts_with("4000S,"), "{size}");
    // The administrator raises the quota: the retry goes through.
    inst.ctl_ok(&["user", "quota", "q@example.test", "1M"]);
    let last = seen.iter().rposition(|o| *o == Outcome::Deferred).unwrap();
    let r = s.job(
        &format!("QQ{last}"),
        "a@other.test",
        &["q@example.test"],
        &msg,
    );
    assert_eq!(outcome(&r, 0), (Outcome::Sent, "2.0.0"), "{r:?}");
}

#[test]
fn one_file_is_hard_linked_for_many_and_a_retry_delivers_nothing_twice() {
    let mut inst = with_users("");
    let users: Vec<String> = (0..5).map(|i| format!("u{i}@example.test")).collect();
    for u in &users {
        inst.ctl_ok(&["user", "add", u]);
    }
    let rcpts: Vec<&str> = users.iter().map(|s| s.as_str()).collect();
    let mut s = Sender::connect(&inst);
    let r = s.job("QLINK", "a@other.test", &rcpts, MSG);
    assert!(
        r.results.iter().all(|x| x.outcome == Outcome::Sent),
        "{r:?}"
    );
    use std::os::unix::fs::MetadataExt;
    let first = messages(&maildir(&inst, &users[0])).remove(0);
    assert_eq!(fs::metadata(&first).unwrap().nlink(), 5);
    let text = fs::read_to_string(&first).unwrap();
    assert!(
        text.starts_with("Return-Path: <a@other.test>\nFrom:"),
        "{text}"
    );

    // kmp-send crashed before it recorded the results: the same job again,
    // to a restarted kmp-local, some recipients fewer, delivers nothing new.
    inst.kill("kmp-local");
    start_local(&mut inst);
    let mut s = Sender::connect(&inst);
    let r = s.job("QLINK", "a@other.test", &rcpts[..3], MSG);
    assert!(
        r.results.iter().all(|x| x.outcome == Outcome::Sent),
        "{r:?}"
    );
    assert!(
        r.results[0].text.contains("already delivered to maildir"),
        "{r:?}"
    );
    for u in &users {
        assert_eq!(messages(&maildir(&inst, u)).len(), 1, "{u}");
    }
}

/// Makes a directory unwritable even for root (immutable) where the file
/// system allows, else by its mode. Returns false when neither holds.
fn make_read_only(dir: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    if kmpromail::sys::privs::is_root() {
        let ok = std::process::Command::new("chattr")
            .arg("+i")
            .arg(dir)
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        return ok;
    }
    fs::set_permissions(dir, fs::Permissions::from_mode(0o500)).unwrap();
    true
}

fn make_writable(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::process::Command::new("chattr")
        .arg("-i")
        .arg(dir)
        .stderr(std::process::Stdio::null())
        .status();
    let _ = fs::set_permissions(dir, fs::Permissions::from_mode(0o700));
}

#[test]
fn a_read_only_maildir_defers_and_the_retry_delivers() {
    let inst = with_users("");
    inst.ctl_ok(&["user", "add", "ro@example.test"]);
    let mut s = Sender::connect(&inst);
    let r = s.job("QRO0", "a@other.test", &["ro@example.test"], MSG);
    assert_eq!(outcome(&r, 0), (Outcome::Sent, "2.0.0"));
    let md = maildir(&inst, "ro@example.test");
    if !(make_read_only(&md.join("tmp")) && make_read_only(&md.join("new"))) {
        eprintln!("skipped: cannot make a directory read-only here");
        return;
    }
    let r = s.job("QRO", "a@other.test", &["ro@example.test"], MSG);
    make_writable(&md.join("tmp"));
    make_writable(&md.join("new"));
    assert_eq!(r.results[0].outcome, Outcome::Deferred, "{r:?}");
    assert!(r.results[0].dsn.starts_with("4.3."), "{r:?}");
    assert_eq!(messages(&md).len(), 1);
    let r = s.job("QRO", "a@other.test", &["ro@example.test"], MSG);
    assert_eq!(outcome(&r, 0), (Outcome::Sent, "2.0.0"));
    assert_eq!(messages(&md).len(), 2);
}

/// The peak resident memory of a process, in kB.
fn peak_rss_kb(pid: u32) -> u64 {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap()
}

#[test]
fn big_and_malformed_messages_are_delivered_faithfully() {
    let inst = with_users("");
    inst.ctl_ok(&["user", "add", "m@example.test"]);
    let mut s = Sender::connect(&inst);
    let mut headers = Vec::new();
    for i in 0..10_000 {
        headers.extend_from_slice(format!("X-Line-{i}: value {i}\n").as_bytes());
    }
    headers.extend_from_slice(b"\nbody\n");
    let mut big = b"Subject: big\n\n".to_vec();
    let line = [vec![b'x'; 999], b"\n".to_vec()].concat();
    while big.len() < 50 * 1024 * 1024 {
        big.extend_from_slice(&line);
    }
    let table: Vec<(&str, Vec<u8>)> = vec![
        (
            "no separator",
            b"just some text, no header\nand more".to_vec(),
        ),
        (
            "bare cr lf nul",
            b"Subject: a\rb\n\nline\rcr\0nul\n\xff\xfe\n".to_vec(),
        ),
        (
            "long line",
            [
                b"Subject: ".as_slice(),
                &[b'l'; 1000],
                b"\n\n",
                &[b'b'; 1000],
                b"\n",
            ]
            .concat(),
        ),
        (
            "utf-8 header",
            "Subject: Gr\u{fc}\u{df}e \u{4e2d}\u{6587}\nFrom: J\u{f6}rg <j@other.test>\n\nx\n"
                .as_bytes()
                .to_vec(),
        ),
        ("10000 header lines", headers),
        ("empty", Vec::new()),
        ("50 MB", big),
    ];
    let prefix = b"Return-Path: <a@other.test>\nDelivered-To: m@example.test\n";
    for (i, (what, msg)) in table.iter().enumerate() {
        let r = s.job(&format!("QM{i}"), "a@other.test", &["m@example.test"], msg);
        assert_eq!(outcome(&r, 0), (Outcome::Sent, "2.0.0"), "{what}: {r:?}");
        let files = messages(&maildir(&inst, "m@example.test"));
        let want = [prefix.as_slice(), msg].concat();
        let found = files.iter().any(|p| {
            fs::metadata(p).unwrap().len() == want.len() as u64 && fs::read(p).unwrap() == want
        });
        assert!(found, "{what}: not delivered byte for byte");
    }
    let rss = peak_rss_kb(inst.pid("kmp-local").unwrap());
    assert!(
        rss < 40 * 1024,
        "kmp-local peaked at {rss} kB for a 50 MB message"
    );
}

/// A small tmpfs mounted for a test, unmounted when dropped.
struct SmallDisk(PathBuf);

impl SmallDisk {
    /// Mounts a tmpfs of `size` at `dir`, or None where that is not allowed.
    fn mount(dir: &Path, size: &str) -> Option<SmallDisk> {
        fs::create_dir_all(dir).unwrap();
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .stderr(std::process::Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        ok.then(|| SmallDisk(dir.to_path_buf()))
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_full_disk_defers_with_4_3_1_and_other_mailboxes_still_get_the_message() {
    let inst = with_users("");
    let small = inst.path().join("small");
    let Some(_disk) = SmallDisk::mount(&small, "256k") else {
        eprintln!("skipped: cannot mount a tmpfs here");
        return;
    };
    let full_path = small.join("full");
    inst.ctl_ok(&[
        "user",
        "add",
        "full@example.test",
        "--mail-path",
        full_path.to_str().unwrap(),
    ]);
    inst.ctl_ok(&["user", "add", "fine@example.test"]);
    let mut s = Sender::connect(&inst);
    let msg = [b"Subject: big\n\n".as_slice(), &vec![b'y'; 1024 * 1024]].concat();
    let r = s.job(
        "QFULL",
        "a@other.test",
        &["full@example.test", "fine@example.test"],
        &msg,
    );
    assert_eq!(outcome(&r, 0), (Outcome::Deferred, "4.3.1"), "{r:?}");
    assert_eq!(outcome(&r, 1), (Outcome::Sent, "2.0.0"), "{r:?}");
    assert!(messages(&full_path).is_empty());
    assert_eq!(fs::read_dir(full_path.join("tmp")).unwrap().count(), 0);
    assert_eq!(messages(&maildir(&inst, "fine@example.test")).len(), 1);
    // A small message still fits: the disk was full, nothing was lost.
    let r = s.job("QFIT", "a@other.test", &["full@example.test"], MSG);
    assert_eq!(outcome(&r, 0), (Outcome::Sent, "2.0.0"), "{r:?}");
}

// ---- end to end: kmp-inject, kmp-send, kmp-local -------------------------

/// Runs kmp-inject as `sendmail` with `args`, the message on standard input.
fn sendmail(inst: &Instance, args: &[&str], input: &[u8]) {
    use std::io::Write;
    let link = inst.path().join("sendmail");
    if !link.exists() {
        std::os::unix::fs::symlink(common::bin("kmp-inject"), &link).unwrap();
    }
    let mut child = std::process::Command::new(&link)
        .arg("-C")
        .arg(inst.config())
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "sendmail {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn wait_messages(inst: &Instance, address: &str, n: usize) -> Vec<PathBuf> {
    common::wait_until(Duration::from_secs(30), || {
        messages(&maildir(inst, address)).len() >= n
    })
    .unwrap_or_else(|_| {
        panic!(
            "{address}: {} messages, not {n}\nkmp-send:\n{}\nkmp-local:\n{}",
            messages(&maildir(inst, address)).len(),
            inst.log("kmp-send"),
            inst.log("kmp-local")
        )
    });
    messages(&maildir(inst, address))
}

fn queue_list(inst: &Instance) -> String {
    inst.ctl_ok(&["queue", "list"])
}

#[test]
fn end_to_end_aliases_forwards_bounces_and_quota_through_the_queue() {
    let mut inst = with_users("");
    inst.append_config(
        "[send]\nmin_backoff = \"1s\"\nmax_backoff = \"1s\"\nscan_interval = \"1s\"\n",
    );
    for u in ["alice", "bob", "carol", "q", "postmaster"] {
        inst.ctl_ok(&["user", "add", &format!("{u}@example.test")]);
    }
    inst.ctl_ok(&[
        "alias",
        "add",
        "team@example.test",
        "bob@example.test",
        "carol@example.test",
        "far@remote.test",
        "ghost@example.test",
    ]);
    inst.ctl_ok(&[
        "user",
        "forward",
        "carol@example.test",
        "carol@remote.test",
        "--keep-copy",
    ]);
    inst.ctl_ok(&["user", "quota", "q@example.test", "2000"]);
    let pid = inst.path().join("run/kmp-send.pid");
    inst.spawn("kmp-send", &[]);
    common::wait_until(Duration::from_secs(20), || pid.exists())
        .unwrap_or_else(|_| panic!("kmp-send never got ready:\n{}", inst.log("kmp-send")));

    sendmail(
        &inst,
        &["-f", "alice@example.test", "team@example.test"],
        b"Subject: to the team\n\nhello team\n",
    );
    let bob = wait_messages(&inst, "bob@example.test", 1);
    let carol = wait_messages(&inst, "carol@example.test", 1);
    use std::os::unix::fs::MetadataExt;
    assert_eq!(
        fs::metadata(&bob[0]).unwrap().ino(),
        fs::metadata(&carol[0]).unwrap().ino()
    );
    let text = fs::read_to_string(&bob[0]).unwrap();
    assert!(
        text.starts_with("Return-Path: <alice@example.test>\nDelivered-To: team@example.test\n"),
        "{text}"
    );
    assert!(text.contains("hello team"), "{text}");
    // The unknown member bounces to the sender, on its own, with 5.1.1.
    let alice = wait_messages(&inst, "alice@example.test", 1);
    let dsn = fs::read_to_string(&alice[0]).unwrap();
    assert!(
        dsn.contains("ghost@example.test") && dsn.contains("5.1.1"),
        "{dsn}"
    );
    // The remote member and the forward wait in the queue for kmp-remote.
    common::wait_until(Duration::from_secs(20), || {
        let q = queue_list(&inst);
        q.contains("far@remote.test") && q.contains("carol@remote.test")
    })
    .unwrap_or_else(|_| panic!("{}\n{}", queue_list(&inst), inst.log("kmp-send")));

    // Over quota: deferred with 4.2.2 and kept; more room, and it arrives.
    let big = [b"Subject: big\n\n".as_slice(), &vec![b'b'; 3000], b"\n"].concat();
    sendmail(&inst, &["-f", "alice@example.test", "q@example.test"], &big);
    common::wait_until(Duration::from_secs(20), || {
        inst.log("kmp-local")
            .contains("to=<q@example.test>, relay=local")
            && inst
                .log("kmp-local")
                .contains("dsn=4.2.2, status=deferred (mailbox full")
    })
    .unwrap_or_else(|_| panic!("{}", inst.log("kmp-local")));
    // Only the warning that the mailbox is full is there (once), not the mail.
    let has_big = |inst: &Instance| {
        messages(&maildir(inst, "q@example.test")).iter().any(|m| {
            fs::read_to_string(m)
                .unwrap_or_default()
                .contains("Subject: big")
        })
    };
    assert!(!has_big(&inst));
    assert!(messages(&maildir(&inst, "q@example.test")).len() <= 1);
    inst.ctl_ok(&["user", "quota", "q@example.test", "1M"]);
    common::wait_until(Duration::from_secs(20), || has_big(&inst))
        .unwrap_or_else(|_| panic!("{}", inst.log("kmp-local")));
}

#[test]
fn started_as_root_it_drops_to_its_user_who_owns_the_maildirs() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let Ok(Some(nobody)) = nix::unistd::User::from_name("nobody") else {
        eprintln!("skipped: no user nobody");
        return;
    };
    if !kmpromail::sys::privs::is_root() {
        eprintln!("skipped: not root");
        return;
    }
    let mut inst = Instance::new();
    inst.ctl_ok(&["domain", "add", "example.test"]);
    inst.ctl_ok(&["user", "add", "own@example.test"]);
    inst.spawn("kmp-authd", &[]);
    inst.wait_socket("authd.sock");
    // What `kmpctl setup` arranges with groups, done bluntly for the test:
    // the unprivileged user may reach kmp-authd, the run and mail directories.
    let mode = |p: &Path, m: u32| fs::set_permissions(p, fs::Permissions::from_mode(m)).unwrap();
    mode(inst.path(), 0o755);
    mode(&inst.path().join("run"), 0o777);
    mode(&inst.path().join("run/authd.sock"), 0o666);
    let mail = inst.path().join("mail");
    nix::unistd::chown(&mail, Some(nobody.uid), Some(nobody.gid)).unwrap();
    let conf = fs::read_to_string(inst.config()).unwrap();
    let at = conf.find("[privileges]").unwrap();
    let (head, tail) = conf.split_at(at);
    let tail = tail.replacen("\nlocal = \"\"\n", "\nlocal = \"nobody\"\n", 1);
    assert!(tail.contains("local = \"nobody\""), "{conf}");
    fs::write(inst.config(), format!("{head}{tail}")).unwrap();
    inst.spawn("kmp-local", &[]);
    common::wait_until(Duration::from_secs(10), || {
        inst.path().join("run/kmp-local.pid").exists()
    })
    .unwrap_or_else(|_| panic!("{}", inst.log("kmp-local")));
    let pid = inst.pid("kmp-local").unwrap();
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let uid_line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    assert!(
        uid_line
            .split_whitespace()
            .skip(1)
            .all(|u| u == nobody.uid.to_string()),
        "{uid_line}"
    );
    let sock = fs::metadata(inst.path().join("run/local.sock")).unwrap();
    assert_eq!(
        (sock.uid(), sock.mode() & 0o777),
        (nobody.uid.as_raw(), 0o660)
    );
    let mut s = Sender::connect(&inst);
    let r = s.job("QOWN", "a@other.test", &["own@example.test"], MSG);
    assert_eq!(outcome(&r, 0), (Outcome::Sent, "2.0.0"), "{r:?}");
    let md = maildir(&inst, "own@example.test");
    let file = messages(&md).remove(0);
    for p in [md.clone(), md.join(".Sent"), file] {
        let m = fs::metadata(&p).unwrap();
        assert_eq!(m.uid(), nobody.uid.as_raw(), "{}", p.display());
        assert_eq!(m.mode() & 0o077, 0, "{} is private", p.display());
    }
}

/// Issue 11: recipients of one message that reach the same mailbox (the
/// user, an alias, a catch-all) give it one copy, each recipient its own
/// "sent" result; a later job of the same message for another of them (a
/// retry after a crash, a deferred recipient) finds that copy.
#[test]
fn one_copy_per_mailbox_however_many_recipients_reach_it() {
    let inst = with_users("");
    for u in ["bob", "k"] {
        inst.ctl_ok(&["user", "add", &format!("{u}@example.test")]);
    }
    inst.ctl_ok(&["alias", "add", "bobby@example.test", "bob@example.test"]);
    inst.ctl_ok(&["domain", "add", "catchall.test"]);
    inst.ctl_ok(&["alias", "add", "@catchall.test", "bob@example.test"]);
    inst.ctl_ok(&[
        "user",
        "forward",
        "k@example.test",
        "bob@example.test",
        "--keep-copy",
    ]);
    let mut s = Sender::connect(&inst);
    let rcpts = [
        "bob@example.test",
        "bobby@example.test",
        "x@catchall.test",
        "k@example.test",
    ];
    let r = s.job("QDUP", "a@other.test", &rcpts, MSG);
    assert!(
        r.results.iter().all(|x| x.outcome == Outcome::Sent),
        "{r:?}"
    );
    assert_eq!(messages(&maildir(&inst, "bob@example.test")).len(), 1);
    assert_eq!(messages(&maildir(&inst, "k@example.test")).len(), 1);
    // The shared file names only its mailbox (no other recipient shows).
    let text = fs::read_to_string(&messages(&maildir(&inst, "bob@example.test"))[0]).unwrap();
    assert!(
        !text.contains("bobby") && !text.contains("catchall"),
        "{text}"
    );
    // Another job of the same message for one of them: nothing new.
    let r = s.job("QDUP", "a@other.test", &["bobby@example.test"], MSG);
    assert_eq!(outcome(&r, 0), (Outcome::Sent, "2.0.0"), "{r:?}");
    assert_eq!(messages(&maildir(&inst, "bob@example.test")).len(), 1);
    let log = inst.log("kmp-local");
    for rcpt in rcpts {
        assert!(
            log.lines()
                .any(|l| l.contains("QDUP: to=<") && l.contains(rcpt) && l.contains("status=sent")),
            "{rcpt}:\n{log}"
        );
    }
}
