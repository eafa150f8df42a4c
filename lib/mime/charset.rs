//! Bytes in a declared charset to text (RFC 2045 5.1 `charset`, RFC 2047
//! encoded-words, RFC 2231 parameters all end here).
//!
//! Labels are looked up as the WHATWG Encoding Standard does (encoding_rs),
//! with the aliases mail adds on top (`cp936`, `x-euc-cn`, `cp950`,
//! `unicode-1-1-utf-7`, `hz`, ...). GB2312 and GBK are decoded as GB18030,
//! their superset: mail labelled GB2312 often carries GBK characters.
//! Big5 is decoded as Big5-HKSCS (encoding_rs's Big5). HZ-GB-2312 (RFC
//! 1842) and UTF-7 (RFC 2152) have small codecs here: encoding_rs maps HZ
//! to its "replacement" encoding and has no UTF-7 at all.
//!
//! When no charset is declared, when the label is unknown, or when the
//! bytes are not valid in the declared charset (mail labelled GB2312 that
//! is Big5, UTF-8 that is GBK), the charset is guessed with chardetng, as
//! Firefox guesses for unlabelled pages, with the sender's top-level domain
//! as a hint when the caller has one. `us-ascii` with 8-bit bytes counts as
//! undeclared: old Chinese mail says us-ascii and sends GBK. Beyond what a
//! browser does, three mislabellings common in mail are undone: valid
//! UTF-8 (a few 8-bit bytes at least) under a legacy label; GBK or Big5
//! under ISO-8859-1 when chardetng is sure; raw HZ with no label at all.

use std::borrow::Cow;

use chardetng::{EncodingDetector, Iso2022JpDetection, Utf8Detection};
use encoding_rs::{Encoding, BIG5, GB18030, GBK, REPLACEMENT, UTF_8, WINDOWS_1252};

/// What a label names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Charset {
    /// One of encoding_rs's encodings (GBK already made GB18030).
    Known(&'static Encoding),
    /// UTF-7 (RFC 2152), not IMAP's modified form.
    Utf7,
    /// HZ-GB-2312 (RFC 1842).
    Hz,
    /// US-ASCII: 8-bit bytes under it mean the label is not to be trusted.
    Ascii,
}

/// Longest label looked at; longer ones are unknown.
const MAX_LABEL: usize = 64;

/// The charset a label names, or None for an unknown label. Case, white
/// space, quotes and an RFC 2231 language suffix (`gb2312*zh`) are ignored.
pub fn lookup(label: &str) -> Option<Charset> {
    let l = label.trim().trim_matches(|c| c == '"' || c == '\'').trim();
    let l = l.split('*').next().unwrap_or("").trim();
    if l.is_empty() || l.len() > MAX_LABEL {
        return None;
    }
    let l = l.to_ascii_lowercase();
    let extra = match l.as_str() {
        "utf-7" | "utf7" | "unicode-1-1-utf-7" | "csunicode11utf7" | "x-unicode-2-0-utf-7" => {
            return Some(Charset::Utf7)
        }
        "hz-gb-2312" | "hz" | "x-hz" | "hz-gb2312" => return Some(Charset::Hz),
        "us-ascii" | "ascii" | "ansi_x3.4-1968" | "iso646-us" | "us" | "iso-ir-6" | "cp367"
        | "ibm367" | "csascii" | "iso_646.irv:1991" | "646" => return Some(Charset::Ascii),
        "cp936" | "ms936" | "windows-936" | "936" | "euc-cn" | "x-euc-cn" | "euccn" | "gb_2312"
        | "gb-2312" | "x-gb2312" | "gbk2312" | "cn-gb" | "x-cp936" | "gb18030-2000"
        | "gb18030-2005" | "gb18030-2022" => Some(GB18030),
        "cp950" | "ms950" | "windows-950" | "950" | "x-big5" | "big5hkscs" | "big-5"
        | "big-five" | "bigfive" | "cn-big5" | "x-windows-950" | "big5-2003" => Some(BIG5),
        _ => None,
    };
    let enc = match extra {
        Some(e) => e,
        None => Encoding::for_label_no_replacement(l.as_bytes())?,
    };
    if enc == REPLACEMENT {
        return None;
    }
    Some(Charset::Known(if enc == GBK { GB18030 } else { enc }))
}

/// Bytes in a declared charset to text; see the module doc.
pub fn decode(bytes: &[u8], declared: Option<&str>) -> String {
    decode_hinted(bytes, declared, None)
}

/// [`decode`] with the top-level domain (`b"cn"`, `b"tw"`) of the sender
/// as a hint for the guess, when one is needed.
pub fn decode_hinted(bytes: &[u8], declared: Option<&str>, tld: Option<&[u8]>) -> String {
    if let Some((enc, bom)) = Encoding::for_bom(bytes) {
        return lossy(enc, &bytes[bom..]);
    }
    let charset = declared.and_then(lookup);
    match charset {
        Some(Charset::Utf7) => utf7(bytes),
        Some(Charset::Hz) => match hz(bytes) {
            Some(s) => s,
            None => guess(bytes, tld, None),
        },
        // UTF-8 under a legacy label (a client that re-encoded and kept
        // the old label): text in a legacy charset is almost never valid
        // UTF-8 once it holds a few 8-bit bytes.
        Some(Charset::Known(enc))
            if enc != UTF_8
                && bytes.iter().filter(|b| **b >= 0x80).count() >= 4
                && std::str::from_utf8(bytes).is_ok() =>
        {
            String::from_utf8_lossy(bytes).into_owned()
        }
        Some(Charset::Known(enc)) if enc == WINDOWS_1252 && latin_label_on_chinese(bytes, tld) => {
            guess(bytes, tld, Some(enc))
        }
        Some(Charset::Known(enc)) => match strict(enc, bytes) {
            Some(s) if !pua(&s) || (enc != GB18030 && enc != BIG5) => s,
            Some(s) => {
                // chardetng may well say GBK for Big5 too: the other
                // Chinese charset is tried as well.
                let sibling = if enc == BIG5 { GB18030 } else { BIG5 };
                [detect(bytes, tld), sibling]
                    .into_iter()
                    .filter(|g| *g != enc)
                    .filter_map(|g| strict(g, bytes))
                    .find(|t| !pua(t))
                    .unwrap_or(s)
            }
            None => guess(bytes, tld, Some(enc)),
        },
        Some(Charset::Ascii) | None => match std::str::from_utf8(bytes) {
            Ok(s) => hz_unlabelled(bytes).unwrap_or_else(|| s.to_string()),
            Err(_) => guess(bytes, tld, None),
        },
    }
}

/// The bytes decoded without any replacement, or None when they are not
/// valid in `enc`.
fn strict(enc: &'static Encoding, bytes: &[u8]) -> Option<String> {
    enc.decode_without_bom_handling_and_without_replacement(bytes)
        .map(Cow::into_owned)
}

fn lossy(enc: &'static Encoding, bytes: &[u8]) -> String {
    enc.decode_without_bom_handling(bytes).0.into_owned()
}

/// chardetng's guess (GBK made GB18030); when the bytes are not valid in
/// the guess either, the declared charset (else the guess) with U+FFFD for
/// what does not decode. Short text (a name, a subject) gives chardetng
/// too little to go on: there Chinese is tried first, as [`undeclared`]
/// explains.
fn guess(bytes: &[u8], tld: Option<&[u8]>, declared: Option<&'static Encoding>) -> String {
    let enc = detect(bytes, tld);
    let short = bytes.iter().filter(|b| **b >= 0x80).count() < SHORT;
    if short {
        if let Some(s) = chinese(bytes) {
            return s;
        }
    }
    if let Some(s) = strict(enc, bytes) {
        return s;
    }
    lossy(declared.unwrap_or(enc), bytes)
}

/// Chinese mail labelled ISO-8859-1 (or Windows-1252, which encoding_rs
/// reads it as) by a misconfigured client decodes without error into
/// Latin-1 gibberish. When there is enough 8-bit text for chardetng to be
/// sure (it weighs Windows-1252 too) and it says GBK or Big5, the label is
/// not believed.
fn latin_label_on_chinese(bytes: &[u8], tld: Option<&[u8]>) -> bool {
    if bytes.iter().filter(|b| **b >= 0x80).count() < LATIN_MIN {
        return false;
    }
    let enc = detect(bytes, tld);
    (enc == GB18030 || enc == BIG5) && strict(enc, bytes).is_some()
}

/// Short text labelled Latin-1 that can only be GB2312 (a Subject's
/// encoded-word from the same misconfigured client): at least two
/// characters, every run of 8-bit bytes an even number of bytes in
/// 0xA1-0xFE (runs of two or more accented letters are rare in Latin-1
/// text), decoding to Chinese.
pub fn latin_label_on_gb2312(bytes: &[u8]) -> Option<String> {
    let mut run = 0usize;
    let mut total = 0usize;
    for &b in bytes.iter().chain(std::iter::once(&b' ')) {
        if b >= 0x80 {
            if !(0xA1..=0xFE).contains(&b) {
                return None;
            }
            run += 1;
            total += 1;
        } else {
            if run % 2 == 1 {
                return None;
            }
            run = 0;
        }
    }
    if total < 4 {
        return None;
    }
    chinese(bytes).filter(|_| strict(GB18030, bytes).is_some())
}

/// 8-bit bytes needed before a Latin-1 label is doubted (Big5's trail
/// bytes are often ASCII: 30 characters may hold only 30 such bytes).
const LATIN_MIN: usize = 24;

/// Fewer 8-bit bytes than this make a short text.
const SHORT: usize = 48;

/// The bytes as GB18030, else as Big5, when they decode without error to
/// Chinese (Han characters and CJK punctuation besides ASCII).
fn chinese(bytes: &[u8]) -> Option<String> {
    let cjk = |s: &str| {
        s.chars().all(|c| {
            c.is_ascii()
                || matches!(c, '\u{3000}'..='\u{303F}' | '\u{3400}'..='\u{4DBF}' | '\u{4E00}'..='\u{9FFF}'
                    | '\u{FF00}'..='\u{FFEF}' | '\u{2010}'..='\u{2027}' | '\u{F900}'..='\u{FAFF}')
        })
    };
    [GB18030, BIG5]
        .into_iter()
        .filter_map(|e| strict(e, bytes))
        .find(|s| cjk(s))
}

/// Bytes in one CJK charset read as the other decode without error but
/// land in the Private Use Area (Big5 read as GBK does, all the time):
/// then the guess is taken when it decodes cleanly with none.
fn pua(s: &str) -> bool {
    s.chars().any(|c| ('\u{E000}'..='\u{F8FF}').contains(&c))
}

/// Bytes chardetng looks at at most: it costs about 0.1 ms per kilobyte,
/// and a few kilobytes of 8-bit text settle the guess.
const DETECT_MAX: usize = 8 * 1024;

/// The charset chardetng guesses for `bytes` (GBK made GB18030), from at
/// most `DETECT_MAX` (8 KB) bytes starting at the first 8-bit one (the ASCII
/// before it tells nothing, except ISO-2022-JP's escapes, which are all
/// ASCII and then are what is looked at).
pub fn detect(bytes: &[u8], tld: Option<&[u8]>) -> &'static Encoding {
    let start = bytes.iter().position(|b| *b >= 0x80).unwrap_or(0);
    let mut end = (start + DETECT_MAX).min(bytes.len());
    // Not in the middle of a character: a multi-byte one ends at or
    // before an ASCII byte.
    let limit = (end + 16).min(bytes.len());
    while end < limit && bytes[end - 1] >= 0x80 {
        end += 1;
    }
    let mut d = EncodingDetector::new(Iso2022JpDetection::Allow);
    d.feed(&bytes[start..end], true);
    // A TLD chardetng does not know is no hint at all (it must be ASCII
    // lower-case letters).
    let tld = tld.filter(|t| !t.is_empty() && t.iter().all(u8::is_ascii_lowercase));
    let enc = d.guess(tld, Utf8Detection::Allow);
    match enc {
        e if e == GBK => GB18030,
        e if e == REPLACEMENT => WINDOWS_1252,
        e => e,
    }
}

/// UTF-8 when valid, else the guess: for raw 8-bit header text. Headers
/// are short, so Chinese (GB18030, then Big5) is tried before chardetng.
pub fn undeclared(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(s) => hz_unlabelled(bytes).unwrap_or_else(|| s.to_string()),
        Err(_) => guess(bytes, None, None),
    }
}

/// Unlabelled 7-bit text that is HZ (old Chinese mail and news sent it
/// raw, Subject included): it opens GB mode with "~{" and closes it with
/// "~}", and everything in GB mode decodes to Chinese characters and
/// punctuation. Anything else (a "~{" in code or TeX) is not taken for HZ.
fn hz_unlabelled(bytes: &[u8]) -> Option<String> {
    let has = |pat: &[u8]| bytes.windows(2).any(|w| w == pat);
    if !bytes.is_ascii() || !has(b"~{") || !has(b"~}") {
        return None;
    }
    let s = hz(bytes)?;
    let plain = String::from_utf8_lossy(bytes);
    // Every character HZ added must be CJK: compare what is not ASCII.
    let mut cjk = 0;
    for c in s.chars().filter(|c| !c.is_ascii()) {
        if !matches!(c, '\u{3000}'..='\u{303F}' | '\u{4E00}'..='\u{9FFF}' | '\u{FF00}'..='\u{FFEF}'
            | '\u{2010}'..='\u{2027}' | '\u{3040}'..='\u{30FF}' | '\u{0391}'..='\u{03C9}'
            | '\u{0401}'..='\u{0451}' | '\u{2460}'..='\u{24FF}' | '\u{2500}'..='\u{257F}')
        {
            return None;
        }
        cjk += 1;
    }
    (cjk > 0 && s != plain).then_some(s)
}

/// The value of a base64 digit, RFC 2045 table 1.
fn b64(c: u8) -> Option<u32> {
    Some(match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => return None,
    } as u32)
}

/// UTF-7 (RFC 2152): "+" opens modified base64 of UTF-16 code units, which
/// ends at the first character outside the base64 set; a "-" there is
/// absorbed, and "+-" is "+". Bad surrogates and 8-bit bytes become
/// U+FFFD; left-over bits at the end of a run are dropped.
pub fn utf7(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    let mut units: Vec<u16> = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        i += 1;
        if b != b'+' {
            out.push(if b < 0x80 { b as char } else { '\u{FFFD}' });
            continue;
        }
        if bytes.get(i) == Some(&b'-') {
            out.push('+');
            i += 1;
            continue;
        }
        units.clear();
        let (mut acc, mut bits) = (0u32, 0u32);
        while let Some(v) = bytes.get(i).copied().and_then(b64) {
            acc = (acc << 6) | v;
            bits += 6;
            if bits >= 16 {
                bits -= 16;
                units.push((acc >> bits) as u16);
                acc &= (1 << bits) - 1;
            }
            i += 1;
        }
        if bytes.get(i) == Some(&b'-') {
            i += 1;
        }
        out.extend(char::decode_utf16(units.iter().copied()).map(|r| r.unwrap_or('\u{FFFD}')));
    }
    out
}

/// HZ-GB-2312 (RFC 1842): ASCII until "~{", then pairs of 7-bit bytes that
/// are GB2312 with the high bits cleared until "~}". In ASCII mode "~~" is
/// "~" and "~" before a line end joins the lines. A line end in GB mode
/// returns to ASCII (RFC 1842 wants every line to end in ASCII mode; a
/// sender that forgot must not garble the rest of the message). None when
/// the bytes hold 8-bit data, which HZ never does.
pub fn hz(bytes: &[u8]) -> Option<String> {
    if !bytes.is_ascii() {
        return None;
    }
    let mut out = String::with_capacity(bytes.len());
    let mut gb: Vec<u8> = Vec::new();
    let flush = |gb: &mut Vec<u8>, out: &mut String| {
        if !gb.is_empty() {
            out.push_str(&GB18030.decode_without_bom_handling(gb).0);
            gb.clear();
        }
    };
    let mut i = 0;
    let mut in_gb = false;
    while i < bytes.len() {
        let b = bytes[i];
        if in_gb {
            match (b, bytes.get(i + 1).copied()) {
                (b'~', Some(b'}')) => {
                    flush(&mut gb, &mut out);
                    in_gb = false;
                    i += 2;
                }
                (b'\r' | b'\n', _) => {
                    flush(&mut gb, &mut out);
                    in_gb = false;
                }
                (0x21..=0x7e, Some(c @ 0x21..=0x7e)) => {
                    gb.push(b | 0x80);
                    gb.push(c | 0x80);
                    i += 2;
                }
                _ => {
                    flush(&mut gb, &mut out);
                    out.push('\u{FFFD}');
                    i += 1;
                }
            }
            continue;
        }
        if b == b'~' {
            match bytes.get(i + 1) {
                Some(b'{') => {
                    in_gb = true;
                    i += 2;
                    continue;
                }
                Some(b'~') => {
                    out.push('~');
                    i += 2;
                    continue;
                }
                Some(b'\n') => {
                    i += 2;
                    continue;
                }
                Some(b'\r') if bytes.get(i + 2) == Some(&b'\n') => {
                    i += 3;
                    continue;
                }
                _ => {}
            }
        }
        out.push(b as char);
        i += 1;
    }
    flush(&mut gb, &mut out);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(e: &'static Encoding, s: &str) -> Vec<u8> {
        let (b, _, bad) = e.encode(s);
        assert!(!bad, "{s} in {}", e.name());
        b.into_owned()
    }

    #[test]
    fn chinese_labels_and_aliases() {
        // 镕 and 堃 are GBK, not GB2312: mail labelled gb2312 carries them.
        let s = "朱镕基 王堃 会议通知";
        let gbk = enc(GB18030, s);
        for label in [
            "gb2312",
            "GB2312",
            "x-gbk",
            "cp936",
            "gb_2312-80",
            "\"gbk\"",
            "gb18030",
            "euc-cn",
        ] {
            assert_eq!(decode(&gbk, Some(label)), s, "{label}");
        }
        // A four-byte GB18030 sequence (U+20087, outside GBK).
        let ext = "𠂇";
        assert_eq!(decode(&enc(GB18030, ext), Some("gb2312")), ext);
        let t = "會議通知 香港";
        let big5 = enc(BIG5, t);
        for label in ["big5", "Big5-HKSCS", "x-big5", "cp950"] {
            assert_eq!(decode(&big5, Some(label)), t, "{label}");
        }
        // An HKSCS character.
        assert_eq!(decode(&[0x88, 0x62], Some("big5")), "\u{00CA}\u{0304}");
    }

    #[test]
    fn other_charsets() {
        let j = "日本語のメール";
        let jis = enc(encoding_rs::ISO_2022_JP, j);
        assert!(jis.is_ascii());
        assert_eq!(decode(&jis, Some("iso-2022-jp")), j);
        assert_eq!(decode(b"caf\xe9", Some("iso-8859-1")), "café");
        assert_eq!(
            decode(b"\x93quoted\x94 \x80", Some("windows-1252")),
            "\u{201c}quoted\u{201d} €"
        );
        assert_eq!(decode(b"\xa4", Some("iso-8859-15")), "€");
        assert_eq!(
            decode(b"\xf0\xd2\xc9\xd7\xc5\xd4", Some("koi8-r")),
            "Привет"
        );
        assert_eq!(decode(b"\xb9", Some("windows-1250")), "ą");
        assert_eq!(decode("plain ü".as_bytes(), Some("utf-8")), "plain ü");
        assert_eq!(decode(b"\xef\xbb\xbfbom", Some("gb2312")), "bom");
    }

    #[test]
    fn utf7_rfc2152_examples() {
        for label in ["utf-7", "UNICODE-1-1-UTF-7"] {
            assert_eq!(
                decode(b"Hi Mom -+Jjo--!", Some(label)),
                "Hi Mom -\u{263A}-!"
            );
        }
        assert_eq!(utf7(b"A+ImIDkQ."), "A\u{2262}\u{0391}.");
        assert_eq!(utf7(b"+ZeVnLIqe-"), "日本語");
        assert_eq!(utf7(b"1 +- 1"), "1 + 1");
        assert_eq!(utf7(b"+2D3cAA-"), "\u{1F400}");
        // Hostile input never panics.
        assert_eq!(utf7(b"+2D3-x+"), "\u{FFFD}x");
        assert_eq!(utf7(b"+ADw-script+AD4-"), "<script>");
        assert_eq!(utf7(b"\xff"), "\u{FFFD}");
    }

    #[test]
    fn hz_rfc1842() {
        // RFC 1842's own example.
        let s =
            b"This sentence is in ASCII.\nThe next sentence is in GB.~{<:Ky2;S{#,NpJ)l6HK!#~}Bye.";
        assert_eq!(
            decode(s, Some("HZ-GB-2312")),
            "This sentence is in ASCII.\nThe next sentence is in GB.己所不欲，勿施於人。Bye."
        );
        assert_eq!(hz(b"a~~b~\nc").as_deref(), Some("a~bc"));
        // A line end in GB mode goes back to ASCII.
        assert_eq!(hz(b"~{<:\nabc").as_deref(), Some("己\nabc"));
        assert_eq!(hz(b"~{<").as_deref(), Some("\u{FFFD}"));
        // 8-bit data is not HZ: guessed instead.
        let gbk = enc(GB18030, "中文邮件正文，这是一封测试邮件。");
        assert_eq!(
            decode(&gbk, Some("hz-gb-2312")),
            "中文邮件正文，这是一封测试邮件。"
        );
    }

    #[test]
    fn chinese_labelled_latin1_is_recognised() {
        let s = "您好，这是一封被错误地标成西欧字符集的中文邮件，请查收附件。谢谢！";
        assert_eq!(decode(&enc(GB18030, s), Some("iso-8859-1")), s);
        let t = "您好，這是一封被錯誤地標成西歐字符集的繁體中文郵件，請查收。";
        assert_eq!(decode(&enc(BIG5, t), Some("iso-8859-1")), t);
        let f = "Café crème à la française, déjà vu ; garçon, où est l'hôtel ? Très bien, merci à vous. Ça va très bien, à bientôt !";
        assert_eq!(decode(&enc(WINDOWS_1252, f), Some("iso-8859-1")), f);
        for latin in [
            "¿Dónde está la estación? Mañana iré a la reunión con el señor Núñez, ¡qué bien! Información, atención, canción, corazón, también.",
            "Þórður og Ægir fóru í bæinn á sunnudaginn; þeir sáu hús, fjöll og ár. Blåbærsyltetøy på brødskiva, søte jordbær og rødgrøt med fløte.",
            "Ação, atenção, informação e comunicação: não é fácil, mas é possível. Coração, pão, irmã, maçã, avô, você está aí?",
        ] {
            assert_eq!(decode(&enc(WINDOWS_1252, latin), Some("iso-8859-1")), latin);
        }
        let g = "Größenänderung für Übergröße: schön, müde, über, Äpfel, Öl, Straße, weiß, heißen Grüße aus München";
        assert_eq!(decode(&enc(WINDOWS_1252, g), Some("iso-8859-1")), g);
    }

    #[test]
    fn utf8_under_a_legacy_label() {
        for label in ["gb2312", "big5", "iso-8859-1", "shift_jis", "koi8-r"] {
            assert_eq!(
                decode("会议通知 café".as_bytes(), Some(label)),
                "会议通知 café",
                "{label}"
            );
        }
        // One accented letter is not enough to doubt the label.
        assert_eq!(decode("é".as_bytes(), Some("iso-8859-1")), "Ã©");
    }

    #[test]
    fn gb2312_words_labelled_latin1() {
        assert_eq!(
            latin_label_on_gb2312(&enc(GB18030, "会议通知")).as_deref(),
            Some("会议通知")
        );
        for latin in [
            "Grüße aus München",
            "élève",
            "Æble",
            "Ça",
            "naïve café",
            "ÀÉ",
        ] {
            assert_eq!(
                latin_label_on_gb2312(&enc(WINDOWS_1252, latin)),
                None,
                "{latin}"
            );
        }
    }

    #[test]
    fn unlabelled_hz_is_recognised() {
        assert_eq!(
            decode(b"~{<:Ky2;S{#,NpJ)l6HK!#~}", None),
            "己所不欲，勿施於人。"
        );
        assert_eq!(undeclared(b"Re: ~{;aRiM(V*~}"), "Re: 会议通知");
        // Not HZ: left as it is.
        for s in [&b"\\def~{x}~}"[..], b"a ~{ b", b"~{~}", b"x ~{a~} y"] {
            assert_eq!(decode(s, None).as_bytes(), s);
        }
    }

    #[test]
    fn undeclared_and_wrong_charsets_are_guessed() {
        let s = "您好，这是一封没有声明字符集的中文邮件，请查收附件。谢谢！";
        let gbk = enc(GB18030, s);
        assert_eq!(decode(&gbk, None), s);
        assert_eq!(decode(&gbk, Some("us-ascii")), s);
        assert_eq!(decode(&gbk, Some("utf-8")), s);
        assert_eq!(decode(&gbk, Some("x-unknown-charset")), s);
        let t = "您好，這是一封繁體中文郵件，請查收附件。謝謝！";
        let big5 = enc(BIG5, t);
        assert_eq!(decode(&big5, Some("gb2312")), t);
        assert_eq!(decode_hinted(&big5, None, Some(b"tw")), t);
        assert_eq!(decode(s.as_bytes(), None), s);
        assert_eq!(decode(b"plain", Some("no-such")), "plain");
        // Nothing fits: the declared charset with U+FFFD.
        assert!(!decode(b"\xff\x80\xfd", Some("utf-8")).is_empty());
    }

    #[test]
    fn lookup_rejects_junk() {
        assert_eq!(lookup(""), None);
        assert_eq!(lookup(&"x".repeat(500)), None);
        assert_eq!(lookup("iso-2022-kr"), None);
        assert_eq!(lookup("gb2312*zh-cn"), Some(Charset::Known(GB18030)));
        assert_eq!(lookup("UTF8"), Some(Charset::Known(UTF_8)));
    }
}
