//! Any SASL response line through the shared decoder (`proto::sasl`): no
//! panic; a PLAIN message that decodes names a non-empty UTF-8 user and a
//! non-empty password without NUL, within the caps.
#![no_main]
use kmpromail::proto::sasl::{
    decode_plain, login_response, plain_response, MAX_IDENTITY, MAX_PASSWORD,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for p in [plain_response(data).ok(), decode_plain(data).ok()]
        .into_iter()
        .flatten()
    {
        assert!(!p.user.is_empty() && p.user.len() <= MAX_IDENTITY);
        assert!(!p.password.is_empty() && p.password.len() <= MAX_PASSWORD);
        assert!(!p.password.as_bytes().contains(&0));
    }
    if let Ok(s) = login_response(data) {
        assert!(s.as_str().is_some() && !s.as_bytes().contains(&0));
    }
});
