//! Remote passwords sealed to kmp-fetch's key.
//!
//! kmp-fetch has a P-256 key pair: the private half readable only by its
//! user (`fetch.private_key`), the public half by anyone who writes
//! accounts (`fetch.public_key`: kmpctl, kmp-admind). A writer seals a
//! password with an ephemeral key (ring's ECDH), HKDF-SHA-256 over the
//! shared secret and both public keys, and AES-256-GCM with the owner's
//! address as associated data; only the holder of the private key can open
//! it, and a sealed password copied into another user's record does not
//! open there.
//!
//! Why P-256 and not X25519: ring agrees only with ephemeral private keys,
//! and the opening side needs a static one, which the RustCrypto `p256`
//! crate gives. ring still does the sealing, the KDF and the AEAD.
//!
//! The sealed form is `k1:` and base64 of: the ephemeral public key (65
//! bytes, uncompressed SEC1), then the ciphertext and its tag.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use ring::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
use ring::agreement::{self, EphemeralPrivateKey, UnparsedPublicKey, ECDH_P256};
use ring::hkdf;
use ring::rand::{SecureRandom, SystemRandom};

use crate::proto::sasl::Secret;

const PREFIX: &str = "k1:";
const INFO: &[u8] = b"kmpromail fetch password v1";
const PUBLIC_LEN: usize = 65;
/// The longest password sealed.
pub const MAX_PASSWORD: usize = 1024;

/// Why sealing or opening failed.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("{0}: {1}")]
    Io(String, std::io::Error),
    #[error("{0}: not a kmp-fetch key")]
    BadKey(String),
    #[error("the sealed password is damaged or was sealed to another key or user")]
    Open,
    #[error("the password is empty or longer than {MAX_PASSWORD} bytes")]
    Length,
    #[error("no randomness from the system")]
    Random,
}

/// The private key, as kmp-fetch holds it.
pub struct PrivateKey(p256::SecretKey);

/// The public key, as a writer holds it.
#[derive(Clone)]
pub struct PublicKey(Vec<u8>);

/// Makes a key pair: the private key file (mode 0600) and the public one
/// (0644). Existing files are kept: a new key would make every stored
/// password unreadable.
pub fn make_key_pair(private: &Path, public: &Path) -> Result<bool, SealError> {
    if private.exists() {
        if !public.exists() {
            let k = PrivateKey::load(private)?;
            write_new(public, 0o644, &(B64.encode(k.public().0) + "\n"))?;
            return Ok(true);
        }
        return Ok(false);
    }
    let rng = SystemRandom::new();
    let secret = loop {
        let mut b = zeroize::Zeroizing::new([0u8; 32]);
        rng.fill(&mut b[..]).map_err(|_| SealError::Random)?;
        // A value of zero or past the group order is refused: draw again.
        if let Ok(s) = p256::SecretKey::from_slice(&b[..]) {
            break s;
        }
    };
    let key = PrivateKey(secret);
    let text = zeroize::Zeroizing::new(B64.encode(key.0.to_bytes()) + "\n");
    write_new(private, 0o600, &text)?;
    let _ = std::fs::remove_file(public);
    write_new(public, 0o644, &(B64.encode(key.public().0) + "\n"))?;
    Ok(true)
}

fn write_new(path: &Path, mode: u32, text: &str) -> Result<(), SealError> {
    let err = |e| SealError::Io(path.display().to_string(), e);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(err)?;
    f.write_all(text.as_bytes()).map_err(err)?;
    f.sync_all().map_err(err)
}

fn read_b64(path: &Path) -> Result<zeroize::Zeroizing<Vec<u8>>, SealError> {
    let text = zeroize::Zeroizing::new(
        std::fs::read_to_string(path).map_err(|e| SealError::Io(path.display().to_string(), e))?,
    );
    B64.decode(text.trim())
        .map(zeroize::Zeroizing::new)
        .map_err(|_| SealError::BadKey(path.display().to_string()))
}

impl PrivateKey {
    /// Reads the private key file.
    pub fn load(path: &Path) -> Result<PrivateKey, SealError> {
        let b = read_b64(path)?;
        p256::SecretKey::from_slice(&b)
            .map(PrivateKey)
            .map_err(|_| SealError::BadKey(path.display().to_string()))
    }

    /// Its public half.
    pub fn public(&self) -> PublicKey {
        use p256::elliptic_curve::sec1::ToEncodedPoint;
        PublicKey(
            self.0
                .public_key()
                .to_encoded_point(false)
                .as_bytes()
                .to_vec(),
        )
    }

    /// Opens a password sealed for `owner`.
    pub fn open(&self, sealed: &str, owner: &str) -> Result<Secret, SealError> {
        let raw = sealed
            .strip_prefix(PREFIX)
            .and_then(|b| B64.decode(b).ok())
            .ok_or(SealError::Open)?;
        if raw.len() < PUBLIC_LEN + AES_256_GCM.tag_len() {
            return Err(SealError::Open);
        }
        let (eph, ct) = raw.split_at(PUBLIC_LEN);
        let eph_key = p256::PublicKey::from_sec1_bytes(eph).map_err(|_| SealError::Open)?;
        let shared = p256::ecdh::diffie_hellman(self.0.to_nonzero_scalar(), eph_key.as_affine());
        let key = derive(shared.raw_secret_bytes(), eph, &self.public().0)?;
        let mut buf = zeroize::Zeroizing::new(ct.to_vec());
        let plain = key
            .open_in_place(nonce(), Aad::from(aad(owner)), &mut buf)
            .map_err(|_| SealError::Open)?;
        let text = String::from_utf8(plain.to_vec()).map_err(|_| SealError::Open)?;
        Ok(Secret::from(text))
    }
}

impl PublicKey {
    /// Reads the public key file.
    pub fn load(path: &Path) -> Result<PublicKey, SealError> {
        let b = read_b64(path)?;
        if b.len() != PUBLIC_LEN || p256::PublicKey::from_sec1_bytes(&b).is_err() {
            return Err(SealError::BadKey(path.display().to_string()));
        }
        Ok(PublicKey(b.to_vec()))
    }

    /// Seals `password` for the account owner `owner`.
    pub fn seal(&self, password: &[u8], owner: &str) -> Result<String, SealError> {
        if password.is_empty() || password.len() > MAX_PASSWORD {
            return Err(SealError::Length);
        }
        let rng = SystemRandom::new();
        let eph = EphemeralPrivateKey::generate(&ECDH_P256, &rng).map_err(|_| SealError::Random)?;
        let eph_pub = eph
            .compute_public_key()
            .map_err(|_| SealError::Random)?
            .as_ref()
            .to_vec();
        let peer = UnparsedPublicKey::new(&ECDH_P256, &self.0);
        let key =
            agreement::agree_ephemeral(eph, &peer, |shared| derive(shared, &eph_pub, &self.0))
                .map_err(|_| SealError::BadKey("the public key".into()))??;
        let mut buf = password.to_vec();
        key.seal_in_place_append_tag(nonce(), Aad::from(aad(owner)), &mut buf)
            .map_err(|_| SealError::Length)?;
        let mut out = eph_pub;
        out.extend_from_slice(&buf);
        Ok(format!("{PREFIX}{}", B64.encode(out)))
    }
}

/// The AEAD key from the shared secret, bound to both public keys.
fn derive(shared: &[u8], eph_pub: &[u8], recipient: &[u8]) -> Result<LessSafeKey, SealError> {
    let mut salt = eph_pub.to_vec();
    salt.extend_from_slice(recipient);
    let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, &salt).extract(shared);
    let info = [INFO];
    let okm = prk
        .expand(&info, &AES_256_GCM)
        .map_err(|_| SealError::Open)?;
    let key: UnboundKey = okm.into();
    Ok(LessSafeKey::new(key))
}

/// Each key seals one message only (a fresh ephemeral key each time), so a
/// fixed nonce is safe.
fn nonce() -> Nonce {
    Nonce::assume_unique_for_key([0u8; aead::NONCE_LEN])
}

fn aad(owner: &str) -> Vec<u8> {
    owner.to_lowercase().into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_opens_only_with_the_key_and_for_the_owner() {
        let d = tempfile::tempdir().unwrap();
        let (k, p) = (d.path().join("k"), d.path().join("p"));
        assert!(make_key_pair(&k, &p).unwrap());
        assert!(!make_key_pair(&k, &p).unwrap(), "an existing key is kept");
        let private = PrivateKey::load(&k).unwrap();
        let public = PublicKey::load(&p).unwrap();
        let s = public
            .seal("密码 secret".as_bytes(), "Bob@example.test")
            .unwrap();
        assert!(!s.contains("secret"));
        assert_eq!(
            private.open(&s, "bob@example.test").unwrap().as_bytes(),
            "密码 secret".as_bytes()
        );
        assert!(matches!(
            private.open(&s, "eve@example.test"),
            Err(SealError::Open)
        ));
        // Two seals of one password differ.
        assert_ne!(s, public.seal(b"x", "bob@example.test").unwrap());
        // Another key cannot open it.
        let d2 = tempfile::tempdir().unwrap();
        make_key_pair(&d2.path().join("k"), &d2.path().join("p")).unwrap();
        let other = PrivateKey::load(&d2.path().join("k")).unwrap();
        assert!(other.open(&s, "bob@example.test").is_err());
        // One changed character breaks it.
        let mut bad = s.clone().into_bytes();
        let n = bad.len() - 5;
        bad[n] = if bad[n] == b'A' { b'B' } else { b'A' };
        assert!(private
            .open(&String::from_utf8(bad).unwrap(), "bob@example.test")
            .is_err());
        assert!(private.open("plain", "bob@example.test").is_err());
        assert!(matches!(public.seal(b"", "x"), Err(SealError::Length)));
    }
}
