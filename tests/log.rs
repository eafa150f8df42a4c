//! The log an instance writes (`DIR/log/kmpromail.log`): syslog's line
//! format, every server's session events, and whole lines when several
//! processes write at once.
mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::{is_syslog_line, python, wait_until, Instance};

const USER: &str = "u@example.test";
const PASS: &str = "secret-pass";

/// Stops the instance's supervisor even when a test fails half-way.
struct Stop<'a>(&'a Instance);

impl Drop for Stop<'_> {
    fn drop(&mut self) {
        let _ = self.0.ctl(&["stop"]);
    }
}

fn log_text(inst: &Instance) -> String {
    std::fs::read_to_string(inst.path().join("log/kmpromail.log")).unwrap_or_default()
}

/// The file had `kmp-smtpd: ...` lines with no time or pid, a Debug name
/// (`service=Mx`), and kmp-imapd logged logins only.
#[test]
fn instance_log_has_syslog_lines_and_session_events_of_every_server() {
    let inst = Instance::new();
    inst.ctl_ok(&["domain", "add", "example.test"]);
    let out = inst.ctl_stdin(
        &["user", "add", USER, "--password-stdin"],
        Some(format!("{PASS}\n").as_bytes()),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    inst.ctl_ok(&["start"]);
    let _stop = Stop(&inst);

    let script = r#"
import imaplib, poplib, smtplib, ssl, sys
host, base, user, pw = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE

s = smtplib.SMTP(host, base + 587, timeout=20)
s.ehlo("client.example.test")
s.starttls(context=ctx)
s.ehlo("client.example.test")
s.login(user, pw)
s.sendmail(user, [user], "From: " + user + "\r\nTo: " + user + "\r\nSubject: log\r\n\r\nhello\r\n")
s.quit()

p = poplib.POP3(host, base + 110, timeout=20)
p.stls(context=ctx)
try:
    p.user(user); p.pass_("wrong-password")
    raise SystemExit("POP3 accepted a wrong password")
except poplib.error_proto:
    pass
p.quit()
p = poplib.POP3(host, base + 110, timeout=20)
p.stls(context=ctx)
p.user(user); p.pass_(pw)
p.stat()
p.quit()

m = imaplib.IMAP4(host, base + 143, timeout=20)
m.starttls(ssl_context=ctx)
try:
    m.login(user, "wrong-password")
    raise SystemExit("IMAP accepted a wrong password")
except imaplib.IMAP4.error:
    pass
m.logout()
m = imaplib.IMAP4(host, base + 143, timeout=20)
m.starttls(ssl_context=ctx)
m.login(user, pw)
m.select("INBOX")
m.noop()
m.logout()
print("ok")
"#;
    let out = python(script, &["127.0.0.1", &inst.base.to_string(), USER, PASS]);
    assert!(
        out.status.success(),
        "clients: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    // Every event, under the program that saw it.
    let want: &[(&str, &[&str])] = &[
        (
            "kmp-smtpd[",
            &[
                "smtp connected address=127.0.0.1",
                "service=submission",
                "smtp starttls address=127.0.0.1",
                "login: client=",
                "smtp disconnected address=127.0.0.1 messages=1",
            ],
        ),
        (
            "kmp-pop3d[",
            &[
                "pop3 connected address=127.0.0.1",
                "pop3 starttls address=127.0.0.1",
                "pop3 login failed user=u@example.test address=127.0.0.1 reason=bad_credentials",
                "pop3 login user=u@example.test",
                "pop3 logout user=u@example.test",
                "pop3 disconnected address=127.0.0.1",
            ],
        ),
        (
            "kmp-imapd[",
            &[
                "imap connected address=127.0.0.1",
                "imap starttls address=127.0.0.1",
                "imap login failed user=u@example.test address=127.0.0.1 reason=authenticationfailed",
                "imap login user=u@example.test address=127.0.0.1",
                "imap disconnected address=127.0.0.1 user=u@example.test commands=",
                "imap disconnected address=127.0.0.1 user= commands=",
            ],
        ),
    ];
    let complete = |log: &str| {
        want.iter().all(|(prog, events)| {
            events
                .iter()
                .all(|e| log.lines().any(|l| l.contains(prog) && l.contains(e)))
        })
    };
    let _ = wait_until(Duration::from_secs(10), || complete(&log_text(&inst)));
    inst.ctl_ok(&["stop"]);
    let log = log_text(&inst);
    let mut missing = Vec::new();
    for (prog, events) in want {
        for e in *events {
            if !log.lines().any(|l| l.contains(prog) && l.contains(e)) {
                missing.push(format!("{prog}] {e}"));
            }
        }
    }
    assert!(missing.is_empty(), "missing events {missing:?} in:\n{log}");
    let bad: Vec<&str> = log.lines().filter(|l| !is_syslog_line(l)).collect();
    assert!(bad.is_empty(), "not syslog lines: {bad:#?}");
    assert!(
        log.contains("kmpromail["),
        "the supervisor's own lines: {log}"
    );
    // No Rust Debug output (`service=Mx`, `reason=BadCredentials`, a list of
    // addresses as `[127.0.0.1:143]`).
    for word in [
        "=Mx",
        "=Submission",
        "=BadCredentials",
        "=InUse",
        "Some(",
        "None",
        "[127.0.0.1:",
    ] {
        assert!(!log.contains(word), "{word} in the log:\n{log}");
    }
}

/// 280 of 106,181 lines ran together (`kmp-sendkmp-smtpd: ...`): each line
/// took several `write(2)` calls on the shared descriptor.
#[test]
fn lines_of_processes_sharing_a_log_file_do_not_run_together() {
    const WRITERS: usize = 4;
    const LINES: usize = 4000;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shared.log");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .unwrap();
    let exe = std::env::current_exe().unwrap();
    let children: Vec<_> = (0..WRITERS)
        .map(|n| {
            Command::new(&exe)
                .args(["--exact", "log_writer_child", "--ignored", "--nocapture"])
                .env("KMP_LOG_WRITER", n.to_string())
                .env("KMP_LOG_LINES", LINES.to_string())
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(file.try_clone().unwrap())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let bad: Vec<&&str> = lines
        .iter()
        .filter(|l| !is_syslog_line(l) || !l.ends_with(" end") || l.matches("writer=").count() != 1)
        .take(5)
        .collect();
    assert!(bad.is_empty(), "malformed lines (first 5): {bad:#?}");
    assert_eq!(lines.len(), WRITERS * LINES, "lines lost or split");
}

/// The child side of the test above: logs many lines as a daemon would
/// without a syslog socket. Ignored when run on its own.
#[test]
#[ignore = "run as a child process by lines_of_processes_sharing_a_log_file_do_not_run_together"]
fn log_writer_child() {
    let Some(n) = std::env::var("KMP_LOG_WRITER")
        .ok()
        .and_then(|n| n.parse::<usize>().ok())
    else {
        return;
    };
    let lines: usize = std::env::var("KMP_LOG_LINES").unwrap().parse().unwrap();
    kmpromail::log::init_syslog(&format!("kmp-writer{n}"), "");
    let pad = "x".repeat(100 + 37 * n);
    for i in 0..lines {
        kmpromail::info!("Q{i:06}: writer={n} line={i} pad={pad} end");
    }
}
