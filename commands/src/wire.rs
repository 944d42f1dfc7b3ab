//! Admin API response bodies, as Kong documents them.

use serde::{Deserialize, Serialize};

/// `GET /`: the node's identity and configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeInfo {
    /// `"Welcome to kong"`.
    pub tagline: String,
    /// Kong version the node is compatible with.
    pub version: String,
    /// `community` or `enterprise`.
    pub edition: String,
    /// Host name of the node.
    pub hostname: String,
    /// Node id (UUID).
    pub node_id: String,
    /// Effective configuration, secrets masked.
    pub configuration: serde_json::Map<String, serde_json::Value>,
    /// Process ids.
    pub pids: Pids,
}

/// Process ids of a node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pids {
    /// The main process.
    pub master: u32,
    /// Worker processes (the main process itself on this node).
    pub workers: Vec<u32>,
}

/// `GET /status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Status {
    /// Connection and request counters.
    pub server: ServerStatus,
    /// Datastore state (absent in DB-less mode on Kong).
    #[serde(default)]
    pub database: Option<DatabaseStatus>,
    /// Memory figures, formatted per the `unit` query parameter.
    #[serde(default)]
    pub memory: serde_json::Value,
}

/// Connection counters of `GET /status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerStatus {
    /// Open connections.
    pub connections_active: u64,
    /// Connections reading a request.
    pub connections_reading: u64,
    /// Connections writing a response.
    pub connections_writing: u64,
    /// Idle keep-alive connections.
    pub connections_waiting: u64,
    /// Connections accepted since start.
    pub connections_accepted: u64,
    /// Connections handled since start.
    pub connections_handled: u64,
    /// Requests since start.
    pub total_requests: u64,
}

/// Datastore state of `GET /status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatabaseStatus {
    /// Whether the node can reach its database.
    pub reachable: bool,
}

/// Kong's error body: `{"message": ...}`, with `code`, `name` and `fields` for entity errors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// Human-readable message.
    pub message: String,
    /// Numeric error code, for datastore errors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<u32>,
    /// Error name, for datastore errors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Per-field details.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fields: Option<serde_json::Value>,
}
