//! kmp-local's part of a list: what happens when a recipient resolves to
//! one of a list's addresses.
//!
//! A post ([`post`]): the policy decides ([`super::policy`]); a held post
//! goes to the list's `held/`; a refused one bounces (kmp-send's DSN); a
//! distributed one is rewritten once ([`super::rewrite`]) and then
//!
//! - written once and hard-linked into the INBOX of every local member
//!   (and into the list's archive Maildir), through the same single-instance
//!   fan-out as any delivery (`local::fanout`);
//! - handed to the queue through kmp-inject for remote members, one
//!   envelope per member with a VERP return path
//!   `list-bounce-USER=DOMAIN@listdomain` so a bounce names the member
//!   (`lists.verp`), each copy with the member's own one-click unsubscribe
//!   link (the shared local copy has the mailto only), or, with
//!   `lists.verp = false`, one envelope per domain returning to
//!   `list-owner@`.
//!
//! A local member whose mailbox the post would take over its quota gets no
//! copy; it is logged and counted as a bounce ([`soft_bounces`]). Members
//! who read digests get no single posts: the post is kept for the digest
//! (`super::digest::DigestBox`), and mail to `list-digest-N@` delivers
//! prepared issue N to them (`super::issue`).
//!
//! Members are looked up through kmp-authd like any recipient (aliases and
//! forwards followed); a member that leads back to this list is skipped
//! with a log line, never sent to.
//!
//! Retries: a post's copies in Maildirs carry delivery ids
//! (`QID.list.member`), and every remote member handed to the queue is
//! marked in the list's store, so a delivery attempt repeated after a crash
//! or a temporary failure adds no second copy; a post marked done is not
//! distributed again.
//!
//! The other roles (requests, subscriptions, bounces, confirmations,
//! moderators' answers) are served by `super::commands`; only without a
//! cookie key (`lists.cookie_key_file` unreadable) does such mail go to
//! the list's owners. A held post asks the moderators by mail.

use std::path::PathBuf;

use super::held::{self, Held, APPROVED_HEADER};
use super::policy::{self, Post, Verdict};
use super::rewrite;
use super::store::Store;
use super::{List, Role};
use crate::config::Config;
use crate::local::resolve::{self, Directory, ListHit, ResolveError};
use crate::maildir::quota::Limits;

mod copies;
mod digests;

use copies::{deliver_local, deliver_remote, Local};
use digests::{digest_issue, send_digest};

/// What the list side takes from the configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `paths.mail`: the lists' state is below it.
    pub mail_root: PathBuf,
    /// `lists.web_url`: the one-click unsubscription and archive pages.
    pub web_url: String,
    /// `lists.verp`: one envelope per remote member with a VERP return path.
    pub verp: bool,
    /// kmp-inject, and the configuration it is to read.
    pub inject: PathBuf,
    pub config: Option<PathBuf>,
    pub max_depth: usize,
    /// Requests by mail (`super::commands`).
    pub requests: super::commands::Settings,
    /// `lists.dmarc_rewrite`.
    pub dmarc: super::dmarc::Mode,
    /// `auth.dns_servers` (empty: the system's) and `auth.dns_timeout`.
    pub dns_servers: Vec<std::net::SocketAddr>,
    pub dns_timeout: std::time::Duration,
}

impl Settings {
    pub fn from_config(cfg: &Config) -> Settings {
        Settings {
            mail_root: cfg.path_of("paths.mail"),
            web_url: cfg.str("lists.web_url").trim_end_matches('/').to_string(),
            verp: cfg.bool("lists.verp"),
            inject: crate::paths::Paths::new(cfg).program("kmp-inject"),
            config: cfg.path().map(|p| p.to_path_buf()),
            max_depth: cfg.usize("local.max_alias_depth"),
            requests: super::commands::Settings::from_config(cfg),
            dmarc: super::dmarc::Mode::parse(cfg.str("lists.dmarc_rewrite")),
            dns_servers: crate::mailauth::verify::dns_servers(cfg.list("auth.dns_servers"))
                .unwrap_or_default(),
            dns_timeout: cfg.duration("auth.dns_timeout"),
        }
    }

    /// The defaults, with lists' state below `mail_root` (tests).
    pub fn new(mail_root: PathBuf) -> Settings {
        Settings {
            mail_root,
            web_url: String::new(),
            verp: true,
            inject: PathBuf::from("kmp-inject"),
            config: None,
            max_depth: 10,
            requests: super::commands::Settings::none(),
            dmarc: super::dmarc::Mode::Never,
            dns_servers: Vec::new(),
            dns_timeout: std::time::Duration::from_secs(5),
        }
    }
}

/// What became of the list's recipient.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Sent,
    Deferred,
    Bounced,
}

/// The recipient's result: outcome, RFC 3463 code, the log's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Done {
    pub outcome: Outcome,
    pub dsn: &'static str,
    pub text: String,
}

impl Done {
    fn sent(text: impl Into<String>) -> Done {
        Done {
            outcome: Outcome::Sent,
            dsn: "2.0.0",
            text: text.into(),
        }
    }
    fn deferred(text: impl Into<String>) -> Done {
        Done {
            outcome: Outcome::Deferred,
            dsn: "4.3.0",
            text: text.into(),
        }
    }
    fn bounced(dsn: &'static str, text: impl Into<String>) -> Done {
        Done {
            outcome: Outcome::Bounced,
            dsn,
            text: text.into(),
        }
    }
}

/// The message being delivered.
pub struct Message<'a> {
    pub qid: &'a str,
    pub sender: &'a str,
    pub raw: &'a [u8],
    /// Seconds since the epoch when it was accepted.
    pub arrived: u64,
    pub now: u64,
}

/// Handles a recipient that is an address of a list.
pub fn handle(s: &Settings, dir: &mut dyn Directory, hit: &ListHit, m: &Message<'_>) -> Done {
    match &hit.role {
        Role::Post => post(s, dir, &hit.list, m),
        Role::Digest(k) => digest_issue(s, dir, &hit.list, k, m),
        role => {
            let state = hit.list.state_dir(&s.mail_root);
            let mut send = |from: &str, to: &[String], data: &[u8]| inject(s, from, to, data);
            let served = super::commands::serve(
                &s.requests,
                &hit.list,
                &state,
                role,
                m.qid,
                m.sender,
                m.raw,
                m.now,
                &mut send,
            );
            match served {
                Some(Ok(text)) => Done::sent(text),
                Some(Err(e)) => Done::deferred(e),
                None => to_owners(s, &hit.list, m),
            }
        }
    }
}

/// Mail for the list's people (until the subscription side answers it):
/// to the owners, with its own envelope sender.
fn to_owners(s: &Settings, list: &List, m: &Message<'_>) -> Done {
    if list.owners.is_empty() {
        return Done::bounced(
            "5.1.1",
            format!("list {} has no owner to take this", list.address),
        );
    }
    let key = format!("{}\0owners", m.qid);
    let state = list.state_dir(&s.mail_root);
    let store = match Store::open(&state) {
        Ok(st) => st,
        Err(e) => return Done::deferred(e.to_string()),
    };
    if store.done(&key).unwrap_or(false) {
        return Done::sent("already forwarded to the list's owners");
    }
    if let Err(e) = inject(s, m.sender, &list.owners, m.raw) {
        return Done::deferred(format!("cannot forward to the list's owners: {e}"));
    }
    let _ = store.mark_done(&[key], m.now);
    Done::sent(format!("forwarded to the owners of {}", list.address))
}

/// The facts the policy needs, from the header.
fn facts(p: &rewrite::Parsed<'_>, m: &Message<'_>) -> Post {
    let text = |name: &str| {
        p.get(name)
            .map(|v| String::from_utf8_lossy(&v).trim().to_string())
    };
    let from = p
        .get("From")
        .map(|v| crate::mime::address_list(&v))
        .unwrap_or_default()
        .into_iter()
        .map(|mb| mb.address)
        .collect();
    let attachments = mail_parser::MessageParser::default()
        .parse(m.raw)
        .map(|msg| msg.attachment_count() as u32)
        .unwrap_or(0);
    Post {
        sender: m.sender.to_string(),
        from,
        list_ids: p.list_ids(),
        auto_submitted: text("Auto-Submitted"),
        precedence: text("Precedence"),
        size: m.raw.len() as u64,
        attachments,
        approved: false,
    }
}

/// A post to the list.
pub fn post(s: &Settings, dir: &mut dyn Directory, list: &List, m: &Message<'_>) -> Done {
    let state = list.state_dir(&s.mail_root);
    let store = match Store::open(&state) {
        Ok(st) => st,
        Err(e) => return Done::deferred(e.to_string()),
    };
    match store.done(m.qid) {
        Ok(true) => return Done::sent(format!("already distributed by {}", list.address)),
        Ok(false) => {}
        Err(e) => return Done::deferred(e.to_string()),
    }
    let parsed = rewrite::parse(m.raw);
    let mut facts = facts(&parsed, m);
    let token = parsed
        .get(APPROVED_HEADER)
        .map(|v| String::from_utf8_lossy(&v).trim().to_string());
    if let Some(t) = &token {
        facts.approved = held::approved(&state, t, false);
        if !facts.approved {
            crate::warn!(
                "{}: list {}: approval token {t:?} is not on record; the post is judged as any",
                m.qid,
                list.address
            );
        }
    }
    let is_member = |a: &str| store.member(a).ok().flatten().is_some();
    match policy::decide(list, &facts, &is_member) {
        Verdict::Distribute => {}
        Verdict::Hold(reason) => return hold(s, list, &state, &parsed, &facts, m, reason),
        Verdict::Refuse(dsn, reason) => {
            crate::info!(
                "{}: list {}: refused post from <{}>: {reason}",
                m.qid,
                list.address,
                m.sender
            );
            return Done::bounced(dsn, reason);
        }
        Verdict::Discard(reason) => {
            crate::warn!(
                "{}: list {}: dropped message from <{}>: {reason}",
                m.qid,
                list.address,
                m.sender
            );
            return Done::sent(format!("dropped by list {}: {reason}", list.address));
        }
    }
    let mut data = rewrite::rewrite(list, m.raw, &s.web_url);
    if from_list(s, list, &facts, m) {
        data = super::dmarc::rewrite_from(list, &data, list.dmarc_original);
    }
    let members = match store.members() {
        Ok(v) => v,
        Err(e) => return Done::deferred(e.to_string()),
    };
    // Digest readers get no single posts, unless the list sends no digests.
    let reads_digest = |x: &super::store::Member| x.digest && list.digest.enabled;
    let each = members.iter().filter(|x| !x.nomail && !reads_digest(x));
    let t = match targets(s, dir, list, each, m.qid) {
        Ok(t) => t,
        Err(d) => return d,
    };
    let Targets {
        local,
        remote,
        own_copy,
        skipped,
    } = t;
    // A post is kept for the digest when some member reads digests.
    let digest_members = members.iter().any(|x| reads_digest(x) && !x.nomail);

    let over_quota = match deliver_local(list, &state, &store, &local, &data, m, list.archive) {
        Ok(v) => v,
        Err(d) => return d,
    };
    soft_bounces(s, list, &state, &over_quota, m);
    let sent = match deliver_remote(s, list, &store, &remote, &own_copy, &data, m) {
        Ok(n) => n,
        Err(d) => return d,
    };
    if digest_members {
        // Named by arrival and queue id: a repeated attempt writes the same
        // file again, never a second one.
        let number =
            m.arrived.saturating_mul(1_000_000) + fnv64_bytes(m.qid.as_bytes()) % 1_000_000;
        if let Err(e) = super::digest::DigestBox::new(&super::issue::dir(&state)).add(number, &data)
        {
            return Done::deferred(format!("cannot keep the post for the digest: {e}"));
        }
    }
    if let Err(e) = store.mark_done(&[m.qid.to_string()], m.now) {
        crate::warn!("{}: list {}: {e}", m.qid, list.address);
    }
    if digest_members {
        send_digest(s, list, &state, m);
    }
    if let Some(t) = &token {
        if facts.approved {
            held::approved(&state, t, true);
        }
    }
    // Now and then, done-marks older than 30 days go.
    if fnv64_bytes(m.qid.as_bytes()).is_multiple_of(64) {
        let _ = store.sweep(m.now.saturating_sub(30 * 86400));
    }
    crate::info!(
        "{}: list {}: post from <{}> distributed to {} local and {} remote members{}",
        m.qid,
        list.address,
        m.sender,
        local.len() - over_quota.len().min(local.len()),
        sent,
        match (skipped, over_quota.len()) {
            (0, 0) => String::new(),
            (n, 0) => format!(", {n} skipped"),
            (0, q) => format!(", {q} over quota"),
            (n, q) => format!(", {n} skipped, {q} over quota"),
        }
    );
    Done::sent(format!(
        "distributed by list {} to {} local and {} remote",
        list.address,
        local.len(),
        remote.len()
    ))
}

/// Whether the post goes out as from the list (`lists.dmarc_rewrite`):
/// always, never, or when the poster's From domain publishes a strict
/// DMARC policy (`super::dmarc`).
fn from_list(s: &Settings, list: &List, facts: &Post, m: &Message<'_>) -> bool {
    use super::dmarc::{self, Mode};
    match s.dmarc {
        Mode::Never => false,
        Mode::Always => true,
        Mode::Auto => {
            let Some(domain) = facts
                .from
                .first()
                .and_then(|a| a.rsplit_once('@'))
                .map(|(_, d)| d.to_string())
            else {
                return false;
            };
            match dmarc::policy(&domain, &s.dns_servers, s.dns_timeout) {
                Ok(a) if a.strict() => {
                    crate::info!(
                        "{}: list {}: {domain} publishes DMARC {a:?}: sent as from the list",
                        m.qid,
                        list.address
                    );
                    true
                }
                Ok(_) => false,
                Err(e) => {
                    crate::warn!(
                        "{}: list {}: DMARC policy of {domain} unknown ({e}): sent as from the list",
                        m.qid,
                        list.address
                    );
                    true
                }
            }
        }
    }
}

/// Where a list's mail goes: the members' Maildirs (by mailbox key), the
/// remote addresses, which of those are members themselves, and how many
/// members were skipped.
struct Targets {
    local: Vec<Local>,
    remote: Vec<String>,
    own_copy: std::collections::HashSet<String>,
    skipped: usize,
}

/// Looks the `members` up (through kmp-authd: aliases and forwards
/// followed) and sorts them into [`Targets`]; a temporary failure defers.
fn targets<'a>(
    s: &Settings,
    dir: &mut dyn Directory,
    list: &List,
    members: impl Iterator<Item = &'a super::store::Member>,
    qid: &str,
) -> Result<Targets, Done> {
    // Who gets what: local Maildirs and remote addresses.
    let mut local: Vec<Local> = Vec::new();
    let mut local_seen = std::collections::HashSet::new();
    let mut remote: Vec<String> = Vec::new();
    // The remote addresses that are members themselves (not a local
    // member's forward or another list): their copies carry a one-click
    // link of their own.
    let mut own_copy = std::collections::HashSet::new();
    let mut skipped = 0usize;
    for mb in members {
        let res = match resolve::resolve(dir, &mb.address, s.max_depth) {
            Ok(r) => r,
            Err(ResolveError::Temporary(e)) => {
                return Err(Done::deferred(format!(
                    "cannot look up member {}: {e}",
                    mb.address
                )))
            }
            Err(e) => {
                crate::warn!(
                    "{}: list {}: member {} skipped: {e:?}",
                    qid,
                    list.address,
                    mb.address
                );
                skipped += 1;
                continue;
            }
        };
        let mut looped = false;
        for h in &res.lists {
            if h.list.address.eq_ignore_ascii_case(&list.address) {
                looped = true;
            } else if h.role == Role::Post {
                // Another list: it gets the post by mail, as anyone.
                remote.push(h.address.clone());
            }
        }
        if looped {
            crate::warn!(
                "{}: list {}: member {} leads back to the list itself; not sent to it",
                qid,
                list.address,
                mb.address
            );
            skipped += 1;
            continue;
        }
        for u in res.mailboxes {
            let key = resolve::key(&u.address);
            if local_seen.insert(key.clone()) {
                let path = if u.mail_path.as_os_str().is_empty() {
                    let (l, d) = u.address.rsplit_once('@').unwrap_or((&u.address, ""));
                    s.mail_root.join(d).join(l)
                } else {
                    s.mail_root.join(&u.mail_path)
                };
                local.push(Local {
                    key,
                    path,
                    quota: Limits {
                        bytes: u.quota_bytes,
                        messages: u.quota_messages,
                    },
                    member: mb.address.clone(),
                });
            }
        }
        // Members outside our domains are queued under their own address
        // (so the VERP return path names them); forwards of local
        // members go to their targets.
        remote.extend(res.remote);
        for (a, why) in res.refused {
            if why == resolve::Refusal::NotLocal {
                // A member in another domain: its copy is its own.
                if a.eq_ignore_ascii_case(&mb.address) {
                    own_copy.insert(a.to_ascii_lowercase());
                }
                remote.push(a);
            } else {
                skipped += 1;
            }
        }
    }
    remote.sort_by_key(|a| a.to_ascii_lowercase());
    remote.dedup_by(|a, b| a.eq_ignore_ascii_case(b));

    Ok(Targets {
        local,
        remote,
        own_copy,
        skipped,
    })
}

/// Local members whose mailbox was over quota got no copy: each is logged
/// and counted as a bounce of the day toward the warn-then-remove logic
/// (`super::bounce`), as a bounce from its server would be.
fn soft_bounces(
    s: &Settings,
    list: &List,
    state: &std::path::Path,
    members: &[String],
    m: &Message<'_>,
) {
    for member in members {
        crate::warn!(
            "{}: list {}: member {member} is over quota: no copy (counted as a bounce)",
            m.qid,
            list.address
        );
        let role = Role::Bounce(super::address::verp_arg(member));
        let report = format!(
            "Subject: over quota\nX-Kmpromail-List: {}\n\nThe mailbox of {member} is full: no copy of the list mail was delivered.\n",
            list.address
        );
        let mut send = |from: &str, to: &[String], data: &[u8]| inject(s, from, to, data);
        if let Some(Err(e)) = super::commands::serve(
            &s.requests,
            list,
            state,
            &role,
            m.qid,
            "",
            report.as_bytes(),
            m.now,
            &mut send,
        ) {
            crate::warn!("{}: list {}: {e}", m.qid, list.address);
        }
    }
}

/// Holds a post for a moderator.
fn hold(
    s: &Settings,
    list: &List,
    state: &std::path::Path,
    parsed: &rewrite::Parsed<'_>,
    facts: &Post,
    m: &Message<'_>,
    reason: String,
) -> Done {
    let id: String = m
        .qid
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '.' || *c == '-')
        .take(64)
        .collect();
    let id = if id.is_empty() { held::new_token() } else { id };
    if !held::is_held(state, &id) {
        let meta = Held {
            id: id.clone(),
            sender: m.sender.to_string(),
            from: facts.from.first().cloned().unwrap_or_default(),
            subject: parsed
                .get("Subject")
                .map(|v| crate::mime::header_text(&v))
                .unwrap_or_default(),
            reason: reason.clone(),
            size: m.raw.len() as u64,
            received: m.now,
        };
        if let Err(e) = held::hold(state, &meta, m.raw) {
            return Done::deferred(format!("cannot hold the post: {e}"));
        }
        // The moderators are asked once, when the post is first held; a
        // failure to ask leaves the post held (kmpctl list held shows it).
        let mut send = |from: &str, to: &[String], data: &[u8]| inject(s, from, to, data);
        if let Err(e) = super::commands::ask_moderators(
            &s.requests,
            list,
            state,
            m.qid,
            &id,
            m.sender,
            &reason,
            m.raw,
            m.now,
            &mut send,
        ) {
            crate::warn!(
                "{}: list {}: moderators not asked: {e}",
                m.qid,
                list.address
            );
        }
    }
    crate::info!(
        "{}: list {}: post from <{}> held as {id}: {reason}",
        m.qid,
        list.address,
        m.sender
    );
    Done::sent(format!(
        "held for the moderators of {} ({reason})",
        list.address
    ))
}

/// Hands `data` to the queue through kmp-inject.
pub fn inject(s: &Settings, sender: &str, rcpts: &[String], data: &[u8]) -> Result<(), String> {
    crate::inject::run(&s.inject, s.config.as_deref(), sender, rcpts, data)
}

/// FNV-1a, 64 bits: a stable short name in delivery ids and boundaries.
pub fn fnv64_bytes(b: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &x in b {
        h ^= x as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}
