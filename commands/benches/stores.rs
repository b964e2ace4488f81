//! Event store benchmark: appends/s (single and batched, 1 and 32 concurrent
//! writers) and replay events/s, on the embedded log and on PostgreSQL, plus
//! a raw binary COPY into the same table shape as the PostgreSQL baseline.
//!
//! Run with `ops/bench` (or `cargo bench -p commands --bench stores`).
//! `DATABASE_URL` selects the database (default: the local `postgres` database).
//! `BENCH_SCALE` (default 1.0) scales every event count.

use std::sync::Arc;
use std::time::{Duration, Instant};

use commands::store::{copy_into, open_embedded, open_postgres, AppendRequest, EventStore, ExpectedVersion, PostgresSettings, StreamAppend};
use domain::event::EventEnvelope;

fn event(n: u64) -> EventEnvelope {
    EventEnvelope {
        position: 0,
        stream: String::new(),
        stream_version: 0,
        event_id: *uuid::Uuid::now_v7().as_bytes(),
        event_type: "record.created".into(),
        schema_version: 1,
        occurred_at: 1_700_000_000_000_000 + n as i64,
        actor: "bench".into(),
        tenant: "default".into(),
        correlation_id: [1; 16],
        causation_id: None,
        idempotency_key: None,
        // About 100 bytes, like a small record.
        payload: format!("{n:0100}").into_bytes(),
    }
}

fn request(stream: &str, expected: u64, events: u64, first: u64) -> AppendRequest {
    AppendRequest {
        streams: vec![StreamAppend {
            stream: stream.into(),
            expected: ExpectedVersion::Exact(expected),
            events: (0..events).map(|i| event(first + i)).collect(),
        }],
        idempotency_key: None,
        unique: Default::default(),
    }
}

/// `writers` tasks each append `appends` requests of `batch` events to their own stream.
async fn appends(store: &Arc<dyn EventStore>, label: &str, writers: u64, appends: u64, batch: u64) -> f64 {
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..writers {
        let store = store.clone();
        let stream = format!("{label}-{w}/{}", uuid::Uuid::now_v7().simple());
        tasks.push(tokio::spawn(async move {
            for a in 0..appends {
                store.append(request(&stream, a * batch, batch, a * batch)).await.expect("append");
            }
        }));
    }
    for task in tasks {
        task.await.expect("writer task");
    }
    let events = writers * appends * batch;
    let rate = events as f64 / started.elapsed().as_secs_f64();
    println!("  {label:<34} {events:>9} events  {rate:>12.0} events/s");
    rate
}

async fn replay(store: &Arc<dyn EventStore>) -> f64 {
    let started = Instant::now();
    let mut after = 0;
    let mut count = 0u64;
    loop {
        let batch = store.read_all(after, 10_000).await.expect("read");
        let Some(last) = batch.last() else { break };
        after = last.position;
        count += batch.len() as u64;
    }
    let rate = count as f64 / started.elapsed().as_secs_f64();
    println!("  {:<34} {count:>9} events  {rate:>12.0} events/s", "replay (read_all, batches of 10k)");
    rate
}

fn scaled(n: u64) -> u64 {
    let scale: f64 = std::env::var("BENCH_SCALE").ok().and_then(|s| s.parse().ok()).unwrap_or(1.0);
    ((n as f64 * scale) as u64).max(1)
}

async fn suite(store: Arc<dyn EventStore>) -> (f64, f64) {
    appends(&store, "single, 1 writer", 1, scaled(500), 1).await;
    appends(&store, "single, 32 writers", 32, scaled(300), 1).await;
    let batched_one = appends(&store, "batched x1000, 1 writer", 1, scaled(200), 1000).await;
    let batched_many = appends(&store, "batched x1000, 32 writers", 32, scaled(10), 1000).await;
    let replayed = replay(&store).await;
    (batched_one.max(batched_many), replayed)
}

/// The baseline: raw binary COPY of the same rows into a table of the same shape.
async fn raw_copy(settings: &PostgresSettings, rows: u64) -> f64 {
    let mut config: tokio_postgres::Config = settings.url.parse().expect("url");
    if let Some(schema) = &settings.schema {
        config.options(format!("-c search_path={schema}"));
    }
    let (mut client, connection) = config.connect(tokio_postgres::NoTls).await.expect("connect");
    tokio::spawn(connection);
    client.batch_execute("CREATE TABLE IF NOT EXISTS copy_baseline (LIKE events INCLUDING ALL)").await.expect("table");
    let events: Vec<EventEnvelope> = (0..rows)
        .map(|n| {
            let mut e = event(n);
            e.position = n + 1;
            e.stream = format!("copy-{}/x", n / 1000);
            e.stream_version = n % 1000 + 1;
            e
        })
        .collect();
    let refs: Vec<&EventEnvelope> = events.iter().collect();
    let started = Instant::now();
    let tx = client.transaction().await.expect("tx");
    copy_into(&tx, "copy_baseline", &refs).await.expect("copy");
    tx.commit().await.expect("commit");
    let rate = rows as f64 / started.elapsed().as_secs_f64();
    println!("  {:<34} {rows:>9} events  {rate:>12.0} events/s", "raw binary COPY (baseline)");
    rate
}

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().expect("temp dir");
    println!("embedded log ({}):", dir.path().display());
    let store: Arc<dyn EventStore> = Arc::new(open_embedded(dir.path()).expect("open"));
    let (batched, replayed) = suite(store).await;
    println!("  targets: batched >= 100000 events/s: {}; replay >= 1000000 events/s: {}", verdict(batched >= 100_000.0), verdict(replayed >= 1_000_000.0));

    let url = std::env::var("DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let mut settings = PostgresSettings::new(url);
    settings.schema = Some(format!("bench_{}", uuid::Uuid::now_v7().simple()));
    println!("postgres ({}):", settings.schema.as_deref().unwrap_or_default());
    let store: Arc<dyn EventStore> = Arc::new(open_postgres(&settings).await.expect("postgres (is it running? ops/test starts it)"));
    let (batched, _) = suite(store).await;
    let baseline = raw_copy(&settings, scaled(200_000)).await;
    println!("  target: batched appends >= 50% of raw COPY: {:.0}% {}", 100.0 * batched / baseline, verdict(batched >= 0.5 * baseline));
    drop_schema(&settings).await;
    tokio::time::sleep(Duration::from_millis(10)).await;
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "met"
    } else {
        "NOT MET"
    }
}

async fn drop_schema(settings: &PostgresSettings) {
    let (client, connection) = tokio_postgres::connect(&settings.url, tokio_postgres::NoTls).await.expect("connect");
    tokio::spawn(connection);
    if let Some(schema) = &settings.schema {
        let _ = client.batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE")).await;
    }
}
