//! Authentication and permission routes (rest.md): `/auth/sign-up/email`,
//! `/auth/sign-in/email`, `/auth/sign-out`, `/auth/get-session`,
//! `/auth/check`, `/auth/permissions/{object}`, `/auth/permissions/effective`,
//! and API keys at `/auth/api-keys` (`POST {name, expiresAt?}` -> 201 with the
//! key shown once, `GET`, `DELETE /{id}`).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json as JsonResponse;
use domain::ErrorCode;
use serde_json::Value as Json;

use crate::app::System;
use crate::error::ApiError;
use crate::extract::{bearer_of, ClientAddress, JsonBody};
use crate::service::{api_keys, auth, permissions, Caller};
use crate::wire::{ok, position_headers};

fn field<'a>(body: &'a Json, key: &str) -> Result<&'a str, ApiError> {
    body.get(key).and_then(Json::as_str).filter(|s| !s.is_empty()).ok_or_else(|| ApiError::new(ErrorCode::MissingRequiredField, format!("'{key}' is required")))
}

/// `POST /api/v1/auth/sign-up/email {email, password, name?}` -> `{token, user, session}`.
pub(crate) async fn sign_up(State(system): State<Arc<System>>, JsonBody(body): JsonBody) -> Result<Response, ApiError> {
    let payload = auth::sign_up(&system, field(&body, "email")?, field(&body, "password")?.to_string(), body.get("name").and_then(Json::as_str)).await?;
    Ok(JsonResponse(ok(payload)).into_response())
}

/// `POST /api/v1/auth/sign-in/email {email, password}` -> `{token, user, session}`; 401
/// `invalid_credentials`, 429 `rate_limit_exceeded` after repeated failures.
pub(crate) async fn sign_in(State(system): State<Arc<System>>, client: ClientAddress, JsonBody(body): JsonBody) -> Result<Response, ApiError> {
    let payload = auth::sign_in(&system, &client.to_string(), field(&body, "email")?, field(&body, "password")?.to_string()).await?;
    Ok(JsonResponse(ok(payload)).into_response())
}

/// `POST /api/v1/auth/sign-out`: answers the sign-out's `X-Log-Position`; a
/// request carrying it as `X-Min-Position` is refused on any node.
pub(crate) async fn sign_out(State(system): State<Arc<System>>, caller: Caller) -> Result<Response, ApiError> {
    let position = auth::sign_out(&system, &caller).await?;
    Ok((position_headers(position), JsonResponse(ok(serde_json::json!({"success": true})))).into_response())
}

/// `GET /api/v1/auth/get-session` -> `{session, user}` (`null` without a valid token).
pub(crate) async fn get_session(State(system): State<Arc<System>>, headers: HeaderMap, uri: Uri) -> Result<JsonResponse<Json>, ApiError> {
    Ok(JsonResponse(ok(auth::session_of(&system, bearer_of(&headers, &uri).as_deref()).await?)))
}

/// `POST /api/v1/auth/check {object, action, recordId?, field?}` -> `{allowed, reason?}`.
pub(crate) async fn check(State(system): State<Arc<System>>, caller: Caller, JsonBody(body): JsonBody) -> Result<JsonResponse<Json>, ApiError> {
    let (record, field_name) = (body.get("recordId").and_then(Json::as_str), body.get("field").and_then(Json::as_str));
    Ok(JsonResponse(ok(permissions::check(&system, &caller, field(&body, "object")?, field(&body, "action")?, record, field_name).await?)))
}

/// `GET /api/v1/auth/permissions/{object}`.
pub(crate) async fn permissions_of(State(system): State<Arc<System>>, caller: Caller, Path(object): Path<String>) -> Result<JsonResponse<Json>, ApiError> {
    Ok(JsonResponse(ok(permissions::permissions_of(&system, &caller, &object)?)))
}

/// `GET /api/v1/auth/permissions/effective`.
pub(crate) async fn effective(State(system): State<Arc<System>>, caller: Caller) -> JsonResponse<Json> {
    JsonResponse(ok(permissions::effective(&system, &caller)))
}

/// `POST /api/v1/auth/api-keys {name, expiresAt?}` -> 201.
pub(crate) async fn create_key(State(system): State<Arc<System>>, caller: Caller, JsonBody(body): JsonBody) -> Result<Response, ApiError> {
    let key = api_keys::create(&system, &caller, field(&body, "name")?, body.get("expiresAt").and_then(Json::as_str)).await?;
    Ok((StatusCode::CREATED, JsonResponse(ok(key))).into_response())
}

/// `GET /api/v1/auth/api-keys`.
pub(crate) async fn list_keys(State(system): State<Arc<System>>, caller: Caller) -> Result<JsonResponse<Json>, ApiError> {
    Ok(JsonResponse(ok(api_keys::list(&system, &caller).await?)))
}

/// `DELETE /api/v1/auth/api-keys/{id}`.
pub(crate) async fn revoke_key(State(system): State<Arc<System>>, caller: Caller, Path(id): Path<String>) -> Result<JsonResponse<Json>, ApiError> {
    Ok(JsonResponse(ok(api_keys::revoke(&system, &caller, &id).await?)))
}
