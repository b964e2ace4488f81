//! Audit trail, record history and as-of reads, on both stores.

use axum::http::StatusCode;
use serde_json::{json, Value as Json};

use crate::rest::api;

fn position(reply: &crate::rest::Reply) -> u64 {
    reply.headers["x-log-position"].to_str().unwrap().parse().unwrap()
}

async fn history_and_audit(postgres: bool) {
    let api = api(postgres).await;
    let created = api.call("POST", "/api/v1/data/order", Some(json!({"id": "o1", "title": "First", "amount": 10})), &[]).await;
    assert_eq!(created.status, StatusCode::CREATED);
    api.call("PATCH", "/api/v1/data/order/o1", Some(json!({"amount": 12})), &[]).await;
    api.call("PATCH", "/api/v1/data/order/o1", Some(json!({"title": "Second", "status": "paid"})), &[]).await;
    let deleted = api.call("DELETE", "/api/v1/data/order/o1", None, &[]).await;
    assert_eq!(deleted.status, StatusCode::OK);

    let history = api.call("GET", "/api/v1/data/order/o1/history", None, &[]).await;
    assert_eq!(history.status, StatusCode::OK, "{}", history.body);
    let entries = history.body["data"]["entries"].as_array().unwrap().clone();
    let kinds: Vec<&str> = entries.iter().map(|e| e["eventType"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["data.delete", "data.update", "data.update", "data.create"], "newest first");
    let change = |entry: &Json, field: &str| entry["changes"].as_array().unwrap().iter().find(|c| c["field"] == field).cloned().unwrap_or(Json::Null);
    assert_eq!(change(&entries[2], "amount"), json!({"field": "amount", "oldValue": 10, "newValue": 12}));
    assert_eq!(change(&entries[1], "title"), json!({"field": "title", "oldValue": "First", "newValue": "Second"}));
    assert_eq!(change(&entries[1], "status"), json!({"field": "status", "oldValue": "open", "newValue": "paid"}));
    assert_eq!(change(&entries[3], "title")["newValue"], json!("First"));
    assert_eq!(change(&entries[0], "title"), json!({"field": "title", "oldValue": "Second", "newValue": null}));
    assert_eq!(entries[0]["actor"]["id"], json!("anonymous"));
    assert_eq!(entries[0]["target"], json!({"type": "order", "id": "o1"}));
    assert!(entries[0]["metadata"]["position"].as_u64().unwrap() > entries[3]["metadata"]["position"].as_u64().unwrap());

    let paged = api.call("GET", "/api/v1/data/order/o1/history?limit=2&offset=1", None, &[]).await;
    assert_eq!(paged.body["data"]["total"], json!(4));
    assert_eq!(paged.body["data"]["entries"].as_array().unwrap().len(), 2);
    assert_eq!(paged.body["data"]["hasMore"], json!(true));

    let by_actor = api.call("GET", "/api/v1/audit?object=order&actor=anonymous&eventType=data.update", None, &[]).await;
    assert_eq!(by_actor.body["data"]["total"], json!(2), "{}", by_actor.body);
    let metadata = api.call("GET", "/api/v1/audit?object=object", None, &[]).await;
    assert!(metadata.body["data"]["total"].as_u64().unwrap() >= 2, "definitions are audited: {}", metadata.body);
    let seeded = api.call("GET", "/api/v1/audit?actor=system&eventType=data.create", None, &[]).await;
    assert!(seeded.body["data"]["total"].as_u64().unwrap() >= 1);
    let future = api.call("GET", "/api/v1/audit?object=order&from=2999-01-01T00:00:00Z", None, &[]).await;
    assert_eq!(future.body["data"]["total"], json!(0));
    for bad in ["/api/v1/audit?wat=1", "/api/v1/audit?from=yesterday", "/api/v1/audit?recordId=o1", "/api/v1/audit?limit=100000"] {
        assert_eq!(api.call("GET", bad, None, &[]).await.status, StatusCode::BAD_REQUEST, "{bad}");
    }
    assert_eq!(api.call("GET", "/api/v1/data/nothing/x/history", None, &[]).await.status, StatusCode::NOT_FOUND);
}

/// Records the list after every write of a random run, then asks for each
/// moment with `asOf` and expects exactly what was seen then.
async fn as_of_matches_what_was_seen(postgres: bool) {
    let api = api(postgres).await;
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    let mut seen: Vec<(u64, Json)> = Vec::new();
    let mut live: Vec<String> = Vec::new();
    for step in 0..40 {
        let reply = match (next(3), live.is_empty()) {
            (0, _) | (_, true) => {
                let id = format!("r{step}");
                live.push(id.clone());
                api.call("POST", "/api/v1/data/order", Some(json!({"id": id, "title": format!("t{step}"), "amount": next(100)})), &[]).await
            }
            (1, false) => {
                let id = live[next(live.len() as u64) as usize].clone();
                api.call(
                    "PATCH",
                    &format!("/api/v1/data/order/{id}"),
                    Some(json!({"amount": next(100), "status": if next(2) == 0 { "open" } else { "paid" }})),
                    &[],
                )
                .await
            }
            _ => {
                let id = live.remove(next(live.len() as u64) as usize);
                api.call("DELETE", &format!("/api/v1/data/order/{id}"), None, &[]).await
            }
        };
        assert!(reply.status.is_success(), "{}", reply.body);
        let at = position(&reply);
        let list = api.call("GET", "/api/v1/data/order?sort=title&top=1000", None, &[]).await;
        seen.push((at, list.body["data"]["records"].clone()));
    }
    for (n, (at, expected)) in seen.iter().enumerate() {
        let past = api.call("GET", &format!("/api/v1/data/order?sort=title&top=1000&asOf={at}"), None, &[]).await;
        assert_eq!(past.status, StatusCode::OK, "{}", past.body);
        assert_eq!(&past.body["data"]["records"], expected, "asOf={at}");
        assert_eq!(past.headers["x-as-of-position"].to_str().unwrap(), at.to_string());
        if n % 5 == 0 {
            // One record as of then, folded from its own stream, agrees with the list.
            for record in expected.as_array().unwrap() {
                let id = record["id"].as_str().unwrap();
                let one = api.call("GET", &format!("/api/v1/data/order/{id}?asOf={at}"), None, &[]).await;
                assert_eq!(&one.body["data"]["record"], record, "{id} asOf={at}");
            }
        }
    }
    let (first_at, first) = &seen[0];
    let id = first[0]["id"].as_str().unwrap();
    let record = api.call("GET", &format!("/api/v1/data/order/{id}?asOf={first_at}"), None, &[]).await;
    assert_eq!(record.body["data"]["record"], first[0]);
    let before = api.call("GET", &format!("/api/v1/data/order/{id}?asOf=1"), None, &[]).await;
    assert_eq!(before.status, StatusCode::NOT_FOUND, "it did not exist yet");
    let by_time = api.call("GET", "/api/v1/data/order?asOf=2000-01-01T00:00:00Z", None, &[]).await;
    assert_eq!(by_time.status, StatusCode::NOT_FOUND, "in 2000 not even the object was defined: {}", by_time.body);
    let now = api.call("GET", "/api/v1/data/order?sort=title&top=1000&asOf=2999-01-01T00:00:00Z", None, &[]).await;
    assert_eq!(now.body["data"]["records"], seen.last().unwrap().1, "a time after the last write is now");
    assert_eq!(api.call("GET", "/api/v1/data/order?asOf=never", None, &[]).await.status, StatusCode::BAD_REQUEST);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_and_audit_embedded() {
    history_and_audit(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_and_audit_postgres() {
    history_and_audit(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn as_of_matches_what_was_seen_embedded() {
    as_of_matches_what_was_seen(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn as_of_matches_what_was_seen_postgres() {
    as_of_matches_what_was_seen(true).await;
}

/// A long stream: as-of reads at every kind of point (before, on and after
/// snapshot boundaries, by position and by time) equal what each update
/// wrote, read cold (folding and snapshotting) and warm (from snapshots).
async fn long_streams_read_from_snapshots(postgres: bool) {
    let api = api(postgres).await;
    let created = api.call("POST", "/api/v1/data/order", Some(json!({"title": "long", "amount": 0})), &[]).await;
    let id = created.body["data"]["id"].as_str().unwrap().to_string();
    let mut positions = vec![created.headers["x-log-position"].to_str().unwrap().parse::<u64>().unwrap()];
    let mut times = vec![created.body["data"]["record"]["updated_at"].as_str().unwrap().to_string()];
    for amount in 1..=200 {
        if amount == 130 {
            // A clear gap, so that update 130's time (in milliseconds) falls after update 129.
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        let reply = api.call("PATCH", &format!("/api/v1/data/order/{id}"), Some(json!({"amount": amount})), &[]).await;
        assert_eq!(reply.status, StatusCode::OK);
        positions.push(reply.headers["x-log-position"].to_str().unwrap().parse().unwrap());
        times.push(reply.body["data"]["record"]["updated_at"].as_str().unwrap().to_string());
    }
    let stream = format!("order/{id}");
    assert_eq!(api.system.snapshots.count(&stream), 0);
    for round in ["cold", "warm"] {
        // Version v (1-based) set amount v - 1.
        for version in [1usize, 2, 63, 64, 65, 127, 128, 129, 150, 192, 201] {
            let at = positions[version - 1];
            let got = api.call("GET", &format!("/api/v1/data/order/{id}?asOf={at}"), None, &[]).await;
            assert_eq!(got.body["data"]["record"]["amount"], json!(version - 1), "{round}: version {version} at position {at}");
        }
        if round == "cold" {
            assert_eq!(api.system.snapshots.count(&stream), 3, "snapshots at versions 64, 128 and 192");
        }
    }
    // Update 130's time truncated to milliseconds: after update 129, before update 130.
    let by_time = api.call("GET", &format!("/api/v1/data/order/{id}?asOf={}", times[130]), None, &[]).await;
    assert_eq!(by_time.body["data"]["record"]["amount"], json!(129));
    let before = api.call("GET", &format!("/api/v1/data/order/{id}?asOf={}", positions[0] - 1), None, &[]).await;
    assert_eq!(before.status, StatusCode::NOT_FOUND, "it did not exist yet");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_streams_read_from_snapshots_embedded() {
    long_streams_read_from_snapshots(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_streams_read_from_snapshots_postgres() {
    long_streams_read_from_snapshots(true).await;
}
