//! Moving between a real Dovecot and us, both ways (issue 22): a mailbox
//! built through Dovecot's IMAP and POP3 (folders with Chinese names,
//! keywords, flags, subscriptions, a MOVE, a POP3 session that leaves the
//! mail on the server) is copied to our user and must look the same over
//! our IMAP and POP3, to the UID; an mbsync state made against Dovecot
//! then finds nothing to do against us. Then the reverse: our Maildir,
//! after `kmpctl export dovecot`, copied to a Dovecot user.
//!
//! Dovecot runs as a private instance in a temporary directory (its own
//! base_dir, passwd-file and free loopback ports; no root needed, and when
//! run as root its login processes run as nobody). Skipped, with the
//! reason, when Dovecot is not installed (tests/tools.txt).

mod common;

use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::Instance;
use serde_json::Value;

const SNAPSHOT: &str = include_str!("data/migrate/snapshot.py");
const DOVECOT: &str = "/usr/sbin/dovecot";

/// A private Dovecot; stopped when dropped.
struct Dovecot {
    dir: tempfile::TempDir,
    imap: u16,
    pop3: u16,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Dovecot {
    /// Starts Dovecot with users joe and ann (password "secret"), or None
    /// (and why, on standard error) when it is not installed.
    fn start() -> Option<Dovecot> {
        for program in [DOVECOT, "/usr/lib/dovecot/imap", "/usr/lib/dovecot/pop3"] {
            if let Some(why) = common::missing_tool(program, common::TOOLS) {
                eprintln!("skipped: {why}");
                return None;
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let root = nix::unistd::geteuid().is_root();
        // Dovecot's login processes refuse to run as root: as root they run
        // as nobody, who must reach the login sockets, and mail is owned by
        // nobody too (Dovecot refuses uid 0 for mail).
        let me = nix::unistd::User::from_uid(nix::unistd::geteuid())
            .unwrap()
            .unwrap();
        let (login, mail_uid, mail_gid) = if root {
            ("nobody".to_string(), 65534u32, 65534u32)
        } else {
            (me.name.clone(), me.uid.as_raw(), me.gid.as_raw())
        };
        let group = nix::unistd::Group::from_gid(me.gid)
            .unwrap()
            .map(|g| g.name)
            .unwrap_or_else(|| "root".to_string());
        let d = dir.path();
        for sub in ["mail", "home"] {
            fs::create_dir(d.join(sub)).unwrap();
            if root {
                std::os::unix::fs::chown(d.join(sub), Some(mail_uid), Some(mail_gid)).unwrap();
            }
        }
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(d, fs::Permissions::from_mode(0o755)).unwrap();
        fs::write(d.join("passwd"), "joe:{PLAIN}secret\nann:{PLAIN}secret\n").unwrap();
        let (imap, pop3) = (free_port(), free_port());
        let conf = format!(
            r#"base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/log
protocols = imap pop3
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
mail_location = maildir:{d}/mail/%u
default_internal_user = {me}
default_internal_group = {group}
default_login_user = {login}
first_valid_uid = 0
pop3_uidl_format = %08Xu%08Xv
passdb {{
  driver = passwd-file
  args = scheme=PLAIN {d}/passwd
}}
userdb {{
  driver = static
  args = uid={mail_uid} gid={mail_gid} home={d}/home/%u
}}
namespace inbox {{
  inbox = yes
  separator = .
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {imap}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service pop3-login {{
  chroot =
  inet_listener pop3 {{
    address = 127.0.0.1
    port = {pop3}
  }}
  inet_listener pop3s {{
    port = 0
  }}
}}
service anvil {{
  chroot =
}}
"#,
            d = d.display(),
            me = me.name,
        );
        fs::write(d.join("dovecot.conf"), conf).unwrap();
        // The master daemonizes and keeps its standard error: into a
        // file, not a pipe this process would wait on for ever.
        let err = fs::File::create(d.join("stderr")).unwrap();
        let status = Command::new(DOVECOT)
            .arg("-c")
            .arg(d.join("dovecot.conf"))
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(err)
            .status()
            .unwrap();
        let dc = Dovecot { dir, imap, pop3 };
        assert!(
            status.success(),
            "dovecot: {}{}",
            fs::read_to_string(dc.dir.path().join("stderr")).unwrap_or_default(),
            dc.log()
        );
        common::wait_until(Duration::from_secs(10), || {
            std::net::TcpStream::connect(("127.0.0.1", imap)).is_ok()
                && std::net::TcpStream::connect(("127.0.0.1", pop3)).is_ok()
        })
        .unwrap_or_else(|_| panic!("dovecot never listened: {}", dc.log()));
        Some(dc)
    }

    fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("log")).unwrap_or_default()
    }

    fn maildir(&self, user: &str) -> PathBuf {
        self.dir.path().join("mail").join(user)
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        let pidfile = self.dir.path().join("run/master.pid");
        let Some(pid) = fs::read_to_string(&pidfile)
            .ok()
            .and_then(|p| p.trim().parse::<i32>().ok())
        else {
            return;
        };
        let pid = nix::unistd::Pid::from_raw(pid);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let _ = common::wait_until(Duration::from_secs(10), || {
            nix::sys::signal::kill(pid, None).is_err()
        });
    }
}

fn snapshot(port_imap: u16, port_pop3: u16, user: &str, logs: &dyn Fn() -> String) -> Value {
    let out = common::python(
        SNAPSHOT,
        &[
            "127.0.0.1",
            &port_imap.to_string(),
            &port_pop3.to_string(),
            user,
            "secret",
        ],
    );
    assert!(
        out.status.success(),
        "snapshot of {user}: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        logs()
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn ours(inst: &Instance) -> Value {
    snapshot(inst.base + 143, inst.base + 110, "u@example.test", &|| {
        format!("{}\n{}", inst.log("kmp-imapd"), inst.log("kmp-pop3d"))
    })
}

fn theirs(dc: &Dovecot, user: &str) -> Value {
    snapshot(dc.imap, dc.pop3, user, &|| dc.log())
}

fn run_python(script: &str, args: &[&str]) {
    let out = common::python(script, args);
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `cp -a`, then (as root) the copy owned by `uid`.
fn copy_tree(from: &Path, to: &Path, owner: Option<u32>) {
    fs::create_dir_all(to.parent().unwrap()).unwrap();
    let st = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .unwrap();
    assert!(st.success());
    if let Some(uid) = owner {
        let st = Command::new("chown")
            .arg("-R")
            .arg(format!("{uid}:{uid}"))
            .arg(to)
            .status()
            .unwrap();
        assert!(st.success());
    }
}

/// The message files below a Maildir (relative names), sorted.
fn files(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(dir).unwrap().to_string_lossy().into_owned();
                if rel.contains("/cur/")
                    || rel.contains("/new/")
                    || rel.starts_with("cur/")
                    || rel.starts_with("new/")
                {
                    out.push(rel);
                }
            }
        }
    }
    out.sort();
    out
}

const BUILD: &str = r#"
import imaplib, poplib, sys, base64
host, iport, pport = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
def enc(s):
    out, buf = '', ''
    def flush():
        nonlocal out, buf
        if buf:
            out += '&' + base64.b64encode(buf.encode('utf-16-be')).decode().rstrip('=').replace('/', ',') + '-'
            buf = ''
    for ch in s:
        if 0x20 <= ord(ch) < 0x7f:
            flush(); out += '&-' if ch == '&' else ch
        else:
            buf += ch
    flush()
    return '"' + out + '"'
m = imaplib.IMAP4(host, iport)
m.login('joe', 'secret')
for f in ['Work', 'Work.2024', '邮件', '邮件.已发送', 'Sent']:
    assert m.create(enc(f))[0] == 'OK', f
for f in ['INBOX', 'Work.2024', '邮件', '邮件.已发送', 'Sent']:
    assert m.subscribe(enc(f))[0] == 'OK', f
msg = lambda i, subj: ('From: =?GB2312?B?1cXI/Q==?= <z@example.test>\r\nSubject: %s %d\r\n\r\nbody %d\r\n' % (subj, i, i)).encode()
flags = [r'(\Seen $Forwarded Work)', r'(\Flagged)', None, r'(\Seen \Answered)', r'($Junk)', r'(\Draft \Seen)']
for i, f in enumerate(flags):
    assert m.append('INBOX', f, None, msg(i, 'inbox'))[0] == 'OK'
m.append(enc('Work.2024'), r'(\Seen Project)', None, msg(9, 'work'))
m.select('INBOX')
assert m.uid('STORE', '2', '+FLAGS', r'($Forwarded \Answered)')[0] == 'OK'
assert m.uid('MOVE', '3', enc('邮件'))[0] == 'OK'
assert m.uid('COPY', '4', enc('Work.2024'))[0] == 'OK'
assert m.uid('STORE', '5', '+FLAGS', r'(\Deleted)')[0] == 'OK'
assert m.expunge()[0] == 'OK'
assert m.uid('STORE', '1', '+FLAGS', r'(\Deleted)')[0] == 'OK'
m.logout()
# A POP3 client that leaves mail on the server: reads one, deletes none.
p = poplib.POP3(host, pport)
p.user('joe'); p.pass_('secret')
p.uidl(); p.retr(2)
p.quit()
"#;

#[test]
fn a_dovecot_mailbox_moves_in_and_back_out_unnoticed() {
    let Some(dc) = Dovecot::start() else { return };
    let root = nix::unistd::geteuid().is_root();
    run_python(
        BUILD,
        &["127.0.0.1", &dc.imap.to_string(), &dc.pop3.to_string()],
    );
    let mut inst = common::imap_instance();
    inst.spawn("kmp-pop3d", &[]);
    let pid = inst.path().join("run/kmp-pop3d.pid");
    common::wait_until(Duration::from_secs(10), || pid.exists()).unwrap();

    // mbsync against Dovecot, as a user's laptop would have.
    let near = inst.path().join("near");
    fs::create_dir(&near).unwrap();
    let rc = inst.path().join("mbsyncrc");
    let write_rc = |port: u16, user: &str| {
        fs::write(
            &rc,
            format!(
                "IMAPAccount acc\nHost 127.0.0.1\nPort {port}\nUser {user}\nPass secret\nSSLType None\nAuthMechs LOGIN\n\n\
                 IMAPStore far\nAccount acc\n\nMaildirStore near\nPath {l}/\nInbox {l}/INBOX\nSubFolders Verbatim\n\n\
                 Channel sync\nFar :far:\nNear :near:\nPatterns *\nCreate Both\nExpunge Both\nSyncState *\n",
                l = near.display()
            ),
        )
        .unwrap();
    };
    let mbsync = || {
        let out = common::tool("mbsync")
            .arg("-c")
            .arg(&rc)
            .arg("sync")
            .output()
            .expect("mbsync runs");
        assert!(
            out.status.success(),
            "mbsync: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    };
    write_rc(dc.imap, "joe");
    mbsync();
    let near_before = files(&near);
    assert!(near_before.len() >= 6, "{near_before:?}");

    let before = theirs(&dc, "joe");
    assert!(
        before["folders"]["邮件"]["messages"]
            .as_array()
            .unwrap()
            .len()
            == 1,
        "{before}"
    );
    assert!(
        before["subscribed"].as_array().unwrap().len() == 5,
        "{before}"
    );

    // The move: the Maildir copied as it is.
    let md = inst.path().join("mail/example.test/u");
    copy_tree(&dc.maildir("joe"), &md, None);
    let after = ours(&inst);
    assert_eq!(after, before, "\nours:   {after}\ntheirs: {before}");

    // The laptop's next sync against us finds nothing to do.
    write_rc(inst.base + 143, "u@example.test");
    mbsync();
    assert_eq!(files(&near), near_before);
    assert_eq!(ours(&inst), before);

    // Life goes on here: new mail with a keyword, a flag, a new folder.
    run_python(
        r#"
import imaplib, sys
m = imaplib.IMAP4('127.0.0.1', int(sys.argv[1]))
m.login('u@example.test', 'secret')
assert m.append('INBOX', r'(\Seen $Forwarded Later)', None, b'Subject: here\r\n\r\nnew\r\n')[0] == 'OK'
m.select('INBOX')
assert m.uid('STORE', '4', '+FLAGS', r'(Later \Flagged)')[0] == 'OK'
assert m.create('"&XFJoYw-"')[0] == 'OK'
assert m.subscribe('"&XFJoYw-"')[0] == 'OK'
assert m.append('"&XFJoYw-"', r'(\Seen)', None, b'Subject: kept\r\n\r\nold\r\n')[0] == 'OK'
m.logout()
"#,
        &[&(inst.base + 143).to_string()],
    );
    let here = ours(&inst);
    assert_ne!(here, before);
    // Dovecot's UIDLs (lowercase hex) for the mail it had, ours for the new.
    let uidls: Vec<&str> = here["uidl"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u.as_str().unwrap())
        .collect();
    assert_eq!(uidls.len(), 4, "{here}");
    assert!(
        uidls[..3]
            .iter()
            .all(|u| u.len() == 16 && !u.bytes().any(|b| b.is_ascii_uppercase())),
        "{uidls:?}"
    );
    assert!(
        uidls[3].bytes().any(|b| b.is_ascii_uppercase()),
        "{uidls:?}"
    );
    let inbox = here["folders"]["INBOX"]["messages"].to_string();
    assert!(
        inbox.contains("$Forwarded") && inbox.contains("Later"),
        "{inbox}"
    );

    // The move back: exported, copied to a Dovecot user.
    inst.kill("kmp-imapd");
    inst.kill("kmp-pop3d");
    let out = inst.ctl(&["export", "dovecot", "u@example.test"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    copy_tree(&md, &dc.maildir("ann"), root.then_some(65534));
    let back = theirs(&dc, "ann");
    assert_eq!(back, here, "\ntheirs: {back}\nours:   {here}");
}
