//! Turning what a program wrote on standard input into a queueable message:
//! LF line endings, the end-of-message dot (unless `-i`), a header section
//! even when the input had none, Date/Message-ID/From added when missing,
//! Bcc removed, and `-t`'s recipients read from To, Cc and Bcc. The header
//! fields only kmp-smtpd's scanners may write (`X-Kmpromail-Junk`,
//! `X-Spam-*`, `X-Virus-Scanned`: kmp-local files into Junk by them and
//! Sieve scripts test them) are removed, as kmp-smtpd removes them, so a
//! local sender can file their mail neither into someone's Junk nor out of it.
//! An Authentication-Results field naming our authserv-id is removed too,
//! unless the caller is kmp-local (a Sieve redirect, a list post: mail from
//! outside that kmp-remote will ARC-seal with these results) or root: a
//! local user must not have us vouch for results we never reached.

use mail_builder::headers::date::Date;
use mail_parser::{HeaderName, MessageParser};

use super::{Context, Options};
use crate::antispam::scan::verdict::OUR_HEADERS;
use crate::queue::QueueId;

/// A message ready for the queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prepared {
    /// The message, LF line endings.
    pub bytes: Vec<u8>,
    /// With `-t`: the addresses in To, Cc and Bcc.
    pub header_recipients: Vec<String>,
}

/// Prepares `input` for the queue as message `id` from `sender`.
pub fn prepare(
    ctx: &Context,
    opts: &Options,
    sender: &str,
    input: &[u8],
    id: &QueueId,
) -> Prepared {
    let mut text = crlf_to_lf(input);
    if !opts.ignore_dots {
        truncate_at_dot(&mut text);
    }
    let h = prepare_head(ctx, opts, sender, &text, id);
    let mut out = h.bytes;
    out.extend_from_slice(&text[h.body_start..]);
    if !out.ends_with(b"\n") {
        out.push(b'\n');
    }
    Prepared {
        bytes: out,
        header_recipients: h.header_recipients,
    }
}

/// The header section to queue, made from the start of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    /// Received, the header fields but Bcc, the missing From, Date and
    /// Message-ID, and the empty line.
    pub bytes: Vec<u8>,
    /// Where the body starts in the text the head was made from.
    pub body_start: usize,
    /// With `-t`: the addresses in To, Cc and Bcc.
    pub header_recipients: Vec<String>,
}

/// The header section for `text` (LF line ends, the end-of-message dot
/// already handled), which must hold at least the whole header section
/// (see [`header_complete`]): the body is streamed after it.
pub fn prepare_head(
    ctx: &Context,
    opts: &Options,
    sender: &str,
    text: &[u8],
    id: &QueueId,
) -> Head {
    // An mbox "From " line is not a header (Postfix drops it too).
    let skip = mbox_line(text);
    let text = &text[skip..];
    let (head_len, body_start) = split(text);
    let head = &text[..head_len];
    let fields = fields(head);
    let has = |name: &str| {
        fields
            .iter()
            .any(|f| field_name(f).eq_ignore_ascii_case(name))
    };
    let mut header_recipients = Vec::new();
    if opts.from_headers {
        if let Some(msg) = MessageParser::default().parse_headers(head) {
            for name in [HeaderName::To, HeaderName::Cc, HeaderName::Bcc] {
                for v in msg.header_values(name) {
                    if let Some(a) = v.as_address() {
                        for addr in a.iter() {
                            if let Some(s) = addr.address() {
                                header_recipients.push(s.to_string());
                            }
                        }
                    }
                }
            }
        }
    }
    let host = ctx.cfg.str("system.hostname");
    let now = crate::clock::Clock::System.now();
    let date = Date::new(now as i64).to_rfc822();
    let mut out = Vec::with_capacity(head.len() + 512);
    out.extend_from_slice(
        format!(
            "Received: by {host} (kmp-inject, from userid {});\n\t{date}\n",
            ctx.uid
        )
        .as_bytes(),
    );
    let ours = (!keeps_our_results(ctx)).then(|| authserv_id_of(ctx));
    for f in &fields {
        let name = field_name(f).to_ascii_lowercase();
        let forged = name == "authentication-results"
            && ours.as_ref().is_some_and(|id| {
                crate::mailauth::header::split_field(f)
                    .and_then(|(_, v)| crate::mailauth::header::authserv_id(v))
                    .as_deref()
                    == Some(id.as_str())
            });
        if name != "bcc" && !OUR_HEADERS.contains(&name.as_str()) && !forged {
            out.extend_from_slice(f);
        }
    }
    if !has("from") {
        let addr = if sender.is_empty() {
            ctx.qualify(&ctx.login)
        } else {
            sender.to_string()
        };
        let name = opts.full_name.clone().unwrap_or_else(|| ctx.gecos.clone());
        out.extend_from_slice(format!("From: {}\n", mailbox(&name, &addr)).as_bytes());
    }
    if !has("date") {
        out.extend_from_slice(format!("Date: {date}\n").as_bytes());
    }
    if !has("message-id") {
        out.extend_from_slice(format!("Message-ID: <{id}@{host}>\n").as_bytes());
    }
    out.push(b'\n');
    Head {
        bytes: out,
        body_start: skip + body_start,
        header_recipients,
    }
}

/// Whether the caller may hand us our own Authentication-Results: root,
/// kmp-local's user (`privileges.local`), or anyone when the programs do
/// not change user (the caller then owns the queue anyway).
fn keeps_our_results(ctx: &Context) -> bool {
    if ctx.uid == 0 {
        return true;
    }
    match ctx.cfg.str("privileges.local") {
        "" => true,
        name => nix::unistd::User::from_name(name)
            .ok()
            .flatten()
            .is_some_and(|u| u.uid.as_raw() == ctx.uid),
    }
}

/// Our authserv-id (`auth.authserv_id`, else the host name), lower-cased.
fn authserv_id_of(ctx: &Context) -> String {
    match ctx.cfg.str("auth.authserv_id") {
        "" => ctx.cfg.str("system.hostname"),
        s => s,
    }
    .to_lowercase()
}

/// The length of an mbox "From " line at the start of `text`, if any.
fn mbox_line(text: &[u8]) -> usize {
    if text.starts_with(b"From ") {
        text.iter()
            .position(|&b| b == b'\n')
            .map_or(text.len(), |p| p + 1)
    } else {
        0
    }
}

/// Whether `text`, the start of a message, holds its whole header section
/// as [`prepare_head`] reads it (`eof`: nothing more will come).
pub fn header_complete(text: &[u8], eof: bool) -> bool {
    if text.starts_with(b"From ") && !text.contains(&b'\n') {
        return eof;
    }
    let text = &text[mbox_line(text)..];
    let mut first = true;
    for line in text.split_inclusive(|&b| b == b'\n') {
        if !line.ends_with(b"\n") {
            // Unfinished: a non-header start already decides.
            let cont = !first && matches!(line[0], b' ' | b'\t');
            let could_be_field =
                line.iter().all(|&b| (33..=126).contains(&b) && b != b':') || is_field_start(line);
            return eof || !(cont || could_be_field);
        }
        if line == b"\n" {
            return true;
        }
        let cont = !first && matches!(line[0], b' ' | b'\t');
        if !cont && !is_field_start(line) {
            return true;
        }
        first = false;
    }
    eof
}
/// CRLF becomes LF; a bare CR is content and stays.
pub fn crlf_to_lf(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        if input[i] == b'\r' && input.get(i + 1) == Some(&b'\n') {
            i += 1;
            continue;
        }
        out.push(input[i]);
        i += 1;
    }
    out
}

/// Without `-i`, a line holding a single dot ends the message.
fn truncate_at_dot(text: &mut Vec<u8>) {
    if text.starts_with(b".\n") || text == b"." {
        text.clear();
        return;
    }
    if let Some(p) = text.windows(3).position(|w| w == b"\n.\n") {
        text.truncate(p + 1);
    } else if text.ends_with(b"\n.") {
        text.truncate(text.len() - 1);
    }
}

/// The length of the header section and where the body starts. A first
/// line that is not a header field means there is no header section at all;
/// a non-header line later ends it (and gets the empty line it lacked).
fn split(text: &[u8]) -> (usize, usize) {
    let mut pos = 0;
    let mut first = true;
    while pos < text.len() {
        let end = text[pos..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(text.len(), |p| pos + p + 1);
        let line = &text[pos..end];
        if line == b"\n" {
            return (pos, end);
        }
        let cont = !first && matches!(line[0], b' ' | b'\t');
        if !cont && !is_field_start(line) {
            return (pos, pos);
        }
        first = false;
        pos = end;
    }
    (pos, pos)
}

/// `name:` with a name of printable ASCII but colon (RFC 5322 section 2.2).
fn is_field_start(line: &[u8]) -> bool {
    match line.iter().position(|&b| b == b':') {
        Some(0) | None => false,
        Some(p) => line[..p].iter().all(|&b| (33..=126).contains(&b)),
    }
}

/// The header fields, each with its continuation lines and final LF.
fn fields(head: &[u8]) -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = Vec::new();
    for line in head.split_inclusive(|&b| b == b'\n') {
        match (line.first(), out.last_mut()) {
            (Some(b' ' | b'\t'), Some(last)) => last.extend_from_slice(line),
            _ => out.push(line.to_vec()),
        }
    }
    for f in out.iter_mut() {
        if !f.ends_with(b"\n") {
            f.push(b'\n');
        }
    }
    out
}

fn field_name(f: &[u8]) -> String {
    let end = f.iter().position(|&b| b == b':').unwrap_or(0);
    String::from_utf8_lossy(&f[..end]).trim().to_string()
}

/// `Name <addr>`, the name quoted or encoded (RFC 2047) as it needs.
fn mailbox(name: &str, addr: &str) -> String {
    let name = name.trim();
    if name.is_empty() {
        return addr.to_string();
    }
    if !name.is_ascii() {
        use base64::Engine;
        let b = base64::engine::general_purpose::STANDARD.encode(name.as_bytes());
        return format!("=?UTF-8?B?{b}?= <{addr}>");
    }
    if name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || " !#$%&'*+-/=?^_`{|}~".contains(c))
    {
        format!("{name} <{addr}>")
    } else {
        let q = name.replace('\\', "\\\\").replace('"', "\\\"");
        format!("\"{q}\" <{addr}>")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::paths::Paths;

    fn ctx() -> Context {
        let mut cfg = Config::defaults();
        cfg.set("system.hostname", "mx.example.test").unwrap();
        Context {
            paths: Paths::new(&cfg),
            cfg,
            login: "alice".into(),
            gecos: "Alice Liddell".into(),
            uid: 1000,
        }
    }

    fn opts(t: bool, i: bool) -> Options {
        let mut o = super::super::parse(&["sendmail".into()]).unwrap();
        o.from_headers = t;
        o.ignore_dots = i;
        o
    }

    fn text(p: &Prepared) -> String {
        String::from_utf8_lossy(&p.bytes).to_string()
    }

    #[test]
    fn missing_headers_are_added_and_bcc_removed() {
        let id = QueueId::now();
        let p = prepare(
            &ctx(),
            &opts(true, true),
            "alice@mx.example.test",
            b"To: Bob <bob@example.test>, carol@example.test\r\nBcc: dave@example.test\r\nSubject: hi\r\n\r\nbody\r\n.\r\nmore",
            &id,
        );
        let t = text(&p);
        assert!(!t.contains('\r'));
        assert!(!t.to_ascii_lowercase().contains("bcc"), "{t}");
        assert!(t.contains("From: Alice Liddell <alice@mx.example.test>\n"));
        assert!(t.contains(&format!("Message-ID: <{id}@mx.example.test>\n")));
        assert!(t.contains("\nDate: "));
        assert!(t.ends_with("\n\nbody\n.\nmore\n"), "{t}");
        assert_eq!(
            p.header_recipients,
            [
                "bob@example.test",
                "carol@example.test",
                "dave@example.test"
            ]
        );
    }

    #[test]
    fn the_scanners_headers_are_removed() {
        let p = prepare(
            &ctx(),
            &opts(false, true),
            "alice@mx.example.test",
            b"Subject: hi\nX-Kmpromail-Junk: spam score=99\nx-spam-flag: YES\nX-Spam-Status: Yes,\n\tscore=99\nX-Virus-Scanned: clamd; clean\nX-Spam-Other: kept\n\nX-Spam-Flag: in the body\n",
            &QueueId::now(),
        );
        let t = text(&p);
        let head = t.split("\n\n").next().unwrap().to_ascii_lowercase();
        for gone in [
            "x-kmpromail-junk",
            "x-spam-flag",
            "x-spam-status",
            "score=99",
            "x-virus",
        ] {
            assert!(!head.contains(gone), "{gone}: {t}");
        }
        assert!(head.contains("x-spam-other: kept"), "{t}");
        assert!(t.ends_with("\n\nX-Spam-Flag: in the body\n"), "{t}");
        // Our Authentication-Results from a user (uid 1000, not vmail):
        // removed; another server's stay. From kmp-local's user: kept.
        let msg = b"Authentication-Results: mx.example.test; dkim=pass\nAuthentication-Results: other.test; spf=pass\nSubject: s\n\nb\n";
        let t = text(&prepare(
            &ctx(),
            &opts(false, true),
            "",
            msg,
            &QueueId::now(),
        ));
        assert!(!t.contains("mx.example.test; dkim=pass"), "{t}");
        assert!(t.contains("other.test; spf=pass"), "{t}");
        let mut trusted = ctx();
        trusted.cfg.set("privileges.local", "").unwrap();
        let t = text(&prepare(
            &trusted,
            &opts(false, true),
            "",
            msg,
            &QueueId::now(),
        ));
        assert!(t.contains("mx.example.test; dkim=pass"), "{t}");
    }

    #[test]
    fn a_lone_dot_ends_the_message_without_i() {
        let p = prepare(
            &ctx(),
            &opts(false, false),
            "a@b",
            b"Subject: x\n\none\n.\ntwo\n",
            &QueueId::now(),
        );
        assert!(text(&p).ends_with("\n\none\n"), "{}", text(&p));
    }

    #[test]
    fn input_without_headers_gets_a_header_section() {
        let p = prepare(
            &ctx(),
            &opts(false, true),
            "a@b.test",
            b"just a body line\nand another",
            &QueueId::now(),
        );
        let t = text(&p);
        assert!(t.contains("From: Alice Liddell <a@b.test>\nDate: "), "{t}");
        assert!(t.ends_with("\n\njust a body line\nand another\n"), "{t}");
        // A header section that runs into a non-header line gets its empty line.
        let p = prepare(
            &ctx(),
            &opts(false, true),
            "a@b.test",
            b"Subject: s\nnot a header\n",
            &QueueId::now(),
        );
        assert!(
            text(&p).ends_with(
                "Subject: s\nFrom: Alice Liddell <a@b.test>\nDate: "
                    .split("Date")
                    .next()
                    .unwrap()
            ) || text(&p).contains("\n\nnot a header\n")
        );
        assert!(text(&p).contains("\n\nnot a header\n"));
    }

    #[test]
    fn bare_cr_and_nul_survive() {
        let p = prepare(
            &ctx(),
            &opts(false, true),
            "a@b.test",
            b"Subject: s\n\na\rb\0c\n",
            &QueueId::now(),
        );
        assert!(p.bytes.ends_with(b"\n\na\rb\0c\n"));
    }

    #[test]
    fn names_are_quoted_or_encoded() {
        assert_eq!(mailbox("Bob", "b@x"), "Bob <b@x>");
        assert_eq!(mailbox("Bob, Jr.", "b@x"), "\"Bob, Jr.\" <b@x>");
        assert!(mailbox("Jürgen", "j@x").starts_with("=?UTF-8?B?"));
        assert_eq!(mailbox("", "b@x"), "b@x");
    }
}
