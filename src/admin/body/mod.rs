//! Admin API request bodies: from `Content-Type` and bytes to the JSON document that entity
//! validation reads.
//!
//! Decoding happens in two steps because form bodies carry no types:
//! 1. [`decode`] picks the format from the one `Content-Type` header and parses the bytes:
//!    JSON into an object, `application/x-www-form-urlencoded` and `multipart/form-data` into a
//!    [`Form`] tree whose values are still text, YAML (for `/config` only) into raw text.
//! 2. [`Decoded::into_doc`] turns that into a document, typing form values by the target
//!    schema (`"8080"` is a port number, `"true"` a boolean, `""` a cleared field). JSON is
//!    never coerced: a wrong type there is the client's and validation says so.
//!
//! The step between is where the handler learns what it needs to pick the schema: a plugin's
//! `config` is typed by that plugin's record, known only once `name` is read ([`Decoded::text`])
//! or, on PATCH, fetched from the stored plugin.
//!
//! Behaviour follows Kong's `kong/api/api_helpers.lua` (`before_filter`, `parse_params`) and
//! `kong/api/arguments.lua`; the rules are listed on [`decode`] and in the `form` and `coerce` modules.
//! Errors map to Kong's answers through [`BodyError::status`] and [`BodyError::message`].

mod coerce;
mod form;
mod multipart;
#[cfg(test)]
mod tests;

use http::header::CONTENT_TYPE;
use http::{HeaderMap, StatusCode};
use serde_json::Value;

use crate::store::schema::{Doc, Record};

pub use form::Form;

/// Why a request body cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    /// Invalid JSON, an empty JSON body, or JSON that is not an object.
    #[error("Cannot parse JSON body")]
    Json,
    /// A format this endpoint does not read, or a body without `Content-Type`.
    #[error("Unsupported Media Type")]
    UnsupportedMediaType,
    /// The request repeats the `Content-Type` header.
    #[error("Multiple Content-Type headers not allowed")]
    MultipleContentTypes,
    /// A form body with more than 1000 fields.
    #[error("Too many arguments")]
    TooManyArguments,
    /// A `multipart/form-data` body without a boundary or with broken framing.
    #[error("Cannot parse multipart/form-data body: {0}")]
    Multipart(&'static str),
}

impl BodyError {
    /// The HTTP status Kong answers with.
    pub fn status(&self) -> StatusCode {
        match self {
            BodyError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            BodyError::Json
            | BodyError::MultipleContentTypes
            | BodyError::TooManyArguments
            | BodyError::Multipart(_) => StatusCode::BAD_REQUEST,
        }
    }

    /// The `message` of Kong's JSON answer, or `None` for an empty body (415).
    pub fn message(&self) -> Option<String> {
        match self {
            BodyError::UnsupportedMediaType => None,
            other => Some(other.to_string()),
        }
    }
}

/// A parsed request body, not yet typed by a schema.
#[derive(Debug, Clone, PartialEq)]
pub enum Decoded {
    /// No `Content-Type` and no body: no arguments.
    Empty,
    /// A JSON object, used as it is.
    Json(Doc),
    /// A urlencoded or multipart form; values are text until [`Decoded::into_doc`].
    Form(Form),
    /// `application/yaml` or `text/yaml`, which only `/config` reads (as a declarative file).
    Yaml(String),
}

/// Parses a POST/PUT/PATCH body by its `Content-Type` (Kong ignores bodies of other methods,
/// so the caller does not call this for them).
///
/// | `Content-Type` (media type, any case; parameters ignored but `boundary`) | result |
/// |---|---|
/// | none, empty body | [`Decoded::Empty`] |
/// | none, non-empty body | [`BodyError::UnsupportedMediaType`] |
/// | more than one header | [`BodyError::MultipleContentTypes`] |
/// | `application/json` | [`Decoded::Json`], or [`BodyError::Json`] unless an object |
/// | `application/x-www-form-urlencoded` | [`Decoded::Form`] |
/// | `multipart/form-data` | [`Decoded::Form`] (each named part's content is the value) |
/// | `application/yaml`, `text/yaml` | [`Decoded::Yaml`] (invalid UTF-8 replaced) |
/// | anything else, or a header that is not visible ASCII | [`BodyError::UnsupportedMediaType`] |
pub fn decode(headers: &HeaderMap, body: &[u8]) -> Result<Decoded, BodyError> {
    let mut types = headers.get_all(CONTENT_TYPE).iter();
    let Some(content_type) = types.next() else {
        return if body.is_empty() {
            Ok(Decoded::Empty)
        } else {
            Err(BodyError::UnsupportedMediaType)
        };
    };
    if types.next().is_some() {
        return Err(BodyError::MultipleContentTypes);
    }
    let content_type = content_type
        .to_str()
        .map_err(|_| BodyError::UnsupportedMediaType)?;
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    match essence.as_str() {
        "application/json" => match serde_json::from_slice(body) {
            Ok(Value::Object(doc)) => Ok(Decoded::Json(doc)),
            _ => Err(BodyError::Json),
        },
        "application/x-www-form-urlencoded" => form::urlencoded(body).map(Decoded::Form),
        "multipart/form-data" => {
            let boundary = multipart::params(content_type)
                .skip(1)
                .find(|(k, _)| k.eq_ignore_ascii_case("boundary"))
                .map(|(_, v)| v)
                .filter(|b| !b.is_empty())
                .ok_or(BodyError::Multipart("missing boundary"))?;
            let parts =
                multipart::parts(body, &boundary).map_err(|e| BodyError::Multipart(e.reason()))?;
            let mut form = Form::default();
            for (name, content) in parts {
                form.add(&name, form::Node::Text(content))?;
            }
            Ok(Decoded::Form(form))
        }
        "application/yaml" | "text/yaml" => {
            Ok(Decoded::Yaml(String::from_utf8_lossy(body).into_owned()))
        }
        _ => Err(BodyError::UnsupportedMediaType),
    }
}

impl Decoded {
    /// The document for an entity whose fields are `record`.
    ///
    /// JSON comes back untouched; a form is coerced by `record` (rules in the `coerce` module), with
    /// `Kind::Any` fields (a plugin's `config`) typed by `any` when given and left as text
    /// otherwise. YAML is [`BodyError::UnsupportedMediaType`]: only `/config` reads it, from
    /// [`Decoded::Yaml`] directly.
    pub fn into_doc(self, record: &Record, any: Option<&Record>) -> Result<Doc, BodyError> {
        match self {
            Decoded::Empty => Ok(Doc::new()),
            Decoded::Json(doc) => Ok(doc),
            Decoded::Form(form) => Ok(coerce::document(form, record, any)),
            Decoded::Yaml(_) => Err(BodyError::UnsupportedMediaType),
        }
    }

    /// The top-level field `name` when it is a string (a form field given once), e.g. a
    /// plugin's `name`, needed to pick the record its `config` is typed by.
    pub fn text(&self, name: &str) -> Option<&str> {
        match self {
            Decoded::Json(doc) => doc.get(name).and_then(Value::as_str),
            Decoded::Form(form) => form.text(name),
            Decoded::Empty | Decoded::Yaml(_) => None,
        }
    }

    /// Whether the body carried no arguments at all.
    pub fn is_empty(&self) -> bool {
        match self {
            Decoded::Empty => true,
            Decoded::Json(doc) => doc.is_empty(),
            Decoded::Form(form) => form.is_empty(),
            Decoded::Yaml(text) => text.is_empty(),
        }
    }
}
