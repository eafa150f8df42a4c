//! `kmpctl queue`: list, show, flush, hold, release, delete, requeue, by
//! asking kmp-send over its control socket (as `postqueue` asks showq and
//! `postsuper` edits the queue). Also the `mailq` format, shared with
//! kmp-inject.

use std::fmt::Write as _;

use clap::Subcommand;
use serde_json::json;

use super::output::{print_value, Table};
use super::{CtlError, CtlResult, Ctx};
use crate::exit;
use crate::ipc::control::{self, ClientError, ErrorKind, ListEntry, Reply, Request};
use crate::paths::Paths;
use crate::queue::record::Record;

/// The queue verbs.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub verb: Verb,
}

#[derive(Debug, Subcommand)]
pub enum Verb {
    /// List the queued messages (`--mailq` prints Postfix's mailq format).
    List {
        #[arg(long)]
        mailq: bool,
    },
    /// Show one message: envelope, recipients' states, and its text.
    Show { qid: String },
    /// Try every deferred message now.
    Flush,
    /// Stop delivery attempts of a message until it is released.
    Hold { qid: String },
    /// Release a held message and try it now.
    Release { qid: String },
    /// Remove a message from the queue without notice to anyone.
    #[command(visible_alias = "del")]
    Delete { qid: String },
    /// Route a message's recipients afresh, release it and try it now.
    Requeue { qid: String },
}

/// Runs a queue verb.
pub fn run(ctx: &Ctx, a: Args) -> CtlResult {
    // Lenient: a typo in the file must not hide the queue of a running system.
    let cfg = ctx.config_lenient()?;
    let paths = Paths::new(&cfg);
    let socket = paths.send_socket();
    let ask = |req: Request| -> Result<Reply, CtlError> {
        match control::call(&socket, req) {
            Ok(Reply::Error { kind, message }) => Err(CtlError::new(
                match kind {
                    ErrorKind::NotFound => exit::NOUSER,
                    ErrorKind::Denied => exit::NOPERM,
                    ErrorKind::BadRequest => exit::USAGE,
                    ErrorKind::Temporary => exit::TEMPFAIL,
                },
                message,
            )),
            Ok(r) => Ok(r),
            Err(ClientError::Denied(p)) => Err(CtlError::new(
                exit::NOPERM,
                format!("permission denied: {}", p.display()),
            )),
            Err(e @ ClientError::Unavailable(..)) => {
                Err(CtlError::new(exit::UNAVAILABLE, e.to_string()))
            }
            Err(e) => Err(CtlError::new(exit::PROTOCOL, e.to_string())),
        }
    };
    let unexpected = || CtlError::new(exit::PROTOCOL, "unexpected answer from kmp-send");
    match a.verb {
        Verb::List { mailq } => {
            let Reply::List { entries } = ask(Request::List)? else {
                return Err(unexpected());
            };
            if mailq && !ctx.json {
                print!("{}", mailq_text(&entries));
                return Ok(());
            }
            let mut t = Table::new(&[
                "qid",
                "size",
                "arrived",
                "sender",
                "state",
                "recipients",
                "reason",
            ]);
            for e in &entries {
                t.push(vec![
                    e.qid.clone(),
                    e.size.to_string(),
                    date(e.arrived),
                    sender_name(&e.sender),
                    state(e).into(),
                    e.recipients
                        .iter()
                        .map(|r| r.address.as_str())
                        .collect::<Vec<_>>()
                        .join(","),
                    e.reason.clone(),
                ]);
            }
            let value = serde_json::to_value(&entries).unwrap_or_default();
            print_value(ctx.json, &value, &t.render());
            Ok(())
        }
        Verb::Show { qid } => {
            let Reply::Show {
                qid,
                active,
                record,
            } = ask(Request::Show { qid })?
            else {
                return Err(unexpected());
            };
            let path = crate::send::attempt::message_path(
                &paths.queue,
                &qid.parse().map_err(|_| unexpected())?,
            );
            let text = std::fs::read(&path).ok();
            let value = json!({
                "qid": qid,
                "active": active,
                "record": record,
                "message": text.as_ref().map(|t| String::from_utf8_lossy(t).to_string()),
            });
            print_value(
                ctx.json,
                &value,
                &show_text(&qid, active, &record, text.as_deref()),
            );
            Ok(())
        }
        Verb::Flush => done(ctx, ask(Request::Flush)?, "messages to be tried now"),
        Verb::Hold { qid } => done(
            ctx,
            ask(Request::Hold { qid: qid.clone() })?,
            &format!("{qid}: placed on hold"),
        ),
        Verb::Release { qid } => done(
            ctx,
            ask(Request::Release { qid: qid.clone() })?,
            &format!("{qid}: released from hold"),
        ),
        Verb::Delete { qid } => done(
            ctx,
            ask(Request::Delete { qid: qid.clone() })?,
            &format!("{qid}: deleted"),
        ),
        Verb::Requeue { qid } => done(
            ctx,
            ask(Request::Requeue { qid: qid.clone() })?,
            &format!("{qid}: requeued"),
        ),
    }
}

fn done(ctx: &Ctx, r: Reply, what: &str) -> CtlResult {
    let Reply::Done { count } = r else {
        return Err(CtlError::new(
            exit::PROTOCOL,
            "unexpected answer from kmp-send",
        ));
    };
    let text = match what.strip_prefix("messages") {
        Some(rest) => format!(
            "{}{rest}\n",
            super::output::count(count, "message", "messages")
        ),
        None => format!("{what}\n"),
    };
    print_value(ctx.json, &json!({ "count": count }), &text);
    Ok(())
}

fn state(e: &ListEntry) -> &'static str {
    match (e.held, e.active) {
        (true, _) => "held",
        (false, true) => "active",
        (false, false) if e.attempts == 0 => "new",
        _ => "deferred",
    }
}

fn sender_name(s: &str) -> String {
    if s.is_empty() {
        "MAILER-DAEMON".into()
    } else {
        s.to_string()
    }
}

fn show_text(qid: &str, active: bool, r: &Record, text: Option<&[u8]>) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "*** ENVELOPE RECORDS {qid} ***");
    let _ = writeln!(o, "message_size: {}", r.size);
    let _ = writeln!(o, "message_arrival_time: {}", date(r.arrived()));
    let _ = writeln!(o, "sender: {}", r.sender);
    if let Some(e) = &r.envid {
        let _ = writeln!(o, "envid: {e}");
    }
    if let Some(ret) = r.ret {
        let _ = writeln!(o, "ret: {}", serde_name(&ret));
    }
    let _ = writeln!(o, "origin: {}", r.origin);
    let _ = writeln!(o, "attempts: {}", r.attempts);
    let _ = writeln!(o, "next_attempt: {}", date(r.next_attempt));
    let _ = writeln!(o, "held: {}", r.held);
    let _ = writeln!(o, "active: {active}");
    for rc in &r.rcpts {
        let _ = write!(
            o,
            "recipient: {} status={}",
            rc.address,
            serde_name(&rc.status)
        );
        if !rc.dsn.is_empty() {
            let _ = write!(o, " dsn={} ({})", rc.dsn, rc.text);
        }
        o.push('\n');
    }
    let _ = writeln!(o, "*** MESSAGE CONTENTS {qid} ***");
    match text {
        Some(t) => o.push_str(&String::from_utf8_lossy(t)),
        None => o.push_str("(the message file is not readable here)\n"),
    }
    let _ = writeln!(o, "*** END OF MESSAGE ***");
    o
}

/// An enum's name as the record stores it (`pending`), not Rust's `Debug`.
fn serde_name<T: serde::Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        Ok(other) => other.to_string(),
        Err(_) => String::new(),
    }
}

/// The queue as Postfix's `mailq` prints it.
pub fn mailq_text(entries: &[ListEntry]) -> String {
    if entries.is_empty() {
        return "Mail queue is empty\n".into();
    }
    let mut o =
        String::from("-Queue ID-  --Size-- ----Arrival Time---- -Sender/Recipient-------\n");
    let mut kbytes = 0u64;
    for e in entries {
        let mark = if e.held {
            '!'
        } else if e.active {
            '*'
        } else {
            ' '
        };
        let _ = writeln!(
            o,
            "{:<10}{mark} {:>8} {:<20} {}",
            e.qid,
            e.size,
            mailq_date(e.arrived),
            sender_name(&e.sender)
        );
        if !e.reason.is_empty() {
            let _ = writeln!(o, "({})", e.reason);
        }
        for r in &e.recipients {
            let _ = writeln!(o, "{:41}{}", "", r.address);
        }
        o.push('\n');
        kbytes += e.size.div_ceil(1024);
    }
    let n = entries.len();
    let _ = writeln!(
        o,
        "-- {kbytes} Kbytes in {n} Request{}.",
        if n == 1 { "" } else { "s" }
    );
    o
}

/// `Sat Nov 28 01:22:03` (UTC), as mailq shows arrival times.
fn mailq_date(secs: u64) -> String {
    let (y, mo, d, h, mi, s, wd) = civil(secs);
    let _ = y;
    format!(
        "{} {} {:>2} {h:02}:{mi:02}:{s:02}",
        ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"][wd],
        MONTHS[mo - 1],
        d
    )
}

/// `2026-11-28 01:22:03Z`.
fn date(secs: u64) -> String {
    let (y, mo, d, h, mi, s, _) = civil(secs);
    format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}Z")
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Seconds since the epoch as UTC (year, month, day, hour, minute, second,
/// weekday with Sunday 0), by Howard Hinnant's days-from-civil inverse.
fn civil(secs: u64) -> (i64, usize, u64, u64, u64, u64, usize) {
    let days = (secs / 86400) as i64;
    let rem = secs % 86400;
    let wd = ((days + 4).rem_euclid(7)) as usize;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u64;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as usize;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d, rem / 3600, rem % 3600 / 60, rem % 60, wd)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ipc::control::ListRcpt;

    #[test]
    fn dates_are_civil() {
        assert_eq!(date(0), "1970-01-01 00:00:00Z");
        assert_eq!(date(1_795_828_923), "2026-11-28 01:22:03Z");
        assert_eq!(mailq_date(1_795_828_923), "Sat Nov 28 01:22:03");
    }

    #[test]
    fn mailq_looks_like_postfix() {
        assert_eq!(mailq_text(&[]), "Mail queue is empty\n");
        let e = ListEntry {
            qid: "6B1A2C3D4E5F60718".into(),
            size: 2048,
            arrived: 1_795_828_923,
            sender: String::new(),
            held: false,
            active: false,
            next_attempt: 0,
            attempts: 1,
            reason: "connect to mx[1.2.3.4]:25: Connection refused".into(),
            recipients: vec![ListRcpt {
                address: "x@example.net".into(),
                status: "pending".into(),
                text: String::new(),
            }],
        };
        let t = mailq_text(&[e]);
        assert_eq!(
            t,
            "-Queue ID-  --Size-- ----Arrival Time---- -Sender/Recipient-------\n\
             6B1A2C3D4E5F60718      2048 Sat Nov 28 01:22:03  MAILER-DAEMON\n\
             (connect to mx[1.2.3.4]:25: Connection refused)\n\
             \x20                                        x@example.net\n\
             \n\
             -- 2 Kbytes in 1 Request.\n"
        );
    }
}
