//! Event schema evolution end to end: a log holding `record.deleted` at
//! schema version 1 (before `cause` existed) is read through the upcaster by
//! the write model, the projections and replay; new events are written at v2.

use bincode::config::standard;
use commands::service::{Command, CommandMeta, CommandService};
use commands::store::{AppendRequest, ExpectedVersion, StreamAppend};
use domain::event::{EventEnvelope, RecordDeletedV1};
use domain::metadata::MetadataCommand;
use projections::{memory_projection, runner, Viewer};
use serde_json::json;

use crate::common;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_event_versions_are_read_through_the_upcaster() {
    let dir = tempfile::tempdir().unwrap();
    let store = common::embedded(dir.path());
    let service = CommandService::start(store.clone()).await.unwrap();
    let definition = json!({"name": "note", "fields": {"title": {"type": "text"}}});
    service.execute(Command::Metadata(MetadataCommand::put_one(definition, None)), CommandMeta::system()).await.unwrap();
    for id in ["n1", "n2"] {
        let data = json!({"title": id}).as_object().unwrap().clone();
        service.execute(Command::Create { object: "note".into(), id: Some(id.into()), data }, CommandMeta::system()).await.unwrap();
    }
    // An old server deleted n1: its event has the v1 shape.
    let previous = service.record_state("note", "n1").record.unwrap();
    let v1 = bincode::encode_to_vec(RecordDeletedV1 { object: "note".into(), id: "n1".into(), previous }, standard()).unwrap();
    let mut old = common::event("");
    old.event_type = "record.deleted".into();
    old.schema_version = 1;
    old.payload = v1;
    let request = AppendRequest {
        streams: vec![StreamAppend { stream: "note/n1".into(), expected: ExpectedVersion::Exact(1), events: vec![old] }],
        idempotency_key: None,
        unique: Default::default(),
    };
    store.append(request).await.unwrap();
    drop(service);

    // The write model, a projection and replay all read it.
    let service = CommandService::start(store.clone()).await.unwrap();
    assert!(!service.record_state("note", "n1").exists(), "the v1 delete applies");
    let (projection, reader) = memory_projection();
    let handle = runner::spawn(store.clone(), projection).await.unwrap();
    let head = *store.head().borrow();
    assert!(handle.wait_for(head, std::time::Duration::from_secs(10)).await);
    assert!(reader.get(&Viewer::system(), "note", "n1").await.unwrap().is_none());
    assert!(reader.get(&Viewer::system(), "note", "n2").await.unwrap().is_some());
    // The audit trail shows the v1 delete's old values (read from its stored bytes, upcast).
    let (audit, trail) = projections::audit_model::audit_projection();
    let audit_handle = runner::spawn(store.clone(), audit).await.unwrap();
    let head = *store.head().borrow();
    assert!(audit_handle.wait_for(head, std::time::Duration::from_secs(10)).await);
    let delete = {
        let trail = trail.read().unwrap();
        let query = projections::audit_model::AuditQuery { object: Some("note".into()), record_id: Some("n1".into()), limit: 10, ..Default::default() };
        let (entries, total) = trail.query(&query);
        assert_eq!(total, 2, "created and deleted");
        assert_eq!(entries[0].event_type, "data.delete");
        entries[0].clone()
    };
    let event = store.read_positions(&[delete.position]).await.unwrap();
    let shown = delete.to_json(event.first());
    assert!(shown["changes"].as_array().unwrap().contains(&json!({"field": "title", "oldValue": "n1", "newValue": null})), "{shown}");
    assert_eq!(shown["metadata"]["cause"], json!(null));
    assert_eq!(shown["metadata"]["version"], json!(2));
    let mut out = Vec::new();
    let selection = gateway::replay::Selection { object: Some("note".into()), record: Some("n1".into()), from: None, to: None };
    gateway::replay::replay(store.clone(), &selection, &mut out).await.unwrap();
    let last: serde_json::Value = serde_json::from_str(String::from_utf8(out).unwrap().lines().last().unwrap()).unwrap();
    assert_eq!((last["type"].clone(), last["schemaVersion"].clone(), last["payload"]["cause"].clone()), (json!("record.deleted"), json!(1), json!(null)));

    // New deletes are written at v2.
    let deleted = service.execute(Command::Delete { object: "note".into(), id: "n2".into(), expected_version: None }, CommandMeta::system()).await.unwrap();
    let written: &EventEnvelope = &deleted.events[0];
    assert_eq!((written.event_type.as_str(), written.schema_version), ("record.deleted", 2));
}
