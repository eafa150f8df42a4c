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

/// Starts kmp-authd and waits until its pid file names it.
fn start_authd(inst: &mut Instance) {
    inst.spawn("kmp-authd", &[]);
    let pid = inst.pid("kmp-authd").unwrap().to_string();
    let file = inst.path().join("run/kmp-authd.pid");
    common::wait_until(std::time::Duration::from_secs(10), || {
        std::fs::read_to_string(&file).is_ok_and(|p| p.trim() == pid)
    })
    .unwrap_or_else(|_| panic!("kmp-authd never got ready: {}", inst.log("kmp-authd")));
    inst.wait_socket("authd.sock");
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
        stderr(&del).contains("still has 1 user and 1 alias;"),
        "{}",
        stderr(&del)
    );
    inst.ctl_ok(&["domain", "del", "example.test", "--force"]);
    assert!(!inst.ctl_ok(&["user", "list"]).contains("Bob"));
}

#[test]
fn logins_and_lookups_over_the_socket() {
    let mut inst = Instance::new();
    common::set_config(&inst, "system", "default_domain = \"example.test\"");
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

/// A password with a non-ASCII letter, and its hashes as other systems made
/// them: `doveadm pw -s MD5-CRYPT|SHA256-CRYPT|SHA512-CRYPT|BLF-CRYPT|ARGON2ID`
/// (Dovecot 2.3) and Python's crypt (libxcrypt) for `$2b$`.
const PW: &str = "pässword";
const IMPORTED: &[(&str, &str)] = &[
    ("md5", "$1$RM7uhi2S$xzuXfXjn1KAnB8gO5grBL."),
    ("sha256", "$5$dtdS4I7dNeeHtOPV$6cpCg9SCr/GUOMbjNhnO6MmgtbFhIGGmOgLM53CF5M/"),
    ("sha512", "$6$wcnk6WzhS1oXGS1Y$v.O9e8co33DEW8tfUoN21ChJ9x6.B1HiyvuZaVsFr7Qm1v9gu8uCSLvd7y43hrZi4O3PIoSDPYsDui0NM9GlB1"),
    ("bcrypt2y", "$2y$05$AVZq0gMGlRHk2nSl1s0DF.EScCOd48r8HNsQShLJTpTpaV3s1NoIW"),
    ("bcrypt2b", "$2b$05$t//0UnQyRq8v7XcFxhJlZuEb9gkHLBr43qYaO5GVv9LtngRIs7AUG"),
    ("argon2id", "$argon2id$v=19$m=65536,t=3,p=1$M/e5wBn7dTdFKOZo/Rid+Q$IuKiXspgIoTJqW0VijNUYRo6M4Fm5H0bRjV9+OjHkcE"),
];

#[test]
fn imported_hashes_log_in_through_authd() {
    let mut inst = Instance::new();
    inst.ctl_ok(&["domain", "add", "example.test"]);
    inst.ctl_ok(&["domain", "add", "import.test"]);
    // Half through `user add --password-hash`, half through `db load`.
    let mut dump = String::new();
    for (name, hash) in IMPORTED {
        inst.ctl_ok(&[
            "user",
            "add",
            &format!("{name}@example.test"),
            "--password-hash",
            hash,
        ]);
        dump.push_str(&format!(
            "{{\"type\":\"user\",\"address\":\"{name}@import.test\",\"password\":\"{hash}\"}}\n"
        ));
    }
    let out = inst.ctl_stdin(&["db", "load"], Some(dump.as_bytes()));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    start_authd(&mut inst);
    let mut c = Client::connect(&socket(&inst)).unwrap();
    for (i, (name, _)) in IMPORTED.iter().enumerate() {
        for dom in ["example.test", "import.test"] {
            let user = format!("{name}@{dom}");
            // A different address per user so the failures below ban nobody.
            let ip = format!("192.0.2.{}", 10 + i);
            let r = login(&mut c, &user, PW, &ip);
            assert!(ok(&r), "{user}: {r:?}");
            let r = login(&mut c, &user, "password", &ip);
            assert!(
                matches!(
                    r,
                    Reply::LoginFailed {
                        reason: LoginFailure::BadCredentials
                    }
                ),
                "{user} with a wrong password: {r:?}"
            );
        }
    }
    let shown = inst.ctl_ok(&["user", "list", "import.test"]);
    assert_eq!(shown.lines().count(), IMPORTED.len() + 1, "{shown}");
}

#[test]
fn the_cache_never_accepts_a_changed_or_wrong_password() {
    let mut inst = Instance::new();
    inst.ctl_ok(&["domain", "add", "example.test"]);
    let out = inst.ctl_stdin(
        &["user", "add", "u@example.test", "--password-stdin"],
        Some(b"first\n"),
    );
    assert_eq!(code(&out), 0);
    start_authd(&mut inst);
    let mut c = Client::connect(&socket(&inst)).unwrap();
    let ip = "192.0.2.50";
    assert!(ok(&login(&mut c, "u@example.test", "first", ip)));
    assert!(ok(&login(&mut c, "U@EXAMPLE.TEST", "first", ip)));
    assert!(
        inst.log("kmp-authd").contains(" cached"),
        "the second login was hashed again"
    );
    assert!(!ok(&login(&mut c, "u@example.test", "First", ip)));
    assert!(!ok(&login(&mut c, "u@example.test", "first ", ip)));
    assert!(ok(&login(&mut c, "u@example.test", "first", ip)));

    // A new password: the old one fails at once, the new one works.
    let out = inst.ctl_stdin(
        &["user", "passwd", "u@example.test", "--password-stdin"],
        Some(b"second\n"),
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(!ok(&login(&mut c, "u@example.test", "first", ip)));
    assert!(ok(&login(&mut c, "u@example.test", "second", ip)));
    assert!(ok(&login(&mut c, "u@example.test", "second", ip)));
    // Set back to the same password through a new hash: still verified anew.
    inst.ctl_ok(&[
        "user",
        "passwd",
        "u@example.test",
        "--password-hash",
        IMPORTED[0].1,
    ]);
    assert!(!ok(&login(&mut c, "u@example.test", "second", ip)));
    assert!(ok(&login(&mut c, "u@example.test", PW, ip)));
    // Disabled after a cached login: refused.
    inst.ctl_ok(&["user", "disable", "u@example.test"]);
    let r = login(&mut c, "u@example.test", PW, ip);
    assert!(
        matches!(
            r,
            Reply::LoginFailed {
                reason: LoginFailure::Disabled
            }
        ),
        "{r:?}"
    );
    inst.ctl_ok(&["user", "enable", "u@example.test"]);
    assert!(ok(&login(&mut c, "u@example.test", PW, ip)));
    // A deleted user is gone, cache or not.
    inst.ctl_ok(&["user", "del", "u@example.test"]);
    assert!(!ok(&login(&mut c, "u@example.test", PW, ip)));
    // An over-long password is refused without hashing.
    assert!(!ok(&login(&mut c, "u@example.test", &"x".repeat(5000), ip)));
}

#[test]
fn failures_from_every_service_ban_and_bans_persist() {
    let mut inst = Instance::new();
    common::set_config(
        &inst,
        "authd",
        "max_failures = 3\nfailure_window = \"1m\"\nban_time = \"1h\"",
    );
    inst.ctl_ok(&["domain", "add", "example.test"]);
    let out = inst.ctl_stdin(
        &["user", "add", "u@example.test", "--password-stdin"],
        Some(b"pw\n"),
    );
    assert_eq!(code(&out), 0);

    // The ban verbs need kmp-authd, and say so.
    let out = inst.ctl(&["ban", "list"]);
    assert_eq!(code(&out), 69);
    assert!(
        stderr(&out).contains("kmp-authd is not running"),
        "{}",
        stderr(&out)
    );

    start_authd(&mut inst);
    let mut c = Client::connect(&socket(&inst)).unwrap();
    let bad = "192.0.2.66";
    let check = |c: &mut Client, ip: &str| match c
        .call(Request::BanCheck {
            ip: ip.parse().unwrap(),
        })
        .unwrap()
    {
        Reply::Ban { banned, .. } => banned,
        r => panic!("{r:?}"),
    };
    // Two failed POP3 logins, then an SMTP daemon reports garbage: banned.
    assert!(!ok(&login(&mut c, "u@example.test", "no", bad)));
    c.call(Request::Login {
        user: "nobody".into(),
        password: "no".into(),
        service: Service::Imap,
        ip: Some(bad.parse().unwrap()),
    })
    .unwrap();
    assert!(!check(&mut c, bad));
    let r = c
        .call(Request::Failure {
            ip: bad.parse().unwrap(),
            service: Service::Smtp,
            reason: "garbage commands".into(),
        })
        .unwrap();
    assert!(matches!(r, Reply::Done));
    assert!(check(&mut c, bad));
    assert!(check(&mut c, &format!("::ffff:{bad}")));
    assert!(!check(&mut c, "192.0.2.67"));
    let r = login(&mut c, "u@example.test", "pw", bad);
    assert!(
        matches!(
            r,
            Reply::LoginFailed {
                reason: LoginFailure::Banned
            }
        ),
        "{r:?}"
    );
    assert!(ok(&login(&mut c, "u@example.test", "pw", "192.0.2.67")));
    let list = inst.ctl_ok(&["ban", "list"]);
    assert!(list.contains("192.0.2.66/32"), "{list}");

    // By hand, with a time.
    inst.ctl_ok(&[
        "ban",
        "add",
        "198.51.100.0/24",
        "--time",
        "10m",
        "--reason",
        "spam run",
    ]);
    assert!(check(&mut c, "198.51.100.200"));
    let bad_net = inst.ctl(&["ban", "add", "300.1.2.3"]);
    assert_eq!(code(&bad_net), 65);

    // Bans survive a restart, even after SIGKILL (stale socket and pid file).
    drop(c);
    inst.kill("kmp-authd");
    start_authd(&mut inst);
    let mut c = Client::connect(&socket(&inst)).unwrap();
    assert!(check(&mut c, bad));
    assert!(check(&mut c, "198.51.100.1"));
    let v: serde_json::Value =
        serde_json::from_str(&inst.ctl_ok(&["--json", "ban", "list"])).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 2, "{v}");

    inst.ctl_ok(&["ban", "del", bad]);
    assert!(!check(&mut c, bad));
    assert!(ok(&login(&mut c, "u@example.test", "pw", bad)));
    let again = inst.ctl(&["ban", "del", bad]);
    assert_eq!(code(&again), 65, "{}", stderr(&again));
    assert!(stderr(&again).contains("no ban on 192.0.2.66/32"));
}

#[test]
fn garbage_and_broken_frames_close_only_that_connection() {
    use std::io::{Read, Write};
    use std::os::unix::net::UnixStream;
    let mut inst = Instance::new();
    inst.ctl_ok(&["domain", "add", "example.test"]);
    start_authd(&mut inst);
    let sock = socket(&inst);
    // A client that stays connected through all of it.
    let mut steady = Client::connect(&sock).unwrap();
    let garbage: Vec<Vec<u8>> = vec![
        b"\x00\x00\x00\x05hello".to_vec(),
        b"\x00\x00\x00\x02{}".to_vec(),
        b"\x00\x00\x00\x10{\"v\":1,\"op\":\"x\"}".to_vec(),
        b"\x7f\xff\xff\xff".to_vec(),
        b"GET / HTTP/1.0\r\n\r\n".to_vec(),
        b"\x00\x00".to_vec(),
        b"\x00\x00\x01\x00{\"v\":1,\"op\":\"ping\"".to_vec(),
        (0..=255u8).cycle().take(3000).collect(),
    ];
    for (i, g) in garbage.iter().enumerate() {
        let mut s = UnixStream::connect(&sock).unwrap();
        s.set_read_timeout(Some(std::time::Duration::from_secs(40)))
            .unwrap();
        // Sent in small pieces, as a slow peer would.
        for chunk in g.chunks(7) {
            let _ = s.write_all(chunk);
        }
        if i >= 5 {
            // Disconnect mid-frame.
            drop(s);
        } else {
            // A complete bad frame: an error reply (or nothing), then the end.
            let mut rest = Vec::new();
            let _ = s.read_to_end(&mut rest);
            if !rest.is_empty() {
                let text = String::from_utf8_lossy(&rest);
                assert!(text.contains("\"result\":\"error\""), "{text}");
            }
        }
        assert!(
            matches!(steady.call(Request::Ping).unwrap(), Reply::Pong),
            "after garbage {i}"
        );
        let mut fresh = Client::connect(&sock).unwrap();
        assert!(matches!(fresh.call(Request::Ping).unwrap(), Reply::Pong));
    }
    // An unsupported version is refused without closing.
    let mut s = UnixStream::connect(&sock).unwrap();
    let body = br#"{"v":99,"op":"ping"}"#;
    s.write_all(&(body.len() as u32).to_be_bytes()).unwrap();
    s.write_all(body).unwrap();
    let reply: Reply = kmpromail::ipc::frame::read(&mut s).unwrap();
    assert!(
        matches!(
            reply,
            Reply::Error {
                temporary: false,
                ..
            }
        ),
        "{reply:?}"
    );

    // Many clients at once, many requests each.
    let threads: Vec<_> = (0..16)
        .map(|_| {
            let sock = sock.clone();
            std::thread::spawn(move || {
                let mut c = Client::connect(&sock).unwrap();
                for _ in 0..50 {
                    assert!(matches!(c.call(Request::Ping).unwrap(), Reply::Pong));
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert!(inst.pid("kmp-authd").is_some());
}

#[test]
fn dump_and_load_round_trip_and_failed_loads_change_nothing() {
    let a = Instance::new();
    a.ctl_ok(&["domain", "add", "example.test", "--quota", "1G"]);
    a.ctl_ok(&["domain", "add", "bücher.example"]);
    let out = a.ctl_stdin(
        &["user", "add", "Bob@example.test", "--password-stdin"],
        Some(b"pw\n"),
    );
    assert_eq!(code(&out), 0);
    a.ctl_ok(&[
        "user",
        "add",
        "ann@bücher.example",
        "--password-hash",
        IMPORTED[5].1,
        "--quota-messages",
        "500",
    ]);
    a.ctl_ok(&[
        "user",
        "add",
        "nologin@example.test",
        "--mail-path",
        "/srv/mail/nologin",
    ]);
    a.ctl_ok(&["user", "disable", "nologin@example.test"]);
    a.ctl_ok(&[
        "user",
        "forward",
        "bob@example.test",
        "ann@xn--bcher-kva.example",
        "--keep-copy",
    ]);
    a.ctl_ok(&[
        "user",
        "quota",
        "ann@bücher.example",
        "5M",
        "--messages",
        "100",
    ]);
    a.ctl_ok(&["alias", "add", "@example.test", "bob@example.test"]);
    a.ctl_ok(&[
        "alias",
        "add",
        "team@example.test",
        "bob@example.test",
        "ann@bücher.example",
    ]);
    a.ctl_ok(&[
        "user",
        "pop3",
        "bob@example.test",
        "--subfolders",
        "yes",
        "--login-delay",
        "300",
    ]);
    let v: serde_json::Value =
        serde_json::from_str(&a.ctl_ok(&["--json", "user", "show", "bob@example.test"])).unwrap();
    assert_eq!(
        (v["pop3_subfolders"].as_bool(), v["login_delay"].as_u64()),
        (Some(true), Some(300))
    );
    assert_eq!(v["forwards"][0], "ann@xn--bcher-kva.example");
    assert_eq!(v["keep_copy"], true);
    let file = a.path().join("users.jsonl");
    a.ctl_ok(&["db", "dump", file.to_str().unwrap()]);
    let text = std::fs::read_to_string(&file).unwrap();
    assert_eq!(text.lines().count(), 1 + 2 + 3 + 2, "{text}");
    assert_eq!(a.ctl_ok(&["db", "dump"]), text);

    // Into a fresh instance: the same bytes come back out.
    let b = Instance::new();
    let v: serde_json::Value =
        serde_json::from_str(&b.ctl_ok(&["--json", "db", "load", file.to_str().unwrap()])).unwrap();
    assert_eq!(v["loaded"]["users"], 3);
    assert_eq!(b.ctl_ok(&["db", "dump"]), text);

    // Loading again is refused (names exist) and changes nothing; --replace works.
    let again = b.ctl(&["db", "load", file.to_str().unwrap()]);
    assert_eq!(code(&again), 73, "{}", stderr(&again));
    assert!(stderr(&again).contains("line 2:"), "{}", stderr(&again));
    b.ctl_ok(&["db", "load", "--replace", file.to_str().unwrap()]);
    assert_eq!(b.ctl_ok(&["db", "dump"]), text);
    let broken = format!(
        "{text}{{\"type\":\"user\",\"address\":\"x@example.test\",\"password\":\"nope\"}}\n"
    );
    let out = b.ctl_stdin(&["db", "load", "--replace"], Some(broken.as_bytes()));
    assert_eq!(code(&out), 65, "{}", stderr(&out));
    assert!(stderr(&out).contains("line 9:"), "{}", stderr(&out));
    assert_eq!(
        b.ctl_ok(&["db", "dump"]),
        text,
        "a failed load changed the database"
    );
    let missing = b.ctl(&["db", "load", "/nonexistent/file"]);
    assert_eq!(code(&missing), 66);
}

#[test]
fn missing_or_damaged_database_is_named() {
    let inst = Instance::new();
    inst.ctl_ok(&["domain", "add", "example.test"]);
    let data = inst.path().join("db/data.mdb");
    let saved = std::fs::read(&data).unwrap();
    std::fs::write(&data, vec![0x42u8; saved.len()]).unwrap();
    let out = inst.ctl(&["user", "list"]);
    assert_eq!(code(&out), 72);
    assert!(stderr(&out).contains("damaged"), "{}", stderr(&out));
    let authd = std::process::Command::new(common::bin("kmp-authd"))
        .arg("--config")
        .arg(inst.config())
        .arg("--foreground")
        .output()
        .unwrap();
    assert_eq!(authd.status.code(), Some(72), "{}", stderr(&authd));
    std::fs::remove_file(&data).unwrap();
    let out = inst.ctl(&["domain", "list"]);
    assert_eq!(code(&out), 72);
    assert!(
        stderr(&out).contains("no user database"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn sighup_reopens_the_database() {
    let mut inst = Instance::new();
    inst.ctl_ok(&["domain", "add", "example.test"]);
    inst.ctl_ok(&["user", "add", "u@example.test"]);
    start_authd(&mut inst);
    // Replace the database behind kmp-authd's back, as a restore would.
    let db = inst.path().join("db");
    let dump = inst.ctl_ok(&["db", "dump"]);
    std::fs::rename(&db, inst.path().join("db.old")).unwrap();
    let out = inst.ctl_stdin(&["db", "load"], Some(dump.as_bytes()));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    inst.ctl_ok(&["user", "add", "new@example.test"]);
    let pid = inst.pid("kmp-authd").unwrap().to_string();
    let st = std::process::Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .unwrap();
    assert!(st.success());
    common::wait_until(std::time::Duration::from_secs(10), || {
        inst.log("kmp-authd").contains("re-opened")
    })
    .expect("kmp-authd re-opened the database");
    let mut c = Client::connect(&socket(&inst)).unwrap();
    match c
        .call(Request::Lookup {
            address: "new@example.test".into(),
        })
        .unwrap()
    {
        Reply::Found {
            entry: Entry::User { user },
            ..
        } => assert_eq!(user.address, "new@example.test"),
        r => panic!("{r:?}"),
    }
    // SIGTERM: a clean end, the socket and the pid file gone.
    let st = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(st.success());
    let run = inst.path().join("run");
    common::wait_until(std::time::Duration::from_secs(10), || {
        !run.join("kmp-authd.pid").exists() && !run.join("authd.sock").exists()
    })
    .expect("kmp-authd removed its pid file and socket");
}

#[test]
fn db_load_shows_progress_on_a_terminal() {
    let inst = Instance::new();
    let file = inst.path().join("many.jsonl");
    let mut text = String::from("{\"type\":\"domain\",\"name\":\"example.test\"}\n");
    for i in 0..50_000 {
        text.push_str(&format!(
            "{{\"type\":\"user\",\"address\":\"u{i}@example.test\",\"password\":\"{}\"}}\n",
            IMPORTED[0].1
        ));
    }
    std::fs::write(&file, text).unwrap();
    // util-linux script(1) gives kmpctl a terminal.
    let cmd = format!(
        "{} --config {} db load {}",
        common::bin("kmpctl").display(),
        inst.config().display(),
        file.display()
    );
    let out = common::tool("script")
        .args(["-qec", &cmd, "/dev/null"])
        .output()
        .unwrap();
    let seen = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{seen}");
    assert!(
        seen.contains("50000 users ("),
        "no progress shown: {seen:?}"
    );
    assert!(seen.contains("loaded 1 domain, 50000 users"), "{seen:?}");
    // Without a terminal, no progress line.
    let plain = inst.ctl(&["db", "load", "--replace", file.to_str().unwrap()]);
    assert_eq!(code(&plain), 0);
    assert!(!stderr(&plain).contains('\r'), "{}", stderr(&plain));
}

/// The median of `v`, in seconds.
fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

#[test]
fn login_time_does_not_tell_an_unknown_user_from_a_wrong_password() {
    let mut inst = Instance::new();
    common::set_config(&inst, "system", "default_domain = \"example.test\"");
    inst.ctl_ok(&["domain", "add", "example.test"]);
    let out = inst.ctl_stdin(
        &["user", "add", "bob@example.test", "--password-stdin"],
        Some(b"s3cret\n"),
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    start_authd(&mut inst);
    let mut c = Client::connect(&socket(&inst)).unwrap();
    // No address, so no ban can cut the series short.
    let mut attempt = |user: &str| {
        let t = std::time::Instant::now();
        let r = c
            .call(Request::Login {
                user: user.into(),
                password: "wrong password".into(),
                service: Service::Imap,
                ip: None,
            })
            .unwrap();
        let spent = t.elapsed().as_secs_f64();
        assert!(
            matches!(
                r,
                Reply::LoginFailed {
                    reason: LoginFailure::BadCredentials
                }
            ),
            "{r:?}"
        );
        spent
    };
    attempt("bob@example.test");
    attempt("nobody@example.test");
    // Interleaved, so that a burst of load on a shared machine hits both kinds.
    let (mut known, mut unknown, mut no_domain) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..11 {
        known.push(attempt("bob@example.test"));
        unknown.push(attempt("nobody@example.test"));
        no_domain.push(attempt("nobody@elsewhere.test"));
    }
    let (k, u, n) = (median(known), median(unknown), median(no_domain));
    eprintln!("login times: known {k:.6}s, unknown {u:.6}s, unknown domain {n:.6}s");
    // A `$6$` hash costs milliseconds, a failed lookup microseconds: without
    // the dummy hash an unknown user would answer ten times faster or more.
    assert!(
        u >= k / 2.0 && n >= k / 2.0,
        "an unknown user answers faster: known {k:.6}s, unknown {u:.6}s, unknown domain {n:.6}s"
    );
}

/// The daemons' way of asking (`authd::call`): the connection is kept for
/// the next request, a kept connection that kmp-authd closed (a restart)
/// is never handed out, and with kmp-authd down the answer is "not
/// running", not a wait.
#[test]
fn daemons_keep_their_connection_across_requests_and_restarts() {
    use kmpromail::ipc::authd::{self, AsyncClient, ClientError};
    let mut inst = Instance::new();
    inst.ctl_ok(&["domain", "add", "example.test"]);
    let out = inst.ctl_stdin(
        &["user", "add", "kept@example.test", "--password-stdin"],
        Some(b"pw\n"),
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    start_authd(&mut inst);
    let path = socket(&inst);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let lookup = || Request::Lookup {
        address: "kept@example.test".into(),
    };
    let found = |r: Reply| matches!(r, Reply::Found { .. });
    rt.block_on(async {
        assert!(found(authd::call(&path, lookup()).await.unwrap()));
        // The next request gets the same connection back.
        let mut c = AsyncClient::checkout(&path).await.unwrap();
        assert!(
            c.reused(),
            "the connection of the last request was not kept"
        );
        assert!(found(c.call(lookup()).await.unwrap()));
        c.keep(&path);
    });

    inst.kill("kmp-authd");
    rt.block_on(async {
        match authd::call(&path, lookup()).await {
            Err(ClientError::Unavailable(..)) => {}
            other => panic!("with kmp-authd down: {:?}", other.map(|_| ())),
        }
    });
    start_authd(&mut inst);
    rt.block_on(async {
        // What was kept before the restart is closed: a new connection serves.
        assert!(found(authd::call(&path, lookup()).await.unwrap()));
        assert!(AsyncClient::checkout(&path).await.unwrap().reused());
    });
}
