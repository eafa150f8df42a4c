//! The IMAP client's response reader (lib/imapc/reply.rs) and what is built
//! on it: framing any byte stream into responses never panics and never
//! reads past its caps; parsing any bytes gives a response or an error; the
//! envelope and body-structure readers take whatever values come.
#![no_main]

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
