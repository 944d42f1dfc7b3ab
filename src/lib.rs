//! kong: a Kong-compatible API gateway node.
//!
//! One binary holds the proxy, the Admin API, the datastore tooling and the command line. The
//! modules, from the outside in:
//!
//! - [`cli`]: the clap command tree and lifecycle commands (`kong start`, `stop`, ...);
//! - [`runtime`]: the server side of `kong start`: listeners, signals, reload, drain;
//! - [`admin`]: the Admin and Status APIs;
//! - [`proxy`]: client traffic, running from the configuration snapshot only;
//! - [`stream`]: TCP, TLS and UDP traffic of the `stream_listen` listeners, from the snapshot too;
//! - [`router`]: which route and service a request goes to (pure matching, no IO);
//! - [`balancer`]: which address of an upstream entity a request goes to, and the health of
//!   every address (node-wide, surviving snapshot rebuilds; shared by proxy and Admin API
//!   through the [`node::Node`]);
//! - [`dns`]: the node's DNS cache, refreshed in the background;
//! - [`declarative`]: the `kong.yml` format: parse, flatten, import and export;
//! - [`snapshot`]: the configuration the proxy runs from, rebuilt on every datastore change;
//! - [`store`]: entities, their schemas and backends (embedded SQLite by default);
//! - [`config`]: `kong.conf` + environment + flags → validated [`config::Config`];
//! - [`prefix`], [`logging`], [`tls`], [`node`]: the pieces they share.

pub mod admin;
pub mod allocations;
pub mod allocator;
pub mod balancer;
pub mod cli;
pub mod config;
pub mod declarative;
pub mod dns;
pub mod logging;
pub mod node;
pub mod plugins;
pub mod prefix;
pub mod proxy;
pub mod request_id;
pub mod router;
pub mod runtime;
pub mod snapshot;
pub mod store;
pub mod stream;
pub mod tls;
pub mod version;
