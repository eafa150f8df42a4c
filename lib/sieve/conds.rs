//! The tests of a script (RFC 5228 5 and the extensions' tests) as the
//! compiled form holds them, and their compilation: match types,
//! comparators, address parts, :index, and each test's own arguments.

use super::compare::{Comparator, Match, MatchKind, Relation};
use super::compile::{Args, Compiler};
use super::lexer::Pos;
use super::parser::{Command, Test};
use super::value::{self, Str};
use super::{CompileError, Extension};

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
    pub(super) fn single_test(&mut self, cmd: &Command) -> Result<Cond, CompileError> {
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
                    let literal = !self.has(Extension::Variables) || !n.contains("${");
                    if literal && !matches!(n.as_str(), "from" | "to" | "auth") {
                        return Err(p.error(format!("envelope: unknown envelope part \"{n}\"")));
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
