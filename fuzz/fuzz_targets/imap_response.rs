//! kmp-imapd's response encoder (lib/proto/imap/response.rs) with any
//! mailbox name, status text, flag and body bytes it might be handed:
//! every response is one response that the IMAP client's parser
//! (lib/imapc/reply.rs) reads back as what was meant, and status text
//! never breaks its line. ENVELOPE-like value trees and FETCH body items
//! written item by item read back the same way.
#![no_main]
use kmpromail::imapc::reply::{parse, Response as Parsed, Value};
use kmpromail::proto::imap::response::{
    fetch_close, fetch_next, fetch_open, write, BodyName, Code, Data, FetchItem, Response,
    Value as Tree, Wire,
};
use kmpromail::proto::imap::{Section, SectionText, StatusItem};
use kmpromail::proto::utf7;
use libfuzzer_sys::fuzz_target;

fn encoded(r: &Response, wire: Wire) -> Vec<u8> {
    let mut out = Vec::new();
    write(&mut out, r, wire);
    out
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    // Status text: one line, whatever it holds.
    let r = Response::no("t1", Some(Code::Cannot), &text);
    let line = encoded(&r, Wire::default());
    assert!(line.ends_with(b"\r\n"));
    let body = &line[..line.len() - 2];
    assert!(!body.iter().any(|b| matches!(b, b'\r' | b'\n' | 0)));
    match parse(&line) {
        Ok(Parsed::Status { tag, .. }) => assert_eq!(tag.as_deref(), Some(&b"t1"[..])),
        other => panic!("{other:?}"),
    }
    // Mailbox names, in both wire forms (the server refuses control
    // characters in names, NUL among them, before they are stored).
    let name_ok = !text.chars().any(char::is_control);
    for utf8 in [false, true].into_iter().filter(|_| name_ok) {
        let wire = Wire { utf8 };
        let r = Response::Data(Data::Status {
            name: &text,
            items: vec![(StatusItem::Messages, 1)],
        });
        let got = parse(&encoded(&r, wire));
        let Ok(Parsed::Data { name, values, .. }) = got else {
            panic!("{got:?}");
        };
        assert_eq!(name, "STATUS");
        let raw = values[0].bytes().expect("a name").to_vec();
        let back = if utf8 {
            String::from_utf8(raw).expect("UTF-8")
        } else {
            utf7::decode(std::str::from_utf8(&raw).expect("ASCII")).expect("modified UTF-7")
        };
        assert_eq!(back, text);
    }
    // Flags: what is written is what was given, and only flags.
    let flags: Vec<&str> = text.split(' ').collect();
    let r = Response::Data(Data::Flags(flags.clone()));
    match parse(&encoded(&r, Wire::default())) {
        Ok(Parsed::Data { values, .. }) => {
            let list = values[0].list().expect("a list");
            for v in list {
                let f = v.text().expect("a flag");
                assert!(flags.contains(&f.as_str()), "{f}");
            }
        }
        other => panic!("{other:?}"),
    }
    // Body bytes: a {n} literal, a NUL sent as 0x80, everything else as it is.
    let r = Response::Data(Data::Fetch {
        seq: 1,
        items: vec![FetchItem::Body {
            name: "BODY[]",
            origin: None,
            data: Some(data),
        }],
    });
    match parse(&encoded(&r, Wire::default())) {
        Ok(Parsed::Data { values, .. }) => {
            let items = values[0].list().expect("a list");
            let want: Vec<u8> = data
                .iter()
                .map(|b| if *b == 0 { 0x80 } else { *b })
                .collect();
            assert_eq!(items[1], Value::Str(want));
        }
        other => panic!("{other:?}"),
    }
    // A value tree and body items, as FETCH writes them: strings of any
    // bytes come back as they were (a NUL as 0x80), BINARY's exactly.
    let nul80 =
        |d: &[u8]| -> Vec<u8> { d.iter().map(|b| if *b == 0 { 0x80 } else { *b }).collect() };
    let (a, b) = data.split_at(data.len() / 2);
    let tree = Tree::List(vec![
        Tree::str(a),
        Tree::Nil,
        Tree::List(vec![Tree::Run(vec![
            Tree::List(vec![Tree::str(b), Tree::Num(data.len() as u64)]),
            Tree::List(vec![Tree::Nil]),
        ])]),
    ]);
    let sec = Section {
        part: vec![1, 2],
        text: Some(SectionText::HeaderFields(vec!["Subject".into()])),
    };
    let mut line = Vec::new();
    fetch_open(&mut line, 7);
    for (i, item) in [
        FetchItem::Envelope(tree),
        FetchItem::Literal {
            name: BodyName::Body(&sec),
            origin: Some(3),
            data,
        },
        FetchItem::Literal {
            name: BodyName::Binary(&[1]),
            origin: None,
            data,
        },
    ]
    .iter()
    .enumerate()
    {
        fetch_next(&mut line, item, i == 0);
    }
    fetch_close(&mut line);
    match parse(&line) {
        Ok(Parsed::Data { values, .. }) => {
            let items = values[0].list().expect("a list");
            let t = items[1].list().expect("a tree");
            assert_eq!(t[0], Value::Str(nul80(a)));
            assert_eq!(t[1], Value::Nil);
            let run = t[2].list().expect("a run in a list");
            assert_eq!(run.len(), 2);
            let first = run[0].list().expect("a list");
            assert_eq!(first[0], Value::Str(nul80(b)));
            assert_eq!(items[3], Value::Str(nul80(data)));
            assert_eq!(items[5], Value::Str(data.to_vec()));
        }
        other => panic!("{other:?}"),
    }
});
