//! Connections to upstream services: pooled keep-alive clients over HTTP/1.1 (and HTTP/2 where
//! a service speaks gRPC), with plain TCP or TLS.
//!
//! One pooled client exists per distinct connect timeout, created when the configuration
//! snapshot is built, so the request path never locks or builds anything. Upstream TLS follows
//! Kong's default (`proxy_ssl_verify off`): the upstream's certificate is not verified unless a
//! service asks for it, which arrives with the upstream TLS work.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

/// Request bodies sent upstream.
pub type UpstreamBody = BoxBody<Bytes, hyper::Error>;

/// A pooled client.
pub type UpstreamClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, UpstreamBody>;

/// Keep-alive settings (`upstream_keepalive_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Keepalive {
    /// Idle connections kept per host (0 disables keep-alive).
    pub pool_size: usize,
    /// Seconds an idle connection is kept.
    pub idle_timeout: u64,
}

/// The clients of one snapshot, by connect timeout in milliseconds.
#[derive(Clone)]
pub struct Upstreams {
    clients: HashMap<u64, UpstreamClient>,
    keepalive: Keepalive,
}

impl std::fmt::Debug for Upstreams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upstreams")
            .field("clients", &self.clients.len())
            .finish()
    }
}

impl Upstreams {
    /// Clients for every connect timeout in `timeouts_ms`.
    pub fn new(timeouts_ms: impl IntoIterator<Item = u64>, keepalive: Keepalive) -> Upstreams {
        let tls = tls_config();
        let clients = timeouts_ms
            .into_iter()
            .map(|t| (t, client(t, keepalive, tls.clone())))
            .collect();
        Upstreams { clients, keepalive }
    }

    /// The client for `connect_timeout_ms`, or a fresh one when the snapshot had none (a
    /// service added since; the next snapshot includes it).
    pub fn client(&self, connect_timeout_ms: u64) -> UpstreamClient {
        match self.clients.get(&connect_timeout_ms) {
            Some(c) => c.clone(),
            None => client(connect_timeout_ms, self.keepalive, tls_config()),
        }
    }

    /// Keeps the clients (and their pooled connections) of `previous` that are still wanted.
    pub fn reuse(mut self, previous: &Upstreams) -> Upstreams {
        if previous.keepalive == self.keepalive {
            for (t, c) in &previous.clients {
                if self.clients.contains_key(t) {
                    self.clients.insert(*t, c.clone());
                }
            }
        }
        self
    }
}

fn client(connect_ms: u64, keepalive: Keepalive, tls: Arc<rustls::ClientConfig>) -> UpstreamClient {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(Duration::from_millis(connect_ms.max(1))));
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config((*tls).clone())
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(keepalive.pool_size)
        .pool_idle_timeout(Duration::from_secs(keepalive.idle_timeout.max(1)))
        .build(https)
}

fn tls_config() -> Arc<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map(|b| {
            b.dangerous()
                .with_custom_certificate_verifier(Arc::new(NoVerify(provider)))
                .with_no_client_auth()
        });
    match config {
        Ok(c) => Arc::new(c),
        // The ring provider supports the default versions; this cannot fail in practice.
        Err(_) => Arc::new(
            rustls::ClientConfig::builder()
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(NoVerify(Arc::new(
                    rustls::crypto::ring::default_provider(),
                ))))
                .with_no_client_auth(),
        ),
    }
}

/// Kong's default for upstream TLS: encrypt, but do not verify the upstream's certificate.
#[derive(Debug)]
struct NoVerify(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
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
            &self.0.signature_verification_algorithms,
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
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
