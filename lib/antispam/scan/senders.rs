//! A user's own allow and block lists of senders: entries are addresses
//! (`a@example.com`) or whole domains (`@example.com`), compared without
//! case. kmp-smtpd refuses a blocked sender at RCPT for that user; an
//! allowed one skips the spam verdict (not the virus scan).

/// Whether `sender` (`local@domain`; empty for the null sender) matches an
/// entry of `list`.
pub fn matches(list: &[String], sender: &str) -> bool {
    if sender.is_empty() {
        return false;
    }
    let sender = sender.to_ascii_lowercase();
    let domain = sender.rsplit_once('@').map(|(_, d)| d).unwrap_or("");
    list.iter().any(|e| {
        let e = e.trim().to_ascii_lowercase();
        match e.strip_prefix('@') {
            Some(d) => !d.is_empty() && d == domain,
            None => e == sender,
        }
    })
}

/// Checks an entry given to kmpctl: `local@domain` or `@domain`, no
/// spaces or control characters, at most 320 octets.
pub fn valid_entry(e: &str) -> Result<String, String> {
    let e = e.trim();
    let ok = !e.is_empty()
        && e.len() <= 320
        && !e
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '<' || c == '>')
        && match e.rsplit_once('@') {
            Some((_, d)) => !d.is_empty() && !d.contains('@') && d.contains('.'),
            None => false,
        };
    if ok {
        Ok(e.to_ascii_lowercase())
    } else {
        Err(format!(
            "{e:?} is not a sender address (a@example.com) or domain (@example.com)"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_match() {
        let l = vec!["Boss@Example.com".to_string(), "@spam.test".to_string()];
        assert!(matches(&l, "boss@example.COM"));
        assert!(!matches(&l, "other@example.com"));
        assert!(matches(&l, "x@SPAM.test"));
        assert!(!matches(&l, "x@notspam.test"));
        assert!(!matches(&l, "x@sub.spam.test"));
        assert!(!matches(&l, ""));
        assert!(valid_entry("@example.com").is_ok());
        assert!(valid_entry("a@b.c").is_ok());
        assert!(valid_entry("example.com").is_err());
        assert!(valid_entry("a b@c.d").is_err());
        assert!(valid_entry("@").is_err());
    }
}
