//! `hmac-auth` (priority 1030): authenticates a consumer by an HMAC signature over chosen
//! request headers, sent as
//! `hmac username="…", algorithm="…", headers="h1 h2", signature="<base64>"` in
//! `Proxy-Authorization` (tried first) or `Authorization`, with the user's secret from
//! `hmacauth_credentials`.
//!
//! The signing string has one line per listed header, `name: value`, joined by newlines; the
//! pseudo headers `request-line` (`METHOD /path?query HTTP/1.1`) and `@request-target`
//! (`method /path?query`) stand for the request itself. The request must carry a `X-Date` or
//! `Date` within `clock_skew` seconds of the gateway's clock, which keeps signatures from being
//! replayed later. With `validate_request_body`, a `Digest: SHA-256=<base64>` header must match
//! the body.

use std::sync::{Arc, LazyLock};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use http::header::{HeaderName, HeaderValue, AUTHORIZATION, PROXY_AUTHORIZATION};
use http::StatusCode;
use regex::Regex;
use ring::hmac;
use serde_json::{json, Value};

use super::auth::{self, Denied};
use crate::plugins::{BuildEnv, Ctx, Kind, Plugin, PluginError, Step};
use crate::store::schema::{Doc, Field, PluginSchema, Record};

/// The kind.
pub struct HmacAuth;

const ALGORITHMS: &[&str] = &["hmac-sha1", "hmac-sha256", "hmac-sha384", "hmac-sha512"];

const NO_DATE: &str = "HMAC signature cannot be verified, a valid date or x-date header is \
                       required for HMAC Authentication";
const NOT_VALID: &str = "HMAC signature cannot be verified";
const NOT_SAME: &str = "HMAC signature does not match";

/// One configured instance.
struct Instance {
    hide_credentials: bool,
    clock_skew: f64,
    anonymous: Option<String>,
    validate_request_body: bool,
    enforce_headers: Vec<String>,
    algorithms: Vec<String>,
    challenge: HeaderValue,
}

fn positive(v: &Value) -> Result<(), String> {
    match v.as_f64() {
        Some(n) if n <= 0.0 => Err("value must be greater than 0".into()),
        _ => Ok(()),
    }
}

impl Kind for HmacAuth {
    fn name(&self) -> &'static str {
        "hmac-auth"
    }

    fn priority(&self) -> i32 {
        1030
    }

    fn schema(&self) -> PluginSchema {
        let config = Record::new(vec![
            (
                "hide_credentials",
                Field::boolean().required().default(json!(false)),
            ),
            (
                "clock_skew",
                Field::number().default(json!(300)).custom("gt", positive),
            ),
            ("anonymous", Field::string()),
            (
                "validate_request_body",
                Field::boolean().required().default(json!(false)),
            ),
            (
                "enforce_headers",
                Field::array(Field::string()).default(json!([])),
            ),
            (
                "algorithms",
                Field::array(Field::string().one_of(ALGORITHMS)).default(json!(ALGORITHMS)),
            ),
            ("realm", Field::string()),
        ]);
        PluginSchema {
            name: self.name().into(),
            config,
            protocols: None,
            no_consumer: true,
            no_route: false,
            no_service: false,
        }
    }

    fn lookups(&self) -> &'static [(&'static str, &'static str)] {
        &[("hmacauth_credentials", "username")]
    }

    fn build(&self, config: &Doc, _: &BuildEnv) -> Result<Arc<dyn Plugin>, String> {
        let realm = auth::text(config, "realm");
        let algorithms = match config.get("algorithms") {
            Some(Value::Array(_)) => auth::strings(config, "algorithms"),
            _ => ALGORITHMS.iter().map(|a| (*a).to_owned()).collect(),
        };
        Ok(Arc::new(Instance {
            hide_credentials: auth::flag(config, "hide_credentials", false),
            clock_skew: config
                .get("clock_skew")
                .and_then(Value::as_f64)
                .unwrap_or(300.0),
            anonymous: auth::text(config, "anonymous"),
            validate_request_body: auth::flag(config, "validate_request_body", false),
            enforce_headers: auth::strings(config, "enforce_headers"),
            algorithms,
            challenge: auth::challenge("hmac", realm.as_deref(), None)?,
        }))
    }
}

/// Kong's pattern for the authorization value (greedy, so quotes inside values work out the
/// way they do in Kong).
static PARAMS: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(
        r#"\s*[Hh]mac\s*username="(.+)",\s*algorithm="(.+)",\s*headers="(.+)",\s*signature="(.+)""#,
    )
    .ok()
});

/// The parameters of an `hmac` authorization value.
#[derive(Debug, PartialEq, Eq)]
struct Params {
    username: String,
    algorithm: String,
    headers: Vec<String>,
    signature: String,
}

fn params(value: &str) -> Option<Params> {
    let c = PARAMS.as_ref()?.captures(value)?;
    let group = |i| c.get(i).map(|m| m.as_str().to_owned());
    Some(Params {
        username: group(1)?,
        algorithm: group(2)?,
        headers: group(3)?.split(' ').map(str::to_owned).collect(),
        signature: group(4)?,
    })
}

/// The request time in `name` (an HTTP date), if it is within `skew` seconds of now.
fn date_within(ctx: &Ctx, name: &str, skew: f64) -> bool {
    let Some(date) = ctx.header(name) else {
        return false;
    };
    let Ok(at) = httpdate::parse_http_date(date.trim()) else {
        return false;
    };
    let secs = |t: SystemTime| {
        t.duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs() as f64)
    };
    (secs(SystemTime::now()) - secs(at)).abs() <= skew
}

/// The text signed for `headers` of this request.
fn signing_string(ctx: &Ctx, headers: &[String]) -> String {
    let uri = ctx.log.uri_text();
    let method = ctx.request.method.as_str();
    let lines: Vec<String> = headers
        .iter()
        .map(|name| {
            let value = HeaderName::from_bytes(name.to_ascii_lowercase().as_bytes())
                .ok()
                .and_then(|h| ctx.request.headers.get(h))
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
            match (value, name.as_str()) {
                (Some(v), _) => format!("{name}: {v}"),
                (None, "@request-target") => {
                    format!("{name}: {} {uri}", method.to_ascii_lowercase())
                }
                (None, "request-line") => {
                    let version = match ctx.request.version {
                        http::Version::HTTP_09 => "0.9",
                        http::Version::HTTP_10 => "1.0",
                        http::Version::HTTP_2 => "2.0",
                        http::Version::HTTP_3 => "3.0",
                        _ => "1.1",
                    };
                    format!("{method} {uri} HTTP/{version}")
                }
                (None, _) => format!("{name}:"),
            }
        })
        .collect();
    lines.join("\n")
}

impl Instance {
    fn unauthorized(&self, message: &'static str) -> Denied {
        Denied::unauthorized(message, &self.challenge)
    }

    /// Whether the parameters are complete and acceptable under this configuration.
    fn acceptable(&self, params: &Params) -> bool {
        let enforced = self
            .enforce_headers
            .iter()
            .all(|h| params.headers.contains(h));
        enforced && self.algorithms.contains(&params.algorithm)
    }

    fn body_matches(&self, ctx: &Ctx) -> bool {
        let body = ctx.request_body().map_or(&[][..], |b| &b[..]);
        match ctx.header("digest") {
            None => body.is_empty(),
            Some(digest) => {
                let sha = ring::digest::digest(&ring::digest::SHA256, body);
                digest.strip_prefix("SHA-256=") == Some(STANDARD.encode(sha.as_ref()).as_str())
            }
        }
    }

    fn authenticate(&self, ctx: &mut Ctx) -> Result<(), Denied> {
        let headers = &ctx.request.headers;
        if !headers.contains_key(AUTHORIZATION) && !headers.contains_key(PROXY_AUTHORIZATION) {
            return Err(self.unauthorized("Unauthorized"));
        }
        if !(date_within(ctx, "x-date", self.clock_skew)
            || date_within(ctx, "date", self.clock_skew))
        {
            return Err(self.unauthorized(NO_DATE));
        }
        let read = |ctx: &Ctx, h: &HeaderName| ctx.header(h.as_str()).and_then(params);
        // Proxy-Authorization first; Authorization when it holds no parameters.
        let params = match read(ctx, &PROXY_AUTHORIZATION) {
            Some(p) => {
                if self.hide_credentials {
                    ctx.request.headers.remove(PROXY_AUTHORIZATION);
                }
                Some(p)
            }
            None => {
                let p = read(ctx, &AUTHORIZATION);
                if self.hide_credentials {
                    ctx.request.headers.remove(AUTHORIZATION);
                }
                p
            }
        };
        let Some(params) = params.filter(|p| self.acceptable(p)) else {
            return Err(self.unauthorized(NOT_VALID));
        };
        let Some(credential) = ctx
            .snapshot()
            .index
            .find("hmacauth_credentials", "username", &params.username)
            .first()
            .cloned()
        else {
            return Err(self.unauthorized(NOT_VALID));
        };
        let algorithm = match params.algorithm.as_str() {
            "hmac-sha1" => hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
            "hmac-sha256" => hmac::HMAC_SHA256,
            "hmac-sha384" => hmac::HMAC_SHA384,
            "hmac-sha512" => hmac::HMAC_SHA512,
            _ => return Err(self.unauthorized(NOT_VALID)),
        };
        let secret = credential
            .get("secret")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let key = hmac::Key::new(algorithm, secret.as_bytes());
        let signed = signing_string(ctx, &params.headers);
        let given = auth::decode_base64(&params.signature, false).unwrap_or_default();
        if hmac::verify(&key, signed.as_bytes(), &given).is_err() {
            return Err(self.unauthorized(NOT_SAME));
        }
        if self.validate_request_body && !self.body_matches(ctx) {
            return Err(self.unauthorized(NOT_SAME));
        }
        let record = auth::credential(&credential, &params.username);
        let Some(consumer) = auth::consumer_of(ctx, &record) else {
            tracing::error!(username = %params.username, "hmac-auth credential without consumer");
            return Err(Denied {
                status: StatusCode::INTERNAL_SERVER_ERROR,
                body: auth::DeniedBody::Error("An unexpected error occurred".into()),
                challenge: None,
            });
        };
        ctx.authenticate(consumer, Some(record));
        Ok(())
    }
}

impl Plugin for Instance {
    fn access<'a>(&'a self, ctx: &'a mut Ctx) -> Result<Step<'a>, PluginError> {
        auth::run(ctx, self.anonymous.as_deref(), |ctx| self.authenticate(ctx));
        Ok(Step::Done)
    }

    fn reads_request_body(&self) -> bool {
        self.validate_request_body
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_parse_as_kong_reads_them() {
        let p = params(
            r#"hmac username="bob", algorithm="hmac-sha256", headers="date request-line", signature="c2ln""#,
        )
        .expect("params");
        assert_eq!(
            p,
            Params {
                username: "bob".into(),
                algorithm: "hmac-sha256".into(),
                headers: vec!["date".into(), "request-line".into()],
                signature: "c2ln".into(),
            }
        );
        assert!(params(r#"hmac username="bob", algorithm="hmac-sha256""#).is_none());
        assert!(params("Basic dXNlcjpwYXNz").is_none());
        assert!(params("").is_none());
    }

    #[test]
    fn clock_skew_must_be_positive() {
        assert!(positive(&json!(1)).is_ok());
        assert_eq!(
            positive(&json!(-10)),
            Err("value must be greater than 0".to_owned())
        );
        assert!(positive(&json!(0)).is_err());
    }
}
