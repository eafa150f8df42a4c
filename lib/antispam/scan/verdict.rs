//! What the scanners' answers come to: refuse the message, or accept it
//! with the `X-Spam-*` headers. Pure: the answers in, a decision out.
//!
//! The headers written (each replaced if the message came with one, see
//! [`OUR_HEADERS`]):
//! - `X-Spam-Score: 7.2` (spamd's or rspamd's score, the higher when both
//!   answered, plus the connection score)
//! - `X-Spam-Status: Yes, score=7.2 required=5 tests=A,B` (`unchecked (why)`
//!   at the end when a scanner could not answer)
//! - `X-Spam-Flag: YES` for spam
//! - `X-Virus-Scanned: clamd; clean` (or `unchecked`)
//! - `X-Kmpromail-Junk: spam score=7.2`: kmp-local files the message into
//!   Junk for each recipient who did not turn that off (see `lib/local`).

use super::clamd;
use super::spamd;
use crate::proto::smtp::reply::Reply;

/// The header that tells kmp-local to file into Junk. kmp-smtpd removes
/// any copy a message arrives with, so kmp-local can trust it.
pub const JUNK_HEADER: &str = "X-Kmpromail-Junk";

/// Header fields kmp-smtpd removes from every incoming message: only ours
/// may reach delivery and the users' filters.
pub const OUR_HEADERS: &[&str] = &[
    "x-kmpromail-junk",
    "x-spam-score",
    "x-spam-status",
    "x-spam-flag",
    "x-virus-scanned",
];

/// Everything the decision needs.
#[derive(Debug, Default)]
pub struct Inputs {
    /// spamd's answer; None when spamd is not configured.
    pub spam: Option<Result<spamd::Report, String>>,
    /// rspamd's answer; None when rspamd is not configured.
    pub rspamd: Option<Result<spamd::Report, String>>,
    /// clamd's answer; None when clamd is not configured.
    pub virus: Option<Result<clamd::Verdict, String>>,
    /// The connection checks' score and what hit.
    pub conn_score: i64,
    pub conn_tests: Vec<String>,
    /// The lowest tag score among the recipients.
    pub tag: u32,
    /// The reject score: the highest among the recipients; None when a
    /// recipient never refuses (0) or allows the sender.
    pub reject: Option<u32>,
    /// Some recipient allows the sender: no refusal as spam.
    pub allowed: bool,
    /// scan.on_failure = tempfail.
    pub tempfail: bool,
}

/// The decision.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Refuse at DATA with this reply; the text is for the log.
    Refuse(Reply, String),
    /// Accept with these header lines (LF-ended) put after our Received.
    Accept { headers: String, log: String },
}

/// Decides.
pub fn decide(i: &Inputs) -> Outcome {
    let mut problems: Vec<String> = Vec::new();
    if let Some(v) = &i.virus {
        match v {
            Ok(clamd::Verdict::Virus(name)) => {
                return Outcome::Refuse(
                    Reply::owned(554, "5.7.0", format!("Message refused: virus {name} found")),
                    format!("virus={name}"),
                )
            }
            Ok(clamd::Verdict::Clean) => {}
            Err(e) => problems.push(e.clone()),
        }
    }
    let mut reports: Vec<&spamd::Report> = Vec::new();
    let mut unchecked: Vec<&str> = Vec::new();
    for (name, answer) in [("spamd", &i.spam), ("rspamd", &i.rspamd)] {
        match answer {
            Some(Ok(r)) => reports.push(r),
            Some(Err(e)) => {
                problems.push(e.clone());
                unchecked.push(name);
            }
            None => {}
        }
    }
    if !problems.is_empty() && i.tempfail {
        return Outcome::Refuse(
            Reply::new(451, "4.7.1", "Content scanner unavailable, try again later"),
            format!("scanner failed: {}", problems.join("; ")),
        );
    }
    let content = reports
        .iter()
        .map(|r| r.score)
        .fold(None, |m: Option<f64>, s| Some(m.map_or(s, |m| m.max(s))));
    let score = content.unwrap_or(0.0) + i.conn_score as f64;
    let mut tests: Vec<String> = Vec::new();
    for t in reports.iter().flat_map(|r| r.tests.iter()) {
        if !tests.contains(t) {
            tests.push(t.clone());
        }
    }
    tests.extend(i.conn_tests.iter().cloned());
    if i.allowed {
        tests.push("KMP_ALLOWED_SENDER".into());
    }
    let over = |t: u32| score >= t as f64;
    let scored = !reports.is_empty() || !i.conn_tests.is_empty();
    if !i.allowed && scored {
        if let Some(r) = i.reject.filter(|r| *r > 0) {
            if over(r) {
                return Outcome::Refuse(
                    Reply::owned(
                        550,
                        "5.7.1",
                        format!("Message refused as spam (score {score:.1})"),
                    ),
                    format!("spam score={score:.1} tests={}", tests.join(",")),
                );
            }
        }
    }
    let spam = scored && !i.allowed && over(i.tag);
    let mut h = String::new();
    if i.spam.is_some() || i.rspamd.is_some() || scored {
        if spam {
            h.push_str("X-Spam-Flag: YES\n");
        }
        h.push_str(&format!("X-Spam-Score: {score:.1}\n"));
        let tests = if tests.is_empty() {
            "none".to_string()
        } else {
            tests.join(",")
        };
        let mut status = format!(
            "X-Spam-Status: {}, score={score:.1} required={}\n\ttests={tests}",
            if spam { "Yes" } else { "No" },
            i.tag
        );
        for name in &unchecked {
            status.push_str(&format!("\n\tunchecked ({name} unavailable)"));
        }
        h.push_str(&status);
        h.push('\n');
    }
    match &i.virus {
        Some(Ok(_)) => h.push_str("X-Virus-Scanned: clamd; clean\n"),
        Some(Err(_)) => h.push_str("X-Virus-Scanned: clamd; unchecked (clamd unavailable)\n"),
        None => {}
    }
    if spam {
        h.push_str(&format!("{JUNK_HEADER}: spam score={score:.1}\n"));
    }
    let mut log = format!("score={score:.1} spam={}", if spam { "yes" } else { "no" });
    if !problems.is_empty() {
        log.push_str(&format!(" unchecked=({})", problems.join("; ")));
    }
    Outcome::Accept { headers: h, log }
}

/// Removes the header fields named in [`OUR_HEADERS`] from the header
/// section at the start of `msg` (LF line ends), continuation lines too.
/// Only the header section is looked at; the body is left alone. Returns
/// whether anything was removed.
pub fn strip_ours(msg: &mut Vec<u8>, from: usize) -> bool {
    let mut out = Vec::with_capacity(msg.len());
    out.extend_from_slice(&msg[..from.min(msg.len())]);
    let mut i = from.min(msg.len());
    let mut dropping = false;
    let mut removed = false;
    while i < msg.len() {
        let end = msg[i..]
            .iter()
            .position(|&b| b == b'\n')
            .map(|p| i + p + 1)
            .unwrap_or(msg.len());
        let line = &msg[i..end];
        if line == b"\n" || line == b"\r\n" {
            // End of the header section: the rest goes as it is.
            out.extend_from_slice(&msg[i..]);
            i = msg.len();
            break;
        }
        let continuation = matches!(line.first(), Some(b' ' | b'\t'));
        if !continuation {
            dropping = line
                .iter()
                .position(|&b| b == b':')
                .map(|c| {
                    let name = String::from_utf8_lossy(&line[..c])
                        .trim()
                        .to_ascii_lowercase();
                    OUR_HEADERS.contains(&name.as_str())
                })
                .unwrap_or(false);
        }
        if dropping {
            removed = true;
        } else {
            out.extend_from_slice(line);
        }
        i = end;
    }
    let _ = i;
    if removed {
        *msg = out;
    }
    removed
}

/// The end of the header section (the offset after its empty line), if it
/// is within `msg`.
pub fn header_end(msg: &[u8]) -> Option<usize> {
    if msg.starts_with(b"\n") {
        return Some(1);
    }
    msg.windows(2).position(|w| w == b"\n\n").map(|p| p + 2)
}

/// The Sieve spamtest value (RFC 5235) of a score: 1 (tested, not spam)
/// to 10; with `percent`, 0 to 100 (a score of 10 or more is 100).
pub fn spamtest(score: f64, percent: bool) -> u32 {
    if percent {
        (score * 10.0).clamp(0.0, 100.0) as u32
    } else {
        score.floor().clamp(1.0, 10.0) as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs(score: f64) -> Inputs {
        Inputs {
            spam: Some(Ok(spamd::Report {
                score,
                tests: vec!["T1".into()],
            })),
            virus: Some(Ok(clamd::Verdict::Clean)),
            tag: 5,
            reject: Some(15),
            ..Inputs::default()
        }
    }

    fn headers(o: &Outcome) -> &str {
        match o {
            Outcome::Accept { headers, .. } => headers,
            Outcome::Refuse(r, _) => panic!("refused: {r:?}"),
        }
    }

    #[test]
    fn scores_decide() {
        let h = decide(&inputs(1.0));
        let h = headers(&h);
        assert!(h.contains("X-Spam-Status: No, score=1.0 required=5"), "{h}");
        assert!(h.contains("X-Virus-Scanned: clamd; clean"));
        assert!(!h.contains("X-Spam-Flag"));
        assert!(!h.contains(JUNK_HEADER));
        let j = decide(&inputs(7.25));
        let j = headers(&j);
        assert!(j.contains("X-Spam-Flag: YES\n"));
        assert!(j.contains("X-Spam-Score: 7.2\n") || j.contains("X-Spam-Score: 7.3\n"));
        assert!(j.contains("X-Kmpromail-Junk: spam score="));
        match decide(&inputs(1000.0)) {
            Outcome::Refuse(r, _) => assert_eq!((r.code, r.status), (550, Some("5.7.1"))),
            o => panic!("{o:?}"),
        }
        // Allowed by a recipient: not refused, not junk.
        let mut a = inputs(1000.0);
        a.allowed = true;
        let a = decide(&a);
        assert!(headers(&a).contains("KMP_ALLOWED_SENDER"));
        assert!(!headers(&a).contains(JUNK_HEADER));
        // A recipient who never refuses.
        let mut n = inputs(1000.0);
        n.reject = None;
        assert!(headers(&decide(&n)).contains(JUNK_HEADER));
    }

    #[test]
    fn viruses_and_failures() {
        let mut v = inputs(0.0);
        v.virus = Some(Ok(clamd::Verdict::Virus("Eicar-Test".into())));
        match decide(&v) {
            Outcome::Refuse(r, _) => {
                assert_eq!((r.code, r.status), (554, Some("5.7.0")));
                assert!(r.text.contains("Eicar-Test"));
            }
            o => panic!("{o:?}"),
        }
        let mut f = inputs(0.0);
        f.spam = Some(Err("spamd: connection refused".into()));
        let o = decide(&f);
        assert!(headers(&o).contains("unchecked"), "{o:?}");
        f.tempfail = true;
        match decide(&f) {
            Outcome::Refuse(r, _) => assert_eq!((r.code, r.status), (451, Some("4.7.1"))),
            o => panic!("{o:?}"),
        }
    }

    #[test]
    fn with_spamd_and_rspamd_the_higher_score_counts() {
        let mut both = inputs(2.0);
        both.rspamd = Some(Ok(spamd::Report {
            score: 8.0,
            tests: vec!["T1".into(), "R2".into()],
        }));
        let o = decide(&both);
        let h = headers(&o);
        assert!(h.contains("X-Spam-Score: 8.0\n"), "{h}");
        assert!(h.contains("tests=T1,R2\n"), "{h}");
        assert!(h.contains(JUNK_HEADER));
        // One of them down: the other's score, marked unchecked.
        both.rspamd = Some(Err("rspamd: refused".into()));
        let o = decide(&both);
        let h = headers(&o);
        assert!(h.contains("X-Spam-Score: 2.0\n"), "{h}");
        assert!(h.contains("unchecked (rspamd unavailable)"), "{h}");
        // rspamd alone, GTUBE (a pre-result): refused.
        let mut r = inputs(0.0);
        r.spam = None;
        r.rspamd = Some(Ok(spamd::Report {
            score: super::super::rspamd::PRE_RESULT_SCORE,
            tests: vec!["GTUBE".into()],
        }));
        match decide(&r) {
            Outcome::Refuse(r, _) => assert_eq!((r.code, r.status), (550, Some("5.7.1"))),
            o => panic!("{o:?}"),
        }
    }

    #[test]
    fn our_headers_are_stripped_from_the_header_only() {
        let mut m = b"Received: x\nX-Spam-Flag: NO\nSubject: a\nX-Kmpromail-Junk: no\n  folded\nx-spam-score: -5\n\nX-Spam-Flag: body\n".to_vec();
        assert!(strip_ours(&mut m, 0));
        assert_eq!(
            m,
            b"Received: x\nSubject: a\n\nX-Spam-Flag: body\n".to_vec()
        );
        let mut clean = b"Subject: a\n\nbody\n".to_vec();
        assert!(!strip_ours(&mut clean, 0));
        assert_eq!(header_end(b"A: b\n\nc"), Some(6));
        assert_eq!(header_end(b"A: b\nc"), None);
    }

    #[test]
    fn spamtest_values() {
        assert_eq!(spamtest(-3.0, false), 1);
        assert_eq!(spamtest(5.4, false), 5);
        assert_eq!(spamtest(1000.0, false), 10);
        assert_eq!(spamtest(5.0, true), 50);
        assert_eq!(spamtest(1000.0, true), 100);
    }
}
