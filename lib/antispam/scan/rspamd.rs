//! rspamd over its HTTP protocol: one `POST /checkv2` per message, the
//! message as the body, what the SMTP session knows as request headers;
//! the JSON answer gives the score, the symbols that hit and the action
//! rspamd would take.
//!
//! ```text
//! C: POST /checkv2 HTTP/1.0\r\n  Content-Length: N\r\n  IP: 192.0.2.1\r\n
//!    Helo: mail.example.com\r\n  From: a@example.com\r\n  \r\n  <message>
//! S: HTTP/1.1 200 OK\r\n  Content-Length: M\r\n  \r\n
//!    {"score": 2.5, "required_score": 15, "action": "no action",
//!     "symbols": {"R_SPF_ALLOW": {"name": "R_SPF_ALLOW", "score": -0.2}, ...}}
//! ```
//!
//! rspamd's score goes against our thresholds like spamd's, so the users'
//! own scores decide. Its action counts in one case: `reject` with
//! `is_skipped` (or a score under rspamd's own reject score) is a verdict
//! rspamd reached without adding up (a pre-result: GTUBE, an antivirus or
//! rate-limit module; rspamd 3.4 answers GTUBE with `"is_skipped": true,
//! "score": 15, "required_score": 15`), and then the message scores
//! [`PRE_RESULT_SCORE`], as GTUBE does in spamd.

use std::io::Write;
use std::net::IpAddr;
use std::time::Duration;

use serde::Deserialize;

use super::socket::{Address, Conn};
use super::spamd::Report;

/// The longest answer read (the symbols and their options).
const MAX_ANSWER: usize = 256 * 1024;
/// The score of a message rspamd rejects by a pre-result (spamd scores
/// GTUBE 1000).
pub const PRE_RESULT_SCORE: f64 = 1000.0;
/// The most symbol names kept.
const MAX_SYMBOLS: usize = 100;

/// What the session knows about a message, given to rspamd as headers.
#[derive(Debug, Clone, Default)]
pub struct Envelope {
    pub ip: Option<IpAddr>,
    pub helo: String,
    pub sender: String,
    /// The one recipient, when there is one (rspamd's per-user settings).
    pub deliver_to: Option<String>,
}

#[derive(Deserialize)]
struct Answer {
    #[serde(default)]
    is_skipped: bool,
    score: f64,
    #[serde(default)]
    required_score: Option<f64>,
    #[serde(default)]
    action: String,
    #[serde(default)]
    symbols: std::collections::BTreeMap<String, serde_json::Value>,
}

/// Asks rspamd at `addr` about `message` (LF line ends, as queued).
pub fn check(
    addr: &Address,
    env: &Envelope,
    message: &[u8],
    connect: Duration,
    io: Duration,
) -> Result<Report, String> {
    let mut c = Conn::open(addr, connect, io).map_err(|e| format!("rspamd {addr}: {e}"))?;
    c.write_all(request_head(env, message.len()).as_bytes())
        .and_then(|_| c.write_all(message))
        .map_err(|e| format!("rspamd {addr}: {e}"))?;
    let answer = c
        .read_all(MAX_ANSWER)
        .map_err(|e| format!("rspamd {addr}: {e}"))?;
    parse(&answer).map_err(|e| format!("rspamd {addr}: {e}"))
}

/// The request line and headers. A value that could break the request
/// (a line break, a control character) is left out.
pub fn request_head(env: &Envelope, len: usize) -> String {
    let mut h = format!("POST /checkv2 HTTP/1.0\r\nContent-Length: {len}\r\n");
    let mut add = |name: &str, value: &str| {
        if !value.is_empty() && value.len() <= 1000 && !value.bytes().any(|b| b.is_ascii_control())
        {
            h.push_str(&format!("{name}: {value}\r\n"));
        }
    };
    if let Some(ip) = env.ip {
        add("IP", &ip.to_canonical().to_string());
    }
    add("Helo", &env.helo);
    add("From", &env.sender);
    if let Some(r) = &env.deliver_to {
        add("Rcpt", r);
        add("Deliver-To", r);
    }
    h.push_str("\r\n");
    h
}

/// Parses rspamd's HTTP answer.
pub fn parse(answer: &[u8]) -> Result<Report, String> {
    let split = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("not an HTTP answer")?;
    let head = String::from_utf8_lossy(&answer[..split]);
    let mut body = answer[split + 4..].to_vec();
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap_or_default();
    let mut words = status.split_whitespace();
    if !words.next().unwrap_or_default().starts_with("HTTP/") {
        return Err(format!("not an HTTP answer: {:?}", clip(status)));
    }
    if words.next() != Some("200") {
        return Err(format!("rspamd failed: {:?}", clip(status)));
    }
    let chunked = lines.any(|l| {
        l.split_once(':').is_some_and(|(n, v)| {
            n.trim().eq_ignore_ascii_case("transfer-encoding")
                && v.trim().eq_ignore_ascii_case("chunked")
        })
    });
    if chunked {
        body = dechunk(&body).ok_or("a broken chunked answer")?;
    }
    let a: Answer = serde_json::from_slice(&body).map_err(|e| format!("not rspamd's JSON: {e}"))?;
    if !a.score.is_finite() {
        return Err("answer without a score".into());
    }
    let tests: Vec<String> = a
        .symbols
        .keys()
        .filter(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
        .take(MAX_SYMBOLS)
        .cloned()
        .collect();
    let pre_result = a.action == "reject"
        && (a.is_skipped
            || a.required_score
                .is_none_or(|r| !r.is_finite() || a.score < r));
    let score = if pre_result {
        PRE_RESULT_SCORE
    } else {
        a.score
    };
    Ok(Report { score, tests })
}

/// The body of a chunked answer (RFC 9112 7.1), or None when broken.
fn dechunk(mut b: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let eol = b.windows(2).position(|w| w == b"\r\n")?;
        let size = std::str::from_utf8(&b[..eol]).ok()?;
        let size = size.split(';').next()?.trim();
        let n = usize::from_str_radix(size, 16).ok()?;
        b = &b[eol + 2..];
        if n == 0 {
            return Some(out);
        }
        if b.len() < n + 2 {
            return None;
        }
        out.extend_from_slice(&b[..n]);
        b = &b[n + 2..];
    }
}

fn clip(s: &str) -> String {
    s.chars().take(80).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_parse() {
        let body = r#"{"is_skipped":false,"score":7.5,"required_score":15.0,"action":"add header","symbols":{"KMP_B":{"name":"KMP_B","score":7.0},"A_1":{"name":"A_1","score":0.5},"bad name":{}}}"#;
        let a = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nContent-Type: application/json\r\n\r\n{body}",
            body.len()
        );
        let r = parse(a.as_bytes()).unwrap();
        assert_eq!(r.score, 7.5);
        assert_eq!(r.tests, vec!["A_1", "KMP_B"]);
        // A pre-result reject (GTUBE, as rspamd 3.4 answers it): scored as
        // spamd scores GTUBE.
        let g = r#"HTTP/1.1 200 OK

{"is_skipped":true,"score":15.0,"required_score":15.0,"action":"reject","symbols":{"GTUBE":{"name":"GTUBE","score":0.0,"metric_score":0.0}},"messages":{"smtp_message":"Gtube pattern"}}"#
            .replace('\n', "\r\n");
        let r = parse(g.as_bytes()).unwrap();
        assert_eq!(r.score, PRE_RESULT_SCORE);
        assert_eq!(r.tests, vec!["GTUBE"]);
        // A reject reached by adding up keeps its score.
        let s =
            "HTTP/1.1 200 OK\r\n\r\n{\"score\":16.5,\"required_score\":15,\"action\":\"reject\"}";
        assert_eq!(parse(s.as_bytes()).unwrap().score, 16.5);
        let c = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n6\r\n{\"scor\r\n8\r\ne\":-1.5}\r\n0\r\n\r\n";
        assert_eq!(parse(c.as_bytes()).unwrap().score, -1.5);
        assert!(parse(b"HTTP/1.1 500 Internal\r\n\r\n{}").is_err());
        assert!(parse(b"SPAMD/1.1 0 EX_OK\r\n\r\n").is_err());
        assert!(parse(b"HTTP/1.1 200 OK\r\n\r\nnot json").is_err());
        assert!(parse(b"HTTP/1.1 200 OK\r\n\r\n{\"action\":\"reject\"}").is_err());
    }

    #[test]
    fn the_request_carries_only_safe_values() {
        let env = Envelope {
            ip: Some("::ffff:192.0.2.1".parse().unwrap()),
            helo: "mail.example.com".into(),
            sender: "a@example.com\r\nX-Evil: 1".into(),
            deliver_to: Some("u@example.test".into()),
        };
        let h = request_head(&env, 42);
        assert!(h.starts_with("POST /checkv2 HTTP/1.0\r\nContent-Length: 42\r\n"));
        assert!(h.contains("IP: 192.0.2.1\r\n"), "{h}");
        assert!(h.contains("Helo: mail.example.com\r\n"));
        assert!(!h.contains("From:") && !h.contains("Evil"), "{h}");
        assert!(h.contains("Deliver-To: u@example.test\r\n"));
        assert!(h.ends_with("\r\n\r\n"));
    }
}
