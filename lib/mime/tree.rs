//! A parsed message's parts by IMAP section number (RFC 3501 6.4.5): the
//! one numbering kmp-imapd's FETCH `BODY[section]` and the webmail's part
//! links both use.

use mail_parser::{Encoding, Message, PartType};

/// The part at `path` (RFC 3501 6.4.5 numbering): the message it lives in
/// and its index there.
pub fn find<'m>(msg: &'m Message<'m>, path: &[u32]) -> Option<(&'m Message<'m>, usize)> {
    let (mut m, mut id) = (msg, 0usize);
    for (k, &n) in path.iter().enumerate() {
        let cur = m.parts.get(id)?;
        // Below the top, a message/rfc822 part is numbered by its content.
        let (cm, cid) = match (embedded(cur), k > 0) {
            (Some(sub), true) => (sub, 0),
            _ => (m, id),
        };
        match &cm.parts.get(cid)?.body {
            PartType::Multipart(children) => {
                id = *children.get(n as usize - 1)? as usize;
                m = cm;
            }
            _ => {
                if n != 1 {
                    return None;
                }
                m = cm;
                id = cid;
            }
        }
    }
    Some((m, id))
}

/// The message inside a message/rfc822 part, when its offsets are in the
/// stored message. mail-parser also parses a base64 or quoted-printable
/// message/rfc822 part (which RFC 2046 5.2.1 forbids), from the decoded
/// bytes: such a part is a leaf here, so no body section is ever cut from
/// decoded content.
pub fn embedded<'m>(part: &'m mail_parser::MessagePart<'m>) -> Option<&'m Message<'m>> {
    match &part.body {
        PartType::Message(sub) if part.encoding == Encoding::None => Some(sub),
        _ => None,
    }
}
