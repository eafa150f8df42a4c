//! The postmaster's pages, part one: the roles shown in the navigation and
//! the domain overview (limits used against allowed, each user's usage,
//! and for a system administrator the list of domains).
//!
//! Every page is a client of kmp-admind's API (through
//! [`crate::webmail::admin`]) as the logged-in user; kmp-admind decides
//! what that user may see and change on every call, so a domain named in a
//! URL that the user does not administer is refused there (403), whatever
//! the page would have shown. The roles kept in the session only decide
//! whether the navigation offers the link.

use serde_json::{json, Value};

use super::super::admin;
use super::super::app::{Ctx, PageError};
use super::super::response::Response;
use super::mail::human_size;
use crate::admin::client::{seg, ApiFailure, Client};
use crate::userdb::address::domain_unicode;

/// Rows on one page of a user or usage list.
pub const PAGE_ROWS: usize = 50;

/// The roles that open the administration pages.
const ADMIN_ROLES: [&str; 2] = ["admin", "postmaster"];

/// The roles `/v1/whoami` gives, by name.
pub fn roles_of(who: &Value) -> Vec<String> {
    let mut r = Vec::new();
    if who["admin"].as_bool() == Some(true) {
        r.push("admin".to_string());
    }
    if who["domains"].as_array().is_some_and(|d| !d.is_empty()) {
        r.push("postmaster".to_string());
    }
    if who["lists"].as_array().is_some_and(|l| !l.is_empty()) {
        r.push("list owner".to_string());
    }
    r
}

/// At login: logs in to kmp-admind once (the token is kept in the session)
/// and asks `/v1/whoami`: the administration roles, and whether the list
/// pages are for this user, both for the navigation only. Nothing (and no
/// error) when the pages are off or kmp-admind cannot be reached: the mail
/// pages do not need it.
pub fn roles_at_login(
    ctx: &Ctx,
    user: &str,
    password: &str,
) -> (Option<String>, Vec<String>, Option<bool>) {
    match roles_client(ctx) {
        Some(c) => ask_roles(c, user, password),
        None => (None, Vec::new(), None),
    }
}

/// The client [`ask_roles`] needs, made on the request's thread; None
/// when the administration pages are off or not set up.
pub fn roles_client(ctx: &Ctx) -> Option<Client> {
    if !admin::enabled(ctx) {
        return None;
    }
    match admin::client(ctx) {
        Ok(c) => Some(c),
        Err(e) => {
            crate::info!("administration roles not known: {e}");
            None
        }
    }
}

/// [`roles_at_login`]'s calls, on any thread (the login page runs them
/// beside its own IMAP work, once the password proved good there).
pub fn ask_roles(
    mut c: Client,
    user: &str,
    password: &str,
) -> (Option<String>, Vec<String>, Option<bool>) {
    let asked = (|| {
        let token = c.login(user, password)?;
        let who = c.call("GET", "/v1/whoami", None)?;
        Ok::<_, ApiFailure>((token, who))
    })();
    match asked {
        Ok((token, who)) => (
            Some(token),
            roles_of(&who),
            Some(super::lists::has_list_role(&who)),
        ),
        Err(e) => {
            crate::info!("administration roles of {user} not known: {e}");
            (None, Vec::new(), None)
        }
    }
}

/// Asks kmp-admind who the user is now; a page that finds the roles
/// changed since login keeps the new ones in the session (so a postmaster
/// taken off a domain loses the link). 403 for a user with no
/// administration role.
pub fn whoami(ctx: &mut Ctx) -> Result<Value, PageError> {
    let who = admin::call(ctx, "GET", "/v1/whoami", None)?;
    let roles = roles_of(&who);
    if roles != ctx.auth().session.roles {
        ctx.auth().session.roles = roles.clone();
        let keys = ctx.keys;
        let sealed = keys
            .seal(&ctx.auth().session)
            .map_err(PageError::Internal)?;
        let c = ctx.session_cookie(&sealed);
        ctx.cookies.push(c);
    }
    if !roles.iter().any(|r| ADMIN_ROLES.contains(&r.as_str())) {
        return Err(PageError::Forbidden("err_admin_forbidden"));
    }
    Ok(who)
}

/// The domain a page is about: `d` from the request, else the first the
/// user may administer. Not checked here: kmp-admind refuses a domain the
/// user may not administer.
pub fn chosen_domain(ctx: &Ctx, who: &Value, domains: &[Value]) -> Option<String> {
    let asked = ctx.req.param("d").or_else(|| ctx.req.field("d"));
    if let Some(d) = asked.map(str::trim).filter(|d| !d.is_empty()) {
        return Some(d.to_string());
    }
    who["domains"][0]
        .as_str()
        .or_else(|| domains.first().and_then(|d| d["domain"].as_str()))
        .map(str::to_string)
}

/// An address as people read it: the domain in Unicode (IDN), the local
/// part as stored (UTF-8 local parts stay as they are).
pub fn display_address(a: &str) -> String {
    match a.rsplit_once('@') {
        Some(("", d)) => format!("@{}", domain_unicode(d)),
        Some((l, d)) => format!("{l}@{}", domain_unicode(d)),
        None => a.to_string(),
    }
}

/// The domains the user may administer (`GET /v1/domains`), each with its
/// Unicode name.
pub fn domains(ctx: &mut Ctx) -> Result<Vec<Value>, PageError> {
    let v = admin::call(ctx, "GET", "/v1/domains", None)?;
    Ok(v.as_array().cloned().unwrap_or_default())
}

/// The `page` parameter (1-based) and the slice of `rows` it shows, with
/// the paging variables templates use.
pub fn paged<T: Clone>(ctx: &Ctx, rows: &[T]) -> (Vec<T>, Value) {
    let pages = rows.len().div_ceil(PAGE_ROWS).max(1);
    let page = ctx
        .req
        .param("page")
        .and_then(|p| p.parse::<usize>().ok())
        .unwrap_or(1)
        .clamp(1, pages);
    let start = (page - 1) * PAGE_ROWS;
    let shown = rows
        .iter()
        .skip(start)
        .take(PAGE_ROWS)
        .cloned()
        .collect::<Vec<_>>();
    (
        shown,
        json!({"page": page, "pages": pages, "total": rows.len(),
            "prev": (page > 1).then(|| page - 1),
            "next": (page < pages).then(|| page + 1)}),
    )
}

/// GET /admin: the overview of one domain.
pub fn show(ctx: &mut Ctx) -> Result<Response, PageError> {
    let who = whoami(ctx)?;
    let all = domains(ctx)?;
    let Some(d) = chosen_domain(ctx, &who, &all) else {
        return ctx.page(
            "admin_domain.html",
            json!({"who": who, "domains": domain_rows(&all), "domain": null}),
        );
    };
    let u = admin::call(ctx, "GET", &format!("/v1/domains/{}/usage", seg(&d)), None)?;
    let name = u["domain"].as_str().unwrap_or(&d).to_string();
    let limits = limit_rows(&u["usage"], &u["limits"]);
    let mut users: Vec<Value> = u["users"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(usage_row)
        .collect();
    let sort = match ctx.req.param("sort") {
        Some("address") => "address",
        Some("quota") => "quota",
        _ => "used",
    };
    let key = |v: &Value, k: &str| v[k].as_u64().unwrap_or(0);
    match sort {
        "address" => users.sort_by(|a, b| a["address"].as_str().cmp(&b["address"].as_str())),
        "quota" => users.sort_by(|a, b| {
            key(b, "quota_bytes")
                .cmp(&key(a, "quota_bytes"))
                .then(a["address"].as_str().cmp(&b["address"].as_str()))
        }),
        _ => users.sort_by(|a, b| {
            key(b, "used_bytes")
                .cmp(&key(a, "used_bytes"))
                .then(a["address"].as_str().cmp(&b["address"].as_str()))
        }),
    }
    let (shown, paging) = paged(ctx, &users);
    ctx.page(
        "admin_domain.html",
        json!({
            "who": who,
            "is_admin": who["admin"].as_bool() == Some(true),
            "domains": domain_rows(&all),
            "domain": name,
            "domain_unicode": domain_unicode(&name),
            "limits": limits,
            "users": shown,
            "paging": paging,
            "sort": sort,
        }),
    )
}

/// The domain selector's rows (and the admin's list of domains).
fn domain_rows(all: &[Value]) -> Vec<Value> {
    all.iter()
        .map(|d| {
            let name = d["domain"].as_str().unwrap_or_default();
            json!({
                "domain": name,
                "unicode": domain_unicode(name),
                "users": d["usage"]["users"],
                "max_users": d["limits"]["max_users"],
                "quota_text": human_size(d["usage"]["quota_bytes"].as_u64().unwrap_or(0)),
            })
        })
        .collect()
}

/// One row per limit: what is used, what is allowed (None: no limit), the
/// share, and whether it is reached.
fn limit_rows(usage: &Value, limits: &Value) -> Vec<Value> {
    let rows: [(&str, &str, &str, bool); 5] = [
        ("users", "users", "max_users", false),
        ("aliases", "aliases", "max_aliases", false),
        ("lists", "lists", "max_lists", false),
        ("forwards", "forwards", "max_forwards", false),
        ("quota", "quota_bytes", "max_quota_bytes", true),
    ];
    rows.iter()
        .map(|(name, used_key, limit_key, size)| {
            let used = usage[used_key].as_u64().unwrap_or(0);
            let limit = limits[limit_key].as_u64();
            let text = |n: u64| {
                if *size {
                    human_size(n)
                } else {
                    n.to_string()
                }
            };
            // A limit of 0 is full from the start.
            let percent = limit.map(|l| {
                used.saturating_mul(100)
                    .checked_div(l)
                    .map_or(100, |p| p.min(100))
            });
            json!({
                "name": name,
                "used": used,
                "used_text": text(used),
                "limit": limit,
                "limit_text": limit.map(text),
                "percent": percent,
                "full": limit.is_some_and(|l| used >= l),
            })
        })
        .collect()
}

/// A usage row of `GET /v1/domains/D/usage` with the texts a page shows.
fn usage_row(mut u: Value) -> Value {
    let address = u["address"].as_str().unwrap_or_default().to_string();
    let used = u["used_bytes"].as_u64();
    let quota = u["quota_bytes"].as_u64().unwrap_or(0);
    u["display"] = json!(display_address(&address));
    u["used_text"] = json!(used.map(human_size));
    u["quota_text"] = json!((quota > 0).then(|| human_size(quota)));
    u["percent"] = json!(match (used, quota) {
        (Some(used), q) if q > 0 => Some((used.saturating_mul(100) / q).min(100)),
        _ => None,
    });
    u
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_come_from_whoami() {
        let who = json!({"user": "pm@a.example", "admin": false,
            "domains": ["a.example"], "lists": []});
        assert_eq!(roles_of(&who), vec!["postmaster"]);
        let who = json!({"admin": true, "domains": [], "lists": ["l@b.example"]});
        assert_eq!(roles_of(&who), vec!["admin", "list owner"]);
        assert!(roles_of(&json!({"admin": false, "domains": [], "lists": []})).is_empty());
        assert!(roles_of(&json!("nonsense")).is_empty());
    }

    #[test]
    fn addresses_show_idn_domains_in_unicode() {
        assert_eq!(
            display_address("张三@xn--fsqu00a.xn--0zwm56d"),
            "张三@例子.测试"
        );
        assert_eq!(display_address("@xn--fsqu00a.xn--0zwm56d"), "@例子.测试");
        assert_eq!(display_address("bob@a.example"), "bob@a.example");
    }

    #[test]
    fn limits_say_used_against_allowed() {
        let rows = limit_rows(
            &json!({"users": 3, "aliases": 1, "lists": 0, "forwards": 0,
                "quota_bytes": 3 * 1024 * 1024}),
            &json!({"max_users": 3, "max_quota_bytes": 10 * 1024 * 1024}),
        );
        assert_eq!(rows[0]["percent"], 100);
        assert_eq!(rows[0]["full"], true);
        assert_eq!(rows[1]["limit"], Value::Null);
        assert_eq!(rows[1]["full"], false);
        assert_eq!(rows[4]["used_text"], "3.0 MB");
        assert_eq!(rows[4]["limit_text"], "10.0 MB");
        assert_eq!(rows[4]["percent"], 30);
    }
}
