//! CREATE, DELETE, RENAME (RFC 3501 6.3.3-5), SUBSCRIBE and UNSUBSCRIBE
//! (6.3.6-7).

use super::{mailbox_name, store_error};
use crate::imapd::session::{Action, Auth, Out, Session, State};
use crate::imapd::store::StoreError;
use crate::proto::imap::response::{Code, Response};

fn auth(s: &mut Session) -> Option<&mut Auth> {
    match &mut s.state {
        State::Authenticated(a) | State::Selected(a, _) => Some(a),
        _ => None,
    }
}

pub fn create(s: &mut Session, tag: &str, arg: &[u8], out: &mut Out) -> Action {
    let Some(name) = mailbox_name(s, tag, arg, out) else {
        return Action::None;
    };
    if name == "INBOX" {
        out.send(Response::no(
            tag,
            Some(Code::AlreadyExists),
            "INBOX always exists",
        ));
        return Action::None;
    }
    let Some(a) = auth(s) else {
        return Action::None;
    };
    match a.store.create(&name) {
        Ok(()) => out.send(Response::ok(tag, "CREATE completed")),
        Err(e) => store_error(out, tag, &e),
    }
    Action::None
}

pub fn delete(s: &mut Session, tag: &str, arg: &[u8], out: &mut Out) -> Action {
    let Some(name) = mailbox_name(s, tag, arg, out) else {
        return Action::None;
    };
    if name == "INBOX" {
        out.send(Response::no(
            tag,
            Some(Code::Cannot),
            "INBOX cannot be deleted",
        ));
        return Action::None;
    }
    if let State::Selected(_, v) = &s.state {
        if v.name == name {
            out.send(Response::no(tag, Some(Code::InUse), "Mailbox is selected"));
            return Action::None;
        }
    }
    let Some(a) = auth(s) else {
        return Action::None;
    };
    match a.store.delete(&name) {
        Ok(()) => out.send(Response::ok(tag, "DELETE completed")),
        // RFC 9051 6.3.5: a name that is only the parent of others (LIST
        // shows it \Noselect) cannot be deleted: HASCHILDREN says why.
        Err(StoreError::NoSuchFolder) if has_children(a, &name) => out.send(Response::no(
            tag,
            Some(Code::HasChildren),
            "Mailbox has children",
        )),
        Err(e) => store_error(out, tag, &e),
    }
    Action::None
}

fn has_children(a: &mut Auth, name: &str) -> bool {
    let below = format!("{name}{}", crate::imapd::names::DELIMITER);
    a.store
        .folders()
        .is_ok_and(|f| f.iter().any(|f| f.name.starts_with(&below)))
}

pub fn rename(s: &mut Session, tag: &str, from: &[u8], to: &[u8], out: &mut Out) -> Action {
    let Some(from) = mailbox_name(s, tag, from, out) else {
        return Action::None;
    };
    let Some(to) = mailbox_name(s, tag, to, out) else {
        return Action::None;
    };
    if to == "INBOX" {
        out.send(Response::no(
            tag,
            Some(Code::AlreadyExists),
            "INBOX always exists",
        ));
        return Action::None;
    }
    let Some(a) = auth(s) else {
        return Action::None;
    };
    match a.store.rename(&from, &to) {
        Ok(()) => out.send(Response::ok(tag, "RENAME completed")),
        Err(e) => store_error(out, tag, &e),
    }
    Action::None
}

pub fn subscribe(s: &mut Session, tag: &str, arg: &[u8], on: bool, out: &mut Out) -> Action {
    let Some(name) = mailbox_name(s, tag, arg, out) else {
        return Action::None;
    };
    let done = if on {
        "SUBSCRIBE completed"
    } else {
        "UNSUBSCRIBE completed"
    };
    let Some(a) = auth(s) else {
        return Action::None;
    };
    match a.store.set_subscribed(&name, on) {
        Ok(()) => out.send(Response::ok(tag, done)),
        Err(e) => store_error(out, tag, &e),
    }
    Action::None
}
