//! Mail HTML made safe to show, and plain text made HTML.
//!
//! The sanitiser is ammonia (html5ever parses the mail as a browser would,
//! then only allowed elements and attributes are written back), set up for
//! mail: the sender's layout is kept as far as it is harmless (tables,
//! fonts, colours, widths, and `style` attributes filtered declaration by
//! declaration against an allow-list), while script, forms, frames,
//! objects, event handlers, `<style>`, `<base>`, `<meta>` and `<link>` go.
//! Links are http, https or mailto only and open in a new tab without a
//! referrer. Images are `cid:` (rewritten to the caller's URL for the
//! part), `data:` of a raster type (never SVG or HTML), or http(s), which
//! are removed and counted unless the user allowed remote images. The same
//! rules apply to `background` attributes and CSS `url()`.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use ammonia::{Builder, UrlRelative};

use super::Html;

/// What the sanitiser found besides the HTML.
pub(crate) struct Sanitised {
    pub html: Html,
    /// Content-IDs (lower-cased) the HTML used.
    pub used_cids: HashSet<String>,
}

/// Elements beyond ammonia's defaults that mail layout needs.
const EXTRA_TAGS: &[&str] = &["font", "center", "big", "tt"];

/// Layout attributes allowed on any element.
const GENERIC: &[&str] = &[
    "style",
    "dir",
    "align",
    "valign",
    "bgcolor",
    "width",
    "height",
    "border",
    "cellpadding",
    "cellspacing",
    "nowrap",
    "background",
    "color",
    "face",
    "size",
    "colspan",
    "rowspan",
];

/// CSS properties kept in `style` attributes.
const CSS_PROPS: &[&str] = &[
    "color",
    "background",
    "background-color",
    "background-image",
    "background-repeat",
    "background-position",
    "background-size",
    "font",
    "font-family",
    "font-size",
    "font-weight",
    "font-style",
    "font-variant",
    "text-align",
    "text-decoration",
    "text-indent",
    "text-transform",
    "line-height",
    "letter-spacing",
    "word-spacing",
    "white-space",
    "word-wrap",
    "word-break",
    "overflow-wrap",
    "vertical-align",
    "direction",
    "width",
    "height",
    "max-width",
    "min-width",
    "max-height",
    "min-height",
    "margin",
    "margin-top",
    "margin-right",
    "margin-bottom",
    "margin-left",
    "padding",
    "padding-top",
    "padding-right",
    "padding-bottom",
    "padding-left",
    "border",
    "border-top",
    "border-right",
    "border-bottom",
    "border-left",
    "border-color",
    "border-style",
    "border-width",
    "border-top-color",
    "border-right-color",
    "border-bottom-color",
    "border-left-color",
    "border-top-style",
    "border-right-style",
    "border-bottom-style",
    "border-left-style",
    "border-top-width",
    "border-right-width",
    "border-bottom-width",
    "border-left-width",
    "border-collapse",
    "border-spacing",
    "border-radius",
    "display",
    "float",
    "clear",
    "list-style-type",
    "list-style-position",
    "table-layout",
    "caption-side",
    "empty-cells",
    "text-shadow",
    "overflow",
    "visibility",
];

/// CSS functions allowed in a value (besides `url()`, checked apart).
const CSS_FUNCS: &[&str] = &["rgb", "rgba", "hsl", "hsla"];

/// Raster image types a `data:` URL may carry.
const DATA_IMAGES: &[&str] = &[
    "image/png",
    "image/gif",
    "image/jpeg",
    "image/jpg",
    "image/webp",
];

/// What to do with an image URL.
enum Image {
    Keep,
    Rewrite(String),
    Drop,
    Blocked,
}

/// The shared state of one sanitising run (ammonia's attribute filter must
/// be `'static + Send + Sync`).
pub(super) struct Rules {
    allow_remote: bool,
    /// Content-ID (lower-cased) to the URL the page serves it at.
    cids: HashMap<String, String>,
    blocked: AtomicUsize,
    used: Mutex<HashSet<String>>,
}

/// The sanitiser's settings, all but the attribute filter (the
/// [`Rules`] of one run).
fn builder() -> Builder<'static> {
    let mut b = Builder::default();
    b.add_tags(EXTRA_TAGS)
        // Image maps: their links would open inside the frame, and mail
        // has no use for them.
        .rm_tags(["area", "map"])
        .add_generic_attributes(GENERIC)
        .add_tag_attributes("a", ["name"])
        .add_tag_attributes("img", ["border", "hspace", "vspace"])
        .add_clean_content_tags(["title", "noscript", "template"])
        .url_schemes(
            ["http", "https", "mailto", "cid", "data"]
                .into_iter()
                .collect(),
        )
        .url_relative(UrlRelative::PassThrough)
        .link_rel(Some("noopener noreferrer"))
        .set_tag_attribute_value("a", "target", "_blank");
    b
}

/// The elements the sanitiser keeps and, per element, the attributes it
/// keeps besides the generic ones.
pub(super) type Allowed = (
    HashSet<&'static str>,
    HashMap<&'static str, HashSet<&'static str>>,
);

/// The rules of one run and what the sanitiser keeps, for
/// [`super::survey`], which must count as [`sanitise`] does.
pub(super) fn sanitiser_rules(
    allow_remote: bool,
    cids: HashMap<String, String>,
) -> (Rules, Allowed) {
    let b = builder();
    (
        Rules::new(allow_remote, cids),
        (b.clone_tags(), b.clone_tag_attributes()),
    )
}

/// Sanitises mail HTML; `cids` maps lower-cased Content-IDs to URLs.
pub(crate) fn sanitise(html: &str, allow_remote: bool, cids: HashMap<String, String>) -> Sanitised {
    let rules = Arc::new(Rules::new(allow_remote, cids));
    let r = Arc::clone(&rules);
    let mut b = builder();
    b.attribute_filter(move |el, attr, val| r.filter(el, attr, val));
    let body = b.clean(&body_as_cell(html)).to_string();
    let (blocked_remote, used_cids) = rules.results();
    Sanitised {
        html: Html {
            body,
            blocked_remote,
        },
        used_cids,
    }
}

impl Rules {
    fn new(allow_remote: bool, cids: HashMap<String, String>) -> Rules {
        Rules {
            allow_remote,
            cids,
            blocked: AtomicUsize::new(0),
            used: Mutex::new(HashSet::new()),
        }
    }

    /// The remote images blocked so far and the Content-IDs used.
    pub(super) fn results(&self) -> (usize, HashSet<String>) {
        let used = match self.used.lock() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        };
        (self.blocked.load(Ordering::Relaxed), used)
    }

    /// The value an allowed attribute keeps (None: it goes), counting the
    /// remote images blocked and the `cid:` parts used.
    pub(super) fn filter<'u>(&self, _el: &str, attr: &str, val: &'u str) -> Option<Cow<'u, str>> {
        match attr {
            "href" | "cite" => safe_href(val).then_some(Cow::Borrowed(val)),
            "src" | "background" => match self.image(val) {
                Image::Keep => Some(Cow::Borrowed(val)),
                Image::Rewrite(u) => Some(Cow::Owned(u)),
                Image::Drop | Image::Blocked => None,
            },
            "style" => {
                let s = self.style(val);
                (!s.is_empty()).then_some(Cow::Owned(s))
            }
            _ => Some(Cow::Borrowed(val)),
        }
    }

    fn image(&self, url: &str) -> Image {
        let u = url.trim();
        let lower = u.to_ascii_lowercase();
        if let Some(id) = lower.strip_prefix("cid:") {
            let id = pct_decode(id);
            let id = id.trim().trim_matches(|c| c == '<' || c == '>').to_string();
            return match self.cids.get(&id) {
                Some(to) => {
                    if let Ok(mut g) = self.used.lock() {
                        g.insert(id);
                    }
                    Image::Rewrite(to.clone())
                }
                None => Image::Drop,
            };
        }
        if lower.starts_with("http://") || lower.starts_with("https://") || lower.starts_with("//")
        {
            if self.allow_remote && !lower.starts_with("//") {
                return Image::Keep;
            }
            self.blocked.fetch_add(1, Ordering::Relaxed);
            return Image::Blocked;
        }
        if let Some(rest) = lower.strip_prefix("data:") {
            let kind = rest.split([';', ',']).next().unwrap_or("").trim();
            if DATA_IMAGES.contains(&kind) {
                return Image::Keep;
            }
        }
        Image::Drop
    }

    /// A `style` value with only allowed declarations left.
    fn style(&self, val: &str) -> String {
        let mut out = String::new();
        // CSS escapes and comments can spell anything: such a style goes.
        if val.contains('\\') || val.contains("/*") {
            return out;
        }
        for decl in val.split(';') {
            let Some((prop, value)) = decl.split_once(':') else {
                continue;
            };
            let prop = prop.trim().to_ascii_lowercase();
            let value = value.trim();
            if !CSS_PROPS.contains(&prop.as_str()) || value.is_empty() {
                continue;
            }
            if let Some(v) = self.css_value(&prop, value) {
                if !out.is_empty() {
                    out.push(';');
                }
                out.push_str(&prop);
                out.push(':');
                out.push_str(&v);
            }
        }
        out
    }

    /// A declaration's value when every part of it is allowed: plain
    /// words, numbers, colours, quoted font names, `rgb()`-like functions,
    /// and `url()` (background properties only) as images are allowed.
    fn css_value(&self, prop: &str, value: &str) -> Option<String> {
        let lower = value.to_ascii_lowercase();
        for bad in [
            "expression",
            "@import",
            "behavior",
            "binding",
            "javascript",
            "vbscript",
        ] {
            if lower.contains(bad) {
                return None;
            }
        }
        let mut out = String::with_capacity(value.len());
        let mut rest = value;
        loop {
            let Some(open) = rest.find('(') else {
                out.push_str(rest);
                break;
            };
            let before = &rest[..open];
            let func_start = before
                .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
                .map_or(0, |p| p + 1);
            let func = before[func_start..].to_ascii_lowercase();
            let close = rest[open..].find(')')? + open;
            let inner = &rest[open + 1..close];
            if func == "url" {
                out.push_str(&before[..func_start]);
                if !prop.starts_with("background") {
                    return None;
                }
                let url = inner.trim().trim_matches(|c| c == '"' || c == '\'');
                let to = match self.image(url) {
                    Image::Keep => url.to_string(),
                    Image::Rewrite(u) => u,
                    Image::Drop | Image::Blocked => return None,
                };
                if to.contains(|c: char| {
                    matches!(c, '"' | '\'' | '(' | ')' | '\\') || c.is_whitespace()
                }) {
                    return None;
                }
                out.push_str("url(\"");
                out.push_str(&to);
                out.push_str("\")");
            } else if CSS_FUNCS.contains(&func.as_str()) {
                out.push_str(before);
                if !inner
                    .chars()
                    .all(|c| c.is_ascii_digit() || " .,%".contains(c))
                {
                    return None;
                }
                out.push('(');
                out.push_str(inner);
                out.push(')');
            } else {
                return None;
            }
            rest = &rest[close + 1..];
        }
        // What is left outside url() holds only harmless characters.
        let plain = out
            .split("url(\"")
            .enumerate()
            .map(|(i, s)| {
                if i == 0 {
                    s
                } else {
                    s.split_once("\")").map_or("", |x| x.1)
                }
            })
            .all(|s| {
                s.chars().all(|c| {
                    c.is_alphanumeric()
                        || " #%.,-_!'\"/()+".contains(c)
                        || (!c.is_ascii() && !c.is_control())
                })
            });
        plain.then_some(out)
    }
}

/// The document's `<body>` (whose bgcolor, background and style carry
/// much of a mail's look) as a full-width table cell with the same
/// attributes (a cell, because browsers still honour `bgcolor` and
/// `background` there and not on a `div`), since the sanitiser parses a
/// fragment and would drop the body element with its attributes. The
/// result is sanitised like the rest.
const BODY_OPEN: &str =
    "<table width=\"100%\" cellspacing=\"0\" cellpadding=\"0\" border=\"0\"><tr><td";

pub(super) fn body_as_cell(html: &str) -> Cow<'_, str> {
    let find = |pat: &str, from: usize| -> Option<usize> {
        let b = html.as_bytes();
        let p = pat.as_bytes();
        (from..b.len().saturating_sub(p.len() - 1)).find(|&i| {
            b[i..i + p.len()].eq_ignore_ascii_case(p)
                && b.get(i + p.len())
                    .is_some_and(|c| c.is_ascii_whitespace() || *c == b'>')
        })
    };
    let Some(open) = find("<body", 0) else {
        return Cow::Borrowed(html);
    };
    let mut out = String::with_capacity(html.len());
    out.push_str(&html[..open]);
    out.push_str(BODY_OPEN);
    let after = open + "<body".len();
    match find("</body", after) {
        Some(close) => {
            out.push_str(&html[after..close]);
            out.push_str("</td></tr></table");
            out.push_str(&html[close + "</body".len()..]);
        }
        None => out.push_str(&html[after..]),
    }
    Cow::Owned(out)
}

/// A link target a reader may follow: http, https, mailto, or a fragment.
fn safe_href(val: &str) -> bool {
    let v = val.trim().to_ascii_lowercase();
    v.starts_with("http://")
        || v.starts_with("https://")
        || v.starts_with("mailto:")
        || v.starts_with('#')
}

fn pct_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let h = (b[i + 1] as char).to_digit(16);
            let l = (b[i + 2] as char).to_digit(16);
            if let (Some(h), Some(l)) = (h, l) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).to_lowercase()
}

/// Escapes text for HTML content and attribute values.
pub(crate) fn escape(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
}

/// See [`super::text_to_html`].
pub fn text_to_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 8 + 64);
    out.push_str("<pre class=\"mail-text\" style=\"white-space:pre-wrap;word-wrap:break-word\">");
    let mut rest = text;
    while let Some((start, len)) = next_url(rest) {
        escape(&mut out, &rest[..start]);
        let url = &rest[start..start + len];
        out.push_str("<a href=\"");
        escape(&mut out, url);
        out.push_str("\" rel=\"noopener noreferrer\" target=\"_blank\">");
        escape(&mut out, url);
        out.push_str("</a>");
        rest = &rest[start + len..];
    }
    escape(&mut out, rest);
    out.push_str("</pre>");
    out
}

/// The next http(s) URL in `s`: its start and length. A URL starts at
/// "http://" or "https://" not preceded by a letter or digit, runs to white
/// space, a quote, an angle bracket or a non-ASCII character (Chinese text
/// often follows a URL without a space), and trailing punctuation is not
/// part of it.
fn next_url(s: &str) -> Option<(usize, usize)> {
    let lower_find = |from: usize| -> Option<usize> {
        let b = s.as_bytes();
        let mut i = from;
        while i + 7 <= b.len() {
            if (b[i] == b'h' || b[i] == b'H')
                && (b[i..].len() >= 8 && b[i..i + 8].eq_ignore_ascii_case(b"https://")
                    || b[i..i + 7].eq_ignore_ascii_case(b"http://"))
                && (i == 0 || !b[i - 1].is_ascii_alphanumeric())
            {
                return Some(i);
            }
            i += 1;
        }
        None
    };
    let mut from = 0;
    loop {
        let start = lower_find(from)?;
        let tail = &s[start..];
        let mut len = tail
            .find(|c: char| {
                c.is_whitespace() || !c.is_ascii() || matches!(c, '"' | '<' | '>' | '\'' | '`')
            })
            .unwrap_or(tail.len());
        while len > 0 && tail[..len].ends_with(['.', ',', ';', ':', '!', '?', ')', ']', '}']) {
            len -= 1;
        }
        let scheme = if tail[..len].to_ascii_lowercase().starts_with("https://") {
            8
        } else {
            7
        };
        if len > scheme {
            return Some((start, len));
        }
        from = start + 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clean(html: &str, remote: bool) -> Sanitised {
        let mut cids = HashMap::new();
        cids.insert("logo@x".to_string(), "/part?s=2".to_string());
        sanitise(html, remote, cids)
    }

    #[test]
    fn layout_survives() {
        let s = clean(
            "<table width=600 bgcolor=\"#fff\" cellpadding=2><tr><td style=\"color: red; font-family: 'Microsoft YaHei', 宋体; position: fixed\"><font color=blue face=Arial>你好</font></td></tr></table>",
            false,
        );
        let b = &s.html.body;
        assert!(b.contains("width=\"600\""), "{b}");
        assert!(b.contains("bgcolor=\"#fff\""), "{b}");
        assert!(
            b.contains("color:red;font-family:'Microsoft YaHei', 宋体"),
            "{b}"
        );
        assert!(!b.contains("position"), "{b}");
        assert!(
            b.contains("<font color=\"blue\" face=\"Arial\">你好</font>"),
            "{b}"
        );
    }

    #[test]
    fn images_and_links() {
        let s = clean(
            "<img src=\"cid:logo@x\"><img src=\"CID:%3Clogo@x%3E\"><img src=https://t.example/p.gif><img src=\"data:image/png;base64,AAAA\"><img src=\"data:image/svg+xml;base64,AAAA\"><img src=cid:none><table background=\"http://x/bg.png\"><tr><td style=\"background: url(http://x/y.png)\">x</td></tr></table><a href=\"https://e.example/\">l</a><a href=\"javascript:alert(1)\">j</a><a href=\"/rel\">r</a>",
            false,
        );
        let b = &s.html.body;
        assert_eq!(s.html.blocked_remote, 3, "{b}");
        assert_eq!(b.matches("src=\"/part?s=2\"").count(), 2, "{b}");
        assert!(b.contains("data:image/png"), "{b}");
        assert!(!b.contains("svg"), "{b}");
        assert!(!b.contains("http://x"), "{b}");
        assert!(b.contains("<a href=\"https://e.example/\""), "{b}");
        assert_eq!(b.matches("rel=\"noopener noreferrer\"").count(), 3, "{b}");
        assert_eq!(b.matches("target=\"_blank\"").count(), 3, "{b}");
        assert!(!b.contains("javascript") && !b.contains("/rel"), "{b}");
        assert!(s.used_cids.contains("logo@x"));
        let s = clean("<img src=https://t.example/p.gif><p style=\"background-image:url('https://x/y.png')\">x</p>", true);
        assert_eq!(s.html.blocked_remote, 0);
        assert!(s.html.body.contains("src=\"https://t.example/p.gif\""));
        assert!(
            s.html
                .body
                .contains("style=\"background-image:url(&quot;https://x/y.png&quot;)\""),
            "{}",
            s.html.body
        );
    }

    #[test]
    fn body_attributes_survive_as_a_cell() {
        let s = clean(
            "<html><head><title>t</title></head><BODY bgcolor=\"#eeeeee\" style=\"color:navy\" background=\"cid:logo@x\" onload=\"x()\"><p>hi</p></BODY></html>",
            false,
        );
        assert_eq!(
            s.html.body,
            "<table width=\"100%\" cellspacing=\"0\" cellpadding=\"0\" border=\"0\"><tbody><tr><td bgcolor=\"#eeeeee\" style=\"color:navy\" background=\"/part?s=2\"><p>hi</p></td></tr></tbody></table>"
        );
        assert_eq!(clean("<bodyx>a", false).html.body, "a");
    }

    #[test]
    fn css_is_checked_per_declaration() {
        let r = Rules {
            allow_remote: false,
            cids: HashMap::new(),
            blocked: AtomicUsize::new(0),
            used: Mutex::new(HashSet::new()),
        };
        assert_eq!(
            r.style("color: rgb(1, 2, 3); width: 50%"),
            "color:rgb(1, 2, 3);width:50%"
        );
        assert_eq!(r.style("width: expression(alert(1))"), "");
        assert_eq!(r.style("color: red; -moz-binding: url(x)"), "color:red");
        assert_eq!(r.style("background: u\\72l(x)"), "");
        assert_eq!(r.style("color: red /* x */"), "");
        assert_eq!(
            r.style("font-family: x; behavior: url(a.htc)"),
            "font-family:x"
        );
        assert_eq!(r.style("width: calc(1px)"), "");
        let cid = Rules {
            allow_remote: false,
            cids: [("bg@x".to_string(), "/part/3".to_string())].into(),
            blocked: AtomicUsize::new(0),
            used: Mutex::new(HashSet::new()),
        };
        assert_eq!(
            cid.style("background: #fff url('cid:bg@x') no-repeat; color: red"),
            "background:#fff url(\"/part/3\") no-repeat;color:red"
        );
        assert_eq!(
            cid.style("background: url(http://x/y.png); color: red"),
            "color:red"
        );
        assert_eq!(cid.blocked.load(Ordering::Relaxed), 1);
        assert_eq!(r.style("color: red}body{x:y"), "");
        assert_eq!(r.style("background: url(javascript:alert(1))"), "");
    }

    #[test]
    fn text_becomes_html() {
        assert_eq!(
            text_to_html("a<b> & \"c\"\nsee https://x.example/a?b=1&c=2. 或http://中.cn/ 和http://y.cn/路径"),
            "<pre class=\"mail-text\" style=\"white-space:pre-wrap;word-wrap:break-word\">a&lt;b&gt; &amp; &quot;c&quot;\nsee <a href=\"https://x.example/a?b=1&amp;c=2\" rel=\"noopener noreferrer\" target=\"_blank\">https://x.example/a?b=1&amp;c=2</a>. 或http://中.cn/ 和<a href=\"http://y.cn/\" rel=\"noopener noreferrer\" target=\"_blank\">http://y.cn/</a>路径</pre>"
        );
        assert!(!text_to_html("xhttp://a.b javascript:alert(1)").contains("<a"));
    }
}
