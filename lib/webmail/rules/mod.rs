//! The rule editor's model: rules a user builds without knowing Sieve,
//! the one Sieve script they become ([`generate`]), and the way back from
//! such a script to the rules ([`recognise`]).
//!
//! The script is named [`SCRIPT_NAME`] and opens with the [`MARKER`]
//! comment. Each rule is written as a `# rule {json}` comment followed by
//! the Sieve that does it. [`recognise`] reads the comments and accepts
//! them only when generating the rules again gives the script back byte
//! for byte (line ends aside): a script changed by hand, or any other
//! script, is not the editor's and is never rewritten by it.
//!
//! A disabled rule stays in the script as `if allof(false, ...)`, so it
//! keeps its place and its text but never matches.
//!
//! What it does not own: talking to kmp-sieved (`managesieve`), the page
//! (`pages::rules`), running the script (kmp-local).

mod generate;

use serde::{Deserialize, Serialize};

pub use generate::generate;

/// The script the editor writes.
pub const SCRIPT_NAME: &str = "kmpromail-rules";
/// The first line of a script the editor wrote.
pub const MARKER: &str = "# kmpromail-rules 1";
/// Most rules in one script.
pub const MAX_RULES: usize = 100;
/// Most conditions, and most actions, in one rule.
pub const MAX_PARTS: usize = 10;
/// Longest value of a condition, name, address or subject (characters).
pub const MAX_SHORT: usize = 500;
/// Longest reply or reject text (bytes).
pub const MAX_TEXT: usize = 10_000;

/// One rule: when its conditions hold (all or any of them), its actions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rule {
    pub name: String,
    pub enabled: bool,
    /// All of the conditions (true) or any of them (false).
    pub all: bool,
    pub conds: Vec<Cond>,
    pub actions: Vec<Action>,
}

/// What a condition looks at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "field", content = "name")]
pub enum Field {
    From,
    To,
    Cc,
    Subject,
    /// Any header, by name.
    Header(String),
    /// The body as text (RFC 5173 `:text`).
    Body,
    /// The message's size (only `Over` and `Under`).
    Size,
}

/// How a condition compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Op {
    Contains,
    Is,
    Starts,
    Ends,
    /// Sieve's wildcards: `*` any text, `?` one character.
    Matches,
    Over,
    Under,
}

/// One condition; `not` turns it round ("does not contain").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cond {
    #[serde(flatten)]
    pub field: Field,
    pub op: Op,
    pub not: bool,
    pub value: String,
}

/// One action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "do")]
pub enum Action {
    /// File into the folder (UTF-8 name); `copy` keeps it in INBOX too.
    Move {
        folder: String,
        copy: bool,
    },
    /// Redirect; `keep` also files it as usual.
    Forward {
        to: String,
        keep: bool,
    },
    /// Vacation (RFC 5230).
    Reply {
        days: u32,
        subject: String,
        text: String,
        addresses: Vec<String>,
    },
    Reject {
        text: String,
    },
    Discard,
    /// imap4flags `\Seen`.
    MarkRead,
    /// imap4flags `\Flagged`.
    Flag,
    /// enotify's mailto method (RFC 5436).
    Notify {
        to: String,
        text: String,
    },
    Stop,
}

/// Why a rule cannot be written; each is a string key of the page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Invalid(pub &'static str);

impl Rule {
    /// Checks every part against the caps and the grammar Sieve needs.
    pub fn check(&self) -> Result<(), Invalid> {
        short(&self.name, "err_rule_name")?;
        if self.conds.len() > MAX_PARTS || self.actions.len() > MAX_PARTS {
            return Err(Invalid("err_rule_too_big"));
        }
        if self.actions.is_empty() {
            return Err(Invalid("err_rule_no_action"));
        }
        for c in &self.conds {
            c.check()?;
        }
        for a in &self.actions {
            a.check()?;
        }
        Ok(())
    }
}

impl Cond {
    fn check(&self) -> Result<(), Invalid> {
        let sized = matches!(self.op, Op::Over | Op::Under);
        match &self.field {
            Field::Size if !sized || parse_size(&self.value).is_none() => {
                return Err(Invalid("err_rule_size"));
            }
            Field::Header(h) if !header_name(h) => return Err(Invalid("err_rule_header")),
            _ => {}
        }
        if sized && self.field != Field::Size {
            return Err(Invalid("err_rule_size"));
        }
        if self.value.is_empty() && self.op != Op::Is {
            return Err(Invalid("err_rule_value"));
        }
        short(&self.value, "err_rule_value")
    }
}

impl Action {
    fn check(&self) -> Result<(), Invalid> {
        match self {
            Action::Move { folder, .. } => {
                if folder.is_empty() {
                    return Err(Invalid("err_rule_folder"));
                }
                short(folder, "err_rule_folder")
            }
            Action::Forward { to, .. } => address(to),
            Action::Reply {
                days,
                subject,
                text,
                addresses,
            } => {
                if !(1..=365).contains(days) {
                    return Err(Invalid("err_rule_days"));
                }
                short(subject, "err_rule_value")?;
                long(text)?;
                if text.trim().is_empty() {
                    return Err(Invalid("err_rule_text"));
                }
                if addresses.len() > MAX_PARTS {
                    return Err(Invalid("err_rule_too_big"));
                }
                addresses.iter().try_for_each(|a| address(a))
            }
            Action::Reject { text } => {
                if text.trim().is_empty() {
                    return Err(Invalid("err_rule_text"));
                }
                long(text)
            }
            Action::Notify { to, text } => {
                address(to)?;
                short(text, "err_rule_value")
            }
            Action::Discard | Action::MarkRead | Action::Flag | Action::Stop => Ok(()),
        }
    }
}

/// The rules of a script the editor wrote, or None for any other script
/// (hand-written, or the editor's changed by hand).
pub fn recognise(script: &str) -> Option<Vec<Rule>> {
    let script = script.replace("\r\n", "\n");
    if !script.starts_with(MARKER) {
        return None;
    }
    // The header holds no text of the user's: the first rule starts at
    // the first `# rule` line. From there each rule's block is read back
    // by its own length, so a text that holds such a line fools nothing.
    let mut rules = Vec::new();
    let mut pos = script
        .find("\n\n# rule ")
        .map(|p| p + 1)
        .unwrap_or(script.len());
    while pos < script.len() {
        let json = script[pos..].strip_prefix("\n# rule ")?;
        let json = &json[..json.find('\n')?];
        let rule: Rule = serde_json::from_str(json).ok()?;
        rule.check().ok()?;
        let b = generate::block(&rule);
        if !script[pos..].starts_with(&b) {
            return None;
        }
        pos += b.len();
        rules.push(rule);
        if rules.len() > MAX_RULES {
            return None;
        }
    }
    (generate(&rules) == script).then_some(rules)
}

/// `N`, `NK`, `NM` or `NG`: a size in bytes, below 4 GiB.
pub fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let (digits, unit) = match s.char_indices().last()? {
        (i, c) if c.is_ascii_alphabetic() => (&s[..i], c.to_ascii_uppercase()),
        _ => (s, ' '),
    };
    if digits.is_empty() || digits.len() > 12 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    let shift = match unit {
        ' ' => 0,
        'K' => 10,
        'M' => 20,
        'G' => 30,
        _ => return None,
    };
    // Sieve numbers stop at 2^32 - 1 (RFC 5231's comparisons; our lexer
    // and Pigeonhole refuse larger ones).
    n.checked_mul(1 << shift)
        .filter(|n| *n <= u64::from(u32::MAX))
}

/// A header field name (RFC 5322 2.2: printable ASCII but the colon).
pub fn header_name(h: &str) -> bool {
    !h.is_empty() && h.len() <= 76 && h.bytes().all(|b| (33..=126).contains(&b) && b != b':')
}

fn short(s: &str, key: &'static str) -> Result<(), Invalid> {
    if s.chars().count() > MAX_SHORT || s.chars().any(|c| c.is_control()) {
        return Err(Invalid(key));
    }
    Ok(())
}

fn long(s: &str) -> Result<(), Invalid> {
    if s.len() > MAX_TEXT || s.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        return Err(Invalid("err_rule_text"));
    }
    Ok(())
}

fn address(a: &str) -> Result<(), Invalid> {
    // An addr-spec, and one that goes into a mailto: URI unescaped.
    let ok = match a.rsplit_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && !domain.is_empty()
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !domain.contains("..")
                && !a.chars().any(|c| {
                    c.is_whitespace()
                        || c.is_control()
                        || matches!(c, '<' | '>' | ',' | '?' | '%' | '&' | '"' | '\\' | '/')
                })
        }
        None => false,
    };
    if a.len() > 254 || !ok {
        return Err(Invalid("err_rule_address"));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
