//! A cluster on a real Kafka-protocol broker (tansu, built once by
//! `ops/services/kafka`), with the real binary: PostgreSQL store, two relays
//! (one active, one standing by), two gateways following the topic, writes
//! spread over both while a realtime subscriber listens on each. During the
//! run the active relay is killed with SIGKILL (the standby takes over) and
//! the broker is killed with SIGKILL and started again (on its SQLite file).
//! At the end: no acknowledged write
//! is missing, a read on one node carrying the position another node
//! acknowledged sees that write, both nodes' in-process models (audit,
//! search) equal those of a node folded from the log alone, every subscriber
//! got every change exactly once in record order, and both nodes received
//! events from the topic after the takeover and after the broker restart.

mod support;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value as Json};
use support::kafka::{broker_binary, start_broker};
use support::{exchange, free_port, http, serve, text, Database, Process};
use tokio_tungstenite::tungstenite::Message;

const APP: &str = r#"{
  "manifest": {"id": "com.example.cluster", "name": "Cluster"},
  "objects": [{"name": "ticket", "fields": {"title": {"type": "text", "required": true, "searchable": true}, "round": {"type": "number"}}}]
}"#;

/// The value of a metric line (`name` with its labels) in Prometheus text.
fn metric(text: &str, name: &str) -> u64 {
    text.lines().find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse().ok())).unwrap_or(0)
}

async fn from_topic(port: u16) -> u64 {
    metric(&text(port, "/metrics").await.unwrap_or_default(), "objectstack_feed_events_total{source=\"topic\"}")
}

async fn from_log(port: u16) -> u64 {
    metric(&text(port, "/metrics").await.unwrap_or_default(), "objectstack_feed_events_total{source=\"log\"}")
}

type Seen = Arc<Mutex<Vec<(u64, String)>>>;

/// A realtime subscriber of ticket changes: (position, record id) in arrival order.
async fn subscribe(port: u16) -> Seen {
    let seen = Seen::default();
    listen(port, None, seen.clone()).await;
    seen
}

/// Subscribes on `port` (resuming after a position when given), adding what
/// arrives to `got`; the socket closes when the returned task is aborted.
/// Answers the position the subscription started at, and the task.
async fn listen(port: u16, after: Option<u64>, got: Seen) -> (u64, tokio::task::JoinHandle<()>) {
    let (mut socket, _) = tokio_tungstenite::connect_async(format!("ws://127.0.0.1:{port}/api/v1/realtime")).await.unwrap();
    socket.send(Message::Text(json!({"type": "subscribe", "object": "ticket", "after": after}).to_string().into())).await.unwrap();
    let start = loop {
        let Some(Ok(Message::Text(frame))) = socket.next().await else { panic!("the subscription was not answered") };
        let frame: Json = serde_json::from_str(&frame).unwrap();
        if frame["type"] == "subscribed" {
            break frame["position"].as_u64().unwrap_or(0);
        }
    };
    let kept = got;
    let task = tokio::spawn(async move {
        while let Some(Ok(message)) = socket.next().await {
            if let Message::Text(frame) = message {
                let frame: Json = serde_json::from_str(&frame).unwrap();
                if let (Some(position), Some(id)) = (frame["position"].as_u64(), frame["payload"]["id"].as_str()) {
                    kept.lock().unwrap().push((position, id.to_string()));
                }
            }
        }
    });
    (start, task)
}

/// Creates a ticket on `port`: its id and the position the node acknowledged.
async fn create(port: u16, title: &str, round: u32) -> (String, u64) {
    let (status, headers, body) =
        exchange(port, "POST", "/api/v1/data/ticket", &[], Some(&json!({"title": title, "round": round}))).await.expect("the node answers");
    assert_eq!(status, 201, "{body}");
    let position = headers.iter().find(|(k, _)| k == "x-log-position").and_then(|(_, v)| v.parse().ok()).expect("X-Log-Position");
    (body["data"]["id"].as_str().unwrap().to_string(), position)
}

async fn active_relay(ports: &[u16]) -> Option<usize> {
    for (i, port) in ports.iter().enumerate() {
        if let Some((200, _)) = http(*port, "GET", "/health", None).await {
            return Some(i);
        }
    }
    None
}

/// Every audit entry of tickets on a node (event ids), and its search hits for a word.
async fn models(port: u16) -> (BTreeSet<String>, u64) {
    let mut ids = BTreeSet::new();
    for offset in (0..).step_by(500) {
        let (_, trail) = http(port, "GET", &format!("/api/v1/audit?object=ticket&limit=500&offset={offset}"), None).await.unwrap();
        let entries = trail["data"]["entries"].as_array().unwrap_or_else(|| panic!("the audit trail: {trail}")).clone();
        ids.extend(entries.iter().map(|e| e["metadata"]["eventId"].as_str().unwrap().to_string()));
        if entries.len() < 500 {
            break;
        }
    }
    let (_, hits) = http(port, "GET", "/api/v1/search?q=cluster&object=ticket&limit=1", None).await.unwrap();
    (ids, hits["data"]["totalHits"].as_u64().unwrap_or_else(|| panic!("search: {hits}")))
}

#[tokio::test]
async fn a_cluster_on_kafka_survives_a_relay_kill_and_a_broker_restart() {
    let binary = broker_binary();
    let database = Database::create("cluster").await;
    let dir = tempfile::tempdir().unwrap();
    let app = dir.path().join("app.json");
    std::fs::write(&app, APP).unwrap();
    let broker_port = free_port();
    let brokers = format!("127.0.0.1:{broker_port}");
    let mut broker = start_broker(&binary, broker_port, dir.path()).await;
    let relay_ports = [free_port(), free_port()];
    let mut relays: Vec<Option<Process>> = relay_ports
        .iter()
        .map(|port| {
            Some(Process::objectstack(&[
                "relay".into(),
                "--database-url".into(),
                database.url.clone(),
                "--kafka-brokers".into(),
                brokers.clone(),
                "--kafka-partitions".into(),
                "3".into(),
                "--listen".into(),
                format!("127.0.0.1:{port}"),
            ]))
        })
        .collect();
    let node = ["--database-url".to_string(), database.url.clone(), "--kafka-brokers".into(), brokers.clone()];
    let (a, b) = (free_port(), free_port());
    let _node_a = serve(&app, &node, a).await;
    let _node_b = serve(&app, &node, b).await;
    let started = Instant::now();
    while active_relay(&relay_ports).await.is_none() {
        assert!(started.elapsed() < Duration::from_secs(30), "no relay became active");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let seen_a = subscribe(a).await;
    let seen_b = subscribe(b).await;

    let mut acknowledged = Vec::new();
    let mut topic_counts = vec![(from_topic(a).await, from_topic(b).await)];
    // A subscriber that leaves node a in the middle of round 1 and comes
    // back on node b five writes later, resuming after the last position it saw.
    let roamer = Seen::default();
    let mut roamer_start = 0;
    let mut roamer_task = None;
    for round in 0..3u32 {
        for i in 0..40u32 {
            if round == 1 && i == 0 {
                let (start, task) = listen(a, None, roamer.clone()).await;
                (roamer_start, roamer_task) = (start, Some(task));
            }
            if round == 1 && i == 20 {
                // Gone while five writes commit, then back on the other node.
                roamer_task.take().unwrap().abort();
            }
            if round == 1 && i == 25 {
                let last = roamer.lock().unwrap().last().map(|(p, _)| *p).unwrap_or(roamer_start);
                roamer_task = Some(listen(b, Some(last), roamer.clone()).await.1);
            }
            let (writer, reader) = if i % 2 == 0 { (a, b) } else { (b, a) };
            let (id, position) = create(writer, &format!("cluster ticket {round}-{i}"), round).await;
            // Read-your-writes across nodes: the other node, given the position, sees it.
            let (status, _, body) =
                exchange(reader, "GET", &format!("/api/v1/data/ticket/{id}"), &[("X-Min-Position", position.to_string())], None).await.unwrap();
            assert_eq!(status, 200, "round {round}: node {reader} at position {position} does not see {id}: {body}");
            if i % 4 == 0 {
                let (status, body) =
                    http(writer, "PATCH", &format!("/api/v1/data/ticket/{id}"), Some(&json!({"title": format!("cluster ticket {round}-{i} edited")})))
                        .await
                        .unwrap();
                assert_eq!(status, 200, "{body}");
            }
            acknowledged.push(id);
        }
        // Let the topic carry this round before the fault, then count what it brought.
        tokio::time::sleep(Duration::from_millis(500)).await;
        topic_counts.push((from_topic(a).await, from_topic(b).await));
        match round {
            0 => {
                let active = active_relay(&relay_ports).await.expect("an active relay");
                drop(relays[active].take()); // SIGKILL
                let started = Instant::now();
                while active_relay(&relay_ports).await != Some(1 - active) {
                    assert!(started.elapsed() < Duration::from_secs(20), "the standby relay did not take over");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
            1 => {
                drop(broker); // SIGKILL
                broker = start_broker(&binary, broker_port, dir.path()).await;
            }
            _ => {}
        }
    }

    // Settle: every node's projections reach the log's head.
    let head = {
        let (client, connection) = deadpool_postgres::tokio_postgres::connect(&database.url, deadpool_postgres::tokio_postgres::NoTls).await.unwrap();
        tokio::spawn(connection);
        let head: i64 = client.query_one("SELECT max(position) FROM events", &[]).await.unwrap().get(0);
        let rows = client.query("SELECT position, stream FROM events WHERE stream LIKE 'ticket/%' ORDER BY position", &[]).await.unwrap();
        let changes: Vec<(u64, String)> = rows.iter().map(|r| (r.get::<_, i64>(0) as u64, r.get::<_, String>(1)["ticket/".len()..].to_string())).collect();
        (head as u64, changes)
    };
    let (head, changes) = head;
    let fresh_port = free_port();
    let _fresh = serve(&app, &["--database-url".to_string(), database.url.clone()], fresh_port).await;
    for port in [a, b, fresh_port] {
        let started = Instant::now();
        loop {
            let (_, projections) = http(port, "GET", "/api/v1/projections", None).await.unwrap();
            let behind: Vec<&Json> = projections["data"]["projections"]
                .as_array()
                .unwrap_or_else(|| panic!("node {port}: {projections}"))
                .iter()
                .filter(|p| p["position"].as_u64().unwrap_or(0) < head)
                .collect();
            if behind.is_empty() {
                break;
            }
            assert!(started.elapsed() < Duration::from_secs(30), "node {port} is behind the log's head {head}: {behind:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    // No acknowledged write is missing, on any node.
    for port in [a, b, fresh_port] {
        let (_, list) = http(port, "GET", "/api/v1/data/ticket?top=1000", None).await.unwrap();
        let ids: BTreeSet<&str> = list["data"]["records"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap()).collect();
        for id in &acknowledged {
            assert!(ids.contains(id.as_str()), "node {port} lacks acknowledged {id}");
        }
    }
    // The in-process models of both cluster nodes equal a fold of the log.
    let expected = models(fresh_port).await;
    assert_eq!(expected.0.len(), changes.len(), "the fresh node's audit trail has every ticket change");
    assert_eq!(models(a).await, expected, "node a's audit and search equal a fold of the log");
    assert_eq!(models(b).await, expected, "node b's audit and search equal a fold of the log");
    // Every subscriber got every change, once, in log order (so in record
    // order); the roamer every change after it first subscribed, across the two nodes.
    let roamed: Vec<(u64, String)> = changes.iter().filter(|(p, _)| *p > roamer_start).cloned().collect();
    for (who, seen, expected) in
        [("the subscriber on node a", &seen_a, &changes), ("the subscriber on node b", &seen_b, &changes), ("the roamer", &roamer, &roamed)]
    {
        let started = Instant::now();
        loop {
            let got = seen.lock().unwrap().clone();
            if got.len() >= expected.len() || started.elapsed() > Duration::from_secs(20) {
                assert_eq!(&got, expected, "{who} got every ticket change once, in order");
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    // The topic carried events to both nodes in every phase: before the
    // faults, after the relay's takeover, and after the broker's restart.
    eprintln!(
        "events from the topic (node a, node b) at each phase: {topic_counts:?}; filled from the log: ({}, {}); {} ticket changes, head {head}",
        from_log(a).await,
        from_log(b).await,
        changes.len()
    );
    for phase in 1..topic_counts.len() {
        let (before, after) = (topic_counts[phase - 1], topic_counts[phase]);
        assert!(after.0 > before.0 && after.1 > before.1, "phase {phase}: both nodes received events from the topic ({before:?} -> {after:?})");
    }
    drop(relays);
    drop(broker);
    database.drop_now().await;
}
