//! Logging: one line per event, to syslog under facility mail, or to standard
//! error when a program runs in the foreground.
//!
//! Lines name the event's id first (`QID: to=<a@b>, ...`, `SESSIONID smtp
//! connected ...`) so the tools people already run on Postfix logs read ours.
//! Never pass a password or an AUTH payload to these functions.
//!
//! Without a syslog socket (an instance made by `kmpctl init`, whose daemons'
//! standard error is `paths.log_file`), lines are written in syslog's own
//! form, `Mmm dd hh:mm:ss host program[pid]: message`, so the file reads as
//! `/var/log/mail.log` does. Each line is built whole and written with one
//! `write(2)`: on the `O_APPEND` descriptor the daemons share, lines of
//! several processes then never run into each other.

use std::io::Write;
use std::sync::{Mutex, OnceLock};

type Syslog = syslog::Logger<syslog::LoggerBackend, syslog::Formatter3164>;

enum Sink {
    /// `program: line`, for a terminal or a journal that stamps lines itself.
    Stderr {
        program: String,
    },
    /// `Mmm dd hh:mm:ss host program[pid]: line`, for a log file.
    Stamped {
        program: String,
        host: String,
    },
    Syslog(Box<Syslog>),
}

static SINK: OnceLock<Mutex<Sink>> = OnceLock::new();

/// The severity of a line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Error,
    Warning,
    Info,
    Debug,
}

/// Sends lines to standard error, prefixed with the program's name.
pub fn init_stderr(program: &str) {
    let _ = SINK.set(Mutex::new(Sink::Stderr {
        program: program.to_string(),
    }));
}

/// Sends lines to standard error in syslog's line format (time, host,
/// program and pid), as a log file wants them.
pub fn init_stamped(program: &str) {
    let _ = SINK.set(Mutex::new(Sink::Stamped {
        program: program.to_string(),
        host: short_hostname(),
    }));
}

/// Sends lines to the syslog socket at `socket` (normally `/dev/log`) under
/// facility mail. Falls back to standard error, in syslog's line format, when
/// `socket` is empty or absent.
pub fn init_syslog(program: &str, socket: &str) {
    if socket.is_empty() {
        return init_stamped(program);
    }
    let formatter = syslog::Formatter3164 {
        facility: syslog::Facility::LOG_MAIL,
        hostname: None,
        process: program.to_string(),
        pid: std::process::id(),
    };
    match syslog::unix_custom(formatter, socket) {
        Ok(logger) => {
            let _ = SINK.set(Mutex::new(Sink::Syslog(Box::new(logger))));
        }
        Err(_) => init_stamped(program),
    }
}

/// Writes one line at `level`. Before any `init_*` call, lines go to standard error.
pub fn write(level: Level, line: &str) {
    let sink = SINK.get_or_init(|| {
        Mutex::new(Sink::Stderr {
            program: "kmpromail".into(),
        })
    });
    let Ok(mut sink) = sink.lock() else { return };
    match &mut *sink {
        Sink::Stderr { program } => {
            write_whole(&format!("{program}: {}{line}\n", tag(level)));
        }
        Sink::Stamped { program, host } => {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs() as i64)
                .unwrap_or(0);
            write_whole(&stamped_line(
                now,
                host,
                program,
                std::process::id(),
                &format!("{}{line}", tag(level)),
            ));
        }
        Sink::Syslog(logger) => {
            // A lost log line must never stop mail: errors here are ignored.
            let _ = match level {
                Level::Error => logger.err(line),
                Level::Warning => logger.warning(line),
                Level::Info => logger.info(line),
                Level::Debug => logger.debug(line),
            };
        }
    }
}

/// Postfix's severity prefix: `warning: ...`, `error: ...`.
fn tag(level: Level) -> &'static str {
    match level {
        Level::Error => "error: ",
        Level::Warning => "warning: ",
        Level::Info | Level::Debug => "",
    }
}

/// One log line in syslog's (RFC 3164) form, newline included:
/// `Dec  4 19:25:51 mx kmp-smtpd[4242]: message`. A newline inside `message`
/// becomes a space, so one event stays one line.
pub fn stamped_line(secs: i64, host: &str, program: &str, pid: u32, message: &str) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let (mon, day, h, m, s) = crate::sys::local_time(secs).unwrap_or((1, 1, 0, 0, 0));
    let month = MONTHS[(mon.clamp(1, 12) - 1) as usize];
    let message = message.replace(['\n', '\r'], " ");
    format!("{month} {day:>2} {h:02}:{m:02}:{s:02} {host} {program}[{pid}]: {message}\n")
}

/// Writes `line` to standard error in one `write(2)` (standard error is
/// unbuffered: `writeln!` with arguments would write piece by piece, and
/// another process's line could land in between).
fn write_whole(line: &str) {
    // A lost log line must never stop mail: errors here are ignored.
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}

/// The host name up to its first dot, as syslog writes it.
fn short_hostname() -> String {
    let name = nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_default();
    match name.split('.').next() {
        Some(h) if !h.is_empty() => h.to_string(),
        _ => "localhost".to_string(),
    }
}

/// Logs a line at info level: `info!("{qid}: removed")`.
#[macro_export]
macro_rules! info {
    ($($arg:tt)*) => { $crate::log::write($crate::log::Level::Info, &format!($($arg)*)) };
}

/// Logs a line at warning level.
#[macro_export]
macro_rules! warn {
    ($($arg:tt)*) => { $crate::log::write($crate::log::Level::Warning, &format!($($arg)*)) };
}

/// Logs a line at error level.
#[macro_export]
macro_rules! error {
    ($($arg:tt)*) => { $crate::log::write($crate::log::Level::Error, &format!($($arg)*)) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamped_line_has_syslog_form_and_stays_one_line() {
        let l = stamped_line(
            1_764_876_351,
            "mx",
            "kmp-smtpd",
            4242,
            "A1: to=<a@b>\nforged",
        );
        let (stamp, rest) = l.split_at(15);
        // `Mmm dd hh:mm:ss`, whatever the local time zone.
        let b = stamp.as_bytes();
        assert!(b[..3].iter().all(u8::is_ascii_alphabetic), "{l}");
        assert!(
            b[3] == b' ' && b[6] == b' ' && b[9] == b':' && b[12] == b':',
            "{l}"
        );
        assert_eq!(rest, " mx kmp-smtpd[4242]: A1: to=<a@b> forged\n");
        assert_eq!(l.matches('\n').count(), 1);
    }
}
