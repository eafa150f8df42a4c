//! kmp-webmail: the webmail, a CGI program (RFC 3875). One request is one
//! short process: parse the request, check the session, one IMAP connection
//! to kmp-imapd, render a page, exit. It opens no Maildir, queue or user
//! database; it keeps no state of its own (sessions and settings live in the
//! user's store as IMAP METADATA, see [`state`] and doc/ARCHITECTURE.md).
//!
//! # Layout
//!
//! - [`request`], [`multipart`]: the CGI request, parsed and capped (pure).
//! - [`response`]: status, headers (CSP and the other security headers on
//!   every page), cookies.
//! - [`seal`]: the key file, the sealed session cookie, CSRF tokens.
//! - [`state`]: the session list and the settings in METADATA (pure).
//! - [`lang`], [`skin`]: strings and templates, read at run time from
//!   `webmail.lang_dir` and `webmail.skins_dir`.
//! - [`settings`]: the `[webmail]` keys, typed; IP allow and deny lists.
//! - [`imap`]: connecting and logging in to kmp-imapd through `crate::imapc`.
//! - [`app`]: the request's way through: access check, routing, the
//!   session check, CSRF, the handler, the error page.
//! - [`pages`]: the route table and one file per page group.
//! - [`managesieve`]: the rules page's blocking ManageSieve client (RFC
//!   5804) to `webmail.managesieve`, with the user's login.
//! - [`rules`]: the rule editor's model, its Sieve script and the way back
//!   (pure).
//!
//! Skins and languages ship in `share/webmail/` of the source tree
//! (`skins/NAME/*.html`, `skins/NAME/style.css`, `lang/CODE.toml`);
//! `make install` copies them to `$(PREFIX)/share/kmpromail/webmail/`, and
//! `kmpctl init` points an instance at the checkout's copy.
//!
//! # Adding a page
//!
//! 1. **Route**: add a line to [`pages::ROUTES`] (method, path, whether it
//!    needs a login, handler). Paths are exact (`/list`); parameters go in
//!    the query string (GET) or the form (POST), never in the path.
//! 2. **Handler**: a `fn(&mut Ctx) -> Result<Response, PageError>` in a new
//!    file under `lib/webmail/pages/` (declare it in `pages/mod.rs`). With
//!    `login: true` the handler finds `ctx.auth` set: a logged-in
//!    [`imapc::Client`](crate::imapc::Client) (`ctx.imap()`), the session,
//!    the user's [`state::Prefs`]. Read input with `ctx.req.param("x")`
//!    (query) or `ctx.req.field("x")` (form); check every value (folder
//!    names with [`pages::folders::check_folder_name`], UIDs as numbers) and
//!    answer bad input with `Err(PageError::Bad("err_key"))`, which renders
//!    the error page and changes nothing. IMAP errors convert with `?`.
//!    Finish with `ctx.page("name.html", json!({...}))` (status 200; the
//!    common variables below are added) or `ctx.redirect("/path?done=x")`
//!    after a POST (`done=x` shows the string `done_x` on the next page).
//!    The user's settings are in `ctx.auth().prefs` (`page_size`,
//!    `tz_offset_minutes()`); extra Set-Cookie values go in `ctx.cookies`;
//!    a message that is not there (or not the user's) is
//!    `Err(PageError::NotFound)`. The folders page links each folder to
//!    `/list?folder=NAME`: that is the message list's route.
//! 3. **Template**: `share/webmail/skins/default/NAME.html`, starting with
//!    `{% extends "base.html" %}` and filling `{% block title %}` and
//!    `{% block content %}`. Every template sees `t` (the strings), `base`
//!    (prefix every link and form action with `{{ base }}`), `csrf`, `user`,
//!    `lang`, `skin`, `prefs`, `page`, `done` (a flash message key),
//!    `list_nav` (the user has list pages: `pages::lists`). Output is
//!    HTML-escaped; query values go through `|q`.
//! 4. **Strings**: add every key to `share/webmail/lang/en.toml`,
//!    `zh-CN.toml` and `zh-TW.toml` (a unit test fails on a key missing
//!    from the Chinese files). `{name}` holes are filled with
//!    `{{ t.key|fill(name=value) }}`.
//! 5. **CSRF for POSTs**: every form that POSTs carries
//!    `<input type="hidden" name="csrf" value="{{ csrf }}">`; [`app`] checks
//!    it for every POST route with `login: true` before the handler runs,
//!    so a handler never sees a forged request. State changes only by POST;
//!    a GET handler must not change anything.
//! 6. **Test**: a black-box test in `tests/webmail.rs` through the real web
//!    server (`common::webmail_instance()`), and unit tests for pure logic.

pub mod admin;
pub mod app;
pub mod compose;
pub mod contacts;
pub mod imap;
pub mod lang;
pub mod managesieve;
pub mod multipart;
pub mod pages;
pub mod request;
pub mod response;
pub mod rules;
pub mod seal;
pub mod settings;
pub mod skin;
pub mod state;
pub mod submit;

pub use app::{Auth, Ctx, PageError};
pub use request::Request;
pub use response::Response;

use std::io::{Read, Write};

/// Serves one CGI request: `env` looks up the CGI variables, `stdin` holds
/// the body, the response goes to `stdout`. Returns the exit code (0 even
/// for error pages: the web server needs no other answer).
pub fn run(
    env: &dyn Fn(&str) -> Option<String>,
    stdin: &mut dyn Read,
    stdout: &mut dyn Write,
) -> i32 {
    let head_only = env("REQUEST_METHOD").as_deref() == Some("HEAD");
    let resp = app::serve(env, stdin);
    match resp.write_to(stdout, head_only) {
        Ok(()) => crate::exit::OK,
        Err(_) => crate::exit::IOERR,
    }
}
