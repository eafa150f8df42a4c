//! kmpctl as an administrator lives with it: deleting and re-adding users,
//! references left behind, postmaster, usage errors, a broken configuration
//! on a running system, passwords typed on a terminal, and the words kmpctl
//! prints. Regression tests for the kmpctl part of issue 11.
mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{wait_until, Instance};

const PW: &str = "correct horse";

fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Stops the instance's supervisor even when a test fails half-way.
struct Stop<'a>(&'a Instance);

impl Drop for Stop<'_> {
    fn drop(&mut self) {
        let _ = self.0.ctl(&["stop"]);
    }
}

/// `kmpctl init` again over the harness's instance, as `make demo` runs it.
fn reinit(inst: &Instance, extra: &[&str]) {
    let out = Command::new(common::bin("kmpctl"))
        .arg("init")
        .arg(inst.path())
        .args([
            "--force",
            "--port-base",
            &inst.base.to_string(),
            "--hostname",
            "mail.example.test",
        ])
        .args(extra)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
}

fn add_user(inst: &Instance, addr: &str, extra: &[&str]) -> Output {
    let mut args = vec!["user", "add", addr, "--password-stdin"];
    args.extend_from_slice(extra);
    inst.ctl_stdin(&args, Some(format!("{PW}\n").as_bytes()))
}

/// POP3 STAT of a user: the number of messages, or the server's refusal.
fn pop3_stat(inst: &Instance, user: &str) -> Result<u64, String> {
    let s = TcpStream::connect(inst.addr(110)).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut r = BufReader::new(s);
    let mut line = String::new();
    let mut cmd = |r: &mut BufReader<TcpStream>, c: &str| -> String {
        if !c.is_empty() {
            r.get_mut()
                .write_all(format!("{c}\r\n").as_bytes())
                .unwrap();
        }
        line.clear();
        r.read_line(&mut line).unwrap();
        line.clone()
    };
    let greeting = cmd(&mut r, "");
    assert!(greeting.starts_with("+OK"), "{greeting}");
    cmd(&mut r, &format!("USER {user}"));
    let pass = cmd(&mut r, &format!("PASS {PW}"));
    if !pass.starts_with("+OK") {
        return Err(pass);
    }
    let stat = cmd(&mut r, "STAT");
    cmd(&mut r, "QUIT");
    stat.split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .ok_or(stat)
}

/// Sends one message over SMTP with Python's smtplib.
fn smtp_send(inst: &Instance, to: &str, subject: &str) {
    let out = common::python(
        "import smtplib, sys\n\
         s = smtplib.SMTP('127.0.0.1', int(sys.argv[1]), timeout=10)\n\
         s.sendmail('someone@remote.test', [sys.argv[2]], 'From: someone@remote.test\\r\\nSubject: ' + sys.argv[3] + '\\r\\n\\r\\nhello\\r\\n')\n\
         s.quit()\n",
        &[&(inst.base + 25).to_string(), to, subject],
    );
    assert!(out.status.success(), "smtplib: {}", stderr(&out));
}

fn wait_stat(inst: &Instance, user: &str, n: u64) {
    wait_until(Duration::from_secs(20), || pop3_stat(inst, user) == Ok(n))
        .unwrap_or_else(|_| panic!("{user} never had {n} messages: {:?}", pop3_stat(inst, user)));
}

/// The demo's steps, then the bugs a first trial found on it: a re-added
/// user saw the old user's mail; postmaster@ reached nobody; a typo in the
/// configuration locked the administrator out of status, queue list and
/// stop; status showed a stopped daemon's listeners as served.
#[test]
fn readded_user_mail_postmaster_and_a_broken_config_on_a_running_system() {
    let inst = Instance::new();
    reinit(&inst, &["--postmaster", "postmaster@example.test"]);
    let added = inst.ctl_ok(&[
        "domain",
        "add",
        "example.test",
        "--postmaster",
        "demo@example.test",
    ]);
    assert!(
        added.contains("alias postmaster@example.test -> demo@example.test")
            && added.contains("alias abuse@example.test -> demo@example.test"),
        "{added}"
    );
    assert_eq!(code(&add_user(&inst, "demo@example.test", &[])), 0);
    let check = inst.ctl_ok(&["check"]);
    assert!(!check.contains("warning"), "{check}");
    inst.ctl_ok(&["start"]);
    let _stop = Stop(&inst);

    // postmaster@ reaches a person (RFC 5321 4.5.1).
    smtp_send(&inst, "postmaster@example.test", "to the postmaster");
    wait_stat(&inst, "demo@example.test", 1);

    // Deleted and added again: the new user starts with an empty mailbox.
    let del = inst.ctl_ok(&["user", "del", "demo@example.test"]);
    assert!(
        del.contains("its mail in") && del.contains("is removed"),
        "{del}"
    );
    // The aliases that named the user go with it, and say so.
    assert!(
        del.contains("deleted alias postmaster@example.test"),
        "{del}"
    );
    assert_eq!(code(&add_user(&inst, "demo@example.test", &[])), 0);
    assert_eq!(pop3_stat(&inst, "demo@example.test"), Ok(0));

    // Kept mail is only adopted when asked.
    smtp_send(&inst, "demo@example.test", "kept");
    wait_stat(&inst, "demo@example.test", 1);
    let del = inst.ctl_ok(&["user", "del", "demo@example.test", "--keep-mail"]);
    assert!(del.contains("--reuse-mail"), "{del}");
    let again = add_user(&inst, "demo@example.test", &[]);
    assert_eq!(code(&again), 73, "{}", stderr(&again));
    assert!(
        stderr(&again).contains("--reuse-mail"),
        "{}",
        stderr(&again)
    );
    let reused = add_user(&inst, "demo@example.test", &["--reuse-mail"]);
    assert_eq!(code(&reused), 0, "{}", stderr(&reused));
    assert_eq!(pop3_stat(&inst, "demo@example.test"), Ok(1));

    // A typo in the configuration while the system runs.
    inst.append_config("[authd]\nmax_failurs = 3\n");
    let status = inst.ctl(&["status"]);
    assert_eq!(code(&status), 0, "{}{}", stdout(&status), stderr(&status));
    assert!(stderr(&status).contains("warning"), "{}", stderr(&status));
    assert!(
        stderr(&status).contains("max_failurs"),
        "{}",
        stderr(&status)
    );
    assert!(
        !stdout(&status).contains("not served"),
        "{}",
        stdout(&status)
    );
    let queue = inst.ctl(&["queue", "list"]);
    assert_eq!(code(&queue), 0, "{}", stderr(&queue));
    assert!(stderr(&queue).contains("max_failurs"), "{}", stderr(&queue));
    let pid: u32 = std::fs::read_to_string(inst.path().join("run/kmpromail.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let stop = inst.ctl(&["stop"]);
    assert_eq!(code(&stop), 0, "{}", stderr(&stop));
    assert!(stderr(&stop).contains("warning"), "{}", stderr(&stop));
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "the supervisor still runs"
    );
    assert!(TcpStream::connect(inst.addr(110)).is_err(), "POP3 still up");

    // Stopped: the listeners are not served, and status says so.
    let status = inst.ctl(&["status"]);
    assert_eq!(code(&status), 69);
    let text = stdout(&status);
    let smtpd = text
        .lines()
        .find(|l| l.starts_with("kmp-smtpd"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        smtpd.contains("down") && smtpd.contains("not served ("),
        "{smtpd}"
    );
}

#[test]
fn usage_errors_exit_64_in_every_program_and_help_exits_0() {
    let inst = Instance::new();
    for args in [
        vec!["bogus"],
        vec!["user", "add"],
        vec!["user", "add", "a@example.test", "--no-such-flag"],
        vec!["domain"],
    ] {
        let out = inst.ctl(&args);
        assert_eq!(code(&out), 64, "kmpctl {args:?}: {}", stderr(&out));
    }
    for p in [
        "kmpctl",
        "kmp-authd",
        "kmp-local",
        "kmp-remote",
        "kmp-send",
        "kmp-smtpd",
        "kmp-pop3d",
        "kmp-imapd",
    ] {
        let bad = Command::new(common::bin(p))
            .arg("--no-such-flag")
            .output()
            .unwrap();
        assert_eq!(code(&bad), 64, "{p}: {}", stderr(&bad));
        for ok in ["--help", "--version"] {
            let out = Command::new(common::bin(p)).arg(ok).output().unwrap();
            assert_eq!(code(&out), 0, "{p} {ok}: {}", stderr(&out));
            assert!(!out.stdout.is_empty(), "{p} {ok} printed nothing");
        }
    }
}

#[test]
fn db_load_names_a_duplicate_by_its_address_not_reversed() {
    let inst = Instance::new();
    inst.ctl_ok(&["domain", "add", "second.test"]);
    inst.ctl_ok(&["user", "add", "ann@second.test"]);
    inst.ctl_ok(&["alias", "add", "info@second.test", "ann@second.test"]);
    let dup = inst.ctl_stdin(
        &["db", "load"],
        Some(b"{\"type\":\"user\",\"address\":\"ann@second.test\"}\n"),
    );
    assert_eq!(code(&dup), 73, "{}", stderr(&dup));
    assert!(
        stderr(&dup).contains("user ann@second.test exists"),
        "{}",
        stderr(&dup)
    );
    assert!(!stderr(&dup).contains("second.test@ann"));
    let dup = inst.ctl_stdin(
        &["db", "load"],
        Some(b"{\"type\":\"alias\",\"address\":\"info@second.test\",\"targets\":[\"x@y.test\"]}\n"),
    );
    assert!(
        stderr(&dup).contains("alias info@second.test exists"),
        "{}",
        stderr(&dup)
    );
}

#[test]
fn forward_without_targets_is_refused_and_clear_stops_forwarding() {
    let inst = Instance::new();
    inst.ctl_ok(&["domain", "add", "example.test"]);
    inst.ctl_ok(&["user", "add", "f@example.test"]);
    inst.ctl_ok(&["user", "forward", "f@example.test", "far@remote.test"]);
    let none = inst.ctl(&["user", "forward", "f@example.test"]);
    assert_eq!(code(&none), 64, "{}", stderr(&none));
    assert!(stderr(&none).contains("--clear"), "{}", stderr(&none));
    let show = inst.ctl_ok(&["user", "show", "f@example.test"]);
    assert!(
        show.contains("far@remote.test"),
        "forwards were cleared: {show}"
    );
    let both = inst.ctl(&["user", "forward", "f@example.test", "x@y.test", "--clear"]);
    assert_eq!(code(&both), 64);
    let cleared = inst.ctl_ok(&["user", "forward", "f@example.test", "--clear"]);
    assert!(
        cleared.contains("forwarding stopped for f@example.test"),
        "{cleared}"
    );
    let show = inst.ctl_ok(&["user", "show", "f@example.test"]);
    assert!(show.contains("forwards:        none"), "{show}");
}

#[test]
fn del_and_delete_are_one_verb_and_quota_flags_are_one_name() {
    let inst = Instance::new();
    inst.ctl_ok(&["domain", "add", "a.test", "--messages", "7"]);
    inst.ctl_ok(&["domain", "add", "b.test", "--quota-messages", "8"]);
    inst.ctl_ok(&["user", "add", "u@a.test", "--quota-messages", "9"]);
    inst.ctl_ok(&["user", "quota", "u@a.test", "1M", "--quota-messages", "10"]);
    assert!(inst
        .ctl_ok(&["user", "show", "u@a.test"])
        .contains("quota messages:  10"));
    inst.ctl_ok(&["user", "quota", "u@a.test", "1M", "--messages", "11"]);
    assert!(inst
        .ctl_ok(&["user", "show", "u@a.test"])
        .contains("quota messages:  11"));
    inst.ctl_ok(&["alias", "add", "x@a.test", "u@a.test"]);
    inst.ctl_ok(&["alias", "delete", "x@a.test"]);
    inst.ctl_ok(&["user", "delete", "u@a.test"]);
    inst.ctl_ok(&["domain", "delete", "b.test"]);
    inst.ctl_ok(&["domain", "del", "a.test"]);
    // The queue takes `del` as well as `delete` (kmp-send is not running: 69, not 64).
    for verb in ["del", "delete"] {
        let out = inst.ctl(&["queue", verb, "6B0A2DE0EDB34DEC7"]);
        assert_eq!(code(&out), 69, "queue {verb}: {}", stderr(&out));
    }
    for verb in ["del", "delete"] {
        let out = inst.ctl(&["ban", verb, "192.0.2.7"]);
        assert_ne!(code(&out), 64, "ban {verb}: {}", stderr(&out));
    }
}

#[test]
fn deleting_users_and_domains_leaves_no_dangling_references() {
    let inst = Instance::new();
    for d in ["a.test", "b.test"] {
        inst.ctl_ok(&["domain", "add", d]);
        inst.ctl_ok(&["alias", "add", &format!("postmaster@{d}"), "boss@a.test"]);
    }
    for u in ["boss@a.test", "bob@a.test", "cy@b.test"] {
        inst.ctl_ok(&["user", "add", u]);
    }
    inst.ctl_ok(&["alias", "add", "team@a.test", "bob@a.test", "cy@b.test"]);
    inst.ctl_ok(&["alias", "add", "solo@a.test", "bob+lists@a.test"]);
    inst.ctl_ok(&["user", "forward", "boss@a.test", "cy@b.test", "--keep-copy"]);
    assert!(!inst.ctl_ok(&["check"]).contains("warning"));

    let del = inst.ctl_ok(&["user", "del", "bob@a.test"]);
    assert!(
        del.contains("removed bob@a.test from the targets of alias team@a.test"),
        "{del}"
    );
    assert!(
        del.contains("deleted alias solo@a.test (its only target was bob+lists@a.test)"),
        "{del}"
    );
    let del = inst.ctl_ok(&["domain", "del", "b.test", "--force"]);
    assert!(del.contains("(1 user, 1 alias)"), "{del}");
    assert!(
        del.contains("removed cy@b.test from the forwards of user boss@a.test"),
        "{del}"
    );
    assert!(
        del.contains("deleted alias team@a.test (its only target was cy@b.test)"),
        "{del}"
    );
    // Nothing points at b.test any more: its mail would have been relayed out.
    let aliases = inst.ctl_ok(&["alias", "list"]);
    let users = inst.ctl_ok(&["user", "list"]);
    assert!(
        !aliases.contains("b.test") && !users.contains("b.test"),
        "{aliases}{users}"
    );
    assert!(!inst.ctl_ok(&["check"]).contains("warning"));

    // What check reports when references dangle anyway (made by hand).
    inst.ctl_ok(&[
        "alias",
        "add",
        "x@a.test",
        "ghost@a.test",
        "far@remote.test",
    ]);
    inst.ctl_ok(&["user", "forward", "boss@a.test", "nobody@a.test"]);
    inst.ctl_ok(&["domain", "add", "c.test", "--postmaster", "boss@a.test"]);
    inst.ctl_ok(&["alias", "del", "postmaster@c.test"]);
    let check = inst.ctl_ok(&["check"]);
    assert!(
        check.contains("warning: alias x@a.test points at ghost@a.test, which does not exist"),
        "{check}"
    );
    assert!(
        check.contains("warning: user boss@a.test forwards to nobody@a.test, which does not exist"),
        "{check}"
    );
    assert!(
        check.contains("warning: domain c.test has no postmaster@c.test"),
        "{check}"
    );
    assert!(!check.contains("far@remote.test"), "{check}");
}

#[test]
fn domain_add_makes_postmaster_and_abuse_for_the_admin() {
    let inst = Instance::new();
    // No admin address configured: the domain comes without, and a warning says so.
    let out = inst.ctl(&["domain", "add", "none.test"]);
    assert_eq!(code(&out), 0);
    assert!(
        stderr(&out).contains("warning: none.test has no postmaster@none.test"),
        "{}",
        stderr(&out)
    );
    // system.postmaster names the administrator.
    reinit(&inst, &["--postmaster", "root@admin.test"]);
    let out = inst.ctl_ok(&["domain", "add", "example.test"]);
    assert!(
        out.contains("alias postmaster@example.test -> root@admin.test"),
        "{out}"
    );
    assert!(
        out.contains("alias abuse@example.test -> root@admin.test"),
        "{out}"
    );
    // --postmaster names someone else; it may not point the alias at itself.
    let out = inst.ctl_ok(&[
        "domain",
        "add",
        "other.test",
        "--postmaster",
        "pm@example.test",
    ]);
    assert!(
        out.contains("alias postmaster@other.test -> pm@example.test"),
        "{out}"
    );
    let bad = inst.ctl(&[
        "domain",
        "add",
        "loop.test",
        "--postmaster",
        "postmaster@loop.test",
    ]);
    assert_eq!(code(&bad), 65, "{}", stderr(&bad));
    let list = inst.ctl_ok(&["alias", "list"]);
    assert!(!list.contains("loop.test"), "{list}");
    let check = inst.ctl_ok(&["check"]);
    assert!(
        check.contains("domain none.test has no postmaster"),
        "{check}"
    );
    assert!(!check.contains("domain example.test has no"), "{check}");
}

#[test]
fn messages_use_plurals_and_no_debug_formatting() {
    let inst = Instance::new();
    inst.ctl_ok(&["domain", "add", "example.test"]);
    inst.ctl_ok(&["user", "add", "one@example.test"]);
    inst.ctl_ok(&["alias", "add", "a@example.test", "one@example.test"]);
    let refused = inst.ctl(&["domain", "del", "example.test"]);
    assert!(
        stderr(&refused).contains("still has 1 user and 1 alias;"),
        "{}",
        stderr(&refused)
    );
    let dump = inst.path().join("dump.jsonl");
    let out = inst.ctl(&["db", "dump", dump.to_str().unwrap()]);
    assert!(
        stderr(&out).contains("dumped 1 domain, 1 user, 1 alias"),
        "{}",
        stderr(&out)
    );
    let out = inst.ctl(&["db", "load", "--replace", dump.to_str().unwrap()]);
    assert!(
        stderr(&out).contains("loaded 1 domain, 1 user, 1 alias in"),
        "{}",
        stderr(&out)
    );
    let del = inst.ctl_ok(&["domain", "del", "example.test", "--force"]);
    assert!(
        del.contains("deleted domain example.test (1 user, 1 alias)"),
        "{del}"
    );
    assert!(
        !del.contains("1 users") && !del.contains("1 aliases"),
        "{del}"
    );
    let status = inst.ctl(&["status"]);
    assert!(!stderr(&status).contains("(s)"), "{}", stderr(&status));
    assert!(
        stderr(&status).contains("programs are not running"),
        "{}",
        stderr(&status)
    );
}

/// `--password-stdin` on a terminal prompts twice and never echoes what is
/// typed; util-linux script(1) gives kmpctl the terminal.
#[test]
fn password_on_a_terminal_is_prompted_for_with_echo_off() {
    let mut inst = Instance::new();
    inst.ctl_ok(&["domain", "add", "example.test"]);
    let cmd = format!(
        "{} --config {} user add tty@example.test --password-stdin",
        common::bin("kmpctl").display(),
        inst.config().display()
    );
    let mut child = Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("script(1) from util-linux (apt-get install bsdutils)");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let mut out = child.stdout.take().unwrap();
    let reader = {
        let seen = seen.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 512];
            while let Ok(n) = out.read(&mut buf) {
                if n == 0 {
                    break;
                }
                seen.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        })
    };
    let text = || String::from_utf8_lossy(&seen.lock().unwrap()).into_owned();
    let mut stdin = child.stdin.take().unwrap();
    for prompt in ["New password:", "Retype new password:"] {
        wait_until(Duration::from_secs(20), || text().contains(prompt))
            .unwrap_or_else(|_| panic!("no prompt {prompt:?}: {:?}", text()));
        // Typed only once the prompt shows, as a person would.
        stdin.write_all(format!("{PW}\n").as_bytes()).unwrap();
        stdin.flush().unwrap();
    }
    wait_until(Duration::from_secs(20), || text().contains("added user"))
        .unwrap_or_else(|_| panic!("not added: {:?}", text()));
    drop(stdin);
    let _ = child.wait();
    reader.join().unwrap();
    let seen = text();
    assert!(!seen.contains(PW), "the password was echoed: {seen:?}");
    // The password typed is the one stored: a POP3 login with it works.
    inst.spawn("kmp-authd", &[]);
    inst.wait_socket("authd.sock");
    inst.spawn("kmp-pop3d", &[]);
    inst.wait_port(110);
    assert_eq!(pop3_stat(&inst, "tty@example.test"), Ok(0));
}
