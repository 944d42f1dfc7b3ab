//! Integration tests: the real `kong` binary, real sockets, real databases.
//!
//! One test binary; helpers live in `support/`. Ports come from the OS, waits have deadlines.

mod support;

mod admin_client;
mod admin_info;
mod config_cli;
mod declarative;
mod generated;
mod install;
mod lifecycle;
mod pg_harness;
mod proxy_errors;
