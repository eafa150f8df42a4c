//! The installed shape, as root: `kmpctl setup` makes the users and
//! directories, `kmpctl start` runs each daemon under its own user after it
//! has bound its ports, mail flows SMTP → queue → Maildir → POP3 and IMAP, and
//! kmp-smtpd's user can open neither the user database nor a Maildir.
//! Skipped (with the reason printed) when not run as root; CI runs as root.
mod common;

use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::time::Duration;

use common::{python, wait_until, Instance};

fn user_of(pid: u32) -> String {
    let out = Command::new("ps")
        .args(["-o", "user=", "-p", &pid.to_string()])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Runs `argv` as `user` (with its groups) and says whether it succeeded.
fn as_user(user: &str, argv: &[&str]) -> bool {
    Command::new("setpriv")
        .args(["--reuid", user, "--regid", user, "--init-groups", "--"])
        .args(argv)
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

#[test]
fn privilege_separated_system_delivers_and_confines() {
    if !nix::unistd::Uid::effective().is_root() {
        eprintln!("skipped: privilege separation needs root (CI runs this as root)");
        return;
    }
    let inst = Instance::new();
    std::fs::set_permissions(inst.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let text = std::fs::read_to_string(inst.config()).unwrap();
    let text: String = text
        .lines()
        .filter(|l| {
            !(l.contains(" = \"\"")
                && [
                    "smtpd",
                    "send",
                    "local",
                    "remote",
                    "authd",
                    "pop3d",
                    "imapd",
                    "admind",
                    "drop_group",
                ]
                .iter()
                .any(|k| l.starts_with(&format!("{k} ="))))
        })
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(inst.config(), text).unwrap();
    common::set_config(&inst, "admind", "admins = [\"alice@example.test\"]");
    let out = inst.ctl_ok(&["setup"]);
    assert!(!out.is_empty());
    // Re-running changes nothing; check agrees.
    assert_eq!(inst.ctl_ok(&["setup"]).trim(), "nothing to change");
    inst.ctl_ok(&["check"]);

    inst.ctl_ok(&["domain", "add", "example.test"]);
    let o = inst.ctl_stdin(
        &["user", "add", "alice@example.test", "--password-stdin"],
        Some(b"wonderland\n"),
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    inst.ctl_ok(&["start"]);
    struct Stop<'a>(&'a Instance);
    impl Drop for Stop<'_> {
        fn drop(&mut self) {
            let _ = self.0.ctl(&["stop"]);
        }
    }
    let _stop = Stop(&inst);

    let expected = [
        ("kmp-authd", "kmpauth"),
        ("kmp-local", "vmail"),
        ("kmp-remote", "kmpr"),
        ("kmp-send", "kmpq"),
        ("kmp-smtpd", "kmpd"),
        ("kmp-pop3d", "vmail"),
        ("kmp-imapd", "vmail"),
        ("kmp-admind", "kmpadm"),
    ];
    for (d, user) in expected {
        let pid: u32 = std::fs::read_to_string(inst.path().join("run").join(format!("{d}.pid")))
            .unwrap_or_else(|_| panic!("{d} has no pid file"))
            .trim()
            .parse()
            .unwrap();
        assert_eq!(user_of(pid), user, "{d} runs as the wrong user");
    }

    let send = python(
        "import smtplib,sys\ns=smtplib.SMTP('127.0.0.1',int(sys.argv[1]),timeout=20)\n\
         s.sendmail('bob@elsewhere.test',['alice@example.test'],'Subject: root test\\r\\n\\r\\nhello from root test\\r\\n')\ns.quit()",
        &[&(inst.base + 25).to_string()],
    );
    assert!(
        send.status.success(),
        "{}",
        String::from_utf8_lossy(&send.stderr)
    );
    // kmp-admind, as kmpadm in the database's group, writes the database.
    let steps = serde_json::json!([
        common::admind::login("alice@example.test", "wonderland", "a"),
        common::admind::req(
            "PATCH",
            "/v1/users/alice@example.test",
            Some(serde_json::json!({"quota_bytes": 7340032})),
            "a"
        ),
    ]);
    let r = common::admind::steps(&inst, &steps);
    assert!(r.iter().all(|(s, _)| *s == 200), "{r:?}");
    assert!(inst
        .ctl_ok(&["user", "show", "alice@example.test"])
        .contains("quota:           7M"));
    let maildir = inst.path().join("mail/example.test/alice/new");
    wait_until(Duration::from_secs(20), || {
        std::fs::read_dir(&maildir)
            .map(|d| d.count() > 0)
            .unwrap_or(false)
    })
    .expect("message reached the Maildir");

    let pop = python(
        "import poplib,sys\np=poplib.POP3('127.0.0.1',int(sys.argv[1]),timeout=20)\np.user('alice@example.test')\np.pass_('wonderland')\n\
         print(b'\\n'.join(p.retr(1)[1]).decode())\np.quit()",
        &[&(inst.base + 110).to_string()],
    );
    assert!(
        String::from_utf8_lossy(&pop.stdout).contains("hello from root test"),
        "{}",
        String::from_utf8_lossy(&pop.stderr)
    );
    let imap = python(
        "import imaplib,sys\nm=imaplib.IMAP4('127.0.0.1',int(sys.argv[1]))\nm.login('alice@example.test','wonderland')\nm.select('INBOX')\n\
         print(m.fetch('1','(BODY.PEEK[TEXT])')[1][0][1].decode())\nm.logout()",
        &[&(inst.base + 143).to_string()],
    );
    assert!(
        String::from_utf8_lossy(&imap.stdout).contains("hello from root test"),
        "{}",
        String::from_utf8_lossy(&imap.stderr)
    );

    // kmp-smtpd's user can open neither the user database nor a Maildir.
    let db = inst.path().join("db");
    let db_file = std::fs::read_dir(&db)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    assert!(
        !as_user("kmpd", &["cat", db_file.to_str().unwrap()]),
        "kmpd read the user database"
    );
    assert!(
        !as_user("kmpd", &["ls", maildir.to_str().unwrap()]),
        "kmpd listed a Maildir"
    );
    assert!(
        !as_user("kmpr", &["ls", maildir.to_str().unwrap()]),
        "kmpr listed a Maildir"
    );
    // The test itself can: the refusals above are about users, not missing files.
    assert!(
        as_user("vmail", &["ls", maildir.to_str().unwrap()]),
        "vmail cannot list its own Maildir"
    );
}
