//! GENURLAUTH, RESETKEY and URLFETCH (RFC 4467), with URLFETCH's BINARY,
//! BODY and BODYPARTSTRUCTURE (RFC 5524). The checks of a URLAUTH URL are
//! in `imapd::url`; the key beside each folder in `maildir::urlauth`.

use crate::proto::imap::response::{
    url_data, urlfetch_close, urlfetch_open, Code, Data, Response, UrlData, UrlItem,
};
use std::io;

use super::{mailbox_name, store_error};
use crate::imapd::message;
use crate::imapd::session::{Action, Out, Session, State};
use crate::imapd::store::StoreError;
use crate::imapd::url::{self, Asker, Refused, MECHANISM};
use crate::proto::imap::url as imap_url;
use crate::proto::imap::UrlFetchArg;

/// GENURLAUTH url-rump mechanism ... (RFC 4467 6.1).
pub fn genurlauth(s: &mut Session, tag: &str, urls: &[(Vec<u8>, String)], out: &mut Out) -> Action {
    let (State::Authenticated(auth) | State::Selected(auth, _)) = &mut s.state else {
        return Action::None;
    };
    let mut full = Vec::with_capacity(urls.len());
    for (rump, mech) in urls {
        if mech != MECHANISM {
            out.send(Response::no(
                tag,
                None,
                &format!("Unknown URLAUTH mechanism {mech}"),
            ));
            return Action::None;
        }
        let u = match imap_url::parse(rump) {
            Ok(u) => u,
            Err(e) => {
                out.send(Response::no(tag, None, &format!("Bad URL: {}", e.0)));
                return Action::None;
            }
        };
        let is_rump = u
            .urlauth
            .as_ref()
            .is_some_and(|a| a.verifier.is_none() && a.rump_len == rump.len());
        if !u.absolute || !is_rump {
            out.send(Response::no(
                tag,
                None,
                "Not a URLAUTH rump (imap://user@host/...;URLAUTH=access)",
            ));
            return Action::None;
        }
        // RFC 4467 6.1: only the mailbox's owner signs URLs for it.
        if !u
            .owner()
            .is_some_and(|o| o.eq_ignore_ascii_case(&auth.user))
        {
            out.send(Response::no(tag, None, "URL names another user's mailbox"));
            return Action::None;
        }
        let key = match auth.store.urlauth_key(&u.mailbox, true) {
            Ok(Some(k)) => k,
            Ok(None) | Err(StoreError::NoSuchFolder) => {
                out.send(Response::no(
                    tag,
                    Some(Code::Nonexistent),
                    "No such mailbox",
                ));
                return Action::None;
            }
            Err(e) => {
                store_error(out, tag, &e);
                return Action::None;
            }
        };
        let mut f = rump.clone();
        f.extend_from_slice(format!(":internal:{}", url::token(&key, rump)).as_bytes());
        full.push(f);
    }
    out.send(Response::Data(Data::GenUrlAuth(
        full.iter().map(|f| f.as_slice()).collect(),
    )));
    out.send(Response::ok(tag, "GENURLAUTH completed"));
    Action::None
}

/// RESETKEY [mailbox [mechanism ...]] (RFC 4467 6.2).
pub fn resetkey(
    s: &mut Session,
    tag: &str,
    mailbox: Option<&[u8]>,
    mechanisms: &[String],
    out: &mut Out,
) -> Action {
    if let Some(m) = mechanisms.iter().find(|m| *m != MECHANISM) {
        out.send(Response::no(
            tag,
            None,
            &format!("Unknown URLAUTH mechanism {m}"),
        ));
        return Action::None;
    }
    let name = match mailbox {
        Some(arg) => match mailbox_name(s, tag, arg, out) {
            Some(n) => Some(n),
            None => return Action::None,
        },
        None => None,
    };
    let (State::Authenticated(auth) | State::Selected(auth, _)) = &mut s.state else {
        return Action::None;
    };
    match auth.store.reset_urlauth_keys(name.as_deref()) {
        Ok(()) => out.send(Response::ok(tag, "RESETKEY completed")),
        Err(e) => store_error(out, tag, &e),
    }
    Action::None
}

/// URLFETCH url ... (RFC 4467 6.3, RFC 5524): one untagged response with
/// each URL and its content, NIL for a URL that is bad or not authorised.
pub fn urlfetch(
    s: &mut Session,
    tag: &str,
    urls: &[UrlFetchArg],
    out: &mut Out,
) -> io::Result<Action> {
    let accounts = s.accounts.clone();
    let (State::Authenticated(auth) | State::Selected(auth, _)) = &mut s.state else {
        return Ok(Action::None);
    };
    urlfetch_open(&mut out.buf);
    for a in urls {
        let asker = Asker::User {
            name: &auth.user,
            store: auth.store.as_mut(),
        };
        let r = url::authorized(&a.url, asker, accounts.as_deref(), now());
        if let Err(Refused::Temporary(m)) = &r {
            crate::warn!("imap URLFETCH store failure: {m}");
        }
        out.buf.push(b' ');
        fetch_data(&mut out.buf, a, r.ok());
        out.maybe_flush()?;
    }
    urlfetch_close(&mut out.buf);
    out.send(Response::ok(tag, "URLFETCH completed"));
    Ok(Action::None)
}

/// One URL's part of a URLFETCH response: `url content`, `url NIL`, or
/// `url (BODYPARTSTRUCTURE ... BINARY ...)` for the extended form. The
/// extended items are sent in one list, as Dovecot does and imaptest and
/// the clients written against it expect (RFC 5524's grammar puts each
/// item in a list of its own).
pub fn fetch_data(out: &mut Vec<u8>, a: &UrlFetchArg, found: Option<(imap_url::ImapUrl, Vec<u8>)>) {
    let Some((u, wire)) = found else {
        return url_data(out, &a.url, &UrlData::Nil);
    };
    let extended = a.extended && (a.binary || a.body || a.body_part_structure);
    if !extended {
        let content = url::content(&u, &wire);
        let data = content.as_deref().map_or(UrlData::Nil, UrlData::Content);
        return url_data(out, &a.url, &data);
    }
    let parsed = message::parse(&wire);
    let part_only = u.section.text.is_none();
    let part = if part_only {
        &u.section.part[..]
    } else {
        &[][..]
    };
    let mut items = Vec::new();
    if a.body_part_structure {
        // With BINARY, the structure describes the decoded data (RFC 5524
        // 3.2): sizes and lines after decoding, the labels as they were.
        let decoded = (a.binary && part_only)
            .then(|| message::binary_converted(&wire, parsed.as_ref(), part, false, true).ok())
            .flatten();
        let found = match &decoded {
            Some(d) if !part.is_empty() => {
                let p = message::parse(d);
                message::part_body_structure(p.as_ref(), d, &[])
            }
            _ => message::part_body_structure(parsed.as_ref(), &wire, part),
        };
        let Some(bs) = found else {
            return url_data(out, &a.url, &UrlData::Nil);
        };
        items.push(UrlItem::BodyPartStructure(bs));
    }
    let content;
    if a.body || a.binary {
        let Some(raw) = url::content(&u, &wire) else {
            return url_data(out, &a.url, &UrlData::Nil);
        };
        content = if a.body || !part_only {
            Some(raw)
        } else {
            message::binary_converted(&wire, parsed.as_ref(), part, true, false)
                .ok()
                .map(|d| partial(d, u.partial))
        };
        items.push(if a.body {
            UrlItem::Body(content.as_deref().unwrap_or_default())
        } else {
            UrlItem::Binary(content.as_deref())
        });
    }
    url_data(out, &a.url, &UrlData::Extended(items));
}

fn partial(d: Vec<u8>, p: Option<(u32, Option<u32>)>) -> Vec<u8> {
    match p {
        None => d,
        Some((start, len)) => {
            let a = (start as usize).min(d.len());
            let b = len.map_or(d.len(), |l| a.saturating_add(l as usize).min(d.len()));
            d[a..b].to_vec()
        }
    }
}

/// Seconds since the epoch.
fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}
