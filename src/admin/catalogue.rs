//! Which Admin API paths exist: top-level collections, nested collections, and the
//! foreign-entity endpoints derived from the schemas' foreign keys.
//!
//! One table describes them, so dispatch, `/endpoints` and the OpenAPI document agree.

use crate::store::entities;
use crate::store::schema::Schema;

/// A top-level collection: `/{path}` lists `entity`.
#[derive(Debug, Clone, Copy)]
pub struct Collection {
    /// Path segment, e.g. `key-auths`.
    pub path: &'static str,
    /// DAO name, e.g. `keyauth_credentials`.
    pub entity: &'static str,
}

/// A nested collection: `/{parent}/{p}/{name}` lists the `entity`s whose `fk` is `p`.
#[derive(Debug, Clone, Copy)]
pub struct Nested {
    /// Parent collection path.
    pub parent: &'static str,
    /// Path segment under the parent, e.g. `key-auth`.
    pub name: &'static str,
    /// Child DAO name.
    pub entity: &'static str,
    /// The child's foreign key to the parent.
    pub fk: &'static str,
}

/// Every top-level collection.
pub const COLLECTIONS: &[Collection] = &[
    Collection {
        path: "services",
        entity: "services",
    },
    Collection {
        path: "routes",
        entity: "routes",
    },
    Collection {
        path: "consumers",
        entity: "consumers",
    },
    Collection {
        path: "plugins",
        entity: "plugins",
    },
    Collection {
        path: "upstreams",
        entity: "upstreams",
    },
    Collection {
        path: "certificates",
        entity: "certificates",
    },
    Collection {
        path: "snis",
        entity: "snis",
    },
    Collection {
        path: "ca_certificates",
        entity: "ca_certificates",
    },
    Collection {
        path: "key-auths",
        entity: "keyauth_credentials",
    },
    Collection {
        path: "basic-auths",
        entity: "basicauth_credentials",
    },
    Collection {
        path: "jwts",
        entity: "jwt_secrets",
    },
    Collection {
        path: "hmac-auths",
        entity: "hmacauth_credentials",
    },
    Collection {
        path: "acls",
        entity: "acls",
    },
];

/// Every nested collection.
pub const NESTED: &[Nested] = &[
    Nested {
        parent: "services",
        name: "routes",
        entity: "routes",
        fk: "service",
    },
    Nested {
        parent: "services",
        name: "plugins",
        entity: "plugins",
        fk: "service",
    },
    Nested {
        parent: "routes",
        name: "plugins",
        entity: "plugins",
        fk: "route",
    },
    Nested {
        parent: "consumers",
        name: "plugins",
        entity: "plugins",
        fk: "consumer",
    },
    Nested {
        parent: "consumers",
        name: "key-auth",
        entity: "keyauth_credentials",
        fk: "consumer",
    },
    Nested {
        parent: "consumers",
        name: "basic-auth",
        entity: "basicauth_credentials",
        fk: "consumer",
    },
    Nested {
        parent: "consumers",
        name: "jwt",
        entity: "jwt_secrets",
        fk: "consumer",
    },
    Nested {
        parent: "consumers",
        name: "hmac-auth",
        entity: "hmacauth_credentials",
        fk: "consumer",
    },
    Nested {
        parent: "consumers",
        name: "acls",
        entity: "acls",
        fk: "consumer",
    },
    Nested {
        parent: "upstreams",
        name: "targets",
        entity: "targets",
        fk: "upstream",
    },
    Nested {
        parent: "certificates",
        name: "snis",
        entity: "snis",
        fk: "certificate",
    },
    Nested {
        parent: "certificates",
        name: "services",
        entity: "services",
        fk: "client_certificate",
    },
    Nested {
        parent: "certificates",
        name: "upstreams",
        entity: "upstreams",
        fk: "client_certificate",
    },
];

/// Foreign-entity endpoints Kong leaves out: `/snis/{sni}/certificate`.
const NO_FOREIGN_ENDPOINT: &[(&str, &str)] = &[("snis", "certificate")];

/// The collection at `path`.
pub fn collection(path: &str) -> Option<&'static Collection> {
    COLLECTIONS.iter().find(|c| c.path == path)
}

/// The nested collection `name` under `parent`.
pub fn nested(parent: &str, name: &str) -> Option<&'static Nested> {
    NESTED.iter().find(|n| n.parent == parent && n.name == name)
}

/// The schema behind a collection (every catalogued entity has one; a test pins that).
pub fn schema(c: &Collection) -> Option<&'static Schema> {
    entities::entity(c.entity)
}

/// The foreign-entity endpoint `/{collection}/{x}/{field}`: the referenced entity's schema.
pub fn foreign(c: &Collection, field: &str) -> Option<&'static Schema> {
    if NO_FOREIGN_ENDPOINT.contains(&(c.path, field)) {
        return None;
    }
    let reference = schema(c)?.field(field)?.foreign_ref()?.reference;
    entities::entity(reference)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_catalogued_entity_and_key_exists() {
        for c in COLLECTIONS {
            assert!(entities::entity(c.entity).is_some(), "{}", c.entity);
        }
        for n in NESTED {
            let child = entities::entity(n.entity).expect("child entity");
            assert!(
                child.field(n.fk).and_then(|f| f.foreign_ref()).is_some(),
                "{}.{}",
                n.entity,
                n.fk
            );
            assert!(collection(n.parent).is_some(), "{}", n.parent);
        }
    }
}
