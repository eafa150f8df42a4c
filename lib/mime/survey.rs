//! What the sanitiser would find in mail HTML, without writing the HTML
//! back: the remote images it would block and the `cid:` parts it would
//! use.
//!
//! The message page needs only these two facts (the "images blocked" notice
//! and the attachments the HTML does not show), while the HTML itself is
//! served by the frame's own request, which sanitises it. Parsing the HTML
//! into a tree and writing it back costs most of a message page's CPU, so
//! the page reads the tags instead: a small tokenizer in the manner of
//! HTML5's (comments, raw text elements, quoted and unquoted attribute
//! values, character references in values) that hands the `src`,
//! `background` and `style` values the sanitiser's attribute filter would
//! see to the same rules ([`super::html`]), so that both count the same
//! images the same way. It decides nothing about safety: nothing it reads
//! is ever shown.

use std::collections::HashMap;

use super::html::{body_as_cell, sanitiser_rules, Sanitised};
use super::Html;

/// Elements whose content is text (or dropped whole by the sanitiser), in
/// which a `<` starts no tag.
const RAW_TEXT: &[&str] = &[
    "script", "style", "title", "textarea", "xmp", "iframe", "noembed", "noframes", "noscript",
    "template",
];

/// Counts what [`super::html::sanitise`] would block and use in `html`,
/// without producing its output (`Sanitised::html.body` is empty).
pub(crate) fn survey(html: &str, allow_remote: bool, cids: HashMap<String, String>) -> Sanitised {
    let (rules, (tags, tag_attrs)) = sanitiser_rules(allow_remote, cids);
    let doc = body_as_cell(html);
    let s: &str = &doc;
    let b = s.as_bytes();
    let mut i = 0;
    while let Some(off) = memchr(b'<', &b[i..]) {
        let at = i + off;
        let rest = &b[at + 1..];
        if rest.starts_with(b"!--") {
            // A comment: `<!-->` and `<!--->` end at once.
            let body = at + 4;
            i = if b.get(body) == Some(&b'>') {
                body + 1
            } else if b[body..].starts_with(b"->") {
                body + 2
            } else {
                find(b, body, b"-->").map_or(b.len(), |e| e + 3)
            };
            continue;
        }
        if rest.first().is_some_and(|c| *c == b'!' || *c == b'?') {
            i = memchr(b'>', rest).map_or(b.len(), |e| at + 1 + e + 1);
            continue;
        }
        if rest.first() == Some(&b'/') {
            i = memchr(b'>', rest).map_or(b.len(), |e| at + 1 + e + 1);
            continue;
        }
        if !rest.first().is_some_and(u8::is_ascii_alphabetic) {
            i = at + 1;
            continue;
        }
        let (tag, end) = start_tag(s, at + 1);
        i = end;
        // A tag the document ends inside is no tag (HTML drops it).
        if !tag.closed || tag.name == "plaintext" {
            break;
        }
        // The sanitiser's rules see every element's attributes: an allowed
        // element's once the ones it does not allow are gone (`src` is
        // allowed on `img` only), any other element's all (it is removed
        // afterwards). `html`, `head` and `body` inside the body make no
        // element in HTML.
        if !matches!(tag.name.as_str(), "html" | "head" | "body") {
            let allowed = tags
                .contains(tag.name.as_str())
                .then(|| tag_attrs.get(tag.name.as_str()));
            for (name, value) in &tag.attrs {
                let seen = match name.as_str() {
                    "background" | "style" => true,
                    "src" => allowed.is_none_or(|own| own.is_some_and(|a| a.contains("src"))),
                    _ => false,
                };
                if seen {
                    let _ = rules.filter(&tag.name, name, value);
                }
            }
        }
        // HTML ignores `/>` on these as on any HTML element.
        if RAW_TEXT.contains(&tag.name.as_str()) {
            i = raw_text_end(b, i, &tag.name);
        }
    }
    let (blocked_remote, used_cids) = rules.results();
    Sanitised {
        html: Html {
            body: String::new(),
            blocked_remote,
        },
        used_cids,
    }
}

/// A start tag: its name and attributes (names lower-cased, values with
/// character references decoded, the first of a repeated name kept).
struct Tag {
    name: String,
    attrs: Vec<(String, String)>,
    /// Whether its `>` came before the end of the document.
    closed: bool,
}

/// Reads the start tag whose name begins at `from`; returns it and where
/// the text after it starts.
fn start_tag(s: &str, from: usize) -> (Tag, usize) {
    let b = s.as_bytes();
    let mut i = from;
    while i < b.len() && !b[i].is_ascii_whitespace() && b[i] != b'/' && b[i] != b'>' {
        i += 1;
    }
    let mut name = s[from..i].to_ascii_lowercase();
    // HTML reads `<image>` as `<img>`.
    if name == "image" {
        name = "img".into();
    }
    let mut attrs: Vec<(String, String)> = Vec::new();
    let mut closed = false;
    loop {
        while i < b.len() && (b[i].is_ascii_whitespace() || b[i] == b'/') {
            i += 1;
        }
        if i >= b.len() {
            break;
        }
        if b[i] == b'>' {
            i += 1;
            closed = true;
            break;
        }
        // An attribute name may start with `=`; it runs to space, `/`, `>` or `=`.
        let start = i;
        i += 1;
        while i < b.len() && !b[i].is_ascii_whitespace() && !b"/>=".contains(&b[i]) {
            i += 1;
        }
        let attr = s[start..i].to_ascii_lowercase();
        let mut j = i;
        while j < b.len() && b[j].is_ascii_whitespace() {
            j += 1;
        }
        let mut value = String::new();
        if b.get(j) == Some(&b'=') {
            j += 1;
            while j < b.len() && b[j].is_ascii_whitespace() {
                j += 1;
            }
            match b.get(j) {
                Some(q @ (b'"' | b'\'')) => {
                    let close = memchr(*q, &b[j + 1..]).map_or(b.len(), |e| j + 1 + e);
                    value = char_refs(&s[j + 1..close]);
                    j = (close + 1).min(b.len());
                }
                _ => {
                    let v0 = j;
                    while j < b.len() && !b[j].is_ascii_whitespace() && b[j] != b'>' {
                        j += 1;
                    }
                    value = char_refs(&s[v0..j]);
                }
            }
            i = j;
        }
        if !attrs.iter().any(|(n, _)| *n == attr) {
            attrs.push((attr, value));
        }
    }
    (
        Tag {
            name,
            attrs,
            closed,
        },
        i,
    )
}

/// Where the text of raw text element `name` that starts at `from` ends:
/// after its end tag, or the end of the document.
fn raw_text_end(b: &[u8], from: usize, name: &str) -> usize {
    let mut i = from;
    while let Some(off) = find(b, i, b"</") {
        let n = off + 2;
        let after = n + name.len();
        if after <= b.len()
            && b[n..after].eq_ignore_ascii_case(name.as_bytes())
            && b.get(after)
                .is_none_or(|c| c.is_ascii_whitespace() || *c == b'/' || *c == b'>')
        {
            return memchr(b'>', &b[after..]).map_or(b.len(), |e| after + e + 1);
        }
        i = n;
    }
    b.len()
}

/// An attribute value with its character references decoded: numeric
/// ones, and the named ones that can spell a URL's scheme or punctuation.
/// Unknown names stay as written.
fn char_refs(v: &str) -> String {
    if !v.contains('&') {
        return v.to_string();
    }
    const NAMED: &[(&str, char)] = &[
        ("amp", '&'),
        ("lt", '<'),
        ("gt", '>'),
        ("quot", '"'),
        ("apos", '\''),
        ("nbsp", '\u{a0}'),
        ("colon", ':'),
        ("sol", '/'),
        ("period", '.'),
        ("tab", '\t'),
        ("newline", '\n'),
        ("lpar", '('),
        ("rpar", ')'),
        ("semi", ';'),
        ("comma", ','),
        ("num", '#'),
        ("quest", '?'),
        ("equals", '='),
        ("percnt", '%'),
        ("bsol", '\\'),
    ];
    let mut out = String::with_capacity(v.len());
    let mut rest = v;
    while let Some(p) = rest.find('&') {
        out.push_str(&rest[..p]);
        let tail = &rest[p + 1..];
        if let Some(num) = tail.strip_prefix('#') {
            let (hex, digits) = match num.strip_prefix(['x', 'X']) {
                Some(h) => (true, h),
                None => (false, num),
            };
            let len = digits
                .bytes()
                .take_while(|c| {
                    if hex {
                        c.is_ascii_hexdigit()
                    } else {
                        c.is_ascii_digit()
                    }
                })
                .count();
            if len > 0 {
                let radix = if hex { 16 } else { 10 };
                let n = digits[..len].chars().fold(0u32, |n, c| {
                    let d = c.to_digit(radix).unwrap_or(0);
                    n.saturating_mul(radix).saturating_add(d).min(0x11_0000)
                });
                out.push(
                    char::from_u32(n)
                        .filter(|c| *c != '\0')
                        .unwrap_or('\u{FFFD}'),
                );
                let used = 1 + usize::from(hex) + len;
                let used = if tail[used..].starts_with(';') {
                    used + 1
                } else {
                    used
                };
                rest = &tail[used..];
                continue;
            }
        } else if let Some((name, c)) = NAMED.iter().find(|(n, _)| tail.starts_with(n)) {
            out.push(*c);
            let used = name.len();
            rest = if tail[used..].starts_with(';') {
                &tail[used + 1..]
            } else {
                &tail[used..]
            };
            continue;
        }
        out.push('&');
        rest = tail;
    }
    out.push_str(rest);
    out
}

fn memchr(c: u8, b: &[u8]) -> Option<usize> {
    b.iter().position(|x| *x == c)
}

/// The first `pat` in `b` at or after `from`.
fn find(b: &[u8], from: usize, pat: &[u8]) -> Option<usize> {
    if from >= b.len() {
        return None;
    }
    b[from..]
        .windows(pat.len())
        .position(|w| w == pat)
        .map(|p| from + p)
}

#[cfg(test)]
mod tests {
    use super::super::html::sanitise;
    use super::*;

    fn cids() -> HashMap<String, String> {
        [("logo@x".to_string(), "/part?s=2".to_string())].into()
    }

    /// The survey and the sanitiser agree on `html`.
    fn agree(html: &str) {
        for remote in [false, true] {
            let full = sanitise(html, remote, cids());
            let quick = survey(html, remote, cids());
            assert_eq!(
                (quick.html.blocked_remote, &quick.used_cids),
                (full.html.blocked_remote, &full.used_cids),
                "remote={remote}: {html}"
            );
            assert!(quick.html.body.is_empty());
        }
    }

    #[test]
    fn counts_as_the_sanitiser_does() {
        for html in [
            "<img src=\"cid:logo@x\"><img src=\"CID:%3Clogo@x%3E\"><img src=https://t.example/p.gif><img src=\"data:image/png;base64,AAAA\"><img src=cid:none><table background=\"http://x/bg.png\"><tr><td style=\"background: url(http://x/y.png)\">x</td></tr></table>",
            "<html><head><title><img src=http://no/></title><style>p{background:url(http://no/)}</style></head><BODY background=\"http://x/b.png\"><p>hi</p></BODY></html>",
            "<!-- <img src=http://no/> --><script>document.write('<img src=http://no/>')</script><img src=http://yes/ src=http://twice/>",
            "<IMG SRC='&#104;ttp://x/1.gif'><img src=&#x68;ttps://x/2.gif><img\nsrc\n=\n\"http://x/3.gif\"><img src=//x/4.gif>",
            "<video src=http://no/ poster=http://no/></video><input type=image src=http://no/><div style=\"color:red;background-image:url('https://x/5.png')\">a</div>",
            "<p style=\"background: u\\72l(http://x/)\">escaped: no count</p><textarea><img src=http://no/></textarea><noscript><img src=http://no/></noscript>",
            "<template><img src=http://no/></template><img src=http://x/6.png/><image src=http://x/8.png>",
            "<img src=\"cid:logo@x\" style=\"background:url(cid:logo@x)\"><font background=http://x/7.png>f</font>",
        ] {
            agree(html);
        }
    }

    #[test]
    fn counts_the_xss_corpus_as_the_sanitiser_does() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/xss/vectors.txt");
        let text = std::fs::read_to_string(path).unwrap();
        let mut vector = String::new();
        for line in text.lines().chain(["%% end"]) {
            if line.starts_with("%%") {
                if !vector.is_empty() {
                    agree(&vector);
                }
                vector.clear();
            } else {
                vector.push_str(line);
                vector.push('\n');
            }
        }
    }

    #[test]
    fn character_references_in_values() {
        assert_eq!(
            char_refs("a&amp;b&#58;c&#x2F;&colon&unknown;"),
            "a&b:c/:&unknown;"
        );
        assert_eq!(char_refs("&#0000106&#0000000000097"), "ja");
        assert_eq!(char_refs("&#0;&#xFFFFFFFFFF;&"), "\u{FFFD}\u{FFFD}&");
    }
}
