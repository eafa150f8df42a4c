//! Any message through kmp-remote's 7-bit downgrade and wire encoder: no
//! panic; a downgrade that succeeds is pure 7-bit, and the wire form always
//! ends with CRLF.CRLF.
#![no_main]
use kmpromail::remote::body::{downgrade, has_8bit, to_wire};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = downgrade(data) {
        assert!(!has_8bit(&m));
    }
    let w = to_wire(data);
    assert!(w.ends_with(b"\r\n.\r\n") || w == b".\r\n");
});
