//! The realtime HTTP routes the official client calls: `connect` opens a
//! session, `subscribe` parks subscriptions on it, and the WebSocket
//! (`/api/v1/realtime?connectionId=...`) claims them, replaying what happened
//! since each was made. Presence is kept in memory per channel.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::Json as JsonResponse;
use domain::ErrorCode;
use serde_json::{json, Value as Json};

use super::protocol;
use crate::app::System;
use crate::error::ApiError;
use crate::extract::JsonBody;
use crate::service::{realtime, Caller};
use crate::wire::ok;

/// A body that may be empty (the client sends none on some routes).
fn optional_json(bytes: &Bytes) -> Result<Json, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Json::Null);
    }
    serde_json::from_slice(bytes).map_err(|e| ApiError::new(ErrorCode::ValidationError, format!("malformed JSON: {e}")))
}

fn session_of(body: &Json, headers: &HeaderMap) -> Option<String> {
    body.get("connectionId")
        .and_then(Json::as_str)
        .map(str::to_string)
        .or_else(|| headers.get("x-connection-id").and_then(|v| v.to_str().ok()).map(str::to_string))
}

/// `POST /realtime/connect {transport?, channels?}` -> `{connectionId, transport, url}`.
pub(crate) async fn connect(State(system): State<Arc<System>>, _caller: Caller, body: Bytes) -> Result<JsonResponse<Json>, ApiError> {
    let body = optional_json(&body)?;
    let transport = body.get("transport").and_then(Json::as_str).unwrap_or("websocket").to_string();
    if transport != "websocket" {
        return Err(ApiError::new(ErrorCode::ValidationError, format!("transport '{transport}' is not offered: use websocket")));
    }
    Ok(JsonResponse(ok(realtime::open_session(&system))))
}

/// `POST /realtime/disconnect {connectionId?}`.
pub(crate) async fn disconnect(State(system): State<Arc<System>>, _caller: Caller, headers: HeaderMap, body: Bytes) -> Result<JsonResponse<Json>, ApiError> {
    let body = optional_json(&body)?;
    if let Some(session) = session_of(&body, &headers) {
        realtime::close_session(&system, &session);
    }
    Ok(JsonResponse(ok(json!({"success": true}))))
}

/// `POST /realtime/subscribe {channel, events?, filter?, fields?, connectionId?}` -> `{subscriptionId, channel, position}`.
pub(crate) async fn subscribe(
    State(system): State<Arc<System>>,
    caller: Caller,
    headers: HeaderMap,
    JsonBody(body): JsonBody,
) -> Result<JsonResponse<Json>, ApiError> {
    let spec = protocol::changes_spec(&body)?;
    let subscribed = realtime::subscribe_parked(&system, &caller, session_of(&body, &headers).as_deref(), spec).await?;
    let channel = body.get("channel").or_else(|| body.get("object")).cloned().unwrap_or(Json::Null);
    Ok(JsonResponse(ok(json!({"subscriptionId": &*subscribed.id, "channel": channel, "position": subscribed.position}))))
}

/// `POST /realtime/unsubscribe {subscriptionId}`.
pub(crate) async fn unsubscribe(State(system): State<Arc<System>>, _caller: Caller, JsonBody(body): JsonBody) -> Result<JsonResponse<Json>, ApiError> {
    let Some(id) = body.get("subscriptionId").and_then(Json::as_str) else {
        return Err(ApiError::new(ErrorCode::MissingRequiredField, "unsubscribe needs 'subscriptionId'"));
    };
    Ok(JsonResponse(ok(json!({"success": realtime::unsubscribe(&system, id)}))))
}

/// `PUT /realtime/presence {channel, state}`.
pub(crate) async fn set_presence(State(system): State<Arc<System>>, caller: Caller, JsonBody(body): JsonBody) -> Result<JsonResponse<Json>, ApiError> {
    let Some(channel) = body.get("channel").and_then(Json::as_str) else {
        return Err(ApiError::new(ErrorCode::MissingRequiredField, "presence needs a 'channel'"));
    };
    let state = body.get("state").cloned().unwrap_or(Json::Null);
    let status = state.get("status").and_then(Json::as_str).unwrap_or("online");
    realtime::set_presence(&system, &caller, channel, status, state.get("metadata"))?;
    Ok(JsonResponse(ok(json!({"success": true}))))
}

/// `GET /realtime/presence/{channel}` -> `{channel, users: [...]}`.
pub(crate) async fn get_presence(State(system): State<Arc<System>>, _caller: Caller, Path(channel): Path<String>) -> JsonResponse<Json> {
    JsonResponse(ok(json!({"channel": channel, "users": realtime::presence(&system, &channel)})))
}
