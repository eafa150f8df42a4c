//! `kmpctl list add|del|list|show|set|members|subscribe|unsubscribe|mods|
//! held|approve|reject|digest`: mailing lists.
//!
//! The list's record is in the user database (this module writes it
//! through `userdb::lmdb`); its members and held posts are in the list's
//! own directory (`crate::lists::store`, `crate::lists::held`), created here
//! when needed and given to the owner of the mail root (vmail).

use clap::{Args as ClapArgs, Subcommand};
use serde_json::json;

use super::db::{db_err, iso_time, open, size_text};
use super::output::{count, print_value, Table};
use super::user::parse;
use super::{CtlError, CtlResult, Ctx};
use crate::config::parse_size;
use crate::exit;
use crate::lists::held::{self, Held, HeldError};
use crate::lists::store::{Member, Store, StoreError};
use crate::lists::{address::check_member, List, NonMember, Policy, Role};
use crate::paths::Paths;
use crate::userdb::lmdb::Lmdb;
use crate::userdb::{Address, DbError, Directory, Resolved};

#[derive(Debug, ClapArgs)]
pub struct Args {
    #[command(subcommand)]
    pub verb: Verb,
}

#[derive(Debug, Subcommand)]
pub enum Verb {
    /// Create a list (members-only, non-member posts held, unless told otherwise).
    Add {
        list: String,
        /// An owner (repeat for more): gets list-owner@ mail, may always post.
        #[arg(long = "owner", value_name = "ADDRESS")]
        owners: Vec<String>,
        /// A moderator (repeat for more): decides on held posts, may always post.
        #[arg(long = "moderator", value_name = "ADDRESS")]
        moderators: Vec<String>,
        /// Who may post: open, members, moderated, announce.
        #[arg(long, value_name = "POLICY")]
        policy: Option<String>,
        /// A short description (the phrase of List-Id:).
        #[arg(long, value_name = "TEXT")]
        description: Option<String>,
    },
    /// Delete a list, its members, held posts and archive.
    #[command(visible_alias = "delete")]
    Del {
        list: String,
        /// Leave the list's directory (members, archive) on disk.
        #[arg(long)]
        keep_state: bool,
    },
    /// List the lists, all or one domain's.
    #[command(name = "list", visible_alias = "ls")]
    Ls { domain: Option<String> },
    /// Show one list: its record and how many members and held posts it has.
    Show { list: String },
    /// Change a list's options: KEY=VALUE ... (see kmpctl(8) for the keys).
    Set {
        list: String,
        #[arg(required = true, value_name = "KEY=VALUE")]
        settings: Vec<String>,
    },
    /// Show the members with their options.
    Members { list: String },
    /// Add members (no confirmation asked: the administrator vouches).
    Subscribe {
        list: String,
        #[arg(required = true, value_name = "ADDRESS")]
        addresses: Vec<String>,
        /// They get digests instead of each post.
        #[arg(long)]
        digest: bool,
        /// They get no mail (and may still post).
        #[arg(long)]
        nomail: bool,
    },
    /// Remove members.
    Unsubscribe {
        list: String,
        #[arg(required = true, value_name = "ADDRESS")]
        addresses: Vec<String>,
    },
    /// Show the moderators, or change them.
    Mods {
        list: String,
        #[arg(long = "add", value_name = "ADDRESS")]
        add: Vec<String>,
        #[arg(long = "del", value_name = "ADDRESS")]
        del: Vec<String>,
    },
    /// Show the posts held for a moderator.
    Held { list: String },
    /// Send a held post on to the list.
    Approve { list: String, id: String },
    /// Throw a held post away (its sender is not told).
    Reject { list: String, id: String },
    /// Send the digest of the posts waiting: of every list with digests,
    /// or of one.
    Digest {
        list: Option<String>,
        /// Only where one is due (the list's count, size or interval): for
        /// cron.
        #[arg(long)]
        due: bool,
    },
}

pub fn run(ctx: &Ctx, a: Args) -> CtlResult {
    match a.verb {
        Verb::Add {
            list,
            owners,
            moderators,
            policy,
            description,
        } => {
            let addr = parse(&list)?;
            let mut l = List::new(&addr, crate::userdb::now());
            l.owners = addresses(&owners)?;
            l.moderators = addresses(&moderators)?;
            if let Some(p) = policy {
                l.policy = parse_policy(&p)?;
            }
            l.description = description.unwrap_or_default();
            check_text("description", &l.description)?;
            let (paths, db) = open(ctx, true)?;
            db.add_list(&l).map_err(db_err)?;
            // The state directory now, so that kmp-local finds it ready.
            let state = l.state_dir(&paths.mail);
            Store::open(&state).map_err(store_err)?;
            print_value(
                ctx.json,
                &json!({"added": {"list": l.address, "policy": l.policy.name()}}),
                &format!("added list {} ({})\n", l.address, l.policy.name()),
            );
            Ok(())
        }
        Verb::Del { list, keep_state } => {
            let addr = parse(&list)?;
            let (paths, db) = open(ctx, false)?;
            let l = db.del_list(&addr).map_err(db_err)?;
            let state = l.state_dir(&paths.mail);
            let mut text = format!("deleted list {}\n", l.address);
            if !keep_state {
                Store::close(&state);
                match std::fs::remove_dir_all(&state) {
                    Ok(()) => text.push_str(&format!("removed {}\n", state.display())),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => {
                        return Err(CtlError::new(
                            exit::IOERR,
                            format!("list deleted, but {}: {e}", state.display()),
                        ))
                    }
                }
            }
            print_value(
                ctx.json,
                &json!({"deleted": {"list": l.address, "state_kept": keep_state}}),
                &text,
            );
            Ok(())
        }
        Verb::Ls { domain } => {
            let (paths, db) = open(ctx, false)?;
            let lists = db.lists(domain.as_deref()).map_err(db_err)?;
            let mut t = Table::new(&["list", "policy", "members", "held", "owners"]);
            for l in lists {
                let state = l.state_dir(&paths.mail);
                let members = Store::open(&state)
                    .and_then(|s| s.count())
                    .map(|n| n.to_string())
                    .unwrap_or_else(|_| "?".into());
                let held = held::list(&state)
                    .map(|h| h.len().to_string())
                    .unwrap_or_else(|_| "?".into());
                t.push(vec![
                    l.address.clone(),
                    l.policy.name().into(),
                    members,
                    held,
                    l.owners.join(", "),
                ]);
            }
            t.print(ctx.json);
            Ok(())
        }
        Verb::Show { list } => {
            let (paths, db, l) = find(ctx, &list)?;
            drop(db);
            let state = l.state_dir(&paths.mail);
            let members = Store::open(&state)
                .and_then(|s| s.count())
                .map_err(store_err)?;
            let held = held::list(&state).map_err(held_err)?.len();
            if ctx.json {
                let mut v = serde_json::to_value(&l).unwrap_or_default();
                v["members"] = json!(members);
                v["held"] = json!(held);
                v["state"] = json!(state.display().to_string());
                println!("{v}");
                return Ok(());
            }
            print!("{}", show_text(&l, members, held, &state));
            Ok(())
        }
        Verb::Set { list, settings } => {
            let addr = parse(&list)?;
            let changes: Vec<(String, String)> = settings
                .iter()
                .map(|s| {
                    s.split_once('=')
                        .map(|(k, v)| (k.trim().to_string(), v.to_string()))
                        .ok_or_else(|| {
                            CtlError::new(exit::USAGE, format!("{s:?} is not KEY=VALUE"))
                        })
                })
                .collect::<Result<_, _>>()?;
            // Every value is checked before anything is written.
            let mut probe = List::new(&addr, 0);
            for (k, v) in &changes {
                apply(&mut probe, k, v)?;
            }
            let (_, db) = open(ctx, false)?;
            let l = db
                .update_list(&addr, |l| {
                    for (k, v) in &changes {
                        apply(l, k, v).map_err(|e| DbError::Invalid(e.message))?;
                    }
                    Ok(())
                })
                .map_err(db_err)?;
            print_value(
                ctx.json,
                &serde_json::to_value(&l).unwrap_or_default(),
                &format!("list {}: {}\n", l.address, settings.join(" ")),
            );
            Ok(())
        }
        Verb::Members { list } => {
            let (paths, _db, l) = find(ctx, &list)?;
            let store = Store::open(&l.state_dir(&paths.mail)).map_err(store_err)?;
            let mut t = Table::new(&["member", "delivery", "bounces", "since"]);
            for m in store.members().map_err(store_err)? {
                t.push(vec![
                    m.address.clone(),
                    delivery(&m).into(),
                    m.bounces.to_string(),
                    iso_time(m.since),
                ]);
            }
            t.print(ctx.json);
            Ok(())
        }
        Verb::Subscribe {
            list,
            addresses,
            digest,
            nomail,
        } => {
            let (paths, db, l) = find(ctx, &list)?;
            let mut checked = Vec::new();
            for a in &addresses {
                let m = check_member(a).map_err(|e| CtlError::new(exit::DATAERR, e))?;
                if leads_to(&db, &m, &l)? {
                    return Err(CtlError::new(
                        exit::DATAERR,
                        format!(
                            "{m} leads back to the list {} (directly or through aliases): a list cannot be its own member",
                            l.address
                        ),
                    ));
                }
                checked.push(m);
            }
            let store = Store::open(&l.state_dir(&paths.mail)).map_err(store_err)?;
            let now = crate::userdb::now();
            let mut added = Vec::new();
            let mut already = Vec::new();
            for m in checked {
                let mut member = Member::new(&m.to_string(), now);
                member.digest = digest;
                member.nomail = nomail;
                if store.subscribe(&member).map_err(store_err)? {
                    added.push(member.address);
                } else {
                    already.push(member.address);
                }
            }
            let mut text = String::new();
            for a in &added {
                text.push_str(&format!("subscribed {a} to {}\n", l.address));
            }
            for a in &already {
                text.push_str(&format!("{a} is a member of {} already\n", l.address));
            }
            print_value(
                ctx.json,
                &json!({"list": l.address, "subscribed": added, "already": already}),
                &text,
            );
            Ok(())
        }
        Verb::Unsubscribe { list, addresses } => {
            let (paths, _db, l) = find(ctx, &list)?;
            let store = Store::open(&l.state_dir(&paths.mail)).map_err(store_err)?;
            let mut gone = Vec::new();
            let mut missing = Vec::new();
            for a in &addresses {
                if store.unsubscribe(a).map_err(store_err)? {
                    gone.push(a.trim().to_string());
                } else {
                    missing.push(a.trim().to_string());
                }
            }
            let text: String = gone
                .iter()
                .map(|a| format!("unsubscribed {a} from {}\n", l.address))
                .collect();
            print_value(
                ctx.json,
                &json!({"list": l.address, "unsubscribed": gone, "not_members": missing}),
                &text,
            );
            if missing.is_empty() {
                Ok(())
            } else {
                Err(CtlError::new(
                    exit::NOUSER,
                    format!("not a member of {}: {}", l.address, missing.join(", ")),
                ))
            }
        }
        Verb::Mods { list, add, del } => {
            let addr = parse(&list)?;
            let add = addresses(&add)?;
            let del = addresses(&del)?;
            let (_, db) = open(ctx, false)?;
            let l = if add.is_empty() && del.is_empty() {
                db.list(&addr)
                    .map_err(db_err)?
                    .ok_or_else(|| CtlError::new(exit::NOUSER, format!("no list {addr}")))?
            } else {
                db.update_list(&addr, |l| {
                    for d in &del {
                        if !List::names(&l.moderators, d) {
                            return Err(DbError::NotFound(format!(
                                "{d} is not a moderator of {}",
                                l.address
                            )));
                        }
                        l.moderators.retain(|m| !m.eq_ignore_ascii_case(d));
                    }
                    for a in add.iter() {
                        if !List::names(&l.moderators, a) {
                            l.moderators.push(a.clone());
                        }
                    }
                    Ok(())
                })
                .map_err(db_err)?
            };
            if ctx.json {
                println!("{}", json!({"list": l.address, "moderators": l.moderators}));
            } else {
                for m in &l.moderators {
                    println!("{m}");
                }
            }
            Ok(())
        }
        Verb::Held { list } => {
            let (paths, _db, l) = find(ctx, &list)?;
            let held = held::list(&l.state_dir(&paths.mail)).map_err(held_err)?;
            let mut t = Table::new(&["id", "received", "from", "size", "reason", "subject"]);
            for h in held {
                t.push(vec![
                    h.id,
                    iso_time(h.received),
                    if h.from.is_empty() { h.sender } else { h.from },
                    size_text(h.size),
                    h.reason,
                    h.subject,
                ]);
            }
            t.print(ctx.json);
            Ok(())
        }
        Verb::Approve { list, id } => {
            let (paths, _db, l) = find(ctx, &list)?;
            let state = l.state_dir(&paths.mail);
            let (token, meta, data) = held::approve(&state, &id).map_err(held_err)?;
            let cfg = ctx.config()?;
            if let Err(e) = inject(&paths, cfg.path(), &meta, &l.address, &data) {
                held::approved(&state, &token, true);
                return Err(CtlError::new(
                    exit::TEMPFAIL,
                    format!("held post {id} not sent (it stays held): {e}"),
                ));
            }
            held::remove(&state, &id).map_err(held_err)?;
            print_value(
                ctx.json,
                &json!({"approved": {"list": l.address, "id": id}}),
                &format!("approved {id}: sent to {}\n", l.address),
            );
            Ok(())
        }
        Verb::Digest { list, due } => digest(ctx, list.as_deref(), due),
        Verb::Reject { list, id } => {
            let (paths, _db, l) = find(ctx, &list)?;
            held::remove(&l.state_dir(&paths.mail), &id).map_err(held_err)?;
            print_value(
                ctx.json,
                &json!({"rejected": {"list": l.address, "id": id}}),
                &format!("rejected {id}\n"),
            );
            Ok(())
        }
    }
}

/// `kmpctl list digest [--due] [LIST]`: [`crate::lists::issue::run`] for
/// one list or every list with digests. Exit 75 when one could not be sent.
fn digest(ctx: &Ctx, list: Option<&str>, due: bool) -> CtlResult {
    let lists = match list {
        Some(l) => vec![find(ctx, l)?.2],
        None => {
            let (_, db) = open(ctx, false)?;
            db.lists(None)
                .map_err(db_err)?
                .into_iter()
                .filter(|l| l.digest.enabled)
                .collect()
        }
    };
    let cfg = ctx.config()?;
    let paths = Paths::new(&cfg);
    let program = paths.program("kmp-inject");
    let o = crate::lists::issue::Options {
        plain: cfg.bool("lists.digest_plain"),
        hostname: cfg.str("system.hostname"),
        now: crate::userdb::now(),
        force: !due,
    };
    let mut send = |from: &str, to: &[String], data: &[u8]| {
        crate::inject::run(&program, cfg.path(), from, to, data)
    };
    let mut rows = Vec::new();
    let mut failed = Vec::new();
    for l in &lists {
        let state = l.state_dir(&paths.mail);
        match crate::lists::issue::run(l, &state, &o, &mut send) {
            Ok(r) => rows.push(json!({"list": l.address, "result": r.to_string()})),
            Err(e) => {
                rows.push(json!({"list": l.address, "error": e}));
                failed.push(format!("{}: {e}", l.address));
            }
        }
    }
    let text: String = rows
        .iter()
        .map(|r| {
            format!(
                "{}: {}\n",
                r["list"].as_str().unwrap_or(""),
                r["result"].as_str().or(r["error"].as_str()).unwrap_or("")
            )
        })
        .collect();
    print_value(ctx.json, &json!({ "digests": rows }), &text);
    if failed.is_empty() {
        Ok(())
    } else {
        Err(CtlError::new(
            exit::TEMPFAIL,
            format!("digest not sent: {}", failed.join("; ")),
        ))
    }
}

/// Opens the database and finds the list.
fn find(ctx: &Ctx, list: &str) -> Result<(Paths, Lmdb, List), CtlError> {
    let addr = parse(list)?;
    let (paths, db) = open(ctx, false)?;
    let l = db
        .list(&addr)
        .map_err(db_err)?
        .ok_or_else(|| CtlError::new(exit::NOUSER, format!("no list {addr}")))?;
    Ok((paths, db, l))
}

fn addresses(v: &[String]) -> Result<Vec<String>, CtlError> {
    v.iter()
        .flat_map(|s| s.split(','))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| parse(s).map(|a| a.to_string()))
        .collect()
}

fn parse_policy(p: &str) -> Result<Policy, CtlError> {
    Policy::parse(p).ok_or_else(|| {
        CtlError::new(
            exit::USAGE,
            format!("policy {p:?} is none of {}", Policy::NAMES.join(", ")),
        )
    })
}

fn parse_bool(k: &str, v: &str) -> Result<bool, CtlError> {
    match v.to_ascii_lowercase().as_str() {
        "yes" | "on" | "true" | "1" => Ok(true),
        "no" | "off" | "false" | "0" => Ok(false),
        _ => Err(CtlError::new(
            exit::USAGE,
            format!("{k}: {v:?} is not yes or no"),
        )),
    }
}

/// A text option: one line, no control characters (it goes into headers).
fn check_text(k: &str, v: &str) -> CtlResult {
    if v.chars().any(|c| c.is_control()) || v.len() > 200 {
        return Err(CtlError::new(
            exit::DATAERR,
            format!("{k}: one line of at most 200 bytes, without control characters"),
        ));
    }
    Ok(())
}

/// Sets one option of `l` from `KEY=VALUE`.
fn apply(l: &mut List, k: &str, v: &str) -> CtlResult {
    let usage = |m: String| CtlError::new(exit::USAGE, m);
    match k {
        "description" => {
            check_text(k, v)?;
            l.description = v.to_string();
        }
        "subject_prefix" => {
            check_text(k, v)?;
            l.subject_prefix = v.trim().to_string();
        }
        "footer" => {
            // `@FILE` reads the footer from a file; `\n` is a line break.
            let text = match v.strip_prefix('@') {
                Some(f) => std::fs::read_to_string(f)
                    .map_err(|e| CtlError::new(exit::from_io(&e), format!("{f}: {e}")))?,
                None => v.replace("\\n", "\n"),
            };
            if text.len() > 4096
                || text
                    .chars()
                    .any(|c| c.is_control() && c != '\n' && c != '\t')
            {
                return Err(CtlError::new(
                    exit::DATAERR,
                    "footer: at most 4096 bytes of text".to_string(),
                ));
            }
            l.footer = text.trim_end().to_string();
        }
        "policy" => l.policy = parse_policy(v)?,
        "non_member" => {
            l.non_member = NonMember::parse(v)
                .ok_or_else(|| usage(format!("non_member {v:?} is neither hold nor refuse")))?
        }
        "max_size" => {
            l.max_size = match v {
                "" | "none" | "0" => 0,
                v => parse_size(v).map_err(|e| usage(format!("max_size: {e}")))?,
            }
        }
        "max_attachments" => {
            l.max_attachments = match v {
                "" | "none" => None,
                v => Some(v.parse().map_err(|_| {
                    usage(format!("max_attachments: {v:?} is not none or a number"))
                })?),
            }
        }
        "subscribe_approval" => l.subscribe_approval = parse_bool(k, v)?,
        "archive" => l.archive = parse_bool(k, v)?,
        "owners" => l.owners = addresses(&[v.to_string()])?,
        "moderators" => l.moderators = addresses(&[v.to_string()])?,
        "posters" => l.posters = addresses(&[v.to_string()])?,
        "digest" => l.digest.enabled = parse_bool(k, v)?,
        "dmarc_original" => {
            l.dmarc_original = crate::lists::dmarc::Original::parse(v)
                .ok_or_else(|| usage(format!("dmarc_original {v:?} is neither reply-to nor cc")))?
        }
        "digest_max_messages" => {
            l.digest.max_messages = v
                .parse()
                .map_err(|_| usage(format!("{k}: {v:?} is not a number")))?
        }
        "digest_max_bytes" => {
            l.digest.max_bytes = match v {
                "none" | "0" => 0,
                v => parse_size(v).map_err(|e| usage(format!("{k}: {e}")))?,
            }
        }
        "digest_interval" => {
            l.digest.interval = crate::config::parse_duration(v)
                .map_err(|e| usage(format!("{k}: {e}")))?
                .as_secs()
        }
        _ => {
            return Err(usage(format!(
                "no list option {k:?} (description, policy, non_member, subject_prefix, footer, \
                 max_size, max_attachments, subscribe_approval, archive, owners, moderators, \
                 posters, digest, digest_max_messages, digest_max_bytes, digest_interval, \
                 dmarc_original)"
            )))
        }
    }
    Ok(())
}

/// Whether mail to `addr` would reach the list `l` again: the list itself,
/// or an alias or forward that leads to it (looked up to ten levels deep).
pub(crate) fn leads_to(db: &Lmdb, addr: &Address, l: &List) -> Result<bool, CtlError> {
    let mut todo = vec![(addr.clone(), 0)];
    let mut seen = std::collections::HashSet::new();
    while let Some((a, depth)) = todo.pop() {
        if depth > 10 || !seen.insert(a.key()) || seen.len() > 1000 {
            continue;
        }
        let next: Vec<String> = match db.resolve(&a).map_err(db_err)?.0 {
            Resolved::List(other, Role::Post) => {
                if other.address.eq_ignore_ascii_case(&l.address) {
                    return Ok(true);
                }
                Vec::new()
            }
            Resolved::List(..) | Resolved::NotFound => Vec::new(),
            Resolved::Alias(x) => x.targets,
            Resolved::User(u) => u.forwards,
        };
        for n in next {
            if let Ok(n) = Address::parse(&n) {
                todo.push((n, depth + 1));
            }
        }
    }
    Ok(false)
}

fn delivery(m: &Member) -> &'static str {
    match (m.nomail, m.digest) {
        (true, _) => "nomail",
        (false, true) => "digest",
        _ => "each",
    }
}

fn show_text(l: &List, members: u64, held: usize, state: &std::path::Path) -> String {
    let none = |s: &str| {
        if s.is_empty() {
            "none".to_string()
        } else {
            s.to_string()
        }
    };
    let list = |v: &[String]| {
        if v.is_empty() {
            "none".to_string()
        } else {
            v.join(", ")
        }
    };
    let mut s = String::new();
    let mut line = |k: &str, v: String| s.push_str(&format!("{k:<20}{v}\n"));
    line("list", l.address.clone());
    line("description", none(&l.description));
    line("list-id", format!("<{}>", l.list_id()));
    line("policy", l.policy.name().into());
    line("non_member", l.non_member.name().into());
    line("owners", list(&l.owners));
    line("moderators", list(&l.moderators));
    line("posters", list(&l.posters));
    line("subject_prefix", none(&l.subject_prefix));
    line(
        "footer",
        if l.footer.is_empty() {
            "none".into()
        } else {
            count(l.footer.lines().count() as u64, "line", "lines")
        },
    );
    line("max_size", size_text(l.max_size));
    line(
        "max_attachments",
        l.max_attachments
            .map(|n| n.to_string())
            .unwrap_or_else(|| "none".into()),
    );
    line("subscribe_approval", yes(l.subscribe_approval));
    line("archive", yes(l.archive));
    line(
        "digest",
        if l.digest.enabled {
            format!(
                "yes ({} posts, {}, {}s)",
                l.digest.max_messages,
                size_text(l.digest.max_bytes),
                l.digest.interval
            )
        } else {
            "no".into()
        },
    );
    line("dmarc_original", l.dmarc_original.name().into());
    line("members", members.to_string());
    line("held", held.to_string());
    line("created", iso_time(l.created));
    line("state", state.display().to_string());
    s
}

fn yes(b: bool) -> String {
    if b { "yes" } else { "no" }.into()
}

/// Sends an approved post to the list through kmp-inject, with the
/// original envelope sender.
fn inject(
    paths: &Paths,
    config: Option<&std::path::Path>,
    meta: &Held,
    to: &str,
    data: &[u8],
) -> Result<(), String> {
    crate::inject::run(
        &paths.program("kmp-inject"),
        config,
        &meta.sender,
        &[to.to_string()],
        data,
    )
}

fn store_err(e: StoreError) -> CtlError {
    CtlError::new(e.exit_code(), e.to_string())
}

fn held_err(e: HeldError) -> CtlError {
    CtlError::new(e.exit_code(), e.to_string())
}
