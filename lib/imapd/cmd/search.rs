//! SEARCH and UID SEARCH (RFC 3501 6.4.4, RFC 9051 6.4.4), ESEARCH replies
//! (RFC 4731). Text keys match case-insensitively against decoded text:
//! encoded words, base64 and quoted-printable bodies and legacy charsets
//! (GB2312, Big5, ISO-8859-x...) are decoded by mail-parser first, so a
//! search for "邮件" finds it in a GB2312 message.

use std::io;

use mail_parser::{HeaderValue, Message, PartType};

use super::uid_set;
use crate::imapd::session::{Action, Out, Session, State};
use crate::imapd::store::{MsgMeta, SysFlags};
use crate::imapd::view::View;
use crate::imapd::{context, message};
use crate::proto::imap::{Date, SearchKey, SearchReturn};

#[allow(clippy::too_many_arguments)]
pub fn search(
    s: &mut Session,
    tag: &str,
    uid: bool,
    ret: Option<Vec<SearchReturn>>,
    charset: Option<&str>,
    key: &SearchKey,
    out: &mut Out,
) -> io::Result<Action> {
    let key = match charset {
        None | Some("UTF-8") | Some("US-ASCII") => key.clone(),
        Some(cs) => match encoding_rs::Encoding::for_label(cs.as_bytes()) {
            Some(enc) => recode(key, enc),
            None => {
                out.line(&format!(
                    "{tag} NO [BADCHARSET (UTF-8 US-ASCII)] Unknown charset"
                ));
                return Ok(Action::None);
            }
        },
    };
    let uses_modseq = has_modseq(&key);
    if uses_modseq {
        // SEARCH MODSEQ is CONDSTORE-enabling (RFC 7162 3.1).
        super::select::enable_condstore(s, out);
    }
    let enabled = s.enabled;
    let update = ret
        .as_ref()
        .is_some_and(|r| r.contains(&SearchReturn::Update));
    if let State::Selected(_, view) = &s.state {
        // RFC 5267 4.3: UPDATE under a tag already in use "SHALL result in
        // the server rejecting the searching command with a BAD response".
        if update && view.contexts.has(tag) {
            return Ok(s.bad(tag, "Tag reuse: a search with UPDATE has this tag", out));
        }
    }
    let State::Selected(_, view) = &mut s.state else {
        return Ok(Action::None);
    };
    let mut hits: Vec<(u32, u32, u64)> = Vec::new();
    for i in 0..view.msgs.len() {
        if view.msgs[i].ghost {
            continue;
        }
        let mut ctx = Ctx { view, i, raw: None };
        if matches(&mut ctx, &key) {
            let m = &view.msgs[i].meta;
            hits.push((i as u32 + 1, m.uid, m.modseq));
        }
    }
    let nums: Vec<u32> = hits.iter().map(|h| if uid { h.1 } else { h.0 }).collect();
    let max_modseq = hits.iter().map(|h| h.2).max().unwrap_or(0);
    let ret = match ret {
        Some(r) => Some(r),
        None if enabled.rev2 => Some(vec![SearchReturn::All]),
        None => None,
    };
    match ret {
        None => {
            let mut line = String::from("* SEARCH");
            for n in &nums {
                line.push(' ');
                line.push_str(&n.to_string());
            }
            if uses_modseq && !nums.is_empty() {
                line.push_str(&format!(" (MODSEQ {max_modseq})"));
            }
            out.line(&line);
        }
        Some(r) => {
            let mut line = format!("* ESEARCH (TAG \"{tag}\")");
            if uid {
                line.push_str(" UID");
            }
            for o in &r {
                match o {
                    SearchReturn::Min if !nums.is_empty() => {
                        line.push_str(&format!(" MIN {}", nums.iter().min().unwrap_or(&0)))
                    }
                    SearchReturn::Max if !nums.is_empty() => {
                        line.push_str(&format!(" MAX {}", nums.iter().max().unwrap_or(&0)))
                    }
                    SearchReturn::Count => line.push_str(&format!(" COUNT {}", nums.len())),
                    SearchReturn::All if !nums.is_empty() => {
                        line.push_str(&format!(" ALL {}", uid_set(&nums)))
                    }
                    _ => {}
                }
            }
            if let Some(m) = esearch_modseq(&r, &hits).filter(|_| uses_modseq) {
                line.push_str(&format!(" MODSEQ {m}"));
            }
            out.line(&line);
        }
    }
    if update {
        let uids = hits.iter().map(|h| h.1).collect();
        context::start(view, tag, uid, &key, uids, context::Order::Mailbox, out);
    }
    view.sync(out, uid, enabled);
    out.line(&format!("{tag} OK SEARCH completed"));
    Ok(Action::None)
}

/// The MODSEQ an ESEARCH reply reports (RFC 7162 3.1.5): the highest
/// MODSEQ of the messages it names. With ALL or COUNT that is every message
/// found; with only MIN and MAX, the one or two messages they name. None
/// when nothing was found or nothing is reported.
fn esearch_modseq(ret: &[SearchReturn], hits: &[(u32, u32, u64)]) -> Option<u64> {
    let (first, last) = (hits.first()?, hits.last()?);
    let mut m = None;
    for o in ret {
        let here = match o {
            SearchReturn::All | SearchReturn::Count => hits.iter().map(|h| h.2).max(),
            SearchReturn::Min => Some(first.2),
            SearchReturn::Max => Some(last.2),
            _ => None,
        };
        m = m.max(here);
    }
    m
}

/// Whether message `i` of the view matches `key` (a search context's
/// re-evaluation of one changed message).
pub fn message_matches(view: &mut View, i: usize, key: &SearchKey) -> bool {
    let mut ctx = Ctx { view, i, raw: None };
    matches(&mut ctx, key)
}

fn has_modseq(k: &SearchKey) -> bool {
    match k {
        SearchKey::ModSeq(_) => true,
        SearchKey::Not(a) => has_modseq(a),
        SearchKey::Or(a, b) => has_modseq(a) || has_modseq(b),
        SearchKey::And(v) => v.iter().any(has_modseq),
        _ => false,
    }
}

/// Search strings sent in a legacy charset: the parser kept each byte as
/// one char; decode them now.
fn recode(k: &SearchKey, enc: &'static encoding_rs::Encoding) -> SearchKey {
    let d = |s: &String| -> String {
        let bytes: Vec<u8> = s.chars().map(|c| c as u32 as u8).collect();
        if s.chars().any(|c| c as u32 > 255) {
            return s.clone();
        }
        enc.decode(&bytes).0.into_owned()
    };
    use SearchKey as K;
    match k {
        K::Bcc(s) => K::Bcc(d(s)),
        K::Body(s) => K::Body(d(s)),
        K::Cc(s) => K::Cc(d(s)),
        K::From(s) => K::From(d(s)),
        K::Header(h, s) => K::Header(h.clone(), d(s)),
        K::Subject(s) => K::Subject(d(s)),
        K::Text(s) => K::Text(d(s)),
        K::To(s) => K::To(d(s)),
        K::Not(a) => K::Not(Box::new(recode(a, enc))),
        K::Or(a, b) => K::Or(Box::new(recode(a, enc)), Box::new(recode(b, enc))),
        K::And(v) => K::And(v.iter().map(|x| recode(x, enc)).collect()),
        other => other.clone(),
    }
}

/// One message being tested; its content is read once, when a key needs it.
struct Ctx<'a> {
    view: &'a mut View,
    i: usize,
    raw: Option<Vec<u8>>,
}

impl Ctx<'_> {
    fn meta(&self) -> &MsgMeta {
        &self.view.msgs[self.i].meta
    }

    fn raw(&mut self) -> &[u8] {
        if self.raw.is_none() {
            let meta = &self.view.msgs[self.i].meta;
            let (uid, vsize) = (meta.uid, meta.size);
            let r = self.view.folder.read(uid).unwrap_or_default();
            self.raw = Some(message::wire(r, vsize));
        }
        self.raw.as_deref().unwrap_or_default()
    }
}

fn contains(hay: &str, needle: &str) -> bool {
    if needle.is_empty() {
        return true;
    }
    hay.to_lowercase().contains(&needle.to_lowercase())
}

fn header_values(msg: &Message, name: &str) -> Vec<String> {
    let Some(root) = msg.parts.first() else {
        return Vec::new();
    };
    let raw = msg.raw_message.as_ref();
    root.headers
        .iter()
        .filter(|h| h.name.as_str().eq_ignore_ascii_case(name))
        .map(|h| {
            let rawv = String::from_utf8_lossy(
                raw.get(h.offset_start as usize..h.offset_end as usize)
                    .unwrap_or_default(),
            )
            .into_owned();
            match &h.value {
                HeaderValue::Text(t) => format!("{t} {rawv}"),
                HeaderValue::TextList(l) => format!("{} {rawv}", l.join(" ")),
                HeaderValue::Address(a) => {
                    let mut s = rawv.clone();
                    for x in a.iter() {
                        if let Some(n) = &x.name {
                            s.push(' ');
                            s.push_str(n);
                        }
                        if let Some(ad) = &x.address {
                            s.push(' ');
                            s.push_str(ad);
                        }
                    }
                    s
                }
                _ => rawv,
            }
        })
        .collect()
}

fn body_text(msg: &Message) -> String {
    let mut s = String::new();
    for p in &msg.parts {
        match &p.body {
            PartType::Text(t) | PartType::Html(t) => {
                s.push_str(t);
                s.push('\n');
            }
            PartType::Message(sub) => {
                s.push_str(&body_text(sub));
            }
            _ => {}
        }
    }
    s
}

fn sent_date(msg: &Message) -> Option<i64> {
    let d = msg.date()?;
    Some(crate::proto::imap::days_from_civil(
        d.year as i64,
        d.month as u32,
        d.day as u32,
    ))
}

fn internal_day(m: &MsgMeta) -> i64 {
    m.internal_date.div_euclid(86_400)
}

fn matches(c: &mut Ctx, k: &SearchKey) -> bool {
    use SearchKey as K;
    let sys = |c: &Ctx, bit| c.meta().flags.sys.has(bit);
    match k {
        K::All => true,
        K::Answered => sys(c, SysFlags::ANSWERED),
        K::Deleted => sys(c, SysFlags::DELETED),
        K::Draft => sys(c, SysFlags::DRAFT),
        K::Flagged => sys(c, SysFlags::FLAGGED),
        K::Seen => sys(c, SysFlags::SEEN),
        K::Unanswered => !sys(c, SysFlags::ANSWERED),
        K::Undeleted => !sys(c, SysFlags::DELETED),
        K::Undraft => !sys(c, SysFlags::DRAFT),
        K::Unflagged => !sys(c, SysFlags::FLAGGED),
        K::Unseen => !sys(c, SysFlags::SEEN),
        K::Recent => c.meta().recent,
        K::New => c.meta().recent && !sys(c, SysFlags::SEEN),
        K::Old => !c.meta().recent,
        K::Keyword(kw) => c
            .meta()
            .flags
            .keywords
            .iter()
            .any(|x| x.eq_ignore_ascii_case(kw)),
        K::Unkeyword(kw) => !c
            .meta()
            .flags
            .keywords
            .iter()
            .any(|x| x.eq_ignore_ascii_case(kw)),
        K::Larger(n) => c.meta().size > *n,
        K::Smaller(n) => c.meta().size < *n,
        K::Before(d) => internal_day(c.meta()) < d.days(),
        K::On(d) => internal_day(c.meta()) == d.days(),
        K::Since(d) => internal_day(c.meta()) >= d.days(),
        K::ModSeq(n) => c.meta().modseq >= *n,
        K::SeqSet(set) => set.contains(c.i as u32 + 1, c.view.exists()),
        K::Uid(set) => set.contains(c.meta().uid, c.view.max_uid()),
        K::Not(a) => !matches(c, a),
        K::Or(a, b) => matches(c, a) || matches(c, b),
        K::And(v) => v.iter().all(|x| matches(c, x)),
        K::SentBefore(d) | K::SentOn(d) | K::SentSince(d) => {
            let raw = c.raw().to_vec();
            let Some(day) = message::parse(&raw).and_then(|m| sent_date(&m)) else {
                return false;
            };
            let want = Date::days(d);
            match k {
                K::SentBefore(_) => day < want,
                K::SentOn(_) => day == want,
                _ => day >= want,
            }
        }
        K::Bcc(s) | K::Cc(s) | K::From(s) | K::To(s) | K::Subject(s) | K::Header(_, s) => {
            let name = match k {
                K::Bcc(_) => "Bcc",
                K::Cc(_) => "Cc",
                K::From(_) => "From",
                K::To(_) => "To",
                K::Subject(_) => "Subject",
                K::Header(h, _) => h.as_str(),
                _ => "",
            };
            let raw = c.raw().to_vec();
            let Some(m) = message::parse(&raw) else {
                return false;
            };
            let vals = header_values(&m, name);
            if let K::Header(_, v) = k {
                if v.is_empty() {
                    return !vals.is_empty();
                }
            }
            vals.iter().any(|v| contains(v, s))
        }
        K::Body(s) | K::Text(s) => {
            let raw = c.raw().to_vec();
            let Some(m) = message::parse(&raw) else {
                return contains(&String::from_utf8_lossy(&raw), s);
            };
            if contains(&body_text(&m), s) {
                return true;
            }
            if let K::Text(_) = k {
                let hdr = &raw[..message::header_end(&raw)];
                if contains(&String::from_utf8_lossy(hdr), s) {
                    return true;
                }
                let root = m.parts.first();
                return root.is_some_and(|r| {
                    r.headers.iter().any(|h| match &h.value {
                        HeaderValue::Text(t) => contains(t, s),
                        HeaderValue::Address(a) => a
                            .iter()
                            .any(|x| x.name.as_deref().is_some_and(|n| contains(n, s))),
                        _ => false,
                    })
                });
            }
            false
        }
    }
}
