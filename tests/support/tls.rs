//! TLS helpers for tests: a client verifier that trusts any certificate and records the one the
//! server presented, optionally offering only some signature schemes.

use std::sync::{Arc, Mutex};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

/// Trusts any certificate and records the one presented (DER).
#[derive(Debug)]
pub struct Capture {
    schemes: Vec<SignatureScheme>,
    provider: Arc<CryptoProvider>,
    seen: Mutex<Option<Vec<u8>>>,
}

impl Capture {
    /// A verifier offering `schemes`, or every scheme `provider` supports for `None`.
    pub fn new(provider: Arc<CryptoProvider>, schemes: Option<&[SignatureScheme]>) -> Capture {
        let schemes = schemes.map_or_else(
            || {
                provider
                    .signature_verification_algorithms
                    .supported_schemes()
            },
            <[_]>::to_vec,
        );
        Capture {
            schemes,
            provider,
            seen: Mutex::new(None),
        }
    }

    /// The certificate the server presented, once the handshake got that far.
    pub fn seen(&self) -> Option<Vec<u8>> {
        self.seen.lock().ok().and_then(|s| s.clone())
    }
}

impl ServerCertVerifier for Capture {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if let Ok(mut seen) = self.seen.lock() {
            *seen = Some(end_entity.to_vec());
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.schemes.clone()
    }
}
