//! What the client hands back: folders, message summaries, envelopes and
//! body structures (RFC 9051 sections 7.3.1, 7.5.2), and their reading
//! from parsed response values. Strings that a mail header carries
//! (subjects, display names, parameters) stay raw bytes: they may still be
//! RFC 2047/2231-encoded or in a legacy charset, and decoding them is the
//! job of `lib/mime/`, not of the wire client.

use super::reply::Value;

/// One folder as LIST (and STATUS) describe it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Folder {
    /// The name in UTF-8 (decoded from modified UTF-7 unless UTF8=ACCEPT is on).
    pub name: String,
    /// The hierarchy delimiter; None for a flat namespace.
    pub delimiter: Option<char>,
    /// Every attribute as the server sent it (`\HasNoChildren`, `\Noselect` ...).
    pub attributes: Vec<String>,
    /// The special use (RFC 6154) among the attributes: `\Sent`, `\Trash` ...
    pub special: Option<String>,
    /// Whether the user is subscribed to it.
    pub subscribed: bool,
    /// Counts, when the server gave them with the list (LIST-STATUS) or
    /// answered STATUS; None for folders that cannot be selected.
    pub status: Option<FolderStatus>,
}

impl Folder {
    /// Whether the folder can be selected (no `\Noselect` or `\NonExistent`).
    pub fn selectable(&self) -> bool {
        !self.attributes.iter().any(|a| {
            a.eq_ignore_ascii_case("\\Noselect") || a.eq_ignore_ascii_case("\\NonExistent")
        })
    }
}

/// STATUS counts of a folder.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FolderStatus {
    pub messages: u32,
    pub unseen: u32,
    /// Total size in octets (STATUS=SIZE, RFC 8438), when the server has it.
    pub size: Option<u64>,
}

/// What SELECT or EXAMINE said about the folder.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Selected {
    pub exists: u32,
    pub uidvalidity: u32,
    /// 0 when the server did not say.
    pub uidnext: u32,
    /// With CONDSTORE (RFC 7162); None when the server has none.
    pub highestmodseq: Option<u64>,
    pub read_only: bool,
}

/// One resource of a quota root (RFC 9208): usage and limit in the
/// resource's unit (STORAGE in KiB, MESSAGE in messages).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Quota {
    pub root: String,
    pub resource: String,
    pub usage: u64,
    pub limit: u64,
}

/// What a message list shows of one message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Summary {
    pub uid: u32,
    /// Flags as the server sent them (`\Seen`, `$Forwarded` ...).
    pub flags: Vec<String>,
    /// RFC822.SIZE.
    pub size: u64,
    /// INTERNALDATE as sent (`"05-Mar-2024 10:00:00 +0000"` without quotes).
    pub internal_date: Option<String>,
    pub envelope: Envelope,
    pub structure: Option<BodyStructure>,
    /// From X-Priority (1 highest .. 5 lowest) or Importance (high 1,
    /// normal 3, low 5); None when the message has neither.
    pub priority: Option<u8>,
}

impl Summary {
    /// Whether the message has this flag (case-insensitive).
    pub fn has_flag(&self, flag: &str) -> bool {
        self.flags.iter().any(|f| f.eq_ignore_ascii_case(flag))
    }
}

/// The ENVELOPE of a message; every string raw, as the header had it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Envelope {
    pub date: Option<Vec<u8>>,
    /// Still RFC 2047-encoded.
    pub subject: Option<Vec<u8>>,
    pub from: Vec<Address>,
    pub sender: Vec<Address>,
    pub reply_to: Vec<Address>,
    pub to: Vec<Address>,
    pub cc: Vec<Address>,
    pub bcc: Vec<Address>,
    pub in_reply_to: Option<Vec<u8>>,
    pub message_id: Option<Vec<u8>>,
}

/// One address of an envelope. A group is an address with a mailbox (the
/// group's name) and no host, followed by its members and an address with
/// neither (RFC 9051 section 7.5.2).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Address {
    /// The display name, raw (may be RFC 2047-encoded).
    pub name: Option<Vec<u8>>,
    pub mailbox: Option<Vec<u8>>,
    pub host: Option<Vec<u8>>,
}

impl Address {
    /// `mailbox@host` (lossy UTF-8), or just the mailbox for a group.
    pub fn email(&self) -> Option<String> {
        let m = String::from_utf8_lossy(self.mailbox.as_deref()?);
        Some(match &self.host {
            Some(h) => format!("{m}@{}", String::from_utf8_lossy(h)),
            None => m.into_owned(),
        })
    }
}

/// A Content-Disposition: its kind (lower-cased) and parameters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Disposition {
    pub kind: String,
    pub params: Vec<(String, Vec<u8>)>,
}

/// One non-multipart body part.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SinglePart {
    /// Lower-cased: `text`, `image`, `message` ...
    pub mime_type: String,
    /// Lower-cased: `plain`, `jpeg`, `rfc822` ...
    pub subtype: String,
    /// Parameter names lower-cased; values raw (may be RFC 2231/2047-encoded).
    pub params: Vec<(String, Vec<u8>)>,
    pub id: Option<Vec<u8>>,
    pub description: Option<Vec<u8>>,
    /// Lower-cased: `7bit`, `base64`, `quoted-printable` ...
    pub encoding: String,
    /// Octets of the encoded body.
    pub size: u64,
    /// Lines, for text and message/rfc822 parts.
    pub lines: Option<u64>,
    pub md5: Option<Vec<u8>>,
    pub disposition: Option<Disposition>,
    pub language: Vec<String>,
    pub location: Option<Vec<u8>>,
    /// For message/rfc822 (and message/global): the inner message's
    /// envelope and structure.
    pub message: Option<Box<(Envelope, BodyStructure)>>,
}

impl SinglePart {
    /// A parameter of the content type (name case-insensitive), raw.
    pub fn param(&self, name: &str) -> Option<&[u8]> {
        find_param(&self.params, name)
    }

    /// The file name: the disposition's `filename` or the type's `name`
    /// parameter (raw; `filename*` forms are left to the MIME decoder).
    pub fn file_name(&self) -> Option<&[u8]> {
        self.disposition
            .as_ref()
            .and_then(|d| find_param(&d.params, "filename"))
            .or_else(|| self.param("name"))
    }

    /// Whether a reader would call this part an attachment rather than
    /// the text of the message.
    pub fn is_attachment(&self) -> bool {
        let disposed = self.disposition.as_ref().map(|d| d.kind.as_str());
        disposed == Some("attachment")
            || (self.mime_type == "message" && disposed != Some("inline"))
            || (self.file_name().is_some() && self.mime_type != "text" && self.id.is_none())
    }
}

/// The MIME structure of a message (BODYSTRUCTURE).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BodyStructure {
    Single(SinglePart),
    Multi {
        parts: Vec<BodyStructure>,
        /// Lower-cased: `mixed`, `alternative`, `related` ...
        subtype: String,
        params: Vec<(String, Vec<u8>)>,
        disposition: Option<Disposition>,
        language: Vec<String>,
        location: Option<Vec<u8>>,
    },
}

impl BodyStructure {
    /// The non-multipart parts in order, each with its IMAP section number
    /// (`1`, `1.2`, ...) as `BODY[section]` takes it. A message that is not
    /// multipart has the one part `1`. An attached message (message/rfc822)
    /// is one part here; its own parts are under `part.message`.
    pub fn parts(&self) -> Vec<(String, &SinglePart)> {
        let mut out = Vec::new();
        match self {
            BodyStructure::Single(p) => out.push(("1".to_string(), p)),
            BodyStructure::Multi { .. } => walk(self, "", &mut out),
        }
        out
    }

    /// Whether any part is an attachment ([`SinglePart::is_attachment`]).
    pub fn has_attachment(&self) -> bool {
        self.parts().iter().any(|(_, p)| p.is_attachment())
    }

    /// `multipart/SUBTYPE` or `type/subtype`, lower-cased.
    pub fn content_type(&self) -> String {
        match self {
            BodyStructure::Single(p) => format!("{}/{}", p.mime_type, p.subtype),
            BodyStructure::Multi { subtype, .. } => format!("multipart/{subtype}"),
        }
    }
}

fn walk<'a>(b: &'a BodyStructure, prefix: &str, out: &mut Vec<(String, &'a SinglePart)>) {
    if let BodyStructure::Multi { parts, .. } = b {
        for (i, p) in parts.iter().enumerate() {
            let section = if prefix.is_empty() {
                format!("{}", i + 1)
            } else {
                format!("{prefix}.{}", i + 1)
            };
            match p {
                BodyStructure::Single(s) => out.push((section, s)),
                BodyStructure::Multi { .. } => walk(p, &section, out),
            }
        }
    }
}

fn find_param<'a>(params: &'a [(String, Vec<u8>)], name: &str) -> Option<&'a [u8]> {
    params
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_slice())
}

/// Reads an ENVELOPE value.
pub fn envelope(v: &Value) -> Option<Envelope> {
    let l = v.list()?;
    if l.len() < 10 {
        return None;
    }
    Some(Envelope {
        date: l[0].nstring(),
        subject: l[1].nstring(),
        from: addresses(&l[2]),
        sender: addresses(&l[3]),
        reply_to: addresses(&l[4]),
        to: addresses(&l[5]),
        cc: addresses(&l[6]),
        bcc: addresses(&l[7]),
        in_reply_to: l[8].nstring(),
        message_id: l[9].nstring(),
    })
}

fn addresses(v: &Value) -> Vec<Address> {
    let Some(l) = v.list() else {
        return Vec::new();
    };
    l.iter()
        .filter_map(|a| {
            let a = a.list()?;
            if a.len() < 4 {
                return None;
            }
            Some(Address {
                name: a[0].nstring(),
                mailbox: a[2].nstring(),
                host: a[3].nstring(),
            })
        })
        .collect()
}

fn lower(v: &Value) -> String {
    v.text().unwrap_or_default().to_ascii_lowercase()
}

fn params(v: Option<&Value>) -> Vec<(String, Vec<u8>)> {
    let Some(l) = v.and_then(Value::list) else {
        return Vec::new();
    };
    l.chunks(2)
        .filter_map(|kv| match kv {
            [k, v] => Some((lower(k), v.nstring().unwrap_or_default())),
            _ => None,
        })
        .collect()
}

fn disposition(v: Option<&Value>) -> Option<Disposition> {
    let l = v?.list()?;
    Some(Disposition {
        kind: lower(l.first()?),
        params: params(l.get(1)),
    })
}

fn language(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::List(l)) => l.iter().filter_map(Value::text).collect(),
        Some(v) => v.text().into_iter().collect(),
        None => Vec::new(),
    }
}

/// Reads a BODYSTRUCTURE (or BODY) value.
pub fn body_structure(v: &Value) -> Option<BodyStructure> {
    let l = v.list()?;
    if matches!(l.first(), Some(Value::List(_))) {
        let n = l.iter().take_while(|x| matches!(x, Value::List(_))).count();
        let parts = l[..n]
            .iter()
            .map(body_structure)
            .collect::<Option<Vec<_>>>()?;
        let ext = &l[n..];
        return Some(BodyStructure::Multi {
            parts,
            subtype: ext.first().map(lower).unwrap_or_default(),
            params: params(ext.get(1)),
            disposition: disposition(ext.get(2)),
            language: language(ext.get(3)),
            location: ext.get(4).and_then(Value::nstring),
        });
    }
    if l.len() < 7 {
        return None;
    }
    let mut p = SinglePart {
        mime_type: lower(&l[0]),
        subtype: lower(&l[1]),
        params: params(l.get(2)),
        id: l[3].nstring(),
        description: l[4].nstring(),
        encoding: lower(&l[5]),
        size: l[6].number().unwrap_or(0),
        ..SinglePart::default()
    };
    let mut i = 7;
    if p.mime_type == "message" && (p.subtype == "rfc822" || p.subtype == "global") {
        if let (Some(env), Some(body)) = (
            l.get(7).and_then(envelope),
            l.get(8).and_then(body_structure),
        ) {
            p.message = Some(Box::new((env, body)));
            p.lines = l.get(9).and_then(Value::number);
            i = 10;
        }
    } else if p.mime_type == "text" {
        p.lines = l.get(7).and_then(Value::number);
        i = 8;
    }
    p.md5 = l.get(i).and_then(Value::nstring);
    p.disposition = disposition(l.get(i + 1));
    p.language = language(l.get(i + 2));
    p.location = l.get(i + 3).and_then(Value::nstring);
    Some(BodyStructure::Single(p))
}

/// Whether a header (at least its Content-Type and Content-Disposition
/// fields) leaves room for an attachment: a multipart other than
/// `multipart/alternative`, a part that is not text, or any
/// Content-Disposition. A message without Content-Type is text/plain
/// (RFC 2045 5.2). A `multipart/alternative` whose HTML branch carries
/// files (as some mailers write it) goes unmarked in the list, as in
/// webmails that go by the header; the message page lists its files.
pub fn may_have_attachment(header: &[u8]) -> bool {
    let text = String::from_utf8_lossy(header);
    let mut ctype = String::new();
    let mut in_ctype = false;
    for line in text.lines() {
        if line.starts_with([' ', '\t']) {
            if in_ctype {
                ctype.push_str(line);
            }
            continue;
        }
        in_ctype = false;
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let name = name.trim();
        if name.eq_ignore_ascii_case("content-disposition") {
            return true;
        }
        if name.eq_ignore_ascii_case("content-type") {
            ctype = value.to_string();
            in_ctype = true;
        }
    }
    let t = ctype
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if t.is_empty() {
        return false;
    }
    match t.split_once('/') {
        Some(("multipart", sub)) => sub != "alternative",
        Some(("text", _)) => false,
        _ => true,
    }
}

/// The priority a message's X-Priority or Importance header gives
/// (`X-Priority: 1 (Highest)`, `Importance: high`), from the bytes of
/// BODY[HEADER.FIELDS (X-PRIORITY IMPORTANCE)].
pub fn priority(header: &[u8]) -> Option<u8> {
    let text = String::from_utf8_lossy(header);
    let mut importance = None;
    for line in text.lines() {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.trim().eq_ignore_ascii_case("x-priority") {
            if let Some(d) = value.chars().next().and_then(|c| c.to_digit(10)) {
                if (1..=5).contains(&d) {
                    return Some(d as u8);
                }
            }
        } else if name.trim().eq_ignore_ascii_case("importance") {
            importance = match value.to_ascii_lowercase().as_str() {
                "high" => Some(1),
                "normal" => Some(3),
                "low" => Some(5),
                _ => importance,
            };
        }
    }
    importance
}

#[cfg(test)]
mod tests {
    use super::super::reply::{parse, Response};
    use super::*;

    fn value(s: &str) -> Value {
        match parse(format!("* X {s}\r\n").as_bytes()).unwrap() {
            Response::Data { mut values, .. } => values.remove(0),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn only_headers_that_leave_room_for_an_attachment_ask_for_the_structure() {
        for (h, want) in [
            ("", false),
            ("X-Priority: 1\r\n", false),
            ("Content-Type: text/plain; charset=gb2312\r\n", false),
            ("Content-Type: TEXT/HTML\r\n", false),
            (
                "Content-Type: multipart/alternative;\r\n boundary=x\r\n",
                false,
            ),
            ("Content-Type: multipart/mixed;\r\n\tboundary=x\r\n", true),
            ("Content-Type: Multipart/Related; boundary=x\r\n", true),
            ("Content-Type: application/pdf; name=a.pdf\r\n", true),
            ("Content-Type: message/rfc822\r\n", true),
            (
                "Content-Type: text/plain\r\nContent-Disposition: attachment\r\n",
                true,
            ),
            // A folded line belongs to its field only.
            (
                "Content-Type: text/plain;\r\n charset=utf-8\r\nX-A: multipart/mixed\r\n",
                false,
            ),
        ] {
            assert_eq!(may_have_attachment(h.as_bytes()), want, "{h:?}");
        }
    }

    #[test]
    fn multipart_structure_with_sections_and_attachments() {
        let v = value(
            r#"((("TEXT" "PLAIN" ("CHARSET" "gb2312") NIL NIL "BASE64" 120 3 NIL NIL NIL)("TEXT" "HTML" ("CHARSET" "utf-8") NIL NIL "QUOTED-PRINTABLE" 300 8 NIL NIL NIL) "ALTERNATIVE" ("BOUNDARY" "b2") NIL NIL)("APPLICATION" "PDF" ("NAME" "=?GBK?B?sai45g==?=") NIL NIL "BASE64" 4000 NIL ("ATTACHMENT" ("FILENAME" "=?GBK?B?sai45g==?=")) NIL) ("MESSAGE" "RFC822" NIL NIL NIL "7BIT" 500 (NIL "inner" NIL NIL NIL NIL NIL NIL NIL NIL) ("TEXT" "PLAIN" NIL NIL NIL "7BIT" 10 1) 12) "MIXED" ("BOUNDARY" "b1") NIL ("zh-CN"))"#,
        );
        let b = body_structure(&v).unwrap();
        assert_eq!(b.content_type(), "multipart/mixed");
        let parts = b.parts();
        let names: Vec<_> = parts.iter().map(|(s, _)| s.as_str()).collect();
        assert_eq!(names, ["1.1", "1.2", "2", "3"]);
        assert_eq!(parts[0].1.param("charset"), Some(&b"gb2312"[..]));
        assert_eq!(parts[0].1.lines, Some(3));
        assert_eq!(parts[2].1.file_name(), Some(&b"=?GBK?B?sai45g==?="[..]));
        assert!(parts[2].1.is_attachment());
        assert!(!parts[0].1.is_attachment());
        let inner = parts[3].1.message.as_ref().unwrap();
        assert_eq!(inner.0.subject.as_deref(), Some(&b"inner"[..]));
        assert_eq!(parts[3].1.lines, Some(12));
        assert!(b.has_attachment());
        let BodyStructure::Multi { language, .. } = &b else {
            panic!()
        };
        assert_eq!(language, &["zh-CN"]);
        let single = body_structure(&value(r#"("TEXT" "PLAIN" NIL NIL NIL "7BIT" 3 1)"#)).unwrap();
        assert_eq!(single.parts()[0].0, "1");
        assert!(!single.has_attachment());
        assert!(body_structure(&value(r#"("TEXT" "PLAIN")"#)).is_none());
        assert!(body_structure(&value("NIL")).is_none());
    }

    #[test]
    fn envelope_with_groups_and_nil() {
        let v = value(
            r#"("Mon, 4 Mar 2024 09:00:00 +0000" "=?utf-8?b?5Lit5paH?=" (("Zed" NIL "zed" "a.example")) NIL NIL ((NIL NIL "team" NIL)(NIL NIL "b" "c.example")(NIL NIL NIL NIL)) NIL NIL NIL "<id@x>")"#,
        );
        let e = envelope(&v).unwrap();
        assert_eq!(e.from[0].email().as_deref(), Some("zed@a.example"));
        assert_eq!(e.from[0].name.as_deref(), Some(&b"Zed"[..]));
        assert!(e.sender.is_empty());
        assert_eq!(e.to.len(), 3);
        assert_eq!(e.to[0].email().as_deref(), Some("team"));
        assert_eq!(e.message_id.as_deref(), Some(&b"<id@x>"[..]));
        assert!(envelope(&value("(NIL NIL)")).is_none());
    }

    #[test]
    fn priorities() {
        assert_eq!(priority(b"X-Priority: 1 (Highest)\r\n\r\n"), Some(1));
        assert_eq!(priority(b"x-priority:5\r\n\r\n"), Some(5));
        assert_eq!(priority(b"Importance: High\r\n\r\n"), Some(1));
        assert_eq!(priority(b"Importance: low\r\n\r\n"), Some(5));
        assert_eq!(priority(b"X-Priority: 9\r\n\r\n"), None);
        assert_eq!(priority(b"\r\n"), None);
    }
}
