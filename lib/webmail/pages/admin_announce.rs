//! The postmaster's pages, part four: an announcement to every user of
//! the domain (`POST /v1/domains/D/announcements`). kmp-admind checks the
//! role and hands the announcement to kmp-local, which stores it once and
//! links it into each INBOX (see `announce::spool`); the webmail's banner
//! shows it on the INBOX until it is read.

use serde_json::json;

use super::super::admin;
use super::super::app::{Ctx, PageError};
use super::super::response::Response;
use super::admin_domain::whoami;
use super::admin_users::domain_param;
use crate::admin::client::{seg, ApiFailure};
use crate::userdb::address::domain_unicode;

/// GET /admin/announce?d=D: the form.
pub fn show(ctx: &mut Ctx) -> Result<Response, PageError> {
    whoami(ctx)?;
    let d = domain_param(ctx)?;
    page(ctx, &d, json!({}), None)
}

/// POST /admin/announce: d, subject, text, html (optional).
pub fn submit(ctx: &mut Ctx) -> Result<Response, PageError> {
    let d = domain_param(ctx)?;
    let f = |k: &str| ctx.req.field(k).unwrap_or_default().to_string();
    let (subject, text, html) = (f("subject").trim().to_string(), f("text"), f("html"));
    let kept = json!({"subject": subject, "text": text, "html": html});
    if subject.is_empty() || text.trim().is_empty() {
        let m = ctx.lang.get("admin_err_announce").to_string();
        return page(ctx, &d, kept, Some((400, m)));
    }
    let mut body = json!({"subject": subject, "text": text});
    if !html.trim().is_empty() {
        body["html"] = json!(html);
    }
    let path = format!("/v1/domains/{}/announcements", seg(&d));
    match admin::call_raw(ctx, "POST", &path, Some(&body)) {
        Ok(v) => {
            let done = if v["announcement"]["waiting"].as_bool() == Some(true) {
                "admin_announce_waiting"
            } else {
                "admin_announced"
            };
            let d = super::super::request::url_encode(&d);
            Ok(ctx.redirect(&format!("/admin/announce?d={d}&done={done}")))
        }
        Err(ApiFailure::Status(s @ (400 | 409 | 413), m)) => page(ctx, &d, kept, Some((s, m))),
        Err(e) => Err(admin::page_error(e)),
    }
}

fn page(
    ctx: &mut Ctx,
    d: &str,
    form: serde_json::Value,
    refused: Option<(u16, String)>,
) -> Result<Response, PageError> {
    // Asked first, so a domain the user may not administer is refused
    // before the form is shown.
    let dom = admin::call(ctx, "GET", &format!("/v1/domains/{}", seg(d)), None)?;
    let name = dom["domain"].as_str().unwrap_or(d).to_string();
    let status = refused.as_ref().map(|r| r.0).unwrap_or(200);
    ctx.page_status(
        status,
        "admin_announce.html",
        json!({
            "domain": name,
            "domain_unicode": domain_unicode(&name),
            "users": dom["usage"]["users"],
            "form": form,
            "refused": refused.map(|r| r.1),
        }),
    )
}
