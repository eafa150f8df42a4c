//! `kmpctl user add|del|list|show|passwd|disable|enable|quota|forward`:
//! mailbox users. Passwords come on standard input (`--password-stdin`) or
//! already hashed (`--password-hash`), never on the command line where `ps`
//! would show them; only their hash is stored.

use std::io::{BufRead, IsTerminal, Read, Write};
use std::path::Path;

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
    /// Read the password from standard input (one line; at most 1024 bytes);
    /// on a terminal, prompt for it twice with echo off.
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
        #[arg(long, value_name = "N", alias = "messages")]
        quota_messages: Option<u64>,
        /// The Maildir, instead of paths.mail/DOMAIN/LOCAL.
        #[arg(long, value_name = "PATH")]
        mail_path: Option<String>,
        /// Give the new user the mail a deleted user left in its Maildir
        /// (without it, an existing Maildir is refused).
        #[arg(long)]
        reuse_mail: bool,
    },
    /// Delete a user and its Maildir (or keep the Maildir with --keep-mail);
    /// its address is taken out of aliases and forwards.
    #[command(visible_alias = "delete")]
    Del {
        address: String,
        /// Leave the Maildir on disk (a later `user add` of the address then
        /// needs --reuse-mail to adopt it).
        #[arg(long)]
        keep_mail: bool,
    },
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
        #[arg(long = "quota-messages", value_name = "N", alias = "messages")]
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
    /// Spam settings: allow and block lists of senders, thresholds, Junk
    /// filing, connection checks. Without options, shows them.
    Spam {
        address: String,
        #[command(flatten)]
        spam: super::spam::UserSpamArgs,
    },
    /// Forward mail to TARGETs; --clear stops forwarding.
    Forward {
        address: String,
        targets: Vec<String>,
        /// Keep a copy in the mailbox too.
        #[arg(long, conflicts_with = "clear")]
        keep_copy: bool,
        /// Stop forwarding: mail stays in the mailbox.
        #[arg(long, conflicts_with = "targets")]
        clear: bool,
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
            reuse_mail,
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
            let u = crate::admin::new_user(
                &db,
                &addr,
                crate::admin::NewUser {
                    hash,
                    quota_bytes: quota,
                    quota_messages,
                    mail_path,
                },
            )
            .map_err(db_err)?;
            let mail = u.maildir(&paths.mail);
            // A Maildir already there holds someone's mail (a deleted user's,
            // kept with --keep-mail): never hand it over without being told.
            // (A name that is taken is refused as such by add_user below.)
            let taken = db.user(&addr).map_err(db_err)?.is_some()
                || db.alias(&addr).map_err(db_err)?.is_some();
            let left = !taken && mail.exists();
            if left && !reuse_mail {
                return Err(CtlError::new(
                    exit::CANTCREAT,
                    format!(
                        "{} exists already and may hold a former user's mail: \
                         add with --reuse-mail to give it to {}, or remove it first",
                        mail.display(),
                        u.address
                    ),
                ));
            }
            db.add_user(&u).map_err(db_err)?;
            let how = if left {
                "reusing the mail in"
            } else {
                "mail in"
            };
            print_value(
                ctx.json,
                &json!({"added": {"user": u.address, "mail_path": mail, "reused_mail": left}}),
                &format!("added user {} ({how} {})\n", u.address, mail.display()),
            );
            Ok(())
        }
        Verb::Del { address, keep_mail } => {
            let addr = parse(&address)?;
            let (paths, db) = open(ctx, false)?;
            let (u, unlinked) = db.del_user(&addr).map_err(db_err)?;
            let mail = u.maildir(&paths.mail);
            let mail_done = if keep_mail {
                MailFate::Kept
            } else {
                remove_maildir(&mail)
            };
            print_deleted(ctx, &u.address, &mail, &mail_done, &unlinked);
            match mail_done {
                MailFate::Failed(e) => Err(CtlError::new(
                    exit::from_io(&e),
                    format!(
                        "user {} is deleted, but its mail could not be removed: {}: {e}",
                        u.address,
                        mail.display()
                    ),
                )),
                _ => Ok(()),
            }
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
            let v = user_json(&u, &paths.mail);
            print_value(ctx.json, &v, &show_text(&v));
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
        Verb::Spam { address, spam } => {
            let addr = parse(&address)?;
            let (_, db) = open(ctx, false)?;
            // Checked before the write transaction, so bad input changes nothing.
            let mut probe = crate::ipc::authd::SpamPrefs::default();
            super::spam::apply_user(&spam, &mut probe)?;
            let u = db
                .update_user(&addr, |u| {
                    super::spam::apply_user(&spam, &mut u.spam)
                        .map_err(|_| DbError::Io("bad spam settings".into()))
                })
                .map_err(db_err)?;
            super::spam::show(ctx, &u.address, &u.spam)
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
            clear,
        } => {
            let addr = parse(&address)?;
            if targets.is_empty() && !clear {
                // An empty list used to clear forwards silently: say it.
                return Err(CtlError::new(
                    exit::USAGE,
                    "no target: name where to forward, or --clear to stop forwarding",
                ));
            }
            let targets: Vec<Address> =
                targets.iter().map(|t| parse(t)).collect::<Result<_, _>>()?;
            let what = if clear {
                "forwarding stopped for"
            } else {
                "forwarding set for"
            };
            let (_, db) = open(ctx, false)?;
            let u = crate::admin::set_forwards(&db, &addr, &targets, keep_copy).map_err(db_err)?;
            done(ctx, what, &u.address);
            Ok(())
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

pub(crate) fn done(ctx: &Ctx, what: &str, address: &str) {
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
pub(crate) fn new_hash(p: &PasswordArgs) -> Result<Option<String>, CtlError> {
    if let Some(h) = &p.password_hash {
        password::check_hash(h).map_err(|e| CtlError::new(exit::DATAERR, e.to_string()))?;
        return Ok(Some(h.clone()));
    }
    if !p.password_stdin {
        return Ok(None);
    }
    if std::io::stdin().is_terminal() {
        return prompt_password().map(Some);
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

/// Asks for a password on the terminal twice, with echo off, and hashes it.
fn prompt_password() -> Result<String, CtlError> {
    let first = read_hidden("New password: ")?;
    let second = read_hidden("Retype new password: ");
    let r = match second {
        Ok(second) if second.as_slice() == first.as_slice() => {
            if first.is_empty() {
                Err(CtlError::new(exit::DATAERR, "the password is empty"))
            } else {
                password::hash(&first).map_err(|e| CtlError::new(exit::DATAERR, e.to_string()))
            }
        }
        Ok(_) => Err(CtlError::new(exit::DATAERR, "the passwords do not match")),
        Err(e) => Err(e),
    };
    drop(first);
    r
}

/// One line from the terminal on standard input, typed with echo off; the
/// buffer is wiped when dropped.
pub(crate) fn read_hidden(prompt: &str) -> Result<zeroize::Zeroizing<Vec<u8>>, CtlError> {
    use nix::sys::termios::{tcgetattr, tcsetattr, LocalFlags, SetArg};
    let stdin = std::io::stdin();
    let term_err =
        |e: nix::Error| CtlError::new(exit::IOERR, format!("cannot set up the terminal: {e}"));
    let saved = tcgetattr(&stdin).map_err(term_err)?;
    let mut quiet = saved.clone();
    quiet.local_flags.remove(LocalFlags::ECHO);
    // The newline the user types is still echoed, so the cursor moves on.
    quiet.local_flags.insert(LocalFlags::ECHONL);
    // Echo goes off before the prompt shows: nothing typed after it is seen.
    tcsetattr(&stdin, SetArg::TCSAFLUSH, &quiet).map_err(term_err)?;
    eprint!("{prompt}");
    let _ = std::io::stderr().flush();
    let mut buf = zeroize::Zeroizing::new(Vec::with_capacity(MAX_PASSWORD + 2));
    let r = stdin
        .lock()
        .take(MAX_PASSWORD as u64 + 2)
        .read_until(b'\n', &mut buf);
    let restored = tcsetattr(&stdin, SetArg::TCSANOW, &saved);
    r.map_err(|e| CtlError::new(exit::IOERR, format!("cannot read the password: {e}")))?;
    restored.map_err(term_err)?;
    if buf.last() == Some(&b'\n') {
        buf.pop();
    } else if buf.len() > MAX_PASSWORD {
        return Err(CtlError::new(
            exit::DATAERR,
            format!("the password is longer than {MAX_PASSWORD} bytes"),
        ));
    }
    if buf.last() == Some(&b'\r') {
        buf.pop();
    }
    Ok(buf)
}

/// What happened to a deleted user's Maildir.
pub(crate) enum MailFate {
    Removed,
    Kept,
    Absent,
    /// There, but not a Maildir (no `cur/`): left alone rather than guessed at.
    NotMaildir,
    Failed(std::io::Error),
}

/// Removes a deleted user's Maildir, folders and all. A directory that does
/// not look like a Maildir (a --mail-path typed wrong) is left alone.
pub(crate) fn remove_maildir(mail: &Path) -> MailFate {
    if !mail.exists() {
        return MailFate::Absent;
    }
    if !mail.join("cur").is_dir() {
        return MailFate::NotMaildir;
    }
    match std::fs::remove_dir_all(mail) {
        Ok(()) => MailFate::Removed,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => MailFate::Absent,
        Err(e) => MailFate::Failed(e),
    }
}

/// Says what `user del` did: the user, its mail, and the references taken out.
fn print_deleted(
    ctx: &Ctx,
    address: &str,
    mail: &Path,
    fate: &MailFate,
    unlinked: &[crate::userdb::lmdb::Unlinked],
) {
    let (key, text) = match fate {
        MailFate::Removed => (
            "removed",
            format!("its mail in {} is removed", mail.display()),
        ),
        MailFate::Kept => (
            "kept",
            format!(
                "its mail stays in {} (user add --reuse-mail adopts it)",
                mail.display()
            ),
        ),
        MailFate::Absent => ("absent", "it had no mail on disk".to_string()),
        MailFate::NotMaildir => (
            "not a maildir",
            format!("{} is not a Maildir and is left as it is", mail.display()),
        ),
        MailFate::Failed(_) => (
            "failed",
            format!("its mail in {} is still there", mail.display()),
        ),
    };
    let changes: Vec<String> = unlinked.iter().map(|u| u.to_string()).collect();
    let v =
        json!({"deleted": {"user": address, "mail_path": mail, "mail": key, "unlinked": changes}});
    print_value(ctx.json, &v, &deleted_text(&v, &text));
}

/// The text of `user del` from its JSON and the sentence about the mail.
pub(crate) fn deleted_text(v: &serde_json::Value, mail_text: &str) -> String {
    let d = &v["deleted"];
    let mut t = format!(
        "deleted user {}; {mail_text}\n",
        d["user"].as_str().unwrap_or_default()
    );
    for c in d["unlinked"].as_array().into_iter().flatten() {
        t.push_str(&format!("{}\n", c.as_str().unwrap_or_default()));
    }
    t
}

/// The sentence `user del` says about the Maildir, from its JSON key.
pub(crate) fn mail_fate_text(key: &str, mail: &str) -> String {
    match key {
        "removed" => format!("its mail in {mail} is removed"),
        "kept" => format!("its mail stays in {mail} (user add --reuse-mail adopts it)"),
        "absent" => "it had no mail on disk".to_string(),
        "not a maildir" => format!("{mail} is not a Maildir and is left as it is"),
        _ => format!("its mail in {mail} is still there"),
    }
}

/// The text of `kmpctl user show`, from the JSON of [`user_json`] (so the
/// same for a user read locally or through kmp-admind).
pub(crate) fn show_text(v: &serde_json::Value) -> String {
    let s = |k: &str| v[k].as_str().unwrap_or_default().to_string();
    let n = |k: &str| v[k].as_u64().unwrap_or(0);
    let b = |k: &str| yes_no(v[k].as_bool().unwrap_or(false));
    let forwards: Vec<&str> = v["forwards"]
        .as_array()
        .map(|a| a.iter().filter_map(|x| x.as_str()).collect())
        .unwrap_or_default();
    format!(
        "address:         {}\nstate:           {}\npassword:        {}\nquota:           {}\nquota messages:  {}\nmail path:       {}\nforwards:        {}\nkeep copy:       {}\npop3 subfolders: {}\nlogin delay:     {}\ncreated:         {}\n",
        s("address"),
        s("state"),
        s("password"),
        size_text(n("quota_bytes")),
        count_text(n("quota_messages")),
        s("mail_path"),
        if forwards.is_empty() { "none".into() } else { forwards.join(", ") },
        b("keep_copy"),
        b("pop3_subfolders"),
        n("login_delay"),
        s("created"),
    )
}

pub(crate) fn user_json(u: &User, mail_root: &std::path::Path) -> serde_json::Value {
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
