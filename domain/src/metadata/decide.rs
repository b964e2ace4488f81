//! Metadata commands: define, alter or remove an object. Pure `decide` and `evolve`.

use serde_json::Value as Json;

use super::catalog::Catalog;
use super::naming::check_namespace;
use super::object::ObjectDef;
use crate::error::DomainError;
use crate::event::{EventPayload, ObjectDefined, ObjectRemoved};

#[derive(Debug, Clone)]
pub enum MetadataCommand {
    /// Define each object, or alter it when its definition differs (no-op when
    /// equal). The objects are checked together, so they may reference each other.
    PutObjects {
        objects: Vec<ObjectSpec>,
    },
    RemoveObject {
        name: String,
    },
}

impl MetadataCommand {
    /// Puts one object.
    pub fn put_one(definition: Json, namespace: Option<String>) -> MetadataCommand {
        MetadataCommand::PutObjects { objects: vec![ObjectSpec::new(definition, namespace)] }
    }
}

/// One object definition as written, with the namespace of the app it comes
/// from, and how its records are migrated if the change needs it.
#[derive(Debug, Clone)]
pub struct ObjectSpec {
    pub definition: Json,
    pub namespace: Option<String>,
    pub migration: Option<super::migration::ObjectMigration>,
}

impl ObjectSpec {
    pub fn new(definition: Json, namespace: Option<String>) -> ObjectSpec {
        ObjectSpec { definition, namespace, migration: None }
    }
}

/// Decides the metadata events for a command against the current catalog.
pub fn decide_metadata(catalog: &Catalog, command: &MetadataCommand) -> Result<Vec<EventPayload>, DomainError> {
    match command {
        MetadataCommand::PutObjects { objects } => {
            let mut next = catalog.clone();
            let mut parsed = Vec::with_capacity(objects.len());
            for spec in objects {
                if let Some(ns) = &spec.namespace {
                    check_namespace(ns).map_err(DomainError::InvalidDefinition)?;
                }
                // New definitions are held to the protocol's properties; stored ones
                // (folded from the log) are read as they were accepted.
                super::schema::check_definition(&spec.definition)?;
                let object = ObjectDef::from_json(&spec.definition)?;
                if parsed.iter().any(|(o, _): &(ObjectDef, &ObjectSpec)| o.name == object.name) {
                    return Err(DomainError::InvalidDefinition(format!("object '{}' is given twice", object.name)));
                }
                next.insert(object.clone(), spec.namespace.clone());
                parsed.push((object, spec));
            }
            let mut events = Vec::new();
            for (object, spec) in parsed {
                next.check_references(&object)?;
                if let Some(migration) = &spec.migration {
                    super::migration::check(&object, migration).map_err(DomainError::InvalidDefinition)?;
                }
                let event = ObjectDefined { name: object.name.clone(), namespace: spec.namespace.clone(), definition: spec.definition.to_string() };
                match catalog.get(&object.name) {
                    None => events.push(EventPayload::ObjectDefined(event)),
                    Some(existing) if existing.raw == spec.definition && catalog.namespace_of(&object.name) == spec.namespace.as_deref() => {}
                    Some(existing) if existing.is_system && !object.is_system => {
                        return Err(DomainError::InvalidDefinition(format!("object '{}' is a system object and cannot lose isSystem", object.name)))
                    }
                    Some(_) => events.push(EventPayload::ObjectAltered(event)),
                }
            }
            Ok(events)
        }
        MetadataCommand::RemoveObject { name } => {
            let object = catalog.require(name)?;
            if object.is_system {
                return Err(DomainError::DeleteRestricted { object: "object".into(), id: name.clone(), reason: "it is a system object".into() });
            }
            if let Some((other, field)) = catalog.referrers(&object.name).into_iter().next() {
                return Err(DomainError::DeleteRestricted {
                    object: "object".into(),
                    id: name.clone(),
                    reason: format!("field '{field}' of object '{other}' references it"),
                });
            }
            Ok(vec![EventPayload::ObjectRemoved(ObjectRemoved { name: object.name.clone() })])
        }
    }
}

/// Applies a metadata event to the catalog. Record events are ignored.
/// A stored definition that no longer parses is an error: the log is the truth.
pub fn evolve_catalog(catalog: &mut Catalog, payload: &EventPayload) -> Result<(), DomainError> {
    match payload {
        EventPayload::ObjectDefined(e) | EventPayload::ObjectAltered(e) => {
            let json: Json = serde_json::from_str(&e.definition).map_err(|err| DomainError::Decode(format!("definition of {}: {err}", e.name)))?;
            catalog.insert(ObjectDef::from_json(&json)?, e.namespace.clone());
        }
        EventPayload::ObjectRemoved(e) => catalog.remove(&e.name),
        _ => {}
    }
    Ok(())
}
