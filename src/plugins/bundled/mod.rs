//! The plugins that ship with the node, one module each.

mod acl;
mod auth;
mod basic_auth;
mod body_args;
mod bot_detection;
mod correlation_id;
mod cors;
mod file_log;
mod hmac_auth;
mod http_log;
mod ip_restriction;
mod jwt;
mod jwt_token;
mod key_auth;
pub mod limits;
mod log_sink;
pub mod prometheus;
mod queue;
mod rate_limiting;
mod request_size_limiting;
mod request_termination;
mod request_transformer;
mod response_ratelimiting;
mod response_transformer;
mod syslog;
mod tcp_log;
mod transform;
mod udp_log;

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
        Arc::new(prometheus::Prometheus),
        Arc::new(http_log::HttpLog),
        Arc::new(file_log::FileLog),
        Arc::new(udp_log::UdpLog),
        Arc::new(tcp_log::TcpLog),
        Arc::new(syslog::Syslog),
        Arc::new(ip_restriction::IpRestriction),
        Arc::new(cors::Cors),
        Arc::new(bot_detection::BotDetection),
        Arc::new(request_size_limiting::RequestSizeLimiting),
        Arc::new(correlation_id::CorrelationId),
        Arc::new(request_transformer::RequestTransformer),
        Arc::new(response_transformer::ResponseTransformer),
        Arc::new(rate_limiting::RateLimiting),
        Arc::new(response_ratelimiting::ResponseRateLimiting),
    ]
}
