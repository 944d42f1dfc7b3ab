//! kong-tui: the live terminal view of kong nodes, cache and traffic.
//!
//! It talks to nodes only through `kong-commands` (the Admin API client and wire types), never
//! through node internals. The view itself is built by the TUI work; this crate fixes its place
//! in the dependency graph: `kong` → `kong-tui` → `kong-commands`.

pub use kong_commands as commands;
