//! FETCH and UID FETCH (RFC 3501 6.4.5, RFC 9051 6.4.5), with BINARY
//! (RFC 3516) and CHANGEDSINCE (RFC 7162).

use super::lexer::{Cursor, Fail, Res};
use super::types::{CommandBody, FetchAtt, Section, SectionText};
use super::MAX_LIST_ITEMS;

/// FETCH sequence-set (att / macro / "(" att *(SP att) ")") [modifiers].
pub fn parse(c: &mut Cursor, uid: bool) -> Res<CommandBody> {
    c.sp()?;
    let set = c.seq_set()?;
    c.sp()?;
    let mut atts = Vec::new();
    if c.eat(b"(") {
        loop {
            if atts.len() >= MAX_LIST_ITEMS {
                return Err(Fail("Too many FETCH items".into()));
            }
            atts.push(att(c)?);
            if c.eat(b")") {
                break;
            }
            c.sp()?;
        }
    } else if c.eat(b"ALL") {
        atts = vec![
            FetchAtt::Flags,
            FetchAtt::InternalDate,
            FetchAtt::Rfc822Size,
            FetchAtt::Envelope,
        ];
    } else if c.eat(b"FAST") {
        atts = vec![
            FetchAtt::Flags,
            FetchAtt::InternalDate,
            FetchAtt::Rfc822Size,
        ];
    } else if c.eat(b"FULL") {
        atts = vec![
            FetchAtt::Flags,
            FetchAtt::InternalDate,
            FetchAtt::Rfc822Size,
            FetchAtt::Envelope,
            FetchAtt::Body,
        ];
    } else {
        atts.push(att(c)?);
    }
    let mut changed_since = None;
    let mut vanished = false;
    if c.eat(b" (") {
        loop {
            let m = c.atom()?.to_ascii_uppercase();
            match m.as_str() {
                "CHANGEDSINCE" => {
                    c.sp()?;
                    changed_since = Some(c.number64()?);
                }
                // RFC 7162 3.2.6: only with UID FETCH and CHANGEDSINCE; the
                // session checks that QRESYNC is on.
                "VANISHED" if uid => vanished = true,
                _ => return Err(Fail(format!("Unknown FETCH modifier {m}"))),
            }
            if c.eat(b")") {
                break;
            }
            c.sp()?;
        }
    }
    if vanished && changed_since.is_none() {
        return Err(Fail("VANISHED needs CHANGEDSINCE".into()));
    }
    if uid && !atts.contains(&FetchAtt::Uid) {
        // RFC 3501 6.4.8: UID FETCH always returns the UID.
        atts.insert(0, FetchAtt::Uid);
    }
    if changed_since.is_some() && !atts.contains(&FetchAtt::ModSeq) {
        atts.push(FetchAtt::ModSeq);
    }
    Ok(CommandBody::Fetch {
        uid,
        set,
        atts,
        changed_since,
        vanished,
    })
}

pub(super) fn att(c: &mut Cursor) -> Res<FetchAtt> {
    // Longest names first where one is a prefix of another.
    let simple: &[(&[u8], FetchAtt)] = &[
        (b"FLAGS", FetchAtt::Flags),
        (b"UID", FetchAtt::Uid),
        (b"INTERNALDATE", FetchAtt::InternalDate),
        (b"RFC822.SIZE", FetchAtt::Rfc822Size),
        (b"RFC822.HEADER", FetchAtt::Rfc822Header),
        (b"RFC822.TEXT", FetchAtt::Rfc822Text),
        (b"ENVELOPE", FetchAtt::Envelope),
        (b"BODYSTRUCTURE", FetchAtt::BodyStructure),
        (b"MODSEQ", FetchAtt::ModSeq),
    ];
    for (name, a) in simple {
        if c.eat(name) {
            return Ok(a.clone());
        }
    }
    if c.eat(b"RFC822") {
        return Ok(FetchAtt::Rfc822);
    }
    if c.eat(b"BINARY.SIZE[") {
        let part = part_path(c)?;
        c.expect(b"]")?;
        return Ok(FetchAtt::BinarySize(part));
    }
    if c.eat(b"BINARY") {
        let peek = c.eat(b".PEEK");
        c.expect(b"[")?;
        let part = part_path(c)?;
        c.expect(b"]")?;
        let partial = partial(c)?;
        return Ok(FetchAtt::Binary {
            peek,
            part,
            partial,
        });
    }
    if c.eat(b"BODY") {
        let peek = c.eat(b".PEEK");
        if !c.eat(b"[") {
            if peek {
                return Err(Fail("BODY.PEEK needs a section".into()));
            }
            return Ok(FetchAtt::Body);
        }
        let section = section(c)?;
        c.expect(b"]")?;
        let partial = partial(c)?;
        return Ok(FetchAtt::Section {
            peek,
            section,
            partial,
        });
    }
    Err(Fail("Unknown FETCH item".into()))
}

/// `1.2.3` before an optional `.TEXT`-like specifier.
fn part_path(c: &mut Cursor) -> Res<Vec<u32>> {
    let mut part = Vec::new();
    while c.peek().is_some_and(|b| b.is_ascii_digit()) {
        if part.len() >= 64 {
            return Err(Fail("Section path too deep".into()));
        }
        part.push(c.nz_number()?);
        if !c.eat(b".") {
            break;
        }
    }
    Ok(part)
}

pub(super) fn section(c: &mut Cursor) -> Res<Section> {
    let part = part_path(c)?;
    let text = if c.eat(b"HEADER.FIELDS.NOT") {
        Some(SectionText::HeaderFieldsNot(header_list(c)?))
    } else if c.eat(b"HEADER.FIELDS") {
        Some(SectionText::HeaderFields(header_list(c)?))
    } else if c.eat(b"HEADER") {
        Some(SectionText::Header)
    } else if c.eat(b"TEXT") {
        Some(SectionText::Text)
    } else if c.eat(b"MIME") {
        if part.is_empty() {
            return Err(Fail("MIME needs a part number".into()));
        }
        Some(SectionText::Mime)
    } else {
        None
    };
    Ok(Section { part, text })
}

fn header_list(c: &mut Cursor) -> Res<Vec<String>> {
    c.sp()?;
    c.expect(b"(")?;
    let mut v = Vec::new();
    loop {
        if v.len() >= MAX_LIST_ITEMS {
            return Err(Fail("Too many header names".into()));
        }
        v.push(String::from_utf8_lossy(&c.astring()?).into_owned());
        if c.eat(b")") {
            return Ok(v);
        }
        c.sp()?;
    }
}

fn partial(c: &mut Cursor) -> Res<Option<(u32, u32)>> {
    if !c.eat(b"<") {
        return Ok(None);
    }
    let start = c.number()?;
    c.expect(b".")?;
    let len = c.nz_number()?;
    c.expect(b">")?;
    Ok(Some((start, len)))
}
