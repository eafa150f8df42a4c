//! The list pages: a user's lists (those they own or moderate, and for a
//! postmaster every list of their domains), a list's members (paged, added,
//! removed, digest on or off), its settings, its held posts with their text
//! and the approve and reject buttons, and a form to create a list where
//! the user may. Everything goes through kmp-admind as the logged-in user
//! ([`super::super::admin`]), which decides who may do what; these pages
//! only hide what the user's role cannot use.

use serde_json::{json, Value};

use super::super::admin;
use super::super::app::{Ctx, PageError};
use super::super::response::Response;
use crate::admin::client::{seg, ApiFailure};

/// Members on one page.
pub const PAGE: u64 = 50;
/// Held posts shown with their text on one page.
pub const MAX_PREVIEWS: usize = 20;
/// The most characters of a held post's text shown.
pub const PREVIEW_CHARS: usize = 2000;
/// The most addresses one "add members" form takes.
pub const MAX_ADD: usize = 100;

/// Whether a `/v1/whoami` answer gives the user anything on the list pages.
pub fn has_list_role(w: &Value) -> bool {
    let any = |k: &str| w[k].as_array().is_some_and(|a| !a.is_empty());
    w["admin"].as_bool() == Some(true)
        || any("domains")
        || any("lists")
        || any("moderates")
        || w["create_lists"].as_bool() == Some(true)
}

fn need_admin(ctx: &Ctx) -> Result<(), PageError> {
    if admin::enabled(ctx) {
        Ok(())
    } else {
        Err(PageError::NotFound)
    }
}

/// The `list` parameter (or field): an address.
fn list_param(ctx: &Ctx) -> Result<String, PageError> {
    let l = ctx
        .req
        .param("list")
        .or_else(|| ctx.req.field("list"))
        .unwrap_or_default()
        .trim()
        .to_string();
    if l.is_empty() || l.len() > 320 || !l.contains('@') || l.chars().any(char::is_control) {
        return Err(PageError::Bad("err_bad_request"));
    }
    Ok(l)
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// The user's role for one list, from whoami.
fn role_of(w: &Value, list: &str) -> &'static str {
    let has = |k: &str| strings(&w[k]).iter().any(|l| l.eq_ignore_ascii_case(list));
    let domain = list.rsplit_once('@').map(|x| x.1).unwrap_or("");
    if has("lists") {
        "owner"
    } else if w["admin"].as_bool() == Some(true)
        || strings(&w["domains"])
            .iter()
            .any(|d| d.eq_ignore_ascii_case(domain))
    {
        "postmaster"
    } else if has("moderates") {
        "moderator"
    } else {
        "none"
    }
}

/// GET /lists: the user's lists, and the form to create one.
pub fn show(ctx: &mut Ctx) -> Result<Response, PageError> {
    need_admin(ctx)?;
    let req = ctx.req;
    let w = admin::call(ctx, "GET", "/v1/whoami", None)?;
    let mut rows: Vec<Value> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    // A domain's lists come with their records; others are asked for.
    let mut add = |ctx: &mut Ctx,
                   addr: &str,
                   rec: Option<&Value>,
                   rows: &mut Vec<Value>|
     -> Result<(), PageError> {
        if !seen.insert(addr.to_lowercase()) {
            return Ok(());
        }
        let rec = match rec {
            Some(r) => r.clone(),
            None => admin::call(ctx, "GET", &format!("/v1/lists/{}", seg(addr)), None)?,
        };
        rows.push(json!({
            "address": addr,
            "description": rec["description"],
            "policy": rec["policy"],
            "role": role_of(&w, addr),
        }));
        Ok(())
    };
    for k in ["lists", "moderates"] {
        for l in strings(&w[k]) {
            add(ctx, &l, None, &mut rows)?;
        }
    }
    let domains = strings(&w["domains"]);
    for d in &domains {
        let all = admin::call(ctx, "GET", &format!("/v1/domains/{}/lists", seg(d)), None)?;
        for l in all.as_array().into_iter().flatten() {
            if let Some(a) = l["address"].as_str() {
                add(ctx, a, Some(l), &mut rows)?;
            }
        }
    }
    let user = ctx.auth().session.user.clone();
    let own_domain = user.rsplit_once('@').map(|x| x.1.to_string());
    let mut create_in: Vec<String> = domains.clone();
    if w["create_lists"].as_bool() == Some(true) {
        if let Some(d) = own_domain {
            if !create_in.contains(&d) {
                create_in.push(d);
            }
        }
    }
    let error = req.param("error").map(str::to_string);
    ctx.page(
        "lists.html",
        json!({ "lists": rows, "create_in": create_in, "error": error }),
    )
}

/// POST /lists/create: a new list (the user its owner unless a postmaster
/// names others).
pub fn create(ctx: &mut Ctx) -> Result<Response, PageError> {
    need_admin(ctx)?;
    let req = ctx.req;
    let name = req.field("name").unwrap_or_default().trim().to_string();
    let domain = req.field("domain").unwrap_or_default().trim().to_string();
    let description = req.field("description").unwrap_or_default().trim();
    let policy = req.field("policy").unwrap_or("members");
    if name.is_empty() || domain.is_empty() || name.contains('@') {
        return Err(PageError::Bad("err_bad_request"));
    }
    let address = format!("{name}@{domain}");
    let body = json!({"address": address, "description": description, "policy": policy});
    match admin::call_raw(ctx, "POST", "/v1/lists", Some(&body)) {
        Ok(v) => {
            let a = v["address"].as_str().unwrap_or(&address).to_string();
            Ok(ctx.redirect(&format!(
                "/lists/settings?list={}&done=list_created",
                seg(&a)
            )))
        }
        Err(ApiFailure::Status(400 | 403 | 404 | 409, m)) => {
            Ok(ctx.redirect(&format!("/lists?error={}", seg(&m))))
        }
        Err(e) => Err(admin::page_error(e)),
    }
}

/// GET /lists/members?list=A&page=N.
pub fn members(ctx: &mut Ctx) -> Result<Response, PageError> {
    need_admin(ctx)?;
    let req = ctx.req;
    let list = list_param(ctx)?;
    let page: u64 = req.param("page").and_then(|p| p.parse().ok()).unwrap_or(0);
    let offset = page.saturating_mul(PAGE);
    let v = admin::call(
        ctx,
        "GET",
        &format!(
            "/v1/lists/{}/members?offset={offset}&limit={PAGE}",
            seg(&list)
        ),
        None,
    )?;
    let rec = admin::call(ctx, "GET", &format!("/v1/lists/{}", seg(&list)), None)?;
    let total = v["total"].as_u64().unwrap_or(0);
    let pages = total.div_ceil(PAGE).max(1);
    let error = req.param("error").map(str::to_string);
    ctx.page(
        "lists_members.html",
        json!({
            "list": list,
            "members": v["members"],
            "total": total,
            "pageno": page,
            "pages": pages,
            "prev": page.checked_sub(1),
            "next": (page + 1 < pages).then_some(page + 1),
            "digest_enabled": rec["digest"]["enabled"],
            "error": error,
        }),
    )
}

/// POST /lists/members: `action` add (the `addresses`, one a line),
/// remove (`member`) or digest (`member`, `on`).
pub fn members_act(ctx: &mut Ctx) -> Result<Response, PageError> {
    need_admin(ctx)?;
    let req = ctx.req;
    let list = list_param(ctx)?;
    let page = req.field("page").unwrap_or("0").to_string();
    let base = format!("/v1/lists/{}/members", seg(&list));
    let back = |done: &str| {
        format!(
            "/lists/members?list={}&page={}&{done}",
            seg(&list),
            seg(&page)
        )
    };
    let r = match req.field("action").unwrap_or_default() {
        "add" => {
            let addresses: Vec<String> = req
                .field("addresses")
                .unwrap_or_default()
                .split(['\n', ',', ';'])
                .map(str::trim)
                .filter(|a| !a.is_empty())
                .map(str::to_string)
                .collect();
            if addresses.is_empty() || addresses.len() > MAX_ADD {
                return Err(PageError::Bad("err_bad_request"));
            }
            let digest = req.field("digest") == Some("1");
            admin::call_raw(
                ctx,
                "POST",
                &base,
                Some(&json!({"addresses": addresses, "digest": digest})),
            )
            .map(|_| "done=members_added")
        }
        "remove" => {
            let m = req.field("member").unwrap_or_default().to_string();
            admin::call_raw(ctx, "DELETE", &format!("{base}/{}", seg(&m)), None)
                .map(|_| "done=member_removed")
        }
        "digest" => {
            let m = req.field("member").unwrap_or_default().to_string();
            let on = req.field("on") == Some("1");
            admin::call_raw(
                ctx,
                "PATCH",
                &format!("{base}/{}", seg(&m)),
                Some(&json!({"digest": on})),
            )
            .map(|_| "done=member_changed")
        }
        _ => return Err(PageError::Bad("err_bad_request")),
    };
    match r {
        Ok(done) => Ok(ctx.redirect(&back(done))),
        Err(ApiFailure::Status(400 | 404 | 409, m)) => {
            Ok(ctx.redirect(&back(&format!("error={}", seg(&m)))))
        }
        Err(e) => Err(admin::page_error(e)),
    }
}

/// GET /lists/settings?list=A.
pub fn settings(ctx: &mut Ctx) -> Result<Response, PageError> {
    need_admin(ctx)?;
    let req = ctx.req;
    let list = list_param(ctx)?;
    let rec = admin::call(ctx, "GET", &format!("/v1/lists/{}", seg(&list)), None)?;
    let w = admin::call(ctx, "GET", "/v1/whoami", None)?;
    let role = role_of(&w, &list);
    let error = req.param("error").map(str::to_string);
    ctx.page(
        "lists_settings.html",
        json!({
            "list": list,
            "rec": rec,
            "moderators": strings(&rec["moderators"]).join(", "),
            "posters": strings(&rec["posters"]).join(", "),
            "owners": strings(&rec["owners"]).join(", "),
            "role": role,
            "policies": crate::lists::Policy::NAMES,
            "error": error,
        }),
    )
}

/// POST /lists/settings: the whole form is one PATCH; a refusal changes
/// nothing and shows kmp-admind's reason.
pub fn settings_save(ctx: &mut Ctx) -> Result<Response, PageError> {
    need_admin(ctx)?;
    let req = ctx.req;
    let list = list_param(ctx)?;
    let back = |q: &str| format!("/lists/settings?list={}&{q}", seg(&list));
    let f = |k: &str| req.field(k).unwrap_or_default().to_string();
    let addrs = |k: &str| -> Vec<String> {
        f(k).split([',', '\n', ';'])
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .map(str::to_string)
            .collect()
    };
    let max_size = match f("max_size").trim() {
        "" => 0,
        v => match crate::config::parse_size(v) {
            Ok(n) => n,
            Err(_) => {
                let m = format!("max_size {v:?}");
                return Ok(ctx.redirect(&back(&format!("error={}", seg(&m)))));
            }
        },
    };
    let body = json!({
        "description": f("description").trim(),
        "policy": f("policy"),
        "non_member": f("non_member"),
        "moderators": addrs("moderators"),
        "posters": addrs("posters"),
        "subject_prefix": f("subject_prefix").trim(),
        "footer": f("footer"),
        "max_size": max_size,
        "subscribe_approval": f("subscribe_approval") == "1",
        "digest": f("digest") == "1",
    });
    match admin::call_raw(
        ctx,
        "PATCH",
        &format!("/v1/lists/{}", seg(&list)),
        Some(&body),
    ) {
        Ok(_) => Ok(ctx.redirect(&back("done=list_saved"))),
        Err(ApiFailure::Status(400 | 409, m)) => {
            Ok(ctx.redirect(&back(&format!("error={}", seg(&m)))))
        }
        Err(e) => Err(admin::page_error(e)),
    }
}

/// POST /lists/delete: a postmaster deletes a list (and its state).
pub fn delete(ctx: &mut Ctx) -> Result<Response, PageError> {
    need_admin(ctx)?;
    let req = ctx.req;
    let list = list_param(ctx)?;
    if req.field("confirm") != Some("1") {
        return Err(PageError::Bad("err_bad_request"));
    }
    admin::call(ctx, "DELETE", &format!("/v1/lists/{}", seg(&list)), None)?;
    Ok(ctx.redirect("/lists?done=list_deleted"))
}

/// GET /lists/held?list=A: held posts, the first ones with their text.
pub fn held(ctx: &mut Ctx) -> Result<Response, PageError> {
    need_admin(ctx)?;
    let req = ctx.req;
    let list = list_param(ctx)?;
    let base = format!("/v1/lists/{}/held", seg(&list));
    let v = admin::call(ctx, "GET", &base, None)?;
    let mut posts = Vec::new();
    for (i, h) in v["held"].as_array().into_iter().flatten().enumerate() {
        let id = h["id"].as_str().unwrap_or_default().to_string();
        let mut row = json!({
            "id": id,
            "sender": h["sender"],
            "subject": h["subject"],
            "reason": h["reason"],
            "size": h["size"],
            "received": time_text(h["received"].as_u64().unwrap_or(0)),
        });
        if i < MAX_PREVIEWS {
            match admin::call_raw(ctx, "GET", &format!("{base}/{}", seg(&id)), None) {
                Ok(p) => {
                    let text = p["text"].as_str().unwrap_or_default();
                    let cut: String = text.chars().take(PREVIEW_CHARS).collect();
                    row["subject"] = p["subject"].clone();
                    row["from"] = p["from"].clone();
                    row["text"] = json!(cut);
                    row["cut"] = json!(cut.len() < text.len());
                    row["attachments"] = p["attachments"].clone();
                }
                // Approved or rejected by someone else meanwhile.
                Err(ApiFailure::Status(404, _)) => continue,
                Err(e) => return Err(admin::page_error(e)),
            }
        }
        posts.push(row);
    }
    let error = req.param("error").map(str::to_string);
    ctx.page(
        "lists_held.html",
        json!({ "list": list, "posts": posts, "error": error }),
    )
}

/// POST /lists/held: `action` approve or reject (with an optional
/// `reason`) of the post `id`.
pub fn held_act(ctx: &mut Ctx) -> Result<Response, PageError> {
    need_admin(ctx)?;
    let req = ctx.req;
    let list = list_param(ctx)?;
    let id = req.field("id").unwrap_or_default().to_string();
    if !crate::lists::held::valid_id(&id) {
        return Err(PageError::Bad("err_bad_request"));
    }
    let path = format!("/v1/lists/{}/held/{}", seg(&list), seg(&id));
    let back = |q: &str| format!("/lists/held?list={}&{q}", seg(&list));
    let r = match req.field("action").unwrap_or_default() {
        "approve" => admin::call_raw(ctx, "POST", &format!("{path}/approve"), None)
            .map(|_| "done=held_approved"),
        "reject" => {
            let reason = req.field("reason").unwrap_or_default().trim().to_string();
            admin::call_raw(
                ctx,
                "POST",
                &format!("{path}/reject"),
                Some(&json!({ "reason": reason })),
            )
            .map(|_| "done=held_rejected")
        }
        _ => return Err(PageError::Bad("err_bad_request")),
    };
    match r {
        Ok(done) => Ok(ctx.redirect(&back(done))),
        Err(ApiFailure::Status(400 | 404 | 409, m)) => {
            Ok(ctx.redirect(&back(&format!("error={}", seg(&m)))))
        }
        Err(e) => Err(admin::page_error(e)),
    }
}

/// `YYYY-MM-DD HH:MM` UTC.
fn time_text(t: u64) -> String {
    if t == 0 {
        return String::new();
    }
    let t = i64::try_from(t).unwrap_or(0);
    let (y, m, d) = crate::proto::imap::civil_from_days(t.div_euclid(86400));
    let s = t.rem_euclid(86400);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02} UTC",
        s / 3600,
        s % 3600 / 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_show_the_link_only_to_those_who_have_one() {
        assert!(!has_list_role(
            &json!({"admin": false, "domains": [], "lists": [],
            "moderates": [], "create_lists": false})
        ));
        assert!(has_list_role(&json!({"lists": ["a@b.c"]})));
        assert!(has_list_role(&json!({"moderates": ["a@b.c"]})));
        assert!(has_list_role(&json!({"create_lists": true})));
        assert!(has_list_role(&json!({"domains": ["b.c"]})));
        let w = json!({"lists": ["Dev@b.c"], "moderates": ["m@b.c"], "domains": ["x.c"]});
        assert_eq!(role_of(&w, "dev@b.c"), "owner");
        assert_eq!(role_of(&w, "m@b.c"), "moderator");
        assert_eq!(role_of(&w, "l@x.c"), "postmaster");
        assert_eq!(role_of(&w, "l@y.c"), "none");
    }
}
