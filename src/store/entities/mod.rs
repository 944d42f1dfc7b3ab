//! The core entities and the credential entities of the bundled auth plugins.
//!
//! Each file describes entities with [`Schema`]s; [`all`] lists them in
//! dependency order (referenced entities before the entities that reference them), which is the
//! order imports write and exports read.

mod certificates;
mod common;
mod consumers;
mod credentials;
mod plugins;
mod routes;
mod services;
mod upstreams;

use std::sync::LazyLock;

use super::schema::Schema;

static ALL: LazyLock<Vec<Schema>> = LazyLock::new(|| {
    vec![
        certificates::certificates(),
        certificates::snis(),
        certificates::ca_certificates(),
        services::services(),
        routes::routes(),
        consumers::consumers(),
        upstreams::upstreams(),
        upstreams::targets(),
        plugins::plugins(),
        credentials::keyauth_credentials(),
        credentials::basicauth_credentials(),
        credentials::jwt_secrets(),
        credentials::hmacauth_credentials(),
        credentials::acls(),
    ]
});

/// Every entity, referenced ones first.
pub fn all() -> &'static [Schema] {
    &ALL
}

/// The entity called `name` (its DAO name, e.g. `services`).
pub fn entity(name: &str) -> Option<&'static Schema> {
    ALL.iter().find(|s| s.name == name)
}

pub use credentials::hash_basicauth_password;
pub use upstreams::target_address;
