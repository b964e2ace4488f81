//! The planner against a plain scan: random compound queries (conjunctions
//! and disjunctions of one to four conditions on indexed and unindexed
//! fields, sorts, offsets, limits, totals) give the same records and totals
//! through the indexes as through checking every row, while random creates,
//! updates and deletes (ids out of order, values removed, keys in mixed case)
//! move rows between keys and through the ranges the indexes keep built.

use serde_json::json;

use domain::event::{EventPayload, FieldChange, ObjectDefined, RecordCreated, RecordDeleted, RecordUpdated};
use domain::query::{parse_query, Condition, Filter, Op, Operand, Query};
use domain::value::{Record, Value};

use super::*;
use crate::test_support::{envelope, Rng};

const PRIORITIES: [&str; 4] = ["high", "medium", "low", "Low"];

/// A value for a field, sometimes none.
fn value(rng: &mut Rng, field: &str) -> Value {
    if rng.below(12) == 0 {
        return Value::Null;
    }
    match field {
        "p" => Value::Text(rng.pick(&PRIORITIES).to_string()),
        "n" if rng.below(20) == 0 => Value::Text(format!("{}", rng.below(60))),
        "n" => Value::Int(rng.below(60) as i64),
        "d" => Value::Text(format!("2026-{:02}-{:02}", 1 + rng.below(12), 1 + rng.below(28))),
        "b" => Value::Bool(rng.below(2) == 0),
        "t" => Value::Text(format!("w{}", rng.below(500))),
        _ => Value::Null,
    }
}

fn event(rng: &mut Rng) -> EventPayload {
    let id = format!("r{:04}", rng.below(900));
    match rng.below(10) {
        0..=5 => {
            let mut record = Record::new();
            record.insert("id", Value::Text(id.clone()));
            // `o` is an owner every row shares: a condition on it holds every row.
            record.insert("o", Value::Text("u1".into()));
            for field in ["p", "n", "d", "b", "t"] {
                let v = value(rng, field);
                if !v.is_null() {
                    record.insert(field, v);
                }
            }
            EventPayload::RecordCreated(RecordCreated { object: "task".into(), id, record, automated: Vec::new() })
        }
        6..=8 => {
            let mut changes = Vec::new();
            for field in ["p", "n", "d", "b"] {
                if rng.below(2) == 0 {
                    changes.push(FieldChange { field: field.into(), old: Value::Null, new: value(rng, field) });
                }
            }
            EventPayload::RecordUpdated(RecordUpdated { object: "task".into(), id, changes, automated: Vec::new() })
        }
        _ => EventPayload::RecordDeleted(RecordDeleted { object: "task".into(), id, previous: Record::new(), cause: None }),
    }
}

/// One condition, on an indexed field or not.
fn condition(rng: &mut Rng) -> serde_json::Value {
    match rng.below(15) {
        0 => json!(["p", "=", rng.pick(&PRIORITIES)]),
        13 => json!(["o", "=", "u1"]),
        14 => json!(["o", "in", ["u1", rng.pick(&["u1", "u2"])]]),
        11 | 12 => json!(["n", rng.pick(&[">", ">=", "<", "<="]), rng.below(60)]),
        1 => json!(["p", "in", [rng.pick(&PRIORITIES), rng.pick(&PRIORITIES)]]),
        2 => json!(["n", rng.pick(&[">", ">=", "<", "<="]), rng.below(60)]),
        3 => {
            let a = rng.below(60);
            json!(["n", "between", [a, a + rng.below(20)]])
        }
        4 => json!(["d", ">=", format!("2026-{:02}-01", 1 + rng.below(12))]),
        5 => json!(["b", "=", rng.below(2) == 0]),
        6 => json!(["t", "=", format!("w{}", rng.below(500))]),
        7 => json!(["n", "!=", rng.below(60)]),
        8 => json!(["t", "contains", format!("{}", rng.below(10))]),
        9 => json!(["id", "in", [format!("r{:04}", rng.below(900)), format!("r{:04}", rng.below(900))]]),
        _ => json!(["n", "=", rng.below(60)]),
    }
}

fn filter(rng: &mut Rng) -> serde_json::Value {
    let parts: Vec<serde_json::Value> = (0..1 + rng.below(4)).map(|_| condition(rng)).collect();
    match rng.below(4) {
        0 => {
            let mut or = vec![json!("or")];
            or.extend(parts);
            json!(or)
        }
        1 if parts.len() > 2 => json!([parts[0], ["or", parts[1], parts[2]]]),
        _ => json!(parts),
    }
}

fn query(rng: &mut Rng) -> serde_json::Value {
    let sorts = ["", "n", "-n", "d", "-d", "b", "-b", "p", "-p", "t", "-t", "n,-d", "-p,t"];
    let mut body = json!({"limit": 1 + rng.below(40), "offset": rng.below(3) * rng.below(15), "count": true});
    if rng.below(8) != 0 {
        body["where"] = filter(rng);
    }
    let sort = *rng.pick(&sorts);
    if !sort.is_empty() {
        body["orderBy"] = json!(sort.split(',').collect::<Vec<_>>());
    }
    body
}

/// The same query answered by checking every row: the filter ORed with a
/// condition no index answers (and no row meets) takes the planner out.
fn scanned(mut query: Query) -> Query {
    let never = Filter::Cond(Condition { field: "t".into(), op: Op::Contains, value: Operand::Value(Value::Text("\u{1}never".into())) });
    query.filter = Some(match query.filter.take() {
        Some(filter) => Filter::Or(vec![filter, never]),
        None => Filter::Not(Box::new(never)),
    });
    query
}

fn ids(output: &QueryOutput) -> Vec<String> {
    output.records.iter().map(|r| r["id"].as_str().unwrap_or_default().to_string()).collect()
}

#[test]
fn the_planner_answers_like_a_scan() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let definition = json!({"name": "task", "fields": {"p": {"type": "text"}, "n": {"type": "number"}, "d": {"type": "date"}, "b": {"type": "boolean"}, "t": {"type": "text"}, "o": {"type": "text"}}});
    let mut model = QueryModel::default();
    let defined = EventPayload::ObjectDefined(ObjectDefined { name: "task".into(), namespace: None, definition: definition.to_string() });
    model.apply(&envelope(1), &defined);
    let queries: Vec<serde_json::Value> = (0..300).map(|_| query(&mut rng)).collect();
    let mut log = vec![defined];
    let (mut compared, mut matched) = (0, 0);
    for round in 0..6 {
        for _ in 0..800 {
            let payload = event(&mut rng);
            model.apply(&envelope(log.len() as u64 + 1), &payload);
            log.push(payload);
        }
        // The same log folded in bulk: indexes built at once, kept ranges new.
        let mut bulk = QueryModel::default();
        bulk.begin_bulk();
        for (i, payload) in log.iter().enumerate() {
            bulk.apply_owned(&envelope(i as u64 + 1), payload.clone());
        }
        bulk.end_bulk();
        for body in &queries {
            let parsed = parse_query("task", body).unwrap_or_else(|e| panic!("{body}: {e}"));
            let expected = model.execute(&Viewer::system(), scanned(parsed.clone())).unwrap_or_else(|e| panic!("{body}: {e}"));
            for (label, m) in [("kept up per event", &model), ("bulk built", &bulk)] {
                // Twice: the second run may use a range the first one kept.
                for _ in 0..2 {
                    let got = m.execute(&Viewer::system(), parsed.clone()).unwrap_or_else(|e| panic!("{body}: {e}"));
                    assert_eq!((ids(&got), got.total, got.has_more), (ids(&expected), expected.total, expected.has_more), "round {round}, {label}: {body}");
                }
            }
            compared += 1;
            matched += usize::from(expected.total.unwrap_or(0) > 0);
        }
    }
    assert!(matched * 2 > compared, "most queries match something ({matched} of {compared})");
}

/// A row rule every row passes narrows nothing; once one row fails it, it narrows again.
#[test]
fn a_condition_every_row_meets_narrows_nothing_until_a_row_fails_it() {
    let mut model = QueryModel::default();
    let definition = json!({"name": "task", "fields": {"o": {"type": "text"}, "p": {"type": "text"}, "n": {"type": "number"}}});
    model.apply(&envelope(1), &EventPayload::ObjectDefined(ObjectDefined { name: "task".into(), namespace: None, definition: definition.to_string() }));
    let mut position = 1;
    let mut create = |model: &mut QueryModel, id: &str, o: &str, p: &str, n: i64| {
        let mut record = Record::new();
        record.insert("id", Value::Text(id.into()));
        record.insert("o", Value::Text(o.into()));
        record.insert("p", Value::Text(p.into()));
        record.insert("n", Value::Int(n));
        position += 1;
        model.apply(&envelope(position), &EventPayload::RecordCreated(RecordCreated { object: "task".into(), id: id.into(), record, automated: Vec::new() }));
    };
    for i in 0..10 {
        create(&mut model, &format!("r{i}"), "u1", if i % 2 == 0 { "high" } else { "low" }, i);
    }
    let run = |model: &QueryModel, body: serde_json::Value| {
        let got = model.execute(&Viewer::system(), parse_query("task", &body).expect("a query")).expect("an answer");
        (ids(&got), got.total)
    };
    let owned_high = json!({"where": [["o", "=", "u1"], ["p", "=", "high"]], "orderBy": ["-n"], "limit": 2, "count": true});
    assert_eq!(run(&model, owned_high.clone()), (vec!["r8".to_string(), "r6".to_string()], Some(5)));
    assert_eq!(run(&model, json!({"where": [["o", "=", "u1"]], "count": true, "limit": 1})).1, Some(10));
    assert_eq!(run(&model, json!({"where": ["or", ["o", "=", "u1"], ["p", "=", "none"]], "count": true, "limit": 1})).1, Some(10));
    create(&mut model, "r10", "u2", "high", 100);
    assert_eq!(run(&model, owned_high), (vec!["r8".to_string(), "r6".to_string()], Some(5)), "a row of another owner is not counted");
    assert_eq!(run(&model, json!({"where": [["o", "=", "u1"]], "count": true, "limit": 1})).1, Some(10));
    assert_eq!(run(&model, json!({"where": [["o", "=", "u2"]], "count": true})), (vec!["r10".to_string()], Some(1)));
}
