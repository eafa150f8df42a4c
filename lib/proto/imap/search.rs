//! SEARCH and UID SEARCH (RFC 3501 6.4.4, RFC 9051 6.4.4), with ESEARCH
//! return options (RFC 4731) and MODSEQ (RFC 7162).

use super::lexer::{Cursor, Fail, Res};
use super::types::{CommandBody, SearchKey, SearchReturn};
use super::{MAX_DEPTH, MAX_LIST_ITEMS};

/// SEARCH [RETURN (...)] [CHARSET x] key *(SP key).
pub fn parse(c: &mut Cursor, uid: bool) -> Res<CommandBody> {
    c.sp()?;
    let mut ret = None;
    if c.eat(b"RETURN (") {
        let mut v = Vec::new();
        while !c.eat(b")") {
            if !v.is_empty() {
                c.sp()?;
            }
            let o = c.atom()?.to_ascii_uppercase();
            v.push(match o.as_str() {
                "MIN" => SearchReturn::Min,
                "MAX" => SearchReturn::Max,
                "ALL" => SearchReturn::All,
                "COUNT" => SearchReturn::Count,
                "UPDATE" => SearchReturn::Update,
                "CONTEXT" => SearchReturn::Context,
                _ => return Err(Fail(format!("Unknown RETURN option {o}"))),
            });
            if v.len() > 8 {
                return Err(Fail("Too many RETURN options".into()));
            }
        }
        if v.is_empty() {
            v.push(SearchReturn::All);
        }
        ret = Some(v);
        c.sp()?;
    }
    let mut charset = None;
    if c.eat(b"CHARSET ") {
        charset = Some(c.astring_utf8()?.to_ascii_uppercase());
        c.sp()?;
    }
    let mut keys = vec![key(c, 0)?];
    while c.eat(b" ") {
        if keys.len() >= MAX_LIST_ITEMS {
            return Err(Fail("Too many search keys".into()));
        }
        keys.push(key(c, 0)?);
    }
    let key = if keys.len() == 1 {
        keys.remove(0)
    } else {
        SearchKey::And(keys)
    };
    Ok(CommandBody::Search {
        uid,
        ret,
        charset,
        key,
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
    if c.peek().is_some_and(|b| b.is_ascii_digit() || b == b'*') {
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
