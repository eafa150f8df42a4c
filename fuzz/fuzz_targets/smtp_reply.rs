//! Any bytes through kmp-remote's SMTP reply parser: no panic, lines and
//! replies within their caps, and the same replies however the input is cut.
#![no_main]
use kmpromail::remote::reply::{ReplyParser, MAX_LINE, MAX_LINES};
use libfuzzer_sys::fuzz_target;

fn replay(data: &[u8], n: usize) -> Vec<String> {
    let mut p = ReplyParser::new();
    let mut out = Vec::new();
    for chunk in data.chunks(n.max(1)) {
        p.push(chunk);
        loop {
            match p.next_reply() {
                Ok(Some(r)) => {
                    assert!((200..600).contains(&r.code));
                    assert!(r.lines.len() <= MAX_LINES);
                    assert!(r.lines.iter().all(|l| l.len() <= MAX_LINE * 3));
                    out.push(r.one_line());
                }
                Ok(None) => break,
                Err(e) => out.push(format!("error: {e}")),
            }
        }
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let whole = replay(data, data.len());
    assert_eq!(whole, replay(data, 1));
    assert_eq!(whole, replay(data, 7));
});
