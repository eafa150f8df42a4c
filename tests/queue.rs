//! The queue, black-box: the real kmp-authd, kmp-send and kmp-local, mail
//! put in with kmp-inject (as `sendmail`, `mailq`, `-bs`), assertions on the
//! Maildirs, the DSNs (parsed by Python's email package), the logs and
//! `kmpctl queue`.

mod common;

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::{bin, wait_until, Instance};

const USERS: &[&str] = &["alice", "bob", "carol", "dave", "postmaster"];

/// An instance with the domain example.test, its users, and the daemons.
fn start(extra_config: &str) -> Instance {
    let mut inst = Instance::new();
    // Double bounces go to postmaster@ the default domain.
    let conf = fs::read_to_string(inst.config()).unwrap();
    let conf = conf.replace(
        "hostname = \"mx.example.test\"\n",
        "hostname = \"mx.example.test\"\ndefault_domain = \"example.test\"\n",
    );
    fs::write(inst.config(), conf).unwrap();
    if !extra_config.is_empty() {
        inst.append_config(extra_config);
    }
    inst.ctl_ok(&["domain", "add", "example.test"]);
    for u in USERS {
        inst.ctl_ok(&["user", "add", &format!("{u}@example.test")]);
    }
    inst.append_config("");
    inst.spawn("kmp-authd", &[]);
    inst.wait_socket("authd.sock");
    inst.spawn("kmp-local", &[]);
    inst.wait_socket("local.sock");
    start_send(&mut inst);
    inst
}

fn start_send(inst: &mut Instance) {
    let pid = inst.path().join("run/kmp-send.pid");
    let _ = fs::remove_file(&pid);
    inst.spawn("kmp-send", &[]);
    wait_until(Duration::from_secs(20), || pid.exists())
        .unwrap_or_else(|_| panic!("kmp-send never got ready:\n{}", inst.log("kmp-send")));
}

/// Runs kmp-inject under `name` (sendmail, mailq, kmp-inject) with `input`.
fn inject_as(inst: &Instance, name: &str, args: &[&str], input: &[u8]) -> Output {
    let link = inst.path().join(name);
    if !link.exists() {
        std::os::unix::fs::symlink(bin("kmp-inject"), &link).unwrap();
    }
    let mut child = Command::new(&link)
        .arg("-C")
        .arg(inst.config())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    // A refused command line exits before reading: a broken pipe is fine.
    let _ = stdin.write_all(input);
    drop(stdin);
    child.wait_with_output().unwrap()
}

fn sendmail(inst: &Instance, args: &[&str], input: &[u8]) -> Output {
    let out = inject_as(inst, "sendmail", args, input);
    assert!(
        out.status.success(),
        "sendmail {args:?}: {:?} {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn maildir(inst: &Instance, user: &str) -> PathBuf {
    inst.path().join("mail/example.test").join(user)
}

/// The messages in a user's INBOX (new/ and cur/).
fn inbox(inst: &Instance, user: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let mut v = Vec::new();
    for sub in ["new", "cur"] {
        if let Ok(rd) = fs::read_dir(maildir(inst, user).join(sub)) {
            for e in rd.flatten() {
                v.push((e.path(), fs::read(e.path()).unwrap()));
            }
        }
    }
    v.sort();
    v
}

fn wait_inbox(inst: &Instance, user: &str, n: usize) -> Vec<(PathBuf, Vec<u8>)> {
    let ok = wait_until(Duration::from_secs(30), || inbox(inst, user).len() >= n);
    assert!(
        ok.is_ok(),
        "{user} has {} messages, expected {n}\nkmp-send:\n{}\nkmp-local:\n{}",
        inbox(inst, user).len(),
        inst.log("kmp-send"),
        inst.log("kmp-local")
    );
    inbox(inst, user)
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).to_string()
}

/// How many times each numbered crash-test message (its subject `prefix`
/// then its number, sent to `users[n % users.len()]`) is in the mailboxes,
/// and how many are in the wrong one; `check` looks at each message's text.
fn tally(
    inst: &Instance,
    users: &[&str],
    prefix: &str,
    messages: usize,
    check: impl Fn(&str),
) -> (Vec<usize>, usize) {
    let mut seen = vec![0usize; messages];
    let mut misplaced = 0;
    for &u in users {
        for (_, m) in inbox(inst, u) {
            let t = text(&m);
            check(&t);
            let Some(n) = t
                .lines()
                .find_map(|l| l.strip_prefix(prefix))
                .and_then(|n| n.parse::<usize>().ok())
            else {
                continue;
            };
            if users[n % users.len()] != u {
                misplaced += 1;
            }
            seen[n] += 1;
        }
    }
    (seen, misplaced)
}

/// Delivered files with a second name: a kill between a link into `new/`
/// and the unlink of the `tmp/` name used to leave one (the file then lives
/// on in `tmp/` until cleaned); a rename that never replaces a name leaves
/// none. Each crash-test message goes to one mailbox, so every file it
/// delivered has exactly one name.
fn second_names(inst: &Instance, users: &[&str]) -> Vec<PathBuf> {
    use std::os::unix::fs::MetadataExt;
    let mut v = Vec::new();
    for &u in users {
        for sub in ["new", "cur", "tmp"] {
            let Ok(rd) = fs::read_dir(maildir(inst, u).join(sub)) else {
                continue;
            };
            for e in rd.flatten() {
                if e.metadata().map(|m| m.nlink() > 1).unwrap_or(false) {
                    v.push(e.path());
                }
            }
        }
    }
    v
}

fn mailq(inst: &Instance) -> String {
    let out = inject_as(inst, "mailq", &[], b"");
    assert!(out.status.success(), "{}", text(&out.stderr));
    text(&out.stdout)
}

fn wait_queue_empty(inst: &Instance) {
    let ok = wait_until(Duration::from_secs(30), || {
        mailq(inst) == "Mail queue is empty\n"
    });
    assert!(
        ok.is_ok(),
        "queue not empty:\n{}\n{}",
        mailq(inst),
        inst.log("kmp-send")
    );
}

#[test]
fn sendmail_t_f_and_arguments_reach_the_maildirs() {
    let inst = start("");
    let msg = b"To: Bob <bob@example.test>, carol@example.test\r\n\
        Bcc: dave@example.test\r\n\
        Subject: t test\r\n\
        \r\n\
        line one\r\n.\r\nline after the dot\r\n";
    sendmail(
        &inst,
        &["-t", "-i", "-f", "alice@example.test", "-F", "Alice A"],
        msg,
    );
    for u in ["bob", "carol", "dave"] {
        let m = wait_inbox(&inst, u, 1);
        let t = text(&m[0].1);
        assert!(t.starts_with("Return-Path: <alice@example.test>\n"), "{t}");
        assert!(!t.to_ascii_lowercase().contains("\nbcc:"), "{t}");
        assert!(t.contains("From: Alice A <alice@example.test>\n"), "{t}");
        assert!(
            t.contains("\nDate: ") && t.contains("\nMessage-ID: <"),
            "{t}"
        );
        assert!(t.ends_with("\n\nline one\n.\nline after the dot\n"), "{t}");
        assert!(!t.contains('\r'));
    }
    // Recipients as arguments, a bare name qualified, without -i the dot ends it.
    sendmail(
        &inst,
        &["bob@example.test,alice@example.test"],
        b"Subject: args\n\nbody\n.\nnot this\n",
    );
    let m = wait_inbox(&inst, "alice", 1);
    assert!(text(&m[0].1).ends_with("\n\nbody\n"), "{}", text(&m[0].1));
    wait_inbox(&inst, "bob", 2);
    wait_queue_empty(&inst);
    // kmp-send logs the queue's events, the delivery agent each delivery.
    let log = inst.log("kmp-send");
    for want in ["(queue active)", ": removed"] {
        assert!(log.contains(want), "no {want:?} in\n{log}");
    }
    assert!(
        !log.contains("status=sent"),
        "delivery logged twice:\n{log}"
    );
    let log = inst.log("kmp-local");
    for want in ["relay=local, delay=", "status=sent ("] {
        assert!(log.contains(want), "no {want:?} in\n{log}");
    }
    let line = log
        .lines()
        .find(|l| l.contains("to=<carol@example.test>"))
        .unwrap();
    assert!(
        line.contains(", dsn=2.0.0, status=sent") && line.contains(", delays="),
        "{line}"
    );
    // Unknown options are refused with the usage; no recipients is an error.
    let bad = inject_as(&inst, "sendmail", &["-Q"], b"x");
    assert_eq!(bad.status.code(), Some(64));
    assert!(text(&bad.stderr).contains("usage:"));
    let none = inject_as(&inst, "sendmail", &["-t"], b"Subject: x\n\nbody\n");
    assert_eq!(none.status.code(), Some(64));
    let badaddr = inject_as(&inst, "sendmail", &["bad address@x"], b"x");
    assert_eq!(badaddr.status.code(), Some(65));
}

#[test]
fn sendmail_bs_speaks_smtp_on_stdin() {
    let inst = start("");
    let script = "EHLO client.test\r\nMAIL FROM:<alice@example.test>\r\nRCPT TO:<bob@example.test>\r\n\
        RCPT TO:<bad address>\r\nDATA\r\nSubject: over bs\r\n\r\n..dotted\r\n.\r\nBOGUS\r\nQUIT\r\n";
    let out = sendmail(&inst, &["-bs"], script.as_bytes());
    let o = text(&out.stdout);
    assert!(o.starts_with("220 "), "{o}");
    assert!(o.contains("250 2.0.0 Ok: queued as "), "{o}");
    assert!(o.contains("501 5.1.3"), "{o}");
    assert!(o.contains("500 5.5.1"), "{o}");
    assert!(o.trim_end().ends_with("221 2.0.0 Bye"), "{o}");
    let m = wait_inbox(&inst, "bob", 1);
    assert!(
        text(&m[0].1).ends_with("\n\n.dotted\n"),
        "{}",
        text(&m[0].1)
    );
}

/// Parses a DSN with Python's email package and prints what the test checks.
const PARSE_DSN: &str = r#"
import email, sys
from email import policy
m = email.message_from_bytes(open(sys.argv[1], 'rb').read(), policy=policy.default)
print('type', m.get_content_type(), m.get_param('report-type'))
print('to', m['To'])
parts = list(m.iter_parts())
print('parts', [p.get_content_type() for p in parts])
ds = parts[1]
blocks = ds.get_payload()
print('reporting', blocks[0]['Reporting-MTA'])
print('arrival', bool(blocks[0]['Arrival-Date']))
for b in blocks[1:]:
    print('rcpt', b['Final-Recipient'], '|', b['Action'], '|', b['Status'], '|', b['Diagnostic-Code'], '|', b['Original-Recipient'], '|', bool(b['Last-Attempt-Date']))
orig = parts[2]
if orig.get_content_type() == 'message/rfc822':
    inner = orig.get_payload()[0]
    print('original-subject', inner['Subject'])
else:
    print('original-headers', 'Subject:' in orig.get_payload())
"#;

fn parse_dsn(inst: &Instance, file: &Path) -> String {
    let _ = inst;
    let out = common::python(PARSE_DSN, &[file.to_str().unwrap()]);
    assert!(out.status.success(), "python: {}", text(&out.stderr));
    text(&out.stdout)
}

#[test]
fn unknown_users_bounce_with_an_rfc3464_dsn() {
    let inst = start("");
    sendmail(
        &inst,
        &[
            "-f",
            "alice@example.test",
            "-N",
            "failure",
            "-V",
            "ENV-77",
            "nobody@example.test",
        ],
        b"Subject: to nobody\n\nhello\n",
    );
    // A second one asks for headers only.
    let _ = sendmail(
        &inst,
        &[
            "-f",
            "alice@example.test",
            "-R",
            "hdrs",
            "nobody2@example.test",
            "bob@example.test",
        ],
        b"Subject: hdrs only\n\nsecret body\n",
    );
    let out = inject_as(
        &inst,
        "sendmail",
        &["-f", "alice@example.test", "nobody@example.test"],
        b"Subject: to nobody\n\nhello\n",
    );
    assert!(out.status.success());
    let m = wait_inbox(&inst, "alice", 3);
    let mut full = 0;
    let mut hdrs = 0;
    for (path, bytes) in &m {
        let t = text(bytes);
        assert!(t.starts_with("Return-Path: <>\n"), "{t}");
        let p = parse_dsn(&inst, path);
        assert!(p.contains("type multipart/report delivery-status"), "{p}");
        assert!(
            p.contains("parts ['text/plain', 'message/delivery-status',"),
            "{p}"
        );
        assert!(p.contains("reporting dns; mx.example.test"), "{p}");
        assert!(p.contains("arrival True"), "{p}");
        assert!(p.contains("| failed | 5.1.1 |"), "{p}");
        assert!(p.contains("| True\n"), "{p}");
        if p.contains("original-subject to nobody") {
            full += 1;
            assert!(p.contains("rcpt rfc822; nobody@example.test"), "{p}");
        } else {
            assert!(p.contains("original-headers True"), "{p}");
            assert!(!t.contains("secret body"), "{t}");
            assert!(p.contains("rcpt rfc822; nobody2@example.test"), "{p}");
            hdrs += 1;
        }
    }
    assert_eq!((full, hdrs), (2, 1));
    // -N failure went with an envelope id: the DSN carries it back.
    assert!(m
        .iter()
        .any(|(_, b)| text(b).contains("Original-Envelope-Id: ENV-77")));
    wait_inbox(&inst, "bob", 1);
    wait_queue_empty(&inst);
    assert!(
        inst.log("kmp-local").contains("dsn=5.1.1, status=bounced"),
        "{}",
        inst.log("kmp-local")
    );
    let log = inst.log("kmp-send");
    assert!(log.contains("sender non-delivery notification: "), "{log}");
}

#[test]
fn null_sender_is_never_bounced_and_double_bounces_go_to_the_postmaster() {
    let inst = start("");
    // From the null sender to an unknown user: nobody but the postmaster hears.
    sendmail(
        &inst,
        &["-f", "", "nobody@example.test"],
        b"Subject: from null\n\nx\n",
    );
    let pm = wait_inbox(&inst, "postmaster", 1);
    let p = parse_dsn(&inst, &pm[0].0);
    assert!(p.contains("| failed | 5.1.1 |"), "{p}");
    // A bounce that bounces (its sender is unknown): a double bounce to the postmaster.
    sendmail(
        &inst,
        &["-f", "ghost@example.test", "nobody3@example.test"],
        b"Subject: from a ghost\n\nx\n",
    );
    let pm = wait_inbox(&inst, "postmaster", 2);
    assert!(pm
        .iter()
        .any(|(_, b)| text(b).contains("ghost@example.test")));
    wait_queue_empty(&inst);
    std::thread::sleep(Duration::from_millis(300));
    for u in ["alice", "bob", "carol", "dave"] {
        assert!(inbox(&inst, u).is_empty(), "{u} got mail");
    }
    assert_eq!(inbox(&inst, "postmaster").len(), 2);
    let log = inst.log("kmp-send");
    assert!(
        log.contains("postmaster non-delivery notification"),
        "{log}"
    );
}

#[test]
fn remote_mail_waits_for_kmp_remote_then_expires_with_warnings() {
    let inst = start(
        "[send]\nmin_backoff = \"1s\"\nmax_backoff = \"1s\"\ndelay_warning_time = \"2s\"\nmax_queue_lifetime = \"5s\"\nscan_interval = \"1s\"\n",
    );
    sendmail(
        &inst,
        &["-f", "alice@example.test", "someone@elsewhere.test"],
        b"Subject: far away\n\nx\n",
    );
    // Queued, with the reason, while kmp-remote is absent.
    wait_until(Duration::from_secs(10), || {
        mailq(&inst).contains("kmp-remote is not running")
    })
    .unwrap_or_else(|_| panic!("{}", mailq(&inst)));
    let q = mailq(&inst);
    assert!(
        q.contains("                                         someone@elsewhere.test\n"),
        "{q}"
    );
    assert!(
        q.contains(" alice@example.test\n") && q.contains("-- 1 Kbytes in 1 Request."),
        "{q}"
    );
    // A delay warning, then the bounce at the end of the lifetime.
    let m = wait_inbox(&inst, "alice", 2);
    let all: Vec<String> = m.iter().map(|(p, _)| parse_dsn(&inst, p)).collect();
    assert!(
        all.iter().any(|p| p.contains("| delayed | 4.3.0 |")),
        "{all:?}"
    );
    assert!(
        all.iter().any(|p| p.contains("| failed | 4.3.0 |")),
        "{all:?}"
    );
    wait_queue_empty(&inst);
    let log = inst.log("kmp-send");
    assert!(
        log.contains("status=deferred (delivery temporarily suspended"),
        "{log}"
    );
    assert!(log.contains("status=expired, returned to sender"), "{log}");
}

#[test]
fn kmpctl_queue_hold_release_requeue_delete() {
    let inst = start("[send]\nmin_backoff = \"1h\"\n");
    let out = sendmail(
        &inst,
        &["-f", "alice@example.test", "x@elsewhere.test"],
        b"Subject: to hold\n\nx\n",
    );
    assert!(out.stdout.is_empty());
    wait_until(Duration::from_secs(10), || {
        mailq(&inst).contains("not running")
    })
    .unwrap();
    let list: serde_json::Value =
        serde_json::from_str(&inst.ctl_ok(&["--json", "queue", "list"])).unwrap();
    let qid = list[0]["qid"].as_str().unwrap().to_string();
    assert_eq!(list[0]["recipients"][0]["address"], "x@elsewhere.test");
    let plain = inst.ctl_ok(&["queue", "list"]);
    assert!(
        plain.contains(&qid) && plain.contains("deferred"),
        "{plain}"
    );
    inst.ctl_ok(&["queue", "hold", &qid]);
    assert!(
        mailq(&inst).contains(&format!("{qid}!")),
        "{}",
        mailq(&inst)
    );
    assert!(inst.ctl_ok(&["queue", "list"]).contains("held"));
    let show = inst.ctl_ok(&["queue", "show", &qid]);
    assert!(
        show.contains("Subject: to hold") && show.contains("held: true"),
        "{show}"
    );
    inst.ctl_ok(&["queue", "release", &qid]);
    wait_until(Duration::from_secs(10), || !mailq(&inst).contains('!')).unwrap();
    inst.ctl_ok(&["queue", "requeue", &qid]);
    assert!(inst
        .ctl_ok(&["queue", "flush"])
        .contains(" to be tried now"));
    inst.ctl_ok(&["queue", "delete", &qid]);
    wait_queue_empty(&inst);
    // Deleted without a bounce to anyone.
    std::thread::sleep(Duration::from_millis(500));
    assert!(inbox(&inst, "alice").is_empty());
    // Unknown and malformed ids.
    assert_eq!(inst.ctl(&["queue", "hold", &qid]).status.code(), Some(67));
    assert_eq!(
        inst.ctl(&["queue", "show", "nonsense"]).status.code(),
        Some(64)
    );
    let log = inst.log("kmp-send");
    for want in [
        "placed on hold",
        "released from hold",
        "requeued",
        "deleted by the administrator",
    ] {
        assert!(log.contains(want), "no {want:?}:\n{log}");
    }
}

#[test]
fn kmpctl_queue_without_kmp_send_says_so() {
    let inst = Instance::new();
    let out = inst.ctl(&["queue", "list"]);
    assert_eq!(out.status.code(), Some(69));
    assert!(text(&out.stderr).contains("kmp-send is not running"));
    let q = inject_as(&inst, "mailq", &[], b"");
    assert_eq!(q.status.code(), Some(69));
    // The drop directory works without kmp-send: the message waits for it.
    let out = inject_as(
        &inst,
        "sendmail",
        &["bob@example.test"],
        b"Subject: early\n\nx\n",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let n = fs::read_dir(inst.path().join("queue/incoming/new"))
        .unwrap()
        .count();
    assert_eq!(n, 1);
}

#[test]
fn bad_input_is_delivered_faithfully() {
    let inst = start("");
    // The 50 MB message below is over the default size limit (25M).
    let conf = fs::read_to_string(inst.config()).unwrap();
    let conf = conf.replace("[smtpd]\n", "[smtpd]\nmax_message_size = \"64M\"\n");
    fs::write(inst.config(), conf).unwrap();
    let mut big_header = Vec::new();
    for i in 0..10_000 {
        big_header.extend_from_slice(format!("X-Line-{i}: v\n").as_bytes());
    }
    big_header.extend_from_slice(b"\nbody\n");
    let long = format!("Subject: long\n\n{}\n", "x".repeat(1000));
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("no separator", b"just body text\nno headers here".to_vec()),
        ("bare cr and nul", b"Subject: cr\n\na\rb\0c\n".to_vec()),
        ("long line", long.into_bytes()),
        (
            "non-ascii header",
            "Subject: Grüße 你好\n\nkörper\n".as_bytes().to_vec(),
        ),
        ("10000 header lines", big_header),
    ];
    for (what, msg) in &cases {
        let out = inject_as(&inst, "sendmail", &["-i", "carol@example.test"], msg);
        assert!(out.status.success(), "{what}: {}", text(&out.stderr));
    }
    let m = wait_inbox(&inst, "carol", cases.len());
    let all: Vec<String> = m.iter().map(|(_, b)| text(b)).collect();
    assert!(all
        .iter()
        .any(|t| t.ends_with("\n\njust body text\nno headers here\n")));
    assert!(m.iter().any(|(_, b)| b.ends_with(b"\n\na\rb\0c\n")));
    assert!(all.iter().any(|t| t.contains(&"x".repeat(1000))));
    assert!(all
        .iter()
        .any(|t| t.contains("Grüße 你好") && t.ends_with("körper\n")));
    assert!(all.iter().any(|t| t.contains("\nX-Line-0: v\n")
        && t.contains("\nX-Line-9999: v\n")
        && t.ends_with("\n\nbody\n")));
    // 50 MB.
    let mut huge = b"Subject: huge\n\n".to_vec();
    let line = [b'y'; 99];
    while huge.len() < 50 << 20 {
        huge.extend_from_slice(&line);
        huge.push(b'\n');
    }
    let out = inject_as(&inst, "sendmail", &["-i", "dave@example.test"], &huge);
    assert!(out.status.success());
    let m = wait_inbox(&inst, "dave", 1);
    assert!(m[0].1.len() > 50 << 20);
    assert!(m[0].1.ends_with(&huge[huge.len() - 200..]));
}

/// The crash test of issue 3: at least 2,000 messages injected while kmp-send
/// and kmp-local are killed with SIGKILL at random moments and restarted;
/// at the end every accepted message is in its mailbox exactly once.
#[test]
fn sigkill_at_random_moments_loses_and_duplicates_nothing() {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};
    const MESSAGES: usize = 2000;
    const INJECTORS: usize = 4;
    let users = ["alice", "bob", "carol", "dave"];
    let inst =
        start("[send]\nmin_backoff = \"1s\"\nmax_backoff = \"2s\"\nscan_interval = \"1s\"\n");
    let config = inst.config();
    let link = inst.path().join("sendmail");
    std::os::unix::fs::symlink(bin("kmp-inject"), &link).unwrap();
    let inst = Arc::new(Mutex::new(inst));
    let done = Arc::new(AtomicBool::new(false));
    let kills = Arc::new(AtomicUsize::new(0));
    let killer = {
        let (inst, done, kills) = (inst.clone(), done.clone(), kills.clone());
        std::thread::spawn(move || {
            let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
            let mut next = move || {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                seed >> 33
            };
            while !done.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(100 + next() % 400));
                let victim = if next() % 2 == 0 {
                    "kmp-send"
                } else {
                    "kmp-local"
                };
                let mut i = inst.lock().unwrap();
                i.kill(victim);
                kills.fetch_add(1, Ordering::SeqCst);
                drop(i);
                std::thread::sleep(Duration::from_millis(next() % 200));
                inst.lock().unwrap().spawn(victim, &[]);
            }
        })
    };
    let accepted = Arc::new(Mutex::new(Vec::new()));
    let injectors: Vec<_> = (0..INJECTORS)
        .map(|t| {
            let (config, link, accepted) = (config.clone(), link.clone(), accepted.clone());
            std::thread::spawn(move || {
                for i in (t..MESSAGES).step_by(INJECTORS) {
                    let to = format!("{}@example.test", users[i % users.len()]);
                    let mut child = Command::new(&link)
                        .arg("-C")
                        .arg(&config)
                        .args(["-f", "crash@example.test", &to])
                        .stdin(Stdio::piped())
                        .stdout(Stdio::null())
                        .stderr(Stdio::null())
                        .spawn()
                        .unwrap();
                    let mut stdin = child.stdin.take().unwrap();
                    let _ =
                        stdin.write_all(format!("Subject: crash-{i}\n\nmessage {i}\n").as_bytes());
                    drop(stdin);
                    if child.wait().unwrap().success() {
                        accepted.lock().unwrap().push(i);
                    }
                }
            })
        })
        .collect();
    for j in injectors {
        j.join().unwrap();
    }
    done.store(true, Ordering::SeqCst);
    killer.join().unwrap();
    let accepted = accepted.lock().unwrap().clone();
    // Make sure both daemons run at the end, then wait for the queue to drain.
    {
        let mut i = inst.lock().unwrap();
        i.kill("kmp-send");
        i.kill("kmp-local");
        i.spawn("kmp-local", &[]);
        i.wait_socket("local.sock");
        start_send(&mut i);
    }
    let inst = inst.lock().unwrap();
    let count = |inst: &Instance| -> usize { users.iter().map(|u| inbox(inst, u).len()).sum() };
    let _ = wait_until(Duration::from_secs(240), || count(&inst) >= accepted.len());
    let _ = wait_until(Duration::from_secs(30), || {
        mailq(&inst) == "Mail queue is empty\n"
    });
    let (seen, misplaced) = tally(&inst, &users, "Subject: crash-", MESSAGES, |_| {});
    let lost = accepted.iter().filter(|&&i| seen[i] == 0).count();
    let duplicated: usize = seen.iter().map(|&c| c.saturating_sub(1)).sum();
    let never_accepted_but_delivered = (0..MESSAGES)
        .filter(|i| seen[*i] > 0 && !accepted.contains(i))
        .count();
    println!(
        "crash test: {} accepted of {MESSAGES}, {} kills, lost {lost}, duplicated {duplicated}, misplaced {misplaced}, delivered without acceptance {never_accepted_but_delivered}",
        accepted.len(),
        kills.load(Ordering::SeqCst)
    );
    let log = inst.log("kmp-send");
    let suspicious: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("missing") || l.contains("corrupt") || l.contains("moved to"))
        .collect();
    assert!(suspicious.is_empty(), "{suspicious:?}");
    assert!(
        accepted.len() >= MESSAGES * 99 / 100,
        "only {} accepted",
        accepted.len()
    );
    assert!(kills.load(Ordering::SeqCst) >= 10);
    assert_eq!(
        (lost, duplicated, misplaced),
        (0, 0, 0),
        "queue:\n{}",
        mailq(&inst)
    );
    assert_eq!(mailq(&inst), "Mail queue is empty\n");
    assert_eq!(second_names(&inst, &users), Vec::<PathBuf>::new());
}

/// Issue 13: the envelope travels in the message file (one fsync for both)
/// until kmp-send has it in its index and cuts it off; a crash that undoes
/// the cut is repaired on start, and no envelope reaches a mailbox.
#[test]
fn an_envelope_trailer_brought_back_by_a_crash_is_cut_again() {
    let mut inst = start("[send]\nmin_backoff = \"1s\"\nmax_backoff = \"1s\"\n");
    inst.kill("kmp-send");
    inst.kill("kmp-local");
    sendmail(
        &inst,
        &[
            "-f",
            "alice@example.test",
            "bob@example.test",
            "carol@example.test",
        ],
        b"Subject: trailer\n\nbody\n",
    );
    let inc = inst.path().join("queue/incoming");
    let names: Vec<PathBuf> = fs::read_dir(inc.join("new"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(names.len(), 1);
    let env_files = fs::read_dir(inc.join("env"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(env_files, 0, "an envelope file was written");
    let committed = fs::read(&names[0]).unwrap();
    let t = text(&committed);
    assert!(t.contains("\n\nbody\n{"), "{t}");
    assert!(t.contains("carol@example.test") && t.ends_with('\n'), "{t}");
    let footer = t.lines().last().unwrap();
    assert!(footer.starts_with("kmp-envelope "), "{t}");
    // kmp-send takes it in (kmp-local is down: it stays queued) and cuts it.
    start_send(&mut inst);
    let mess = inst
        .path()
        .join("queue/mess")
        .join(names[0].file_name().unwrap());
    wait_until(Duration::from_secs(20), || {
        fs::read(&mess)
            .map(|b| b.len() < committed.len())
            .unwrap_or(false)
    })
    .unwrap_or_else(|_| panic!("never cut:\n{}", inst.log("kmp-send")));
    assert!(text(&fs::read(&mess).unwrap()).ends_with("\n\nbody\n"));
    // A crash loses the cut: the file has its trailer again.
    inst.kill("kmp-send");
    fs::write(&mess, &committed).unwrap();
    // On start kmp-send cuts it again, before any delivery.
    start_send(&mut inst);
    wait_until(Duration::from_secs(20), || {
        fs::read(&mess)
            .map(|b| b.len() < committed.len())
            .unwrap_or(false)
    })
    .unwrap_or_else(|_| panic!("not cut after the restart:\n{}", inst.log("kmp-send")));
    inst.spawn("kmp-local", &[]);
    inst.wait_socket("local.sock");
    for u in ["bob", "carol"] {
        let m = wait_inbox(&inst, u, 1);
        let t = text(&m[0].1);
        assert!(t.ends_with("\n\nbody\n"), "{t}");
        assert!(!t.contains("kmp-envelope"), "{t}");
    }
    assert!(!text(&wait_inbox(&inst, "bob", 1)[0].1).contains("carol"));
    wait_queue_empty(&inst);
}

/// The move from `incoming/new/` to `mess/` is a link, a sync of `mess/`
/// and an unlink: a crash between the link and the unlink leaves the
/// message under both names, and kmp-send then only removes the one in
/// `new/`; the message is delivered once.
#[test]
fn a_message_under_both_names_after_a_crash_is_delivered_once() {
    use std::os::unix::fs::MetadataExt;
    let mut inst = start("[send]\nmin_backoff = \"1s\"\nmax_backoff = \"1s\"\n");
    inst.kill("kmp-send");
    inst.kill("kmp-local");
    sendmail(
        &inst,
        &["-f", "alice@example.test", "bob@example.test"],
        b"Subject: both names\n\nbody\n",
    );
    let inc_new = inst.path().join("queue/incoming/new");
    let names: Vec<PathBuf> = fs::read_dir(&inc_new)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(names.len(), 1);
    let name = names[0].file_name().unwrap().to_owned();
    let mess = inst.path().join("queue/mess").join(&name);
    // kmp-send takes it in (kmp-local is down): one name, in mess/.
    start_send(&mut inst);
    wait_until(Duration::from_secs(20), || {
        mess.exists() && !names[0].exists()
    })
    .unwrap_or_else(|_| panic!("never moved:\n{}", inst.log("kmp-send")));
    assert_eq!(fs::metadata(&mess).unwrap().nlink(), 1);
    // A crash after the link, before the unlink: both names.
    inst.kill("kmp-send");
    fs::hard_link(&mess, &names[0]).unwrap();
    start_send(&mut inst);
    wait_until(Duration::from_secs(20), || !names[0].exists())
        .unwrap_or_else(|_| panic!("new/ name never removed:\n{}", inst.log("kmp-send")));
    assert!(mess.exists(), "the message left mess/ too");
    assert_eq!(fs::metadata(&mess).unwrap().nlink(), 1);
    inst.spawn("kmp-local", &[]);
    inst.wait_socket("local.sock");
    let m = wait_inbox(&inst, "bob", 1);
    assert!(text(&m[0].1).ends_with("\n\nbody\n"));
    wait_queue_empty(&inst);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(inbox(&inst, "bob").len(), 1, "delivered twice");
}

/// One SMTP session of the crash test: a plain client over loopback.
struct Smtp {
    r: std::io::BufReader<std::net::TcpStream>,
    w: std::net::TcpStream,
}

impl Smtp {
    fn connect(addr: &str) -> std::io::Result<Smtp> {
        let s = std::net::TcpStream::connect(addr)?;
        s.set_read_timeout(Some(Duration::from_secs(60)))?;
        let mut c = Smtp {
            r: std::io::BufReader::new(s.try_clone()?),
            w: s,
        };
        c.expect(220)?;
        c.cmd("EHLO crash.example.test", 250)?;
        Ok(c)
    }

    /// Reads one reply; an error unless its code is `want`.
    fn expect(&mut self, want: u32) -> std::io::Result<()> {
        use std::io::BufRead;
        loop {
            let mut line = String::new();
            if self.r.read_line(&mut line)? == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            if line.len() < 4 || line.as_bytes()[3] != b'-' {
                let code: u32 = line.get(..3).and_then(|c| c.parse().ok()).unwrap_or(0);
                return if code == want {
                    Ok(())
                } else {
                    Err(std::io::Error::other(line))
                };
            }
        }
    }

    fn cmd(&mut self, line: &str, want: u32) -> std::io::Result<()> {
        self.w.write_all(format!("{line}\r\n").as_bytes())?;
        self.expect(want)
    }

    /// One message; Ok only when the server said 250 after the data.
    fn send(&mut self, to: &str, body: &str) -> std::io::Result<()> {
        self.cmd("MAIL FROM:<crash@example.test>", 250)?;
        self.cmd(&format!("RCPT TO:<{to}>"), 250)?;
        self.cmd("DATA", 354)?;
        self.w.write_all(body.as_bytes())?;
        self.cmd(".", 250)
    }
}

/// Issue 13: the group commit of kmp-smtpd. 20 SMTP sessions send at once
/// (so their commits share directory fsyncs) while kmp-smtpd, kmp-send and
/// kmp-local (with several deliveries in flight per connection) are killed
/// with SIGKILL at random moments and restarted. Every message the server
/// said 250 to is in its mailbox exactly once; a message whose 250 never
/// came may be there (once) or not.
#[test]
fn sigkill_during_group_commits_loses_and_duplicates_nothing() {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};
    // At least MESSAGES, and more (up to MAX_MESSAGES) until the killer has
    // struck KILLS times: a fast machine sends 1,500 in a few seconds.
    const MESSAGES: usize = 1500;
    const MAX_MESSAGES: usize = 20000;
    const KILLS: usize = 10;
    const SENDERS: usize = 20;
    let users = ["alice", "bob", "carol", "dave"];
    let mut inst =
        start("[send]\nmin_backoff = \"1s\"\nmax_backoff = \"2s\"\nscan_interval = \"1s\"\n");
    common::set_config(&inst, "smtpd", "max_connections_per_ip = 1000");
    inst.spawn("kmp-smtpd", &[]);
    inst.wait_port(25);
    let addr = inst.addr(25);
    let inst = Arc::new(Mutex::new(inst));
    let done = Arc::new(AtomicBool::new(false));
    let kills = Arc::new(Mutex::new([0usize; 3]));
    const VICTIMS: [&str; 3] = ["kmp-smtpd", "kmp-send", "kmp-local"];
    let killer = {
        let (inst, done, kills) = (inst.clone(), done.clone(), kills.clone());
        std::thread::spawn(move || {
            let mut seed: u64 = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1;
            let mut next = move || {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                seed >> 33
            };
            while !done.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(150 + next() % 450));
                let v = (next() % 3) as usize;
                inst.lock().unwrap().kill(VICTIMS[v]);
                kills.lock().unwrap()[v] += 1;
                std::thread::sleep(Duration::from_millis(next() % 200));
                inst.lock().unwrap().spawn(VICTIMS[v], &[]);
            }
        })
    };
    let accepted = Arc::new(Mutex::new(Vec::new()));
    let unanswered = Arc::new(AtomicUsize::new(0));
    let numbers = Arc::new(AtomicUsize::new(0));
    let senders: Vec<_> = (0..SENDERS)
        .map(|_| {
            let (addr, accepted, unanswered) = (addr.clone(), accepted.clone(), unanswered.clone());
            let (numbers, kills) = (numbers.clone(), kills.clone());
            std::thread::spawn(move || {
                let mut session: Option<Smtp> = None;
                loop {
                    let struck: usize = kills.lock().unwrap().iter().sum();
                    if numbers.load(Ordering::SeqCst) >= MESSAGES && struck >= KILLS {
                        break;
                    }
                    let i = numbers.fetch_add(1, Ordering::SeqCst);
                    if i >= MAX_MESSAGES {
                        break;
                    }
                    let to = format!("{}@example.test", users[i % users.len()]);
                    let body = format!("Subject: smtp-crash-{i}\r\n\r\nmessage {i}\r\n");
                    // Connect (kmp-smtpd may be down for a moment), bounded.
                    for _ in 0..600 {
                        if session.is_some() {
                            break;
                        }
                        session = Smtp::connect(&addr).ok();
                        if session.is_none() {
                            std::thread::sleep(Duration::from_millis(50));
                        }
                    }
                    let Some(s) = session.as_mut() else {
                        unanswered.fetch_add(1, Ordering::SeqCst);
                        continue;
                    };
                    match s.send(&to, &body) {
                        Ok(()) => accepted.lock().unwrap().push(i),
                        Err(_) => {
                            // No 250: the message may or may not be queued.
                            // It is not sent again, so a second copy is a bug.
                            unanswered.fetch_add(1, Ordering::SeqCst);
                            session = None;
                        }
                    }
                }
                if let Some(mut s) = session {
                    let _ = s.cmd("QUIT", 221);
                }
            })
        })
        .collect();
    for s in senders {
        s.join().unwrap();
    }
    done.store(true, Ordering::SeqCst);
    killer.join().unwrap();
    let sent = numbers.load(Ordering::SeqCst).min(MAX_MESSAGES);
    let accepted = accepted.lock().unwrap().clone();
    {
        let mut i = inst.lock().unwrap();
        for v in VICTIMS {
            i.kill(v);
        }
        i.spawn("kmp-local", &[]);
        i.wait_socket("local.sock");
        start_send(&mut i);
    }
    let inst = inst.lock().unwrap();
    let count = |inst: &Instance| -> usize { users.iter().map(|u| inbox(inst, u).len()).sum() };
    let _ = wait_until(Duration::from_secs(240), || count(&inst) >= accepted.len());
    let _ = wait_until(Duration::from_secs(60), || {
        mailq(&inst) == "Mail queue is empty\n"
    });
    let (seen, misplaced) = tally(&inst, &users, "Subject: smtp-crash-", sent, |t| {
        assert!(
            !t.contains("kmp-envelope"),
            "an envelope trailer was delivered:\n{t}"
        )
    });
    let lost = accepted.iter().filter(|&&i| seen[i] == 0).count();
    let duplicated: usize = seen.iter().map(|&c| c.saturating_sub(1)).sum();
    let unacknowledged_delivered = (0..sent)
        .filter(|i| seen[*i] > 0 && !accepted.contains(i))
        .count();
    let k = *kills.lock().unwrap();
    println!(
        "smtp crash test: {} accepted of {sent} ({} unanswered, {unacknowledged_delivered} of them delivered), \
         kills smtpd/send/local {}/{}/{}, lost {lost}, duplicated {duplicated}, misplaced {misplaced}",
        accepted.len(),
        unanswered.load(Ordering::SeqCst),
        k[0],
        k[1],
        k[2]
    );
    assert!(
        accepted.len() >= sent / 2,
        "only {} accepted",
        accepted.len()
    );
    assert!(k.iter().sum::<usize>() >= KILLS, "{k:?}");
    assert_eq!(
        (lost, duplicated, misplaced),
        (0, 0, 0),
        "queue:\n{}",
        mailq(&inst)
    );
    assert_eq!(mailq(&inst), "Mail queue is empty\n");
    assert_eq!(second_names(&inst, &users), Vec::<PathBuf>::new());
}

#[test]
fn alias_targets_elsewhere_are_queued_as_new_recipients() {
    let inst = start("[send]\nmin_backoff = \"1h\"\n");
    inst.ctl_ok(&[
        "alias",
        "add",
        "team@example.test",
        "bob@example.test",
        "far@elsewhere.test",
    ]);
    sendmail(
        &inst,
        &[
            "-f",
            "alice@example.test",
            "-N",
            "success,failure",
            "team@example.test",
        ],
        b"Subject: to the team\n\nx\n",
    );
    wait_inbox(&inst, "bob", 1);
    // The remote target waits in the queue for kmp-remote, under the same message.
    wait_until(Duration::from_secs(10), || {
        mailq(&inst).contains("far@elsewhere.test")
    })
    .unwrap_or_else(|_| panic!("{}\n{}", mailq(&inst), inst.log("kmp-send")));
    let list: serde_json::Value =
        serde_json::from_str(&inst.ctl_ok(&["--json", "queue", "list"])).unwrap();
    let entry = list
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["sender"] == "alice@example.test")
        .unwrap();
    let qid = entry["qid"].as_str().unwrap();
    let show: serde_json::Value =
        serde_json::from_str(&inst.ctl_ok(&["--json", "queue", "show", qid])).unwrap();
    let rcpts = show["record"]["rcpts"].as_array().unwrap();
    let far = rcpts
        .iter()
        .find(|r| r["address"] == "far@elsewhere.test")
        .unwrap();
    assert_eq!(far["orcpt"], "rfc822;team@example.test");
    assert_eq!(far["notify"]["success"], true);
    assert_eq!(far["parent"], 0);
    let log = inst.log("kmp-send");
    assert!(
        log.contains("to=<far@elsewhere.test>, orig_to=<team@example.test>, status=expanded"),
        "{log}"
    );
}

#[test]
fn notify_success_gets_a_delivered_report() {
    let inst = start("");
    sendmail(
        &inst,
        &[
            "-f",
            "alice@example.test",
            "-N",
            "success",
            "bob@example.test",
        ],
        b"Subject: tell me\n\nx\n",
    );
    wait_inbox(&inst, "bob", 1);
    let m = wait_inbox(&inst, "alice", 1);
    let p = parse_dsn(&inst, &m[0].0);
    assert!(
        p.contains("rcpt rfc822; bob@example.test | delivered | 2.0.0 |"),
        "{p}"
    );
    assert!(p.contains("original-headers True"), "{p}");
}

#[test]
fn kmp_authd_down_defers_and_never_bounces() {
    let mut inst =
        start("[send]\nmin_backoff = \"1s\"\nmax_backoff = \"1s\"\nroute_cache_time = \"0s\"\n");
    inst.kill("kmp-authd");
    sendmail(
        &inst,
        &["-f", "alice@example.test", "bob@example.test"],
        b"Subject: later\n\nx\n",
    );
    wait_until(Duration::from_secs(10), || {
        inst.log("kmp-send")
            .contains("status=deferred (cannot route now")
    })
    .unwrap_or_else(|_| panic!("{}", inst.log("kmp-send")));
    assert!(inbox(&inst, "bob").is_empty());
    inst.spawn("kmp-authd", &[]);
    wait_inbox(&inst, "bob", 1);
    wait_queue_empty(&inst);
    assert!(inbox(&inst, "alice").is_empty(), "no bounce");
}

#[test]
fn queued_remote_mail_leaves_once_kmp_remote_runs() {
    let port = inst_port_free();
    let mut inst = start(&format!(
        "[send]\nmin_backoff = \"1h\"\n[remote]\ntls_level = \"none\"\n[remote.routes]\n\"elsewhere.test\" = [\"127.0.0.1:{port}\"]\n"
    ));
    sendmail(
        &inst,
        &[
            "-f",
            "alice@example.test",
            "far@elsewhere.test",
            "bob@example.test",
        ],
        b"Subject: out\n\n.leading dot\nbody\n",
    );
    wait_inbox(&inst, "bob", 1);
    wait_until(Duration::from_secs(10), || {
        mailq(&inst).contains("far@elsewhere.test")
    })
    .unwrap();
    // Postfix's smtp-sink as the next hop, then kmp-remote, then a flush.
    let dir = inst.path().join("sink");
    fs::create_dir_all(&dir).unwrap();
    let mut args: Vec<String> = Vec::new();
    if nix::unistd::geteuid().is_root() {
        args.extend(["-u".into(), "root".into()]);
    }
    args.extend(["-d".into(), format!("{}/%H%M%S.", dir.display())]);
    args.extend([format!("127.0.0.1:{port}"), "10".into()]);
    let mut sink = common::tool("/usr/sbin/smtp-sink")
        .args(&args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("smtp-sink runs (apt-get install postfix)");
    wait_until(Duration::from_secs(10), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    })
    .unwrap();
    inst.spawn("kmp-remote", &[]);
    inst.wait_socket("remote.sock");
    inst.ctl_ok(&["queue", "flush"]);
    let got = wait_until(Duration::from_secs(20), || {
        fs::read_dir(&dir).unwrap().count() == 1
    });
    // smtp-sink writes the file as the message comes, before its 250: the
    // sink stays up until the queue has heard the 250 and let the message go.
    let empty = got.is_ok()
        && wait_until(Duration::from_secs(30), || {
            mailq(&inst) == "Mail queue is empty\n"
        })
        .is_ok();
    let _ = sink.kill();
    let _ = sink.wait();
    got.unwrap_or_else(|_| panic!("{}\n{}", inst.log("kmp-send"), inst.log("kmp-remote")));
    assert!(
        empty,
        "queue not empty:\n{}\n{}\n{}",
        mailq(&inst),
        inst.log("kmp-send"),
        inst.log("kmp-remote")
    );
    let f = fs::read_dir(&dir).unwrap().next().unwrap().unwrap().path();
    let t = text(&fs::read(f).unwrap());
    assert!(
        t.contains("Subject: out") && t.contains("\n.leading dot\n"),
        "{t}"
    );
    let log = inst.log("kmp-remote");
    let line = log
        .lines()
        .find(|l| l.contains("to=<far@elsewhere.test>") && l.contains("status=sent"))
        .unwrap();
    assert!(line.contains("relay=") && line.contains("dsn=2."), "{line}");
    assert!(inbox(&inst, "alice").is_empty(), "no report was asked for");
}

/// A free port on 127.0.0.1 for a peer.
fn inst_port_free() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Issue 11: one message whose recipients reach the same mailbox several
/// ways (the user, an alias of the user, a catch-all; a forward that keeps
/// a copy) is put into that Maildir once, and every envelope recipient
/// still gets its own "sent" result in the log and the queue.
#[test]
fn a_mailbox_reached_several_ways_gets_one_copy() {
    let mut inst = start("[send]\nmin_backoff = \"1h\"\n");
    inst.ctl_ok(&["alias", "add", "bobby@example.test", "bob@example.test"]);
    inst.ctl_ok(&["domain", "add", "catchall.test"]);
    inst.ctl_ok(&["alias", "add", "@catchall.test", "bob@example.test"]);
    inst.ctl_ok(&[
        "user",
        "forward",
        "carol@example.test",
        "bob@example.test",
        "far@remote.test",
        "--keep-copy",
    ]);
    let pid = inst.path().join("run/kmp-smtpd.pid");
    inst.spawn("kmp-smtpd", &[]);
    wait_until(Duration::from_secs(20), || pid.exists())
        .unwrap_or_else(|_| panic!("kmp-smtpd never got ready:\n{}", inst.log("kmp-smtpd")));
    let script = r#"
import smtplib, sys
s = smtplib.SMTP('127.0.0.1', int(sys.argv[1]), timeout=30)
refused = s.sendmail('sender@remote.test', sys.argv[3].split(','),
    b'From: sender@remote.test\r\nTo: bob@example.test\r\nSubject: ' + sys.argv[2].encode() + b'\r\n\r\nbody\r\n')
assert not refused, refused
s.quit()
print('OK')
"#;
    let port = (inst.base + 25).to_string();
    let send = |subject: &str, rcpts: &[&str]| {
        let out = common::python(script, &[&port, subject, &rcpts.join(",")]);
        assert!(
            out.status.success(),
            "{}{}\n{}",
            text(&out.stdout),
            text(&out.stderr),
            inst.log("kmp-smtpd")
        );
    };
    let sent = |rcpt: &str| {
        let log = inst.log("kmp-local");
        log.lines().filter(|l| l.contains("status=sent")).any(|l| {
            l.contains(&format!("orig_to=<{rcpt}>")) || l.contains(&format!("to=<{rcpt}>"))
        })
    };
    let rcpts = [
        "bob@example.test",
        "bobby@example.test",
        "whoever@catchall.test",
    ];
    send("three ways", &rcpts);
    wait_until(Duration::from_secs(30), || rcpts.iter().all(|r| sent(r)))
        .unwrap_or_else(|_| panic!("{}\n{}", inst.log("kmp-local"), inst.log("kmp-send")));
    wait_queue_empty(&inst);
    let bob = inbox(&inst, "bob");
    assert_eq!(bob.len(), 1, "{}", inst.log("kmp-local"));
    assert!(text(&bob[0].1).contains("Subject: three ways"));

    // A forward that keeps a copy and leads to bob too: one copy each.
    send("forward", &["carol@example.test", "bob@example.test"]);
    let carol = wait_inbox(&inst, "carol", 1);
    wait_until(Duration::from_secs(30), || {
        mailq(&inst).contains("far@remote.test")
    })
    .unwrap_or_else(|_| panic!("{}\n{}", mailq(&inst), inst.log("kmp-local")));
    let bob = inbox(&inst, "bob");
    let forwarded: Vec<_> = bob
        .iter()
        .filter(|(_, m)| text(m).contains("Subject: forward"))
        .collect();
    assert_eq!(forwarded.len(), 1, "{}", inst.log("kmp-local"));
    assert_eq!(carol.len(), 1);
    let local = inst.log("kmp-local");
    assert_eq!(
        local
            .lines()
            .filter(|l| l.contains("to=<bob@example.test>") && l.contains("status=sent"))
            .count(),
        5,
        "one line per envelope recipient that reached bob:\n{local}"
    );
}
