//! API keys for machine clients: records of the internal `api_key` object,
//! each scoped to the user who made it (a key acts as that user). The secret
//! (`osk_` and 256 random bits) is shown once, at creation; only its SHA-256
//! is stored. Revoking deletes the record, at once on every node.
//!
//! Routes: `POST /api/v1/auth/api-keys {name, expiresAt?}` -> 201 `{id, name, key, prefix, expiresAt}`;
//! `GET /api/v1/auth/api-keys` -> the caller's keys (never a secret);
//! `DELETE /api/v1/auth/api-keys/{id}`.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json as JsonResponse;
use commands::service::{Command, CommandMeta};
use domain::query::{Condition, Filter, Op, Operand, Query};
use domain::security::{PrincipalKind, SystemPermission};
use domain::value::Value;
use domain::{ErrorCode, Timestamp};
use projections::Viewer;
use serde_json::{json, Map, Value as Json};

use super::auth::{hash_token, new_token};
use super::caller::Caller;
use crate::app::System;
use crate::error::ApiError;
use crate::extract::JsonBody;
use crate::routes::support::ok;

/// What every API key starts with (tells a key from a session token).
pub const PREFIX: &str = "osk_";

fn signed_in(caller: &Caller) -> Result<(), ApiError> {
    if caller.principal().kind == PrincipalKind::User {
        Ok(())
    } else {
        Err(ApiError::new(ErrorCode::Unauthenticated, "sign in to manage API keys"))
    }
}

fn key_json(record: &domain::value::Record) -> Json {
    let text = |f: &str| record.get(f).map(Value::to_json).unwrap_or(Json::Null);
    json!({"id": text("id"), "name": text("name"), "prefix": text("prefix"), "expiresAt": text("expires_at"), "createdAt": text("created_at"), "userId": text("user")})
}

/// `POST /api/v1/auth/api-keys`.
pub(crate) async fn create(State(system): State<Arc<System>>, caller: Caller, JsonBody(body): JsonBody) -> Result<Response, ApiError> {
    signed_in(&caller)?;
    let name = body
        .get("name")
        .and_then(Json::as_str)
        .filter(|n| !n.trim().is_empty())
        .ok_or_else(|| ApiError::new(ErrorCode::MissingRequiredField, "'name' is required"))?;
    let key = format!("{PREFIX}{}", new_token()?);
    let mut data = Map::new();
    data.insert("user".into(), json!(caller.actor()));
    data.insert("name".into(), json!(name));
    data.insert("key_hash".into(), json!(hash_token(&key)));
    data.insert("prefix".into(), json!(&key[..PREFIX.len() + 6]));
    if let Some(expires) = body.get("expiresAt").filter(|v| !v.is_null()) {
        let text = expires.as_str().and_then(Timestamp::parse).ok_or_else(|| ApiError::new(ErrorCode::InvalidFormat, "expiresAt must be an ISO-8601 time"))?;
        data.insert("expires_at".into(), json!(text.to_rfc3339()));
    }
    let outcome = system.commands.execute(Command::Create { object: "api_key".into(), id: None, data }, CommandMeta::actor(caller.actor())).await?;
    let mut answer = key_json(&outcome.record.unwrap_or_default());
    answer["key"] = json!(key);
    Ok((StatusCode::CREATED, JsonResponse(ok(answer))).into_response())
}

fn of_user(user: &str) -> Filter {
    Filter::Cond(Condition { field: "user".into(), op: Op::Eq, value: Operand::Value(Value::Text(user.to_string())) })
}

/// `GET /api/v1/auth/api-keys`.
pub(crate) async fn list(State(system): State<Arc<System>>, caller: Caller) -> Result<JsonResponse<Json>, ApiError> {
    signed_in(&caller)?;
    let mut query = Query::new("api_key");
    query.filter = Some(of_user(caller.actor()));
    query.limit = Some(1000);
    let keys: Vec<Json> = system.reader.execute(&Viewer::system(), query).await?.records.iter().map(|r| key_json(r)).collect();
    Ok(JsonResponse(ok(json!({"keys": keys}))))
}

/// `DELETE /api/v1/auth/api-keys/{id}`: the caller's own key (or any, with `manage_users`).
pub(crate) async fn revoke(State(system): State<Arc<System>>, caller: Caller, Path(id): Path<String>) -> Result<JsonResponse<Json>, ApiError> {
    signed_in(&caller)?;
    let key = system.reader.get(&Viewer::system(), "api_key", &id).await?;
    let owned = key.as_ref().is_some_and(|k| k.get("user").and_then(Value::as_str) == Some(caller.actor()));
    if key.is_none() || !(owned || caller.access().has(SystemPermission::ManageUsers)) {
        return Err(ApiError::new(ErrorCode::ResourceNotFound, format!("no API key '{id}'")));
    }
    system.commands.execute(Command::Delete { object: "api_key".into(), id: id.clone(), expected_version: None }, CommandMeta::actor(caller.actor())).await?;
    Ok(JsonResponse(ok(json!({"id": id, "revoked": true}))))
}
