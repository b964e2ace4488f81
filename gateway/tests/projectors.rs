//! Projector nodes on a real Kafka-protocol broker (tansu, built once by
//! `ops/services/kafka`), with the real binary: PostgreSQL store, a relay,
//! two projector nodes sharing the topic's partitions in one consumer
//! group, and a gateway that reads the query model they keep
//! (`--projector-nodes`). Writes of records, and of an object's definition
//! in the middle, go through the gateway; each is read back at once (the
//! read barrier waits for the projector nodes). During the run one
//! projector is killed with SIGKILL (its partitions move to the other) and a
//! third joins; the killed node's partitions go on (the group gives them to
//! another, or another fills them from the log until it does), so reads
//! keep answering. At the end: the partition rows count every event of the
//! log exactly once (none applied twice, none skipped), the tables equal a
//! fold of the log by the single-node projection, and every surviving
//! projector took events from the topic.

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use deadpool_postgres::tokio_postgres::{self, NoTls};
use serde_json::{json, Value as Json};
use support::kafka::{broker_binary, start_broker};
use support::{exchange, free_port, http, serve, text, Database, Process};

const PARTITIONS: u64 = 4;

/// The slowest read after a write, µs.
static SLOWEST: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

const APP: &str = r#"{
  "manifest": {"id": "com.example.projectors", "name": "Projectors"},
  "objects": [{"name": "ticket", "fields": {"title": {"type": "text", "required": true}, "round": {"type": "number"}}}]
}"#;

fn metric(text: &str, name: &str) -> u64 {
    text.lines().find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse().ok())).unwrap_or(0)
}

async fn projector_metric(port: u16, name: &str) -> u64 {
    metric(&text(port, "/metrics").await.unwrap_or_default(), name)
}

fn projector(database: &Database, brokers: &str, port: u16) -> Process {
    Process::objectstack(&[
        "projector".into(),
        "--database-url".into(),
        database.url.clone(),
        "--kafka-brokers".into(),
        brokers.into(),
        "--listen".into(),
        format!("127.0.0.1:{port}"),
    ])
}

async fn sql(database: &Database) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(&database.url, NoTls).await.unwrap();
    tokio::spawn(connection);
    client
}

/// Every row of every object table: (object, id) to the row's data.
async fn tables(client: &tokio_postgres::Client) -> BTreeMap<(String, String), Json> {
    let mut rows = BTreeMap::new();
    for object in ["ticket", "note"] {
        let exists: bool = client.query_one("SELECT to_regclass($1) IS NOT NULL", &[&format!("obj_{object}")]).await.unwrap().get(0);
        if !exists {
            continue;
        }
        for row in client.query(&format!("SELECT id, data::text FROM obj_{object}"), &[]).await.unwrap() {
            rows.insert((object.to_string(), row.get(0)), serde_json::from_str(row.get(1)).unwrap());
        }
    }
    rows
}

/// Writes a record on the gateway and reads it back at once: the read waits for the projector nodes.
async fn write(port: u16, method: &str, path: &str, body: Json) -> Json {
    let (status, reply) = http(port, method, path, Some(&body)).await.expect("the gateway answers");
    assert!(status == 200 || status == 201, "{method} {path}: {status} {reply}");
    let record = if reply["data"]["record"].is_object() { reply["data"]["record"].clone() } else { reply["data"].clone() };
    let (object, id) = (path.split('/').nth(4).unwrap(), record["id"].as_str().unwrap_or_else(|| panic!("{method} {path}: {reply}")));
    let started = Instant::now();
    let (status, _, read) = exchange(port, "GET", &format!("/api/v1/data/{object}/{id}"), &[], None).await.expect("the read answers within 10 s");
    SLOWEST.fetch_max(started.elapsed().as_micros() as u64, std::sync::atomic::Ordering::Relaxed);
    assert_eq!(status, 200, "the write of {object}/{id} is visible at once: {read}");
    for (field, value) in body.as_object().unwrap() {
        assert_eq!(&read["data"]["record"][field], value, "{object}/{id}.{field} as written: {read}");
    }
    record
}

async fn delete(port: u16, object: &str, id: &str) {
    let (status, reply) = http(port, "DELETE", &format!("/api/v1/data/{object}/{id}"), None).await.unwrap();
    assert_eq!(status, 200, "{reply}");
    let (status, _) = http(port, "GET", &format!("/api/v1/data/{object}/{id}"), None).await.unwrap();
    assert_eq!(status, 404, "the delete of {object}/{id} is visible at once");
}

#[tokio::test]
async fn projector_nodes_share_the_partitions_and_apply_each_event_once() {
    let binary = broker_binary();
    let database = Database::create("projectors").await;
    let dir = tempfile::tempdir().unwrap();
    let app = dir.path().join("app.json");
    std::fs::write(&app, APP).unwrap();
    let broker_port = free_port();
    let brokers = format!("127.0.0.1:{broker_port}");
    let broker = start_broker(&binary, broker_port, dir.path()).await;
    let relay = Process::objectstack(&[
        "relay".into(),
        "--database-url".into(),
        database.url.clone(),
        "--kafka-brokers".into(),
        brokers.clone(),
        "--kafka-partitions".into(),
        PARTITIONS.to_string(),
    ]);
    let ports = [free_port(), free_port(), free_port()];
    let mut first = Some(projector(&database, &brokers, ports[0]));
    let _second = projector(&database, &brokers, ports[1]);
    let gateway = free_port();
    let _gateway =
        serve(&app, &["--database-url".into(), database.url.clone(), "--projector-nodes".into(), "--read-wait-ms".into(), "30000".into()], gateway).await;

    let mut live: BTreeMap<String, String> = BTreeMap::new();
    let mut third = None;
    for round in 0..3u32 {
        for i in 0..30u32 {
            let record = write(gateway, "POST", "/api/v1/data/ticket", json!({"title": format!("ticket {round}-{i}"), "round": round})).await;
            let id = record["id"].as_str().unwrap().to_string();
            if i % 3 == 0 {
                write(gateway, "PATCH", &format!("/api/v1/data/ticket/{id}"), json!({"title": format!("ticket {round}-{i} edited")})).await;
            }
            if i % 5 == 4 {
                delete(gateway, "ticket", &id).await;
            } else {
                live.insert(id, "ticket".into());
            }
        }
        match round {
            0 => {
                // A new object in the middle: its table exists before any partition writes its rows.
                let definition = json!({"name": "note", "fields": {"body": {"type": "text"}}});
                let (status, reply) = http(gateway, "PUT", "/api/v1/meta/object/note", Some(&definition)).await.unwrap();
                assert_eq!(status, 200, "{reply}");
                for i in 0..10 {
                    let note = write(gateway, "POST", "/api/v1/data/note", json!({"body": format!("note {i}")})).await;
                    live.insert(note["id"].as_str().unwrap().to_string(), "note".into());
                }
                // The first projector dies: the group moves its partitions to the second.
                assert!(projector_metric(ports[0], "objectstack_projector_partitions").await > 0, "the first projector had partitions");
                // Its partitions go on: the group gives them to the second once
                // the broker notices, and until then the second fills them from the log.
                drop(first.take());
            }
            1 => third = Some(projector(&database, &brokers, ports[2])),
            _ => {}
        }
    }

    // Settle: the model's position reaches the log's head.
    let client = sql(&database).await;
    let head: i64 = client.query_one("SELECT max(position) FROM events", &[]).await.unwrap().get(0);
    let started = Instant::now();
    loop {
        let at: i64 = client.query_one("SELECT position FROM rm_checkpoints WHERE projection = 'query'", &[]).await.unwrap().get(0);
        if at >= head {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "the projector nodes stopped at {at}, the log's head is {head}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let survivors = [ports[1], ports[2]];
    let mut from_topic = Vec::new();
    for port in survivors {
        from_topic.push(projector_metric(port, "objectstack_projector_events_total{source=\"topic\"}").await);
    }
    let from_log: Vec<u64> = futures_util::future::join_all(survivors.map(|p| projector_metric(p, "objectstack_projector_events_total{source=\"log\"}"))).await;
    let partitions: Vec<u64> = futures_util::future::join_all(survivors.map(|p| projector_metric(p, "objectstack_projector_partitions"))).await;
    let orphans: Vec<u64> = futures_util::future::join_all(survivors.map(|p| projector_metric(p, "objectstack_projector_orphans_total"))).await;
    eprintln!(
        "survivors: events from the topic {from_topic:?}, from the log {from_log:?}, partitions held {partitions:?}, partitions filled for a silent node {orphans:?}; head {head}; slowest read after a write {:.0} ms",
        SLOWEST.load(std::sync::atomic::Ordering::Relaxed) as f64 / 1000.0
    );

    // Each event of the log was applied once, on its own partition.
    let rows = client.query("SELECT partition, position, applied FROM rm_partitions WHERE projection = 'query' ORDER BY partition", &[]).await.unwrap();
    assert_eq!(rows.len() as u64, PARTITIONS, "a row per partition");
    let applied: i64 = rows.iter().map(|r| r.get::<_, i64>(2)).sum();
    assert_eq!(applied, head, "every event was applied exactly once across the partitions");
    assert!(from_topic.iter().all(|n| *n > 0), "both surviving projectors took events from the topic: {from_topic:?}");

    // What the gateway lists is what was written and not deleted.
    for object in ["ticket", "note"] {
        let (_, list) = http(gateway, "GET", &format!("/api/v1/data/{object}?top=1000"), None).await.unwrap();
        let ids: Vec<String> = list["data"]["records"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap().to_string()).collect();
        let expected: Vec<String> = live.iter().filter(|(_, o)| o.as_str() == object).map(|(id, _)| id.clone()).collect();
        let mut got = ids.clone();
        got.sort();
        assert_eq!(got, expected, "the gateway lists every live {object}, and no deleted one");
    }

    // The tables equal a fold of the log by the single-node projection.
    let kept = tables(&client).await;
    drop(third);
    drop(_second);
    drop(_gateway);
    let rebuilt = std::process::Command::new(env!("CARGO_BIN_EXE_objectstack"))
        .args(["projections", "rebuild", "query", "--database-url", &database.url])
        .output()
        .unwrap();
    assert!(rebuilt.status.success(), "the offline rebuild: {}", String::from_utf8_lossy(&rebuilt.stderr));
    let folded = tables(&client).await;
    assert_eq!(kept.len(), live.len(), "the tables hold every live record");
    assert_eq!(kept, folded, "the projector nodes' tables equal a fold of the log");
    drop(relay);
    drop(broker);
    drop(client);
    database.drop_now().await;
}
