//! Any bytes, cut anywhere, through the SMTP command reader: it must never
//! panic, and never hold more than its largest line cap.
#![no_main]
use kmpromail::proto::smtp::command::MAX_AUTH_LINE;
use kmpromail::proto::smtp::{CommandReader, ParseError};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let split = data.first().map(|b| *b as usize % 64 + 1).unwrap_or(1);
    let mut reader = CommandReader::new();
    let mut buf = Vec::new();
    for chunk in data.chunks(split) {
        buf.extend_from_slice(chunk);
        loop {
            let (used, r) = if buf.first() == Some(&b'*') {
                let (u, r) = reader.auth_line(&buf);
                (u, r.map(|_| ()))
            } else {
                let (u, r) = reader.command(&buf);
                (u, r.map(|_| ()))
            };
            buf.drain(..used);
            if r == Err(ParseError::NeedsMoreData) {
                break;
            }
        }
        assert!(buf.len() <= MAX_AUTH_LINE + split);
    }
});
