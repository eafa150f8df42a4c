//! Which parts of a message are its text, its HTML and its attachments
//! (RFC 2046 5.1: mixed, alternative, related; RFC 2387; RFC 2183), and
//! one part by its IMAP section.

use std::collections::HashMap;

use mail_parser::{Message, MessageParser, MessagePart, PartType};

use super::header::{address_list, fields, file_name, header_text, Params};
use super::html::sanitise;
use super::survey::survey;
use super::transfer::{decode_base64, decode_qp};
use super::tree::{embedded, find};
use super::{charset, Attachment, Part, View, ViewOptions};

/// Deepest section number [`part`] accepts, and most digits in one of its
/// numbers.
const MAX_SECTION_DEPTH: usize = 32;

/// The bodies and attachments found under one part.
#[derive(Default)]
struct Found {
    text: Option<String>,
    html: Option<String>,
    attachments: Vec<Attachment>,
}

/// The context of one walk over a message.
struct Walk {
    /// The sender's top-level domain, a hint for charset detection.
    tld: Option<Vec<u8>>,
    /// Every Content-ID of the message (lower-cased) to its section.
    cids: HashMap<String, String>,
}

pub(crate) fn view(raw: &[u8], opts: &ViewOptions) -> View {
    let msg = MessageParser::default().parse(raw);
    let header_end = msg
        .as_ref()
        .and_then(|m| m.parts.first())
        .map_or(raw.len(), |p| (p.offset_body as usize).min(raw.len()));
    let hdr = fields(&raw[..header_end]);
    let first = |name: &str| {
        hdr.iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
    };
    let all = |name: &str| {
        let mut v = Vec::new();
        for (_, val) in hdr.iter().filter(|(n, _)| n == name) {
            if !v.is_empty() {
                v.push(b',');
            }
            v.extend_from_slice(val);
        }
        address_list(&v)
    };
    let from = all("from");
    let tld = from
        .first()
        .and_then(|m| m.address.rsplit('.').next())
        .map(|t| t.to_ascii_lowercase().into_bytes());
    let mut view = View {
        subject: first("subject").map(header_text).unwrap_or_default(),
        to: all("to"),
        cc: all("cc"),
        reply_to: all("reply-to"),
        from,
        date: msg
            .as_ref()
            .and_then(|m| m.date())
            .filter(|d| d.is_valid())
            .map(|d| d.to_timestamp()),
        date_text: first("date").map(header_text).filter(|d| !d.is_empty()),
        message_id: first("message-id")
            .map(header_text)
            .map(|id| {
                id.trim()
                    .trim_start_matches('<')
                    .trim_end_matches('>')
                    .to_string()
            })
            .filter(|id| !id.is_empty()),
        priority: priority(&hdr),
        ..View::default()
    };
    let Some(msg) = msg else {
        return view;
    };
    let mut walk = Walk {
        tld,
        cids: HashMap::new(),
    };
    collect_cids(&msg, 0, "", &mut walk.cids);
    let found = walk.part(&msg, 0, "");
    let mut used = std::collections::HashSet::new();
    if let Some(h) = found.html {
        let urls = walk
            .cids
            .iter()
            .map(|(id, sec)| (id.clone(), (opts.cid_url)(sec)))
            .collect();
        let s = if opts.write_html {
            sanitise(&h, opts.allow_remote, urls)
        } else {
            survey(&h, opts.allow_remote, urls)
        };
        used = s.used_cids;
        view.html = Some(s.html);
    }
    view.text = found.text;
    view.attachments = found
        .attachments
        .into_iter()
        .filter(|a| {
            !a.content_id
                .as_ref()
                .is_some_and(|id| used.contains(&id.to_lowercase()))
        })
        .collect();
    view
}

/// 1 (highest) to 5 (lowest) from X-Priority, else Importance or
/// X-MSMail-Priority.
fn priority(hdr: &[(String, Vec<u8>)]) -> Option<u8> {
    let get = |name: &str| {
        hdr.iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| String::from_utf8_lossy(v).trim().to_ascii_lowercase())
    };
    if let Some(p) = get("x-priority") {
        if let Some(d) = p.chars().next().and_then(|c| c.to_digit(10)) {
            if (1..=5).contains(&d) {
                return Some(d as u8);
            }
        }
    }
    for name in ["importance", "x-msmail-priority", "priority"] {
        match get(name).as_deref() {
            Some("high" | "urgent") => return Some(1),
            Some("normal") => return Some(3),
            Some("low" | "non-urgent") => return Some(5),
            _ => {}
        }
    }
    None
}

/// The header block, Content-Type and Content-Disposition of a part.
struct Meta {
    content_type: Params,
    disposition: Params,
    cte: Option<String>,
    content_id: Option<String>,
}

fn meta(m: &Message, p: &MessagePart) -> Meta {
    let raw = m.raw_message.as_ref();
    let (a, b) = (
        p.offset_header as usize,
        (p.offset_body as usize).min(raw.len()),
    );
    let hdr = fields(&raw[a.min(b)..b]);
    let get = |name: &str| {
        hdr.iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
    };
    let mut content_type = get("content-type").map(Params::parse).unwrap_or_default();
    if !content_type.value.contains('/') {
        // RFC 2045 5.2: the default is text/plain; a digest's parts are
        // messages (RFC 2046 5.1.5), which mail-parser tells us.
        content_type.value = match p.body {
            PartType::Message(_) => "message/rfc822".into(),
            _ => "text/plain".into(),
        };
    }
    Meta {
        content_type,
        disposition: get("content-disposition")
            .map(Params::parse)
            .unwrap_or_default(),
        cte: get("content-transfer-encoding")
            .map(|v| String::from_utf8_lossy(v).trim().to_ascii_lowercase()),
        content_id: get("content-id")
            .map(|v| {
                String::from_utf8_lossy(v)
                    .trim()
                    .trim_start_matches('<')
                    .trim_end_matches('>')
                    .trim()
                    .to_string()
            })
            .filter(|v| !v.is_empty()),
    }
}

/// The content of a part with its transfer encoding removed.
fn content(m: &Message, p: &MessagePart, cte: Option<&str>) -> Vec<u8> {
    let raw = m.raw_message.as_ref();
    let (a, b) = (
        p.offset_body as usize,
        (p.offset_end as usize).min(raw.len()),
    );
    let body = &raw[a.min(b)..b];
    match cte {
        Some("base64") => decode_base64(body),
        Some("quoted-printable") => decode_qp(body),
        _ => body.to_vec(),
    }
}

/// The size of a part's content without its transfer encoding, counted
/// without decoding base64 (an attachment may be large).
fn decoded_len(m: &Message, p: &MessagePart, cte: Option<&str>) -> u64 {
    let raw = m.raw_message.as_ref();
    let (a, b) = (
        p.offset_body as usize,
        (p.offset_end as usize).min(raw.len()),
    );
    let body = &raw[a.min(b)..b];
    match cte {
        Some("base64") => {
            // As transfer::decode_base64 reads it: alphabet characters up
            // to the first "=", six bits each, whole octets only.
            let digits = body
                .iter()
                .take_while(|c| **c != b'=')
                .filter(|c| c.is_ascii_alphanumeric() || **c == b'+' || **c == b'/')
                .count() as u64;
            digits * 6 / 8
        }
        Some("quoted-printable") => decode_qp(body).len() as u64,
        _ => body.len() as u64,
    }
}

fn child_section(sec: &str, n: usize) -> String {
    if sec.is_empty() {
        n.to_string()
    } else {
        format!("{sec}.{n}")
    }
}

/// Every Content-ID in the message (not inside nested messages) to its
/// section.
fn collect_cids(m: &Message, id: usize, sec: &str, out: &mut HashMap<String, String>) {
    let Some(p) = m.parts.get(id) else { return };
    match &p.body {
        PartType::Multipart(children) => {
            for (i, c) in children.iter().enumerate() {
                collect_cids(m, *c as usize, &child_section(sec, i + 1), out);
            }
        }
        _ => {
            if let Some(cid) = meta(m, p).content_id {
                let s = if sec.is_empty() {
                    "1".to_string()
                } else {
                    sec.to_string()
                };
                out.entry(cid.to_lowercase()).or_insert(s);
            }
        }
    }
}

impl Walk {
    fn part(&self, m: &Message, id: usize, sec: &str) -> Found {
        let mut found = Found::default();
        let Some(p) = m.parts.get(id) else {
            return found;
        };
        let meta = meta(m, p);
        let ct = meta.content_type.value.as_str();
        if let PartType::Multipart(children) = &p.body {
            let kids: Vec<(usize, String)> = children
                .iter()
                .enumerate()
                .map(|(i, c)| (*c as usize, child_section(sec, i + 1)))
                .collect();
            match ct {
                "multipart/alternative" => {
                    // The last alternative is the sender's favourite (RFC
                    // 2046 5.1.4): the last with text and the last with
                    // HTML are kept, with what they carry.
                    let alts: Vec<Found> = kids.iter().map(|(c, s)| self.part(m, *c, s)).collect();
                    let ti = alts
                        .iter()
                        .rposition(|f| f.text.is_some() && f.html.is_none());
                    let hi = alts.iter().rposition(|f| f.html.is_some());
                    let ti = ti.or_else(|| alts.iter().rposition(|f| f.text.is_some()));
                    for (i, f) in alts.into_iter().enumerate() {
                        if Some(i) == hi {
                            found.html = f.html;
                            found.attachments.extend(f.attachments);
                            if hi == ti {
                                found.text = f.text;
                            }
                        } else if Some(i) == ti {
                            found.text = f.text;
                            found.attachments.extend(f.attachments);
                        } else if f.text.is_none() && f.html.is_none() {
                            // An alternative nothing can show inline (the
                            // text/calendar of an invitation) is offered
                            // as a file.
                            found.attachments.extend(f.attachments);
                        }
                    }
                    if found.text.is_none() && found.html.is_none() {
                        if let Some((c, s)) = kids.last() {
                            return self.part(m, *c, s);
                        }
                    }
                }
                "multipart/related" => {
                    // The root is the "start" part, else the first (RFC
                    // 2387 3.2); the rest are its resources.
                    let start = meta.content_type.raw("start").map(|s| {
                        s.trim_start_matches('<')
                            .trim_end_matches('>')
                            .to_lowercase()
                    });
                    let root = start
                        .and_then(|s| {
                            kids.iter().position(|(c, _)| {
                                m.parts
                                    .get(*c)
                                    .and_then(|p| meta_cid(m, p))
                                    .is_some_and(|id| id == s)
                            })
                        })
                        .unwrap_or(0);
                    for (i, (c, s)) in kids.iter().enumerate() {
                        let f = self.part(m, *c, s);
                        if i == root {
                            found.text = f.text;
                            found.html = f.html;
                            found.attachments.extend(f.attachments);
                        } else {
                            // A resource is never a body.
                            found.attachments.extend(f.attachments);
                            if let Some(a) = self.resource(m, *c, s) {
                                found.attachments.push(a);
                            }
                        }
                    }
                }
                _ => {
                    for (c, s) in &kids {
                        let f = self.part(m, *c, s);
                        merge(&mut found, f);
                    }
                }
            }
            return found;
        }
        let sec = if sec.is_empty() {
            "1".to_string()
        } else {
            sec.to_string()
        };
        let name = meta
            .disposition
            .get("filename")
            .or_else(|| meta.content_type.get("name"))
            .map(|n| file_name(&n))
            .filter(|n| !n.is_empty());
        let attachment = meta.disposition.value == "attachment";
        if !attachment && name.is_none() && (ct == "text/plain" || ct == "text/html") {
            let bytes = content(m, p, meta.cte.as_deref());
            let mut cs = meta.content_type.raw("charset").filter(|c| !c.is_empty());
            if cs.is_none() && ct == "text/html" {
                cs = meta_charset(&bytes);
            }
            let text = charset::decode_hinted(&bytes, cs.as_deref(), self.tld.as_deref());
            let text = text.replace("\r\n", "\n");
            if ct == "text/html" {
                found.html = Some(text);
            } else if meta
                .content_type
                .raw("format")
                .is_some_and(|f| f.eq_ignore_ascii_case("flowed"))
            {
                let delsp = meta
                    .content_type
                    .raw("delsp")
                    .is_some_and(|d| d.eq_ignore_ascii_case("yes"));
                found.text = Some(unflow(&text, delsp));
            } else {
                found.text = Some(text);
            }
            return found;
        }
        found
            .attachments
            .push(self.attachment(m, p, &meta, &sec, name));
        found
    }

    /// A non-root part of multipart/related: listed as an attachment (the
    /// caller drops it when the HTML uses it).
    fn resource(&self, m: &Message, id: usize, sec: &str) -> Option<Attachment> {
        let p = m.parts.get(id)?;
        if matches!(p.body, PartType::Multipart(_)) {
            return None;
        }
        let meta = meta(m, p);
        let name = meta
            .disposition
            .get("filename")
            .or_else(|| meta.content_type.get("name"))
            .map(|n| file_name(&n))
            .filter(|n| !n.is_empty());
        // Text resources without a name were turned into bodies by part():
        // here they are attachments like any other resource.
        let ct = meta.content_type.value.as_str();
        if !(ct == "text/plain" || ct == "text/html")
            || name.is_some()
            || meta.disposition.value == "attachment"
        {
            return None;
        }
        Some(self.attachment(m, p, &meta, sec, name))
    }

    fn attachment(
        &self,
        m: &Message,
        p: &MessagePart,
        meta: &Meta,
        sec: &str,
        name: Option<String>,
    ) -> Attachment {
        let ct = meta.content_type.value.clone();
        let size = decoded_len(m, p, meta.cte.as_deref());
        let name = name.unwrap_or_else(|| default_name(p, &ct, sec));
        Attachment {
            section: sec.to_string(),
            name,
            size,
            content_id: meta.content_id.clone(),
            inline: meta.disposition.value == "inline"
                || (meta.disposition.value.is_empty() && meta.content_id.is_some()),
            content_type: ct,
        }
    }
}

fn meta_cid(m: &Message, p: &MessagePart) -> Option<String> {
    meta(m, p).content_id.map(|c| c.to_lowercase())
}

/// Bytes of an HTML body searched for a `<meta>` charset.
const META_PRESCAN: usize = 4096;

/// The charset an HTML body names in a `<meta charset>` or `<meta
/// http-equiv="Content-Type" content="...; charset=...">` near its start,
/// which old mail often has instead of a Content-Type parameter (the
/// prescan of the HTML standard, 13.2.3.2, in short).
fn meta_charset(html: &[u8]) -> Option<String> {
    let head = &html[..html.len().min(META_PRESCAN)];
    let lower = head.to_ascii_lowercase();
    let mut at = 0;
    while let Some(p) = position(&lower[at..], b"<meta") {
        let start = at + p;
        let end = position(&lower[start..], b">").map_or(lower.len(), |e| start + e);
        let tag = &lower[start..end];
        if let Some(c) = position(tag, b"charset") {
            let v = tag[c + 7..]
                .iter()
                .skip_while(|b| matches!(b, b' ' | b'=' | b'"' | b'\''))
                .take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
                .map(|b| *b as char)
                .collect::<String>();
            if !v.is_empty() {
                return Some(v);
            }
        }
        at = end;
    }
    None
}

fn position(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// format=flowed text (RFC 3676) as paragraphs: a line ending in a space
/// is joined to the next one of the same quote depth (4.2), space-stuffing
/// is removed (4.4), with DelSp=yes the trailing space goes too (4.5);
/// the signature separator "-- " is never flowed.
fn unflow(text: &str, delsp: bool) -> String {
    let mut out = String::with_capacity(text.len());
    // The quote depth of the paragraph being joined, if one is open.
    let mut open: Option<usize> = None;
    for line in text.split('\n') {
        let depth = line.bytes().take_while(|b| *b == b'>').count();
        let body = &line[depth..];
        let body = body.strip_prefix(' ').unwrap_or(body);
        if let Some(d) = open {
            if d != depth {
                out.push('\n');
                open = None;
            }
        }
        if open.is_none() {
            out.push_str(&">".repeat(depth));
            if depth > 0 {
                out.push(' ');
            }
        }
        let flowed = body.ends_with(' ') && body != "-- ";
        if flowed {
            out.push_str(if delsp { &body[..body.len() - 1] } else { body });
            open = Some(depth);
        } else {
            out.push_str(body);
            out.push('\n');
            open = None;
        }
    }
    // The split leaves one line after the last line end: it added a line
    // end of its own, which goes.
    let extra = if text.ends_with('\n') {
        out.ends_with("\n\n")
    } else {
        out.ends_with('\n')
    };
    if extra {
        out.pop();
    }
    out
}

/// Bodies found in a later part of a multipart/mixed: the first of each
/// kind is the body, later inline texts are appended to it (a list footer,
/// a forwarded note).
fn merge(found: &mut Found, f: Found) {
    match (&mut found.text, f.text) {
        (Some(t), Some(more)) => {
            t.push_str("\n\n");
            t.push_str(&more);
        }
        (t @ None, more) => *t = more,
        _ => {}
    }
    match (&mut found.html, f.html) {
        (Some(h), Some(more)) => {
            h.push_str("<hr>");
            h.push_str(&more);
        }
        (h @ None, more) => *h = more,
        _ => {}
    }
    found.attachments.extend(f.attachments);
}

/// A name for a part the sender gave none: a message's Subject with
/// `.eml`, else `part-SECTION` with an extension for the type.
fn default_name(p: &MessagePart, ct: &str, sec: &str) -> String {
    if ct == "message/rfc822" || ct == "message/global" {
        if let Some(sub) = embedded(p).or(match &p.body {
            PartType::Message(s) => Some(s),
            _ => None,
        }) {
            let raw = sub.raw_message.as_ref();
            let (start, end) = sub.parts.first().map_or((0, raw.len()), |r| {
                (
                    r.offset_header as usize,
                    (r.offset_body as usize).min(raw.len()),
                )
            });
            let subject = fields(&raw[start.min(end)..end])
                .into_iter()
                .find(|(n, _)| n == "subject")
                .map(|(_, v)| file_name(&header_text(&v)))
                .filter(|s| !s.is_empty());
            if let Some(s) = subject {
                let s: String = s.chars().take(80).collect();
                return format!("{s}.eml");
            }
        }
        return format!("message-{sec}.eml");
    }
    let ext = match ct {
        "text/plain" => "txt",
        "text/html" => "html",
        "text/calendar" => "ics",
        "application/pdf" => "pdf",
        "image/jpeg" => "jpg",
        _ => match ct.split_once('/') {
            Some(("image", sub))
                if sub.len() <= 5 && sub.bytes().all(|b| b.is_ascii_alphanumeric()) =>
            {
                sub
            }
            _ => "bin",
        },
    };
    format!("part-{sec}.{ext}")
}

/// See [`super::part`].
pub(crate) fn part(raw: &[u8], section: &str) -> Option<Part> {
    let mut path = Vec::new();
    for n in section.split('.') {
        if n.is_empty() || n.len() > 6 || !n.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let n: u32 = n.parse().ok()?;
        if n == 0 {
            return None;
        }
        path.push(n);
    }
    if path.is_empty() || path.len() > MAX_SECTION_DEPTH {
        return None;
    }
    let msg = MessageParser::default().parse(raw)?;
    let (m, id) = find(&msg, &path)?;
    let p = m.parts.get(id)?;
    let meta = meta(m, p);
    let bytes = content(m, p, meta.cte.as_deref());
    let name = meta
        .disposition
        .get("filename")
        .or_else(|| meta.content_type.get("name"))
        .map(|n| file_name(&n))
        .filter(|n| !n.is_empty());
    Some(Part {
        bytes,
        content_type: meta.content_type.value,
        name,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flowed_text_is_joined() {
        let t =
            "This is a long \nparagraph that \nflows.\n> quoted \n> text\n>> deeper\n \n-- \nsig\n";
        assert_eq!(
            unflow(t, false),
            "This is a long paragraph that flows.\n> quoted text\n>> deeper\n\n-- \nsig\n"
        );
        assert_eq!(unflow("a-\nb", false), "a-\nb");
        assert_eq!(unflow("ab \ncd\n", true), "abcd\n");
        assert_eq!(unflow(" From me\n", false), "From me\n");
    }

    #[test]
    fn meta_charset_prescan() {
        assert_eq!(
            meta_charset(b"<html><head><META http-equiv=\"Content-Type\" content=\"text/html; charset=gb2312\"></head>").as_deref(),
            Some("gb2312")
        );
        assert_eq!(
            meta_charset(b"<meta charset='big5'>").as_deref(),
            Some("big5")
        );
        assert_eq!(meta_charset(b"<meta name=x><p>charset=no</p>"), None);
    }
}
