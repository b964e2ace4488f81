//! The server killed with SIGKILL at random moments while callers write,
//! then started again, many times, on both stores (the real binary, as
//! `serve` runs it): no acknowledged write is lost, every workflow rule's
//! field is in the write that fired it, every record_change flow run
//! happens exactly once, and a
//! webhook receiver on 127.0.0.1 gets every change at least once (one
//! delivery id per change, nothing it cannot match), and search finds
//! exactly the tickets the query model holds. A clean stop commits the
//! search index and saves the in-process models at the log's head, and a
//! start from them serves the same records, trail and counts. Lives beside the
//! binary so that cargo builds it for the test (`CARGO_BIN_EXE_objectstack`).

mod support;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::{free_port, http, serve, Database};

use serde_json::{json, Value as Json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn app(hook: &str) -> String {
    json!({
        "manifest": {"id": "com.example.kill", "name": "Kill"},
        "objects": [
            {"name": "ticket", "fields": {"title": {"type": "text", "required": true}, "priority": {"type": "text"}, "escalated": {"type": "boolean", "readonly": true}}},
            {"name": "note", "fields": {"ticket": {"type": "lookup", "reference": "ticket"}, "body": {"type": "text"}}}
        ],
        "workflows": [{"name": "escalate", "objectName": "ticket", "triggerType": "on_create", "criteria": "priority = \"high\"",
            "actions": [{"name": "flag", "type": "field_update", "field": "escalated", "value": true}]}],
        "flows": [{"name": "note_it", "label": "Note", "type": "record_change", "runAs": "system", "status": "active",
            "nodes": [{"id": "s", "type": "start", "config": {"objectName": "ticket", "triggerType": "on_create", "criteria": "record.priority = \"high\""}},
                      {"id": "n", "type": "create_record", "config": {"objectName": "note", "fields": {"ticket": "=record.id", "body": "noted"}}},
                      {"id": "e", "type": "end"}],
            "edges": [{"source": "s", "target": "n"}, {"source": "n", "target": "e"}]}],
        "webhooks": [{"name": "tickets", "object": "ticket", "url": hook, "method": "POST", "includeSession": false, "timeoutMs": 2000, "isActive": true,
            "retryPolicy": {"maxRetries": 10, "backoffStrategy": "fixed", "initialDelayMs": 100, "maxDelayMs": 1000}}]
    })
    .to_string()
}

/// A receiver on 127.0.0.1 that keeps every delivery id it gets.
async fn receiver() -> (String, Arc<Mutex<Vec<String>>>) {
    let seen: Arc<Mutex<Vec<String>>> = Default::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://127.0.0.1:{}/hook", listener.local_addr().unwrap().port());
    let kept = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else { return };
            let kept = kept.clone();
            tokio::spawn(async move {
                let mut buffer = Vec::new();
                let mut chunk = [0u8; 8192];
                // Read the head, then the body its length says.
                loop {
                    let Ok(n) = stream.read(&mut chunk).await else { return };
                    if n == 0 {
                        return;
                    }
                    buffer.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buffer).to_string();
                    let Some((head, body)) = text.split_once("\r\n\r\n") else { continue };
                    let length: usize =
                        head.lines().find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap_or(0))).unwrap_or(0);
                    if body.len() < length {
                        continue;
                    }
                    if let Some(id) = head.lines().find_map(|l| l.to_ascii_lowercase().strip_prefix("x-objectstack-delivery:").map(|v| v.trim().to_string())) {
                        kept.lock().unwrap().push(id);
                    }
                    let _ = stream.write_all(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n").await;
                    buffer.clear();
                }
            });
        }
    });
    (url, seen)
}

async fn kills(store: Vec<String>) {
    let (hook, seen) = receiver().await;
    let dir = tempfile::tempdir().unwrap();
    let app_path = dir.path().join("app.json");
    std::fs::write(&app_path, app(&hook)).unwrap();
    let mut seed = 0x9e37_79b9_7f4a_7c15u64 ^ store.len() as u64;
    let mut random = move |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    let mut acknowledged = Vec::new();
    for round in 0..8 {
        let port = free_port();
        let server = serve(&app_path, &store, port).await;
        let writes = async {
            for i in 0.. {
                let priority = if i % 3 == 0 { "low" } else { "high" };
                match http(port, "POST", "/api/v1/data/ticket", Some(&json!({"title": format!("r{round}-{i}"), "priority": priority}))).await {
                    Some((201, body)) => acknowledged.push(body["data"]["id"].as_str().unwrap_or_default().to_string()),
                    Some(_) | None => break,
                }
            }
        };
        let kill_after = Duration::from_millis(50 + random(400));
        let _ = tokio::time::timeout(kill_after, writes).await;
        drop(server); // SIGKILL, then reaped
    }
    let port = free_port();
    let _server = serve(&app_path, &store, port).await;
    let started = Instant::now();
    let settled = loop {
        let (_, tickets) = http(port, "GET", "/api/v1/data/ticket?top=10000", None).await.unwrap();
        let (_, notes) = http(port, "GET", "/api/v1/data/note?top=10000", None).await.unwrap();
        let tickets = tickets["data"]["records"].as_array().cloned().unwrap_or_default();
        let notes = notes["data"]["records"].as_array().cloned().unwrap_or_default();
        let high: Vec<&Json> = tickets.iter().filter(|t| t["priority"] == "high").collect();
        let done = high.iter().all(|t| t["escalated"] == json!(true)) && notes.len() >= high.len();
        if done || started.elapsed() > Duration::from_secs(30) {
            break (tickets, notes);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let (tickets, notes) = settled;
    let ids: BTreeSet<String> = tickets.iter().map(|t| t["id"].as_str().unwrap().to_string()).collect();
    assert!(acknowledged.len() >= 8, "writes were acknowledged: {}", acknowledged.len());
    for id in &acknowledged {
        assert!(ids.contains(id), "an acknowledged create was lost: {id}");
    }
    for ticket in tickets.iter().filter(|t| t["priority"] == "high") {
        let id = ticket["id"].as_str().unwrap();
        assert_eq!(ticket["escalated"], json!(true), "the rule ran for {id}");
        let (_, history) = http(port, "GET", &format!("/api/v1/data/ticket/{id}/history"), None).await.unwrap();
        assert_eq!(history["data"]["total"], json!(1), "the create alone, the rule's field in it, for {id}: {history}");
        assert_eq!(notes.iter().filter(|n| n["ticket"] == json!(id)).count(), 1, "one note for {id}");
    }
    // Search agrees with the query model: its index is on disk (beside the
    // embedded log; in `--search-dir` with PostgreSQL), opened after each kill
    // at its last commit and caught up from the log.
    for round in 0..8 {
        let expected = tickets.iter().filter(|t| t["title"].as_str().is_some_and(|title| title.starts_with(&format!("r{round}-")))).count();
        let (_, found) = http(port, "GET", &format!("/api/v1/search?q=r{round}&object=ticket&fuzzy=false&limit=1"), None).await.unwrap();
        assert_eq!(found["data"]["totalHits"], json!(expected), "search for the tickets of round {round}: {found}");
    }
    // Every change of a ticket reaches the receiver, under its own id.
    let mut expected = BTreeSet::new();
    for offset in (0..).step_by(500) {
        let (_, trail) = http(port, "GET", &format!("/api/v1/audit?object=ticket&limit=500&offset={offset}"), None).await.unwrap();
        let entries = trail["data"]["entries"].as_array().unwrap_or_else(|| panic!("the audit trail: {trail}")).clone();
        expected.extend(entries.iter().map(|e| format!("{}.tickets", e["metadata"]["eventId"].as_str().unwrap())));
        if entries.len() < 500 {
            break;
        }
    }
    eprintln!(
        "{} creates acknowledged over 8 kills, {} tickets, {} notes, {} changes to deliver",
        acknowledged.len(),
        tickets.len(),
        notes.len(),
        expected.len()
    );
    let started = Instant::now();
    loop {
        let got: BTreeSet<String> = seen.lock().unwrap().iter().cloned().collect();
        assert!(got.is_subset(&expected), "deliveries of changes that never happened: {:?}", got.difference(&expected).collect::<Vec<_>>());
        if got == expected {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "{} of {} changes delivered", got.len(), expected.len());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn killed_at_random_embedded() {
    let data = tempfile::tempdir().unwrap();
    kills(vec!["--data-dir".into(), data.path().display().to_string()]).await;
}

#[tokio::test]
async fn killed_at_random_postgres() {
    let database = Database::create("kill").await;
    let search = tempfile::tempdir().unwrap();
    kills(vec!["--database-url".into(), database.url.clone(), "--search-dir".into(), search.path().display().to_string()]).await;
    database.drop_now().await;
}

/// A server's data directory after three tickets and a clean stop.
struct Stopped {
    data: tempfile::TempDir,
    /// Holds the app file.
    dir: tempfile::TempDir,
    app_path: std::path::PathBuf,
    /// `serve`'s store arguments for `data`.
    args: [String; 2],
}

/// Serves the app on a fresh data directory, creates three tickets titled
/// `{prefix}-0..2`, and stops the server with SIGTERM (it must exit cleanly).
async fn written_and_stopped(prefix: &str) -> Stopped {
    let data = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let app_path = dir.path().join("app.json");
    std::fs::write(&app_path, app("http://127.0.0.1:9/hook")).unwrap();
    let port = free_port();
    let args = ["--data-dir".into(), data.path().display().to_string()];
    let mut server = serve(&app_path, &args, port).await;
    for i in 0..3 {
        let (status, _) = http(port, "POST", "/api/v1/data/ticket", Some(&json!({"title": format!("{prefix}-{i}"), "priority": "low"}))).await.unwrap();
        assert_eq!(status, 201);
    }
    let stopped = std::process::Command::new("kill").args(["-TERM", &server.child.id().to_string()]).status().unwrap();
    assert!(stopped.success());
    let status = server.child.wait().unwrap();
    assert!(status.success(), "the server stopped cleanly: {status}");
    Stopped { data, dir, app_path, args }
}

/// A clean stop (SIGTERM) commits the search index at the log's head, so the
/// next start indexes nothing again.
#[tokio::test]
async fn a_clean_stop_commits_the_search_index_and_saves_the_models() {
    let Stopped { data, dir: _dir, app_path, args } = written_and_stopped("stop").await;
    let store = commands::store::open_embedded(data.path()).unwrap();
    let head = *commands::store::EventStore::head(&store).borrow();
    drop(store);
    let index = projections::search::SearchModel::open(&data.path().join("search")).unwrap();
    assert!(head > 0);
    assert_eq!(index.checkpoint(), head, "the index was committed at the log's head");
    drop(index);
    let saved = commands::snapshot::SnapshotDir::new(data.path().join("snapshots"));
    let at = (
        projections::snapshot::saved_at::<projections::QueryModel>(&saved),
        projections::snapshot::saved_at::<projections::audit_model::AuditModel>(&saved),
        projections::snapshot::saved_at::<projections::analytics::AnalyticsModel>(&saved),
    );
    assert_eq!(at, (Some(head), Some(head), Some(head)), "every model was saved at the log's head");
    assert_eq!(commands::service::CommandService::snapshot_saved_at(&saved), Some(head), "the write model was saved at the log's head");

    // Started again from them: the same records, trail and counts.
    let port = free_port();
    let _server = serve(&app_path, &args, port).await;
    let (status, list) = http(port, "GET", "/api/v1/data/ticket?sort=title", None).await.unwrap();
    assert_eq!(status, 200, "{list}");
    let titles: Vec<&str> = list["data"]["records"].as_array().unwrap().iter().map(|r| r["title"].as_str().unwrap()).collect();
    assert_eq!(titles, ["stop-0", "stop-1", "stop-2"], "{list}");
    let (status, trail) = http(port, "GET", "/api/v1/audit?object=ticket", None).await.unwrap();
    assert_eq!(status, 200, "{trail}");
    assert_eq!(trail["data"]["total"], json!(3), "{trail}");
    let query = json!({"cube": "ticket", "measures": ["count"]});
    let (status, counted) = http(port, "POST", "/api/v1/analytics/query", Some(&query)).await.unwrap();
    assert_eq!(status, 200, "{counted}");
    assert_eq!(counted["data"]["rows"][0]["count"], json!(3), "{counted}");
}

/// `objectstack serve` that is expected to stop at start: its stderr, once
/// it has exited (killed and failed after 60 s).
fn refused_start(app_path: &std::path::Path, data: &std::path::Path) -> String {
    let port = free_port();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_objectstack"))
        .args(["serve", "--app", &app_path.display().to_string(), "--data-dir", &data.display().to_string(), "--listen", &format!("127.0.0.1:{port}")])
        .env("RUST_LOG", "error")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("the server started");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success());
    String::from_utf8(out.stderr).unwrap()
}

/// A start decodes the models' snapshots while the log's scan runs (see
/// `gateway::app`): a log that does not open still stops the start with
/// its own error, and removes no snapshot; a data directory another process
/// holds is said so.
#[tokio::test]
async fn a_start_from_snapshots_on_a_log_that_does_not_open_says_why_and_keeps_the_snapshots() {
    let Stopped { data, dir: _dir, app_path, args } = written_and_stopped("kept").await;
    let snapshots = || {
        let mut names: Vec<String> =
            std::fs::read_dir(data.path().join("snapshots")).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        names.sort();
        names
    };
    let saved = snapshots();
    assert_eq!(saved, ["analytics.snapshot", "audit.snapshot", "query.snapshot", "write.snapshot"]);

    // Another server holds the directory: its log, and its search index.
    let held = (commands::store::open_embedded(data.path()).unwrap(), projections::search::SearchModel::open(&data.path().join("search")).unwrap());
    let err = refused_start(&app_path, data.path());
    assert!(err.contains("opening the event log") && err.contains("in use by another process"), "{err}");
    drop(held);

    // The first frame's body damaged, valid frames after it: corruption.
    let log = data.path().join("events.log");
    let mut bytes = std::fs::read(&log).unwrap();
    bytes[10] ^= 0xff;
    std::fs::write(&log, &bytes).unwrap();
    let err = refused_start(&app_path, data.path());
    assert!(err.contains("opening the event log") && err.contains("followed by valid data") && !err.contains("did not open"), "{err}");
    assert_eq!(snapshots(), saved, "no snapshot is removed by a start whose log did not open");

    // Mended, the log serves from them again.
    bytes[10] ^= 0xff;
    std::fs::write(&log, &bytes).unwrap();
    let port = free_port();
    let _server = serve(&app_path, &args, port).await;
    let (status, list) = http(port, "GET", "/api/v1/data/ticket?sort=title", None).await.unwrap();
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["data"]["total"], json!(3), "{list}");
}
