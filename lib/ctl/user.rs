//! `kmpctl user add|del|list|show|passwd|disable|enable|quota|forward`:
//! mailbox users. Passwords come on standard input (`--password-stdin`) or
//! already hashed (`--password-hash`), never on the command line where `ps`
//! would show them; only their hash is stored.

use std::io::Read;

use clap::{Args as ClapArgs, Subcommand};
use serde_json::json;
use zeroize::Zeroize;

use super::db::{db_err, iso_time, open, size_text};
use super::output::{print_value, Table};
use super::{CtlError, CtlResult, Ctx};
use crate::config::parse_size;
use crate::exit;
use crate::userdb::password::{self, Scheme, MAX_PASSWORD};
use crate::userdb::{Address, DbError, Directory, State, User};

#[derive(Debug, ClapArgs)]
pub struct Args {
    #[command(subcommand)]
    pub verb: Verb,
}

/// Where a new password comes from.
#[derive(Debug, Clone, ClapArgs)]
pub struct PasswordArgs {
    /// Read the password from standard input (one line; at most 1024 bytes).
    #[arg(long, conflicts_with = "password_hash")]
    pub password_stdin: bool,
    /// Store this crypt hash as it is ($6$, $5$, $1$, $2b$/$2y$, $argon2id$).
    #[arg(long, value_name = "HASH")]
    pub password_hash: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum Verb {
    /// Add a user. Without a password option the user cannot log in (mail only).
    Add {
        address: String,
        #[command(flatten)]
        password: PasswordArgs,
        /// Quota in bytes (or 512K, 10M, 1G); default: the domain's.
        #[arg(long, value_name = "SIZE")]
        quota: Option<String>,
        /// Quota in messages; default: the domain's.
        #[arg(long, value_name = "N")]
        quota_messages: Option<u64>,
        /// The Maildir, instead of paths.mail/DOMAIN/LOCAL.
        #[arg(long, value_name = "PATH")]
        mail_path: Option<String>,
    },
    /// Delete a user (the Maildir stays on disk).
    Del { address: String },
    /// List users, all or one domain's.
    List { domain: Option<String> },
    /// Show one user (never the password hash, only its scheme).
    Show { address: String },
    /// Set a new password.
    Passwd {
        address: String,
        #[command(flatten)]
        password: PasswordArgs,
    },
    /// Refuse logins and mail for a user.
    Disable { address: String },
    /// Allow logins and mail again.
    Enable { address: String },
    /// Set the quota: SIZE in bytes (or 512K, 10M, 1G; 0 for none).
    Quota {
        address: String,
        size: String,
        /// The message-count quota (0 for none).
        #[arg(long, value_name = "N")]
        messages: Option<u64>,
    },
    /// POP3 options: whether POP3 shows subfolders too, and LOGIN-DELAY.
    Pop3 {
        address: String,
        /// Show the mail of subfolders in POP3 too (yes or no).
        #[arg(long, value_name = "BOOL", value_parser = clap::builder::BoolishValueParser::new())]
        subfolders: Option<bool>,
        /// Seconds a client must wait between logins (RFC 2449 LOGIN-DELAY; 0 for none).
        #[arg(long, value_name = "SECS")]
        login_delay: Option<u64>,
    },
    /// Forward mail to TARGETs (none: stop forwarding).
    Forward {
        address: String,
        targets: Vec<String>,
        /// Keep a copy in the mailbox too.
        #[arg(long)]
        keep_copy: bool,
    },
}

pub fn run(ctx: &Ctx, a: Args) -> CtlResult {
    match a.verb {
        Verb::Add {
            address,
            password,
            quota,
            quota_messages,
            mail_path,
        } => {
            let addr = parse(&address)?;
            let hash = new_hash(&password)?;
            let quota = quota
                .map(|q| parse_size(&q).map_err(|e| CtlError::new(exit::USAGE, e)))
                .transpose()?;
            if let Some(p) = &mail_path {
                if !p.starts_with('/') {
                    return Err(CtlError::new(
                        exit::USAGE,
                        format!("--mail-path {p:?} is not an absolute path"),
                    ));
                }
            }
            let (paths, db) = open(ctx, false)?;
            let dom = db.domain(addr.domain()).map_err(db_err)?.ok_or_else(|| {
                CtlError::new(
                    exit::NOUSER,
                    format!(
                        "no domain {} (add it first: kmpctl domain add {})",
                        addr.domain(),
                        addr.domain()
                    ),
                )
            })?;
            let mut u = User::new(&addr, crate::userdb::now());
            u.password = hash.unwrap_or_default();
            u.quota_bytes = quota.unwrap_or(dom.quota_bytes);
            u.quota_messages = quota_messages.unwrap_or(dom.quota_messages);
            u.mail_path = mail_path.unwrap_or_default();
            db.add_user(&u).map_err(db_err)?;
            let mail = u.maildir(&paths.mail);
            print_value(
                ctx.json,
                &json!({"added": {"user": u.address, "mail_path": mail}}),
                &format!("added user {} (mail in {})\n", u.address, mail.display()),
            );
            Ok(())
        }
        Verb::Del { address } => {
            let addr = parse(&address)?;
            let (_, db) = open(ctx, false)?;
            let u = db.del_user(&addr).map_err(db_err)?;
            done(ctx, "deleted", &u.address);
            Ok(())
        }
        Verb::List { domain } => {
            let (paths, db) = open(ctx, false)?;
            let users = db.users(domain.as_deref()).map_err(db_err)?;
            if ctx.json {
                let v: Vec<_> = users.iter().map(|u| user_json(u, &paths.mail)).collect();
                println!("{}", serde_json::Value::Array(v));
                return Ok(());
            }
            let mut t = Table::new(&["address", "state", "quota", "messages", "forwards"]);
            for u in users {
                t.push(vec![
                    u.address.clone(),
                    u.state.name().into(),
                    size_text(u.quota_bytes),
                    count_text(u.quota_messages),
                    u.forwards.join(","),
                ]);
            }
            t.print(false);
            Ok(())
        }
        Verb::Show { address } => {
            let addr = parse(&address)?;
            let (paths, db) = open(ctx, false)?;
            let u = db
                .user(&addr)
                .map_err(db_err)?
                .ok_or_else(|| CtlError::new(exit::NOUSER, format!("no user {addr}")))?;
            let text = format!(
                "address:         {}\nstate:           {}\npassword:        {}\nquota:           {}\nquota messages:  {}\nmail path:       {}\nforwards:        {}\nkeep copy:       {}\npop3 subfolders: {}\nlogin delay:     {}\ncreated:         {}\n",
                u.address,
                u.state.name(),
                scheme_text(&u.password),
                size_text(u.quota_bytes),
                count_text(u.quota_messages),
                u.maildir(&paths.mail).display(),
                if u.forwards.is_empty() { "none".into() } else { u.forwards.join(", ") },
                yes_no(u.keep_copy),
                yes_no(u.pop3_subfolders),
                u.login_delay,
                iso_time(u.created),
            );
            print_value(ctx.json, &user_json(&u, &paths.mail), &text);
            Ok(())
        }
        Verb::Passwd { address, password } => {
            let addr = parse(&address)?;
            let hash = new_hash(&password)?.ok_or_else(|| {
                CtlError::new(
                    exit::USAGE,
                    "say where the password comes from: --password-stdin or --password-hash HASH",
                )
            })?;
            update(ctx, &addr, "password changed for", move |u| {
                u.password = hash;
                Ok(())
            })
        }
        Verb::Disable { address } => update(ctx, &parse(&address)?, "disabled", |u| {
            u.state = State::Disabled;
            Ok(())
        }),
        Verb::Enable { address } => update(ctx, &parse(&address)?, "enabled", |u| {
            u.state = State::Active;
            Ok(())
        }),
        Verb::Quota {
            address,
            size,
            messages,
        } => {
            let bytes = parse_size(&size).map_err(|e| CtlError::new(exit::USAGE, e))?;
            update(ctx, &parse(&address)?, "quota set for", move |u| {
                u.quota_bytes = bytes;
                if let Some(m) = messages {
                    u.quota_messages = m;
                }
                Ok(())
            })
        }
        Verb::Pop3 {
            address,
            subfolders,
            login_delay,
        } => update(ctx, &parse(&address)?, "POP3 options set for", move |u| {
            if let Some(b) = subfolders {
                u.pop3_subfolders = b;
            }
            if let Some(d) = login_delay {
                u.login_delay = d;
            }
            Ok(())
        }),
        Verb::Forward {
            address,
            targets,
            keep_copy,
        } => {
            let addr = parse(&address)?;
            let targets: Vec<String> = targets
                .iter()
                .map(|t| parse(t).map(|a| a.to_string()))
                .collect::<Result<_, _>>()?;
            if targets.iter().any(|t| {
                Address::parse(t)
                    .map(|a| a.key() == addr.key())
                    .unwrap_or(false)
            }) && !keep_copy
            {
                return Err(CtlError::new(
                    exit::DATAERR,
                    "forwarding a user to itself: use --keep-copy instead",
                ));
            }
            update(ctx, &addr, "forwarding set for", move |u| {
                u.forwards = targets;
                u.keep_copy = keep_copy && !u.forwards.is_empty();
                Ok(())
            })
        }
    }
}

fn update(
    ctx: &Ctx,
    addr: &Address,
    what: &str,
    f: impl FnOnce(&mut User) -> Result<(), DbError>,
) -> CtlResult {
    let (_, db) = open(ctx, false)?;
    let u = db.update_user(addr, f).map_err(db_err)?;
    done(ctx, what, &u.address);
    Ok(())
}

fn done(ctx: &Ctx, what: &str, address: &str) {
    let key = what.split(' ').next().unwrap_or(what);
    print_value(
        ctx.json,
        &json!({key: {"user": address}}),
        &format!("{what} {address}\n"),
    );
}

/// Parses an address given on the command line.
pub fn parse(s: &str) -> Result<Address, CtlError> {
    Address::parse(s).map_err(|e| CtlError::new(exit::DATAERR, e.to_string()))
}

/// The hash to store, from --password-stdin or --password-hash; None when
/// neither was given.
fn new_hash(p: &PasswordArgs) -> Result<Option<String>, CtlError> {
    if let Some(h) = &p.password_hash {
        password::check_hash(h).map_err(|e| CtlError::new(exit::DATAERR, e.to_string()))?;
        return Ok(Some(h.clone()));
    }
    if !p.password_stdin {
        return Ok(None);
    }
    let mut buf = Vec::with_capacity(MAX_PASSWORD + 3);
    let r = std::io::stdin()
        .lock()
        .take(MAX_PASSWORD as u64 + 3)
        .read_to_end(&mut buf);
    if let Err(e) = r {
        buf.zeroize();
        return Err(CtlError::new(
            exit::IOERR,
            format!("cannot read the password: {e}"),
        ));
    }
    // One line: the first newline ends it, and a CR before it goes too.
    if let Some(i) = buf.iter().position(|&b| b == b'\n') {
        buf.truncate(i);
    } else if buf.len() > MAX_PASSWORD {
        buf.zeroize();
        return Err(CtlError::new(
            exit::DATAERR,
            format!("the password is longer than {MAX_PASSWORD} bytes"),
        ));
    }
    if buf.last() == Some(&b'\r') {
        buf.pop();
    }
    let r = password::hash(&buf);
    buf.zeroize();
    r.map(Some)
        .map_err(|e| CtlError::new(exit::DATAERR, e.to_string()))
}

fn user_json(u: &User, mail_root: &std::path::Path) -> serde_json::Value {
    json!({
        "address": u.address,
        "state": u.state.name(),
        "password": scheme_text(&u.password),
        "quota_bytes": u.quota_bytes,
        "quota_messages": u.quota_messages,
        "mail_path": u.maildir(mail_root),
        "forwards": u.forwards,
        "keep_copy": u.keep_copy,
        "pop3_subfolders": u.pop3_subfolders,
        "login_delay": u.login_delay,
        "created": iso_time(u.created),
    })
}

fn scheme_text(h: &str) -> &'static str {
    if h.is_empty() {
        return "none (cannot log in)";
    }
    Scheme::of(h).map(Scheme::name).unwrap_or("unknown")
}

fn count_text(n: u64) -> String {
    match n {
        0 => "none".into(),
        n => n.to_string(),
    }
}

fn yes_no(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}
