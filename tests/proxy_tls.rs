//! TLS on the proxy's ssl listener: the certificate is chosen by the client's SNI from the
//! `certificates` and `snis` entities (exact name, then `*.leading`, then `trailing.*`, then
//! `*`), else the node's default; changes through the Admin API apply without a restart.
//!
//! The client trusts anything but records what the server presented, and can restrict the
//! signature schemes it offers, which is how a server holding RSA and ECDSA certificates
//! decides which one to send.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use rustls::SignatureScheme;
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use crate::support::http::rt;
use crate::support::kong::{wait_until, Kong};
use crate::support::tls::Capture;
use crate::support::upstream::EchoUpstream;

/// A 2048-bit RSA test key, protecting nothing: rcgen cannot generate RSA keys with ring, so
/// it was made once with `openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048`.
const RSA_KEY: &str = include_str!("fixtures/rsa-2048.key");

const ECDSA_ONLY: &[SignatureScheme] = &[SignatureScheme::ECDSA_NISTP256_SHA256];
const RSA_ONLY: &[SignatureScheme] = &[
    SignatureScheme::RSA_PSS_SHA256,
    SignatureScheme::RSA_PKCS1_SHA256,
];

/// A self-signed certificate: PEM for the Admin API, DER to recognise it on the wire.
struct Cert {
    cert: String,
    key: String,
    der: Vec<u8>,
}

fn cert_with(name: &str, key: rcgen::KeyPair) -> Cert {
    let mut params = rcgen::CertificateParams::new(vec![name.to_owned()]).expect("params");
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    let cert = params.self_signed(&key).expect("self-signed");
    Cert {
        cert: cert.pem(),
        key: key.serialize_pem(),
        der: cert.der().to_vec(),
    }
}

/// An ECDSA P-256 certificate for `name`.
fn ecdsa(name: &str) -> Cert {
    cert_with(name, rcgen::KeyPair::generate().expect("key"))
}

/// An RSA certificate for `name`.
fn rsa(name: &str) -> Cert {
    cert_with(
        name,
        rcgen::KeyPair::from_pem(RSA_KEY).expect("RSA fixture"),
    )
}

/// Calls the Admin API; `None` for an empty answer (204).
fn admin(kong: &Kong, method: &str, path: &str, body: Value) -> Option<Value> {
    let answer = crate::support::admin::admin(kong, method, path, body);
    (!answer.is_null()).then_some(answer)
}

/// Creates a certificate entity serving `snis`; returns its id.
fn add_certificate(kong: &Kong, cert: &Cert, snis: &[&str]) -> String {
    let created = admin(
        kong,
        "POST",
        "/certificates",
        json!({"cert": cert.cert, "key": cert.key, "snis": snis}),
    )
    .expect("created certificate");
    created["id"].as_str().expect("id").to_owned()
}

/// Trusts any certificate, records the one presented, and still checks the handshake
/// signature (so the server really signed with the key of that certificate).
/// Handshakes with the proxy's ssl listener, sending `sni` (none for `None`) and offering
/// `schemes` (rustls' defaults for `None`); returns the stream and the certificate served.
async fn connect(
    kong: &Kong,
    sni: Option<&str>,
    schemes: Option<&[SignatureScheme]>,
) -> Result<(TlsStream<TcpStream>, Vec<u8>), String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = Arc::new(Capture::new(provider.clone(), schemes));
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(verifier.clone())
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    // rustls sends no SNI for an IP address.
    let name = match sni {
        Some(n) => ServerName::try_from(n.to_owned()).map_err(|e| e.to_string())?,
        None => ServerName::IpAddress(std::net::Ipv4Addr::LOCALHOST.into()),
    };
    let tcp = TcpStream::connect(("127.0.0.1", kong.proxy_ssl_port))
        .await
        .map_err(|e| e.to_string())?;
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let stream = tokio::time::timeout(Duration::from_secs(5), connector.connect(name, tcp))
        .await
        .map_err(|_| "handshake timed out".to_owned())?
        .map_err(|e| e.to_string())?;
    let seen = verifier.seen().ok_or("no certificate presented")?;
    Ok((stream, seen))
}

/// The certificate (DER) the proxy serves to a client asking for `sni`.
fn served(kong: &Kong, sni: Option<&str>, schemes: Option<&[SignatureScheme]>) -> Vec<u8> {
    rt().block_on(connect(kong, sni, schemes))
        .map(|(_, der)| der)
        .unwrap_or_else(|e| panic!("TLS handshake with SNI {sni:?}: {e}"))
}

/// Waits until a client asking for `sni` is served `expected` (the configuration is live).
fn wait_served(kong: &Kong, sni: Option<&str>, expected: &[u8]) {
    let live = wait_until(Duration::from_secs(5), || {
        rt().block_on(connect(kong, sni, None))
            .is_ok_and(|(_, der)| der == expected)
    });
    assert!(live, "SNI {sni:?} never got the expected certificate");
}

/// The node's generated default certificate (DER).
fn default_cert(kong: &Kong) -> Vec<u8> {
    let pem = std::fs::read(kong.prefix().join("ssl/kong-default-ecdsa.crt")).expect("default");
    let der = rustls_pemfile::certs(&mut pem.as_slice())
        .next()
        .expect("a certificate")
        .expect("PEM");
    der.to_vec()
}

#[test]
fn sni_picks_exact_then_leading_then_trailing_wildcard_else_the_default() {
    let kong = Kong::start("");
    let exact = ecdsa("www.shop.test");
    let leading = ecdsa("*.shop.test");
    let trailing = ecdsa("shop.*");
    add_certificate(&kong, &exact, &["www.shop.test"]);
    add_certificate(&kong, &leading, &["*.shop.test"]);
    add_certificate(&kong, &trailing, &["shop.*"]);
    wait_served(&kong, Some("shop.example"), &trailing.der);

    assert!(served(&kong, Some("www.shop.test"), None) == exact.der);
    assert!(served(&kong, Some("WWW.Shop.Test"), None) == exact.der);
    assert!(served(&kong, Some("api.shop.test"), None) == leading.der);
    assert!(served(&kong, Some("shop.example"), None) == trailing.der);
    let default = default_cert(&kong);
    // `*.shop.test` stands for one label only, and `shop.*` for the last label only.
    assert!(served(&kong, Some("a.b.shop.test"), None) == default);
    assert!(served(&kong, Some("www.shop.example"), None) == default);
    assert!(served(&kong, Some("unknown.test"), None) == default);
    assert!(served(&kong, None, None) == default);
}

#[test]
fn catch_all_sni_serves_unknown_names_but_not_clients_without_sni() {
    let files = tempfile::tempdir().expect("tempdir");
    let configured = ecdsa("configured.test");
    let cert_path = files.path().join("proxy.crt");
    let key_path = files.path().join("proxy.key");
    std::fs::write(&cert_path, &configured.cert).expect("write cert");
    std::fs::write(&key_path, &configured.key).expect("write key");
    let kong = Kong::start(&format!(
        "ssl_cert = {}\nssl_cert_key = {}",
        cert_path.display(),
        key_path.display()
    ));
    assert!(
        served(&kong, Some("unknown.test"), None) == configured.der,
        "ssl_cert is the default"
    );

    let named = ecdsa("named.test");
    let any = ecdsa("any.test");
    add_certificate(&kong, &named, &["named.test"]);
    add_certificate(&kong, &any, &["*"]);
    wait_served(&kong, Some("unknown.test"), &any.der);
    assert!(served(&kong, Some("named.test"), None) == named.der);
    assert!(
        served(&kong, None, None) == configured.der,
        "no SNI: the default, as Kong"
    );
}

#[test]
fn certificates_follow_admin_api_changes_without_restart() {
    let kong = Kong::start("");
    let default = default_cert(&kong);
    assert!(served(&kong, Some("live.test"), None) == default);

    let first = ecdsa("live.test");
    let id = add_certificate(&kong, &first, &["live.test"]);
    wait_served(&kong, Some("live.test"), &first.der);

    let second = ecdsa("live.test");
    admin(
        &kong,
        "PATCH",
        &format!("/certificates/{id}"),
        json!({"cert": second.cert, "key": second.key}),
    );
    wait_served(&kong, Some("live.test"), &second.der);

    // An SNI added on its own, pointing at the existing certificate.
    admin(
        &kong,
        "POST",
        "/snis",
        json!({"name": "other.test", "certificate": {"id": id}}),
    );
    wait_served(&kong, Some("other.test"), &second.der);

    admin(&kong, "DELETE", &format!("/certificates/{id}"), json!({}));
    wait_served(&kong, Some("live.test"), &default);
    assert!(served(&kong, Some("other.test"), None) == default);
}

#[test]
fn cert_alt_is_served_to_clients_that_offer_only_its_key_type() {
    let kong = Kong::start("");
    let main = rsa("dual.test");
    let alt = ecdsa("dual.test");
    admin(
        &kong,
        "POST",
        "/certificates",
        json!({"cert": main.cert, "key": main.key, "cert_alt": alt.cert,
               "key_alt": alt.key, "snis": ["dual.test"]}),
    );
    let live = wait_until(Duration::from_secs(5), || {
        rt().block_on(connect(&kong, Some("dual.test"), Some(RSA_ONLY)))
            .is_ok_and(|(_, der)| der == main.der)
    });
    assert!(live, "the RSA certificate was never served");
    assert!(served(&kong, Some("dual.test"), Some(ECDSA_ONLY)) == alt.der);
    assert!(served(&kong, Some("dual.test"), Some(RSA_ONLY)) == main.der);
    // A client offering both gets the one its preference names first.
    let ecdsa_first = [ECDSA_ONLY, RSA_ONLY].concat();
    assert!(served(&kong, Some("dual.test"), Some(&ecdsa_first)) == alt.der);
    let rsa_first = [RSA_ONLY, ECDSA_ONLY].concat();
    assert!(served(&kong, Some("dual.test"), Some(&rsa_first)) == main.der);
}

#[test]
fn https_request_with_sni_reaches_the_upstream_through_its_route() {
    let echo = EchoUpstream::start();
    let kong = Kong::start("");
    admin(
        &kong,
        "POST",
        "/services",
        json!({"name": "echo", "url": echo.url()}),
    );
    admin(
        &kong,
        "POST",
        "/services/echo/routes",
        json!({"protocols": ["https"], "snis": ["shop.test"], "paths": ["/sni"]}),
    );
    let shop = ecdsa("shop.test");
    add_certificate(&kong, &shop, &["shop.test"]);
    wait_served(&kong, Some("shop.test"), &shop.der);

    let (status, body) = rt().block_on(async {
        let (stream, der) = connect(&kong, Some("shop.test"), None)
            .await
            .expect("handshake");
        assert!(der == shop.der, "served the shop.test certificate");
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .expect("HTTP/1.1 over TLS");
        tokio::spawn(conn);
        let req = http::Request::get("/sni/x")
            .header("host", "shop.test")
            .body(Empty::<Bytes>::new())
            .expect("request");
        let resp = sender.send_request(req).await.expect("response");
        let status = resp.status().as_u16();
        let body = resp.into_body().collect().await.expect("body").to_bytes();
        (status, String::from_utf8_lossy(&body).into_owned())
    });
    assert_eq!(status, 200, "{body}");
    let seen: Value = serde_json::from_str(&body).expect("echo JSON");
    assert_eq!(seen["path"], "/x");
    assert_eq!(seen["headers"]["x-forwarded-proto"], "https");
    assert_eq!(echo.requests(), 1);
}
