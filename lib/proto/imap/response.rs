//! What the server sends (RFC 9051 7, RFC 3501 7), typed, and the one
//! place that turns it into bytes.
//!
//! A handler says what it answers, as a [`Response`]; [`write`] decides how
//! it looks on the wire, so no handler has to:
//! - status text stays on its line: CR, LF and NUL in it (an error message
//!   that quotes a file name, a client's own words) become spaces;
//! - mailbox names go out in modified UTF-7 (RFC 3501 5.1.3), or as UTF-8
//!   once the client enabled UTF8=ACCEPT or IMAP4rev2 (RFC 6855 3, RFC 9051:
//!   a quoted string may hold UTF-8), as an atom, a quoted string or a
//!   literal as their bytes allow ([`Wire`]);
//! - strings are atoms, quoted strings or literals as their bytes allow; a
//!   `~{n}` literal8 is written only for BINARY data ([`FetchItem::Binary`],
//!   RFC 3516 4.2), and a `{n}` literal never holds a NUL
//!   ([`encode::literal`]);
//! - flags are written only when they are flags (`\Word` or an atom): a
//!   keyword read from another program's file that is not one is left out
//!   rather than break the line.
//!
//! - ENVELOPE and BODYSTRUCTURE are [`Value`] trees (NIL, number, string,
//!   list) that `imapd::message` builds and [`value`] writes;
//! - FETCH body items are named here ([`BodyName`]: `RFC822.TEXT`,
//!   `BODY[1.HEADER.FIELDS (A B)]`, `BINARY[1.2]`, with their `<origin>`).
//!
//! Every reply goes through here, FETCH's and URLFETCH's too. A large body
//! (BODY[], BINARY[], RFC822) is not copied into memory for it: FETCH
//! writes its response item by item ([`fetch_open`], [`fetch_next`],
//! [`fetch_close`]), and for such a body the encoder writes only the head,
//! `NAME<origin> {n}` ([`FetchItem::LiteralHead`]), after which FETCH copies
//! the n bytes from the message file.

use super::encode;
use super::lexer::is_atom_char;
use super::types::{Section, SectionText, StatusItem};

/// How this session's strings go on the wire (ENABLE changes it).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Wire {
    /// UTF8=ACCEPT or IMAP4rev2 is on: mailbox names as UTF-8.
    pub utf8: bool,
}

/// A status response's word (RFC 9051 7.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok,
    No,
    Bad,
    Bye,
    PreAuth,
}

/// A response code, the bracketed part of a status response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Code<'a> {
    // RFC 9051 7.1.
    Alert,
    Parse,
    ReadOnly,
    ReadWrite,
    TryCreate,
    UidNext(u32),
    UidValidity(u32),
    Unseen(u32),
    /// The flags a STORE may set; `\*` when keywords may be made.
    PermanentFlags(Vec<&'a str>),
    /// The capability list, space-separated.
    Capability(&'a str),
    HasChildren,
    // RFC 4315 (UIDPLUS): the UID sets, already compact (`1:3,7`).
    AppendUid {
        validity: u32,
        uids: &'a str,
    },
    CopyUid {
        validity: u32,
        from: &'a str,
        to: &'a str,
    },
    // RFC 7162 (CONDSTORE, QRESYNC).
    HighestModSeq(u64),
    NoModSeq,
    Modified(&'a str),
    Closed,
    // RFC 5530.
    Unavailable,
    AuthenticationFailed,
    AuthorizationFailed,
    Expired,
    PrivacyRequired,
    ContactAdmin,
    NoPerm,
    InUse,
    ExpungeIssued,
    Corruption,
    ServerBug,
    ClientBug,
    Cannot,
    Limit,
    OverQuota,
    AlreadyExists,
    Nonexistent,
    /// RFC 3516 4.3.
    UnknownCte,
    /// RFC 5267 4.2: the tags of searches no longer updated.
    NoUpdate(&'a str),
    /// RFC 5465 3.1: the events supported, space-separated.
    BadEvent(&'a str),
    /// RFC 4467 3: the URLAUTH mechanisms, space-separated.
    UrlMech(&'a str),
    /// RFC 4469 5: the URL that could not be resolved.
    BadUrl(&'a [u8]),
    /// RFC 5464 4.2.1, 4.3: `LONGENTRIES n`, `MAXSIZE n`, `TOOMANY`,
    /// `NOPRIVATE`.
    Metadata(&'a str),
    /// RFC 9051 7.1: the charsets SEARCH knows, when it was asked another.
    BadCharset(Vec<&'a str>),
    /// RFC 4469 / RFC 7889: a message larger than APPENDLIMIT.
    TooBig,
}

/// A FETCH data item (RFC 9051 7.5.2) the server builds from the view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchItem<'a> {
    Uid(u32),
    /// The message's flags, `\Recent` among them when it is recent here.
    Flags(Vec<&'a str>),
    /// RFC 7162 3.1.4.1.
    ModSeq(u64),
    Rfc822Size(u64),
    /// Unix time and the zone offset in minutes.
    InternalDate(i64, i32),
    /// `BODY[section]<origin>` (or `RFC822.HEADER` and the like, given as
    /// `name`) with its bytes as a string: quoted when short and plain,
    /// else a `{n}` literal; NIL for None.
    Body {
        name: &'a str,
        origin: Option<u32>,
        data: Option<&'a [u8]>,
    },
    /// `BINARY[section]<origin>` (RFC 3516 4.2): a `~{n}` literal8 when the
    /// bytes hold a NUL, as they were stored otherwise.
    Binary {
        section: &'a str,
        origin: Option<u32>,
        data: &'a [u8],
    },
    /// `BINARY.SIZE[section]`.
    BinarySize {
        section: &'a str,
        size: u64,
    },
    /// `ENVELOPE (...)` (RFC 9051 7.5.2), built by `imapd::message`.
    Envelope(Value),
    /// `BODYSTRUCTURE (...)`, or `BODY (...)` without the extension data
    /// when `ext` is false.
    Structure {
        ext: bool,
        value: Value,
    },
    /// A body item whose bytes are in memory, always as a literal: `{n}`,
    /// or `~{n}` for BINARY data holding a NUL ([`literal8`]).
    Literal {
        name: BodyName<'a>,
        origin: Option<u32>,
        data: &'a [u8],
    },
    /// A body item whose `len` bytes stream from the message file: the
    /// encoder writes `NAME<origin> {len}` and its CRLF, and the caller
    /// then writes exactly `len` bytes, a NUL as 0x80 unless [`literal8`]
    /// said `~{n}` for these (`nul`: the bytes hold one). This keeps a large
    /// message out of memory.
    LiteralHead {
        name: BodyName<'a>,
        origin: Option<u32>,
        len: u64,
        nul: bool,
    },
}

/// The name of a FETCH body item, spelled by the encoder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyName<'a> {
    Rfc822,
    Rfc822Header,
    Rfc822Text,
    /// `BODY[section]`.
    Body(&'a Section),
    /// `BINARY[part]`.
    Binary(&'a [u32]),
}

/// Whether a body item goes as a `~{n}` literal8: only BINARY data, and
/// only when it holds a NUL (RFC 3516 4.2); every other literal is `{n}`.
pub fn literal8(name: &BodyName, nul: bool) -> bool {
    matches!(name, BodyName::Binary(_)) && nul
}

/// A value of ENVELOPE and BODYSTRUCTURE (RFC 9051 7.5.2): a small tree
/// the encoder writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Nil,
    Num(u64),
    /// A string: quoted or a literal as its bytes allow.
    Str(Vec<u8>),
    /// `(a b c)`.
    List(Vec<Value>),
    /// Members written back to back with no space and no parentheses: the
    /// addresses of an address list, the parts of a multipart body.
    Run(Vec<Value>),
}

impl Value {
    /// A string, or NIL for None.
    pub fn nstr(s: Option<impl Into<Vec<u8>>>) -> Value {
        s.map_or(Value::Nil, |s| Value::Str(s.into()))
    }

    pub fn str(s: impl Into<Vec<u8>>) -> Value {
        Value::Str(s.into())
    }
}

/// One URL's data in a URLFETCH response (RFC 4467 6.3, RFC 5524 3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UrlData<'a> {
    /// The URL is bad or not authorised.
    Nil,
    /// The content, as a `{n}` literal.
    Content(&'a [u8]),
    /// The extended form: its items in one list.
    Extended(Vec<UrlItem<'a>>),
}

/// An item of URLFETCH's extended form (RFC 5524 3.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UrlItem<'a> {
    BodyPartStructure(Value),
    /// The content, as a `{n}` literal.
    Body(&'a [u8]),
    /// The decoded content: `~{n}` when it holds a NUL; NIL when it could
    /// not be decoded.
    Binary(Option<&'a [u8]>),
}

/// `* URLFETCH`: the start of the response, each URL following after a
/// space through [`url_data`] (the caller flushes between them), ended by
/// CRLF ([`urlfetch_close`]).
pub fn urlfetch_open(out: &mut Vec<u8>) {
    out.extend_from_slice(b"* URLFETCH");
}

/// The end of a URLFETCH response.
pub fn urlfetch_close(out: &mut Vec<u8>) {
    out.extend_from_slice(b"\r\n");
}

/// `url data`, as URLFETCH gives it and BURL takes it.
pub fn url_data(out: &mut Vec<u8>, url: &[u8], data: &UrlData) {
    encode::string(out, url);
    out.push(b' ');
    match data {
        UrlData::Nil => out.extend_from_slice(b"NIL"),
        UrlData::Content(c) => encode::literal(out, c),
        UrlData::Extended(items) => {
            out.push(b'(');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b' ');
                }
                match item {
                    UrlItem::BodyPartStructure(v) => {
                        out.extend_from_slice(b"BODYPARTSTRUCTURE ");
                        value(out, v);
                    }
                    UrlItem::Body(c) => {
                        out.extend_from_slice(b"BODY ");
                        encode::literal(out, c);
                    }
                    UrlItem::Binary(d) => {
                        out.extend_from_slice(b"BINARY ");
                        match d {
                            Some(d) if d.contains(&0) => encode::literal8(out, d),
                            Some(d) => encode::literal(out, d),
                            None => out.extend_from_slice(b"NIL"),
                        }
                    }
                }
            }
            out.push(b')');
        }
    }
}

/// Appends a [`Value`].
pub fn value(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::Nil => out.extend_from_slice(b"NIL"),
        Value::Num(n) => out.extend_from_slice(n.to_string().as_bytes()),
        Value::Str(s) => encode::string(out, s),
        Value::List(items) => {
            out.push(b'(');
            for (i, x) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b' ');
                }
                value(out, x);
            }
            out.push(b')');
        }
        Value::Run(items) => items.iter().for_each(|x| value(out, x)),
    }
}

/// One ESEARCH return item (RFC 4731, RFC 9051 7.3.4, RFC 5267, RFC 9394).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SearchItem<'a> {
    Min(u32),
    Max(u32),
    Count(u32),
    /// A sequence set, already compact.
    All(&'a str),
    /// RFC 9394: the range asked and the set in it (`NIL` when empty).
    Partial {
        range: &'a str,
        set: &'a str,
    },
    ModSeq(u64),
    /// RFC 5267 4.3: (position, set) pairs; position 0 when the result
    /// keeps mailbox order.
    AddTo(Vec<(u32, String)>),
    RemoveFrom(Vec<(u32, String)>),
}

/// Untagged data (RFC 9051 7.2-7.5 and the extensions').
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Data<'a> {
    Capability(&'a str),
    /// RFC 5161.
    Enabled(Vec<&'a str>),
    Exists(u32),
    Recent(u32),
    Expunge(u32),
    /// RFC 7162 3.2.10.
    Vanished {
        earlier: bool,
        uids: &'a str,
    },
    /// The flags the mailbox knows.
    Flags(Vec<&'a str>),
    /// `LIST` (or `LSUB`) of one name; `oldname` for a rename (RFC 5465
    /// 5.4), `childinfo` for `CHILDINFO ("SUBSCRIBED")` (RFC 5258 3.5).
    List {
        lsub: bool,
        attrs: Vec<&'a str>,
        name: &'a str,
        childinfo: bool,
        oldname: Option<&'a str>,
    },
    Status {
        name: &'a str,
        items: Vec<(StatusItem, u64)>,
    },
    /// `SEARCH n...`, with the highest MODSEQ when CONDSTORE asked it
    /// (RFC 7162 3.1.5; not for an empty result).
    Search {
        nums: &'a [u32],
        modseq: Option<u64>,
    },
    /// `SORT n...` (RFC 5256), the same way.
    Sort {
        nums: &'a [u32],
        modseq: Option<u64>,
    },
    /// `THREAD (1 2)(3 (4)(5))` (RFC 5256 4): the forest as the THREAD
    /// command wrote it, numbers, spaces and parentheses only.
    Thread(&'a str),
    /// `ESEARCH (TAG "t") UID items`.
    ESearch {
        tag: Option<&'a str>,
        uid: bool,
        items: Vec<SearchItem<'a>>,
    },
    Fetch {
        seq: u32,
        items: Vec<FetchItem<'a>>,
    },
    /// RFC 9208 5.1: a quota root's (resource, usage, limit) triples.
    Quota {
        root: &'a str,
        resources: Vec<(&'static str, u64, u64)>,
    },
    /// RFC 9208 5.2: the quota roots of a mailbox.
    QuotaRoot {
        mailbox: &'a str,
        roots: Vec<&'a str>,
    },
    /// RFC 2971: the server's (field, value) pairs.
    Id(Vec<(&'a str, &'a str)>),
    /// RFC 2342: one personal namespace with this prefix; no others.
    Namespace {
        prefix: &'a str,
    },
    /// RFC 4467 6.1: the URLAUTH URLs made, each a string.
    GenUrlAuth(Vec<&'a [u8]>),
    /// RFC 5464 4.4.2: the entries that changed (None: the server's).
    MetadataChanged {
        mailbox: Option<&'a str>,
        entries: Vec<&'a str>,
    },
}

/// Anything the server writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response<'a> {
    /// `TAG OK [code] text`, or `* ...` when `tag` is None.
    Status {
        tag: Option<&'a str>,
        status: Status,
        code: Option<Code<'a>>,
        text: &'a str,
    },
    /// `+ text`: ready for a literal, or IDLE.
    Continue(&'a str),
    Data(Data<'a>),
}

impl<'a> Response<'a> {
    /// `TAG OK text`.
    pub fn ok(tag: &'a str, text: &'a str) -> Response<'a> {
        Response::tagged(tag, Status::Ok, None, text)
    }

    /// `TAG NO [code] text`.
    pub fn no(tag: &'a str, code: Option<Code<'a>>, text: &'a str) -> Response<'a> {
        Response::tagged(tag, Status::No, code, text)
    }

    /// `TAG BAD text` (`*` for no tag).
    pub fn bad(tag: &'a str, text: &'a str) -> Response<'a> {
        Response::tagged(tag, Status::Bad, None, text)
    }

    /// A status response with its tag (`*`: untagged).
    pub fn tagged(
        tag: &'a str,
        status: Status,
        code: Option<Code<'a>>,
        text: &'a str,
    ) -> Response<'a> {
        Response::Status {
            tag: (tag != "*").then_some(tag),
            status,
            code,
            text,
        }
    }

    /// `* OK [code] text`.
    pub fn info(code: Option<Code<'a>>, text: &'a str) -> Response<'a> {
        Response::Status {
            tag: None,
            status: Status::Ok,
            code,
            text,
        }
    }

    /// `* BYE text`.
    pub fn bye(text: &'a str) -> Response<'a> {
        Response::Status {
            tag: None,
            status: Status::Bye,
            code: None,
            text,
        }
    }
}

/// Appends the response and its CRLF.
pub fn write(out: &mut Vec<u8>, r: &Response, wire: Wire) {
    match r {
        Response::Status {
            tag,
            status,
            code,
            text,
        } => {
            out.extend_from_slice(tag.unwrap_or("*").as_bytes());
            let word = match status {
                Status::Ok => " OK",
                Status::No => " NO",
                Status::Bad => " BAD",
                Status::Bye => " BYE",
                Status::PreAuth => " PREAUTH",
            };
            out.extend_from_slice(word.as_bytes());
            if let Some(code) = code {
                out.extend_from_slice(b" [");
                write_code(out, code);
                out.push(b']');
            }
            out.push(b' ');
            write_text(out, text);
        }
        Response::Continue(text) => {
            out.extend_from_slice(b"+ ");
            write_text(out, text);
        }
        Response::Data(d) => {
            out.extend_from_slice(b"* ");
            write_data(out, d, wire);
        }
    }
    out.extend_from_slice(b"\r\n");
}

/// A mailbox name as this session's responses name mailboxes: modified
/// UTF-7, or UTF-8 once enabled. A UTF-8 name that is not an atom goes out
/// as a quoted string holding UTF-8 (RFC 9051 QUOTED-CHAR takes UTF8-2/3/4,
/// RFC 6855 3) rather than as a literal clients must unpack.
pub fn mailbox(out: &mut Vec<u8>, name: &str, wire: Wire) {
    let quotable = name.len() < 1024 && name.chars().all(|c| !c.is_control());
    if wire.utf8 && quotable && !name.is_ascii() {
        out.push(b'"');
        for b in name.bytes() {
            if b == b'"' || b == b'\\' {
                out.push(b'\\');
            }
            out.push(b);
        }
        out.push(b'"');
    } else if wire.utf8 {
        encode::astring(out, name.as_bytes());
    } else {
        encode::astring(out, crate::proto::utf7::encode(name).as_bytes());
    }
}

/// A response code as it is written, without its brackets (for logs).
pub fn code(code: &Code) -> String {
    let mut out = Vec::new();
    write_code(&mut out, code);
    String::from_utf8_lossy(&out).into_owned()
}

/// Human-readable text: one line, whatever it was given.
fn write_text(out: &mut Vec<u8>, text: &str) {
    out.extend(text.bytes().map(|b| {
        if matches!(b, b'\r' | b'\n' | 0) {
            b' '
        } else {
            b
        }
    }));
}

/// Whether `f` may be written as a flag: `\Atom` or a keyword atom.
fn is_flag(f: &str) -> bool {
    let atom = f.strip_prefix('\\').unwrap_or(f);
    !atom.is_empty() && atom.bytes().all(is_atom_char)
}

/// `(a b c)` of the flags that are flags.
fn flag_list(out: &mut Vec<u8>, flags: &[&str], extra: Option<&str>) {
    out.push(b'(');
    let mut first = true;
    for f in flags.iter().copied().filter(|f| is_flag(f)).chain(extra) {
        if !first {
            out.push(b' ');
        }
        first = false;
        out.extend_from_slice(f.as_bytes());
    }
    out.push(b')');
}

/// Words from the server's own tables (capabilities, event and mechanism
/// names): written as atoms, anything else left out.
fn atoms(out: &mut Vec<u8>, words: &str) {
    let mut first = true;
    for w in words.split(' ').filter(|w| is_flag(w)) {
        if !first {
            out.push(b' ');
        }
        first = false;
        out.extend_from_slice(w.as_bytes());
    }
}

/// A sequence or UID set as the server computed it (`1:3,7`, `*`);
/// anything else is written as NIL, which no client takes for a set.
fn set(out: &mut Vec<u8>, s: &str) {
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit() || b":,*".contains(&b)) {
        out.extend_from_slice(s.as_bytes());
    } else {
        out.extend_from_slice(b"NIL");
    }
}

fn write_code(out: &mut Vec<u8>, code: &Code) {
    let word: &str = match code {
        Code::Alert => "ALERT",
        Code::Parse => "PARSE",
        Code::ReadOnly => "READ-ONLY",
        Code::ReadWrite => "READ-WRITE",
        Code::TryCreate => "TRYCREATE",
        Code::HasChildren => "HASCHILDREN",
        Code::NoModSeq => "NOMODSEQ",
        Code::Closed => "CLOSED",
        Code::Unavailable => "UNAVAILABLE",
        Code::AuthenticationFailed => "AUTHENTICATIONFAILED",
        Code::AuthorizationFailed => "AUTHORIZATIONFAILED",
        Code::Expired => "EXPIRED",
        Code::PrivacyRequired => "PRIVACYREQUIRED",
        Code::ContactAdmin => "CONTACTADMIN",
        Code::NoPerm => "NOPERM",
        Code::InUse => "INUSE",
        Code::ExpungeIssued => "EXPUNGEISSUED",
        Code::Corruption => "CORRUPTION",
        Code::ServerBug => "SERVERBUG",
        Code::ClientBug => "CLIENTBUG",
        Code::Cannot => "CANNOT",
        Code::Limit => "LIMIT",
        Code::OverQuota => "OVERQUOTA",
        Code::AlreadyExists => "ALREADYEXISTS",
        Code::Nonexistent => "NONEXISTENT",
        Code::UnknownCte => "UNKNOWN-CTE",
        Code::TooBig => "TOOBIG",
        Code::UidNext(n) => return num(out, "UIDNEXT ", *n as u64),
        Code::UidValidity(n) => return num(out, "UIDVALIDITY ", *n as u64),
        Code::Unseen(n) => return num(out, "UNSEEN ", *n as u64),
        Code::HighestModSeq(n) => return num(out, "HIGHESTMODSEQ ", *n),
        Code::PermanentFlags(flags) => {
            out.extend_from_slice(b"PERMANENTFLAGS ");
            let star = flags.contains(&"\\*");
            return flag_list(out, flags, star.then_some("\\*"));
        }
        Code::Capability(caps) => {
            out.extend_from_slice(b"CAPABILITY ");
            return atoms(out, caps);
        }
        Code::AppendUid { validity, uids } => {
            num(out, "APPENDUID ", *validity as u64);
            out.push(b' ');
            return set(out, uids);
        }
        Code::CopyUid { validity, from, to } => {
            num(out, "COPYUID ", *validity as u64);
            out.push(b' ');
            set(out, from);
            out.push(b' ');
            return set(out, to);
        }
        Code::Modified(uids) => {
            out.extend_from_slice(b"MODIFIED ");
            return set(out, uids);
        }
        Code::NoUpdate(tag) => {
            out.extend_from_slice(b"NOUPDATE ");
            return encode::string(out, tag.as_bytes());
        }
        Code::BadEvent(events) => {
            out.extend_from_slice(b"BADEVENT (");
            atoms(out, events);
            return out.push(b')');
        }
        Code::UrlMech(mechs) => {
            out.extend_from_slice(b"URLMECH ");
            return atoms(out, mechs);
        }
        Code::BadUrl(url) => {
            // url-resp-text (RFC 4469 6): any CHAR but NUL, CR, LF and
            // "]"; a URL that holds one of those is not named.
            out.extend_from_slice(b"BADURL");
            let ok = |b: &u8| matches!(b, 0x01..=0x7f) && !matches!(b, b'\r' | b'\n' | b']');
            if !url.is_empty() && url.iter().all(ok) {
                out.push(b' ');
                out.extend_from_slice(url);
            }
            return;
        }
        Code::Metadata(what) => {
            out.extend_from_slice(b"METADATA ");
            return atoms(out, what);
        }
        Code::BadCharset(list) => {
            out.extend_from_slice(b"BADCHARSET (");
            for (i, c) in list.iter().enumerate() {
                if i > 0 {
                    out.push(b' ');
                }
                encode::astring(out, c.as_bytes());
            }
            return out.push(b')');
        }
    };
    out.extend_from_slice(word.as_bytes());
}

fn num(out: &mut Vec<u8>, word: &str, n: u64) {
    out.extend_from_slice(word.as_bytes());
    out.extend_from_slice(n.to_string().as_bytes());
}

fn write_data(out: &mut Vec<u8>, d: &Data, wire: Wire) {
    match d {
        Data::Capability(caps) => {
            out.extend_from_slice(b"CAPABILITY ");
            atoms(out, caps);
        }
        Data::Enabled(caps) => {
            out.extend_from_slice(b"ENABLED");
            for c in caps.iter().filter(|c| is_flag(c)) {
                out.push(b' ');
                out.extend_from_slice(c.as_bytes());
            }
        }
        Data::Exists(n) => num_after(out, *n as u64, " EXISTS"),
        Data::Recent(n) => num_after(out, *n as u64, " RECENT"),
        Data::Expunge(n) => num_after(out, *n as u64, " EXPUNGE"),
        Data::Vanished { earlier, uids } => {
            let word = if *earlier {
                "VANISHED (EARLIER) "
            } else {
                "VANISHED "
            };
            out.extend_from_slice(word.as_bytes());
            set(out, uids);
        }
        Data::Flags(flags) => {
            out.extend_from_slice(b"FLAGS ");
            flag_list(out, flags, None);
        }
        Data::List {
            lsub,
            attrs,
            name,
            childinfo,
            oldname,
        } => {
            out.extend_from_slice(if *lsub { b"LSUB " } else { b"LIST " }.as_slice());
            flag_list(out, attrs, None);
            out.extend_from_slice(b" \".\" ");
            mailbox(out, name, wire);
            if *childinfo {
                out.extend_from_slice(b" (\"CHILDINFO\" (\"SUBSCRIBED\"))");
            } else if let Some(old) = oldname {
                out.extend_from_slice(b" (\"OLDNAME\" (");
                mailbox(out, old, wire);
                out.extend_from_slice(b"))");
            }
        }
        Data::Status { name, items } => {
            out.extend_from_slice(b"STATUS ");
            mailbox(out, name, wire);
            out.extend_from_slice(b" (");
            for (i, (item, n)) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b' ');
                }
                num(out, status_item(*item), *n);
            }
            out.push(b')');
        }
        Data::Search { nums, modseq } | Data::Sort { nums, modseq } => {
            let word = if matches!(d, Data::Search { .. }) {
                "SEARCH"
            } else {
                "SORT"
            };
            out.extend_from_slice(word.as_bytes());
            for n in nums.iter() {
                out.push(b' ');
                out.extend_from_slice(n.to_string().as_bytes());
            }
            if let (Some(m), false) = (modseq, nums.is_empty()) {
                num(out, " (MODSEQ ", *m);
                out.push(b')');
            }
        }
        Data::Thread(forest) => {
            out.extend_from_slice(b"THREAD");
            if forest
                .bytes()
                .all(|b| b.is_ascii_digit() || b" ()".contains(&b))
                && !forest.is_empty()
            {
                out.push(b' ');
                out.extend_from_slice(forest.as_bytes());
            }
        }
        Data::ESearch { tag, uid, items } => {
            out.extend_from_slice(b"ESEARCH");
            if let Some(tag) = tag {
                out.extend_from_slice(b" (TAG ");
                encode::string(out, tag.as_bytes());
                out.push(b')');
            }
            if *uid {
                out.extend_from_slice(b" UID");
            }
            for item in items {
                out.push(b' ');
                search_item(out, item);
            }
        }
        Data::Fetch { seq, items } => {
            // `* ` is written already (see fetch_open).
            num_after(out, *seq as u64, " FETCH (");
            for (i, item) in items.iter().enumerate() {
                fetch_next(out, item, i == 0);
            }
            out.push(b')');
        }
        Data::Quota { root, resources } => {
            out.extend_from_slice(b"QUOTA ");
            encode::astring(out, root.as_bytes());
            out.extend_from_slice(b" (");
            for (i, (name, used, limit)) in resources.iter().enumerate() {
                if i > 0 {
                    out.push(b' ');
                }
                out.extend_from_slice(name.as_bytes());
                num(out, " ", *used);
                num(out, " ", *limit);
            }
            out.push(b')');
        }
        Data::QuotaRoot { mailbox: m, roots } => {
            out.extend_from_slice(b"QUOTAROOT ");
            mailbox(out, m, wire);
            for r in roots {
                out.push(b' ');
                encode::astring(out, r.as_bytes());
            }
        }
        Data::Id(fields) => {
            out.extend_from_slice(b"ID (");
            for (i, (k, v)) in fields.iter().enumerate() {
                if i > 0 {
                    out.push(b' ');
                }
                encode::string(out, k.as_bytes());
                out.push(b' ');
                encode::string(out, v.as_bytes());
            }
            out.push(b')');
        }
        Data::GenUrlAuth(urls) => {
            out.extend_from_slice(b"GENURLAUTH");
            for u in urls {
                out.push(b' ');
                encode::string(out, u);
            }
        }
        Data::Namespace { prefix } => {
            out.extend_from_slice(b"NAMESPACE ((");
            mailbox(out, prefix, wire);
            out.extend_from_slice(b" \".\")) NIL NIL");
        }
        Data::MetadataChanged {
            mailbox: m,
            entries,
        } => {
            out.extend_from_slice(b"METADATA ");
            match m {
                Some(name) => mailbox(out, name, wire),
                None => out.extend_from_slice(b"\"\""),
            }
            out.extend_from_slice(b" (");
            for (i, e) in entries.iter().enumerate() {
                if i > 0 {
                    out.push(b' ');
                }
                encode::astring(out, e.as_bytes());
            }
            out.push(b')');
        }
    }
}

fn num_after(out: &mut Vec<u8>, n: u64, word: &str) {
    out.extend_from_slice(n.to_string().as_bytes());
    out.extend_from_slice(word.as_bytes());
}

fn status_item(i: StatusItem) -> &'static str {
    match i {
        StatusItem::Messages => "MESSAGES ",
        StatusItem::Recent => "RECENT ",
        StatusItem::UidNext => "UIDNEXT ",
        StatusItem::UidValidity => "UIDVALIDITY ",
        StatusItem::Unseen => "UNSEEN ",
        StatusItem::Deleted => "DELETED ",
        StatusItem::Size => "SIZE ",
        StatusItem::HighestModSeq => "HIGHESTMODSEQ ",
    }
}

fn search_item(out: &mut Vec<u8>, item: &SearchItem) {
    match item {
        SearchItem::Min(n) => num(out, "MIN ", *n as u64),
        SearchItem::Max(n) => num(out, "MAX ", *n as u64),
        SearchItem::Count(n) => num(out, "COUNT ", *n as u64),
        SearchItem::ModSeq(n) => num(out, "MODSEQ ", *n),
        SearchItem::All(s) => {
            out.extend_from_slice(b"ALL ");
            set(out, s);
        }
        SearchItem::Partial { range, set: s } => {
            out.extend_from_slice(b"PARTIAL (");
            // A range is `a:b`, negative numbers allowed (RFC 9394 3.1).
            if !range.is_empty()
                && range
                    .bytes()
                    .all(|b| b.is_ascii_digit() || b":-".contains(&b))
            {
                out.extend_from_slice(range.as_bytes());
            } else {
                out.extend_from_slice(b"NIL");
            }
            out.push(b' ');
            set(out, s);
            out.push(b')');
        }
        SearchItem::AddTo(pairs) | SearchItem::RemoveFrom(pairs) => {
            let word = if matches!(item, SearchItem::AddTo(_)) {
                "ADDTO ("
            } else {
                "REMOVEFROM ("
            };
            out.extend_from_slice(word.as_bytes());
            for (i, (position, s)) in pairs.iter().enumerate() {
                if i > 0 {
                    out.push(b' ');
                }
                num(out, "", *position as u64);
                out.push(b' ');
                set(out, s);
            }
            out.push(b')');
        }
    }
}

/// A section spec as the server computed it from the client's request:
/// written only when it stays inside its brackets.
fn section(out: &mut Vec<u8>, s: &str) {
    if s.bytes()
        .all(|b| (0x20..0x7f).contains(&b) && b != b']' && b != b'[')
    {
        out.extend_from_slice(s.as_bytes());
    }
}

fn origin(out: &mut Vec<u8>, o: Option<u32>) {
    if let Some(o) = o {
        num(out, "<", o as u64);
        out.push(b'>');
    }
}

/// `* n FETCH (`: the start of a FETCH response whose items follow one by
/// one through [`fetch_next`] (FETCH streams large bodies between them),
/// ended by [`fetch_close`]. [`Data::Fetch`] is written the same way.
pub fn fetch_open(out: &mut Vec<u8>, seq: u32) {
    out.extend_from_slice(b"* ");
    num_after(out, seq as u64, " FETCH (");
}

/// One FETCH item after [`fetch_open`], `first` or after a space.
pub fn fetch_next(out: &mut Vec<u8>, item: &FetchItem, first: bool) {
    if !first {
        out.push(b' ');
    }
    fetch_item(out, item);
}

/// `)` and CRLF: the end of a FETCH response.
pub fn fetch_close(out: &mut Vec<u8>) {
    out.extend_from_slice(b")\r\n");
}

/// The section as echoed in the response (`1.HEADER.FIELDS (A B)`).
fn section_spec(out: &mut Vec<u8>, s: &Section) {
    part_spec(out, &s.part);
    let text = match &s.text {
        None => return,
        Some(SectionText::Header) => "HEADER",
        Some(SectionText::Text) => "TEXT",
        Some(SectionText::Mime) => "MIME",
        Some(SectionText::HeaderFields(_)) => "HEADER.FIELDS (",
        Some(SectionText::HeaderFieldsNot(_)) => "HEADER.FIELDS.NOT (",
    };
    if !s.part.is_empty() {
        out.push(b'.');
    }
    out.extend_from_slice(text.as_bytes());
    if let Some(SectionText::HeaderFields(h) | SectionText::HeaderFieldsNot(h)) = &s.text {
        for (i, name) in h.iter().enumerate() {
            if i > 0 {
                out.push(b' ');
            }
            encode::astring(out, name.as_bytes());
        }
        out.push(b')');
    }
}

/// `1.2.3`.
fn part_spec(out: &mut Vec<u8>, part: &[u32]) {
    for (i, p) in part.iter().enumerate() {
        if i > 0 {
            out.push(b'.');
        }
        out.extend_from_slice(p.to_string().as_bytes());
    }
}

fn body_name(out: &mut Vec<u8>, name: &BodyName) {
    match name {
        BodyName::Rfc822 => out.extend_from_slice(b"RFC822"),
        BodyName::Rfc822Header => out.extend_from_slice(b"RFC822.HEADER"),
        BodyName::Rfc822Text => out.extend_from_slice(b"RFC822.TEXT"),
        BodyName::Body(s) => {
            out.extend_from_slice(b"BODY[");
            section_spec(out, s);
            out.push(b']');
        }
        BodyName::Binary(p) => {
            out.extend_from_slice(b"BINARY[");
            part_spec(out, p);
            out.push(b']');
        }
    }
}

fn fetch_item(out: &mut Vec<u8>, item: &FetchItem) {
    match item {
        FetchItem::Uid(n) => num(out, "UID ", *n as u64),
        FetchItem::Flags(flags) => {
            out.extend_from_slice(b"FLAGS ");
            flag_list(out, flags, None);
        }
        FetchItem::ModSeq(n) => {
            num(out, "MODSEQ (", *n);
            out.push(b')');
        }
        FetchItem::Rfc822Size(n) => num(out, "RFC822.SIZE ", *n),
        FetchItem::InternalDate(secs, zone) => {
            out.extend_from_slice(b"INTERNALDATE ");
            out.extend_from_slice(encode::date_time(*secs, *zone).as_bytes());
        }
        FetchItem::Body {
            name,
            origin: o,
            data,
        } => {
            // `BODY[HEADER.FIELDS (A B)]`, `RFC822.TEXT`: the name as the
            // server made it from the request, kept to one line.
            let plain = name
                .bytes()
                .all(|b| (0x20..0x7f).contains(&b) && !b"{\"\\".contains(&b));
            if plain {
                out.extend_from_slice(name.as_bytes());
            }
            origin(out, *o);
            out.push(b' ');
            encode::nstring(out, *data);
        }
        FetchItem::Binary {
            section: s,
            origin: o,
            data,
        } => {
            out.extend_from_slice(b"BINARY[");
            section(out, s);
            out.push(b']');
            origin(out, *o);
            out.push(b' ');
            if data.contains(&0) {
                encode::literal8(out, data);
            } else {
                encode::literal(out, data);
            }
        }
        FetchItem::BinarySize { section: s, size } => {
            out.extend_from_slice(b"BINARY.SIZE[");
            section(out, s);
            num(out, "] ", *size);
        }
        FetchItem::Envelope(v) => {
            out.extend_from_slice(b"ENVELOPE ");
            value(out, v);
        }
        FetchItem::Structure { ext, value: v } => {
            let word = if *ext { "BODYSTRUCTURE " } else { "BODY " };
            out.extend_from_slice(word.as_bytes());
            value(out, v);
        }
        FetchItem::Literal {
            name,
            origin: o,
            data,
        } => {
            body_name(out, name);
            origin(out, *o);
            out.push(b' ');
            if literal8(name, data.contains(&0)) {
                encode::literal8(out, data);
            } else {
                encode::literal(out, data);
            }
        }
        FetchItem::LiteralHead {
            name,
            origin: o,
            len,
            nul,
        } => {
            body_name(out, name);
            origin(out, *o);
            out.push(b' ');
            if literal8(name, *nul) {
                out.push(b'~');
            }
            num(out, "{", *len);
            out.extend_from_slice(b"}\r\n");
        }
    }
}

#[cfg(test)]
mod tests;
