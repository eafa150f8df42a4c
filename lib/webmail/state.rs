//! What the webmail keeps in the user's own store, as IMAP METADATA server
//! entries (RFC 5464), in plain text a person can read with any IMAP client:
//!
//! - [`SESSIONS_ENTRY`]: the live session ids, one `SID EXPIRY` a line
//!   (EXPIRY in Unix seconds). A request whose sid is not listed (logged
//!   out, expired, revoked) is refused; see doc/ARCHITECTURE.md.
//! - [`PREFS_ENTRY`]: the settings, one `key=value` a line.
//!
//! Both values are read back as untrusted input (another IMAP client may
//! have written them): bad lines are skipped, bad values fall back to the
//! defaults.

/// The entry that lists a user's live sessions.
pub const SESSIONS_ENTRY: &str = "/private/vendor/kmpromail/webmail/sessions";
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

/// The live sessions of a user, parsed from [`SESSIONS_ENTRY`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionList {
    entries: Vec<(String, u64)>,
}

impl SessionList {
    /// Parses the entry's value; bad lines are dropped.
    pub fn parse(value: Option<&[u8]>) -> SessionList {
        let text = value.map(String::from_utf8_lossy).unwrap_or_default();
        let entries = text
            .lines()
            .filter_map(|l| {
                let (sid, exp) = l.trim().split_once(' ')?;
                let exp = exp.trim().parse().ok()?;
                valid_sid(sid).then(|| (sid.to_string(), exp))
            })
            .take(MAX_SESSIONS * 4)
            .collect();
        SessionList { entries }
    }

    /// The expiry of `sid` if it is listed and not past `now`.
    pub fn live(&self, sid: &str, now: u64) -> Option<u64> {
        self.entries
            .iter()
            .find(|(s, e)| s == sid && *e > now)
            .map(|(_, e)| *e)
    }

    /// Lists `sid` until `expires` (replacing its old expiry), dropping
    /// expired entries and, past [`MAX_SESSIONS`], the ones ending soonest.
    pub fn put(&mut self, sid: &str, expires: u64, now: u64) {
        self.entries.retain(|(s, e)| s != sid && *e > now);
        self.entries.push((sid.to_string(), expires));
        if self.entries.len() > MAX_SESSIONS {
            self.entries.sort_by_key(|(_, e)| std::cmp::Reverse(*e));
            self.entries.truncate(MAX_SESSIONS);
        }
    }

    /// Removes `sid` (logout) and expired entries.
    pub fn remove(&mut self, sid: &str, now: u64) {
        self.entries.retain(|(s, e)| s != sid && *e > now);
    }

    /// How many sessions are listed.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The entry's new value.
    pub fn to_text(&self) -> String {
        self.entries
            .iter()
            .map(|(s, e)| format!("{s} {e}\n"))
            .collect()
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
}

impl Prefs {
    /// The settings of a user who chose nothing.
    pub fn defaults(page_size: u32) -> Prefs {
        Prefs {
            page_size,
            lang: None,
            skin: None,
            tz: "UTC".into(),
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
    fn sessions_are_listed_checked_and_removed() {
        let mut l = SessionList::parse(Some(b"junk\nAAAAAAAAAAAAAAAAAAAAAA 100\n../x 500\n"));
        assert_eq!(l.len(), 1);
        assert_eq!(l.live(A, 50), Some(100));
        assert_eq!(l.live(A, 100), None, "expired");
        l.put(B, 300, 150);
        assert_eq!(
            l.to_text(),
            format!("{B} 300\n"),
            "the expired one is pruned"
        );
        l.put(A, 400, 150);
        l.put(B, 500, 150);
        assert_eq!(l.live(B, 150), Some(500));
        l.remove(B, 150);
        assert_eq!(l.live(B, 150), None);
        assert_eq!(l.live(A, 150), Some(400));
        let mut many = SessionList::default();
        for i in 0..30u64 {
            many.put(&format!("{A}{i:02}"), 1000 + i, 0);
        }
        assert_eq!(many.len(), MAX_SESSIONS);
        assert_eq!(many.live(&format!("{A}00"), 0), None, "the oldest went");
        assert!(many.live(&format!("{A}29"), 0).is_some());
    }

    #[test]
    fn prefs_round_trip_and_bad_values_fall_back() {
        let p = Prefs {
            page_size: 50,
            lang: Some("zh-TW".into()),
            skin: Some("dark".into()),
            tz: "+08:00".into(),
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
