//! The permission check operations the client calls (`/auth/check`,
//! `/auth/permissions/{object}`, `/auth/permissions/effective`): the same
//! rules as every read and write, asked instead of applied.

use domain::security::{WriteGuard, WriteOp};
use domain::ErrorCode;
use serde_json::{json, Map, Value as Json};

use super::caller::Caller;
use crate::app::System;
use crate::error::ApiError;

fn action_allowed(caller: &Caller, system: &System, object: &str, action: &str) -> Result<bool, ApiError> {
    let catalog = system.reader.catalog();
    let definition = catalog.require(object)?;
    let p = caller.access().grant(&catalog, definition).permission;
    Ok(match action {
        "read" => p.can_read(),
        "create" => p.create || p.modify_all,
        "edit" | "update" => p.edit || p.modify_all,
        "delete" => p.delete || p.modify_all,
        "transfer" => p.transfer || p.modify_all,
        "restore" => p.restore,
        "purge" => p.purge,
        other => {
            return Err(ApiError::new(ErrorCode::InvalidField, format!("unknown action '{other}' (create, read, edit, delete, transfer, restore, purge)")))
        }
    })
}

/// Whether the caller may do `action` on `object` (a record, a field): `{allowed, reason?}`.
pub async fn check(system: &System, caller: &Caller, object: &str, action: &str, record: Option<&str>, field: Option<&str>) -> Result<Json, ApiError> {
    let mut allowed = action_allowed(caller, system, object, action)?;
    let mut reason = (!allowed).then(|| format!("no {action} permission on {object}"));
    if let (true, Some(field)) = (allowed, field) {
        let catalog = system.reader.catalog();
        let grant = caller.access().grant(&catalog, catalog.require(object)?);
        let ok_field = if action == "read" { grant.can_read_field(field) } else { !grant.readonly.contains(field) };
        if !ok_field {
            allowed = false;
            reason = Some(format!("field '{field}' is not accessible for {action}"));
        }
    }
    if let (true, Some(id)) = (allowed, record) {
        if system.reader.get(&caller.viewer, object, id).await?.is_none() {
            allowed = false;
            reason = Some(format!("record {id} is not visible"));
        } else if action != "read" && action != "create" {
            let catalog = system.commands.catalog();
            let guard = WriteGuard::new(&caller.viewer.access, &catalog, object)?;
            let state = system.commands.record_state(object, id);
            if let (Some(guard), Some(current)) = (guard, state.record) {
                let op = if action == "delete" { WriteOp::Delete } else { WriteOp::Update };
                let fetch = |o: &str, i: &str| system.commands.record_state(o, i).record;
                if let Err(e) = guard.check_before(op, &catalog, &current, &fetch) {
                    allowed = false;
                    reason = Some(e.to_string());
                }
            }
        }
    }
    Ok(json!({"allowed": allowed, "reason": reason}))
}

/// `{object, permissions, fieldPermissions}` for the caller.
pub fn permissions_of(system: &System, caller: &Caller, object: &str) -> Result<Json, ApiError> {
    let catalog = system.reader.catalog();
    let definition = catalog.require(object)?;
    let grant = caller.access().grant(&catalog, definition);
    let fields: Map<String, Json> = definition
        .fields
        .iter()
        .filter(|f| !grant.hidden.contains(&f.name) || grant.passwords.contains(&f.name))
        .map(|f| (f.name.clone(), json!({"readable": grant.can_read_field(&f.name), "editable": !grant.readonly.contains(&f.name)})))
        .collect();
    Ok(json!({"object": definition.name, "permissions": grant.permission.to_json(), "fieldPermissions": fields}))
}

/// `{objects: {name: ObjectPermission}, systemPermissions}` for the caller.
pub fn effective(system: &System, caller: &Caller) -> Json {
    let catalog = system.reader.catalog();
    let mut objects = Map::new();
    for definition in catalog.objects() {
        let grant = caller.access().grant(&catalog, definition);
        if grant.permission.can_read() || grant.permission.create {
            objects.insert(definition.name.clone(), grant.permission.to_json());
        }
    }
    json!({"objects": objects, "systemPermissions": caller.access().system_permissions(), "user": caller.principal().user_id})
}
