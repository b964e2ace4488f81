//! Given/when/then tests of record commands: given past events, when a
//! command, then these events (or this error). No store, no runtime.

use std::cell::RefCell;
use std::collections::BTreeMap;

use serde_json::{json, Map, Value as Json};

use super::*;
use crate::error::{DomainError, ErrorCode};
use crate::event::{EventPayload, FieldChange, RecordCreated};
use crate::metadata::{DeleteBehavior, ObjectDef};
use crate::time::Timestamp;
use crate::value::{Record, Value};

fn object() -> ObjectDef {
    ObjectDef::from_json(&json!({
        "name": "ticket",
        "recordName": {"type": "autonumber", "displayFormat": "T-{0000}"},
        "fields": {
            "subject": {"type": "text", "required": true, "maxLength": 20},
            "status": {"type": "select", "required": true, "options": [
                {"label": "New", "value": "new", "default": true}, {"label": "Open", "value": "open"}, {"label": "Closed", "value": "closed"}]},
            "code": {"type": "text", "unique": true},
            "number": {"type": "autonumber"},
            "due": {"type": "date", "defaultValue": "TODAY()"},
            "points": {"type": "number", "defaultValue": 1},
            "resolution": {"type": "text"},
            "account": {"type": "lookup", "reference": "account"},
            "email": {"type": "email", "conditionalRequired": "status = \"closed\""},
            "total": {"type": "formula", "expression": "points * 2"}
        },
        "validations": [
            {"name": "resolution_needed", "type": "script", "message": "Resolution is required when closing", "condition": "status = \"closed\" AND ISBLANK(resolution)"},
            {"name": "flow", "type": "state_machine", "message": "Invalid status transition", "field": "status", "transitions": {"new": ["open"], "open": ["closed"], "closed": []}},
            {"name": "small_points", "type": "script", "severity": "warning", "message": "Many points", "condition": "points > 10"},
            {"name": "subject_shape", "type": "format", "field": "subject", "regex": "^[A-Z]", "message": "Subject starts upper case"},
            {"name": "points_json", "type": "conditional", "when": "points > 100", "message": "Too many", "then": {"type": "cross_field", "condition": "points < 50", "fields": ["points"]}}
        ]
    }))
    .unwrap()
}

#[derive(Default)]
struct FakeLookups {
    existing: Vec<(String, String)>,
    codes: BTreeMap<String, String>,
    referrers: Vec<Referrer>,
    autonumber: RefCell<u64>,
}

impl Lookups for FakeLookups {
    fn record_exists(&self, object: &str, id: &str) -> bool {
        self.existing.iter().any(|(o, i)| o == object && i == id)
    }
    fn find_duplicate(&self, _: &str, _: &[String], values: &[Value], _: bool, except_id: &str) -> Option<String> {
        let code = values.first()?.as_str()?;
        self.codes.get(code).filter(|id| id.as_str() != except_id).cloned()
    }
    fn next_autonumber(&self, _: &str, _: &str) -> u64 {
        *self.autonumber.borrow() + 1
    }
    fn referrers(&self, _: &str, _: &str) -> Vec<Referrer> {
        self.referrers.clone()
    }
}

const NOW: &str = "2026-11-24T10:00:00Z";

fn now() -> Timestamp {
    Timestamp::parse(NOW).unwrap()
}

fn data(json: Json) -> Map<String, Json> {
    json.as_object().unwrap().clone()
}

/// The test harness: given events, when a command, then check.
struct Given {
    state: RecordState,
    lookups: FakeLookups,
}

fn given(events: Vec<EventPayload>) -> Given {
    let state = events.iter().fold(RecordState::default(), evolve);
    Given { state, lookups: FakeLookups::default() }
}

impl Given {
    fn with(mut self, f: impl FnOnce(&mut FakeLookups)) -> Given {
        f(&mut self.lookups);
        self
    }

    fn when(&self, command: RecordCommand) -> Result<Decision, DomainError> {
        let ctx = DecideContext { now: now(), actor: "alice", lookups: &self.lookups, skip_rules: false, automation: false };
        decide(&object(), &self.state, "t1", &command, &ctx)
    }
}

fn created(extra: Json) -> EventPayload {
    let mut record: Record = Record::new();
    let base = json!({"id": "t1", "subject": "Hello", "status": "new", "number": "T-0001", "due": "2026-11-24", "points": 1,
        "created_at": "2026-11-24T09:00:00.000Z", "updated_at": "2026-11-24T09:00:00.000Z", "created_by": "bob", "modified_by": "bob"});
    for (k, v) in base.as_object().unwrap().iter().chain(extra.as_object().unwrap()) {
        record.insert(k.clone(), Value::from_json(v));
    }
    EventPayload::RecordCreated(RecordCreated { object: "ticket".into(), id: "t1".into(), record, automated: Vec::new() })
}

fn codes(result: Result<Decision, DomainError>) -> Vec<(String, ErrorCode)> {
    let err = result.expect_err("expected an error");
    let mut out: Vec<(String, ErrorCode)> = err.field_errors().iter().map(|e| (e.field.clone(), e.code)).collect();
    if out.is_empty() {
        out.push((String::new(), err.code()));
    }
    out
}

#[test]
fn create_stamps_system_fields_defaults_and_autonumber() {
    let decision = given(vec![]).with(|l| *l.autonumber.borrow_mut() = 41).when(RecordCommand::Create { data: data(json!({"subject": "Hello"})) }).unwrap();
    let [EventPayload::RecordCreated(event)] = decision.events.as_slice() else { panic!("{decision:?}") };
    let r = &event.record;
    assert_eq!(r["id"], Value::Text("t1".into()));
    assert_eq!(r["status"], Value::Text("new".into()), "default option");
    assert_eq!(r["due"], Value::Text("2026-11-24".into()), "TODAY() default");
    assert_eq!(r["points"], Value::Int(1), "literal default");
    assert_eq!(r["number"], Value::Text("T-0042".into()), "object displayFormat");
    assert_eq!(r["created_at"], Value::Text("2026-11-24T10:00:00.000Z".into()));
    assert_eq!(r["created_by"], Value::Text("alice".into()));
    assert_eq!(r["modified_by"], Value::Text("alice".into()));
    assert!(!r.contains_key("total"), "formulas are computed on read, not stored");
}

#[test]
fn create_collects_every_field_error() {
    let result = given(vec![]).when(RecordCommand::Create {
        data: data(json!({"subject": "this subject is far too long", "status": "bogus", "ghost": 1, "total": 3, "created_at": "x"})),
    });
    let mut got = codes(result);
    got.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        got,
        vec![
            ("created_at".into(), ErrorCode::InvalidField),
            ("ghost".into(), ErrorCode::InvalidField),
            ("status".into(), ErrorCode::InvalidFormat),
            ("subject".into(), ErrorCode::ValueTooLong),
            ("total".into(), ErrorCode::InvalidField),
        ]
    );
}

#[test]
fn create_checks_required_references_uniqueness_and_rules() {
    assert_eq!(codes(given(vec![]).when(RecordCommand::Create { data: data(json!({})) })), vec![("subject".into(), ErrorCode::MissingRequiredField)]);
    assert_eq!(
        codes(given(vec![]).when(RecordCommand::Create { data: data(json!({"subject": "Hi", "account": "acc-9"})) })),
        vec![("account".into(), ErrorCode::InvalidReference)]
    );
    let ok = given(vec![]).with(|l| l.existing.push(("account".into(), "acc-9".into())));
    assert!(ok.when(RecordCommand::Create { data: data(json!({"subject": "Hi", "account": "acc-9"})) }).is_ok());
    let dup = given(vec![]).with(|l| {
        l.codes.insert("X1".into(), "other".into());
    });
    let err = dup.when(RecordCommand::Create { data: data(json!({"subject": "Hi", "code": "X1"})) }).unwrap_err();
    assert_eq!(err.code(), ErrorCode::DuplicateValue);
    assert!(err.to_string().contains("other"), "{err}");
    assert_eq!(
        codes(given(vec![]).when(RecordCommand::Create { data: data(json!({"subject": "Hi", "status": "closed", "email": "a@b.co"})) })),
        vec![("status".into(), ErrorCode::ValidationError)],
        "script rule resolution_needed"
    );
    assert_eq!(
        codes(given(vec![]).when(RecordCommand::Create { data: data(json!({"subject": "Hi", "status": "closed", "resolution": "done"})) })),
        vec![("email".into(), ErrorCode::MissingRequiredField)],
        "conditionalRequired"
    );
    assert_eq!(
        codes(given(vec![]).when(RecordCommand::Create { data: data(json!({"subject": "lower"})) })),
        vec![("subject".into(), ErrorCode::InvalidFormat)]
    );
    assert_eq!(
        codes(given(vec![]).when(RecordCommand::Create { data: data(json!({"subject": "Hi", "points": 101})) })),
        vec![("points".into(), ErrorCode::ValidationError)],
        "conditional -> cross_field"
    );
    let warned = given(vec![]).when(RecordCommand::Create { data: data(json!({"subject": "Hi", "points": 20})) }).unwrap();
    assert_eq!(warned.warnings.len(), 1, "warning rules do not reject");
}

#[test]
fn create_on_an_existing_record_is_refused() {
    assert_eq!(
        codes(given(vec![created(json!({}))]).when(RecordCommand::Create { data: data(json!({"subject": "Hi"})) })),
        vec![("".into(), ErrorCode::DuplicateRecord)]
    );
}

#[test]
fn update_emits_changes_with_old_and_new_values() {
    let decision =
        given(vec![created(json!({}))]).when(RecordCommand::Update { patch: data(json!({"subject": "Changed", "status": "open", "points": null})) }).unwrap();
    let [EventPayload::RecordUpdated(event)] = decision.events.as_slice() else { panic!("{decision:?}") };
    let change = |f: &str| event.changes.iter().find(|c| c.field == f).cloned();
    assert_eq!(change("subject"), Some(FieldChange { field: "subject".into(), old: Value::Text("Hello".into()), new: Value::Text("Changed".into()) }));
    assert_eq!(change("points"), Some(FieldChange { field: "points".into(), old: Value::Int(1), new: Value::Null }));
    assert_eq!(change("modified_by").unwrap().new, Value::Text("alice".into()));
    assert_eq!(change("updated_at").unwrap().new, Value::Text("2026-11-24T10:00:00.000Z".into()));
    assert!(change("due").is_none());
    let state = evolve(given(vec![created(json!({}))]).state, &decision.events[0]);
    assert_eq!(state.version, 2);
    let record = state.record.unwrap();
    assert!(!record.contains_key("points"));
    assert_eq!(record["status"], Value::Text("open".into()));
}

#[test]
fn update_rules_state_machine_required_and_noop() {
    let g = given(vec![created(json!({}))]);
    assert_eq!(
        codes(g.when(RecordCommand::Update { patch: data(json!({"status": "closed", "resolution": "x", "email": "a@b.co"})) })),
        vec![("status".into(), ErrorCode::ValidationError)]
    );
    assert_eq!(codes(g.when(RecordCommand::Update { patch: data(json!({"subject": null})) })), vec![("subject".into(), ErrorCode::MissingRequiredField)]);
    assert_eq!(g.when(RecordCommand::Update { patch: data(json!({"subject": "Hello", "id": "t1"})) }).unwrap(), Decision::default(), "no change, no event");
    assert_eq!(codes(g.when(RecordCommand::Update { patch: data(json!({"id": "other"})) })), vec![("id".into(), ErrorCode::InvalidField)]);
    assert_eq!(codes(given(vec![]).when(RecordCommand::Update { patch: data(json!({"subject": "X"})) })), vec![("".into(), ErrorCode::RecordNotFound)]);
}

#[test]
fn delete_keeps_the_previous_record_and_honours_restrict() {
    let g = given(vec![created(json!({}))]);
    let decision = g.when(RecordCommand::Delete).unwrap();
    let [EventPayload::RecordDeleted(event)] = decision.events.as_slice() else { panic!() };
    assert_eq!(event.previous["subject"], Value::Text("Hello".into()));
    let after = evolve(g.state.clone(), &decision.events[0]);
    assert!(!after.exists());
    let deleted = given(vec![created(json!({})), decision.events[0].clone()]);
    assert_eq!(codes(deleted.when(RecordCommand::Delete)), vec![("".into(), ErrorCode::RecordNotFound)]);
    assert!(deleted.when(RecordCommand::Create { data: data(json!({"subject": "Again"})) }).is_ok(), "a deleted id can be created again");
    let restricted = given(vec![created(json!({}))])
        .with(|l| l.referrers.push(Referrer { object: "child".into(), id: "c1".into(), field: "parent".into(), behavior: DeleteBehavior::Restrict }));
    assert_eq!(codes(restricted.when(RecordCommand::Delete)), vec![("".into(), ErrorCode::DeleteRestricted)]);
}

#[test]
fn autonumber_formats() {
    assert_eq!(format_autonumber("CASE-{0000}", 7, now()), "CASE-0007");
    assert_eq!(format_autonumber("INV-{YYYY}{MM}-{000}", 12, now()), "INV-202611-012");
    assert_eq!(format_autonumber("{0}", 12345, now()), "12345");
    assert_eq!(format_autonumber("odd {x} {", 1, now()), "odd {x} {");
}
