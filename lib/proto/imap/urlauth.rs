//! GENURLAUTH, RESETKEY and URLFETCH (RFC 4467), with the extended
//! URLFETCH parameters of RFC 5524 (URLAUTH=BINARY). The URLs themselves
//! are parsed by [`super::url`] when the command runs.

use super::lexer::{Cursor, Fail, Res};
use super::types::{CommandBody, UrlFetchArg};
use super::MAX_LIST_ITEMS;

/// The command `verb`, if it belongs to this family.
pub fn parse(verb: &str, c: &mut Cursor) -> Res<Option<CommandBody>> {
    Ok(Some(match verb {
        "GENURLAUTH" => {
            let mut v = Vec::new();
            while c.eat(b" ") {
                if v.len() >= MAX_LIST_ITEMS {
                    return Err(Fail("Too many URLs".into()));
                }
                let rump = c.astring()?;
                c.sp()?;
                v.push((rump, c.atom()?.to_ascii_uppercase()));
            }
            if v.is_empty() {
                return Err(Fail("GENURLAUTH needs a URL and a mechanism".into()));
            }
            CommandBody::GenUrlAuth(v)
        }
        "RESETKEY" => {
            let mut mailbox = None;
            let mut mechanisms = Vec::new();
            if c.eat(b" ") {
                mailbox = Some(c.mailbox()?);
                while c.eat(b" ") {
                    if mechanisms.len() >= MAX_LIST_ITEMS {
                        return Err(Fail("Too many mechanisms".into()));
                    }
                    mechanisms.push(c.atom()?.to_ascii_uppercase());
                }
            }
            CommandBody::ResetKey {
                mailbox,
                mechanisms,
            }
        }
        "URLFETCH" => {
            let mut v = Vec::new();
            while c.eat(b" ") {
                if v.len() >= MAX_LIST_ITEMS {
                    return Err(Fail("Too many URLs".into()));
                }
                v.push(fetch_arg(c)?);
            }
            if v.is_empty() {
                return Err(Fail("URLFETCH needs a URL".into()));
            }
            CommandBody::UrlFetch(v)
        }
        _ => return Ok(None),
    }))
}

/// url-fetch-arg = url / "(" url *(SP param) ")" (RFC 5524 5).
fn fetch_arg(c: &mut Cursor) -> Res<UrlFetchArg> {
    if !c.eat(b"(") {
        return Ok(UrlFetchArg {
            url: c.astring()?,
            ..UrlFetchArg::default()
        });
    }
    let mut a = UrlFetchArg {
        url: c.astring()?,
        extended: true,
        ..UrlFetchArg::default()
    };
    while c.eat(b" ") {
        let p = c.atom()?.to_ascii_uppercase();
        let seen = match p.as_str() {
            "BODY" => std::mem::replace(&mut a.body, true),
            "BINARY" => std::mem::replace(&mut a.binary, true),
            "BODYPARTSTRUCTURE" => std::mem::replace(&mut a.body_part_structure, true),
            _ => return Err(Fail(format!("Unknown URLFETCH parameter {p}"))),
        };
        if seen {
            return Err(Fail(format!("URLFETCH parameter {p} given twice")));
        }
    }
    c.expect(b")")?;
    if a.body && a.binary {
        // RFC 5524 3.1: "clients MUST NOT request both BINARY and BODY".
        return Err(Fail("URLFETCH takes BINARY or BODY, not both".into()));
    }
    Ok(a)
}
