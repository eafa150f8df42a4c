//! Parser tables, replayed in chunks, and the malformed-input table.

use super::*;
use crate::proto::sasl::Secret;

const CHUNKS: [usize; 6] = [1, 2, 3, 7, 64, 512];

/// What the framer and parser made of a whole input, fed in chunks.
#[derive(Debug, PartialEq)]
enum Got {
    Cmd(Result<Command, ParseError>),
    Continue,
    Reject(Option<String>, &'static str, bool),
    /// An APPEND message of this size went around the buffer.
    Streamed(u64),
}

fn replay(input: &[u8], chunk: usize) -> Vec<Got> {
    replay_with(
        input,
        chunk,
        Limits {
            max_line: 1024,
            max_literal: 4096,
            max_append: 100_000,
            max_literals: 8,
        },
    )
}

fn replay_with(input: &[u8], chunk: usize, limits: Limits) -> Vec<Got> {
    let mut f = Framer::new(limits);
    let mut buf: Vec<u8> = Vec::new();
    let mut out = Vec::new();
    let mut fed = 0;
    loop {
        match f.frame(&buf) {
            Frame::Command(n) => {
                out.push(Got::Cmd(parse_command(&buf[..n])));
                buf.drain(..n);
                continue;
            }
            Frame::Continue => {
                out.push(Got::Continue);
                continue;
            }
            Frame::Reject {
                tag,
                reason,
                consumed,
                close,
            } => {
                out.push(Got::Reject(tag, reason, close));
                buf.drain(..consumed);
                if close {
                    return out;
                }
                continue;
            }
            Frame::Discard(n) => {
                buf.drain(..n);
                if n > 0 {
                    continue;
                }
            }
            Frame::Stream { head, size, .. } => {
                // What the server does: the message goes elsewhere as it
                // arrives, the head comes back with an empty literal.
                out.push(Got::Streamed(size));
                let head: Vec<u8> = buf.drain(..head).collect();
                let mut left = size as usize;
                loop {
                    let n = left.min(buf.len());
                    buf.drain(..n);
                    left -= n;
                    if left == 0 || fed == input.len() {
                        break;
                    }
                    let end = (fed + chunk).min(input.len());
                    buf.extend_from_slice(&input[fed..end]);
                    fed = end;
                }
                if left > 0 {
                    return out;
                }
                let mut v = empty_literal(&head);
                v.append(&mut buf);
                buf = v;
                f.restart();
                continue;
            }
            Frame::Incomplete => {}
        }
        if fed == input.len() {
            return out;
        }
        let end = (fed + chunk).min(input.len());
        buf.extend_from_slice(&input[fed..end]);
        fed = end;
    }
}

/// Replays `input` in every chunk size; all must agree; returns the result.
fn all_chunks(input: &[u8]) -> Vec<Got> {
    let first = replay(input, 1);
    for c in CHUNKS {
        let got = replay(input, c);
        // A continuation is asked only when the client stopped exactly at the
        // literal, which depends on the chunk: compare without them.
        let strip = |v: &Vec<Got>| {
            v.iter()
                .filter(|g| **g != Got::Continue)
                .map(|g| format!("{g:?}"))
                .collect::<Vec<_>>()
        };
        assert_eq!(strip(&got), strip(&first), "chunk {c} for {input:?}");
    }
    first
}

fn one(input: &str) -> CommandBody {
    let got = all_chunks(input.as_bytes());
    let cmds: Vec<_> = got.into_iter().filter(|g| *g != Got::Continue).collect();
    assert_eq!(cmds.len(), 1, "{input:?}: {cmds:?}");
    match cmds.into_iter().next() {
        Some(Got::Cmd(Ok(c))) => c.body,
        other => panic!("{input:?}: {other:?}"),
    }
}

fn set(v: &[(u32, u32)]) -> SeqSet {
    SeqSet(
        v.iter()
            .map(|(a, b)| {
                let f = |x: u32| if x == 0 { SeqNo::Star } else { SeqNo::Value(x) };
                (f(*a), f(*b))
            })
            .collect(),
    )
}

#[test]
fn valid_commands() {
    use CommandBody as B;
    let table: Vec<(&str, B)> = vec![
        ("a CAPABILITY\r\n", B::Capability),
        ("a noop\r\n", B::Noop),
        ("A1 LOGOUT\r\n", B::Logout),
        ("t STARTTLS\r\n", B::StartTls),
        (
            "a LOGIN joe \"p a\\\"ss\"\r\n",
            B::Login {
                user: b"joe".to_vec(),
                password: Secret::new(b"p a\"ss".to_vec()),
            },
        ),
        (
            "a LOGIN {3}\r\njoe {4+}\r\npass\r\n",
            B::Login {
                user: b"joe".to_vec(),
                password: Secret::new(b"pass".to_vec()),
            },
        ),
        (
            "a AUTHENTICATE PLAIN AGpvZQBwYXNz\r\n",
            B::Authenticate {
                mechanism: "PLAIN".into(),
                initial: Some(Secret::new(b"AGpvZQBwYXNz".to_vec())),
            },
        ),
        (
            "a authenticate plain\r\n",
            B::Authenticate {
                mechanism: "PLAIN".into(),
                initial: None,
            },
        ),
        ("a ENABLE IMAP4rev2\r\n", B::Enable(vec!["IMAP4REV2".into()])),
        (
            "a ID (\"name\" \"mutt\" \"version\" NIL)\r\n",
            B::Id(Some(vec![
                ("name".into(), Some("mutt".into())),
                ("version".into(), None),
            ])),
        ),
        (
            "a SELECT INBOX\r\n",
            B::Select {
                mailbox: b"INBOX".to_vec(),
                examine: false,
                condstore: false,
                qresync: None,
            },
        ),
        (
            "a EXAMINE \"&UXZO1mWHTvZZOQ-\" (CONDSTORE)\r\n",
            B::Select {
                mailbox: b"&UXZO1mWHTvZZOQ-".to_vec(),
                examine: true,
                condstore: true,
                qresync: None,
            },
        ),
        (
            "a SELECT INBOX (QRESYNC (67890007 20050715194045000 41,43:211,214:541 (1:3,5 41,43,45:46)))\r\n",
            B::Select {
                mailbox: b"INBOX".to_vec(),
                examine: false,
                condstore: false,
                qresync: Some(Qresync {
                    uidvalidity: 67890007,
                    modseq: 20050715194045000,
                    known_uids: Some(set(&[(41, 41), (43, 211), (214, 541)])),
                    seq_match: Some((set(&[(1, 3), (5, 5)]), set(&[(41, 41), (43, 43), (45, 46)]))),
                }),
            },
        ),
        (
            "a EXAMINE INBOX (QRESYNC (7 9))\r\n",
            B::Select {
                mailbox: b"INBOX".to_vec(),
                examine: true,
                condstore: false,
                qresync: Some(Qresync {
                    uidvalidity: 7,
                    modseq: 9,
                    known_uids: None,
                    seq_match: None,
                }),
            },
        ),
        (
            "a UID FETCH 1:* FLAGS (CHANGEDSINCE 12 VANISHED)\r\n",
            B::Fetch {
                uid: true,
                set: set(&[(1, 0)]),
                atts: vec![FetchAtt::Uid, FetchAtt::Flags, FetchAtt::ModSeq],
                changed_since: Some(12),
                vanished: true,
            },
        ),
        ("a CREATE a/b\r\n", B::Create(b"a/b".to_vec())),
        (
            "a CREATE Sent (USE (\\Sent))\r\n",
            B::Create(b"Sent".to_vec()),
        ),
        (
            "a RENAME a b\r\n",
            B::Rename {
                from: b"a".to_vec(),
                to: b"b".to_vec(),
            },
        ),
        (
            "a LIST \"\" *\r\n",
            B::List(ListArgs {
                patterns: vec![b"*".to_vec()],
                ..ListArgs::default()
            }),
        ),
        (
            "a LSUB \"\" %/x\r\n",
            B::List(ListArgs {
                lsub: true,
                patterns: vec![b"%/x".to_vec()],
                ..ListArgs::default()
            }),
        ),
        (
            "a LIST (SUBSCRIBED) \"\" (INBOX Sent) RETURN (CHILDREN STATUS (MESSAGES UNSEEN))\r\n",
            B::List(ListArgs {
                patterns: vec![b"INBOX".to_vec(), b"Sent".to_vec()],
                subscribed: true,
                ret_children: true,
                ret_status: Some(vec![StatusItem::Messages, StatusItem::Unseen]),
                extended: true,
                ..ListArgs::default()
            }),
        ),
        (
            "a STATUS INBOX (MESSAGES UIDNEXT UIDVALIDITY)\r\n",
            B::Status {
                mailbox: b"INBOX".to_vec(),
                items: vec![
                    StatusItem::Messages,
                    StatusItem::UidNext,
                    StatusItem::UidValidity,
                ],
            },
        ),
        (
            "a APPEND INBOX (\\Seen $Junk) \" 7-Feb-1994 21:52:25 -0800\" {5}\r\nHello\r\n",
            B::Append {
                mailbox: b"INBOX".to_vec(),
                messages: vec![AppendMessage {
                    flags: vec![Flag::Seen, Flag::Keyword("$Junk".into())],
                    date: Some(DateTime {
                        date: Date {
                            year: 1994,
                            month: 2,
                            day: 7,
                        },
                        hour: 21,
                        minute: 52,
                        second: 25,
                        zone_minutes: -480,
                    }),
                    content: AppendContent::Literal(AppendData {
                        bytes: b"Hello".to_vec(),
                        at: 63,
                    }),
                }],
            },
        ),
        (
            "a APPEND x {0+}\r\n\r\n",
            B::Append {
                mailbox: b"x".to_vec(),
                messages: vec![AppendMessage {
                    flags: vec![],
                    date: None,
                    content: AppendContent::Literal(AppendData {
                        bytes: vec![],
                        at: 17,
                    }),
                }],
            },
        ),
        (
            "a APPEND x {1}\r\n1 (\\Seen) {1}\r\n2\r\n",
            B::Append {
                mailbox: b"x".to_vec(),
                messages: vec![
                    AppendMessage {
                        flags: vec![],
                        date: None,
                        content: AppendContent::Literal(AppendData {
                            bytes: b"1".to_vec(),
                            at: 16,
                        }),
                    },
                    AppendMessage {
                        flags: vec![Flag::Seen],
                        date: None,
                        content: AppendContent::Literal(AppendData {
                            bytes: b"2".to_vec(),
                            at: 31,
                        }),
                    },
                ],
            },
        ),
        (
            "a APPEND x CATENATE (URL \"/INBOX/;uid=1\" TEXT {2}\r\nab) CATENATE (TEXT {1}\r\nc)\r\n",
            B::Append {
                mailbox: b"x".to_vec(),
                messages: vec![
                    AppendMessage {
                        flags: vec![],
                        date: None,
                        content: AppendContent::Catenate(vec![
                            CatenatePart::Url(b"/INBOX/;uid=1".to_vec()),
                            CatenatePart::Text(AppendData {
                                bytes: b"ab".to_vec(),
                                at: 51,
                            }),
                        ]),
                    },
                    AppendMessage {
                        flags: vec![],
                        date: None,
                        content: AppendContent::Catenate(vec![CatenatePart::Text(AppendData {
                            bytes: b"c".to_vec(),
                            at: 75,
                        })]),
                    },
                ],
            },
        ),
        ("a IDLE\r\n", B::Idle),
        ("a UNSELECT\r\n", B::Unselect),
        ("a EXPUNGE\r\n", B::Expunge { uids: None }),
        (
            "a UID EXPUNGE 3:5\r\n",
            B::Expunge {
                uids: Some(set(&[(3, 5)])),
            },
        ),
        (
            "a STORE 1:* +FLAGS.SILENT (\\Deleted)\r\n",
            B::Store {
                uid: false,
                set: set(&[(1, 0)]),
                mode: StoreMode::Add,
                silent: true,
                flags: vec![Flag::Deleted],
                unchanged_since: None,
            },
        ),
        (
            "a UID STORE 7 FLAGS \\Seen \\Flagged\r\n",
            B::Store {
                uid: true,
                set: set(&[(7, 7)]),
                mode: StoreMode::Replace,
                silent: false,
                flags: vec![Flag::Seen, Flag::Flagged],
                unchanged_since: None,
            },
        ),
        (
            "a UID MOVE 1,3:4 Trash\r\n",
            B::Move {
                uid: true,
                set: set(&[(1, 1), (3, 4)]),
                mailbox: b"Trash".to_vec(),
            },
        ),
        (
            "a FETCH 1 (FLAGS BODY.PEEK[HEADER.FIELDS (From Subject)]<0.100> BODY[1.2.MIME])\r\n",
            B::Fetch {
                uid: false,
                set: set(&[(1, 1)]),
                atts: vec![
                    FetchAtt::Flags,
                    FetchAtt::Section {
                        peek: true,
                        section: Section {
                            part: vec![],
                            text: Some(SectionText::HeaderFields(vec![
                                "From".into(),
                                "Subject".into(),
                            ])),
                        },
                        partial: Some((0, 100)),
                    },
                    FetchAtt::Section {
                        peek: false,
                        section: Section {
                            part: vec![1, 2],
                            text: Some(SectionText::Mime),
                        },
                        partial: None,
                    },
                ],
                changed_since: None,
                vanished: false,
            },
        ),
        (
            "a UID FETCH 1:* FAST\r\n",
            B::Fetch {
                uid: true,
                set: set(&[(1, 0)]),
                atts: vec![
                    FetchAtt::Uid,
                    FetchAtt::Flags,
                    FetchAtt::InternalDate,
                    FetchAtt::Rfc822Size,
                ],
                changed_since: None,
                vanished: false,
            },
        ),
        (
            "a FETCH 2 (RFC822.SIZE RFC822 BODY BODYSTRUCTURE BODY[])\r\n",
            B::Fetch {
                uid: false,
                set: set(&[(2, 2)]),
                atts: vec![
                    FetchAtt::Rfc822Size,
                    FetchAtt::Rfc822,
                    FetchAtt::Body,
                    FetchAtt::BodyStructure,
                    FetchAtt::Section {
                        peek: false,
                        section: Section::default(),
                        partial: None,
                    },
                ],
                changed_since: None,
                vanished: false,
            },
        ),
        (
            "a SEARCH CHARSET UTF-8 OR (FROM joe SINCE 1-Feb-2020) NOT SUBJECT {6}\r\n\u{90ae}\u{4ef6}\r\n",
            B::Search {
                uid: false,
                ret: None,
                charset: Some("UTF-8".into()),
                key: SearchKey::Or(
                    Box::new(SearchKey::And(vec![
                        SearchKey::From("joe".into()),
                        SearchKey::Since(Date {
                            year: 2020,
                            month: 2,
                            day: 1,
                        }),
                    ])),
                    Box::new(SearchKey::Not(Box::new(SearchKey::Subject("邮件".into())))),
                ),
            },
        ),
        (
            "a UID SEARCH RETURN (MIN COUNT) 1:5 UNSEEN LARGER 100\r\n",
            B::Search {
                uid: true,
                ret: Some(vec![SearchReturn::Min, SearchReturn::Count]),
                charset: None,
                key: SearchKey::And(vec![
                    SearchKey::SeqSet(set(&[(1, 5)])),
                    SearchKey::Unseen,
                    SearchKey::Larger(100),
                ]),
            },
        ),
        ("a NAMESPACE\r\n", B::Namespace),
        ("a GETQUOTAROOT INBOX\r\n", B::GetQuotaRoot(b"INBOX".to_vec())),
        ("a XYZZY foo bar\r\n", B::Unknown("XYZZY".into())),
    ];
    for (input, want) in table {
        assert_eq!(one(input), want, "{input:?}");
    }
}

#[test]
fn synchronizing_literal_asks_for_continuation() {
    let got = replay(b"a LOGIN {3}\r\n", 512);
    assert_eq!(got, vec![Got::Continue]);
    let got = replay(b"a LOGIN {3+}\r\n", 512);
    assert_eq!(got, vec![]);
}

#[test]
fn pipelined_commands_in_one_buffer() {
    let got = all_chunks(b"a NOOP\r\nb CAPABILITY\r\nc LOGOUT\r\n");
    assert_eq!(got.len(), 3);
}

fn bad(input: &[u8]) -> Vec<Got> {
    all_chunks(input)
}

#[test]
fn malformed_input_table() {
    let big_set: String = (1..=100_000)
        .map(|i| (i * 2).to_string())
        .collect::<Vec<_>>()
        .join(",");
    let nest = format!("a SEARCH {}ALL{}\r\n", "(".repeat(500), ")".repeat(500));
    let nots = format!("a SEARCH {}ALL\r\n", "NOT ".repeat(100));
    let tag = format!("{} NOOP\r\n", "t".repeat(100));
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (b"a LOGIN {4294967295}\r\n".to_vec(), "Literal too large"),
        (
            b"a LOGIN {99999999999999999999999}\r\n".to_vec(),
            "Literal too large",
        ),
        (
            b"a APPEND INBOX {4294967295+}\r\n".to_vec(),
            "Literal too large",
        ),
        (
            format!("a FETCH {big_set} FLAGS\r\n").into_bytes(),
            "Command line too long",
        ),
        (nest.into_bytes(), "nested too deeply"),
        (nots.into_bytes(), "nested too deeply"),
        (tag.into_bytes(), "tag"),
        (b"a SELECT\r\n".to_vec(), "Expected"),
        (b"a FETCH 0 FLAGS\r\n".to_vec(), "Zero"),
        (b"a FETCH 1 (FLAGS\r\n".to_vec(), "Expected"),
        (b"a FETCH 1 BODY[HEADER.FIELDS ()]\r\n".to_vec(), "atom"),
        (b"a STORE 1 XFLAGS (\\Seen)\r\n".to_vec(), "FLAGS"),
        (b"a SEARCH FOO\r\n".to_vec(), "Unknown search key"),
        (b"a SEARCH SINCE 31-Feb-2020\r\n".to_vec(), "day"),
        (b"a LOGIN \"unterminated\r\n".to_vec(), "Unterminated"),
        (b"a LOGIN \"a\\x\" b\r\n".to_vec(), "escape"),
        (
            b"a APPEND INBOX \"1-Jan-2020 25:00:00 +0000\" {1}\r\nx\r\n".to_vec(),
            "time",
        ),
        (b"\r\n".to_vec(), "tag"),
        (b"* NOOP\r\n".to_vec(), "tag"),
        (b"a NOOP extra\r\n".to_vec(), "extra"),
        (b"a UID FROB 1\r\n".to_vec(), "Unknown UID"),
        (b"a SELECT x (QRESYNC (1 0))\r\n".to_vec(), "must not be 0"),
        (b"a SELECT x (QRESYNC (0 5))\r\n".to_vec(), "Zero"),
        (
            b"a UID FETCH 1 FLAGS (VANISHED)\r\n".to_vec(),
            "CHANGEDSINCE",
        ),
        (
            b"a FETCH 1 FLAGS (CHANGEDSINCE 1 VANISHED)\r\n".to_vec(),
            "modifier",
        ),
    ];
    for (input, want) in cases {
        let got = bad(&input);
        let text = format!("{got:?}");
        assert!(
            text.to_lowercase().contains(&want.to_lowercase()),
            "{:?}: {text}",
            String::from_utf8_lossy(&input[..input.len().min(60)])
        );
        assert!(
            got.iter().all(|g| !matches!(g, Got::Cmd(Ok(_)))),
            "accepted {:?}",
            String::from_utf8_lossy(&input[..input.len().min(60)])
        );
    }
}

#[test]
fn session_goes_on_after_bad_input() {
    // An over-long line is skipped, an oversized sync literal refused, and
    // the next command is read normally.
    let mut input = b"a LOGIN {999999}\r\n".to_vec();
    input.extend_from_slice(&vec![b'x'; 5000]);
    input.extend_from_slice(b"\r\nb NOOP\r\n");
    let got = all_chunks(&input);
    assert!(matches!(&got[0], Got::Reject(Some(t), "Literal too large", false) if t == "a"));
    assert!(matches!(
        &got[1],
        Got::Reject(_, "Command line too long", false)
    ));
    assert_eq!(got.last(), Some(&Got::Cmd(parse_command(b"b NOOP\r\n"))));
    assert!(matches!(got.last(), Some(Got::Cmd(Ok(_)))));
}

#[test]
fn non_synchronizing_literal_too_large_closes() {
    let got = all_chunks(b"a LOGIN {1000000+}\r\nxxxx");
    assert_eq!(
        got,
        vec![Got::Reject(Some("a".into()), "Literal too large", true)]
    );
}

#[test]
fn append_streams_a_large_literal() {
    let mut input = b"a APPEND INBOX (\\Seen) {50000}\r\n".to_vec();
    input.extend(std::iter::repeat_n(b'y', 50000));
    input.extend_from_slice(b"\r\nb NOOP\r\n");
    for c in CHUNKS {
        let got = replay(&input, c);
        assert_eq!(got.len(), 3, "{c}: {got:?}");
        assert_eq!(got[0], Got::Streamed(50000));
        let Got::Cmd(Ok(Command {
            body: CommandBody::Append { messages, .. },
            ..
        })) = &got[1]
        else {
            panic!("{c}: {got:?}");
        };
        let AppendContent::Literal(data) = &messages[0].content else {
            panic!("{c}: {got:?}");
        };
        assert!(
            data.bytes.is_empty() && messages[0].flags == [Flag::Seen],
            "{c}"
        );
        assert!(matches!(got[2], Got::Cmd(Ok(_))), "{c}");
    }
    // A small one stays in the command.
    let got = all_chunks(b"a APPEND INBOX {5+}\r\nhello\r\n");
    assert!(matches!(&got[..], [Got::Cmd(Ok(_))]), "{got:?}");
}

#[test]
fn before_login_literals_are_small() {
    // Regression (issue 11): a literal of a whole message was accepted (and
    // buffered) before login.
    for input in [
        &b"a LOGIN {100000000}\r\n"[..],
        b"a APPEND INBOX {100000}\r\n",
        b"a LOGIN {5000}\r\n",
    ] {
        let got = replay_with(input, 512, Limits::BEFORE_LOGIN);
        assert_eq!(
            got,
            vec![Got::Reject(Some("a".into()), "Literal too large", false)],
            "{input:?}"
        );
    }
    let got = replay_with(b"a LOGIN {9+}\r\n", 512, Limits::BEFORE_LOGIN);
    assert_eq!(got, vec![]);
    let got = replay_with(
        b"a LOGIN {1+}\r\nx {1+}\r\ny {1+}\r\nz\r\n",
        512,
        Limits::BEFORE_LOGIN,
    );
    assert_eq!(
        got,
        vec![Got::Reject(Some("a".into()), "Too many literals", true)]
    );
    let mut long = b"a LOGIN ".to_vec();
    long.extend(std::iter::repeat_n(b'x', 9000));
    let got = replay_with(&long, 512, Limits::BEFORE_LOGIN);
    assert_eq!(
        got,
        vec![Got::Reject(
            Some("a".into()),
            "Command line too long",
            false
        )]
    );
}

#[test]
fn dates_round_trip() {
    assert_eq!(days_from_civil(1970, 1, 1), 0);
    assert_eq!(civil_from_days(days_from_civil(2024, 2, 29)), (2024, 2, 29));
    assert_eq!(encode::date_time(0, 0), "\"01-Jan-1970 00:00:00 +0000\"");
    assert_eq!(encode::date_time(0, -480), "\"31-Dec-1969 16:00:00 -0800\"");
}

#[test]
fn strings_are_encoded_safely() {
    let mut v = Vec::new();
    encode::string(&mut v, b"a\"b");
    assert_eq!(v, b"\"a\\\"b\"");
    v.clear();
    encode::string(&mut v, "邮件".as_bytes());
    assert_eq!(v, b"{6}\r\n\xe9\x82\xae\xe4\xbb\xb6");
    v.clear();
    encode::astring(&mut v, b"NIL");
    assert_eq!(v, b"\"NIL\"");
}

#[test]
fn login_passwords_are_never_printed() {
    for input in [
        "a LOGIN joe hunter2secret\r\n",
        "a AUTHENTICATE PLAIN AGpvZQBodW50ZXIyc2VjcmV0\r\n",
    ] {
        let shown = format!("{:?}", one(input));
        assert!(
            !shown.contains("hunter2") && !shown.contains("AGpvZQBodW50ZXIy"),
            "{shown}"
        );
    }
}

#[test]
fn id_lines_may_be_as_long_as_rfc_2971_allows() {
    // 30 fields of 30 octets with values of 1024, before login.
    let mut line = String::from("a ID (");
    for i in 0..30 {
        if i > 0 {
            line.push(' ');
        }
        line.push_str(&format!("\"{:0>30}\" \"{}\"", i, "v".repeat(1024)));
    }
    line.push_str(")\r\n");
    assert!(line.len() > Limits::BEFORE_LOGIN.max_line);
    for chunk in CHUNKS {
        let got = replay_with(line.as_bytes(), chunk, Limits::BEFORE_LOGIN);
        assert!(
            matches!(&got[..], [Got::Cmd(Ok(Command { body: CommandBody::Id(Some(v)), .. }))] if v.len() == 30),
            "chunk {chunk}"
        );
    }
    // Other commands keep the small cap, and ID keeps a bound.
    let long = format!(
        "a LOGIN {} x\r\n",
        "u".repeat(Limits::BEFORE_LOGIN.max_line)
    );
    let got = replay_with(long.as_bytes(), 512, Limits::BEFORE_LOGIN);
    assert_eq!(
        got[0],
        Got::Reject(Some("a".into()), "Command line too long", false)
    );
    let huge = format!("a ID (\"x\" \"{}\")\r\n", "v".repeat(frame::MAX_ID_LINE));
    let got = replay_with(huge.as_bytes(), 512, Limits::BEFORE_LOGIN);
    assert_eq!(
        got[0],
        Got::Reject(Some("a".into()), "Command line too long", false)
    );
}

#[test]
fn urlauth_commands() {
    use CommandBody as B;
    let table: Vec<(&str, CommandBody)> = vec![
        (
            "a GENURLAUTH \"imap://u@h/INBOX/;uid=1;urlauth=anonymous\" internal\r\n",
            B::GenUrlAuth(vec![(
                b"imap://u@h/INBOX/;uid=1;urlauth=anonymous".to_vec(),
                "INTERNAL".into(),
            )]),
        ),
        (
            "a RESETKEY\r\n",
            B::ResetKey {
                mailbox: None,
                mechanisms: vec![],
            },
        ),
        (
            "a RESETKEY INBOX INTERNAL\r\n",
            B::ResetKey {
                mailbox: Some(b"INBOX".to_vec()),
                mechanisms: vec!["INTERNAL".into()],
            },
        ),
        (
            "a URLFETCH \"u1\" (\"u2\" BINARY BODYPARTSTRUCTURE)\r\n",
            B::UrlFetch(vec![
                UrlFetchArg {
                    url: b"u1".to_vec(),
                    ..UrlFetchArg::default()
                },
                UrlFetchArg {
                    url: b"u2".to_vec(),
                    extended: true,
                    binary: true,
                    body_part_structure: true,
                    ..UrlFetchArg::default()
                },
            ]),
        ),
    ];
    for (text, want) in table {
        let got = parse_command(text.as_bytes()).unwrap_or_else(|e| panic!("{text}: {e:?}"));
        assert_eq!(got.body, want, "{text}");
    }
    for bad in [
        "a GENURLAUTH\r\n",
        "a GENURLAUTH \"u\"\r\n",
        "a URLFETCH\r\n",
        "a URLFETCH (\"u\" BINARY BODY)\r\n",
        "a URLFETCH (\"u\" FOO)\r\n",
        "a APPEND INBOX\r\n",
        "a APPEND INBOX CATENATE ()\r\n",
        "a APPEND INBOX CATENATE (FOO \"x\")\r\n",
    ] {
        assert!(parse_command(bad.as_bytes()).is_err(), "{bad}");
    }
}
