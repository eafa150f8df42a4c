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

// Parsed once per run: the size of `set`'s options costs nothing.
#[allow(clippy::large_enum_variant)]
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
    /// Show one domain, with its limits, usage and postmasters.
    Show { domain: String },
    /// Spam thresholds and connection checks for the domain's users (a
    /// user's own settings win). Without options, shows them.
    Spam {
        domain: String,
        #[command(flatten)]
        spam: super::spam::SpamArgs,
    },
    /// Set a domain's default quotas and limits (`none` removes a limit).
    Set(SetArgs),
    /// The domain's postmasters: add, del, list.
    Admin {
        #[command(subcommand)]
        verb: AdminVerb,
    },
}

/// `kmpctl domain set DOMAIN --max-users N ...`.
#[derive(Debug, ClapArgs)]
pub struct SetArgs {
    pub domain: String,
    /// The quota new users get (bytes, or 512K, 10M, 1G; 0 for none).
    #[arg(long, value_name = "SIZE")]
    pub quota: Option<String>,
    /// The message-count quota new users get (0 for none).
    #[arg(long, value_name = "N")]
    pub quota_messages: Option<u64>,
    /// The most users the domain may have (or none).
    #[arg(long, value_name = "N|none")]
    pub max_users: Option<String>,
    /// The most aliases (catch-all included).
    #[arg(long, value_name = "N|none")]
    pub max_aliases: Option<String>,
    /// The most mailing lists.
    #[arg(long, value_name = "N|none")]
    pub max_lists: Option<String>,
    /// The most users who forward their mail.
    #[arg(long, value_name = "N|none")]
    pub max_forwards: Option<String>,
    /// The sum of the users' quotas.
    #[arg(long, value_name = "SIZE|none")]
    pub max_quota: Option<String>,
    /// The largest quota one user may have.
    #[arg(long, value_name = "SIZE|none")]
    pub max_user_quota: Option<String>,
    /// The largest message the domain's users receive.
    #[arg(long, value_name = "SIZE|none")]
    pub max_message_size: Option<String>,
    /// Whether people may sign up themselves (webmail): off, open, or
    /// approve (the account waits, disabled, for a postmaster).
    #[arg(long, value_name = "off|open|approve")]
    pub signup: Option<String>,
    /// The most fetch accounts of all the domain's users together.
    #[arg(long, value_name = "N|none")]
    pub max_fetch_accounts: Option<String>,
    /// The services the domain's users may use, comma-separated, from
    /// pop3, imap, webmail, smtp, fetch, managesieve (or all).
    #[arg(long, value_name = "LIST")]
    pub services: Option<String>,
    /// Whether the domain's users may create mailing lists (yes or no).
    #[arg(long, value_name = "yes|no")]
    pub user_lists: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum AdminVerb {
    /// Make ADDRESS a postmaster of DOMAIN.
    Add { domain: String, address: String },
    /// Take ADDRESS off the postmasters of DOMAIN.
    #[command(visible_alias = "delete")]
    Del { domain: String, address: String },
    /// List the postmasters of DOMAIN.
    List { domain: String },
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
                spam: Default::default(),
                admins: Vec::new(),
                limits: Default::default(),
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
        Verb::Spam { domain, spam } => {
            let name = normalize_domain(&domain).map_err(|e| db_err(e.into()))?;
            let mut probe = crate::ipc::authd::SpamPrefs::default();
            super::spam::apply(&spam, &mut probe)?;
            let (_, db) = open(ctx, false)?;
            let d = db
                .update_domain(&name, |d| {
                    super::spam::apply(&spam, &mut d.spam)
                        .map_err(|_| crate::userdb::DbError::Io("bad spam settings".into()))
                })
                .map_err(db_err)?;
            super::spam::show(ctx, &d.name, &d.spam)
        }
        Verb::Show { domain } => {
            let (_, db) = open(ctx, false)?;
            let v = crate::admin::domain_view(&db, &domain).map_err(db_err)?;
            print_value(
                ctx.json,
                &serde_json::to_value(&v).unwrap_or_default(),
                &show_text(&v),
            );
            Ok(())
        }
        Verb::Set(a) => {
            let patch = patch_of(&a)?;
            let (_, db) = open(ctx, false)?;
            let d = crate::admin::domain_set(&db, &a.domain, &patch).map_err(db_err)?;
            let v = crate::admin::domain_view(&db, &d.name).map_err(db_err)?;
            print_value(
                ctx.json,
                &serde_json::to_value(&v).unwrap_or_default(),
                &format!("set domain {}\n", d.name),
            );
            Ok(())
        }
        Verb::Admin { verb } => admin(ctx, verb),
    }
}

/// `kmpctl domain admin add|del|list`.
fn admin(ctx: &Ctx, verb: AdminVerb) -> CtlResult {
    let (_, db) = open(ctx, false)?;
    let (d, text) = match verb {
        AdminVerb::Add { domain, address } => {
            let a = parse(&address)?;
            let d = crate::admin::admin_add(&db, &domain, &a).map_err(db_err)?;
            let t = format!("{a} is a postmaster of {}\n", d.name);
            (d, t)
        }
        AdminVerb::Del { domain, address } => {
            let a = parse(&address)?;
            let d = crate::admin::admin_del(&db, &domain, &a).map_err(db_err)?;
            let t = format!("{a} is no longer a postmaster of {}\n", d.name);
            (d, t)
        }
        AdminVerb::List { domain } => {
            let name = normalize_domain(&domain).map_err(|e| db_err(e.into()))?;
            let d = db
                .domain(&name)
                .map_err(db_err)?
                .ok_or_else(|| CtlError::new(exit::NOUSER, format!("no domain {name}")))?;
            let t = d.admins.iter().map(|a| format!("{a}\n")).collect();
            (d, t)
        }
    };
    print_value(
        ctx.json,
        &json!({"domain": d.name, "admins": d.admins}),
        &text,
    );
    Ok(())
}

/// The text of `kmpctl domain show`.
pub fn show_text(v: &crate::admin::DomainView) -> String {
    use crate::admin::limit_text;
    let l = &v.limits;
    let used = |n: u64, max: Option<u64>| match max {
        Some(m) => format!("{n} of {m}"),
        None => n.to_string(),
    };
    format!(
        "domain:          {}\nunicode:         {}\nusers:           {}\naliases:         {}\nuser quota:      {}\nuser messages:   {}\ncreated:         {}\npostmasters:     {}\nforwarding:      {}\nlists:           {}\nquota given:     {} of {}\nmax user quota:  {}\nmax message:     {}\nservices:        {}\nfetch accounts:  {}\nsign-up:         {}\n",
        v.domain,
        v.unicode,
        used(v.users, l.max_users),
        used(v.aliases, l.max_aliases),
        size_text(v.quota_bytes),
        match v.quota_messages {
            0 => "none".to_string(),
            n => n.to_string(),
        },
        v.created,
        if v.admins.is_empty() { "none".into() } else { v.admins.join(", ") },
        used(v.usage.forwards, l.max_forwards),
        used(v.usage.lists, l.max_lists),
        match v.usage.quota_bytes {
            0 => "0".to_string(),
            n => size_text(n),
        },
        limit_text(l.max_quota_bytes, true),
        limit_text(l.max_user_quota_bytes, true),
        limit_text(l.max_message_bytes, true),
        v.services.join(", "),
        limit_text(l.max_fetch_accounts, false),
        l.signup.name(),
    ) + if l.user_lists {
        "user lists:      yes (users may create lists)\n"
    } else {
        ""
    }
}

/// The change `domain set` asks for.
pub(crate) fn patch_of(a: &SetArgs) -> Result<crate::admin::DomainPatch, CtlError> {
    let usage = |e: String| CtlError::new(exit::USAGE, e);
    let count = |s: &Option<String>, flag: &str| -> Result<Option<Option<u64>>, CtlError> {
        s.as_deref()
            .map(|v| match v {
                "none" | "unlimited" => Ok(None),
                n => n
                    .parse::<u64>()
                    .map(Some)
                    .map_err(|_| usage(format!("--{flag} {n:?} is not a number or none"))),
            })
            .transpose()
    };
    let size = |s: &Option<String>, flag: &str| -> Result<Option<Option<u64>>, CtlError> {
        s.as_deref()
            .map(|v| match v {
                "none" | "unlimited" => Ok(None),
                n => parse_size(n)
                    .map(Some)
                    .map_err(|e| usage(format!("--{flag}: {e}"))),
            })
            .transpose()
    };
    let services = match a.services.as_deref() {
        None => None,
        Some("all") => Some(crate::userdb::limits::Access::ALL.to_vec()),
        Some("") | Some("none") => Some(Vec::new()),
        Some(list) => Some(
            list.split(',')
                .map(crate::userdb::limits::Access::parse)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| usage(e.to_string()))?,
        ),
    };
    Ok(crate::admin::DomainPatch {
        quota_bytes: a
            .quota
            .as_deref()
            .map(parse_size)
            .transpose()
            .map_err(usage)?,
        quota_messages: a.quota_messages,
        max_users: count(&a.max_users, "max-users")?,
        max_aliases: count(&a.max_aliases, "max-aliases")?,
        max_lists: count(&a.max_lists, "max-lists")?,
        max_forwards: count(&a.max_forwards, "max-forwards")?,
        max_quota_bytes: size(&a.max_quota, "max-quota")?,
        max_user_quota_bytes: size(&a.max_user_quota, "max-user-quota")?,
        max_message_bytes: size(&a.max_message_size, "max-message-size")?,
        max_fetch_accounts: count(&a.max_fetch_accounts, "max-fetch-accounts")?,
        signup: a
            .signup
            .as_deref()
            .map(crate::userdb::limits::Signup::parse)
            .transpose()
            .map_err(|e| usage(e.to_string()))?,
        services,
        user_lists: match a.user_lists.as_deref() {
            None => None,
            Some("yes" | "on" | "true") => Some(true),
            Some("no" | "off" | "false") => Some(false),
            Some(v) => return Err(usage(format!("--user-lists {v:?} is not yes or no"))),
        },
    })
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
