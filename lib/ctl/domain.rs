//! `kmpctl domain add|del|list|show`: the domains we receive mail for.

use clap::{Args as ClapArgs, Subcommand};
use serde_json::json;

use super::db::{db_err, iso_time, open, size_text};
use super::output::{count, print_value, Table};
use super::user::parse;
use super::{CtlError, CtlResult, Ctx};
use crate::config::{parse_size, Config};
use crate::exit;
use crate::userdb::address::{domain_unicode, normalize_domain};
use crate::userdb::{Address, Directory, Domain};

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
        #[arg(long, value_name = "N", alias = "messages")]
        quota_messages: Option<u64>,
        /// Who reads the domain's postmaster@ and abuse@ mail (default: the
        /// system.postmaster address).
        #[arg(long, value_name = "ADDRESS")]
        postmaster: Option<String>,
    },
    /// Delete a domain; refused while it has users or aliases unless --force.
    #[command(visible_alias = "delete")]
    Del {
        domain: String,
        /// Delete its users, their Maildirs and its aliases too; references
        /// to its addresses elsewhere are taken out.
        #[arg(long)]
        force: bool,
        /// With --force: leave the users' Maildirs on disk.
        #[arg(long, requires = "force")]
        keep_mail: bool,
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
            postmaster,
        } => {
            let name = normalize_domain(&domain).map_err(|e| db_err(e.into()))?;
            let quota_bytes = match quota {
                Some(q) => parse_size(&q).map_err(|e| CtlError::new(exit::USAGE, e))?,
                None => 0,
            };
            let admin = match &postmaster {
                Some(a) => {
                    let a = parse(a)?;
                    if a.domain() == name
                        && matches!(a.local_folded().as_str(), "postmaster" | "abuse")
                    {
                        return Err(CtlError::new(
                            exit::DATAERR,
                            format!("--postmaster {a} would point the alias at itself"),
                        ));
                    }
                    Some(a)
                }
                None => system_admin(&ctx.config()?, &name),
            };
            let (_, db) = open(ctx, true)?;
            let d = Domain {
                name: name.clone(),
                created: crate::userdb::now(),
                quota_bytes,
                quota_messages: quota_messages.unwrap_or(0),
            };
            db.add_domain(&d).map_err(db_err)?;
            // RFC 5321 4.5.1: every domain must take mail for postmaster;
            // RFC 2142 adds abuse. Both go to one person.
            let mut text = format!("added domain {name}\n");
            if let Some(admin) = &admin {
                for local in ["postmaster", "abuse"] {
                    let alias = parse(&format!("{local}@{name}"))?;
                    db.add_alias(&alias, std::slice::from_ref(admin))
                        .map_err(db_err)?;
                    text.push_str(&format!("alias {alias} -> {admin}\n"));
                }
            } else {
                eprintln!(
                    "kmpctl: warning: {name} has no postmaster@{name}, which RFC 5321 requires: \
                     give --postmaster ADDRESS, or set system.postmaster to an address, \
                     or run kmpctl alias add postmaster@{name} ADDRESS"
                );
            }
            print_value(
                ctx.json,
                &json!({"added": {"domain": name, "postmaster": admin.as_ref().map(|a| a.to_string())}}),
                &text,
            );
            Ok(())
        }
        Verb::Del {
            domain,
            force,
            keep_mail,
        } => {
            let (paths, db) = open(ctx, false)?;
            let r = db.del_domain(&domain, force).map_err(db_err)?;
            let name = normalize_domain(&domain).map_err(|e| db_err(e.into()))?;
            let mut text = format!(
                "deleted domain {name} ({}, {})\n",
                count(r.users.len() as u64, "user", "users"),
                count(r.aliases as u64, "alias", "aliases")
            );
            for l in &r.lists {
                text.push_str(&format!("deleted list {}\n", l.address));
            }
            let mut failed = Vec::new();
            let mut removed = 0u64;
            if !keep_mail {
                for u in &r.users {
                    let mail = u.maildir(&paths.mail);
                    match super::user::remove_maildir(&mail) {
                        super::user::MailFate::Removed => removed += 1,
                        super::user::MailFate::Failed(e) => {
                            failed.push(format!("{}: {e}", mail.display()))
                        }
                        _ => {}
                    }
                }
                // Its lists' state (members, held posts, archives).
                if !r.lists.is_empty() {
                    let dir = paths.mail.join(&name).join(crate::lists::LISTS_DIR);
                    if let Err(e) = std::fs::remove_dir_all(&dir) {
                        if e.kind() != std::io::ErrorKind::NotFound {
                            failed.push(format!("{}: {e}", dir.display()));
                        }
                    }
                }
                // The domain's own directory, when nothing else is left in it.
                let _ = std::fs::remove_dir(paths.mail.join(&name));
                text.push_str(&format!(
                    "removed {}\n",
                    count(removed, "Maildir", "Maildirs")
                ));
            } else if !r.users.is_empty() {
                text.push_str(&format!(
                    "the users' Maildirs stay under {} (user add --reuse-mail adopts one)\n",
                    paths.mail.join(&name).display()
                ));
            }
            let changes: Vec<String> = r.unlinked.iter().map(|u| u.to_string()).collect();
            for c in &changes {
                text.push_str(&format!("{c}\n"));
            }
            print_value(
                ctx.json,
                &json!({"deleted": {"domain": name, "users": r.users.len(), "aliases": r.aliases,
                    "lists": r.lists.iter().map(|l| l.address.clone()).collect::<Vec<_>>(),
                    "maildirs_removed": removed, "unlinked": changes}}),
                &text,
            );
            if failed.is_empty() {
                Ok(())
            } else {
                Err(CtlError::new(
                    exit::IOERR,
                    format!("some Maildirs could not be removed: {}", failed.join("; ")),
                ))
            }
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

/// The system administrator's address, from `system.postmaster`: the value
/// itself when it is an address, else that local part in
/// `system.default_domain`. None when there is no such address, or when it
/// would be the new domain's own postmaster (an alias to itself).
pub fn system_admin(cfg: &Config, domain: &str) -> Option<Address> {
    let pm = cfg.str("system.postmaster");
    let text = match (pm.contains('@'), cfg.str("system.default_domain")) {
        (true, _) => pm.to_string(),
        (false, "") => return None,
        (false, d) => format!("{pm}@{d}"),
    };
    let a = Address::parse(&text).ok()?;
    let own = a.domain() == domain && matches!(a.local_folded().as_str(), "postmaster" | "abuse");
    (!own).then_some(a)
}
