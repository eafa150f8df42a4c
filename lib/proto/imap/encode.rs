//! What a server writes that needs care: strings as atoms, quoted strings or
//! literals (RFC 3501 4.3), and dates.

use super::types::civil_from_days;

/// Appends `s` as a quoted string when that is safe, else as a literal.
pub fn string(out: &mut Vec<u8>, s: &[u8]) {
    let quotable = s.len() < 1024 && s.iter().all(|b| *b >= 0x20 && *b != 0x7f && *b < 0x80);
    if quotable {
        out.push(b'"');
        for b in s {
            if *b == b'"' || *b == b'\\' {
                out.push(b'\\');
            }
            out.push(*b);
        }
        out.push(b'"');
    } else {
        literal(out, s);
    }
}

/// Appends `s` as a quoted string or literal, or NIL for None.
pub fn nstring(out: &mut Vec<u8>, s: Option<&[u8]>) {
    match s {
        Some(s) => string(out, s),
        None => out.extend_from_slice(b"NIL"),
    }
}

/// Appends `{n}\r\n` and the bytes, a NUL among them sent as 0x80.
///
/// A literal holds CHAR8, "any OCTET except NUL" (RFC 3501 and RFC 9051
/// section 9), and "unencoded binary strings are not permitted, unless
/// returned in a <literal8> in response to a BINARY.PEEK[...] or BINARY[...]
/// FETCH data item. A "binary string" is any string with NUL characters"
/// (RFC 9051 4.3.1; RFC 3501 4.3.1 says the same). Content is never decoded
/// for a literal, so a NUL can only come from stored content (a binary part
/// APPENDed by a client); it is replaced one for one, so that sizes
/// (RFC822.SIZE, BODYSTRUCTURE) and partial offsets stay true. BINARY gives
/// the exact bytes, through [`literal8`].
pub fn literal(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(format!("{{{}}}\r\n", s.len()).as_bytes());
    let start = out.len();
    out.extend_from_slice(s);
    for b in &mut out[start..] {
        if *b == 0 {
            *b = 0x80;
        }
    }
}

/// Appends `~{n}\r\n` and the bytes as they are (RFC 3516 literal8): only
/// for BINARY[...] FETCH data.
pub fn literal8(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(format!("~{{{}}}\r\n", s.len()).as_bytes());
    out.extend_from_slice(s);
}

/// Appends an astring: an atom when possible, otherwise quoted or literal.
pub fn astring(out: &mut Vec<u8>, s: &[u8]) {
    if !s.is_empty() && s.iter().all(|b| super::lexer::is_atom_char(*b)) && s != b"NIL" {
        out.extend_from_slice(s);
    } else {
        string(out, s);
    }
}

/// `"dd-Mon-yyyy hh:mm:ss +zzzz"` for a Unix time and a zone offset in minutes.
pub fn date_time(secs: i64, zone_minutes: i32) -> String {
    const M: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let local = secs + zone_minutes as i64 * 60;
    let (y, m, d) = civil_from_days(local.div_euclid(86_400));
    let t = local.rem_euclid(86_400);
    let z = zone_minutes.abs();
    format!(
        "\"{:02}-{}-{:04} {:02}:{:02}:{:02} {}{:02}{:02}\"",
        d,
        M[(m - 1) as usize],
        y,
        t / 3600,
        t / 60 % 60,
        t % 60,
        if zone_minutes < 0 { '-' } else { '+' },
        z / 60,
        z % 60
    )
}
