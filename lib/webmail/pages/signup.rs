//! Sign-up: GET /signup (the form, for the domains kmp-admind says are
//! open), POST /signup (the account made through kmp-admind's
//! unauthenticated `POST /v1/signup`). No session; the login page links
//! here only when some domain is open.
//!
//! Against robots, with no outside service: the form carries a small sum
//! to answer and a token HMAC(key, "signup TIME A B") beside it, so the
//! question cannot be forged or swapped, and an answer sent sooner than
//! [`MIN_AGE`] seconds after the form was made, or later than
//! [`MAX_AGE`], is refused. Behind it kmp-admind counts attempts per
//! browser address (the webmail names it in `client_ip`; kmp-admind takes
//! that only from `admind.trusted_networks`) and answers 429 past
//! `admind.signup_max`, and the failures feed kmp-authd's bans. The
//! password travels as on the login page: over TLS, or plain only on
//! the loopback; it is never sent back into the form.

use ring::rand::{SecureRandom, SystemRandom};
use serde_json::{json, Value};

use super::super::admin::{self, call_anonymous};
use super::super::app::{Ctx, PageError};
use super::super::response::Response;
use crate::admin::client::ApiFailure;

/// Seconds a form must have been on the screen before it is sent.
pub const MIN_AGE: u64 = 2;
/// Seconds a form stays usable.
pub const MAX_AGE: u64 = 3600;
/// Longest name, domain and password taken.
const MAX_FIELD: usize = 1024;

/// The domains open for sign-up, as kmp-admind lists them (none when the
/// administration pages are off or kmp-admind cannot be reached).
pub fn open_domains(ctx: &Ctx) -> Vec<Value> {
    if !admin::enabled(ctx) {
        return Vec::new();
    }
    match call_anonymous(ctx, "GET", "/v1/signup", None) {
        Ok(v) => v["domains"].as_array().cloned().unwrap_or_default(),
        // kmp-admind not running: no link, and no log line on every
        // login page; anything else is worth a line.
        Err(ApiFailure::Unavailable(_)) => Vec::new(),
        Err(e) => {
            crate::warn!("sign-up domains: {e}");
            Vec::new()
        }
    }
}

/// A new question: (a, b, token).
fn question(ctx: &Ctx) -> Result<(u32, u32, String), PageError> {
    let mut r = [0u8; 2];
    SystemRandom::new()
        .fill(&mut r)
        .map_err(|_| PageError::Internal("no randomness".into()))?;
    let (a, b) = (u32::from(r[0] % 20) + 1, u32::from(r[1] % 20) + 1);
    Ok((a, b, token(ctx, ctx.now, a, b)))
}

fn token(ctx: &Ctx, issued: u64, a: u32, b: u32) -> String {
    let mac = ctx.keys.csrf_token(&format!("signup {issued} {a} {b}"));
    format!("{issued}.{a}.{b}.{mac}")
}

/// Checks a token and its answer: None when right, else the string key of
/// what is wrong.
pub fn check_answer(ctx: &Ctx, tok: &str, answer: &str) -> Option<&'static str> {
    let parts: Vec<&str> = tok.split('.').collect();
    let [issued, a, b, mac] = parts.as_slice() else {
        return Some("signup_err_form");
    };
    let (Ok(issued), Ok(a), Ok(b)) = (issued.parse::<u64>(), a.parse::<u32>(), b.parse::<u32>())
    else {
        return Some("signup_err_form");
    };
    if !ctx.keys.csrf_ok(&format!("signup {issued} {a} {b}"), mac) {
        return Some("signup_err_form");
    }
    if ctx.now < issued.saturating_add(MIN_AGE) {
        return Some("signup_err_fast");
    }
    if ctx.now > issued.saturating_add(MAX_AGE) {
        return Some("signup_err_form");
    }
    match answer.trim().parse::<u32>() {
        Ok(n) if n == a + b => None,
        _ => Some("signup_err_answer"),
    }
}

/// GET /signup.
pub fn show(ctx: &mut Ctx) -> Result<Response, PageError> {
    if !ctx.req.secure_enough() {
        return Err(PageError::Forbidden("err_https_needed"));
    }
    render(ctx, 200, "", "", None)
}

fn render(
    ctx: &mut Ctx,
    status: u16,
    local: &str,
    domain: &str,
    error: Option<String>,
) -> Result<Response, PageError> {
    let domains = open_domains(ctx);
    let (a, b, tok) = question(ctx)?;
    ctx.page_status(
        status,
        "signup.html",
        json!({
            "domains": domains,
            "local": local,
            "domain": domain,
            "a": a,
            "b": b,
            "token": tok,
            "error": error,
        }),
    )
}

/// POST /signup.
pub fn submit(ctx: &mut Ctx) -> Result<Response, PageError> {
    if !ctx.req.secure_enough() {
        return Err(PageError::Forbidden("err_https_needed"));
    }
    let req = ctx.req;
    let f = |k: &str| req.field(k).unwrap_or_default();
    if [
        "local",
        "domain",
        "password",
        "password2",
        "answer",
        "token",
    ]
    .iter()
    .any(|k| f(k).len() > MAX_FIELD)
    {
        return Err(PageError::Bad("err_bad_request"));
    }
    let local = f("local").trim().to_string();
    let domain = f("domain").trim().to_string();
    let again = |ctx: &mut Ctx, status: u16, key_or_text: Result<&str, String>| {
        let text = match key_or_text {
            Ok(key) => ctx.lang.get(key).to_string(),
            Err(t) => t,
        };
        let (l, d) = (local.clone(), domain.clone());
        render(ctx, status, &l, &d, Some(text))
    };
    if let Some(key) = check_answer(ctx, f("token"), f("answer")) {
        return again(ctx, 400, Ok(key));
    }
    if local.is_empty()
        || domain.is_empty()
        || local.contains('@')
        || local.chars().any(char::is_control)
    {
        return again(ctx, 400, Ok("signup_err_name"));
    }
    let password = f("password").to_string();
    if password.is_empty() || password != f("password2") {
        return again(ctx, 400, Ok("signup_err_password2"));
    }
    let body = json!({
        "address": format!("{local}@{domain}"),
        "password": password,
        "client_ip": ctx.req.remote_addr.map(|a| a.to_string()),
    });
    match call_anonymous(ctx, "POST", "/v1/signup", Some(&body)) {
        Ok(v) if v["pending_approval"].as_bool() == Some(true) => ctx.page(
            "signup.html",
            json!({"pending": v["signed_up"], "domains": []}),
        ),
        Ok(_) => Ok(ctx.redirect("/login?why=signed_up")),
        Err(ApiFailure::Status(429, _)) => again(ctx, 429, Ok("signup_err_rate")),
        Err(ApiFailure::Status(400 | 404 | 409 | 403, m)) => again(ctx, 400, Err(m)),
        Err(e) => Err(admin::page_error(e)),
    }
}
