//! `basic-auth` (priority 1100): authenticates a consumer by `Basic` credentials in
//! `Proxy-Authorization` (tried first) or `Authorization`, checked against
//! `basicauth_credentials` (passwords stored as Kong's salted SHA-1).
//!
//! Every failure is the same 401 `Unauthorized` with `WWW-Authenticate: Basic realm="<realm>"`,
//! so a client learns nothing about which part was wrong.

use std::sync::{Arc, LazyLock};

use http::header::{HeaderName, HeaderValue, AUTHORIZATION, PROXY_AUTHORIZATION};
use regex::bytes::Regex;
use serde_json::{json, Value};
use sha1::{Digest, Sha1};

use super::auth::{self, Denied};
use crate::plugins::{BuildEnv, Ctx, Kind, Plugin, PluginError, Step};
use crate::store::schema::{Doc, Field, PluginSchema, Record};

/// The kind.
pub struct BasicAuth;

/// One configured instance.
struct Instance {
    anonymous: Option<String>,
    hide_credentials: bool,
    challenge: HeaderValue,
}

impl Kind for BasicAuth {
    fn name(&self) -> &'static str {
        "basic-auth"
    }

    fn priority(&self) -> i32 {
        1100
    }

    fn schema(&self) -> PluginSchema {
        let config = Record::new(vec![
            ("anonymous", Field::string()),
            (
                "hide_credentials",
                Field::boolean().required().default(json!(false)),
            ),
            (
                "realm",
                Field::string().required().default(json!("service")),
            ),
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
        &[("basicauth_credentials", "username")]
    }

    fn build(&self, config: &Doc, _: &BuildEnv) -> Result<Arc<dyn Plugin>, String> {
        let realm = auth::text(config, "realm").unwrap_or_else(|| "service".into());
        Ok(Arc::new(Instance {
            anonymous: auth::text(config, "anonymous"),
            hide_credentials: auth::flag(config, "hide_credentials", false),
            challenge: auth::challenge("Basic", Some(&realm), None)?,
        }))
    }
}

/// `Basic <base64>` anywhere in the value, as Kong matches it.
static BASIC: LazyLock<Option<Regex>> = LazyLock::new(|| Regex::new(r"\s*[Bb]asic\s*(.+)").ok());
/// `user:password`; the user is at least one character and holds no colon.
static USER_PASS: LazyLock<Option<Regex>> = LazyLock::new(|| Regex::new(r"(?-u)([^:]+):(.*)").ok());

/// The user name and password in an authorization header value.
fn user_and_password(value: &[u8]) -> Option<(String, Vec<u8>)> {
    let encoded = BASIC.as_ref()?.captures(value)?.get(1)?.as_bytes();
    let decoded = auth::decode_base64(std::str::from_utf8(encoded).ok()?, false)?;
    let parts = USER_PASS.as_ref()?.captures(&decoded)?;
    let user = String::from_utf8_lossy(parts.get(1)?.as_bytes()).into_owned();
    Some((user, parts.get(2)?.as_bytes().to_vec()))
}

/// Whether `password` hashes to the credential's stored password.
fn password_matches(credential: &Doc, password: &[u8]) -> bool {
    let (Some(stored), Some(consumer)) = (
        credential.get("password").and_then(Value::as_str),
        credential
            .get("consumer")
            .and_then(|c| c.get("id"))
            .and_then(Value::as_str),
    ) else {
        return false;
    };
    let mut h = Sha1::new();
    h.update(password);
    h.update(consumer.as_bytes());
    let digest = h.finalize();
    const HEX: &[u8; 16] = b"0123456789abcdef";
    stored.len() == digest.len() * 2
        && digest
            .iter()
            .zip(stored.as_bytes().chunks(2))
            .all(|(b, hex)| hex == [HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]])
}

impl Instance {
    /// Reads `header` for credentials (hiding it when configured) and finds the credential.
    fn read_header(
        &self,
        ctx: &mut Ctx,
        header: &HeaderName,
    ) -> (Option<Vec<u8>>, Option<Arc<Doc>>) {
        let parsed = ctx
            .request
            .headers
            .get(header)
            .and_then(|v| user_and_password(v.as_bytes()));
        if self.hide_credentials {
            ctx.request.headers.remove(header);
        }
        match parsed {
            Some((user, password)) => {
                let credential = ctx
                    .snapshot()
                    .index
                    .find("basicauth_credentials", "username", &user)
                    .first()
                    .cloned();
                (Some(password), credential)
            }
            None => (None, None),
        }
    }

    fn authenticate(&self, ctx: &mut Ctx) -> Result<(), Denied> {
        let denied = || Denied::unauthorized("Unauthorized", &self.challenge);
        let headers = &ctx.request.headers;
        if !headers.contains_key(AUTHORIZATION) && !headers.contains_key(PROXY_AUTHORIZATION) {
            return Err(denied());
        }
        // Proxy-Authorization first; Authorization when it names no known user.
        let (mut password, mut credential) = self.read_header(ctx, &PROXY_AUTHORIZATION);
        if credential.is_none() {
            (password, credential) = self.read_header(ctx, &AUTHORIZATION);
            if password.is_none() {
                return Err(denied());
            }
        }
        let (Some(credential), Some(password)) = (credential, password) else {
            return Err(denied());
        };
        if !password_matches(&credential, &password) {
            return Err(denied());
        }
        let username = credential
            .get("username")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let record = auth::credential(&credential, username);
        let consumer = auth::consumer_of(ctx, &record).ok_or_else(denied)?;
        ctx.authenticate(consumer, Some(record));
        Ok(())
    }
}

impl Plugin for Instance {
    fn access<'a>(&'a self, ctx: &'a mut Ctx) -> Result<Step<'a>, PluginError> {
        auth::run(ctx, self.anonymous.as_deref(), |ctx| self.authenticate(ctx));
        Ok(Step::Done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::entities::hash_basicauth_password;

    #[test]
    fn parses_like_kong() {
        let parse = |v: &str| user_and_password(v.as_bytes());
        // "user:pass"
        assert_eq!(
            parse("Basic dXNlcjpwYXNz"),
            Some(("user".into(), b"pass".to_vec()))
        );
        assert_eq!(
            parse("basic   dXNlcjpwYXNz"),
            Some(("user".into(), b"pass".to_vec()))
        );
        // "a:b:c": the password keeps its colons.
        assert_eq!(parse("Basic YTpiOmM="), Some(("a".into(), b"b:c".to_vec())));
        // ":pass": no user.
        assert_eq!(parse("Basic OnBhc3M="), None);
        assert_eq!(parse("Basic !!!"), None);
        assert_eq!(parse("Bearer dXNlcjpwYXNz"), None);
        // "user": no colon.
        assert_eq!(parse("Basic dXNlcg=="), None);
    }

    #[test]
    fn passwords_are_checked_against_kongs_hash() {
        let consumer = "c0ffee00-0000-4000-8000-000000000000";
        let mut credential = Doc::new();
        credential.insert(
            "password".into(),
            json!(hash_basicauth_password("s3cret", consumer)),
        );
        credential.insert("consumer".into(), json!({ "id": consumer }));
        assert!(password_matches(&credential, b"s3cret"));
        assert!(!password_matches(&credential, b"s3cret "));
        assert!(!password_matches(&credential, b""));
    }
}
