//! Any bytes, cut anywhere, through kmp-imapd's framer and command parser as
//! the server drives them (continuations, rejects, discarded over-long
//! lines, streamed APPEND literals put back as empty ones): it must never
//! panic, and the buffer it asks to keep must stay within its caps.
#![no_main]
use kmpromail::proto::imap::{empty_literal, parse_command, Frame, Framer, Limits};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&first, data)) = data.split_first() else {
        return;
    };
    let split = first as usize % 64 + 1;
    let limits = if first & 0x80 != 0 {
        Limits::BEFORE_LOGIN
    } else {
        Limits::default()
    };
    // What the framer may make the server hold: every literal at its
    // largest, a line between each, and one read's worth more.
    let cap = (limits.max_line + limits.max_literal as usize) * (limits.max_literals + 1) + split;
    let mut framer = Framer::new(limits);
    let mut buf: Vec<u8> = Vec::new();
    // A streamed APPEND literal: bytes still to skip, and the head to put back.
    let mut streaming: Option<(u64, Vec<u8>)> = None;
    for chunk in data.chunks(split) {
        let mut chunk = chunk;
        if let Some((left, head)) = streaming.take() {
            let n = (left as usize).min(chunk.len());
            chunk = &chunk[n..];
            let left = left - n as u64;
            if left > 0 {
                streaming = Some((left, head));
                continue;
            }
            let mut again = empty_literal(&head);
            again.extend_from_slice(&buf);
            buf = again;
            framer.restart();
        }
        buf.extend_from_slice(chunk);
        loop {
            match framer.frame(&buf) {
                Frame::Command(n) => {
                    assert!(n <= buf.len());
                    let _ = parse_command(&buf[..n]);
                    buf.drain(..n);
                }
                Frame::Incomplete => break,
                Frame::Continue => continue,
                Frame::Reject { consumed, .. } => {
                    assert!(consumed <= buf.len());
                    buf.drain(..consumed);
                }
                Frame::Discard(n) => {
                    assert!(n <= buf.len());
                    buf.drain(..n);
                    if n == 0 {
                        break;
                    }
                }
                Frame::Stream { head, size, .. } => {
                    assert!(head <= buf.len());
                    let head: Vec<u8> = buf.drain(..head).collect();
                    let n = (size as usize).min(buf.len());
                    buf.drain(..n);
                    let left = size - n as u64;
                    if left > 0 {
                        streaming = Some((left, head));
                        break;
                    }
                    let mut again = empty_literal(&head);
                    again.extend_from_slice(&buf);
                    buf = again;
                    framer.restart();
                }
            }
        }
        assert!(buf.len() <= cap, "{} bytes held", buf.len());
    }
});
