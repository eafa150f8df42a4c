//! Commands of any state and of the not-authenticated state (RFC 3501 6.1,
//! 6.2), with ENABLE (RFC 5161) and ID (RFC 2971).

use super::lexer::{Cursor, Fail, Res};
use super::types::CommandBody;
use super::MAX_LIST_ITEMS;

/// The command `verb`, if it belongs to this family.
pub fn parse(verb: &str, c: &mut Cursor) -> Res<Option<CommandBody>> {
    Ok(Some(match verb {
        "CAPABILITY" => CommandBody::Capability,
        "NOOP" => CommandBody::Noop,
        "LOGOUT" => CommandBody::Logout,
        "STARTTLS" => CommandBody::StartTls,
        "LOGIN" => {
            c.sp()?;
            let user = c.astring()?;
            c.sp()?;
            let password = crate::proto::sasl::Secret::new(c.astring()?);
            CommandBody::Login { user, password }
        }
        "AUTHENTICATE" => {
            c.sp()?;
            let mechanism = c.atom()?.to_ascii_uppercase();
            let initial = if c.eat(b" ") {
                // SASL-IR (RFC 4959): base64 or "=".
                let a = c.atom()?;
                Some(crate::proto::sasl::Secret::from(a))
            } else {
                None
            };
            CommandBody::Authenticate { mechanism, initial }
        }
        "ENABLE" => {
            let mut caps = Vec::new();
            while c.eat(b" ") {
                if caps.len() >= MAX_LIST_ITEMS {
                    return Err(Fail("Too many capabilities".into()));
                }
                caps.push(c.atom()?.to_ascii_uppercase());
            }
            if caps.is_empty() {
                return Err(Fail("ENABLE needs a capability".into()));
            }
            CommandBody::Enable(caps)
        }
        "ID" => {
            c.sp()?;
            if c.eat(b"NIL") {
                CommandBody::Id(None)
            } else {
                c.expect(b"(")?;
                let mut v = Vec::new();
                while !c.eat(b")") {
                    if !v.is_empty() {
                        c.sp()?;
                    }
                    // RFC 2971: at most 30 pairs.
                    if v.len() >= 30 {
                        return Err(Fail("Too many ID fields".into()));
                    }
                    let k = c.string()?;
                    c.sp()?;
                    let val = c.nstring()?;
                    v.push((
                        String::from_utf8_lossy(&k).into_owned(),
                        val.map(|x| String::from_utf8_lossy(&x).into_owned()),
                    ));
                }
                CommandBody::Id(Some(v))
            }
        }
        _ => return Ok(None),
    }))
}
