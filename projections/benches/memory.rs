//! Memory per read model: writes `BENCH_RECORDS` (default 100,000) records of
//! the HTTP benchmark's `item` object through the command service into a fresh
//! embedded log (or opens the one in `BENCH_LOG_DIR`), then folds the log into
//! each in-process model, each in a fresh process of its own, and prints how
//! much that process grew, less what a fold that keeps nothing grows it by:
//! its resident memory, and its live heap (bytes allocated and not freed,
//! counted by the allocator: the same on every run, where the resident
//! figure moves by a hundred bytes per event with when vectors grew and what
//! the allocator kept). Run with `ops/bench memory`.

use std::sync::{Arc, RwLock};

use commands::store::{open_embedded, EventStore};
use projections::rebuild::{load, MemoryModel};

mod support;

use support::rss_mib;

/// mimalloc, counting the bytes allocated and not yet freed (`cap`, which
/// does the counting without any unsafe code of ours).
#[global_allocator]
static ALLOCATOR: cap::Cap<mimalloc::MiMalloc> = cap::Cap::new(mimalloc::MiMalloc, usize::MAX);

/// The live heap, in MiB.
fn heap_mib() -> f64 {
    ALLOCATOR.allocated() as f64 / 1048576.0
}

/// Loads one model and prints `label grown-MiB events heap-grown-MiB` for the parent process.
async fn measure<M: MemoryModel>(store: &Arc<dyn EventStore>, label: &str) {
    let (before, heap_before) = (rss_mib(), heap_mib());
    let model = Arc::new(RwLock::new(M::default()));
    load(store.clone(), model.clone()).await.expect("load");
    let events = model.read().expect("model").checkpoint();
    println!("{label} {} {events} {}", rss_mib() - before, heap_mib() - heap_before);
}

/// Writes `records` items the way the server does (32 writers at a time).
async fn write(dir: &std::path::Path, records: usize) {
    use commands::service::{Command, CommandMeta, CommandService};
    let store: Arc<dyn EventStore> = Arc::new(open_embedded(dir).expect("open"));
    let service = Arc::new(CommandService::start(store).await.expect("start"));
    let app: serde_json::Value = serde_json::from_str(include_str!("../../ops/bench-peers/bench-app.json")).expect("bench app");
    let definition = app["objects"][0].clone();
    let put = domain::metadata::MetadataCommand::put_one(definition, None);
    service.execute(Command::Metadata(put), CommandMeta::system()).await.expect("define");
    let mut writers = tokio::task::JoinSet::new();
    for writer in 0..32 {
        let service = service.clone();
        writers.spawn(async move {
            for n in (writer..records).step_by(32) {
                let data = serde_json::json!({"title": format!("bench {n}"), "status": if n % 2 == 0 { "open" } else { "done" }, "amount": n % 10_000, "category": "c1"});
                let data = data.as_object().expect("object").clone();
                service.execute(Command::Create { object: "item".into(), id: None, data }, CommandMeta::system()).await.expect("create");
            }
        });
    }
    while writers.join_next().await.is_some() {}
}

/// Keeps nothing: what a fold itself leaves behind (buffers, threads), taken off the others.
#[derive(Default)]
struct Nothing(u64);

impl MemoryModel for Nothing {
    fn checkpoint(&self) -> u64 {
        self.0
    }
    fn apply_ref(&mut self, envelope: &domain::event::EventEnvelope, _: &domain::event::EventPayload) {
        self.0 = envelope.position;
    }
    fn advance_to(&mut self, position: u64) {
        self.0 = self.0.max(position);
    }
    fn summary(&self) -> Vec<(String, usize)> {
        Vec::new()
    }
}

const MODELS: [&str; 6] = ["nothing", "query", "audit", "search", "analytics", "write"];

/// Starts a command service on the log (its write model folded from it) and prints as [`measure`] does.
async fn measure_write_model(store: &Arc<dyn EventStore>) {
    let (before, heap_before) = (rss_mib(), heap_mib());
    let service = commands::service::CommandService::start(store.clone()).await.expect("start");
    let events = *store.head().borrow();
    println!("write {} {events} {}", rss_mib() - before, heap_mib() - heap_before);
    drop(service);
}

#[tokio::main]
async fn main() {
    if let (Ok(dir), Ok(records)) = (std::env::var("BENCH_WRITE_DIR"), std::env::var("BENCH_RECORDS")) {
        // The writer's own process: its command service holds the log open
        // until the process ends, and the measuring processes need it.
        write(std::path::Path::new(&dir), records.parse().expect("BENCH_RECORDS")).await;
        return;
    }
    let (Ok(dir), Ok(model)) = (std::env::var("BENCH_LOG_DIR"), std::env::var("BENCH_MODEL")) else {
        // Write a log (unless given one), then measure each model in a fresh
        // process of its own: a heap that has grown and shrunk hides growth.
        let fresh = tempfile::tempdir().expect("temp dir");
        let dir = match std::env::var("BENCH_LOG_DIR") {
            Ok(dir) => std::path::PathBuf::from(dir),
            Err(_) => {
                let records = std::env::var("BENCH_RECORDS").ok().and_then(|s| s.parse().ok()).unwrap_or(100_000);
                let started = std::time::Instant::now();
                let status = std::process::Command::new(std::env::current_exe().expect("this program"))
                    .env("BENCH_WRITE_DIR", fresh.path())
                    .env("BENCH_RECORDS", records.to_string())
                    .status()
                    .expect("writing process");
                assert!(status.success(), "the writing process failed");
                println!("wrote {records} records through the command service in {:.1}s", started.elapsed().as_secs_f64());
                fresh.path().to_path_buf()
            }
        };
        let (mut fold, mut fold_heap) = (0.0, 0.0);
        for model in MODELS {
            let output = std::process::Command::new(std::env::current_exe().expect("this program"))
                .env("BENCH_LOG_DIR", &dir)
                .env("BENCH_MODEL", model)
                .output()
                .expect("measuring process");
            assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
            for line in String::from_utf8_lossy(&output.stdout).lines() {
                let fields: Vec<&str> = line.split(' ').collect();
                let number = |n: usize| fields.get(n).and_then(|v| v.parse::<f64>().ok());
                let (Some(grown), Some(events), Some(heap)) = (number(1), number(2), number(3)) else {
                    continue;
                };
                let per_event = |mib: f64| mib * 1048576.0 / events.max(1.0);
                if fields[0] == "nothing" {
                    (fold, fold_heap) = (grown, heap);
                    println!(
                        "  {:<10} {grown:>7.1} MiB resident, {heap:>7.1} MiB heap  (a fold that keeps nothing: buffers, threads; taken off the models below)",
                        "fold"
                    );
                } else if fields[0] == "store" {
                    println!(
                        "  {:<10} {grown:>7.1} MiB resident, {heap:>7.1} MiB heap  {:>5.0} / {:>5.0} bytes per event ({events} events)",
                        "log index",
                        per_event(grown),
                        per_event(heap)
                    );
                } else {
                    let (own, own_heap) = (grown - fold, heap - fold_heap);
                    println!(
                        "  {:<10} {own:>7.1} MiB resident, {own_heap:>7.1} MiB heap  {:>5.0} / {:>5.0} bytes per event (resident / heap)",
                        fields[0],
                        per_event(own),
                        per_event(own_heap)
                    );
                }
            }
        }
        return;
    };
    let (before, heap_before) = (rss_mib(), heap_mib());
    let store: Arc<dyn EventStore> = Arc::new(open_embedded(std::path::Path::new(&dir)).expect("open"));
    if model == MODELS[0] {
        println!("store {} {} {}", rss_mib() - before, *store.head().borrow(), heap_mib() - heap_before);
    }
    match model.as_str() {
        "nothing" => measure::<Nothing>(&store, "nothing").await,
        "query" => measure::<projections::QueryModel>(&store, "query").await,
        "audit" => measure::<projections::audit_model::AuditModel>(&store, "audit").await,
        "search" => measure::<projections::search::SearchModel>(&store, "search").await,
        "analytics" => measure::<projections::analytics::AnalyticsModel>(&store, "analytics").await,
        "write" => measure_write_model(&store).await,
        other => panic!("unknown model '{other}' (known: {MODELS:?})"),
    }
}
