//! The message commands of [`Client`] on the selected folder, all by UID:
//! SORT, SEARCH, FETCH of summaries, messages and sections, STORE, COPY,
//! MOVE, EXPUNGE, and APPEND.

use std::collections::{HashMap, HashSet};

use super::command::{self, check_flag, check_section, uid_set, uid_sets, Cmd};
use super::reply::{Response, Value};
use super::types::{self, Envelope, Summary};
use super::{Client, Criteria, Error, SortKey};

/// A message (or section) and its flags.
pub type BodyAndFlags = (Vec<u8>, Vec<String>);

/// Longest UID set put in one command; longer lists are split.
const MAX_SET_LEN: usize = 4000;

impl Client {
    /// UIDs of the selected folder's messages matching `criteria`, sorted
    /// by `key` (UID SORT, RFC 5256). Without SORT: UID SEARCH, in UID
    /// order (which is arrival order for ARRIVAL; other keys get the same
    /// order, as the server cannot sort).
    pub fn sort(
        &mut self,
        key: SortKey,
        reverse: bool,
        criteria: &Criteria,
    ) -> Result<Vec<u32>, Error> {
        if !self.has("SORT") {
            let mut uids = self.search(criteria)?;
            uids.sort_unstable();
            if reverse {
                uids.reverse();
            }
            return Ok(uids);
        }
        let mut cmd = Cmd::new("UID SORT");
        cmd.syn(&key.program(reverse)).syn("UTF-8");
        criteria.write(&mut cmd)?;
        let done = self.run(&cmd)?;
        let mut out = Vec::new();
        for r in &done.untagged {
            if let Response::Data { name, values, .. } = r {
                if name == "SORT" {
                    for v in values {
                        out.push(v.number32().ok_or_else(|| bad_number("SORT"))?);
                        if out.len() > command::MAX_SET {
                            return Err(Error::Protocol("SORT result too large".into()));
                        }
                    }
                }
            }
        }
        Ok(out)
    }

    /// One window of [`Client::sort`]'s order: the UIDs at positions
    /// `first .. first + count` (from 0), and how many messages match in
    /// all. With ESORT and PARTIAL (RFC 5267, RFC 9394) only the window
    /// crosses the wire (`UID SORT RETURN (COUNT PARTIAL a:b)`), so a page of
    /// a large folder costs what a page of a small one does; without them the
    /// whole order is fetched and cut.
    pub fn sort_window(
        &mut self,
        key: SortKey,
        reverse: bool,
        criteria: &Criteria,
        first: usize,
        count: usize,
    ) -> Result<(Vec<u32>, usize), Error> {
        let lo = first.saturating_add(1);
        let hi = first.saturating_add(count);
        let partial = self.has("SORT") && self.has("ESORT") && self.has("PARTIAL");
        if !partial || count == 0 || hi > u32::MAX as usize {
            let all = self.sort(key, reverse, criteria)?;
            let total = all.len();
            return Ok((all.into_iter().skip(first).take(count).collect(), total));
        }
        let mut cmd = Cmd::new("UID SORT");
        cmd.syn(&format!("RETURN (COUNT PARTIAL {lo}:{hi})"))
            .syn(&key.program(reverse))
            .syn("UTF-8");
        criteria.write(&mut cmd)?;
        let tag = self.peek_tag();
        let done = self.run(&cmd)?;
        let mut window = Vec::new();
        let mut total = None;
        for r in &done.untagged {
            let Response::Data { name, values, .. } = r else {
                continue;
            };
            let ours = values.first().and_then(Value::list).is_some_and(|l| {
                l.len() == 2 && l[0].is_atom("TAG") && l[1].bytes() == Some(tag.as_bytes())
            });
            if name != "ESEARCH" || !ours {
                continue;
            }
            let mut i = 1;
            while i < values.len() {
                if values[i].is_atom("COUNT") {
                    let n = values.get(i + 1).and_then(Value::number);
                    total = Some(n.ok_or_else(|| bad_number("ESEARCH COUNT"))? as usize);
                    i += 2;
                } else if values[i].is_atom("PARTIAL") {
                    // (a:b set) with the set in sort order, or NIL.
                    let l = values.get(i + 1).and_then(Value::list).unwrap_or_default();
                    if let Some(set) = l.get(1).and_then(Value::text) {
                        if !set.eq_ignore_ascii_case("NIL") {
                            window = command::expand_ordered(&set, count)?;
                        }
                    }
                    i += 2;
                } else {
                    i += 1;
                }
            }
        }
        let total = total.ok_or_else(|| Error::Protocol("ESEARCH without COUNT".into()))?;
        Ok((window, total))
    }

    /// UIDs of the selected folder's messages matching `criteria`, in
    /// ascending order: UID SEARCH (RETURN (ALL) with ESEARCH), CHARSET
    /// UTF-8 when a string is not ASCII (none under UTF8=ACCEPT).
    pub fn search(&mut self, criteria: &Criteria) -> Result<Vec<u32>, Error> {
        let esearch = self.has("ESEARCH");
        let mut cmd = Cmd::new("UID SEARCH");
        if esearch {
            cmd.syn("RETURN (ALL)");
        }
        if criteria.has_8bit() && !self.utf8 {
            cmd.syn("CHARSET UTF-8");
        }
        criteria.write(&mut cmd)?;
        let tag = self.peek_tag();
        let done = self.run(&cmd)?;
        let mut out = Vec::new();
        for r in &done.untagged {
            let Response::Data { name, values, .. } = r else {
                continue;
            };
            if name == "SEARCH" {
                for v in values {
                    // A trailing (MODSEQ n) under CONDSTORE is not a UID.
                    if matches!(v, Value::List(_)) {
                        continue;
                    }
                    out.push(v.number32().ok_or_else(|| bad_number("SEARCH"))?);
                    if out.len() > command::MAX_SET {
                        return Err(Error::Protocol("SEARCH result too large".into()));
                    }
                }
            } else if name == "ESEARCH" {
                // (TAG "k3") UID ALL 1:3,5
                let ours = values.first().and_then(Value::list).is_some_and(|l| {
                    l.len() == 2 && l[0].is_atom("TAG") && l[1].bytes() == Some(tag.as_bytes())
                });
                if !ours {
                    continue;
                }
                let mut i = 1;
                while i < values.len() {
                    if values[i].is_atom("ALL") {
                        let set = values
                            .get(i + 1)
                            .and_then(Value::text)
                            .ok_or_else(|| bad_number("ESEARCH"))?;
                        out.extend(command::expand_set(&set)?);
                        i += 2;
                    } else {
                        i += 1;
                    }
                }
            }
        }
        out.sort_unstable();
        out.dedup();
        Ok(out)
    }

    /// What a message list shows of each message (flags, size, dates,
    /// envelope, structure, priority), in the order of `uids`; UIDs that
    /// do not exist (any more) are left out.
    ///
    /// The structure is asked for only where the header says there may be
    /// an attachment (a multipart other than alternative, a part that is
    /// not text, a Content-Disposition): BODYSTRUCTURE makes the server
    /// read and parse the whole message, and most messages of a list are
    /// text the header already describes. `structure` is None for the rest.
    pub fn summaries(&mut self, uids: &[u32]) -> Result<Vec<Summary>, Error> {
        let mut found: HashMap<u32, Summary> = HashMap::new();
        let mut has_env: HashSet<u32> = Default::default();
        let mut structured: Vec<u32> = Vec::new();
        for set in uid_sets(uids, MAX_SET_LEN) {
            let mut cmd = Cmd::new("UID FETCH");
            cmd.syn(&set).syn(
                "(UID FLAGS RFC822.SIZE INTERNALDATE ENVELOPE \
                 BODY.PEEK[HEADER.FIELDS (X-PRIORITY IMPORTANCE CONTENT-TYPE CONTENT-DISPOSITION)])",
            );
            let done = self.run(&cmd)?;
            for r in &done.untagged {
                let Some((uid, items)) = fetch_items(r) else {
                    continue;
                };
                let s = found.entry(uid).or_insert_with(|| Summary {
                    uid,
                    flags: Vec::new(),
                    size: 0,
                    internal_date: None,
                    envelope: Envelope::default(),
                    structure: None,
                    priority: None,
                });
                for (name, v) in items {
                    match name.as_str() {
                        "FLAGS" => {
                            s.flags = v
                                .list()
                                .map(|l| l.iter().filter_map(Value::text).collect())
                                .unwrap_or_default()
                        }
                        "RFC822.SIZE" => s.size = v.number().unwrap_or(0),
                        "INTERNALDATE" => s.internal_date = v.text(),
                        "ENVELOPE" => {
                            if let Some(e) = types::envelope(v) {
                                s.envelope = e;
                                has_env.insert(uid);
                            }
                        }
                        n if n.starts_with("BODY[HEADER.FIELDS") => {
                            if let Some(h) = v.bytes() {
                                s.priority = types::priority(h);
                                if types::may_have_attachment(h) {
                                    structured.push(uid);
                                }
                            }
                        }
                        _ => {}
                    }
                }
            }
        }
        for set in uid_sets(&structured, MAX_SET_LEN) {
            let mut cmd = Cmd::new("UID FETCH");
            cmd.syn(&set).syn("(UID BODYSTRUCTURE)");
            let done = self.run(&cmd)?;
            for r in &done.untagged {
                let Some((uid, items)) = fetch_items(r) else {
                    continue;
                };
                if let Some(s) = found.get_mut(&uid) {
                    for (name, v) in items {
                        if name == "BODYSTRUCTURE" {
                            s.structure = types::body_structure(v);
                        }
                    }
                }
            }
        }
        let mut out = Vec::with_capacity(uids.len());
        for uid in uids {
            if has_env.remove(uid) {
                if let Some(s) = found.remove(uid) {
                    out.push(s);
                }
            }
        }
        Ok(out)
    }

    /// The whole message (BODY.PEEK[], so \Seen is not set); None when the
    /// folder has no message with this UID.
    pub fn fetch_raw(&mut self, uid: u32) -> Result<Option<Vec<u8>>, Error> {
        self.fetch_body(uid, "")
    }

    /// One section of a message: a part number (`1.2`), `HEADER`, `TEXT`,
    /// or a part number with `.HEADER`, `.TEXT` or `.MIME`; still in its
    /// transfer encoding. None when there is no message with this UID.
    pub fn fetch_section(&mut self, uid: u32, section: &str) -> Result<Option<Vec<u8>>, Error> {
        let section = check_section(section)?;
        self.fetch_body(uid, &section)
    }

    /// Adds (`add`) or removes flags on these messages, silently.
    pub fn store(&mut self, uids: &[u32], add: bool, flags: &[&str]) -> Result<(), Error> {
        for f in flags {
            check_flag(f)?;
        }
        if flags.is_empty() {
            return Ok(());
        }
        let list = format!("({})", flags.join(" "));
        for set in uid_sets(uids, MAX_SET_LEN) {
            let mut cmd = Cmd::new("UID STORE");
            cmd.syn(&set)
                .syn(if add {
                    "+FLAGS.SILENT"
                } else {
                    "-FLAGS.SILENT"
                })
                .syn(&list);
            self.run(&cmd)?;
        }
        Ok(())
    }

    /// Copies these messages into another folder.
    pub fn copy(&mut self, uids: &[u32], to: &str) -> Result<(), Error> {
        self.uid_to("UID COPY", uids, to)
    }

    /// Moves these messages into another folder: UID MOVE (RFC 6851), or
    /// COPY, then `\Deleted` and an expunge of only these UIDs.
    pub fn move_to(&mut self, uids: &[u32], to: &str) -> Result<(), Error> {
        if self.has("MOVE") {
            return self.uid_to("UID MOVE", uids, to);
        }
        self.copy(uids, to)?;
        self.expunge(uids)
    }

    /// Removes exactly these messages: sets `\Deleted` on them and runs
    /// UID EXPUNGE (UIDPLUS). Without UIDPLUS a plain EXPUNGE is used only
    /// when no other message is marked `\Deleted`; otherwise they stay
    /// marked and the answer is [`Error::No`].
    pub fn expunge(&mut self, uids: &[u32]) -> Result<(), Error> {
        if uid_set(uids).is_empty() {
            return Ok(());
        }
        self.store(uids, true, &["\\Deleted"])?;
        if self.has("UIDPLUS") {
            for set in uid_sets(uids, MAX_SET_LEN) {
                let mut cmd = Cmd::new("UID EXPUNGE");
                cmd.syn(&set);
                self.run(&cmd)?;
            }
            return Ok(());
        }
        let deleted = self.search_raw("DELETED")?;
        if deleted.iter().all(|u| uids.contains(u)) {
            self.run(&Cmd::new("EXPUNGE"))?;
            Ok(())
        } else {
            Err(Error::No(
                "the server has no UIDPLUS and other messages are marked \\Deleted; \
                 these were only marked"
                    .into(),
            ))
        }
    }

    /// APPENDs a message with these flags; its (UIDVALIDITY, UID) when the
    /// server says (APPENDUID, UIDPLUS). A message holding NUL goes as a
    /// literal8 when the server has BINARY and is refused otherwise.
    pub fn append(
        &mut self,
        folder: &str,
        flags: &[&str],
        message: &[u8],
    ) -> Result<Option<(u32, u32)>, Error> {
        for f in flags {
            check_flag(f)?;
        }
        let mut cmd = Cmd::new("APPEND");
        cmd.str(self.mailbox(folder)?);
        cmd.syn(&format!("({})", flags.join(" ")));
        if message.contains(&0) {
            if !self.has("BINARY") {
                return Err(Error::Invalid(
                    "the message holds NUL and the server has no BINARY".into(),
                ));
            }
            cmd.lit8(message);
        } else {
            cmd.lit(message);
        }
        let done = self.run(&cmd)?;
        Ok(match done.code {
            Some((c, v)) if c == "APPENDUID" => v
                .first()
                .and_then(Value::number32)
                .zip(v.get(1).and_then(Value::number32)),
            _ => None,
        })
    }

    pub(super) fn fetch_body(&mut self, uid: u32, section: &str) -> Result<Option<Vec<u8>>, Error> {
        Ok(self.fetch_body_flags(uid, section, false)?.map(|(b, _)| b))
    }

    /// The whole message (BODY.PEEK[]) and its flags, in one UID FETCH;
    /// None when the folder has no message with this UID.
    pub fn fetch_raw_flags(&mut self, uid: u32) -> Result<Option<BodyAndFlags>, Error> {
        self.fetch_body_flags(uid, "", true)
    }

    /// BODY.PEEK[`section`] of one message, and its FLAGS when `flags`
    /// (else an empty list).
    fn fetch_body_flags(
        &mut self,
        uid: u32,
        section: &str,
        flags: bool,
    ) -> Result<Option<BodyAndFlags>, Error> {
        if uid == 0 {
            return Ok(None);
        }
        let mut cmd = Cmd::new("UID FETCH");
        cmd.syn(&uid.to_string()).syn(&format!(
            "(UID {}BODY.PEEK[{section}])",
            if flags { "FLAGS " } else { "" }
        ));
        let done = self.run(&cmd)?;
        let want = format!("BODY[{section}]");
        let mut body = None;
        let mut found = Vec::new();
        for r in &done.untagged {
            let Some((u, items)) = fetch_items(r) else {
                continue;
            };
            if u != uid {
                continue;
            }
            for (name, v) in items {
                if name == want && body.is_none() {
                    body = Some(v.nstring().unwrap_or_default());
                } else if name == "FLAGS" {
                    // A flag update may come in a response of its own.
                    found = v
                        .list()
                        .map(|l| l.iter().filter_map(Value::text).collect())
                        .unwrap_or_default();
                }
            }
        }
        Ok(body.map(|b| (b, found)))
    }

    pub(super) fn uid_to(&mut self, verb: &str, uids: &[u32], to: &str) -> Result<(), Error> {
        for set in uid_sets(uids, MAX_SET_LEN) {
            let mut cmd = Cmd::new(verb);
            cmd.syn(&set).str(self.mailbox(to)?);
            self.run(&cmd)?;
        }
        Ok(())
    }

    /// UID SEARCH with a fixed key of our own (no strings).
    /// The UIDs from `first` on, ascending (`UID SEARCH UID first:*`,
    /// without the last message a server adds when none is that high).
    pub fn uids_from(&mut self, first: u32) -> Result<Vec<u32>, Error> {
        let mut v = self.search_raw(&format!("UID {}:*", first.max(1)))?;
        v.retain(|&u| u >= first);
        v.sort_unstable();
        v.dedup();
        Ok(v)
    }

    pub(super) fn search_raw(&mut self, key: &str) -> Result<Vec<u32>, Error> {
        let mut cmd = Cmd::new("UID SEARCH");
        cmd.syn(key);
        let done = self.run(&cmd)?;
        let mut out = Vec::new();
        for r in &done.untagged {
            if let Response::Data { name, values, .. } = r {
                if name == "SEARCH" {
                    out.extend(values.iter().filter_map(Value::number32));
                }
            }
        }
        Ok(out)
    }
}

pub(super) fn bad_number(what: &str) -> Error {
    Error::Protocol(format!("a {what} reply holds something that is not a UID"))
}

/// A FETCH response's UID and its items (names upper-cased), when it has a UID.
fn fetch_items(r: &Response) -> Option<(u32, Vec<(String, &Value)>)> {
    let Response::Data { name, values, .. } = r else {
        return None;
    };
    if name != "FETCH" {
        return None;
    }
    let l = values.first()?.list()?;
    let items: Vec<(String, &Value)> = l
        .chunks(2)
        .filter_map(|kv| match kv {
            [k, v] => Some((k.text()?.to_ascii_uppercase(), v)),
            _ => None,
        })
        .collect();
    let uid = items
        .iter()
        .find(|(n, _)| n == "UID")
        .and_then(|(_, v)| v.number32())?;
    Some((uid, items))
}
