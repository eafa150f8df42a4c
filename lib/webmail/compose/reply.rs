//! Replies and forwards: the [`Draft`] a click on Reply, Reply all,
//! Forward or Forward as attachment starts from.
//!
//! - A reply goes to Reply-To, else From (RFC 5322 3.6.2); reply to all
//!   adds the original To and Cc, never the user's own addresses nor one
//!   twice. It carries In-Reply-To and References (RFC 5322 3.6.4) and
//!   quotes the original text, decoded to UTF-8 by `crate::mime`.
//! - A forward inline quotes the original's headers and text and keeps its
//!   attachments; a forward as attachment attaches the original, byte for
//!   byte, as message/rfc822.

use super::build::{header_block, message_ids};
use super::{clean_file_name, Attachment, Draft, Origin, Recipient};
use crate::mime;

/// Most References kept (the oldest first one and the newest).
const MAX_REFERENCES: usize = 20;

fn view(raw: &[u8]) -> mime::View {
    let none = |_: &str| String::new();
    mime::view(
        raw,
        &mime::ViewOptions {
            allow_remote: false,
            cid_url: &none,
            write_html: true,
        },
    )
}

fn recipient(m: &mime::Mailbox) -> Recipient {
    Recipient {
        name: m.name.clone(),
        address: m.address.clone(),
    }
}

fn join(list: &[Recipient]) -> String {
    list.iter()
        .map(Recipient::display)
        .collect::<Vec<_>>()
        .join(", ")
}

/// `Re: subject`, without piling up prefixes (`Re:`, `RE:`, `回复:`, `答复:`).
pub fn reply_subject(s: &str) -> String {
    let t = s.trim();
    let lower = t.to_lowercase();
    if [
        "re:",
        "回复:",
        "回复：",
        "答复:",
        "答复：",
        "回覆:",
        "回覆：",
    ]
    .iter()
    .any(|p| lower.starts_with(p))
    {
        t.to_string()
    } else {
        format!("Re: {t}")
    }
}

/// `Fwd: subject`, once.
pub fn forward_subject(s: &str) -> String {
    let t = s.trim();
    let lower = t.to_lowercase();
    if ["fwd:", "fw:", "转发:", "转发：", "轉寄:", "轉寄："]
        .iter()
        .any(|p| lower.starts_with(p))
    {
        t.to_string()
    } else {
        format!("Fwd: {t}")
    }
}

/// The text of a message for quoting: its text part, else its (sanitised)
/// HTML made plain text.
fn body_text(v: &mime::View) -> String {
    match (&v.text, &v.html) {
        (Some(t), _) => t.clone(),
        (None, Some(h)) => html_to_text(&h.body),
        (None, None) => String::new(),
    }
}

/// Plain text from HTML, for quoting a message that has no text part:
/// block ends and `<br>` become line ends, other tags go, the common
/// entities and numeric references are decoded, and runs of blank lines
/// shrink to one. Style and script contents are dropped.
pub fn html_to_text(html: &str) -> String {
    let mut out = String::new();
    let mut rest = html;
    while let Some(lt) = rest.find('<') {
        out.push_str(&rest[..lt]);
        let Some(gt) = rest[lt..].find('>') else {
            rest = "";
            break;
        };
        let tag = rest[lt + 1..lt + gt].trim().to_ascii_lowercase();
        let name: String = tag
            .trim_start_matches('/')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect();
        rest = &rest[lt + gt + 1..];
        if !tag.starts_with('/') && (name == "style" || name == "script") {
            let close = format!("</{name}");
            let end = rest.to_ascii_lowercase().find(&close).unwrap_or(rest.len());
            rest = &rest[end..];
            continue;
        }
        let block = [
            "br",
            "p",
            "div",
            "li",
            "tr",
            "h1",
            "h2",
            "h3",
            "h4",
            "h5",
            "h6",
            "blockquote",
            "pre",
            "table",
            "ul",
            "ol",
        ];
        if block.contains(&name.as_str()) && (name == "br" || tag.starts_with('/')) {
            out.push('\n');
        }
    }
    out.push_str(rest);
    let decoded = decode_entities(&out);
    let mut text = String::new();
    let mut blank = 0;
    for line in decoded.lines() {
        let line = line.trim_end();
        if line.trim().is_empty() {
            blank += 1;
            if blank > 1 {
                continue;
            }
        } else {
            blank = 0;
        }
        text.push_str(line);
        text.push('\n');
    }
    text.trim().to_string() + "\n"
}

fn decode_entities(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        let end = rest.find(';').filter(|e| *e <= 10);
        let decoded = end.and_then(|e| {
            let name = &rest[1..e];
            let c = match name {
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                "nbsp" => Some(' '),
                _ => {
                    let n = name.strip_prefix('#')?;
                    let v = match n.strip_prefix(['x', 'X']) {
                        Some(h) => u32::from_str_radix(h, 16).ok()?,
                        None => n.parse().ok()?,
                    };
                    char::from_u32(v).filter(|c| !c.is_control() || *c == '\n')
                }
            }?;
            Some((c, e + 1))
        });
        match decoded {
            Some((c, len)) => {
                out.push(c);
                rest = &rest[len..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Each line of `text` behind `> ` (`>` before a line that is quoted already).
pub fn quote(text: &str) -> String {
    let mut out = String::new();
    for line in text.trim_end().lines() {
        if line.starts_with('>') {
            out.push('>');
        } else {
            out.push_str("> ");
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// The reply to `raw` (in `folder`, UID `uid`). `mine` are the user's own
/// addresses (lower case), left out of a reply to all; `date` is the
/// original's date as the page shows it.
pub fn reply_draft(raw: &[u8], origin: Origin, mine: &[String], all: bool, date: &str) -> Draft {
    let v = view(raw);
    let is_mine = |a: &str| mine.iter().any(|m| m.eq_ignore_ascii_case(a));
    let primary: Vec<Recipient> = if v.reply_to.is_empty() {
        v.from.iter().map(recipient).collect()
    } else {
        v.reply_to.iter().map(recipient).collect()
    };
    let mut seen: Vec<String> = Vec::new();
    let keep = |r: &Recipient, seen: &mut Vec<String>| {
        let a = r.address.to_lowercase();
        if is_mine(&a) || seen.contains(&a) {
            false
        } else {
            seen.push(a);
            true
        }
    };
    let mut to: Vec<Recipient> = primary
        .iter()
        .filter(|r| keep(r, &mut seen))
        .cloned()
        .collect();
    if to.is_empty() && !all {
        // A reply to one's own message goes to its recipients.
        to = v.to.iter().map(recipient).collect();
    }
    let mut cc = Vec::new();
    if all {
        for r in v.to.iter().chain(v.cc.iter()).map(recipient) {
            if keep(&r, &mut seen) {
                if to.is_empty() {
                    to.push(r);
                } else {
                    cc.push(r);
                }
            }
        }
    }
    let hb = header_block(raw);
    let mut references = super::super::pages::mail::header_field(hb, "References")
        .map(|r| message_ids(&r))
        .unwrap_or_default();
    if references.is_empty() {
        if let Some(irt) = super::super::pages::mail::header_field(hb, "In-Reply-To") {
            references = message_ids(&irt).into_iter().take(1).collect();
        }
    }
    if let Some(id) = &v.message_id {
        references.push(id.clone());
    }
    if references.len() > MAX_REFERENCES {
        let drop = references.len() - MAX_REFERENCES;
        references.drain(1..1 + drop);
    }
    let who = v
        .from
        .first()
        .map(|m| m.name.clone().unwrap_or_else(|| m.address.clone()))
        .unwrap_or_default();
    let body = format!(
        "\n\n{}\n{}",
        if date.is_empty() {
            format!("{who} wrote:")
        } else {
            format!("On {date}, {who} wrote:")
        },
        quote(&body_text(&v))
    );
    Draft {
        to: join(&to),
        cc: join(&cc),
        subject: reply_subject(&v.subject),
        body,
        in_reply_to: v.message_id.clone(),
        references,
        origin: Some(origin),
        save_sent: true,
        ..Draft::default()
    }
}

/// The forward of `raw`: inline (headers and text quoted in the body, its
/// attachments kept) or as an attachment (the original as message/rfc822,
/// byte for byte).
pub fn forward_draft(raw: &[u8], origin: Origin, inline: bool, date: &str) -> Draft {
    let v = view(raw);
    let subject = forward_subject(&v.subject);
    let mut d = Draft {
        subject,
        origin: Some(origin),
        save_sent: true,
        ..Draft::default()
    };
    if inline {
        let people = |l: &[mime::Mailbox]| join(&l.iter().map(recipient).collect::<Vec<_>>());
        let mut head = String::from("\n\n---------- Forwarded message ----------\n");
        head.push_str(&format!("From: {}\n", people(&v.from)));
        if !date.is_empty() {
            head.push_str(&format!("Date: {date}\n"));
        }
        head.push_str(&format!("Subject: {}\n", v.subject));
        head.push_str(&format!("To: {}\n", people(&v.to)));
        if !v.cc.is_empty() {
            head.push_str(&format!("Cc: {}\n", people(&v.cc)));
        }
        head.push('\n');
        head.push_str(&body_text(&v));
        d.body = head;
        d.attachments = v
            .attachments
            .iter()
            .filter_map(|a| {
                let p = mime::part(raw, &a.section)?;
                Some(Attachment {
                    name: clean_file_name(&a.name),
                    content_type: super::clean_content_type(&a.content_type),
                    data: p.bytes,
                })
            })
            .collect();
    } else {
        let name = if v.subject.trim().is_empty() {
            "message.eml".to_string()
        } else {
            format!("{}.eml", v.subject.trim())
        };
        d.body = "\n".into();
        d.attachments = vec![Attachment {
            name: clean_file_name(&name),
            content_type: "message/rfc822".into(),
            data: raw.to_vec(),
        }];
    }
    d
}

/// The address a read receipt goes to: the first of the message's
/// Disposition-Notification-To, when it is a valid address.
pub fn receipt_address(raw: &[u8]) -> Option<String> {
    let v =
        super::super::pages::mail::header_field(header_block(raw), "Disposition-Notification-To")?;
    mime::address_list(&v)
        .into_iter()
        .next()
        .map(|m| m.address)
        .filter(|a| super::valid_address(a))
}
