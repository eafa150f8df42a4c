//! A session's view of its selected folder: message sequence numbers as this
//! session knows them, and the untagged updates that bring it up to date.
//!
//! RFC 3501 7.4.1: "An EXPUNGE response MUST NOT be sent when no command is
//! in progress, nor while responding to a FETCH, STORE, or SEARCH command."
//! Messages expunged by another session stay in the view (as ghosts) until a
//! command that may announce them; their numbers keep pointing at them.

use super::session::{Enabled, Out};
use super::store::{Folder, MsgFlags, MsgMeta, Snapshot, StoreResult};

/// One message in the view.
#[derive(Debug, Clone)]
pub struct ViewMsg {
    pub meta: MsgMeta,
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
    /// SORT and THREAD keys parsed so far.
    pub sort_cache: super::sortkey::Cache,
    /// UIDs kept by `SEARCH RETURN (SAVE)` for `$` (RFC 5182); empty until
    /// then, and forgotten with the selection.
    pub saved: Vec<u32>,
}

impl View {
    pub fn open(name: String, mut folder: Box<dyn Folder>, read_only: bool) -> StoreResult<View> {
        let snap = folder.snapshot(!read_only)?;
        let keywords = snap
            .messages
            .iter()
            .flat_map(|m| m.flags.keywords.iter().cloned())
            .collect();
        Ok(View {
            name,
            read_only,
            folder,
            uidvalidity: snap.uidvalidity,
            uidnext: snap.uidnext,
            highest_modseq: snap.highest_modseq,
            msgs: snap
                .messages
                .into_iter()
                .map(|meta| ViewMsg { meta, ghost: false })
                .collect(),
            keywords,
            sort_cache: Default::default(),
            saved: Vec::new(),
        })
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
    pub fn flags_line(&self) -> String {
        let mut s = String::from("* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft");
        for k in &self.keywords {
            s.push(' ');
            s.push_str(k);
        }
        s.push(')');
        s
    }

    /// Records our own change to a message's flags (no echo later).
    pub fn set_local_flags(&mut self, idx: usize, flags: MsgFlags, modseq: u64) {
        self.msgs[idx].meta.flags = flags;
        self.msgs[idx].meta.modseq = modseq;
        self.highest_modseq = self.highest_modseq.max(modseq);
    }

    /// Brings the view up to date and writes the untagged responses:
    /// EXPUNGE (when `expunge`), EXISTS, RECENT, FETCH FLAGS.
    pub fn sync(&mut self, out: &mut Out, expunge: bool, enabled: Enabled) {
        let ghosts = expunge && self.msgs.iter().any(|m| m.ghost);
        if !ghosts && !self.folder.changed() {
            return;
        }
        let snap = match self.folder.snapshot(!self.read_only) {
            Ok(s) => s,
            Err(_) => return,
        };
        self.apply(snap, out, expunge, enabled);
    }

    fn apply(&mut self, snap: Snapshot, out: &mut Out, expunge: bool, enabled: Enabled) {
        // Merge by UID: both lists are in ascending order.
        let mut j = 0;
        let mut changed = Vec::new();
        for m in self.msgs.iter_mut() {
            while j < snap.messages.len() && snap.messages[j].uid < m.meta.uid {
                j += 1;
            }
            match snap.messages.get(j) {
                Some(s) if s.uid == m.meta.uid => {
                    if s.flags != m.meta.flags {
                        m.meta.flags = s.flags.clone();
                        changed.push(m.meta.uid);
                    }
                    m.meta.modseq = s.modseq;
                }
                _ => m.ghost = true,
            }
        }
        let max_uid = self.max_uid();
        let mut added = false;
        for s in snap.messages.iter().filter(|s| s.uid > max_uid) {
            self.msgs.push(ViewMsg {
                meta: s.clone(),
                ghost: false,
            });
            added = true;
        }
        let before = self.keywords.len();
        for m in &self.msgs {
            self.keywords.extend(m.meta.flags.keywords.iter().cloned());
        }
        if self.keywords.len() != before {
            out.line(&self.flags_line());
        }
        if expunge {
            // Highest first, so each number is still right when announced.
            for i in (0..self.msgs.len()).rev() {
                if self.msgs[i].ghost {
                    out.line(&format!("* {} EXPUNGE", i + 1));
                    self.msgs.remove(i);
                }
            }
        }
        for uid in changed {
            if let Some(i) = self.index_of_uid(uid) {
                let m = &self.msgs[i].meta;
                let modseq = if enabled.condstore {
                    format!(" MODSEQ ({})", m.modseq)
                } else {
                    String::new()
                };
                out.line(&format!(
                    "* {} FETCH (UID {} FLAGS ({}){modseq})",
                    i + 1,
                    uid,
                    flag_list(&m.flags, false)
                ));
            }
        }
        if added {
            out.line(&format!("* {} EXISTS", self.msgs.len()));
            if !enabled.rev2 {
                let recent = self.msgs.iter().filter(|m| m.meta.recent).count();
                out.line(&format!("* {recent} RECENT"));
            }
        }
        self.uidnext = snap.uidnext.max(self.uidnext);
        self.highest_modseq = snap.highest_modseq.max(self.highest_modseq);
    }
}

/// The flags of a message as a space-separated list (\Recent when asked).
pub fn flag_list(f: &MsgFlags, recent: bool) -> String {
    use super::store::SysFlags as S;
    let mut v: Vec<&str> = Vec::new();
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
    v.join(" ")
}
