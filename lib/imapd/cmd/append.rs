//! APPEND (RFC 3501 6.3.11) with UIDPLUS's APPENDUID (RFC 4315).
//!
//! A message over 64 KiB never reaches the parser: the server streams it
//! into a staging file as it arrives and leaves it in `Session::staged`.

use super::{mailbox_name, store_error};
use crate::imapd::session::{Action, Out, Session, State};
use crate::imapd::store::{MsgFlags, StoreError};
use crate::proto::imap::{DateTime, Flag};

pub fn append(
    s: &mut Session,
    tag: &str,
    arg: &[u8],
    flags: &[Flag],
    date: Option<DateTime>,
    message: &[u8],
    out: &mut Out,
) -> Action {
    let Some(name) = mailbox_name(s, tag, arg, out) else {
        return Action::None;
    };
    // A large message was written to a staging file as it arrived (the
    // server did that); the literal left in the command is then empty.
    let mut staged = match s.staged.take() {
        Some(Ok((file, size))) => Some((file, size)),
        Some(Err(why)) => {
            out.line(&format!("{tag} NO [UNAVAILABLE] {why}"));
            return Action::None;
        }
        None => None,
    };
    let size = staged.as_ref().map_or(message.len() as u64, |(_, n)| *n);
    if size == 0 {
        out.line(&format!("{tag} NO [CANNOT] Empty message"));
        return Action::None;
    }
    let f = to_msg_flags(flags);
    let (auth, view) = match &mut s.state {
        State::Authenticated(a) => (a, None),
        State::Selected(a, v) => (a, Some(v)),
        _ => return Action::None,
    };
    let date = date.map(|d| d.timestamp());
    let appended = match &mut staged {
        Some((file, size)) => auth.store.append_file(&name, file, *size, &f, date),
        None => auth.store.append(&name, message, &f, date),
    };
    match appended {
        Ok((validity, uid)) => {
            if let Some(v) = view {
                if v.name == name {
                    v.sync(out, true, s.enabled);
                }
            }
            out.line(&format!(
                "{tag} OK [APPENDUID {validity} {uid}] APPEND completed"
            ));
        }
        Err(StoreError::NoSuchFolder) => {
            out.line(&format!("{tag} NO [TRYCREATE] No such mailbox"));
        }
        Err(e) => store_error(out, tag, &e),
    }
    Action::None
}

/// Parser flags to stored flags (\Recent is not stored).
pub fn to_msg_flags(flags: &[Flag]) -> MsgFlags {
    use crate::imapd::store::SysFlags as S;
    let mut m = MsgFlags::default();
    for f in flags {
        match f {
            Flag::Seen => m.sys.0 |= S::SEEN,
            Flag::Answered => m.sys.0 |= S::ANSWERED,
            Flag::Flagged => m.sys.0 |= S::FLAGGED,
            Flag::Deleted => m.sys.0 |= S::DELETED,
            Flag::Draft => m.sys.0 |= S::DRAFT,
            Flag::Keyword(k) => {
                m.keywords.insert(k.clone());
            }
            Flag::Recent | Flag::Extension(_) => {}
        }
    }
    m
}
