//! SELECT and EXAMINE (RFC 3501 6.3.1-2, RFC 7162 3.1.8), with QRESYNC's
//! quick resynchronisation (RFC 7162 3.2.5), CLOSE (6.4.2) and UNSELECT
//! (RFC 3691).

use super::{mailbox_name, store_error, uid_set};
use crate::imapd::session::{Action, Out, Session, State};
use crate::imapd::view::{flag_names, View};
use crate::proto::imap::response::{Code, Data, FetchItem, Response, Status};
use crate::proto::imap::{Qresync, SeqSet};

pub fn select(
    s: &mut Session,
    tag: &str,
    arg: &[u8],
    examine: bool,
    condstore: bool,
    qresync: Option<Qresync>,
    out: &mut Out,
) -> Action {
    if qresync.is_some() && !s.enabled.qresync {
        // RFC 7162 3.2.5: "MUST respond with a tagged BAD response if the
        // QRESYNC parameter is specified and the client hasn't issued
        // ENABLE QRESYNC".
        return s.bad(tag, "ENABLE QRESYNC first", out);
    }
    let Some(name) = mailbox_name(s, tag, arg, out) else {
        return Action::None;
    };
    if condstore {
        s.enabled.condstore = true;
    }
    // A failed SELECT leaves no mailbox selected (RFC 3501 6.3.1).
    let auth = match std::mem::replace(&mut s.state, State::Logout) {
        State::Selected(a, _) => {
            out.send(Response::info(
                Some(Code::Closed),
                "Previous mailbox closed",
            ));
            a
        }
        State::Authenticated(a) => a,
        other => {
            s.state = other;
            return Action::None;
        }
    };
    let mut auth = auth;
    let opened = auth
        .store
        .open(&name)
        .and_then(|f| View::open(name.clone(), f, examine));
    let mut view = match opened {
        Ok(v) => v,
        Err(e) => {
            s.state = State::Authenticated(auth);
            store_error(out, tag, &e);
            return Action::None;
        }
    };
    out.send(view.flags_response());
    out.send(Response::info(
        Some(Code::PermanentFlags(vec![
            "\\Answered",
            "\\Flagged",
            "\\Deleted",
            "\\Seen",
            "\\Draft",
            "\\*",
        ])),
        "Flags allowed",
    ));
    out.send(Response::Data(Data::Exists(view.exists())));
    if !s.enabled.rev2 {
        let recent = view.msgs.iter().filter(|m| m.meta.recent).count();
        out.send(Response::Data(Data::Recent(recent as u32)));
        if let Some(i) = view
            .msgs
            .iter()
            .position(|m| !m.meta.flags.sys.has(crate::imapd::store::SysFlags::SEEN))
        {
            out.send(Response::info(
                Some(Code::Unseen(i as u32 + 1)),
                "First unseen",
            ));
        }
    }
    out.send(Response::info(
        Some(Code::UidValidity(view.uidvalidity)),
        "UIDs valid",
    ));
    out.send(Response::info(
        Some(Code::UidNext(view.uidnext)),
        "Predicted next UID",
    ));
    // RFC 4467 3: the URLAUTH mechanisms this mailbox's URLs may use.
    out.send(Response::info(
        Some(Code::UrlMech("INTERNAL")),
        "URLAUTH mechanisms",
    ));
    if s.enabled.condstore {
        out.send(Response::info(
            Some(Code::HighestModSeq(view.highest_modseq.max(1))),
            "Highest",
        ));
    }
    if let Some(q) = qresync.filter(|q| q.uidvalidity == view.uidvalidity) {
        catch_up(&mut view, &q, out);
    }
    out.send(if examine {
        Response::tagged(tag, Status::Ok, Some(Code::ReadOnly), "EXAMINE completed")
    } else {
        Response::tagged(tag, Status::Ok, Some(Code::ReadWrite), "SELECT completed")
    });
    s.state = State::Selected(auth, Box::new(view));
    // NOTIFY SET (SELECTED NONE) applies to whatever is selected later.
    super::notify::apply_to_view(s);
    Action::None
}

/// QRESYNC (RFC 7162 3.2.5.1): what the client missed since `q.modseq`,
/// among the UIDs it knows: `VANISHED (EARLIER)` for the expunged ones,
/// a FETCH of FLAGS and MODSEQ for the changed ones.
fn catch_up(view: &mut View, q: &Qresync, out: &mut Out) {
    let gone = vanished_earlier(view, q.modseq, q.known_uids.as_ref(), q.seq_match.as_ref());
    if !gone.is_empty() {
        let uids = uid_set(&gone);
        out.send(Response::Data(Data::Vanished {
            earlier: true,
            uids: &uids,
        }));
    }
    let max = view.max_uid();
    let known: Option<Vec<(u32, u32)>> = q.known_uids.as_ref().map(|k| k.ranges(max).collect());
    for (i, m) in view.msgs.iter().enumerate() {
        let uid = m.meta.uid;
        if m.meta.modseq <= q.modseq
            || known
                .as_ref()
                .is_some_and(|k| !k.iter().any(|(a, b)| *a <= uid && uid <= *b))
        {
            continue;
        }
        out.send(Response::Data(Data::Fetch {
            seq: i as u32 + 1,
            items: vec![
                FetchItem::Uid(uid),
                FetchItem::Flags(flag_names(&m.meta.flags, false)),
                FetchItem::ModSeq(m.meta.modseq),
            ],
        }));
    }
}

/// The UIDs expunged since `modseq` within `known` (every UID below
/// UIDNEXT when absent), for SELECT (QRESYNC) and UID FETCH (VANISHED).
/// When the store no longer knows expunges that old, every UID of `known`
/// that is not in the folder is listed, as RFC 7162 3.2.5.2 allows; the
/// client's `(seq-set uid-set)` pairs then narrow that down: where the
/// client's message number still holds the client's UID, no message at or
/// below it was expunged.
pub fn vanished_earlier(
    view: &mut View,
    modseq: u64,
    known: Option<&SeqSet>,
    seq_match: Option<&(SeqSet, SeqSet)>,
) -> Vec<u32> {
    let top = view.uidnext.saturating_sub(1).max(view.max_uid());
    let in_known = |uid: u32| match known {
        Some(k) => k.ranges(top).any(|(a, b)| a <= uid && uid <= b),
        None => true,
    };
    if let Ok(Some(v)) = view.folder.expunged_since(modseq) {
        let present: std::collections::HashSet<u32> = view
            .msgs
            .iter()
            .filter(|m| !m.ghost)
            .map(|m| m.meta.uid)
            .collect();
        return v
            .into_iter()
            .filter(|u| in_known(*u) && !present.contains(u))
            .collect();
    }
    let mut floor = 0;
    if let Some((seqs, uids)) = seq_match {
        let seqs: Vec<u32> = seqs
            .ranges(view.exists())
            .flat_map(|(a, b)| a..=b)
            .take(100_000)
            .collect();
        let uids: Vec<u32> = uids
            .ranges(top)
            .flat_map(|(a, b)| a..=b)
            .take(100_000)
            .collect();
        for (n, u) in seqs.iter().zip(&uids) {
            let at = view.msgs.get((*n as usize).wrapping_sub(1));
            if at.is_some_and(|m| m.meta.uid == *u && !m.ghost) {
                floor = floor.max(*u);
            }
        }
    }
    let mut gone = Vec::new();
    let ranges: Vec<(u32, u32)> = match known {
        Some(k) => k.ranges(top).collect(),
        None if top > 0 => vec![(1, top)],
        None => Vec::new(),
    };
    for (a, b) in ranges {
        for uid in a.max(floor + 1)..=b.min(top) {
            if view.index_of_uid(uid).is_none_or(|i| view.msgs[i].ghost) {
                gone.push(uid);
            }
        }
    }
    gone.sort_unstable();
    gone.dedup();
    gone
}

/// Turns CONDSTORE on for a CONDSTORE-enabling command (RFC 7162 3.1:
/// FETCH MODSEQ or CHANGEDSINCE, STORE UNCHANGEDSINCE, SEARCH MODSEQ,
/// ENABLE). "A server MUST send ... HIGHESTMODSEQ ... when CONDSTORE is
/// enabled while a mailbox is selected" (3.1.2), so the client learns
/// where the folder stands before the first MODSEQ it sees.
pub fn enable_condstore(s: &mut Session, out: &mut Out) {
    if s.enabled.condstore {
        return;
    }
    s.enabled.condstore = true;
    if let State::Selected(_, view) = &s.state {
        out.send(Response::info(
            Some(Code::HighestModSeq(view.highest_modseq.max(1))),
            "Highest",
        ));
    }
}

/// CLOSE expunges silently (when read-write); UNSELECT does not.
pub fn close(s: &mut Session, tag: &str, out: &mut Out, expunge: bool) -> Action {
    let state = std::mem::replace(&mut s.state, State::Logout);
    let State::Selected(auth, mut view) = state else {
        s.state = state;
        return Action::None;
    };
    if expunge && !view.read_only {
        let uids: Vec<u32> = view
            .msgs
            .iter()
            .filter(|m| !m.ghost && m.meta.flags.sys.has(crate::imapd::store::SysFlags::DELETED))
            .map(|m| m.meta.uid)
            .collect();
        if !uids.is_empty() {
            if let Err(e) = view.folder.expunge(&uids) {
                s.state = State::Selected(auth, view);
                store_error(out, tag, &e);
                return Action::None;
            }
        }
    }
    s.state = State::Authenticated(auth);
    out.send(Response::ok(
        tag,
        if expunge {
            "CLOSE completed"
        } else {
            "UNSELECT completed"
        },
    ));
    Action::None
}
