//! The write model holds each live record in the in-process read model's
//! allocation once their contents are equal (records in memory once), takes
//! records written after sharing started too, and never takes a record whose
//! content differs from its own.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use commands::service::sharing::RecordSource;
use commands::service::{Command, CommandMeta, CommandService, SaveWhile};
use commands::store::{open_embedded, EventStore};
use domain::metadata::{MetadataCommand, ObjectSpec};
use domain::value::{Record, Value};
use projections::query_model::{QueryModel, RecordsOf, RowsAt};
use projections::runner::spawn;
use serde_json::json;

/// An embedded store (in a directory removed when dropped) and a command service with a `note` object.
async fn notes() -> (tempfile::TempDir, Arc<dyn EventStore>, CommandService) {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn EventStore> = Arc::new(open_embedded(dir.path()).unwrap());
    let service = CommandService::start(store.clone()).await.unwrap();
    let objects = vec![ObjectSpec::new(json!({"name": "note", "fields": {"title": {"type": "text"}, "n": {"type": "number"}}}), None)];
    service.execute(Command::Metadata(MetadataCommand::PutObjects { objects }), CommandMeta::system()).await.unwrap();
    (dir, store, service)
}

async fn create(service: &CommandService, id: &str, n: i64) {
    let data = json!({"title": format!("note {id}"), "n": n}).as_object().unwrap().clone();
    service.execute(Command::Create { object: "note".into(), id: Some(id.into()), data }, CommandMeta::system()).await.unwrap();
}

/// Whether, within 10 s, the write model holds the read model's allocation of every record in `ids`.
async fn all_shared(service: &CommandService, model: &Arc<RwLock<QueryModel>>, ids: &[String]) -> bool {
    for _ in 0..200 {
        let shared = ids.iter().all(|id| {
            let row = model.read().unwrap().row("note", id);
            row.is_some_and(|row| service.holds_record_allocation("note", id, &row))
        });
        if shared {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_write_model_shares_records_with_the_read_model() {
    let (_dir, store, service) = notes().await;
    let first: Vec<String> = (0..20).map(|n| format!("n{n:02}")).collect();
    for (n, id) in first.iter().enumerate() {
        create(&service, id, n as i64).await;
    }
    let (memory, reader) = projections::memory_projection();
    let model = reader.memory_model().unwrap();
    let handle = spawn(store.clone(), memory).await.unwrap();
    let head = *store.head().borrow();
    assert!(handle.wait_for(head, Duration::from_secs(30)).await);
    assert!(!service.holds_record_allocation("note", "n00", &model.read().unwrap().row("note", "n00").unwrap()), "two decodes, two copies");

    let sharing = service.share_records_with(Arc::new(RecordsOf(model.clone())));
    assert!(all_shared(&service, &model, &first).await, "the records there were at start are shared");

    // Records written after: created, and updated (each model copies a shared record it changes).
    let later: Vec<String> = (20..30).map(|n| format!("n{n:02}")).collect();
    for (n, id) in later.iter().enumerate() {
        create(&service, id, n as i64).await;
    }
    for id in &first[..5] {
        let patch = json!({"n": 100}).as_object().unwrap().clone();
        service.execute(Command::Update { object: "note".into(), id: id.clone(), patch, expected_version: None }, CommandMeta::system()).await.unwrap();
    }
    let head = *store.head().borrow();
    assert!(handle.wait_for(head, Duration::from_secs(30)).await);
    let written: Vec<String> = later.iter().chain(&first[..5]).cloned().collect();
    assert!(all_shared(&service, &model, &written).await, "records written after sharing started are shared");
    for id in &first[..5] {
        let state = service.record_state("note", id).record.unwrap();
        assert_eq!(state.get("n"), Some(&Value::Int(100)), "{id} in the write model");
        assert_eq!(model.read().unwrap().row("note", id).unwrap().get("n"), Some(&Value::Int(100)), "{id} in the read model");
    }
    sharing.abort();
}

/// A source holding one record as the write model does and another differently.
struct Skewed {
    equal: Arc<Record>,
    different: Arc<Record>,
}

impl RecordSource for Skewed {
    fn position(&self) -> u64 {
        u64::MAX
    }

    fn records(&self, keys: &[(&str, &str)]) -> Vec<Option<Arc<Record>>> {
        keys.iter().map(|(_, id)| Some(if *id == "same" { self.equal.clone() } else { self.different.clone() })).collect()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_that_differs_is_never_shared() {
    let (_dir, _store, service) = notes().await;
    create(&service, "same", 1).await;
    create(&service, "other", 1).await;
    let equal = Arc::new(service.record_state("note", "same").record.unwrap());
    let mut different = service.record_state("note", "other").record.unwrap();
    different.insert("n", Value::Int(2));
    let different = Arc::new(different);
    let sharing = service.share_records_with(Arc::new(Skewed { equal: equal.clone(), different: different.clone() }));
    let mut shared = false;
    for _ in 0..200 {
        if service.holds_record_allocation("note", "same", &equal) {
            shared = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(shared, "the equal record is shared");
    // Offered in the same pass as the equal one: it was looked at and refused.
    assert!(!service.holds_record_allocation("note", "other", &different), "a record with other content is never taken");
    assert_eq!(service.record_state("note", "other").record.unwrap().get("n"), Some(&Value::Int(1)));
    sharing.abort();
}

/// The read model's records, but another content for one id (as a model
/// that keeps a record differently would hold it).
struct Altered {
    inner: RecordsOf,
    id: &'static str,
    record: Arc<Record>,
}

impl RecordSource for Altered {
    fn position(&self) -> u64 {
        self.inner.position()
    }

    fn records(&self, keys: &[(&str, &str)]) -> Vec<Option<Arc<Record>>> {
        let mut found = self.inner.records(keys);
        for ((_, id), record) in keys.iter().zip(found.iter_mut()) {
            if *id == self.id {
                *record = Some(self.record.clone());
            }
        }
        found
    }
}

/// A source of records at start that a start is given at once.
fn given(source: Arc<dyn RecordSource>) -> commands::service::StartSource {
    let (sender, receiver) = tokio::sync::oneshot::channel();
    assert!(sender.send(source).is_ok());
    receiver
}

/// A query model folded from the whole log.
async fn loaded_query_model(store: &Arc<dyn EventStore>) -> Arc<RwLock<QueryModel>> {
    let (_, reader) = projections::memory_projection();
    let model = reader.memory_model().unwrap();
    projections::rebuild::load(store.clone(), model.clone()).await.unwrap();
    model
}

/// A log and a snapshot directory in `dir`, and a command service on them
/// with the `note` object defined, started with a source (none sent: no
/// snapshot to take records for), so its snapshots save digests.
async fn saving_digests(dir: &std::path::Path) -> (Arc<dyn EventStore>, commands::snapshot::SnapshotDir, CommandService) {
    let store: Arc<dyn EventStore> = Arc::new(open_embedded(&dir.join("log")).unwrap());
    let snapshots = commands::snapshot::SnapshotDir::new(dir.join("snapshots"));
    let (unsent, receiver) = tokio::sync::oneshot::channel::<Arc<dyn RecordSource>>();
    let service = CommandService::start_from(store.clone(), Some(&snapshots), Some(receiver)).await.unwrap();
    drop(unsent);
    let objects = vec![ObjectSpec::new(json!({"name": "note", "fields": {"title": {"type": "text"}, "n": {"type": "number"}}}), None)];
    service.execute(Command::Metadata(MetadataCommand::PutObjects { objects }), CommandMeta::system()).await.unwrap();
    (store, snapshots, service)
}

/// A write model's snapshot saves the records it shares with the read model
/// as digests; a start takes the loaded read model's record wherever the
/// digest matches (one allocation, no decode), folds from its stream a
/// record whose digest matches nothing (changed since, or held differently),
/// and decides as a write model folded from the whole log. With no read
/// model to take records from, the snapshot is not used.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_takes_records_saved_as_digests_from_the_read_model() {
    let dir = tempfile::tempdir().unwrap();
    let (store, snapshots, service) = saving_digests(dir.path()).await;
    let ids: Vec<String> = (0..20).map(|n| format!("n{n:02}")).collect();
    for (n, id) in ids.iter().enumerate() {
        create(&service, id, n as i64).await;
    }
    let update = |id: &str, n: i64| Command::Update {
        object: "note".into(),
        id: id.into(),
        patch: json!({"n": n}).as_object().unwrap().clone(),
        expected_version: None,
    };
    service.execute(update("n00", 100), CommandMeta::system()).await.unwrap();
    let model = loaded_query_model(&store).await;
    let sharing = service.share_records_with(Arc::new(RecordsOf(model.clone())));
    assert!(all_shared(&service, &model, &ids).await);
    let saved_at = service.save_snapshot(&snapshots, SaveWhile::Serving).await.unwrap().expect("a position");
    // After the save: n05 changes, n20 is created.
    service.execute(update("n05", 500), CommandMeta::system()).await.unwrap();
    create(&service, "n20", 20).await;
    sharing.abort();
    drop(service);

    let folded = CommandService::start(store.clone()).await.unwrap();
    let model = loaded_query_model(&store).await;
    let mut altered = model.read().unwrap().row("note", "n06").unwrap().as_ref().clone();
    altered.insert("n", Value::Int(666));
    let source = Altered { inner: RecordsOf(model.clone()), id: "n06", record: Arc::new(altered) };
    let started = CommandService::start_from(store.clone(), Some(&snapshots), Some(given(Arc::new(source)))).await.unwrap();
    assert_eq!(started.started_from(), saved_at, "started from the snapshot");
    for id in ids.iter().chain([&"n20".to_string()]) {
        assert_eq!(started.record_state("note", id), folded.record_state("note", id), "{id} as the whole log folds it");
        let row = model.read().unwrap().row("note", id).unwrap();
        let taken = !["n05", "n06", "n20"].contains(&id.as_str());
        assert_eq!(started.holds_record_allocation("note", id, &row), taken, "{id}: the read model's record taken where the digest matches");
    }
    assert_eq!(started.record_state("note", "n05").record.unwrap().get("n"), Some(&Value::Int(500)));
    assert_eq!(started.record_state("note", "n06").record.unwrap().get("n"), Some(&Value::Int(6)), "a record held differently is not taken");
    // The records it folded get shared after the start: a stop saves it again (the log has not moved); once saved, not.
    assert!(!started.snapshot_shares_more(), "nothing shared since the start");
    let sharing = started.share_records_with(Arc::new(RecordsOf(model.clone())));
    assert!(all_shared(&started, &model, &ids).await);
    assert!(started.snapshot_shares_more(), "records the start held alone are shared now");
    assert_eq!(started.save_snapshot(&snapshots, SaveWhile::Serving).await.unwrap(), Some(saved_at + 2));
    assert!(!started.snapshot_shares_more(), "saved as they are now");
    sharing.abort();
    drop(started);

    // The same snapshot with no read model to take records from: the whole log is folded.
    let unsourced = CommandService::start_from(store.clone(), Some(&snapshots), None).await.unwrap();
    assert_eq!(unsourced.started_from(), 0, "a snapshot with digests is not used without a source");
    assert_eq!(unsourced.record_state("note", "n05"), folded.record_state("note", "n05"));
    let (dropped, receiver) = tokio::sync::oneshot::channel::<Arc<dyn RecordSource>>();
    drop(dropped);
    let unloaded = CommandService::start_from(store.clone(), Some(&snapshots), Some(receiver)).await.unwrap();
    assert_eq!(unloaded.started_from(), 0, "nor when the read model did not load");
    assert_eq!(unloaded.record_state("note", "n00"), folded.record_state("note", "n00"));
}

/// A start as the app makes one: the query model opened from its snapshot
/// hands the rows it decoded to the write model's start before it folds
/// the events after its snapshot ([`projections::rebuild::load_snapshotted_then`]),
/// so the write model takes records while the query model still loads. A
/// record changed after the snapshots is folded from its stream; every
/// other is one allocation with the loaded query model's row.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_takes_records_from_the_rows_the_query_models_snapshot_decoded() {
    let dir = tempfile::tempdir().unwrap();
    let (store, snapshots, service) = saving_digests(dir.path()).await;
    let ids: Vec<String> = (0..150).map(|n| format!("n{n:03}")).collect();
    for (n, id) in ids.iter().enumerate() {
        create(&service, id, n as i64).await;
    }
    let model = loaded_query_model(&store).await;
    let sharing = service.share_records_with(Arc::new(RecordsOf(model.clone())));
    assert!(all_shared(&service, &model, &ids).await);
    let saved_at = service.save_snapshot(&snapshots, SaveWhile::Serving).await.unwrap().expect("a position");
    assert_eq!(projections::snapshot::save(&snapshots, &store, &model).await.unwrap(), Some(saved_at));
    let patch = json!({"n": 500}).as_object().unwrap().clone();
    service.execute(Command::Update { object: "note".into(), id: "n005".into(), patch, expected_version: None }, CommandMeta::system()).await.unwrap();
    sharing.abort();
    drop(service);

    let folded = CommandService::start(store.clone()).await.unwrap();
    let (_, reader) = projections::memory_projection();
    let live = reader.memory_model().unwrap();
    let (sender, receiver) = tokio::sync::oneshot::channel::<Arc<dyn RecordSource>>();
    let loading =
        tokio::spawn(projections::rebuild::load_snapshotted_then(store.clone(), live.clone(), Some(snapshots.clone()), move |opened: &mut QueryModel| {
            let _ = sender.send(Arc::new(RowsAt::with_digests(opened.shared_snapshot(), opened.take_loaded_digests())));
        }));
    let started = CommandService::start_from(store.clone(), Some(&snapshots), Some(receiver)).await.unwrap();
    loading.await.unwrap().unwrap();
    assert_eq!(started.started_from(), saved_at, "started from the snapshot");
    assert_eq!(live.read().unwrap().checkpoint(), saved_at + 1, "the query model folded the update after its snapshot");
    for id in &ids {
        assert_eq!(started.record_state("note", id), folded.record_state("note", id), "{id} as the whole log folds it");
        let row = live.read().unwrap().row("note", id).unwrap();
        assert_eq!(started.holds_record_allocation("note", id, &row), id != "n005", "{id}: one allocation with the loaded query model's row");
    }
    assert_eq!(started.record_state("note", "n005").record.unwrap().get("n"), Some(&Value::Int(500)));
}
