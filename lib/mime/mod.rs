//! Mail decoded for people to read: the webmail's message pages now, Sieve
//! header tests and the list manager later.
//!
//! What it owns: charsets ([`decode`]: GB2312/GBK as GB18030, Big5 as
//! Big5-HKSCS, HZ-GB-2312, UTF-7, ISO-2022-JP, ISO-8859-x, Windows-125x,
//! detection with chardetng when the label is missing or wrong), RFC 2047
//! header text ([`header_text`]), address lists ([`address_list`]), RFC 2231
//! parameters (attachment names), the choice of the text and HTML bodies of
//! a message and its attachments ([`view`]), one part by its IMAP section
//! ([`part`]), the sanitising of mail HTML (ammonia, with `cid:` images
//! served by the caller and remote images blocked by default), plain text
//! as HTML ([`text_to_html`]) and the Content-Disposition of a download
//! ([`content_disposition`], RFC 6266).
//!
//! What it does not own: fetching (the webmail asks kmp-imapd for
//! `BODY.PEEK[]` and passes the bytes here), templates, and the page's own
//! Content-Security-Policy (mail HTML is meant for a sandboxed frame).
//!
//! MIME structure comes from mail-parser, as in kmp-imapd, and the section
//! numbers are the ones IMAP's `BODY[section]` uses ([`tree::find`] is
//! shared with kmp-imapd). Everything mail-parser would decode itself
//! (charsets, encoded-words, parameters) is decoded here from the raw
//! bytes instead: mail-parser maps HZ to U+FFFD, reads raw 8-bit names as
//! UTF-8 and does not detect a wrong charset.
//!
//! Every function takes hostile input: nothing here panics, allocates more
//! than a small multiple of its input, or does more than linear work.

pub mod charset;
mod header;
mod html;
mod survey;
pub mod transfer;
pub mod tree;
mod view;

pub use charset::decode;

/// An unstructured header value (Subject, a display name) for display:
/// RFC 2047 encoded-words in any charset (B and Q; adjacent words joined
/// without the white space between them; a multi-byte character split
/// across words kept whole), raw 8-bit text detected (chardetng), which is
/// common in old Chinese mail. Folding, tabs and control characters are
/// removed; the result is one trimmed line.
pub fn header_text(raw: &[u8]) -> String {
    header::header_text(raw)
}

/// One mailbox of an address list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mailbox {
    /// The display name, decoded; None when there is none (or it is empty).
    pub name: Option<String>,
    /// The addr-spec, as written (a non-ASCII one read as UTF-8).
    pub address: String,
}

/// The mailboxes of a From, To, Cc or Reply-To value (the field's value
/// only, without its name): groups flattened (their names dropped), names
/// decoded as [`header_text`] does, the old `addr (Name)` form read, source
/// routes dropped, empty entries skipped.
pub fn address_list(raw: &[u8]) -> Vec<Mailbox> {
    header::address_list(raw)
}

/// A part offered for download (or shown inline) rather than as the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    /// The part's IMAP section ("2", "1.3"), for [`part`] and `BODY[...]`.
    pub section: String,
    /// The file name: RFC 2231, RFC 2047 and raw 8-bit names decoded, the
    /// last path component only, never empty (`part-2.png` when the sender
    /// gave none; the Subject and `.eml` for a message).
    pub name: String,
    /// `type/subtype`, lower-cased.
    pub content_type: String,
    /// Size once the transfer encoding is removed.
    pub size: u64,
    /// The Content-ID without its angle brackets.
    pub content_id: Option<String>,
    /// Content-Disposition inline (or none with a Content-ID).
    pub inline: bool,
}

/// A message for display.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct View {
    pub subject: String,
    pub from: Vec<Mailbox>,
    pub to: Vec<Mailbox>,
    pub cc: Vec<Mailbox>,
    pub reply_to: Vec<Mailbox>,
    /// Date: in seconds since the epoch, when it parses.
    pub date: Option<i64>,
    /// Date: as written (decoded as header text), when there is one.
    pub date_text: Option<String>,
    /// Message-ID without its angle brackets.
    pub message_id: Option<String>,
    /// 1 (highest) to 5 (lowest), from X-Priority, Importance or
    /// X-MSMail-Priority; None when the message says nothing.
    pub priority: Option<u8>,
    /// The plain-text body (line ends are "\n").
    pub text: Option<String>,
    /// The HTML body, sanitised.
    pub html: Option<Html>,
    /// Attachments in message order. Inline parts that the HTML body uses
    /// through `cid:` are not listed; a nested message/rfc822 is one
    /// attachment.
    pub attachments: Vec<Attachment>,
}

/// Sanitised mail HTML.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Html {
    /// Safe to put in a sandboxed iframe's `srcdoc` or to serve as a page:
    /// no script, form, frame, event handler or executable URL; links are
    /// http, https or mailto and open in a new tab; `cid:` images point at
    /// the caller's URL for that part; styles are filtered declaration by
    /// declaration.
    pub body: String,
    /// Remote images (img src, background attributes, CSS url()) removed
    /// because `allow_remote` was false.
    pub blocked_remote: usize,
}

/// How [`view`] renders HTML.
pub struct ViewOptions<'a> {
    /// Keep http and https images (the user allowed them).
    pub allow_remote: bool,
    /// The URL the page serves the part with this IMAP section at (used
    /// for `cid:` images).
    pub cid_url: &'a dyn Fn(&str) -> String,
    /// Write the sanitised HTML into [`Html::body`]. False for a page that
    /// shows the HTML elsewhere (the message page, whose frame is its own
    /// request): the body is then left empty and only what the sanitiser
    /// would block and use is found (remote images counted in
    /// [`Html::blocked_remote`], inline `cid:` parts left out of the
    /// attachments), reading the tags without building and writing the
    /// document, for a fraction of the time.
    pub write_html: bool,
}

/// A message (as BODY[] gives it, CRLF or LF line ends) for display:
/// decoded headers; the text/plain and text/html bodies (from
/// multipart/alternative the last of each kind, in multipart/related the
/// root, in multipart/mixed the first, later inline text parts appended);
/// the attachments. Bodies are decoded with their declared charset, or
/// guessed with the sender's top-level domain as a hint.
pub fn view(raw: &[u8], opts: &ViewOptions) -> View {
    view::view(raw, opts)
}

/// One part, transfer-decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    /// The content with its Content-Transfer-Encoding removed (no charset
    /// conversion).
    pub bytes: Vec<u8>,
    /// `type/subtype`, lower-cased.
    pub content_type: String,
    /// The decoded file name, as [`Attachment::name`], when it has one.
    pub name: Option<String>,
}

/// The part at an IMAP section ("1", "2.1"; the numbering of `BODY[...]`),
/// or None when there is none or the section is malformed.
pub fn part(raw: &[u8], section: &str) -> Option<Part> {
    view::part(raw, section)
}

/// A Content-Disposition header value (RFC 6266) for a download: `kind` is
/// "inline" or else "attachment"; an ASCII fallback `filename="..."` and,
/// when the name is not plain ASCII, `filename*=UTF-8''...`. The name is
/// cut to its last path component and stripped of control characters, so
/// no CR, LF or quote gets into the header.
pub fn content_disposition(kind: &str, name: &str) -> String {
    header::content_disposition(kind, name)
}

/// Plain text as HTML: escaped, line breaks kept (a `pre` that wraps),
/// http and https URLs made links that open in a new tab
/// (`rel="noopener noreferrer" target="_blank"`).
pub fn text_to_html(text: &str) -> String {
    html::text_to_html(text)
}

#[cfg(test)]
mod tests;
