//! Digests: a list's posts gathered into one message for the members who
//! ask for it.
//!
//! Two forms. The MIME digest (RFC 2046 5.1.5) is `multipart/mixed` of a
//! table of contents (`text/plain`, UTF-8) and a `multipart/digest` whose
//! parts are the posts whole (`message/rfc822`, never re-encoded: RFC 2046
//! 5.2.1 allows only 7bit, 8bit or binary there), so attachments and
//! charsets survive and a reader opens each post as a message. The plain
//! digest (RFC 1153, `lists.digest_plain`) is one `text/plain` body in
//! UTF-8: the header, "Today's Topics", then each post's Date, From,
//! Subject and text, between the separator lines RFC 1153 fixes (70
//! dashes after the topics, 30 between posts); a post's own line of 30
//! dashes gets a space in front so it does not split the digest. Posts in
//! GB2312, Big5 or any other charset are decoded (mail-parser with
//! full_encoding) into the UTF-8 text.
//!
//! A digest goes out when the list's digest options (`super::Digest`:
//! `max_messages`, `max_bytes`, `interval`) say so ([`due`]): enough posts,
//! enough bytes, or the interval passed since the first post waiting. The posts wait in the list's `digest/` directory
//! ([`DigestBox`]): one file per post, named by its number, written as the
//! post is delivered, and removed once the digest is in the queue.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use mail_builder::headers::content_type::ContentType;
use mail_builder::headers::date::Date;
use mail_builder::headers::raw::Raw;
use mail_builder::mime::{BodyPart, MimePart};
use mail_builder::MessageBuilder;
use mail_parser::MessageParser;

use super::texts::{crlf, list_id};

/// One post of a digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Post {
    /// Its number in the list's archive.
    pub number: u64,
    /// The message as it went to the list.
    pub raw: Vec<u8>,
}

/// What a digest is.
#[derive(Debug, Clone)]
pub struct Issue<'a> {
    /// The list's address.
    pub list: &'a str,
    /// The issue number (1, 2, ...).
    pub number: u64,
    /// Unix seconds.
    pub now: u64,
    /// For the Message-ID.
    pub hostname: &'a str,
}

/// Whether a digest is due under the list's options `o`, with `posts`
/// posts of `bytes` bytes waiting, the oldest since `first` (Unix seconds).
pub fn due(o: &super::Digest, now: u64, posts: usize, bytes: u64, first: u64) -> bool {
    posts > 0
        && ((o.max_messages > 0 && posts >= o.max_messages as usize)
            || (o.max_bytes > 0 && bytes >= o.max_bytes)
            || now.saturating_sub(first) >= o.interval)
}

/// A post's Date, From and Subject, decoded (RFC 2047, any charset).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Summary {
    pub date: String,
    pub from: String,
    pub subject: String,
    /// The text of the first text part, decoded to UTF-8.
    pub text: String,
}

/// Reads what a digest shows of a post.
pub fn summary(raw: &[u8]) -> Summary {
    let Some(m) = MessageParser::default().parse(raw) else {
        return Summary::default();
    };
    let from = m
        .from()
        .and_then(|a| a.first())
        .map(|a| match (a.name(), a.address()) {
            (Some(n), Some(ad)) => format!("{n} <{ad}>"),
            (None, Some(ad)) => ad.to_string(),
            (Some(n), None) => n.to_string(),
            (None, None) => String::new(),
        })
        .unwrap_or_default();
    Summary {
        date: m
            .header_raw("Date")
            .map(|d| d.trim().to_string())
            .unwrap_or_default(),
        from,
        subject: m.subject().unwrap_or("").trim().to_string(),
        text: m.body_text(0).map(|t| t.into_owned()).unwrap_or_default(),
    }
}

fn list_name(list: &str) -> &str {
    list.split_once('@').map_or(list, |(n, _)| n)
}

/// The digest's subject: `NAME Digest, Vol 1, Issue N` (RFC 1153 wants
/// `NAME Digest V1 #N`; both forms name the issue).
fn subject(is: &Issue) -> String {
    format!("{} Digest V1 #{}", list_name(is.list), is.number)
}

fn topics(posts: &[(u64, Summary)]) -> String {
    let mut t = String::new();
    for (i, (_, s)) in posts.iter().enumerate() {
        let _ = writeln!(
            t,
            "   {}. {} ({})",
            i + 1,
            one_line(&s.subject),
            one_line(&s.from)
        );
    }
    t
}

fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

fn builder<'a>(is: &Issue, to: &'a str, from: &'a str) -> MessageBuilder<'a> {
    MessageBuilder::new()
        .from(from)
        .to(to)
        .subject(subject(is))
        .date(Date::new(is.now as i64))
        .message_id(format!(
            "{}.digest.{}.{}@{}",
            list_name(is.list),
            is.number,
            is.now,
            is.hostname
        ))
        .header("Precedence", Raw::new("list"))
        .header("List-Id", Raw::new(list_id(is.list)))
        .header("List-Post", Raw::new(format!("<mailto:{}>", is.list)))
}

/// The MIME digest of `posts`, from `from` to `to` (the list's digest
/// address); LF line endings.
pub fn mime(is: &Issue, posts: &[Post], from: &str, to: &str) -> Vec<u8> {
    let sums: Vec<(u64, Summary)> = posts.iter().map(|p| (p.number, summary(&p.raw))).collect();
    let toc = format!(
        "{} Digest, Volume 1, Issue {}\n\nToday's Topics:\n\n{}",
        list_name(is.list),
        is.number,
        topics(&sums)
    );
    let parts: Vec<MimePart> = posts
        .iter()
        .map(|p| {
            let enc = if p.raw.iter().any(|&b| b >= 0x80) {
                "8bit"
            } else {
                "7bit"
            };
            MimePart {
                headers: vec![(
                    Cow::Borrowed("Content-Type"),
                    ContentType::new("message/rfc822").into(),
                )],
                contents: BodyPart::Binary(Cow::Owned(crlf(&p.raw))),
            }
            .transfer_encoding(enc)
        })
        .collect();
    let body = MimePart::new(
        ContentType::new("multipart/mixed"),
        vec![
            MimePart::new(
                ContentType::new("text/plain").attribute("charset", "utf-8"),
                BodyPart::Text(Cow::Owned(toc)),
            ),
            MimePart::new(ContentType::new("multipart/digest"), parts),
        ],
    );
    // Invariant: writing to a Vec cannot fail.
    let bytes = builder(is, to, from)
        .body(body)
        .write_to_vec()
        .expect("writing to memory");
    crate::queue::incoming::to_lf(&bytes)
}

/// RFC 1153's separator between posts.
const SEP30: &str = "------------------------------";

/// The text of an RFC 1153 digest of `posts`.
pub fn plain_text(is: &Issue, posts: &[Post]) -> String {
    let sums: Vec<(u64, Summary)> = posts.iter().map(|p| (p.number, summary(&p.raw))).collect();
    let name = list_name(is.list);
    let mut t = String::new();
    let _ = writeln!(t, "{name} Digest    Volume 1 : Issue {}\n", is.number);
    let _ = writeln!(t, "Today's Topics:\n\n{}", topics(&sums));
    let _ = writeln!(t, "{}\n", "-".repeat(70));
    for (_, s) in &sums {
        let _ = writeln!(t, "Date: {}", one_line(&s.date));
        let _ = writeln!(t, "From: {}", one_line(&s.from));
        let _ = writeln!(t, "Subject: {}\n", one_line(&s.subject));
        for line in s.text.replace("\r\n", "\n").lines() {
            if line == SEP30 {
                t.push(' ');
            }
            t.push_str(line);
            t.push('\n');
        }
        let _ = writeln!(t, "\n{SEP30}\n");
    }
    let end = format!("End of {name} Digest V1 #{}", is.number);
    let _ = writeln!(t, "{end}\n{}", "*".repeat(end.chars().count()));
    t
}

/// The RFC 1153 digest as a message; LF line endings.
pub fn plain(is: &Issue, posts: &[Post], from: &str, to: &str) -> Vec<u8> {
    let text = plain_text(is, posts);
    // Invariant: writing to a Vec cannot fail.
    let bytes = builder(is, to, from)
        .text_body(text)
        .write_to_vec()
        .expect("writing to memory");
    crate::queue::incoming::to_lf(&bytes)
}

/// The posts waiting for a list's next digest, and its issue count.
#[derive(Debug, Clone)]
pub struct DigestBox {
    dir: PathBuf,
}

/// The digest's bookkeeping: the last issue and when it went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct State {
    pub issue: u64,
    pub last_sent: u64,
}

impl DigestBox {
    /// The digest directory of a list (`STATE/digest`).
    pub fn new(dir: &Path) -> DigestBox {
        DigestBox {
            dir: dir.to_path_buf(),
        }
    }

    /// Keeps post `number` for the next digest. `raw` may already be a
    /// file: the caller may hard-link the stored copy instead.
    pub fn add(&self, number: u64, raw: &[u8]) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        let tmp = self.dir.join(format!(".{number}.tmp"));
        std::fs::write(&tmp, raw)?;
        std::fs::rename(&tmp, self.dir.join(number.to_string()))
    }

    /// When the oldest waiting post came (its file's time), if any.
    pub fn first_waiting(&self) -> Option<u64> {
        let (n, _) = *self.pending().first()?;
        let md = std::fs::metadata(self.dir.join(n.to_string())).ok()?;
        let t = md.modified().ok()?;
        t.duration_since(std::time::UNIX_EPOCH)
            .ok()
            .map(|d| d.as_secs())
    }

    /// The numbers and sizes of the waiting posts, in order.
    pub fn pending(&self) -> Vec<(u64, u64)> {
        let mut v: Vec<(u64, u64)> = std::fs::read_dir(&self.dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let n = e.file_name().to_str()?.parse::<u64>().ok()?;
                Some((n, e.metadata().ok()?.len()))
            })
            .collect();
        v.sort_unstable();
        v
    }

    /// Reads the waiting posts (at most `max`, oldest first).
    pub fn posts(&self, max: usize) -> Vec<Post> {
        self.pending()
            .into_iter()
            .take(max)
            .filter_map(|(n, _)| {
                Some(Post {
                    number: n,
                    raw: std::fs::read(self.dir.join(n.to_string())).ok()?,
                })
            })
            .collect()
    }

    /// The bookkeeping (zeros before the first digest).
    pub fn state(&self) -> State {
        let text = std::fs::read_to_string(self.dir.join("state")).unwrap_or_default();
        let mut it = text.split_whitespace().filter_map(|x| x.parse().ok());
        State {
            issue: it.next().unwrap_or(0),
            last_sent: it.next().unwrap_or(0),
        }
    }

    /// Records that issue `st.issue` went out with `sent` posts: their
    /// files are removed. Called once the digest is in the queue, so a crash
    /// before sends the posts again rather than never.
    pub fn sent(&self, st: State, sent: &[u64]) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        let tmp = self.dir.join(".state.tmp");
        std::fs::write(&tmp, format!("{} {}\n", st.issue, st.last_sent))?;
        std::fs::rename(&tmp, self.dir.join("state"))?;
        for n in sent {
            let _ = std::fs::remove_file(self.dir.join(n.to_string()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn posts() -> Vec<Post> {
        vec![
            Post {
                number: 7,
                raw: b"From: Alice <alice@example.org>\nDate: Sat, 05 Dec 2026 10:00:00 +0000\nSubject: First\n\nHello list.\n------------------------------\nnot a separator\n".to_vec(),
            },
            Post {
                number: 8,
                // GB2312 subject and body: "会议" / "明天开会".
                raw: b"From: =?GB2312?B?zfXOsA==?= <wang@example.cn>\nDate: Sat, 05 Dec 2026 11:00:00 +0800\nSubject: =?GB2312?B?u+HS6Q==?=\nMIME-Version: 1.0\nContent-Type: text/plain; charset=GB2312\nContent-Transfer-Encoding: 8bit\n\n\xc3\xf7\xcc\xec\xbf\xaa\xbb\xe1\n".to_vec(),
            },
        ]
    }

    const ISSUE: Issue = Issue {
        list: "dev@example.org",
        number: 3,
        now: 1_796_000_000,
        hostname: "mx.example.org",
    };

    #[test]
    fn due_by_count_size_or_time_and_never_empty() {
        let o = crate::lists::Digest {
            enabled: true,
            max_messages: 3,
            max_bytes: 100,
            interval: 10,
        };
        assert!(!due(&o, 1000, 0, 0, 0));
        assert!(!due(&o, 1000, 2, 50, 995));
        assert!(due(&o, 1000, 3, 50, 995));
        assert!(due(&o, 1000, 1, 100, 995));
        assert!(due(&o, 1000, 1, 5, 990));
        let unlimited = crate::lists::Digest {
            max_messages: 0,
            max_bytes: 0,
            ..o
        };
        assert!(!due(&unlimited, 1000, 500, 1 << 30, 995));
    }

    #[test]
    fn the_mime_digest_holds_each_post_whole() {
        let raw = mime(&ISSUE, &posts(), "dev-owner@example.org", "dev@example.org");
        let m = MessageParser::default().parse(&raw).unwrap();
        assert_eq!(m.subject(), Some("dev Digest V1 #3"));
        let text = String::from_utf8_lossy(&raw);
        assert!(text.contains("multipart/digest"), "{text}");
        assert!(text.contains("List-Id: <dev.example.org>"), "{text}");
        let toc = m.body_text(0).unwrap();
        assert!(
            toc.contains("1. First (Alice <alice@example.org>)"),
            "{toc}"
        );
        assert!(toc.contains("2. 会议 (王伟 <wang@example.cn>)"), "{toc}");
        let inner: Vec<_> = m.attachments().filter_map(|a| a.message()).collect();
        assert_eq!(inner.len(), 2);
        assert_eq!(inner[1].subject(), Some("会议"));
        assert_eq!(inner[1].body_text(0).unwrap().trim(), "明天开会");
    }

    #[test]
    fn the_plain_digest_follows_rfc_1153() {
        let t = plain_text(&ISSUE, &posts());
        assert!(
            t.starts_with("dev Digest    Volume 1 : Issue 3\n\nToday's Topics:\n\n   1. First"),
            "{t}"
        );
        assert!(t.contains(&format!("\n{}\n\nDate: Sat, 05 Dec 2026 10:00:00 +0000\nFrom: Alice <alice@example.org>\nSubject: First\n\nHello list.\n {SEP30}\n", "-".repeat(70))), "{t}");
        assert!(t.contains("Subject: 会议\n\n明天开会\n"), "{t}");
        assert!(
            t.ends_with("End of dev Digest V1 #3\n***********************\n"),
            "{t}"
        );
        // Exactly one separator per post.
        assert_eq!(t.lines().filter(|l| *l == SEP30).count(), 2);
        let raw = plain(&ISSUE, &posts(), "dev-owner@example.org", "dev@example.org");
        let m = MessageParser::default().parse(&raw).unwrap();
        assert!(m.body_text(0).unwrap().contains("明天开会"));
    }

    #[test]
    fn the_box_keeps_posts_until_the_digest_is_sent() {
        let dir = std::env::temp_dir().join(format!("kmp-digest-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let b = DigestBox::new(&dir);
        assert_eq!(b.state(), State::default());
        for p in posts() {
            b.add(p.number, &p.raw).unwrap();
        }
        b.add(10, b"Subject: x\n\ny\n").unwrap();
        assert_eq!(
            b.pending().iter().map(|p| p.0).collect::<Vec<_>>(),
            vec![7, 8, 10]
        );
        let got = b.posts(2);
        assert_eq!(got, posts());
        let st = State {
            issue: 1,
            last_sent: 1234,
        };
        b.sent(st, &[7, 8]).unwrap();
        assert_eq!(b.state(), st);
        assert_eq!(
            b.pending().iter().map(|p| p.0).collect::<Vec<_>>(),
            vec![10]
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
