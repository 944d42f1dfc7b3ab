//! The authentication plugins (key-auth, basic-auth, jwt, hmac-auth) and acl through the real
//! proxy: what the upstream sees on success, every documented refusal (status, body,
//! `WWW-Authenticate`), anonymous fallback and "OR" chains, consumer-scoped plugins applying
//! once their consumer authenticated, and malformed input answered with Kong's 401s.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use serde_json::{json, Value};

use crate::support::admin::admin;
use crate::support::http::{send, Reply};
use crate::support::kong::{wait_until, Kong};
use crate::support::upstream::EchoUpstream;

/// Waits until everything written so far serves: a fresh marker route answers its own 418.
fn sync(kong: &Kong) {
    static N: AtomicU32 = AtomicU32::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let path = format!("/__sync{n}");
    admin(
        kong,
        "POST",
        "/services/s/routes",
        json!({"name": format!("sync{n}"), "paths": [path]}),
    );
    admin(
        kong,
        "POST",
        &format!("/routes/sync{n}/plugins"),
        json!({"name": "request-termination", "config": {"status_code": 418}}),
    );
    let ok = wait_until(Duration::from_secs(10), || {
        send("GET", &kong.proxy(&path), &[], None).status == 418
    });
    assert!(ok, "configuration never went live");
}

/// A node with service `s` in front of an echo server.
fn node(echo: &EchoUpstream) -> Kong {
    let kong = Kong::start("");
    admin(
        &kong,
        "POST",
        "/services",
        json!({"name": "s", "url": echo.url()}),
    );
    kong
}

/// Route `name` at `/<name>` on service `s`, with `plugins` (name, config) on it.
fn route(kong: &Kong, name: &str, plugins: &[(&str, Value)]) {
    admin(
        kong,
        "POST",
        "/services/s/routes",
        json!({"name": name, "paths": [format!("/{name}")]}),
    );
    for (plugin, config) in plugins {
        admin(
            kong,
            "POST",
            &format!("/routes/{name}/plugins"),
            json!({"name": plugin, "config": config}),
        );
    }
}

/// A consumer; returns its id.
fn consumer(kong: &Kong, body: Value) -> String {
    let c = admin(kong, "POST", "/consumers", body);
    c["id"].as_str().expect("id").to_owned()
}

fn get(kong: &Kong, path: &str, headers: &[(&str, &str)]) -> Reply {
    send("GET", &kong.proxy(path), headers, None)
}

/// Asserts a refusal through Kong's error API: status, message (with a request id) and
/// challenge.
#[track_caller]
fn refused(r: &Reply, status: u16, message: &str, challenge: Option<&str>) {
    assert_eq!(r.status, status, "{}", r.body);
    let body = r.json();
    assert_eq!(body["message"], message, "{}", r.body);
    assert!(body["request_id"].is_string(), "{}", r.body);
    assert_eq!(r.header("www-authenticate"), challenge);
}

/// What the upstream received, asserting the request went through.
#[track_caller]
fn upstream(r: &Reply) -> Value {
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()
}

#[test]
fn key_auth() {
    let echo = EchoUpstream::start();
    let kong = node(&echo);
    let alice = consumer(&kong, json!({"username": "alice", "custom_id": "a-1"}));
    let cred = admin(
        &kong,
        "POST",
        "/consumers/alice/key-auth",
        json!({"key": "alice-key"}),
    );
    let cred_id = cred["id"].as_str().expect("id");
    route(&kong, "k", &[("key-auth", json!({}))]);
    route(
        &kong,
        "kh",
        &[(
            "key-auth",
            json!({"hide_credentials": true, "key_names": ["apikey", "x-key"], "key_in_body": true}),
        )],
    );
    route(
        &kong,
        "kr",
        &[("key-auth", json!({"realm": "api", "key_in_header": false}))],
    );
    route(
        &kong,
        "kp",
        &[("key-auth", json!({"run_on_preflight": false}))],
    );
    sync(&kong);

    // No key.
    let r = get(&kong, "/k", &[]);
    refused(&r, 401, "No API key found in request", Some("Key"));
    assert_eq!(
        r.header("content-type"),
        Some("application/json; charset=utf-8")
    );
    refused(
        &get(&kong, "/k?apikey=", &[]),
        401,
        "No API key found in request",
        Some("Key"),
    );
    // A lone `apikey` (no value) is no key either.
    refused(
        &get(&kong, "/k?apikey", &[]),
        401,
        "No API key found in request",
        Some("Key"),
    );
    // The error API follows Accept.
    let r = get(&kong, "/k", &[("accept", "text/plain")]);
    assert_eq!(r.status, 401);
    assert!(
        r.body
            .starts_with("No API key found in request\nrequest_id: "),
        "{}",
        r.body
    );

    // In a header: the upstream learns who called, and spoofed identity headers are replaced.
    let r = get(
        &kong,
        "/k",
        &[
            ("apikey", "alice-key"),
            ("x-consumer-username", "mallory"),
            ("x-anonymous-consumer", "true"),
        ],
    );
    let seen = upstream(&r);
    let h = &seen["headers"];
    assert_eq!(h["x-consumer-id"], alice.as_str());
    assert_eq!(h["x-consumer-username"], "alice");
    assert_eq!(h["x-consumer-custom-id"], "a-1");
    assert_eq!(h["x-credential-identifier"], cred_id);
    assert!(h.get("x-anonymous-consumer").is_none(), "{h}");
    assert_eq!(h["apikey"], "alice-key", "kept without hide_credentials");

    // In the query string.
    let seen = upstream(&get(&kong, "/k?a=1&apikey=alice-key", &[]));
    assert_eq!(seen["query"], "a=1&apikey=alice-key");

    // Unknown and duplicate keys.
    refused(
        &get(&kong, "/k", &[("apikey", "nope")]),
        401,
        "Unauthorized",
        Some("Key"),
    );
    refused(
        &get(&kong, "/k?apikey=alice-key&apikey=other", &[]),
        401,
        "Duplicate API key found",
        Some("Key"),
    );
    refused(
        &get(&kong, "/k", &[("apikey", "alice-key"), ("apikey", "other")]),
        401,
        "Duplicate API key found",
        Some("Key"),
    );

    // Realm; headers not searched.
    refused(
        &get(&kong, "/kr", &[("apikey", "alice-key")]),
        401,
        "No API key found in request",
        Some("Key realm=\"api\""),
    );
    upstream(&get(&kong, "/kr?apikey=alice-key", &[]));

    // Preflight requests pass when run_on_preflight is off, and only then.
    assert_eq!(send("OPTIONS", &kong.proxy("/kp"), &[], None).status, 200);
    assert_eq!(get(&kong, "/kp", &[]).status, 401);
    assert_eq!(send("OPTIONS", &kong.proxy("/k"), &[], None).status, 401);

    // hide_credentials strips the key wherever it was found.
    let seen = upstream(&get(&kong, "/kh", &[("x-key", "alice-key")]));
    assert!(seen["headers"].get("x-key").is_none(), "{seen}");
    let seen = upstream(&get(&kong, "/kh?a=1&apikey=alice-key&b=2", &[]));
    assert_eq!(seen["query"], "a=1&b=2");
    let seen = upstream(&get(&kong, "/kh?apikey=alice-key", &[]));
    assert_eq!(seen["query"], Value::Null);
    let form = send(
        "POST",
        &kong.proxy("/kh"),
        &[("content-type", "application/x-www-form-urlencoded")],
        Some("x=1&apikey=alice-key&y=2".into()),
    );
    let seen = upstream(&form);
    assert_eq!(seen["body"], "x=1&y=2");
    assert_eq!(seen["headers"]["content-length"], "7");
    assert_eq!(seen["headers"]["x-consumer-username"], "alice");
    let json_body = send(
        "POST",
        &kong.proxy("/kh"),
        &[("content-type", "application/json")],
        Some(json!({"apikey": "alice-key", "a": 1}).to_string()),
    );
    let seen = upstream(&json_body);
    let sent: Value = serde_json::from_str(seen["body"].as_str().expect("body")).expect("json");
    assert_eq!(sent, json!({"a": 1}));
    let multipart = "--b0undary\r\nContent-Disposition: form-data; name=\"apikey\"\r\n\r\n\
alice-key\r\n--b0undary\r\nContent-Disposition: form-data; name=\"f\"\r\n\r\nv\r\n--b0undary--\r\n";
    let seen = upstream(&send(
        "POST",
        &kong.proxy("/kh"),
        &[("content-type", "multipart/form-data; boundary=b0undary")],
        Some(multipart.into()),
    ));
    assert_eq!(
        seen["body"],
        "--b0undary\r\nContent-Disposition: form-data; name=\"f\"\r\n\r\nv\r\n--b0undary--\r\n"
    );
    // A body the plugin cannot read holds no key; a JSON number is no key.
    refused(
        &send(
            "POST",
            &kong.proxy("/kh"),
            &[("content-type", "application/json")],
            Some("{not json".into()),
        ),
        401,
        "No API key found in request",
        Some("Key"),
    );
    refused(
        &send(
            "POST",
            &kong.proxy("/kh"),
            &[("content-type", "application/json")],
            Some(r#"{"apikey": 42}"#.into()),
        ),
        401,
        "No API key found in request",
        Some("Key"),
    );
    refused(
        &send(
            "POST",
            &kong.proxy("/kh"),
            &[("content-type", "application/json")],
            Some(r#"{"apikey": ["a", "b"]}"#.into()),
        ),
        401,
        "Duplicate API key found",
        Some("Key"),
    );
    // The body is not read where key_in_body is off.
    refused(
        &send(
            "POST",
            &kong.proxy("/k"),
            &[("content-type", "application/x-www-form-urlencoded")],
            Some("apikey=alice-key".into()),
        ),
        401,
        "No API key found in request",
        Some("Key"),
    );

    // A consumer changed through the Admin API: the next requests carry what it is now (the
    // node remembers each consumer's header values, never past a change).
    admin(
        &kong,
        "PATCH",
        &format!("/consumers/{alice}"),
        json!({"username": "alice2", "custom_id": null}),
    );
    sync(&kong);
    let seen = upstream(&get(&kong, "/k", &[("apikey", "alice-key")]));
    let h = &seen["headers"];
    assert_eq!(h["x-consumer-username"], "alice2", "{h}");
    assert!(h.get("x-consumer-custom-id").is_none(), "{h}");
    assert_eq!(h["x-consumer-id"], alice.as_str());

    // A key rotated, then deleted: the old key stops working at once (the node remembers what
    // a key authenticates as only within one configuration).
    admin(
        &kong,
        "PATCH",
        &format!("/consumers/{alice}/key-auth/{cred_id}"),
        json!({"key": "alice-rotated"}),
    );
    sync(&kong);
    refused(
        &get(&kong, "/k", &[("apikey", "alice-key")]),
        401,
        "Unauthorized",
        Some("Key"),
    );
    let seen = upstream(&get(&kong, "/k", &[("apikey", "alice-rotated")]));
    assert_eq!(seen["headers"]["x-credential-identifier"], cred_id);
    admin(
        &kong,
        "DELETE",
        &format!("/consumers/{alice}/key-auth/{cred_id}"),
        Value::Null,
    );
    sync(&kong);
    refused(
        &get(&kong, "/k", &[("apikey", "alice-rotated")]),
        401,
        "Unauthorized",
        Some("Key"),
    );
}

#[test]
fn basic_auth() {
    let echo = EchoUpstream::start();
    let kong = node(&echo);
    let bob = consumer(&kong, json!({"username": "bob"}));
    let cred = admin(
        &kong,
        "POST",
        "/consumers/bob/basic-auth",
        json!({"username": "bob", "password": "open sesame"}),
    );
    // Stored as Kong stores it: SHA-1 of password + consumer id.
    let expected = {
        use sha1::Digest;
        let mut h = sha1::Sha1::new();
        h.update(format!("open sesame{bob}").as_bytes());
        h.finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    assert_eq!(cred["password"], expected.as_str());
    route(&kong, "b", &[("basic-auth", json!({}))]);
    route(
        &kong,
        "bh",
        &[(
            "basic-auth",
            json!({"hide_credentials": true, "realm": "r"}),
        )],
    );
    sync(&kong);

    let basic = |user_pass: &str| format!("Basic {}", STANDARD.encode(user_pass));
    let challenge = Some("Basic realm=\"service\"");
    refused(&get(&kong, "/b", &[]), 401, "Unauthorized", challenge);

    let good = basic("bob:open sesame");
    let seen = upstream(&get(&kong, "/b", &[("authorization", &good)]));
    assert_eq!(seen["headers"]["x-consumer-username"], "bob");
    assert_eq!(seen["headers"]["x-consumer-id"], bob.as_str());
    assert_eq!(seen["headers"]["x-credential-identifier"], "bob");
    assert!(seen["headers"].get("x-consumer-custom-id").is_none());
    assert_eq!(seen["headers"]["authorization"], good.as_str());
    // Lower-case scheme.
    let lower = good.replacen("Basic", "basic", 1);
    upstream(&get(&kong, "/b", &[("authorization", &lower)]));

    for bad in [
        basic("bob:wrong"),
        basic("nobody:open sesame"),
        basic("bob"),
        basic(":open sesame"),
        "Basic !!!not-base64".to_owned(),
        "Basic".to_owned(),
        "Bearer abc".to_owned(),
    ] {
        let r = get(&kong, "/b", &[("authorization", &bad)]);
        refused(&r, 401, "Unauthorized", challenge);
    }

    // Proxy-Authorization first, Authorization when it names no known user.
    upstream(&get(&kong, "/b", &[("proxy-authorization", &good)]));
    upstream(&get(
        &kong,
        "/b",
        &[
            ("proxy-authorization", &basic("nobody:x")),
            ("authorization", &good),
        ],
    ));
    // A known user with a wrong password in Proxy-Authorization is final.
    refused(
        &get(
            &kong,
            "/b",
            &[
                ("proxy-authorization", &basic("bob:wrong")),
                ("authorization", &good),
            ],
        ),
        401,
        "Unauthorized",
        challenge,
    );

    // hide_credentials and realm.
    let seen = upstream(&get(&kong, "/bh", &[("authorization", &good)]));
    assert!(seen["headers"].get("authorization").is_none(), "{seen}");
    refused(
        &get(&kong, "/bh", &[]),
        401,
        "Unauthorized",
        Some("Basic realm=\"r\""),
    );
}

/// Test keys (PEM) for the asymmetric algorithms.
const RSA_KEY: &str = include_str!("fixtures/rsa-2048.key");
const RSA_PUB: &str = include_str!("fixtures/jwt/rsa-2048.pub");
const P256_KEY: &str = include_str!("fixtures/jwt/p256.key");
const P256_PUB: &str = include_str!("fixtures/jwt/p256.pub");
const P384_KEY: &str = include_str!("fixtures/jwt/p384.key");
const P384_PUB: &str = include_str!("fixtures/jwt/p384.pub");
const ED25519_KEY: &str = include_str!("fixtures/jwt/ed25519.key");
const ED25519_PUB: &str = include_str!("fixtures/jwt/ed25519.pub");

fn der(pem: &str) -> Vec<u8> {
    let key = rustls_pemfile::private_key(&mut pem.as_bytes())
        .expect("pem")
        .expect("a key");
    key.secret_der().to_vec()
}

/// Signs `signed` with `alg`: `key` is the HMAC secret or the private key PEM.
fn sign(alg: &str, key: &str, signed: &[u8]) -> Vec<u8> {
    use ring::signature as sig;
    let rng = ring::rand::SystemRandom::new();
    let hmac = |algorithm| {
        let k = ring::hmac::Key::new(algorithm, key.as_bytes());
        ring::hmac::sign(&k, signed).as_ref().to_vec()
    };
    let rsa = |padding: &'static dyn sig::RsaEncoding| {
        let pair = sig::RsaKeyPair::from_pkcs8(&der(key)).expect("rsa key");
        let mut out = vec![0; pair.public().modulus_len()];
        pair.sign(padding, &rng, signed, &mut out).expect("sign");
        out
    };
    let ecdsa = |algorithm| {
        let pair = sig::EcdsaKeyPair::from_pkcs8(algorithm, &der(key), &rng).expect("ec key");
        pair.sign(&rng, signed).expect("sign").as_ref().to_vec()
    };
    match alg {
        "HS256" => hmac(ring::hmac::HMAC_SHA256),
        "HS384" => hmac(ring::hmac::HMAC_SHA384),
        "HS512" => hmac(ring::hmac::HMAC_SHA512),
        "RS256" => rsa(&sig::RSA_PKCS1_SHA256),
        "RS384" => rsa(&sig::RSA_PKCS1_SHA384),
        "RS512" => rsa(&sig::RSA_PKCS1_SHA512),
        "PS256" => rsa(&sig::RSA_PSS_SHA256),
        "PS512" => rsa(&sig::RSA_PSS_SHA512),
        "ES256" => ecdsa(&sig::ECDSA_P256_SHA256_FIXED_SIGNING),
        "ES384" => ecdsa(&sig::ECDSA_P384_SHA384_FIXED_SIGNING),
        "EdDSA" => {
            let pair = sig::Ed25519KeyPair::from_pkcs8_maybe_unchecked(&der(key)).expect("ed key");
            pair.sign(signed).as_ref().to_vec()
        }
        other => panic!("no signer for {other}"),
    }
}

/// A token with `header` and `claims`, signed with `alg` and `key`.
fn jwt_with(header: &Value, claims: &Value, alg: &str, key: &str) -> String {
    let signed = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let signature = sign(alg, key, signed.as_bytes());
    format!("{signed}.{}", URL_SAFE_NO_PAD.encode(signature))
}

fn jwt(claims: &Value, alg: &str, key: &str) -> String {
    jwt_with(&json!({"typ": "JWT", "alg": alg}), claims, alg, key)
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Asserts a jwt refusal: 401, exact compact JSON body, challenge.
#[track_caller]
fn jwt_refused(r: &Reply, body: Value, challenge: &str) {
    assert_eq!(r.status, 401, "{}", r.body);
    assert_eq!(r.body, body.to_string());
    assert_eq!(
        r.header("content-type"),
        Some("application/json; charset=utf-8")
    );
    assert_eq!(r.header("www-authenticate"), Some(challenge));
}

#[test]
fn jwt_auth() {
    let echo = EchoUpstream::start();
    let kong = node(&echo);
    consumer(&kong, json!({"username": "jane"}));
    let secret = |body: Value| admin(&kong, "POST", "/consumers/jane/jwt", body);
    secret(json!({"key": "hs", "secret": "hs-secret"}));
    let asymmetric = [
        ("RS256", RSA_KEY, RSA_PUB),
        ("RS384", RSA_KEY, RSA_PUB),
        ("RS512", RSA_KEY, RSA_PUB),
        ("PS256", RSA_KEY, RSA_PUB),
        ("PS512", RSA_KEY, RSA_PUB),
        ("ES256", P256_KEY, P256_PUB),
        ("ES384", P384_KEY, P384_PUB),
        ("EdDSA", ED25519_KEY, ED25519_PUB),
    ];
    for (alg, _, public) in asymmetric {
        secret(json!({"key": format!("k-{alg}"), "algorithm": alg, "rsa_public_key": public}));
    }
    for alg in ["HS384", "HS512"] {
        secret(json!({"key": format!("k-{alg}"), "algorithm": alg, "secret": "s3cr3t"}));
    }
    // For secret_is_base64: the stored secret is the base64url of the signing secret.
    secret(json!({"key": "b64", "secret": URL_SAFE_NO_PAD.encode("raw secret")}));
    route(&kong, "j", &[("jwt", json!({}))]);
    route(
        &kong,
        "jc",
        &[(
            "jwt",
            json!({"claims_to_verify": ["exp", "nbf"], "maximum_expiration": 3600}),
        )],
    );
    route(
        &kong,
        "jn",
        &[(
            "jwt",
            json!({"cookie_names": ["crumble"], "uri_param_names": ["token"],
                   "header_names": ["x-token"], "realm": "jr", "key_claim_name": "kid"}),
        )],
    );
    route(&kong, "jb", &[("jwt", json!({"secret_is_base64": true}))]);
    sync(&kong);

    let bearer = |t: &str| format!("Bearer {t}");
    let invalid = "Bearer error=\"invalid_token\"";
    let good = jwt(&json!({"iss": "hs"}), "HS256", "hs-secret");

    // Every algorithm, in the Authorization header.
    let seen = upstream(&get(&kong, "/j", &[("authorization", &bearer(&good))]));
    assert_eq!(seen["headers"]["x-consumer-username"], "jane");
    assert_eq!(seen["headers"]["x-credential-identifier"], "hs");
    assert_eq!(seen["headers"]["authorization"], bearer(&good).as_str());
    for (alg, private, _) in asymmetric {
        let token = jwt(&json!({"iss": format!("k-{alg}")}), alg, private);
        let seen = upstream(&get(&kong, "/j", &[("authorization", &bearer(&token))]));
        assert_eq!(
            seen["headers"]["x-credential-identifier"],
            format!("k-{alg}")
        );
    }
    for alg in ["HS384", "HS512"] {
        let token = jwt(&json!({"iss": format!("k-{alg}")}), alg, "s3cr3t");
        upstream(&get(&kong, "/j", &[("authorization", &bearer(&token))]));
    }
    // In the query string.
    upstream(&get(&kong, &format!("/j?jwt={good}"), &[]));

    // No token, several, unusable ones.
    jwt_refused(
        &get(&kong, "/j", &[]),
        json!({"message": "Unauthorized"}),
        "Bearer",
    );
    let other = jwt(&json!({"iss": "hs", "x": 1}), "HS256", "hs-secret");
    jwt_refused(
        &get(
            &kong,
            &format!("/j?jwt={other}"),
            &[("authorization", &bearer(&good))],
        ),
        json!({"message": "Multiple tokens provided"}),
        invalid,
    );
    // The same token twice counts once.
    upstream(&get(
        &kong,
        &format!("/j?jwt={good}"),
        &[("authorization", &bearer(&good))],
    ));
    jwt_refused(
        &get(&kong, "/j?jwt", &[]),
        json!({"message": "Unrecognizable token"}),
        invalid,
    );

    // Malformed tokens: Kong's "Bad token" reasons, never a crash.
    let h = |v: Value| URL_SAFE_NO_PAD.encode(v.to_string());
    let claims = h(json!({"iss": "hs"}));
    for (token, reason) in [
        ("abc".to_owned(), "invalid JSON"),
        ("a.b".to_owned(), "invalid JSON"),
        (format!("!!.{claims}.sig"), "invalid JSON"),
        (
            format!("{}.{claims}.sig", URL_SAFE_NO_PAD.encode("not json")),
            "invalid JSON",
        ),
        (
            format!("{}.{claims}.sig", h(json!({"alg": "none"}))),
            "invalid alg",
        ),
        (
            format!("{}.{claims}.sig", h(json!({"alg": "HS1024"}))),
            "invalid alg",
        ),
        (
            format!("{}.{claims}.sig", h(json!({"typ": "JWT"}))),
            "invalid alg",
        ),
        (
            format!("{}.{}.sig", h(json!({"alg": "HS256"})), h(json!(7))),
            "invalid claims",
        ),
        (
            format!("{}.{claims}.s!g", h(json!({"alg": "HS256"}))),
            "invalid signature",
        ),
    ] {
        jwt_refused(
            &get(&kong, "/j", &[("authorization", &bearer(&token))]),
            json!({"message": format!("Bad token; {reason}")}),
            invalid,
        );
    }
    let cases = [
        (
            jwt(&json!({"sub": "x"}), "HS256", "hs-secret"),
            "No mandatory 'iss' in claims",
        ),
        (
            jwt(&json!({"iss": ""}), "HS256", "hs-secret"),
            "Invalid 'iss' in claims",
        ),
        (
            jwt(&json!({"iss": "who"}), "HS256", "hs-secret"),
            "No credentials found for given 'iss'",
        ),
        // The credential is HS256; the token claims RS256.
        (
            jwt_with(
                &json!({"alg": "RS256"}),
                &json!({"iss": "hs"}),
                "HS256",
                "hs-secret",
            ),
            "Invalid algorithm",
        ),
        (
            jwt(&json!({"iss": "hs"}), "HS256", "wrong"),
            "Invalid signature",
        ),
    ];
    for (token, message) in cases {
        jwt_refused(
            &get(&kong, "/j", &[("authorization", &bearer(&token))]),
            json!({ "message": message }),
            invalid,
        );
    }
    // An ES256 signature of the wrong size and an RSA signature on an EC key.
    let es = jwt(&json!({"iss": "k-ES256"}), "ES256", P256_KEY);
    let (signed, _) = es.rsplit_once('.').expect("three parts");
    let short = format!("{signed}.{}", URL_SAFE_NO_PAD.encode([1u8; 10]));
    jwt_refused(
        &get(&kong, "/j", &[("authorization", &bearer(&short))]),
        json!({"message": "Invalid signature"}),
        invalid,
    );
    let wrong_key = jwt_with(
        &json!({"alg": "ES256"}),
        &json!({"iss": "k-ES256"}),
        "ES384",
        P384_KEY,
    );
    jwt_refused(
        &get(&kong, "/j", &[("authorization", &bearer(&wrong_key))]),
        json!({"message": "Invalid signature"}),
        invalid,
    );

    // Registered claims.
    let t = now();
    let with = |claims: Value| jwt(&claims, "HS256", "hs-secret");
    upstream(&get(
        &kong,
        &format!(
            "/jc?jwt={}",
            with(json!({"iss": "hs", "exp": t + 60, "nbf": t - 5}))
        ),
        &[],
    ));
    for (claims, errors) in [
        (
            json!({"iss": "hs", "exp": t - 1, "nbf": t}),
            json!({"exp": "token expired"}),
        ),
        (
            json!({"iss": "hs", "exp": t + 60, "nbf": t + 60}),
            json!({"nbf": "token not valid yet"}),
        ),
        (
            json!({"iss": "hs", "exp": "soon", "nbf": t}),
            json!({"exp": "must be a number"}),
        ),
        (
            json!({"iss": "hs", "exp": t - 1, "nbf": t + 60}),
            json!({"exp": "token expired", "nbf": "token not valid yet"}),
        ),
        (
            json!({"iss": "hs", "exp": t + 7200, "nbf": t}),
            json!({"exp": "exceeds maximum allowed expiration"}),
        ),
    ] {
        jwt_refused(
            &get(&kong, &format!("/jc?jwt={}", with(claims)), &[]),
            errors,
            invalid,
        );
    }

    // Custom places, key claim in the token header, realm.
    let kid = jwt_with(
        &json!({"alg": "HS256", "kid": "hs"}),
        &json!({}),
        "HS256",
        "hs-secret",
    );
    upstream(&get(
        &kong,
        "/jn",
        &[("cookie", &format!("a=1; crumble={kid}; b=2"))],
    ));
    upstream(&get(&kong, &format!("/jn?token={kid}"), &[]));
    upstream(&get(&kong, "/jn", &[("x-token", &bearer(&kid))]));
    jwt_refused(
        &get(&kong, "/jn", &[("authorization", &bearer(&kid))]),
        json!({"message": "Unauthorized"}),
        "Bearer realm=\"jr\"",
    );
    jwt_refused(
        &get(&kong, "/jn", &[("x-token", &bearer(&good))]),
        json!({"message": "No mandatory 'kid' in claims"}),
        "Bearer realm=\"jr\", error=\"invalid_token\"",
    );

    // secret_is_base64: signed with the decoded secret.
    let b64 = jwt(&json!({"iss": "b64"}), "HS256", "raw secret");
    upstream(&get(&kong, &format!("/jb?jwt={b64}"), &[]));
    // "hs-secret" is no base64url (nine characters).
    jwt_refused(
        &get(&kong, &format!("/jb?jwt={good}"), &[]),
        json!({"message": "Invalid key/secret"}),
        invalid,
    );

    // maximum_expiration needs `exp` verified.
    let r = send(
        "POST",
        &kong.admin("/plugins"),
        &[("content-type", "application/json")],
        Some(json!({"name": "jwt", "config": {"maximum_expiration": 60}}).to_string()),
    );
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(
        r.json()["fields"]["config"]["claims_to_verify"],
        "expected to contain: exp"
    );
}

/// `hmac username="…", algorithm="…", headers="…", signature="…"` over `signing`.
fn hmac_header(user: &str, alg: &str, headers: &str, secret: &str, signing: &str) -> String {
    let algorithm = match alg {
        "hmac-sha1" => ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
        "hmac-sha256" => ring::hmac::HMAC_SHA256,
        "hmac-sha384" => ring::hmac::HMAC_SHA384,
        _ => ring::hmac::HMAC_SHA512,
    };
    let key = ring::hmac::Key::new(algorithm, secret.as_bytes());
    let signature = STANDARD.encode(ring::hmac::sign(&key, signing.as_bytes()));
    format!(
        r#"hmac username="{user}", algorithm="{alg}", headers="{headers}", signature="{signature}""#
    )
}

fn http_date(offset: i64) -> String {
    let at = if offset >= 0 {
        SystemTime::now() + Duration::from_secs(offset as u64)
    } else {
        SystemTime::now() - Duration::from_secs(offset.unsigned_abs())
    };
    httpdate::fmt_http_date(at)
}

#[test]
fn hmac_auth() {
    let echo = EchoUpstream::start();
    let kong = node(&echo);
    consumer(&kong, json!({"username": "hank"}));
    admin(
        &kong,
        "POST",
        "/consumers/hank/hmac-auth",
        json!({"username": "hank", "secret": "hmac-secret"}),
    );
    route(&kong, "h", &[("hmac-auth", json!({}))]);
    route(
        &kong,
        "hb",
        &[(
            "hmac-auth",
            json!({"validate_request_body": true, "enforce_headers": ["date"],
                   "algorithms": ["hmac-sha256"], "hide_credentials": true,
                   "realm": "hr", "clock_skew": 60}),
        )],
    );
    sync(&kong);

    let date = http_date(0);
    let sign_date = |alg: &str, secret: &str| {
        hmac_header("hank", alg, "date", secret, &format!("date: {date}"))
    };
    let challenge = Some("hmac");

    // Every algorithm; the upstream learns the user.
    for alg in ["hmac-sha1", "hmac-sha256", "hmac-sha384", "hmac-sha512"] {
        let auth = sign_date(alg, "hmac-secret");
        let seen = upstream(&get(
            &kong,
            "/h",
            &[("date", &date), ("authorization", &auth)],
        ));
        assert_eq!(seen["headers"]["x-consumer-username"], "hank");
        assert_eq!(seen["headers"]["x-credential-identifier"], "hank");
        assert_eq!(seen["headers"]["authorization"], auth.as_str());
    }
    // request-line and @request-target, with X-Date; Proxy-Authorization.
    let signing = format!("x-date: {date}\nGET /h/x?a=1 HTTP/1.1\n@request-target: get /h/x?a=1");
    let auth = hmac_header(
        "hank",
        "hmac-sha256",
        "x-date request-line @request-target",
        "hmac-secret",
        &signing,
    );
    upstream(&get(
        &kong,
        "/h/x?a=1",
        &[("x-date", &date), ("proxy-authorization", &auth)],
    ));
    // The same signature does not fit another path.
    refused(
        &get(
            &kong,
            "/h/y?a=1",
            &[("x-date", &date), ("proxy-authorization", &auth)],
        ),
        401,
        "HMAC signature does not match",
        challenge,
    );

    // Refusals.
    let good = sign_date("hmac-sha256", "hmac-secret");
    refused(
        &get(&kong, "/h", &[("date", &date)]),
        401,
        "Unauthorized",
        challenge,
    );
    let no_date = "HMAC signature cannot be verified, a valid date or x-date header is required for HMAC Authentication";
    refused(
        &get(&kong, "/h", &[("authorization", &good)]),
        401,
        no_date,
        challenge,
    );
    for stale in [http_date(-400), http_date(400), "yesterday".to_owned()] {
        refused(
            &get(&kong, "/h", &[("date", &stale), ("authorization", &good)]),
            401,
            no_date,
            challenge,
        );
    }
    let cannot = "HMAC signature cannot be verified";
    for auth in [
        hmac_header(
            "nobody",
            "hmac-sha256",
            "date",
            "hmac-secret",
            &format!("date: {date}"),
        ),
        hmac_header(
            "hank",
            "hmac-md5",
            "date",
            "hmac-secret",
            &format!("date: {date}"),
        ),
        "hmac username=\"hank\"".to_owned(),
        "Basic dXNlcjpwYXNz".to_owned(),
    ] {
        refused(
            &get(&kong, "/h", &[("date", &date), ("authorization", &auth)]),
            401,
            cannot,
            challenge,
        );
    }
    let not_same = "HMAC signature does not match";
    let wrong = sign_date("hmac-sha256", "other-secret");
    refused(
        &get(&kong, "/h", &[("date", &date), ("authorization", &wrong)]),
        401,
        not_same,
        challenge,
    );
    let garbage = good.replace("signature=\"", "signature=\"!!");
    refused(
        &get(&kong, "/h", &[("date", &date), ("authorization", &garbage)]),
        401,
        not_same,
        challenge,
    );

    // enforce_headers, algorithms, body digest, hide_credentials, realm.
    let post = |auth: &str, digest: Option<&str>, body: &str| {
        let mut headers = vec![("date", date.as_str()), ("authorization", auth)];
        headers.extend(digest.map(|d| ("digest", d)));
        send("POST", &kong.proxy("/hb"), &headers, Some(body.to_owned()))
    };
    let body = r#"{"a":1}"#;
    let digest = format!(
        "SHA-256={}",
        STANDARD.encode(ring::digest::digest(&ring::digest::SHA256, body.as_bytes()))
    );
    let seen = upstream(&post(&good, Some(&digest), body));
    assert!(seen["headers"].get("authorization").is_none(), "{seen}");
    assert_eq!(seen["body"], body);
    let realm = Some("hmac realm=\"hr\"");
    refused(
        &post(&good, Some("SHA-256=AAAA"), body),
        401,
        not_same,
        realm,
    );
    refused(&post(&good, None, body), 401, not_same, realm);
    upstream(&post(&good, None, ""));
    let no_date_signed = hmac_header("hank", "hmac-sha256", "x-date", "hmac-secret", "x-date:");
    refused(
        &post(&no_date_signed, Some(&digest), body),
        401,
        cannot,
        realm,
    );
    refused(
        &post(&sign_date("hmac-sha1", "hmac-secret"), Some(&digest), body),
        401,
        cannot,
        realm,
    );

    // clock_skew must be positive.
    let r = send(
        "POST",
        &kong.admin("/plugins"),
        &[("content-type", "application/json")],
        Some(json!({"name": "hmac-auth", "config": {"clock_skew": -10}}).to_string()),
    );
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(
        r.json()["fields"]["config"]["clock_skew"],
        "value must be greater than 0"
    );
}

#[test]
fn acl() {
    let echo = EchoUpstream::start();
    let kong = node(&echo);
    for (name, groups) in [
        ("ann", &["admin", "dev"][..]),
        ("ben", &["ops"][..]),
        ("cat", &[][..]),
    ] {
        consumer(&kong, json!({ "username": name }));
        admin(
            &kong,
            "POST",
            &format!("/consumers/{name}/key-auth"),
            json!({ "key": format!("{name}-key") }),
        );
        for group in groups {
            admin(
                &kong,
                "POST",
                &format!("/consumers/{name}/acls"),
                json!({ "group": group }),
            );
        }
    }
    consumer(&kong, json!({"username": "anonymous"}));
    let key_auth = ("key-auth", json!({}));
    route(
        &kong,
        "allow",
        &[key_auth.clone(), ("acl", json!({"allow": ["admin"]}))],
    );
    route(
        &kong,
        "deny",
        &[key_auth.clone(), ("acl", json!({"deny": ["ops"]}))],
    );
    route(
        &kong,
        "hidden",
        &[
            key_auth,
            ("acl", json!({"allow": ["dev"], "hide_groups_header": true})),
        ],
    );
    route(
        &kong,
        "anon",
        &[
            ("key-auth", json!({"anonymous": "anonymous"})),
            ("acl", json!({"allow": ["admin"]})),
        ],
    );
    route(&kong, "alone", &[("acl", json!({"allow": ["admin"]}))]);
    sync(&kong);

    let key = |name: &str| format!("{name}-key");
    let blocked = "You cannot consume this service";
    // Groups in the order the datastore lists them (as in Kong).
    let groups = |seen: &Value| {
        let mut g: Vec<String> = seen["headers"]["x-consumer-groups"]
            .as_str()
            .expect("groups header")
            .split(", ")
            .map(str::to_owned)
            .collect();
        g.sort();
        g
    };
    let seen = upstream(&get(&kong, "/allow", &[("apikey", &key("ann"))]));
    assert_eq!(groups(&seen), ["admin", "dev"]);
    refused(
        &get(&kong, "/allow", &[("apikey", &key("ben"))]),
        403,
        blocked,
        None,
    );
    // A credential without groups under an allow list: 403.
    refused(
        &get(&kong, "/allow", &[("apikey", &key("cat"))]),
        403,
        blocked,
        None,
    );
    refused(
        &get(&kong, "/deny", &[("apikey", &key("ben"))]),
        403,
        blocked,
        None,
    );
    let seen = upstream(&get(&kong, "/deny", &[("apikey", &key("ann"))]));
    assert_eq!(groups(&seen), ["admin", "dev"]);
    upstream(&get(&kong, "/deny", &[("apikey", &key("cat"))]));
    let seen = upstream(&get(&kong, "/hidden", &[("apikey", &key("ann"))]));
    assert!(seen["headers"].get("x-consumer-groups").is_none(), "{seen}");
    // The anonymous consumer has no groups and no credential: 401.
    refused(&get(&kong, "/anon", &[]), 401, "Unauthorized", None);
    upstream(&get(&kong, "/anon", &[("apikey", &key("ann"))]));
    // Nobody identified at all: 401.
    refused(&get(&kong, "/alone", &[]), 401, "Unauthorized", None);

    // Exactly one of allow / deny.
    for config in [json!({"allow": ["a"], "deny": ["b"]}), json!({})] {
        let r = send(
            "POST",
            &kong.admin("/plugins"),
            &[("content-type", "application/json")],
            Some(json!({"name": "acl", "config": config}).to_string()),
        );
        assert_eq!(r.status, 400, "{}", r.body);
        let entity = r.json()["fields"]["@entity"].clone();
        assert!(
            entity.as_array().expect("list").contains(&json!(
                "exactly one of these fields must be non-empty: 'config.allow', 'config.deny'"
            )),
            "{entity}"
        );
    }
}

#[test]
fn anonymous_and_logical_or() {
    let echo = EchoUpstream::start();
    let kong = node(&echo);
    let anon = consumer(&kong, json!({"username": "anonymous"}));
    consumer(&kong, json!({"username": "alice"}));
    consumer(&kong, json!({"username": "bob"}));
    admin(
        &kong,
        "POST",
        "/consumers/alice/key-auth",
        json!({"key": "alice-key"}),
    );
    admin(
        &kong,
        "POST",
        "/consumers/bob/basic-auth",
        json!({"username": "bob", "password": "pw"}),
    );
    let or = json!({"anonymous": anon});
    route(&kong, "or", &[("key-auth", or.clone()), ("basic-auth", or)]);
    // The anonymous consumer is turned away on this route only.
    admin(
        &kong,
        "POST",
        "/routes/or/plugins",
        json!({"name": "request-termination", "consumer": {"id": anon},
               "config": {"status_code": 401, "message": "log in first"}}),
    );
    route(
        &kong,
        "anon",
        &[("key-auth", json!({"anonymous": "anonymous"}))],
    );
    route(
        &kong,
        "missing",
        &[("key-auth", json!({"anonymous": "ghost"}))],
    );
    route(
        &kong,
        "and",
        &[("key-auth", json!({})), ("basic-auth", json!({}))],
    );
    sync(&kong);

    let basic = format!("Basic {}", STANDARD.encode("bob:pw"));
    // Either method works; a failed first method does not stop the second.
    let seen = upstream(&get(&kong, "/or", &[("apikey", "alice-key")]));
    assert_eq!(seen["headers"]["x-consumer-username"], "alice");
    let seen = upstream(&get(&kong, "/or", &[("authorization", &basic)]));
    assert_eq!(seen["headers"]["x-consumer-username"], "bob");
    assert_eq!(seen["headers"]["x-credential-identifier"], "bob");
    assert!(
        seen["headers"].get("x-anonymous-consumer").is_none(),
        "{seen}"
    );
    // Both: the first success stands, the later plugin steps aside.
    let seen = upstream(&get(
        &kong,
        "/or",
        &[("apikey", "alice-key"), ("authorization", &basic)],
    ));
    assert_eq!(seen["headers"]["x-consumer-username"], "alice");
    // Neither: anonymous, which the consumer-scoped request-termination refuses.
    let r = get(&kong, "/or", &[]);
    assert_eq!(r.status, 401);
    assert_eq!(r.json(), json!({"message": "log in first"}));

    // Anonymous passes through, marked as such, with no credential.
    let seen = upstream(&get(
        &kong,
        "/anon",
        &[("x-credential-identifier", "spoofed"), ("apikey", "wrong")],
    ));
    let h = &seen["headers"];
    assert_eq!(h["x-anonymous-consumer"], "true");
    assert_eq!(h["x-consumer-username"], "anonymous");
    assert_eq!(h["x-consumer-id"], anon.as_str());
    assert!(h.get("x-credential-identifier").is_none(), "{h}");

    // An anonymous consumer that does not exist is a server error, told as Kong tells it.
    refused(
        &get(&kong, "/missing", &[]),
        500,
        "anonymous consumer ghost is configured but doesn't exist",
        None,
    );

    // Without anonymous every plugin must pass ("AND"); the last to authenticate is seen.
    refused(
        &get(&kong, "/and", &[("apikey", "alice-key")]),
        401,
        "Unauthorized",
        Some("Basic realm=\"service\""),
    );
    refused(
        &get(&kong, "/and", &[("authorization", &basic)]),
        401,
        "No API key found in request",
        Some("Key"),
    );
    let seen = upstream(&get(
        &kong,
        "/and",
        &[("apikey", "alice-key"), ("authorization", &basic)],
    ));
    assert_eq!(seen["headers"]["x-consumer-username"], "bob");
}

#[test]
fn consumer_scoped_plugins_apply_once_the_consumer_is_known() {
    let echo = EchoUpstream::start();
    let kong = node(&echo);
    let mut ids = Vec::new();
    for name in ["alice", "bob", "carl"] {
        ids.push(consumer(&kong, json!({ "username": name })));
        admin(
            &kong,
            "POST",
            &format!("/consumers/{name}/key-auth"),
            json!({ "key": format!("{name}-key") }),
        );
    }
    route(&kong, "c", &[("key-auth", json!({}))]);
    route(&kong, "other", &[("key-auth", json!({}))]);
    // Alice everywhere; Bob on route c only.
    admin(
        &kong,
        "POST",
        "/plugins",
        json!({"name": "request-termination", "consumer": {"id": ids[0]},
               "config": {"status_code": 418, "message": "alice stops here"}}),
    );
    admin(
        &kong,
        "POST",
        "/routes/c/plugins",
        json!({"name": "request-termination", "consumer": {"id": ids[1]},
               "config": {"status_code": 451, "message": "bob stops here"}}),
    );
    sync(&kong);

    let r = get(&kong, "/c", &[("apikey", "alice-key")]);
    assert_eq!(
        (r.status, r.json()),
        (418, json!({"message": "alice stops here"}))
    );
    let r = get(&kong, "/other", &[("apikey", "alice-key")]);
    assert_eq!(r.status, 418);
    let r = get(&kong, "/c", &[("apikey", "bob-key")]);
    assert_eq!(
        (r.status, r.json()),
        (451, json!({"message": "bob stops here"}))
    );
    upstream(&get(&kong, "/other", &[("apikey", "bob-key")]));
    upstream(&get(&kong, "/c", &[("apikey", "carl-key")]));
    // Unidentified requests never reach them.
    refused(
        &get(&kong, "/c", &[]),
        401,
        "No API key found in request",
        Some("Key"),
    );

    // Auth plugins cannot be scoped to a consumer themselves.
    for name in ["key-auth", "basic-auth", "jwt", "hmac-auth"] {
        let r = send(
            "POST",
            &kong.admin("/plugins"),
            &[("content-type", "application/json")],
            Some(json!({"name": name, "consumer": {"id": ids[2]}}).to_string()),
        );
        assert_eq!(r.status, 400, "{name}: {}", r.body);
        assert!(r.body.contains("consumer"), "{}", r.body);
    }
    let r = send(
        "POST",
        &kong.admin("/plugins"),
        &[("content-type", "application/json")],
        Some(
            json!({"name": "acl", "consumer": {"id": ids[2]}, "config": {"allow": ["x"]}})
                .to_string(),
        ),
    );
    assert_eq!(r.status, 400, "{}", r.body);
    let r = send(
        "POST",
        &kong.admin("/plugins"),
        &[("content-type", "application/json")],
        Some(json!({"name": "key-auth", "config": {"key_names": ["bad name"]}}).to_string()),
    );
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("bad header name 'bad name'"), "{}", r.body);
}
