//! `kmpctl user spam USER ...` and `kmpctl domain spam DOMAIN ...`: the spam
//! settings kept in the user and domain records (lib/antispam/scan reads
//! them through kmp-authd's recipient lookup).

use clap::Args as ClapArgs;
use serde_json::json;

use super::output::print_value;
use super::{CtlError, CtlResult, Ctx};
use crate::antispam::scan::senders::valid_entry;
use crate::exit;
use crate::ipc::authd::SpamPrefs;

/// The options both verbs take; a user's take more (lists, Junk).
#[derive(Debug, Clone, ClapArgs)]
pub struct SpamArgs {
    /// The spam score from which mail is spam (X-Spam-Flag, filed into Junk);
    /// "default" for the level above.
    #[arg(long, value_name = "N|default")]
    pub tag_score: Option<String>,
    /// The spam score from which mail is refused at DATA (0: never);
    /// "default" for the level above.
    #[arg(long, value_name = "N|default")]
    pub reject_score: Option<String>,
    /// Whether the connection checks (DNSBL, reverse DNS, HELO) apply:
    /// yes, no or default.
    #[arg(long, value_name = "yes|no|default")]
    pub dnsbl: Option<String>,
}

/// The options only a user has.
#[derive(Debug, Clone, ClapArgs)]
pub struct UserSpamArgs {
    #[command(flatten)]
    pub common: SpamArgs,
    /// Add a sender (a@example.com or @example.com) whose mail skips the
    /// spam verdict and never goes to Junk. Repeatable.
    #[arg(long, value_name = "SENDER")]
    pub allow_sender: Vec<String>,
    /// Add a sender refused at RCPT (550 5.7.1). Repeatable.
    #[arg(long, value_name = "SENDER")]
    pub block_sender: Vec<String>,
    /// Take a sender off both lists. Repeatable.
    #[arg(long, value_name = "SENDER")]
    pub remove_sender: Vec<String>,
    /// File spam into Junk (yes, the default) or leave it in INBOX (no).
    #[arg(long, value_name = "yes|no")]
    pub junk: Option<String>,
}

/// Applies the common options to `p`.
pub fn apply(a: &SpamArgs, p: &mut SpamPrefs) -> Result<(), CtlError> {
    if let Some(t) = &a.tag_score {
        p.tag_score = score(t, "--tag-score", 1)?;
    }
    if let Some(t) = &a.reject_score {
        p.reject_score = score(t, "--reject-score", 0)?;
    }
    if let Some(d) = &a.dnsbl {
        p.dnsbl = match d.as_str() {
            "default" => None,
            other => Some(yes_no(other, "--dnsbl")?),
        };
    }
    Ok(())
}

/// Applies a user's options to `p`.
pub fn apply_user(a: &UserSpamArgs, p: &mut SpamPrefs) -> Result<(), CtlError> {
    apply(&a.common, p)?;
    let usage = |e: String| CtlError::new(exit::USAGE, e);
    for s in &a.remove_sender {
        let s = valid_entry(s).map_err(usage)?;
        p.allow_senders.retain(|x| *x != s);
        p.block_senders.retain(|x| *x != s);
    }
    for s in &a.allow_sender {
        let s = valid_entry(s).map_err(usage)?;
        p.block_senders.retain(|x| *x != s);
        if !p.allow_senders.contains(&s) {
            p.allow_senders.push(s);
        }
    }
    for s in &a.block_sender {
        let s = valid_entry(s).map_err(usage)?;
        p.allow_senders.retain(|x| *x != s);
        if !p.block_senders.contains(&s) {
            p.block_senders.push(s);
        }
    }
    if let Some(j) = &a.junk {
        p.no_junk = !yes_no(j, "--junk")?;
    }
    Ok(())
}

/// Prints the settings of `who`.
pub fn show(ctx: &Ctx, who: &str, p: &SpamPrefs) -> CtlResult {
    let opt = |v: Option<u32>| v.map(|n| n.to_string()).unwrap_or_else(|| "default".into());
    let text = format!(
        "{who}\ntag score:      {}\nreject score:   {}\ndnsbl:          {}\njunk:           {}\nallow senders:  {}\nblock senders:  {}\n",
        opt(p.tag_score),
        opt(p.reject_score),
        match p.dnsbl {
            None => "default",
            Some(true) => "yes",
            Some(false) => "no",
        },
        if p.no_junk { "no" } else { "yes" },
        p.allow_senders.join(" "),
        p.block_senders.join(" "),
    );
    print_value(ctx.json, &json!({"address": who, "spam": p}), &text);
    Ok(())
}

fn score(t: &str, flag: &str, min: u32) -> Result<Option<u32>, CtlError> {
    if t == "default" {
        return Ok(None);
    }
    match t.parse::<u32>() {
        Ok(n) if n >= min && n <= 1000 => Ok(Some(n)),
        _ => Err(CtlError::new(
            exit::USAGE,
            format!("{flag} {t:?}: expected a whole number {min}..1000 or \"default\""),
        )),
    }
}

fn yes_no(t: &str, flag: &str) -> Result<bool, CtlError> {
    match t {
        "yes" | "true" | "on" => Ok(true),
        "no" | "false" | "off" => Ok(false),
        _ => Err(CtlError::new(
            exit::USAGE,
            format!("{flag} {t:?}: expected yes or no"),
        )),
    }
}
