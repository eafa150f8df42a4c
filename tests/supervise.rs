//! The supervisor behind `kmpctl start`: how fast a killed daemon comes back,
//! and what it says when it runs every daemon as root.
mod common;

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{wait_until, Instance};

/// Stops the instance's supervisor even when a test fails half-way.
struct Stop<'a>(&'a Instance);

impl Drop for Stop<'_> {
    fn drop(&mut self) {
        let _ = self.0.ctl(&["stop"]);
    }
}

/// Whether SMTP on BASE+25 greets with 220.
fn smtp_answers(inst: &Instance) -> bool {
    let Ok(c) = TcpStream::connect(inst.addr(25)) else {
        return false;
    };
    let _ = c.set_read_timeout(Some(Duration::from_secs(2)));
    let mut line = String::new();
    BufReader::new(c).read_line(&mut line).is_ok() && line.starts_with("220")
}

fn pid_of(inst: &Instance, daemon: &str) -> Option<u32> {
    std::fs::read_to_string(inst.path().join("run").join(format!("{daemon}.pid")))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// The back-off grew to 60 s and reset only after 60 healthy seconds: a
/// kmp-smtpd killed twice in a minute left SMTP down for a minute. Killed six
/// times in a row, the old back-off (1, 2, 4, 8, 16 s) passes the 10 s bound.
#[test]
fn smtpd_killed_twice_in_a_row_comes_back_each_time() {
    let inst = Instance::new();
    inst.ctl_ok(&["start"]);
    let _stop = Stop(&inst);
    assert!(smtp_answers(&inst), "SMTP is not up after start");
    let mut seen = Vec::new();
    for round in 1..=6 {
        let pid = pid_of(&inst, "kmp-smtpd").expect("kmp-smtpd's pid file");
        seen.push(pid);
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid as i32),
            nix::sys::signal::Signal::SIGKILL,
        )
        .unwrap();
        let killed = Instant::now();
        wait_until(Duration::from_secs(10), || {
            pid_of(&inst, "kmp-smtpd").is_some_and(|p| !seen.contains(&p)) && smtp_answers(&inst)
        })
        .unwrap_or_else(|_| {
            panic!(
                "kill {round}: SMTP did not come back within 10 s:\n{}",
                std::fs::read_to_string(inst.path().join("log/kmpromail.log")).unwrap_or_default()
            )
        });
        eprintln!("kill {round}: SMTP back after {:?}", killed.elapsed());
    }
    let log = std::fs::read_to_string(inst.path().join("log/kmpromail.log")).unwrap();
    assert!(
        log.contains("kmp-smtpd (pid") && log.contains("restarting now"),
        "{log}"
    );
}

/// `kmpctl start` as root with an instance's empty `[privileges]` ran every
/// daemon as root and said nothing.
#[test]
fn start_as_root_without_privileges_warns() {
    if !nix::unistd::Uid::effective().is_root() {
        eprintln!("skipped: the warning is for root (CI runs as root)");
        return;
    }
    let inst = Instance::new();
    let out = inst.ctl(&["start"]);
    let _stop = Stop(&inst);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("warning: running as root") && err.contains("kmp-smtpd"),
        "no warning on standard error: {err}"
    );
    let log = std::fs::read_to_string(inst.path().join("log/kmpromail.log")).unwrap();
    assert!(
        log.lines()
            .any(|l| l.contains("kmpromail[") && l.contains("warning: running as root")),
        "no warning in the log:\n{log}"
    );
}
