//! `kmpctl fetch`: users' fetch accounts (remote POP3/IMAP mailboxes that
//! kmp-fetch collects from): add, edit, del, list, show, run, test.
//!
//! The functions above the command line ([`add`], [`edit`], [`delete`],
//! [`list`], [`test`], [`run_now`], [`status`]) are the account API that
//! kmp-admind calls too: they check the record, seal the password to
//! kmp-fetch's public key, write the user database, and ask kmp-fetch
//! (`RUN/fetch.sock`) to run, test or report. A password comes from a
//! prompt, a file or standard input, never the command line, and is never
//! printed: `show` says only that one is stored.

use std::io::{IsTerminal, Read};
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args as ClapArgs, Subcommand};

use super::db::{db_err, iso_time, open};
use super::output::Table;
use super::{CtlError, CtlResult, Ctx};
use crate::config::Config;
use crate::exit;
use crate::fetch::seal::{PublicKey, MAX_PASSWORD};
use crate::ipc::fetch::{self as ipc, AccountStatus, FetchAccount, Keep, Protocol, Reply, Tls};
use crate::proto::sasl::Secret;
use crate::userdb::lmdb::Lmdb;
use crate::userdb::Address;

#[derive(Debug, ClapArgs)]
pub struct Args {
    #[command(subcommand)]
    pub verb: Verb,
}

/// Where the remote password comes from (never the command line).
#[derive(Debug, Clone, ClapArgs, Default)]
pub struct PasswordSource {
    /// Read the remote password from this file (its first line).
    #[arg(long, value_name = "FILE")]
    pub password_file: Option<PathBuf>,
    /// Read the remote password from standard input (its first line); on a
    /// terminal, prompt for it with echo off.
    #[arg(long)]
    pub password_stdin: bool,
}

/// The settings of an account, as options.
#[derive(Debug, Clone, ClapArgs, Default)]
pub struct Settings {
    /// pop3 or imap.
    #[arg(long, value_name = "PROTOCOL")]
    pub protocol: Option<String>,
    /// The remote server's host name (also the name its certificate must carry).
    #[arg(long)]
    pub host: Option<String>,
    /// The port (default: 995/993 with implicit TLS, else 110/143).
    #[arg(long)]
    pub port: Option<u16>,
    /// implicit (default), starttls, or none (no TLS at all).
    #[arg(long, value_name = "MODE")]
    pub tls: Option<String>,
    /// Do not check the server's certificate (on by default).
    #[arg(long)]
    pub no_verify: bool,
    /// Check the server's certificate again (edit).
    #[arg(long, conflicts_with = "no_verify")]
    pub verify: bool,
    /// The user name on the remote server.
    #[arg(long)]
    pub username: Option<String>,
    /// An IMAP folder to collect from (repeat for several; default INBOX).
    #[arg(long = "folder", value_name = "FOLDER")]
    pub folders: Vec<String>,
    /// The local folder the mail goes into (default: the account's name).
    #[arg(long, value_name = "FOLDER")]
    pub target: Option<String>,
    /// keep (default), delete, or delete-after-N (days) on the server.
    #[arg(long, value_name = "MODE")]
    pub keep: Option<String>,
    /// Time between polls, e.g. 10m (default: fetch.interval).
    #[arg(long, value_name = "DURATION")]
    pub interval: Option<String>,
    /// Store the account disabled (not polled until enabled).
    #[arg(long)]
    pub disable: bool,
    /// Enable a disabled account (edit).
    #[arg(long, conflicts_with = "disable")]
    pub enable: bool,
}

#[derive(Debug, Subcommand)]
pub enum Verb {
    /// Add a fetch account to a user; the password is asked for (or read
    /// with --password-file / --password-stdin).
    Add {
        user: String,
        name: String,
        #[command(flatten)]
        settings: Settings,
        #[command(flatten)]
        password: PasswordSource,
    },
    /// Change an account's settings (and, with a password option, its password).
    Edit {
        user: String,
        name: String,
        #[command(flatten)]
        settings: Settings,
        #[command(flatten)]
        password: PasswordSource,
    },
    /// Delete an account (what it fetched stays in the user's mailbox).
    Del { user: String, name: String },
    /// List the accounts, of one user or of everyone, with their last result.
    List { user: Option<String> },
    /// Show one account and its last result.
    Show { user: String, name: String },
    /// Fetch the account now (kmp-fetch must be running) and print the result.
    Run { user: String, name: String },
    /// Connect and log in to the account's server, fetching nothing.
    Test { user: String, name: String },
}

/// Why an account operation failed.
pub fn err(code: i32, m: impl Into<String>) -> CtlError {
    CtlError::new(code, m)
}

/// The public key kmpctl seals with.
pub fn public_key(cfg: &Config) -> Result<PublicKey, CtlError> {
    PublicKey::load(&cfg.path_of("fetch.public_key")).map_err(|e| {
        err(
            exit::CONFIG,
            format!("fetch.public_key: {e} (kmpctl setup makes the key pair)"),
        )
    })
}

/// Builds and checks a new account record from the settings; the
/// password is sealed to `key` for `owner`.
pub fn build(
    owner: &Address,
    name: &str,
    s: &Settings,
    password: &Secret,
    key: &PublicKey,
    now: u64,
) -> Result<FetchAccount, CtlError> {
    let protocol = match s.protocol.as_deref() {
        Some("pop3") => Protocol::Pop3,
        Some("imap") => Protocol::Imap,
        Some(p) => return Err(err(exit::USAGE, format!("--protocol {p}: pop3 or imap"))),
        None => return Err(err(exit::USAGE, "--protocol pop3 or imap is needed")),
    };
    let mut a = FetchAccount {
        owner: owner.to_string(),
        name: name.to_string(),
        protocol,
        host: s
            .host
            .clone()
            .ok_or_else(|| err(exit::USAGE, "--host is needed"))?,
        port: 0,
        tls: Tls::Implicit,
        verify: true,
        username: s
            .username
            .clone()
            .ok_or_else(|| err(exit::USAGE, "--username is needed"))?,
        password: seal(key, password, owner)?,
        folders: Vec::new(),
        target: String::new(),
        keep: Keep::Keep,
        interval: 0,
        enabled: true,
        created: now,
    };
    apply(&mut a, s)?;
    if a.port == 0 {
        a.port = a.protocol.default_port(a.tls);
    }
    a.check().map_err(|e| err(exit::DATAERR, e))?;
    Ok(a)
}

fn seal(key: &PublicKey, password: &Secret, owner: &Address) -> Result<String, CtlError> {
    key.seal(password.as_bytes(), &owner.to_string())
        .map_err(|e| err(exit::DATAERR, e.to_string()))
}

/// Applies the options given to a record.
pub fn apply(a: &mut FetchAccount, s: &Settings) -> Result<(), CtlError> {
    if let Some(p) = &s.protocol {
        a.protocol = match p.as_str() {
            "pop3" => Protocol::Pop3,
            "imap" => Protocol::Imap,
            _ => return Err(err(exit::USAGE, format!("--protocol {p}: pop3 or imap"))),
        };
    }
    if let Some(h) = &s.host {
        a.host = h.clone();
    }
    if let Some(t) = &s.tls {
        a.tls = match t.as_str() {
            "implicit" => Tls::Implicit,
            "starttls" => Tls::Starttls,
            "none" => Tls::None,
            _ => {
                return Err(err(
                    exit::USAGE,
                    format!("--tls {t}: implicit, starttls or none"),
                ))
            }
        };
    }
    if let Some(p) = s.port {
        a.port = p;
    }
    if s.no_verify {
        a.verify = false;
    }
    if s.verify {
        a.verify = true;
    }
    if let Some(u) = &s.username {
        a.username = u.clone();
    }
    if !s.folders.is_empty() {
        a.folders = s.folders.clone();
    }
    if let Some(t) = &s.target {
        a.target = t.clone();
    }
    if let Some(k) = &s.keep {
        a.keep = Keep::parse(k).ok_or_else(|| {
            err(
                exit::USAGE,
                format!("--keep {k}: keep, delete or delete-after-N (days, 1 to 3650)"),
            )
        })?;
    }
    if let Some(i) = &s.interval {
        let d = crate::config::parse_duration(i)
            .map_err(|e| err(exit::USAGE, format!("--interval: {e}")))?;
        a.interval = d.as_secs();
    }
    if s.disable {
        a.enabled = false;
    }
    if s.enable {
        a.enabled = true;
    }
    Ok(())
}

/// Adds an account (the owner must be a user).
pub fn add(db: &Lmdb, cfg: &Config, a: &FetchAccount) -> Result<(), CtlError> {
    db.put_fetch_account(a, false, cfg.usize("fetch.max_accounts_per_user"))
        .map_err(db_err)?;
    reload(cfg);
    Ok(())
}

/// Changes an account: `s` applied, and a new password when given.
pub fn edit(
    db: &Lmdb,
    cfg: &Config,
    owner: &Address,
    name: &str,
    s: &Settings,
    password: Option<&Secret>,
) -> Result<FetchAccount, CtlError> {
    let mut a = db
        .fetch_account(owner, name)
        .map_err(db_err)?
        .ok_or_else(|| {
            err(
                exit::NOUSER,
                format!("no fetch account {name:?} of {owner}"),
            )
        })?;
    apply(&mut a, s)?;
    if let Some(p) = password {
        a.password = seal(&public_key(cfg)?, p, owner)?;
    }
    a.check().map_err(|e| err(exit::DATAERR, e))?;
    db.put_fetch_account(&a, true, 0).map_err(db_err)?;
    reload(cfg);
    Ok(a)
}

/// Deletes an account.
pub fn delete(db: &Lmdb, cfg: &Config, owner: &Address, name: &str) -> Result<(), CtlError> {
    db.del_fetch_account(owner, name).map_err(db_err)?;
    reload(cfg);
    Ok(())
}

/// The accounts of one user, or everyone's.
pub fn list(db: &Lmdb, owner: Option<&Address>) -> Result<Vec<FetchAccount>, CtlError> {
    db.fetch_accounts(owner).map_err(db_err)
}

/// The last result of an account, as kmp-fetch recorded it (read from its
/// state directory, so it shows even while kmp-fetch is stopped).
pub fn status(cfg: &Config, a: &FetchAccount) -> AccountStatus {
    let mut st = crate::fetch::state::read_status(
        &cfg.path_of("paths.fetch"),
        &crate::fetch::state::account_id(a),
    );
    st.owner = a.owner.clone();
    st.name = a.name.clone();
    st
}

fn socket(cfg: &Config) -> PathBuf {
    crate::fetch::socket(&crate::paths::Paths::new(cfg))
}

fn call(cfg: &Config, req: ipc::Request) -> Result<Reply, CtlError> {
    ipc::call(&socket(cfg), req, Duration::from_secs(900)).map_err(|e| match e {
        ipc::ClientError::Unavailable(..) => err(exit::UNAVAILABLE, e.to_string()),
        ipc::ClientError::Refused {
            temporary: true, ..
        } => err(exit::TEMPFAIL, e.to_string()),
        e => err(exit::DATAERR, e.to_string()),
    })
}

/// Tells a running kmp-fetch to read the accounts again (nothing when it is not running).
fn reload(cfg: &Config) {
    let _ = ipc::call(&socket(cfg), ipc::Request::Reload, Duration::from_secs(5));
}

/// Has kmp-fetch test an account's connection and login.
pub fn test(cfg: &Config, a: &FetchAccount) -> Result<(u64, String), CtlError> {
    match call(cfg, ipc::Request::Test { account: a.clone() })? {
        Reply::Tested { messages, detail } => Ok((messages, detail)),
        other => Err(err(exit::PROTOCOL, format!("kmp-fetch answered {other:?}"))),
    }
}

/// Has kmp-fetch run an account now; its status after the run.
pub fn run_now(cfg: &Config, owner: &Address, name: &str) -> Result<AccountStatus, CtlError> {
    match call(
        cfg,
        ipc::Request::Run {
            owner: owner.to_string(),
            name: name.to_string(),
        },
    )? {
        Reply::Ran { status } => Ok(status),
        other => Err(err(exit::PROTOCOL, format!("kmp-fetch answered {other:?}"))),
    }
}

/// Reads the remote password as the options say.
fn read_password(p: &PasswordSource) -> Result<Option<Secret>, CtlError> {
    if let Some(f) = &p.password_file {
        let mut buf = zeroize::Zeroizing::new(Vec::new());
        std::fs::File::open(f)
            .and_then(|fh| fh.take(MAX_PASSWORD as u64 + 2).read_to_end(&mut buf))
            .map_err(|e| err(exit::NOINPUT, format!("{}: {e}", f.display())))?;
        return one_line(&buf).map(Some);
    }
    if !p.password_stdin {
        return Ok(None);
    }
    if std::io::stdin().is_terminal() {
        let typed = super::user::read_hidden("Remote password: ")?;
        return one_line(&typed).map(Some);
    }
    let mut buf = zeroize::Zeroizing::new(Vec::new());
    std::io::stdin()
        .lock()
        .take(MAX_PASSWORD as u64 + 2)
        .read_to_end(&mut buf)
        .map_err(|e| err(exit::IOERR, format!("cannot read the password: {e}")))?;
    one_line(&buf).map(Some)
}

fn one_line(buf: &[u8]) -> Result<Secret, CtlError> {
    let mut line = buf;
    if let Some(i) = line.iter().position(|&b| b == b'\n') {
        line = &line[..i];
    }
    if line.last() == Some(&b'\r') {
        line = &line[..line.len() - 1];
    }
    if line.is_empty() || line.len() > MAX_PASSWORD {
        return Err(err(
            exit::DATAERR,
            format!("the password must be 1 to {MAX_PASSWORD} bytes"),
        ));
    }
    Ok(Secret::new(line.to_vec()))
}

fn owner(user: &str) -> Result<Address, CtlError> {
    super::user::parse(user)
}

fn row(a: &FetchAccount, st: &AccountStatus) -> Vec<String> {
    vec![
        a.owner.clone(),
        a.name.clone(),
        a.protocol.name().into(),
        format!("{}:{}", a.host, a.port),
        a.target_folder().into(),
        a.keep.name(),
        if a.enabled { "yes" } else { "no" }.into(),
        if st.last_run == 0 {
            "-".into()
        } else {
            iso_time(st.last_run)
        },
        if st.last_run == 0 {
            "-".into()
        } else if st.error.is_empty() {
            "ok".into()
        } else {
            st.error.clone()
        },
    ]
}

fn account_json(a: &FetchAccount, st: &AccountStatus) -> serde_json::Value {
    let mut v = serde_json::to_value(a).unwrap_or_default();
    if let Some(o) = v.as_object_mut() {
        // The sealed text is of no use to anyone but kmp-fetch.
        o.insert("password".into(), "(sealed)".into());
        o.insert(
            "status".into(),
            serde_json::to_value(st).unwrap_or_default(),
        );
    }
    v
}

pub fn run(ctx: &Ctx, a: Args) -> CtlResult {
    let cfg = ctx.config()?;
    match a.verb {
        Verb::Add {
            user,
            name,
            settings,
            password,
        } => {
            let o = owner(&user)?;
            let key = public_key(&cfg)?;
            let mut src = password;
            if src.password_file.is_none() {
                // With no option the password is still asked for (or read).
                src.password_stdin = true;
            }
            let Some(pw) = read_password(&src)? else {
                return Err(err(exit::USAGE, "no password given"));
            };
            let (_, db) = open(ctx, false)?;
            let acc = build(
                &o,
                &name,
                &settings,
                &pw,
                &key,
                crate::clock::Clock::System.now(),
            )?;
            add(&db, &cfg, &acc)?;
            if ctx.json {
                println!("{}", account_json(&acc, &AccountStatus::default()));
            } else {
                println!("added fetch account {:?} of {}", acc.name, acc.owner);
            }
            Ok(())
        }
        Verb::Edit {
            user,
            name,
            settings,
            password,
        } => {
            let o = owner(&user)?;
            let pw = read_password(&password)?;
            let (_, db) = open(ctx, false)?;
            let acc = edit(&db, &cfg, &o, &name, &settings, pw.as_ref())?;
            if ctx.json {
                println!("{}", account_json(&acc, &status(&cfg, &acc)));
            } else {
                println!("changed fetch account {:?} of {}", acc.name, acc.owner);
            }
            Ok(())
        }
        Verb::Del { user, name } => {
            let o = owner(&user)?;
            let (_, db) = open(ctx, false)?;
            delete(&db, &cfg, &o, &name)?;
            if ctx.json {
                println!(
                    "{}",
                    serde_json::json!({"deleted": name, "owner": o.to_string()})
                );
            } else {
                println!("deleted fetch account {name:?} of {o}");
            }
            Ok(())
        }
        Verb::List { user } => {
            let o = user.as_deref().map(owner).transpose()?;
            let (_, db) = open(ctx, false)?;
            let all = list(&db, o.as_ref())?;
            if ctx.json {
                let v: Vec<serde_json::Value> = all
                    .iter()
                    .map(|a| account_json(a, &status(&cfg, a)))
                    .collect();
                println!("{}", serde_json::Value::Array(v));
                return Ok(());
            }
            let mut t = Table::new(&[
                "user", "name", "protocol", "server", "folder", "keep", "enabled", "last run",
                "result",
            ]);
            for a in &all {
                t.push(row(a, &status(&cfg, a)));
            }
            t.print(false);
            Ok(())
        }
        Verb::Show { user, name } => {
            let o = owner(&user)?;
            let (_, db) = open(ctx, false)?;
            let acc = db
                .fetch_account(&o, &name)
                .map_err(db_err)?
                .ok_or_else(|| err(exit::NOUSER, format!("no fetch account {name:?} of {o}")))?;
            let st = status(&cfg, &acc);
            if ctx.json {
                println!("{}", account_json(&acc, &st));
                return Ok(());
            }
            print!("{}", show_text(&acc, &st));
            Ok(())
        }
        Verb::Run { user, name } => {
            let o = owner(&user)?;
            let st = run_now(&cfg, &o, &name)?;
            if ctx.json {
                println!("{}", serde_json::to_value(&st).unwrap_or_default());
            } else {
                println!(
                    "fetched {}, deleted {}, over the size limit {}{}",
                    st.fetched,
                    st.deleted,
                    st.too_big,
                    if st.error.is_empty() {
                        String::new()
                    } else {
                        format!("; error: {}", st.error)
                    }
                );
            }
            if st.error.is_empty() {
                Ok(())
            } else {
                Err(err(
                    exit::UNAVAILABLE,
                    format!("the run failed: {}", st.error),
                ))
            }
        }
        Verb::Test { user, name } => {
            let o = owner(&user)?;
            let (_, db) = open(ctx, false)?;
            let acc = db
                .fetch_account(&o, &name)
                .map_err(db_err)?
                .ok_or_else(|| err(exit::NOUSER, format!("no fetch account {name:?} of {o}")))?;
            let (n, detail) = test(&cfg, &acc)?;
            if ctx.json {
                println!(
                    "{}",
                    serde_json::json!({"ok": true, "messages": n, "detail": detail})
                );
            } else {
                println!("ok: {detail}");
            }
            Ok(())
        }
    }
}

fn show_text(a: &FetchAccount, st: &AccountStatus) -> String {
    let mut s = String::new();
    let mut line = |k: &str, v: String| s.push_str(&format!("{k:<12} {v}\n"));
    line("user", a.owner.clone());
    line("name", a.name.clone());
    line("protocol", a.protocol.name().into());
    line("server", format!("{}:{}", a.host, a.port));
    line("tls", a.tls.name().into());
    line("verify", if a.verify { "yes" } else { "no" }.into());
    line("username", a.username.clone());
    line("password", "(sealed)".into());
    if a.protocol == Protocol::Imap {
        line("folders", a.remote_folders().join(", "));
    }
    line("target", a.target_folder().into());
    line("keep", a.keep.name());
    line(
        "interval",
        if a.interval == 0 {
            "default".into()
        } else {
            format!("{}s", a.interval)
        },
    );
    line("enabled", if a.enabled { "yes" } else { "no" }.into());
    line(
        "last run",
        if st.last_run == 0 {
            "never".into()
        } else {
            iso_time(st.last_run)
        },
    );
    if st.last_ok != 0 {
        line("last ok", iso_time(st.last_ok));
    }
    if !st.error.is_empty() {
        line("error", st.error.clone());
        line("failures", st.failures.to_string());
    }
    if st.next_run != 0 {
        line("next run", iso_time(st.next_run));
    }
    line(
        "fetched",
        format!(
            "{} last run, {} in all; deleted {}; over the size limit {}",
            st.fetched, st.total, st.deleted, st.too_big
        ),
    );
    s
}

/// Makes kmp-fetch's key pair if it is missing (kmpctl init and setup).
pub fn make_keys(private: &Path, public: &Path) -> Result<bool, CtlError> {
    for p in [private, public] {
        if let Some(d) = p.parent() {
            std::fs::create_dir_all(d)
                .map_err(|e| err(exit::CANTCREAT, format!("{}: {e}", d.display())))?;
        }
    }
    crate::fetch::seal::make_key_pair(private, public)
        .map_err(|e| err(exit::CANTCREAT, e.to_string()))
}
