//! kmp-local's second socket, `RUN/lists.sock`: kmp-admind's requests about
//! a list's state ([`crate::ipc::listreq`]). kmp-local owns that state (it
//! runs as the delivery user), so it reads and changes it here with the
//! same functions its list delivery uses: the member store, the held posts,
//! and for a moderation the moderation-by-reply path itself
//! ([`crate::lists::commands::serve`] with a cookie minted here), so an
//! approval from the web is the same event as one by mail, and a rejection
//! with a reason sends the sender the same notice.
//!
//! Who may connect: the socket is 0660 in the group of kmp-admind's user;
//! a peer whose uid is neither root, ours nor kmp-admind's user is refused
//! as well (SO_PEERCRED). kmp-admind has authorised the caller; what it
//! sends is still checked for form (the list's name, ids, addresses).

use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::config::Config;
use crate::ipc::frame::{self, FrameError};
use crate::ipc::listreq::{
    ErrorKind, Preview, Reply, Request, Versioned, MAX_PAGE, MAX_PREVIEW, VERSION,
};
use crate::lists::cookie::Action;
use crate::lists::distribute::Settings;
use crate::lists::store::{Member, Store};
use crate::lists::{held, List, Role};

/// What the request server knows, read once at start.
pub struct ListReq {
    pub settings: Settings,
    /// Uids besides root and our own that may connect (kmp-admind's user).
    pub allowed: Vec<u32>,
}

impl ListReq {
    pub fn from_config(cfg: &Config) -> ListReq {
        let allowed = match cfg.str("privileges.admind") {
            "" => Vec::new(),
            name => nix::unistd::User::from_name(name)
                .ok()
                .flatten()
                .map(|u| vec![u.uid.as_raw()])
                .unwrap_or_default(),
        };
        ListReq {
            settings: Settings::from_config(cfg),
            allowed,
        }
    }
}

/// Binds `RUN/lists.sock` (mode 0660; a stale one is replaced). Started
/// as root, the caller hands it to the group of `privileges.admind`; not
/// as root (under systemd), the socket is given to that group if kmp-local
/// is a member, else to the daemons' group (`kmpromail`); either way the
/// peer's uid is checked on every connection.
pub fn bind(path: &Path, admind_user: &str) -> std::io::Result<UnixListener> {
    let l = super::server::bind(path)?;
    if !crate::sys::privs::is_root() {
        let group_of = |name: &str| {
            nix::unistd::Group::from_name(name)
                .ok()
                .flatten()
                .map(|g| g.gid)
        };
        for g in [admind_user, crate::daemon::DAEMON_GROUP] {
            if let Some(gid) = group_of(g).filter(|_| !g.is_empty()) {
                if nix::unistd::chown(path, None, Some(gid)).is_ok() {
                    break;
                }
            }
        }
    }
    Ok(l)
}

/// Serves requests on `listener` in a thread of its own, each connection in
/// one more.
pub fn spawn(listener: UnixListener, req: ListReq) -> std::io::Result<()> {
    let req = Arc::new(req);
    std::thread::Builder::new()
        .name("kmp-local-lists".into())
        .spawn(move || {
            for conn in listener.incoming() {
                match conn {
                    Ok(s) => {
                        let req = req.clone();
                        let _ = std::thread::Builder::new()
                            .name("kmp-local-listreq".into())
                            .spawn(move || connection(s, &req));
                    }
                    Err(e) => {
                        crate::warn!("accept on the lists socket: {e}");
                        std::thread::sleep(std::time::Duration::from_millis(100));
                    }
                }
            }
        })
        .map(|_| ())
}

fn connection(mut s: UnixStream, rq: &ListReq) {
    let _ = s.set_read_timeout(Some(std::time::Duration::from_secs(60)));
    let uid = nix::sys::socket::getsockopt(&s, nix::sys::socket::sockopt::PeerCredentials)
        .map(|c| c.uid())
        .ok();
    let me = nix::unistd::geteuid().as_raw();
    let ok = matches!(uid, Some(u) if u == 0 || u == me || rq.allowed.contains(&u));
    loop {
        let v: Versioned = match frame::read(&mut s) {
            Ok(v) => v,
            Err(FrameError::Closed) => return,
            Err(e) => {
                let _ = frame::write(&mut s, &error(ErrorKind::BadRequest, e.to_string()));
                return;
            }
        };
        let reply = if !ok {
            crate::warn!("lists socket: uid {uid:?} refused");
            error(ErrorKind::Denied, "permission denied".into())
        } else if v.v != VERSION {
            error(
                ErrorKind::BadRequest,
                format!("protocol version {} not spoken (this is {VERSION})", v.v),
            )
        } else {
            handle(&rq.settings, &v.list, &v.by, v.req, crate::userdb::now())
        };
        if frame::write(&mut s, &reply).is_err() {
            return;
        }
    }
}

fn error(kind: ErrorKind, message: String) -> Reply {
    Reply::Error { kind, message }
}

/// The state directory of `list`, if its name is one a list can have.
fn state_of(s: &Settings, list: &List) -> Result<PathBuf, Reply> {
    let local = list.local();
    let bad = crate::userdb::Address::parse(&list.address).is_err()
        || local.is_empty()
        || local.starts_with('.')
        || local.contains(['/', '\0'])
        || list.domain().contains(['/', '\0'])
        || list.domain().starts_with('.');
    if bad {
        return Err(error(
            ErrorKind::BadRequest,
            format!("{:?} is not a list address", list.address),
        ));
    }
    Ok(list.state_dir(&s.mail_root))
}

/// Performs one request about `list` for `by`.
pub fn handle(s: &Settings, list: &List, by: &str, req: Request, now: u64) -> Reply {
    let state = match state_of(s, list) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let addr = &list.address;
    let temp = |e: String| error(ErrorKind::Temporary, e);
    if let Request::Remove = req {
        Store::close(&state);
        return match std::fs::remove_dir_all(&state) {
            Ok(()) => {
                crate::info!("lists: list={addr} state removed by={by}");
                Reply::Done {
                    text: format!("removed {}", state.display()),
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Reply::Done {
                text: "no state".into(),
            },
            Err(e) => temp(format!("{}: {e}", state.display())),
        };
    }
    let store = match Store::open(&state) {
        Ok(st) => st,
        Err(e) => return temp(e.to_string()),
    };
    match req {
        Request::Remove => Reply::Done {
            text: String::new(),
        },
        Request::Members { offset, limit } => match store.members() {
            Ok(all) => {
                let total = all.len() as u64;
                let members = all
                    .into_iter()
                    .skip(usize::try_from(offset).unwrap_or(usize::MAX))
                    .take(limit.min(MAX_PAGE) as usize)
                    .collect();
                Reply::Members { total, members }
            }
            Err(e) => temp(e.to_string()),
        },
        Request::Subscribe { addresses, digest } => {
            let (mut added, mut already) = (Vec::new(), Vec::new());
            for a in addresses {
                let Ok(a) = crate::lists::address::check_member(&a) else {
                    return error(ErrorKind::BadRequest, format!("{a:?} is no member address"));
                };
                let mut m = Member::new(&a.to_string(), now);
                m.digest = digest && list.digest.enabled;
                match store.subscribe(&m) {
                    Ok(true) => {
                        crate::info!("lists: list={addr} <{a}> subscribed by={by}");
                        added.push(m.address)
                    }
                    Ok(false) => already.push(m.address),
                    Err(e) => return temp(e.to_string()),
                }
            }
            Reply::Subscribed { added, already }
        }
        Request::Unsubscribe { address } => match store.unsubscribe(&address) {
            Ok(true) => {
                crate::info!(
                    "lists: list={addr} <{}> unsubscribed by={by}",
                    address.trim()
                );
                Reply::Done {
                    text: format!("unsubscribed {}", address.trim()),
                }
            }
            Ok(false) => error(
                ErrorKind::NotFound,
                format!("{} is not a member of {addr}", address.trim()),
            ),
            Err(e) => temp(e.to_string()),
        },
        Request::SetMember {
            address,
            digest,
            nomail,
        } => {
            if digest == Some(true) && !list.digest.enabled {
                return error(
                    ErrorKind::BadRequest,
                    format!("{addr} sends no digests (its digest option is off)"),
                );
            }
            match store.update(&address, |m| {
                if let Some(d) = digest {
                    m.digest = d;
                }
                if let Some(n) = nomail {
                    m.nomail = n;
                }
            }) {
                Ok(Some(member)) => {
                    crate::info!(
                        "lists: list={addr} <{}> digest={} nomail={} by={by}",
                        member.address,
                        member.digest,
                        member.nomail
                    );
                    Reply::Member { member }
                }
                Ok(None) => error(
                    ErrorKind::NotFound,
                    format!("{} is not a member of {addr}", address.trim()),
                ),
                Err(e) => temp(e.to_string()),
            }
        }
        Request::Held => match held::list(&state) {
            Ok(posts) => Reply::Held { posts },
            Err(e) => temp(e.to_string()),
        },
        Request::HeldShow { id } => match held::get(&state, &id) {
            Ok((meta, data)) => Reply::Preview {
                post: Box::new(preview(meta, &data)),
            },
            Err(e) => held_error(e),
        },
        Request::Approve { id } => moderate(s, list, &state, by, &id, None, now),
        Request::Reject { id, reason } => moderate(s, list, &state, by, &id, Some(&reason), now),
    }
}

fn held_error(e: held::HeldError) -> Reply {
    match e {
        held::HeldError::BadId(_) => error(ErrorKind::BadRequest, e.to_string()),
        held::HeldError::NotFound(_) => error(ErrorKind::NotFound, e.to_string()),
        held::HeldError::Io(..) => error(ErrorKind::Temporary, e.to_string()),
    }
}

/// Approves (`reject` None) or rejects a held post, as a moderator's reply
/// by mail would: a cookie minted here for the action, handed to the
/// request path with a message whose first line is the reason.
fn moderate(
    s: &Settings,
    list: &List,
    state: &Path,
    by: &str,
    id: &str,
    reject: Option<&str>,
    now: u64,
) -> Reply {
    if !held::valid_id(id) {
        return error(
            ErrorKind::BadRequest,
            format!("{id:?} is not a held post id"),
        );
    }
    if !held::is_held(state, id) {
        return error(ErrorKind::NotFound, format!("no held post {id}"));
    }
    let mut send = |from: &str, to: &[String], data: &[u8]| {
        crate::lists::distribute::inject(s, from, to, data)
    };
    let Some(key) = s.requests.key.as_ref() else {
        // No list key (lists.cookie_key_file unset): as `kmpctl list
        // approve|reject` does, and no reason can be sent.
        return match reject {
            None => match held::approve(state, id) {
                Ok((token, meta, data)) => {
                    if let Err(e) = send(&meta.sender, std::slice::from_ref(&list.address), &data) {
                        held::approved(state, &token, true);
                        return error(ErrorKind::Temporary, e);
                    }
                    let _ = held::remove(state, id);
                    crate::info!(
                        "lists: list={} held post {id} approved by={by}",
                        list.address
                    );
                    Reply::Done {
                        text: format!("approved {id}"),
                    }
                }
                Err(e) => held_error(e),
            },
            Some(_) => match held::remove(state, id) {
                Ok(()) => {
                    crate::info!(
                        "lists: list={} held post {id} rejected by={by}",
                        list.address
                    );
                    Reply::Done {
                        text: format!("rejected {id} (no list key: the sender is not told)"),
                    }
                }
                Err(e) => held_error(e),
            },
        };
    };
    let (action, role) = match reject {
        None => (Action::Approve, Role::Approve as fn(String) -> Role),
        Some(_) => (Action::Reject, Role::Reject as fn(String) -> Role),
    };
    let token = key.mint(&list.address, action, id, now + 3600);
    let reason = reject
        .map(|r| r.split_whitespace().collect::<Vec<_>>().join(" "))
        .unwrap_or_default();
    let raw = format!(
        "From: <{by}>\r\nSubject: {}\r\nMIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n{reason}\r\n",
        if reject.is_some() { "reject" } else { "approve" }
    );
    let served = crate::lists::commands::serve(
        &s.requests,
        list,
        state,
        &role(token),
        "admind",
        by,
        raw.as_bytes(),
        now,
        &mut send,
    );
    match served {
        Some(Ok(text)) if !held::is_held(state, id) => Reply::Done { text },
        Some(Ok(text)) => error(ErrorKind::Temporary, text),
        Some(Err(e)) => error(ErrorKind::Temporary, e),
        None => error(ErrorKind::Temporary, "the list's key is missing".into()),
    }
}

/// A held post decoded for reading (any charset mail-parser knows).
pub fn preview(held: held::Held, data: &[u8]) -> Preview {
    use mail_parser::MimeHeaders;
    let m = mail_parser::MessageParser::default().parse(data);
    let (mut from, mut subject, mut date, mut text, mut attachments) = (
        String::new(),
        String::new(),
        String::new(),
        String::new(),
        Vec::new(),
    );
    if let Some(m) = m {
        subject = m.subject().unwrap_or_default().to_string();
        from = m
            .from()
            .and_then(|a| a.first())
            .map(|a| match (a.name(), a.address()) {
                (Some(n), Some(ad)) => format!("{n} <{ad}>"),
                (None, Some(ad)) => ad.to_string(),
                (Some(n), None) => n.to_string(),
                (None, None) => String::new(),
            })
            .unwrap_or_default();
        date = m.date().map(|d| d.to_rfc3339()).unwrap_or_default();
        text = m.body_text(0).map(|t| t.into_owned()).unwrap_or_default();
        if text.len() > MAX_PREVIEW {
            let mut cut = MAX_PREVIEW;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            text.truncate(cut);
        }
        attachments = m
            .attachments()
            .map(|a| a.attachment_name().unwrap_or("(no name)").to_string())
            .collect();
    }
    Preview {
        held,
        from,
        subject,
        date,
        text,
        attachments,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::userdb::Address;

    fn list() -> List {
        List::new(&Address::parse("dev@a.test").unwrap(), 1)
    }

    #[test]
    fn members_page_and_bad_names_are_refused() {
        let d = tempfile::tempdir().unwrap();
        let s = Settings::new(d.path().to_path_buf());
        let l = list();
        let r = handle(
            &s,
            &l,
            "o@a.test",
            Request::Subscribe {
                addresses: vec!["b@x.test".into(), "a@x.test".into(), "c@x.test".into()],
                digest: false,
            },
            5,
        );
        assert!(
            matches!(r, Reply::Subscribed { ref added, .. } if added.len() == 3),
            "{r:?}"
        );
        match handle(
            &s,
            &l,
            "o",
            Request::Members {
                offset: 1,
                limit: 1,
            },
            6,
        ) {
            Reply::Members { total, members } => {
                assert_eq!(total, 3);
                assert_eq!(members[0].address, "b@x.test");
            }
            r => panic!("{r:?}"),
        }
        let bad = handle(
            &s,
            &l,
            "o",
            Request::Subscribe {
                addresses: vec!["a%b@x.test".into()],
                digest: false,
            },
            6,
        );
        assert!(matches!(
            bad,
            Reply::Error {
                kind: ErrorKind::BadRequest,
                ..
            }
        ));
        let mut evil = list();
        evil.address = "a/../../x@a.test".into();
        let r = handle(&s, &evil, "o", Request::Held, 6);
        assert!(
            matches!(
                r,
                Reply::Error {
                    kind: ErrorKind::BadRequest,
                    ..
                }
            ),
            "{r:?}"
        );
        let r = handle(&s, &l, "o", Request::HeldShow { id: "../x".into() }, 6);
        assert!(
            matches!(
                r,
                Reply::Error {
                    kind: ErrorKind::BadRequest,
                    ..
                }
            ),
            "{r:?}"
        );
        Store::close(&l.state_dir(d.path()));
    }

    #[test]
    fn a_preview_decodes_gb2312_and_big5() {
        let h = held::Held {
            id: "Q1".into(),
            sender: "x@y.test".into(),
            from: "x@y.test".into(),
            subject: String::new(),
            reason: "not a member".into(),
            size: 1,
            received: 1,
        };
        let data = b"From: =?GB2312?B?1cXI/Q==?= <x@y.test>\r\nSubject: =?big5?B?pKSk5Q==?=\r\n\
Content-Type: text/plain; charset=gb2312\r\n\r\n\xc4\xe3\xba\xc3\r\n";
        let p = preview(h, data);
        assert_eq!(p.subject, "中文");
        assert!(p.from.starts_with("张三"), "{}", p.from);
        assert_eq!(p.text.trim(), "你好");
    }
}
