//! The plugins that ship with the node, one module each.

mod request_termination;

use std::sync::Arc;

use super::Kind;

/// Every bundled plugin.
pub fn all() -> Vec<Arc<dyn Kind>> {
    vec![Arc::new(request_termination::RequestTermination)]
}
