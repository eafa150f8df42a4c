//! TLS client configurations for STARTTLS (RFC 3207): one that checks the
//! server's certificate against the configured authorities (level `verify`)
//! and one that encrypts without checking (levels `may` and `encrypt`, as
//! opportunistic TLS does everywhere: an unauthenticated channel is still
//! better than plain text, RFC 7435).

use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

/// The client configurations kmp-remote uses.
#[derive(Clone)]
pub struct TlsClients {
    /// Encrypts, checks nothing about the certificate but the handshake's signatures.
    pub unchecked: Arc<ClientConfig>,
    /// Checks the chain and the name, or why it could not be built.
    pub verified: Result<Arc<ClientConfig>, String>,
}

impl TlsClients {
    /// Builds both; the verifying one from the PEM authorities in `ca_file`.
    pub fn new(ca_file: &Path) -> TlsClients {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let unchecked = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map(|b| {
                b.dangerous()
                    .with_custom_certificate_verifier(Arc::new(NoCheck(provider.clone())))
                    .with_no_client_auth()
            });
        // Invariant: the ring provider supports the default protocol versions.
        let unchecked = Arc::new(unchecked.expect("ring supports TLS 1.2 and 1.3"));
        let verified = roots(ca_file).and_then(|roots| {
            ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .map(|b| b.with_root_certificates(roots).with_no_client_auth())
                .map(Arc::new)
                .map_err(|e| e.to_string())
        });
        TlsClients {
            unchecked,
            verified,
        }
    }
}

/// The name to check a certificate against: the MX host's name, or the
/// address when the route names one.
pub fn server_name(name: &str) -> Option<ServerName<'static>> {
    ServerName::try_from(name.to_string()).ok()
}

fn roots(ca_file: &Path) -> Result<RootCertStore, String> {
    use rustls_pki_types::pem::PemObject;
    if ca_file.as_os_str().is_empty() {
        return Err("remote.tls_ca_file is empty".into());
    }
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(ca_file)
        .and_then(|it| it.collect::<Result<_, _>>())
        .map_err(|e| format!("{}: {e}", ca_file.display()))?;
    let mut store = RootCertStore::empty();
    let (added, _ignored) = store.add_parsable_certificates(certs);
    if added == 0 {
        return Err(format!("{}: no usable certificate", ca_file.display()));
    }
    Ok(store)
}

/// Accepts any certificate; still checks the handshake signatures.
#[derive(Debug)]
struct NoCheck(Arc<CryptoProvider>);

impl ServerCertVerifier for NoCheck {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
