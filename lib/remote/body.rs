//! The message on the wire: queue files have LF line ends, SMTP wants CRLF
//! and dot-stuffing (RFC 5321 4.5.2); and the 7-bit downgrade for a peer
//! without 8BITMIME (RFC 6152 section 3, RFC 1652): every 8-bit leaf part is
//! re-encoded as quoted-printable (RFC 2045 6.7) and its
//! Content-Transfer-Encoding changed. A message whose headers hold 8-bit
//! bytes, or a part declared `binary`, cannot be downgraded.
//!
//! Pure functions over the message bytes; no I/O. The downgrade itself is a
//! stream in two passes ([`super::downgrade`]); [`Summary`] is the one pass
//! that decides what a message needs, without keeping a copy of it.

use crate::proto::dotstuff::Encoder;

/// Why a message cannot be made 7-bit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DowngradeError {
    /// Raw 8-bit bytes in a header (RFC 6532 headers need SMTPUTF8).
    HeaderNot7Bit,
    /// A part declared `Content-Transfer-Encoding: binary`, or 8-bit data in a
    /// part declared base64 or quoted-printable.
    CannotEncode(String),
}

impl std::fmt::Display for DowngradeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DowngradeError::HeaderNot7Bit => write!(f, "8-bit data in a message header"),
            DowngradeError::CannotEncode(why) => write!(f, "{why}"),
        }
    }
}

/// Deepest MIME nesting followed; deeper parts are left as they are, which is
/// fine only when they are 7-bit (else the downgrade fails).
pub(super) const MAX_DEPTH: usize = 32;

/// Whether `msg` holds any byte above 127.
pub fn has_8bit(msg: &[u8]) -> bool {
    msg.iter().any(|&b| b >= 0x80)
}

/// Whether the top-level header section holds 8-bit bytes (RFC 6532 UTF-8
/// headers, which only an SMTPUTF8 server may take).
pub fn header_8bit(msg: &[u8]) -> bool {
    has_8bit(split_entity(msg).0)
}

/// The bytes to send after DATA's 354: CRLF line ends, leading dots doubled,
/// a final CRLF if the message lacks one, and the terminating `.CRLF`.
pub fn to_wire(msg: &[u8]) -> Vec<u8> {
    crate::proto::dotstuff::encode(msg, None)
}

/// A 7-bit version of `msg` (LF line ends in and out).
pub fn downgrade(msg: &[u8]) -> Result<Vec<u8>, DowngradeError> {
    super::downgrade::downgrade(msg)
}

/// What one pass over a message tells: fed in pieces, keeps no copy.
#[derive(Debug)]
pub struct Summary {
    /// Any byte above 127.
    pub eight_bit: bool,
    /// 8-bit bytes in the top-level header section (RFC 6532 headers).
    pub header_8bit: bool,
    /// RFC 1870's size: CRLF line ends, no dot-stuffing, no final dot.
    pub size: u64,
    in_header: bool,
    at_line_start: bool,
    crlf: Encoder,
    scratch: Vec<u8>,
}

impl Default for Summary {
    fn default() -> Summary {
        Summary {
            eight_bit: false,
            header_8bit: false,
            size: 0,
            in_header: true,
            at_line_start: true,
            crlf: Encoder::crlf_only(),
            scratch: Vec::new(),
        }
    }
}

impl Summary {
    pub fn feed(&mut self, data: &[u8]) {
        if !self.eight_bit && has_8bit(data) {
            self.eight_bit = true;
        }
        if self.in_header {
            for &b in data {
                if b == b'\n' && self.at_line_start {
                    self.in_header = false;
                    break;
                }
                self.header_8bit |= b >= 0x80;
                self.at_line_start = b == b'\n';
            }
        }
        self.crlf.feed(data, &mut self.scratch);
        self.size += self.scratch.len() as u64;
        self.scratch.clear();
    }

    pub fn finish(mut self) -> Summary {
        let crlf = std::mem::replace(&mut self.crlf, Encoder::crlf_only());
        crlf.finish(&mut self.scratch);
        self.size += self.scratch.len() as u64;
        self.scratch = Vec::new();
        self
    }
}

/// The header block, with Content-Transfer-Encoding set to `cte`; at the top
/// level MIME-Version is added when missing, and a Content-Type when the
/// message had none (its charset is unknown: RFC 1428's `unknown-8bit`).
pub(super) fn write_head(
    fields: &[(String, &[u8])],
    top: bool,
    cte: Option<&str>,
    no_ctype: bool,
    out: &mut Vec<u8>,
) {
    for (name, raw) in fields {
        if name == "content-transfer-encoding" && cte.is_some() {
            continue;
        }
        out.extend_from_slice(raw);
    }
    if !fields.is_empty() && !out.ends_with(b"\n") {
        out.push(b'\n');
    }
    if top && !fields.iter().any(|(n, _)| n == "mime-version") {
        out.extend_from_slice(b"MIME-Version: 1.0\n");
    }
    if no_ctype && cte == Some("quoted-printable") {
        out.extend_from_slice(b"Content-Type: text/plain; charset=unknown-8bit\n");
    }
    if let Some(c) = cte {
        out.extend_from_slice(format!("Content-Transfer-Encoding: {c}\n").as_bytes());
    }
    out.push(b'\n');
}

/// RFC 2045 6.7 quoted-printable, line by line: LF line ends stay hard line
/// breaks; lines are cut with soft breaks to at most 76 characters.
pub fn quoted_printable(body: &[u8], out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut rest = body;
    while !rest.is_empty() {
        let (line, nl, next) = match rest.iter().position(|&b| b == b'\n') {
            Some(i) => (&rest[..i], true, &rest[i + 1..]),
            None => (rest, false, &[][..]),
        };
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let mut col = 0;
        for (i, &b) in line.iter().enumerate() {
            let last = i + 1 == line.len();
            let literal =
                (33..=126).contains(&b) && b != b'=' || (b == b' ' || b == b'\t') && !last;
            let width = if literal { 1 } else { 3 };
            if col + width > 75 {
                out.extend_from_slice(b"=\n");
                col = 0;
            }
            if literal {
                out.push(b);
            } else {
                out.extend_from_slice(&[b'=', HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]]);
            }
            col += width;
        }
        if nl {
            out.push(b'\n');
        }
        rest = next;
    }
}

/// Splits an entity at its first empty line: (header block with the empty
/// line, body). An entity without one is all header.
pub(super) fn split_entity(e: &[u8]) -> (&[u8], &[u8]) {
    if e.first() == Some(&b'\n') {
        return (&e[..1], &e[1..]);
    }
    match e.windows(2).position(|w| w == b"\n\n") {
        Some(i) => (&e[..i + 2], &e[i + 2..]),
        None => (e, &[]),
    }
}

/// The header fields: lower-cased name and the raw bytes (folded lines included).
pub(super) fn fields<'a>(head: &'a [u8]) -> Vec<(String, &'a [u8])> {
    let mut out: Vec<(String, &[u8])> = Vec::new();
    let mut start = None;
    let mut pos = 0;
    let push = |s: usize, e: usize, out: &mut Vec<(String, &'a [u8])>| {
        let raw: &'a [u8] = &head[s..e];
        let name = raw
            .iter()
            .position(|&b| b == b':')
            .map(|i| {
                String::from_utf8_lossy(&raw[..i])
                    .trim()
                    .to_ascii_lowercase()
            })
            .unwrap_or_default();
        out.push((name, raw));
    };
    while pos < head.len() {
        let end = head[pos..]
            .iter()
            .position(|&b| b == b'\n')
            .map(|i| pos + i + 1)
            .unwrap_or(head.len());
        let line = &head[pos..end];
        if line == b"\n" {
            break;
        }
        let cont = matches!(line.first(), Some(b' ' | b'\t'));
        if !cont || start.is_none() {
            if let Some(s) = start {
                push(s, pos, &mut out);
            }
            start = Some(pos);
        }
        pos = end;
    }
    if let Some(s) = start {
        push(s, pos, &mut out);
    }
    out
}

/// The unfolded value of the first field named `name`.
pub(super) fn field(fields: &[(String, &[u8])], name: &str) -> Option<String> {
    let raw = fields.iter().find(|(n, _)| n == name)?.1;
    let colon = raw.iter().position(|&b| b == b':')?;
    let v = String::from_utf8_lossy(&raw[colon + 1..]);
    Some(
        v.split(['\r', '\n'])
            .map(str::trim)
            .collect::<Vec<_>>()
            .join(" "),
    )
}

/// `text/plain; charset="x"` → (`text/plain`, [(`charset`, `x`)]).
pub(super) fn parse_content_type(v: &str) -> (String, Vec<(String, String)>) {
    let mut parts = split_params(v).into_iter();
    let t = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
    let params = parts
        .filter_map(|p| {
            let (k, v) = p.split_once('=')?;
            let v = v.trim();
            let v = v
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .map(|v| v.replace("\\\"", "\"").replace("\\\\", "\\"))
                .unwrap_or_else(|| v.to_string());
            Some((k.trim().to_ascii_lowercase(), v))
        })
        .collect();
    (t, params)
}

/// Splits at `;` outside quoted strings.
fn split_params(v: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let (mut quoted, mut escaped) = (false, false);
    for c in v.chars() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            ';' if !quoted => {
                out.push(std::mem::take(&mut cur));
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    out.push(cur);
    out
}

pub(super) fn param(params: &[(String, String)], name: &str) -> Option<String> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
        .filter(|v| !v.is_empty())
}

pub(super) fn trim_end(line: &[u8]) -> &[u8] {
    let mut l = line;
    while let Some((&b, rest)) = l.split_last() {
        if b == b'\n' || b == b'\r' {
            l = rest;
        } else {
            break;
        }
    }
    l
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_form_has_crlf_and_dot_stuffing() {
        assert_eq!(to_wire(b"a\nb\n"), b"a\r\nb\r\n.\r\n");
        assert_eq!(to_wire(b".\n..x\nend"), b"..\r\n...x\r\nend\r\n.\r\n");
        assert_eq!(to_wire(b"crlf\r\nkept\r\n"), b"crlf\r\nkept\r\n.\r\n");
        assert_eq!(to_wire(b""), b".\r\n");
        assert_eq!(to_wire(b"x.\n.\n"), b"x.\r\n..\r\n.\r\n");
    }

    #[test]
    fn seven_bit_messages_are_left_alone() {
        let m = b"Subject: hi\nContent-Type: text/plain\n\nplain text\n";
        assert_eq!(downgrade(m).unwrap(), m);
    }

    #[test]
    fn eight_bit_text_becomes_quoted_printable() {
        let m = "Subject: hi\nMIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\nGrüße = ok \nnext\n";
        let got = String::from_utf8(downgrade(m.as_bytes()).unwrap()).unwrap();
        assert_eq!(
            got,
            "Subject: hi\nMIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: quoted-printable\n\nGr=C3=BC=C3=9Fe =3D ok=20\nnext\n"
        );
        assert!(!has_8bit(got.as_bytes()));
    }

    #[test]
    fn a_message_without_mime_headers_gets_them() {
        let got = downgrade("Subject: x\n\ncafé\n".as_bytes()).unwrap();
        assert_eq!(
            String::from_utf8(got).unwrap(),
            "Subject: x\nMIME-Version: 1.0\nContent-Type: text/plain; charset=unknown-8bit\nContent-Transfer-Encoding: quoted-printable\n\ncaf=C3=A9\n"
        );
    }

    #[test]
    fn multipart_parts_are_encoded_one_by_one() {
        let m = "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"b 1\"\nContent-Transfer-Encoding: 8bit\n\npreamble\n--b 1\nContent-Type: text/plain\n\nplain\n--b 1\nContent-Type: text/plain; charset=latin1\nContent-Transfer-Encoding: 8bit\n\n\u{e9}t\u{e9}\n--b 1--\nepilogue\n";
        let got = String::from_utf8(downgrade(m.as_bytes()).unwrap()).unwrap();
        assert!(!has_8bit(got.as_bytes()));
        assert!(got.contains("Content-Transfer-Encoding: 7bit\n\npreamble\n--b 1\nContent-Type: text/plain\n\nplain\n--b 1\n"));
        assert!(got.contains("charset=latin1\nContent-Transfer-Encoding: quoted-printable\n\n=C3=A9t=C3=A9\n--b 1--\nepilogue\n"));
    }

    #[test]
    fn impossible_downgrades_are_refused() {
        assert_eq!(
            downgrade("Subject: café\n\nbody é\n".as_bytes()),
            Err(DowngradeError::HeaderNot7Bit)
        );
        assert!(matches!(
            downgrade("Content-Transfer-Encoding: binary\n\n\u{e9}\n".as_bytes()),
            Err(DowngradeError::CannotEncode(_))
        ));
        assert!(matches!(
            downgrade("Content-Transfer-Encoding: base64\n\n\u{e9}\n".as_bytes()),
            Err(DowngradeError::CannotEncode(_))
        ));
    }

    #[test]
    fn long_lines_get_soft_breaks() {
        let mut out = Vec::new();
        quoted_printable(&[0xe9; 60], &mut out);
        assert!(out.split(|&b| b == b'\n').all(|l| l.len() <= 76));
        assert!(out.windows(2).any(|w| w == b"=\n"));
    }
}
