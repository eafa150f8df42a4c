//! The client against a scripted server on loopback: the fallbacks for
//! servers without the extensions kmp-imapd has (LITERAL+, SASL-IR,
//! ESEARCH, SORT, MOVE, UIDPLUS, LIST-EXTENDED), the exact bytes sent, and
//! hostile or broken replies. The black-box tests against kmp-imapd are in
//! tests/imapc.rs.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::thread::JoinHandle;
use std::time::Duration;

use super::*;

/// One step of a scripted server.
enum Step {
    /// Read one line from the client and keep it.
    Line,
    /// Read this many bytes (a literal) and keep them.
    Bytes(usize),
    /// Send these bytes.
    Send(&'static [u8]),
    /// Send these bytes one at a time, this long apart.
    Trickle(&'static [u8], Duration),
}

/// Serves one connection: the steps in order, then waits for the client
/// to close. Returns what the client sent.
fn serve(steps: Vec<Step>) -> (Endpoint, JoinHandle<Vec<String>>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let h = std::thread::spawn(move || {
        let (s, _) = l.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut w = s.try_clone().unwrap();
        let mut r = BufReader::new(s);
        let mut got = Vec::new();
        for step in steps {
            match step {
                Step::Line => {
                    let mut line = Vec::new();
                    if r.read_until(b'\n', &mut line).unwrap_or(0) == 0 {
                        break;
                    }
                    got.push(String::from_utf8_lossy(&line).into_owned());
                }
                Step::Bytes(n) => {
                    let mut b = vec![0; n];
                    r.read_exact(&mut b).unwrap();
                    got.push(String::from_utf8_lossy(&b).into_owned());
                }
                Step::Send(b) => {
                    if w.write_all(b).is_err() {
                        break;
                    }
                }
                Step::Trickle(b, pause) => {
                    for byte in b {
                        std::thread::sleep(pause);
                        if w.write_all(&[*byte]).is_err() {
                            break;
                        }
                    }
                }
            }
        }
        // The script is over: the client sees the end of the stream.
        let _ = w.shutdown(std::net::Shutdown::Write);
        let mut rest = Vec::new();
        let _ = r.read_to_end(&mut rest);
        if !rest.is_empty() {
            got.push(String::from_utf8_lossy(&rest).into_owned());
        }
        got
    });
    let e = Endpoint {
        host: "127.0.0.1".into(),
        port,
        security: Security::Plain,
        ca_file: None,
        timeout: Duration::from_secs(10),
    };
    (e, h)
}

use Step::{Bytes, Line, Send, Trickle};

#[test]
fn a_server_without_extensions_gets_the_fallbacks() {
    let (e, h) = serve(vec![
        Send(b"* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] hello\r\n"),
        Line,
        Send(b"+ \r\n"),
        Line,
        Send(b"k1 OK [CAPABILITY IMAP4rev1] in\r\n"),
        // CREATE with a Chinese name: modified UTF-7, quoted.
        Line,
        Send(b"k2 OK done\r\n"),
        // SEARCH with Chinese text: CHARSET and a synchronising literal.
        Line,
        Send(b"* 3 EXISTS\r\n+ go on\r\n"),
        Line,
        Send(b"* SEARCH 5 3\r\n* 1 FETCH (FLAGS (\\Seen))\r\nk3 OK done\r\n"),
        // SORT without SORT: SEARCH and UID order.
        Line,
        Send(b"* SEARCH 2 9 4\r\nk4 OK done\r\n"),
        // MOVE without MOVE or UIDPLUS: another message is \Deleted.
        Line,
        Send(b"k5 OK copied\r\n"),
        Line,
        Send(b"k6 OK stored\r\n"),
        Line,
        Send(b"* SEARCH 4 7\r\nk7 OK done\r\n"),
        // LIST without LIST-EXTENDED: LSUB and STATUS per folder.
        Line,
        Send(b"* LIST (\\HasNoChildren) \".\" INBOX\r\n* LIST (\\Noselect) \".\" \"&Ti1lhw-\"\r\n* LIST () \".\" \"&Ti1lhw-.x\"\r\nk8 OK done\r\n"),
        Line,
        Send(b"* LSUB () \".\" \"&Ti1lhw-.x\"\r\nk9 OK done\r\n"),
        Line,
        Send(b"* STATUS INBOX (MESSAGES 4 UNSEEN 1)\r\nk10 OK done\r\n"),
        Line,
        Send(b"* STATUS \"&Ti1lhw-.x\" (MESSAGES 2 UNSEEN 0)\r\nk11 OK done\r\n"),
        // APPEND with a synchronising literal; no APPENDUID.
        Line,
        Send(b"+ ready\r\n"),
        Bytes(7),
        Line,
        Send(b"k12 OK appended\r\n"),
        Line,
        Send(b"* BYE bye\r\nk13 OK done\r\n"),
    ]);
    let mut c = Client::connect(&e).unwrap();
    c.login("用户", "pass word").unwrap();
    c.create("中文", None).unwrap();
    assert_eq!(
        c.search(&Criteria::Subject("中文".into())).unwrap(),
        vec![3, 5]
    );
    assert_eq!(
        c.sort(SortKey::Date, true, &Criteria::All).unwrap(),
        vec![9, 4, 2]
    );
    assert!(matches!(c.move_to(&[4], "B"), Err(Error::No(_))));
    let list = c.list().unwrap();
    assert_eq!(list.len(), 3);
    assert_eq!(list[0].status.map(|s| s.messages), Some(4));
    assert_eq!(list[1].name, "中文");
    assert_eq!(list[1].status, None);
    assert_eq!(list[2].name, "中文.x");
    assert!(list[2].subscribed && !list[0].subscribed);
    assert_eq!(list[2].delimiter, Some('.'));
    assert_eq!(list[2].status.map(|s| s.messages), Some(2));
    assert_eq!(c.append("INBOX", &[], b"Hi\r\n\r\nx").unwrap(), None);
    c.logout().unwrap();
    let got = h.join().unwrap();
    use base64::Engine;
    let plain = base64::engine::general_purpose::STANDARD.encode("\0用户\0pass word");
    let expected = [
        "k1 AUTHENTICATE PLAIN\r\n".to_string(),
        format!("{plain}\r\n"),
        "k2 CREATE \"&Ti1lhw-\"\r\n".into(),
        "k3 UID SEARCH CHARSET UTF-8 SUBJECT {6}\r\n".into(),
        "中文\r\n".into(),
        "k4 UID SEARCH ALL\r\n".into(),
        "k5 UID COPY 4 \"B\"\r\n".into(),
        "k6 UID STORE 4 +FLAGS.SILENT (\\Deleted)\r\n".into(),
        "k7 UID SEARCH DELETED\r\n".into(),
        "k8 LIST \"\" \"*\"\r\n".into(),
        "k9 LSUB \"\" \"*\"\r\n".into(),
        "k10 STATUS \"INBOX\" (MESSAGES UNSEEN)\r\n".into(),
        "k11 STATUS \"&Ti1lhw-.x\" (MESSAGES UNSEEN)\r\n".into(),
        "k12 APPEND \"INBOX\" () {7}\r\n".into(),
        "Hi\r\n\r\nx".into(),
        "\r\n".into(),
        "k13 LOGOUT\r\n".into(),
    ];
    assert_eq!(got, expected);
}

#[test]
fn literal_plus_and_sasl_ir_send_in_one_go() {
    let (e, h) = serve(vec![
        Send(b"* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN SASL-IR LITERAL+ ID] hello\r\n"),
        Line,
        Send(b"* ID NIL\r\nk1 OK id\r\n"),
        Line,
        Send(b"k2 OK [CAPABILITY IMAP4rev1 LITERAL+ ESEARCH UIDPLUS] in\r\n"),
        Line,
        Line,
        Line,
        Send(b"* ESEARCH (TAG \"k2\") UID ALL 1:100\r\n* ESEARCH (TAG \"k3\") UID ALL 4:6,2\r\nk3 OK done\r\n"),
        Line,
        Send(b"* 2 EXPUNGE\r\nk4 OK done\r\n"),
        Line,
        Send(b"k5 OK done\r\n"),
    ]);
    let mut c = Client::connect(&e).unwrap();
    c.id(&[("name", "x\"y")]).unwrap();
    c.login("u", "p").unwrap();
    assert!(c.has("esearch") && !c.has("AUTH=PLAIN"));
    let r = c.search(&Criteria::Text("a\r\nb".into())).unwrap();
    assert_eq!(r, vec![2, 4, 5, 6]);
    c.expunge(&[3, 1]).unwrap();
    drop(c);
    let got = h.join().unwrap();
    use base64::Engine;
    let plain = base64::engine::general_purpose::STANDARD.encode("\0u\0p");
    assert_eq!(
        got,
        [
            "k1 ID (\"name\" \"x\\\"y\")\r\n".to_string(),
            format!("k2 AUTHENTICATE PLAIN {plain}\r\n"),
            "k3 UID SEARCH RETURN (ALL) TEXT {4+}\r\n".into(),
            "a\r\n".into(),
            "b\r\n".into(),
            "k4 UID STORE 1,3 +FLAGS.SILENT (\\Deleted)\r\n".into(),
            "k5 UID EXPUNGE 1,3\r\n".into(),
        ]
    );
}

#[test]
fn refusals_map_to_errors_without_detail() {
    let (e, _h) = serve(vec![
        Send(b"* OK [CAPABILITY IMAP4rev1] hello\r\n"),
        Line,
        Send(b"k1 NO [AUTHENTICATIONFAILED] no such user u\r\n"),
        Line,
        Send(b"k2 NO [UNAVAILABLE] try later\r\n"),
        Line,
        Send(b"k3 BAD [CLIENTBUG] what\r\n"),
    ]);
    let mut c = Client::connect(&e).unwrap();
    let r = c.login("u", "p");
    assert!(matches!(r, Err(Error::Auth)));
    assert!(!format!("{}", r.unwrap_err()).contains("no such user"));
    let r = c.login("u", "p");
    assert!(matches!(&r, Err(Error::No(t)) if t.starts_with("[UNAVAILABLE]")));
    assert!(r.unwrap_err().is_temporary());
    assert!(matches!(c.select("INBOX", false), Err(Error::Bad(_))));

    let (e, _h) = serve(vec![Send(b"* BYE too busy\r\n")]);
    assert!(matches!(Client::connect(&e), Err(Error::Bye(t)) if t == "too busy"));
    let (e, _h) = serve(vec![Send(
        b"* OK [CAPABILITY IMAP4rev1 LOGINDISABLED] x\r\n",
    )]);
    let mut c = Client::connect(&e).unwrap();
    assert!(matches!(c.login("u", "p"), Err(Error::No(_))));
}

#[test]
fn hostile_replies_are_protocol_errors_and_end_the_connection() {
    let cases: Vec<&'static [u8]> = vec![
        b"* 1 FETCH (BODY[] {99999999999}\r\n",
        b"* 1 FETCH (UID 1\r\nk1 OK done\r\n",
        b"* 1 FETCH (((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((1)\r\n",
        b"k9 OK not yours\r\n",
        b"+ unasked\r\n",
        b"\0\0\0\r\n",
        b"* SEARCH 1 x 3\r\nk1 OK done\r\n",
    ];
    for bytes in cases {
        let (e, _h) = serve(vec![
            Send(b"* OK [CAPABILITY IMAP4rev1 ESEARCH] hello\r\n"),
            Line,
            Send(bytes),
        ]);
        let mut c = Client::connect(&e).unwrap();
        let r = c.search(&Criteria::All);
        assert!(
            matches!(r, Err(Error::Protocol(_))),
            "{:?}: {r:?}",
            String::from_utf8_lossy(bytes)
        );
        if !bytes.starts_with(b"* SEARCH") {
            // After a framing error the connection is not used again.
            assert!(matches!(c.search(&Criteria::All), Err(Error::Protocol(_))));
        }
    }
    // Closed in the middle of a literal.
    let (e, _h) = serve(vec![
        Send(b"* OK [CAPABILITY IMAP4rev1] hello\r\n"),
        Line,
        Send(b"* 1 FETCH (UID 1 BODY[] {100}\r\nabc"),
    ]);
    let mut c = Client::connect(&e).unwrap();
    assert!(matches!(c.fetch_raw(1), Err(Error::Io(_))));
    // A garbage greeting.
    let (e, _h) = serve(vec![Send(b"220 smtp.example ESMTP\r\n")]);
    assert!(matches!(Client::connect(&e), Err(Error::Protocol(_))));
    // A reply a byte at a time: each read comes in time, the whole does not.
    let (mut e, h) = serve(vec![
        Send(b"* OK [CAPABILITY IMAP4rev1] hello\r\n"),
        Line,
        Trickle(
            b"* SEARCH 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20\r\nk1 OK done\r\n",
            Duration::from_millis(40),
        ),
    ]);
    e.timeout = Duration::from_millis(200);
    let mut c = Client::connect(&e).unwrap();
    let started = std::time::Instant::now();
    let r = c.search(&Criteria::All);
    assert!(
        matches!(&r, Err(Error::Io(e)) if e.kind() == std::io::ErrorKind::TimedOut),
        "{r:?}"
    );
    assert!(started.elapsed() < Duration::from_millis(200 * u64::from(REPLY_TIME) + 500));
    drop(c);
    drop(h);
    // Silence: the timeout.
    let (mut e, _h) = serve(vec![Line]);
    e.timeout = Duration::from_millis(300);
    assert!(matches!(Client::connect(&e), Err(Error::Io(_))));
}

#[test]
fn data_after_starttls_ok_is_refused() {
    let (mut e, _h) = serve(vec![
        Send(b"* OK hello\r\n"),
        Line,
        Send(b"* CAPABILITY IMAP4rev1 STARTTLS\r\nk1 OK done\r\n"),
        Line,
        Send(b"k2 OK begin TLS\r\n* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] injected\r\n"),
    ]);
    e.security = Security::StartTls;
    assert!(matches!(Client::connect(&e), Err(Error::Protocol(_))));
    let (mut e, _h) = serve(vec![
        Send(b"* OK [CAPABILITY IMAP4rev1] hello\r\n"),
        Line,
        Send(b"* CAPABILITY IMAP4rev1\r\nk1 OK done\r\n"),
    ]);
    e.security = Security::StartTls;
    assert!(matches!(Client::connect(&e), Err(Error::Tls(_))));
    // PREAUTH would keep the session in plain text: refused.
    let (mut e, _h) = serve(vec![Send(
        b"* PREAUTH [CAPABILITY IMAP4rev1 STARTTLS] welcome\r\n",
    )]);
    e.security = Security::StartTls;
    assert!(matches!(Client::connect(&e), Err(Error::Tls(_))));
}

#[test]
fn a_message_and_its_flags_in_one_fetch_and_a_list_without_counts() {
    let (e, h) = serve(vec![
        Send(b"* OK [CAPABILITY IMAP4rev1 LIST-EXTENDED LIST-STATUS SPECIAL-USE] hi\r\n"),
        Line,
        Send(b"* 1 FETCH (UID 7 FLAGS (\\Seen $MDNSent) BODY[] {3}\r\nabc)\r\nk1 OK done\r\n"),
        Line,
        Send(b"k2 OK done\r\n"),
        Line,
        Send(b"* LIST (\\HasNoChildren \\Trash) \".\" Trash\r\nk3 OK done\r\n"),
    ]);
    let mut c = Client::connect(&e).unwrap();
    let (body, flags) = c.fetch_raw_flags(7).unwrap().unwrap();
    assert_eq!(body, b"abc");
    assert_eq!(flags, ["\\Seen", "$MDNSent"]);
    assert_eq!(c.fetch_raw_flags(8).unwrap(), None);
    let list = c.list_names().unwrap();
    assert_eq!(list[0].name, "Trash");
    assert_eq!(list[0].special.as_deref(), Some("\\Trash"));
    assert_eq!(list[0].status, None);
    drop(c);
    let got = h.join().unwrap();
    assert_eq!(
        got,
        [
            "k1 UID FETCH 7 (UID FLAGS BODY.PEEK[])\r\n",
            "k2 UID FETCH 8 (UID FLAGS BODY.PEEK[])\r\n",
            "k3 LIST \"\" \"*\" RETURN (SUBSCRIBED CHILDREN SPECIAL-USE)\r\n",
        ]
    );
}
