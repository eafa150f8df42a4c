//! Digests end to end: the whole system under `kmpctl start`, posts sent
//! with Python's smtplib, the local digest member's copies read from its
//! Maildir, the remote one's caught by Postfix's smtp-sink (`far.test`).
//!
//! - posts are kept for the digest members, who get no single posts; when
//!   the list's count is reached kmp-local sends the digest (MIME), to a
//!   local and a remote member;
//! - `kmpctl list digest`, killed with SIGKILL after it prepared an issue
//!   and again after it handed an issue to the queue, then run again:
//!   each issue reaches each member once, and no post is in two issues.
mod common;

use common::{combined_log as log, smtp_send as send};

use common::sink::Sink;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::sieve::Stop;
use common::{missing_tool, wait_until, Instance, TOOLS};

const LIST: &str = "dev@example.test";

fn post(inst: &Instance, subject: &str) {
    send(
        inst,
        "s@example.test",
        LIST,
        &format!(
            "From: s@example.test\r\nTo: {LIST}\r\nSubject: {subject}\r\n\r\nabout {subject}\r\n"
        ),
    );
}

/// The texts of the messages in u@example.test's Maildir.
fn inbox(inst: &Instance) -> Vec<String> {
    let dir = inst.path().join("mail/example.test/u");
    let mut out = Vec::new();
    for sub in ["new", "cur"] {
        for e in std::fs::read_dir(dir.join(sub))
            .into_iter()
            .flatten()
            .flatten()
        {
            out.push(String::from_utf8_lossy(&std::fs::read(e.path()).unwrap()).into_owned());
        }
    }
    out
}

fn count(msgs: &[String], needle: &str) -> usize {
    msgs.iter().filter(|m| m.contains(needle)).count()
}

/// The posts waiting for the next digest.
fn waiting(state: &Path) -> usize {
    std::fs::read_dir(state.join("digest"))
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_str()
                .is_some_and(|n| n.parse::<u64>().is_ok())
        })
        .count()
}

/// `kmpctl list digest LIST` stopped at `point` and killed with SIGKILL there.
fn killed_at(inst: &Instance, point: &str) {
    let err: PathBuf = inst.path().join(format!("digest-{point}.err"));
    let mut child = Command::new(common::bin("kmpctl"))
        .arg("--config")
        .arg(inst.config())
        .args(["list", "digest", LIST])
        .env("KMP_TEST_DIGEST_PAUSE", point)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .unwrap();
    wait_until(Duration::from_secs(60), || {
        std::fs::read_to_string(&err).is_ok_and(|t| t.contains("pausing at"))
    })
    .unwrap_or_else(|_| {
        let _ = child.kill();
        panic!(
            "kmpctl list digest did not reach {point}: {}",
            std::fs::read_to_string(&err).unwrap_or_default()
        )
    });
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn digests_go_out_by_count_and_once_when_the_sender_is_killed() {
    if let Some(why) = missing_tool("/usr/sbin/smtp-sink", TOOLS) {
        eprintln!("SKIPPED: {why}");
        return;
    }
    let inst = Instance::new();
    let far_port = inst.base + 26;
    let far = Sink::start(&inst.path().join("sink"), far_port, &[]);
    inst.append_config(&format!(
        "[remote.routes]\n\"far.test\" = [\"127.0.0.1:{far_port}\"]\n"
    ));
    inst.ctl_ok(&["domain", "add", "example.test"]);
    inst.ctl_ok(&["user", "add", "s@example.test"]);
    inst.ctl_ok(&["user", "add", "u@example.test"]);
    inst.ctl_ok(&[
        "list",
        "add",
        LIST,
        "--owner",
        "s@example.test",
        "--policy",
        "open",
    ]);
    inst.ctl_ok(&["list", "set", LIST, "digest=yes", "digest_max_messages=2"]);
    inst.ctl_ok(&[
        "list",
        "subscribe",
        LIST,
        "--digest",
        "u@example.test",
        "bob@far.test",
    ]);
    inst.ctl_ok(&["list", "subscribe", LIST, "carol@far.test"]);
    let state = inst.path().join("mail/example.test/.lists/dev");
    inst.ctl_ok(&["start"]);
    let _stop = Stop(&inst);

    // Two posts: carol gets each; the digest members get one digest of both.
    post(&inst, "first post");
    post(&inst, "second post");
    wait_until(Duration::from_secs(90), || {
        count(&inbox(&inst), "dev Digest V1 #1") == 1
            && count(&far.messages(), "Subject: dev Digest V1 #1") == 1
    })
    .unwrap_or_else(|_| panic!("no digest #1\n{}", log(&inst)));
    let box_u = inbox(&inst);
    assert_eq!(box_u.len(), 1, "the digest only, no single posts");
    let d1 = &box_u[0];
    assert!(d1.contains("multipart/digest"), "{d1}");
    // Both posts, numbered in the order kmp-local took them in (the queue
    // may hand two posts sent a moment apart over in either order).
    assert!(
        (d1.contains("1. first post") && d1.contains("2. second post"))
            || (d1.contains("1. second post") && d1.contains("2. first post")),
        "{d1}"
    );
    let sink = far.messages();
    let bob = sink
        .iter()
        .find(|m| m.contains("Subject: dev Digest V1 #1"))
        .unwrap();
    assert!(bob.contains("X-Rcpt-Args: <bob@far.test>"), "{bob}");
    assert!(
        bob.contains("X-Mail-Args: <dev-bounce-bob=far.test@example.test>"),
        "{bob}"
    );
    assert_eq!(count(&sink, "X-Rcpt-Args: <carol@far.test>"), 2);
    assert_eq!(count(&sink, "X-Rcpt-Args: <bob@far.test>"), 1);
    assert!(log(&inst).contains("digest #1 sent to 1 local and 1 remote members"));

    // No count limit now (the interval is a day): the posts wait for
    // kmpctl. It is killed after preparing issue 2; run again, it sends it.
    inst.ctl_ok(&["list", "set", LIST, "digest_max_messages=0"]);
    post(&inst, "third post");
    post(&inst, "fourth post");
    wait_until(Duration::from_secs(60), || waiting(&state) == 2)
        .unwrap_or_else(|_| panic!("posts not kept for the digest\n{}", log(&inst)));
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(count(&inbox(&inst), "dev Digest V1 #2"), 0, "not due");
    killed_at(&inst, "prepared");
    assert!(state.join("digest/issue-2.eml").exists());
    let out = inst.ctl_ok(&["list", "digest", LIST]);
    assert!(out.contains("digest #2 queued (2 post(s))"), "{out}");

    wait_until(Duration::from_secs(90), || {
        count(&inbox(&inst), "dev Digest V1 #2") == 1 && !state.join("digest/issue-2.eml").exists()
    })
    .unwrap_or_else(|_| panic!("digest #2 not delivered\n{}", log(&inst)));

    // Killed after handing issue 3 to the queue; run again: still once.
    post(&inst, "fifth post");
    wait_until(Duration::from_secs(60), || waiting(&state) == 1)
        .unwrap_or_else(|_| panic!("post not kept for the digest\n{}", log(&inst)));
    killed_at(&inst, "queued");
    inst.ctl_ok(&["list", "digest", "--due", LIST]);
    inst.ctl_ok(&["list", "digest", LIST]);

    wait_until(Duration::from_secs(90), || {
        let u = inbox(&inst);
        let f = far.messages();
        count(&u, "dev Digest V1 #2") == 1
            && count(&u, "dev Digest V1 #3") == 1
            && count(&f, "Subject: dev Digest V1 #2") == 1
            && count(&f, "Subject: dev Digest V1 #3") == 1
    })
    .unwrap_or_else(|_| panic!("digests #2 and #3 not delivered\n{}", log(&inst)));
    // Time for a second copy to show, if one were coming.
    std::thread::sleep(Duration::from_secs(5));
    let u = inbox(&inst);
    let f = far.messages();
    assert_eq!(u.len(), 3, "three digests, each once");
    for n in 2..=3 {
        assert_eq!(count(&u, &format!("dev Digest V1 #{n}")), 1);
        assert_eq!(count(&f, &format!("Subject: dev Digest V1 #{n}")), 1);
    }
    let d2 = u.iter().find(|m| m.contains("dev Digest V1 #2")).unwrap();
    assert!(
        d2.contains("third post") && d2.contains("fourth post"),
        "{d2}"
    );
    let d3 = u.iter().find(|m| m.contains("dev Digest V1 #3")).unwrap();
    assert!(
        d3.contains("fifth post") && !d3.contains("third post"),
        "{d3}"
    );
    assert_eq!(waiting(&state), 0);
    assert!(!state.join("digest/issue-3.eml").exists());
    assert!(inst
        .ctl_ok(&["list", "digest", LIST])
        .contains("no digest due"));
}
