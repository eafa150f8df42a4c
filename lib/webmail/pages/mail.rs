//! What the mail pages (list, read, search) share: the folder, UID, sort
//! and section parameters checked; a message summary as a list row
//! (subjects and names decoded by `crate::mime` from the ENVELOPE's raw
//! bytes); dates in the user's time zone; sizes for people.

use serde_json::{json, Value};

use super::super::app::{Ctx, PageError};
use crate::imapc::{self, Address, Folder, Selected, SortKey, Summary};
use crate::mime;

/// Longest folder name taken from a request, in characters.
const MAX_FOLDER: usize = 800;

/// The deepest section number taken (`1.2.3...`).
const MAX_SECTION_DEPTH: usize = 16;

/// The sort keys offered, by their name in links.
pub const SORTS: &[(&str, SortKey)] = &[
    ("date", SortKey::Date),
    ("from", SortKey::From),
    ("subject", SortKey::Subject),
    ("size", SortKey::Size),
    ("arrival", SortKey::Arrival),
];

/// The list's order: a key and a direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Order {
    pub name: &'static str,
    pub key: SortKey,
    pub reverse: bool,
}

impl Order {
    /// From `sort` and `rev` values; unknown values give the default,
    /// newest first.
    pub fn parse(sort: Option<&str>, rev: Option<&str>) -> Order {
        let (name, key) = SORTS
            .iter()
            .find(|(n, _)| Some(*n) == sort)
            .copied()
            .unwrap_or(SORTS[0]);
        let reverse = match rev {
            Some("0") => false,
            Some(_) => true,
            None => sort.is_none() || matches!(key, SortKey::Date | SortKey::Arrival),
        };
        Order { name, key, reverse }
    }

    /// The order of a request's query (GET) or form (POST).
    pub fn of(ctx: &Ctx) -> Order {
        let r = ctx.req;
        Order::parse(
            r.param("sort").or(r.field("sort")),
            r.param("rev").or(r.field("rev")),
        )
    }

    /// `sort=..&rev=..` for links.
    pub fn query(&self) -> String {
        format!("sort={}&rev={}", self.name, u8::from(self.reverse))
    }
}

/// A folder name from a request: present, no control characters, not
/// absurdly long. Whether it exists is the IMAP server's answer.
pub fn check_folder(name: Option<&str>) -> Result<String, PageError> {
    let name = name.unwrap_or("INBOX");
    if name.is_empty() || name.chars().count() > MAX_FOLDER || name.chars().any(|c| c.is_control())
    {
        return Err(PageError::Bad("err_no_folder"));
    }
    Ok(name.to_string())
}

/// The folder of the request (`folder`, query or form; INBOX when absent).
pub fn folder_of(ctx: &Ctx) -> Result<String, PageError> {
    check_folder(ctx.req.param("folder").or(ctx.req.field("folder")))
}

/// A UID: a positive 32-bit number, nothing else.
pub fn check_uid(v: Option<&str>) -> Result<u32, PageError> {
    v.filter(|s| !s.is_empty() && s.len() <= 10 && s.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|s| s.parse::<u32>().ok())
        .filter(|n| *n > 0)
        .ok_or(PageError::Bad("err_no_message"))
}

/// A part's section number: `2`, `1.3`; digits and dots only.
pub fn check_section(v: Option<&str>) -> Result<String, PageError> {
    let s = v.unwrap_or_default();
    let ok = !s.is_empty()
        && s.len() <= 64
        && s.split('.').count() <= MAX_SECTION_DEPTH
        && s.split('.').all(|n| {
            !n.is_empty() && n.len() <= 6 && n.bytes().all(|b| b.is_ascii_digit()) && n != "0"
        });
    if ok {
        Ok(s.to_string())
    } else {
        Err(PageError::Bad("err_bad_section"))
    }
}

/// Selects `folder`; a folder the server does not have is the user's
/// error page, not a server failure.
pub fn select(ctx: &mut Ctx, folder: &str, read_only: bool) -> Result<Selected, PageError> {
    match ctx.imap().select(folder, read_only) {
        Ok(s) => Ok(s),
        Err(imapc::Error::No(_)) | Err(imapc::Error::Bad(_)) | Err(imapc::Error::Invalid(_)) => {
            Err(PageError::Bad("err_no_folder"))
        }
        Err(e) => Err(e.into()),
    }
}

/// The label of a folder for headings: Inbox and the special folders by
/// their translated names, others by their full name.
pub fn folder_label(ctx: &Ctx, folders: &[Folder], name: &str) -> String {
    if name.eq_ignore_ascii_case("INBOX") {
        return ctx.lang.get("folder_inbox").to_string();
    }
    let special = folders
        .iter()
        .find(|f| f.name == name)
        .and_then(|f| f.special.as_deref())
        .map(|s| s.trim_start_matches('\\').to_ascii_lowercase());
    match special {
        Some(s) if ["drafts", "sent", "trash", "junk", "archive"].contains(&s.as_str()) => {
            ctx.lang.get(&format!("folder_{s}")).to_string()
        }
        _ => name.to_string(),
    }
}

/// The folders a message may be moved or copied to: selectable ones, with
/// their labels.
pub fn targets(ctx: &Ctx, folders: &[Folder]) -> Vec<Value> {
    folders
        .iter()
        .filter(|f| f.selectable())
        .map(|f| json!({ "name": f.name, "label": folder_label(ctx, folders, &f.name) }))
        .collect()
}

/// The Trash folder (SPECIAL-USE `\Trash`, else one named Trash).
pub fn trash(folders: &[Folder]) -> Option<&Folder> {
    folders
        .iter()
        .find(|f| {
            f.special
                .as_deref()
                .is_some_and(|s| s.eq_ignore_ascii_case("\\Trash"))
        })
        .or_else(|| {
            folders
                .iter()
                .find(|f| f.name.eq_ignore_ascii_case("Trash"))
        })
}

/// A display name or address of an envelope address, decoded.
pub fn who(a: &Address) -> String {
    a.name
        .as_deref()
        .map(mime::header_text)
        .filter(|n| !n.is_empty())
        .or_else(|| a.email())
        .unwrap_or_default()
}

/// Every real mailbox of an address list (group markers skipped).
pub fn people(list: &[Address]) -> Vec<&Address> {
    list.iter().filter(|a| a.host.is_some()).collect()
}

/// Seconds since the epoch of an RFC 5322 date (or IMAP INTERNALDATE).
pub fn parse_date(raw: &[u8]) -> Option<i64> {
    let text = String::from_utf8_lossy(raw);
    mail_parser::DateTime::parse_rfc822(&text)
        .or_else(|| mail_parser::DateTime::parse_rfc822(&text.replacen('-', " ", 2)))
        .filter(|d| d.year > 0)
        .map(|d| d.to_timestamp())
}

/// `(year, month, day, hour, minute)` of `secs` shifted by `offset` minutes.
fn civil(secs: i64, offset: i32) -> (i64, u32, u32, i64, i64) {
    let t = secs + i64::from(offset) * 60;
    let days = t.div_euclid(86_400);
    let rem = t.rem_euclid(86_400);
    let (y, m, d) = crate::proto::imap::civil_from_days(days);
    (y, m, d, rem / 3600, rem % 3600 / 60)
}

/// A list's date: the time when it is today in the user's zone, else the day.
pub fn short_date(secs: i64, offset: i32, now: i64) -> String {
    let (y, m, d, hh, mm) = civil(secs, offset);
    let (ny, nm, nd, _, _) = civil(now, offset);
    if (y, m, d) == (ny, nm, nd) {
        format!("{hh:02}:{mm:02}")
    } else {
        format!("{y:04}-{m:02}-{d:02}")
    }
}

/// A message page's date: day, time and the zone it is shown in.
pub fn long_date(secs: i64, offset: i32) -> String {
    let (y, m, d, hh, mm) = civil(secs, offset);
    let zone = if offset == 0 {
        "UTC".to_string()
    } else {
        let a = offset.unsigned_abs();
        format!(
            "{}{:02}:{:02}",
            if offset < 0 { '-' } else { '+' },
            a / 60,
            a % 60
        )
    };
    format!("{y:04}-{m:02}-{d:02} {hh:02}:{mm:02} ({zone})")
}

/// A size for people: bytes, KB or MB (1024-based).
pub fn human_size(n: u64) -> String {
    if n < 1024 {
        format!("{n} B")
    } else if n < 1024 * 1024 {
        format!("{:.0} KB", (n as f64 / 1024.0).ceil())
    } else if n < 1024 * 1024 * 1024 {
        format!("{:.1} MB", n as f64 / (1024.0 * 1024.0))
    } else {
        format!("{:.1} GB", n as f64 / (1024.0 * 1024.0 * 1024.0))
    }
}

/// Subject and From read from the message's header itself, for a message
/// whose ENVELOPE lacks them: a server hands NIL for a header that is raw
/// 8-bit in a legacy charset (old Chinese mail), which `mime` still reads.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Fix {
    pub subject: Option<String>,
    pub from: Vec<mime::Mailbox>,
}

/// The unfolded value of the first `name` field of a raw header block.
pub fn header_field(header: &[u8], name: &str) -> Option<Vec<u8>> {
    let mut out: Option<Vec<u8>> = None;
    for line in header.split(|b| *b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            break;
        }
        if let Some(v) = out.as_mut() {
            if line[0] == b' ' || line[0] == b'\t' {
                v.extend_from_slice(line);
                continue;
            }
            break;
        }
        if line.len() > name.len()
            && line[name.len()] == b':'
            && line[..name.len()].eq_ignore_ascii_case(name.as_bytes())
        {
            out = Some(line[name.len() + 1..].to_vec());
        }
    }
    out
}

/// The summaries' rows; for those whose ENVELOPE has no subject or sender,
/// Subject and From come from BODY.PEEK[HEADER] (see [`Fix`]).
pub fn rows(ctx: &mut Ctx, list: &[Summary], show_to: bool) -> Result<Vec<Value>, PageError> {
    let mut out = Vec::with_capacity(list.len());
    for s in list {
        const LOST: &[u8] = "\u{FFFD}".as_bytes();
        let lost = |b: &[u8]| b.windows(LOST.len()).any(|w| w == LOST);
        let broken = s.envelope.subject.as_deref().is_none_or(lost)
            || s.envelope.from.is_empty()
            || s.envelope
                .from
                .iter()
                .any(|a| a.name.as_deref().is_some_and(lost));
        let fix = if broken {
            let head = ctx
                .imap()
                .fetch_section(s.uid, "HEADER")?
                .unwrap_or_default();
            Some(Fix {
                subject: header_field(&head, "Subject").map(|v| mime::header_text(&v)),
                from: header_field(&head, "From")
                    .map(|v| mime::address_list(&v))
                    .unwrap_or_default(),
            })
        } else {
            None
        };
        out.push(row(ctx, s, show_to, fix.as_ref()));
    }
    Ok(out)
}

/// One row of a message list.
pub fn row(ctx: &Ctx, s: &Summary, show_to: bool, fix: Option<&Fix>) -> Value {
    let offset = ctx
        .auth
        .as_ref()
        .map(|a| a.prefs.tz_offset_minutes())
        .unwrap_or(0);
    let now = ctx.now as i64;
    let secs = s.envelope.date.as_deref().and_then(parse_date).or_else(|| {
        s.internal_date
            .as_deref()
            .and_then(|d| parse_date(d.as_bytes()))
    });
    let list = if show_to {
        &s.envelope.to
    } else {
        &s.envelope.from
    };
    let mut names: Vec<String> = people(list).into_iter().map(who).collect();
    let mut from_addr = people(&s.envelope.from)
        .first()
        .and_then(|a| a.email())
        .unwrap_or_default();
    let mut subject = s
        .envelope
        .subject
        .as_deref()
        .map(mime::header_text)
        .unwrap_or_default();
    if let Some(f) = fix {
        if let Some(t) = f.subject.clone().filter(|t| !t.is_empty()) {
            subject = t;
        }
        if !f.from.is_empty() {
            if let Some(m) = f.from.first() {
                from_addr = m.address.clone();
            }
            if !show_to {
                names = f
                    .from
                    .iter()
                    .map(|m| m.name.clone().unwrap_or_else(|| m.address.clone()))
                    .collect();
            }
        }
    }
    json!({
        "uid": s.uid,
        "subject": subject,
        "who": names.join(", "),
        "from_addr": from_addr,
        "date": secs.map(|t| short_date(t, offset, now)).unwrap_or_default(),
        "date_full": secs.map(|t| long_date(t, offset)).unwrap_or_default(),
        "size": human_size(s.size),
        "seen": s.has_flag("\\Seen"),
        "flagged": s.has_flag("\\Flagged"),
        "answered": s.has_flag("\\Answered"),
        "attachment": s.structure.as_ref().is_some_and(|b| b.has_attachment()),
        "priority": match s.priority {
            Some(1) | Some(2) => Some("high"),
            Some(4) | Some(5) => Some("low"),
            _ => None,
        },
    })
}

/// Whether the folder is one where the list shows recipients (Sent, Drafts).
pub fn shows_recipients(folders: &[Folder], name: &str) -> bool {
    folders.iter().any(|f| {
        f.name == name
            && f.special.as_deref().is_some_and(|s| {
                s.eq_ignore_ascii_case("\\Sent") || s.eq_ignore_ascii_case("\\Drafts")
            })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_are_checked() {
        assert_eq!(check_uid(Some("42")).unwrap(), 42);
        for bad in [
            None,
            Some(""),
            Some("0"),
            Some("-1"),
            Some("1 2"),
            Some("99999999999"),
            Some("1e3"),
        ] {
            assert!(check_uid(bad).is_err(), "{bad:?}");
        }
        assert_eq!(check_section(Some("1.2")).unwrap(), "1.2");
        for bad in ["", "1..2", "1.", "HEADER", "1.MIME", "0", "../1", "1 2"] {
            assert!(check_section(Some(bad)).is_err(), "{bad:?}");
        }
        assert!(check_folder(Some("工作.项目")).is_ok());
        assert!(check_folder(Some("a\r\nb")).is_err());
        assert_eq!(check_folder(None).unwrap(), "INBOX");
    }

    #[test]
    fn orders_parse_with_newest_first_by_default() {
        let o = Order::parse(None, None);
        assert_eq!((o.name, o.reverse), ("date", true));
        let o = Order::parse(Some("subject"), None);
        assert_eq!((o.key, o.reverse), (SortKey::Subject, false));
        let o = Order::parse(Some("size"), Some("1"));
        assert_eq!(o.query(), "sort=size&rev=1");
        assert_eq!(Order::parse(Some("evil"), Some("0")).name, "date");
    }

    #[test]
    fn header_fields_are_found_unfolded() {
        let h = b"Received: x\r\nSUBJECT: \xce\xde\r\n two\r\nFrom: a@b\r\n\r\nSubject: body";
        assert_eq!(header_field(h, "subject").unwrap(), b" \xce\xde two");
        assert_eq!(header_field(h, "From").unwrap(), b" a@b");
        assert_eq!(header_field(h, "To"), None);
        assert_eq!(header_field(b"Subject", "Subject"), None);
    }

    #[test]
    fn the_mail_templates_render() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("share/webmail/skins");
        for s in crate::webmail::skin::available(&dir) {
            let skin = crate::webmail::skin::Skin::open(&dir, &s);
            for page in ["list.html", "read.html", "search.html", "quota.html"] {
                skin.render(page, &json!({"t": {}, "base": ""}))
                    .unwrap_or_else(|e| panic!("{s}/{page}: {e}"));
            }
        }
    }

    #[test]
    fn dates_are_shown_in_the_users_zone() {
        // 2024-03-05 23:30 UTC is 2024-03-06 07:30 in +08:00.
        let t = parse_date(b"Tue, 5 Mar 2024 23:30:00 +0000").unwrap();
        assert_eq!(long_date(t, 480), "2024-03-06 07:30 (+08:00)");
        assert_eq!(long_date(t, 0), "2024-03-05 23:30 (UTC)");
        assert_eq!(long_date(t, -570), "2024-03-05 14:00 (-09:30)");
        assert_eq!(short_date(t, 480, t + 3600), "07:30");
        assert_eq!(short_date(t, 0, t + 86_400), "2024-03-05");
        assert_eq!(
            parse_date(b"05-Mar-2024 10:00:00 +0000"),
            parse_date(b"5 Mar 2024 10:00:00 +0000")
        );
        assert_eq!(parse_date(b"garbage"), None);
        assert_eq!(human_size(300), "300 B");
        assert_eq!(human_size(1500), "2 KB");
        assert_eq!(human_size(3 * 1024 * 1024 / 2), "1.5 MB");
    }
}
