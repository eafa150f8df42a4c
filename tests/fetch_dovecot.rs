//! kmp-fetch against Dovecot (POP3 and IMAP), a private instance the test
//! configures and starts itself on free loopback ports. Skipped, with the
//! reason printed, when Dovecot is not installed or the test does not run
//! as root (Dovecot's mail processes change user).

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::fetch::*;
use common::wait_until;

struct Dovecot {
    child: Child,
    dir: tempfile::TempDir,
    pop3: u16,
    imap: u16,
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Why the test cannot run here, if it cannot.
fn unavailable() -> Option<String> {
    if !Path::new("/usr/sbin/dovecot").exists() {
        return Some(
            "Dovecot is not installed (apt-get install dovecot-imapd dovecot-pop3d)".into(),
        );
    }
    if !nix::unistd::Uid::effective().is_root() {
        return Some("Dovecot's mail processes change user: run as root".into());
    }
    for u in ["dovecot", "dovenull", "mail"] {
        if nix::unistd::User::from_name(u).ok().flatten().is_none() {
            return Some(format!("no system user {u} for Dovecot"));
        }
    }
    None
}

/// Dovecot with the user `bob` / `bobpass`, mail under its directory,
/// owned by the system user `mail`.
fn dovecot() -> Dovecot {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mail = nix::unistd::User::from_name("mail").unwrap().unwrap();
    for sub in [
        "run",
        "state",
        "mail/bob/new",
        "mail/bob/cur",
        "mail/bob/tmp",
    ] {
        std::fs::create_dir_all(d.join(sub)).unwrap();
    }
    // The temporary directory is 0700: Dovecot's unprivileged processes
    // must reach their sockets and the mail.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(d.join("users"), "bob:{PLAIN}bobpass::::::\n").unwrap();
    let (pop3, imap) = (free_port(), free_port());
    let conf = format!(
        r#"base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/dovecot.log
protocols = pop3 imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
first_valid_uid = 1
mail_location = maildir:{d}/mail/%u
pop3_uidl_format = %08Xu%08Xv
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {d}/users
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={d}/mail/%u
}}
service imap-login {{
  inet_listener imap {{
    port = {imap}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service pop3-login {{
  inet_listener pop3 {{
    port = {pop3}
  }}
  inet_listener pop3s {{
    port = 0
  }}
}}
"#,
        d = d.display(),
        uid = mail.uid,
        gid = mail.gid,
    );
    std::fs::write(d.join("dovecot.conf"), conf).unwrap();
    let child = Command::new("/usr/sbin/dovecot")
        .args(["-F", "-c"])
        .arg(d.join("dovecot.conf"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(d.join("stderr")).unwrap())
        .spawn()
        .unwrap();
    let dv = Dovecot {
        child,
        dir,
        pop3,
        imap,
    };
    wait_until(Duration::from_secs(10), || {
        std::net::TcpStream::connect(("127.0.0.1", imap)).is_ok()
            && std::net::TcpStream::connect(("127.0.0.1", pop3)).is_ok()
    })
    .unwrap_or_else(|_| {
        panic!(
            "Dovecot did not start: {}",
            std::fs::read_to_string(dv.dir.path().join("stderr")).unwrap_or_default()
        )
    });
    dv
}

/// Puts `n` messages into bob's INBOX, owned by `mail`.
fn fill_dovecot(dv: &Dovecot, tag: &str, n: usize) {
    let mail = nix::unistd::User::from_name("mail").unwrap().unwrap();
    let new = dv.dir.path().join("mail/bob/new");
    for i in 0..n {
        let p = new.join(format!("1767225600.M{i}P1.{tag}"));
        std::fs::write(
            &p,
            format!("From: a@dovecot.test\nSubject: {tag} {i}\nMessage-Id: <{tag}.{i}@dovecot.test>\n\nbody {i}\n"),
        )
        .unwrap();
        nix::unistd::chown(&p, Some(mail.uid), Some(mail.gid)).unwrap();
    }
    nix::unistd::chown(
        &dv.dir.path().join("mail/bob"),
        Some(mail.uid),
        Some(mail.gid),
    )
    .unwrap();
    for sub in ["", "/new", "/cur", "/tmp"] {
        let _ = nix::unistd::chown(
            &dv.dir.path().join(format!("mail/bob{sub}")),
            Some(mail.uid),
            Some(mail.gid),
        );
    }
}

fn account(l: &common::Instance, name: &str, protocol: &str, port: u16, keep: &str) {
    add_account(
        l,
        name,
        "bobpass",
        &[
            "--protocol",
            protocol,
            "--host",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--tls",
            "none",
            "--username",
            "bob",
            "--keep",
            keep,
            "--disable",
        ],
    );
}

#[test]
fn fetches_from_dovecot_over_pop3_and_imap() {
    if let Some(why) = unavailable() {
        eprintln!("skipped: {why}");
        return;
    }
    let dv = dovecot();
    fill_dovecot(&dv, "dv", 3);
    let r = remote();
    let l = local(&r, &[]);
    account(&l, "dovecot-pop", "pop3", dv.pop3, "keep");
    account(&l, "dovecot-imap", "imap", dv.imap, "delete");
    let out = l.ctl_ok(&["fetch", "run", LOCAL_USER, "dovecot-pop"]);
    assert!(out.contains("fetched 3, deleted 0"), "{out}");
    let out = l.ctl_ok(&["fetch", "run", LOCAL_USER, "dovecot-pop"]);
    assert!(out.contains("fetched 0"), "{out}");
    // IMAP, deleting: the same three again (another account), then gone.
    let out = l.ctl_ok(&["fetch", "run", LOCAL_USER, "dovecot-imap"]);
    assert!(out.contains("fetched 3, deleted 3"), "{out}");
    for f in ["dovecot-pop", "dovecot-imap"] {
        let folder = local_folder(&l, f);
        assert_eq!(wait_count(&folder, 3, Duration::from_secs(20)), 3, "{f}");
        let ids = message_ids(&folder);
        assert!(
            ids.len() == 3 && ids.values().all(|&n| n == 1),
            "{f}: {ids:?}"
        );
    }
    let left = count(&dv.dir.path().join("mail/bob"));
    assert_eq!(left, 0, "Dovecot still holds {left}");
    // POP3 now sees an empty mailbox: its marks are forgotten.
    let out = l.ctl_ok(&["fetch", "run", LOCAL_USER, "dovecot-pop"]);
    assert!(out.contains("fetched 0"), "{out}");
}
