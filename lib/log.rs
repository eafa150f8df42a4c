//! Logging: one line per event, to syslog under facility mail, or to standard
//! error when a program runs in the foreground.
//!
//! Lines name the event's id first (`QID: to=<a@b>, ...`, `SESSIONID smtp
//! connected ...`) so the tools people already run on Postfix logs read ours.
//! Never pass a password or an AUTH payload to these functions.

use std::io::Write;
use std::sync::{Mutex, OnceLock};

type Syslog = syslog::Logger<syslog::LoggerBackend, syslog::Formatter3164>;

enum Sink {
    Stderr { program: String },
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

/// Sends lines to the syslog socket at `socket` (normally `/dev/log`) under
/// facility mail. Falls back to standard error when `socket` is empty or absent.
pub fn init_syslog(program: &str, socket: &str) {
    if socket.is_empty() {
        return init_stderr(program);
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
        Err(_) => init_stderr(program),
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
            let tag = match level {
                Level::Error => "error: ",
                Level::Warning => "warning: ",
                Level::Info | Level::Debug => "",
            };
            let _ = writeln!(std::io::stderr(), "{program}: {tag}{line}");
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
