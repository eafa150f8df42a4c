//! Searches kept up to date (RFC 5267 section 4: CONTEXT=SEARCH, and what
//! CONTEXT=SORT needs).
//!
//! `SEARCH RETURN (UPDATE ...)` leaves a context behind: the search key,
//! with message numbers and `*` turned into the UIDs they named when the
//! command ran, and the UIDs it found. While the folder stays selected the
//! context follows the messages whose flags or MODSEQ change, that arrive
//! and that go, and reports each change of its result as an untagged
//! `* ESEARCH (TAG "t") [UID] REMOVEFROM (pos set)` or `ADDTO (pos set)`.
//! CANCELUPDATE ends a context; leaving the folder ends them all (the
//! [`View`] owns them).
//!
//! Only the messages [`Contexts::touch`]ed since the last update are
//! matched again, so a change costs one message's match per context, not a
//! search of the folder.
//!
//! What `View::sync` does for them, wherever the merge of a folder's
//! changes lives:
//! 1. `contexts.touch(uid)` for every message whose flags or MODSEQ changed
//!    (the session's own STOREs too: `View::set_local_flags`), that arrived,
//!    or that became a ghost;
//! 2. [`View::update_contexts`] before any EXPUNGE response: "a REMOVEFROM
//!    containing message sequence numbers removed as a result of those
//!    messages being expunged MUST be sent prior to the expunge notification
//!    itself" (4.3.4);
//! 3. [`View::announce_contexts`] after EXISTS: "an ADDTO containing message
//!    sequence numbers added as a result of those messages being delivered
//!    or appended MUST be sent after the EXISTS notification itself" (4.3.3).
//!
//! Order. A SEARCH context keeps mailbox order and reports position 0
//! ("Where the searching command is a SEARCH or UID SEARCH command, the
//! context position MAY be zero"). A SORT context brings [`Order::Sorted`], a
//! function that puts UIDs in its order; positions are then places in that
//! order, 1 first. Removals are reported from the last place to the first,
//! so each position is still right when the client applies it, additions
//! from the first to the last, for the same reason.

use crate::proto::imap::response::{Code, Data, Response, SearchItem, Status};
use std::collections::BTreeSet;

use super::cmd::search::message_matches;
use super::cmd::uid_set;
use super::session::{Action, Out, Session, State};
use super::view::View;
use crate::proto::imap::{SearchKey, SeqNo, SeqSet};

/// Most UPDATE contexts in one session: a search beyond them gets
/// `* NO [NOUPDATE "tag"]` and its ordinary answer (RFC 5267 4.3.1: "Servers
/// MUST provide at least one updating context per client, and SHOULD
/// provide more").
pub const MAX_CONTEXTS: usize = 8;

/// Puts UIDs in a SORT context's order.
pub type SortFn = Box<dyn FnMut(&mut View, &mut [u32]) + Send>;

/// How a context orders its results.
pub enum Order {
    /// Mailbox order (a SEARCH context): updates carry position 0.
    Mailbox,
    /// A SORT context's order: updates carry the places in it.
    Sorted(SortFn),
}

/// One search kept up to date.
struct Context {
    tag: String,
    /// Results are UIDs (UID SEARCH) rather than message numbers.
    uid: bool,
    /// The key, with message numbers and `*` frozen into UIDs.
    key: SearchKey,
    order: Order,
    /// The UIDs the client holds.
    members: BTreeSet<u32>,
    /// For [`Order::Sorted`]: the members in the context's order.
    sorted: Vec<u32>,
    /// Found since the last announcement, waiting for ADDTO after EXISTS:
    /// (position, UID), position 0 in mailbox order.
    added: Vec<(usize, u32)>,
}

/// The contexts of the selected folder.
#[derive(Default)]
pub struct Contexts {
    list: Vec<Context>,
    /// Messages to match again: changed, arrived or gone since the last update.
    touched: BTreeSet<u32>,
}

impl Contexts {
    /// Notes that message `uid` changed, arrived or went.
    pub fn touch(&mut self, uid: u32) {
        if !self.list.is_empty() {
            self.touched.insert(uid);
        }
    }

    /// Whether a context was made by the command tagged `tag`.
    pub fn has(&self, tag: &str) -> bool {
        self.list.iter().any(|c| c.tag == tag)
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }
}

/// Keeps the search tagged `tag` up to date: `results` are the UIDs it found,
/// in `order`. Beyond [`MAX_CONTEXTS`] the client is told (NOUPDATE) and
/// nothing is kept.
pub fn start(
    view: &mut View,
    tag: &str,
    uid: bool,
    key: &SearchKey,
    results: Vec<u32>,
    order: Order,
    out: &mut Out,
) {
    if view.contexts.list.len() >= MAX_CONTEXTS {
        out.send(Response::tagged(
            "*",
            Status::No,
            Some(Code::NoUpdate(tag)),
            "Too many searches kept up to date",
        ));
        return;
    }
    let key = freeze(key, view);
    let sorted = match order {
        Order::Mailbox => Vec::new(),
        Order::Sorted(_) => results.clone(),
    };
    view.contexts.list.push(Context {
        tag: tag.to_string(),
        uid,
        key,
        order,
        members: results.into_iter().collect(),
        sorted,
        added: Vec::new(),
    });
}

/// CANCELUPDATE (RFC 5267 4.3.5): "prevent all updates to the contexts
/// named in the arguments from being transmitted by the server".
pub fn cancel(s: &mut Session, tag: &str, tags: &[String], out: &mut Out) -> Action {
    let enabled = s.enabled;
    let State::Selected(_, view) = &mut s.state else {
        return Action::None;
    };
    let mut unknown = false;
    for t in tags {
        let before = view.contexts.list.len();
        view.contexts.list.retain(|c| &c.tag != t);
        unknown |= view.contexts.list.len() == before;
    }
    if view.contexts.list.is_empty() {
        view.contexts.touched.clear();
    }
    view.sync(out, true, enabled);
    if unknown {
        out.send(Response::no(tag, None, "Unknown search tag"));
    } else {
        out.send(Response::ok(tag, "CANCELUPDATE completed"));
    }
    Action::None
}

impl View {
    /// Matches the touched messages again and reports what left each
    /// context (REMOVEFROM, in the numbering the client has now: call it
    /// before EXPUNGE responses). What joined waits for
    /// [`View::announce_contexts`].
    pub fn update_contexts(&mut self, out: &mut Out) {
        if self.contexts.touched.is_empty() {
            return;
        }
        let mut contexts = std::mem::take(&mut self.contexts);
        let touched: Vec<u32> = std::mem::take(&mut contexts.touched).into_iter().collect();
        for c in &mut contexts.list {
            c.update(self, &touched, out);
        }
        self.contexts = contexts;
    }

    /// Reports what joined each context (ADDTO, in the numbering after
    /// EXISTS and EXPUNGE responses).
    pub fn announce_contexts(&mut self, out: &mut Out) {
        if self.contexts.list.iter().all(|c| c.added.is_empty()) {
            return;
        }
        let mut contexts = std::mem::take(&mut self.contexts);
        for c in &mut contexts.list {
            c.announce(self, out);
        }
        self.contexts = contexts;
    }
}

impl Context {
    /// `* ESEARCH (TAG "t") [UID] item`.
    fn send(&self, out: &mut Out, item: SearchItem) {
        out.send(Response::Data(Data::ESearch {
            tag: Some(&self.tag),
            uid: self.uid,
            items: vec![item],
        }));
    }

    /// The number the client knows `uid` by: the UID, or its place in the view.
    fn number(&self, view: &View, uid: u32) -> Option<u32> {
        if self.uid {
            Some(uid)
        } else {
            view.index_of_uid(uid).map(|i| i as u32 + 1)
        }
    }

    fn update(&mut self, view: &mut View, touched: &[u32], out: &mut Out) {
        let mut gone = Vec::new();
        let mut found = Vec::new();
        for &u in touched {
            let now = match view.index_of_uid(u) {
                Some(i) if !view.msgs[i].ghost => message_matches(view, i, &self.key),
                _ => false,
            };
            match (self.members.contains(&u), now) {
                (true, false) => {
                    self.members.remove(&u);
                    gone.push(u);
                }
                (false, true) => {
                    self.members.insert(u);
                    found.push(u);
                }
                _ => {}
            }
        }
        if let Order::Mailbox = self.order {
            if !gone.is_empty() {
                let nums: Vec<u32> = gone.iter().filter_map(|u| self.number(view, *u)).collect();
                self.send(out, SearchItem::RemoveFrom(vec![(0, uid_set(&nums))]));
            }
            self.added.extend(found.into_iter().map(|u| (0, u)));
            return;
        }
        if !gone.is_empty() {
            let mut places: Vec<(usize, u32)> = self
                .sorted
                .iter()
                .enumerate()
                .filter(|(_, u)| !self.members.contains(*u))
                .map(|(p, u)| (p + 1, *u))
                .collect();
            places.reverse();
            self.sorted.retain(|u| self.members.contains(u));
            let pairs: Vec<(u32, String)> = places
                .iter()
                .filter_map(|(p, u)| self.number(view, *u).map(|n| (*p as u32, n.to_string())))
                .collect();
            self.send(out, SearchItem::RemoveFrom(pairs));
        }
        if !found.is_empty() {
            let mut list = std::mem::take(&mut self.sorted);
            list.extend(&found);
            if let Order::Sorted(sort) = &mut self.order {
                sort(view, &mut list);
            }
            let new: BTreeSet<u32> = found.into_iter().collect();
            self.added.extend(
                list.iter()
                    .enumerate()
                    .filter(|(_, u)| new.contains(*u))
                    .map(|(p, u)| (p + 1, *u)),
            );
            self.sorted = list;
        }
    }

    fn announce(&mut self, view: &View, out: &mut Out) {
        if self.added.is_empty() {
            return;
        }
        let added = std::mem::take(&mut self.added);
        let pairs: Vec<(u32, String)> = match self.order {
            Order::Mailbox => {
                let nums: Vec<u32> = added
                    .iter()
                    .filter_map(|(_, u)| self.number(view, *u))
                    .collect();
                if nums.is_empty() {
                    return;
                }
                vec![(0, uid_set(&nums))]
            }
            Order::Sorted(_) => added
                .iter()
                .filter_map(|(p, u)| self.number(view, *u).map(|n| (*p as u32, n.to_string())))
                .collect(),
        };
        if pairs.is_empty() {
            return;
        }
        self.send(out, SearchItem::AddTo(pairs));
    }
}

/// The key with message numbers and `*` replaced by the UIDs they name now:
/// the context keeps meaning the messages the client named, whatever the
/// numbering becomes.
fn freeze(k: &SearchKey, view: &View) -> SearchKey {
    use SearchKey as K;
    match k {
        K::SeqSet(set) => {
            let n = view.exists();
            let uids: Vec<u32> = view
                .msgs
                .iter()
                .enumerate()
                .filter(|(i, _)| set.contains(*i as u32 + 1, n))
                .map(|(_, m)| m.meta.uid)
                .collect();
            K::Uid(explicit(&uids))
        }
        K::Uid(set) => {
            let ranges = set
                .ranges(view.max_uid())
                .map(|(lo, hi)| (SeqNo::Value(lo), SeqNo::Value(hi)))
                .collect();
            K::Uid(SeqSet(ranges))
        }
        K::Not(a) => K::Not(Box::new(freeze(a, view))),
        K::Or(a, b) => K::Or(Box::new(freeze(a, view)), Box::new(freeze(b, view))),
        K::And(v) => K::And(v.iter().map(|x| freeze(x, view)).collect()),
        other => other.clone(),
    }
}

/// Ascending UIDs as a set of ranges; an empty list names no message
/// (UID 0 does not exist).
fn explicit(uids: &[u32]) -> SeqSet {
    let mut ranges: Vec<(SeqNo, SeqNo)> = Vec::new();
    for &u in uids {
        match ranges.last_mut() {
            Some((_, SeqNo::Value(hi))) if *hi + 1 == u => *hi = u,
            _ => ranges.push((SeqNo::Value(u), SeqNo::Value(u))),
        }
    }
    if ranges.is_empty() {
        ranges.push((SeqNo::Value(0), SeqNo::Value(0)));
    }
    SeqSet(ranges)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imapd::session::Enabled;
    use crate::imapd::store::{
        Folder, MsgFlags, MsgMeta, State, StoreError, StoreResult, Stored, SysFlags,
    };

    /// The folder as the test sets it.
    #[derive(Clone, Default)]
    struct Snapshot {
        uidvalidity: u32,
        uidnext: u32,
        highest_modseq: u64,
        messages: Vec<MsgMeta>,
    }
    use crate::proto::imap::StoreMode;
    use std::sync::{Arc, Mutex};

    /// A folder in memory, changed by the test behind the view's back;
    /// every look at it is a new generation.
    struct Fake(Arc<Mutex<(bool, Snapshot)>>, u64);

    impl Folder for Fake {
        fn changed(&mut self) -> bool {
            std::mem::take(&mut self.0.lock().unwrap().0)
        }
        fn state(&mut self, _: bool) -> StoreResult<State> {
            let g = self.0.lock().unwrap();
            self.1 += 1;
            Ok(State {
                generation: self.1,
                uidvalidity: g.1.uidvalidity,
                uidnext: g.1.uidnext,
                highest_modseq: g.1.highest_modseq,
                messages: Arc::new(g.1.messages.iter().cloned().map(Arc::new).collect()),
                recent: Vec::new(),
            })
        }
        fn open_message(&mut self, _: u32) -> StoreResult<std::fs::File> {
            Err(StoreError::Temporary("no files here".into()))
        }
        fn store_flags(
            &mut self,
            _: &[u32],
            _: StoreMode,
            _: &MsgFlags,
            _: Option<u64>,
        ) -> StoreResult<Vec<Stored>> {
            Ok(Vec::new())
        }
        fn read(&mut self, _: u32) -> StoreResult<Vec<u8>> {
            Ok(b"Subject: x\n\nbody\n".to_vec())
        }
        fn copy(&mut self, _: &[u32], _: &str) -> StoreResult<(u32, Vec<(u32, u32)>)> {
            Ok((1, Vec::new()))
        }
        fn move_to(&mut self, _: &[u32], _: &str) -> StoreResult<(u32, Vec<(u32, u32)>)> {
            Ok((1, Vec::new()))
        }
        fn release(&mut self) {}
        fn expunge(&mut self, _: &[u32]) -> StoreResult<()> {
            Ok(())
        }
    }

    fn meta(uid: u32, seen: bool) -> MsgMeta {
        MsgMeta {
            uid,
            flags: MsgFlags {
                sys: SysFlags(if seen { SysFlags::SEEN } else { 0 }),
                keywords: Default::default(),
            },
            modseq: uid as u64,
            internal_date: 0,
            size: 10,
            recent: false,
        }
    }

    fn seen(on: bool) -> MsgFlags {
        meta(0, on).flags
    }

    /// A view of UIDs 1..=5, 2 and 4 seen, and the handle that changes it.
    fn view() -> (View, Arc<Mutex<(bool, Snapshot)>>) {
        let snap = Snapshot {
            uidvalidity: 1,
            uidnext: 6,
            highest_modseq: 5,
            messages: (1..=5).map(|u| meta(u, u % 2 == 0)).collect(),
        };
        let shared = Arc::new(Mutex::new((false, snap)));
        let v = View::open("INBOX".into(), Box::new(Fake(shared.clone(), 0)), false).unwrap();
        (v, shared)
    }

    fn sync(v: &mut View) -> String {
        let mut sink = |_: &[u8]| Ok(());
        let mut out = Out::new(&mut sink);
        v.sync(&mut out, true, Enabled::default());
        String::from_utf8(out.buf).unwrap()
    }

    /// The results of the view's search for SEEN, in descending UID order.
    fn descending(v: &mut View, tag: &str, uid: bool) {
        let mut sink = |_: &[u8]| Ok(());
        let mut out = Out::new(&mut sink);
        let sort: SortFn = Box::new(|_, uids| uids.sort_by(|a, b| b.cmp(a)));
        start(
            v,
            tag,
            uid,
            &SearchKey::Seen,
            vec![4, 2],
            Order::Sorted(sort),
            &mut out,
        );
        assert!(out.buf.is_empty());
    }

    #[test]
    fn a_sorted_context_reports_places_in_its_order() {
        let (mut v, shared) = view();
        descending(&mut v, "s", true);
        // Sorted: [4, 2]. Seeing 3 and 5 makes [5, 4, 3, 2].
        v.set_local_flags(2, seen(true), 9);
        v.set_local_flags(4, seen(true), 10);
        assert_eq!(
            sync(&mut v),
            "* ESEARCH (TAG \"s\") UID ADDTO (1 5 3 3)\r\n"
        );
        // Unseeing 4 and 2: removed from the last place to the first.
        v.set_local_flags(3, seen(false), 11);
        v.set_local_flags(1, seen(false), 12);
        assert_eq!(
            sync(&mut v),
            "* ESEARCH (TAG \"s\") UID REMOVEFROM (4 2 2 4)\r\n"
        );
        // [5, 3]; message 3 goes, message 6 arrives seen: [6, 5].
        {
            let mut g = shared.lock().unwrap();
            g.0 = true;
            let mut msgs: Vec<MsgMeta> = (1..=5)
                .filter(|u| *u != 3)
                .map(|u| meta(u, u == 5))
                .collect();
            msgs.push(meta(6, true));
            g.1.messages = msgs;
        }
        let r = sync(&mut v);
        assert_eq!(
            r,
            "* ESEARCH (TAG \"s\") UID REMOVEFROM (2 3)\r\n\
             * 3 EXPUNGE\r\n\
             * 5 EXISTS\r\n\
             * 0 RECENT\r\n\
             * ESEARCH (TAG \"s\") UID ADDTO (1 6)\r\n",
        );
    }

    #[test]
    fn a_sequence_context_numbers_before_and_after_expunges() {
        let (mut v, shared) = view();
        let mut sink = |_: &[u8]| Ok(());
        let mut out = Out::new(&mut sink);
        start(
            &mut v,
            "q",
            false,
            &SearchKey::Seen,
            vec![2, 4],
            Order::Mailbox,
            &mut out,
        );
        // 2 goes, 5 is seen: REMOVEFROM in the old numbering, ADDTO in the new.
        {
            let mut g = shared.lock().unwrap();
            g.0 = true;
            g.1.messages = [1, 3, 4, 5].iter().map(|u| meta(*u, *u >= 4)).collect();
        }
        assert_eq!(
            sync(&mut v),
            "* ESEARCH (TAG \"q\") REMOVEFROM (0 2)\r\n\
             * 2 EXPUNGE\r\n\
             * 4 FETCH (UID 5 FLAGS (\\Seen))\r\n\
             * ESEARCH (TAG \"q\") ADDTO (0 4)\r\n",
        );
    }

    #[test]
    fn explicit_sets_compress_runs() {
        let s = explicit(&[1, 2, 3, 7, 9, 10]);
        let r: Vec<(u32, u32)> = s.ranges(0).collect();
        assert_eq!(r, vec![(1, 3), (7, 7), (9, 10)]);
        assert!(!explicit(&[]).contains(5, 10));
    }
}
