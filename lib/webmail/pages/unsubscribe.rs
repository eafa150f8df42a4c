//! `/unsubscribe`: one-click unsubscribe from a mailing list (RFC 8058),
//! without login.
//!
//! A list post carries `List-Unsubscribe: <URL>` and
//! `List-Unsubscribe-Post: List-Unsubscribe=One-Click`, the URL being
//! `BASE/unsubscribe?list=LIST&c=TOKEN` (`lists::commands::unsubscribe_link`),
//! TOKEN a one-click cookie signed by kmp-local for that member.
//!
//! - GET shows the list and a button, and changes nothing: RFC 8058 3.1
//!   warns that link checkers and anti-spam scanners fetch URLs in mail.
//! - POST with `List-Unsubscribe=One-Click` (the mail client's request, or
//!   the button) passes the token on: a mail from the null sender to
//!   `NAME-confirm-TOKEN@DOMAIN`, through `webmail.lists_smtp` (kmp-smtpd's
//!   port 25, no login). kmp-local checks the cookie there and unsubscribes.
//!
//! Why a mail and not a check here: the webmail holds no store and no list
//! key (it may run on another host), and the cookie key stays with vmail.
//! The page therefore cannot tell a forged cookie from a good one; it only
//! checks the token's form, so nothing but a one-click cookie of a plain
//! list address is ever sent on, and it answers the same for both: the
//! request was passed on. kmp-local logs what it did.

use super::super::app::{Ctx, PageError};
use super::super::response::Response;
use super::super::submit::{self, Chunk, Login};
use crate::lists::cookie::one_click_well_formed;
use crate::lists::verp;
use serde_json::json;

/// The list and token of the request (query, or the button's form), checked
/// for form; the confirm address they make.
fn target(ctx: &Ctx) -> Result<(String, String, String), PageError> {
    let get = |n: &str| ctx.req.param(n).or_else(|| ctx.req.field(n));
    let list = get("list").ok_or(PageError::Bad("err_bad_request"))?;
    let token = get("c").ok_or(PageError::Bad("err_bad_request"))?;
    let list = verp::member(list).map_err(|_| PageError::Bad("err_bad_request"))?;
    if !one_click_well_formed(token) {
        return Err(PageError::Bad("unsubscribe_bad_link"));
    }
    let to = format!("{}-confirm-{}@{}", list.local(), token, list.domain());
    crate::proto::smtp::address::parse_mailbox(&to)
        .map_err(|_| PageError::Bad("unsubscribe_bad_link"))?;
    Ok((list.to_string(), token.to_string(), to))
}

/// GET /unsubscribe: the list and a button; nothing changes.
pub fn show(ctx: &mut Ctx) -> Result<Response, PageError> {
    let (list, token, _) = target(ctx)?;
    ctx.page(
        "unsubscribe.html",
        json!({ "list": list, "token": token, "done": false }),
    )
}

/// POST /unsubscribe with `List-Unsubscribe=One-Click`: passes the token
/// on to the list.
pub fn submit(ctx: &mut Ctx) -> Result<Response, PageError> {
    if ctx.req.field("List-Unsubscribe") != Some("One-Click") {
        return Err(PageError::Bad("unsubscribe_bad_link"));
    }
    let (list, token, to) = target(ctx)?;
    let from = format!(
        "{}-unsubscribe@{}",
        list.split('@').next().unwrap_or(""),
        list.rsplit('@').next().unwrap_or("")
    );
    let date = super::super::compose::build::rfc5322_date(ctx.now as i64, 0);
    let who = ctx
        .req
        .remote_addr
        .map(|a| a.to_string())
        .unwrap_or_else(|| "unknown".into());
    let msg = format!(
        "From: <{from}>\r\nTo: <{to}>\r\nDate: {date}\r\nSubject: one-click unsubscribe\r\n\
         Message-ID: <{}.{}.one-click@{}>\r\nMIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=us-ascii\r\n\r\n\
         One-click unsubscribe (RFC 8058) from {list}, requested through the webmail\r\n\
         by a client at {who}.\r\n",
        ctx.now,
        &token[token.len().saturating_sub(8)..],
        list.rsplit('@').next().unwrap_or("localhost"),
    );
    let settings = ctx.settings;
    let login = Login {
        server: &settings.lists_smtp,
        ca_file: settings.imap_ca_file.as_deref(),
        timeout: settings.imap_timeout,
        helo: "webmail.localhost",
        user: "",
        password: "",
    };
    let sent = submit::Session::open(&login).and_then(|mut s| {
        let r = s.send(
            "",
            std::slice::from_ref(&to),
            &[Chunk::Bytes(msg.into_bytes())],
        );
        s.quit();
        r
    });
    match sent {
        Ok(()) => {
            crate::info!("one-click unsubscribe from {list} passed on from {who}");
            ctx.page(
                "unsubscribe.html",
                json!({ "list": list, "token": token, "done": true }),
            )
        }
        Err(submit::SubmitError::Recipients(_)) => Err(PageError::Bad("unsubscribe_bad_link")),
        Err(e) => Err(PageError::Unavailable(e.to_string())),
    }
}
