//! The proxy's certificates by server name, built from the `certificates` and `snis` entities.
//!
//! A TLS client's SNI is looked up, first match wins, as Kong does:
//!
//! 1. the SNI entity with exactly that name;
//! 2. a leading wildcard: the first label replaced by `*` (`a.example.com` → `*.example.com`;
//!    only names of three labels or more have one, so `*.com` never matches);
//! 3. a trailing wildcard: the last label replaced by `*` (`example.com` → `example.*`,
//!    `www.example.com` → `www.example.*`);
//! 4. the catch-all SNI entity `*`.
//!
//! When none matches, or the client sent no SNI at all, the listener's default certificate is
//! served (not the catch-all: Kong answers a client without SNI with its default too).
//!
//! Wildcard entities are stored under the part of the name around the `*`, so each step is one
//! hash lookup on a slice of the client's name, without building the wildcard string.
//! Certificates are parsed once per content: a rebuild reuses the previous table's parsed keys
//! for certificates whose PEM did not change. A certificate that does not parse is logged and
//! left out (with its SNIs); it does not fail the rebuild.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::store::schema::Doc;
use crate::tls::keys::CertKeys;

type FastMap<V> = HashMap<Box<str>, V, foldhash::fast::RandomState>;

/// SHA-256 over a certificate entity's PEM fields: equal means "parse again is pointless".
type Fingerprint = [u8; 32];

/// Certificates by server name.
#[derive(Default)]
pub struct Certificates {
    exact: FastMap<Arc<CertKeys>>,
    /// `*.example.com`, stored as `example.com`.
    leading: FastMap<Arc<CertKeys>>,
    /// `example.*`, stored as `example`.
    trailing: FastMap<Arc<CertKeys>>,
    /// The SNI entity `*`.
    catch_all: Option<Arc<CertKeys>>,
    /// Every certificate entity by id, for reuse by the next rebuild; `None` when it did not
    /// parse (so the failure is logged once per content, not once per rebuild).
    parsed: FastMap<(Fingerprint, Option<Arc<CertKeys>>)>,
}

impl std::fmt::Debug for Certificates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Certificates")
            .field("exact", &self.exact.len())
            .field("leading", &self.leading.len())
            .field("trailing", &self.trailing.len())
            .field("catch_all", &self.catch_all.is_some())
            .field("certificates", &self.parsed.len())
            .finish()
    }
}

impl Certificates {
    /// No certificates: every client gets the default.
    pub fn empty() -> Certificates {
        Certificates::default()
    }

    /// Starts a table that may reuse `previous`'s parsed certificates.
    pub fn builder(previous: Option<&Certificates>) -> CertificatesBuilder<'_> {
        CertificatesBuilder {
            previous,
            parsed: FastMap::default(),
            snis: Vec::new(),
        }
    }

    /// The certificate for a client that asked for `sni` (lower-case, as rustls hands it
    /// over), or `None` for the default certificate.
    pub fn find(&self, sni: &str) -> Option<&Arc<CertKeys>> {
        let sni = sni.strip_suffix('.').unwrap_or(sni);
        self.exact
            .get(sni)
            .or_else(|| leading_key(sni).and_then(|k| self.leading.get(k)))
            .or_else(|| trailing_key(sni).and_then(|k| self.trailing.get(k)))
            .or(self.catch_all.as_ref())
    }

    /// How many SNI names lead to a certificate.
    pub fn names(&self) -> usize {
        self.exact.len()
            + self.leading.len()
            + self.trailing.len()
            + usize::from(self.catch_all.is_some())
    }
}

/// The leading-wildcard key of a client's name: the name without its first label, when it
/// has at least three labels (`a.example.com` → `example.com`).
pub fn leading_key(sni: &str) -> Option<&str> {
    let (first, rest) = sni.split_once('.')?;
    let (second, tail) = rest.split_once('.')?;
    (!first.is_empty() && !second.is_empty() && !tail.is_empty()).then_some(rest)
}

/// The trailing-wildcard key of a client's name: the name without its last label, when it has
/// at least two labels (`www.example.com` → `www.example`).
pub fn trailing_key(sni: &str) -> Option<&str> {
    let (head, last) = sni.rsplit_once('.')?;
    (!last.is_empty() && !head.is_empty() && !head.ends_with('.')).then_some(head)
}

/// Where an SNI entity's name goes in the table.
#[derive(Debug, PartialEq, Eq)]
enum Slot<'a> {
    Exact(&'a str),
    Leading(&'a str),
    Trailing(&'a str),
    CatchAll,
}

fn slot(name: &str) -> Slot<'_> {
    if name == "*" {
        Slot::CatchAll
    } else if let Some(rest) = name.strip_prefix("*.") {
        Slot::Leading(rest)
    } else if let Some(head) = name.strip_suffix(".*") {
        Slot::Trailing(head)
    } else {
        Slot::Exact(name.strip_suffix('.').unwrap_or(name))
    }
}

/// Collects `certificates` and `snis` pages during a store scan, then builds the table.
pub struct CertificatesBuilder<'p> {
    previous: Option<&'p Certificates>,
    parsed: FastMap<(Fingerprint, Option<Arc<CertKeys>>)>,
    /// (lower-cased name, certificate id).
    snis: Vec<(String, String)>,
}

impl CertificatesBuilder<'_> {
    /// Takes one page of `certificates` entities, parsing those not parsed before.
    pub fn certificates(&mut self, docs: &[Doc]) {
        for doc in docs {
            let Some(id) = doc.get("id").and_then(Value::as_str) else {
                continue;
            };
            let text = |field: &str| doc.get(field).and_then(Value::as_str);
            let fields = [text("cert"), text("key"), text("cert_alt"), text("key_alt")];
            let mut hasher = Sha256::new();
            for field in fields {
                // The length prefix keeps ("ab", "") and ("a", "b") apart.
                let bytes = field.unwrap_or_default().as_bytes();
                hasher.update((bytes.len() as u64).to_le_bytes());
                hasher.update(bytes);
            }
            let fingerprint: Fingerprint = hasher.finalize().into();
            let reused = self
                .previous
                .and_then(|p| p.parsed.get(id))
                .filter(|(f, _)| *f == fingerprint)
                .map(|(_, keys)| keys.clone());
            let keys = reused.unwrap_or_else(|| parse(id, fields));
            self.parsed.insert(id.into(), (fingerprint, keys));
        }
    }

    /// Takes one page of `snis` entities.
    pub fn snis(&mut self, docs: &[Doc]) {
        for doc in docs {
            let name = doc.get("name").and_then(Value::as_str);
            let certificate = doc
                .get("certificate")
                .and_then(|c| c.get("id"))
                .and_then(Value::as_str);
            if let (Some(name), Some(certificate)) = (name, certificate) {
                self.snis
                    .push((name.to_ascii_lowercase(), certificate.to_owned()));
            }
        }
    }

    /// The finished table.
    pub fn finish(self) -> Certificates {
        let mut table = Certificates {
            parsed: self.parsed,
            ..Certificates::default()
        };
        for (name, certificate) in &self.snis {
            // An SNI of a certificate that did not parse falls back to the default.
            let Some((_, Some(keys))) = table.parsed.get(certificate.as_str()) else {
                continue;
            };
            let keys = keys.clone();
            match slot(name) {
                Slot::Exact(n) => table.exact.insert(n.into(), keys),
                Slot::Leading(n) => table.leading.insert(n.into(), keys),
                Slot::Trailing(n) => table.trailing.insert(n.into(), keys),
                Slot::CatchAll => table.catch_all.replace(keys),
            };
        }
        table
    }
}

/// Parses a certificate entity's `cert`/`key` and `cert_alt`/`key_alt`; logs and gives `None`
/// when they do not make a usable certificate.
fn parse(id: &str, [cert, key, cert_alt, key_alt]: [Option<&str>; 4]) -> Option<Arc<CertKeys>> {
    let pairs = [(cert, key), (cert_alt, key_alt)]
        .into_iter()
        .filter_map(|(c, k)| c.zip(k));
    match CertKeys::from_pem(pairs) {
        Ok(Some(keys)) => Some(Arc::new(keys)),
        Ok(None) => {
            tracing::error!(certificate = id, "certificate has no cert/key; not served");
            None
        }
        Err(e) => {
            tracing::error!(certificate = id, error = %e, "certificate cannot be served; its SNIs get the default certificate");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn wildcard_keys_follow_kongs_rules() {
        assert_eq!(leading_key("a.example.com"), Some("example.com"));
        assert_eq!(leading_key("b.a.example.com"), Some("a.example.com"));
        assert_eq!(leading_key("example.com"), None, "two labels: no *.com");
        assert_eq!(leading_key("localhost"), None);
        assert_eq!(leading_key("a..com"), None);
        assert_eq!(trailing_key("example.com"), Some("example"));
        assert_eq!(trailing_key("www.example.com"), Some("www.example"));
        assert_eq!(trailing_key("localhost"), None);
        assert_eq!(trailing_key("example."), None);
    }

    #[test]
    fn entity_names_land_in_their_slot() {
        assert_eq!(slot("*"), Slot::CatchAll);
        assert_eq!(slot("*.example.com"), Slot::Leading("example.com"));
        assert_eq!(slot("example.*"), Slot::Trailing("example"));
        assert_eq!(slot("www.example.com"), Slot::Exact("www.example.com"));
        assert_eq!(slot("fqdn.test."), Slot::Exact("fqdn.test"));
    }

    fn pem(name: &str) -> (String, String) {
        let key = rcgen::KeyPair::generate().expect("key");
        let cert = rcgen::CertificateParams::new(vec![name.to_string()])
            .expect("params")
            .self_signed(&key)
            .expect("sign");
        (cert.pem(), key.serialize_pem())
    }

    fn doc(value: serde_json::Value) -> Doc {
        match value {
            Value::Object(o) => o,
            _ => unreachable!("an object"),
        }
    }

    fn cert_doc(id: &str, (cert, key): &(String, String)) -> Doc {
        doc(json!({"id": id, "cert": cert, "key": key}))
    }

    fn sni_doc(name: &str, certificate: &str) -> Doc {
        doc(json!({"id": name, "name": name, "certificate": {"id": certificate}}))
    }

    /// Builds a table of one certificate per `(certificate id, sni name)`.
    fn table(entries: &[(&str, &str)], previous: Option<&Certificates>) -> Certificates {
        let mut builder = Certificates::builder(previous);
        let certs: Vec<Doc> = entries
            .iter()
            .map(|(id, _)| cert_doc(id, &pem("x.test")))
            .collect();
        builder.certificates(&certs);
        let snis: Vec<Doc> = entries.iter().map(|(id, n)| sni_doc(n, id)).collect();
        builder.snis(&snis);
        builder.finish()
    }

    fn found<'t>(t: &'t Certificates, sni: &str) -> Option<&'t Arc<CertKeys>> {
        t.find(sni)
    }

    fn same(a: Option<&Arc<CertKeys>>, b: Option<&Arc<CertKeys>>) -> bool {
        match (a, b) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            (None, None) => true,
            _ => false,
        }
    }

    #[test]
    fn lookup_order_is_exact_leading_trailing_catch_all() {
        let t = table(
            &[
                ("exact", "www.example.com"),
                ("leading", "*.example.com"),
                ("trailing", "www.example.*"),
                ("short", "example.*"),
            ],
            None,
        );
        let by = |id: &str| t.parsed.get(id).and_then(|(_, k)| k.as_ref());
        assert!(same(found(&t, "www.example.com"), by("exact")));
        assert!(same(found(&t, "www.example.com."), by("exact")));
        assert!(same(found(&t, "api.example.com"), by("leading")));
        assert!(same(found(&t, "www.example.org"), by("trailing")));
        assert!(same(found(&t, "example.net"), by("short")));
        // One label only: `*.example.com` does not cover `a.b.example.com`.
        assert!(found(&t, "a.b.example.com").is_none());
        assert!(found(&t, "example.com").is_some_and(|k| same(Some(k), by("short"))));
        assert!(found(&t, "other.test.net").is_none());
        assert!(found(&t, "localhost").is_none());
        assert_eq!(t.names(), 4);

        let with_default = table(&[("exact", "a.test"), ("any", "*")], None);
        let any = with_default.parsed.get("any").and_then(|(_, k)| k.as_ref());
        assert!(same(found(&with_default, "unknown.test"), any));
        assert!(!same(found(&with_default, "a.test"), any));
    }

    #[test]
    fn names_are_matched_in_lower_case() {
        let t = table(&[("c", "WWW.Example.COM")], None);
        assert!(found(&t, "www.example.com").is_some());
    }

    #[test]
    fn unchanged_certificates_are_reused_and_broken_ones_skipped() {
        let pair = pem("a.test");
        let mut builder = Certificates::builder(None);
        builder.certificates(&[
            cert_doc("good", &pair),
            doc(json!({"id": "bad", "cert": "garbage", "key": "garbage"})),
        ]);
        builder.snis(&[sni_doc("a.test", "good"), sni_doc("b.test", "bad")]);
        let first = builder.finish();
        assert!(first.find("a.test").is_some());
        assert!(first.find("b.test").is_none(), "broken: the default serves");

        let mut builder = Certificates::builder(Some(&first));
        builder.certificates(&[cert_doc("good", &pair), cert_doc("other", &pem("c.test"))]);
        builder.snis(&[sni_doc("a.test", "good"), sni_doc("c.test", "other")]);
        let second = builder.finish();
        assert!(same(second.find("a.test"), first.find("a.test")), "reused");

        let mut builder = Certificates::builder(Some(&second));
        builder.certificates(&[cert_doc("good", &pem("a.test"))]);
        builder.snis(&[sni_doc("a.test", "good")]);
        let third = builder.finish();
        assert!(
            !same(third.find("a.test"), second.find("a.test")),
            "re-parsed"
        );
        assert!(third.find("c.test").is_none(), "deleted");
    }
}
