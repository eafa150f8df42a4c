//! POST /read/receipt: a read receipt (RFC 8098) for a message that asks
//! for one (Disposition-Notification-To), sent when the user clicks, never
//! on its own, and the message flagged `$MDNSent` (RFC 3503) so the page
//! offers it once.

use super::super::app::{Ctx, PageError};
use super::super::compose::{build, reply};
use super::super::request::url_encode;
use super::super::response::Response;
use super::super::submit::{Chunk, SubmitError};
use super::compose::{compose_prefs, identity, submit_message};
use super::mail;

/// POST /read/receipt: sends a read receipt (RFC 8098) for the message and
/// flags it `$MDNSent` (RFC 3503), so the page offers it once.
pub fn receipt(ctx: &mut Ctx) -> Result<Response, PageError> {
    let folder = mail::folder_of(ctx)?;
    let uid = mail::check_uid(ctx.req.field("uid"))?;
    mail::select(ctx, &folder, false)?;
    let raw = ctx
        .imap()
        .fetch_raw(uid)?
        .ok_or(PageError::Bad("err_no_message"))?;
    let to = reply::receipt_address(&raw).ok_or(PageError::Bad("err_no_receipt"))?;
    let prefs = compose_prefs(ctx)?;
    let from = identity(ctx, &prefs);
    let subject = build::header(&raw, "Subject").unwrap_or_default();
    let id = build::header(&raw, "Message-ID")
        .and_then(|v| build::message_ids(v.as_bytes()).into_iter().next());
    let text = ctx
        .lang
        .get("receipt_text")
        .replace("{subject}", &subject)
        .replace("{who}", &from.address);
    let offset = ctx.auth().prefs.tz_offset_minutes();
    let m = build::mdn(
        &build::Receipt {
            to: &to,
            original_subject: &subject,
            original_message_id: id.as_deref(),
            text: &text,
        },
        &from,
        ctx.now as i64,
        offset,
    );
    // RFC 8098 3: the envelope sender of an MDN is null.
    match submit_message(ctx, "", &[to], &[Chunk::Bytes(m.bytes)]) {
        Ok(()) => {}
        Err(SubmitError::Unavailable(t)) => return Err(PageError::Unavailable(t)),
        Err(e) => return Err(PageError::Refused(e.to_string())),
    }
    mail::select(ctx, &folder, false)?;
    ctx.imap().store(&[uid], true, &["$MDNSent"])?;
    Ok(ctx.redirect(&format!(
        "/read?folder={}&uid={uid}&done=receipt_sent",
        url_encode(&folder)
    )))
}
