//! The plugins that ship with the node, one module each.

mod file_log;
mod http_log;
mod log_sink;
pub mod prometheus;
mod queue;
mod request_termination;
mod syslog;
mod tcp_log;
mod udp_log;

use std::sync::Arc;

use super::Kind;

/// Every bundled plugin.
pub fn all() -> Vec<Arc<dyn Kind>> {
    vec![
        Arc::new(request_termination::RequestTermination),
        Arc::new(prometheus::Prometheus),
        Arc::new(http_log::HttpLog),
        Arc::new(file_log::FileLog),
        Arc::new(udp_log::UdpLog),
        Arc::new(tcp_log::TcpLog),
        Arc::new(syslog::Syslog),
    ]
}
