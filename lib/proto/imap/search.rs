//! SEARCH and UID SEARCH (RFC 3501 6.4.4, RFC 9051 6.4.4), with ESEARCH
//! return options (RFC 4731), SAVE and `$` (RFC 5182), PARTIAL (RFC 9394)
//! and MODSEQ (RFC 7162); SORT and THREAD (RFC 5256, RFC 5957, RFC 5267),
//! which share its keys and return options.

use super::lexer::{Cursor, Fail, Res};
use super::types::{CommandBody, SearchKey, SearchReturn, SortBy, SortCriterion, ThreadAlgorithm};
use super::{MAX_DEPTH, MAX_LIST_ITEMS};

/// SEARCH [RETURN (...)] [CHARSET x] key *(SP key).
pub fn parse(c: &mut Cursor, uid: bool) -> Res<CommandBody> {
    c.sp()?;
    let mut ret = None;
    if c.eat(b"RETURN (") {
        ret = Some(return_options(c)?);
        c.sp()?;
    }
    let mut charset = None;
    if c.eat(b"CHARSET ") {
        charset = Some(c.astring_utf8()?.to_ascii_uppercase());
        c.sp()?;
    }
    let key = keys(c)?;
    Ok(CommandBody::Search {
        uid,
        ret,
        charset,
        key,
    })
}

/// SORT [RETURN (...)] (criteria) charset key *(SP key) (RFC 5256 4,
/// RFC 5267 3.2): unlike SEARCH, the charset is not optional.
pub fn parse_sort(c: &mut Cursor, uid: bool) -> Res<CommandBody> {
    c.sp()?;
    let mut ret = None;
    if c.eat(b"RETURN (") {
        ret = Some(return_options(c)?);
        c.sp()?;
    }
    c.expect(b"(")?;
    let mut criteria = Vec::new();
    loop {
        let mut reverse = false;
        let mut word = c.atom()?.to_ascii_uppercase();
        if word == "REVERSE" {
            reverse = true;
            c.sp()?;
            word = c.atom()?.to_ascii_uppercase();
        }
        let by = match word.as_str() {
            "ARRIVAL" => SortBy::Arrival,
            "CC" => SortBy::Cc,
            "DATE" => SortBy::Date,
            "FROM" => SortBy::From,
            "SIZE" => SortBy::Size,
            "SUBJECT" => SortBy::Subject,
            "TO" => SortBy::To,
            "DISPLAYFROM" => SortBy::DisplayFrom,
            "DISPLAYTO" => SortBy::DisplayTo,
            _ => return Err(Fail(format!("Unknown sort criterion {word}"))),
        };
        if criteria.len() >= 16 {
            return Err(Fail("Too many sort criteria".into()));
        }
        criteria.push(SortCriterion { reverse, by });
        if c.eat(b")") {
            break;
        }
        c.sp()?;
    }
    c.sp()?;
    let charset = c.astring_utf8()?.to_ascii_uppercase();
    c.sp()?;
    let key = keys(c)?;
    Ok(CommandBody::Sort {
        uid,
        ret,
        criteria,
        charset,
        key,
    })
}

/// THREAD algorithm charset key *(SP key) (RFC 5256 4).
pub fn parse_thread(c: &mut Cursor, uid: bool) -> Res<CommandBody> {
    c.sp()?;
    let word = c.atom()?.to_ascii_uppercase();
    let algorithm = match word.as_str() {
        "ORDEREDSUBJECT" => ThreadAlgorithm::OrderedSubject,
        "REFERENCES" => ThreadAlgorithm::References,
        _ => return Err(Fail(format!("Unknown threading algorithm {word}"))),
    };
    c.sp()?;
    let charset = c.astring_utf8()?.to_ascii_uppercase();
    c.sp()?;
    let key = keys(c)?;
    Ok(CommandBody::Thread {
        uid,
        algorithm,
        charset,
        key,
    })
}

/// The options after `RETURN (`, through the `)`. An empty list means ALL
/// (RFC 4731 3.1).
fn return_options(c: &mut Cursor) -> Res<Vec<SearchReturn>> {
    let mut v = Vec::new();
    while !c.eat(b")") {
        if !v.is_empty() {
            c.sp()?;
        }
        let o = c.atom()?.to_ascii_uppercase();
        let opt = match o.as_str() {
            "MIN" => SearchReturn::Min,
            "MAX" => SearchReturn::Max,
            "ALL" => SearchReturn::All,
            "COUNT" => SearchReturn::Count,
            "SAVE" => SearchReturn::Save,
            "UPDATE" => SearchReturn::Update,
            "CONTEXT" => SearchReturn::Context,
            "PARTIAL" => {
                c.sp()?;
                partial_range(c)?
            }
            _ => return Err(Fail(format!("Unknown RETURN option {o}"))),
        };
        // RFC 4731 3.1 and RFC 9394 3: each option at most once.
        let same = |x: &SearchReturn| std::mem::discriminant(x) == std::mem::discriminant(&opt);
        if v.iter().any(same) {
            return Err(Fail(format!("RETURN option {o} given twice")));
        }
        if matches!(opt, SearchReturn::Partial(..)) && v.contains(&SearchReturn::All)
            || opt == SearchReturn::All && v.iter().any(|x| matches!(x, SearchReturn::Partial(..)))
        {
            // RFC 9394 3.1: PARTIAL and ALL are mutually exclusive.
            return Err(Fail("PARTIAL and ALL cannot be combined".into()));
        }
        v.push(opt);
        if v.len() > 8 {
            return Err(Fail("Too many RETURN options".into()));
        }
    }
    if v.is_empty() {
        v.push(SearchReturn::All);
    }
    Ok(v)
}

/// partial-range (RFC 9394 4): `n:m` or `-n:-m`, both ends nonzero and of
/// the same sign; given in either order, kept with the end nearer the
/// start first.
fn partial_range(c: &mut Cursor) -> Res<SearchReturn> {
    let one = |c: &mut Cursor| -> Res<i64> {
        let neg = c.eat(b"-");
        if !c.peek().is_some_and(|b| b.is_ascii_digit()) {
            return Err(Fail("PARTIAL needs a range of numbers".into()));
        }
        let n = c.nz_number()? as i64;
        Ok(if neg { -n } else { n })
    };
    let a = one(c)?;
    c.expect(b":")
        .map_err(|_| Fail("PARTIAL needs a range first:last".into()))?;
    let b = one(c)?;
    if (a < 0) != (b < 0) {
        return Err(Fail("PARTIAL range ends must have the same sign".into()));
    }
    Ok(SearchReturn::Partial(a.min(b), a.max(b)))
}

/// One or more search keys, ANDed.
fn keys(c: &mut Cursor) -> Res<SearchKey> {
    let mut keys = vec![key(c, 0)?];
    while c.eat(b" ") {
        if keys.len() >= MAX_LIST_ITEMS {
            return Err(Fail("Too many search keys".into()));
        }
        keys.push(key(c, 0)?);
    }
    Ok(if keys.len() == 1 {
        keys.remove(0)
    } else {
        SearchKey::And(keys)
    })
}

fn text(c: &mut Cursor) -> Res<String> {
    c.sp()?;
    // Decoding with the CHARSET is the session's job; bytes that are not
    // UTF-8 are kept as Latin-1 here so nothing is lost.
    let b = c.astring()?;
    Ok(match String::from_utf8(b) {
        Ok(s) => s,
        Err(e) => e.into_bytes().iter().map(|b| *b as char).collect(),
    })
}

fn key(c: &mut Cursor, depth: usize) -> Res<SearchKey> {
    if depth >= MAX_DEPTH {
        return Err(Fail("Search keys nested too deeply".into()));
    }
    if c.eat(b"(") {
        let mut v = vec![key(c, depth + 1)?];
        while !c.eat(b")") {
            c.sp()?;
            if v.len() >= MAX_LIST_ITEMS {
                return Err(Fail("Too many search keys".into()));
            }
            v.push(key(c, depth + 1)?);
        }
        return Ok(if v.len() == 1 {
            v.remove(0)
        } else {
            SearchKey::And(v)
        });
    }
    if c.peek()
        .is_some_and(|b| b.is_ascii_digit() || b == b'*' || b == b'$')
    {
        return Ok(SearchKey::SeqSet(c.seq_set()?));
    }
    let word = c.atom()?.to_ascii_uppercase();
    use SearchKey as K;
    Ok(match word.as_str() {
        "ALL" => K::All,
        "ANSWERED" => K::Answered,
        "BCC" => K::Bcc(text(c)?),
        "BEFORE" => {
            c.sp()?;
            K::Before(c.date()?)
        }
        "BODY" => K::Body(text(c)?),
        "CC" => K::Cc(text(c)?),
        "DELETED" => K::Deleted,
        "DRAFT" => K::Draft,
        "FLAGGED" => K::Flagged,
        "FROM" => K::From(text(c)?),
        "HEADER" => {
            let h = text(c)?;
            let v = text(c)?;
            K::Header(h, v)
        }
        "KEYWORD" => {
            c.sp()?;
            K::Keyword(c.atom()?)
        }
        "LARGER" => {
            c.sp()?;
            K::Larger(c.number64()?)
        }
        "NEW" => K::New,
        "NOT" => {
            c.sp()?;
            K::Not(Box::new(key(c, depth + 1)?))
        }
        "OLD" => K::Old,
        "ON" => {
            c.sp()?;
            K::On(c.date()?)
        }
        "OR" => {
            c.sp()?;
            let a = key(c, depth + 1)?;
            c.sp()?;
            let b = key(c, depth + 1)?;
            K::Or(Box::new(a), Box::new(b))
        }
        "RECENT" => K::Recent,
        "SEEN" => K::Seen,
        "SENTBEFORE" => {
            c.sp()?;
            K::SentBefore(c.date()?)
        }
        "SENTON" => {
            c.sp()?;
            K::SentOn(c.date()?)
        }
        "SENTSINCE" => {
            c.sp()?;
            K::SentSince(c.date()?)
        }
        "SINCE" => {
            c.sp()?;
            K::Since(c.date()?)
        }
        "SMALLER" => {
            c.sp()?;
            K::Smaller(c.number64()?)
        }
        "SUBJECT" => K::Subject(text(c)?),
        "TEXT" => K::Text(text(c)?),
        "TO" => K::To(text(c)?),
        "UID" => {
            c.sp()?;
            K::Uid(c.seq_set()?)
        }
        "UNANSWERED" => K::Unanswered,
        "UNDELETED" => K::Undeleted,
        "UNDRAFT" => K::Undraft,
        "UNFLAGGED" => K::Unflagged,
        "UNKEYWORD" => {
            c.sp()?;
            K::Unkeyword(c.atom()?)
        }
        "UNSEEN" => K::Unseen,
        "MODSEQ" => {
            c.sp()?;
            // RFC 7162 3.1.5: `MODSEQ "/flags/\\seen" all 7`. The optional
            // entry name and type are checked and then dropped: a server
            // that keeps no MODSEQ per flag uses the message's own.
            if c.peek() == Some(b'"') {
                modseq_entry(c)?;
            }
            K::ModSeq(c.number64()?)
        }
        _ => return Err(Fail(format!("Unknown search key {word}"))),
    })
}

/// The entry name and type of a MODSEQ search key, and the space after them
/// (RFC 7162 3.1.5: `entry-flag-name SP entry-type-req`).
fn modseq_entry(c: &mut Cursor) -> Res<()> {
    let name = c.string()?;
    let flag = name
        .get(..7)
        .filter(|p| p.eq_ignore_ascii_case(b"/flags/"))
        .map(|_| &name[7..])
        .unwrap_or_default();
    let body = flag.strip_prefix(b"\\").unwrap_or(flag);
    if body.is_empty() || !body.iter().all(|b| super::lexer::is_atom_char(*b)) {
        return Err(Fail("MODSEQ entry must be \"/flags/FLAG\"".into()));
    }
    c.sp()?;
    let kind = c.atom()?.to_ascii_lowercase();
    if !matches!(kind.as_str(), "priv" | "shared" | "all") {
        return Err(Fail("MODSEQ entry type must be priv, shared or all".into()));
    }
    c.sp()
}

#[cfg(test)]
mod tests {
    use crate::proto::imap::*;

    fn body(input: &str) -> CommandBody {
        parse_command(input.as_bytes()).expect(input).body
    }

    fn err(input: &str) -> String {
        parse_command(input.as_bytes()).expect_err(input).message
    }

    #[test]
    fn sort_thread_and_return_options() {
        let c = |reverse, by| SortCriterion { reverse, by };
        let table = [
            (
                "a SORT (REVERSE DATE subject) UTF-8 ALL\r\n",
                CommandBody::Sort {
                    uid: false,
                    ret: None,
                    criteria: vec![c(true, SortBy::Date), c(false, SortBy::Subject)],
                    charset: "UTF-8".into(),
                    key: SearchKey::All,
                },
            ),
            (
                "a UID SORT RETURN (MIN MAX COUNT ALL) (DISPLAYFROM reverse DISPLAYTO SIZE ARRIVAL CC TO FROM) us-ascii UNSEEN 1:3\r\n",
                CommandBody::Sort {
                    uid: true,
                    ret: Some(vec![
                        SearchReturn::Min,
                        SearchReturn::Max,
                        SearchReturn::Count,
                        SearchReturn::All,
                    ]),
                    criteria: vec![
                        c(false, SortBy::DisplayFrom),
                        c(true, SortBy::DisplayTo),
                        c(false, SortBy::Size),
                        c(false, SortBy::Arrival),
                        c(false, SortBy::Cc),
                        c(false, SortBy::To),
                        c(false, SortBy::From),
                    ],
                    charset: "US-ASCII".into(),
                    key: SearchKey::And(vec![
                        SearchKey::Unseen,
                        SearchKey::SeqSet(SeqSet(vec![(SeqNo::Value(1), SeqNo::Value(3))])),
                    ]),
                },
            ),
            (
                "a SORT RETURN () (ARRIVAL) UTF-8 ALL\r\n",
                CommandBody::Sort {
                    uid: false,
                    ret: Some(vec![SearchReturn::All]),
                    criteria: vec![c(false, SortBy::Arrival)],
                    charset: "UTF-8".into(),
                    key: SearchKey::All,
                },
            ),
            (
                "a THREAD REFERENCES UTF-8 ALL\r\n",
                CommandBody::Thread {
                    uid: false,
                    algorithm: ThreadAlgorithm::References,
                    charset: "UTF-8".into(),
                    key: SearchKey::All,
                },
            ),
            (
                "a UID THREAD orderedsubject GB2312 SUBJECT x\r\n",
                CommandBody::Thread {
                    uid: true,
                    algorithm: ThreadAlgorithm::OrderedSubject,
                    charset: "GB2312".into(),
                    key: SearchKey::Subject("x".into()),
                },
            ),
            (
                "a SEARCH RETURN (SAVE PARTIAL 4:2) $\r\n",
                CommandBody::Search {
                    uid: false,
                    ret: Some(vec![SearchReturn::Save, SearchReturn::Partial(2, 4)]),
                    charset: None,
                    key: SearchKey::SeqSet(SeqSet::saved()),
                },
            ),
            (
                "a UID SEARCH RETURN (PARTIAL -1:-100) UID $\r\n",
                CommandBody::Search {
                    uid: true,
                    ret: Some(vec![SearchReturn::Partial(-100, -1)]),
                    charset: None,
                    key: SearchKey::Uid(SeqSet::saved()),
                },
            ),
            (
                "a UID FETCH $ FLAGS\r\n",
                CommandBody::Fetch {
                    uid: true,
                    set: SeqSet::saved(),
                    atts: vec![FetchAtt::Uid, FetchAtt::Flags],
                    changed_since: None,
                    vanished: false,
                },
            ),
        ];
        for (input, want) in table {
            assert_eq!(body(input), want, "{input:?}");
        }
    }

    #[test]
    fn malformed_sort_thread_and_return_options() {
        for (input, why) in [
            ("a SORT (ARRIVAL) ALL\r\n", ""),
            ("a SORT ARRIVAL UTF-8 ALL\r\n", "Expected"),
            ("a SORT () UTF-8 ALL\r\n", ""),
            ("a SORT (REVERSE) UTF-8 ALL\r\n", ""),
            ("a SORT (WEIGHT) UTF-8 ALL\r\n", "Unknown sort criterion"),
            ("a SORT (ARRIVAL) UTF-8\r\n", ""),
            (
                "a THREAD MAGIC UTF-8 ALL\r\n",
                "Unknown threading algorithm",
            ),
            ("a THREAD REFERENCES ALL\r\n", ""),
            ("a SEARCH RETURN (PARTIAL 1) ALL\r\n", "first:last"),
            ("a SEARCH RETURN (PARTIAL 1:*) ALL\r\n", "range of numbers"),
            ("a SEARCH RETURN (PARTIAL *:1) ALL\r\n", "range of numbers"),
            ("a SEARCH RETURN (PARTIAL 0:1) ALL\r\n", "Zero"),
            ("a SEARCH RETURN (PARTIAL -1:2) ALL\r\n", "same sign"),
            (
                "a SEARCH RETURN (PARTIAL 1:2 ALL) ALL\r\n",
                "PARTIAL and ALL",
            ),
            ("a SEARCH RETURN (SAVE SAVE) ALL\r\n", "twice"),
            ("a SEARCH RETURN (FOO) ALL\r\n", "Unknown RETURN option"),
            ("a FETCH $,1 FLAGS\r\n", ""),
            (
                &format!("a SORT ({}) UTF-8 ALL\r\n", ["SIZE"; 17].join(" ")),
                "Too many sort criteria",
            ),
        ] {
            let e = err(input);
            assert!(e.contains(why), "{input:?}: {e}");
        }
    }
}

#[cfg(test)]
mod context_tests {
    use crate::proto::imap::{parse_command, CommandBody, SearchKey};

    fn key(line: &str) -> Result<SearchKey, String> {
        match parse_command(line.as_bytes()) {
            Ok(c) => match c.body {
                CommandBody::Search { key, .. } => Ok(key),
                other => Err(format!("not a search: {other:?}")),
            },
            Err(e) => Err(e.message),
        }
    }

    #[test]
    fn modseq_with_an_entry_name_and_type() {
        for line in [
            "a SEARCH MODSEQ 7\r\n",
            "a SEARCH MODSEQ \"/flags/\\\\Seen\" all 7\r\n",
            "a SEARCH MODSEQ \"/flags/\\\\seen\" PRIV 7\r\n",
            "a SEARCH MODSEQ \"/flags/$Junk\" shared 7\r\n",
        ] {
            assert_eq!(key(line), Ok(SearchKey::ModSeq(7)), "{line}");
        }
        let k = key("a SEARCH RETURN (ALL) 2:3 MODSEQ \"/flags/\\\\seen\" all 0\r\n").unwrap();
        assert!(matches!(&k, SearchKey::And(v) if v[1] == SearchKey::ModSeq(0)));
    }

    #[test]
    fn update_and_context_return_options_and_cancelupdate() {
        use crate::proto::imap::SearchReturn as R;
        let ret = |line: &str| match parse_command(line.as_bytes()).map(|c| c.body) {
            Ok(CommandBody::Search { ret, .. }) => ret,
            other => panic!("{line}: {other:?}"),
        };
        assert_eq!(
            ret("a SEARCH RETURN (UPDATE) SEEN\r\n"),
            Some(vec![R::Update])
        );
        assert_eq!(
            ret("a UID SEARCH RETURN (CONTEXT update COUNT) ALL\r\n"),
            Some(vec![R::Context, R::Update, R::Count])
        );
        let body = |line: &str| parse_command(line.as_bytes()).map(|c| c.body);
        assert_eq!(
            body("a CANCELUPDATE \"a1\" \"b.2\"\r\n"),
            Ok(CommandBody::CancelUpdate(vec!["a1".into(), "b.2".into()]))
        );
        for bad in [
            "a CANCELUPDATE a1\r\n",
            "a CANCELUPDATE\r\n",
            "a UID CANCELUPDATE \"a1\"\r\n",
        ] {
            assert!(body(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn modseq_entry_errors() {
        for line in [
            "a SEARCH MODSEQ \"/flags/\\\\seen\" 7\r\n",
            "a SEARCH MODSEQ \"/flags/\\\\seen\" both 7\r\n",
            "a SEARCH MODSEQ \"/shared/comment\" all 7\r\n",
            "a SEARCH MODSEQ \"/flags/\" all 7\r\n",
            "a SEARCH MODSEQ \"/flags/\\\\seen\" all\r\n",
        ] {
            assert!(key(line).is_err(), "{line}");
        }
    }
}
