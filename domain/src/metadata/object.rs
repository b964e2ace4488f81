//! One object definition (`Object.json`): fields, indexes, validation rules.

use serde_json::Value as Json;

use super::field::FieldDef;
use super::naming::{check_machine_name, SYSTEM_FIELDS};
use super::rule::ValidationRule;
use crate::error::DomainError;
use crate::formula;

#[derive(Debug, Clone, PartialEq)]
pub struct IndexDef {
    pub name: Option<String>,
    pub fields: Vec<String>,
    pub unique: bool,
}

/// A checked object definition. `raw` is the JSON as given (what the metadata
/// API serves and what metadata events carry); the rest is derived from it.
#[derive(Debug, Clone)]
pub struct ObjectDef {
    pub name: String,
    pub label: String,
    /// Fields in declaration order.
    pub fields: Vec<FieldDef>,
    pub validations: Vec<ValidationRule>,
    pub indexes: Vec<IndexDef>,
    /// `isSystem`: protected from removal.
    pub is_system: bool,
    /// `enable.apiEnabled` (default true).
    pub api_enabled: bool,
    /// `recordName.displayFormat`, the default autonumber format.
    pub autonumber_format: Option<String>,
    pub autonumber_start: u64,
    pub raw: Json,
}

fn invalid(object: &str, what: impl std::fmt::Display) -> DomainError {
    DomainError::InvalidDefinition(format!("object '{object}': {what}"))
}

fn label_from_name(name: &str) -> String {
    name.split('_')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let mut chars = p.chars();
            chars.next().map(|c| c.to_uppercase().collect::<String>() + chars.as_str()).unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join(" ")
}

impl ObjectDef {
    /// Parses and checks an object definition. Every error names the object,
    /// and the field or rule at fault.
    pub fn from_json(json: &Json) -> Result<ObjectDef, DomainError> {
        let map = json.as_object().ok_or_else(|| DomainError::InvalidDefinition("an object definition must be a JSON object".into()))?;
        if crate::validate::has_nul(json) {
            return Err(DomainError::InvalidDefinition("an object definition must not contain a NUL character (\\u0000)".into()));
        }
        let name = map.get("name").and_then(Json::as_str).ok_or_else(|| DomainError::InvalidDefinition("object definition without 'name'".into()))?;
        check_machine_name(name).map_err(|e| invalid(name, e))?;
        if name.contains("__") {
            return Err(invalid(name, "an object name must not contain '__' (reserved for namespaces)"));
        }
        let fields_json = map.get("fields").and_then(Json::as_object).ok_or_else(|| invalid(name, "'fields' is required and must be an object"))?;
        let mut fields = Vec::with_capacity(fields_json.len());
        for (field_name, field_json) in fields_json {
            check_machine_name(field_name).map_err(|e| invalid(name, format!("field '{field_name}': {e}")))?;
            if SYSTEM_FIELDS.contains(&field_name.as_str()) {
                return Err(invalid(name, format!("field '{field_name}': '{field_name}' is a system field and cannot be declared")));
            }
            let field = FieldDef::from_json(field_name, field_json).map_err(|e| invalid(name, format!("field '{field_name}': {e}")))?;
            fields.push(field);
        }
        let mut validations = Vec::new();
        if let Some(rules) = map.get("validations") {
            let rules = rules.as_array().ok_or_else(|| invalid(name, "'validations' must be a list"))?;
            for rule_json in rules {
                let rule_name = rule_json.get("name").and_then(Json::as_str).unwrap_or("<unnamed>");
                let rule = ValidationRule::from_json(rule_json).map_err(|e| invalid(name, format!("rule '{rule_name}': {e}")))?;
                validations.push(rule);
            }
        }
        let mut indexes = Vec::new();
        if let Some(list) = map.get("indexes").and_then(Json::as_array) {
            for index in list {
                let index_fields: Vec<String> = index
                    .get("fields")
                    .and_then(Json::as_array)
                    .ok_or_else(|| invalid(name, "an index needs 'fields'"))?
                    .iter()
                    .filter_map(|f| f.as_str().map(str::to_string))
                    .collect();
                indexes.push(IndexDef {
                    name: index.get("name").and_then(Json::as_str).map(str::to_string),
                    fields: index_fields,
                    unique: index.get("unique").and_then(Json::as_bool).unwrap_or(false),
                });
            }
        }
        let record_name = map.get("recordName");
        let object = ObjectDef {
            name: name.to_string(),
            label: map.get("label").and_then(Json::as_str).map(str::to_string).unwrap_or_else(|| label_from_name(name)),
            fields,
            validations,
            indexes,
            is_system: map.get("isSystem").and_then(Json::as_bool).unwrap_or(false),
            api_enabled: map.get("enable").and_then(|e| e.get("apiEnabled")).and_then(Json::as_bool).unwrap_or(true),
            autonumber_format: record_name.and_then(|r| r.get("displayFormat")).and_then(Json::as_str).map(str::to_string),
            autonumber_start: record_name.and_then(|r| r.get("startNumber")).and_then(Json::as_u64).unwrap_or(1),
            raw: json.clone(),
        };
        object.check_references_to_own_fields()?;
        Ok(object)
    }

    /// Rules, indexes and formulas may only name fields that exist.
    fn check_references_to_own_fields(&self) -> Result<(), DomainError> {
        let known = |path: &str| {
            let first = path.split('.').next().unwrap_or(path);
            SYSTEM_FIELDS.contains(&first) || self.field(first).is_some()
        };
        for rule in &self.validations {
            for path in rule.referenced_fields() {
                if !known(&path) {
                    return Err(invalid(&self.name, format!("rule '{}': unknown field '{path}'", rule.name)));
                }
            }
        }
        for field in &self.fields {
            let expressions = [field.compiled_expression.as_ref(), field.compiled_conditional_required.as_ref()];
            for path in expressions.into_iter().flatten().flat_map(formula::Expr::fields) {
                if !known(&path) {
                    return Err(invalid(&self.name, format!("field '{}': formula names unknown field '{path}'", field.name)));
                }
            }
        }
        for index in &self.indexes {
            if let Some(bad) = index.fields.iter().find(|f| !known(f)) {
                return Err(invalid(&self.name, format!("index {:?}: unknown field '{bad}'", index.name.as_deref().unwrap_or(""))));
            }
        }
        Ok(())
    }

    pub fn field(&self, name: &str) -> Option<&FieldDef> {
        self.fields.iter().find(|f| f.name == name)
    }

    /// Unique field sets: `unique: true` fields and unique indexes.
    pub fn unique_sets(&self) -> Vec<Vec<String>> {
        let mut sets: Vec<Vec<String>> = self.fields.iter().filter(|f| f.unique).map(|f| vec![f.name.clone()]).collect();
        for index in self.indexes.iter().filter(|i| i.unique) {
            if !sets.contains(&index.fields) {
                sets.push(index.fields.clone());
            }
        }
        sets
    }
}
