//! STORE and UID STORE (RFC 3501 6.4.6), with UNCHANGEDSINCE (RFC 7162).

use super::{resolve, seq_in_range, store_error};
use crate::imapd::session::{Action, Out, Session, State};
use crate::imapd::store::Stored;
use crate::imapd::view::flag_names;
use crate::proto::imap::response::{Code, Data, FetchItem, Response, Status};
use crate::proto::imap::{Flag, SeqSet, StoreMode};

#[allow(clippy::too_many_arguments)]
pub fn store(
    s: &mut Session,
    tag: &str,
    uid: bool,
    set: &SeqSet,
    mode: StoreMode,
    silent: bool,
    flags: &[Flag],
    unchanged_since: Option<u64>,
    out: &mut Out,
) -> Action {
    if unchanged_since.is_some() {
        super::select::enable_condstore(s, out);
    }
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
    if !uid && !seq_in_range(view, set) {
        out.send(Response::bad(tag, "Invalid message number"));
        return Action::None;
    }
    let change = super::append::to_msg_flags(flags);
    let mut modified = Vec::new();
    // RFC 2180 4.2: messages another session expunged are skipped and the
    // rest are stored (RFC 9051 7.1, EXPUNGEISSUED says so), as Dovecot
    // answers: a NO would tell the client nothing was stored.
    let named = resolve(view, set, uid);
    let targets: Vec<usize> = named
        .iter()
        .copied()
        .filter(|&i| !view.msgs[i].ghost)
        .collect();
    let mut gone = targets.len() != named.len();
    let uids: Vec<u32> = targets.iter().map(|&i| view.msgs[i].meta.uid).collect();
    // The store applies the change to the flags on disk now: another
    // session may have changed them since this view last synced.
    let results = match view
        .folder
        .store_flags(&uids, mode, &change, unchanged_since)
    {
        Ok(r) => r,
        Err(e) => {
            store_error(out, tag, &e);
            return Action::None;
        }
    };
    for ((&i, &uid_i), stored) in targets.iter().zip(&uids).zip(results) {
        let (nf, modseq, changed) = match stored {
            Stored::Done {
                flags,
                modseq,
                changed,
            } => (flags, modseq, changed),
            Stored::Modified => {
                modified.push(if uid { uid_i } else { i as u32 + 1 });
                continue;
            }
            Stored::Gone => {
                gone = true;
                continue;
            }
        };
        view.set_local_flags(i, nf.clone(), modseq);
        let new_kw = nf.keywords.iter().any(|k| !view.keywords.contains(k));
        if new_kw {
            view.keywords.extend(nf.keywords.iter().cloned());
            out.send(view.flags_response());
        }
        if !silent || (enabled.condstore && changed) && unchanged_since.is_some() {
            let mut items = Vec::with_capacity(3);
            if uid || enabled.qresync {
                items.push(FetchItem::Uid(uid_i));
            }
            let recent = view.msgs[i].meta.recent && !enabled.rev2;
            items.push(FetchItem::Flags(flag_names(&nf, recent)));
            if enabled.condstore {
                items.push(FetchItem::ModSeq(modseq));
            }
            out.send(Response::Data(Data::Fetch {
                seq: i as u32 + 1,
                items,
            }));
        }
    }
    // STORE must not announce expunges (RFC 3501 7.4.1); UID STORE may.
    view.sync(out, uid, enabled);
    if !modified.is_empty() {
        let set = super::uid_set(&modified);
        out.send(Response::tagged(
            tag,
            Status::Ok,
            Some(Code::Modified(&set)),
            "Conditional STORE failed for some",
        ));
    } else if gone {
        out.send(Response::tagged(
            tag,
            Status::Ok,
            Some(Code::ExpungeIssued),
            "Some messages were expunged",
        ));
    } else {
        out.send(Response::ok(tag, "STORE completed"));
    }
    Action::None
}
