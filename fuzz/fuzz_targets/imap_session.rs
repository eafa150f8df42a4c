//! Any bytes, cut anywhere, through the IMAP framer, the command parser and
//! the session (logging in is accepted, over a real Maildir in a fresh
//! temporary directory): nothing may panic, a framed command never reaches
//! past the buffer, the buffer stays within the framer's caps, and no file
//! is written outside the user's directory.
#![no_main]
use std::sync::Arc;

use kmpromail::imapd::maildir_store::MaildirStore;
use kmpromail::imapd::session::{Action, Out, Session};
use kmpromail::imapd::Settings;
use kmpromail::proto::imap::{empty_literal, parse_command, Frame, Framer};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let split = data.first().map(|b| *b as usize % 64 + 1).unwrap_or(1);
    let top = std::env::temp_dir().join(format!("kmp-fuzz-imap-{}", std::process::id()));
    let root = top.join("user");
    let _ = std::fs::remove_dir_all(&top);
    std::fs::create_dir_all(&root).expect("temporary directory");

    let mut s = Session::new(Arc::new(Settings::for_tests()), false, true);
    let mut framer = Framer::new(s.limits());
    let mut buf: Vec<u8> = Vec::new();
    let mut sink = |_: &[u8]| Ok(());
    'outer: for chunk in data.chunks(split) {
        buf.extend_from_slice(chunk);
        loop {
            framer.set_limits(s.limits());
            let limits = s.limits();
            let mut out = Out::new(&mut sink);
            let action = match framer.frame(&buf) {
                Frame::Command(n) => {
                    assert!(n <= buf.len());
                    let parsed = parse_command(&buf[..n]);
                    buf.drain(..n);
                    match parsed {
                        Ok(cmd) => s.handle(cmd, &mut out).expect("output to memory"),
                        Err(e) => s.bad(&e.tag.unwrap_or_else(|| "*".into()), &e.message, &mut out),
                    }
                }
                Frame::Reject { tag, reason, consumed, .. } => {
                    assert!(consumed <= buf.len());
                    buf.drain(..consumed);
                    s.bad(&tag.unwrap_or_else(|| "*".into()), reason, &mut out)
                }
                Frame::Discard(n) => {
                    assert!(n <= buf.len());
                    buf.drain(..n);
                    if n > 0 {
                        continue;
                    }
                    break;
                }
                Frame::Stream { head, size, .. } => {
                    // The message goes elsewhere: drop what of it arrived.
                    assert!(head <= buf.len());
                    let head: Vec<u8> = buf.drain(..head).collect();
                    let take = (size as usize).min(buf.len());
                    buf.drain(..take);
                    if take < size as usize {
                        break 'outer;
                    }
                    let mut rest = empty_literal(&head);
                    rest.extend_from_slice(&buf);
                    buf = rest;
                    framer.restart();
                    continue;
                }
                Frame::Continue => continue,
                Frame::Incomplete => {
                    let cap = limits.max_line * (limits.max_literals + 1)
                        + limits.max_literal as usize * limits.max_literals;
                    assert!(buf.len() <= cap + split, "{} buffered", buf.len());
                    break;
                }
            };
            match action {
                Action::Login { tag, user, .. } => {
                    let store = MaildirStore::open(&root, 0, 0).expect("maildir");
                    s.finish_login(&tag, Ok((user, Box::new(store))), &mut out);
                }
                Action::Close | Action::Abuse => break 'outer,
                _ => {}
            }
        }
    }
    drop(s);
    // Nothing but the user's directory was made.
    let made: Vec<_> = std::fs::read_dir(&top).expect("listing").flatten().map(|e| e.file_name()).collect();
    assert_eq!(made, vec![std::ffi::OsString::from("user")]);
    let _ = std::fs::remove_dir_all(&top);
});
