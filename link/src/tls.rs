//! TLS 1.3 settings for links: self-signed certificates, ring provider.
//!
//! Certificates carry no trust here: a relay makes a fresh self-signed one at start, and an
//! initiator accepts any certificate (still checking the TLS handshake signature). Who the
//! peer is gets settled afterwards by the LINK_AUTH proof over the TLS exporter
//! (see `onionlab_proto::keys`), which a man in the middle cannot relay.

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, ServerConfig, SignatureScheme};
use std::sync::Arc;

/// TLS errors, re-exported so callers need not name rustls.
pub use rustls::Error as TlsError;

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A server configuration with a fresh self-signed certificate.
pub fn server_config() -> Result<Arc<ServerConfig>, TlsError> {
    let certified = rcgen::generate_simple_self_signed(vec!["relay.onionlab.invalid".to_owned()])
        .map_err(|e| TlsError::General(format!("certificate generation failed: {e}")))?;
    let cert: CertificateDer<'static> = certified.cert.der().clone();
    let key: PrivateKeyDer<'static> = PrivatePkcs8KeyDer::from(certified.signing_key.serialize_der()).into();
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)?;
    config.send_tls13_tickets = 0;
    Ok(Arc::new(config))
}

/// A client configuration that accepts any certificate (identity comes from LINK_AUTH).
pub fn client_config() -> Result<Arc<ClientConfig>, TlsError> {
    let p = provider();
    let verifier = Arc::new(AnyCertificate {
        algs: p.signature_verification_algorithms,
    });
    let mut config = ClientConfig::builder_with_provider(p)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    config.resumption = rustls::client::Resumption::disabled();
    Ok(Arc::new(config))
}

/// The server name sent in SNI; the same for every relay so it reveals nothing.
pub fn server_name() -> ServerName<'static> {
    ServerName::DnsName(
        rustls::pki_types::DnsName::try_from("relay.onionlab.invalid").unwrap_or_else(|_| unreachable!()),
    )
}

#[derive(Debug)]
struct AnyCertificate {
    algs: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, TlsError> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        verify_tls12_signature(message, cert, dss, &self.algs)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        verify_tls13_signature(message, cert, dss, &self.algs)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algs.supported_schemes()
    }
}
