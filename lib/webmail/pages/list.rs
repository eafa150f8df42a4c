//! The message list of a folder (GET /list) and what can be done to the
//! messages ticked in it (POST /list/act).
//!
//! The list is the folder's UIDs in the order IMAP SORT gives (RFC 5256:
//! date, from, subject, size or arrival, either direction), cut into pages
//! of the user's page size; only the page shown is fetched (ENVELOPE,
//! FLAGS, BODYSTRUCTURE, size and priority in one UID FETCH).
//!
//! Delete moves to Trash; in Trash it removes for good. When the move is
//! refused because the mailbox is over its quota (NO [OVERQUOTA]), the
//! oldest messages of Trash are removed until the moved ones fit, and the
//! move is tried once more (seed 3.5: Trash gives way when the quota is
//! full); when Trash cannot make room the user is told so and nothing is
//! changed.

use serde_json::json;

use super::super::app::{Ctx, PageError};
use super::super::request::url_encode;
use super::super::response::Response;
use super::super::seal::BannerMark;
use super::mail::{self, Order};
use crate::imapc::{self, Criteria, Folder, Selected, SortKey};

/// Most messages one POST acts on.
pub const MAX_SELECTED: usize = 1000;

/// The actions of POST /list/act and the flash message of each.
const ACTIONS: &[&str] = &["delete", "move", "copy", "seen", "unseen", "flag", "unflag"];

/// GET /list?folder=F&sort=K&rev=0|1&page=N.
pub fn show(ctx: &mut Ctx) -> Result<Response, PageError> {
    let folder = mail::folder_of(ctx)?;
    let order = Order::of(ctx);
    let folders = ctx.imap().list_names()?;
    let selected = mail::select(ctx, &folder, true)?;
    let size = ctx.auth().prefs.page_size.max(1) as usize;
    let asked = ctx
        .req
        .param("page")
        .and_then(|p| p.parse::<usize>().ok())
        .unwrap_or(1)
        .clamp(1, usize::MAX / size);
    // Only the page's UIDs are asked for; a page past the end (messages
    // went meanwhile) is asked again as the last page.
    let window = |ctx: &mut Ctx, page: usize| {
        ctx.imap().sort_window(
            order.key,
            order.reverse,
            &Criteria::All,
            (page - 1) * size,
            size,
        )
    };
    let (mut slice, total) = window(ctx, asked)?;
    let pages = total.div_ceil(size).max(1);
    let page = asked.min(pages);
    if page != asked {
        slice = window(ctx, page)?.0;
    }
    let summaries = if slice.is_empty() {
        Vec::new()
    } else {
        ctx.imap().summaries(&slice)?
    };
    let show_to = mail::shows_recipients(&folders, &folder);
    let mut rows = mail::rows(ctx, &summaries, show_to)?;
    // Each row's place in the order, which the message page starts from.
    let first = (page - 1) * size;
    for (row, s) in rows.iter_mut().zip(&summaries) {
        if let Some(i) = slice.iter().position(|u| *u == s.uid) {
            row["at"] = json!(first + i);
        }
    }
    let announcement = if folder == "INBOX" {
        announcement(ctx, &rows, &selected)?
    } else {
        None
    };
    let unseen = summaries.iter().filter(|s| !s.has_flag("\\Seen")).count();
    let sorts: Vec<_> = mail::SORTS
        .iter()
        .filter(|(n, _)| *n != "arrival")
        .map(|(n, _)| {
            let active = *n == order.name;
            // A second click on the active key turns the direction round.
            let rev = if active {
                !order.reverse
            } else {
                matches!(*n, "date" | "size")
            };
            json!({ "name": n, "active": active, "reverse": order.reverse,
                    "query": format!("sort={n}&rev={}", u8::from(rev)) })
        })
        .collect();
    let in_trash = mail::trash(&folders).is_some_and(|t| t.name == folder);
    let label = mail::folder_label(ctx, &folders, &folder);
    let targets = mail::targets(ctx, &folders);
    ctx.page(
        "list.html",
        json!({
            "folder": folder,
            "folder_label": label,
            "rows": rows,
            "total": total,
            "unseen_on_page": unseen,
            "page_no": page,
            "pages": pages,
            "prev_page": (page > 1).then(|| page - 1),
            "next_page": (page < pages).then(|| page + 1),
            "order": order.query(),
            "sort": order.name,
            "rev": u8::from(order.reverse),
            "sorts": sorts,
            "show_to": show_to,
            // Drafts open in the compose page.
            "is_drafts": folders.iter().any(|f| f.name == folder
                && f.special.as_deref().is_some_and(|s| s.eq_ignore_ascii_case("\\Drafts"))),
            "in_trash": in_trash,
            "targets": targets,
            "announcement": announcement,
        }),
    )
}

/// Days an unread announcement keeps its banner.
const ANNOUNCEMENT_DAYS: i64 = 30;

/// A session's first look for the banner covers the INBOX's newest
/// messages only: the search reads the header of every unread message it
/// covers, and a folder with thousands of recent unread messages would
/// make the first page after each login read them all. An announcement
/// is shown while it is among these (and, once found, for the session).
const ANNOUNCEMENT_WINDOW: u32 = 500;

/// The newest unread announcement of the INBOX (selected), for the banner
/// (`announce_banner.html`): its UID, and its subject when it is on the
/// page shown (the rows already fetched).
///
/// The search (`UNSEEN SINCE 30 days HEADER X-Kmpromail-Announcement ""`)
/// reads the header of every unread message it reaches, so it is made
/// once per session over the newest [`ANNOUNCEMENT_WINDOW`] messages, and after that only over what
/// arrived since (UIDs from the UIDNEXT it reached) and the announcement it
/// found last (still unread?): the session cookie keeps that mark
/// ([`BannerMark`]), renewed when it changes.
fn announcement(
    ctx: &mut Ctx,
    rows: &[serde_json::Value],
    selected: &Selected,
) -> Result<Option<serde_json::Value>, PageError> {
    let (y, m, d) = crate::proto::imap::civil_from_days(
        (ctx.now as i64).div_euclid(86_400) - ANNOUNCEMENT_DAYS,
    );
    let mark = ctx
        .auth()
        .session
        .banner
        .filter(|b| b.uidvalidity == selected.uidvalidity && selected.uidnext != 0);
    let range = match mark {
        None if selected.exists > ANNOUNCEMENT_WINDOW => {
            Criteria::SeqsFrom(selected.exists - ANNOUNCEMENT_WINDOW + 1)
        }
        None => Criteria::All,
        Some(b) if b.found != 0 => Criteria::Or(
            Box::new(Criteria::UidsFrom(b.next)),
            Box::new(Criteria::Uids(vec![b.found])),
        ),
        Some(b) => Criteria::UidsFrom(b.next),
    };
    // Flags, arrival dates and UIDs are in the server's index; only the
    // unread mail of the range has its header read.
    let found = ctx.imap().search(&Criteria::And(vec![
        range,
        Criteria::Unseen,
        Criteria::Since((y.clamp(1, 9999) as u16, m as u8, d as u8)),
        Criteria::Header(crate::announce::message::HEADER.into(), String::new()),
    ]))?;
    let newest = found.last().copied();
    if selected.uidnext != 0 {
        let now = Some(BannerMark {
            uidvalidity: selected.uidvalidity,
            next: selected.uidnext.max(mark.map_or(0, |b| b.next)),
            found: newest.unwrap_or(0),
        });
        if now != ctx.auth().session.banner {
            ctx.auth().session.banner = now;
            let keys = ctx.keys;
            let sealed = keys
                .seal(&ctx.auth().session)
                .map_err(PageError::Internal)?;
            let c = ctx.session_cookie(&sealed);
            ctx.cookies.push(c);
        }
    }
    let Some(uid) = newest else {
        return Ok(None);
    };
    let subject = rows
        .iter()
        .find(|r| r["uid"].as_u64() == Some(u64::from(uid)))
        .and_then(|r| r["subject"].as_str())
        .map(str::to_string);
    Ok(Some(json!({ "uid": uid, "subject": subject })))
}

/// The UIDs ticked in a form (`uid`, many times): all numbers, at least one.
fn ticked(ctx: &Ctx) -> Result<Vec<u32>, PageError> {
    let mut out = Vec::new();
    for (k, v) in &ctx.req.form {
        if k == "uid" {
            out.push(mail::check_uid(Some(v))?);
        }
    }
    out.sort_unstable();
    out.dedup();
    if out.is_empty() {
        return Err(PageError::Bad("err_none_selected"));
    }
    if out.len() > MAX_SELECTED {
        return Err(PageError::Bad("err_too_many"));
    }
    Ok(out)
}

/// POST /list/act: `action` on the ticked `uid`s of `folder` (`target`
/// for move and copy); back to the list (or to `back=read` message's
/// neighbour) with a flash message.
pub fn act(ctx: &mut Ctx) -> Result<Response, PageError> {
    let folder = mail::folder_of(ctx)?;
    let order = Order::of(ctx);
    let action = ctx.req.field("action").unwrap_or_default().to_string();
    if !ACTIONS.contains(&action.as_str()) {
        return Err(PageError::Bad("err_bad_action"));
    }
    let uids = ticked(ctx)?;
    let folders = ctx.imap().list_names()?;
    mail::select(ctx, &folder, false)?;
    // Every ticked message must still be there, or nothing is done.
    let found = ctx.imap().search(&Criteria::Uids(uids.clone()))?;
    if found.len() != uids.len() {
        return Err(PageError::Bad("err_no_message"));
    }
    let done = match action.as_str() {
        "seen" | "unseen" => {
            ctx.imap().store(&uids, action == "seen", &["\\Seen"])?;
            "marked"
        }
        "flag" | "unflag" => {
            ctx.imap().store(&uids, action == "flag", &["\\Flagged"])?;
            "marked"
        }
        "move" | "copy" => {
            let target = mail::check_folder(ctx.req.field("target"))?;
            let ok = folders.iter().any(|f| f.name == target && f.selectable());
            if !ok || target == folder {
                return Err(PageError::Bad("err_bad_target"));
            }
            if action == "move" {
                ctx.imap().move_to(&uids, &target)?;
                "moved"
            } else {
                ctx.imap().copy(&uids, &target)?;
                "copied"
            }
        }
        _ => delete(ctx, &folders, &folder, &uids)?,
    };
    let page = ctx
        .req
        .field("page")
        .and_then(|p| p.parse::<u32>().ok())
        .unwrap_or(1);
    // From a message page, a delete or move goes on to the next message.
    if let Some(next) = ctx
        .req
        .field("next")
        .filter(|_| matches!(done, "trashed" | "removed" | "trash_room" | "moved"))
    {
        if let Ok(n) = mail::check_uid(Some(next)) {
            return Ok(ctx.redirect(&format!(
                "/read?folder={}&uid={n}&{}&done={done}",
                url_encode(&folder),
                order.query()
            )));
        }
    }
    if ctx.req.field("back") == Some("read") && done == "marked" {
        if let [uid] = uids[..] {
            return Ok(ctx.redirect(&format!(
                "/read?folder={}&uid={uid}&{}&done={done}",
                url_encode(&folder),
                order.query()
            )));
        }
    }
    Ok(ctx.redirect(&format!(
        "/list?folder={}&{}&page={page}&done={done}",
        url_encode(&folder),
        order.query()
    )))
}

/// Delete: into Trash, or for good when already in Trash (or there is none).
fn delete(
    ctx: &mut Ctx,
    folders: &[Folder],
    folder: &str,
    uids: &[u32],
) -> Result<&'static str, PageError> {
    let Some(trash) = mail::trash(folders).map(|f| f.name.clone()) else {
        ctx.imap().expunge(uids)?;
        return Ok("removed");
    };
    if trash == folder {
        ctx.imap().expunge(uids)?;
        return Ok("removed");
    }
    match ctx.imap().move_to(uids, &trash) {
        Ok(()) => Ok("trashed"),
        Err(imapc::Error::No(text)) if over_quota(&text) => {
            let needed: u64 = ctx.imap().summaries(uids)?.iter().map(|s| s.size).sum();
            if !make_room(ctx, &trash, needed)? {
                return Err(PageError::Bad("err_trash_full"));
            }
            mail::select(ctx, folder, false)?;
            match ctx.imap().move_to(uids, &trash) {
                Ok(()) => Ok("trash_room"),
                Err(imapc::Error::No(text)) if over_quota(&text) => {
                    Err(PageError::Bad("err_trash_full"))
                }
                Err(e) => Err(e.into()),
            }
        }
        Err(e) => Err(e.into()),
    }
}

/// Whether a NO says the quota is full (RFC 9208 `[OVERQUOTA]`).
pub fn over_quota(text: &str) -> bool {
    let t = text.to_ascii_uppercase();
    t.contains("OVERQUOTA") || t.contains("QUOTA")
}

/// Removes the oldest messages of Trash (by arrival) until `needed` bytes
/// are freed. False when Trash holds nothing to remove.
fn make_room(ctx: &mut Ctx, trash: &str, needed: u64) -> Result<bool, PageError> {
    mail::select(ctx, trash, false)?;
    let oldest = ctx.imap().sort(SortKey::Arrival, false, &Criteria::All)?;
    if oldest.is_empty() {
        return Ok(false);
    }
    let mut gone = Vec::new();
    let mut freed = 0u64;
    for chunk in oldest.chunks(200) {
        for s in ctx.imap().summaries(chunk)? {
            if freed >= needed {
                break;
            }
            freed += s.size;
            gone.push(s.uid);
        }
        if freed >= needed {
            break;
        }
    }
    ctx.imap().expunge(&gone)?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_quota_is_recognised_in_a_no() {
        assert!(over_quota("[OVERQUOTA] Quota exceeded"));
        assert!(over_quota("mailbox over quota"));
        assert!(!over_quota("[TRYCREATE] no such folder"));
    }
}
