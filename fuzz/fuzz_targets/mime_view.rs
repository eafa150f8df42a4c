//! Mail decoded for display (lib/mime): any bytes as a message (with the
//! HTML sanitised, or only surveyed), a header value, an address list or
//! text in any charset never panic; every
//! attachment view() lists is a part that part() finds, of the size listed;
//! a download name never puts a line break or a quote into the header.
#![no_main]

use kmpromail::mime;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let url = |s: &str| format!("/part/{s}");
    for (allow_remote, write_html) in [(false, true), (true, true), (false, false)] {
        let v = mime::view(
            data,
            &mime::ViewOptions {
                allow_remote,
                cid_url: &url,
                write_html,
            },
        );
        if !write_html {
            // Only counted: nothing to show.
            assert!(v.html.as_ref().is_none_or(|h| h.body.is_empty()));
        }
        for a in &v.attachments {
            let p = mime::part(data, &a.section);
            assert_eq!(p.map(|p| p.bytes.len() as u64), Some(a.size), "{}", a.section);
            let cd = mime::content_disposition("attachment", &a.name);
            assert!(!cd.contains(['\r', '\n']));
        }
        if let Some(h) = &v.html {
            // No script element and no event handler in any tag.
            for name in attribute_names(&h.body) {
                assert!(name != "script" && !name.starts_with("on"), "{name}");
            }
        }
    }
    let _ = mime::header_text(data);
    let _ = mime::address_list(data);
    for cs in ["utf-7", "hz-gb-2312", "gb2312", "big5", "iso-2022-jp", "utf-8"] {
        let _ = mime::decode(data, Some(cs));
    }
    let _ = mime::decode(data, None);
    if let Ok(s) = std::str::from_utf8(data) {
        let cd = mime::content_disposition(s, s);
        assert!(!cd.contains(['\r', '\n']) && cd.matches('"').count() == 2);
        let _ = mime::text_to_html(s);
    }
});

/// Element and attribute names of serialised HTML (values skipped).
fn attribute_names(html: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut in_tag = false;
    let mut quoted = false;
    let mut name = String::new();
    for c in html.chars() {
        match c {
            '"' if in_tag => quoted = !quoted,
            _ if quoted => {}
            '<' => in_tag = true,
            '>' | ' ' | '=' | '/' if in_tag => {
                if !name.is_empty() {
                    out.push(std::mem::take(&mut name).to_ascii_lowercase());
                }
                if c == '>' {
                    in_tag = false;
                }
            }
            c if in_tag => name.push(c),
            _ => {}
        }
    }
    out
}
