//! A model loaded from its snapshot and the events after it answers as the
//! same model folded from the whole log; a snapshot that is damaged, of
//! another format, or of another log is passed by and the log folded.

use std::sync::{Arc, RwLock};

use commands::store::EventStore;
use domain::event::{EventPayload, FieldChange, ObjectDefined, RecordCreated, RecordDeleted, RecordUpdated};
use domain::query::parse_query;
use domain::value::{Record, Value};
use domain::Timestamp;
use serde_json::json;

use commands::snapshot::SnapshotDir;

use super::{save, Snapshot};
use crate::analytics::{parse_query as parse_cube_query, AnalyticsModel};
use crate::audit_model::{AuditModel, AuditQuery};
use crate::history::History;
use crate::rebuild::{load, load_snapshotted, MemoryModel};
use crate::test_support::{append, Rng};
use crate::{QueryModel, Viewer};

const REGIONS: [&str; 4] = ["north", "south", "east", "west"];

fn defined(name: &str, with_stage: bool) -> EventPayload {
    let mut fields = json!({"region": {"type": "text"}, "amount": {"type": "number"}, "won": {"type": "boolean"}, "closed_on": {"type": "datetime"}});
    if with_stage {
        fields["stage"] = json!({"type": "text"});
    }
    let definition = json!({"name": name, "fields": fields}).to_string();
    EventPayload::ObjectDefined(ObjectDefined { name: name.into(), namespace: None, definition })
}

/// `events` random record events over two objects (creates, updates, deletes).
async fn write(store: &Arc<dyn EventStore>, rng: &mut Rng, next_id: &mut u64, live: &mut Vec<(String, String)>, events: usize) {
    for _ in 0..events {
        let choice = rng.below(10);
        if choice < 5 || live.is_empty() {
            *next_id += 1;
            let object = if rng.below(4) == 0 { "note" } else { "deal" };
            let id = format!("r{:05}", next_id);
            let mut record = Record::default();
            record.insert("id", Value::Text(id.clone()));
            record.insert("region", Value::Text(rng.pick(&REGIONS).to_string()));
            record.insert("amount", Value::Int(rng.below(1000) as i64));
            record.insert("won", Value::Bool(rng.below(2) == 0));
            record.insert("closed_on", Value::Text(format!("2026-0{}-1{}T00:00:00Z", 1 + rng.below(9), rng.below(10))));
            let payload = EventPayload::RecordCreated(RecordCreated { object: object.into(), id: id.clone(), record, automated: Vec::new() });
            append(store, &format!("{object}/{id}"), &payload, *next_id as i64).await;
            live.push((object.into(), id));
        } else if choice < 8 {
            let (object, id) = rng.pick(live).clone();
            let changes = vec![
                FieldChange { field: "amount".into(), old: Value::Null, new: Value::Int(rng.below(1000) as i64) },
                FieldChange { field: "region".into(), old: Value::Null, new: Value::Text(rng.pick(&REGIONS).to_string()) },
            ];
            let payload = EventPayload::RecordUpdated(RecordUpdated { object: object.clone(), id: id.clone(), changes, automated: Vec::new() });
            append(store, &format!("{object}/{id}"), &payload, 0).await;
        } else {
            let (object, id) = live.swap_remove(rng.below(live.len() as u64) as usize);
            let payload = EventPayload::RecordDeleted(RecordDeleted { object: object.clone(), id: id.clone(), previous: Record::default(), cause: None });
            append(store, &format!("{object}/{id}"), &payload, 0).await;
        }
    }
}

/// A log of two objects and random record events, one definition altered half way.
async fn log(store: &Arc<dyn EventStore>, seed: u64) -> (Rng, u64, Vec<(String, String)>) {
    let (mut rng, mut next_id, mut live) = (Rng(seed), 0, Vec::new());
    append(store, "$object/deal", &defined("deal", false), 0).await;
    append(store, "$object/note", &defined("note", false), 0).await;
    write(store, &mut rng, &mut next_id, &mut live, 200).await;
    append(store, "$object/deal", &defined("deal", true), 0).await;
    write(store, &mut rng, &mut next_id, &mut live, 200).await;
    (rng, next_id, live)
}

/// What each model answers, to compare two copies.
fn answers(query: &QueryModel, audit: &AuditModel, analytics: &AnalyticsModel) -> serde_json::Value {
    let mut out = json!({"query": {}, "audit": [], "analytics": {}});
    for object in ["deal", "note"] {
        let mut lists = Vec::new();
        for body in [
            json!({"orderBy": [{"field": "id", "order": "asc"}], "limit": 1000}),
            json!({"filter": {"region": "north", "amount": {"$gt": 300}}, "orderBy": [{"field": "amount", "order": "desc"}], "limit": 10}),
            json!({"filter": {"won": true}, "count": true, "limit": 3, "offset": 2}),
        ] {
            let output = query.execute(&Viewer::system(), parse_query(object, &body).unwrap()).unwrap();
            let records: Vec<serde_json::Value> = output.records.iter().map(|r| domain::value::record_to_json(r)).collect();
            lists.push(json!({"records": records, "total": output.total, "hasMore": output.has_more}));
        }
        out["query"][object] = json!(lists);
    }
    let (entries, total) = audit.query(&AuditQuery { limit: 10_000, ..Default::default() });
    // What the model holds of each entry (what it shows beyond that is read from the log).
    out["audit"] = json!({"total": total, "entries": entries.iter().map(|e| format!("{e:?}")).collect::<Vec<_>>()});
    let cubes = analytics.cubes(&[]);
    for cube in &cubes {
        let body = json!({"cube": cube.name, "measures": ["count", "amount_sum"], "dimensions": ["region", "won"], "order": {"region": "asc"}});
        let result = analytics.run(cube, &parse_cube_query(&body).unwrap(), Timestamp::parse("2026-12-31T00:00:00Z").unwrap()).unwrap();
        out["analytics"][&cube.name] = json!(result.rows);
        // Per id: the rows found by id (updates and deletes after a load) and the id column itself.
        let by_id = json!({"cube": cube.name, "measures": ["amount_sum"], "dimensions": ["id", "region"], "order": {"id": "asc"}, "limit": 10_000});
        let result = analytics.run(cube, &parse_cube_query(&by_id).unwrap(), Timestamp::parse("2026-12-31T00:00:00Z").unwrap()).unwrap();
        out["analytics_by_id"][&cube.name] = json!(result.rows);
    }
    out["positions"] = json!([query.checkpoint(), audit.checkpoint(), analytics.checkpoint()]);
    out
}

type Models = (Arc<RwLock<QueryModel>>, Arc<RwLock<AuditModel>>, Arc<RwLock<AnalyticsModel>>);

fn empty_models() -> Models {
    let mut query = QueryModel::default();
    query.set_history(Arc::new(History::default()));
    (Arc::new(RwLock::new(query)), Default::default(), Default::default())
}

async fn load_all(store: &Arc<dyn EventStore>, dir: Option<&SnapshotDir>) -> Models {
    let models = empty_models();
    load_snapshotted(store.clone(), models.0.clone(), dir.cloned()).await.unwrap();
    load_snapshotted(store.clone(), models.1.clone(), dir.cloned()).await.unwrap();
    load_snapshotted(store.clone(), models.2.clone(), dir.cloned()).await.unwrap();
    models
}

async fn save_all(store: &Arc<dyn EventStore>, dir: &SnapshotDir, models: &Models) {
    save(dir, store, &models.0).await.unwrap();
    save(dir, store, &models.1).await.unwrap();
    save(dir, store, &models.2).await.unwrap();
}

fn answers_of(models: &Models) -> serde_json::Value {
    answers(&models.0.read().unwrap(), &models.1.read().unwrap(), &models.2.read().unwrap())
}

/// Folded from the whole log, with no snapshot.
async fn folded(store: &Arc<dyn EventStore>) -> serde_json::Value {
    let models = empty_models();
    load(store.clone(), models.0.clone()).await.unwrap();
    load(store.clone(), models.1.clone()).await.unwrap();
    load(store.clone(), models.2.clone()).await.unwrap();
    answers_of(&models)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn models_load_from_their_snapshots_and_the_events_after_them() {
    for seed in [7, 1234, 99_991] {
        let logs = tempfile::tempdir().unwrap();
        let store: Arc<dyn EventStore> = Arc::new(commands::store::open_embedded(logs.path()).unwrap());
        let (mut rng, mut next_id, mut live) = log(&store, seed).await;
        let dir = SnapshotDir::new(logs.path().join("snapshots"));
        let first = load_all(&store, Some(&dir)).await;
        save_all(&store, &dir, &first).await;
        let saved_at = *store.head().borrow();
        assert_eq!(super::saved_at::<QueryModel>(&dir), Some(saved_at));

        // Loaded from the snapshots alone, then from them and what came after.
        let reopened = load_all(&store, Some(&dir)).await;
        assert_eq!(answers_of(&reopened), answers_of(&first), "seed {seed}: reopened at the snapshot");
        write(&store, &mut rng, &mut next_id, &mut live, 150).await;
        let caught_up = load_all(&store, Some(&dir)).await;
        assert_eq!(answers_of(&caught_up), folded(&store).await, "seed {seed}: snapshot and the events after it");
        assert!(caught_up.0.read().unwrap().checkpoint() > saved_at);
        let live_deals = live.iter().filter(|(object, _)| object == "deal").count();
        assert_eq!(answers_of(&caught_up)["analytics_by_id"]["deal"].as_array().map(Vec::len), Some(live_deals), "seed {seed}: a row per live id");
    }
}

/// A model whose snapshot the checks refuse is folded from the whole log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_foreign_or_other_format_snapshot_is_folded_from_the_log() {
    let logs = tempfile::tempdir().unwrap();
    let store: Arc<dyn EventStore> = Arc::new(commands::store::open_embedded(&logs.path().join("a")).unwrap());
    log(&store, 5).await;
    let dir = SnapshotDir::new(logs.path().join("snapshots"));
    save_all(&store, &dir, &load_all(&store, None).await).await;
    let expected = folded(&store).await;

    // A flipped byte in each body: still the same answers, from the log.
    for path in [dir.path_of(QueryModel::NAME), dir.path_of(AuditModel::NAME), dir.path_of(AnalyticsModel::NAME)] {
        let mut bytes = std::fs::read(&path).unwrap();
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0x40;
        std::fs::write(&path, bytes).unwrap();
    }
    assert_eq!(answers_of(&load_all(&store, Some(&dir)).await), expected);

    // A snapshot of another log whose positions match but whose events differ.
    let other: Arc<dyn EventStore> = Arc::new(commands::store::open_embedded(&logs.path().join("b")).unwrap());
    log(&other, 6).await;
    let other_models = load_all(&other, None).await;
    save_all(&other, &dir, &other_models).await;
    assert_eq!(*other.head().borrow(), *store.head().borrow(), "the two logs are as long");
    assert_eq!(answers_of(&load_all(&store, Some(&dir)).await), expected);
    assert_ne!(answers_of(&other_models), expected, "the other log holds other records");
    for path in [dir.path_of(QueryModel::NAME), dir.path_of(AuditModel::NAME), dir.path_of(AnalyticsModel::NAME)] {
        assert!(!path.exists(), "a snapshot the log does not match is removed: {}", path.display());
    }

    // A snapshot of another format.
    save_all(&store, &dir, &load_all(&store, None).await).await;
    for path in [dir.path_of(QueryModel::NAME), dir.path_of(AuditModel::NAME), dir.path_of(AnalyticsModel::NAME)] {
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[8] = bytes[8].wrapping_add(1);
        std::fs::write(&path, bytes).unwrap();
    }
    assert_eq!(answers_of(&load_all(&store, Some(&dir)).await), expected);
}

/// A log written from `seed` in a directory of its own (kept while the
/// first is held), and a snapshot directory beside it.
async fn logged(seed: u64) -> (tempfile::TempDir, Arc<dyn EventStore>, SnapshotDir) {
    let logs = tempfile::tempdir().unwrap();
    let store: Arc<dyn EventStore> = Arc::new(commands::store::open_embedded(logs.path()).unwrap());
    log(&store, seed).await;
    let dir = SnapshotDir::new(logs.path().join("snapshots"));
    (logs, store, dir)
}

/// A start takes each model's rows from its snapshot: a record that only
/// the saved copies hold (never in the log) is in every reopened model.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_takes_its_rows_from_the_snapshot() {
    let (_logs, store, dir) = logged(11).await;
    let models = load_all(&store, None).await;
    let head = *store.head().borrow();
    let mut record = Record::default();
    record.insert("id", Value::Text("only-in-the-snapshot".into()));
    let payload = EventPayload::RecordCreated(RecordCreated { object: "note".into(), id: "only-in-the-snapshot".into(), record, automated: Vec::new() });
    let mut envelope = crate::test_support::envelope(head);
    envelope.event_type = "record.created".into();
    models.0.write().unwrap().apply_ref(&envelope, &payload);
    models.1.write().unwrap().apply_ref(&envelope, &payload);
    models.2.write().unwrap().apply_ref(&envelope, &payload);
    save_all(&store, &dir, &models).await;
    let reopened = load_all(&store, Some(&dir)).await;
    assert_eq!(answers_of(&reopened), answers_of(&models));
    assert_ne!(answers_of(&reopened), folded(&store).await);
    assert!(reopened.0.read().unwrap().get(&Viewer::system(), "note", "only-in-the-snapshot").unwrap().is_some());
    assert_eq!(reopened.1.read().unwrap().summary(), vec![("entries".to_string(), models.1.read().unwrap().len())]);
    assert_eq!(reopened.2.read().unwrap().summary(), models.2.read().unwrap().summary());
    let fresh = empty_models();
    load(store.clone(), fresh.2.clone()).await.unwrap();
    let folded_summary = fresh.2.read().unwrap().summary();
    assert_ne!(reopened.2.read().unwrap().summary(), folded_summary);
}

/// A save names the position the model was at while it was encoded: one at
/// a position the log does not hold is refused, and leaves the file saved
/// before as it was. On a runtime of one thread too, whose thread the
/// event's lookup (from the saving thread) needs.
#[tokio::test]
async fn a_save_at_a_position_the_log_does_not_hold_leaves_the_last_file() {
    let (_logs, store, dir) = logged(5).await;
    let models = load_all(&store, None).await;
    save_all(&store, &dir, &models).await;
    let head = *store.head().borrow();
    assert_eq!(super::saved_at::<AuditModel>(&dir), Some(head));

    let refused = dir
        .save(&store, AuditModel::NAME, AuditModel::FORMAT, move |out| {
            out.put(&"a body");
            (head + 5, ())
        })
        .await;
    assert!(matches!(refused, Err(commands::snapshot::SaveError::NoEvent(p)) if p == head + 5), "{refused:?}");
    assert_eq!(super::saved_at::<AuditModel>(&dir), Some(head));
    assert!(!dir.path_of(AuditModel::NAME).with_extension("partial").exists());
    assert_eq!(answers_of(&load_all(&store, Some(&dir)).await), answers_of(&models));
}
