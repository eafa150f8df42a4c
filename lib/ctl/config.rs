//! `kmpctl config`: the configuration, as `postconf -d` / `postconf -n` show it.

use clap::Args as ClapArgs;

use super::{CtlResult, Ctx};
use crate::config::{annotated, Config};

#[derive(Debug, ClapArgs)]
pub struct Args {
    /// Every key at its default, whatever the file says.
    #[arg(long, conflicts_with_all = ["changed", "annotated"])]
    pub defaults: bool,
    /// Only the keys the file sets.
    #[arg(long, conflicts_with = "annotated")]
    pub changed: bool,
    /// The annotated sample configuration (etc/kmpromail.toml).
    #[arg(long)]
    pub annotated: bool,
}

pub fn run(ctx: &Ctx, a: Args) -> CtlResult {
    if a.annotated {
        print!("{}", annotated());
        return Ok(());
    }
    let cfg = if a.defaults {
        Config::defaults()
    } else {
        ctx.config()?
    };
    if ctx.json {
        let mut m = serde_json::Map::new();
        let keys: Vec<_> = if a.changed {
            cfg.changed().collect()
        } else {
            crate::config::KEYS.iter().collect()
        };
        for k in keys {
            let v = match cfg.value(k.name) {
                crate::config::Value::Str(s) => serde_json::json!(s),
                crate::config::Value::Bool(b) => serde_json::json!(b),
                crate::config::Value::Int(n) => serde_json::json!(n),
                crate::config::Value::Duration(d) => serde_json::json!(d.as_secs()),
                crate::config::Value::List(l) => serde_json::json!(l),
                crate::config::Value::Map(m) => serde_json::json!(m),
            };
            m.insert(k.name.to_string(), v);
        }
        println!("{}", serde_json::Value::Object(m));
    } else {
        print!("{}", cfg.to_toml(!a.changed));
    }
    Ok(())
}
