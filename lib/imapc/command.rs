//! The client's side of the wire: commands built from parts, so that what
//! the caller supplies is only ever sent as a quoted string or a literal,
//! never spliced into the command's syntax; plus the checks for the few
//! arguments that must be atoms (flags, section specs, metadata entry names)
//! and the search criteria (RFC 9051 section 6.4.4, RFC 5256).

use super::Error;

/// One piece of a command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Part {
    /// Syntax the client itself writes (keywords, numbers, checked atoms).
    Syntax(String),
    /// A string argument: sent quoted when it can be, else as a literal.
    Str(Vec<u8>),
    /// Always a literal (a message for APPEND).
    Literal(Vec<u8>),
    /// A literal8 (`~{n}`, RFC 3516) for bytes that may hold NUL.
    Literal8(Vec<u8>),
}

/// A command without its tag.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Cmd {
    pub parts: Vec<Part>,
}

impl Cmd {
    pub fn new(verb: &str) -> Cmd {
        Cmd {
            parts: vec![Part::Syntax(verb.to_string())],
        }
    }

    /// Appends syntax, separated by a space from what came before unless it
    /// is a closing parenthesis or follows an opening one.
    pub fn syn(&mut self, s: &str) -> &mut Cmd {
        self.sep(s.starts_with(')'));
        self.parts.push(Part::Syntax(s.to_string()));
        self
    }

    /// Appends a string argument.
    pub fn str(&mut self, s: impl AsRef<[u8]>) -> &mut Cmd {
        self.sep(false);
        self.parts.push(Part::Str(s.as_ref().to_vec()));
        self
    }

    /// Appends bytes that always go as a literal.
    pub fn lit(&mut self, s: &[u8]) -> &mut Cmd {
        self.sep(false);
        self.parts.push(Part::Literal(s.to_vec()));
        self
    }

    pub fn lit8(&mut self, s: &[u8]) -> &mut Cmd {
        self.sep(false);
        self.parts.push(Part::Literal8(s.to_vec()));
        self
    }

    fn sep(&mut self, closing: bool) {
        let after_open = matches!(self.parts.last(), Some(Part::Syntax(s)) if s.ends_with('('));
        if !self.parts.is_empty() && !closing && !after_open {
            self.parts.push(Part::Syntax(" ".into()));
        }
    }
}

/// How a string argument goes on the wire.
#[derive(Debug, PartialEq, Eq)]
pub enum Encoded {
    Quoted(Vec<u8>),
    Literal,
}

/// Quotes `s` when a quoted string can carry it (no CR, LF or NUL; 8-bit
/// only when the server takes UTF-8 in quoted strings; not too long);
/// otherwise it must go as a literal. NUL cannot go either way.
pub fn encode_str(s: &[u8], utf8: bool) -> Result<Encoded, Error> {
    if s.contains(&0) {
        return Err(Error::Invalid("a string argument holds a NUL byte".into()));
    }
    let quotable = s.len() <= 1024
        && s.iter()
            .all(|&c| c != b'\r' && c != b'\n' && (c < 0x80 || utf8))
        && (!utf8 || std::str::from_utf8(s).is_ok());
    if !quotable {
        return Ok(Encoded::Literal);
    }
    let mut q = Vec::with_capacity(s.len() + 2);
    q.push(b'"');
    for &c in s {
        if c == b'"' || c == b'\\' {
            q.push(b'\\');
        }
        q.push(c);
    }
    q.push(b'"');
    Ok(Encoded::Quoted(q))
}

/// A UID set for the wire (`1:3,7,9:10`) from any list of UIDs: sorted,
/// duplicates and zeroes dropped, runs joined. Empty when `uids` is.
pub fn uid_set(uids: &[u32]) -> String {
    let mut v: Vec<u32> = uids.iter().copied().filter(|u| *u != 0).collect();
    v.sort_unstable();
    v.dedup();
    let mut out = String::new();
    let mut i = 0;
    while i < v.len() {
        let start = v[i];
        let mut end = start;
        while i + 1 < v.len() && end.checked_add(1) == Some(v[i + 1]) {
            i += 1;
            end = v[i];
        }
        if !out.is_empty() {
            out.push(',');
        }
        if start == end {
            out.push_str(&start.to_string());
        } else {
            out.push_str(&format!("{start}:{end}"));
        }
        i += 1;
    }
    out
}

/// [`uid_set`] in pieces of at most about `max` bytes, for commands that
/// may be split (servers cap the line length).
pub fn uid_sets(uids: &[u32], max: usize) -> Vec<String> {
    let whole = uid_set(uids);
    let mut out = Vec::new();
    let mut cur = String::new();
    for r in whole.split(',').filter(|r| !r.is_empty()) {
        if !cur.is_empty() && cur.len() + r.len() + 1 > max {
            out.push(std::mem::take(&mut cur));
        }
        if !cur.is_empty() {
            cur.push(',');
        }
        cur.push_str(r);
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// The most UIDs a set from the server may expand to.
pub const MAX_SET: usize = 10_000_000;

/// Expands a sequence set the server sent (`1:3,7`) into numbers, in the
/// server's order; `*` or a set past [`MAX_SET`] numbers is refused.
pub fn expand_set(s: &str) -> Result<Vec<u32>, Error> {
    let bad = || Error::Protocol(format!("bad sequence set {s:?}"));
    let mut out = Vec::new();
    for r in s.split(',') {
        let (a, b) = r.split_once(':').unwrap_or((r, r));
        let a: u32 = a.parse().map_err(|_| bad())?;
        let b: u32 = b.parse().map_err(|_| bad())?;
        let (lo, hi) = (a.min(b), a.max(b));
        if out.len() + (hi - lo) as usize + 1 > MAX_SET {
            return Err(Error::Protocol("sequence set too large".into()));
        }
        out.extend(lo..=hi);
    }
    Ok(out)
}

/// Expands a set in a server's chosen order (an ESORT result: `9,4:2,7`
/// is 9, 4, 3, 2, 7), at most `limit` numbers, else an error.
pub fn expand_ordered(s: &str, limit: usize) -> Result<Vec<u32>, Error> {
    let bad = || Error::Protocol(format!("bad sequence set {s:?}"));
    let mut out = Vec::new();
    for r in s.split(',') {
        let (a, b) = r.split_once(':').unwrap_or((r, r));
        let a: u32 = a.parse().map_err(|_| bad())?;
        let b: u32 = b.parse().map_err(|_| bad())?;
        if out.len() + a.abs_diff(b) as usize + 1 > limit {
            return Err(Error::Protocol("more numbers than asked for".into()));
        }
        if a <= b {
            out.extend(a..=b);
        } else {
            out.extend((b..=a).rev());
        }
    }
    Ok(out)
}

/// Checks a flag or keyword: `\Seen`, `$Forwarded`, `Junk` (RFC 9051 "flag").
pub fn check_flag(f: &str) -> Result<(), Error> {
    let body = f.strip_prefix('\\').unwrap_or(f);
    if body.is_empty() || body.len() > 128 || !body.bytes().all(is_atom_char) {
        return Err(Error::Invalid(format!("not a flag: {f:?}")));
    }
    Ok(())
}

/// Checks a section spec for BODY.PEEK[...]: empty, `HEADER`, `TEXT`, a
/// part number `1.2.3`, or a part number with `.HEADER`, `.TEXT` or `.MIME`.
pub fn check_section(s: &str) -> Result<String, Error> {
    let bad = || Error::Invalid(format!("not a section: {s:?}"));
    let up = s.to_ascii_uppercase();
    if up.is_empty() || up == "HEADER" || up == "TEXT" {
        return Ok(up);
    }
    let pieces: Vec<&str> = up.split('.').collect();
    for (i, piece) in pieces.iter().enumerate() {
        let is_num =
            !piece.is_empty() && piece.len() <= 9 && piece.bytes().all(|c| c.is_ascii_digit());
        if is_num && !piece.starts_with('0') {
            continue;
        }
        // One word, last, after at least one number.
        if i == 0 || i + 1 != pieces.len() || !matches!(*piece, "HEADER" | "TEXT" | "MIME") {
            return Err(bad());
        }
    }
    if up.len() > 100 {
        return Err(bad());
    }
    Ok(up)
}

/// Checks a metadata entry name (RFC 5464): `/private/...` or `/shared/...`,
/// printable ASCII without wildcards.
pub fn check_entry(e: &str) -> Result<(), Error> {
    let lower = e.to_ascii_lowercase();
    let ok = (lower.starts_with("/private/") || lower.starts_with("/shared/"))
        && e.len() <= 256
        && !e.ends_with('/')
        && !e.contains("//")
        && e.bytes()
            .all(|c| (0x21..0x7f).contains(&c) && c != b'*' && c != b'%');
    if ok {
        Ok(())
    } else {
        Err(Error::Invalid(format!("not a metadata entry: {e:?}")))
    }
}

fn is_atom_char(c: u8) -> bool {
    c > b' ' && c < 0x7f && !matches!(c, b'(' | b')' | b'{' | b'"' | b'\\' | b']' | b'%' | b'*')
}

/// The key a list is sorted by (RFC 5256; DISPLAY forms are not used).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SortKey {
    Arrival,
    Date,
    From,
    Subject,
    Size,
    To,
    Cc,
}

impl SortKey {
    fn atom(self) -> &'static str {
        match self {
            SortKey::Arrival => "ARRIVAL",
            SortKey::Date => "DATE",
            SortKey::From => "FROM",
            SortKey::Subject => "SUBJECT",
            SortKey::Size => "SIZE",
            SortKey::To => "TO",
            SortKey::Cc => "CC",
        }
    }

    /// `(REVERSE DATE)`.
    pub fn program(self, reverse: bool) -> String {
        if reverse {
            format!("(REVERSE {})", self.atom())
        } else {
            format!("({})", self.atom())
        }
    }
}

/// A calendar date for SINCE and BEFORE: (year, month 1-12, day 1-31).
pub type Date = (u16, u8, u8);

/// What SEARCH and SORT select (RFC 9051 section 6.4.4). Strings are
/// UTF-8 and sent with CHARSET UTF-8 (or as UTF-8 under UTF8=ACCEPT).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Criteria {
    All,
    Unseen,
    Flagged,
    From(String),
    To(String),
    Subject(String),
    Body(String),
    Text(String),
    /// INTERNALDATE on or after the date.
    Since(Date),
    /// INTERNALDATE before the date.
    Before(Date),
    /// All of them (an empty list matches everything).
    And(Vec<Criteria>),
    Or(Box<Criteria>, Box<Criteria>),
    Not(Box<Criteria>),
    /// These UIDs (an empty list matches nothing).
    Uids(Vec<u32>),
    /// UIDs from this one up (`UID n:*`; as IMAP reads `n:*`, the
    /// folder's last message matches too when n is past it).
    UidsFrom(u32),
    /// Messages from this sequence number up (`n:*`): the newest of the
    /// folder.
    SeqsFrom(u32),
    /// A header field containing the text (RFC 9051 6.4.4 HEADER; an empty
    /// text matches every message that has the field). The field name is
    /// ASCII.
    Header(String, String),
}

/// The deepest nesting of criteria sent.
const MAX_CRITERIA_DEPTH: usize = 32;

impl Criteria {
    /// Appends the search key to `cmd`.
    pub fn write(&self, cmd: &mut Cmd) -> Result<(), Error> {
        self.write_at(cmd, 0)
    }

    fn write_at(&self, cmd: &mut Cmd, depth: usize) -> Result<(), Error> {
        if depth > MAX_CRITERIA_DEPTH {
            return Err(Error::Invalid("search criteria nested too deeply".into()));
        }
        match self {
            Criteria::All => {
                cmd.syn("ALL");
            }
            Criteria::Unseen => {
                cmd.syn("UNSEEN");
            }
            Criteria::Flagged => {
                cmd.syn("FLAGGED");
            }
            Criteria::From(s) => {
                cmd.syn("FROM").str(s);
            }
            Criteria::To(s) => {
                cmd.syn("TO").str(s);
            }
            Criteria::Subject(s) => {
                cmd.syn("SUBJECT").str(s);
            }
            Criteria::Body(s) => {
                cmd.syn("BODY").str(s);
            }
            Criteria::Text(s) => {
                cmd.syn("TEXT").str(s);
            }
            Criteria::Since(d) => {
                cmd.syn("SINCE").syn(&imap_date(*d)?);
            }
            Criteria::Before(d) => {
                cmd.syn("BEFORE").syn(&imap_date(*d)?);
            }
            Criteria::And(v) if v.is_empty() => {
                cmd.syn("ALL");
            }
            Criteria::And(v) => {
                cmd.syn("(");
                for c in v {
                    c.write_at(cmd, depth + 1)?;
                }
                cmd.syn(")");
            }
            Criteria::Or(a, b) => {
                cmd.syn("OR");
                a.write_at(cmd, depth + 1)?;
                b.write_at(cmd, depth + 1)?;
            }
            Criteria::Not(a) => {
                cmd.syn("NOT");
                a.write_at(cmd, depth + 1)?;
            }
            Criteria::Header(name, text) => {
                cmd.syn("HEADER").str(name).str(text);
            }
            Criteria::UidsFrom(n) => {
                cmd.syn("UID").syn(&format!("{}:*", (*n).max(1)));
            }
            Criteria::SeqsFrom(n) => {
                cmd.syn(&format!("{}:*", (*n).max(1)));
            }
            Criteria::Uids(v) => {
                let set = uid_set(v);
                if set.is_empty() {
                    cmd.syn("NOT ALL");
                } else {
                    cmd.syn("UID").syn(&set);
                }
            }
        }
        Ok(())
    }

    /// Whether any string in it is not ASCII.
    pub fn has_8bit(&self) -> bool {
        match self {
            Criteria::From(s)
            | Criteria::To(s)
            | Criteria::Subject(s)
            | Criteria::Body(s)
            | Criteria::Text(s) => !s.is_ascii(),
            Criteria::Header(n, s) => !n.is_ascii() || !s.is_ascii(),
            Criteria::And(v) => v.iter().any(Criteria::has_8bit),
            Criteria::Or(a, b) => a.has_8bit() || b.has_8bit(),
            Criteria::Not(a) => a.has_8bit(),
            _ => false,
        }
    }
}

/// `1-Mar-2024` (RFC 9051 "date").
fn imap_date((y, m, d): Date) -> Result<String, Error> {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || !(1..=9999).contains(&y) {
        return Err(Error::Invalid(format!("not a date: {y}-{m}-{d}")));
    }
    Ok(format!("{d}-{}-{y:04}", MONTHS[usize::from(m - 1)]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(c: &Cmd) -> String {
        c.parts
            .iter()
            .map(|p| match p {
                Part::Syntax(s) => s.clone(),
                Part::Str(b) => format!("<{}>", String::from_utf8_lossy(b)),
                Part::Literal(b) => format!("{{{}}}", b.len()),
                Part::Literal8(b) => format!("~<{}>", b.len()),
            })
            .collect()
    }

    #[test]
    fn criteria_render_with_strings_as_arguments() {
        let c = Criteria::And(vec![
            Criteria::Unseen,
            Criteria::Or(
                Box::new(Criteria::From("a\"b".into())),
                Box::new(Criteria::Subject("中文".into())),
            ),
            Criteria::Not(Box::new(Criteria::Uids(vec![5, 1, 2, 3]))),
            Criteria::Since((2024, 3, 1)),
            Criteria::Uids(vec![]),
        ]);
        let mut cmd = Cmd::new("UID SEARCH");
        c.write(&mut cmd).unwrap();
        assert_eq!(
            render(&cmd),
            "UID SEARCH (UNSEEN OR FROM <a\"b> SUBJECT <中文> NOT UID 1:3,5 SINCE 1-Mar-2024 NOT ALL)"
        );
        assert!(c.has_8bit());
        let mut cmd = Cmd::new("X");
        assert!(Criteria::Before((2024, 13, 1)).write(&mut cmd).is_err());
        let mut deep = Criteria::All;
        for _ in 0..100 {
            deep = Criteria::Not(Box::new(deep));
        }
        assert!(deep.write(&mut Cmd::new("X")).is_err());
    }

    #[test]
    fn strings_quoted_or_literal_never_raw() {
        assert_eq!(
            encode_str(b"a \"b\" \\c", false).unwrap(),
            Encoded::Quoted(b"\"a \\\"b\\\" \\\\c\"".to_vec())
        );
        assert_eq!(
            encode_str(b"", false).unwrap(),
            Encoded::Quoted(b"\"\"".to_vec())
        );
        assert_eq!(
            encode_str(b"x\r\nA1 LOGOUT", false).unwrap(),
            Encoded::Literal
        );
        assert_eq!(
            encode_str("中".as_bytes(), false).unwrap(),
            Encoded::Literal
        );
        assert!(matches!(
            encode_str("中".as_bytes(), true).unwrap(),
            Encoded::Quoted(_)
        ));
        assert_eq!(encode_str(b"\xff", true).unwrap(), Encoded::Literal);
        assert!(encode_str(b"a\0b", false).is_err());
        // What is quoted reads back the same through the response parser.
        for s in [
            &b"plain"[..],
            b"a\"b\\c\\",
            b"\t\x1b",
            "中文".as_bytes(),
            b"",
        ] {
            for utf8 in [false, true] {
                if let Encoded::Quoted(q) = encode_str(s, utf8).unwrap() {
                    let line = [b"* X ".as_slice(), &q, b"\r\n"].concat();
                    let Ok(super::super::reply::Response::Data { values, .. }) =
                        super::super::reply::parse(&line)
                    else {
                        panic!("{line:?}")
                    };
                    assert_eq!(values, vec![super::super::reply::Value::Str(s.to_vec())]);
                }
            }
        }
    }

    #[test]
    fn sets() {
        assert_eq!(uid_set(&[5, 3, 4, 1, 9, 9, 0]), "1,3:5,9");
        assert_eq!(uid_set(&[]), "");
        assert_eq!(
            uid_set(&[u32::MAX, u32::MAX - 1, 1]),
            "1,4294967294:4294967295"
        );
        assert_eq!(uid_sets(&[1, 3, 5, 7], 3), vec!["1,3", "5,7"]);
        assert_eq!(expand_set("3:1,7").unwrap(), vec![1, 2, 3, 7]);
        assert!(expand_set("1:4294967295").is_err());
        assert!(expand_set("1:*").is_err());
        assert!(expand_set("").is_err());
        assert_eq!(expand_ordered("9,4:2,7", 5).unwrap(), vec![9, 4, 3, 2, 7]);
        assert_eq!(expand_ordered("5", 1).unwrap(), vec![5]);
        assert!(expand_ordered("9,4:2,7", 4).is_err());
        assert!(expand_ordered("1:4294967295", 50).is_err());
        assert!(expand_ordered("1:*", 50).is_err());
    }

    #[test]
    fn atoms_are_checked() {
        for ok in ["\\Seen", "$Forwarded", "Junk"] {
            assert!(check_flag(ok).is_ok(), "{ok}");
        }
        for bad in ["", "\\", "a b", "x)", "\\Seen\r\nA LOGOUT", "*", "a\"b"] {
            assert!(check_flag(bad).is_err(), "{bad:?}");
        }
        for (s, up) in [
            ("", ""),
            ("1", "1"),
            ("1.2.3", "1.2.3"),
            ("header", "HEADER"),
            ("2.mime", "2.MIME"),
            ("3.1.TEXT", "3.1.TEXT"),
        ] {
            assert_eq!(check_section(s).unwrap(), up);
        }
        for bad in [
            "0",
            "1..2",
            "MIME",
            "1.MIME.2",
            "1]",
            "HEADER.FIELDS (A)",
            ".1",
            "1.",
            "01",
        ] {
            assert!(check_section(bad).is_err(), "{bad:?}");
        }
        assert!(check_entry("/private/vendor/kmp/prefs").is_ok());
        for bad in [
            "/private",
            "private/x",
            "/shared/*",
            "/private/a b",
            "/private/x/",
        ] {
            assert!(check_entry(bad).is_err(), "{bad:?}");
        }
    }
}
