//! DMARC and list posts: the From rewrite Mailman does ("from_is_list").
//!
//! A list changes the subject and the body and sends from its own servers,
//! so a post from a domain that publishes `p=reject` or `p=quarantine`
//! (RFC 7489 6.3) fails DMARC at the members' servers and is refused or
//! put in the spam folder. When the poster's domain asks that (or always,
//! `lists.dmarc_rewrite`), the list's copy says it is from the list:
//!
//! ```text
//! From: "Alice via dev" <dev@example.test>
//! Reply-To: Alice <alice@strict.example>     (or Cc:, the list's dmarc_original)
//! ```
//!
//! The original From value goes on as it came (an RFC 2047 name in GB2312
//! keeps its bytes); the new name is the decoded one, as an encoded-word in
//! UTF-8 when it is not ASCII. A post that has a Reply-To already gets the
//! original in Cc, so no reply address the poster chose is lost.
//!
//! The record is looked up at `_dmarc.DOMAIN`, then at the organisational
//! domain's (RFC 7489 6.6.3, with its `sp=` for a subdomain). The
//! organisational domain is taken as the last two labels (three under a
//! two-letter country code's second level such as `com.cn`): no public
//! suffix list is shipped, and a wrong guess only asks one more name. A
//! DNS failure counts as a strict policy: a rewrite is harmless, a post
//! refused by every member's server is not.

use std::net::SocketAddr;
use std::time::Duration;

use super::rewrite::{self, encode_word};
use super::List;

/// `lists.dmarc_rewrite`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// When the poster's domain publishes p=reject or p=quarantine.
    Auto,
    Always,
    Never,
}

impl Mode {
    pub fn parse(s: &str) -> Mode {
        match s {
            "always" => Mode::Always,
            "never" => Mode::Never,
            _ => Mode::Auto,
        }
    }
}

/// What a domain's DMARC record asks for mail that fails it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Asks {
    Reject,
    Quarantine,
    /// `p=none`, or no record.
    Nothing,
}

impl Asks {
    /// Whether a list must not send as the poster.
    pub fn strict(self) -> bool {
        self != Asks::Nothing
    }
}

/// The policy of a record's text (`v=DMARC1; p=...`): `sp=` when the
/// record is the organisational domain's and the poster's domain is below
/// it. None when the text is no DMARC record.
pub fn parse_record(txt: &str, subdomain: bool) -> Option<Asks> {
    let mut tags = txt.split(';').map(|t| t.trim());
    let v = tags.next()?;
    if !v.replace(' ', "").eq_ignore_ascii_case("v=DMARC1") {
        return None;
    }
    let mut p = None;
    let mut sp = None;
    for t in tags {
        let Some((k, val)) = t.split_once('=') else {
            continue;
        };
        let asks = match val.trim().to_ascii_lowercase().as_str() {
            "reject" => Asks::Reject,
            "quarantine" => Asks::Quarantine,
            _ => Asks::Nothing,
        };
        match k.trim().to_ascii_lowercase().as_str() {
            "p" => p = Some(asks),
            "sp" => sp = Some(asks),
            _ => {}
        }
    }
    // RFC 7489 6.6.3: a record without a valid p= is as none (with rua=).
    let p = p.unwrap_or(Asks::Nothing);
    Some(if subdomain { sp.unwrap_or(p) } else { p })
}

/// The organisational domain of `domain` (see the module doc).
pub fn org_domain(domain: &str) -> String {
    let labels: Vec<&str> = domain
        .trim_end_matches('.')
        .split('.')
        .filter(|l| !l.is_empty())
        .collect();
    let n = labels.len();
    let keep = if n >= 3
        && labels[n - 1].len() == 2
        && ["com", "net", "org", "edu", "gov", "ac", "co"].contains(&labels[n - 2])
    {
        3
    } else {
        2
    };
    labels[n.saturating_sub(keep)..]
        .join(".")
        .to_ascii_lowercase()
}

/// Looks up what `domain` asks, through `txt` (a name's TXT strings; Err:
/// DNS did not answer).
pub fn policy_with(
    domain: &str,
    mut txt: impl FnMut(&str) -> Result<Vec<String>, String>,
) -> Result<Asks, String> {
    let domain = domain.trim_end_matches('.').to_ascii_lowercase();
    let find = |texts: Vec<String>, sub: bool| texts.iter().find_map(|t| parse_record(t, sub));
    if let Some(a) = find(txt(&format!("_dmarc.{domain}"))?, false) {
        return Ok(a);
    }
    let org = org_domain(&domain);
    if org != domain {
        if let Some(a) = find(txt(&format!("_dmarc.{org}"))?, true) {
            return Ok(a);
        }
    }
    Ok(Asks::Nothing)
}

/// Looks up what `domain` asks, asking `servers` (or /etc/resolv.conf's).
/// Domains under the special-use names (`.test`, `.example` ...) publish
/// nothing and are not asked.
pub fn policy(domain: &str, servers: &[SocketAddr], timeout: Duration) -> Result<Asks, String> {
    if crate::mailauth::publish::special_use(domain) {
        return Ok(Asks::Nothing);
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let auth = rt.block_on(async { crate::mailauth::verify::authenticator(servers, timeout) })?;
    let r = auth.resolver();
    policy_with(domain, |name| {
        rt.block_on(async {
            match r.txt_lookup(format!("{name}.")).await {
                Ok(l) => Ok(l
                    .answers()
                    .iter()
                    .filter_map(|rec| match &rec.data {
                        hickory_resolver::proto::rr::RData::TXT(t) => Some(
                            t.txt_data
                                .iter()
                                .map(|p| String::from_utf8_lossy(p).into_owned())
                                .collect::<String>(),
                        ),
                        _ => None,
                    })
                    .collect()),
                Err(e) if e.is_nx_domain() || e.is_no_records_found() => Ok(Vec::new()),
                Err(e) => Err(format!("{name}: {e}")),
            }
        })
    })
}

/// Where the original From goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Original {
    #[default]
    ReplyTo,
    Cc,
}

impl Original {
    pub fn name(self) -> &'static str {
        match self {
            Original::ReplyTo => "reply-to",
            Original::Cc => "cc",
        }
    }

    pub fn parse(s: &str) -> Option<Original> {
        match s.to_ascii_lowercase().as_str() {
            "reply-to" | "replyto" | "reply_to" => Some(Original::ReplyTo),
            "cc" => Some(Original::Cc),
            _ => None,
        }
    }
}

/// The list's copy `data` sent as from the list (see the module doc).
/// Unchanged when it has no From.
pub fn rewrite_from(list: &List, data: &[u8], to: Original) -> Vec<u8> {
    let p = rewrite::parse(data);
    let Some(from) = p
        .fields
        .iter()
        .find(|f| f.name.eq_ignore_ascii_case("From"))
    else {
        return data.to_vec();
    };
    let value = from.value();
    let first = crate::mime::address_list(&value).into_iter().next();
    let name = match &first {
        Some(mb) => mb
            .name
            .clone()
            .filter(|n| !n.trim().is_empty())
            .unwrap_or_else(|| mb.address.split('@').next().unwrap_or("").to_string()),
        None => String::new(),
    };
    let phrase = format!("{} via {}", name.trim(), list.local());
    let phrase: String = phrase.chars().filter(|c| !c.is_control()).collect();
    let shown = if phrase.is_ascii() {
        format!("\"{}\"", phrase.replace('\\', "\\\\").replace('"', "\\\""))
    } else {
        encode_word(&phrase)
    };
    let has_reply_to = p
        .fields
        .iter()
        .any(|f| f.name.eq_ignore_ascii_case("Reply-To"));
    let to = if to == Original::ReplyTo && has_reply_to {
        Original::Cc
    } else {
        to
    };
    let eol = p.eol;
    let mut out = Vec::with_capacity(data.len() + value.len() + 100);
    let mut placed = false;
    for f in &p.fields {
        let lname = f.name.to_ascii_lowercase();
        if lname == "from" {
            out.extend_from_slice(format!("From: {shown} <{}>", list.address).as_bytes());
            out.extend_from_slice(eol);
            if to == Original::ReplyTo {
                out.extend_from_slice(b"Reply-To: ");
                out.extend_from_slice(&value);
                out.extend_from_slice(eol);
                placed = true;
            }
            continue;
        }
        if lname == "cc" && to == Original::Cc && !placed {
            out.extend_from_slice(b"Cc: ");
            out.extend_from_slice(&f.value());
            out.extend_from_slice(b", ");
            out.extend_from_slice(&value);
            out.extend_from_slice(eol);
            placed = true;
            continue;
        }
        out.extend_from_slice(&f.raw);
    }
    if !placed {
        out.extend_from_slice(b"Cc: ");
        out.extend_from_slice(&value);
        out.extend_from_slice(eol);
    }
    let head_len: usize = p.fields.iter().map(|f| f.raw.len()).sum();
    out.extend_from_slice(&data[head_len..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::userdb::Address;

    #[test]
    fn records_say_reject_quarantine_or_nothing() {
        assert_eq!(
            parse_record("v=DMARC1; p=reject", false),
            Some(Asks::Reject)
        );
        assert_eq!(
            parse_record("v=DMARC1;p=quarantine; rua=mailto:x@y", false),
            Some(Asks::Quarantine)
        );
        assert_eq!(parse_record("v=DMARC1; p=none", false), Some(Asks::Nothing));
        assert_eq!(
            parse_record("v=DMARC1; p=reject; sp=none", true),
            Some(Asks::Nothing)
        );
        assert_eq!(parse_record("v=DMARC1; p=reject", true), Some(Asks::Reject));
        assert_eq!(parse_record("v=spf1 -all", false), None);
        assert_eq!(org_domain("mail.Strict.example"), "strict.example");
        assert_eq!(org_domain("a.b.example.com.cn"), "example.com.cn");
        assert_eq!(org_domain("example.org"), "example.org");
        // The subdomain has none; the organisational domain's sp= applies.
        let zone = |n: &str| -> Result<Vec<String>, String> {
            Ok(match n {
                "_dmarc.strict.example" => vec!["v=DMARC1; p=none; sp=reject".into()],
                "_dmarc.own.example" => vec!["v=DMARC1; p=quarantine".into()],
                _ => vec![],
            })
        };
        assert_eq!(
            policy_with("lists.strict.example", zone).unwrap(),
            Asks::Reject
        );
        assert_eq!(policy_with("strict.example", zone).unwrap(), Asks::Nothing);
        assert_eq!(policy_with("own.example", zone).unwrap(), Asks::Quarantine);
        assert_eq!(policy_with("other.example", zone).unwrap(), Asks::Nothing);
        assert!(policy_with("x.example", |_| Err("timeout".into())).is_err());
    }

    #[test]
    fn from_becomes_the_list_and_the_original_is_kept() {
        let l = List::new(&Address::parse("dev@example.test").unwrap(), 0);
        let post = b"From: Alice Smith <alice@strict.example>\nTo: dev@example.test\nSubject: hi\n\nbody\n";
        let out = String::from_utf8(rewrite_from(&l, post, Original::ReplyTo)).unwrap();
        assert_eq!(
            out,
            "From: \"Alice Smith via dev\" <dev@example.test>\nReply-To: Alice Smith <alice@strict.example>\nTo: dev@example.test\nSubject: hi\n\nbody\n"
        );
        let out = String::from_utf8(rewrite_from(&l, post, Original::Cc)).unwrap();
        assert!(
            out.contains("\nCc: Alice Smith <alice@strict.example>\n\nbody"),
            "{out}"
        );
        assert!(!out.contains("Reply-To"), "{out}");
        // A Reply-To of the poster's stays; the original goes to Cc, after
        // any Cc there was.
        let post =
            b"From: alice@strict.example\nReply-To: team@strict.example\nCc: bob@x.example\n\nb\n";
        let out = String::from_utf8(rewrite_from(&l, post, Original::ReplyTo)).unwrap();
        assert!(
            out.starts_with("From: \"alice via dev\" <dev@example.test>\n"),
            "{out}"
        );
        assert!(out.contains("Reply-To: team@strict.example\n"), "{out}");
        assert!(
            out.contains("Cc: bob@x.example, alice@strict.example\n"),
            "{out}"
        );
        // A GB2312 name: decoded into the new phrase (UTF-8 encoded-word);
        // the original keeps its bytes.
        let gb = b"From: =?GB2312?B?zfXOsA==?= <wang@strict.example>\nSubject: x\n\nb\n";
        let out = rewrite_from(&l, gb, Original::ReplyTo);
        let p = rewrite::parse(&out);
        let from = p.get("From").unwrap();
        let mb = &crate::mime::address_list(&from)[0];
        assert_eq!(mb.name.as_deref(), Some("王伟 via dev"));
        assert_eq!(mb.address, "dev@example.test");
        assert_eq!(
            p.get("Reply-To").unwrap(),
            b"=?GB2312?B?zfXOsA==?= <wang@strict.example>"
        );
    }
}
