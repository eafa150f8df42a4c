//! Notification methods (RFC 5435): the one we offer is mailto
//! (RFC 5436), which is how a phone gets a message through an SMS
//! gateway's mail address.

/// A parsed mailto URI (RFC 6068).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mailto {
    pub to: Vec<String>,
    pub headers: Vec<(String, String)>,
}

/// Headers a mailto URI may not set (RFC 5436 2.2: the notification's
/// own origin and routing are ours).
const UNSAFE: [&str; 8] = [
    "from",
    "sender",
    "auto-submitted",
    "received",
    "return-path",
    "message-id",
    "date",
    "reply-to",
];

fn unescape(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let h = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(h, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Reads a notification URI; the error says why it cannot be used.
pub fn parse(uri: &str) -> Result<Mailto, String> {
    let Some((scheme, rest)) = uri.split_once(':') else {
        return Err(format!("invalid notification URI \"{uri}\""));
    };
    if !scheme.eq_ignore_ascii_case("mailto") {
        return Err(format!("unsupported notification method \"{scheme}\""));
    }
    let (to_part, query) = match rest.split_once('?') {
        Some((a, b)) => (a, Some(b)),
        None => (rest, None),
    };
    let mut to = Vec::new();
    for a in to_part.split(',').filter(|a| !a.is_empty()) {
        let a = unescape(a).ok_or_else(|| format!("invalid mailto URI \"{uri}\""))?;
        if !super::compile::valid_address(&a) {
            return Err(format!("invalid mailto recipient \"{a}\""));
        }
        to.push(a);
    }
    let mut headers = Vec::new();
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let k = unescape(k).ok_or_else(|| format!("invalid mailto URI \"{uri}\""))?;
        let v = unescape(v).ok_or_else(|| format!("invalid mailto URI \"{uri}\""))?;
        if k.eq_ignore_ascii_case("to") {
            for a in v.split(',').map(str::trim).filter(|a| !a.is_empty()) {
                if !super::compile::valid_address(a) {
                    return Err(format!("invalid mailto recipient \"{a}\""));
                }
                to.push(a.to_string());
            }
        } else if !UNSAFE.contains(&k.to_ascii_lowercase().as_str()) {
            headers.push((k, v));
        }
    }
    if to.is_empty() {
        return Err(format!("mailto URI without a recipient \"{uri}\""));
    }
    Ok(Mailto { to, headers })
}

pub fn check_uri(uri: &str) -> Result<(), String> {
    parse(uri).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mailto() {
        let m =
            parse("mailto:13800138000@sms.example.cn?subject=%E6%96%B0%E9%82%AE%E4%BB%B6").unwrap();
        assert_eq!(m.to, vec!["13800138000@sms.example.cn"]);
        assert_eq!(
            m.headers,
            vec![("subject".to_string(), "新邮件".to_string())]
        );
        assert!(parse("xmpp:a@b").is_err());
        assert!(parse("mailto:").is_err());
        assert!(parse("mailto:a@b.example?from=evil@x")
            .unwrap()
            .headers
            .is_empty());
    }
}
