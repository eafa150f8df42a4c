//! `kmpctl --remote`: the same verbs through kmp-admind of a second
//! instance, with the same output and exit codes as on that host, within
//! the caller's role, and nothing touched locally.

mod common;

use std::process::{Command, Output, Stdio};

use common::admind::admind_instance;
use common::{bin, Instance};

/// kmpctl with the local instance's configuration, driving `remote`.
fn remote(
    local: &Instance,
    remote: &Instance,
    who: (&str, &str),
    args: &[&str],
    input: Option<&[u8]>,
) -> Output {
    use std::io::Write;
    let pw = local.path().join(format!("pw-{}", who.0));
    std::fs::write(&pw, format!("{}\n", who.1)).unwrap();
    let url = format!("https://127.0.0.1:{}", remote.base + 844);
    let ca = remote.path().join("tls/cert.pem");
    let mut child = Command::new(bin("kmpctl"))
        .arg("--config")
        .arg(local.config())
        .args(["--remote", &url, "--user", who.0, "--password-file"])
        .arg(&pw)
        .arg("--ca-file")
        .arg(&ca)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    if let Some(i) = input {
        stdin.write_all(i).unwrap();
    }
    drop(stdin);
    child.wait_with_output().unwrap()
}

fn show(o: &Output) -> String {
    format!(
        "exit {:?}\n{}{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn remote_verbs_print_and_exit_as_local_ones() {
    let far = admind_instance(&[]);
    let near = Instance::new();
    let admin = ("admin@sys.example", "pw-admin");
    let pm = ("pm@a.example", "pw-pm");
    // Reading: the same text and JSON as kmpctl on the far host.
    for args in [
        &["domain", "list"][..],
        &["domain", "show", "a.example"],
        &["user", "list", "a.example"],
        &["user", "list"],
        &["user", "show", "U@a.example"],
        &["alias", "list", "a.example"],
        &["--json", "domain", "show", "b.example"],
        &["--json", "user", "list", "b.example"],
        &["--json", "user", "show", "bob@b.example"],
    ] {
        let there = far.ctl(args);
        let here = remote(&near, &far, admin, args, None);
        assert_eq!(show(&here), show(&there), "{args:?}");
    }
    // Changes through the API are seen on the far host, not here.
    let o = remote(
        &near,
        &far,
        pm,
        &[
            "user",
            "add",
            "new@a.example",
            "--password-stdin",
            "--quota",
            "1M",
        ],
        Some(b"pw-new\n"),
    );
    assert!(o.status.success(), "{}", show(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).starts_with("added user new@a.example (mail in "),
        "{}",
        show(&o)
    );
    assert!(far
        .ctl_ok(&["user", "show", "new@a.example"])
        .contains("quota:           1M"));
    assert!(near.ctl_ok(&["domain", "list"]).lines().count() <= 1);
    for (args, want) in [
        (
            &["user", "quota", "new@a.example", "2M"][..],
            "quota set for new@a.example\n",
        ),
        (
            &["user", "disable", "new@a.example"],
            "disabled new@a.example\n",
        ),
        (
            &[
                "user",
                "forward",
                "new@a.example",
                "bob@b.example",
                "--keep-copy",
            ],
            "forwarding set for new@a.example\n",
        ),
        (
            &["alias", "add", "info@a.example", "new@a.example"],
            "alias info@a.example -> new@a.example\n",
        ),
        (
            &["alias", "del", "info@a.example"],
            "deleted alias info@a.example\n",
        ),
    ] {
        let o = remote(&near, &far, pm, args, None);
        assert_eq!(
            String::from_utf8_lossy(&o.stdout),
            want,
            "{args:?}: {}",
            show(&o)
        );
    }
    let u = far.ctl_ok(&["user", "show", "new@a.example"]);
    assert!(
        u.contains("state:           disabled") && u.contains("forwards:        bob@b.example"),
        "{u}"
    );
    // Refusals exit as the local verb would: no such user 67, a name taken
    // 73, over a limit 73, another domain 77, a bad password 77.
    let there = far.ctl(&["user", "show", "nobody@a.example"]);
    let here = remote(&near, &far, pm, &["user", "show", "nobody@a.example"], None);
    assert_eq!(show(&here), show(&there));
    assert_eq!(here.status.code(), Some(67));
    let o = remote(&near, &far, pm, &["user", "add", "u@a.example"], None);
    assert_eq!(o.status.code(), Some(73), "{}", show(&o));
    let o = remote(
        &near,
        &far,
        admin,
        &["domain", "set", "a.example", "--max-users", "4"],
        None,
    );
    assert!(o.status.success(), "{}", show(&o));
    far.ctl_ok(&["user", "add", "x1@a.example"]);
    let here = remote(&near, &far, pm, &["user", "add", "x2@a.example"], None);
    let there = far.ctl(&["user", "add", "x2@a.example"]);
    assert_eq!(show(&here), show(&there));
    assert_eq!(here.status.code(), Some(73), "{}", show(&here));
    let o = remote(&near, &far, pm, &["user", "del", "bob@b.example"], None);
    assert_eq!(o.status.code(), Some(77), "{}", show(&o));
    assert!(far
        .ctl_ok(&["user", "list", "b.example"])
        .contains("bob@b.example"));
    let o = remote(
        &near,
        &far,
        pm,
        &["domain", "set", "a.example", "--max-users", "100"],
        None,
    );
    assert_eq!(o.status.code(), Some(77), "{}", show(&o));
    let o = remote(
        &near,
        &far,
        ("pm@a.example", "wrong"),
        &["domain", "list"],
        None,
    );
    assert_eq!(o.status.code(), Some(77), "{}", show(&o));
    // What the API does not offer is refused before any login.
    let o = remote(&near, &far, admin, &["queue", "list"], None);
    assert_eq!(o.status.code(), Some(64), "{}", show(&o));
    // The deletion, last: the same lines as the local verb.
    let o = remote(&near, &far, pm, &["user", "del", "new@a.example"], None);
    assert!(o.status.success(), "{}", show(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).starts_with("deleted user new@a.example; "),
        "{}",
        show(&o)
    );
}
