//! What the webmail keeps in the user's own store, as IMAP METADATA server
//! entries (RFC 5464), in plain text a person can read with any IMAP client:
//!
//! - [`SESSIONS_ENTRY`]`/SID`: one entry per live session, its value the
//!   session's expiry in Unix seconds. A request whose sid has no such
//!   entry (logged out, expired, revoked) is refused; see
//!   doc/ARCHITECTURE.md. One entry per session, not one list, so that
//!   logins, renewals and logouts of one user at the same moment (two
//!   browsers, two webmail hosts) never overwrite each other.
//! - [`PREFS_ENTRY`]: the settings, one `key=value` a line.
//!
//! Both values are read back as untrusted input (another IMAP client may
//! have written them): bad lines are skipped, bad values fall back to the
//! defaults.

/// The entry below which each live session has its own entry.
pub const SESSIONS_ENTRY: &str = "/private/vendor/kmpromail/webmail/session";
/// The entry that holds a user's settings.
pub const PREFS_ENTRY: &str = "/private/vendor/kmpromail/webmail/prefs";

/// Most live sessions a user keeps; a new login beyond it ends the oldest.
pub const MAX_SESSIONS: usize = 20;

/// The page sizes a user may choose.
pub const PAGE_SIZES: &[u32] = &[10, 20, 25, 50, 100, 200];

/// The time zones offered: UTC and every offset in use.
pub const TIME_ZONES: &[&str] = &[
    "-12:00", "-11:00", "-10:00", "-09:30", "-09:00", "-08:00", "-07:00", "-06:00", "-05:00",
    "-04:00", "-03:30", "-03:00", "-02:00", "-01:00", "UTC", "+01:00", "+02:00", "+03:00",
    "+03:30", "+04:00", "+04:30", "+05:00", "+05:30", "+05:45", "+06:00", "+06:30", "+07:00",
    "+08:00", "+08:45", "+09:00", "+09:30", "+10:00", "+10:30", "+11:00", "+12:00", "+12:45",
    "+13:00", "+14:00",
];

/// The METADATA entry of session `sid`.
pub fn session_entry(sid: &str) -> String {
    format!("{SESSIONS_ENTRY}/{sid}")
}

/// A session entry's value: its expiry, when it is a number.
pub fn session_expiry(value: Option<&[u8]>) -> Option<u64> {
    std::str::from_utf8(value?).ok()?.trim().parse().ok()
}

/// The live sessions of a user, as the entries below [`SESSIONS_ENTRY`]
/// list them (read at login, to prune).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionList {
    entries: Vec<(String, Option<u64>)>,
}

impl SessionList {
    /// From the listed entries (name, value); names not of a session and
    /// values not a number are kept as stale, to be removed.
    pub fn from_entries<'a>(
        listed: impl IntoIterator<Item = (&'a str, Option<&'a [u8]>)>,
    ) -> SessionList {
        let prefix = format!("{SESSIONS_ENTRY}/");
        let entries = listed
            .into_iter()
            .filter_map(|(name, value)| {
                let sid = name.get(prefix.len()..)?;
                name[..prefix.len()]
                    .eq_ignore_ascii_case(&prefix)
                    .then(|| (sid.to_string(), session_expiry(value)))
            })
            .filter(|(sid, _)| valid_sid(sid))
            .collect();
        SessionList { entries }
    }

    /// The sessions to remove: expired ones, unreadable ones, and past
    /// [`MAX_SESSIONS`] the ones ending soonest (`keep` is never one).
    pub fn stale(&self, now: u64, keep: &str) -> Vec<String> {
        let mut live: Vec<(&str, u64)> = Vec::new();
        let mut out = Vec::new();
        for (sid, exp) in &self.entries {
            match exp {
                Some(e) if *e > now || sid == keep => live.push((sid, *e)),
                _ => out.push(sid.clone()),
            }
        }
        live.sort_by_key(|(sid, e)| (*sid != keep, std::cmp::Reverse(*e)));
        out.extend(live.iter().skip(MAX_SESSIONS).map(|(s, _)| s.to_string()));
        out
    }

    /// How many sessions are listed.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// A session id as [`super::seal::new_sid`] makes them.
pub fn valid_sid(s: &str) -> bool {
    (16..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A user's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prefs {
    /// Messages per page of the message list.
    pub page_size: u32,
    /// A language code (`en`, `zh-CN` ...); None: from the browser.
    pub lang: Option<String>,
    /// A skin name; None: `default`.
    pub skin: Option<String>,
    /// One of [`TIME_ZONES`].
    pub tz: String,
    /// The use of the quota (percent) at which kmp-local warns the user;
    /// None: the system's `local.quota_warning_percent`. kmp-local reads
    /// this line of the entry (`crate::local::quota::PREFS_KEY`).
    pub quota_warning: Option<u32>,
}

impl Prefs {
    /// The settings of a user who chose nothing.
    pub fn defaults(page_size: u32) -> Prefs {
        Prefs {
            page_size,
            lang: None,
            skin: None,
            tz: "UTC".into(),
            quota_warning: None,
        }
    }

    /// Parses [`PREFS_ENTRY`]'s value over the defaults. Names of languages
    /// and skins are only checked for form here; whether they exist is the
    /// caller's question.
    pub fn parse(value: Option<&[u8]>, default_page_size: u32) -> Prefs {
        let mut p = Prefs::defaults(default_page_size);
        let text = value.map(String::from_utf8_lossy).unwrap_or_default();
        for line in text.lines().take(100) {
            let Some((k, v)) = line.split_once('=') else {
                continue;
            };
            let v = v.trim();
            match k.trim() {
                "page_size" => {
                    if let Some(n) = v.parse().ok().filter(|n| PAGE_SIZES.contains(n)) {
                        p.page_size = n;
                    }
                }
                "lang" if safe_name(v) => p.lang = Some(v.to_string()),
                "skin" if safe_name(v) => p.skin = Some(v.to_string()),
                "tz" if TIME_ZONES.contains(&v) => p.tz = v.to_string(),
                "quota_warning" => {
                    p.quota_warning = v.parse().ok().filter(|n| (1..=100).contains(n));
                }
                _ => {}
            }
        }
        p
    }

    /// The entry's value.
    pub fn to_text(&self) -> String {
        let mut s = format!("page_size={}\n", self.page_size);
        if let Some(l) = &self.lang {
            s.push_str(&format!("lang={l}\n"));
        }
        if let Some(k) = &self.skin {
            s.push_str(&format!("skin={k}\n"));
        }
        s.push_str(&format!("tz={}\n", self.tz));
        if let Some(q) = self.quota_warning {
            s.push_str(&format!("quota_warning={q}\n"));
        }
        s
    }

    /// The time zone's offset from UTC in minutes.
    pub fn tz_offset_minutes(&self) -> i32 {
        tz_offset_minutes(&self.tz).unwrap_or(0)
    }
}

/// `+05:30` is 330, `UTC` is 0.
pub fn tz_offset_minutes(tz: &str) -> Option<i32> {
    if tz == "UTC" {
        return Some(0);
    }
    let sign = match tz.as_bytes().first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let (h, m) = tz[1..].split_once(':')?;
    let (h, m): (i32, i32) = (h.parse().ok()?, m.parse().ok()?);
    (h <= 14 && m < 60).then_some(sign * (h * 60 + m))
}

/// A name that can be a file or directory name and nothing more: letters,
/// digits, `-` and `_`, 1 to 64 of them (so never `..`, `/` or a dot file).
pub fn safe_name(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "AAAAAAAAAAAAAAAAAAAAAA";
    const B: &str = "BBBBBBBBBBBBBBBBBBBBBB";

    #[test]
    fn sessions_are_entries_and_the_stale_ones_are_found() {
        let a = session_entry(A);
        let b = session_entry(B);
        assert_eq!(session_expiry(Some(b"100")), Some(100));
        assert_eq!(session_expiry(Some(b"soon")), None);
        let other = format!("{SESSIONS_ENTRY}x/{A}");
        let bad = session_entry("../x");
        let l = SessionList::from_entries([
            (a.as_str(), Some(&b"100"[..])),
            (b.as_str(), Some(&b"junk"[..])),
            (other.as_str(), Some(&b"900"[..])),
            (bad.as_str(), Some(&b"900"[..])),
        ]);
        assert_eq!(l.len(), 2, "only session entries with a good sid");
        assert_eq!(l.stale(50, ""), vec![B.to_string()], "unreadable value");
        let mut st = l.stale(100, "");
        st.sort();
        assert_eq!(st, vec![A.to_string(), B.to_string()], "and expired");
        let names: Vec<String> = (0..30u64)
            .map(|i| session_entry(&format!("{A}{i:02}")))
            .collect();
        let values: Vec<String> = (0..30u64).map(|i| (1000 + i).to_string()).collect();
        let many = SessionList::from_entries(
            names
                .iter()
                .zip(&values)
                .map(|(n, v)| (n.as_str(), Some(v.as_bytes()))),
        );
        let keep = format!("{A}00");
        let st = many.stale(0, &keep);
        assert_eq!(st.len(), 30 - MAX_SESSIONS);
        assert!(!st.contains(&keep), "the new session is kept");
        assert!(st.contains(&format!("{A}01")), "the ones ending soonest go");
        assert!(!st.contains(&format!("{A}29")));
    }

    #[test]
    fn prefs_round_trip_and_bad_values_fall_back() {
        let p = Prefs {
            page_size: 50,
            lang: Some("zh-TW".into()),
            skin: Some("dark".into()),
            tz: "+08:00".into(),
            quota_warning: Some(75),
        };
        assert_eq!(Prefs::parse(Some(p.to_text().as_bytes()), 25), p);
        let bad = Prefs::parse(
            Some(b"page_size=7\nlang=../../etc\nskin=a/b\ntz=Mars\nnoise\n"),
            25,
        );
        assert_eq!(bad, Prefs::defaults(25));
        assert_eq!(tz_offset_minutes("+05:45"), Some(345));
        assert_eq!(tz_offset_minutes("-09:30"), Some(-570));
        assert_eq!(tz_offset_minutes("x"), None);
        for z in TIME_ZONES {
            assert!(tz_offset_minutes(z).is_some(), "{z}");
        }
        assert!(!safe_name(".."));
        assert!(!safe_name("a.b"));
        assert!(!safe_name(""));
        assert!(safe_name("zh-CN"));
    }
}
