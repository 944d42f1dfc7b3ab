//! The plugins that ship with the node, one module each.

mod acl;
mod auth;
mod basic_auth;
mod body_args;
mod hmac_auth;
mod jwt;
mod jwt_token;
mod key_auth;
mod request_termination;

use std::sync::Arc;

use super::Kind;

/// Every bundled plugin.
pub fn all() -> Vec<Arc<dyn Kind>> {
    vec![
        Arc::new(request_termination::RequestTermination),
        Arc::new(key_auth::KeyAuth),
        Arc::new(basic_auth::BasicAuth),
        Arc::new(jwt::Jwt),
        Arc::new(hmac_auth::HmacAuth),
        Arc::new(acl::Acl),
    ]
}
