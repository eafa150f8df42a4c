//! COPY and UID COPY (RFC 3501 6.4.7), MOVE and UID MOVE (RFC 6851), with
//! COPYUID (RFC 4315).

use super::{mailbox_name, resolve, seq_in_range, store_error, uid_set};
use crate::imapd::session::{Action, Out, Session, State};
use crate::imapd::store::StoreError;
use crate::proto::imap::response::{Code, Response, Status};
use crate::proto::imap::SeqSet;

pub fn copy(
    s: &mut Session,
    tag: &str,
    uid: bool,
    set: &SeqSet,
    arg: &[u8],
    is_move: bool,
    out: &mut Out,
) -> Action {
    let Some(dest) = mailbox_name(s, tag, arg, out) else {
        return Action::None;
    };
    let enabled = s.enabled;
    let State::Selected(_, view) = &mut s.state else {
        return Action::None;
    };
    let verb = if is_move { "MOVE" } else { "COPY" };
    if !uid && !seq_in_range(view, set) {
        out.send(Response::bad(tag, "Invalid message number"));
        return Action::None;
    }
    if is_move && view.read_only {
        out.send(Response::no(
            tag,
            Some(Code::ReadOnly),
            "Mailbox is read-only",
        ));
        return Action::None;
    }
    // RFC 2180 4.4: messages another session expunged are left out and the
    // rest are copied, with COPYUID for them, as FETCH and STORE answer for
    // what remains; EXPUNGEISSUED (RFC 9051 7.1) says some were left out.
    let idx = resolve(view, set, uid);
    let uids: Vec<u32> = idx
        .iter()
        .filter(|i| !view.msgs[**i].ghost)
        .map(|i| view.msgs[*i].meta.uid)
        .collect();
    let gone = uids.len() != idx.len();
    if uids.is_empty() {
        if gone {
            let text = format!("The messages were expunged, nothing to {verb}");
            out.send(Response::no(tag, Some(Code::ExpungeIssued), &text));
        } else {
            out.send(Response::ok(
                tag,
                &format!("{verb} completed (nothing to do)"),
            ));
        }
        return Action::None;
    }
    let r = if is_move {
        view.folder.move_to(&uids, &dest)
    } else {
        view.folder.copy(&uids, &dest)
    };
    match r {
        // Every one was expunged before the store got to it.
        Ok((_, pairs)) if pairs.is_empty() => {
            view.sync(out, is_move || uid, enabled);
            let text = format!("The messages were expunged, nothing to {verb}");
            out.send(Response::no(tag, Some(Code::ExpungeIssued), &text));
        }
        Ok((validity, pairs)) => {
            // The store skips what another session expunged since this
            // view last looked.
            let gone = gone || pairs.len() < uids.len();
            let src: Vec<u32> = pairs.iter().map(|p| p.0).collect();
            let dst: Vec<u32> = pairs.iter().map(|p| p.1).collect();
            // Pairs are in source order; the sets must correspond in order,
            // so write them explicitly rather than compressed when unordered.
            let (srcs, dsts) = ordered_sets(&src, &dst);
            if is_move {
                // RFC 6851 4.3: COPYUID in an untagged OK before the expunges.
                let copyuid = Code::CopyUid {
                    validity,
                    from: &srcs,
                    to: &dsts,
                };
                out.send(Response::info(Some(copyuid), "Moved"));
                view.sync_own(out, true, enabled);
                if gone {
                    out.send(Response::tagged(
                        tag,
                        Status::Ok,
                        Some(Code::ExpungeIssued),
                        "MOVE completed, expunged messages left out",
                    ));
                } else {
                    out.send(Response::ok(tag, "MOVE completed"));
                }
            } else {
                view.sync(out, uid, enabled);
                if gone {
                    out.send(Response::info(
                        Some(Code::ExpungeIssued),
                        "Expunged messages were left out",
                    ));
                }
                let copyuid = Code::CopyUid {
                    validity,
                    from: &srcs,
                    to: &dsts,
                };
                out.send(Response::tagged(
                    tag,
                    Status::Ok,
                    Some(copyuid),
                    "COPY completed",
                ));
            }
        }
        Err(StoreError::NoSuchFolder) => {
            out.send(Response::no(tag, Some(Code::TryCreate), "No such mailbox"))
        }
        Err(e) => store_error(out, tag, &e),
    }
    Action::None
}

/// Source and destination UID sets in matching order.
fn ordered_sets(src: &[u32], dst: &[u32]) -> (String, String) {
    let sorted = src.windows(2).all(|w| w[0] < w[1]) && dst.windows(2).all(|w| w[0] < w[1]);
    if sorted {
        (uid_set(src), uid_set(dst))
    } else {
        let j = |v: &[u32]| {
            v.iter()
                .map(|u| u.to_string())
                .collect::<Vec<_>>()
                .join(",")
        };
        (j(src), j(dst))
    }
}
