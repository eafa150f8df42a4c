//! Queue ids: short, unique, sortable by time, in the manner of Postfix's
//! hexadecimal ids.
//!
//! An id is 17 upper-case hexadecimal digits: 8 for the seconds since the
//! epoch, 5 for the microseconds, 4 random. Sorting ids as strings sorts them
//! by arrival. Uniqueness is checked where it matters: the drop directory
//! creates each file exclusively and links it into place, so two writers
//! that draw the same id in the same microsecond see `EEXIST` and draw again.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The number of hexadecimal digits in an id.
pub const ID_LEN: usize = 17;

/// The id of one queued message, first on every log line about it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct QueueId(String);

impl QueueId {
    /// A fresh id for a message arriving at `now_us` microseconds since the epoch.
    pub fn generate(now_us: u64) -> QueueId {
        let secs = (now_us / 1_000_000) & 0xFFFF_FFFF;
        let micros = now_us % 1_000_000;
        let r: u16 = rand::random();
        QueueId(format!("{secs:08X}{micros:05X}{r:04X}"))
    }

    /// A fresh id for a message arriving now.
    pub fn now() -> QueueId {
        let us = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_micros() as u64)
            .unwrap_or(0);
        QueueId::generate(us)
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The seconds since the epoch the id was made at.
    pub fn seconds(&self) -> u64 {
        u64::from_str_radix(&self.0[..8], 16).unwrap_or(0)
    }
}

impl fmt::Display for QueueId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A string that is not a queue id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a queue id: {0:?}")]
pub struct BadQueueId(pub String);

impl FromStr for QueueId {
    type Err = BadQueueId;

    fn from_str(s: &str) -> Result<QueueId, BadQueueId> {
        // Accept what `mailq` shows after the id too (`*` active, `!` held).
        let t = s.trim_end_matches(['*', '!']);
        if t.len() == ID_LEN && t.bytes().all(|b| b.is_ascii_hexdigit()) {
            Ok(QueueId(t.to_ascii_uppercase()))
        } else {
            Err(BadQueueId(s.to_string()))
        }
    }
}

impl TryFrom<String> for QueueId {
    type Error = BadQueueId;
    fn try_from(s: String) -> Result<QueueId, BadQueueId> {
        s.parse()
    }
}

impl From<QueueId> for String {
    fn from(q: QueueId) -> String {
        q.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_sort_by_time_and_parse_back() {
        let a = QueueId::generate(1_700_000_000_000_001);
        let b = QueueId::generate(1_700_000_000_000_002);
        let c = QueueId::generate(1_700_000_001_000_000);
        assert!(a < b && b < c, "{a} {b} {c}");
        assert_eq!(a.as_str().len(), ID_LEN);
        assert_eq!(a.seconds(), 1_700_000_000);
        assert_eq!(a.to_string().parse::<QueueId>().unwrap(), a);
        let lower = a.as_str().to_ascii_lowercase() + "*";
        assert_eq!(lower.parse::<QueueId>().unwrap(), a);
        for bad in [
            "",
            "XYZ",
            "../../etc/passwd",
            "0123456789ABCDEF",
            "0123456789ABCDEFGH",
        ] {
            assert!(bad.parse::<QueueId>().is_err(), "{bad}");
        }
    }
}
