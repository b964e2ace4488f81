//! An app file checked against the protocol's JSON Schemas.
//!
//! The schemas are copies of `@objectstack/spec`'s (`domain/schemas/`, from
//! 3.0.6 for data and 4.0.4 for automation, security and identity), compiled
//! once. They describe a definition after its defaults are filled in, so a
//! property that has a `default` is not required of what an app writes; every
//! other rule (types, enums, patterns, unknown properties) holds as written.
//!
//! [`check_app`] walks an app file's top level: each section's items against
//! their schema (`objects` against `Object`, `flows` against `Flow`, ...), keys
//! the protocol knows but this server does not serve as warnings, and any
//! other key as an error naming the key meant. Keys beginning with `_` and
//! `$schema` are comments. Paths are JSON Pointers into the file.

use std::sync::OnceLock;

use jsonschema::error::ValidationErrorKind;
use jsonschema::Validator;
use serde_json::{Map, Value as Json};

use super::keys::nearest;

/// A kind of definition with a schema of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Object,
    Dataset,
    Cube,
    WorkflowRule,
    Flow,
    Webhook,
    ApprovalProcess,
    Job,
    PermissionSet,
    Role,
    SharingRule,
}

pub(crate) const KINDS: [Kind; 11] = [
    Kind::Object,
    Kind::Dataset,
    Kind::Cube,
    Kind::WorkflowRule,
    Kind::Flow,
    Kind::Webhook,
    Kind::ApprovalProcess,
    Kind::Job,
    Kind::PermissionSet,
    Kind::Role,
    Kind::SharingRule,
];

impl Kind {
    /// The schema's file name in `domain/schemas/` (and in the protocol's package).
    pub fn schema_name(self) -> &'static str {
        match self {
            Kind::Object => "Object",
            Kind::Dataset => "Dataset",
            Kind::Cube => "Cube",
            Kind::WorkflowRule => "WorkflowRule",
            Kind::Flow => "Flow",
            Kind::Webhook => "Webhook",
            Kind::ApprovalProcess => "ApprovalProcess",
            Kind::Job => "Job",
            Kind::PermissionSet => "PermissionSet",
            Kind::Role => "Role",
            Kind::SharingRule => "SharingRule",
        }
    }

    pub(crate) fn source(self) -> &'static str {
        match self {
            Kind::Object => include_str!("../../schemas/Object.json"),
            Kind::Dataset => include_str!("../../schemas/Dataset.json"),
            Kind::Cube => include_str!("../../schemas/Cube.json"),
            Kind::WorkflowRule => include_str!("../../schemas/WorkflowRule.json"),
            Kind::Flow => include_str!("../../schemas/Flow.json"),
            Kind::Webhook => include_str!("../../schemas/Webhook.json"),
            Kind::ApprovalProcess => include_str!("../../schemas/ApprovalProcess.json"),
            Kind::Job => include_str!("../../schemas/Job.json"),
            Kind::PermissionSet => include_str!("../../schemas/PermissionSet.json"),
            Kind::Role => include_str!("../../schemas/Role.json"),
            Kind::SharingRule => include_str!("../../schemas/SharingRule.json"),
        }
    }

    fn index(self) -> usize {
        KINDS.iter().position(|k| *k == self).expect("every kind is listed")
    }
}

/// How much a problem matters: an error stops the app from loading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Error,
    Warning,
}

/// One thing wrong with a file: where (a JSON Pointer) and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub level: Level,
    pub path: String,
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let path = if self.path.is_empty() { "/" } else { &self.path };
        match self.level {
            Level::Error => write!(f, "{path}: {}", self.message),
            Level::Warning => write!(f, "{path}: warning: {}", self.message),
        }
    }
}

/// The top-level lists this server reads, and the kind of their items.
pub(crate) const SECTIONS: &[(&str, Option<Kind>)] = &[
    ("objects", Some(Kind::Object)),
    ("data", Some(Kind::Dataset)),
    ("cubes", Some(Kind::Cube)),
    ("analyticsCubes", Some(Kind::Cube)),
    ("workflows", Some(Kind::WorkflowRule)),
    ("flows", Some(Kind::Flow)),
    ("webhooks", Some(Kind::Webhook)),
    ("approvals", Some(Kind::ApprovalProcess)),
    ("jobs", Some(Kind::Job)),
    ("permissions", Some(Kind::PermissionSet)),
    ("roles", Some(Kind::Role)),
    ("sharingRules", Some(Kind::SharingRule)),
    ("hooks", None),
];

/// Top-level keys holding one JSON object this server reads.
pub(crate) const OBJECT_SECTIONS: &[&str] = &["manifest", "auth", "analytics", "migrations"];

/// The protocol's other top-level keys (`ObjectStackDefinitionSchema`): accepted, not served.
pub(crate) const UNSERVED: &[&str] = &[
    "datasources",
    "datasourceMapping",
    "translations",
    "objectExtensions",
    "apps",
    "views",
    "pages",
    "dashboards",
    "reports",
    "actions",
    "themes",
    "policies",
    "apis",
    "agents",
    "ragPipelines",
    "mappings",
    "connectors",
    "plugins",
    "devPlugins",
];

/// What an object extension (`{"extend": "task", ...}`) may carry.
const EXTENSION_KEYS: &[&str] = &["extend", "priority", "fields", "validations", "indexes", "label", "pluralLabel", "description"];

/// Problems at most reported per file: the first ones are the ones to mend.
pub const MAX_PROBLEMS: usize = 50;

/// Whether a file holds one object definition (`name` and `fields`), as a
/// folder app's files may, rather than a whole app.
pub fn is_one_object(file: &Map<String, Json>) -> bool {
    file.contains_key("name") && file.contains_key("fields")
}

/// Checks an app file: the whole app, or one object definition.
pub fn check_app(file: &Json) -> Vec<Problem> {
    let mut problems = Vec::new();
    let Some(root) = file.as_object() else {
        problems.push(error(String::new(), "an app file must be a JSON object".into()));
        return problems;
    };
    if is_one_object(root) {
        check_into(Kind::Object, file, "", &mut problems);
        problems.truncate(MAX_PROBLEMS);
        return problems;
    }
    let mut known: Vec<&str> = SECTIONS.iter().map(|(k, _)| *k).collect();
    known.extend(OBJECT_SECTIONS);
    known.extend(UNSERVED);
    for (key, value) in root {
        let path = format!("/{}", escape(key));
        if key.starts_with('_') || key == "$schema" {
            continue;
        }
        if let Some((_, kind)) = SECTIONS.iter().find(|(k, _)| k == key) {
            check_section(key, *kind, value, &path, &mut problems);
        } else if OBJECT_SECTIONS.contains(&key.as_str()) {
            if key == "analytics" {
                check_analytics(value, &path, &mut problems);
            } else if key == "migrations" {
                if let Err(message) = super::migration::parse(value) {
                    problems.push(error(path, message));
                }
            } else if !value.is_object() {
                problems.push(error(path, format!("'{key}' must be a JSON object")));
            }
        } else if UNSERVED.contains(&key.as_str()) {
            problems.push(Problem {
                level: Level::Warning,
                path,
                message: format!("'{key}' is part of the protocol but not served by this server; it is ignored"),
            });
        } else {
            let served = known[..SECTIONS.len() + OBJECT_SECTIONS.len()].join(", ");
            problems.push(error(path, unknown_property(key, "", &known, Some(format!("an app's keys: {served}")))));
        }
    }
    problems.truncate(MAX_PROBLEMS);
    problems
}

fn check_section(key: &str, kind: Option<Kind>, value: &Json, path: &str, problems: &mut Vec<Problem>) {
    let Some(items) = value.as_array() else {
        problems.push(error(path.to_string(), format!("'{key}' must be a list")));
        return;
    };
    let Some(kind) = kind else { return };
    for (index, item) in items.iter().enumerate() {
        let item_path = format!("{path}/{index}");
        match item.as_object() {
            Some(map) if kind == Kind::Object && map.contains_key("extend") => check_extension(map, &item_path, problems),
            _ => check_into(kind, item, &item_path, problems),
        }
    }
}

/// `analytics: {cubes: [...]}`, the older place of an app's cubes.
fn check_analytics(value: &Json, path: &str, problems: &mut Vec<Problem>) {
    let Some(map) = value.as_object() else {
        problems.push(error(path.to_string(), "'analytics' must be a JSON object".into()));
        return;
    };
    for (key, value) in map {
        match key.as_str() {
            "cubes" => check_section("analytics.cubes", Some(Kind::Cube), value, &format!("{path}/cubes"), problems),
            _ => problems.push(error(format!("{path}/{}", escape(key)), format!("unknown property '{key}' (analytics holds 'cubes')"))),
        }
    }
}

/// An extension is checked as the object it adds to: its fields, rules and
/// indexes against the object schema.
fn check_extension(map: &Map<String, Json>, path: &str, problems: &mut Vec<Problem>) {
    for key in map.keys().filter(|k| !EXTENSION_KEYS.contains(&k.as_str())) {
        let message = unknown_property(key, " of an object extension", EXTENSION_KEYS, Some(format!("it may hold: {}", EXTENSION_KEYS.join(", "))));
        problems.push(error(format!("{path}/{}", escape(key)), message));
    }
    let mut as_object: Map<String, Json> =
        map.iter().filter(|(k, _)| EXTENSION_KEYS.contains(&k.as_str()) && *k != "extend" && *k != "priority").map(|(k, v)| (k.clone(), v.clone())).collect();
    as_object.insert("name".into(), map.get("extend").cloned().unwrap_or(Json::Null));
    as_object.entry("fields").or_insert_with(|| Json::Object(Map::new()));
    let mut found = Vec::new();
    check_into(Kind::Object, &Json::Object(as_object), path, &mut found);
    for mut problem in found {
        if problem.path == format!("{path}/name") {
            problem.path = format!("{path}/extend");
        }
        problems.push(problem);
    }
}

/// Checks a new object definition (from an app or the metadata API) against
/// the protocol's object schema: the first error, with the object's name and
/// the path. Definitions folded from the log are read as they were accepted.
pub fn check_definition(definition: &Json) -> Result<(), crate::DomainError> {
    let Some(problem) = check(Kind::Object, definition).into_iter().find(|p| p.level == Level::Error) else { return Ok(()) };
    let name = definition.get("name").and_then(Json::as_str).unwrap_or("<unnamed>");
    Err(crate::DomainError::InvalidDefinition(format!("object '{name}': {problem}")))
}

/// Checks one definition against its kind's schema.
pub fn check(kind: Kind, item: &Json) -> Vec<Problem> {
    let mut problems = Vec::new();
    check_into(kind, item, "", &mut problems);
    problems
}

fn check_into(kind: Kind, item: &Json, at: &str, problems: &mut Vec<Problem>) {
    let compiled = compiled(kind);
    for failure in compiled.validator.iter_errors(item) {
        let path = format!("{at}{}", failure.instance_path());
        match failure.kind() {
            ValidationErrorKind::AdditionalProperties { unexpected } => {
                let allowed = allowed_at(&compiled.schema, &failure.schema_path().to_string()).unwrap_or_else(|| compiled.names.clone());
                let allowed: Vec<&str> = allowed.iter().map(String::as_str).collect();
                for key in unexpected {
                    problems.push(error(format!("{path}/{}", escape(key)), unknown_property(key, "", &allowed, None)));
                }
            }
            _ => problems.push(error(path, shorten(&failure.to_string()))),
        }
    }
}

/// A kind's schema as the server checks it: defaults relax `required`, the
/// object schema takes `controlled_by_parent`, flow nodes need no label and
/// edges no id.
pub(crate) fn served(kind: Kind) -> &'static Json {
    &compiled(kind).schema
}

struct Compiled {
    schema: Json,
    validator: Validator,
    /// Every property name in the schema: the hints' fallback.
    names: Vec<String>,
}

fn compiled(kind: Kind) -> &'static Compiled {
    static ALL: OnceLock<Vec<Compiled>> = OnceLock::new();
    let all = ALL.get_or_init(|| {
        KINDS
            .iter()
            .map(|kind| {
                let mut schema: Json = serde_json::from_str(kind.source()).expect("the bundled schemas are JSON");
                relax_defaults(&mut schema);
                if *kind == Kind::Object {
                    widen_sharing_model(&mut schema);
                }
                if *kind == Kind::Flow {
                    optional_flow_names(&mut schema);
                }
                let validator = jsonschema::draft202012::new(&schema).expect("the bundled schemas compile");
                let mut names = Vec::new();
                property_names(&schema, &mut names);
                names.sort();
                names.dedup();
                Compiled { schema, validator, names }
            })
            .collect()
    });
    &all[kind.index()]
}

/// The object schema lists four sharing models; the protocol's own
/// `security/OWDModel` adds `controlled_by_parent`, which the server enforces
/// (a detail record follows its master), so the object schema accepts it too.
fn widen_sharing_model(schema: &mut Json) {
    if let Some(Json::Array(models)) = schema.pointer_mut("/properties/sharingModel/enum") {
        if !models.iter().any(|m| m == "controlled_by_parent") {
            models.push(Json::from("controlled_by_parent"));
        }
    }
}

/// A flow node's `label` and an edge's `id` are names for editors: the server
/// names a node by its id and an edge by its ends, so neither is required.
fn optional_flow_names(schema: &mut Json) {
    for (at, name) in [("/properties/nodes/items/required", "label"), ("/properties/edges/items/required", "id")] {
        if let Some(Json::Array(required)) = schema.pointer_mut(at) {
            required.retain(|r| r != name);
        }
    }
}

/// A property with a default is not required of what an app writes.
fn relax_defaults(schema: &mut Json) {
    match schema {
        Json::Object(map) => {
            let defaulted: Vec<String> = map
                .get("properties")
                .and_then(Json::as_object)
                .map(|p| p.iter().filter(|(_, s)| s.get("default").is_some()).map(|(k, _)| k.clone()).collect())
                .unwrap_or_default();
            if let Some(Json::Array(required)) = map.get_mut("required") {
                required.retain(|r| r.as_str().is_none_or(|r| !defaulted.iter().any(|d| d == r)));
            }
            map.values_mut().for_each(relax_defaults);
        }
        Json::Array(items) => items.iter_mut().for_each(relax_defaults),
        _ => {}
    }
}

fn property_names(schema: &Json, out: &mut Vec<String>) {
    match schema {
        Json::Object(map) => {
            if let Some(properties) = map.get("properties").and_then(Json::as_object) {
                out.extend(properties.keys().cloned());
            }
            map.values().for_each(|v| property_names(v, out));
        }
        Json::Array(items) => items.iter().for_each(|v| property_names(v, out)),
        _ => {}
    }
}

/// The properties the schema allows where `keyword` (a pointer to an
/// `additionalProperties`) failed.
fn allowed_at(schema: &Json, keyword: &str) -> Option<Vec<String>> {
    let parent = keyword.strip_suffix("/additionalProperties")?;
    let properties = schema.pointer(parent)?.get("properties")?.as_object()?;
    Some(properties.keys().cloned().collect())
}

/// "unknown property 'k'{of}", with the nearest allowed key as a hint, else
/// `otherwise` in parentheses.
fn unknown_property(key: &str, of: &str, allowed: &[&str], otherwise: Option<String>) -> String {
    match (nearest(key, allowed), otherwise) {
        (Some(hint), _) => format!("unknown property '{key}'{of} (did you mean '{hint}'?)"),
        (None, Some(otherwise)) => format!("unknown property '{key}'{of} ({otherwise})"),
        (None, None) => format!("unknown property '{key}'{of}"),
    }
}

fn error(path: String, message: String) -> Problem {
    Problem { level: Level::Error, path, message }
}

/// A JSON Pointer segment.
fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

/// Long enum lists cut down to what a reader can take in.
fn shorten(message: &str) -> String {
    const LIMIT: usize = 300;
    if message.len() <= LIMIT {
        return message.to_string();
    }
    let cut = (0..=LIMIT).rev().find(|i| message.is_char_boundary(*i)).unwrap_or(0);
    format!("{}...", &message[..cut])
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn errors(app: Json) -> Vec<String> {
        check_app(&app).into_iter().filter(|p| p.level == Level::Error).map(|p| p.to_string()).collect()
    }

    #[test]
    fn the_bundled_apps_follow_the_protocol() {
        for app in [super::super::examples::TODO_APP, super::super::examples::CRM_APP] {
            let problems = check_app(&serde_json::from_str(app).unwrap());
            assert!(problems.is_empty(), "{problems:#?}");
        }
    }

    #[test]
    fn a_typo_in_a_field_names_the_path_and_the_property_meant() {
        let app = json!({"objects": [{"name": "task", "fields": {"title": {"type": "text", "requird": true}}}]});
        assert_eq!(errors(app), ["/objects/0/fields/title/requird: unknown property 'requird' (did you mean 'required'?)"]);
    }

    #[test]
    fn wrong_types_and_values_are_errors_at_their_path() {
        let app = json!({"objects": [{"name": "task", "fields": {"n": {"type": "number", "required": "yes"}, "k": {"type": "texty"}}}]});
        let found = errors(app);
        assert!(found.iter().any(|e| e.starts_with("/objects/0/fields/n/required: ") && e.contains("boolean")), "{found:?}");
        assert!(found.iter().any(|e| e.starts_with("/objects/0/fields/k/type: ") && e.contains("texty")), "{found:?}");
    }

    #[test]
    fn a_property_with_a_default_may_be_left_out_and_one_without_may_not() {
        let flow = json!({"name": "f", "label": "F", "type": "api", "nodes": [{"type": "start"}], "edges": []});
        let found = errors(json!({ "flows": [flow] }));
        assert_eq!(found, ["/flows/0/nodes/0: \"id\" is a required property"]);
        let rule = json!({"name": "close_task", "objectName": "task", "triggerType": "on_create"});
        assert_eq!(errors(json!({ "workflows": [rule] })), Vec::<String>::new());
    }

    #[test]
    fn top_level_keys_the_server_does_not_know_are_errors_and_unserved_ones_warnings() {
        let problems = check_app(&json!({"objets": [], "views": [], "_note": "a comment", "$schema": "x", "objects": []}));
        let shown: Vec<String> = problems.iter().map(Problem::to_string).collect();
        assert_eq!(
            shown,
            [
                "/objets: unknown property 'objets' (did you mean 'objects'?)",
                "/views: warning: 'views' is part of the protocol but not served by this server; it is ignored"
            ]
        );
        assert_eq!(errors(json!({"objects": {}})), ["/objects: 'objects' must be a list"]);
    }

    #[test]
    fn an_extension_is_checked_as_the_object_it_extends() {
        let app = json!({"objects": [{"extend": "task", "priority": 300, "fields": {"due": {"type": "date", "lable": "Due"}}, "colour": "red"}]});
        assert_eq!(
            errors(app),
            [
                "/objects/0/colour: unknown property 'colour' of an object extension (it may hold: extend, priority, fields, validations, indexes, label, pluralLabel, description)",
                "/objects/0/fields/due/lable: unknown property 'lable' (did you mean 'label'?)"
            ]
        );
    }

    #[test]
    fn a_file_of_one_object_is_checked_as_an_object() {
        assert_eq!(errors(json!({"name": "Task", "fields": {}})).len(), 1);
        assert_eq!(errors(json!({"name": "task", "fields": {}})), Vec::<String>::new());
    }

    #[test]
    fn the_servers_readings_of_the_schemas_are_accepted_and_no_more() {
        let parent = json!({"objects": [{"name": "line", "sharingModel": "controlled_by_parent", "fields": {}}]});
        assert_eq!(errors(parent), Vec::<String>::new());
        assert_eq!(errors(json!({"objects": [{"name": "line", "sharingModel": "by_parent", "fields": {}}]})).len(), 1);
        let flow = |node: Json, edge: Json| json!({"flows": [{"name": "f", "label": "F", "type": "api", "nodes": [node], "edges": [edge]}]});
        assert_eq!(errors(flow(json!({"id": "s", "type": "start"}), json!({"source": "s", "target": "s"}))), Vec::<String>::new());
        assert_eq!(
            errors(flow(json!({"id": "s"}), json!({"source": "s"}))),
            ["/flows/0/nodes/0: \"type\" is a required property", "/flows/0/edges/0: \"target\" is a required property"]
        );
    }
}
