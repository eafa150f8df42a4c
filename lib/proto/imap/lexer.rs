//! The shared grammar of RFC 3501 section 9 over one framed command.

use super::types::{Date, DateTime, Flag, SeqNo, SeqSet};
use super::{MAX_LIST_ITEMS, MAX_SEQ_RANGES, MAX_TAG};

/// A syntax error, with the text for the BAD reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fail(pub String);

pub type Res<T> = Result<T, Fail>;

fn fail<T>(m: &str) -> Res<T> {
    Err(Fail(m.to_string()))
}

/// ATOM-CHAR: any CHAR except atom-specials (`( ) { SP CTL % * " \ ]`).
pub fn is_atom_char(b: u8) -> bool {
    b > 0x20 && b < 0x7f && !b"(){%*\"\\]".contains(&b)
}

/// A tag: ASTRING-CHAR except `+`.
pub fn is_tag_char(b: u8) -> bool {
    (is_atom_char(b) || b == b']') && b != b'+'
}

/// LIST wildcards may appear in list-mailbox atoms.
fn is_list_char(b: u8) -> bool {
    is_atom_char(b) || b == b'%' || b == b'*' || b == b']'
}

/// A position in one framed command.
pub struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    pub fn new(buf: &'a [u8]) -> Cursor<'a> {
        Cursor { buf, pos: 0 }
    }

    /// How far into the command the cursor is.
    pub fn pos(&self) -> usize {
        self.pos
    }

    pub fn peek(&self) -> Option<u8> {
        self.buf.get(self.pos).copied()
    }

    /// Whether the next bytes are `s` (case-insensitive); consumes them if so.
    pub fn eat(&mut self, s: &[u8]) -> bool {
        let end = self.pos + s.len();
        if end <= self.buf.len() && self.buf[self.pos..end].eq_ignore_ascii_case(s) {
            self.pos = end;
            true
        } else {
            false
        }
    }

    pub fn expect(&mut self, s: &[u8]) -> Res<()> {
        if self.eat(s) {
            Ok(())
        } else {
            Err(Fail(format!("Expected {}", String::from_utf8_lossy(s))))
        }
    }

    pub fn sp(&mut self) -> Res<()> {
        self.expect(b" ")
    }

    /// Whether the command ends here (CRLF, or a bare LF from a lax client).
    pub fn at_end(&self) -> bool {
        matches!(&self.buf[self.pos..], b"\r\n" | b"\n" | b"")
    }

    pub fn end(&mut self) -> Res<()> {
        if self.at_end() {
            self.pos = self.buf.len();
            Ok(())
        } else {
            fail("Unexpected extra arguments")
        }
    }

    /// Skips to the end of the command.
    pub fn rest(&mut self) {
        self.pos = self.buf.len();
    }

    pub fn tag(&mut self) -> Res<String> {
        let start = self.pos;
        while self.peek().is_some_and(is_tag_char) {
            self.pos += 1;
        }
        let t = &self.buf[start..self.pos];
        if t.is_empty() {
            return fail("Missing or invalid tag");
        }
        if t.len() > MAX_TAG {
            return fail("Tag too long");
        }
        Ok(String::from_utf8_lossy(t).into_owned())
    }

    fn take_while(&mut self, f: impl Fn(u8) -> bool) -> &'a [u8] {
        let start = self.pos;
        while self.peek().is_some_and(&f) {
            self.pos += 1;
        }
        &self.buf[start..self.pos]
    }

    pub fn atom(&mut self) -> Res<String> {
        let a = self.take_while(is_atom_char);
        if a.is_empty() {
            return fail("Expected an atom");
        }
        Ok(String::from_utf8_lossy(a).into_owned())
    }

    pub fn number(&mut self) -> Res<u32> {
        let d = self.take_while(|b| b.is_ascii_digit());
        if d.is_empty() || d.len() > 10 {
            return fail("Expected a number");
        }
        std::str::from_utf8(d)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| Fail("Number too large".into()))
    }

    pub fn number64(&mut self) -> Res<u64> {
        let d = self.take_while(|b| b.is_ascii_digit());
        if d.is_empty() || d.len() > 20 {
            return fail("Expected a number");
        }
        std::str::from_utf8(d)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| Fail("Number too large".into()))
    }

    pub fn nz_number(&mut self) -> Res<u32> {
        match self.number()? {
            0 => fail("Zero is not a valid number here"),
            n => Ok(n),
        }
    }

    /// quoted / literal.
    pub fn string(&mut self) -> Res<Vec<u8>> {
        match self.peek() {
            Some(b'"') => self.quoted(),
            Some(b'{') => self.literal(),
            Some(b'~') if self.buf.get(self.pos + 1) == Some(&b'{') => {
                self.pos += 1;
                self.literal()
            }
            _ => fail("Expected a string"),
        }
    }

    fn quoted(&mut self) -> Res<Vec<u8>> {
        self.pos += 1;
        let mut out = Vec::new();
        loop {
            match self.peek() {
                None | Some(b'\r') | Some(b'\n') => return fail("Unterminated quoted string"),
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    match self.buf.get(self.pos + 1) {
                        Some(c @ (b'"' | b'\\')) => out.push(*c),
                        _ => return fail("Invalid escape in quoted string"),
                    }
                    self.pos += 2;
                }
                Some(0) => return fail("NUL in quoted string"),
                Some(c) => {
                    out.push(c);
                    self.pos += 1;
                }
            }
        }
    }

    fn literal(&mut self) -> Res<Vec<u8>> {
        self.pos += 1;
        let n = self.number64()?;
        self.eat(b"+");
        self.expect(b"}")?;
        self.eat(b"\r");
        self.expect(b"\n")?;
        let end = self
            .pos
            .checked_add(n as usize)
            .filter(|e| *e <= self.buf.len())
            .ok_or_else(|| Fail("Literal shorter than announced".into()))?;
        let v = self.buf[self.pos..end].to_vec();
        self.pos = end;
        Ok(v)
    }

    /// astring: 1*ASTRING-CHAR / string.
    pub fn astring(&mut self) -> Res<Vec<u8>> {
        match self.peek() {
            Some(b'"' | b'{') => self.string(),
            Some(b'~') if self.buf.get(self.pos + 1) == Some(&b'{') => self.string(),
            _ => {
                let a = self.take_while(|b| is_atom_char(b) || b == b']');
                if a.is_empty() {
                    return fail("Expected an atom or string");
                }
                Ok(a.to_vec())
            }
        }
    }

    pub fn astring_utf8(&mut self) -> Res<String> {
        String::from_utf8(self.astring()?).map_err(|_| Fail("Invalid UTF-8".into()))
    }

    /// nstring: NIL / string.
    pub fn nstring(&mut self) -> Res<Option<Vec<u8>>> {
        if self.eat(b"NIL") {
            Ok(None)
        } else {
            self.string().map(Some)
        }
    }

    /// mailbox: `INBOX` / astring.
    pub fn mailbox(&mut self) -> Res<Vec<u8>> {
        self.astring()
    }

    /// list-mailbox: 1*list-char / string.
    pub fn list_mailbox(&mut self) -> Res<Vec<u8>> {
        match self.peek() {
            Some(b'"' | b'{') => self.string(),
            _ => {
                let a = self.take_while(is_list_char);
                if a.is_empty() {
                    return fail("Expected a mailbox pattern");
                }
                Ok(a.to_vec())
            }
        }
    }

    /// sequence-set (RFC 3501 9), at most [`MAX_SEQ_RANGES`] ranges.
    pub fn seq_set(&mut self) -> Res<SeqSet> {
        // seq-last-command (RFC 5182 4): `$` stands alone.
        if self.eat(b"$") {
            return Ok(SeqSet::saved());
        }
        let mut v = Vec::new();
        loop {
            let a = self.seq_no()?;
            let b = if self.eat(b":") { self.seq_no()? } else { a };
            if v.len() >= MAX_SEQ_RANGES {
                return fail("Too many ranges in the sequence set");
            }
            v.push((a, b));
            if !self.eat(b",") {
                return Ok(SeqSet(v));
            }
        }
    }

    fn seq_no(&mut self) -> Res<SeqNo> {
        if self.eat(b"*") {
            Ok(SeqNo::Star)
        } else {
            self.nz_number().map(SeqNo::Value)
        }
    }

    pub fn flag(&mut self) -> Res<Flag> {
        if self.eat(b"\\") {
            if self.eat(b"*") {
                return Ok(Flag::Extension("\\*".into()));
            }
            let a = self.atom()?;
            Ok(match a.to_ascii_lowercase().as_str() {
                "answered" => Flag::Answered,
                "flagged" => Flag::Flagged,
                "deleted" => Flag::Deleted,
                "seen" => Flag::Seen,
                "draft" => Flag::Draft,
                "recent" => Flag::Recent,
                _ => Flag::Extension(format!("\\{a}")),
            })
        } else {
            Ok(Flag::Keyword(self.atom()?))
        }
    }

    /// `(flag *(SP flag))`, possibly empty.
    pub fn flag_list(&mut self) -> Res<Vec<Flag>> {
        self.expect(b"(")?;
        let mut v = Vec::new();
        if self.eat(b")") {
            return Ok(v);
        }
        loop {
            if v.len() >= MAX_LIST_ITEMS {
                return fail("Too many flags");
            }
            v.push(self.flag()?);
            if self.eat(b")") {
                return Ok(v);
            }
            self.sp()?;
        }
    }

    /// Flags for STORE: a list, or flags separated by spaces.
    pub fn store_flags(&mut self) -> Res<Vec<Flag>> {
        if self.peek() == Some(b'(') {
            return self.flag_list();
        }
        let mut v = vec![self.flag()?];
        while self.eat(b" ") {
            if v.len() >= MAX_LIST_ITEMS {
                return fail("Too many flags");
            }
            v.push(self.flag()?);
        }
        Ok(v)
    }

    /// A parenthesised list of atoms.
    pub fn atom_list(&mut self) -> Res<Vec<String>> {
        self.expect(b"(")?;
        let mut v = Vec::new();
        if self.eat(b")") {
            return Ok(v);
        }
        loop {
            if v.len() >= MAX_LIST_ITEMS {
                return fail("List too long");
            }
            v.push(self.atom()?);
            if self.eat(b")") {
                return Ok(v);
            }
            self.sp()?;
        }
    }

    /// date: date-text / DQUOTE date-text DQUOTE, `d-Mon-yyyy`.
    pub fn date(&mut self) -> Res<Date> {
        let quoted = self.eat(b"\"");
        let d = self.take_while(|b| b.is_ascii_digit());
        if d.is_empty() || d.len() > 2 {
            return fail("Invalid date");
        }
        let day: u32 = digits(d);
        self.expect(b"-")?;
        let month = self.month()?;
        self.expect(b"-")?;
        let y = self.take_while(|b| b.is_ascii_digit());
        if y.len() != 4 {
            return fail("Invalid date");
        }
        if quoted {
            self.expect(b"\"")?;
        }
        check_date(digits(y) as i32, month, day)
    }

    fn month(&mut self) -> Res<u32> {
        const M: [&[u8]; 12] = [
            b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov",
            b"Dec",
        ];
        for (i, m) in M.iter().enumerate() {
            if self.eat(m) {
                return Ok(i as u32 + 1);
            }
        }
        fail("Invalid month")
    }

    /// date-time: `"dd-Mon-yyyy hh:mm:ss +zzzz"` (day may start with a space).
    pub fn date_time(&mut self) -> Res<DateTime> {
        self.expect(b"\"")?;
        self.eat(b" ");
        let d = self.take_while(|b| b.is_ascii_digit());
        if d.is_empty() || d.len() > 2 {
            return fail("Invalid date-time");
        }
        let day = digits(d);
        self.expect(b"-")?;
        let month = self.month()?;
        self.expect(b"-")?;
        let y = self.fixed_digits(4)?;
        let date = check_date(y as i32, month, day)?;
        self.sp()?;
        let hour = self.fixed_digits(2)?;
        self.expect(b":")?;
        let minute = self.fixed_digits(2)?;
        self.expect(b":")?;
        let second = self.fixed_digits(2)?;
        self.sp()?;
        let sign = if self.eat(b"+") {
            1
        } else if self.eat(b"-") {
            -1
        } else {
            return fail("Invalid zone");
        };
        let z = self.fixed_digits(4)?;
        self.expect(b"\"")?;
        if hour > 23 || minute > 59 || second > 60 || z % 100 > 59 {
            return fail("Invalid time");
        }
        Ok(DateTime {
            date,
            hour,
            minute,
            second,
            zone_minutes: sign * ((z / 100) * 60 + z % 100) as i32,
        })
    }

    fn fixed_digits(&mut self, n: usize) -> Res<u32> {
        let d = self.take_while(|b| b.is_ascii_digit());
        if d.len() != n {
            return fail("Invalid number in date");
        }
        Ok(digits(d))
    }
}

fn digits(d: &[u8]) -> u32 {
    d.iter().fold(0, |n, b| n * 10 + (b - b'0') as u32)
}

fn check_date(year: i32, month: u32, day: u32) -> Res<Date> {
    let dim = match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    if day == 0 || day > dim {
        return fail("Invalid day of month");
    }
    Ok(Date { year, month, day })
}
