//! `[remote]`: settings of kmp-remote.
use super::{Key, Kind};

pub const KEYS: &[Key] = &[Key {
    name: "remote.routes",
    kind: Kind::Map,
    default: "",
    doc: "Static routes that take precedence over MX lookups: \"domain\" = [\"host:port\", ...];
\"*\" names a smarthost for every remote domain.",
}];
