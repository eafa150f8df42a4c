//! Two instances for the fetch agent's tests: a remote one (kmp-authd,
//! kmp-pop3d, kmp-imapd, the user r@remote.test / rpass) whose mailbox the
//! tests fill, and a local one (kmp-authd, kmp-send, kmp-local, kmp-fetch,
//! the user u@example.test) that fetches from it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{set_config, wait_until, Instance};

pub const REMOTE_USER: &str = "r@remote.test";
pub const REMOTE_PASS: &str = "rpass";
pub const LOCAL_USER: &str = "u@example.test";

/// The remote instance, serving POP3 and IMAP.
pub fn remote() -> Instance {
    let mut r = Instance::new();
    // The fetching side logs in again and again from 127.0.0.1.
    set_config(&r, "authd", "max_failures = 1000");
    r.ctl_ok(&["domain", "add", "remote.test"]);
    let out = r.ctl_stdin(
        &["user", "add", REMOTE_USER, "--password-stdin"],
        Some(format!("{REMOTE_PASS}\n").as_bytes()),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    r.spawn("kmp-authd", &[]);
    r.wait_socket("authd.sock");
    r.spawn("kmp-pop3d", &[]);
    r.spawn("kmp-imapd", &[]);
    r.wait_port(995);
    r.wait_port(143);
    r
}

/// The local instance with kmp-fetch running; `config` lines go into
/// `[fetch]` before it starts. Remote certificates are checked against the
/// remote instance's own (`fetch.ca_file`) unless `config` says otherwise.
pub fn local(remote: &Instance, config: &[&str]) -> Instance {
    let mut l = Instance::new();
    set_config(&l, "fetch", "min_interval = \"1s\"");
    if !config.iter().any(|c| c.starts_with("ca_file")) {
        let ca = format!(
            "ca_file = \"{}\"",
            remote.path().join("tls/cert.pem").display()
        );
        set_config(&l, "fetch", &ca);
    }
    for c in config {
        set_config(&l, "fetch", c);
    }
    l.ctl_ok(&["domain", "add", "example.test"]);
    let out = l.ctl_stdin(
        &["user", "add", LOCAL_USER, "--password-stdin"],
        Some(b"secret\n"),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    l.spawn("kmp-authd", &[]);
    l.wait_socket("authd.sock");
    l.spawn("kmp-local", &[]);
    l.wait_socket("local.sock");
    l.spawn("kmp-send", &[]);
    l.wait_socket("send.sock");
    start_fetch(&mut l);
    l
}

/// Starts kmp-fetch and waits for its socket.
pub fn start_fetch(l: &mut Instance) {
    l.spawn("kmp-fetch", &[]);
    wait_until(Duration::from_secs(10), || {
        l.path().join("run/kmp-fetch.pid").exists()
    })
    .unwrap_or_else(|_| panic!("kmp-fetch did not start: {}", l.log("kmp-fetch")));
}

/// `kmpctl fetch add USER NAME ARGS`, the password on standard input.
pub fn add_account(l: &Instance, name: &str, password: &str, args: &[&str]) {
    let mut all = vec!["fetch", "add", LOCAL_USER, name];
    all.extend_from_slice(args);
    all.push("--password-stdin");
    let out = l.ctl_stdin(&all, Some(format!("{password}\n").as_bytes()));
    assert!(
        out.status.success(),
        "kmpctl {all:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The remote user's Maildir folder (`""` for INBOX), made if missing.
pub fn remote_folder(r: &Instance, folder: &str) -> PathBuf {
    let mut p = r.path().join("mail/remote.test/r");
    if !folder.is_empty() {
        p = p.join(format!(".{}", kmpromail::proto::utf7::encode(folder)));
    }
    for sub in ["new", "cur", "tmp"] {
        std::fs::create_dir_all(p.join(sub)).unwrap();
    }
    p
}

/// Puts `n` messages into a remote folder, Message-Ids `<TAG.i@remote.test>`,
/// each about `size` bytes of body.
pub fn fill(r: &Instance, folder: &str, tag: &str, n: usize, size: usize) {
    let dir = remote_folder(r, folder);
    let body: String = "The quick brown fox jumps over the lazy dog.\n"
        .repeat(size / 45 + 1)
        .chars()
        .take(size)
        .collect();
    for i in 0..n {
        let text = format!(
            "From: a@remote.test\nTo: r@remote.test\nSubject: =?GB2312?B?suLK1Q==?= {tag} {i}\nMessage-Id: <{tag}.{i}@remote.test>\nDate: Thu, 1 Jan 2026 00:00:00 +0000\n\n{body}\n"
        );
        let name = format!("1767225600.M{i}P{}.{tag}", std::process::id());
        std::fs::write(dir.join("new").join(name), text).unwrap();
    }
}

/// Messages in a Maildir folder (new/ and cur/).
pub fn count(dir: &Path) -> usize {
    ["new", "cur"]
        .iter()
        .map(|s| {
            std::fs::read_dir(dir.join(s))
                .map(|d| d.count())
                .unwrap_or(0)
        })
        .sum()
}

/// The local user's folder of that name (modified UTF-7 on disk).
pub fn local_folder(l: &Instance, folder: &str) -> PathBuf {
    l.path().join(format!(
        "mail/example.test/u/.{}",
        kmpromail::proto::utf7::encode(folder)
    ))
}

/// Message-Id → how many messages carry it, in a Maildir folder.
pub fn message_ids(dir: &Path) -> HashMap<String, usize> {
    let mut out = HashMap::new();
    for sub in ["new", "cur"] {
        let Ok(d) = std::fs::read_dir(dir.join(sub)) else {
            continue;
        };
        for e in d.flatten() {
            let text = std::fs::read_to_string(e.path()).unwrap_or_default();
            let id = text
                .lines()
                .find_map(|l| l.strip_prefix("Message-Id: "))
                .unwrap_or("(none)")
                .to_string();
            *out.entry(id).or_default() += 1;
        }
    }
    out
}

/// Waits until `dir` holds `n` messages (or `limit` passes); the count.
pub fn wait_count(dir: &Path, n: usize, limit: Duration) -> usize {
    let _ = wait_until(limit, || count(dir) >= n);
    count(dir)
}
