//! Sieve at delivery: for each mailbox, the system's before-script, the
//! domain's script, the user's active script and the system's after-script
//! (`sieve.before`, `sieve.domain_dir/DOMAIN.sieve`, the user's
//! `.dovecot.sieve`, `sieve.after`), compiled once and cached until the
//! file or a script it includes (`sieve.global_dir` for `:global`, the
//! user's `sieve/` for `:personal`) changes, run by `crate::sieve` over the message; here the decision
//! is turned into what kmp-local does.
//!
//! - keep and fileinto: Maildir deliveries, each with its own delivery id
//!   (INBOX keeps the mailbox's, a folder adds the folder's hash), so a
//!   retried job never files twice; `:create` makes a missing folder, and
//!   without it a missing folder means INBOX (as Pigeonhole does). System
//!   flags from imap4flags go into the file name (`cur/BASE:2,FS`).
//! - discard: nothing is written; reject and ereject: the recipient
//!   bounces with 5.7.1 and the reason, so kmp-send returns a DSN.
//! - redirect, vacation and notify: new messages handed to kmp-inject
//!   (which is setgid to the drop group: kmp-local itself cannot write
//!   the queue). A redirected message gains `Delivered-To: <user>`, so a
//!   redirect loop through our own server stops at
//!   `local.delivered_to_limit`; vacation replies and notifications carry
//!   `Auto-Submitted:` and the null sender, so nothing answers them.
//! - Memory of vacation replies and duplicate ids: one small file per key
//!   under `MAILDIR/kmp-sieve/`, holding the time it expires.
//! - A script that does not compile or fails at run time: the message goes
//!   to INBOX, and the user is told once per version of the script, by a
//!   notice written into INBOX.

use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::clock::Clock;
use crate::config::Config;
use crate::ipc::authd::UserInfo;
use crate::maildir::{Folder, Maildir};
use crate::sieve::{self, Action, Envelope, Extensions, Message, Script};
use crate::sievestore::{Limits as StoreLimits, Store};

/// The most of a message the interpreter sees (header tests see the whole
/// header of any message; body tests see this much).
const MAX_MESSAGE: u64 = 32 << 20;
/// The directory of kmp-local's Sieve memory in a Maildir.
const STATE_DIR: &str = "kmp-sieve";

/// What the Sieve step needs from the configuration.
#[derive(Debug, Clone)]
pub struct SieveSettings {
    pub before: PathBuf,
    pub after: PathBuf,
    pub domain_dir: PathBuf,
    /// Where `include :global` finds scripts (`sieve.global_dir`).
    pub global_dir: PathBuf,
    pub max_redirects: usize,
    pub hostname: String,
    /// kmp-inject, and the configuration it is to read.
    pub inject: PathBuf,
    pub config: Option<PathBuf>,
    /// The zone of currentdate and date without `:zone`, in minutes east
    /// (`sieve.time_zone`); `None`: the server's local zone at that moment.
    pub time_zone: Option<i32>,
    /// SRS (`auth.srs_*`): a redirected message leaves with a rewritten
    /// reverse path, so SPF at the destination sees our domain.
    pub srs: Option<crate::mailauth::srs::Srs>,
}

impl SieveSettings {
    pub fn from_config(cfg: &Config) -> SieveSettings {
        SieveSettings {
            before: cfg.path_of("sieve.before"),
            after: cfg.path_of("sieve.after"),
            domain_dir: cfg.path_of("sieve.domain_dir"),
            global_dir: cfg.path_of("sieve.global_dir"),
            max_redirects: cfg.usize("sieve.max_redirects"),
            hostname: cfg.str("system.hostname").to_string(),
            inject: crate::paths::Paths::new(cfg).program("kmp-inject"),
            config: cfg.path().map(Path::to_path_buf),
            time_zone: {
                let z = cfg.str("sieve.time_zone");
                match parse_zone(z) {
                    Some(z) => z,
                    None => {
                        crate::warn!("sieve.time_zone {z:?} is not local, UTC or +HHMM: the local zone is used");
                        None
                    }
                }
            },
            srs: crate::mailauth::srs::from_config(cfg).unwrap_or_else(|e| {
                crate::warn!("SRS off: {e}");
                None
            }),
        }
    }

    /// Settings with no system or domain scripts (tests).
    pub fn none() -> SieveSettings {
        SieveSettings {
            before: PathBuf::new(),
            after: PathBuf::new(),
            domain_dir: PathBuf::new(),
            global_dir: PathBuf::new(),
            max_redirects: 4,
            hostname: "localhost".into(),
            inject: PathBuf::from("kmp-inject"),
            config: None,
            time_zone: None,
            srs: None,
        }
    }

    /// The scripts that apply to `user`, in the order they run.
    fn scripts(&self, user: &UserInfo, maildir: &Path) -> Vec<PathBuf> {
        let mut v = Vec::new();
        if !self.before.as_os_str().is_empty() && self.before.is_file() {
            v.push(self.before.clone());
        }
        if !self.domain_dir.as_os_str().is_empty() {
            if let Some((_, domain)) = user.address.rsplit_once('@') {
                let p = self.domain_dir.join(format!("{domain}.sieve"));
                if !domain.contains('/') && p.is_file() {
                    v.push(p);
                }
            }
        }
        let store = Store::new(
            maildir,
            StoreLimits {
                max_scripts: 0,
                max_script_size: 0,
                quota_bytes: 0,
            },
        );
        if let Some(p) = store.active_path() {
            v.push(p);
        }
        if !self.after.as_os_str().is_empty() && self.after.is_file() {
            v.push(self.after.clone());
        }
        v
    }
}

/// Where one copy goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filing {
    /// `INBOX` or an IMAP folder name.
    pub folder: String,
    pub flags: Vec<String>,
    pub create: bool,
}

/// A message to hand to kmp-inject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    /// The envelope sender; empty for `<>`.
    pub sender: String,
    pub to: String,
    pub data: Vec<u8>,
    /// For a vacation reply: remember it under this key until this time.
    pub remember: Option<(String, u64)>,
    /// What the log says it is.
    pub what: &'static str,
}

/// What the scripts decided for one mailbox.
#[derive(Debug, Default)]
pub struct Decision {
    pub filings: Vec<Filing>,
    pub reject: Option<String>,
    pub outgoing: Vec<Outgoing>,
    pub duplicates: Vec<(String, u64)>,
    /// A script failed: tell the user (once per `key`) with this text.
    pub failure: Option<(String, String)>,
    /// The last filing is the implicit keep (which spam turns into Junk).
    pub implicit: bool,
}

impl Decision {
    /// Just INBOX, no flags: the ordinary delivery path does it.
    pub fn is_plain_keep(&self) -> bool {
        self.reject.is_none()
            && self.outgoing.is_empty()
            && self.duplicates.is_empty()
            && self.failure.is_none()
            && self.filings.len() == 1
            && self.filings[0].folder == "INBOX"
            && self.filings[0].flags.is_empty()
    }

    /// A keep into `folder` (made when missing) instead of INBOX.
    pub fn keep_in(folder: &str) -> Decision {
        Decision::keep().keeping_in(folder)
    }

    /// This decision with its keeps (filings into INBOX) going into
    /// `folder` instead, made when missing: a fetched account's mail that
    /// no script filed elsewhere lands in the account's folder.
    pub fn keeping_in(mut self, folder: &str) -> Decision {
        for f in self.filings.iter_mut() {
            if f.folder.eq_ignore_ascii_case("INBOX") {
                f.folder = folder.to_string();
                f.create = true;
            }
        }
        self
    }

    /// A plain keep into INBOX (the implicit keep), for [`Decision::junk`].
    pub fn keep_inbox() -> Decision {
        Decision::keep()
    }

    fn keep() -> Decision {
        Decision {
            filings: vec![Filing {
                folder: "INBOX".into(),
                flags: Vec::new(),
                create: false,
            }],
            implicit: true,
            ..Decision::default()
        }
    }

    /// Files spam into Junk instead of INBOX when the scripts left the
    /// implicit keep standing (the default rule; a script's own fileinto or
    /// keep wins).
    pub fn junk(&mut self) {
        if !self.implicit {
            return;
        }
        if let Some(f) = self.filings.last_mut() {
            f.folder = "Junk".into();
            f.create = true;
        }
    }
}

/// A file's identity for the cache: inode, mtime in ns, size; all zero
/// when it does not exist (so that a script created later is seen).
type FileId = (u64, i64, u64);

fn file_id(path: &Path) -> FileId {
    match fs::metadata(path) {
        Ok(m) => (m.ino(), m.mtime_nsec() + m.mtime() * 1_000_000_000, m.len()),
        Err(_) => (0, 0, 0),
    }
}

/// A compiled script with the identity of every file it was made from (the
/// script itself first, then each script it includes, found or not).
struct Compiled {
    max_redirects: usize,
    files: Vec<(PathBuf, FileId)>,
    script: Result<Script, String>,
}

/// Compiled scripts by path.
type Cache = HashMap<PathBuf, Compiled>;
static CACHE: Mutex<Option<Cache>> = Mutex::new(None);

/// Scripts an `include` names (RFC 6609): `:personal` ones from the user's
/// `sieve/` directory, `:global` ones from `sieve.global_dir`. Every file
/// looked at is noted, for the cache.
struct IncludeLoader<'a> {
    maildir: &'a Path,
    global_dir: &'a Path,
    seen: std::cell::RefCell<Vec<(PathBuf, FileId)>>,
}

impl sieve::Loader for IncludeLoader<'_> {
    fn load(&self, name: &str, location: sieve::Location) -> Result<Option<String>, String> {
        // The same names as ManageSieve takes: no `/`, no `..`, no controls.
        crate::sievestore::check_name(name).map_err(|e| e.to_string())?;
        let dir = match location {
            sieve::Location::Personal => self.maildir.join(crate::sievestore::SCRIPT_DIR),
            sieve::Location::Global => {
                if self.global_dir.as_os_str().is_empty() {
                    return Ok(None);
                }
                self.global_dir.to_path_buf()
            }
        };
        let p = dir.join(format!("{name}{}", crate::sievestore::EXTENSION));
        let id = file_id(&p);
        self.seen.borrow_mut().push((p.clone(), id));
        match fs::read(&p) {
            Ok(b) => String::from_utf8(b)
                .map(Some)
                .map_err(|_| format!("{name}: not UTF-8")),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(format!("{name}: {e}")),
        }
    }
}

/// The script at `path`, compiled, or the error text. From the cache when
/// neither it nor any script it includes (or looked for) has changed, so
/// that a change to an included script is seen at the next delivery.
fn compiled(path: &Path, maildir: &Path, s: &SieveSettings) -> Result<Script, String> {
    {
        let cache = CACHE.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = cache.as_ref().and_then(|c| c.get(path)) {
            if c.max_redirects == s.max_redirects && c.files.iter().all(|(p, id)| file_id(p) == *id)
            {
                return c.script.clone();
            }
        }
    }
    let id = file_id(path);
    let loader = IncludeLoader {
        maildir,
        global_dir: &s.global_dir,
        seen: std::cell::RefCell::new(Vec::new()),
    };
    let r = match fs::read(path) {
        Ok(b) => match String::from_utf8(b) {
            Ok(src) => {
                let limits = sieve::Limits {
                    max_redirects: s.max_redirects,
                    ..sieve::Limits::default()
                };
                sieve::compile_with(&src, &Extensions::all(), Some(&loader), &limits)
                    .map_err(|e| e.to_string())
            }
            Err(_) => Err("the script is not UTF-8".into()),
        },
        Err(e) => Err(format!("{}: {e}", path.display())),
    };
    let mut files = vec![(path.to_path_buf(), id)];
    files.extend(loader.seen.into_inner());
    let mut cache = CACHE.lock().unwrap_or_else(|p| p.into_inner());
    let c = cache.get_or_insert_with(HashMap::new);
    if c.len() > 10_000 {
        c.clear();
    }
    c.insert(
        path.to_path_buf(),
        Compiled {
            max_redirects: s.max_redirects,
            files,
            script: r.clone(),
        },
    );
    r
}

/// Whether any script applies to this mailbox (cheap: a few stats).
pub fn applies(s: &SieveSettings, user: &UserInfo, maildir: &Path) -> bool {
    !s.scripts(user, maildir).is_empty()
}

/// Runs the scripts for one mailbox over `raw` (the message as stored,
/// LF line ends) and decides what to do.
pub fn decide(
    s: &SieveSettings,
    user: &UserInfo,
    maildir: &Path,
    sender: &str,
    recipient: &str,
    raw: &[u8],
    clock: &Clock,
) -> Decision {
    let scripts = s.scripts(user, maildir);
    if scripts.is_empty() {
        return Decision::keep();
    }
    let msg = Message::parse(raw);
    let envelope = Envelope {
        from: sender.to_string(),
        to: recipient.to_string(),
        auth: None,
    };
    let (spam, virus) = scan_values(&msg);
    let mut env = DeliveryEnv {
        maildir,
        address: &user.address,
        now: clock.now(),
        zone: s.time_zone,
        spam,
        virus,
    };
    let mut actions: Vec<Action> = Vec::new();
    let mut implicit: Option<Vec<String>> = Some(Vec::new());
    let mut duplicates = Vec::new();
    for path in &scripts {
        let outcome = compiled(path, maildir, s).and_then(|script| {
            script
                .run(&msg, &envelope, &mut env)
                .map_err(|e| e.to_string())
        });
        match outcome {
            Ok(o) => {
                let mut kept = false;
                for a in o.actions {
                    match a {
                        Action::Keep {
                            flags,
                            implicit: true,
                        } => {
                            kept = true;
                            if implicit.is_some() {
                                implicit = Some(flags);
                            }
                        }
                        a => actions.push(a),
                    }
                }
                if !kept {
                    implicit = None;
                }
                let now = env.now;
                duplicates.extend(
                    o.duplicates
                        .into_iter()
                        .map(|d| (d.key, now.saturating_add(d.seconds))),
                );
            }
            Err(e) => {
                // RFC 5228 2.10.6: on a run-time error the message is kept.
                let key = format!(
                    "{}:{:?}",
                    path.display(),
                    fs::metadata(path).map(|m| (m.mtime(), m.len())).ok()
                );
                return Decision {
                    failure: Some((key, format!("{}: {e}", script_name(path, maildir)))),
                    ..Decision::keep()
                };
            }
        }
    }
    let mut d = Decision {
        duplicates,
        ..Decision::default()
    };
    let message_id = header_value(&msg, "message-id");
    for a in actions {
        match a {
            Action::Keep { flags, .. } => d.filings.push(Filing {
                folder: "INBOX".into(),
                flags,
                create: false,
            }),
            Action::Fileinto {
                mailbox,
                flags,
                create,
                ..
            } => d.filings.push(Filing {
                folder: mailbox,
                flags,
                create,
            }),
            Action::Discard => {}
            Action::Reject { reason, .. } => d.reject = Some(reason),
            Action::Redirect { address, .. } => {
                let mut data = format!("Delivered-To: {}\n", user.address).into_bytes();
                data.extend_from_slice(raw);
                d.outgoing.push(Outgoing {
                    sender: sender.to_string(),
                    to: address,
                    data,
                    remember: None,
                    what: "redirect",
                });
            }
            Action::Vacation(v) => {
                let from = v.from.clone().unwrap_or_else(|| user.address.clone());
                let mut text = format!(
                    "From: {from}\nTo: {}\nSubject: {}\nAuto-Submitted: auto-replied (vacation)\nPrecedence: bulk\n",
                    v.to,
                    header_text(&v.subject)
                );
                if let Some(id) = &message_id {
                    text.push_str(&format!("In-Reply-To: {id}\nReferences: {id}\n"));
                }
                text.push_str("MIME-Version: 1.0\n");
                if v.mime {
                    text.push_str(&v.body);
                } else {
                    text.push_str("Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n");
                    text.push_str(&v.body);
                }
                if !text.ends_with('\n') {
                    text.push('\n');
                }
                d.outgoing.push(Outgoing {
                    sender: String::new(),
                    to: v.to.clone(),
                    data: text.into_bytes(),
                    remember: Some((
                        vacation_key(&v.to, &v.handle),
                        env.now.saturating_add(v.period_seconds),
                    )),
                    what: "vacation",
                });
            }
            Action::Notify(n) => {
                // The method is the whole URI; mailto is the one we send.
                if !n.method.to_ascii_lowercase().starts_with("mailto:") {
                    continue;
                }
                let subject = n
                    .headers
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case("subject"))
                    .map(|(_, v)| v.clone())
                    .or_else(|| n.message.clone())
                    .unwrap_or_else(|| {
                        format!(
                            "New mail for {}: {}",
                            user.address,
                            header_value(&msg, "subject").unwrap_or_default()
                        )
                    });
                let body = n.message.clone().unwrap_or_else(|| {
                    format!(
                        "From: {}\nSubject: {}\n",
                        header_value(&msg, "from").unwrap_or_default(),
                        header_value(&msg, "subject").unwrap_or_default()
                    )
                });
                for to in &n.to {
                    let from = n.from.clone().unwrap_or_else(|| user.address.clone());
                    let text = format!(
                        "From: {from}\nTo: {to}\nSubject: {}\nAuto-Submitted: auto-notified\nMIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n{body}\n",
                        header_text(&subject)
                    );
                    d.outgoing.push(Outgoing {
                        sender: String::new(),
                        to: to.clone(),
                        data: text.into_bytes(),
                        remember: None,
                        what: "notify",
                    });
                }
            }
        }
    }
    if let Some(flags) = implicit {
        if d.reject.is_none() {
            d.filings.push(Filing {
                folder: "INBOX".into(),
                flags,
                create: false,
            });
            d.implicit = true;
        }
    }
    d
}

/// The spamtest and virustest values (RFC 5235) from the headers kmp-smtpd
/// wrote (it removes any a client sent): None when not tested.
fn scan_values(msg: &Message) -> (Option<f64>, Option<u32>) {
    let status = header_value(msg, "x-spam-status").unwrap_or_default();
    let spam = header_value(msg, "x-spam-score")
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|v| v.is_finite() && !status.contains("unchecked"));
    let virus = header_value(msg, "x-virus-scanned")
        .filter(|v| v.contains("clean"))
        .map(|_| 1);
    (spam, virus)
}

/// A header's first value, decoded, on one line.
fn header_value(msg: &Message, name: &str) -> Option<String> {
    msg.values(name)
        .into_iter()
        .next()
        .map(|v| v.split_whitespace().collect::<Vec<_>>().join(" "))
}

/// Text for a header field: one line, RFC 2047-encoded when not ASCII.
fn header_text(s: &str) -> String {
    let one: String = s
        .chars()
        .map(|c| if c == '\r' || c == '\n' { ' ' } else { c })
        .collect();
    if one.is_ascii() {
        return one;
    }
    use base64::Engine;
    format!(
        "=?utf-8?B?{}?=",
        base64::engine::general_purpose::STANDARD.encode(one.as_bytes())
    )
}

/// The script's name for the user: the file name without `.sieve`.
fn script_name(path: &Path, maildir: &Path) -> String {
    let name = path
        .file_name()
        .map(|f| f.to_string_lossy().trim_end_matches(".sieve").to_string())
        .unwrap_or_default();
    if path.starts_with(maildir) {
        format!("your script \"{name}\"")
    } else {
        format!("the system script \"{name}\"")
    }
}

fn vacation_key(sender: &str, handle: &str) -> String {
    format!(
        "vacation-{:016x}",
        super::deliver::fnv64(&format!("{}\0{handle}", sender.to_ascii_lowercase()))
    )
}

/// The memory key of outgoing message `index` of the delivery `id`: a
/// redirect or notification sent before a job was deferred (another
/// mailbox of the recipient failed) is not sent again by its retry.
pub fn sent_key(id: &str, index: usize, o: &Outgoing) -> String {
    format!(
        "sent-{:016x}",
        super::deliver::fnv64(&format!("{id}\0{index}\0{}\0{}", o.what, o.to))
    )
}

/// How long a sent redirect or notification is remembered: longer than a
/// message stays in the queue.
pub const SENT_MEMORY: u64 = 60 * 86_400;

/// Whether `key` is remembered in `maildir` after `now`.
pub fn is_remembered(maildir: &Path, key: &str, now: u64) -> bool {
    remembered(maildir, key, now)
}

pub fn duplicate_key(key: &str) -> String {
    format!("duplicate-{:016x}", super::deliver::fnv64(key))
}

/// The interpreter's view of the mailbox and its memory.
struct DeliveryEnv<'a> {
    maildir: &'a Path,
    address: &'a str,
    now: u64,
    zone: Option<i32>,
    /// X-Spam-Score, when kmp-smtpd's spamd answered.
    spam: Option<f64>,
    /// 1 when clamd found the message clean (a virus is refused at the door).
    virus: Option<u32>,
}

impl sieve::Env for DeliveryEnv<'_> {
    fn spamtest(&mut self, percent: bool) -> Option<u32> {
        self.spam
            .map(|s| crate::antispam::scan::verdict::spamtest(s, percent))
    }
    fn virustest(&mut self) -> Option<u32> {
        self.virus
    }
    fn own_addresses(&self) -> Vec<String> {
        vec![self.address.to_string()]
    }
    fn mailbox_exists(&mut self, name: &str) -> bool {
        Maildir::new(self.maildir)
            .folder(name)
            .is_ok_and(|f| f.exists())
    }
    fn duplicate_seen(&mut self, key: &str) -> bool {
        remembered(self.maildir, &duplicate_key(key), self.now)
    }
    fn vacation_sent(&mut self, sender: &str, handle: &str) -> bool {
        remembered(self.maildir, &vacation_key(sender, handle), self.now)
    }
    fn now(&self) -> (i64, i32) {
        let now = i64::try_from(self.now).unwrap_or(i64::MAX);
        (now, self.zone.unwrap_or_else(|| local_offset(now)))
    }
}

/// `sieve.time_zone`: `""` or `local` (`Some(None)`), `UTC`, or `+HHMM` /
/// `-HH:MM` up to 14 hours; `None` when it is none of these.
pub fn parse_zone(z: &str) -> Option<Option<i32>> {
    let z = z.trim();
    if z.is_empty() || z.eq_ignore_ascii_case("local") {
        return Some(None);
    }
    if z.eq_ignore_ascii_case("utc") || z.eq_ignore_ascii_case("gmt") || z == "Z" {
        return Some(Some(0));
    }
    let (sign, rest) = match z.as_bytes().first() {
        Some(b'+') => (1, &z[1..]),
        Some(b'-') => (-1, &z[1..]),
        _ => return None,
    };
    let digits: String = rest.chars().filter(|c| *c != ':').collect();
    if digits.len() != 4 || !digits.bytes().all(|b| b.is_ascii_digit()) || rest.len() > 5 {
        return None;
    }
    let h: i32 = digits[..2].parse().ok()?;
    let m: i32 = digits[2..].parse().ok()?;
    if m >= 60 || h * 60 + m > 14 * 60 {
        return None;
    }
    Some(Some(sign * (h * 60 + m)))
}

/// The server's zone at `now` in minutes east, from the C library's rules
/// (`TZ`, `/etc/localtime`): the local wall clock minus UTC's.
fn local_offset(now: i64) -> i32 {
    let Some((_, lday, lh, lm, _)) = crate::sys::local_time(now) else {
        return 0;
    };
    let secs = now.rem_euclid(86_400);
    let (uh, um) = ((secs / 3600) as i32, ((secs % 3600) / 60) as i32);
    let uday = utc_day_of_month(now.div_euclid(86_400));
    zone_between((lday, lh as i32, lm as i32), (uday, uh, um))
}

/// The day of the month of `days` since 1970-01-01 (proleptic Gregorian).
fn utc_day_of_month(days: i64) -> u32 {
    let z = days + 719_468;
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    (doy - (153 * mp + 2) / 5 + 1) as u32
}

/// Minutes from UTC's (day of month, hour, minute) to the local ones; the
/// days differ by at most one, across a month's end too.
fn zone_between(local: (u32, i32, i32), utc: (u32, i32, i32)) -> i32 {
    let mut d = (local.1 * 60 + local.2) - (utc.1 * 60 + utc.2);
    if local.0 != utc.0 {
        // Local is the next day when its day is one more, or it is the
        // 1st and UTC's is a month's last.
        if local.0 == utc.0 + 1 || (local.0 == 1 && utc.0 >= 28) {
            d += 1440;
        } else {
            d -= 1440;
        }
    }
    d
}

/// Whether `key` is remembered in the Maildir until after `now`.
fn remembered(maildir: &Path, key: &str, now: u64) -> bool {
    fs::read_to_string(maildir.join(STATE_DIR).join(key))
        .ok()
        .and_then(|t| t.trim().parse::<u64>().ok())
        .is_some_and(|until| until > now)
}

/// Remembers `key` until `until` (a new file renamed over the old).
pub fn remember(maildir: &Path, key: &str, until: u64) -> std::io::Result<()> {
    let dir = maildir.join(STATE_DIR);
    match fs::create_dir(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    let tmp = dir.join(format!(".{key}.{}", std::process::id()));
    fs::write(&tmp, format!("{until}\n"))?;
    fs::rename(&tmp, dir.join(key))
}

/// Removes the memory files of `maildir` that expired by `now` (vacation
/// replies, duplicate ids, redirects sent); kmp-local calls it now and then.
pub fn sweep(maildir: &Path, now: u64) {
    let Ok(dir) = fs::read_dir(maildir.join(STATE_DIR)) else {
        return;
    };
    for e in dir.flatten() {
        let name = e.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.starts_with('.') || remembered(maildir, name, now) {
            continue;
        }
        let _ = fs::remove_file(e.path());
    }
}

/// Tells the user, once per `key`, that a script failed: a notice in INBOX.
pub fn tell_failure(maildir: &Path, key: &str, text: &str, hostname: &str, now: u64) {
    let marker = format!("failed-{:016x}", super::deliver::fnv64(key));
    if remembered(maildir, &marker, now) {
        return;
    }
    let notice = format!(
        "From: Mail Delivery System <MAILER-DAEMON@{hostname}>\nSubject: Your mail filter failed\nAuto-Submitted: auto-generated\nMIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\nA message to you could not be sorted by your filter, so it was put in\nyour INBOX. Nothing was lost.\n\n{text}\n\nThis notice is sent once until the script changes.\n"
    );
    let inbox = Maildir::new(maildir).inbox();
    let id = format!("sieve-failed.{:016x}", super::deliver::fnv64(key));
    if inbox.deliver(&mut notice.as_bytes(), Some(&id)).is_ok() {
        let _ = remember(maildir, &marker, u64::MAX / 2);
    }
}

/// The folder for a filing: it, created when asked; INBOX when it does not
/// exist and is not to be created, or its name is not valid.
pub fn folder_for(maildir: &Path, f: &Filing) -> Folder {
    let md = Maildir::new(maildir);
    let Ok(folder) = md.folder(&f.folder) else {
        return md.inbox();
    };
    if folder.exists() {
        return folder;
    }
    if f.create {
        match md.create_folder(&f.folder) {
            Ok(folder) => return folder,
            Err(crate::maildir::Error::Exists(_)) => return folder,
            Err(_) => return md.inbox(),
        }
    }
    md.inbox()
}

/// Moves a just-delivered message to `cur/` with the flags of `flags`
/// (imap4flags): the system flags \Seen, \Answered, \Flagged, \Deleted
/// and \Draft as their letters, any other valid name as a keyword letter
/// `a`-`z`, named in the folder's `dovecot-keywords` as kmp-imapd keeps
/// them (under the folder's index lock). Names that are not IMAP atoms, and
/// keywords past the 26 a folder can hold, are left out.
pub fn set_flags(path: &Path, flags: &[String]) -> std::io::Result<()> {
    use crate::maildir::flags::{valid_keyword, Flags};
    let mut system = Flags::empty();
    let mut keywords: Vec<&str> = Vec::new();
    for f in flags {
        match f.to_ascii_lowercase().as_str() {
            "\\seen" => system = system.union(Flags::SEEN),
            "\\answered" => system = system.union(Flags::REPLIED),
            "\\flagged" => system = system.union(Flags::FLAGGED),
            "\\deleted" => system = system.union(Flags::TRASHED),
            "\\draft" => system = system.union(Flags::DRAFT),
            _ if valid_keyword(f) && !keywords.iter().any(|k| k.eq_ignore_ascii_case(f)) => {
                keywords.push(f);
            }
            _ => {}
        }
    }
    if system.is_empty() && keywords.is_empty() {
        return Ok(());
    }
    let (Some(base), Some(new_dir)) = (path.file_name(), path.parent()) else {
        return Ok(());
    };
    if new_dir.file_name().is_none_or(|n| n != "new") {
        return Ok(());
    }
    let Some(folder) = new_dir.parent() else {
        return Ok(());
    };
    let to_io = |e: crate::maildir::Error| std::io::Error::other(e.to_string());
    let _lock = crate::maildir::lock::exclusive(&folder.join(crate::maildir::index::LOCK_FILE))
        .map_err(to_io)?;
    let mut bits = 0;
    if !keywords.is_empty() {
        let mut known = crate::maildir::Keywords::load(folder).map_err(to_io)?;
        // All at once, else one by one so that a full table keeps those
        // that fit.
        bits = match known.ensure(folder, &keywords) {
            Ok(b) => b,
            Err(_) => keywords
                .iter()
                .filter_map(|k| known.ensure(folder, &[k]).ok())
                .fold(0, |b, k| b | k),
        };
    }
    let letters = crate::maildir::MailFlags {
        flags: system,
        keywords: bits,
    }
    .letters();
    if letters.is_empty() {
        return Ok(());
    }
    let name = format!("{}:2,{letters}", base.to_string_lossy());
    fs::rename(path, folder.join("cur").join(name))
}

/// Hands a message to kmp-inject; the error text when it failed.
pub fn send(s: &SieveSettings, o: &Outgoing) -> Result<(), String> {
    let sender = match &s.srs {
        Some(srs) if o.what == "redirect" => srs.forward(&o.sender, crate::mailauth::srs::today()),
        _ => o.sender.clone(),
    };
    crate::inject::run(
        &s.inject,
        s.config.as_deref(),
        &sender,
        std::slice::from_ref(&o.to),
        &o.data,
    )
}

/// The message's first `MAX_MESSAGE` bytes.
pub fn read_message(file: &std::fs::File, size: u64) -> std::io::Result<Vec<u8>> {
    use std::os::unix::fs::FileExt;
    let n = size.min(MAX_MESSAGE) as usize;
    let mut buf = vec![0u8; n];
    let mut off = 0;
    while off < n {
        let r = file.read_at(&mut buf[off..], off as u64)?;
        if r == 0 {
            break;
        }
        off += r;
    }
    buf.truncate(off);
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user() -> UserInfo {
        UserInfo {
            address: "u@example.test".into(),
            mail_path: PathBuf::new(),
            quota_bytes: 0,
            quota_messages: 0,
            active: true,
            forwards: Vec::new(),
            keep_copy: false,
            pop3_subfolders: false,
            login_delay: 0,
            spam: Default::default(),
            max_message_bytes: None,
        }
    }

    const MSG: &[u8] = b"From: s@example.test\nTo: u@example.test\nSubject: monthly report\nMessage-ID: <1@example.test>\n\nhello\n";

    fn setup(script: &str) -> (tempfile::TempDir, SieveSettings) {
        let d = tempfile::tempdir().unwrap();
        Maildir::create(d.path()).unwrap();
        let store = Store::new(
            d.path(),
            StoreLimits {
                max_scripts: 10,
                max_script_size: 1 << 20,
                quota_bytes: 1 << 20,
            },
        );
        store.put("main", script.as_bytes()).unwrap();
        store.set_active(Some("main")).unwrap();
        (d, SieveSettings::none())
    }

    fn run(d: &Path, s: &SieveSettings, raw: &[u8]) -> Decision {
        decide(
            s,
            &user(),
            d,
            "s@example.test",
            "u@example.test",
            raw,
            &Clock::System,
        )
    }

    #[test]
    fn include_global_and_a_changed_include_is_seen() {
        let (d, mut s) = setup(
            "require [\"include\"];\ninclude :global \"spam\";\ninclude :personal \"mine\";\n",
        );
        let g = tempfile::tempdir().unwrap();
        s.global_dir = g.path().to_path_buf();
        fs::write(
            g.path().join("spam.sieve"),
            "require \"fileinto\"; fileinto \"Global1\";\n",
        )
        .unwrap();
        fs::write(
            d.path().join("sieve/mine.sieve"),
            "require \"fileinto\"; fileinto \"Mine1\";\n",
        )
        .unwrap();
        let names =
            |r: Decision| -> Vec<String> { r.filings.into_iter().map(|f| f.folder).collect() };
        assert_eq!(names(run(d.path(), &s, MSG)), ["Global1", "Mine1"]);
        // Changed includes (another size) are seen at once.
        fs::write(
            g.path().join("spam.sieve"),
            "require \"fileinto\"; fileinto \"Global22\";\n",
        )
        .unwrap();
        assert_eq!(names(run(d.path(), &s, MSG)), ["Global22", "Mine1"]);
        fs::write(
            d.path().join("sieve/mine.sieve"),
            "require \"fileinto\"; fileinto \"Mine333\";\n",
        )
        .unwrap();
        assert_eq!(names(run(d.path(), &s, MSG)), ["Global22", "Mine333"]);
        // A missing global script is an error (no :optional): INBOX, told.
        fs::remove_file(g.path().join("spam.sieve")).unwrap();
        let r = run(d.path(), &s, MSG);
        assert!(r.failure.is_some(), "{r:?}");
        // Without sieve.global_dir, `:global` finds nothing; a name with a
        // slash is refused, never read.
        let (d, s) = setup("require [\"include\"];\ninclude :global :optional \"spam\";\n");
        assert!(run(d.path(), &s, MSG).is_plain_keep());
        let (d, mut s) = setup("require [\"include\"];\ninclude :global \"../x\";\n");
        s.global_dir = g.path().join("sub");
        fs::create_dir(g.path().join("sub")).unwrap();
        fs::write(g.path().join("x.sieve"), "discard;\n").unwrap();
        let r = run(d.path(), &s, MSG);
        assert!(r.failure.is_some(), "{r:?}");
    }

    #[test]
    fn expired_memory_is_swept() {
        let d = tempfile::tempdir().unwrap();
        remember(d.path(), "sent-1", 100).unwrap();
        remember(d.path(), "vacation-2", 300).unwrap();
        sweep(d.path(), 200);
        assert!(!remembered(d.path(), "sent-1", 0));
        assert!(!d.path().join(STATE_DIR).join("sent-1").exists());
        assert!(remembered(d.path(), "vacation-2", 200));
    }

    #[test]
    fn time_zones() {
        assert_eq!(parse_zone(""), Some(None));
        assert_eq!(parse_zone("local"), Some(None));
        assert_eq!(parse_zone("UTC"), Some(Some(0)));
        assert_eq!(parse_zone("+0800"), Some(Some(480)));
        assert_eq!(parse_zone("-09:30"), Some(Some(-570)));
        assert_eq!(parse_zone("+1500"), None);
        assert_eq!(parse_zone("0800"), None);
        assert_eq!(parse_zone("+08"), None);
        // 2026-12-05 is day 20792; 2026-02-28 is day 20512.
        assert_eq!(utc_day_of_month(20792), 5);
        assert_eq!(utc_day_of_month(20512), 28);
        assert_eq!(utc_day_of_month(0), 1);
        assert_eq!(zone_between((5, 13, 0), (5, 5, 0)), 480);
        assert_eq!(zone_between((6, 2, 0), (5, 18, 0)), 480);
        assert_eq!(zone_between((1, 1, 0), (31, 17, 0)), 480);
        assert_eq!(zone_between((31, 20, 30), (1, 6, 0)), -570);
        // Whatever the machine's zone, it is within a day of UTC.
        assert!(local_offset(1_790_000_000).abs() < 1440);
    }

    #[test]
    fn no_script_is_a_plain_keep() {
        let d = tempfile::tempdir().unwrap();
        let s = SieveSettings::none();
        assert!(!applies(&s, &user(), d.path()));
        assert!(run(d.path(), &s, MSG).is_plain_keep());
    }

    #[test]
    fn fileinto_with_flags_and_implicit_keep_cancelled() {
        let (d, s) = setup(
            "require [\"fileinto\", \"imap4flags\"];\nif header :contains \"subject\" \"report\" { fileinto :flags \"\\\\Seen\" \"Reports\"; }\n",
        );
        let r = run(d.path(), &s, MSG);
        assert_eq!(
            r.filings,
            vec![Filing {
                folder: "Reports".into(),
                flags: vec!["\\Seen".into()],
                create: false
            }]
        );
        assert!(!r.is_plain_keep());
    }

    #[test]
    fn before_domain_user_and_after_scripts_all_run_in_order() {
        let (d, mut s) = setup("require \"fileinto\"; fileinto \"User\";\n");
        let sys = tempfile::tempdir().unwrap();
        fs::write(
            sys.path().join("before.sieve"),
            "require \"fileinto\"; fileinto \"Before\";\n",
        )
        .unwrap();
        fs::write(
            sys.path().join("after.sieve"),
            "require \"fileinto\"; fileinto \"After\";\n",
        )
        .unwrap();
        fs::create_dir(sys.path().join("domains")).unwrap();
        fs::write(sys.path().join("domains/example.test.sieve"), "keep;\n").unwrap();
        s.before = sys.path().join("before.sieve");
        s.after = sys.path().join("after.sieve");
        s.domain_dir = sys.path().join("domains");
        let r = run(d.path(), &s, MSG);
        let names: Vec<&str> = r.filings.iter().map(|f| f.folder.as_str()).collect();
        assert_eq!(names, ["Before", "INBOX", "User", "After"]);
    }

    #[test]
    fn reject_redirect_and_vacation_once() {
        let (d, s) = setup("require \"reject\"; reject \"no thanks\";\n");
        assert_eq!(run(d.path(), &s, MSG).reject.as_deref(), Some("no thanks"));
        let (d, s) = setup("redirect \"v@example.test\";\n");
        let r = run(d.path(), &s, MSG);
        assert!(r.filings.is_empty());
        assert_eq!(r.outgoing.len(), 1);
        assert_eq!(r.outgoing[0].to, "v@example.test");
        assert_eq!(r.outgoing[0].sender, "s@example.test");
        assert!(r.outgoing[0]
            .data
            .starts_with(b"Delivered-To: u@example.test\nFrom:"));
        let (d, s) = setup("require \"vacation\"; vacation :subject \"出差\" \"away\";\n");
        let r = run(d.path(), &s, MSG);
        assert_eq!(r.outgoing.len(), 1, "{r:?}");
        let o = &r.outgoing[0];
        assert_eq!(o.sender, "");
        let text = String::from_utf8_lossy(&o.data);
        assert!(text.contains("Auto-Submitted: auto-replied"), "{text}");
        assert!(text.contains("Subject: =?utf-8?B?5Ye65beu?="), "{text}");
        assert!(text.contains("In-Reply-To: <1@example.test>"), "{text}");
        let (key, until) = o.remember.clone().unwrap();
        remember(d.path(), &key, until).unwrap();
        assert!(run(d.path(), &s, MSG).outgoing.is_empty());
    }

    #[test]
    fn a_broken_script_keeps_the_message_and_is_told_once() {
        let (d, s) = setup("keep;\n");
        fs::write(d.path().join("sieve/main.sieve"), "if {\n").unwrap();
        let r = run(d.path(), &s, MSG);
        let (key, text) = r.failure.clone().expect("a failure");
        assert!(text.contains("your script \"main\""), "{text}");
        assert_eq!(r.filings.len(), 1);
        tell_failure(d.path(), &key, &text, "mx.example.test", 1);
        tell_failure(d.path(), &key, &text, "mx.example.test", 2);
        assert_eq!(fs::read_dir(d.path().join("new")).unwrap().count(), 1);
    }

    #[test]
    fn flags_move_the_file_to_cur() {
        let d = tempfile::tempdir().unwrap();
        let md = Maildir::create(d.path()).unwrap();
        let dl = md.inbox().deliver(&mut &MSG[..], None).unwrap();
        set_flags(
            &dl.path,
            &["\\Flagged".into(), "\\Seen".into(), "$label".into()],
        )
        .unwrap();
        let names: Vec<String> = fs::read_dir(d.path().join("cur"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names.len(), 1);
        assert!(names[0].ends_with(":2,FSa"), "{names:?}");
        let kw = crate::maildir::Keywords::load(d.path()).unwrap();
        assert_eq!(kw.all(), ["$label"]);
        // A second message reuses the letter; a bad name is left out.
        let dl = md.inbox().deliver(&mut &MSG[..], None).unwrap();
        set_flags(
            &dl.path,
            &["Work".into(), "$LABEL".into(), "bad(name".into()],
        )
        .unwrap();
        let kw = crate::maildir::Keywords::load(d.path()).unwrap();
        assert_eq!(kw.all(), ["$label", "Work"]);
        let mut names: Vec<String> = fs::read_dir(d.path().join("cur"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort_by_key(|n| n.len());
        assert!(names.iter().any(|n| n.ends_with(":2,ab")), "{names:?}");
    }
}
