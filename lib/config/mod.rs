//! Configuration: one declarative table of keys drives loading, `kmpctl check`,
//! `kmpctl config --defaults/--changed/--annotated`, the key list in
//! `kmpromail.toml(5)` and the annotated `etc/kmpromail.toml`.
//!
//! The file is TOML. A key `smtpd.max_message_size` is the entry
//! `max_message_size` of the table `[smtpd]`; a key of kind [`Kind::Map`] such as
//! `remote.routes` is a whole sub-table (`[remote.routes]`). Daemons only ever
//! see a validated [`Config`]; asking it for a key that is not in the table is
//! a programming error and panics, and a test walks the table so that cannot
//! ship.

mod keys;
mod value;

pub use keys::{Key, Kind, KEYS};
pub use value::{parse_duration, parse_size, Value};

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::net::Cidr;

/// Where the configuration lives when neither `--config` nor `KMPROMAIL_CONFIG` says.
pub const DEFAULT_PATH: &str = "/etc/kmpromail/kmpromail.toml";

/// The environment variable that names the configuration file.
pub const ENV_VAR: &str = "KMPROMAIL_CONFIG";

/// One problem found in a configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file the problem is in.
    pub file: String,
    /// 1-based line, or 0 when the problem is not tied to a line.
    pub line: usize,
    /// The key concerned, when there is one.
    pub key: Option<String>,
    /// What is wrong, for a person.
    pub message: String,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.key, self.line) {
            (Some(k), 0) => write!(f, "{}: {}: {}", self.file, k, self.message),
            (Some(k), l) => write!(f, "{}:{}: {}: {}", self.file, l, k, self.message),
            (None, 0) => write!(f, "{}: {}", self.file, self.message),
            (None, l) => write!(f, "{}:{}: {}", self.file, l, self.message),
        }
    }
}

/// Why a configuration could not be loaded.
#[derive(Debug)]
pub enum LoadError {
    /// The file could not be read.
    Io(PathBuf, std::io::Error),
    /// The file was read and has these problems (every one of them).
    Invalid(Vec<ConfigError>),
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LoadError::Io(p, e) => write!(f, "{}: {}", p.display(), e),
            LoadError::Invalid(errs) => {
                for (i, e) in errs.iter().enumerate() {
                    if i > 0 {
                        writeln!(f)?;
                    }
                    write!(f, "{e}")?;
                }
                Ok(())
            }
        }
    }
}

impl LoadError {
    /// The sysexits code for this error.
    pub fn exit_code(&self) -> i32 {
        match self {
            LoadError::Io(_, e) if e.kind() == std::io::ErrorKind::NotFound => crate::exit::CONFIG,
            LoadError::Io(_, e) => crate::exit::from_io(e),
            LoadError::Invalid(_) => crate::exit::CONFIG,
        }
    }
}

/// A validated configuration: every key of the table has a typed value.
#[derive(Debug, Clone)]
pub struct Config {
    path: Option<PathBuf>,
    values: BTreeMap<&'static str, Value>,
    set: BTreeSet<&'static str>,
}

impl Config {
    /// The path to use: the explicit one, else `$KMPROMAIL_CONFIG`, else the default.
    pub fn locate(explicit: Option<&Path>) -> PathBuf {
        if let Some(p) = explicit {
            return p.to_path_buf();
        }
        match std::env::var_os(ENV_VAR) {
            Some(v) if !v.is_empty() => PathBuf::from(v),
            _ => PathBuf::from(DEFAULT_PATH),
        }
    }

    /// Every key at its default.
    pub fn defaults() -> Config {
        let values = KEYS
            .iter()
            // Invariant: a test checks that every default parses as its kind.
            .map(|k| (k.name, Value::default_of(k).expect("default parses")))
            .collect();
        Config {
            path: None,
            values,
            set: BTreeSet::new(),
        }
    }

    /// Reads and validates the file at `path`.
    pub fn load(path: &Path) -> Result<Config, LoadError> {
        let text =
            std::fs::read_to_string(path).map_err(|e| LoadError::Io(path.to_path_buf(), e))?;
        let mut cfg =
            Config::parse(&text, &path.display().to_string()).map_err(LoadError::Invalid)?;
        cfg.path = Some(path.to_path_buf());
        Ok(cfg)
    }

    /// Loads the configuration a program was pointed at (see [`Config::locate`]).
    pub fn load_located(explicit: Option<&Path>) -> Result<Config, LoadError> {
        Config::load(&Config::locate(explicit))
    }

    /// Validates `text`, naming `file` in errors. Returns every problem found.
    pub fn parse(text: &str, file: &str) -> Result<Config, Vec<ConfigError>> {
        let (cfg, errors) = Config::parse_partial(text, file);
        if errors.is_empty() {
            Ok(cfg)
        } else {
            Err(errors)
        }
    }

    /// Like [`Config::parse`], but also returns what could be read: every
    /// valid key set, the others at their defaults (all defaults when the
    /// text is not TOML). Only for reaching a running system whose file has
    /// since been broken (`kmpctl stop` and `status`); never for a daemon.
    pub fn parse_partial(text: &str, file: &str) -> (Config, Vec<ConfigError>) {
        let mut cfg = Config::defaults();
        let mut errors = Vec::new();
        let err = |line: usize, key: Option<&str>, message: String| ConfigError {
            file: file.to_string(),
            line,
            key: key.map(str::to_string),
            message,
        };
        let doc: toml_edit::Document<String> = match text.parse() {
            Ok(d) => d,
            Err(e) => {
                let line = e.span().map(|s| line_of(text, s.start)).unwrap_or(0);
                let msg = e.message().trim().to_string();
                return (cfg, vec![err(line, None, format!("not valid TOML: {msg}"))]);
            }
        };
        for (section, item) in doc.as_table().iter() {
            let line = doc
                .as_table()
                .key(section)
                .and_then(|k| k.span())
                .map(|s| line_of(text, s.start))
                .unwrap_or(0);
            let Some(table) = item.as_table_like() else {
                errors.push(err(
                    line,
                    Some(section),
                    "is not a key: settings live in sections such as [smtpd]".into(),
                ));
                continue;
            };
            for (name, value) in table.iter() {
                let full = format!("{section}.{name}");
                let line = table
                    .key(name)
                    .and_then(|k| k.span())
                    .or_else(|| value.span())
                    .map(|s| line_of(text, s.start))
                    .unwrap_or(line);
                let Some(key) = keys::find(&full) else {
                    let hint = keys::nearest(&full)
                        .map(|n| format!(" (did you mean {n}?)"))
                        .unwrap_or_default();
                    errors.push(err(line, Some(&full), format!("unknown key{hint}")));
                    continue;
                };
                match Value::from_toml(key, value) {
                    Ok(v) => {
                        cfg.values.insert(key.name, v);
                        cfg.set.insert(key.name);
                    }
                    Err(m) => errors.push(err(line, Some(key.name), m)),
                }
            }
        }
        (cfg, errors)
    }

    /// Sets the file a configuration was read from.
    pub fn with_path(mut self, path: &Path) -> Config {
        self.path = Some(path.to_path_buf());
        self
    }

    /// The file this configuration was read from, if any.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// The keys the file set (whatever their value), in table order.
    pub fn changed(&self) -> impl Iterator<Item = &'static Key> + '_ {
        KEYS.iter().filter(|k| self.set.contains(k.name))
    }

    /// The typed value of `key`.
    pub fn value(&self, key: &str) -> &Value {
        match self.values.get(key) {
            Some(v) => v,
            // Invariant: every key a program asks for is in the table; a test
            // greps the sources for config accessors and checks each name.
            None => panic!("configuration key {key} is not in the key table"),
        }
    }

    /// Sets `key` from its text form, as `kmpctl init` and tests do.
    pub fn set(&mut self, key: &str, text: &str) -> Result<(), String> {
        let k = keys::find(key).ok_or_else(|| format!("{key}: unknown key"))?;
        let v = Value::from_text(k, text)?;
        self.values.insert(k.name, v);
        self.set.insert(k.name);
        Ok(())
    }

    /// A string or path key.
    pub fn str(&self, key: &str) -> &str {
        match self.value(key) {
            Value::Str(s) => s,
            v => panic!("configuration key {key} is not a string: {v:?}"),
        }
    }

    /// A path key.
    pub fn path_of(&self, key: &str) -> PathBuf {
        PathBuf::from(self.str(key))
    }

    /// A boolean key.
    pub fn bool(&self, key: &str) -> bool {
        match self.value(key) {
            Value::Bool(b) => *b,
            v => panic!("configuration key {key} is not a boolean: {v:?}"),
        }
    }

    /// An integer or size key.
    pub fn u64(&self, key: &str) -> u64 {
        match self.value(key) {
            Value::Int(n) => *n,
            v => panic!("configuration key {key} is not a number: {v:?}"),
        }
    }

    /// A number that is also a count of things (connections, recipients).
    pub fn usize(&self, key: &str) -> usize {
        usize::try_from(self.u64(key)).unwrap_or(usize::MAX)
    }

    /// A duration key.
    pub fn duration(&self, key: &str) -> Duration {
        match self.value(key) {
            Value::Duration(d) => *d,
            v => panic!("configuration key {key} is not a duration: {v:?}"),
        }
    }

    /// A list of strings.
    pub fn list(&self, key: &str) -> &[String] {
        match self.value(key) {
            Value::List(l) => l,
            v => panic!("configuration key {key} is not a list: {v:?}"),
        }
    }

    /// A list of listening addresses.
    pub fn listen(&self, key: &str) -> Vec<SocketAddr> {
        self.list(key)
            .iter()
            // Invariant: Kind::Listen values were validated as socket addresses.
            .map(|s| s.parse().expect("validated listen address"))
            .collect()
    }

    /// A list of networks in CIDR form.
    pub fn nets(&self, key: &str) -> Vec<Cidr> {
        self.list(key)
            .iter()
            // Invariant: Kind::Nets values were validated as networks.
            .map(|s| s.parse().expect("validated network"))
            .collect()
    }

    /// A table of string lists (`[remote.routes]`).
    pub fn map(&self, key: &str) -> &BTreeMap<String, Vec<String>> {
        match self.value(key) {
            Value::Map(m) => m,
            v => panic!("configuration key {key} is not a table: {v:?}"),
        }
    }

    /// The configuration as TOML text: every key (`all`) or only the changed ones.
    pub fn to_toml(&self, all: bool) -> String {
        let keys: Vec<&Key> = KEYS
            .iter()
            .filter(|k| all || self.set.contains(k.name))
            .collect();
        let mut out = String::new();
        for (header, group) in by_table(&keys) {
            if !out.is_empty() {
                out.push('\n');
            }
            if let Some(h) = header {
                out.push_str(&format!("[{h}]\n"));
            }
            for k in group {
                out.push_str(&self.value(k.name).to_toml(k.split().1, k));
            }
        }
        out
    }
}

/// The annotated sample configuration: every key, its documentation and default.
/// `etc/kmpromail.toml` is this text; a test keeps the two equal.
pub fn annotated() -> String {
    let mut out = String::from(
        "# kmpromail.toml: the configuration of Kmpromail. See kmpromail.toml(5).\n\
         # Every key is shown at its default. Uncomment and change what you need;\n\
         # `kmpctl check` validates the file, `kmpctl config --changed` shows what\n\
         # differs from the defaults.\n",
    );
    let defaults = Config::defaults();
    let keys: Vec<&Key> = KEYS.iter().collect();
    for (header, group) in by_table(&keys) {
        out.push('\n');
        if let Some(h) = header {
            out.push_str(&format!("[{h}]\n"));
        }
        for k in group {
            for line in k.doc.lines() {
                out.push_str(&format!("# {line}\n"));
            }
            for line in defaults.value(k.name).to_toml(k.split().1, k).lines() {
                out.push_str(&format!("#{line}\n"));
            }
        }
    }
    out
}

/// Groups keys into TOML tables in table order: each section's plain keys
/// under its `[section]` header, then each of its table-valued keys (which
/// print their own `[section.name]` header), so no table is opened twice.
fn by_table<'a>(keys: &[&'a Key]) -> Vec<(Option<&'static str>, Vec<&'a Key>)> {
    let mut sections: Vec<&'static str> = Vec::new();
    for k in keys {
        let sec = k.name.split_once('.').map(|(s, _)| s).unwrap_or(k.name);
        if !sections.contains(&sec) {
            sections.push(sec);
        }
    }
    let mut groups = Vec::new();
    for sec in sections {
        let in_sec = |k: &&&Key| k.name.split_once('.').map(|(s, _)| s) == Some(sec);
        let plain: Vec<&Key> = keys
            .iter()
            .filter(in_sec)
            .filter(|k| k.kind != Kind::Map)
            .copied()
            .collect();
        if !plain.is_empty() {
            groups.push((Some(sec), plain));
        }
        for m in keys.iter().filter(in_sec).filter(|k| k.kind == Kind::Map) {
            groups.push((None, vec![*m]));
        }
    }
    groups
}

/// 1-based line number of byte `offset` in `text`.
fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

#[cfg(test)]
mod tests;
