//! The CGI response: `Status`, headers and body, with the security headers
//! every page carries.

use std::io::Write;

/// The Content-Security-Policy of every page: nothing but our own style
/// sheet and images, forms only to ourselves, never framed, and frames only
/// of our own (the sandboxed frame a message's HTML is shown in).
pub const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; \
     form-action 'self'; frame-ancestors 'none'; base-uri 'none'; frame-src 'self'";

/// A response about to be written.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub content_type: String,
    /// Extra headers (Set-Cookie, Location, Content-Disposition ...).
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The policy sent; [`CSP`] unless a page needs its own (the frame a
    /// message's HTML is shown in, which says `frame-ancestors 'self'`;
    /// X-Frame-Options follows it).
    pub csp: String,
    /// Private pages (everything but the skin's static files) are never cached.
    pub private: bool,
}

impl Response {
    /// An HTML page.
    pub fn html(status: u16, body: String) -> Response {
        Response {
            status,
            content_type: "text/html; charset=utf-8".into(),
            headers: Vec::new(),
            body: body.into_bytes(),
            csp: CSP.into(),
            private: true,
        }
    }

    /// A plain-text answer, for when even the templates cannot be used.
    pub fn text(status: u16, body: &str) -> Response {
        Response {
            content_type: "text/plain; charset=utf-8".into(),
            ..Response::html(status, body.to_string())
        }
    }

    /// 303 See Other to `location` (a path starting with `/`, or a full URL):
    /// after a POST, the browser fetches the next page with GET.
    pub fn redirect(location: &str) -> Response {
        let mut r = Response::text(303, "");
        r.headers.push(("Location".into(), location.to_string()));
        r
    }

    /// Adds a header.
    pub fn with_header(mut self, name: &str, value: &str) -> Response {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// Writes the response in CGI form (RFC 3875 6). With `head_only` the
    /// body is left out (a HEAD request).
    pub fn write_to(&self, out: &mut dyn Write, head_only: bool) -> std::io::Result<()> {
        let mut h = String::new();
        h.push_str(&format!(
            "Status: {} {}\r\n",
            self.status,
            reason(self.status)
        ));
        h.push_str(&format!("Content-Type: {}\r\n", clean(&self.content_type)));
        h.push_str(&format!("Content-Length: {}\r\n", self.body.len()));
        h.push_str(&format!(
            "Content-Security-Policy: {}\r\n",
            clean(&self.csp)
        ));
        h.push_str("X-Content-Type-Options: nosniff\r\n");
        h.push_str("Referrer-Policy: no-referrer\r\n");
        // For browsers without CSP frame-ancestors: the same rule.
        if self.csp.contains("frame-ancestors 'none'") {
            h.push_str("X-Frame-Options: DENY\r\n");
        } else {
            h.push_str("X-Frame-Options: SAMEORIGIN\r\n");
        }
        if self.private {
            h.push_str("Cache-Control: no-store\r\n");
        } else {
            h.push_str("Cache-Control: public, max-age=3600\r\n");
        }
        for (k, v) in &self.headers {
            h.push_str(&format!("{}: {}\r\n", clean(k), clean(v)));
        }
        h.push_str("\r\n");
        out.write_all(h.as_bytes())?;
        if !head_only {
            out.write_all(&self.body)?;
        }
        out.flush()
    }
}

/// A header value with no line break in it (no header injection).
fn clean(v: &str) -> String {
    v.chars()
        .filter(|c| *c != '\r' && *c != '\n' && *c != '\0')
        .collect()
}

/// The reason phrase of the statuses the webmail sends.
pub fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        303 => "See Other",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        413 => "Content Too Large",
        415 => "Unsupported Media Type",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "",
    }
}

/// A cookie's attributes.
pub struct CookieSpec<'a> {
    pub name: &'a str,
    pub value: &'a str,
    /// The cookie's path (the webmail's link prefix, or `/`).
    pub path: &'a str,
    /// Seconds to keep it; 0 deletes it.
    pub max_age: u64,
    /// Sent only over TLS (the request came over HTTPS).
    pub secure: bool,
}

/// A Set-Cookie value: always HttpOnly and SameSite=Strict.
pub fn set_cookie(c: &CookieSpec) -> String {
    let path = if c.path.is_empty() { "/" } else { c.path };
    let mut s = format!(
        "{}={}; Path={}; Max-Age={}; HttpOnly; SameSite=Strict",
        c.name, c.value, path, c.max_age
    );
    if c.secure {
        s.push_str("; Secure");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_response_carries_the_security_headers() {
        let mut out = Vec::new();
        Response::html(200, "<p>x</p>".into())
            .with_header("X-Evil", "a\r\nSet-Cookie: b=c")
            .write_to(&mut out, false)
            .unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("Status: 200 OK\r\n"));
        assert!(text.contains("Content-Security-Policy: default-src 'none'; style-src 'self'"));
        assert!(text.contains("frame-ancestors 'none'"));
        assert!(text.contains("X-Content-Type-Options: nosniff\r\n"));
        assert!(text.contains("Referrer-Policy: no-referrer\r\n"));
        assert!(text.contains("Cache-Control: no-store\r\n"));
        assert!(
            text.contains("X-Evil: aSet-Cookie: b=c\r\n"),
            "no header injection"
        );
        assert!(text.ends_with("\r\n\r\n<p>x</p>"));
        let mut head = Vec::new();
        Response::html(200, "body".into())
            .write_to(&mut head, true)
            .unwrap();
        assert!(!String::from_utf8(head).unwrap().contains("body"));
    }

    #[test]
    fn cookies_are_http_only_strict_and_secure_under_tls() {
        let c = set_cookie(&CookieSpec {
            name: "kmpw",
            value: "v",
            path: "",
            max_age: 60,
            secure: true,
        });
        assert_eq!(
            c,
            "kmpw=v; Path=/; Max-Age=60; HttpOnly; SameSite=Strict; Secure"
        );
    }
}
