//! Faults an attacker or a bad day can cause, on both stores: values no read
//! model can hold are refused at the command, filters have limits, and an
//! event a projection cannot apply is parked (a dead letter) instead of
//! stopping the system; an operator retries it once mended, or skips it
//! with an event in the log.

use axum::http::StatusCode;
use commands::store::{AppendRequest, ExpectedVersion, StreamAppend};
use domain::event::codec::encode_payload;
use domain::event::{EventEnvelope, EventPayload, RecordCreated, StreamId};
use serde_json::{json, Value as Json};

use crate::common;
use crate::rest::{api, api_on, Api, Reply};

fn code(reply: &Reply) -> &str {
    reply.body["error"]["code"].as_str().unwrap_or_else(|| panic!("not an error envelope: {} {}", reply.status, reply.body))
}

async fn bad_values_and_filters(postgres: bool) {
    let api = api(postgres).await;
    let head = |api: &Api| *api.system.commands.store().head().borrow();
    let before = head(&api);

    // A NUL in a value, a nested key, an id, a patch, a definition: refused with the field named.
    let reply = api.call("POST", "/api/v1/data/order", Some(json!({"title": "a\u{0}b"})), &[]).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.body);
    assert_eq!(reply.body["error"]["fieldErrors"][0]["field"], json!("title"), "{}", reply.body);
    assert!(reply.body["error"]["message"].as_str().unwrap().contains("NUL"), "{}", reply.body);
    let reply = api.call("POST", "/api/v1/data/order", Some(json!({"id": "x\u{0}", "title": "t"})), &[]).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.body);
    let created = api.call("POST", "/api/v1/data/order", Some(json!({"title": "fine"})), &[]).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let id = created.body["data"]["id"].as_str().unwrap().to_string();
    let reply = api.call("PATCH", &format!("/api/v1/data/order/{id}"), Some(json!({"title": "\u{0}"})), &[]).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.body);
    let definition = json!({"name": "note", "label": "N\u{0}te", "fields": {"body": {"type": "text"}}});
    let reply = api.call("PUT", "/api/v1/meta/object/note", Some(definition), &[]).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.body);
    assert_eq!(head(&api), before + 1, "only the good create was logged");

    // Filters: a NUL, a bad or huge pattern, too many patterns, a huge `in`, a skip past 64 bits.
    let reply = api.call("GET", "/api/v1/data/order?title=a%00b", None, &[]).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.body);
    assert_eq!(code(&reply), "invalid_filter");
    let query = |filter: Json| json!({"object": "order", "where": filter});
    let bad_regex = api.call("POST", "/api/v1/data/order/query", Some(query(json!({"title": {"$regex": "(a"}}))), &[]).await;
    assert_eq!(bad_regex.status, StatusCode::BAD_REQUEST, "{}", bad_regex.body);
    let huge_regex = api.call("POST", "/api/v1/data/order/query", Some(query(json!({"title": {"$regex": "a{1000}{1000}"}}))), &[]).await;
    assert_eq!(huge_regex.status, StatusCode::BAD_REQUEST, "{}", huge_regex.body);
    let many: Vec<Json> = (0..21).map(|i| json!({"title": {"$regex": format!("^{i}")}})).collect();
    let reply = api.call("POST", "/api/v1/data/order/query", Some(query(json!({"$or": many}))), &[]).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.body);
    assert!(reply.body["error"]["message"].as_str().unwrap().contains("regex"), "{}", reply.body);
    let twenty: Vec<Json> = (0..20).map(|i| json!({"title": {"$regex": format!("^{i}")}})).collect();
    let reply = api.call("POST", "/api/v1/data/order/query", Some(query(json!({"$or": twenty}))), &[]).await;
    assert_eq!(reply.status, StatusCode::OK, "twenty patterns are within the limit: {}", reply.body);
    let ids: Vec<String> = (0..100_000).map(|i| format!("id{i}")).collect();
    let reply = api.call("POST", "/api/v1/data/order/query", Some(query(json!({"id": {"$in": ids}}))), &[]).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.body);
    let ids: Vec<String> = (0..5_000).map(|i| format!("id{i}")).collect();
    let reply = api.call("POST", "/api/v1/data/order/query", Some(query(json!({"id": {"$in": ids}}))), &[]).await;
    assert_eq!(reply.status, StatusCode::OK, "an in of 5,000 ids is within the limit: {}", reply.body);
    let reply = api.call("GET", "/api/v1/data/order?skip=99999999999999999999999", None, &[]).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.body);
    let reply = api.call("POST", "/api/v1/data/order/query", Some(json!({"object": "order", "offset": 1e30})), &[]).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.body);

    // Nothing was parked and reads go on.
    let status = api.call("GET", "/api/v1/projections/query", None, &[]).await;
    assert_eq!(status.body["data"]["deadLetters"], json!([]), "{}", status.body);
    let list = api.call("GET", "/api/v1/data/order", None, &[]).await;
    assert_eq!(list.status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_values_and_filters_embedded() {
    bad_values_and_filters(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_values_and_filters_postgres() {
    bad_values_and_filters(true).await;
}

/// Appends an event as an older server (or a bug) could have, past the command checks.
async fn append_raw(api: &Api, stream: &str, event_type: &str, payload: Vec<u8>) -> u64 {
    let mut envelope = common::event("raw");
    envelope.event_type = event_type.into();
    envelope.payload = payload;
    let request =
        AppendRequest { streams: vec![StreamAppend { stream: stream.into(), expected: ExpectedVersion::Any, events: vec![envelope] }], idempotency_key: None };
    let committed = api.system.commands.store().append(request).await.unwrap();
    committed.events.last().map(|e: &EventEnvelope| e.position).unwrap()
}

fn letters(status: &Reply) -> Vec<u64> {
    status.body["data"]["deadLetters"].as_array().unwrap().iter().map(|l| l["position"].as_u64().unwrap()).collect()
}

/// A record the PostgreSQL model cannot hold (a NUL in `jsonb`, logged by a
/// server before the command refused it): parked; reads, later writes and a
/// restart go on; a retry fails while the cause stays; a skip is an event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_event_is_parked_postgres() {
    let settings = common::pg_settings();
    let api = api_on(gateway::config::Storage::Postgres(settings.clone())).await;
    let mut record = domain::value::Record::default();
    record.insert("title".to_string(), domain::value::Value::Text("a\u{0}b".into()));
    let payload = EventPayload::RecordCreated(RecordCreated { object: "order".into(), id: "poison".into(), record });
    let (event_type, _, bytes) = encode_payload(&payload);
    let poison = append_raw(&api, &StreamId::record("order", "poison").0, event_type, bytes).await;

    // Later writes and reads are served; the event is parked, the projection degraded.
    let created = api.call("POST", "/api/v1/data/order", Some(json!({"title": "after"})), &[]).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let list = api.call("GET", "/api/v1/data/order", None, &[]).await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.body);
    assert!(list.body["data"]["records"].as_array().unwrap().iter().any(|r| r["title"] == json!("after")));
    let status = api.call("GET", "/api/v1/projections/query", None, &[]).await;
    assert_eq!(letters(&status), vec![poison], "{}", status.body);
    assert_eq!(status.body["data"]["state"], json!("degraded"));
    assert!(!status.body["data"]["deadLetters"][0]["error"].as_str().unwrap().contains("a\u{0}b"), "no value in the reason");
    let metrics = api.call("GET", "/metrics", None, &[]).await;
    assert!(metrics.body["raw"].as_str().unwrap().contains("objectstack_projection_dead_letters{projection=\"query\"} 1"), "{}", metrics.body);

    // A restart serves, and still knows the letter.
    drop(api);
    let api = api_on(gateway::config::Storage::Postgres(settings.clone())).await;
    let status = api.call("GET", "/api/v1/projections/query", None, &[]).await;
    assert_eq!(letters(&status), vec![poison], "{}", status.body);

    // Retrying fails while the cause stays; skipping needs a reason, then is an event in the log.
    let retry = api.call("POST", &format!("/api/v1/projections/query/dead-letters/{poison}/retry"), None, &[]).await;
    assert_eq!(retry.status, StatusCode::CONFLICT, "{}", retry.body);
    let skip = api.call("POST", &format!("/api/v1/projections/query/dead-letters/{poison}/skip"), Some(json!({})), &[]).await;
    assert_eq!(skip.status, StatusCode::BAD_REQUEST, "{}", skip.body);
    let skip = api.call("POST", &format!("/api/v1/projections/query/dead-letters/{poison}/skip"), Some(json!({"reason": "NUL from v0.1"})), &[]).await;
    assert_eq!(skip.status, StatusCode::OK, "{}", skip.body);
    assert_eq!(skip.body["data"]["deadLetters"], json!([]), "{}", skip.body);
    assert_eq!(skip.body["data"]["state"], json!("live"), "{}", skip.body);
    let trail = api.call("GET", "/api/v1/audit?eventType=system.config_changed", None, &[]).await;
    assert!(trail.body.to_string().contains("NUL from v0.1"), "the skip is in the audit trail: {}", trail.body);

    // An offline rebuild folds the log again: parks the event, then forgets it at the skip.
    drop(api);
    gateway::admin::rebuild_postgres_offline(&settings).await.unwrap();
    let api = api_on(gateway::config::Storage::Postgres(settings)).await;
    let status = api.call("GET", "/api/v1/projections/query", None, &[]).await;
    assert_eq!(letters(&status), Vec::<u64>::new(), "{}", status.body);
    let list = api.call("GET", "/api/v1/data/order", None, &[]).await;
    assert!(list.body["data"]["records"].as_array().unwrap().iter().any(|r| r["title"] == json!("after")), "{}", list.body);
}

/// A cause an operator can mend (a table dropped by hand): the write is
/// parked, and a retry after the table is back applies it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parked_event_applies_on_retry_postgres() {
    let api = api(true).await;
    let projections::QueryReader::Postgres(reader) = &api.system.reader else { panic!("a PostgreSQL reader") };
    let client = reader.pool().get().await.unwrap();
    client.batch_execute("DROP TABLE obj_customer").await.unwrap();
    let created = api.call("POST", "/api/v1/data/customer", Some(json!({"name": "Grace"})), &[]).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let position: u64 = created.headers["x-log-position"].to_str().unwrap().parse().unwrap();
    assert!(api.system.query.wait_for(position, std::time::Duration::from_secs(5)).await, "the projection went on");
    let status = api.call("GET", "/api/v1/projections/query", None, &[]).await;
    assert_eq!(letters(&status), vec![position], "{}", status.body);
    assert!(status.body["data"]["deadLetters"][0]["error"].as_str().unwrap().contains("42P01"), "{}", status.body);

    client.batch_execute("CREATE TABLE obj_customer (id text PRIMARY KEY, data jsonb NOT NULL)").await.unwrap();
    let retry = api.call("POST", &format!("/api/v1/projections/query/dead-letters/{position}/retry"), None, &[]).await;
    assert_eq!(retry.status, StatusCode::OK, "{}", retry.body);
    assert_eq!(retry.body["data"]["deadLetters"], json!([]));
    let id = created.body["data"]["id"].as_str().unwrap();
    let got = api.call("GET", &format!("/api/v1/data/customer/{id}"), None, &[]).await;
    assert_eq!(got.status, StatusCode::OK, "{}", got.body);
    assert_eq!(got.body["data"]["record"]["name"], json!("Grace"));
    let again = api.call("POST", &format!("/api/v1/projections/query/dead-letters/{position}/retry"), None, &[]).await;
    assert_eq!(again.status, StatusCode::NOT_FOUND, "{}", again.body);
}

/// An event no model can decode (corrupt bytes) on the embedded store: every
/// in-process projection parks it, the server restarts, the record is refused
/// to commands, and everything else serves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_undecodable_event_is_parked_embedded() {
    let dir = tempfile::tempdir().unwrap();
    let storage = gateway::config::Storage::Embedded(dir.path().to_path_buf());
    let api = api_on(storage.clone()).await;
    let created = api.call("POST", "/api/v1/data/order", Some(json!({"title": "mine"})), &[]).await;
    let id = created.body["data"]["id"].as_str().unwrap().to_string();
    let garbage = append_raw(&api, &StreamId::record("order", &id).0, "record.updated", vec![0xff; 7]).await;
    let after = api.call("POST", "/api/v1/data/order", Some(json!({"title": "after"})), &[]).await;
    assert_eq!(after.status, StatusCode::CREATED);
    let all = api.call("GET", "/api/v1/projections", None, &[]).await;
    for projection in all.body["data"]["projections"].as_array().unwrap() {
        let parked: Vec<u64> = projection["deadLetters"].as_array().unwrap().iter().map(|l| l["position"].as_u64().unwrap()).collect();
        assert_eq!(parked, vec![garbage], "{projection}");
        assert_eq!(projection["state"], json!("degraded"), "{projection}");
    }
    drop(api);

    // The old instance's tasks let go of the log's lock as they wind down.
    let mut api = None;
    for _ in 0..100 {
        match crate::rest::try_api_with(storage.clone(), std::time::Duration::from_secs(5)).await {
            Ok(started) => {
                api = Some(started);
                break;
            }
            Err(error) if format!("{error:#}").contains("in use") => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
            Err(error) => panic!("restart: {error:#}"),
        }
    }
    let api = api.expect("the log's lock was let go");
    let status = api.call("GET", "/api/v1/projections/search", None, &[]).await;
    assert_eq!(letters(&status), vec![garbage], "parked again by the load at start: {}", status.body);
    let patch = api.call("PATCH", &format!("/api/v1/data/order/{id}"), Some(json!({"title": "x"})), &[]).await;
    assert_eq!(patch.status, StatusCode::CONFLICT, "{}", patch.body);
    let list = api.call("GET", "/api/v1/data/order", None, &[]).await;
    assert_eq!(list.body["data"]["records"].as_array().unwrap().len(), 2, "{}", list.body);
    let retry = api.call("POST", &format!("/api/v1/projections/audit/dead-letters/{garbage}/retry"), None, &[]).await;
    assert_eq!(retry.status, StatusCode::CONFLICT, "{}", retry.body);
    let skip = api.call("POST", &format!("/api/v1/projections/audit/dead-letters/{garbage}/skip"), Some(json!({"reason": "corrupt"})), &[]).await;
    assert_eq!(skip.status, StatusCode::OK, "{}", skip.body);
    assert_eq!(skip.body["data"]["deadLetters"], json!([]), "{}", skip.body);
    let search = api.call("GET", "/api/v1/projections/search", None, &[]).await;
    assert_eq!(letters(&search), vec![garbage], "a skip is per projection: {}", search.body);
}

/// Objects named like the read model's own tables, and long names that share
/// a prefix, each keep their own rows (PostgreSQL cut them into one table, or
/// onto `rm_checkpoints`).
async fn names_never_collide(postgres: bool) {
    let api = api(postgres).await;
    let long = "x".repeat(70);
    let names = ["checkpoints".to_string(), "objects".into(), "dead_letters".into(), format!("{long}_alpha"), format!("{long}_beta")];
    for name in &names {
        let definition = json!({"name": name, "fields": {"title": {"type": "text", "index": true}}});
        let reply = api.call("PUT", &format!("/api/v1/meta/object/{name}"), Some(definition), &[]).await;
        assert!(reply.status.is_success(), "{name}: {} {}", reply.status, reply.body);
    }
    for name in &names {
        let reply = api.call("POST", &format!("/api/v1/data/{name}"), Some(json!({"title": format!("in {name}")})), &[]).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{name}: {}", reply.body);
    }
    for name in &names {
        let list = api.call("GET", &format!("/api/v1/data/{name}"), None, &[]).await;
        assert_eq!(list.status, StatusCode::OK, "{name}: {}", list.body);
        let titles: Vec<&Json> = list.body["data"]["records"].as_array().unwrap().iter().map(|r| &r["title"]).collect();
        assert_eq!(titles, vec![&json!(format!("in {name}"))], "{name}");
    }
    let status = api.call("GET", "/api/v1/projections/query", None, &[]).await;
    assert_eq!(status.body["data"]["deadLetters"], json!([]), "{}", status.body);
    assert_eq!(status.body["data"]["state"], json!("live"), "{}", status.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_never_collide_embedded() {
    names_never_collide(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_never_collide_postgres() {
    names_never_collide(true).await;
}
