//! How the proxy reaches upstream services: TLS profiles built with each configuration snapshot,
//! and dialing new connections (name resolution, TCP, TLS, and for hyper's clients the HTTP/1.1
//! or HTTP/2 handshake).
//!
//! Upstream TLS follows Kong: the certificate is not verified unless the service sets
//! `tls_verify`; then it must chain, within `tls_verify_depth` intermediates (default 1, nginx's
//! `proxy_ssl_verify_depth`), to the service's `ca_certificates`, or to
//! `lua_ssl_trusted_certificate` when the service names none. A `client_certificate` is
//! presented for mutual TLS. The server name sent is the `Host` the request carries upstream.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use super::error::ProxyError;
use super::h1::H1;
use super::pool::{Conn, Peer, PeerRef, Sender};
use crate::router::ServiceInfo;
use crate::store::schema::Doc;
use crate::stream::io::Either;

/// Request bodies sent upstream.
pub type UpstreamBody = BoxBody<Bytes, hyper::Error>;

/// Keep-alive settings (`upstream_keepalive_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Keepalive {
    /// Idle connections kept per peer (0 disables keep-alive).
    pub pool_size: usize,
    /// Requests one connection may carry before it is closed (0: no limit).
    pub max_requests: u32,
    /// Seconds an idle connection is kept.
    pub idle_timeout: u64,
}

/// A TLS client configuration for upstream connections, one per distinct combination of
/// verification settings, trusted CAs and client certificate.
#[derive(Debug)]
pub struct TlsProfile {
    /// Identity of the settings (part of the pool key, so connections made under other
    /// settings are never reused).
    pub id: u64,
    h1: Arc<rustls::ClientConfig>,
    h2: Arc<rustls::ClientConfig>,
    raw: Arc<rustls::ClientConfig>,
}

impl TlsProfile {
    /// The configuration offering `h2` (gRPC) or `http/1.1` through ALPN.
    pub fn config(&self, h2: bool) -> &Arc<rustls::ClientConfig> {
        if h2 {
            &self.h2
        } else {
            &self.h1
        }
    }

    /// The configuration offering no ALPN protocol, for byte streams (`tls` stream services).
    pub fn raw_config(&self) -> &Arc<rustls::ClientConfig> {
        &self.raw
    }
}

/// Upstream settings of one snapshot: keep-alive and each service's TLS profile.
#[derive(Debug, Clone)]
pub struct Upstreams {
    /// Keep-alive settings.
    pub keepalive: Keepalive,
    default_tls: Arc<TlsProfile>,
    /// Services whose TLS differs from the default, by id.
    by_service: HashMap<Arc<str>, Arc<TlsProfile>>,
}

/// Why a service's upstream TLS could not be set up (the service then answers 502).
#[derive(Debug, thiserror::Error)]
pub enum UpstreamTlsError {
    /// A referenced entity is missing or unusable.
    #[error("service {service}: {reason}")]
    Service {
        /// The service id.
        service: String,
        /// Why.
        reason: String,
    },
}

/// What the TLS profiles are built from.
pub struct TlsSources<'a> {
    /// `certificates` entities by id.
    pub certificates: &'a HashMap<String, Doc>,
    /// `ca_certificates` entities by id.
    pub ca_certificates: &'a HashMap<String, Doc>,
    /// `lua_ssl_trusted_certificate` (`system` and/or PEM file paths).
    pub trusted: &'a [String],
}

impl Upstreams {
    /// Settings with only the default TLS profile (no verification).
    pub fn new(keepalive: Keepalive) -> Upstreams {
        Upstreams {
            keepalive,
            default_tls: Arc::new(profile(0, None, None)),
            by_service: HashMap::new(),
        }
    }

    /// Builds the TLS profile of every service that verifies its upstream or presents a client
    /// certificate. A service whose profile cannot be built is left out and reported: its
    /// requests are refused (502) rather than sent without the protection it asked for.
    pub fn build(
        keepalive: Keepalive,
        services: &[&ServiceInfo],
        sources: &TlsSources<'_>,
    ) -> (Upstreams, Vec<UpstreamTlsError>) {
        let mut upstreams = Upstreams::new(keepalive);
        let mut errors = Vec::new();
        let mut profiles: HashMap<u64, Arc<TlsProfile>> = HashMap::new();
        let mut system: Option<Arc<Roots>> = None;
        for service in services {
            if !matches!(
                service.protocol,
                crate::router::Protocol::Https
                    | crate::router::Protocol::Grpcs
                    | crate::router::Protocol::Wss
                    | crate::router::Protocol::Tls
            ) {
                continue;
            }
            let verify = service.tls_verify.unwrap_or(false);
            if !verify && service.client_certificate.is_none() {
                continue;
            }
            match service_profile(service, verify, sources, &mut system) {
                Ok((id, build)) => {
                    let profile = profiles
                        .entry(id)
                        .or_insert_with(|| Arc::new(build(id)))
                        .clone();
                    upstreams
                        .by_service
                        .insert(Arc::from(service.id.as_str()), profile);
                }
                Err(reason) => {
                    upstreams.by_service.insert(
                        Arc::from(service.id.as_str()),
                        Arc::new(TlsProfile::refusing()),
                    );
                    errors.push(UpstreamTlsError::Service {
                        service: service.id.clone(),
                        reason,
                    })
                }
            }
        }
        (upstreams, errors)
    }

    /// The TLS profile of `service`.
    pub fn tls(&self, service: &ServiceInfo) -> &Arc<TlsProfile> {
        self.by_service
            .get(service.id.as_str())
            .unwrap_or(&self.default_tls)
    }
}

type Build = Box<dyn FnOnce(u64) -> TlsProfile>;

/// The identity and builder of `service`'s TLS profile.
fn service_profile(
    service: &ServiceInfo,
    verify: bool,
    sources: &TlsSources<'_>,
    system: &mut Option<Arc<Roots>>,
) -> Result<(u64, Build), String> {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    verify.hash(&mut hasher);
    let client = match &service.client_certificate {
        None => None,
        Some(id) => {
            let doc = sources
                .certificates
                .get(id)
                .ok_or_else(|| format!("client_certificate {id} does not exist"))?;
            let cert = doc.get("cert").and_then(|v| v.as_str()).unwrap_or_default();
            let key = doc.get("key").and_then(|v| v.as_str()).unwrap_or_default();
            cert.hash(&mut hasher);
            key.hash(&mut hasher);
            Some(client_identity(cert, key).map_err(|e| format!("client_certificate {id}: {e}"))?)
        }
    };
    let roots = if !verify {
        None
    } else {
        let depth = service.tls_verify_depth.unwrap_or(1);
        depth.hash(&mut hasher);
        let roots = if service.ca_certificates.is_empty() {
            "trusted".hash(&mut hasher);
            match system {
                Some(r) => r.clone(),
                None => {
                    let r = Arc::new(trusted_roots(sources.trusted)?);
                    *system = Some(r.clone());
                    r
                }
            }
        } else {
            let mut store = Roots::default();
            for id in &service.ca_certificates {
                let doc = sources
                    .ca_certificates
                    .get(id)
                    .ok_or_else(|| format!("ca_certificate {id} does not exist"))?;
                let pem = doc.get("cert").and_then(|v| v.as_str()).unwrap_or_default();
                pem.hash(&mut hasher);
                for cert in rustls_pemfile::certs(&mut pem.as_bytes()).flatten() {
                    store
                        .add(cert)
                        .map_err(|e| format!("ca_certificate {id}: {e}"))?;
                }
            }
            Arc::new(store)
        };
        Some((roots, depth))
    };
    let build: Build = Box::new(move |id| profile(id, roots, client));
    Ok((hasher.finish() | 1, build))
}

type ClientIdentity = (
    Vec<CertificateDer<'static>>,
    rustls::pki_types::PrivateKeyDer<'static>,
);

fn client_identity(cert: &str, key: &str) -> Result<ClientIdentity, String> {
    let chain: Vec<CertificateDer<'static>> = rustls_pemfile::certs(&mut cert.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|e| format!("bad certificate PEM: {e}"))?;
    let key = rustls_pemfile::private_key(&mut key.as_bytes())
        .map_err(|e| format!("bad key PEM: {e}"))?
        .ok_or("no private key in PEM")?;
    Ok((chain, key))
}

/// Roots from `lua_ssl_trusted_certificate`: `system` is the operating system's bundle.
fn trusted_roots(entries: &[String]) -> Result<Roots, String> {
    const SYSTEM_BUNDLES: &[&str] = &[
        "/etc/ssl/certs/ca-certificates.crt",
        "/etc/pki/tls/certs/ca-bundle.crt",
        "/etc/ssl/ca-bundle.pem",
        "/etc/ssl/cert.pem",
    ];
    let mut store = Roots::default();
    for entry in entries {
        let path = if entry == "system" {
            match SYSTEM_BUNDLES
                .iter()
                .find(|p| std::path::Path::new(p).is_file())
            {
                Some(p) => p.to_string(),
                None => continue,
            }
        } else {
            entry.clone()
        };
        let pem = std::fs::read(&path).map_err(|e| format!("could not read {path}: {e}"))?;
        for cert in rustls_pemfile::certs(&mut pem.as_slice()).flatten() {
            // As OpenSSL: a certificate of the bundle that cannot be used is skipped.
            let _ = store.add(cert);
        }
    }
    Ok(store)
}

/// A TLS client configuration for the gateway's side connections (a rate limiting plugin's
/// Redis): with `verify`, server certificates are checked against `trusted`
/// (`lua_ssl_trusted_certificate` entries) up to `depth` intermediates; without, the
/// connection is encrypted but the server not authenticated (Kong's `ssl_verify = false`).
pub fn side_tls_config(
    trusted: &[String],
    verify: bool,
    depth: u8,
) -> Result<Arc<rustls::ClientConfig>, String> {
    let roots = match verify {
        true => Some((Arc::new(trusted_roots(trusted)?), depth)),
        false => None,
    };
    let mut config = (*profile(u64::MAX - 1, roots, None).h1).clone();
    config.alpn_protocols.clear();
    Ok(Arc::new(config))
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The TLS client settings of active https health probes (HTTP/1.1): verifying against
/// `trusted` (`lua_ssl_trusted_certificate` entries; `system` = the OS bundle), or not verifying
/// when `None`.
pub fn probe_tls(trusted: Option<&[String]>) -> Arc<rustls::ClientConfig> {
    let roots = match trusted {
        None => None,
        Some(entries) => {
            let entries = if entries.is_empty() {
                vec!["system".to_owned()]
            } else {
                entries.to_vec()
            };
            match trusted_roots(&entries) {
                Ok(r) => Some((Arc::new(r), 8)),
                Err(e) => {
                    tracing::warn!(error = %e, "trusted certificates for health probes unreadable");
                    Some((Arc::new(Roots::default()), 8))
                }
            }
        }
    };
    profile(0, roots, None).h1
}

/// A profile with `roots` (and a depth) to verify against, or none (no verification).
fn profile(id: u64, roots: Option<(Arc<Roots>, u8)>, client: Option<ClientIdentity>) -> TlsProfile {
    let provider = provider();
    let verifier: Arc<dyn ServerCertVerifier> = match roots {
        None => Arc::new(Unverified::accepting(provider.clone())),
        Some((roots, depth)) => {
            match WebPkiServerVerifier::builder_with_provider(
                Arc::new(roots.store.clone()),
                provider.clone(),
            )
            .build()
            {
                Ok(inner) => Arc::new(DepthLimited {
                    inner,
                    roots,
                    depth,
                }),
                // No usable root: nothing can verify, so every handshake fails (502).
                Err(_) => Arc::new(Unverified::refusing(provider.clone())),
            }
        }
    };
    let config = |alpn: Option<&[u8]>| {
        let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map(|b| {
                b.dangerous()
                    .with_custom_certificate_verifier(verifier.clone())
            });
        let mut config = match builder {
            Ok(b) => match &client {
                Some((chain, key)) => b
                    .with_client_auth_cert(chain.clone(), key.clone_key())
                    .unwrap_or_else(|_| refusing_config()),
                None => b.with_no_client_auth(),
            },
            Err(_) => refusing_config(),
        };
        config.alpn_protocols = alpn.map(|a| vec![a.to_vec()]).unwrap_or_default();
        Arc::new(config)
    };
    TlsProfile {
        id,
        h1: config(Some(b"http/1.1")),
        h2: config(Some(b"h2")),
        raw: config(None),
    }
}

fn refusing_config() -> rustls::ClientConfig {
    rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map(|b| {
            b.dangerous()
                .with_custom_certificate_verifier(Arc::new(Unverified::refusing(provider())))
                .with_no_client_auth()
        })
        .unwrap_or_else(|_| {
            rustls::ClientConfig::builder()
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(Unverified::refusing(provider())))
                .with_no_client_auth()
        })
}

/// A client configuration that encrypts without verifying the peer's certificate, and offers
/// no ALPN: what Kong's logging plugins use towards their sinks (`ssl_verify = false`).
pub fn unverified_client_config() -> rustls::ClientConfig {
    let provider = provider();
    rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map(|b| {
            b.dangerous()
                .with_custom_certificate_verifier(Arc::new(Unverified::accepting(provider)))
                .with_no_client_auth()
        })
        .unwrap_or_else(|_| refusing_config())
}

impl TlsProfile {
    /// A profile whose handshakes always fail: for a service whose TLS settings are unusable.
    fn refusing() -> TlsProfile {
        let config = Arc::new(refusing_config());
        TlsProfile {
            id: u64::MAX,
            h1: config.clone(),
            h2: config.clone(),
            raw: config,
        }
    }
}

/// A verifier that does not look at the upstream's certificate: it either accepts it (Kong's
/// default, `tls_verify` off: encrypted but unverified) or refuses it (a service whose TLS
/// settings are unusable). Handshake signatures are still checked.
#[derive(Debug)]
struct Unverified {
    provider: Arc<rustls::crypto::CryptoProvider>,
    accept: bool,
}

impl Unverified {
    /// Accepts any certificate (Kong's default).
    fn accepting(provider: Arc<rustls::crypto::CryptoProvider>) -> Unverified {
        Unverified {
            provider,
            accept: true,
        }
    }

    /// Refuses every certificate.
    fn refusing(provider: Arc<rustls::crypto::CryptoProvider>) -> Unverified {
        Unverified {
            provider,
            accept: false,
        }
    }
}

impl ServerCertVerifier for Unverified {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if self.accept {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General(
                "the service's TLS settings are unusable".into(),
            ))
        }
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
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// Trusted certificates: the store rustls verifies with, and their DER (to tell a trusted
/// certificate sent along in a chain from an intermediate).
#[derive(Debug)]
struct Roots {
    store: RootCertStore,
    ders: Vec<CertificateDer<'static>>,
}

impl Default for Roots {
    fn default() -> Self {
        Roots {
            store: RootCertStore::empty(),
            ders: Vec::new(),
        }
    }
}

impl Roots {
    fn add(&mut self, cert: CertificateDer<'static>) -> Result<(), rustls::Error> {
        self.store.add(cert.clone())?;
        self.ders.push(cert);
        Ok(())
    }
}

/// Verification against roots, with at most `depth` intermediate certificates between the
/// upstream's certificate and a trusted one (OpenSSL's verify depth).
#[derive(Debug)]
struct DepthLimited {
    inner: Arc<WebPkiServerVerifier>,
    roots: Arc<Roots>,
    depth: u8,
}

impl ServerCertVerifier for DepthLimited {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let verified =
            self.inner
                .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)?;
        // Intermediates that are themselves trusted do not lengthen the path.
        let needed = intermediates
            .iter()
            .filter(|c| !self.roots.ders.iter().any(|r| r.as_ref() == c.as_ref()))
            .count();
        if needed > usize::from(self.depth) {
            return Err(rustls::Error::General(format!(
                "certificate chain too long ({needed} intermediates, tls_verify_depth {})",
                self.depth
            )));
        }
        Ok(verified)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// Opens a connection to `peer` within `connect_timeout` (name resolution, TCP and TLS).
pub async fn dial(
    peer: PeerRef<'_>,
    tls: Option<&TlsProfile>,
    connect_timeout: Duration,
) -> Result<Conn, ProxyError> {
    let connect = async {
        let addrs = resolve(peer.host, peer.port).await?;
        let mut last = ProxyError::BadGateway;
        for addr in addrs {
            match TcpStream::connect(addr).await {
                Ok(stream) => {
                    let _ = stream.set_nodelay(true);
                    return Ok(stream);
                }
                Err(e) => {
                    tracing::debug!(%addr, error = %e, "upstream connection failed");
                    last = ProxyError::BadGateway;
                }
            }
        }
        Err(last)
    };
    let sender = tokio::time::timeout(connect_timeout, async {
        let stream = connect.await?;
        match (tls, peer.tls) {
            (Some(profile), Some((_, sni))) => {
                let name = server_name(sni)?;
                let connector = tokio_rustls::TlsConnector::from(profile.config(peer.h2).clone());
                let stream = connector.connect(name, stream).await.map_err(|e| {
                    tracing::debug!(host = peer.host, error = %e, "upstream TLS handshake failed");
                    ProxyError::BadGateway
                })?;
                if !peer.h2 && !peer.streamed {
                    return Ok(Sender::Own(H1::new(Either::Right(Box::new(stream)))));
                }
                handshake(stream, peer.h2).await
            }
            _ if !peer.h2 && !peer.streamed => Ok(Sender::Own(H1::new(Either::Left(stream)))),
            _ => handshake(stream, peer.h2).await,
        }
    })
    .await
    .map_err(|_| ProxyError::GatewayTimeout)??;
    Ok(Conn {
        peer: Peer::of(peer),
        sender,
        used: 0,
        reused: false,
    })
}

fn server_name(sni: &str) -> Result<ServerName<'static>, ProxyError> {
    let bare = sni.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return Ok(ServerName::IpAddress(ip.into()));
    }
    ServerName::try_from(sni.to_owned()).map_err(|_| ProxyError::BadGateway)
}

async fn resolve(host: &str, port: u16) -> Result<Vec<SocketAddr>, ProxyError> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((bare, port))
        .await
        .map_err(|e| {
            tracing::debug!(host, error = %e, "upstream name resolution failed");
            ProxyError::NameResolution
        })?
        .collect();
    if addrs.is_empty() {
        return Err(ProxyError::NameResolution);
    }
    Ok(addrs)
}

async fn handshake<S>(stream: S, h2: bool) -> Result<Sender, ProxyError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let io = TokioIo::new(stream);
    let failed = |e: hyper::Error| {
        tracing::debug!(error = %e, "upstream HTTP handshake failed");
        ProxyError::BadGateway
    };
    if h2 {
        let (sender, conn) = http2::Builder::new(TokioExecutor::new())
            .timer(TokioTimer::new())
            .handshake(io)
            .await
            .map_err(failed)?;
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "upstream HTTP/2 connection ended");
            }
        });
        Ok(Sender::H2(sender))
    } else {
        let (sender, conn) = http1::Builder::new().handshake(io).await.map_err(failed)?;
        tokio::spawn(async move {
            if let Err(e) = conn.with_upgrades().await {
                tracing::debug!(error = %e, "upstream connection ended");
            }
        });
        Ok(Sender::HyperH1(sender))
    }
}
