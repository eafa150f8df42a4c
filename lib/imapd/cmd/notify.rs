//! NOTIFY (RFC 5465): which mailboxes a session watches and what it is told
//! about them while it idles or sends NOOP.
//!
//! The selected mailbox keeps its usual untagged responses (EXISTS,
//! EXPUNGE or VANISHED, FETCH FLAGS) from the view. For every other
//! mailbox that an event group names, a change of its counts is sent as
//! `* STATUS` (RFC 5465 5.1-5.3): MESSAGES, UIDNEXT and UIDVALIDITY for
//! MessageNew and MessageExpunge, HIGHESTMODSEQ too for FlagChange. Folders
//! made, deleted or renamed are sent as `* LIST` for MailboxName (with
//! `\NonExistent` for a gone one and OLDNAME for a rename, RFC 5465 5.4),
//! subscription changes as `* LIST` for SubscriptionChange, and changed
//! METADATA entries as `* METADATA mailbox (entries)` (RFC 5464 4.4.2).
//!
//! The selected mailbox (RFC 5465 6) is told as the first group that names
//! it says ([`SelectedMode`]): with `SELECTED` its updates are sent as they
//! happen, EXPUNGE included ("such a client cannot use FETCH, but has to use
//! UID FETCH", RFC 5465 5.3); with `SELECTED-DELAYED` the EXPUNGEs wait for
//! a command that may announce them (NOOP, IDLE, ..., RFC 3501 7.4.1);
//! with `NONE` nothing about it is sent unless the session's own EXPUNGE
//! or MOVE removed messages (their numbers must stay right); without a
//! SELECTED group, after commands as RFC 3501 says.
//!
//! "As they happen" means whenever the client waits for input, with no
//! command running (RFC 5465 1: the server sends the notifications "without
//! the client having to poll"): the server looks every `idle_poll` while it
//! waits for the next command ([`Session::push_needed`]), as it does in
//! IDLE.
//!
//! There is no event bus between sessions: each session compares what it
//! saw last with the store, at most once a second for other mailboxes, and
//! its selected folder's three `stat`s every `idle_poll`. STATUS of a
//! folder costs a sync of its index, so a session watching hundreds of
//! folders costs as many syncs a second.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use crate::imapd::names;
use crate::imapd::session::{Action, Auth, Out, Session, State};
use crate::imapd::store::{FolderStatus, Metadata};
use crate::proto::imap::response::{Code, Data, Response};
use crate::proto::imap::{NotifyEvent, NotifyFilter, NotifySet, StatusItem};

/// Shortest time between two looks at the watched mailboxes.
const EVERY: Duration = Duration::from_secs(1);

/// What NOTIFY SET asked, resolved, and what this session saw last.
pub struct Watch {
    groups: Vec<Group>,
    /// Counts of watched folders (MessageNew, MessageExpunge, FlagChange).
    status: BTreeMap<String, FolderStatus>,
    /// Every folder, when MailboxName is watched.
    folders: Option<BTreeSet<String>>,
    /// Subscriptions, when SubscriptionChange is watched.
    subs: Option<BTreeSet<String>>,
    /// METADATA of watched folders (None: the server's).
    meta: BTreeMap<Option<String>, Metadata>,
    last: Instant,
}

struct Group {
    filter: Filter,
    events: Vec<NotifyEvent>,
}

/// How the selected mailbox is told about (RFC 5465 6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SelectedMode {
    /// No SELECTED group: updates after commands, as RFC 3501 7 says.
    Commands,
    /// `SELECTED`: updates also while the client waits, EXPUNGE included.
    Immediate,
    /// `SELECTED-DELAYED`: updates while the client waits, but EXPUNGE
    /// only with a command that may announce it.
    Delayed,
    /// `(SELECTED NONE)`: nothing about the selected mailbox.
    Silent,
}

enum Filter {
    /// SELECTED, or SELECTED-DELAYED (`delayed`).
    Selected {
        delayed: bool,
    },
    Inboxes,
    Personal,
    Subscribed,
    Subtree(Vec<String>),
    Mailboxes(Vec<String>),
}

/// What the server supports, for NO [BADEVENT] (RFC 5465 3.1).
const EVENTS: &str = "MessageNew MessageExpunge FlagChange MailboxName SubscriptionChange \
                      MailboxMetadataChange ServerMetadataChange";

pub fn notify(s: &mut Session, tag: &str, set: Option<NotifySet>, out: &mut Out) -> Action {
    let Some(set) = set else {
        s.notify = None;
        apply_to_view(s);
        out.send(Response::ok(tag, "NOTIFY completed"));
        return Action::None;
    };
    let mut groups = Vec::new();
    for g in set.groups {
        let ev = &g.events;
        let has = |f: fn(&NotifyEvent) -> bool| ev.iter().any(f);
        let new = has(|e| matches!(e, NotifyEvent::MessageNew(_)));
        let gone = has(|e| matches!(e, NotifyEvent::MessageExpunge));
        let flags = has(|e| matches!(e, NotifyEvent::FlagChange));
        if has(|e| matches!(e, NotifyEvent::Other(_) | NotifyEvent::AnnotationChange)) {
            out.send(Response::no(
                tag,
                Some(Code::BadEvent(EVENTS)),
                "Unsupported event",
            ));
            return Action::None;
        }
        // RFC 5465 5: MessageNew and MessageExpunge go together, and
        // FlagChange needs them.
        if new != gone || (flags && !new) {
            return s.bad(tag, "MessageNew and MessageExpunge go together", out);
        }
        let selected = matches!(
            g.filter,
            NotifyFilter::Selected | NotifyFilter::SelectedDelayed
        );
        let atts = ev
            .iter()
            .any(|e| matches!(e, NotifyEvent::MessageNew(a) if !a.is_empty()));
        if atts && !selected {
            return s.bad(tag, "FETCH items only for the selected mailbox", out);
        }
        let decode = |v: &[Vec<u8>]| -> Result<Vec<String>, &'static str> {
            v.iter().map(|m| names::decode(m, s.enabled.utf8)).collect()
        };
        let filter = match &g.filter {
            NotifyFilter::Selected => Filter::Selected { delayed: false },
            NotifyFilter::SelectedDelayed => Filter::Selected { delayed: true },
            NotifyFilter::Inboxes => Filter::Inboxes,
            NotifyFilter::Personal => Filter::Personal,
            NotifyFilter::Subscribed => Filter::Subscribed,
            NotifyFilter::Subtree(v) | NotifyFilter::Mailboxes(v) => {
                let names = match decode(v) {
                    Ok(n) => n,
                    Err(why) => {
                        out.send(Response::no(tag, Some(Code::Cannot), why));
                        return Action::None;
                    }
                };
                if matches!(g.filter, NotifyFilter::Subtree(_)) {
                    Filter::Subtree(names)
                } else {
                    Filter::Mailboxes(names)
                }
            }
        };
        groups.push(Group {
            filter,
            events: g.events,
        });
    }
    let selected = selected_name(&s.state);
    let Some(auth) = auth(&mut s.state) else {
        return Action::None;
    };
    let mut w = Watch {
        groups,
        status: BTreeMap::new(),
        folders: None,
        subs: None,
        meta: BTreeMap::new(),
        last: Instant::now(),
    };
    w.look(auth, selected.as_deref(), Some(set.status), out);
    s.notify = Some(Box::new(w));
    apply_to_view(s);
    out.send(Response::ok(tag, "NOTIFY completed"));
    Action::None
}

/// RFC 5465 5.1: the FETCH items asked with MessageNew for the selected
/// mailbox, for messages above UID `before` that the view just announced.
/// They are answered as a UID FETCH would answer them (the command's own
/// completion line is not sent).
pub fn new_messages(s: &mut Session, before: u32, out: &mut Out) {
    let Some(atts) = s.notify.as_ref().and_then(|w| {
        w.groups
            .iter()
            .find(|g| matches!(g.filter, Filter::Selected { .. }))
            .and_then(|g| {
                g.events.iter().find_map(|e| match e {
                    NotifyEvent::MessageNew(a) if !a.is_empty() => Some(a.clone()),
                    _ => None,
                })
            })
    }) else {
        return;
    };
    let State::Selected(_, view) = &s.state else {
        return;
    };
    if view.max_uid() <= before {
        return;
    }
    // By message number, not UID: a UID FETCH could announce expunges,
    // which SELECTED-DELAYED holds back.
    let first = view.msgs.partition_point(|m| m.meta.uid <= before) as u32 + 1;
    let set = crate::proto::imap::SeqSet(vec![(
        crate::proto::imap::SeqNo::Value(first),
        crate::proto::imap::SeqNo::Star,
    )]);
    let mut atts = atts;
    if !atts.contains(&crate::proto::imap::FetchAtt::Uid) {
        atts.insert(0, crate::proto::imap::FetchAtt::Uid);
    }
    let mut got = Vec::new();
    let mut sink = |b: &[u8]| {
        got.extend_from_slice(b);
        Ok(())
    };
    let mut tmp = Out::new(&mut sink);
    tmp.wire = out.wire;
    if super::fetch::fetch(s, "*", false, &set, &atts, None, false, &mut tmp).is_err() {
        return;
    }
    let _ = tmp.flush();
    drop(tmp);
    // Everything but the last line, the command's completion.
    if let Some(end) = got.strip_suffix(b"\r\n") {
        let cut = end
            .windows(2)
            .rposition(|w| w == b"\r\n")
            .map_or(0, |i| i + 2);
        out.buf.extend_from_slice(&got[..cut]);
    }
}

/// Tells the selected folder's view whether it must keep quiet: after
/// NOTIFY and after SELECT or EXAMINE.
pub fn apply_to_view(s: &mut Session) {
    let silent = s
        .notify
        .as_ref()
        .is_some_and(|w| w.selected_mode() == SelectedMode::Silent);
    if let State::Selected(_, view) = &mut s.state {
        view.silent = silent;
    }
}

/// Sends what changed in the watched mailboxes since the last look.
pub fn poll(s: &mut Session, out: &mut Out) {
    let Some(mut w) = s.notify.take() else {
        return;
    };
    if w.due() {
        let selected = selected_name(&s.state);
        if let Some(auth) = auth(&mut s.state) {
            w.look(auth, selected.as_deref(), None, out);
        }
        w.last = Instant::now();
    }
    s.notify = Some(w);
}

impl Watch {
    /// How the selected mailbox is told about: the first group with a
    /// SELECTED filter decides (RFC 5465 6: "the first matching filter").
    pub fn selected_mode(&self) -> SelectedMode {
        match self.groups.iter().find_map(|g| match g.filter {
            Filter::Selected { delayed } => Some((delayed, g.events.is_empty())),
            _ => None,
        }) {
            None => SelectedMode::Commands,
            Some((_, true)) => SelectedMode::Silent,
            Some((true, false)) => SelectedMode::Delayed,
            Some((false, false)) => SelectedMode::Immediate,
        }
    }

    /// Whether other mailboxes (or names, subscriptions, METADATA) are
    /// watched and a second passed since the last look at them.
    pub fn due(&self) -> bool {
        let selected_only = |g: &Group, e: &NotifyEvent| {
            matches!(g.filter, Filter::Selected { .. })
                && matches!(
                    e,
                    NotifyEvent::MessageNew(_)
                        | NotifyEvent::MessageExpunge
                        | NotifyEvent::FlagChange
                )
        };
        self.last.elapsed() >= EVERY
            && self
                .groups
                .iter()
                .any(|g| g.events.iter().any(|e| !selected_only(g, e)))
    }

    /// Reads the watched state; `out` gets what changed since the last
    /// look. The first look (`first` is Some) only remembers, but for the
    /// STATUS of every watched folder when `first` is Some(true)
    /// (NOTIFY SET STATUS, RFC 5465 3.1).
    fn look(
        &mut self,
        auth: &mut Auth,
        selected: Option<&str>,
        first: Option<bool>,
        out: &mut Out,
    ) {
        let later = first.is_none();
        let any = |f: fn(&NotifyEvent) -> bool| self.groups.iter().any(|g| g.events.iter().any(f));
        let want_names = any(|e| matches!(e, NotifyEvent::MailboxName));
        let want_subs = any(|e| matches!(e, NotifyEvent::SubscriptionChange));
        let Ok(folders) = auth.store.folders() else {
            return;
        };
        let all: BTreeSet<String> = folders.into_iter().map(|f| f.name).collect();
        let subs: BTreeSet<String> = auth
            .store
            .subscriptions()
            .unwrap_or_default()
            .into_iter()
            .collect();
        // MailboxName: folders made and gone, a rename when one of each.
        if want_names {
            if let (Some(old), true) = (&self.folders, later) {
                let made: Vec<&String> = all.difference(old).collect();
                let gone: Vec<&String> = old.difference(&all).collect();
                if made.len() == 1 && gone.len() == 1 {
                    out.send(Response::Data(Data::List {
                        lsub: false,
                        attrs: vec![],
                        name: made[0],
                        childinfo: false,
                        oldname: Some(gone[0].as_str()),
                    }));
                } else {
                    for n in gone {
                        list_line(out, "\\NonExistent", n);
                    }
                    for n in made {
                        list_line(out, "", n);
                    }
                }
            }
            self.folders = Some(all.clone());
        }
        if want_subs {
            if let (Some(old), true) = (&self.subs, later) {
                for n in subs.difference(old) {
                    list_line(out, "\\Subscribed", n);
                }
                for n in old.difference(&subs) {
                    list_line(out, "", n);
                }
            }
            self.subs = Some(subs.clone());
        }
        // Message events and metadata of the folders each group names (the
        // first group that names a folder decides, RFC 5465 6).
        let mut status = BTreeMap::new();
        let mut meta = BTreeMap::new();
        for name in &all {
            let Some(g) = self.groups.iter().find(|g| g.filter.covers(name, &subs)) else {
                continue;
            };
            let messages = g
                .events
                .iter()
                .any(|e| matches!(e, NotifyEvent::MessageNew(_)));
            let flags = g.events.contains(&NotifyEvent::FlagChange);
            if messages && Some(name.as_str()) != selected {
                if let Ok(st) = auth.store.status(name) {
                    let report = match self.status.get(name) {
                        _ if !later => first == Some(true),
                        Some(old) => {
                            old.messages != st.messages
                                || old.uidnext != st.uidnext
                                || old.uidvalidity != st.uidvalidity
                                || (flags && old.highest_modseq != st.highest_modseq)
                        }
                        None => false,
                    };
                    if report {
                        status_line(out, name, &st, flags);
                    }
                    status.insert(name.clone(), st);
                }
            }
            if g.events.contains(&NotifyEvent::MailboxMetadata) {
                if let Ok(m) = auth.store.metadata(Some(name)) {
                    meta.insert(Some(name.clone()), m);
                }
            }
        }
        if any(|e| matches!(e, NotifyEvent::ServerMetadata)) {
            if let Ok(m) = auth.store.metadata(None) {
                meta.insert(None, m);
            }
        }
        if later {
            for (folder, now) in &meta {
                let empty = Metadata::new();
                let before = self.meta.get(folder).unwrap_or(&empty);
                let changed = super::metadata::changed(before, now);
                if changed.is_empty() || !self.meta.contains_key(folder) {
                    continue;
                }
                out.send(Response::Data(Data::MetadataChanged {
                    mailbox: folder.as_deref(),
                    entries: changed.iter().map(|e| e.as_str()).collect(),
                }));
            }
        }
        self.status = status;
        self.meta = meta;
    }
}

impl Filter {
    fn covers(&self, name: &str, subs: &BTreeSet<String>) -> bool {
        match self {
            Filter::Selected { .. } => false,
            Filter::Inboxes => name == "INBOX",
            Filter::Personal => true,
            Filter::Subscribed => subs.contains(name),
            Filter::Subtree(v) => v.iter().any(|r| {
                name == r
                    || name
                        .strip_prefix(r.as_str())
                        .is_some_and(|rest| rest.starts_with('.'))
            }),
            Filter::Mailboxes(v) => v.iter().any(|r| r == name),
        }
    }
}

fn status_line(out: &mut Out, name: &str, st: &FolderStatus, flags: bool) {
    let mut items = vec![
        (StatusItem::Messages, st.messages as u64),
        (StatusItem::UidNext, st.uidnext as u64),
        (StatusItem::UidValidity, st.uidvalidity as u64),
    ];
    if flags {
        items.push((StatusItem::HighestModSeq, st.highest_modseq));
    }
    out.send(Response::Data(Data::Status { name, items }));
}

fn list_line(out: &mut Out, attr: &str, name: &str) {
    out.send(Response::Data(Data::List {
        lsub: false,
        attrs: if attr.is_empty() { vec![] } else { vec![attr] },
        name,
        childinfo: false,
        oldname: None,
    }));
}

fn selected_name(state: &State) -> Option<String> {
    match state {
        State::Selected(_, v) => Some(v.name.clone()),
        _ => None,
    }
}

fn auth(state: &mut State) -> Option<&mut Auth> {
    match state {
        State::Authenticated(a) | State::Selected(a, _) => Some(a),
        _ => None,
    }
}
