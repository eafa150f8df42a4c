//! SEARCH and UID SEARCH (RFC 3501 6.4.4, RFC 9051 6.4.4), ESEARCH replies
//! (RFC 4731, RFC 5267), SAVE and `$` (RFC 5182), PARTIAL (RFC 9394). Text keys match case-insensitively against decoded text:
//! encoded words, base64 and quoted-printable bodies and legacy charsets
//! (GB2312, Big5, ISO-8859-x...) are decoded by mail-parser first, so a
//! search for "邮件" finds it in a GB2312 message.

use crate::proto::imap::response::{Code, Data, Response, SearchItem};
use std::io;

use mail_parser::{HeaderValue, Message, PartType};

use crate::imapd::session::{Action, Out, Session, State};
use crate::imapd::store::{MsgMeta, SysFlags};
use crate::imapd::view::View;
use crate::imapd::{context, message};
use crate::proto::imap::{CommandBody, Date, SearchKey, SearchReturn, SeqNo, SeqSet};

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
    if has_modseq(key) {
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
    let Some(key) = decode_key(key, charset, tag, out) else {
        // RFC 5182 2.1: a SEARCH with SAVE that fails leaves `$` empty.
        if ret
            .as_ref()
            .is_some_and(|r| r.contains(&SearchReturn::Save))
        {
            view.saved.clear();
        }
        return Ok(Action::None);
    };
    let hits = matching(view, &key);
    let modseq = has_modseq(&key).then(|| {
        hits.iter()
            .map(|&i| view.msgs[i].meta.modseq)
            .max()
            .unwrap_or(0)
    });
    let ret = match ret {
        Some(r) => Some(r),
        None if enabled.rev2 => Some(vec![SearchReturn::All]),
        None => None,
    };
    match ret {
        None => {
            let nums: Vec<u32> = hits.iter().map(|&i| number(view, i, uid)).collect();
            out.send(Response::Data(Data::Search {
                nums: &nums,
                modseq,
            }));
        }
        Some(r) => results(view, tag, uid, &r, &hits, modseq, out),
    }
    if update {
        let uids = hits.iter().map(|&i| view.msgs[i].meta.uid).collect();
        context::start(view, tag, uid, &key, uids, context::Order::Mailbox, out);
    }
    view.sync(out, uid, enabled);
    out.send(Response::ok(tag, "SEARCH completed"));
    Ok(Action::None)
}

/// The search key with its strings decoded from `charset`, or None when
/// the charset is unknown (the NO was written).
pub fn decode_key(
    key: &SearchKey,
    charset: Option<&str>,
    tag: &str,
    out: &mut Out,
) -> Option<SearchKey> {
    match charset {
        None | Some("UTF-8") | Some("US-ASCII") => Some(key.clone()),
        Some(cs) => match encoding_rs::Encoding::for_label(cs.as_bytes()) {
            Some(enc) => Some(recode(key, enc)),
            None => {
                out.send(Response::no(
                    tag,
                    Some(Code::BadCharset(vec!["UTF-8", "US-ASCII"])),
                    "Unknown charset",
                ));
                None
            }
        },
    }
}

/// The view positions of the messages that match, in ascending order.
pub fn matching(view: &mut View, key: &SearchKey) -> Vec<usize> {
    let mut hits = Vec::new();
    for i in 0..view.msgs.len() {
        if view.msgs[i].ghost {
            continue;
        }
        if let SearchKey::All = key {
            hits.push(i);
            continue;
        }
        let mut ctx = Ctx { view, i, raw: None };
        if matches(&mut ctx, key) {
            hits.push(i);
        }
    }
    hits
}

/// A message's number as the client asked: its UID or its sequence number.
pub fn number(view: &View, i: usize, uid: bool) -> u32 {
    if uid {
        view.msgs[i].meta.uid
    } else {
        i as u32 + 1
    }
}

/// The ESEARCH response for a result (`hits`, view positions in result
/// order: ascending for SEARCH, sorted for SORT), and what SAVE keeps.
///
/// MIN and MAX are the first and last of the result (for SORT, RFC 5267
/// 3.2, the first and last in sort order); ALL and PARTIAL give message
/// numbers in result order, consecutive ascending runs written as ranges.
/// SAVE (RFC 5182 2.1) keeps the whole result, or only MIN and MAX when
/// they are asked without ALL or COUNT, or only the PARTIAL window (RFC
/// 9394 3.1). With SAVE alone no ESEARCH response is sent.
pub fn results(
    view: &mut View,
    tag: &str,
    uid: bool,
    ret: &[SearchReturn],
    hits: &[usize],
    modseq: Option<u64>,
    out: &mut Out,
) {
    let nums: Vec<u32> = hits.iter().map(|&i| number(view, i, uid)).collect();
    let has = |o: SearchReturn| ret.contains(&o);
    let partial = ret.iter().find_map(|o| match o {
        SearchReturn::Partial(a, b) => Some((*a, *b)),
        _ => None,
    });
    let window: Vec<usize> = match partial {
        Some((a, b)) => {
            let n = hits.len() as i64;
            let (lo, hi) = if a < 0 {
                (n + a + 1, n + b + 1)
            } else {
                (a, b)
            };
            let lo = lo.max(1);
            let hi = hi.min(n);
            if lo > hi {
                Vec::new()
            } else {
                (lo as usize - 1..hi as usize).collect()
            }
        }
        None => Vec::new(),
    };
    if has(SearchReturn::Save) {
        let pick: Vec<usize> = if partial.is_some() {
            window.iter().map(|&w| hits[w]).collect()
        } else if (has(SearchReturn::Min) || has(SearchReturn::Max))
            && !has(SearchReturn::All)
            && !has(SearchReturn::Count)
        {
            let mut v = Vec::new();
            if has(SearchReturn::Min) {
                v.extend(hits.first());
            }
            if has(SearchReturn::Max) {
                v.extend(hits.last());
            }
            v
        } else {
            hits.to_vec()
        };
        let mut saved: Vec<u32> = pick.iter().map(|&i| view.msgs[i].meta.uid).collect();
        saved.sort_unstable();
        saved.dedup();
        view.saved = saved;
        if ret.len() == 1 {
            return;
        }
    }
    // The sets and ranges the items point into (the whole set only when
    // ALL asks for it: a PARTIAL page of a large folder formats a few).
    let all = if has(SearchReturn::All) {
        ordered_set(&nums)
    } else {
        String::new()
    };
    let mut partials = Vec::new();
    for o in ret {
        if let SearchReturn::Partial(a, b) = o {
            let range = if *a < 0 {
                format!("{b}:{a}")
            } else {
                format!("{a}:{b}")
            };
            let w: Vec<u32> = window.iter().map(|&w| nums[w]).collect();
            let set = if w.is_empty() {
                "NIL".to_string()
            } else {
                ordered_set(&w)
            };
            partials.push((range, set));
        }
    }
    let mut partials = partials.iter();
    let mut items = Vec::new();
    for o in ret {
        match o {
            SearchReturn::Min => {
                if let Some(n) = nums.first() {
                    items.push(SearchItem::Min(*n));
                }
            }
            SearchReturn::Max => {
                if let Some(n) = nums.last() {
                    items.push(SearchItem::Max(*n));
                }
            }
            SearchReturn::Count => items.push(SearchItem::Count(nums.len() as u32)),
            SearchReturn::All => {
                if !nums.is_empty() {
                    items.push(SearchItem::All(&all));
                }
            }
            SearchReturn::Partial(..) => {
                if let Some((range, set)) = partials.next() {
                    items.push(SearchItem::Partial { range, set });
                }
            }
            SearchReturn::Save | SearchReturn::Update | SearchReturn::Context => {}
        }
    }
    if let (Some(all), false) = (modseq, nums.is_empty()) {
        // RFC 7162 3.1.5: the highest MODSEQ of the messages returned: with
        // only MIN and MAX, of those one or two, not of every match.
        let m = if has(SearchReturn::All) || has(SearchReturn::Count) || partial.is_some() {
            all
        } else {
            let of = |i: usize| view.msgs[i].meta.modseq;
            let mut m = 0;
            if has(SearchReturn::Min) {
                m = m.max(hits.first().map_or(0, |&i| of(i)));
            }
            if has(SearchReturn::Max) {
                m = m.max(hits.last().map_or(0, |&i| of(i)));
            }
            m
        };
        items.push(SearchItem::ModSeq(m));
    }
    out.send(Response::Data(Data::ESearch {
        tag: Some(tag),
        uid,
        items,
    }));
}

/// Whether message `i` of the view matches `key` (a search context's
/// re-evaluation of one changed message).
pub fn message_matches(view: &mut View, i: usize, key: &SearchKey) -> bool {
    let mut ctx = Ctx { view, i, raw: None };
    matches(&mut ctx, key)
}

/// Numbers as a sequence set that keeps their order: runs of consecutive
/// ascending numbers become ranges (`5,3:4,2,1`). For an ascending list
/// this is the usual compact set.
pub fn ordered_set(nums: &[u32]) -> String {
    let mut out = String::new();
    let mut i = 0;
    while i < nums.len() {
        let start = nums[i];
        let mut end = start;
        while i + 1 < nums.len() && nums[i + 1] == end.wrapping_add(1) {
            i += 1;
            end = nums[i];
        }
        if !out.is_empty() {
            out.push(',');
        }
        if start == end {
            out.push_str(&start.to_string());
        } else {
            out.push_str(&format!("{start}:{end}"));
        }
        i += 1;
    }
    out
}

/// Replaces `$` (RFC 5182) in a command's sets by the saved result: UIDs
/// for UID commands and search keys, the messages' current numbers for
/// the others. Messages expunged since the SAVE are no longer in it.
pub fn resolve_saved(body: &mut CommandBody, view: &View) {
    use CommandBody as B;
    match body {
        B::Fetch { uid, set, .. }
        | B::Store { uid, set, .. }
        | B::Copy { uid, set, .. }
        | B::Move { uid, set, .. }
            if set.is_saved() =>
        {
            *set = saved_set(view, *uid);
        }
        B::Expunge { uids: Some(set) } if set.is_saved() => {
            *set = saved_set(view, true);
        }
        B::Search { key, .. } | B::Sort { key, .. } | B::Thread { key, .. } => saved_key(key, view),
        _ => {}
    }
}

fn saved_key(k: &mut SearchKey, view: &View) {
    match k {
        SearchKey::SeqSet(set) | SearchKey::Uid(set) if set.is_saved() => {
            *k = SearchKey::Uid(saved_set(view, true));
        }
        SearchKey::Not(a) => saved_key(a, view),
        SearchKey::Or(a, b) => {
            saved_key(a, view);
            saved_key(b, view);
        }
        SearchKey::And(v) => v.iter_mut().for_each(|x| saved_key(x, view)),
        _ => {}
    }
}

/// The saved result as a set; `0:0`, which names no message, when empty.
fn saved_set(view: &View, uid: bool) -> SeqSet {
    let nums: Vec<u32> = if uid {
        view.saved.clone()
    } else {
        view.saved
            .iter()
            .filter_map(|u| view.index_of_uid(*u))
            .map(|i| i as u32 + 1)
            .collect()
    };
    if nums.is_empty() {
        return SeqSet(vec![(SeqNo::Value(0), SeqNo::Value(0))]);
    }
    let mut v = Vec::new();
    let mut i = 0;
    while i < nums.len() {
        let start = nums[i];
        let mut end = start;
        while i + 1 < nums.len() && nums[i + 1] == end + 1 {
            i += 1;
            end = nums[i];
        }
        v.push((SeqNo::Value(start), SeqNo::Value(end)));
        i += 1;
    }
    SeqSet(v)
}

pub fn has_modseq(k: &SearchKey) -> bool {
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
            let rawb = raw
                .get(h.offset_start as usize..h.offset_end as usize)
                .unwrap_or_default();
            // The value as the webmail shows it too: RFC 2047 words and raw
            // 8-bit legacy text (GB2312, GBK, Big5) decoded by lib/mime.
            let rawv = format!(
                "{} {}",
                String::from_utf8_lossy(rawb),
                crate::mime::header_text(rawb)
            );
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
