//! GETMETADATA and SETMETADATA (RFC 5464 4.2 and 4.3).

use super::lexer::{Cursor, Fail, Res};
use super::types::{CommandBody, MetadataDepth};
use super::MAX_LIST_ITEMS;

/// Longest entry name (RFC 5464 sets none; Dovecot allows 200).
pub const MAX_ENTRY_NAME: usize = 200;

/// The command `verb`, if it is one of these.
pub fn parse(verb: &str, c: &mut Cursor) -> Res<Option<CommandBody>> {
    Ok(Some(match verb {
        "GETMETADATA" => {
            c.sp()?;
            let (mut max_size, mut depth) = (None, MetadataDepth::Zero);
            if c.eat(b"(") {
                loop {
                    let o = c.atom()?.to_ascii_uppercase();
                    c.sp()?;
                    match o.as_str() {
                        "MAXSIZE" => max_size = Some(c.number()?),
                        "DEPTH" => {
                            depth = match c.atom()?.to_ascii_lowercase().as_str() {
                                "0" => MetadataDepth::Zero,
                                "1" => MetadataDepth::One,
                                "infinity" => MetadataDepth::Infinity,
                                d => return Err(Fail(format!("Invalid DEPTH {d}"))),
                            }
                        }
                        _ => return Err(Fail(format!("Unknown GETMETADATA option {o}"))),
                    }
                    if c.eat(b")") {
                        break;
                    }
                    c.sp()?;
                }
                c.sp()?;
            }
            let mailbox = c.mailbox()?;
            c.sp()?;
            let mut entries = Vec::new();
            if c.eat(b"(") {
                loop {
                    if entries.len() >= MAX_LIST_ITEMS {
                        return Err(Fail("Too many entries".into()));
                    }
                    entries.push(entry(c)?);
                    if c.eat(b")") {
                        break;
                    }
                    c.sp()?;
                }
            } else {
                entries.push(entry(c)?);
            }
            CommandBody::GetMetadata {
                mailbox,
                entries,
                max_size,
                depth,
            }
        }
        "SETMETADATA" => {
            c.sp()?;
            let mailbox = c.mailbox()?;
            c.sp()?;
            c.expect(b"(")?;
            let mut entries = Vec::new();
            loop {
                if entries.len() >= MAX_LIST_ITEMS {
                    return Err(Fail("Too many entries".into()));
                }
                let name = entry(c)?;
                c.sp()?;
                // value = nstring / literal8 (RFC 5464 5.4).
                let value = c.nstring()?;
                entries.push((name, value));
                if c.eat(b")") {
                    break;
                }
                c.sp()?;
            }
            CommandBody::SetMetadata { mailbox, entries }
        }
        _ => return Ok(None),
    }))
}

/// An entry name, lower-cased (RFC 5464 3.2: "/shared" or "/private"
/// then slash-separated components; no `*`, `%`, `//`, trailing `/` or
/// control characters; names are case-insensitive).
fn entry(c: &mut Cursor) -> Res<String> {
    let raw = c.astring()?;
    let ok = raw.len() <= MAX_ENTRY_NAME
        && raw
            .iter()
            .all(|b| (0x21..0x7f).contains(b) && !b"*%".contains(b))
        && !raw.windows(2).any(|w| w == b"//")
        && !raw.ends_with(b"/");
    let name = String::from_utf8_lossy(&raw).to_ascii_lowercase();
    let top = ["/private", "/shared"]
        .iter()
        .any(|t| name == *t || name.starts_with(&format!("{t}/")));
    if !ok || !top {
        return Err(Fail(format!("Invalid entry name {name:?}")));
    }
    Ok(name)
}
