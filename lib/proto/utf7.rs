//! Modified UTF-7 for IMAP mailbox names (RFC 3501 section 5.1.3).
//!
//! "Printable US-ASCII characters, except for "&", represent themselves";
//! "&" is written "&-"; any other run of characters is written as "&", the
//! modified BASE64 (`,` instead of `/`, no padding) of its UTF-16BE form, and
//! "-". Our own codec, because a mailbox name is hostile input: [`decode`]
//! rejects everything that is not the one canonical spelling of some name
//! (bytes outside 0x20–0x7e, an unterminated or empty shift, non-zero pad
//! bits, unpaired surrogates, printable ASCII or adjacent shifts that should
//! not have been encoded), and never panics. Pure code: no I/O.

use std::fmt;

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

/// Why a modified UTF-7 name was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Utf7Error {
    /// A byte outside printable US-ASCII, at this offset.
    BadByte(usize),
    /// A shift sequence that is not terminated by `-`, or holds a byte that
    /// is not modified BASE64, starting at this offset.
    BadShift(usize),
    /// The encoded text is not valid UTF-16 or not the canonical encoding.
    NotCanonical(usize),
}

impl fmt::Display for Utf7Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Utf7Error::BadByte(i) => write!(f, "invalid byte at offset {i} in mailbox name"),
            Utf7Error::BadShift(i) => {
                write!(f, "invalid modified BASE64 at offset {i} in mailbox name")
            }
            Utf7Error::NotCanonical(i) => write!(f, "non-canonical modified UTF-7 at offset {i}"),
        }
    }
}

impl std::error::Error for Utf7Error {}

/// Encodes a UTF-8 mailbox name in modified UTF-7.
pub fn encode(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut run: Vec<u16> = Vec::new();
    for c in name.chars() {
        if (' '..='~').contains(&c) {
            flush(&mut run, &mut out);
            if c == '&' {
                out.push_str("&-");
            } else {
                out.push(c);
            }
        } else {
            let mut buf = [0u16; 2];
            run.extend_from_slice(c.encode_utf16(&mut buf));
        }
    }
    flush(&mut run, &mut out);
    out
}

fn flush(run: &mut Vec<u16>, out: &mut String) {
    if run.is_empty() {
        return;
    }
    out.push('&');
    let bytes: Vec<u8> = run.iter().flat_map(|u| u.to_be_bytes()).collect();
    for chunk in bytes.chunks(3) {
        let n = chunk.len();
        let v = (u32::from(chunk[0]) << 16)
            | (u32::from(*chunk.get(1).unwrap_or(&0)) << 8)
            | u32::from(*chunk.get(2).unwrap_or(&0));
        for i in 0..=n {
            out.push(B64[((v >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out.push('-');
    run.clear();
}

/// Decodes a modified UTF-7 mailbox name, accepting only canonical input.
pub fn decode(s: &str) -> Result<String, Utf7Error> {
    let b = s.as_bytes();
    let mut out = String::with_capacity(b.len());
    let mut i = 0;
    let mut last_shift_end: Option<usize> = None;
    while i < b.len() {
        let c = b[i];
        if !(0x20..=0x7e).contains(&c) {
            return Err(Utf7Error::BadByte(i));
        }
        if c != b'&' {
            out.push(c as char);
            i += 1;
            continue;
        }
        let start = i;
        let end = b[i + 1..]
            .iter()
            .position(|x| *x == b'-')
            .map(|p| i + 1 + p)
            .ok_or(Utf7Error::BadShift(start))?;
        if end == i + 1 {
            out.push('&');
            i = end + 1;
            continue;
        }
        if last_shift_end == Some(start) {
            // "&AAA-&BBB-" should have been one shift.
            return Err(Utf7Error::NotCanonical(start));
        }
        decode_run(&b[i + 1..end], start, &mut out)?;
        i = end + 1;
        last_shift_end = Some(i);
    }
    Ok(out)
}

/// Decodes one BASE64 run (between `&` and `-`) into `out`.
fn decode_run(run: &[u8], at: usize, out: &mut String) -> Result<(), Utf7Error> {
    let mut bits: u32 = 0;
    let mut nbits = 0u32;
    let mut units: Vec<u16> = Vec::with_capacity(run.len() * 6 / 16);
    let mut pending: Option<u8> = None;
    for &c in run {
        let v = B64
            .iter()
            .position(|x| *x == c)
            .ok_or(Utf7Error::BadShift(at))? as u32;
        bits = (bits << 6) | v;
        nbits += 6;
        if nbits >= 8 {
            nbits -= 8;
            let byte = ((bits >> nbits) & 0xff) as u8;
            bits &= (1 << nbits) - 1;
            match pending.take() {
                None => pending = Some(byte),
                Some(hi) => units.push(u16::from_be_bytes([hi, byte])),
            }
        }
    }
    // Leftover: fewer than 6 bits, all zero, and no half UTF-16 unit.
    if nbits >= 6 || bits != 0 || pending.is_some() {
        return Err(Utf7Error::NotCanonical(at));
    }
    for ch in char::decode_utf16(units.iter().copied()) {
        let ch = ch.map_err(|_| Utf7Error::NotCanonical(at))?;
        if (' '..='~').contains(&ch) {
            // Printable ASCII must represent itself.
            return Err(Utf7Error::NotCanonical(at));
        }
        out.push(ch);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAIRS: &[(&str, &str)] = &[
        ("INBOX", "INBOX"),
        ("", ""),
        ("&", "&-"),
        ("A&B", "A&-B"),
        ("~peter/mail/台北/日本語", "~peter/mail/&U,BTFw-/&ZeVnLIqe-"),
        ("邮件", "&kK5O9g-"),
        ("已发送邮件", "&XfJT0ZABkK5O9g-"),
        ("草稿箱", "&g0l6P3ux-"),
        ("垃圾邮件.归档", "&V4NXPpCuTvY-.&X1JoYw-"),
        ("Entwürfe", "Entw&APw-rfe"),
        ("Ü", "&ANw-"),
        ("é&é", "&AOk-&-&AOk-"),
        ("😀", "&2D3eAA-"),
        ("a\u{7f}b", "a&AH8-b"),
        ("tab\there", "tab&AAk-here"),
    ];

    #[test]
    fn known_pairs_both_ways() {
        for (plain, enc) in PAIRS {
            assert_eq!(encode(plain), *enc, "encode {plain:?}");
            assert_eq!(decode(enc).as_deref(), Ok(*plain), "decode {enc:?}");
        }
    }

    #[test]
    fn hostile_input_is_refused_without_panic() {
        let bad = [
            "&",
            "&U,BTFw",
            "abc&",
            "&-&",
            "&AGE-",      // 'a' encoded: must be direct
            "&AOk-&AOk-", // two adjacent shifts
            "&AOl-",      // non-zero pad bits
            "&AO-",       // half a UTF-16 unit
            "&2D0-",      // unpaired high surrogate
            "&3gA-",      // lone low surrogate
            "&A/k-",      // '/' is not modified BASE64
            "&A=k-",
            "caf\u{e9}", // raw 8-bit
            "a\nb",
            "\0",
            "&&-",
            "&AOkA6QDp",
        ];
        for b in bad {
            assert!(decode(b).is_err(), "accepted {b:?}");
        }
    }

    #[test]
    fn round_trips_a_deterministic_spread_of_strings() {
        // A small LCG walks through ASCII, Latin, CJK, astral planes and '&'.
        let mut x: u64 = 0x2545F4914F6CDD1D;
        let pools: [(u32, u32); 6] = [
            (0x20, 0x7e),
            (0x80, 0x24f),
            (0x4e00, 0x9fff),
            (0x1f600, 0x1f64f),
            (0x26, 0x26),
            (0xe000, 0xf8ff),
        ];
        for _ in 0..2000 {
            let mut s = String::new();
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let len = (x >> 59) as usize;
            for _ in 0..len {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let (lo, hi) = pools[(x >> 61) as usize % pools.len()];
                let cp = lo + ((x >> 20) as u32 % (hi - lo + 1));
                if let Some(c) = char::from_u32(cp) {
                    s.push(c);
                }
            }
            let e = encode(&s);
            assert!(e.bytes().all(|b| (0x20..=0x7e).contains(&b)));
            assert_eq!(decode(&e).as_deref(), Ok(s.as_str()), "{e}");
        }
    }

    #[test]
    fn every_short_byte_string_is_safe() {
        // Exhaustive over a small alphabet: never panics, and whatever decodes
        // re-encodes to the same bytes (one spelling per name).
        let alphabet = b"&-A,+/a0\x7f\xff";
        let mut buf = Vec::new();
        for len in 0..=5u32 {
            for mut n in 0..alphabet.len().pow(len) {
                buf.clear();
                for _ in 0..len {
                    buf.push(alphabet[n % alphabet.len()]);
                    n /= alphabet.len();
                }
                let Ok(s) = std::str::from_utf8(&buf) else {
                    continue;
                };
                if let Ok(d) = decode(s) {
                    assert_eq!(encode(&d), s);
                }
            }
        }
    }
}
