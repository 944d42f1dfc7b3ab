//! The protocol checks made after a match (426, redirects, gRPC).

use serde_json::json;

use super::*;
use crate::router::ProtocolMismatch;

fn mismatch(r: &Router, req: &Req) -> Option<ProtocolMismatch> {
    r.find(&req.info()).and_then(|m| m.protocol_mismatch)
}

#[test]
fn https_only_route_over_http_requires_https_with_426() {
    let r = router(vec![route(
        1,
        json!({"protocols": ["https"], "paths": ["/s"]}),
    )]);
    assert_eq!(
        mismatch(&r, &get("x", "/s")),
        Some(ProtocolMismatch::HttpsRequired { status: 426 })
    );
    assert_eq!(mismatch(&r, &get("x", "/s").https(Some("x"))), None);
}

#[test]
fn https_only_route_redirect_status_is_the_routes() {
    for status in [301, 302, 307, 308] {
        let r = router(vec![route(
            1,
            json!({"protocols": ["https"], "paths": ["/s"], "https_redirect_status_code": status}),
        )]);
        assert_eq!(
            mismatch(&r, &get("x", "/s")),
            Some(ProtocolMismatch::HttpsRequired { status })
        );
    }
}

#[test]
fn https_only_route_trusts_the_forwarded_proto() {
    let r = router(vec![route(
        1,
        json!({"protocols": ["https"], "paths": ["/s"]}),
    )]);
    assert_eq!(mismatch(&r, &get("x", "/s").forwarded_proto("https")), None);
    // Behind a trusted proxy that spoke plain HTTP, a TLS hop to us does not count.
    assert_eq!(
        mismatch(&r, &get("x", "/s").https(None).forwarded_proto("http")),
        Some(ProtocolMismatch::HttpsRequired { status: 426 })
    );
}

#[test]
fn http_and_https_route_accepts_both() {
    let r = router(vec![route(1, json!({"paths": ["/s"]}))]);
    assert_eq!(mismatch(&r, &get("x", "/s")), None);
    assert_eq!(mismatch(&r, &get("x", "/s").https(Some("x"))), None);
}

#[test]
fn http_only_route_accepts_https_too() {
    // Kong only refuses the https-only case; an http-only route serves HTTPS requests.
    let r = router(vec![route(
        1,
        json!({"protocols": ["http"], "paths": ["/s"]}),
    )]);
    assert_eq!(mismatch(&r, &get("x", "/s").https(Some("x"))), None);
}

fn grpc_route(protocols: serde_json::Value) -> Router {
    let mut doc = route(1, json!({"protocols": protocols, "paths": ["/pkg.Svc/"]}));
    doc.remove("strip_path");
    router(vec![doc])
}

#[test]
fn grpc_route_refuses_non_grpc_content_with_415() {
    let r = grpc_route(json!(["grpc", "grpcs"]));
    let req = get("x", "/pkg.Svc/Call")
        .http2()
        .header("content-type", "application/json");
    assert_eq!(mismatch(&r, &req), Some(ProtocolMismatch::NotGrpc));
    assert_eq!(
        mismatch(&r, &get("x", "/pkg.Svc/Call").http2()),
        Some(ProtocolMismatch::NotGrpc)
    );
}

#[test]
fn grpc_route_over_http1_requires_http2_with_426() {
    let r = grpc_route(json!(["grpc"]));
    let req = get("x", "/pkg.Svc/Call").header("content-type", "application/grpc");
    assert_eq!(mismatch(&r, &req), Some(ProtocolMismatch::Http2Required));
    let ok = get("x", "/pkg.Svc/Call")
        .http2()
        .header("content-type", "application/grpc+proto");
    assert_eq!(mismatch(&r, &ok), None);
}

#[test]
fn grpcs_only_route_refuses_cleartext_grpc() {
    let r = grpc_route(json!(["grpcs"]));
    let req = get("x", "/pkg.Svc/Call")
        .http2()
        .header("content-type", "application/grpc");
    assert_eq!(mismatch(&r, &req), Some(ProtocolMismatch::GrpcsRequired));
    assert_eq!(mismatch(&r, &req.clone().https(Some("x"))), None);
}

#[test]
fn grpc_route_defaults_to_not_stripping_the_path() {
    let r = grpc_route(json!(["grpc"]));
    let req = get("x", "/pkg.Svc/Call")
        .http2()
        .header("content-type", "application/grpc");
    let m = r.find(&req.info()).expect("matches");
    assert!(!m.route.strip_path);
    assert_eq!(m.upstream_path, "/pkg.Svc/Call");
}
