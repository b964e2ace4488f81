//! Metadata commands: define, alter or remove an object. Pure `decide` and `evolve`.

use serde_json::Value as Json;

use super::catalog::Catalog;
use super::naming::check_namespace;
use super::object::ObjectDef;
use crate::error::DomainError;
use crate::event::{EventPayload, ObjectDefined, ObjectRemoved};

#[derive(Debug, Clone)]
pub enum MetadataCommand {
    /// Define the object, or alter it when its definition differs. A no-op when equal.
    PutObject {
        definition: Json,
        namespace: Option<String>,
    },
    RemoveObject {
        name: String,
    },
}

/// Decides the metadata events for a command against the current catalog.
pub fn decide_metadata(
    catalog: &Catalog,
    command: &MetadataCommand,
) -> Result<Vec<EventPayload>, DomainError> {
    match command {
        MetadataCommand::PutObject {
            definition,
            namespace,
        } => {
            if let Some(ns) = namespace {
                check_namespace(ns).map_err(DomainError::InvalidDefinition)?;
            }
            let object = ObjectDef::from_json(definition)?;
            let mut next = catalog.clone();
            next.insert(object.clone(), namespace.clone());
            next.check_references(&object)?;
            let event = ObjectDefined {
                name: object.name.clone(),
                namespace: namespace.clone(),
                definition: definition.to_string(),
            };
            match catalog.get(&object.name) {
                None => Ok(vec![EventPayload::ObjectDefined(event)]),
                Some(existing)
                    if existing.raw == *definition
                        && catalog.namespace_of(&object.name) == namespace.as_deref() =>
                {
                    Ok(vec![])
                }
                Some(existing) if existing.is_system && !object.is_system => {
                    Err(DomainError::InvalidDefinition(format!(
                        "object '{}' is a system object and cannot lose isSystem",
                        object.name
                    )))
                }
                Some(_) => Ok(vec![EventPayload::ObjectAltered(event)]),
            }
        }
        MetadataCommand::RemoveObject { name } => {
            let object = catalog.require(name)?;
            if object.is_system {
                return Err(DomainError::DeleteRestricted {
                    object: "object".into(),
                    id: name.clone(),
                    reason: "it is a system object".into(),
                });
            }
            if let Some((other, field)) = catalog.referrers(&object.name).into_iter().next() {
                return Err(DomainError::DeleteRestricted {
                    object: "object".into(),
                    id: name.clone(),
                    reason: format!("field '{field}' of object '{other}' references it"),
                });
            }
            Ok(vec![EventPayload::ObjectRemoved(ObjectRemoved {
                name: object.name.clone(),
            })])
        }
    }
}

/// Applies a metadata event to the catalog. Record events are ignored.
/// A stored definition that no longer parses is an error: the log is the truth.
pub fn evolve_catalog(catalog: &mut Catalog, payload: &EventPayload) -> Result<(), DomainError> {
    match payload {
        EventPayload::ObjectDefined(e) | EventPayload::ObjectAltered(e) => {
            let json: Json = serde_json::from_str(&e.definition)
                .map_err(|err| DomainError::Decode(format!("definition of {}: {err}", e.name)))?;
            catalog.insert(ObjectDef::from_json(&json)?, e.namespace.clone());
        }
        EventPayload::ObjectRemoved(e) => catalog.remove(&e.name),
        _ => {}
    }
    Ok(())
}
