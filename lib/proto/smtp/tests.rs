//! Command tables, replayed in chunks of 1, 2, 3, 7, 64 and 512 bytes, and
//! the malformed-input table.

use super::*;
use crate::queue::envelope::{Notify, Ret};

const CHUNKS: &[usize] = &[1, 2, 3, 7, 64, 512];

/// Feeds `input` in chunks of `n` bytes into a buffer, as a server does,
/// and collects every outcome (commands and errors) in order.
fn replay(input: &[u8], n: usize) -> Vec<Result<Command, ParseError>> {
    let mut reader = CommandReader::new();
    let mut buf = Vec::new();
    let mut out = Vec::new();
    for chunk in input.chunks(n) {
        buf.extend_from_slice(chunk);
        loop {
            let (used, r) = reader.command(&buf);
            buf.drain(..used);
            match r {
                Err(ParseError::NeedsMoreData) => break,
                r => out.push(r),
            }
        }
        assert!(
            buf.len() <= command::MAX_AUTH_LINE,
            "buffer grows without bound"
        );
    }
    out
}

fn mailbox(s: &str) -> Mailbox {
    address::parse_mailbox(s).unwrap()
}

fn one(line: &str) -> Result<Command, ParseError> {
    let input = format!("{line}\r\n");
    let mut seen = None;
    for &n in CHUNKS {
        let got = replay(input.as_bytes(), n);
        assert_eq!(got.len(), 1, "{line:?} by {n}: {got:?}");
        if let Some(prev) = &seen {
            assert_eq!(prev, &got[0], "{line:?} differs by {n}");
        }
        seen = Some(got[0].clone());
    }
    seen.unwrap()
}

#[test]
fn commands_parse_in_any_chunking() {
    let table: Vec<(&str, Command)> = vec![
        (
            "EHLO client.example.test",
            Command::Ehlo("client.example.test".into()),
        ),
        ("ehlo [192.0.2.1]", Command::Ehlo("[192.0.2.1]".into())),
        (
            "EHLO [IPv6:2001:DB8::1]",
            Command::Ehlo("[IPv6:2001:db8::1]".into()),
        ),
        ("HELO [ipv6:::1]", Command::Helo("[IPv6:::1]".into())),
        ("HELO x", Command::Helo("x".into())),
        (
            "MAIL FROM:<>",
            Command::Mail {
                from: None,
                params: MailParams::default(),
            },
        ),
        (
            "mail from: <a@example.test> SIZE=99 BODY=8BITMIME",
            Command::Mail {
                from: Some(mailbox("a@example.test")),
                params: MailParams {
                    size: Some(99),
                    body: Some(Body::EightBitMime),
                    ..MailParams::default()
                },
            },
        ),
        (
            "MAIL FROM:<ü@例子.test> SMTPUTF8 RET=FULL ENVID=x+2By",
            Command::Mail {
                from: Some(mailbox("ü@例子.test")),
                params: MailParams {
                    smtputf8: true,
                    ret: Some(Ret::Full),
                    envid: Some("x+y".into()),
                    ..MailParams::default()
                },
            },
        ),
        (
            "RCPT TO:<b@example.test> NOTIFY=FAILURE ORCPT=rfc822;b@example.test",
            Command::Rcpt {
                to: ForwardPath::Mailbox(mailbox("b@example.test")),
                params: RcptParams {
                    notify: Some(Notify {
                        success: false,
                        failure: true,
                        delay: false,
                    }),
                    orcpt: Some("rfc822;b@example.test".into()),
                },
            },
        ),
        (
            "RCPT TO:<Postmaster>",
            Command::Rcpt {
                to: ForwardPath::Postmaster,
                params: RcptParams::default(),
            },
        ),
        ("DATA", Command::Data),
        (
            "BDAT 1000",
            Command::Bdat {
                size: 1000,
                last: false,
            },
        ),
        (
            "bdat 0 last",
            Command::Bdat {
                size: 0,
                last: true,
            },
        ),
        ("RSET", Command::Rset),
        ("NOOP anything at all", Command::Noop),
        ("QUIT", Command::Quit),
        ("HELP mail", Command::Help),
        ("VRFY postmaster", Command::Vrfy),
        ("EXPN list", Command::Expn),
        ("STARTTLS", Command::StartTls),
        (
            "AUTH PLAIN AHVAcHc=",
            Command::Auth {
                mechanism: Mechanism::Plain,
                initial: Some("AHVAcHc=".into()),
            },
        ),
        (
            "auth login",
            Command::Auth {
                mechanism: Mechanism::Login,
                initial: None,
            },
        ),
        (
            "AUTH CRAM-MD5",
            Command::Auth {
                mechanism: Mechanism::Other("CRAM-MD5".into()),
                initial: None,
            },
        ),
        ("XCLIENT ADDR=1.2.3.4", Command::Unknown("XCLIENT".into())),
        ("GET / HTTP/1.0", Command::Unknown("GET".into())),
    ];
    for (line, want) in table {
        assert_eq!(one(line), Ok(want), "{line:?}");
    }
}

#[test]
fn malformed_commands_get_their_error() {
    let table: Vec<(&[u8], ParseError)> = vec![
        (b"EHLO", ParseError::HeloSyntax),
        (b"HELO ", ParseError::HeloSyntax),
        (b"EHLO [IPv6:2001:db8::g]", ParseError::HeloLiteral),
        (b"EHLO [2001:db8::1]", ParseError::HeloLiteral),
        (b"EHLO [192.0.2.256]", ParseError::HeloLiteral),
        (b"EHLO [IPv6:192.0.2.1", ParseError::HeloLiteral),
        (b"EHLO [example.test]", ParseError::HeloLiteral),
        (b"MAIL <a@b.test>", ParseError::MailSyntax),
        (
            b"MAIL FROM:a b@c.test",
            ParseError::BadSender(AddressError::Syntax),
        ),
        (b"MAIL FROM:<a@b.test> FOO=1", ParseError::UnknownParameter),
        (b"MAIL FROM:<a@b.test> SIZE=x", ParseError::BadParameter),
        (
            b"MAIL FROM:<a@b.test> SIZE=1 SIZE=2",
            ParseError::DuplicateParameter,
        ),
        (b"RCPT <a@b.test>", ParseError::RcptSyntax),
        (
            b"RCPT TO:<>",
            ParseError::BadRecipient(AddressError::Syntax),
        ),
        (
            b"RCPT TO:<Postmaster>x",
            ParseError::BadRecipient(AddressError::Syntax),
        ),
        (b"RCPT TO:<a@b.test> SIZE=1", ParseError::UnknownParameter),
        (b"DATA now", ParseError::Arguments),
        (b"QUIT please", ParseError::Arguments),
        (b"RSET x", ParseError::Arguments),
        (b"VRFY", ParseError::Arguments),
        (b"BDAT", ParseError::Arguments),
        (b"BDAT -1", ParseError::Arguments),
        (b"BDAT 1 FIRST", ParseError::Arguments),
        (b"BDAT 123456789012345678901", ParseError::Arguments),
        (b"AUTH", ParseError::Arguments),
        (b"AUTH PL@IN", ParseError::Arguments),
        (b"NO\x00OP", ParseError::InvalidCharacters),
        (b"\xff\xfe", ParseError::InvalidCharacters),
        (b"", ParseError::InvalidCharacters),
        (b"NOOP \x1b[2J", ParseError::InvalidCharacters),
    ];
    for (line, want) in table {
        let input = [line, b"\r\n"].concat();
        for &n in CHUNKS {
            assert_eq!(replay(&input, n), vec![Err(want)], "{line:?} by {n}");
        }
    }
}

#[test]
fn long_lines_are_refused_once_and_skipped() {
    let mut input = format!("NOOP {}\r\n", "x".repeat(600)).into_bytes();
    input.extend_from_slice(b"QUIT\r\n");
    // A line at the cap exactly is fine: 510 octets and CRLF.
    let fits = format!("NOOP {}\r\n", "x".repeat(505));
    // A MAIL line may be longer (RFC 1870, 3461, 4954 extensions).
    let mail = format!("MAIL FROM:<a@b.test> ENVID={}\r\n", "e".repeat(100));
    let mail = mail.replace("ENVID=", &format!("AUTH={} ENVID=", "u".repeat(480)));
    for &n in CHUNKS {
        assert_eq!(
            replay(&input, n),
            vec![Err(ParseError::LineTooLong), Ok(Command::Quit)],
            "by {n}"
        );
        assert_eq!(replay(fits.as_bytes(), n), vec![Ok(Command::Noop)]);
        assert!(
            matches!(replay(mail.as_bytes(), n)[..], [Ok(Command::Mail { .. })]),
            "by {n}"
        );
    }
    // No line end ever: the reader reports once and keeps nothing.
    let endless = vec![b'A'; 100_000];
    for &n in CHUNKS {
        assert_eq!(
            replay(&endless, n),
            vec![Err(ParseError::LineTooLong)],
            "by {n}"
        );
    }
}

#[test]
fn pipelined_commands_come_out_in_order_and_bare_lf_ends_a_command() {
    let input = b"MAIL FROM:<a@b.test>\r\nRCPT TO:<c@d.test>\nDATA\r\n";
    for &n in CHUNKS {
        let got = replay(input, n);
        assert_eq!(got.len(), 3);
        assert!(matches!(got[0], Ok(Command::Mail { .. })));
        assert!(matches!(got[1], Ok(Command::Rcpt { .. })));
        assert_eq!(got[2], Ok(Command::Data));
    }
}

#[test]
fn auth_lines_are_read_and_checked() {
    let mut r = CommandReader::new();
    assert_eq!(r.auth_line(b"dXNlcg==\r\n"), (10, Ok("dXNlcg==".into())));
    assert_eq!(r.auth_line(b"dXNl"), (0, Err(ParseError::NeedsMoreData)));
    assert_eq!(
        r.auth_line(b"a b\r\n"),
        (5, Err(ParseError::InvalidCharacters))
    );
    assert_eq!(r.auth_line(b"*\r\n"), (3, Ok("*".into())));
}
