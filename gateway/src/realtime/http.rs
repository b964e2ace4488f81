//! The realtime HTTP routes the official client calls: `connect` opens a
//! session, `subscribe` parks subscriptions on it, and the WebSocket
//! (`/api/v1/realtime?connectionId=...`) claims them, replaying what happened
//! since each was made. Presence is kept in memory per channel.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::Json as JsonResponse;
use domain::ErrorCode;
use projections::live::Resume;
use serde_json::{json, Value as Json};

use super::protocol;
use crate::app::System;
use crate::error::ApiError;
use crate::extract::JsonBody;
use crate::routes::support::{barrier_on, ok};
use crate::service::Caller;

/// A session's subscriptions waiting for its WebSocket: (id, position made at).
struct Parked {
    since: std::time::Instant,
    subscriptions: Vec<(String, u64)>,
}

/// Sessions (subscriptions waiting for their WebSocket) and presence.
#[derive(Default)]
pub struct Sessions {
    /// session id -> (subscription id, position it was made at).
    parked: Mutex<HashMap<String, Parked>>,
    /// channel -> user -> presence.
    presence: Mutex<HashMap<String, HashMap<String, Json>>>,
}

impl Sessions {
    /// The subscriptions parked on a session (it is forgotten afterwards).
    pub fn take_session(&self, session: &str) -> Vec<(String, u64)> {
        self.parked.lock().unwrap_or_else(|p| p.into_inner()).remove(session).map(|p| p.subscriptions).unwrap_or_default()
    }
}

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
pub(crate) async fn connect(State(system): State<Arc<System>>, body: Bytes) -> Result<JsonResponse<Json>, ApiError> {
    let body = optional_json(&body)?;
    let transport = body.get("transport").and_then(Json::as_str).unwrap_or("websocket").to_string();
    if transport != "websocket" {
        return Err(ApiError::new(ErrorCode::ValidationError, format!("transport '{transport}' is not offered: use websocket")));
    }
    let session = uuid::Uuid::new_v4().to_string();
    {
        let mut parked = system.realtime.parked.lock().unwrap_or_else(|p| p.into_inner());
        // Sessions never claimed by a socket go when their subscriptions would (the hub's retention).
        parked.retain(|_, p| p.since.elapsed() < projections::live::RETAIN);
        parked.insert(session.clone(), Parked { since: std::time::Instant::now(), subscriptions: Vec::new() });
    }
    Ok(JsonResponse(ok(json!({"connectionId": session, "transport": "websocket", "url": format!("/api/v1/realtime?connectionId={session}")}))))
}

/// `POST /realtime/disconnect {connectionId?}`.
pub(crate) async fn disconnect(State(system): State<Arc<System>>, headers: HeaderMap, body: Bytes) -> Result<JsonResponse<Json>, ApiError> {
    let body = optional_json(&body)?;
    if let Some(session) = session_of(&body, &headers) {
        for (id, _) in system.realtime.take_session(&session) {
            system.hub.unsubscribe(&id);
        }
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
    barrier_on(&system, &system.realtime_handle, &headers, None).await?;
    let subscribed = system.hub.subscribe(None, caller.viewer.clone(), spec, Resume::default())?;
    if let Some(session) = session_of(&body, &headers) {
        let mut parked = system.realtime.parked.lock().unwrap_or_else(|p| p.into_inner());
        let Some(list) = parked.get_mut(&session) else {
            system.hub.unsubscribe(&subscribed.id);
            return Err(ApiError::new(ErrorCode::ResourceNotFound, format!("no realtime connection '{session}': call connect first")));
        };
        list.subscriptions.push((subscribed.id.to_string(), subscribed.position));
    }
    let channel = body.get("channel").or_else(|| body.get("object")).cloned().unwrap_or(Json::Null);
    Ok(JsonResponse(ok(json!({"subscriptionId": &*subscribed.id, "channel": channel, "position": subscribed.position}))))
}

/// `POST /realtime/unsubscribe {subscriptionId}`.
pub(crate) async fn unsubscribe(State(system): State<Arc<System>>, JsonBody(body): JsonBody) -> Result<JsonResponse<Json>, ApiError> {
    let Some(id) = body.get("subscriptionId").and_then(Json::as_str) else {
        return Err(ApiError::new(ErrorCode::MissingRequiredField, "unsubscribe needs 'subscriptionId'"));
    };
    let found = system.hub.unsubscribe(id);
    Ok(JsonResponse(ok(json!({"success": found}))))
}

/// `PUT /realtime/presence {channel, state}`.
pub(crate) async fn set_presence(State(system): State<Arc<System>>, caller: Caller, JsonBody(body): JsonBody) -> Result<JsonResponse<Json>, ApiError> {
    let Some(channel) = body.get("channel").and_then(Json::as_str) else {
        return Err(ApiError::new(ErrorCode::MissingRequiredField, "presence needs a 'channel'"));
    };
    let state = body.get("state").cloned().unwrap_or(Json::Null);
    let status = state.get("status").and_then(Json::as_str).unwrap_or("online");
    if !["online", "away", "busy", "offline"].contains(&status) {
        return Err(ApiError::new(ErrorCode::InvalidField, format!("presence status '{status}' is not one of online, away, busy, offline")));
    }
    let user = caller.actor().to_string();
    let entry = json!({"userId": user, "status": status, "lastSeen": commands::clock::now().to_rfc3339(), "metadata": state.get("metadata")});
    system.realtime.presence.lock().unwrap_or_else(|p| p.into_inner()).entry(channel.to_string()).or_default().insert(user, entry);
    Ok(JsonResponse(ok(json!({"success": true}))))
}

/// `GET /realtime/presence/{channel}` -> `{channel, users: [...]}`.
pub(crate) async fn get_presence(State(system): State<Arc<System>>, Path(channel): Path<String>) -> JsonResponse<Json> {
    let presence = system.realtime.presence.lock().unwrap_or_else(|p| p.into_inner());
    let users: Vec<Json> = presence.get(&channel).map(|m| m.values().cloned().collect()).unwrap_or_default();
    JsonResponse(ok(json!({"channel": channel, "users": users})))
}
