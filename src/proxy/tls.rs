//! The proxy's certificate choice during a TLS handshake: by the client's SNI from the node's
//! current snapshot, else the listener's default certificate; the global plugins'
//! `certificate` phase runs first.
//!
//! The resolver holds the snapshot cell, not a snapshot, so a certificate written through the
//! Admin API is served from the next handshake after the sync loop's swap, without touching
//! the listener. A handshake costs one arc-swap load and up to four hash lookups
//! ([`Certificates::find`](crate::snapshot::certificates::Certificates::find)).

use std::sync::Arc;

use arc_swap::ArcSwap;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use super::phases;
use crate::plugins::Handshake;
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
        // The plugins' certificate phase (global instances); a failure leaves the handshake
        // without a certificate, which rustls aborts.
        let handshake = Handshake {
            server_name: hello.server_name(),
        };
        if !phases::certificate(self.snapshot.load().plugins.global(), &handshake) {
            return None;
        }
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

    /// A global plugin whose certificate phase records the names it saw and refuses one.
    struct Gate(std::sync::Mutex<Vec<Option<String>>>);

    impl crate::plugins::Plugin for Arc<Gate> {
        fn certificate(
            &self,
            handshake: &Handshake<'_>,
        ) -> Result<(), crate::plugins::PluginError> {
            let name = handshake.server_name.map(str::to_owned);
            self.0
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(name.clone());
            match name.as_deref() {
                Some("refused.test") => Err(crate::plugins::PluginError::new("refused")),
                _ => Ok(()),
            }
        }
        fn handles_certificate(&self) -> bool {
            true
        }
    }

    struct GateKind(Arc<Gate>);

    impl crate::plugins::Kind for GateKind {
        fn name(&self) -> &'static str {
            "gate"
        }
        fn priority(&self) -> i32 {
            1
        }
        fn schema(&self) -> crate::store::schema::PluginSchema {
            crate::store::schema::PluginSchema {
                name: "gate".into(),
                config: crate::store::schema::Record::new(vec![]),
                protocols: None,
                no_consumer: false,
                no_route: false,
                no_service: false,
            }
        }
        fn build(
            &self,
            _: &crate::store::schema::Doc,
            _: &crate::plugins::BuildEnv,
        ) -> Result<Arc<dyn crate::plugins::Plugin>, String> {
            Ok(Arc::new(self.0.clone()))
        }
    }

    /// A full handshake in memory between a client trusting `roots` and a server resolving
    /// with `resolver`, the client asking for `name`.
    fn handshake(
        resolver: Arc<SniResolver>,
        roots: &rustls::RootCertStore,
        name: &str,
    ) -> Result<(), rustls::Error> {
        let server = crate::tls::resolver_config(resolver, false, "proxy_listen").expect("config");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let client = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_root_certificates(roots.clone())
            .with_no_client_auth();
        let server_name = rustls::pki_types::ServerName::try_from(name.to_owned()).expect("name");
        let mut client = rustls::ClientConnection::new(Arc::new(client), server_name)?;
        let mut server = rustls::ServerConnection::new(server)?;
        for _ in 0..10 {
            let mut wire = Vec::new();
            client.write_tls(&mut wire).expect("write");
            server.read_tls(&mut wire.as_slice()).expect("read");
            let processed = server.process_new_packets();
            wire.clear();
            server.write_tls(&mut wire).expect("write");
            client.read_tls(&mut wire.as_slice()).expect("read");
            processed?;
            client.process_new_packets()?;
            if !client.is_handshaking() && !server.is_handshaking() {
                return Ok(());
            }
        }
        Err(rustls::Error::General("handshake did not finish".into()))
    }

    #[test]
    fn global_plugins_certificate_phase_runs_first_and_can_abort_the_handshake() {
        let key = rcgen::KeyPair::generate().expect("key");
        let names = vec!["allowed.test".to_owned(), "refused.test".to_owned()];
        let cert = rcgen::CertificateParams::new(names)
            .expect("params")
            .self_signed(&key)
            .expect("sign");
        let mut roots = rustls::RootCertStore::empty();
        roots.add(cert.der().clone()).expect("root");
        let (cert, key) = (cert.pem(), key.serialize_pem());
        let default = CertKeys::from_pem([(cert.as_str(), key.as_str())])
            .expect("parses")
            .expect("one");
        let cell = Arc::new(ArcSwap::from_pointee(Snapshot::empty()));
        let resolver = Arc::new(SniResolver::new(cell.clone(), default));
        // No plugin yet: both names are served.
        assert!(handshake(resolver.clone(), &roots, "refused.test").is_ok());

        let gate = Arc::new(Gate(std::sync::Mutex::new(Vec::new())));
        let registry = crate::plugins::Registry::new(
            &["gate".to_owned()],
            vec![Arc::new(GateKind(gate.clone())) as Arc<dyn crate::plugins::Kind>],
            crate::plugins::BuildEnv::default(),
        )
        .expect("registry");
        let router = crate::router::Router::build(&[], &[]).expect("router");
        let global = json!({"id": "p-gate", "name": "gate", "config": {}, "protocols": ["https"]});
        let docs = [global.as_object().cloned().unwrap_or_default()];
        let mut next = Snapshot::empty();
        next.plugins = crate::plugins::Plugins::build(&docs, &router, &registry, None);
        cell.store(Arc::new(next));

        // The global plugin sees each handshake's name first; the one it refuses gets no
        // certificate (the client sees the handshake fail), the other is served.
        assert!(handshake(resolver.clone(), &roots, "allowed.test").is_ok());
        assert!(handshake(resolver.clone(), &roots, "refused.test").is_err());
        let seen = gate.0.lock().unwrap_or_else(|p| p.into_inner()).clone();
        assert_eq!(
            seen,
            [
                Some("allowed.test".to_owned()),
                Some("refused.test".to_owned())
            ]
        );
    }
}
