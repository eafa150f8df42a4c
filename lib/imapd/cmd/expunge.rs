//! EXPUNGE (RFC 3501 6.4.3) and UID EXPUNGE (RFC 4315 2.1).

use super::{resolve, store_error};
use crate::imapd::session::{Action, Out, Session, State};
use crate::imapd::store::SysFlags;
use crate::proto::imap::response::{Code, Response, Status};
use crate::proto::imap::SeqSet;

pub fn expunge(s: &mut Session, tag: &str, uids: Option<&SeqSet>, out: &mut Out) -> Action {
    let enabled = s.enabled;
    let State::Selected(_, view) = &mut s.state else {
        return Action::None;
    };
    if view.read_only {
        out.send(Response::no(
            tag,
            Some(Code::ReadOnly),
            "Mailbox is read-only",
        ));
        return Action::None;
    }
    let candidates: Vec<usize> = match uids {
        Some(set) => resolve(view, set, true),
        None => (0..view.msgs.len()).collect(),
    };
    let doomed: Vec<u32> = candidates
        .into_iter()
        .map(|i| &view.msgs[i])
        .filter(|m| !m.ghost && m.meta.flags.sys.has(SysFlags::DELETED))
        .map(|m| m.meta.uid)
        .collect();
    if !doomed.is_empty() {
        if let Err(e) = view.folder.expunge(&doomed) {
            store_error(out, tag, &e);
            return Action::None;
        }
    }
    view.sync_own(out, true, enabled);
    if enabled.condstore {
        // RFC 7162 3.1.11: the client learns the HIGHESTMODSEQ the expunges
        // brought, which it needs for its next QRESYNC.
        out.send(Response::tagged(
            tag,
            Status::Ok,
            Some(Code::HighestModSeq(view.highest_modseq.max(1))),
            "EXPUNGE completed",
        ));
    } else {
        out.send(Response::ok(tag, "EXPUNGE completed"));
    }
    Action::None
}
