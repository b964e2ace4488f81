//! The audit trail: the whole trail (needs `view_audit_trail`) and a record's
//! history (for a record the caller sees now), newest first; every entry
//! without the changes of fields the caller may not read, nor the token and
//! key hashes of sessions and API keys.

use domain::security::SystemPermission;
use domain::ErrorCode;
pub use projections::audit_model::AuditQuery;
use serde_json::{json, Value as Json};

use super::barrier::{barrier_on, read_barrier};
use super::caller::Caller;
use crate::app::System;
use crate::error::ApiError;

/// Largest page of audit entries.
pub const MAX_LIMIT: usize = 1000;

/// Takes out of an entry the changes of fields the caller may not read (and
/// the token and key hashes of sessions and API keys).
fn mask_entry(caller: &Caller, catalog: &domain::metadata::Catalog, entry: &mut Json) {
    let object = entry["target"]["type"].as_str().unwrap_or_default().to_string();
    let hidden: std::collections::BTreeSet<String> = if domain::security::INTERNAL_OBJECTS.contains(&object.as_str()) {
        domain::security::SECRET_FIELDS.iter().map(|f| f.to_string()).collect()
    } else {
        match catalog.get(&object) {
            Some(definition) => caller.access().grant(catalog, definition).hidden.clone(),
            None => Default::default(),
        }
    };
    if let Some(Json::Array(changes)) = entry.get_mut("changes") {
        changes.retain(|c| !hidden.contains(c["field"].as_str().unwrap_or_default()));
    }
}

/// `{entries, records, total, hasMore}`, as the caller may see them: the
/// model finds the page's entries, and their events are read from the log
/// in one read to show them.
async fn page(system: &System, caller: &Caller, query: &AuditQuery) -> Result<Json, ApiError> {
    let catalog = system.reader.catalog();
    let (entries, total) = system.audit_reader.query(query).await?;
    let positions: Vec<u64> = entries.iter().map(|e| e.position).collect();
    let events = system.commands.store().read_positions(&positions).await?;
    let event_at = |position: u64| events.binary_search_by_key(&position, |e| e.position).ok().map(|at| &events[at]);
    let entries: Vec<Json> = entries
        .iter()
        .map(|e| {
            let mut entry = e.to_json(event_at(e.position));
            mask_entry(caller, &catalog, &mut entry);
            entry
        })
        .collect();
    let has_more = query.offset + entries.len() < total;
    Ok(json!({"entries": entries, "records": entries, "total": total, "hasMore": has_more}))
}

/// The whole trail, filtered by `query`.
pub async fn trail(system: &System, caller: &Caller, query: &AuditQuery, min: Option<u64>) -> Result<Json, ApiError> {
    caller.require(SystemPermission::ViewAuditTrail)?;
    barrier_on(system, &system.audit, min).await?;
    page(system, caller, query).await
}

/// A record's history (`query`'s object and record are set from the arguments).
pub async fn history(system: &System, caller: &Caller, object: &str, id: &str, mut query: AuditQuery, min: Option<u64>) -> Result<Json, ApiError> {
    read_barrier(system, min).await?;
    barrier_on(system, &system.audit, min).await?;
    let definition = system.reader.catalog().require(object)?.clone();
    if !caller.access().has(SystemPermission::ViewAuditTrail) && system.reader.get(&caller.viewer, &definition.name, id).await?.is_none() {
        return Err(ApiError::new(ErrorCode::RecordNotFound, format!("Record {id} not found in {object}")));
    }
    query.object = Some(definition.name.clone());
    query.record_id = Some(id.to_string());
    page(system, caller, &query).await
}
