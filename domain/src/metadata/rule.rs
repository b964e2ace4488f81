//! Object-level validation rules (`ValidationRule.json`), parsed and compiled.
//!
//! Enforced: script, unique, state_machine, format, cross_field, json_schema,
//! conditional. Accepted but not enforced yet: async (needs an outbound HTTP
//! call with a timeout) and custom (needs a registry of server-side handlers).

use std::collections::BTreeMap;

use serde_json::Value as Json;

use super::naming::check_machine_name;
use crate::formula::{self, Expr};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleEvent {
    Insert,
    Update,
    Delete,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
    Info,
}

#[derive(Debug, Clone)]
pub struct ValidationRule {
    pub name: String,
    pub active: bool,
    pub events: Vec<RuleEvent>,
    pub priority: i64,
    pub severity: Severity,
    pub message: String,
    pub kind: RuleKind,
}

/// The well-known text formats of a `format` rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextFormat {
    Email,
    Url,
    Phone,
    Json,
}

#[derive(Debug, Clone)]
pub enum RuleKind {
    /// Fails when the condition is TRUE.
    Script {
        condition: Expr,
    },
    /// The combination of `fields` is unique among live records of the object.
    Unique {
        fields: Vec<String>,
        case_sensitive: bool,
    },
    /// On update, `field` may only move from a state to one of its listed targets.
    StateMachine {
        field: String,
        transitions: BTreeMap<String, Vec<String>>,
    },
    Format {
        field: String,
        regex: Option<regex::Regex>,
        format: Option<TextFormat>,
    },
    /// Fails when the condition is FALSE: the condition states what must hold
    /// (`end_date > start_date`), as the spec's examples do.
    CrossField {
        condition: Expr,
        fields: Vec<String>,
    },
    JsonSchema {
        field: String,
        schema: Json,
    },
    Conditional {
        when: Expr,
        then: Box<ValidationRule>,
        otherwise: Option<Box<ValidationRule>>,
    },
    /// Declared but not enforced (see the module docs).
    NotEnforced {
        kind: String,
    },
}

fn string(json: &Json, key: &str) -> Result<String, String> {
    json.get(key).and_then(Json::as_str).map(str::to_string).ok_or_else(|| format!("'{key}' is required"))
}

fn formula_of(json: &Json, key: &str) -> Result<Expr, String> {
    let source = string(json, key)?;
    formula::parse(&source).map_err(|e| format!("{key}: {e}"))
}

fn string_list(json: &Json, key: &str) -> Result<Vec<String>, String> {
    let items = json.get(key).and_then(Json::as_array).ok_or_else(|| format!("'{key}' must be a list of field names"))?;
    items.iter().map(|v| v.as_str().map(str::to_string).ok_or_else(|| format!("'{key}' must hold strings"))).collect()
}

impl ValidationRule {
    /// Parses one rule. Errors name the problem; the caller adds the object and rule name.
    pub fn from_json(json: &Json) -> Result<ValidationRule, String> {
        let name = string(json, "name")?;
        check_machine_name(&name)?;
        let events = match json.get("events") {
            None => vec![RuleEvent::Insert, RuleEvent::Update],
            Some(Json::Array(items)) => items
                .iter()
                .map(|e| match e.as_str() {
                    Some("insert") => Ok(RuleEvent::Insert),
                    Some("update") => Ok(RuleEvent::Update),
                    Some("delete") => Ok(RuleEvent::Delete),
                    _ => Err(format!("unknown rule event {e}")),
                })
                .collect::<Result<_, _>>()?,
            Some(other) => return Err(format!("'events' must be a list, got {other}")),
        };
        let severity = match json.get("severity").and_then(Json::as_str) {
            None | Some("error") => Severity::Error,
            Some("warning") => Severity::Warning,
            Some("info") => Severity::Info,
            Some(other) => return Err(format!("unknown severity '{other}'")),
        };
        let rule_type = string(json, "type")?;
        let kind = match rule_type.as_str() {
            "script" => RuleKind::Script { condition: formula_of(json, "condition")? },
            "unique" => {
                RuleKind::Unique { fields: string_list(json, "fields")?, case_sensitive: json.get("caseSensitive").and_then(Json::as_bool).unwrap_or(true) }
            }
            "state_machine" => {
                let field = string(json, "field")?;
                let map = json.get("transitions").and_then(Json::as_object).ok_or("'transitions' must be an object")?;
                let mut transitions = BTreeMap::new();
                for (from, targets) in map {
                    let targets = targets
                        .as_array()
                        .ok_or_else(|| format!("transitions of '{from}' must be a list"))?
                        .iter()
                        .map(|t| t.as_str().map(str::to_string).ok_or("transition targets must be strings"))
                        .collect::<Result<Vec<_>, _>>()?;
                    transitions.insert(from.clone(), targets);
                }
                RuleKind::StateMachine { field, transitions }
            }
            "format" => {
                let field = string(json, "field")?;
                let regex = match json.get("regex").and_then(Json::as_str) {
                    Some(pattern) => Some(regex::Regex::new(pattern).map_err(|e| format!("regex: {e}"))?),
                    None => None,
                };
                let format = match json.get("format").and_then(Json::as_str) {
                    None => None,
                    Some("email") => Some(TextFormat::Email),
                    Some("url") => Some(TextFormat::Url),
                    Some("phone") => Some(TextFormat::Phone),
                    Some("json") => Some(TextFormat::Json),
                    Some(other) => return Err(format!("unknown format '{other}'")),
                };
                if regex.is_none() && format.is_none() {
                    return Err("a format rule needs 'regex' or 'format'".into());
                }
                RuleKind::Format { field, regex, format }
            }
            "cross_field" => RuleKind::CrossField { condition: formula_of(json, "condition")?, fields: string_list(json, "fields").unwrap_or_default() },
            "json_schema" => RuleKind::JsonSchema {
                field: string(json, "field")?,
                schema: json.get("schema").filter(|s| s.is_object()).cloned().ok_or("'schema' must be an object")?,
            },
            "conditional" => {
                let nested = |key: &str| -> Result<Option<Box<ValidationRule>>, String> {
                    match json.get(key) {
                        None | Some(Json::Null) => Ok(None),
                        Some(inner) => {
                            let mut inner = inner.clone();
                            if let Some(map) = inner.as_object_mut() {
                                map.entry("name").or_insert_with(|| Json::String(format!("{name}_{key}")));
                                map.entry("message").or_insert_with(|| json.get("message").cloned().unwrap_or(Json::Null));
                            }
                            ValidationRule::from_json(&inner).map(|r| Some(Box::new(r))).map_err(|e| format!("{key}: {e}"))
                        }
                    }
                };
                RuleKind::Conditional { when: formula_of(json, "when")?, then: nested("then")?.ok_or("'then' is required")?, otherwise: nested("otherwise")? }
            }
            "async" | "custom" => RuleKind::NotEnforced { kind: rule_type.clone() },
            other => return Err(format!("unknown rule type '{other}'")),
        };
        Ok(ValidationRule {
            name,
            active: json.get("active").and_then(Json::as_bool).unwrap_or(true),
            events,
            priority: json.get("priority").and_then(Json::as_i64).unwrap_or(100),
            severity,
            message: string(json, "message")?,
            kind,
        })
    }

    /// Field names this rule reads (for load-time checks against the object).
    pub fn referenced_fields(&self) -> Vec<String> {
        match &self.kind {
            RuleKind::Script { condition } => condition.fields(),
            RuleKind::Unique { fields, .. } => fields.clone(),
            RuleKind::StateMachine { field, .. } | RuleKind::Format { field, .. } | RuleKind::JsonSchema { field, .. } => {
                vec![field.clone()]
            }
            RuleKind::CrossField { condition, fields } => {
                let mut all = condition.fields();
                all.extend(fields.iter().cloned());
                all
            }
            RuleKind::Conditional { when, then, otherwise } => {
                let mut all = when.fields();
                all.extend(then.referenced_fields());
                if let Some(o) = otherwise {
                    all.extend(o.referenced_fields());
                }
                all
            }
            RuleKind::NotEnforced { .. } => Vec::new(),
        }
    }
}
