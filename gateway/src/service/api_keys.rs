//! API keys for machine clients: records of the internal `api_key` object,
//! each scoped to the user who made it (a key acts as that user). The secret
//! (`osk_` and 256 random bits) is shown once, at creation; only its SHA-256
//! is stored. Revoking deletes the record, at once on every node.

use commands::service::{Command, CommandMeta};
use domain::query::Query;
use domain::security::{PrincipalKind, SystemPermission};
use domain::value::Value;
use domain::{ErrorCode, Timestamp};
use projections::Viewer;
use serde_json::{json, Map, Value as Json};

use super::caller::Caller;
use super::tokens::{hash_token, new_token, API_KEY_PREFIX};
use crate::app::System;
use crate::error::ApiError;

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

/// Makes a key for the caller: `{id, name, key, prefix, expiresAt}` (the key shown this once).
pub async fn create(system: &System, caller: &Caller, name: &str, expires_at: Option<&str>) -> Result<Json, ApiError> {
    signed_in(caller)?;
    if name.trim().is_empty() {
        return Err(ApiError::new(ErrorCode::MissingRequiredField, "'name' is required"));
    }
    let key = format!("{API_KEY_PREFIX}{}", new_token()?);
    let mut data = Map::new();
    data.insert("user".into(), json!(caller.actor()));
    data.insert("name".into(), json!(name));
    data.insert("key_hash".into(), json!(hash_token(&key)));
    data.insert("prefix".into(), json!(&key[..API_KEY_PREFIX.len() + 6]));
    if let Some(expires) = expires_at {
        let at = Timestamp::parse(expires).ok_or_else(|| ApiError::new(ErrorCode::InvalidFormat, "expiresAt must be an ISO-8601 time"))?;
        data.insert("expires_at".into(), json!(at.to_rfc3339()));
    }
    let outcome = system.commands.execute(Command::Create { object: "api_key".into(), id: None, data }, CommandMeta::actor(caller.actor())).await?;
    let mut answer = key_json(&outcome.record.unwrap_or_default());
    answer["key"] = json!(key);
    Ok(answer)
}

/// The caller's keys (never a secret): `{keys}`.
pub async fn list(system: &System, caller: &Caller) -> Result<Json, ApiError> {
    signed_in(caller)?;
    let mut query = Query::by_field("api_key", "user", caller.actor());
    query.limit = Some(1000);
    let keys: Vec<Json> = system.reader.execute(&Viewer::system(), query).await?.records.iter().map(|r| key_json(r)).collect();
    Ok(json!({"keys": keys}))
}

/// Revokes one of the caller's keys (any key, with `manage_users`).
pub async fn revoke(system: &System, caller: &Caller, id: &str) -> Result<Json, ApiError> {
    signed_in(caller)?;
    let key = system.reader.get(&Viewer::system(), "api_key", id).await?;
    let owned = key.as_ref().is_some_and(|k| k.get("user").and_then(Value::as_str) == Some(caller.actor()));
    if key.is_none() || !(owned || caller.access().has(SystemPermission::ManageUsers)) {
        return Err(ApiError::new(ErrorCode::ResourceNotFound, format!("no API key '{id}'")));
    }
    let command = Command::Delete { object: "api_key".into(), id: id.to_string(), expected_version: None };
    system.commands.execute(command, CommandMeta::actor(caller.actor())).await?;
    Ok(json!({"id": id, "revoked": true}))
}
