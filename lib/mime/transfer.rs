//! Content-Transfer-Encodings (RFC 2045 6): the decoders shared by IMAP's
//! BINARY sections and the webmail's parts and encoded-words.

/// Base64 (RFC 2045 6.8): characters outside the alphabet are ignored, "="
/// ends the data, and bits left over at the end are dropped.
pub fn decode_base64(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len() / 4 * 3);
    let (mut acc, mut bits) = (0u32, 0u32);
    for &c in s {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => break,
            _ => continue,
        };
        acc = (acc << 6) | v as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}

/// Quoted-printable (RFC 2045 6.7): `=XY` is the octet, `=` at the end of a
/// line is a soft line break, and "any trailing white space on a line must
/// be deleted, as it will necessarily have been added by intermediate
/// transport agents" (rule 3). Line ends stay as they are; a `=` not followed
/// by two hex digits is kept, as 6.7 advises a robust decoder to do.
pub fn decode_qp(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    for line in s.split_inclusive(|b| *b == b'\n') {
        let (text, end): (&[u8], &[u8]) = match line.strip_suffix(b"\r\n") {
            Some(t) => (t, b"\r\n"),
            None => match line.strip_suffix(b"\n") {
                Some(t) => (t, b"\n"),
                None => (line, b""),
            },
        };
        let keep = text.len()
            - text
                .iter()
                .rev()
                .take_while(|b| matches!(b, b' ' | b'\t'))
                .count();
        let text = &text[..keep];
        let (text, soft) = match text.strip_suffix(b"=") {
            Some(t) => (t, true),
            None => (text, false),
        };
        let mut i = 0;
        while i < text.len() {
            let hex = |b: u8| (b as char).to_digit(16);
            if text[i] == b'=' {
                if let (Some(h), Some(l)) = (
                    text.get(i + 1).copied().and_then(hex),
                    text.get(i + 2).copied().and_then(hex),
                ) {
                    out.push((h * 16 + l) as u8);
                    i += 3;
                    continue;
                }
            }
            out.push(text[i]);
            i += 1;
        }
        if !soft {
            out.extend_from_slice(end);
        }
    }
    out
}
