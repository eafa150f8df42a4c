//! `kmpctl --remote https://host:port`: the domain, user and alias verbs
//! through kmp-admind instead of the local database, with the same output
//! (text and `--json`) and exit codes, within the caller's role.
//!
//! The client is `admin::client`, shared with the webmail's administration
//! pages. It logs in
//! with `--user` and the password from `--password-file` or the terminal,
//! and logs out when done. New passwords are hashed here, so only their
//! hash travels.

use std::io::{BufRead, IsTerminal, Read};
use std::path::{Path, PathBuf};

use clap::Args as ClapArgs;
use serde_json::{json, Value};
use zeroize::Zeroizing;

use super::output::{print_value, Table};
use super::{alias, domain, user, Command, CtlError, CtlResult, Ctx};
use crate::admin::client::{seg, ApiFailure, Client, SYSTEM_ROOTS};
use crate::exit;

/// The global options of remote administration.
#[derive(Debug, Clone, Default, ClapArgs)]
pub struct RemoteArgs {
    /// Administer the system behind kmp-admind at this URL
    /// (https://host:port) instead of the local database.
    #[arg(long, global = true, value_name = "URL")]
    pub remote: Option<String>,
    /// With --remote: the mail login to use.
    #[arg(
        long = "user",
        id = "remote_user",
        global = true,
        value_name = "ADDRESS",
        requires = "remote"
    )]
    pub user: Option<String>,
    /// With --remote: read the password from this file's first line
    /// (default: ask on the terminal).
    #[arg(long, global = true, value_name = "PATH", requires = "remote")]
    pub password_file: Option<PathBuf>,
    /// With --remote: the CA certificates (PEM) the server's certificate is
    /// checked against (default: the system's).
    #[arg(long, global = true, value_name = "PATH", requires = "remote")]
    pub ca_file: Option<PathBuf>,
}

/// Runs a verb through kmp-admind.
pub fn run(ctx: &Ctx, r: &RemoteArgs, url: &str, cmd: Command) -> CtlResult {
    let unsupported = |what: &str| {
        CtlError::new(
            exit::USAGE,
            format!("kmpctl --remote drives the domain, user and alias verbs only, not {what}"),
        )
    };
    // Refuse what cannot be done before asking for a password.
    match &cmd {
        Command::Domain(a) => match a.verb {
            domain::Verb::Add { .. } | domain::Verb::Del { .. } | domain::Verb::Admin { .. } => {
                return Err(unsupported("domain add, del or admin"))
            }
            _ => {}
        },
        Command::User(a) => match &a.verb {
            user::Verb::Pop3 { .. } => return Err(unsupported("user pop3")),
            user::Verb::Add {
                mail_path,
                reuse_mail,
                ..
            } if mail_path.is_some() || *reuse_mail => {
                return Err(unsupported("--mail-path or --reuse-mail"))
            }
            _ => {}
        },
        Command::Alias(_) => {}
        _ => return Err(unsupported("this command")),
    }
    let mut api = Api::login(url, r)?;
    let result = match cmd {
        Command::Domain(a) => domain_verb(ctx, &api, a.verb),
        Command::User(a) => user_verb(ctx, &api, a.verb),
        Command::Alias(a) => alias_verb(ctx, &api, a.verb),
        _ => Err(unsupported("this command")),
    };
    api.logout();
    result
}

fn domain_verb(ctx: &Ctx, api: &Api, v: domain::Verb) -> CtlResult {
    match v {
        domain::Verb::List => {
            let list = api.call("GET", "/v1/domains", None)?;
            let mut t = Table::new(&["domain", "unicode", "users", "aliases", "created"]);
            for d in list.as_array().into_iter().flatten() {
                t.push(vec![
                    text(&d["domain"]),
                    text(&d["unicode"]),
                    text(&d["users"]),
                    text(&d["aliases"]),
                    text(&d["created"]),
                ]);
            }
            t.print(ctx.json);
            Ok(())
        }
        domain::Verb::Show { domain } => {
            let v = api.call("GET", &format!("/v1/domains/{}", seg(&domain)), None)?;
            let dv: crate::admin::DomainView = serde_json::from_value(v.clone())
                .map_err(|e| CtlError::new(exit::PROTOCOL, format!("kmp-admind: {e}")))?;
            print_value(ctx.json, &v, &domain::show_text(&dv));
            Ok(())
        }
        domain::Verb::Set(a) => {
            let patch = domain::patch_of(&a)?;
            let body = serde_json::to_value(&patch).unwrap_or_default();
            let v = api.call(
                "PATCH",
                &format!("/v1/domains/{}", seg(&a.domain)),
                Some(body),
            )?;
            print_value(
                ctx.json,
                &v,
                &format!("set domain {}\n", v["domain"].as_str().unwrap_or_default()),
            );
            Ok(())
        }
        _ => Err(CtlError::new(exit::USAGE, "not available with --remote")),
    }
}

fn user_verb(ctx: &Ctx, api: &Api, v: user::Verb) -> CtlResult {
    use user::Verb::*;
    let path = |a: &str| format!("/v1/users/{}", seg(a));
    match v {
        Add {
            address,
            password,
            quota,
            quota_messages,
            ..
        } => {
            let addr = user::parse(&address)?;
            let hash = user::new_hash(&password)?;
            let quota = quota
                .map(|q| crate::config::parse_size(&q).map_err(|e| CtlError::new(exit::USAGE, e)))
                .transpose()?;
            let v = api.call(
                "POST",
                "/v1/users",
                Some(json!({"address": addr.to_string(), "password_hash": hash,
                    "quota_bytes": quota, "quota_messages": quota_messages})),
            )?;
            let a = &v["added"];
            print_value(
                ctx.json,
                &v,
                &format!(
                    "added user {} (mail in {})\n",
                    text(&a["user"]),
                    text(&a["mail_path"])
                ),
            );
            Ok(())
        }
        Del { address, keep_mail } => {
            let addr = user::parse(&address)?;
            let v = api.call(
                "DELETE",
                &format!("{}?keep_mail={keep_mail}", path(&addr.to_string())),
                None,
            )?;
            let d = &v["deleted"];
            let (fate, mail) = (text(&d["mail"]), text(&d["mail_path"]));
            print_value(
                ctx.json,
                &v,
                &user::deleted_text(&v, &user::mail_fate_text(&fate, &mail)),
            );
            if fate == "failed" {
                return Err(CtlError::new(
                    exit::IOERR,
                    format!(
                        "user {} is deleted, but its mail could not be removed: {mail}",
                        text(&d["user"])
                    ),
                ));
            }
            Ok(())
        }
        List { domain } => {
            let domains = match domain {
                Some(d) => vec![d],
                None => names(&api.call("GET", "/v1/domains", None)?),
            };
            let mut users = Vec::new();
            for d in domains {
                let list = api.call("GET", &format!("/v1/domains/{}/users", seg(&d)), None)?;
                users.extend(list.as_array().cloned().unwrap_or_default());
            }
            if ctx.json {
                println!("{}", Value::Array(users));
                return Ok(());
            }
            let mut t = Table::new(&["address", "state", "quota", "messages", "forwards"]);
            for u in users {
                let forwards: Vec<String> = u["forwards"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(text)
                    .collect();
                t.push(vec![
                    text(&u["address"]),
                    text(&u["state"]),
                    super::db::size_text(u["quota_bytes"].as_u64().unwrap_or(0)),
                    match u["quota_messages"].as_u64().unwrap_or(0) {
                        0 => "none".into(),
                        n => n.to_string(),
                    },
                    forwards.join(","),
                ]);
            }
            t.print(false);
            Ok(())
        }
        Show { address } => {
            let addr = user::parse(&address)?;
            let v = api.call("GET", &path(&addr.to_string()), None)?;
            print_value(ctx.json, &v, &user::show_text(&v));
            Ok(())
        }
        Passwd { address, password } => {
            let addr = user::parse(&address)?;
            let hash = user::new_hash(&password)?.ok_or_else(|| {
                CtlError::new(
                    exit::USAGE,
                    "say where the password comes from: --password-stdin or --password-hash HASH",
                )
            })?;
            patch(
                ctx,
                api,
                &addr,
                json!({"password_hash": hash}),
                "password changed for",
            )
        }
        Disable { address } => patch(
            ctx,
            api,
            &user::parse(&address)?,
            json!({"state": "disabled"}),
            "disabled",
        ),
        Enable { address } => patch(
            ctx,
            api,
            &user::parse(&address)?,
            json!({"state": "active"}),
            "enabled",
        ),
        Quota {
            address,
            size,
            messages,
        } => {
            let bytes =
                crate::config::parse_size(&size).map_err(|e| CtlError::new(exit::USAGE, e))?;
            let mut body = json!({"quota_bytes": bytes});
            if let Some(m) = messages {
                body["quota_messages"] = json!(m);
            }
            patch(ctx, api, &user::parse(&address)?, body, "quota set for")
        }
        Forward {
            address,
            targets,
            keep_copy,
            clear,
        } => {
            let addr = user::parse(&address)?;
            if targets.is_empty() && !clear {
                return Err(CtlError::new(
                    exit::USAGE,
                    "no target: name where to forward, or --clear to stop forwarding",
                ));
            }
            let targets: Vec<String> = targets
                .iter()
                .map(|t| user::parse(t).map(|a| a.to_string()))
                .collect::<Result<_, _>>()?;
            let what = if clear {
                "forwarding stopped for"
            } else {
                "forwarding set for"
            };
            patch(
                ctx,
                api,
                &addr,
                json!({"forwards": targets, "keep_copy": keep_copy}),
                what,
            )
        }
        Pop3 { .. } | Spam { .. } => Err(CtlError::new(exit::USAGE, "not available with --remote")),
    }
}

fn patch(
    ctx: &Ctx,
    api: &Api,
    addr: &crate::userdb::Address,
    body: Value,
    what: &str,
) -> CtlResult {
    let v = api.call(
        "PATCH",
        &format!("/v1/users/{}", seg(&addr.to_string())),
        Some(body),
    )?;
    user::done(ctx, what, &text(&v["address"]));
    Ok(())
}

fn alias_verb(ctx: &Ctx, api: &Api, v: alias::Verb) -> CtlResult {
    let shown = |v: &Value| {
        let targets: Vec<String> = v["targets"]
            .as_array()
            .into_iter()
            .flatten()
            .map(text)
            .collect();
        format!("alias {} -> {}\n", text(&v["alias"]), targets.join(", "))
    };
    match v {
        alias::Verb::Add { alias, targets } => {
            let v = api.call(
                "POST",
                "/v1/aliases",
                Some(json!({"alias": alias, "targets": targets})),
            )?;
            print_value(ctx.json, &v, &shown(&v));
            Ok(())
        }
        alias::Verb::Del { alias, targets } => {
            let v = api.call(
                "DELETE",
                &format!("/v1/aliases/{}", seg(&alias)),
                Some(json!({"targets": targets})),
            )?;
            let text = if v.get("deleted").is_some() {
                format!("deleted alias {alias}\n")
            } else {
                shown(&v)
            };
            print_value(ctx.json, &v, &text);
            Ok(())
        }
        alias::Verb::List { domain } => {
            let domains = match domain {
                Some(d) => vec![d],
                None => names(&api.call("GET", "/v1/domains", None)?),
            };
            let mut list = Vec::new();
            for d in domains {
                let l = api.call("GET", &format!("/v1/domains/{}/aliases", seg(&d)), None)?;
                list.extend(l.as_array().cloned().unwrap_or_default());
            }
            if ctx.json {
                println!("{}", Value::Array(list));
                return Ok(());
            }
            let mut t = Table::new(&["alias", "targets"]);
            for a in list {
                let targets: Vec<String> = a["targets"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(text)
                    .collect();
                t.push(vec![text(&a["address"]), targets.join(", ")]);
            }
            t.print(false);
            Ok(())
        }
    }
}

/// A JSON value as table text: strings bare, numbers as they are.
fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        v => v.to_string(),
    }
}

fn names(domains: &Value) -> Vec<String> {
    domains
        .as_array()
        .into_iter()
        .flatten()
        .map(|d| text(&d["domain"]))
        .collect()
}

/// A logged-in connection to kmp-admind.
struct Api {
    client: Client,
}

impl Api {
    fn login(url: &str, r: &RemoteArgs) -> Result<Api, CtlError> {
        let ca = r
            .ca_file
            .clone()
            .unwrap_or_else(|| PathBuf::from(SYSTEM_ROOTS));
        let mut client = Client::new(url, &ca).map_err(|e| match e {
            ApiFailure::Setup(m) if m.starts_with('"') => {
                CtlError::new(exit::USAGE, format!("--remote {m}"))
            }
            e => failure(e),
        })?;
        let user = r.user.clone().ok_or_else(|| {
            CtlError::new(exit::USAGE, "--remote needs --user ADDRESS to log in with")
        })?;
        let password = read_password(r.password_file.as_deref())?;
        let pw = String::from_utf8(password.to_vec())
            .map_err(|_| CtlError::new(exit::DATAERR, "the password is not UTF-8"))?;
        let pw = Zeroizing::new(pw);
        client.login(&user, &pw).map_err(failure)?;
        Ok(Api { client })
    }

    fn logout(&mut self) {
        self.client.logout();
    }

    /// One request; an error answer is a [`CtlError`] with the exit code
    /// the local verb would have given.
    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, CtlError> {
        self.client
            .call(method, path, body.as_ref())
            .map_err(failure)
    }
}

/// The local error of a failed call.
fn failure(e: ApiFailure) -> CtlError {
    match e {
        ApiFailure::Setup(m) => CtlError::new(exit::NOINPUT, m),
        ApiFailure::Unavailable(m) => CtlError::new(exit::UNAVAILABLE, m),
        ApiFailure::Protocol(m) => CtlError::new(exit::PROTOCOL, m),
        ApiFailure::Status(s, m) => CtlError::new(exit_code(s), m),
    }
}

/// The sysexits code of an API status: what the local verb exits with for
/// the same refusal.
fn exit_code(status: u16) -> i32 {
    match status {
        400 | 413 => exit::DATAERR,
        401 | 403 => exit::NOPERM,
        404 => exit::NOUSER,
        405 | 414 => exit::USAGE,
        409 => exit::CANTCREAT,
        429 | 503 => exit::TEMPFAIL,
        _ => exit::PROTOCOL,
    }
}

/// The password: the first line of `file`, else asked on the terminal.
fn read_password(file: Option<&Path>) -> Result<Zeroizing<Vec<u8>>, CtlError> {
    match file {
        Some(f) => {
            let fh = std::fs::File::open(f)
                .map_err(|e| CtlError::new(exit::from_io(&e), format!("{}: {e}", f.display())))?;
            let mut line = Zeroizing::new(Vec::new());
            std::io::BufReader::new(fh)
                .take(4096)
                .read_until(b'\n', &mut line)
                .map_err(|e| CtlError::new(exit::IOERR, format!("{}: {e}", f.display())))?;
            while matches!(line.last(), Some(b'\n' | b'\r')) {
                line.pop();
            }
            Ok(line)
        }
        None if std::io::stdin().is_terminal() => user::read_hidden("Password: "),
        None => Err(CtlError::new(
            exit::USAGE,
            "--remote needs --password-file PATH when standard input is not a terminal",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_local_exit_codes() {
        assert_eq!(exit_code(409), exit::CANTCREAT);
        assert_eq!(exit_code(404), exit::NOUSER);
        assert_eq!(
            failure(ApiFailure::Status(403, "no".into())).code,
            exit::NOPERM
        );
    }
}
