//! Rebuild benchmark: folding a log of N record events into a fresh read
//! model, in process (query and audit models) and into PostgreSQL tables.
//! Run with `ops/bench rebuild`. `BENCH_EVENTS` (default 1,000,000) sets the
//! in-process log size; the PostgreSQL run uses a tenth of it (or `BENCH_PG_EVENTS`).

mod support;

use std::sync::Arc;
use std::time::Instant;

use commands::store::{open_embedded, open_postgres, EventStore, PostgresSettings};
use domain::event::codec::decode_envelope_payload;
use domain::event::{EventEnvelope, EventPayload};
use projections::audit_model::AuditModel;
use projections::rebuild::{fold_until, Progress};
use projections::{Projection, QueryModel};

use support::{fill, rss_mib};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Folds the whole log into a fresh model, the way a rebuild does (bulk load,
/// indexes built at the end). The first fold grows the heap (the kernel hands
/// out and zeroes fresh pages, see [`fresh_memory`]); three more run on the
/// memory the previous copy gave back, as in a process that rebuilt before.
async fn memory<M: projections::rebuild::MemoryModel>(store: &Arc<dyn EventStore>, label: &str) {
    let mut rates = Vec::new();
    let mut events = 0;
    let before = rss_mib();
    let mut grown = 0.0;
    for run in 0..4 {
        let mut copy = M::default();
        copy.begin_bulk();
        let (progress, _rx) = tokio::sync::watch::channel(Progress::default());
        let head = *store.head().borrow();
        let started = Instant::now();
        fold_until(store, &mut copy, head, started, &progress).await.expect("rebuild");
        copy.end_bulk();
        events = copy.checkpoint();
        rates.push(events as f64 / started.elapsed().as_secs_f64());
        if run == 0 {
            grown = (rss_mib() - before).max(0.0);
        }
    }
    let first = rates.remove(0);
    rates.sort_by(f64::total_cmp);
    println!(
        "  {label:<40} {events:>9} events  {:>9.0} events/s median of 3 (min {:.0}, max {:.0}); first fold (heap grew {grown:.0} MiB) {first:.0}",
        rates[1], rates[0], rates[2]
    );
}

/// What the kernel takes to hand out fresh memory here: 1 GiB allocated
/// zeroed (not yet backed) and one byte written per 4 KiB page.
fn fresh_memory() {
    let started = Instant::now();
    let mut block = vec![0u8; 1 << 30];
    for page in block.chunks_mut(4096) {
        page[0] = 1;
    }
    let faulted = started.elapsed().as_secs_f64();
    let started = Instant::now();
    block.fill(2);
    println!("  fresh memory: first touch of 1 GiB {faulted:.2}s (writing it again {:.2}s)", started.elapsed().as_secs_f64());
}

/// Where a fold's time goes: the whole log read, decoded and applied batch
/// by batch, one stage after the other, each stage timed on its own; then the
/// index build (the fold itself overlaps the first three stages).
async fn stages(store: &Arc<dyn EventStore>) {
    let upcasters = domain::event::registry();
    let mut model = QueryModel::default();
    model.begin_bulk();
    let (mut read, mut decode, mut apply) = (0.0, 0.0, 0.0);
    let mut after = 0;
    loop {
        let started = Instant::now();
        let batch = store.read_all(after, 20_000).await.expect("read");
        read += started.elapsed().as_secs_f64();
        let Some(last) = batch.last().map(|e| e.position) else { break };
        let started = Instant::now();
        let decoded: Vec<(EventEnvelope, EventPayload)> = batch
            .into_iter()
            .map(|e| {
                let payload = decode_envelope_payload(&e, upcasters).expect("decode");
                (e, payload)
            })
            .collect();
        decode += started.elapsed().as_secs_f64();
        let started = Instant::now();
        for (envelope, payload) in decoded {
            model.apply_owned(&envelope, payload);
        }
        apply += started.elapsed().as_secs_f64();
        after = last;
    }
    let started = Instant::now();
    model.end_bulk();
    let indexes = started.elapsed().as_secs_f64();
    println!("  stages (query model): read {read:.2}s, decode {decode:.2}s, apply rows {apply:.2}s, build indexes {indexes:.2}s");
}

#[tokio::main]
async fn main() {
    let events: u64 = std::env::var("BENCH_EVENTS").ok().and_then(|s| s.parse().ok()).unwrap_or(1_000_000);
    let dir = tempfile::tempdir().expect("temp dir");
    let store: Arc<dyn EventStore> = Arc::new(open_embedded(dir.path()).expect("open"));
    let started = Instant::now();
    fill(&store, events).await;
    println!("embedded log: {events} record events written in {:.1}s", started.elapsed().as_secs_f64());
    memory::<QueryModel>(&store, "rebuild: in-process query model").await;
    memory::<AuditModel>(&store, "rebuild: in-process audit model").await;
    stages(&store).await;
    fresh_memory();
    println!("  goal: >= 1000000 events/s into the embedded read model");

    let url = std::env::var("DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let mut settings = PostgresSettings::new(url.clone());
    settings.schema = Some(format!("bench_{}", uuid::Uuid::now_v7().simple()));
    let pg = open_postgres(&settings).await.expect("postgres (ops/test starts it)");
    let pool = pg.pool().clone();
    let pg_store: Arc<dyn EventStore> = Arc::new(pg);
    let pg_events = std::env::var("BENCH_PG_EVENTS").ok().and_then(|s| s.parse().ok()).unwrap_or((events / 10).max(1));
    fill(&pg_store, pg_events).await;
    let started = Instant::now();
    let mut after = 0;
    while let Some(last) = pg_store.read_all(after, 2_000).await.expect("read").last().map(|e| e.position) {
        after = last;
    }
    println!("  stage read (PostgreSQL log): {:.2}s", started.elapsed().as_secs_f64());
    let (mut projection, _reader) = projections::pg_model::open(pool).await.expect("read model");
    let started = Instant::now();
    let from = projection.checkpoint().await.expect("checkpoint");
    let head = *pg_store.head().borrow();
    let after = projections::rebuild::fold_projection(&pg_store, &mut projection, from, head, |_| {}).await.expect("fold");
    let elapsed = started.elapsed().as_secs_f64();
    println!("postgres: {after} events");
    println!("  {:<40} {after:>9} events  {elapsed:>7.2}s  {:>12.0} events/s", "rebuild: PostgreSQL query model", after as f64 / elapsed);
    println!("  goal: >= 100000 events/s into PostgreSQL read models");
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.expect("connect");
    tokio::spawn(connection);
    let _ = client.batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", settings.schema.unwrap_or_default())).await;
}
