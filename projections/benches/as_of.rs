//! As-of read benchmark: a list as of a past position (a fold of the log
//! from its beginning, a fold from the nearest snapshot the live model kept,
//! then the same moment again from the kept fold) and one record as of the
//! same moment (its own stream), at 100k and 1M events on the embedded store,
//! for two logs: creates only (the data grows with the log), and 10,000
//! records then updates of them (a log far longer than its data).
//! Run with `ops/bench as-of`; `BENCH_SIZES` (default "100000 1000000").
//! Reports the median and the spread of five runs.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use commands::store::{open_embedded, EventStore};
use domain::event::codec::decode_envelope_payload;
use projections::as_of::{record_as_of, AsOf, AsOfFolds, StreamSnapshots};
use projections::history::History;
use projections::QueryModel;

use support::{fill, fill_updates};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn summary(label: &str, mut times: Vec<Duration>) {
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!("{label:<40} median {:>9.3} ms   min {:>9.3}   max {:>9.3}", ms(times[times.len() / 2]), ms(times[0]), ms(times[times.len() - 1]));
}

#[tokio::main]
async fn main() {
    let sizes: Vec<u64> = std::env::var("BENCH_SIZES").unwrap_or_else(|_| "100000 1000000".into()).split_whitespace().filter_map(|s| s.parse().ok()).collect();
    for (events, updates) in sizes.iter().flat_map(|events| [(*events, false), (*events, true)]) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store: Arc<dyn EventStore> = Arc::new(open_embedded(dir.path()).expect("store"));
        if updates {
            fill_updates(&store, 10_000, events).await;
        } else {
            fill(&store, events).await;
        }
        // The live model, as the realtime hub's: it keeps snapshots as it folds.
        let history = Arc::new(History::default());
        let mut live = QueryModel::default();
        live.set_history(history.clone());
        let mut after = 0;
        loop {
            let batch = store.read_all(after, 10_000).await.expect("read");
            let Some(last) = batch.last() else { break };
            after = last.position;
            for envelope in &batch {
                live.apply(envelope, &decode_envelope_payload(envelope, domain::event::registry()).expect("decode"));
            }
            live.keep_history();
        }
        let object =
            domain::metadata::ObjectDef::from_json(&serde_json::json!({"name": "item", "fields": {"title": {"type": "text"}, "amount": {"type": "number"}}}))
                .expect("definition");
        let moment = AsOf::Position(events / 2);
        // What the hub's model takes a snapshot in (under its read lock: writers wait).
        let taking: Vec<Duration> = (0..5)
            .map(|_| {
                let started = Instant::now();
                drop(live.snapshot());
                started.elapsed()
            })
            .collect();
        let (mut cold, mut snapshot, mut warm, mut record) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for run in 0..5u64 {
            let folds = AsOfFolds::default();
            let started = Instant::now();
            folds.model(&store, AsOf::Position(events / 2 - run), Duration::from_secs(60)).await.expect("fold").expect("a turn");
            cold.push(started.elapsed());
            let started = Instant::now();
            AsOfFolds::new(history.clone()).model(&store, AsOf::Position(events / 2 - run), Duration::from_secs(60)).await.expect("fold").expect("a turn");
            snapshot.push(started.elapsed());
            let started = Instant::now();
            folds.model(&store, AsOf::Position(events / 2 - run), Duration::from_secs(60)).await.expect("fold").expect("a turn");
            warm.push(started.elapsed());
            let snapshots = StreamSnapshots::default();
            let started = Instant::now();
            record_as_of(&store, &snapshots, &object, &format!("i{:08}", run * 7), moment).await.expect("record");
            record.push(started.elapsed());
        }
        let log = if updates { "10,000 records then updates" } else { "creates" };
        println!("as-of reads over {events} events ({log}; {} snapshots kept):", history.kept().0);
        summary("  list: fold of the log from its start", cold);
        summary("  list: fold from the nearest snapshot", snapshot);
        summary("  list: the same moment again (kept)", warm);
        summary("  one record (its own stream)", record);
        summary("  taking a snapshot of the live model", taking);
    }
}
