//! Requests by mail: subscribe, unsubscribe, help, confirmations,
//! moderation by reply, bounces. Pure decisions over a [`ListStore`]; the
//! caller (kmp-local's list delivery) performs the returned mails and logs
//! the returned lines.
//!
//! The addresses (the part after `LIST-`, `-` or `+` as separator):
//!
//! | address | does |
//! |---|---|
//! | `subscribe`, `subscribe-MEMBER=DOMAIN` | sends a confirmation request to the address (the sender's, or the one named) |
//! | `unsubscribe`, `unsubscribe-MEMBER=DOMAIN` | the same for leaving |
//! | `help` | answers with the help text |
//! | `confirm-TOKEN` | acts on a checked [`super::cookie`]: subscribes, unsubscribes, approves or rejects a held post, removes a member whose warning probe bounced |
//! | `bounce-MEMBER=DOMAIN` | counts a bounce ([`super::bounce`]) |
//!
//! Nobody can subscribe or unsubscribe someone else: the request only
//! makes a confirmation mail to the address itself, whose reply address
//! holds the cookie. No mail answers a request that comes from a mailer
//! daemon, a program (`Auto-Submitted:` other than `no`, `Precedence:
//! bulk/junk/list`) or a list (`List-Id:` and its kin), so two robots
//! never talk to each other ([`quiet`]); and the mails a list sends itself
//! go out with the null return path (nothing bounces back) and
//! `Auto-Submitted: auto-replied`. A flood of requests for one address
//! sends at most `lists.confirm_limit` mails a day to it ([`RateBook`]);
//! the rest is logged and dropped.

use std::path::{Path, PathBuf};

use super::bounce::{self, BounceBook, Policy, Step};
use super::cookie::{Action, CookieError, CookieKey};
use super::texts::{self, Notice, Text, Texts};
use super::verp::{self, Member};

/// What a message to one of a list's addresses asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// Subscribe the named address, or the sender's.
    Subscribe(Option<String>),
    /// Unsubscribe the named address, or the sender's.
    Unsubscribe(Option<String>),
    Help,
    /// A reply to a confirmation request (the token).
    Confirm(String),
    /// A moderator's reply to `list-approve-TOKEN@` (true) or
    /// `list-reject-TOKEN@` (false).
    Moderate(String, bool),
    /// A bounce of list mail to a member (`MEMBER=DOMAIN`).
    Bounce(String),
}

impl Request {
    /// The request of a list address as [`super::address::forms`] read it
    /// (None for a post and the owner's address). `list-request@` takes
    /// the first word of the subject: `subscribe`, `unsubscribe` or
    /// `help` (anything else is help), as ezmlm and Majordomo read it.
    pub fn from_role(role: &super::Role, raw: &[u8]) -> Option<Request> {
        use super::Role;
        Some(match role {
            Role::Post | Role::Owner | Role::Digest(_) => return None,
            Role::Subscribe => Request::Subscribe(None),
            Role::Unsubscribe => Request::Unsubscribe(None),
            Role::Help => Request::Help,
            Role::Request => {
                let subject = header_fields(raw)
                    .into_iter()
                    .find(|(n, _)| n.eq_ignore_ascii_case("subject"))
                    .map(|(_, v)| v)
                    .unwrap_or_default();
                match parse_extension(subject.split_whitespace().next().unwrap_or("")) {
                    Some(r @ (Request::Subscribe(None) | Request::Unsubscribe(None))) => r,
                    _ => Request::Help,
                }
            }
            Role::SubscribeAddress(a) => Request::Subscribe(Some(a.clone())),
            Role::UnsubscribeAddress(a) => Request::Unsubscribe(Some(a.clone())),
            Role::Bounce(a) => Request::Bounce(a.clone()),
            Role::Confirm(t) => Request::Confirm(t.clone()),
            Role::Approve(t) => Request::Moderate(t.clone(), true),
            Role::Reject(t) => Request::Moderate(t.clone(), false),
        })
    }
}

/// The request of an address extension (what follows `LIST-`), if it is
/// one of ours; keywords in any case.
pub fn parse_extension(ext: &str) -> Option<Request> {
    let (word, arg) = match ext.find(['-', '+']) {
        Some(i) => (&ext[..i], Some(&ext[i + 1..])),
        None => (ext, None),
    };
    let arg = arg.filter(|a| !a.is_empty());
    let named = |a: Option<&str>| a.map(|a| a.to_string());
    match word.to_ascii_lowercase().as_str() {
        "subscribe" => Some(Request::Subscribe(named(arg))),
        "unsubscribe" => Some(Request::Unsubscribe(named(arg))),
        "help" if arg.is_none() => Some(Request::Help),
        "confirm" => arg.map(|a| Request::Confirm(a.to_string())),
        "approve" => arg.map(|a| Request::Moderate(a.to_string(), true)),
        "reject" => arg.map(|a| Request::Moderate(a.to_string(), false)),
        "bounce" => arg.map(|a| Request::Bounce(a.to_string())),
        _ => None,
    }
}

/// Why a request gets no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quiet {
    /// The null return path: a bounce or a notification.
    NullSender,
    /// MAILER-DAEMON, a list's owner or request address, a list robot.
    Robot,
    /// `Auto-Submitted:` other than `no` (RFC 3834).
    AutoSubmitted,
    /// `Precedence: bulk`, `junk` or `list`.
    Precedence,
    /// `List-Id:`, `List-Post:`, `Mailing-List:` ...: list mail.
    ListMail,
}

impl std::fmt::Display for Quiet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Quiet::NullSender => "from the null sender",
            Quiet::Robot => "from a mailer daemon or list robot",
            Quiet::AutoSubmitted => "auto-submitted",
            Quiet::Precedence => "bulk, junk or list precedence",
            Quiet::ListMail => "mail from a list",
        })
    }
}

/// Whether a request from `sender` (None: the null return path) with this
/// header section must go unanswered.
pub fn quiet(sender: Option<&str>, raw: &[u8]) -> Option<Quiet> {
    let Some(sender) = sender.filter(|s| !s.is_empty()) else {
        return Some(Quiet::NullSender);
    };
    let local = sender
        .rsplit_once('@')
        .map_or(sender, |(l, _)| l)
        .to_ascii_lowercase();
    let robot = [
        "mailer-daemon",
        "mailer_daemon",
        "listserv",
        "majordomo",
        "mdaemon",
    ]
    .contains(&local.as_str())
        || local.starts_with("owner-")
        || ["-request", "-owner", "-bounce", "-bounces", "-help"]
            .iter()
            .any(|s| local.ends_with(s))
        || local.contains("-bounce-")
        || local.contains("-confirm-");
    if robot {
        return Some(Quiet::Robot);
    }
    for (name, value) in header_fields(raw) {
        let v = value.trim().to_ascii_lowercase();
        match name.to_ascii_lowercase().as_str() {
            "auto-submitted" if !v.starts_with("no") => return Some(Quiet::AutoSubmitted),
            "precedence" if ["bulk", "junk", "list"].iter().any(|p| v.starts_with(p)) => {
                return Some(Quiet::Precedence)
            }
            "list-id" | "list-post" | "list-unsubscribe" | "mailing-list" | "x-mailing-list"
            | "list-help" => return Some(Quiet::ListMail),
            _ => {}
        }
    }
    None
}

/// The header fields of a message, unfolded (at most 1000, for safety).
fn header_fields(raw: &[u8]) -> Vec<(String, String)> {
    let end = raw
        .windows(2)
        .position(|w| w == b"\n\n")
        .or_else(|| raw.windows(4).position(|w| w == b"\r\n\r\n"))
        .unwrap_or(raw.len());
    let text = String::from_utf8_lossy(&raw[..end]);
    let mut out: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        if line.starts_with([' ', '\t']) {
            if let Some(last) = out.last_mut() {
                last.1.push(' ');
                last.1.push_str(line.trim());
            }
        } else if let Some((n, v)) = line.split_once(':') {
            if out.len() == 1000 {
                break;
            }
            out.push((n.trim().to_string(), v.trim().to_string()));
        }
    }
    out
}

/// The first line of text of a message's body (a moderator's reason).
pub fn first_line(raw: &[u8]) -> Option<String> {
    let m = mail_parser::MessageParser::default().parse(raw)?;
    let text = m.body_text(0)?;
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('>'))
        .map(|l| l.chars().take(500).collect())
}

/// What kmp-local's list delivery knows and does about one list.
pub trait ListStore {
    /// `name@domain`.
    fn address(&self) -> &str;
    fn is_member(&self, m: &Member) -> bool;
    /// Adds the member.
    fn subscribe(&mut self, m: &Member) -> Result<(), String>;
    /// Removes the member.
    fn unsubscribe(&mut self, m: &Member) -> Result<(), String>;
    /// Whether the owner approves new members.
    fn owner_approval(&self) -> bool;
    /// Where requests for the owner go.
    fn owners(&self) -> Vec<String>;
    /// The held post `id`: its sender and the message.
    fn held(&self, id: &str) -> Option<(String, Vec<u8>)>;
    /// Sends the held post to the list.
    fn release(&mut self, id: &str) -> Result<(), String>;
    /// Drops the held post.
    fn discard(&mut self, id: &str) -> Result<(), String>;
    /// The language of the list's texts (`en`, `zh-CN` ...).
    fn lang(&self) -> String;
}

/// A mail to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    /// The return path; empty for the null one.
    pub sender: String,
    pub to: String,
    /// LF line endings.
    pub bytes: Vec<u8>,
}

/// What handling a request came to.
#[derive(Debug, Default)]
pub struct Outcome {
    pub mails: Vec<Outgoing>,
    /// One line per event, for the mail log.
    pub log: Vec<String>,
}

/// Everything a request is decided with, besides the list.
pub struct Env<'a> {
    pub key: &'a CookieKey,
    /// Unix seconds.
    pub now: u64,
    /// `system.hostname`.
    pub hostname: &'a str,
    /// `lists.confirm_lifetime`, seconds.
    pub confirm_lifetime: u64,
    /// `lists.confirm_limit`.
    pub confirm_limit: u32,
    pub policy: Policy,
    /// `lists.texts_dir` (None: the built-in texts).
    pub texts_dir: Option<&'a Path>,
    /// The list's state directory: `confirm-rate/` and `bounces/` go there.
    pub state_dir: &'a Path,
}

/// `name-WHAT@domain` of the list `name@domain`.
pub fn address_of(list: &str, what: &str) -> String {
    let (name, domain) = list.split_once('@').unwrap_or((list, ""));
    format!("{name}-{what}@{domain}")
}

/// Whether one of the list's own addresses is one our server takes back:
/// its local part within `proto::smtp::address::MAX_LOCAL_PART`.
pub fn fits(address: &str) -> bool {
    address
        .rsplit_once('@')
        .is_some_and(|(l, _)| l.len() <= crate::proto::smtp::address::MAX_LOCAL_PART)
}

/// The reply address of a cookie.
pub fn confirm_address(env: &Env, list: &str, action: Action, subject: &str) -> String {
    let exp = env.now + env.confirm_lifetime;
    address_of(
        list,
        &format!("confirm-{}", env.key.mint(list, action, subject, exp)),
    )
}

/// The one-click unsubscribe link of a member (RFC 8058) under the
/// webmail's URL (`lists.web_url`), valid for `lifetime` seconds. The
/// webmail passes the token on to the list's confirm address.
pub fn unsubscribe_link(
    key: &CookieKey,
    web_url: &str,
    list: &str,
    member: &str,
    now: u64,
    lifetime: u64,
) -> String {
    let token = key.mint(list, Action::OneClick, member, now + lifetime);
    format!(
        "{}/unsubscribe?list={}&c={}",
        web_url.trim_end_matches('/'),
        list.replace('@', "%40"),
        token.replace('+', "%2B").replace('=', "%3D")
    )
}

/// Handles one message to one of the list's request addresses.
pub fn handle(
    req: &Request,
    sender: Option<&str>,
    raw: &[u8],
    list: &mut dyn ListStore,
    env: &Env,
) -> Outcome {
    let mut out = Outcome::default();
    let addr = list.address().to_string();
    let who = sender.filter(|s| !s.is_empty()).unwrap_or("<>");
    match req {
        Request::Subscribe(named) | Request::Unsubscribe(named) => {
            let subscribe = matches!(req, Request::Subscribe(_));
            let verb = if subscribe {
                "subscribe"
            } else {
                "unsubscribe"
            };
            if let Some(q) = quiet(sender, raw) {
                out.log.push(format!(
                    "list={addr} {verb} request from {who} ignored: {q}"
                ));
                return out;
            }
            let target = named
                .as_deref()
                .map(verp::decode)
                .unwrap_or_else(|| verp::member(sender.unwrap_or("")));
            let m = match target {
                Ok(m) => m,
                Err(e) => {
                    out.log.push(format!(
                        "list={addr} {verb} request from {who} refused: {e}"
                    ));
                    return out;
                }
            };
            if list.is_member(&m) == subscribe {
                let state = if subscribe {
                    "already a member"
                } else {
                    "not a member"
                };
                out.log.push(format!(
                    "list={addr} {verb} request for <{m}> from {who}: {state}, nothing sent"
                ));
                return out;
            }
            if !rate_ok(env, &m, &mut out, &addr) {
                return out;
            }
            let (action, text) = if subscribe {
                (Action::Subscribe, Text::ConfirmSubscribe)
            } else {
                (Action::Unsubscribe, Text::ConfirmUnsubscribe)
            };
            let confirm = confirm_address(env, &addr, action, &m.to_string());
            if !fits(&confirm) {
                out.log.push(format!(
                    "list={addr} {verb} request for <{m}> from {who} refused: the address is too long to be carried in a reply address (local part over {} octets); nothing sent",
                    crate::proto::smtp::address::MAX_LOCAL_PART
                ));
                return out;
            }
            out.mails.push(notice(
                env,
                list,
                text,
                &m.to_string(),
                Some(&confirm),
                &[("address", m.to_string()), ("confirm", confirm.clone())],
                None,
            ));
            out.log.push(format!(
                "list={addr} {verb} request for <{m}> from {who}: confirmation sent"
            ));
        }
        Request::Help => {
            if let Some(q) = quiet(sender, raw) {
                out.log
                    .push(format!("list={addr} help request from {who} ignored: {q}"));
                return out;
            }
            let m = match verp::member(sender.unwrap_or("")) {
                Ok(m) => m,
                Err(e) => {
                    out.log
                        .push(format!("list={addr} help request from {who} refused: {e}"));
                    return out;
                }
            };
            if !rate_ok(env, &m, &mut out, &addr) {
                return out;
            }
            out.mails.push(notice(
                env,
                list,
                Text::Help,
                &m.to_string(),
                None,
                &[],
                None,
            ));
            out.log.push(format!("list={addr} help sent to <{m}>"));
        }
        Request::Confirm(token) => confirm(token, None, sender, raw, list, env, &mut out),
        Request::Moderate(token, approve) => {
            let want = if *approve {
                Action::Approve
            } else {
                Action::Reject
            };
            confirm(token, Some(want), sender, raw, list, env, &mut out)
        }
        Request::Bounce(enc) => {
            let m = match verp::decode(enc) {
                Ok(m) => m,
                Err(e) => {
                    out.log
                        .push(format!("list={addr} bounce for {enc:?} ignored: {e}"));
                    return out;
                }
            };
            if !list.is_member(&m) {
                out.log.push(format!(
                    "list={addr} bounce for <{m}> ignored: not a member"
                ));
                return out;
            }
            let kind = bounce::classify(raw);
            if !kind.counts() {
                out.log.push(format!("list={addr} message to the bounce address of <{m}> ignored: not a bounce ({kind:?})"));
                return out;
            }
            let book = BounceBook::new(&env.state_dir.join("bounces"));
            let step = match book.record(&m, env.now, &env.policy) {
                Ok(s) => s,
                Err(e) => {
                    out.log
                        .push(format!("list={addr} bounce for <{m}> not recorded: {e}"));
                    return out;
                }
            };
            match step {
                Step::Warn { days } => {
                    let rp = confirm_address(env, &addr, Action::Probe, &m.to_string());
                    let mut n = notice(
                        env,
                        list,
                        Text::Probe,
                        &m.to_string(),
                        None,
                        &[("address", m.to_string()), ("bounces", days.to_string())],
                        None,
                    );
                    n.sender = rp;
                    out.mails.push(n);
                }
                Step::Remove { .. } => remove(env, list, &m, &mut out, "bounces", false),
                Step::Counted { .. } | Step::Ignored => {}
            }
            out.log.push(format!("list={addr} member=<{m}> {step}"));
        }
    }
    out
}

/// Acts on a confirmation cookie; `want`: the action the address asks for
/// (approve- and reject- addresses), None for confirm- (any other action).
fn confirm(
    token: &str,
    want: Option<Action>,
    sender: Option<&str>,
    raw: &[u8],
    list: &mut dyn ListStore,
    env: &Env,
    out: &mut Outcome,
) {
    let addr = list.address().to_string();
    let who = sender.filter(|s| !s.is_empty()).unwrap_or("<>");
    let c = match env.key.check(&addr, token, env.now) {
        Ok(c) => c,
        Err(e) => {
            let why = match e {
                CookieError::Expired => "expired",
                CookieError::Forged => "forged, or for another list or action",
                CookieError::Malformed => "malformed",
            };
            out.log.push(format!(
                "list={addr} confirmation from {who} refused: {e} ({why}); nothing changed"
            ));
            return;
        }
    };
    let moderation = matches!(c.action, Action::Approve | Action::Reject);
    if want.map_or(moderation, |w| w != c.action) {
        out.log.push(format!(
            "list={addr} confirmation from {who} refused: a {:?} cookie at the wrong address; nothing changed",
            c.action
        ));
        return;
    }
    if c.action == Action::Probe {
        let Ok(m) = verp::member(&c.subject) else {
            return;
        };
        let kind = bounce::classify(raw);
        if kind.counts() && list.is_member(&m) {
            remove(env, list, &m, out, "its warning probe bounced", false);
            BounceBook::new(&env.state_dir.join("bounces")).forget(&m);
        } else {
            out.log.push(format!(
                "list={addr} message to the probe address of <{m}> ignored ({kind:?})"
            ));
        }
        return;
    }
    // A vacation message or other robot answering the request is no
    // confirmation (the null sender is: the webmail's one-click mail).
    if let Some(q) = quiet(Some(sender.unwrap_or("x@x")), raw).filter(|q| *q != Quiet::Robot) {
        out.log
            .push(format!("list={addr} confirmation from {who} ignored: {q}"));
        return;
    }
    match c.action {
        Action::Subscribe | Action::Permit => {
            let Ok(m) = verp::member(&c.subject) else {
                return;
            };
            if list.is_member(&m) {
                out.log.push(format!(
                    "list={addr} <{m}> confirmed again: already a member"
                ));
                return;
            }
            if c.action == Action::Subscribe && list.owner_approval() {
                let permit = confirm_address(env, &addr, Action::Permit, &m.to_string());
                for o in list.owners() {
                    out.mails.push(notice(
                        env,
                        list,
                        Text::OwnerPermit,
                        &o,
                        Some(&permit),
                        &[("address", m.to_string()), ("confirm", permit.clone())],
                        None,
                    ));
                }
                out.mails.push(notice(
                    env,
                    list,
                    Text::Pending,
                    &m.to_string(),
                    None,
                    &[("address", m.to_string())],
                    None,
                ));
                out.log.push(format!(
                    "list={addr} <{m}> confirmed; asked the owner's approval"
                ));
                return;
            }
            match list.subscribe(&m) {
                Ok(()) => {
                    out.mails.push(notice(
                        env,
                        list,
                        Text::Welcome,
                        &m.to_string(),
                        None,
                        &[("address", m.to_string())],
                        None,
                    ));
                    let by = if c.action == Action::Permit {
                        "approved by the owner"
                    } else {
                        "confirmed"
                    };
                    out.log.push(format!("list={addr} <{m}> subscribed ({by})"));
                }
                Err(e) => out
                    .log
                    .push(format!("list={addr} <{m}> not subscribed: {e}")),
            }
        }
        Action::Unsubscribe | Action::OneClick => {
            let Ok(m) = verp::member(&c.subject) else {
                return;
            };
            if !list.is_member(&m) {
                out.log.push(format!(
                    "list={addr} <{m}> confirmed unsubscription: not a member"
                ));
                return;
            }
            let how = if c.action == Action::OneClick {
                "one-click unsubscribe"
            } else {
                "confirmed"
            };
            remove(env, list, &m, out, how, true);
            BounceBook::new(&env.state_dir.join("bounces")).forget(&m);
        }
        Action::Approve => match list.release(&c.subject) {
            Ok(()) => out.log.push(format!(
                "list={addr} held post {} approved by {who}, released",
                c.subject
            )),
            Err(e) => out.log.push(format!(
                "list={addr} held post {} not released: {e}",
                c.subject
            )),
        },
        Action::Reject => {
            let held = list.held(&c.subject);
            match list.discard(&c.subject) {
                Ok(()) => {
                    out.log.push(format!(
                        "list={addr} held post {} rejected by {who}",
                        c.subject
                    ));
                    if let (Some((poster, post)), Some(reason)) = (held, first_line(raw)) {
                        let subject = super::digest::summary(&post).subject;
                        if quiet(Some(&poster), &post).is_none() && verp::member(&poster).is_ok() {
                            out.mails.push(notice(
                                env,
                                list,
                                Text::Rejected,
                                &poster,
                                None,
                                &[("subject", subject), ("reason", reason)],
                                None,
                            ));
                            out.log
                                .push(format!("list={addr} reason sent to <{poster}>"));
                        }
                    }
                }
                Err(e) => out.log.push(format!(
                    "list={addr} held post {} not rejected: {e}",
                    c.subject
                )),
            }
        }
        Action::Probe => {}
    }
}

/// The mails to the moderators about a post just held as `id`.
pub fn moderation_request(
    list: &dyn ListStore,
    env: &Env,
    moderators: &[String],
    id: &str,
    sender: &str,
    reason: &str,
    post: &[u8],
) -> Outcome {
    let mut out = Outcome::default();
    let addr = list.address().to_string();
    let exp = env.now + env.confirm_lifetime;
    let approve = address_of(
        &addr,
        &format!("approve-{}", env.key.mint(&addr, Action::Approve, id, exp)),
    );
    let reject = address_of(
        &addr,
        &format!("reject-{}", env.key.mint(&addr, Action::Reject, id, exp)),
    );
    let subject = super::digest::summary(post).subject;
    for m in moderators {
        out.mails.push(notice(
            env,
            list,
            Text::Moderate,
            m,
            Some(&approve),
            &[
                ("sender", sender.to_string()),
                ("subject", subject.clone()),
                ("reason", reason.to_string()),
                ("approve", approve.clone()),
                ("reject", reject.clone()),
            ],
            Some(post),
        ));
    }
    out.log.push(format!(
        "list={addr} held post {id} from <{sender}> ({reason}): {} moderator(s) asked",
        moderators.len()
    ));
    out
}

/// Removes a member; a goodbye follows unless the address bounces.
fn remove(
    env: &Env,
    list: &mut dyn ListStore,
    m: &Member,
    out: &mut Outcome,
    why: &str,
    goodbye: bool,
) {
    let addr = list.address().to_string();
    match list.unsubscribe(m) {
        Ok(()) => {
            out.log
                .push(format!("list={addr} <{m}> unsubscribed ({why})"));
            if goodbye {
                let to = m.to_string();
                out.mails
                    .push(notice(env, list, Text::Goodbye, &to, None, &[], None));
            }
        }
        Err(e) => out
            .log
            .push(format!("list={addr} <{m}> not unsubscribed: {e}")),
    }
}

/// Whether another confirmation mail may go to `m` today; counts it.
fn rate_ok(env: &Env, m: &Member, out: &mut Outcome, addr: &str) -> bool {
    let book = RateBook::new(&env.state_dir.join("confirm-rate"));
    if book.take(m, env.now, env.confirm_limit) {
        true
    } else {
        out.log.push(format!(
            "list={addr} request for <{m}> dropped: {} mails to it today already (lists.confirm_limit)",
            env.confirm_limit
        ));
        false
    }
}

/// A notice of `text` to `to`, with the list's usual values in.
fn notice(
    env: &Env,
    list: &dyn ListStore,
    text: Text,
    to: &str,
    reply_to: Option<&str>,
    vars: &[(&str, String)],
    attached: Option<&[u8]>,
) -> Outgoing {
    let addr = list.address();
    let days = (env.confirm_lifetime / 86400).max(1).to_string();
    let mut all: Vec<(&str, String)> = vec![
        ("list", addr.to_string()),
        ("subscribe", address_of(addr, "subscribe")),
        ("unsubscribe", address_of(addr, "unsubscribe")),
        ("help", address_of(addr, "help")),
        ("owner", address_of(addr, "owner")),
        ("days", days),
        ("address", to.to_string()),
    ];
    all.extend(vars.iter().cloned());
    let pairs: Vec<(&str, &str)> = all.iter().rev().map(|(k, v)| (*k, v.as_str())).collect();
    let rendered = Texts::new(env.texts_dir, &list.lang()).render(text, &pairs);
    let from = address_of(addr, "help");
    let bytes = texts::build(&Notice {
        from: &from,
        to,
        reply_to,
        list: addr,
        text: rendered,
        attached,
        now: env.now,
        hostname: env.hostname,
    });
    Outgoing {
        sender: String::new(),
        to: to.to_string(),
        bytes,
    }
}

/// A list as kmp-local holds it: its record, its member store and its
/// state directory (`super::List::state_dir`). `send_on` sends an approved
/// post to the list again (kmp-local's reinjection, as `kmpctl list
/// approve` does): it gets the post's envelope sender and the message with
/// the approval header in front (`super::held::approve`).
pub struct StateList<'a> {
    pub list: &'a super::List,
    pub store: &'a super::store::Store,
    pub state: &'a Path,
    /// The language of the list's texts.
    pub lang: String,
    pub now: u64,
    pub send_on: &'a mut SendOn<'a>,
}

impl ListStore for StateList<'_> {
    fn address(&self) -> &str {
        &self.list.address
    }
    fn is_member(&self, m: &Member) -> bool {
        matches!(self.store.member(&m.to_string()), Ok(Some(_)))
    }
    fn subscribe(&mut self, m: &Member) -> Result<(), String> {
        let rec = super::store::Member::new(&m.to_string(), self.now);
        self.store
            .subscribe(&rec)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
    fn unsubscribe(&mut self, m: &Member) -> Result<(), String> {
        self.store
            .unsubscribe(&m.to_string())
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
    fn owner_approval(&self) -> bool {
        self.list.subscribe_approval
    }
    fn owners(&self) -> Vec<String> {
        self.list.owners.clone()
    }
    fn held(&self, id: &str) -> Option<(String, Vec<u8>)> {
        super::held::get(self.state, id)
            .ok()
            .map(|(meta, data)| (meta.sender, data))
    }
    fn release(&mut self, id: &str) -> Result<(), String> {
        let (_token, meta, data) =
            super::held::approve(self.state, id).map_err(|e| e.to_string())?;
        (self.send_on)(&meta.sender, data)?;
        super::held::remove(self.state, id).map_err(|e| e.to_string())
    }
    fn discard(&mut self, id: &str) -> Result<(), String> {
        super::held::remove(self.state, id).map_err(|e| e.to_string())
    }
    fn lang(&self) -> String {
        self.lang.clone()
    }
}

/// Hands a mail to the queue: return path (empty: null), recipients,
/// message.
pub type Inject<'a> = dyn FnMut(&str, &[String], &[u8]) -> Result<(), String> + 'a;
/// Sends an approved post to the list: its envelope sender, the message.
pub type SendOn<'a> = dyn FnMut(&str, Vec<u8>) -> Result<(), String> + 'a;

/// What requests take from the configuration, read once by kmp-local.
#[derive(Debug, Clone)]
pub struct Settings {
    /// None when `lists.cookie_key_file` could not be read (logged): the
    /// request addresses then go to the owners, as before this side existed.
    pub key: Option<CookieKey>,
    pub confirm_lifetime: u64,
    pub confirm_limit: u32,
    pub policy: Policy,
    pub texts_dir: PathBuf,
    pub hostname: String,
    /// `lists.unsubscribe_link_lifetime`, seconds.
    pub unsubscribe_lifetime: u64,
    /// `lists.digest_plain`.
    pub digest_plain: bool,
}

impl Settings {
    pub fn from_config(cfg: &crate::config::Config) -> Settings {
        let path = cfg.path_of("lists.cookie_key_file");
        let key = if cfg.str("lists.cookie_key_file").is_empty() {
            None
        } else {
            CookieKey::load(&path)
                .map_err(|e| {
                    crate::warn!("lists.cookie_key_file: {e}; list requests go to the owners")
                })
                .ok()
        };
        Settings {
            key,
            confirm_lifetime: cfg.duration("lists.confirm_lifetime").as_secs(),
            confirm_limit: u32::try_from(cfg.u64("lists.confirm_limit")).unwrap_or(u32::MAX),
            policy: Policy::from_config(cfg),
            texts_dir: cfg.path_of("lists.texts_dir"),
            hostname: cfg.str("system.hostname").to_string(),
            unsubscribe_lifetime: cfg.duration("lists.unsubscribe_link_lifetime").as_secs(),
            digest_plain: cfg.bool("lists.digest_plain"),
        }
    }

    /// No key: every request goes to the owners (tests of the post side).
    pub fn none() -> Settings {
        Settings {
            key: None,
            confirm_lifetime: 7 * 86400,
            confirm_limit: 3,
            policy: Policy {
                warn_days: 3,
                remove_days: 3,
                forget: 21 * 86400,
            },
            texts_dir: PathBuf::new(),
            hostname: "localhost".into(),
            unsubscribe_lifetime: 90 * 86400,
            digest_plain: false,
        }
    }
}

/// Serves a message to one of a list's request addresses in kmp-local:
/// decides ([`handle`]), sends the mails through `inject` (return path,
/// recipients, message), logs each line under `qid`. None when the role
/// is not a request or there is no key (the caller forwards to the
/// owners); Err when a mail could not be handed on (a temporary failure:
/// the delivery is retried, and what was already done is not done twice
/// but a confirmation may go out twice).
#[allow(clippy::too_many_arguments)]
pub fn serve(
    rs: &Settings,
    list: &super::List,
    state: &Path,
    role: &super::Role,
    qid: &str,
    sender: &str,
    raw: &[u8],
    now: u64,
    inject: &mut Inject<'_>,
) -> Option<Result<String, String>> {
    let key = rs.key.as_ref()?;
    let req = Request::from_role(role, raw)?;
    let store = match super::store::Store::open(state) {
        Ok(s) => s,
        Err(e) => return Some(Err(e.to_string())),
    };
    let env = Env {
        key,
        now,
        hostname: &rs.hostname,
        confirm_lifetime: rs.confirm_lifetime,
        confirm_limit: rs.confirm_limit,
        policy: rs.policy,
        texts_dir: Some(&rs.texts_dir),
        state_dir: state,
    };
    let addr = list.address.clone();
    let mut send_on = |from: &str, data: Vec<u8>| inject(from, std::slice::from_ref(&addr), &data);
    let mut l = StateList {
        list,
        store: &store,
        state,
        lang: list_lang(list),
        now,
        send_on: &mut send_on,
    };
    let sender = (!sender.is_empty()).then_some(sender);
    let out = handle(&req, sender, raw, &mut l, &env);
    for line in &out.log {
        crate::info!("{qid}: {line}");
    }
    for m in &out.mails {
        if let Err(e) = inject(&m.sender, std::slice::from_ref(&m.to), &m.bytes) {
            return Some(Err(e));
        }
    }
    Some(Ok(out.log.last().cloned().unwrap_or_else(|| {
        format!("list={} request served", list.address)
    })))
}

/// Asks the moderators (the owners when there are none) about the post
/// just held as `id`, in kmp-local: the mails go through `inject`. Nothing
/// when there is no key or nobody to ask.
#[allow(clippy::too_many_arguments)]
pub fn ask_moderators(
    rs: &Settings,
    list: &super::List,
    state: &Path,
    qid: &str,
    id: &str,
    sender: &str,
    reason: &str,
    post: &[u8],
    now: u64,
    inject: &mut Inject<'_>,
) -> Result<(), String> {
    let Some(key) = rs.key.as_ref() else {
        return Ok(());
    };
    let who = if list.moderators.is_empty() {
        &list.owners
    } else {
        &list.moderators
    };
    if who.is_empty() {
        return Ok(());
    }
    let env = Env {
        key,
        now,
        hostname: &rs.hostname,
        confirm_lifetime: rs.confirm_lifetime,
        confirm_limit: rs.confirm_limit,
        policy: rs.policy,
        texts_dir: Some(&rs.texts_dir),
        state_dir: state,
    };
    let named = Named(&list.address, list_lang(list));
    let out = moderation_request(&named, &env, who, id, sender, reason, post);
    for line in &out.log {
        crate::info!("{qid}: {line}");
    }
    for m in &out.mails {
        inject(&m.sender, std::slice::from_ref(&m.to), &m.bytes)?;
    }
    Ok(())
}

/// A list known by its address and language only (for notices).
struct Named<'a>(&'a str, String);

impl ListStore for Named<'_> {
    fn address(&self) -> &str {
        self.0
    }
    fn is_member(&self, _: &Member) -> bool {
        false
    }
    fn subscribe(&mut self, _: &Member) -> Result<(), String> {
        Err("not here".into())
    }
    fn unsubscribe(&mut self, _: &Member) -> Result<(), String> {
        Err("not here".into())
    }
    fn owner_approval(&self) -> bool {
        false
    }
    fn owners(&self) -> Vec<String> {
        Vec::new()
    }
    fn held(&self, _: &str) -> Option<(String, Vec<u8>)> {
        None
    }
    fn release(&mut self, _: &str) -> Result<(), String> {
        Err("not here".into())
    }
    fn discard(&mut self, _: &str) -> Result<(), String> {
        Err("not here".into())
    }
    fn lang(&self) -> String {
        self.1.clone()
    }
}

/// The language of a list's texts: Chinese when its description is.
fn list_lang(list: &super::List) -> String {
    if list
        .description
        .chars()
        .any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c))
    {
        "zh-CN".into()
    } else {
        "en".into()
    }
}

/// Counts confirmation mails per address per day: a file per address
/// (named by a hash of it) holding the day and the count.
#[derive(Debug, Clone)]
pub struct RateBook {
    dir: PathBuf,
}

impl RateBook {
    pub fn new(dir: &Path) -> RateBook {
        RateBook {
            dir: dir.to_path_buf(),
        }
    }

    /// Takes one of today's `limit` mails to `m`; false when none is left.
    /// Two deliveries racing may both take the last one: the limit is
    /// exceeded by at most the number of deliveries at once.
    pub fn take(&self, m: &Member, now: u64, limit: u32) -> bool {
        let d = ring::digest::digest(&ring::digest::SHA256, m.folded().as_bytes());
        let name: String = d.as_ref()[..16]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let path = self.dir.join(name);
        let day = now / 86400;
        let (d0, n) = std::fs::read_to_string(&path)
            .ok()
            .and_then(|t| {
                let mut it = t.split_whitespace().filter_map(|x| x.parse::<u64>().ok());
                Some((it.next()?, it.next()?))
            })
            .unwrap_or((day, 0));
        let n = if d0 == day { n } else { 0 };
        if n >= u64::from(limit) {
            return false;
        }
        let _ = std::fs::create_dir_all(&self.dir);
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        if std::fs::write(&tmp, format!("{day} {}\n", n + 1)).is_ok() {
            let _ = std::fs::rename(&tmp, &path);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lists::cookie::KEY_LEN;
    use std::collections::{BTreeMap, BTreeSet};

    const NOW: u64 = 1_796_000_000;

    #[derive(Default)]
    struct Fake {
        members: BTreeSet<String>,
        approval: bool,
        held: BTreeMap<String, (String, Vec<u8>)>,
        released: Vec<String>,
    }

    impl ListStore for Fake {
        fn address(&self) -> &str {
            "dev@example.org"
        }
        fn is_member(&self, m: &Member) -> bool {
            self.members.contains(&m.folded())
        }
        fn subscribe(&mut self, m: &Member) -> Result<(), String> {
            self.members.insert(m.folded());
            Ok(())
        }
        fn unsubscribe(&mut self, m: &Member) -> Result<(), String> {
            self.members.remove(&m.folded());
            Ok(())
        }
        fn owner_approval(&self) -> bool {
            self.approval
        }
        fn owners(&self) -> Vec<String> {
            vec!["boss@example.org".into()]
        }
        fn held(&self, id: &str) -> Option<(String, Vec<u8>)> {
            self.held.get(id).cloned()
        }
        fn release(&mut self, id: &str) -> Result<(), String> {
            self.held.remove(id).ok_or("no such post")?;
            self.released.push(id.into());
            Ok(())
        }
        fn discard(&mut self, id: &str) -> Result<(), String> {
            self.held
                .remove(id)
                .map(|_| ())
                .ok_or_else(|| "no such post".into())
        }
        fn lang(&self) -> String {
            "en".into()
        }
    }

    struct T {
        key: CookieKey,
        dir: PathBuf,
    }

    impl T {
        fn new(name: &str) -> T {
            let dir = std::env::temp_dir().join(format!("kmp-cmd-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            T {
                key: CookieKey::from_bytes(&[3u8; KEY_LEN]),
                dir,
            }
        }
        fn env(&self, now: u64) -> Env<'_> {
            Env {
                key: &self.key,
                now,
                hostname: "mx.example.org",
                confirm_lifetime: 7 * 86400,
                confirm_limit: 3,
                policy: Policy {
                    warn_days: 1,
                    remove_days: 1,
                    forget: 21 * 86400,
                },
                texts_dir: None,
                state_dir: &self.dir,
            }
        }
    }

    impl Drop for T {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    /// The confirm token in a mail's Reply-To (or return path).
    /// The request of one of the list's addresses.
    fn request_of(addr: &str) -> Request {
        let local = addr.split('@').next().unwrap();
        let (_, role) = crate::lists::address::forms(local)
            .into_iter()
            .find(|(l, _)| l == "dev")
            .unwrap();
        Request::from_role(&role, PLAIN).unwrap()
    }

    fn token_in(addr: &str) -> String {
        let local = addr.split('@').next().unwrap();
        local.strip_prefix("dev-confirm-").unwrap().to_string()
    }

    fn reply_to(o: &Outgoing) -> String {
        let m = mail_parser::MessageParser::default()
            .parse(&o.bytes)
            .unwrap();
        m.reply_to()
            .and_then(|a| a.first())
            .and_then(|a| a.address())
            .unwrap()
            .to_string()
    }

    const PLAIN: &[u8] = b"From: someone\nSubject: hi\n\nplease\n";

    #[test]
    fn addresses_are_read_into_requests() {
        use Request::*;
        assert_eq!(parse_extension("subscribe"), Some(Subscribe(None)));
        assert_eq!(
            parse_extension("Subscribe-bob=x.org"),
            Some(Subscribe(Some("bob=x.org".into())))
        );
        assert_eq!(
            parse_extension("unsubscribe+a=b=x.org"),
            Some(Unsubscribe(Some("a=b=x.org".into())))
        );
        assert_eq!(parse_extension("help"), Some(Help));
        assert_eq!(parse_extension("help-x"), None);
        assert_eq!(
            parse_extension("confirm-s.abc"),
            Some(Confirm("s.abc".into()))
        );
        assert_eq!(parse_extension("confirm"), None);
        assert_eq!(
            parse_extension("bounce-bob+tag=x.org"),
            Some(Bounce("bob+tag=x.org".into()))
        );
        assert_eq!(parse_extension("owner"), None);
    }

    #[test]
    fn the_roles_of_the_list_address_parser_map_to_requests() {
        use crate::lists::Role;
        let sub = b"Subject: subscribe\n\n";
        let other = b"Subject: what is this\n\n";
        assert_eq!(Request::from_role(&Role::Post, PLAIN), None);
        assert_eq!(Request::from_role(&Role::Owner, PLAIN), None);
        assert_eq!(
            Request::from_role(&Role::Request, sub),
            Some(Request::Subscribe(None))
        );
        assert_eq!(
            Request::from_role(&Role::Request, other),
            Some(Request::Help)
        );
        assert_eq!(
            Request::from_role(&Role::Approve("a.x".into()), PLAIN),
            Some(Request::Moderate("a.x".into(), true))
        );
        assert_eq!(
            Request::from_role(&Role::SubscribeAddress("carol=x.org".into()), PLAIN),
            Some(Request::Subscribe(Some("carol=x.org".into())))
        );
        assert_eq!(
            Request::from_role(&Role::UnsubscribeAddress("carol=x.org".into()), PLAIN),
            Some(Request::Unsubscribe(Some("carol=x.org".into())))
        );
        assert_eq!(
            Request::from_role(&Role::Bounce("b=x.org".into()), PLAIN),
            Some(Request::Bounce("b=x.org".into()))
        );
    }

    #[test]
    fn robots_and_lists_are_never_answered() {
        assert_eq!(quiet(None, PLAIN), Some(Quiet::NullSender));
        assert_eq!(
            quiet(Some("MAILER-DAEMON@x.org"), PLAIN),
            Some(Quiet::Robot)
        );
        assert_eq!(
            quiet(Some("other-request@x.org"), PLAIN),
            Some(Quiet::Robot)
        );
        assert_eq!(quiet(Some("owner-l@x.org"), PLAIN), Some(Quiet::Robot));
        assert_eq!(
            quiet(Some("l-bounce-a=b.org@x.org"), PLAIN),
            Some(Quiet::Robot)
        );
        assert_eq!(
            quiet(Some("a@x.org"), b"Auto-Submitted: auto-replied\n\nx"),
            Some(Quiet::AutoSubmitted)
        );
        assert_eq!(quiet(Some("a@x.org"), b"Auto-Submitted: no\n\nx"), None);
        assert_eq!(
            quiet(Some("a@x.org"), b"Precedence: bulk\n\nx"),
            Some(Quiet::Precedence)
        );
        assert_eq!(
            quiet(
                Some("a@x.org"),
                b"Subject: x\nList-Id:\n <other.x.org>\n\nx"
            ),
            Some(Quiet::ListMail)
        );
        // Header-like lines in the body do not count.
        assert_eq!(
            quiet(Some("a@x.org"), b"Subject: x\n\nList-Id: <a.b>\n"),
            None
        );
        assert_eq!(quiet(Some("a@x.org"), PLAIN), None);
    }

    #[test]
    fn subscription_by_mail_takes_a_confirmation_round_trip() {
        let t = T::new("sub");
        let mut l = Fake::default();
        let o = handle(
            &Request::Subscribe(None),
            Some("Alice@Far.example"),
            PLAIN,
            &mut l,
            &t.env(NOW),
        );
        assert!(l.members.is_empty());
        assert_eq!(o.mails.len(), 1);
        assert_eq!(o.mails[0].to, "Alice@far.example");
        assert_eq!(
            o.mails[0].sender, "",
            "requests go out with the null return path"
        );
        let text = String::from_utf8_lossy(&o.mails[0].bytes);
        assert!(text.contains("Auto-Submitted: auto-replied"));
        let confirm = reply_to(&o.mails[0]);
        assert!(text.contains(&confirm), "the address is in the body too");
        assert!(confirm.len() - "@example.org".len() <= 64, "{confirm}");
        // The reply: subscribed, welcomed.
        let req = parse_extension(&confirm.split('@').next().unwrap()["dev-".len()..]).unwrap();
        let o = handle(
            &req,
            Some("alice@far.example"),
            b"Subject: Re: Confirm\n\nyes\n",
            &mut l,
            &t.env(NOW + 60),
        );
        assert!(l.members.contains("alice@far.example"), "{:?}", o.log);
        assert_eq!(o.mails.len(), 1);
        assert!(String::from_utf8_lossy(&o.mails[0].bytes).contains("Welcome"));
        assert!(o.log[0].contains("subscribed (confirmed)"), "{:?}", o.log);
        // Confirming again changes nothing and sends nothing.
        let o = handle(
            &req,
            Some("alice@far.example"),
            PLAIN,
            &mut l,
            &t.env(NOW + 120),
        );
        assert!(o.mails.is_empty());
    }

    #[test]
    fn forged_expired_and_auto_replied_confirmations_change_nothing() {
        let t = T::new("forged");
        let mut l = Fake::default();
        let o = handle(
            &Request::Subscribe(None),
            Some("alice@far.example"),
            PLAIN,
            &mut l,
            &t.env(NOW),
        );
        let tok = token_in(&reply_to(&o.mails[0]));
        // Expired.
        let o = handle(
            &Request::Confirm(tok.clone()),
            Some("alice@far.example"),
            PLAIN,
            &mut l,
            &t.env(NOW + 8 * 86400),
        );
        assert!(l.members.is_empty() && o.mails.is_empty());
        assert!(o.log[0].contains("expired"), "{:?}", o.log);
        // Forged: another subject under the same MAC.
        let forged = tok.replace("alice=", "mallory=");
        let o = handle(
            &Request::Confirm(forged),
            Some("mallory@far.example"),
            PLAIN,
            &mut l,
            &t.env(NOW),
        );
        assert!(l.members.is_empty() && o.mails.is_empty());
        assert!(o.log[0].contains("forged"), "{:?}", o.log);
        // A vacation reply to the request.
        let o = handle(
            &Request::Confirm(tok),
            Some("alice@far.example"),
            b"Auto-Submitted: auto-replied\nSubject: away\n\nx\n",
            &mut l,
            &t.env(NOW),
        );
        assert!(l.members.is_empty() && o.mails.is_empty());
        assert!(o.log[0].contains("ignored"), "{:?}", o.log);
    }

    #[test]
    fn someone_elses_address_gets_the_request_not_the_asker() {
        let t = T::new("other");
        let mut l = Fake::default();
        let o = handle(
            &Request::Subscribe(Some("bob=far.example".into())),
            Some("mallory@evil.example"),
            PLAIN,
            &mut l,
            &t.env(NOW),
        );
        assert_eq!(o.mails.len(), 1);
        assert_eq!(o.mails[0].to, "bob@far.example");
        // Tricks are refused with a reason.
        let o = handle(
            &Request::Subscribe(Some("bob%evil.example=far.example".into())),
            Some("m@evil.example"),
            PLAIN,
            &mut l,
            &t.env(NOW),
        );
        assert!(o.mails.is_empty());
        assert!(o.log[0].contains("routed"), "{:?}", o.log);
    }

    #[test]
    fn a_flood_for_one_address_sends_at_most_the_limit() {
        let t = T::new("flood");
        let mut l = Fake::default();
        let mut sent = 0;
        for i in 0..10 {
            let o = handle(
                &Request::Subscribe(None),
                Some("alice@far.example"),
                PLAIN,
                &mut l,
                &t.env(NOW + i),
            );
            sent += o.mails.len();
        }
        assert_eq!(sent, 3);
        // Another address is not held back; the next day the count starts again.
        let o = handle(
            &Request::Subscribe(None),
            Some("bob@far.example"),
            PLAIN,
            &mut l,
            &t.env(NOW),
        );
        assert_eq!(o.mails.len(), 1);
        let o = handle(
            &Request::Subscribe(None),
            Some("alice@far.example"),
            PLAIN,
            &mut l,
            &t.env(NOW + 86400),
        );
        assert_eq!(o.mails.len(), 1);
    }

    #[test]
    fn unsubscription_and_one_click_say_goodbye() {
        let t = T::new("unsub");
        let mut l = Fake::default();
        l.members.insert("alice@far.example".into());
        let o = handle(
            &Request::Unsubscribe(None),
            Some("alice@far.example"),
            PLAIN,
            &mut l,
            &t.env(NOW),
        );
        let req = Request::Confirm(token_in(&reply_to(&o.mails[0])));
        let o = handle(&req, Some("alice@far.example"), PLAIN, &mut l, &t.env(NOW));
        assert!(l.members.is_empty());
        assert!(String::from_utf8_lossy(&o.mails[0].bytes).contains("Goodbye"));
        // One click: the link's token, passed on with the null sender.
        l.members.insert("bob@far.example".into());
        let link = unsubscribe_link(
            &t.key,
            "https://mail.example.org/webmail/",
            "dev@example.org",
            "bob@far.example",
            NOW,
            90 * 86400,
        );
        assert!(
            link.starts_with(
                "https://mail.example.org/webmail/unsubscribe?list=dev%40example.org&c=o."
            ),
            "{link}"
        );
        let tok = link
            .split("&c=")
            .nth(1)
            .unwrap()
            .replace("%3D", "=")
            .replace("%2B", "+");
        let o = handle(
            &Request::Confirm(tok),
            None,
            b"Subject: unsubscribe\n\n",
            &mut l,
            &t.env(NOW + 30 * 86400),
        );
        assert!(l.members.is_empty(), "{:?}", o.log);
        assert!(o.log[0].contains("one-click"), "{:?}", o.log);
    }

    #[test]
    fn owner_approval_takes_a_second_cookie() {
        let t = T::new("owner");
        let mut l = Fake {
            approval: true,
            ..Fake::default()
        };
        let o = handle(
            &Request::Subscribe(None),
            Some("alice@far.example"),
            PLAIN,
            &mut l,
            &t.env(NOW),
        );
        let req = Request::Confirm(token_in(&reply_to(&o.mails[0])));
        let o = handle(&req, Some("alice@far.example"), PLAIN, &mut l, &t.env(NOW));
        assert!(l.members.is_empty());
        assert_eq!(o.mails.len(), 2);
        assert_eq!(o.mails[0].to, "boss@example.org");
        assert_eq!(o.mails[1].to, "alice@far.example");
        let permit = Request::Confirm(token_in(&reply_to(&o.mails[0])));
        assert!(matches!(&permit, Request::Confirm(t) if t.starts_with("p.")));
        let o = handle(
            &permit,
            Some("boss@example.org"),
            PLAIN,
            &mut l,
            &t.env(NOW + 3600),
        );
        assert!(l.members.contains("alice@far.example"));
        assert!(o.log[0].contains("approved by the owner"));
    }

    #[test]
    fn moderation_by_reply() {
        let t = T::new("mod");
        let mut l = Fake::default();
        let post = b"From: carol@far.example\nSubject: =?UTF-8?B?5LyR5oGv?=\n\nhello\n".to_vec();
        l.held
            .insert("17".into(), ("carol@far.example".into(), post.clone()));
        l.held
            .insert("18".into(), ("carol@far.example".into(), post.clone()));
        let o = moderation_request(
            &l,
            &t.env(NOW),
            &["mod@example.org".into()],
            "17",
            "carol@far.example",
            "not a member",
            &post,
        );
        assert_eq!(o.mails.len(), 1);
        let text = String::from_utf8_lossy(&o.mails[0].bytes).to_string();
        let approve = reply_to(&o.mails[0]);
        let reject = text
            .lines()
            .map(str::trim)
            .find(|l| l.starts_with("dev-reject-r."))
            .unwrap()
            .to_string();
        assert!(approve.starts_with("dev-approve-a."), "{approve}");
        // The approve cookie at the confirm address does nothing.
        let o = handle(
            &Request::Confirm(
                approve.split('@').next().unwrap()["dev-approve-".len()..].to_string(),
            ),
            Some("mod@example.org"),
            PLAIN,
            &mut l,
            &t.env(NOW),
        );
        assert!(l.released.is_empty());
        assert!(o.log[0].contains("wrong address"), "{:?}", o.log);
        // Approve 17.
        let o = handle(
            &request_of(&approve),
            Some("mod@example.org"),
            PLAIN,
            &mut l,
            &t.env(NOW),
        );
        assert_eq!(l.released, vec!["17".to_string()], "{:?}", o.log);
        // The reject cookie of 17 cannot reject 18.
        let r18 = reject.replace(".17@", ".18@");
        handle(
            &request_of(&r18),
            Some("mod@example.org"),
            PLAIN,
            &mut l,
            &t.env(NOW),
        );
        assert!(l.held.contains_key("18"));
        // Reject 18 with its own cookie and a reason.
        let o = moderation_request(
            &l,
            &t.env(NOW),
            &["mod@example.org".into()],
            "18",
            "carol@far.example",
            "moderated",
            &post,
        );
        let text = String::from_utf8_lossy(&o.mails[0].bytes).to_string();
        let reject = text
            .lines()
            .map(str::trim)
            .find(|l| l.starts_with("dev-reject-r."))
            .unwrap()
            .to_string();
        let o = handle(
            &request_of(&reject),
            Some("mod@example.org"),
            b"Subject: no\n\nOff topic, sorry.\n\n> quoted\n",
            &mut l,
            &t.env(NOW),
        );
        assert!(l.held.is_empty());
        assert_eq!(o.mails.len(), 1);
        assert_eq!(o.mails[0].to, "carol@far.example");
        let m = mail_parser::MessageParser::default()
            .parse(&o.mails[0].bytes)
            .unwrap();
        assert!(m.subject().unwrap().contains("休息"), "{:?}", m.subject());
        assert!(m.body_text(0).unwrap().contains("Off topic, sorry."));
    }

    #[test]
    fn the_list_state_serves_as_the_store() {
        let t = T::new("state");
        let state = t.dir.join("state");
        let store = crate::lists::store::Store::open(&state).unwrap();
        let mut rec: crate::lists::List =
            serde_json::from_str(r#"{"address":"dev@example.org","owners":["boss@example.org"]}"#)
                .unwrap();
        let meta = crate::lists::held::Held {
            id: "Q1.1".into(),
            sender: "carol@far.example".into(),
            from: "carol@far.example".into(),
            subject: "hi".into(),
            reason: "moderated".into(),
            size: 3,
            received: NOW,
        };
        crate::lists::held::hold(&state, &meta, b"Subject: hi\n\nx\n").unwrap();
        let mut sent = Vec::new();
        let mut send_on = |from: &str, data: Vec<u8>| {
            sent.push((from.to_string(), data));
            Ok(())
        };
        rec.subscribe_approval = false;
        let mut l = StateList {
            list: &rec,
            store: &store,
            state: &state,
            lang: "en".into(),
            now: NOW,
            send_on: &mut send_on,
        };
        let o = handle(
            &Request::Subscribe(None),
            Some("Alice@far.example"),
            PLAIN,
            &mut l,
            &t.env(NOW),
        );
        let req = Request::Confirm(token_in(&reply_to(&o.mails[0])));
        handle(&req, Some("alice@far.example"), PLAIN, &mut l, &t.env(NOW));
        assert!(l.is_member(&verp::member("alice@far.example").unwrap()));
        assert_eq!(l.held("Q1.1").unwrap().0, "carol@far.example");
        l.release("Q1.1").unwrap();
        assert!(l.held("Q1.1").is_none());
        drop(l);
        assert_eq!(sent.len(), 1);
        assert!(
            String::from_utf8_lossy(&sent[0].1).starts_with(crate::lists::held::APPROVED_HEADER)
        );
        crate::lists::store::Store::close(&state);
    }

    #[test]
    fn a_bouncing_member_is_warned_then_removed_when_the_probe_bounces() {
        let t = T::new("bounce");
        let mut l = Fake::default();
        l.members.insert("dave@far.example".into());
        let bounce = b"From: MAILER-DAEMON@far.example\nSubject: failure notice\n\nSorry, no mailbox here by that name.\n";
        // Not a member: nothing.
        let o = handle(
            &Request::Bounce("eve=far.example".into()),
            None,
            bounce,
            &mut l,
            &t.env(NOW),
        );
        assert!(o.mails.is_empty() && o.log[0].contains("not a member"));
        // warn_days = 1: the first bounce sends the probe.
        let o = handle(
            &Request::Bounce("dave=far.example".into()),
            None,
            bounce,
            &mut l,
            &t.env(NOW),
        );
        assert_eq!(o.mails.len(), 1, "{:?}", o.log);
        assert_eq!(o.mails[0].to, "dave@far.example");
        assert!(
            o.mails[0].sender.starts_with("dev-confirm-w."),
            "{}",
            o.mails[0].sender
        );
        assert!(o.log[0].contains("warning probe sent"), "{:?}", o.log);
        // A vacation reply to the probe proves nothing.
        let tok = token_in(&o.mails[0].sender);
        let o = handle(
            &Request::Confirm(tok.clone()),
            Some("dave@far.example"),
            b"Auto-Submitted: auto-replied\n\nAway\n",
            &mut l,
            &t.env(NOW),
        );
        assert!(l.members.contains("dave@far.example"), "{:?}", o.log);
        // The probe bounces: removed, no goodbye.
        let o = handle(
            &Request::Confirm(tok),
            None,
            bounce,
            &mut l,
            &t.env(NOW + 60),
        );
        assert!(l.members.is_empty(), "{:?}", o.log);
        assert!(o.mails.is_empty());
        assert!(o.log[0].contains("probe bounced"), "{:?}", o.log);
    }
}
