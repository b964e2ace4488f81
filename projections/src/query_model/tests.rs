//! Query model tests: events in, queries out.

use serde_json::json;

use domain::event::{EventEnvelope, EventPayload, FieldChange, ObjectDefined, RecordCreated, RecordDeleted, RecordUpdated};
use domain::query::{parse_query, parse_url_params};
use domain::value::{Record, Value};

use super::*;

fn envelope(position: u64) -> EventEnvelope {
    EventEnvelope {
        position,
        stream: String::new(),
        stream_version: 1,
        event_id: [0; 16],
        event_type: String::new(),
        schema_version: 1,
        occurred_at: 0,
        actor: "t".into(),
        tenant: "default".into(),
        correlation_id: [0; 16],
        causation_id: None,
        idempotency_key: None,
        payload: Vec::new(),
    }
}

fn record(json: serde_json::Value) -> Record {
    json.as_object().unwrap().iter().map(|(k, v)| (k.clone(), Value::from_json(v))).collect()
}

fn model() -> QueryModel {
    let mut model = QueryModel::default();
    let mut position = 0;
    let mut apply = |model: &mut QueryModel, payload: EventPayload| {
        position += 1;
        model.apply(&envelope(position), &payload);
    };
    for definition in [
        json!({"name": "account", "fields": {"name": {"type": "text"}, "industry": {"type": "text"}}}),
        json!({"name": "deal", "fields": {"name": {"type": "text"}, "amount": {"type": "currency"}, "stage": {"type": "text"},
            "tags": {"type": "tags"}, "account": {"type": "lookup", "reference": "account"}, "double": {"type": "formula", "expression": "amount * 2"}}}),
    ] {
        let name = definition["name"].as_str().unwrap().to_string();
        apply(&mut model, EventPayload::ObjectDefined(ObjectDefined { name, namespace: None, definition: definition.to_string() }));
    }
    for (id, name, industry) in [("a1", "Acme", "tech"), ("a2", "Globex", "retail")] {
        apply(
            &mut model,
            EventPayload::RecordCreated(RecordCreated {
                object: "account".into(),
                id: id.into(),
                record: record(json!({"id": id, "name": name, "industry": industry})),
            }),
        );
    }
    let deals = [
        ("d1", "Alpha", 100, "won", "a1", json!(["big"])),
        ("d2", "beta", 250, "lost", "a2", json!([])),
        ("d3", "Gamma", 50, "won", "a2", json!(["big", "new"])),
        ("d4", "delta", 400, "open", "a1", json!(["new"])),
    ];
    for (id, name, amount, stage, account, tags) in deals {
        apply(
            &mut model,
            EventPayload::RecordCreated(RecordCreated {
                object: "deal".into(),
                id: id.into(),
                record: record(json!({"id": id, "name": name, "amount": amount, "stage": stage, "account": account, "tags": tags})),
            }),
        );
    }
    model
}

fn ids(output: &QueryOutput) -> Vec<String> {
    output.records.iter().map(|r| r["id"].as_str().unwrap().to_string()).collect()
}

fn run(model: &QueryModel, body: serde_json::Value) -> QueryOutput {
    model.execute(&Viewer::system(), parse_query("deal", &body).unwrap()).unwrap_or_else(|e| panic!("{body}: {e}"))
}

#[test]
fn filters_sort_and_paging_with_true_totals() {
    let model = model();
    let cases = [
        (json!({"where": {"stage": "won"}, "orderBy": "amount"}), vec!["d3", "d1"]),
        (json!({"where": {"amount": {"$gte": 100, "$lt": 400}}, "orderBy": "-amount"}), vec!["d2", "d1"]),
        (json!({"where": [["stage", "=", "lost"], "or", ["amount", ">", 300]], "orderBy": "name"}), vec!["d2", "d4"]),
        (json!({"where": {"name": {"$contains": "ALP"}}}), vec!["d1"]),
        (json!({"where": ["name", "like", "%ta"], "orderBy": "name"}), vec!["d2", "d4"]),
        (json!({"where": {"tags": "big"}, "orderBy": "name"}), vec!["d1", "d3"]),
        (json!({"where": {"stage": {"$in": ["open", "lost"]}}, "orderBy": "name"}), vec!["d2", "d4"]),
        (json!({"where": {"stage": {"$nin": ["open", "lost"]}}, "orderBy": "name"}), vec!["d1", "d3"]),
        (json!({"where": {"account.industry": "retail"}, "orderBy": "name"}), vec!["d2", "d3"]),
        (json!({"where": {"double": {"$gt": 600}}}), vec!["d4"]),
        (json!({"where": {"amount": {"$between": [50, 100]}}, "orderBy": "amount"}), vec!["d3", "d1"]),
        (json!({"where": {"$not": {"stage": "won"}}, "orderBy": "name"}), vec!["d2", "d4"]),
        (json!({"where": {"name": {"$regex": "^[a-z]"}}, "orderBy": "name"}), vec!["d2", "d4"]),
    ];
    for (body, expected) in cases {
        assert_eq!(ids(&run(&model, body.clone())), expected, "{body}");
    }
    let page = run(&model, json!({"orderBy": "amount", "limit": 2, "offset": 1}));
    assert_eq!(ids(&page), ["d1", "d2"]);
    assert_eq!((page.total, page.has_more), (Some(4), true));
    let last = run(&model, json!({"orderBy": "amount", "limit": 2, "offset": 2}));
    assert_eq!((last.total, last.has_more), (Some(4), false));
    assert_eq!(run(&model, json!({"count": false})).total, None);
}

#[test]
fn select_expand_and_formulas() {
    let model = model();
    let out = run(&model, json!({"where": {"id": "d1"}, "fields": ["name", "account"], "expand": {"account": {"fields": ["name"]}}}));
    let row = &out.records[0];
    assert_eq!(row.keys().cloned().collect::<Vec<_>>(), ["account", "id", "name"]);
    assert_eq!(row["account"], Value::Map(record(json!({"id": "a1", "name": "Acme"}))));
    let full = model.get(&Viewer::system(), "deal", "d4").unwrap().unwrap();
    assert_eq!(full["double"], Value::Int(800), "formula computed on read");
    assert!(model.get(&Viewer::system(), "deal", "nope").unwrap().is_none());
    assert!(model.get(&Viewer::system(), "ghost", "x").is_err());
}

#[test]
fn group_by_and_aggregates() {
    let model = model();
    let out = run(
        &model,
        json!({"groupBy": ["stage"], "aggregations": [
        {"function": "sum", "field": "amount", "alias": "total"}, {"function": "count", "alias": "n"}, {"function": "max", "field": "amount", "alias": "top"}],
        "orderBy": [{"field": "total", "order": "desc"}]}),
    );
    let rows: Vec<(Value, Value, Value)> = out.records.iter().map(|r| (r["stage"].clone(), r["total"].clone(), r["n"].clone())).collect();
    assert_eq!(
        rows,
        vec![
            (Value::Text("open".into()), Value::Int(400), Value::Int(1)),
            (Value::Text("lost".into()), Value::Int(250), Value::Int(1)),
            (Value::Text("won".into()), Value::Int(150), Value::Int(2)),
        ]
    );
    let all = run(&model, json!({"aggregations": [{"function": "avg", "field": "amount", "alias": "avg"}]}));
    assert_eq!(all.records[0]["avg"], Value::Float(200.0));
}

#[test]
fn updates_deletes_and_url_params() {
    let mut model = model();
    model.apply(
        &envelope(100),
        &EventPayload::RecordUpdated(RecordUpdated {
            object: "deal".into(),
            id: "d1".into(),
            changes: vec![
                FieldChange { field: "stage".into(), old: Value::Text("won".into()), new: Value::Text("lost".into()) },
                FieldChange { field: "tags".into(), old: Value::Null, new: Value::Null },
            ],
        }),
    );
    model.apply(&envelope(101), &EventPayload::RecordDeleted(RecordDeleted { object: "deal".into(), id: "d3".into(), previous: Record::new(), cause: None }));
    assert_eq!(model.checkpoint(), 101);
    let deal = model.catalog().get("deal").unwrap().clone();
    let params = vec![("stage".to_string(), "lost".to_string()), ("sort".to_string(), "name".to_string())];
    let out = model.execute(&Viewer::system(), parse_url_params(&deal, &params).unwrap()).unwrap();
    assert_eq!(ids(&out), ["d1", "d2"]);
    assert!(!out.records[0].contains_key("tags"));
}
