//! Typed configuration values and their text and TOML forms.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use super::keys::{Key, Kind};
use crate::net::Cidr;

/// A validated value of one key.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Str(String),
    Bool(bool),
    Int(u64),
    Duration(Duration),
    List(Vec<String>),
    Map(BTreeMap<String, Vec<String>>),
}

impl Value {
    /// The default of `key`, parsed from the table's text.
    pub fn default_of(key: &Key) -> Result<Value, String> {
        Value::from_text(key, key.default)
    }

    /// Parses the text form: what `kmpctl init` and the table's defaults use.
    /// Lists are comma-separated; maps are `name=a|b;name2=c`.
    pub fn from_text(key: &Key, text: &str) -> Result<Value, String> {
        match key.kind {
            Kind::Str | Kind::Path | Kind::Enum(_) => check(key, Value::Str(text.to_string())),
            Kind::Bool => match text {
                "true" | "yes" => Ok(Value::Bool(true)),
                "false" | "no" => Ok(Value::Bool(false)),
                _ => Err("expected true or false".into()),
            },
            Kind::Int { .. } => text
                .parse::<u64>()
                .map_err(|_| "expected a whole number".to_string())
                .and_then(|n| check(key, Value::Int(n))),
            Kind::Size { .. } => parse_size(text).and_then(|n| check(key, Value::Int(n))),
            Kind::Duration { .. } => {
                parse_duration(text).and_then(|d| check(key, Value::Duration(d)))
            }
            Kind::List | Kind::Listen | Kind::Nets => {
                let items = text
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect();
                check(key, Value::List(items))
            }
            Kind::Map => {
                let mut m = BTreeMap::new();
                for entry in text.split(';').map(str::trim).filter(|s| !s.is_empty()) {
                    let (name, vals) = entry
                        .split_once('=')
                        .ok_or_else(|| format!("expected name=value in {entry:?}"))?;
                    let vals = vals.split('|').map(|s| s.trim().to_string()).collect();
                    m.insert(name.trim().to_string(), vals);
                }
                check(key, Value::Map(m))
            }
        }
    }

    /// Reads a TOML item as the kind `key` wants.
    pub fn from_toml(key: &Key, item: &toml_edit::Item) -> Result<Value, String> {
        let v = match key.kind {
            Kind::Str | Kind::Path | Kind::Enum(_) => Value::Str(
                item.as_str()
                    .ok_or_else(|| "expected a string in quotes".to_string())?
                    .to_string(),
            ),
            Kind::Bool => Value::Bool(
                item.as_bool()
                    .ok_or_else(|| "expected true or false".to_string())?,
            ),
            Kind::Int { .. } => match item.as_integer() {
                Some(n) if n >= 0 => Value::Int(n as u64),
                Some(_) => return Err("must not be negative".into()),
                None => return Err("expected a whole number".into()),
            },
            Kind::Size { .. } => match (item.as_integer(), item.as_str()) {
                (Some(n), _) if n >= 0 => Value::Int(n as u64),
                (_, Some(s)) => Value::Int(parse_size(s)?),
                _ => return Err("expected a size such as 10485760 or \"10M\"".into()),
            },
            Kind::Duration { .. } => match (item.as_integer(), item.as_str()) {
                (Some(n), _) if n >= 0 => Value::Duration(Duration::from_secs(n as u64)),
                (_, Some(s)) => Value::Duration(parse_duration(s)?),
                _ => return Err("expected a duration such as 300 or \"5m\"".into()),
            },
            Kind::List | Kind::Listen | Kind::Nets => Value::List(string_array(item)?),
            Kind::Map => {
                let t = item
                    .as_table_like()
                    .ok_or_else(|| format!("expected a table [{}]", key.name))?;
                let mut m = BTreeMap::new();
                for (name, v) in t.iter() {
                    let vals = string_array(v).map_err(|e| format!("{name}: {e}"))?;
                    m.insert(name.to_string(), vals);
                }
                Value::Map(m)
            }
        };
        check(key, v)
    }

    /// The TOML line(s) that set `name` to this value.
    pub fn to_toml(&self, name: &str, key: &Key) -> String {
        match self {
            Value::Str(s) => format!("{name} = {}\n", quote(s)),
            Value::Bool(b) => format!("{name} = {b}\n"),
            Value::Int(n) => match key.kind {
                Kind::Size { .. } => format!("{name} = {}\n", quote(&format_size(*n))),
                _ => format!("{name} = {n}\n"),
            },
            Value::Duration(d) => format!("{name} = {}\n", quote(&format_duration(*d))),
            Value::List(l) => format!("{name} = {}\n", array(l)),
            Value::Map(m) => {
                let mut out = format!("[{}]\n", key.name);
                for (k, v) in m {
                    out.push_str(&format!("{} = {}\n", quote(k), array(v)));
                }
                out
            }
        }
    }
}

/// Parses a size: a number of bytes with an optional K, M or G suffix (powers of 1024).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (num, mult) = match s.char_indices().last() {
        Some((i, 'k' | 'K')) => (&s[..i], 1u64 << 10),
        Some((i, 'm' | 'M')) => (&s[..i], 1 << 20),
        Some((i, 'g' | 'G')) => (&s[..i], 1 << 30),
        _ => (s, 1),
    };
    num.trim()
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .ok_or_else(|| format!("{s:?} is not a size such as 10485760, 512K, 10M or 1G"))
}

/// Parses a duration: seconds, or a number with s, m, h or d.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, mult) = match s.char_indices().last() {
        Some((i, 's')) => (&s[..i], 1u64),
        Some((i, 'm')) => (&s[..i], 60),
        Some((i, 'h')) => (&s[..i], 3600),
        Some((i, 'd')) => (&s[..i], 86400),
        _ => (s, 1),
    };
    num.trim()
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .map(Duration::from_secs)
        .ok_or_else(|| format!("{s:?} is not a duration such as 300, 30s, 5m, 2h or 5d"))
}

fn format_size(n: u64) -> String {
    for (suffix, m) in [("G", 1u64 << 30), ("M", 1 << 20), ("K", 1 << 10)] {
        if n >= m && n.is_multiple_of(m) {
            return format!("{}{suffix}", n / m);
        }
    }
    n.to_string()
}

fn format_duration(d: Duration) -> String {
    let s = d.as_secs();
    for (suffix, m) in [("d", 86400u64), ("h", 3600), ("m", 60)] {
        if s >= m && s.is_multiple_of(m) {
            return format!("{}{suffix}", s / m);
        }
    }
    format!("{s}s")
}

fn quote(s: &str) -> String {
    toml_edit::Value::from(s).to_string().trim().to_string()
}

fn array(l: &[String]) -> String {
    let items: Vec<String> = l.iter().map(|s| quote(s)).collect();
    format!("[{}]", items.join(", "))
}

fn string_array(item: &toml_edit::Item) -> Result<Vec<String>, String> {
    let arr = item
        .as_array()
        .ok_or_else(|| "expected a list of strings such as [\"a\", \"b\"]".to_string())?;
    arr.iter()
        .map(|v| {
            v.as_str()
                .map(str::to_string)
                .ok_or_else(|| "expected a list of strings".to_string())
        })
        .collect()
}

/// Checks bounds, enumerations and element syntax.
fn check(key: &Key, v: Value) -> Result<Value, String> {
    match (&key.kind, &v) {
        (Kind::Int { min, max }, Value::Int(n)) | (Kind::Size { min, max }, Value::Int(n))
            if n < min || n > max =>
        {
            return Err(format!("{n} is outside {min}..={max}"));
        }
        (Kind::Duration { min, max }, Value::Duration(d))
            if d.as_secs() < *min || d.as_secs() > *max =>
        {
            return Err(format!("{}s is outside {min}s..={max}s", d.as_secs()));
        }
        (Kind::Enum(allowed), Value::Str(s)) if !allowed.contains(&s.as_str()) => {
            return Err(format!("{s:?} is not one of {}", allowed.join(", ")));
        }
        (Kind::Listen, Value::List(l)) => {
            for a in l {
                a.parse::<SocketAddr>().map_err(|_| {
                    format!(
                        "{a:?} is not a listening address such as \"127.0.0.1:25\" or \"[::1]:25\""
                    )
                })?;
            }
        }
        (Kind::Nets, Value::List(l)) => {
            for a in l {
                a.parse::<Cidr>()?;
            }
        }
        (Kind::Path, Value::Str(s)) if !s.is_empty() && !s.starts_with('/') => {
            return Err(format!("{s:?} is not an absolute path"));
        }
        _ => {}
    }
    Ok(v)
}
