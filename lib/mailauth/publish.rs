//! What `kmpctl check` says about the DNS records of our own domains: a
//! local domain without an SPF record, a DMARC record, or a published DKIM
//! key (or with no key made at all) gets a warning. Only when DNS answers:
//! if it does not, one warning says the records were not checked. Domains
//! under the special-use names of RFC 2606 and RFC 6761 (`.test`,
//! `.example`, `.invalid`, `.localhost`) can have no public records and are
//! skipped.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use super::keys::DomainKeys;

/// Whether `domain` is under a special-use top-level name.
pub fn special_use(domain: &str) -> bool {
    let tld = domain
        .trim_end_matches('.')
        .rsplit('.')
        .next()
        .unwrap_or("");
    ["test", "example", "invalid", "localhost", "local"]
        .iter()
        .any(|t| tld.eq_ignore_ascii_case(t))
}

/// The warnings for `domains`, asking `servers` (or /etc/resolv.conf's);
/// the DKIM keys are those under `dkim_root` (empty: none).
pub fn warnings(domains: &[String], dkim_root: &Path, servers: &[SocketAddr]) -> Vec<String> {
    let domains: Vec<&String> = domains.iter().filter(|d| !special_use(d)).collect();
    if domains.is_empty() {
        return Vec::new();
    }
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return vec![format!("cannot check DNS records: {e}")],
    };
    rt.block_on(async {
        let auth = match super::verify::authenticator(servers, Duration::from_secs(3)) {
            Ok(a) => a,
            Err(e) => return vec![format!("no DNS resolver ({e}): SPF, DKIM and DMARC records not checked")],
        };
        let r = auth.resolver();
        // None: DNS did not answer. Some(texts): the TXT records (none for
        // NXDOMAIN or no data).
        let txt = |name: String| async move {
            match r.txt_lookup(format!("{name}.")).await {
                Ok(l) => Some(l.answers().iter().filter_map(|rec| match &rec.data {
                    hickory_resolver::proto::rr::RData::TXT(t) => Some(
                        t.txt_data.iter().map(|p| String::from_utf8_lossy(p).into_owned()).collect::<String>(),
                    ),
                    _ => None,
                }).collect::<Vec<String>>()),
                Err(e) if e.is_nx_domain() || e.is_no_records_found() => Some(Vec::new()),
                Err(_) => None,
            }
        };
        let mut out = Vec::new();
        for d in domains {
            let Some(spf) = txt(d.to_string()).await else {
                return vec![format!(
                    "DNS did not answer: the SPF, DKIM and DMARC records of local domains were not checked"
                )];
            };
            if !spf.iter().any(|t| t.to_ascii_lowercase().starts_with("v=spf1")) {
                out.push(format!("domain {d} publishes no SPF record (a TXT record \"v=spf1 ...\" at {d})"));
            }
            let dmarc = txt(format!("_dmarc.{d}")).await.unwrap_or_default();
            if !dmarc.iter().any(|t| t.to_ascii_uppercase().starts_with("V=DMARC1")) {
                out.push(format!("domain {d} publishes no DMARC record (a TXT record \"v=DMARC1; p=...\" at _dmarc.{d})"));
            }
            let keys = if dkim_root.as_os_str().is_empty() {
                Vec::new()
            } else {
                DomainKeys::new(dkim_root, d).map(|k| {
                    k.active().into_iter().map(|s| (s.clone(), k.record(&s).unwrap_or_default())).collect()
                }).unwrap_or_default()
            };
            if keys.is_empty() {
                out.push(format!("domain {d} has no DKIM key: kmpctl dkim keygen {d}"));
            }
            for (s, record) in keys {
                let p = record.rsplit("p=").next().unwrap_or("").trim().to_string();
                let got = txt(format!("{s}._domainkey.{d}")).await.unwrap_or_default();
                if !got.iter().any(|t| t.replace(' ', "").contains(&format!("p={p}"))) {
                    out.push(format!("domain {d}: the DKIM key {s} is not published (kmpctl dkim show {d})"));
                }
            }
        }
        out
    })
}
