//! kmpctl: the administrator's one command, noun-verb in the style of
//! `postfix`, `postqueue` and `doveadm`. One module per noun; one printer
//! ([`output`]) for plain tables and `--json`; sysexits exit codes.

pub mod alias;
pub mod announce;
pub mod ban;
pub mod check;
pub mod config;
pub mod db;
pub mod dkim;
pub mod domain;
pub mod export;
pub mod fetch;
pub mod import;
pub mod init;
pub mod list;
pub mod output;
pub mod queue;
pub mod remote;
pub mod service;
pub mod setup;
pub mod sieve;
pub mod spam;
pub mod stats;
pub mod supervise;
pub mod user;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::config::Config;

/// The command line.
#[derive(Debug, Parser)]
#[command(
    name = "kmpctl",
    version,
    about = "Administer Kmpromail",
    max_term_width = 100
)]
pub struct Cli {
    /// The configuration file (default: $KMPROMAIL_CONFIG, else /etc/kmpromail/kmpromail.toml).
    #[arg(long, short = 'c', global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Print JSON for scripts instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(flatten)]
    pub remote: remote::RemoteArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// The nouns (and the few bare verbs).
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a self-contained instance under a directory (no root needed).
    Init(init::Args),
    /// Validate the configuration and the installation; exit 78 on any error.
    Check,
    /// Show the configuration: every key, the changed ones, or the annotated sample.
    Config(config::Args),
    /// Start every installed daemon under a supervisor and wait until each is ready.
    Start(service::StartArgs),
    /// Stop the supervisor and every daemon, and wait until they have ended.
    Stop,
    /// Show each daemon, its pid, uptime and listeners; exit 69 if any is down.
    Status,
    /// Make every daemon re-read the configuration, keeping connections.
    Reload,
    /// Create the system users, groups, directories and a first configuration (root).
    Setup,
    /// Domains: add, del, list, show.
    Domain(domain::Args),
    /// Users: add, del, list, show, passwd, disable, enable, quota, forward.
    User(user::Args),
    /// Aliases and catch-alls: add, del, list.
    Alias(alias::Args),
    /// Mailing lists: add, del, list, show, set, members, subscribe, unsubscribe, mods, held, approve, reject.
    List(list::Args),
    /// The whole user database as text: dump, load.
    Db(db::Args),
    /// Bans kept by kmp-authd: list, add, del.
    Ban(ban::Args),
    /// Users' Sieve scripts: list, show, put, activate, deactivate, check, delete.
    Sieve(sieve::Args),
    /// DKIM signing keys: keygen, show, rotate (prints the DNS records).
    Dkim(dkim::Args),
    /// Users' fetch accounts (other mailboxes kmp-fetch collects from): add, edit, del, list, show, run, test.
    Fetch(fetch::Args),
    /// The mail queue: list, show, flush, hold, release, delete, requeue.
    Queue(queue::Args),
    /// Counters, latency of each stage and the queue's shape by age.
    Stats,
    /// Users, aliases and forwards from Dovecot, vpopmail, passwd, Postfix or qmail files.
    Import(import::Args),
    /// Users' Maildirs made ready for a move to Dovecot (dovecot-uidlist, subscriptions).
    Export(export::Args),
    /// One announcement into every chosen INBOX, stored once and hard-linked.
    Announce(announce::Args),
}

/// A failure of a kmpctl verb: what to tell the administrator, and the exit code.
#[derive(Debug)]
pub struct CtlError {
    pub code: i32,
    pub message: String,
}

impl CtlError {
    pub fn new(code: i32, message: impl Into<String>) -> CtlError {
        CtlError {
            code,
            message: message.into(),
        }
    }
}

/// What a verb returns.
pub type CtlResult = Result<(), CtlError>;

/// Global options every verb may need.
pub struct Ctx {
    pub config_path: Option<PathBuf>,
    pub json: bool,
}

impl Ctx {
    /// Loads and validates the configuration, or fails with its errors.
    pub fn config(&self) -> Result<Config, CtlError> {
        Config::load_located(self.config_path.as_deref())
            .map_err(|e| CtlError::new(e.exit_code(), e.to_string()))
    }
}

impl Ctx {
    /// The configuration for verbs that must reach a running system even when
    /// its file has been broken since it started (`stop`, `status`, `queue`):
    /// a valid file as [`Ctx::config`] loads it; a broken one is reported on
    /// standard error as a warning and what could be read of it is used (a
    /// line that is not TOML is left out and the rest read again), so a typo
    /// never locks the administrator out of stopping the system.
    pub fn config_lenient(&self) -> Result<Config, CtlError> {
        let path = Config::locate(self.config_path.as_deref());
        let text = std::fs::read_to_string(&path).map_err(|e| {
            let e = crate::config::LoadError::Io(path.clone(), e);
            CtlError::new(e.exit_code(), e.to_string())
        })?;
        let file = path.display().to_string();
        let (mut cfg, errors) = Config::parse_partial(&text, &file);
        if errors.is_empty() {
            return Ok(cfg.with_path(&path));
        }
        // A TOML syntax error hides the whole file: blank the line it names
        // and read again, a bounded number of times.
        let mut lines: Vec<&str> = text.lines().collect();
        let mut errs = errors.clone();
        for _ in 0..20 {
            match errs.as_slice() {
                [e] if e.key.is_none() && e.line > 0 && e.line <= lines.len() => {
                    lines[e.line - 1] = "";
                    let (c, more) = Config::parse_partial(&lines.join("\n"), &file);
                    cfg = c;
                    errs = more;
                }
                _ => break,
            }
        }
        eprintln!(
            "kmpctl: warning: {} has {} (kmpctl check lists {}); using what can be read of it",
            path.display(),
            output::count(errors.len() as u64, "error", "errors"),
            if errors.len() == 1 { "it" } else { "them" },
        );
        for e in &errors {
            eprintln!("kmpctl: warning: {e}");
        }
        Ok(cfg.with_path(&path))
    }
}

/// Runs the parsed command; returns the exit code.
pub fn run(cli: Cli) -> i32 {
    let ctx = Ctx {
        config_path: cli.config,
        json: cli.json,
    };
    let result = match cli.remote.remote.clone() {
        Some(url) => remote::run(&ctx, &cli.remote, &url, cli.command),
        None => local(ctx, cli.command),
    };
    match result {
        Ok(()) => crate::exit::OK,
        Err(e) => {
            eprintln!("kmpctl: {}", e.message);
            e.code
        }
    }
}

/// Runs a command on this host.
fn local(ctx: Ctx, command: Command) -> CtlResult {
    match command {
        Command::Init(a) => init::run(&ctx, a),
        Command::Check => check::run(&ctx),
        Command::Config(a) => config::run(&ctx, a),
        Command::Queue(a) => queue::run(&ctx, a),
        Command::Stats => stats::run(&ctx),
        Command::Start(a) => service::start(&ctx, a),
        Command::Stop => service::stop(&ctx),
        Command::Status => service::status(&ctx),
        Command::Reload => service::reload(&ctx),
        Command::Setup => setup::run(&ctx),
        Command::Domain(a) => domain::run(&ctx, a),
        Command::User(a) => user::run(&ctx, a),
        Command::Alias(a) => alias::run(&ctx, a),
        Command::List(a) => list::run(&ctx, a),
        Command::Db(a) => db::run(&ctx, a),
        Command::Import(a) => import::run(&ctx, a),
        Command::Export(a) => export::run(&ctx, a),
        Command::Ban(a) => ban::run(&ctx, a),
        Command::Sieve(a) => sieve::run(&ctx, a),
        Command::Dkim(a) => dkim::run(&ctx, a),
        Command::Fetch(a) => fetch::run(&ctx, a),
        Command::Announce(a) => announce::run(&ctx, a),
    }
}
