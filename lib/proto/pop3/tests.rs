//! The decoder's tables, replayed in chunks of 1, 2, 3, 7, 64 and 512 bytes.

use super::*;

const CHUNKS: &[usize] = &[1, 2, 3, 7, 64, 512];

fn msg(n: u32) -> MsgNum {
    MsgNum(n)
}

fn pass(s: &str) -> Command {
    Command::Pass(Secret::new(s.as_bytes().to_vec()))
}

/// Good input: each line and the command it is.
fn good() -> Vec<(&'static str, Command)> {
    vec![
        ("USER alice\r\n", Command::User("alice".into())),
        (
            "user alice@example.test\r\n",
            Command::User("alice@example.test".into()),
        ),
        ("USER  bob \r\n", Command::User("bob".into())),
        ("PASS secret\r\n", pass("secret")),
        ("PASS with two  spaces \r\n", pass("with two  spaces ")),
        ("pass  lead\n", pass(" lead")),
        ("STAT\r\n", Command::Stat),
        ("stat\n", Command::Stat),
        ("LIST\r\n", Command::List(None)),
        ("LIST 1\r\n", Command::List(Some(msg(1)))),
        ("list 4294967295\r\n", Command::List(Some(msg(u32::MAX)))),
        ("RETR 12\r\n", Command::Retr(msg(12))),
        ("DELE 3\r\n", Command::Dele(msg(3))),
        ("NOOP\r\n", Command::Noop),
        ("RSET\r\n", Command::Rset),
        ("QUIT\r\n", Command::Quit),
        ("TOP 1 0\r\n", Command::Top(msg(1), 0)),
        ("top 2 10\r\n", Command::Top(msg(2), 10)),
        ("UIDL\r\n", Command::Uidl(None)),
        ("UIDL 7\r\n", Command::Uidl(Some(msg(7)))),
        ("CAPA\r\n", Command::Capa),
        ("STLS\r\n", Command::Stls),
        (
            "APOP mrose c4c9334bac560ecc979e58001b3e22fb\r\n",
            Command::Apop,
        ),
        (
            "AUTH\r\n",
            Command::Auth {
                mechanism: None,
                initial: None,
            },
        ),
        (
            "AUTH plain\r\n",
            Command::Auth {
                mechanism: Some("PLAIN".into()),
                initial: None,
            },
        ),
        (
            "AUTH PLAIN AHUAcHc=\r\n",
            Command::Auth {
                mechanism: Some("PLAIN".into()),
                initial: Some(SaslData::Data(Secret::new(b"\0u\0pw".to_vec()))),
            },
        ),
        (
            "AUTH PLAIN =\r\n",
            Command::Auth {
                mechanism: Some("PLAIN".into()),
                initial: Some(SaslData::Data(Secret::new(Vec::new()))),
            },
        ),
        (
            "AUTH PLAIN *\r\n",
            Command::Auth {
                mechanism: Some("PLAIN".into()),
                initial: Some(SaslData::Cancel),
            },
        ),
        ("XTND XMIT\r\n", Command::Unknown("XTND".into())),
        ("helo\r\n", Command::Unknown("HELO".into())),
    ]
}

/// Malformed input: each line and the error it gets.
fn malformed() -> Vec<(&'static str, ParseError)> {
    let args = |verb, why| ParseError::BadArguments { verb, why };
    vec![
        ("\r\n", ParseError::Empty),
        ("   \r\n", ParseError::Empty),
        ("RETR\r\n", args("RETR", "takes one message number")),
        (
            "RETR x\r\n",
            args("RETR", "the message number is not a number from 1 up"),
        ),
        (
            "RETR 0\r\n",
            args("RETR", "the message number is not a number from 1 up"),
        ),
        (
            "RETR -1\r\n",
            args("RETR", "the message number is not a number from 1 up"),
        ),
        (
            "RETR 1.5\r\n",
            args("RETR", "the message number is not a number from 1 up"),
        ),
        (
            "RETR 4294967296\r\n",
            args("RETR", "the message number is not a number from 1 up"),
        ),
        (
            "RETR 99999999999999999999\r\n",
            args("RETR", "the message number is not a number from 1 up"),
        ),
        ("RETR 1 2\r\n", args("RETR", "takes one message number")),
        ("DELE\r\n", args("DELE", "takes one message number")),
        (
            "LIST 1 2\r\n",
            args("LIST", "takes at most one message number"),
        ),
        (
            "LIST a\r\n",
            args("LIST", "the message number is not a number from 1 up"),
        ),
        (
            "UIDL +1\r\n",
            args("UIDL", "the message number is not a number from 1 up"),
        ),
        (
            "TOP 1\r\n",
            args("TOP", "takes a message number and a line count"),
        ),
        ("TOP 1 x\r\n", args("TOP", "the line count is not a number")),
        (
            "TOP 0 1\r\n",
            args("TOP", "the message number is not a number from 1 up"),
        ),
        ("STAT now\r\n", args("STAT", "takes no arguments")),
        ("QUIT please\r\n", args("QUIT", "takes no arguments")),
        ("USER\r\n", args("USER", "takes one name")),
        ("USER a b\r\n", args("USER", "takes one name")),
        ("PASS\r\n", args("PASS", "takes a password")),
        ("PASS \r\n", args("PASS", "takes a password")),
        ("AUTH PLAIN !!!!\r\n", ParseError::BadBase64),
        (
            "AUTH PLAIN a b\r\n",
            args("AUTH", "takes a mechanism and an optional initial response"),
        ),
        ("\x01\x02\r\n", ParseError::BadVerb),
        ("VERYLONGVERBNAMEHERE\r\n", ParseError::BadVerb),
    ]
}

/// Feeds `input` in pieces of `chunk` bytes and collects every result.
fn replay(input: &[u8], chunk: usize) -> Vec<Result<Command, ParseError>> {
    let mut d = Decoder::new();
    let mut buf = Vec::new();
    let mut out = Vec::new();
    for piece in input.chunks(chunk) {
        buf.extend_from_slice(piece);
        while let Some(r) = d.next_command(&mut buf) {
            out.push(r);
        }
    }
    assert!(d.next_command(&mut buf).is_none());
    out
}

#[test]
fn good_table_in_chunks() {
    let table = good();
    let all: String = table.iter().map(|(l, _)| *l).collect();
    let want: Vec<_> = table.iter().map(|(_, c)| Ok(c.clone())).collect();
    for &c in CHUNKS {
        assert_eq!(replay(all.as_bytes(), c), want, "chunk {c}");
    }
}

#[test]
fn malformed_table_in_chunks() {
    let table = malformed();
    for (line, want) in &table {
        for &c in CHUNKS {
            // Each bad line is followed by a good one: the session goes on.
            let input = format!("{line}NOOP\r\n");
            let got = replay(input.as_bytes(), c);
            assert_eq!(
                got,
                vec![Err(want.clone()), Ok(Command::Noop)],
                "{line:?} chunk {c}"
            );
        }
    }
}

#[test]
fn overlong_lines_are_skipped_to_their_end() {
    let long = format!("USER {}\r\nNOOP\r\n", "a".repeat(5000));
    for &c in CHUNKS {
        let got = replay(long.as_bytes(), c);
        assert_eq!(
            got,
            vec![Err(ParseError::LineTooLong), Ok(Command::Noop)],
            "chunk {c}"
        );
    }
    // A line just under the cap is still a command.
    let fits = format!("PASS {}\r\n", "p".repeat(MAX_COMMAND_LINE - 7));
    assert_eq!(fits.len(), MAX_COMMAND_LINE);
    assert!(matches!(
        replay(fits.as_bytes(), 64)[..],
        [Ok(Command::Pass(_))]
    ));
    let over = format!("PASS {}\r\n", "p".repeat(MAX_COMMAND_LINE - 6));
    assert_eq!(
        replay(over.as_bytes(), 64),
        vec![Err(ParseError::LineTooLong)]
    );
}

#[test]
fn a_line_without_end_waits_and_never_grows_past_the_cap() {
    let mut d = Decoder::new();
    let mut buf = b"STA".to_vec();
    assert!(d.next_command(&mut buf).is_none());
    buf.extend_from_slice(b"T\r");
    assert!(d.next_command(&mut buf).is_none());
    buf.extend_from_slice(b"\n");
    assert_eq!(d.next_command(&mut buf), Some(Ok(Command::Stat)));
    // Endless garbage without a line end: reported once, then dropped as it comes.
    let mut reported = 0;
    for _ in 0..100 {
        buf.extend_from_slice(&[b'x'; 100]);
        while let Some(r) = d.next_command(&mut buf) {
            assert_eq!(r, Err(ParseError::LineTooLong));
            reported += 1;
        }
        assert!(buf.len() < MAX_COMMAND_LINE);
    }
    assert_eq!(reported, 1);
}

#[test]
fn sasl_lines_in_chunks() {
    let input = b"AHUAcHc=\r\n*\r\n=\r\nnot base64!\r\n";
    for &c in CHUNKS {
        let mut d = Decoder::new();
        let mut buf = Vec::new();
        let mut got = Vec::new();
        for piece in input.chunks(c) {
            buf.extend_from_slice(piece);
            while let Some(r) = d.next_sasl(&mut buf) {
                got.push(r);
            }
        }
        assert_eq!(
            got,
            vec![
                Ok(SaslData::Data(Secret::new(b"\0u\0pw".to_vec()))),
                Ok(SaslData::Cancel),
                Ok(SaslData::Data(Secret::new(Vec::new()))),
                Err(ParseError::BadBase64),
            ],
            "chunk {c}"
        );
    }
    let mut d = Decoder::new();
    let mut buf = vec![b'A'; MAX_SASL_LINE + 10];
    buf.extend_from_slice(b"\r\n*\r\n");
    assert_eq!(d.next_sasl(&mut buf), Some(Err(ParseError::LineTooLong)));
    assert_eq!(d.next_sasl(&mut buf), Some(Ok(SaslData::Cancel)));
}

#[test]
fn consumed_bytes_are_wiped_and_secrets_not_printed() {
    let mut d = Decoder::new();
    let mut buf = b"PASS hunter2\r\n".to_vec();
    let c = d.next_command(&mut buf).unwrap().unwrap();
    assert!(buf.is_empty());
    assert!(!format!("{c:?}").contains("hunter2"));
}
