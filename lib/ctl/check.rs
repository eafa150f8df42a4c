//! `kmpctl check`: validate the configuration (as `postfix check` and
//! `nginx -t` do) and print every problem with its file and line.

use super::{CtlError, CtlResult, Ctx};
use crate::config::{Config, LoadError};
use crate::paths::Paths;
use crate::userdb::lmdb::Lmdb;
use crate::userdb::{Address, Directory, Resolved};

pub fn run(ctx: &Ctx) -> CtlResult {
    let path = Config::locate(ctx.config_path.as_deref());
    match Config::load(&path) {
        Ok(cfg) if installed_system(&cfg) && !super::setup::problems(&cfg).is_empty() => {
            let problems = super::setup::problems(&cfg);
            if ctx.json {
                println!("{}", serde_json::json!({"file": path, "errors": problems}));
            } else {
                for p in &problems {
                    println!("{p}");
                }
            }
            Err(CtlError::new(
                crate::exit::CONFIG,
                format!(
                    "{} with the wrong owner or mode (kmpctl setup fixes {})",
                    super::output::count(problems.len() as u64, "path", "paths"),
                    if problems.len() == 1 { "it" } else { "them" }
                ),
            ))
        }
        Ok(cfg) => {
            let mut warnings = database_warnings(&cfg);
            warnings.extend(dns_warnings(&cfg));
            warnings.extend(crate::antispam::scan::check_warnings(&cfg));
            if !ctx.json {
                println!("{}: configuration is valid", path.display());
                for w in &warnings {
                    println!("warning: {w}");
                }
            } else {
                println!(
                    "{}",
                    serde_json::json!({"file": path, "errors": [], "warnings": warnings})
                );
            }
            Ok(())
        }
        Err(LoadError::Invalid(errs)) => {
            if ctx.json {
                let list: Vec<_> = errs
                    .iter()
                    .map(|e| serde_json::json!({"file": e.file, "line": e.line, "key": e.key, "message": e.message}))
                    .collect();
                println!("{}", serde_json::json!({"file": path, "errors": list}));
            } else {
                for e in &errs {
                    println!("{e}");
                }
            }
            Err(CtlError::new(
                crate::exit::CONFIG,
                format!(
                    "{}: {}",
                    path.display(),
                    super::output::count(errs.len() as u64, "error", "errors")
                ),
            ))
        }
        Err(e) => Err(CtlError::new(e.exit_code(), e.to_string())),
    }
}

/// What is wrong in the user database though each record is valid: a domain
/// without postmaster@ (RFC 5321 4.5.1), and alias targets or forwards that
/// name an address of a local domain that does not exist (its mail would
/// bounce). No database yet is no warning.
fn database_warnings(cfg: &Config) -> Vec<String> {
    let paths = Paths::new(cfg);
    let db = match Lmdb::open(&paths.db) {
        Ok(db) => db,
        Err(crate::userdb::DbError::Missing(_)) => return Vec::new(),
        Err(e) => return vec![e.to_string()],
    };
    let mut out = Vec::new();
    let r = (|| -> Result<(), crate::userdb::DbError> {
        for d in db.domains()? {
            let pm = Address::parse(&format!("postmaster@{}", d.name))?;
            if matches!(db.resolve(&pm)?.0, Resolved::NotFound) {
                out.push(format!(
                    "domain {} has no postmaster@{} (RFC 5321 requires one): kmpctl alias add postmaster@{} ADDRESS",
                    d.name, d.name, d.name
                ));
            }
        }
        let dangling = |target: &str| -> Result<bool, crate::userdb::DbError> {
            let Ok(a) = Address::parse(target) else {
                return Ok(false);
            };
            let (r, local) = db.resolve(&a)?;
            Ok(local && matches!(r, Resolved::NotFound))
        };
        for a in db.aliases(None)? {
            for t in &a.targets {
                if dangling(t)? {
                    out.push(format!(
                        "alias {} points at {t}, which does not exist",
                        a.address
                    ));
                }
            }
        }
        for u in db.users(None)? {
            for t in &u.forwards {
                if dangling(t)? {
                    out.push(format!(
                        "user {} forwards to {t}, which does not exist",
                        u.address
                    ));
                }
            }
        }
        Ok(())
    })();
    if let Err(e) = r {
        out.push(e.to_string());
    }
    out
}

/// Local domains without published SPF, DMARC or DKIM records (see
/// `mailauth::publish`); nothing without a database.
fn dns_warnings(cfg: &Config) -> Vec<String> {
    let paths = Paths::new(cfg);
    let Ok(db) = Lmdb::open(&paths.db) else {
        return Vec::new();
    };
    let Ok(domains) = db.domains() else {
        return Vec::new();
    };
    let names: Vec<String> = domains.into_iter().map(|d| d.name).collect();
    let servers = match crate::mailauth::verify::dns_servers(cfg.list("auth.dns_servers")) {
        Ok(s) => s,
        Err(e) => return vec![e],
    };
    crate::mailauth::publish::warnings(&names, &cfg.path_of("auth.dkim_keys"), &servers)
}

/// Whether the configuration is a system installation with privilege separation
/// (then owners and modes matter), not a single-user instance.
fn installed_system(cfg: &Config) -> bool {
    crate::config::KEYS
        .iter()
        .filter(|k| k.name.starts_with("privileges."))
        .any(|k| !cfg.str(k.name).is_empty())
}
