//! One run of one account: log in, list, fetch what is new into the queue,
//! mark it, delete what the account says to delete, log out.
//!
//! The order that makes a crash harmless, per message: fetch it whole into
//! a queue file (`incoming/tmp/`), write `?` (pending) in the seen log,
//! commit the queue file (fsync, link into `new/`, directory fsync), write
//! `+` (fetched). A kill anywhere leaves either no committed file (fetched
//! again next time) or a committed file and a mark (`?` is settled at
//! start, see `state`): never a loss, never a second copy. Deletions on the
//! server come last, after one fsync of the seen log: a message is only
//! ever deleted once its mark is durable, and a POP3 DELE takes effect
//! only at QUIT, so a connection lost before it deletes nothing.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::handoff::Handoff;
use super::pop3;
use super::seal::PrivateKey;
use super::state::{self, Mark, Seen};
use crate::imapc;
use crate::ipc::fetch::{FetchAccount, Keep, Protocol, Tls};

/// What a run needs from the daemon.
pub struct Env<'a> {
    pub incoming: PathBuf,
    pub kick: PathBuf,
    pub hostname: String,
    pub state_dir: PathBuf,
    pub max_size: u64,
    pub timeout: Duration,
    /// PEM authorities for the remote servers; None: the system's.
    pub ca_file: Option<PathBuf>,
    pub key: &'a PrivateKey,
    /// Set on SIGTERM: the run ends after the message in hand.
    pub stop: &'a AtomicBool,
}

/// What a run did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    pub fetched: u64,
    pub deleted: u64,
    pub too_big: u64,
}

/// Why a run ended early, with what it did before.
#[derive(Debug)]
pub struct RunError {
    pub message: String,
    pub done: Outcome,
}

fn fail(message: impl Into<String>, done: Outcome) -> RunError {
    RunError {
        message: message.into(),
        done,
    }
}

fn now() -> u64 {
    crate::clock::Clock::System.now()
}

/// Whether a message fetched earlier is to be deleted on the server now.
pub fn due_for_deletion(keep: Keep, m: Mark, now: u64) -> bool {
    if m.too_big {
        return false;
    }
    match keep {
        Keep::Keep => false,
        Keep::Delete => true,
        Keep::DeleteAfter { days } => now >= m.time.saturating_add(u64::from(days) * 86400),
    }
}

fn via(a: &FetchAccount) -> &'static str {
    match (a.protocol, a.tls) {
        (Protocol::Pop3, Tls::None) => "POP3",
        (Protocol::Pop3, _) => "POP3S",
        (Protocol::Imap, Tls::None) => "IMAP",
        (Protocol::Imap, _) => "IMAPS",
    }
}

/// Runs the account once.
pub fn run(env: &Env, a: &FetchAccount) -> Result<Outcome, RunError> {
    let password = env
        .key
        .open(&a.password, &a.owner)
        .map_err(|e| fail(format!("the stored password: {e}"), Outcome::default()))?;
    let id = state::account_id(a);
    let mut seen = Seen::open(&env.state_dir, &id, &env.incoming, now()).map_err(|e| {
        fail(
            format!("{}: {e}", env.state_dir.display()),
            Outcome::default(),
        )
    })?;
    let r = match a.protocol {
        Protocol::Pop3 => run_pop3(env, a, &password, &mut seen),
        Protocol::Imap => run_imap(env, a, &password, &mut seen),
    };
    if let Err(e) = seen.compact() {
        crate::warn!("{}/{}: seen log not compacted: {e}", a.owner, a.name);
    }
    r
}

/// Connects and logs in; returns how many messages the server holds.
pub fn test(env: &Env, a: &FetchAccount) -> Result<(u64, String), RunError> {
    let password = env
        .key
        .open(&a.password, &a.owner)
        .map_err(|e| fail(format!("the stored password: {e}"), Outcome::default()))?;
    let none = Outcome::default();
    match a.protocol {
        Protocol::Pop3 => {
            let mut c = pop3::Client::connect(&pop3_target(env, a))
                .map_err(|e| fail(e.to_string(), none))?;
            c.login(&a.username, &password)
                .map_err(|e| fail(e.to_string(), none))?;
            let n = c.uidl().map_err(|e| fail(e.to_string(), none))?.len() as u64;
            let _ = c.quit();
            Ok((n, format!("{n} messages on the server")))
        }
        Protocol::Imap => {
            let mut c = imap_connect(env, a, &password).map_err(|e| fail(e, none))?;
            let mut n = 0;
            for f in a.remote_folders() {
                let sel = c
                    .select(&f, true)
                    .map_err(|e| fail(format!("{f}: {e}"), none))?;
                n += u64::from(sel.exists);
            }
            let _ = c.logout();
            Ok((
                n,
                format!("{n} messages in {}", a.remote_folders().join(", ")),
            ))
        }
    }
}

fn pop3_target<'a>(env: &'a Env, a: &'a FetchAccount) -> pop3::Target<'a> {
    pop3::Target {
        host: &a.host,
        port: a.port,
        tls: a.tls,
        verify: a.verify,
        ca_file: env.ca_file.as_deref(),
        timeout: env.timeout,
    }
}

fn run_pop3(
    env: &Env,
    a: &FetchAccount,
    password: &crate::proto::sasl::Secret,
    seen: &mut Seen,
) -> Result<Outcome, RunError> {
    let mut done = Outcome::default();
    let mut c =
        pop3::Client::connect(&pop3_target(env, a)).map_err(|e| fail(e.to_string(), done))?;
    c.login(&a.username, password)
        .map_err(|e| fail(e.to_string(), done))?;
    let ids = c.uidl().map_err(|e| fail(e.to_string(), done))?;
    let sizes = c.list().map_err(|e| fail(e.to_string(), done))?;
    let io = |e: std::io::Error, done| fail(format!("the seen log: {e}"), done);
    let mut delete: Vec<(u32, String)> = Vec::new();
    let mut broken: Option<String> = None;
    for (n, uidl) in &ids {
        if env.stop.load(Ordering::Relaxed) {
            break;
        }
        let t = now();
        if let Some(m) = seen.get("", uidl) {
            if due_for_deletion(a.keep, m, t) {
                delete.push((*n, uidl.clone()));
            }
            continue;
        }
        if sizes.get(n).copied().unwrap_or(0) > env.max_size {
            crate::warn!(
                "{}/{}: message {uidl} is over the size limit; left on the server",
                a.owner,
                a.name
            );
            seen.mark("", uidl, t, true).map_err(|e| io(e, done))?;
            done.too_big += 1;
            continue;
        }
        let mut h = Handoff::begin(&env.incoming, &env.hostname, a, via(a))
            .map_err(|e| fail(format!("the queue: {e}"), done))?;
        let mut qerr = None;
        let r = c.retr(*n, env.max_size, &mut |line| {
            h.write(line).map_err(|e| {
                qerr = Some(e.to_string());
                pop3::Error::Io(std::io::Error::other("queue write failed"))
            })
        });
        match r {
            Ok(()) => {}
            Err(pop3::Error::TooBig) => {
                seen.mark("", uidl, t, true).map_err(|e| io(e, done))?;
                done.too_big += 1;
                continue;
            }
            Err(e) => {
                broken = Some(match qerr {
                    Some(q) => format!("the queue: {q}"),
                    None => format!("message {uidl}: {e}"),
                });
                break;
            }
        }
        let qid = h.id().to_string();
        seen.pending("", uidl, &qid, t).map_err(|e| io(e, done))?;
        let qid = h
            .commit(a, &env.kick)
            .map_err(|e| fail(format!("the queue: {e}"), done))?;
        seen.mark("", uidl, t, false).map_err(|e| io(e, done))?;
        crate::info!(
            "{qid}: fetched from {} for {} account {:?} uidl={uidl}",
            a.host,
            a.owner,
            a.name
        );
        done.fetched += 1;
        if a.keep == Keep::Delete {
            delete.push((*n, uidl.clone()));
        }
    }
    if let Some(e) = broken {
        // The connection may be anywhere in a reply: no DELE, no QUIT.
        return Err(fail(e, done));
    }
    if !delete.is_empty() {
        seen.sync().map_err(|e| io(e, done))?;
        for (n, _) in &delete {
            c.dele(*n).map_err(|e| fail(e.to_string(), done))?;
        }
    }
    c.quit().map_err(|e| fail(e.to_string(), done))?;
    // After QUIT's +OK the deleted messages are gone; so is anything the
    // server no longer lists.
    let listed: HashSet<&str> = ids.iter().map(|(_, u)| u.as_str()).collect();
    let gone: HashSet<&str> = delete.iter().map(|(_, u)| u.as_str()).collect();
    for (k, _) in seen.in_folder("") {
        if gone.contains(k.as_str()) || !listed.contains(k.as_str()) {
            seen.forget("", &k).map_err(|e| io(e, done))?;
        }
    }
    done.deleted = delete.len() as u64;
    Ok(done)
}

fn imap_connect(
    env: &Env,
    a: &FetchAccount,
    password: &crate::proto::sasl::Secret,
) -> Result<imapc::Client, String> {
    let ca = if a.verify {
        env.ca_file.clone()
    } else {
        Some(PathBuf::from(imapc::conn::NO_VERIFY))
    };
    let e = imapc::Endpoint {
        host: a.host.clone(),
        port: a.port,
        security: match a.tls {
            Tls::Implicit => imapc::Security::Tls,
            Tls::Starttls => imapc::Security::StartTls,
            Tls::None => imapc::Security::Plain,
        },
        ca_file: ca,
        timeout: env.timeout,
    };
    let mut c = imapc::Client::connect(&e).map_err(|e| e.to_string())?;
    let pw = password
        .as_str()
        .ok_or_else(|| "the password is not UTF-8".to_string())?;
    c.login(&a.username, pw).map_err(|e| match e {
        imapc::Error::Auth => "IMAP login refused (wrong user name or password?)".to_string(),
        e => e.to_string(),
    })?;
    Ok(c)
}

fn run_imap(
    env: &Env,
    a: &FetchAccount,
    password: &crate::proto::sasl::Secret,
    seen: &mut Seen,
) -> Result<Outcome, RunError> {
    let mut done = Outcome::default();
    let mut c = imap_connect(env, a, password).map_err(|e| fail(e, done))?;
    let io = |e: std::io::Error, done| fail(format!("the seen log: {e}"), done);
    for folder in a.remote_folders() {
        if env.stop.load(Ordering::Relaxed) {
            break;
        }
        let ferr = |e: imapc::Error, done| fail(format!("{folder}: {e}"), done);
        // EXAMINE when nothing is to be deleted: no flag changes at all.
        let sel = c
            .select(&folder, a.keep == Keep::Keep)
            .map_err(|e| ferr(e, done))?;
        if seen.validity(&folder) != Some(sel.uidvalidity) {
            if seen.validity(&folder).is_some() {
                crate::warn!(
                    "{}/{}: {folder}: UIDVALIDITY changed; its messages are all new now",
                    a.owner,
                    a.name
                );
            }
            seen.set_validity(&folder, sel.uidvalidity)
                .map_err(|e| io(e, done))?;
        }
        let uids = if sel.exists == 0 {
            Vec::new()
        } else {
            c.uids_from(1).map_err(|e| ferr(e, done))?
        };
        let listed: HashSet<u32> = uids.iter().copied().collect();
        let mut expunge: Vec<u32> = Vec::new();
        for (k, m) in seen.in_folder(&folder) {
            let Ok(uid) = k.parse::<u32>() else { continue };
            if !listed.contains(&uid) {
                seen.forget(&folder, &k).map_err(|e| io(e, done))?;
            } else if due_for_deletion(a.keep, m, now()) {
                expunge.push(uid);
            }
        }
        for uid in uids {
            if env.stop.load(Ordering::Relaxed) {
                break;
            }
            let key = uid.to_string();
            if seen.get(&folder, &key).is_some() {
                continue;
            }
            let t = now();
            let Some(body) = c.fetch_raw(uid).map_err(|e| ferr(e, done))? else {
                continue; // expunged meanwhile
            };
            if body.len() as u64 > env.max_size {
                crate::warn!(
                    "{}/{}: {folder} UID {uid} is over the size limit; left on the server",
                    a.owner,
                    a.name
                );
                seen.mark(&folder, &key, t, true).map_err(|e| io(e, done))?;
                done.too_big += 1;
                continue;
            }
            let qerr = |e: crate::queue::QueueError, done| fail(format!("the queue: {e}"), done);
            let mut h = Handoff::begin(&env.incoming, &env.hostname, a, via(a))
                .map_err(|e| qerr(e, done))?;
            h.write_crlf(&body).map_err(|e| qerr(e, done))?;
            drop(body);
            let qid = h.id().to_string();
            seen.pending(&folder, &key, &qid, t)
                .map_err(|e| io(e, done))?;
            let qid = h.commit(a, &env.kick).map_err(|e| qerr(e, done))?;
            seen.mark(&folder, &key, t, false)
                .map_err(|e| io(e, done))?;
            crate::info!(
                "{qid}: fetched from {} for {} account {:?} folder={folder:?} uid={uid}",
                a.host,
                a.owner,
                a.name
            );
            done.fetched += 1;
            if a.keep == Keep::Delete {
                expunge.push(uid);
            }
        }
        if !expunge.is_empty() {
            seen.sync().map_err(|e| io(e, done))?;
            // \Deleted on exactly these, then UID EXPUNGE (or EXPUNGE when
            // nothing else is marked): imapc's expunge.
            c.expunge(&expunge).map_err(|e| ferr(e, done))?;
            for uid in &expunge {
                seen.forget(&folder, &uid.to_string())
                    .map_err(|e| io(e, done))?;
            }
            done.deleted += expunge.len() as u64;
        }
    }
    let _ = c.logout();
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deletion_follows_the_account() {
        let m = Mark {
            time: 1000,
            too_big: false,
        };
        assert!(!due_for_deletion(Keep::Keep, m, 5000));
        assert!(due_for_deletion(Keep::Delete, m, 1000));
        let after = Keep::DeleteAfter { days: 1 };
        assert!(!due_for_deletion(after, m, 1000 + 86399));
        assert!(due_for_deletion(after, m, 1000 + 86400));
        let big = Mark {
            time: 0,
            too_big: true,
        };
        assert!(!due_for_deletion(Keep::Delete, big, 5000));
    }
}
