//! The encoder's exact bytes, and every response read back by the IMAP
//! client's own parser (lib/imapc/reply.rs) as what was meant.

use super::*;
use crate::imapc::reply::{parse, Response as Parsed, Value};

const RFC: Wire = Wire { utf8: false };
const UTF8: Wire = Wire { utf8: true };

fn text(r: &Response, wire: Wire) -> String {
    let mut out = Vec::new();
    write(&mut out, r, wire);
    String::from_utf8(out).expect("UTF-8 here")
}

fn bytes(r: &Response, wire: Wire) -> Vec<u8> {
    let mut out = Vec::new();
    write(&mut out, r, wire);
    out
}

#[test]
fn status_responses() {
    assert_eq!(
        text(&Response::ok("a1", "NOOP completed"), RFC),
        "a1 OK NOOP completed\r\n"
    );
    assert_eq!(
        text(
            &Response::no("a2", Some(Code::TryCreate), "No such mailbox"),
            RFC
        ),
        "a2 NO [TRYCREATE] No such mailbox\r\n"
    );
    assert_eq!(
        text(&Response::bad("*", "Line too long"), RFC),
        "* BAD Line too long\r\n"
    );
    assert_eq!(
        text(&Response::bye("Logging out"), RFC),
        "* BYE Logging out\r\n"
    );
    assert_eq!(
        text(
            &Response::info(Some(Code::UidValidity(7)), "UIDs valid"),
            RFC
        ),
        "* OK [UIDVALIDITY 7] UIDs valid\r\n"
    );
    assert_eq!(
        text(
            &Response::tagged(
                "t",
                Status::Ok,
                Some(Code::CopyUid {
                    validity: 9,
                    from: "1:3",
                    to: "10:12"
                }),
                "COPY completed"
            ),
            RFC
        ),
        "t OK [COPYUID 9 1:3 10:12] COPY completed\r\n"
    );
    assert_eq!(
        text(
            &Response::info(
                Some(Code::PermanentFlags(vec!["\\Seen", "\\*", "$Junk"])),
                "Flags"
            ),
            RFC
        ),
        "* OK [PERMANENTFLAGS (\\Seen $Junk \\*)] Flags\r\n"
    );
    assert_eq!(
        text(
            &Response::no(
                "n",
                Some(Code::BadEvent("MessageNew MessageExpunge")),
                "Unsupported event"
            ),
            RFC
        ),
        "n NO [BADEVENT (MessageNew MessageExpunge)] Unsupported event\r\n"
    );
    assert_eq!(text(&Response::Continue("idling"), RFC), "+ idling\r\n");
}

/// A store error can quote a path or a client's words: the text stays on
/// its line, so nothing can be smuggled in as a response of its own.
#[test]
fn text_stays_on_one_line() {
    let r = Response::no("a", Some(Code::Unavailable), "rename: x\r\n* 1 EXISTS\0");
    assert_eq!(
        text(&r, RFC),
        "a NO [UNAVAILABLE] rename: x  * 1 EXISTS \r\n"
    );
}

#[test]
fn mailbox_names_follow_the_session() {
    let list = |name| {
        Response::Data(Data::List {
            lsub: false,
            attrs: vec!["\\HasNoChildren"],
            name,
            childinfo: false,
            oldname: None,
        })
    };
    assert_eq!(
        text(&list("INBOX"), RFC),
        "* LIST (\\HasNoChildren) \".\" INBOX\r\n"
    );
    assert_eq!(
        text(&list("台北"), RFC),
        "* LIST (\\HasNoChildren) \".\" &U,BTFw-\r\n"
    );
    assert_eq!(
        text(&list("台北"), UTF8),
        "* LIST (\\HasNoChildren) \".\" \"台北\"\r\n"
    );
    assert_eq!(
        text(&list("a b"), RFC),
        "* LIST (\\HasNoChildren) \".\" \"a b\"\r\n"
    );
    assert_eq!(
        text(&list("NIL"), RFC),
        "* LIST (\\HasNoChildren) \".\" \"NIL\"\r\n"
    );
    let renamed = Response::Data(Data::List {
        lsub: false,
        attrs: vec![],
        name: "新",
        childinfo: false,
        oldname: Some("Old"),
    });
    assert_eq!(
        text(&renamed, RFC),
        "* LIST () \".\" &ZbA- (\"OLDNAME\" (Old))\r\n"
    );
    let status = Response::Data(Data::Status {
        name: "邮件",
        items: vec![(StatusItem::Messages, 2), (StatusItem::UidNext, 3)],
    });
    assert_eq!(
        text(&status, RFC),
        "* STATUS &kK5O9g- (MESSAGES 2 UIDNEXT 3)\r\n"
    );
    assert_eq!(
        text(&status, UTF8),
        "* STATUS \"邮件\" (MESSAGES 2 UIDNEXT 3)\r\n"
    );
}

#[test]
fn untagged_data() {
    assert_eq!(
        text(&Response::Data(Data::Exists(3)), RFC),
        "* 3 EXISTS\r\n"
    );
    assert_eq!(
        text(&Response::Data(Data::Recent(0)), RFC),
        "* 0 RECENT\r\n"
    );
    assert_eq!(
        text(&Response::Data(Data::Expunge(2)), RFC),
        "* 2 EXPUNGE\r\n"
    );
    assert_eq!(
        text(
            &Response::Data(Data::Vanished {
                earlier: true,
                uids: "4:6"
            }),
            RFC
        ),
        "* VANISHED (EARLIER) 4:6\r\n"
    );
    assert_eq!(
        text(
            &Response::Data(Data::Flags(vec!["\\Seen", "bad flag", "$Label1"])),
            RFC
        ),
        "* FLAGS (\\Seen $Label1)\r\n"
    );
    assert_eq!(
        text(
            &Response::Data(Data::Search {
                nums: &[1, 5],
                modseq: Some(9)
            }),
            RFC
        ),
        "* SEARCH 1 5 (MODSEQ 9)\r\n"
    );
    assert_eq!(
        text(
            &Response::Data(Data::Search {
                nums: &[],
                modseq: None
            }),
            RFC
        ),
        "* SEARCH\r\n"
    );
    let es = Response::Data(Data::ESearch {
        tag: Some("a7"),
        uid: true,
        items: vec![
            SearchItem::Min(2),
            SearchItem::Count(3),
            SearchItem::All("2:3,9"),
            SearchItem::Partial {
                range: "-1:-2",
                set: "9",
            },
            SearchItem::AddTo(vec![(0, "12".into())]),
        ],
    });
    assert_eq!(
        text(&es, RFC),
        "* ESEARCH (TAG \"a7\") UID MIN 2 COUNT 3 ALL 2:3,9 PARTIAL (-1:-2 9) ADDTO (0 12)\r\n"
    );
    let removed = Response::Data(Data::ESearch {
        tag: Some("s"),
        uid: false,
        items: vec![SearchItem::RemoveFrom(vec![
            (3, "7".into()),
            (1, "2".into()),
        ])],
    });
    assert_eq!(
        text(&removed, RFC),
        "* ESEARCH (TAG \"s\") REMOVEFROM (3 7 1 2)\r\n"
    );
    let fetch = Response::Data(Data::Fetch {
        seq: 4,
        items: vec![
            FetchItem::Uid(10),
            FetchItem::Flags(vec!["\\Seen", "\\Recent"]),
            FetchItem::ModSeq(77),
            FetchItem::Rfc822Size(1234),
            FetchItem::InternalDate(0, 480),
        ],
    });
    assert_eq!(
        text(&fetch, RFC),
        "* 4 FETCH (UID 10 FLAGS (\\Seen \\Recent) MODSEQ (77) RFC822.SIZE 1234 \
         INTERNALDATE \"01-Jan-1970 08:00:00 +0800\")\r\n"
    );
    assert_eq!(
        text(
            &Response::Data(Data::Quota {
                root: "",
                resources: vec![("STORAGE", 10, 512), ("MESSAGE", 3, 100)]
            }),
            RFC
        ),
        "* QUOTA \"\" (STORAGE 10 512 MESSAGE 3 100)\r\n"
    );
    assert_eq!(
        text(
            &Response::Data(Data::QuotaRoot {
                mailbox: "收件",
                roots: vec![""]
            }),
            UTF8
        ),
        "* QUOTAROOT \"收件\" \"\"\r\n"
    );
    assert_eq!(
        text(&Response::Data(Data::Id(vec![("name", "kmp-imapd")])), RFC),
        "* ID (\"name\" \"kmp-imapd\")\r\n"
    );
    assert_eq!(
        text(&Response::Data(Data::Namespace { prefix: "" }), RFC),
        "* NAMESPACE ((\"\" \".\")) NIL NIL\r\n"
    );
    assert_eq!(
        text(
            &Response::Data(Data::MetadataChanged {
                mailbox: None,
                entries: vec!["/private/comment"]
            }),
            RFC
        ),
        "* METADATA \"\" (/private/comment)\r\n"
    );
}

/// `~{n}` only for BINARY data that needs it; a `{n}` literal never holds
/// a NUL (RFC 9051 4.3.1).
#[test]
fn literals() {
    let body = Response::Data(Data::Fetch {
        seq: 1,
        items: vec![FetchItem::Body {
            name: "BODY[1]",
            origin: None,
            data: Some(b"a\0b\r\n"),
        }],
    });
    assert_eq!(
        bytes(&body, RFC),
        b"* 1 FETCH (BODY[1] {5}\r\na\x80b\r\n)\r\n"
    );
    let bin = |data: &'static [u8]| {
        Response::Data(Data::Fetch {
            seq: 1,
            items: vec![FetchItem::Binary {
                section: "1",
                origin: Some(2),
                data,
            }],
        })
    };
    assert_eq!(
        bytes(&bin(b"a\0b"), RFC),
        b"* 1 FETCH (BINARY[1]<2> ~{3}\r\na\0b)\r\n"
    );
    assert_eq!(
        bytes(&bin(b"ab\n"), RFC),
        b"* 1 FETCH (BINARY[1]<2> {3}\r\nab\n)\r\n"
    );
    let short = Response::Data(Data::Fetch {
        seq: 2,
        items: vec![
            FetchItem::Body {
                name: "BODY[HEADER.FIELDS (SUBJECT)]",
                origin: None,
                data: Some(b"Subject: x"),
            },
            FetchItem::Body {
                name: "BODY[2]",
                origin: None,
                data: None,
            },
            FetchItem::BinarySize {
                section: "1",
                size: 7,
            },
        ],
    });
    assert_eq!(
        text(&short, RFC),
        "* 2 FETCH (BODY[HEADER.FIELDS (SUBJECT)] \"Subject: x\" BODY[2] NIL BINARY.SIZE[1] 7)\r\n"
    );
}

/// What the encoder writes, the client reads back as what was meant,
/// whatever the name or text holds.
#[test]
fn read_back_by_the_client() {
    let names = [
        "INBOX",
        "台北.日本語",
        "a\"b\\c",
        "&",
        "x y",
        "(",
        "NIL",
        "很长的名字很长的名字很长的名字",
    ];
    for wire in [RFC, UTF8] {
        for name in names {
            let r = Response::Data(Data::Status {
                name,
                items: vec![(StatusItem::Messages, 1)],
            });
            let got = parse(&bytes(&r, wire)).expect("parses");
            let Parsed::Data {
                name: kw, values, ..
            } = got
            else {
                panic!("{got:?}");
            };
            assert_eq!(kw, "STATUS");
            let wire_name = values[0].bytes().expect("a string").to_vec();
            let back = if wire.utf8 {
                String::from_utf8(wire_name).expect("UTF-8")
            } else {
                crate::proto::utf7::decode(std::str::from_utf8(&wire_name).expect("ASCII"))
                    .expect("modified UTF-7")
            };
            assert_eq!(back, name, "{wire:?}");
            assert_eq!(
                values[1],
                Value::List(vec![
                    Value::Atom(b"MESSAGES".to_vec()),
                    Value::Atom(b"1".to_vec())
                ])
            );
        }
    }
    let r = Response::no("t1", Some(Code::NoUpdate("a\"b")), "text\nmore");
    match parse(&bytes(&r, RFC)).expect("parses") {
        Parsed::Status {
            tag, code, text, ..
        } => {
            assert_eq!(tag.as_deref(), Some(&b"t1"[..]));
            let (word, values) = code.expect("a code");
            assert_eq!(word, "NOUPDATE");
            assert_eq!(values, vec![Value::Str(b"a\"b".to_vec())]);
            assert_eq!(text, "text more");
        }
        other => panic!("{other:?}"),
    }
}

use super::Value as Tree;

fn section(part: Vec<u32>, text: Option<SectionText>) -> Section {
    Section { part, text }
}

/// A FETCH response written item by item, as FETCH writes it.
fn fetch_bytes(seq: u32, items: &[FetchItem]) -> Vec<u8> {
    let mut out = Vec::new();
    fetch_open(&mut out, seq);
    for (i, item) in items.iter().enumerate() {
        fetch_next(&mut out, item, i == 0);
    }
    fetch_close(&mut out);
    out
}

/// ENVELOPE and BODYSTRUCTURE trees: NIL, numbers, strings quoted or as
/// literals as their bytes allow, lists, and runs (address lists, the
/// parts of a multipart) with no space between their members.
#[test]
fn value_trees() {
    let addr = |name: Option<&str>, local: &str| {
        Tree::List(vec![
            Tree::nstr(name),
            Tree::Nil,
            Tree::str(local),
            Tree::str("x.example"),
        ])
    };
    let env = Tree::List(vec![
        Tree::str("Mon, 1 Jan 2024 00:00:00 +0000"),
        Tree::str("a \"b\" \\c"),
        Tree::List(vec![Tree::Run(vec![
            addr(Some("Li"), "li"),
            addr(None, "wu"),
        ])]),
        Tree::Nil,
        Tree::str("台北".as_bytes()),
        Tree::str("two\r\nlines"),
    ]);
    let mut out = Vec::new();
    value(&mut out, &env);
    assert_eq!(
        out,
        "(\"Mon, 1 Jan 2024 00:00:00 +0000\" \"a \\\"b\\\" \\\\c\" \
         ((\"Li\" NIL \"li\" \"x.example\")(NIL NIL \"wu\" \"x.example\")) NIL \
         {6}\r\n台北 {10}\r\ntwo\r\nlines)"
            .as_bytes()
    );
    let text = |sub: &str, n: u64| {
        Tree::List(vec![
            Tree::str("text"),
            Tree::str(sub),
            Tree::List(vec![Tree::str("charset"), Tree::str("gb2312")]),
            Tree::Nil,
            Tree::Nil,
            Tree::str("base64"),
            Tree::Num(n),
            Tree::Num(1),
        ])
    };
    let multi = Tree::List(vec![
        Tree::Run(vec![text("plain", 12), text("html", 30)]),
        Tree::str("alternative"),
    ]);
    let r = fetch_bytes(
        4,
        &[
            FetchItem::Uid(9),
            FetchItem::Envelope(Tree::List(vec![Tree::Nil; 10])),
            FetchItem::Structure {
                ext: true,
                value: multi.clone(),
            },
            FetchItem::Structure {
                ext: false,
                value: multi,
            },
        ],
    );
    let part = |sub: &str, n: u64| {
        format!("(\"text\" \"{sub}\" (\"charset\" \"gb2312\") NIL NIL \"base64\" {n} 1)")
    };
    let multi = format!(
        "({}{} \"alternative\")",
        part("plain", 12),
        part("html", 30)
    );
    assert_eq!(
        String::from_utf8(r).expect("ASCII"),
        format!(
            "* 4 FETCH (UID 9 ENVELOPE (NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL) \
             BODYSTRUCTURE {multi} BODY {multi})\r\n"
        )
    );
}

/// Body items in memory: always a literal; the encoder spells the item
/// name and section and writes `~{n}` only for BINARY data holding a NUL.
/// Elsewhere a NUL cannot go out: it is sent as 0x80 in a `{n}` literal.
#[test]
fn body_literals() {
    let fields = section(
        vec![2],
        Some(SectionText::HeaderFields(vec![
            "Subject".into(),
            "X Odd".into(),
        ])),
    );
    let not = section(
        vec![],
        Some(SectionText::HeaderFieldsNot(vec!["To".into()])),
    );
    let mime = section(vec![1, 3], Some(SectionText::Mime));
    let r = fetch_bytes(
        1,
        &[
            FetchItem::Literal {
                name: BodyName::Body(&fields),
                origin: None,
                data: b"Subject: x\r\n\r\n",
            },
            FetchItem::Literal {
                name: BodyName::Body(&not),
                origin: Some(5),
                data: b"",
            },
            FetchItem::Literal {
                name: BodyName::Body(&mime),
                origin: None,
                data: b"a\0b",
            },
            FetchItem::Literal {
                name: BodyName::Rfc822Text,
                origin: None,
                data: b"\0",
            },
            FetchItem::Literal {
                name: BodyName::Binary(&[1, 2]),
                origin: Some(3),
                data: b"a\0b",
            },
            FetchItem::Literal {
                name: BodyName::Binary(&[]),
                origin: None,
                data: b"ab",
            },
        ],
    );
    assert_eq!(
        r,
        &b"* 1 FETCH (BODY[2.HEADER.FIELDS (Subject \"X Odd\")] {14}\r\nSubject: x\r\n\r\n \
           BODY[HEADER.FIELDS.NOT (To)]<5> {0}\r\n \
           BODY[1.3.MIME] {3}\r\na\x80b \
           RFC822.TEXT {1}\r\n\x80 \
           BINARY[1.2]<3> ~{3}\r\na\0b \
           BINARY[] {2}\r\nab)\r\n"[..]
    );
    let r = fetch_bytes(
        2,
        &[
            FetchItem::Literal {
                name: BodyName::Rfc822,
                origin: None,
                data: b"x",
            },
            FetchItem::Literal {
                name: BodyName::Rfc822Header,
                origin: None,
                data: b"\r\n",
            },
        ],
    );
    assert_eq!(
        r,
        &b"* 2 FETCH (RFC822 {1}\r\nx RFC822.HEADER {2}\r\n\r\n)\r\n"[..]
    );
}

/// A streamed body: the encoder writes the head and its CRLF; the bytes
/// follow from the caller, who sends a NUL as 0x80 unless `literal8`.
#[test]
fn streamed_heads() {
    let whole = section(vec![], None);
    let text = section(vec![], Some(SectionText::Text));
    let head = |name, origin, nul| {
        let mut out = Vec::new();
        fetch_next(
            &mut out,
            &FetchItem::LiteralHead {
                name,
                origin,
                len: 50_000_000,
                nul,
            },
            true,
        );
        String::from_utf8(out).expect("ASCII")
    };
    assert_eq!(
        head(BodyName::Body(&whole), None, true),
        "BODY[] {50000000}\r\n"
    );
    assert_eq!(
        head(BodyName::Body(&text), Some(7), false),
        "BODY[TEXT]<7> {50000000}\r\n"
    );
    assert_eq!(head(BodyName::Rfc822, None, true), "RFC822 {50000000}\r\n");
    assert_eq!(
        head(BodyName::Binary(&[]), Some(0), true),
        "BINARY[]<0> ~{50000000}\r\n"
    );
    assert_eq!(
        head(BodyName::Binary(&[]), None, false),
        "BINARY[] {50000000}\r\n"
    );
    assert!(literal8(&BodyName::Binary(&[]), true));
    assert!(!literal8(&BodyName::Binary(&[]), false));
    assert!(!literal8(&BodyName::Body(&whole), true));
    assert!(!literal8(&BodyName::Rfc822Text, true));
    // Between other items, after a space; the line is closed the same way.
    let mut out = Vec::new();
    fetch_open(&mut out, 3);
    fetch_next(&mut out, &FetchItem::Uid(8), true);
    fetch_next(
        &mut out,
        &FetchItem::LiteralHead {
            name: BodyName::Rfc822Text,
            origin: None,
            len: 2,
            nul: false,
        },
        false,
    );
    out.extend_from_slice(b"hi");
    fetch_next(&mut out, &FetchItem::Rfc822Size(2), false);
    fetch_close(&mut out);
    assert_eq!(
        out,
        b"* 3 FETCH (UID 8 RFC822.TEXT {2}\r\nhi RFC822.SIZE 2)\r\n"
    );
}

/// URLFETCH's data and GENURLAUTH's URLs.
#[test]
fn urlfetch_and_genurlauth() {
    let url = b"imap://u@h/INBOX/;uid=1;urlauth=anonymous:internal:ab";
    let one = |data: &UrlData| {
        let mut out = Vec::new();
        urlfetch_open(&mut out);
        out.push(b' ');
        url_data(&mut out, url, data);
        urlfetch_close(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    };
    let u = String::from_utf8_lossy(url);
    assert_eq!(one(&UrlData::Nil), format!("* URLFETCH \"{u}\" NIL\r\n"));
    assert_eq!(
        one(&UrlData::Content(b"hi")),
        format!("* URLFETCH \"{u}\" {{2}}\r\nhi\r\n")
    );
    let ext = UrlData::Extended(vec![
        UrlItem::BodyPartStructure(Tree::List(vec![Tree::str("text"), Tree::Num(1)])),
        UrlItem::Binary(Some(b"\0")),
    ]);
    assert_eq!(
        one(&ext),
        format!("* URLFETCH \"{u}\" (BODYPARTSTRUCTURE (\"text\" 1) BINARY ~{{1}}\r\n\0)\r\n")
    );
    let ext = UrlData::Extended(vec![UrlItem::Body(b"a\0"), UrlItem::Binary(None)]);
    assert_eq!(
        one(&ext),
        format!("* URLFETCH \"{u}\" (BODY {{2}}\r\na\u{fffd} BINARY NIL)\r\n")
    );
    assert_eq!(
        text(
            &Response::Data(Data::GenUrlAuth(vec![&url[..], b"a b"])),
            RFC
        ),
        format!("* GENURLAUTH \"{u}\" \"a b\"\r\n")
    );
}

/// The client's parser reads a typed FETCH back as what was meant.
#[test]
fn typed_fetch_read_back() {
    let fields = section(
        vec![],
        Some(SectionText::HeaderFields(vec!["Subject".into()])),
    );
    let env = Tree::List(vec![
        Tree::Nil,
        Tree::str("报告".as_bytes()),
        Tree::List(vec![Tree::Run(vec![Tree::List(vec![
            Tree::Nil,
            Tree::Nil,
            Tree::str("zhang"),
            Tree::str("x.example"),
        ])])]),
    ]);
    let line = fetch_bytes(
        1,
        &[
            FetchItem::Envelope(env),
            FetchItem::Literal {
                name: BodyName::Body(&fields),
                origin: None,
                data: b"Subject: a\r\n\r\n",
            },
            FetchItem::Literal {
                name: BodyName::Binary(&[1]),
                origin: None,
                data: b"\0\x01",
            },
        ],
    );
    let Ok(Parsed::Data { values, .. }) = parse(&line) else {
        panic!("{:?}", String::from_utf8_lossy(&line));
    };
    let items = values[0].list().expect("a list");
    let env = items[1].list().expect("an envelope");
    assert_eq!(env[0], Value::Nil);
    assert_eq!(env[1].bytes(), Some("报告".as_bytes()));
    let from = env[2].list().expect("addresses");
    assert_eq!(from.len(), 1);
    assert_eq!(
        from[0].list().expect("an address")[2].bytes(),
        Some(&b"zhang"[..])
    );
    assert_eq!(items[3].bytes(), Some(&b"Subject: a\r\n\r\n"[..]));
    assert_eq!(items[5].bytes(), Some(&b"\0\x01"[..]));
}
