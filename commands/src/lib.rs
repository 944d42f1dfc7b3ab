//! kong-commands: the contract between kong nodes and their clients.
//!
//! It holds the Admin API's wire types (serde only, no node internals) and [`AdminClient`], an
//! HTTP client for the Admin API. The node, the `kong admin ...` client subcommands and the TUI
//! all speak through these types, so a change to the wire format shows up in one place.

mod client;
pub mod wire;

pub use client::{AdminClient, ClientError};
