//! The two query read models agree: the in-process model and the PostgreSQL
//! tables, fed from one log, give the same answers to randomised queries
//! (filters of every operator, sorts, paging, aggregates). The PostgreSQL model
//! also keeps its checkpoint and metadata across a restart.

use std::sync::Arc;
use std::time::Duration;

use commands::service::{Command, CommandMeta, CommandService};
use commands::store::{open_postgres, EventStore};
use domain::metadata::{MetadataCommand, ObjectSpec};
use domain::query::parse_query;
use projections::runner::spawn;
use projections::{memory_projection, pg_model, QueryReader, Viewer};
use serde_json::{json, Value as Json};

use crate::common;

use crate::common::Rng;

const NAMES: [&str; 8] = ["alpha", "Beta", "gamma", "Delta", "epsilon", "zeta", "Eta", "theta"];
const STAGES: [&str; 4] = ["new", "open", "won", "lost"];
const TAGS: [&str; 3] = ["red", "green", "blue"];

fn random_filter(rng: &mut Rng) -> Json {
    let n = rng.below(100) as i64;
    match rng.below(16) {
        0 => json!({"stage": rng.pick(&STAGES)}),
        1 => json!({"amount": {"$gt": n}}),
        2 => json!({"amount": {"$lte": n, "$gte": n / 3}}),
        3 => json!(["name", "contains", &rng.pick(&NAMES)[1..3]]),
        4 => json!({"stage": {"$in": [rng.pick(&STAGES), rng.pick(&STAGES)]}}),
        5 => json!({"stage": {"$nin": [rng.pick(&STAGES)]}}),
        6 => json!({"active": rng.below(2) == 0}),
        7 => json!({"tags": rng.pick(&TAGS)}),
        8 => json!({"note": {"$null": rng.below(2) == 0}}),
        9 => json!([["stage", "=", rng.pick(&STAGES)], "or", ["amount", "<", n]]),
        10 => json!({"$not": {"stage": rng.pick(&STAGES)}}),
        11 => json!({"name": {"$startsWith": &rng.pick(&NAMES)[..1]}}),
        12 => json!({"account.region": rng.pick(&["north", "south"])}),
        13 => json!({"amount": {"$between": [n / 2, n]}}),
        14 => json!({"due": {"$gte": format!("2026-0{}-01", 1 + rng.below(9))}}),
        _ => json!({"amount": {"$ne": n}}),
    }
}

fn random_query(rng: &mut Rng) -> Json {
    let filters: Vec<Json> = (0..rng.below(3)).map(|_| random_filter(rng)).collect();
    let sort_field = *rng.pick(&["name", "amount", "stage", "due", "active", "note"]);
    let order = *rng.pick(&["asc", "desc"]);
    let mut query = json!({"orderBy": [{"field": sort_field, "order": order}], "limit": 1 + rng.below(40), "offset": rng.below(30)});
    if !filters.is_empty() {
        query["where"] = json!({"$and": filters});
    }
    if rng.below(4) == 0 {
        query.as_object_mut().unwrap().remove("orderBy");
    }
    if rng.below(4) == 0 {
        query = json!({"where": query.get("where").cloned().unwrap_or(json!({})), "groupBy": [*rng.pick(&["stage", "active"])],
            "aggregations": [{"function": "count", "alias": "n"}, {"function": "sum", "field": "amount", "alias": "total"},
                             {"function": "max", "field": "name", "alias": "last"}, {"function": "avg", "field": "amount", "alias": "mean"}]});
    }
    query
}

async fn seed(service: &CommandService, rng: &mut Rng) {
    let objects = vec![
        ObjectSpec::new(json!({"name": "account", "fields": {"region": {"type": "text"}}}), None),
        ObjectSpec {
            definition: json!({"name": "deal", "indexes": [{"fields": ["stage", "amount"]}], "fields": {
                "name": {"type": "text"}, "amount": {"type": "number"}, "stage": {"type": "select", "options": STAGES.iter().map(|s| json!({"label": s, "value": s})).collect::<Vec<_>>()},
                "active": {"type": "boolean"}, "tags": {"type": "tags"}, "note": {"type": "text"}, "due": {"type": "date"},
                "account": {"type": "lookup", "reference": "account"}}}),
            namespace: None,
            migration: None,
        },
    ];
    service.execute(Command::Metadata(MetadataCommand::PutObjects { objects }), CommandMeta::system()).await.unwrap();
    for (id, region) in [("a1", "north"), ("a2", "south")] {
        let data = json!({"region": region}).as_object().unwrap().clone();
        service.execute(Command::Create { object: "account".into(), id: Some(id.into()), data }, CommandMeta::system()).await.unwrap();
    }
    for i in 0..160u64 {
        let mut data = json!({
            "name": format!("{} {:03}", rng.pick(&NAMES), rng.below(1000)),
            "amount": rng.below(100),
            "stage": rng.pick(&STAGES),
            "active": rng.below(2) == 0,
            "tags": (0..rng.below(3)).map(|_| *rng.pick(&TAGS)).collect::<std::collections::BTreeSet<_>>(),
            "due": format!("2026-{:02}-{:02}", 1 + rng.below(12), 1 + rng.below(28)),
            "account": rng.pick(&["a1", "a2"]),
        });
        if rng.below(3) == 0 {
            data["note"] = json!(format!("note {i}"));
        }
        if i % 40 == 0 {
            // A few rows without an amount: sorts must place them (nulls) like PostgreSQL does.
            data.as_object_mut().unwrap().remove("amount");
        }
        let data = data.as_object().unwrap().clone();
        service.execute(Command::Create { object: "deal".into(), id: Some(format!("d{i:03}")), data }, CommandMeta::system()).await.unwrap();
    }
    // Updates and deletes too, so the models must follow changes.
    for i in (0..160).step_by(7) {
        let patch = json!({"stage": rng.pick(&STAGES), "note": null}).as_object().unwrap().clone();
        service.execute(Command::Update { object: "deal".into(), id: format!("d{i:03}"), patch, expected_version: None }, CommandMeta::system()).await.unwrap();
    }
    for i in (3..160).step_by(11) {
        service.execute(Command::Delete { object: "deal".into(), id: format!("d{i:03}"), expected_version: None }, CommandMeta::system()).await.unwrap();
    }
}

fn summary(output: &projections::QueryOutput) -> (Vec<Json>, Option<u64>, bool) {
    let rows = output.records.iter().map(|r| domain::value::record_to_json(r)).collect();
    (rows, output.total, output.has_more)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_and_postgres_read_models_agree() {
    let settings = common::pg_settings();
    let pg_store = open_postgres(&settings).await.expect("postgres (ops/test starts it)");
    let pool = pg_store.pool().clone();
    let store: Arc<dyn EventStore> = Arc::new(pg_store);
    let service = CommandService::start(store.clone()).await.unwrap();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    seed(&service, &mut rng).await;
    let head = *store.head().borrow();

    let (memory, memory_reader) = memory_projection();
    let memory_handle = spawn(store.clone(), memory).await.unwrap();
    let (pg, pg_reader) = pg_model::open(pool.clone()).await.unwrap();
    let pg_handle = spawn(store.clone(), pg).await.unwrap();
    assert!(memory_handle.wait_for(head, Duration::from_secs(30)).await);
    assert!(pg_handle.wait_for(head, Duration::from_secs(30)).await);

    let viewer = Viewer::system();
    for round in 0..400 {
        let body = random_query(&mut rng);
        let query = parse_query("deal", &body).unwrap();
        let from_memory = memory_reader.execute(&viewer, query.clone()).await.unwrap_or_else(|e| panic!("{body}: {e}"));
        let from_pg = pg_reader.execute(&viewer, query).await.unwrap_or_else(|e| panic!("{body}: {e}"));
        assert_eq!(summary(&from_memory), summary(&from_pg), "round {round}: {body}");
    }
    let expanded = parse_query("deal", &json!({"where": {"id": "d001"}, "expand": {"account": {"fields": ["region"]}}})).unwrap();
    let a = memory_reader.execute(&viewer, expanded.clone()).await.unwrap();
    let b = QueryReader::Postgres(pg_reader.clone()).execute(&viewer, expanded).await.unwrap();
    assert_eq!(summary(&a), summary(&b));
    assert!(a.records[0]["account"].to_json().get("region").is_some());

    // A restart keeps the checkpoint and the metadata; nothing is applied twice.
    drop(pg_handle);
    let (pg_again, reader_again) = pg_model::open(pool).await.unwrap();
    assert!(reader_again.catalog().get("deal").is_some(), "metadata survives a restart");
    let handle_again = spawn(store.clone(), pg_again).await.unwrap();
    assert_eq!(handle_again.checkpoint(), head, "the stored checkpoint is where it left off");
    let data = json!({"name": "after restart", "amount": 1}).as_object().unwrap().clone();
    let outcome = service.execute(Command::Create { object: "deal".into(), id: Some("late".into()), data }, CommandMeta::system()).await.unwrap();
    assert!(handle_again.wait_for(outcome.position, Duration::from_secs(10)).await);
    assert!(reader_again.get(&viewer, "deal", "late").await.unwrap().is_some());
}
