//! Loading an app in the protocol's JSON form: `{manifest?, objects, hooks?, data?}`.

use serde_json::{Map, Value as Json};

use super::catalog::{builtin_objects, Catalog};
use super::naming::check_namespace;
use super::object::ObjectDef;
use crate::error::DomainError;

#[derive(Debug, Clone, Default)]
pub struct Manifest {
    pub id: Option<String>,
    pub namespace: Option<String>,
    pub version: Option<String>,
    pub name: Option<String>,
}

/// Seed records for one object (`data[]`).
#[derive(Debug, Clone)]
pub struct SeedSet {
    pub object: String,
    /// `insert`, `upsert` (by `external_id`) or `ignore`.
    pub mode: String,
    pub external_id: Option<String>,
    pub records: Vec<Map<String, Json>>,
}

#[derive(Debug, Clone)]
pub struct AppDef {
    pub manifest: Manifest,
    /// Object definitions (JSON as given, after merging extensions), in order.
    pub objects: Vec<Json>,
    pub seed: Vec<SeedSet>,
    /// How records are migrated when their object's definition changes.
    pub migrations: super::migration::Migrations,
}

fn invalid(message: impl Into<String>) -> DomainError {
    DomainError::InvalidDefinition(message.into())
}

/// Parses and checks an app: every object must be valid, names unique,
/// references resolvable (within the app or the built-in objects), seed data
/// aimed at known objects. Object extensions (`extend`) are merged in priority order.
pub fn load_app(json: &Json) -> Result<AppDef, DomainError> {
    let root = json.as_object().ok_or_else(|| invalid("an app must be a JSON object"))?;
    let manifest_json = root.get("manifest").cloned().unwrap_or(Json::Null);
    let text = |key: &str| manifest_json.get(key).and_then(Json::as_str).map(str::to_string);
    let manifest = Manifest { id: text("id"), namespace: text("namespace"), version: text("version"), name: text("name") };
    if let Some(ns) = &manifest.namespace {
        check_namespace(ns).map_err(|e| invalid(format!("manifest: {e}")))?;
    }
    let list = root.get("objects").and_then(Json::as_array).ok_or_else(|| invalid("an app needs 'objects' (a list)"))?;

    let mut objects: Vec<Json> = Vec::new();
    let mut extensions: Vec<&Json> = Vec::new();
    for item in list {
        if item.get("extend").is_some() {
            extensions.push(item);
            continue;
        }
        let name = item.get("name").and_then(Json::as_str).unwrap_or_default();
        if objects.iter().any(|o| o.get("name").and_then(Json::as_str) == Some(name)) {
            return Err(invalid(format!("object '{name}' is defined twice")));
        }
        objects.push(item.clone());
    }
    extensions.sort_by_key(|e| e.get("priority").and_then(Json::as_i64).unwrap_or(200));
    for extension in extensions {
        merge_extension(&mut objects, extension)?;
    }

    let mut catalog = Catalog::default();
    for builtin in builtin_objects() {
        catalog.insert(ObjectDef::from_json(&builtin)?, Some("system".into()));
    }
    let mut parsed = Vec::new();
    for object_json in &objects {
        let object = ObjectDef::from_json(object_json)?;
        if catalog.get(&object.name).is_some_and(|o| o.is_system) {
            return Err(invalid(format!("object '{}': the name is taken by a built-in object", object.name)));
        }
        catalog.insert(object.clone(), manifest.namespace.clone());
        parsed.push(object);
    }
    for object in &parsed {
        catalog.check_references(object)?;
    }

    let mut seed = Vec::new();
    for set in root.get("data").and_then(Json::as_array).into_iter().flatten() {
        let object = set.get("object").and_then(Json::as_str).ok_or_else(|| invalid("seed data without 'object'"))?;
        if catalog.get(object).is_none() {
            return Err(invalid(format!("seed data for unknown object '{object}'")));
        }
        let records = set
            .get("records")
            .and_then(Json::as_array)
            .ok_or_else(|| invalid(format!("seed data for '{object}' needs 'records'")))?
            .iter()
            .map(|r| r.as_object().cloned().ok_or_else(|| invalid(format!("seed record for '{object}' must be an object"))))
            .collect::<Result<Vec<_>, _>>()?;
        let mode = set.get("mode").and_then(Json::as_str).unwrap_or("insert").to_string();
        if !["insert", "upsert", "ignore", "replace"].contains(&mode.as_str()) {
            return Err(invalid(format!("seed data for '{object}': unknown mode '{mode}'")));
        }
        seed.push(SeedSet { object: object.to_string(), mode, external_id: set.get("externalId").and_then(Json::as_str).map(str::to_string), records });
    }
    let migrations = match root.get("migrations") {
        Some(json) => super::migration::parse(json).map_err(|e| invalid(format!("migrations: {e}")))?,
        None => Default::default(),
    };
    for (object, fields) in &migrations {
        let def =
            parsed.iter().find(|o| o.name == *object).ok_or_else(|| invalid(format!("migrations name object '{object}', which the app does not define")))?;
        super::migration::check(def, fields).map_err(|e| invalid(format!("migrations: {e}")))?;
    }
    Ok(AppDef { manifest, objects, seed, migrations })
}

fn merge_extension(objects: &mut [Json], extension: &Json) -> Result<(), DomainError> {
    let target = extension.get("extend").and_then(Json::as_str).unwrap_or_default();
    let object = objects
        .iter_mut()
        .find(|o| o.get("name").and_then(Json::as_str) == Some(target))
        .ok_or_else(|| invalid(format!("extension of unknown object '{target}'")))?;
    let map = object.as_object_mut().ok_or_else(|| invalid(format!("object '{target}' is not a JSON object")))?;
    if let Some(fields) = extension.get("fields").and_then(Json::as_object) {
        let own = map.entry("fields").or_insert_with(|| Json::Object(Map::new()));
        if let Some(own) = own.as_object_mut() {
            for (name, field) in fields {
                own.insert(name.clone(), field.clone());
            }
        }
    }
    for key in ["validations", "indexes"] {
        if let Some(extra) = extension.get(key).and_then(Json::as_array) {
            let own = map.entry(key).or_insert_with(|| Json::Array(Vec::new()));
            if let Some(own) = own.as_array_mut() {
                own.extend(extra.iter().cloned());
            }
        }
    }
    for key in ["label", "pluralLabel", "description"] {
        if let Some(value) = extension.get(key) {
            map.insert(key.to_string(), value.clone());
        }
    }
    Ok(())
}
