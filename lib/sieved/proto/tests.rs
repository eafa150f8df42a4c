use super::*;

/// Feeds `input` in chunks of `n` octets; returns every line found.
fn replay(input: &[u8], n: usize) -> Vec<Line> {
    let mut d = Decoder::new(1000);
    let mut buf = Vec::new();
    let mut out = Vec::new();
    for chunk in input.chunks(n) {
        buf.extend_from_slice(chunk);
        while let Some(l) = d.next(&mut buf) {
            out.push(l);
        }
    }
    out
}

fn s(x: &str) -> Arg {
    Arg::String(x.as_bytes().to_vec())
}

const GOOD: &[(&str, &[&str])] = &[
    ("CAPABILITY\r\n", &["A:CAPABILITY"]),
    (
        "putscript \"a b\" {5+}\r\nkeep;\r\n",
        &["A:putscript", "S:a b", "S:keep;"],
    ),
    (
        "PUTSCRIPT {3}\r\nabc {2+}\r\nxy\r\n",
        &["A:PUTSCRIPT", "S:abc", "S:xy"],
    ),
    (
        "HAVESPACE \"x\\\"y\\\\\" 123\r\n",
        &["A:HAVESPACE", "S:x\"y\\", "N:123"],
    ),
    (
        "AUTHENTICATE \"PLAIN\" \"AHVAcA==\"\r\n",
        &["A:AUTHENTICATE", "S:PLAIN", "S:AHVAcA=="],
    ),
    ("\"c29tZQ==\"\r\n", &["S:c29tZQ=="]),
];

fn expect(spec: &[&str]) -> Vec<Arg> {
    spec.iter()
        .map(|t| match t.split_at(2) {
            ("A:", a) => Arg::Atom(a.to_string()),
            ("S:", x) => s(x),
            ("N:", n) => Arg::Number(n.parse().unwrap()),
            _ => unreachable!(),
        })
        .collect()
}

#[test]
fn good_lines_in_every_chunking() {
    for (input, spec) in GOOD {
        for n in [1, 2, 3, 7, 64, 512] {
            let lines = replay(input.as_bytes(), n);
            assert_eq!(lines, vec![Line::Args(expect(spec))], "{input:?} in {n}");
        }
    }
}

const BAD: &[(&str, &str)] = &[
    ("\r\n", "empty command"),
    ("GETSCRIPT \"a\rb\"\r\n", "CR, LF or NUL in a quoted string"),
    ("GETSCRIPT \"a\\nb\"\r\n", "bad escape in a quoted string"),
    ("GETSCRIPT {x}\r\n", "bad literal"),
    ("GETSCRIPT (a)\r\n", "syntax error"),
    ("GETSCRIPT \"a\"x\r\n", "syntax error"),
    ("A B C D E\r\n", "too many arguments"),
    ("PUTSCRIPT \"a\" {2000+}\r\n", "literal too large"),
];

#[test]
fn bad_lines_are_reported_once_and_the_next_line_is_read() {
    for (input, why) in BAD {
        let mut all = input.as_bytes().to_vec();
        if input.contains("2000") {
            all.extend(std::iter::repeat_n(b'x', 2000));
            all.extend_from_slice(b"\r\n");
        }
        all.extend_from_slice(b"NOOP\r\n");
        for n in [1, 2, 3, 7, 64, 512] {
            let lines = replay(&all, n);
            assert_eq!(lines.len(), 2, "{input:?} in {n}: {lines:?}");
            match &lines[0] {
                Line::Bad(b) => assert_eq!(b.message, *why, "{input:?}"),
                l => panic!("{input:?}: {l:?}"),
            }
            assert_eq!(lines[1], Line::Args(vec![Arg::Atom("NOOP".into())]));
        }
    }
}

#[test]
fn an_endless_line_is_not_kept() {
    let mut d = Decoder::new(1000);
    let mut buf = Vec::new();
    let mut bad = 0;
    for _ in 0..100 {
        buf.extend(std::iter::repeat_n(b'a', 1000));
        while let Some(l) = d.next(&mut buf) {
            assert!(matches!(l, Line::Bad(_)));
            bad += 1;
        }
        assert!(buf.len() <= MAX_LINE + 1000, "{}", buf.len());
    }
    buf.extend_from_slice(b"\r\nNOOP\r\n");
    let mut lines = Vec::new();
    while let Some(l) = d.next(&mut buf) {
        lines.push(l);
    }
    assert_eq!(bad + lines.len(), 2);
}

#[test]
fn commands_are_typed() {
    let c = |l: &[u8]| match replay(l, 512).pop() {
        Some(Line::Args(a)) => command(a),
        other => panic!("{other:?}"),
    };
    assert_eq!(
        c("renamescript \"a\" \"规则\"\r\n".as_bytes()),
        Ok(Command::RenameScript {
            old: "a".into(),
            new: "规则".into()
        })
    );
    assert_eq!(
        c(b"SETACTIVE \"\"\r\n"),
        Ok(Command::SetActive { name: "".into() })
    );
    assert_eq!(c(b"FOO\r\n"), Ok(Command::Unknown("FOO".into())));
    assert!(c(b"GETSCRIPT\r\n").is_err());
    assert!(c(b"HAVESPACE \"a\" \"b\"\r\n").is_err());
    assert!(c(b"GETSCRIPT {2+}\r\n\xff\xfe\r\n").is_err());
}

#[test]
fn strings_go_out_quoted_or_as_literals() {
    assert_eq!(string(b"a\"b"), b"\"a\\\"b\"");
    assert_eq!(string(b"a\r\nb"), b"{4}\r\na\r\nb");
    assert_eq!(
        response("NO", Some("NONEXISTENT"), "no"),
        b"NO (NONEXISTENT) \"no\"\r\n"
    );
    assert_eq!(response("OK", None, ""), b"OK\r\n");
}
