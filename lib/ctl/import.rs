//! `kmpctl import FORMAT FILE`: users with their password hashes, aliases
//! and forwards from the system being replaced.
//!
//! | format | file | gives |
//! |---|---|---|
//! | `dovecot-passwd` | Dovecot passwd-file: `user[@domain]:{SCHEME}hash:uid:gid:gecos:home:shell:extra` | users (quota from `userdb_quota_rule`) |
//! | `vpasswd` | vpopmail's `domains/DOMAIN/vpasswd`: `name:hash:uid:gid:gecos:dir:quota[:clear]` | users (quota `NOQUOTA` or `<bytes>S[,<n>C]`) |
//! | `vpopmail-sql` | a MySQL dump of vpopmail's table (`INSERT INTO vpopmail VALUES (...)`) | users |
//! | `passwd` | `/etc/passwd` lines, hashes from `--shadow FILE` | users with uid ≥ `--min-uid` |
//! | `postfix-virtual` | Postfix `virtual(5)`: `address targets...` | aliases; a line for a user is its forwards |
//! | `postfix-aliases` | `aliases(5)`: `name: targets...` | aliases in `--domain` |
//! | `qmail` | a directory of `.qmail-NAME` files, and `USER/.qmail` below it | aliases (`.qmail-default`: catch-all), users' forwards |
//!
//! Only crypt(3)-style hashes are kept (`$6$`, `$5$`, `$1$`, bcrypt,
//! argon2id, with or without Dovecot's `{SHA512-CRYPT}`-style prefix):
//! other schemes cannot be verified here and are refused by line. A locked
//! or empty password (`!`, `*`, `x`) imports a user who cannot log in.
//! Program deliveries (`|cmd`), files and `:include:` cannot be forwards;
//! they are skipped and listed.
//!
//! The whole file is read and checked first; then everything is written in
//! one transaction, or nothing (a name already taken, a missing domain, a
//! bad line: the error names the line). `--dry-run` prints what would
//! change and writes nothing.
//!
//! **Domain limits.** The whole import is checked against each domain's
//! limits (users, aliases, forwarding users, total and per-user quota) as
//! if its records were added one after the other, with the same checks
//! `kmpctl user add` and kmp-admind make ([`crate::userdb::limits`]); an
//! import that would pass one is refused whole, naming the limit and the
//! record. `--force` imports past them: the host administrator's choice
//! (kmpctl import is not offered through `kmpctl --remote`, so no
//! postmaster can). The check reads the database just before the one
//! write transaction; a user added through kmp-admind in between can make
//! the domain one over, as with two kmpctl runs at once.

use std::collections::{BTreeSet, HashMap};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use clap::{Args as ClapArgs, ValueEnum};
use serde_json::json;

use super::db::{db_err, open};
use super::output::count;
use super::{CtlError, CtlResult, Ctx};
use crate::exit;
use crate::userdb::limits::{self, Usage};
use crate::userdb::{password, Address, Alias, DbError, Directory, Domain, User};

#[derive(Debug, ClapArgs)]
pub struct Args {
    /// The format of FILE.
    #[arg(value_enum)]
    pub format: Format,
    /// The file to read (a directory for `qmail`).
    pub file: PathBuf,
    /// The domain of names that have none (required for vpasswd, passwd,
    /// postfix-aliases and qmail).
    #[arg(long)]
    pub domain: Option<String>,
    /// For `passwd`: the shadow file with the hashes.
    #[arg(long, value_name = "FILE")]
    pub shadow: Option<PathBuf>,
    /// For `passwd`: the lowest uid imported (system accounts are below).
    #[arg(long, default_value_t = 1000)]
    pub min_uid: u32,
    /// Print what would change; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Import even past the domains' limits (max users, aliases,
    /// forwards, quotas).
    #[arg(long)]
    pub force: bool,
}

/// The formats `kmpctl import` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    DovecotPasswd,
    Vpasswd,
    VpopmailSql,
    Passwd,
    PostfixVirtual,
    PostfixAliases,
    Qmail,
}

/// What an import would do.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Plan {
    pub users: Vec<User>,
    pub aliases: Vec<Alias>,
    /// (user, targets, keep a copy).
    pub forwards: Vec<(String, Vec<String>, bool)>,
    /// Lines left out, with the reason.
    pub skipped: Vec<String>,
}

/// A line that cannot be imported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineError {
    pub line: usize,
    pub message: String,
}

type Parsed = Result<Plan, LineError>;

fn bad(line: usize, message: impl Into<String>) -> LineError {
    LineError {
        line,
        message: message.into(),
    }
}

pub fn run(ctx: &Ctx, a: Args) -> CtlResult {
    let (_, db) = open(ctx, false)?;
    let name = a.file.display().to_string();
    let read = |p: &Path| {
        std::fs::read(p)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .map_err(|e| CtlError::new(exit::from_io(&e), format!("{}: {e}", p.display())))
    };
    let domain = a.domain.as_deref();
    let need_domain = || {
        domain.ok_or_else(|| {
            CtlError::new(
                exit::USAGE,
                format!("{:?} needs --domain", a.format).to_lowercase(),
            )
        })
    };
    let now = crate::userdb::now();
    let parsed = match a.format {
        Format::DovecotPasswd => parse_dovecot_passwd(&read(&a.file)?, domain, now),
        Format::Vpasswd => parse_vpasswd(&read(&a.file)?, need_domain()?, now),
        Format::VpopmailSql => parse_vpopmail_sql(&read(&a.file)?, now),
        Format::Passwd => {
            let shadow = match &a.shadow {
                Some(s) => read(s)?,
                None => String::new(),
            };
            parse_passwd(&read(&a.file)?, &shadow, need_domain()?, a.min_uid, now)
        }
        Format::PostfixVirtual => parse_postfix_virtual(&read(&a.file)?, domain),
        Format::PostfixAliases => parse_postfix_aliases(&read(&a.file)?, need_domain()?),
        Format::Qmail => Ok(parse_qmail_dir(&a.file, need_domain()?).map_err(|e| {
            CtlError::new(exit::DATAERR, format!("{name}: {e}; nothing was imported"))
        })?),
    };
    let mut plan = parsed.map_err(|e| {
        CtlError::new(
            exit::DATAERR,
            format!(
                "{name}: line {}: {}; nothing was imported",
                e.line, e.message
            ),
        )
    })?;
    // A virtual(5) line for an address that is a user is that user's
    // forwards (keeping a copy when it lists itself).
    let mut aliases = Vec::new();
    for al in std::mem::take(&mut plan.aliases) {
        let user = match Address::parse(&al.address) {
            Ok(addr) => {
                plan.users
                    .iter()
                    .any(|u| u.address.eq_ignore_ascii_case(&al.address))
                    || db.user(&addr).map_err(db_err)?.is_some()
            }
            Err(_) => false,
        };
        if user {
            let keep = al
                .targets
                .iter()
                .any(|t| t.eq_ignore_ascii_case(&al.address));
            let rest: Vec<String> = al
                .targets
                .iter()
                .filter(|t| !t.eq_ignore_ascii_case(&al.address))
                .cloned()
                .collect();
            plan.forwards.push((al.address, rest, keep));
        } else {
            aliases.push(al);
        }
    }
    plan.aliases = aliases;
    let mut forwards = Vec::new();
    for (user, targets, keep) in &plan.forwards {
        let addr = Address::parse(user).map_err(|e| CtlError::new(exit::DATAERR, e.to_string()))?;
        // A user imported in this run gets them in its record.
        if let Some(u) = plan
            .users
            .iter_mut()
            .find(|u| u.address.eq_ignore_ascii_case(user))
        {
            u.forwards = targets.clone();
            u.keep_copy = *keep;
            continue;
        }
        forwards.push((addr, targets.clone(), *keep));
    }
    if !a.force {
        check_limits(
            &plan.users,
            &plan.aliases,
            &forwards,
            &mut |d| db.domain(d),
            &mut |d| db.usage(d),
            &mut |addr| db.user(addr),
        )
        .map_err(|e| {
            CtlError::new(
                e.exit_code(),
                format!(
                    "{name}: {e}; nothing was imported (--force imports past the domain's limits)"
                ),
            )
        })?;
    }
    let tty = std::io::stderr().is_terminal();
    let total = plan.users.len() + plan.aliases.len() + forwards.len();
    if a.dry_run {
        print_plan(ctx, &plan, true);
        return Ok(());
    }
    if tty && total > 0 {
        eprint!("importing {total} records...");
        let _ = std::io::stderr().flush();
    }
    let r = db.import(&plan.users, &plan.aliases, &forwards);
    if tty && total > 0 {
        eprint!("\r\x1b[K");
    }
    r.map_err(|e| CtlError::new(e.exit_code(), format!("{name}: {e}; nothing was imported")))?;
    print_plan(ctx, &plan, false);
    Ok(())
}

/// Each domain's record and usage as the import goes on.
type Domains = HashMap<String, Option<(Domain, Usage)>>;

/// Checks an import against its domains' limits, counting each record as
/// if added one after the other: the first that would pass a limit is the
/// error. `domain`, `usage` and `user` read the database.
pub fn check_limits(
    users: &[User],
    aliases: &[Alias],
    forwards: &[(Address, Vec<String>, bool)],
    domain: &mut dyn FnMut(&str) -> Result<Option<Domain>, DbError>,
    usage: &mut dyn FnMut(&str) -> Result<Usage, DbError>,
    user: &mut dyn FnMut(&Address) -> Result<Option<User>, DbError>,
) -> Result<(), DbError> {
    let mut seen: Domains = HashMap::new();
    for u in users {
        let addr = u.addr()?;
        let Some((d, used)) = limited(&mut seen, addr.domain(), domain, usage)? else {
            continue;
        };
        limits::check_user(d, used, None, u).map_err(|e| named(e, &u.address))?;
        used.users += 1;
        used.forwards += u64::from(!u.forwards.is_empty());
        used.quota_bytes = used.quota_bytes.saturating_add(u.quota_bytes);
    }
    for a in aliases {
        let addr = Address::parse_alias(&a.address)?;
        let Some((d, used)) = limited(&mut seen, addr.domain(), domain, usage)? else {
            continue;
        };
        limits::check_new_alias(d, used).map_err(|e| named(e, &a.address))?;
        used.aliases += 1;
    }
    for (addr, targets, keep) in forwards {
        let Some(before) = user(addr)? else { continue };
        let Some((d, used)) = limited(&mut seen, addr.domain(), domain, usage)? else {
            continue;
        };
        let mut after = before.clone();
        after.forwards = targets.clone();
        after.keep_copy = *keep;
        limits::check_user(d, used, Some(&before), &after)
            .map_err(|e| named(e, &before.address))?;
        match (before.forwards.is_empty(), after.forwards.is_empty()) {
            (true, false) => used.forwards += 1,
            (false, true) => used.forwards = used.forwards.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

/// The domain's record and usage so far, when it has limits (None: no
/// such domain, which the import itself refuses, or no limits).
fn limited<'a>(
    seen: &'a mut Domains,
    name: &str,
    domain: &mut dyn FnMut(&str) -> Result<Option<Domain>, DbError>,
    usage: &mut dyn FnMut(&str) -> Result<Usage, DbError>,
) -> Result<Option<(&'a Domain, &'a mut Usage)>, DbError> {
    if !seen.contains_key(name) {
        let found = match domain(name)? {
            Some(d) if !d.limits.is_none() => {
                let u = usage(name)?;
                Some((d, u))
            }
            _ => None,
        };
        seen.insert(name.to_string(), found);
    }
    Ok(seen
        .get_mut(name)
        .and_then(|x| x.as_mut())
        .map(|(d, u)| (&*d, u)))
}

/// A limit error naming the record that met it.
fn named(e: DbError, what: &str) -> DbError {
    match e {
        DbError::Limit(m) => DbError::Limit(format!("{what}: {m}")),
        e => e,
    }
}

/// The changes (dry run) and the summary, as a table or JSON.
fn print_plan(ctx: &Ctx, plan: &Plan, dry_run: bool) {
    let verb = if dry_run { "would add" } else { "added" };
    if ctx.json {
        let v = json!({
            "dry_run": dry_run,
            "users": plan.users.iter().map(|u| &u.address).collect::<Vec<_>>(),
            "aliases": plan.aliases.iter().map(|a| json!({"alias": a.address, "targets": a.targets})).collect::<Vec<_>>(),
            "forwards": plan.forwards.iter().map(|(u, t, k)| json!({"user": u, "targets": t, "keep_copy": k})).collect::<Vec<_>>(),
            "skipped": plan.skipped,
        });
        println!("{v}");
        return;
    }
    let mut out = String::new();
    if dry_run {
        for u in &plan.users {
            let quota = if u.quota_bytes > 0 {
                format!(" (quota {} bytes)", u.quota_bytes)
            } else {
                String::new()
            };
            let login = if u.password.is_empty() {
                ", cannot log in"
            } else {
                ""
            };
            out.push_str(&format!("{verb} user {}{quota}{login}\n", u.address));
        }
        for al in &plan.aliases {
            out.push_str(&format!(
                "{verb} alias {} -> {}\n",
                al.address,
                al.targets.join(", ")
            ));
        }
        for (u, t, keep) in &plan.forwards {
            let copy = if *keep { " (keeping a copy)" } else { "" };
            out.push_str(&format!("would forward {u} -> {}{copy}\n", t.join(", ")));
        }
    }
    for s in &plan.skipped {
        out.push_str(&format!("skipped {s}\n"));
    }
    out.push_str(&format!(
        "{}: {}, {}, {}{}\n",
        if dry_run { "dry run" } else { "imported" },
        count(plan.users.len() as u64, "user", "users"),
        count(plan.aliases.len() as u64, "alias", "aliases"),
        count(plan.forwards.len() as u64, "forward", "forwards"),
        if dry_run { "; nothing was changed" } else { "" }
    ));
    print!("{out}");
}

/// A password field as a hash we store: a crypt(3) hash, with Dovecot's
/// `{SCHEME}` prefix for crypt schemes taken off; locked and empty ones
/// become "" (no login).
fn hash_of(field: &str) -> Result<String, String> {
    let mut h = field.trim();
    if let Some(rest) = h.strip_prefix('{') {
        let (scheme, hash) = rest
            .split_once('}')
            .ok_or_else(|| "a password scheme without its closing }".to_string())?;
        let crypt = [
            "CRYPT",
            "SHA512-CRYPT",
            "SHA256-CRYPT",
            "MD5-CRYPT",
            "BLF-CRYPT",
            "ARGON2ID",
        ];
        if !crypt.iter().any(|c| c.eq_ignore_ascii_case(scheme)) {
            return Err(format!(
                "password scheme {{{scheme}}} cannot be imported (only crypt hashes: \
                 SHA512-CRYPT, SHA256-CRYPT, MD5-CRYPT, BLF-CRYPT, ARGON2ID)"
            ));
        }
        h = hash;
    }
    if h.is_empty() || h.starts_with('!') || h.starts_with('*') || h == "x" {
        return Ok(String::new());
    }
    password::check_hash(h).map_err(|e| e.to_string())?;
    Ok(h.to_string())
}

/// An address from a name and the default domain.
fn address(name: &str, domain: Option<&str>, line: usize) -> Result<Address, LineError> {
    let full = if name.contains('@') {
        name.to_string()
    } else {
        match domain {
            Some(d) => format!("{name}@{d}"),
            None => return Err(bad(line, format!("{name:?} has no domain; give --domain"))),
        }
    };
    Address::parse(&full).map_err(|e| bad(line, format!("{full:?}: {e}")))
}

fn new_user(addr: &Address, hash: String, quota_bytes: u64, quota_messages: u64, now: u64) -> User {
    let mut u = User::new(addr, now);
    u.password = hash;
    u.quota_bytes = quota_bytes;
    u.quota_messages = quota_messages;
    u
}

/// Lines that are neither empty nor comments, numbered from 1.
fn lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim_end_matches('\r')))
        .filter(|(_, l)| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
}

/// Refuses a name given twice in one file.
fn once(seen: &mut BTreeSet<String>, name: &str, line: usize) -> Result<(), LineError> {
    if seen.insert(name.to_lowercase()) {
        Ok(())
    } else {
        Err(bad(line, format!("{name} is given twice")))
    }
}

/// A size with Dovecot's units (b, k, M, G, T); `default_unit` multiplies a
/// bare number.
fn size(v: &str, default_unit: u64) -> Option<u64> {
    let v = v.trim();
    let (num, unit) = match v.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => (&v[..i], &v[i..]),
        None => (v, ""),
    };
    let n: u64 = num.parse().ok()?;
    let mul = match unit.to_ascii_lowercase().as_str() {
        "" => default_unit,
        "b" => 1,
        "k" | "kb" => 1 << 10,
        "m" | "mb" => 1 << 20,
        "g" | "gb" => 1 << 30,
        "t" | "tb" => 1 << 40,
        _ => return None,
    };
    n.checked_mul(mul)
}

/// Dovecot's passwd-file.
pub fn parse_dovecot_passwd(text: &str, domain: Option<&str>, now: u64) -> Parsed {
    let mut plan = Plan::default();
    let mut seen = BTreeSet::new();
    for (n, line) in lines(text) {
        let f: Vec<&str> = line.splitn(8, ':').collect();
        if f.len() < 2 {
            return Err(bad(n, "not user:password:..."));
        }
        let addr = address(f[0], domain, n)?;
        once(&mut seen, &addr.to_string(), n)?;
        let hash = hash_of(f[1]).map_err(|e| bad(n, e))?;
        let (mut qb, mut qm) = (0, 0);
        if let Some(extra) = f.get(7) {
            for field in extra.split_ascii_whitespace() {
                let Some(rule) = field
                    .strip_prefix("userdb_quota_rule=")
                    .or_else(|| field.strip_prefix("quota_rule="))
                else {
                    continue;
                };
                let rule = rule.strip_prefix("*:").unwrap_or(rule);
                for part in rule.split(':') {
                    if let Some(v) = part.strip_prefix("storage=") {
                        // Dovecot's storage is in kilobytes without a unit.
                        qb = size(v, 1 << 10).ok_or_else(|| bad(n, format!("quota {v:?}")))?;
                    } else if let Some(v) = part.strip_prefix("bytes=") {
                        qb = size(v, 1).ok_or_else(|| bad(n, format!("quota {v:?}")))?;
                    } else if let Some(v) = part.strip_prefix("messages=") {
                        qm = v.parse().map_err(|_| bad(n, format!("quota {v:?}")))?;
                    }
                }
            }
        }
        plan.users.push(new_user(&addr, hash, qb, qm, now));
    }
    Ok(plan)
}

/// vpopmail's quota field: `NOQUOTA`, or `<bytes>S` and/or `<n>C`.
fn vpopmail_quota(q: &str) -> Option<(u64, u64)> {
    let q = q.trim();
    if q.is_empty() || q.eq_ignore_ascii_case("NOQUOTA") {
        return Some((0, 0));
    }
    let (mut b, mut c) = (0, 0);
    for part in q.split(',') {
        if let Some(v) = part.strip_suffix(['S', 's']) {
            b = v.parse().ok()?;
        } else if let Some(v) = part.strip_suffix(['C', 'c']) {
            c = v.parse().ok()?;
        } else {
            b = part.parse().ok()?;
        }
    }
    Some((b, c))
}

/// vpopmail's `vpasswd` of one domain.
pub fn parse_vpasswd(text: &str, domain: &str, now: u64) -> Parsed {
    let mut plan = Plan::default();
    let mut seen = BTreeSet::new();
    for (n, line) in lines(text) {
        let f: Vec<&str> = line.split(':').collect();
        if f.len() < 7 {
            return Err(bad(n, "not name:hash:uid:gid:gecos:dir:quota"));
        }
        let addr = address(f[0], Some(domain), n)?;
        once(&mut seen, &addr.to_string(), n)?;
        let hash = hash_of(f[1]).map_err(|e| bad(n, e))?;
        let (qb, qm) = vpopmail_quota(f[6]).ok_or_else(|| bad(n, format!("quota {:?}", f[6])))?;
        plan.users.push(new_user(&addr, hash, qb, qm, now));
    }
    Ok(plan)
}

/// A MySQL dump of vpopmail's table (`vpopmail`, one table for all
/// domains): the rows of its `INSERT` statements, columns by the list the
/// statement gives or in vpopmail's order (pw_name, pw_domain, pw_passwd,
/// pw_uid, pw_gid, pw_gecos, pw_dir, pw_shell, pw_clear_passwd).
pub fn parse_vpopmail_sql(text: &str, now: u64) -> Parsed {
    let mut plan = Plan::default();
    let mut seen = BTreeSet::new();
    let default_cols = [
        "pw_name",
        "pw_domain",
        "pw_passwd",
        "pw_uid",
        "pw_gid",
        "pw_gecos",
        "pw_dir",
        "pw_shell",
        "pw_clear_passwd",
    ];
    for (n, line) in text.lines().enumerate().map(|(i, l)| (i + 1, l)) {
        let t = line.trim_start();
        if !t.to_ascii_uppercase().starts_with("INSERT INTO") {
            continue;
        }
        let Some(vi) = t.to_ascii_uppercase().find("VALUES") else {
            return Err(bad(n, "an INSERT without VALUES"));
        };
        let head = &t[..vi];
        let cols: Vec<String> = match (head.find('('), head.rfind(')')) {
            (Some(a), Some(b)) if a < b => head[a + 1..b]
                .split(',')
                .map(|c| c.trim().trim_matches('`').to_ascii_lowercase())
                .collect(),
            _ => default_cols.iter().map(|s| s.to_string()).collect(),
        };
        let col = |row: &[String], name: &str| -> Option<String> {
            cols.iter()
                .position(|c| c == name)
                .and_then(|i| row.get(i).cloned())
        };
        for row in sql::rows(&t[vi + 6..]).map_err(|e| bad(n, e))? {
            let (Some(name), Some(dom), Some(pw)) = (
                col(&row, "pw_name"),
                col(&row, "pw_domain"),
                col(&row, "pw_passwd"),
            ) else {
                return Err(bad(n, "a row without pw_name, pw_domain or pw_passwd"));
            };
            let addr = address(&format!("{name}@{dom}"), None, n)?;
            once(&mut seen, &addr.to_string(), n)?;
            let hash = hash_of(&pw).map_err(|e| bad(n, format!("{addr}: {e}")))?;
            let q = col(&row, "pw_shell").unwrap_or_default();
            let (qb, qm) = vpopmail_quota(&q).ok_or_else(|| bad(n, format!("quota {q:?}")))?;
            plan.users.push(new_user(&addr, hash, qb, qm, now));
        }
    }
    Ok(plan)
}

/// `/etc/passwd` lines with uid ≥ `min_uid`, hashes from `shadow`.
pub fn parse_passwd(text: &str, shadow: &str, domain: &str, min_uid: u32, now: u64) -> Parsed {
    let hashes: std::collections::HashMap<&str, &str> = shadow
        .lines()
        .filter_map(|l| {
            let mut f = l.split(':');
            Some((f.next()?, f.next()?))
        })
        .collect();
    let mut plan = Plan::default();
    let mut seen = BTreeSet::new();
    for (n, line) in lines(text) {
        let f: Vec<&str> = line.split(':').collect();
        if f.len() < 7 {
            return Err(bad(n, "not name:x:uid:gid:gecos:home:shell"));
        }
        let uid: u32 = f[2]
            .parse()
            .map_err(|_| bad(n, format!("uid {:?}", f[2])))?;
        if uid < min_uid || f[0] == "nobody" {
            continue;
        }
        let addr = address(f[0], Some(domain), n)?;
        once(&mut seen, &addr.to_string(), n)?;
        let field = match f[1] {
            "x" => hashes.get(f[0]).copied().unwrap_or(""),
            h => h,
        };
        let hash = hash_of(field).map_err(|e| bad(n, format!("{}: {e}", f[0])))?;
        plan.users.push(new_user(&addr, hash, 0, 0, now));
    }
    Ok(plan)
}

/// Logical lines of a Postfix table: a line starting with white space
/// continues the one before. Numbered by their first line.
fn logical_lines(text: &str) -> Vec<(usize, String)> {
    let mut out: Vec<(usize, String)> = Vec::new();
    for (i, l) in text.lines().enumerate() {
        let l = l.trim_end_matches('\r');
        if l.trim().is_empty() || l.trim_start().starts_with('#') {
            continue;
        }
        if l.starts_with([' ', '\t']) {
            if let Some(last) = out.last_mut() {
                last.1.push(' ');
                last.1.push_str(l.trim());
                continue;
            }
        }
        out.push((i + 1, l.to_string()));
    }
    out
}

/// Targets separated by commas or white space, quotes taken off.
fn targets(s: &str) -> Vec<String> {
    s.split([',', ' ', '\t'])
        .map(|t| t.trim().trim_matches('"'))
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .collect()
}

/// Why a target cannot be a forward, if it cannot.
fn unsupported(t: &str) -> Option<&'static str> {
    if t.starts_with('|') {
        Some("a program delivery")
    } else if t.starts_with('/') || t.starts_with("./") {
        Some("a file delivery")
    } else if t.starts_with(":include:") {
        Some("an :include: list")
    } else {
        None
    }
}

/// The targets of an alias line as addresses; unsupported ones listed in
/// `skipped`.
fn alias_targets(
    name: &str,
    list: &[String],
    domain: Option<&str>,
    n: usize,
    skipped: &mut Vec<String>,
) -> Result<Vec<String>, LineError> {
    let mut out = Vec::new();
    for t in list {
        if let Some(why) = unsupported(t) {
            skipped.push(format!("line {n}: {name} -> {t}: {why}"));
            continue;
        }
        let a = address(t, domain, n)?;
        let s = a.to_string();
        if !out.iter().any(|x: &String| x.eq_ignore_ascii_case(&s)) {
            out.push(s);
        }
    }
    Ok(out)
}

/// Postfix `virtual(5)`.
pub fn parse_postfix_virtual(text: &str, domain: Option<&str>) -> Parsed {
    let mut plan = Plan::default();
    let mut seen = BTreeSet::new();
    for (n, line) in logical_lines(text) {
        let mut parts = line.splitn(2, [' ', '\t']);
        let lhs = parts.next().unwrap_or_default().trim();
        let rhs = targets(parts.next().unwrap_or_default());
        if !lhs.contains('@') {
            // `example.com anything`: declares a virtual alias domain.
            plan.skipped.push(format!(
                "line {n}: {lhs}: a domain declaration (add it with kmpctl domain add)"
            ));
            continue;
        }
        let alias = Address::parse_alias(lhs).map_err(|e| bad(n, format!("{lhs:?}: {e}")))?;
        let name = if alias.is_catch_all() {
            format!("@{}", alias.domain())
        } else {
            alias.to_string()
        };
        once(&mut seen, &name, n)?;
        if rhs.is_empty() {
            return Err(bad(n, format!("{lhs} has no targets")));
        }
        let t = alias_targets(&name, &rhs, domain, n, &mut plan.skipped)?;
        if !t.is_empty() {
            plan.aliases.push(Alias {
                address: name,
                targets: t,
            });
        }
    }
    Ok(plan)
}

/// `aliases(5)`: `name: targets`, names in `domain`.
pub fn parse_postfix_aliases(text: &str, domain: &str) -> Parsed {
    let mut plan = Plan::default();
    let mut seen = BTreeSet::new();
    for (n, line) in logical_lines(text) {
        let Some((name, rhs)) = line.split_once(':') else {
            return Err(bad(n, "not name: targets"));
        };
        let name = name.trim().trim_matches('"');
        let addr = address(name, Some(domain), n)?;
        once(&mut seen, &addr.to_string(), n)?;
        let list = targets(rhs);
        if list.is_empty() {
            return Err(bad(n, format!("{name} has no targets")));
        }
        let t = alias_targets(&addr.to_string(), &list, Some(domain), n, &mut plan.skipped)?;
        if !t.is_empty() {
            plan.aliases.push(Alias {
                address: addr.to_string(),
                targets: t,
            });
        }
    }
    Ok(plan)
}

/// One `.qmail` file: forwards (`&addr` or `addr`), and whether it also
/// delivers to a Maildir (`./Maildir/`, `/path/Maildir/`); programs and
/// mbox files are listed as skipped.
fn parse_dot_qmail(
    text: &str,
    what: &str,
    domain: &str,
    skipped: &mut Vec<String>,
) -> Result<(Vec<String>, Vec<String>), LineError> {
    let (mut fwd, mut maildirs) = (Vec::new(), Vec::new());
    for (n, line) in lines(text) {
        let l = line.trim();
        if l.starts_with('|') {
            skipped.push(format!("{what} line {n}: {l}: a program delivery"));
        } else if l.starts_with('/') || l.starts_with('.') {
            if l.ends_with('/') {
                maildirs.push(l.to_string());
            } else {
                skipped.push(format!("{what} line {n}: {l}: an mbox delivery"));
            }
        } else {
            let a = address(l.strip_prefix('&').unwrap_or(l), Some(domain), n)
                .map_err(|e| bad(n, format!("{what}: {}", e.message)))?;
            fwd.push(a.to_string());
        }
    }
    Ok((fwd, maildirs))
}

/// A vpopmail directory of a domain: `.qmail-NAME` files are aliases
/// (`:` in NAME stands for `.`; `.qmail-default` is the catch-all, unless
/// it only runs vdelivermail), `USER/.qmail` a user's forwards.
pub fn parse_qmail_dir(dir: &Path, domain: &str) -> Result<Plan, String> {
    let mut plan = Plan::default();
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| e.to_string())?
        .flatten()
        .collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let fname = e.file_name().to_string_lossy().into_owned();
        let path = e.path();
        if let Some(name) = fname.strip_prefix(".qmail-") {
            let text = std::fs::read_to_string(&path).map_err(|e| format!("{fname}: {e}"))?;
            let (fwd, maildirs) = parse_dot_qmail(&text, &fname, domain, &mut plan.skipped)
                .map_err(|e| format!("line {}: {}", e.line, e.message))?;
            let local = name.replace(':', ".");
            let alias = if local == "default" {
                format!("@{domain}")
            } else {
                format!("{local}@{domain}")
            };
            let mut t = fwd;
            for m in maildirs {
                // /home/vpopmail/domains/DOMAIN/USER/Maildir/ → USER@DOMAIN
                let user = m
                    .trim_end_matches('/')
                    .strip_suffix("/Maildir")
                    .and_then(|p| p.rsplit('/').next())
                    .filter(|u| !u.is_empty() && *u != ".");
                match user {
                    Some(u) => t.push(format!("{u}@{domain}")),
                    None => plan
                        .skipped
                        .push(format!("{fname}: {m}: a Maildir of no user")),
                }
            }
            if t.is_empty() {
                plan.skipped.push(format!("{fname}: nothing to forward"));
                continue;
            }
            Address::parse_alias(&alias).map_err(|e| format!("{fname}: {e}"))?;
            plan.aliases.push(Alias {
                address: alias,
                targets: t,
            });
        } else if e.file_type().is_ok_and(|t| t.is_dir()) && !fname.starts_with('.') {
            let q = path.join(".qmail");
            let Ok(text) = std::fs::read_to_string(&q) else {
                continue;
            };
            let what = format!("{fname}/.qmail");
            let (fwd, maildirs) = parse_dot_qmail(&text, &what, domain, &mut plan.skipped)
                .map_err(|e| format!("line {}: {}", e.line, e.message))?;
            if fwd.is_empty() {
                continue;
            }
            let user = address(&fname, Some(domain), 0).map_err(|e| e.message)?;
            plan.forwards
                .push((user.to_string(), fwd, !maildirs.is_empty()));
        }
    }
    Ok(plan)
}

mod sql;
#[cfg(test)]
mod tests;
