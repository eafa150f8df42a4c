//! The list's changes to a post: the RFC 2369 and RFC 2919 header fields
//! (and RFC 8058's one-click unsubscription), `Precedence: list`, the
//! subject prefix and the footer.
//!
//! The header is edited as bytes, field by field: fields are kept exactly
//! as they came (an RFC 2047 subject in GB2312 stays the same bytes), so
//! nothing is decoded and encoded again. The subject prefix goes in front
//! of the original value; a prefix that is not ASCII is an encoded-word of
//! its own that carries the space after it (white space between two
//! encoded-words is not shown, RFC 2047 section 6.2). A subject that shows
//! the prefix already (a reply) gets no second one.
//!
//! The footer: appended to a plain-text body in 7bit or 8bit; added as a
//! last part of a multipart/mixed; for anything else (HTML, alternative,
//! base64 text) the message is wrapped in a multipart/mixed with the
//! footer as a second part. A signed or encrypted message
//! (multipart/signed, multipart/encrypted, application/pkcs7-mime) gets no
//! footer: any change would break its signature.

use base64::Engine;

use super::{held::APPROVED_HEADER, List, Policy};

/// Fields of the post that the list replaces or removes.
const DROPPED: &[&str] = &[
    "list-id",
    "list-help",
    "list-post",
    "list-subscribe",
    "list-unsubscribe",
    "list-unsubscribe-post",
    "list-owner",
    "list-archive",
    "precedence",
    "return-path",
    "delivered-to",
];

/// One header field: its name and its raw bytes (name, value, folding and
/// line end).
#[derive(Debug, Clone)]
pub struct Field {
    pub name: String,
    pub raw: Vec<u8>,
}

impl Field {
    /// The value, unfolded, without the name and the line end.
    pub fn value(&self) -> Vec<u8> {
        let v = &self.raw[self.name.len() + 1..];
        let mut out: Vec<u8> = v
            .iter()
            .copied()
            .filter(|&b| b != b'\r' && b != b'\n')
            .collect();
        while out.first().is_some_and(|b| b.is_ascii_whitespace()) {
            out.remove(0);
        }
        out
    }
}

/// A message split into header fields and body.
#[derive(Debug, Clone)]
pub struct Parsed<'a> {
    pub fields: Vec<Field>,
    pub body: &'a [u8],
    /// `\r\n` when the header uses it, else `\n`.
    pub eol: &'static [u8],
}

/// Splits `raw` at the end of its header.
pub fn parse(raw: &[u8]) -> Parsed<'_> {
    let eol: &'static [u8] = match raw.iter().position(|&b| b == b'\n') {
        Some(i) if i > 0 && raw[i - 1] == b'\r' => b"\r\n",
        _ => b"\n",
    };
    let mut fields: Vec<Field> = Vec::new();
    let mut pos = 0;
    let body_start;
    loop {
        if pos >= raw.len() {
            body_start = raw.len();
            break;
        }
        let end = raw[pos..]
            .iter()
            .position(|&b| b == b'\n')
            .map(|i| pos + i + 1)
            .unwrap_or(raw.len());
        let line = &raw[pos..end];
        if line == b"\n" || line == b"\r\n" {
            body_start = end;
            break;
        }
        if line[0] == b' ' || line[0] == b'\t' {
            if let Some(f) = fields.last_mut() {
                f.raw.extend_from_slice(line);
                pos = end;
                continue;
            }
        }
        match line.iter().position(|&b| b == b':') {
            Some(c) if c > 0 && line[..c].iter().all(|b| b.is_ascii_graphic()) => {
                fields.push(Field {
                    name: String::from_utf8_lossy(&line[..c]).into_owned(),
                    raw: line.to_vec(),
                });
            }
            // Not a header line: the body starts here (no blank line).
            _ => {
                body_start = pos;
                break;
            }
        }
        pos = end;
    }
    Parsed {
        fields,
        body: &raw[body_start..],
        eol,
    }
}

impl Parsed<'_> {
    /// The first field named `name` (case-insensitive), unfolded.
    pub fn get(&self, name: &str) -> Option<Vec<u8>> {
        self.fields
            .iter()
            .find(|f| f.name.eq_ignore_ascii_case(name))
            .map(Field::value)
    }

    /// Every field named `name`, unfolded.
    pub fn all(&self, name: &str) -> Vec<Vec<u8>> {
        self.fields
            .iter()
            .filter(|f| f.name.eq_ignore_ascii_case(name))
            .map(Field::value)
            .collect()
    }

    /// The ids of every `List-Id:` (the text between `<` and `>`).
    pub fn list_ids(&self) -> Vec<String> {
        self.all("List-Id")
            .iter()
            .filter_map(|v| {
                let s = String::from_utf8_lossy(v);
                let a = s.rfind('<')?;
                let b = s[a..].find('>')? + a;
                Some(s[a + 1..b].trim().to_string())
            })
            .collect()
    }
}

/// The archive's URL under the webmail's (`lists.web_url`). Empty
/// `web_url`: none.
pub fn archive_url(web_url: &str, list: &List) -> Option<String> {
    (!web_url.is_empty()).then(|| {
        format!(
            "{web_url}{}list-archive={}",
            if web_url.contains('?') { '&' } else { '?' },
            url_escape(&list.address)
        )
    })
}

fn url_escape(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~@".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// An RFC 2047 encoded-word (UTF-8, B) for non-ASCII text; ASCII as is.
pub fn encode_word(s: &str) -> String {
    if s.is_ascii() {
        return s.to_string();
    }
    format!(
        "=?UTF-8?B?{}?=",
        base64::engine::general_purpose::STANDARD.encode(s.as_bytes())
    )
}

/// The list's header fields, in the order they are added.
pub fn list_fields(list: &List, web_url: &str) -> Vec<(String, String)> {
    let mailto = |r: &super::Role| format!("<mailto:{}>", list.role_address(r));
    let mut v = Vec::new();
    let phrase = if list.description.is_empty() {
        String::new()
    } else if list.description.is_ascii() {
        // A quoted string, so any ASCII description is a valid phrase.
        format!(
            "\"{}\" ",
            list.description.replace('\\', "\\\\").replace('"', "\\\"")
        )
    } else {
        format!("{} ", encode_word(&list.description))
    };
    v.push(("List-Id".into(), format!("{phrase}<{}>", list.list_id())));
    v.push(("List-Help".into(), mailto(&super::Role::Help)));
    v.push((
        "List-Post".into(),
        if list.policy == Policy::Announce {
            // RFC 2369 section 3.4: NO for a list that takes no posts.
            "NO".into()
        } else {
            mailto(&super::Role::Post)
        },
    ));
    v.push(("List-Subscribe".into(), mailto(&super::Role::Subscribe)));
    // The shared copy names no member, so it carries no one-click link:
    // each remote member's copy gets its own ([`with_one_click`]).
    v.push(("List-Unsubscribe".into(), mailto(&super::Role::Unsubscribe)));
    if list.archive {
        if let Some(u) = archive_url(web_url, list) {
            v.push(("List-Archive".into(), format!("<{u}>")));
        }
    }
    v.push(("List-Owner".into(), mailto(&super::Role::Owner)));
    v.push(("Precedence".into(), "list".into()));
    v
}

/// A member's own copy of the post `data` ([`rewrite`]'s output): its
/// `List-Unsubscribe:` gets the member's one-click URL in front of the
/// mailto, and `List-Unsubscribe-Post: List-Unsubscribe=One-Click` follows
/// (RFC 8058 3.1: "The List-Unsubscribe header field MUST contain one HTTPS
/// URI. It MAY contain other non-HTTP/S URIs such as MAILTO:"). The link
/// carries the member's token, so this copy is the member's alone.
pub fn with_one_click(data: &[u8], link: &str) -> Vec<u8> {
    let p = parse(data);
    let mut out = Vec::with_capacity(data.len() + link.len() + 80);
    let mut done = false;
    for f in &p.fields {
        if !done && f.name.eq_ignore_ascii_case("List-Unsubscribe") {
            done = true;
            let value = String::from_utf8_lossy(&f.value()).into_owned();
            out.extend_from_slice(format!("List-Unsubscribe: <{link}>, {value}").as_bytes());
            out.extend_from_slice(p.eol);
            out.extend_from_slice(b"List-Unsubscribe-Post: List-Unsubscribe=One-Click");
            out.extend_from_slice(p.eol);
            continue;
        }
        out.extend_from_slice(&f.raw);
    }
    if !done {
        return data.to_vec();
    }
    let head_len: usize = p.fields.iter().map(|f| f.raw.len()).sum();
    out.extend_from_slice(&data[head_len..]);
    out
}

/// The post as the list sends it.
pub fn rewrite(list: &List, raw: &[u8], web_url: &str) -> Vec<u8> {
    let p = parse(raw);
    let eol = p.eol;
    let mut out = Vec::with_capacity(raw.len() + 1024);
    for (name, value) in list_fields(list, web_url) {
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(eol);
    }
    let footer = footer_plan(list, &p);
    let mut have_subject = false;
    for f in &p.fields {
        let lname = f.name.to_ascii_lowercase();
        if DROPPED.contains(&lname.as_str()) || f.name.eq_ignore_ascii_case(APPROVED_HEADER) {
            continue;
        }
        if matches!(footer, Footer::Wrap) && is_content_field(&lname) {
            continue;
        }
        if lname == "subject" {
            have_subject = true;
            out.extend_from_slice(&subject(list, f, eol));
            continue;
        }
        out.extend_from_slice(&f.raw);
        if !f.raw.ends_with(b"\n") {
            out.extend_from_slice(eol);
        }
    }
    if !have_subject && !list.subject_prefix.is_empty() {
        out.extend_from_slice(b"Subject: ");
        out.extend_from_slice(encode_word(&list.subject_prefix).as_bytes());
        out.extend_from_slice(eol);
    }
    match footer {
        Footer::None => {
            out.extend_from_slice(eol);
            out.extend_from_slice(p.body);
        }
        Footer::Append => {
            out.extend_from_slice(eol);
            out.extend_from_slice(p.body);
            if !p.body.is_empty() && !p.body.ends_with(b"\n") {
                out.extend_from_slice(eol);
            }
            out.extend_from_slice(&lines(&list.footer, eol));
        }
        Footer::Part(boundary) => {
            out.extend_from_slice(eol);
            let close = format!("--{boundary}--");
            match find_line(p.body, close.as_bytes()) {
                Some(at) => {
                    out.extend_from_slice(&p.body[..at]);
                    out.extend_from_slice(&footer_part(&boundary, &list.footer, eol));
                    out.extend_from_slice(&p.body[at..]);
                }
                // No closing delimiter: leave the body as it is.
                None => out.extend_from_slice(p.body),
            }
        }
        Footer::Wrap => {
            let boundary = format!("=_kmp_list_{:016x}", super::distribute::fnv64_bytes(raw));
            out.extend_from_slice(b"MIME-Version: 1.0");
            out.extend_from_slice(eol);
            out.extend_from_slice(
                format!("Content-Type: multipart/mixed; boundary=\"{boundary}\"").as_bytes(),
            );
            out.extend_from_slice(eol);
            out.extend_from_slice(eol);
            out.extend_from_slice(format!("--{boundary}").as_bytes());
            out.extend_from_slice(eol);
            for f in p
                .fields
                .iter()
                .filter(|f| is_content_field(&f.name.to_ascii_lowercase()))
            {
                out.extend_from_slice(&f.raw);
            }
            out.extend_from_slice(eol);
            out.extend_from_slice(p.body);
            if !p.body.ends_with(b"\n") {
                out.extend_from_slice(eol);
            }
            out.extend_from_slice(&footer_part(&boundary, &list.footer, eol));
            out.extend_from_slice(format!("--{boundary}--").as_bytes());
            out.extend_from_slice(eol);
        }
    }
    out
}

fn is_content_field(lname: &str) -> bool {
    lname.starts_with("content-") || lname == "mime-version"
}

/// How the footer goes in.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Footer {
    None,
    Append,
    /// A new last part of the multipart/mixed with this boundary.
    Part(String),
    Wrap,
}

fn footer_plan(list: &List, p: &Parsed<'_>) -> Footer {
    if list.footer.is_empty() {
        return Footer::None;
    }
    let ct = p
        .get("Content-Type")
        .map(|v| String::from_utf8_lossy(&v).into_owned())
        .unwrap_or_default();
    let lct = ct.to_ascii_lowercase();
    let kind = lct.split(';').next().unwrap_or("").trim().to_string();
    if matches!(
        kind.as_str(),
        "multipart/signed"
            | "multipart/encrypted"
            | "application/pkcs7-mime"
            | "application/x-pkcs7-mime"
            | "application/pgp-encrypted"
    ) {
        return Footer::None;
    }
    let cte = p
        .get("Content-Transfer-Encoding")
        .map(|v| String::from_utf8_lossy(&v).trim().to_ascii_lowercase())
        .unwrap_or_default();
    let plain_cte = matches!(cte.as_str(), "" | "7bit" | "8bit");
    if kind.is_empty() || kind == "text/plain" {
        let charset = param(&ct, "charset")
            .unwrap_or_default()
            .to_ascii_lowercase();
        let fits = list.footer.is_ascii()
            || (matches!(charset.as_str(), "utf-8" | "utf8") && cte != "7bit");
        if plain_cte && fits {
            return Footer::Append;
        }
        return Footer::Wrap;
    }
    if kind == "multipart/mixed" {
        if let Some(b) = param(&ct, "boundary") {
            return Footer::Part(b);
        }
        return Footer::None;
    }
    if kind.starts_with("multipart/") && param(&ct, "boundary").is_none() {
        return Footer::None;
    }
    Footer::Wrap
}

/// A parameter of a Content-Type value (quoted or not).
fn param(ct: &str, name: &str) -> Option<String> {
    for part in ct.split(';').skip(1) {
        let (k, v) = part.split_once('=')?;
        if k.trim().eq_ignore_ascii_case(name) {
            let v = v.trim();
            let v = v
                .strip_prefix('"')
                .and_then(|x| x.split('"').next())
                .unwrap_or(v);
            return Some(v.to_string());
        }
    }
    None
}

/// The footer as a MIME part, starting with its delimiter line.
fn footer_part(boundary: &str, footer: &str, eol: &[u8]) -> Vec<u8> {
    let mut out = format!("--{boundary}").into_bytes();
    out.extend_from_slice(eol);
    out.extend_from_slice(b"Content-Type: text/plain; charset=utf-8");
    out.extend_from_slice(eol);
    out.extend_from_slice(b"Content-Disposition: inline");
    out.extend_from_slice(eol);
    if footer.is_ascii() {
        out.extend_from_slice(b"Content-Transfer-Encoding: 7bit");
        out.extend_from_slice(eol);
        out.extend_from_slice(eol);
        out.extend_from_slice(&lines(footer, eol));
    } else {
        out.extend_from_slice(b"Content-Transfer-Encoding: base64");
        out.extend_from_slice(eol);
        out.extend_from_slice(eol);
        let text = String::from_utf8_lossy(&lines(footer, b"\r\n")).into_owned();
        let b = base64::engine::general_purpose::STANDARD.encode(text.as_bytes());
        for chunk in b.as_bytes().chunks(76) {
            out.extend_from_slice(chunk);
            out.extend_from_slice(eol);
        }
    }
    out
}

/// `text` with each line ended by `eol`.
fn lines(text: &str, eol: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for l in text.lines() {
        out.extend_from_slice(l.as_bytes());
        out.extend_from_slice(eol);
    }
    out
}

/// Where a line starting with `needle` begins in `body`.
fn find_line(body: &[u8], needle: &[u8]) -> Option<usize> {
    let mut last = None;
    let mut pos = 0;
    while pos < body.len() {
        if body[pos..].starts_with(needle) {
            last = Some(pos);
        }
        match body[pos..].iter().position(|&b| b == b'\n') {
            Some(i) => pos += i + 1,
            None => break,
        }
    }
    last
}

/// The Subject field with the prefix, unless it shows it already.
fn subject(list: &List, f: &Field, eol: &[u8]) -> Vec<u8> {
    let prefix = list.subject_prefix.trim();
    if prefix.is_empty() {
        return f.raw.clone();
    }
    let value = f.value();
    let shown = crate::mime::header_text(&value);
    if shown.to_lowercase().contains(&prefix.to_lowercase()) {
        return f.raw.clone();
    }
    let mut out = b"Subject: ".to_vec();
    if prefix.is_ascii() {
        out.extend_from_slice(prefix.as_bytes());
        out.push(b' ');
    } else {
        out.extend_from_slice(encode_word(&format!("{prefix} ")).as_bytes());
        out.push(b' ');
    }
    // The original value as it came, folding kept.
    let raw_value = &f.raw[f.name.len() + 1..];
    let start = raw_value
        .iter()
        .position(|b| !matches!(b, b' ' | b'\t'))
        .unwrap_or(raw_value.len());
    out.extend_from_slice(&raw_value[start..]);
    if !out.ends_with(b"\n") {
        out.extend_from_slice(eol);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::userdb::Address;

    fn list() -> List {
        let mut l = List::new(&Address::parse("news@example.test").unwrap(), 0);
        l.description = "The News".into();
        l.archive = true;
        l
    }

    fn header(out: &[u8], name: &str) -> Option<String> {
        parse(out)
            .get(name)
            .map(|v| String::from_utf8_lossy(&v).into_owned())
    }

    #[test]
    fn list_fields_are_added_and_old_ones_replaced() {
        let raw = b"List-Id: <other.example.org>\nPrecedence: bulk\nFrom: a@x.test\nSubject: hi\n\nbody\n";
        let out = rewrite(&list(), raw, "https://mail.example.test/webmail");
        let p = parse(&out);
        assert_eq!(p.list_ids(), ["news.example.test"]);
        assert_eq!(
            header(&out, "List-Id").unwrap(),
            "\"The News\" <news.example.test>"
        );
        assert_eq!(header(&out, "Precedence").unwrap(), "list");
        assert_eq!(
            header(&out, "List-Post").unwrap(),
            "<mailto:news@example.test>"
        );
        assert_eq!(
            header(&out, "List-Help").unwrap(),
            "<mailto:news-help@example.test>"
        );
        // The shared copy: mailto only, no one-click (it names no member).
        assert_eq!(
            header(&out, "List-Unsubscribe").unwrap(),
            "<mailto:news-unsubscribe@example.test>"
        );
        assert!(header(&out, "List-Unsubscribe-Post").is_none());
        // A member's copy: its link in front, and the one-click field.
        let link = "https://mail.example.test/webmail/unsubscribe?list=news%40example.test&c=o.x";
        let mine = with_one_click(&out, link);
        assert_eq!(
            header(&mine, "List-Unsubscribe").unwrap(),
            format!("<{link}>, <mailto:news-unsubscribe@example.test>")
        );
        assert_eq!(
            header(&mine, "List-Unsubscribe-Post").unwrap(),
            "List-Unsubscribe=One-Click"
        );
        assert_eq!(parse(&mine).all("List-Unsubscribe").len(), 1);
        assert_eq!(parse(&mine).body, b"body\n");
        assert_eq!(mine.len(), out.len() + link.len() + 4 + 50);
        let crlf = with_one_click(
            b"List-Unsubscribe: <mailto:a@b.test>\r\nSubject: x\r\n\r\nb\r\n",
            "https://x.test/u",
        );
        assert_eq!(
            crlf,
            b"List-Unsubscribe: <https://x.test/u>, <mailto:a@b.test>\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\r\nSubject: x\r\n\r\nb\r\n"
        );
        assert!(header(&out, "List-Archive")
            .unwrap()
            .contains("list-archive=news@example.test"));
        assert_eq!(p.all("Precedence").len(), 1);
        assert_eq!(p.body, b"body\n");
        // Without a web URL: mailto only, and no one-click field.
        let out = rewrite(&list(), raw, "");
        assert!(header(&out, "List-Unsubscribe-Post").is_none());
        assert!(header(&out, "List-Archive").is_none());
    }

    #[test]
    fn the_subject_prefix_is_added_once_and_keeps_encoded_subjects() {
        let mut l = list();
        l.subject_prefix = "[news]".into();
        let out = rewrite(&l, b"Subject: hello\n\nx\n", "");
        assert_eq!(header(&out, "Subject").unwrap(), "[news] hello");
        let out = rewrite(&l, b"Subject: Re: [News] hello\n\nx\n", "");
        assert_eq!(header(&out, "Subject").unwrap(), "Re: [News] hello");
        // GB2312 in an encoded-word: the same bytes after the prefix.
        let gb = "Subject: =?GB2312?B?1tDOxNPKvP4=?=\n\nx\n";
        let out = rewrite(&l, gb.as_bytes(), "");
        let s = header(&out, "Subject").unwrap();
        assert_eq!(s, "[news] =?GB2312?B?1tDOxNPKvP4=?=");
        assert_eq!(crate::mime::header_text(s.as_bytes()), "[news] 中文邮件");
        // A Chinese prefix: its own encoded-word with the space inside.
        l.subject_prefix = "[新闻]".into();
        let out = rewrite(&l, gb.as_bytes(), "");
        let s = header(&out, "Subject").unwrap();
        assert_eq!(crate::mime::header_text(s.as_bytes()), "[新闻] 中文邮件");
        let again = rewrite(&l, &out, "");
        assert_eq!(header(&again, "Subject").unwrap(), s);
    }

    #[test]
    fn the_footer_goes_where_it_cannot_break_anything() {
        let mut l = list();
        l.footer = "-- \nnews mailing list".into();
        let out = rewrite(&l, b"Subject: a\n\nbody\n", "");
        assert!(
            out.ends_with(b"\n\nbody\n-- \nnews mailing list\n"),
            "{}",
            String::from_utf8_lossy(&out)
        );
        let mixed = b"Content-Type: multipart/mixed; boundary=\"b1\"\n\n--b1\nContent-Type: text/plain\n\nhi\n--b1--\n";
        let out = rewrite(&l, mixed, "");
        let s = String::from_utf8_lossy(&out);
        assert!(s.contains("hi\n--b1\nContent-Type: text/plain; charset=utf-8\nContent-Disposition: inline\nContent-Transfer-Encoding: 7bit\n\n-- \nnews mailing list\n--b1--\n"), "{s}");
        let html = b"Content-Type: text/html; charset=utf-8\nSubject: a\n\n<p>hi</p>\n";
        let out = rewrite(&l, html, "");
        let s = String::from_utf8_lossy(&out);
        assert!(
            s.contains("Content-Type: multipart/mixed; boundary="),
            "{s}"
        );
        assert!(
            s.contains("\nContent-Type: text/html; charset=utf-8\n\n<p>hi</p>\n--"),
            "{s}"
        );
        let parsed = mail_parser::MessageParser::default()
            .parse(&out[..])
            .unwrap();
        assert_eq!(parsed.parts.len(), 3, "{s}");
        let signed = b"Content-Type: multipart/signed; boundary=s; protocol=\"application/pgp-signature\"\n\n--s\n\nsigned\n--s--\n";
        let out = rewrite(&l, signed, "");
        assert!(out.ends_with(&signed[signed.len() - 25..]));
        assert!(!String::from_utf8_lossy(&out).contains("news mailing list"));
        // A Chinese footer on an ASCII body: wrapped, the footer in base64 UTF-8.
        l.footer = "新闻邮件列表".into();
        let out = rewrite(&l, b"Subject: a\n\nbody\n", "");
        let parsed = mail_parser::MessageParser::default()
            .parse(&out[..])
            .unwrap();
        assert_eq!(parsed.body_text(1).unwrap().trim(), "新闻邮件列表");
        // CRLF messages stay CRLF.
        l.footer = "f".into();
        let out = rewrite(&l, b"Subject: a\r\n\r\nbody\r\n", "");
        assert!(out.ends_with(b"\r\n\r\nbody\r\nf\r\n"));
        assert!(!out.windows(2).any(|w| w[1] == b'\n' && w[0] != b'\r'));
    }
}
