//! The message a script looks at: header fields as raw bytes (decoded on
//! demand with `lib/mime`, so RFC 2047 words in GB2312, GBK, Big5 or
//! UTF-8 compare as text), its size, and its body for the body test
//! (RFC 5173), decoded from its transfer encoding and charset.

use mail_parser::{MessageParser, MimeHeaders, PartType};

use crate::mime;

/// Most header fields read from one message.
const MAX_FIELDS: usize = 1000;

/// A message as delivered: the bytes, with its header fields split out
/// once.
#[derive(Debug)]
pub struct Message<'a> {
    raw: &'a [u8],
    fields: Vec<(String, &'a [u8])>,
    body_start: usize,
}

impl<'a> Message<'a> {
    /// Splits the header of `raw` (RFC 5322 2.2); the body starts after the
    /// first empty line.
    pub fn parse(raw: &'a [u8]) -> Message<'a> {
        let mut fields: Vec<(String, &'a [u8])> = Vec::new();
        let mut i = 0;
        let mut body_start = raw.len();
        while i < raw.len() {
            let end = raw[i..]
                .iter()
                .position(|c| *c == b'\n')
                .map(|n| i + n + 1)
                .unwrap_or(raw.len());
            let line = &raw[i..end];
            if line == b"\n" || line == b"\r\n" {
                body_start = end;
                break;
            }
            if matches!(line.first(), Some(b' ' | b'\t')) {
                // A continuation: extend the last field's value.
                if let Some(last) = fields.last_mut() {
                    let start = last.1.as_ptr() as usize - raw.as_ptr() as usize;
                    last.1 = &raw[start..end];
                }
            } else if let Some(colon) = line.iter().position(|c| *c == b':') {
                let name = String::from_utf8_lossy(&line[..colon])
                    .trim()
                    .to_ascii_lowercase();
                if fields.len() < MAX_FIELDS && !name.is_empty() && !name.contains(' ') {
                    fields.push((name, &raw[i + colon + 1..end]));
                }
            }
            i = end;
        }
        Message {
            raw,
            fields,
            body_start,
        }
    }

    /// The message's size in octets (the size test).
    pub fn size(&self) -> usize {
        self.raw.len()
    }

    /// The raw values of the fields named `name` (lower-case), in order.
    pub fn raw_values<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'a [u8]> + 's {
        self.fields
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
    }

    /// The values of the fields named `name`, decoded for comparison.
    pub fn values(&self, name: &str) -> Vec<String> {
        self.raw_values(name).map(mime::header_text).collect()
    }

    /// The addresses of the fields named `name`.
    pub fn addresses(&self, name: &str) -> Vec<Vec<String>> {
        self.raw_values(name)
            .map(|v| {
                mime::address_list(v)
                    .into_iter()
                    .map(|m| m.address)
                    .collect()
            })
            .collect()
    }

    pub fn has(&self, name: &str) -> bool {
        self.raw_values(name).next().is_some()
    }

    /// The body after the header, undecoded (body :raw).
    pub fn raw_body(&self) -> String {
        String::from_utf8_lossy(&self.raw[self.body_start.min(self.raw.len())..]).into_owned()
    }

    /// The decoded content of each leaf part whose type matches one of
    /// `types` ("text", "text/plain"; "" matches all). `as_text` (body
    /// :text, RFC 5173 5.2) also turns HTML into text; :content leaves
    /// each part as it is, only decoded.
    pub fn body_parts(&self, types: &[String], as_text: bool) -> Vec<String> {
        let Some(m) = MessageParser::default().parse(self.raw) else {
            return Vec::new();
        };
        let raw = m.raw_message.as_ref();
        let mut out = Vec::new();
        for p in &m.parts {
            let (ty, sub, charset) = match p.content_type() {
                Some(ct) => (
                    ct.ctype().to_ascii_lowercase(),
                    ct.subtype().unwrap_or("").to_ascii_lowercase(),
                    ct.attribute("charset").map(str::to_string),
                ),
                None => ("text".into(), "plain".into(), None),
            };
            let wanted = types.iter().any(|t| {
                let t = t.to_ascii_lowercase();
                t.is_empty()
                    || match t.split_once('/') {
                        Some((a, b)) => a == ty && b == sub,
                        None => t == ty,
                    }
            });
            if !wanted {
                continue;
            }
            let text = match &p.body {
                PartType::Multipart(_) | PartType::Message(_) => continue,
                _ => {
                    let (a, b) = (
                        p.offset_body as usize,
                        (p.offset_end as usize).min(raw.len()),
                    );
                    let bytes = &raw[a.min(b)..b];
                    let decoded = match p.encoding {
                        mail_parser::Encoding::Base64 => mime::transfer::decode_base64(bytes),
                        mail_parser::Encoding::QuotedPrintable => mime::transfer::decode_qp(bytes),
                        mail_parser::Encoding::None => bytes.to_vec(),
                    };
                    if ty == "text" {
                        let t = mime::decode(&decoded, charset.as_deref());
                        if as_text && sub == "html" {
                            strip_html(&t)
                        } else {
                            t
                        }
                    } else {
                        String::from_utf8_lossy(&decoded).into_owned()
                    }
                }
            };
            out.push(text);
        }
        out
    }
}

/// HTML as text for the body test: tags dropped, a few entities read.
fn strip_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut in_tag = false;
    for c in s.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => {
                in_tag = false;
                out.push(' ');
            }
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out.replace("&nbsp;", " ")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&amp;", "&")
}
