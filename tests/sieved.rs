//! kmp-sieved as clients see it: Debian's sieve-connect (STARTTLS, SASL
//! PLAIN) uploading, checking, activating, listing, downloading and
//! deleting scripts; a raw socket for literals, RENAMESCRIPT, quotas,
//! Chinese names, bad input and another user's scripts.
mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::Duration;

use common::Instance;

const U: &str = "u@example.test";
const V: &str = "v@example.test";

/// An instance with kmp-authd and kmp-sieved, users u (password "secret")
/// and v ("other"), with `(section, line)` settings.
fn start(config: &[(&str, &str)]) -> Instance {
    let mut inst = Instance::new();
    for (s, l) in config {
        common::set_config(&inst, s, l);
    }
    inst.ctl_ok(&["domain", "add", "example.test"]);
    for (u, p) in [(U, "secret\n"), (V, "other\n")] {
        let out = inst.ctl_stdin(&["user", "add", u, "--password-stdin"], Some(p.as_bytes()));
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    inst.spawn("kmp-authd", &[]);
    inst.wait_socket("authd.sock");
    inst.spawn("kmp-sieved", &[]);
    let pid = inst.path().join("run/kmp-sieved.pid");
    common::wait_until(Duration::from_secs(10), || pid.exists())
        .unwrap_or_else(|_| panic!("kmp-sieved never got ready: {}", inst.log("kmp-sieved")));
    inst
}

fn maildir(inst: &Instance, local: &str) -> PathBuf {
    inst.path().join("mail/example.test").join(local)
}

/// Runs sieve-connect as `user` with `args`.
fn sieve_connect(inst: &Instance, user: &str, password: &str, args: &[&str]) -> Output {
    let port = (inst.base + 190).to_string();
    let mut child = common::tool("sieve-connect")
        .args([
            "--server",
            "127.0.0.1",
            "--port",
            &port,
            "--nosrv",
            "--notlsverify",
        ])
        .args(["--user", user, "--passwordfd", "0", "--authmech", "PLAIN"])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run sieve-connect");
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(format!("{password}\n").as_bytes()).unwrap();
    drop(stdin);
    child.wait_with_output().unwrap()
}

fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "sieve-connect failed: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

const RULES: &str = "require [\"fileinto\"];\r\nif header :contains \"subject\" \"report\" {\r\n  fileinto \"Reports\";\r\n}\r\n";
/// An error on line 3: a test where a command belongs.
const BAD: &str = "require \"fileinto\";\r\n# fine so far\r\nif { keep; }\r\n";

#[test]
fn sieve_connect_uploads_checks_activates_lists_downloads_and_deletes() {
    let inst = start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let local = dir.path().join("rules.sieve");
    std::fs::write(&local, RULES).unwrap();
    let l = local.to_str().unwrap();
    ok(&sieve_connect(
        &inst,
        U,
        "secret",
        &["--upload", "--localsieve", l, "--remotesieve", "rules"],
    ));
    let home = maildir(&inst, "u");
    assert_eq!(
        std::fs::read_to_string(home.join("sieve/rules.sieve")).unwrap(),
        RULES
    );
    let list = ok(&sieve_connect(&inst, U, "secret", &["--list"]));
    assert!(list.contains("rules"), "{list}");
    ok(&sieve_connect(
        &inst,
        U,
        "secret",
        &["--activate", "--remotesieve", "rules"],
    ));
    assert_eq!(
        std::fs::read_link(home.join(".dovecot.sieve")).unwrap(),
        Path::new("sieve/rules.sieve")
    );
    let list = ok(&sieve_connect(&inst, U, "secret", &["--list"]));
    assert!(
        list.contains("rules") && list.to_lowercase().contains("activ"),
        "{list}"
    );
    let back = dir.path().join("back.sieve");
    ok(&sieve_connect(
        &inst,
        U,
        "secret",
        &[
            "--download",
            "--remotesieve",
            "rules",
            "--localsieve",
            back.to_str().unwrap(),
        ],
    ));
    assert_eq!(
        std::fs::read_to_string(&back)
            .unwrap()
            .replace("\r\n", "\n"),
        RULES.replace("\r\n", "\n")
    );
    // A bad script: refused with its line; nothing stored.
    let bad = dir.path().join("bad.sieve");
    std::fs::write(&bad, BAD).unwrap();
    let b = bad.to_str().unwrap();
    let out = sieve_connect(&inst, U, "secret", &["--checkscript", "--localsieve", b]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success() && text.contains("line 3"), "{text}");
    let out = sieve_connect(
        &inst,
        U,
        "secret",
        &["--upload", "--localsieve", b, "--remotesieve", "bad"],
    );
    assert!(!out.status.success());
    assert!(!home.join("sieve/bad.sieve").exists());
    // The active script cannot be deleted until it is deactivated.
    let out = sieve_connect(&inst, U, "secret", &["--delete", "--remotesieve", "rules"]);
    assert!(!out.status.success());
    assert!(home.join("sieve/rules.sieve").exists());
    ok(&sieve_connect(&inst, U, "secret", &["--deactivate"]));
    assert!(std::fs::symlink_metadata(home.join(".dovecot.sieve")).is_err());
    ok(&sieve_connect(
        &inst,
        U,
        "secret",
        &["--delete", "--remotesieve", "rules"],
    ));
    assert!(!home.join("sieve/rules.sieve").exists());
    // A wrong password is refused.
    let out = sieve_connect(&inst, U, "wrong", &["--list"]);
    assert!(!out.status.success());
    let log = inst.log("kmp-sieved");
    assert!(
        log.contains("starttls") && log.contains("login failed"),
        "{log}"
    );
}

/// A plain ManageSieve client.
struct Client {
    r: BufReader<TcpStream>,
    w: TcpStream,
}

impl Client {
    fn connect(inst: &Instance) -> (Client, String) {
        let s = TcpStream::connect(inst.addr(190)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut c = Client {
            r: BufReader::new(s.try_clone().unwrap()),
            w: s,
        };
        let g = c.response();
        (c, g)
    }

    /// Everything up to and including the OK, NO or BYE line.
    fn response(&mut self) -> String {
        let mut all = String::new();
        loop {
            let mut line = String::new();
            if self.r.read_line(&mut line).unwrap() == 0 {
                return all;
            }
            // A literal: read its octets whole.
            if let Some(n) = line
                .trim_end()
                .strip_prefix('{')
                .and_then(|x| x.strip_suffix('}'))
            {
                let mut b = vec![0; n.parse().unwrap()];
                self.r.read_exact(&mut b).unwrap();
                all.push_str(&line);
                all.push_str(&String::from_utf8_lossy(&b));
                continue;
            }
            all.push_str(&line);
            if line.starts_with("OK") || line.starts_with("NO") || line.starts_with("BYE") {
                return all;
            }
        }
    }

    fn cmd(&mut self, text: &[u8]) -> String {
        eprintln!(
            "C: {}",
            String::from_utf8_lossy(&text[..text.len().min(60)])
        );
        self.w.write_all(text).unwrap();
        self.response()
    }

    fn login(inst: &Instance, user: &str, pass: &str) -> Client {
        use base64::Engine;
        let (mut c, _) = Client::connect(inst);
        let b = base64::engine::general_purpose::STANDARD.encode(format!("\0{user}\0{pass}"));
        let r = c.cmd(format!("AUTHENTICATE \"PLAIN\" \"{b}\"\r\n").as_bytes());
        assert!(r.starts_with("OK"), "{r}");
        c
    }

    fn put(&mut self, name: &str, script: &str) -> String {
        let mut cmd = format!("PUTSCRIPT \"{name}\" {{{}+}}\r\n", script.len()).into_bytes();
        cmd.extend_from_slice(script.as_bytes());
        cmd.extend_from_slice(b"\r\n");
        self.cmd(&cmd)
    }
}

#[test]
fn capabilities_literals_rename_and_chinese_names() {
    let inst = start(&[]);
    let (mut c, greeting) = Client::connect(&inst);
    for cap in [
        "\"IMPLEMENTATION\" \"Kmpromail",
        "\"SASL\" \"PLAIN LOGIN\"",
        "\"STARTTLS\"",
        "\"NOTIFY\" \"mailto\"",
        "\"VERSION\" \"1.0\"",
        "\"MAXREDIRECTS\" \"4\"",
        "\"SIEVE\" \"",
    ] {
        assert!(greeting.contains(cap), "{cap} in {greeting}");
    }
    assert!(
        greeting.contains("fileinto") && greeting.contains("vacation"),
        "{greeting}"
    );
    assert!(c.cmd(b"LISTSCRIPTS\r\n").starts_with("NO"));
    drop(c);
    let mut c = Client::login(&inst, U, "secret");
    assert_eq!(c.put("规则", "keep;\r\n"), "OK \"Stored.\"\r\n");
    // The synchronizing literal form is taken too.
    assert!(c
        .cmd(b"PUTSCRIPT \"b\" {7}\r\nstop;\r\n\r\n")
        .starts_with("OK"));
    assert!(c.cmd("SETACTIVE \"规则\"\r\n".as_bytes()).starts_with("OK"));
    let home = maildir(&inst, "u");
    assert!(home.join("sieve/规则.sieve").is_file());
    assert!(c
        .cmd("RENAMESCRIPT \"规则\" \"b\"\r\n".as_bytes())
        .starts_with("NO (ALREADYEXISTS)"));
    assert!(c
        .cmd("RENAMESCRIPT \"规则\" \"過濾\"\r\n".as_bytes())
        .starts_with("OK"));
    assert!(c
        .cmd(b"RENAMESCRIPT \"nope\" \"x\"\r\n")
        .starts_with("NO (NONEXISTENT)"));
    let list = c.cmd(b"LISTSCRIPTS\r\n");
    assert_eq!(
        list,
        "\"b\"\r\n\"過濾\" ACTIVE\r\nOK \"Listscripts completed.\"\r\n"
    );
    assert_eq!(
        std::fs::read_link(home.join(".dovecot.sieve")).unwrap(),
        Path::new("sieve/過濾.sieve")
    );
    assert_eq!(
        c.cmd("GETSCRIPT \"過濾\"\r\n".as_bytes()),
        "{7}\r\nkeep;\r\n\r\nOK \"Getscript completed.\"\r\n"
    );
    assert!(c
        .cmd(b"DELETESCRIPT \"nope\"\r\n")
        .starts_with("NO (NONEXISTENT)"));
    assert!(c
        .cmd("DELETESCRIPT \"過濾\"\r\n".as_bytes())
        .starts_with("NO (ACTIVE)"));
    assert!(c.cmd(b"DELETESCRIPT \"b\"\r\n").starts_with("OK"));
    assert!(c.cmd(b"SETACTIVE \"\"\r\n").starts_with("OK"));
    assert!(c.cmd(b"NOOP \"x\"\r\n").starts_with("OK (TAG \"x\")"));
    assert!(c.cmd(b"LOGOUT\r\n").starts_with("OK"));
}

#[test]
fn quotas_bad_names_and_bad_input_get_no_and_the_session_goes_on() {
    let inst = start(&[
        ("sieve", "max_scripts = 2"),
        ("sieve", "max_script_size = \"1K\""),
        ("sieve", "quota = \"2K\""),
    ]);
    let mut c = Client::login(&inst, U, "secret");
    let big = format!("{}keep;\r\n", "#".repeat(1100) + "\r\n");
    assert!(c.put("big", &big).starts_with("NO (QUOTA/MAXSIZE)"));
    assert!(c
        .cmd(b"HAVESPACE \"big\" 2000\r\n")
        .starts_with("NO (QUOTA/MAXSIZE)"));
    assert!(c.cmd(b"HAVESPACE \"x\" 100\r\n").starts_with("OK"));
    assert!(c.put("a", "keep;\r\n").starts_with("OK"));
    assert!(c.put("b", "keep;\r\n").starts_with("OK"));
    assert!(c.put("c", "keep;\r\n").starts_with("NO (QUOTA/MAXSCRIPTS)"));
    // Replacing one is fine.
    assert!(c.put("b", "discard;\r\n").starts_with("OK"));
    // A literal far past any script: refused, skipped, and the session goes on.
    let mut huge = b"PUTSCRIPT \"h\" {500000+}\r\n".to_vec();
    huge.extend(std::iter::repeat_n(b'x', 500000));
    huge.extend_from_slice(b"\r\n");
    assert!(c.cmd(&huge).starts_with("NO (QUOTA/MAXSIZE)"));
    for name in ["../../x", ".hidden", "a/b", "tab\there"] {
        let r = c.cmd(format!("GETSCRIPT \"{name}\"\r\n").as_bytes());
        assert!(r.starts_with("NO \"Bad script name"), "{name}: {r}");
    }
    assert!(c.cmd(b"GETSCRIPT {2+}\r\n\xff\xfe\r\n").starts_with("NO"));
    assert!(c
        .cmd(b"PUTSCRIPT \"n\" {2+}\r\n\xff\xfe\r\n")
        .starts_with("NO"));
    assert!(c.cmd(b"GETSCRIPT \"a\r\n").starts_with("NO"));
    assert!(c.cmd(b"FROB\r\n").starts_with("NO \"Unknown command"));
    assert!(c.cmd(b"CHECKSCRIPT {6+}\r\nkeep;\n\r\n").starts_with("OK"));
    let r = c.cmd(b"CHECKSCRIPT {13+}\r\nkeep;\nif { }\n\r\n");
    assert!(r.starts_with("NO") && r.contains("line 2"), "{r}");
    assert!(c.cmd(b"LISTSCRIPTS\r\n").contains("\"a\"\r\n\"b\"\r\nOK"));
    let home = maildir(&inst, "u");
    let names: Vec<String> = std::fs::read_dir(home.join("sieve"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 3, "{names:?}"); // a, b, tmp
    assert_eq!(
        std::fs::read_dir(home.join("sieve/tmp")).unwrap().count(),
        0
    );
}

#[test]
fn another_users_scripts_are_never_visible() {
    let inst = start(&[]);
    let mut u = Client::login(&inst, U, "secret");
    assert!(u.put("private", "keep;\r\n").starts_with("OK"));
    assert!(u.cmd(b"SETACTIVE \"private\"\r\n").starts_with("OK"));
    let mut v = Client::login(&inst, V, "other");
    assert_eq!(
        v.cmd(b"LISTSCRIPTS\r\n"),
        "OK \"Listscripts completed.\"\r\n"
    );
    assert!(v
        .cmd(b"GETSCRIPT \"private\"\r\n")
        .starts_with("NO (NONEXISTENT)"));
    assert!(v
        .cmd(b"DELETESCRIPT \"private\"\r\n")
        .starts_with("NO (NONEXISTENT)"));
    assert!(v
        .cmd(b"GETSCRIPT \"../u/sieve/private\"\r\n")
        .starts_with("NO \"Bad script name"));
    // Logging in as someone else through the authorization identity is refused.
    use base64::Engine;
    let (mut c, _) = Client::connect(&inst);
    let b = base64::engine::general_purpose::STANDARD.encode(format!("{U}\0{V}\0other"));
    assert!(c
        .cmd(format!("AUTHENTICATE \"PLAIN\" \"{b}\"\r\n").as_bytes())
        .starts_with("NO"));
    assert!(maildir(&inst, "u").join("sieve/private.sieve").is_file());
}

#[test]
fn failed_logins_and_garbage_end_in_bye() {
    let inst = start(&[("sieved", "max_errors = 3")]);
    let (mut c, _) = Client::connect(&inst);
    use base64::Engine;
    let b = base64::engine::general_purpose::STANDARD.encode(format!("\0{U}\0wrong"));
    let cmd = format!("AUTHENTICATE \"PLAIN\" \"{b}\"\r\n");
    assert!(c
        .cmd(cmd.as_bytes())
        .starts_with("NO \"Authentication failed.\""));
    assert!(c
        .cmd(b"AUTHENTICATE \"PLAIN\"\r\n\"*\"\r\n")
        .contains("NO \"Authentication cancelled.\""));
    assert!(c.cmd(b"GARBAGE\r\n").starts_with("NO"));
    assert!(c.cmd(b"GARBAGE\r\n").starts_with("BYE"));
    let mut rest = String::new();
    let _ = c.r.read_to_string(&mut rest);
    assert_eq!(rest, "");
}

#[test]
fn a_banned_address_gets_bye() {
    let inst = start(&[]);
    inst.ctl_ok(&["ban", "add", "127.0.0.1", "--time", "1h"]);
    let (_c, greeting) = Client::connect(&inst);
    assert!(greeting.starts_with("BYE"), "{greeting}");
    assert!(inst.log("kmp-sieved").contains("reason=banned"));
}
