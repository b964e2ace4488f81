//! The query model kept by projector nodes one partition at a time
//! (`projections::pg_model::partitioned`), without a broker: two node
//! handles race on the partitions in a random order, each call on a random
//! set of partitions (overlapping the other node's half of the time), given
//! a random part of each partition's events as the topic's messages (repeats of
//! what is applied included; the rest is read from the log, or waited for),
//! over a log where an object is removed and defined again and one event is
//! refused by the model (parked). At the end the
//! partition rows count every event once, the model's position is the log's
//! head, and the tables equal the single-node projection's fold of the log.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use commands::kafka::message::partition_of;
use commands::service::{Command, CommandMeta, CommandService};
use commands::store::{open_postgres, AppendRequest, EventStore, ExpectedVersion, StreamAppend};
use deadpool_postgres::Pool;
use domain::event::codec::encode_payload;
use domain::event::{EventEnvelope, EventPayload, RecordCreated, StreamId};
use domain::metadata::MetadataCommand;
use projections::pg_model;
use projections::pg_model::partitioned::{PartitionedModel, Target};
use projections::runner::spawn;
use serde_json::{json, Value as Json};

use crate::common::{self, Rng};

const PARTITIONS: i32 = 4;

fn data(value: Json) -> serde_json::Map<String, Json> {
    value.as_object().unwrap().clone()
}

/// Writes the log; answers the position of an event the model refuses.
async fn write_log(service: &CommandService, rng: &mut Rng) -> u64 {
    let mut poison = 0;
    let system = CommandMeta::system;
    let define = |name: &str| MetadataCommand::put_one(json!({"name": name, "fields": {"title": {"type": "text"}, "n": {"type": "number"}}}), None);
    service.execute(Command::Metadata(define("item")), system()).await.unwrap();
    for i in 0..150u64 {
        let record = data(json!({"title": format!("item {i}"), "n": rng.below(100)}));
        service.execute(Command::Create { object: "item".into(), id: Some(format!("i{i:03}")), data: record }, system()).await.unwrap();
        if i == 40 {
            service.execute(Command::Metadata(define("extra")), system()).await.unwrap();
        }
        if i == 75 {
            poison = append_poison(service).await;
        }
        if i > 40 && i % 4 == 0 {
            let record = data(json!({"title": format!("old extra {i}")}));
            service.execute(Command::Create { object: "extra".into(), id: Some(format!("e{i:03}")), data: record }, system()).await.unwrap();
        }
    }
    for i in (0..150u64).step_by(3) {
        let patch = data(json!({"n": rng.below(1000), "title": if i % 2 == 0 { Json::Null } else { json!(format!("edited {i}")) }}));
        service.execute(Command::Update { object: "item".into(), id: format!("i{i:03}"), patch, expected_version: None }, system()).await.unwrap();
    }
    for i in (1..150u64).step_by(7) {
        service.execute(Command::Delete { object: "item".into(), id: format!("i{i:03}"), expected_version: None }, system()).await.unwrap();
    }
    // The object goes, with records left in it, and comes back: rows of the first one must not come back with it.
    for i in (44..150u64).step_by(8) {
        service.execute(Command::Delete { object: "extra".into(), id: format!("e{i:03}"), expected_version: None }, system()).await.unwrap();
    }
    service.execute(Command::Metadata(MetadataCommand::RemoveObject { name: "extra".into() }), system()).await.unwrap();
    service.execute(Command::Metadata(define("extra")), system()).await.unwrap();
    for i in 0..20u64 {
        let record = data(json!({"title": format!("new extra {i}")}));
        service.execute(Command::Create { object: "extra".into(), id: Some(format!("n{i:03}")), data: record }, system()).await.unwrap();
    }
    poison
}

/// A record PostgreSQL's `jsonb` cannot hold (a NUL), as an older server
/// could have logged it past the command checks: the chunk holding it is
/// refused and applied again one event at a time, parking it.
async fn append_poison(service: &CommandService) -> u64 {
    let mut record = domain::value::Record::default();
    record.insert("title".to_string(), domain::value::Value::Text("a\u{0}b".into()));
    let payload = EventPayload::RecordCreated(RecordCreated { object: "item".into(), id: "poison".into(), record, automated: Vec::new() });
    let (event_type, version, bytes) = encode_payload(&payload);
    let mut envelope = common::event("raw");
    envelope.event_type = event_type.into();
    envelope.schema_version = version;
    envelope.payload = bytes;
    let request = AppendRequest {
        streams: vec![StreamAppend { stream: StreamId::record("item", "poison").0, expected: ExpectedVersion::Any, events: vec![envelope] }],
        idempotency_key: None,
        unique: Default::default(),
    };
    service.store().append(request).await.unwrap().events[0].position
}

/// Every row of every object table.
async fn tables(pool: &Pool) -> BTreeMap<(String, String), Json> {
    let client = pool.get().await.unwrap();
    let mut rows = BTreeMap::new();
    for object in client.query("SELECT name FROM rm_objects ORDER BY name", &[]).await.unwrap() {
        let object: String = object.get(0);
        for row in client.query(&format!("SELECT id, data::text FROM {}", pg_model::table(&object)), &[]).await.unwrap() {
            rows.insert((object.clone(), row.get(0)), serde_json::from_str(row.get(1)).unwrap());
        }
    }
    rows
}

/// One partition's part of a node's call: up to a random event of it past
/// where it is (or the head), with a random part of its events (at most `through`) as
/// messages; the log fills the rest, or, one call in three, does not (the
/// partition then stops before the first event the "topic" did not bring).
fn part(rng: &mut Rng, mine: &[EventEnvelope], at: u64, head: u64) -> (u64, BTreeMap<u64, EventEnvelope>) {
    let ahead: Vec<&EventEnvelope> = mine.iter().filter(|e| e.position > at).collect();
    let through = if rng.below(4) == 0 || ahead.is_empty() { head } else { ahead[rng.below(ahead.len() as u64) as usize].position };
    let messages = mine.iter().filter(|e| e.position <= through && rng.below(2) == 0).map(|e| (e.position, e.clone())).collect();
    (through, messages)
}

/// A partition, the position to bring it to, and the messages the "topic" brought of it.
type Part = (i32, u64, BTreeMap<u64, EventEnvelope>);

/// One node's call: a random set of partitions (the first always in it).
fn call(rng: &mut Rng, first: i32, by_partition: &BTreeMap<i32, Vec<EventEnvelope>>, at: &BTreeMap<i32, u64>, head: u64) -> (Vec<Part>, u64) {
    let empty = Vec::new();
    let mut parts = Vec::new();
    for p in 0..PARTITIONS {
        if p == first || rng.below(3) == 0 {
            let (through, messages) = part(rng, by_partition.get(&p).unwrap_or(&empty), at.get(&p).copied().unwrap_or(0), head);
            parts.push((p, through, messages));
        }
    }
    let fill_before = if rng.below(3) == 0 { 0 } else { head };
    (parts, fill_before)
}

fn targets(parts: &[Part], offset: i64) -> Vec<Target<'_>> {
    parts.iter().map(|(partition, through, messages)| Target { partition: *partition, through: *through, messages, offset }).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitions_applied_in_any_order_by_racing_nodes_equal_a_fold_of_the_log() {
    let settings = common::pg_settings();
    let pg = Arc::new(open_postgres(&settings).await.expect("postgres (ops/test starts it)"));
    let pool = pg.pool().clone();
    let store: Arc<dyn EventStore> = pg.clone();
    let service = CommandService::start(store.clone()).await.unwrap();
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let poison = write_log(&service, &mut rng).await;
    let head = *store.head().borrow();
    let log = store.read_all(0, 100_000).await.unwrap();
    assert_eq!(log.len() as u64, head);
    let mut by_partition: BTreeMap<i32, Vec<EventEnvelope>> = BTreeMap::new();
    for event in log {
        by_partition.entry(partition_of(&event.stream, PARTITIONS)).or_default().push(event);
    }

    let mut a = PartitionedModel::open(pg.clone(), "events", PARTITIONS).await.unwrap();
    let mut b = PartitionedModel::open(pg.clone(), "events", PARTITIONS).await.unwrap();
    let mut rounds = 0;
    loop {
        let at: BTreeMap<i32, u64> = a.partition_rows().await.unwrap().into_iter().map(|(p, position, _, _)| (p, position)).collect();
        if (0..PARTITIONS).all(|p| at.get(&p).is_some_and(|x| *x >= head)) {
            break;
        }
        rounds += 1;
        assert!(rounds < 2_000, "the partitions do not reach the head: {at:?}");
        // Both nodes at once, on the same partition half of the time (a rebalance's overlap).
        let pa = rng.below(PARTITIONS as u64) as i32;
        let pb = if rng.below(2) == 0 { pa } else { rng.below(PARTITIONS as u64) as i32 };
        let (ca, fa) = call(&mut rng, pa, &by_partition, &at, head);
        let (cb, fb) = call(&mut rng, pb, &by_partition, &at, head);
        let offset = rounds as i64;
        let (ta, tb) = (targets(&ca, offset), targets(&cb, offset));
        let (ra, rb) = tokio::join!(a.advance(&ta, fa), b.advance(&tb, fb));
        for (done, fill_before) in [(ra.unwrap(), fa), (rb.unwrap(), fb)] {
            if fill_before == 0 {
                assert!(done.values().all(|d| d.from_log == 0), "a call the log may not fill waits for the topic: {done:?}");
            }
        }
    }
    assert_eq!(a.publish_position().await.unwrap(), head, "the model's position is the head once every partition is there");
    let rows = a.partition_rows().await.unwrap();
    assert_eq!(rows.len(), PARTITIONS as usize);
    for (partition, _, _, applied) in &rows {
        assert_eq!(*applied, by_partition.get(partition).map_or(0, |e| e.len()) as u64, "partition {partition} applied each of its events once");
    }
    let parked: Vec<(i64, String)> = pool
        .get()
        .await
        .unwrap()
        .query("SELECT position, error FROM rm_dead_letters WHERE projection = 'query'", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(parked.len(), 1, "the refused event is parked, once, and nothing else is: {parked:?}");
    assert_eq!(parked[0].0, poison as i64);
    assert!(parked[0].1.contains("SQLSTATE 22"), "parked because PostgreSQL refused it: {}", parked[0].1);
    let kept = tables(&pool).await;
    assert!(kept.keys().any(|(o, id)| o == "extra" && id.starts_with('n')), "the second extra's records are there");
    assert!(!kept.keys().any(|(o, id)| o == "extra" && id.starts_with('e')), "no record of the removed extra is");

    // The single-node projection's fold of the same log, in the same tables.
    pg_model::reset(&pool).await.unwrap();
    let (projection, _) = pg_model::open(pool.clone()).await.unwrap();
    let handle = spawn(store.clone(), projection).await.unwrap();
    assert!(handle.wait_for(head, Duration::from_secs(60)).await);
    assert_eq!(kept, tables(&pool).await, "the partitioned model equals a fold of the log");
}
