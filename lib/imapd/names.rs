//! Mailbox names on the wire and in the store.
//!
//! The hierarchy delimiter is `.` (see doc/ARCHITECTURE.md), as in Maildir++
//! folder names on disk (`.A.B`) and in Dovecot's default; `/` cannot be in a
//! name at all. A name on the wire is modified
//! UTF-7 (RFC 3501 5.1.3) unless the client enabled UTF-8 (RFC 9051 /
//! RFC 6855); inside the server it is UTF-8. Names that could escape the
//! Maildir or confuse it are refused here, before the store sees them.

/// The hierarchy delimiter.
pub const DELIMITER: char = '.';

/// Longest mailbox name, in bytes of UTF-8.
pub const MAX_NAME: usize = 512;

/// Decodes and checks a mailbox argument. `INBOX` in any case is `INBOX`.
pub fn decode(arg: &[u8], utf8: bool) -> Result<String, &'static str> {
    let name = if utf8 {
        match std::str::from_utf8(arg) {
            Ok(s) => s.to_string(),
            Err(_) => return Err("Mailbox name is not valid UTF-8"),
        }
    } else {
        utf7_decode(arg).ok_or("Mailbox name is not valid modified UTF-7")?
    };
    check(&name)?;
    Ok(normalize(&name))
}

/// Decodes a LIST pattern (wildcards allowed, not checked as a name).
pub fn decode_pattern(arg: &[u8], utf8: bool) -> Option<String> {
    if utf8 {
        String::from_utf8(arg.to_vec()).ok()
    } else {
        utf7_decode(arg)
    }
}

/// The wire form of a stored name.
pub fn encode(name: &str, utf8: bool) -> Vec<u8> {
    if utf8 {
        name.as_bytes().to_vec()
    } else {
        utf7_encode(name).into_bytes()
    }
}

/// Appends a stored name as a response names a mailbox (the encoder's
/// rule, `proto::imap::response::mailbox`).
pub fn write(out: &mut Vec<u8>, name: &str, utf8: bool) {
    crate::proto::imap::response::mailbox(out, name, crate::proto::imap::response::Wire { utf8 });
}

/// `INBOX` (any case) as the first level becomes `INBOX`; a trailing
/// delimiter is dropped.
pub fn normalize(name: &str) -> String {
    let name = name.strip_suffix(DELIMITER).unwrap_or(name);
    let (first, rest) = match name.split_once(DELIMITER) {
        Some((f, r)) => (f, Some(r)),
        None => (name, None),
    };
    if first.eq_ignore_ascii_case("INBOX") {
        match rest {
            Some(r) => format!("INBOX{DELIMITER}{r}"),
            None => "INBOX".into(),
        }
    } else {
        name.to_string()
    }
}

/// Refuses names no store should see: empty levels, `.` and `..`, control
/// characters (NUL among them), wildcards, over-long names.
pub fn check(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("Empty mailbox name");
    }
    if name.len() > MAX_NAME {
        return Err("Mailbox name too long");
    }
    if name
        .chars()
        .any(|c| c.is_control() || c == '*' || c == '%' || c == '/')
    {
        return Err("Mailbox name has forbidden characters");
    }
    let name = name.strip_suffix(DELIMITER).unwrap_or(name);
    for level in name.split(DELIMITER) {
        if level.is_empty() {
            return Err("Mailbox name has an empty level");
        }
    }
    Ok(())
}

/// Whether `name` matches a LIST pattern (`*` anything, `%` anything but the
/// delimiter). INBOX matches case-insensitively.
pub fn matches(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    let inbox_like = |s: &[char]| {
        s.len() >= 5
            && s[..5]
                .iter()
                .collect::<String>()
                .eq_ignore_ascii_case("INBOX")
    };
    let (p, n) = if inbox_like(&p) && inbox_like(&n) {
        (p[5..].to_vec(), n[5..].to_vec())
    } else {
        (p, n)
    };
    // Iterative matcher with backtracking bounded by pattern size.
    fn go(p: &[char], n: &[char], budget: &mut u32) -> bool {
        *budget = budget.saturating_sub(1);
        if *budget == 0 {
            return false;
        }
        match p.first() {
            None => n.is_empty(),
            Some('*') => (0..=n.len()).any(|i| go(&p[1..], &n[i..], budget)),
            Some('%') => {
                let stop = n.iter().position(|c| *c == DELIMITER).unwrap_or(n.len());
                (0..=stop).any(|i| go(&p[1..], &n[i..], budget))
            }
            Some(c) => n.first() == Some(c) && go(&p[1..], &n[1..], budget),
        }
    }
    let mut budget = 100_000;
    go(&p, &n, &mut budget)
}

/// Modified UTF-7 to UTF-8; None for anything RFC 3501 5.1.3 does not allow
/// (the codec is the one the Maildir library names folders with).
pub fn utf7_decode(s: &[u8]) -> Option<String> {
    crate::proto::utf7::decode(std::str::from_utf8(s).ok()?).ok()
}

/// UTF-8 to modified UTF-7.
pub fn utf7_encode(s: &str) -> String {
    crate::proto::utf7::encode(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf7_round_trips() {
        for s in [
            "INBOX",
            "邮件",
            "A&B",
            "Entw&APw-rfe",
            "台北.日本語",
            "~peter/mail/台北",
        ] {
            let e = utf7_encode(s);
            assert_eq!(utf7_decode(e.as_bytes()).as_deref(), Some(s), "{e}");
        }
        assert_eq!(utf7_encode("台北"), "&U,BTFw-");
        assert_eq!(utf7_decode(b"&U,BTFw-").as_deref(), Some("台北"));
    }

    #[test]
    fn invalid_names_are_refused() {
        for bad in [
            &b"&Jjo"[..],
            b"&Jjo!-",
            b"&AGE-",
            b"a\x00b",
            b"\xe4\xb8\xad",
            b"&U,BTF2-",
        ] {
            assert!(decode(bad, false).is_err(), "{bad:?}");
        }
        for bad in [
            "..", "a/../b", "a..b", ".a", ".", "../x", "x*", "a\u{0}", "a/b",
        ] {
            assert!(decode(bad.as_bytes(), true).is_err(), "{bad}");
        }
        assert_eq!(decode(b"inbox", false).unwrap(), "INBOX");
        assert_eq!(decode(b"Inbox.x.", false).unwrap(), "INBOX.x");
    }

    #[test]
    fn patterns() {
        assert!(matches("*", "a.b"));
        assert!(!matches("%", "a.b"));
        assert!(matches("a.%", "a.b"));
        assert!(matches("inbox", "INBOX"));
        assert!(matches("I%", "INBOX"));
        assert!(!matches("%.x", "a"));
    }
}
