//! Query model tests: events in, queries out.

use serde_json::json;

use domain::event::{EventPayload, FieldChange, ObjectDefined, RecordCreated, RecordDeleted, RecordUpdated};
use domain::query::{parse_query, parse_url_params};
use domain::value::{Record, Value};

use super::*;
use crate::test_support::envelope;

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
                automated: Vec::new(),
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
                automated: Vec::new(),
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
        // Indexed conditions under AND intersect, under OR unite; `A AND (A OR B)` is `A`.
        (json!({"where": {"$and": [{"stage": "won"}, {"amount": {"$gt": 60}}]}, "orderBy": "amount"}), vec!["d1"]),
        (json!({"where": {"$or": [{"stage": "lost"}, {"amount": {"$lt": 60}}]}, "orderBy": "name"}), vec!["d2", "d3"]),
        (json!({"where": {"$and": [{"stage": "won"}, {"$or": [{"stage": "won"}, {"amount": {"$gt": 300}}]}]}, "orderBy": "-amount"}), vec!["d1", "d3"]),
        (
            json!({"where": {"$and": [{"stage": {"$in": ["won", "open"]}}, {"$or": [{"account": "a2"}, {"amount": {"$gt": 300}}]}]}, "orderBy": "name"}),
            vec!["d4", "d3"],
        ),
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
            automated: Vec::new(),
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

/// Random creates, updates and deletes folded three ways (indexes kept up per
/// event; built once after a bulk load; a bulk load ended half way) give the
/// same answers, through key sets small and large (a set turns into a tree
/// past 32 ids and back to fewer by deletes).
#[test]
fn bulk_loaded_indexes_answer_like_incremental_ones() {
    let definition = json!({"name": "deal", "fields": {"name": {"type": "text"}, "amount": {"type": "number"}, "stage": {"type": "text"}, "won": {"type": "boolean"}, "code": {"type": "text"}}});
    let mut events = vec![EventPayload::ObjectDefined(ObjectDefined { name: "deal".into(), namespace: None, definition: definition.to_string() })];
    let mut rng = crate::test_support::Rng(0x2545_f491_4f6c_dd1d);
    let mut next = |n: u64| rng.below(n);
    for _ in 0..3_000 {
        let id = format!("d{}", next(400));
        let stage = Value::Text(["open", "won", "lost", "hold"][next(4) as usize].into());
        let amount = Value::Int(next(50) as i64);
        events.push(match next(10) {
            0..=5 => EventPayload::RecordCreated(RecordCreated {
                object: "deal".into(),
                id: id.clone(),
                record: record(json!({"id": id, "name": format!("n{}", next(30)), "won": next(2) == 0}))
                    .into_iter()
                    .chain([("stage".into(), stage), ("amount".into(), amount)])
                    .collect(),
                automated: Vec::new(),
            }),
            6..=8 => EventPayload::RecordUpdated(RecordUpdated {
                object: "deal".into(),
                id,
                changes: vec![
                    FieldChange { field: "stage".into(), old: Value::Null, new: stage },
                    FieldChange { field: "code".into(), old: Value::Null, new: Value::Text(format!("c{:04}", next(2000))) },
                    FieldChange { field: "amount".into(), old: Value::Null, new: if next(5) == 0 { Value::Null } else { amount } },
                ],
                automated: Vec::new(),
            }),
            _ => EventPayload::RecordDeleted(RecordDeleted { object: "deal".into(), id, previous: Record::new(), cause: None }),
        });
    }
    let fold = |bulk_until: usize| {
        let mut model = QueryModel::default();
        if bulk_until > 0 {
            model.begin_bulk();
        }
        for (i, payload) in events.iter().enumerate() {
            // Updates of missing rows are no-ops in every model.
            model.apply_owned(&envelope(i as u64 + 1), payload.clone());
            if i + 1 == bulk_until {
                model.end_bulk();
            }
        }
        model
    };
    let models = [fold(0), fold(events.len()), fold(events.len() / 2)];
    let queries = [
        json!({"where": {"stage": "won"}, "limit": 1000}),
        json!({"where": {"stage": {"$in": ["open", "hold"]}}, "limit": 1000}),
        json!({"where": {"amount": {"$gte": 10, "$lt": 30}}, "limit": 1000}),
        json!({"where": {"amount": {"$between": [5, 6]}}, "orderBy": "-amount", "limit": 1000}),
        json!({"orderBy": "amount", "limit": 50, "offset": 20}),
        json!({"where": {"won": true}, "orderBy": "-won", "limit": 1000}),
        json!({"where": {"name": "n7"}, "orderBy": "name", "limit": 1000}),
        json!({"where": {"stage": "lost", "amount": {"$gt": 25}}, "limit": 1000}),
        json!({"where": {"code": {"$gte": "c0500", "$lt": "c0900"}}, "limit": 1000}),
        json!({"where": {"code": {"$in": (0..100).map(|i| format!("c{i:04}")).collect::<Vec<_>>()}}, "limit": 1000}),
    ];
    for body in queries {
        let answers: Vec<(Vec<String>, Option<u64>)> = models
            .iter()
            .map(|m| {
                let out = run(m, body.clone());
                (ids(&out), out.total)
            })
            .collect();
        assert!(answers[0].1.unwrap() > 0 || body["where"]["amount"]["$between"].is_array(), "{body} matches something");
        assert_eq!(answers[0], answers[1], "{body}: bulk-built indexes");
        assert_eq!(answers[0], answers[2], "{body}: bulk load ended half way");
    }
}

/// A number field holding text that parses as NaN keys every such row alike,
/// and a bulk-built index keeps them all (equal keys group, none is lost).
#[test]
fn bulk_built_index_keeps_every_row_of_a_nan_key() {
    let definition = json!({"name": "deal", "fields": {"amount": {"type": "number"}}});
    let mut events = vec![EventPayload::ObjectDefined(ObjectDefined { name: "deal".into(), namespace: None, definition: definition.to_string() })];
    for (id, amount) in [("d1", "NaN"), ("d2", "5"), ("d3", "NaN")] {
        events.push(EventPayload::RecordCreated(RecordCreated {
            object: "deal".into(),
            id: id.into(),
            record: record(json!({"id": id, "amount": amount})),
            automated: Vec::new(),
        }));
    }
    for bulk in [false, true] {
        let mut model = QueryModel::default();
        if bulk {
            model.begin_bulk();
        }
        for (i, payload) in events.iter().enumerate() {
            model.apply_owned(&envelope(i as u64 + 1), payload.clone());
        }
        model.end_bulk();
        assert_eq!(ids(&run(&model, json!({"where": {"amount": "NaN"}}))), ["d1", "d3"], "bulk: {bulk}");
    }
}

#[test]
fn a_shared_snapshot_is_the_historys_at_the_models_position_and_a_new_one_after_it() {
    let mut live = model();
    let history = Arc::new(crate::history::History::new(1000, 100));
    live.set_history(history.clone());
    history.keep(live.snapshot());
    let kept = history.latest(|_, _| true).unwrap();
    assert_eq!(kept.position, live.checkpoint());
    assert!(Arc::ptr_eq(&live.shared_snapshot(), &kept), "the history's snapshot, not a second one");
    // One event later the history's snapshot is behind the model: a new one holds the new row.
    let created = RecordCreated { object: "account".into(), id: "a3".into(), record: record(json!({"id": "a3", "name": "Initech"})), automated: Vec::new() };
    live.apply(&envelope(100), &EventPayload::RecordCreated(created));
    let shared = live.shared_snapshot();
    assert!(!Arc::ptr_eq(&shared, &kept));
    assert_eq!((shared.position, shared.rows()), (100, kept.rows() + 1));
}

#[test]
fn a_loaded_snapshot_knows_each_rows_digest_unless_its_rows_came_out_of_order() {
    use crate::snapshot::Snapshot;
    use commands::service::sharing::{digest, RecordSource};
    let live = model();
    let load =
        |snapshot: crate::history::ModelSnapshot| QueryModel::decode(QueryModel::default(), live.checkpoint(), &QueryModel::encode_to_vec(snapshot)).unwrap();
    let mut loaded = load(live.snapshot());
    let digests = loaded.take_loaded_digests().expect("a save writes rows in id order");
    assert!(loaded.take_loaded_digests().is_none(), "taken once");
    // Each table's digests are its rows' own, in the order of the model's rows.
    let snapshot = Arc::new(loaded.snapshot());
    let mut buffer = Vec::new();
    for (object, rows) in &snapshot.tables {
        let (_, held) = digests.iter().find(|(name, _)| name == object).expect("every table");
        let wanted: Vec<_> = rows.iter().map(|(_, record)| digest(record, &mut buffer)).collect();
        assert_eq!(held, &wanted, "{object}");
    }
    let known = |source: &RowsAt, object: &str, id: &str| source.records_digested(&[(object, id)]).remove(0).map(|(_, digest)| digest);
    let record_of = |object: &str, id: &str| live.row(object, id).unwrap();
    let source = RowsAt::with_digests(snapshot.clone(), Some(digests.clone()));
    assert_eq!(known(&source, "deal", "d3"), Some(Some(digest(&record_of("deal", "d3"), &mut buffer))));
    assert_eq!(known(&source, "account", "a2"), Some(Some(digest(&record_of("account", "a2"), &mut buffer))));
    assert_eq!(known(&source, "deal", "d9"), None);
    // A table whose digests are not one per row is looked up without them.
    let mut short = digests.clone();
    short.iter_mut().find(|(name, _)| name == "deal").unwrap().1.pop();
    let source = RowsAt::with_digests(snapshot.clone(), Some(short));
    assert_eq!(known(&source, "deal", "d3"), Some(None));
    assert_eq!(known(&source, "account", "a2"), Some(Some(digest(&record_of("account", "a2"), &mut buffer))));
    // Rows out of id order (no save writes them so) load whole, with no digests.
    let mut shuffled = live.snapshot();
    shuffled.tables.iter_mut().for_each(|(_, rows)| rows.reverse());
    let mut reloaded = load(shuffled);
    assert!(reloaded.take_loaded_digests().is_none());
    assert_eq!(reloaded.row_counts(), live.row_counts());
    let source = RowsAt::with_digests(Arc::new(reloaded.snapshot()), None);
    assert_eq!(known(&source, "deal", "d1"), Some(None));
}

#[test]
fn a_loaded_snapshot_keeps_the_indexes_it_saved_and_keeps_them_right_after() {
    use crate::snapshot::Snapshot;
    let mut live = model();
    let at = live.checkpoint();
    let load = |snapshot: crate::history::ModelSnapshot| QueryModel::decode(QueryModel::default(), at, &QueryModel::encode_to_vec(snapshot)).unwrap();
    let mut loaded = load(live.snapshot());
    // A save hands the body to its file in pieces (rows, then each field's
    // index, as they are written): the same bytes as the body made whole.
    let mut file = Vec::new();
    let mut pieces = crate::snapshot::codec::Writer::spilling(&mut file, 64);
    QueryModel::encode(live.snapshot(), &mut pieces);
    pieces.finish().unwrap();
    drop(pieces);
    assert_eq!(file, QueryModel::encode_to_vec(live.snapshot()));
    // Taken as saved: each table keeps its indexes before the load ends.
    assert!(loaded.tables.values().all(|table| table.keeps_indexes()));
    // The keys and slots an index built from the same rows has.
    live.tables.values_mut().for_each(Table::build_indexes);
    for (name, table) in &live.tables {
        assert!(!table.indexed().is_empty(), "{name}");
        for (field, _) in table.indexed() {
            let built = table.index_of(field).unwrap().entries();
            assert_eq!(loaded.tables[name].index_of(field).unwrap().entries(), built, "{name}.{field}");
        }
    }
    // What the load folds after the snapshot (in bulk, as a start folds it) keeps them right.
    loaded.begin_bulk();
    assert!(loaded.tables.values().all(|table| table.keeps_indexes()));
    let tail = [
        EventPayload::RecordCreated(RecordCreated {
            object: "deal".into(),
            id: "d5".into(),
            record: record(json!({"id": "d5", "name": "Epsilon", "amount": 75, "stage": "won", "account": "a1"})),
            automated: Vec::new(),
        }),
        EventPayload::RecordUpdated(RecordUpdated {
            object: "deal".into(),
            id: "d1".into(),
            changes: vec![FieldChange { field: "stage".into(), old: Value::Text("won".into()), new: Value::Text("lost".into()) }],
            automated: Vec::new(),
        }),
        EventPayload::RecordDeleted(RecordDeleted { object: "deal".into(), id: "d3".into(), previous: Record::new(), cause: None }),
    ];
    for (n, event) in tail.iter().enumerate() {
        live.apply(&envelope(at + 1 + n as u64), event);
        loaded.apply(&envelope(at + 1 + n as u64), event);
    }
    loaded.end_bulk();
    let cases = [
        (json!({"where": {"stage": "won"}, "orderBy": "amount"}), vec!["d5"]),
        (json!({"where": {"stage": "lost"}, "orderBy": "name"}), vec!["d1", "d2"]),
        (json!({"where": {"amount": {"$gte": 60, "$lt": 300}}, "orderBy": "-amount"}), vec!["d2", "d1", "d5"]),
        (json!({"where": {"account": "a1"}, "orderBy": "name"}), vec!["d1", "d4", "d5"]),
    ];
    for (body, expected) in &cases {
        assert_eq!(ids(&run(&live, body.clone())), *expected, "{body}");
        assert_eq!(ids(&run(&loaded, body.clone())), *expected, "{body}");
    }
    // Rows out of id order (no save writes them so): their slots are not
    // the saved ones, so the indexes are built when the load ends.
    let mut shuffled = live.snapshot();
    shuffled.tables.iter_mut().for_each(|(_, rows)| rows.reverse());
    let mut reloaded = load(shuffled);
    reloaded.begin_bulk();
    assert!(reloaded.tables.values().all(|table| !table.keeps_indexes()));
    reloaded.end_bulk();
    for (body, expected) in &cases {
        assert_eq!(ids(&run(&reloaded, body.clone())), *expected, "{body}");
    }
}
