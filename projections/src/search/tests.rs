//! The search model on disk: opened where it was committed, with the texts
//! its documents stored; damaged or foreign indexes folded afresh.

use std::sync::{Arc, RwLock};

use commands::store::EventStore;
use domain::event::{EventEnvelope, EventPayload, FieldChange, ObjectDefined, RecordCreated, RecordDeleted, RecordUpdated};
use domain::value::{Record, Value};
use serde_json::json;

use super::{SearchModel, SearchRequest};

fn defined() -> EventPayload {
    let definition = json!({"name": "note", "fields": {
        "title": {"type": "text", "searchable": true},
        "body": {"type": "text", "searchable": true},
        "pin": {"type": "password"},
    }});
    EventPayload::ObjectDefined(ObjectDefined { name: "note".into(), namespace: None, definition: definition.to_string() })
}

fn created(id: &str, title: &str) -> EventPayload {
    let mut record = Record::default();
    record.insert("title", Value::Text(title.into()));
    record.insert("pin", Value::Text("hunter2".into()));
    EventPayload::RecordCreated(RecordCreated { object: "note".into(), id: id.into(), record, automated: Vec::new() })
}

fn updated(id: &str, field: &str, text: &str) -> EventPayload {
    let change = FieldChange { field: field.into(), old: Value::Null, new: Value::Text(text.into()) };
    EventPayload::RecordUpdated(RecordUpdated { object: "note".into(), id: id.into(), changes: vec![change], automated: Vec::new() })
}

fn deleted(id: &str) -> EventPayload {
    EventPayload::RecordDeleted(RecordDeleted { object: "note".into(), id: id.into(), previous: Record::default(), cause: None })
}

/// An envelope at a position with an id of its own.
fn envelope(position: u64) -> EventEnvelope {
    let mut envelope = crate::test_support::envelope(position);
    envelope.event_id = *uuid::Uuid::new_v4().as_bytes();
    envelope
}

/// The ids a query finds, sorted.
fn found(model: &SearchModel, query: &str) -> Vec<String> {
    let request = SearchRequest { query: query.into(), limit: 50, ..Default::default() };
    let mut ids: Vec<String> = model.search(&request).unwrap().hits.into_iter().map(|h| h.id).collect();
    ids.sort();
    ids
}

fn apply_all(model: &mut SearchModel, from: u64, payloads: Vec<EventPayload>) -> u64 {
    let mut position = from;
    for payload in payloads {
        position += 1;
        model.apply(&envelope(position), &payload);
    }
    position
}

/// Every file of the one generation under `root`.
fn files_of(root: &std::path::Path) -> Vec<std::path::PathBuf> {
    let generations: Vec<_> = std::fs::read_dir(root).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(generations.len(), 1, "one generation: {generations:?}");
    std::fs::read_dir(&generations[0]).unwrap().map(|e| e.unwrap().path()).collect()
}

#[test]
fn an_index_on_disk_opens_where_it_was_committed() {
    let root = tempfile::tempdir().unwrap();
    let mut model = SearchModel::open(root.path()).unwrap();
    assert_eq!((model.checkpoint(), model.resumes_from()), (0, None));
    let last = apply_all(
        &mut model,
        0,
        vec![defined(), created("n1", "alpha beta"), created("n2", "beta gamma"), created("n3", "gamma"), updated("n1", "title", "delta"), deleted("n3")],
    );
    model.make_visible();
    let before = (found(&model, "beta"), found(&model, "gamma"), found(&model, "delta"), model.len());
    assert_eq!(before, (vec!["n2".to_string()], vec!["n2".to_string()], vec!["n1".to_string()], 2));
    let resumes = model.resumes_from();
    assert_eq!(resumes.as_ref().map(|r| r.0), Some(last));
    drop(model);

    let mut model = SearchModel::open(root.path()).unwrap();
    assert_eq!(model.checkpoint(), last);
    assert_eq!(model.resumes_from(), resumes);
    assert_eq!((found(&model, "beta"), found(&model, "gamma"), found(&model, "delta"), model.len()), before);
    // An update after the reopen keeps the record's other texts: they come from its stored document.
    apply_all(&mut model, last, vec![updated("n2", "body", "epsilon")]);
    model.make_visible();
    assert_eq!((found(&model, "gamma"), found(&model, "epsilon")), (vec!["n2".to_string()], vec!["n2".to_string()]));
    // A password's text is neither indexed nor stored.
    assert_eq!(found(&model, "hunter2"), Vec::<String>::new());
    drop(model);
    for file in files_of(root.path()) {
        let bytes = std::fs::read(&file).unwrap();
        assert!(!bytes.windows(7).any(|w| w == b"hunter2"), "{} holds a password's text", file.display());
    }
}

#[test]
fn a_damaged_or_foreign_index_is_folded_afresh() {
    // A segment file with a byte flipped fails its checksum.
    let root = tempfile::tempdir().unwrap();
    let mut model = SearchModel::open(root.path()).unwrap();
    apply_all(&mut model, 0, vec![defined(), created("n1", "alpha")]);
    model.make_visible();
    drop(model);
    let store = files_of(root.path()).into_iter().find(|f| f.extension().is_some_and(|e| e == "store")).expect("a doc store file");
    let mut bytes = std::fs::read(&store).unwrap();
    bytes[0] ^= 0xff;
    std::fs::write(&store, bytes).unwrap();
    let model = SearchModel::open(root.path()).unwrap();
    assert_eq!((model.checkpoint(), model.len(), model.resumes_from()), (0, 0, None));

    // A commit of another format is not trusted either.
    let root = tempfile::tempdir().unwrap();
    let mut model = SearchModel::open(root.path()).unwrap();
    apply_all(&mut model, 0, vec![defined(), created("n1", "alpha")]);
    model.make_visible();
    drop(model);
    let meta = files_of(root.path()).into_iter().find(|f| f.file_name().is_some_and(|n| n == "meta.json")).unwrap();
    let text = std::fs::read_to_string(&meta).unwrap();
    assert!(text.contains(r#"\"format\":1"#), "{text}");
    std::fs::write(&meta, text.replace(r#"\"format\":1"#, r#"\"format\":999"#)).unwrap();
    let model = SearchModel::open(root.path()).unwrap();
    assert_eq!((model.checkpoint(), model.len()), (0, 0));
}

#[test]
fn a_fresh_copy_is_a_new_generation_and_the_newest_whole_one_opens() {
    let root = tempfile::tempdir().unwrap();
    let mut live = SearchModel::open(root.path()).unwrap();
    let last = apply_all(&mut live, 0, vec![defined(), created("n1", "alpha")]);
    live.make_visible();
    let mut copy = live.fresh();
    assert_ne!(copy.dir(), live.dir());
    // The copy, not yet committed, is not whole: the live one opens.
    drop(copy);
    drop(live);
    let live = SearchModel::open(root.path()).unwrap();
    assert_eq!(live.checkpoint(), last);
    copy = live.fresh();
    apply_all(&mut copy, 0, vec![defined(), created("n1", "alpha"), created("n2", "zeta")]);
    copy.make_visible();
    let copy_dir = copy.dir();
    drop((copy, live));
    let opened = SearchModel::open(root.path()).unwrap();
    assert_eq!((opened.dir(), opened.len(), found(&opened, "zeta")), (copy_dir, 2, vec!["n2".to_string()]));
    files_of(root.path());
}

async fn append(store: &Arc<dyn EventStore>, payload: EventPayload) {
    crate::test_support::append(store, "s", &payload, 0).await;
}

/// The start load goes on from an index's position when the log holds its
/// last event there, and folds afresh from another log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_goes_on_from_the_index_only_over_its_own_log() {
    let logs = tempfile::tempdir().unwrap();
    let store: Arc<dyn EventStore> = Arc::new(commands::store::open_embedded(&logs.path().join("a")).unwrap());
    append(&store, defined()).await;
    append(&store, created("n1", "alpha")).await;
    let root = tempfile::tempdir().unwrap();
    let model = Arc::new(RwLock::new(SearchModel::open(root.path()).unwrap()));
    crate::rebuild::load(store.clone(), model.clone()).await.unwrap();
    let first = model.read().unwrap().dir();
    drop(model);

    // Same log, one event more: the index goes on from its position, in its own generation.
    append(&store, created("n2", "beta")).await;
    let model = Arc::new(RwLock::new(SearchModel::open(root.path()).unwrap()));
    assert_eq!(model.read().unwrap().checkpoint(), 2);
    crate::rebuild::load(store.clone(), model.clone()).await.unwrap();
    {
        let mut guard = model.write().unwrap();
        guard.make_visible();
        assert_eq!((guard.dir(), guard.checkpoint(), found(&guard, "alpha"), found(&guard, "beta")), (first.clone(), 3, vec!["n1".into()], vec!["n2".into()]));
    }
    drop(model);

    // Another log at the same positions (other event ids): folded afresh.
    let other: Arc<dyn EventStore> = Arc::new(commands::store::open_embedded(&logs.path().join("b")).unwrap());
    append(&other, defined()).await;
    append(&other, created("n7", "gamma")).await;
    append(&other, created("n8", "gamma")).await;
    let model = Arc::new(RwLock::new(SearchModel::open(root.path()).unwrap()));
    assert_eq!(model.read().unwrap().checkpoint(), 3);
    crate::rebuild::load(other, model.clone()).await.unwrap();
    let mut guard = model.write().unwrap();
    guard.make_visible();
    assert_ne!(guard.dir(), first);
    assert_eq!((guard.len(), found(&guard, "alpha"), found(&guard, "gamma")), (2, Vec::<String>::new(), vec!["n7".to_string(), "n8".to_string()]));
}
