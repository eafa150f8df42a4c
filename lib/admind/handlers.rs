//! What each authorised call does to the user database, through the same
//! functions kmpctl's verbs call ([`crate::admin`], [`Lmdb`]), so the checks
//! and limits are the same whichever door a change comes through. Blocking
//! (LMDB, password hashing): the server runs it off the async threads.

use std::path::Path;

use serde_json::{json, Value};

use super::api::{alias_text, ApiError, Call, UserPatch};
use super::authz::Caller;
use crate::admin::{self, NewUser};
use crate::ctl::user::{remove_maildir, user_json, MailFate};
use crate::userdb::lmdb::Lmdb;
use crate::userdb::password::{self, MAX_PASSWORD};
use crate::userdb::{Address, DbError, Directory, User};

/// The status and message a database error answers with.
pub fn db_error(e: DbError) -> ApiError {
    let status = match &e {
        DbError::NotFound(_) => 404,
        DbError::Exists(_) | DbError::Limit(_) | DbError::NotEmpty(..) | DbError::HasLists(..) => {
            409
        }
        DbError::Address(_) | DbError::Password(_) | DbError::Invalid(_) => 400,
        _ if e.is_temporary() => 503,
        _ => 500,
    };
    ApiError::new(status, e.to_string())
}

/// Performs `call` (already authorised) for `c`.
pub fn execute(db: &Lmdb, mail_root: &Path, c: &Caller, call: Call) -> Result<Value, ApiError> {
    match call {
        Call::Login(_)
        | Call::Logout
        | Call::Fetch(_)
        | Call::SignupDomains
        | Call::Signup(..)
        | Call::Announce { .. } => Err(ApiError::new(500, "handled by the server")),
        Call::Whoami => Ok(json!({"user": c.user, "role": c.role(), "admin": c.admin,
            "domains": c.domains, "lists": c.lists, "moderates": c.moderates,
            "create_lists": c.create_lists})),
        Call::Domains => {
            let mut out = Vec::new();
            for d in db.domains().map_err(db_error)? {
                if c.may_administer(&d.name) {
                    out.push(admin::domain_view(db, &d.name).map_err(db_error)?);
                }
            }
            Ok(serde_json::to_value(out).unwrap_or_default())
        }
        Call::Domain(d) => admin::domain_view(db, &d)
            .map(|v| serde_json::to_value(v).unwrap_or_default())
            .map_err(db_error),
        Call::DomainSet(d, patch) => {
            admin::domain_set(db, &d, &patch).map_err(db_error)?;
            admin::domain_view(db, &d)
                .map(|v| serde_json::to_value(v).unwrap_or_default())
                .map_err(db_error)
        }
        Call::DomainUsage(d) => {
            let dom = admin::domain_view(db, &d).map_err(db_error)?;
            let users: Vec<Value> = db
                .users(Some(&d))
                .map_err(db_error)?
                .iter()
                .map(|u| usage_json(u, mail_root))
                .collect();
            Ok(
                json!({"domain": dom.domain, "usage": dom.usage, "limits": dom.limits,
                "users": users}),
            )
        }
        Call::Users(d) => {
            need_domain(db, &d)?;
            let users: Vec<Value> = db
                .users(Some(&d))
                .map_err(db_error)?
                .iter()
                .map(|u| user_json(u, mail_root))
                .collect();
            Ok(Value::Array(users))
        }
        Call::Aliases(d) => {
            need_domain(db, &d)?;
            Ok(serde_json::to_value(db.aliases(Some(&d)).map_err(db_error)?).unwrap_or_default())
        }
        Call::Lists(d) => {
            need_domain(db, &d)?;
            Ok(serde_json::to_value(db.lists(Some(&d)).map_err(db_error)?).unwrap_or_default())
        }
        Call::List(a) => match db.list(&a).map_err(db_error)? {
            Some(l) => Ok(serde_json::to_value(l).unwrap_or_default()),
            None => Err(ApiError::new(404, format!("no list {a}"))),
        },
        Call::User(a) => Ok(user_json(&get_user(db, &a)?, mail_root)),
        Call::UserUsage(a) => Ok(usage_json(&get_user(db, &a)?, mail_root)),
        Call::UserAdd { address, body } => {
            let hash = match (&body.password, &body.password_hash) {
                (Some(p), _) => Some(hash(p)?),
                (None, Some(h)) => {
                    password::check_hash(h).map_err(|e| ApiError::bad(e.to_string()))?;
                    Some(h.clone())
                }
                (None, None) => None,
            };
            let u = admin::new_user(
                db,
                &address,
                NewUser {
                    hash,
                    quota_bytes: body.quota_bytes,
                    quota_messages: body.quota_messages,
                    mail_path: None,
                },
            )
            .map_err(db_error)?;
            // A Maildir left by a deleted user is never handed to a new one
            // through the API (kmpctl user add --reuse-mail does that).
            if u.maildir(mail_root).exists() {
                return Err(ApiError::new(
                    409,
                    format!(
                        "a former user's mail is still in the Maildir of {address}: \
                         the system administrator must remove or adopt it"
                    ),
                ));
            }
            db.add_user(&u).map_err(db_error)?;
            Ok(
                json!({"added": {"user": u.address, "mail_path": u.maildir(mail_root),
                "reused_mail": false}}),
            )
        }
        Call::UserSet {
            address,
            patch,
            forwards,
        } => set_user(db, mail_root, &address, patch, forwards),
        Call::UserDel { address, keep_mail } => {
            let (u, unlinked) = db.del_user(&address).map_err(db_error)?;
            let mail = u.maildir(mail_root);
            let fate = if keep_mail {
                "kept"
            } else {
                match remove_maildir(&mail) {
                    MailFate::Removed => "removed",
                    MailFate::Kept => "kept",
                    MailFate::Absent => "absent",
                    MailFate::NotMaildir => "not a maildir",
                    MailFate::Failed(e) => {
                        crate::warn!(
                            "user {} deleted; its mail {}: {e}",
                            u.address,
                            mail.display()
                        );
                        "failed"
                    }
                }
            };
            let unlinked: Vec<String> = unlinked.iter().map(|x| x.to_string()).collect();
            Ok(
                json!({"deleted": {"user": u.address, "mail_path": mail, "mail": fate,
                "unlinked": unlinked}}),
            )
        }
        Call::AliasAdd { alias, targets } => {
            let a = db.add_alias(&alias, &targets).map_err(db_error)?;
            Ok(json!({"alias": a.address, "targets": a.targets}))
        }
        Call::AliasDel { alias, targets } => {
            match db.del_alias(&alias, &targets).map_err(db_error)? {
                Some(a) => Ok(json!({"alias": a.address, "targets": a.targets})),
                None => Ok(json!({"deleted": {"alias": alias_text(&alias)}})),
            }
        }
        // Performed by `super::lists` (the server sends them there).
        Call::ListAdd { .. }
        | Call::ListSet { .. }
        | Call::ListDel(_)
        | Call::Members { .. }
        | Call::MembersAdd { .. }
        | Call::MemberSet { .. }
        | Call::MemberDel { .. }
        | Call::Held(_)
        | Call::HeldShow { .. }
        | Call::HeldApprove { .. }
        | Call::HeldReject { .. } => Err(ApiError::new(500, "a list call went astray")),
    }
}

/// `POST /v1/domains/D/announcements` (already authorised): the request
/// goes into the spool for kmp-local, which owns the mailboxes
/// ([`crate::announce::spool`]); kmp-admind writes no Maildir.
pub fn announce(
    db: &Lmdb,
    spool: &Path,
    hostname: &str,
    max_size: u64,
    c: &Caller,
    domain: &str,
    body: &super::api::AnnounceBody,
) -> Result<Value, ApiError> {
    use crate::announce::spool::{submit, Announcement, SubmitError, Submitted};
    need_domain(db, domain)?;
    if spool.as_os_str().is_empty() {
        return Err(ApiError::new(
            503,
            "announcements are off here (paths.announce is empty)",
        ));
    }
    let a = Announcement {
        domain,
        by: &c.user,
        subject: &body.subject,
        text: &body.text,
        html: body.html.as_deref().filter(|h| !h.trim().is_empty()),
    };
    let users = db.users(Some(domain)).map_err(db_error)?.len();
    match submit(spool, &a, hostname, crate::userdb::now(), max_size) {
        Ok(Submitted::Queued(id)) => Ok(json!({"announcement": {"id": id, "domain": domain,
            "users": users, "queued": true}})),
        Ok(Submitted::Waiting(id)) => Ok(json!({"announcement": {"id": id, "domain": domain,
            "users": users, "queued": false, "waiting": true}})),
        Err(SubmitError::Bad(m)) => Err(ApiError::bad(m)),
        Err(SubmitError::Io(m)) => {
            crate::warn!("announcement to {domain}: {m}");
            Err(ApiError::new(
                503,
                "the announcement could not be queued; try again later",
            ))
        }
    }
}

/// `PATCH /v1/users/A`: every change in one write, so a refused part
/// (a limit) leaves the user as it was.
fn set_user(
    db: &Lmdb,
    mail_root: &Path,
    addr: &Address,
    p: UserPatch,
    forwards: Option<Vec<Address>>,
) -> Result<Value, ApiError> {
    let hash = match (&p.password, &p.password_hash) {
        (Some(_), Some(_)) => {
            return Err(ApiError::bad("give password or password_hash, not both"))
        }
        (Some(pw), None) => Some(hash(pw)?),
        (None, Some(h)) => {
            password::check_hash(h).map_err(|e| ApiError::bad(e.to_string()))?;
            Some(h.clone())
        }
        (None, None) => None,
    };
    if let Some(f) = &forwards {
        let keep = p.keep_copy.unwrap_or(false);
        if !keep && f.iter().any(|t| t.key() == addr.key()) {
            return Err(ApiError::bad(
                "forwarding a user to itself: set keep_copy instead",
            ));
        }
    }
    let u = db
        .update_user(addr, move |u| {
            if let Some(q) = p.quota_bytes {
                u.quota_bytes = q;
            }
            if let Some(q) = p.quota_messages {
                u.quota_messages = q;
            }
            if let Some(s) = p.state {
                u.state = s;
            }
            if let Some(f) = forwards {
                u.forwards = f.iter().map(|a| a.to_string()).collect();
            }
            if let Some(k) = p.keep_copy {
                u.keep_copy = k;
            }
            u.keep_copy &= !u.forwards.is_empty();
            if let Some(h) = hash {
                u.password = h;
            }
            Ok(())
        })
        .map_err(db_error)?;
    Ok(user_json(&u, mail_root))
}

fn hash(pw: &str) -> Result<String, ApiError> {
    if pw.is_empty() || pw.len() > MAX_PASSWORD {
        return Err(ApiError::bad(format!(
            "a password must have 1 to {MAX_PASSWORD} bytes"
        )));
    }
    password::hash(pw.as_bytes()).map_err(|e| ApiError::bad(e.to_string()))
}

fn need_domain(db: &Lmdb, d: &str) -> Result<(), ApiError> {
    match db.domain(d).map_err(db_error)? {
        Some(_) => Ok(()),
        None => Err(ApiError::new(404, format!("no domain {d}"))),
    }
}

fn get_user(db: &Lmdb, a: &Address) -> Result<User, ApiError> {
    db.user(a)
        .map_err(db_error)?
        .ok_or_else(|| ApiError::new(404, format!("no user {a}")))
}

/// A user's quota and what the Maildir's `maildirsize` says is used (null
/// when it cannot be read: kmp-admind does not own the mailboxes, and never
/// recounts them).
fn usage_json(u: &User, mail_root: &Path) -> Value {
    let used = read_maildirsize(&u.maildir(mail_root));
    json!({
        "address": u.address,
        "quota_bytes": u.quota_bytes,
        "quota_messages": u.quota_messages,
        "used_bytes": used.map(|x| x.0),
        "used_messages": used.map(|x| x.1),
    })
}

/// The sums of a `maildirsize` file (its first line is the limits), read
/// only; None when there is none or it cannot be read.
pub fn read_maildirsize(maildir: &Path) -> Option<(u64, u64)> {
    use std::io::Read;
    let mut text = String::new();
    std::fs::File::open(maildir.join(crate::maildir::quota::MAILDIRSIZE))
        .ok()?
        .take(64 * 1024)
        .read_to_string(&mut text)
        .ok()?;
    let (mut bytes, mut messages) = (0i64, 0i64);
    for line in text.lines().skip(1) {
        let mut f = line.split_whitespace();
        let b = f.next().and_then(|x| x.parse::<i64>().ok());
        let m = f.next().and_then(|x| x.parse::<i64>().ok());
        if let (Some(b), Some(m)) = (b, m) {
            bytes = bytes.saturating_add(b);
            messages = messages.saturating_add(m);
        }
    }
    Some((bytes.max(0) as u64, messages.max(0) as u64))
}
