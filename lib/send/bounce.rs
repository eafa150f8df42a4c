//! Delivery status notifications (RFC 3464) with enhanced status codes
//! (RFC 3463): bounces, delay warnings and success reports, built with
//! mail-builder as `multipart/report; report-type=delivery-status`.
//!
//! RFC 3464 section 2: "The DSN is a MIME message with a top-level
//! content-type of multipart/report... The first component is a
//! human-readable explanation... The second component... is of
//! content-type message/delivery-status. A third component... may be
//! included" (the original message, or its headers as RET=HDRS asks).
//!
//! This module only builds the message; `send/mod.rs` decides who gets one
//! (never the null sender; a bounce that bounces goes to the postmaster).

use std::borrow::Cow;
use std::fmt::Write as _;

use mail_builder::headers::content_type::ContentType;
use mail_builder::headers::date::Date;
use mail_builder::headers::raw::Raw;
use mail_builder::mime::{BodyPart, MimePart};
use mail_builder::MessageBuilder;

use crate::queue::record::{Rcpt, Record};
use crate::queue::{QueueId, Ret};

/// Above this size a bounce returns only the original's headers.
pub const MAX_RETURNED: usize = 10 << 20;

/// Which kind of report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Permanent failure (or expiry): Action: failed.
    Failed,
    /// Still trying: Action: delayed.
    Delayed,
    /// Delivered (NOTIFY=SUCCESS): Action: delivered or relayed per recipient.
    Success,
}

/// What a report is about.
pub struct Report<'a> {
    pub kind: Kind,
    pub qid: &'a QueueId,
    pub rec: &'a Record,
    /// The recipients reported on, by index.
    pub rcpts: &'a [usize],
    /// The reporting host (`system.hostname`).
    pub hostname: &'a str,
    /// Seconds since the epoch, now.
    pub now: u64,
    /// How long the queue keeps trying (for Will-Retry-Until), seconds.
    pub lifetime: u64,
    /// The original message (LF line endings).
    pub original: &'a [u8],
    /// Who receives the report.
    pub to: &'a str,
}

/// Builds the report; LF line endings, ready for the queue.
pub fn build(r: &Report) -> Vec<u8> {
    let subject = match r.kind {
        Kind::Failed => "Undelivered Mail Returned to Sender",
        Kind::Delayed => "Delayed Mail (still being retried)",
        Kind::Success => "Successful Mail Delivery Report",
    };
    let human = human_text(r);
    let status = status_text(r);
    let full = r.kind == Kind::Failed && r.rec.ret != Some(Ret::Hdrs);
    let third = if full && r.original.len() <= MAX_RETURNED {
        raw_part("message/rfc822", r.original.to_vec())
    } else {
        raw_part("text/rfc822-headers", header_section(r.original).to_vec())
    };
    let report = MimePart::new(
        ContentType::new("multipart/report").attribute("report-type", "delivery-status"),
        vec![
            MimePart::new(ContentType::new("text/plain"), human),
            raw_part("message/delivery-status", status.into_bytes()),
            third,
        ],
    );
    let from = format!("MAILER-DAEMON@{}", r.hostname);
    let msg = MessageBuilder::new()
        .from(("Mail Delivery System", from.as_str()))
        .to(r.to)
        .subject(subject)
        .date(Date::new(r.now as i64))
        .message_id(format!(
            "{}.{}.{}@{}",
            r.qid,
            match r.kind {
                Kind::Failed => "bounce",
                Kind::Delayed => "delay",
                Kind::Success => "success",
            },
            r.now,
            r.hostname
        ))
        .header("Auto-Submitted", Raw::new("auto-replied"))
        .body(report);
    // Invariant: writing to a Vec cannot fail.
    let bytes = msg.write_to_vec().expect("writing to memory");
    crate::queue::incoming::to_lf(&bytes)
}

/// A leaf part written as is (7bit or 8bit, never re-encoded: RFC 2046
/// forbids encoding message/rfc822 other than 7bit, 8bit or binary).
fn raw_part(ctype: &'static str, body: Vec<u8>) -> MimePart<'static> {
    let enc = if body.iter().any(|&b| b >= 0x80) {
        "8bit"
    } else {
        "7bit"
    };
    // The body goes inside a CRLF message: give it CRLF line endings too.
    let body = crlf(&body);
    MimePart {
        headers: vec![(
            Cow::Borrowed("Content-Type"),
            ContentType::new(ctype).into(),
        )],
        contents: BodyPart::Binary(Cow::Owned(body)),
    }
    .transfer_encoding(enc)
}

fn crlf(lf: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(lf.len() + lf.len() / 40);
    for &b in lf {
        if b == b'\n' {
            out.push(b'\r');
        }
        out.push(b);
    }
    out
}

/// The header section of a message (up to and including the empty line).
pub fn header_section(msg: &[u8]) -> &[u8] {
    if msg.starts_with(b"\n") {
        return &msg[..0];
    }
    match msg.windows(2).position(|w| w == b"\n\n") {
        Some(p) => &msg[..p + 1],
        None => msg,
    }
}

fn human_text(r: &Report) -> String {
    let mut t = format!("This is the mail system at host {}.\n\n", r.hostname);
    t.push_str(match r.kind {
        Kind::Failed => {
            "I'm sorry to have to inform you that your message could not\n\
             be delivered to one or more recipients. It's attached below.\n\n\
             For further assistance, please send mail to postmaster.\n\n\
             If you do so, please include this problem report. You can\n\
             delete your own text from the attached returned message.\n\n"
        }
        Kind::Delayed => {
            "####################################################################\n\
             # THIS IS A WARNING ONLY.  YOU DO NOT NEED TO RESEND YOUR MESSAGE. #\n\
             ####################################################################\n\n\
             Your message could not be delivered for some time. It will be retried\n\
             until it is too old. The mail system will tell you if it gives up.\n\n"
        }
        Kind::Success => {
            "Your message was successfully delivered to the destination(s)\n\
             listed below. If the message was delivered to a mailbox you will\n\
             receive no further notifications. Otherwise you may still receive\n\
             notifications of mail delivery errors from other systems.\n\n"
        }
    });
    t.push_str("                   The mail system\n\n");
    for &i in r.rcpts {
        let rc = &r.rec.rcpts[i];
        let _ = writeln!(t, "<{}>: {}\n", rc.address, rc.text);
    }
    t
}

fn status_text(r: &Report) -> String {
    let date = |secs: u64| Date::new(secs as i64).to_rfc822();
    let mut t = String::new();
    let _ = writeln!(t, "Reporting-MTA: dns; {}", r.hostname);
    let _ = writeln!(t, "X-Kmpromail-Queue-ID: {}", r.qid);
    if let Some(envid) = &r.rec.envid {
        let _ = writeln!(t, "Original-Envelope-Id: {}", one_line(envid));
    }
    if !r.rec.sender.is_empty() {
        let _ = writeln!(t, "X-Kmpromail-Sender: rfc822; {}", one_line(&r.rec.sender));
    }
    let _ = writeln!(t, "Arrival-Date: {}", date(r.rec.arrived()));
    for &i in r.rcpts {
        let rc: &Rcpt = &r.rec.rcpts[i];
        t.push('\n');
        let _ = writeln!(t, "Final-Recipient: rfc822; {}", one_line(&rc.address));
        if let Some(o) = &rc.orcpt {
            let _ = writeln!(t, "Original-Recipient: {}", orcpt_field(o));
        }
        let action = match (r.kind, rc.status) {
            (Kind::Failed, _) => "failed",
            (Kind::Delayed, _) => "delayed",
            (Kind::Success, crate::queue::record::RcptStatus::Relayed) => "relayed",
            (Kind::Success, _) => "delivered",
        };
        let _ = writeln!(t, "Action: {action}");
        let _ = writeln!(t, "Status: {}", status_code(&rc.dsn, r.kind));
        if let Some(m) = &rc.remote_mta {
            let _ = writeln!(t, "Remote-MTA: dns; {}", one_line(m));
        }
        let diag = match &rc.diagnostic {
            Some(d) => one_line(d),
            None => format!("x-kmpromail; {}", one_line(&rc.text)),
        };
        let _ = writeln!(t, "Diagnostic-Code: {diag}");
        if rc.last_attempt > 0 {
            let _ = writeln!(t, "Last-Attempt-Date: {}", date(rc.last_attempt));
        }
        if r.kind == Kind::Delayed {
            let _ = writeln!(
                t,
                "Will-Retry-Until: {}",
                date(r.rec.arrived() + r.lifetime)
            );
        }
    }
    t
}

/// A valid RFC 3463 code for the report, falling back to a generic one.
fn status_code(dsn: &str, kind: Kind) -> String {
    let ok = {
        let parts: Vec<&str> = dsn.split('.').collect();
        parts.len() == 3
            && matches!(parts[0], "2" | "4" | "5")
            && parts[1..]
                .iter()
                .all(|p| !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()))
    };
    match (ok, kind) {
        (true, _) => dsn.to_string(),
        (false, Kind::Failed) => "5.0.0".into(),
        (false, Kind::Delayed) => "4.0.0".into(),
        (false, Kind::Success) => "2.0.0".into(),
    }
}

/// ORCPT as given (`rfc822;user@example.com`) as a field value.
fn orcpt_field(o: &str) -> String {
    match o.split_once(';') {
        Some((t, a)) => format!("{}; {}", t.trim(), one_line(a.trim())),
        None => format!("rfc822; {}", one_line(o)),
    }
}

/// Text from a peer or a user, made safe for one header line.
fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .trim()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::record::RcptStatus;
    use crate::queue::{Envelope, Recipient};

    #[test]
    fn a_bounce_is_a_well_formed_report() {
        let mut env = Envelope::new(
            "alice@example.test",
            vec![Recipient::new("nobody@example.test")],
        );
        env.envid = Some("ENV42".into());
        env.recipients[0].orcpt = Some("rfc822;nobody@example.test".into());
        let mut rec = Record::new(&env, 1_700_000_000_000, 30);
        rec.rcpts[0].status = RcptStatus::Bounced;
        rec.rcpts[0].dsn = "5.1.1".into();
        rec.rcpts[0].text = "unknown user: \"nobody\"".into();
        rec.rcpts[0].last_attempt = 1_700_000_001;
        let qid = QueueId::now();
        let original = b"Subject: hello\nFrom: alice@example.test\n\nbody line\n";
        let out = build(&Report {
            kind: Kind::Failed,
            qid: &qid,
            rec: &rec,
            rcpts: &[0],
            hostname: "mx.example.test",
            now: 1_700_000_002,
            lifetime: 100,
            original,
            to: "alice@example.test",
        });
        let text = String::from_utf8(out).unwrap();
        assert!(!text.contains('\r'));
        for want in [
            "multipart/report",
            "report-type=\"delivery-status\"",
            "Content-Type: message/delivery-status",
            "Reporting-MTA: dns; mx.example.test",
            "Original-Envelope-Id: ENV42",
            "Final-Recipient: rfc822; nobody@example.test",
            "Original-Recipient: rfc822; nobody@example.test",
            "Action: failed",
            "Status: 5.1.1",
            "Diagnostic-Code: x-kmpromail; unknown user: \"nobody\"",
            "Content-Type: message/rfc822",
            "\n\nbody line\n",
            "Auto-Submitted: auto-replied",
        ] {
            assert!(text.contains(want), "missing {want:?} in\n{text}");
        }
    }

    #[test]
    fn header_sections_end_at_the_first_empty_line() {
        assert_eq!(header_section(b"A: b\n\nbody\n\nmore"), b"A: b\n");
        assert_eq!(header_section(b"A: b\n"), b"A: b\n");
        assert_eq!(header_section(b"\nbody"), b"");
    }

    #[test]
    fn bad_codes_fall_back() {
        assert_eq!(status_code("5.1.1", Kind::Failed), "5.1.1");
        assert_eq!(status_code("x", Kind::Failed), "5.0.0");
        assert_eq!(status_code("", Kind::Delayed), "4.0.0");
        assert_eq!(status_code("4.4.1", Kind::Failed), "4.4.1");
    }
}
