//! Command handling end to end, on both stores: apps and seed data, CRUD with
//! optimistic concurrency, idempotency across a restart, uniqueness under
//! concurrency, and delete behaviours.

use std::path::PathBuf;
use std::sync::Arc;

use commands::seed::{load_app, SYSTEM_USER};
use commands::service::{Command, CommandMeta, CommandService, SaveWhile};
use commands::store::{EventStore, PostgresSettings};
use commands::CommandError;
use domain::metadata::examples::{CRM_APP, TODO_APP};
use domain::metadata::{load_app as parse_app, MetadataCommand};
use domain::value::Value;
use domain::{ErrorCode, Timestamp};
use serde_json::{json, Map, Value as Json};

use crate::common;

/// Where a test's events live; `open` can be called again to simulate a restart.
enum Backend {
    Embedded(tempfile::TempDir),
    Postgres(PostgresSettings),
}

impl Backend {
    async fn open(&self) -> Arc<dyn EventStore> {
        match self {
            Backend::Embedded(dir) => {
                let path: PathBuf = dir.path().to_path_buf();
                // The previous store's lock is released once it is dropped.
                for _ in 0..50 {
                    if let Ok(store) = commands::store::open_embedded(&path) {
                        return Arc::new(store);
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                }
                panic!("could not reopen {}", path.display());
            }
            Backend::Postgres(settings) => common::postgres(settings).await,
        }
    }

    async fn service(&self) -> CommandService {
        CommandService::start(self.open().await).await.unwrap()
    }
}

macro_rules! on_both_stores {
    ($scenario:ident) => {
        mod $scenario {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn embedded() {
                super::$scenario(super::Backend::Embedded(tempfile::tempdir().unwrap())).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$scenario(super::Backend::Postgres(crate::common::pg_settings())).await;
            }
        }
    };
}

fn data(json: Json) -> Map<String, Json> {
    json.as_object().unwrap().clone()
}

fn now() -> Timestamp {
    Timestamp::parse("2026-11-24T10:00:00Z").unwrap()
}

fn app(text: &str) -> domain::metadata::AppDef {
    parse_app(&serde_json::from_str(text).unwrap()).unwrap()
}

async fn define(service: &CommandService, definitions: Vec<Json>) {
    let objects = definitions.into_iter().map(|definition| domain::metadata::ObjectSpec::new(definition, None)).collect();
    service.execute(Command::Metadata(MetadataCommand::PutObjects { objects }), CommandMeta::system()).await.unwrap();
}

fn code(result: Result<commands::service::Outcome, CommandError>) -> ErrorCode {
    result.expect_err("expected an error").code()
}

async fn example_apps_load_and_seed_once(backend: Backend) {
    {
        let service = backend.service().await;
        let report = load_app(&service, &app(TODO_APP), now()).await.unwrap();
        assert_eq!(report.records_written, 9, "8 tasks and the system user");
        let crm = load_app(&service, &app(CRM_APP), now()).await.unwrap();
        assert!(crm.records_written > 20, "{crm:?}");
        // Every bundled record is valid (the domain test checks them against the rules too).
        assert_eq!(crm.skipped, Vec::<String>::new());
        let catalog = service.catalog();
        assert!(catalog.get("todo__task").is_none(), "the CRM app redefined task without a namespace");
        assert!(catalog.get("opportunity").is_some());
        let acme = service.find_by_field("account", "name", &Value::Text("Acme Corporation".into())).unwrap();
        let john = service.find_by_field("contact", "email", &Value::Text("john.smith@acme.example.com".into())).unwrap();
        let contact = service.record_state("contact", &john).record.unwrap();
        assert_eq!(contact["account"], Value::Text(acme), "lookups by external id are resolved");
        assert_eq!(contact["owner"], Value::Text(SYSTEM_USER.into()), "a missing required owner is the system user");
    }
    let service = backend.service().await;
    let again = load_app(&service, &app(CRM_APP), now()).await.unwrap();
    assert_eq!(again.records_written, 0, "a restart writes no seed record twice");
    assert_eq!(again.objects_changed, 0);
}
on_both_stores!(example_apps_load_and_seed_once);

async fn crud_with_versions_and_errors(backend: Backend) {
    let service = backend.service().await;
    define(&service, vec![json!({"name": "note", "fields": {"title": {"type": "text", "required": true, "maxLength": 10}, "n": {"type": "number"}}})]).await;
    let created = service
        .execute(Command::Create { object: "note".into(), id: Some("n1".into()), data: data(json!({"title": "hi"})) }, CommandMeta::actor("ann"))
        .await
        .unwrap();
    assert_eq!((created.id.as_str(), created.version), ("n1", 1));
    assert!(created.position > 0);
    assert_eq!(created.events[0].actor, "ann");
    let record = created.record.unwrap();
    assert_eq!(record["created_by"], Value::Text("ann".into()));

    let updated = service
        .execute(Command::Update { object: "note".into(), id: "n1".into(), patch: data(json!({"n": 3})), expected_version: Some(1) }, CommandMeta::actor("bob"))
        .await
        .unwrap();
    assert_eq!(updated.version, 2);
    assert_eq!(updated.record.as_ref().unwrap()["modified_by"], Value::Text("bob".into()));
    assert!(updated.position > created.position);

    let stale = service
        .execute(Command::Update { object: "note".into(), id: "n1".into(), patch: data(json!({"n": 4})), expected_version: Some(1) }, CommandMeta::system())
        .await;
    assert!(matches!(stale, Err(CommandError::Conflict { expected: 1, actual: 2 })));
    let noop = service
        .execute(Command::Update { object: "note".into(), id: "n1".into(), patch: data(json!({"n": 3})), expected_version: None }, CommandMeta::system())
        .await
        .unwrap();
    assert_eq!((noop.version, noop.position, noop.events.len()), (2, 0, 0), "an update that changes nothing writes nothing");

    assert_eq!(
        code(
            service
                .execute(Command::Create { object: "note".into(), id: None, data: data(json!({"title": "far too long a title"})) }, CommandMeta::system())
                .await
        ),
        ErrorCode::ValueTooLong
    );
    assert_eq!(
        code(service.execute(Command::Create { object: "ghost".into(), id: None, data: Map::new() }, CommandMeta::system()).await),
        ErrorCode::ObjectNotFound
    );
    assert_eq!(
        code(service.execute(Command::Create { object: "note".into(), id: Some("n1".into()), data: data(json!({"title": "x"})) }, CommandMeta::system()).await),
        ErrorCode::DuplicateRecord
    );
    assert_eq!(
        code(service.execute(Command::Delete { object: "note".into(), id: "nope".into(), expected_version: None }, CommandMeta::system()).await),
        ErrorCode::RecordNotFound
    );
    let head_before = *service.store().head().borrow();
    let _ = service.execute(Command::Create { object: "note".into(), id: None, data: data(json!({"n": "not a number"})) }, CommandMeta::system()).await;
    assert_eq!(*service.store().head().borrow(), head_before, "a rejected command writes nothing");

    let deleted = service.execute(Command::Delete { object: "note".into(), id: "n1".into(), expected_version: Some(2) }, CommandMeta::system()).await.unwrap();
    assert_eq!(deleted.version, 3);
    assert!(deleted.record.is_none());
    assert!(!service.record_state("note", "n1").exists());

    // Every command above, written, refused or a conflict, took back the
    // append it announced: one left counted would hold every later group
    // commit of the embedded log for its whole delay.
    match (&backend, service.store().arrivals()) {
        (Backend::Embedded(_), Some(arrivals)) => assert_eq!(arrivals.pending(), 0),
        (Backend::Postgres(_), None) => {}
        (_, arrivals) => panic!("unexpected arrivals {arrivals:?}"),
    }
}
on_both_stores!(crud_with_versions_and_errors);

async fn idempotency_survives_a_restart(backend: Backend) {
    let first = {
        let service = backend.service().await;
        define(&service, vec![json!({"name": "note", "fields": {"title": {"type": "text"}}})]).await;
        let meta = CommandMeta::actor("ann").with_key("create-note-1");
        let first = service.execute(Command::Create { object: "note".into(), id: None, data: data(json!({"title": "once"})) }, meta.clone()).await.unwrap();
        let repeat = service.execute(Command::Create { object: "note".into(), id: None, data: data(json!({"title": "once"})) }, meta).await.unwrap();
        assert!(repeat.replayed);
        assert_eq!((repeat.id.clone(), repeat.position), (first.id.clone(), first.position));
        first
    };
    let service = backend.service().await;
    let meta = CommandMeta::actor("ann").with_key("create-note-1");
    let after_restart = service.execute(Command::Create { object: "note".into(), id: None, data: data(json!({"title": "once"})) }, meta).await.unwrap();
    assert!(after_restart.replayed);
    assert_eq!(after_restart.id, first.id);
    assert_eq!(after_restart.position, first.position);
    assert_eq!(after_restart.record.as_ref().unwrap()["title"], Value::Text("once".into()));
    assert_eq!(*service.store().head().borrow(), first.position, "nothing was written twice");
}
on_both_stores!(idempotency_survives_a_restart);

async fn unique_values_hold_under_concurrency(backend: Backend) {
    let service = Arc::new(backend.service().await);
    define(&service, vec![json!({"name": "member", "fields": {"email": {"type": "email", "unique": true}}})]).await;
    let mut tasks = Vec::new();
    for n in 0..64 {
        let service = service.clone();
        tasks.push(tokio::spawn(async move {
            service
                .execute(
                    Command::Create { object: "member".into(), id: Some(format!("m{n}")), data: data(json!({"email": "same@example.com"})) },
                    CommandMeta::system(),
                )
                .await
        }));
    }
    let mut ok = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => ok += 1,
            Err(e) => assert_eq!(e.code(), ErrorCode::DuplicateValue, "{e}"),
        }
    }
    assert_eq!(ok, 1, "exactly one create claims the unique value");
}
on_both_stores!(unique_values_hold_under_concurrency);

async fn deletes_follow_delete_behaviour(backend: Backend) {
    let service = backend.service().await;
    define(
        &service,
        vec![
            json!({"name": "account", "fields": {"name": {"type": "text"}}}),
            json!({"name": "contact", "fields": {"account": {"type": "master_detail", "reference": "account", "required": true}}}),
            json!({"name": "note", "fields": {"about": {"type": "lookup", "reference": "contact"}}}),
            json!({"name": "invoice", "fields": {"account": {"type": "lookup", "reference": "account", "deleteBehavior": "restrict"}}}),
        ],
    )
    .await;
    let create = |object: &str, id: &str, body: Json| Command::Create { object: object.into(), id: Some(id.into()), data: data(body) };
    for command in [
        create("account", "a1", json!({"name": "Acme"})),
        create("account", "a2", json!({"name": "Globex"})),
        create("contact", "c1", json!({"account": "a1"})),
        create("contact", "c2", json!({"account": "a1"})),
        create("note", "n1", json!({"about": "c1"})),
        create("invoice", "i1", json!({"account": "a2"})),
    ] {
        service.execute(command, CommandMeta::system()).await.unwrap();
    }
    assert_eq!(code(service.execute(create("contact", "c3", json!({"account": "nope"})), CommandMeta::system()).await), ErrorCode::InvalidReference);

    let deleted = service.execute(Command::Delete { object: "account".into(), id: "a1".into(), expected_version: None }, CommandMeta::system()).await.unwrap();
    assert_eq!(deleted.events.len(), 4, "account, two contacts (cascade), one note cleared (set_null)");
    assert!(deleted.events.windows(2).all(|w| w[1].position == w[0].position + 1), "one atomic append");
    let causes: Vec<Option<String>> = deleted
        .events
        .iter()
        .filter_map(|e| match domain::event::codec::decode_envelope_payload(e, domain::event::registry()).unwrap() {
            domain::event::EventPayload::RecordDeleted(d) => Some(d.cause),
            _ => None,
        })
        .collect();
    assert_eq!(causes, [None, Some("account/a1".to_string()), Some("account/a1".to_string())], "cascaded deletes name their cause");
    // The audit trail shows the cause, read from the event (the entry keeps only what queries filter on).
    let mut audit = projections::audit_model::AuditModel::default();
    for event in &deleted.events {
        audit.apply(event, &domain::event::codec::decode_envelope_payload(event, domain::event::registry()).unwrap());
    }
    let (entries, _) = audit.query(&projections::audit_model::AuditQuery { object: Some("contact".into()), limit: 10, ..Default::default() });
    let shown: Vec<Json> = entries.iter().map(|e| e.to_json(deleted.events.iter().find(|d| d.position == e.position))["metadata"]["cause"].clone()).collect();
    assert_eq!(shown, [json!("account/a1"), json!("account/a1")]);
    assert!(!service.record_state("contact", "c1").exists());
    assert!(!service.record_state("contact", "c2").exists());
    let note = service.record_state("note", "n1").record.unwrap();
    assert!(!note.contains_key("about"));

    assert_eq!(
        code(service.execute(Command::Delete { object: "account".into(), id: "a2".into(), expected_version: None }, CommandMeta::system()).await),
        ErrorCode::DeleteRestricted
    );
    assert!(service.record_state("account", "a2").exists());
}
on_both_stores!(deletes_follow_delete_behaviour);

impl Backend {
    /// A new store of the same kind.
    fn another(&self) -> Backend {
        match self {
            Backend::Embedded(_) => Backend::Embedded(tempfile::tempdir().unwrap()),
            Backend::Postgres(_) => Backend::Postgres(common::pg_settings()),
        }
    }
}

fn create(object: &str, id: &str, body: Json) -> Command {
    Command::Create { object: object.into(), id: Some(id.into()), data: data(body) }
}

/// Definitions and writes whose effects the write model must keep: unique
/// values taken and given up, autonumbers, references, versions. Returns
/// the service, caught up with the log.
async fn members_and_accounts(backend: &Backend) -> CommandService {
    let service = backend.service().await;
    define(
        &service,
        vec![
            json!({"name": "member", "fields": {"email": {"type": "email", "unique": true}, "number": {"type": "autonumber"}}}),
            json!({"name": "account", "fields": {"name": {"type": "text"}}}),
            json!({"name": "contact", "fields": {"account": {"type": "master_detail", "reference": "account", "required": true}}}),
            json!({"name": "invoice", "fields": {"account": {"type": "lookup", "reference": "account", "deleteBehavior": "restrict"}}}),
        ],
    )
    .await;
    for command in [
        create("member", "m1", json!({"email": "one@example.com"})),
        create("member", "m2", json!({"email": "two@example.com"})),
        create("account", "a1", json!({"name": "Acme"})),
        create("account", "a2", json!({"name": "Globex"})),
        create("contact", "c1", json!({"account": "a1"})),
        create("invoice", "i1", json!({"account": "a2"})),
    ] {
        service.execute(command, CommandMeta::system()).await.unwrap();
    }
    let update = Command::Update { object: "member".into(), id: "m2".into(), patch: data(json!({"email": "second@example.com"})), expected_version: Some(1) };
    service.execute(update, CommandMeta::system()).await.unwrap();
    service.execute(Command::Delete { object: "member".into(), id: "m1".into(), expected_version: None }, CommandMeta::system()).await.unwrap();
    let head = *service.store().head().borrow();
    assert!(service.wait_applied(head, std::time::Duration::from_secs(5)).await);
    service
}

/// Decides as a write model folded from [`members_and_accounts`]'s log must.
async fn decides_as_folded(service: &CommandService) {
    assert_eq!(code(service.execute(create("member", "m3", json!({"email": "second@example.com"})), CommandMeta::system()).await), ErrorCode::DuplicateValue);
    for (id, email) in [("m4", "one@example.com"), ("m5", "two@example.com")] {
        service.execute(create("member", id, json!({"email": email})), CommandMeta::system()).await.unwrap();
    }
    let numbers: Vec<Value> = ["m2", "m4", "m5"].iter().map(|id| service.record_state("member", id).record.unwrap()["number"].clone()).collect();
    let distinct: std::collections::BTreeSet<String> = numbers.iter().map(|n| n.to_json().to_string()).collect();
    assert_eq!(distinct.len(), 3, "autonumbers go on: {numbers:?}");
    let stale = Command::Update { object: "member".into(), id: "m2".into(), patch: data(json!({"email": "x@example.com"})), expected_version: Some(1) };
    assert!(matches!(service.execute(stale, CommandMeta::system()).await, Err(CommandError::Conflict { expected: 1, actual: 2 })));
    let delete = |id: &str| Command::Delete { object: "account".into(), id: id.into(), expected_version: None };
    assert_eq!(code(service.execute(delete("a2"), CommandMeta::system()).await), ErrorCode::DeleteRestricted);
    let deleted = service.execute(delete("a1"), CommandMeta::system()).await.unwrap();
    assert_eq!(deleted.events.len(), 2, "the account and its contact");
}

/// A write model started from its snapshot decides as one folded from the
/// whole log: versions, unique values (derived again from the records),
/// autonumbers, references for cascades and restrictions. A damaged
/// snapshot, or one of another log at the same positions, is passed by and
/// the whole log folded.
async fn the_write_model_starts_from_its_snapshot(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let snapshots = commands::snapshot::SnapshotDir::new(dir.path());
    let saved_at = members_and_accounts(&backend).await.save_snapshot(&snapshots, SaveWhile::Stopped).await.unwrap().expect("a position");
    assert_eq!(CommandService::snapshot_saved_at(&snapshots), Some(saved_at));
    let good = std::fs::read(snapshots.path_of("write")).unwrap();

    let reopened = CommandService::start_from(backend.open().await, Some(&snapshots), None).await.unwrap();
    assert_eq!(reopened.started_from(), saved_at, "started from the snapshot");
    decides_as_folded(&reopened).await;
    drop(reopened);

    // The same scenario in another store: the snapshot of the first log (same positions, other events) is not trusted.
    let other = backend.another();
    drop(members_and_accounts(&other).await);
    let service = CommandService::start_from(other.open().await, Some(&snapshots), None).await.unwrap();
    assert_eq!(service.started_from(), 0, "another log's snapshot is not used");
    decides_as_folded(&service).await;
    drop(service);

    // A damaged snapshot of the right log.
    let third = backend.another();
    members_and_accounts(&third).await.save_snapshot(&snapshots, SaveWhile::Serving).await.unwrap();
    let mut damaged = std::fs::read(snapshots.path_of("write")).unwrap();
    assert_ne!(damaged, good);
    let middle = damaged.len() / 2;
    damaged[middle] ^= 0x10;
    std::fs::write(snapshots.path_of("write"), damaged).unwrap();
    let service = CommandService::start_from(third.open().await, Some(&snapshots), None).await.unwrap();
    assert_eq!(service.started_from(), 0, "a damaged snapshot is not used");
    assert!(!snapshots.path_of("write").exists(), "a damaged snapshot is removed, so the next save writes one");
    decides_as_folded(&service).await;
}
on_both_stores!(the_write_model_starts_from_its_snapshot);
