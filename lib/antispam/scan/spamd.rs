//! SpamAssassin's spamd over the spamc protocol (SPAMC/1.5): one
//! `SYMBOLS` request per message, the message sent whole after a
//! `Content-length` header; the answer's `Spam:` header gives the score,
//! its body the names of the rules that hit.
//!
//! ```text
//! C: SYMBOLS SPAMC/1.5\r\n  Content-length: N\r\n  User: u\r\n  \r\n  <message>
//! S: SPAMD/1.1 0 EX_OK\r\n  Content-length: M\r\n  Spam: True ; 1000.0 / 5.0\r\n  \r\n  GTUBE,...
//! ```

use std::io::Write;
use std::time::Duration;

use super::socket::{Address, Conn};

/// The longest answer read (a list of rule names).
const MAX_ANSWER: usize = 64 * 1024;

/// What spamd said about a message.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub score: f64,
    /// The rules that hit.
    pub tests: Vec<String>,
}

/// Asks spamd at `addr` about `message` (LF line ends, as queued).
pub fn check(
    addr: &Address,
    user: Option<&str>,
    message: &[u8],
    connect: Duration,
    io: Duration,
) -> Result<Report, String> {
    let mut c = Conn::open(addr, connect, io).map_err(|e| format!("spamd {addr}: {e}"))?;
    let mut head = format!("SYMBOLS SPAMC/1.5\r\nContent-length: {}\r\n", message.len());
    if let Some(u) = user.filter(|u| valid_user(u)) {
        head.push_str(&format!("User: {u}\r\n"));
    }
    head.push_str("\r\n");
    c.write_all(head.as_bytes())
        .and_then(|_| c.write_all(message))
        .map_err(|e| format!("spamd {addr}: {e}"))?;
    c.shutdown_write();
    let answer = c
        .read_all(MAX_ANSWER)
        .map_err(|e| format!("spamd {addr}: {e}"))?;
    parse(&answer).map_err(|e| format!("spamd {addr}: {e}"))
}

/// A user name spamd may be given: no line breaks, no spaces, not long.
fn valid_user(u: &str) -> bool {
    !u.is_empty() && u.len() <= 256 && u.bytes().all(|b| b.is_ascii_graphic())
}

/// Parses spamd's answer.
pub fn parse(answer: &[u8]) -> Result<Report, String> {
    let text = String::from_utf8_lossy(answer);
    let (head, body) = match text.find("\r\n\r\n") {
        Some(i) => (&text[..i], &text[i + 4..]),
        None => (text.as_ref(), ""),
    };
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap_or_default();
    // SPAMD/1.1 0 EX_OK
    let mut words = status.split_whitespace();
    let proto = words.next().unwrap_or_default();
    let code = words.next().unwrap_or_default();
    if !proto.starts_with("SPAMD/") {
        return Err(format!("not a spamd answer: {:?}", clip(status)));
    }
    if code != "0" {
        return Err(format!("spamd failed: {:?}", clip(status)));
    }
    let mut score = None;
    for l in lines {
        let Some((name, value)) = l.split_once(':') else {
            continue;
        };
        if name.trim().eq_ignore_ascii_case("spam") {
            // True ; 1000.0 / 5.0
            let s = value
                .split(';')
                .nth(1)
                .and_then(|r| r.split('/').next())
                .and_then(|n| n.trim().parse::<f64>().ok())
                .filter(|n| n.is_finite());
            score = s;
        }
    }
    let score = score.ok_or_else(|| "answer without a Spam: score".to_string())?;
    let tests = body
        .split([',', '\r', '\n'])
        .map(str::trim)
        .filter(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
        .take(100)
        .map(str::to_string)
        .collect();
    Ok(Report { score, tests })
}

fn clip(s: &str) -> String {
    s.chars().take(80).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_parse() {
        let r = parse(b"SPAMD/1.1 0 EX_OK\r\nContent-length: 17\r\nSpam: True ; 1000.0 / 5.0\r\n\r\nGTUBE,NO_RECEIVED\r\n").unwrap();
        assert_eq!(r.score, 1000.0);
        assert_eq!(r.tests, vec!["GTUBE", "NO_RECEIVED"]);
        let r = parse(b"SPAMD/1.1 0 EX_OK\r\nSpam: False ; -0.5 / 5.0\r\n\r\n").unwrap();
        assert_eq!(r.score, -0.5);
        assert!(r.tests.is_empty());
        assert!(parse(b"SPAMD/1.1 76 Bad header line").is_err());
        assert!(parse(b"HTTP/1.0 200 OK\r\n\r\n").is_err());
        assert!(parse(b"SPAMD/1.1 0 EX_OK\r\n\r\n").is_err());
        assert!(parse(b"SPAMD/1.1 0 EX_OK\r\nSpam: True ; NaN / 5\r\n\r\n").is_err());
        // Rule names only: nothing from the answer reaches a header unchecked.
        let r = parse(b"SPAMD/1.1 0 EX_OK\r\nSpam: True ; 6 / 5\r\n\r\nA_B,x\ny: z,C1").unwrap();
        assert_eq!(r.tests, vec!["A_B", "x", "C1"]);
    }
}
