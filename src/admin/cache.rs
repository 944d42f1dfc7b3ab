//! `/cache`: this node keeps no per-key entity cache (the proxy runs from a snapshot of the whole
//! configuration), so `GET /cache/{key}` finds nothing, and a purge means "rebuild the snapshot
//! from the datastore now" — what an operator purging Kong's cache wants to achieve.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::StatusCode;

use super::{message, AdminState};
use crate::store::Change;

/// `GET /cache/{key}`: nothing is cached per key.
pub async fn get_key() -> Response {
    message(StatusCode::NOT_FOUND, "Not found")
}

/// `DELETE /cache` and `DELETE /cache/{key}`: rebuild the configuration snapshot; 204.
pub async fn purge(State(state): State<AdminState>) -> Response {
    state.store.notify(Change {
        op: "purge".into(),
        entity: None,
        id: None,
    });
    StatusCode::NO_CONTENT.into_response()
}
