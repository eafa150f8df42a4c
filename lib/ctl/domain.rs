//! `kmpctl domain add|del|list|show`: the domains we receive mail for.

use clap::{Args as ClapArgs, Subcommand};
use serde_json::json;

use super::db::{db_err, iso_time, open, size_text};
use super::output::{print_value, Table};
use super::{CtlError, CtlResult, Ctx};
use crate::config::parse_size;
use crate::exit;
use crate::userdb::address::{domain_unicode, normalize_domain};
use crate::userdb::{Directory, Domain};

#[derive(Debug, ClapArgs)]
pub struct Args {
    #[command(subcommand)]
    pub verb: Verb,
}

#[derive(Debug, Subcommand)]
pub enum Verb {
    /// Add a domain (an IDN is stored in its xn-- form).
    Add {
        domain: String,
        /// The quota new users of the domain get (bytes, or 512K, 10M, 1G).
        #[arg(long, value_name = "SIZE")]
        quota: Option<String>,
        /// The message-count quota new users of the domain get.
        #[arg(long, value_name = "N")]
        quota_messages: Option<u64>,
    },
    /// Delete a domain; refused while it has users or aliases unless --force.
    Del {
        domain: String,
        /// Delete its users and aliases too (their Maildirs stay on disk).
        #[arg(long)]
        force: bool,
    },
    /// List the domains with their user and alias counts.
    List,
    /// Show one domain.
    Show { domain: String },
}

pub fn run(ctx: &Ctx, a: Args) -> CtlResult {
    match a.verb {
        Verb::Add {
            domain,
            quota,
            quota_messages,
        } => {
            let name = normalize_domain(&domain).map_err(|e| db_err(e.into()))?;
            let quota_bytes = match quota {
                Some(q) => parse_size(&q).map_err(|e| CtlError::new(exit::USAGE, e))?,
                None => 0,
            };
            let (_, db) = open(ctx, true)?;
            let d = Domain {
                name: name.clone(),
                created: crate::userdb::now(),
                quota_bytes,
                quota_messages: quota_messages.unwrap_or(0),
            };
            db.add_domain(&d).map_err(db_err)?;
            print_value(
                ctx.json,
                &json!({"added": {"domain": name}}),
                &format!("added domain {name}\n"),
            );
            Ok(())
        }
        Verb::Del { domain, force } => {
            let (_, db) = open(ctx, false)?;
            let r = db.del_domain(&domain, force).map_err(db_err)?;
            let name = normalize_domain(&domain).map_err(|e| db_err(e.into()))?;
            print_value(
                ctx.json,
                &json!({"deleted": {"domain": name, "users": r.users, "aliases": r.aliases}}),
                &format!(
                    "deleted domain {name} ({} users, {} aliases)\n",
                    r.users, r.aliases
                ),
            );
            Ok(())
        }
        Verb::List => {
            let (_, db) = open(ctx, false)?;
            let mut t = Table::new(&["domain", "unicode", "users", "aliases", "created"]);
            for d in db.domains().map_err(db_err)? {
                let c = db.domain_counts(&d.name).map_err(db_err)?;
                t.push(vec![
                    d.name.clone(),
                    domain_unicode(&d.name),
                    c.users.to_string(),
                    c.aliases.to_string(),
                    iso_time(d.created),
                ]);
            }
            t.print(ctx.json);
            Ok(())
        }
        Verb::Show { domain } => {
            let name = normalize_domain(&domain).map_err(|e| db_err(e.into()))?;
            let (_, db) = open(ctx, false)?;
            let d = db
                .domain(&name)
                .map_err(db_err)?
                .ok_or_else(|| CtlError::new(exit::NOUSER, format!("no domain {name}")))?;
            let c = db.domain_counts(&name).map_err(db_err)?;
            let v = json!({
                "domain": d.name,
                "unicode": domain_unicode(&d.name),
                "users": c.users,
                "aliases": c.aliases,
                "quota_bytes": d.quota_bytes,
                "quota_messages": d.quota_messages,
                "created": iso_time(d.created),
            });
            let text = format!(
                "domain:          {}\nunicode:         {}\nusers:           {}\naliases:         {}\nuser quota:      {}\nuser messages:   {}\ncreated:         {}\n",
                d.name,
                domain_unicode(&d.name),
                c.users,
                c.aliases,
                size_text(d.quota_bytes),
                match d.quota_messages {
                    0 => "none".to_string(),
                    n => n.to_string(),
                },
                iso_time(d.created)
            );
            print_value(ctx.json, &v, &text);
            Ok(())
        }
    }
}
