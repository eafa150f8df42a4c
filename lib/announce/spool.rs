//! A postmaster's announcement to their domain, from kmp-admind to
//! kmp-local through a spool directory (`paths.announce`).
//!
//! kmp-admind (user kmpadm) decides who may announce to which domain, but
//! it does not own mailboxes and must not. So it writes a request, one
//! file per announcement, into the spool: the domain, who asked, and the
//! message already checked and completed by [`super::message::prepare`].
//! kmp-local (vmail), which owns every mailbox, looks at the spool every
//! few seconds and performs each request with the same record, stored file
//! and hard links as `kmpctl announce --domain` ([`super::Record`],
//! [`super::place`]): one inode for the whole domain, a journal, nobody
//! served twice. The domain's users come from kmp-authd
//! (`DomainUsers`, then `Lookup` for each Maildir), so the request names no
//! path: kmpadm can ask for an announcement to a domain and nothing more.
//!
//! The spool is the narrowest door: kmpadm writes one directory, owned by
//! it with group vmail (mode 2770); no queue entry to forge, no socket for
//! kmp-local to serve. The request's name is the announcement id, computed
//! from the domain and the text, so a re-submitted announcement finds its
//! request (still waiting) or its record (done): it is not delivered twice.
//! A request is removed only after every mailbox was served; a crash
//! leaves it, and the next look resumes from the record's journal.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::message::{self, Stamp};
use super::{place, Placed, Record};
use crate::ipc::authd::{Client, Entry, Reply, Request as AuthRequest};

/// A request in the spool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// The domain, in A-label form.
    pub domain: String,
    /// Who asked (for the log).
    pub by: String,
    /// The stored message, as [`message::prepare`] made it.
    pub message: String,
}

/// What one announcement is made of, as the API takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Announcement<'a> {
    pub domain: &'a str,
    pub by: &'a str,
    pub subject: &'a str,
    pub text: &'a str,
    pub html: Option<&'a str>,
}

/// What a submission did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Submitted {
    /// A new request is in the spool.
    Queued(String),
    /// The same announcement is waiting already.
    Waiting(String),
}

/// The id of an announcement: from the domain and what it says (not who
/// sent it, nor when), so sending it again finds the first.
pub fn id_of(a: &Announcement<'_>) -> String {
    let mut k = Vec::new();
    for part in [a.domain, a.subject, a.text, a.html.unwrap_or("")] {
        k.extend_from_slice(part.as_bytes());
        k.push(0);
    }
    message::id_of(&k)
}

/// The message file of an announcement (header fields, a blank line, the
/// body): plain text, or with HTML a multipart/alternative of both.
pub fn compose(a: &Announcement<'_>, id: &str) -> Vec<u8> {
    let text = a.text.replace("\r\n", "\n");
    let mut out = format!(
        "From: {}\nSubject: {}\nMIME-Version: 1.0\n",
        a.by,
        a.subject.replace(['\r', '\n'], " ")
    );
    match a.html {
        None => {
            out.push_str("Content-Type: text/plain; charset=utf-8\n");
            out.push_str(&part_body(&text));
        }
        Some(html) => {
            let boundary = format!("=_announce_{id}");
            out.push_str(&format!(
                "Content-Type: multipart/alternative; boundary=\"{boundary}\"\n\n"
            ));
            for (ctype, body) in [("text/plain", text.as_str()), ("text/html", html)] {
                out.push_str(&format!(
                    "--{boundary}\nContent-Type: {ctype}; charset=utf-8\n{}\n",
                    part_body(&body.replace("\r\n", "\n")).trim_end_matches('\n')
                ));
            }
            out.push_str(&format!("--{boundary}--\n"));
        }
    }
    if !out.ends_with('\n') {
        out.push('\n');
    }
    out.into_bytes()
}

/// The transfer encoding field, a blank line and the body: 8bit while
/// every line keeps within RFC 5322's 998 characters (a paragraph typed
/// in a form is one line), else base64 in 76-character lines.
fn part_body(text: &str) -> String {
    if text.lines().all(|l| l.len() <= 900) {
        return format!("Content-Transfer-Encoding: 8bit\n\n{text}");
    }
    use base64::Engine;
    let b = base64::engine::general_purpose::STANDARD.encode(text.as_bytes());
    let mut out = String::from("Content-Transfer-Encoding: base64\n\n");
    for chunk in b.as_bytes().chunks(76) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out
}

/// Checks and completes an announcement and puts its request into the
/// spool (written to a temporary name, fsynced, renamed, the directory
/// fsynced). An error is the reason it is refused (the message) or could
/// not be written.
pub fn submit(
    spool: &Path,
    a: &Announcement<'_>,
    hostname: &str,
    now: u64,
    max_size: u64,
) -> Result<Submitted, SubmitError> {
    let id = id_of(a);
    let file = compose(a, &id);
    let stamp = Stamp {
        id: &id,
        hostname,
        now,
        max_size,
    };
    let prepared = message::prepare(&file, &stamp).map_err(|e| SubmitError::Bad(e.to_string()))?;
    let message = String::from_utf8(prepared)
        .map_err(|_| SubmitError::Bad("the announcement is not UTF-8".into()))?;
    let path = spool.join(&id);
    if path.exists() {
        return Ok(Submitted::Waiting(id));
    }
    let req = Request {
        domain: a.domain.to_string(),
        by: a.by.to_string(),
        message,
    };
    let bytes = serde_json::to_vec(&req).map_err(|e| SubmitError::Io(e.to_string()))?;
    let tmp = spool.join(format!(".tmp-{id}-{}", std::process::id()));
    let io = |e: io::Error| SubmitError::Io(format!("{}: {e}", spool.display()));
    {
        // Mode 0640: kmp-local reads it through the directory's group.
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o640)
            .open(&tmp)
            .map_err(io)?;
        f.write_all(&bytes).map_err(io)?;
        f.sync_all().map_err(io)?;
    }
    // A crash before the rename leaves a temporary file that kmp-local
    // ignores (and removes when it is old); after it, the request.
    fs::rename(&tmp, &path).map_err(io)?;
    crate::sys::fsync_dir(spool).map_err(io)?;
    Ok(Submitted::Queued(id))
}

/// Why a submission failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubmitError {
    /// The announcement is refused (no subject, too large ...).
    Bad(String),
    /// The spool could not be written.
    Io(String),
}

/// What serving one request did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Served {
    pub delivered: u64,
    pub already: u64,
    pub failed: u64,
}

/// Serves every request waiting in `spool` (kmp-local's look): each is
/// delivered to the active users of its domain and removed when every
/// mailbox was served. Errors are logged; a request that fails stays for
/// the next look.
pub fn serve_pending(spool: &Path, mail_root: &Path, authd_socket: &Path) {
    let Ok(entries) = fs::read_dir(spool) else {
        return;
    };
    let mut ids: Vec<String> = Vec::new();
    for e in entries.flatten() {
        let Some(name) = e.file_name().to_str().map(str::to_string) else {
            continue;
        };
        if message::valid_id(&name) {
            ids.push(name);
        } else if name.starts_with(".tmp-") {
            // A submission a crash cut short, an hour ago or more.
            let old = e
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age.as_secs() > 3600);
            if old {
                let _ = fs::remove_file(e.path());
            }
        }
    }
    ids.sort();
    for id in ids {
        match serve_one(spool, &id, mail_root, authd_socket) {
            Ok((req, n)) => crate::info!(
                "announcement {id}: domain={} by={} delivered={} already={} failed={}",
                req.domain,
                req.by,
                n.delivered,
                n.already,
                n.failed
            ),
            Err(e) => crate::warn!("announcement {id}: {e}; tried again later"),
        }
    }
}

fn serve_one(
    spool: &Path,
    id: &str,
    mail_root: &Path,
    authd_socket: &Path,
) -> Result<(Request, Served), String> {
    let path = spool.join(id);
    let bytes = fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let req: Request = match serde_json::from_slice(&bytes) {
        Ok(r) => r,
        Err(e) => {
            // Not ours to retry forever: set aside, named in the log.
            let bad = spool.join(format!(".bad-{id}"));
            let _ = fs::rename(&path, &bad);
            return Err(format!("not a request ({e}); moved to {}", bad.display()));
        }
    };
    let users = domain_users(authd_socket, &req.domain)?;
    let record = Record::open(mail_root, id)?;
    let done = record.done().map_err(|e| e.to_string())?;
    let stored = match record.stored().map_err(|e| e.to_string())? {
        Some(s) => s,
        None if record.dir().join("complete").exists() => {
            // Served before: only users added since would get it, and a
            // re-submission is not a new announcement.
            fs::remove_file(&path).map_err(|e| e.to_string())?;
            return Ok((
                req,
                Served {
                    already: users.len() as u64,
                    ..Served::default()
                },
            ));
        }
        None => record.store(req.message.as_bytes(), None)?,
    };
    let mut journal = record.journal().map_err(|e| e.to_string())?;
    let mut n = Served::default();
    let look = record.resumed();
    let mut lines = String::new();
    for (address, root) in users {
        if done.contains(&address) {
            n.already += 1;
            continue;
        }
        match place(&stored, id, &root, look, None) {
            Placed::Linked => n.delivered += 1,
            Placed::Already => n.already += 1,
            Placed::Failed(e) => {
                n.failed += 1;
                crate::warn!("announcement {id}: {address}: {e}");
                continue;
            }
        }
        lines.push_str(&address);
        lines.push('\n');
    }
    journal
        .write_all(lines.as_bytes())
        .and_then(|_| journal.sync_all())
        .map_err(|e| e.to_string())?;
    if n.failed == 0 {
        record
            .finish(&format!(
                "announcement {id} to {} by {}: {} delivered\n",
                req.domain, req.by, n.delivered
            ))
            .map_err(|e| e.to_string())?;
        fs::remove_file(&path).map_err(|e| e.to_string())?;
        crate::sys::fsync_dir(spool).map_err(|e| e.to_string())?;
    }
    Ok((req, n))
}

/// The active users of `domain` and their Maildirs, from kmp-authd.
fn domain_users(
    authd_socket: &Path,
    domain: &str,
) -> Result<Vec<(String, std::path::PathBuf)>, String> {
    let mut c = Client::connect(authd_socket).map_err(|e| e.to_string())?;
    let addresses = match c
        .call(AuthRequest::DomainUsers {
            domain: domain.to_string(),
        })
        .map_err(|e| e.to_string())?
    {
        Reply::Users { addresses } => addresses,
        other => return Err(format!("kmp-authd answered {other:?}")),
    };
    let suffix = format!("@{domain}");
    let mut out = Vec::with_capacity(addresses.len());
    for a in addresses {
        if let Reply::Found {
            entry: Entry::User { user },
            ..
        } = c
            .call(AuthRequest::Lookup { address: a })
            .map_err(|e| e.to_string())?
        {
            if user.active && user.address.ends_with(&suffix) {
                out.push((user.address, user.mail_path));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a<'a>(subject: &'a str, html: Option<&'a str>) -> Announcement<'a> {
        Announcement {
            domain: "a.example",
            by: "pm@a.example",
            subject,
            text: "今晚 22:00 维护。\n",
            html,
        }
    }

    #[test]
    fn the_id_is_the_domain_and_the_text_not_who_or_when() {
        let x = a("维护通知", None);
        let mut y = x.clone();
        y.by = "other@a.example";
        assert_eq!(id_of(&x), id_of(&y));
        y.domain = "b.example";
        assert_ne!(id_of(&x), id_of(&y));
        assert_ne!(id_of(&x), id_of(&a("维护通知", Some("<p>x</p>"))));
        assert!(message::valid_id(&id_of(&x)));
    }

    #[test]
    fn a_submission_is_written_once_and_checked() {
        let d = tempfile::tempdir().unwrap();
        let x = a("维护通知", Some("<p>今晚 <b>22:00</b></p>"));
        let id = match submit(d.path(), &x, "mx.example", 1_800_000_000, 0).unwrap() {
            Submitted::Queued(id) => id,
            s => panic!("{s:?}"),
        };
        assert_eq!(
            submit(d.path(), &x, "mx.example", 1_800_000_100, 0).unwrap(),
            Submitted::Waiting(id.clone())
        );
        let req: Request = serde_json::from_slice(&fs::read(d.path().join(&id)).unwrap()).unwrap();
        assert_eq!(req.domain, "a.example");
        assert!(req
            .message
            .starts_with(&format!("X-Kmpromail-Announcement: {id}\n")));
        assert!(req.message.contains("Subject: =?UTF-8?"), "{}", req.message);
        assert!(req.message.contains("multipart/alternative"));
        assert!(req.message.contains("今晚 22:00 维护。"));
        assert!(matches!(
            submit(d.path(), &a("  ", None), "mx.example", 0, 0),
            Err(SubmitError::Bad(_))
        ));
        assert!(matches!(
            submit(d.path(), &a("big", None), "mx.example", 0, 10),
            Err(SubmitError::Bad(_))
        ));
        // A paragraph longer than a line may be goes as base64.
        let long = "维护".repeat(400);
        let y = Announcement {
            text: &long,
            ..a("长", None)
        };
        match submit(d.path(), &y, "mx.example", 0, 0).unwrap() {
            Submitted::Queued(id) => {
                let req: Request =
                    serde_json::from_slice(&fs::read(d.path().join(&id)).unwrap()).unwrap();
                assert!(req.message.contains("base64"), "{}", req.message);
                fs::remove_file(d.path().join(&id)).unwrap();
            }
            s => panic!("{s:?}"),
        }
        // Only the request is left: no temporary file.
        assert_eq!(fs::read_dir(d.path()).unwrap().count(), 1);
    }
}
