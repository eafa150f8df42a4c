//! The copies of a list's mail: one file linked into the local members'
//! Maildirs (and the archive), and each remote member's through the queue.

use std::io::Read;
use std::path::PathBuf;

use super::{fnv64_bytes, inject, rewrite, Done, Message, Settings};
use crate::lists::store::Store;
use crate::lists::{List, Role};
use crate::local::fanout;
use crate::maildir::quota::Limits;
use crate::maildir::{Maildir, Target};

/// A local mailbox a list's mail goes to.
#[derive(Debug, Clone)]
pub(super) struct Local {
    /// The mailbox's key (`resolve::key`): names its delivery id.
    pub key: String,
    pub path: PathBuf,
    /// The mailbox's quota (all zero: none).
    pub quota: Limits,
    /// The member it is reached through.
    pub member: String,
}

/// The local members' copies and the archive's: one file, linked. A
/// mailbox the copy would take over its quota gets none: its member is
/// returned (logged and counted as a soft bounce by the caller), and the
/// others get theirs.
pub(super) fn deliver_local(
    list: &List,
    state: &std::path::Path,
    store: &Store,
    local: &[Local],
    data: &[u8],
    m: &Message<'_>,
    archive: bool,
) -> Result<Vec<String>, Done> {
    let mut dirs: Vec<Local> = local.to_vec();
    if archive {
        dirs.push(Local {
            key: "\0archive".into(),
            path: state.join("archive"),
            quota: Limits::default(),
            member: String::new(),
        });
    }
    if dirs.is_empty() {
        return Ok(Vec::new());
    }
    let prefix =
        crate::local::header::prefix(&list.role_address(&Role::Owner), Some(&list.address));
    let size = (prefix.len() + data.len()) as u64;
    // Maildirs made where missing (a member who never had mail yet), and
    // quotas read, many at once as they wait on the disk.
    let mut slots: Vec<(PathBuf, Limits, Option<String>, bool)> = dirs
        .iter()
        .map(|d| (d.path.clone(), d.quota, None, false))
        .collect();
    fanout::for_each_mut(&mut slots, |(p, quota, err, over)| {
        if !p.join("new").is_dir() || !p.join("tmp").is_dir() {
            if let Err(e) = Maildir::open_or_create(&*p) {
                *err = Some(format!("{}: {e}", p.display()));
                return;
            }
        }
        if *quota != Limits::default() {
            match Maildir::new(&*p).quota(Some(*quota)) {
                Ok(u) => *over = u.would_exceed(size),
                Err(e) => *err = Some(format!("{}: maildirsize: {e}", p.display())),
            }
        }
    });
    if let Some(f) = slots.iter().find_map(|(_, _, e, _)| e.clone()) {
        return Err(Done::deferred(format!("cannot create a maildir: {f}")));
    }
    let mut over_quota: Vec<String> = Vec::new();
    let mut kept = Vec::with_capacity(dirs.len());
    for (d, (_, _, _, over)) in dirs.into_iter().zip(slots) {
        if over {
            if !over_quota.iter().any(|x| x.eq_ignore_ascii_case(&d.member)) {
                over_quota.push(d.member);
            }
        } else {
            kept.push(d);
        }
    }
    let dirs = kept;
    if dirs.is_empty() {
        return Ok(over_quota);
    }
    let started = format!("{}\0started", m.qid);
    // The first attempt cannot find earlier copies: no look-up then.
    let fresh = !store.done(&started).unwrap_or(true);
    if fresh {
        if let Err(e) = store.mark_done(&[started], m.now) {
            return Err(Done::deferred(e.to_string()));
        }
    }
    let folders: Vec<_> = dirs.iter().map(|d| Maildir::new(&d.path).inbox()).collect();
    let lid = fnv64_bytes(list.address.to_ascii_lowercase().as_bytes());
    let ids: Vec<String> = dirs
        .iter()
        .map(|d| {
            format!(
                "{}.l{lid:016x}.{:016x}",
                m.qid,
                fnv64_bytes(d.key.as_bytes())
            )
        })
        .collect();
    let arrived = std::time::UNIX_EPOCH + std::time::Duration::from_secs(m.arrived);
    let targets: Vec<Target> = folders
        .iter()
        .zip(&ids)
        .map(|(f, id)| Target {
            folder: f,
            delivery_id: Some(id.as_str()),
            arrived: Some(arrived),
        })
        .collect();
    let mut input = (&prefix[..]).chain(data);
    let results = fanout::deliver(&targets, &mut input, fresh);
    let mut first_err = None;
    for (d, r) in dirs.iter().zip(results) {
        if let Err(e) = r {
            first_err.get_or_insert(format!("{}: {e}", d.path.display()));
        }
    }
    match first_err {
        Some(e) => Err(Done::deferred(format!(
            "cannot write a member's maildir: {e}"
        ))),
        None => Ok(over_quota),
    }
}

/// The remote members' copies, through kmp-inject. Returns how many were
/// handed over in this attempt. With VERP and a web URL, each member's own
/// copy carries its one-click unsubscribe link (RFC 8058), a token for that
/// member alone; the shared local copy has the mailto only.
pub(super) fn deliver_remote(
    s: &Settings,
    list: &List,
    store: &Store,
    remote: &[String],
    own_copy: &std::collections::HashSet<String>,
    data: &[u8],
    m: &Message<'_>,
) -> Result<usize, Done> {
    let todo: Vec<&String> = remote
        .iter()
        .filter(|a| {
            !store
                .done(&format!("{}\0{}", m.qid, a.to_ascii_lowercase()))
                .unwrap_or(false)
        })
        .collect();
    let groups: Vec<(String, Vec<String>)> = if s.verp {
        todo.iter()
            .map(|a| {
                let ret = list.role_address(&Role::Bounce(crate::lists::address::verp_arg(a)));
                (ret, vec![a.to_string()])
            })
            .collect()
    } else {
        let mut by: std::collections::BTreeMap<String, Vec<String>> = Default::default();
        for a in &todo {
            let d = a
                .rsplit_once('@')
                .map(|(_, d)| d)
                .unwrap_or("")
                .to_ascii_lowercase();
            by.entry(d).or_default().push(a.to_string());
        }
        let ret = list.role_address(&Role::Owner);
        by.into_values().map(|v| (ret.clone(), v)).collect()
    };
    // A copy of one member's own (VERP) carries its one-click link.
    let key = s.requests.key.as_ref().filter(|_| !s.web_url.is_empty());
    // kmp-inject waits on the queue's fsyncs: several at once.
    let mut failed: Vec<Option<String>> = vec![None; groups.len()];
    let each = |slot: &mut Option<String>, (ret, rcpts): &(String, Vec<String>)| {
        let own;
        let data = match (key, rcpts.as_slice()) {
            (Some(k), [member]) if s.verp && own_copy.contains(&member.to_ascii_lowercase()) => {
                let link = crate::lists::commands::unsubscribe_link(
                    k,
                    &s.web_url,
                    &list.address,
                    member,
                    m.now,
                    s.requests.unsubscribe_lifetime,
                );
                own = rewrite::with_one_click(data, &link);
                &own[..]
            }
            _ => data,
        };
        if let Err(e) = inject(s, ret, rcpts, data) {
            *slot = Some(format!(
                "cannot queue the copy for {}: {e}",
                rcpts.join(", ")
            ));
            return;
        }
        let keys: Vec<String> = rcpts
            .iter()
            .map(|a| format!("{}\0{}", m.qid, a.to_ascii_lowercase()))
            .collect();
        if let Err(e) = store.mark_done(&keys, m.now) {
            crate::warn!("{}: list {}: {e}", m.qid, list.address);
        }
    };
    if groups.len() < fanout::MIN_PARALLEL {
        for (slot, g) in failed.iter_mut().zip(&groups) {
            each(slot, g);
        }
    } else {
        fanout::parallel(&mut failed, &groups, each);
    }
    if let Some(e) = failed.iter().flatten().next() {
        return Err(Done::deferred(e.clone()));
    }
    Ok(groups.iter().map(|(_, r)| r.len()).sum())
}
