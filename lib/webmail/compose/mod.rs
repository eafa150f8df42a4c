//! Writing mail in the webmail (pure): the message being written
//! ([`Draft`]), address lists as typed ([`parse_addresses`]), attachment
//! names made safe, signatures, and — in the submodules — building the
//! message ([`build`]), reading a saved draft back ([`build::read_draft`]),
//! replies and forwards ([`reply`]) and read receipts ([`build::mdn`]).
//!
//! The webmail keeps no state of its own: between two requests the message
//! being written, with its attachments, is a message in the user's Drafts
//! folder (see `pages/compose.rs` and doc/ARCHITECTURE.md). What the page
//! needs that a draft has no standard header for travels in headers of our
//! own (`X-Kmp-Webmail-*`) which only drafts carry, never the mail sent.

pub mod build;
pub mod reply;

use serde::{Deserialize, Serialize};

/// Most addresses in one of To, Cc, Bcc.
pub const MAX_ADDRESSES: usize = 200;
/// Longest file name kept (characters).
pub const MAX_FILE_NAME: usize = 200;
/// The METADATA entry that holds a user's [`ComposePrefs`] (JSON).
pub const COMPOSE_ENTRY: &str = "/private/vendor/kmpromail/webmail/compose";
/// Most signatures a user keeps, and the longest one (bytes).
pub const MAX_SIGNATURES: usize = 20;
pub const MAX_SIGNATURE_LEN: usize = 4000;

/// One mailbox of an address list as the user typed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipient {
    /// The display name, unquoted; None when there is none.
    pub name: Option<String>,
    /// `local@domain`.
    pub address: String,
}

impl Recipient {
    /// `Name <address>` (the name quoted when it needs it), or the address.
    pub fn display(&self) -> String {
        match &self.name {
            Some(n) if n.chars().any(|c| "()<>[]:;@\\,.\"".contains(c)) => {
                format!(
                    "\"{}\" <{}>",
                    n.replace('\\', "\\\\").replace('"', "\\\""),
                    self.address
                )
            }
            Some(n) => format!("{n} <{}>", self.address),
            None => self.address.clone(),
        }
    }
}

/// An address list that does not parse: the piece that is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressError {
    pub item: String,
}

impl std::fmt::Display for AddressError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "not an address: {}", self.item)
    }
}

/// Splits an address field into items at `,`, `;` and line breaks outside
/// quotes and angle brackets (items untrimmed, empty ones kept), and
/// whether every quote and angle bracket was closed.
pub fn split_items(s: &str) -> (Vec<String>, bool) {
    let mut items = Vec::new();
    let mut cur = String::new();
    let (mut quoted, mut angle, mut escaped) = (false, false, false);
    for c in s.chars() {
        if escaped {
            cur.push(c);
            escaped = false;
            continue;
        }
        match c {
            '\\' if quoted => {
                escaped = true;
                cur.push(c);
            }
            '"' => {
                quoted = !quoted;
                cur.push(c);
            }
            '<' if !quoted => {
                angle = true;
                cur.push(c);
            }
            '>' if !quoted => {
                angle = false;
                cur.push(c);
            }
            ',' | ';' | '\n' | '\r' if !quoted && !angle => items.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    items.push(cur);
    (items, !quoted && !angle)
}

/// Parses an address list as a person types it into To, Cc or Bcc:
/// `a@b.example, "Li, Lei" <l@c.example>; 张三 <z@d.example>`. Items are
/// separated by `,` or `;` outside quotes and angle brackets; empty items
/// are skipped; each item is `addr`, `<addr>` or `name <addr>`. An address
/// is `local@domain` without spaces, brackets, quotes or control
/// characters (non-ASCII allowed, RFC 6531), the domain made of labels.
/// The first item that is not one is the error.
pub fn parse_addresses(s: &str) -> Result<Vec<Recipient>, AddressError> {
    let (items, closed) = split_items(s);
    if !closed {
        return Err(AddressError {
            item: s.trim().chars().take(100).collect(),
        });
    }
    let mut out = Vec::new();
    for item in items {
        let item = item.trim();
        if item.is_empty() {
            continue;
        }
        let bad = || AddressError {
            item: item.chars().take(100).collect(),
        };
        let r = parse_one(item).ok_or_else(bad)?;
        out.push(r);
        if out.len() > MAX_ADDRESSES {
            return Err(bad());
        }
    }
    Ok(out)
}

fn parse_one(item: &str) -> Option<Recipient> {
    if let Some(open) = item.rfind('<') {
        let rest = item[open + 1..].strip_suffix('>')?;
        let name = item[..open].trim();
        let name = match name.strip_prefix('"').and_then(|n| n.strip_suffix('"')) {
            Some(q) => q.replace("\\\"", "\"").replace("\\\\", "\\"),
            None => {
                if name.contains('"') {
                    return None;
                }
                name.to_string()
            }
        };
        if name.chars().any(|c| c.is_control()) || name.chars().count() > 200 {
            return None;
        }
        let address = rest.trim();
        valid_address(address).then(|| Recipient {
            name: (!name.is_empty()).then_some(name),
            address: address.to_string(),
        })
    } else {
        valid_address(item).then(|| Recipient {
            name: None,
            address: item.to_string(),
        })
    }
}

/// `local@domain` as [`parse_addresses`] accepts it.
pub fn valid_address(a: &str) -> bool {
    let Some((local, domain)) = a.rsplit_once('@') else {
        return false;
    };
    let local_ok = !local.is_empty()
        && local.len() <= 64
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && local
            .chars()
            .all(|c| !c.is_control() && !c.is_whitespace() && !"()<>[]:;@\\,\"".contains(c));
    let domain_ok = !domain.is_empty()
        && domain.len() <= 253
        && domain.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_alphanumeric() || c == '-')
        });
    local_ok && domain_ok
}

/// The priority chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Priority {
    High,
    #[default]
    Normal,
    Low,
}

impl Priority {
    /// From the form's value (`high`, `low`; anything else is normal).
    pub fn parse(v: Option<&str>) -> Priority {
        match v {
            Some("high") => Priority::High,
            Some("low") => Priority::Low,
            _ => Priority::Normal,
        }
    }

    /// The form's value.
    pub fn name(self) -> &'static str {
        match self {
            Priority::High => "high",
            Priority::Normal => "normal",
            Priority::Low => "low",
        }
    }

    /// From a message's X-Priority (1..5).
    pub fn from_level(level: Option<u8>) -> Priority {
        match level {
            Some(1) | Some(2) => Priority::High,
            Some(4) | Some(5) => Priority::Low,
            _ => Priority::Normal,
        }
    }
}

/// A file attached to the message being written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    /// Made safe by [`clean_file_name`].
    pub name: String,
    /// `type/subtype`, lower-cased, checked.
    pub content_type: String,
    pub data: Vec<u8>,
}

/// What the message being written is an answer to or a forward of, so
/// sending it can flag that message (`\Answered`, `$Forwarded`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub forward: bool,
    pub folder: String,
    pub uid: u32,
}

impl Origin {
    /// `reply UID FOLDER` / `forward UID FOLDER`.
    pub fn to_text(&self) -> String {
        format!(
            "{} {} {}",
            if self.forward { "forward" } else { "reply" },
            self.uid,
            self.folder
        )
    }

    /// The inverse of [`Origin::to_text`]; None when it does not read.
    pub fn parse(s: &str) -> Option<Origin> {
        let mut it = s.trim().splitn(3, ' ');
        let forward = match it.next()? {
            "forward" => true,
            "reply" => false,
            _ => return None,
        };
        let uid: u32 = it.next()?.parse().ok().filter(|n| *n > 0)?;
        let folder = it.next()?.to_string();
        (!folder.is_empty()
            && folder.chars().count() <= 1000
            && !folder.chars().any(|c| c.is_control()))
        .then_some(Origin {
            forward,
            uid,
            folder,
        })
    }
}

/// A stored message attached by reference (a forward as attachment where
/// the servers offer URLAUTH, CATENATE and BURL): the IMAP server copies
/// it into the copy in Sent and the submission server fetches it itself,
/// so the webmail never downloads it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Linked {
    pub folder: String,
    pub uidvalidity: u32,
    pub uid: u32,
    /// RFC822.SIZE.
    pub size: u64,
    /// The attachment's file name.
    pub name: String,
}

impl Linked {
    /// As JSON, for a hidden field and the draft's header.
    pub fn to_text(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The inverse of [`Linked::to_text`], checked.
    pub fn parse(s: &str) -> Option<Linked> {
        let l: Linked = serde_json::from_str(s.trim()).ok()?;
        let ok = l.uid > 0
            && !l.folder.is_empty()
            && l.folder.chars().count() <= 1000
            && !l.folder.chars().any(|c| c.is_control());
        ok.then(|| Linked {
            name: clean_file_name(&l.name),
            ..l
        })
    }

    /// The message's IMAP URL (RFC 5092), relative (this user's store).
    pub fn relative_url(&self) -> String {
        use crate::proto::imap::url::encode;
        format!(
            "/{};UIDVALIDITY={}/;UID={}",
            encode(&self.folder),
            self.uidvalidity,
            self.uid
        )
    }

    /// The rump of a URLAUTH URL (RFC 4467) that lets the submission
    /// server fetch the message for `user` (`local@domain`).
    pub fn submit_rump(&self, user: &str) -> String {
        use crate::proto::imap::url::encode;
        let (local, domain) = user.rsplit_once('@').unwrap_or((user, "localhost"));
        format!(
            "imap://{}@{}{};urlauth=submit+{}",
            encode(local),
            encode(domain),
            self.relative_url(),
            encode(user)
        )
    }
}

/// The message being written.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Draft {
    /// Address lists as typed.
    pub to: String,
    pub cc: String,
    pub bcc: String,
    pub subject: String,
    /// The text, signature included, line ends "\n".
    pub body: String,
    pub priority: Priority,
    /// Ask for a read receipt (Disposition-Notification-To).
    pub receipt: bool,
    /// Keep a copy in Sent.
    pub save_sent: bool,
    /// Message-IDs, without angle brackets.
    pub in_reply_to: Option<String>,
    pub references: Vec<String>,
    pub origin: Option<Origin>,
    pub attachments: Vec<Attachment>,
    /// A stored message attached by reference, listed after `attachments`.
    pub linked: Option<Linked>,
}

impl Draft {
    /// The size of the attachments together.
    pub fn attachments_size(&self) -> u64 {
        self.attachments
            .iter()
            .map(|a| a.data.len() as u64)
            .sum::<u64>()
            + self.linked.as_ref().map_or(0, |l| l.size)
    }
}

/// A file name from a browser made safe to keep and to send: the last path
/// component (`/` and `\`), control characters and the characters Windows
/// refuses dropped, leading dots and spaces removed (no `..`, no hidden
/// file), at most [`MAX_FILE_NAME`] characters; `attachment` when nothing
/// is left. Chinese and other letters are kept as they are.
pub fn clean_file_name(name: &str) -> String {
    let last = name.rsplit(['/', '\\']).next().unwrap_or_default();
    let kept: String = last
        .chars()
        .filter(|c| !c.is_control() && !"<>:\"|?*".contains(*c))
        .collect();
    let trimmed = kept
        .trim_start_matches(['.', ' '])
        .trim_end_matches(['.', ' ']);
    let out: String = trimmed.chars().take(MAX_FILE_NAME).collect();
    if out.is_empty() {
        "attachment".into()
    } else {
        out
    }
}

/// A media type from a browser: `type/subtype` of token characters,
/// lower-cased; `application/octet-stream` when it is anything else.
pub fn clean_content_type(t: &str) -> String {
    let t = t.trim();
    let ok = t.len() <= 100
        && t.split_once('/').is_some_and(|(a, b)| {
            !a.is_empty()
                && !b.is_empty()
                && a.bytes()
                    .chain(b.bytes())
                    .all(|c| c.is_ascii_alphanumeric() || b"+-.".contains(&c))
        });
    if ok {
        t.to_ascii_lowercase()
    } else {
        "application/octet-stream".into()
    }
}

/// One signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signature {
    pub name: String,
    pub text: String,
}

fn yes() -> bool {
    true
}

/// A user's settings for writing: the name shown beside the address,
/// whether a copy of sent mail goes to Sent, the signatures and which one
/// is the default. Kept as JSON in [`COMPOSE_ENTRY`] (not in the `key=value`
/// settings, since signatures span lines).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComposePrefs {
    #[serde(default)]
    pub from_name: Option<String>,
    #[serde(default = "yes")]
    pub save_sent: bool,
    #[serde(default)]
    pub signatures: Vec<Signature>,
    /// An index into `signatures`.
    #[serde(default)]
    pub default_signature: Option<usize>,
}

impl Default for ComposePrefs {
    fn default() -> ComposePrefs {
        ComposePrefs {
            from_name: None,
            save_sent: true,
            signatures: Vec::new(),
            default_signature: None,
        }
    }
}

impl ComposePrefs {
    /// From [`COMPOSE_ENTRY`]'s value, read as untrusted: what does not
    /// parse is the defaults; too many or too long signatures are cut.
    pub fn parse(value: Option<&[u8]>) -> ComposePrefs {
        let mut s: ComposePrefs = value
            .and_then(|v| serde_json::from_slice(v).ok())
            .unwrap_or_default();
        s.signatures.truncate(MAX_SIGNATURES);
        for sig in &mut s.signatures {
            sig.name = sig
                .name
                .chars()
                .filter(|c| !c.is_control())
                .take(100)
                .collect();
            sig.text = cut(&sig.text.replace("\r\n", "\n"), MAX_SIGNATURE_LEN);
        }
        if s.default_signature.is_some_and(|d| d >= s.signatures.len()) {
            s.default_signature = None;
        }
        s.from_name = s
            .from_name
            .map(|n| {
                n.chars()
                    .filter(|c| !c.is_control())
                    .take(100)
                    .collect::<String>()
            })
            .map(|n| n.trim().to_string())
            .filter(|n| !n.is_empty());
        s
    }

    /// The entry's value.
    pub fn to_text(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The text of signature `i`, if there is one.
    pub fn signature(&self, i: Option<usize>) -> Option<&str> {
        i.and_then(|i| self.signatures.get(i))
            .map(|s| s.text.as_str())
    }
}

/// `s` cut to at most `max` bytes on a character boundary.
pub fn cut(s: &str, max: usize) -> String {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

/// The signature separator (RFC 3676 4.3).
pub const SIG_SEPARATOR: &str = "-- \n";

/// `body` with its signature (after the last `-- ` line) replaced by `sig`
/// (None: removed). A body without one gets it appended.
pub fn with_signature(body: &str, sig: Option<&str>) -> String {
    let text = match body.rfind(&format!("\n{SIG_SEPARATOR}")) {
        Some(i) => &body[..i + 1],
        None if body.starts_with(SIG_SEPARATOR) => "",
        None => body,
    };
    let mut out = text.to_string();
    if let Some(sig) = sig.filter(|s| !s.trim().is_empty()) {
        if !out.is_empty() && !out.ends_with('\n') {
            out.push('\n');
        }
        if out.is_empty() {
            out.push('\n');
        }
        out.push_str(SIG_SEPARATOR);
        out.push_str(sig.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests;
