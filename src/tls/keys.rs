//! A certificate as the proxy serves it: one chain and key, or several for different key types
//! (a `certificates` entity's `cert` plus `cert_alt`, or a list of `ssl_cert`s), of which each
//! handshake gets the one the client can verify.
//!
//! Everything that can be computed once is computed when the certificate is loaded (PEM parsing,
//! the signing key, which signature schemes it can produce), so choosing during a handshake is
//! a scan of two short lists, without allocation.

use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;
use rustls::SignatureScheme;

/// Why PEM material does not make a usable certificate.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The certificate PEM does not parse.
    #[error("bad certificate PEM: {0}")]
    CertificatePem(std::io::Error),
    /// No certificate in the PEM text.
    #[error("no certificate found in PEM")]
    NoCertificate,
    /// The key PEM does not parse.
    #[error("bad key PEM: {0}")]
    KeyPem(std::io::Error),
    /// No private key in the PEM text.
    #[error("no private key found in PEM")]
    NoKey,
    /// The key's type is not supported.
    #[error("unsupported private key: {0}")]
    UnsupportedKey(rustls::Error),
    /// The key does not belong to the certificate.
    #[error("the private key does not match the certificate")]
    Mismatch,
}

/// Every signature scheme TLS 1.2 and 1.3 define for certificates; a key is probed against
/// each once, at load time.
const PROBED: &[SignatureScheme] = &[
    SignatureScheme::ECDSA_NISTP256_SHA256,
    SignatureScheme::ECDSA_NISTP384_SHA384,
    SignatureScheme::ECDSA_NISTP521_SHA512,
    SignatureScheme::ED25519,
    SignatureScheme::ED448,
    SignatureScheme::RSA_PSS_SHA256,
    SignatureScheme::RSA_PSS_SHA384,
    SignatureScheme::RSA_PSS_SHA512,
    SignatureScheme::RSA_PKCS1_SHA256,
    SignatureScheme::RSA_PKCS1_SHA384,
    SignatureScheme::RSA_PKCS1_SHA512,
    SignatureScheme::RSA_PKCS1_SHA1,
    SignatureScheme::ECDSA_SHA1_Legacy,
];

/// Parses a PEM chain and its PEM private key into a rustls certified key, checking that the
/// key belongs to the chain's first certificate.
pub fn certified_key(cert: &str, key: &str) -> Result<CertifiedKey, KeyError> {
    let certs: Vec<CertificateDer<'static>> = rustls_pemfile::certs(&mut cert.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(KeyError::CertificatePem)?;
    if certs.is_empty() {
        return Err(KeyError::NoCertificate);
    }
    let key: PrivateKeyDer<'static> = rustls_pemfile::private_key(&mut key.as_bytes())
        .map_err(KeyError::KeyPem)?
        .ok_or(KeyError::NoKey)?;
    let signing =
        rustls::crypto::ring::sign::any_supported_type(&key).map_err(KeyError::UnsupportedKey)?;
    let certified = CertifiedKey::new(certs, signing);
    certified.keys_match().map_err(|_| KeyError::Mismatch)?;
    Ok(certified)
}

/// One certified key and the signature schemes it can sign with.
#[derive(Debug)]
struct Served {
    key: Arc<CertifiedKey>,
    schemes: Box<[SignatureScheme]>,
}

/// A certificate with its alternates (e.g. RSA and ECDSA), ready to serve.
#[derive(Debug)]
pub struct CertKeys {
    /// Never empty; the first is served when the client can verify none.
    keys: Box<[Served]>,
}

impl CertKeys {
    /// Wraps `first` and its `alternates`, probing which signature schemes each can produce.
    pub fn new(first: CertifiedKey, alternates: impl IntoIterator<Item = CertifiedKey>) -> Self {
        let keys = std::iter::once(first)
            .chain(alternates)
            .map(|key| Served {
                schemes: PROBED
                    .iter()
                    .copied()
                    .filter(|s| key.key.choose_scheme(&[*s]).is_some())
                    .collect(),
                key: Arc::new(key),
            })
            .collect();
        CertKeys { keys }
    }

    /// Parses PEM `(cert, key)` pairs; the first is the main certificate, the others its
    /// alternates. `None` when `pairs` is empty.
    pub fn from_pem<'a>(
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Option<Self>, KeyError> {
        let mut keys = pairs
            .into_iter()
            .map(|(cert, key)| certified_key(cert, key))
            .collect::<Result<Vec<_>, _>>()?
            .into_iter();
        Ok(keys.next().map(|first| CertKeys::new(first, keys)))
    }

    /// The key to serve a client offering `offered` (in its order of preference): the first
    /// offered scheme one of the keys can sign with decides, ties going to the main
    /// certificate; when none fits, the main certificate (the handshake will then fail as it
    /// would with a single certificate).
    pub fn choose(&self, offered: &[SignatureScheme]) -> &Arc<CertifiedKey> {
        let main = &self.keys[0].key;
        if self.keys.len() == 1 {
            return main;
        }
        offered
            .iter()
            .find_map(|s| self.keys.iter().find(|k| k.schemes.contains(s)))
            .map_or(main, |k| &k.key)
    }

    /// The main certificate's key.
    pub fn main(&self) -> &Arc<CertifiedKey> {
        &self.keys[0].key
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn generate(alg: &'static rcgen::SignatureAlgorithm) -> (String, String) {
        let key = rcgen::KeyPair::generate_for(alg).expect("key");
        let cert = rcgen::CertificateParams::new(vec!["a.test".to_string()])
            .expect("params")
            .self_signed(&key)
            .expect("sign");
        (cert.pem(), key.serialize_pem())
    }

    #[test]
    fn the_client_preference_picks_among_alternates() {
        let (ec_cert, ec_key) = generate(&rcgen::PKCS_ECDSA_P256_SHA256);
        let (ed_cert, ed_key) = generate(&rcgen::PKCS_ED25519);
        let keys = CertKeys::from_pem([(ec_cert.as_str(), ec_key.as_str()), (&ed_cert, &ed_key)])
            .expect("parses")
            .expect("one certificate");
        let ecdsa = keys.main().clone();
        let served = |offered: &[SignatureScheme]| keys.choose(offered).clone();
        assert!(Arc::ptr_eq(
            &served(&[SignatureScheme::ECDSA_NISTP256_SHA256]),
            &ecdsa
        ));
        assert!(!Arc::ptr_eq(&served(&[SignatureScheme::ED25519]), &ecdsa));
        assert!(!Arc::ptr_eq(
            &served(&[
                SignatureScheme::ED25519,
                SignatureScheme::ECDSA_NISTP256_SHA256
            ]),
            &ecdsa
        ));
        assert!(Arc::ptr_eq(
            &served(&[
                SignatureScheme::RSA_PSS_SHA256,
                SignatureScheme::ECDSA_NISTP256_SHA256,
                SignatureScheme::ED25519
            ]),
            &ecdsa
        ));
        // Nothing fits: the main certificate.
        assert!(Arc::ptr_eq(
            &served(&[SignatureScheme::RSA_PSS_SHA256]),
            &ecdsa
        ));
        assert!(Arc::ptr_eq(&served(&[]), &ecdsa));
    }

    #[test]
    fn a_p256_key_does_not_claim_p384() {
        let (cert, key) = generate(&rcgen::PKCS_ECDSA_P256_SHA256);
        let keys = CertKeys::new(certified_key(&cert, &key).expect("parses"), []);
        assert_eq!(
            &*keys.keys[0].schemes,
            &[SignatureScheme::ECDSA_NISTP256_SHA256]
        );
    }

    #[test]
    fn mismatched_and_broken_material_is_refused() {
        let (cert, _) = generate(&rcgen::PKCS_ECDSA_P256_SHA256);
        let (_, other_key) = generate(&rcgen::PKCS_ECDSA_P256_SHA256);
        assert!(matches!(
            certified_key(&cert, &other_key),
            Err(KeyError::Mismatch)
        ));
        assert!(matches!(
            certified_key("nope", &other_key),
            Err(KeyError::NoCertificate)
        ));
        assert!(matches!(certified_key(&cert, "nope"), Err(KeyError::NoKey)));
        assert!(CertKeys::from_pem([]).expect("nothing to parse").is_none());
    }
}
