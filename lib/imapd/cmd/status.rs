//! STATUS (RFC 3501 6.3.10, RFC 9051 6.3.11: DELETED and SIZE; RFC 7162:
//! HIGHESTMODSEQ).

use super::{mailbox_name, store_error};
use crate::imapd::names;
use crate::imapd::session::{Action, Auth, Out, Session, State};
use crate::proto::imap::{encode, StatusItem};

pub fn status(
    s: &mut Session,
    tag: &str,
    arg: &[u8],
    items: &[StatusItem],
    out: &mut Out,
) -> Action {
    let Some(name) = mailbox_name(s, tag, arg, out) else {
        return Action::None;
    };
    let utf8 = s.enabled.utf8;
    let auth = match &mut s.state {
        State::Authenticated(a) | State::Selected(a, _) => a,
        _ => return Action::None,
    };
    match auth.store.status(&name) {
        Ok(_) => {
            write_status(auth, &name, items, utf8, out);
            out.line(&format!("{tag} OK STATUS completed"));
        }
        Err(e) => store_error(out, tag, &e),
    }
    Action::None
}

/// `* STATUS name (items)`; nothing when the folder cannot be read.
pub fn write_status(auth: &mut Auth, name: &str, items: &[StatusItem], utf8: bool, out: &mut Out) {
    let Ok(st) = auth.store.status(name) else {
        return;
    };
    let mut line = b"* STATUS ".to_vec();
    encode::astring(&mut line, &names::encode(name, utf8));
    let vals: Vec<String> = items
        .iter()
        .map(|i| match i {
            StatusItem::Messages => format!("MESSAGES {}", st.messages),
            StatusItem::Recent => format!("RECENT {}", st.recent),
            StatusItem::UidNext => format!("UIDNEXT {}", st.uidnext),
            StatusItem::UidValidity => format!("UIDVALIDITY {}", st.uidvalidity),
            StatusItem::Unseen => format!("UNSEEN {}", st.unseen),
            StatusItem::Deleted => format!("DELETED {}", st.deleted),
            StatusItem::Size => format!("SIZE {}", st.size),
            StatusItem::HighestModSeq => format!("HIGHESTMODSEQ {}", st.highest_modseq),
        })
        .collect();
    line.extend_from_slice(format!(" ({})\r\n", vals.join(" ")).as_bytes());
    out.buf.extend_from_slice(&line);
}
