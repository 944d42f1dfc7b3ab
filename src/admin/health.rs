//! Upstream health on the Admin API, as Kong answers it: `GET /upstreams/{u}/health` (each
//! target with `health` and `data`; `?balancer_health=1` for the balancer as a whole) and
//! `PUT /upstreams/{u}/targets/{t}[/{address}]/healthy|unhealthy` (204; 400 when the upstream
//! has no health checker). Health lives in the node's balancers, reached through the
//! [`Node`](crate::node::Node), never through the proxy.

use axum::response::{IntoResponse, Response};
use axum::Json;
use http::StatusCode;
use serde_json::{json, Map, Value};

use super::catalogue;
use super::entities::{escape, find_target, find_upstream, page_request, Req};
use super::error::ApiError;
use super::AdminState;
use crate::balancer::spec::TargetSpec;
use crate::balancer::status;
use crate::store::schema::Doc;

/// The upstream named or identified by `u`, and its id; 404 when there is none.
async fn upstream_and_id(state: &AdminState, u: &str) -> Result<(Doc, String), ApiError> {
    let upstream = find_upstream(&state.store, u)
        .await?
        .ok_or(ApiError::NotFound)?;
    let id = upstream
        .get("id")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    Ok((upstream, id))
}

/// `GET /upstreams/{u}/health`.
pub(super) async fn get(state: &AdminState, req: &Req, u: &str) -> Result<Response, ApiError> {
    let (_, id) = upstream_and_id(state, u).await?;
    let node_id = state.node.id.to_string();
    let balancer = state.node.balancers.get(&id);
    if req.query("balancer_health") == Some("1") {
        let data = balancer.map_or(Value::Null, |b| status::balancer(&b.layout()));
        return Ok(Json(json!({"data": data, "next": null, "node_id": node_id})).into_response());
    }
    let _ = catalogue::nested("upstreams", "targets").ok_or(ApiError::NotFound)?;
    let mut page_req = page_request(req)?;
    page_req.parent = Some(("upstream".to_owned(), id));
    let page = state.store.page("targets", &page_req).await?;
    let layout = balancer.map(|b| b.layout());
    let data: Vec<Value> = page
        .data
        .into_iter()
        .map(|mut doc| {
            if let (Some(layout), Some(t)) = (&layout, TargetSpec::read(&doc)) {
                match status::target(layout, &t.name, t.port) {
                    Some((health, data)) => {
                        doc.insert("health".into(), json!(health));
                        doc.insert("data".into(), data);
                    }
                    None => {
                        doc.insert("health".into(), json!("DNS_ERROR"));
                    }
                }
            }
            Value::Object(doc)
        })
        .collect();
    let mut body = Map::new();
    body.insert("data".into(), Value::Array(data));
    match page.offset {
        Some(token) => {
            body.insert(
                "next".into(),
                json!(format!(
                    "/upstreams/{}/health?offset={}",
                    escape(u),
                    escape(&token)
                )),
            );
            body.insert("offset".into(), json!(token));
        }
        None => {
            body.insert("next".into(), Value::Null);
        }
    }
    body.insert("node_id".into(), json!(node_id));
    Ok(Json(Value::Object(body)).into_response())
}

/// `PUT /upstreams/{u}/targets/{t}[/{address}]/healthy|unhealthy`.
pub(super) async fn set(
    state: &AdminState,
    u: &str,
    t: &str,
    address: Option<&str>,
    healthy: bool,
) -> Result<Response, ApiError> {
    let (upstream, id) = upstream_and_id(state, u).await?;
    let name = upstream
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let target = find_target(&state.store, &id, t)
        .await?
        .and_then(|d| TargetSpec::read(&d))
        .ok_or(ApiError::NotFound)?;
    // `{address}`: ip[:port], port 8000 when absent; a name sets every address of the target.
    let address = match address {
        None => None,
        Some(a) => {
            let normalized = crate::store::entities::target_address(a)
                .ok_or_else(|| ApiError::message(StatusCode::BAD_REQUEST, "invalid address"))?;
            let (host, port) = normalized
                .rsplit_once(':')
                .and_then(|(h, p)| Some((h.to_owned(), p.parse::<u16>().ok()?)))
                .ok_or_else(|| ApiError::message(StatusCode::BAD_REQUEST, "invalid address"))?;
            host.trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<std::net::IpAddr>()
                .ok()
                .map(|ip| (ip, port))
        }
    };
    let Some(balancer) = state.node.balancers.get(&id) else {
        return Err(ApiError::message(
            StatusCode::BAD_REQUEST,
            format!("Upstream {name} has no balancer"),
        ));
    };
    balancer
        .set_health(&target, address, healthy)
        .map_err(|e| ApiError::message(StatusCode::BAD_REQUEST, &e))?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
