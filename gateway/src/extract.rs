//! Extractors whose rejections speak the protocol's error envelope.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use domain::ErrorCode;
use serde_json::Value as Json;

use crate::error::ApiError;

/// A JSON body: malformed JSON, a wrong content type or an oversize body are 4xx errors in the envelope.
pub(crate) struct JsonBody(pub Json);

impl<S: Send + Sync> FromRequest<S> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let content_type = req.headers().get(axum::http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            let status = e.status();
            let code = if status == StatusCode::PAYLOAD_TOO_LARGE { ErrorCode::MaxRecordsExceeded } else { ErrorCode::ValidationError };
            ApiError::new(code, format!("cannot read the request body: {e}")).with_status(status)
        })?;
        if bytes.is_empty() {
            return Err(ApiError::new(ErrorCode::ValidationError, "the request body is empty; send a JSON document"));
        }
        if !content_type.is_empty() && !content_type.contains("json") {
            return Err(ApiError::new(ErrorCode::ValidationError, format!("unsupported content type '{content_type}': send application/json"))
                .with_status(StatusCode::UNSUPPORTED_MEDIA_TYPE));
        }
        serde_json::from_slice(&bytes).map(JsonBody).map_err(|e| ApiError::new(ErrorCode::ValidationError, format!("malformed JSON: {e}")))
    }
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
