//! Definitions: the objects a caller may use, described without the fields it
//! may not read; changing a definition (needs `manage_metadata`), a command
//! like any other.

use commands::service::Command;
use domain::metadata::{Catalog, MetadataCommand, ObjectDef, ObjectSpec};
use domain::security::SystemPermission;
use domain::{DomainError, ErrorCode};
use serde_json::Value as Json;

use super::barrier::{read_barrier, wait_for};
use super::caller::Caller;
use super::writes;
use crate::app::System;
use crate::error::ApiError;

/// The catalog a caller's generated API describes: its metadata version, the
/// key of its view (callers with the same key see the same), and the objects
/// and fields it may use.
pub fn catalog_for(system: &System, caller: &Caller) -> (u64, String, Catalog) {
    let (version, catalog) = system.hub.catalog();
    (version, caller.access().view_key(), caller.access().catalog_view(&catalog))
}

/// An object's definition as a caller may see it: fields it may not read are not described.
fn described(caller: &Caller, catalog: &Catalog, object: &ObjectDef) -> Option<Json> {
    let grant = caller.access().grant(catalog, object);
    if !grant.permission.can_read() && !grant.permission.create {
        return None;
    }
    let mut raw = object.raw.clone();
    let hidden: Vec<&String> = grant.hidden.iter().filter(|f| !grant.passwords.contains(*f)).collect();
    match raw.get_mut("fields") {
        Some(Json::Object(fields)) => hidden.iter().for_each(|f| {
            fields.remove(f.as_str());
        }),
        Some(Json::Array(fields)) => fields.retain(|f| !hidden.iter().any(|h| f.get("name").and_then(Json::as_str) == Some(h.as_str()))),
        _ => {}
    }
    Some(raw)
}

/// Every object the caller may use, described.
pub async fn objects(system: &System, caller: &Caller, min: Option<u64>) -> Result<Vec<Json>, ApiError> {
    read_barrier(system, min).await?;
    let catalog = system.reader.catalog();
    Ok(catalog.objects().filter_map(|o| described(caller, &catalog, o)).collect())
}

/// One object, described; one the caller may not use is not found (its existence is not told).
pub async fn object(system: &System, caller: &Caller, name: &str, min: Option<u64>) -> Result<Json, ApiError> {
    read_barrier(system, min).await?;
    let catalog = system.reader.catalog();
    described(caller, &catalog, catalog.require(name)?).ok_or_else(|| ApiError::from(DomainError::ObjectNotFound(name.to_string())))
}

/// What putting a definition did.
pub struct Saved {
    pub changed: bool,
    pub position: u64,
}

/// Creates or changes an object's definition (in the namespace it has).
pub async fn put_object(system: &System, caller: &Caller, name: &str, definition: Json, idempotency_key: Option<String>) -> Result<Saved, ApiError> {
    caller.require(SystemPermission::ManageMetadata)?;
    if !definition.is_object() {
        return Err(ApiError::new(ErrorCode::ValidationError, "an object definition is a JSON object"));
    }
    let namespace = system.commands.catalog().namespace_of(name).map(str::to_string);
    let command = Command::Metadata(MetadataCommand::PutObjects { objects: vec![ObjectSpec { definition, namespace }] });
    let outcome = system.commands.execute(command, writes::meta(system, caller, None, idempotency_key)?).await?;
    wait_for(system, outcome.position).await?;
    Ok(Saved { changed: !outcome.events.is_empty(), position: outcome.position })
}
