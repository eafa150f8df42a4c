//! What SORT and THREAD compare, per message, parsed once (RFC 5256, RFC
//! 5957).
//!
//! A message's keys come from its header only (the body is never read):
//! the sent date, the base subject (section 2.1, after RFC 2047 decoding by
//! lib/mime, so a GB2312, GBK or Big5 subject, encoded or raw 8-bit,
//! becomes the same UTF-8 as its UTF-8 twin), the first address of From, To and Cc, the display names
//! of RFC 5957, Message-ID and References. Strings are kept ASCII
//! upper-cased, which is the `i;ascii-casemap` comparator RFC 5256 names:
//! comparing them bytewise is comparing them as SORT must; other characters
//! compare by code point.
//!
//! The keys of an open folder live in its [`View`] ([`Cache`]) for as long
//! as the folder is selected, and on disk beside the UID index (the
//! folder's `kmpromail-sortcache`, through [`Folder::sort_cache_load`]), so
//! a new session, such as the webmail's for each page, does not parse the
//! folder again. That file is a cache only: lines are appended as messages
//! are first parsed, a line that does not read back whole is skipped, the
//! file is rewritten without the lines of expunged messages when they are
//! the majority, and it is thrown away when the folder's UIDVALIDITY
//! changes. Each line carries the message's RFC822.SIZE, checked against
//! the index, so a UID that came to name another message is parsed again.
//!
//! Reading that file back costs more than sorting (10,000 messages: some
//! 15 ms of parsing and allocation against 1 ms of comparing), and the
//! webmail opens a new session for every page. So the keys read from a
//! folder's file are kept once per process ([`shared`]), by the file's
//! identity (device, inode: a rewrite is a new file) and the length read so
//! far: a session finds them there, reads only the lines appended since,
//! and keeps the keys it parses itself beside them. Bounded by
//! [`shared::MAX_KEYS`] keys in all, the least recently used folder first
//! out.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

use mail_parser::{Address, HeaderValue, MessageParser};

use super::store::Folder;
use super::view::View;

/// The first line of the cache file; the version changes with the format
/// or with what a key means.
const MAGIC: &str = "kmpromail-sortcache 2";

/// Header bytes read at most per message.
pub const MAX_HEADER: usize = 256 * 1024;

/// The keys of one message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Keys {
    /// RFC822.SIZE when parsed (the cache's check that the UID still names
    /// the same message).
    pub size: u64,
    /// The Date: header in seconds since the epoch, UTC, when it parses.
    pub date: Option<i64>,
    /// The base subject (RFC 5256 2.1), upper-cased.
    pub subject: String,
    /// The subject was a reply or a forward (a `Re:`, `Fwd:`, `(fwd)` or
    /// `[fwd: ...]` was removed), for THREAD=REFERENCES step 5.
    pub reply: bool,
    /// addr-mailbox of the first From, To, Cc address (a group's name when
    /// the list opens with a group, as ENVELOPE shows it), upper-cased.
    pub from: String,
    pub to: String,
    pub cc: String,
    /// RFC 5957: the first address's display name, else its addr-spec.
    pub display_from: String,
    pub display_to: String,
    /// Message-ID without its angle brackets, if any.
    pub message_id: Option<String>,
    /// References, or else the first message id of In-Reply-To.
    pub references: Vec<String>,
}

/// Keys by UID. A SORT of a large folder looks up every message's keys, so
/// the map hashes a UID with one multiplication instead of SipHash: the
/// keys are the user's own UIDs, and a collision only slows that user's
/// session.
pub type KeyMap = HashMap<u32, Arc<Keys>, BuildHasherDefault<UidHasher>>;

/// The hasher of [`KeyMap`] (Fibonacci hashing of the UID).
#[derive(Default, Clone, Copy)]
pub struct UidHasher(u64);

impl Hasher for UidHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_u32(&mut self, n: u32) {
        self.0 = (self.0 ^ u64::from(n)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

/// The keys of a folder's messages by UID.
#[derive(Default)]
pub struct Cache {
    uidvalidity: u32,
    loaded: bool,
    /// Read from the disk file, shared with the process's other sessions.
    base: Arc<KeyMap>,
    /// Parsed by this session (or read from the file when it is not shared).
    keys: KeyMap,
    /// Lines in the file on disk (stale ones included), to know when to
    /// compact it.
    disk_lines: usize,
}

/// The keys of the view's messages at `idx` (view positions), in that
/// order: from memory, else from the disk cache, else parsed now (and
/// remembered in both).
pub fn keys(view: &mut View, idx: &[usize]) -> Vec<Arc<Keys>> {
    keys_with(view, idx, Arc::clone)
}

/// What `f` takes from the keys of the view's messages at `idx`, in that
/// order (as [`keys`], without holding on to the keys themselves).
pub fn keys_with<T>(view: &mut View, idx: &[usize], f: impl Fn(&Arc<Keys>) -> T) -> Vec<T> {
    let View {
        folder,
        msgs,
        sort_cache: cache,
        uidvalidity,
        ..
    } = view;
    if !cache.loaded || cache.uidvalidity != *uidvalidity {
        *cache = Cache {
            uidvalidity: *uidvalidity,
            loaded: true,
            ..Cache::default()
        };
        if let Some(path) = folder.sort_cache_path() {
            (cache.base, cache.disk_lines) = shared::load(&path, *uidvalidity);
        } else if let Some(data) = folder.sort_cache_load() {
            cache.read(&data);
        }
    }
    let mut fresh = String::new();
    let mut out = Vec::with_capacity(idx.len());
    for &i in idx {
        let meta = &msgs[i].meta;
        match cache.get(meta.uid) {
            Some(k) if k.size == meta.size => out.push(f(k)),
            _ => match parse(folder.as_mut(), meta.uid, meta.size) {
                Some(k) => {
                    let k = Arc::new(k);
                    write_line(&mut fresh, meta.uid, &k);
                    out.push(f(&k));
                    cache.keys.insert(meta.uid, k);
                }
                // Unreadable now (expunged under us, a passing I/O error):
                // empty keys for this answer, nothing remembered.
                None => out.push(f(&Arc::new(Keys {
                    size: meta.size,
                    ..Keys::default()
                }))),
            },
        }
    }
    if !fresh.is_empty() {
        let added = fresh.lines().count();
        let live = msgs.len();
        if cache.disk_lines == 0 || cache.disk_lines + added > 2 * live + 64 {
            // Write the file anew: first use, or mostly expunged lines.
            let mut all = format!("{MAGIC} {}\n", cache.uidvalidity);
            for m in msgs.iter() {
                if let Some(k) = cache.get(m.meta.uid) {
                    write_line(&mut all, m.meta.uid, k);
                }
            }
            cache.disk_lines = all.lines().count() - 1;
            folder.sort_cache_replace(all.as_bytes());
        } else {
            cache.disk_lines += added;
            folder.sort_cache_append(fresh.as_bytes());
        }
    }
    out
}

impl Cache {
    /// A message's keys, parsed by this session or read from the file.
    fn get(&self, uid: u32) -> Option<&Arc<Keys>> {
        // Most sessions parse nothing themselves: one look-up, not two.
        if self.keys.is_empty() {
            return self.base.get(&uid);
        }
        self.keys.get(&uid).or_else(|| self.base.get(&uid))
    }

    /// Reads the disk file; lines of another UIDVALIDITY or that do not
    /// parse are skipped.
    fn read(&mut self, data: &[u8]) {
        self.disk_lines = read_lines(data, Some(self.uidvalidity), &mut self.keys).1;
    }
}

/// Reads cache lines from `data` into `keys`: after the first line, which
/// must be the one of `uidvalidity` when given (else nothing is read).
/// Returns the bytes read (up to the last whole line: a line being
/// appended, or cut short by a crash, is left) and the lines counted.
fn read_lines(data: &[u8], uidvalidity: Option<u32>, keys: &mut KeyMap) -> (usize, usize) {
    let mut at = 0;
    if let Some(v) = uidvalidity {
        let want = format!("{MAGIC} {v}\n");
        if !data.starts_with(want.as_bytes()) {
            return (0, 0);
        }
        at = want.len();
    }
    let mut lines = 0;
    while let Some(end) = data[at..].iter().position(|&c| c == b'\n') {
        let line = String::from_utf8_lossy(&data[at..at + end]);
        at += end + 1;
        lines += 1;
        if let Some((uid, k)) = read_line(&line) {
            keys.insert(uid, Arc::new(k));
        }
    }
    (at, lines)
}

/// The keys read from cache files, once per process (see the module's
/// text).
pub mod shared {
    use std::collections::HashMap;
    use std::io::{Read, Seek, SeekFrom};
    use std::os::unix::fs::{FileExt, MetadataExt};
    use std::path::{Path, PathBuf};
    use std::sync::{Arc, LazyLock, Mutex};

    use super::{read_lines, KeyMap};

    /// Keys kept in all (some 200 bytes each), over every folder.
    pub const MAX_KEYS: usize = 200_000;

    /// Bytes before the read length that must still be there for the
    /// lines after it to be read as an addition.
    const TAIL: usize = 64;

    struct Entry {
        dev: u64,
        ino: u64,
        uidvalidity: u32,
        /// Bytes of the file read into `keys`, and the file's time then.
        len: u64,
        mtime: (i64, i64),
        /// The file's first line and the last bytes read: a file written
        /// over in place (not by appending, not by a rename) fails to show
        /// them again and is read whole.
        head: Vec<u8>,
        tail: Vec<u8>,
        lines: usize,
        keys: Arc<KeyMap>,
        used: u64,
    }

    #[derive(Default)]
    struct Table {
        folders: HashMap<PathBuf, Entry>,
        tick: u64,
    }

    static TABLE: LazyLock<Mutex<Table>> = LazyLock::new(Default::default);

    fn table() -> std::sync::MutexGuard<'static, Table> {
        // A panic elsewhere while holding it leaves a table still whole.
        TABLE.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// What a session found in the table for a file.
    struct Known {
        keys: Arc<KeyMap>,
        lines: usize,
        len: u64,
        head: Vec<u8>,
        tail: Vec<u8>,
    }

    /// Whether `f` still has `k`'s first line and last bytes where they were.
    fn still_there(f: &std::fs::File, k: &Known) -> bool {
        let mut head = vec![0; k.head.len()];
        let mut tail = vec![0; k.tail.len()];
        f.read_exact_at(&mut head, 0).is_ok()
            && head == k.head
            && f.read_exact_at(&mut tail, k.len - k.tail.len() as u64)
                .is_ok()
            && tail == k.tail
    }

    /// The keys of the cache file at `path` for `uidvalidity`, and its line
    /// count: from the table, with the lines appended since read from the
    /// file; or from the whole file. The file is read without the table
    /// locked.
    pub fn load(path: &Path, uidvalidity: u32) -> (Arc<KeyMap>, usize) {
        let Ok(md) = std::fs::metadata(path) else {
            return Default::default();
        };
        let (dev, ino, len) = (md.dev(), md.ino(), md.len());
        let mtime = (md.mtime(), md.mtime_nsec());
        let known = {
            let mut t = table();
            t.tick += 1;
            let tick = t.tick;
            match t.folders.get_mut(path) {
                Some(e)
                    if e.dev == dev
                        && e.ino == ino
                        && e.uidvalidity == uidvalidity
                        && e.len <= len =>
                {
                    e.used = tick;
                    if e.len == len && e.mtime == mtime {
                        return (e.keys.clone(), e.lines);
                    }
                    Some(Known {
                        keys: e.keys.clone(),
                        lines: e.lines,
                        len: e.len,
                        head: e.head.clone(),
                        tail: e.tail.clone(),
                    })
                }
                _ => None,
            }
        };
        let Ok(mut f) = std::fs::File::open(path) else {
            return Default::default();
        };
        let known = known.filter(|k| still_there(&f, k));
        let from = known.as_ref().map_or(0, |k| k.len);
        let mut data = Vec::new();
        let read = f
            .seek(SeekFrom::Start(from))
            .and_then(|_| f.read_to_end(&mut data));
        if read.is_err() {
            return Default::default();
        }
        if let Some(k) = &known {
            if !data.contains(&b'\n') {
                // Nothing since, or only a line still being written.
                return (k.keys.clone(), k.lines);
            }
        }
        let mut keys = known
            .as_ref()
            .map(|k| KeyMap::clone(&k.keys))
            .unwrap_or_default();
        let (used, added) = read_lines(&data, (from == 0).then_some(uidvalidity), &mut keys);
        if from == 0 && used == 0 {
            // Another UIDVALIDITY's file, or not ours: nothing to share.
            return Default::default();
        }
        let lines = known.as_ref().map_or(0, |k| k.lines) + added;
        let head = match &known {
            Some(k) => k.head.clone(),
            None => data[..data.iter().position(|&c| c == b'\n').map_or(0, |n| n + 1)].to_vec(),
        };
        let mut window = known.map(|k| k.tail).unwrap_or_default();
        window.extend_from_slice(&data[..used]);
        let tail = window[window.len().saturating_sub(TAIL)..].to_vec();
        let keys = Arc::new(keys);
        let mut t = table();
        t.tick += 1;
        let used_tick = t.tick;
        t.folders.remove(path);
        // Room for this folder: the least recently used go first.
        let mut total: usize = t.folders.values().map(|e| e.keys.len()).sum();
        while total + keys.len() > MAX_KEYS {
            let Some(oldest) = t
                .folders
                .iter()
                .min_by_key(|(_, e)| e.used)
                .map(|(p, _)| p.clone())
            else {
                break;
            };
            if let Some(e) = t.folders.remove(&oldest) {
                total -= e.keys.len();
            }
        }
        if keys.len() <= MAX_KEYS {
            t.folders.insert(
                path.to_path_buf(),
                Entry {
                    dev,
                    ino,
                    uidvalidity,
                    len: from + used as u64,
                    // The time of the length read: a later append changes it.
                    mtime: if from + used as u64 == len {
                        mtime
                    } else {
                        (0, 0)
                    },
                    head,
                    tail,
                    lines,
                    keys: keys.clone(),
                    used: used_tick,
                },
            );
        }
        (keys, lines)
    }
}

/// Parses one message's header; None when it cannot be read.
fn parse(folder: &mut dyn Folder, uid: u32, size: u64) -> Option<Keys> {
    let header = folder.header(uid).ok()?;
    let mut k = from_header(&header);
    k.size = size;
    Some(k)
}

/// The keys of a message header (LF or CRLF line ends).
pub fn from_header(header: &[u8]) -> Keys {
    let mut h = super::message::to_crlf(header);
    h.extend_from_slice(b"\r\n\r\n");
    // Raw 8-bit legacy text (GB2312, GBK, Big5 without RFC 2047) made
    // UTF-8 first, as ENVELOPE and the webmail read it.
    if let Some(mut fixed) = super::raw_header::utf8_header(&h) {
        fixed.extend_from_slice(b"\r\n");
        h = fixed;
    }
    let Some(msg) = MessageParser::default().parse_headers(&h[..]) else {
        return Keys::default();
    };
    let subject = super::raw_header::raw_field(&msg, "Subject")
        .map(crate::mime::header_text)
        .unwrap_or_default();
    let (subject, reply) = base_subject(&subject);
    let date = msg
        .date()
        .filter(|d| d.is_valid())
        .map(|d| d.to_timestamp());
    let mut references: Vec<String> = match msg.references() {
        HeaderValue::Text(t) => vec![t.to_string()],
        HeaderValue::TextList(l) => l.iter().map(|t| t.to_string()).collect(),
        _ => Vec::new(),
    };
    if references.is_empty() {
        match msg.in_reply_to() {
            HeaderValue::Text(t) => references.push(t.to_string()),
            HeaderValue::TextList(l) => references.extend(l.first().map(|t| t.to_string())),
            _ => {}
        }
    }
    references.retain(|r| valid_id(r));
    Keys {
        size: 0,
        date,
        subject: subject.to_ascii_uppercase(),
        reply,
        from: first_mailbox(msg.from()),
        to: first_mailbox(msg.to()),
        cc: first_mailbox(msg.cc()),
        display_from: display(msg.from()),
        display_to: display(msg.to()),
        message_id: msg.message_id().map(str::to_string).filter(|i| valid_id(i)),
        references,
    }
}

/// A message id we can use: not empty, no white space (the cache file
/// separates ids by spaces).
fn valid_id(id: &str) -> bool {
    !id.is_empty() && !id.contains(char::is_whitespace)
}

/// addr-mailbox of the first address, or the name of a group that comes
/// first (RFC 3501 7.4.2 puts it in the mailbox field), upper-cased.
fn first_mailbox(a: Option<&Address>) -> String {
    let local = |addr: &str| match addr.rsplit_once('@') {
        Some((l, _)) => l.to_string(),
        None => addr.to_string(),
    };
    let s = match a {
        Some(Address::List(list)) => list
            .iter()
            .find_map(|x| x.address.as_deref().map(local))
            .unwrap_or_default(),
        Some(Address::Group(groups)) => match groups.first() {
            Some(g) => match &g.name {
                Some(n) => n.to_string(),
                None => g
                    .addresses
                    .iter()
                    .find_map(|x| x.address.as_deref().map(local))
                    .unwrap_or_default(),
            },
            None => String::new(),
        },
        None => String::new(),
    };
    s.to_ascii_uppercase()
}

/// RFC 5957 2: the display name of the first address if it has a
/// non-empty one, else its addr-spec; a group's name for a group (as
/// Dovecot does); upper-cased.
fn display(a: Option<&Address>) -> String {
    let one = |x: &mail_parser::Addr| -> String {
        match (x.name.as_deref().map(str::trim), x.address.as_deref()) {
            (Some(n), _) if !n.is_empty() => n.to_string(),
            (_, Some(a)) => a.to_string(),
            _ => String::new(),
        }
    };
    let s = match a {
        Some(Address::List(list)) => list.first().map(one).unwrap_or_default(),
        Some(Address::Group(groups)) => match groups.first() {
            Some(g) => match &g.name {
                Some(n) => n.to_string(),
                None => g.addresses.first().map(one).unwrap_or_default(),
            },
            None => String::new(),
        },
        None => String::new(),
    };
    s.to_ascii_uppercase()
}

/// The base subject of RFC 5256 2.1 and whether the subject was a reply or
/// a forward. `subject` is already decoded (step 1's RFC 2047 part).
pub fn base_subject(subject: &str) -> (String, bool) {
    // (1) Tabs and continuations become a space, runs of spaces one.
    let mut s = String::with_capacity(subject.len());
    for ch in subject.chars() {
        let ch = if matches!(ch, '\t' | '\r' | '\n') {
            ' '
        } else {
            ch
        };
        if ch == ' ' && s.ends_with(' ') {
            continue;
        }
        s.push(ch);
    }
    let mut reply = false;
    let mut s = s.as_str();
    loop {
        // (2) Remove trailing "(fwd)" and white space, repeatedly.
        loop {
            let t = s.trim_end_matches(' ');
            let lower = t.len() >= 5 && t.is_char_boundary(t.len() - 5);
            if lower && t[t.len() - 5..].eq_ignore_ascii_case("(fwd)") {
                s = &t[..t.len() - 5];
                reply = true;
            } else {
                s = t;
                break;
            }
        }
        // (3), (4), (5): leaders and blobs until none is left.
        loop {
            if let Some(rest) = s.strip_prefix(' ') {
                s = rest;
                continue;
            }
            if let Some(rest) = refwd_leader(s) {
                s = rest;
                reply = true;
                continue;
            }
            if let Some(end) = blob(s, 0) {
                if !s[end..].is_empty() {
                    s = &s[end..];
                    continue;
                }
            }
            break;
        }
        // (6) "[fwd:" ... "]": strip and start again.
        let fwd = s.len() >= 6
            && s.is_char_boundary(5)
            && s[..5].eq_ignore_ascii_case("[fwd:")
            && s.ends_with(']');
        if fwd {
            s = &s[5..s.len() - 1];
            reply = true;
            continue;
        }
        return (s.to_string(), reply);
    }
}

/// subj-blob at `p`: `[` *BLOBCHAR `]` *WSP; the position after it.
fn blob(s: &str, p: usize) -> Option<usize> {
    let b = s.as_bytes();
    if b.get(p) != Some(&b'[') {
        return None;
    }
    let mut q = p + 1;
    while q < b.len() && b[q] != b']' && b[q] != b'[' {
        q += 1;
    }
    if b.get(q) != Some(&b']') {
        return None;
    }
    q += 1;
    while b.get(q) == Some(&b' ') {
        q += 1;
    }
    Some(q)
}

/// subj-leader's `*subj-blob subj-refwd` at the start of `s`, where
/// subj-refwd = ("re" / ("fw" ["d"])) *WSP [subj-blob] ":"; what follows.
fn refwd_leader(s: &str) -> Option<&str> {
    let b = s.as_bytes();
    let mut p = 0;
    while let Some(q) = blob(s, p) {
        p = q;
    }
    let word =
        |w: &str| b.len() >= p + w.len() && b[p..p + w.len()].eq_ignore_ascii_case(w.as_bytes());
    for w in ["re", "fwd", "fw"] {
        if !word(w) {
            continue;
        }
        let mut q = p + w.len();
        while b.get(q) == Some(&b' ') {
            q += 1;
        }
        if let Some(r) = blob(s, q) {
            q = r;
        }
        if b.get(q) == Some(&b':') {
            return Some(&s[q + 1..]);
        }
    }
    None
}

/// One cache line: fields separated by tabs, escaped.
fn write_line(out: &mut String, uid: u32, k: &Keys) {
    use std::fmt::Write;
    let _ = write!(
        out,
        "{uid}\t{}\t{}\t{}",
        k.size,
        k.date.map(|d| d.to_string()).unwrap_or_default(),
        u8::from(k.reply)
    );
    for f in [
        &k.subject,
        &k.from,
        &k.to,
        &k.cc,
        &k.display_from,
        &k.display_to,
    ] {
        out.push('\t');
        escape(out, f);
    }
    out.push('\t');
    escape(out, k.message_id.as_deref().unwrap_or(""));
    out.push('\t');
    escape(out, &k.references.join(" "));
    out.push('\n');
}

fn escape(out: &mut String, s: &str) {
    for ch in s.chars() {
        match ch {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut it = s.chars();
    while let Some(c) = it.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match it.next() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some(o) => out.push(o),
            None => {}
        }
    }
    out
}

fn read_line(line: &str) -> Option<(u32, Keys)> {
    let f: Vec<&str> = line.split('\t').collect();
    if f.len() != 12 {
        return None;
    }
    let uid = f[0].parse().ok()?;
    let date = match f[2] {
        "" => None,
        d => Some(d.parse().ok()?),
    };
    let reply = match f[3] {
        "0" => false,
        "1" => true,
        _ => return None,
    };
    let id = unescape(f[10]);
    Some((
        uid,
        Keys {
            size: f[1].parse().ok()?,
            date,
            reply,
            subject: unescape(f[4]),
            from: unescape(f[5]),
            to: unescape(f[6]),
            cc: unescape(f[7]),
            display_from: unescape(f[8]),
            display_to: unescape(f[9]),
            message_id: (!id.is_empty()).then_some(id),
            references: unescape(f[11])
                .split(' ')
                .filter(|r| !r.is_empty())
                .map(str::to_string)
                .collect(),
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys_for(subject: &str, size: u64) -> Keys {
        Keys {
            size,
            subject: subject.to_string(),
            ..Keys::default()
        }
    }

    #[test]
    fn the_shared_cache_reads_appended_lines_and_a_rewritten_file() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kmpromail-sortcache");
        let mut text = format!("{MAGIC} 7\n");
        write_line(&mut text, 1, &keys_for("ONE", 10));
        std::fs::write(&path, &text).unwrap();
        let (k, lines) = shared::load(&path, 7);
        assert_eq!((k.len(), lines), (1, 1));
        assert_eq!(k[&1].subject, "ONE");
        // Another session's lines, one of them half written.
        let mut more = String::new();
        write_line(&mut more, 2, &keys_for("TWO", 20));
        more.push_str("3\tpartial");
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(more.as_bytes())
            .unwrap();
        let (k, lines) = shared::load(&path, 7);
        assert_eq!((k.len(), lines), (2, 2));
        assert_eq!(k[&2].subject, "TWO");
        // The same length again: the very same keys, nothing read.
        let (again, _) = shared::load(&path, 7);
        assert!(Arc::ptr_eq(&again, &shared::load(&path, 7).0));
        // Written over in place, longer: not taken for an addition.
        let mut text = format!("{MAGIC} 7\n");
        write_line(&mut text, 4, &keys_for("FOUR", 40));
        write_line(&mut text, 6, &keys_for("SIX", 60));
        write_line(&mut text, 8, &keys_for("EIGHT", 80));
        std::fs::write(&path, &text).unwrap();
        let (k, lines) = shared::load(&path, 7);
        assert_eq!((k.len(), lines), (3, 3));
        assert!(!k.contains_key(&1));
        // Rewritten (a new file): read whole; another UIDVALIDITY: nothing.
        let mut text = format!("{MAGIC} 7\n");
        write_line(&mut text, 5, &keys_for("FIVE", 50));
        crate::maildir::replace::write_atomic(&path, text.as_bytes()).unwrap();
        let (k, _) = shared::load(&path, 7);
        assert_eq!(k.keys().copied().collect::<Vec<_>>(), vec![5]);
        assert!(shared::load(&path, 8).0.is_empty());
    }

    #[test]
    fn base_subjects_follow_rfc5256_2_1() {
        for (subject, base, reply) in [
            ("a", "a", false),
            ("", "", false),
            (" ", "", false),
            ("[foo] Fwd: [bar] Re: fw: b (fWd)  (fwd)", "b", true),
            ("b (a)", "b (a)", false),
            ("Re: [FWD: c]", "c", true),
            ("[xyz]", "[xyz]", false),
            ("RE: C", "C", true),
            ("Ad: Re: Ad: Re: Ad: x", "Ad: Re: Ad: Re: Ad: x", false),
            ("re: [fwd: [fwd: re: [fwd: babylon]]]", "babylon", true),
            ("Re:\tRe:   hello\t world", "hello world", true),
            ("[list] 回复: 会议", "回复: 会议", false),
            ("Re: 会议通知 (fwd)", "会议通知", true),
            ("Fwd : x", "x", true),
            ("re[2]: x", "x", true),
        ] {
            assert_eq!(
                base_subject(subject),
                (base.to_string(), reply),
                "{subject:?}"
            );
        }
    }

    #[test]
    fn chinese_subjects_in_any_charset_give_one_key() {
        let gb = b"Subject: =?gb2312?b?u+HS6c2o1qo=?=\nFrom: =?gbk?b?1cXI/Q==?= <z@x.cn>\n";
        let big5 = b"Subject: Re: =?big5?b?t3zEs7Nxqr4=?=\n";
        let utf8 = "Subject: 会议通知\n".as_bytes();
        let k = from_header(gb);
        assert_eq!(k.subject, "会议通知");
        assert_eq!(k.display_from, "张三");
        assert_eq!(k.from, "Z");
        let b = from_header(big5);
        assert!(b.reply);
        assert_eq!(b.subject, "會議通知");
        assert_eq!(from_header(utf8).subject, "会议通知");
    }

    #[test]
    fn raw_8bit_subjects_and_names_give_the_same_keys() {
        use encoding_rs::{BIG5, GBK};
        for (cs, subject, name) in [(GBK, "会议通知", "张三"), (BIG5, "許功蓋報告", "許功蓋")]
        {
            let mut h = b"Subject: Re: ".to_vec();
            h.extend_from_slice(&cs.encode(subject).0);
            h.extend_from_slice(b"\nFrom: \"");
            h.extend_from_slice(&cs.encode(name).0);
            h.extend_from_slice(b"\" <z@x.cn>\nTo: =?utf-8?b?546L5LqU?= <w@x.cn>\n");
            let k = from_header(&h);
            assert_eq!(k.subject, subject);
            assert!(k.reply);
            assert_eq!(k.display_from, name);
            assert_eq!(k.from, "Z");
            assert_eq!(k.display_to, "王五");
        }
    }

    #[test]
    fn cache_lines_read_back() {
        let k = Keys {
            size: 42,
            date: Some(-5),
            subject: "A\tB\\C\nD".into(),
            reply: true,
            from: "X".into(),
            to: String::new(),
            cc: "Y".into(),
            display_from: "张三".into(),
            display_to: "Z".into(),
            message_id: Some("a@b".into()),
            references: vec!["c@d".into(), "e@f".into()],
        };
        let mut s = String::new();
        write_line(&mut s, 7, &k);
        assert_eq!(read_line(s.trim_end_matches('\n')), Some((7, k)));
        assert_eq!(read_line("7\tx"), None);
    }
}
