//! STATUS (RFC 3501 6.3.10, RFC 9051 6.3.11: DELETED and SIZE; RFC 7162:
//! HIGHESTMODSEQ).

use super::{mailbox_name, store_error};
use crate::imapd::session::{Action, Auth, Out, Session, State};
use crate::imapd::store::FolderStatus;
use crate::proto::imap::response::{Data, Response};
use crate::proto::imap::StatusItem;

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
    let (auth, own_recent) = match &mut s.state {
        State::Authenticated(a) => (a, 0),
        State::Selected(a, v) => {
            // The selected folder's messages that are \Recent for this
            // session have left new/ (read-write only; EXAMINE leaves them
            // there, where they are counted), but are still \Recent here.
            let own = if v.name == name && !v.read_only {
                v.msgs.iter().filter(|m| m.meta.recent && !m.ghost).count() as u32
            } else {
                0
            };
            (a, own)
        }
        _ => return Action::None,
    };
    match auth.store.status(&name) {
        Ok(mut st) => {
            st.recent += own_recent;
            send_status(&name, &st, items, out);
            out.send(Response::ok(tag, "STATUS completed"));
        }
        Err(e) => store_error(out, tag, &e),
    }
    Action::None
}

/// `* STATUS name (items)`; nothing when the folder cannot be read.
pub fn write_status(auth: &mut Auth, name: &str, items: &[StatusItem], out: &mut Out) {
    if let Ok(st) = auth.store.status(name) {
        send_status(name, &st, items, out);
    }
}

/// `* STATUS name (items)` from counts the store gave.
fn send_status(name: &str, st: &FolderStatus, items: &[StatusItem], out: &mut Out) {
    let items = items
        .iter()
        .map(|i| {
            let n = match i {
                StatusItem::Messages => st.messages as u64,
                StatusItem::Recent => st.recent as u64,
                StatusItem::UidNext => st.uidnext as u64,
                StatusItem::UidValidity => st.uidvalidity as u64,
                StatusItem::Unseen => st.unseen as u64,
                StatusItem::Deleted => st.deleted as u64,
                StatusItem::Size => st.size,
                StatusItem::HighestModSeq => st.highest_modseq,
            };
            (*i, n)
        })
        .collect();
    out.send(Response::Data(Data::Status { name, items }));
}
