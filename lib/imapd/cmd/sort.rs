//! SORT and UID SORT (RFC 5256 3), DISPLAYFROM and DISPLAYTO (RFC 5957),
//! ESORT return options (RFC 5267 3.2) and PARTIAL (RFC 9394).
//!
//! The messages SEARCH would find are ordered by the criteria in turn; a
//! REVERSE reverses its own criterion only, and messages equal under every
//! criterion stay in mailbox order (RFC 5256 3: "the order in which they
//! appear in the mailbox"). Header keys come from [`sortkey`], parsed once
//! per message and cached, so sorting a large folder again reads no mail.

use crate::proto::imap::response::{Data, Response};
use std::cmp::Ordering;
use std::io;
use std::sync::Arc;

use super::search;
use crate::imapd::context;
use crate::imapd::session::{Action, Out, Session, State};
use crate::imapd::sortkey::{self, Keys};
use crate::imapd::store::MsgMeta;
use crate::proto::imap::{SearchKey, SearchReturn, SortBy, SortCriterion};

#[allow(clippy::too_many_arguments)]
pub fn sort(
    s: &mut Session,
    tag: &str,
    uid: bool,
    ret: Option<Vec<SearchReturn>>,
    criteria: &[SortCriterion],
    charset: &str,
    key: &SearchKey,
    out: &mut Out,
) -> io::Result<Action> {
    let enabled = s.enabled;
    let update = ret
        .as_ref()
        .is_some_and(|r| r.contains(&SearchReturn::Update));
    if let State::Selected(_, view) = &s.state {
        // RFC 5267 4.3: a tag already in use by an updating context is BAD.
        if update && view.contexts.has(tag) {
            return Ok(s.bad(tag, "Tag reuse: a search with UPDATE has this tag", out));
        }
    }
    let State::Selected(_, view) = &mut s.state else {
        return Ok(Action::None);
    };
    let Some(key) = search::decode_key(key, Some(charset), tag, out) else {
        if ret
            .as_ref()
            .is_some_and(|r| r.contains(&SearchReturn::Save))
        {
            view.saved.clear();
        }
        return Ok(Action::None);
    };
    let hits = search::matching(view, &key);
    let order = sorted(view, &hits, criteria);
    let modseq = search::has_modseq(&key).then(|| {
        hits.iter()
            .map(|&i| view.msgs[i].meta.modseq)
            .max()
            .unwrap_or(0)
    });
    match ret {
        None => {
            let nums: Vec<u32> = order
                .iter()
                .map(|&i| search::number(view, i, uid))
                .collect();
            out.send(Response::Data(Data::Sort {
                nums: &nums,
                modseq,
            }));
        }
        Some(r) => search::results(view, tag, uid, &r, &order, modseq, out),
    }
    if update {
        // CONTEXT=SORT (RFC 5267 4): the context keeps the result in this
        // order, and places in it are computed by the same comparison.
        let crit = criteria.to_vec();
        let by_criteria: context::SortFn = Box::new(move |view, uids| {
            let mut idx: Vec<usize> = uids.iter().filter_map(|u| view.index_of_uid(*u)).collect();
            idx.sort_unstable();
            let mut now: Vec<u32> = sorted(view, &idx, &crit)
                .into_iter()
                .map(|i| view.msgs[i].meta.uid)
                .collect();
            now.extend(uids.iter().filter(|u| view.index_of_uid(**u).is_none()));
            uids.copy_from_slice(&now);
        });
        let uids = order.iter().map(|&i| view.msgs[i].meta.uid).collect();
        context::start(
            view,
            tag,
            uid,
            &key,
            uids,
            context::Order::Sorted(by_criteria),
            out,
        );
    }
    view.sync(out, uid, enabled);
    out.send(Response::ok(tag, "SORT completed"));
    Ok(Action::None)
}

/// The view positions `hits` (ascending) in the order the criteria give.
pub fn sorted(
    view: &mut crate::imapd::view::View,
    hits: &[usize],
    criteria: &[SortCriterion],
) -> Vec<usize> {
    if let [c] = criteria {
        if matches!(c.by, SortBy::Arrival | SortBy::Size | SortBy::Date) {
            return sorted_by_number(view, hits, c);
        }
    }
    let needs_header = criteria
        .iter()
        .any(|c| !matches!(c.by, SortBy::Arrival | SortBy::Size));
    let keys: Vec<Arc<Keys>> = if needs_header {
        sortkey::keys(view, hits)
    } else {
        Vec::new()
    };
    let metas: Vec<&MsgMeta> = hits.iter().map(|&i| &*view.msgs[i].meta).collect();
    let mut order: Vec<usize> = (0..hits.len()).collect();
    // A stable sort over positions in mailbox order: ties stay in it.
    order.sort_by(|&a, &b| {
        for c in criteria {
            let o = compare(c.by, metas[a], metas[b], keys.get(a), keys.get(b));
            let o = if c.reverse { o.reverse() } else { o };
            if o != Ordering::Equal {
                return o;
            }
        }
        Ordering::Equal
    });
    order.into_iter().map(|j| hits[j]).collect()
}

/// [`sorted`] for one criterion that is a number (the webmail's orders by
/// date, arrival or size): (number, position) pairs are a total order that
/// keeps ties in mailbox order, so an unstable sort of them gives the
/// order of the general comparison; only the dates are taken from the
/// sort keys.
fn sorted_by_number(
    view: &mut crate::imapd::view::View,
    hits: &[usize],
    c: &SortCriterion,
) -> Vec<usize> {
    let dates: Vec<Option<i64>> = if c.by == SortBy::Date {
        sortkey::keys_with(view, hits, |k| k.date)
    } else {
        Vec::new()
    };
    let mut pairs: Vec<(i64, usize)> = hits
        .iter()
        .enumerate()
        .map(|(j, &i)| {
            let m = &*view.msgs[i].meta;
            let n = match c.by {
                SortBy::Arrival => m.internal_date,
                SortBy::Size => i64::try_from(m.size).unwrap_or(i64::MAX),
                _ => dates.get(j).copied().flatten().unwrap_or(m.internal_date),
            };
            // Reversed by the bitwise complement, which, unlike negation,
            // cannot overflow and maps every i64 to one in reverse order.
            (if c.reverse { !n } else { n }, i)
        })
        .collect();
    pairs.sort_unstable();
    pairs.into_iter().map(|(_, i)| i).collect()
}

/// The sent date (RFC 5256 2.2): the Date: header, else INTERNALDATE.
pub fn sent_date(m: &MsgMeta, k: Option<&Arc<Keys>>) -> i64 {
    k.and_then(|k| k.date).unwrap_or(m.internal_date)
}

fn compare(
    by: SortBy,
    ma: &MsgMeta,
    mb: &MsgMeta,
    ka: Option<&Arc<Keys>>,
    kb: Option<&Arc<Keys>>,
) -> Ordering {
    let text = |f: fn(&Keys) -> &str| -> Ordering {
        let a = ka.map(|k| f(k)).unwrap_or("");
        let b = kb.map(|k| f(k)).unwrap_or("");
        a.cmp(b)
    };
    match by {
        SortBy::Arrival => ma.internal_date.cmp(&mb.internal_date),
        SortBy::Size => ma.size.cmp(&mb.size),
        SortBy::Date => sent_date(ma, ka).cmp(&sent_date(mb, kb)),
        SortBy::Subject => text(|k| &k.subject),
        SortBy::From => text(|k| &k.from),
        SortBy::To => text(|k| &k.to),
        SortBy::Cc => text(|k| &k.cc),
        SortBy::DisplayFrom => text(|k| &k.display_from),
        SortBy::DisplayTo => text(|k| &k.display_to),
    }
}
