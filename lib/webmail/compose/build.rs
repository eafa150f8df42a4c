//! Building the message (with `mail-builder`): UTF-8 MIME, RFC 2047
//! headers, RFC 2231 file names, a text part always, a Date in the user's
//! time zone and a fresh Message-ID; the same [`super::Draft`] built
//! [`Purpose::Send`] for the server and [`Purpose::Draft`] for the Drafts
//! folder (which also keeps Bcc and the page's own headers). Reading a
//! saved draft back ([`read_draft`]) and read receipts ([`mdn`], RFC 8098).

use std::borrow::Cow;

use mail_builder::headers::address::Address;
use mail_builder::headers::content_type::ContentType;
use mail_builder::headers::message_id::MessageId;
use mail_builder::headers::raw::Raw;
use mail_builder::headers::text::Text;
use mail_builder::mime::{BodyPart, MimePart};
use mail_builder::MessageBuilder;
use ring::rand::{SecureRandom, SystemRandom};

use super::{
    clean_content_type, clean_file_name, parse_addresses, Attachment, Draft, Linked, Origin,
    Priority, Recipient,
};
use crate::mime;

/// Our header that keeps [`Draft::origin`] in a draft.
pub const ORIGIN_HEADER: &str = "X-Kmp-Webmail-Origin";
/// Our header that keeps [`Draft::linked`] in a draft.
pub const LINKED_HEADER: &str = "X-Kmp-Webmail-Attached-Message";
/// Our header that keeps "no copy in Sent" in a draft.
pub const NO_SENT_HEADER: &str = "X-Kmp-Webmail-No-Sent-Copy";

/// Who sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub name: Option<String>,
    pub address: String,
}

/// What a message is built for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// To submission: no Bcc header, none of ours.
    Send,
    /// To the Drafts folder: Bcc and our headers kept, address lists that
    /// do not parse kept as typed.
    Draft,
}

/// A built message and its Message-ID (without brackets).
#[derive(Debug, Clone)]
pub struct Built {
    pub bytes: Vec<u8>,
    pub message_id: String,
    /// For [`Purpose::Send`] with [`Draft::linked`]: where in `bytes` the
    /// linked message goes (a placeholder the caller replaces by a URL).
    pub linked_at: Option<std::ops::Range<usize>>,
}

impl Built {
    /// The bytes before and after the linked message's place.
    pub fn split(&self) -> Option<(&[u8], &[u8])> {
        let r = self.linked_at.clone()?;
        Some((&self.bytes[..r.start], &self.bytes[r.end..]))
    }
}

/// A new Message-ID: 16 random bytes in hex, at the sender's domain.
pub fn new_message_id(address: &str) -> String {
    let mut b = [0u8; 16];
    // A failing system random source leaves zeros; the time still varies.
    let _ = SystemRandom::new().fill(&mut b);
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    let domain = address
        .rsplit_once('@')
        .map(|(_, d)| d)
        .filter(|d| !d.is_empty() && d.is_ascii())
        .unwrap_or("webmail.invalid");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    format!("{now:x}.{hex}@{domain}")
}

/// An RFC 5322 date-time for `secs` in the zone `offset` minutes east of UTC:
/// `Sat, 05 Dec 2026 11:29:01 +0800`.
pub fn rfc5322_date(secs: i64, offset: i32) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let local = secs + offset as i64 * 60;
    let days = local.div_euclid(86400);
    let rem = local.rem_euclid(86400);
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let sign = if offset < 0 { '-' } else { '+' };
    let off = offset.abs();
    format!(
        "{}, {:02} {} {} {:02}:{:02}:{:02} {sign}{:02}{:02}",
        DAYS[days.rem_euclid(7) as usize],
        day,
        MONTHS[(month - 1) as usize],
        year,
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        off / 60,
        off % 60
    )
}

fn addresses(list: &[Recipient]) -> Address<'static> {
    Address::new_list(
        list.iter()
            .map(|r| Address::new_address(r.name.clone(), r.address.clone()))
            .collect(),
    )
}

/// The parsed recipients of a draft: To, Cc, Bcc.
pub type Recipients = (Vec<Recipient>, Vec<Recipient>, Vec<Recipient>);

/// Builds the message. For [`Purpose::Send`] the address lists must parse
/// (the caller checked them with [`parse_addresses`]); for a draft one
/// that does not is kept as typed text.
pub fn build(d: &Draft, from: &Identity, now: i64, tz_offset: i32, purpose: Purpose) -> Built {
    let message_id = new_message_id(&from.address);
    let mut m = MessageBuilder::new()
        .from(Address::new_address(
            from.name.clone(),
            from.address.clone(),
        ))
        .header("Date", Raw::new(rfc5322_date(now, tz_offset)))
        .message_id(message_id.clone());
    let fields = [("To", &d.to), ("Cc", &d.cc), ("Bcc", &d.bcc)];
    for (name, typed) in fields {
        if name == "Bcc" && purpose == Purpose::Send {
            continue;
        }
        match parse_addresses(typed) {
            Ok(l) if l.is_empty() => {}
            Ok(l) => m = m.header(name, addresses(&l)),
            Err(_) => m = m.header(name, Text::new(typed.trim().to_string())),
        }
    }
    if !d.subject.is_empty() {
        m = m.subject(d.subject.clone());
    }
    if let Some(id) = &d.in_reply_to {
        m = m.in_reply_to(MessageId::new(id.clone()));
    }
    if !d.references.is_empty() {
        m = m.references(MessageId::new_list(d.references.iter().cloned()));
    }
    match d.priority {
        Priority::High => {
            m = m
                .header("X-Priority", Raw::new("1 (Highest)"))
                .header("Importance", Raw::new("high"));
        }
        Priority::Low => {
            m = m
                .header("X-Priority", Raw::new("5 (Lowest)"))
                .header("Importance", Raw::new("low"));
        }
        Priority::Normal => {}
    }
    if d.receipt {
        m = m.header(
            "Disposition-Notification-To",
            Address::new_address(from.name.clone(), from.address.clone()),
        );
    }
    m = m.header("User-Agent", Raw::new("kmp-webmail"));
    if purpose == Purpose::Draft {
        if let Some(o) = &d.origin {
            m = m.header(ORIGIN_HEADER, Text::new(o.to_text()));
        }
        if !d.save_sent {
            m = m.header(NO_SENT_HEADER, Raw::new("yes"));
        }
        if let Some(l) = &d.linked {
            m = m.header(LINKED_HEADER, Text::new(l.to_text()));
        }
    }
    let marker = d
        .linked
        .as_ref()
        .filter(|_| purpose == Purpose::Send)
        .map(|l| (l, format!("KMP-LINKED-MESSAGE-{}", new_message_id("x@x"))));
    let body = crlf(&d.body);
    m = if d.attachments.is_empty() && marker.is_none() {
        m.text_body(body)
    } else {
        let mut parts = vec![MimePart::new(
            "text/plain",
            BodyPart::Text(Cow::Owned(body)),
        )];
        parts.extend(d.attachments.iter().map(attachment_part));
        if let Some((l, mark)) = &marker {
            // The stored message may hold 8-bit text; "8bit" is true of
            // 7-bit text too (RFC 2045 2.8).
            parts.push(
                MimePart::new(
                    ContentType::new("message/rfc822"),
                    BodyPart::Binary(Cow::Owned(mark.clone().into_bytes())),
                )
                .attachment(l.name.clone())
                .transfer_encoding("8bit"),
            );
        }
        m.body(MimePart::new("multipart/mixed", parts))
    };
    // Invariant: writing into a Vec cannot fail.
    let bytes = m.write_to_vec().expect("write to memory");
    let linked_at = marker.and_then(|(_, mark)| {
        let at = bytes
            .windows(mark.len())
            .position(|w| w == mark.as_bytes())?;
        Some(at..at + mark.len())
    });
    Built {
        bytes,
        message_id,
        linked_at,
    }
}

/// A part for one attachment: a message/rfc822 (a forwarded message) as
/// it is, byte for byte (RFC 2046 5.2.1 allows no base64 there); anything
/// else base64, its name in RFC 2231 form when it is not plain ASCII.
fn attachment_part(a: &Attachment) -> MimePart<'static> {
    if a.content_type == "message/rfc822" {
        let eight_bit = a.data.iter().any(|b| *b >= 0x80);
        MimePart::new(
            ContentType::new("message/rfc822"),
            BodyPart::Binary(Cow::Owned(a.data.clone())),
        )
        .attachment(a.name.clone())
        .transfer_encoding(if eight_bit { "8bit" } else { "7bit" })
    } else {
        MimePart::new(
            ContentType::new(a.content_type.clone()),
            BodyPart::Binary(Cow::Owned(a.data.clone())),
        )
        .attachment(a.name.clone())
    }
}

fn crlf(s: &str) -> String {
    s.replace("\r\n", "\n")
        .replace('\r', "\n")
        .replace('\n', "\r\n")
}

/// The Message-IDs of a header value, without brackets.
pub fn message_ids(raw: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(raw);
    let mut out = Vec::new();
    let mut rest = text.as_ref();
    while let Some(open) = rest.find('<') {
        let Some(close) = rest[open..].find('>') else {
            break;
        };
        let id = rest[open + 1..open + close].trim();
        if !id.is_empty()
            && id.len() <= 250
            && !id
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || c == '<')
        {
            out.push(id.to_string());
        }
        rest = &rest[open + close + 1..];
    }
    out
}

/// The raw header block of a message.
pub fn header_block(raw: &[u8]) -> &[u8] {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| i + 2)
        .or_else(|| raw.windows(2).position(|w| w == b"\n\n").map(|i| i + 1))
        .unwrap_or(raw.len());
    &raw[..end]
}

/// A header's decoded text, if the message has it.
pub fn header(raw: &[u8], name: &str) -> Option<String> {
    super::super::pages::mail::header_field(header_block(raw), name).map(|v| mime::header_text(&v))
}

/// An address field as a person types it (`Name <a@b>, c@d`); a value
/// that is not a list of valid addresses as it is written, decoded.
fn address_text(header_block: &[u8], name: &str) -> String {
    let Some(v) = super::super::pages::mail::header_field(header_block, name) else {
        return String::new();
    };
    let list = mime::address_list(&v);
    if !list.is_empty() && list.iter().all(|m| super::valid_address(&m.address)) {
        list.iter()
            .map(|m| {
                Recipient {
                    name: m.name.clone(),
                    address: m.address.clone(),
                }
                .display()
            })
            .collect::<Vec<_>>()
            .join(", ")
    } else {
        mime::header_text(&v)
    }
}

/// Reads a draft this page saved (or any message in Drafts) back into a
/// [`Draft`]: the address lists as text, subject, text, priority, receipt,
/// threading, our headers, and every attachment with its bytes.
pub fn read_draft(raw: &[u8]) -> Draft {
    let none = |_: &str| String::new();
    let view = mime::view(
        raw,
        &mime::ViewOptions {
            allow_remote: false,
            cid_url: &none,
            write_html: true,
        },
    );
    let hb = header_block(raw);
    let field = |n: &str| super::super::pages::mail::header_field(hb, n);
    let attachments = view
        .attachments
        .iter()
        .filter_map(|a| {
            let p = mime::part(raw, &a.section)?;
            Some(Attachment {
                name: clean_file_name(&a.name),
                content_type: clean_content_type(&a.content_type),
                data: p.bytes,
            })
        })
        .collect();
    Draft {
        to: address_text(hb, "To"),
        cc: address_text(hb, "Cc"),
        bcc: address_text(hb, "Bcc"),
        subject: view.subject.clone(),
        body: view.text.clone().unwrap_or_default(),
        priority: Priority::from_level(view.priority),
        receipt: field("Disposition-Notification-To").is_some(),
        save_sent: field(NO_SENT_HEADER).is_none(),
        in_reply_to: field("In-Reply-To").and_then(|v| message_ids(&v).into_iter().next()),
        references: field("References")
            .map(|v| message_ids(&v))
            .unwrap_or_default(),
        origin: header(raw, ORIGIN_HEADER).and_then(|o| Origin::parse(&o)),
        attachments,
        linked: header(raw, LINKED_HEADER).and_then(|l| Linked::parse(&l)),
    }
}

/// What a read receipt answers.
pub struct Receipt<'a> {
    /// Where the receipt goes (the Disposition-Notification-To address).
    pub to: &'a str,
    pub original_subject: &'a str,
    /// Without brackets.
    pub original_message_id: Option<&'a str>,
    /// The human-readable text of the first part.
    pub text: &'a str,
}

/// A read receipt (RFC 8098 section 3): multipart/report of a text part
/// and a message/disposition-notification part, `manual-action/
/// MDN-sent-manually; displayed` (the user clicked).
pub fn mdn(r: &Receipt, from: &Identity, now: i64, tz_offset: i32) -> Built {
    let message_id = new_message_id(&from.address);
    let mut fields = format!(
        "Reporting-UA: kmp-webmail; kmpromail\r\nFinal-Recipient: rfc822;{}\r\n",
        from.address
    );
    if let Some(id) = r.original_message_id {
        fields.push_str(&format!("Original-Message-ID: <{id}>\r\n"));
    }
    fields.push_str("Disposition: manual-action/MDN-sent-manually; displayed\r\n");
    let report = MimePart::new(
        ContentType::new("multipart/report").attribute("report-type", "disposition-notification"),
        vec![
            MimePart::new("text/plain", BodyPart::Text(Cow::Owned(crlf(r.text)))),
            MimePart::new(
                ContentType::new("message/disposition-notification"),
                BodyPart::Binary(Cow::Owned(fields.into_bytes())),
            )
            .transfer_encoding("7bit"),
        ],
    );
    let subject = format!("Read: {}", r.original_subject);
    let m = MessageBuilder::new()
        .from(Address::new_address(
            from.name.clone(),
            from.address.clone(),
        ))
        .to(Address::new_address(None::<String>, r.to.to_string()))
        .subject(subject)
        .header("Date", Raw::new(rfc5322_date(now, tz_offset)))
        .message_id(message_id.clone())
        .header("Auto-Submitted", Raw::new("auto-replied"))
        .body(report);
    Built {
        // Invariant: writing into a Vec cannot fail.
        bytes: m.write_to_vec().expect("write to memory"),
        message_id,
        linked_at: None,
    }
}
