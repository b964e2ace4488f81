//! As-of read benchmark: a list as of a past position (a fold of the log,
//! then the same moment again from the kept fold) and one record as of the
//! same moment (its own stream), at 100k and 1M events on the embedded store.
//! Run with `ops/bench as-of`; `BENCH_SIZES` (default "100000 1000000").
//! Reports the median and the spread of five runs.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use commands::store::{open_embedded, EventStore};
use projections::as_of::{record_as_of, AsOf, AsOfFolds, StreamSnapshots};

use support::fill;

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
    for events in sizes {
        let dir = tempfile::tempdir().expect("tempdir");
        let store: Arc<dyn EventStore> = Arc::new(open_embedded(dir.path()).expect("store"));
        fill(&store, events).await;
        let object =
            domain::metadata::ObjectDef::from_json(&serde_json::json!({"name": "item", "fields": {"title": {"type": "text"}, "amount": {"type": "number"}}}))
                .expect("definition");
        let moment = AsOf::Position(events / 2);
        let (mut cold, mut warm, mut record) = (Vec::new(), Vec::new(), Vec::new());
        for run in 0..5u64 {
            let folds = AsOfFolds::default();
            let started = Instant::now();
            folds.model(&store, AsOf::Position(events / 2 - run), Duration::from_secs(60)).await.expect("fold").expect("a turn");
            cold.push(started.elapsed());
            let started = Instant::now();
            folds.model(&store, AsOf::Position(events / 2 - run), Duration::from_secs(60)).await.expect("fold").expect("a turn");
            warm.push(started.elapsed());
            let snapshots = StreamSnapshots::default();
            let started = Instant::now();
            record_as_of(&store, &snapshots, &object, &format!("i{:08}", run * 7), moment).await.expect("record");
            record.push(started.elapsed());
        }
        println!("as-of reads over {events} events:");
        summary("  list: fold of the log (first time)", cold);
        summary("  list: the same moment again (kept)", warm);
        summary("  one record (its own stream)", record);
    }
}
