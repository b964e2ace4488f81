//! The write model holds each live record in the in-process read model's
//! allocation once their contents are equal (records in memory once), takes
//! records written after sharing started too, and never takes a record whose
//! content differs from its own.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use commands::service::sharing::RecordSource;
use commands::service::{Command, CommandMeta, CommandService};
use commands::store::{open_embedded, EventStore};
use domain::metadata::{MetadataCommand, ObjectSpec};
use domain::value::{Record, Value};
use projections::query_model::{QueryModel, RecordsOf};
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
    assert!(handle.wait_for(*store.head().borrow(), Duration::from_secs(30)).await);
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
    assert!(handle.wait_for(*store.head().borrow(), Duration::from_secs(30)).await);
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

    fn records(&self, keys: &[(String, String)]) -> Vec<Option<Arc<Record>>> {
        keys.iter().map(|(_, id)| Some(if id == "same" { self.equal.clone() } else { self.different.clone() })).collect()
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
