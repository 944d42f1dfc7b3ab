//! What the authentication plugins (key-auth, basic-auth, jwt, hmac-auth) share: Kong's
//! "logical AND / logical OR" flow around one authentication attempt, the anonymous consumer,
//! finding a credential's consumer, and nginx's lenient base64.
//!
//! Without `anonymous` a plugin is a gate of its own ("AND"): a failed attempt answers the
//! request. With `anonymous` it is one of several alternatives ("OR"): it steps aside when an
//! earlier plugin already authenticated a credential, and a failed attempt maps the request to
//! the anonymous consumer instead of refusing it. An anonymous mapping is no credential, so a
//! later auth plugin still tries (and replaces the anonymous consumer when it succeeds).

use std::borrow::Cow;
use std::sync::Arc;

use base64::alphabet::{Alphabet, STANDARD, URL_SAFE};
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine;
use http::header::{HeaderValue, WWW_AUTHENTICATE};
use http::StatusCode;
use serde_json::Value;

use crate::plugins::{Credential, Ctx, Exit};
use crate::store::schema::Doc;

/// How an attempt failed; turned into an answer only when the request is refused.
#[derive(Debug)]
pub(super) struct Denied {
    /// The status.
    pub status: StatusCode,
    /// The body.
    pub body: DeniedBody,
    /// `WWW-Authenticate`, when the plugin sends one.
    pub challenge: Option<HeaderValue>,
}

/// The body of a refusal.
#[derive(Debug)]
pub(super) enum DeniedBody {
    /// Through Kong's error API: negotiated format, with the request id.
    Error(Cow<'static, str>),
    /// Kong's "exit with a table": compact JSON, as is.
    Json(Value),
}

impl Denied {
    /// A 401 through the error API.
    pub fn unauthorized(message: impl Into<Cow<'static, str>>, challenge: &HeaderValue) -> Denied {
        Denied {
            status: StatusCode::UNAUTHORIZED,
            body: DeniedBody::Error(message.into()),
            challenge: Some(challenge.clone()),
        }
    }

    fn into_exit(self, ctx: &Ctx) -> Exit {
        let mut exit = match self.body {
            DeniedBody::Error(message) => ctx.error(self.status, &message),
            DeniedBody::Json(body) => Exit::json(self.status, &body),
        };
        if let Some(challenge) = self.challenge {
            exit.headers.insert(WWW_AUTHENTICATE, challenge);
        }
        exit
    }
}

/// Runs one authentication `attempt` the way Kong's auth plugins do, per `anonymous`.
pub(super) fn run(
    ctx: &mut Ctx,
    anonymous: Option<&str>,
    attempt: impl FnOnce(&mut Ctx) -> Result<(), Denied>,
) {
    match anonymous {
        // Logical OR: an earlier plugin authenticated a credential; nothing to add.
        Some(_) if ctx.credential().is_some() => {}
        Some(anonymous) => {
            if attempt(ctx).is_err() {
                if let Err(e) = ctx.authenticate_anonymous(anonymous) {
                    tracing::error!("{e}");
                    let exit = ctx.error(StatusCode::INTERNAL_SERVER_ERROR, &e.0);
                    ctx.exit(exit);
                }
            }
        }
        // Logical AND: this plugin's failure refuses the request.
        None => {
            if let Err(denied) = attempt(ctx) {
                let exit = denied.into_exit(ctx);
                ctx.exit(exit);
            }
        }
    }
}

/// The consumer that owns the credential of `record`, if it exists.
pub(super) fn consumer_of(ctx: &Ctx, record: &Credential) -> Option<Arc<Doc>> {
    let id = record.consumer_id.as_deref()?;
    ctx.snapshot().index.get("consumers", id).cloned()
}

/// The [`Credential`] record of `doc`, identified upstream by `identifier`.
pub(super) fn credential(doc: &Arc<Doc>, identifier: &str) -> Credential {
    crate::plugins::identity::credential(doc, identifier)
}

/// A `WWW-Authenticate` value: `scheme` alone, or with `realm="<realm>"` and `extra`.
pub(super) fn challenge(
    scheme: &str,
    realm: Option<&str>,
    extra: Option<&str>,
) -> Result<HeaderValue, String> {
    let mut params: Vec<String> = Vec::new();
    if let Some(realm) = realm {
        params.push(format!("realm=\"{realm}\""));
    }
    params.extend(extra.map(str::to_owned));
    let text = if params.is_empty() {
        scheme.to_owned()
    } else {
        format!("{scheme} {}", params.join(", "))
    };
    HeaderValue::from_str(&text).map_err(|_| {
        format!(
            "realm '{}' cannot be sent in a header",
            realm.unwrap_or_default()
        )
    })
}

/// A string config field.
pub(super) fn text(config: &Doc, field: &str) -> Option<String> {
    config.get(field).and_then(Value::as_str).map(str::to_owned)
}

/// A boolean config field.
pub(super) fn flag(config: &Doc, field: &str, default: bool) -> bool {
    config
        .get(field)
        .and_then(Value::as_bool)
        .unwrap_or(default)
}

/// A list-of-strings config field.
pub(super) fn strings(config: &Doc, field: &str) -> Vec<String> {
    config
        .get(field)
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

const fn lenient(alphabet: &Alphabet) -> GeneralPurpose {
    GeneralPurpose::new(
        alphabet,
        GeneralPurposeConfig::new()
            .with_decode_padding_mode(DecodePaddingMode::Indifferent)
            .with_decode_allow_trailing_bits(true),
    )
}

const NGX_STANDARD: GeneralPurpose = lenient(&STANDARD);
const NGX_URL: GeneralPurpose = lenient(&URL_SAFE);

/// nginx's base64 decoding (`ngx.decode_base64`, or `decode_base64url` when `url`): input
/// ends at the first `=`, padding is optional, stray trailing bits are ignored, and any
/// character outside the alphabet fails.
pub(super) fn decode_base64(input: &str, url: bool) -> Option<Vec<u8>> {
    let data = input.split('=').next().unwrap_or_default();
    let engine = if url { &NGX_URL } else { &NGX_STANDARD };
    engine.decode(data).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_is_as_lenient_as_nginx() {
        assert_eq!(
            decode_base64("dXNlcjpwYXNz", false).as_deref(),
            Some(&b"user:pass"[..])
        );
        assert_eq!(
            decode_base64("dXNlcjpwYXM=", false).as_deref(),
            Some(&b"user:pas"[..])
        );
        assert_eq!(
            decode_base64("dXNlcjpwYXM=junk", false).as_deref(),
            Some(&b"user:pas"[..])
        );
        assert_eq!(
            decode_base64("dXNlcjpwYXM", false).as_deref(),
            Some(&b"user:pas"[..])
        );
        assert!(decode_base64("not base64!", false).is_none());
        assert!(decode_base64("abcde", false).is_none(), "a lone sixth char");
        assert_eq!(
            decode_base64("-_8", true).as_deref(),
            Some(&[0xfb, 0xff][..])
        );
        assert!(
            decode_base64("+/8", true).is_none(),
            "standard chars in url mode"
        );
    }

    #[test]
    fn challenges() {
        assert_eq!(
            challenge("Key", None, None).unwrap_or_else(|e| panic!("{e}")),
            "Key"
        );
        assert_eq!(
            challenge("Bearer", Some("r"), Some("error=\"invalid_token\""))
                .unwrap_or_else(|e| panic!("{e}")),
            "Bearer realm=\"r\", error=\"invalid_token\""
        );
        assert!(challenge("Basic", Some("a\nb"), None).is_err());
    }
}
