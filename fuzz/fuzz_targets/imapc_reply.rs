//! The IMAP client's response reader (lib/imapc/reply.rs) and what is built
//! on it: framing any byte stream into responses never panics and never
//! reads past its caps; parsing any bytes gives a response or an error; the
//! envelope and body-structure readers take whatever values come; and a
//! string the client quotes has no CR, LF or NUL and reads back the same.
#![no_main]

use kmpromail::imapc::command::{encode_str, Encoded};
use kmpromail::imapc::reply::{parse, read_response, Response, Value, MAX_RESPONSE};
use kmpromail::imapc::types::{body_structure, envelope, priority};
use libfuzzer_sys::fuzz_target;

fn walk(v: &Value) {
    let _ = envelope(v);
    let _ = body_structure(v).map(|b| (b.parts().len(), b.has_attachment()));
    if let Some(l) = v.list() {
        l.iter().for_each(walk);
    }
}

fuzz_target!(|data: &[u8]| {
    for utf8 in [false, true] {
        if let Ok(Encoded::Quoted(q)) = encode_str(data, utf8) {
            assert!(!q.iter().any(|c| matches!(c, b'\r' | b'\n' | 0)));
            let line = [b"* X ".as_slice(), &q, b"\r\n"].concat();
            match parse(&line) {
                Ok(Response::Data { values, .. }) => {
                    assert_eq!(values, vec![Value::Str(data.to_vec())])
                }
                other => panic!("{other:?}"),
            }
        }
    }
    let _ = parse(data);
    let _ = priority(data);
    let mut r = std::io::BufReader::with_capacity(7, data);
    let mut buf = Vec::new();
    while read_response(&mut r, &mut buf).is_ok() {
        assert!(buf.len() <= MAX_RESPONSE);
        if let Ok(Response::Data { values, .. }) = parse(&buf) {
            values.iter().for_each(walk);
        }
    }
});
