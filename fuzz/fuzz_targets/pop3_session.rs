//! Any bytes, cut anywhere, through the POP3 decoder and the session state
//! machine (logged in with a small listing), and through the message
//! encoder: nothing may panic, the input buffer never grows past the SASL
//! line cap, and the encoder's output always ends the response.
#![no_main]
use kmpromail::ipc::authd::UserInfo;
use kmpromail::pop3d::session::{Action, LoginOutcome, MessageInfo, Policy, Session};
use kmpromail::proto::pop3::encode::Encoder;
use kmpromail::proto::pop3::{Decoder, MAX_SASL_LINE};
use libfuzzer_sys::fuzz_target;

fn user() -> UserInfo {
    UserInfo {
        address: "u@example.test".into(),
        mail_path: "/nonexistent".into(),
        quota_bytes: 0,
        quota_messages: 0,
        active: true,
        forwards: Vec::new(),
        keep_copy: false,
        pop3_subfolders: false,
        login_delay: 0,
    }
}

fn perform(s: &mut Session, acts: Vec<Action>) {
    for a in acts {
        let more = match a {
            Action::Authenticate { .. } => s.authenticated(LoginOutcome::Ok {
                user: user(),
                since_last_login: None,
            }),
            Action::OpenMaildrop { .. } => s.maildrop_opened(Ok((1..=3)
                .map(|i| MessageInfo {
                    size: 100 * i,
                    uidl: format!("{i:08X}00000001"),
                })
                .collect())),
            Action::Expunge { indexes } => s.updated(indexes.len(), 3 - indexes.len(), true),
            Action::StartTls => {
                s.tls_started();
                Vec::new()
            }
            _ => Vec::new(),
        };
        perform(s, more);
    }
}

fuzz_target!(|data: &[u8]| {
    let split = data.first().map(|b| *b as usize % 64 + 1).unwrap_or(1);
    let mut s = Session::new(Policy {
        tls_available: true,
        tls_active: false,
        plaintext_without_tls: data.len() % 2 == 0,
        expire: None,
        login_delay: 0,
        max_errors: 1000,
    });
    let mut d = Decoder::new();
    let mut buf = Vec::new();
    'outer: for chunk in data.chunks(split) {
        buf.extend_from_slice(chunk);
        loop {
            let acts = if s.wants_sasl() {
                match d.next_sasl(&mut buf) {
                    Some(r) => s.sasl_response(r),
                    None => break,
                }
            } else {
                match d.next_command(&mut buf) {
                    Some(r) => s.command(r),
                    None => break,
                }
            };
            perform(&mut s, acts);
            if s.is_closed() {
                break 'outer;
            }
        }
        assert!(buf.len() <= MAX_SASL_LINE + split);
    }
    let mut e = if split % 2 == 0 { Encoder::whole() } else { Encoder::top(split as u64 % 5) };
    let mut out = Vec::new();
    for chunk in data.chunks(split) {
        e.feed(chunk, &mut out);
    }
    e.finish(&mut out);
    assert!(out.ends_with(b".\r\n"));
});
