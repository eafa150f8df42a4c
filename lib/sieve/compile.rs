//! From the syntax tree to the compiled form: every command and test is
//! checked against RFC 5228 and the extensions the script `require`s
//! (using one that is not required is an error, as in Pigeonhole), its
//! tagged arguments resolved, strings split into templates, and includes
//! loaded through the caller's [`Loader`].

use std::sync::Arc;

use super::compare::{Comparator, Match, MatchKind, Relation};
use super::lexer::Pos;
use super::parser::{self, Arg, Command, Test};
use super::value::{self, Str};
use super::{CompileError, Extension, Extensions, Limits, Loader, Location};

/// A compiled script: its commands and what it required.
#[derive(Debug, Default)]
pub struct Program {
    pub cmds: Vec<Cmd>,
    pub size: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlagOp {
    Set,
    Add,
    Remove,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Modifier {
    Lower,
    Upper,
    LowerFirst,
    UpperFirst,
    QuoteWildcard,
    EncodeUrl,
    Length,
}

impl Modifier {
    fn precedence(self) -> u8 {
        match self {
            Modifier::Lower | Modifier::Upper => 40,
            Modifier::LowerFirst | Modifier::UpperFirst => 30,
            Modifier::QuoteWildcard => 20,
            Modifier::EncodeUrl => 15,
            Modifier::Length => 10,
        }
    }
}

#[derive(Debug)]
pub struct Vacation {
    pub period: Option<u64>,
    pub seconds: bool,
    pub subject: Option<Str>,
    pub from: Option<Str>,
    pub addresses: Vec<Str>,
    pub mime: bool,
    pub handle: Option<Str>,
    pub reason: Str,
}

#[derive(Debug)]
pub struct Notify {
    pub from: Option<Str>,
    pub importance: Option<Str>,
    pub options: Vec<Str>,
    pub message: Option<Str>,
    pub method: Str,
}

#[derive(Debug)]
pub enum Cmd {
    If(Vec<(Cond, Vec<Cmd>)>, Option<Vec<Cmd>>),
    Stop,
    Keep {
        flags: Option<Vec<Str>>,
    },
    Discard,
    Fileinto {
        mailbox: Str,
        flags: Option<Vec<Str>>,
        copy: bool,
        create: bool,
    },
    Redirect {
        address: Str,
        copy: bool,
    },
    Reject {
        reason: Str,
        ereject: bool,
    },
    Set {
        name: String,
        value: Str,
        mods: Vec<Modifier>,
    },
    Flags {
        op: FlagOp,
        var: Option<String>,
        list: Vec<Str>,
    },
    Vacation(Box<Vacation>),
    Notify(Box<Notify>),
    Include {
        key: String,
        prog: Option<Arc<Program>>,
        once: bool,
    },
    Return,
    Global(Vec<String>),
    /// Where the next commands start in the source (for run errors).
    Line(u32),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddrPart {
    All,
    Local,
    Domain,
    User,
    Detail,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyTransform {
    Raw,
    Text,
    Content,
}

#[derive(Debug)]
pub enum Zone {
    Local,
    Original,
    Fixed(Str),
}

#[derive(Debug)]
pub enum Cond {
    True,
    False,
    Not(Box<Cond>),
    AllOf(Vec<Cond>),
    AnyOf(Vec<Cond>),
    Exists(Vec<Str>),
    Size {
        over: bool,
        limit: u64,
    },
    Header {
        names: Vec<Str>,
        keys: Vec<Str>,
        m: Match,
        index: Option<(u64, bool)>,
    },
    Address {
        part: AddrPart,
        names: Vec<Str>,
        keys: Vec<Str>,
        m: Match,
        index: Option<(u64, bool)>,
    },
    Envelope {
        part: AddrPart,
        names: Vec<Str>,
        keys: Vec<Str>,
        m: Match,
    },
    String {
        sources: Vec<Str>,
        keys: Vec<Str>,
        m: Match,
    },
    Body {
        transform: BodyTransform,
        types: Vec<Str>,
        keys: Vec<Str>,
        m: Match,
    },
    Date {
        zone: Zone,
        header: Str,
        part: Str,
        keys: Vec<Str>,
        m: Match,
        index: Option<(u64, bool)>,
    },
    CurrentDate {
        zone: Zone,
        part: Str,
        keys: Vec<Str>,
        m: Match,
    },
    HasFlag {
        vars: Vec<String>,
        flags: Vec<Str>,
        m: Match,
    },
    MailboxExists(Vec<Str>),
    Duplicate {
        handle: Option<Str>,
        header: Option<Str>,
        uniqueid: Option<Str>,
        seconds: Option<u64>,
        last: bool,
    },
    SpamTest {
        percent: bool,
        keys: Vec<Str>,
        m: Match,
    },
    VirusTest {
        keys: Vec<Str>,
        m: Match,
    },
    ValidNotifyMethod(Vec<Str>),
    NotifyMethodCapability {
        uri: Str,
        cap: Str,
        keys: Vec<Str>,
        m: Match,
    },
}

/// The compiler's state for one script.
struct Compiler<'a> {
    enabled: Extensions,
    required: Extensions,
    loader: Option<&'a dyn Loader>,
    limits: &'a Limits,
    /// Names of the scripts being compiled (the include stack).
    stack: &'a mut Vec<String>,
    includes: &'a mut usize,
}

pub fn compile_program(
    src: &str,
    enabled: Extensions,
    loader: Option<&dyn Loader>,
    limits: &Limits,
    stack: &mut Vec<String>,
    includes: &mut usize,
) -> Result<Program, CompileError> {
    if src.len() > limits.max_script_size {
        return Err(Pos { line: 1, column: 1 }.error(format!(
            "script too large ({} bytes, at most {})",
            src.len(),
            limits.max_script_size
        )));
    }
    let tree = parser::parse(src)?;
    let mut c = Compiler {
        enabled,
        required: Extensions::none(),
        loader,
        limits,
        stack,
        includes,
    };
    let mut cmds = Vec::new();
    let mut at_top = true;
    for cmd in &tree {
        if cmd.name == "require" {
            if !at_top {
                return Err(cmd.pos.error("require must come before any other command"));
            }
            c.require(cmd)?;
            continue;
        }
        at_top = false;
        c.command(cmd, &mut cmds, &Ctx::Top)?;
    }
    Ok(Program {
        cmds,
        size: src.len(),
    })
}

/// Where a command stands: `elsif` and `else` need an `if` before them.
#[derive(PartialEq)]
enum Ctx {
    Top,
    Block,
}

/// The arguments of a command or test, consumed in order.
struct Args<'t> {
    items: &'t [Arg],
    i: usize,
    what: &'t str,
    pos: Pos,
}

impl<'t> Args<'t> {
    fn new(items: &'t [Arg], what: &'t str, pos: Pos) -> Args<'t> {
        Args {
            items,
            i: 0,
            what,
            pos,
        }
    }

    fn peek_tag(&self) -> Option<(&'t str, Pos)> {
        match self.items.get(self.i) {
            Some(Arg::Tag(t, p)) => Some((t.as_str(), *p)),
            _ => None,
        }
    }

    fn next_any(&mut self) -> Option<&'t Arg> {
        let a = self.items.get(self.i);
        self.i += 1;
        a
    }

    fn here(&self) -> Pos {
        self.items.get(self.i).map(|a| a.pos()).unwrap_or(self.pos)
    }

    fn string_raw(&mut self, for_what: &str) -> Result<(String, Pos), CompileError> {
        let pos = self.here();
        match self.next_any() {
            Some(Arg::Str(s, p)) => Ok((s.clone(), *p)),
            Some(Arg::List(l, p)) if l.len() == 1 => Ok((l[0].0.clone(), *p)),
            _ => Err(pos.error(format!("{}: expected a string for {for_what}", self.what))),
        }
    }

    fn list_raw(&mut self, for_what: &str) -> Result<Vec<(String, Pos)>, CompileError> {
        let pos = self.here();
        match self.next_any() {
            Some(Arg::Str(s, p)) => Ok(vec![(s.clone(), *p)]),
            Some(Arg::List(l, _)) => Ok(l.clone()),
            _ => Err(pos.error(format!(
                "{}: expected a string or string list for {for_what}",
                self.what
            ))),
        }
    }

    fn number(&mut self, for_what: &str) -> Result<u64, CompileError> {
        let pos = self.here();
        match self.next_any() {
            Some(Arg::Num(n, _)) => Ok(*n),
            _ => Err(pos.error(format!("{}: expected a number for {for_what}", self.what))),
        }
    }

    fn done(&self) -> Result<(), CompileError> {
        match self.items.get(self.i) {
            None => Ok(()),
            Some(Arg::Tag(t, p)) => {
                Err(p.error(format!("{}: unknown tagged argument \":{t}\"", self.what)))
            }
            Some(a) => Err(a.pos().error(format!("{}: too many arguments", self.what))),
        }
    }

    fn missing(&self, for_what: &str) -> CompileError {
        self.here()
            .error(format!("{}: missing argument: {for_what}", self.what))
    }

    fn has_more(&self) -> bool {
        self.i < self.items.len()
    }
}

/// Tagged arguments shared by the tests that compare strings.
#[derive(Default)]
struct Common {
    kind: Option<(MatchKind, Pos)>,
    cmp: Option<(Comparator, Pos)>,
    part: Option<AddrPart>,
    index: Option<u64>,
    last: bool,
    last_pos: Option<Pos>,
}

impl Compiler<'_> {
    fn has(&self, ext: Extension) -> bool {
        self.required.contains(ext)
    }

    fn need(&self, ext: Extension, pos: Pos, what: &str) -> Result<(), CompileError> {
        if self.has(ext) {
            Ok(())
        } else {
            Err(pos.error(format!(
                "{what} requires the \"{}\" extension (missing require)",
                ext.name()
            )))
        }
    }

    fn require(&mut self, cmd: &Command) -> Result<(), CompileError> {
        if cmd.block.is_some() || !cmd.tests.is_empty() {
            return Err(cmd.pos.error("require takes only a string list"));
        }
        let mut a = Args::new(&cmd.args, "require", cmd.pos);
        let names = a.list_raw("the capabilities")?;
        a.done()?;
        for (name, pos) in names {
            let ext = match name.as_str() {
                "comparator-i;octet" | "comparator-i;ascii-casemap" => continue,
                other => Extension::from_name(other),
            };
            match ext {
                Some(e) if self.enabled.contains(e) => {
                    self.required = self.required.with(e);
                    if e == Extension::Spamtestplus {
                        self.required = self.required.with(Extension::Spamtest);
                    }
                    if e == Extension::Ereject {
                        // Pigeonhole allows "ereject" alone; both spell
                        // the same action family.
                    }
                }
                _ => return Err(pos.error(format!("unsupported extension \"{name}\""))),
            }
        }
        Ok(())
    }

    /// A string as the script means it: encoded characters decoded, and
    /// variables split out when required.
    fn text(&self, s: &str) -> Str {
        let s = if self.has(Extension::EncodedCharacter) {
            value::decode_encoded(s)
        } else {
            s.to_string()
        };
        if self.has(Extension::Variables) {
            value::template(&s)
        } else {
            Str::Lit(s)
        }
    }

    fn texts(&self, l: &[(String, Pos)]) -> Vec<Str> {
        l.iter().map(|(s, _)| self.text(s)).collect()
    }

    fn block<'t>(&mut self, cmd: &'t Command) -> Result<&'t [Command], CompileError> {
        cmd.block
            .as_deref()
            .ok_or_else(|| cmd.pos.error(format!("{} needs a block", cmd.name)))
    }

    fn commands(&mut self, list: &[Command]) -> Result<Vec<Cmd>, CompileError> {
        let mut out = Vec::new();
        for c in list {
            self.command(c, &mut out, &Ctx::Block)?;
        }
        Ok(out)
    }

    fn no_block(cmd: &Command) -> Result<(), CompileError> {
        if cmd.block.is_some() {
            return Err(cmd.pos.error(format!("{} takes no block", cmd.name)));
        }
        if !cmd.tests.is_empty() {
            // "keep discard;" is almost always a forgotten ";".
            return Err(cmd
                .args_end
                .error(format!("missing \";\" after the {} command", cmd.name)));
        }
        Ok(())
    }

    fn command(
        &mut self,
        cmd: &Command,
        out: &mut Vec<Cmd>,
        _ctx: &Ctx,
    ) -> Result<(), CompileError> {
        out.push(Cmd::Line(cmd.pos.line));
        let name = cmd.name.as_str();
        let mut a = Args::new(&cmd.args, name, cmd.pos);
        match name {
            "if" | "elsif" | "else" => {
                if name != "if" {
                    // Attach to the if just before (skipping line marks).
                    let prev = out.iter_mut().rev().find(|c| !matches!(c, Cmd::Line(_)));
                    let Some(Cmd::If(branches, els)) = prev else {
                        return Err(cmd.pos.error(format!("{name} without a preceding if")));
                    };
                    if els.is_some() {
                        return Err(cmd.pos.error(format!("{name} after else")));
                    }
                    if name == "else" {
                        a.done()?;
                        if !cmd.tests.is_empty() {
                            return Err(cmd.pos.error("else takes no test"));
                        }
                        let body = self.block(cmd)?;
                        *els = Some(self.commands(body)?);
                    } else {
                        let t = self.single_test(cmd)?;
                        a.done()?;
                        let body = self.block(cmd)?;
                        let body = self.commands(body)?;
                        branches.push((t, body));
                    }
                    out.pop(); // the line mark: the if's own stands
                    return Ok(());
                }
                let t = self.single_test(cmd)?;
                a.done()?;
                let body = self.block(cmd)?;
                let body = self.commands(body)?;
                out.push(Cmd::If(vec![(t, body)], None));
                return Ok(());
            }
            "require" => return Err(cmd.pos.error("require must come before any other command")),
            _ => {}
        }
        Self::no_block(cmd)?;
        let c = match name {
            "stop" => Cmd::Stop,
            "keep" => {
                let flags = self.flags_tag(&mut a)?;
                Cmd::Keep { flags }
            }
            "discard" => Cmd::Discard,
            "fileinto" => {
                self.need(Extension::Fileinto, cmd.pos, "fileinto")?;
                let (mut flags, mut copy, mut create) = (None, false, false);
                while let Some((t, p)) = a.peek_tag() {
                    match t {
                        "copy" => {
                            self.need(Extension::Copy, p, ":copy")?;
                            a.i += 1;
                            copy = true;
                        }
                        "create" => {
                            self.need(Extension::Mailbox, p, ":create")?;
                            a.i += 1;
                            create = true;
                        }
                        "flags" => flags = self.flags_tag(&mut a)?,
                        _ => break,
                    }
                }
                let (mb, _) = a.string_raw("the mailbox")?;
                Cmd::Fileinto {
                    mailbox: self.text(&mb),
                    flags,
                    copy,
                    create,
                }
            }
            "redirect" => {
                let mut copy = false;
                if let Some(("copy", p)) = a.peek_tag() {
                    self.need(Extension::Copy, p, ":copy")?;
                    a.i += 1;
                    copy = true;
                }
                let (addr, p) = a.string_raw("the address")?;
                let address = self.text(&addr);
                if let Some(lit) = address.literal() {
                    if !valid_address(lit) {
                        return Err(p.error(format!("redirect: invalid address \"{lit}\"")));
                    }
                }
                Cmd::Redirect { address, copy }
            }
            "reject" | "ereject" => {
                let ext = if name == "reject" {
                    Extension::Reject
                } else {
                    Extension::Ereject
                };
                self.need(ext, cmd.pos, name)?;
                let (r, _) = a.string_raw("the reason")?;
                Cmd::Reject {
                    reason: self.text(&r),
                    ereject: name == "ereject",
                }
            }
            "set" => {
                self.need(Extension::Variables, cmd.pos, "set")?;
                let mut mods: Vec<Modifier> = Vec::new();
                while let Some((t, p)) = a.peek_tag() {
                    let m = match t {
                        "lower" => Modifier::Lower,
                        "upper" => Modifier::Upper,
                        "lowerfirst" => Modifier::LowerFirst,
                        "upperfirst" => Modifier::UpperFirst,
                        "quotewildcard" => Modifier::QuoteWildcard,
                        "length" => Modifier::Length,
                        "encodeurl" => {
                            self.need(Extension::Enotify, p, ":encodeurl")?;
                            Modifier::EncodeUrl
                        }
                        _ => break,
                    };
                    if mods.iter().any(|o| o.precedence() == m.precedence()) {
                        return Err(p.error(format!(
                            "set: modifier \":{t}\" conflicts with another of the same precedence"
                        )));
                    }
                    mods.push(m);
                    a.i += 1;
                }
                mods.sort_by_key(|m| std::cmp::Reverse(m.precedence()));
                let (n, p) = a.string_raw("the variable name")?;
                if !value::is_identifier(&n) {
                    return Err(p.error(format!("set: invalid variable name \"{n}\"")));
                }
                let (v, _) = a.string_raw("the value")?;
                Cmd::Set {
                    name: n.to_ascii_lowercase(),
                    value: self.text(&v),
                    mods,
                }
            }
            "setflag" | "addflag" | "removeflag" => {
                self.need(Extension::Imap4flags, cmd.pos, name)?;
                let op = match name {
                    "setflag" => FlagOp::Set,
                    "addflag" => FlagOp::Add,
                    _ => FlagOp::Remove,
                };
                let first = a.list_raw("the flags")?;
                let (var, list) = if a.has_more() {
                    self.need(Extension::Variables, cmd.pos, "a flag variable")?;
                    if first.len() != 1 || !value::is_identifier(&first[0].0) {
                        return Err(first
                            .first()
                            .map(|f| f.1)
                            .unwrap_or(cmd.pos)
                            .error(format!("{name}: invalid variable name")));
                    }
                    let l = a.list_raw("the flags")?;
                    (Some(first[0].0.to_ascii_lowercase()), self.texts(&l))
                } else {
                    (None, self.texts(&first))
                };
                Cmd::Flags { op, var, list }
            }
            "vacation" => self.vacation(&mut a, cmd.pos)?,
            "notify" => self.notify(&mut a, cmd.pos)?,
            "include" => self.include(&mut a, cmd.pos)?,
            "return" => {
                self.need(Extension::Include, cmd.pos, "return")?;
                Cmd::Return
            }
            "global" => {
                self.need(Extension::Include, cmd.pos, "global")?;
                self.need(Extension::Variables, cmd.pos, "global")?;
                let l = a.list_raw("the variable names")?;
                for (n, p) in &l {
                    if !value::is_identifier(n) {
                        return Err(p.error(format!("global: invalid variable name \"{n}\"")));
                    }
                }
                Cmd::Global(l.into_iter().map(|(n, _)| n.to_ascii_lowercase()).collect())
            }
            _ => return Err(cmd.pos.error(format!("unknown command \"{name}\""))),
        };
        a.done()?;
        out.push(c);
        Ok(())
    }

    fn flags_tag(&mut self, a: &mut Args) -> Result<Option<Vec<Str>>, CompileError> {
        match a.peek_tag() {
            Some(("flags", p)) => {
                self.need(Extension::Imap4flags, p, ":flags")?;
                a.i += 1;
                let l = a.list_raw(":flags")?;
                Ok(Some(self.texts(&l)))
            }
            _ => Ok(None),
        }
    }

    fn vacation(&mut self, a: &mut Args, pos: Pos) -> Result<Cmd, CompileError> {
        self.need(Extension::Vacation, pos, "vacation")?;
        let mut v = Vacation {
            period: None,
            seconds: false,
            subject: None,
            from: None,
            addresses: Vec::new(),
            mime: false,
            handle: None,
            reason: Str::Lit(String::new()),
        };
        let mut period_seen = false;
        while let Some((t, p)) = a.peek_tag() {
            a.i += 1;
            match t {
                "days" | "seconds" => {
                    if t == "seconds" {
                        self.need(Extension::VacationSeconds, p, ":seconds")?;
                    }
                    if period_seen {
                        return Err(p.error("vacation: :days and :seconds given together"));
                    }
                    period_seen = true;
                    v.seconds = t == "seconds";
                    v.period = Some(a.number(t)?);
                }
                "subject" => v.subject = Some(self.text(&a.string_raw(":subject")?.0)),
                "from" => {
                    let (f, fp) = a.string_raw(":from")?;
                    let f = self.text(&f);
                    if let Some(lit) = f.literal() {
                        if !valid_address(&bare_address(lit)) {
                            return Err(
                                fp.error(format!("vacation: invalid :from address \"{lit}\""))
                            );
                        }
                    }
                    v.from = Some(f);
                }
                "addresses" => v.addresses = self.texts(&a.list_raw(":addresses")?),
                "mime" => v.mime = true,
                "handle" => v.handle = Some(self.text(&a.string_raw(":handle")?.0)),
                _ => return Err(p.error(format!("vacation: unknown tagged argument \":{t}\""))),
            }
        }
        if !a.has_more() {
            return Err(a.missing("the reason"));
        }
        v.reason = self.text(&a.string_raw("the reason")?.0);
        Ok(Cmd::Vacation(Box::new(v)))
    }

    fn notify(&mut self, a: &mut Args, pos: Pos) -> Result<Cmd, CompileError> {
        self.need(Extension::Enotify, pos, "notify")?;
        let mut n = Notify {
            from: None,
            importance: None,
            options: Vec::new(),
            message: None,
            method: Str::Lit(String::new()),
        };
        while let Some((t, p)) = a.peek_tag() {
            a.i += 1;
            match t {
                "from" => n.from = Some(self.text(&a.string_raw(":from")?.0)),
                "importance" => {
                    let (s, sp) = a.string_raw(":importance")?;
                    if !matches!(s.as_str(), "1" | "2" | "3") {
                        return Err(sp.error("notify: :importance must be \"1\", \"2\" or \"3\""));
                    }
                    n.importance = Some(self.text(&s));
                }
                "options" => {
                    let l = a.list_raw(":options")?;
                    // RFC 5435 3.3: option = option-name "=" value.
                    for (o, op) in &l {
                        let name = o.split_once('=').map(|(n, _)| n);
                        let ok = name.is_some_and(|n| {
                            n.starts_with(|c: char| c.is_ascii_alphanumeric())
                                && n.chars()
                                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
                        });
                        if !ok && !(self.has(Extension::Variables) && o.contains("${")) {
                            return Err(op.error(format!("notify: invalid option \"{o}\"")));
                        }
                    }
                    n.options = self.texts(&l);
                }
                "message" => n.message = Some(self.text(&a.string_raw(":message")?.0)),
                _ => return Err(p.error(format!("notify: unknown tagged argument \":{t}\""))),
            }
        }
        let (m, mp) = a.string_raw("the method")?;
        let method = self.text(&m);
        if let Some(lit) = method.literal() {
            if let Err(e) = super::notify::check_uri(lit) {
                return Err(mp.error(format!("notify: {e}")));
            }
        }
        n.method = method;
        Ok(Cmd::Notify(Box::new(n)))
    }

    fn include(&mut self, a: &mut Args, pos: Pos) -> Result<Cmd, CompileError> {
        self.need(Extension::Include, pos, "include")?;
        let (mut loc, mut once, mut optional) = (Location::Personal, false, false);
        let mut loc_seen = false;
        while let Some((t, p)) = a.peek_tag() {
            a.i += 1;
            match t {
                "personal" | "global" => {
                    if loc_seen {
                        return Err(p.error("include: :personal and :global given together"));
                    }
                    loc_seen = true;
                    loc = if t == "global" {
                        Location::Global
                    } else {
                        Location::Personal
                    };
                }
                "once" => once = true,
                "optional" => optional = true,
                _ => return Err(p.error(format!("include: unknown tagged argument \":{t}\""))),
            }
        }
        let (name, np) = a.string_raw("the script name")?;
        if name.is_empty() || name.contains('/') || name.contains('\0') || name.starts_with('.') {
            return Err(np.error(format!("include: invalid script name \"{name}\"")));
        }
        let key = format!(
            "{}:{name}",
            if loc == Location::Global {
                "global"
            } else {
                "personal"
            }
        );
        if self.stack.iter().any(|s| *s == key) {
            return Err(np.error(format!("include: \"{name}\" includes itself")));
        }
        if self.stack.len() >= self.limits.max_include_depth {
            return Err(np.error("include: nested too deep"));
        }
        *self.includes += 1;
        if *self.includes > self.limits.max_includes {
            return Err(np.error("include: too many included scripts"));
        }
        let Some(loader) = self.loader else {
            return Err(np.error("include: no scripts to include from here"));
        };
        let src = match loader.load(&name, loc) {
            Ok(Some(s)) => s,
            Ok(None) if optional => {
                return Ok(Cmd::Include {
                    key,
                    prog: None,
                    once,
                })
            }
            Ok(None) => return Err(np.error(format!("include: script \"{name}\" not found"))),
            Err(e) => return Err(np.error(format!("include: script \"{name}\": {e}"))),
        };
        self.stack.push(key.clone());
        let sub = compile_program(
            &src,
            self.enabled,
            self.loader,
            self.limits,
            self.stack,
            self.includes,
        );
        self.stack.pop();
        let prog = sub.map_err(|e| np.error(format!("include: script \"{name}\": {e}")))?;
        Ok(Cmd::Include {
            key,
            prog: Some(Arc::new(prog)),
            once,
        })
    }

    fn single_test(&mut self, cmd: &Command) -> Result<Cond, CompileError> {
        if cmd.tests.len() != 1 || cmd.test_list {
            return Err(cmd
                .pos
                .error(format!("{} needs exactly one test", cmd.name)));
        }
        self.test(&cmd.tests[0])
    }

    fn test(&mut self, t: &Test) -> Result<Cond, CompileError> {
        let name = t.name.as_str();
        let mut a = Args::new(&t.args, name, t.pos);
        let subtests = matches!(name, "not" | "allof" | "anyof");
        if !subtests {
            if let Some(s) = t.tests.first() {
                return Err(s.pos.error(format!("{name} takes no test")));
            }
        }
        let c = match name {
            "true" => Cond::True,
            "false" => Cond::False,
            "not" => {
                if t.tests.len() != 1 || t.test_list {
                    return Err(t.pos.error("not needs exactly one test"));
                }
                Cond::Not(Box::new(self.test(&t.tests[0])?))
            }
            "allof" | "anyof" => {
                if !t.test_list {
                    return Err(t.pos.error(format!("{name} needs a test list")));
                }
                let mut list = Vec::new();
                for s in &t.tests {
                    list.push(self.test(s)?);
                }
                if name == "allof" {
                    Cond::AllOf(list)
                } else {
                    Cond::AnyOf(list)
                }
            }
            "exists" => Cond::Exists(self.texts(&a.list_raw("the header names")?)),
            "size" => {
                let over = match a.peek_tag() {
                    Some(("over", _)) => true,
                    Some(("under", _)) => false,
                    _ => return Err(a.here().error("size: expected :over or :under")),
                };
                a.i += 1;
                Cond::Size {
                    over,
                    limit: a.number("the size")?,
                }
            }
            "header" => {
                let c = self.common(&mut a, false, true)?;
                let names = self.texts(&a.list_raw("the header names")?);
                let keys = self.keys(&mut a, &c)?;
                Cond::Header {
                    names,
                    keys,
                    m: self.finish(&c, t.pos)?,
                    index: self.index(&c)?,
                }
            }
            "address" => {
                let c = self.common(&mut a, true, true)?;
                let names = self.texts(&a.list_raw("the header names")?);
                let keys = self.keys(&mut a, &c)?;
                Cond::Address {
                    part: c.part.unwrap_or(AddrPart::All),
                    names,
                    keys,
                    m: self.finish(&c, t.pos)?,
                    index: self.index(&c)?,
                }
            }
            "envelope" => {
                self.need(Extension::Envelope, t.pos, "envelope")?;
                let c = self.common(&mut a, true, false)?;
                let names = a.list_raw("the envelope parts")?;
                for (n, p) in &names {
                    let n = n.to_ascii_lowercase();
                    if !self.has(Extension::Variables) || !n.contains("${") {
                        if !matches!(n.as_str(), "from" | "to" | "auth") {
                            return Err(p.error(format!("envelope: unknown envelope part \"{n}\"")));
                        }
                    }
                }
                let keys = self.keys(&mut a, &c)?;
                Cond::Envelope {
                    part: c.part.unwrap_or(AddrPart::All),
                    names: self.texts(&names),
                    keys,
                    m: self.finish(&c, t.pos)?,
                }
            }
            "string" => {
                self.need(Extension::Variables, t.pos, "string")?;
                let c = self.common(&mut a, false, false)?;
                let sources = self.texts(&a.list_raw("the source strings")?);
                let keys = self.keys(&mut a, &c)?;
                Cond::String {
                    sources,
                    keys,
                    m: self.finish(&c, t.pos)?,
                }
            }
            "body" => {
                self.need(Extension::Body, t.pos, "body")?;
                let mut transform = None;
                let mut types = Vec::new();
                let mut c = Common::default();
                while let Some((tag, p)) = a.peek_tag() {
                    match tag {
                        "raw" | "text" | "content" => {
                            if transform.is_some() {
                                return Err(p.error("body: more than one transform"));
                            }
                            a.i += 1;
                            transform = Some(match tag {
                                "raw" => BodyTransform::Raw,
                                "text" => BodyTransform::Text,
                                _ => {
                                    types = self.texts(&a.list_raw(":content")?);
                                    BodyTransform::Content
                                }
                            });
                        }
                        _ => {
                            if !self.common_tag(&mut a, &mut c, false, false)? {
                                break;
                            }
                        }
                    }
                }
                let keys = self.keys(&mut a, &c)?;
                Cond::Body {
                    transform: transform.unwrap_or(BodyTransform::Text),
                    types,
                    keys,
                    m: self.finish(&c, t.pos)?,
                }
            }
            "date" | "currentdate" => {
                self.need(Extension::Date, t.pos, name)?;
                let mut zone = Zone::Local;
                let mut c = Common::default();
                let mut zone_seen = false;
                while let Some((tag, p)) = a.peek_tag() {
                    match tag {
                        "zone" | "originalzone" => {
                            if zone_seen {
                                return Err(p.error(format!("{name}: more than one zone argument")));
                            }
                            if tag == "originalzone" && name == "currentdate" {
                                return Err(p.error(
                                    "currentdate: unknown tagged argument \":originalzone\"",
                                ));
                            }
                            zone_seen = true;
                            a.i += 1;
                            zone = if tag == "zone" {
                                let (z, zp) = a.string_raw(":zone")?;
                                let zs = self.text(&z);
                                if let Some(lit) = zs.literal() {
                                    if super::date::parse_zone(lit).is_none() {
                                        return Err(
                                            zp.error(format!("{name}: invalid :zone \"{lit}\""))
                                        );
                                    }
                                }
                                Zone::Fixed(zs)
                            } else {
                                Zone::Original
                            };
                        }
                        _ => {
                            if !self.common_tag(&mut a, &mut c, false, name == "date")? {
                                break;
                            }
                        }
                    }
                }
                let header = if name == "date" {
                    Some(self.text(&a.string_raw("the header name")?.0))
                } else {
                    None
                };
                // An unknown date part makes the test false at run time,
                // as in Pigeonhole, so that scripts move between servers.
                let (part, _) = a.string_raw("the date part")?;
                let part_s = self.text(&part);
                let keys = self.keys(&mut a, &c)?;
                let m = self.finish(&c, t.pos)?;
                match header {
                    Some(header) => Cond::Date {
                        zone,
                        header,
                        part: part_s,
                        keys,
                        m,
                        index: self.index(&c)?,
                    },
                    None => Cond::CurrentDate {
                        zone,
                        part: part_s,
                        keys,
                        m,
                    },
                }
            }
            "hasflag" => {
                self.need(Extension::Imap4flags, t.pos, "hasflag")?;
                let c = self.common(&mut a, false, false)?;
                let first = a.list_raw("the flags")?;
                let (vars, flags) = if a.has_more() {
                    self.need(Extension::Variables, t.pos, "a flag variable")?;
                    for (n, p) in &first {
                        if !value::is_identifier(n) {
                            return Err(p.error(format!("hasflag: invalid variable name \"{n}\"")));
                        }
                    }
                    let keys = self.keys(&mut a, &c)?;
                    (
                        first.iter().map(|(n, _)| n.to_ascii_lowercase()).collect(),
                        keys,
                    )
                } else {
                    (Vec::new(), self.texts(&first))
                };
                Cond::HasFlag {
                    vars,
                    flags,
                    m: self.finish(&c, t.pos)?,
                }
            }
            "mailboxexists" => {
                self.need(Extension::Mailbox, t.pos, "mailboxexists")?;
                Cond::MailboxExists(self.texts(&a.list_raw("the mailbox names")?))
            }
            "duplicate" => {
                self.need(Extension::Duplicate, t.pos, "duplicate")?;
                let (mut handle, mut header, mut uniqueid, mut seconds, mut last) =
                    (None, None, None, None, false);
                while let Some((tag, p)) = a.peek_tag() {
                    a.i += 1;
                    match tag {
                        "handle" => handle = Some(self.text(&a.string_raw(":handle")?.0)),
                        "header" | "uniqueid" => {
                            if header.is_some() || uniqueid.is_some() {
                                return Err(
                                    p.error("duplicate: :header and :uniqueid given together")
                                );
                            }
                            let v = Some(self.text(&a.string_raw(tag)?.0));
                            if tag == "header" {
                                header = v;
                            } else {
                                uniqueid = v;
                            }
                        }
                        "seconds" => seconds = Some(a.number(":seconds")?),
                        "last" => last = true,
                        _ => {
                            return Err(
                                p.error(format!("duplicate: unknown tagged argument \":{tag}\""))
                            )
                        }
                    }
                }
                Cond::Duplicate {
                    handle,
                    header,
                    uniqueid,
                    seconds,
                    last,
                }
            }
            "spamtest" => {
                self.need(Extension::Spamtest, t.pos, "spamtest")?;
                let mut c = Common::default();
                let mut percent = false;
                while let Some((tag, p)) = a.peek_tag() {
                    if tag == "percent" {
                        self.need(Extension::Spamtestplus, p, ":percent")?;
                        a.i += 1;
                        percent = true;
                    } else if !self.common_tag(&mut a, &mut c, false, false)? {
                        break;
                    }
                }
                let (k, _) = a.string_raw("the value")?;
                Cond::SpamTest {
                    percent,
                    keys: vec![self.text(&k)],
                    m: self.finish(&c, t.pos)?,
                }
            }
            "virustest" => {
                self.need(Extension::Virustest, t.pos, "virustest")?;
                let c = self.common(&mut a, false, false)?;
                let (k, _) = a.string_raw("the value")?;
                Cond::VirusTest {
                    keys: vec![self.text(&k)],
                    m: self.finish(&c, t.pos)?,
                }
            }
            "valid_notify_method" => {
                self.need(Extension::Enotify, t.pos, name)?;
                Cond::ValidNotifyMethod(self.texts(&a.list_raw("the URIs")?))
            }
            "notify_method_capability" => {
                self.need(Extension::Enotify, t.pos, name)?;
                let c = self.common(&mut a, false, false)?;
                let uri = self.text(&a.string_raw("the URI")?.0);
                let cap = self.text(&a.string_raw("the capability")?.0);
                let keys = self.keys(&mut a, &c)?;
                Cond::NotifyMethodCapability {
                    uri,
                    cap,
                    keys,
                    m: self.finish(&c, t.pos)?,
                }
            }
            _ => return Err(t.pos.error(format!("unknown test \"{name}\""))),
        };
        a.done()?;
        Ok(c)
    }

    fn keys(&mut self, a: &mut Args, _c: &Common) -> Result<Vec<Str>, CompileError> {
        if !a.has_more() {
            return Err(a.missing("the key list"));
        }
        Ok(self.texts(&a.list_raw("the key list")?))
    }

    fn common(&mut self, a: &mut Args, addr: bool, index: bool) -> Result<Common, CompileError> {
        let mut c = Common::default();
        while self.common_tag(a, &mut c, addr, index)? {}
        Ok(c)
    }

    /// One tagged argument shared by comparing tests; false when the next
    /// argument is not one.
    fn common_tag(
        &mut self,
        a: &mut Args,
        c: &mut Common,
        addr: bool,
        index: bool,
    ) -> Result<bool, CompileError> {
        let Some((t, p)) = a.peek_tag() else {
            return Ok(false);
        };
        let what = a.what;
        let kind = match t {
            "is" => Some(MatchKind::Is),
            "contains" => Some(MatchKind::Contains),
            "matches" => Some(MatchKind::Matches),
            "value" | "count" => {
                self.need(Extension::Relational, p, &format!(":{t}"))?;
                None
            }
            _ => None,
        };
        if kind.is_some() || t == "value" || t == "count" {
            if c.kind.is_some() {
                return Err(p.error(format!("{what}: more than one match type")));
            }
            a.i += 1;
            let k = match kind {
                Some(k) => k,
                None => {
                    let (r, rp) = a.string_raw("the relation")?;
                    let rel = Relation::parse(&r)
                        .ok_or_else(|| rp.error(format!("{what}: invalid relation \"{r}\"")))?;
                    if t == "value" {
                        MatchKind::Value(rel)
                    } else {
                        MatchKind::Count(rel)
                    }
                }
            };
            c.kind = Some((k, p));
            return Ok(true);
        }
        match t {
            "comparator" => {
                if c.cmp.is_some() {
                    return Err(p.error(format!("{what}: more than one comparator")));
                }
                a.i += 1;
                let (n, np) = a.string_raw(":comparator")?;
                let cmp = Comparator::parse(&n)
                    .ok_or_else(|| np.error(format!("{what}: unknown comparator \"{n}\"")))?;
                if cmp == Comparator::AsciiNumeric {
                    self.need(
                        Extension::ComparatorAsciiNumeric,
                        np,
                        "comparator \"i;ascii-numeric\"",
                    )?;
                }
                c.cmp = Some((cmp, np));
                Ok(true)
            }
            "all" | "localpart" | "domain" | "user" | "detail" if addr => {
                if c.part.is_some() {
                    return Err(p.error(format!("{what}: more than one address part")));
                }
                if matches!(t, "user" | "detail") {
                    self.need(Extension::Subaddress, p, &format!(":{t}"))?;
                }
                a.i += 1;
                c.part = Some(match t {
                    "all" => AddrPart::All,
                    "localpart" => AddrPart::Local,
                    "domain" => AddrPart::Domain,
                    "user" => AddrPart::User,
                    _ => AddrPart::Detail,
                });
                Ok(true)
            }
            "index" if index => {
                self.need(Extension::Index, p, ":index")?;
                a.i += 1;
                let n = a.number(":index")?;
                if n == 0 {
                    return Err(p.error(format!("{what}: :index must be at least 1")));
                }
                c.index = Some(n);
                Ok(true)
            }
            "last" if index => {
                self.need(Extension::Index, p, ":last")?;
                a.i += 1;
                c.last = true;
                c.last_pos = Some(p);
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    fn finish(&self, c: &Common, _pos: Pos) -> Result<Match, CompileError> {
        let kind = c.kind.map(|k| k.0).unwrap_or(MatchKind::Is);
        let cmp = c.cmp.map(|k| k.0).unwrap_or(Comparator::AsciiCasemap);
        if !cmp.substring() && matches!(kind, MatchKind::Contains | MatchKind::Matches) {
            let p = c.kind.map(|k| k.1).unwrap_or(_pos);
            return Err(p.error("comparator \"i;ascii-numeric\" does not support this match type"));
        }
        Ok(Match { kind, cmp })
    }

    fn index(&self, c: &Common) -> Result<Option<(u64, bool)>, CompileError> {
        match (c.index, c.last_pos) {
            (Some(n), _) => Ok(Some((n, c.last))),
            (None, Some(p)) => Err(p.error(":last needs :index")),
            (None, None) => Ok(None),
        }
    }
}

/// An addr-spec good enough to send to (RFC 5228 4.2: the address must
/// be syntactically valid).
pub fn valid_address(a: &str) -> bool {
    let Some((local, domain)) = a.rsplit_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.is_empty()
        && !a
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '<' || c == '>' || c == ',')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains("..")
}

/// The addr-spec of "Name <a@b>" or "a@b".
pub fn bare_address(s: &str) -> String {
    match (s.rfind('<'), s.rfind('>')) {
        (Some(a), Some(b)) if a < b => s[a + 1..b].trim().to_string(),
        _ => s.trim().to_string(),
    }
}
