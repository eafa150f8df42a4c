//! Exit codes, as sysexits.h defines them. Every program's `main` maps its
//! error to one of these in a single `match`.

/// Successful termination.
pub const OK: i32 = 0;
/// The command was used incorrectly (bad arguments, bad flag).
pub const USAGE: i32 = 64;
/// The input data was incorrect (a bad address, a malformed dump line).
pub const DATAERR: i32 = 65;
/// An input file did not exist or was not readable.
pub const NOINPUT: i32 = 66;
/// The addressee (user, domain, queue id) is unknown.
pub const NOUSER: i32 = 67;
/// A service is unavailable: a daemon is not running, a socket refused.
pub const UNAVAILABLE: i32 = 69;
/// An internal software error: a broken invariant.
pub const SOFTWARE: i32 = 70;
/// An operating system error: fork failed, a system user is missing.
pub const OSERR: i32 = 71;
/// A system file is missing or broken (the database, the run directory).
pub const OSFILE: i32 = 72;
/// An output file could not be created.
pub const CANTCREAT: i32 = 73;
/// An I/O error on some file.
pub const IOERR: i32 = 74;
/// A temporary failure: the caller should try again later.
pub const TEMPFAIL: i32 = 75;
/// A remote or protocol error.
pub const PROTOCOL: i32 = 76;
/// Permission denied.
pub const NOPERM: i32 = 77;
/// Something is wrong in the configuration.
pub const CONFIG: i32 = 78;
/// The exit code qmail-style delivery programs use for "try again later".
pub const DEFER: i32 = 111;

/// Maps an I/O error to the exit code a caller should see.
pub fn from_io(e: &std::io::Error) -> i32 {
    use std::io::ErrorKind::*;
    match e.kind() {
        NotFound => NOINPUT,
        PermissionDenied => NOPERM,
        ConnectionRefused | ConnectionReset | BrokenPipe => UNAVAILABLE,
        WouldBlock | TimedOut | Interrupted | StorageFull | QuotaExceeded => TEMPFAIL,
        _ => IOERR,
    }
}

/// Parses a program's command line with clap. A usage error exits 64
/// (EX_USAGE, as every man page promises) instead of clap's own 2; `--help`
/// and `--version` print to standard output and exit 0.
pub fn parse_args<C: clap::Parser>() -> C {
    match C::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { USAGE } else { OK };
            let _ = e.print();
            std::process::exit(code);
        }
    }
}
