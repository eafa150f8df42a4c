//! The announcement as it is stored: the administrator's message file
//! checked and completed. Pure: bytes in, bytes or a [`MessageError`] out.
//!
//! The file is a message as people write one: header fields, a blank line,
//! a body, in UTF-8 (LF or CRLF). What comes out is what every mailbox gets:
//!
//! - `X-Kmpromail-Announcement: ID` first (the webmail's banner looks for it),
//!   then `Date:` (now: the newest in a date-sorted INBOX) and `Message-ID:`,
//!   both made here and replacing any the file had;
//! - `From:` defaults to the postmaster of the host, `To:` to
//!   `undisclosed-recipients:;` (RFC 5322 3.4: a group with no members);
//! - header values that are not ASCII are encoded as RFC 2047 encoded-words
//!   in UTF-8 (`Subject:` and other free text whole; in address fields only
//!   the display names, as RFC 2047 section 5 allows);
//! - a body that is not ASCII and has no `Content-Type:` is declared as
//!   `text/plain; charset=utf-8`, 8bit (RFC 2045/2046);
//! - line endings are LF, as every file in a Maildir.
//!
//! Refused, with the reason: a file that is not UTF-8 where it must be, a
//! header without a blank line after it, a malformed field, a field only the
//! system may write (`Received:`, `Return-Path:`, `Delivered-To:`, the
//! announcement header), no `Subject:`, a line longer than RFC 5322 2.1.1's
//! 998 characters, or a message larger than the limit.

use base64::Engine;

/// The header field that marks a message as an announcement; its value is
/// the announcement's id.
pub const HEADER: &str = "X-Kmpromail-Announcement";

/// The longest line RFC 5322 2.1.1 allows, without its line ending.
const MAX_LINE: usize = 998;
/// Most header fields one announcement may carry.
const MAX_FIELDS: usize = 100;
/// Fields the system writes and an announcement may not bring.
const SYSTEM_FIELDS: &[&str] = &["received", "return-path", "delivered-to"];
/// Fields made here; the file's own are replaced.
const REPLACED_FIELDS: &[&str] = &["date", "message-id"];
/// Fields that hold addresses: only display names may be encoded.
const ADDRESS_FIELDS: &[&str] = &[
    "from",
    "to",
    "cc",
    "reply-to",
    "sender",
    "bcc",
    "resent-from",
    "resent-to",
];
/// Free-text fields: the whole value is encoded (RFC 2047 section 5 (1)).
const TEXT_FIELDS: &[&str] = &["subject", "comments", "keywords", "organization"];

/// Why a message file is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MessageError {
    /// No blank line ends the header.
    NoBody,
    /// A header line that is not `Name: value` (its number, 1-based).
    BadField(usize),
    /// A field the system writes.
    SystemField(String),
    /// Non-ASCII text in a field that cannot carry encoded-words.
    NotEncodable(String),
    /// The header (or a body without a declared charset) is not UTF-8.
    NotUtf8(&'static str),
    /// No `Subject:`, or an empty one.
    NoSubject,
    /// A line longer than 998 characters (its number, 1-based).
    LongLine(usize),
    /// More header fields than [`MAX_FIELDS`].
    TooManyFields,
    /// The stored message would be larger than the limit (size, limit).
    TooBig(u64, u64),
}

impl std::fmt::Display for MessageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MessageError::NoBody => {
                write!(f, "no blank line between the header fields and the body")
            }
            MessageError::BadField(n) => {
                write!(f, "line {n}: not a header field (Name: value)")
            }
            MessageError::SystemField(n) => {
                write!(f, "{n}: is written by the system, remove it from the file")
            }
            MessageError::NotEncodable(n) => write!(
                f,
                "{n}: non-ASCII text where no encoded-word may stand \
                 (only display names of addresses and free text can be encoded)"
            ),
            MessageError::NotUtf8(what) => write!(
                f,
                "the {what} is not UTF-8 (write the file in UTF-8{})",
                if *what == "body" {
                    ", or declare the body's charset in Content-Type:"
                } else {
                    ""
                }
            ),
            MessageError::NoSubject => write!(f, "no Subject: (an announcement needs one)"),
            MessageError::LongLine(n) => {
                write!(
                    f,
                    "line {n} is longer than {MAX_LINE} characters (RFC 5322 2.1.1)"
                )
            }
            MessageError::TooManyFields => write!(f, "more than {MAX_FIELDS} header fields"),
            MessageError::TooBig(s, l) => {
                write!(f, "the message is {s} bytes, more than the limit of {l}")
            }
        }
    }
}

impl std::error::Error for MessageError {}

/// What the stored message is made from besides the file.
#[derive(Debug, Clone)]
pub struct Stamp<'a> {
    /// The announcement's id ([`id_of`]).
    pub id: &'a str,
    /// `system.hostname`: the default From: and the Message-ID's right side.
    pub hostname: &'a str,
    /// Now, in Unix seconds: the Date:.
    pub now: u64,
    /// Largest stored size allowed (`smtpd.max_message_size`); 0: none.
    pub max_size: u64,
}

/// The announcement id of a message file: the first 16 hex digits of its
/// SHA-256, so running the same command again finds the same record.
pub fn id_of(file: &[u8]) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, file);
    d.as_ref()[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether `s` has the form of an id [`id_of`] makes.
pub fn valid_id(s: &str) -> bool {
    s.len() == 16
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The stored message, or why the file is refused.
pub fn prepare(file: &[u8], stamp: &Stamp<'_>) -> Result<Vec<u8>, MessageError> {
    let text: Vec<u8> = crlf_to_lf(file);
    let (head, body) = split(&text).ok_or(MessageError::NoBody)?;
    let head = std::str::from_utf8(head).map_err(|_| MessageError::NotUtf8("header"))?;
    for (n, line) in text.split(|&b| b == b'\n').enumerate() {
        if line.len() > MAX_LINE {
            return Err(MessageError::LongLine(n + 1));
        }
    }
    let fields = parse_fields(head)?;
    let has = |n: &str| fields.iter().any(|(k, _)| k.eq_ignore_ascii_case(n));
    let mut out = String::new();
    out.push_str(&format!("{HEADER}: {}\n", stamp.id));
    let date = mail_builder::headers::date::Date::new(stamp.now as i64).to_rfc822();
    out.push_str(&format!("Date: {date}\n"));
    out.push_str(&format!(
        "Message-ID: <announce.{}.{}@{}>\n",
        stamp.id, stamp.now, stamp.hostname
    ));
    if !has("from") {
        out.push_str(&format!(
            "From: Postmaster <postmaster@{}>\n",
            stamp.hostname
        ));
    }
    if !has("to") {
        out.push_str("To: undisclosed-recipients:;\n");
    }
    let mut subject = false;
    for (name, value) in &fields {
        let lower = name.to_ascii_lowercase();
        if REPLACED_FIELDS.contains(&lower.as_str()) {
            continue;
        }
        if lower == "subject" {
            subject = !value.trim().is_empty();
        }
        let value = encode_field(name, &lower, value)?;
        out.push_str(&format!("{name}: {value}\n"));
    }
    if !subject {
        return Err(MessageError::NoSubject);
    }
    if !has("content-type") && !body.is_ascii() {
        if std::str::from_utf8(body).is_err() {
            return Err(MessageError::NotUtf8("body"));
        }
        if !has("mime-version") {
            out.push_str("MIME-Version: 1.0\n");
        }
        out.push_str("Content-Type: text/plain; charset=utf-8\n");
        if !has("content-transfer-encoding") {
            out.push_str("Content-Transfer-Encoding: 8bit\n");
        }
    }
    out.push('\n');
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(body);
    if !bytes.ends_with(b"\n") {
        bytes.push(b'\n');
    }
    let size = bytes.len() as u64;
    if stamp.max_size > 0 && size > stamp.max_size {
        return Err(MessageError::TooBig(size, stamp.max_size));
    }
    Ok(bytes)
}

/// The value of the first field `name` in a stored message's header (unfolded).
pub fn field<'a>(message: &'a [u8], name: &str) -> Option<&'a str> {
    let (head, _) = split(message).unwrap_or((message, b""));
    let head = std::str::from_utf8(head).ok()?;
    let prefix_len = name.len() + 1;
    head.lines().find_map(|l| {
        let (k, v) = l.split_at_checked(prefix_len.min(l.len()))?;
        (k.len() == prefix_len && k.ends_with(':') && k[..name.len()].eq_ignore_ascii_case(name))
            .then(|| v.trim())
    })
}

/// CRLF to LF; lone CRs are kept.
fn crlf_to_lf(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\r' && b.get(i + 1) == Some(&b'\n') {
            i += 1;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

/// The header (without the blank line) and the body.
fn split(text: &[u8]) -> Option<(&[u8], &[u8])> {
    if text.starts_with(b"\n") {
        return Some((b"", &text[1..]));
    }
    let at = text.windows(2).position(|w| w == b"\n\n")?;
    Some((&text[..at + 1], &text[at + 2..]))
}

/// The fields, unfolded (RFC 5322 2.2.3), in order.
fn parse_fields(head: &str) -> Result<Vec<(String, String)>, MessageError> {
    let mut fields: Vec<(String, String)> = Vec::new();
    for (n, line) in head.lines().enumerate() {
        if line.starts_with([' ', '\t']) {
            let Some(last) = fields.last_mut() else {
                return Err(MessageError::BadField(n + 1));
            };
            last.1.push(' ');
            last.1.push_str(line.trim());
            continue;
        }
        let (name, value) = line.split_once(':').ok_or(MessageError::BadField(n + 1))?;
        // RFC 5322 3.6.8: printable US-ASCII except colon, no spaces.
        if name.is_empty() || name.len() > 76 || !name.bytes().all(|b| (33..=126).contains(&b)) {
            return Err(MessageError::BadField(n + 1));
        }
        let lower = name.to_ascii_lowercase();
        if SYSTEM_FIELDS.contains(&lower.as_str()) || lower.eq_ignore_ascii_case(HEADER) {
            return Err(MessageError::SystemField(name.to_string()));
        }
        fields.push((name.to_string(), value.trim().to_string()));
        if fields.len() > MAX_FIELDS {
            return Err(MessageError::TooManyFields);
        }
    }
    Ok(fields)
}

/// A field's value with its non-ASCII parts as encoded-words.
fn encode_field(name: &str, lower: &str, value: &str) -> Result<String, MessageError> {
    if value.is_ascii() {
        return Ok(value.to_string());
    }
    if TEXT_FIELDS.contains(&lower) {
        return Ok(encoded_words(value));
    }
    if !ADDRESS_FIELDS.contains(&lower) {
        return Err(MessageError::NotEncodable(name.to_string()));
    }
    let mut out = Vec::new();
    for item in split_addresses(value) {
        let item = item.trim();
        if item.is_ascii() {
            out.push(item.to_string());
            continue;
        }
        // Only `display <addr>` with an ASCII address can be encoded.
        let Some(lt) = item.rfind('<') else {
            return Err(MessageError::NotEncodable(name.to_string()));
        };
        let (display, addr) = item.split_at(lt);
        if !addr.is_ascii() || !addr.trim_end().ends_with('>') {
            return Err(MessageError::NotEncodable(name.to_string()));
        }
        let display = display.trim();
        let display = display
            .strip_prefix('"')
            .and_then(|d| d.strip_suffix('"'))
            .unwrap_or(display);
        out.push(format!("{} {}", encoded_words(display), addr.trim()));
    }
    Ok(out.join(",\n "))
}

/// Splits an address list at the commas outside quotes and angle brackets.
fn split_addresses(value: &str) -> Vec<&str> {
    let (mut items, mut start, mut quoted, mut angle) = (Vec::new(), 0, false, false);
    let mut escaped = false;
    for (i, c) in value.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '<' if !quoted => angle = true,
            '>' if !quoted => angle = false,
            ',' if !quoted && !angle => {
                items.push(&value[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    items.push(&value[start..]);
    items.into_iter().filter(|s| !s.trim().is_empty()).collect()
}

/// `text` as UTF-8 "B" encoded-words (RFC 2047 4.1), each at most 75
/// characters (section 2), never splitting a character, folded onto lines
/// of their own.
pub fn encoded_words(text: &str) -> String {
    // 45 bytes make 60 base64 characters; with `=?UTF-8?B?` and `?=`, 72.
    const CHUNK: usize = 45;
    let mut words = Vec::new();
    let mut start = 0;
    let mut end = 0;
    for (i, c) in text.char_indices() {
        let next = i + c.len_utf8();
        if next - start > CHUNK {
            words.push(&text[start..end]);
            start = end;
        }
        end = next;
    }
    if start < text.len() {
        words.push(&text[start..]);
    }
    words
        .iter()
        .map(|w| {
            format!(
                "=?UTF-8?B?{}?=",
                base64::engine::general_purpose::STANDARD.encode(w.as_bytes())
            )
        })
        .collect::<Vec<_>>()
        .join("\n ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stamp() -> Stamp<'static> {
        Stamp {
            id: "0123456789abcdef",
            hostname: "mx.example.test",
            now: 1_764_288_000,
            max_size: 10_000,
        }
    }

    fn decode(v: &str) -> String {
        let mut out = String::new();
        for w in v.split_whitespace() {
            let b64 = w
                .strip_prefix("=?UTF-8?B?")
                .and_then(|w| w.strip_suffix("?="))
                .unwrap();
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(b64)
                .unwrap();
            out.push_str(std::str::from_utf8(&bytes).unwrap());
        }
        out
    }

    #[test]
    fn a_chinese_subject_and_body_are_encoded_and_declared() {
        let subject = "系统维护通知：本周六凌晨两点至四点邮件服务暂停，请提前保存您的草稿";
        let file = format!("Subject: {subject}\r\nFrom: 管理员 <admin@example.test>\r\n\r\n您好，\r\n维护期间无法收发邮件。\r\n");
        let out = prepare(file.as_bytes(), &stamp()).unwrap();
        let text = String::from_utf8(out.clone()).unwrap();
        assert!(!text.contains('\r'));
        assert!(text.starts_with("X-Kmpromail-Announcement: 0123456789abcdef\nDate: "));
        let (head, body) = text.split_once("\n\n").unwrap();
        assert!(head.is_ascii(), "{head}");
        assert_eq!(body, "您好，\n维护期间无法收发邮件。\n");
        assert!(head.contains("Content-Type: text/plain; charset=utf-8\n"));
        assert!(head.contains("MIME-Version: 1.0\n"));
        assert!(head.contains("To: undisclosed-recipients:;\n"));
        // Every encoded-word at most 75 characters, and the subject comes back.
        let unfolded = head.replace("\n ", " ");
        let subj = unfolded
            .lines()
            .find_map(|l| l.strip_prefix("Subject: "))
            .unwrap();
        assert!(subj.split(' ').all(|w| w.len() <= 75), "{subj}");
        assert_eq!(decode(subj), subject);
        let from = unfolded
            .lines()
            .find_map(|l| l.strip_prefix("From: "))
            .unwrap();
        let (name, addr) = from.rsplit_once(' ').unwrap();
        assert_eq!(decode(name), "管理员");
        assert_eq!(addr, "<admin@example.test>");
        assert_eq!(
            field(&out, "x-kmpromail-announcement"),
            Some("0123456789abcdef")
        );
    }

    #[test]
    fn an_ascii_message_keeps_its_fields_and_gets_date_id_and_from() {
        let file = b"Subject: Maintenance\nDate: Mon, 1 Jan 2001 00:00:00 +0000\nMessage-ID: <x@y>\nX-Note: folded\n  on two lines\n\nBody\n";
        let out = String::from_utf8(prepare(file, &stamp()).unwrap()).unwrap();
        assert!(!out.contains("2001"));
        assert!(!out.contains("<x@y>"));
        assert!(
            out.contains("Message-ID: <announce.0123456789abcdef.1764288000@mx.example.test>\n")
        );
        assert!(out.contains("From: Postmaster <postmaster@mx.example.test>\n"));
        assert!(out.contains("X-Note: folded on two lines\n"));
        assert!(!out.contains("Content-Type"));
        assert!(out.ends_with("\n\nBody\n"));
    }

    #[test]
    fn bad_files_are_refused_with_the_reason() {
        let s = stamp();
        let cases: &[(&[u8], MessageError)] = &[
            (b"Subject: x\nno blank line", MessageError::NoBody),
            (b"Subject: x\nnot a field\n\nb\n", MessageError::BadField(2)),
            (b" leading\n\nb\n", MessageError::BadField(1)),
            (
                b"Received: from x\nSubject: x\n\nb\n",
                MessageError::SystemField("Received".into()),
            ),
            (
                b"X-Kmpromail-Announcement: 1\nSubject: x\n\nb\n",
                MessageError::SystemField("X-Kmpromail-Announcement".into()),
            ),
            (b"From: a@b\n\nb\n", MessageError::NoSubject),
            (b"Subject:  \n\nb\n", MessageError::NoSubject),
            (
                b"Subject: \xd6\xd0\xce\xc4\n\nb\n",
                MessageError::NotUtf8("header"),
            ),
            (
                b"Subject: x\n\n\xd6\xd0\xce\xc4\n",
                MessageError::NotUtf8("body"),
            ),
            (
                "Subject: x\nX-Thing: 中文\n\nb\n".as_bytes(),
                MessageError::NotEncodable("X-Thing".into()),
            ),
            (
                "Subject: x\nTo: 用户@example.test\n\nb\n".as_bytes(),
                MessageError::NotEncodable("To".into()),
            ),
        ];
        for (file, want) in cases {
            assert_eq!(
                prepare(file, &s).as_ref(),
                Err(want),
                "{:?}",
                String::from_utf8_lossy(file)
            );
        }
        let long = format!("Subject: x\n\n{}\n", "a".repeat(999));
        assert_eq!(prepare(long.as_bytes(), &s), Err(MessageError::LongLine(3)));
        let big = format!("Subject: x\n\n{}\n", "a\n".repeat(6000));
        assert!(matches!(
            prepare(big.as_bytes(), &s),
            Err(MessageError::TooBig(_, 10_000))
        ));
        // A declared charset is the writer's business: the body is kept as is.
        let gb = b"Subject: x\nContent-Type: text/plain; charset=gb2312\n\n\xd6\xd0\xce\xc4\n";
        assert!(prepare(gb, &s)
            .unwrap()
            .ends_with(b"\n\n\xd6\xd0\xce\xc4\n"));
    }

    #[test]
    fn ids_come_from_the_file_and_encoded_words_never_split_a_character() {
        assert_eq!(id_of(b"a"), id_of(b"a"));
        assert_ne!(id_of(b"a"), id_of(b"b"));
        assert!(valid_id(&id_of(b"a")));
        assert!(!valid_id("../../etc"));
        let s = "通".repeat(40);
        let e = encoded_words(&s);
        assert_eq!(decode(&e), s);
        assert!(e.lines().all(|l| l.trim().len() <= 75));
    }
}
