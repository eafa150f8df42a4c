//! `kmpctl check`: validate the configuration (as `postfix check` and
//! `nginx -t` do) and print every problem with its file and line.

use super::{CtlError, CtlResult, Ctx};
use crate::config::{Config, LoadError};

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
                    "{} path(s) with the wrong owner or mode (kmpctl setup fixes them)",
                    problems.len()
                ),
            ))
        }
        Ok(_) => {
            if !ctx.json {
                println!("{}: configuration is valid", path.display());
            } else {
                println!("{}", serde_json::json!({"file": path, "errors": []}));
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
                format!("{}: {} error(s)", path.display(), errs.len()),
            ))
        }
        Err(e) => Err(CtlError::new(e.exit_code(), e.to_string())),
    }
}

/// Whether the configuration is a system installation with privilege separation
/// (then owners and modes matter), not a single-user instance.
fn installed_system(cfg: &Config) -> bool {
    crate::config::KEYS
        .iter()
        .filter(|k| k.name.starts_with("privileges."))
        .any(|k| !cfg.str(k.name).is_empty())
}
