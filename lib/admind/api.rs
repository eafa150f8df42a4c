//! The API's request layer: method, path, query and body in, a typed
//! [`Call`] or an [`ApiError`] out. Pure (no I/O, no database), bounded, and
//! strict: unknown fields, wrong types, unknown query parameters and
//! characters that route mail elsewhere are refused here, before anything
//! is authorised or done. Fuzzed (`fuzz/fuzz_targets/admind_request.rs`).
//!
//! Version 1, every body JSON:
//!
//! | method | path | body | what |
//! |---|---|---|---|
//! | POST | /v1/login | `{"user","password"}` | a session token |
//! | POST | /v1/logout | — | the token is dead |
//! | GET | /v1/whoami | — | the caller and their roles |
//! | GET | /v1/domains | — | the domains the caller may see |
//! | GET, PATCH | /v1/domains/D | [`DomainPatch`] | one domain; its limits (admins) |
//! | GET | /v1/domains/D/usage | — | each user's quota and use |
//! | GET | /v1/domains/D/users | — | the domain's users |
//! | GET | /v1/domains/D/aliases | — | the domain's aliases |
//! | GET | /v1/domains/D/lists | — | the domain's mailing lists |
//! | GET | /v1/lists/A | — | one list's record (its owners too) |
//! | POST | /v1/users | [`UserAdd`] | a new user |
//! | GET, PATCH, DELETE | /v1/users/A | [`UserPatch`]; `?keep_mail=true` | one user |
//! | GET | /v1/users/A/usage | — | the user's quota and use |
//! | POST | /v1/aliases | [`AliasAdd`] | an alias or catch-all (`@D`), or more targets |
//! | DELETE | /v1/aliases/A | optional `{"targets"}` | the alias, or some targets |
//! | POST | /v1/domains/D/announcements | [`AnnounceBody`] | an announcement to every user of D |

use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::admin::DomainPatch;
use crate::userdb::address::normalize_domain;
use crate::userdb::{Address, State};

/// The longest path and query.
pub const MAX_TARGET: usize = 2048;
/// The most targets (of an alias, of forwards) one request may name.
pub const MAX_TARGETS: usize = 100;
/// The longest subject of an announcement.
pub const MAX_SUBJECT: usize = 500;
/// The longest user name or password in a login.
pub const MAX_CREDENTIAL: usize = 1024;

/// The methods the API knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
    Patch,
    Delete,
    Other,
}

impl Method {
    pub fn parse(s: &str) -> Method {
        match s {
            "GET" => Method::Get,
            "POST" => Method::Post,
            "PATCH" => Method::Patch,
            "DELETE" => Method::Delete,
            _ => Method::Other,
        }
    }
}

/// A refusal: the HTTP status and what to tell the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: u16,
    pub message: String,
}

impl ApiError {
    pub fn new(status: u16, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
        }
    }
    pub fn bad(message: impl Into<String>) -> ApiError {
        ApiError::new(400, message)
    }
}

/// `POST /v1/login`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Login {
    pub user: String,
    pub password: String,
}

/// `POST /v1/users`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserAdd {
    pub address: String,
    /// A password to hash; or `password_hash` already hashed; neither: the
    /// user cannot log in.
    #[serde(default)]
    pub password: Option<String>,
    #[serde(default)]
    pub password_hash: Option<String>,
    #[serde(default)]
    pub quota_bytes: Option<u64>,
    #[serde(default)]
    pub quota_messages: Option<u64>,
}

/// `PATCH /v1/users/A`: what is given changes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserPatch {
    #[serde(default)]
    pub quota_bytes: Option<u64>,
    #[serde(default)]
    pub quota_messages: Option<u64>,
    #[serde(default)]
    pub state: Option<State>,
    /// The whole list of forwards (empty: stop forwarding).
    #[serde(default)]
    pub forwards: Option<Vec<String>>,
    #[serde(default)]
    pub keep_copy: Option<bool>,
    /// A new password (a password reset).
    #[serde(default)]
    pub password: Option<String>,
    /// Or a new password already hashed (kmpctl --remote hashes locally).
    #[serde(default)]
    pub password_hash: Option<String>,
}

/// `POST /v1/aliases`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AliasAdd {
    pub alias: String,
    pub targets: Vec<String>,
}

/// The body of `DELETE /v1/aliases/A`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Targets {
    #[serde(default)]
    pub targets: Vec<String>,
}

/// `POST /v1/domains/D/announcements`: the text every user of the domain
/// gets in their INBOX (and, optionally, an HTML version of it).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnnounceBody {
    pub subject: String,
    pub text: String,
    #[serde(default)]
    pub html: Option<String>,
}

/// A request, parsed and checked for form (not yet for who may make it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    Login(Login),
    Logout,
    Whoami,
    Domains,
    /// Normalised (A-label) domain names from here on.
    Domain(String),
    DomainSet(String, DomainPatch),
    DomainUsage(String),
    Users(String),
    Aliases(String),
    Lists(String),
    List(Address),
    UserAdd {
        address: Address,
        body: UserAdd,
    },
    User(Address),
    UserUsage(Address),
    UserSet {
        address: Address,
        patch: UserPatch,
        forwards: Option<Vec<Address>>,
    },
    UserDel {
        address: Address,
        keep_mail: bool,
    },
    AliasAdd {
        alias: Address,
        targets: Vec<Address>,
    },
    AliasDel {
        alias: Address,
        targets: Vec<Address>,
    },
    Announce {
        domain: String,
        body: AnnounceBody,
    },
}

impl Call {
    /// Its name in log lines.
    pub fn name(&self) -> &'static str {
        match self {
            Call::Login(_) => "login",
            Call::Logout => "logout",
            Call::Whoami => "whoami",
            Call::Domains => "domain.list",
            Call::Domain(_) => "domain.show",
            Call::DomainSet(..) => "domain.set",
            Call::DomainUsage(_) => "domain.usage",
            Call::Users(_) => "user.list",
            Call::Aliases(_) => "alias.list",
            Call::Lists(_) => "list.list",
            Call::List(_) => "list.show",
            Call::UserAdd { .. } => "user.add",
            Call::User(_) => "user.show",
            Call::UserUsage(_) => "user.usage",
            Call::UserSet { .. } => "user.set",
            Call::UserDel { .. } => "user.del",
            Call::AliasAdd { .. } => "alias.add",
            Call::AliasDel { .. } => "alias.del",
            Call::Announce { .. } => "domain.announce",
        }
    }

    /// Whether it changes the database (and so is logged as a change).
    pub fn is_change(&self) -> bool {
        matches!(
            self,
            Call::DomainSet(..)
                | Call::UserAdd { .. }
                | Call::UserSet { .. }
                | Call::UserDel { .. }
                | Call::AliasAdd { .. }
                | Call::AliasDel { .. }
                | Call::Announce { .. }
        )
    }

    /// What it acts on, for log lines.
    pub fn object(&self) -> String {
        match self {
            Call::Domain(d)
            | Call::DomainSet(d, _)
            | Call::DomainUsage(d)
            | Call::Users(d)
            | Call::Lists(d)
            | Call::Aliases(d)
            | Call::Announce { domain: d, .. } => d.clone(),
            Call::List(a) => a.to_string(),
            Call::UserAdd { address, .. }
            | Call::User(address)
            | Call::UserUsage(address)
            | Call::UserSet { address, .. }
            | Call::UserDel { address, .. } => address.to_string(),
            Call::AliasAdd { alias, .. } | Call::AliasDel { alias, .. } => alias_text(alias),
            Call::Login(l) => l.user.clone(),
            Call::Logout | Call::Whoami | Call::Domains => "-".into(),
        }
    }
}

/// `@domain` for a catch-all, else the address.
pub fn alias_text(a: &Address) -> String {
    if a.is_catch_all() {
        format!("@{}", a.domain())
    } else {
        a.to_string()
    }
}

/// Parses one request. `target` is the path with its query.
pub fn parse(method: Method, target: &str, body: &[u8]) -> Result<Call, ApiError> {
    if target.len() > MAX_TARGET {
        return Err(ApiError::new(414, "the request path is too long"));
    }
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let segs: Vec<String> = path
        .strip_prefix("/v1/")
        .ok_or_else(|| ApiError::new(404, format!("no such resource {path:?} (the API is /v1/)")))?
        .split('/')
        .map(percent_decode)
        .collect::<Result<_, _>>()?;
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    let keep_mail = query_flag(query, method, &segs)?;
    use Method::*;
    let not_allowed = || ApiError::new(405, format!("{method:?} is not allowed on {path}"));
    let call = match (segs.as_slice(), method) {
        (["login"], Post) => {
            let l: Login = json(body)?;
            if l.user.len() > MAX_CREDENTIAL || l.password.len() > MAX_CREDENTIAL {
                return Err(ApiError::bad("the user name or password is too long"));
            }
            Call::Login(l)
        }
        (["logout"], Post) => Call::Logout,
        (["whoami"], Get) => Call::Whoami,
        (["domains"], Get) => Call::Domains,
        (["domains", d], Get) => Call::Domain(domain(d)?),
        (["domains", d], Patch) => {
            let p: DomainPatch = json(body)?;
            if p.is_empty() {
                return Err(ApiError::bad("nothing to change"));
            }
            Call::DomainSet(domain(d)?, p)
        }
        (["domains", d, "usage"], Get) => Call::DomainUsage(domain(d)?),
        (["domains", d, "users"], Get) => Call::Users(domain(d)?),
        (["domains", d, "aliases"], Get) => Call::Aliases(domain(d)?),
        (["domains", d, "lists"], Get) => Call::Lists(domain(d)?),
        (["domains", d, "announcements"], Post) => {
            let body: AnnounceBody = json(body)?;
            if body.subject.trim().is_empty() || body.text.trim().is_empty() {
                return Err(ApiError::bad("an announcement needs a subject and a text"));
            }
            if body.subject.len() > MAX_SUBJECT || body.subject.contains(['\r', '\n']) {
                return Err(ApiError::bad(format!(
                    "the subject must be one line of at most {MAX_SUBJECT} bytes"
                )));
            }
            Call::Announce {
                domain: domain(d)?,
                body,
            }
        }
        (["lists", a], Get) => Call::List(address(a)?),
        (["users"], Post) => {
            let body: UserAdd = json(body)?;
            if body.password.is_some() && body.password_hash.is_some() {
                return Err(ApiError::bad("give password or password_hash, not both"));
            }
            Call::UserAdd {
                address: address(&body.address)?,
                body,
            }
        }
        (["users", a], Get) => Call::User(address(a)?),
        (["users", a], Patch) => {
            let patch: UserPatch = json(body)?;
            if patch.password.is_some() && patch.password_hash.is_some() {
                return Err(ApiError::bad("give password or password_hash, not both"));
            }
            if patch == UserPatch::default() {
                return Err(ApiError::bad("nothing to change"));
            }
            let forwards = patch.forwards.as_deref().map(addresses).transpose()?;
            Call::UserSet {
                address: address(a)?,
                patch,
                forwards,
            }
        }
        (["users", a], Delete) => Call::UserDel {
            address: address(a)?,
            keep_mail,
        },
        (["users", a, "usage"], Get) => Call::UserUsage(address(a)?),
        (["aliases"], Post) => {
            let b: AliasAdd = json(body)?;
            if b.targets.is_empty() {
                return Err(ApiError::bad("an alias needs at least one target"));
            }
            Call::AliasAdd {
                alias: alias(&b.alias)?,
                targets: addresses(&b.targets)?,
            }
        }
        (["aliases", a], Delete) => {
            let t: Targets = if body.iter().all(u8::is_ascii_whitespace) {
                Targets::default()
            } else {
                json(body)?
            };
            Call::AliasDel {
                alias: alias(a)?,
                targets: addresses(&t.targets)?,
            }
        }
        (
            ["login"]
            | ["logout"]
            | ["whoami"]
            | ["domains"]
            | ["domains", _]
            | ["domains", _, "usage" | "users" | "aliases" | "lists" | "announcements"]
            | ["lists", _]
            | ["users"]
            | ["users", _]
            | ["users", _, "usage"]
            | ["aliases"]
            | ["aliases", _],
            _,
        ) => return Err(not_allowed()),
        _ => return Err(ApiError::new(404, format!("no such resource {path:?}"))),
    };
    Ok(call)
}

/// The one query parameter the API takes: `keep_mail` on a user deletion.
fn query_flag(query: &str, method: Method, segs: &[&str]) -> Result<bool, ApiError> {
    let mut keep = false;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, "true"));
        match (k, method, segs) {
            ("keep_mail", Method::Delete, ["users", _]) => {
                keep = match v {
                    "true" | "1" => true,
                    "false" | "0" => false,
                    _ => {
                        return Err(ApiError::bad(format!(
                            "keep_mail={v:?} is not true or false"
                        )))
                    }
                }
            }
            _ => return Err(ApiError::bad(format!("unknown query parameter {k:?}"))),
        }
    }
    Ok(keep)
}

/// A JSON body of type `T`: 400 when it does not parse or has a wrong or
/// unknown field.
pub fn json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    if body.is_empty() {
        return Err(ApiError::bad("the request needs a JSON body"));
    }
    serde_json::from_slice(body).map_err(|e| ApiError::bad(format!("bad JSON: {e}")))
}

/// A domain named in a path.
fn domain(s: &str) -> Result<String, ApiError> {
    normalize_domain(s).map_err(|e| ApiError::bad(e.to_string()))
}

/// An address the API accepts: no quoted local part and no source-routing
/// characters (`%`, `!`), which some mail systems would send to another
/// domain than the one the address names.
pub fn address(s: &str) -> Result<Address, ApiError> {
    let local = s.rsplit_once('@').map(|(l, _)| l).unwrap_or(s);
    if let Some(c) = local.chars().find(|c| matches!(c, '%' | '!' | '"' | '\\')) {
        return Err(ApiError::bad(format!(
            "{s:?}: the character {c:?} is not accepted in a local part here \
             (quoted local parts and source routes could name another domain)"
        )));
    }
    if s.matches('@').count() != 1 {
        return Err(ApiError::bad(format!("{s:?} is not local@domain")));
    }
    Address::parse(s).map_err(|e| ApiError::bad(e.to_string()))
}

/// An alias name: an address, or `@domain` for the catch-all.
fn alias(s: &str) -> Result<Address, ApiError> {
    match s.strip_prefix('@') {
        Some(d) => Address::parse_alias(&format!("@{}", domain(d)?))
            .map_err(|e| ApiError::bad(e.to_string())),
        None => address(s),
    }
}

fn addresses(list: &[String]) -> Result<Vec<Address>, ApiError> {
    if list.len() > MAX_TARGETS {
        return Err(ApiError::new(
            413,
            format!("at most {MAX_TARGETS} addresses in one request"),
        ));
    }
    list.iter().map(|t| address(t)).collect()
}

/// Decodes `%XX` in a path segment; a bad escape or a result that is not
/// UTF-8 (or holds a `/` or NUL) is refused.
fn percent_decode(s: &str) -> Result<String, ApiError> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = b
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| ApiError::bad("a bad %-escape in the path"))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    let s = String::from_utf8(out).map_err(|_| ApiError::bad("the path is not UTF-8"))?;
    if s.contains(['/', '\0']) {
        return Err(ApiError::bad("a path segment may not hold / or NUL"));
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use Method::*;

    fn status(m: Method, t: &str, b: &str) -> u16 {
        match parse(m, t, b.as_bytes()) {
            Ok(_) => 200,
            Err(e) => e.status,
        }
    }

    #[test]
    fn routes_and_bodies() {
        assert_eq!(
            parse(Get, "/v1/domains/A.Example.", b"").unwrap(),
            Call::Domain("a.example".into())
        );
        match parse(
            Post,
            "/v1/users",
            br#"{"address":"Bob@A.example","quota_bytes":5}"#,
        )
        .unwrap()
        {
            Call::UserAdd { address, body } => {
                assert_eq!(address.to_string(), "Bob@a.example");
                assert_eq!(body.quota_bytes, Some(5));
            }
            c => panic!("{c:?}"),
        }
        assert_eq!(
            parse(Delete, "/v1/users/bob%40a.example?keep_mail=true", b"").unwrap(),
            Call::UserDel {
                address: Address::parse("bob@a.example").unwrap(),
                keep_mail: true
            }
        );
        match parse(Delete, "/v1/aliases/@a.example", b"").unwrap() {
            Call::AliasDel { alias, targets } => {
                assert!(alias.is_catch_all());
                assert!(targets.is_empty());
            }
            c => panic!("{c:?}"),
        }
    }

    #[test]
    fn malformed_requests_get_the_right_status() {
        let table: &[(Method, &str, &str, u16)] = &[
            (Post, "/v1/login", "", 400),
            (Post, "/v1/login", "{", 400),
            (Post, "/v1/login", r#"{"user":"a@b.c"}"#, 400),
            (
                Post,
                "/v1/login",
                r#"{"user":"a@b.c","password":"x","extra":1}"#,
                400,
            ),
            (Post, "/v1/login", r#"{"user":5,"password":"x"}"#, 400),
            (
                Post,
                "/v1/users",
                r#"{"address":"a@b.c","quota_bytes":"1G"}"#,
                400,
            ),
            (
                Post,
                "/v1/users",
                r#"{"address":"a@b.c","quota_bytes":-1}"#,
                400,
            ),
            (Patch, "/v1/users/a@b.c", "{}", 400),
            (Patch, "/v1/users/a@b.c", r#"{"state":"gone"}"#, 400),
            (Patch, "/v1/domains/b.c", r#"{"max_users":1.5}"#, 400),
            (
                Post,
                "/v1/aliases",
                r#"{"alias":"x@b.c","targets":[]}"#,
                400,
            ),
            (Get, "/v1/users/a%b.c@a.example", "", 400),
            (Get, "/v1/users/a%25b.c@a.example", "", 400),
            (Get, "/v1/users/%22a@b%22@a.example", "", 400),
            (Get, "/v1/users/a!b@a.example", "", 400),
            (Get, "/v1/users/a@b@a.example", "", 400),
            (Get, "/v1/users/a%2Fb@a.example", "", 400),
            (Get, "/v1/domains?x=1", "", 400),
            (Get, "/v1/nothing", "", 404),
            (Get, "/v2/domains", "", 404),
            (Delete, "/v1/domains", "", 405),
            (Other, "/v1/whoami", "", 405),
            (Get, "/v1/whoami", "", 200),
            (
                Post,
                "/v1/domains/a.example/announcements",
                r#"{"subject":"维护","text":"今晚"}"#,
                200,
            ),
            (
                Post,
                "/v1/domains/a.example/announcements",
                r#"{"subject":"","text":"x"}"#,
                400,
            ),
            (
                Post,
                "/v1/domains/a.example/announcements",
                r#"{"subject":"a\nBcc: x@y.z","text":"x"}"#,
                400,
            ),
            (
                Post,
                "/v1/domains/a.example/announcements",
                r#"{"subject":"s","text":"x","to":"all"}"#,
                400,
            ),
            (Get, "/v1/domains/a.example/announcements", "", 405),
        ];
        for (m, t, b, want) in table {
            assert_eq!(status(*m, t, b), *want, "{m:?} {t} {b}");
        }
        let many: Vec<String> = (0..101).map(|i| format!("\"t{i}@b.c\"")).collect();
        let body = format!(r#"{{"alias":"x@b.c","targets":[{}]}}"#, many.join(","));
        assert_eq!(status(Post, "/v1/aliases", &body), 413);
        assert_eq!(status(Get, &format!("/v1/{}", "a".repeat(3000)), ""), 414);
    }

    /// The fuzz target's properties over mutations of valid requests
    /// (a deterministic generator, so it runs in every `cargo test`).
    #[test]
    fn mutated_requests_never_panic_and_stay_normalised() {
        let seeds: &[(Method, &str, &str)] = &[
            (
                Post,
                "/v1/users",
                r#"{"address":"Bob@A.example","password":"x"}"#,
            ),
            (
                Patch,
                "/v1/users/bob@a.example",
                r#"{"forwards":["x@b.c"],"keep_copy":true}"#,
            ),
            (
                Post,
                "/v1/aliases",
                r#"{"alias":"@a.example","targets":["b@c.d"]}"#,
            ),
            (
                Patch,
                "/v1/domains/a.example",
                r#"{"max_users":3,"services":["imap"]}"#,
            ),
            (Delete, "/v1/users/%62ob@a.example?keep_mail=true", ""),
        ];
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let alphabet = b"%@.!\"\\/?&=:{}[],0123456789aAzZ-\xd0\xb0 \n";
        for (m, t, b) in seeds {
            for _ in 0..2000 {
                let mut target = t.as_bytes().to_vec();
                let mut body = b.as_bytes().to_vec();
                for _ in 0..3 {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    let which = if x & 1 == 0 { &mut target } else { &mut body };
                    if which.is_empty() {
                        continue;
                    }
                    let i = (x >> 8) as usize % which.len();
                    which[i] = alphabet[(x >> 32) as usize % alphabet.len()];
                }
                let Ok(target) = String::from_utf8(target) else {
                    continue;
                };
                let Ok(call) = parse(*m, &target, &body) else {
                    continue;
                };
                let domain = match &call {
                    Call::Domain(d) | Call::DomainSet(d, _) | Call::Users(d) => d.clone(),
                    Call::UserAdd { address: a, .. }
                    | Call::UserSet { address: a, .. }
                    | Call::UserDel { address: a, .. }
                    | Call::AliasAdd { alias: a, .. } => {
                        assert!(!a.local().contains(['%', '!', '"', '\\']), "{call:?}");
                        a.domain().to_string()
                    }
                    _ => continue,
                };
                assert_eq!(domain, domain.to_ascii_lowercase(), "{call:?}");
                assert!(!domain.ends_with('.') && domain.is_ascii(), "{call:?}");
            }
        }
    }

    #[test]
    fn look_alike_domains_stay_apart() {
        // Cyrillic a: another domain, in its A-label form.
        let c = parse(Get, "/v1/domains/%D0%B0.example", b"").unwrap();
        assert_ne!(c, Call::Domain("a.example".into()));
        match c {
            Call::Domain(d) => assert!(d.starts_with("xn--"), "{d}"),
            c => panic!("{c:?}"),
        }
    }
}
