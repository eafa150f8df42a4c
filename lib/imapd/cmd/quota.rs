//! GETQUOTA and GETQUOTAROOT (RFC 9208), from the user's `maildirsize`.
//! One quota root, `""`, holds every folder.

use super::{mailbox_name, store_error};
use crate::imapd::session::{Action, Out, Session, State};
use crate::proto::imap::response::{Code, Data, Response};

fn quota_line(s: &mut Session, out: &mut Out) -> Result<(), crate::imapd::store::StoreError> {
    let auth = match &mut s.state {
        State::Authenticated(a) | State::Selected(a, _) => a,
        _ => return Ok(()),
    };
    let q = auth.store.quota()?;
    let mut resources = Vec::new();
    if q.limit_bytes > 0 {
        // STORAGE is in units of 1024 octets.
        resources.push(("STORAGE", q.used_bytes.div_ceil(1024), q.limit_bytes / 1024));
    }
    if q.limit_messages > 0 {
        resources.push(("MESSAGE", q.used_messages, q.limit_messages));
    }
    out.send(Response::Data(Data::Quota {
        root: "",
        resources,
    }));
    Ok(())
}

pub fn get_quota(s: &mut Session, tag: &str, root: &[u8], out: &mut Out) -> Action {
    if !root.is_empty() {
        out.send(Response::no(
            tag,
            Some(Code::Nonexistent),
            "No such quota root",
        ));
        return Action::None;
    }
    match quota_line(s, out) {
        Ok(()) => out.send(Response::ok(tag, "GETQUOTA completed")),
        Err(e) => store_error(out, tag, &e),
    }
    Action::None
}

pub fn get_quota_root(s: &mut Session, tag: &str, arg: &[u8], out: &mut Out) -> Action {
    let Some(name) = mailbox_name(s, tag, arg, out) else {
        return Action::None;
    };
    out.send(Response::Data(Data::QuotaRoot {
        mailbox: &name,
        roots: vec![""],
    }));
    match quota_line(s, out) {
        Ok(()) => out.send(Response::ok(tag, "GETQUOTAROOT completed")),
        Err(e) => store_error(out, tag, &e),
    }
    Action::None
}
