//! Any request (method byte, path and query, body) through kmp-admind's
//! request layer (`admind::api::parse`): no panic; what parses names only
//! normalised domains (lower-case A-labels, no trailing dot) and addresses
//! without source-routing or quoting characters.
#![no_main]
use kmpromail::admind::api::{parse, Call, Method};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&m, rest)) = data.split_first() else {
        return;
    };
    let method = [Method::Get, Method::Post, Method::Patch, Method::Delete, Method::Other]
        [usize::from(m) % 5];
    let split = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
    let (target, body) = rest.split_at(split);
    let Ok(target) = std::str::from_utf8(target) else {
        return;
    };
    let target = format!("/v1/{target}");
    let Ok(call) = parse(method, &target, body.get(1..).unwrap_or_default()) else {
        return;
    };
    // Every list call names its list by an address the API accepts.
    if let Some(a) = call.list() {
        assert!(!a.local().contains(['%', '!', '"', '\\']));
    }
    let domain = match &call {
        Call::Domain(d) | Call::DomainSet(d, _) | Call::DomainUsage(d) | Call::Users(d)
        | Call::Aliases(d) | Call::Lists(d) | Call::Announce { domain: d, .. } => Some(d.clone()),
        Call::User(a) | Call::UserUsage(a) | Call::UserAdd { address: a, .. }
        | Call::UserSet { address: a, .. } | Call::UserDel { address: a, .. }
        | Call::AliasAdd { alias: a, .. } | Call::AliasDel { alias: a, .. } | Call::List(a)
        | Call::Signup(a, _) => {
            assert!(!a.local().contains(['%', '!', '"', '\\']));
            Some(a.domain().to_string())
        }
        Call::Fetch(f) => {
            assert!(!f.owner().local().contains(['%', '!', '"', '\\']));
            Some(f.owner().domain().to_string())
        }
        _ => None,
    };
    if let Some(d) = domain {
        assert_eq!(d, d.to_ascii_lowercase());
        assert!(!d.ends_with('.') && d.is_ascii());
    }
});
