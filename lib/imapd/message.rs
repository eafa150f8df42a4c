//! A message's content as FETCH sees it: CRLF conversion, body sections
//! (RFC 3501 6.4.5), ENVELOPE and BODYSTRUCTURE (7.4.2). MIME structure and
//! decoding come from mail-parser.

use base64::Engine;
use mail_parser::{Address, Message, MessageParser, MimeHeaders, PartType};

use crate::proto::imap::{encode, Section, SectionText};

/// Converts stored LF line ends to CRLF (a CR already there is kept).
pub fn to_crlf(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len() + raw.len() / 32 + 2);
    let mut prev = 0u8;
    for &b in raw {
        if b == b'\n' && prev != b'\r' {
            out.push(b'\r');
        }
        out.push(b);
        prev = b;
    }
    out
}

/// Parses a CRLF message; an unparsable one is treated as all header.
pub fn parse(crlf: &[u8]) -> Option<Message<'_>> {
    MessageParser::default().parse(crlf)
}

/// The part at `path` (RFC 3501 6.4.5 numbering): the message it lives in
/// and its index there.
fn find<'m>(msg: &'m Message<'m>, path: &[u32]) -> Option<(&'m Message<'m>, usize)> {
    let (mut m, mut id) = (msg, 0usize);
    for (k, &n) in path.iter().enumerate() {
        let cur = m.parts.get(id)?;
        // Below the top, a message/rfc822 part is numbered by its content.
        let (cm, cid) = match (&cur.body, k > 0) {
            (PartType::Message(sub), true) => (sub, 0),
            _ => (m, id),
        };
        match &cm.parts.get(cid)?.body {
            PartType::Multipart(children) => {
                id = *children.get(n as usize - 1)? as usize;
                m = cm;
            }
            _ => {
                if n != 1 {
                    return None;
                }
                m = cm;
                id = cid;
            }
        }
    }
    Some((m, id))
}

fn slice(raw: &[u8], a: u32, b: u32) -> Vec<u8> {
    let (a, b) = (a as usize, (b as usize).min(raw.len()));
    if a >= b {
        return Vec::new();
    }
    raw[a..b].to_vec()
}

/// The bytes of a body section, or None when the part does not exist.
pub fn section(crlf: &[u8], msg: Option<&Message>, sec: &Section) -> Option<Vec<u8>> {
    let Some(msg) = msg else {
        return Some(if sec.part.is_empty() && sec.text.is_none() {
            crlf.to_vec()
        } else {
            Vec::new()
        });
    };
    if sec.part.is_empty() {
        let root = msg.parts.first()?;
        return Some(match &sec.text {
            None => crlf.to_vec(),
            Some(t) => message_text(
                crlf,
                root.offset_header,
                root.offset_body,
                root.offset_end,
                t,
            ),
        });
    }
    let (m, id) = find(msg, &sec.part)?;
    let part = m.parts.get(id)?;
    let raw = m.raw_message.as_ref();
    match &sec.text {
        None => Some(slice(raw, part.offset_body, part.offset_end)),
        Some(SectionText::Mime) => Some(slice(raw, part.offset_header, part.offset_body)),
        Some(t) => match &part.body {
            PartType::Message(sub) => {
                let r = sub.parts.first()?;
                Some(message_text(
                    sub.raw_message.as_ref(),
                    r.offset_header,
                    r.offset_body,
                    r.offset_end,
                    t,
                ))
            }
            _ => None,
        },
    }
}

fn message_text(raw: &[u8], h: u32, b: u32, e: u32, t: &SectionText) -> Vec<u8> {
    match t {
        SectionText::Header | SectionText::Mime => slice(raw, h, b),
        SectionText::Text => slice(raw, b, e),
        SectionText::HeaderFields(names) => header_fields(&slice(raw, h, b), names, false),
        SectionText::HeaderFieldsNot(names) => header_fields(&slice(raw, h, b), names, true),
    }
}

/// The header fields named (or all but those, `not`), each with its folded
/// continuation lines, then the blank line.
pub fn header_fields(header: &[u8], names: &[String], not: bool) -> Vec<u8> {
    let mut out = Vec::new();
    let mut keep = false;
    for line in header.split_inclusive(|b| *b == b'\n') {
        if line == b"\r\n" || line == b"\n" {
            break;
        }
        if line.first().is_some_and(|b| *b == b' ' || *b == b'\t') {
            if keep {
                out.extend_from_slice(line);
            }
            continue;
        }
        let name = line.split(|b| *b == b':').next().unwrap_or_default();
        let listed = names
            .iter()
            .any(|n| n.as_bytes().eq_ignore_ascii_case(name.trim_ascii()));
        keep = listed != not;
        if keep {
            out.extend_from_slice(line);
        }
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// The header block of a message (for header-only fetches).
pub fn header_end(crlf: &[u8]) -> usize {
    crlf.windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|p| p + 4)
        .unwrap_or(crlf.len())
}

/// ENVELOPE (RFC 3501 7.4.2).
pub fn envelope(out: &mut Vec<u8>, msg: Option<&Message>) {
    let Some(msg) = msg else {
        out.extend_from_slice(b"(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)");
        return;
    };
    let raw = |name: &str| msg.header_raw(name).map(|v| v.trim().as_bytes().to_vec());
    out.push(b'(');
    encode::nstring(out, raw("Date").as_deref());
    out.push(b' ');
    encode::nstring(out, raw("Subject").as_deref());
    let from = msg.from();
    for (i, a) in [
        from,
        msg.sender().or(from),
        msg.reply_to().or(from),
        msg.to(),
        msg.cc(),
        msg.bcc(),
    ]
    .into_iter()
    .enumerate()
    {
        let _ = i;
        out.push(b' ');
        addresses(out, a);
    }
    out.push(b' ');
    encode::nstring(out, raw("In-Reply-To").as_deref());
    out.push(b' ');
    encode::nstring(out, raw("Message-ID").as_deref());
    out.push(b')');
}

/// A display name as RFC 2047 when it is not ASCII.
fn name_bytes(name: &str) -> Vec<u8> {
    if name.is_ascii() {
        name.as_bytes().to_vec()
    } else {
        format!(
            "=?utf-8?b?{}?=",
            base64::engine::general_purpose::STANDARD.encode(name)
        )
        .into_bytes()
    }
}

/// One mailbox: `(name adl mailbox host)`. An address with a source route
/// (`@r1,@r2:user@host`, RFC 5322 4.4's obsolete form) puts the route in the
/// adl field (RFC 3501 7.4.2), not in the mailbox.
fn one_address(out: &mut Vec<u8>, name: Option<&str>, addr: &str) {
    out.push(b'(');
    encode::nstring(out, name.map(name_bytes).as_deref());
    out.push(b' ');
    let (route, addr) = match addr.split_once(':') {
        Some((r, a)) if r.starts_with('@') => (Some(r), a),
        _ => (None, addr),
    };
    encode::nstring(out, route.map(|s| s.as_bytes()));
    out.push(b' ');
    let (local, host) = match addr.rsplit_once('@') {
        Some((l, h)) => (l, Some(h)),
        None => (addr, None),
    };
    encode::nstring(out, Some(local.as_bytes()));
    out.push(b' ');
    encode::nstring(out, host.map(|s| s.as_bytes()));
    out.push(b')');
}

/// The mailboxes of a list or a group. An entry with no address is a
/// comment the parser kept (`group: (foo) ;`), not a mailbox: left out.
fn members(out: &mut Vec<u8>, list: &[mail_parser::Addr]) {
    for x in list {
        if let Some(a) = x.address.as_deref() {
            one_address(out, x.name.as_deref(), a);
        }
    }
}

/// An address list; a group is `(NIL NIL "name" NIL)`, its members, then
/// `(NIL NIL NIL NIL)` (RFC 3501 7.4.2), even when it has no members.
fn addresses(out: &mut Vec<u8>, a: Option<&Address>) {
    let Some(a) = a else {
        out.extend_from_slice(b"NIL");
        return;
    };
    let start = out.len();
    out.push(b'(');
    match a {
        Address::List(list) => members(out, list),
        Address::Group(groups) => {
            for g in groups {
                if let Some(n) = &g.name {
                    out.extend_from_slice(b"(NIL NIL ");
                    encode::string(out, &name_bytes(n));
                    out.extend_from_slice(b" NIL)");
                }
                members(out, &g.addresses);
                if g.name.is_some() {
                    out.extend_from_slice(b"(NIL NIL NIL NIL)");
                }
            }
        }
    }
    if out.len() == start + 1 {
        out.truncate(start);
        out.extend_from_slice(b"NIL");
    } else {
        out.push(b')');
    }
}

/// BODYSTRUCTURE (`ext`) or BODY.
pub fn body_structure(out: &mut Vec<u8>, msg: Option<&Message>, crlf: &[u8], ext: bool) {
    match msg {
        Some(m) => part_structure(out, m, 0, ext),
        None => {
            let lines = crlf.iter().filter(|b| **b == b'\n').count();
            out.extend_from_slice(
                format!(
                    "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" {} {lines})",
                    crlf.len()
                )
                .as_bytes(),
            );
        }
    }
}

fn lower_or(s: Option<&str>, d: &str) -> Vec<u8> {
    s.unwrap_or(d).to_ascii_lowercase().into_bytes()
}

fn params(out: &mut Vec<u8>, attrs: Option<&[mail_parser::Attribute]>) {
    let attrs = attrs.unwrap_or_default();
    if attrs.is_empty() {
        out.extend_from_slice(b"NIL");
        return;
    }
    out.push(b'(');
    for (i, a) in attrs.iter().enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        encode::string(out, a.name.to_ascii_lowercase().as_bytes());
        out.push(b' ');
        encode::string(out, &name_bytes(&a.value));
    }
    out.push(b')');
}

fn part_structure(out: &mut Vec<u8>, m: &Message, id: usize, ext: bool) {
    let Some(part) = m.parts.get(id) else {
        out.extend_from_slice(b"NIL");
        return;
    };
    let ct = part.content_type();
    let raw = m.raw_message.as_ref();
    if let PartType::Multipart(children) = &part.body {
        out.push(b'(');
        for c in children {
            part_structure(out, m, *c as usize, ext);
        }
        out.push(b' ');
        encode::string(
            out,
            &lower_or(ct.and_then(|c| c.c_subtype.as_deref()), "mixed"),
        );
        if ext {
            out.push(b' ');
            params(out, ct.and_then(|c| c.attributes.as_deref()));
            extension(out, part);
        }
        out.push(b')');
        return;
    }
    let (ty, sub) = match ct {
        Some(c) => (
            c.c_type.to_ascii_lowercase(),
            c.c_subtype
                .as_deref()
                .map(|s| s.to_ascii_lowercase())
                .unwrap_or_else(|| "plain".into()),
        ),
        None => ("text".to_string(), "plain".to_string()),
    };
    let body = slice(raw, part.offset_body, part.offset_end);
    out.push(b'(');
    encode::string(out, ty.as_bytes());
    out.push(b' ');
    encode::string(out, sub.as_bytes());
    out.push(b' ');
    match ct.and_then(|c| c.attributes.as_deref()) {
        Some(a) if !a.is_empty() => params(out, Some(a)),
        _ if ty == "text" => out.extend_from_slice(b"(\"charset\" \"us-ascii\")"),
        _ => out.extend_from_slice(b"NIL"),
    }
    out.push(b' ');
    encode::nstring(out, part.content_id().map(|s| s.as_bytes()));
    out.push(b' ');
    encode::nstring(out, part.content_description().map(name_bytes).as_deref());
    out.push(b' ');
    encode::string(out, &lower_or(part.content_transfer_encoding(), "7bit"));
    out.extend_from_slice(format!(" {}", body.len()).as_bytes());
    let lines = body.iter().filter(|b| **b == b'\n').count();
    match &part.body {
        PartType::Message(sub) if ty == "message" => {
            out.push(b' ');
            envelope(out, Some(sub));
            out.push(b' ');
            part_structure(out, sub, 0, ext);
            out.extend_from_slice(format!(" {lines}").as_bytes());
        }
        _ if ty == "text" => out.extend_from_slice(format!(" {lines}").as_bytes()),
        _ => {}
    }
    if ext {
        out.extend_from_slice(b" NIL");
        extension(out, part);
    }
    out.push(b')');
}

/// body-ext: disposition, language, location.
fn extension(out: &mut Vec<u8>, part: &mail_parser::MessagePart) {
    out.push(b' ');
    match part.content_disposition() {
        Some(d) => {
            out.push(b'(');
            encode::string(out, d.c_type.to_ascii_lowercase().as_bytes());
            out.push(b' ');
            params(out, d.attributes.as_deref());
            out.push(b')');
        }
        None => out.extend_from_slice(b"NIL"),
    }
    out.push(b' ');
    match part.content_language().as_text() {
        Some(l) => encode::string(out, l.as_bytes()),
        None => match part.content_language().as_text_list() {
            Some(list) if !list.is_empty() => {
                out.push(b'(');
                for (i, l) in list.iter().enumerate() {
                    if i > 0 {
                        out.push(b' ');
                    }
                    encode::string(out, l.as_bytes());
                }
                out.push(b')');
            }
            _ => out.extend_from_slice(b"NIL"),
        },
    }
    out.push(b' ');
    encode::nstring(out, part.content_location().map(|s| s.as_bytes()));
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIXED: &str = "From: Joe <joe@example.test>\nTo: a@b.test, \"Ann\" <ann@b.test>\nSubject: =?utf-8?b?6YKu5Lu2?=\nMessage-ID: <1@x>\nContent-Type: multipart/mixed; boundary=\"XX\"\n\npreamble\n--XX\nContent-Type: text/plain; charset=utf-8\n\nhello\n--XX\nContent-Type: message/rfc822\n\nSubject: inner\nFrom: i@x.test\n\ninner body\n--XX--\n";

    #[test]
    fn sections_of_a_multipart() {
        let crlf = to_crlf(MIXED.as_bytes());
        let m = parse(&crlf);
        let sec = |part: Vec<u32>, text: Option<SectionText>| {
            String::from_utf8(section(&crlf, m.as_ref(), &Section { part, text }).unwrap()).unwrap()
        };
        assert!(sec(vec![], Some(SectionText::Header)).ends_with("\"XX\"\r\n\r\n"));
        assert!(sec(vec![], Some(SectionText::Header)).starts_with("From: Joe"));
        assert!(sec(vec![], Some(SectionText::Text)).starts_with("preamble\r\n--XX"));
        assert_eq!(sec(vec![1], None), "hello");
        assert_eq!(
            sec(vec![1], Some(SectionText::Mime)),
            "Content-Type: text/plain; charset=utf-8\r\n\r\n"
        );
        assert_eq!(sec(vec![2, 1], None), "inner body");
        assert_eq!(
            sec(vec![2], Some(SectionText::Header)),
            "Subject: inner\r\nFrom: i@x.test\r\n\r\n"
        );
        assert_eq!(
            sec(
                vec![],
                Some(SectionText::HeaderFields(vec![
                    "subject".into(),
                    "to".into()
                ]))
            ),
            "To: a@b.test, \"Ann\" <ann@b.test>\r\nSubject: =?utf-8?b?6YKu5Lu2?=\r\n\r\n"
        );
        let mut e = Vec::new();
        envelope(&mut e, m.as_ref());
        let e = String::from_utf8(e).unwrap();
        assert!(
            e.contains("((\"Joe\" NIL \"joe\" \"example.test\"))"),
            "{e}"
        );
        assert!(e.contains("\"=?utf-8?b?6YKu5Lu2?=\""), "{e}");
        let mut b = Vec::new();
        body_structure(&mut b, m.as_ref(), &crlf, true);
        let b = String::from_utf8(b).unwrap();
        assert!(
            b.starts_with("((\"text\" \"plain\" (\"charset\" \"utf-8\") NIL NIL \"7bit\" 5 0"),
            "{b}"
        );
        assert!(b.contains("\"message\" \"rfc822\""), "{b}");
        assert!(b.contains(" \"mixed\" (\"boundary\" \"XX\")"), "{b}");
    }

    /// The ENVELOPE's To and Cc fields for one header block.
    fn env_of(headers: &str) -> String {
        let raw = format!("From: a@b.test\n{headers}Subject: s\n\nbody\n");
        let crlf = to_crlf(raw.as_bytes());
        let mut e = Vec::new();
        envelope(&mut e, parse(&crlf).as_ref());
        String::from_utf8(e).unwrap()
    }

    const FROM3: &str =
        "((NIL NIL \"a\" \"b.test\")) ((NIL NIL \"a\" \"b.test\")) ((NIL NIL \"a\" \"b.test\"))";

    /// Issue 12: a comment inside a group (`group2: (foo) ;`) came out as
    /// the bogus mailbox `("foo" NIL NIL NIL)`.
    #[test]
    fn envelope_group_syntax() {
        assert_eq!(
            env_of("Cc: group:;, group2: (foo) ;\n"),
            format!(
                "(NIL \"s\" {FROM3} NIL ((NIL NIL \"group\" NIL)(NIL NIL NIL NIL)\
                 (NIL NIL \"group2\" NIL)(NIL NIL NIL NIL)) NIL NIL NIL)"
            )
        );
        assert_eq!(
            env_of("To: undisclosed-recipients:;\n"),
            format!(
                "(NIL \"s\" {FROM3} ((NIL NIL \"undisclosed-recipients\" NIL)\
                 (NIL NIL NIL NIL)) NIL NIL NIL NIL)"
            )
        );
        assert_eq!(
            env_of("To: x@y.test, g: a@b.test, C <c@d.test>;, e@f.test\n"),
            format!(
                "(NIL \"s\" {FROM3} ((NIL NIL \"x\" \"y.test\")(NIL NIL \"g\" NIL)\
                 (NIL NIL \"a\" \"b.test\")(\"C\" NIL \"c\" \"d.test\")(NIL NIL NIL NIL)\
                 (NIL NIL \"e\" \"f.test\")) NIL NIL NIL NIL)"
            )
        );
    }

    /// Issue 12: `<@route:user@domain>` put the route in the mailbox field.
    #[test]
    fn envelope_source_route_goes_in_the_adl() {
        assert_eq!(
            env_of("To: <@route:user@domain>\n"),
            format!("(NIL \"s\" {FROM3} ((NIL \"@route\" \"user\" \"domain\")) NIL NIL NIL NIL)")
        );
        assert_eq!(
            env_of("To: Joe <@r1,@r2:joe@x.test>\n"),
            format!(
                "(NIL \"s\" {FROM3} ((\"Joe\" \"@r1,@r2\" \"joe\" \"x.test\")) NIL NIL NIL NIL)"
            )
        );
    }
}
