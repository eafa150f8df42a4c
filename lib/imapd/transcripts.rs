//! Session transcripts without sockets: a small driver frames client bytes
//! as the server does, runs the session, and performs its actions (a login
//! accepts the password `secret`) against a real Maildir in a temporary
//! directory. Each test reads as the conversation a client would have.

use crate::proto::imap::response::Code;
use std::path::Path;
use std::sync::Arc;

use super::maildir_store::MaildirStore;
use super::session::{Action, Out, Session};
use super::Settings;
use crate::proto::imap::{parse_command, Frame, Framer};

/// One connection, driven by hand.
struct Driver {
    s: Session,
    framer: Framer,
    buf: Vec<u8>,
    root: std::path::PathBuf,
    closed: bool,
}

impl Driver {
    /// A session on loopback for the Maildir at `root`; returns it and the
    /// greeting.
    fn new(root: &Path) -> (Driver, String) {
        let s = Session::new(Arc::new(Settings::for_tests()), false, true);
        let framer = Framer::new(s.limits());
        let mut d = Driver {
            s,
            framer,
            buf: Vec::new(),
            root: root.to_path_buf(),
            closed: false,
        };
        let greeting = d.with_out(|s, out| s.greeting(out));
        (d, greeting)
    }

    fn with_out(&mut self, f: impl FnOnce(&mut Session, &mut Out)) -> String {
        let mut sink = |_: &[u8]| Ok(());
        let mut out = Out::new(&mut sink);
        f(&mut self.s, &mut out);
        String::from_utf8_lossy(&out.buf).into_owned()
    }

    /// Sends client bytes; returns everything the server wrote until it
    /// needs more input.
    fn send(&mut self, text: &str) -> String {
        assert!(!self.closed, "the session was closed");
        self.buf.extend_from_slice(text.as_bytes());
        let mut said = String::new();
        loop {
            self.framer.set_limits(self.s.limits());
            let action = match self.framer.frame(&self.buf) {
                Frame::Command(n) => {
                    let parsed = parse_command(&self.buf[..n]);
                    self.buf.drain(..n);
                    let mut action = Action::None;
                    said += &self.with_out(|s, out| {
                        action = match parsed {
                            Ok(cmd) => s.handle(cmd, out).expect("output to memory"),
                            Err(e) => {
                                let tag = e.tag.unwrap_or_else(|| "*".into());
                                s.bad(&tag, &e.message, out)
                            }
                        }
                    });
                    action
                }
                Frame::Continue => {
                    said += "+ Ready for literal data\r\n";
                    continue;
                }
                Frame::Reject {
                    tag,
                    reason,
                    consumed,
                    close,
                } => {
                    self.buf.drain(..consumed);
                    let tag = tag.unwrap_or_else(|| "*".into());
                    let mut action = Action::None;
                    said += &self.with_out(|s, out| action = s.bad(&tag, reason, out));
                    if close && action == Action::None {
                        action = Action::Close;
                    }
                    action
                }
                Frame::Discard(n) => {
                    self.buf.drain(..n);
                    if n > 0 {
                        continue;
                    }
                    return said;
                }
                Frame::Stream { .. } => panic!("transcripts keep literals small"),
                Frame::Incomplete => return said,
            };
            said += &self.perform(action);
        }
    }

    /// What the server does after a command.
    fn perform(&mut self, action: Action) -> String {
        match action {
            Action::None | Action::StartTls | Action::Forwarded { .. } => String::new(),
            Action::Close | Action::Abuse => {
                self.closed = true;
                String::new()
            }
            Action::SaslContinue => "+ \r\n".into(),
            Action::Login {
                tag,
                user,
                password,
            } => {
                let ok = password.as_bytes() == b"secret";
                let root = self.root.clone();
                self.with_out(|s, out| {
                    if ok {
                        let store = MaildirStore::open(&root, 0, 0).expect("maildir");
                        s.finish_login(&tag, Ok((user, Box::new(store))), out);
                    } else {
                        s.finish_login(
                            &tag,
                            Err((Code::AuthenticationFailed, "Invalid credentials")),
                            out,
                        );
                    }
                })
            }
            Action::Idle { tag } => {
                // The client ends IDLE at once.
                self.with_out(|_, out| out.line(&format!("{tag} OK IDLE terminated")))
            }
        }
    }

    fn login(&mut self) -> String {
        self.send("l LOGIN u@example.test secret\r\n")
    }
}

/// The lines of a transcript, without CRLF.
fn lines(text: &str) -> Vec<&str> {
    text.split("\r\n").filter(|l| !l.is_empty()).collect()
}

fn dir() -> tempfile::TempDir {
    tempfile::tempdir().expect("temporary directory")
}

#[test]
fn greeting_capability_login_and_logout() {
    let d = dir();
    let (mut c, greeting) = Driver::new(d.path());
    assert!(
        greeting.starts_with("* OK [CAPABILITY IMAP4rev1 "),
        "{greeting}"
    );
    assert!(greeting.contains("AUTH=PLAIN"), "{greeting}");
    let said = c.send("a CAPABILITY\r\n");
    let l = lines(&said);
    assert_eq!(l.len(), 2, "{said}");
    assert!(l[0].starts_with("* CAPABILITY IMAP4rev1"));
    assert_eq!(l[1], "a OK CAPABILITY completed");
    assert_eq!(
        c.send("b LOGIN u@example.test wrong\r\n"),
        "b NO [AUTHENTICATIONFAILED] Invalid credentials\r\n"
    );
    let said = c.login();
    assert!(said.starts_with("l OK [CAPABILITY IMAP4rev1 "), "{said}");
    assert!(said.contains("NAMESPACE"), "{said}");
    assert_eq!(
        c.send("z LOGOUT\r\n"),
        "* BYE Logging out\r\nz OK LOGOUT completed\r\n"
    );
    assert!(c.closed);
}

#[test]
fn commands_out_of_state_are_bad_and_the_session_goes_on() {
    let d = dir();
    let (mut c, _) = Driver::new(d.path());
    assert_eq!(c.send("a SELECT INBOX\r\n"), "a BAD Log in first\r\n");
    assert_eq!(c.send("b FROB\r\n"), "b BAD Unknown command FROB\r\n");
    c.login();
    assert_eq!(
        c.send("c FETCH 1 FLAGS\r\n"),
        "c BAD No mailbox selected\r\n"
    );
    assert_eq!(c.send("d NOOP\r\n"), "d OK NOOP completed\r\n");
}

#[test]
fn append_select_fetch_store_expunge() {
    let d = dir();
    let (mut c, _) = Driver::new(d.path());
    c.login();
    let msg = "Subject: hello\r\nFrom: a@example.test\r\n\r\nbody\r\n";
    let said = c.send(&format!("a APPEND INBOX (\\Flagged) {{{}}}\r\n", msg.len()));
    assert_eq!(said, "+ Ready for literal data\r\n");
    let said = c.send(&format!("{msg}\r\n"));
    assert!(
        said.starts_with("a OK [APPENDUID ") && said.ends_with(" 1] APPEND completed\r\n"),
        "{said}"
    );

    let said = c.send("s SELECT INBOX\r\n");
    let l = lines(&said);
    assert!(l.contains(&"* 1 EXISTS"), "{said}");
    assert!(
        l.iter().any(|x| x.starts_with("* OK [UIDVALIDITY ")),
        "{said}"
    );
    assert!(l.contains(&"* OK [UIDNEXT 2] Predicted next UID"), "{said}");
    assert!(l.last().unwrap().starts_with("s OK [READ-WRITE]"), "{said}");

    let said = c.send("f FETCH 1 (UID RFC822.SIZE BODY.PEEK[HEADER.FIELDS (SUBJECT)])\r\n");
    assert_eq!(
        said,
        "* 1 FETCH (UID 1 RFC822.SIZE 46 BODY[HEADER.FIELDS (SUBJECT)] {18}\r\n\
         Subject: hello\r\n\r\n)\r\nf OK FETCH completed\r\n"
    );
    let said = c.send("g FETCH 1 (FLAGS)\r\n");
    assert!(said.contains("\\Flagged"), "{said}");

    let said = c.send("t STORE 1 +FLAGS (\\Deleted)\r\n");
    assert!(
        said.starts_with("* 1 FETCH (FLAGS (\\Flagged \\Deleted"),
        "{said}"
    );
    assert!(said.ends_with("t OK STORE completed\r\n"), "{said}");
    assert_eq!(
        c.send("x EXPUNGE\r\n"),
        "* 1 EXPUNGE\r\nx OK EXPUNGE completed\r\n"
    );
    assert_eq!(
        c.send("y SEARCH ALL\r\n"),
        "* SEARCH\r\ny OK SEARCH completed\r\n"
    );
}

#[test]
fn one_sessions_changes_reach_another_at_its_next_command() {
    let d = dir();
    let (mut a, _) = Driver::new(d.path());
    let (mut b, _) = Driver::new(d.path());
    a.login();
    b.login();
    let msg = "Subject: x\r\n\r\ny\r\n";
    a.send(&format!("a APPEND INBOX {{{}+}}\r\n{msg}\r\n", msg.len()));
    a.send(&format!("a APPEND INBOX {{{}+}}\r\n{msg}\r\n", msg.len()));
    a.send("s SELECT INBOX\r\n");
    b.send("s SELECT INBOX\r\n");

    // A flag change by b is announced to a, with its UID.
    b.send("f UID STORE 2 +FLAGS.SILENT (\\Seen)\r\n");
    let said = a.send("n NOOP\r\n");
    assert!(
        said.contains("* 2 FETCH (UID 2 FLAGS (\\Seen))\r\n"),
        "{said}"
    );

    // b expunges message 1: a FETCH of everything by a answers for what
    // remains, and the EXPUNGE waits for a command that may announce it.
    b.send("t STORE 1 +FLAGS.SILENT (\\Deleted)\r\n");
    b.send("x EXPUNGE\r\n");
    let said = a.send("f FETCH 1:* (UID)\r\n");
    assert!(!said.contains("EXPUNGE"), "{said}");
    assert!(said.contains("(UID 2)"), "{said}");
    assert!(said.ends_with("f OK FETCH completed\r\n"), "{said}");
    let said = a.send("n NOOP\r\n");
    assert!(said.starts_with("* 1 EXPUNGE\r\n"), "{said}");
    assert_eq!(
        a.send("u UID SEARCH ALL\r\n"),
        "* SEARCH 2\r\nu OK SEARCH completed\r\n"
    );
}

#[test]
fn a_literal_split_across_sends_and_a_broken_command_do_not_end_the_session() {
    let top = dir();
    let root = top.path().join("user");
    let (mut c, _) = Driver::new(&root);
    c.login();
    // A quoted string with no end, then a good command.
    let said = c.send("a CREATE \"unterminated\r\n");
    assert!(said.starts_with("a BAD "), "{said}");
    // A literal arriving in pieces.
    assert_eq!(c.send("b CREATE {3}\r\n"), "+ Ready for literal data\r\n");
    assert_eq!(c.send("Fo"), "");
    assert_eq!(c.send("o\r\n"), "b OK CREATE completed\r\n");
    let said = c.send("l LIST \"\" *\r\n");
    assert!(said.contains(" Foo\r\n"), "{said}");
    // Nothing escapes the user's directory.
    let said = c.send("c CREATE ../x\r\n");
    assert!(said.starts_with("c NO "), "{said}");
    let outside = top.path().join("x");
    assert!(!outside.exists(), "{}", outside.display());
}
