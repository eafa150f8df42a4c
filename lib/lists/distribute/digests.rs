//! A digest issue going out: kmp-local's part of `crate::lists::issue`
//! (the issue is prepared there; mail to `LIST-digest-N@` lands here).

use super::{
    deliver_local, deliver_remote, inject, soft_bounces, targets, Done, Message, Settings,
};
use crate::lists::store::Store;
use crate::lists::List;
use crate::local::resolve::Directory;

/// Sends the list's next digest if it is due now (kmp-local, after a post
/// kept for it or an issue distributed); a failure is logged, and the next
/// post or `kmpctl list digest --due` tries again.
pub(super) fn send_digest(s: &Settings, list: &List, state: &std::path::Path, m: &Message<'_>) {
    let o = crate::lists::issue::Options {
        plain: s.requests.digest_plain,
        hostname: &s.requests.hostname,
        now: m.now,
        force: false,
    };
    let mut send = |from: &str, to: &[String], data: &[u8]| inject(s, from, to, data);
    match crate::lists::issue::run(list, state, &o, &mut send) {
        Ok(r @ crate::lists::issue::Ran::Queued { .. }) => {
            crate::info!("{}: list {}: {r}", m.qid, list.address)
        }
        Ok(_) => {}
        Err(e) => crate::warn!("{}: list {}: digest not sent: {e}", m.qid, list.address),
    }
}

/// Mail to `LIST-digest-K@`: issue K, prepared in the list's state by
/// `crate::lists::issue::run`, goes to the digest members. The mail itself is
/// never sent on (anyone may write to that address); without the issue's
/// file (distributed already, or never prepared) nothing happens.
pub(super) fn digest_issue(
    s: &Settings,
    dir: &mut dyn Directory,
    list: &List,
    arg: &str,
    m: &Message<'_>,
) -> Done {
    let Ok(k) = arg.parse::<u64>() else {
        return Done::bounced(
            "5.1.1",
            format!("list {} has no digest {arg:?}", list.address),
        );
    };
    let state = list.state_dir(&s.mail_root);
    let ddir = crate::lists::issue::dir(&state);
    {
        // The lock keeps kmpctl from handing the issue over again while it
        // goes out; it is let go before the next issue is looked at.
        let _lock = match crate::maildir::lock::exclusive(&ddir.join(crate::lists::issue::LOCK)) {
            Ok(l) => l,
            Err(e) => return Done::deferred(format!("digest lock: {e}")),
        };
        let data = match std::fs::read(crate::lists::issue::issue_file(&state, k)) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                crate::info!(
                    "{}: list {}: digest #{k} is not waiting (sent already); nothing done",
                    m.qid,
                    list.address
                );
                return Done::sent(format!("digest #{k} of {} not waiting", list.address));
            }
            Err(e) => return Done::deferred(format!("digest #{k}: {e}")),
        };
        let store = match Store::open(&state) {
            Ok(st) => st,
            Err(e) => return Done::deferred(e.to_string()),
        };
        let members = match store.members() {
            Ok(v) => v,
            Err(e) => return Done::deferred(e.to_string()),
        };
        // The issue's own "queue id": delivery ids and done-marks name it.
        let qid = format!("digest{k}");
        let dm = Message {
            qid: &qid,
            sender: "",
            raw: &data,
            arrived: m.now,
            now: m.now,
        };
        let t = match targets(
            s,
            dir,
            list,
            members.iter().filter(|x| x.digest && !x.nomail),
            m.qid,
        ) {
            Ok(t) => t,
            Err(d) => return d,
        };
        let over_quota = match deliver_local(list, &state, &store, &t.local, &data, &dm, false) {
            Ok(v) => v,
            Err(d) => return d,
        };
        soft_bounces(s, list, &state, &over_quota, m);
        let sent = match deliver_remote(s, list, &store, &t.remote, &t.own_copy, &data, &dm) {
            Ok(n) => n,
            Err(d) => return d,
        };
        crate::lists::issue::done(&state, k);
        crate::info!(
            "{}: list {}: digest #{k} sent to {} local and {} remote members",
            m.qid,
            list.address,
            t.local.len(),
            sent
        );
    }
    send_digest(s, list, &state, m);
    Done::sent(format!("digest #{k} of {} sent", list.address))
}
