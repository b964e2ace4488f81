//! Migrations that come with a definition change: how the records already
//! there are brought in line with the new definition, so that a change the
//! breaking check ([`super::breaking_changes`]) would refuse can go through.
//! Per object and field, `backfill` (a value for records that have none) and
//! `remap` (old value to new value: options removed or renamed, each item of
//! a multi-value field); a value mapped to `null` is cleared. The plan is one
//! `record.updated` per record that changes, which the command service
//! appends atomically with the definition, so the audit trail shows them.
//!
//! In an app file: `"migrations": {"task": {"estimate": {"backfill": 1},
//! "status": {"remap": {"archived": "done"}}}}`. A migration acts only with
//! the change of its object's definition; once that is stored it does nothing.

use std::collections::BTreeMap;

use serde_json::Value as Json;

use super::{FieldDef, ObjectDef};
use crate::event::{FieldChange, RecordUpdated};
use crate::validate::check_value;
use crate::value::{Record, Value};

/// Records one change may migrate at most (they are appended in one batch).
pub const MAX_MIGRATED_RECORDS: usize = 100_000;

/// What to do with one field's existing values.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FieldMigration {
    /// The value of records that have none.
    pub backfill: Option<Json>,
    /// Old value (as text) to new value.
    pub remap: BTreeMap<String, Json>,
}

/// One object's field migrations, by field name.
pub type ObjectMigration = BTreeMap<String, FieldMigration>;

/// Every object's migrations, by object name.
pub type Migrations = BTreeMap<String, ObjectMigration>;

/// Reads the `migrations` section: `{object: {field: {backfill?, remap?}}}`.
pub fn parse(json: &Json) -> Result<Migrations, String> {
    let objects = json.as_object().ok_or("'migrations' must be a JSON object of objects, each a JSON object of fields")?;
    objects.iter().map(|(object, fields)| Ok((object.clone(), parse_object(object, fields)?))).collect()
}

/// Reads one object's migrations: `{field: {backfill?, remap?}}`.
pub fn parse_object(object: &str, fields: &Json) -> Result<ObjectMigration, String> {
    let fields = fields.as_object().ok_or_else(|| format!("migrations of '{object}' must be a JSON object of fields"))?;
    let mut migration = ObjectMigration::new();
    for (field, steps) in fields {
        let at = format!("{object}.{field}");
        let steps = steps.as_object().ok_or_else(|| format!("the migration of {at} must be a JSON object with 'backfill' and/or 'remap'"))?;
        let mut parsed = FieldMigration::default();
        for (key, value) in steps {
            match key.as_str() {
                "backfill" if value.is_null() => return Err(format!("the backfill of {at} is null: give the value records without one get")),
                "backfill" => parsed.backfill = Some(value.clone()),
                "remap" => {
                    let pairs = value.as_object().ok_or_else(|| format!("the remap of {at} must be a JSON object of old value to new value"))?;
                    parsed.remap = pairs.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
                }
                other => return Err(format!("the migration of {at} has '{other}': its keys are 'backfill' and 'remap'")),
            }
        }
        if parsed.backfill.is_none() && parsed.remap.is_empty() {
            return Err(format!("the migration of {at} says nothing: give 'backfill' or 'remap'"));
        }
        migration.insert(field.clone(), parsed);
    }
    Ok(migration)
}

/// Checks a migration against the object's new definition: its fields
/// exist and can be written, and every value it writes is one the new
/// definition accepts.
pub fn check(new: &ObjectDef, migration: &ObjectMigration) -> Result<(), String> {
    for (name, steps) in migration {
        let field = new.field(name).ok_or_else(|| format!("the migration of {}.{name} names a field the new definition does not have", new.name))?;
        if field.field_type.is_read_only() {
            return Err(format!("{}.{name} is computed ({:?}): it cannot be migrated", new.name, field.field_type));
        }
        if field.unique {
            return Err(format!("{}.{name} is unique: a migration would give records the same value; change them one by one", new.name));
        }
        if let Some(value) = &steps.backfill {
            check_value(field, value).map_err(|e| format!("the backfill of {}.{name}: {}", new.name, e.message))?;
        }
        for (old, value) in &steps.remap {
            if value.is_null() {
                if field.required {
                    return Err(format!("the remap of {}.{name} clears '{old}', but the field is required", new.name));
                }
                continue;
            }
            item_value(field, value).map_err(|e| format!("the remap of {}.{name} '{old}': {}", new.name, e.message))?;
        }
    }
    Ok(())
}

/// A remapped value: one item of a multi-value field, or the whole value of another.
fn item_value(field: &FieldDef, json: &Json) -> Result<Value, crate::error::FieldError> {
    if field.is_list() && !json.is_array() && !json.is_null() {
        return match check_value(field, &Json::Array(vec![json.clone()]))? {
            Value::List(mut items) if items.len() == 1 => Ok(items.remove(0)),
            other => Ok(other),
        };
    }
    check_value(field, json)
}

/// One field's migration with its values checked once, as the record values they become.
struct Prepared<'a> {
    name: &'a str,
    backfill: Option<Value>,
    remap: BTreeMap<&'a str, Value>,
}

/// The migration's fields the new definition has, each value checked once
/// (a value the definition refuses is left out; [`check`] reports it).
fn prepare<'a>(new: &ObjectDef, migration: &'a ObjectMigration) -> Vec<Prepared<'a>> {
    migration
        .iter()
        .filter_map(|(name, steps)| {
            let field = new.field(name)?;
            Some(Prepared {
                name,
                backfill: steps.backfill.as_ref().and_then(|v| check_value(field, v).ok()),
                remap: steps.remap.iter().filter_map(|(old, to)| Some((old.as_str(), item_value(field, to).ok()?))).collect(),
            })
        })
        .collect()
}

/// A record's value after the field's migration (`None`: unchanged).
fn migrated(field: &Prepared, current: Option<&Value>) -> Option<Value> {
    let map = |value: &Value| field.remap.get(value.as_str()?).cloned();
    match current {
        None | Some(Value::Null) => field.backfill.clone(),
        Some(Value::List(items)) if !field.remap.is_empty() => {
            let mut changed = false;
            let mut out: Vec<Value> = Vec::with_capacity(items.len());
            for item in items {
                let next = match map(item) {
                    Some(to) => {
                        changed = true;
                        to
                    }
                    None => item.clone(),
                };
                let values = match next {
                    Value::Null => Vec::new(),
                    Value::List(many) => many,
                    one => vec![one],
                };
                for value in values {
                    if !out.contains(&value) {
                        out.push(value);
                    }
                }
            }
            changed.then_some(if out.is_empty() { Value::Null } else { Value::List(out) })
        }
        Some(value) => map(value),
    }
}

/// The updates that migrate `records` to the new definition, stamped with
/// `now` and `actor`; or, when records would still break it, the report
/// of what still breaks (with the migration that would mend it).
pub fn plan<'a>(
    new: &ObjectDef,
    migration: Option<&ObjectMigration>,
    records: impl Iterator<Item = &'a Record>,
    now: &str,
    actor: &str,
) -> Result<Vec<RecordUpdated>, Vec<String>> {
    let fields = migration.map(|m| prepare(new, m)).unwrap_or_default();
    let mut updates = Vec::new();
    let mut after: Vec<Record> = Vec::new();
    let mut unchanged: Vec<&Record> = Vec::new();
    for record in records {
        let changes: Vec<FieldChange> = fields
            .iter()
            .filter_map(|field| {
                let value = migrated(field, record.get(field.name))?;
                Some(FieldChange { field: field.name.to_string(), old: record.get(field.name).cloned().unwrap_or_default(), new: value })
            })
            .collect();
        if changes.is_empty() {
            unchanged.push(record);
            continue;
        }
        // Only a record that changes is copied.
        let mut next = record.clone();
        for change in &changes {
            match &change.new {
                Value::Null => next.remove(&change.field),
                value => next.insert(change.field.clone(), value.clone()),
            };
        }
        let mut changes = changes;
        for (system, value) in [("updated_at", now), ("modified_by", actor)] {
            changes.push(FieldChange { field: system.into(), old: record.get(system).cloned().unwrap_or_default(), new: Value::Text(value.into()) });
            next.insert(system, Value::Text(value.into()));
        }
        let id = record.get("id").and_then(Value::as_str).unwrap_or_default().to_string();
        updates.push(RecordUpdated { object: new.name.clone(), id, changes, automated: Vec::new() });
        after.push(next);
    }
    let report = super::breaking_changes(new, unchanged.into_iter().chain(after.iter()));
    if !report.is_empty() {
        return Err(report);
    }
    if updates.len() > MAX_MIGRATED_RECORDS {
        return Err(vec![format!(
            "the migration would change {} records, more than the {MAX_MIGRATED_RECORDS} one change may: migrate in steps (add the field optional, fill it in batches, then require it)",
            updates.len()
        )]);
    }
    Ok(updates)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn object(fields: Json) -> ObjectDef {
        ObjectDef::from_json(&json!({"name": "task", "fields": fields})).unwrap()
    }

    fn record(id: &str, values: Json) -> Record {
        let mut record = Record::new();
        record.insert("id", Value::Text(id.into()));
        for (name, value) in values.as_object().unwrap() {
            record.insert(name.clone(), Value::from_json(value));
        }
        record
    }

    fn migration(json: Json) -> ObjectMigration {
        parse(&json!({ "task": json })).unwrap().remove("task").unwrap()
    }

    fn options(values: &[&str]) -> Json {
        json!(values.iter().map(|v| json!({"label": v, "value": v})).collect::<Vec<_>>())
    }

    #[test]
    fn given_a_new_required_field_when_a_backfill_is_given_then_records_without_a_value_get_it() {
        let new = object(json!({"title": {"type": "text"}, "estimate": {"type": "number", "required": true}}));
        let records = [record("a", json!({"title": "x"})), record("b", json!({"title": "y", "estimate": 3}))];
        let steps = migration(json!({"estimate": {"backfill": 1}}));
        let updates = plan(&new, Some(&steps), records.iter(), "2026-12-04T00:00:00Z", "usr_admin").unwrap();
        assert_eq!(updates.len(), 1, "only the record without a value changes");
        assert_eq!(updates[0].id, "a");
        let fields: Vec<(&str, &Value)> = updates[0].changes.iter().map(|c| (c.field.as_str(), &c.new)).collect();
        assert_eq!(
            fields,
            [
                ("estimate", &Value::from_json(&json!(1))),
                ("updated_at", &Value::Text("2026-12-04T00:00:00Z".into())),
                ("modified_by", &Value::Text("usr_admin".into()))
            ]
        );
    }

    #[test]
    fn given_a_removed_option_when_it_is_remapped_then_single_and_multi_values_move() {
        let new = object(json!({
            "status": {"type": "select", "options": options(&["open", "done"])},
            "tags": {"type": "multiselect", "options": options(&["red", "blue"])}}));
        let records = [
            record("a", json!({"status": "archived", "tags": ["green", "red"]})),
            record("b", json!({"status": "open", "tags": ["blue"]})),
            record("c", json!({"status": "done", "tags": ["green"]})),
        ];
        let steps = migration(json!({"status": {"remap": {"archived": "done"}}, "tags": {"remap": {"green": "red"}}}));
        let updates = plan(&new, Some(&steps), records.iter(), "t", "u").unwrap();
        let by_id: BTreeMap<&str, Vec<(&str, Json)>> = updates
            .iter()
            .map(|u| {
                (
                    u.id.as_str(),
                    u.changes.iter().filter(|c| c.field != "updated_at" && c.field != "modified_by").map(|c| (c.field.as_str(), c.new.to_json())).collect(),
                )
            })
            .collect();
        assert_eq!(by_id["a"], [("status", json!("done")), ("tags", json!(["red"]))], "a mapped item already there is not doubled");
        assert_eq!(by_id["c"], [("tags", json!(["red"]))]);
        assert!(!by_id.contains_key("b"), "records already valid are not touched");
    }

    #[test]
    fn given_a_breaking_change_when_the_migration_does_not_cover_every_record_then_what_still_breaks_is_reported() {
        let new = object(json!({"status": {"type": "select", "options": options(&["open", "done"])}, "due": {"type": "date", "required": true}}));
        let records = [record("a", json!({"status": "archived", "due": "2026-01-01"})), record("b", json!({"status": "stale", "due": "2026-01-01"}))];
        let steps = migration(json!({"status": {"remap": {"archived": "done"}}}));
        let report = plan(&new, Some(&steps), records.iter(), "t", "u").unwrap_err();
        assert_eq!(report.len(), 1, "{report:?}");
        assert!(report[0].starts_with("1 record(s) hold a value of 'status'"), "{report:?}");
        let report = plan(&new, None, [record("c", json!({"status": "open"}))].iter(), "t", "u").unwrap_err();
        assert!(report[0].contains("'due' would be required but 1 record(s) have no value"), "{report:?}");
    }

    #[test]
    fn given_a_remap_to_null_then_the_value_is_cleared_unless_the_field_is_required() {
        let new = object(json!({"status": {"type": "select", "options": options(&["open"])}}));
        let updates =
            plan(&new, Some(&migration(json!({"status": {"remap": {"gone": null}}}))), [record("a", json!({"status": "gone"}))].iter(), "t", "u").unwrap();
        assert_eq!(updates[0].changes[0].new, Value::Null);
        let required = object(json!({"status": {"type": "select", "required": true, "options": options(&["open"])}}));
        let refused = check(&required, &migration(json!({"status": {"remap": {"gone": null}}}))).unwrap_err();
        assert!(refused.contains("required"), "{refused}");
    }

    #[test]
    fn migrations_that_cannot_be_applied_are_refused_before_any_record_is_looked_at() {
        let new = object(json!({
            "code": {"type": "text", "unique": true},
            "estimate": {"type": "number", "max": 10},
            "total": {"type": "formula", "expression": "estimate * 2"}}));
        for (steps, expected) in [
            (json!({"code": {"backfill": "x"}}), "is unique"),
            (json!({"estimate": {"backfill": 50}}), "the backfill of task.estimate"),
            (json!({"total": {"backfill": 1}}), "is computed"),
            (json!({"nope": {"backfill": 1}}), "names a field the new definition does not have"),
        ] {
            let refused = check(&new, &migration(steps.clone())).unwrap_err();
            assert!(refused.contains(expected), "{steps}: {refused}");
        }
        for (section, expected) in [
            (json!({"task": {"estimate": {}}}), "says nothing"),
            (json!({"task": {"estimate": {"backfil": 1}}}), "its keys are 'backfill' and 'remap'"),
            (json!({"task": {"estimate": {"backfill": null}}}), "is null"),
            (json!({"task": {"estimate": {"remap": ["a"]}}}), "old value to new value"),
            (json!(["task"]), "must be a JSON object"),
        ] {
            let refused = parse(&section).unwrap_err();
            assert!(refused.contains(expected), "{section}: {refused}");
        }
    }
}
