//! `kmpctl alias add|del|list`: other names for mailboxes. `@domain` is the
//! domain's catch-all: mail to any address of the domain that is no user and
//! no other alias goes to its targets.

use clap::{Args as ClapArgs, Subcommand};
use serde_json::json;

use super::db::{db_err, open};
use super::output::{print_value, Table};
use super::user::parse;
use super::{CtlError, CtlResult, Ctx};
use crate::exit;
use crate::userdb::Address;

#[derive(Debug, ClapArgs)]
pub struct Args {
    #[command(subcommand)]
    pub verb: Verb,
}

#[derive(Debug, Subcommand)]
pub enum Verb {
    /// Add an alias, or more targets to an existing one.
    Add {
        /// The alias: an address, or @domain for the catch-all.
        alias: String,
        /// Where its mail goes (addresses, local or not).
        #[arg(required = true)]
        targets: Vec<String>,
    },
    /// Delete an alias, or only some of its targets.
    #[command(visible_alias = "delete")]
    Del { alias: String, targets: Vec<String> },
    /// List aliases, all or one domain's.
    List { domain: Option<String> },
}

fn parse_alias(s: &str) -> Result<Address, CtlError> {
    Address::parse_alias(s).map_err(|e| CtlError::new(exit::DATAERR, e.to_string()))
}

pub fn run(ctx: &Ctx, a: Args) -> CtlResult {
    match a.verb {
        Verb::Add { alias, targets } => {
            let name = parse_alias(&alias)?;
            let targets: Vec<Address> =
                targets.iter().map(|t| parse(t)).collect::<Result<_, _>>()?;
            let (_, db) = open(ctx, false)?;
            let a = db.add_alias(&name, &targets).map_err(db_err)?;
            print_value(
                ctx.json,
                &json!({"alias": a.address, "targets": a.targets}),
                &format!("alias {} -> {}\n", a.address, a.targets.join(", ")),
            );
            Ok(())
        }
        Verb::Del { alias, targets } => {
            let name = parse_alias(&alias)?;
            let targets: Vec<Address> =
                targets.iter().map(|t| parse(t)).collect::<Result<_, _>>()?;
            let (_, db) = open(ctx, false)?;
            match db.del_alias(&name, &targets).map_err(db_err)? {
                Some(a) => print_value(
                    ctx.json,
                    &json!({"alias": a.address, "targets": a.targets}),
                    &format!("alias {} -> {}\n", a.address, a.targets.join(", ")),
                ),
                None => print_value(
                    ctx.json,
                    &json!({"deleted": {"alias": alias}}),
                    &format!("deleted alias {alias}\n"),
                ),
            }
            Ok(())
        }
        Verb::List { domain } => {
            let (_, db) = open(ctx, false)?;
            let list = db.aliases(domain.as_deref()).map_err(db_err)?;
            if ctx.json {
                println!("{}", serde_json::to_value(&list).unwrap_or_default());
                return Ok(());
            }
            let mut t = Table::new(&["alias", "targets"]);
            for a in list {
                t.push(vec![a.address, a.targets.join(", ")]);
            }
            t.print(false);
            Ok(())
        }
    }
}
