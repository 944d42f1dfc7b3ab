//! `/tags` and `/tags/{tag}`: every tagged entity, across entity types.

use axum::extract::{Query, State};
use axum::response::Response;
use http::{StatusCode, Uri};
use percent_encoding::percent_decode_str;
use std::collections::HashMap;

use super::error::ApiError;
use super::AdminState;
use crate::store::DbError;

/// `GET /tags` (a `tags` filter is ignored, as in Kong).
pub async fn all(
    State(state): State<AdminState>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    list(&state, None, &q).await
}

/// `GET /tags/{tag}`.
pub async fn one(
    State(state): State<AdminState>,
    uri: Uri,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let raw = uri
        .path()
        .trim_start_matches("/tags/")
        .trim_end_matches('/');
    let tag = percent_decode_str(raw).decode_utf8().map_err(|_| {
        ApiError::message(
            StatusCode::BAD_REQUEST,
            "invalid value: tag must be valid utf-8",
        )
    })?;
    list(&state, Some(&tag), &q).await
}

async fn list(
    state: &AdminState,
    tag: Option<&str>,
    q: &HashMap<String, String>,
) -> Result<Response, ApiError> {
    let size = match q.get("size") {
        Some(s) => Some(
            s.parse::<usize>()
                .map_err(|_| ApiError::Db(DbError::InvalidSize("size must be a number")))?,
        ),
        None => None,
    };
    let page = state
        .store
        .tags(tag, size, q.get("offset").map(String::as_str))
        .await?;
    let base = match tag {
        Some(t) => format!("/tags/{}", super::entities::escape(t)),
        None => "/tags".to_owned(),
    };
    Ok(super::entities::page_body(page, &base, ""))
}
