//! Comparators (RFC 4790: i;octet, i;ascii-casemap, i;ascii-numeric) and
//! match types (RFC 5228 2.7.1: :is, :contains, :matches; RFC 5231:
//! :value and :count with a relation).

use std::cmp::Ordering;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparator {
    Octet,
    AsciiCasemap,
    AsciiNumeric,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Relation {
    Gt,
    Ge,
    Lt,
    Le,
    Eq,
    Ne,
}

impl Relation {
    pub fn parse(s: &str) -> Option<Relation> {
        Some(match s.to_ascii_lowercase().as_str() {
            "gt" => Relation::Gt,
            "ge" => Relation::Ge,
            "lt" => Relation::Lt,
            "le" => Relation::Le,
            "eq" => Relation::Eq,
            "ne" => Relation::Ne,
            _ => return None,
        })
    }

    pub fn holds(self, o: Ordering) -> bool {
        match self {
            Relation::Gt => o == Ordering::Greater,
            Relation::Ge => o != Ordering::Less,
            Relation::Lt => o == Ordering::Less,
            Relation::Le => o != Ordering::Greater,
            Relation::Eq => o == Ordering::Equal,
            Relation::Ne => o != Ordering::Equal,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchKind {
    Is,
    Contains,
    Matches,
    Value(Relation),
    Count(Relation),
}

/// A match type with its comparator, as a test's tagged arguments give it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Match {
    pub kind: MatchKind,
    pub cmp: Comparator,
}

impl Default for Match {
    fn default() -> Match {
        Match {
            kind: MatchKind::Is,
            cmp: Comparator::AsciiCasemap,
        }
    }
}

impl Comparator {
    pub fn parse(name: &str) -> Option<Comparator> {
        match name {
            "i;octet" => Some(Comparator::Octet),
            "i;ascii-casemap" => Some(Comparator::AsciiCasemap),
            "i;ascii-numeric" => Some(Comparator::AsciiNumeric),
            _ => None,
        }
    }

    /// Ordering of two values (for :is and :value).
    pub fn order(self, a: &str, b: &str) -> Ordering {
        match self {
            Comparator::Octet => a.as_bytes().cmp(b.as_bytes()),
            Comparator::AsciiCasemap => {
                let a = a.bytes().map(|c| c.to_ascii_uppercase());
                let b = b.bytes().map(|c| c.to_ascii_uppercase());
                a.cmp(b)
            }
            Comparator::AsciiNumeric => numeric_order(a, b),
        }
    }

    fn eq_char(self, a: char, b: char) -> bool {
        match self {
            Comparator::AsciiCasemap => a.eq_ignore_ascii_case(&b),
            _ => a == b,
        }
    }

    /// Whether the comparator supports substring operations (RFC 4790 4.2:
    /// i;ascii-numeric offers equality and ordering only).
    pub fn substring(self) -> bool {
        self != Comparator::AsciiNumeric
    }
}

/// RFC 4790 9.1.1: the leading digits as a number; a string that does not
/// start with a digit is positive infinity.
fn numeric_order(a: &str, b: &str) -> Ordering {
    fn digits(s: &str) -> Option<&str> {
        let end = s.bytes().take_while(|c| c.is_ascii_digit()).count();
        if end == 0 {
            return None;
        }
        let d = s[..end].trim_start_matches('0');
        Some(d)
    }
    match (digits(a), digits(b)) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Greater,
        (Some(_), None) => Ordering::Less,
        (Some(x), Some(y)) => x.len().cmp(&y.len()).then_with(|| x.cmp(y)),
    }
}

/// Does `value` match `key` (not for :count, which counts values)? With
/// :matches, `caps` receives the whole value and each wildcard's text.
pub fn matches(m: &Match, value: &str, key: &str, caps: Option<&mut Vec<String>>) -> bool {
    match m.kind {
        MatchKind::Is => m.cmp.order(value, key) == Ordering::Equal,
        MatchKind::Value(r) => r.holds(m.cmp.order(value, key)),
        MatchKind::Count(_) => false,
        MatchKind::Contains => contains(m.cmp, value, key),
        MatchKind::Matches => glob(m.cmp, value, key, caps),
    }
}

fn contains(cmp: Comparator, hay: &str, needle: &str) -> bool {
    match cmp {
        Comparator::AsciiCasemap => {
            let (h, n) = (hay.as_bytes(), needle.as_bytes());
            n.is_empty() || h.windows(n.len()).any(|w| w.eq_ignore_ascii_case(n))
        }
        _ => hay.contains(needle),
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum G {
    Star,
    One,
    Ch(char),
}

/// RFC 5228 2.7.1 `:matches`: "*" any sequence, "?" one character, "\"
/// quotes the next. Each "*" takes as little as it can (RFC 5229 3.2);
/// linear backtracking to the last star only, so hostile patterns stay
/// O(n·m).
fn glob(cmp: Comparator, value: &str, pattern: &str, caps: Option<&mut Vec<String>>) -> bool {
    let mut pat = Vec::new();
    let mut it = pattern.chars();
    while let Some(c) = it.next() {
        pat.push(match c {
            '*' => G::Star,
            '?' => G::One,
            '\\' => match it.next() {
                Some(n) => G::Ch(n),
                None => G::Ch('\\'),
            },
            c => G::Ch(c),
        });
    }
    let v: Vec<char> = value.chars().collect();
    // For each wildcard: (start, end) in v.
    let wild = pat.iter().filter(|g| !matches!(g, G::Ch(_))).count();
    let mut spans: Vec<(usize, usize)> = vec![(0, 0); wild];
    let wild_index: Vec<usize> = {
        let mut n = 0;
        pat.iter()
            .map(|g| {
                let i = n;
                if !matches!(g, G::Ch(_)) {
                    n += 1;
                }
                i
            })
            .collect()
    };
    let (mut p, mut i) = (0usize, 0usize);
    let mut back: Option<(usize, usize)> = None; // (star pattern index, value index it resumes at)
    loop {
        if p < pat.len() {
            match pat[p] {
                G::Star => {
                    spans[wild_index[p]] = (i, i);
                    back = Some((p, i));
                    p += 1;
                    continue;
                }
                G::One if i < v.len() => {
                    spans[wild_index[p]] = (i, i + 1);
                    p += 1;
                    i += 1;
                    continue;
                }
                G::Ch(c) if i < v.len() && cmp.eq_char(v[i], c) => {
                    p += 1;
                    i += 1;
                    continue;
                }
                _ => {}
            }
        } else if i == v.len() {
            break;
        }
        // Mismatch: let the last star take one more character.
        match back {
            Some((sp, si)) if si < v.len() => {
                back = Some((sp, si + 1));
                spans[wild_index[sp]] = (spans[wild_index[sp]].0, si + 1);
                p = sp + 1;
                i = si + 1;
            }
            _ => return false,
        }
    }
    if let Some(caps) = caps {
        caps.clear();
        caps.push(value.to_string());
        for (a, b) in spans {
            caps.push(v[a..b].iter().collect());
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(kind: MatchKind, cmp: Comparator) -> Match {
        Match { kind, cmp }
    }

    #[test]
    fn is_and_contains() {
        let cm = m(MatchKind::Is, Comparator::AsciiCasemap);
        assert!(matches(&cm, "Hello", "hELLO", None));
        assert!(!matches(
            &m(MatchKind::Is, Comparator::Octet),
            "Hello",
            "hello",
            None
        ));
        let c = m(MatchKind::Contains, Comparator::AsciiCasemap);
        assert!(matches(&c, "会议通知 Meeting", "meeting", None));
        assert!(matches(&c, "会议通知", "通知", None));
        assert!(matches(&c, "x", "", None));
    }

    #[test]
    fn globs_and_captures() {
        let g = m(MatchKind::Matches, Comparator::AsciiCasemap);
        let mut caps = Vec::new();
        assert!(matches(&g, "[list] hello world", "[*] *", Some(&mut caps)));
        assert_eq!(caps, vec!["[list] hello world", "list", "hello world"]);
        assert!(matches(&g, "a@b.c", "*@*", Some(&mut caps)));
        assert_eq!(caps[1..], ["a".to_string(), "b.c".to_string()]);
        assert!(matches(&g, "中文abc", "??a*", Some(&mut caps)));
        assert_eq!(
            caps[1..],
            ["中".to_string(), "文".to_string(), "bc".to_string()]
        );
        assert!(!matches(&g, "abc", "a?", None));
        assert!(matches(&g, "a*c", "a\\*c", None));
        assert!(!matches(&g, "abc", "a\\*c", None));
        assert!(matches(&g, "", "*", None));
        assert!(matches(&g, "aXbXc", "*X*", Some(&mut caps)));
        assert_eq!(caps[1..], ["a".to_string(), "bXc".to_string()]);
        let long = "a".repeat(5000);
        assert!(!matches(&g, &long, "*a*a*a*a*b", None));
    }

    #[test]
    fn numeric() {
        let n = |r| m(MatchKind::Value(r), Comparator::AsciiNumeric);
        assert!(matches(&n(Relation::Gt), "10", "9", None));
        assert!(matches(&n(Relation::Eq), "007", "7", None));
        assert!(matches(&n(Relation::Gt), "abc", "99999", None));
        assert!(matches(&n(Relation::Eq), "x", "y", None));
        assert!(matches(&n(Relation::Lt), "3 apples", "4", None));
        let s = m(MatchKind::Value(Relation::Gt), Comparator::AsciiCasemap);
        assert!(matches(&s, "b", "A", None));
    }
}
