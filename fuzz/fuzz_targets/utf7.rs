//! Modified UTF-7 mailbox names (lib/proto/utf7.rs) and the folder-name
//! mapping built on it: decoding never panics, whatever decodes re-encodes to
//! the same bytes, and a name that maps to a directory stays inside the
//! Maildir (one path component, a leading dot, no "..").
#![no_main]

use kmpromail::maildir::folder::{dir_name, folder_name};
use kmpromail::proto::utf7;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    if let Ok(d) = utf7::decode(s) {
        assert_eq!(utf7::encode(&d), s);
    }
    assert_eq!(utf7::decode(&utf7::encode(s)).as_deref(), Ok(s));
    if let Ok(dir) = dir_name(s) {
        assert!(dir.starts_with('.') && !dir.contains('/') && !dir.contains(".."));
        assert!(dir.len() <= kmpromail::maildir::folder::MAX_DIR_NAME);
        let expected = match s.split_once('.') {
            Some((first, rest)) if first.eq_ignore_ascii_case("INBOX") => format!("INBOX.{rest}"),
            _ => s.to_string(),
        };
        assert_eq!(folder_name(&dir), Some(expected));
    }
});
