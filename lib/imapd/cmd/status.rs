//! STATUS (RFC 3501 6.3.10, RFC 9051 6.3.11: DELETED and SIZE; RFC 7162:
//! HIGHESTMODSEQ).

use super::{mailbox_name, store_error};
use crate::imapd::names;
use crate::imapd::session::{Action, Auth, Out, Session, State};
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
    let utf8 = s.enabled.utf8;
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
        Ok(_) => {
            write_status_with(auth, &name, items, utf8, own_recent, out);
            out.line(&format!("{tag} OK STATUS completed"));
        }
        Err(e) => store_error(out, tag, &e),
    }
    Action::None
}

/// `* STATUS name (items)`; nothing when the folder cannot be read.
pub fn write_status(auth: &mut Auth, name: &str, items: &[StatusItem], utf8: bool, out: &mut Out) {
    write_status_with(auth, name, items, utf8, 0, out);
}

/// [`write_status`], with `own_recent` messages \Recent in this session
/// added to those waiting in `new/`.
fn write_status_with(
    auth: &mut Auth,
    name: &str,
    items: &[StatusItem],
    utf8: bool,
    own_recent: u32,
    out: &mut Out,
) {
    let Ok(mut st) = auth.store.status(name) else {
        return;
    };
    st.recent += own_recent;
    let mut line = b"* STATUS ".to_vec();
    names::write(&mut line, name, utf8);
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
