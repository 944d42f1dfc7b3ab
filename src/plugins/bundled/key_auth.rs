//! `key-auth` (priority 1250): authenticates a consumer by an API key sent in a header, the
//! query string or the body (form, JSON or multipart), looked up in `keyauth_credentials`.
//!
//! For each configured key name, in order, the key is looked for in the header, then the
//! query, then the body (each only when enabled); the first name found decides. Failures are
//! 401 with `WWW-Authenticate: Key` (plus the realm): no key, several values for the key, or
//! an unknown key.

use std::sync::Arc;

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, CONTENT_TYPE};
use http::{Method, StatusCode, Uri};
use serde_json::json;

use super::auth::{self, Denied, DeniedBody};
use super::body_args::{Arg, BodyArgs};
use crate::plugins::identity::{self, Authenticated};
use crate::plugins::{BuildEnv, Ctx, Kind, Plugin, PluginError, Step};
use crate::store::schema::{typedefs, Doc, Field, PluginSchema, Record};

/// The kind.
pub struct KeyAuth;

/// One configured instance.
struct Instance {
    /// Each key name, with its header form.
    key_names: Vec<(String, HeaderName)>,
    hide_credentials: bool,
    anonymous: Option<String>,
    in_header: bool,
    in_query: bool,
    in_body: bool,
    run_on_preflight: bool,
    challenge: HeaderValue,
}

const NO_KEY: &str = "No API key found in request";
const DUPLICATE: &str = "Duplicate API key found";
const UNAUTHORIZED: &str = "Unauthorized";

impl Kind for KeyAuth {
    fn name(&self) -> &'static str {
        "key-auth"
    }

    fn priority(&self) -> i32 {
        1250
    }

    fn schema(&self) -> PluginSchema {
        let bool_field = |default: bool| Field::boolean().required().default(json!(default));
        let config = Record::new(vec![
            (
                "key_names",
                Field::array(Field::string().custom("header_name", typedefs::header_name))
                    .required()
                    .default(json!(["apikey"])),
            ),
            ("hide_credentials", bool_field(false)),
            ("anonymous", Field::string()),
            ("key_in_header", bool_field(true)),
            ("key_in_query", bool_field(true)),
            ("key_in_body", bool_field(false)),
            ("run_on_preflight", bool_field(true)),
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
        &[("keyauth_credentials", "key")]
    }

    fn build(&self, config: &Doc, _: &BuildEnv) -> Result<Arc<dyn Plugin>, String> {
        let key_names = auth::strings(config, "key_names")
            .into_iter()
            .map(|name| {
                HeaderName::from_bytes(name.as_bytes())
                    .map(|h| (name.clone(), h))
                    .map_err(|_| format!("key name '{name}' is not a header name"))
            })
            .collect::<Result<_, _>>()?;
        let realm = auth::text(config, "realm");
        Ok(Arc::new(Instance {
            key_names,
            hide_credentials: auth::flag(config, "hide_credentials", false),
            anonymous: auth::text(config, "anonymous"),
            in_header: auth::flag(config, "key_in_header", true),
            in_query: auth::flag(config, "key_in_query", true),
            in_body: auth::flag(config, "key_in_body", false),
            run_on_preflight: auth::flag(config, "run_on_preflight", true),
            challenge: auth::challenge("Key", realm.as_deref(), None)?,
        }))
    }
}

/// The values of query argument `name` in `query`: a lone `name` without `=` is a flag, not
/// text (as Kong's query parser reads it).
fn query_arg(query: &str, name: &str) -> Arg {
    let mut found = Arg::Absent;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = match pair.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (pair, None),
        };
        if !decoded_is(key, name) {
            continue;
        }
        if found != Arg::Absent {
            return Arg::Many;
        }
        found = match value {
            Some(v) => Arg::Text(decode(v)),
            None => Arg::Other,
        };
    }
    found
}

fn decode(s: &str) -> String {
    form_urlencoded::parse(format!("x={s}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

fn decoded_is(raw_key: &str, name: &str) -> bool {
    if !raw_key.contains(['%', '+']) {
        return raw_key == name;
    }
    decode(raw_key) == name
}

/// `uri` without query argument `name` (other arguments kept as sent).
fn without_query_arg(uri: &Uri, name: &str) -> Option<Uri> {
    let query = uri.query()?;
    let kept: Vec<&str> = query
        .split('&')
        .filter(|p| !p.is_empty() && !decoded_is(p.split('=').next().unwrap_or_default(), name))
        .collect();
    let path = uri.path();
    let rebuilt = if kept.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{}", kept.join("&"))
    };
    let mut parts = uri.clone().into_parts();
    parts.path_and_query = Some(rebuilt.parse().ok()?);
    Uri::from_parts(parts).ok()
}

/// A key as found: a header's value (text, checked), or text from the query or the body.
enum Key {
    Header(HeaderValue),
    Text(String),
}

impl Key {
    fn as_str(&self) -> &str {
        match self {
            // Only text values are kept (`to_str` succeeded when it was found).
            Key::Header(v) => v.to_str().unwrap_or_default(),
            Key::Text(t) => t,
        }
    }
}

/// Parses the body into `slot` unless done already.
fn parse_once<'b>(
    slot: &mut Option<Option<BodyArgs<'b>>>,
    content_type: Option<&str>,
    body: &'b [u8],
) {
    if slot.is_none() {
        *slot = Some(BodyArgs::parse(content_type, body));
    }
}

impl Instance {
    fn unauthorized(&self, message: &'static str) -> Denied {
        Denied::unauthorized(message, &self.challenge)
    }

    fn authenticate(&self, ctx: &mut Ctx) -> Result<(), Denied> {
        // Kept aside so the parsed arguments can borrow it while the request changes.
        let body: Bytes = if self.in_body {
            ctx.request_body().cloned().unwrap_or_default()
        } else {
            Bytes::new()
        };
        let content_type = match self.in_body {
            true => ctx.request.headers.get(CONTENT_TYPE),
            false => None,
        }
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
        // Parsed when first needed: `None` not yet, `Some(None)` unsupported or unparsable.
        let mut args: Option<Option<BodyArgs<'_>>> = None;
        let mut key = None;
        for (name, header) in &self.key_names {
            let mut found = Arg::Absent;
            // A header's text value is kept as the value itself (no copy).
            let mut in_header = None;
            if self.in_header {
                let mut values = ctx.request.headers.get_all(header).iter();
                match (values.next(), values.next()) {
                    (None, _) => {}
                    (Some(v), None) => match v.to_str() {
                        Ok(_) => in_header = Some(v.clone()),
                        Err(_) => {
                            found = Arg::Text(String::from_utf8_lossy(v.as_bytes()).into_owned())
                        }
                    },
                    (Some(_), Some(_)) => found = Arg::Many,
                }
            }
            if in_header.is_none() {
                if found == Arg::Absent && self.in_query {
                    found = query_arg(ctx.request.uri.query().unwrap_or_default(), name);
                }
                if found == Arg::Absent && self.in_body {
                    parse_once(&mut args, content_type.as_deref(), &body);
                    found = args
                        .as_ref()
                        .and_then(Option::as_ref)
                        .map_or(Arg::Absent, |a| a.get(name));
                }
            }
            let hit = match (in_header, found) {
                (Some(value), _) => Key::Header(value),
                (None, Arg::Text(value)) => Key::Text(value),
                (None, Arg::Many) => return Err(self.unauthorized(DUPLICATE)),
                (None, Arg::Absent | Arg::Other) => continue,
            };
            if self.hide_credentials {
                if let Some(uri) = without_query_arg(&ctx.request.uri, name) {
                    ctx.request.uri = uri;
                }
                ctx.request.headers.remove(header);
                if self.in_body {
                    parse_once(&mut args, content_type.as_deref(), &body);
                    if let Some(Some(a)) = &args {
                        ctx.set_request_body(a.without(name));
                    }
                }
            }
            key = Some(hit);
            break;
        }
        let key = key
            .as_ref()
            .map(Key::as_str)
            .filter(|k| !k.is_empty())
            .ok_or_else(|| self.unauthorized(NO_KEY))?;
        let found = identity::by_key(ctx.snapshot(), key, || {
            let Some(credential) = ctx
                .snapshot()
                .index
                .find("keyauth_credentials", "key", key)
                .first()
            else {
                return Err(self.unauthorized(UNAUTHORIZED));
            };
            let id = credential
                .get("id")
                .and_then(|v| v.as_str())
                .unwrap_or_default();
            let record = auth::credential(credential, id);
            let Some(consumer) = auth::consumer_of(ctx, &record) else {
                tracing::error!(credential = %id, "key-auth credential without consumer");
                return Err(Denied {
                    status: StatusCode::INTERNAL_SERVER_ERROR,
                    body: DeniedBody::Error("An unexpected error occurred".into()),
                    challenge: None,
                });
            };
            Ok(Authenticated {
                consumer,
                credential: record,
            })
        })?;
        ctx.authenticate(found.consumer, Some(found.credential));
        Ok(())
    }
}

impl Plugin for Instance {
    fn access<'a>(&'a self, ctx: &'a mut Ctx) -> Result<Step<'a>, PluginError> {
        if !self.run_on_preflight && ctx.request.method == Method::OPTIONS {
            return Ok(Step::Done);
        }
        auth::run(ctx, self.anonymous.as_deref(), |ctx| self.authenticate(ctx));
        Ok(Step::Done)
    }

    fn reads_request_body(&self) -> bool {
        self.in_body
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_arguments() {
        assert_eq!(
            query_arg("a=1&apikey=x%2By", "apikey"),
            Arg::Text("x+y".into())
        );
        assert_eq!(query_arg("apikey=1&apikey=2", "apikey"), Arg::Many);
        assert_eq!(query_arg("apikey", "apikey"), Arg::Other);
        assert_eq!(query_arg("api%6Bey=k", "apikey"), Arg::Text("k".into()));
        assert_eq!(query_arg("", "apikey"), Arg::Absent);
        let uri: Uri = "/p?a=1&apikey=k&b=2".parse().expect("uri");
        assert_eq!(
            without_query_arg(&uri, "apikey").expect("uri"),
            "/p?a=1&b=2"
        );
        let uri: Uri = "/p?apikey=k".parse().expect("uri");
        assert_eq!(without_query_arg(&uri, "apikey").expect("uri"), "/p");
    }
}
