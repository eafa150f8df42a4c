//! From the syntax tree to the compiled form: every command and test is
//! checked against RFC 5228 and the extensions the script `require`s
//! (using one that is not required is an error, as in Pigeonhole), its
//! tagged arguments resolved, strings split into templates, and includes
//! loaded through the caller's [`Loader`].

use std::sync::Arc;

use super::lexer::Pos;
use super::parser::{self, Arg, Command};
use super::value::{self, Str};
use super::{CompileError, Extension, Extensions, Limits, Loader, Location};

pub use super::conds::{AddrPart, BodyTransform, Cond, Zone};

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
    pub(super) fn precedence(self) -> u8 {
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

/// The compiler's state for one script.
pub(super) struct Compiler<'a> {
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
pub(super) struct Args<'t> {
    items: &'t [Arg],
    pub(super) i: usize,
    pub(super) what: &'t str,
    pos: Pos,
}

impl<'t> Args<'t> {
    pub(super) fn new(items: &'t [Arg], what: &'t str, pos: Pos) -> Args<'t> {
        Args {
            items,
            i: 0,
            what,
            pos,
        }
    }

    pub(super) fn peek_tag(&self) -> Option<(&'t str, Pos)> {
        match self.items.get(self.i) {
            Some(Arg::Tag(t, p)) => Some((t.as_str(), *p)),
            _ => None,
        }
    }

    pub(super) fn next_any(&mut self) -> Option<&'t Arg> {
        let a = self.items.get(self.i);
        self.i += 1;
        a
    }

    pub(super) fn here(&self) -> Pos {
        self.items.get(self.i).map(|a| a.pos()).unwrap_or(self.pos)
    }

    pub(super) fn string_raw(&mut self, for_what: &str) -> Result<(String, Pos), CompileError> {
        let pos = self.here();
        match self.next_any() {
            Some(Arg::Str(s, p)) => Ok((s.clone(), *p)),
            Some(Arg::List(l, p)) if l.len() == 1 => Ok((l[0].0.clone(), *p)),
            _ => Err(pos.error(format!("{}: expected a string for {for_what}", self.what))),
        }
    }

    pub(super) fn list_raw(&mut self, for_what: &str) -> Result<Vec<(String, Pos)>, CompileError> {
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

    pub(super) fn number(&mut self, for_what: &str) -> Result<u64, CompileError> {
        let pos = self.here();
        match self.next_any() {
            Some(Arg::Num(n, _)) => Ok(*n),
            _ => Err(pos.error(format!("{}: expected a number for {for_what}", self.what))),
        }
    }

    pub(super) fn done(&self) -> Result<(), CompileError> {
        match self.items.get(self.i) {
            None => Ok(()),
            Some(Arg::Tag(t, p)) => {
                Err(p.error(format!("{}: unknown tagged argument \":{t}\"", self.what)))
            }
            Some(a) => Err(a.pos().error(format!("{}: too many arguments", self.what))),
        }
    }

    pub(super) fn missing(&self, for_what: &str) -> CompileError {
        self.here()
            .error(format!("{}: missing argument: {for_what}", self.what))
    }

    pub(super) fn has_more(&self) -> bool {
        self.i < self.items.len()
    }
}

impl Compiler<'_> {
    pub(super) fn has(&self, ext: Extension) -> bool {
        self.required.contains(ext)
    }

    pub(super) fn need(&self, ext: Extension, pos: Pos, what: &str) -> Result<(), CompileError> {
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
    pub(super) fn text(&self, s: &str) -> Str {
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

    pub(super) fn texts(&self, l: &[(String, Pos)]) -> Vec<Str> {
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
                        if !(ok || self.has(Extension::Variables) && o.contains("${")) {
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
        if self.stack.contains(&key) {
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
