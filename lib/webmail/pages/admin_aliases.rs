//! The postmaster's pages, part three: a domain's aliases and its
//! catch-all. The list, a form that adds an alias (or more targets to one
//! that exists: kmp-admind's `POST /v1/aliases` does both), a button that
//! takes one target off, and one that deletes the alias. A refusal (the
//! domain's alias limit: 409; a bad address: 400) comes back in the add
//! form with what was typed.

use serde_json::{json, Value};

use super::super::admin;
use super::super::app::{Ctx, PageError};
use super::super::response::Response;
use super::admin_domain::{display_address, whoami};
use super::admin_users::{domain_param, q, split_addresses};
use crate::admin::client::{seg, ApiFailure};
use crate::userdb::address::domain_unicode;

/// GET /admin/aliases?d=D.
pub fn show(ctx: &mut Ctx) -> Result<Response, PageError> {
    whoami(ctx)?;
    let d = domain_param(ctx)?;
    page(ctx, &d, json!({}), None)
}

/// POST /admin/aliases/add: d, local (empty with catch_all for the
/// catch-all), targets.
pub fn add(ctx: &mut Ctx) -> Result<Response, PageError> {
    let d = domain_param(ctx)?;
    let local = ctx
        .req
        .field("local")
        .unwrap_or_default()
        .trim()
        .to_string();
    let catch_all = ctx.req.field("catch_all").is_some_and(|v| !v.is_empty());
    let targets_text = ctx.req.field("targets").unwrap_or_default().to_string();
    let kept = json!({"local": local, "catch_all": catch_all, "targets": targets_text});
    let alias = match (catch_all, local.is_empty()) {
        (true, true) => format!("@{d}"),
        (false, false) if !local.contains('@') => format!("{local}@{d}"),
        _ => {
            let m = ctx.lang.get("admin_err_alias_name").to_string();
            return page(ctx, &d, kept, Some((400, m)));
        }
    };
    let targets = split_addresses(&targets_text);
    if targets.is_empty() {
        let m = ctx.lang.get("admin_err_targets").to_string();
        return page(ctx, &d, kept, Some((400, m)));
    }
    let body = json!({"alias": alias, "targets": targets});
    match admin::call_raw(ctx, "POST", "/v1/aliases", Some(&body)) {
        Ok(_) => Ok(ctx.redirect(&format!(
            "/admin/aliases?d={}&done=admin_alias_saved",
            q(&d)
        ))),
        Err(ApiFailure::Status(s @ (400 | 409 | 413), m)) => page(ctx, &d, kept, Some((s, m))),
        Err(e) => Err(admin::page_error(e)),
    }
}

/// POST /admin/aliases/delete: d, alias, and `target` to take off one
/// target only (without it the alias goes).
pub fn delete(ctx: &mut Ctx) -> Result<Response, PageError> {
    let d = domain_param(ctx)?;
    let alias = ctx
        .req
        .field("alias")
        .map(str::trim)
        .filter(|a| a.contains('@') && a.len() <= 320)
        .ok_or(PageError::Bad("err_bad_request"))?
        .to_string();
    let body = ctx
        .req
        .field("target")
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(|t| json!({"targets": [t]}));
    admin::call(
        ctx,
        "DELETE",
        &format!("/v1/aliases/{}", seg(&alias)),
        body.as_ref(),
    )?;
    Ok(ctx.redirect(&format!(
        "/admin/aliases?d={}&done=admin_alias_deleted",
        q(&d)
    )))
}

/// The aliases page with the add form's values and a refusal.
fn page(
    ctx: &mut Ctx,
    d: &str,
    form: Value,
    refused: Option<(u16, String)>,
) -> Result<Response, PageError> {
    let list = admin::call(ctx, "GET", &format!("/v1/domains/{}/aliases", seg(d)), None)?;
    let dom = admin::call(ctx, "GET", &format!("/v1/domains/{}", seg(d)), None)?;
    let name = dom["domain"].as_str().unwrap_or(d).to_string();
    let mut rows: Vec<Value> = list
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|a| {
            let address = a["address"].as_str().unwrap_or_default().to_string();
            let targets: Vec<Value> = a["targets"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .filter_map(Value::as_str)
                .map(|t| json!({"address": t, "display": display_address(t)}))
                .collect();
            json!({
                "local": address.rsplit_once('@').map(|x| x.0).unwrap_or_default(),
                "address": address,
                "display": display_address(&address),
                "catch_all": address.starts_with('@'),
                "targets": targets,
            })
        })
        .collect();
    // The catch-all first, then by name.
    rows.sort_by(|a, b| {
        b["catch_all"]
            .as_bool()
            .cmp(&a["catch_all"].as_bool())
            .then(a["address"].as_str().cmp(&b["address"].as_str()))
    });
    let status = refused.as_ref().map(|r| r.0).unwrap_or(200);
    ctx.page_status(
        status,
        "admin_aliases.html",
        json!({
            "domain": name,
            "domain_unicode": domain_unicode(&name),
            "aliases": rows,
            "used": dom["usage"]["aliases"],
            "limit": dom["limits"]["max_aliases"],
            "form": form,
            "refused": refused.map(|r| r.1),
        }),
    )
}
