//! IMAP URLs (lib/proto/imap/url.rs) and the APPEND/CATENATE/URLFETCH
//! commands that carry them: never a panic, a URLAUTH rump is a prefix of
//! the URL, and a parsed URL names a message (UID > 0) and a mailbox.
#![no_main]

use kmpromail::proto::imap::{parse_command, url};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(u) = url::parse(data) {
        assert!(u.uid > 0 && !u.mailbox.is_empty());
        if let Some(a) = &u.urlauth {
            assert!(a.rump_len <= data.len());
            let rump = &data[..a.rump_len];
            // The rump parses too, as a rump.
            let r = url::parse(rump).expect("a rump of a good URL parses");
            assert!(r.urlauth.is_some_and(|x| x.verifier.is_none()));
        }
    }
    let mut cmd = b"a APPEND INBOX CATENATE (URL \"".to_vec();
    cmd.extend(data.iter().filter(|b| **b != b'"' && **b != b'\\' && **b >= 0x20));
    cmd.extend_from_slice(b"\")\r\n");
    let _ = parse_command(&cmd);
    let mut cmd = b"a URLFETCH (".to_vec();
    cmd.extend_from_slice(data);
    cmd.extend_from_slice(b")\r\n");
    let _ = parse_command(&cmd);
});
