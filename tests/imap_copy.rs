//! COPY and MOVE of a set of which another session expunged a part
//! (RFC 2180 4.4): the messages that remain are copied, with COPYUID for
//! them. Two sessions over raw sockets against the real kmp-imapd.
mod common;

use common::raw::Raw;
use common::Instance;

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
