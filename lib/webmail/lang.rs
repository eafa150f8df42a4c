//! Languages: one TOML file of strings per language in `webmail.lang_dir`
//! (`en.toml`, `zh-CN.toml`, `zh-TW.toml` ...), flat `key = "text"` pairs.
//! Templates print them as `{{ t.key }}`; a string with `{name}` holes is
//! filled with `{{ t.key|fill(name=value) }}`. A key missing from a
//! language falls back to English, then to the key itself, so a half
//! translated file still gives a usable page.
//!
//! Which language: the user's setting, else the browser's Accept-Language
//! (RFC 9110 12.5.4, by quality), else English.

use std::cell::OnceCell;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;

use super::state::safe_name;

/// The language every other falls back to.
pub const FALLBACK: &str = "en";

/// Largest language file read.
const MAX_FILE: u64 = 1 << 20;

/// The strings of one language, read from their files when first used: a
/// request that renders no page (the mail's frame, a part, the style
/// sheet) reads no language file. Clones share what was read.
#[derive(Debug, Clone, Default)]
pub struct Strings {
    /// The language code (the file's name without `.toml`).
    pub code: String,
    /// The directory of the files (None: no files, every key is itself).
    dir: Option<PathBuf>,
    map: Rc<OnceCell<Arc<BTreeMap<String, String>>>>,
}

impl Strings {
    /// The string for `key` (the key itself when no file has it).
    pub fn get<'a>(&'a self, key: &'a str) -> &'a str {
        self.map().get(key).map(String::as_str).unwrap_or(key)
    }

    /// Every string, English under this language's, read now if not yet
    /// (a file that cannot be read is logged and counts as empty).
    pub fn map(&self) -> &BTreeMap<String, String> {
        self.shared()
    }

    /// [`Strings::map`], to hand to a template without a copy.
    pub fn shared(&self) -> &Arc<BTreeMap<String, String>> {
        self.map.get_or_init(|| {
            let Some(dir) = &self.dir else {
                return Arc::default();
            };
            let mut map = read_file(dir, FALLBACK).unwrap_or_else(|e| {
                crate::error!("languages: {e}");
                BTreeMap::new()
            });
            if self.code != FALLBACK {
                match read_file(dir, &self.code) {
                    Ok(m) => map.extend(m),
                    Err(e) => crate::error!("languages: {e}"),
                }
            }
            Arc::new(map)
        })
    }
}

/// The languages installed in `dir`: the codes of its `*.toml` files, sorted.
pub fn available(dir: &Path) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let code = name.strip_suffix(".toml")?;
            safe_name(code).then(|| code.to_string())
        })
        .collect();
    out.sort();
    out
}

/// `code` over English from `dir`, read when first used: an error here is
/// only a name that is not a language's; a file that cannot be read is
/// logged when the strings are first asked for.
pub fn load(dir: &Path, code: &str) -> Result<Strings, String> {
    if !safe_name(code) {
        return Err(format!("{code:?} is not a language name"));
    }
    Ok(Strings {
        code: code.to_string(),
        dir: Some(dir.to_path_buf()),
        map: Rc::default(),
    })
}

/// One language's own strings (not English under them), read now.
pub fn read_own(dir: &Path, code: &str) -> Result<BTreeMap<String, String>, String> {
    read_file(dir, code)
}

fn read_file(dir: &Path, code: &str) -> Result<BTreeMap<String, String>, String> {
    if !safe_name(code) {
        return Err(format!("{code:?} is not a language name"));
    }
    let path = dir.join(format!("{code}.toml"));
    let text = {
        use std::io::Read;
        let f = std::fs::File::open(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let mut s = String::new();
        f.take(MAX_FILE)
            .read_to_string(&mut s)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        s
    };
    let table: toml::Table = text
        .parse()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(table
        .into_iter()
        .filter_map(|(k, v)| match v {
            toml::Value::String(s) => Some((k, s)),
            _ => None,
        })
        .collect())
}

/// The language to use: `wanted` (the user's setting) when installed, else
/// the best of the browser's `accept` that is installed, else English.
pub fn choose(wanted: Option<&str>, accept: &str, installed: &[String]) -> String {
    let has = |c: &str| installed.iter().any(|i| i == c);
    if let Some(w) = wanted.filter(|w| has(w)) {
        return w.to_string();
    }
    let mut ranges: Vec<(u32, usize, String)> = accept
        .split(',')
        .take(32)
        .enumerate()
        .filter_map(|(i, item)| {
            let mut parts = item.split(';');
            let tag = parts.next()?.trim().to_ascii_lowercase();
            let mut q = 1000;
            for p in parts {
                if let Some(v) = p.trim().strip_prefix("q=") {
                    q = (v.trim().parse::<f32>().ok()?.clamp(0.0, 1.0) * 1000.0) as u32;
                }
            }
            (q > 0 && !tag.is_empty()).then_some((q, i, tag))
        })
        .collect();
    // Highest quality first; among equals, the browser's order.
    ranges.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    for (_, _, tag) in ranges {
        if let Some(code) = match_tag(&tag, installed) {
            return code;
        }
    }
    FALLBACK.to_string()
}

/// An installed language for one language range.
fn match_tag(tag: &str, installed: &[String]) -> Option<String> {
    // Chinese: the script or region says simplified or traditional.
    let zh = match tag {
        "zh-tw" | "zh-hk" | "zh-mo" => Some("zh-TW"),
        t if t.starts_with("zh-hant") => Some("zh-TW"),
        "zh" | "zh-cn" | "zh-sg" | "zh-my" => Some("zh-CN"),
        t if t.starts_with("zh-hans") => Some("zh-CN"),
        _ => None,
    };
    if let Some(z) = zh {
        if installed.iter().any(|i| i == z) {
            return Some(z.to_string());
        }
    }
    if let Some(i) = installed.iter().find(|i| i.eq_ignore_ascii_case(tag)) {
        return Some(i.clone());
    }
    // `en-GB` takes `en`; `*` takes nothing in particular.
    let primary = tag.split('-').next().unwrap_or(tag);
    installed
        .iter()
        .find(|i| i.eq_ignore_ascii_case(primary))
        .cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all() -> Vec<String> {
        vec!["en".into(), "zh-CN".into(), "zh-TW".into()]
    }

    #[test]
    fn the_users_choice_wins_then_the_browser_then_english() {
        let i = all();
        assert_eq!(choose(Some("zh-TW"), "en", &i), "zh-TW");
        assert_eq!(choose(Some("fr"), "zh-CN,zh;q=0.9", &i), "zh-CN");
        assert_eq!(choose(None, "fr-FR, zh-HK;q=0.8, en;q=0.5", &i), "zh-TW");
        assert_eq!(choose(None, "en;q=0.4, zh-Hant-TW;q=0.9", &i), "zh-TW");
        assert_eq!(choose(None, "zh-Hans-CN", &i), "zh-CN");
        assert_eq!(choose(None, "zh", &i), "zh-CN");
        assert_eq!(choose(None, "en-GB,en;q=0.8", &i), "en");
        assert_eq!(choose(None, "de, fr;q=0.5", &i), "en");
        assert_eq!(choose(None, "zh-CN;q=0, en", &i), "en");
        assert_eq!(choose(None, "", &i), "en");
        assert_eq!(choose(None, ";;;,q=,zh-tw;q=abc", &i), "en");
    }

    #[test]
    fn the_shipped_languages_have_every_english_key() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("share/webmail/lang");
        let codes = available(&dir);
        assert_eq!(codes, all());
        let en = read_file(&dir, "en").unwrap();
        for c in ["zh-CN", "zh-TW"] {
            let other = read_file(&dir, c).unwrap();
            for k in en.keys() {
                assert!(other.contains_key(k), "{c}.toml lacks {k}");
            }
        }
        let zh = load(&dir, "zh-CN").unwrap();
        assert_eq!(zh.get("folder_inbox"), "收件箱");
        assert_eq!(zh.get("no-such-key"), "no-such-key");
        assert!(load(&dir, "../en").is_err());
        // Nothing is read until a string is asked for; clones share it.
        let lazy = load(&dir, "zh-TW").unwrap();
        let copy = lazy.clone();
        assert!(lazy.map.get().is_none());
        assert_eq!(copy.get("folder_inbox"), "收件匣");
        assert!(lazy.map.get().is_some());
        let missing = load(Path::new("/nonexistent"), "en").unwrap();
        assert_eq!(missing.get("folder_inbox"), "folder_inbox");
    }
}
