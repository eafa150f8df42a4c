//! The route table and the pages. One file per group of pages; see the
//! module doc of `webmail` for how to add one.

pub mod admin_aliases;
pub mod admin_announce;
pub mod admin_domain;
pub mod admin_users;
pub mod compose;
pub mod contacts;
pub mod fetch;
pub mod folders;
pub mod list;
pub mod lists;
pub mod login;
pub mod mail;
pub mod quota;
pub mod read;
pub mod receipt;
pub mod rules;
pub mod search;
pub mod settings;
pub mod signatures;
pub mod signup;
pub mod unsubscribe;

use super::app::{method_matches, Ctx, PageError};
use super::request::{Method, Request};
use super::response::Response;

/// A page handler.
pub type Handler = fn(&mut Ctx) -> Result<Response, PageError>;

/// One route: exact path, method, whether it needs a login.
pub struct Route {
    pub method: Method,
    pub path: &'static str,
    /// The session is checked (and, for a POST, the CSRF token) before the
    /// handler runs.
    pub login: bool,
    pub handler: Handler,
    /// METADATA entries (server annotations) the handler reads: asked for
    /// in the same GETMETADATA as the session's ([`Ctx::metadata`]).
    pub metadata: &'static [&'static str],
}

const fn get(path: &'static str, login: bool, handler: Handler) -> Route {
    Route {
        method: Method::Get,
        path,
        login,
        handler,
        metadata: &[],
    }
}

/// A page behind the login that reads these METADATA entries.
const fn get_reading(
    path: &'static str,
    handler: Handler,
    metadata: &'static [&'static str],
) -> Route {
    Route {
        method: Method::Get,
        path,
        login: true,
        handler,
        metadata,
    }
}

const fn post(path: &'static str, login: bool, handler: Handler) -> Route {
    Route {
        method: Method::Post,
        path,
        login,
        handler,
        metadata: &[],
    }
}

/// Every page. Add new ones at the end.
pub static ROUTES: &[Route] = &[
    get("/", false, login::root),
    get("/login", false, login::form),
    post("/login", false, login::submit),
    post("/logout", true, login::logout),
    get("/folders", true, folders::show),
    post("/folders/create", true, folders::create),
    post("/folders/rename", true, folders::rename),
    post("/folders/delete", true, folders::delete),
    post("/folders/empty", true, folders::empty),
    get("/settings", true, settings::show),
    post("/settings", true, settings::save),
    get("/list", true, list::show),
    post("/list/act", true, list::act),
    get_reading("/read", read::show, &[read::REMOTE_IMAGES_ENTRY]),
    get("/frame", true, read::frame),
    get("/part", true, read::part),
    get("/source", true, read::source),
    post("/read/images", true, read::trust_sender),
    get("/search", true, search::show),
    get("/quota", true, quota::show),
    get("/compose", true, compose::show),
    post("/compose", true, compose::submit),
    post("/read/receipt", true, receipt::receipt),
    post("/settings/compose", true, signatures::save_settings),
    get("/contacts", true, contacts::show),
    get("/contacts/edit", true, contacts::edit),
    post("/contacts/save", true, contacts::save),
    post("/contacts/act", true, contacts::act),
    post("/contacts/groups", true, contacts::groups),
    post("/contacts/import", true, contacts::import),
    get("/contacts/export", true, contacts::export),
    post("/contacts/add-sender", true, contacts::add_sender),
    post("/contacts/domain", true, contacts::domain),
    get("/rules", true, rules::show),
    post("/rules/add", true, rules::add),
    post("/rules/act", true, rules::act),
    post("/rules/script", true, rules::script),
    post("/rules/editor", true, rules::use_editor),
    get("/unsubscribe", false, unsubscribe::show),
    post("/unsubscribe", false, unsubscribe::submit),
    get("/fetch", true, fetch::show),
    post("/fetch/save", true, fetch::save),
    post("/fetch/act", true, fetch::act),
    get("/signup", false, signup::show),
    post("/signup", false, signup::submit),
    get("/lists", true, lists::show),
    post("/lists/create", true, lists::create),
    get("/lists/members", true, lists::members),
    post("/lists/members", true, lists::members_act),
    get("/lists/settings", true, lists::settings),
    post("/lists/settings", true, lists::settings_save),
    post("/lists/delete", true, lists::delete),
    get("/lists/held", true, lists::held),
    post("/lists/held", true, lists::held_act),
    get("/admin", true, admin_domain::show),
    get("/admin/users", true, admin_users::show),
    post("/admin/users/add", true, admin_users::add),
    get("/admin/user", true, admin_users::edit),
    post("/admin/user", true, admin_users::save),
    get("/admin/user/delete", true, admin_users::confirm_delete),
    post("/admin/user/delete", true, admin_users::delete),
    get("/admin/aliases", true, admin_aliases::show),
    post("/admin/aliases/add", true, admin_aliases::add),
    post("/admin/aliases/delete", true, admin_aliases::delete),
    get("/admin/announce", true, admin_announce::show),
    post("/admin/announce", true, admin_announce::submit),
];

/// The route for a request: 404 for an unknown path, 405 for a known
/// path with another method.
pub fn find(req: &Request) -> Result<&'static Route, PageError> {
    let mut known = false;
    for r in ROUTES {
        if r.path == req.path {
            known = true;
            if method_matches(r, &req.method) {
                return Ok(r);
            }
        }
    }
    if known {
        Err(PageError::Bad("err_method"))
    } else {
        Err(PageError::NotFound)
    }
}
