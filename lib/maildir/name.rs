//! Maildir file names: making unique ones, and reading what they carry.
//!
//! A message file is named `BASE` in `new/` and `BASE:2,FLAGS` in `cur/`.
//! Our bases follow Dovecot's convention:
//!
//! ```text
//! 1764291234.M123456P4242Q7_<delivery-id>.mx1.example,S=1234,W=1270
//! ^secs      ^usec   ^pid ^counter         ^host        ^size  ^size with CRLF
//! ```
//!
//! The `_<delivery-id>` part is present only when the caller gave a delivery
//! id (see [`super::deliver`]); it is sanitised so that it contains neither
//! `_` nor `.`, which makes `_<id>.` an exact marker to look for. The host is
//! escaped as the Maildir specification asks (`/` → `\057`, `:` → `\072`) and
//! `,` → `\054` as Dovecot does, so the `,S=` fields parse unambiguously.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

/// The separator between base and flags in `cur/` names.
pub const INFO_SEP: &str = ":2,";

/// Longest sanitised delivery id kept verbatim; longer ids are hashed.
const MAX_ID: usize = 64;

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// Splits a file name into its base and its flag letters (after `:2,`), if any.
pub fn split(name: &str) -> (&str, Option<&str>) {
    match name.find(INFO_SEP) {
        Some(i) => (&name[..i], Some(&name[i + INFO_SEP.len()..])),
        None => (name, None),
    }
}

/// The number in a `,K=<n>` field of a base: `S` is the size on disk, `W`
/// the size with CRLF line endings (RFC822.SIZE).
pub fn field(base: &str, key: char) -> Option<u64> {
    base.split(',')
        .skip(1)
        .find_map(|p| p.strip_prefix(key)?.strip_prefix('=')?.parse().ok())
}

/// The delivery time a base starts with, (seconds, microseconds), for
/// ordering new messages. The microseconds are the digits after the `M`
/// of the unique part (the one between the first two dots), wherever it
/// stands in it: `SECS.M<usec>P<pid>...` (ours and Dovecot's) as well as
/// Postfix's and Dovecot's `SECS.V<dev>I<ino>M<usec>.host` and
/// `SECS.R<rand>M<usec>...`. The other fields are decimal or lowercase hex,
/// so an `M` followed by a digit starts the microseconds. They are not
/// zero-padded, so names alone do not sort in time order.
pub fn time_of(base: &str) -> (u64, u64) {
    let digits = |s: &str| -> (u64, usize) {
        let n = s.bytes().take_while(u8::is_ascii_digit).count();
        (s[..n].parse().unwrap_or(0), n)
    };
    let (secs, n) = digits(base);
    let usec = base[n..]
        .strip_prefix('.')
        .and_then(|rest| rest.split('.').next())
        .and_then(|unique| {
            let b = unique.as_bytes();
            (0..b.len())
                .find(|&i| b[i] == b'M' && b.get(i + 1).is_some_and(u8::is_ascii_digit))
                .map(|i| digits(&unique[i + 1..]).0)
        })
        .unwrap_or(0);
    (secs, usec)
}

/// A new unique part: `SECS.M<usec>P<pid>Q<n>[_<id>].HOST` (no sizes yet).
pub fn unique(now: SystemTime, delivery_id: Option<&str>) -> String {
    let d = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let q = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut s = format!(
        "{}.M{}P{}Q{}",
        d.as_secs(),
        d.subsec_micros(),
        std::process::id(),
        q
    );
    if let Some(id) = delivery_id {
        s.push('_');
        s.push_str(&sanitize_id(id));
    }
    s.push('.');
    s.push_str(host());
    s
}

/// A base from a unique part and the two sizes.
pub fn with_sizes(unique: &str, size: u64, vsize: u64) -> String {
    format!("{unique},S={size},W={vsize}")
}

/// What a file name contains when it was delivered with this delivery id.
pub fn id_marker(delivery_id: &str) -> String {
    format!("_{}.", sanitize_id(delivery_id))
}

/// A delivery id made safe for a file name: `[A-Za-z0-9-]` kept, every other
/// byte as `=XX`; an id longer than 64 after that becomes `=H` and a 64-bit
/// FNV-1a hash in hex (an escape can never produce `=H`).
pub fn sanitize_id(id: &str) -> String {
    let mut out = String::with_capacity(id.len());
    for b in id.bytes() {
        if b.is_ascii_alphanumeric() || b == b'-' {
            out.push(b as char);
        } else {
            out.push_str(&format!("={b:02X}"));
        }
    }
    if out.len() > MAX_ID {
        let mut h: u64 = 0xcbf29ce484222325;
        for b in id.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x100000001b3);
        }
        out = format!("=H{h:016x}");
    }
    out
}

/// This host's name, escaped for a file name, computed once.
fn host() -> &'static str {
    static HOST: OnceLock<String> = OnceLock::new();
    HOST.get_or_init(|| {
        let raw = nix::unistd::gethostname()
            .ok()
            .and_then(|h| h.into_string().ok())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "localhost".to_string());
        escape_host(&raw)
    })
}

fn escape_host(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for c in raw.chars() {
        match c {
            '/' => out.push_str("\\057"),
            ':' => out.push_str("\\072"),
            ',' => out.push_str("\\054"),
            c if c.is_control() || c == '_' => out.push('-'),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_and_fields() {
        let n = "1764291234.M1P2Q3.h,S=1234,W=1270:2,FS";
        let (base, info) = split(n);
        assert_eq!(base, "1764291234.M1P2Q3.h,S=1234,W=1270");
        assert_eq!(info, Some("FS"));
        assert_eq!(field(base, 'S'), Some(1234));
        assert_eq!(field(base, 'W'), Some(1270));
        assert_eq!(field("123.abc.host", 'S'), None);
        assert_eq!(field("123.abc.host,S=x", 'S'), None);
        assert_eq!(split("plain"), ("plain", None));
        assert_eq!(time_of(base), (1764291234, 1));
        assert_eq!(time_of("abc"), (0, 0));
        assert!(time_of("5.M999.h") < time_of("5.M1000.h"));
        assert_eq!(time_of("1764291234.abc.host"), (1764291234, 0));
    }

    #[test]
    fn postfix_names_order_by_their_microseconds() {
        // Postfix and Dovecot's `V<dev>I<ino>M<usec>`: the microseconds are
        // not right after the seconds, and must still count.
        let postfix = "1764291234.V801I2b3cM912345.mx1,S=10";
        assert_eq!(time_of(postfix), (1764291234, 912345));
        assert_eq!(time_of("1764291234.Vfe01Iab12M5.h"), (1764291234, 5));
        assert_eq!(time_of("1764291234.R3fa9cM77P12.h"), (1764291234, 77));
        // A later APPEND in the same second sorts after it, an earlier before.
        assert!(time_of(postfix) < time_of("1764291234.M912346P1Q1.h"));
        assert!(time_of("1764291234.M12P1Q1.h") < time_of(postfix));
        // An `M` in the host part is not the microseconds.
        assert_eq!(time_of("1764291234.V1I2.M99host"), (1764291234, 0));
    }

    #[test]
    fn unique_names_differ_and_carry_the_id() {
        let t = SystemTime::now();
        let a = unique(t, None);
        let b = unique(t, None);
        assert_ne!(a, b);
        let c = unique(t, Some("Q1.2/x_y"));
        assert!(c.contains(&id_marker("Q1.2/x_y")), "{c}");
        assert!(!c.contains(':'));
        assert_eq!(c.matches('_').count(), 1);
    }

    #[test]
    fn ids_are_sanitised() {
        assert_eq!(sanitize_id("abc-12"), "abc-12");
        assert_eq!(sanitize_id("a.b_c/d"), "a=2Eb=5Fc=2Fd");
        assert_eq!(sanitize_id("a:\0"), "a=3A=00");
        let long = "x.".repeat(100);
        let s = sanitize_id(&long);
        assert!(s.starts_with("=H") && s.len() == 18);
        assert_ne!(s, sanitize_id(&"y.".repeat(100)));
        for s in [sanitize_id("é 中"), sanitize_id("../..")] {
            assert!(!s.contains('.') && !s.contains('/') && !s.contains('_'));
        }
    }

    #[test]
    fn hosts_are_escaped() {
        assert_eq!(escape_host("a/b:c,d"), "a\\057b\\072c\\054d");
        assert_eq!(escape_host("mx_1"), "mx-1");
    }
}
