//! The proxy's certificate choice during a TLS handshake: by the client's SNI from the node's
//! current snapshot, else the listener's default certificate.
//!
//! The resolver holds the snapshot cell, not a snapshot, so a certificate written through the
//! Admin API is served from the next handshake after the sync loop's swap, without touching
//! the listener. A handshake costs one arc-swap load and up to four hash lookups
//! ([`Certificates::find`](crate::snapshot::certificates::Certificates::find)).

use std::sync::Arc;

use arc_swap::ArcSwap;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use crate::snapshot::Snapshot;
use crate::tls::keys::CertKeys;

/// Picks the certificate for each handshake on a proxy TLS listener.
pub struct SniResolver {
    snapshot: Arc<ArcSwap<Snapshot>>,
    default: CertKeys,
}

impl std::fmt::Debug for SniResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SniResolver")
            .field("default", &self.default)
            .finish_non_exhaustive()
    }
}

impl SniResolver {
    /// Resolves from whatever snapshot `snapshot` holds at handshake time, falling back to
    /// `default` (the node's `ssl_cert`s or its generated certificate).
    pub fn new(snapshot: Arc<ArcSwap<Snapshot>>, default: CertKeys) -> SniResolver {
        SniResolver { snapshot, default }
    }

    /// The certificate for a client that asked for `sni` and can verify `offered` schemes.
    pub fn choose(
        &self,
        sni: Option<&str>,
        offered: &[rustls::SignatureScheme],
    ) -> Arc<CertifiedKey> {
        if let Some(sni) = sni {
            // rustls hands the name over lower-cased; only another caller could differ.
            let lowered;
            let name = if sni.bytes().any(|b| b.is_ascii_uppercase()) {
                lowered = sni.to_ascii_lowercase();
                &lowered
            } else {
                sni
            };
            if let Some(keys) = self.snapshot.load().certificates.find(name) {
                return keys.choose(offered).clone();
            }
        }
        self.default.choose(offered).clone()
    }
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.choose(hello.server_name(), hello.signature_schemes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::certificates::Certificates;
    use serde_json::json;

    fn keys(name: &str) -> (CertKeys, serde_json::Map<String, serde_json::Value>) {
        let key = rcgen::KeyPair::generate().expect("key");
        let cert = rcgen::CertificateParams::new(vec![name.to_string()])
            .expect("params")
            .self_signed(&key)
            .expect("sign");
        let (cert, key) = (cert.pem(), key.serialize_pem());
        let parsed = CertKeys::from_pem([(cert.as_str(), key.as_str())])
            .expect("parses")
            .expect("one");
        let doc = json!({"id": name, "cert": cert, "key": key});
        (parsed, doc.as_object().cloned().unwrap_or_default())
    }

    #[test]
    fn resolves_from_the_current_snapshot_else_the_default() {
        let (default, _) = keys("default.test");
        let default_key = default.main().clone();
        let cell = Arc::new(ArcSwap::from_pointee(Snapshot::empty()));
        let resolver = SniResolver::new(cell.clone(), default);
        let schemes = [rustls::SignatureScheme::ECDSA_NISTP256_SHA256];
        let is_default = |sni| Arc::ptr_eq(&resolver.choose(sni, &schemes), &default_key);
        assert!(is_default(Some("a.test")));

        let (_, doc) = keys("a");
        let mut builder = Certificates::builder(None);
        builder.certificates(&[doc]);
        let sni = json!({"name": "a.test", "certificate": {"id": "a"}});
        builder.snis(&[sni.as_object().cloned().unwrap_or_default()]);
        let mut next = Snapshot::empty();
        next.certificates = Arc::new(builder.finish());
        cell.store(Arc::new(next));

        assert!(!is_default(Some("a.test")), "swapped in, no new resolver");
        assert!(!is_default(Some("A.Test")));
        assert!(is_default(Some("b.test")));
        assert!(is_default(None));
    }
}
