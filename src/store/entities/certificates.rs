//! `certificates`, `snis` and `ca_certificates`.

use serde_json::Value;
use sha2::{Digest, Sha256};

use super::common::{id, schema, tags, timestamps};
use crate::store::schema::{
    typedefs, Context, Doc, EntityCheck, Field, OnDelete, Path, Record, Schema, SchemaErrors,
    Timestamps,
};

/// The certificates schema. `snis` is a virtual field: it manages `snis` entities.
pub fn certificates() -> Schema {
    let mut fields = vec![id()];
    fields.extend(timestamps(Timestamps::Seconds));
    fields.extend([
        (
            "cert",
            Field::string()
                .required()
                .custom("certificate", typedefs::pem_certificate),
        ),
        (
            "key",
            Field::string().required().custom("key", typedefs::pem_key),
        ),
        (
            "cert_alt",
            Field::string().custom("certificate", typedefs::pem_certificate),
        ),
        ("key_alt", Field::string().custom("key", typedefs::pem_key)),
        tags(),
    ]);
    let record = Record::new(fields).checks(vec![
        EntityCheck::AllOrNone(&["cert_alt", "key_alt"]),
        EntityCheck::Custom(keys_match),
    ]);
    let mut s = schema("certificates", None, Timestamps::Seconds, record);
    s.virtual_fields = &["snis"];
    s
}

/// Each certificate must be signed by the key stored beside it.
fn keys_match(doc: &Doc, _: &Context<'_>, _: &Path, errs: &mut SchemaErrors) {
    for (cert, key, suffix) in [("cert", "key", ""), ("cert_alt", "key_alt", " alt")] {
        let (Some(c), Some(k)) = (
            doc.get(cert).and_then(Value::as_str),
            doc.get(key).and_then(Value::as_str),
        ) else {
            continue;
        };
        if !crate::tls::key_matches_certificate(c, k) {
            errs.entity(format!("certificate{suffix} does not match key{suffix}"));
        }
    }
}

/// The snis schema.
pub fn snis() -> Schema {
    let mut fields = vec![id()];
    fields.extend(timestamps(Timestamps::Seconds));
    fields.extend([
        (
            "name",
            Field::string()
                .required()
                .unique()
                .custom("wildcard_host", typedefs::wildcard_host),
        ),
        tags(),
        (
            "certificate",
            Field::foreign("certificates", OnDelete::Cascade).required(),
        ),
    ]);
    schema(
        "snis",
        Some("name"),
        Timestamps::Seconds,
        Record::new(fields),
    )
}

/// The ca_certificates schema.
pub fn ca_certificates() -> Schema {
    let mut fields = vec![id()];
    fields.extend(timestamps(Timestamps::Seconds));
    fields.extend([
        (
            "cert",
            Field::string()
                .required()
                .custom("ca certificate", single_certificate),
        ),
        ("cert_digest", Field::string().unique()),
        tags(),
    ]);
    let mut s = schema(
        "ca_certificates",
        None,
        Timestamps::Seconds,
        Record::new(fields),
    );
    s.finish = Some(digest);
    s
}

fn single_certificate(v: &Value) -> Result<(), String> {
    typedefs::pem_certificate(v)?;
    let mut reader = v.as_str().unwrap_or_default().as_bytes();
    if rustls_pemfile::certs(&mut reader).count() != 1 {
        return Err("invalid certificate: please submit only one certificate".into());
    }
    Ok(())
}

/// `cert_digest`: the SHA-256 of the certificate's DER bytes, computed, never taken from input.
fn digest(doc: &mut Doc, _: &Context<'_>, _: &mut SchemaErrors) {
    let pem = doc.get("cert").and_then(Value::as_str).unwrap_or_default();
    let first = rustls_pemfile::certs(&mut pem.as_bytes()).next();
    let hex = match first {
        Some(Ok(der)) => Sha256::digest(der.as_ref())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>(),
        _ => return,
    };
    doc.insert("cert_digest".into(), Value::from(hex));
}
