//! The plugins that ship with the node, one module each.

mod bot_detection;
mod correlation_id;
mod cors;
mod ip_restriction;
mod request_size_limiting;
mod request_termination;
mod request_transformer;
mod response_transformer;
mod transform;

use std::sync::Arc;

use super::Kind;

/// Every bundled plugin.
pub fn all() -> Vec<Arc<dyn Kind>> {
    vec![
        Arc::new(request_termination::RequestTermination),
        Arc::new(ip_restriction::IpRestriction),
        Arc::new(cors::Cors),
        Arc::new(bot_detection::BotDetection),
        Arc::new(request_size_limiting::RequestSizeLimiting),
        Arc::new(correlation_id::CorrelationId),
        Arc::new(request_transformer::RequestTransformer),
        Arc::new(response_transformer::ResponseTransformer),
    ]
}
