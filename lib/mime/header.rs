//! Header fields for people to read: RFC 2047 encoded-words, address lists
//! (RFC 5322 3.4), MIME parameters with RFC 2231 continuations and
//! charsets, and the Content-Disposition the webmail sends back (RFC 6266).
//!
//! Everything here is lenient in what it reads, as mail readers must be:
//! encoded-words are decoded where they stand (inside quoted strings and
//! parameter values too), raw 8-bit text is detected, and nothing panics
//! or grows beyond the input.

use super::charset;
use super::transfer::decode_base64;
use super::Mailbox;

/// Most parameters read from one field, and most RFC 2231 pieces of one.
const MAX_PARAMS: usize = 64;

/// Longest encoded text of one encoded-word looked for. RFC 2047 2 allows
/// 75 characters for the whole word; senders exceed that, but a bound
/// keeps a header full of unterminated "=?" linear to scan.
const MAX_WORD: usize = 1024;

/// An unstructured header value (Subject, a display name) for display; see
/// [`super::header_text`].
pub fn header_text(raw: &[u8]) -> String {
    let raw = unfold(raw);
    let mut out = String::with_capacity(raw.len());
    // Adjacent encoded-words in one charset are joined as bytes before they
    // are decoded, so that a character split across two words survives.
    let mut pending: Option<(String, Vec<u8>)> = None;
    let mut plain = 0;
    let mut i = 0;
    while i + 1 < raw.len() {
        if raw[i] == b'=' && raw[i + 1] == b'?' {
            if let Some((cs, bytes, end)) = encoded_word(&raw, i) {
                let between = &raw[plain..i];
                let glue = pending.is_some() && between.iter().all(|b| matches!(b, b' ' | b'\t'));
                if !glue {
                    flush(&mut pending, &mut out);
                    out.push_str(&charset::undeclared(between));
                }
                match &mut pending {
                    Some((pcs, pb)) if pcs.eq_ignore_ascii_case(&cs) => {
                        pb.extend_from_slice(&bytes)
                    }
                    _ => {
                        flush(&mut pending, &mut out);
                        pending = Some((cs, bytes));
                    }
                }
                i = end;
                plain = end;
                continue;
            }
        }
        i += 1;
    }
    flush(&mut pending, &mut out);
    out.push_str(&charset::undeclared(&raw[plain..]));
    clean(&out)
}

fn flush(pending: &mut Option<(String, Vec<u8>)>, out: &mut String) {
    if let Some((cs, bytes)) = pending.take() {
        let latin =
            charset::lookup(&cs) == Some(charset::Charset::Known(encoding_rs::WINDOWS_1252));
        match latin
            .then(|| charset::latin_label_on_gb2312(&bytes))
            .flatten()
        {
            Some(s) => out.push_str(&s),
            None => out.push_str(&charset::decode(&bytes, Some(&cs))),
        }
    }
}

/// Folded lines joined (RFC 5322 2.2.3: "unfolding is accomplished by
/// simply removing any CRLF that is immediately followed by WSP"); a
/// stray CR or LF goes too.
fn unfold(raw: &[u8]) -> Vec<u8> {
    raw.iter()
        .copied()
        .filter(|b| *b != b'\r' && *b != b'\n')
        .collect()
}

/// Text fit to show on one line: tabs become spaces, other control
/// characters go, the ends are trimmed.
fn clean(s: &str) -> String {
    s.chars()
        .filter_map(|c| match c {
            '\t' => Some(' '),
            c if c.is_control() => None,
            c => Some(c),
        })
        .collect::<String>()
        .trim()
        .to_string()
}

/// The encoded-word (RFC 2047 2) starting at `at` ("=?"): its charset, its
/// decoded bytes and where it ends. None when the bytes there are not one.
fn encoded_word(raw: &[u8], at: usize) -> Option<(String, Vec<u8>, usize)> {
    let rest = &raw[at + 2..];
    let q1 = rest.iter().take(76).position(|b| *b == b'?')?;
    let cs = &rest[..q1];
    if cs.is_empty() || !cs.iter().all(|b| b.is_ascii_graphic()) {
        return None;
    }
    let enc = *rest.get(q1 + 1)?;
    if rest.get(q1 + 2) != Some(&b'?') {
        return None;
    }
    let text_start = q1 + 3;
    let mut j = text_start;
    loop {
        if j - text_start > MAX_WORD {
            return None;
        }
        match rest.get(j)? {
            b'?' if rest.get(j + 1) == Some(&b'=') => break,
            b' ' | b'\t' => return None,
            _ => j += 1,
        }
    }
    let text = &rest[text_start..j];
    let bytes = match enc {
        b'B' | b'b' => decode_base64(text),
        b'Q' | b'q' => q_decode(text),
        _ => return None,
    };
    // RFC 2231 5: a language after "*" is not part of the charset.
    let cs = String::from_utf8_lossy(cs);
    let cs = cs.split('*').next().unwrap_or("").to_string();
    Some((cs, bytes, at + 2 + j + 2))
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// The Q encoding (RFC 2047 4.2): "_" is a space, "=XY" an octet.
fn q_decode(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'_' => out.push(b' '),
            b'=' => {
                if let (Some(h), Some(l)) = (
                    s.get(i + 1).copied().and_then(hex),
                    s.get(i + 2).copied().and_then(hex),
                ) {
                    out.push(h * 16 + l);
                    i += 3;
                    continue;
                }
                out.push(b'=');
            }
            b => out.push(b),
        }
        i += 1;
    }
    out
}

/// A lexical item of an address list.
#[derive(Debug)]
enum Tok {
    Word(Vec<u8>),
    Quoted(Vec<u8>),
    Comment(Vec<u8>),
    Angle(Vec<u8>),
    Special(u8),
}

fn tokens(raw: &[u8]) -> Vec<Tok> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < raw.len() {
        match raw[i] {
            b' ' | b'\t' | b'\r' | b'\n' => i += 1,
            b'"' => {
                let mut v = Vec::new();
                i += 1;
                while i < raw.len() && raw[i] != b'"' {
                    if raw[i] == b'\\' && i + 1 < raw.len() {
                        i += 1;
                    }
                    if raw[i] != b'\r' && raw[i] != b'\n' {
                        v.push(raw[i]);
                    }
                    i += 1;
                }
                i += 1;
                out.push(Tok::Quoted(v));
            }
            b'(' => {
                let (mut v, mut depth) = (Vec::new(), 0usize);
                while i < raw.len() {
                    match raw[i] {
                        b'\\' if i + 1 < raw.len() => {
                            i += 1;
                            v.push(raw[i]);
                        }
                        b'(' => {
                            if depth > 0 {
                                v.push(b'(');
                            }
                            depth += 1;
                        }
                        b')' => {
                            depth -= 1;
                            if depth == 0 {
                                i += 1;
                                break;
                            }
                            v.push(b')');
                        }
                        b => v.push(b),
                    }
                    i += 1;
                }
                out.push(Tok::Comment(v));
            }
            b'<' => {
                let end = raw[i..].iter().position(|b| *b == b'>').map(|p| i + p);
                let stop = end.unwrap_or(raw.len());
                out.push(Tok::Angle(raw[i + 1..stop].to_vec()));
                i = stop + 1;
            }
            c @ (b',' | b';' | b':') => {
                out.push(Tok::Special(c));
                i += 1;
            }
            _ => {
                let start = i;
                while i < raw.len() && !b" \t\r\n\"(<,;:".contains(&raw[i]) {
                    i += 1;
                }
                out.push(Tok::Word(raw[start..i].to_vec()));
            }
        }
    }
    out
}

/// From/To/Cc values; see [`super::address_list`].
pub fn address_list(raw: &[u8]) -> Vec<Mailbox> {
    let mut out = Vec::new();
    let mut phrase: Vec<Vec<u8>> = Vec::new();
    let mut comment: Option<Vec<u8>> = None;
    let mut angle: Option<Vec<u8>> = None;
    let mut end =
        |phrase: &mut Vec<Vec<u8>>, comment: &mut Option<Vec<u8>>, angle: &mut Option<Vec<u8>>| {
            let (name, address) = match angle.take() {
                // `<a@b> (Name)`: the comment names the mailbox.
                Some(a) if phrase.is_empty() => (comment.clone(), a),
                Some(a) => (Some(phrase.join(&b' ')), a),
                None => (comment.clone(), phrase.concat()),
            };
            phrase.clear();
            *comment = None;
            // A source route (RFC 5322 4.4 obs-route) is dropped.
            let address = match address.iter().position(|b| *b == b':') {
                Some(p) if address.first() == Some(&b'@') => address[p + 1..].to_vec(),
                _ => address,
            };
            let address = clean(&String::from_utf8_lossy(&address)).replace(' ', "");
            if address.is_empty() {
                return;
            }
            let name = name.map(|n| header_text(&n)).filter(|n| !n.is_empty());
            out.push(Mailbox { name, address });
        };
    for t in tokens(raw) {
        match t {
            Tok::Word(w) => phrase.push(w),
            Tok::Quoted(q) => {
                let mut v = Vec::with_capacity(q.len() + 2);
                // Kept as one word; an encoded-word inside is still decoded,
                // as most readers do.
                v.extend_from_slice(&q);
                phrase.push(v);
            }
            Tok::Comment(c) => {
                if comment.is_none() {
                    comment = Some(c);
                }
            }
            Tok::Angle(a) => angle = Some(a),
            // A group's name is not a mailbox: the members follow.
            Tok::Special(b':') => {
                phrase.clear();
                comment = None;
            }
            Tok::Special(_) => end(&mut phrase, &mut comment, &mut angle),
        }
    }
    end(&mut phrase, &mut comment, &mut angle);
    out
}

/// The fields of a header block, names lower-cased, values unfolded (raw
/// bytes). Reading stops at the blank line.
pub(crate) fn fields(block: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = Vec::new();
    for line in block.split(|b| *b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            break;
        }
        if matches!(line[0], b' ' | b'\t') {
            if let Some((_, v)) = out.last_mut() {
                v.extend_from_slice(line);
            }
            continue;
        }
        if let Some(colon) = line.iter().position(|b| *b == b':') {
            let name = String::from_utf8_lossy(&line[..colon])
                .trim()
                .to_ascii_lowercase();
            out.push((name, trim(&line[colon + 1..]).to_vec()));
        }
    }
    out
}

fn trim(b: &[u8]) -> &[u8] {
    let s = b
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(b.len());
    let e = b
        .iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .map_or(s, |p| p + 1);
    &b[s..e.max(s)]
}

/// A MIME field with parameters (Content-Type, Content-Disposition).
#[derive(Debug, Default, Clone)]
pub(crate) struct Params {
    /// The value before the first ";", lower-cased.
    pub value: String,
    /// Parameters in order, names lower-cased, values unquoted raw bytes.
    pub params: Vec<(String, Vec<u8>)>,
}

impl Params {
    pub fn parse(raw: &[u8]) -> Params {
        let mut parts = split_params(raw).into_iter();
        let value = parts
            .next()
            .map(|v| String::from_utf8_lossy(trim(&v)).to_ascii_lowercase())
            .unwrap_or_default();
        let mut params = Vec::new();
        for p in parts.take(MAX_PARAMS) {
            let Some(eq) = p.iter().position(|b| *b == b'=') else {
                continue;
            };
            let name = String::from_utf8_lossy(trim(&p[..eq])).to_ascii_lowercase();
            let v = trim(&p[eq + 1..]);
            let v = match v.strip_prefix(b"\"") {
                Some(q) => unquote(q),
                None => v.to_vec(),
            };
            params.push((name, v));
        }
        Params { value, params }
    }

    /// A parameter decoded for display: RFC 2231 (`name*`, `name*0*`,
    /// `name*1`, ...) first, else the plain parameter, whose value may hold
    /// encoded-words or raw 8-bit text.
    pub fn get(&self, name: &str) -> Option<String> {
        if let Some(v) = self.rfc2231(name) {
            return Some(v);
        }
        let (_, v) = self.params.iter().find(|(n, _)| n == name)?;
        Some(header_text(v))
    }

    /// A parameter as plain ASCII-ish text (charset, boundary).
    pub fn raw(&self, name: &str) -> Option<String> {
        let (_, v) = self.params.iter().find(|(n, _)| n == name)?;
        Some(String::from_utf8_lossy(v).trim().to_string())
    }

    fn rfc2231(&self, name: &str) -> Option<String> {
        // (section number, encoded, value)
        let mut pieces: Vec<(u32, bool, &[u8])> = Vec::new();
        for (n, v) in &self.params {
            let Some(rest) = n.strip_prefix(name).and_then(|r| r.strip_prefix('*')) else {
                continue;
            };
            if rest.is_empty() {
                pieces.push((0, true, v));
                continue;
            }
            let (num, enc) = match rest.strip_suffix('*') {
                Some(num) => (num, true),
                None => (rest, false),
            };
            if num.is_empty() || num.len() > 3 || !num.bytes().all(|b| b.is_ascii_digit()) {
                continue;
            }
            let Ok(k) = num.parse::<u32>() else { continue };
            pieces.push((k, enc, v));
        }
        if pieces.is_empty() {
            return None;
        }
        pieces.sort_by_key(|p| p.0);
        pieces.dedup_by_key(|p| p.0);
        let mut cs: Option<String> = None;
        let mut bytes = Vec::new();
        for (i, (_, enc, v)) in pieces.iter().enumerate() {
            let mut v: &[u8] = v;
            if i == 0 && *enc {
                // charset'language'value (RFC 2231 4).
                let mut it = v.splitn(3, |b| *b == b'\'');
                if let (Some(c), Some(_), Some(rest)) = (it.next(), it.next(), it.next()) {
                    cs = Some(String::from_utf8_lossy(c).into_owned());
                    v = rest;
                }
            }
            if *enc {
                bytes.extend_from_slice(&pct_decode(v));
            } else {
                bytes.extend_from_slice(v);
            }
        }
        let cs = cs.filter(|c| !c.is_empty());
        Some(clean(&charset::decode(&bytes, cs.as_deref())))
    }
}

/// The pieces of a parameter field split at ";" outside quotes.
fn split_params(raw: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut cur = Vec::new();
    let mut quoted = false;
    let mut i = 0;
    while i < raw.len() {
        let b = raw[i];
        match b {
            b'"' => quoted = !quoted,
            b'\\' if quoted && i + 1 < raw.len() => {
                cur.push(b);
                i += 1;
                cur.push(raw[i]);
                i += 1;
                continue;
            }
            b';' if !quoted => {
                out.push(std::mem::take(&mut cur));
                i += 1;
                continue;
            }
            _ => {}
        }
        cur.push(b);
        i += 1;
    }
    out.push(cur);
    out
}

/// A quoted string's content (after the opening quote): escapes removed,
/// up to the closing quote.
fn unquote(q: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(q.len());
    let mut i = 0;
    while i < q.len() {
        match q[i] {
            b'"' => break,
            // A backslash before a byte quotes it; Windows paths in names
            // (`C:\dir\a.doc`) keep theirs where the next byte is not
            // special.
            b'\\' if i + 1 < q.len() && matches!(q[i + 1], b'"' | b'\\') => {
                out.push(q[i + 1]);
                i += 2;
                continue;
            }
            b => out.push(b),
        }
        i += 1;
    }
    out
}

fn pct_decode(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'%' {
            if let (Some(h), Some(l)) = (
                s.get(i + 1).copied().and_then(hex),
                s.get(i + 2).copied().and_then(hex),
            ) {
                out.push(h * 16 + l);
                i += 3;
                continue;
            }
        }
        out.push(s[i]);
        i += 1;
    }
    out
}

/// A file name safe to offer: the last path component, no control
/// characters, not empty.
pub(crate) fn file_name(name: &str) -> String {
    let last = name.rsplit(['/', '\\']).next().unwrap_or("");
    let n: String = last.chars().filter(|c| !c.is_control()).collect();
    let n = n.trim().trim_start_matches('.').trim().to_string();
    n
}

/// RFC 6266 Content-Disposition; see [`super::content_disposition`].
pub fn content_disposition(kind: &str, name: &str) -> String {
    let kind = if kind.eq_ignore_ascii_case("inline") {
        "inline"
    } else {
        "attachment"
    };
    let mut name = file_name(name);
    if name.is_empty() {
        name = "attachment".to_string();
    }
    let fallback: String = name
        .chars()
        .map(|c| match c {
            ' '..='~' if c != '"' && c != '\\' && c != '%' => c,
            _ => '_',
        })
        .collect();
    let mut out = format!("{kind}; filename=\"{fallback}\"");
    if fallback != name {
        // RFC 5987 3.2.1 attr-char.
        out.push_str("; filename*=UTF-8''");
        for b in name.bytes() {
            if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
                out.push(b as char);
            } else {
                out.push_str(&format!("%{b:02X}"));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gbk(s: &str) -> Vec<u8> {
        encoding_rs::GB18030.encode(s).0.into_owned()
    }

    #[test]
    fn encoded_words() {
        assert_eq!(header_text(b"=?gb2312?b?u+HS6c2o1qo=?="), "会议通知");
        assert_eq!(
            header_text(b"=?GBK?Q?=D5=C5=C8=FD?= <z@x.cn>"),
            "张三 <z@x.cn>"
        );
        assert_eq!(header_text(b"=?big5?b?t3zEs7Nxqr4=?="), "會議通知");
        // Adjacent words are joined without the space between; plain text
        // keeps its spaces.
        assert_eq!(
            header_text(b"=?utf-8?q?a?= =?utf-8?q?b?=  c =?utf-8?q?d_e?="),
            "ab  c d e"
        );
        assert_eq!(header_text(b"=?utf-8?q?a?=\r\n =?utf-8?q?b?="), "ab");
        // A character split across two words (会 is E4 BC 9A in UTF-8).
        assert_eq!(
            header_text(b"=?UTF-8?B?5Lw=?= =?UTF-8?B?muiurg==?="),
            "会议"
        );
        // The same across GBK words, and a language tag (RFC 2231 5).
        assert_eq!(header_text(b"=?gbk*zh?Q?=BB?= =?GBK?Q?=E1?="), "会");
        assert_eq!(header_text(b"=?hz-gb-2312?q?~{<:Ky~}?="), "己所");
        assert_eq!(header_text(b"=?utf-7?q?+ZeVnLIqe-?="), "日本語");
        assert_eq!(header_text(b"=?iso-2022-jp?b?GyRCRnxLXDhsGyhC?="), "日本語");
        assert_eq!(header_text(b"=?iso-8859-1?q?caf=E9?="), "café");
        // Not encoded-words: left alone.
        assert_eq!(header_text(b"=?x?y?z a?= =?"), "=?x?y?z a?= =?");
        assert_eq!(header_text(b"a\tb\x07c"), "a bc");
    }

    #[test]
    fn raw_8bit_headers_are_detected() {
        let s = "关于下周项目会议的安排通知";
        assert_eq!(header_text(&gbk(s)), s);
        assert_eq!(header_text(s.as_bytes()), s);
        let mut mixed = b"Re: ".to_vec();
        mixed.extend(gbk(s));
        assert_eq!(header_text(&mixed), format!("Re: {s}"));
    }

    #[test]
    fn addresses() {
        let l =
            address_list(b"=?gbk?b?1cXI/Q==?= <z@x.cn>, \"Li, Si\" <li@x.cn>, w@x.cn (Wang Wu)");
        assert_eq!(l.len(), 3);
        assert_eq!(l[0].name.as_deref(), Some("张三"));
        assert_eq!(l[0].address, "z@x.cn");
        assert_eq!(l[1].name.as_deref(), Some("Li, Si"));
        assert_eq!(l[2].name.as_deref(), Some("Wang Wu"));
        assert_eq!(l[2].address, "w@x.cn");
        let g =
            address_list(b"Team: a@x, \"=?utf-8?q?B=C3=B6b?=\" <b@x>;, undisclosed-recipients:;");
        assert_eq!(g.len(), 2);
        assert_eq!(g[1].name.as_deref(), Some("Böb"));
        let mut raw = gbk("王五");
        raw.extend_from_slice(b" <w@x.cn>");
        assert_eq!(address_list(&raw)[0].name.as_deref(), Some("王五"));
        assert_eq!(address_list(b"<@route,@r2:a@b>")[0].address, "a@b");
        assert_eq!(
            address_list(b"<a@b> (=?utf-8?q?Z=C3=BC?=)")[0]
                .name
                .as_deref(),
            Some("Zü")
        );
        assert!(address_list(b"").is_empty());
        assert!(address_list(b"<").is_empty());
        assert_eq!(address_list(b"(unclosed").len(), 0);
    }

    #[test]
    fn rfc2231_parameters() {
        let p = Params::parse(
            b"attachment; filename*0*=UTF-8''%E4%B8%AD%E6%96%87; filename*1*=%E6%8A%A5%E5%91%8A; filename*2=.doc",
        );
        assert_eq!(p.value, "attachment");
        assert_eq!(p.get("filename").as_deref(), Some("中文报告.doc"));
        let p = Params::parse(b"text/plain; name*=gb2312''%D6%D0%CE%C4.txt; charset=\"GBK\"");
        assert_eq!(p.get("name").as_deref(), Some("中文.txt"));
        assert_eq!(p.raw("charset").as_deref(), Some("GBK"));
        let p = Params::parse(b"application/octet-stream; name=\"=?GB2312?B?1tDOxC5kb2M=?=\"");
        assert_eq!(p.get("name").as_deref(), Some("中文.doc"));
        let mut raw = b"attachment; filename=\"".to_vec();
        raw.extend(gbk("附件.xls"));
        raw.extend(b"\"");
        assert_eq!(
            Params::parse(&raw).get("filename").as_deref(),
            Some("附件.xls")
        );
        let p = Params::parse(b"multipart/mixed; boundary=\"a;b\\\"c\"; x");
        assert_eq!(p.raw("boundary").as_deref(), Some("a;b\"c"));
    }

    #[test]
    fn dispositions() {
        assert_eq!(
            content_disposition("attachment", "a.txt"),
            "attachment; filename=\"a.txt\""
        );
        assert_eq!(
            content_disposition("inline", "中文.doc"),
            "inline; filename=\"__.doc\"; filename*=UTF-8''%E4%B8%AD%E6%96%87.doc"
        );
        let evil = content_disposition("x\r\nSet-Cookie: a", "a\"\r\nX: y\\..\\..\\b%.txt");
        assert!(!evil.contains('\r') && !evil.contains('\n'));
        assert!(
            evil.starts_with("attachment; filename=\"b_.txt\""),
            "{evil}"
        );
        assert_eq!(
            content_disposition("attachment", "../.."),
            "attachment; filename=\"attachment\""
        );
    }
}
