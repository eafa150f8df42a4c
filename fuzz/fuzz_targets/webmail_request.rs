//! The webmail's request parser (lib/webmail/request.rs, multipart.rs) and
//! its readers of untrusted text: any environment values and body give a
//! request or an error, never a panic; the body is never read past
//! CONTENT_LENGTH; cookies that were not sealed by the key never open.
#![no_main]

use kmpromail::webmail::lang::choose;
use kmpromail::webmail::multipart::{parse as multipart, Limits};
use kmpromail::webmail::request::{parse_cookies, parse_urlencoded, Request};
use kmpromail::webmail::seal::Keys;
use kmpromail::webmail::state::{Prefs, SessionList};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The first line is the content type, the rest the body.
    let (head, body) = match data.iter().position(|b| *b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &b""[..]),
    };
    let ctype = String::from_utf8_lossy(head).to_string();
    let text = String::from_utf8_lossy(body).to_string();
    let length = body.len().to_string();
    let env = |k: &str| -> Option<String> {
        match k {
            "REQUEST_METHOD" => Some("POST".into()),
            "CONTENT_TYPE" => Some(ctype.clone()),
            "CONTENT_LENGTH" => Some(length.clone()),
            "PATH_INFO" | "QUERY_STRING" | "HTTP_COOKIE" | "REQUEST_URI" => Some(text.clone()),
            _ => None,
        }
    };
    let mut input = body;
    let _ = Request::parse(&env, &mut input, 1 << 20);
    let _ = multipart(&mut &body[..], "b", &Limits::default());
    let _ = parse_urlencoded(body);
    let _ = parse_cookies(&text);
    let _ = choose(None, &text, &["en".into(), "zh-CN".into(), "zh-TW".into()]);
    let _ = SessionList::parse(Some(body)).live("AAAAAAAAAAAAAAAAAAAAAA", 0);
    let _ = Prefs::parse(Some(body), 25);
    assert!(Keys::from_bytes(&[7; 32]).open(&text).is_none());
});
