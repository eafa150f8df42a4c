//! The folder commands of [`Client`]: LIST (with LIST-EXTENDED,
//! LIST-STATUS and SPECIAL-USE, or LIST, LSUB and STATUS), STATUS, SELECT,
//! CREATE, RENAME, DELETE, SUBSCRIBE, METADATA and GETQUOTAROOT; and the
//! folder names on the wire (modified UTF-7, or UTF-8 under UTF8=ACCEPT).

use std::collections::HashMap;

use super::command::{check_entry, check_flag, Cmd};
use super::messages::bad_number;
use super::reply::{Response, Value};
use super::types::{Folder, FolderStatus, Quota, Selected};
use super::{Client, Error, MetadataEntry};
use crate::proto::utf7;

/// The special-use attributes of RFC 6154 (and \Important of RFC 8457).
const SPECIAL_USE: [&str; 8] = [
    "\\All",
    "\\Archive",
    "\\Drafts",
    "\\Flagged",
    "\\Junk",
    "\\Sent",
    "\\Trash",
    "\\Important",
];

impl Client {
    /// Every folder: `LIST "" "*" RETURN (SUBSCRIBED SPECIAL-USE CHILDREN
    /// STATUS (MESSAGES UNSEEN SIZE))` with what of that the server offers;
    /// without LIST-STATUS, one STATUS per selectable folder; without
    /// LIST-EXTENDED, LSUB for the subscriptions. In the server's order.
    pub fn list(&mut self) -> Result<Vec<Folder>, Error> {
        self.list_with(true)
    }

    /// [`Client::list`] without the counts (every `status` is None): for a
    /// page that needs only the folders' names and kinds, sparing the
    /// server a STATUS of each folder.
    pub fn list_names(&mut self) -> Result<Vec<Folder>, Error> {
        self.list_with(false)
    }

    fn list_with(&mut self, counts: bool) -> Result<Vec<Folder>, Error> {
        let extended = self.has("LIST-EXTENDED");
        let with_status = counts && extended && self.has("LIST-STATUS");
        let mut cmd = Cmd::new("LIST");
        cmd.str("").str("*");
        if extended {
            cmd.syn("RETURN").syn("(").syn("SUBSCRIBED").syn("CHILDREN");
            if self.has("SPECIAL-USE") {
                cmd.syn("SPECIAL-USE");
            }
            if with_status {
                cmd.syn("STATUS").syn(&self.status_items());
            }
            cmd.syn(")");
        }
        let done = self.run(&cmd)?;
        let mut folders: Vec<Folder> = Vec::new();
        let mut statuses = HashMap::new();
        for r in &done.untagged {
            let Response::Data { name, values, .. } = r else {
                continue;
            };
            if name == "LIST" {
                if let Some(f) = self.list_entry(values) {
                    folders.push(f);
                }
            } else if name == "STATUS" {
                if let Some((mbox, st)) = self.status_entry(values) {
                    statuses.insert(mbox, st);
                }
            }
        }
        for f in folders.iter_mut() {
            f.status = statuses.remove(&f.name);
        }
        if !extended {
            let mut cmd = Cmd::new("LSUB");
            cmd.str("").str("*");
            let done = self.run(&cmd)?;
            for r in &done.untagged {
                if let Response::Data { name, values, .. } = r {
                    if name == "LSUB" {
                        if let Some(s) = self.list_entry(values) {
                            if let Some(f) = folders.iter_mut().find(|f| f.name == s.name) {
                                f.subscribed = true;
                            }
                        }
                    }
                }
            }
        }
        if counts && !with_status {
            for f in folders.iter_mut().filter(|f| f.selectable()) {
                f.status = match self.status(&f.name) {
                    Ok(s) => Some(s),
                    Err(Error::No(_)) => None,
                    Err(e) => return Err(e),
                };
            }
        }
        Ok(folders)
    }

    /// STATUS of one folder: messages, unseen and (STATUS=SIZE) size.
    pub fn status(&mut self, folder: &str) -> Result<FolderStatus, Error> {
        let mut cmd = Cmd::new("STATUS");
        cmd.str(self.mailbox(folder)?);
        cmd.syn(&self.status_items());
        let done = self.run(&cmd)?;
        let found: Vec<(String, FolderStatus)> = done
            .untagged
            .iter()
            .filter_map(|r| match r {
                Response::Data { name, values, .. } if name == "STATUS" => {
                    self.status_entry(values)
                }
                _ => None,
            })
            .collect();
        // The folder's own, or the only one (a server may spell the name
        // its own way: `INBOX.x` for `inbox.x`).
        let wanted = normalise(folder);
        let one = found.len() == 1;
        found
            .into_iter()
            .find(|(n, _)| *n == wanted || one)
            .map(|(_, s)| s)
            .ok_or_else(|| Error::Protocol("no STATUS data in the reply".into()))
    }

    /// SELECT (or EXAMINE when `read_only`), with CONDSTORE when offered.
    pub fn select(&mut self, folder: &str, read_only: bool) -> Result<Selected, Error> {
        let mut cmd = Cmd::new(if read_only { "EXAMINE" } else { "SELECT" });
        cmd.str(self.mailbox(folder)?);
        if self.has("CONDSTORE") {
            cmd.syn("(CONDSTORE)");
        }
        let done = self.run(&cmd)?;
        let mut sel = Selected {
            read_only,
            ..Selected::default()
        };
        for r in &done.untagged {
            match r {
                Response::Data {
                    number: Some(n),
                    name,
                    ..
                } if name == "EXISTS" => sel.exists = *n,
                Response::Status {
                    code: Some((code, values)),
                    ..
                } => {
                    let n = values.first().and_then(Value::number);
                    match code.as_str() {
                        "UIDVALIDITY" => {
                            sel.uidvalidity = values.first().and_then(Value::number32).unwrap_or(0)
                        }
                        "UIDNEXT" => {
                            sel.uidnext = values.first().and_then(Value::number32).unwrap_or(0)
                        }
                        "HIGHESTMODSEQ" => sel.highestmodseq = n,
                        _ => {}
                    }
                }
                _ => {}
            }
        }
        match done.code.as_ref().map(|(c, _)| c.as_str()) {
            Some("READ-ONLY") => sel.read_only = true,
            Some("READ-WRITE") => sel.read_only = false,
            _ => {}
        }
        Ok(sel)
    }

    /// Creates a folder, with a special use (`\Sent`, RFC 6154) when the
    /// server has CREATE-SPECIAL-USE (otherwise the use is not set).
    pub fn create(&mut self, folder: &str, special_use: Option<&str>) -> Result<(), Error> {
        let mut cmd = Cmd::new("CREATE");
        cmd.str(self.mailbox(folder)?);
        if let Some(u) = special_use {
            check_flag(u)?;
            if !u.starts_with('\\') {
                return Err(Error::Invalid(format!("not a special use: {u:?}")));
            }
            if self.has("CREATE-SPECIAL-USE") {
                cmd.syn(&format!("(USE ({u}))"));
            }
        }
        self.run(&cmd).map(|_| ())
    }

    /// Renames a folder (its subfolders follow, RFC 9051 section 6.3.6).
    pub fn rename(&mut self, from: &str, to: &str) -> Result<(), Error> {
        let mut cmd = Cmd::new("RENAME");
        cmd.str(self.mailbox(from)?).str(self.mailbox(to)?);
        self.run(&cmd).map(|_| ())
    }

    /// Deletes a folder.
    pub fn delete(&mut self, folder: &str) -> Result<(), Error> {
        let mut cmd = Cmd::new("DELETE");
        cmd.str(self.mailbox(folder)?);
        self.run(&cmd).map(|_| ())
    }

    /// SUBSCRIBE (`on`) or UNSUBSCRIBE.
    pub fn subscribe(&mut self, folder: &str, on: bool) -> Result<(), Error> {
        let mut cmd = Cmd::new(if on { "SUBSCRIBE" } else { "UNSUBSCRIBE" });
        cmd.str(self.mailbox(folder)?);
        self.run(&cmd).map(|_| ())
    }

    /// GETMETADATA (RFC 5464) of a folder ("" = the server): each entry
    /// asked for, in order, with its value or None when it has none.
    pub fn get_metadata(
        &mut self,
        folder: &str,
        entries: &[&str],
    ) -> Result<Vec<MetadataEntry>, Error> {
        for e in entries {
            check_entry(e)?;
        }
        if entries.is_empty() {
            return Ok(Vec::new());
        }
        let got = self.metadata_replies(folder, entries, false)?;
        Ok(entries
            .iter()
            .map(|e| {
                let v = got
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(e))
                    .and_then(|(_, v)| v.clone());
                (e.to_string(), v)
            })
            .collect())
    }

    /// GETMETADATA (DEPTH 1): the entries one level below `entry` (and
    /// `entry` itself when it has a value), as the server lists them.
    pub fn get_metadata_below(
        &mut self,
        folder: &str,
        entry: &str,
    ) -> Result<Vec<MetadataEntry>, Error> {
        check_entry(entry)?;
        self.metadata_replies(folder, &[entry], true)
    }

    /// Sends GETMETADATA and gathers every entry of its METADATA replies.
    fn metadata_replies(
        &mut self,
        folder: &str,
        entries: &[&str],
        depth_one: bool,
    ) -> Result<Vec<MetadataEntry>, Error> {
        let mut cmd = Cmd::new("GETMETADATA");
        if depth_one {
            cmd.syn("(DEPTH 1)");
        }
        cmd.str(self.mailbox_or_server(folder)?).syn("(");
        for e in entries {
            cmd.str(e);
        }
        cmd.syn(")");
        let done = self.run(&cmd)?;
        let mut got: Vec<MetadataEntry> = Vec::new();
        for r in &done.untagged {
            let Response::Data { name, values, .. } = r else {
                continue;
            };
            if name != "METADATA" {
                continue;
            }
            let Some(l) = values.get(1).and_then(Value::list) else {
                continue;
            };
            for kv in l.chunks(2) {
                if let [k, v] = kv {
                    if let Some(k) = k.text() {
                        got.push((k, v.nstring()));
                    }
                }
            }
        }
        Ok(got)
    }

    /// SETMETADATA: sets each entry to its value, or removes it (None).
    pub fn set_metadata(
        &mut self,
        folder: &str,
        entries: &[(&str, Option<&[u8]>)],
    ) -> Result<(), Error> {
        for (e, _) in entries {
            check_entry(e)?;
        }
        if entries.is_empty() {
            return Ok(());
        }
        let mut cmd = Cmd::new("SETMETADATA");
        cmd.str(self.mailbox_or_server(folder)?).syn("(");
        for (e, v) in entries {
            cmd.str(e);
            match v {
                None => {
                    cmd.syn("NIL");
                }
                Some(v) if v.contains(&0) => {
                    if !self.has("BINARY") {
                        return Err(Error::Invalid(
                            "a metadata value holds NUL and the server has no BINARY".into(),
                        ));
                    }
                    cmd.lit8(v);
                }
                Some(v) => {
                    cmd.str(v);
                }
            }
        }
        cmd.syn(")");
        self.run(&cmd).map(|_| ())
    }

    /// GETQUOTAROOT (RFC 9208): every resource of every quota root of the
    /// folder. Empty when the server has no QUOTA.
    pub fn quota_root(&mut self, folder: &str) -> Result<Vec<Quota>, Error> {
        if !self.has("QUOTA") {
            return Ok(Vec::new());
        }
        let mut cmd = Cmd::new("GETQUOTAROOT");
        cmd.str(self.mailbox(folder)?);
        let done = self.run(&cmd)?;
        let mut out = Vec::new();
        for r in &done.untagged {
            let Response::Data { name, values, .. } = r else {
                continue;
            };
            if name != "QUOTA" {
                continue;
            }
            let root = values.first().and_then(Value::text).unwrap_or_default();
            let Some(l) = values.get(1).and_then(Value::list) else {
                continue;
            };
            for t in l.chunks(3) {
                if let [res, usage, limit] = t {
                    out.push(Quota {
                        root: root.clone(),
                        resource: res.text().unwrap_or_default().to_ascii_uppercase(),
                        usage: usage.number().ok_or_else(|| bad_number("QUOTA"))?,
                        limit: limit.number().ok_or_else(|| bad_number("QUOTA"))?,
                    });
                }
            }
        }
        Ok(out)
    }

    /// `(MESSAGES UNSEEN SIZE)`, SIZE only with STATUS=SIZE.
    pub(super) fn status_items(&self) -> String {
        if self.has("STATUS=SIZE") {
            "(MESSAGES UNSEEN SIZE)".into()
        } else {
            "(MESSAGES UNSEEN)".into()
        }
    }

    /// A folder name as it goes on the wire; control characters make
    /// no folder name (modified UTF-7 would carry them, but no one should).
    pub(super) fn mailbox(&self, name: &str) -> Result<Vec<u8>, Error> {
        if name.chars().any(char::is_control) {
            return Err(Error::Invalid(format!(
                "a control character in the folder name {name:?}"
            )));
        }
        Ok(if self.utf8 {
            name.as_bytes().to_vec()
        } else {
            utf7::encode(name).into_bytes()
        })
    }

    pub(super) fn mailbox_or_server(&self, name: &str) -> Result<Vec<u8>, Error> {
        if name.is_empty() {
            Ok(Vec::new())
        } else {
            self.mailbox(name)
        }
    }

    /// A folder name from the wire, in UTF-8.
    pub(super) fn decode_mailbox(&self, v: &Value) -> Option<String> {
        let b = v.bytes()?;
        let s = if self.utf8 {
            String::from_utf8_lossy(b).into_owned()
        } else {
            let raw = String::from_utf8_lossy(b);
            utf7::decode(&raw).unwrap_or_else(|_| raw.into_owned())
        };
        Some(normalise(&s))
    }

    /// One LIST or LSUB response: `(attributes) delimiter name [extended]`.
    pub(super) fn list_entry(&self, values: &[Value]) -> Option<Folder> {
        let attributes: Vec<String> = values
            .first()?
            .list()?
            .iter()
            .filter_map(Value::text)
            .collect();
        let delimiter = match values.get(1)? {
            Value::Nil => None,
            v => v.bytes().and_then(|b| b.first()).map(|c| *c as char),
        };
        let name = self.decode_mailbox(values.get(2)?)?;
        let special = attributes
            .iter()
            .find_map(|a| SPECIAL_USE.iter().find(|s| s.eq_ignore_ascii_case(a)))
            .map(|s| s.to_string());
        let subscribed = attributes
            .iter()
            .any(|a| a.eq_ignore_ascii_case("\\Subscribed"));
        Some(Folder {
            name,
            delimiter,
            attributes,
            special,
            subscribed,
            status: None,
        })
    }

    /// One STATUS response: `name (MESSAGES n UNSEEN n SIZE n)`.
    pub(super) fn status_entry(&self, values: &[Value]) -> Option<(String, FolderStatus)> {
        let name = self.decode_mailbox(values.first()?)?;
        let mut st = FolderStatus::default();
        for kv in values.get(1)?.list()?.chunks(2) {
            if let [k, v] = kv {
                if k.is_atom("MESSAGES") {
                    st.messages = v.number32()?;
                } else if k.is_atom("UNSEEN") {
                    st.unseen = v.number32()?;
                } else if k.is_atom("SIZE") {
                    st.size = v.number();
                }
            }
        }
        Some((name, st))
    }
}

/// INBOX in any case is INBOX (RFC 9051 section 5.1).
fn normalise(name: &str) -> String {
    if name.eq_ignore_ascii_case("INBOX") {
        "INBOX".into()
    } else {
        name.to_string()
    }
}
