//! Loading the example apps and rejecting invalid definitions.

use serde_json::json;

use super::examples::{CRM_APP, TODO_APP};
use super::*;
use crate::event::EventPayload;

fn load(text: &str) -> AppDef {
    load_app(&serde_json::from_str(text).unwrap()).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn example_apps_load() {
    let todo = load(TODO_APP);
    assert_eq!(todo.manifest.namespace.as_deref(), Some("todo"));
    assert_eq!(todo.objects.len(), 1);
    assert_eq!(todo.seed[0].records.len(), 8);
    let crm = load(CRM_APP);
    assert_eq!(crm.objects.len(), 10);
    for object in &crm.objects {
        ObjectDef::from_json(object).unwrap();
    }
}

fn app_with(object: serde_json::Value) -> Result<AppDef, crate::DomainError> {
    load_app(&json!({"objects": [object]}))
}

fn rejection(object: serde_json::Value) -> String {
    app_with(object).expect_err("definition should be rejected").to_string()
}

#[test]
fn invalid_definitions_name_object_field_and_rule() {
    let cases = [
        (json!({"name": "Bad Name", "fields": {}}), vec!["'Bad Name'", "snake_case"]),
        (json!({"name": "thing", "fields": {"Title": {"type": "text"}}}), vec!["object 'thing'", "field 'Title'"]),
        (json!({"name": "thing", "fields": {"a": {"type": "wat"}}}), vec!["field 'a'", "unknown variant `wat`"]),
        (json!({"name": "thing", "fields": {"s": {"type": "select"}}}), vec!["field 's'", "at least one option"]),
        (json!({"name": "thing", "fields": {"s": {"type": "select", "options": [{"label": "A", "value": "A"}]}}}), vec!["field 's'", "system identifier"]),
        (json!({"name": "thing", "fields": {"r": {"type": "lookup"}}}), vec!["field 'r'", "reference"]),
        (json!({"name": "thing", "fields": {"r": {"type": "lookup", "reference": "nowhere"}}}), vec!["field 'r'", "unknown object 'nowhere'"]),
        (json!({"name": "thing", "fields": {"n": {"type": "number", "min": 5, "max": 1}}}), vec!["field 'n'", "min 5"]),
        (json!({"name": "thing", "fields": {"f": {"type": "formula", "expression": "NOPE(1)"}}}), vec!["field 'f'", "unknown function NOPE"]),
        (json!({"name": "thing", "fields": {"f": {"type": "formula", "expression": "ghost + 1"}}}), vec!["field 'f'", "unknown field 'ghost'"]),
        (json!({"name": "thing", "fields": {"id": {"type": "text"}}}), vec!["field 'id'", "system field"]),
        (
            json!({"name": "thing", "fields": {"a": {"type": "text"}}, "validations": [{"name": "r1", "type": "script", "message": "m", "condition": "b > 1"}]}),
            vec!["rule 'r1'", "unknown field 'b'"],
        ),
        (
            json!({"name": "thing", "fields": {"a": {"type": "text"}}, "validations": [{"name": "r1", "type": "teleport", "message": "m"}]}),
            vec!["rule 'r1'", "unknown rule type"],
        ),
        (
            json!({"name": "thing", "fields": {"a": {"type": "text"}}, "validations": [{"name": "r1", "type": "format", "field": "a", "message": "m", "regex": "("}]}),
            vec!["rule 'r1'", "regex"],
        ),
        (json!({"name": "thing", "fields": {"v": {"type": "vector"}}}), vec!["field 'v'", "dimensions"]),
        (json!({"name": "user", "fields": {}}), vec!["object 'user'", "built-in"]),
    ];
    for (definition, needles) in cases {
        let message = rejection(definition.clone());
        for needle in needles {
            assert!(message.contains(needle), "{definition}: '{message}' lacks '{needle}'");
        }
    }
}

#[test]
fn namespaces_qualify_names() {
    let app = load_app(&json!({"manifest": {"namespace": "todo"}, "objects": [{"name": "task", "fields": {"a": {"type": "text"}}}]})).unwrap();
    let mut catalog = Catalog::default();
    let events = decide_metadata(&catalog, &MetadataCommand::put_one(app.objects[0].clone(), app.manifest.namespace.clone())).unwrap();
    for event in &events {
        evolve_catalog(&mut catalog, event).unwrap();
    }
    assert!(catalog.get("task").is_some());
    assert!(catalog.get("todo__task").is_some());
    assert!(catalog.get("crm__task").is_none());
    assert_eq!(catalog.fully_qualified_name("task"), "todo__task");
    assert!(load_app(&json!({"manifest": {"namespace": "Bad__ns"}, "objects": []})).is_err());
}

#[test]
fn object_extensions_merge_in_priority_order() {
    let app = load_app(&json!({"objects": [
        {"name": "thing", "fields": {"a": {"type": "text"}}},
        {"extend": "thing", "priority": 300, "label": "Late"},
        {"extend": "thing", "priority": 100, "fields": {"b": {"type": "number"}}, "label": "Early"}
    ]}))
    .unwrap();
    let object = ObjectDef::from_json(&app.objects[0]).unwrap();
    assert!(object.field("b").is_some());
    assert_eq!(object.label, "Late");
    assert!(load_app(&json!({"objects": [{"extend": "ghost", "fields": {}}]})).is_err());
}

#[test]
fn metadata_commands_given_when_then() {
    let definition = json!({"name": "thing", "fields": {"a": {"type": "text"}}});
    let put = MetadataCommand::put_one(definition.clone(), None);
    // given nothing, when put, then defined
    let mut catalog = Catalog::default();
    let events = decide_metadata(&catalog, &put).unwrap();
    assert!(matches!(events.as_slice(), [EventPayload::ObjectDefined(e)] if e.name == "thing"));
    evolve_catalog(&mut catalog, &events[0]).unwrap();
    // given defined, when the same put, then nothing
    assert!(decide_metadata(&catalog, &put).unwrap().is_empty());
    // given defined, when changed, then altered
    let changed = MetadataCommand::put_one(json!({"name": "thing", "fields": {"a": {"type": "text"}, "b": {"type": "number"}}}), None);
    let events = decide_metadata(&catalog, &changed).unwrap();
    assert!(matches!(events.as_slice(), [EventPayload::ObjectAltered(_)]));
    evolve_catalog(&mut catalog, &events[0]).unwrap();
    assert!(catalog.get("thing").unwrap().field("b").is_some());
    // given a referrer, when removing the target, then restricted
    let child = MetadataCommand::put_one(json!({"name": "child", "fields": {"t": {"type": "lookup", "reference": "thing"}}}), None);
    for event in decide_metadata(&catalog, &child).unwrap() {
        evolve_catalog(&mut catalog, &event).unwrap();
    }
    let remove = MetadataCommand::RemoveObject { name: "thing".into() };
    assert_eq!(decide_metadata(&catalog, &remove).unwrap_err().code(), crate::ErrorCode::DeleteRestricted);
    // when removing the referrer, then removed
    let events = decide_metadata(&catalog, &MetadataCommand::RemoveObject { name: "child".into() }).unwrap();
    evolve_catalog(&mut catalog, &events[0]).unwrap();
    assert!(catalog.get("child").is_none());
    assert_eq!(decide_metadata(&catalog, &MetadataCommand::RemoveObject { name: "ghost".into() }).unwrap_err().code(), crate::ErrorCode::ObjectNotFound);
}

#[test]
fn example_seed_data_satisfies_its_own_rules() {
    // Seeds load without rules (`skip_rules`), so a seed that breaks one makes its
    // record impossible to edit later: every bundled record must pass them.
    for text in [TODO_APP, CRM_APP] {
        let app = load(text);
        for set in &app.seed {
            let Some(definition) = app.objects.iter().find(|o| o["name"] == json!(set.object)) else { continue };
            let object = ObjectDef::from_json(definition).unwrap();
            for seed in &set.records {
                let mut record = crate::value::Record::new();
                for (name, value) in seed {
                    let Some(field) = object.field(name) else { continue };
                    // `<now+3d>` placeholders stand for dates.
                    let value = match value.as_str() {
                        Some(text) if text.starts_with("<now") => json!("2026-01-01T00:00:00Z"),
                        _ => value.clone(),
                    };
                    record.insert(name.clone(), crate::validate::check_value(field, &value).unwrap());
                }
                let now = crate::Timestamp::from_micros(1_767_225_600_000_000);
                let outcome = crate::validate::check_rules(&object, &record, Some(&record), RuleEvent::Update, now, &crate::record::NoLookups);
                assert!(outcome.errors.is_empty(), "{} {:?}: {:?}", set.object, seed, outcome.errors);
            }
        }
    }
}
