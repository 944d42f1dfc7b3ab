//! Sending a request upstream and getting the response head back: timeouts, retries and the
//! mapping of transport failures to Kong's 502/503/504.

use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, Uri};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;

use super::error::ProxyError;
use super::upstream::{UpstreamBody, UpstreamClient};

/// Where and how to send one request.
#[derive(Debug, Clone)]
pub struct Target {
    /// `scheme://host:port/path?query` of the upstream request.
    pub uri: Uri,
    /// Timeouts of the service.
    pub timeouts: Timeouts,
    /// Extra tries after a failed connection (`retries`).
    pub retries: u32,
}

/// A service's timeouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Establishing the connection.
    pub connect: Duration,
    /// Sending the request.
    pub write: Duration,
    /// Waiting for the response head.
    pub read: Duration,
}

/// The request body going upstream: buffered (replayable on retry) or streamed.
pub enum Outgoing {
    /// Read whole first (`request_buffering`); retries resend it.
    Buffered(Bytes),
    /// Passed through as it arrives; a request is not retried once its body was sent.
    Streamed(Incoming),
}

/// Classifies a client error the way Kong reports upstream failures.
fn classify(e: &hyper_util::client::legacy::Error) -> ProxyError {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    let text = text.to_ascii_lowercase();
    if text.contains("dns error") || text.contains("failed to lookup address") {
        ProxyError::NameResolution
    } else if text.contains("timed out") || text.contains("timeout") {
        ProxyError::GatewayTimeout
    } else {
        ProxyError::BadGateway
    }
}

/// Sends `head` + `body` to `target`, retrying connection failures of replayable requests.
pub async fn send(
    client: &UpstreamClient,
    head: http::request::Parts,
    body: Outgoing,
    target: &Target,
) -> Result<Response<Incoming>, ProxyError> {
    let mut tries = 0u32;
    let mut body = Some(body);
    loop {
        let streamed = matches!(body, Some(Outgoing::Streamed(_)));
        let (outgoing, replay): (UpstreamBody, Option<Bytes>) = match body.take() {
            Some(Outgoing::Buffered(bytes)) => (
                Full::new(bytes.clone())
                    .map_err(|never| match never {})
                    .boxed(),
                Some(bytes),
            ),
            Some(Outgoing::Streamed(incoming)) => (incoming.boxed(), None),
            None => return Err(ProxyError::BadGateway),
        };
        let mut req = Request::from_parts(head.clone(), outgoing);
        *req.uri_mut() = target.uri.clone();
        // The connector enforces the connect timeout. Sending and waiting for the response head
        // are bounded together: the read timeout, plus the write timeout when the body streams
        // from the client (a buffered one is written at once). The pooled client does not say
        // when a new connection was made, so a connection set up for this request spends part
        // of the read budget (on a LAN, about a millisecond).
        let t = target.timeouts;
        let limit = t.read + if streamed { t.write } else { Duration::ZERO };
        let result = tokio::time::timeout(limit, client.request(req)).await;
        let err = match result {
            Ok(Ok(resp)) => return Ok(resp),
            Err(_) => ProxyError::GatewayTimeout,
            Ok(Err(e)) => {
                let connect = e.is_connect();
                let kind = classify(&e);
                tracing::debug!(error = %e, upstream = %target.uri, "upstream request failed");
                if connect && tries < target.retries {
                    if let Some(bytes) = replay {
                        tries += 1;
                        body = Some(Outgoing::Buffered(bytes));
                        continue;
                    }
                }
                kind
            }
        };
        return Err(err);
    }
}
