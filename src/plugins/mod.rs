//! Plugins: code that runs inside the proxy's request flow, configured per route, service,
//! consumer or globally through `plugins` entities.
//!
//! A plugin is two things: a [`Kind`] (its name, priority, config schema, and how to build an
//! instance from a validated config) and the [`Plugin`] instances it builds, whose phase methods
//! the proxy calls. Instances are built and chained when the configuration snapshot is built,
//! never per request.
//!
//! ```text
//!   TLS handshake (proxy TLS listeners)
//!        │
//!   certificate ···· global plugins only, before the certificate is chosen;
//!        │           a failure aborts the handshake
//!   client request
//!        │
//!   rewrite ········ global plugins only (no route known yet)
//!        │
//!   route match ──── no route: 404 ─────────────────────────┐
//!        │                                                   │
//!   access ········· every plugin on the route, by priority;  │
//!        │           auth plugins identify the consumer, so   │
//!        │           later plugins get consumer-scoped config │
//!        │           a plugin may answer early (exit) ────────┤
//!   upstream request (balancer, retries)                     │
//!        │                                                   │
//!   header_filter ·· response head, before it is sent ◄──────┘
//!        │
//!   body_filter ···· each response chunk as it streams (last one with eof)
//!        │
//!   log ············ after the response is sent; always runs, also after errors and exits
//! ```
//!
//! In every phase plugins run by descending priority (Kong's numbers). When a plugin answers
//! early in `access`, the remaining access handlers are skipped, but every plugin of the route
//! is still collected so its `header_filter`, `body_filter` and `log` run. A plugin's failure
//! is an [`PluginError`]: the proxy answers 500 through its one error path. A panic inside a
//! plugin is caught and treated the same way.
//!
//! The trait is object-safe and knows nothing of Rust plugins specifically: a later scripting
//! runtime implements [`Kind`] for each script and [`Plugin`] for its instances.

pub mod bundled;
pub mod chain;
pub mod ctx;
pub mod identity;
pub mod registry;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;

pub use chain::{Chain, Entry, Plugins};
pub use ctx::{Credential, Ctx, Exit};
pub use registry::{BuildEnv, Kind, Registry, RegistryError};

/// A failure inside a plugin. The client gets a 500; the message goes to the error log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PluginError(pub String);

impl PluginError {
    /// An error with `message`.
    pub fn new(message: impl Into<String>) -> PluginError {
        PluginError(message.into())
    }
}

/// A boxed future borrowing for `'a`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What a `rewrite` or `access` handler leaves to do: nothing, or I/O to await (a Redis call,
/// a database counter). Handlers that need no I/O return [`Step::Done`] and cost no allocation.
pub enum Step<'a> {
    /// Finished.
    Done,
    /// Finish by awaiting this.
    Wait(BoxFuture<'a, Result<(), PluginError>>),
}

/// What the `certificate` phase knows of a TLS handshake in progress.
#[derive(Debug, Clone, Copy)]
pub struct Handshake<'a> {
    /// The server name the client asked for (SNI), lower-cased; `None` when it sent none.
    pub server_name: Option<&'a str>,
}

/// A configured plugin instance. Every phase has a no-op default; a plugin implements the
/// phases it needs. See the module docs for the order.
pub trait Plugin: Send + Sync + 'static {
    /// During a TLS handshake on a proxy listener, before the certificate is chosen; called for
    /// global instances only (nothing of the request is known yet), and only for plugins whose
    /// [`Plugin::handles_certificate`] holds. An error aborts the handshake. Must not block.
    fn certificate(&self, _handshake: &Handshake<'_>) -> Result<(), PluginError> {
        Ok(())
    }

    /// Before routing; called for global instances only.
    fn rewrite<'a>(&'a self, _ctx: &'a mut Ctx) -> Result<Step<'a>, PluginError> {
        Ok(Step::Done)
    }

    /// After routing, before the upstream request. May identify the consumer, change the
    /// upstream request, or answer early with [`Ctx::exit`].
    fn access<'a>(&'a self, _ctx: &'a mut Ctx) -> Result<Step<'a>, PluginError> {
        Ok(Step::Done)
    }

    /// The response head, upstream's or the gateway's own, before it is sent; called only for
    /// plugins whose [`Plugin::filters_headers`] holds.
    fn header_filter(
        &self,
        _ctx: &mut Ctx,
        _response: &mut http::response::Parts,
    ) -> Result<(), PluginError> {
        Ok(())
    }

    /// Each chunk of the response body as it streams; `eof` marks the last call. A plugin may
    /// replace the chunk (an empty one holds data back, to be released at `eof`).
    fn body_filter(
        &self,
        _ctx: &mut Ctx,
        _chunk: &mut Bytes,
        _eof: bool,
    ) -> Result<(), PluginError> {
        Ok(())
    }

    /// After the response was sent (or failed). Must not block: loggers hand entries to a
    /// bounded queue.
    fn log(&self, _ctx: &Ctx) {}

    /// Whether `certificate` does anything: it is called only then.
    fn handles_certificate(&self) -> bool {
        false
    }

    /// Whether `header_filter` does anything: it is called only then, and the upstream's header
    /// lines are otherwise passed on as they came instead of through a header map.
    fn filters_headers(&self) -> bool {
        false
    }

    /// Whether `log` does anything; the proxy keeps the request and response headers for the
    /// log only then.
    fn logs(&self) -> bool {
        false
    }

    /// Whether `access` needs the whole request body ([`Ctx::request_body`]); the proxy then
    /// reads it first, even on routes that stream request bodies.
    fn reads_request_body(&self) -> bool {
        false
    }

    /// Whether `access` needs the body of this particular request (its head is given), asked
    /// before the body is read when [`Plugin::reads_request_body`] holds. A plugin that only
    /// sometimes needs the body (a declared `Content-Length` suffices, the content type is one
    /// it does not transform) answers false to leave the body streaming, unread: a request it
    /// refuses then never has its body read.
    fn needs_request_body(&self, _request: &http::request::Parts) -> bool {
        true
    }

    /// Whether `body_filter` does anything; bodies are passed through untouched otherwise.
    fn filters_body(&self) -> bool {
        false
    }
}

/// Built-in plugins, as registered on every node (the `plugins` property picks among them).
pub fn bundled() -> Vec<Arc<dyn Kind>> {
    bundled::all()
}
