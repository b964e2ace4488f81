//! HTTP extractors shared by the transports (REST, GraphQL over HTTP, the
//! WebSocket upgrades), whose rejections speak the protocol's error envelope:
//! JSON bodies, query pairs, the client's address, and the [`Caller`] (the
//! bearer token, `Authorization: Bearer` or `?access_token=`, resolved by the
//! service layer).

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use domain::ErrorCode;
use serde_json::Value as Json;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, Uri};

use crate::app::System;
use crate::error::ApiError;
use crate::service::Caller;

/// The bearer token of a request: `Authorization: Bearer <token>`, or
/// `?access_token=` (browsers cannot set headers on a WebSocket).
pub(crate) fn bearer_of(headers: &HeaderMap, uri: &Uri) -> Option<String> {
    if let Some(value) = headers.get(axum::http::header::AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        let value = value.trim();
        if let Some(token) = value.strip_prefix("Bearer ").or_else(|| value.strip_prefix("bearer ")) {
            return Some(token.trim().to_string());
        }
    }
    let query = uri.query()?;
    serde_urlencoded::from_str::<Vec<(String, String)>>(query).ok()?.into_iter().find(|(k, _)| k == "access_token").map(|(_, v)| v)
}

impl FromRequestParts<Arc<System>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, system: &Arc<System>) -> Result<Self, Self::Rejection> {
        caller_of(system, parts).await
    }
}

/// The caller of a request (also for handlers that extract by hand).
pub(crate) async fn caller_of(system: &System, parts: &Parts) -> Result<Caller, ApiError> {
    // A position the client got from another node (a sign-out there) is waited for.
    let min = crate::wire::min_position(&parts.headers, None)?;
    let caller = Caller::resolve(system, bearer_of(&parts.headers, &parts.uri).as_deref(), min).await?;
    if let Some(info) = parts.extensions.get::<Arc<crate::request_info::RequestInfo>>() {
        info.set_actor(caller.actor());
    }
    Ok(caller)
}

/// The client's address, when the server was served with connection info.
pub(crate) struct ClientAddress(Option<SocketAddr>);

impl std::fmt::Display for ClientAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(address) => write!(f, "{}", address.ip()),
            None => f.write_str("local"),
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ClientAddress {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientAddress(parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0)))
    }
}

/// A JSON body: malformed JSON, a wrong content type or an oversize body are 4xx errors in the envelope.
pub(crate) struct JsonBody(pub Json);

/// A JSON body that may be left out (an empty body is `None`); otherwise as [`JsonBody`].
pub(crate) struct OptionalJsonBody(pub Option<Json>);

async fn read_json<S: Send + Sync>(req: Request, state: &S) -> Result<Option<Json>, ApiError> {
    let content_type = req.headers().get(axum::http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let bytes = Bytes::from_request(req, state).await.map_err(|e| {
        let status = e.status();
        let message = if status == StatusCode::PAYLOAD_TOO_LARGE {
            format!("the request body is larger than the limit of {} bytes", crate::wire::MAX_BODY)
        } else {
            format!("cannot read the request body: {e}")
        };
        ApiError::new(ErrorCode::ValidationError, message).with_status(status)
    })?;
    if bytes.is_empty() {
        return Ok(None);
    }
    if !content_type.is_empty() && !is_json(&content_type) {
        return Err(ApiError::new(ErrorCode::ValidationError, format!("unsupported content type '{content_type}': send application/json"))
            .with_status(StatusCode::UNSUPPORTED_MEDIA_TYPE));
    }
    serde_json::from_slice(&bytes).map(Some).map_err(|e| ApiError::new(ErrorCode::ValidationError, format!("malformed JSON: {e}")))
}

impl<S: Send + Sync> FromRequest<S> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match read_json(req, state).await? {
            Some(json) => Ok(JsonBody(json)),
            None => Err(ApiError::new(ErrorCode::ValidationError, "the request body is empty; send a JSON document")),
        }
    }
}

impl<S: Send + Sync> FromRequest<S> for OptionalJsonBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        read_json(req, state).await.map(OptionalJsonBody)
    }
}

/// `application/json` or `application/*+json` (parameters such as `charset` allowed):
/// anything else a browser form could send cross-site is refused.
fn is_json(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    essence == "application/json" || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// The raw query string as ordered pairs (repeated keys kept).
pub(crate) struct QueryPairs(pub Vec<(String, String)>);

impl<S: Send + Sync> FromRequestParts<S> for QueryPairs {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let raw = parts.uri.query().unwrap_or("");
        serde_urlencoded::from_str::<Vec<(String, String)>>(raw)
            .map(QueryPairs)
            .map_err(|e| ApiError::new(ErrorCode::InvalidQuery, format!("cannot read the query string: {e}")))
    }
}

impl QueryPairs {
    /// Removes and returns a parameter.
    pub fn take(&mut self, key: &str) -> Option<String> {
        let index = self.0.iter().position(|(k, _)| k == key)?;
        Some(self.0.remove(index).1)
    }
}
