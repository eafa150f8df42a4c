//! What local delivery reads from and adds to a message's header.
//!
//! The message is never loaded whole: [`scan`] streams over the header
//! section once, counting `Received:` fields (the hop count of RFC 5321
//! section 6.3) and collecting the addresses of `Delivered-To:` fields (the
//! loop marker qmail and Postfix write), and [`prefix`] builds the lines
//! delivery prepends: `Return-Path:` (RFC 5321 section 4.4: "When the
//! delivery SMTP server makes the "final delivery" of a message, it inserts a
//! return-path line at the beginning of the mail data") and `Delivered-To:`.
//! Bytes are bytes here: bare CR, NUL and 8-bit headers pass untouched.

use std::io::{self, Read};

/// The longest field name looked at; longer "names" are not fields we count.
const MAX_NAME: usize = 64;
/// The longest Delivered-To value kept (RFC 5321 caps a path at 256 octets).
const MAX_VALUE: usize = 512;
/// At most this many Delivered-To values are kept (a loop shows long before).
const MAX_DELIVERED_TO: usize = 1000;

/// What [`scan`] found in the header section.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scan {
    /// How many `Received:` fields.
    pub received: usize,
    /// The `Delivered-To:` addresses, lower-cased, without angle brackets.
    pub delivered_to: Vec<String>,
    /// An `X-Kmpromail-Junk:` field is there: kmp-smtpd judged the message
    /// spam (it removes any copy a client sends, so it is its own).
    pub junk: bool,
    /// The value of `X-Spam-Score:`, trimmed.
    pub spam_score: Option<String>,
}

impl Scan {
    /// The spam score kmp-smtpd wrote, as a number.
    pub fn score(&self) -> Option<f64> {
        self.spam_score
            .as_deref()
            .and_then(|s| s.parse::<f64>().ok())
            .filter(|f| f.is_finite())
    }
}

impl Scan {
    /// How many `Delivered-To:` fields name `address` (compared without case).
    pub fn delivered_to_count(&self, address: &str) -> usize {
        let a = address.trim().to_ascii_lowercase();
        self.delivered_to.iter().filter(|d| **d == a).count()
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    /// At the start of a line.
    LineStart,
    /// Reading a field name: the bytes so far in `name`.
    Name,
    /// In a field we do not keep, up to the end of its line.
    Skip,
    /// In a Delivered-To value.
    Value,
    /// In an X-Spam-Score value.
    Score,
    /// A CR at the start of a line: the empty line ends the header if LF follows.
    Cr,
}

/// Reads the header section of `r` (up to the empty line, or to the first
/// line that is neither a field nor a continuation, or to the end).
pub fn scan<R: Read>(mut r: R) -> io::Result<Scan> {
    let mut out = Scan::default();
    let mut state = State::LineStart;
    let mut name: Vec<u8> = Vec::with_capacity(MAX_NAME);
    let mut value: Vec<u8> = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match r.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        for &b in &buf[..n] {
            state = match state {
                State::LineStart => match b {
                    b'\n' => return Ok(out),
                    b'\r' => State::Cr,
                    // A continuation of the previous field: nothing we count.
                    b' ' | b'\t' => State::Skip,
                    _ => {
                        name.clear();
                        name.push(b);
                        State::Name
                    }
                },
                State::Cr => match b {
                    b'\n' => return Ok(out),
                    _ => State::Skip,
                },
                State::Name => match b {
                    b':' => {
                        if name.eq_ignore_ascii_case(b"received") {
                            out.received += 1;
                            State::Skip
                        } else if name.eq_ignore_ascii_case(b"delivered-to") {
                            value.clear();
                            State::Value
                        } else if name.eq_ignore_ascii_case(b"x-kmpromail-junk") {
                            out.junk = true;
                            State::Skip
                        } else if name.eq_ignore_ascii_case(b"x-spam-score") {
                            value.clear();
                            State::Score
                        } else {
                            State::Skip
                        }
                    }
                    // A line that is not a field: the body starts here (a
                    // message without the empty separator line).
                    b'\n' | b' ' | b'\t' | b'\r' => return Ok(out),
                    _ if name.len() >= MAX_NAME => State::Skip,
                    _ => {
                        name.push(b);
                        State::Name
                    }
                },
                State::Skip => match b {
                    b'\n' => State::LineStart,
                    _ => State::Skip,
                },
                State::Score => match b {
                    b'\n' => {
                        keep_score(&mut out, &value);
                        State::LineStart
                    }
                    _ => {
                        if value.len() < MAX_NAME {
                            value.push(b);
                        }
                        State::Score
                    }
                },
                State::Value => match b {
                    b'\n' => {
                        keep_value(&mut out, &value);
                        State::LineStart
                    }
                    _ => {
                        if value.len() < MAX_VALUE {
                            value.push(b);
                        }
                        State::Value
                    }
                },
            };
        }
    }
    if state == State::Value {
        keep_value(&mut out, &value);
    }
    if state == State::Score {
        keep_score(&mut out, &value);
    }
    Ok(out)
}

fn keep_score(out: &mut Scan, value: &[u8]) {
    out.spam_score = Some(String::from_utf8_lossy(value).trim().to_string());
}

fn keep_value(out: &mut Scan, value: &[u8]) {
    if out.delivered_to.len() >= MAX_DELIVERED_TO {
        return;
    }
    let v = String::from_utf8_lossy(value);
    let v = v
        .trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .trim();
    out.delivered_to.push(v.to_ascii_lowercase());
}

/// The lines delivery prepends: `Return-Path: <sender>` and, when given,
/// `Delivered-To: <address>`, with LF line endings. CR, LF and NUL in the
/// addresses (which came through the queue, not from us) are dropped so they
/// cannot add lines of their own.
pub fn prefix(sender: &str, delivered_to: Option<&str>) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + sender.len());
    out.extend_from_slice(b"Return-Path: <");
    out.extend(clean(sender));
    out.extend_from_slice(b">\n");
    if let Some(a) = delivered_to {
        out.extend_from_slice(b"Delivered-To: ");
        out.extend(clean(a));
        out.push(b'\n');
    }
    out
}

fn clean(s: &str) -> impl Iterator<Item = u8> + '_ {
    s.bytes().filter(|b| !matches!(b, b'\r' | b'\n' | 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader that hands out at most `chunk` bytes per read.
    struct Chunked<'a> {
        data: &'a [u8],
        chunk: usize,
    }

    impl Read for Chunked<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.chunk.min(buf.len()).min(self.data.len());
            buf[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Ok(n)
        }
    }

    fn scan_all_chunks(msg: &[u8]) -> Scan {
        let whole = scan(msg).unwrap();
        for chunk in [1, 2, 3, 7, 64, 512] {
            let got = scan(Chunked { data: msg, chunk }).unwrap();
            assert_eq!(got, whole, "chunk {chunk}");
        }
        whole
    }

    #[test]
    fn counts_received_and_collects_delivered_to() {
        let msg = b"Received: from a\n\tby b\nDelivered-To: <A@Example.test>\nreceived: x\nDELIVERED-TO: b@example.test\nSubject: hi\n\nReceived: in the body\nDelivered-To: body@example.test\n";
        let s = scan_all_chunks(msg);
        assert_eq!(s.received, 2);
        assert_eq!(s.delivered_to, ["a@example.test", "b@example.test"]);
        assert_eq!(s.delivered_to_count("a@EXAMPLE.test"), 1);
        assert_eq!(s.delivered_to_count("c@example.test"), 0);
    }

    #[test]
    fn the_junk_mark_and_spam_score_are_read() {
        let m = b"Received: a\nX-Spam-Score: 7.5\nX-Kmpromail-Junk: spam score=7.5\nSubject: x\n\nX-Spam-Score: 1\n";
        let s = scan(&m[..]).unwrap();
        assert!(s.junk);
        assert_eq!(s.score(), Some(7.5));
        let clean = scan(&b"Subject: x\n\nX-Kmpromail-Junk: body\n"[..]).unwrap();
        assert!(!clean.junk);
        assert_eq!(clean.score(), None);
    }

    #[test]
    fn crlf_messages_scan_the_same() {
        let msg = b"Received: a\r\nDelivered-To: x@y\r\n\r\nReceived: body\r\n";
        let s = scan_all_chunks(msg);
        assert_eq!(s.received, 1);
        assert_eq!(s.delivered_to, ["x@y"]);
    }

    /// Malformed input: each is scanned without error, with what can be counted.
    #[test]
    fn malformed_headers_are_scanned_without_failing() {
        let long_name = [b"X".repeat(5000), b": v\nReceived: a\n".to_vec()].concat();
        let long_value = [
            b"Delivered-To: ".to_vec(),
            b"z".repeat(5000),
            b"\n".to_vec(),
        ]
        .concat();
        let table: &[(&[u8], usize, usize)] = &[
            (b"", 0, 0),
            (b"no separator at all, just text\nReceived: x\n", 0, 0),
            (b"Received: a\nReceived: b", 2, 0),
            (b"Delivered-To: a@b", 0, 1),
            (
                b"Received: \0\xff\xfe\rbare cr\nDelivered-To: \xc3\xa9@b\n\n",
                1,
                1,
            ),
            (b"Subject: x\n  folded\n\tReceived: not a field\n\n", 0, 0),
            (&long_name, 1, 0),
            (&long_value, 0, 1),
            (b"\r\rReceived: a\n", 0, 0),
        ];
        for (msg, received, dt) in table {
            let s = scan_all_chunks(msg);
            assert_eq!(s.received, *received, "{:?}", String::from_utf8_lossy(msg));
            assert_eq!(
                s.delivered_to.len(),
                *dt,
                "{:?}",
                String::from_utf8_lossy(msg)
            );
        }
    }

    #[test]
    fn ten_thousand_header_lines_are_counted() {
        let mut msg = Vec::new();
        for i in 0..10_000 {
            msg.extend_from_slice(format!("Received: hop {i}\n").as_bytes());
        }
        msg.extend_from_slice(b"\nbody\n");
        assert_eq!(scan(msg.as_slice()).unwrap().received, 10_000);
    }

    #[test]
    fn prefix_lines_cannot_be_split() {
        assert_eq!(
            prefix("a@b", Some("c@d")),
            b"Return-Path: <a@b>\nDelivered-To: c@d\n"
        );
        assert_eq!(prefix("", None), b"Return-Path: <>\n");
        assert_eq!(
            prefix("a@b\r\nX-Evil: 1", None),
            b"Return-Path: <a@bX-Evil: 1>\n"
        );
    }
}
