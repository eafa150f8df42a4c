//! `kmpctl export dovecot`: a user's Maildir made ready for Dovecot, for a
//! move back as quiet as the move in: a `dovecot-uidlist` in every folder
//! with our UIDVALIDITY, UIDs, UIDNEXT and the POP3 UIDLs, the
//! subscriptions in Dovecot 2's format (see [`crate::maildir::migrate`]).
//! Run it with the servers stopped.

use std::path::PathBuf;

use clap::{Args as ClapArgs, Subcommand};
use serde_json::json;

use super::db::{db_err, open};
use super::user::parse;
use super::{CtlError, CtlResult, Ctx};
use crate::exit;
use crate::maildir::{migrate, Maildir};
use crate::userdb::Directory;

#[derive(Debug, ClapArgs)]
pub struct Args {
    #[command(subcommand)]
    pub verb: Verb,
}

#[derive(Debug, Subcommand)]
pub enum Verb {
    /// Write dovecot-uidlist files and Dovecot's subscriptions into users' Maildirs.
    Dovecot {
        /// Users whose Maildirs to export.
        users: Vec<String>,
        /// A Maildir to export, by path (repeatable).
        #[arg(long, value_name = "PATH")]
        maildir: Vec<PathBuf>,
    },
}

pub fn run(ctx: &Ctx, a: Args) -> CtlResult {
    let Verb::Dovecot { users, maildir } = a.verb;
    let mut dirs = maildir;
    if !users.is_empty() {
        let (paths, db) = open(ctx, false)?;
        for u in &users {
            let addr = parse(u)?;
            let user = db
                .user(&addr)
                .map_err(db_err)?
                .ok_or_else(|| CtlError::new(exit::NOUSER, format!("no user {addr}")))?;
            dirs.push(user.maildir(&paths.mail));
        }
    }
    if dirs.is_empty() {
        return Err(CtlError::new(exit::USAGE, "give users or --maildir PATH"));
    }
    let mut done = Vec::new();
    for d in &dirs {
        if !d.join("cur").is_dir() {
            return Err(CtlError::new(
                exit::NOINPUT,
                format!("{}: not a Maildir", d.display()),
            ));
        }
        let r = migrate::export_dovecot(&Maildir::new(d)).map_err(|e| {
            CtlError::new(
                if e.is_temporary() {
                    exit::TEMPFAIL
                } else {
                    exit::IOERR
                },
                format!("{}: {e}", d.display()),
            )
        })?;
        if !ctx.json {
            println!(
                "{}: {} folders, {} messages",
                d.display(),
                r.folders.len(),
                r.messages
            );
        }
        done.push(json!({"maildir": d, "folders": r.folders, "messages": r.messages}));
    }
    if ctx.json {
        println!("{}", json!(done));
    }
    Ok(())
}
