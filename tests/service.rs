//! kmpctl start / status / reload / stop, the supervisor's restarts, and
//! logging to a syslog socket, on a self-contained instance.
mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixDatagram;
use std::time::Duration;

use common::{wait_until, Instance};

fn status_pids(inst: &Instance) -> Vec<(String, String, Option<u32>)> {
    let out = inst.ctl(&["status", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("status --json");
    v.as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["daemon"].as_str().unwrap().to_string(),
                r["state"].as_str().unwrap().to_string(),
                r["pid"].as_str().unwrap().parse().ok(),
            )
        })
        .collect()
}

/// Stops the instance's supervisor even when a test fails half-way.
struct Stop<'a>(&'a Instance);

impl Drop for Stop<'_> {
    fn drop(&mut self) {
        let _ = self.0.ctl(&["stop"]);
    }
}

#[test]
fn start_status_reload_restart_stop() {
    let inst = Instance::new();
    inst.ctl_ok(&["start"]);
    let _stop = Stop(&inst);
    let rows = status_pids(&inst);
    assert!(rows.len() >= 2, "{rows:?}");
    assert!(
        rows.iter().all(|(_, s, p)| s == "running" && p.is_some()),
        "{rows:?}"
    );
    assert!(inst.ctl(&["status"]).status.success());

    // A second start is refused while running.
    assert_eq!(inst.ctl(&["start"]).status.code(), Some(75));

    // Reload keeps every daemon (same pids) and an established SMTP session.
    let smtp = rows.iter().any(|(d, _, _)| d == "kmp-smtpd");
    let mut conn = smtp.then(|| {
        let c = TcpStream::connect(inst.addr(25)).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut r = BufReader::new(c.try_clone().unwrap());
        let mut greeting = String::new();
        r.read_line(&mut greeting).unwrap();
        assert!(greeting.starts_with("220"), "{greeting}");
        (c, r)
    });
    inst.ctl_ok(&["reload"]);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(status_pids(&inst), rows, "a reload restarted something");
    if let Some((c, r)) = conn.as_mut() {
        c.write_all(b"NOOP\r\n").unwrap();
        let mut line = String::new();
        r.read_line(&mut line).unwrap();
        assert!(line.starts_with("250"), "after reload: {line}");
    }

    // A daemon that dies is restarted, and the restart is logged.
    let (name, _, pid) = rows
        .iter()
        .find(|(d, _, _)| d != "supervisor")
        .unwrap()
        .clone();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid.unwrap() as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    wait_until(Duration::from_secs(15), || {
        status_pids(&inst)
            .iter()
            .any(|(d, s, p)| *d == name && s == "running" && *p != pid && p.is_some())
    })
    .unwrap_or_else(|_| panic!("{name} was not restarted: {:?}", status_pids(&inst)));
    let log = std::fs::read_to_string(inst.path().join("log/kmpromail.log")).unwrap();
    assert!(
        log.contains(&format!("{name} (pid {})", pid.unwrap())) && log.contains("restarting"),
        "{log}"
    );

    inst.ctl_ok(&["stop"]);
    let out = inst.ctl(&["status"]);
    assert_eq!(out.status.code(), Some(69));
    for (d, _, p) in &rows {
        assert!(!nix_alive(p.unwrap()), "{d} still alive after stop");
    }
    assert_eq!(inst.ctl(&["stop"]).status.code(), Some(69));
}

fn nix_alive(pid: u32) -> bool {
    // A zombie of ours would still answer kill(0); the supervisor reaps its children.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| !s.contains(") Z "))
        .unwrap_or(false)
}

#[test]
fn daemons_log_to_the_syslog_socket_under_facility_mail() {
    let inst = Instance::new();
    let sock_path = inst.path().join("syslog.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let text = std::fs::read_to_string(inst.config()).unwrap().replace(
        "syslog_socket = \"\"",
        &format!("syslog_socket = \"{}\"", sock_path.display()),
    );
    std::fs::write(inst.config(), text).unwrap();
    // Read while the system starts: a syslog daemon always reads, and a
    // datagram socket nobody reads makes its writers wait.
    let reader = std::thread::spawn(move || {
        let mut lines = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n) = sock.recv(&mut buf) {
            let line = String::from_utf8_lossy(&buf[..n]).to_string();
            let done = line.contains("all daemons ready");
            lines.push(line);
            if done {
                break;
            }
        }
        lines
    });
    inst.ctl_ok(&["start"]);
    let _stop = Stop(&inst);
    let lines = reader.join().unwrap();
    assert!(!lines.is_empty(), "nothing arrived on the syslog socket");
    for l in &lines {
        // <PRI>: facility mail (2) times 8 plus a severity of 0..7.
        let pri: u32 = l[1..l.find('>').unwrap()].parse().unwrap();
        assert_eq!(pri / 8, 2, "not facility mail: {l}");
    }
    assert!(
        lines
            .iter()
            .any(|l| l.contains("kmpromail[") && l.contains("all daemons ready")),
        "{lines:?}"
    );
}
