//! Any bytes through the DATA and BDAT body decoders: no panic, output
//! bounded by the size limit, the result independent of how the input was
//! cut, and DATA ended by the first CRLF.CRLF and nothing else.
#![no_main]
use kmpromail::proto::smtp::{BodyDecoder, Mode};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for mode in [Mode::Data, Mode::Chunks] {
        let mut whole = BodyDecoder::new(mode, 4096);
        let mut a = Vec::new();
        let (used_a, done_a) = whole.decode(data, &mut a);
        let mut cut = BodyDecoder::new(mode, 4096);
        let mut b = Vec::new();
        let mut used_b = 0;
        let mut done_b = false;
        for chunk in data.chunks(3) {
            let (u, d) = cut.decode(chunk, &mut b);
            used_b += u;
            if d {
                done_b = true;
                break;
            }
        }
        assert_eq!((used_a, done_a), (used_b, done_b));
        assert_eq!(a, b);
        assert!(a.len() <= 4096);
        assert_eq!(whole.summary(), cut.summary());
        if mode == Mode::Data {
            // No smuggling: DATA ends exactly at the first CRLF.CRLF (the
            // CRLF of the DATA line counts as the first CRLF), never earlier.
            let wire = [&b"\r\n"[..], data].concat();
            let end = wire
                .windows(5)
                .position(|w| w == b"\r\n.\r\n")
                .map(|p| p + 5 - 2);
            assert_eq!(done_a.then_some(used_a), end);
        }
    }
});
