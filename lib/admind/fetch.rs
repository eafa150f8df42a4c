//! A user's fetch accounts through kmp-admind: the webmail's fetch page and
//! any other client of the API. The calls, below `/v1/users/A/fetch`:
//!
//! | method | path | body | what |
//! |---|---|---|---|
//! | GET | /v1/users/A/fetch | — | A's accounts, each with kmp-fetch's last result |
//! | POST | /v1/users/A/fetch | [`FetchBody`] with `name` and `password` | a new account |
//! | GET, PATCH, DELETE | /v1/users/A/fetch/NAME | [`FetchBody`] | one account |
//! | POST | /v1/users/A/fetch/NAME/test | — | connect and log in, fetch nothing |
//! | POST | /v1/users/A/fetch/NAME/run | — | fetch now; the run's result |
//!
//! A user reaches their own accounts only (the owner is the path's
//! address, compared by its database key, and an account is found under
//! that owner's key alone, so no name or id reaches another's); a
//! postmaster their domain's users', an administrator everyone's. A domain
//! whose services exclude `fetch` gets 403.
//!
//! The records are made by the functions `kmpctl fetch` uses
//! ([`crate::ctl::fetch::build`], [`crate::ctl::fetch::apply`]): the remote
//! password is sealed to kmp-fetch's public key (`fetch.public_key`, which
//! kmp-admind can read; the private key it cannot), then the database's
//! writer checks the per-user (`fetch.max_accounts_per_user`) and
//! per-domain (`max_fetch_accounts`) limits: 409. Test, run and the last
//! results go over kmp-fetch's control socket (`RUN/fetch.sock`, group
//! kmpromail, which kmpadm is in); when kmp-fetch is not running, the list
//! says so and test and run answer 503.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{json, Value};

use super::api::{ApiError, Method};
use super::authz::Caller;
use super::handlers::db_error;
use crate::config::Config;
use crate::ctl::fetch::{apply, build, Settings as Form};
use crate::ctl::CtlError;
use crate::fetch::seal::{PublicKey, MAX_PASSWORD};
use crate::ipc::fetch::{self as ipc, AccountStatus, FetchAccount, Reply};
use crate::proto::sasl::Secret;
use crate::userdb::limits::Access;
use crate::userdb::lmdb::Lmdb;
use crate::userdb::{Address, Directory};

/// How long a test or a run may take before kmp-admind gives up waiting.
const RUN_WAIT: Duration = Duration::from_secs(120);
/// How long kmp-fetch may take to give the status.
const STATUS_WAIT: Duration = Duration::from_secs(10);

/// What kmp-admind needs of the fetch agent's configuration.
#[derive(Debug, Clone)]
pub struct FetchSettings {
    /// `fetch.public_key`.
    pub public_key: PathBuf,
    /// kmp-fetch's control socket.
    pub socket: PathBuf,
    /// `fetch.max_accounts_per_user` (0: none).
    pub max_per_user: usize,
}

impl FetchSettings {
    pub fn from_config(cfg: &Config) -> FetchSettings {
        FetchSettings {
            public_key: cfg.path_of("fetch.public_key"),
            socket: crate::fetch::socket(&crate::paths::Paths::new(cfg)),
            max_per_user: cfg.usize("fetch.max_accounts_per_user"),
        }
    }
}

/// The body of an add or a change: what is given is set. The names and
/// forms are `kmpctl fetch add`'s options.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FetchBody {
    /// The account's name (add only; it names the default folder too).
    #[serde(default)]
    pub name: Option<String>,
    /// `pop3` or `imap`.
    #[serde(default)]
    pub protocol: Option<String>,
    #[serde(default)]
    pub host: Option<String>,
    #[serde(default)]
    pub port: Option<u16>,
    /// `implicit`, `starttls` or `none`.
    #[serde(default)]
    pub tls: Option<String>,
    /// Check the server's certificate.
    #[serde(default)]
    pub verify: Option<bool>,
    #[serde(default)]
    pub username: Option<String>,
    /// The remote password (sealed at once; never answered back).
    #[serde(default)]
    pub password: Option<String>,
    /// IMAP folders to collect from.
    #[serde(default)]
    pub folders: Option<Vec<String>>,
    /// The local folder (empty: the account's name).
    #[serde(default)]
    pub target: Option<String>,
    /// `keep`, `delete` or `delete-after-N`.
    #[serde(default)]
    pub keep: Option<String>,
    /// Time between polls, e.g. `10m`.
    #[serde(default)]
    pub interval: Option<String>,
    #[serde(default)]
    pub enabled: Option<bool>,
}

impl FetchBody {
    /// The same change as `kmpctl fetch` options.
    fn form(&self) -> Form {
        Form {
            protocol: self.protocol.clone(),
            host: self.host.clone(),
            port: self.port,
            tls: self.tls.clone(),
            no_verify: self.verify == Some(false),
            verify: self.verify == Some(true),
            username: self.username.clone(),
            folders: self.folders.clone().unwrap_or_default(),
            target: self.target.clone(),
            keep: self.keep.clone(),
            interval: self.interval.clone(),
            disable: self.enabled == Some(false),
            enable: self.enabled == Some(true),
        }
    }
}

/// One fetch-account call. The owner is the address in the path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchCall {
    List(Address),
    Add(Address, Box<FetchBody>),
    Show(Address, String),
    Set(Address, String, Box<FetchBody>),
    Del(Address, String),
    Test(Address, String),
    Run(Address, String),
}

impl FetchCall {
    /// The user whose accounts it touches.
    pub fn owner(&self) -> &Address {
        match self {
            FetchCall::List(a)
            | FetchCall::Add(a, _)
            | FetchCall::Show(a, _)
            | FetchCall::Set(a, ..)
            | FetchCall::Del(a, _)
            | FetchCall::Test(a, _)
            | FetchCall::Run(a, _) => a,
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            FetchCall::List(_) => "fetch.list",
            FetchCall::Add(..) => "fetch.add",
            FetchCall::Show(..) => "fetch.show",
            FetchCall::Set(..) => "fetch.set",
            FetchCall::Del(..) => "fetch.del",
            FetchCall::Test(..) => "fetch.test",
            FetchCall::Run(..) => "fetch.run",
        }
    }

    pub fn is_change(&self) -> bool {
        matches!(
            self,
            FetchCall::Add(..) | FetchCall::Set(..) | FetchCall::Del(..)
        )
    }

    /// `owner/name` for log lines.
    pub fn object(&self) -> String {
        match self {
            FetchCall::List(a) => a.to_string(),
            FetchCall::Add(a, b) => format!("{a}/{}", b.name.as_deref().unwrap_or("")),
            FetchCall::Show(a, n)
            | FetchCall::Set(a, n, _)
            | FetchCall::Del(a, n)
            | FetchCall::Test(a, n)
            | FetchCall::Run(a, n) => format!("{a}/{n}"),
        }
    }
}

/// Parses what follows `/v1/users/A/fetch` (`rest`, decoded segments).
pub fn parse(
    method: Method,
    owner: Address,
    rest: &[&str],
    body: &[u8],
) -> Result<FetchCall, ApiError> {
    use Method::*;
    let name = |n: &str| -> Result<String, ApiError> {
        ipc::check_name(n).map_err(ApiError::bad)?;
        Ok(n.to_string())
    };
    let fetch_body = |body: &[u8]| -> Result<FetchBody, ApiError> {
        let b: FetchBody = super::api::json(body)?;
        if b.password.as_ref().is_some_and(|p| p.len() > MAX_PASSWORD) {
            return Err(ApiError::bad(format!(
                "the password must be 1 to {MAX_PASSWORD} bytes"
            )));
        }
        Ok(b)
    };
    let not_allowed = || ApiError::new(405, format!("{method:?} is not allowed there"));
    Ok(match (rest, method) {
        ([], Get) => FetchCall::List(owner),
        ([], Post) => {
            let b = fetch_body(body)?;
            let n = b
                .name
                .as_deref()
                .ok_or_else(|| ApiError::bad("a new account needs a name"))?;
            name(n)?;
            if b.password.as_deref().is_none_or(str::is_empty) {
                return Err(ApiError::bad("a new account needs the remote password"));
            }
            FetchCall::Add(owner, Box::new(b))
        }
        ([n], Get) => FetchCall::Show(owner, name(n)?),
        ([n], Patch) => {
            let b = fetch_body(body)?;
            if b.name.as_deref().is_some_and(|x| x != *n) {
                return Err(ApiError::bad(
                    "an account cannot be renamed: add a new one and delete this one",
                ));
            }
            let nothing = FetchBody {
                name: b.name.clone(),
                ..FetchBody::default()
            };
            if b == nothing {
                return Err(ApiError::bad("nothing to change"));
            }
            if b.password.as_deref() == Some("") {
                return Err(ApiError::bad(
                    "an empty password: leave it out to keep the old one",
                ));
            }
            FetchCall::Set(owner, name(n)?, Box::new(b))
        }
        ([n], Delete) => FetchCall::Del(owner, name(n)?),
        ([n, "test"], Post) => FetchCall::Test(owner, name(n)?),
        ([n, "run"], Post) => FetchCall::Run(owner, name(n)?),
        ([] | [_] | [_, "test" | "run"], _) => return Err(not_allowed()),
        _ => return Err(ApiError::new(404, "no such fetch resource")),
    })
}

/// Performs an authorised call.
pub fn execute(
    db: &Lmdb,
    s: &FetchSettings,
    _c: &Caller,
    call: FetchCall,
) -> Result<Value, ApiError> {
    // The user's record spells the owner as every account of theirs does
    // (the sealed passwords are bound to that spelling).
    let owner = match db.user(call.owner()).map_err(db_error)? {
        Some(u) => Address::parse(&u.address).map_err(|e| db_error(e.into()))?,
        None => return Err(ApiError::new(404, format!("no user {}", call.owner()))),
    };
    service_allowed(db, &owner)?;
    match call {
        FetchCall::List(_) => {
            let accounts = db.fetch_accounts(Some(&owner)).map_err(db_error)?;
            let (statuses, running) = match statuses(s, &owner) {
                Some(st) => (st, true),
                None => (Vec::new(), false),
            };
            let list: Vec<Value> = accounts
                .iter()
                .map(|a| {
                    let st = statuses.iter().find(|st| st.name == a.name);
                    account_json(a, st)
                })
                .collect();
            Ok(json!({"owner": owner.to_string(), "agent_running": running, "accounts": list}))
        }
        FetchCall::Show(_, name) => {
            let a = get(db, &owner, &name)?;
            let st = statuses(s, &owner).unwrap_or_default();
            Ok(account_json(&a, st.iter().find(|st| st.name == a.name)))
        }
        FetchCall::Add(_, body) => {
            let name = body.name.clone().unwrap_or_default();
            let password = Secret::from(body.password.clone().unwrap_or_default());
            let key = public_key(s)?;
            let mut form = body.form();
            form.folders.retain(|f| !f.is_empty());
            let a = build(
                &owner,
                &name,
                &form,
                &password,
                &key,
                crate::clock::Clock::System.now(),
            )
            .map_err(ctl_error)?;
            db.put_fetch_account(&a, false, s.max_per_user)
                .map_err(db_error)?;
            reload(s);
            Ok(json!({"added": account_json(&a, None)}))
        }
        FetchCall::Set(_, name, body) => {
            let mut a = get(db, &owner, &name)?;
            apply(&mut a, &body.form()).map_err(ctl_error)?;
            if let Some(pw) = body.password.as_deref() {
                let key = public_key(s)?;
                a.password = key
                    .seal(pw.as_bytes(), &owner.to_string())
                    .map_err(|e| ApiError::bad(e.to_string()))?;
            }
            a.check().map_err(ApiError::bad)?;
            db.put_fetch_account(&a, true, 0).map_err(db_error)?;
            reload(s);
            Ok(json!({"changed": account_json(&a, None)}))
        }
        FetchCall::Del(_, name) => {
            let a = db.del_fetch_account(&owner, &name).map_err(db_error)?;
            reload(s);
            Ok(json!({"deleted": {"owner": a.owner, "name": a.name}}))
        }
        FetchCall::Test(_, name) => {
            let a = get(db, &owner, &name)?;
            match ipc::call(&s.socket, ipc::Request::Test { account: a }, RUN_WAIT) {
                Ok(Reply::Tested { messages, detail }) => {
                    Ok(json!({"ok": true, "messages": messages, "detail": detail}))
                }
                Ok(other) => Err(ApiError::new(502, format!("kmp-fetch answered {other:?}"))),
                // The server refused the login, or could not be reached:
                // that is the test's answer, not the API's failure.
                Err(ipc::ClientError::Refused {
                    temporary: false,
                    message,
                }) => Ok(json!({"ok": false, "error": message})),
                Err(e) => Err(fetch_unavailable(e)),
            }
        }
        FetchCall::Run(_, name) => {
            get(db, &owner, &name)?;
            let req = ipc::Request::Run {
                owner: owner.to_string(),
                name,
            };
            match ipc::call(&s.socket, req, RUN_WAIT) {
                Ok(Reply::Ran { status }) => Ok(json!({"ok": status.error.is_empty(),
                    "status": status_json(Some(&status))})),
                Ok(other) => Err(ApiError::new(502, format!("kmp-fetch answered {other:?}"))),
                Err(ipc::ClientError::Refused {
                    temporary: false,
                    message,
                }) => Ok(json!({"ok": false, "error": message})),
                Err(e) => Err(fetch_unavailable(e)),
            }
        }
    }
}

/// 403 when the owner's domain does not allow the fetch agent.
fn service_allowed(db: &Lmdb, owner: &Address) -> Result<(), ApiError> {
    match db.domain(owner.domain()).map_err(db_error)? {
        Some(d) if !d.limits.allows(Access::Fetch) => Err(ApiError::new(
            403,
            format!("service fetch not allowed in domain {}", d.name),
        )),
        _ => Ok(()),
    }
}

fn get(db: &Lmdb, owner: &Address, name: &str) -> Result<FetchAccount, ApiError> {
    db.fetch_account(owner, name)
        .map_err(db_error)?
        .ok_or_else(|| ApiError::new(404, format!("no fetch account {name:?} of {owner}")))
}

fn public_key(s: &FetchSettings) -> Result<PublicKey, ApiError> {
    PublicKey::load(&s.public_key).map_err(|e| {
        crate::error!("fetch.public_key: {e}");
        ApiError::new(
            503,
            "the fetch agent's key cannot be read: ask the administrator",
        )
    })
}

/// kmp-fetch's last results of the owner's accounts; None when it is not running.
fn statuses(s: &FetchSettings, owner: &Address) -> Option<Vec<AccountStatus>> {
    let req = ipc::Request::Status {
        owner: owner.to_string(),
    };
    match ipc::call(&s.socket, req, STATUS_WAIT) {
        Ok(Reply::Status { accounts }) => Some(accounts),
        _ => None,
    }
}

/// Tells a running kmp-fetch to read the accounts again.
fn reload(s: &FetchSettings) {
    let _ = ipc::call(&s.socket, ipc::Request::Reload, Duration::from_secs(5));
}

fn fetch_unavailable(e: ipc::ClientError) -> ApiError {
    match e {
        ipc::ClientError::Unavailable(..) => {
            ApiError::new(503, "the fetch agent (kmp-fetch) is not running")
        }
        e => ApiError::new(503, e.to_string()),
    }
}

/// A kmpctl-level refusal as an HTTP status.
fn ctl_error(e: CtlError) -> ApiError {
    use crate::exit;
    let status = match e.code {
        exit::NOUSER => 404,
        exit::CANTCREAT => 409,
        exit::USAGE | exit::DATAERR => 400,
        exit::TEMPFAIL | exit::UNAVAILABLE | exit::CONFIG => 503,
        _ => 500,
    };
    // kmpctl's wording names options; the API's fields have the same names.
    ApiError::new(status, e.message.replace("--", ""))
}

/// An account as the API shows it: the sealed password left out.
pub fn account_json(a: &FetchAccount, st: Option<&AccountStatus>) -> Value {
    json!({
        "owner": a.owner,
        "name": a.name,
        "protocol": a.protocol.name(),
        "host": a.host,
        "port": a.port,
        "tls": a.tls.name(),
        "verify": a.verify,
        "username": a.username,
        "password_set": !a.password.is_empty(),
        "folders": a.folders,
        "target": a.target,
        "target_folder": a.target_folder(),
        "keep": a.keep.name(),
        "interval": a.interval,
        "enabled": a.enabled,
        "created": a.created,
        "status": status_json(st),
    })
}

fn status_json(st: Option<&AccountStatus>) -> Value {
    match st {
        None => Value::Null,
        Some(st) => json!({
            "last_run": st.last_run,
            "last_ok": st.last_ok,
            "error": st.error,
            "failures": st.failures,
            "next_run": st.next_run,
            "fetched": st.fetched,
            "deleted": st.deleted,
            "too_big": st.too_big,
            "total": st.total,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::super::api::{parse as api_parse, Call};
    use super::*;
    use Method::*;

    fn status(m: Method, t: &str, b: &str) -> u16 {
        match api_parse(m, t, b.as_bytes()) {
            Ok(_) => 200,
            Err(e) => e.status,
        }
    }

    #[test]
    fn routes() {
        match api_parse(Get, "/v1/users/U@A.example/fetch", b"").unwrap() {
            Call::Fetch(FetchCall::List(a)) => assert_eq!(a.domain(), "a.example"),
            c => panic!("{c:?}"),
        }
        match api_parse(
            Post,
            "/v1/users/u@a.example/fetch/%E6%96%B0%E6%B5%AA/run",
            b"",
        )
        .unwrap()
        {
            Call::Fetch(FetchCall::Run(_, n)) => assert_eq!(n, "新浪"),
            c => panic!("{c:?}"),
        }
        let table: &[(Method, &str, &str, u16)] = &[
            (
                Post,
                "/v1/users/u@a.example/fetch",
                r#"{"name":"x","protocol":"pop3","host":"h","username":"u","password":"p"}"#,
                200,
            ),
            (
                Post,
                "/v1/users/u@a.example/fetch",
                r#"{"name":"x","protocol":"pop3"}"#,
                400,
            ),
            (
                Post,
                "/v1/users/u@a.example/fetch",
                r#"{"protocol":"pop3","password":"p"}"#,
                400,
            ),
            (
                Post,
                "/v1/users/u@a.example/fetch",
                r#"{"name":"a.b","password":"p"}"#,
                400,
            ),
            (
                Post,
                "/v1/users/u@a.example/fetch",
                r#"{"name":"x","password":"p","secret":1}"#,
                400,
            ),
            (
                Post,
                "/v1/users/u@a.example/fetch",
                r#"{"name":"x","password":"p","port":"995"}"#,
                400,
            ),
            (Patch, "/v1/users/u@a.example/fetch/x", r#"{}"#, 400),
            (
                Patch,
                "/v1/users/u@a.example/fetch/x",
                r#"{"name":"y","port":1}"#,
                400,
            ),
            (Patch, "/v1/users/u@a.example/fetch/x", r#"{"port":1}"#, 200),
            (
                Patch,
                "/v1/users/u@a.example/fetch/x",
                r#"{"password":""}"#,
                400,
            ),
            (Delete, "/v1/users/u@a.example/fetch/x", "", 200),
            (Delete, "/v1/users/u@a.example/fetch", "", 405),
            (Get, "/v1/users/u@a.example/fetch/x/run", "", 405),
            (Get, "/v1/users/u@a.example/fetch/x/y/z", "", 404),
            (Get, "/v1/users/u%25b@a.example/fetch", "", 400),
            (Get, "/v1/users/u@a.example/fetch/..", "", 400),
        ];
        for (m, t, b, want) in table {
            assert_eq!(status(*m, t, b), *want, "{m:?} {t} {b}");
        }
    }

    #[test]
    fn the_sealed_password_is_never_shown() {
        let a = FetchAccount {
            owner: "u@a.example".into(),
            name: "x".into(),
            protocol: ipc::Protocol::Pop3,
            host: "h".into(),
            port: 995,
            tls: ipc::Tls::Implicit,
            verify: true,
            username: "u".into(),
            password: "k1:SEALED".into(),
            folders: vec![],
            target: String::new(),
            keep: ipc::Keep::Keep,
            interval: 0,
            enabled: true,
            created: 1,
        };
        let v = account_json(&a, None).to_string();
        assert!(!v.contains("SEALED"), "{v}");
        assert!(v.contains("\"password_set\":true"), "{v}");
    }
}
