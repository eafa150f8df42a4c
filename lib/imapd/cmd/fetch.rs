//! FETCH and UID FETCH (RFC 3501 6.4.5 and 6.4.8, RFC 9051 6.4.5), with
//! BINARY (RFC 3516), CHANGEDSINCE (RFC 7162 3.1.4) and VANISHED (3.2.6).

use crate::proto::imap::response::{self, BodyName, Code, Data, FetchItem, Response, Status};
use std::io;

use super::{resolve, seq_in_range};
use crate::imapd::message;
use crate::imapd::session::{Action, Out, Session, State};
use crate::imapd::store::{MsgFlags, StoreError, Stored, SysFlags};
use crate::imapd::view::flag_names;
use crate::proto::imap::{FetchAtt, SectionText, SeqSet, StoreMode};

/// How much of a message's file an attribute needs, least first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Need {
    /// Answered from the folder's state (FLAGS, UID, sizes, dates).
    Nothing,
    /// The header only: the file is read up to the blank line.
    Header,
    /// Bytes of the whole message in order (BODY[], BODY[TEXT], RFC822,
    /// BINARY[]): streamed from the file in pieces, never whole in memory.
    Stream,
    /// The MIME structure (BODYSTRUCTURE, parts): the whole message, parsed.
    Whole,
}

fn need(a: &FetchAtt) -> Need {
    match a {
        FetchAtt::Flags
        | FetchAtt::Uid
        | FetchAtt::InternalDate
        | FetchAtt::Rfc822Size
        | FetchAtt::ModSeq => Need::Nothing,
        FetchAtt::Envelope | FetchAtt::Rfc822Header => Need::Header,
        FetchAtt::Section { section, .. } if section.part.is_empty() => match section.text {
            Some(SectionText::Header)
            | Some(SectionText::HeaderFields(_))
            | Some(SectionText::HeaderFieldsNot(_)) => Need::Header,
            None | Some(SectionText::Text) => Need::Stream,
            Some(SectionText::Mime) => Need::Whole,
        },
        FetchAtt::Rfc822 | FetchAtt::Rfc822Text => Need::Stream,
        FetchAtt::Binary { part, .. } if part.is_empty() => Need::Stream,
        _ => Need::Whole,
    }
}

fn sets_seen(a: &FetchAtt) -> bool {
    matches!(
        a,
        FetchAtt::Rfc822
            | FetchAtt::Rfc822Text
            | FetchAtt::Section { peek: false, .. }
            | FetchAtt::Binary { peek: false, .. }
    )
}

#[allow(clippy::too_many_arguments)]
pub fn fetch(
    s: &mut Session,
    tag: &str,
    uid: bool,
    set: &SeqSet,
    atts: &[FetchAtt],
    changed_since: Option<u64>,
    vanished: bool,
    out: &mut Out,
) -> io::Result<Action> {
    if vanished && !s.enabled.qresync {
        // RFC 7162 3.2.6: "MUST respond with a tagged BAD" without ENABLE.
        return Ok(s.bad(tag, "ENABLE QRESYNC first", out));
    }
    if changed_since.is_some() || atts.contains(&FetchAtt::ModSeq) {
        super::select::enable_condstore(s, out);
    }
    let enabled = s.enabled;
    let State::Selected(_, view) = &mut s.state else {
        return Ok(Action::None);
    };
    if !uid && !seq_in_range(view, set) {
        out.send(Response::bad(tag, "Invalid message number"));
        return Ok(Action::None);
    }
    let level = atts.iter().map(need).max().unwrap_or(Need::Nothing);
    let content = level > Need::Nothing;
    let wants_header = atts.iter().any(|a| need(a) == Need::Header);
    let mark_seen = !view.read_only && atts.iter().any(sets_seen);
    let mut atts = atts.to_vec();
    if enabled.condstore && !atts.contains(&FetchAtt::ModSeq) {
        atts.push(FetchAtt::ModSeq);
    }
    if enabled.qresync && !atts.contains(&FetchAtt::Uid) {
        // With QRESYNC every FETCH names its UID (RFC 7162 3.2.4), so a
        // client keyed by UID never has to map numbers.
        atts.insert(0, FetchAtt::Uid);
    }
    // RFC 2180 4.1 and RFC 9051 7.1 (EXPUNGEISSUED): a message another
    // session expunged is answered from the view where the view has the
    // data (FLAGS, UID, sizes) and left out where it needs the file; the
    // command still succeeds for every message that remains, as Dovecot
    // answers. Only a failure to read a message that exists is a NO.
    if let (true, Some(since)) = (vanished, changed_since) {
        // RFC 7162 3.2.6: the UIDs of the set expunged since CHANGEDSINCE,
        // before the FETCH responses.
        let v = super::select::vanished_earlier(view, since, Some(set), None);
        if !v.is_empty() {
            let uids = super::uid_set(&v);
            out.send(Response::Data(Data::Vanished {
                earlier: true,
                uids: &uids,
            }));
        }
    }
    let mut gone = false;
    let mut unreadable = None;
    let mut unknown_cte = false;
    for i in resolve(view, set, uid) {
        if let Some(c) = changed_since {
            if view.msgs[i].meta.modseq <= c {
                continue;
            }
        }
        if view.msgs[i].ghost && content {
            gone = true;
            continue;
        }
        let meta_uid = view.msgs[i].meta.uid;
        // The whole message in memory only when its MIME structure is
        // needed; otherwise its header, and a file to stream from.
        let (raw, mut file) = match read(view, i, level, wants_header) {
            Ok(r) => r,
            Err(StoreError::Gone) => {
                gone = true;
                continue;
            }
            Err(e) => {
                unreadable = Some(e);
                continue;
            }
        };
        let mut flags_changed = false;
        if mark_seen && !view.msgs[i].meta.flags.sys.has(SysFlags::SEEN) {
            let mut seen = MsgFlags::default();
            seen.sys.0 |= SysFlags::SEEN;
            if let Ok([Stored::Done { flags, modseq, .. }]) = view
                .folder
                .store_flags(&[meta_uid], StoreMode::Add, &seen, None)
                .as_deref()
            {
                let (flags, modseq) = (flags.clone(), *modseq);
                view.set_local_flags(i, flags, modseq);
                flags_changed = true;
            }
        }
        let parsed = if content && (level == Need::Whole || wants_header) {
            message::parse(&raw)
        } else {
            None
        };
        let meta = &view.msgs[i].meta;
        let flags = || FetchItem::Flags(flag_names(&meta.flags, meta.recent && !enabled.rev2));
        let mut line = Vec::new();
        response::fetch_open(&mut line, i as u32 + 1);
        let mut first = true;
        let mut wrote_flags = false;
        let mut bad_cte = false;
        for a in &atts {
            if let (Some((w, sh)), Need::Stream) = (file.as_mut(), need(a)) {
                stream_att(out, &mut line, first, a, w, sh)?;
                first = false;
                continue;
            }
            let data;
            let item = match a {
                FetchAtt::Flags => {
                    wrote_flags = true;
                    flags()
                }
                FetchAtt::Uid => FetchItem::Uid(meta.uid),
                FetchAtt::InternalDate => FetchItem::InternalDate(meta.internal_date, 0),
                FetchAtt::Rfc822Size => FetchItem::Rfc822Size(meta.size),
                FetchAtt::ModSeq => FetchItem::ModSeq(meta.modseq.max(1)),
                FetchAtt::Envelope => {
                    FetchItem::Envelope(message::envelope(parsed.as_ref(), enabled.utf8))
                }
                FetchAtt::BodyStructure => FetchItem::Structure {
                    ext: true,
                    value: message::body_structure(parsed.as_ref(), &raw, true),
                },
                FetchAtt::Body => FetchItem::Structure {
                    ext: false,
                    value: message::body_structure(parsed.as_ref(), &raw, false),
                },
                FetchAtt::Rfc822 => FetchItem::Literal {
                    name: BodyName::Rfc822,
                    origin: None,
                    data: &raw,
                },
                FetchAtt::Rfc822Header => FetchItem::Literal {
                    name: BodyName::Rfc822Header,
                    origin: None,
                    data: &raw[..message::header_end(&raw)],
                },
                FetchAtt::Rfc822Text => FetchItem::Literal {
                    name: BodyName::Rfc822Text,
                    origin: None,
                    data: &raw[message::header_end(&raw)..],
                },
                FetchAtt::Section {
                    section, partial, ..
                } => {
                    data = message::section(&raw, parsed.as_ref(), section).unwrap_or_default();
                    FetchItem::Literal {
                        name: BodyName::Body(section),
                        origin: partial.map(|p| p.0),
                        data: cut(&data, *partial),
                    }
                }
                FetchAtt::Binary { part, partial, .. } => {
                    let Ok(d) = message::binary(&raw, parsed.as_ref(), part) else {
                        bad_cte = true;
                        break;
                    };
                    data = d;
                    FetchItem::Literal {
                        name: BodyName::Binary(part),
                        origin: partial.map(|p| p.0),
                        data: cut(&data, *partial),
                    }
                }
                FetchAtt::BinarySize(part) => {
                    let Ok(d) = message::binary(&raw, parsed.as_ref(), part) else {
                        bad_cte = true;
                        break;
                    };
                    FetchItem::BinarySize {
                        section: &join(part),
                        size: d.len() as u64,
                    }
                }
            };
            response::fetch_next(&mut line, &item, first);
            first = false;
        }
        if flags_changed && !wrote_flags {
            response::fetch_next(&mut line, &flags(), first);
        }
        if bad_cte {
            unknown_cte = true;
            // RFC 3516 4.2: a section we cannot decode fails the command
            // with UNKNOWN-CTE; this message's half-built response is dropped.
            continue;
        }
        response::fetch_close(&mut line);
        out.buf.extend_from_slice(&line);
        out.maybe_flush()?;
    }
    // No EXPUNGE while answering FETCH; UID FETCH may (RFC 3501 7.4.1).
    view.sync(out, uid, enabled);
    if unknown_cte {
        out.send(Response::no(
            tag,
            Some(Code::UnknownCte),
            "Can not decode a section's Content-Transfer-Encoding",
        ));
        return Ok(Action::None);
    }
    if let Some(e) = unreadable {
        super::store_error(out, tag, &e);
    } else if gone {
        out.send(Response::tagged(
            tag,
            Status::Ok,
            Some(Code::ExpungeIssued),
            "Some messages were expunged",
        ));
    } else {
        out.send(Response::ok(tag, "FETCH completed"));
    }
    Ok(Action::None)
}

/// What FETCH reads of message `i` for `level`: the bytes it keeps in
/// memory in wire form (the whole message for [`Need::Whole`], else the
/// header when `header`), and for [`Need::Stream`] the open file with its
/// shape, to stream from.
#[allow(clippy::type_complexity)]
fn read(
    view: &mut crate::imapd::view::View,
    i: usize,
    level: Need,
    header: bool,
) -> Result<(Vec<u8>, Option<(message::WireFile, message::Shape)>), StoreError> {
    let (uid, size) = (view.msgs[i].meta.uid, view.msgs[i].meta.size);
    match level {
        Need::Nothing => Ok((Vec::new(), None)),
        Need::Whole => Ok((message::wire(view.folder.read(uid)?, size), None)),
        Need::Header | Need::Stream => {
            let io = |e: io::Error| StoreError::Temporary(format!("reading message {uid}: {e}"));
            let mut w = message::WireFile::new(view.folder.open_message(uid)?, size).map_err(io)?;
            let raw = if header {
                w.header().map_err(io)?
            } else {
                Vec::new()
            };
            if level == Need::Header {
                return Ok((raw, None));
            }
            let sh = w.shape().map_err(io)?;
            Ok((raw, Some((w, sh))))
        }
    }
}

/// Answers an attribute of [`Need::Stream`] from the file.
fn stream_att(
    out: &mut Out,
    line: &mut Vec<u8>,
    first: bool,
    a: &FetchAtt,
    w: &mut message::WireFile,
    sh: &message::Shape,
) -> io::Result<()> {
    let (whole, text) = ((0, sh.size), (sh.header, sh.size));
    let (name, range, partial) = match a {
        FetchAtt::Rfc822 => (BodyName::Rfc822, whole, None),
        FetchAtt::Rfc822Text => (BodyName::Rfc822Text, text, None),
        FetchAtt::Section {
            section, partial, ..
        } => {
            let r = if section.text.is_none() { whole } else { text };
            (BodyName::Body(section), r, *partial)
        }
        FetchAtt::Binary { partial, .. } => (BodyName::Binary(&[]), whole, *partial),
        // Not of Need::Stream.
        _ => return Ok(()),
    };
    stream(out, line, first, name, w, range, partial, sh.nul)
}

/// Writes the item's head (`NAME<start> {n}`, through the encoder) and
/// bytes `range` of the message (cut to `partial`) from the file, in
/// pieces, through `out`: what the line has so far goes first. The encoder
/// decides `~{n}` for BINARY data holding a NUL (`nul`, RFC 3516 4.2); a
/// `{n}` literal carries a NUL as 0x80 (`encode::literal`).
#[allow(clippy::too_many_arguments)]
fn stream(
    out: &mut Out,
    line: &mut Vec<u8>,
    first: bool,
    name: BodyName,
    w: &mut message::WireFile,
    range: (u64, u64),
    partial: Option<(u32, u32)>,
    nul: bool,
) -> io::Result<()> {
    let (mut a, mut b) = range;
    if let Some((start, len)) = partial {
        a = (a + start as u64).min(b);
        b = (a + len as u64).min(b);
    }
    let n = b - a;
    let item = FetchItem::LiteralHead {
        name,
        origin: partial.map(|p| p.0),
        len: n,
        nul,
    };
    response::fetch_next(line, &item, first);
    out.buf.append(line);
    let mut sent = 0u64;
    w.copy_range(
        a,
        b,
        !response::literal8(&name, nul),
        &mut |piece: &[u8]| {
            sent += piece.len() as u64;
            out.buf.extend_from_slice(piece);
            out.maybe_flush()
        },
    )?;
    // The file is read-only once written, so this is only a guard: the
    // literal must be as long as announced, or the connection is lost.
    if sent < n {
        out.buf.resize(out.buf.len() + (n - sent) as usize, b' ');
    }
    Ok(())
}

fn join(part: &[u32]) -> String {
    part.iter()
        .map(|p| p.to_string())
        .collect::<Vec<_>>()
        .join(".")
}

/// The bytes `<start.len>` of a partial FETCH asks, cut to the data.
fn cut(data: &[u8], partial: Option<(u32, u32)>) -> &[u8] {
    match partial {
        Some((start, len)) => {
            let a = (start as usize).min(data.len());
            let b = a.saturating_add(len as usize).min(data.len());
            &data[a..b]
        }
        None => data,
    }
}
