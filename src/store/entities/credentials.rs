//! Credential entities of the bundled auth plugins, all owned by a consumer (deleted with it).

use serde_json::{json, Value};
use sha1::{Digest, Sha1};

use super::common::{id, schema, tags, timestamps};
use crate::store::schema::{
    Context, Doc, Field, OnDelete, Path, Record, Schema, SchemaErrors, Timestamps,
};

fn owned_by_consumer() -> Vec<(&'static str, Field)> {
    let mut fields = vec![id()];
    fields.extend(timestamps(Timestamps::CreatedOnly));
    fields.push((
        "consumer",
        Field::foreign("consumers", OnDelete::Cascade).required(),
    ));
    fields
}

/// `keyauth_credentials` (key-auth): `key` is generated when absent.
pub fn keyauth_credentials() -> Schema {
    let mut fields = owned_by_consumer();
    fields.extend([("key", Field::string().unique().auto()), tags()]);
    let mut s = schema(
        "keyauth_credentials",
        Some("key"),
        Timestamps::CreatedOnly,
        Record::new(fields),
    );
    s.ttl = true;
    s.cache_key = &["key"];
    s
}

/// `basicauth_credentials` (basic-auth): the password is stored hashed.
pub fn basicauth_credentials() -> Schema {
    let mut fields = owned_by_consumer();
    fields.extend([
        ("username", Field::string().required().unique()),
        ("password", Field::string().required()),
        tags(),
    ]);
    let mut s = schema(
        "basicauth_credentials",
        Some("username"),
        Timestamps::CreatedOnly,
        Record::new(fields),
    );
    s.cache_key = &["username"];
    s.transform = Some(hash_password);
    s
}

/// The stored form of a basic-auth password: SHA-1 hex of the password followed by the
/// consumer's id (what Kong stores, so exported credentials keep working).
pub fn hash_basicauth_password(password: &str, consumer_id: &str) -> String {
    let mut h = Sha1::new();
    h.update(password.as_bytes());
    h.update(consumer_id.as_bytes());
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

fn hash_password(input: &Doc, doc: &mut Doc) {
    if !input.contains_key("password") {
        return;
    }
    let consumer = doc
        .get("consumer")
        .and_then(|c| c.get("id"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    if let Some(Value::String(p)) = doc.get("password") {
        let hashed = hash_basicauth_password(p, &consumer);
        doc.insert("password".into(), Value::from(hashed));
    }
}

const JWT_ALGORITHMS: &[&str] = &[
    "HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256",
    "PS384", "PS512", "EdDSA",
];

/// `jwt_secrets` (jwt): `key` and `secret` are generated when absent.
pub fn jwt_secrets() -> Schema {
    let mut fields = owned_by_consumer();
    fields.extend([
        ("key", Field::string().unique().auto()),
        ("secret", Field::string().auto()),
        ("rsa_public_key", Field::string()),
        (
            "algorithm",
            Field::string()
                .default(json!("HS256"))
                .one_of(JWT_ALGORITHMS),
        ),
        tags(),
    ]);
    let record = Record::new(fields).checks(vec![crate::store::schema::EntityCheck::Custom(
        public_key_required,
    )]);
    let mut s = schema("jwt_secrets", Some("key"), Timestamps::CreatedOnly, record);
    s.cache_key = &["key"];
    s
}

/// Asymmetric algorithms verify with a public key, which must then be given and parse.
fn public_key_required(doc: &Doc, _: &Context<'_>, _: &Path, errs: &mut SchemaErrors) {
    let algorithm = doc
        .get("algorithm")
        .and_then(Value::as_str)
        .unwrap_or("HS256");
    if algorithm.starts_with("HS") {
        return;
    }
    match doc.get("rsa_public_key").and_then(Value::as_str) {
        None => errs.field(
            &Path::root().key("rsa_public_key"),
            format!("required field missing when 'algorithm' is {algorithm}"),
        ),
        Some(pem) if !pem.contains("-----BEGIN PUBLIC KEY-----") => errs.field(
            &Path::root().key("rsa_public_key"),
            "invalid key: not a PEM public key",
        ),
        Some(_) => {}
    }
}

/// `hmacauth_credentials` (hmac-auth): `secret` is generated when absent.
pub fn hmacauth_credentials() -> Schema {
    let mut fields = owned_by_consumer();
    fields.extend([
        ("username", Field::string().required().unique()),
        ("secret", Field::string().auto()),
        tags(),
    ]);
    let mut s = schema(
        "hmacauth_credentials",
        Some("username"),
        Timestamps::CreatedOnly,
        Record::new(fields),
    );
    s.cache_key = &["username"];
    s
}

/// `acls` (acl): group memberships; (consumer, group) is unique.
pub fn acls() -> Schema {
    let mut fields = owned_by_consumer();
    fields.extend([("group", Field::string().required()), tags()]);
    let mut s = schema("acls", None, Timestamps::CreatedOnly, Record::new(fields));
    s.cache_key = &["consumer", "group"];
    s
}
