//! The interpreter: runs a compiled script over a message and its
//! envelope and returns the actions, with the implicit keep decided as
//! RFC 5228 2.10.2 says and the imap4flags (RFC 5232) internal variable
//! applied to keep and fileinto. It performs nothing: kmp-local does.

use std::collections::{HashMap, HashSet};

use super::compare::{self, Match, MatchKind};
use super::compile::{AddrPart, Cmd, FlagOp, Modifier, Program};
use super::message::Message;
use super::notify;
use super::value::{Piece, Str};
mod eval;
mod vacation;

use super::{Action, DuplicateMark, Env, Envelope, Limits, Notification, Outcome, RunError};

/// Longest value a variable holds (RFC 5229 6: implementations may limit).
const MAX_VAR_LEN: usize = 4096;
/// Most variables in one run.
const MAX_VARS: usize = 256;

struct Run<'r, 'm> {
    msg: &'r Message<'m>,
    env_in: &'r Envelope,
    env: &'r mut dyn Env,
    limits: &'r Limits,
    steps: u64,
    line: u32,
    actions: Vec<(Action, u32)>,
    implicit_keep: bool,
    flags: Vec<String>,
    globals: HashMap<String, String>,
    matches: Vec<String>,
    included_once: HashSet<String>,
    duplicates: Vec<DuplicateMark>,
    redirects: usize,
    notifies: usize,
    vacation_line: Option<u32>,
    reject_line: Option<u32>,
    depth: usize,
}

/// One script's own variables, and which names it declared global.
#[derive(Default)]
struct Scope {
    vars: HashMap<String, String>,
    global: HashSet<String>,
}

enum Flow {
    Next,
    Stop,
    Return,
}

pub fn run(
    prog: &Program,
    msg: &Message,
    envelope: &Envelope,
    env: &mut dyn Env,
    limits: &Limits,
) -> Result<Outcome, RunError> {
    let mut r = Run {
        msg,
        env_in: envelope,
        env,
        limits,
        steps: 0,
        line: 0,
        actions: Vec::new(),
        implicit_keep: true,
        flags: Vec::new(),
        globals: HashMap::new(),
        matches: Vec::new(),
        included_once: HashSet::new(),
        duplicates: Vec::new(),
        redirects: 0,
        notifies: 0,
        vacation_line: None,
        reject_line: None,
        depth: 0,
    };
    let mut scope = Scope::default();
    r.block(&prog.cmds, &mut scope)?;
    r.check_conflicts()?;
    let mut actions: Vec<Action> = r.actions.into_iter().map(|(a, _)| a).collect();
    // RFC 5228 2.10.3: an implicit keep into a mailbox the script already
    // filed into (fileinto :copy "INBOX") stores once.
    let inbox_done = actions.iter().any(|a| match a {
        Action::Keep { .. } => true,
        Action::Fileinto { mailbox, .. } => mailbox.eq_ignore_ascii_case("INBOX"),
        _ => false,
    });
    if r.implicit_keep && !inbox_done {
        let flags = r.flags.clone();
        actions.push(Action::Keep {
            flags,
            implicit: true,
        });
    }
    Ok(Outcome {
        actions,
        duplicates: r.duplicates,
    })
}

impl Run<'_, '_> {
    fn error(&self, message: impl Into<String>) -> RunError {
        RunError {
            line: self.line,
            message: message.into(),
        }
    }

    fn step(&mut self) -> Result<(), RunError> {
        self.steps += 1;
        if self.steps > self.limits.max_steps {
            return Err(self.error("too many steps"));
        }
        Ok(())
    }

    fn block(&mut self, cmds: &[Cmd], scope: &mut Scope) -> Result<Flow, RunError> {
        for c in cmds {
            match self.command(c, scope)? {
                Flow::Next => {}
                f => return Ok(f),
            }
        }
        Ok(Flow::Next)
    }

    fn command(&mut self, c: &Cmd, scope: &mut Scope) -> Result<Flow, RunError> {
        if let Cmd::Line(l) = c {
            self.line = *l;
            return Ok(Flow::Next);
        }
        self.step()?;
        match c {
            Cmd::Line(_) => {}
            Cmd::If(branches, els) => {
                for (cond, body) in branches {
                    if self.cond(cond, scope)? {
                        return self.block(body, scope);
                    }
                }
                if let Some(body) = els {
                    return self.block(body, scope);
                }
            }
            Cmd::Stop => return Ok(Flow::Stop),
            Cmd::Return => return Ok(Flow::Return),
            Cmd::Keep { flags } => {
                let flags = self.flag_list(flags.as_deref(), scope);
                self.implicit_keep = false;
                self.store("INBOX".into(), flags, true, false, false)?;
            }
            Cmd::Discard => {
                self.implicit_keep = false;
                if !self
                    .actions
                    .iter()
                    .any(|(a, _)| matches!(a, Action::Discard))
                {
                    self.push(Action::Discard)?;
                }
            }
            Cmd::Fileinto {
                mailbox,
                flags,
                copy,
                create,
            } => {
                let mb = self.expand(mailbox, scope);
                if mb.is_empty() || mb.len() > 1000 || mb.contains('\0') {
                    return Err(self.error(format!("fileinto: invalid mailbox name \"{mb}\"")));
                }
                let flags = self.flag_list(flags.as_deref(), scope);
                if !copy {
                    self.implicit_keep = false;
                }
                self.store(mb, flags, false, *copy, *create)?;
            }
            Cmd::Redirect { address, copy } => {
                let a = self.expand(address, scope);
                let a = super::compile::bare_address(&a);
                if !super::compile::valid_address(&a) {
                    return Err(self.error(format!("redirect: invalid address \"{a}\"")));
                }
                if !copy {
                    self.implicit_keep = false;
                }
                let dup = self.actions.iter_mut().find_map(|(act, _)| match act {
                    Action::Redirect { address, copy } if same_address(address, &a) => Some(copy),
                    _ => None,
                });
                match dup {
                    Some(c) => *c = *c && *copy,
                    None => {
                        self.redirects += 1;
                        if self.redirects > self.limits.max_redirects {
                            return Err(self.error("too many redirect actions"));
                        }
                        self.push(Action::Redirect {
                            address: a,
                            copy: *copy,
                        })?;
                    }
                }
            }
            Cmd::Reject { reason, ereject } => {
                let reason = self.expand(reason, scope);
                if self.reject_line.is_some() {
                    return Err(self.error("duplicate reject/ereject action not allowed"));
                }
                self.reject_line = Some(self.line);
                self.implicit_keep = false;
                self.push(Action::Reject {
                    reason,
                    ereject: *ereject,
                })?;
            }
            Cmd::Set { name, value, mods } => {
                let mut v = self.expand(value, scope);
                for m in mods {
                    v = modify(*m, &v);
                }
                self.set_var(name, v, scope)?;
            }
            Cmd::Flags { op, var, list } => {
                let given: Vec<String> = list.iter().map(|s| self.expand(s, scope)).collect();
                let given = split_flags(&given);
                let mut cur = match var {
                    Some(v) => split_flags(&[self.get_var(v, scope)]),
                    None => self.flags.clone(),
                };
                match op {
                    FlagOp::Set => cur = given,
                    FlagOp::Add => {
                        for f in given {
                            if !cur.iter().any(|c| c.eq_ignore_ascii_case(&f)) {
                                cur.push(f);
                            }
                        }
                    }
                    FlagOp::Remove => {
                        cur.retain(|c| !given.iter().any(|g| g.eq_ignore_ascii_case(c)))
                    }
                }
                match var {
                    Some(v) => self.set_var(v, cur.join(" "), scope)?,
                    None => self.flags = cur,
                }
            }
            Cmd::Vacation(v) => self.vacation(v, scope)?,
            Cmd::Notify(n) => {
                let method = self.expand(&n.method, scope);
                let mailto =
                    notify::parse(&method).map_err(|e| self.error(format!("notify: {e}")))?;
                self.notifies += 1;
                if self.notifies > self.limits.max_notifications {
                    return Err(self.error("too many notify actions"));
                }
                let importance = n
                    .importance
                    .as_ref()
                    .map(|i| self.expand(i, scope))
                    .and_then(|i| i.parse().ok())
                    .unwrap_or(2);
                let note = Notification {
                    method,
                    to: mailto.to,
                    headers: mailto.headers,
                    from: n.from.as_ref().map(|f| self.expand(f, scope)),
                    options: n.options.iter().map(|o| self.expand(o, scope)).collect(),
                    message: n.message.as_ref().map(|m| self.expand(m, scope)),
                    importance,
                };
                // RFC 5435 3.1: identical notifications are sent once.
                if !self
                    .actions
                    .iter()
                    .any(|(a, _)| matches!(a, Action::Notify(o) if o.method == note.method && o.message == note.message))
                {
                    self.push(Action::Notify(note))?;
                }
            }
            Cmd::Include { key, prog, once } => {
                let Some(prog) = prog else {
                    return Ok(Flow::Next);
                };
                if *once && !self.included_once.insert(key.clone()) {
                    return Ok(Flow::Next);
                }
                self.depth += 1;
                if self.depth > self.limits.max_include_depth {
                    return Err(self.error("include: nested too deep"));
                }
                let mut sub = Scope::default();
                let line = self.line;
                let flow = self.block(&prog.cmds, &mut sub)?;
                self.line = line;
                self.depth -= 1;
                if let Flow::Stop = flow {
                    return Ok(Flow::Stop);
                }
            }
            Cmd::Global(names) => {
                for n in names {
                    scope.global.insert(n.clone());
                }
            }
        }
        Ok(Flow::Next)
    }

    fn push(&mut self, a: Action) -> Result<(), RunError> {
        if self.actions.len() >= self.limits.max_actions {
            return Err(self.error("too many actions"));
        }
        self.actions.push((a, self.line));
        Ok(())
    }

    fn store(
        &mut self,
        mailbox: String,
        flags: Vec<String>,
        keep: bool,
        copy: bool,
        create: bool,
    ) -> Result<(), RunError> {
        let inbox = |m: &str| m.eq_ignore_ascii_case("INBOX");
        // RFC 5228 2.10.3: filing twice into one mailbox stores once.
        for (a, _) in self.actions.iter_mut() {
            match a {
                Action::Keep { flags: f, .. } if inbox(&mailbox) => {
                    merge_flags(f, &flags);
                    return Ok(());
                }
                Action::Fileinto {
                    mailbox: m,
                    flags: f,
                    copy: c,
                    create: cr,
                } if *m == mailbox || (inbox(m) && inbox(&mailbox)) => {
                    merge_flags(f, &flags);
                    *c = *c && copy;
                    *cr = *cr || create;
                    return Ok(());
                }
                _ => {}
            }
        }
        if keep {
            self.push(Action::Keep {
                flags,
                implicit: false,
            })
        } else {
            self.push(Action::Fileinto {
                mailbox,
                flags,
                copy,
                create,
            })
        }
    }

    /// RFC 5429 2.1: reject refuses the message, so no action may also
    /// deliver it (Pigeonhole's rule, whatever the order).
    fn check_conflicts(&mut self) -> Result<(), RunError> {
        let Some(rl) = self.reject_line else {
            return Ok(());
        };
        for (a, line) in &self.actions {
            let what = match a {
                Action::Keep { .. } | Action::Fileinto { .. } => "the store action",
                Action::Redirect { .. } => "the redirect action",
                Action::Vacation(_) => "the vacation action",
                _ => continue,
            };
            self.line = rl.max(*line);
            return Err(self.error(format!(
                "reject/ereject conflicts with {what} (line {line})"
            )));
        }
        Ok(())
    }

    fn flag_list(&self, given: Option<&[Str]>, scope: &Scope) -> Vec<String> {
        match given {
            Some(l) => {
                let v: Vec<String> = l.iter().map(|s| self.expand(s, scope)).collect();
                split_flags(&v)
            }
            None => self.flags.clone(),
        }
    }

    fn get_var(&self, name: &str, scope: &Scope) -> String {
        if scope.global.contains(name) {
            self.globals.get(name).cloned().unwrap_or_default()
        } else {
            scope.vars.get(name).cloned().unwrap_or_default()
        }
    }

    fn set_var(&mut self, name: &str, mut v: String, scope: &mut Scope) -> Result<(), RunError> {
        truncate(&mut v, MAX_VAR_LEN);
        let map = if scope.global.contains(name) {
            &mut self.globals
        } else {
            &mut scope.vars
        };
        if map.len() >= MAX_VARS && !map.contains_key(name) {
            return Err(self.error("too many variables"));
        }
        map.insert(name.to_string(), v);
        Ok(())
    }

    fn expand(&self, s: &Str, scope: &Scope) -> String {
        match s {
            Str::Lit(l) => l.clone(),
            Str::Tmpl(pieces) => {
                let mut out = String::new();
                for p in pieces {
                    match p {
                        Piece::Lit(l) => out.push_str(l),
                        Piece::Var(n) => out.push_str(&self.get_var(n, scope)),
                        Piece::Match(i) => {
                            if let Some(m) = self.matches.get(*i) {
                                out.push_str(m)
                            }
                        }
                    }
                    if out.len() > MAX_VAR_LEN * 4 {
                        break;
                    }
                }
                out
            }
        }
    }

    fn expand_all(&self, l: &[Str], scope: &Scope) -> Vec<String> {
        l.iter().map(|s| self.expand(s, scope)).collect()
    }

    /// Compares values with keys; :matches captures go to the match
    /// variables when the test succeeds (RFC 5229 3.2).
    fn compare(&mut self, m: &Match, values: &[String], keys: &[String]) -> bool {
        if let MatchKind::Count(rel) = m.kind {
            let n = values.len().to_string();
            return keys.iter().any(|k| {
                compare::matches(
                    &Match {
                        kind: MatchKind::Value(rel),
                        cmp: m.cmp,
                    },
                    &n,
                    k,
                    None,
                )
            });
        }
        let mut caps = Vec::new();
        for v in values {
            for k in keys {
                let c = if m.kind == MatchKind::Matches {
                    Some(&mut caps)
                } else {
                    None
                };
                if compare::matches(m, v, k, c) {
                    if m.kind == MatchKind::Matches {
                        caps.truncate(10);
                        self.matches = std::mem::take(&mut caps);
                    }
                    return true;
                }
            }
        }
        false
    }
}

/// The values of one field chosen by :index (RFC 5260 4: 1-based, :last
/// counts from the end).
fn pick<T>(mut v: Vec<T>, index: Option<(u64, bool)>) -> Vec<T> {
    let Some((n, last)) = index else {
        return v;
    };
    let n = n as usize;
    if n == 0 || n > v.len() {
        return Vec::new();
    }
    let i = if last { v.len() - n } else { n - 1 };
    vec![v.swap_remove(i)]
}

fn address_part(a: &str, part: AddrPart) -> Option<String> {
    let (local, domain) = match a.rsplit_once('@') {
        Some((l, d)) => (l, d),
        None => (a, ""),
    };
    // RFC 5233: the separator is "+"; user is what precedes it.
    Some(match part {
        AddrPart::All => a.to_string(),
        AddrPart::Local => local.to_string(),
        AddrPart::Domain => domain.to_string(),
        AddrPart::User => local
            .split_once('+')
            .map(|(u, _)| u)
            .unwrap_or(local)
            .to_string(),
        AddrPart::Detail => local.split_once('+')?.1.to_string(),
    })
}

/// Addresses equal as mail routes them: the local part exactly, the
/// domain in any case.
fn same_address(a: &str, b: &str) -> bool {
    match (a.rsplit_once('@'), b.rsplit_once('@')) {
        (Some((la, da)), Some((lb, db))) => la == lb && da.eq_ignore_ascii_case(db),
        _ => a == b,
    }
}

/// Space-separated flag lists to single flags, without duplicates (case
/// does not tell flags apart, RFC 3501 2.3.2).
fn split_flags(lists: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for l in lists {
        for f in l.split_whitespace() {
            if !out.iter().any(|o| o.eq_ignore_ascii_case(f)) {
                out.push(f.to_string());
            }
        }
    }
    out
}

fn merge_flags(into: &mut Vec<String>, more: &[String]) {
    for f in more {
        if !into.iter().any(|o| o.eq_ignore_ascii_case(f)) {
            into.push(f.clone());
        }
    }
}

fn truncate(s: &mut String, max: usize) {
    if s.len() > max {
        let mut n = max;
        while !s.is_char_boundary(n) {
            n -= 1;
        }
        s.truncate(n);
    }
}

/// One `set` modifier (RFC 5229 4.1; :encodeurl from RFC 5435 6).
fn modify(m: Modifier, v: &str) -> String {
    match m {
        Modifier::Lower => v.to_lowercase(),
        Modifier::Upper => v.to_uppercase(),
        Modifier::LowerFirst => {
            let mut c = v.chars();
            match c.next() {
                Some(f) => f.to_lowercase().collect::<String>() + c.as_str(),
                None => String::new(),
            }
        }
        Modifier::UpperFirst => {
            let mut c = v.chars();
            match c.next() {
                Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
                None => String::new(),
            }
        }
        Modifier::QuoteWildcard => {
            let mut out = String::with_capacity(v.len());
            for c in v.chars() {
                if matches!(c, '*' | '?' | '\\') {
                    out.push('\\');
                }
                out.push(c);
            }
            out
        }
        Modifier::EncodeUrl => {
            let mut out = String::new();
            for b in v.bytes() {
                if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
                    out.push(b as char);
                } else {
                    out.push_str(&format!("%{b:02X}"));
                }
            }
            out
        }
        Modifier::Length => v.chars().count().to_string(),
    }
}
