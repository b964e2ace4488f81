//! Several writer nodes on one PostgreSQL store keep one node's guarantees:
//! unique values are claimed in the append transaction, so creates and
//! updates racing for one value through two nodes give exactly one success;
//! optimistic concurrency and idempotency keys hold across the nodes too.

use axum::http::StatusCode;
use futures_util::future::join_all;
use gateway::config::Storage;
use serde_json::{json, Value as Json};

use crate::common;
use crate::rest::{api_on, Api};

async fn two_nodes() -> (Api, Api) {
    let settings = common::pg_settings();
    let a = api_on(Storage::Postgres(settings.clone())).await;
    let b = api_on(Storage::Postgres(settings)).await;
    (a, b)
}

#[tokio::test]
async fn racing_creates_through_two_nodes_claim_a_unique_value_once() {
    let (a, b) = two_nodes().await;
    for round in 0..15 {
        let email = format!("racer{round}@example.com");
        let calls = (0..12).map(|i| {
            let node = if i % 2 == 0 { &a } else { &b };
            node.call("POST", "/api/v1/data/customer", Some(json!({"name": format!("r{round}-{i}"), "email": email})), &[])
        });
        let replies = join_all(calls).await;
        let created = replies.iter().filter(|r| r.status == StatusCode::CREATED).count();
        assert_eq!(created, 1, "round {round}: one create wins {:?}", replies.iter().map(|r| (r.status, r.body.to_string())).collect::<Vec<_>>());
        for refused in replies.iter().filter(|r| r.status != StatusCode::CREATED) {
            assert_eq!(refused.body["error"]["code"], json!("duplicate_value"), "{}", refused.body);
        }
    }
    // Every node agrees: one record per value.
    for node in [&a, &b] {
        let list =
            node.call("GET", "/api/v1/data/customer?top=1000&filter=%5B%22email%22%2C%22like%22%2C%22racer%22%5D", None, &[("x-min-position", "0")]).await;
        assert_eq!(list.body["data"]["records"].as_array().map(Vec::len), Some(15), "{}", list.body);
    }
}

#[tokio::test]
async fn racing_updates_through_two_nodes_claim_a_unique_value_once_and_a_freed_value_can_be_taken() {
    let (a, b) = two_nodes().await;
    let mut ids = Vec::new();
    for i in 0..12 {
        let reply = a.call("POST", "/api/v1/data/customer", Some(json!({"name": format!("u{i}"), "email": format!("own{i}@example.com")})), &[]).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
        ids.push((reply.body["data"]["id"].as_str().unwrap().to_string(), reply.headers["x-log-position"].to_str().unwrap().to_string()));
    }
    let position = ids.last().unwrap().1.clone();
    let calls = ids.iter().enumerate().map(|(i, (id, _))| {
        let node = if i % 2 == 0 { &a } else { &b };
        let position = position.clone();
        async move {
            node.call("PATCH", &format!("/api/v1/data/customer/{id}"), Some(json!({"email": "wanted@example.com"})), &[("x-min-position", position.as_str())])
                .await
        }
    });
    let replies = join_all(calls).await;
    let updated: Vec<usize> = replies.iter().enumerate().filter(|(_, r)| r.status == StatusCode::OK).map(|(i, _)| i).collect();
    assert_eq!(updated.len(), 1, "one update wins: {:?}", replies.iter().map(|r| (r.status, r.body.to_string())).collect::<Vec<_>>());
    // The winner's old value was released in the same append: another node,
    // told the position of that update, may take it.
    let freed = format!("own{}@example.com", updated[0]);
    let seen = replies[updated[0]].headers["x-log-position"].to_str().unwrap().to_string();
    let other = if updated[0].is_multiple_of(2) { &b } else { &a };
    let reply = other.call("POST", "/api/v1/data/customer", Some(json!({"name": "late", "email": freed})), &[("x-min-position", seen.as_str())]).await;
    assert_eq!(reply.status, StatusCode::CREATED, "a released value is free: {}", reply.body);
    // Deleting the winner through the other node frees the wanted value for
    // every node (a write carrying the delete's position is decided after it).
    let winner = &ids[updated[0]].0;
    let (first, second) = if updated[0].is_multiple_of(2) { (&b, &a) } else { (&a, &b) };
    let reply = first.call("DELETE", &format!("/api/v1/data/customer/{winner}"), None, &[]).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let seen = reply.headers["x-log-position"].to_str().unwrap().to_string();
    let reply =
        second.call("POST", "/api/v1/data/customer", Some(json!({"name": "after", "email": "wanted@example.com"})), &[("x-min-position", seen.as_str())]).await;
    assert_eq!(reply.status, StatusCode::CREATED, "a deleted record's value is free: {}", reply.body);
}

const NUMBERED: &str = r#"{
  "manifest": {"id": "com.example.numbered", "name": "Numbered"},
  "objects": [{"name": "invoice", "fields": {"title": {"type": "text"}, "number": {"type": "autonumber", "autonumberFormat": "INV-{0000}"}}}]
}"#;

#[tokio::test]
async fn racing_creates_through_two_nodes_never_share_an_autonumber() {
    let settings = common::pg_settings();
    let dir = tempfile::tempdir().unwrap();
    let app = dir.path().join("app.json");
    std::fs::write(&app, NUMBERED).unwrap();
    let a = crate::rest::api_with_app(Storage::Postgres(settings.clone()), &app).await;
    let b = crate::rest::api_with_app(Storage::Postgres(settings), &app).await;
    let mut numbers = Vec::new();
    for round in 0..8 {
        let calls = (0..10).map(|i| {
            let node = if i % 2 == 0 { &a } else { &b };
            node.call("POST", "/api/v1/data/invoice", Some(json!({"title": format!("r{round}-{i}")})), &[])
        });
        for reply in join_all(calls).await {
            assert_eq!(reply.status, StatusCode::CREATED, "every create succeeds: {}", reply.body);
            numbers.push(reply.body["data"]["record"]["number"].as_str().unwrap().to_string());
        }
    }
    let mut distinct = numbers.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), numbers.len(), "no number given twice: {numbers:?}");
}

#[tokio::test]
async fn racing_creates_on_one_node_never_share_an_autonumber() {
    for postgres in [false, true] {
        let (storage, _guard) = common::storage(postgres);
        let dir = tempfile::tempdir().unwrap();
        let app = dir.path().join("app.json");
        std::fs::write(&app, NUMBERED).unwrap();
        let node = crate::rest::api_with_app(storage, &app).await;
        let calls = (0..20).map(|i| node.call("POST", "/api/v1/data/invoice", Some(json!({"title": format!("one-{i}")})), &[]));
        let mut numbers: Vec<String> =
            join_all(calls).await.iter().map(|r| r.body["data"]["record"]["number"].as_str().unwrap_or_default().to_string()).collect();
        numbers.sort();
        let count = numbers.len();
        numbers.dedup();
        assert_eq!(numbers.len(), count, "postgres {postgres}: no number given twice: {numbers:?}");
    }
}

#[tokio::test]
async fn a_repeated_idempotency_key_answers_the_first_result_across_nodes() {
    let (a, b) = two_nodes().await;
    for round in 0..5 {
        // The same request through both nodes at once: one runs, the others
        // answer its result (not a duplicate value its first run claimed).
        let body = json!({"name": "once", "email": format!("once{round}@example.com")});
        let key = format!("k-{round}");
        let calls = (0..6).map(|i| {
            let node = if i % 2 == 0 { &a } else { &b };
            let (body, key) = (body.clone(), key.clone());
            async move { node.call("POST", "/api/v1/data/customer", Some(body), &[("idempotency-key", key.as_str())]).await }
        });
        let replies = join_all(calls).await;
        let ids: Vec<&Json> = replies.iter().map(|r| &r.body["data"]["id"]).collect();
        for reply in &replies {
            assert!(reply.status.is_success(), "round {round}: every repeat answers the first result: {}", reply.body);
        }
        assert!(ids.iter().all(|id| *id == ids[0]), "round {round}: one record: {ids:?}");
    }
}
