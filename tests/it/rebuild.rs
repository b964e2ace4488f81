//! Live rebuilds: a projection rebuilt from the log while writes go on is
//! swapped in without losing or doubling an event, and equals a fresh fold.

use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use serde_json::{json, Value as Json};

use crate::rest::api;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rebuild_under_write_load_loses_nothing_embedded() {
    rebuild_under_write_load_loses_nothing(false).await;
}

/// On PostgreSQL the query model is rebuilt in a schema of its own and swapped in.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rebuild_under_write_load_loses_nothing_postgres() {
    rebuild_under_write_load_loses_nothing(true).await;
}

async fn rebuild_under_write_load_loses_nothing(postgres: bool) {
    let api = Arc::new(api(postgres).await);
    let progress = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let writer = {
        let api = api.clone();
        let progress = progress.clone();
        tokio::spawn(async move {
            let mut created = 0;
            for i in 0..400 {
                progress.store(i, std::sync::atomic::Ordering::Relaxed);
                let reply = api.call("POST", "/api/v1/data/order", Some(json!({"title": format!("load {i:03}"), "amount": i})), &[]).await;
                assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
                created += 1;
                if i % 50 == 0 {
                    tokio::task::yield_now().await;
                }
            }
            created
        })
    };
    // Start the rebuilds with a log worth folding, while the writes go on.
    while progress.load(std::sync::atomic::Ordering::Relaxed) < 150 {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    // One rebuild at a time (`one_rebuild_at_a_time` tests the refusals): each
    // is started when the one before is swapped in, as `projections rebuild --all` does.
    // On the embedded store the models have snapshots: a rebuild removes its
    // model's, so that a start does not bring back the state it replaced.
    let snapshots = api.system.model_snapshots.clone();
    if let Some(dir) = &snapshots {
        let store = api.system.commands.store();
        projections::snapshot::save(dir, store, &api.system.reader.memory_model().unwrap()).await.unwrap();
        projections::snapshot::save(dir, store, &api.system.audit_reader.memory_model().unwrap()).await.unwrap();
        projections::snapshot::save(dir, store, &api.system.analytics_reader.memory_model().unwrap()).await.unwrap();
    }
    assert_eq!(snapshots.is_some(), !postgres);
    for name in ["query", "audit", "search", "analytics"] {
        if let Some(dir) = &snapshots {
            assert_eq!(dir.path_of(name).exists(), name != "search", "{name}");
        }
        let started = api.call("POST", &format!("/api/v1/projections/{name}/rebuild"), None, &[]).await;
        if let Some(dir) = &snapshots {
            assert!(!dir.path_of(name).exists(), "the rebuild of {name} removed its snapshot");
        }
        assert_eq!(started.status, StatusCode::ACCEPTED, "{}", started.body);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let status = api.call("GET", &format!("/api/v1/projections/{name}"), None, &[]).await;
            if status.body["data"]["rebuild"]["done"] == json!(true) {
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "rebuild did not finish: {}", status.body);
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    let query_swaps = 1;
    let created = writer.await.unwrap();
    assert_eq!(created, 400);

    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let status = api.call("GET", "/api/v1/projections", None, &[]).await;
        let all: Vec<Json> = status.body["data"]["projections"].as_array().unwrap().iter().filter(|p| p["name"] != json!("realtime")).cloned().collect();
        if all.iter().all(|p| p["state"] == json!("live") && p["rebuild"]["done"] == json!(true)) {
            for p in &all {
                let swaps = if p["name"] == json!("query") { query_swaps } else { 1 };
                assert_eq!(p["version"], json!(1 + swaps), "{p}");
                assert_eq!(p["lag"], json!(0));
            }
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "rebuild did not finish: {}", status.body);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let live = api.call("GET", "/api/v1/data/order?top=1000&sort=title", None, &[]).await;
    let head: u64 = live.headers["x-log-position"].to_str().unwrap().parse().unwrap();
    assert_eq!(live.body["data"]["total"], json!(400), "every create is in the rebuilt model, once");
    let folded = api.call("GET", &format!("/api/v1/data/order?top=1000&sort=title&asOf={head}"), None, &[]).await;
    assert_eq!(live.body["data"]["records"], folded.body["data"]["records"], "the rebuilt model equals a fresh fold of the log");
    let audit = api.call("GET", "/api/v1/audit?object=order&eventType=data.create&limit=1", None, &[]).await;
    assert_eq!(audit.body["data"]["total"], json!(400));
    let searched = api.call("GET", "/api/v1/search?q=load&object=order&limit=1", None, &[]).await;
    assert_eq!(searched.body["data"]["totalHits"], json!(400), "the rebuilt search index has every record once: {}", searched.body);
    let metrics = api.call("GET", "/metrics", None, &[]).await;
    let text = metrics.body["raw"].as_str().unwrap_or_default().to_string();
    assert!(text.contains("objectstack_projection_lag{projection=\"query\"} 0"), "{text}");
    assert!(text.contains(&format!("objectstack_log_head {head}")), "{text}");
    let unknown = api.call("POST", "/api/v1/projections/nothing/rebuild", None, &[]).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
}

/// With the server stopped, the PostgreSQL query and audit models are
/// emptied and folded again from the log; a server started afterwards
/// answers as before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_read_model_rebuilds_offline() {
    let settings = crate::common::pg_settings();
    let before = {
        let api = crate::rest::api_on(gateway::config::Storage::Postgres(settings.clone())).await;
        for i in 0..30 {
            api.call("POST", "/api/v1/data/order", Some(json!({"title": format!("o{i:02}"), "amount": i})), &[]).await;
        }
        api.call("PATCH", "/api/v1/data/order/nope", Some(json!({"title": "x"})), &[]).await;
        let list = api.call("GET", "/api/v1/data/order?sort=title&top=100", None, &[]).await;
        let trail = api.call("GET", "/api/v1/audit?object=order&limit=100", None, &[]).await;
        assert_eq!(trail.body["data"]["total"], json!(30), "{}", trail.body);
        (list.body["data"]["records"].clone(), trail.body["data"].clone())
    };
    let rebuilt = gateway::admin::rebuild_postgres_offline(&settings).await.unwrap();
    assert!(rebuilt >= 30);
    let api = crate::rest::api_on(gateway::config::Storage::Postgres(settings)).await;
    let after = api.call("GET", "/api/v1/data/order?sort=title&top=100", None, &[]).await;
    assert_eq!(after.body["data"]["records"], before.0);
    let trail = api.call("GET", "/api/v1/audit?object=order&limit=100", None, &[]).await;
    assert_eq!(trail.body["data"], before.1, "the audit trail in PostgreSQL is folded again to the same entries");
    for name in ["query", "audit"] {
        let status = api.call("GET", &format!("/api/v1/projections/{name}"), None, &[]).await;
        assert_eq!(status.body["data"]["lag"], json!(0));
        assert_eq!(status.body["data"]["store"], json!("postgres"));
    }
}
