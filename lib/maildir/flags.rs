//! Message flags as Maildir file names carry them, and keywords.
//!
//! The part after `:2,` is a list of letters in ASCII order: the system flags
//! `D` draft, `F` flagged, `P` passed (forwarded), `R` replied, `S` seen,
//! `T` trashed (IMAP `\Deleted`), then keyword letters `a`–`z`. Which keyword a
//! letter stands for is kept per folder in `dovecot-keywords`, exactly as
//! Dovecot keeps it (`<index> <name>` a line, index 0 being `a`), so Dovecot
//! and we see the same keywords. Letters we do not know are kept on renames.

use std::fs;
use std::path::Path;

use super::error::{Error, Result};

/// The keyword file in each folder.
pub const KEYWORDS_FILE: &str = "dovecot-keywords";

/// Longest keyword name we store.
const MAX_KEYWORD: usize = 128;

/// The six system flags. `\Recent` is per session, not stored.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Flags(u8);

/// Letter and bit of each system flag, in the order they are written.
const SYSTEM: [(char, u8); 6] = [('D', 1), ('F', 2), ('P', 4), ('R', 8), ('S', 16), ('T', 32)];

impl Flags {
    /// `D`: IMAP `\Draft`.
    pub const DRAFT: Flags = Flags(1);
    /// `F`: IMAP `\Flagged`.
    pub const FLAGGED: Flags = Flags(2);
    /// `P`: passed on (forwarded); IMAP keyword `$Forwarded` in many clients.
    pub const PASSED: Flags = Flags(4);
    /// `R`: IMAP `\Answered`.
    pub const REPLIED: Flags = Flags(8);
    /// `S`: IMAP `\Seen`.
    pub const SEEN: Flags = Flags(16);
    /// `T`: IMAP `\Deleted`.
    pub const TRASHED: Flags = Flags(32);

    /// No flag set.
    pub const fn empty() -> Flags {
        Flags(0)
    }
    /// Whether every flag of `other` is set here.
    pub fn contains(self, other: Flags) -> bool {
        self.0 & other.0 == other.0
    }
    /// Whether no flag is set.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
    /// The flags of both.
    pub fn union(self, other: Flags) -> Flags {
        Flags(self.0 | other.0)
    }
    /// These flags without those of `other`.
    pub fn minus(self, other: Flags) -> Flags {
        Flags(self.0 & !other.0)
    }
    /// The flag for a Maildir letter (`S` → SEEN).
    pub fn from_letter(c: char) -> Option<Flags> {
        SYSTEM.iter().find(|(l, _)| *l == c).map(|(_, b)| Flags(*b))
    }
}

impl std::ops::BitOr for Flags {
    type Output = Flags;
    fn bitor(self, rhs: Flags) -> Flags {
        self.union(rhs)
    }
}

/// System flags plus keyword letters: everything a file name says.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct MailFlags {
    pub flags: Flags,
    /// Bit `i` set: keyword letter `'a' + i`.
    pub keywords: u32,
}

/// How a flag update combines with the flags a message has (IMAP STORE).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlagOp {
    /// `FLAGS`: replace.
    Set,
    /// `+FLAGS`: add.
    Add,
    /// `-FLAGS`: remove.
    Remove,
}

impl MailFlags {
    /// Reads the letters after `:2,`; unknown letters are ignored here (the
    /// file name keeps them, see [`rewrite_info`]).
    pub fn parse(info: &str) -> MailFlags {
        let mut m = MailFlags::default();
        for c in info.chars() {
            if let Some(f) = Flags::from_letter(c) {
                m.flags = m.flags | f;
            } else if c.is_ascii_lowercase() {
                m.keywords |= 1 << (c as u8 - b'a');
            }
        }
        m
    }

    /// The letters for a file name, sorted: `DFPRST` then `a`–`z`.
    pub fn letters(self) -> String {
        let mut s = String::new();
        for (l, b) in SYSTEM {
            if self.flags.0 & b != 0 {
                s.push(l);
            }
        }
        for i in 0..26u8 {
            if self.keywords & (1 << i) != 0 {
                s.push((b'a' + i) as char);
            }
        }
        s
    }

    /// Applies an update.
    pub fn apply(self, op: FlagOp, other: MailFlags) -> MailFlags {
        match op {
            FlagOp::Set => other,
            FlagOp::Add => MailFlags {
                flags: self.flags | other.flags,
                keywords: self.keywords | other.keywords,
            },
            FlagOp::Remove => MailFlags {
                flags: self.flags.minus(other.flags),
                keywords: self.keywords & !other.keywords,
            },
        }
    }
}

/// New info letters for `flags`, keeping letters of `old` we do not know
/// (another program's experimental flags), all in ASCII order.
pub fn rewrite_info(old: &str, flags: MailFlags) -> String {
    let mut letters: Vec<char> = flags.letters().chars().collect();
    letters.extend(old.chars().filter(|c| {
        Flags::from_letter(*c).is_none() && !c.is_ascii_lowercase() && c.is_ascii_graphic()
    }));
    letters.sort_unstable();
    letters.dedup();
    letters.into_iter().collect()
}

/// A folder's keyword names for the letters a–z (`dovecot-keywords`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Keywords {
    names: Vec<Option<String>>,
}

impl Keywords {
    /// Reads `dovecot-keywords` in `dir`; a missing file means no keywords,
    /// bad lines are skipped.
    pub fn load(dir: &Path) -> Result<Keywords> {
        let path = dir.join(KEYWORDS_FILE);
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(Error::io("read", &path, e)),
        };
        let mut k = Keywords::default();
        for line in text.lines() {
            let Some((idx, name)) = line.split_once(' ') else {
                continue;
            };
            match idx.parse::<usize>() {
                Ok(i) if i < 26 && valid_keyword(name) => {
                    if k.names.len() <= i {
                        k.names.resize(i + 1, None);
                    }
                    k.names[i] = Some(name.to_string());
                }
                _ => continue,
            }
        }
        Ok(k)
    }

    /// The name of keyword letter `i` (0 = `a`).
    pub fn name(&self, i: usize) -> Option<&str> {
        self.names.get(i)?.as_deref()
    }

    /// Every defined keyword name (for IMAP's FLAGS and PERMANENTFLAGS).
    pub fn all(&self) -> Vec<&str> {
        self.names.iter().flatten().map(String::as_str).collect()
    }

    /// The names of the keyword bits set in `bits`.
    pub fn names_of(&self, bits: u32) -> Vec<&str> {
        (0..26)
            .filter(|i| bits & (1 << i) != 0)
            .filter_map(|i| self.name(i))
            .collect()
    }

    /// The letter index of a keyword (names compare ASCII case-insensitively).
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.names
            .iter()
            .position(|n| n.as_deref().is_some_and(|n| n.eq_ignore_ascii_case(name)))
    }

    /// Bits for `names`, giving new names free letters and writing the file
    /// when it changed. The caller holds the folder's index lock.
    pub(crate) fn ensure(&mut self, dir: &Path, names: &[&str]) -> Result<u32> {
        let mut next = self.clone();
        let mut bits = 0u32;
        let mut changed = false;
        for name in names {
            if !valid_keyword(name) {
                return Err(Error::Keyword(name.to_string()));
            }
            let i = match next.index_of(name) {
                Some(i) => i,
                None => {
                    let free = (0..26)
                        .find(|i| next.name(*i).is_none())
                        .ok_or_else(|| Error::Keyword(name.to_string()))?;
                    if next.names.len() <= free {
                        next.names.resize(free + 1, None);
                    }
                    next.names[free] = Some(name.to_string());
                    changed = true;
                    free
                }
            };
            bits |= 1 << i;
        }
        if changed {
            let mut text = String::new();
            for (i, n) in next.names.iter().enumerate() {
                if let Some(n) = n {
                    text.push_str(&format!("{i} {n}\n"));
                }
            }
            super::write_atomic(&dir.join(KEYWORDS_FILE), text.as_bytes())?;
            *self = next;
        }
        Ok(bits)
    }

    /// Bits for names already known; unknown names are ignored (a `-FLAGS`
    /// of a keyword nobody uses changes nothing).
    pub fn bits_of(&self, names: &[&str]) -> u32 {
        names
            .iter()
            .filter_map(|n| self.index_of(n))
            .fold(0, |b, i| b | (1 << i))
    }
}

/// A keyword we can store: an IMAP atom without `\`, at most 128 bytes.
pub fn valid_keyword(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_KEYWORD
        && name.bytes().all(|b| {
            b.is_ascii_graphic()
                && !matches!(b, b'(' | b')' | b'{' | b'%' | b'*' | b'"' | b'\\' | b']')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_file(dir: &Path) -> String {
        fs::read_to_string(dir.join(KEYWORDS_FILE)).unwrap()
    }

    #[test]
    fn letters_round_trip_sorted() {
        let m = MailFlags::parse("TSRPFDcb");
        assert_eq!(m.letters(), "DFPRSTbc");
        assert!(m.flags.contains(Flags::SEEN | Flags::TRASHED));
        assert_eq!(MailFlags::parse("").letters(), "");
        assert_eq!(MailFlags::parse("S").flags, Flags::SEEN);
    }

    #[test]
    fn ops_apply() {
        let m = MailFlags::parse("Sa");
        let add = MailFlags::parse("Fb");
        assert_eq!(m.apply(FlagOp::Add, add).letters(), "FSab");
        assert_eq!(
            m.apply(FlagOp::Remove, MailFlags::parse("Sa")).letters(),
            ""
        );
        assert_eq!(m.apply(FlagOp::Set, add).letters(), "Fb");
    }

    #[test]
    fn unknown_letters_survive_rewrites() {
        assert_eq!(rewrite_info("SXa", MailFlags::parse("FS")), "FSX");
        assert_eq!(rewrite_info("", MailFlags::parse("TD")), "DT");
    }

    #[test]
    fn keywords_file_as_dovecot_writes_it() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(
            dir.path().join(KEYWORDS_FILE),
            "0 $Forwarded\n2 Work\nbad line\n99 x\n",
        )
        .unwrap();
        let mut k = Keywords::load(dir.path()).unwrap();
        assert_eq!(k.name(0), Some("$Forwarded"));
        assert_eq!(k.name(1), None);
        assert_eq!(k.index_of("work"), Some(2));
        let bits = k.ensure(dir.path(), &["Work", "$Junk"]).unwrap();
        assert_eq!(bits, 0b110);
        assert_eq!(read_file(dir.path()), "0 $Forwarded\n1 $Junk\n2 Work\n");
        assert_eq!(k.names_of(0b101), vec!["$Forwarded", "Work"]);
        assert!(k.ensure(dir.path(), &["bad name"]).is_err());
        let names: Vec<String> = (0..30).map(|i| format!("k{i}")).collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        assert!(matches!(
            k.ensure(dir.path(), &refs),
            Err(Error::Keyword(_))
        ));
        assert_eq!(
            Keywords::load(dir.path())
                .unwrap()
                .bits_of(&["WORK", "nope"]),
            0b100
        );
    }
}
