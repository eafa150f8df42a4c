//! Commands of the selected state but FETCH and SEARCH (RFC 3501 6.4):
//! CHECK, CLOSE, UNSELECT (RFC 3691), EXPUNGE, STORE, COPY, MOVE (RFC 6851),
//! and their UID forms (UID EXPUNGE from RFC 4315).

use super::lexer::{Cursor, Fail, Res};
use super::types::{CommandBody, StoreMode};

/// The command `verb`, if it belongs to this family; `uid` after `UID`.
pub fn parse(verb: &str, c: &mut Cursor, uid: bool) -> Res<Option<CommandBody>> {
    Ok(Some(match verb {
        "CHECK" if !uid => CommandBody::Check,
        "CLOSE" if !uid => CommandBody::Close,
        "UNSELECT" if !uid => CommandBody::Unselect,
        "EXPUNGE" => {
            if uid {
                c.sp()?;
                CommandBody::Expunge {
                    uids: Some(c.seq_set()?),
                }
            } else {
                CommandBody::Expunge { uids: None }
            }
        }
        "STORE" => {
            c.sp()?;
            let set = c.seq_set()?;
            c.sp()?;
            let mut unchanged_since = None;
            if c.eat(b"(UNCHANGEDSINCE ") {
                unchanged_since = Some(c.number64()?);
                c.expect(b") ")?;
            }
            let mode = if c.eat(b"+") {
                StoreMode::Add
            } else if c.eat(b"-") {
                StoreMode::Remove
            } else {
                StoreMode::Replace
            };
            if !c.eat(b"FLAGS") {
                return Err(Fail("Expected FLAGS, +FLAGS or -FLAGS".into()));
            }
            let silent = c.eat(b".SILENT");
            c.sp()?;
            let flags = c.store_flags()?;
            CommandBody::Store {
                uid,
                set,
                mode,
                silent,
                flags,
                unchanged_since,
            }
        }
        "CANCELUPDATE" if !uid => {
            // RFC 5267 4.3.5: "CANCELUPDATE" 1*(SP quoted).
            let mut tags = Vec::new();
            while c.eat(b" ") {
                if tags.len() >= super::MAX_LIST_ITEMS {
                    return Err(Fail("Too many tags".into()));
                }
                if c.peek() != Some(b'"') {
                    return Err(Fail("CANCELUPDATE takes quoted tags".into()));
                }
                tags.push(String::from_utf8_lossy(&c.string()?).into_owned());
            }
            if tags.is_empty() {
                return Err(Fail("CANCELUPDATE needs a tag".into()));
            }
            CommandBody::CancelUpdate(tags)
        }
        "COPY" | "MOVE" => {
            c.sp()?;
            let set = c.seq_set()?;
            c.sp()?;
            let mailbox = c.mailbox()?;
            if verb == "COPY" {
                CommandBody::Copy { uid, set, mailbox }
            } else {
                CommandBody::Move { uid, set, mailbox }
            }
        }
        _ => return Ok(None),
    }))
}
