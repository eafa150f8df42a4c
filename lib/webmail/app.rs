//! One request's way through the webmail:
//!
//! 1. configuration and key (a broken one is a 500 page and a log line);
//! 2. the request, parsed and capped (400, 413, 415 error pages);
//! 3. `webmail.allow` / `webmail.deny` (403);
//! 4. `/static/NAME` from the skin, on an allow-list;
//! 5. the route (404, 405);
//! 6. for a route with `login: true`: the sealed cookie, the IMAP login with
//!    its password, the session id listed in the user's METADATA and not
//!    expired (else back to the login page, the cookie cleared); the sliding
//!    expiry; for a POST, the CSRF token (403 and nothing done);
//! 7. the handler, whose `PageError` becomes the error page.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use super::lang::{self, Strings};
use super::pages::{self, Route};
use super::request::{Method, Request, RequestError};
use super::response::{set_cookie, CookieSpec, Response};
use super::seal::{Keys, Sealed};
use super::settings::Settings;
use super::skin::{self, Skin};
use super::state::Prefs;
use crate::config::Config;
use crate::imapc::{self, Client};

/// The session cookie's name.
pub const COOKIE: &str = "kmpw";

/// A logged-in request's IMAP connection and session.
pub struct Auth {
    pub imap: Client,
    pub session: Sealed,
    pub prefs: Prefs,
    /// The entries the route reads ([`super::pages::Route::metadata`]).
    pub metadata: Vec<(&'static str, Option<Vec<u8>>)>,
}

/// Everything a handler sees.
pub struct Ctx<'a> {
    pub req: &'a Request,
    pub settings: &'a Settings,
    pub keys: &'a Keys,
    pub lang: Strings,
    pub langs: Vec<String>,
    pub skin: Skin,
    /// Unix seconds at the start of the request.
    pub now: u64,
    /// Set for routes with `login: true`.
    pub auth: Option<Auth>,
    /// Set-Cookie values to send with whatever the handler answers (the
    /// renewed session, the login form's token cookie).
    pub cookies: Vec<String>,
}

/// Why a page could not be served. Each renders the error page.
#[derive(Debug)]
pub enum PageError {
    /// The request is wrong (a bad name, a missing field): 400 with the
    /// message of this string key.
    Bad(&'static str),
    /// Refused (CSRF, access): 403 with the message of this key.
    Forbidden(&'static str),
    /// No such page or object: 404.
    NotFound,
    /// The IMAP server said no to something the user asked: 400 with the
    /// server's text.
    Refused(String),
    /// The IMAP server could not be reached or broke: 503.
    Unavailable(String),
    /// Our own fault (a broken skin): 500; the detail goes to the log only.
    Internal(String),
}

impl From<imapc::Error> for PageError {
    fn from(e: imapc::Error) -> PageError {
        match e {
            imapc::Error::No(t) | imapc::Error::Bad(t) => PageError::Refused(t),
            imapc::Error::Auth => PageError::Forbidden("err_login_failed"),
            imapc::Error::Invalid(_) => PageError::Bad("err_bad_request"),
            other => PageError::Unavailable(format!("{other:?}")),
        }
    }
}

impl<'a> Ctx<'a> {
    /// The logged-in session. Panics if the route is not `login: true`.
    pub fn auth(&mut self) -> &mut Auth {
        // Invariant: handlers of routes with `login: true` are only called with auth set.
        self.auth.as_mut().expect("route needs login")
    }

    /// The logged-in IMAP connection.
    pub fn imap(&mut self) -> &mut Client {
        &mut self.auth().imap
    }

    /// A link or form target: `path` under the webmail's prefix.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.req.base, path)
    }

    /// The CSRF token of this session (empty before login).
    pub fn csrf(&self) -> String {
        self.auth
            .as_ref()
            .map(|a| self.keys.csrf_token(&a.session.sid))
            .unwrap_or_default()
    }

    /// The variables every template sees, with `extra`'s on top (and `t`,
    /// the strings, which [`Skin::render_page`] adds without a copy).
    pub fn vars(&self, page: &str, extra: Value) -> Value {
        let done = self
            .req
            .param("done")
            .filter(|d| super::state::safe_name(d))
            .map(|d| format!("done_{d}"))
            .filter(|k| self.lang.map().contains_key(k));
        let mut v = json!({
            "base": self.req.base,
            "csrf": self.csrf(),
            "user": self.auth.as_ref().map(|a| a.session.user.clone()),
            "lang": self.lang.code,
            "langs": self.langs,
            "skin": self.skin.name,
            "prefs": self.auth.as_ref().map(|a| json!({
                "page_size": a.prefs.page_size,
                "tz": a.prefs.tz,
            })),
            "page": page,
            "done": done,
            "admind": self.settings.admind.is_some(),
            "list_nav": self.auth.as_ref().and_then(|a| a.session.list_nav),
            "roles": self.auth.as_ref().map(|a| a.session.roles.clone()).unwrap_or_default(),
        });
        if let (Some(m), Value::Object(e)) = (v.as_object_mut(), extra) {
            m.extend(e);
        }
        v
    }

    /// Renders `template` (named `page.html` for page `page`) with status 200.
    pub fn page(&self, template: &str, extra: Value) -> Result<Response, PageError> {
        self.page_status(200, template, extra)
    }

    /// Renders `template` with `status`.
    pub fn page_status(
        &self,
        status: u16,
        template: &str,
        extra: Value,
    ) -> Result<Response, PageError> {
        let name = template.trim_end_matches(".html");
        let html = self
            .skin
            .render_page(template, &self.lang, &self.vars(name, extra))
            .map_err(PageError::Internal)?;
        Ok(Response::html(status, html))
    }

    /// 303 to `path` under the webmail's prefix.
    pub fn redirect(&self, path: &str) -> Response {
        Response::redirect(&self.url(path))
    }

    /// A Set-Cookie value for the session cookie (`value` empty: delete it).
    pub fn session_cookie(&self, value: &str) -> String {
        self.cookie(COOKIE, value, self.settings.session_lifetime.as_secs())
    }

    /// A Set-Cookie value for cookie `name` (`value` empty: delete it),
    /// kept `max_age` seconds, for the webmail's path only.
    pub fn cookie(&self, name: &str, value: &str, max_age: u64) -> String {
        set_cookie(&CookieSpec {
            name,
            value,
            path: if self.req.base.is_empty() {
                "/"
            } else {
                &self.req.base
            },
            max_age: if value.is_empty() { 0 } else { max_age },
            secure: self.req.https,
        })
    }

    /// The error page for `e`.
    pub fn error_page(&self, e: &PageError) -> Response {
        let (status, key, detail) = match e {
            PageError::Bad(k) => (400, *k, None),
            PageError::Forbidden(k) => (403, *k, None),
            PageError::NotFound => (404, "err_not_found", None),
            PageError::Refused(t) => (400, "err_refused", Some(t.clone())),
            PageError::Unavailable(d) => {
                crate::warn!("IMAP server unavailable: {d}");
                (503, "err_unavailable", None)
            }
            PageError::Internal(d) => {
                crate::error!("{d}");
                (500, "err_internal", None)
            }
        };
        error_response(&self.skin, &self.lang, &self.req.base, status, key, detail)
    }
}

/// Renders the error page, or plain text when even that fails.
fn error_response(
    skin: &Skin,
    lang: &Strings,
    base: &str,
    status: u16,
    key: &str,
    detail: Option<String>,
) -> Response {
    let message = lang.get(key).to_string();
    let vars = json!({
        "base": base, "lang": lang.code, "skin": skin.name,
        "page": "error", "status": status, "message": message, "detail": detail,
    });
    match skin.render_page("error.html", lang, &vars) {
        Ok(html) => Response::html(status, html),
        Err(e) => {
            crate::error!("{e}");
            Response::text(status, &message)
        }
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Serves one request (see the module doc for the steps).
pub fn serve(env: &dyn Fn(&str) -> Option<String>, stdin: &mut dyn std::io::Read) -> Response {
    let cfg = match Config::load_located(None) {
        Ok(c) => c,
        Err(e) => {
            crate::error!("configuration: {e}");
            return Response::text(
                500,
                "The webmail is not configured (see the web server's error log).",
            );
        }
    };
    let settings = match Settings::from_config(&cfg) {
        Ok(s) => s,
        Err(e) => {
            crate::error!("configuration: {e}");
            return Response::text(
                500,
                "The webmail is not configured (see the web server's error log).",
            );
        }
    };
    let accept = env("HTTP_ACCEPT_LANGUAGE").unwrap_or_default();
    let langs = lang::available(&settings.lang_dir);
    let code = lang::choose(None, &accept, &langs);
    let strings = lang::load(&settings.lang_dir, &code).unwrap_or_else(|e| {
        crate::error!("languages: {e}");
        Strings::default()
    });
    let skin = Skin::open(&settings.skins_dir, skin::DEFAULT);
    let base_guess = super::request::script_base(
        &env("SCRIPT_NAME").unwrap_or_default(),
        &env("REQUEST_URI").unwrap_or_default(),
    );
    let fail =
        |status: u16, key: &str| error_response(&skin, &strings, &base_guess, status, key, None);
    let keys = match Keys::load(&settings.key_file) {
        Ok(k) => k,
        Err(e) => {
            crate::error!("webmail.key_file: {e}");
            return fail(500, "err_internal");
        }
    };
    let req = match Request::parse(env, stdin, settings.max_request_size) {
        Ok(r) => r,
        Err(e) => {
            let key = match e {
                RequestError::TooLarge => "err_too_large",
                _ => "err_bad_request",
            };
            return fail(e.status(), key);
        }
    };
    if !settings.admits(req.remote_addr) {
        return fail(403, "err_address_refused");
    }
    if let Some(name) = req.path.strip_prefix("/static/") {
        if matches!(req.method, Method::Get | Method::Head) {
            let wanted = req.param("skin").unwrap_or(skin::DEFAULT);
            if let Some((body, ctype)) = skin::static_file(&settings.skins_dir, wanted, name) {
                let mut r = Response::html(200, String::new());
                r.body = body;
                r.content_type = ctype.to_string();
                r.private = false;
                return r;
            }
        }
        return fail(404, "err_not_found");
    }
    let mut ctx = Ctx {
        req: &req,
        settings: &settings,
        keys: &keys,
        lang: strings.clone(),
        langs,
        skin,
        now: now(),
        auth: None,
        cookies: Vec::new(),
    };
    let route = match pages::find(&req) {
        Ok(r) => r,
        Err(e) => return ctx.error_page(&e),
    };
    let result = dispatch(&mut ctx, route);
    let mut resp = match result {
        Ok(r) => r,
        Err(e) => ctx.error_page(&e),
    };
    for c in std::mem::take(&mut ctx.cookies) {
        resp.headers.push(("Set-Cookie".into(), c));
    }
    if let Some(a) = ctx.auth.take() {
        a.imap.quit();
    }
    resp
}

fn dispatch(ctx: &mut Ctx, route: &Route) -> Result<Response, PageError> {
    if route.login {
        if let Some(away) = authenticate(ctx, route.metadata)? {
            return Ok(away);
        }
        if route.method == Method::Post {
            let token = ctx.req.field("csrf").unwrap_or_default();
            let keys = ctx.keys;
            let sid = &ctx.auth().session.sid;
            if !keys.csrf_ok(sid, token) {
                return Err(PageError::Forbidden("err_csrf"));
            }
        }
    }
    (route.handler)(ctx)
}

/// Checks the session of a `login: true` route and sets `ctx.auth`, or
/// returns where to send the browser instead (the login page, the cookie
/// cleared).
fn authenticate(ctx: &mut Ctx, more: &[&'static str]) -> Result<Option<Response>, PageError> {
    let to_login = |ctx: &mut Ctx, why: &str| {
        if ctx.req.cookie(COOKIE).is_some() {
            let c = ctx.session_cookie("");
            ctx.cookies.push(c);
        }
        Ok(Some(ctx.redirect(&format!("/login?why={why}"))))
    };
    let Some(sealed) = ctx.req.cookie(COOKIE).and_then(|c| ctx.keys.open(c)) else {
        return to_login(
            ctx,
            if ctx.req.cookie(COOKIE).is_some() {
                "expired"
            } else {
                "login"
            },
        );
    };
    if sealed.expires <= ctx.now {
        return to_login(ctx, "expired");
    }
    let mut imap = match super::imap::login(ctx.settings, ctx.req, &sealed.user, &sealed.password) {
        Ok(c) => c,
        // The password changed since: the session is over.
        Err(imapc::Error::Auth) => return to_login(ctx, "expired"),
        Err(e) => return Err(e.into()),
    };
    let state = super::imap::read_state(&mut imap, &sealed.sid, more)?;
    if state.expires.is_none_or(|e| e <= ctx.now) {
        let _ = imap.logout();
        return to_login(ctx, "expired");
    }
    let lifetime = ctx.settings.session_lifetime.as_secs();
    let mut session = sealed;
    if let Some(renewed) = renewal(ctx.now, session.expires, lifetime) {
        super::imap::write_session(&mut imap, &session.sid, Some(renewed))?;
        session.expires = renewed;
        let value = ctx.keys.seal(&session).map_err(PageError::Internal)?;
        let c = ctx.session_cookie(&value);
        ctx.cookies.push(c);
    }
    let prefs = Prefs::parse(state.prefs.as_deref(), ctx.settings.page_size);
    // The user's language and skin replace the browser's.
    let code = lang::choose(prefs.lang.as_deref(), &ctx.req.accept_language, &ctx.langs);
    if code != ctx.lang.code {
        if let Ok(s) = lang::load(&ctx.settings.lang_dir, &code) {
            ctx.lang = s;
        }
    }
    if let Some(s) = prefs.skin.as_deref().filter(|s| *s != ctx.skin.name) {
        ctx.skin = Skin::open(&ctx.settings.skins_dir, s);
    }
    ctx.auth = Some(Auth {
        imap,
        session,
        prefs,
        metadata: state.more,
    });
    Ok(None)
}

/// The sliding expiry: the new expiry of a session that expires at
/// `expires`, when it is due (at most every sixteenth of the lifetime, and
/// not more often than once a minute), so an active session costs one
/// SETMETADATA now and then rather than one per request.
pub fn renewal(now: u64, expires: u64, lifetime: u64) -> Option<u64> {
    let renewed = now + lifetime;
    (renewed >= expires + (lifetime / 16).max(60)).then_some(renewed)
}

/// The route table's entry for a method and path, as `pages` needs it.
pub fn method_matches(route: &Route, m: &Method) -> bool {
    route.method == *m || (route.method == Method::Get && *m == Method::Head)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_slide_but_are_not_rewritten_on_every_request() {
        let hour = 3600;
        let life = 8 * hour;
        // Just logged in: nothing to do.
        assert_eq!(renewal(1000, 1000 + life, life), None);
        // Half an hour later (the renewal step is half an hour).
        assert_eq!(renewal(1000 + 1799, 1000 + life, life), None);
        assert_eq!(renewal(1000 + 1800, 1000 + life, life), Some(2800 + life));
        // A short lifetime still waits a minute between writes.
        assert_eq!(renewal(30, 300, 300), None);
        assert_eq!(renewal(60, 300, 300), Some(360));
    }
}
