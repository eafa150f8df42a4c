//! `kmpctl db dump|load`: the whole user database as text (the format is in
//! [`crate::userdb::dump`] and kmpctl(8)), and the helpers every user-database
//! noun shares: opening the database, mapping its errors, dates.

use std::fs::File;
use std::io::{BufReader, IsTerminal, Write};
use std::path::PathBuf;
use std::time::Instant;

use clap::{Args as ClapArgs, Subcommand};

use super::output::count;
use super::{CtlError, CtlResult, Ctx};
use crate::exit;
use crate::paths::Paths;
use crate::userdb::dump::{self, Counts};
use crate::userdb::lmdb::Lmdb;
use crate::userdb::DbError;

#[derive(Debug, ClapArgs)]
pub struct Args {
    #[command(subcommand)]
    pub verb: Verb,
}

#[derive(Debug, Subcommand)]
pub enum Verb {
    /// Write every domain, user, alias, list and fetch account as text,
    /// one record per line (fetch passwords stay sealed).
    Dump {
        /// Write to FILE instead of standard output.
        file: Option<PathBuf>,
    },
    /// Read records written by `db dump` (or an import script), all in one transaction.
    Load {
        /// Read FILE instead of standard input.
        file: Option<PathBuf>,
        /// Empty the database first (in the same transaction).
        #[arg(long)]
        replace: bool,
    },
}

pub fn run(ctx: &Ctx, a: Args) -> CtlResult {
    match a.verb {
        Verb::Dump { file } => {
            let (_, db) = open(ctx, false)?;
            let n = match &file {
                Some(p) => {
                    let tmp = p.with_extension("tmp");
                    let mut f = std::io::BufWriter::with_capacity(
                        1 << 20,
                        File::create(&tmp).map_err(|e| io_err(&tmp, e))?,
                    );
                    let n = dump::dump(&db, &mut f).map_err(db_err)?;
                    f.into_inner()
                        .map_err(|e| io_err(&tmp, e.into_error()))?
                        .sync_all()
                        .map_err(|e| io_err(&tmp, e))?;
                    std::fs::rename(&tmp, p).map_err(|e| io_err(p, e))?;
                    n
                }
                None => {
                    let out = std::io::stdout();
                    let mut w = std::io::BufWriter::with_capacity(1 << 20, out.lock());
                    dump::dump(&db, &mut w).map_err(db_err)?
                }
            };
            if file.is_some() {
                report(ctx, "dumped", &n, None);
            }
            Ok(())
        }
        Verb::Load { file, replace } => {
            let (_, db) = open(ctx, true)?;
            let mut input: Box<dyn std::io::BufRead> = match &file {
                Some(p) => Box::new(BufReader::with_capacity(
                    1 << 20,
                    File::open(p).map_err(|e| io_err(p, e))?,
                )),
                None => Box::new(BufReader::with_capacity(1 << 20, std::io::stdin())),
            };
            let start = Instant::now();
            let tty = std::io::stderr().is_terminal();
            let mut progress = |n: &Counts| {
                if tty && n.users >= 10_000 {
                    let rate = n.users as f64 / start.elapsed().as_secs_f64().max(1e-6);
                    eprint!("\r{} users ({:.0}/s)", n.users, rate);
                    let _ = std::io::stderr().flush();
                }
            };
            let r = dump::load(&db, &mut input, replace, &mut progress);
            if tty {
                eprint!("\r\x1b[K");
            }
            let n = r.map_err(|e| CtlError::new(e.error.exit_code(), e.to_string()))?;
            report(ctx, "loaded", &n, Some(start.elapsed().as_secs_f64()));
            Ok(())
        }
    }
}

fn report(ctx: &Ctx, what: &str, n: &Counts, secs: Option<f64>) {
    let rate = secs.map(|s| (n.users as f64 / s.max(1e-6)).round());
    let v = serde_json::json!({
        what: {"domains": n.domains, "users": n.users, "aliases": n.aliases, "lists": n.lists,
            "fetch_accounts": n.fetch},
        "seconds": secs,
        "users_per_second": rate,
    });
    let mut counts = format!(
        "{}, {}, {}",
        count(n.domains, "domain", "domains"),
        count(n.users, "user", "users"),
        count(n.aliases, "alias", "aliases")
    );
    if n.lists > 0 {
        counts += &format!(", {}", count(n.lists, "list", "lists"));
    }
    if n.fetch > 0 {
        counts += &format!(", {}", count(n.fetch, "fetch account", "fetch accounts"));
    }
    let text = match rate {
        Some(r) => format!(
            "{what} {counts} in {:.2}s ({r:.0} users/s)\n",
            secs.unwrap_or(0.0)
        ),
        None => format!("{what} {counts}\n"),
    };
    if ctx.json {
        println!("{v}");
    } else {
        eprint!("{text}");
    }
}

/// Opens the user database the configuration names (creating it when
/// `create`, for verbs that add things).
pub fn open(ctx: &Ctx, create: bool) -> Result<(Paths, Lmdb), CtlError> {
    let cfg = ctx.config()?;
    let paths = Paths::new(&cfg);
    let db = if create {
        Lmdb::create(&paths.db)
    } else {
        Lmdb::open(&paths.db)
    }
    .map_err(db_err)?;
    Ok((paths, db))
}

/// A database error as kmpctl reports it.
pub fn db_err(e: DbError) -> CtlError {
    CtlError::new(e.exit_code(), e.to_string())
}

fn io_err(p: &std::path::Path, e: std::io::Error) -> CtlError {
    CtlError::new(exit::from_io(&e), format!("{}: {e}", p.display()))
}

/// Seconds since the epoch as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn iso_time(secs: u64) -> String {
    let days = (secs / 86400) as i64;
    let rem = secs % 86400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// A quota for people: `none`, or bytes with a unit.
pub fn size_text(n: u64) -> String {
    match n {
        0 => "none".into(),
        n if n % (1 << 30) == 0 => format!("{}G", n >> 30),
        n if n % (1 << 20) == 0 => format!("{}M", n >> 20),
        n if n % (1 << 10) == 0 => format!("{}K", n >> 10),
        n => n.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_sizes_print_as_people_read_them() {
        assert_eq!(iso_time(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso_time(1_764_288_000), "2025-11-28T00:00:00Z");
        assert_eq!(iso_time(951_782_400 + 3661), "2000-02-29T01:01:01Z");
        assert_eq!(size_text(0), "none");
        assert_eq!(size_text(10 << 20), "10M");
        assert_eq!(size_text(1500), "1500");
    }
}
