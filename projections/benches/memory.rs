//! Memory per read model: opens an embedded log (`BENCH_LOG_DIR`) and folds it
//! into each in-process model in turn, printing how much the process grew.
//! Run with `ops/bench memory` after writing a log (e.g. with `ops/bench http`'s app).

use std::sync::{Arc, RwLock};

use commands::store::{open_embedded, EventStore};
use projections::rebuild::{load, MemoryModel};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib = status.lines().find_map(|l| l.strip_prefix("VmRSS:")).and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok());
    kib.unwrap_or(0) as f64 / 1024.0
}

async fn measure<M: MemoryModel>(store: &Arc<dyn EventStore>, label: &str) -> Arc<RwLock<M>> {
    let before = rss_mib();
    let model = Arc::new(RwLock::new(M::default()));
    load(store.clone(), model.clone()).await.expect("load");
    let events = model.read().expect("model").checkpoint();
    let grown = rss_mib() - before;
    println!("  {label:<16} +{grown:>7.1} MiB  {:>6.0} bytes per event", grown * 1024.0 * 1024.0 / events.max(1) as f64);
    model
}

#[tokio::main]
async fn main() {
    let dir = std::env::var("BENCH_LOG_DIR").expect("BENCH_LOG_DIR: a data dir with an events.log");
    let before = rss_mib();
    let store: Arc<dyn EventStore> = Arc::new(open_embedded(std::path::Path::new(&dir)).expect("open"));
    println!("  {:<16} +{:>7.1} MiB ({} events)", "embedded store", rss_mib() - before, *store.head().borrow());
    let _query = measure::<projections::QueryModel>(&store, "query").await;
    let _audit = measure::<projections::audit_model::AuditModel>(&store, "audit").await;
    let _search = measure::<projections::search::SearchModel>(&store, "search").await;
    let _analytics = measure::<projections::analytics::AnalyticsModel>(&store, "analytics").await;
}
