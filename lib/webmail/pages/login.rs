//! Login and logout.
//!
//! A password crosses the network only over TLS: the login form is served
//! and taken over plain HTTP only from the loopback (a browser on the server
//! itself, or a TLS proxy there); otherwise the browser is sent to the
//! https:// address of the same page, or refused when the host is unknown.
//!
//! The login form has its own CSRF token (there is no session yet): the form
//! page sets a random value in the cookie [`LOGIN_COOKIE`] and puts
//! HMAC(key, value) in the form; a login POST without both is refused, so no
//! other site can log a browser in to an account of its choosing.

use serde_json::json;

use super::super::app::{Ctx, PageError};
use super::super::imap;
use super::super::request::host_without_port;
use super::super::response::Response;
use super::super::seal::{new_sid, Sealed};
use super::super::state::valid_sid;
use crate::imapc;

/// The cookie that carries the login form's random value.
pub const LOGIN_COOKIE: &str = "kmpl";

/// How long a login form stays usable, in seconds.
const LOGIN_FORM_LIFETIME: u64 = 3600;

/// Longest login name and password taken.
const MAX_USER: usize = 320;
const MAX_PASSWORD: usize = 1024;

/// `/`: the folders when logged in (the folders page sends others on to the login).
pub fn root(ctx: &mut Ctx) -> Result<Response, PageError> {
    Ok(ctx.redirect("/folders"))
}

/// Where a plain-HTTP browser that is not on the loopback is sent.
fn insecure(ctx: &Ctx) -> Result<Response, PageError> {
    match &ctx.req.host {
        Some(h) => Ok(Response::redirect(&format!(
            "https://{}{}/login",
            host_without_port(h),
            ctx.req.base
        ))),
        None => Err(PageError::Forbidden("err_https_needed")),
    }
}

/// GET /login: the form.
pub fn form(ctx: &mut Ctx) -> Result<Response, PageError> {
    if !ctx.req.secure_enough() {
        return insecure(ctx);
    }
    let why = ctx
        .req
        .param("why")
        .filter(|w| ["expired", "bye", "signed_up"].contains(w))
        .map(|w| format!("login_{w}"));
    let value = new_sid().map_err(PageError::Internal)?;
    let c = ctx.cookie(LOGIN_COOKIE, &value, LOGIN_FORM_LIFETIME);
    ctx.cookies.push(c);
    let csrf = login_token(ctx, &value);
    // A link to sign-up only when some domain is open for it.
    let signup = !super::signup::open_domains(ctx).is_empty();
    ctx.page(
        "login.html",
        json!({ "why": why, "login_user": "", "csrf": csrf, "signup": signup }),
    )
}

/// The login form's token for the random value in its cookie.
fn login_token(ctx: &Ctx, value: &str) -> String {
    ctx.keys.csrf_token(&format!("login {value}"))
}

/// Whether the login POST carries the token of its own login cookie.
fn login_token_ok(ctx: &Ctx) -> bool {
    match ctx.req.cookie(LOGIN_COOKIE).filter(|v| valid_sid(v)) {
        Some(v) => {
            let token = ctx.req.field("csrf").unwrap_or_default();
            ctx.keys.csrf_ok(&format!("login {v}"), token)
        }
        None => false,
    }
}

/// POST /login: checks the password by logging in to IMAP, then starts a
/// session (listed in the user's METADATA) and sets the sealed cookie.
pub fn submit(ctx: &mut Ctx) -> Result<Response, PageError> {
    if !ctx.req.secure_enough() {
        return Err(PageError::Forbidden("err_https_needed"));
    }
    if !login_token_ok(ctx) {
        return Err(PageError::Forbidden("err_csrf"));
    }
    let user = ctx.req.field("user").unwrap_or_default().trim().to_string();
    let password = ctx.req.field("password").unwrap_or_default().to_string();
    if user.is_empty() || password.is_empty() {
        return retry(ctx, &user, "login_missing");
    }
    if user.len() > MAX_USER || password.len() > MAX_PASSWORD || user.chars().any(char::is_control)
    {
        return Err(PageError::Bad("err_bad_request"));
    }
    let mut client = match imap::login(ctx.settings, ctx.req, &user, &password) {
        Ok(c) => c,
        Err(imapc::Error::Auth) | Err(imapc::Error::No(_)) => {
            return retry(ctx, &user, "login_failed")
        }
        Err(e) => return Err(e.into()),
    };
    let sid = new_sid().map_err(PageError::Internal)?;
    let expires = ctx.now + ctx.settings.session_lifetime.as_secs();
    // The password is good: kmp-admind is asked for the navigation's roles
    // on a thread of its own while the session is written over IMAP.
    let asker = super::admin_domain::roles_client(ctx);
    let now = ctx.now;
    let ((admin_token, roles, list_nav), written) = std::thread::scope(|s| {
        let (u, p) = (&user, &password);
        let roles = asker.map(|c| s.spawn(move || super::admin_domain::ask_roles(c, u, p)));
        let written = imap::start_session(&mut client, &sid, expires, now);
        let _ = client.logout();
        let roles = roles
            .and_then(|h| h.join().ok())
            .unwrap_or((None, Vec::new(), None));
        (roles, written)
    });
    written?;
    let sealed = Sealed {
        user,
        password,
        sid,
        expires,
        admin_token,
        banner: None,
        list_nav,
        roles,
    };
    let value = ctx.keys.seal(&sealed).map_err(PageError::Internal)?;
    let c = ctx.session_cookie(&value);
    ctx.cookies.push(c);
    let gone = ctx.cookie(LOGIN_COOKIE, "", 0);
    ctx.cookies.push(gone);
    Ok(ctx.redirect("/folders"))
}

/// The form again with a message, status 403 (the login was refused).
fn retry(ctx: &Ctx, user: &str, why: &str) -> Result<Response, PageError> {
    // The same login cookie serves the next try.
    let csrf = ctx
        .req
        .cookie(LOGIN_COOKIE)
        .map(|v| login_token(ctx, v))
        .unwrap_or_default();
    ctx.page_status(
        403,
        "login.html",
        json!({ "why": why, "login_user": user, "failed": true, "csrf": csrf }),
    )
}

/// POST /logout: the session id leaves the user's list, so this cookie (and
/// any copy of it) is dead; the browser's cookie is cleared.
pub fn logout(ctx: &mut Ctx) -> Result<Response, PageError> {
    let auth = ctx.auth();
    let sid = auth.session.sid.clone();
    imap::write_session(&mut auth.imap, &sid, None)?;
    let c = ctx.session_cookie("");
    ctx.cookies.push(c);
    Ok(ctx.redirect("/login?why=bye"))
}
