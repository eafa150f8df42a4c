//! `kmpctl dkim keygen|show|rotate DOMAIN`: the DKIM keys kmp-remote signs
//! with (`auth.dkim_keys`, see `mailauth::keys`). Each verb prints the DNS
//! records to publish. Run as root, the files are given to the owner of the
//! key directory (kmp-remote's user), readable by no one else.

use clap::{Args as ClapArgs, Subcommand, ValueEnum};
use serde_json::json;

use super::output::print_value;
use super::{CtlError, CtlResult, Ctx};
use crate::exit;
use crate::mailauth::keys::{zone_line, Algorithm, DomainKeys};

#[derive(Debug, ClapArgs)]
pub struct Args {
    #[command(subcommand)]
    pub verb: Verb,
}

/// Which keys to make.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Which {
    /// Ed25519 (RFC 8463) and RSA-2048, both signing: receivers that do not
    /// know Ed25519 yet verify the RSA signature.
    Both,
    Ed25519,
    Rsa,
}

#[derive(Debug, Subcommand)]
pub enum Verb {
    /// Make keys for DOMAIN and start signing with them; print the DNS
    /// records. Refused when the domain has keys already (use rotate).
    Keygen {
        domain: String,
        #[arg(long, value_enum, default_value = "both")]
        algorithm: Which,
    },
    /// Print the DNS records of DOMAIN's keys (active and replaced ones
    /// still to be kept), or of every domain with keys.
    Show { domain: Option<String> },
    /// Make new keys for DOMAIN (the same algorithms as the active ones,
    /// unless --algorithm), sign with them from now on, and keep the old
    /// ones for auth.dkim_keep_old: their DNS records must stay published
    /// until mail signed with them has been delivered and read.
    Rotate {
        domain: String,
        #[arg(long, value_enum)]
        algorithm: Option<Which>,
    },
}

pub fn run(ctx: &Ctx, a: Args) -> CtlResult {
    let cfg = ctx.config()?;
    let root = cfg.path_of("auth.dkim_keys");
    if root.as_os_str().is_empty() {
        return Err(CtlError::new(
            exit::CONFIG,
            "auth.dkim_keys is empty: no key directory to keep keys in",
        ));
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let day = day_of(now);
    let keys = |d: &str| DomainKeys::new(&root, d).map_err(|e| CtlError::new(exit::USAGE, e));
    let fail = |e: String| CtlError::new(exit::CANTCREAT, e);
    match a.verb {
        Verb::Keygen { domain, algorithm } => {
            let dk = keys(&domain)?;
            if !dk.active().is_empty() {
                return Err(CtlError::new(
                    exit::DATAERR,
                    format!(
                        "{} has keys already: `kmpctl dkim rotate {}` replaces them",
                        dk.domain, dk.domain
                    ),
                ));
            }
            let made = generate(&dk, algorithm, &day).map_err(fail)?;
            dk.activate(&made, now).map_err(fail)?;
            show(
                ctx,
                &[dk],
                now,
                cfg.duration("auth.dkim_keep_old").as_secs(),
            )
        }
        Verb::Show { domain } => {
            let list = match domain {
                Some(d) => {
                    let dk = keys(&d)?;
                    if dk.active().is_empty() && dk.retired().is_empty() {
                        return Err(CtlError::new(
                            exit::NOINPUT,
                            format!(
                                "{} has no DKIM keys (`kmpctl dkim keygen {}`)",
                                dk.domain, dk.domain
                            ),
                        ));
                    }
                    vec![dk]
                }
                None => crate::mailauth::keys::domains(&root)
                    .iter()
                    .filter_map(|d| DomainKeys::new(&root, d).ok())
                    .collect(),
            };
            show(
                ctx,
                &list,
                now,
                cfg.duration("auth.dkim_keep_old").as_secs(),
            )
        }
        Verb::Rotate { domain, algorithm } => {
            let dk = keys(&domain)?;
            let active = dk.active();
            if active.is_empty() {
                return Err(CtlError::new(
                    exit::NOINPUT,
                    format!(
                        "{} has no DKIM keys to rotate (`kmpctl dkim keygen {}`)",
                        dk.domain, dk.domain
                    ),
                ));
            }
            let which = algorithm.unwrap_or_else(|| {
                let ed = active
                    .iter()
                    .any(|s| Algorithm::of_selector(s) == Some(Algorithm::Ed25519));
                let rsa = active
                    .iter()
                    .any(|s| Algorithm::of_selector(s) == Some(Algorithm::Rsa));
                match (ed, rsa) {
                    (true, false) => Which::Ed25519,
                    (false, true) => Which::Rsa,
                    _ => Which::Both,
                }
            });
            let keep = cfg.duration("auth.dkim_keep_old").as_secs();
            let purged = dk.purge(now.saturating_sub(keep)).map_err(fail)?;
            let made = generate(&dk, which, &day).map_err(fail)?;
            dk.activate(&made, now).map_err(fail)?;
            if !ctx.json {
                for p in purged {
                    println!("; deleted {p}: its DNS record may go");
                }
            }
            show(ctx, &[dk], now, keep)
        }
    }
}

fn generate(dk: &DomainKeys, which: Which, day: &str) -> Result<Vec<String>, String> {
    let algs: &[Algorithm] = match which {
        Which::Both => &[Algorithm::Ed25519, Algorithm::Rsa],
        Which::Ed25519 => &[Algorithm::Ed25519],
        Which::Rsa => &[Algorithm::Rsa],
    };
    algs.iter().map(|a| dk.generate(*a, day)).collect()
}

/// Prints each domain's records as zone-file lines (JSON: a list of
/// {domain, selector, name, record, state, until}).
fn show(ctx: &Ctx, list: &[DomainKeys], now: u64, keep: u64) -> CtlResult {
    let mut text = String::new();
    let mut items = Vec::new();
    for dk in list {
        for s in dk.active() {
            let record = dk.record(&s).map_err(|e| CtlError::new(exit::NOINPUT, e))?;
            text.push_str(&format!(
                "; {} signing key {s}\n{}\n",
                dk.domain,
                zone_line(&dk.domain, &s, &record)
            ));
            items.push(json!({"domain": dk.domain, "selector": s, "name": format!("{s}._domainkey.{}", dk.domain), "record": record, "state": "active"}));
        }
        for (s, since) in dk.retired() {
            let Ok(record) = dk.record(&s) else { continue };
            let until = since + keep;
            let state = if until > now { "keep" } else { "expired" };
            text.push_str(&format!(
                "; {} replaced key {s}: keep its record until {} (then `kmpctl dkim rotate` deletes it)\n{}\n",
                dk.domain,
                day_of(until),
                zone_line(&dk.domain, &s, &record)
            ));
            items.push(json!({"domain": dk.domain, "selector": s, "name": format!("{s}._domainkey.{}", dk.domain), "record": record, "state": state, "until": until}));
        }
    }
    print_value(ctx.json, &json!(items), &text);
    let _ = now;
    Ok(())
}

/// `YYYYMMDD` of a Unix time (UTC; civil-from-days, proleptic Gregorian).
pub fn day_of(secs: u64) -> String {
    let days = (secs / 86400) as i64;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!("{y:04}{m:02}{d:02}")
}

#[cfg(test)]
mod tests {
    #[test]
    fn days_are_named_in_utc() {
        assert_eq!(super::day_of(0), "19700101");
        assert_eq!(super::day_of(1_796_428_800), "20261205");
        assert_eq!(super::day_of(951_782_400), "20000229");
    }
}
