//! A session's view of its selected folder: message sequence numbers as this
//! session knows them, and the untagged updates that bring it up to date.
//!
//! RFC 3501 7.4.1: "An EXPUNGE response MUST NOT be sent when no command is
//! in progress, nor while responding to a FETCH, STORE, or SEARCH command."
//! Messages expunged by another session stay in the view (as ghosts) until a
//! command that may announce them; their numbers keep pointing at them.

use std::sync::Arc;

use super::session::{Enabled, Out};
use super::store::{Folder, MsgFlags, MsgMeta, State, StoreResult};
use crate::proto::imap::response::{Data, FetchItem, Response};

/// One message in the view.
#[derive(Debug, Clone)]
pub struct ViewMsg {
    /// Shared with the folder's state and the other sessions' views while
    /// it is what this session last announced; a copy of its own when this
    /// session knows better (\Recent here, its own STORE not yet merged).
    pub meta: Arc<MsgMeta>,
    /// Gone from the folder, not yet announced.
    pub ghost: bool,
}

/// The selected folder.
pub struct View {
    pub name: String,
    pub read_only: bool,
    pub folder: Box<dyn Folder>,
    pub uidvalidity: u32,
    pub uidnext: u32,
    pub highest_modseq: u64,
    pub msgs: Vec<ViewMsg>,
    /// Keywords announced in FLAGS so far.
    pub keywords: std::collections::BTreeSet<String>,
    /// Searches kept up to date (RFC 5267 UPDATE): see `context.rs` for
    /// where `sync` must call them.
    pub contexts: super::context::Contexts,
    /// The folder state's generation last merged.
    generation: u64,
    /// How many of `msgs` are ghosts.
    ghosts: usize,
    /// The folder state's messages at the last merge.
    last: Arc<Vec<Arc<MsgMeta>>>,
    /// `msgs` was let go while the session idles because it was exactly
    /// `last`; [`View::unpark`] makes it again.
    parked: bool,
    /// SORT and THREAD keys parsed so far.
    pub sort_cache: super::sortkey::Cache,
    /// UIDs kept by `SEARCH RETURN (SAVE)` for `$` (RFC 5182); empty until
    /// then, and forgotten with the selection.
    pub saved: Vec<u32>,
    /// NOTIFY SET (SELECTED NONE) (RFC 5465 6): other sessions' changes
    /// are not told; the view stays as the client knows it until this
    /// session's own EXPUNGE or MOVE ([`View::sync_own`]).
    pub silent: bool,
}

impl View {
    pub fn open(name: String, mut folder: Box<dyn Folder>, read_only: bool) -> StoreResult<View> {
        let st = folder.state(!read_only)?;
        let keywords = st
            .messages
            .iter()
            .flat_map(|m| m.flags.keywords.iter().cloned())
            .collect();
        let recent: std::collections::HashSet<u32> = st.recent.iter().copied().collect();
        Ok(View {
            name,
            read_only,
            folder,
            uidvalidity: st.uidvalidity,
            uidnext: st.uidnext,
            highest_modseq: st.highest_modseq,
            msgs: st
                .messages
                .iter()
                .map(|m| ViewMsg {
                    meta: with_recent(m, recent.contains(&m.uid)),
                    ghost: false,
                })
                .collect(),
            keywords,
            contexts: Default::default(),
            generation: st.generation,
            ghosts: 0,
            last: st.messages,
            parked: false,
            sort_cache: Default::default(),
            saved: Vec::new(),
            silent: false,
        })
    }

    /// Lets go of the session's own list of messages while it idles, when
    /// it is the folder state's list as it was at the last merge (no
    /// ghosts, no \Recent or other copies of its own): thousands of idle
    /// sessions on one folder then hold one list between them.
    pub fn park(&mut self) {
        if self.parked || self.ghosts > 0 || self.msgs.len() != self.last.len() {
            return;
        }
        let same = self
            .msgs
            .iter()
            .zip(self.last.iter())
            .all(|(m, s)| Arc::ptr_eq(&m.meta, s));
        if same {
            self.msgs = Vec::new();
            self.parked = true;
        }
    }

    /// Makes the session's list again after [`View::park`] (before any
    /// command looks at `msgs`).
    pub fn unpark(&mut self) {
        if std::mem::take(&mut self.parked) {
            self.msgs = self
                .last
                .iter()
                .map(|m| ViewMsg {
                    meta: m.clone(),
                    ghost: false,
                })
                .collect();
        }
    }

    pub fn exists(&self) -> u32 {
        self.msgs.len() as u32
    }

    /// The largest UID in the view (for `*` in UID sets), 0 when empty.
    pub fn max_uid(&self) -> u32 {
        self.msgs.last().map(|m| m.meta.uid).unwrap_or(0)
    }

    /// Index of the message with `uid`.
    pub fn index_of_uid(&self, uid: u32) -> Option<usize> {
        self.msgs.binary_search_by_key(&uid, |m| m.meta.uid).ok()
    }

    /// `* FLAGS (...)` listing system flags and known keywords.
    pub fn flags_response(&self) -> Response<'_> {
        let mut v = vec!["\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft"];
        v.extend(self.keywords.iter().map(String::as_str));
        Response::Data(Data::Flags(v))
    }

    /// Records our own change to a message's flags (no echo later).
    pub fn set_local_flags(&mut self, idx: usize, flags: MsgFlags, modseq: u64) {
        let m = Arc::make_mut(&mut self.msgs[idx].meta);
        m.flags = flags;
        m.modseq = modseq;
        self.contexts.touch(self.msgs[idx].meta.uid);
        self.highest_modseq = self.highest_modseq.max(modseq);
    }

    /// Whether [`View::sync`] would have anything to do (cheap: a
    /// generation number and three `stat`s).
    pub fn needs_sync(&mut self, expunge: bool) -> bool {
        !self.silent && ((expunge && self.ghosts > 0) || self.folder.changed())
    }

    /// Brings the view up to date and writes the untagged responses:
    /// EXPUNGE (when `expunge`), EXISTS, RECENT, FETCH FLAGS; nothing
    /// while the client asked for silence ([`View::silent`]).
    pub fn sync(&mut self, out: &mut Out, expunge: bool, enabled: Enabled) {
        if self.silent {
            self.update_contexts(out);
            self.announce_contexts(out);
            return;
        }
        self.sync_own(out, expunge, enabled);
    }

    /// [`View::sync`] even when silent: after the session's own EXPUNGE
    /// or MOVE, whose EXPUNGE responses are the command's answer (RFC 3501
    /// 6.4.3) and keep the client's numbers right.
    pub fn sync_own(&mut self, out: &mut Out, expunge: bool, enabled: Enabled) {
        let ghosts = expunge && self.ghosts > 0;
        if !ghosts && !self.folder.changed() {
            // This session's own changes may still move search results.
            self.update_contexts(out);
            self.announce_contexts(out);
            return;
        }
        let st = match self.folder.state(!self.read_only) {
            Ok(s) => s,
            Err(_) => return,
        };
        self.unpark();
        self.apply(st, out, expunge, enabled);
    }

    fn apply(&mut self, st: State, out: &mut Out, expunge: bool, enabled: Enabled) {
        let mut changed = Vec::new();
        let mut keywords_grew = false;
        if st.generation != self.generation || !st.recent.is_empty() {
            // Merge by UID: both lists are in ascending order, and a message
            // whose pointer is the shared one is unchanged for this view.
            let mut j = 0;
            for m in self.msgs.iter_mut() {
                if m.ghost {
                    continue;
                }
                while j < st.messages.len() && st.messages[j].uid < m.meta.uid {
                    j += 1;
                }
                match st.messages.get(j) {
                    Some(s) if s.uid == m.meta.uid => {
                        if Arc::ptr_eq(&m.meta, s)
                            || (m.meta.recent
                                && m.meta.modseq == s.modseq
                                && m.meta.flags == s.flags)
                        {
                            continue;
                        }
                        if s.modseq != m.meta.modseq {
                            self.contexts.touch(m.meta.uid);
                        }
                        if s.flags != m.meta.flags {
                            changed.push(m.meta.uid);
                            keywords_grew |= !s.flags.keywords.is_subset(&self.keywords);
                        }
                        m.meta = with_recent(s, m.meta.recent);
                    }
                    _ => {
                        self.contexts.touch(m.meta.uid);
                        m.ghost = true;
                        self.ghosts += 1;
                    }
                }
            }
            let max_uid = self.max_uid();
            let start = st.messages.partition_point(|s| s.uid <= max_uid);
            for s in &st.messages[start..] {
                self.contexts.touch(s.uid);
                keywords_grew |= !s.flags.keywords.is_subset(&self.keywords);
                self.msgs.push(ViewMsg {
                    meta: with_recent(s, st.recent.contains(&s.uid)),
                    ghost: false,
                });
            }
            let added = st.messages.len() > start;
            if keywords_grew {
                for m in &self.msgs {
                    self.keywords.extend(m.meta.flags.keywords.iter().cloned());
                }
                out.send(self.flags_response());
            }
            self.generation = st.generation;
            self.last = st.messages;
            self.announce(out, expunge, enabled, changed, added);
        } else {
            self.announce(out, expunge, enabled, changed, false);
        }
        self.uidnext = st.uidnext.max(self.uidnext);
        self.highest_modseq = st.highest_modseq.max(self.highest_modseq);
    }

    /// Writes EXPUNGE (when allowed), FETCH FLAGS, EXISTS and RECENT.
    fn announce(
        &mut self,
        out: &mut Out,
        expunge: bool,
        enabled: Enabled,
        changed: Vec<u32>,
        added: bool,
    ) {
        for uid in &changed {
            self.contexts.touch(*uid);
        }
        // RFC 5267 4.3.4: REMOVEFROM before the EXPUNGE it follows from.
        self.update_contexts(out);
        if expunge && self.ghosts > 0 && enabled.qresync {
            // RFC 7162 3.2.10: once QRESYNC is on, VANISHED replaces EXPUNGE.
            let gone: Vec<u32> = self
                .msgs
                .iter()
                .filter(|m| m.ghost)
                .map(|m| m.meta.uid)
                .collect();
            self.msgs.retain(|m| !m.ghost);
            self.ghosts = 0;
            let uids = crate::imapd::cmd::uid_set(&gone);
            out.send(Response::Data(Data::Vanished {
                earlier: false,
                uids: &uids,
            }));
        } else if expunge && self.ghosts > 0 {
            // Highest first, so each number is still right when announced.
            for i in (0..self.msgs.len()).rev() {
                if self.msgs[i].ghost {
                    out.send(Response::Data(Data::Expunge(i as u32 + 1)));
                }
            }
            self.msgs.retain(|m| !m.ghost);
            self.ghosts = 0;
        }
        for uid in changed {
            if let Some(i) = self.index_of_uid(uid) {
                let m = &self.msgs[i].meta;
                let mut items = vec![
                    FetchItem::Uid(uid),
                    FetchItem::Flags(flag_names(&m.flags, false)),
                ];
                if enabled.condstore {
                    items.push(FetchItem::ModSeq(m.modseq));
                }
                out.send(Response::Data(Data::Fetch {
                    seq: i as u32 + 1,
                    items,
                }));
            }
        }
        if added {
            out.send(Response::Data(Data::Exists(self.msgs.len() as u32)));
            if !enabled.rev2 {
                let recent = self.msgs.iter().filter(|m| m.meta.recent).count();
                out.send(Response::Data(Data::Recent(recent as u32)));
            }
        }
        // RFC 5267 4.3.3: ADDTO after the EXISTS that numbers its messages.
        self.announce_contexts(out);
    }
}

/// The shared message, or a copy of its own marked \Recent.
fn with_recent(m: &Arc<MsgMeta>, recent: bool) -> Arc<MsgMeta> {
    if recent {
        Arc::new(MsgMeta {
            recent: true,
            ..(**m).clone()
        })
    } else {
        m.clone()
    }
}

/// The flags of a message as a space-separated list (\Recent when asked).
pub fn flag_list(f: &MsgFlags, recent: bool) -> String {
    flag_names(f, recent).join(" ")
}

/// The flags of a message (\Recent when asked), for a FETCH response.
pub fn flag_names(f: &MsgFlags, recent: bool) -> Vec<&str> {
    use super::store::SysFlags as S;
    let mut v: Vec<&str> = Vec::with_capacity(6 + f.keywords.len());
    for (bit, name) in [
        (S::SEEN, "\\Seen"),
        (S::ANSWERED, "\\Answered"),
        (S::FLAGGED, "\\Flagged"),
        (S::DELETED, "\\Deleted"),
        (S::DRAFT, "\\Draft"),
    ] {
        if f.sys.has(bit) {
            v.push(name);
        }
    }
    if recent {
        v.push("\\Recent");
    }
    for k in &f.keywords {
        v.push(k);
    }
    v
}
