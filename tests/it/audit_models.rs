//! The two audit models agree: the in-process model and the PostgreSQL
//! table, fed from one log, give the same entries and totals for randomised
//! queries (object, record, actor, kind, time range, paging; the whole
//! trail's and one object's totals are read from the counts the table keeps
//! per object, the others counted). Two runners on one table (two nodes on
//! one database) apply each event once, the table keeps its checkpoint
//! across a restart, and a live rebuild swaps a fresh fold in (twice in a
//! row), its counts with it.

use std::sync::Arc;
use std::time::Duration;

use commands::service::{Command, CommandMeta, CommandService};
use commands::store::{open_postgres, EventStore};
use domain::metadata::{MetadataCommand, ObjectSpec};
use projections::audit_model::{audit_projection, AuditEntry, AuditQuery};
use projections::pg_audit;
use projections::runner::spawn;
use serde_json::json;

use crate::common::{self, Rng};

const ACTORS: [&str; 3] = ["system", "u-ann", "u-bob"];
const KINDS: [&str; 5] = ["data.create", "data.update", "data.delete", "system.config_changed", "data.nothing"];

async fn seed(service: &CommandService, rng: &mut Rng) {
    let meta = |actor: &str| CommandMeta::actor(actor);
    for object in ["note", "task"] {
        let spec = ObjectSpec::new(json!({"name": object, "fields": {"title": {"type": "text"}, "n": {"type": "number"}}}), None);
        service.execute(Command::Metadata(MetadataCommand::PutObjects { objects: vec![spec] }), meta("system")).await.unwrap();
    }
    for i in 0..300u64 {
        let object = *rng.pick(&["note", "task"]);
        let id = format!("r{:02}", rng.below(40));
        let actor = *rng.pick(&ACTORS);
        let data = json!({"title": format!("t{i}"), "n": i}).as_object().unwrap().clone();
        // A create of an id that exists fails, an update or delete of one that does not: both leave no event.
        let command = match rng.below(4) {
            0 | 1 => Command::Create { object: object.into(), id: Some(id), data },
            2 => Command::Update { object: object.into(), id, patch: data, expected_version: None },
            _ => Command::Delete { object: object.into(), id, expected_version: None },
        };
        let _ = service.execute(command, meta(actor)).await;
    }
    // A definition changed late: configuration entries among the records'.
    let spec = ObjectSpec::new(json!({"name": "task", "fields": {"title": {"type": "text"}, "n": {"type": "number"}, "done": {"type": "boolean"}}}), None);
    service.execute(Command::Metadata(MetadataCommand::PutObjects { objects: vec![spec] }), meta("u-ann")).await.unwrap();
}

fn random_query(rng: &mut Rng, times: (i64, i64)) -> AuditQuery {
    let object = (rng.below(2) == 0).then(|| rng.pick(&["note", "task", "object", "nothing"]).to_string());
    let record_id = (rng.below(2) == 0).then(|| format!("r{:02}", rng.below(42)));
    let actor = (rng.below(2) == 0).then(|| rng.pick(&ACTORS).to_string());
    let event_type = if rng.below(3) == 0 { Some(rng.pick(&KINDS).to_string()) } else { None };
    let span = (times.1 - times.0).max(1) as u64;
    let from = (rng.below(3) == 0).then(|| times.0 + rng.below(span) as i64);
    let to = (rng.below(3) == 0).then(|| times.0 + rng.below(span) as i64);
    AuditQuery { object, record_id, actor, event_type, from, to, limit: rng.below(30) as usize, offset: rng.below(20) as usize }
}

fn shown(entries: &[AuditEntry]) -> Vec<(u64, &'static str, i64, String, String, String, String)> {
    entries.iter().map(|e| (e.position, e.event_type, e.occurred_at, e.actor.clone(), e.tenant.clone(), e.target_type.clone(), e.target_id.clone())).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_and_postgres_audit_models_agree() {
    let settings = common::pg_settings();
    let pg_store = open_postgres(&settings).await.expect("postgres (ops/test starts it)");
    let pool = pg_store.pool().clone();
    let store: Arc<dyn EventStore> = Arc::new(pg_store);
    let service = CommandService::start(store.clone()).await.unwrap();
    let mut rng = Rng(0x51a7_e00d_2026_1207);
    seed(&service, &mut rng).await;
    let head = *store.head().borrow();
    let events = store.read_all(0, 10_000).await.unwrap();
    let times = (events.first().unwrap().occurred_at, events.last().unwrap().occurred_at);

    let (memory, memory_model) = audit_projection();
    let memory_handle = spawn(store.clone(), memory).await.unwrap();
    // Two runners on one table, as two nodes on one database.
    let (first, reader) = pg_audit::open(pool.clone());
    let (second, _) = pg_audit::open(pool.clone());
    let (first, second) = (spawn(store.clone(), first).await.unwrap(), spawn(store.clone(), second).await.unwrap());
    for handle in [&memory_handle, &first, &second] {
        assert!(handle.wait_for(head, Duration::from_secs(30)).await);
    }
    let whole = AuditQuery { limit: 10_000, ..Default::default() };
    let (all, total) = reader.query(&whole).await.unwrap();
    assert_eq!(total, memory_model.read().unwrap().len(), "each audited event once, whichever runner applied it");
    assert!(total > 60 && all.len() == total, "the seed audits enough to query: {total}");

    let (mut matched, mut from_counts) = (0, 0);
    for round in 0..400 {
        let query = random_query(&mut rng, times);
        let (from_memory, memory_total) = memory_model.read().unwrap().query(&query);
        let (from_pg, pg_total) = reader.query(&query).await.unwrap();
        assert_eq!((shown(&from_memory), memory_total), (shown(&from_pg), pg_total), "round {round}: {query:?}");
        matched += usize::from(!from_pg.is_empty());
        let only_object = (&query.record_id, &query.actor, &query.event_type, query.from, query.to) == (&None, &None, &None, None, None);
        from_counts += usize::from(only_object);
    }
    assert!(matched > 100, "enough queries found entries to compare: {matched}");
    assert!(from_counts > 10, "enough totals read from the counts per object: {from_counts}");

    // A restart keeps the checkpoint: the next event is added once.
    drop((first, second));
    let (again, reader) = pg_audit::open(pool);
    let again = spawn(store.clone(), again).await.unwrap();
    assert_eq!(again.checkpoint(), head, "the stored checkpoint is where it left off");
    let data = json!({"title": "late"}).as_object().unwrap().clone();
    let outcome = service.execute(Command::Create { object: "note".into(), id: Some("late".into()), data }, CommandMeta::actor("u-bob")).await.unwrap();
    assert!(again.wait_for(outcome.position, Duration::from_secs(10)).await);
    let late = AuditQuery { object: Some("note".into()), record_id: Some("late".into()), limit: 10, ..Default::default() };
    let (entries, total) = reader.query(&late).await.unwrap();
    assert_eq!((total, entries[0].position, entries[0].actor.as_str()), (1, outcome.position, "u-bob"));
    assert!(memory_handle.wait_for(outcome.position, Duration::from_secs(10)).await);
    let (expected, total) = reader.query(&whole).await.unwrap();
    assert_eq!(total, memory_model.read().unwrap().len(), "nothing applied twice after the restart");

    // A live rebuild swaps in a fresh fold: an entry lost from the live
    // table is back, and twice in a row (the copy's indexes renamed to the
    // live names, so the next copy's names are free again).
    let client = reader.pool().get().await.unwrap();
    client.execute("DELETE FROM rm_audit WHERE position = $1", &[&(outcome.position as i64)]).await.unwrap();
    assert_eq!(reader.query(&late).await.unwrap().1, 0, "the entry is gone from the live table");
    for _ in 0..2 {
        let (progress, _) = tokio::sync::watch::channel(Default::default());
        let matched = pg_audit::rebuild::rebuild_live(store.clone(), reader.pool().clone(), progress).await.unwrap();
        assert!(matched.is_some(), "the copy stopped at the live model's position");
        assert_eq!(shown(&reader.query(&whole).await.unwrap().0), shown(&expected), "the rebuilt table holds every entry once");
    }
    let names = |sql: &'static str| {
        let client = &client;
        async move {
            let mut names: Vec<String> = client.query(sql, &[]).await.unwrap().iter().map(|r| r.get(0)).collect();
            names.sort();
            names
        }
    };
    let indexes = names("SELECT indexname::text FROM pg_indexes WHERE schemaname = current_schema() AND tablename = 'rm_audit'").await;
    assert_eq!(indexes, ["rm_audit_actor_position_idx", "rm_audit_object_position_idx", "rm_audit_object_target_position_idx", "rm_audit_pkey"]);
    let tables = names("SELECT tablename::text FROM pg_tables WHERE schemaname = current_schema() AND tablename LIKE 'rm_audit%'").await;
    assert_eq!(tables, ["rm_audit", "rm_audit_counts"], "the copy's table is gone");
    let models = names("SELECT DISTINCT model FROM rm_audit_counts").await;
    assert_eq!(models, ["audit"], "the copy's counts are the live model's");
    for object in [None, Some("note"), Some("task"), Some("object")] {
        let query = AuditQuery { object: object.map(String::from), limit: 1, ..Default::default() };
        assert_eq!(reader.query(&query).await.unwrap().1, memory_model.read().unwrap().query(&query).1, "{object:?}: the rebuilt counts");
    }
    let checkpoint: i64 = client.query_one("SELECT position FROM rm_checkpoints WHERE projection = 'audit'", &[]).await.unwrap().get(0);
    assert!(checkpoint as u64 >= outcome.position);
    assert_eq!(client.query_one("SELECT count(*) FROM rm_checkpoints WHERE projection = 'audit-rebuild'", &[]).await.unwrap().get::<_, i64>(0), 0);
}
