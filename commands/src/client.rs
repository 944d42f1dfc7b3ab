//! An HTTP client for the Admin API.

use std::time::Duration;

use serde::de::DeserializeOwned;

use crate::wire::{ErrorBody, NodeInfo, Status};

/// Client failures.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The base URL is unusable.
    #[error("invalid Admin API URL '{url}': {reason}")]
    Url {
        /// The URL given.
        url: String,
        /// Why.
        reason: String,
    },
    /// The node could not be reached or the exchange failed.
    #[error("could not reach the Admin API at {url}: {source}")]
    Transport {
        /// Request URL.
        url: String,
        /// Cause.
        source: reqwest::Error,
    },
    /// The node answered with an error status.
    #[error("{url} answered {status}: {}", body.message)]
    Api {
        /// Request URL.
        url: String,
        /// HTTP status.
        status: u16,
        /// Kong's error body.
        body: ErrorBody,
    },
    /// The body was not what the contract says.
    #[error("unexpected response from {url}: {reason}")]
    Decode {
        /// Request URL.
        url: String,
        /// Why.
        reason: String,
    },
}

/// A client for one node's Admin API.
#[derive(Debug, Clone)]
pub struct AdminClient {
    base: String,
    http: reqwest::Client,
}

impl AdminClient {
    /// A client for `base_url` (e.g. `http://127.0.0.1:8001`).
    pub fn new(base_url: &str) -> Result<AdminClient, ClientError> {
        let url_err = |reason: String| ClientError::Url {
            url: base_url.to_string(),
            reason,
        };
        if !(base_url.starts_with("http://") || base_url.starts_with("https://")) {
            return Err(url_err("expected http:// or https://".into()));
        }
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| url_err(e.to_string()))?;
        Ok(AdminClient {
            base: base_url.trim_end_matches('/').to_string(),
            http,
        })
    }

    /// `GET /`.
    pub async fn info(&self) -> Result<NodeInfo, ClientError> {
        self.get("/").await
    }

    /// `GET /status`.
    pub async fn status(&self) -> Result<Status, ClientError> {
        self.get("/status").await
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        let url = format!("{}{path}", self.base);
        let transport = |source| ClientError::Transport {
            url: url.clone(),
            source,
        };
        let resp = self.http.get(&url).send().await.map_err(transport)?;
        let status = resp.status();
        let bytes = resp.bytes().await.map_err(transport)?;
        if !status.is_success() {
            let body = serde_json::from_slice(&bytes).unwrap_or_else(|_| ErrorBody {
                message: String::from_utf8_lossy(&bytes).into_owned(),
                code: None,
                name: None,
                fields: None,
            });
            return Err(ClientError::Api {
                url,
                status: status.as_u16(),
                body,
            });
        }
        serde_json::from_slice(&bytes).map_err(|e| ClientError::Decode {
            url,
            reason: e.to_string(),
        })
    }
}
