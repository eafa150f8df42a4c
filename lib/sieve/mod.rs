//! Sieve (RFC 5228): the mail filtering language users write and
//! kmp-local runs at delivery.
//!
//! What it owns: the lexer and parser (exact line and column in every
//! error), validation of every command and test against the extensions a
//! script `require`s, the compiled form ([`Script`], parsed once and kept in
//! a cache), and the interpreter, a pure function from a message, its
//! envelope and an [`Env`] to a list of actions.
//!
//! What it does not own: storing scripts (a user's `sieve/` directory),
//! ManageSieve (kmp-sieved), performing the actions (kmp-local files,
//! redirects, sends the vacation replies and notifications), and the rule
//! editor of the webmail.
//!
//! Extensions: fileinto, reject and ereject (RFC 5429), envelope,
//! encoded-character, variables (RFC 5229), vacation (RFC 5230) and
//! vacation-seconds (RFC 6131), relational (RFC 5231), subaddress
//! (RFC 5233), spamtest, spamtestplus and virustest (RFC 5235), imap4flags
//! (RFC 5232), copy (RFC 3894), body (RFC 5173), date and index (RFC 5260),
//! mailbox (RFC 5490), enotify (RFC 5435) with mailto (RFC 5436),
//! duplicate (RFC 7352), include (RFC 6609), and the comparators i;octet,
//! i;ascii-casemap and i;ascii-numeric (RFC 4790).
//!
//! Everything here takes hostile input: scripts are capped in size,
//! nesting and run steps, and nothing panics.

mod compare;
mod compile;
mod conds;
mod date;
mod interp;
mod lexer;
mod message;
mod notify;
mod parser;
#[cfg(test)]
mod tests;
mod value;

use std::fmt;
use std::sync::Arc;

use compile::Program;
pub use message::Message;

/// One extension a script may `require`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Extension {
    Fileinto,
    Reject,
    Ereject,
    Envelope,
    EncodedCharacter,
    Variables,
    Vacation,
    VacationSeconds,
    Relational,
    Subaddress,
    Spamtest,
    Spamtestplus,
    Virustest,
    Imap4flags,
    Copy,
    Body,
    Date,
    Index,
    Mailbox,
    Enotify,
    Duplicate,
    Include,
    ComparatorAsciiNumeric,
}

impl Extension {
    /// Every extension, in the order the SIEVE capability lists them.
    pub const ALL: [Extension; 23] = [
        Extension::Fileinto,
        Extension::Reject,
        Extension::Ereject,
        Extension::Envelope,
        Extension::EncodedCharacter,
        Extension::Variables,
        Extension::Vacation,
        Extension::VacationSeconds,
        Extension::Relational,
        Extension::Subaddress,
        Extension::Spamtest,
        Extension::Spamtestplus,
        Extension::Virustest,
        Extension::Imap4flags,
        Extension::Copy,
        Extension::Body,
        Extension::Date,
        Extension::Index,
        Extension::Mailbox,
        Extension::Enotify,
        Extension::Duplicate,
        Extension::Include,
        Extension::ComparatorAsciiNumeric,
    ];

    /// The name a `require` uses.
    pub fn name(self) -> &'static str {
        match self {
            Extension::Fileinto => "fileinto",
            Extension::Reject => "reject",
            Extension::Ereject => "ereject",
            Extension::Envelope => "envelope",
            Extension::EncodedCharacter => "encoded-character",
            Extension::Variables => "variables",
            Extension::Vacation => "vacation",
            Extension::VacationSeconds => "vacation-seconds",
            Extension::Relational => "relational",
            Extension::Subaddress => "subaddress",
            Extension::Spamtest => "spamtest",
            Extension::Spamtestplus => "spamtestplus",
            Extension::Virustest => "virustest",
            Extension::Imap4flags => "imap4flags",
            Extension::Copy => "copy",
            Extension::Body => "body",
            Extension::Date => "date",
            Extension::Index => "index",
            Extension::Mailbox => "mailbox",
            Extension::Enotify => "enotify",
            Extension::Duplicate => "duplicate",
            Extension::Include => "include",
            Extension::ComparatorAsciiNumeric => "comparator-i;ascii-numeric",
        }
    }

    /// The extension a `require` names, if we know it.
    pub fn from_name(name: &str) -> Option<Extension> {
        Extension::ALL.iter().copied().find(|e| e.name() == name)
    }

    fn bit(self) -> u32 {
        1 << (self as u32)
    }
}

/// The set of extensions enabled for a script (per system, domain or
/// user, as the admin configures them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Extensions(u32);

impl Extensions {
    /// Everything we support.
    pub fn all() -> Extensions {
        Extension::ALL.iter().fold(Extensions(0), |s, e| s.with(*e))
    }

    /// Only RFC 5228's base language.
    pub fn none() -> Extensions {
        Extensions(0)
    }

    /// This set with `ext` added.
    pub fn with(self, ext: Extension) -> Extensions {
        Extensions(self.0 | ext.bit())
    }

    /// This set with `ext` removed.
    pub fn without(self, ext: Extension) -> Extensions {
        Extensions(self.0 & !ext.bit())
    }

    pub fn contains(self, ext: Extension) -> bool {
        self.0 & ext.bit() != 0
    }

    /// The SIEVE capability of ManageSieve (RFC 5804 1.7): the enabled
    /// names, space-separated, in a fixed order.
    pub fn names(self) -> String {
        let names: Vec<&str> = Extension::ALL
            .iter()
            .filter(|e| self.contains(**e))
            .map(|e| e.name())
            .collect();
        names.join(" ")
    }

    /// The NOTIFY capability of ManageSieve (RFC 5804 1.7): the
    /// notification methods, when enotify is enabled.
    pub fn notify_methods(self) -> Option<&'static str> {
        self.contains(Extension::Enotify).then_some("mailto")
    }

    /// A set from a space- or comma-separated list of names (a config
    /// value); an unknown name is the error.
    pub fn parse(list: &str) -> Result<Extensions, String> {
        let mut set = Extensions::none();
        for name in list.split(|c: char| c == ',' || c.is_whitespace()) {
            if name.is_empty() {
                continue;
            }
            match Extension::from_name(name) {
                Some(e) => set = set.with(e),
                None => return Err(format!("unknown Sieve extension \"{name}\"")),
            }
        }
        Ok(set)
    }
}

/// A script that does not compile: where, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompileError {
    /// 1-based line.
    pub line: u32,
    /// 1-based column, in characters.
    pub column: u32,
    pub message: String,
}

impl fmt::Display for CompileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "line {}, column {}: {}",
            self.line, self.column, self.message
        )
    }
}

impl std::error::Error for CompileError {}

/// A compiled script: validated, never parsed again. Cloning is cheap
/// (shared), so a cache can hand out copies.
#[derive(Debug, Clone)]
pub struct Script {
    prog: Arc<Program>,
    limits: Limits,
}

/// Compiles a script with the given extensions enabled, the default
/// limits and no includes.
pub fn compile(src: &str, ext: &Extensions) -> Result<Script, CompileError> {
    compile_with(src, ext, None, &Limits::default())
}

/// Compiles a script, loading what it includes (RFC 6609) through
/// `loader`, within `limits`.
pub fn compile_with(
    src: &str,
    ext: &Extensions,
    loader: Option<&dyn Loader>,
    limits: &Limits,
) -> Result<Script, CompileError> {
    let mut stack = Vec::new();
    let mut includes = 0;
    let prog = compile::compile_program(src, *ext, loader, limits, &mut stack, &mut includes)?;
    Ok(Script {
        prog: Arc::new(prog),
        limits: limits.clone(),
    })
}

impl Script {
    /// The size of the source it was compiled from.
    pub fn source_len(&self) -> usize {
        self.prog.size
    }

    /// Runs the script over a message (RFC 5228 2.10): the actions for
    /// kmp-local to perform, or the error that stopped it (then the
    /// message is kept in INBOX, as RFC 5228 2.10.6 asks).
    pub fn run(
        &self,
        msg: &Message,
        envelope: &Envelope,
        env: &mut dyn Env,
    ) -> Result<Outcome, RunError> {
        interp::run(&self.prog, msg, envelope, env, &self.limits)
    }
}

/// The limits a script compiles and runs within.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest script source, in bytes.
    pub max_script_size: usize,
    /// Most commands and tests one run evaluates.
    pub max_steps: u64,
    /// Most actions one run takes.
    pub max_actions: usize,
    /// Most redirects one run takes (Pigeonhole's default is 4).
    pub max_redirects: usize,
    /// Most notifications one run sends.
    pub max_notifications: usize,
    /// Deepest include nesting.
    pub max_include_depth: usize,
    /// Most included scripts in all.
    pub max_includes: usize,
    /// Vacation's period without :days or :seconds, in seconds.
    pub vacation_default_period: u64,
    /// Shortest and longest vacation period (RFC 5230 4.1, RFC 6131).
    pub vacation_min_period: u64,
    pub vacation_max_period: u64,
    /// The duplicate test's period without :seconds, and its cap.
    pub duplicate_default_period: u64,
    pub duplicate_max_period: u64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_script_size: 1 << 20,
            max_steps: 100_000,
            max_actions: 32,
            max_redirects: 4,
            max_notifications: 4,
            max_include_depth: 10,
            max_includes: 64,
            vacation_default_period: 7 * 86400,
            vacation_min_period: 86400,
            vacation_max_period: 90 * 86400,
            duplicate_default_period: 12 * 3600,
            duplicate_max_period: 2 * 86400,
        }
    }
}

/// Where an included script lives (RFC 6609 3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Location {
    Personal,
    Global,
}

/// The caller's access to scripts an `include` names.
pub trait Loader {
    /// The source of script `name`; Ok(None) when there is none.
    fn load(&self, name: &str, location: Location) -> Result<Option<String>, String>;
}

/// The SMTP envelope of the delivery.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Envelope {
    /// The reverse-path; empty for the null sender `<>`.
    pub from: String,
    /// The recipient being delivered to.
    pub to: String,
    /// The authenticated submitter, when known.
    pub auth: Option<String>,
}

/// What the interpreter cannot know by itself; kmp-local implements it.
pub trait Env {
    /// The user's own addresses (vacation answers mail sent to them and
    /// never mail sent by them), besides the envelope recipient.
    fn own_addresses(&self) -> Vec<String> {
        Vec::new()
    }
    /// Does a mailbox exist (mailboxexists, RFC 5490)?
    fn mailbox_exists(&mut self, _name: &str) -> bool {
        false
    }
    /// Was this duplicate key seen within its period (RFC 7352)? Keys to
    /// remember are in [`Outcome::duplicates`], stored after delivery.
    fn duplicate_seen(&mut self, _key: &str) -> bool {
        false
    }
    /// Was a vacation reply with this handle sent to `sender` within its
    /// period? kmp-local records a reply when it sends one.
    fn vacation_sent(&mut self, _sender: &str, _handle: &str) -> bool {
        false
    }
    /// Now: seconds since the epoch, and the local zone in minutes east.
    fn now(&self) -> (i64, i32);
    /// The spam score (RFC 5235): 1..10, or 0..100 with `percent`; None
    /// when the message was not tested.
    fn spamtest(&mut self, _percent: bool) -> Option<u32> {
        None
    }
    /// The virus score (RFC 5235): 1..5; None when not tested.
    fn virustest(&mut self) -> Option<u32> {
        None
    }
}

/// What a run decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// In the order the script took them; the implicit keep, when it
    /// stands, is the last.
    pub actions: Vec<Action>,
    /// Duplicate ids to remember once the message is delivered.
    pub duplicates: Vec<DuplicateMark>,
}

/// One action for kmp-local.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Store in INBOX with these flags; `implicit` for RFC 5228's
    /// implicit keep.
    Keep {
        flags: Vec<String>,
        implicit: bool,
    },
    Fileinto {
        mailbox: String,
        flags: Vec<String>,
        copy: bool,
        create: bool,
    },
    Redirect {
        address: String,
        copy: bool,
    },
    Reject {
        reason: String,
        ereject: bool,
    },
    Discard,
    Vacation(VacationReply),
    Notify(Notification),
}

/// A vacation reply to send (RFC 5230), already decided to be due.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VacationReply {
    pub to: String,
    pub from: Option<String>,
    pub subject: String,
    pub body: String,
    /// Not again to this sender with this handle within this period.
    pub period_seconds: u64,
    pub handle: String,
    /// The body is a MIME entity (:mime).
    pub mime: bool,
}

/// A notification to send (RFC 5435 with mailto, RFC 5436).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    pub method: String,
    pub to: Vec<String>,
    /// Headers from the URI (unsafe ones dropped).
    pub headers: Vec<(String, String)>,
    pub from: Option<String>,
    pub options: Vec<String>,
    pub message: Option<String>,
    /// 1 high, 2 normal, 3 low.
    pub importance: u8,
}

/// A duplicate id to remember (RFC 7352).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DuplicateMark {
    pub key: String,
    pub seconds: u64,
    /// :last: the period restarts with every message.
    pub last: bool,
}

/// A run that failed: the message must be kept (RFC 5228 2.10.6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunError {
    pub line: u32,
    pub message: String,
}

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for RunError {}

#[cfg(test)]
mod api_tests {
    use super::*;

    #[test]
    fn script_is_send_sync() {
        fn check<T: Send + Sync>() {}
        check::<Script>();
    }

    #[test]
    fn names_and_parse_round_trip() {
        let all = Extensions::all();
        assert_eq!(Extensions::parse(&all.names()), Ok(all));
        assert!(all.names().starts_with("fileinto reject ereject"));
        assert!(Extensions::parse("fileinto nope").is_err());
        assert_eq!(
            all.names(),
            "fileinto reject ereject envelope encoded-character variables vacation \
             vacation-seconds relational subaddress spamtest spamtestplus virustest imap4flags \
             copy body date index mailbox enotify duplicate include comparator-i;ascii-numeric"
        );
        assert_eq!(all.notify_methods(), Some("mailto"));
        assert_eq!(all.without(Extension::Enotify).notify_methods(), None);
        assert_eq!(Extensions::none().names(), "");
    }

    #[test]
    fn error_display() {
        let e = CompileError {
            line: 3,
            column: 7,
            message: "missing ;".into(),
        };
        assert_eq!(e.to_string(), "line 3, column 7: missing ;");
    }
}
