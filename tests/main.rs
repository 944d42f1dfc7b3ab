//! Integration tests: the real `kong` binary, real sockets, real databases.
//!
//! One test binary; helpers live in `support/`. Ports come from the OS, waits have deadlines.

mod support;

mod admin_client;
mod admin_config;
mod admin_endpoints;
mod admin_entities;
mod admin_info;
mod balancer;
mod config_cli;
mod declarative;
mod generated;
mod install;
mod lifecycle;
mod migrations;
mod pg_harness;
mod plugins_auth;
mod plugins_framework;
mod plugins_http;
mod plugins_limits;
mod plugins_observe;
mod proxy_errors;
mod proxy_forwarding;
mod proxy_hardening;
mod proxy_tls;
mod proxy_upstream;
mod snapshot_sync;
mod store_conformance;
mod stream_proxy;
