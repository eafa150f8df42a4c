//! `kmpctl announce --all | --domain D | --users FILE  MESSAGE-FILE`: one
//! announcement into every chosen INBOX, stored once ([`crate::announce`]
//! has the record, the links and why).
//!
//! Everything is checked before anything is written: the message file
//! ([`crate::announce::message`]), the domain, every address of a users
//! file. Disabled users are skipped and counted. Mailboxes are served in
//! batches; each batch's links and `new/` fsyncs run on several threads
//! (a directory fsync is a journal commit; concurrent ones share it), then
//! its addresses go to the record's journal. On a terminal, progress is
//! shown on standard error as `kmpctl db load` shows it.

use std::collections::HashSet;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::Instant;

use clap::Args as ClapArgs;
use serde_json::json;

use super::db::{db_err, open};
use super::output::{count, print_value};
use super::user::parse;
use super::{CtlError, CtlResult, Ctx};
use crate::announce::message::{self, Stamp};
use crate::announce::{self, Owner, Placed, Record};
use crate::exit;
use crate::userdb::{Directory, State, User};

/// Mailboxes served between two journal writes and progress lines.
const BATCH: usize = 512;

#[derive(Debug, ClapArgs)]
#[command(group(clap::ArgGroup::new("who").required(true).args(["all", "domain", "users"])))]
pub struct Args {
    /// Every user of every domain.
    #[arg(long)]
    pub all: bool,
    /// Every user of one domain.
    #[arg(long, value_name = "DOMAIN")]
    pub domain: Option<String>,
    /// The users listed in FILE, one address a line (`#` starts a comment).
    #[arg(long, value_name = "FILE")]
    pub users: Option<PathBuf>,
    /// The message: header fields, a blank line, the body, in UTF-8.
    pub message: PathBuf,
}

/// What a run did.
#[derive(Debug, Default)]
struct Counts {
    chosen: u64,
    delivered: u64,
    already: u64,
    disabled: u64,
    failed: u64,
}

pub fn run(ctx: &Ctx, a: Args) -> CtlResult {
    let cfg = ctx.config()?;
    let file = std::fs::read(&a.message)
        .map_err(|e| CtlError::new(exit::from_io(&e), format!("{}: {e}", a.message.display())))?;
    let id = message::id_of(&file);
    let stamp = Stamp {
        id: &id,
        hostname: cfg.str("system.hostname"),
        now: crate::userdb::now(),
        max_size: cfg.u64("smtpd.max_message_size"),
    };
    let prepared = message::prepare(&file, &stamp)
        .map_err(|e| CtlError::new(exit::DATAERR, format!("{}: {e}", a.message.display())))?;
    let (paths, db) = open(ctx, false)?;
    let users = choose(&db, &a)?;
    let owner = owner(cfg.str("privileges.local"))?;

    let start = Instant::now();
    let record = Record::open(&paths.mail, &id)
        .map_err(|e| CtlError::new(exit::CANTCREAT, format!("announcement {id}: {e}")))?;
    let done = record
        .done()
        .map_err(|e| CtlError::new(exit::IOERR, format!("{}: {e}", record.dir().display())))?;
    // An interrupted run's stored file is used again: the same inode, the
    // same Date:, for everyone.
    let stored = match record
        .stored()
        .map_err(|e| CtlError::new(exit::IOERR, format!("{}: {e}", record.dir().display())))?
    {
        Some(s) => s,
        None => record
            .store(&prepared, owner)
            .map_err(|e| CtlError::new(exit::CANTCREAT, e))?,
    };
    let mut journal = record
        .journal()
        .map_err(|e| CtlError::new(exit::IOERR, format!("{}: {e}", record.dir().display())))?;

    let mut n = Counts::default();
    let mut todo: Vec<(String, PathBuf)> = Vec::new();
    for u in &users {
        n.chosen += 1;
        if u.state == State::Disabled {
            n.disabled += 1;
        } else if done.contains(&u.address) {
            n.already += 1;
        } else {
            todo.push((u.address.clone(), u.maildir(&paths.mail)));
        }
    }
    drop(users);
    let tty = std::io::stderr().is_terminal() && !ctx.json;
    let look = record.resumed();
    let total = todo.len();
    for (b, batch) in todo.chunks(BATCH).enumerate() {
        let mut results: Vec<Option<Placed>> = vec![None; batch.len()];
        crate::local::fanout::parallel(&mut results, batch, |slot, (_, root)| {
            *slot = Some(announce::place(&stored, &id, root, look, owner));
        });
        let mut lines = String::new();
        for ((address, root), r) in batch.iter().zip(results) {
            match r {
                Some(Placed::Linked) => n.delivered += 1,
                Some(Placed::Already) => n.already += 1,
                Some(Placed::Failed(e)) => {
                    n.failed += 1;
                    if tty {
                        eprint!("\r\x1b[K");
                    }
                    eprintln!("kmpctl: {address}: {}: {e}", root.display());
                    continue;
                }
                None => continue,
            }
            lines.push_str(address);
            lines.push('\n');
        }
        journal
            .write_all(lines.as_bytes())
            .map_err(|e| CtlError::new(exit::IOERR, format!("{}: {e}", record.dir().display())))?;
        if tty {
            let served = ((b + 1) * BATCH).min(total);
            let rate = served as f64 / start.elapsed().as_secs_f64().max(1e-6);
            eprint!("\r{served}/{total} mailboxes ({rate:.0}/s)");
            let _ = std::io::stderr().flush();
        }
    }
    if tty {
        eprint!("\r\x1b[K");
    }
    let _ = journal.sync_all();
    let secs = start.elapsed().as_secs_f64();
    let subject = message::field(&file, "subject").unwrap_or("");
    let v = json!({"announcement": {
        "id": id,
        "subject": subject,
        "chosen": n.chosen,
        "delivered": n.delivered,
        "already": n.already,
        "disabled": n.disabled,
        "failed": n.failed,
        "size": stored.size(),
        "seconds": secs,
        "complete": n.failed == 0,
    }});
    let text = format!(
        "announcement {id}: delivered to {}, {} had it already, {} skipped, {} in {secs:.2}s\n",
        count(n.delivered, "mailbox", "mailboxes"),
        n.already,
        count(n.disabled, "disabled user", "disabled users"),
        count(n.failed, "failure", "failures"),
    );
    if n.failed == 0 {
        record
            .finish(&text)
            .map_err(|e| CtlError::new(exit::IOERR, format!("{}: {e}", record.dir().display())))?;
    }
    print_value(ctx.json, &v, &text);
    if n.failed > 0 {
        return Err(CtlError::new(
            exit::TEMPFAIL,
            format!(
                "{} not served; run the same command again to finish (nobody gets it twice)",
                count(n.failed, "mailbox was", "mailboxes were")
            ),
        ));
    }
    Ok(())
}

/// The users chosen, every one checked before anything is written.
fn choose(db: &crate::userdb::lmdb::Lmdb, a: &Args) -> Result<Vec<User>, CtlError> {
    if a.all {
        return db.users(None).map_err(db_err);
    }
    if let Some(d) = &a.domain {
        let name = crate::userdb::address::normalize_domain(d)
            .map_err(|e| CtlError::new(exit::USAGE, format!("--domain {d}: {e}")))?;
        if db.domain(&name).map_err(db_err)?.is_none() {
            return Err(CtlError::new(exit::NOUSER, format!("no domain {name}")));
        }
        return db.users(Some(&name)).map_err(db_err);
    }
    let Some(path) = &a.users else {
        return Err(CtlError::new(exit::USAGE, "--all, --domain or --users"));
    };
    let text = std::fs::read_to_string(path)
        .map_err(|e| CtlError::new(exit::from_io(&e), format!("{}: {e}", path.display())))?;
    let mut users = Vec::new();
    let mut seen = HashSet::new();
    let mut unknown = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let addr = parse(line).map_err(|e| {
            CtlError::new(
                exit::DATAERR,
                format!("{}:{}: {}", path.display(), i + 1, e.message),
            )
        })?;
        match db.user(&addr).map_err(db_err)? {
            Some(u) => {
                if seen.insert(u.address.clone()) {
                    users.push(u);
                }
            }
            None => unknown.push(format!("{}:{}: {line}", path.display(), i + 1)),
        }
    }
    if !unknown.is_empty() {
        return Err(CtlError::new(
            exit::NOUSER,
            format!(
                "{} not a user; nothing was sent:\n  {}",
                count(unknown.len() as u64, "address is", "addresses are"),
                unknown.join("\n  ")
            ),
        ));
    }
    Ok(users)
}

/// `privileges.local`'s ids when we are root (what we make in mailboxes is
/// given to it), else None.
fn owner(name: &str) -> Result<Option<Owner>, CtlError> {
    if !nix::unistd::geteuid().is_root() || name.is_empty() {
        return Ok(None);
    }
    match nix::unistd::User::from_name(name) {
        Ok(Some(u)) => Ok(Some(Owner {
            uid: u.uid.as_raw(),
            gid: u.gid.as_raw(),
        })),
        _ => Err(CtlError::new(
            exit::NOUSER,
            format!("privileges.local: no Unix user {name}"),
        )),
    }
}
