//! The REST gateway end to end, without a socket (tower `oneshot`), on both
//! stores: CRUD with the spec's statuses and envelopes, concurrency through
//! If-Match, batches, metadata with ETags, and bad input as 4xx errors.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use gateway::app::{start, System};
use gateway::config::{Settings, Storage};
use http_body_util::BodyExt;
use serde_json::{json, Value as Json};
use tower::ServiceExt;

use crate::common;

pub(crate) struct Api {
    pub(crate) system: Arc<System>,
    pub(crate) _dir: Option<tempfile::TempDir>,
}

pub(crate) struct Reply {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub body: Json,
}

const APP: &str = r#"{
  "manifest": {"id": "com.example.test", "namespace": "shop", "name": "Shop"},
  "objects": [
    {"name": "customer", "fields": {"name": {"type": "text", "required": true}, "email": {"type": "email", "unique": true}}},
    {"name": "order", "fields": {
       "title": {"type": "text", "required": true, "maxLength": 40},
       "amount": {"type": "currency"},
       "status": {"type": "select", "options": [{"label": "Open", "value": "open", "default": true}, {"label": "Paid", "value": "paid"}]},
       "customer": {"type": "lookup", "reference": "customer"},
       "total": {"type": "formula", "expression": "amount * 2"}}}
  ],
  "data": [{"object": "customer", "mode": "upsert", "externalId": "name", "records": [{"name": "Ada", "email": "ada@example.com"}]}]
}"#;

pub(crate) async fn api(postgres: bool) -> Api {
    api_with_wait(postgres, Duration::from_secs(5)).await
}

pub(crate) async fn api_with_wait(postgres: bool, read_wait: Duration) -> Api {
    let (storage, dir) = common::storage(postgres);
    let mut api = api_with(storage, read_wait).await;
    api._dir = dir;
    api
}

/// A server on the given storage (a restart when the storage was used before).
pub(crate) async fn api_on(storage: Storage) -> Api {
    api_with(storage, Duration::from_secs(5)).await
}

/// A server for another app (a JSON file).
pub(crate) async fn api_with_app(storage: Storage, app: &std::path::Path) -> Api {
    api_with_settings(Settings::local(storage, Some(app.to_path_buf()))).await
}

/// A server started with these settings.
pub(crate) async fn api_with_settings(settings: Settings) -> Api {
    Api { system: start(&settings).await.unwrap(), _dir: None }
}

async fn api_with(storage: Storage, read_wait: Duration) -> Api {
    try_api_with(storage, read_wait).await.unwrap()
}

/// A server on the given storage, or why it did not start.
pub(crate) async fn try_api_with(storage: Storage, read_wait: Duration) -> anyhow::Result<Api> {
    let app_dir = tempfile::tempdir().unwrap();
    let app_path = app_dir.path().join("app.json");
    std::fs::write(&app_path, APP).unwrap();
    let settings = Settings { read_wait, ..Settings::local(storage, Some(app_path)) };
    Ok(Api { system: start(&settings).await?, _dir: None })
}

impl Api {
    pub(crate) async fn call(&self, method: &str, uri: &str, body: Option<Json>, headers: &[(&str, &str)]) -> Reply {
        let mut request = Request::builder().method(method).uri(uri);
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        let body = match body {
            Some(json) => {
                request = request.header("content-type", "application/json");
                Body::from(json.to_string())
            }
            None => Body::empty(),
        };
        self.raw(request.body(body).unwrap()).await
    }

    pub(crate) async fn raw(&self, request: Request<Body>) -> Reply {
        let response = gateway::server::router(self.system.clone()).oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let body =
            if bytes.is_empty() { Json::Null } else { serde_json::from_slice(&bytes).unwrap_or_else(|_| json!({"raw": String::from_utf8_lossy(&bytes)})) };
        Reply { status, headers, body }
    }
}

fn error_code(reply: &Reply) -> &str {
    assert_eq!(reply.body["success"], json!(false), "{}", reply.body);
    assert_eq!(reply.body["error"]["code"], reply.body["code"]);
    reply.body["error"]["code"].as_str().unwrap()
}

async fn crud_and_errors(postgres: bool) {
    let api = api(postgres).await;
    for path in ["/.well-known/objectstack", "/api/v1", "/api/v1/discovery"] {
        let reply = api.call("GET", path, None, &[]).await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(reply.body["data"]["routes"]["data"], json!("/api/v1/data"));
        assert_eq!(reply.body["data"]["routes"]["graphql"], json!("/api/v1/graphql"));
        assert!(reply.body["data"]["routes"].get("storage").is_none(), "only what exists is advertised");
    }
    let ada = api.call("GET", "/api/v1/data/customer?name=Ada", None, &[]).await;
    let ada_id = ada.body["data"]["records"][0]["id"].as_str().unwrap().to_string();

    let created = api.call("POST", "/api/v1/data/order", Some(json!({"title": "First", "amount": 10.5, "customer": ada_id})), &[]).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let id = created.body["data"]["id"].as_str().unwrap().to_string();
    assert_eq!(created.body["data"]["record"]["status"], json!("open"));
    assert_eq!(created.body["data"]["record"]["total"], json!(21), "formula computed on read");
    let position: u64 = created.headers["x-log-position"].to_str().unwrap().parse().unwrap();
    assert!(position > 0);

    let got = api.call("GET", &format!("/api/v1/data/order/{id}?expand=customer"), None, &[]).await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(got.body["data"]["record"]["customer"]["name"], json!("Ada"));
    assert_eq!(got.headers["etag"], "\"1\"");

    let patched = api.call("PATCH", &format!("/api/v1/data/order/{id}"), Some(json!({"status": "paid"})), &[("if-match", "\"1\"")]).await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.body);
    assert_eq!(patched.body["data"]["record"]["status"], json!("paid"));
    let stale = api.call("PATCH", &format!("/api/v1/data/order/{id}"), Some(json!({"status": "open", "expectedVersion": 1})), &[]).await;
    assert_eq!(stale.status, StatusCode::CONFLICT);
    assert_eq!(error_code(&stale), "concurrent_modification");

    let invalid = api.call("POST", "/api/v1/data/order", Some(json!({"title": "x".repeat(41), "amount": "ten", "ghost": 1})), &[]).await;
    assert_eq!(invalid.status, StatusCode::BAD_REQUEST);
    let mut fields: Vec<&str> = invalid.body["error"]["fieldErrors"].as_array().unwrap().iter().map(|f| f["field"].as_str().unwrap()).collect();
    fields.sort();
    assert_eq!(fields, ["amount", "ghost", "title"]);

    let cases: Vec<(&str, &str, Option<Json>, StatusCode, &str)> = vec![
        ("GET", "/api/v1/data/nothing", None, StatusCode::NOT_FOUND, "object_not_found"),
        ("GET", "/api/v1/data/order/missing", None, StatusCode::NOT_FOUND, "record_not_found"),
        ("PATCH", "/api/v1/data/order/missing", Some(json!({"title": "x"})), StatusCode::NOT_FOUND, "record_not_found"),
        ("DELETE", "/api/v1/data/order/missing", None, StatusCode::NOT_FOUND, "record_not_found"),
        ("POST", "/api/v1/data/nothing", Some(json!({})), StatusCode::NOT_FOUND, "object_not_found"),
        ("POST", "/api/v1/data/order", Some(json!([1, 2])), StatusCode::BAD_REQUEST, "validation_error"),
        ("POST", "/api/v1/data/order", Some(json!({"title": "t", "customer": "nobody"})), StatusCode::BAD_REQUEST, "invalid_reference"),
        ("GET", "/api/v1/data/order?ghost=1", None, StatusCode::BAD_REQUEST, "invalid_query"),
        ("GET", "/api/v1/data/order?filter=%7B%22amount%22%3A%7B%22%24near%22%3A1%7D%7D", None, StatusCode::BAD_REQUEST, "invalid_filter"),
        ("GET", "/api/v1/data/order?top=-1", None, StatusCode::BAD_REQUEST, "invalid_query"),
        ("GET", "/api/v1/data/order?sort=ghost", None, StatusCode::BAD_REQUEST, "invalid_sort"),
        ("GET", "/api/v1/data/order?filter=%7Bbad", None, StatusCode::BAD_REQUEST, "invalid_filter"),
        ("POST", "/api/v1/data/order/query", Some(json!({"where": {"ghost": 1}})), StatusCode::BAD_REQUEST, "invalid_filter"),
        ("POST", "/api/v1/data/order/query?top=5", Some(json!({})), StatusCode::BAD_REQUEST, "invalid_query"),
        ("GET", "/api/v1/nowhere", None, StatusCode::NOT_FOUND, "endpoint_not_found"),
    ];
    for (method, uri, body, status, code) in cases {
        let reply = api.call(method, uri, body, &[]).await;
        assert_eq!(reply.status, status, "{method} {uri}: {}", reply.body);
        assert_eq!(error_code(&reply), code, "{method} {uri}");
    }
    let malformed = api.raw(Request::post("/api/v1/data/order").header("content-type", "application/json").body(Body::from("{\"title\": ")).unwrap()).await;
    assert_eq!((malformed.status, error_code(&malformed)), (StatusCode::BAD_REQUEST, "validation_error"));
    let huge = api.raw(Request::post("/api/v1/data/order").header("content-type", "application/json").body(Body::from(vec![b' '; 9 << 20])).unwrap()).await;
    assert_eq!(huge.status, StatusCode::PAYLOAD_TOO_LARGE);
    error_code(&huge);

    let deleted = api.call("DELETE", &format!("/api/v1/data/order/{id}"), None, &[]).await;
    assert_eq!(deleted.status, StatusCode::OK);
    assert_eq!(deleted.body["data"]["deleted"], json!(true));
    assert_eq!(api.call("GET", &format!("/api/v1/data/order/{id}"), None, &[]).await.status, StatusCode::NOT_FOUND);
}

async fn lists_batches_and_metadata(postgres: bool) {
    let api = api(postgres).await;
    let many: Vec<Json> = (0..30).map(|i| json!({"title": format!("order {i:02}"), "amount": i})).collect();
    let created = api.call("POST", "/api/v1/data/order/createMany", Some(Json::Array(many)), &[]).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert_eq!(created.body["data"]["count"], json!(30));

    let page = api
        .call("GET", "/api/v1/data/order?filters=%5B%5B%22amount%22%2C%22%3E%3D%22%2C10%5D%5D&sort=-amount&top=5&skip=5&select=title,amount", None, &[])
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let data = &page.body["data"];
    assert_eq!((data["total"].clone(), data["hasMore"].clone()), (json!(20), json!(true)));
    let amounts: Vec<i64> = data["records"].as_array().unwrap().iter().map(|r| r["amount"].as_i64().unwrap()).collect();
    assert_eq!(amounts, [24, 23, 22, 21, 20]);
    assert!(data["records"][0].get("status").is_none(), "select keeps only the named fields");

    let atomic = api
        .call("POST", "/api/v1/data/order/batch", Some(json!({"operation": "create", "records": [{"data": {"title": "ok"}}, {"data": {"title": 5}}]})), &[])
        .await;
    assert_eq!(atomic.status, StatusCode::OK);
    assert_eq!((atomic.body["data"]["success"].clone(), atomic.body["data"]["failed"].clone()), (json!(false), json!(2)));
    let count = api.call("POST", "/api/v1/data/order/query", Some(json!({"where": {"title": "ok"}})), &[]).await;
    assert_eq!(count.body["data"]["total"], json!(0), "an atomic batch is all or nothing");
    let partial = api.call("POST", "/api/v1/data/order/batch", Some(json!({"operation": "create", "records": [{"data": {"title": "ok"}}, {"data": {"title": 5}}, {"data": {"title": "ok2"}}], "options": {"atomic": false, "continueOnError": true}})), &[]).await;
    assert_eq!((partial.body["data"]["succeeded"].clone(), partial.body["data"]["failed"].clone()), (json!(2), json!(1)));
    let too_many: Vec<Json> = (0..201).map(|_| json!({"data": {"title": "x"}})).collect();
    let refused = api.call("POST", "/api/v1/data/order/batch", Some(json!({"operation": "create", "records": too_many})), &[]).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);

    let ids: Vec<String> = created.body["data"]["records"].as_array().unwrap().iter().take(3).map(|r| r["id"].as_str().unwrap().to_string()).collect();
    let deleted = api.call("POST", "/api/v1/data/order/deleteMany", Some(json!({"ids": ids})), &[]).await;
    assert_eq!(deleted.body["data"]["succeeded"], json!(3), "{}", deleted.body);
    let updated = api
        .call(
            "POST",
            "/api/v1/data/order/updateMany",
            Some(json!({"records": [{"id": created.body["data"]["records"][5]["id"], "data": {"status": "paid"}}]})),
            &[],
        )
        .await;
    assert_eq!(updated.body["data"]["succeeded"], json!(1), "{}", updated.body);

    let grouped = api
        .call(
            "POST",
            "/api/v1/data/order/query",
            Some(json!({"groupBy": ["status"], "aggregations": [{"function": "count", "alias": "n"}], "orderBy": "status"})),
            &[],
        )
        .await;
    let rows = grouped.body["data"]["records"].as_array().unwrap();
    assert_eq!(
        rows.iter().map(|r| (r["status"].as_str().unwrap().to_string(), r["n"].as_i64().unwrap())).collect::<Vec<_>>(),
        vec![("open".to_string(), 28), ("paid".to_string(), 1)]
    );

    let definition = api.call("GET", "/api/v1/meta/object/order", None, &[]).await;
    assert_eq!(definition.status, StatusCode::OK);
    assert_eq!(definition.body["name"], json!("order"));
    let etag = definition.headers["etag"].to_str().unwrap().to_string();
    assert_eq!(api.call("GET", "/api/v1/meta/object/order", None, &[("if-none-match", &etag)]).await.status, StatusCode::NOT_MODIFIED);
    let mut altered = definition.body.clone();
    altered["fields"]["note"] = json!({"type": "text"});
    let put = api.call("PUT", "/api/v1/meta/object/order", Some(altered), &[]).await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.body);
    let with_note = api.call("POST", "/api/v1/data/order", Some(json!({"title": "noted", "note": "a new field, no restart"})), &[]).await;
    assert_eq!(with_note.status, StatusCode::CREATED, "{}", with_note.body);
    assert_eq!(api.call("GET", "/api/v1/meta/object/order", None, &[("if-none-match", &etag)]).await.status, StatusCode::OK, "the ETag changed");
    let items = api.call("GET", "/api/v1/meta/objects", None, &[]).await;
    assert!(items.body["data"]["items"].as_array().unwrap().len() >= 3);
    let bad_put = api.call("PUT", "/api/v1/meta/object/order", Some(json!({"fields": {"x": {"type": "nope"}}})), &[]).await;
    assert_eq!(bad_put.status, StatusCode::BAD_REQUEST);
    assert!(bad_put.body["message"].as_str().unwrap().contains("/fields/x/type"), "{}", bad_put.body);
}

/// A read that asks for a position the node has not reached waits, bounded,
/// then answers 504 `timeout` (retryable); one it has reached answers at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn min_position_waits_then_times_out() {
    let api = api_with_wait(false, Duration::from_millis(200)).await;
    let created = api.call("POST", "/api/v1/data/order", Some(json!({"title": "t"})), &[]).await;
    let position = created.headers["x-log-position"].to_str().unwrap().to_string();
    let reached = api.call("GET", "/api/v1/data/order", None, &[("x-min-position", &position)]).await;
    assert_eq!(reached.status, StatusCode::OK);
    let started = std::time::Instant::now();
    let future = api.call("GET", &format!("/api/v1/data/order?minPosition={}", 1_000_000), None, &[]).await;
    assert_eq!(future.status, StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(error_code(&future), "timeout");
    assert_eq!(future.body["error"]["retryable"], json!(true));
    assert!(started.elapsed() >= Duration::from_millis(200));
    let bad = api.call("GET", "/api/v1/data/order", None, &[("x-min-position", "soon")]).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_crud_and_errors_embedded() {
    crud_and_errors(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_crud_and_errors_postgres() {
    crud_and_errors(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_lists_batches_and_metadata_embedded() {
    lists_batches_and_metadata(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_lists_batches_and_metadata_postgres() {
    lists_batches_and_metadata(true).await;
}
