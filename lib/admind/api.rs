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
//! | * | /v1/users/A/fetch... | | A's fetch accounts: [`super::fetch`] |
//! | GET, POST | /v1/signup | | sign-up, without a login: [`super::signup`] |
//! | POST | /v1/lists | [`ListAdd`] | a new list (postmasters; users where the domain allows) |
//! | PATCH, DELETE | /v1/lists/A | [`ListPatch`] | a list's settings; the list (postmasters) |
//! | GET | /v1/lists/A/members | `?offset=N&limit=M` | members, in address order |
//! | POST | /v1/lists/A/members | [`MembersAdd`] | new members (no confirmation) |
//! | PATCH, DELETE | /v1/lists/A/members/M | [`MemberPatch`] | a member's options; the member |
//! | GET | /v1/lists/A/held | — | held posts, oldest first |
//! | GET | /v1/lists/A/held/ID | — | one held post, its text decoded |
//! | POST | /v1/lists/A/held/ID/approve | — | sends it on to the list |
//! | POST | /v1/lists/A/held/ID/reject | optional `{"reason"}` | drops it; the reason goes to the sender |
//!
//! The list calls that read or change members and held posts are performed
//! by kmp-local (see [`super::lists`]).

use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::admin::DomainPatch;
use crate::lists::{NonMember, Policy};
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

/// `POST /v1/lists`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListAdd {
    pub address: String,
    #[serde(default)]
    pub description: Option<String>,
    /// Default: the caller.
    #[serde(default)]
    pub owners: Option<Vec<String>>,
    #[serde(default)]
    pub moderators: Option<Vec<String>>,
    #[serde(default)]
    pub policy: Option<Policy>,
}

/// `PATCH /v1/lists/A`: what is given changes. The list's owners may
/// change all but `owners` (postmasters only).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListPatch {
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub policy: Option<Policy>,
    #[serde(default)]
    pub non_member: Option<NonMember>,
    #[serde(default)]
    pub moderators: Option<Vec<String>>,
    #[serde(default)]
    pub posters: Option<Vec<String>>,
    #[serde(default)]
    pub subject_prefix: Option<String>,
    #[serde(default)]
    pub footer: Option<String>,
    /// The largest post in bytes (0: the system's limit); never above the
    /// domain's message size ceiling.
    #[serde(default)]
    pub max_size: Option<u64>,
    #[serde(default)]
    pub subscribe_approval: Option<bool>,
    /// Whether members may ask for digests.
    #[serde(default)]
    pub digest: Option<bool>,
    #[serde(default)]
    pub owners: Option<Vec<String>>,
}

/// `POST /v1/lists/A/members`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MembersAdd {
    pub addresses: Vec<String>,
    #[serde(default)]
    pub digest: bool,
}

/// `PATCH /v1/lists/A/members/M`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemberPatch {
    #[serde(default)]
    pub digest: Option<bool>,
    #[serde(default)]
    pub nomail: Option<bool>,
}

/// The body of `POST /v1/lists/A/held/ID/reject`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reject {
    #[serde(default)]
    pub reason: String,
}

/// The longest description or subject prefix (one line).
pub const MAX_LIST_TEXT: usize = 200;
/// The longest footer.
pub const MAX_FOOTER: usize = 4096;
/// The longest rejection reason.
pub const MAX_REASON: usize = 500;
/// The most members one page shows.
pub const MAX_PAGE: u64 = crate::ipc::listreq::MAX_PAGE;

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
    /// A user's fetch accounts.
    Fetch(super::fetch::FetchCall),
    /// The domains open for sign-up (no login).
    SignupDomains,
    /// A sign-up (no login).
    Signup(Address, super::signup::SignupBody),
    ListAdd {
        address: Address,
        body: ListAdd,
        owners: Option<Vec<Address>>,
        moderators: Vec<Address>,
    },
    ListSet {
        address: Address,
        patch: ListPatch,
    },
    ListDel(Address),
    Members {
        list: Address,
        offset: u64,
        limit: u64,
    },
    MembersAdd {
        list: Address,
        members: Vec<Address>,
        digest: bool,
    },
    MemberSet {
        list: Address,
        member: Address,
        patch: MemberPatch,
    },
    MemberDel {
        list: Address,
        member: Address,
    },
    Held(Address),
    HeldShow {
        list: Address,
        id: String,
    },
    HeldApprove {
        list: Address,
        id: String,
    },
    HeldReject {
        list: Address,
        id: String,
        reason: String,
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
            Call::Fetch(f) => f.name(),
            Call::SignupDomains => "signup.domains",
            Call::Signup(..) => "signup",
            Call::ListAdd { .. } => "list.add",
            Call::ListSet { .. } => "list.set",
            Call::ListDel(_) => "list.del",
            Call::Members { .. } => "list.members",
            Call::MembersAdd { .. } => "list.subscribe",
            Call::MemberSet { .. } => "list.member",
            Call::MemberDel { .. } => "list.unsubscribe",
            Call::Held(_) => "list.held",
            Call::HeldShow { .. } => "list.held.show",
            Call::HeldApprove { .. } => "list.approve",
            Call::HeldReject { .. } => "list.reject",
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
                | Call::ListAdd { .. }
                | Call::ListSet { .. }
                | Call::ListDel(_)
                | Call::MembersAdd { .. }
                | Call::MemberSet { .. }
                | Call::MemberDel { .. }
                | Call::HeldApprove { .. }
                | Call::HeldReject { .. }
                | Call::Announce { .. }
        ) || matches!(self, Call::Fetch(f) if f.is_change())
            || matches!(self, Call::Signup(..))
    }

    /// The list a list call is about.
    pub fn list(&self) -> Option<&Address> {
        match self {
            Call::List(a)
            | Call::ListAdd { address: a, .. }
            | Call::ListSet { address: a, .. }
            | Call::ListDel(a)
            | Call::Members { list: a, .. }
            | Call::MembersAdd { list: a, .. }
            | Call::MemberSet { list: a, .. }
            | Call::MemberDel { list: a, .. }
            | Call::Held(a)
            | Call::HeldShow { list: a, .. }
            | Call::HeldApprove { list: a, .. }
            | Call::HeldReject { list: a, .. } => Some(a),
            _ => None,
        }
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
            Call::MemberSet { list, member, .. } | Call::MemberDel { list, member } => {
                format!("{list} {member}")
            }
            Call::HeldShow { list, id }
            | Call::HeldApprove { list, id }
            | Call::HeldReject { list, id, .. } => format!("{list} {id}"),
            Call::ListAdd { address: a, .. }
            | Call::ListSet { address: a, .. }
            | Call::ListDel(a)
            | Call::Members { list: a, .. }
            | Call::MembersAdd { list: a, .. }
            | Call::Held(a) => a.to_string(),
            Call::Login(l) => l.user.clone(),
            Call::Logout | Call::Whoami | Call::Domains => "-".into(),
            Call::Fetch(f) => f.object(),
            Call::Signup(a, _) => a.to_string(),
            Call::SignupDomains => "-".into(),
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
    let q = query_flags(query, method, &segs)?;
    let keep_mail = q.keep_mail;
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
        (["signup"], Get) => Call::SignupDomains,
        (["signup"], Post) => {
            let (a, b) = super::signup::parse(body)?;
            Call::Signup(a, b)
        }
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
        (["lists"], Post) => {
            let body: ListAdd = json(body)?;
            if let Some(d) = &body.description {
                one_line("description", d)?;
            }
            let owners = body.owners.as_deref().map(addresses).transpose()?;
            let moderators = addresses(body.moderators.as_deref().unwrap_or(&[]))?;
            Call::ListAdd {
                address: address(&body.address)?,
                body,
                owners,
                moderators,
            }
        }
        (["lists", a], Patch) => {
            let patch: ListPatch = json(body)?;
            if patch == ListPatch::default() {
                return Err(ApiError::bad("nothing to change"));
            }
            check_list_patch(&patch)?;
            Call::ListSet {
                address: address(a)?,
                patch,
            }
        }
        (["lists", a], Delete) => Call::ListDel(address(a)?),
        (["lists", a, "members"], Get) => Call::Members {
            list: address(a)?,
            offset: q.offset,
            limit: q.limit,
        },
        (["lists", a, "members"], Post) => {
            let b: MembersAdd = json(body)?;
            if b.addresses.is_empty() {
                return Err(ApiError::bad("no addresses to add"));
            }
            Call::MembersAdd {
                list: address(a)?,
                members: addresses(&b.addresses)?,
                digest: b.digest,
            }
        }
        (["lists", a, "members", m], Patch) => {
            let patch: MemberPatch = json(body)?;
            if patch == MemberPatch::default() {
                return Err(ApiError::bad("nothing to change"));
            }
            Call::MemberSet {
                list: address(a)?,
                member: address(m)?,
                patch,
            }
        }
        (["lists", a, "members", m], Delete) => Call::MemberDel {
            list: address(a)?,
            member: address(m)?,
        },
        (["lists", a, "held"], Get) => Call::Held(address(a)?),
        (["lists", a, "held", id], Get) => Call::HeldShow {
            list: address(a)?,
            id: held_id(id)?,
        },
        (["lists", a, "held", id, "approve"], Post) => Call::HeldApprove {
            list: address(a)?,
            id: held_id(id)?,
        },
        (["lists", a, "held", id, "reject"], Post) => {
            let r: Reject = if body.iter().all(u8::is_ascii_whitespace) {
                Reject::default()
            } else {
                json(body)?
            };
            if r.reason.len() > MAX_REASON {
                return Err(ApiError::bad(format!(
                    "a reason has at most {MAX_REASON} bytes"
                )));
            }
            Call::HeldReject {
                list: address(a)?,
                id: held_id(id)?,
                reason: r.reason.split_whitespace().collect::<Vec<_>>().join(" "),
            }
        }
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
        (["users", a, "fetch", rest @ ..], m) => {
            Call::Fetch(super::fetch::parse(m, address(a)?, rest, body)?)
        }
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
            | ["signup"]
            | ["whoami"]
            | ["domains"]
            | ["domains", _]
            | ["domains", _, "usage" | "users" | "aliases" | "lists" | "announcements"]
            | ["lists"]
            | ["lists", _]
            | ["lists", _, "members" | "held"]
            | ["lists", _, "members" | "held", _]
            | ["lists", _, "held", _, "approve" | "reject"]
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

/// The query parameters a request may have.
struct Query {
    keep_mail: bool,
    offset: u64,
    limit: u64,
}

/// The query parameters the API takes: `keep_mail` on a user deletion,
/// `offset` and `limit` on a list's members.
fn query_flags(query: &str, method: Method, segs: &[&str]) -> Result<Query, ApiError> {
    let mut q = Query {
        keep_mail: false,
        offset: 0,
        limit: 100,
    };
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, "true"));
        match (k, method, segs) {
            ("offset" | "limit", Method::Get, ["lists", _, "members"]) => {
                let n: u64 = v
                    .parse()
                    .map_err(|_| ApiError::bad(format!("{k}={v:?} is not a number")))?;
                if k == "offset" {
                    q.offset = n;
                } else if n == 0 || n > MAX_PAGE {
                    return Err(ApiError::bad(format!("limit is 1 to {MAX_PAGE}")));
                } else {
                    q.limit = n;
                }
            }
            ("keep_mail", Method::Delete, ["users", _]) => {
                q.keep_mail = match v {
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
    Ok(q)
}

/// A held post's id in a path.
fn held_id(s: &str) -> Result<String, ApiError> {
    if crate::lists::held::valid_id(s) {
        Ok(s.to_string())
    } else {
        Err(ApiError::bad(format!("{s:?} is not a held post id")))
    }
}

/// A one-line text of a list (it goes into header fields).
fn one_line(what: &str, v: &str) -> Result<(), ApiError> {
    if v.chars().any(char::is_control) || v.len() > MAX_LIST_TEXT {
        return Err(ApiError::bad(format!(
            "{what}: one line of at most {MAX_LIST_TEXT} bytes, without control characters"
        )));
    }
    Ok(())
}

/// The form of a list patch's values.
fn check_list_patch(p: &ListPatch) -> Result<(), ApiError> {
    if let Some(d) = &p.description {
        one_line("description", d)?;
    }
    if let Some(d) = &p.subject_prefix {
        one_line("subject_prefix", d)?;
    }
    if let Some(f) = &p.footer {
        if f.len() > MAX_FOOTER
            || f.chars()
                .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
        {
            return Err(ApiError::bad(format!(
                "footer: at most {MAX_FOOTER} bytes of text"
            )));
        }
    }
    for set in [&p.moderators, &p.posters, &p.owners].into_iter().flatten() {
        addresses(set)?;
    }
    Ok(())
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
            (Get, "/v1/lists/a@b.c/members?limit=5&offset=10", "", 200),
            (Get, "/v1/lists/a@b.c/members?limit=0", "", 400),
            (Get, "/v1/lists/a@b.c/members?limit=1001", "", 400),
            (Get, "/v1/lists/a@b.c/members?offset=-1", "", 400),
            (Get, "/v1/lists/a@b.c/held?limit=5", "", 400),
            (Patch, "/v1/lists/a@b.c", "{}", 400),
            (Patch, "/v1/lists/a@b.c", r#"{"policy":"everyone"}"#, 400),
            (Patch, "/v1/lists/a@b.c", r#"{"description":"a\nb"}"#, 400),
            (
                Patch,
                "/v1/lists/a@b.c",
                r#"{"moderators":["a%b@c.d"]}"#,
                400,
            ),
            (
                Patch,
                "/v1/lists/a@b.c",
                r#"{"footer":"bye\nnow","max_size":5}"#,
                200,
            ),
            (Post, "/v1/lists/a@b.c/held/..x/approve", "", 400),
            (Post, "/v1/lists/a@b.c/held/Q1.2/reject", "", 200),
            (
                Post,
                "/v1/lists/a@b.c/held/Q1.2/reject",
                r#"{"reason":"no"}"#,
                200,
            ),
            (
                Post,
                "/v1/lists/a@b.c/held/Q1.2/reject",
                r#"{"why":"no"}"#,
                400,
            ),
            (Delete, "/v1/lists/a@b.c/held", "", 405),
            (Post, "/v1/lists/a@b.c/members", r#"{"addresses":[]}"#, 400),
            (
                Post,
                "/v1/lists/a@b.c/members",
                r#"{"addresses":["x!y@b.c"]}"#,
                400,
            ),
            (Delete, "/v1/lists/a@b.c/members/x@y.z", "", 200),
            (
                Post,
                "/v1/lists",
                r#"{"address":"l@b.c","policy":"open"}"#,
                200,
            ),
            (
                Post,
                "/v1/lists",
                r#"{"address":"l@b.c","owner":"x@b.c"}"#,
                400,
            ),
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
