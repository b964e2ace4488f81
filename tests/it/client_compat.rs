//! The official client, unchanged: `tests/client/compat.mjs` drives a running
//! server with `@objectstack/client` 3.0.6 and 4.0.4 (installed from the npm
//! registry by `npm ci`), on both stores; `tests/client/auth.mjs` signs up,
//! in and out against an app that declares permissions.

use std::path::PathBuf;
use std::process::Command;
use std::sync::Mutex;

use gateway::app::start;
use gateway::config::{Settings, Storage};

use crate::common;

const APP: &str = r#"{
  "manifest": {"id": "com.example.compat", "namespace": "compat", "name": "Client compatibility"},
  "objects": [
    {"name": "customer", "fields": {"name": {"type": "text", "required": true}}},
    {"name": "order", "fields": {
       "title": {"type": "text", "required": true},
       "amount": {"type": "currency"},
       "status": {"type": "select", "options": [{"label": "Open", "value": "open", "default": true}, {"label": "Paid", "value": "paid"}]},
       "customer": {"type": "lookup", "reference": "customer"}}}
  ],
  "data": [{"object": "customer", "mode": "upsert", "externalId": "name", "records": [{"id": "ada", "name": "Ada Lovelace"}, {"id": "bob", "name": "Bob Kahn"}]}]
}"#;

/// The same shop with permissions: members see and change their own orders.
const SECURE_APP: &str = r#"{
  "manifest": {"id": "com.example.compat_secure", "name": "Client auth"},
  "objects": [
    {"name": "order", "sharingModel": "private", "fields": {
       "title": {"type": "text", "required": true},
       "owner": {"type": "lookup", "reference": "user"}}}
  ],
  "permissions": [{"name": "member", "isProfile": true, "objects": {"order": {"allowRead": true, "allowCreate": true, "allowEdit": true}}}],
  "auth": {"defaultProfile": "member"},
  "data": [{"object": "order", "mode": "upsert", "externalId": "title", "records": [{"id": "seeded", "title": "Not yours"}]}]
}"#;

static INSTALL: Mutex<bool> = Mutex::new(false);

fn client_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("client")
}

/// `npm ci` once per test run (the lock file pins both client versions).
fn install_clients() {
    let mut done = INSTALL.lock().unwrap_or_else(|e| e.into_inner());
    if *done {
        return;
    }
    let status = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
        .current_dir(client_dir())
        .status()
        .unwrap_or_else(|e| panic!("npm is needed for the client compatibility test (ops/test installs Node.js): {e}"));
    assert!(status.success(), "npm ci failed in tests/client");
    *done = true;
}

async fn drive(storage: Storage) {
    run_script(storage, APP, "compat.mjs").await;
}

/// Serves `app` and runs a client script with both client versions.
async fn run_script(storage: Storage, app: &str, script: &'static str) {
    tokio::task::spawn_blocking(install_clients).await.unwrap();
    let app_dir = tempfile::tempdir().unwrap();
    let app_path = app_dir.path().join("app.json");
    std::fs::write(&app_path, app).unwrap();
    let settings = Settings::local(storage, Some(app_path));
    let system = start(&settings).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(gateway::server::serve(listener, system, async {
        let _ = stop_rx.await;
    }));
    for version in ["3.0.6", "4.0.4"] {
        let base = base.clone();
        let output = tokio::task::spawn_blocking(move || {
            Command::new("node").arg(script).arg(&base).arg(version).current_dir(client_dir()).output().expect("node is needed (ops/test installs it)")
        })
        .await
        .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "client {version} failed:\n{stdout}\n{stderr}");
        assert!(stdout.contains("checks passed"), "{stdout}");
    }
    let _ = stop_tx.send(());
    server.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_client_works_embedded() {
    let dir = tempfile::tempdir().unwrap();
    drive(Storage::Embedded(dir.path().to_path_buf())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_client_works_postgres() {
    drive(Storage::Postgres(common::pg_settings())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_client_signs_in_embedded() {
    let dir = tempfile::tempdir().unwrap();
    run_script(Storage::Embedded(dir.path().to_path_buf()), SECURE_APP, "auth.mjs").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_client_signs_in_postgres() {
    run_script(Storage::Postgres(common::pg_settings()), SECURE_APP, "auth.mjs").await;
}
