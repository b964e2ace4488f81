//! Definitions: the objects a caller may use, described without the fields it
//! may not read; changing a definition (needs `manage_metadata`), a command
//! like any other.

use commands::service::Command;
use domain::metadata::migration::ObjectMigration;
use domain::metadata::{Catalog, MetadataCommand, ObjectDef, ObjectSpec};
use domain::security::SystemPermission;
use domain::{DomainError, ErrorCode};
use serde_json::Value as Json;

use super::barrier::{read_barrier, wait_for};
use super::caller::Caller;
use super::writes;
use crate::app::System;
use crate::error::ApiError;

/// What names the API generated for a caller: the metadata version and the
/// key of the caller's view (callers with the same key see the same).
pub fn api_key(system: &System, caller: &Caller) -> (u64, String) {
    (system.hub.metadata_version(), caller.access().view_key())
}

/// The catalog a caller's generated API describes (the objects and fields it
/// may use), with its metadata version.
pub fn api_catalog(system: &System, caller: &Caller) -> (u64, Catalog) {
    let (version, catalog) = system.hub.catalog();
    (version, caller.access().catalog_view(&catalog))
}

/// An object's definition as a caller may see it: fields it may not read are not described.
fn described(caller: &Caller, catalog: &Catalog, object: &ObjectDef) -> Option<Json> {
    caller.access().describe(catalog, object).map(|shown| shown.raw)
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

/// A body is the definition, or `{"definition": ..., "migration": {field:
/// {backfill?, remap?}}}` for a change whose records need migrating (of the
/// object `name`).
pub fn with_migration(name: &str, body: Json) -> Result<(Json, Option<ObjectMigration>), ApiError> {
    let Json::Object(mut map) = body else { return Ok((body, None)) };
    if !map.contains_key("definition") {
        return Ok((Json::Object(map), None));
    }
    if let Some(other) = map.keys().find(|k| !["definition", "migration"].contains(&k.as_str())) {
        return Err(ApiError::new(ErrorCode::ValidationError, format!("a body with 'definition' may only add 'migration', not '{other}'")));
    }
    let definition = map.remove("definition").unwrap_or_default();
    let migration = match map.remove("migration") {
        None | Some(Json::Null) => None,
        Some(fields) => {
            Some(domain::metadata::migration::parse_object(name, &fields).map_err(|e| ApiError::new(ErrorCode::ValidationError, format!("migration: {e}")))?)
        }
    };
    Ok((definition, migration))
}

/// Creates or changes an object's definition (in the namespace it has).
pub async fn put_object(
    system: &System,
    caller: &Caller,
    name: &str,
    definition: Json,
    migration: Option<ObjectMigration>,
    idempotency_key: Option<String>,
) -> Result<Saved, ApiError> {
    caller.require(SystemPermission::ManageMetadata)?;
    if !definition.is_object() {
        return Err(ApiError::new(ErrorCode::ValidationError, "an object definition is a JSON object"));
    }
    let namespace = system.commands.catalog().namespace_of(name).map(str::to_string);
    let mut spec = ObjectSpec::new(definition, namespace);
    spec.migration = migration;
    let command = Command::Metadata(MetadataCommand::PutObjects { objects: vec![spec] });
    let meta = writes::meta(system, caller, None, idempotency_key, std::slice::from_ref(&command))?;
    let outcome = system.commands.execute(command, meta).await?;
    wait_for(system, outcome.position).await?;
    Ok(Saved { changed: !outcome.events.is_empty(), position: outcome.position })
}
