//! Sieve's lexical layer (RFC 5228 8.1): identifiers, tags, numbers with
//! K/M/G, quoted strings, `text:` multi-line strings with dot-stuffing,
//! `#` and bracket comments. Every token carries its line and column.

use super::CompileError;

/// Longest string literal, in bytes.
pub const MAX_STRING: usize = 1 << 20;

/// Where a token starts: 1-based line and column (in characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pos {
    pub line: u32,
    pub column: u32,
}

impl Pos {
    pub fn error(self, message: impl Into<String>) -> CompileError {
        CompileError {
            line: self.line,
            column: self.column,
            message: message.into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tok {
    Ident(String),
    Tag(String),
    Number(u64),
    /// A string; `true` when it was a `text:` multi-line one.
    Str(String, bool),
    LBracket,
    RBracket,
    LParen,
    RParen,
    LBrace,
    RBrace,
    Comma,
    Semicolon,
    Eof,
}

impl Tok {
    pub fn describe(&self) -> String {
        match self {
            Tok::Ident(s) => format!("identifier \"{s}\""),
            Tok::Tag(s) => format!("tag \":{s}\""),
            Tok::Number(n) => format!("number {n}"),
            Tok::Str(..) => "string".into(),
            Tok::LBracket => "\"[\"".into(),
            Tok::RBracket => "\"]\"".into(),
            Tok::LParen => "\"(\"".into(),
            Tok::RParen => "\")\"".into(),
            Tok::LBrace => "\"{\"".into(),
            Tok::RBrace => "\"}\"".into(),
            Tok::Comma => "\",\"".into(),
            Tok::Semicolon => "\";\"".into(),
            Tok::Eof => "end of script".into(),
        }
    }
}

pub struct Lexer<'a> {
    src: &'a [u8],
    i: usize,
    line: u32,
    col: u32,
    end: Pos,
}

impl<'a> Lexer<'a> {
    pub fn new(src: &'a str) -> Lexer<'a> {
        Lexer {
            src: src.as_bytes(),
            i: 0,
            line: 1,
            col: 1,
            end: Pos { line: 1, column: 1 },
        }
    }

    fn pos(&self) -> Pos {
        Pos {
            line: self.line,
            column: self.col,
        }
    }

    fn peek(&self) -> Option<u8> {
        self.src.get(self.i).copied()
    }

    fn bump(&mut self) -> Option<u8> {
        let c = self.peek()?;
        self.i += 1;
        if c == b'\n' {
            self.line += 1;
            self.col = 1;
        } else if c & 0xC0 != 0x80 {
            // Columns count characters: continuation bytes do not advance.
            self.col += 1;
        }
        Some(c)
    }

    /// The next token and where it starts.
    pub fn next(&mut self) -> Result<(Tok, Pos), CompileError> {
        let t = self.token()?;
        self.end = self.pos();
        Ok(t)
    }

    fn token(&mut self) -> Result<(Tok, Pos), CompileError> {
        self.skip_space()?;
        let pos = self.pos();
        let Some(c) = self.peek() else {
            return Ok((Tok::Eof, pos));
        };
        let single = match c {
            b'[' => Some(Tok::LBracket),
            b']' => Some(Tok::RBracket),
            b'(' => Some(Tok::LParen),
            b')' => Some(Tok::RParen),
            b'{' => Some(Tok::LBrace),
            b'}' => Some(Tok::RBrace),
            b',' => Some(Tok::Comma),
            b';' => Some(Tok::Semicolon),
            _ => None,
        };
        if let Some(t) = single {
            self.bump();
            return Ok((t, pos));
        }
        if c == b'"' {
            self.bump();
            return Ok((Tok::Str(self.quoted(pos)?, false), pos));
        }
        if c == b':' {
            self.bump();
            let name = self.ident();
            if name.is_empty() {
                return Err(pos.error("expected a tag name after \":\""));
            }
            return Ok((Tok::Tag(name.to_ascii_lowercase()), pos));
        }
        if c.is_ascii_digit() {
            return Ok((Tok::Number(self.number(pos)?), pos));
        }
        if c.is_ascii_alphabetic() || c == b'_' {
            let name = self.ident().to_ascii_lowercase();
            if name == "text" && self.peek() == Some(b':') {
                self.bump();
                return Ok((Tok::Str(self.multiline(pos)?, true), pos));
            }
            return Ok((Tok::Ident(name), pos));
        }
        let ch = std::str::from_utf8(&self.src[self.i..])
            .ok()
            .and_then(|s| s.chars().next())
            .unwrap_or('?');
        Err(pos.error(format!("unexpected character \"{}\"", ch.escape_default())))
    }

    /// The end of the script inside a comment or string: reported where
    /// the script ends (as Pigeonhole does), naming where it started.
    fn at_end(&self, what: &str, start: Pos) -> CompileError {
        self.pos().error(format!(
            "end of script before the end of the {what} started at line {}, column {}",
            start.line, start.column
        ))
    }

    /// Where the last token read ends.
    pub fn end(&self) -> Pos {
        self.end
    }

    fn skip_space(&mut self) -> Result<(), CompileError> {
        loop {
            match self.peek() {
                Some(b' ' | b'\t' | b'\r' | b'\n') => {
                    self.bump();
                }
                Some(b'#') => {
                    while let Some(c) = self.bump() {
                        if c == b'\n' {
                            break;
                        }
                    }
                }
                Some(b'/') if self.src.get(self.i + 1) == Some(&b'*') => {
                    let pos = self.pos();
                    self.bump();
                    self.bump();
                    loop {
                        match self.bump() {
                            None => return Err(self.at_end("comment", pos)),
                            Some(b'*') if self.peek() == Some(b'/') => {
                                self.bump();
                                break;
                            }
                            Some(_) => {}
                        }
                    }
                }
                _ => return Ok(()),
            }
        }
    }

    fn ident(&mut self) -> String {
        let start = self.i;
        if matches!(self.peek(), Some(c) if c.is_ascii_alphabetic() || c == b'_') {
            while matches!(self.peek(), Some(c) if c.is_ascii_alphanumeric() || c == b'_') {
                self.bump();
            }
        }
        String::from_utf8_lossy(&self.src[start..self.i]).into_owned()
    }

    fn number(&mut self, pos: Pos) -> Result<u64, CompileError> {
        let mut n: u64 = 0;
        while let Some(c @ b'0'..=b'9') = self.peek() {
            self.bump();
            n = n
                .checked_mul(10)
                .and_then(|n| n.checked_add(u64::from(c - b'0')))
                .ok_or_else(|| pos.error("number too large"))?;
        }
        let shift = match self.peek() {
            Some(b'k' | b'K') => 10,
            Some(b'm' | b'M') => 20,
            Some(b'g' | b'G') => 30,
            _ => 0,
        };
        if shift > 0 {
            self.bump();
            n = n
                .checked_mul(1 << shift)
                .ok_or_else(|| pos.error("number too large"))?;
        }
        // Sieve numbers are 32-bit unsigned in practice (Pigeonhole and
        // RFC 5231's comparisons); larger ones are refused, not wrapped.
        if n > u64::from(u32::MAX) {
            return Err(pos.error("number too large"));
        }
        if matches!(self.peek(), Some(c) if c.is_ascii_alphabetic() || c == b'_') {
            return Err(self.pos().error("unexpected character after number"));
        }
        Ok(n)
    }

    fn quoted(&mut self, pos: Pos) -> Result<String, CompileError> {
        let mut out = Vec::new();
        loop {
            match self.bump() {
                None => return Err(self.at_end("quoted string", pos)),
                Some(b'"') => break,
                Some(b'\\') => match self.bump() {
                    None => return Err(self.at_end("quoted string", pos)),
                    // RFC 5228 2.4.2: "\" followed by any character is
                    // that character.
                    Some(c) => out.push(c),
                },
                Some(c) => out.push(c),
            }
            if out.len() > MAX_STRING {
                return Err(pos.error("string too long"));
            }
        }
        String::from_utf8(out).map_err(|_| pos.error("string is not valid UTF-8"))
    }

    fn multiline(&mut self, pos: Pos) -> Result<String, CompileError> {
        // "text:" *(SP / HTAB) (hash-comment / CRLF)
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.bump();
        }
        match self.peek() {
            Some(b'#') => {
                while let Some(c) = self.bump() {
                    if c == b'\n' {
                        break;
                    }
                }
            }
            Some(b'\r') if self.src.get(self.i + 1) == Some(&b'\n') => {
                self.bump();
                self.bump();
            }
            Some(b'\n') => {
                self.bump();
            }
            _ => return Err(self.pos().error("expected end of line after \"text:\"")),
        }
        let mut out = Vec::new();
        loop {
            if self.peek().is_none() {
                return Err(self.at_end("multi-line string", pos));
            }
            let start = self.i;
            while let Some(c) = self.bump() {
                if c == b'\n' {
                    break;
                }
            }
            let mut line = &self.src[start..self.i];
            let ended = line.ends_with(b"\n");
            let mut bare = line.strip_suffix(b"\n").unwrap_or(line);
            bare = bare.strip_suffix(b"\r").unwrap_or(bare);
            if bare == b"." && ended {
                break;
            }
            if bare == b"." && !ended {
                return Err(self.at_end("multi-line string", pos));
            }
            if line.starts_with(b"..") {
                line = &line[1..];
            }
            out.extend_from_slice(line);
            if !ended {
                return Err(self.at_end("multi-line string", pos));
            }
            if out.len() > MAX_STRING {
                return Err(pos.error("string too long"));
            }
        }
        // Line ends inside are CRLF as in a message (Pigeonhole does so).
        let text = String::from_utf8(out).map_err(|_| pos.error("string is not valid UTF-8"))?;
        Ok(crlf(&text))
    }
}

fn crlf(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 16);
    let mut prev = '\0';
    for c in s.chars() {
        if c == '\n' && prev != '\r' {
            out.push('\r');
        }
        out.push(c);
        prev = c;
    }
    out
}
