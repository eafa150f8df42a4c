//! The maildrop on the Maildir library: the user's Maildir (created at first
//! login), its POP3 lock, INBOX (and, for users with `pop3_subfolders`, the
//! other folders but Trash) listed in UID order.
//!
//! Unique ids (RFC 1939 section 7, UIDL): the message's UID and its folder's
//! UIDVALIDITY from the UID index IMAP uses too, as `%08X%08X` (UID, then
//! UIDVALIDITY: Dovecot's default `%08Xu%08Xv`). UIDs are never reused within
//! a UIDVALIDITY, so an id is never given to another message while the
//! mailbox lives, and it survives restarts. Subfolder messages get their
//! folder's hash appended (`-%08X`) so that two folders created within the
//! same second cannot give the same id. INBOX messages moved in from
//! Dovecot keep the UIDLs Dovecot showed (`kmpromail-pop3-uidl`, written
//! when the folder's UID list was imported), so clients that leave mail on
//! the server do not fetch it again.

use std::fs::File;
use std::io;

use crate::ipc::authd::UserInfo;
use crate::maildir::{migrate, Error, Mailbox, Maildir, MaildropLock, SpecialUse, Uid};

use super::session::{MessageInfo, OpenFailure};
use super::store::{Expunged, Maildrop, Store};

/// Maildrops are users' Maildirs.
#[derive(Debug, Default)]
pub struct MaildirStore;

impl MaildirStore {
    pub fn new() -> MaildirStore {
        MaildirStore
    }
}

impl Store for MaildirStore {
    fn open(&self, user: &UserInfo) -> Result<Box<dyn Maildrop>, OpenFailure> {
        let fail = |what: &str, e: Error| {
            crate::error!("{}: {what}: {e}", user.address);
            OpenFailure::Temporary
        };
        // The same rule as IMAP's: special folders only in a new Maildir.
        let md = Maildir::open_or_create(&user.mail_path).map_err(|e| fail("create", e))?;
        let lock = match md.lock_maildrop() {
            Ok(l) => l,
            Err(Error::Locked) => return Err(OpenFailure::InUse),
            Err(e) => return Err(fail("lock", e)),
        };
        let mut folders = vec![(md.inbox().open().map_err(|e| fail("INBOX", e))?, None)];
        if user.pop3_subfolders {
            for f in md.list_folders().map_err(|e| fail("folders", e))? {
                if !f.selectable
                    || f.name.eq_ignore_ascii_case("INBOX")
                    || f.special_use == Some(SpecialUse::Trash)
                {
                    continue;
                }
                let folder = md.folder(&f.name).map_err(|e| fail(&f.name, e))?;
                let mb = folder.open().map_err(|e| fail(&f.name, e))?;
                folders.push((mb, Some(fnv(f.name.as_bytes()))));
            }
        }
        let mut messages = Vec::new();
        let mut refs = Vec::new();
        // UIDLs a move from another server kept (see maildir::migrate).
        let kept = migrate::pop3_uidls(&md.inbox()).map_err(|e| fail("UIDLs", e))?;
        for (fi, (mb, tag)) in folders.iter().enumerate() {
            let validity = mb.uid_validity();
            for m in mb.messages() {
                let uidl = match tag {
                    None => migrate::uidl_of(&kept, m.uid.0, validity),
                    Some(t) => format!("{:08X}{:08X}-{t:08X}", m.uid.0, validity),
                };
                messages.push(MessageInfo {
                    size: m.vsize,
                    uidl,
                });
                refs.push((fi, m.uid));
            }
        }
        Ok(Box::new(Drop {
            folders: folders.into_iter().map(|(mb, _)| mb).collect(),
            messages,
            refs,
            _lock: lock,
        }))
    }
}

/// One locked maildrop. Field order matters: the lock is released last.
struct Drop {
    folders: Vec<Mailbox>,
    messages: Vec<MessageInfo>,
    /// For each message number: its folder and UID.
    refs: Vec<(usize, Uid)>,
    _lock: MaildropLock,
}

impl Maildrop for Drop {
    fn messages(&self) -> Vec<MessageInfo> {
        self.messages.clone()
    }

    fn open_message(&self, index: usize) -> io::Result<File> {
        let (f, uid) = self
            .refs
            .get(index)
            .copied()
            .ok_or(io::ErrorKind::NotFound)?;
        self.folders[f].open_message(uid).map_err(|e| match e {
            Error::NoMessage(_) => io::ErrorKind::NotFound.into(),
            e if e.is_not_found() => io::ErrorKind::NotFound.into(),
            e => io::Error::other(e.to_string()),
        })
    }

    fn expunge(&mut self, indexes: &[usize]) -> Expunged {
        let mut r = Expunged {
            removed: 0,
            failed: 0,
        };
        for (f, mb) in self.folders.iter_mut().enumerate() {
            let uids: Vec<Uid> = indexes
                .iter()
                .filter_map(|&i| self.refs.get(i))
                .filter(|(fi, _)| *fi == f)
                .map(|(_, u)| *u)
                .collect();
            if uids.is_empty() {
                continue;
            }
            match mb.expunge(&uids) {
                // A message already gone (an IMAP client expunged it) is as
                // good as removed.
                Ok(_) => r.removed += uids.len(),
                Err(e) => {
                    crate::error!("expunge: {e}");
                    r.failed += uids.len();
                }
            }
        }
        r
    }
}

/// FNV-1a, 32 bits: a short stable tag for a folder name.
fn fnv(b: &[u8]) -> u32 {
    b.iter().fold(0x811c_9dc5u32, |h, &c| {
        (h ^ u32::from(c)).wrapping_mul(0x0100_0193)
    })
}
