//! kmp-fetch's concurrency limits, seen from the server's side: a slow
//! POP3 server (Python, on loopback) counts the sessions open at once, in
//! all and per local user, while four accounts of two users are all due.
//! With `fetch.max_concurrency = 2` and `fetch.max_per_user = 1` it sees
//! two at once at most, never two of one user, and every account served.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::fetch::{local, LOCAL_USER};
use common::{wait_until, Instance};

/// A POP3 server without CAPA or TLS that holds every login for a while
/// and writes, after each change, `max_total max_per_user logins` (the
/// user is the part of the login name before the dash).
const SLOW_POP3: &str = r#"
import socketserver, sys, threading, time
out = sys.argv[1]
lock = threading.Lock()
active, per, stats = [0], {}, {"max": 0, "max_user": 0, "logins": set()}
def save():
    with open(out + ".tmp", "w") as f:
        f.write("%d %d %s\n" % (stats["max"], stats["max_user"], ",".join(sorted(stats["logins"]))))
    import os; os.replace(out + ".tmp", out)
class H(socketserver.StreamRequestHandler):
    def handle(self):
        user, owner, inside = None, None, False
        self.wfile.write(b"+OK slow\r\n")
        try:
            for raw in self.rfile:
                cmd = raw.decode(errors="replace").strip()
                verb = cmd.split(" ")[0].upper()
                if verb == "CAPA":
                    self.wfile.write(b"-ERR no\r\n")
                elif verb == "USER":
                    user = cmd[5:]
                    self.wfile.write(b"+OK\r\n")
                elif verb == "PASS":
                    owner = user.split("-")[0]
                    with lock:
                        active[0] += 1
                        per[owner] = per.get(owner, 0) + 1
                        stats["max"] = max(stats["max"], active[0])
                        stats["max_user"] = max(stats["max_user"], per[owner])
                        stats["logins"].add(user)
                        save()
                    inside = True
                    time.sleep(1.5)
                    self.wfile.write(b"+OK\r\n")
                elif verb in ("UIDL", "LIST"):
                    self.wfile.write(b"+OK\r\n.\r\n")
                elif verb == "STAT":
                    self.wfile.write(b"+OK 0 0\r\n")
                elif verb == "QUIT":
                    self.wfile.write(b"+OK\r\n")
                    break
                else:
                    self.wfile.write(b"+OK\r\n")
        finally:
            if inside:
                with lock:
                    active[0] -= 1
                    per[owner] -= 1
class S(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
s = S(("127.0.0.1", 0), H)
print(s.server_address[1], flush=True)
s.serve_forever()
"#;

#[test]
fn at_most_max_concurrency_at_once_and_max_per_user_each() {
    let stats = tempfile::NamedTempFile::new().unwrap();
    let mut server = Command::new("python3")
        .args(["-c", SLOW_POP3])
        .arg(stats.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("python3 runs");
    let mut first = String::new();
    BufReader::new(server.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let port = first.trim().to_string();
    // No remote instance runs: its certificate is only the CA file,
    // never used (no TLS).
    let unused = Instance::new();
    let mut l = local(&unused, &["max_concurrency = 2", "max_per_user = 1"]);
    let out = l.ctl_stdin(
        &["user", "add", "v@example.test", "--password-stdin"],
        Some(b"secret\n"),
    );
    assert!(out.status.success());
    // Stopped while the accounts are added, so that all four are due at once.
    l.kill("kmp-fetch");
    for (owner, tag) in [(LOCAL_USER, "u"), ("v@example.test", "v")] {
        for n in ["a", "b"] {
            let login = format!("{tag}-{n}");
            let args = [
                "fetch",
                "add",
                owner,
                &login,
                "--protocol",
                "pop3",
                "--host",
                "127.0.0.1",
                "--port",
                &port,
                "--tls",
                "none",
                "--username",
                &login,
                "--password-stdin",
            ];
            let out = l.ctl_stdin(&args, Some(b"pw\n"));
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
    common::fetch::start_fetch(&mut l);
    let read = || std::fs::read_to_string(stats.path()).unwrap_or_default();
    let all = wait_until(Duration::from_secs(60), || {
        read()
            .split_whitespace()
            .nth(2)
            .is_some_and(|l| l.split(',').count() == 4)
    });
    let text = read();
    let _ = server.kill();
    let _ = server.wait();
    all.unwrap_or_else(|_| {
        panic!(
            "not every account was served: {text:?}\n{}",
            l.log("kmp-fetch")
        )
    });
    let mut f = text.split_whitespace();
    let max: u32 = f.next().unwrap().parse().unwrap();
    let max_user: u32 = f.next().unwrap().parse().unwrap();
    assert_eq!(max_user, 1, "two sessions of one user at once: {text}");
    assert!(max <= 2, "more than fetch.max_concurrency at once: {text}");
    assert_eq!(max, 2, "two users' accounts ran side by side: {text}");
}
