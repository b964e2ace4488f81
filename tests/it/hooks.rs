//! Rust hooks of an embedding app, on every surface a caller writes
//! through: REST, GraphQL, batches and flows run as their caller each pass
//! the before hook (which fills a field and refuses a title) and the after
//! hook (which sees each committed write); the server's own processes do not.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use axum::http::StatusCode;
use gateway::config::Settings;
use gateway::service::hooks::{Hooks, Operation};
use serde_json::{json, Value as Json};

use crate::common;
use crate::rest::Api;

const APP: &str = r#"{
  "objects": [{"name": "ticket", "fields": {"title": {"type": "text", "required": true}, "level": {"type": "text"}}}],
  "flows": [{"name": "open_ticket", "label": "Open", "type": "api", "runAs": "user", "status": "active",
    "variables": [{"name": "title", "type": "text", "isInput": true, "isOutput": false}],
    "nodes": [{"id": "start", "type": "start"},
              {"id": "create", "type": "create_record", "config": {"objectName": "ticket", "fields": {"title": "=title"}}},
              {"id": "end", "type": "end"}],
    "edges": [{"source": "start", "target": "create"}, {"source": "create", "target": "end"}]}]
}"#;

async fn hooks_everywhere(postgres: bool) {
    let after = Arc::new(AtomicUsize::new(0));
    let deletes = Arc::new(AtomicUsize::new(0));
    let hooks = {
        let (after, deletes) = (after.clone(), deletes.clone());
        Hooks::default()
            .before_write(Some("ticket"), |write, fields| {
                if fields.get("title").and_then(Json::as_str) == Some("forbidden") {
                    return Err("titles may not be 'forbidden'".into());
                }
                if write.operation == Operation::Create {
                    fields.insert("level".into(), json!("hooked"));
                }
                Ok(())
            })
            .before_write(Some("other"), |_, _| Err("never for tickets".into()))
            .after_write(None, move |write, outcome| {
                assert_eq!(write.object, outcome.object);
                after.fetch_add(1, Ordering::SeqCst);
                if write.operation == Operation::Delete {
                    deletes.fetch_add(1, Ordering::SeqCst);
                }
            })
    };
    let (storage, dir) = common::storage(postgres);
    let app_dir = tempfile::tempdir().unwrap();
    let path = app_dir.path().join("app.json");
    std::fs::write(&path, APP).unwrap();
    let settings = Settings::local(storage, Some(path));
    let api = Api { system: gateway::app::start_with_hooks(&settings, hooks).await.unwrap(), _dir: dir };
    let level = |reply: &Json| reply["data"]["record"]["level"].clone();

    let rest = api.call("POST", "/api/v1/data/ticket", Some(json!({"title": "rest"})), &[]).await;
    assert_eq!(rest.status, StatusCode::CREATED, "{}", rest.body);
    let id = rest.body["data"]["id"].as_str().unwrap().to_string();
    assert_eq!(level(&api.call("GET", &format!("/api/v1/data/ticket/{id}"), None, &[]).await.body), json!("hooked"));
    let refused = api.call("PATCH", &format!("/api/v1/data/ticket/{id}"), Some(json!({"title": "forbidden"})), &[]).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.body);
    assert!(refused.body["error"]["message"].as_str().unwrap().contains("may not be 'forbidden'"));

    let graphql =
        api.call("POST", "/api/v1/graphql", Some(json!({"query": "mutation { createTicket(input: {title: \"gql\"}) { id record { level } } }"})), &[]).await;
    assert_eq!(graphql.body["data"]["createTicket"]["record"]["level"], json!("hooked"), "{}", graphql.body);
    let graphql_refused =
        api.call("POST", "/api/v1/graphql", Some(json!({"query": "mutation { createTicket(input: {title: \"forbidden\"}) { id } }"})), &[]).await;
    assert_eq!(graphql_refused.body["errors"][0]["extensions"]["code"], json!("validation_error"), "{}", graphql_refused.body);

    let batch = api
        .call(
            "POST",
            "/api/v1/data/ticket/batch",
            Some(json!({"operation": "create", "records": [{"data": {"title": "b1"}}, {"data": {"title": "b2"}}], "options": {"returnRecords": true}})),
            &[],
        )
        .await;
    assert_eq!(batch.body["data"]["results"][1]["record"]["level"], json!("hooked"), "{}", batch.body);
    let batch_refused =
        api.call("POST", "/api/v1/data/ticket/batch", Some(json!({"operation": "create", "records": [{"data": {"title": "forbidden"}}]})), &[]).await;
    assert!(!batch_refused.status.is_success(), "{}", batch_refused.body);

    let flow = api.call("POST", "/api/v1/automation/trigger/open_ticket", Some(json!({"title": "from a flow"})), &[]).await;
    assert_eq!(flow.status, StatusCode::OK, "{}", flow.body);
    let flow_refused = api.call("POST", "/api/v1/automation/trigger/open_ticket", Some(json!({"title": "forbidden"})), &[]).await;
    assert_eq!(flow_refused.status, StatusCode::BAD_REQUEST, "{}", flow_refused.body);
    let all = api.call("GET", "/api/v1/data/ticket?filter=%5B%5B%22level%22%2C%22%3D%22%2C%22hooked%22%5D%5D", None, &[]).await;
    assert_eq!(all.body["data"]["total"], json!(5), "every create passed the hook: {}", all.body);
    assert_eq!(api.call("DELETE", &format!("/api/v1/data/ticket/{id}"), None, &[]).await.status, StatusCode::OK);
    // rest, gql, b1, b2, the flow's create, the delete: each committed write once.
    assert_eq!(after.load(Ordering::SeqCst), 6);
    assert_eq!(deletes.load(Ordering::SeqCst), 1);
    api.system.processes().stop().await;
}

#[tokio::test]
async fn hooks_run_on_every_surface_embedded() {
    hooks_everywhere(false).await;
}

#[tokio::test]
async fn hooks_run_on_every_surface_postgres() {
    hooks_everywhere(true).await;
}
