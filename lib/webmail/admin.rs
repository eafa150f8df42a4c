//! The administration pages' way to kmp-admind (postmasters, list owners,
//! fetch accounts): the webmail holds no database and no rights of its
//! own, so it calls kmp-admind's API on the user's behalf, with the login
//! the session already has. The first call of a session logs in there and
//! keeps kmp-admind's token in the sealed session cookie beside the IMAP
//! password; later requests send the token only. A token kmp-admind no
//! longer takes (expired, or kmp-admind restarted) is replaced by a new
//! login once. kmp-admind checks the user's role on every call: the
//! webmail is never trusted beyond what the user may do.

use serde_json::Value;

use super::app::{Ctx, PageError};
use crate::admin::client::{ApiFailure, Client, SYSTEM_ROOTS};

/// Calls kmp-admind as the logged-in user. `path` is the API's path
/// (`/v1/...`, segments made with [`crate::admin::client::seg`]).
/// Failures become the page's error: 403 forbidden, 404 not found, a
/// refused change (400, 409, 413) the server's message, anything else
/// unavailable.
pub fn call(
    ctx: &mut Ctx,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> Result<Value, PageError> {
    call_raw(ctx, method, path, body).map_err(page_error)
}

/// As [`call`], but the failure as kmp-admind gave it, for a page that
/// shows a refusal in its own form instead of the error page.
pub fn call_raw(
    ctx: &mut Ctx,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> Result<Value, ApiFailure> {
    let mut client = client(ctx)?;
    let cached = ctx.auth().session.admin_token.clone();
    if let Some(t) = cached {
        client.token = t;
        match client.call(method, path, body) {
            Err(ApiFailure::Status(401, _)) => {}
            other => return other,
        }
    }
    login(ctx, &mut client)?;
    client.call(method, path, body)
}

/// Whether the administration pages are on (`webmail.admind` is set).
pub fn enabled(ctx: &Ctx) -> bool {
    ctx.settings.admind.is_some()
}

/// An unauthenticated call (the sign-up page): no session, no token.
pub fn call_anonymous(
    ctx: &Ctx,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> Result<Value, ApiFailure> {
    client(ctx)?.call(method, path, body)
}

/// A client of the configured kmp-admind (no token yet).
pub fn client(ctx: &Ctx) -> Result<Client, ApiFailure> {
    let url = ctx
        .settings
        .admind
        .as_deref()
        .ok_or_else(|| ApiFailure::Setup("webmail.admind is not set".into()))?;
    let ca = ctx
        .settings
        .admind_ca_file
        .clone()
        .unwrap_or_else(|| SYSTEM_ROOTS.into());
    Ok(Client::new(url, &ca)?.with_timeout(ctx.settings.imap_timeout))
}

/// Logs in to kmp-admind with the session's login and keeps the token in
/// the renewed session cookie.
fn login(ctx: &mut Ctx, client: &mut Client) -> Result<(), ApiFailure> {
    let (user, password) = {
        let s = &ctx.auth().session;
        (s.user.clone(), zeroize::Zeroizing::new(s.password.clone()))
    };
    let token = client.login(&user, &password)?;
    ctx.auth().session.admin_token = Some(token);
    let keys = ctx.keys;
    let sealed = keys.seal(&ctx.auth().session).map_err(ApiFailure::Setup)?;
    let c = ctx.session_cookie(&sealed);
    // A renewal earlier in this request set the cookie too: the last one
    // sent is the one the browser keeps, and it carries both changes.
    ctx.cookies.push(c);
    Ok(())
}

/// The page error of a failed call.
pub fn page_error(e: ApiFailure) -> PageError {
    match e {
        ApiFailure::Status(403, _) | ApiFailure::Status(401, _) => {
            PageError::Forbidden("err_admin_forbidden")
        }
        ApiFailure::Status(404, _) => PageError::NotFound,
        ApiFailure::Status(400 | 409 | 413, m) => PageError::Refused(m),
        ApiFailure::Setup(m) => PageError::Internal(format!("kmp-admind: {m}")),
        ApiFailure::Status(_, m) | ApiFailure::Unavailable(m) | ApiFailure::Protocol(m) => {
            PageError::Unavailable(format!("kmp-admind: {m}"))
        }
    }
}
