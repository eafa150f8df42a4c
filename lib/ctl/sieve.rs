//! `kmpctl sieve list|show|put|activate|deactivate|check|delete`: a user's
//! Sieve scripts, for the administrator. The same store, names, quotas and
//! compiler as kmp-sieved (`crate::sievestore`, `crate::sieve`), so what an
//! administrator puts a user could have put over ManageSieve. Run as root,
//! new files are given to the owner of the user's Maildir.

use std::io::Read;
use std::path::{Path, PathBuf};

use clap::{Args as ClapArgs, Subcommand};
use serde_json::json;

use super::db::{db_err, open, size_text};
use super::output::{print_value, Table};
use super::user::parse;
use super::{CtlError, CtlResult, Ctx};
use crate::exit;
use crate::sieve::Extensions;
use crate::sievestore::{Limits, Store, StoreError};
use crate::userdb::Directory;

#[derive(Debug, ClapArgs)]
pub struct Args {
    #[command(subcommand)]
    pub verb: Verb,
}

#[derive(Debug, Subcommand)]
pub enum Verb {
    /// List a user's scripts, the active one marked.
    List { user: String },
    /// Print a script.
    Show { user: String, name: String },
    /// Store a script from FILE (or standard input); it must compile.
    Put {
        user: String,
        name: String,
        file: Option<PathBuf>,
        /// Make it the active script too.
        #[arg(long)]
        activate: bool,
    },
    /// Make a script the active one.
    Activate { user: String, name: String },
    /// Make no script active.
    Deactivate { user: String },
    /// Compile a user's script, or a FILE with --file; print the error's
    /// line and column. Exit 65 when it does not compile.
    Check {
        user: Option<String>,
        name: Option<String>,
        /// A script file to check instead of a stored one.
        #[arg(long, value_name = "FILE", conflicts_with_all = ["user", "name"])]
        file: Option<PathBuf>,
    },
    /// Delete a script (not the active one).
    #[command(visible_alias = "del")]
    Delete { user: String, name: String },
}

pub fn run(ctx: &Ctx, a: Args) -> CtlResult {
    match a.verb {
        Verb::List { user } => {
            let (store, address) = store(ctx, &user, false)?;
            let list = store.list().map_err(|e| store_err(&address, e))?;
            let mut t = Table::new(&["name", "size", "active"]);
            for s in list {
                t.push(vec![
                    s.name,
                    size_text(s.size),
                    if s.active { "yes" } else { "no" }.into(),
                ]);
            }
            t.print(ctx.json);
            Ok(())
        }
        Verb::Show { user, name } => {
            let (store, address) = store(ctx, &user, false)?;
            let text = store.get(&name).map_err(|e| store_err(&address, e))?;
            use std::io::Write;
            let mut out = std::io::stdout();
            out.write_all(&text)
                .and_then(|()| out.flush())
                .map_err(|e| CtlError::new(exit::IOERR, format!("standard output: {e}")))
        }
        Verb::Put {
            user,
            name,
            file,
            activate,
        } => {
            let text = read_script(file.as_deref())?;
            crate::sievestore::check_name(&name).map_err(|e| store_err(&user, e))?;
            compile(&text, file.as_deref().unwrap_or(Path::new("-")))?;
            let (store, address) = store(ctx, &user, true)?;
            store
                .put(&name, &text)
                .map_err(|e| store_err(&address, e))?;
            if activate {
                store
                    .set_active(Some(&name))
                    .map_err(|e| store_err(&address, e))?;
            }
            print_value(
                ctx.json,
                &json!({"stored": {"user": address, "name": name, "size": text.len(), "active": activate}}),
                &format!(
                    "stored script {name} for {address} ({} bytes{})\n",
                    text.len(),
                    if activate { ", active" } else { "" }
                ),
            );
            Ok(())
        }
        Verb::Activate { user, name } => {
            let (store, address) = store(ctx, &user, false)?;
            store
                .set_active(Some(&name))
                .map_err(|e| store_err(&address, e))?;
            print_value(
                ctx.json,
                &json!({"active": {"user": address, "name": name}}),
                &format!("script {name} is active for {address}\n"),
            );
            Ok(())
        }
        Verb::Deactivate { user } => {
            let (store, address) = store(ctx, &user, false)?;
            store.set_active(None).map_err(|e| store_err(&address, e))?;
            print_value(
                ctx.json,
                &json!({"active": {"user": address, "name": null}}),
                &format!("no script is active for {address}\n"),
            );
            Ok(())
        }
        Verb::Check { user, name, file } => {
            let (text, what) = match (file, user, name) {
                (Some(f), _, _) => (read_script(Some(&f))?, f),
                (None, Some(u), Some(n)) => {
                    let (store, address) = store(ctx, &u, false)?;
                    let t = store.get(&n).map_err(|e| store_err(&address, e))?;
                    (t, PathBuf::from(format!("{address}:{n}")))
                }
                _ => {
                    return Err(CtlError::new(
                        exit::USAGE,
                        "name a USER and a script NAME, or --file FILE",
                    ))
                }
            };
            compile(&text, &what)?;
            print_value(
                ctx.json,
                &json!({"check": {"script": what, "ok": true}}),
                &format!("{}: ok\n", what.display()),
            );
            Ok(())
        }
        Verb::Delete { user, name } => {
            let (store, address) = store(ctx, &user, false)?;
            store.delete(&name).map_err(|e| store_err(&address, e))?;
            print_value(
                ctx.json,
                &json!({"deleted": {"user": address, "name": name}}),
                &format!("deleted script {name} of {address}\n"),
            );
            Ok(())
        }
    }
}

/// The store of `user`, and its canonical address. With `create`, a
/// Maildir that does not exist yet is made (as kmp-local would at the
/// first delivery) and, under root, given to `privileges.local`.
fn store(ctx: &Ctx, user: &str, create: bool) -> Result<(Store, String), CtlError> {
    let cfg = ctx.config()?;
    let addr = parse(user)?;
    let (paths, db) = open(ctx, false)?;
    let u = db
        .user(&addr)
        .map_err(db_err)?
        .ok_or_else(|| CtlError::new(exit::NOUSER, format!("no user {addr}")))?;
    let home = u.maildir(&paths.mail);
    if create && !home.exists() {
        make_home(&home, cfg.str("privileges.local"))?;
    }
    let store = Store::new(&home, Limits::from_config(&cfg)).owned_like_home();
    Ok((store, u.address))
}

/// Creates a Maildir, giving what was made to `owner` when we are root.
fn make_home(home: &Path, owner: &str) -> Result<(), CtlError> {
    let mut made: Vec<PathBuf> = Vec::new();
    let mut p = Some(home);
    while let Some(d) = p {
        if d.exists() {
            break;
        }
        made.push(d.to_path_buf());
        p = d.parent();
    }
    crate::maildir::Maildir::create(home)
        .map_err(|e| CtlError::new(exit::CANTCREAT, format!("{}: {e}", home.display())))?;
    if !nix::unistd::geteuid().is_root() || owner.is_empty() {
        return Ok(());
    }
    let Ok(Some(u)) = nix::unistd::User::from_name(owner) else {
        return Err(CtlError::new(
            exit::NOUSER,
            format!("privileges.local: no Unix user {owner}"),
        ));
    };
    for sub in ["cur", "new", "tmp"] {
        made.push(home.join(sub));
    }
    for d in made {
        std::os::unix::fs::chown(&d, Some(u.uid.as_raw()), Some(u.gid.as_raw()))
            .map_err(|e| CtlError::new(exit::OSERR, format!("{}: chown: {e}", d.display())))?;
    }
    Ok(())
}

/// The script in `file`, or on standard input for None or `-`.
fn read_script(file: Option<&Path>) -> Result<Vec<u8>, CtlError> {
    match file {
        Some(f) if f != Path::new("-") => std::fs::read(f)
            .map_err(|e| CtlError::new(exit::from_io(&e), format!("{}: {e}", f.display()))),
        _ => {
            let mut b = Vec::new();
            std::io::stdin()
                .read_to_end(&mut b)
                .map_err(|e| CtlError::new(exit::IOERR, format!("standard input: {e}")))?;
            Ok(b)
        }
    }
}

/// Compiles a script; the error names the script, line and column.
fn compile(text: &[u8], what: &Path) -> CtlResult {
    let src = std::str::from_utf8(text).map_err(|_| {
        CtlError::new(
            exit::DATAERR,
            format!("{}: the script is not UTF-8", what.display()),
        )
    })?;
    crate::sievestore::check_script(src, &Extensions::all())
        .map(|_| ())
        .map_err(|e| CtlError::new(exit::DATAERR, format!("{}: {e}", what.display())))
}

/// A store refusal as kmpctl reports it.
fn store_err(user: &str, e: StoreError) -> CtlError {
    let code = match &e {
        StoreError::BadName(_) => exit::USAGE,
        StoreError::NotFound => exit::NOINPUT,
        StoreError::Exists | StoreError::Active => exit::DATAERR,
        StoreError::TooMany | StoreError::TooLarge | StoreError::OverQuota => exit::CANTCREAT,
        StoreError::Io(io) => exit::from_io(io),
    };
    CtlError::new(code, format!("{user}: {e}"))
}
