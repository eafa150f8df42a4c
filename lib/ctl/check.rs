//! `kmpctl check`: validate the configuration (as `postfix check` and
//! `nginx -t` do) and print every problem with its file and line.

use super::{CtlError, CtlResult, Ctx};
use crate::config::{Config, LoadError};

pub fn run(ctx: &Ctx) -> CtlResult {
    let path = Config::locate(ctx.config_path.as_deref());
    match Config::load(&path) {
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
