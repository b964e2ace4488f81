//! What a write carries to the command service for its caller: the actor
//! (who the events name), the caller's write guard on the object (checked
//! under the write lock), the owner stamped on a create, and passwords
//! hashed before they reach a command, an event or a log line.

use std::sync::Arc;

use commands::service::{Command, CommandMeta};
use domain::security::{PrincipalKind, SystemPermission, WriteGuard};
use domain::ErrorCode;
use serde_json::{Map, Value as Json};

use super::auth::hash_password;
use super::caller::Caller;
use crate::app::System;
use crate::error::ApiError;

/// Fields of the `user` object that only user managers set through the data API.
const USER_ADMIN_FIELDS: [&str; 4] = ["profile", "permission_sets", "roles", "password"];

/// The command metadata of a caller's writes to `object` (`None` for metadata commands).
pub fn meta(system: &System, caller: &Caller, object: Option<&str>, idempotency_key: Option<String>) -> Result<CommandMeta, ApiError> {
    let mut meta = CommandMeta::actor(caller.actor());
    meta.idempotency_key = idempotency_key;
    if let Some(object) = object {
        meta.guard = WriteGuard::new(caller.access(), &system.commands.catalog(), object)?.map(Arc::new);
    }
    Ok(meta)
}

/// Prepares a record command's fields for a caller: refuses user-admin
/// fields without `manage_users`, stamps the owner on a create, hashes passwords.
pub async fn prepare(system: &System, caller: &Caller, meta: &CommandMeta, command: &mut Command) -> Result<(), ApiError> {
    let Some(guard) = meta.guard.as_deref() else { return Ok(()) };
    let (object, data, creating) = match command {
        Command::Create { object, data, .. } => (object.clone(), data, true),
        Command::Update { object, patch, .. } => (object.clone(), patch, false),
        _ => return Ok(()),
    };
    let canonical = system.commands.catalog().require(&object)?.name.clone();
    if canonical == "user" && !caller.access().has(SystemPermission::ManageUsers) {
        if let Some(field) = USER_ADMIN_FIELDS.iter().find(|f| data.contains_key(**f)) {
            return Err(ApiError::new(ErrorCode::FieldNotAccessible, format!("setting a user's {field} needs the manage_users permission")));
        }
    }
    if creating && caller.principal().kind == PrincipalKind::User {
        if let Some(owner) = guard.owner_to_stamp(data) {
            data.insert(owner.to_string(), Json::String(caller.actor().to_string()));
        }
    }
    hash_passwords(guard, data).await
}

async fn hash_passwords(guard: &WriteGuard, data: &mut Map<String, Json>) -> Result<(), ApiError> {
    for field in guard.passwords() {
        let Some(value) = data.get(field) else { continue };
        match value {
            Json::Null => {}
            Json::String(clear) => {
                if clear.chars().count() < super::auth::MIN_PASSWORD {
                    return Err(ApiError::new(ErrorCode::ValueTooShort, format!("{field} needs at least {} characters", super::auth::MIN_PASSWORD)));
                }
                let hashed = hash_password(clear.clone()).await?;
                data.insert(field.clone(), Json::String(hashed));
            }
            _ => return Err(ApiError::new(ErrorCode::InvalidField, format!("{field} must be text"))),
        }
    }
    Ok(())
}
