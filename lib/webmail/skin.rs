//! Skins: directories of minijinja templates and a style sheet under
//! `webmail.skins_dir`, loaded at run time so an admin edits or copies one
//! without a rebuild. A template or file missing from a skin is taken from
//! the `default` skin, so a new skin may hold only what it changes (a
//! `style.css`, say).
//!
//! Every template is HTML-escaped on output whatever its name; a skin
//! that prints something raw must say `|safe`, and no page hands a
//! template mail HTML that has not been through the sanitiser.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use minijinja::value::{Enumerator, Kwargs, Object, ObjectExt, ObjectRepr, Serde, Value};
use minijinja::{context, AutoEscape, Environment, Error, ErrorKind, UndefinedBehavior};

use super::lang::Strings;

use super::request::url_encode;
use super::state::safe_name;

/// The skin every other falls back to.
pub const DEFAULT: &str = "default";

/// The files served under `/static/`: name and content type. Nothing else is.
pub const STATIC_FILES: &[(&str, &str)] = &[
    ("style.css", "text/css; charset=utf-8"),
    ("compose.js", "text/javascript; charset=utf-8"),
    ("addresses.js", "text/javascript; charset=utf-8"),
    ("logo.png", "image/png"),
    ("favicon.ico", "image/x-icon"),
];

/// Largest template or static file read.
const MAX_FILE: u64 = 4 << 20;

/// A skin ready to render pages.
pub struct Skin {
    pub name: String,
    env: Environment<'static>,
}

/// The skins installed: subdirectories of `dir` with a safe name, sorted.
pub fn available(dir: &Path) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| safe_name(n))
        .collect();
    out.sort();
    out
}

/// Whether `name` is a skin that may be used: a safe name of an installed one.
pub fn exists(dir: &Path, name: &str) -> bool {
    safe_name(name) && dir.join(name).is_dir()
}

/// A template name: letters, digits, `-`, `_`, ending in `.html`.
fn template_name_ok(name: &str) -> bool {
    name.strip_suffix(".html").is_some_and(safe_name)
}

/// Reads `file` of skin `skin`, or of the default skin when the skin lacks it.
fn read_skin_file(dir: &Path, skin: &str, file: &str) -> Option<Vec<u8>> {
    use std::io::Read;
    for s in [skin, DEFAULT] {
        let p: PathBuf = dir.join(s).join(file);
        if let Ok(f) = std::fs::File::open(&p) {
            let mut buf = Vec::new();
            if f.take(MAX_FILE).read_to_end(&mut buf).is_ok() {
                return Some(buf);
            }
        }
    }
    None
}

impl Skin {
    /// The skin `name` under `dir` (the default one when `name` is not installed).
    pub fn open(dir: &Path, name: &str) -> Skin {
        let name = if exists(dir, name) { name } else { DEFAULT }.to_string();
        let mut env = Environment::new();
        env.set_auto_escape_callback(|_| AutoEscape::Html);
        env.set_undefined_behavior(UndefinedBehavior::Chainable);
        let (d, n) = (dir.to_path_buf(), name.clone());
        env.set_loader(move |tname: &str| {
            if !template_name_ok(tname) {
                return Ok(None);
            }
            match read_skin_file(&d, &n, tname) {
                Some(b) => String::from_utf8(b)
                    .map(Some)
                    .map_err(|_| Error::new(ErrorKind::InvalidOperation, "template is not UTF-8")),
                None => Ok(None),
            }
        });
        env.add_filter("fill", fill);
        env.add_filter("q", |s: String| url_encode(&s));
        Skin { name, env }
    }

    /// Renders `template` with `ctx` (any serialisable value, usually
    /// `serde_json::json!({...})`).
    pub fn render<S: serde::Serialize>(&self, template: &str, ctx: &S) -> Result<String, String> {
        self.render_value(template, Value::from(Serde(ctx)))
    }

    /// Renders a page: `ctx`, and the strings as `t`. The strings are
    /// looked up as the template asks for them rather than copied into
    /// the context (a language has hundreds; a page prints a few dozen).
    pub fn render_page<S: serde::Serialize>(
        &self,
        template: &str,
        strings: &Strings,
        ctx: &S,
    ) -> Result<String, String> {
        let t = Value::from_object(StringTable(Arc::clone(strings.shared())));
        self.render_value(template, context! { t => t, ..Value::from(Serde(ctx)) })
    }

    fn render_value(&self, template: &str, ctx: Value) -> Result<String, String> {
        let t = self
            .env
            .get_template(template)
            .map_err(|e| format!("skin {}: {template}: {e:#}", self.name))?;
        t.render(ctx)
            .map_err(|e| format!("skin {}: {template}: {e:#}", self.name))
    }
}

/// A language's strings as a template sees them (`t.key`, `t[key]`).
#[derive(Debug)]
struct StringTable(Arc<BTreeMap<String, String>>);

impl Object for StringTable {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Map
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        key.as_str()
            .and_then(|k| self.0.get(k))
            .map(|v| Value::from(v.as_str()))
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        self.mapped_enumerator(|this| Box::new(this.0.keys().map(|k| Value::from(k.as_str()))))
    }
}

/// `{{ t.key|fill(name=x) }}`: replaces `{name}` in a string.
fn fill(s: String, kw: Kwargs) -> Result<String, Error> {
    let mut out = s;
    let keys: Vec<String> = kw.args().map(str::to_string).collect();
    for k in keys {
        let v: Value = kw.get(&k)?;
        out = out.replace(&format!("{{{k}}}"), &v.to_string());
    }
    Ok(out)
}

/// A static file of a skin: its bytes and content type, if `name` is on
/// the allow-list ([`STATIC_FILES`]) and the skin (or the default) has it.
pub fn static_file(dir: &Path, skin: &str, name: &str) -> Option<(Vec<u8>, &'static str)> {
    let (_, ctype) = STATIC_FILES.iter().find(|(n, _)| *n == name)?;
    let skin = if exists(dir, skin) { skin } else { DEFAULT };
    read_skin_file(dir, skin, name).map(|b| (b, *ctype))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shipped() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("share/webmail/skins")
    }

    #[test]
    fn templates_escape_and_fall_back_to_the_default_skin() {
        let dir = tempfile::tempdir().unwrap();
        for s in ["default", "blue"] {
            std::fs::create_dir(dir.path().join(s)).unwrap();
        }
        std::fs::write(
            dir.path().join("default/a.html"),
            "<p>{{ x }} {{ t.hi|fill(name=who) }} {{ x|q }}</p>",
        )
        .unwrap();
        std::fs::write(dir.path().join("blue/style.css"), "blue").unwrap();
        std::fs::write(dir.path().join("default/style.css"), "plain").unwrap();
        let skin = Skin::open(dir.path(), "blue");
        assert_eq!(skin.name, "blue");
        let html = skin
            .render(
                "a.html",
                &serde_json::json!({"x": "<b>&", "t": {"hi": "你好 {name}"}, "who": "<i>"}),
            )
            .unwrap();
        assert_eq!(html, "<p>&lt;b&gt;&amp; 你好 &lt;i&gt; %3Cb%3E%26</p>");
        assert!(skin.render("../a.html", &()).is_err());
        assert!(skin.render("missing.html", &()).is_err());
        assert_eq!(
            static_file(dir.path(), "blue", "style.css").unwrap().0,
            b"blue"
        );
        assert_eq!(
            static_file(dir.path(), "nope", "style.css").unwrap().0,
            b"plain"
        );
        assert_eq!(
            static_file(dir.path(), "../default", "style.css")
                .unwrap()
                .0,
            b"plain"
        );
        assert!(
            static_file(dir.path(), "blue", "a.html").is_none(),
            "not on the list"
        );
        assert_eq!(Skin::open(dir.path(), "../etc").name, "default");
        assert_eq!(available(dir.path()), ["blue", "default"]);
    }

    #[test]
    fn pages_look_the_strings_up_escaped() {
        let dir = tempfile::tempdir().unwrap();
        let (skins, langs) = (dir.path().join("skins"), dir.path().join("lang"));
        std::fs::create_dir_all(skins.join("default")).unwrap();
        std::fs::create_dir_all(&langs).unwrap();
        std::fs::write(
            skins.join("default/p.html"),
            "{{ t.hi|fill(name=who) }} {{ t[k] }} [{{ t.missing }}] {{ x }}",
        )
        .unwrap();
        std::fs::write(
            langs.join("en.toml"),
            "hi = \"hello {name}\"\ndone_x = \"<b>\"\n",
        )
        .unwrap();
        std::fs::write(langs.join("zh-CN.toml"), "hi = \"你好 {name}\"\n").unwrap();
        let skin = Skin::open(&skins, "default");
        let strings = super::super::lang::load(&langs, "zh-CN").unwrap();
        let vars = serde_json::json!({"who": "<i>", "k": "done_x", "x": 1});
        assert_eq!(
            skin.render_page("p.html", &strings, &vars).unwrap(),
            "你好 &lt;i&gt; &lt;b&gt; [] 1"
        );
    }

    #[test]
    fn the_shipped_skins_render_every_page() {
        let dir = shipped();
        assert!(available(&dir).contains(&"default".to_string()));
        for s in available(&dir) {
            let skin = Skin::open(&dir, &s);
            for page in ["login.html", "folders.html", "settings.html", "error.html"] {
                skin.render(page, &serde_json::json!({"t": {}, "base": ""}))
                    .unwrap_or_else(|e| panic!("{s}/{page}: {e}"));
            }
        }
    }
}
