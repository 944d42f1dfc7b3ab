//! `request-size-limiting` (priority 951): refuses request bodies over
//! `allowed_payload_size` `size_unit`s (megabytes = 2^20 bytes, kilobytes = 2^10, bytes).
//!
//! A valid `Content-Length` is checked without reading the body; without one the body is read
//! (buffered) and measured. Too large → `413 Request size limit exceeded`, or `417` with the
//! same message when the client sent `Expect: 100-continue` (it has not sent the body yet).
//! With `require_content_length`, a request without a valid `Content-Length` that is not
//! `Transfer-Encoding: chunked` gets `411 A valid Content-Length header is required`.

use std::sync::Arc;

use http::header::{CONTENT_LENGTH, EXPECT, TRANSFER_ENCODING};
use http::{HeaderMap, StatusCode};
use serde_json::{json, Value};

use crate::plugins::{BuildEnv, Ctx, Kind, Plugin, PluginError, Step};
use crate::store::schema::{Doc, Field, PluginSchema, Record};

const UNITS: &[&str] = &["megabytes", "kilobytes", "bytes"];

/// The kind.
pub struct RequestSizeLimiting;

/// One configured instance.
struct Instance {
    /// The limit in bytes (`None` when negative: every body is too large).
    allowed: Option<u64>,
    require_content_length: bool,
}

impl Kind for RequestSizeLimiting {
    fn name(&self) -> &'static str {
        "request-size-limiting"
    }

    fn priority(&self) -> i32 {
        951
    }

    fn schema(&self) -> PluginSchema {
        let config = Record::new(vec![
            ("allowed_payload_size", Field::integer().default(json!(128))),
            (
                "size_unit",
                Field::string()
                    .required()
                    .default(json!("megabytes"))
                    .one_of(UNITS),
            ),
            (
                "require_content_length",
                Field::boolean().required().default(json!(false)),
            ),
        ]);
        PluginSchema {
            name: self.name().into(),
            config,
            protocols: None,
            no_consumer: false,
            no_route: false,
            no_service: false,
        }
    }

    fn build(&self, config: &Doc, _env: &BuildEnv) -> Result<Arc<dyn Plugin>, String> {
        let size = config
            .get("allowed_payload_size")
            .and_then(Value::as_i64)
            .unwrap_or(128);
        let factor: i64 = match config.get("size_unit").and_then(Value::as_str) {
            Some("bytes") => 1,
            Some("kilobytes") => 1 << 10,
            _ => 1 << 20,
        };
        Ok(Arc::new(Instance {
            allowed: u64::try_from(size.saturating_mul(factor)).ok(),
            require_content_length: config
                .get("require_content_length")
                .and_then(Value::as_bool)
                .unwrap_or(false),
        }))
    }
}

/// The declared length, when it is a number.
fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

impl Instance {
    fn too_large(&self, length: u64) -> bool {
        self.allowed.is_none_or(|allowed| length > allowed)
    }

    fn refuse(ctx: &mut Ctx) {
        let expects_continue = ctx
            .request
            .headers
            .get(EXPECT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("100-continue"));
        let status = if expects_continue {
            StatusCode::EXPECTATION_FAILED
        } else {
            StatusCode::PAYLOAD_TOO_LARGE
        };
        let exit = ctx.error(status, "Request size limit exceeded");
        ctx.exit(exit);
    }
}

impl Plugin for Instance {
    fn access<'a>(&'a self, ctx: &'a mut Ctx) -> Result<Step<'a>, PluginError> {
        if let Some(length) = content_length(&ctx.request.headers) {
            if self.too_large(length) {
                Instance::refuse(ctx);
            }
            return Ok(Step::Done);
        }
        let chunked = ctx
            .request
            .headers
            .get(TRANSFER_ENCODING)
            .is_some_and(|v| v == "chunked");
        if self.require_content_length && !chunked {
            let exit = ctx.error(
                StatusCode::LENGTH_REQUIRED,
                "A valid Content-Length header is required",
            );
            ctx.exit(exit);
            return Ok(Step::Done);
        }
        // The proxy read the body for us (see `needs_request_body`).
        let length = ctx.request_body().map_or(0, |b| b.len() as u64);
        if self.too_large(length) {
            Instance::refuse(ctx);
        }
        Ok(Step::Done)
    }

    fn reads_request_body(&self) -> bool {
        true
    }

    /// Only a body without a declared length is read, and not when it is refused for that.
    fn needs_request_body(&self, request: &http::request::Parts) -> bool {
        if content_length(&request.headers).is_some() {
            return false;
        }
        let chunked = request
            .headers
            .get(TRANSFER_ENCODING)
            .is_some_and(|v| v == "chunked");
        !self.require_content_length || chunked
    }
}
