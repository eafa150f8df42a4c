//! Anti-spam and anti-virus at the SMTP door (kmp-smtpd, before the 250).
//!
//! - [`scan`]: connection checks (DNSBL/DNSWL, forward-confirmed reverse
//!   DNS, HELO sanity), greylisting, the users' allow and block lists, and
//!   the content scanners (spamd, clamd) with the `X-Spam-*` headers.

pub mod scan;
