//! Session transcripts without sockets: lines in, replies out.
use super::*;
use crate::sieved::proto::Decoder;

fn policy(plaintext_ok: bool) -> Policy {
    Policy {
        tls_available: true,
        tls_active: false,
        plaintext_ok,
        max_errors: 5,
        limits: Limits {
            max_scripts: 2,
            max_script_size: 100,
            quota_bytes: 1000,
        },
        extensions: Extensions::all(),
        max_redirects: 4,
    }
}

/// Feeds `input` through the decoder and the session; returns the replies
/// as text, answering a login for u@example.test / secret from `home`.
fn talk(s: &mut Session, home: &std::path::Path, input: &str) -> String {
    let mut d = Decoder::new(200);
    let mut buf = input.as_bytes().to_vec();
    let mut out = String::new();
    while let Some(l) = d.next(&mut buf) {
        let mut acts: VecDeque<Action> = s.line(l).into();
        while let Some(a) = acts.pop_front() {
            match a {
                Action::Reply(r) => out.push_str(&String::from_utf8_lossy(&r)),
                Action::Login { user, password } => {
                    let r = if user == "u@example.test" && password.as_bytes() == b"secret" {
                        LoginResult::Ok {
                            address: user,
                            home: home.to_path_buf(),
                        }
                    } else {
                        LoginResult::Failed(LoginFailure::BadCredentials)
                    };
                    for m in s.login_result(r).into_iter().rev() {
                        acts.push_front(m);
                    }
                }
                Action::Close => out.push_str("<close>\n"),
                Action::ReportAbuse => out.push_str("<abuse>\n"),
                Action::StartTls => out.push_str("<tls>\n"),
                Action::Log(_) => {}
            }
        }
    }
    out
}

use std::collections::VecDeque;

const PLAIN: &str = "AUTHENTICATE \"PLAIN\" \"AHVAZXhhbXBsZS50ZXN0AHNlY3JldA==\"\r\n";

#[test]
fn greeting_lists_the_capabilities() {
    let s = Session::new(policy(true));
    let Action::Reply(r) = &s.greeting()[0] else {
        panic!()
    };
    let g = String::from_utf8_lossy(r);
    assert!(g.starts_with("\"IMPLEMENTATION\" \"Kmpromail "), "{g}");
    for l in [
        "\"SASL\" \"PLAIN LOGIN\"",
        "\"STARTTLS\"",
        "\"NOTIFY\" \"mailto\"",
        "\"VERSION\" \"1.0\"",
        "\"MAXREDIRECTS\" \"4\"",
    ] {
        assert!(g.contains(l), "{l} in {g}");
    }
    assert!(g.contains(&format!("\"SIEVE\" \"{}\"", Extensions::all().names())));
    assert!(g.ends_with("OK \"Kmpromail ManageSieve ready.\"\r\n"));
}

#[test]
fn no_login_without_tls_off_loopback() {
    let d = tempfile::tempdir().unwrap();
    let mut s = Session::new(policy(false));
    let Action::Reply(r) = &s.greeting()[0] else {
        panic!()
    };
    assert!(String::from_utf8_lossy(r).contains("\"SASL\" \"\"\r\n"));
    let out = talk(&mut s, d.path(), PLAIN);
    assert!(out.starts_with("NO (ENCRYPT-NEEDED)"), "{out}");
    let out = talk(&mut s, d.path(), "STARTTLS\r\n");
    assert_eq!(out, "OK \"Begin TLS negotiation now.\"\r\n<tls>\n");
    let Action::Reply(r) = &s.tls_started()[0] else {
        panic!()
    };
    let caps = String::from_utf8_lossy(r).into_owned();
    assert!(
        caps.contains("\"SASL\" \"PLAIN LOGIN\"") && !caps.contains("STARTTLS"),
        "{caps}"
    );
    assert_eq!(talk(&mut s, d.path(), PLAIN), "OK \"Logged in.\"\r\n");
}

#[test]
fn login_then_scripts() {
    let d = tempfile::tempdir().unwrap();
    let mut s = Session::new(policy(true));
    assert!(talk(&mut s, d.path(), "LISTSCRIPTS\r\n").starts_with("NO \"Authenticate first"));
    // PLAIN without an initial response: an empty challenge first.
    let out = talk(
        &mut s,
        d.path(),
        "AUTHENTICATE \"PLAIN\"\r\n\"AHVAZXhhbXBsZS50ZXN0AHdyb25n\"\r\n",
    );
    assert_eq!(out, "\"\"\r\nNO \"Authentication failed.\"\r\n");
    // LOGIN.
    let out = talk(
        &mut s,
        d.path(),
        "AUTHENTICATE \"LOGIN\"\r\n{20+}\r\ndUBleGFtcGxlLnRlc3Q=\r\n\"c2VjcmV0\"\r\n",
    );
    assert_eq!(
        out,
        "\"VXNlcm5hbWU6\"\r\n\"UGFzc3dvcmQ6\"\r\nOK \"Logged in.\"\r\n"
    );
    assert_eq!(
        talk(&mut s, d.path(), "PUTSCRIPT \"a\" {0+}\r\n\r\n"),
        "OK \"Stored.\"\r\n"
    );
    let out = talk(&mut s, d.path(), "PUTSCRIPT \"b\" {6+}\r\nbogus\n\r\n");
    assert!(out.starts_with("NO \"line 1"), "{out}");
    assert_eq!(
        talk(&mut s, d.path(), "SETACTIVE \"a\"\r\n"),
        "OK \"Script activated.\"\r\n"
    );
    assert_eq!(
        talk(&mut s, d.path(), "LISTSCRIPTS\r\n"),
        "\"a\" ACTIVE\r\nOK \"Listscripts completed.\"\r\n"
    );
    assert_eq!(
        talk(&mut s, d.path(), "GETSCRIPT \"a\"\r\n"),
        "{0}\r\n\r\nOK \"Getscript completed.\"\r\n"
    );
    assert!(talk(&mut s, d.path(), "DELETESCRIPT \"a\"\r\n").starts_with("NO (ACTIVE)"));
    assert!(talk(&mut s, d.path(), "GETSCRIPT \"zz\"\r\n").starts_with("NO (NONEXISTENT)"));
    assert!(talk(&mut s, d.path(), "HAVESPACE \"x\" 101\r\n").starts_with("NO (QUOTA/MAXSIZE)"));
    assert_eq!(talk(&mut s, d.path(), "HAVESPACE \"x\" 10\r\n"), "OK\r\n");
    assert!(talk(&mut s, d.path(), "GETSCRIPT \"../x\"\r\n").starts_with("NO \"Bad script name"));
    assert_eq!(
        talk(&mut s, d.path(), "NOOP \"t1\"\r\n"),
        "OK (TAG \"t1\") \"Done\"\r\n"
    );
    assert_eq!(
        talk(&mut s, d.path(), "UNAUTHENTICATE\r\n"),
        "OK \"Unauthenticate completed.\"\r\n"
    );
    assert!(talk(&mut s, d.path(), "LISTSCRIPTS\r\n").starts_with("NO"));
}

#[test]
fn too_many_errors_end_the_session() {
    let d = tempfile::tempdir().unwrap();
    let mut s = Session::new(policy(true));
    let out = talk(&mut s, d.path(), &"FOO\r\n".repeat(6));
    assert!(
        out.ends_with("BYE \"Too many errors.\"\r\n<abuse>\n<close>\n"),
        "{out}"
    );
    assert_eq!(out.matches("NO \"Unknown command FOO.\"").count(), 4);
    assert!(s.is_closed());
}
