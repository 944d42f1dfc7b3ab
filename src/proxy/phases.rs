//! The plugin phase driver: runs each phase of a request's plugins in order, turns plugin
//! failures (errors and panics) into [`ProxyError::Internal`], and carries the context into the
//! response body for `body_filter` and `log`.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};

use super::error::ProxyError;
use super::{BoxError, ProxyBody};
use crate::plugins::{Chain, Ctx, Entry, Handshake, PluginError, Step};
use crate::router::Protocol;

fn failed(entry: &Entry, phase: &str, error: &PluginError) -> ProxyError {
    tracing::error!(plugin = entry.name, id = %entry.id, phase, error = %error, "plugin failed");
    ProxyError::Internal
}

fn panicked(entry: &Entry, phase: &str) -> ProxyError {
    tracing::error!(plugin = entry.name, id = %entry.id, phase, "plugin panicked");
    ProxyError::Internal
}

/// Awaits `fut`, catching a panic inside it.
struct CatchUnwind<F>(F);

impl<F: Future + Unpin> Future for CatchUnwind<F> {
    type Output = Result<F::Output, ()>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let inner = &mut self.0;
        match std::panic::catch_unwind(AssertUnwindSafe(|| Pin::new(inner).poll(cx))) {
            Ok(Poll::Ready(v)) => Poll::Ready(Ok(v)),
            Ok(Poll::Pending) => Poll::Pending,
            Err(_) => Poll::Ready(Err(())),
        }
    }
}

/// Runs the `certificate` phase of the global plugins that have one for a handshake on a TLS
/// listener; false when one failed (or panicked): the handshake is then aborted.
pub fn certificate(global: &Chain, handshake: &Handshake<'_>) -> bool {
    let tls = |e: &Entry| e.runs_on(Protocol::Https) || e.runs_on(Protocol::Grpcs);
    for entry in global.slots().iter().filter_map(|s| s.base()) {
        if !entry.plugin.handles_certificate() || !tls(entry) {
            continue;
        }
        match std::panic::catch_unwind(AssertUnwindSafe(|| entry.plugin.certificate(handshake))) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                failed(entry, "certificate", &e);
                return false;
            }
            Err(_) => {
                panicked(entry, "certificate");
                return false;
            }
        }
    }
    true
}

/// Runs `phase` of `entry` (rewrite or access), awaiting its I/O if it has any.
async fn step(
    entry: &Entry,
    ctx: &mut Ctx,
    phase: &'static str,
    run: for<'a> fn(&'a Entry, &'a mut Ctx) -> Result<Step<'a>, PluginError>,
) -> Result<(), ProxyError> {
    let started = std::panic::catch_unwind(AssertUnwindSafe(move || {
        let ctx = ctx;
        run(entry, ctx)
    }));
    match started {
        Err(_) => Err(panicked(entry, phase)),
        Ok(Err(e)) => Err(failed(entry, phase, &e)),
        Ok(Ok(Step::Done)) => Ok(()),
        Ok(Ok(Step::Wait(fut))) => match CatchUnwind(fut).await {
            Err(()) => Err(panicked(entry, phase)),
            Ok(Err(e)) => Err(failed(entry, phase, &e)),
            Ok(Ok(())) => Ok(()),
        },
    }
}

/// `rewrite`: the global plugins, before routing.
pub async fn rewrite(chain: &Chain, ctx: &mut Ctx, protocol: Protocol) -> Result<(), ProxyError> {
    for slot in chain.slots() {
        let Some(entry) = slot.base() else { continue };
        if !entry.runs_on(protocol) {
            continue;
        }
        step(entry, ctx, "rewrite", |e, c| e.plugin.rewrite(c)).await?;
        if ctx.exited() {
            break;
        }
    }
    Ok(())
}

/// `access`: the route's plugins by priority, each resolved with the consumer identified so
/// far. Every applicable instance is collected into `collected` (for the later phases), also
/// after a plugin answered early; only the access handlers after it are skipped.
pub async fn access(
    chain: &Chain,
    ctx: &mut Ctx,
    protocol: Protocol,
    collected: &mut Vec<Arc<Entry>>,
) -> Result<(), ProxyError> {
    collected.reserve(chain.slots().len());
    for slot in chain.slots() {
        let Some(entry) = slot.resolve(ctx.consumer_id()) else {
            continue;
        };
        if !entry.runs_on(protocol) {
            continue;
        }
        collected.push(entry.clone());
        if ctx.exited() {
            continue;
        }
        step(entry, ctx, "access", |e, c| e.plugin.access(c)).await?;
    }
    Ok(())
}

/// The global instances, for requests that never reached `access` (no route, early errors).
pub fn global_entries(chain: &Chain, protocol: Protocol, into: &mut Vec<Arc<Entry>>) {
    into.extend(
        chain
            .slots()
            .iter()
            .filter_map(|s| s.base())
            .filter(|e| e.runs_on(protocol))
            .cloned(),
    );
}

/// `header_filter` over `entries`.
pub fn header_filter(
    entries: &[Arc<Entry>],
    ctx: &mut Ctx,
    head: &mut http::response::Parts,
) -> Result<(), ProxyError> {
    for entry in entries.iter().filter(|e| e.plugin.filters_headers()) {
        let run =
            std::panic::catch_unwind(AssertUnwindSafe(|| entry.plugin.header_filter(ctx, head)));
        match run {
            Err(_) => return Err(panicked(entry, "header_filter")),
            Ok(Err(e)) => return Err(failed(entry, "header_filter", &e)),
            Ok(Ok(())) => {}
        }
    }
    Ok(())
}

fn log(entries: &[Arc<Entry>], ctx: &Ctx) {
    for entry in entries {
        if std::panic::catch_unwind(AssertUnwindSafe(|| entry.plugin.log(ctx))).is_err() {
            panicked(entry, "log");
        }
    }
}

pin_project_lite::pin_project! {
    /// A response body that runs `body_filter` on each chunk and `log` once the body is done
    /// (sent, failed, or abandoned by the client).
    pub struct PhaseBody {
        #[pin]
        inner: ProxyBody,
        state: Option<Box<Finishing>>,
    }

    impl PinnedDrop for PhaseBody {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            if let Some(state) = this.state.take() {
                state.finish();
            }
        }
    }
}

/// What the last phases need.
pub struct Finishing {
    ctx: Ctx,
    entries: Vec<Arc<Entry>>,
    filters: bool,
    eof: bool,
}

impl Finishing {
    fn finish(mut self: Box<Self>) {
        let ctx = &mut self.ctx;
        ctx.log.request_latency = ctx.started().elapsed().as_millis() as u64;
        log(&self.entries, &self.ctx);
    }

    fn filter(&mut self, chunk: &mut Bytes, eof: bool) -> Result<(), BoxError> {
        for entry in &self.entries {
            let run = std::panic::catch_unwind(AssertUnwindSafe(|| {
                entry.plugin.body_filter(&mut self.ctx, chunk, eof)
            }));
            match run {
                Err(_) => return Err(Box::new(panicked(entry, "body_filter"))),
                Ok(Err(e)) => return Err(Box::new(failed(entry, "body_filter", &e))),
                Ok(Ok(())) => {}
            }
        }
        Ok(())
    }
}

impl PhaseBody {
    /// Wraps `inner`; `entries` are the request's plugins, `ctx` its context.
    pub fn new(inner: ProxyBody, ctx: Ctx, entries: Vec<Arc<Entry>>) -> PhaseBody {
        let filters = entries.iter().any(|e| e.plugin.filters_body());
        PhaseBody {
            inner,
            state: Some(Box::new(Finishing {
                ctx,
                entries,
                filters,
                eof: false,
            })),
        }
    }
}

impl Body for PhaseBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.project();
        let Some(state) = this.state.as_mut() else {
            return Poll::Ready(None);
        };
        if state.eof {
            return Poll::Ready(None);
        }
        match this.inner.poll_frame(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(Err(e))) => {
                if let Some(state) = this.state.take() {
                    state.finish();
                }
                Poll::Ready(Some(Err(e)))
            }
            Poll::Ready(Some(Ok(frame))) => {
                let frame = match frame.into_data() {
                    Ok(mut chunk) => {
                        if state.filters {
                            if let Err(e) = state.filter(&mut chunk, false) {
                                return Poll::Ready(Some(Err(e)));
                            }
                        }
                        state.ctx.log.response_size += chunk.len() as u64;
                        Frame::data(chunk)
                    }
                    Err(frame) => frame,
                };
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(None) => {
                state.eof = true;
                if state.filters {
                    let mut last = Bytes::new();
                    if let Err(e) = state.filter(&mut last, true) {
                        return Poll::Ready(Some(Err(e)));
                    }
                    if !last.is_empty() {
                        state.ctx.log.response_size += last.len() as u64;
                        return Poll::Ready(Some(Ok(Frame::data(last))));
                    }
                }
                Poll::Ready(None)
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        let filtering = self.state.as_ref().is_some_and(|s| s.filters && !s.eof);
        !filtering && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        if self.state.as_ref().is_some_and(|s| s.filters) {
            SizeHint::default()
        } else {
            self.inner.size_hint()
        }
    }
}
