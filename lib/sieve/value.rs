//! Strings as a compiled script holds them: `${hex:..}` and
//! `${unicode:..}` decoded at compile time (encoded-character, RFC 5228
//! 2.4.2.4), and `${name}` / `${1}` references split out once when the
//! script requires variables (RFC 5229 3), so a run only concatenates.

/// A string argument, ready to expand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Str {
    Lit(String),
    Tmpl(Vec<Piece>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    Lit(String),
    /// A variable, by its lower-case name.
    Var(String),
    /// A match variable, `${0}`..`${9}`.
    Match(usize),
}

impl Str {
    /// The literal text, when the string has no variable in it.
    pub fn literal(&self) -> Option<&str> {
        match self {
            Str::Lit(s) => Some(s),
            Str::Tmpl(_) => None,
        }
    }
}

/// Is `s` a valid variable name (RFC 5229 3: identifier)?
pub fn is_identifier(s: &str) -> bool {
    let mut b = s.bytes();
    matches!(b.next(), Some(c) if c.is_ascii_alphabetic() || c == b'_')
        && b.all(|c| c.is_ascii_alphanumeric() || c == b'_')
}

/// Decodes encoded-character sequences (RFC 5228 2.4.2.4); a malformed
/// sequence is left as it is written, as the RFC requires.
pub fn decode_encoded(s: &str) -> String {
    if !s.contains("${") {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(at) = rest.find("${") {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        match encoded_seq(tail) {
            Some((text, used)) => {
                out.push_str(&text);
                rest = &tail[used..];
            }
            None => {
                out.push_str("${");
                rest = &tail[2..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// One `${hex:...}` or `${unicode:...}` at the start of `s`: its text and
/// length.
fn encoded_seq(s: &str) -> Option<(String, usize)> {
    let body = &s[2..];
    let close = body.find('}')?;
    let inner = &body[..close];
    let colon = inner.find(':')?;
    let kind = inner[..colon].trim_start().to_ascii_lowercase();
    let words: Vec<&str> = inner[colon + 1..]
        .split([' ', '\t', '\r', '\n'])
        .filter(|w| !w.is_empty())
        .collect();
    let text = match kind.as_str() {
        "hex" => {
            let mut bytes = Vec::new();
            for w in &words {
                if w.len() > 2 || !w.bytes().all(|c| c.is_ascii_hexdigit()) {
                    return None;
                }
                bytes.push(u8::from_str_radix(w, 16).ok()?);
            }
            String::from_utf8(bytes).ok()?
        }
        "unicode" => {
            let mut t = String::new();
            for w in &words {
                if w.len() > 8 || !w.bytes().all(|c| c.is_ascii_hexdigit()) {
                    return None;
                }
                t.push(char::from_u32(u32::from_str_radix(w, 16).ok()?)?);
            }
            t
        }
        _ => return None,
    };
    if inner[..colon].trim_start() != &inner[..colon] {
        return None;
    }
    Some((text, 2 + close + 1))
}

/// Splits `${...}` references out of a string (RFC 5229 3): `${name}`
/// (identifiers, case-insensitive) and `${N}` (match variables). Anything
/// else stays literal.
pub fn template(s: &str) -> Str {
    if !s.contains("${") {
        return Str::Lit(s.to_string());
    }
    let mut pieces = Vec::new();
    let mut lit = String::new();
    let mut rest = s;
    while let Some(at) = rest.find("${") {
        lit.push_str(&rest[..at]);
        let tail = &rest[at + 2..];
        let reference = tail.find('}').and_then(|close| {
            let name = &tail[..close];
            if !name.is_empty() && name.bytes().all(|c| c.is_ascii_digit()) {
                let n: usize = name.parse().ok()?;
                (n <= 9).then_some((Piece::Match(n), close))
            } else if is_identifier(name) {
                Some((Piece::Var(name.to_ascii_lowercase()), close))
            } else {
                None
            }
        });
        match reference {
            Some((piece, close)) => {
                if !lit.is_empty() {
                    pieces.push(Piece::Lit(std::mem::take(&mut lit)));
                }
                pieces.push(piece);
                rest = &tail[close + 1..];
            }
            None => {
                lit.push_str("${");
                rest = tail;
            }
        }
    }
    lit.push_str(rest);
    if pieces.is_empty() {
        return Str::Lit(lit);
    }
    if !lit.is_empty() {
        pieces.push(Piece::Lit(lit));
    }
    Str::Tmpl(pieces)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoded_character() {
        assert_eq!(decode_encoded("${hex:40}"), "@");
        assert_eq!(decode_encoded("a${hex: 4e 4F}b"), "aNOb");
        assert_eq!(decode_encoded("${unicode:4E2D 6587}"), "中文");
        assert_eq!(decode_encoded("${hex:zz}"), "${hex:zz}");
        assert_eq!(decode_encoded("${unicode:D800}"), "${unicode:D800}");
        assert_eq!(decode_encoded("${HEX:41}"), "A");
        assert_eq!(decode_encoded("$${hex:41}"), "$A");
    }

    #[test]
    fn templates() {
        assert_eq!(template("abc"), Str::Lit("abc".into()));
        assert_eq!(
            template("x${Foo}y${1}"),
            Str::Tmpl(vec![
                Piece::Lit("x".into()),
                Piece::Var("foo".into()),
                Piece::Lit("y".into()),
                Piece::Match(1)
            ])
        );
        assert_eq!(template("${a.b}"), Str::Lit("${a.b}".into()));
        assert_eq!(template("${}"), Str::Lit("${}".into()));
    }
}
