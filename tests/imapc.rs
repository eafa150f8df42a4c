//! The IMAP client library (lib/imapc) against the real kmp-imapd: every
//! method over loopback, plain, STARTTLS and implicit TLS.
mod common;

use std::time::Duration;

use common::Instance;
use kmpromail::imapc::{BodyStructure, Client, Criteria, Endpoint, Error, Security, SortKey};

fn endpoint(inst: &Instance, security: Security) -> Endpoint {
    let port = match security {
        Security::Tls => inst.base + 993,
        _ => inst.base + 143,
    };
    Endpoint {
        host: "127.0.0.1".into(),
        port,
        security,
        ca_file: Some(inst.path().join("tls/cert.pem")),
        timeout: Duration::from_secs(30),
    }
}

fn login(inst: &Instance) -> Client {
    inst.wait_port(143);
    let mut c = Client::connect(&endpoint(inst, Security::Plain)).expect("connect");
    c.login("u@example.test", "secret").expect("login");
    c
}

#[test]
fn connect_login_list_select_logout() {
    let inst = common::imap_instance();
    inst.wait_port(143);
    let mut c = Client::connect(&endpoint(&inst, Security::Plain)).unwrap();
    assert!(c.has("imap4rev1") && c.has("AUTH=PLAIN"));
    c.id(&[("name", "kmp-webmail"), ("x-originating-ip", "192.0.2.7")])
        .unwrap();
    c.login("u@example.test", "secret").unwrap();
    assert!(
        c.has("UIDPLUS"),
        "capabilities after login: {:?}",
        c.capabilities()
    );
    let folders = c.list().unwrap();
    let inbox = folders
        .iter()
        .find(|f| f.name == "INBOX")
        .expect("INBOX listed");
    assert_eq!(inbox.status.map(|s| s.messages), Some(0));
    let sel = c.select("INBOX", false).unwrap();
    assert_eq!(sel.exists, 0);
    assert!(sel.uidvalidity > 0 && sel.uidnext > 0);
    assert!(!sel.read_only);
    let sel = c.select("inbox", true).unwrap();
    assert!(sel.read_only);
    c.logout().unwrap();
}

#[test]
fn refused_login_is_auth_without_detail() {
    let inst = common::imap_instance();
    inst.wait_port(143);
    let mut c = Client::connect(&endpoint(&inst, Security::Plain)).unwrap();
    assert!(matches!(
        c.login("u@example.test", "wrong"),
        Err(Error::Auth)
    ));
    let mut c = Client::connect(&endpoint(&inst, Security::Plain)).unwrap();
    assert!(matches!(
        c.login("nobody@example.test", "x"),
        Err(Error::Auth)
    ));
}

#[test]
fn implicit_tls_and_starttls_check_the_certificate() {
    let inst = common::imap_instance();
    inst.wait_port(993);
    for security in [Security::Tls, Security::StartTls] {
        let mut c = Client::connect(&endpoint(&inst, security))
            .unwrap_or_else(|e| panic!("{security:?}: {e}"));
        assert!(!c.has("STARTTLS"), "{security:?}: {:?}", c.capabilities());
        c.login("u@example.test", "secret").unwrap();
        assert!(c.list().unwrap().iter().any(|f| f.name == "INBOX"));
        c.logout().unwrap();
    }
    // Another authority: the handshake fails, and says it is TLS.
    let other = tempfile::tempdir().unwrap();
    kmpromail::ctl::init::write_self_signed(
        "other.test",
        &other.path().join("c.pem"),
        &other.path().join("k.pem"),
    )
    .unwrap();
    let mut e = endpoint(&inst, Security::Tls);
    e.ca_file = Some(other.path().join("c.pem"));
    assert!(matches!(Client::connect(&e), Err(Error::Tls(_))));
    // A name the certificate does not carry.
    let mut e = endpoint(&inst, Security::StartTls);
    e.host = "localhost".into();
    Client::connect(&e).expect("localhost is in the certificate");
    // A missing CA file is a TLS error, not a panic.
    let mut e = endpoint(&inst, Security::Tls);
    e.ca_file = Some(inst.path().join("nonexistent.pem"));
    assert!(matches!(Client::connect(&e), Err(Error::Tls(_))));
}
