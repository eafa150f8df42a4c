//! kmp-inject: the `sendmail` interface for cron, scripts and local
//! programs, also installed as `sendmail` and `mailq` (the name it is run by
//! decides: `mailq` lists the queue).
//!
//! It reads a message on standard input, adds the headers a message must
//! have (Date, Message-ID, From) when missing, normalises CRLF to LF, writes
//! it durably into the drop directory with [`crate::queue::Incoming`], wakes
//! kmp-send, and exits 0 only once the message is safe on disk (75 if it could
//! not be). It never opens the queue index or a mailbox.
//!
//! Installed set-group-id `kmpdrop`, it holds a privilege its caller lacks
//! (writing into `incoming/`), so then it trusts the caller with nothing
//! that chooses or reveals files: `-C` and `KMPROMAIL_CONFIG` are ignored
//! (the system configuration is read), and a configuration error is
//! reported without the file's lines. The message size limit holds in every
//! mode, while reading: more than `smtpd.max_message_size` is never read
//! into memory. In plain mode the message goes into the queue file as it is
//! read (`stream.rs`): only its header section is held in memory.

mod args;
mod message;
mod smtp;
mod stream;

pub use args::{parse, Mode, Options};
pub use message::{prepare, Prepared};

use std::ffi::OsString;

use crate::config::Config;
use crate::exit;
use crate::paths::Paths;
use crate::queue::{Envelope, QueueError, Recipient};

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

    /// The largest message taken (the system's limit, as kmp-smtpd's).
    pub fn max_message_size(&self) -> u64 {
        self.cfg.u64("smtpd.max_message_size")
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
    let cfg = match load_config(&opts, privileged(), &program(&argv)) {
        Ok(c) => c,
        Err(code) => return code,
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

/// Whether the program runs with a group (or user) its caller does not
/// have: set-group-id `kmpdrop` as installed, run by anyone but root (who
/// can read every file anyway, and may point it at another configuration).
pub fn privileged() -> bool {
    use nix::unistd::{getegid, geteuid, getgid, getuid};
    let raised = getegid() != getgid() || geteuid() != getuid();
    raised && !getuid().is_root()
}

/// The configuration: the one named by `-C` or `KMPROMAIL_CONFIG`, else the
/// system's; only the system's when `privileged`, since the caller could
/// otherwise make a set-group-id program read (and quote, in its errors) a
/// file only that group can read. On error, prints why and gives the exit code.
fn load_config(opts: &Options, privileged: bool, name: &str) -> Result<Config, i32> {
    if !privileged {
        return Config::load_located(opts.config.as_deref()).map_err(|e| {
            eprintln!("{name}: {e}");
            e.exit_code()
        });
    }
    let path = std::path::Path::new(crate::config::DEFAULT_PATH);
    if opts.config.is_some() || std::env::var_os(crate::config::ENV_VAR).is_some() {
        eprintln!(
            "{name}: warning: set-group-id: ignoring -C and {}, reading {}",
            crate::config::ENV_VAR,
            path.display()
        );
    }
    Config::load(path).map_err(|e| {
        match &e {
            // The path is the system's and the error the system's: no content.
            crate::config::LoadError::Io(..) => eprintln!("{name}: {e}"),
            crate::config::LoadError::Invalid(errs) => eprintln!(
                "{name}: {} has {} error(s); `kmpctl check` shows them",
                path.display(),
                errs.len()
            ),
        }
        e.exit_code()
    })
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

/// Reads the message from standard input and queues it as it reads.
fn deliver(ctx: &Context, opts: &Options, name: &str) -> i32 {
    let max = ctx.max_message_size();
    let sender = match &opts.sender {
        Some(s) => ctx.qualify(s.trim_matches(['<', '>'])),
        None => ctx.qualify(&ctx.login),
    };
    let err = match stream::queue_stream(ctx, opts, &sender, std::io::stdin().lock(), max) {
        Ok(_) => return exit::OK,
        Err(stream::StreamError::TooBig) => {
            eprintln!(
                "{name}: fatal: message too big: more than {max} octets (smtpd.max_message_size); nothing queued"
            );
            return exit::DATAERR;
        }
        Err(stream::StreamError::Read(e)) => {
            eprintln!("{name}: cannot read the message: {e}");
            return exit::TEMPFAIL;
        }
        Err(stream::StreamError::Inject(e)) => e,
    };
    match err {
        InjectError::NoRecipients => {
            eprintln!("{name}: fatal: no recipient addresses found in message header");
            exit::USAGE
        }
        InjectError::BadAddress(a) => {
            eprintln!("{name}: fatal: bad recipient address syntax: {a:?}");
            exit::DATAERR
        }
        InjectError::Queue(e) => {
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

/// The recipients: the arguments and (with `-t`) the header's, qualified,
/// each once, all plausible.
fn checked_recipients(
    ctx: &Context,
    opts: &Options,
    header_recipients: &[String],
) -> Result<Vec<String>, InjectError> {
    let mut rcpts: Vec<String> = opts.recipients.iter().map(|r| ctx.qualify(r)).collect();
    rcpts.extend(header_recipients.iter().map(|r| ctx.qualify(r)));
    let mut seen = std::collections::HashSet::new();
    rcpts.retain(|r| seen.insert(r.to_ascii_lowercase()));
    if rcpts.is_empty() {
        return Err(InjectError::NoRecipients);
    }
    if let Some(bad) = rcpts.iter().find(|r| !plausible_address(r)) {
        return Err(InjectError::BadAddress(bad.clone()));
    }
    Ok(rcpts)
}

/// The envelope of a message from `sender` to `rcpts`.
fn envelope(
    ctx: &Context,
    opts: &Options,
    sender: &str,
    rcpts: Vec<String>,
    body_8bit: bool,
) -> Envelope {
    let mut env = Envelope::new(
        sender.to_string(),
        rcpts.into_iter().map(Recipient::new).collect(),
    );
    env.origin = format!("inject uid {}", ctx.uid);
    env.body_8bit = body_8bit;
    env.smtputf8 = !sender.is_ascii() || env.recipients.iter().any(|r| !r.address.is_ascii());
    env.envid = opts.envid.clone();
    env.ret = opts.ret;
    if let Some(n) = opts.notify {
        for r in env.recipients.iter_mut() {
            r.notify = n;
            r.notify_given = true;
        }
    }
    env
}

/// `local@domain` with no spaces, controls or angle brackets and one `@`.
pub fn plausible_address(a: &str) -> bool {
    let Some((local, domain)) = a.rsplit_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.is_empty()
        && a.len() + 2 <= crate::proto::smtp::address::MAX_PATH
        && !a
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || matches!(c, '<' | '>' | ',' | ';'))
        && !domain.contains('@')
}

/// Hands `data` to the queue through the kmp-inject program at `program`
/// (as the daemons and kmpctl send mail of their own: list posts and
/// digests, Sieve redirects and replies), reading the configuration
/// `config`: return path (empty: the null one), recipients, message. The
/// error is what kmp-inject said.
pub fn run(
    program: &std::path::Path,
    config: Option<&std::path::Path>,
    sender: &str,
    rcpts: &[String],
    data: &[u8],
) -> Result<(), String> {
    use std::io::{Read, Write};
    use std::process::{Command, Stdio};
    let mut cmd = Command::new(program);
    if let Some(c) = config {
        cmd.arg("-C").arg(c);
    }
    let mut child = cmd
        .arg("-i")
        .arg("-f")
        .arg(sender)
        .arg("--")
        .args(rcpts)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("{}: {e}", program.display()))?;
    if let Some(mut i) = child.stdin.take() {
        i.write_all(data).map_err(|e| format!("kmp-inject: {e}"))?;
    }
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut err);
    }
    let status = child.wait().map_err(|e| format!("kmp-inject: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("kmp-inject: {status}: {}", err.trim()))
    }
}
