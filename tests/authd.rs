//! The user database and kmp-authd, as an administrator and the daemons use
//! them: kmpctl verbs, then logins and lookups over kmp-authd's socket.
mod common;

use std::net::IpAddr;
use std::path::PathBuf;

use common::Instance;
use kmpromail::ipc::authd::{Client, Entry, LoginFailure, Reply, Request, Service};

fn socket(inst: &Instance) -> PathBuf {
    inst.path().join("run/authd.sock")
}

/// Sets `key = value` in `[section]` of the instance's configuration,
/// adding the section when it is not there.
fn set_config(inst: &Instance, section: &str, line: &str) {
    let text = std::fs::read_to_string(inst.config()).unwrap();
    let head = format!("[{section}]\n");
    let text = match text.find(&head) {
        Some(i) => format!("{}{head}{line}\n{}", &text[..i], &text[i + head.len()..]),
        None => format!("{text}\n{head}{line}\n"),
    };
    std::fs::write(inst.config(), text).unwrap();
}

fn start_authd(inst: &mut Instance) {
    inst.spawn("kmp-authd", &[]);
    inst.wait_socket("authd.sock");
    common::wait_until(std::time::Duration::from_secs(10), || {
        inst.path().join("run/kmp-authd.pid").exists()
    })
    .expect("kmp-authd wrote its pid file");
}

fn login(c: &mut Client, user: &str, pw: &str, ip: &str) -> Reply {
    c.call(Request::Login {
        user: user.into(),
        password: pw.into(),
        service: Service::Pop3,
        ip: Some(ip.parse::<IpAddr>().unwrap()),
    })
    .unwrap()
}

fn ok(r: &Reply) -> bool {
    matches!(r, Reply::LoginOk { .. })
}

fn code(out: &std::process::Output) -> i32 {
    out.status.code().unwrap_or(-1)
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn domain_user_alias_verbs_and_refusals() {
    let inst = Instance::new();
    assert!(
        inst.path().join("db/data.mdb").exists(),
        "init made no database"
    );
    inst.ctl_ok(&["domain", "add", "Example.TEST"]);
    inst.ctl_ok(&["domain", "add", "bücher.example"]);
    let out = inst.ctl_stdin(
        &[
            "user",
            "add",
            "Bob@example.test",
            "--password-stdin",
            "--quota",
            "10M",
        ],
        Some(b"secret\n"),
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));

    // Refusals: duplicate (any case), bad address, unknown domain, long password.
    let dup = inst.ctl_stdin(
        &["user", "add", "BOB@Example.test", "--password-stdin"],
        Some(b"x\n"),
    );
    assert_eq!(code(&dup), 73);
    assert!(stderr(&dup).contains("exists already"), "{}", stderr(&dup));
    let bad = inst.ctl(&["user", "add", "bad address@example.test"]);
    assert_eq!(code(&bad), 65);
    assert!(stderr(&bad).contains("local part"), "{}", stderr(&bad));
    let nodom = inst.ctl(&["user", "add", "x@nowhere.test"]);
    assert_eq!(code(&nodom), 67);
    assert!(stderr(&nodom).contains("no domain nowhere.test"));
    let long = vec![b'x'; 1025];
    let out = inst.ctl_stdin(
        &["user", "add", "long@example.test", "--password-stdin"],
        Some(&long),
    );
    assert_eq!(code(&out), 65);
    assert!(
        stderr(&out).contains("longer than 1024"),
        "{}",
        stderr(&out)
    );
    let out = inst.ctl(&[
        "user",
        "add",
        "h@example.test",
        "--password-hash",
        "plaintext",
    ]);
    assert_eq!(code(&out), 65);
    assert!(stderr(&out).contains("not a usable hash"));

    // Listing and showing, plain and JSON.
    let list = inst.ctl_ok(&["user", "list"]);
    assert!(
        list.contains("Bob@example.test") && list.contains("10M"),
        "{list}"
    );
    let v: serde_json::Value =
        serde_json::from_str(&inst.ctl_ok(&["--json", "user", "show", "bob@EXAMPLE.test"]))
            .unwrap();
    assert_eq!(v["address"], "Bob@example.test");
    assert_eq!(v["password"], "sha512-crypt");
    assert_eq!(v["quota_bytes"], 10 << 20);
    assert!(v["mail_path"]
        .as_str()
        .unwrap()
        .ends_with("mail/example.test/bob"));
    let doms: serde_json::Value =
        serde_json::from_str(&inst.ctl_ok(&["--json", "domain", "list"])).unwrap();
    let names: Vec<&str> = doms
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["domain"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["example.test", "xn--bcher-kva.example"]);
    assert_eq!(doms[0]["users"], "1");

    inst.ctl_ok(&[
        "alias",
        "add",
        "info@example.test",
        "bob@example.test",
        "x@remote.test",
    ]);
    let taken = inst.ctl(&["user", "add", "info@example.test"]);
    assert_eq!(code(&taken), 73, "{}", stderr(&taken));
    let aliases = inst.ctl_ok(&["alias", "list"]);
    assert!(aliases.contains("info@example.test") && aliases.contains("x@remote.test"));

    // A domain with users is kept unless --force, and the refusal says why.
    let del = inst.ctl(&["domain", "del", "example.test"]);
    assert_eq!(code(&del), 65);
    assert!(
        stderr(&del).contains("still has 1 user(s) and 1 alias(es)"),
        "{}",
        stderr(&del)
    );
    inst.ctl_ok(&["domain", "del", "example.test", "--force"]);
    assert!(!inst.ctl_ok(&["user", "list"]).contains("Bob"));
}

#[test]
fn logins_and_lookups_over_the_socket() {
    let mut inst = Instance::new();
    set_config(&inst, "system", "default_domain = \"example.test\"");
    inst.ctl_ok(&["domain", "add", "example.test"]);
    let out = inst.ctl_stdin(
        &["user", "add", "Bob@example.test", "--password-stdin"],
        Some(b"s3cret\n"),
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    inst.ctl_ok(&["alias", "add", "info@example.test", "bob@example.test"]);
    start_authd(&mut inst);
    let mut c = Client::connect(&socket(&inst)).unwrap();
    assert!(matches!(c.call(Request::Ping).unwrap(), Reply::Pong));

    match login(&mut c, "bob@example.test", "s3cret", "192.0.2.1") {
        Reply::LoginOk { user } => {
            assert_eq!(user.address, "Bob@example.test");
            assert!(user.active);
        }
        r => panic!("{r:?}"),
    }
    assert!(
        ok(&login(&mut c, "BOB", "s3cret", "192.0.2.1")),
        "default domain"
    );
    let wrong = login(&mut c, "bob@example.test", "wrong", "192.0.2.1");
    let unknown = login(&mut c, "nobody@example.test", "wrong", "192.0.2.1");
    for r in [&wrong, &unknown] {
        assert!(
            matches!(
                r,
                Reply::LoginFailed {
                    reason: LoginFailure::BadCredentials
                }
            ),
            "{r:?}"
        );
    }

    let look =
        |c: &mut Client, a: &str| match c.call(Request::Lookup { address: a.into() }).unwrap() {
            Reply::Found {
                entry,
                local_domain,
            } => (entry, local_domain),
            r => panic!("{r:?}"),
        };
    assert!(matches!(
        look(&mut c, "bob@example.test"),
        (Entry::User { .. }, true)
    ));
    assert!(matches!(
        look(&mut c, "BOB+lists@Example.Test"),
        (Entry::User { .. }, true)
    ));
    match look(&mut c, "info@example.test") {
        (Entry::Alias { targets, .. }, true) => assert_eq!(targets, ["bob@example.test"]),
        r => panic!("{r:?}"),
    }
    assert_eq!(look(&mut c, "carol@example.test"), (Entry::NotFound, true));
    assert_eq!(look(&mut c, "bob@elsewhere.test"), (Entry::NotFound, false));

    // kmpctl's writes are seen without a restart.
    inst.ctl_ok(&["alias", "add", "@example.test", "bob@example.test"]);
    assert!(matches!(
        look(&mut c, "carol@example.test"),
        (Entry::Alias { .. }, true)
    ));
    inst.ctl_ok(&["user", "disable", "bob@example.test"]);
    let r = login(&mut c, "bob@example.test", "s3cret", "192.0.2.1");
    assert!(
        matches!(
            r,
            Reply::LoginFailed {
                reason: LoginFailure::Disabled
            }
        ),
        "{r:?}"
    );
}
