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

use std::collections::HashMap;
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

/// The keys of a folder's messages by UID.
#[derive(Default)]
pub struct Cache {
    uidvalidity: u32,
    loaded: bool,
    keys: HashMap<u32, Arc<Keys>>,
    /// Lines in the file on disk (stale ones included), to know when to
    /// compact it.
    disk_lines: usize,
}

/// The keys of the view's messages at `idx` (view positions), in that
/// order: from memory, else from the disk cache, else parsed now (and
/// remembered in both).
pub fn keys(view: &mut View, idx: &[usize]) -> Vec<Arc<Keys>> {
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
        if let Some(data) = folder.sort_cache_load() {
            cache.read(&data);
        }
    }
    let mut fresh = String::new();
    let mut out = Vec::with_capacity(idx.len());
    for &i in idx {
        let meta = &msgs[i].meta;
        match cache.keys.get(&meta.uid) {
            Some(k) if k.size == meta.size => out.push(k.clone()),
            _ => match parse(folder.as_mut(), meta.uid, meta.size) {
                Some(k) => {
                    let k = Arc::new(k);
                    write_line(&mut fresh, meta.uid, &k);
                    cache.keys.insert(meta.uid, k.clone());
                    out.push(k);
                }
                // Unreadable now (expunged under us, a passing I/O error):
                // empty keys for this answer, nothing remembered.
                None => out.push(Arc::new(Keys {
                    size: meta.size,
                    ..Keys::default()
                })),
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
                if let Some(k) = cache.keys.get(&m.meta.uid) {
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
    /// Reads the disk file; lines of another UIDVALIDITY or that do not
    /// parse are skipped.
    fn read(&mut self, data: &[u8]) {
        let text = String::from_utf8_lossy(data);
        let mut lines = text.split_inclusive('\n');
        let want = format!("{MAGIC} {}\n", self.uidvalidity);
        if lines.next() != Some(want.as_str()) {
            return;
        }
        for line in lines {
            let Some(line) = line.strip_suffix('\n') else {
                break; // cut short by a crash
            };
            self.disk_lines += 1;
            if let Some((uid, k)) = read_line(line) {
                self.keys.insert(uid, Arc::new(k));
            }
        }
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
