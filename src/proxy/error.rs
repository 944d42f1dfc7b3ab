//! The one place where proxy errors become HTTP responses.
//!
//! Formats follow Kong: JSON, HTML, XML or plain text chosen from `Accept` (highest q wins,
//! `*/*` and `application/*` → JSON, `text/*` → plain, unknown → JSON). Without `Accept`,
//! errors raised by the gateway's logic (no route, balancer, plugins) default to JSON, while
//! protocol-level errors (bad request, body too large, upstream failures) fall back to the
//! request's `Content-Type`, then `error_default_type`.

use bytes::Bytes;
use http::header::{HeaderValue, CONTENT_TYPE};
use http::{HeaderMap, Response, StatusCode};

use crate::runtime::guard::Refusal;

/// Which side an error comes from (for logs and, later, retries and health checks).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The client sent something unacceptable.
    Downstream,
    /// The upstream failed.
    Upstream,
    /// The gateway itself.
    Internal,
}

/// A failure while proxying a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProxyError {
    /// No route matched.
    #[error("no Route matched with those values")]
    NoRoute,
    /// The request was malformed.
    #[error("Bad request")]
    BadRequest,
    /// A header line, the whole head or the header count exceeded the limits (nginx's 494).
    #[error("Request header or cookie too large")]
    HeaderTooLarge,
    /// The request line exceeded one `large_client_header_buffers` buffer.
    #[error("URI too long")]
    UriTooLong,
    /// The client paused sending its body longer than `client_body_timeout`.
    #[error("Request timeout")]
    RequestTimeout,
    /// The body exceeded `nginx_http_client_max_body_size`.
    #[error("Payload too large")]
    PayloadTooLarge,
    /// The matched route has no service to send to.
    #[error("no Service found with those values")]
    NoService,
    /// The matched route refuses the request as it came (gRPC rules).
    #[error("{1}")]
    Rejected(StatusCode, &'static str),
    /// The route allows only HTTPS and the request came over HTTP.
    #[error("Please use HTTPS protocol")]
    UpgradeRequired,
    /// The upstream refused, reset or answered garbage.
    #[error("An invalid response was received from the upstream server")]
    BadGateway,
    /// The upstream cannot be used.
    #[error("The upstream server is currently unavailable")]
    Unavailable,
    /// The upstream host name did not resolve.
    #[error("name resolution failed")]
    NameResolution,
    /// The upstream's balancer has no healthy address to offer.
    #[error("failure to get a peer from the ring-balancer")]
    NoPeer,
    /// The DNS servers failed to answer for the upstream host name.
    #[error("{0}")]
    Dns(String),
    /// Connecting, sending or waiting for the response took longer than the service allows.
    #[error("The upstream server is timing out")]
    GatewayTimeout,
    /// Unexpected internal failure.
    #[error("An unexpected error occurred")]
    Internal,
}

impl ProxyError {
    /// HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            ProxyError::NoRoute => StatusCode::NOT_FOUND,
            ProxyError::BadRequest => StatusCode::BAD_REQUEST,
            // nginx's 494, which Kong answers as 400.
            ProxyError::HeaderTooLarge => StatusCode::BAD_REQUEST,
            ProxyError::UriTooLong => StatusCode::URI_TOO_LONG,
            ProxyError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ProxyError::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            ProxyError::UpgradeRequired => StatusCode::UPGRADE_REQUIRED,
            ProxyError::NoService => StatusCode::SERVICE_UNAVAILABLE,
            ProxyError::Rejected(status, _) => *status,
            ProxyError::BadGateway => StatusCode::BAD_GATEWAY,
            ProxyError::Unavailable | ProxyError::NameResolution | ProxyError::NoPeer => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ProxyError::Dns(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ProxyError::GatewayTimeout => StatusCode::GATEWAY_TIMEOUT,
            ProxyError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Which side failed.
    pub fn side(&self) -> Side {
        match self {
            ProxyError::NoRoute
            | ProxyError::BadRequest
            | ProxyError::HeaderTooLarge
            | ProxyError::UriTooLong
            | ProxyError::PayloadTooLarge
            | ProxyError::RequestTimeout
            | ProxyError::UpgradeRequired
            | ProxyError::Rejected(..) => Side::Downstream,
            ProxyError::NoService => Side::Internal,
            ProxyError::BadGateway
            | ProxyError::Unavailable
            | ProxyError::NameResolution
            | ProxyError::NoPeer
            | ProxyError::Dns(_)
            | ProxyError::GatewayTimeout => Side::Upstream,
            ProxyError::Internal => Side::Internal,
        }
    }

    /// Whether the error is raised by gateway logic (JSON default) rather than at the protocol
    /// level (Content-Type / `error_default_type` default).
    fn logical(&self) -> bool {
        matches!(
            self,
            ProxyError::NoRoute
                | ProxyError::Internal
                | ProxyError::UpgradeRequired
                | ProxyError::NameResolution
                | ProxyError::NoPeer
                | ProxyError::Dns(_)
                | ProxyError::NoService
                | ProxyError::Rejected(..)
        )
    }
}

impl From<crate::balancer::peers::PeerError> for ProxyError {
    fn from(e: crate::balancer::peers::PeerError) -> ProxyError {
        use crate::balancer::peers::PeerError;
        match e {
            PeerError::NoPeer => ProxyError::NoPeer,
            PeerError::NameResolution => ProxyError::NameResolution,
            PeerError::Dns(m) => ProxyError::Dns(m),
        }
    }
}

impl From<Refusal> for ProxyError {
    fn from(refusal: Refusal) -> ProxyError {
        match refusal {
            Refusal::BadRequest => ProxyError::BadRequest,
            Refusal::HeaderTooLarge => ProxyError::HeaderTooLarge,
            Refusal::UriTooLong => ProxyError::UriTooLong,
        }
    }
}

/// Response formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `application/json`.
    Json,
    /// `text/html`.
    Html,
    /// `application/xml`.
    Xml,
    /// `text/plain`.
    Plain,
}

impl Format {
    fn from_media(media: &str) -> Option<Format> {
        let media = media.trim().to_ascii_lowercase();
        Some(match media.as_str() {
            "application/json" | "application/*" | "*/*" => Format::Json,
            "text/html" => Format::Html,
            "application/xml" | "text/xml" => Format::Xml,
            "text/plain" | "text/*" => Format::Plain,
            _ => return None,
        })
    }

    /// The `Content-Type` of a body in this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Json => "application/json; charset=utf-8",
            Format::Html => "text/html; charset=utf-8",
            Format::Xml => "application/xml; charset=utf-8",
            Format::Plain => "text/plain; charset=utf-8",
        }
    }
}

/// Picks the format for an error response to a request with `headers`.
pub fn negotiate(headers: &HeaderMap, logical: bool, default_type: &str) -> Format {
    if let Some(accept) = headers
        .get(http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
    {
        let mut best: Option<(f32, Format)> = None;
        for item in accept.split(',') {
            let mut parts = item.split(';');
            let media = parts.next().unwrap_or("");
            let q = parts
                .filter_map(|p| p.trim().strip_prefix("q="))
                .find_map(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            let format = Format::from_media(media).unwrap_or(Format::Json);
            if q > 0.0 && best.is_none_or(|(bq, _)| q > bq) {
                best = Some((q, format));
            }
        }
        if let Some((_, f)) = best {
            return f;
        }
    }
    if logical {
        return Format::Json;
    }
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|ct| Format::from_media(ct.split(';').next().unwrap_or("")))
        .or_else(|| Format::from_media(default_type))
        .unwrap_or(Format::Plain)
}

/// Renders `message` in `format`, with the request id.
pub fn body(format: Format, message: &str, request_id: &str) -> String {
    match format {
        Format::Json => format!(
            "{{\n  \"message\":{},\n  \"request_id\":\"{request_id}\"\n}}",
            serde_json::Value::String(message.to_string())
        ),
        Format::Html => format!(
            "<!doctype html>\n<html>\n  <head>\n    <meta charset=\"utf-8\">\n    <title>Error</title>\n  </head>\n  <body>\n    <h1>Error</h1>\n    <p>{}.</p>\n    <p>request_id: {request_id}</p>\n  </body>\n</html>\n",
            xml_escape(message)
        ),
        Format::Xml => format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<error>\n  <message>{}</message>\n  <requestid>{request_id}</requestid>\n</error>\n",
            xml_escape(message)
        ),
        Format::Plain => format!("{message}\nrequest_id: {request_id}\n"),
    }
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Turns `err` into the response the client sees.
pub fn respond(
    err: &ProxyError,
    req_headers: &HeaderMap,
    request_id: &str,
    default_type: &str,
) -> Response<Bytes> {
    let format = negotiate(req_headers, err.logical(), default_type);
    let mut resp = Response::new(Bytes::from(body(format, &err.to_string(), request_id)));
    *resp.status_mut() = err.status();
    resp.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn negotiation_follows_accept_then_defaults() {
        let plain = "text/plain";
        assert_eq!(negotiate(&headers(&[]), true, plain), Format::Json);
        assert_eq!(negotiate(&headers(&[]), false, plain), Format::Plain);
        assert_eq!(
            negotiate(
                &headers(&[("content-type", "application/xml")]),
                false,
                plain
            ),
            Format::Xml
        );
        assert_eq!(
            negotiate(&headers(&[("accept", "text/html")]), true, plain),
            Format::Html
        );
        assert_eq!(
            negotiate(
                &headers(&[("accept", "text/html;q=0.5, application/xml;q=0.9")]),
                true,
                plain
            ),
            Format::Xml
        );
        assert_eq!(
            negotiate(&headers(&[("accept", "text/*")]), true, plain),
            Format::Plain
        );
        assert_eq!(
            negotiate(&headers(&[("accept", "image/png")]), true, plain),
            Format::Json
        );
    }

    #[test]
    fn bodies_carry_message_and_request_id() {
        let json = body(Format::Json, "no Route matched with those values", "abc");
        let v: serde_json::Value = serde_json::from_str(&json).expect("json");
        assert_eq!(v["message"], "no Route matched with those values");
        assert_eq!(v["request_id"], "abc");
        assert!(body(Format::Xml, "a<b", "x").contains("<message>a&lt;b</message>"));
        assert_eq!(body(Format::Plain, "m", "x"), "m\nrequest_id: x\n");
    }
}
