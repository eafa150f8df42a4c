//! DKIM signing keys on disk: made by `kmpctl dkim`, read by kmp-remote.
//!
//! ```text
//! auth.dkim_keys/                  0700, kmp-remote's user
//!   example.com/                   0700
//!     active                       selectors signed with, one a line
//!     retired                      "SELECTOR UNIX-TIME" of replaced keys
//!     ed20261205.pem               PKCS#8 private key, 0600
//!     ed20261205.txt               its DNS TXT record (the public key)
//!     rsa20261205.pem / .txt
//! ```
//!
//! A selector is the algorithm and the day it was made (`ed20261205`,
//! `rsa20261205`, then `rsa20261205b` for a second one that day), so the
//! DNS names say how old a key is. Ed25519 keys are made with ring; ring
//! cannot make RSA keys, so RSA-2048 keys come from `openssl genpkey`.
//! Every file is written to a temporary name and renamed, and as root is
//! given to the owner of `auth.dkim_keys` (kmp-remote's user).

use std::fs;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine;
use mail_auth::common::crypto::{Ed25519Key, RsaKey, Sha256};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

/// A key algorithm DKIM signs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// RFC 8463.
    Ed25519,
    /// RSA-2048 with SHA-256 (RFC 6376, RFC 8301).
    Rsa,
}

impl Algorithm {
    /// The selector prefix and `k=` tag.
    pub fn prefix(self) -> &'static str {
        match self {
            Algorithm::Ed25519 => "ed",
            Algorithm::Rsa => "rsa",
        }
    }

    fn tag(self) -> &'static str {
        match self {
            Algorithm::Ed25519 => "ed25519",
            Algorithm::Rsa => "rsa",
        }
    }

    /// The algorithm a selector was made for.
    pub fn of_selector(selector: &str) -> Option<Algorithm> {
        if selector.starts_with("ed") {
            Some(Algorithm::Ed25519)
        } else if selector.starts_with("rsa") {
            Some(Algorithm::Rsa)
        } else {
            None
        }
    }
}

/// A key ready to sign with.
pub enum SigningKey {
    Ed25519(Ed25519Key),
    Rsa(RsaKey<Sha256>),
}

/// One domain's key directory.
#[derive(Debug, Clone)]
pub struct DomainKeys {
    pub dir: PathBuf,
    pub domain: String,
}

impl DomainKeys {
    /// The keys of `domain` under `root` (the name is checked: a domain,
    /// never a path).
    pub fn new(root: &Path, domain: &str) -> Result<DomainKeys, String> {
        let domain = domain.trim_end_matches('.').to_ascii_lowercase();
        let ok = !domain.is_empty()
            && domain.len() <= 253
            && domain.split('.').all(|l| {
                !l.is_empty()
                    && l.len() <= 63
                    && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                    && !l.starts_with('-')
            });
        if !ok {
            return Err(format!(
                "{domain:?} is not a domain name (use its A-label form)"
            ));
        }
        Ok(DomainKeys {
            dir: root.join(&domain),
            domain,
        })
    }

    /// The selectors signed with now.
    pub fn active(&self) -> Vec<String> {
        read_lines(&self.dir.join("active"))
    }

    /// Replaced selectors with the time (Unix seconds) they were replaced.
    pub fn retired(&self) -> Vec<(String, u64)> {
        read_lines(&self.dir.join("retired"))
            .iter()
            .filter_map(|l| {
                let (s, t) = l.split_once(' ')?;
                Some((s.to_string(), t.trim().parse().ok()?))
            })
            .collect()
    }

    /// The DNS record text of `selector` (`v=DKIM1; k=...; p=...`).
    pub fn record(&self, selector: &str) -> Result<String, String> {
        let p = self.dir.join(format!("{selector}.txt"));
        fs::read_to_string(&p)
            .map(|s| s.trim().to_string())
            .map_err(|e| format!("{}: {e}", p.display()))
    }

    /// The private key of `selector`.
    pub fn load(&self, selector: &str) -> Result<SigningKey, String> {
        let p = self.dir.join(format!("{selector}.pem"));
        let pem = fs::read(&p).map_err(|e| format!("{}: {e}", p.display()))?;
        let der = PrivatePkcs8KeyDer::from_pem_slice(&pem)
            .map_err(|e| format!("{}: not a PKCS#8 key: {e}", p.display()))?;
        match Algorithm::of_selector(selector) {
            Some(Algorithm::Ed25519) => Ed25519Key::from_pkcs8_der(der.secret_pkcs8_der())
                .map(SigningKey::Ed25519)
                .map_err(|e| format!("{}: {e}", p.display())),
            Some(Algorithm::Rsa) => RsaKey::<Sha256>::from_key_der(PrivateKeyDer::Pkcs8(der))
                .map(SigningKey::Rsa)
                .map_err(|e| format!("{}: {e}", p.display())),
            None => Err(format!("{selector}: unknown selector form")),
        }
    }

    /// Makes a new key of `alg` named for `day` (`YYYYMMDD`) and returns
    /// its selector; it is not active yet.
    pub fn generate(&self, alg: Algorithm, day: &str) -> Result<String, String> {
        make_dir(&self.dir)?;
        let mut selector = format!("{}{day}", alg.prefix());
        for c in b'b'..=b'z' {
            if !self.dir.join(format!("{selector}.pem")).exists() {
                break;
            }
            selector = format!("{}{day}{}", alg.prefix(), c as char);
        }
        let (pem, public) = match alg {
            Algorithm::Ed25519 => ed25519_pair()?,
            Algorithm::Rsa => rsa_pair()?,
        };
        let b64 = base64::engine::general_purpose::STANDARD.encode(public);
        let record = format!("v=DKIM1; k={}; p={b64}", alg.tag());
        write_file(
            &self.dir.join(format!("{selector}.pem")),
            pem.as_bytes(),
            0o600,
        )?;
        write_file(
            &self.dir.join(format!("{selector}.txt")),
            format!("{record}\n").as_bytes(),
            0o644,
        )?;
        Ok(selector)
    }

    /// Makes `selectors` the active ones; those active before and not in
    /// the list are retired at `now`.
    pub fn activate(&self, selectors: &[String], now: u64) -> Result<(), String> {
        let mut retired = self.retired();
        for old in self.active() {
            if !selectors.contains(&old) {
                retired.push((old, now));
            }
        }
        let text: String = selectors.iter().map(|s| format!("{s}\n")).collect();
        write_file(&self.dir.join("active"), text.as_bytes(), 0o644)?;
        self.write_retired(&retired)
    }

    /// Deletes retired keys replaced before `before` (Unix seconds);
    /// returns their selectors.
    pub fn purge(&self, before: u64) -> Result<Vec<String>, String> {
        let (gone, keep): (Vec<_>, Vec<_>) =
            self.retired().into_iter().partition(|(_, t)| *t < before);
        for (s, _) in &gone {
            for ext in ["pem", "txt"] {
                let p = self.dir.join(format!("{s}.{ext}"));
                match fs::remove_file(&p) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(format!("{}: {e}", p.display())),
                }
            }
        }
        self.write_retired(&keep)?;
        Ok(gone.into_iter().map(|(s, _)| s).collect())
    }

    fn write_retired(&self, retired: &[(String, u64)]) -> Result<(), String> {
        let text: String = retired.iter().map(|(s, t)| format!("{s} {t}\n")).collect();
        write_file(&self.dir.join("retired"), text.as_bytes(), 0o644)
    }
}

/// The record as a zone-file line: RSA keys need more than one 255-octet
/// string (RFC 7208 3.3 and RFC 6376 3.6.2.2 join them without spaces).
pub fn zone_line(domain: &str, selector: &str, record: &str) -> String {
    let parts: Vec<String> = record
        .as_bytes()
        .chunks(250)
        .map(|c| format!("\"{}\"", String::from_utf8_lossy(c)))
        .collect();
    format!(
        "{selector}._domainkey.{domain}. IN TXT ( {} )",
        parts.join(" ")
    )
}

/// The domains with a key directory under `root`.
pub fn domains(root: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(root)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn read_lines(p: &Path) -> Vec<String> {
    fs::read_to_string(p)
        .unwrap_or_default()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

fn ed25519_pair() -> Result<(String, Vec<u8>), String> {
    let der = Ed25519Key::generate_pkcs8().map_err(|e| e.to_string())?;
    let key = Ed25519Key::from_pkcs8_der(&der).map_err(|e| e.to_string())?;
    Ok((pem("PRIVATE KEY", &der), key.public_key()))
}

/// RSA-2048 through openssl: the PKCS#8 PEM and the SubjectPublicKeyInfo
/// DER that DKIM's `p=` carries (RFC 6376 3.6.1).
fn rsa_pair() -> Result<(String, Vec<u8>), String> {
    let run = |args: &[&str], input: &[u8]| -> Result<Vec<u8>, String> {
        let mut child = Command::new("openssl")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot run openssl (needed for RSA keys): {e}"))?;
        if let Some(mut i) = child.stdin.take() {
            i.write_all(input).map_err(|e| format!("openssl: {e}"))?;
        }
        let out = child
            .wait_with_output()
            .map_err(|e| format!("openssl: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "openssl {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(out.stdout)
    };
    let key = run(
        &[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
        ],
        b"",
    )?;
    let public = run(&["pkey", "-pubout", "-outform", "DER"], &key)?;
    let key = String::from_utf8(key).map_err(|_| "openssl wrote no PEM".to_string())?;
    // Checked here so a key ring cannot read is never made active.
    let der = PrivatePkcs8KeyDer::from_pem_slice(key.as_bytes())
        .map_err(|e| format!("openssl's key: {e}"))?;
    RsaKey::<Sha256>::from_key_der(PrivateKeyDer::Pkcs8(der))
        .map_err(|e| format!("openssl's key: {e}"))?;
    Ok((key, public))
}

fn pem(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut s = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        s.push_str(&String::from_utf8_lossy(chunk));
        s.push('\n');
    }
    s.push_str(&format!("-----END {label}-----\n"));
    s
}

/// Makes `dir` (0700) and gives it to its parent's owner when root.
fn make_dir(dir: &Path) -> Result<(), String> {
    use std::os::unix::fs::DirBuilderExt;
    if !dir.is_dir() {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    give_to_parent_owner(dir)
}

/// Writes `bytes` to `path` through a temporary file and a rename, with `mode`.
fn write_file(path: &Path, bytes: &[u8], mode: u32) -> Result<(), String> {
    let err = |e: std::io::Error| format!("{}: {e}", path.display());
    let tmp = path.with_extension("tmp");
    let _ = fs::remove_file(&tmp);
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)
        .map_err(err)?;
    f.write_all(bytes).map_err(err)?;
    f.sync_all().map_err(err)?;
    give_to_parent_owner(&tmp)?;
    fs::rename(&tmp, path).map_err(err)
}

/// As root, `path` takes the owner and group of its directory, so kmpctl's
/// files are kmp-remote's to read (and no one else's).
fn give_to_parent_owner(path: &Path) -> Result<(), String> {
    if !crate::sys::privs::is_root() {
        return Ok(());
    }
    let Some(parent) = path.parent() else {
        return Ok(());
    };
    let d = fs::metadata(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
    std::os::unix::fs::chown(path, Some(d.uid()), Some(d.gid()))
        .map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domain_names_never_become_paths() {
        let root = Path::new("/k");
        assert!(DomainKeys::new(root, "Example.COM.").is_ok());
        assert_eq!(
            DomainKeys::new(root, "Example.COM").unwrap().domain,
            "example.com"
        );
        for bad in ["../etc", "a/b", "", "a..b", "-a.b", "a b"] {
            assert!(DomainKeys::new(root, bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ed25519_keys_are_made_activated_rotated_and_purged() {
        let t = tempfile::tempdir().unwrap();
        let k = DomainKeys::new(t.path(), "example.com").unwrap();
        let s1 = k.generate(Algorithm::Ed25519, "20261205").unwrap();
        assert_eq!(s1, "ed20261205");
        k.activate(std::slice::from_ref(&s1), 100).unwrap();
        assert!(k.record(&s1).unwrap().starts_with("v=DKIM1; k=ed25519; p="));
        assert!(matches!(k.load(&s1).unwrap(), SigningKey::Ed25519(_)));
        let s2 = k.generate(Algorithm::Ed25519, "20261205").unwrap();
        assert_eq!(s2, "ed20261205b");
        k.activate(std::slice::from_ref(&s2), 200).unwrap();
        assert_eq!(k.active(), vec![s2.clone()]);
        assert_eq!(k.retired(), vec![(s1.clone(), 200)]);
        assert!(k.purge(200).unwrap().is_empty());
        assert_eq!(k.purge(201).unwrap(), vec![s1.clone()]);
        assert!(!k.dir.join(format!("{s1}.pem")).exists());
        let mode = fs::metadata(k.dir.join(format!("{s2}.pem")))
            .unwrap()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600);
        let z = zone_line("example.com", "rsa1", &"x".repeat(300));
        assert!(
            z.starts_with("rsa1._domainkey.example.com. IN TXT ( \"xxx"),
            "{z}"
        );
        assert_eq!(z.matches('"').count(), 4);
    }
}
