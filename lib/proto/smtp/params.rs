//! ESMTP parameters of MAIL and RCPT (RFC 5321 4.1.2 `esmtp-param`):
//! SIZE (RFC 1870), BODY (RFC 6152), SMTPUTF8 (RFC 6531), RET and ENVID,
//! NOTIFY and ORCPT (RFC 3461), AUTH (RFC 4954); and xtext (RFC 3461 4).

use super::ParseError;
use crate::queue::envelope::{Notify, Ret};

/// RFC 3461 4.4: ENVID is at most 100 characters.
pub const MAX_ENVID: usize = 100;
/// RFC 3461 4.2: ORCPT is at most 500 characters.
pub const MAX_ORCPT: usize = 500;
/// RFC 1870: SIZE is a number of at most 20 digits.
pub const MAX_SIZE_DIGITS: usize = 20;
/// Parameters on one command: more than this is an attack, not a client.
pub const MAX_PARAMS: usize = 16;

/// RFC 6152 BODY.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Body {
    SevenBit,
    EightBitMime,
}

/// The parameters of MAIL FROM.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MailParams {
    pub size: Option<u64>,
    pub body: Option<Body>,
    pub smtputf8: bool,
    pub ret: Option<Ret>,
    /// xtext-decoded.
    pub envid: Option<String>,
    /// RFC 4954 5: the AUTH= identity, xtext-decoded (`<>` for none).
    pub auth: Option<String>,
}

/// The parameters of RCPT TO.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RcptParams {
    pub notify: Option<Notify>,
    /// As given: `rfc822;user+2Bx@example.test` (type, `;`, xtext).
    pub orcpt: Option<String>,
}

/// Parses MAIL's parameters (the text after the path).
pub fn mail_params(s: &str) -> Result<MailParams, ParseError> {
    let mut p = MailParams::default();
    for (key, value) in split(s)? {
        let dup = || ParseError::DuplicateParameter;
        match key.to_ascii_uppercase().as_str() {
            "SIZE" => {
                let v = value.ok_or(ParseError::BadParameter)?;
                if v.is_empty()
                    || v.len() > MAX_SIZE_DIGITS
                    || !v.bytes().all(|b| b.is_ascii_digit())
                {
                    return Err(ParseError::BadParameter);
                }
                // 20 digits can overflow u64: such a size is over any limit anyway.
                let n = v.parse::<u64>().unwrap_or(u64::MAX);
                p.size.replace(n).map_or(Ok(()), |_| Err(dup()))?;
            }
            "BODY" => {
                let b = match value.map(|v| v.to_ascii_uppercase()).as_deref() {
                    Some("7BIT") => Body::SevenBit,
                    Some("8BITMIME") => Body::EightBitMime,
                    // BINARYMIME (RFC 3030) is not offered.
                    _ => return Err(ParseError::UnknownParameter),
                };
                p.body.replace(b).map_or(Ok(()), |_| Err(dup()))?;
            }
            "SMTPUTF8" => {
                if value.is_some() {
                    return Err(ParseError::BadParameter);
                }
                if std::mem::replace(&mut p.smtputf8, true) {
                    return Err(dup());
                }
            }
            "RET" => {
                let r = match value.map(|v| v.to_ascii_uppercase()).as_deref() {
                    Some("FULL") => Ret::Full,
                    Some("HDRS") => Ret::Hdrs,
                    _ => return Err(ParseError::BadParameter),
                };
                p.ret.replace(r).map_or(Ok(()), |_| Err(dup()))?;
            }
            "ENVID" => {
                let v = value.ok_or(ParseError::BadParameter)?;
                let d = xtext_decode(v).ok_or(ParseError::BadParameter)?;
                if d.is_empty() || d.len() > MAX_ENVID {
                    return Err(ParseError::BadParameter);
                }
                p.envid.replace(d).map_or(Ok(()), |_| Err(dup()))?;
            }
            "AUTH" => {
                let v = value.ok_or(ParseError::BadParameter)?;
                let d = xtext_decode(v).ok_or(ParseError::BadParameter)?;
                p.auth.replace(d).map_or(Ok(()), |_| Err(dup()))?;
            }
            _ => return Err(ParseError::UnknownParameter),
        }
    }
    Ok(p)
}

/// Parses RCPT's parameters.
pub fn rcpt_params(s: &str) -> Result<RcptParams, ParseError> {
    let mut p = RcptParams::default();
    for (key, value) in split(s)? {
        match key.to_ascii_uppercase().as_str() {
            "NOTIFY" => {
                let n = notify(value.ok_or(ParseError::BadParameter)?)?;
                if p.notify.replace(n).is_some() {
                    return Err(ParseError::DuplicateParameter);
                }
            }
            "ORCPT" => {
                let v = value.ok_or(ParseError::BadParameter)?;
                let (kind, addr) = v.split_once(';').ok_or(ParseError::BadParameter)?;
                let kind_ok = !kind.is_empty()
                    && kind.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
                // RFC 6533's utf-8 type carries UTF-8 and its own escapes; rfc822 is xtext.
                let addr_ok = if kind.eq_ignore_ascii_case("rfc822") {
                    xtext_decode(addr).is_some_and(|d| !d.is_empty())
                } else {
                    !addr.is_empty()
                };
                if !kind_ok || !addr_ok || v.len() > MAX_ORCPT {
                    return Err(ParseError::BadParameter);
                }
                if p.orcpt.replace(v.to_string()).is_some() {
                    return Err(ParseError::DuplicateParameter);
                }
            }
            _ => return Err(ParseError::UnknownParameter),
        }
    }
    Ok(p)
}

/// RFC 3461 4.1: `NEVER`, or a comma list of SUCCESS, FAILURE, DELAY.
fn notify(v: &str) -> Result<Notify, ParseError> {
    if v.eq_ignore_ascii_case("NEVER") {
        return Ok(Notify::NEVER);
    }
    let mut n = Notify::NEVER;
    for word in v.split(',') {
        let flag = match word.to_ascii_uppercase().as_str() {
            "SUCCESS" => &mut n.success,
            "FAILURE" => &mut n.failure,
            "DELAY" => &mut n.delay,
            _ => return Err(ParseError::BadParameter),
        };
        if std::mem::replace(flag, true) {
            return Err(ParseError::BadParameter);
        }
    }
    Ok(n)
}

/// Splits `KEY=VALUE KEY2` into pairs, checking RFC 5321's esmtp-keyword and
/// esmtp-value (with UTF-8 allowed in values, as RFC 6531 3.3 does).
fn split(s: &str) -> Result<Vec<(&str, Option<&str>)>, ParseError> {
    let mut out = Vec::new();
    for word in s.split(' ').filter(|w| !w.is_empty()) {
        if out.len() == MAX_PARAMS {
            return Err(ParseError::BadParameter);
        }
        let (k, v) = match word.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (word, None),
        };
        let key_ok = k.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
            && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        let value_ok = v.is_none_or(|v| {
            !v.is_empty() && v.chars().all(|c| c > ' ' && c != '=' && c != '\u{7f}')
        });
        if !key_ok || !value_ok {
            return Err(ParseError::BadParameter);
        }
        out.push((k, v));
    }
    Ok(out)
}

/// Decodes xtext (RFC 3461 4): printable ASCII but `+` and `=`, and `+XX`
/// in upper-case hex. None when it is not xtext or not UTF-8 once decoded.
pub fn xtext_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => {
                let hex = s.get(i + 1..i + 3)?;
                if !hex
                    .bytes()
                    .all(|c| c.is_ascii_digit() || (b'A'..=b'F').contains(&c))
                {
                    return None;
                }
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            c if (33..=126).contains(&c) && c != b'=' => {
                out.push(c);
                i += 1;
            }
            _ => return None,
        }
    }
    String::from_utf8(out).ok()
}

/// Encodes text as xtext.
pub fn xtext_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if (33..=126).contains(&b) && b != b'+' && b != b'=' {
            out.push(b as char);
        } else {
            out.push_str(&format!("+{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xtext_round_trips_and_rejects_junk() {
        assert_eq!(xtext_decode("a+2Bb+3Dc").as_deref(), Some("a+b=c"));
        assert_eq!(xtext_encode("a+b=c d"), "a+2Bb+3Dc+20d");
        for s in ["a b", "a=b", "+2", "+2b", "+ZZ", "é"] {
            assert_eq!(xtext_decode(s), None, "{s}");
        }
        let all: String = (1u8..128).map(|b| b as char).collect();
        assert_eq!(
            xtext_decode(&xtext_encode(&all)).as_deref(),
            Some(all.as_str())
        );
    }

    #[test]
    fn mail_parameters_parse() {
        let p =
            mail_params(" SIZE=1000 BODY=8bitmime SMTPUTF8 RET=HDRS ENVID=QQ+2B1 AUTH=<>").unwrap();
        assert_eq!(p.size, Some(1000));
        assert_eq!(p.body, Some(Body::EightBitMime));
        assert!(p.smtputf8);
        assert_eq!(p.ret, Some(Ret::Hdrs));
        assert_eq!(p.envid.as_deref(), Some("QQ+1"));
        assert_eq!(p.auth.as_deref(), Some("<>"));
        assert_eq!(mail_params("").unwrap(), MailParams::default());
        let huge = mail_params("SIZE=99999999999999999999").unwrap();
        assert_eq!(huge.size, Some(u64::MAX));
    }

    #[test]
    fn rcpt_parameters_parse() {
        let p = rcpt_params("NOTIFY=SUCCESS,DELAY ORCPT=rfc822;u+2Bx@example.test").unwrap();
        let n = p.notify.unwrap();
        assert!(n.success && n.delay && !n.failure);
        assert_eq!(p.orcpt.as_deref(), Some("rfc822;u+2Bx@example.test"));
        assert_eq!(
            rcpt_params("notify=never").unwrap().notify,
            Some(Notify::NEVER)
        );
    }

    #[test]
    fn bad_parameters_are_refused() {
        let mail: &[(&str, ParseError)] = &[
            ("SIZE=", ParseError::BadParameter),
            ("SIZE=12a", ParseError::BadParameter),
            ("SIZE=123456789012345678901", ParseError::BadParameter),
            ("SIZE=1 SIZE=2", ParseError::DuplicateParameter),
            ("BODY=BINARYMIME", ParseError::UnknownParameter),
            ("BODY", ParseError::UnknownParameter),
            ("SMTPUTF8=yes", ParseError::BadParameter),
            ("RET=ALL", ParseError::BadParameter),
            ("ENVID=a=b", ParseError::BadParameter),
            ("ENVID=+zz", ParseError::BadParameter),
            ("XFOO=1", ParseError::UnknownParameter),
            ("=1", ParseError::BadParameter),
            ("SIZE==1", ParseError::BadParameter),
            (
                "A B C D E F G H I J K L M N O P Q",
                ParseError::BadParameter,
            ),
        ];
        for (s, want) in mail {
            assert_eq!(mail_params(s).err(), Some(*want), "{s}");
        }
        let long_envid = format!("ENVID={}", "a".repeat(101));
        assert_eq!(
            mail_params(&long_envid).err(),
            Some(ParseError::BadParameter)
        );
        let rcpt: &[(&str, ParseError)] = &[
            ("NOTIFY=NEVER,SUCCESS", ParseError::BadParameter),
            ("NOTIFY=SOMETIMES", ParseError::BadParameter),
            ("NOTIFY=DELAY,DELAY", ParseError::BadParameter),
            (
                "NOTIFY=DELAY NOTIFY=FAILURE",
                ParseError::DuplicateParameter,
            ),
            ("ORCPT=nosemicolon", ParseError::BadParameter),
            ("ORCPT=rfc822;", ParseError::BadParameter),
            ("ORCPT=rfc822;a+G0", ParseError::BadParameter),
            ("SIZE=10", ParseError::UnknownParameter),
        ];
        for (s, want) in rcpt {
            assert_eq!(rcpt_params(s).err(), Some(*want), "{s}");
        }
    }
}
