//! The header work of the checks, on a message in the queue's LF form:
//! removing Authentication-Results headers that claim our authserv-id
//! (RFC 8601 5: "a border MTA MUST ... delete any discovered instance of
//! this header field that claims, by virtue of its authentication service
//! identifier, to have been added within its trust boundary") and any
//! incoming `X-Kmpromail-Junk` (kmp-local trusts that header only because
//! we remove it here and add our own), and the CRLF form mail-auth reads.
//! Pure: no I/O.

/// The header kmp-local files into Junk by; only kmp-smtpd may set it.
pub const JUNK_HEADER: &str = "X-Kmpromail-Junk";

/// The length of the header section of `msg`, up to and including the
/// empty line (all of `msg` when there is none).
pub fn header_len(msg: &[u8]) -> usize {
    if msg.starts_with(b"\n") {
        return 1;
    }
    match msg.windows(2).position(|w| w == b"\n\n") {
        Some(i) => i + 2,
        None => msg.len(),
    }
}

/// The header fields of `header` as byte ranges, each with its
/// continuation lines and final LF. Lines before the first field (there
/// should be none) count as fields of their own.
pub fn fields(header: &[u8]) -> Vec<std::ops::Range<usize>> {
    let mut out: Vec<std::ops::Range<usize>> = Vec::new();
    let mut start = 0;
    while start < header.len() {
        let end = header[start..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(header.len(), |i| start + i + 1);
        let line = &header[start..end];
        if line == b"\n" {
            break;
        }
        let folded = matches!(line.first(), Some(b' ' | b'\t'));
        match out.last_mut() {
            Some(last) if folded => last.end = end,
            _ => out.push(start..end),
        }
        start = end;
    }
    out
}

/// The field's name and value (after the colon), if it has a colon.
pub fn split_field(field: &[u8]) -> Option<(&[u8], &[u8])> {
    let colon = field.iter().position(|&b| b == b':')?;
    Some((&field[..colon], &field[colon + 1..]))
}

/// The authserv-id an Authentication-Results value names (RFC 8601 2.2:
/// `[CFWS] authserv-id`, a token or a quoted-string), lower-cased.
pub fn authserv_id(value: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(value);
    let mut chars = text.chars().peekable();
    // Skip white space and comments, which may nest (RFC 5322 3.2.2).
    loop {
        match chars.peek() {
            Some(c) if c.is_whitespace() => {
                chars.next();
            }
            Some('(') => {
                let mut depth = 0;
                for c in chars.by_ref() {
                    match c {
                        '(' => depth += 1,
                        ')' => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                        }
                        _ => {}
                    }
                }
            }
            _ => break,
        }
    }
    let mut id = String::new();
    if chars.peek() == Some(&'"') {
        chars.next();
        while let Some(c) = chars.next() {
            match c {
                '"' => break,
                '\\' => id.extend(chars.next()),
                c => id.push(c),
            }
        }
    } else {
        id = chars
            .take_while(|c| !c.is_whitespace() && *c != ';' && *c != '(')
            .collect();
    }
    (!id.is_empty()).then(|| id.to_lowercase())
}

/// `msg` without the header fields only we may write: Authentication-Results
/// naming `authserv_id` and any `X-Kmpromail-Junk`. Returns the message and
/// how many fields went.
pub fn strip_ours(msg: &[u8], authserv_id_ours: &str) -> (Vec<u8>, usize) {
    let hlen = header_len(msg);
    let ours = authserv_id_ours.to_lowercase();
    let mut out = Vec::with_capacity(msg.len());
    let mut removed = 0;
    let mut kept_to = 0;
    for r in fields(&msg[..hlen]) {
        let drop = match split_field(&msg[r.clone()]) {
            Some((name, value)) => {
                let name = String::from_utf8_lossy(name);
                let name = name.trim();
                (name.eq_ignore_ascii_case("Authentication-Results")
                    && authserv_id(value).as_deref() == Some(ours.as_str()))
                    || name.eq_ignore_ascii_case(JUNK_HEADER)
            }
            None => false,
        };
        if drop {
            out.extend_from_slice(&msg[kept_to..r.start]);
            kept_to = r.end;
            removed += 1;
        }
    }
    out.extend_from_slice(&msg[kept_to..]);
    (out, removed)
}

/// `lf` with every LF made CRLF (the queue's form has no CR: a bare CR is
/// refused at the door), as DKIM hashes the wire form.
pub fn crlf(lf: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(lf.len() + lf.len() / 32 + 2);
    for &b in lf {
        if b == b'\n' {
            out.push(b'\r');
        }
        out.push(b);
    }
    out
}

/// A header made by mail-auth (CRLF line ends) in the queue's LF form.
pub fn to_lf(header: &str) -> String {
    header.replace("\r\n", "\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authserv_ids_are_read_past_comments_and_quotes() {
        assert_eq!(
            authserv_id(b" mx.example.org; spf=pass").as_deref(),
            Some("mx.example.org")
        );
        assert_eq!(
            authserv_id(b" (c (nested)) MX.Example.ORG 1; none").as_deref(),
            Some("mx.example.org")
        );
        assert_eq!(
            authserv_id(b" \"mx.example.org\"; none").as_deref(),
            Some("mx.example.org")
        );
        assert_eq!(
            authserv_id(b"\n\tmx.example.org;\n\tdkim=pass").as_deref(),
            Some("mx.example.org")
        );
        assert_eq!(authserv_id(b"   "), None);
    }

    #[test]
    fn only_our_results_and_the_junk_mark_are_removed() {
        let msg = b"Received: from x\n\tby y\nAuthentication-Results: mx.example.org;\n\tdkim=pass header.d=bank.test\nAuthentication-Results: other.test; spf=pass\nauthentication-results: (forged) MX.EXAMPLE.ORG; dmarc=pass\nX-Kmpromail-Junk: no\nSubject: hi\n\nAuthentication-Results: mx.example.org; body, not header\n";
        let (out, n) = strip_ours(msg, "mx.example.org");
        assert_eq!(n, 3);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "Received: from x\n\tby y\nAuthentication-Results: other.test; spf=pass\nSubject: hi\n\nAuthentication-Results: mx.example.org; body, not header\n"
        );
        // A message without a body, or without an empty line, loses nothing else.
        let (out, n) = strip_ours(
            b"Subject: a\nAuthentication-Results: mx.example.org; x",
            "mx.example.org",
        );
        assert_eq!((out.as_slice(), n), (&b"Subject: a\n"[..], 1));
        assert_eq!(header_len(b"\nbody"), 1);
    }

    #[test]
    fn line_ends_convert_both_ways() {
        assert_eq!(crlf(b"a\nb\n"), b"a\r\nb\r\n");
        assert_eq!(to_lf("A: b;\r\n\tc\r\n"), "A: b;\n\tc\n");
    }
}
