//! Header fields written in raw 8-bit text, without RFC 2047: GB2312, GBK
//! or Big5 from old clients (and UTF-8 from new ones), as ENVELOPE, SORT
//! and SEARCH read them. The charset of such a field is the one lib/mime
//! detects for it ([`crate::mime::charset::undeclared`]), so kmp-imapd and
//! the webmail read the same text.
//!
//! What a client sees follows RFC 6855 3: UTF-8 only once it enabled
//! UTF8=ACCEPT; before that the decoded text goes as RFC 2047 UTF-8
//! encoded-words, which is the downgrade of RFC 6857 3.1.4. ASCII fields,
//! encoded-words included, are never touched (RFC 3501 7.4.2: the
//! envelope is not decoded).

use base64::Engine;
use mail_parser::Message;

/// The raw value of a field of a message's own header (the last one of
/// that name, as mail-parser's getters take), whatever its bytes: folding
/// kept, the name and colon left out.
pub fn raw_field<'m>(msg: &'m Message, name: &str) -> Option<&'m [u8]> {
    let h = msg
        .headers()
        .iter()
        .rev()
        .find(|h| h.name.as_str().eq_ignore_ascii_case(name))?;
    msg.raw_message
        .get(h.offset_start as usize..h.offset_end as usize)
}

/// A header block with the value of every field that is not valid UTF-8
/// (raw GB2312, GBK, Big5... from old clients) read in the charset
/// detected for it ([`crate::mime::charset::undeclared`], as the webmail
/// shows it) and written as UTF-8; everything else, RFC 2047
/// encoded-words and the structure of address lists included, stays as it
/// is. Decoding the whole value before it is parsed keeps a Big5 trail
/// byte that looks like `\` or `"` inside its character. Reading stops at
/// the blank line; None when no field needed it.
pub fn utf8_header(raw: &[u8]) -> Option<Vec<u8>> {
    let head = &raw[..header_end(raw)];
    if std::str::from_utf8(head).is_ok() {
        return None;
    }
    let mut out = Vec::with_capacity(head.len() + head.len() / 2);
    // One field: its first line and its continuation lines.
    let mut field: Vec<u8> = Vec::new();
    let flush = |field: &mut Vec<u8>, out: &mut Vec<u8>| {
        if std::str::from_utf8(field).is_err() {
            match field.iter().position(|b| *b == b':') {
                Some(c) => {
                    out.extend_from_slice(&field[..=c]);
                    let value = crate::mime::charset::undeclared(&field[c + 1..]);
                    out.extend_from_slice(value.as_bytes());
                }
                None => out.extend_from_slice(&field[..]),
            }
        } else {
            out.extend_from_slice(field);
        }
        field.clear();
    };
    for line in head.split_inclusive(|b| *b == b'\n') {
        if !line.first().is_some_and(|b| *b == b' ' || *b == b'\t') {
            flush(&mut field, &mut out);
        }
        field.extend_from_slice(line);
    }
    flush(&mut field, &mut out);
    Some(out)
}

/// Where the header block ends (after its blank line, CRLF or LF), or the
/// length when there is none.
fn header_end(raw: &[u8]) -> usize {
    let mut at = 0;
    for line in raw.split_inclusive(|b| *b == b'\n') {
        at += line.len();
        if line == b"\r\n" || line == b"\n" {
            return at;
        }
    }
    raw.len()
}

/// An nstring field of the ENVELOPE (Date, Subject, In-Reply-To,
/// Message-ID) from its raw bytes. ASCII as it is (RFC 3501 7.4.2: the
/// envelope is not decoded). Otherwise, once the client enabled
/// UTF8=ACCEPT (RFC 6855 3), UTF-8: raw UTF-8 as it is, a legacy charset
/// read as it is detected; before that a client must not see 8-bit text,
/// so the decoded value goes as RFC 2047 `=?UTF-8?B?...?=` words, the
/// downgrade of RFC 6857 3.1.4, lossless and 7-bit.
pub fn envelope_text(raw: &[u8], utf8: bool) -> Vec<u8> {
    if raw.is_ascii() {
        return raw.to_vec();
    }
    if utf8 {
        return crate::mime::charset::undeclared(raw).into_bytes();
    }
    encoded_words(&crate::mime::header_text(raw)).into_bytes()
}

/// `text` as RFC 2047 B encoded-words in UTF-8, each at most 75
/// characters (RFC 2047 2) and never splitting a character, separated by
/// a space (which a reader drops between adjacent encoded-words, RFC 2047
/// 6.2).
pub fn encoded_words(text: &str) -> String {
    // 45 bytes are 60 base64 characters: with "=?UTF-8?B?" and "?=", 72.
    const CHUNK: usize = 45;
    let mut out = String::new();
    let mut start = 0;
    while start < text.len() {
        let mut end = (start + CHUNK).min(text.len());
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str("=?UTF-8?B?");
        out.push_str(&base64::engine::general_purpose::STANDARD.encode(&text[start..end]));
        out.push_str("?=");
        start = end;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoded_words_stay_short_and_whole() {
        let s = "关于下周项目会议的安排通知".repeat(4);
        let e = encoded_words(&s);
        assert!(e.split(' ').all(|w| w.len() <= 75));
        assert_eq!(crate::mime::header_text(e.as_bytes()), s);
        assert_eq!(encoded_words(""), "");
    }

    #[test]
    fn only_fields_that_are_not_utf8_are_rewritten() {
        let mut h = b"Subject: ".to_vec();
        h.extend_from_slice(&encoding_rs::GBK.encode("会议通知").0);
        h.extend_from_slice(
            b"\r\n =?gb2312?b?u+E=?=\r\nTo: \xe7\x8e\x8b <w@x>\r\n\r\nbody \xff\r\n",
        );
        let out = utf8_header(&h).unwrap();
        assert_eq!(
            out,
            "Subject: 会议通知\r\n =?gb2312?b?u+E=?=\r\nTo: 王 <w@x>\r\n\r\n".as_bytes()
        );
        assert_eq!(utf8_header("Subject: 会议\r\n\r\n\u{ff}".as_bytes()), None);
    }
}
