//! Load balancing through the real binary, against several upstream servers on loopback that
//! say which instance answered: weights, consistent hashing (header, cookie, ip),
//! least-connections, passive and active health checks, manual health over the Admin API, DNS
//! (SRV, TTL, failures) with a test DNS responder, and 503 when no target is left.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::net::TcpListener;

use crate::support::admin::{admin, service_with_route};
use crate::support::dns::{DnsServer, Rec};
use crate::support::http::{rt, send};
use crate::support::kong::{wait_until, Kong};

/// An upstream server answering `instance <name>` (and its `Host` in `x-host`); `/delay/<ms>`
/// waits first. It can be killed (listener and connections closed) and revived on the same
/// address.
struct Instance {
    name: String,
    addr: SocketAddr,
    hits: Arc<AtomicU64>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Instance {
    fn start(name: &str) -> Instance {
        Instance::on(name, "127.0.0.1:0".parse().expect("addr"))
    }

    fn on(name: &str, addr: SocketAddr) -> Instance {
        let mut i = Instance {
            name: name.to_owned(),
            addr,
            hits: Arc::default(),
            task: None,
        };
        i.revive();
        i
    }

    fn port(&self) -> u16 {
        self.addr.port()
    }

    fn target(&self) -> String {
        self.addr.to_string()
    }

    fn revive(&mut self) {
        let listener = rt()
            .block_on(TcpListener::bind(self.addr))
            .expect("bind instance");
        self.addr = listener.local_addr().expect("addr");
        let name = self.name.clone();
        let hits = self.hits.clone();
        self.task = Some(rt().spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let name = name.clone();
                let hits = hits.clone();
                conns.spawn(async move {
                    let service = service_fn(move |req: Request<Incoming>| {
                        let name = name.clone();
                        let hits = hits.clone();
                        async move {
                            hits.fetch_add(1, Ordering::SeqCst);
                            if let Some(ms) = req.uri().path().strip_prefix("/delay/") {
                                let ms = ms.parse().unwrap_or(0);
                                tokio::time::sleep(Duration::from_millis(ms)).await;
                            }
                            let host = req
                                .headers()
                                .get("host")
                                .and_then(|h| h.to_str().ok())
                                .unwrap_or_default()
                                .to_owned();
                            let resp = Response::builder()
                                .header("x-instance", name.as_str())
                                .header("x-host", host)
                                .body(Full::new(Bytes::from(format!("instance {name}"))))
                                .expect("response");
                            Ok::<_, Infallible>(resp)
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        }));
    }

    /// Closes the listener and every connection.
    fn kill(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
            let _ = rt().block_on(t);
        }
    }

    fn hits(&self) -> u64 {
        self.hits.load(Ordering::SeqCst)
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}

/// Creates upstream `name` (with `extra` fields) and its targets `(address, weight)`, a service
/// on it and a route on `path`; waits until the proxy reaches an instance (or answers 503 when
/// `expect_up` is false).
fn balanced(kong: &Kong, name: &str, extra: Value, targets: &[(String, u32)], path: &str) {
    let mut upstream = json!({"name": name});
    if let (Some(u), Some(e)) = (upstream.as_object_mut(), extra.as_object()) {
        u.extend(e.clone());
    }
    admin(kong, "POST", "/upstreams", upstream);
    for (target, weight) in targets {
        admin(
            kong,
            "POST",
            &format!("/upstreams/{name}/targets"),
            json!({"target": target, "weight": weight}),
        );
    }
    service_with_route(
        kong,
        json!({"name": name, "host": name, "retries": 5}),
        json!({"paths": [path]}),
    );
    let live = wait_until(Duration::from_secs(10), || {
        let r = send("GET", &kong.proxy(path), &[], None);
        r.status == 200 || (r.status == 503 && r.body.contains("ring-balancer"))
    });
    assert!(live, "route {path} never reached the balancer");
}

/// Which instance answered `GET path` (with `headers`); panics on anything but 200.
fn who(kong: &Kong, path: &str, headers: &[(&str, &str)]) -> String {
    let r = send("GET", &kong.proxy(path), headers, None);
    assert_eq!(r.status, 200, "{path}: {}", r.body);
    r.header("x-instance").unwrap_or_default().to_owned()
}

fn tally(kong: &Kong, path: &str, n: usize) -> std::collections::HashMap<String, usize> {
    let mut counts = std::collections::HashMap::new();
    for _ in 0..n {
        *counts.entry(who(kong, path, &[])).or_default() += 1;
    }
    counts
}

#[test]
fn weighted_round_robin_splits_one_to_three_and_weight_zero_gets_nothing() {
    let kong = Kong::start("");
    let a = Instance::start("a");
    let b = Instance::start("b");
    let c = Instance::start("c");
    balanced(
        &kong,
        "weighted.test",
        json!({"host_header": "backend.example"}),
        &[(a.target(), 100), (b.target(), 300), (c.target(), 0)],
        "/w",
    );
    let counts = tally(&kong, "/w", 400);
    let (na, nb) = (
        counts.get("a").copied().unwrap_or(0),
        counts.get("b").copied().unwrap_or(0),
    );
    assert!((90..=110).contains(&na), "a got {na} of 400: {counts:?}");
    assert!((290..=310).contains(&nb), "b got {nb} of 400: {counts:?}");
    assert_eq!(c.hits(), 0, "weight 0 must get no traffic");
    // host_header replaces the target's name in the upstream Host.
    let r = send("GET", &kong.proxy("/w"), &[], None);
    let host = r.header("x-host").unwrap_or_default();
    assert!(
        host.starts_with("backend.example:"),
        "Host upstream: {host}"
    );
}

#[test]
fn consistent_hashing_sticks_by_header_cookie_and_ip() {
    let kong = Kong::start("");
    let instances: Vec<Instance> = ["a", "b", "c"].iter().map(|n| Instance::start(n)).collect();
    let targets: Vec<(String, u32)> = instances.iter().map(|i| (i.target(), 100)).collect();
    balanced(
        &kong,
        "by-header.test",
        json!({"hash_on": "header", "hash_on_header": "x-user"}),
        &targets,
        "/h",
    );
    let mut seen = std::collections::HashSet::new();
    for user in 0..30 {
        let u = format!("user-{user}");
        let first = who(&kong, "/h", &[("x-user", &u)]);
        for _ in 0..3 {
            assert_eq!(who(&kong, "/h", &[("x-user", &u)]), first, "{u} moved");
        }
        seen.insert(first);
    }
    assert!(seen.len() >= 2, "30 users all on {seen:?}");

    balanced(
        &kong,
        "by-cookie.test",
        json!({"hash_on": "cookie", "hash_on_cookie": "sticky", "hash_on_cookie_path": "/c"}),
        &targets,
        "/c",
    );
    let r = send("GET", &kong.proxy("/c"), &[], None);
    let set = r
        .header("set-cookie")
        .expect("Set-Cookie for a new client")
        .to_owned();
    assert!(set.starts_with("sticky="), "{set}");
    assert!(set.contains("; Path=/c; Same-Site=Lax; HttpOnly"), "{set}");
    let cookie = set.split(';').next().expect("pair").to_owned();
    let first = who(&kong, "/c", &[("cookie", &cookie)]);
    for _ in 0..10 {
        let r = send("GET", &kong.proxy("/c"), &[("cookie", &cookie)], None);
        assert_eq!(r.header("x-instance"), Some(first.as_str()));
        assert!(r.header("set-cookie").is_none(), "cookie set again");
    }

    balanced(
        &kong,
        "by-ip.test",
        json!({"hash_on": "ip"}),
        &targets,
        "/ip",
    );
    let first = who(&kong, "/ip", &[]);
    for _ in 0..20 {
        assert_eq!(who(&kong, "/ip", &[]), first);
    }
}

#[test]
fn least_connections_prefers_the_idle_target() {
    let kong = Kong::start("");
    let a = Instance::start("a");
    let b = Instance::start("b");
    balanced(
        &kong,
        "least.test",
        json!({"algorithm": "least-connections"}),
        &[(a.target(), 100), (b.target(), 100)],
        "/lc",
    );
    let url = kong.proxy("/lc/delay/1500");
    let base = a.hits() + b.hits();
    let slow = std::thread::spawn(move || send("GET", &url, &[], None));
    // Wait until the slow request is in flight on one of them.
    assert!(wait_until(Duration::from_secs(5), || a.hits() + b.hits() > base));
    let busy_a = a.hits();
    let busy_b = b.hits();
    let quick: Vec<String> = (0..6).map(|_| who(&kong, "/lc", &[])).collect();
    let slow = slow.join().expect("slow request");
    assert_eq!(slow.status, 200);
    let slow_on = slow.header("x-instance").unwrap_or_default().to_owned();
    assert!(
        quick.iter().all(|q| *q != slow_on),
        "quick requests went to the busy target {slow_on}: {quick:?} (hits before: a={busy_a} b={busy_b})"
    );
}

fn health(kong: &Kong, upstream: &str) -> Value {
    let r = send(
        "GET",
        &kong.admin(&format!("/upstreams/{upstream}/health")),
        &[],
        None,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()
}

fn target_health(kong: &Kong, upstream: &str, target: &str) -> String {
    health(kong, upstream)["data"]
        .as_array()
        .and_then(|rows| rows.iter().find(|t| t["target"] == target))
        .and_then(|t| t["health"].as_str())
        .unwrap_or("missing")
        .to_owned()
}

#[test]
fn a_killed_target_trips_passive_checks_and_active_checks_bring_it_back() {
    let kong = Kong::start("");
    let a = Instance::start("a");
    let mut b = Instance::start("b");
    balanced(
        &kong,
        "checked.test",
        json!({"healthchecks": {
            "passive": {"unhealthy": {"tcp_failures": 1, "timeouts": 1}},
            "active": {"type": "http", "http_path": "/", "timeout": 1,
                       "healthy": {"interval": 0.2, "successes": 1},
                       "unhealthy": {"interval": 0.2, "tcp_failures": 1}}
        }}),
        &[(a.target(), 100), (b.target(), 100)],
        "/hc",
    );
    assert_eq!(target_health(&kong, "checked.test", &b.target()), "HEALTHY");
    assert!(wait_until(Duration::from_secs(5), || b.hits() > 0));
    b.kill();
    // Under a loop of requests, none fails: the balancer retries on the other target, and
    // once the checks trip b is out.
    for n in 0..60 {
        let r = send("GET", &kong.proxy("/hc"), &[], None);
        assert_eq!(r.status, 200, "request {n} failed with b down: {}", r.body);
        assert_eq!(r.header("x-instance"), Some("a"));
    }
    assert_eq!(
        target_health(&kong, "checked.test", &b.target()),
        "UNHEALTHY"
    );
    let data = &health(&kong, "checked.test")["data"];
    let row = data
        .as_array()
        .and_then(|rows| rows.iter().find(|t| t["target"] == b.target()))
        .expect("b's row");
    assert_eq!(row["data"]["addresses"][0]["health"], "UNHEALTHY");
    assert_eq!(row["data"]["weight"]["unavailable"], 100);
    b.revive();
    assert!(
        wait_until(Duration::from_secs(10), || target_health(
            &kong,
            "checked.test",
            &b.target()
        ) == "HEALTHY"),
        "active checks never revived b"
    );
    let before = b.hits();
    let counts = tally(&kong, "/hc", 20);
    assert!(
        b.hits() > before && counts.contains_key("b"),
        "b gets no traffic back: {counts:?}"
    );
    let bh = send(
        "GET",
        &kong.admin("/upstreams/checked.test/health?balancer_health=1"),
        &[],
        None,
    )
    .json();
    assert_eq!(bh["data"]["health"], "HEALTHY");
    assert_eq!(bh["data"]["balancer_health"], "HEALTHY");
    assert_eq!(bh["data"]["details"]["weight"]["total"], 200);
}

#[test]
fn targets_set_healthy_and_unhealthy_by_hand() {
    let kong = Kong::start("");
    let a = Instance::start("a");
    let b = Instance::start("b");
    balanced(
        &kong,
        "manual.test",
        json!({"healthchecks": {"passive": {"unhealthy": {"http_failures": 3}}}}),
        &[(a.target(), 100), (b.target(), 100)],
        "/m",
    );
    let put = |path: &str| send("PUT", &kong.admin(path), &[], None);
    let r = put(&format!(
        "/upstreams/manual.test/targets/{}/unhealthy",
        b.target()
    ));
    assert_eq!(r.status, 204, "{}", r.body);
    assert_eq!(
        target_health(&kong, "manual.test", &b.target()),
        "UNHEALTHY"
    );
    assert_eq!(tally(&kong, "/m", 10).get("a"), Some(&10));
    let r = put(&format!(
        "/upstreams/manual.test/targets/{}/healthy",
        b.target()
    ));
    assert_eq!(r.status, 204, "{}", r.body);
    assert!(tally(&kong, "/m", 10).contains_key("b"));
    // By address: ip[:port].
    let r = put(&format!(
        "/upstreams/manual.test/targets/{0}/{0}/unhealthy",
        a.target()
    ));
    assert_eq!(r.status, 204, "{}", r.body);
    assert_eq!(tally(&kong, "/m", 10).get("b"), Some(&10));
    // Both out: 503 from the balancer, as Kong.
    put(&format!(
        "/upstreams/manual.test/targets/{}/unhealthy",
        b.target()
    ));
    let r = send("GET", &kong.proxy("/m"), &[], None);
    assert_eq!(r.status, 503);
    assert_eq!(
        r.json()["message"],
        "failure to get a peer from the ring-balancer"
    );
    let bh = send(
        "GET",
        &kong.admin("/upstreams/manual.test/health?balancer_health=1"),
        &[],
        None,
    )
    .json();
    assert_eq!(bh["data"]["balancer_health"], "UNHEALTHY");
    // Unknown target: 404; unknown upstream: 404.
    assert_eq!(
        put("/upstreams/manual.test/targets/10.9.9.9:1/healthy").status,
        404
    );
    assert_eq!(
        put("/upstreams/nope.test/targets/10.9.9.9:1/healthy").status,
        404
    );

    // Without health checks there is no health checker to set.
    balanced(
        &kong,
        "unchecked.test",
        json!({}),
        &[(a.target(), 100)],
        "/u",
    );
    assert_eq!(
        target_health(&kong, "unchecked.test", &a.target()),
        "HEALTHCHECKS_OFF"
    );
    let r = put(&format!(
        "/upstreams/unchecked.test/targets/{}/unhealthy",
        a.target()
    ));
    assert_eq!(r.status, 400);
    assert_eq!(
        r.json()["message"],
        "no healthchecker found for unchecked.test"
    );
}

#[test]
fn no_target_left_answers_503() {
    let kong = Kong::start("");
    balanced(&kong, "empty.test", json!({}), &[], "/e");
    let r = send("GET", &kong.proxy("/e"), &[], None);
    assert_eq!(r.status, 503);
    assert_eq!(
        r.json()["message"],
        "failure to get a peer from the ring-balancer"
    );
    // Every target down, with retries: still 503 only once they are marked down; before, a
    // refused connection is a 502.
    let dead = Instance::start("dead");
    let target = dead.target();
    drop(dead);
    balanced(
        &kong,
        "dead.test",
        json!({"healthchecks": {"passive": {"unhealthy": {"tcp_failures": 1}}}}),
        &[(target, 100)],
        "/d",
    );
    let statuses: Vec<u16> = (0..3)
        .map(|_| send("GET", &kong.proxy("/d"), &[], None).status)
        .collect();
    assert_eq!(statuses.last(), Some(&503), "{statuses:?}");
}

#[test]
fn srv_records_give_ports_and_weights_and_ttls_are_respected() {
    let dns = DnsServer::start();
    let one = Instance::start("one");
    let two = Instance::start("two");
    let backup = Instance::start("backup");
    dns.set(
        "one.bal.test",
        vec![Rec::A("127.0.0.1".parse().expect("ip"), 60)],
    );
    dns.set(
        "two.bal.test",
        vec![Rec::A("127.0.0.1".parse().expect("ip"), 60)],
    );
    dns.set(
        "svc.bal.test",
        vec![
            Rec::Srv(10, 10, one.port(), "one.bal.test".into(), 60),
            Rec::Srv(10, 30, two.port(), "two.bal.test".into(), 60),
            Rec::Srv(20, 100, backup.port(), "one.bal.test".into(), 60),
        ],
    );
    let kong = Kong::start(&format!(
        "dns_resolver = {}\ndns_order = LAST,SRV,A\n",
        dns.addr
    ));
    balanced(
        &kong,
        "srv.test",
        json!({}),
        &[("svc.bal.test:1".to_owned(), 100)],
        "/srv",
    );
    let counts = tally(&kong, "/srv", 200);
    let (n1, n2) = (
        counts.get("one").copied().unwrap_or(0),
        counts.get("two").copied().unwrap_or(0),
    );
    assert_eq!(backup.hits(), 0, "a lower-priority SRV record got traffic");
    assert!(
        (40..=60).contains(&n1) && (140..=160).contains(&n2),
        "{counts:?}"
    );
    let row = health(&kong, "srv.test")["data"][0].clone();
    assert_eq!(row["data"]["dns"], "SRV");
    assert_eq!(row["data"]["addresses"].as_array().map(Vec::len), Some(2));
    // Host upstream: the target's name, or with use_srv_name the SRV record's target.
    let r = send("GET", &kong.proxy("/srv"), &[], None);
    let host = r.header("x-host").unwrap_or_default().to_owned();
    assert!(host.starts_with("svc.bal.test:"), "{host}");
    balanced(
        &kong,
        "srv-name.test",
        json!({"use_srv_name": true}),
        &[("svc.bal.test:1".to_owned(), 100)],
        "/byname",
    );
    for _ in 0..4 {
        let r = send("GET", &kong.proxy("/byname"), &[], None);
        let host = r.header("x-host").unwrap_or_default().to_owned();
        let expected = match r.header("x-instance") {
            Some("one") => format!("one.bal.test:{}", one.port()),
            _ => format!("two.bal.test:{}", two.port()),
        };
        assert_eq!(host, expected);
    }

    // A plain service host: resolved once per TTL, in the background, never per request.
    let first = Instance::start("first");
    let second = Instance::on(
        "second",
        SocketAddr::new(IpAddr::from([127, 0, 0, 2]), first.port()),
    );
    dns.set(
        "plain.bal.test",
        vec![Rec::A("127.0.0.1".parse().expect("ip"), 1)],
    );
    let s = admin(
        &kong,
        "POST",
        "/services",
        json!({"host": "plain.bal.test", "port": first.port()}),
    );
    let id = s["id"].as_str().expect("id").to_owned();
    admin(
        &kong,
        "POST",
        &format!("/services/{id}/routes"),
        json!({"paths": ["/plain"]}),
    );
    assert!(wait_until(Duration::from_secs(10), || send(
        "GET",
        &kong.proxy("/plain"),
        &[],
        None
    )
    .status
        == 200));
    let before = dns.queries("plain.bal.test");
    for _ in 0..30 {
        assert_eq!(who(&kong, "/plain", &[]), "first");
    }
    assert!(
        dns.queries("plain.bal.test") - before <= 4,
        "DNS asked per request"
    );
    dns.set(
        "plain.bal.test",
        vec![Rec::A("127.0.0.2".parse().expect("ip"), 1)],
    );
    assert!(
        wait_until(Duration::from_secs(6), || who(&kong, "/plain", &[])
            == "second"),
        "the new address was not picked up after the TTL"
    );
    drop(second);

    // A name that does not exist: 503 name resolution failed.
    let s = admin(
        &kong,
        "POST",
        "/services",
        json!({"host": "missing.bal.test"}),
    );
    let id = s["id"].as_str().expect("id").to_owned();
    admin(
        &kong,
        "POST",
        &format!("/services/{id}/routes"),
        json!({"paths": ["/missing"]}),
    );
    assert!(wait_until(Duration::from_secs(10), || {
        let r = send("GET", &kong.proxy("/missing"), &[], None);
        r.status == 503 && r.body.contains("name resolution failed")
    }));
    // A hostname target that does not resolve shows DNS_ERROR.
    balanced(
        &kong,
        "dnserr.test",
        json!({}),
        &[("nowhere.bal.test:80".to_owned(), 100)],
        "/nowhere",
    );
    let row = health(&kong, "dnserr.test")["data"][0].clone();
    assert_eq!(row["health"], "DNS_ERROR");
}
