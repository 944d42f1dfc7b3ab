//! The one place Admin API failures become responses, in Kong's shapes and statuses.
//!
//! Datastore errors keep Kong's `{code, name, message, fields}` body; database failures are
//! logged with their detail and answered with a generic 500, so no SQL text ever leaves.

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use axum::Json;
use http::StatusCode;

use super::message;
use crate::store::DbError;

/// Why an Admin API request failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A datastore error, answered in Kong's error shape.
    #[error(transparent)]
    Db(#[from] DbError),
    /// `{"message":"Not found"}`.
    #[error("Not found")]
    NotFound,
    /// `{"message":"Method not allowed"}`.
    #[error("Method not allowed")]
    MethodNotAllowed,
    /// Any other `{"message": ...}` answer.
    #[error("{1}")]
    Message(StatusCode, String),
    /// An answer with a status and no body (415).
    #[error("{0}")]
    Status(StatusCode),
}

impl From<super::body::BodyError> for ApiError {
    fn from(e: super::body::BodyError) -> ApiError {
        match e.message() {
            Some(text) => ApiError::Message(e.status(), text),
            None => ApiError::Status(e.status()),
        }
    }
}

impl ApiError {
    /// A `{"message": ...}` answer with `status`.
    pub fn message(status: StatusCode, text: impl Into<String>) -> ApiError {
        ApiError::Message(status, text.into())
    }
}

/// The HTTP status Kong uses for each datastore error code.
fn status_of(e: &DbError) -> StatusCode {
    match e.code() {
        5 => StatusCode::CONFLICT,
        6 => StatusCode::NOT_FOUND,
        12 => StatusCode::METHOD_NOT_ALLOWED,
        1 | 2 | 3 | 4 | 7 | 9 | 10 | 11 | 13 | 19 => StatusCode::BAD_REQUEST,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response<Body> {
        match self {
            ApiError::Db(DbError::UnknownEntity(_)) | ApiError::NotFound => {
                message(StatusCode::NOT_FOUND, "Not found")
            }
            ApiError::Db(e) => {
                let status = status_of(&e);
                if status == StatusCode::INTERNAL_SERVER_ERROR {
                    tracing::error!(error = %e, "Admin API request failed");
                    return message(status, "An unexpected error occurred");
                }
                (status, Json(e.to_json())).into_response()
            }
            ApiError::MethodNotAllowed => {
                message(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed")
            }
            ApiError::Message(status, text) => message(status, &text),
            ApiError::Status(status) => status.into_response(),
        }
    }
}
