//! THREAD and UID THREAD (RFC 5256 3): ORDEREDSUBJECT and REFERENCES.
//!
//! Both work on the messages SEARCH would find, with the keys of
//! [`sortkey`] (base subject, sent date, Message-ID, References), and end
//! in a tree of [`Node`]s that is written as RFC 5256 4's thread list:
//! `(1 2 (3)(4))`, a dummy parent (a message referred to but not present)
//! giving no number.

use crate::proto::imap::response::{Data, Response};
use std::collections::HashMap;
use std::io;
use std::sync::Arc;

use super::search;
use super::sort::sent_date;
use crate::imapd::session::{Action, Out, Session, State};
use crate::imapd::sortkey::{self, Keys};
use crate::proto::imap::{SearchKey, ThreadAlgorithm};

#[allow(clippy::too_many_arguments)]
pub fn thread(
    s: &mut Session,
    tag: &str,
    uid: bool,
    algorithm: ThreadAlgorithm,
    charset: &str,
    key: &SearchKey,
    out: &mut Out,
) -> io::Result<Action> {
    let enabled = s.enabled;
    let State::Selected(_, view) = &mut s.state else {
        return Ok(Action::None);
    };
    let Some(key) = search::decode_key(key, Some(charset), tag, out) else {
        return Ok(Action::None);
    };
    let hits = search::matching(view, &key);
    let keys = sortkey::keys(view, &hits);
    let msgs: Vec<Msg> = hits
        .iter()
        .zip(keys)
        .map(|(&i, k)| Msg {
            number: search::number(view, i, uid),
            date: sent_date(&view.msgs[i].meta, Some(&k)),
            keys: k,
        })
        .collect();
    let forest = match algorithm {
        ThreadAlgorithm::OrderedSubject => ordered_subject(&msgs),
        ThreadAlgorithm::References => references(&msgs),
    };
    let forest = forest.write(&msgs);
    out.send(Response::Data(Data::Thread(&forest)));
    view.sync(out, uid, enabled);
    out.send(Response::ok(tag, "THREAD completed"));
    Ok(Action::None)
}

/// One message being threaded.
pub struct Msg {
    /// Its sequence number or UID, as the client asked.
    pub number: u32,
    /// Sent date (RFC 5256 2.2).
    pub date: i64,
    pub keys: Arc<Keys>,
}

/// A node of the thread tree: a message (index into the messages) or a
/// dummy.
#[derive(Debug, Default, Clone)]
struct Node {
    msg: Option<usize>,
    parent: Option<usize>,
    children: Vec<usize>,
}

/// The threads: the nodes and the roots, in output order.
pub struct Forest {
    nodes: Vec<Node>,
    roots: Vec<usize>,
}

impl Forest {
    /// RFC 5256 4: `(a b (c)(d))`; a node with one child is followed by it,
    /// one with several by each in parentheses.
    pub fn write(&self, msgs: &[Msg]) -> String {
        let mut s = String::new();
        for &r in &self.roots {
            s.push('(');
            self.write_node(r, msgs, &mut s);
            s.push(')');
        }
        s
    }

    fn write_node(&self, n: usize, msgs: &[Msg], s: &mut String) {
        // Iterative along single-child chains: a long reply chain must not
        // exhaust the stack.
        let mut n = n;
        loop {
            let node = &self.nodes[n];
            if let Some(m) = node.msg {
                s.push_str(&msgs[m].number.to_string());
            }
            match node.children.as_slice() {
                [] => return,
                [only] if node.msg.is_some() => {
                    s.push(' ');
                    n = *only;
                }
                kids => {
                    if node.msg.is_some() {
                        s.push(' ');
                    }
                    for &k in kids {
                        s.push('(');
                        self.write_node(k, msgs, s);
                        s.push(')');
                    }
                    return;
                }
            }
        }
    }

    /// The (sent date, number) a node sorts by: its message's, or a dummy's
    /// first child's (RFC 5256 3, REFERENCES step 6).
    fn sort_key(&self, n: usize, msgs: &[Msg]) -> (i64, u32) {
        let mut n = n;
        loop {
            let node = &self.nodes[n];
            match (node.msg, node.children.first()) {
                (Some(m), _) => return (msgs[m].date, msgs[m].number),
                (None, Some(&c)) => n = c,
                (None, None) => return (i64::MAX, u32::MAX),
            }
        }
    }

    /// Sorts every list of siblings, children first, by sent date then by
    /// number (mailbox order).
    fn sort(&mut self, msgs: &[Msg]) {
        // Post-order without recursion.
        let mut order = Vec::with_capacity(self.nodes.len());
        let mut stack: Vec<usize> = self.roots.clone();
        while let Some(n) = stack.pop() {
            order.push(n);
            stack.extend(self.nodes[n].children.iter().copied());
        }
        for &n in order.iter().rev() {
            let mut kids = std::mem::take(&mut self.nodes[n].children);
            kids.sort_by_key(|&k| self.sort_key(k, msgs));
            self.nodes[n].children = kids;
        }
        let mut roots = std::mem::take(&mut self.roots);
        roots.sort_by_key(|&r| self.sort_key(r, msgs));
        self.roots = roots;
    }
}

/// ORDEREDSUBJECT: messages sorted by base subject then sent date; each
/// run of one subject is a thread whose first message is the parent of
/// all the others; threads in the order of their first message's date.
pub fn ordered_subject(msgs: &[Msg]) -> Forest {
    let mut idx: Vec<usize> = (0..msgs.len()).collect();
    idx.sort_by(|&a, &b| {
        msgs[a]
            .keys
            .subject
            .cmp(&msgs[b].keys.subject)
            .then(msgs[a].date.cmp(&msgs[b].date))
            .then(msgs[a].number.cmp(&msgs[b].number))
    });
    let mut nodes: Vec<Node> = (0..msgs.len())
        .map(|m| Node {
            msg: Some(m),
            ..Node::default()
        })
        .collect();
    let mut roots = Vec::new();
    let mut i = 0;
    while i < idx.len() {
        let first = idx[i];
        let mut j = i + 1;
        while j < idx.len() && msgs[idx[j]].keys.subject == msgs[first].keys.subject {
            nodes[first].children.push(idx[j]);
            nodes[idx[j]].parent = Some(first);
            j += 1;
        }
        roots.push(first);
        i = j;
    }
    roots.sort_by_key(|&r| (msgs[r].date, msgs[r].number));
    Forest { nodes, roots }
}

/// REFERENCES (RFC 5256 3, after Jamie Zawinski's algorithm), steps 1 to 6.
pub fn references(msgs: &[Msg]) -> Forest {
    let mut f = Forest {
        nodes: Vec::new(),
        roots: Vec::new(),
    };
    let mut ids: HashMap<String, usize> = HashMap::new();
    let mut container = |f: &mut Forest, id: &str| -> usize {
        if let Some(&n) = ids.get(id) {
            return n;
        }
        f.nodes.push(Node::default());
        ids.insert(id.to_string(), f.nodes.len() - 1);
        f.nodes.len() - 1
    };
    for (m, msg) in msgs.iter().enumerate() {
        // 1A: the message's container; a duplicate Message-ID or none at
        // all gets a container of its own.
        let me = match msg.keys.message_id.as_deref() {
            Some(id) => {
                let n = container(&mut f, id);
                if f.nodes[n].msg.is_some() {
                    f.nodes.push(Node::default());
                    f.nodes.len() - 1
                } else {
                    n
                }
            }
            None => {
                f.nodes.push(Node::default());
                f.nodes.len() - 1
            }
        };
        f.nodes[me].msg = Some(m);
        // 1B: link the references in order, each the parent of the next,
        // unless already linked or a loop would form.
        let refs: Vec<usize> = msg
            .keys
            .references
            .iter()
            .map(|r| container(&mut f, r))
            .collect();
        for w in refs.windows(2) {
            let (p, c) = (w[0], w[1]);
            if f.nodes[c].parent.is_none() && p != c && !f.is_ancestor(c, p) {
                f.link(p, c);
            }
        }
        // 1C: the last reference is the parent: any older link goes first,
        // and none is made that would close a loop.
        if let Some(old) = f.nodes[me].parent {
            f.unlink(old, me);
        }
        if let Some(&p) = refs.last() {
            if p != me && !f.is_ancestor(me, p) {
                f.link(p, me);
            }
        }
    }
    // 2: the root set.
    let roots: Vec<usize> = (0..f.nodes.len())
        .filter(|&n| f.nodes[n].parent.is_none())
        .collect();
    // 4: prune dummies.
    f.roots = f.prune(roots, true);
    // 5: gather roots of the same base subject.
    f.group_by_subject(msgs);
    // 6: sort siblings.
    f.sort(msgs);
    f
}

impl Forest {
    /// Whether `a` is `b` or one of its ancestors.
    fn is_ancestor(&self, a: usize, b: usize) -> bool {
        let mut n = Some(b);
        while let Some(x) = n {
            if x == a {
                return true;
            }
            n = self.nodes[x].parent;
        }
        false
    }

    fn link(&mut self, parent: usize, child: usize) {
        self.nodes[child].parent = Some(parent);
        self.nodes[parent].children.push(child);
    }

    fn unlink(&mut self, parent: usize, child: usize) {
        self.nodes[child].parent = None;
        self.nodes[parent].children.retain(|&c| c != child);
    }

    /// Step 4: a dummy without children goes; a dummy with children gives
    /// them to its own level, except at the root when it has more than one.
    fn prune(&mut self, list: Vec<usize>, root: bool) -> Vec<usize> {
        let mut out = Vec::with_capacity(list.len());
        // Each node's subtree is pruned before the node is judged.
        for n in list {
            self.prune_below(n);
            let kids = self.nodes[n].children.clone();
            if self.nodes[n].msg.is_none() {
                if kids.is_empty() {
                    continue;
                }
                if !root || kids.len() == 1 {
                    for &k in &kids {
                        self.nodes[k].parent = None;
                    }
                    self.nodes[n].children.clear();
                    out.extend(kids);
                    continue;
                }
            }
            out.push(n);
        }
        out
    }

    /// Prunes the subtree under `top` (not `top` itself), bottom up.
    fn prune_below(&mut self, top: usize) {
        let mut order = Vec::new();
        let mut stack = vec![top];
        while let Some(n) = stack.pop() {
            order.push(n);
            stack.extend(self.nodes[n].children.iter().copied());
        }
        for &n in order.iter().rev() {
            let kids = std::mem::take(&mut self.nodes[n].children);
            let mut out = Vec::with_capacity(kids.len());
            for k in kids {
                if self.nodes[k].msg.is_none() {
                    // Its own children were pruned already (post-order).
                    let grand = std::mem::take(&mut self.nodes[k].children);
                    for &g in &grand {
                        self.nodes[g].parent = Some(n);
                    }
                    out.extend(grand);
                } else {
                    out.push(k);
                }
            }
            self.nodes[n].children = out;
        }
    }

    /// The base subject of a root: its message's, or a dummy's first
    /// child's.
    fn subject<'m>(&self, n: usize, msgs: &'m [Msg]) -> Option<&'m Keys> {
        let node = &self.nodes[n];
        let m = node
            .msg
            .or_else(|| node.children.first().and_then(|&c| self.nodes[c].msg))?;
        Some(&msgs[m].keys)
    }

    /// Step 5: roots whose base subjects match are put together.
    fn group_by_subject(&mut self, msgs: &[Msg]) {
        // 5B: one root per subject, preferring a dummy, then a message that
        // is not a reply or forward.
        let mut table: HashMap<&str, usize> = HashMap::new();
        for &r in &self.roots {
            let Some(k) = self.subject(r, msgs) else {
                continue;
            };
            if k.subject.is_empty() {
                continue;
            }
            match table.get(k.subject.as_str()) {
                None => {
                    table.insert(&k.subject, r);
                }
                Some(&old) => {
                    let old_dummy = self.nodes[old].msg.is_none();
                    let dummy = self.nodes[r].msg.is_none();
                    let old_reply = self.subject(old, msgs).is_some_and(|k| k.reply);
                    if !old_dummy && (dummy || (old_reply && !k.reply)) {
                        table.insert(&k.subject, r);
                    }
                }
            }
        }
        // 5C: merge each other root into the one in the table.
        let roots = std::mem::take(&mut self.roots);
        let mut kept = Vec::with_capacity(roots.len());
        for r in roots {
            if self.nodes[r].parent.is_some() {
                continue; // merged already, under a dummy made for it
            }
            let Some(k) = self.subject(r, msgs) else {
                kept.push(r);
                continue;
            };
            let t = match table.get(k.subject.as_str()) {
                Some(&t) if t != r && !k.subject.is_empty() => t,
                _ => {
                    kept.push(r);
                    continue;
                }
            };
            let t_dummy = self.nodes[t].msg.is_none();
            let r_dummy = self.nodes[r].msg.is_none();
            let t_reply = self.nodes[t].msg.is_some_and(|m| msgs[m].keys.reply);
            let r_reply = self.nodes[r].msg.is_some_and(|m| msgs[m].keys.reply);
            if t_dummy && r_dummy {
                let kids = std::mem::take(&mut self.nodes[r].children);
                for k in kids {
                    self.link(t, k);
                }
            } else if t_dummy || (!t_reply && r_reply) {
                self.link(t, r);
            } else {
                // Neither is the other's reply: both under a new dummy,
                // which takes the first one's place.
                self.nodes.push(Node::default());
                let d = self.nodes.len() - 1;
                let at = kept.iter().position(|&x| x == t);
                self.link(d, t);
                self.link(d, r);
                match at {
                    Some(p) => kept[p] = d,
                    None => kept.push(d),
                }
                let subject = msgs[self.nodes[t].msg.unwrap_or_default()]
                    .keys
                    .subject
                    .as_str();
                table.insert(subject, d);
            }
        }
        self.roots = kept;
    }
}
