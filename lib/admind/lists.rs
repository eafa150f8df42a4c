//! What the list calls do. A list's record is in the user database and is
//! written here, as kmpctl writes it; its state (members, held posts) lives
//! under the mail directory, owned by the delivery user, which kmp-admind
//! is not and must not become: those calls are requests to kmp-local over
//! `RUN/lists.sock` ([`crate::ipc::listreq`]), which performs them with the
//! functions its own list delivery uses. kmp-local not running is a 503
//! and changes nothing.

use std::path::Path;

use serde_json::{json, Value};

use super::api::{ApiError, Call, ListPatch};
use super::authz::Caller;
use super::handlers::db_error;
use crate::ipc::listreq::{self, ErrorKind, Reply, Request};
use crate::lists::List;
use crate::userdb::lmdb::Lmdb;
use crate::userdb::{Address, DbError, Directory};

/// Whether `call` is one of the list calls this module performs.
pub fn handles(call: &Call) -> bool {
    matches!(
        call,
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
            | Call::HeldReject { .. }
    )
}

/// Performs a list call (already authorised) for `c`.
pub fn execute(db: &Lmdb, socket: &Path, c: &Caller, call: Call) -> Result<Value, ApiError> {
    match call {
        Call::ListAdd {
            address,
            body,
            owners,
            moderators,
        } => {
            if db.domain(address.domain()).map_err(db_error)?.is_none() {
                return Err(ApiError::new(
                    404,
                    format!("no domain {}", address.domain()),
                ));
            }
            let mut l = List::new(&address, crate::userdb::now());
            l.owners = match owners {
                Some(o) if !o.is_empty() => o.iter().map(|a| a.to_string()).collect(),
                _ => vec![c.user.clone()],
            };
            l.moderators = moderators.iter().map(|a| a.to_string()).collect();
            l.description = body.description.unwrap_or_default();
            if let Some(p) = body.policy {
                l.policy = p;
            }
            db.add_list(&l).map_err(db_error)?;
            Ok(serde_json::to_value(&l).unwrap_or_default())
        }
        Call::ListSet { address, patch } => {
            let ceiling = db
                .domain(address.domain())
                .map_err(db_error)?
                .and_then(|d| d.limits.max_message_bytes);
            let l = db
                .update_list(&address, |l| apply(l, &patch, ceiling))
                .map_err(db_error)?;
            Ok(serde_json::to_value(&l).unwrap_or_default())
        }
        Call::ListDel(address) => {
            let l = record(db, &address)?;
            // The state first: were kmp-local down, nothing is deleted; a
            // list made again under this name never finds old members.
            ask(socket, &l, c, Request::Remove)?;
            let l = db.del_list(&address).map_err(db_error)?;
            Ok(json!({"deleted": {"list": l.address}}))
        }
        Call::Members {
            list,
            offset,
            limit,
        } => {
            let l = record(db, &list)?;
            match ask(socket, &l, c, Request::Members { offset, limit })? {
                Reply::Members { total, members } => Ok(json!({"list": l.address,
                    "total": total, "offset": offset, "members": members})),
                r => Err(unexpected(r)),
            }
        }
        Call::MembersAdd {
            list,
            members,
            digest,
        } => {
            let l = record(db, &list)?;
            for m in &members {
                crate::lists::address::check_member(&m.to_string()).map_err(ApiError::bad)?;
                if crate::ctl::list::leads_to(db, m, &l)
                    .map_err(|e| ApiError::new(503, e.message))?
                {
                    return Err(ApiError::bad(format!(
                        "{m} leads back to the list {} (directly or through aliases): \
                         a list cannot be its own member",
                        l.address
                    )));
                }
            }
            let addresses = members.iter().map(|a| a.to_string()).collect();
            match ask(socket, &l, c, Request::Subscribe { addresses, digest })? {
                Reply::Subscribed { added, already } => {
                    Ok(json!({"list": l.address, "subscribed": added, "already": already}))
                }
                r => Err(unexpected(r)),
            }
        }
        Call::MemberSet {
            list,
            member,
            patch,
        } => {
            let l = record(db, &list)?;
            let req = Request::SetMember {
                address: member.to_string(),
                digest: patch.digest,
                nomail: patch.nomail,
            };
            match ask(socket, &l, c, req)? {
                Reply::Member { member } => Ok(json!({"list": l.address, "member": member})),
                r => Err(unexpected(r)),
            }
        }
        Call::MemberDel { list, member } => {
            let l = record(db, &list)?;
            let req = Request::Unsubscribe {
                address: member.to_string(),
            };
            ask(socket, &l, c, req)?;
            Ok(json!({"list": l.address, "unsubscribed": member.to_string()}))
        }
        Call::Held(list) => {
            let l = record(db, &list)?;
            match ask(socket, &l, c, Request::Held)? {
                Reply::Held { posts } => Ok(json!({"list": l.address, "held": posts})),
                r => Err(unexpected(r)),
            }
        }
        Call::HeldShow { list, id } => {
            let l = record(db, &list)?;
            match ask(socket, &l, c, Request::HeldShow { id })? {
                Reply::Preview { post } => Ok(serde_json::to_value(post).unwrap_or_default()),
                r => Err(unexpected(r)),
            }
        }
        Call::HeldApprove { list, id } => {
            let l = record(db, &list)?;
            match ask(socket, &l, c, Request::Approve { id: id.clone() })? {
                Reply::Done { text } => {
                    Ok(json!({"approved": {"list": l.address, "id": id}, "text": text}))
                }
                r => Err(unexpected(r)),
            }
        }
        Call::HeldReject { list, id, reason } => {
            let l = record(db, &list)?;
            let req = Request::Reject {
                id: id.clone(),
                reason: reason.clone(),
            };
            match ask(socket, &l, c, req)? {
                Reply::Done { text } => Ok(json!({"rejected": {"list": l.address, "id": id,
                    "reason": reason}, "text": text})),
                r => Err(unexpected(r)),
            }
        }
        _ => Err(ApiError::new(500, "not a list call")),
    }
}

/// Applies a patch to a list record; a size limit above the domain's
/// message size ceiling is refused.
fn apply(l: &mut List, p: &ListPatch, ceiling: Option<u64>) -> Result<(), DbError> {
    if let Some(v) = &p.description {
        l.description = v.clone();
    }
    if let Some(v) = p.policy {
        l.policy = v;
    }
    if let Some(v) = p.non_member {
        l.non_member = v;
    }
    if let Some(v) = &p.moderators {
        l.moderators = normalised(v)?;
    }
    if let Some(v) = &p.posters {
        l.posters = normalised(v)?;
    }
    if let Some(v) = &p.owners {
        if v.is_empty() {
            return Err(DbError::Invalid("a list needs at least one owner".into()));
        }
        l.owners = normalised(v)?;
    }
    if let Some(v) = &p.subject_prefix {
        l.subject_prefix = v.trim().to_string();
    }
    if let Some(v) = &p.footer {
        l.footer = v.replace("\r\n", "\n").trim_end().to_string();
    }
    if let Some(v) = p.max_size {
        if let Some(c) = ceiling.filter(|c| v > *c) {
            return Err(DbError::Limit(format!(
                "max_size {v} is above the domain's message size limit {c}"
            )));
        }
        l.max_size = v;
    }
    if let Some(v) = p.subscribe_approval {
        l.subscribe_approval = v;
    }
    if let Some(v) = p.digest {
        l.digest.enabled = v;
    }
    Ok(())
}

fn normalised(v: &[String]) -> Result<Vec<String>, DbError> {
    v.iter()
        .map(|a| {
            Address::parse(a)
                .map(|a| a.to_string())
                .map_err(DbError::from)
        })
        .collect()
}

fn record(db: &Lmdb, a: &Address) -> Result<List, ApiError> {
    db.list(a)
        .map_err(db_error)?
        .ok_or_else(|| ApiError::new(404, format!("no list {a}")))
}

/// One request to kmp-local; its refusals as the API's statuses.
fn ask(socket: &Path, l: &List, c: &Caller, req: Request) -> Result<Reply, ApiError> {
    match listreq::call(socket, l, &c.user, req) {
        Ok(Reply::Error { kind, message }) => Err(ApiError::new(
            match kind {
                ErrorKind::NotFound => 404,
                ErrorKind::BadRequest => 400,
                ErrorKind::Denied => 500,
                ErrorKind::Temporary => 503,
            },
            message,
        )),
        Ok(r) => Ok(r),
        Err(e) => {
            crate::warn!("lists: {e}");
            Err(ApiError::new(
                503,
                "the list's state cannot be reached now (kmp-local): try again later",
            ))
        }
    }
}

fn unexpected(r: Reply) -> ApiError {
    ApiError::new(500, format!("kmp-local answered something else: {r:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_patch_keeps_within_the_domains_ceiling() {
        let mut l = List::new(&Address::parse("dev@a.test").unwrap(), 1);
        let p = ListPatch {
            max_size: Some(2000),
            footer: Some("bye\r\n".into()),
            moderators: Some(vec!["M@A.test".into()]),
            ..ListPatch::default()
        };
        assert!(matches!(
            apply(&mut l, &p, Some(1000)),
            Err(DbError::Limit(_))
        ));
        apply(&mut l, &p, Some(5000)).unwrap();
        assert_eq!(l.max_size, 2000);
        assert_eq!(l.footer, "bye");
        assert_eq!(l.moderators, ["M@a.test"]);
        let none = ListPatch {
            owners: Some(vec![]),
            ..ListPatch::default()
        };
        assert!(apply(&mut l, &none, None).is_err());
    }
}
