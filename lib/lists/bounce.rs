//! Bounces of list mail, and ezmlm-warn's warn-then-remove.
//!
//! List mail to a remote member leaves with the return path
//! `LIST-bounce-MEMBER=DOMAIN@` (VERP, [`super::verp`]), so whatever comes
//! back there names the member whatever the bounce says: the member is
//! taken from the address, never from the report, which a forwarding
//! member's far server words in terms of an address we never sent to.
//! The report only says whether it is a bounce at all ([`classify`]): an
//! RFC 3464 report with a recipient whose `Action:` is `failed` is one;
//! one whose recipients are all `delayed`, `delivered`, `relayed` or
//! `expanded` is not (a warning, a success report); a message without a
//! report is taken for a bounce (many servers still send plain text), unless
//! it calls itself an auto-reply (`Auto-Submitted: auto-replied` without a
//! report: a vacation message sent to the return path).
//!
//! Each member's bounces are counted by day in a small file of the list's
//! state directory ([`BounceBook`]). As ezmlm-warn does: once the address
//! has bounced on `lists.bounce_warn_days` days the list sends it a warning
//! probe, whose own return path is a confirmation cookie (action `w`, see
//! [`super::cookie`]) so a bounce of the probe is recognised and cannot be
//! forged by someone who has not seen the probe; if the probe bounces, or
//! the address bounces on `lists.bounce_remove_days` more days, the member
//! is removed. An address that stops bouncing for `lists.bounce_forget`
//! starts afresh. Each step is logged by the caller from the [`Step`].

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use mail_parser::{MessageParser, MimeHeaders};

use super::verp::Member;

/// What a message to a bounce address is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// A delivery status report with failed recipients: (recipient, status).
    Failed(Vec<(String, String)>),
    /// A report without a failure (delayed, delivered, relayed, expanded).
    NotFailed,
    /// No report: a plain-text bounce, counted.
    Unknown,
    /// An auto-reply (vacation) sent to the return path: not counted.
    AutoReply,
}

impl Kind {
    /// Whether it counts as a bounce.
    pub fn counts(&self) -> bool {
        matches!(self, Kind::Failed(_) | Kind::Unknown)
    }
}

/// What a message that came back to `LIST-bounce-...@` is.
pub fn classify(raw: &[u8]) -> Kind {
    let Some(msg) = MessageParser::default().parse(raw) else {
        return Kind::Unknown;
    };
    let mut report = None;
    for part in msg.parts.iter() {
        let Some(ct) = part.content_type() else {
            continue;
        };
        let sub = ct.subtype().unwrap_or("").to_ascii_lowercase();
        if ct.ctype().eq_ignore_ascii_case("message")
            && (sub == "delivery-status" || sub == "global-delivery-status")
        {
            report = Some(part.contents().to_vec());
            break;
        }
    }
    match report {
        Some(fields) => {
            let failed: Vec<(String, String)> = recipients(&fields)
                .into_iter()
                .filter(|r| r.action.eq_ignore_ascii_case("failed"))
                .map(|r| (r.recipient, r.status))
                .collect();
            if failed.is_empty() {
                Kind::NotFailed
            } else {
                Kind::Failed(failed)
            }
        }
        None => {
            let auto = msg
                .header_raw("Auto-Submitted")
                .map(|v| v.trim().to_ascii_lowercase())
                .is_some_and(|v| v.starts_with("auto-replied"));
            if auto {
                Kind::AutoReply
            } else {
                Kind::Unknown
            }
        }
    }
}

/// One per-recipient block of a delivery status report (RFC 3464 2.3).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RecipientStatus {
    /// Final-Recipient's address (the type `rfc822;` taken off).
    pub recipient: String,
    pub action: String,
    pub status: String,
}

/// The per-recipient blocks of a `message/delivery-status` body: blocks of
/// header-like fields separated by empty lines, the first per message.
pub fn recipients(fields: &[u8]) -> Vec<RecipientStatus> {
    let text = String::from_utf8_lossy(fields).replace("\r\n", "\n");
    let mut out = Vec::new();
    for block in text.split("\n\n").skip(1) {
        let mut r = RecipientStatus::default();
        // Unfold continuation lines first.
        let unfolded = block.replace("\n ", " ").replace("\n\t", " ");
        for line in unfolded.lines() {
            let Some((name, value)) = line.split_once(':') else {
                continue;
            };
            let value = value.trim();
            match name.trim().to_ascii_lowercase().as_str() {
                "final-recipient" => {
                    r.recipient = value
                        .split_once(';')
                        .map_or(value, |(_, a)| a)
                        .trim()
                        .to_string()
                }
                "action" => r.action = value.split_whitespace().next().unwrap_or("").to_string(),
                "status" => r.status = value.split_whitespace().next().unwrap_or("").to_string(),
                _ => {}
            }
        }
        if !r.action.is_empty() {
            out.push(r);
        }
    }
    out
}

/// The limits of warn-then-remove.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// `lists.bounce_warn_days`.
    pub warn_days: u32,
    /// `lists.bounce_remove_days`.
    pub remove_days: u32,
    /// `lists.bounce_forget`, seconds.
    pub forget: u64,
}

impl Policy {
    pub fn from_config(cfg: &crate::config::Config) -> Policy {
        Policy {
            warn_days: u32::try_from(cfg.u64("lists.bounce_warn_days")).unwrap_or(u32::MAX),
            remove_days: u32::try_from(cfg.u64("lists.bounce_remove_days")).unwrap_or(u32::MAX),
            forget: cfg.duration("lists.bounce_forget").as_secs(),
        }
    }
}

/// One member's bounces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Record {
    /// Unix seconds of the first and the last bounce counted.
    pub first: u64,
    pub last: u64,
    /// Days with a bounce.
    pub days: u32,
    /// Unix seconds of the warning probe, if one was sent.
    pub warned: Option<u64>,
    /// Days with a bounce after the warning.
    pub days_after_warning: u32,
}

/// What a bounce led to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Counted; nothing else yet.
    Counted { days: u32 },
    /// Not a bounce: nothing counted.
    Ignored,
    /// Time to send the warning probe.
    Warn { days: u32 },
    /// Time to remove the member.
    Remove { days: u32 },
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::Counted { days } => write!(f, "bounce counted, {days} day(s) of bounces"),
            Step::Ignored => f.write_str("not a bounce, ignored"),
            Step::Warn { days } => write!(f, "{days} day(s) of bounces, warning probe sent"),
            Step::Remove { days } => write!(f, "{days} day(s) of bounces, member removed"),
        }
    }
}

/// Counts a bounce at `now` into `rec` (None: the first one) and says what
/// follows. Pure: the caller stores the record and acts.
pub fn on_bounce(rec: Option<Record>, now: u64, p: &Policy) -> (Record, Step) {
    let day = now / 86400;
    let mut r = match rec {
        Some(r) if now.saturating_sub(r.last) <= p.forget => r,
        _ => Record {
            first: now,
            last: now,
            ..Record::default()
        },
    };
    let new_day = r.days == 0 || r.last / 86400 != day;
    r.last = now;
    if new_day {
        r.days += 1;
        if r.warned.is_some_and(|w| w / 86400 != day) {
            r.days_after_warning += 1;
        }
    }
    let step = match r.warned {
        None if r.days >= p.warn_days => {
            r.warned = Some(now);
            Step::Warn { days: r.days }
        }
        Some(_) if r.days_after_warning >= p.remove_days => Step::Remove { days: r.days },
        _ => Step::Counted { days: r.days },
    };
    (r, step)
}

/// The bounce records of one list: a file per member in `dir`.
#[derive(Debug, Clone)]
pub struct BounceBook {
    dir: PathBuf,
}

impl BounceBook {
    /// The records under `dir` (made when first written).
    pub fn new(dir: &Path) -> BounceBook {
        BounceBook {
            dir: dir.to_path_buf(),
        }
    }

    /// A member's file: the SHA-256 of the folded address, so any member
    /// address makes a short, safe name.
    fn path(&self, m: &Member) -> PathBuf {
        let d = ring::digest::digest(&ring::digest::SHA256, m.folded().as_bytes());
        let hex: String = d.as_ref()[..16]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        self.dir.join(hex)
    }

    /// The member's record, if any (an unreadable one counts as none).
    pub fn get(&self, m: &Member) -> Option<Record> {
        let text = std::fs::read_to_string(self.path(m)).ok()?;
        let mut lines = text.lines();
        if lines.next()? != m.folded() {
            return None;
        }
        let v: Vec<u64> = lines
            .next()?
            .split_whitespace()
            .filter_map(|x| x.parse().ok())
            .collect();
        let [first, last, days, warned, after] = v[..] else {
            return None;
        };
        Some(Record {
            first,
            last,
            days: u32::try_from(days).ok()?,
            warned: (warned != 0).then_some(warned),
            days_after_warning: u32::try_from(after).ok()?,
        })
    }

    /// Writes the member's record (a new file renamed over the old).
    pub fn put(&self, m: &Member, r: &Record) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        let path = self.path(m);
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        let mut f = std::fs::File::create(&tmp)?;
        writeln!(f, "{}", m.folded())?;
        writeln!(
            f,
            "{} {} {} {} {}",
            r.first,
            r.last,
            r.days,
            r.warned.unwrap_or(0),
            r.days_after_warning
        )?;
        drop(f);
        std::fs::rename(&tmp, &path)
    }

    /// Forgets the member (removed, or unsubscribed).
    pub fn forget(&self, m: &Member) {
        let _ = std::fs::remove_file(self.path(m));
    }

    /// Counts a bounce of `m` at `now` and stores it.
    pub fn record(&self, m: &Member, now: u64, p: &Policy) -> std::io::Result<Step> {
        let (r, step) = on_bounce(self.get(m), now, p);
        if matches!(step, Step::Remove { .. }) {
            self.forget(m);
        } else {
            self.put(m, &r)?;
        }
        Ok(step)
    }

    /// Removes the records of addresses that stopped bouncing `p.forget`
    /// ago; returns how many.
    pub fn sweep(&self, now: u64, p: &Policy) -> usize {
        let Ok(rd) = std::fs::read_dir(&self.dir) else {
            return 0;
        };
        let mut n = 0;
        for e in rd.flatten() {
            let path = e.path();
            let Ok(text) = std::fs::read_to_string(&path) else {
                continue;
            };
            let last = text
                .lines()
                .nth(1)
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|x| x.parse::<u64>().ok());
            if last.is_none_or(|l| now.saturating_sub(l) > p.forget) {
                let _ = std::fs::remove_file(&path);
                n += 1;
            }
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lists::verp;

    const DAY: u64 = 86400;
    const T0: u64 = 1_796_000_000 / DAY * DAY + 3600;
    const P: Policy = Policy {
        warn_days: 3,
        remove_days: 2,
        forget: 21 * DAY,
    };

    fn dsn(action: &str, status: &str) -> Vec<u8> {
        format!(
            "From: MAILER-DAEMON@far.example\r\nTo: dev-bounce-bob=far.example@example.org\r\n\
             Subject: Undelivered Mail\r\nMIME-Version: 1.0\r\nAuto-Submitted: auto-replied\r\n\
             Content-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\r\n\r\n\
             --b\r\nContent-Type: text/plain\r\n\r\nSorry.\r\n\
             --b\r\nContent-Type: message/delivery-status\r\n\r\n\
             Reporting-MTA: dns; far.example\r\n\r\n\
             Final-Recipient: rfc822;\r\n bob@far.example\r\nAction: {action}\r\nStatus: {status} (mailbox)\r\n\r\n\
             --b\r\nContent-Type: text/rfc822-headers\r\n\r\nSubject: hi\r\n\r\n--b--\r\n"
        )
        .into_bytes()
    }

    #[test]
    fn reports_are_read_for_whether_they_are_bounces() {
        assert_eq!(
            classify(&dsn("failed", "5.1.1")),
            Kind::Failed(vec![("bob@far.example".into(), "5.1.1".into())])
        );
        assert_eq!(classify(&dsn("delayed", "4.4.1")), Kind::NotFailed);
        assert_eq!(classify(&dsn("delivered", "2.0.0")), Kind::NotFailed);
        let plain = b"From: MAILER-DAEMON@far.example\nSubject: failure notice\n\nHi. This is the qmail-send program.\n";
        assert_eq!(classify(plain), Kind::Unknown);
        let vacation =
            b"From: bob@far.example\nAuto-Submitted: auto-replied\nSubject: Away\n\nI am away.\n";
        assert_eq!(classify(vacation), Kind::AutoReply);
        assert!(!Kind::AutoReply.counts() && !Kind::NotFailed.counts());
        assert!(Kind::Unknown.counts());
    }

    #[test]
    fn several_recipients_and_folded_fields() {
        let f = b"Reporting-MTA: dns; x\n\nFinal-Recipient: rfc822; a@x.org\nAction: delayed\nStatus: 4.0.0\n\nFinal-Recipient: RFC822;\n\tb@x.org\nAction: Failed\nStatus: 5.2.2\n";
        let r = recipients(f);
        assert_eq!(r.len(), 2);
        assert_eq!(r[1].recipient, "b@x.org");
        assert_eq!(r[1].action, "Failed");
        assert_eq!(r[1].status, "5.2.2");
    }

    #[test]
    fn warned_after_n_days_removed_after_m_more() {
        let (r, s) = on_bounce(None, T0, &P);
        assert_eq!(s, Step::Counted { days: 1 });
        // A second bounce the same day is not a second day.
        let (r, s) = on_bounce(Some(r), T0 + 60, &P);
        assert_eq!(s, Step::Counted { days: 1 });
        let (r, s) = on_bounce(Some(r), T0 + DAY, &P);
        assert_eq!(s, Step::Counted { days: 2 });
        let (r, s) = on_bounce(Some(r), T0 + 2 * DAY, &P);
        assert_eq!(s, Step::Warn { days: 3 });
        assert_eq!(r.warned, Some(T0 + 2 * DAY));
        // Bounces on the day of the warning do not count after it.
        let (r, s) = on_bounce(Some(r), T0 + 2 * DAY + 60, &P);
        assert_eq!(s, Step::Counted { days: 3 });
        let (r, s) = on_bounce(Some(r), T0 + 3 * DAY, &P);
        assert_eq!(s, Step::Counted { days: 4 });
        let (_, s) = on_bounce(Some(r), T0 + 5 * DAY, &P);
        assert_eq!(s, Step::Remove { days: 5 });
    }

    #[test]
    fn an_address_that_stops_bouncing_starts_afresh() {
        let (r, _) = on_bounce(None, T0, &P);
        let (r, _) = on_bounce(Some(r), T0 + DAY, &P);
        let (r, s) = on_bounce(Some(r), T0 + 30 * DAY, &P);
        assert_eq!(s, Step::Counted { days: 1 });
        assert_eq!(r.first, T0 + 30 * DAY);
        // One day of bounces is enough when the policy says so.
        let p1 = Policy {
            warn_days: 1,
            remove_days: 1,
            forget: DAY,
        };
        assert_eq!(on_bounce(None, T0, &p1).1, Step::Warn { days: 1 });
    }

    #[test]
    fn the_book_keeps_records_per_member_and_sweeps_old_ones() {
        let dir = std::env::temp_dir().join(format!("kmp-bounce-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let book = BounceBook::new(&dir);
        let bob = verp::member("Bob/x@far.example").unwrap();
        let amy = verp::member("amy@far.example").unwrap();
        assert_eq!(
            book.record(&bob, T0, &P).unwrap(),
            Step::Counted { days: 1 }
        );
        assert_eq!(
            book.record(&bob, T0 + DAY, &P).unwrap(),
            Step::Counted { days: 2 }
        );
        assert_eq!(
            book.record(&amy, T0 + DAY, &P).unwrap(),
            Step::Counted { days: 1 }
        );
        assert_eq!(book.get(&bob).unwrap().days, 2);
        // The same member in another case is the same record.
        let bob2 = verp::member("BOB/X@FAR.example").unwrap();
        assert_eq!(book.get(&bob2).unwrap().days, 2);
        assert_eq!(
            book.record(&bob, T0 + 2 * DAY, &P).unwrap(),
            Step::Warn { days: 3 }
        );
        assert_eq!(
            book.record(&bob, T0 + 3 * DAY, &P).unwrap(),
            Step::Counted { days: 4 }
        );
        assert_eq!(
            book.record(&bob, T0 + 4 * DAY, &P).unwrap(),
            Step::Remove { days: 5 }
        );
        assert!(book.get(&bob).is_none());
        assert_eq!(book.sweep(T0 + 40 * DAY, &P), 1);
        assert!(book.get(&amy).is_none());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
