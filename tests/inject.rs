//! kmp-inject (sendmail) as local programs use it: `-bs` dialogues on
//! standard input, the message size limit, and, as root, the installed
//! shape: set-group-id `kmpdrop` with `-C` and `KMPROMAIL_CONFIG` ignored
//! for ordinary callers, and `kmpctl setup`/`check` owning its mode. What was
//! queued is read back from the queue's drop directory; no daemon runs.
mod common;

use std::fs;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::{bin, Instance};
use kmpromail::queue::incoming::{read_dropped, read_message};
use kmpromail::queue::QueueId;

/// The forged transaction hidden behind a fake end of data.
const SMUGGLED: &[u8] = b"MAIL FROM:<evil@forged.test>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\nFrom: <ceo@example.test>\r\nSubject: smuggled\r\n\r\nPay now.";

/// Runs `program args` with `input` written in `parts` (a pause between
/// them), as `sendmail -bs` callers and pipes do.
fn run_parts(program: &Path, args: &[&str], parts: &[&[u8]], env: &[(&str, &str)]) -> Output {
    let mut child = Command::new(program)
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            std::thread::sleep(Duration::from_millis(30));
        }
        // An early exit (a refused size) closes the pipe: that is fine.
        if stdin.write_all(p).and_then(|_| stdin.flush()).is_err() {
            break;
        }
    }
    drop(stdin);
    child.wait_with_output().unwrap()
}

fn inject(inst: &Instance, args: &[&str], parts: &[&[u8]]) -> Output {
    let conf = inst.config();
    let mut a = vec!["-C", conf.to_str().unwrap()];
    a.extend_from_slice(args);
    run_parts(&bin("kmp-inject"), &a, parts, &[])
}

/// The codes of the replies on `-bs`'s standard output (last line of each).
fn codes(out: &Output) -> Vec<String> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.as_bytes().get(3) != Some(&b'-'))
        .map(|l| {
            let mut w = l.split(' ');
            let code = w.next().unwrap_or("").to_string();
            match w.next() {
                Some(s) if s.starts_with(|c: char| c.is_ascii_digit()) && s.contains('.') => {
                    format!("{code} {s}")
                }
                _ => code,
            }
        })
        .collect()
}

/// Queued messages (recipients, bytes) and files left in incoming/tmp.
fn queued(inst: &Instance) -> (Vec<(Vec<String>, String)>, usize) {
    let dir = inst.path().join("queue/incoming");
    let names = |d: &str| -> Vec<String> {
        fs::read_dir(dir.join(d))
            .map(|d| {
                d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    };
    let msgs = names("new")
        .iter()
        .map(|id| {
            let qid: QueueId = id.parse().unwrap();
            let env = read_dropped(&dir, &qid).unwrap();
            let rcpts = env
                .envelope
                .recipients
                .iter()
                .map(|r| r.address.clone())
                .collect();
            let body = read_message(&dir, &qid).unwrap();
            (rcpts, String::from_utf8_lossy(&body).into_owned())
        })
        .collect();
    (msgs, names("tmp").len())
}

/// Every fake end of data (as in tests/smuggling.rs).
fn fake_ends() -> Vec<Vec<u8>> {
    let before: &[&[u8]] = &[b"\n", b"\r", b"\r\n", b"\n\r", b"\r\r", b"\n\n"];
    let after: &[&[u8]] = &[b"\n", b"\r", b"\r\n", b"\n\r", b"\r\r", b"\n\n", b"\r\r\n"];
    let mut out = Vec::new();
    for b in before {
        for a in after {
            let t = [*b, b".", *a].concat();
            if !t.windows(5).any(|w| w == b"\r\n.\r\n") {
                out.push(t);
            }
        }
    }
    out
}

const ENVELOPE: &[u8] =
    b"EHLO client.test\r\nMAIL FROM:<news@example.test>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\n";

#[test]
fn sendmail_bs_smtp_smuggling_fake_ends_neither_end_data_nor_run_commands() {
    let inst = Instance::new();
    let fakes = fake_ends();
    assert!(fakes.len() >= 40);
    for fake in &fakes {
        let head = [ENVELOPE, b"Subject: hello\r\n\r\nHello", fake].concat();
        let tail = [SMUGGLED, b"\r\n.\r\nQUIT\r\n"].concat();
        for split in [false, true] {
            let out = if split {
                inject(&inst, &["-bs"], &[&head, &tail])
            } else {
                inject(&inst, &["-bs"], &[&[&head[..], &tail].concat()])
            };
            assert_eq!(out.status.code(), Some(0));
            // One answer at the real end (a bare CR or LF: refused), then
            // QUIT's; the smuggled MAIL, RCPT and DATA got none.
            assert_eq!(
                codes(&out),
                [
                    "220",
                    "250",
                    "250 2.1.0",
                    "250 2.1.5",
                    "354",
                    "550 5.6.0",
                    "221 2.0.0"
                ],
                "fake end {fake:?}, split {split}: {}",
                String::from_utf8_lossy(&out.stdout)
            );
        }
    }
    let (msgs, tmp) = queued(&inst);
    assert!(msgs.is_empty(), "queued: {msgs:?}");
    assert_eq!(tmp, 0);
}

#[test]
fn sendmail_bs_uses_the_smtp_parser_and_ends_data_only_at_crlf_dot_crlf() {
    let inst = Instance::new();
    // The quoted transaction stays in the body; a bare name is qualified;
    // a pipelined second message with dot-stuffing; BDAT (not offered) is
    // skipped by its count, never read as commands.
    let script = [
        b"EHLO client.test\r\nMAIL FROM:<news@example.test>\r\nRCPT TO:<bob>\r\nRCPT TO:<bad address>\r\nDATA\r\n".as_slice(),
        b"Subject: quoted\r\n\r\n",
        SMUGGLED,
        b"\r\n.\r\n",
        b"MAIL FROM:<>\r\nRCPT TO:<carol@example.test>\r\nDATA\r\nSubject: two\r\n\r\n..dotted\r\n.\r\n",
        b"BDAT 23 LAST\r\nRSET\r\nMAIL FROM:<x@y>\r\nBOGUS\r\nQUIT\r\n",
    ]
    .concat();
    let out = inject(&inst, &["-bs"], &[&script]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        codes(&out),
        [
            "220",
            "250",
            "250 2.1.0",
            "250 2.1.5",
            "501 5.1.3",
            "354",
            "250 2.0.0",
            "250 2.1.0",
            "250 2.1.5",
            "354",
            "250 2.0.0",
            "502 5.5.1",
            "500 5.5.1",
            "221 2.0.0"
        ],
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let (mut msgs, tmp) = queued(&inst);
    assert_eq!(tmp, 0);
    assert_eq!(msgs.len(), 2, "{msgs:?}");
    msgs.sort();
    assert_eq!(msgs[0].0, ["bob@mx.example.test"]);
    assert!(msgs[0].1.contains("\n\nMAIL FROM:<evil@forged.test>\nRCPT TO:<alice@example.test>\nDATA\nFrom: <ceo@example.test>\n"), "{}", msgs[0].1);
    assert!(msgs[0].1.ends_with("\nPay now.\n"), "{}", msgs[0].1);
    assert_eq!(msgs[1].0, ["carol@example.test"]);
    assert!(msgs[1].1.ends_with("\n\n.dotted\n"), "{}", msgs[1].1);
    // End of input inside DATA: nothing queued, not a success.
    let out = inject(
        &inst,
        &["-bs"],
        &[&[ENVELOPE, b"Subject: cut\r\n\r\nno end"].concat()],
    );
    assert_eq!(out.status.code(), Some(74));
    assert_eq!(queued(&inst).0.len(), 2);
}

#[test]
fn sendmail_enforces_the_size_limit_while_reading_stdin() {
    let inst = Instance::new();
    let conf = fs::read_to_string(inst.config()).unwrap();
    let conf = conf.replace("[smtpd]\n", "[smtpd]\nmax_message_size = \"4K\"\n");
    fs::write(inst.config(), conf).unwrap();
    // Far over the limit: refused with EX_DATAERR, nothing queued, and the
    // input is not read to its end (the pipe is closed on the writer).
    let mut big = b"Subject: big\n\n".to_vec();
    while big.len() < 4 << 20 {
        big.extend_from_slice(&[b'x'; 79]);
        big.push(b'\n');
    }
    let out = inject(&inst, &["bob@example.test"], &[&big]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(65), "{err}");
    assert!(
        err.contains("message too big") && err.contains("4096"),
        "{err}"
    );
    // One octet over is too much; the limit itself is not.
    let exact = |n: usize| {
        let mut m = b"Subject: s\n\n".to_vec();
        m.resize(n - 1, b'y');
        m.push(b'\n');
        m
    };
    let out = inject(&inst, &["bob@example.test"], &[&exact(4097)]);
    assert_eq!(out.status.code(), Some(65));
    assert_eq!(queued(&inst), (Vec::new(), 0));
    let out = inject(&inst, &["bob@example.test"], &[&exact(4096)]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(queued(&inst).0.len(), 1);
    // -bs: the same limit, announced with SIZE; a message over it is 552
    // and the session goes on.
    let big_crlf: Vec<u8> = big
        .iter()
        .flat_map(|&b| {
            if b == b'\n' {
                vec![b'\r', b'\n']
            } else {
                vec![b]
            }
        })
        .collect();
    let script = [
        ENVELOPE,
        &big_crlf,
        b"\r\n.\r\nMAIL FROM:<a@example.test> SIZE=5000\r\nQUIT\r\n",
    ]
    .concat();
    let out = inject(&inst, &["-bs"], &[&script]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("250-SIZE 4096\r\n"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(
        codes(&out),
        [
            "220",
            "250",
            "250 2.1.0",
            "250 2.1.5",
            "354",
            "552 5.3.4",
            "552 5.3.4",
            "221 2.0.0"
        ]
    );
    let (msgs, tmp) = queued(&inst);
    assert_eq!((msgs.len(), tmp), (1, 0));
}

/// Whether the test may run as root: says why not when it may not.
fn root_or_skip() -> bool {
    if !nix::unistd::Uid::effective().is_root() {
        eprintln!("skipped: set-group-id and kmpctl setup need root (CI runs this as root)");
        return false;
    }
    true
}

/// `argv` as nobody:nogroup with no other groups.
fn as_nobody(argv: &[&str], env: &[(&str, &str)], input: &[u8]) -> Output {
    let mut a = vec![
        "--reuid",
        "nobody",
        "--regid",
        "nogroup",
        "--clear-groups",
        "--",
    ];
    a.extend_from_slice(argv);
    run_parts(Path::new("setpriv"), &a, &[input], env)
}

/// A copy of `src` in `dir`, owned root:`group`, with `mode`.
fn installed_copy(src: &Path, dir: &Path, group: &str, mode: u32) -> PathBuf {
    let dst = dir.join(src.file_name().unwrap());
    fs::copy(src, &dst).unwrap();
    let gid = nix::unistd::Group::from_name(group).unwrap().unwrap().gid;
    nix::unistd::chown(&dst, Some(nix::unistd::Uid::from_raw(0)), Some(gid)).unwrap();
    fs::set_permissions(&dst, fs::Permissions::from_mode(mode)).unwrap();
    dst
}

#[test]
fn setgid_sendmail_ignores_the_callers_config_and_quotes_no_config_lines() {
    if !root_or_skip() {
        return;
    }
    let system = Path::new(kmpromail::config::DEFAULT_PATH);
    if system.exists() {
        eprintln!(
            "skipped: {} exists and a set-group-id kmp-inject would queue into that system",
            system.display()
        );
        return;
    }
    // "mail" stands in for kmpdrop: a group nobody is not in.
    if nix::unistd::Group::from_name("mail")
        .ok()
        .flatten()
        .is_none()
    {
        eprintln!("skipped: no group mail to make a set-group-id copy with");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    // Does this system honour set-group-id at all (no nosuid mount, no
    // no_new_privs)? `id -g` in a set-group-id copy says.
    let id = installed_copy(Path::new("/usr/bin/id"), dir.path(), "mail", 0o2755);
    let gid = as_nobody(&[id.to_str().unwrap(), "-g"], &[], b"");
    if String::from_utf8_lossy(&gid.stdout).trim() != "8" {
        eprintln!("skipped: set-group-id has no effect here");
        return;
    }
    let inject = installed_copy(&bin("kmp-inject"), dir.path(), "mail", 0o2755);
    // A file only the group may read, that a config error would quote.
    let secret = dir.path().join("secret.toml");
    fs::write(&secret, "[system]\nSECRET_TOKEN_4711 = \"hunter2\"\n").unwrap();
    nix::unistd::chown(
        &secret,
        None,
        Some(nix::unistd::Group::from_name("mail").unwrap().unwrap().gid),
    )
    .unwrap();
    fs::set_permissions(&secret, fs::Permissions::from_mode(0o640)).unwrap();
    let s = secret.to_str().unwrap();
    assert!(
        !as_nobody(&["cat", s], &[], b"").status.success(),
        "nobody can read the secret itself"
    );
    // Root is not restricted: it gets the config it names, errors quoted.
    let out = run_parts(&inject, &["-C", s, "root"], &[b"x\n"], &[]);
    assert_eq!(out.status.code(), Some(78));
    assert!(String::from_utf8_lossy(&out.stderr).contains("SECRET_TOKEN_4711"));
    // nobody through -C, then through KMPROMAIL_CONFIG: both ignored, the
    // system file read (absent here: 78), nothing of the secret shown.
    let p = inject.to_str().unwrap();
    for (args, env) in [
        (vec![p, "-C", s, "root"], vec![]),
        (vec![p, "root"], vec![("KMPROMAIL_CONFIG", s)]),
        (vec![p, "-bs"], vec![("KMPROMAIL_CONFIG", s)]),
    ] {
        let out = as_nobody(&args, &env, b"Subject: x\n\nhi\n");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(78), "{args:?}: {err}");
        assert!(!err.contains("SECRET") && !err.contains("hunter2"), "{err}");
        assert!(!String::from_utf8_lossy(&out.stdout).contains("SECRET"));
        assert!(err.contains("ignoring -C and KMPROMAIL_CONFIG"), "{err}");
        assert!(err.contains(kmpromail::config::DEFAULT_PATH), "{err}");
    }
}

#[test]
fn kmpctl_setup_makes_sendmail_setgid_kmpdrop_and_check_says_when_it_is_not() {
    if !root_or_skip() {
        return;
    }
    // kmpctl and kmp-inject as `make install` puts them: side by side.
    let sbin = tempfile::tempdir().unwrap();
    fs::set_permissions(sbin.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let kmpctl = sbin.path().join("kmpctl");
    fs::copy(bin("kmpctl"), &kmpctl).unwrap();
    let inject = sbin.path().join("kmp-inject");
    fs::copy(bin("kmp-inject"), &inject).unwrap();
    fs::set_permissions(&inject, fs::Permissions::from_mode(0o755)).unwrap();
    // A system-shaped instance: the privilege keys at their defaults.
    let inst = Instance::new();
    fs::set_permissions(inst.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let text: String = fs::read_to_string(inst.config())
        .unwrap()
        .lines()
        .filter(|l| !l.contains(" = \"\"") || l.starts_with("syslog_socket"))
        .map(|l| format!("{l}\n"))
        .collect();
    fs::write(inst.config(), text).unwrap();
    let ctl = |args: &[&str]| {
        Command::new(&kmpctl)
            .arg("--config")
            .arg(inst.config())
            .args(args)
            .output()
            .unwrap()
    };
    let out = ctl(&["setup"]);
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(said.contains("kmp-inject root:kmpdrop 2755"), "{said}");
    let md = fs::metadata(&inject).unwrap();
    let kmpdrop = nix::unistd::Group::from_name("kmpdrop")
        .unwrap()
        .unwrap()
        .gid;
    assert_eq!(md.mode() & 0o7777, 0o2755);
    assert_eq!((md.uid(), md.gid()), (0, kmpdrop.as_raw()));
    assert!(ctl(&["check"]).status.success());
    // Installed again by hand (mode 0755): check says what is wrong.
    fs::set_permissions(&inject, fs::Permissions::from_mode(0o755)).unwrap();
    let out = ctl(&["check"]);
    assert_eq!(out.status.code(), Some(78));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains(&format!(
            "{}: owner root:kmpdrop mode 0755, should be root:kmpdrop mode 2755",
            inject.display()
        )),
        "{said}"
    );
    assert!(ctl(&["setup"]).status.success());
    assert_eq!(fs::metadata(&inject).unwrap().mode() & 0o7777, 0o2755);
    assert!(ctl(&["check"]).status.success());
}
