//! APPEND (RFC 3501 6.3.11) with UIDPLUS's APPENDUID (RFC 4315),
//! MULTIAPPEND (RFC 3502) and CATENATE (RFC 4469).
//!
//! A literal over 64 KiB never reaches the parser: the server streams it
//! into a staging file as it arrives and leaves it in `Session::staged`,
//! found here by where the literal starts in the command. A message put
//! together by CATENATE is kept in memory up to 64 KiB and in a staging
//! file past that.
//!
//! All or none (RFC 3502 3: "If the server fails to append any message,
//! none of the messages are appended"): every message is first put
//! together and every URL resolved, so a bad URL, a missing folder or an
//! empty message stores nothing; then the messages are appended one by
//! one, and if one fails (quota, disk) those already stored are expunged
//! again before the NO. Another session may see them in between; RFC 3502
//! asks for the outcome, and Maildir has no transactions to hide it.

use crate::proto::imap::response::{Code, Response, Status};
use std::fs::File;
use std::io::{Read, Seek, Write};

use super::{mailbox_name, store_error, uid_set};
use crate::imapd::session::{Action, Out, Session, Staged, State};
use crate::imapd::store::{MailStore, MsgFlags, StoreError};
use crate::imapd::url::{self, Accounts, Asker, Refused};
use crate::proto::imap::url as imap_url;
use crate::proto::imap::{AppendContent, AppendMessage, CatenatePart, Flag};

/// A message put together in memory goes to a staging file past this.
const SPILL: usize = 64 * 1024;

/// A message ready to be stored.
enum Body {
    Mem(Vec<u8>),
    File(File, u64),
}

impl Body {
    fn len(&self) -> u64 {
        match self {
            Body::Mem(v) => v.len() as u64,
            Body::File(_, n) => *n,
        }
    }
}

/// Why a message could not be put together: the NO.
enum Failed {
    BadUrl(Vec<u8>, &'static str),
    TooBig,
    Staged(String),
    Store(StoreError),
}

pub fn append(
    s: &mut Session,
    tag: &str,
    arg: &[u8],
    messages: Vec<AppendMessage>,
    out: &mut Out,
) -> Action {
    let mut staged = std::mem::take(&mut s.staged);
    let Some(name) = mailbox_name(s, tag, arg, out) else {
        return Action::None;
    };
    let max = s.settings.limits.max_append;
    let accounts = s.accounts.clone();
    let (auth, view) = match &mut s.state {
        State::Authenticated(a) => (a, None),
        State::Selected(a, v) => (a, Some(v)),
        _ => return Action::None,
    };
    // RFC 4469 5: a missing folder is TRYCREATE even when a URL is bad.
    match auth.store.exists(&name) {
        Ok(true) => {}
        Ok(false) => {
            out.send(Response::no(tag, Some(Code::TryCreate), "No such mailbox"));
            return Action::None;
        }
        Err(e) => {
            store_error(out, tag, &e);
            return Action::None;
        }
    }
    let mut ready = Vec::with_capacity(messages.len());
    for m in messages {
        let body = match m.content {
            AppendContent::Literal(d) => match take_staged(&mut staged, d.at) {
                Some(Ok((file, size))) => Ok(Body::File(file, size)),
                Some(Err(why)) => Err(Failed::Staged(why)),
                None => Ok(Body::Mem(d.bytes)),
            },
            AppendContent::Catenate(parts) => catenate(
                &auth.user,
                auth.store.as_mut(),
                parts,
                &mut staged,
                max,
                accounts.as_deref(),
            ),
        };
        let body = match body {
            Ok(b) => b,
            Err(f) => {
                failed(out, tag, f);
                return Action::None;
            }
        };
        if body.len() == 0 {
            out.send(Response::no(tag, Some(Code::Cannot), "Empty message"));
            return Action::None;
        }
        ready.push((to_msg_flags(&m.flags), m.date.map(|d| d.timestamp()), body));
    }
    let mut uids = Vec::with_capacity(ready.len());
    let mut validity = 0;
    for (flags, date, body) in ready {
        let r = match body {
            Body::Mem(v) => auth.store.append(&name, &v, &flags, date),
            Body::File(mut f, size) => auth.store.append_file(&name, &mut f, size, &flags, date),
        };
        match r {
            Ok((v, uid)) => {
                validity = v;
                uids.push(uid);
            }
            Err(e) => {
                roll_back(auth.store.as_mut(), &name, &uids);
                match e {
                    StoreError::NoSuchFolder => {
                        out.send(Response::no(tag, Some(Code::TryCreate), "No such mailbox"))
                    }
                    e => store_error(out, tag, &e),
                }
                return Action::None;
            }
        }
    }
    if let Some(v) = view {
        if v.name == name {
            v.sync(out, true, s.enabled);
        }
    }
    let uids = uid_set(&uids);
    out.send(Response::tagged(
        tag,
        Status::Ok,
        Some(Code::AppendUid {
            validity,
            uids: &uids,
        }),
        "APPEND completed",
    ));
    Action::None
}

/// The staged file of the literal that starts at `at`, if it was staged.
fn take_staged(staged: &mut Staged, at: usize) -> Option<Result<(File, u64), String>> {
    let i = staged.iter().position(|(o, _)| *o == at)?;
    Some(staged.swap_remove(i).1)
}

/// Expunges what an APPEND stored before one of its messages failed.
fn roll_back(store: &mut dyn MailStore, name: &str, uids: &[u32]) {
    if uids.is_empty() {
        return;
    }
    let r = store.open(name).and_then(|mut f| {
        f.state(false)?;
        f.expunge(uids)
    });
    if let Err(e) = r {
        crate::warn!("imap APPEND roll-back in {name} of {uids:?} failed: {e}");
    }
}

fn failed(out: &mut Out, tag: &str, f: Failed) {
    match f {
        Failed::BadUrl(u, why) => {
            let text = format!("Bad URL: {why}");
            out.send(Response::no(tag, Some(Code::BadUrl(&u)), &text));
        }
        Failed::TooBig => out.send(Response::no(tag, Some(Code::TooBig), "Message too large")),
        Failed::Staged(why) => out.send(Response::no(tag, Some(Code::Unavailable), &why)),
        Failed::Store(e) => store_error(out, tag, &e),
    }
}

/// Puts a CATENATE message together (RFC 4469 5): text parts as sent,
/// URL parts (RFC 5092) resolved in the user's own mailboxes, or in any
/// mailbox a URLAUTH token opens.
fn catenate(
    user: &str,
    store: &mut dyn MailStore,
    parts: Vec<CatenatePart>,
    staged: &mut Staged,
    max: u64,
    accounts: Option<&dyn Accounts>,
) -> Result<Body, Failed> {
    let mut c = Composer {
        mem: Vec::new(),
        file: None,
        size: 0,
        max,
    };
    for p in parts {
        match p {
            CatenatePart::Text(d) => match take_staged(staged, d.at) {
                Some(Ok((mut f, size))) => c.push_file(store, &mut f, size)?,
                Some(Err(why)) => return Err(Failed::Staged(why)),
                None => c.push(store, &d.bytes)?,
            },
            CatenatePart::Url(text) => {
                let data = resolve(user, store, &text, accounts)?;
                c.push(store, &data)?;
            }
        }
    }
    c.finish()
}

/// The content of a CATENATE URL.
fn resolve(
    user: &str,
    store: &mut dyn MailStore,
    text: &[u8],
    accounts: Option<&dyn Accounts>,
) -> Result<Vec<u8>, Failed> {
    let bad = |why| Failed::BadUrl(text.to_vec(), why);
    let u = imap_url::parse(text).map_err(|e| bad(e.0))?;
    let (u, wire) = if u.urlauth.is_some() {
        let asker = Asker::User { name: user, store };
        url::authorized(text, asker, accounts, now()).map_err(|r| match r {
            Refused::Bad(why) => bad(why),
            Refused::Temporary(m) => Failed::Store(StoreError::Temporary(m)),
        })?
    } else {
        // Without a token, only the user's own mailboxes.
        if u.absolute && !u.owner().is_some_and(|o| o.eq_ignore_ascii_case(user)) {
            return Err(bad("not the user's own mailbox"));
        }
        let wire = url::message(store, &u).map_err(|r| match r {
            Refused::Bad(why) => bad(why),
            Refused::Temporary(m) => Failed::Store(StoreError::Temporary(m)),
        })?;
        (u, wire)
    };
    url::content(&u, &wire).ok_or_else(|| bad("no such section"))
}

/// Seconds since the epoch.
fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// A message being put together: in memory, then in a staging file.
struct Composer {
    mem: Vec<u8>,
    file: Option<File>,
    size: u64,
    max: u64,
}

impl Composer {
    fn grow(&mut self, store: &mut dyn MailStore, n: u64) -> Result<(), Failed> {
        self.size = self.size.saturating_add(n);
        if self.size > self.max {
            return Err(Failed::TooBig);
        }
        if self.file.is_none() && self.size as usize > SPILL {
            let mut f = store.stage().map_err(Failed::Store)?;
            f.write_all(&self.mem).map_err(io)?;
            self.mem = Vec::new();
            self.file = Some(f);
        }
        Ok(())
    }

    fn push(&mut self, store: &mut dyn MailStore, data: &[u8]) -> Result<(), Failed> {
        self.grow(store, data.len() as u64)?;
        match &mut self.file {
            Some(f) => f.write_all(data).map_err(io),
            None => {
                self.mem.extend_from_slice(data);
                Ok(())
            }
        }
    }

    fn push_file(
        &mut self,
        store: &mut dyn MailStore,
        src: &mut File,
        size: u64,
    ) -> Result<(), Failed> {
        src.rewind().map_err(io)?;
        let mut src = src.take(size);
        let mut buf = vec![0u8; SPILL];
        loop {
            let n = match src.read(&mut buf) {
                Ok(0) => return Ok(()),
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(io(e)),
            };
            self.push(store, &buf[..n])?;
        }
    }

    fn finish(self) -> Result<Body, Failed> {
        match self.file {
            Some(mut f) => {
                f.flush().map_err(io)?;
                Ok(Body::File(f, self.size))
            }
            None => Ok(Body::Mem(self.mem)),
        }
    }
}

fn io(e: std::io::Error) -> Failed {
    Failed::Store(StoreError::Temporary(format!("staging file: {e}")))
}

/// Parser flags to stored flags (\Recent is not stored).
pub fn to_msg_flags(flags: &[Flag]) -> MsgFlags {
    use crate::imapd::store::SysFlags as S;
    let mut m = MsgFlags::default();
    for f in flags {
        match f {
            Flag::Seen => m.sys.0 |= S::SEEN,
            Flag::Answered => m.sys.0 |= S::ANSWERED,
            Flag::Flagged => m.sys.0 |= S::FLAGGED,
            Flag::Deleted => m.sys.0 |= S::DELETED,
            Flag::Draft => m.sys.0 |= S::DRAFT,
            Flag::Keyword(k) => {
                m.keywords.insert(k.clone());
            }
            Flag::Recent | Flag::Extension(_) => {}
        }
    }
    m
}
