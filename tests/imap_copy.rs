//! COPY and MOVE of a set of which another session expunged a part
//! (RFC 2180 4.4): the messages that remain are copied, with COPYUID for
//! them. Two sessions over raw sockets against the real kmp-imapd.
mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::Instance;

/// A raw client, logged in as u@example.test.
struct Raw {
    s: TcpStream,
    r: BufReader<TcpStream>,
}

impl Raw {
    fn login(inst: &Instance) -> Raw {
        let s = TcpStream::connect(inst.addr(143)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut c = Raw {
            r: BufReader::new(s.try_clone().unwrap()),
            s,
        };
        let g = c.line();
        assert!(g.starts_with("* OK"), "{g}");
        let r = c.cmd("l", "LOGIN u@example.test secret");
        assert!(r.contains("l OK"), "{r}");
        c
    }

    fn line(&mut self) -> String {
        let mut l = String::new();
        let _ = self.r.read_line(&mut l);
        l
    }

    /// Sends `tag text` (bytes: a literal may follow) and returns every line
    /// up to the tagged answer.
    fn cmd_bytes(&mut self, tag: &str, text: &[u8]) -> String {
        let mut b = format!("{tag} ").into_bytes();
        b.extend_from_slice(text);
        b.extend_from_slice(b"\r\n");
        self.s.write_all(&b).unwrap();
        let mut all = String::new();
        loop {
            let l = self.line();
            assert!(!l.is_empty(), "connection closed after {all}");
            all.push_str(&l);
            if l.starts_with(&format!("{tag} ")) {
                return all;
            }
        }
    }

    fn cmd(&mut self, tag: &str, text: &str) -> String {
        self.cmd_bytes(tag, text.as_bytes())
    }

    /// APPENDs a message to INBOX (LITERAL+).
    fn append(&mut self, flags: &str, msg: &[u8]) {
        let mut c = format!("APPEND INBOX ({flags}) {{{}+}}\r\n", msg.len()).into_bytes();
        c.extend_from_slice(msg);
        let r = self.cmd_bytes("ap", &c);
        assert!(r.contains("ap OK"), "{r}");
    }
}

fn message(n: u32) -> Vec<u8> {
    format!("From: a@example.test\r\nSubject: m{n}\r\n\r\nbody {n}\r\n").into_bytes()
}

/// Two sessions on INBOX (messages 1..=4, UIDs 1..=4); the second expunged
/// message 2 and the first has not been told yet.
fn setup(inst: &Instance) -> (Raw, Raw) {
    let mut a = Raw::login(inst);
    let mut b = Raw::login(inst);
    for n in 1..=4 {
        a.append("", &message(n));
    }
    a.cmd("c", "CREATE Dest");
    let r = a.cmd("s", "SELECT INBOX");
    assert!(r.contains("* 4 EXISTS"), "{r}");
    b.cmd("s", "SELECT INBOX");
    b.cmd("d", "STORE 2 +FLAGS.SILENT (\\Deleted)");
    let r = b.cmd("x", "EXPUNGE");
    assert!(r.contains("* 2 EXPUNGE"), "{r}");
    (a, b)
}

fn subjects(c: &mut Raw, folder: &str) -> Vec<String> {
    c.cmd("e", &format!("EXAMINE {folder}"));
    let r = c.cmd("f", "FETCH 1:* BODY.PEEK[HEADER.FIELDS (SUBJECT)]");
    let mut v: Vec<String> = r
        .lines()
        .filter_map(|l| l.strip_prefix("Subject: "))
        .map(str::to_string)
        .collect();
    v.sort();
    v
}

#[test]
fn copy_of_a_partly_expunged_set_copies_what_remains() {
    let inst = common::imap_instance();
    let (mut a, _b) = setup(&inst);
    let r = a.cmd("k", "COPY 1:3 Dest");
    assert!(r.contains("* OK [EXPUNGEISSUED]"), "{r}");
    assert!(r.contains("k OK [COPYUID "), "{r}");
    let copyuid = r.split("[COPYUID ").nth(1).unwrap();
    let parts: Vec<&str> = copyuid.split(&[' ', ']'][..]).collect();
    assert_eq!((parts[1], parts[2]), ("1,3", "1:2"), "{r}");
    assert_eq!(subjects(&mut a, "Dest"), vec!["m1", "m3"]);
}

#[test]
fn move_of_a_partly_expunged_set_moves_what_remains() {
    let inst = common::imap_instance();
    let (mut a, _b) = setup(&inst);
    let r = a.cmd("m", "MOVE 1:3 Dest");
    assert!(
        r.contains("* OK [COPYUID ") && r.contains(" 1,3 1:2]"),
        "{r}"
    );
    assert!(r.contains("m OK [EXPUNGEISSUED]"), "{r}");
    assert_eq!(subjects(&mut a, "Dest"), vec!["m1", "m3"]);
    assert_eq!(subjects(&mut a, "INBOX"), vec!["m4"]);
}

#[test]
fn uid_copy_skips_the_expunged_message() {
    let inst = common::imap_instance();
    let (mut a, _b) = setup(&inst);
    let r = a.cmd("k", "UID COPY 2:3 Dest");
    assert!(r.contains("* OK [EXPUNGEISSUED]"), "{r}");
    assert!(r.contains("k OK [COPYUID ") && r.contains(" 3 1]"), "{r}");
    assert_eq!(subjects(&mut a, "Dest"), vec!["m3"]);
}

#[test]
fn copy_of_only_expunged_messages_is_no() {
    let inst = common::imap_instance();
    let (mut a, _b) = setup(&inst);
    let r = a.cmd("k", "COPY 2 Dest");
    assert!(r.contains("k NO [EXPUNGEISSUED]"), "{r}");
    assert!(subjects(&mut a, "Dest").is_empty());
}
