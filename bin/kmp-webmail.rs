//! kmp-webmail - the webmail, a CGI program.
//!
//! What it does: serves one HTTP request handed to it by a web server
//! through CGI (RFC 3875) - the login page, folders, settings and, later,
//! messages - and exits. It checks the user's session (a sealed cookie whose
//! id is listed in the user's IMAP METADATA), talks to kmp-imapd over one
//! IMAP connection as that user, and renders a page from the skin's
//! templates. See kmp-webmail(8) and `lib/webmail/`.
//! Runs as: the web server's CGI user (or `kmpweb`); never root.
//! Reads: the configuration (`KMPROMAIL_CONFIG`, else the default path),
//! `webmail.key_file`, the skins and language files; the request from the
//! environment and standard input (at most `webmail.max_request_size`).
//! Writes: the response to standard output; problems to standard error
//! (the web server's error log). No files.
//! Trusts: the web server for REMOTE_ADDR and HTTPS; kmp-imapd.
//! Does not trust: anything in the request (cookies are sealed and checked,
//! forms carry CSRF tokens, names are checked), anything stored in the
//! user's METADATA (parsed as untrusted text).
//! Imports no store: no Maildir, no queue, no user database.
//! Exit codes: 0 whenever a response was written (error pages included);
//! 74 when standard output could not be written.
//! Standards: RFC 3875 (CGI), RFC 6265 (cookies), RFC 9051 and RFC 5464
//! (IMAP, METADATA), RFC 2971 (ID), RFC 7578 (multipart/form-data).

use std::io::Write;

fn main() {
    // The web server's error log is our standard error.
    kmpromail::log::init_stderr("kmp-webmail");
    let _ = rustls::crypto::ring::default_provider().install_default();
    let env = |name: &str| std::env::var(name).ok();
    let mut stdin = std::io::stdin().lock();
    let mut stdout = std::io::BufWriter::new(std::io::stdout().lock());
    let code = kmpromail::webmail::run(&env, &mut stdin, &mut stdout);
    let _ = stdout.flush();
    std::process::exit(code);
}
