//! kmp-inject: the `sendmail` interface for cron, scripts and local
//! programs, also installed as `sendmail` and `mailq` (the name it is run by
//! decides: `mailq` lists the queue).
//!
//! It reads a message on standard input, adds the headers a message must
//! have (Date, Message-ID, From) when missing, normalises CRLF to LF, writes
//! it durably into the drop directory with [`crate::queue::Incoming`], wakes
//! kmp-send, and exits 0 only once the message is safe on disk (75 if it could
//! not be). It never opens the queue index or a mailbox.

mod args;
mod message;
mod smtp;

pub use args::{parse, Mode, Options};
pub use message::{prepare, Prepared};

use std::ffi::OsString;
use std::io::Read;

use crate::config::Config;
use crate::exit;
use crate::paths::Paths;
use crate::queue::{Envelope, Incoming, QueueError, QueueId, Recipient};

/// What the program needs to know about its caller and host.
pub struct Context {
    pub cfg: Config,
    pub paths: Paths,
    /// The caller's login name.
    pub login: String,
    /// The caller's full name from the password file, if any.
    pub gecos: String,
    pub uid: u32,
}

impl Context {
    /// The domain bare names (`root`, `bob`) are qualified with.
    pub fn domain(&self) -> &str {
        match self.cfg.str("system.default_domain") {
            "" => self.cfg.str("system.hostname"),
            d => d,
        }
    }

    /// `name` with `@domain` added when it has none.
    pub fn qualify(&self, name: &str) -> String {
        if name.is_empty() || name.contains('@') {
            name.to_string()
        } else {
            format!("{name}@{}", self.domain())
        }
    }
}

/// Runs kmp-inject with `argv` (argv[0] included); returns the exit code.
pub fn main(argv: Vec<OsString>) -> i32 {
    let opts = match parse(&argv) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("{}: {e}\n{}", program(&argv), args::USAGE);
            return exit::USAGE;
        }
    };
    let cfg = match Config::load_located(opts.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{}: {e}", program(&argv));
            return e.exit_code();
        }
    };
    let paths = Paths::new(&cfg);
    let uid = nix::unistd::getuid();
    let user = nix::unistd::User::from_uid(uid).ok().flatten();
    let ctx = Context {
        login: user
            .as_ref()
            .map(|u| u.name.clone())
            .unwrap_or_else(|| format!("uid{}", uid.as_raw())),
        gecos: user
            .as_ref()
            .map(|u| {
                u.gecos
                    .to_string_lossy()
                    .split(',')
                    .next()
                    .unwrap_or("")
                    .to_string()
            })
            .unwrap_or_default(),
        uid: uid.as_raw(),
        cfg,
        paths,
    };
    let name = program(&argv);
    match opts.mode {
        Mode::List => list(&ctx, &name),
        Mode::Smtp => smtp::session(&ctx, std::io::stdin().lock(), std::io::stdout().lock()),
        Mode::Deliver => deliver(&ctx, &opts, &name),
    }
}

fn program(argv: &[OsString]) -> String {
    argv.first()
        .map(|a| {
            std::path::Path::new(a)
                .file_name()
                .map(|f| f.to_string_lossy().to_string())
                .unwrap_or_default()
        })
        .unwrap_or_else(|| "sendmail".into())
}

/// `mailq` / `sendmail -bp`: the queue in Postfix's format.
fn list(ctx: &Context, name: &str) -> i32 {
    use crate::ipc::control::{call, Reply, Request};
    match call(&ctx.paths.send_socket(), Request::List) {
        Ok(Reply::List { entries }) => {
            print!("{}", crate::ctl::queue::mailq_text(&entries));
            exit::OK
        }
        Ok(Reply::Error { message, .. }) => {
            eprintln!("{name}: {message}");
            exit::UNAVAILABLE
        }
        Ok(_) => {
            eprintln!("{name}: unexpected answer from kmp-send");
            exit::PROTOCOL
        }
        Err(e) => {
            eprintln!("{name}: fatal: Queue report unavailable - mail system is down ({e})");
            exit::UNAVAILABLE
        }
    }
}

/// Reads the message from standard input and queues it.
fn deliver(ctx: &Context, opts: &Options, name: &str) -> i32 {
    let mut input = Vec::new();
    if let Err(e) = std::io::stdin().lock().read_to_end(&mut input) {
        eprintln!("{name}: cannot read the message: {e}");
        return exit::TEMPFAIL;
    }
    let sender = match &opts.sender {
        Some(s) => ctx.qualify(s.trim_matches(['<', '>'])),
        None => ctx.qualify(&ctx.login),
    };
    match queue_message(ctx, opts, &sender, &input) {
        Ok(_) => exit::OK,
        Err(InjectError::NoRecipients) => {
            eprintln!("{name}: fatal: no recipient addresses found in message header");
            exit::USAGE
        }
        Err(InjectError::BadAddress(a)) => {
            eprintln!("{name}: fatal: bad recipient address syntax: {a:?}");
            exit::DATAERR
        }
        Err(InjectError::Queue(e)) => {
            eprintln!("{name}: cannot queue the message: {e}");
            if e.is_temporary() {
                exit::TEMPFAIL
            } else {
                exit::DATAERR
            }
        }
    }
}

/// Why a message was not queued.
#[derive(Debug, thiserror::Error)]
pub enum InjectError {
    #[error("no recipients")]
    NoRecipients,
    #[error("bad address {0:?}")]
    BadAddress(String),
    #[error("{0}")]
    Queue(#[from] QueueError),
}

/// Prepares and queues one message: the path shared by plain mode and `-bs`.
pub fn queue_message(
    ctx: &Context,
    opts: &Options,
    sender: &str,
    input: &[u8],
) -> Result<QueueId, InjectError> {
    let mut m = Incoming::create(&ctx.paths.incoming())?;
    let p = prepare(ctx, opts, sender, input, m.id());
    let mut rcpts: Vec<String> = opts.recipients.iter().map(|r| ctx.qualify(r)).collect();
    rcpts.extend(p.header_recipients.iter().map(|r| ctx.qualify(r)));
    let mut seen = std::collections::HashSet::new();
    rcpts.retain(|r| seen.insert(r.to_ascii_lowercase()));
    if rcpts.is_empty() {
        return Err(InjectError::NoRecipients);
    }
    if let Some(bad) = rcpts.iter().find(|r| !plausible_address(r)) {
        return Err(InjectError::BadAddress(bad.clone()));
    }
    m.write(&p.bytes)?;
    let mut env = Envelope::new(
        sender.to_string(),
        rcpts.into_iter().map(Recipient::new).collect(),
    );
    env.origin = format!("inject uid {}", ctx.uid);
    env.body_8bit = p.bytes.iter().any(|&b| b >= 0x80);
    env.smtputf8 = !sender.is_ascii() || env.recipients.iter().any(|r| !r.address.is_ascii());
    env.envid = opts.envid.clone();
    env.ret = opts.ret;
    if let Some(n) = opts.notify {
        for r in env.recipients.iter_mut() {
            r.notify = n;
            r.notify_given = true;
        }
    }
    let id = m.commit(&env)?;
    crate::queue::kick(&ctx.paths.kick_socket());
    Ok(id)
}

/// `local@domain` with no spaces, controls or angle brackets and one `@`.
pub fn plausible_address(a: &str) -> bool {
    let Some((local, domain)) = a.rsplit_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.is_empty()
        && a.len() <= 320
        && !a
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || matches!(c, '<' | '>' | ',' | ';'))
        && !domain.contains('@')
}
