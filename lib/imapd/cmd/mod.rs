//! One handler per command (or per small family), and what they share.

pub mod any;
pub mod append;
pub mod copy;
pub mod expunge;
pub mod fetch;
pub mod folders;
pub mod list;
pub mod login;
pub mod metadata;
pub mod notify;
pub mod quota;
pub mod search;
pub mod select;
pub mod sort;
pub mod status;
pub mod store;
pub mod thread;
pub mod urlauth;

use std::io;

use super::session::{Action, Out, Session, State};
use super::store::StoreError;
use super::view::View;
use crate::proto::imap::response::{Code, Response};
use crate::proto::imap::{CommandBody, SeqSet};

/// Runs a command already allowed in the session's state.
pub fn run(s: &mut Session, tag: String, body: CommandBody, out: &mut Out) -> io::Result<Action> {
    use CommandBody::*;
    let mut body = body;
    if let State::Selected(_, view) = &s.state {
        search::resolve_saved(&mut body, view);
    }
    let action = match body {
        Capability => any::capability(s, &tag, out),
        Noop | Check => {
            s.poll(out, true);
            let text = if matches!(body, Noop) {
                "NOOP completed"
            } else {
                "CHECK completed"
            };
            out.send(Response::ok(&tag, text));
            Action::None
        }
        Logout => {
            out.send(Response::bye("Logging out"));
            out.send(Response::ok(&tag, "LOGOUT completed"));
            s.state = State::Logout;
            Action::Close
        }
        Id(fields) => any::id(s, &tag, fields.as_deref(), out),
        Enable(caps) => any::enable(s, &tag, &caps, out),
        Namespace => any::namespace(s, &tag, out),
        StartTls => login::starttls(s, &tag, out),
        Login { user, password } => login::login(s, tag, user, password, out),
        Authenticate { mechanism, initial } => {
            login::authenticate(s, tag, &mechanism, initial, out)
        }
        Select {
            mailbox,
            examine,
            condstore,
            qresync,
        } => select::select(s, &tag, &mailbox, examine, condstore, qresync, out),
        Close => select::close(s, &tag, out, true),
        Unselect => select::close(s, &tag, out, false),
        Create(m) => folders::create(s, &tag, &m, out),
        Delete(m) => folders::delete(s, &tag, &m, out),
        Rename { from, to } => folders::rename(s, &tag, &from, &to, out),
        Subscribe(m) => folders::subscribe(s, &tag, &m, true, out),
        Unsubscribe(m) => folders::subscribe(s, &tag, &m, false, out),
        List(args) => list::list(s, &tag, &args, out),
        Status { mailbox, items } => status::status(s, &tag, &mailbox, &items, out),
        Append { mailbox, messages } => append::append(s, &tag, &mailbox, messages, out),
        GenUrlAuth(urls) => urlauth::genurlauth(s, &tag, &urls, out),
        ResetKey {
            mailbox,
            mechanisms,
        } => urlauth::resetkey(s, &tag, mailbox.as_deref(), &mechanisms, out),
        UrlFetch(urls) => urlauth::urlfetch(s, &tag, &urls, out)?,
        Idle => {
            s.poll(out, true);
            out.send(Response::Continue("idling"));
            Action::Idle { tag }
        }
        GetQuota(root) => quota::get_quota(s, &tag, &root, out),
        GetQuotaRoot(m) => quota::get_quota_root(s, &tag, &m, out),
        SetQuota(_) => {
            out.send(Response::no(
                &tag,
                Some(Code::NoPerm),
                "Quotas are set by the administrator",
            ));
            Action::None
        }
        GetMetadata {
            mailbox,
            entries,
            max_size,
            depth,
        } => metadata::get(s, &tag, &mailbox, &entries, max_size, depth, out),
        SetMetadata { mailbox, entries } => metadata::set(s, &tag, &mailbox, &entries, out),
        Notify(set) => notify::notify(s, &tag, set, out),
        Expunge { uids } => expunge::expunge(s, &tag, uids.as_ref(), out),
        Search {
            uid,
            ret,
            charset,
            key,
        } => search::search(s, &tag, uid, ret, charset.as_deref(), &key, out)?,
        Sort {
            uid,
            ret,
            criteria,
            charset,
            key,
        } => sort::sort(s, &tag, uid, ret, &criteria, &charset, &key, out)?,
        Thread {
            uid,
            algorithm,
            charset,
            key,
        } => thread::thread(s, &tag, uid, algorithm, &charset, &key, out)?,
        Fetch {
            uid,
            set,
            atts,
            changed_since,
            vanished,
        } => fetch::fetch(s, &tag, uid, &set, &atts, changed_since, vanished, out)?,
        Store {
            uid,
            set,
            mode,
            silent,
            flags,
            unchanged_since,
        } => store::store(
            s,
            &tag,
            uid,
            &set,
            mode,
            silent,
            &flags,
            unchanged_since,
            out,
        ),
        Copy { uid, set, mailbox } => copy::copy(s, &tag, uid, &set, &mailbox, false, out),
        Move { uid, set, mailbox } => copy::copy(s, &tag, uid, &set, &mailbox, true, out),
        CancelUpdate(tags) => crate::imapd::context::cancel(s, &tag, &tags, out),
        Unknown(verb) => {
            out.send(Response::bad(&tag, &format!("Unknown command {verb}")));
            Action::None
        }
    };
    Ok(action)
}

/// `TAG NO [code] text` for a store error.
pub fn store_error(out: &mut Out, tag: &str, e: &StoreError) {
    let code = match e {
        StoreError::NoSuchFolder => Code::Nonexistent,
        StoreError::Exists => Code::AlreadyExists,
        StoreError::BadName(_) | StoreError::Refused(_) => Code::Cannot,
        StoreError::OverQuota => Code::OverQuota,
        StoreError::Gone => Code::ExpungeIssued,
        StoreError::Temporary(_) => Code::Unavailable,
    };
    out.send(Response::no(tag, Some(code), &e.to_string()));
}

/// Decodes a mailbox argument or answers NO.
pub fn mailbox_name(s: &Session, tag: &str, arg: &[u8], out: &mut Out) -> Option<String> {
    match super::names::decode(arg, s.enabled.utf8) {
        Ok(n) => Some(n),
        Err(why) => {
            out.send(Response::no(tag, Some(Code::Cannot), why));
            None
        }
    }
}

/// The view's indices a set names (sequence numbers or UIDs).
pub fn resolve(view: &View, set: &SeqSet, uid: bool) -> Vec<usize> {
    let mut idx = Vec::new();
    if uid {
        let max = view.max_uid();
        let mut ranges: Vec<(u32, u32)> = set.ranges(max).collect();
        ranges.sort_unstable();
        // Walk messages and ranges together: O(messages + ranges).
        let mut r = 0;
        for (i, m) in view.msgs.iter().enumerate() {
            let u = m.meta.uid;
            while r < ranges.len() && ranges[r].1 < u {
                r += 1;
            }
            if r == ranges.len() {
                break;
            }
            if ranges[r..]
                .iter()
                .take_while(|(lo, _)| *lo <= u)
                .any(|(_, hi)| u <= *hi)
            {
                idx.push(i);
            }
        }
    } else {
        let n = view.exists();
        let mut seen = vec![false; n as usize];
        for (lo, hi) in set.ranges(n) {
            let lo = lo.max(1);
            let hi = hi.min(n);
            for k in lo..=hi {
                seen[(k - 1) as usize] = true;
            }
        }
        idx.extend(seen.iter().enumerate().filter(|(_, s)| **s).map(|(i, _)| i));
    }
    idx
}

/// Whether every number of a sequence set is a valid message number
/// (RFC 9051 6.4.5: "BAD" otherwise, RFC 3501 is lax).
pub fn seq_in_range(view: &View, set: &SeqSet) -> bool {
    let n = view.exists();
    set.0.iter().all(|(a, b)| {
        [a, b].iter().all(|x| match x {
            crate::proto::imap::SeqNo::Value(v) => *v <= n,
            crate::proto::imap::SeqNo::Star => n > 0,
        })
    })
}

/// UIDs as a compact set: `1:3,7`.
pub fn uid_set(uids: &[u32]) -> String {
    let mut v: Vec<u32> = uids.to_vec();
    v.sort_unstable();
    search::ordered_set(&v)
}
