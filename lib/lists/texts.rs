//! The texts a list sends, and the messages built from them.
//!
//! Each text is a file `NAME.txt` in a directory per language under
//! `lists.texts_dir` (`en/`, `zh-CN/` ...), so an admin edits them without a
//! rebuild: a first line `Subject: ...`, an empty line, then the body, in
//! UTF-8. `{list}`, `{address}`, `{confirm}` and the like are replaced by
//! their values; an unknown `{name}` stays as written. A missing or
//! unreadable file falls back to English, then to the copy built into the
//! program (the files of `share/lists/`), so a broken installation still
//! answers.
//!
//! Messages are UTF-8 (mail-builder encodes the subject by RFC 2047 and the
//! body as quoted-printable or base64), carry `Auto-Submitted:
//! auto-replied` (RFC 3834) so that well-behaved responders stay quiet, and
//! the list's `List-Id` (RFC 2919). Line endings are LF, as the queue keeps
//! them.

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use mail_builder::headers::content_type::ContentType;
use mail_builder::headers::date::Date;
use mail_builder::headers::raw::Raw;
use mail_builder::mime::{BodyPart, MimePart};
use mail_builder::MessageBuilder;

/// The texts there are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Text {
    ConfirmSubscribe,
    ConfirmUnsubscribe,
    Welcome,
    Goodbye,
    Help,
    OwnerPermit,
    Pending,
    Moderate,
    Rejected,
    Probe,
}

impl Text {
    /// Every text, for checks of an installation.
    pub const ALL: [Text; 10] = [
        Text::ConfirmSubscribe,
        Text::ConfirmUnsubscribe,
        Text::Welcome,
        Text::Goodbye,
        Text::Help,
        Text::OwnerPermit,
        Text::Pending,
        Text::Moderate,
        Text::Rejected,
        Text::Probe,
    ];

    /// The file name without `.txt`.
    pub fn name(self) -> &'static str {
        match self {
            Text::ConfirmSubscribe => "confirm-subscribe",
            Text::ConfirmUnsubscribe => "confirm-unsubscribe",
            Text::Welcome => "welcome",
            Text::Goodbye => "goodbye",
            Text::Help => "help",
            Text::OwnerPermit => "owner-permit",
            Text::Pending => "pending",
            Text::Moderate => "moderate",
            Text::Rejected => "rejected",
            Text::Probe => "probe",
        }
    }

    fn built_in(self, lang: &str) -> &'static str {
        macro_rules! pick {
            ($name:literal) => {
                if lang == "zh-CN" {
                    include_str!(concat!("../../share/lists/zh-CN/", $name, ".txt"))
                } else {
                    include_str!(concat!("../../share/lists/en/", $name, ".txt"))
                }
            };
        }
        match self {
            Text::ConfirmSubscribe => pick!("confirm-subscribe"),
            Text::ConfirmUnsubscribe => pick!("confirm-unsubscribe"),
            Text::Welcome => pick!("welcome"),
            Text::Goodbye => pick!("goodbye"),
            Text::Help => pick!("help"),
            Text::OwnerPermit => pick!("owner-permit"),
            Text::Pending => pick!("pending"),
            Text::Moderate => pick!("moderate"),
            Text::Rejected => pick!("rejected"),
            Text::Probe => pick!("probe"),
        }
    }
}

/// Where the texts of one list come from.
#[derive(Debug, Clone)]
pub struct Texts {
    dir: Option<PathBuf>,
    lang: String,
}

/// A text with its values in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub body: String,
}

impl Texts {
    /// Texts from `dir` (None: only the built-in ones) in `lang` (a tag
    /// such as `en` or `zh-CN`; anything else means English).
    pub fn new(dir: Option<&Path>, lang: &str) -> Texts {
        let ok = !lang.is_empty()
            && lang.len() <= 16
            && lang.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        Texts {
            dir: dir.map(Path::to_path_buf),
            lang: if ok { lang.to_string() } else { "en".into() },
        }
    }

    /// The raw text of `t`: the admin's file in the language, in English,
    /// else the built-in copy.
    pub fn source(&self, t: Text) -> Cow<'static, str> {
        if let Some(dir) = &self.dir {
            for lang in [self.lang.as_str(), "en"] {
                let p = dir.join(lang).join(format!("{}.txt", t.name()));
                if let Ok(s) = std::fs::read_to_string(&p) {
                    if s.starts_with("Subject:") {
                        return Cow::Owned(s);
                    }
                    crate::warn!(
                        "{}: no Subject: line first; using the built-in text",
                        p.display()
                    );
                }
            }
        }
        Cow::Borrowed(t.built_in(&self.lang))
    }

    /// `t` with `vars` put in.
    pub fn render(&self, t: Text, vars: &[(&str, &str)]) -> Rendered {
        split(&fill(&self.source(t), vars))
    }
}

/// Replaces each `{name}` of `vars` in `text`. Values lose their line
/// breaks, so a value cannot add a header line to the subject.
pub fn fill(text: &str, vars: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(text.len() + 128);
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let value = after.find('}').and_then(|close| {
            let name = &after[..close];
            vars.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| (close, v))
        });
        match value {
            Some((close, v)) => {
                out.extend(v.chars().map(|c| if c.is_control() { ' ' } else { c }));
                rest = &after[close + 1..];
            }
            None => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// The subject line and the body of a filled text.
fn split(text: &str) -> Rendered {
    let text = text.replace("\r\n", "\n");
    let (first, body) = text.split_once('\n').unwrap_or((&text, ""));
    Rendered {
        subject: first
            .strip_prefix("Subject:")
            .unwrap_or(first)
            .trim()
            .to_string(),
        body: body.trim_start_matches('\n').to_string(),
    }
}

/// A message a list sends about itself.
#[derive(Debug, Clone)]
pub struct Notice<'a> {
    /// From: (the list's owner address or request address).
    pub from: &'a str,
    /// To:.
    pub to: &'a str,
    /// Reply-To:, the confirmation address where a reply acts.
    pub reply_to: Option<&'a str>,
    /// The list's address, for List-Id (`<name.domain>`).
    pub list: &'a str,
    pub text: Rendered,
    /// A message attached whole (a held post, for moderators).
    pub attached: Option<&'a [u8]>,
    /// Unix seconds.
    pub now: u64,
    /// For the Message-ID.
    pub hostname: &'a str,
}

/// The List-Id value of a list address (RFC 2919: `<name.domain>`).
pub fn list_id(list: &str) -> String {
    let (name, domain) = list.split_once('@').unwrap_or((list, ""));
    format!(
        "<{}.{}>",
        name.to_ascii_lowercase(),
        domain.to_ascii_lowercase()
    )
}

/// Builds the message; LF line endings.
pub fn build(n: &Notice) -> Vec<u8> {
    let mut id = [0u8; 8];
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut id);
    let id: String = id.iter().map(|b| format!("{b:02x}")).collect();
    let mut m = MessageBuilder::new()
        .from(n.from)
        .to(n.to)
        .subject(n.text.subject.as_str())
        .date(Date::new(n.now as i64))
        .message_id(format!("{}.{id}.list@{}", n.now, n.hostname))
        .header("Auto-Submitted", Raw::new("auto-replied"))
        .header("Precedence", Raw::new("list"))
        .header("List-Id", Raw::new(list_id(n.list)));
    if let Some(r) = n.reply_to {
        m = m.reply_to(r);
    }
    let m = match n.attached {
        None => m.text_body(n.text.body.as_str()),
        Some(raw) => {
            let enc = if raw.iter().any(|&b| b >= 0x80) {
                "8bit"
            } else {
                "7bit"
            };
            let att = MimePart {
                headers: vec![(
                    Cow::Borrowed("Content-Type"),
                    ContentType::new("message/rfc822").into(),
                )],
                contents: BodyPart::Binary(Cow::Owned(crlf(raw))),
            }
            .transfer_encoding(enc);
            m.body(MimePart::new(
                ContentType::new("multipart/mixed"),
                vec![
                    MimePart::new(
                        ContentType::new("text/plain").attribute("charset", "utf-8"),
                        BodyPart::Text(Cow::Owned(n.text.body.clone())),
                    ),
                    att,
                ],
            ))
        }
    };
    // Invariant: writing to a Vec cannot fail.
    let bytes = m.write_to_vec().expect("writing to memory");
    crate::queue::incoming::to_lf(&bytes)
}

/// LF or CRLF text with CRLF line endings.
pub fn crlf(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len() + raw.len() / 40);
    let mut prev = 0u8;
    for &b in raw {
        if b == b'\n' && prev != b'\r' {
            out.push(b'\r');
        }
        out.push(b);
        prev = b;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_filled_in_and_unknown_names_kept() {
        assert_eq!(
            fill(
                "a {x} b {y} {unknown} {",
                &[("x", "1"), ("y", "2\r\nBcc: e")]
            ),
            "a 1 b 2  Bcc: e {unknown} {"
        );
    }

    #[test]
    fn every_built_in_text_has_a_subject_in_both_languages() {
        for lang in ["en", "zh-CN"] {
            let t = Texts::new(None, lang);
            for x in Text::ALL {
                let r = t.render(x, &[("list", "dev@example.org")]);
                assert!(!r.subject.is_empty(), "{lang} {}", x.name());
                assert!(!r.body.is_empty(), "{lang} {}", x.name());
            }
        }
        let r = Texts::new(None, "zh-CN").render(Text::Welcome, &[("list", "dev@example.org")]);
        assert_eq!(r.subject, "欢迎加入 dev@example.org");
    }

    #[test]
    fn an_admins_file_wins_and_a_bad_language_falls_back() {
        let d = tempdir();
        std::fs::create_dir_all(d.join("zh-CN")).unwrap();
        std::fs::write(
            d.join("zh-CN/help.txt"),
            "Subject: 帮助 {list}\n\n正文 {owner}\n",
        )
        .unwrap();
        let t = Texts::new(Some(&d), "zh-CN");
        let r = t.render(Text::Help, &[("list", "l@x.org"), ("owner", "o@x.org")]);
        assert_eq!(r.subject, "帮助 l@x.org");
        assert_eq!(r.body, "正文 o@x.org\n");
        // Not there in zh-CN: the built-in Chinese text.
        assert!(t.render(Text::Goodbye, &[]).subject.contains("退出"));
        // A language that is a path falls back to English.
        let t = Texts::new(Some(&d), "../zh-CN");
        assert!(t.render(Text::Help, &[]).subject.starts_with("Help"));
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn a_notice_is_utf8_auto_replied_and_names_the_list() {
        let t = Texts::new(None, "zh-CN").render(
            Text::ConfirmSubscribe,
            &[("list", "dev@example.org"), ("address", "王@example.org")],
        );
        let raw = build(&Notice {
            from: "dev-help@example.org",
            to: "wang@example.org",
            reply_to: Some("dev-confirm-s.aaaaa.bbbb.wang=example.org@example.org"),
            list: "dev@example.org",
            text: t,
            attached: None,
            now: 1_796_000_000,
            hostname: "mx.example.org",
        });
        assert!(!raw.windows(2).any(|w| w == b"\r\n"));
        let text = String::from_utf8_lossy(&raw);
        assert!(text.contains("Auto-Submitted: auto-replied"), "{text}");
        assert!(text.contains("List-Id: <dev.example.org>"), "{text}");
        assert!(
            text.contains("Reply-To: <dev-confirm-s.aaaaa.bbbb.wang=example.org@example.org>")
                || text.contains("Reply-To: dev-confirm-s.aaaaa.bbbb.wang=example.org@example.org"),
            "{text}"
        );
        let m = mail_parser::MessageParser::default().parse(&raw).unwrap();
        assert_eq!(m.subject(), Some("请确认订阅邮件列表 dev@example.org"));
        assert!(m.body_text(0).unwrap().contains("加入邮件列表"));
    }

    #[test]
    fn a_held_post_is_attached_whole() {
        let post = "From: a@b.org\nSubject: =?GB2312?B?xOO6ww==?=\n\nbody\n";
        let raw = build(&Notice {
            from: "dev-owner@example.org",
            to: "mod@example.org",
            reply_to: None,
            list: "dev@example.org",
            text: Rendered {
                subject: "held".into(),
                body: "see attached".into(),
            },
            attached: Some(post.as_bytes()),
            now: 1_796_000_000,
            hostname: "mx.example.org",
        });
        let m = mail_parser::MessageParser::default().parse(&raw).unwrap();
        let inner = m.attachment(0).and_then(|a| a.message()).unwrap();
        assert_eq!(inner.subject(), Some("你好"));
    }

    fn tempdir() -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "kmp-texts-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }
}
