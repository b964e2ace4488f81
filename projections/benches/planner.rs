//! Compound list queries on the in-process query model (the planner): the
//! shapes users send (equality plus range, with and without a sort on the
//! range field, two equalities sorted on a third field, `in` plus a range, an
//! OR), each a page of 50 with its true total, at 10k, 100k and 1M rows of a
//! task object (`BENCH_SIZES`, comma-separated). Prints the median and p99
//! microseconds per query and queries/s on one core, and checks every answer
//! against a plain scan of the rows. Run with `ops/bench planner`.

mod support;

use std::time::Instant;

use domain::event::{EventPayload, ObjectDefined, RecordCreated};
use domain::query::{parse_url_params, Condition, Filter, Op, Operand};
use domain::value::{Record, Value};
use projections::{QueryModel, Viewer};

use support::{envelope, Rng};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The scenarios: a name and the URL parameters of `GET /api/v1/data/task`.
/// `{n}` in a filter takes another value in every query, so no query repeats
/// a range an index has kept built (the cost of a range seen for the first time).
const SCENARIOS: [(&str, &str, &str); 11] = [
    ("all", "", ""),
    ("eq", r#"[["priority","=","high"]]"#, ""),
    ("eq, sort", r#"[["priority","=","high"]]"#, "-estimate"),
    ("eq+range", r#"[["priority","=","high"],["estimate",">",50]]"#, ""),
    ("eq+range, sort range", r#"[["priority","=","high"],["estimate",">",50]]"#, "-estimate"),
    ("eq+eq, sort third", r#"[["priority","=","high"],["status","=","open"]]"#, "due_date"),
    ("in+between, sort", r#"[["priority","in",["high","low"]],["estimate","between",[20,40]]]"#, "-estimate"),
    ("eq+date range, sort date", r#"[["status","=","open"],["due_date",">=","2026-10-01"]]"#, "-due_date"),
    ("or, sort", r#"["or",["priority","=","high"],["status","=","blocked"]]"#, "-estimate"),
    ("eq+new range", r#"[["priority","=","high"],["estimate",">",{n}]]"#, ""),
    ("eq+new range, sort range", r#"[["priority","=","high"],["estimate",">",{n}]]"#, "-estimate"),
];

fn model(rows: u64) -> QueryModel {
    let definition = serde_json::json!({"name": "task", "fields": {
        "title": {"type": "text"},
        "priority": {"type": "select", "options": (["high", "medium", "low"].map(|v| serde_json::json!({"label": v, "value": v})))},
        "status": {"type": "select", "options": (["open", "in_progress", "done", "blocked"].map(|v| serde_json::json!({"label": v, "value": v})))},
        "estimate": {"type": "number"}, "due_date": {"type": "date"}, "assignee": {"type": "text"}, "done": {"type": "boolean"}}});
    let defined = EventPayload::ObjectDefined(ObjectDefined { name: "task".into(), namespace: None, definition: definition.to_string() });
    let mut model = QueryModel::default();
    model.apply(&envelope(1, &defined), &defined);
    model.begin_bulk();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for n in 0..rows {
        let id = format!("t{n:08}");
        let mut record = Record::new();
        record.insert("id", Value::Text(id.clone()));
        record.insert("title", Value::Text(format!("task {n}")));
        record.insert("priority", Value::Text(["high", "medium", "low"][rng.below(3) as usize].into()));
        record.insert("status", Value::Text(["open", "in_progress", "done", "blocked"][rng.below(4) as usize].into()));
        record.insert("estimate", Value::Int(rng.below(101) as i64));
        record.insert("due_date", Value::Text(format!("2026-{:02}-{:02}", 1 + rng.below(12), 1 + rng.below(28))));
        record.insert("assignee", Value::Text(format!("user {}", rng.below(200))));
        record.insert("done", Value::Bool(rng.below(2) == 0));
        let created = EventPayload::RecordCreated(RecordCreated { object: "task".into(), id, record, automated: Vec::new() });
        model.apply_owned(&envelope(n + 2, &created), created);
    }
    model.end_bulk();
    model
}

fn percentile(samples: &mut [f64], p: f64) -> f64 {
    samples.sort_by(|a, b| a.total_cmp(b));
    samples[((samples.len() as f64 - 1.0) * p).round() as usize]
}

fn main() {
    let sizes: Vec<u64> =
        std::env::var("BENCH_SIZES").unwrap_or_else(|_| "10000,100000,1000000".into()).split(',').filter_map(|s| s.trim().parse().ok()).collect();
    let viewer = Viewer::system();
    println!("{:<26} {:>9} {:>9} {:>10} {:>10} {:>10}", "scenario", "rows", "matches", "p50 µs", "p99 µs", "q/s");
    for rows in sizes {
        let model = model(rows);
        let object = model.catalog().get("task").expect("task").clone();
        for (name, filter, sort) in SCENARIOS {
            let fresh = std::cell::Cell::new(0u64);
            let query = || {
                let mut params = vec![("top".to_string(), "50".to_string())];
                if !filter.is_empty() {
                    // Bounds 10.000..=59.999, never the same twice within 50,000 queries.
                    let n = fresh.get();
                    fresh.set(n + 1);
                    params.push(("filter".into(), filter.replace("{n}", &format!("{}", 10.0 + (n % 50_000) as f64 / 1000.0))));
                }
                if !sort.is_empty() {
                    params.push(("sort".into(), sort.into()));
                }
                let mut query = parse_url_params(&object, &params).expect("query");
                query.count = true;
                query
            };
            let first = model.execute(&viewer, query()).expect("runs");
            // The answer a plain scan gives: the filter ORed with a condition no
            // index answers (and no row meets), so every row is checked.
            fresh.set(fresh.get().saturating_sub(1));
            let mut scan = query();
            let never = Filter::Cond(Condition { field: "title".into(), op: Op::Contains, value: Operand::Value(Value::Text("\u{1}never".into())) });
            scan.filter = Some(match scan.filter.take() {
                Some(filter) => Filter::Or(vec![filter, never]),
                None => Filter::Not(Box::new(never)),
            });
            let scanned = model.execute(&viewer, scan).expect("scan runs");
            assert_eq!(first, scanned, "{name}: the planner and a scan differ");
            let budget = Instant::now();
            let mut samples = Vec::new();
            while samples.len() < 20 || (budget.elapsed().as_secs_f64() < 2.0 && samples.len() < 20_000) {
                let q = query();
                let t = Instant::now();
                let out = model.execute(&viewer, q).expect("runs");
                samples.push(t.elapsed().as_secs_f64() * 1e6);
                std::hint::black_box(out);
            }
            let p50 = percentile(&mut samples, 0.5);
            let p99 = percentile(&mut samples, 0.99);
            println!("{name:<26} {rows:>9} {:>9} {p50:>10.1} {p99:>10.1} {:>10.0}", first.total.unwrap_or(0), 1e6 / p50);
        }
    }
}
