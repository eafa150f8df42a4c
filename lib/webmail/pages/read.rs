//! Reading a message: GET /read (the page), GET /frame (the mail's HTML,
//! for the sandboxed frame of that page), GET /part (an attachment or an
//! inline image), GET /source (the message as it is stored), and POST
//! /read/images (always show remote images from this sender).
//!
//! Every one fetches the message with BODY.PEEK[] and decodes it with
//! `crate::mime`. Opening a message marks it read, as mail clients do: the
//! page is fetched with PEEK and `\Seen` is then set by its own UID STORE
//! (only when it is not set yet). This is the one change a GET makes; it
//! is what every reader expects, it is idempotent, and a forged request
//! cannot cause it (the session cookie is SameSite=Strict).
//!
//! The mail's HTML is never put into the page itself: the page holds an
//! `<iframe sandbox>` (no `allow-scripts`, so nothing in it ever runs)
//! whose document is served by /frame with its own Content-Security-Policy
//! ([`frame_csp`]: no script, no connection, images only from the webmail
//! itself, `data:` and, once the user allowed it, https). The frame keeps
//! `allow-same-origin` so that the browser sends the session cookie with
//! the frame's `cid:` image requests (a SameSite=Strict cookie is not sent
//! from an opaque origin); without scripts, an origin gives the mail
//! nothing to use.

use serde_json::json;

use super::super::app::{Ctx, PageError};
use super::super::request::url_encode;
use super::super::response::Response;
use super::mail::{self, Order};
use crate::imapc::Criteria;
use crate::mime::{self, ViewOptions};

/// The METADATA entry listing the senders whose remote images are always
/// shown, one address a line (beside the settings, `state::PREFS_ENTRY`).
pub const REMOTE_IMAGES_ENTRY: &str = "/private/vendor/kmpromail/webmail/remote-images";

/// Most senders kept in [`REMOTE_IMAGES_ENTRY`] (the oldest go first).
pub const MAX_TRUSTED_SENDERS: usize = 500;

/// The policy of the frame a message's HTML is shown in.
pub fn frame_csp(remote: bool) -> String {
    format!(
        "default-src 'none'; img-src 'self' data:{}; style-src 'unsafe-inline'; \
         font-src 'none'; form-action 'none'; base-uri 'none'; frame-ancestors 'self'; \
         sandbox allow-same-origin allow-popups allow-popups-to-escape-sandbox",
        if remote { " https:" } else { "" }
    )
}

/// The image types shown inline (in the frame); every other part is a
/// download.
const INLINE_TYPES: &[&str] = &["image/png", "image/gif", "image/jpeg", "image/webp"];

/// The folder and UID of a request, the folder selected, and the message.
fn fetch(ctx: &mut Ctx, read_only: bool) -> Result<(String, u32, Vec<u8>), PageError> {
    let folder = mail::folder_of(ctx)?;
    let uid = mail::check_uid(ctx.req.param("uid").or(ctx.req.field("uid")))?;
    mail::select(ctx, &folder, read_only)?;
    match ctx.imap().fetch_raw(uid)? {
        Some(raw) => Ok((folder, uid, raw)),
        None => Err(PageError::Bad("err_no_message")),
    }
}

/// The URL of a part of the message.
fn part_url(base: &str, folder: &str, uid: u32, section: &str) -> String {
    format!(
        "{base}/part?folder={}&uid={uid}&section={section}",
        url_encode(folder)
    )
}

/// The senders whose remote images the user always wants.
fn trusted_senders(ctx: &mut Ctx) -> Result<Vec<String>, PageError> {
    // Read with the session, when the route asked for it.
    let entries = match ctx
        .auth()
        .metadata
        .iter()
        .position(|(n, _)| *n == REMOTE_IMAGES_ENTRY)
    {
        Some(i) => vec![ctx.auth().metadata.swap_remove(i)],
        None => ctx
            .imap()
            .get_metadata("", &[REMOTE_IMAGES_ENTRY])?
            .into_iter()
            .map(|(_, v)| (REMOTE_IMAGES_ENTRY, v))
            .collect(),
    };
    Ok(entries
        .into_iter()
        .filter_map(|(_, v)| v)
        .flat_map(|v| {
            String::from_utf8_lossy(&v)
                .lines()
                .map(|l| l.trim().to_ascii_lowercase())
                .filter(|l| !l.is_empty())
                .collect::<Vec<_>>()
        })
        .collect())
}

/// A message's place in the list's order (from 0), the messages before and
/// after it, and how many there are.
struct Neighbours {
    at: Option<usize>,
    prev: Option<u32>,
    next: Option<u32>,
    total: usize,
}

/// Where the message is in the list's order. The list's links say where the
/// message was (`at`): when the server still has it there, three UIDs
/// around it are all that is asked for (ESORT PARTIAL); else the whole
/// order is sorted and searched.
fn neighbours(ctx: &mut Ctx, order: &Order, uid: u32) -> Result<Neighbours, PageError> {
    if let Some(at) = ctx.req.param("at").and_then(|a| a.parse::<usize>().ok()) {
        let first = at.saturating_sub(1);
        let (around, total) = ctx.imap().sort_window(
            order.key,
            order.reverse,
            &Criteria::All,
            first,
            at - first + 2,
        )?;
        let i = at - first;
        if around.get(i) == Some(&uid) {
            let prev = i.checked_sub(1).and_then(|j| around.get(j)).copied();
            return Ok(Neighbours {
                at: Some(at),
                prev,
                next: around.get(i + 1).copied(),
                total,
            });
        }
    }
    let uids = ctx.imap().sort(order.key, order.reverse, &Criteria::All)?;
    let at = uids.iter().position(|u| *u == uid);
    let prev = at
        .and_then(|i| i.checked_sub(1))
        .and_then(|i| uids.get(i))
        .copied();
    let next = at.and_then(|i| uids.get(i + 1)).copied();
    Ok(Neighbours {
        at,
        prev,
        next,
        total: uids.len(),
    })
}

/// GET /read?folder=F&uid=N[&images=1][&view=text]&at=I&sort=..&rev=...
///
/// The message and its flags come in one FETCH. The mail's HTML is not
/// sanitised here but in the frame's request, which shows it: this page
/// only asks `mime` what the sanitiser will block and which `cid:` parts
/// the HTML shows (`write_html: false`), a fraction of the work.
pub fn show(ctx: &mut Ctx) -> Result<Response, PageError> {
    let folder = mail::folder_of(ctx)?;
    let uid = mail::check_uid(ctx.req.param("uid"))?;
    mail::select(ctx, &folder, false)?;
    let Some((raw, flags)) = ctx.imap().fetch_raw_flags(uid)? else {
        return Err(PageError::Bad("err_no_message"));
    };
    let order = Order::of(ctx);
    let base = ctx.req.base.clone();
    let cid = |section: &str| part_url(&base, &folder, uid, section);
    let view = mime::view(
        &raw,
        &ViewOptions {
            allow_remote: false,
            cid_url: &cid,
            write_html: false,
        },
    );
    let has = |f: &str| flags.iter().any(|x| x.eq_ignore_ascii_case(f));
    let (seen, flagged) = (has("\\Seen"), has("\\Flagged"));
    // A read receipt is offered until one was sent (RFC 3503 $MDNSent).
    let receipt_to =
        crate::webmail::compose::reply::receipt_address(&raw).filter(|_| !has("$MDNSent"));
    if !seen {
        ctx.imap().store(&[uid], true, &["\\Seen"])?;
    }
    let sender = view
        .from
        .first()
        .map(|m| m.address.to_ascii_lowercase())
        .unwrap_or_default();
    let trusted = !sender.is_empty() && trusted_senders(ctx)?.contains(&sender);
    let images = ctx.req.param("images") == Some("1") || trusted;
    let Neighbours {
        at,
        prev,
        next,
        total,
    } = neighbours(ctx, &order, uid)?;
    let position = at.map(|i| i + 1);
    let page_no = at.map_or(1, |i| i / ctx.auth().prefs.page_size.max(1) as usize + 1);
    let folders = ctx.imap().list_names()?;
    let offset = ctx.auth().prefs.tz_offset_minutes();
    let people = |list: &[mime::Mailbox]| -> Vec<serde_json::Value> {
        list.iter()
            .map(|m| json!({ "name": m.name, "address": m.address }))
            .collect()
    };
    let want_text = ctx.req.param("view") == Some("text");
    let show_html = view.html.is_some() && !(want_text && view.text.is_some());
    let text_html = if show_html {
        None
    } else {
        Some(mime::text_to_html(view.text.as_deref().unwrap_or_default()))
    };
    let attachments: Vec<_> = view
        .attachments
        .iter()
        .map(|a| {
            json!({
                "name": a.name,
                "section": a.section,
                "type": a.content_type,
                "size": mail::human_size(a.size),
                "inline_image": INLINE_TYPES.contains(&a.content_type.as_str()),
            })
        })
        .collect();
    let q = format!("folder={}&uid={uid}", url_encode(&folder));
    let label = mail::folder_label(ctx, &folders, &folder);
    let targets = mail::targets(ctx, &folders);
    let in_trash = mail::trash(&folders).is_some_and(|t| t.name == folder);
    ctx.page(
        "read.html",
        json!({
            "folder": folder,
            "folder_label": label,
            "uid": uid,
            "q": q,
            "order": order.query(),
            "sort": order.name,
            "rev": u8::from(order.reverse),
            "subject": view.subject,
            "from": people(&view.from),
            "to": people(&view.to),
            "cc": people(&view.cc),
            "reply_to": people(&view.reply_to),
            "date": view.date.map(|t| mail::long_date(t, offset)).or(view.date_text.clone()),
            "priority": match view.priority {
                Some(1) | Some(2) => Some("high"),
                Some(4) | Some(5) => Some("low"),
                _ => None,
            },
            "flagged": flagged,
            "html": show_html,
            "has_text": view.text.is_some(),
            "has_html": view.html.is_some(),
            "text_html": text_html,
            "blocked": view.html.as_ref().map_or(0, |h| h.blocked_remote),
            "images": images,
            "trusted": trusted,
            "sender": sender,
            "attachments": attachments,
            "prev": prev,
            "next": next,
            "prev_at": at.and_then(|i| i.checked_sub(1)),
            "next_at": at.map(|i| i + 1),
            "position": position,
            "total": total,
            "page_no": page_no,
            "targets": targets,
            "in_trash": in_trash,
            "receipt_to": receipt_to,
        }),
    )
}

/// GET /frame?folder=F&uid=N[&images=1]: the mail's sanitised HTML as a
/// document of its own, for the sandboxed frame of the message page.
pub fn frame(ctx: &mut Ctx) -> Result<Response, PageError> {
    let (folder, uid, raw) = fetch(ctx, true)?;
    let remote = ctx.req.param("images") == Some("1");
    let base = ctx.req.base.clone();
    let cid = |section: &str| part_url(&base, &folder, uid, section);
    let view = mime::view(
        &raw,
        &ViewOptions {
            allow_remote: remote,
            cid_url: &cid,
            write_html: true,
        },
    );
    let Some(html) = view.html else {
        return Err(PageError::Bad("err_no_html"));
    };
    let doc = format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">\
         <meta name=\"referrer\" content=\"no-referrer\">\
         <base target=\"_blank\"></head>\n<body>{}</body></html>\n",
        html.body
    );
    let mut r = Response::html(200, doc);
    r.csp = frame_csp(remote);
    Ok(r)
}

/// A media type safe to put in a header: `type/subtype` of token characters.
fn clean_type(t: &str) -> String {
    let ok = t.len() <= 100
        && t.split_once('/').is_some_and(|(a, b)| {
            !a.is_empty()
                && !b.is_empty()
                && (a.to_string() + b)
                    .bytes()
                    .all(|c| c.is_ascii_alphanumeric() || b"+-.".contains(&c))
        });
    if ok {
        t.to_ascii_lowercase()
    } else {
        "application/octet-stream".into()
    }
}

/// GET /part?folder=F&uid=N&section=S[&download=1]: one part, decoded.
/// Raster images are served inline (for the frame and a click on them);
/// everything else, and anything with `download=1`, as an attachment with
/// its decoded name (RFC 6266).
pub fn part(ctx: &mut Ctx) -> Result<Response, PageError> {
    let section = mail::check_section(ctx.req.param("section"))?;
    let (_, _, raw) = fetch(ctx, true)?;
    let Some(p) = mime::part(&raw, &section) else {
        return Err(PageError::Bad("err_bad_section"));
    };
    let ctype = clean_type(&p.content_type);
    let inline = INLINE_TYPES.contains(&ctype.as_str()) && ctx.req.param("download") != Some("1");
    let name = p.name.clone().unwrap_or_else(|| format!("part-{section}"));
    let mut r = Response::html(200, String::new());
    r.body = p.bytes;
    r.content_type = if inline || ctx.req.param("download") == Some("1") {
        ctype
    } else {
        // Never let a browser render a sender's HTML or SVG as our page.
        "application/octet-stream".into()
    };
    r.csp = "default-src 'none'; sandbox".into();
    Ok(r.with_header(
        "Content-Disposition",
        &mime::content_disposition(if inline { "inline" } else { "attachment" }, &name),
    ))
}

/// GET /source?folder=F&uid=N: the message as stored, as plain text (no
/// charset named, no conversion: the bytes as the sender sent them).
pub fn source(ctx: &mut Ctx) -> Result<Response, PageError> {
    let (_, uid, raw) = fetch(ctx, true)?;
    let mut r = Response::html(200, String::new());
    r.body = raw;
    r.content_type = "text/plain".into();
    r.csp = "default-src 'none'; sandbox".into();
    Ok(r.with_header(
        "Content-Disposition",
        &mime::content_disposition("inline", &format!("message-{uid}.eml")),
    ))
}

/// POST /read/images: always show remote images of the message's sender.
pub fn trust_sender(ctx: &mut Ctx) -> Result<Response, PageError> {
    let (folder, uid, raw) = fetch(ctx, true)?;
    let order = Order::of(ctx);
    let none = |_: &str| String::new();
    let view = mime::view(
        &raw,
        &ViewOptions {
            allow_remote: false,
            cid_url: &none,
            write_html: false,
        },
    );
    let sender = view
        .from
        .first()
        .map(|m| m.address.to_ascii_lowercase())
        .filter(|a| a.contains('@') && a.len() <= 254 && !a.chars().any(|c| c.is_control()))
        .ok_or(PageError::Bad("err_no_sender"))?;
    let mut list = trusted_senders(ctx)?;
    if !list.contains(&sender) {
        list.push(sender);
        let drop = list.len().saturating_sub(MAX_TRUSTED_SENDERS);
        list.drain(..drop);
        let text: String = list.iter().map(|a| format!("{a}\n")).collect();
        ctx.imap()
            .set_metadata("", &[(REMOTE_IMAGES_ENTRY, Some(text.as_bytes()))])?;
    }
    Ok(ctx.redirect(&format!(
        "/read?folder={}&uid={uid}&{}&done=images",
        url_encode(&folder),
        order.query()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_frame_policy_allows_no_script_and_remote_images_only_when_asked() {
        let p = frame_csp(false);
        assert!(p.starts_with("default-src 'none'; img-src 'self' data:;"));
        assert!(!p.contains("script"));
        assert!(!p.contains("https:"));
        assert!(p.contains("sandbox allow-same-origin"));
        assert!(!p.contains("allow-scripts"));
        assert!(frame_csp(true).contains("img-src 'self' data: https:;"));
    }

    #[test]
    fn part_types_are_tokens_or_octet_stream() {
        assert_eq!(clean_type("image/png"), "image/png");
        assert_eq!(
            clean_type("application/vnd.ms-excel"),
            "application/vnd.ms-excel"
        );
        assert_eq!(clean_type("text/html\r\nX: y"), "application/octet-stream");
        assert_eq!(clean_type("nonsense"), "application/octet-stream");
    }
}
