//! The stream router: matching by `sources`, `destinations` and `snis`, and Kong's
//! `traditional_compatible` stream priorities (SNI or source+destination first, then IP > port >
//! CIDR, sources before destinations, the larger id on ties).

use std::net::SocketAddr;

use serde_json::{json, Value};

use super::{rid, route, service, SVC};
use crate::router::{Doc, RouterError, StreamRequest, StreamRouter};

/// A stream route `n` with `fields` (`protocols` defaults to `tcp`).
fn sroute(n: u32, fields: Value) -> Doc {
    let mut doc = route(n, json!({"protocols": ["tcp"]}));
    for key in ["strip_path", "path_handling", "regex_priority"] {
        doc.remove(key);
    }
    if let Value::Object(f) = fields {
        doc.extend(f);
    }
    doc
}

fn build(routes: Vec<Doc>) -> Result<StreamRouter, RouterError> {
    StreamRouter::build(&routes, &[service(SVC, json!({"protocol": "tcp"}))])
}

fn router(routes: Vec<Doc>) -> StreamRouter {
    build(routes).unwrap_or_else(|e| panic!("router did not build: {e}"))
}

fn addr(s: &str) -> SocketAddr {
    s.parse()
        .unwrap_or_else(|e| panic!("test address {s}: {e}"))
}

/// The id of the route a connection from `src` to `dst` (with `sni`) matches.
fn winner(r: &StreamRouter, src: &str, dst: &str, sni: Option<&str>) -> Option<String> {
    r.find(&StreamRequest {
        source: addr(src),
        destination: addr(dst),
        sni,
    })
    .map(|m| m.route.id.clone())
}

const CLIENT: &str = "10.1.2.3:40000";
const LOCAL: &str = "127.0.0.1:9000";

#[test]
fn destination_port_selects_the_route_and_nothing_else_matches() {
    let r = router(vec![
        sroute(1, json!({"destinations": [{"port": 9000}]})),
        sroute(2, json!({"destinations": [{"port": 9001}]})),
    ]);
    assert_eq!(winner(&r, CLIENT, LOCAL, None), Some(rid(1)));
    assert_eq!(winner(&r, CLIENT, "127.0.0.1:9001", None), Some(rid(2)));
    assert_eq!(winner(&r, CLIENT, "127.0.0.1:9002", None), None);
}

#[test]
fn an_entry_with_ip_and_port_needs_both_and_entries_are_alternatives() {
    let r = router(vec![sroute(
        1,
        json!({"sources": [{"ip": "10.1.2.3", "port": 1}, {"ip": "192.168.0.0/16"}]}),
    )]);
    assert_eq!(winner(&r, "10.1.2.3:1", LOCAL, None), Some(rid(1)));
    assert_eq!(winner(&r, "10.1.2.3:2", LOCAL, None), None);
    assert_eq!(winner(&r, "192.168.7.7:2", LOCAL, None), Some(rid(1)));
}

#[test]
fn sources_and_destinations_must_both_match() {
    let r = router(vec![sroute(
        1,
        json!({"sources": [{"ip": "10.0.0.0/8"}], "destinations": [{"port": 9000}]}),
    )]);
    assert_eq!(winner(&r, CLIENT, LOCAL, None), Some(rid(1)));
    assert_eq!(winner(&r, "11.0.0.1:5", LOCAL, None), None);
    assert_eq!(winner(&r, CLIENT, "127.0.0.1:9001", None), None);
}

#[test]
fn cidr_ranges_match_by_prefix_in_their_own_family() {
    let r = router(vec![
        sroute(5, json!({"sources": [{"ip": "10.1.0.0/16"}]})),
        sroute(2, json!({"sources": [{"ip": "0.0.0.0/0"}]})),
        sroute(3, json!({"sources": [{"ip": "fd00::/8"}]})),
    ]);
    assert_eq!(winner(&r, "10.1.200.1:5", LOCAL, None), Some(rid(5)));
    assert_eq!(winner(&r, "10.2.0.1:5", LOCAL, None), Some(rid(2)));
    assert_eq!(winner(&r, "[fd12::1]:5", LOCAL, None), Some(rid(3)));
    assert_eq!(winner(&r, "[fe80::1]:5", LOCAL, None), None);
}

#[test]
fn a_narrower_range_has_no_precedence_of_its_own() {
    // Both are CIDR sources: equal priority, so the larger id wins, as in Kong.
    let r = router(vec![
        sroute(1, json!({"sources": [{"ip": "10.1.2.0/24"}]})),
        sroute(2, json!({"sources": [{"ip": "10.0.0.0/8"}]})),
    ]);
    assert_eq!(winner(&r, CLIENT, LOCAL, None), Some(rid(2)));
}

#[test]
fn host_bits_of_a_stored_range_are_ignored() {
    let r = router(vec![sroute(
        1,
        json!({"sources": [{"ip": "10.1.2.99/24"}]}),
    )]);
    assert_eq!(winner(&r, "10.1.2.3:5", LOCAL, None), Some(rid(1)));
    assert_eq!(winner(&r, "10.1.3.3:5", LOCAL, None), None);
}

#[test]
fn ipv4_mapped_client_addresses_match_ipv4_entries() {
    let r = router(vec![sroute(1, json!({"sources": [{"ip": "10.0.0.0/8"}]}))]);
    assert_eq!(
        winner(&r, "[::ffff:10.1.2.3]:5", "[::ffff:127.0.0.1]:9000", None),
        Some(rid(1))
    );
}

#[test]
fn exact_ip_beats_port_beats_cidr() {
    let r = router(vec![
        sroute(3, json!({"sources": [{"ip": "10.0.0.0/8"}]})),
        sroute(2, json!({"sources": [{"port": 40000}]})),
        sroute(1, json!({"sources": [{"ip": "10.1.2.3"}]})),
    ]);
    assert_eq!(winner(&r, CLIENT, LOCAL, None), Some(rid(1)));
    assert_eq!(winner(&r, "10.9.9.9:40000", LOCAL, None), Some(rid(2)));
    assert_eq!(winner(&r, "10.9.9.9:1", LOCAL, None), Some(rid(3)));
}

#[test]
fn a_source_attribute_outranks_any_destination_attribute() {
    // Source CIDR (1 << 4 = 16) against destination IP and port (8 | 4 = 12).
    let r = router(vec![
        sroute(
            2,
            json!({"destinations": [{"ip": "127.0.0.1", "port": 9000}]}),
        ),
        sroute(1, json!({"sources": [{"ip": "10.0.0.0/8"}]})),
    ]);
    assert_eq!(winner(&r, CLIENT, LOCAL, None), Some(rid(1)));
}

#[test]
fn source_and_destination_together_outrank_any_single_attribute() {
    let r = router(vec![
        sroute(2, json!({"sources": [{"ip": "10.1.2.3", "port": 40000}]})),
        sroute(
            1,
            json!({"sources": [{"ip": "10.0.0.0/8"}], "destinations": [{"ip": "127.0.0.0/8"}]}),
        ),
    ]);
    assert_eq!(winner(&r, CLIENT, LOCAL, None), Some(rid(1)));
}

#[test]
fn snis_outrank_sources_and_count_only_when_a_name_was_sent() {
    let r = router(vec![
        sroute(2, json!({"sources": [{"ip": "10.1.2.3", "port": 40000}]})),
        sroute(
            1,
            json!({"protocols": ["tls_passthrough"], "snis": ["db.test"]}),
        ),
    ]);
    assert_eq!(winner(&r, CLIENT, LOCAL, Some("db.test")), Some(rid(1)));
    assert_eq!(winner(&r, CLIENT, LOCAL, Some("other.test")), Some(rid(2)));
    // No server name (plain TCP, or a TLS client without SNI): the SNI route matches on its
    // other attributes, which it has none of, and its priority wins (as in Kong).
    assert_eq!(winner(&r, CLIENT, LOCAL, None), Some(rid(1)));
}

#[test]
fn sni_wildcards_and_trailing_dot() {
    let r = router(vec![
        sroute(1, json!({"protocols": ["tls"], "snis": ["*.shop.test"]})),
        sroute(2, json!({"protocols": ["tls"], "snis": ["api.*"]})),
        sroute(3, json!({"protocols": ["tls"], "snis": ["exact.test."]})),
    ]);
    assert_eq!(
        winner(&r, CLIENT, LOCAL, Some("www.shop.test")),
        Some(rid(1))
    );
    assert_eq!(winner(&r, CLIENT, LOCAL, Some("api.example")), Some(rid(2)));
    assert_eq!(winner(&r, CLIENT, LOCAL, Some("exact.test")), Some(rid(3)));
    assert_eq!(winner(&r, CLIENT, LOCAL, Some("nope.test")), None);
}

#[test]
fn equal_priorities_go_to_the_larger_id() {
    let r = router(vec![
        sroute(1, json!({"destinations": [{"port": 9000}]})),
        sroute(7, json!({"destinations": [{"port": 9000}]})),
        sroute(4, json!({"destinations": [{"port": 9000}]})),
    ]);
    assert_eq!(winner(&r, CLIENT, LOCAL, None), Some(rid(7)));
}

#[test]
fn http_routes_and_routes_of_disabled_services_are_left_out() {
    let off = "5a9b1d3e-0000-4000-8000-000000000002";
    let mut routes = vec![
        route(1, json!({"paths": ["/"]})),
        sroute(2, json!({"destinations": [{"port": 9000}]})),
        sroute(
            3,
            json!({"destinations": [{"port": 9000}], "service": {"id": off}}),
        ),
    ];
    routes.push(sroute(
        4,
        json!({"protocols": ["udp"], "sources": [{"port": 1}]}),
    ));
    let r = StreamRouter::build(
        &routes,
        &[
            service(SVC, json!({"protocol": "tcp"})),
            service(off, json!({"protocol": "tcp", "enabled": false})),
        ],
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.len(), 2);
    assert_eq!(winner(&r, CLIENT, LOCAL, None), Some(rid(2)));
    let m = r
        .find(&StreamRequest {
            source: addr(CLIENT),
            destination: addr(LOCAL),
            sni: None,
        })
        .unwrap_or_else(|| panic!("a match"));
    assert_eq!(m.service.map(|s| s.id.as_str()), Some(SVC));
    assert_eq!(r.services().count(), 1);
}

#[test]
fn route_without_service_matches_without_one() {
    let mut doc = sroute(1, json!({"destinations": [{"port": 9000}]}));
    doc.remove("service");
    let r = router(vec![doc]);
    let m = r.find(&StreamRequest {
        source: addr(CLIENT),
        destination: addr(LOCAL),
        sni: None,
    });
    assert!(m.is_some_and(|m| m.service.is_none()));
}

#[test]
fn unusable_stored_routes_fail_the_build_naming_route_and_field() {
    for (fields, want) in [
        (
            json!({"sources": [{"ip": "10.0.0.0/33"}]}),
            "field 'sources': invalid ip or cidr range '10.0.0.0/33'",
        ),
        (
            json!({"destinations": [{}]}),
            "field 'destinations': each entry needs an ip or a port",
        ),
        (
            json!({"destinations": [{"port": 70000}]}),
            "field 'destinations': port: expected an integer 0-65535",
        ),
        (json!({}), "no sources, destinations or snis to match on"),
        (
            json!({"paths": ["/x"], "destinations": [{"port": 1}]}),
            "field 'paths': not supported on stream routes",
        ),
    ] {
        let err = build(vec![sroute(1, fields.clone())])
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains(want), "{fields}: {err}");
        assert!(err.contains(&rid(1)), "{fields}: {err}");
    }
}
