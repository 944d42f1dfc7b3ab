//! TLS for the node's own listeners: default certificates and rustls server configurations.
//!
//! An `ssl` listener with no certificate configured uses a self-signed one generated into
//! `<prefix>/ssl/` on first start and reused afterwards, as Kong does. Per-SNI certificates from
//! the datastore are chosen by the proxy's resolver ([`crate::proxy::tls`]), which falls back to
//! the default certificate loaded here; [`keys`] turns PEM into what rustls serves.

pub mod keys;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::server::ResolvesServerCert;

/// TLS setup problems.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A certificate or key could not be read.
    #[error("could not read {what} '{path}': {reason}")]
    Read {
        /// `certificate` or `key`.
        what: &'static str,
        /// The configured value (path).
        path: String,
        /// Why.
        reason: String,
    },
    /// The material does not form a usable certificate.
    #[error("invalid certificate for {listener} listeners: {reason}")]
    Invalid {
        /// Which listeners.
        listener: &'static str,
        /// Why.
        reason: String,
    },
    /// The self-signed certificate could not be generated or written.
    #[error("could not generate default certificate {path}: {reason}")]
    Generate {
        /// Target file.
        path: String,
        /// Why.
        reason: String,
    },
}

/// A certificate chain and its key, as PEM text.
#[derive(Debug, Clone)]
pub struct PemPair {
    /// Certificate chain.
    pub cert: String,
    /// Private key.
    pub key: String,
}

/// The default self-signed certificate for `kind` (`""` for the proxy, `admin-`, `status-`),
/// generating it on first use.
pub fn default_cert(ssl_dir: &Path, kind: &str) -> Result<PemPair, TlsError> {
    let cert_path = ssl_dir.join(format!("{kind}kong-default-ecdsa.crt"));
    let key_path = ssl_dir.join(format!("{kind}kong-default-ecdsa.key"));
    if cert_path.is_file() && key_path.is_file() {
        return Ok(PemPair {
            cert: read(&cert_path, "certificate")?,
            key: read(&key_path, "key")?,
        });
    }
    let generate_err = |reason: String| TlsError::Generate {
        path: cert_path.display().to_string(),
        reason,
    };
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_string()])
        .map_err(|e| generate_err(e.to_string()))?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "localhost");
    params
        .distinguished_name
        .push(rcgen::DnType::OrganizationName, "Kong");
    params.not_before = time::OffsetDateTime::now_utc() - time::Duration::days(1);
    params.not_after = time::OffsetDateTime::now_utc() + time::Duration::days(3650);
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
        .map_err(|e| generate_err(e.to_string()))?;
    let cert = params
        .self_signed(&key)
        .map_err(|e| generate_err(e.to_string()))?;
    let pair = PemPair {
        cert: cert.pem(),
        key: key.serialize_pem(),
    };
    let prefix = crate::prefix::Prefix::new(ssl_dir);
    prefix
        .write_private(&key_path, pair.key.as_bytes())
        .map_err(|e| generate_err(e.to_string()))?;
    std::fs::write(&cert_path, pair.cert.as_bytes()).map_err(|e| generate_err(e.to_string()))?;
    Ok(pair)
}

/// Loads configured certificate/key values: each a file path or inline PEM text.
pub fn load_configured(certs: &[String], keys: &[String]) -> Result<Vec<PemPair>, TlsError> {
    certs
        .iter()
        .zip(keys)
        .map(|(c, k)| {
            Ok(PemPair {
                cert: pem_or_file(c, "certificate")?,
                key: pem_or_file(k, "key")?,
            })
        })
        .collect()
}

fn pem_or_file(value: &str, what: &'static str) -> Result<String, TlsError> {
    if value.trim_start().starts_with("-----BEGIN") {
        Ok(value.to_string())
    } else {
        read(&PathBuf::from(value), what)
    }
}

fn read(path: &Path, what: &'static str) -> Result<String, TlsError> {
    std::fs::read_to_string(path).map_err(|e| TlsError::Read {
        what,
        path: path.display().to_string(),
        reason: e.to_string(),
    })
}

/// Builds a rustls server configuration serving one fixed certificate; `http2` offers `h2`
/// through ALPN.
pub fn server_config(
    pair: &PemPair,
    http2: bool,
    listener: &'static str,
) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let key = keys::certified_key(&pair.cert, &pair.key).map_err(|e| TlsError::Invalid {
        listener,
        reason: e.to_string(),
    })?;
    resolver_config(Arc::new(FixedCert(Arc::new(key))), http2, listener)
}

/// Serves the same certificate to every client.
#[derive(Debug)]
struct FixedCert(Arc<rustls::sign::CertifiedKey>);

impl ResolvesServerCert for FixedCert {
    fn resolve(
        &self,
        _: rustls::server::ClientHello<'_>,
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        Some(self.0.clone())
    }
}

/// Builds a rustls server configuration whose certificate `resolver` picks per handshake;
/// `http2` offers `h2` through ALPN.
pub fn resolver_config(
    resolver: Arc<dyn ResolvesServerCert>,
    http2: bool,
    listener: &'static str,
) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Invalid {
            listener,
            reason: e.to_string(),
        })?
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    config.alpn_protocols = if http2 {
        vec![b"h2".to_vec(), b"http/1.1".to_vec()]
    } else {
        vec![b"http/1.1".to_vec()]
    };
    Ok(Arc::new(config))
}

/// Whether the PEM private key `key` belongs to the first certificate of the PEM chain `cert`.
pub fn key_matches_certificate(cert: &str, key: &str) -> bool {
    keys::certified_key(cert, key).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_once_and_reuses() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = default_cert(dir.path(), "admin-").expect("generate");
        let b = default_cert(dir.path(), "admin-").expect("reuse");
        assert_eq!(a.cert, b.cert);
        server_config(&a, true, "admin").expect("usable");
    }

    #[test]
    fn garbage_is_rejected_with_reason() {
        let pair = PemPair {
            cert: "not a cert".into(),
            key: "nope".into(),
        };
        let err = server_config(&pair, false, "proxy").expect_err("invalid");
        assert!(err
            .to_string()
            .contains("invalid certificate for proxy listeners"));
    }
}
