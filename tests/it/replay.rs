//! `objectstack replay`: the history of a record, an object, or a range of the log, as JSON lines.

use std::sync::Arc;

use commands::service::{Command, CommandMeta, CommandService};
use domain::metadata::MetadataCommand;
use gateway::replay::{replay, Bound, Selection};
use serde_json::{json, Value as Json};

use crate::common;

async fn lines(store: Arc<dyn commands::store::EventStore>, selection: Selection) -> Vec<Json> {
    let mut out = Vec::new();
    let count = replay(store, &selection, &mut out).await.unwrap();
    let text = String::from_utf8(out).unwrap();
    let lines: Vec<Json> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len() as u64, count);
    lines
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_selects_records_objects_and_ranges() {
    let dir = tempfile::tempdir().unwrap();
    let store = common::embedded(dir.path());
    let service = CommandService::start(store.clone()).await.unwrap();
    let definition = json!({"name": "note", "fields": {"title": {"type": "text"}}});
    service.execute(Command::Metadata(MetadataCommand::put_one(definition, None)), CommandMeta::system()).await.unwrap();
    for id in ["a", "b"] {
        let data = json!({"title": id}).as_object().unwrap().clone();
        service.execute(Command::Create { object: "note".into(), id: Some(id.into()), data }, CommandMeta::actor("ann")).await.unwrap();
    }
    let patch = json!({"title": "a2"}).as_object().unwrap().clone();
    service.execute(Command::Update { object: "note".into(), id: "a".into(), patch, expected_version: None }, CommandMeta::actor("bob")).await.unwrap();

    let all = |object: Option<&str>, record: Option<&str>, from: Option<Bound>, to: Option<Bound>| Selection {
        object: object.map(String::from),
        record: record.map(String::from),
        from,
        to,
    };
    let record = lines(store.clone(), all(Some("note"), Some("a"), None, None)).await;
    assert_eq!(record.iter().map(|l| l["type"].as_str().unwrap()).collect::<Vec<_>>(), ["record.created", "record.updated"]);
    assert_eq!(record[1]["payload"]["changes"][0], json!({"field": "title", "oldValue": "a", "newValue": "a2"}));
    assert_eq!(record[1]["actor"], json!("bob"));

    let object = lines(store.clone(), all(Some("note"), None, None, None)).await;
    assert_eq!(object.len(), 4, "the definition and three record events");
    assert_eq!(object[0]["type"], json!("object.defined"));

    let range = lines(store.clone(), all(None, None, Some(Bound::Position(2)), Some(Bound::Position(3)))).await;
    assert_eq!(range.iter().map(|l| l["position"].as_u64().unwrap()).collect::<Vec<_>>(), [2, 3]);
    let later = lines(store.clone(), all(None, None, Some(Bound::parse("2999-01-01T00:00:00Z").unwrap()), None)).await;
    assert!(later.is_empty());
    assert!(Bound::parse("soon").is_err());
}
