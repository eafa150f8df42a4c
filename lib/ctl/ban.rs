//! `kmpctl ban list|add|del`: the addresses kmp-authd keeps out of every
//! protocol. Bans live in kmp-authd, so these verbs talk to it over its
//! socket: "not running" (exit 69) and "permission denied" (exit 77) are told
//! apart.

use std::time::Duration;

use clap::{Args as ClapArgs, Subcommand};
use serde_json::json;

use super::db::iso_time;
use super::output::{print_value, Table};
use super::{CtlError, CtlResult, Ctx};
use crate::config::parse_duration;
use crate::exit;
use crate::ipc::authd::{Client, ClientError, Reply, Request};
use crate::net::Cidr;
use crate::paths::Paths;

#[derive(Debug, ClapArgs)]
pub struct Args {
    #[command(subcommand)]
    pub verb: Verb,
}

#[derive(Debug, Subcommand)]
pub enum Verb {
    /// List the bans in force.
    List,
    /// Ban an address or network (192.0.2.7, 192.0.2.0/24, 2001:db8::/64);
    /// host bits of a network are cleared (2001:db8::1/64 bans 2001:db8::/64).
    Add {
        net: String,
        /// How long (30s, 15m, 1h, 7d); default: authd.ban_time.
        #[arg(long, value_name = "DUR")]
        time: Option<String>,
        /// Why, for the list and the log.
        #[arg(long, default_value = "banned by the administrator")]
        reason: String,
    },
    /// Lift a ban.
    #[command(visible_alias = "delete")]
    Del { net: String },
}

pub fn run(ctx: &Ctx, a: Args) -> CtlResult {
    let cfg = ctx.config()?;
    let paths = Paths::new(&cfg);
    let mut client = connect(&paths)?;
    match a.verb {
        Verb::List => match call(&mut client, Request::BanList)? {
            Reply::Bans { bans } => {
                let mut t = Table::new(&["net", "until", "reason"]);
                for b in bans {
                    t.push(vec![b.net, iso_time(b.until), b.reason]);
                }
                t.print(ctx.json);
                Ok(())
            }
            r => Err(unexpected(r)),
        },
        Verb::Add { net, time, reason } => {
            let cidr = net
                .parse::<Cidr>()
                .map_err(|e| CtlError::new(exit::DATAERR, e))?
                .network();
            let secs = match time {
                Some(t) => parse_duration(&t).map_err(|e| CtlError::new(exit::USAGE, e))?,
                None => cfg.duration("authd.ban_time"),
            };
            let req = Request::BanAdd {
                net: cidr.to_string(),
                seconds: secs.as_secs().max(1),
                reason,
            };
            match call(&mut client, req)? {
                Reply::Done => {
                    print_value(
                        ctx.json,
                        &json!({"banned": {"net": cidr.to_string(), "seconds": secs.as_secs()}}),
                        &format!("banned {cidr} for {}\n", human(secs)),
                    );
                    Ok(())
                }
                r => Err(unexpected(r)),
            }
        }
        Verb::Del { net } => {
            let cidr = net
                .parse::<Cidr>()
                .map_err(|e| CtlError::new(exit::DATAERR, e))?
                .network();
            match call(
                &mut client,
                Request::BanDel {
                    net: cidr.to_string(),
                },
            )? {
                Reply::Done => {
                    print_value(
                        ctx.json,
                        &json!({"unbanned": {"net": cidr.to_string()}}),
                        &format!("lifted the ban on {cidr}\n"),
                    );
                    Ok(())
                }
                r => Err(unexpected(r)),
            }
        }
    }
}

/// Connects to kmp-authd, telling "not running" from "permission denied".
pub fn connect(paths: &Paths) -> Result<Client, CtlError> {
    Client::connect(&paths.authd_socket()).map_err(client_err)
}

fn call(c: &mut Client, req: Request) -> Result<Reply, CtlError> {
    c.call(req).map_err(client_err)
}

/// A kmp-authd client error as kmpctl reports it.
pub fn client_err(e: ClientError) -> CtlError {
    match e {
        ClientError::Unavailable(p, io) if io.kind() == std::io::ErrorKind::PermissionDenied => {
            CtlError::new(
                exit::NOPERM,
                format!("permission denied on kmp-authd's socket {}", p.display()),
            )
        }
        ClientError::Unavailable(p, io) => CtlError::new(
            exit::UNAVAILABLE,
            format!(
                "kmp-authd is not running (cannot connect to {}: {io})",
                p.display()
            ),
        ),
        ClientError::Refused { temporary, message } => CtlError::new(
            if temporary {
                exit::TEMPFAIL
            } else {
                exit::DATAERR
            },
            format!("kmp-authd refused: {message}"),
        ),
        e @ ClientError::Frame(_) => CtlError::new(exit::PROTOCOL, e.to_string()),
    }
}

fn unexpected(r: Reply) -> CtlError {
    CtlError::new(
        exit::PROTOCOL,
        format!("kmp-authd answered something unexpected: {r:?}"),
    )
}

fn human(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        s if s % 86400 == 0 => format!("{}d", s / 86400),
        s if s % 3600 == 0 => format!("{}h", s / 3600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Error, ErrorKind};
    use std::path::PathBuf;

    #[test]
    fn not_running_and_permission_denied_are_told_apart() {
        let p = PathBuf::from("/run/kmpromail/authd.sock");
        let down = client_err(ClientError::Unavailable(
            p.clone(),
            Error::from(ErrorKind::NotFound),
        ));
        assert_eq!(down.code, exit::UNAVAILABLE);
        assert!(
            down.message.contains("kmp-authd is not running"),
            "{}",
            down.message
        );
        let refused = client_err(ClientError::Unavailable(
            p.clone(),
            Error::from(ErrorKind::ConnectionRefused),
        ));
        assert_eq!(refused.code, exit::UNAVAILABLE);
        let denied = client_err(ClientError::Unavailable(
            p,
            Error::from(ErrorKind::PermissionDenied),
        ));
        assert_eq!(denied.code, exit::NOPERM);
        assert!(
            denied.message.contains("permission denied"),
            "{}",
            denied.message
        );
        let temp = client_err(ClientError::Refused {
            temporary: true,
            message: "busy".into(),
        });
        assert_eq!(temp.code, exit::TEMPFAIL);
        assert_eq!(human(Duration::from_secs(86400 * 2)), "2d");
        assert_eq!(human(Duration::from_secs(90)), "90s");
    }
}
