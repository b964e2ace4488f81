//! A job's schedule across two `objectstack serve` processes sharing one
//! PostgreSQL store: each tick is claimed by one process and its flow runs
//! once, while both run and after one of them is killed with SIGKILL (the
//! survivor goes on ticking; a run the dead one left half done is finished
//! by the next start). Lives beside the binary so that cargo builds it for
//! the test (`CARGO_BIN_EXE_objectstack`).

mod support;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use domain::time::Timestamp;
use serde_json::{json, Value as Json};
use support::{free_port, http, serve, text, Database};

const INTERVAL_MS: u64 = 200;

fn app() -> String {
    json!({
        "manifest": {"id": "com.example.jobs", "name": "Jobs"},
        "objects": [{"name": "stamp", "fields": {"note": {"type": "text"}}}],
        "flows": [{"name": "stamp_it", "label": "Stamp", "type": "autolaunched", "runAs": "system", "status": "active",
            "nodes": [{"id": "s", "type": "start"},
                      {"id": "w", "type": "create_record", "config": {"objectName": "stamp", "fields": {"note": "tick"}}},
                      {"id": "e", "type": "end"}],
            "edges": [{"source": "s", "target": "w"}, {"source": "w", "target": "e"}]}],
        "jobs": [{"id": "stamp", "name": "stamp", "schedule": {"type": "interval", "intervalMs": INTERVAL_MS}, "handler": "flow:stamp_it", "enabled": true}]
    })
    .to_string()
}

/// GET (the app declares no permissions: open, on 127.0.0.1): the body of a 200.
async fn get(port: u16, path: &str) -> Json {
    let (status, body) = http(port, "GET", path, None).await.expect(path);
    assert_eq!(status, 200, "{path}: {body}");
    body
}

/// The job runs this node completed itself (its `/metrics` counter).
async fn runs_done_here(port: u16) -> u64 {
    let metrics = text(port, "/metrics").await.expect("metrics");
    metrics
        .lines()
        .find_map(|line| line.strip_prefix("objectstack_process_steps_total{process=\"job:stamp\"} "))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or_else(|| panic!("no step counter for the job in:\n{metrics}"))
}

async fn executions(port: u16) -> Vec<Json> {
    get(port, "/api/v1/jobs/stamp/executions?limit=1000").await["data"]["executions"].as_array().cloned().unwrap_or_default()
}

async fn stamps(port: u16) -> usize {
    get(port, "/api/v1/data/stamp?top=1").await["data"]["total"].as_u64().expect("a total") as usize
}

#[tokio::test]
async fn each_tick_runs_once_across_two_server_processes() {
    let database = Database::create("job_nodes").await;
    let dir = tempfile::tempdir().unwrap();
    let app_path = dir.path().join("app.json");
    std::fs::write(&app_path, app()).unwrap();
    let store = vec!["--database-url".to_string(), database.url.clone()];
    let (port_a, port_b) = (free_port(), free_port());
    let a = serve(&app_path, &store, port_a).await;
    let b = serve(&app_path, &store, port_b).await;

    // Both race for every tick for a while.
    tokio::time::sleep(Duration::from_millis(INTERVAL_MS * 20)).await;
    let (done_a, done_b) = (runs_done_here(port_a).await, runs_done_here(port_b).await);
    // Every run counted above was claimed, and its tick was due, before now.
    // Node b learns of a's claims from the log a moment later: give it that
    // moment, then count the claims of ticks due by now (later ticks may have
    // been claimed meanwhile, but none of them was counted).
    let counted_at = Timestamp::from_micros(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_micros() as i64);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let due = |run: &Json| run["scheduledAt"].as_str().and_then(Timestamp::parse).is_some_and(|tick| tick <= counted_at);
    let claimed = executions(port_b).await.iter().filter(|run| due(run)).count() as u64;
    eprintln!("two nodes: {claimed} ticks claimed, {done_a} run by a, {done_b} by b");
    assert!(claimed >= 10, "the job ticked: {claimed}");
    assert!(done_a + done_b <= claimed, "a tick ran on both nodes: {done_a} + {done_b} > {claimed}");

    // One node dies; the other keeps ticking alone.
    drop(a);
    let before = executions(port_b).await.len();
    tokio::time::sleep(Duration::from_millis(INTERVAL_MS * 10)).await;
    assert!(executions(port_b).await.len() >= before + 5, "the survivor goes on ticking");
    drop(b);

    // A last start, with the job's next tick years away, finishes what a
    // killed node left running and claims nothing new. Then every tick was
    // claimed once, every run ended, and each run's flow wrote one record.
    std::fs::write(&app_path, app().replace(&format!("\"intervalMs\":{INTERVAL_MS}"), "\"intervalMs\":1099511627776")).unwrap();
    let port_c = free_port();
    let c = serve(&app_path, &store, port_c).await;
    let started = Instant::now();
    let runs = loop {
        let runs = executions(port_c).await;
        if runs.iter().all(|r| r["status"] != "running") {
            break runs;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "runs left running: {runs:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let ticks: Vec<&str> = runs.iter().map(|r| r["scheduledAt"].as_str().unwrap()).collect();
    let distinct: BTreeSet<&str> = ticks.iter().copied().collect();
    assert_eq!(distinct.len(), ticks.len(), "a tick was claimed twice: {ticks:?}");
    assert!(runs.iter().all(|r| r["status"] == "success" && r["manual"] == json!(false)), "{runs:?}");
    assert_eq!(stamps(port_c).await, runs.len(), "one record per run, none twice, none lost");
    drop(c);
    database.drop_now().await;
}
