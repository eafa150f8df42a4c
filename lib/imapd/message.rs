//! A message's content as FETCH sees it: CRLF conversion, body sections
//! (RFC 3501 6.4.5), BINARY sections (RFC 3516), ENVELOPE and BODYSTRUCTURE
//! (7.4.2). MIME structure comes from mail-parser; body sections are always
//! cut from the stored bytes, never from what mail-parser decoded, and the
//! content-transfer decoding of BINARY is ours (mail-parser's text parts are
//! also converted to UTF-8, which BINARY must not do).

use base64::Engine;
use mail_parser::{Address, Message, MessageParser, MimeHeaders, PartType};

use super::raw_header::{envelope_text, raw_field, utf8_header};
use crate::mime::transfer::{decode_base64, decode_qp};
use crate::mime::tree::{embedded, find};
use crate::proto::imap::response::Value;
use crate::proto::imap::{Section, SectionText};

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

/// The message as IMAP sends it, from the stored file and its size with CRLF
/// line ends (`W=`, RFC822.SIZE). A file already that long is in wire form
/// (written verbatim because LF form would have changed it, or by a writer
/// that stores CRLF) and is sent as it is; otherwise its LF line ends become
/// CRLF. For any file holding no bare LF both ways give the same bytes.
pub fn wire(stored: Vec<u8>, vsize: u64) -> Vec<u8> {
    if stored.len() as u64 == vsize {
        stored
    } else {
        to_crlf(&stored)
    }
}

/// A stored message file read in wire form (as [`wire`] gives it) a piece
/// at a time, so that a large message is never whole in memory.
pub struct WireFile {
    file: std::fs::File,
    /// The file is already in wire form (its length is its `W=`).
    verbatim: bool,
    /// The last byte read (a CR before an LF means no CR is added).
    prev: u8,
    chunk: Vec<u8>,
    /// The file is at most [`KEEP`] bytes: [`WireFile::shape`] keeps its
    /// wire form, and [`WireFile::copy_range`] hands it out without
    /// reading the file again.
    small: bool,
    kept: Option<Vec<u8>>,
}

/// The largest file whose wire form a FETCH keeps in memory between its
/// two passes (the shape, then the bytes), rather than reading it twice.
const KEEP: u64 = 256 * 1024;

/// What one pass over a [`WireFile`] tells: its length in wire form, where
/// its header ends (after the blank line; the whole length when there is
/// none, as [`header_end`] says) and whether it holds a NUL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    pub size: u64,
    pub header: u64,
    pub nul: bool,
}

/// Pieces read from the file at a time.
const PIECE: usize = 64 * 1024;

impl WireFile {
    /// `vsize` is the message's size with CRLF line ends (`W=`).
    pub fn new(file: std::fs::File, vsize: u64) -> std::io::Result<WireFile> {
        let len = file.metadata()?.len();
        Ok(WireFile {
            file,
            verbatim: len == vsize,
            prev: 0,
            chunk: vec![0; PIECE],
            small: len <= KEEP,
            kept: None,
        })
    }

    /// Starts again from the first byte.
    pub fn rewind(&mut self) -> std::io::Result<()> {
        std::io::Seek::rewind(&mut self.file)?;
        self.prev = 0;
        Ok(())
    }

    /// Appends the next piece in wire form to `out`; false at the end.
    pub fn next_into(&mut self, out: &mut Vec<u8>) -> std::io::Result<bool> {
        let n = loop {
            match std::io::Read::read(&mut self.file, &mut self.chunk) {
                Ok(n) => break n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        };
        if n == 0 {
            return Ok(false);
        }
        let piece = &self.chunk[..n];
        if self.verbatim {
            out.extend_from_slice(piece);
        } else {
            out.reserve(n + n / 16);
            for &b in piece {
                if b == b'\n' && self.prev != b'\r' {
                    out.push(b'\r');
                }
                out.push(b);
                self.prev = b;
            }
        }
        Ok(true)
    }

    /// One pass over the whole file (from the start).
    pub fn shape(&mut self) -> std::io::Result<Shape> {
        self.rewind()?;
        let mut sh = Shape {
            size: 0,
            header: 0,
            nul: false,
        };
        let mut window = 0u32;
        let mut found = false;
        let mut piece = Vec::with_capacity(PIECE + PIECE / 8);
        let mut kept = self.small.then(Vec::new);
        loop {
            piece.clear();
            if !self.next_into(&mut piece)? {
                break;
            }
            if let Some(k) = kept.as_mut() {
                k.extend_from_slice(&piece);
            }
            sh.nul |= piece.contains(&0);
            if !found {
                for (i, &b) in piece.iter().enumerate() {
                    window = window << 8 | b as u32;
                    if window == 0x0d0a_0d0a {
                        sh.header = sh.size + i as u64 + 1;
                        found = true;
                        break;
                    }
                }
            }
            sh.size += piece.len() as u64;
        }
        if !found {
            sh.header = sh.size;
        }
        self.kept = kept;
        self.rewind()?;
        Ok(sh)
    }

    /// The header in wire form, through the blank line (the whole message
    /// when it has none); reads no further than the piece holding it.
    pub fn header(&mut self) -> std::io::Result<Vec<u8>> {
        self.rewind()?;
        let mut out = Vec::new();
        let mut scanned = 0usize;
        while self.next_into(&mut out)? {
            // Look again from three bytes back: the blank line may straddle
            // two pieces.
            let from = scanned.saturating_sub(3);
            if let Some(p) = out[from..].windows(4).position(|w| w == b"\r\n\r\n") {
                out.truncate(from + p + 4);
                break;
            }
            scanned = out.len();
        }
        self.rewind()?;
        Ok(out)
    }

    /// Hands bytes `from..to` of the wire form to `sink` a piece at a
    /// time (a NUL as 0x80 when `literal`: a `{n}` literal may not hold
    /// one, see `encode::literal`).
    pub fn copy_range(
        &mut self,
        from: u64,
        to: u64,
        literal: bool,
        sink: &mut dyn FnMut(&[u8]) -> std::io::Result<()>,
    ) -> std::io::Result<()> {
        if let Some(k) = &self.kept {
            let to = (to as usize).min(k.len());
            let from = (from as usize).min(to);
            for part in k[from..to].chunks(PIECE) {
                if literal && part.contains(&0) {
                    let mut copy = part.to_vec();
                    for c in copy.iter_mut().filter(|c| **c == 0) {
                        *c = 0x80;
                    }
                    sink(&copy)?;
                } else {
                    sink(part)?;
                }
            }
            return Ok(());
        }
        self.rewind()?;
        let mut at = 0u64;
        let mut piece = Vec::with_capacity(PIECE + PIECE / 8);
        while at < to {
            piece.clear();
            if !self.next_into(&mut piece)? {
                break;
            }
            let (a, b) = (at, at + piece.len() as u64);
            at = b;
            if b <= from {
                continue;
            }
            let lo = from.saturating_sub(a) as usize;
            let hi = (to.min(b) - a) as usize;
            let part = &mut piece[lo..hi];
            if literal {
                for c in part.iter_mut() {
                    if *c == 0 {
                        *c = 0x80;
                    }
                }
            }
            sink(part)?;
        }
        Ok(())
    }
}

/// Parses a CRLF message; an unparsable one is treated as all header.
pub fn parse(crlf: &[u8]) -> Option<Message<'_>> {
    MessageParser::default().parse(crlf)
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
        Some(t) => {
            let sub = embedded(part)?;
            let r = sub.parts.first()?;
            // TEXT runs to the end of the enclosing part, not to the end of
            // the embedded message's own root: a multipart root ends at its
            // closing boundary, and the epilogue after it is text as well
            // (RFC 3501 6.4.5: "the text body of the message").
            Some(message_text(
                sub.raw_message.as_ref(),
                r.offset_header,
                r.offset_body,
                part.offset_end,
                t,
            ))
        }
    }
}

/// A BINARY section's content could not be decoded: its
/// Content-Transfer-Encoding is not one we know (RFC 3516 4.2, UNKNOWN-CTE).
#[derive(Debug, PartialEq, Eq)]
pub struct UnknownCte;

/// The content of a BINARY section (RFC 3516 4.2): the bytes of the section
/// with its Content-Transfer-Encoding removed and nothing else changed (no
/// charset conversion, no line-end conversion). `[]` is the whole message;
/// a part that does not exist is empty.
pub fn binary(crlf: &[u8], msg: Option<&Message>, part: &[u32]) -> Result<Vec<u8>, UnknownCte> {
    if part.is_empty() {
        return Ok(crlf.to_vec());
    }
    let Some(msg) = msg else {
        return Ok(if part == [1] {
            crlf[header_end(crlf)..].to_vec()
        } else {
            Vec::new()
        });
    };
    let Some((m, id)) = find(msg, part) else {
        return Ok(Vec::new());
    };
    let Some(p) = m.parts.get(id) else {
        return Ok(Vec::new());
    };
    let body = slice(m.raw_message.as_ref(), p.offset_body, p.offset_end);
    let cte = p
        .content_transfer_encoding()
        .map(|c| c.trim().to_ascii_lowercase());
    match cte.as_deref() {
        None | Some("7bit" | "8bit" | "binary" | "") => Ok(body),
        Some("base64") => Ok(decode_base64(&body)),
        Some("quoted-printable") => Ok(decode_qp(&body)),
        Some(_) => Err(UnknownCte),
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

/// ENVELOPE (RFC 3501 7.4.2). Fields with raw 8-bit bytes are decoded
/// (see [`utf8_header`] and [`envelope_text`] in `raw_header`): given as UTF-8 to a client
/// that enabled UTF8=ACCEPT (`utf8`), else as RFC 2047 encoded-words; a
/// display name that is not ASCII is otherwise always an encoded-word.
pub fn envelope(msg: Option<&Message>, utf8: bool) -> Value {
    let Some(msg) = msg else {
        return Value::List(vec![Value::Nil; 10]);
    };
    let raw =
        |name: &str| Value::nstr(raw_field(msg, name).map(|v| envelope_text(v.trim_ascii(), utf8)));
    // The addresses of a header with raw legacy bytes, parsed again once
    // those are UTF-8.
    // The raw bytes are the outermost message's for an embedded one too,
    // with offsets into them.
    let head = msg
        .parts
        .first()
        .and_then(|p| {
            msg.raw_message
                .get(p.offset_header as usize..p.offset_body as usize)
        })
        .unwrap_or_default();
    let fixed = utf8_header(head);
    let reparsed = fixed
        .as_deref()
        .and_then(|h| MessageParser::default().parse_headers(h));
    let am = reparsed.as_ref().unwrap_or(msg);
    // A name that was raw 8-bit in the message goes as UTF-8 to a client
    // that accepts it.
    let raw_names = |name: &str| utf8 && raw_field(msg, name).is_some_and(|v| !v.is_ascii());
    let mut v = vec![raw("Date"), raw("Subject")];
    let from = am.from();
    let from_raw = raw_names("From");
    for (a, names_raw) in [
        (from, from_raw),
        match am.sender() {
            Some(s) => (Some(s), raw_names("Sender")),
            None => (from, from_raw),
        },
        match am.reply_to() {
            Some(s) => (Some(s), raw_names("Reply-To")),
            None => (from, from_raw),
        },
        (am.to(), raw_names("To")),
        (am.cc(), raw_names("Cc")),
        (am.bcc(), raw_names("Bcc")),
    ] {
        v.push(addresses(a, names_raw));
    }
    v.push(raw("In-Reply-To"));
    v.push(raw("Message-ID"));
    Value::List(v)
}

/// A display name as RFC 2047 when it is not ASCII, unless `utf8` (a raw
/// 8-bit name for a client with UTF8=ACCEPT).
fn name_bytes_for(name: &str, utf8: bool) -> Vec<u8> {
    if utf8 {
        name.as_bytes().to_vec()
    } else {
        name_bytes(name)
    }
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
fn one_address(name: Option<&str>, addr: &str, utf8: bool) -> Value {
    let (route, addr) = match addr.split_once(':') {
        Some((r, a)) if r.starts_with('@') => (Some(r), a),
        _ => (None, addr),
    };
    let (local, host) = match addr.rsplit_once('@') {
        Some((l, h)) => (l, Some(h)),
        None => (addr, None),
    };
    Value::List(vec![
        Value::nstr(name.map(|n| name_bytes_for(n, utf8))),
        Value::nstr(route),
        Value::str(local),
        Value::nstr(host),
    ])
}

/// The mailboxes of a list or a group. An entry with no address is a
/// comment the parser kept (`group: (foo) ;`), not a mailbox: left out.
fn members(out: &mut Vec<Value>, list: &[mail_parser::Addr], utf8: bool) {
    for x in list {
        if let Some(a) = x.address.as_deref() {
            out.push(one_address(x.name.as_deref(), a, utf8));
        }
    }
}

/// An address list; a group is `(NIL NIL "name" NIL)`, its members, then
/// `(NIL NIL NIL NIL)` (RFC 3501 7.4.2), even when it has no members.
fn addresses(a: Option<&Address>, utf8: bool) -> Value {
    let Some(a) = a else {
        return Value::Nil;
    };
    let mut run = Vec::new();
    match a {
        Address::List(list) => members(&mut run, list, utf8),
        Address::Group(groups) => {
            for g in groups {
                if let Some(n) = &g.name {
                    run.push(Value::List(vec![
                        Value::Nil,
                        Value::Nil,
                        Value::str(name_bytes_for(n, utf8)),
                        Value::Nil,
                    ]));
                }
                members(&mut run, &g.addresses, utf8);
                if g.name.is_some() {
                    run.push(Value::List(vec![Value::Nil; 4]));
                }
            }
        }
    }
    if run.is_empty() {
        Value::Nil
    } else {
        Value::List(vec![Value::Run(run)])
    }
}

/// BODYSTRUCTURE (`ext`) or BODY.
pub fn body_structure(msg: Option<&Message>, crlf: &[u8], ext: bool) -> Value {
    match msg {
        Some(m) => part_structure(m, 0, ext),
        None => {
            let lines = crlf.iter().filter(|b| **b == b'\n').count();
            Value::List(vec![
                Value::str("text"),
                Value::str("plain"),
                Value::List(vec![Value::str("charset"), Value::str("us-ascii")]),
                Value::Nil,
                Value::Nil,
                Value::str("7bit"),
                Value::Num(crlf.len() as u64),
                Value::Num(lines as u64),
            ])
        }
    }
}

/// The BODYSTRUCTURE of the part at `part` (the whole message for `[]`),
/// as URLFETCH's BODYPARTSTRUCTURE gives it (RFC 5524 3.2); None when
/// there is no such part.
pub fn part_body_structure(msg: Option<&Message>, crlf: &[u8], part: &[u32]) -> Option<Value> {
    if part.is_empty() {
        return Some(body_structure(msg, crlf, true));
    }
    let (m, id) = msg.and_then(|m| find(m, part))?;
    Some(part_structure(m, id, true))
}

fn lower_or(s: Option<&str>, d: &str) -> Vec<u8> {
    s.unwrap_or(d).to_ascii_lowercase().into_bytes()
}

fn params(attrs: Option<&[mail_parser::Attribute]>) -> Value {
    let attrs = attrs.unwrap_or_default();
    if attrs.is_empty() {
        return Value::Nil;
    }
    let mut v = Vec::with_capacity(attrs.len() * 2);
    for a in attrs {
        v.push(Value::str(a.name.to_ascii_lowercase()));
        v.push(Value::str(name_bytes(&a.value)));
    }
    Value::List(v)
}

fn part_structure(m: &Message, id: usize, ext: bool) -> Value {
    let Some(part) = m.parts.get(id) else {
        return Value::Nil;
    };
    let ct = part.content_type();
    let raw = m.raw_message.as_ref();
    if let PartType::Multipart(children) = &part.body {
        let children = children
            .iter()
            .map(|c| part_structure(m, *c as usize, ext))
            .collect();
        let mut v = vec![
            Value::Run(children),
            Value::str(lower_or(ct.and_then(|c| c.c_subtype.as_deref()), "mixed")),
        ];
        if ext {
            v.push(params(ct.and_then(|c| c.attributes.as_deref())));
            extension(&mut v, part);
        }
        return Value::List(v);
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
    let type_params = match ct.and_then(|c| c.attributes.as_deref()) {
        Some(a) if !a.is_empty() => params(Some(a)),
        _ if ty == "text" => Value::List(vec![Value::str("charset"), Value::str("us-ascii")]),
        _ => Value::Nil,
    };
    let mut v = vec![
        Value::str(ty.as_bytes()),
        Value::str(sub),
        type_params,
        Value::nstr(part.content_id()),
        Value::nstr(part.content_description().map(name_bytes)),
        Value::str(lower_or(part.content_transfer_encoding(), "7bit")),
        Value::Num(body.len() as u64),
    ];
    let lines = Value::Num(body.iter().filter(|b| **b == b'\n').count() as u64);
    match &part.body {
        PartType::Message(sub) if ty == "message" => {
            v.push(envelope(Some(sub), false));
            v.push(part_structure(sub, 0, ext));
            v.push(lines);
        }
        _ if ty == "text" => v.push(lines),
        _ => {}
    }
    if ext {
        // body-fld-md5.
        v.push(Value::Nil);
        extension(&mut v, part);
    }
    Value::List(v)
}

/// body-ext: disposition, language, location.
fn extension(v: &mut Vec<Value>, part: &mail_parser::MessagePart) {
    v.push(match part.content_disposition() {
        Some(d) => Value::List(vec![
            Value::str(d.c_type.to_ascii_lowercase()),
            params(d.attributes.as_deref()),
        ]),
        None => Value::Nil,
    });
    v.push(match part.content_language().as_text() {
        Some(l) => Value::str(l),
        None => match part.content_language().as_text_list() {
            Some(list) if !list.is_empty() => {
                Value::List(list.iter().map(|l| Value::str(l.as_bytes())).collect())
            }
            _ => Value::Nil,
        },
    });
    v.push(Value::nstr(part.content_location()));
}

/// A section with every base64 or quoted-printable leaf inside it decoded,
/// the rest (headers, boundaries, prologues, epilogues) as stored: what
/// URLFETCH's BINARY gives for a message or multipart part, as Dovecot
/// does (RFC 5524 3.2 leaves the form of a composite part open). With
/// `relabel`, each decoded leaf's Content-Transfer-Encoding field says
/// `binary`; without, it keeps its label, which is what the
/// BODYPARTSTRUCTURE of the decoded data describes. With `mime_header`,
/// the part's own MIME header comes first (for a structure of the part).
pub fn binary_converted(
    crlf: &[u8],
    msg: Option<&Message>,
    part: &[u32],
    relabel: bool,
    mime_header: bool,
) -> Result<Vec<u8>, UnknownCte> {
    let Some(msg) = msg else {
        return binary(crlf, None, part);
    };
    let (m, id) = if part.is_empty() {
        (msg, 0)
    } else {
        match find(msg, part) {
            Some(x) => x,
            None => return Ok(Vec::new()),
        }
    };
    let Some(p) = m.parts.get(id) else {
        return Ok(Vec::new());
    };
    let raw = m.raw_message.as_ref();
    let mut leaves = Vec::new();
    collect_leaves(m, id, &mut leaves);
    let start = if part.is_empty() || mime_header {
        p.offset_header
    } else {
        p.offset_body
    } as usize;
    let end = (p.offset_end as usize).min(raw.len());
    let mut out = Vec::with_capacity(end.saturating_sub(start));
    let mut at = start;
    for (h, b, e, cte) in leaves {
        let (h, b, e) = (h as usize, b as usize, (e as usize).min(end));
        let decoded = match cte.as_deref() {
            None | Some("7bit" | "8bit" | "binary" | "") => continue,
            Some("base64") => decode_base64(&raw[b.min(e)..e]),
            Some("quoted-printable") => decode_qp(&raw[b.min(e)..e]),
            Some(_) => return Err(UnknownCte),
        };
        if h < start && b >= at {
            // The section is this leaf itself, without its header.
            out.extend_from_slice(&decoded);
            at = e;
            continue;
        }
        if h < at || b > end {
            continue;
        }
        out.extend_from_slice(&raw[at..h]);
        if relabel && h >= start {
            out.extend_from_slice(&relabel_cte(&raw[h..b]));
        } else {
            out.extend_from_slice(&raw[h.max(at)..b]);
        }
        out.extend_from_slice(&decoded);
        at = e;
    }
    if at < end {
        out.extend_from_slice(&raw[at..end]);
    }
    Ok(out)
}

/// The leaves under part `id` of `m`, in order: (header, body, end
/// offsets, transfer encoding).
fn collect_leaves(m: &Message, id: usize, out: &mut Vec<(u32, u32, u32, Option<String>)>) {
    let Some(p) = m.parts.get(id) else {
        return;
    };
    if let Some(sub) = embedded(p) {
        collect_leaves(sub, 0, out);
        return;
    }
    match &p.body {
        PartType::Multipart(children) => {
            for c in children {
                collect_leaves(m, *c as usize, out);
            }
        }
        _ => out.push((
            p.offset_header,
            p.offset_body,
            p.offset_end,
            p.content_transfer_encoding()
                .map(|c| c.trim().to_ascii_lowercase()),
        )),
    }
}

/// A MIME header with its Content-Transfer-Encoding field (and its
/// continuation lines) replaced by `binary`.
fn relabel_cte(header: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(header.len());
    let mut skipping = false;
    for line in header.split_inclusive(|b| *b == b'\n') {
        if skipping && line.first().is_some_and(|b| *b == b' ' || *b == b'\t') {
            continue;
        }
        skipping = false;
        let name = b"content-transfer-encoding:";
        if line.len() >= name.len() && line[..name.len()].eq_ignore_ascii_case(name) {
            out.extend_from_slice(b"Content-Transfer-Encoding: binary\r\n");
            skipping = true;
            continue;
        }
        out.extend_from_slice(line);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imapd::raw_header::encoded_words;
    use crate::proto::imap::encode;
    use crate::proto::imap::response::value;

    /// A message file read through `WireFile` gives what the in-memory
    /// path gives, wherever the blank line, a CRLF or a NUL falls against
    /// the pieces it is read in, whether it is large (read again for the
    /// bytes) or small (kept from the first pass).
    #[test]
    fn wire_file_matches_the_whole_message_across_pieces() {
        let dir = tempfile::tempdir().unwrap();
        for (at, lines) in [PIECE - 3, PIECE - 2, PIECE - 1, PIECE, PIECE + 1]
            .into_iter()
            .flat_map(|at| [(at, 20_000u32), (at, 2_000)])
        {
            for crlf in [false, true] {
                let nl: &[u8] = if crlf { b"\r\n" } else { b"\n" };
                let mut m = b"Subject: x".to_vec();
                while m.len() + 2 * nl.len() < at {
                    m.push(b'y');
                }
                m.extend_from_slice(nl);
                m.extend_from_slice(nl);
                for i in 0..lines {
                    m.extend_from_slice(format!("line {i}\0").as_bytes());
                    m.extend_from_slice(nl);
                }
                let whole = wire(m.clone(), to_crlf(&m).len() as u64);
                let path = dir.path().join("m");
                std::fs::write(&path, &m).unwrap();
                let file = std::fs::File::open(&path).unwrap();
                let mut w = WireFile::new(file, whole.len() as u64).unwrap();
                let sh = w.shape().unwrap();
                assert_eq!(w.kept.is_some(), m.len() as u64 <= KEEP);
                let he = header_end(&whole);
                assert_eq!(
                    (sh.size, sh.header, sh.nul),
                    (whole.len() as u64, he as u64, true)
                );
                assert_eq!(
                    w.header().unwrap(),
                    &whole[..he],
                    "header at {at}, crlf {crlf}"
                );
                for (a, b) in [(0, whole.len()), (he, whole.len()), (at - 5, at + 70_000)] {
                    let mut got = Vec::new();
                    w.copy_range(a as u64, b as u64, true, &mut |p: &[u8]| {
                        got.extend_from_slice(p);
                        Ok(())
                    })
                    .unwrap();
                    let mut want = whole[a..b.min(whole.len())].to_vec();
                    for c in want.iter_mut() {
                        if *c == 0 {
                            *c = 0x80;
                        }
                    }
                    assert_eq!(got, want, "{a}..{b} at {at}, crlf {crlf}");
                }
                // BINARY: the NULs as they are.
                let mut raw = Vec::new();
                w.copy_range(0, whole.len() as u64, false, &mut |p: &[u8]| {
                    raw.extend_from_slice(p);
                    Ok(())
                })
                .unwrap();
                assert_eq!(raw, whole, "{lines} lines at {at}, crlf {crlf}");
            }
        }
    }

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
        value(&mut e, &envelope(m.as_ref(), false));
        let e = String::from_utf8(e).unwrap();
        assert!(
            e.contains("((\"Joe\" NIL \"joe\" \"example.test\"))"),
            "{e}"
        );
        assert!(e.contains("\"=?utf-8?b?6YKu5Lu2?=\""), "{e}");
        let mut b = Vec::new();
        value(&mut b, &body_structure(m.as_ref(), &crlf, true));
        let b = String::from_utf8(b).unwrap();
        assert!(
            b.starts_with("((\"text\" \"plain\" (\"charset\" \"utf-8\") NIL NIL \"7bit\" 5 0"),
            "{b}"
        );
        assert!(b.contains("\"message\" \"rfc822\""), "{b}");
        assert!(b.contains(" \"mixed\" (\"boundary\" \"XX\")"), "{b}");
    }

    fn sec(crlf: &[u8], part: &[u32], text: Option<SectionText>) -> Vec<u8> {
        let m = parse(crlf);
        section(
            crlf,
            m.as_ref(),
            &Section {
                part: part.to_vec(),
                text,
            },
        )
        .unwrap()
    }

    fn bin(crlf: &[u8], part: &[u32]) -> Result<Vec<u8>, UnknownCte> {
        binary(crlf, parse(crlf).as_ref(), part)
    }

    /// A CRLF message whose second part is binary: bare LFs, a CR alone and
    /// a NUL are content.
    const BINARY_PART: &[u8] = b"From: a@b.test\r\nSubject: bin\r\nContent-Type: multipart/mixed; boundary=XX\r\n\r\n--XX\r\nContent-Type: text/plain\r\n\r\nhello\r\n--XX\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n\r\na\nb\rc\0d\ne\r\n--XX--\r\n";

    #[test]
    fn binary_keeps_bare_lfs_of_a_binary_part() {
        // Stored verbatim (W= equal to its size), sent as it is.
        let crlf = wire(BINARY_PART.to_vec(), BINARY_PART.len() as u64);
        assert_eq!(crlf, BINARY_PART);
        assert_eq!(bin(&crlf, &[2]).unwrap(), b"a\nb\rc\0d\ne");
        assert_eq!(bin(&crlf, &[1]).unwrap(), b"hello");
        assert_eq!(bin(&crlf, &[]).unwrap(), BINARY_PART);
        // BODY[2] is the stored part, not decoded (and equal here).
        assert_eq!(sec(&crlf, &[2], None), b"a\nb\rc\0d\ne");
        // A file in LF form still gets CRLF.
        let lf = b"Subject: x\n\nbody\n".to_vec();
        assert_eq!(wire(lf, 20), b"Subject: x\r\n\r\nbody\r\n");
    }

    #[test]
    fn body_literal_never_carries_a_nul() {
        let mut out = Vec::new();
        encode::literal(&mut out, b"c\0d");
        assert_eq!(out, b"{3}\r\nc\x80d");
        let mut out = Vec::new();
        encode::literal8(&mut out, b"c\0d");
        assert_eq!(out, b"~{3}\r\nc\0d");
    }

    #[test]
    fn binary_decodes_transfer_encoding_only() {
        // base64 of "caf\xe9\nx\0" with a Latin-1 charset: no charset
        // conversion, no line-end conversion.
        let b64 = base64::engine::general_purpose::STANDARD.encode(b"caf\xe9\nx\0");
        let msg = format!(
            "Subject: t\r\nContent-Type: multipart/mixed; boundary=XX\r\n\r\n--XX\r\nContent-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: base64\r\n\r\n{b64}\r\n--XX\r\nContent-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: Quoted-Printable\r\n\r\ncaf=E9 =  \r\nsoft=3d \t\r\nhard=\r\n--XX\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: x-uuencode\r\n\r\nbegin\r\n--XX--\r\n"
        );
        let crlf = msg.as_bytes();
        assert_eq!(bin(crlf, &[1]).unwrap(), b"caf\xe9\nx\0");
        assert_eq!(sec(crlf, &[1], None), b64.as_bytes());
        assert_eq!(bin(crlf, &[2]).unwrap(), b"caf\xe9 soft=\r\nhard");
        assert_eq!(bin(crlf, &[3]), Err(UnknownCte));
        assert_eq!(bin(crlf, &[9]).unwrap(), b"");
    }

    #[test]
    fn encoded_message_part_is_never_decoded_for_body() {
        // RFC 2046 5.2.1 forbids it, but a base64 message/rfc822 happens;
        // its inner message (holding a NUL) must not leak into BODY[2.1].
        let inner =
            base64::engine::general_purpose::STANDARD.encode(b"Subject: in\r\n\r\nx\0y\r\n");
        let msg = format!(
            "Subject: t\r\nContent-Type: multipart/mixed; boundary=XX\r\n\r\n--XX\r\n\r\nhi\r\n--XX\r\nContent-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n\r\n{inner}\r\n--XX--\r\n"
        );
        let crlf = msg.as_bytes();
        assert_eq!(sec(crlf, &[2], None), inner.as_bytes());
        assert_eq!(sec(crlf, &[2, 1], None), inner.as_bytes());
        let text = Section {
            part: vec![2],
            text: Some(SectionText::Text),
        };
        assert_eq!(section(crlf, parse(crlf).as_ref(), &text), None);
        assert_eq!(bin(crlf, &[2]).unwrap(), b"Subject: in\r\n\r\nx\0y\r\n");
    }

    #[test]
    fn text_of_an_embedded_message_keeps_its_epilogue() {
        let msg: &[u8] = b"Subject: outer\r\nContent-Type: multipart/mixed; boundary=XX\r\n\r\n--XX\r\nContent-Type: text/plain\r\n\r\nfirst\r\n--XX\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner\r\nContent-Type: multipart/alternative; boundary=YY\r\n\r\npre\r\n--YY\r\n\r\none\r\n--YY--\r\ninner epilogue\r\n--XX--\r\nouter epilogue\r\n";
        assert_eq!(
            sec(msg, &[2], Some(SectionText::Text)),
            b"pre\r\n--YY\r\n\r\none\r\n--YY--\r\ninner epilogue"
        );
        assert_eq!(
            sec(msg, &[2], None),
            b"Subject: inner\r\nContent-Type: multipart/alternative; boundary=YY\r\n\r\npre\r\n--YY\r\n\r\none\r\n--YY--\r\ninner epilogue"
        );
        assert_eq!(
            sec(msg, &[2], Some(SectionText::Header)),
            b"Subject: inner\r\nContent-Type: multipart/alternative; boundary=YY\r\n\r\n"
        );
        assert_eq!(sec(msg, &[2, 1], None), b"one");
        assert!(sec(msg, &[], Some(SectionText::Text)).ends_with(b"--XX--\r\nouter epilogue\r\n"));
    }

    #[test]
    fn a_nested_multipart_part_keeps_its_epilogue() {
        let msg: &[u8] = b"Subject: n\r\nContent-Type: multipart/mixed; boundary=XX\r\n\r\n--XX\r\nContent-Type: multipart/alternative; boundary=YY\r\n\r\n--YY\r\n\r\none\r\n--YY--\r\ninner epilogue\r\n--XX\r\n\r\ntwo\r\n--XX--\r\n";
        assert_eq!(
            sec(msg, &[1], None),
            b"--YY\r\n\r\none\r\n--YY--\r\ninner epilogue"
        );
        assert_eq!(sec(msg, &[1, 1], None), b"one");
        assert_eq!(sec(msg, &[2], None), b"two");
    }

    #[test]
    fn text_of_a_message_rfc822_body_keeps_its_epilogue() {
        // The message's one part is message/rfc822: its multipart root ends
        // at the closing boundary in mail-parser, but 1.TEXT goes on.
        let msg: &[u8] = b"Subject: fwd\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner\r\nContent-Type: multipart/mixed; boundary=YY\r\n\r\n--YY\r\n\r\none\r\n--YY--\r\nepilogue\r\n";
        assert_eq!(
            sec(msg, &[1], Some(SectionText::Text)),
            b"--YY\r\n\r\none\r\n--YY--\r\nepilogue\r\n"
        );
        assert_eq!(sec(msg, &[1, 1], None), b"one");
    }

    /// The ENVELOPE's To and Cc fields for one header block.
    fn env_of(headers: &str) -> String {
        let raw = format!("From: a@b.test\n{headers}Subject: s\n\nbody\n");
        let crlf = to_crlf(raw.as_bytes());
        let mut e = Vec::new();
        value(&mut e, &envelope(parse(&crlf).as_ref(), false));
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

    fn env(header: &[u8], utf8: bool) -> Vec<u8> {
        let mut m = header.to_vec();
        m.extend_from_slice(b"\r\nbody\r\n");
        let mut e = Vec::new();
        value(&mut e, &envelope(parse(&m).as_ref(), utf8));
        e
    }

    fn enc(s: &str, cs: &'static encoding_rs::Encoding) -> Vec<u8> {
        cs.encode(s).0.into_owned()
    }

    fn has(hay: &[u8], needle: &[u8]) -> bool {
        hay.windows(needle.len()).any(|w| w == needle)
    }

    #[test]
    fn envelope_decodes_raw_8bit_legacy_headers() {
        use encoding_rs::{BIG5, GBK};
        for (subject, name, cs) in [
            ("关于下周项目会议的安排通知", "张三丰", GBK),
            ("許功蓋的報告請查收", "許功蓋", BIG5),
        ] {
            let mut h = b"Subject: ".to_vec();
            h.extend(enc(subject, cs));
            h.extend_from_slice(b"\r\nFrom: \"");
            h.extend(enc(name, cs));
            h.extend_from_slice(b"\" <a@b.example>\r\nTo: x@y.example\r\n");
            let plain = env(&h, false);
            assert!(plain.is_ascii(), "{}", String::from_utf8_lossy(&plain));
            assert!(has(&plain, encoded_words(subject).as_bytes()));
            assert!(has(&plain, &name_bytes(name)));
            assert!(has(&plain, b" NIL \"a\" \"b.example\")"));
            let wide = env(&h, true);
            let wide = String::from_utf8(wide).unwrap();
            assert!(wide.contains(subject), "{wide}");
            // 8-bit text goes as a literal.
            let lit = format!("(({{{}}}\r\n{name} NIL \"a\" \"b.example\"))", name.len());
            assert!(wide.contains(&lit), "{wide}");
            assert!(!wide.contains('\u{FFFD}'));
        }
        // Raw UTF-8: as it is with UTF8=ACCEPT, RFC 2047 without.
        let h = "Subject: 会议通知\r\nFrom: 王五 <w@b.example>\r\n".as_bytes();
        let wide = String::from_utf8(env(h, true)).unwrap();
        assert!(
            wide.contains("\r\n会议通知 ") && !wide.contains("=?"),
            "{wide}"
        );
        let plain = env(h, false);
        assert!(has(&plain, encoded_words("会议通知").as_bytes()));
        assert!(has(&plain, &name_bytes("王五")));
        // ASCII, encoded-words included, is never touched.
        let h = b"Subject: =?gb2312?b?u+HS6c2o1qo=?=\r\n";
        assert!(has(&env(h, true), b"\"=?gb2312?b?u+HS6c2o1qo=?=\""));
    }

    #[test]
    fn envelope_of_an_embedded_message_reads_its_own_header() {
        let mut m = b"Subject: outer\r\nFrom: \"".to_vec();
        m.extend(enc("外层", encoding_rs::GBK));
        m.extend_from_slice(b"\" <o@x.example>\r\nContent-Type: message/rfc822\r\n\r\nSubject: ");
        m.extend(enc("内层主题", encoding_rs::GBK));
        m.extend_from_slice(b"\r\nFrom: \"");
        m.extend(enc("里面的人", encoding_rs::GBK));
        m.extend_from_slice(b"\" <i@y.example>\r\n\r\ninner body\r\n");
        let mut b = Vec::new();
        value(&mut b, &body_structure(parse(&m).as_ref(), &m, true));
        assert!(b.is_ascii(), "{}", String::from_utf8_lossy(&b));
        let b = String::from_utf8(b).unwrap();
        assert!(b.contains(&encoded_words("内层主题")), "{b}");
        let inner = String::from_utf8(name_bytes("里面的人")).unwrap();
        assert!(
            b.contains(&format!("((\"{inner}\" NIL \"i\" \"y.example\"))")),
            "{b}"
        );
    }
}
