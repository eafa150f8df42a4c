//! GETMETADATA and SETMETADATA (RFC 5464): private (`/private/...`) and
//! shared (`/shared/...`) entries of the user's mailboxes and of the server
//! (mailbox `""`), kept by the store beside the Maildir. The server entries
//! `/shared/comment` and `/shared/admin` come from the configuration
//! (`imapd.metadata_comment`, `imapd.metadata_admin`) and cannot be set by a
//! client; every other server entry is the user's own, which is where the
//! webmail keeps its preferences and address book.
//!
//! The server entry [`DIRECTORY_ENTRY`] is the address book of the user's
//! own domain, made when asked for: a vCard per active user of the domain
//! (from kmp-authd), then the cards the domain's postmaster keeps in their
//! own [`POSTMASTER_ENTRY`]. Never another domain's; it cannot be set.

use super::store_error;
use crate::contacts::{vcard, Contact, DIRECTORY_ENTRY, POSTMASTER_ENTRY};
use crate::imapd::names;
use crate::imapd::session::{Action, Auth, Out, Session, State};
use crate::imapd::store::{Metadata, StoreError};
use crate::imapd::url::Accounts;
use crate::proto::imap::response::{Code, Response, Status};
use crate::proto::imap::{encode, MetadataDepth};

/// Server entries that come from the configuration.
const FROM_CONFIG: [&str; 2] = ["/shared/comment", "/shared/admin"];

pub fn get(
    s: &mut Session,
    tag: &str,
    arg: &[u8],
    wanted: &[String],
    max_size: Option<u32>,
    depth: MetadataDepth,
    out: &mut Out,
) -> Action {
    let Some(folder) = folder_arg(s, tag, arg, out) else {
        return Action::None;
    };
    let utf8 = s.enabled.utf8;
    let settings = s.settings.clone();
    let accounts = s.accounts.clone();
    let Some(auth) = auth(&mut s.state) else {
        return Action::None;
    };
    let mut entries = match auth.store.metadata(folder.as_deref()) {
        Ok(e) => e,
        Err(e) => {
            store_error(out, tag, &e);
            return Action::None;
        }
    };
    if folder.is_none() {
        for (name, value) in FROM_CONFIG
            .iter()
            .zip([&settings.metadata_comment, &settings.metadata_admin])
        {
            entries.remove(*name);
            if !value.is_empty() {
                entries.insert(name.to_string(), value.as_bytes().to_vec());
            }
        }
        entries.remove(DIRECTORY_ENTRY);
        let asked = wanted.iter().any(|w| {
            let w = w.to_ascii_lowercase();
            w == DIRECTORY_ENTRY
                || (depth != MetadataDepth::Zero && DIRECTORY_ENTRY.starts_with(&format!("{w}/")))
        });
        if let (true, Some(acc)) = (asked, accounts.as_deref()) {
            match directory(acc, &auth.user) {
                Ok(text) if !text.is_empty() => {
                    entries.insert(DIRECTORY_ENTRY.to_string(), text.into_bytes());
                }
                Ok(_) => {}
                Err(e) => {
                    store_error(out, tag, &e);
                    return Action::None;
                }
            }
        }
    }
    // RFC 5464 4.2.2: DEPTH 1 adds the entries one level below each one
    // asked for, infinity all below it.
    let mut found: Vec<(&String, Option<&Vec<u8>>)> = Vec::new();
    let mut longest = 0usize;
    for w in wanted {
        let below = format!("{w}/");
        let matches = entries.iter().filter(|(name, _)| {
            *name == w
                || name.strip_prefix(&below).is_some_and(|rest| match depth {
                    MetadataDepth::Zero => false,
                    MetadataDepth::One => !rest.contains('/'),
                    MetadataDepth::Infinity => true,
                })
        });
        let mut any = false;
        for (name, value) in matches {
            any = true;
            if found.iter().any(|(n, _)| *n == name) {
                continue;
            }
            // RFC 5464 4.2.1: values over MAXSIZE are left out, and the
            // client is told how large the largest was.
            if max_size.is_some_and(|m| value.len() > m as usize) {
                longest = longest.max(value.len());
                continue;
            }
            found.push((name, Some(value)));
        }
        if !any && depth == MetadataDepth::Zero {
            found.push((w, None));
        }
    }
    if !found.is_empty() {
        let mut line = b"* METADATA ".to_vec();
        mailbox(&mut line, folder.as_deref(), utf8);
        line.extend_from_slice(b" (");
        for (i, (name, value)) in found.iter().enumerate() {
            if i > 0 {
                line.push(b' ');
            }
            encode::astring(&mut line, name.as_bytes());
            line.push(b' ');
            match value {
                Some(v) if v.contains(&0) => encode::literal8(&mut line, v),
                Some(v) => encode::string(&mut line, v),
                None => line.extend_from_slice(b"NIL"),
            }
        }
        line.extend_from_slice(b")\r\n");
        out.buf.extend_from_slice(&line);
    }
    if longest > 0 {
        let code = format!("LONGENTRIES {longest}");
        out.send(Response::tagged(
            tag,
            Status::Ok,
            Some(Code::Metadata(&code)),
            "GETMETADATA completed",
        ));
    } else {
        out.send(Response::ok(tag, "GETMETADATA completed"));
    }
    Action::None
}

pub fn set(
    s: &mut Session,
    tag: &str,
    arg: &[u8],
    changes: &[(String, Option<Vec<u8>>)],
    out: &mut Out,
) -> Action {
    let Some(folder) = folder_arg(s, tag, arg, out) else {
        return Action::None;
    };
    let (max_size, max_entries) = (
        s.settings.metadata_max_size,
        s.settings.metadata_max_entries,
    );
    if let Some(big) = changes
        .iter()
        .filter_map(|(_, v)| v.as_ref().map(|v| v.len()))
        .find(|l| *l > max_size)
    {
        let _ = big;
        let code = format!("MAXSIZE {max_size}");
        out.send(Response::no(
            tag,
            Some(Code::Metadata(&code)),
            "Value too large",
        ));
        return Action::None;
    }
    if folder.is_none()
        && changes.iter().any(|(n, _)| {
            FROM_CONFIG.contains(&n.as_str()) || n.eq_ignore_ascii_case(DIRECTORY_ENTRY)
        })
    {
        out.send(Response::no(
            tag,
            Some(Code::NoPerm),
            "The administrator sets this entry",
        ));
        return Action::None;
    }
    let max_total = s.settings.metadata_max_total;
    let Some(auth) = auth(&mut s.state) else {
        return Action::None;
    };
    // The sum of the values, before and after: a change that grows it past
    // the bound is refused (one that shrinks it never is).
    match auth.store.metadata(folder.as_deref()) {
        Ok(now) => {
            let before: usize = now.values().map(Vec::len).sum();
            let mut after = now.clone();
            for (n, v) in changes {
                match v {
                    Some(v) => after.insert(n.to_ascii_lowercase(), v.clone()),
                    None => after.remove(&n.to_ascii_lowercase()),
                };
            }
            let total: usize = after.values().map(Vec::len).sum();
            if total > max_total && total > before {
                out.send(Response::no(
                    tag,
                    Some(Code::Metadata("TOOMANY")),
                    "Too much metadata",
                ));
                return Action::None;
            }
        }
        Err(StoreError::BadName(_)) | Err(StoreError::NoSuchFolder) => {
            store_error(out, tag, &StoreError::NoSuchFolder);
            return Action::None;
        }
        Err(e) => {
            store_error(out, tag, &e);
            return Action::None;
        }
    }
    match auth
        .store
        .set_metadata(folder.as_deref(), changes, max_entries)
    {
        Ok(true) => out.send(Response::ok(tag, "SETMETADATA completed")),
        Ok(false) => out.send(Response::no(
            tag,
            Some(Code::Metadata("TOOMANY")),
            "Too many entries",
        )),
        Err(StoreError::BadName(_)) | Err(StoreError::NoSuchFolder) => {
            store_error(out, tag, &StoreError::NoSuchFolder)
        }
        Err(e) => store_error(out, tag, &e),
    }
    Action::None
}

/// The address book of `user`'s domain: a card per active user, then the
/// postmaster's own cards (when the postmaster is a user of the domain).
fn directory(acc: &dyn Accounts, user: &str) -> Result<String, StoreError> {
    let Some((_, domain)) = user.rsplit_once('@') else {
        return Ok(String::new());
    };
    let mut text = String::new();
    for address in acc.domain_users(domain)? {
        // Only the domain's own: the list is asked by name, but a user's
        // domain is the one thing that decides what they see.
        let Some((local, d)) = address.rsplit_once('@') else {
            continue;
        };
        if !d.eq_ignore_ascii_case(domain) {
            continue;
        }
        let card = Contact {
            full_name: local.to_string(),
            emails: vec![address.clone()],
            ..Contact::default()
        };
        text.push_str(&vcard::write(&card, vcard::Version::V4));
    }
    if let Some(mut pm) = acc.open(&format!("postmaster@{domain}"))? {
        if let Some(v) = pm.metadata(None)?.get(POSTMASTER_ENTRY) {
            text.push_str(&String::from_utf8_lossy(v));
        }
    }
    Ok(text)
}

/// The folder a METADATA command is about: None for the server (`""`).
fn folder_arg(s: &Session, tag: &str, arg: &[u8], out: &mut Out) -> Option<Option<String>> {
    if arg.is_empty() {
        return Some(None);
    }
    super::mailbox_name(s, tag, arg, out).map(Some)
}

fn auth(state: &mut State) -> Option<&mut Auth> {
    match state {
        State::Authenticated(a) | State::Selected(a, _) => Some(a),
        _ => None,
    }
}

/// The mailbox as a METADATA response names it.
pub fn mailbox(line: &mut Vec<u8>, folder: Option<&str>, utf8: bool) {
    match folder {
        None => line.extend_from_slice(b"\"\""),
        Some(n) => names::write(line, n, utf8),
    }
}

/// Names of entries that differ between two readings (NOTIFY).
pub fn changed(a: &Metadata, b: &Metadata) -> Vec<String> {
    let mut v: Vec<String> = a
        .iter()
        .filter(|(k, val)| b.get(*k) != Some(val))
        .map(|(k, _)| k.clone())
        .collect();
    v.extend(b.keys().filter(|k| !a.contains_key(*k)).cloned());
    v.sort();
    v
}
