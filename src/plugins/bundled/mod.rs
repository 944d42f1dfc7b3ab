//! The plugins that ship with the node, one module each.

pub mod limits;
mod rate_limiting;
mod request_termination;
mod response_ratelimiting;

use std::sync::Arc;

use super::Kind;

/// Every bundled plugin.
pub fn all() -> Vec<Arc<dyn Kind>> {
    vec![
        Arc::new(rate_limiting::RateLimiting),
        Arc::new(request_termination::RequestTermination),
        Arc::new(response_ratelimiting::ResponseRateLimiting),
    ]
}
