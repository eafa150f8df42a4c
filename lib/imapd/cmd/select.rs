//! SELECT and EXAMINE (RFC 3501 6.3.1-2, RFC 7162 3.1.8), CLOSE (6.4.2) and
//! UNSELECT (RFC 3691).

use super::{mailbox_name, store_error};
use crate::imapd::session::{Action, Out, Session, State};
use crate::imapd::view::View;

pub fn select(
    s: &mut Session,
    tag: &str,
    arg: &[u8],
    examine: bool,
    condstore: bool,
    out: &mut Out,
) -> Action {
    let Some(name) = mailbox_name(s, tag, arg, out) else {
        return Action::None;
    };
    if condstore {
        s.enabled.condstore = true;
    }
    // A failed SELECT leaves no mailbox selected (RFC 3501 6.3.1).
    let auth = match std::mem::replace(&mut s.state, State::Logout) {
        State::Selected(a, _) => {
            out.line("* OK [CLOSED] Previous mailbox closed");
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
    let view = match opened {
        Ok(v) => v,
        Err(e) => {
            s.state = State::Authenticated(auth);
            store_error(out, tag, &e);
            return Action::None;
        }
    };
    out.line(&view.flags_line());
    out.line(
        "* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft \\*)] Flags allowed",
    );
    out.line(&format!("* {} EXISTS", view.exists()));
    if !s.enabled.rev2 {
        let recent = view.msgs.iter().filter(|m| m.meta.recent).count();
        out.line(&format!("* {recent} RECENT"));
        if let Some(i) = view
            .msgs
            .iter()
            .position(|m| !m.meta.flags.sys.has(crate::imapd::store::SysFlags::SEEN))
        {
            out.line(&format!("* OK [UNSEEN {}] First unseen", i + 1));
        }
    }
    out.line(&format!(
        "* OK [UIDVALIDITY {}] UIDs valid",
        view.uidvalidity
    ));
    out.line(&format!(
        "* OK [UIDNEXT {}] Predicted next UID",
        view.uidnext
    ));
    // RFC 4467 3: the URLAUTH mechanisms this mailbox's URLs may use.
    out.line("* OK [URLMECH INTERNAL] URLAUTH mechanisms");
    if s.enabled.condstore {
        out.line(&format!(
            "* OK [HIGHESTMODSEQ {}] Highest",
            view.highest_modseq.max(1)
        ));
    }
    if !s.enabled.rev2 {
        // RFC 9051 dropped this response; rev1 clients expect it.
    }
    out.line(&format!(
        "{tag} OK [{}] {} completed",
        if examine { "READ-ONLY" } else { "READ-WRITE" },
        if examine { "EXAMINE" } else { "SELECT" }
    ));
    s.state = State::Selected(auth, Box::new(view));
    Action::None
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
    out.line(&format!(
        "{tag} OK {} completed",
        if expunge { "CLOSE" } else { "UNSELECT" }
    ));
    Action::None
}
