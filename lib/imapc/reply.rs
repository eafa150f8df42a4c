//! The server's side of the wire: framing one response out of a byte stream
//! ([`read_response`]) and parsing it ([`parse`]) into a [`Response`] of
//! [`Value`]s (RFC 9051 section 9, "response" and its parts).
//!
//! The parser is a pure function from the bytes of one complete response
//! (literals included, exactly as they came over the wire) to a typed value,
//! so it can be fuzzed and tested without a socket. It is permissive where
//! servers differ harmlessly (atoms are any run of non-special bytes; the
//! case of keywords does not matter) and strict where a mistake would shift
//! the meaning of what follows (literal counts, quoting, nesting). Every
//! length has a cap; hostile input gives an error, never a panic.

use std::io::BufRead;

/// The longest line (outside literals) a response may have: a SEARCH
/// result of a million UIDs from a server without ESEARCH.
pub const MAX_LINE: usize = 8 << 20;
/// The largest single literal (a whole message fetched with BODY[]).
pub const MAX_LITERAL: usize = 64 << 20;
/// The most bytes one response may hold, literals included.
pub const MAX_RESPONSE: usize = MAX_LITERAL + (16 << 20);
/// The deepest nesting of parenthesised lists (BODYSTRUCTURE of a message
/// in a message in a multipart ... needs a few dozen at most).
pub const MAX_DEPTH: usize = 64;
/// The most values one response may hold (each costs more memory than
/// the two bytes `1 ` it takes on the wire).
pub const MAX_VALUES: usize = 2_000_000;

/// One value of response data (RFC 9051 "nstring", "astring", lists).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    /// An atom or number, as sent; fetch item names keep their `[...]`
    /// section and `<origin>` (`BODY[HEADER.FIELDS (X-PRIORITY)]`).
    Atom(Vec<u8>),
    /// A quoted string (escapes removed) or a literal.
    Str(Vec<u8>),
    /// NIL.
    Nil,
    /// A parenthesised list.
    List(Vec<Value>),
}

impl Value {
    /// The bytes of an atom or a string.
    pub fn bytes(&self) -> Option<&[u8]> {
        match self {
            Value::Atom(b) | Value::Str(b) => Some(b),
            _ => None,
        }
    }

    /// An atom or string as text (lossy for invalid UTF-8).
    pub fn text(&self) -> Option<String> {
        self.bytes()
            .map(|b| String::from_utf8_lossy(b).into_owned())
    }

    /// A number (an atom of digits, or a string of digits).
    pub fn number(&self) -> Option<u64> {
        let b = self.bytes()?;
        if b.is_empty() || b.len() > 20 || !b.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(b).ok()?.parse().ok()
    }

    /// A 32-bit number.
    pub fn number32(&self) -> Option<u32> {
        self.number().and_then(|n| u32::try_from(n).ok())
    }

    /// The list's items.
    pub fn list(&self) -> Option<&[Value]> {
        match self {
            Value::List(v) => Some(v),
            _ => None,
        }
    }

    /// An nstring: None for NIL (and for anything that is not a string).
    pub fn nstring(&self) -> Option<Vec<u8>> {
        match self {
            Value::Str(b) | Value::Atom(b) => Some(b.clone()),
            _ => None,
        }
    }

    /// Whether this is the atom `word`, ignoring case.
    pub fn is_atom(&self, word: &str) -> bool {
        matches!(self, Value::Atom(b) if b.eq_ignore_ascii_case(word.as_bytes()))
    }
}

/// The status word of a status response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Ok,
    No,
    Bad,
    Bye,
    Preauth,
}

/// One parsed response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Response {
    /// `+ text` (or `+ base64` during AUTHENTICATE).
    Continue(Vec<u8>),
    /// A status response: `TAG OK ...` (tag Some) or `* BYE ...` (tag None).
    Status {
        tag: Option<Vec<u8>>,
        status: Status,
        /// The response code's atom, upper-cased (`APPENDUID`), and its values.
        code: Option<(String, Vec<Value>)>,
        text: String,
    },
    /// Untagged data: `* 3 EXISTS` (number Some), `* LIST (...) "/" x`.
    Data {
        number: Option<u32>,
        /// The keyword, upper-cased.
        name: String,
        values: Vec<Value>,
    },
}

/// Why a response could not be framed or parsed.
#[derive(Debug)]
pub enum ReplyError {
    /// The connection failed or timed out.
    Io(std::io::Error),
    /// The connection closed before the response was complete.
    Closed,
    /// The bytes are not a response we can read.
    Syntax(String),
}

/// Reads the bytes of one response: a line, and when it ends with a literal
/// count, the literal and the line that goes on after it, until a line ends
/// without one. Every length is capped.
pub fn read_response(r: &mut impl BufRead, out: &mut Vec<u8>) -> Result<(), ReplyError> {
    out.clear();
    loop {
        let start = out.len();
        read_line(r, out)?;
        let line = &out[start..];
        let Some(n) = trailing_literal(line)? else {
            return Ok(());
        };
        if n > MAX_LITERAL || out.len() + n > MAX_RESPONSE {
            return Err(ReplyError::Syntax(format!(
                "literal of {n} bytes is too large"
            )));
        }
        let at = out.len();
        out.resize(at + n, 0);
        r.read_exact(&mut out[at..]).map_err(|e| {
            if e.kind() == std::io::ErrorKind::UnexpectedEof {
                ReplyError::Closed
            } else {
                ReplyError::Io(e)
            }
        })?;
    }
}

/// Appends one line (through LF) to `out`.
fn read_line(r: &mut impl BufRead, out: &mut Vec<u8>) -> Result<(), ReplyError> {
    let start = out.len();
    loop {
        let buf = r.fill_buf().map_err(ReplyError::Io)?;
        if buf.is_empty() {
            return Err(ReplyError::Closed);
        }
        let (take, done) = match buf.iter().position(|b| *b == b'\n') {
            Some(i) => (i + 1, true),
            None => (buf.len(), false),
        };
        if out.len() - start + take > MAX_LINE || out.len() + take > MAX_RESPONSE {
            return Err(ReplyError::Syntax("response line too long".into()));
        }
        out.extend_from_slice(&buf[..take]);
        r.consume(take);
        if done {
            return Ok(());
        }
    }
}

/// The count of a literal announced at the end of `line` (`{12}\r\n`,
/// `~{12}\r\n`, `{12+}\r\n`), if any.
fn trailing_literal(line: &[u8]) -> Result<Option<usize>, ReplyError> {
    let l = line.strip_suffix(b"\n").unwrap_or(line);
    let l = l.strip_suffix(b"\r").unwrap_or(l);
    let Some(l) = l.strip_suffix(b"}") else {
        return Ok(None);
    };
    let l = l.strip_suffix(b"+").unwrap_or(l);
    let digits = l.iter().rev().take_while(|b| b.is_ascii_digit()).count();
    let (head, num) = l.split_at(l.len() - digits);
    if digits == 0 || !head.ends_with(b"{") {
        return Ok(None);
    }
    parse_count(num).map(Some)
}

fn parse_count(num: &[u8]) -> Result<usize, ReplyError> {
    if num.len() > 10 {
        return Err(ReplyError::Syntax("literal count too large".into()));
    }
    let n: u64 = std::str::from_utf8(num)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| ReplyError::Syntax("bad literal count".into()))?;
    usize::try_from(n)
        .ok()
        .filter(|n| *n <= MAX_LITERAL)
        .ok_or_else(|| ReplyError::Syntax(format!("literal of {n} bytes is too large")))
}

/// Parses the bytes of one complete response (as [`read_response`] framed it).
pub fn parse(input: &[u8]) -> Result<Response, ReplyError> {
    parse_counted(input).map(|(r, _)| r)
}

/// [`parse`], and how many values the response holds.
pub fn parse_counted(input: &[u8]) -> Result<(Response, usize), ReplyError> {
    let mut p = Parser {
        b: input,
        i: 0,
        values: 0,
        no_close: 0,
    };
    let r = p.response()?;
    if p.i != input.len() {
        return Err(p.err("bytes after the end of the response"));
    }
    Ok((r, p.values))
}

struct Parser<'a> {
    b: &'a [u8],
    i: usize,
    values: usize,
    /// Before this offset no `]` closes a `[` (see [`Parser::atom`]).
    no_close: usize,
}

impl Parser<'_> {
    fn err(&self, what: &str) -> ReplyError {
        ReplyError::Syntax(format!("{what} at byte {}", self.i))
    }

    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, c: u8) -> Result<(), ReplyError> {
        if self.eat(c) {
            Ok(())
        } else {
            Err(self.err(&format!("expected {:?}", c as char)))
        }
    }

    fn at_eol(&self) -> bool {
        matches!(self.peek(), Some(b'\r') | Some(b'\n'))
    }

    /// CRLF (a bare LF is tolerated) and nothing after it.
    fn eol(&mut self) -> Result<(), ReplyError> {
        self.eat(b'\r');
        self.expect(b'\n')
    }

    /// The bytes up to the end of the line, which is consumed.
    fn rest_of_line(&mut self) -> Result<Vec<u8>, ReplyError> {
        let rest = &self.b[self.i..];
        let end = rest
            .iter()
            .position(|b| *b == b'\n')
            .ok_or_else(|| self.err("missing line end"))?;
        let mut text = &rest[..end];
        if let Some(t) = text.strip_suffix(b"\r") {
            text = t;
        }
        self.i += end + 1;
        Ok(text.to_vec())
    }

    fn response(&mut self) -> Result<Response, ReplyError> {
        if self.eat(b'+') {
            self.eat(b' ');
            return Ok(Response::Continue(self.rest_of_line()?));
        }
        let tag = if self.eat(b'*') {
            None
        } else {
            let start = self.i;
            while matches!(self.peek(), Some(c) if is_tag_char(c)) {
                self.i += 1;
            }
            if self.i == start {
                return Err(self.err("expected a tag, * or +"));
            }
            Some(self.b[start..self.i].to_vec())
        };
        self.expect(b' ')?;
        let word = self.word();
        if word.is_empty() {
            return Err(self.err("expected a response keyword"));
        }
        if let Some(status) = status_word(&word) {
            return self.status(tag, status);
        }
        if tag.is_some() {
            return Err(self.err("a tagged response must be OK, NO or BAD"));
        }
        let (number, name) = if word.iter().all(u8::is_ascii_digit) {
            let n = Value::Atom(word.clone())
                .number32()
                .ok_or_else(|| self.err("number out of range"))?;
            self.expect(b' ')?;
            let name = self.word();
            if name.is_empty() {
                return Err(self.err("expected a keyword after the number"));
            }
            (Some(n), name)
        } else {
            (None, word)
        };
        let name = String::from_utf8_lossy(&name).to_ascii_uppercase();
        let mut values = Vec::new();
        if name == "CAPABILITY" || name == "ENABLED" {
            // Capability names are atoms, but be lenient with odd bytes.
            let line = self.rest_of_line()?;
            for w in line.split(|b| *b == b' ').filter(|w| !w.is_empty()) {
                if values.len() >= 1000 {
                    return Err(self.err("too many capabilities"));
                }
                values.push(Value::Atom(w.to_vec()));
            }
            return Ok(Response::Data {
                number,
                name,
                values,
            });
        }
        while self.eat(b' ') {
            if self.at_eol() {
                break; // a trailing space, as some servers send after SEARCH
            }
            values.push(self.value(0, false)?);
        }
        self.eol()?;
        Ok(Response::Data {
            number,
            name,
            values,
        })
    }

    /// The status response after its keyword: `[code] text`.
    fn status(&mut self, tag: Option<Vec<u8>>, status: Status) -> Result<Response, ReplyError> {
        let mut code = None;
        if self.eat(b' ') && self.peek() == Some(b'[') {
            let save = self.i;
            match self.code() {
                Ok(c) => code = Some(c),
                // An unreadable code is kept as text, as a person would read it.
                Err(_) => self.i = save,
            }
            self.eat(b' ');
        }
        let text = String::from_utf8_lossy(&self.rest_of_line()?).into_owned();
        Ok(Response::Status {
            tag,
            status,
            code,
            text,
        })
    }

    /// `[ATOM values...]`.
    fn code(&mut self) -> Result<(String, Vec<Value>), ReplyError> {
        self.expect(b'[')?;
        let start = self.i;
        while matches!(self.peek(), Some(c) if is_atom_char(c) && c != b']') {
            self.i += 1;
        }
        if self.i == start {
            return Err(self.err("empty response code"));
        }
        let name = String::from_utf8_lossy(&self.b[start..self.i]).to_ascii_uppercase();
        let mut values = Vec::new();
        while self.eat(b' ') {
            if self.peek() == Some(b']') {
                break;
            }
            values.push(self.value(0, true)?);
        }
        self.expect(b']')?;
        Ok((name, values))
    }

    /// The keyword after the tag or number: a run of atom characters.
    fn word(&mut self) -> Vec<u8> {
        let start = self.i;
        while matches!(self.peek(), Some(c) if is_atom_char(c) && c != b'[' && c != b']') {
            self.i += 1;
        }
        self.b[start..self.i].to_vec()
    }

    /// One value. `in_code`: a `]` ends atoms (inside a response code).
    fn value(&mut self, depth: usize, in_code: bool) -> Result<Value, ReplyError> {
        self.values += 1;
        if self.values > MAX_VALUES {
            return Err(self.err("too many values in one response"));
        }
        match self.peek() {
            Some(b'(') => {
                if depth >= MAX_DEPTH {
                    return Err(self.err("lists nested too deeply"));
                }
                self.i += 1;
                let mut items = Vec::new();
                if self.eat(b')') {
                    return Ok(Value::List(items));
                }
                loop {
                    items.push(self.value(depth + 1, in_code)?);
                    if self.eat(b')') {
                        return Ok(Value::List(items));
                    }
                    // The parts of a multipart body and the addresses of an
                    // envelope follow each other with no space: `(..)(..)`.
                    if self.peek() == Some(b'(') && matches!(items.last(), Some(Value::List(_))) {
                        continue;
                    }
                    self.expect(b' ')?;
                    // Tolerate a space before the closing parenthesis.
                    if self.eat(b')') {
                        return Ok(Value::List(items));
                    }
                }
            }
            Some(b'"') => self.quoted().map(Value::Str),
            Some(b'{') => self.literal().map(Value::Str),
            Some(b'~') if self.b.get(self.i + 1) == Some(&b'{') => {
                self.i += 1;
                self.literal().map(Value::Str)
            }
            Some(c) if is_atom_char(c) && !(in_code && c == b']') => {
                let a = self.atom(in_code)?;
                if a.eq_ignore_ascii_case(b"NIL") {
                    Ok(Value::Nil)
                } else {
                    Ok(Value::Atom(a))
                }
            }
            _ => Err(self.err("expected a value")),
        }
    }

    /// An atom; a `[` opens a section that runs to the next `]` (spaces
    /// and parentheses included), and a `<n>` may follow it.
    fn atom(&mut self, in_code: bool) -> Result<Vec<u8>, ReplyError> {
        let start = self.i;
        loop {
            match self.peek() {
                Some(b'[') if self.i >= self.no_close => {
                    // A section runs to the first `]` (sections do not
                    // nest). Without one on the line, `[` is an ordinary
                    // atom character (a mailbox named `a[b`), and so is
                    // every later `[` on the line: no scan twice.
                    let rest = &self.b[self.i..];
                    let end = rest
                        .iter()
                        .position(|c| matches!(c, b']' | b'\r' | b'\n'))
                        .unwrap_or(rest.len());
                    if rest.get(end) != Some(&b']') {
                        self.no_close = self.i + end;
                        self.i += 1;
                        continue;
                    }
                    self.i += end + 1;
                    if self.eat(b'<') {
                        // The origin of a partial fetch: `BODY[]<0>`.
                        while matches!(self.peek(), Some(c) if c.is_ascii_digit() || c == b'.') {
                            self.i += 1;
                        }
                        self.expect(b'>')?;
                    }
                }
                Some(b']') if in_code => break,
                Some(c) if is_atom_char(c) => self.i += 1,
                _ => break,
            }
        }
        Ok(self.b[start..self.i].to_vec())
    }

    fn quoted(&mut self) -> Result<Vec<u8>, ReplyError> {
        self.expect(b'"')?;
        let mut out = Vec::new();
        loop {
            match self.peek() {
                Some(b'"') => {
                    self.i += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    self.i += 1;
                    match self.peek() {
                        Some(c @ (b'"' | b'\\')) => {
                            out.push(c);
                            self.i += 1;
                        }
                        _ => return Err(self.err("bad escape in quoted string")),
                    }
                }
                Some(b'\r') | Some(b'\n') | Some(0) | None => {
                    return Err(self.err("unterminated quoted string"))
                }
                Some(c) => {
                    out.push(c);
                    self.i += 1;
                }
            }
        }
    }

    /// `{n}CRLF` and n bytes (the `~` of a literal8 is already eaten).
    fn literal(&mut self) -> Result<Vec<u8>, ReplyError> {
        self.expect(b'{')?;
        let start = self.i;
        while matches!(self.peek(), Some(c) if c.is_ascii_digit()) {
            self.i += 1;
        }
        if self.i == start {
            return Err(self.err("bad literal count"));
        }
        let n = parse_count(&self.b[start..self.i])?;
        self.eat(b'+');
        self.expect(b'}')?;
        self.eol()?;
        if self.b.len() - self.i < n {
            return Err(self.err("literal shorter than its count"));
        }
        let v = self.b[self.i..self.i + n].to_vec();
        self.i += n;
        Ok(v)
    }
}

fn status_word(w: &[u8]) -> Option<Status> {
    let w = w.to_ascii_uppercase();
    match &w[..] {
        b"OK" => Some(Status::Ok),
        b"NO" => Some(Status::No),
        b"BAD" => Some(Status::Bad),
        b"BYE" => Some(Status::Bye),
        b"PREAUTH" => Some(Status::Preauth),
        _ => None,
    }
}

/// RFC 9051 ATOM-CHAR, widened to 8-bit bytes and to the list wildcards and
/// `\` (flags, `\*`), which servers send bare; `[`/`]` are handled by callers.
fn is_atom_char(c: u8) -> bool {
    c > b' ' && c != 0x7f && !matches!(c, b'(' | b')' | b'{' | b'"')
}

fn is_tag_char(c: u8) -> bool {
    is_atom_char(c) && c != b'+' && c != b'[' && c != b']'
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &[u8]) -> Response {
        parse(s).unwrap_or_else(|e| panic!("{:?}: {e:?}", String::from_utf8_lossy(s)))
    }

    fn read_all(input: &[u8], chunk: usize) -> Result<Vec<Vec<u8>>, ReplyError> {
        // A reader that hands out `chunk` bytes at a time.
        struct Chunked<'a>(&'a [u8], usize);
        impl std::io::Read for Chunked<'_> {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                let n = self.0.len().min(self.1).min(buf.len());
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let mut r = std::io::BufReader::with_capacity(chunk.max(1), Chunked(input, chunk));
        let mut out = Vec::new();
        loop {
            let mut buf = Vec::new();
            match read_response(&mut r, &mut buf) {
                Ok(()) => out.push(buf),
                Err(ReplyError::Closed) if buf.is_empty() => return Ok(out),
                Err(e) => return Err(e),
            }
        }
    }

    #[test]
    fn framing_follows_literals_in_any_chunking() {
        let wire = b"* 1 FETCH (BODY[] {5}\r\nab\r\nc UID 7)\r\n* 2 EXISTS\r\na1 OK done\r\n";
        for chunk in [1, 2, 3, 7, 64, 512] {
            let r = read_all(wire, chunk).unwrap();
            assert_eq!(r.len(), 3, "chunk {chunk}");
            assert_eq!(
                p(&r[0]),
                Response::Data {
                    number: Some(1),
                    name: "FETCH".into(),
                    values: vec![Value::List(vec![
                        Value::Atom(b"BODY[]".to_vec()),
                        Value::Str(b"ab\r\nc".to_vec()),
                        Value::Atom(b"UID".to_vec()),
                        Value::Atom(b"7".to_vec()),
                    ])],
                }
            );
        }
    }

    #[test]
    fn status_responses_with_codes() {
        assert_eq!(
            p(b"a2 OK [APPENDUID 38505 3955] APPEND completed\r\n"),
            Response::Status {
                tag: Some(b"a2".to_vec()),
                status: Status::Ok,
                code: Some((
                    "APPENDUID".into(),
                    vec![
                        Value::Atom(b"38505".to_vec()),
                        Value::Atom(b"3955".to_vec())
                    ]
                )),
                text: "APPEND completed".into(),
            }
        );
        match p(b"* OK [PERMANENTFLAGS (\\Seen \\*)] Limited\r\n") {
            Response::Status {
                code: Some((c, v)), ..
            } => {
                assert_eq!(c, "PERMANENTFLAGS");
                assert_eq!(
                    v,
                    vec![Value::List(vec![
                        Value::Atom(b"\\Seen".to_vec()),
                        Value::Atom(b"\\*".to_vec())
                    ])]
                );
            }
            other => panic!("{other:?}"),
        }
        match p(b"* OK [READ-WRITE] ok\r\n") {
            Response::Status {
                code: Some((c, v)), ..
            } => {
                assert_eq!(c, "READ-WRITE");
                assert!(v.is_empty());
            }
            other => panic!("{other:?}"),
        }
        // An unreadable code stays text.
        match p(b"* NO [ALERT (unbalanced] text\r\n") {
            Response::Status { code, text, .. } => {
                assert!(code.is_none());
                assert!(text.starts_with("[ALERT"));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            p(b"+ \r\n"),
            Response::Continue(t) if t.is_empty()
        ));
        assert!(matches!(
            p(b"* BYE going away\r\n"),
            Response::Status {
                status: Status::Bye,
                tag: None,
                ..
            }
        ));
    }

    #[test]
    fn data_with_sections_quotes_and_nil() {
        let r = p(b"* 3 FETCH (UID 9 BODY[HEADER.FIELDS (X-PRIORITY IMPORTANCE)] {3}\r\nx\r\n BODY[1.2]<0> \"a\\\"b\\\\\" X NIL)\r\n");
        let Response::Data { values, .. } = r else {
            panic!()
        };
        let l = values[0].list().unwrap();
        assert_eq!(
            l[2],
            Value::Atom(b"BODY[HEADER.FIELDS (X-PRIORITY IMPORTANCE)]".to_vec())
        );
        assert_eq!(l[3], Value::Str(b"x\r\n".to_vec()));
        assert_eq!(l[4], Value::Atom(b"BODY[1.2]<0>".to_vec()));
        assert_eq!(l[5], Value::Str(b"a\"b\\".to_vec()));
        assert_eq!(l[7], Value::Nil);
        let r = p(b"* LIST (\\HasNoChildren \\Subscribed) \"/\" \"&UXZO1mWHTvZZOQ-\"\r\n");
        let Response::Data { name, values, .. } = r else {
            panic!()
        };
        assert_eq!(name, "LIST");
        assert_eq!(values.len(), 3);
        // `[` with no `]` is an atom character (RFC 9051 ATOM-CHAR).
        let r = p(b"* LIST () \".\" a[b\r\n");
        let Response::Data { values, .. } = r else {
            panic!()
        };
        assert_eq!(values[2], Value::Atom(b"a[b".to_vec()));
        let brackets = [
            b"* LIST () \".\" ".to_vec(),
            vec![b'['; 4 << 20],
            b"\r\n".to_vec(),
        ]
        .concat();
        let started = std::time::Instant::now();
        assert!(parse(&brackets).is_ok());
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
        let r = p(b"* SEARCH 1 2 3 \r\n");
        let Response::Data { values, .. } = r else {
            panic!()
        };
        assert_eq!(values.len(), 3);
        let r = p(b"* 2 FETCH (BINARY[] ~{3}\r\na\0b)\r\n");
        let Response::Data { values, .. } = r else {
            panic!()
        };
        assert_eq!(values[0].list().unwrap()[1], Value::Str(b"a\0b".to_vec()));
        let r = p(b"* CAPABILITY IMAP4rev1 AUTH=PLAIN LITERAL+\r\n");
        let Response::Data { values, .. } = r else {
            panic!()
        };
        assert_eq!(values.len(), 3);
    }

    #[test]
    fn hostile_inputs_are_errors_not_panics() {
        let bad: &[&[u8]] = &[
            b"",
            b"\r\n",
            b"*\r\n",
            b"* \r\n",
            b"* 1 FETCH (UID 1\r\n",
            b"* 1 FETCH (UID 1))\r\n",
            b"* 1 FETCH ((((\r\n",
            b"* 1 FETCH )\r\n",
            b"* 1 FETCH (BODY[] {99999999999}\r\n)\r\n",
            b"* 1 FETCH (BODY[] {5}\r\nab)\r\n",
            b"* 1 FETCH (BODY[] {}\r\n)\r\n",
            b"* 1 FETCH (BODY[1 {5}\r\n",
            b"* LIST () \"/\" \"a\0b\"\r\n",
            b"* LIST () \"/\" \"ab\r\n",
            b"* LIST () \"/\" \"a\\b\"\r\n",
            b"* 99999999999 EXISTS\r\n",
            b"a1 FETCH (x)\r\n",
            b"* 1 FETCH (BODY[]<1x> NIL)\r\n",
            b"* 1 FETCH (UID 1)",
            b"* 1 FETCH (UID 1)\r\nextra",
            b"\0\0\0",
        ];
        for b in bad {
            assert!(parse(b).is_err(), "{:?}", String::from_utf8_lossy(b));
        }
        let deep = [b"* X ".to_vec(), vec![b'('; 10_000], b"\r\n".to_vec()].concat();
        assert!(parse(&deep).is_err());
        let many = [
            b"* SEARCH".to_vec(),
            b" 1".repeat(MAX_VALUES + 1),
            b"\r\n".to_vec(),
        ]
        .concat();
        assert!(parse(&many).is_err());
        let enough = [
            b"* SEARCH".to_vec(),
            b" 1".repeat(MAX_VALUES),
            b"\r\n".to_vec(),
        ]
        .concat();
        assert!(parse(&enough).is_ok());
    }

    #[test]
    fn framing_caps_lines_and_literals() {
        let huge = b"* 1 FETCH (BODY[] {99999999999}\r\n";
        assert!(matches!(read_all(huge, 64), Err(ReplyError::Syntax(_))));
        let big = format!("* 1 FETCH (BODY[] {{{}}}\r\n", MAX_LITERAL + 1);
        assert!(matches!(
            read_all(big.as_bytes(), 64),
            Err(ReplyError::Syntax(_))
        ));
        let long = vec![b'a'; MAX_LINE + 10];
        assert!(matches!(read_all(&long, 4096), Err(ReplyError::Syntax(_))));
        // Truncated: the literal never comes.
        assert!(matches!(
            read_all(b"* 1 FETCH (BODY[] {10}\r\nabc", 3),
            Err(ReplyError::Closed)
        ));
        assert!(matches!(
            read_all(b"* 1 EXISTS", 3),
            Err(ReplyError::Closed)
        ));
    }
}
