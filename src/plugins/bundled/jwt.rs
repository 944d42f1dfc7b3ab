//! `jwt` (priority 1450): authenticates a consumer by a signed JSON Web Token found in the
//! query string, a cookie or a `Bearer` header, whose key claim (`iss` by default, also looked
//! up in the token's header) names a `jwt_secrets` credential.
//!
//! Refusals are 401 with compact JSON (Kong's "exit with a table", no request id) and
//! `WWW-Authenticate: Bearer` — with `error="invalid_token"` once a token was found. Failed
//! claim checks answer an object keyed by claim, e.g. `{"exp":"token expired"}`.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use http::header::{HeaderName, HeaderValue, COOKIE};
use http::{Method, StatusCode};
use regex::Regex;
use serde_json::{json, Value};

use super::auth::{self, Denied, DeniedBody};
use super::jwt_token::{self, Claim, KeyError};
use crate::plugins::{BuildEnv, Ctx, Kind, Plugin, PluginError, Step};
use crate::store::schema::{
    Context, Doc, EntityCheck, Field, Path, PluginSchema, Record, SchemaErrors,
};

/// The kind.
pub struct Jwt;

/// One configured instance.
struct Instance {
    uri_param_names: Vec<String>,
    cookie_names: Vec<String>,
    header_names: Vec<HeaderName>,
    key_claim_name: String,
    secret_is_base64: bool,
    claims_to_verify: Vec<Claim>,
    anonymous: Option<String>,
    run_on_preflight: bool,
    maximum_expiration: f64,
    /// `WWW-Authenticate` when no token was found.
    challenge: HeaderValue,
    /// `WWW-Authenticate` for a bad token.
    invalid_token: HeaderValue,
    bearer: Regex,
}

/// `maximum_expiration` needs `exp` verified (Kong's conditional check).
fn maximum_expiration_needs_exp(doc: &Doc, _: &Context<'_>, path: &Path, errs: &mut SchemaErrors) {
    let max = doc
        .get("maximum_expiration")
        .and_then(Value::as_f64)
        .unwrap_or(0.0);
    let has_exp = doc
        .get("claims_to_verify")
        .and_then(Value::as_array)
        .is_some_and(|l| l.iter().any(|c| c == "exp"));
    if max > 0.0 && !has_exp {
        errs.field(&path.key("claims_to_verify"), "expected to contain: exp");
        errs.entity(
            "failed conditional validation given value of field 'config.maximum_expiration'",
        );
    }
}

impl Kind for Jwt {
    fn name(&self) -> &'static str {
        "jwt"
    }

    fn priority(&self) -> i32 {
        1450
    }

    fn schema(&self) -> PluginSchema {
        let config = Record::new(vec![
            (
                "uri_param_names",
                Field::set(Field::string()).default(json!(["jwt"])),
            ),
            (
                "cookie_names",
                Field::set(Field::string()).default(json!([])),
            ),
            ("key_claim_name", Field::string().default(json!("iss"))),
            (
                "secret_is_base64",
                Field::boolean().required().default(json!(false)),
            ),
            (
                "claims_to_verify",
                Field::set(Field::string().one_of(&["exp", "nbf"])),
            ),
            ("anonymous", Field::string()),
            (
                "run_on_preflight",
                Field::boolean().required().default(json!(true)),
            ),
            (
                "maximum_expiration",
                Field::number().default(json!(0)).between(0.0, 31_536_000.0),
            ),
            (
                "header_names",
                Field::set(Field::string()).default(json!(["authorization"])),
            ),
            ("realm", Field::string()),
        ])
        .checks(vec![EntityCheck::Custom(maximum_expiration_needs_exp)]);
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
        &[("jwt_secrets", "key")]
    }

    fn build(&self, config: &Doc, _: &BuildEnv) -> Result<Arc<dyn Plugin>, String> {
        let realm = auth::text(config, "realm");
        let header_names = auth::strings(config, "header_names")
            .iter()
            .map(|n| {
                HeaderName::from_bytes(n.replace('_', "-").as_bytes())
                    .map_err(|_| format!("'{n}' is not a header name"))
            })
            .collect::<Result<_, _>>()?;
        Ok(Arc::new(Instance {
            uri_param_names: auth::strings(config, "uri_param_names"),
            cookie_names: auth::strings(config, "cookie_names"),
            header_names,
            key_claim_name: auth::text(config, "key_claim_name").unwrap_or_else(|| "iss".into()),
            secret_is_base64: auth::flag(config, "secret_is_base64", false),
            claims_to_verify: auth::strings(config, "claims_to_verify")
                .iter()
                .filter_map(|c| Claim::parse(c))
                .collect(),
            anonymous: auth::text(config, "anonymous"),
            run_on_preflight: auth::flag(config, "run_on_preflight", true),
            maximum_expiration: config
                .get("maximum_expiration")
                .and_then(Value::as_f64)
                .unwrap_or(0.0),
            challenge: auth::challenge("Bearer", realm.as_deref(), None)?,
            invalid_token: auth::challenge(
                "Bearer",
                realm.as_deref(),
                Some("error=\"invalid_token\""),
            )?,
            bearer: Regex::new(r"\s*[Bb]earer\s+(.+)").map_err(|e| e.to_string())?,
        }))
    }
}

/// A token candidate: text, or a query argument given without a value.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Found {
    Text(String),
    Flag,
}

impl Instance {
    fn refuse(&self, message: impl Into<String>) -> Denied {
        Denied {
            status: StatusCode::UNAUTHORIZED,
            body: DeniedBody::Json(json!({ "message": message.into() })),
            challenge: Some(self.invalid_token.clone()),
        }
    }

    /// Every distinct token the request carries, in the query, cookies and headers.
    fn tokens(&self, ctx: &Ctx) -> Vec<Found> {
        let mut found: Vec<Found> = Vec::new();
        let mut add = |t: Found| {
            if !found.contains(&t) {
                found.push(t);
            }
        };
        if let Some(query) = ctx.request.uri.query() {
            for pair in query.split('&').filter(|p| !p.is_empty()) {
                let (key, value) = match pair.split_once('=') {
                    Some((k, v)) => (k, Some(v)),
                    None => (pair, None),
                };
                let key = decode_component(key);
                if !self.uri_param_names.contains(&key) {
                    continue;
                }
                match value.map(decode_component) {
                    None => add(Found::Flag),
                    Some(v) if v.is_empty() => {}
                    Some(v) => add(Found::Text(v)),
                }
            }
        }
        for name in &self.cookie_names {
            if let Some(v) = cookie(ctx, name).filter(|v| !v.is_empty()) {
                add(Found::Text(v.to_owned()));
            }
        }
        for name in &self.header_names {
            let Some(value) = ctx.request.headers.get(name) else {
                continue;
            };
            let value = String::from_utf8_lossy(value.as_bytes());
            if let Some(token) = self
                .bearer
                .captures(&value)
                .and_then(|c| c.get(1))
                .filter(|m| !m.is_empty())
            {
                add(Found::Text(token.as_str().to_owned()));
            }
        }
        found
    }

    fn authenticate(&self, ctx: &mut Ctx) -> Result<(), Denied> {
        let mut tokens = self.tokens(ctx);
        let token = match (tokens.pop(), tokens.is_empty()) {
            (None, _) => {
                return Err(Denied {
                    status: StatusCode::UNAUTHORIZED,
                    body: DeniedBody::Json(json!({"message": "Unauthorized"})),
                    challenge: Some(self.challenge.clone()),
                })
            }
            (Some(_), false) => return Err(self.refuse("Multiple tokens provided")),
            (Some(Found::Flag), true) => return Err(self.refuse("Unrecognizable token")),
            (Some(Found::Text(token)), true) => token,
        };
        let jwt = jwt_token::decode(&token).map_err(|e| self.refuse(format!("Bad token; {e}")))?;
        let claim = &self.key_claim_name;
        let key = match jwt.claims.get(claim).or_else(|| jwt.header.get(claim)) {
            None | Some(Value::Null | Value::Bool(false)) => {
                return Err(self.refuse(format!("No mandatory '{claim}' in claims")))
            }
            Some(Value::String(s)) if s.is_empty() => {
                return Err(self.refuse(format!("Invalid '{claim}' in claims")))
            }
            Some(Value::String(s)) => s.clone(),
            Some(other) => other.to_string(),
        };
        let Some(secret) = ctx
            .snapshot()
            .index
            .find("jwt_secrets", "key", &key)
            .first()
            .cloned()
        else {
            return Err(self.refuse(format!("No credentials found for given '{claim}'")));
        };
        let algorithm = secret
            .get("algorithm")
            .and_then(Value::as_str)
            .unwrap_or("HS256");
        if jwt.alg != algorithm {
            return Err(self.refuse("Invalid algorithm"));
        }
        let text = |f: &str| secret.get(f).and_then(Value::as_str);
        let key_material = if algorithm.starts_with("HS") {
            match text("secret") {
                Some(s) if self.secret_is_base64 => auth::decode_base64(s, true),
                Some(s) => Some(s.as_bytes().to_vec()),
                None => None,
            }
        } else {
            text("rsa_public_key").map(|pem| pem.as_bytes().to_vec())
        };
        let Some(key_material) = key_material else {
            return Err(self.refuse("Invalid key/secret"));
        };
        match jwt.verify(&key_material) {
            Ok(true) => {}
            Ok(false) => return Err(self.refuse("Invalid signature")),
            Err(e @ KeyError::Invalid) => {
                tracing::warn!(key = %key, error = %e, "jwt credential unusable");
                return Err(self.refuse("Invalid key/secret"));
            }
            Err(e @ KeyError::Unsupported(_)) => {
                tracing::error!(key = %key, error = %e, "jwt credential unusable");
                return Err(Denied {
                    status: StatusCode::INTERNAL_SERVER_ERROR,
                    body: DeniedBody::Error("An unexpected error occurred".into()),
                    challenge: None,
                });
            }
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs() as f64);
        if let Err(errors) = jwt_token::check_claims(
            &jwt.claims,
            &self.claims_to_verify,
            self.maximum_expiration,
            now,
        ) {
            return Err(Denied {
                status: StatusCode::UNAUTHORIZED,
                body: DeniedBody::Json(Value::Object(errors)),
                challenge: Some(self.invalid_token.clone()),
            });
        }
        let record = auth::credential(&secret, text("key").unwrap_or_default());
        let Some(consumer) = auth::consumer_of(ctx, &record) else {
            return Err(Denied {
                status: StatusCode::UNAUTHORIZED,
                body: DeniedBody::Json(
                    json!({"message": format!("Could not find consumer for '{claim}={key}'")}),
                ),
                challenge: None,
            });
        };
        ctx.authenticate(consumer, Some(record));
        // Kong's `kong.ctx.shared.authenticated_jwt_token`, for later plugins.
        ctx.set_shared("authenticated_jwt_token", token);
        Ok(())
    }
}

/// A percent-decoded query component (`+` is a space, as in forms).
fn decode_component(s: &str) -> String {
    if !s.contains(['%', '+']) {
        return s.to_owned();
    }
    form_urlencoded::parse(format!("x={s}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// The first value of cookie `name` (compared without case, as nginx does).
fn cookie<'c>(ctx: &'c Ctx, name: &str) -> Option<&'c str> {
    ctx.request
        .headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (k, v) = pair.split_once('=')?;
            k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
}

impl Plugin for Instance {
    fn access<'a>(&'a self, ctx: &'a mut Ctx) -> Result<Step<'a>, PluginError> {
        if !self.run_on_preflight && ctx.request.method == Method::OPTIONS {
            return Ok(Step::Done);
        }
        auth::run(ctx, self.anonymous.as_deref(), |ctx| self.authenticate(ctx));
        Ok(Step::Done)
    }
}
