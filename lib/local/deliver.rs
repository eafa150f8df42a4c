//! One job, start to end: loop checks, resolution of every recipient,
//! Maildir preparation and quota, single-instance delivery, quota warnings,
//! one log line per delivery, and one result per recipient.
//!
//! How results are decided for a recipient that expands to several targets:
//! a temporary failure of any local target makes the whole recipient
//! Deferred (the retry finds the targets already served by their delivery
//! ids, and non-local targets are only handed over once the recipient is
//! Sent, so nothing is sent twice); otherwise the recipient is Sent if any
//! target got the message, and local leaves that could not take it
//! (unknown, disabled, looping) go back to kmp-send in `expanded`, each to
//! bounce on its own with its own DSN; with no target served at all, the
//! recipient bounces with the first reason.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex};

use crate::clock::Clock;
use crate::config::Config;
use crate::ipc::authd::UserInfo;
use crate::ipc::job::{Job, JobRecipient, JobReply, Outcome, RecipientResult, VERSION};

use super::fanout;
use super::header::{self, Scan};
use super::quota;
use super::resolve::{self, Directory, Refusal, ResolveError};
use super::sieve::{self, Decision};
use crate::maildir::quota::{Limits, Usage};
use crate::maildir::{self, Folder, Maildir, Target};

/// What kmp-local needs from the configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    pub hostname: String,
    /// `paths.mail`: relative mail paths are below it.
    pub mail_root: PathBuf,
    /// More `Received:` fields than this is a loop.
    pub hop_limit: usize,
    /// This many `Delivered-To:` fields naming the address is a loop.
    pub delivered_to_limit: usize,
    pub max_alias_depth: usize,
    /// 0: no warnings.
    pub quota_warning_percent: u64,
    /// The Sieve scripts run at delivery.
    pub sieve: super::sieve::SieveSettings,
    /// Mailing lists' distribution.
    pub lists: crate::lists::distribute::Settings,
}

impl Settings {
    pub fn from_config(cfg: &Config) -> Settings {
        Settings {
            hostname: cfg.str("system.hostname").to_string(),
            mail_root: cfg.path_of("paths.mail"),
            hop_limit: cfg.usize("local.hop_limit"),
            delivered_to_limit: cfg.usize("local.delivered_to_limit"),
            max_alias_depth: cfg.usize("local.max_alias_depth"),
            quota_warning_percent: cfg.u64("local.quota_warning_percent"),
            sieve: super::sieve::SieveSettings::from_config(cfg),
            lists: crate::lists::distribute::Settings::from_config(cfg),
        }
    }
}

/// A result before it is a [`RecipientResult`].
#[derive(Debug, Clone, PartialEq, Eq)]
struct Status {
    outcome: Outcome,
    dsn: &'static str,
    text: String,
}

impl Status {
    fn sent(text: impl Into<String>) -> Status {
        Status {
            outcome: Outcome::Sent,
            dsn: "2.0.0",
            text: text.into(),
        }
    }
    fn deferred(dsn: &'static str, text: impl Into<String>) -> Status {
        Status {
            outcome: Outcome::Deferred,
            dsn,
            text: text.into(),
        }
    }
    fn bounced(dsn: &'static str, text: impl Into<String>) -> Status {
        Status {
            outcome: Outcome::Bounced,
            dsn,
            text: text.into(),
        }
    }
    /// A Maildir failure: always temporary here, whatever its kind, as a
    /// local problem must never bounce mail (RFC 3463 X.3.1 for a full disk).
    fn maildir(what: &str, e: &maildir::Error) -> Status {
        let dsn = match e {
            maildir::Error::NoSpace { .. } => "4.3.1",
            _ => "4.3.0",
        };
        Status::deferred(dsn, format!("{what}: {e}"))
    }

    /// A local I/O failure: always temporary (RFC 3463 X.3.1 when the disk is full).
    fn io(what: &str, e: &io::Error) -> Status {
        let dsn = match e.kind() {
            io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded => "4.3.1",
            _ => "4.3.0",
        };
        Status::deferred(dsn, format!("{what}: {e}"))
    }
}

/// One mailbox to deliver into, for every recipient of the job that
/// reaches it (the user, an alias, a catch-all, a forward: one copy).
struct Work {
    /// The job's recipients (positions) that resolved to this mailbox.
    rcpts: Vec<usize>,
    user: UserInfo,
    maildir: PathBuf,
    id: String,
    device: u64,
    quota: Limits,
    usage: Option<Usage>,
    status: Option<Status>,
}

/// One recipient's progress through the job.
struct Plan {
    /// Settled before any delivery (bounced, deferred).
    settled: Option<Status>,
    remote: Vec<String>,
    refused: Vec<(String, Refusal)>,
    /// Mailing-list addresses reached (see `crate::lists::distribute`).
    lists: Vec<super::resolve::ListHit>,
}

/// Times of the phases, for `delays=a/b/c/d`.
struct Times {
    arrived_ms: u64,
    got_ms: u64,
    resolved_ms: u64,
    prepared_ms: u64,
}

/// Runs one job. Never fails as a whole: every problem is some recipient's result.
pub fn run_job(
    settings: &Settings,
    senders: &Senders,
    dir: &mut dyn Directory,
    clock: &Clock,
    job: &Job,
    file: &File,
) -> JobReply {
    // Before any claim of this job's ids (see `Senders`).
    senders.heard(job.generation);
    let got_ms = clock.now_ms();
    let mut times = Times {
        arrived_ms: job.arrived.saturating_mul(1000).min(got_ms),
        got_ms,
        resolved_ms: got_ms,
        prepared_ms: got_ms,
    };
    let everyone = |s: Status| -> JobReply {
        let results = job
            .recipients
            .iter()
            .map(|r| {
                log_line(job, &r.address, None, &s, &times_now(&times, clock));
                result(r, &s, Vec::new())
            })
            .collect();
        JobReply {
            v: VERSION,
            results,
        }
    };
    if job.v != VERSION {
        return everyone(Status::deferred(
            "4.3.0",
            format!("job protocol version {} is not {VERSION}", job.v),
        ));
    }
    // The message is the file's first `job.size` bytes: anything after them
    // (an envelope trailer kmp-send could not cut) is never delivered.
    let size = match file.metadata() {
        Ok(m) => m.len().min(job.size),
        Err(e) => return everyone(Status::io("cannot read the message", &e)),
    };
    let scan = match header::scan(ReadAt {
        file,
        off: 0,
        end: size,
    }) {
        Ok(s) => s,
        Err(e) => return everyone(Status::io("cannot read the message", &e)),
    };

    // Resolution: every recipient, before anything is written.
    let mut plans = Vec::with_capacity(job.recipients.len());
    let mut work: Vec<Work> = Vec::new();
    let mut by_mailbox: HashMap<String, usize> = HashMap::new();
    for (i, r) in job.recipients.iter().enumerate() {
        let plan = plan_recipient(settings, dir, &scan, job, i, r, &mut work, &mut by_mailbox);
        plans.push(plan);
    }
    times.resolved_ms = clock.now_ms();
    lists(
        settings, dir, clock, job, file, size, &mut plans, &work, &times,
    );

    // Preparation: Maildirs exist, quotas allow.
    let prefix_len = header::prefix(&job.sender, None).len() as u64 + 64;
    // Creating Maildirs and reading quotas wait on the disk: many at once.
    fanout::for_each_mut(&mut work, |w| {
        if w.status.is_none() {
            prepare(w, size + prefix_len);
        }
    });
    times.prepared_ms = clock.now_ms();

    // Sieve: a mailbox whose scripts decide more than a plain keep into
    // INBOX is served here, on its own; the others share one file below.
    let mut raw: Option<Vec<u8>> = None;
    // As below: a fresh job reaching one mailbox cannot find an earlier copy.
    let fresh_one = job.fresh && work.len() == 1;
    for w in work.iter_mut() {
        if w.status.is_some() || !sieve::applies(&settings.sieve, &w.user, &w.maildir) {
            continue;
        }
        if raw.is_none() {
            match sieve::read_message(file, size) {
                Ok(b) => raw = Some(b),
                Err(e) => {
                    w.status = Some(Status::io("cannot read the message", &e));
                    continue;
                }
            }
        }
        let recipient = job.recipients[w.rcpts[0]].address.clone();
        let d = sieve::decide(
            &settings.sieve,
            &w.user,
            &w.maildir,
            &job.sender,
            &recipient,
            raw.as_deref().unwrap_or_default(),
            clock,
        );
        let fresh = Fresh {
            job: fresh_one,
            senders,
        };
        apply_sieve(settings, job, file, size, w, d, fresh, clock);
    }

    // Delivery: one file per device, linked into each Maildir.
    let mut groups: BTreeMap<u64, Vec<usize>> = BTreeMap::new();
    for (i, w) in work.iter().enumerate() {
        if w.status.is_none() {
            groups.entry(w.device).or_default().push(i);
        }
    }
    // A fresh job of one group cannot find earlier copies: skip the look-up.
    let fresh = job.fresh && groups.len() == 1;
    for members in groups.values() {
        deliver_group(job, file, size, fresh, senders, &mut work, members);
    }
    for w in work.iter_mut() {
        if matches!(&w.status, Some(s) if s.outcome == Outcome::Sent) {
            let Some(usage) = w.usage else { continue };
            let mailbox = quota::Mailbox {
                maildir: &w.maildir,
                address: &w.user.address,
                usage,
            };
            if let Err(e) = quota::warn(settings, &mailbox, clock) {
                crate::warn!(
                    "{}: quota warning for {} not written: {e}",
                    job.qid,
                    w.user.address
                );
            }
        }
    }

    // Results and log lines.
    let t = times_now(&times, clock);
    let results = job
        .recipients
        .iter()
        .enumerate()
        .map(|(i, r)| {
            finish(
                job,
                r,
                &plans[i],
                work.iter().filter(|w| w.rcpts.contains(&i)),
                &t,
            )
        })
        .collect();
    JobReply {
        v: VERSION,
        results,
    }
}

/// Mailing lists: each recipient that reached a list's address is served
/// by `crate::lists::distribute` (a post distributed, held or refused; mail
/// for the list's people). Its result settles the recipient when nothing
/// else is to be delivered for it, or when it is not a success (a
/// temporary failure then retries everything; the list side does not
/// repeat what it already did).
#[allow(clippy::too_many_arguments)]
fn lists(
    settings: &Settings,
    dir: &mut dyn Directory,
    clock: &Clock,
    job: &Job,
    file: &File,
    size: u64,
    plans: &mut [Plan],
    work: &[Work],
    times: &Times,
) {
    use crate::lists::distribute::{self, Outcome as ListOutcome};
    let mut raw: Option<Vec<u8>> = None;
    for (i, plan) in plans.iter_mut().enumerate() {
        if plan.settled.is_some() || plan.lists.is_empty() {
            continue;
        }
        if raw.is_none() {
            match sieve::read_message(file, size) {
                Ok(b) => raw = Some(b),
                Err(e) => {
                    plan.settled = Some(Status::io("cannot read the message", &e));
                    continue;
                }
            }
        }
        let m = distribute::Message {
            qid: &job.qid,
            sender: &job.sender,
            raw: raw.as_deref().unwrap_or_default(),
            arrived: job.arrived,
            now: clock.now(),
        };
        let others = !plan.remote.is_empty() || work.iter().any(|w| w.rcpts.contains(&i));
        for hit in &plan.lists {
            let d = distribute::handle(&settings.lists, dir, hit, &m);
            let st = Status {
                outcome: match d.outcome {
                    ListOutcome::Sent => Outcome::Sent,
                    ListOutcome::Deferred => Outcome::Deferred,
                    ListOutcome::Bounced => Outcome::Bounced,
                },
                dsn: d.dsn,
                text: d.text,
            };
            if st.outcome == Outcome::Sent && others {
                let r = &job.recipients[i].address;
                let orig = (!hit.address.eq_ignore_ascii_case(r)).then_some(r.as_str());
                log_line(job, &hit.address, orig, &st, &times_now(times, clock));
            } else if plan
                .settled
                .as_ref()
                .is_none_or(|s| s.outcome == Outcome::Sent)
            {
                plan.settled = Some(st);
            }
        }
    }
}

/// The reply to a job that cannot be attempted at all (no message file, a
/// broken frame): every recipient Deferred, so nothing is lost.
pub fn defer_all(job: &Job, text: &str) -> JobReply {
    let s = Status::deferred("4.3.0", text);
    let t = [0.0; 5];
    let results = job
        .recipients
        .iter()
        .map(|r| {
            log_line(job, &r.address, None, &s, &t);
            result(r, &s, Vec::new())
        })
        .collect();
    JobReply {
        v: VERSION,
        results,
    }
}

/// Resolves recipient `i` and adds its mailboxes to `work`; a mailbox
/// already there (reached by an earlier recipient) only gains `i`.
#[allow(clippy::too_many_arguments)]
fn plan_recipient(
    settings: &Settings,
    dir: &mut dyn Directory,
    scan: &Scan,
    job: &Job,
    i: usize,
    r: &JobRecipient,
    work: &mut Vec<Work>,
    by_mailbox: &mut HashMap<String, usize>,
) -> Plan {
    let mut plan = Plan {
        settled: None,
        remote: Vec::new(),
        refused: Vec::new(),
        lists: Vec::new(),
    };
    if scan.received > settings.hop_limit {
        plan.settled = Some(Status::bounced(
            "5.4.6",
            format!(
                "hop count exceeded - possible mail loop ({} Received: header fields)",
                scan.received
            ),
        ));
        return plan;
    }
    if scan.delivered_to_count(&r.address) >= settings.delivered_to_limit {
        plan.settled = Some(Status::bounced(
            "5.4.6",
            format!("mail forwarding loop for {}", r.address),
        ));
        return plan;
    }
    let res = match resolve::resolve(dir, &r.address, settings.max_alias_depth) {
        Ok(res) => res,
        Err(e) => {
            plan.settled = Some(match e {
                ResolveError::Temporary(m) => {
                    Status::deferred("4.3.0", format!("cannot look up the recipient: {m}"))
                }
                ResolveError::Invalid(a, m) => {
                    Status::bounced("5.1.3", format!("bad address syntax: \"{a}\": {m}"))
                }
                ResolveError::Loop(chain) => {
                    Status::bounced("5.4.6", format!("alias loop: {}", chain.join(" -> ")))
                }
                ResolveError::TooDeep(n) => {
                    Status::bounced("5.4.6", format!("aliases nested more than {n} levels deep"))
                }
                ResolveError::TooMany => Status::bounced(
                    "5.4.6",
                    format!("expands to more than {} addresses", resolve::MAX_LOOKUPS),
                ),
            });
            return plan;
        }
    };
    if res.mailboxes.is_empty() && res.remote.is_empty() && res.lists.is_empty() {
        plan.settled = Some(match res.refused.first() {
            Some((a, why)) => refusal(a, *why),
            None => Status::bounced("5.1.1", "alias without targets"),
        });
        return plan;
    }
    for user in res.mailboxes {
        let key = resolve::key(&user.address);
        if let Some(&w) = by_mailbox.get(&key) {
            if !work[w].rcpts.contains(&i) {
                work[w].rcpts.push(i);
            }
            continue;
        }
        by_mailbox.insert(key.clone(), work.len());
        let status =
            (scan.delivered_to_count(&user.address) >= settings.delivered_to_limit).then(|| {
                Status::bounced(
                    "5.4.6",
                    format!("mail forwarding loop for {}", user.address),
                )
            });
        let maildir = mail_path(settings, &user);
        work.push(Work {
            rcpts: vec![i],
            id: mailbox_delivery_id(job, &key),
            quota: Limits {
                bytes: user.quota_bytes,
                messages: user.quota_messages,
            },
            user,
            maildir,
            device: 0,
            usage: None,
            status,
        });
    }
    plan.remote = res.remote;
    plan.refused = res.refused;
    plan.lists = res.lists;
    plan
}

/// The delivery id of the message in one mailbox: `QID.<hash of the
/// mailbox's address>`. It names the message and the final mailbox, not the
/// envelope recipient, so the mailbox gets one copy however many recipients
/// lead to it: in this job, and in any later job of the same message (a
/// retry after a crash, another recipient deferred the first time), which
/// finds the id in the Maildir and reports "already delivered".
fn mailbox_delivery_id(job: &Job, mailbox_key: &str) -> String {
    format!("{}.{:016x}", job.qid, fnv64(mailbox_key))
}

fn refusal(address: &str, why: Refusal) -> Status {
    match why {
        Refusal::Unknown => Status::bounced("5.1.1", format!("unknown user: \"{address}\"")),
        Refusal::Disabled => Status::bounced("5.2.1", format!("mailbox disabled: \"{address}\"")),
        Refusal::NotLocal => {
            Status::bounced("5.1.2", format!("the domain of \"{address}\" is not local"))
        }
    }
}

/// The user's Maildir: the database's path, relative ones below `paths.mail`.
fn mail_path(settings: &Settings, user: &UserInfo) -> PathBuf {
    if user.mail_path.as_os_str().is_empty() {
        let (local, domain) = user.address.rsplit_once('@').unwrap_or((&user.address, ""));
        return settings.mail_root.join(domain).join(local);
    }
    settings.mail_root.join(&user.mail_path)
}

fn prepare(w: &mut Work, size: u64) {
    let md = Maildir::new(&w.maildir);
    // The common case is one stat; a missing Maildir is created with its folders.
    if !md.inbox().exists() || !w.maildir.join("new").is_dir() || !w.maildir.join("tmp").is_dir() {
        if let Err(e) = create_maildir(&w.maildir) {
            w.status = Some(Status::maildir("cannot create the maildir", &e));
            return;
        }
    }
    match std::fs::metadata(&w.maildir) {
        Ok(m) => w.device = m.dev(),
        Err(e) => {
            w.status = Some(Status::io("cannot use the maildir", &e));
            return;
        }
    }
    if w.quota == Limits::default() {
        return;
    }
    let usage = match md.quota(Some(w.quota)) {
        Ok(u) => u,
        Err(e) => {
            w.status = Some(Status::maildir("cannot read maildirsize", &e));
            return;
        }
    };
    if usage.would_exceed(size) {
        w.status = Some(Status::deferred(
            "4.2.2",
            format!("mailbox full: {}", usage.describe()),
        ));
    }
    w.usage = Some(usage);
}

/// Creates a Maildir, or completes one. A brand-new Maildir gets its
/// special-use folders ([`Maildir::open_or_create`]); one that exists (with
/// `cur/`) but lacks `new/` or `tmp/` (moved in from elsewhere, say) only
/// gets those, never folders its owner did not make. Two deliveries (two
/// kmp-send connections) may create the same new Maildir at once, and the
/// library's small-file writes use one temporary name per file, so the
/// loser of that race fails; a second try finds the files in place and
/// succeeds. A real failure fails three times.
fn create_maildir(dir: &std::path::Path) -> maildir::Result<()> {
    let mut tries = 0;
    loop {
        let r = Maildir::open_or_create(dir).and_then(|_| complete_maildir(dir));
        match r {
            Ok(()) => return Ok(()),
            Err(e) if tries >= 2 => return Err(e),
            Err(_) => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(5 * tries));
            }
        }
    }
}

/// Makes the missing ones of `tmp/ new/ cur/` (0700) in an existing Maildir.
fn complete_maildir(dir: &std::path::Path) -> maildir::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    for sub in ["tmp", "new", "cur"] {
        let p = dir.join(sub);
        if p.is_dir() {
            continue;
        }
        match std::fs::DirBuilder::new().mode(0o700).create(&p) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(maildir::Error::io("mkdir", &p, e)),
        }
    }
    Ok(())
}

/// Delivers to the Maildirs of one device: one file, linked into each
/// (skipping a Maildir that has the delivery id already; see [`fanout`]).
fn deliver_group(
    job: &Job,
    file: &File,
    size: u64,
    fresh: bool,
    senders: &Senders,
    work: &mut [Work],
    members: &[usize],
) {
    // Two jobs of one message reaching one mailbox at once (a message with
    // more local recipients than one job holds, or kmp-send repeating a job
    // after a restart while the first still runs) must not both find no
    // copy and both write one: the second waits here, then finds the first's.
    let _claim = Claim::new(members.iter().map(|&i| work[i].id.clone()).collect());
    // Read under the claim: a newer kmp-send's job for these ids either
    // was heard before this point (so `fresh` is dropped and the look-up
    // finds its copy) or claims them after us (and finds ours).
    let fresh = fresh && senders.is_newest(job.generation);
    let prefix = header::prefix(
        &job.sender,
        group_delivered_to(job, work, members).as_deref(),
    );
    let folders: Vec<Folder> = members
        .iter()
        .map(|&i| Maildir::new(&work[i].maildir).inbox())
        .collect();
    let targets: Vec<Target> = members
        .iter()
        .zip(&folders)
        .map(|(&i, folder)| Target {
            folder,
            delivery_id: Some(work[i].id.as_str()),
            arrived: Some(std::time::UNIX_EPOCH + std::time::Duration::from_secs(job.arrived)),
        })
        .collect();
    let mut data = (&prefix[..]).chain(ReadAt {
        file,
        off: 0,
        end: size,
    });
    let results = fanout::deliver(&targets, &mut data, fresh);
    for (&i, r) in members.iter().zip(results) {
        let w = &mut work[i];
        w.status = Some(match r {
            Ok(d) if d.duplicate => {
                w.usage = None;
                Status::sent("already delivered to maildir")
            }
            Ok(d) => {
                if let Some(u) = w.usage.as_mut() {
                    u.bytes += d.size;
                    u.messages += 1;
                }
                Status::sent("delivered to maildir")
            }
            Err(e) => Status::maildir("cannot write the maildir", &e),
        });
    }
}

/// The newest kmp-send this process has had a job from, by its start on the
/// monotonic clock. kmp-send marks a message's first job `fresh` (no copy
/// can exist yet, so no look-up), but a kmp-send killed just after writing
/// such a job leaves it unread in the socket; its successor, finding the
/// message in the queue index, sends the message again, and kmp-local may
/// deliver that one first. The dead sender's job must then look, not skip.
#[derive(Debug, Default)]
pub struct Senders {
    newest: AtomicU64,
}

impl Senders {
    /// Notes a job from the kmp-send that started at `generation`.
    pub fn heard(&self, generation: u64) {
        self.newest.fetch_max(generation, Ordering::SeqCst);
    }

    /// Whether no job from a later-started kmp-send has been heard.
    fn is_newest(&self, generation: u64) -> bool {
        generation >= self.newest.load(Ordering::SeqCst)
    }
}

/// Performs what the Sieve scripts decided for one mailbox, setting its
/// status; a plain keep (or a failed script, after the user is told) is
/// left to the shared delivery. Copies are filed first: only when they are
/// in place do redirects, vacation replies and notifications leave, so a
/// deferred delivery does not send them before its retry.
/// Whether a job's filings may skip the look-up of earlier copies: the job
/// is fresh (see [`Senders`], checked under the claim).
struct Fresh<'a> {
    job: bool,
    senders: &'a Senders,
}

#[allow(clippy::too_many_arguments)]
fn apply_sieve(
    settings: &Settings,
    job: &Job,
    file: &File,
    size: u64,
    w: &mut Work,
    d: Decision,
    fresh: Fresh<'_>,
    clock: &Clock,
) {
    if let Some((key, text)) = &d.failure {
        crate::warn!("{}: sieve for {}: {text}", job.qid, w.user.address);
        sieve::tell_failure(&w.maildir, key, text, &settings.hostname, clock.now());
        return;
    }
    if d.is_plain_keep() {
        return;
    }
    if let Some(reason) = d.reject {
        let reason: String = reason
            .chars()
            .filter(|c| !c.is_control())
            .take(400)
            .collect();
        w.status = Some(Status::bounced(
            "5.7.1",
            format!("rejected by the recipient's filter: {reason}"),
        ));
        return;
    }
    // As for the shared delivery: two jobs of one message filing into this
    // mailbox at once must not both find no copy.
    let _claim = Claim::new(vec![w.id.clone()]);
    let fresh = fresh.job && fresh.senders.is_newest(job.generation);
    let arrived = std::time::UNIX_EPOCH + std::time::Duration::from_secs(job.arrived);
    let prefix = header::prefix(&job.sender, Some(&w.user.address));
    let mut placed: Vec<String> = Vec::new();
    for f in &d.filings {
        let folder = sieve::folder_for(&w.maildir, f);
        if placed.iter().any(|p| p == folder.name()) {
            continue;
        }
        let id = if folder.name() == "INBOX" {
            w.id.clone()
        } else {
            format!("{}.{:016x}", w.id, fnv64(folder.name()))
        };
        let mut data = (&prefix[..]).chain(ReadAt {
            file,
            off: 0,
            end: size,
        });
        // Through the fan-out, as the shared delivery: the look-up skipped
        // for a fresh job, the fsync of `new/` shared with concurrent jobs.
        let target = Target {
            folder: &folder,
            delivery_id: Some(&id),
            arrived: Some(arrived),
        };
        let filed = fanout::deliver(std::slice::from_ref(&target), &mut data, fresh).pop();
        let Some(filed) = filed else {
            // Invariant: the fan-out gives one result per target.
            unreachable!("no result for one target");
        };
        match filed {
            Ok(dl) => {
                if !dl.duplicate {
                    if let Err(e) = sieve::set_flags(&dl.path, &f.flags) {
                        crate::warn!("{}: sieve flags for {}: {e}", job.qid, w.user.address);
                    }
                    if let Some(u) = w.usage.as_mut() {
                        u.bytes += dl.size;
                        u.messages += 1;
                    }
                }
                placed.push(folder.name().to_string());
            }
            Err(e) => {
                w.status = Some(Status::maildir("cannot write the maildir", &e));
                return;
            }
        }
    }
    for (i, o) in d.outgoing.iter().enumerate() {
        // A retry of this delivery (another mailbox of the recipient was
        // deferred) does not send it again.
        let sent = sieve::sent_key(&w.id, i, o);
        if sieve::is_remembered(&w.maildir, &sent, clock.now()) {
            crate::info!(
                "{}: sieve {} from {} to <{}> already sent",
                job.qid,
                o.what,
                w.user.address,
                o.to
            );
            continue;
        }
        match sieve::send(&settings.sieve, o) {
            Ok(()) => {
                crate::info!(
                    "{}: sieve {} from {} to <{}> sent",
                    job.qid,
                    o.what,
                    w.user.address,
                    o.to
                );
                let until = clock.now().saturating_add(sieve::SENT_MEMORY);
                if let Err(e) = sieve::remember(&w.maildir, &sent, until) {
                    crate::warn!("{}: sieve memory for {}: {e}", job.qid, w.user.address);
                }
                if let Some((key, until)) = &o.remember {
                    if let Err(e) = sieve::remember(&w.maildir, key, *until) {
                        crate::warn!("{}: sieve memory for {}: {e}", job.qid, w.user.address);
                    }
                }
            }
            Err(e) => crate::warn!(
                "{}: sieve {} from {} to <{}> not sent: {e}",
                job.qid,
                o.what,
                w.user.address,
                o.to
            ),
        }
    }
    for (key, until) in &d.duplicates {
        let _ = sieve::remember(&w.maildir, &sieve::duplicate_key(key), *until);
    }
    // Now and then (one delivery in 64), expired memory goes.
    if fnv64(&w.id).is_multiple_of(64) {
        sieve::sweep(&w.maildir, clock.now());
    }
    let mut what: Vec<String> = placed.clone();
    if placed.is_empty() {
        what.push("discarded".into());
    }
    for o in &d.outgoing {
        what.push(format!("{} to <{}>", o.what, o.to));
    }
    w.status = Some(Status::sent(format!("sieve: {}", what.join(", "))));
}

/// Delivery ids being written by a job of this process.
static IN_FLIGHT: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());
static RELEASED: Condvar = Condvar::new();

/// The right to write some delivery ids: taken all at once (waiting while
/// another job holds any of them, so two claims never wait on each other),
/// given back on drop.
struct Claim {
    ids: Vec<String>,
}

impl Claim {
    fn new(ids: Vec<String>) -> Claim {
        let mut held = IN_FLIGHT.lock().unwrap_or_else(|e| e.into_inner());
        while ids.iter().any(|i| held.contains(i)) {
            held = RELEASED.wait(held).unwrap_or_else(|e| e.into_inner());
        }
        held.extend(ids.iter().cloned());
        Claim { ids }
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        let mut held = IN_FLIGHT.lock().unwrap_or_else(|e| e.into_inner());
        for i in &self.ids {
            held.remove(i);
        }
        RELEASED.notify_all();
    }
}

/// The `Delivered-To:` of a linked group. One mailbox: its address. Several
/// mailboxes reached through one envelope recipient (an alias): that
/// recipient. Several recipients: none, as Dovecot's LMTP does, because one
/// file shared by all must not tell each of them who else got it (Bcc).
fn group_delivered_to(job: &Job, work: &[Work], members: &[usize]) -> Option<String> {
    match members {
        [one] => Some(work[*one].user.address.clone()),
        _ => {
            let first = &work[members[0]].rcpts;
            (first.len() == 1 && members.iter().all(|&i| work[i].rcpts == *first))
                .then(|| job.recipients[first[0]].address.clone())
        }
    }
}

/// The recipient's result from its plan and its targets; logs one line per delivery.
fn finish<'a>(
    job: &Job,
    r: &JobRecipient,
    plan: &Plan,
    targets: impl Iterator<Item = &'a Work>,
    t: &[f64; 5],
) -> RecipientResult {
    if let Some(s) = &plan.settled {
        log_line(job, &r.address, None, s, t);
        return result(r, s, Vec::new());
    }
    let targets: Vec<&Work> = targets.collect();
    let orig = |a: &str| (!a.eq_ignore_ascii_case(&r.address)).then_some(r.address.as_str());
    for w in &targets {
        if let Some(s) = &w.status {
            log_line(job, &w.user.address, orig(&w.user.address), s, t);
        }
    }
    let statuses: Vec<&Status> = targets.iter().filter_map(|w| w.status.as_ref()).collect();
    if let Some(d) = statuses.iter().find(|s| s.outcome == Outcome::Deferred) {
        return result(r, d, Vec::new());
    }
    let delivered = statuses.iter().any(|s| s.outcome == Outcome::Sent);
    if !delivered && plan.remote.is_empty() {
        let first = statuses
            .first()
            .map(|s| (*s).clone())
            .or_else(|| plan.refused.first().map(|(a, why)| refusal(a, *why)))
            .unwrap_or_else(|| Status::bounced("5.1.1", "alias without targets"));
        return result(r, &first, Vec::new());
    }
    let forwarded = Status::sent("forwarded");
    for a in &plan.remote {
        log_line(job, a, orig(a), &forwarded, t);
    }
    for (a, why) in &plan.refused {
        log_line(job, a, orig(a), &refusal(a, *why), t);
    }
    let mut expanded = plan.remote.clone();
    expanded.extend(plan.refused.iter().map(|(a, _)| a.clone()));
    expanded.extend(
        targets
            .iter()
            .filter(|w| matches!(&w.status, Some(s) if s.outcome == Outcome::Bounced))
            .map(|w| w.user.address.clone()),
    );
    let text = match (delivered, expanded.is_empty()) {
        (true, true) => "delivered to maildir".to_string(),
        (true, false) => format!("delivered to maildir, forwarded to {}", expanded.len()),
        (false, _) => "forwarded".to_string(),
    };
    let text = if targets.len() == 1 && delivered {
        statuses[0].text.clone()
            + if expanded.is_empty() {
                ""
            } else {
                ", forwarded"
            }
    } else {
        text
    };
    result(r, &Status::sent(text), expanded)
}

fn result(r: &JobRecipient, s: &Status, expanded: Vec<String>) -> RecipientResult {
    RecipientResult {
        index: r.index,
        outcome: s.outcome,
        dsn: s.dsn.to_string(),
        text: s.text.clone(),
        relay: "local".to_string(),
        remote_mta: None,
        diagnostic: (s.outcome != Outcome::Sent).then(|| format!("x-kmpromail; {}", s.text)),
        expanded,
    }
}

/// `delay` and `delays=a/b/c/d` in seconds: total; before kmp-local got the
/// job; header scan and resolution; Maildir preparation and quota; writing.
fn times_now(t: &Times, clock: &Clock) -> [f64; 5] {
    let now = clock.now_ms().max(t.prepared_ms);
    let s = |a: u64, b: u64| b.saturating_sub(a) as f64 / 1000.0;
    [
        s(t.arrived_ms, now),
        s(t.arrived_ms, t.got_ms),
        s(t.got_ms, t.resolved_ms),
        s(t.resolved_ms, t.prepared_ms),
        s(t.prepared_ms, now),
    ]
}

fn log_line(job: &Job, to: &str, orig_to: Option<&str>, s: &Status, t: &[f64; 5]) {
    let status = match s.outcome {
        Outcome::Sent | Outcome::Relayed => "sent",
        Outcome::Deferred => "deferred",
        Outcome::Bounced => "bounced",
    };
    let orig = orig_to
        .map(|o| format!(", orig_to=<{o}>"))
        .unwrap_or_default();
    crate::info!(
        "{}: to=<{to}>{orig}, relay=local, delay={}, delays={}/{}/{}/{}, dsn={}, status={status} ({})",
        job.qid,
        secs(t[0]),
        secs(t[1]),
        secs(t[2]),
        secs(t[3]),
        secs(t[4]),
        s.dsn,
        s.text
    );
}

/// A duration as Postfix prints it: `0` for nothing, two decimals below ten seconds.
fn secs(x: f64) -> String {
    if x < 0.005 {
        "0".into()
    } else if x < 10.0 {
        format!("{x:.2}")
    } else if x < 100.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.0}")
    }
}

/// FNV-1a, 64 bits: a stable short name for an address in a delivery id
/// (std's hasher is not promised to stay the same between releases).
pub(super) fn fnv64(s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// Reads a file at our own offset up to `end`, leaving the shared file
/// position alone.
struct ReadAt<'a> {
    file: &'a File,
    off: u64,
    end: u64,
}

impl Read for ReadAt<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = usize::try_from(self.end.saturating_sub(self.off)).unwrap_or(usize::MAX);
        let want = buf.len().min(left);
        if want == 0 {
            return Ok(0);
        }
        let n = self.file.read_at(&mut buf[..want], self.off)?;
        self.off += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_print_as_postfix_does() {
        assert_eq!(secs(0.0), "0");
        assert_eq!(secs(0.123), "0.12");
        assert_eq!(secs(12.34), "12.3");
        assert_eq!(secs(1234.5), "1234");
    }

    #[test]
    fn a_claimed_delivery_id_waits_for_its_holder() {
        let first = Claim::new(vec!["CLAIMTEST1.a".into(), "CLAIMTEST1.b".into()]);
        let (tx, rx) = std::sync::mpsc::channel();
        let t = std::thread::spawn(move || {
            let _second = Claim::new(vec!["CLAIMTEST1.b".into(), "CLAIMTEST2.c".into()]);
            tx.send(()).unwrap();
        });
        // Other ids are free meanwhile.
        drop(Claim::new(vec!["CLAIMTEST2.d".into()]));
        assert!(rx
            .recv_timeout(std::time::Duration::from_millis(200))
            .is_err());
        drop(first);
        rx.recv_timeout(std::time::Duration::from_secs(10)).unwrap();
        t.join().unwrap();
        assert!(IN_FLIGHT
            .lock()
            .unwrap()
            .iter()
            .all(|h| !h.starts_with("CLAIMTEST")));
    }

    #[test]
    fn fnv_is_stable() {
        assert_eq!(fnv64(""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv64("a"), 0xaf63_dc4c_8601_ec8c);
    }
}
