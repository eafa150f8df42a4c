//! Commands on mailboxes in the authenticated state (RFC 3501 6.3, RFC 9051
//! 6.3): SELECT, EXAMINE, CREATE, DELETE, RENAME, SUBSCRIBE, UNSUBSCRIBE,
//! LIST (with LIST-EXTENDED, RFC 5258, and LIST-STATUS, RFC 5819), LSUB,
//! NAMESPACE (RFC 2342), STATUS, APPEND, IDLE (RFC 2177) and QUOTA (RFC 9208).

use super::lexer::{Cursor, Fail, Res};
use super::types::{
    AppendContent, AppendData, AppendMessage, CatenatePart, CommandBody, ListArgs, Qresync,
    StatusItem,
};
use super::MAX_LIST_ITEMS;

/// The command `verb`, if it belongs to this family.
pub fn parse(verb: &str, c: &mut Cursor) -> Res<Option<CommandBody>> {
    Ok(Some(match verb {
        "SELECT" | "EXAMINE" => {
            c.sp()?;
            let mailbox = c.mailbox()?;
            let mut condstore = false;
            let mut qresync = None;
            if c.eat(b" (") {
                // select-params (RFC 4466): CONDSTORE, QRESYNC (RFC 7162).
                loop {
                    let p = c.atom()?.to_ascii_uppercase();
                    match p.as_str() {
                        "CONDSTORE" => condstore = true,
                        "QRESYNC" if qresync.is_none() => {
                            c.sp()?;
                            qresync = Some(qresync_param(c)?);
                        }
                        _ => return Err(Fail(format!("Unknown SELECT parameter {p}"))),
                    }
                    if c.eat(b")") {
                        break;
                    }
                    c.sp()?;
                }
            }
            CommandBody::Select {
                mailbox,
                examine: verb == "EXAMINE",
                condstore,
                qresync,
            }
        }
        "CREATE" => {
            c.sp()?;
            let m = c.mailbox()?;
            // CREATE-SPECIAL-USE parameters (RFC 6154 3) are accepted and ignored.
            if c.eat(b" (") {
                c.rest();
            }
            CommandBody::Create(m)
        }
        "DELETE" => {
            c.sp()?;
            CommandBody::Delete(c.mailbox()?)
        }
        "RENAME" => {
            c.sp()?;
            let from = c.mailbox()?;
            c.sp()?;
            let to = c.mailbox()?;
            CommandBody::Rename { from, to }
        }
        "SUBSCRIBE" => {
            c.sp()?;
            CommandBody::Subscribe(c.mailbox()?)
        }
        "UNSUBSCRIBE" => {
            c.sp()?;
            CommandBody::Unsubscribe(c.mailbox()?)
        }
        "LIST" => CommandBody::List(list(c)?),
        "LSUB" => {
            c.sp()?;
            let reference = c.mailbox()?;
            c.sp()?;
            let pattern = c.list_mailbox()?;
            CommandBody::List(ListArgs {
                lsub: true,
                reference,
                patterns: vec![pattern],
                ..ListArgs::default()
            })
        }
        "NAMESPACE" => CommandBody::Namespace,
        "STATUS" => {
            c.sp()?;
            let mailbox = c.mailbox()?;
            c.sp()?;
            let items = status_items(c)?;
            CommandBody::Status { mailbox, items }
        }
        "APPEND" => {
            c.sp()?;
            let mailbox = c.mailbox()?;
            let mut messages = Vec::new();
            // MULTIAPPEND (RFC 3502): one or more messages, each with its
            // own flags and date.
            while c.eat(b" ") {
                if messages.len() >= MAX_LIST_ITEMS {
                    return Err(Fail("Too many messages in one APPEND".into()));
                }
                messages.push(append_message(c)?);
            }
            if messages.is_empty() {
                return Err(Fail("APPEND needs a message".into()));
            }
            CommandBody::Append { mailbox, messages }
        }
        "IDLE" => CommandBody::Idle,
        "GETQUOTA" => {
            c.sp()?;
            CommandBody::GetQuota(c.astring()?)
        }
        "GETQUOTAROOT" => {
            c.sp()?;
            CommandBody::GetQuotaRoot(c.mailbox()?)
        }
        "SETQUOTA" => {
            c.sp()?;
            let root = c.astring()?;
            c.rest();
            CommandBody::SetQuota(root)
        }
        _ => return Ok(None),
    }))
}

/// append-opts SP append-data (RFC 3502, RFC 4469 5): `[flags] [date]
/// literal` or `[flags] [date] CATENATE (parts)`.
fn append_message(c: &mut Cursor) -> Res<AppendMessage> {
    let flags = if c.peek() == Some(b'(') {
        let f = c.flag_list()?;
        c.sp()?;
        f
    } else {
        Vec::new()
    };
    let date = if c.peek() == Some(b'"') {
        let d = c.date_time()?;
        c.sp()?;
        Some(d)
    } else {
        None
    };
    let content = if c.eat(b"CATENATE") {
        c.sp()?;
        c.expect(b"(")?;
        let mut parts = Vec::new();
        loop {
            if parts.len() >= MAX_LIST_ITEMS {
                return Err(Fail("Too many CATENATE parts".into()));
            }
            if c.eat(b"TEXT ") {
                parts.push(CatenatePart::Text(data(c)?));
            } else if c.eat(b"URL ") {
                parts.push(CatenatePart::Url(c.astring()?));
            } else {
                return Err(Fail("Expected TEXT or URL".into()));
            }
            if c.eat(b")") {
                break;
            }
            c.sp()?;
        }
        AppendContent::Catenate(parts)
    } else {
        AppendContent::Literal(data(c)?)
    };
    Ok(AppendMessage {
        flags,
        date,
        content,
    })
}

/// A message literal and where its bytes start in the command.
fn data(c: &mut Cursor) -> Res<AppendData> {
    let bytes = c.string()?;
    let at = c.pos() - bytes.len();
    Ok(AppendData { bytes, at })
}

/// LIST [(selection)] reference pattern-or-patterns [RETURN (options)].
fn list(c: &mut Cursor) -> Res<ListArgs> {
    let mut a = ListArgs::default();
    c.sp()?;
    if c.peek() == Some(b'(') {
        a.extended = true;
        for o in c.atom_list()? {
            match o.to_ascii_uppercase().as_str() {
                "SUBSCRIBED" => a.subscribed = true,
                "RECURSIVEMATCH" => a.recursive_match = true,
                "SPECIAL-USE" => a.special_use_only = true,
                "REMOTE" => {}
                o => return Err(Fail(format!("Unknown LIST selection option {o}"))),
            }
        }
        if a.recursive_match && !a.subscribed {
            return Err(Fail("RECURSIVEMATCH needs another selection option".into()));
        }
        c.sp()?;
    }
    a.reference = c.mailbox()?;
    c.sp()?;
    if c.eat(b"(") {
        a.extended = true;
        loop {
            if a.patterns.len() >= MAX_LIST_ITEMS {
                return Err(Fail("Too many patterns".into()));
            }
            a.patterns.push(c.list_mailbox()?);
            if c.eat(b")") {
                break;
            }
            c.sp()?;
        }
    } else {
        a.patterns.push(c.list_mailbox()?);
    }
    if c.eat(b" ") {
        c.expect(b"RETURN (")?;
        a.extended = true;
        if !c.eat(b")") {
            loop {
                let o = c.atom()?.to_ascii_uppercase();
                match o.as_str() {
                    "SUBSCRIBED" => a.ret_subscribed = true,
                    "CHILDREN" => a.ret_children = true,
                    "SPECIAL-USE" => a.ret_special_use = true,
                    "STATUS" => {
                        c.sp()?;
                        a.ret_status = Some(status_items(c)?);
                    }
                    _ => return Err(Fail(format!("Unknown LIST return option {o}"))),
                }
                if c.eat(b")") {
                    break;
                }
                c.sp()?;
            }
        }
    }
    Ok(a)
}

/// `(item *(SP item))` of STATUS.
fn status_items(c: &mut Cursor) -> Res<Vec<StatusItem>> {
    let names = c.atom_list()?;
    if names.is_empty() {
        return Err(Fail("STATUS needs at least one item".into()));
    }
    names
        .iter()
        .map(|n| {
            Ok(match n.to_ascii_uppercase().as_str() {
                "MESSAGES" => StatusItem::Messages,
                "RECENT" => StatusItem::Recent,
                "UIDNEXT" => StatusItem::UidNext,
                "UIDVALIDITY" => StatusItem::UidValidity,
                "UNSEEN" => StatusItem::Unseen,
                "DELETED" => StatusItem::Deleted,
                "SIZE" => StatusItem::Size,
                "HIGHESTMODSEQ" => StatusItem::HighestModSeq,
                _ => return Err(Fail(format!("Unknown STATUS item {n}"))),
            })
        })
        .take(MAX_LIST_ITEMS)
        .collect()
}

/// `(uidvalidity mod-sequence [known-uids [(known-seqs known-uids)]])`
/// (RFC 7162 3.2.5 and its ABNF, section 7).
fn qresync_param(c: &mut Cursor) -> Res<Qresync> {
    c.expect(b"(")?;
    let uidvalidity = c.nz_number()?;
    c.sp()?;
    let modseq = c.number64()?;
    if modseq == 0 {
        return Err(Fail("QRESYNC mod-sequence must not be 0".into()));
    }
    let mut q = Qresync {
        uidvalidity,
        modseq,
        known_uids: None,
        seq_match: None,
    };
    if c.eat(b" ") {
        if c.peek() == Some(b'(') {
            q.seq_match = Some(seq_match(c)?);
        } else {
            q.known_uids = Some(c.seq_set()?);
            if c.eat(b" ") {
                q.seq_match = Some(seq_match(c)?);
            }
        }
    }
    c.expect(b")")?;
    Ok(q)
}

fn seq_match(c: &mut Cursor) -> Res<(super::SeqSet, super::SeqSet)> {
    c.expect(b"(")?;
    let seqs = c.seq_set()?;
    c.sp()?;
    let uids = c.seq_set()?;
    c.expect(b")")?;
    Ok((seqs, uids))
}
