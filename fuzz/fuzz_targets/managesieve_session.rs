//! Any bytes, cut anywhere, through the ManageSieve decoder and session
//! (logging in succeeds, the scripts' home does not exist so nothing is
//! written): nothing may panic, and the input buffer never holds more than
//! a line and a literal.
#![no_main]
use kmpromail::sieve::Extensions;
use kmpromail::sieved::proto::{Decoder, MAX_LINE};
use kmpromail::sieved::session::{Action, LoginResult, Policy, Session};
use kmpromail::sievestore::Limits;
use libfuzzer_sys::fuzz_target;

const MAX_LITERAL: u64 = 4096;

fn perform(s: &mut Session, acts: Vec<Action>) {
    for a in acts {
        let more = match a {
            Action::Login { .. } => s.login_result(LoginResult::Ok {
                address: "u@example.test".into(),
                home: "/nonexistent/kmp-fuzz".into(),
            }),
            Action::StartTls => s.tls_started(),
            _ => Vec::new(),
        };
        perform(s, more);
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&cut, rest)) = data.split_first() else {
        return;
    };
    let mut s = Session::new(Policy {
        tls_available: true,
        tls_active: false,
        plaintext_ok: true,
        max_errors: 1000,
        limits: Limits {
            max_scripts: 5,
            max_script_size: MAX_LITERAL,
            quota_bytes: 4 * MAX_LITERAL,
        },
        extensions: Extensions::all(),
        max_redirects: 4,
    });
    let mut d = Decoder::new(MAX_LITERAL);
    let mut buf = Vec::new();
    let step = usize::from(cut).max(1);
    for chunk in rest.chunks(step) {
        buf.extend_from_slice(chunk);
        while let Some(line) = d.next(&mut buf) {
            let acts = s.line(line);
            perform(&mut s, acts);
        }
        assert!(buf.len() <= MAX_LINE + MAX_LITERAL as usize + 2 * step + 64);
    }
});
