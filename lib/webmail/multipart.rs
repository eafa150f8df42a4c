//! `multipart/form-data` (RFC 7578) bodies: form fields and uploaded files.
//!
//! The parser reads from any `Read` in 16 KiB steps and never holds more
//! than one part plus one step in memory; every count and size has a cap
//! ([`Limits`]), and the whole body is already capped by CONTENT_LENGTH
//! (`webmail.max_request_size`). Field values must be UTF-8; file contents
//! are kept as bytes. A body that ends before its closing delimiter, a part
//! without a `Content-Disposition: form-data; name=...`, an over-long
//! header block: each is an error, and nothing of the request is used.

use std::io::Read;

use super::request::{split_params, unquote, RequestError};

/// Caps on one multipart body.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Most parts (fields and files together).
    pub max_parts: usize,
    /// Longest header block of one part.
    pub max_header: usize,
    /// Largest value of a field that is not a file.
    pub max_field: usize,
    /// Largest preamble before the first delimiter (it is skipped).
    pub max_preamble: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_parts: 200,
            max_header: 8192,
            max_field: 1 << 20,
            max_preamble: 8192,
        }
    }
}

/// An uploaded file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upload {
    /// The form field's name.
    pub field: String,
    /// The file's name as the browser gave it, without any directory part.
    pub filename: String,
    /// The declared type, `application/octet-stream` when none.
    pub content_type: String,
    pub data: Vec<u8>,
}

/// What a multipart body held.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Parts {
    pub fields: Vec<(String, String)>,
    pub uploads: Vec<Upload>,
}

const STEP: usize = 16 * 1024;

struct Scanner<'a> {
    inner: &'a mut dyn Read,
    buf: Vec<u8>,
    eof: bool,
}

impl Scanner<'_> {
    /// Reads one more step; false at the end of the input.
    fn more(&mut self) -> Result<bool, RequestError> {
        if self.eof {
            return Ok(false);
        }
        let old = self.buf.len();
        self.buf.resize(old + STEP, 0);
        let n = loop {
            match self.inner.read(&mut self.buf[old..]) {
                Ok(n) => break n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => return Err(RequestError::Io),
            }
        };
        self.buf.truncate(old + n);
        if n == 0 {
            self.eof = true;
        }
        Ok(n > 0)
    }

    /// Moves bytes up to `delim` into `sink` (capped at `cap`), consumes
    /// the delimiter, and returns true; false when the input ended first.
    fn until(
        &mut self,
        delim: &[u8],
        sink: &mut Vec<u8>,
        cap: usize,
        too_big: RequestError,
    ) -> Result<bool, RequestError> {
        let mut from = 0;
        loop {
            if let Some(i) = find(&self.buf[from..], delim) {
                let end = from + i;
                if sink.len() + end > cap {
                    return Err(too_big);
                }
                sink.extend_from_slice(&self.buf[..end]);
                self.buf.drain(..end + delim.len());
                return Ok(true);
            }
            // Keep the tail that could be the start of the delimiter.
            let keep = delim.len().saturating_sub(1).min(self.buf.len());
            let move_n = self.buf.len() - keep;
            if sink.len() + move_n > cap {
                return Err(too_big);
            }
            sink.extend_from_slice(&self.buf[..move_n]);
            self.buf.drain(..move_n);
            from = 0;
            if !self.more()? {
                return Ok(false);
            }
        }
    }

    /// Ensures at least `n` bytes are buffered; false when the input ends first.
    fn want(&mut self, n: usize) -> Result<bool, RequestError> {
        while self.buf.len() < n {
            if !self.more()? {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || hay.len() < needle.len() {
        return None;
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Parses a body with `boundary` from `input`.
pub fn parse(input: &mut dyn Read, boundary: &str, limits: &Limits) -> Result<Parts, RequestError> {
    // RFC 2046 5.1.1: 1 to 70 characters.
    if boundary.is_empty()
        || boundary.len() > 70
        || boundary.bytes().any(|b| !(0x20..=0x7e).contains(&b))
    {
        return Err(RequestError::Bad("bad multipart boundary"));
    }
    let bad = RequestError::Bad;
    // The first delimiter may start the body: read it as if a CRLF came before.
    let mut s = Scanner {
        inner: input,
        buf: b"\r\n".to_vec(),
        eof: false,
    };
    let delim = format!("\r\n--{boundary}").into_bytes();
    let mut skipped = Vec::new();
    if !s.until(
        &delim,
        &mut skipped,
        limits.max_preamble,
        bad("multipart preamble too long"),
    )? {
        return Err(bad("multipart body without a delimiter"));
    }
    let mut parts = Parts::default();
    let mut count = 0;
    loop {
        // After a delimiter: "--" ends the body, else optional blanks and CRLF.
        if !s.want(2)? {
            return Err(bad("multipart body ends early"));
        }
        if s.buf.starts_with(b"--") {
            return Ok(parts);
        }
        let mut pad = Vec::new();
        if !s.until(b"\r\n", &mut pad, 64, bad("bad multipart delimiter line"))?
            || pad.iter().any(|b| *b != b' ' && *b != b'\t')
        {
            return Err(bad("bad multipart delimiter line"));
        }
        count += 1;
        if count > limits.max_parts {
            return Err(bad("too many parts in the form"));
        }
        // The header block; an empty one starts with the blank line itself.
        let mut head = Vec::new();
        if !s.want(2)? {
            return Err(bad("multipart body ends early"));
        }
        if s.buf.starts_with(b"\r\n") {
            s.buf.drain(..2);
        } else if !s.until(
            b"\r\n\r\n",
            &mut head,
            limits.max_header,
            bad("part header too long"),
        )? {
            return Err(bad("multipart body ends early"));
        }
        let head = PartHead::parse(&head)?;
        let mut data = Vec::new();
        let cap = if head.filename.is_some() {
            usize::MAX
        } else {
            limits.max_field
        };
        if !s.until(&delim, &mut data, cap, bad("form field too long"))? {
            return Err(bad("multipart body ends early"));
        }
        match head.filename {
            Some(filename) => parts.uploads.push(Upload {
                field: head.name,
                filename,
                content_type: head
                    .content_type
                    .unwrap_or_else(|| "application/octet-stream".into()),
                data,
            }),
            None => {
                let v = String::from_utf8(data).map_err(|_| bad("a field is not UTF-8"))?;
                if v.contains('\0') {
                    return Err(bad("a field holds NUL"));
                }
                parts.fields.push((head.name, v));
            }
        }
    }
}

struct PartHead {
    name: String,
    filename: Option<String>,
    content_type: Option<String>,
}

impl PartHead {
    fn parse(raw: &[u8]) -> Result<PartHead, RequestError> {
        let bad = RequestError::Bad;
        // Browsers send header values as UTF-8 (file names included).
        let text = std::str::from_utf8(raw).map_err(|_| bad("part header is not UTF-8"))?;
        let mut name = None;
        let mut filename = None;
        let mut filename_ext = None;
        let mut content_type = None;
        for line in text.split("\r\n") {
            let Some((k, v)) = line.split_once(':') else {
                return Err(bad("bad part header"));
            };
            match k.trim().to_ascii_lowercase().as_str() {
                "content-disposition" => {
                    let params = split_params(v);
                    if params
                        .first()
                        .map(|d| d.trim().to_ascii_lowercase())
                        .as_deref()
                        != Some("form-data")
                    {
                        return Err(bad("part is not form-data"));
                    }
                    for p in &params[1..] {
                        let Some((pk, pv)) = p.split_once('=') else {
                            continue;
                        };
                        let pv = unquote(pv.trim());
                        match pk.trim().to_ascii_lowercase().as_str() {
                            "name" => name = Some(pv),
                            "filename" => filename = Some(pv),
                            // RFC 5987 form: UTF-8''percent-encoded.
                            "filename*" => filename_ext = ext_value(&pv),
                            _ => {}
                        }
                    }
                }
                "content-type" => content_type = Some(v.trim().to_string()),
                _ => {}
            }
        }
        let name = name.ok_or(bad("part without a field name"))?;
        if name.chars().any(|c| c.is_control()) {
            return Err(bad("bad field name"));
        }
        let filename = filename_ext.or(filename).map(|f| {
            // Some browsers send a whole path: keep the last piece.
            f.rsplit(['/', '\\'])
                .next()
                .unwrap_or_default()
                .chars()
                .filter(|c| !c.is_control())
                .collect()
        });
        Ok(PartHead {
            name,
            filename,
            content_type,
        })
    }
}

/// An RFC 5987 ext-value in UTF-8.
fn ext_value(v: &str) -> Option<String> {
    let rest = v
        .strip_prefix("UTF-8''")
        .or_else(|| v.strip_prefix("utf-8''"))?;
    let pairs =
        super::request::parse_urlencoded(format!("x={}", rest.replace('+', "%2B")).as_bytes())
            .ok()?;
    pairs.into_iter().next().map(|(_, v)| v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body() -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(b"preamble\r\n--XyZ\r\n");
        b.extend_from_slice(b"Content-Disposition: form-data; name=\"to\"\r\n\r\n");
        b.extend_from_slice("李四 <l@example.test>".as_bytes());
        b.extend_from_slice(b"\r\n--XyZ\r\n");
        b.extend_from_slice(
            "Content-Disposition: form-data; name=\"file\"; filename=\"C:\\\\docs\\\\报告.txt\"\r\n"
                .as_bytes(),
        );
        b.extend_from_slice(b"Content-Type: text/plain\r\n\r\n");
        b.extend_from_slice(b"line1\r\n--XyY not yet\r\n\x00\xff");
        b.extend_from_slice(b"\r\n--XyZ  \r\n");
        b.extend_from_slice(b"Content-Disposition: form-data; name=\"empty\"\r\n\r\n");
        b.extend_from_slice(b"\r\n--XyZ--\r\nepilogue");
        b
    }

    /// A reader that hands out at most `n` bytes per read.
    struct Trickle<'a>(&'a [u8], usize);
    impl Read for Trickle<'_> {
        fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
            let n = self.1.min(out.len()).min(self.0.len());
            out[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    #[test]
    fn fields_and_files_parse_in_any_chunking() {
        let b = body();
        for step in [1, 2, 3, 7, 64, 512, 1 << 20] {
            let p = parse(&mut Trickle(&b, step), "XyZ", &Limits::default()).unwrap();
            assert_eq!(
                p.fields,
                vec![
                    ("to".to_string(), "李四 <l@example.test>".to_string()),
                    ("empty".to_string(), String::new())
                ],
                "step {step}"
            );
            assert_eq!(p.uploads.len(), 1);
            let u = &p.uploads[0];
            assert_eq!(u.filename, "报告.txt");
            assert_eq!(u.content_type, "text/plain");
            assert_eq!(u.data, b"line1\r\n--XyY not yet\r\n\x00\xff");
        }
    }

    #[test]
    fn broken_bodies_are_errors() {
        let b = body();
        let cut = &b[..b.len() - 14];
        assert!(
            parse(&mut &cut[..], "XyZ", &Limits::default()).is_err(),
            "no close"
        );
        assert!(
            parse(&mut &b[..], "Other", &Limits::default()).is_err(),
            "no delimiter"
        );
        assert!(parse(&mut &b[..], "", &Limits::default()).is_err());
        let small = Limits {
            max_field: 4,
            ..Limits::default()
        };
        assert!(parse(&mut &b[..], "XyZ", &small).is_err(), "field cap");
        let few = Limits {
            max_parts: 2,
            ..Limits::default()
        };
        assert!(parse(&mut &b[..], "XyZ", &few).is_err(), "part cap");
        let noname = b"--B\r\nContent-Disposition: form-data\r\n\r\nx\r\n--B--";
        assert!(parse(&mut &noname[..], "B", &Limits::default()).is_err());
        let long_head = format!(
            "--B\r\nContent-Disposition: form-data; name=a\r\nX: {}\r\n\r\nx\r\n--B--",
            "y".repeat(9000)
        );
        assert!(parse(&mut long_head.as_bytes(), "B", &Limits::default()).is_err());
        let bad_utf8 = b"--B\r\nContent-Disposition: form-data; name=a\r\n\r\n\xff\r\n--B--";
        assert!(parse(&mut &bad_utf8[..], "B", &Limits::default()).is_err());
    }

    #[test]
    fn rfc5987_file_names_win() {
        let b = "--B\r\nContent-Disposition: form-data; name=f; filename=\"a.txt\"; filename*=UTF-8''%E9%99%84%E4%BB%B6.txt\r\n\r\nx\r\n--B--";
        let p = parse(&mut b.as_bytes(), "B", &Limits::default()).unwrap();
        assert_eq!(p.uploads[0].filename, "附件.txt");
        assert_eq!(p.uploads[0].content_type, "application/octet-stream");
    }
}
