//! The fetch page: the user's accounts on other mail servers, which
//! kmp-fetch collects into folders here. GET /fetch (the list with each
//! account's last result, and the add or edit form), POST /fetch/save,
//! POST /fetch/act (test, fetch now, remove).
//!
//! Everything goes through kmp-admind's API as the logged-in user
//! (`/v1/users/ME/fetch`, [`crate::admind::fetch`]): the webmail holds no
//! database and no key; kmp-admind seals the password to kmp-fetch and
//! asks kmp-fetch to test and run. The password is never sent back to
//! the browser: the edit form leaves it empty, and empty keeps it.
//! Plain connections (no TLS) need the user's explicit consent in the form.

use serde_json::{json, Map, Value};

use super::super::admin::{self, call_raw};
use super::super::app::{Ctx, PageError};
use super::super::response::Response;
use super::mail::long_date;
use crate::admin::client::{seg, ApiFailure};

/// The form's fields sent back when a save is refused (never the password).
const FORM_FIELDS: &[&str] = &[
    "name",
    "protocol",
    "host",
    "port",
    "tls",
    "plain_ok",
    "no_verify",
    "username",
    "target",
    "folders",
    "keep",
    "days",
    "interval",
    "disabled",
    "edit",
];

/// Longest value of a form field taken (the API checks the rest).
const MAX_FIELD: usize = 1024;

fn base_path(ctx: &mut Ctx) -> String {
    format!("/v1/users/{}/fetch", seg(&ctx.auth().session.user))
}

fn account_path(ctx: &mut Ctx, name: &str) -> String {
    format!("{}/{}", base_path(ctx), seg(name))
}

/// GET /fetch; `?edit=NAME` fills the form with that account.
pub fn show(ctx: &mut Ctx) -> Result<Response, PageError> {
    let edit = ctx.req.param("edit").map(str::to_string);
    let form = match edit {
        Some(name) => {
            let path = account_path(ctx, &name);
            let a = admin::call(ctx, "GET", &path, None)?;
            form_of(&a)
        }
        None => Value::Null,
    };
    render(ctx, 200, form, None)
}

/// The form filled from an account (the password left empty).
fn form_of(a: &Value) -> Value {
    let s = |k: &str| a[k].as_str().unwrap_or_default().to_string();
    let keep = s("keep");
    let (keep, days) = match keep.strip_prefix("delete-after-") {
        Some(d) => ("delete-after".to_string(), d.to_string()),
        None => (keep, String::new()),
    };
    let folders: Vec<&str> = a["folders"]
        .as_array()
        .map(|v| v.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    json!({
        "edit": "1",
        "name": s("name"),
        "protocol": s("protocol"),
        "host": s("host"),
        "port": a["port"].as_u64().map(|p| p.to_string()).unwrap_or_default(),
        "tls": s("tls"),
        "plain_ok": if s("tls") == "none" { "1" } else { "" },
        "no_verify": if a["verify"].as_bool() == Some(false) { "1" } else { "" },
        "username": s("username"),
        "target": s("target"),
        "folders": folders.join(", "),
        "keep": keep,
        "days": days,
        "interval": match a["interval"].as_u64() {
            Some(0) | None => String::new(),
            Some(n) => format!("{}m", n.div_ceil(60)),
        },
        "disabled": if a["enabled"].as_bool() == Some(false) { "1" } else { "" },
    })
}

/// The page: the list, a result or error line, and the form.
fn render(
    ctx: &mut Ctx,
    status: u16,
    form: Value,
    message: Option<(&str, String)>,
) -> Result<Response, PageError> {
    if !admin::enabled(ctx) {
        return Err(PageError::Forbidden("fetch_off"));
    }
    let path = base_path(ctx);
    let list = match call_raw(ctx, "GET", &path, None) {
        Ok(v) => v,
        // The domain's services exclude the fetch agent.
        Err(ApiFailure::Status(403, _)) => return Err(PageError::Forbidden("fetch_denied")),
        Err(e) => return Err(admin::page_error(e)),
    };
    let offset = ctx.auth().prefs.tz_offset_minutes();
    let when = |t: u64| (t > 0).then(|| long_date(t as i64, offset));
    let accounts: Vec<Value> = list["accounts"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|a| {
            let st = &a["status"];
            json!({
                "name": a["name"],
                "protocol": a["protocol"].as_str().unwrap_or_default().to_uppercase(),
                "server": format!("{}:{}", a["host"].as_str().unwrap_or_default(),
                    a["port"].as_u64().unwrap_or(0)),
                "tls": a["tls"],
                "folder": a["target_folder"],
                "keep": a["keep"],
                "enabled": a["enabled"],
                "last_run": st["last_run"].as_u64().and_then(when),
                "last_ok": st["last_ok"].as_u64().and_then(when),
                "error": st["error"].as_str().filter(|e| !e.is_empty()),
                "fetched": st["fetched"],
                "total": st["total"],
            })
        })
        .collect();
    let (kind, text) = message.unzip();
    let mut form = form;
    if form.is_null() {
        form = json!({"protocol": "pop3", "tls": "implicit", "keep": "keep"});
    }
    let page = json!({
        "accounts": accounts,
        "agent_running": list["agent_running"].as_bool().unwrap_or(false),
        "form": form,
        "result_kind": kind,
        "result": text,
        "confirm": confirm_remove(ctx),
    });
    ctx.page_status(status, "fetch.html", page)
}

/// The form as sent, for sending it back.
fn typed(ctx: &Ctx) -> Value {
    let mut m = Map::new();
    for f in FORM_FIELDS {
        if let Some(v) = ctx.req.field(f) {
            m.insert(f.to_string(), Value::String(v.to_string()));
        }
    }
    Value::Object(m)
}

/// The API's body from the form; Err: the key of what is wrong.
fn body_of(ctx: &Ctx, adding: bool) -> Result<Value, &'static str> {
    let f = |k: &str| ctx.req.field(k).unwrap_or_default().trim();
    if FORM_FIELDS
        .iter()
        .chain(["password"].iter())
        .any(|k| ctx.req.field(k).is_some_and(|v| v.len() > MAX_FIELD))
    {
        return Err("fetch_err_long");
    }
    let mut b = Map::new();
    let mut put = |k: &str, v: Value| {
        b.insert(k.to_string(), v);
    };
    if adding {
        put("name", json!(f("name")));
    }
    let protocol = f("protocol");
    if !matches!(protocol, "pop3" | "imap") {
        return Err("fetch_err_protocol");
    }
    put("protocol", json!(protocol));
    put("host", json!(f("host")));
    if !f("port").is_empty() {
        let p: u16 = f("port")
            .parse()
            .ok()
            .filter(|p| *p > 0)
            .ok_or("fetch_err_port")?;
        put("port", json!(p));
    }
    let tls = f("tls");
    if !matches!(tls, "implicit" | "starttls" | "none") {
        return Err("fetch_err_tls");
    }
    // Without TLS the password crosses the network readable: only when
    // the user said they know.
    if tls == "none" && f("plain_ok") != "1" {
        return Err("fetch_err_plain");
    }
    put("tls", json!(tls));
    put("verify", json!(f("no_verify") != "1"));
    put("username", json!(f("username")));
    // The password exactly as typed (spaces may belong to it).
    let pw = ctx.req.field("password").unwrap_or_default();
    if !pw.is_empty() {
        put("password", json!(pw));
    } else if adding {
        return Err("fetch_err_password");
    }
    put("target", json!(f("target")));
    let folders: Vec<&str> = f("folders")
        .split(',')
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .collect();
    if protocol == "imap" || !folders.is_empty() {
        put("folders", json!(folders));
    }
    let keep = match f("keep") {
        "keep" => "keep".to_string(),
        "delete" => "delete".to_string(),
        "delete-after" => {
            let d: u32 = f("days")
                .parse()
                .ok()
                .filter(|d| (1..=3650).contains(d))
                .ok_or("fetch_err_days")?;
            format!("delete-after-{d}")
        }
        _ => return Err("fetch_err_keep"),
    };
    put("keep", json!(keep));
    if !f("interval").is_empty() {
        put("interval", json!(f("interval")));
    }
    put("enabled", json!(f("disabled") != "1"));
    Ok(Value::Object(b))
}

/// POST /fetch/save: a new account, or (`edit=1`) a change of one.
pub fn save(ctx: &mut Ctx) -> Result<Response, PageError> {
    let adding = ctx.req.field("edit") != Some("1");
    let form = typed(ctx);
    let body = match body_of(ctx, adding) {
        Ok(b) => b,
        Err(key) => {
            let text = ctx.lang.get(key).to_string();
            return render(ctx, 400, form, Some(("error", text)));
        }
    };
    let name = ctx.req.field("name").unwrap_or_default().trim().to_string();
    let r = if adding {
        let path = base_path(ctx);
        call_raw(ctx, "POST", &path, Some(&body))
    } else {
        let path = account_path(ctx, &name);
        call_raw(ctx, "PATCH", &path, Some(&body))
    };
    match r {
        Ok(_) => Ok(ctx.redirect(if adding {
            "/fetch?done=fetch_added"
        } else {
            "/fetch?done=fetch_changed"
        })),
        // The server's reason (a bad host, a limit) above what was typed.
        Err(ApiFailure::Status(400 | 404 | 409, m)) => render(ctx, 400, form, Some(("error", m))),
        Err(e) => Err(admin::page_error(e)),
    }
}

/// POST /fetch/act: `action` test, run or remove of account `name`;
/// remove asks first (`confirm=1` does it).
pub fn act(ctx: &mut Ctx) -> Result<Response, PageError> {
    let name = ctx
        .req
        .field("name")
        .filter(|n| !n.is_empty() && n.len() <= MAX_FIELD)
        .ok_or(PageError::Bad("err_bad_request"))?
        .to_string();
    let path = account_path(ctx, &name);
    match ctx.req.field("action").unwrap_or_default() {
        "test" => match call_raw(ctx, "POST", &format!("{path}/test"), None) {
            Ok(v) if v["ok"].as_bool() == Some(true) => {
                let text = ctx
                    .lang
                    .get("fetch_test_ok")
                    .replace("{name}", &name)
                    .replace("{detail}", v["detail"].as_str().unwrap_or_default());
                render(ctx, 200, Value::Null, Some(("ok", text)))
            }
            Ok(v) => {
                let text = failed(ctx, &name, v["error"].as_str().unwrap_or_default());
                render(ctx, 200, Value::Null, Some(("error", text)))
            }
            Err(e) => api_refusal(ctx, e),
        },
        "run" => match call_raw(ctx, "POST", &format!("{path}/run"), None) {
            Ok(v) if v["ok"].as_bool() == Some(true) => {
                let n = v["status"]["fetched"].as_u64().unwrap_or(0);
                let text = ctx
                    .lang
                    .get("fetch_run_ok")
                    .replace("{name}", &name)
                    .replace("{n}", &n.to_string());
                render(ctx, 200, Value::Null, Some(("ok", text)))
            }
            Ok(v) => {
                let why = v["status"]["error"]
                    .as_str()
                    .or(v["error"].as_str())
                    .unwrap_or_default()
                    .to_string();
                let text = failed(ctx, &name, &why);
                render(ctx, 200, Value::Null, Some(("error", text)))
            }
            Err(e) => api_refusal(ctx, e),
        },
        "remove" if ctx.req.field("confirm") == Some("1") => {
            match call_raw(ctx, "DELETE", &path, None) {
                Ok(_) => Ok(ctx.redirect("/fetch?done=fetch_removed")),
                Err(e) => api_refusal(ctx, e),
            }
        }
        // The first press: the page asks again (no script needed).
        "remove" => render(ctx, 200, Value::Null, None),
        _ => Err(PageError::Bad("err_bad_request")),
    }
}

/// The account whose removal the page asks to confirm: a first press of
/// its Remove button.
fn confirm_remove(ctx: &Ctx) -> Option<String> {
    let r = ctx.req;
    (r.path == "/fetch/act"
        && r.field("action") == Some("remove")
        && r.field("confirm") != Some("1"))
    .then(|| r.field("name").map(str::to_string))
    .flatten()
}

fn failed(ctx: &Ctx, name: &str, why: &str) -> String {
    ctx.lang
        .get("fetch_failed")
        .replace("{name}", name)
        .replace("{error}", why)
}

/// A refusal shown on the page (the account is gone, kmp-fetch is down);
/// anything else is the error page.
fn api_refusal(ctx: &mut Ctx, e: ApiFailure) -> Result<Response, PageError> {
    match e {
        ApiFailure::Status(400 | 404 | 409 | 503, m) => {
            render(ctx, 200, Value::Null, Some(("error", m)))
        }
        e => Err(admin::page_error(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_edit_form_never_carries_the_password() {
        let a = json!({"name": "新浪", "protocol": "imap", "host": "imap.example",
            "port": 993, "tls": "implicit", "verify": false, "username": "me",
            "password_set": true, "folders": ["INBOX", "Work"], "target": "收件",
            "keep": "delete-after-7", "interval": 600, "enabled": true});
        let f = form_of(&a);
        assert_eq!(f["keep"], "delete-after");
        assert_eq!(f["days"], "7");
        assert_eq!(f["folders"], "INBOX, Work");
        assert_eq!(f["no_verify"], "1");
        assert_eq!(f["interval"], "10m");
        assert!(f.get("password").is_none());
    }
}
