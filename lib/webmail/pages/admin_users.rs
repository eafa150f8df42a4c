//! The postmaster's pages, part two: a domain's users. The list (paged,
//! with a filter, for domains of thousands), the form that adds one (the
//! password twice, a quota within the domain's ceiling), the form that
//! changes one (quota, active or disabled, forwards, a password reset)
//! and the deletion with its confirmation step (keep the mail or not).
//!
//! A refusal from kmp-admind (a limit: 409; bad input: 400) comes back in
//! the form that was sent, with what the user typed (never the password),
//! and kmp-admind's reason; nothing was changed.

use serde_json::{json, Value};

use super::super::admin;
use super::super::app::{Ctx, PageError};
use super::super::response::Response;
use super::admin_domain::{display_address, paged, whoami};
use super::mail::human_size;
use crate::admin::client::{seg, ApiFailure};
use crate::userdb::address::domain_unicode;

/// Bytes in the quota fields' unit (MB).
const MB: u64 = 1024 * 1024;
/// The longest filter taken.
const MAX_FILTER: usize = 200;

/// A form refused: the status and the message shown in it.
type Refusal = Option<(u16, String)>;

/// GET /admin/users?d=D[&q=FILTER][&page=N].
pub fn show(ctx: &mut Ctx) -> Result<Response, PageError> {
    whoami(ctx)?;
    let d = domain_param(ctx)?;
    users_page(ctx, &d, json!({}), None)
}

/// POST /admin/users/add: d, local, password, password2, quota_mb.
pub fn add(ctx: &mut Ctx) -> Result<Response, PageError> {
    let d = domain_param(ctx)?;
    let f = |k: &str| ctx.req.field(k).unwrap_or_default().to_string();
    let (local, password, password2, quota) = (
        f("local").trim().to_string(),
        f("password"),
        f("password2"),
        f("quota_mb").trim().to_string(),
    );
    let kept = json!({"local": local, "quota_mb": quota});
    let lang = ctx.lang.clone();
    let refuse = |ctx: &mut Ctx, status: u16, key: &str| {
        let m = lang.get(key).to_string();
        users_page(ctx, &d, kept.clone(), Some((status, m)))
    };
    if local.is_empty() || local.contains('@') {
        return refuse(ctx, 400, "admin_err_local");
    }
    if password.is_empty() {
        return refuse(ctx, 400, "admin_err_password_missing");
    }
    if password != password2 {
        return refuse(ctx, 400, "admin_err_password_mismatch");
    }
    let mut body = json!({"address": format!("{local}@{d}"), "password": password});
    if !quota.is_empty() {
        match mb(&quota) {
            Some(b) => body["quota_bytes"] = json!(b),
            None => return refuse(ctx, 400, "admin_err_quota"),
        }
    }
    match admin::call_raw(ctx, "POST", "/v1/users", Some(&body)) {
        Ok(_) => Ok(ctx.redirect(&format!("/admin/users?d={}&done=admin_user_added", q(&d)))),
        Err(e) => match refusal(e) {
            Ok(r) => users_page(ctx, &d, kept, Some(r)),
            Err(e) => Err(e),
        },
    }
}

/// GET /admin/user?a=ADDRESS: the form that changes one user.
pub fn edit(ctx: &mut Ctx) -> Result<Response, PageError> {
    whoami(ctx)?;
    let a = address_param(ctx)?;
    let u = admin::call(ctx, "GET", &format!("/v1/users/{}", seg(&a)), None)?;
    let form = json!({
        "quota_mb": quota_text(u["quota_bytes"].as_u64().unwrap_or(0)),
        "state": u["state"],
        "forwards": u["forwards"].as_array().map(|f| f.iter()
            .filter_map(Value::as_str).collect::<Vec<_>>().join("\n")).unwrap_or_default(),
        "keep_copy": u["keep_copy"],
    });
    user_page(ctx, &a, u, form, None)
}

/// POST /admin/user: a, quota_mb, state, forwards, keep_copy, password,
/// password2. Everything in one PATCH, so a refused part changes nothing.
pub fn save(ctx: &mut Ctx) -> Result<Response, PageError> {
    let a = address_param(ctx)?;
    let f = |k: &str| ctx.req.field(k).unwrap_or_default().to_string();
    let (quota, state, forwards, keep_copy, password, password2) = (
        f("quota_mb").trim().to_string(),
        f("state"),
        f("forwards"),
        !f("keep_copy").is_empty(),
        f("password"),
        f("password2"),
    );
    let form = json!({"quota_mb": quota, "state": state, "forwards": forwards,
        "keep_copy": keep_copy});
    let lang = ctx.lang.clone();
    let refuse = |ctx: &mut Ctx, status: u16, message: String| {
        let u = admin::call(ctx, "GET", &format!("/v1/users/{}", seg(&a)), None)?;
        user_page(ctx, &a, u, form.clone(), Some((status, message)))
    };
    if !["active", "disabled"].contains(&state.as_str()) {
        return refuse(ctx, 400, lang.get("admin_err_state").to_string());
    }
    let Some(quota_bytes) = (if quota.is_empty() {
        Some(0)
    } else {
        mb(&quota)
    }) else {
        return refuse(ctx, 400, lang.get("admin_err_quota").to_string());
    };
    if password != password2 {
        return refuse(
            ctx,
            400,
            lang.get("admin_err_password_mismatch").to_string(),
        );
    }
    let targets = split_addresses(&forwards);
    let mut patch = json!({"quota_bytes": quota_bytes, "state": state,
        "forwards": targets, "keep_copy": keep_copy && !targets.is_empty()});
    if !password.is_empty() {
        patch["password"] = json!(password);
    }
    match admin::call_raw(
        ctx,
        "PATCH",
        &format!("/v1/users/{}", seg(&a)),
        Some(&patch),
    ) {
        Ok(_) => Ok(ctx.redirect(&format!("/admin/user?a={}&done=admin_user_saved", q(&a)))),
        Err(e) => match refusal(e) {
            Ok((status, m)) => refuse(ctx, status, m),
            Err(e) => Err(e),
        },
    }
}

/// GET /admin/user/delete?a=ADDRESS: the confirmation step.
pub fn confirm_delete(ctx: &mut Ctx) -> Result<Response, PageError> {
    whoami(ctx)?;
    let a = address_param(ctx)?;
    // Ask for the user first: a user the postmaster may not see (or that is
    // gone) is refused here, not after the confirmation.
    let u = admin::call(ctx, "GET", &format!("/v1/users/{}", seg(&a)), None)?;
    let domain = a.rsplit_once('@').map(|x| x.1).unwrap_or_default();
    ctx.page(
        "admin_user_delete.html",
        json!({"address": a, "display": display_address(&a), "domain": domain,
            "domain_unicode": domain_unicode(domain), "account": user_row(u)}),
    )
}

/// POST /admin/user/delete: a, keep_mail (`yes` or `no`), confirm.
pub fn delete(ctx: &mut Ctx) -> Result<Response, PageError> {
    let a = address_param(ctx)?;
    if ctx.req.field("confirm") != Some("yes") {
        return Err(PageError::Bad("admin_err_confirm"));
    }
    let keep = match ctx.req.field("keep_mail") {
        Some("yes") => "true",
        Some("no") => "false",
        _ => return Err(PageError::Bad("admin_err_confirm")),
    };
    let v = admin::call(
        ctx,
        "DELETE",
        &format!("/v1/users/{}?keep_mail={keep}", seg(&a)),
        None,
    )?;
    let domain = a.rsplit_once('@').map(|x| x.1).unwrap_or_default();
    let done = match v["deleted"]["mail"].as_str() {
        Some("removed") | Some("absent") => "admin_user_deleted",
        _ => "admin_user_deleted_mail_kept",
    };
    Ok(ctx.redirect(&format!("/admin/users?d={}&done={done}", q(domain))))
}

/// The users page with `form` (the add form's values) and a refusal.
fn users_page(
    ctx: &mut Ctx,
    d: &str,
    form: Value,
    refused: Refusal,
) -> Result<Response, PageError> {
    let dom = admin::call(ctx, "GET", &format!("/v1/domains/{}", seg(d)), None)?;
    let users = admin::call(ctx, "GET", &format!("/v1/domains/{}/users", seg(d)), None)?;
    let name = dom["domain"].as_str().unwrap_or(d).to_string();
    let filter: String = ctx
        .req
        .param("q")
        .unwrap_or_default()
        .trim()
        .chars()
        .take(MAX_FILTER)
        .collect();
    let folded = filter.to_lowercase();
    let mut rows: Vec<Value> = users
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(user_row)
        .filter(|u| {
            folded.is_empty()
                || u["display"]
                    .as_str()
                    .is_some_and(|a| a.to_lowercase().contains(&folded))
        })
        .collect();
    rows.sort_by(|a, b| a["address"].as_str().cmp(&b["address"].as_str()));
    let (shown, paging) = paged(ctx, &rows);
    let ceiling = dom["limits"]["max_user_quota_bytes"].as_u64();
    let status = refused.as_ref().map(|r| r.0).unwrap_or(200);
    ctx.page_status(
        status,
        "admin_users.html",
        json!({
            "domain": name,
            "domain_unicode": domain_unicode(&name),
            "users": shown,
            "paging": paging,
            "filter": filter,
            "form": form,
            "refused": refused.map(|r| r.1),
            "default_quota": quota_text(dom["quota_bytes"].as_u64().unwrap_or(0)),
            "ceiling": ceiling.map(quota_text),
        }),
    )
}

/// The user page with the form's values and a refusal.
fn user_page(
    ctx: &mut Ctx,
    a: &str,
    u: Value,
    form: Value,
    refused: Refusal,
) -> Result<Response, PageError> {
    let domain = a.rsplit_once('@').map(|x| x.1).unwrap_or_default();
    let dom = admin::call(ctx, "GET", &format!("/v1/domains/{}", seg(domain)), None)?;
    let status = refused.as_ref().map(|r| r.0).unwrap_or(200);
    ctx.page_status(
        status,
        "admin_user.html",
        json!({
            "address": a,
            "display": display_address(a),
            "domain": domain,
            "domain_unicode": domain_unicode(domain),
            // Not `user`: base.html shows that one, the logged-in user.
            "account": user_row(u),
            "form": form,
            "refused": refused.map(|r| r.1),
            "ceiling": dom["limits"]["max_user_quota_bytes"].as_u64().map(quota_text),
        }),
    )
}

/// A user of the API with the texts a page shows.
fn user_row(mut u: Value) -> Value {
    let address = u["address"].as_str().unwrap_or_default().to_string();
    let quota = u["quota_bytes"].as_u64().unwrap_or(0);
    u["display"] = json!(display_address(&address));
    u["quota_text"] = json!((quota > 0).then(|| human_size(quota)));
    u["forwards_display"] = json!(u["forwards"]
        .as_array()
        .map(|f| f
            .iter()
            .filter_map(Value::as_str)
            .map(display_address)
            .collect::<Vec<_>>())
        .unwrap_or_default());
    u
}

/// `d` of the request, or 400 (the administration pages' domain).
pub(super) fn domain_param(ctx: &Ctx) -> Result<String, PageError> {
    ctx.req
        .param("d")
        .or_else(|| ctx.req.field("d"))
        .map(str::trim)
        .filter(|d| !d.is_empty() && d.len() <= 255)
        .map(str::to_string)
        .ok_or(PageError::Bad("err_bad_request"))
}

/// `a` of the request (an address), or 400.
fn address_param(ctx: &Ctx) -> Result<String, PageError> {
    ctx.req
        .param("a")
        .or_else(|| ctx.req.field("a"))
        .map(str::trim)
        .filter(|a| a.contains('@') && a.len() <= 320)
        .map(str::to_string)
        .ok_or(PageError::Bad("err_bad_request"))
}

/// What a failed call means for a form: a refusal to show in it (400,
/// 409, 413 with kmp-admind's reason), or the error page.
fn refusal(e: ApiFailure) -> Result<(u16, String), PageError> {
    match e {
        ApiFailure::Status(s @ (400 | 409 | 413), m) => Ok((s, m)),
        e => Err(admin::page_error(e)),
    }
}

/// A quota field in MB (decimals allowed) as bytes; None when it is not a
/// number.
pub fn mb(s: &str) -> Option<u64> {
    let s = s.trim().replace(',', ".");
    let v: f64 = s.parse().ok()?;
    if !v.is_finite() || v < 0.0 || v > (u64::MAX / MB) as f64 {
        return None;
    }
    Some((v * MB as f64).round() as u64)
}

/// Bytes as the quota field shows them (MB, no needless decimals; empty
/// for none).
pub fn quota_text(bytes: u64) -> String {
    if bytes == 0 {
        return String::new();
    }
    if bytes.is_multiple_of(MB) {
        return (bytes / MB).to_string();
    }
    format!("{:.2}", bytes as f64 / MB as f64)
}

/// The addresses of a textarea: one per line, or separated by commas,
/// semicolons or spaces.
pub fn split_addresses(text: &str) -> Vec<String> {
    text.split(|c: char| c == ',' || c == ';' || c.is_whitespace())
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// A query value.
pub(super) fn q(s: &str) -> String {
    super::super::request::url_encode(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotas_in_megabytes() {
        assert_eq!(mb("10"), Some(10 * MB));
        assert_eq!(mb(" 1.5 "), Some(3 * MB / 2));
        assert_eq!(mb("1,5"), Some(3 * MB / 2));
        assert_eq!(mb("0"), Some(0));
        assert_eq!(mb("-1"), None);
        assert_eq!(mb("1G"), None);
        assert_eq!(mb("NaN"), None);
        assert_eq!(mb("1e300"), None);
        assert_eq!(quota_text(0), "");
        assert_eq!(quota_text(10 * MB), "10");
        assert_eq!(quota_text(3 * MB / 2), "1.50");
    }

    #[test]
    fn targets_split_on_lines_commas_and_spaces() {
        assert_eq!(
            split_addresses("a@b.c\r\n李四@例子.测试, x@y.z;\n\n"),
            vec!["a@b.c", "李四@例子.测试", "x@y.z"]
        );
        assert!(split_addresses(" \n").is_empty());
    }
}
