//! LIST and LSUB (RFC 3501 6.3.8-9), with LIST-EXTENDED (RFC 5258),
//! CHILDREN (RFC 3348), SPECIAL-USE (RFC 6154) and LIST-STATUS (RFC 5819).

use std::collections::{BTreeMap, BTreeSet};

use super::store_error;
use crate::imapd::names::{self, DELIMITER};
use crate::imapd::session::{Action, Out, Session, State};
use crate::proto::imap::response::{Data, Response};
use crate::proto::imap::ListArgs;

/// What is known of one name in the listing.
#[derive(Default)]
struct Entry {
    exists: bool,
    special: Option<&'static str>,
    subscribed: bool,
    children: bool,
}

pub fn list(s: &mut Session, tag: &str, args: &ListArgs, out: &mut Out) -> Action {
    let utf8 = s.enabled.utf8;
    let auth = match &mut s.state {
        State::Authenticated(a) | State::Selected(a, _) => a,
        _ => return Action::None,
    };
    // LIST "" "" asks for the delimiter (RFC 3501 6.3.8).
    if !args.lsub && args.patterns.len() == 1 && args.patterns[0].is_empty() {
        out.send(Response::Data(Data::List {
            lsub: false,
            attrs: vec!["\\Noselect"],
            name: "",
            childinfo: false,
            oldname: None,
        }));
        out.send(Response::ok(tag, "LIST completed"));
        return Action::None;
    }
    let folders = match auth.store.folders() {
        Ok(f) => f,
        Err(e) => {
            store_error(out, tag, &e);
            return Action::None;
        }
    };
    let subs: BTreeSet<String> = match auth.store.subscriptions() {
        Ok(v) => v.into_iter().collect(),
        Err(e) => {
            store_error(out, tag, &e);
            return Action::None;
        }
    };
    let mut entries: BTreeMap<String, Entry> = BTreeMap::new();
    for f in &folders {
        let e = entries.entry(f.name.clone()).or_default();
        e.exists = true;
        e.special = f.special_use;
    }
    for n in &subs {
        entries.entry(n.clone()).or_default().subscribed = true;
    }
    // Parents of every name, existing or not, and who has children.
    let names: Vec<String> = entries.keys().cloned().collect();
    for n in &names {
        let mut p = n.as_str();
        while let Some((parent, _)) = p.rsplit_once(DELIMITER) {
            let e = entries.entry(parent.to_string()).or_default();
            if entries_has_real(&folders, n) {
                e.children = true;
            }
            p = parent;
        }
    }
    let reference = names::decode_pattern(&args.reference, utf8).unwrap_or_default();
    let mut patterns = Vec::new();
    for p in &args.patterns {
        let Some(p) = names::decode_pattern(p, utf8) else {
            continue;
        };
        patterns.push(if reference.is_empty() || p.starts_with(DELIMITER) {
            p
        } else if reference.ends_with(DELIMITER) {
            format!("{reference}{p}")
        } else {
            format!("{reference}{DELIMITER}{p}")
        });
    }
    let select_subscribed = args.lsub || args.subscribed;
    let parents = subscribed_parents(&subs, &patterns, args);
    for (name, e) in &entries {
        if !patterns.iter().any(|p| names::matches(p, name)) {
            continue;
        }
        let mut attrs: Vec<&str> = Vec::new();
        // A parent listed only for a subscribed child the pattern left out.
        let mut childinfo = false;
        if select_subscribed {
            if !e.subscribed {
                if !parents.contains(name.as_str()) {
                    continue;
                }
                childinfo = true;
                if args.lsub {
                    attrs.push("\\Noselect");
                }
            }
        } else if !e.exists && !e.children {
            continue;
        }
        if args.special_use_only && e.special.is_none() {
            continue;
        }
        // LSUB's parent is \Noselect already.
        let lsub_parent = childinfo && args.lsub;
        if !e.exists && !lsub_parent {
            if select_subscribed && args.extended {
                attrs.push("\\NonExistent");
            } else {
                attrs.push("\\Noselect");
            }
        }
        if !args.lsub {
            attrs.push(if e.children {
                "\\HasChildren"
            } else {
                "\\HasNoChildren"
            });
        }
        if (args.ret_subscribed || (args.subscribed && args.extended)) && e.subscribed {
            attrs.push("\\Subscribed");
        }
        if let Some(su) = e.special {
            if !args.lsub {
                attrs.push(su);
            }
        }
        out.send(Response::Data(Data::List {
            lsub: args.lsub,
            attrs,
            name,
            childinfo: childinfo && !args.lsub,
            oldname: None,
        }));
        if e.exists && args.ret_status.is_some() {
            if let Some(items) = &args.ret_status {
                super::status::write_status(auth, name, items, out);
            }
        }
    }
    out.send(Response::ok(
        tag,
        if args.lsub {
            "LSUB completed"
        } else {
            "LIST completed"
        },
    ));
    Action::None
}

/// The names a subscribed-only listing shows although they are not
/// subscribed, because a subscribed descendant of theirs is not listed:
/// - LIST (SUBSCRIBED RECURSIVEMATCH) (RFC 5258 3.5): every ancestor of a
///   subscribed name that matches no pattern, shown with
///   `CHILDINFO ("SUBSCRIBED")` when the ancestor itself matches;
/// - LSUB (RFC 3501 6.3.9): "if "foo/bar" is subscribed but "foo" is not. A
///   "%" wildcard to LSUB must return foo, not foo/bar [...] flagged with the
///   \Noselect attribute": the ancestors of a subscribed name that a
///   pattern misses only because its `%` stops at the delimiter.
fn subscribed_parents<'a>(
    subs: &'a BTreeSet<String>,
    patterns: &[String],
    args: &ListArgs,
) -> BTreeSet<&'a str> {
    let mut marked = BTreeSet::new();
    let recursive = args.subscribed && args.recursive_match;
    if !args.lsub && !recursive {
        return marked;
    }
    let deep: Vec<String> = patterns.iter().map(|p| p.replace('%', "*")).collect();
    for d in subs {
        if patterns.iter().any(|p| names::matches(p, d)) {
            continue;
        }
        if args.lsub && !deep.iter().any(|p| names::matches(p, d)) {
            continue;
        }
        let mut p = d.as_str();
        while let Some((parent, _)) = p.rsplit_once(DELIMITER) {
            marked.insert(parent);
            p = parent;
        }
    }
    marked
}

/// Whether `n` is a real folder (children attributes count only real ones).
fn entries_has_real(folders: &[crate::imapd::store::FolderInfo], n: &str) -> bool {
    folders.iter().any(|f| f.name == n)
}
