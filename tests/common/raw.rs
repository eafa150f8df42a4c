//! A raw IMAP client over a socket, for tests that need exact lines.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::Duration;

use super::Instance;

/// A raw client, logged in as u@example.test.
pub struct Raw {
    s: TcpStream,
    r: BufReader<TcpStream>,
}

impl Raw {
    pub fn login(inst: &Instance) -> Raw {
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

    pub fn line(&mut self) -> String {
        let mut l = String::new();
        let _ = self.r.read_line(&mut l);
        l
    }

    /// Sends `tag text` (bytes: a literal may follow) and returns every line
    /// up to the tagged answer.
    pub fn cmd_bytes(&mut self, tag: &str, text: &[u8]) -> String {
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

    pub fn cmd(&mut self, tag: &str, text: &str) -> String {
        self.cmd_bytes(tag, text.as_bytes())
    }

    /// APPENDs a message to INBOX (LITERAL+).
    pub fn append(&mut self, flags: &str, msg: &[u8]) -> String {
        let mut c = format!("APPEND INBOX ({flags}) {{{}+}}\r\n", msg.len()).into_bytes();
        c.extend_from_slice(msg);
        let r = self.cmd_bytes("ap", &c);
        assert!(r.contains("ap OK"), "{r}");
        r
    }
}
