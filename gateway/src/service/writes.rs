//! What a write carries to the command service for its caller: the actor
//! (who the events name), the caller's write guard on the object (checked
//! under the write lock), the owner stamped on a create, and passwords
//! hashed before they reach a command, an event or a log line. A write with
//! an idempotency key carries the fingerprint of its request as the events'
//! correlation id, so a key reused for a different request is told apart.

use std::sync::Arc;

use commands::service::CommandMeta;
pub use commands::service::{Command, Outcome};
use domain::security::{PrincipalKind, WriteGuard};
use domain::value::Record;
use domain::ErrorCode;
use serde_json::{Map, Value as Json};

use super::auth::{hash_password, MIN_PASSWORD};
use super::caller::Caller;
use crate::app::System;
use crate::error::ApiError;

/// The command metadata of a caller's writes to `object` (`None` for metadata commands).
/// An idempotency key is scoped to the caller and the object: another caller
/// reusing the same key never gets the first caller's result.
/// `commands` are the request as sent (before [`prepare`]): with a key,
/// their fingerprint becomes the correlation id.
pub fn meta(system: &System, caller: &Caller, object: Option<&str>, idempotency_key: Option<String>, commands: &[Command]) -> Result<CommandMeta, ApiError> {
    let mut meta = CommandMeta::actor(caller.actor());
    meta.idempotency_key = idempotency_key.map(|key| format!("{}/{}/{key}", caller.actor(), object.unwrap_or("$meta")));
    if let Some(object) = object {
        meta.guard = WriteGuard::new(&caller.viewer.access, &system.commands.catalog(), object)?.map(Arc::new);
    }
    if meta.idempotency_key.is_some() {
        let passwords = meta.guard.as_deref().map(WriteGuard::passwords).cloned().unwrap_or_default();
        meta.correlation_id = Some(fingerprint(commands, &passwords));
    }
    Ok(meta)
}

/// What identifies a request for its idempotency key: the commands as sent,
/// with password values left out (an unsalted hash of a password is a secret).
fn fingerprint(commands: &[Command], passwords: &std::collections::BTreeSet<String>) -> domain::event::EventId {
    use sha2::Digest;
    let mut hasher = sha2::Sha256::new();
    for command in commands {
        let mut command = command.clone();
        if let Command::Create { data, .. } | Command::Update { patch: data, .. } = &mut command {
            for field in passwords {
                if let Some(value) = data.get_mut(field) {
                    *value = Json::Null;
                }
            }
        }
        hasher.update(format!("{command:?}").as_bytes());
        hasher.update([0]);
    }
    let digest = hasher.finalize();
    let mut id = [0u8; 16];
    id.copy_from_slice(&digest[..16]);
    id
}

/// Prepares a record command's fields for a caller: stamps the owner on a
/// create, hashes passwords. (Which fields it may write at all, the guard
/// checks under the write lock.)
pub async fn prepare(caller: &Caller, meta: &CommandMeta, command: &mut Command) -> Result<(), ApiError> {
    let Some(guard) = meta.guard.as_deref() else { return Ok(()) };
    let (data, creating) = match command {
        Command::Create { data, .. } => (data, true),
        Command::Update { patch, .. } => (patch, false),
        _ => return Ok(()),
    };
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
                if clear.chars().count() < MIN_PASSWORD {
                    return Err(ApiError::new(ErrorCode::ValueTooShort, format!("{field} needs at least {} characters", MIN_PASSWORD)));
                }
                let hashed = hash_password(clear.clone()).await?;
                data.insert(field.clone(), Json::String(hashed));
            }
            _ => return Err(ApiError::new(ErrorCode::InvalidField, format!("{field} must be text"))),
        }
    }
    Ok(())
}

/// Waits (bounded) until the write model holds the position the caller has
/// seen, so a write sent to this node after one acknowledged by another
/// (`X-Min-Position`) is decided knowing it: a record created there can be
/// changed here, a value freed there can be taken here.
pub async fn wait_for_seen(system: &System, caller: &Caller) -> Result<(), ApiError> {
    match caller.seen {
        Some(position) if !system.commands.wait_applied(position, system.read_wait).await => {
            Err(ApiError::new(domain::ErrorCode::Timeout, format!("this node has not reached log position {position} yet; retry")))
        }
        _ => Ok(()),
    }
}

/// Runs one command for a caller: its rights checked (under the write lock),
/// its fields prepared, its idempotency key scoped to it.
pub async fn execute(system: &System, caller: &Caller, idempotency_key: Option<String>, mut command: Command) -> Result<Outcome, ApiError> {
    let object = match &command {
        Command::Create { object, .. } | Command::Update { object, .. } | Command::Delete { object, .. } => Some(object.clone()),
        Command::Metadata(_) | Command::SkipParkedEvent { .. } => None,
        // Only the server's own processes append their steps.
        Command::Process { .. } => return Err(ApiError::new(domain::ErrorCode::PermissionDenied, "process steps are not written by callers")),
    };
    let meta = meta(system, caller, object.as_deref(), idempotency_key, std::slice::from_ref(&command))?;
    wait_for_seen(system, caller).await?;
    system.hooks.before(caller.principal(), &mut command)?;
    let operation = super::hooks::operation_of(&command);
    prepare(caller, &meta, &mut command).await?;
    let outcome = system.commands.execute(command, meta).await?;
    if let Some(operation) = operation {
        system.hooks.after(caller.principal(), operation, &outcome);
    }
    Ok(outcome)
}

/// The record a write leaves: the command's result with its formula fields
/// computed (reads of this node see the same, after the barrier), without the
/// fields the caller may not read.
pub fn written_record(system: &System, caller: &Caller, outcome: &Outcome) -> Option<Record> {
    let record = outcome.record.as_ref()?;
    let now = domain::Timestamp::from_micros(outcome.events.last().map(|e| e.occurred_at).unwrap_or_default());
    let object = system.commands.object(&outcome.object)?;
    let mut record = domain::formula::with_formula_fields(&object, record, now);
    let grant = caller.access().grant(&system.commands.catalog(), &object);
    for hidden in &grant.hidden {
        record.remove(hidden);
    }
    Some(record)
}

/// Takes the record id out of a create body (`id`, or `_id` as an alias).
pub fn take_id(data: &mut Map<String, Json>) -> Result<Option<String>, ApiError> {
    let mut id = None;
    for key in ["id", "_id"] {
        match data.remove(key) {
            None | Some(Json::Null) => {}
            Some(Json::String(s)) => id = Some(s),
            Some(other) => return Err(ApiError::new(ErrorCode::InvalidField, format!("{key} must be a string, got {}", crate::error::json_kind(&other)))),
        }
    }
    Ok(id)
}
