//! Any text as a Sieve script, with every extension enabled: compiling
//! must never panic, and an error must point inside the script. What
//! compiles is then run over a small fixed message, which must not panic
//! either.
#![no_main]
use kmpromail::sieve::{compile, Env, Envelope, Extensions, Message};
use libfuzzer_sys::fuzz_target;

struct Quiet;

impl Env for Quiet {
    fn now(&self) -> (i64, i32) {
        (1_796_441_400, 480)
    }
}

const MSG: &[u8] = b"From: =?GB2312?B?1cXI/Q==?= <a+b@example.cn>\r\nTo: me@example.com\r\n\
Subject: =?UTF-8?B?5Lya6K6u?= [x] y\r\nDate: Tue, 1 Dec 2026 09:05:07 +0800\r\n\
Message-ID: <1@example.cn>\r\n\r\nbody\r\n";

fuzz_target!(|data: &[u8]| {
    let Ok(src) = std::str::from_utf8(data) else {
        return;
    };
    match compile(src, &Extensions::all()) {
        Err(e) => {
            let lines = src.split('\n').count() as u32;
            assert!(e.line >= 1 && e.line <= lines.max(1), "{e}");
            assert!(e.column >= 1);
        }
        Ok(script) => {
            let env = Envelope {
                from: "a+b@example.cn".into(),
                to: "me@example.com".into(),
                auth: None,
            };
            let _ = script.run(&Message::parse(MSG), &env, &mut Quiet);
        }
    }
});
