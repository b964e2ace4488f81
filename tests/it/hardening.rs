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
async fn append_raw(api: &Api, stream: &str, event_type: &str, schema_version: u16, payload: Vec<u8>) -> u64 {
    let mut envelope = common::event("raw");
    envelope.event_type = event_type.into();
    envelope.schema_version = schema_version;
    envelope.payload = payload;
    let request = AppendRequest {
        streams: vec![StreamAppend { stream: stream.into(), expected: ExpectedVersion::Any, events: vec![envelope] }],
        idempotency_key: None,
        unique: Default::default(),
    };
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
    let payload = EventPayload::RecordCreated(RecordCreated { object: "order".into(), id: "poison".into(), record, automated: Vec::new() });
    let (event_type, version, bytes) = encode_payload(&payload);
    let poison = append_raw(&api, &StreamId::record("order", "poison").0, event_type, version, bytes).await;

    // Later writes and reads are served; the event is parked, the projection degraded.
    let created = api.call("POST", "/api/v1/data/order", Some(json!({"title": "after"})), &[]).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let list = api.call("GET", "/api/v1/data/order", None, &[]).await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.body);
    assert!(list.body["data"]["records"].as_array().unwrap().iter().any(|r| r["title"] == json!("after")));
    let status = api.call("GET", "/api/v1/projections/query", None, &[]).await;
    assert_eq!(letters(&status), vec![poison], "{}", status.body);
    assert_eq!(status.body["data"]["state"], json!("degraded"));
    let reason = status.body["data"]["deadLetters"][0]["error"].as_str().unwrap();
    assert!(reason.contains("SQLSTATE 22"), "parked because PostgreSQL refused the value: {reason}");
    assert!(!reason.contains("a\u{0}b"), "no value in the reason");
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
    let garbage = append_raw(&api, &StreamId::record("order", &id).0, "record.updated", 1, vec![0xff; 7]).await;
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

/// A server on a real socket with the given limits; returns its address.
async fn listening(limits: gateway::server::HttpOptions) -> (Api, std::net::SocketAddr) {
    let api = api(false).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(gateway::server::serve_with(listener, api.system.clone(), limits, std::future::pending()));
    (api, address)
}

/// Reads until the peer closes (Ok with what came) or `within` passes (Err).
async fn read_until_closed(stream: &mut tokio::net::TcpStream, within: std::time::Duration) -> Result<String, String> {
    use tokio::io::AsyncReadExt;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return Ok(String::from_utf8_lossy(&got).into_owned()),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
            Err(_) => return Err(String::from_utf8_lossy(&got).into_owned()),
        }
    }
}

/// Idle, partial-header, slow-body and idle keep-alive connections are closed
/// in their time; a request whose body never comes answers 408 in the envelope.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_and_idle_connections_are_closed() {
    use std::time::Duration;
    use tokio::io::AsyncWriteExt;
    let limits = gateway::server::HttpOptions {
        max_connections: 100,
        header_timeout: Duration::from_secs(1),
        request_timeout: Duration::from_secs(2),
        ..Default::default()
    };
    let (_api, address) = listening(limits).await;
    let connect = || tokio::net::TcpStream::connect(address);

    let mut idle = connect().await.unwrap();
    assert!(read_until_closed(&mut idle, Duration::from_secs(4)).await.is_ok(), "a connection that sends nothing is closed");

    let mut partial = connect().await.unwrap();
    partial.write_all(b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\n").await.unwrap();
    assert!(read_until_closed(&mut partial, Duration::from_secs(4)).await.is_ok(), "a connection that never ends its headers is closed");

    let mut kept = connect().await.unwrap();
    kept.write_all(b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let answer = read_until_closed(&mut kept, Duration::from_secs(4)).await.expect("an idle keep-alive connection is closed");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");

    let mut slow = connect().await.unwrap();
    slow.write_all(b"POST /api/v1/data/order HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"title\":").await.unwrap();
    let answer = read_until_closed(&mut slow, Duration::from_secs(6)).await.expect("a body that never comes is cut off");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("\"code\":\"timeout\""), "{answer}");
}

/// What hyper answers itself, before any handler (bytes that are not HTTP,
/// a URL over its limit, headers over its buffer, an unknown version), comes
/// in the envelope with its status.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hypers_own_answers_come_in_the_envelope() {
    use std::time::Duration;
    use tokio::io::AsyncWriteExt;
    let (_api, address) = listening(Default::default()).await;
    let long_url = format!("GET /api/v1/data/order?x={} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(70_000)).into_bytes();
    let big_headers = format!("GET /api/v1/health HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n", "b".repeat(500_000)).into_bytes();
    let cases: [(&str, Vec<u8>, u16); 4] = [
        ("raw bytes", b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03 not http\r\n\r\n".to_vec(), 400),
        ("a URL over the limit", long_url, 414),
        ("headers over the buffer", big_headers, 431),
        ("a broken request line", b"GET /api/v1/health HTTP/1.1 extra\r\nHost: x\r\n\r\n".to_vec(), 400),
    ];
    for (what, request, status) in cases {
        let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
        // The server may answer and close before it has read everything sent.
        let _ = stream.write_all(&request).await;
        let answer = read_until_closed(&mut stream, Duration::from_secs(5)).await.unwrap_or_else(|got| got);
        assert!(answer.starts_with(&format!("HTTP/1.1 {status} ")), "{what}: {}", answer.chars().take(200).collect::<String>());
        let body: Json = serde_json::from_str(answer.split("\r\n\r\n").nth(1).unwrap_or_default())
            .unwrap_or_else(|e| panic!("{what}: no envelope ({e}): {}", answer.chars().take(300).collect::<String>()));
        assert_eq!(body["success"], json!(false), "{what}");
        assert_eq!(body["error"]["httpStatus"], json!(status), "{what}");
    }
    // An ordinary answer on the same server is untouched.
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    stream.write_all(b"GET /api/v1/data/nothing HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await.unwrap();
    let answer = read_until_closed(&mut stream, Duration::from_secs(5)).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 404 ") && answer.contains("object_not_found"), "{answer}");
}

/// Connections beyond the cap wait to be accepted until one closes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_the_cap_wait() {
    use std::time::Duration;
    use tokio::io::AsyncWriteExt;
    let limits = gateway::server::HttpOptions {
        max_connections: 2,
        header_timeout: Duration::from_secs(30),
        request_timeout: Duration::from_secs(30),
        ..Default::default()
    };
    let (_api, address) = listening(limits).await;
    let first = tokio::net::TcpStream::connect(address).await.unwrap();
    let _second = tokio::net::TcpStream::connect(address).await.unwrap();
    let mut third = tokio::net::TcpStream::connect(address).await.unwrap();
    third.write_all(b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await.unwrap();
    let waiting = read_until_closed(&mut third, Duration::from_millis(700)).await;
    assert_eq!(waiting, Err(String::new()), "not served while two connections are open");
    drop(first);
    let answer = read_until_closed(&mut third, Duration::from_secs(5)).await.expect("served once one closed");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

/// Errors the HTTP layer makes itself come in the envelope: a path that is
/// not UTF-8, an oversized body (a size error, not a batch error).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edge_errors_in_the_envelope() {
    let api = api(false).await;
    for uri in ["/api/v1/data/order/%FF", "/api/v1/data/%FF%FE", "/api/v1/data/order/x/history?limit=%FF"] {
        let reply = api.call("GET", uri, None, &[]).await;
        assert!(reply.status.is_client_error(), "{uri}: {}", reply.status);
        assert_eq!(reply.body["success"], json!(false), "{uri}: {}", reply.body);
        assert_eq!(reply.body["error"]["httpStatus"], json!(reply.status.as_u16()), "{uri}: {}", reply.body);
    }
    let big = json!({"title": "x".repeat(9 << 20)});
    let reply = api.call("POST", "/api/v1/data/order", Some(big), &[]).await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(code(&reply), "validation_error");
    assert!(reply.body["error"]["message"].as_str().unwrap().contains("larger than the limit"), "{}", reply.body);
}

/// Racing PATCHes: without a version each applies to the latest state (none
/// fails, none reports a version the client never sent); with a stale
/// version in the header or the query exactly one wins.
async fn racing_patches(postgres: bool) {
    let api = std::sync::Arc::new(api(postgres).await);
    let created = api.call("POST", "/api/v1/data/order", Some(json!({"title": "race"})), &[]).await;
    let id = created.body["data"]["id"].as_str().unwrap().to_string();
    let mut tasks = Vec::new();
    for i in 0..64 {
        let (api, id) = (api.clone(), id.clone());
        tasks.push(tokio::spawn(async move { api.call("PATCH", &format!("/api/v1/data/order/{id}"), Some(json!({"amount": i})), &[]).await }));
    }
    for task in tasks {
        let reply = task.await.unwrap();
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    }
    let got = api.call("GET", &format!("/api/v1/data/order/{id}"), None, &[]).await;
    assert_eq!(got.headers["etag"], "\"65\"", "every unversioned PATCH applied once");

    for conditional in [("?expectedVersion=65", None), ("", Some("\"65\""))] {
        let mut tasks = Vec::new();
        for i in 0..32 {
            let (api, id, (query, etag)) = (api.clone(), id.clone(), conditional);
            tasks.push(tokio::spawn(async move {
                let headers: Vec<(&str, &str)> = etag.iter().map(|e| ("if-match", *e)).collect();
                api.call("PATCH", &format!("/api/v1/data/order/{id}{query}"), Some(json!({"amount": 1000 + i})), &headers).await.status
            }));
        }
        let mut wins = 0;
        for task in tasks {
            match task.await.unwrap() {
                StatusCode::OK => wins += 1,
                StatusCode::CONFLICT | StatusCode::PRECONDITION_FAILED => {}
                other => panic!("unexpected {other}"),
            }
        }
        // The first round moved the record to 66: the second round's version is stale for all.
        let expected = if conditional.0.is_empty() { 0 } else { 1 };
        assert_eq!(wins, expected, "{conditional:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_patches_embedded() {
    racing_patches(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_patches_postgres() {
    racing_patches(true).await;
}

/// An idempotency key reused for a different request answers 422 (the IETF
/// draft); the same request gets the first result; another object is another scope.
async fn idempotency_key_reuse(postgres: bool) {
    let api = api(postgres).await;
    let key = [("idempotency-key", "k-1")];
    let first = api.call("POST", "/api/v1/data/customer", Some(json!({"name": "Alan"})), &key).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
    let again = api.call("POST", "/api/v1/data/customer", Some(json!({"name": "Alan"})), &key).await;
    assert!(again.status.is_success(), "{}", again.body);
    assert_eq!(again.body["data"]["id"], first.body["data"]["id"]);
    let other = api.call("POST", "/api/v1/data/customer", Some(json!({"name": "Barbara"})), &key).await;
    assert_eq!(other.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", other.body);
    assert_eq!(code(&other), "resource_conflict");
    let elsewhere = api.call("POST", "/api/v1/data/order", Some(json!({"title": "Barbara"})), &key).await;
    assert_eq!(elsewhere.status, StatusCode::CREATED, "{}", elsewhere.body);
    let list = api.call("GET", "/api/v1/data/customer?name=Barbara", None, &[]).await;
    assert_eq!(list.body["data"]["records"], json!([]), "the reused key wrote nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotency_key_reuse_embedded() {
    idempotency_key_reuse(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotency_key_reuse_postgres() {
    idempotency_key_reuse(true).await;
}

/// GraphQL counts rows, not fields: aliases of a big list are refused before
/// anything runs; an ordinary query passes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graphql_counts_rows_and_fields() {
    let api = api(false).await;
    let post = |query: String, variables: Json| {
        let api = &api;
        async move { api.call("POST", "/api/v1/graphql", Some(json!({"query": query, "variables": variables})), &[]).await }
    };
    let aliases: String = (0..200).map(|i| format!("a{i}: orderList(limit: 10000) {{ records {{ id title }} }} ")).collect();
    let reply = post(format!("{{ {aliases} }}"), json!({})).await;
    assert!(reply.body["data"].is_null(), "nothing ran: {}", reply.body.to_string().chars().take(300).collect::<String>());
    let error = &reply.body["errors"][0];
    assert!(error["message"].as_str().unwrap().contains("rows"), "{error}");
    assert_eq!(error["extensions"]["code"], json!("invalid_query"));
    // The limit through a variable, and through a fragment.
    let reply =
        post("query($n: Int) { a: orderList(limit: $n) { records { id } } b: orderList(limit: $n) { records { id } } }".into(), json!({"n": 30000})).await;
    assert!(reply.body["errors"][0]["message"].as_str().unwrap_or_default().contains("rows"), "{}", reply.body);
    let fragment: String = (0..60).map(|i| format!("x{i}: orderList(limit: 1000) {{ records {{ id }} }} ")).collect();
    let reply = post(format!("query {{ ...F }} fragment F on Query {{ {fragment} }}"), json!({})).await;
    assert!(reply.body["errors"][0]["message"].as_str().unwrap_or_default().contains("rows"), "{}", reply.body);
    let many: String = (0..2_100).map(|i| format!("f{i}: _position ")).collect();
    let reply = post(format!("{{ {many} }}"), json!({})).await;
    assert!(
        reply.body["errors"][0]["message"].as_str().unwrap_or_default().contains("fields"),
        "{}",
        reply.body.to_string().chars().take(300).collect::<String>()
    );
    let fine = post("{ a: orderList(limit: 10000) { records { id } } b: customerList { records { name } } }".into(), json!({})).await;
    assert!(fine.body["errors"].is_null(), "{}", fine.body);
    assert!(fine.body["data"]["b"]["records"].is_array(), "{}", fine.body);
}

/// Rows are not bytes: a query within the row limit whose answer would be
/// larger than the byte budget (20 aliases of 100 records of 20 KB, about
/// 40 MB) is refused with one error in the envelope; half of it answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graphql_answers_have_a_byte_budget() {
    use futures_util::SinkExt;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    use tokio_tungstenite::tungstenite::Message;
    let server = crate::realtime::server(false).await;
    let api = &server.api;
    let name = "n".repeat(20_000);
    for _ in 0..100 {
        let reply = api.call("POST", "/api/v1/data/customer", Some(json!({"name": name})), &[]).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    }
    let aliases = |n: usize| (0..n).map(|i| format!("a{i}: customerList(limit: 100) {{ records {{ id name }} }} ")).collect::<String>();
    let reply = api.call("POST", "/api/v1/graphql", Some(json!({"query": format!("{{ {} }}", aliases(20))})), &[]).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.body.to_string().chars().take(300).collect::<String>());
    assert_eq!(reply.body["error"]["code"], json!("max_records_exceeded"), "{}", reply.body.to_string().chars().take(300).collect::<String>());
    assert!(reply.body["error"]["message"].as_str().unwrap().contains("MiB"), "{}", reply.body["error"]);
    let half = api.call("POST", "/api/v1/graphql", Some(json!({"query": format!("{{ {} }}", aliases(10))})), &[]).await;
    assert!(half.body["errors"].is_null(), "{}", half.body.to_string().chars().take(300).collect::<String>());
    assert_eq!(half.body["data"]["a9"]["records"].as_array().map(Vec::len), Some(100));
    // Over the WebSocket the same query gets the error, and the answer stopped growing at the budget.
    let mut request = format!("ws://{}/api/v1/graphql", server.base).into_client_request().unwrap();
    request.headers_mut().insert("sec-websocket-protocol", "graphql-transport-ws".parse().unwrap());
    let mut ws = tokio_tungstenite::connect_async(request).await.unwrap().0;
    ws.send(Message::Text(json!({"type": "connection_init"}).to_string().into())).await.unwrap();
    assert!(frame(&mut ws).await.to_text().unwrap().contains("connection_ack"));
    let query = format!("{{ {} }}", aliases(20));
    ws.send(Message::Text(json!({"id": "big", "type": "subscribe", "payload": {"query": query}}).to_string().into())).await.unwrap();
    let next = frame(&mut ws).await;
    let text = next.to_text().unwrap();
    assert!(text.len() < 4096, "the error alone, as over HTTP: {} bytes", text.len());
    let message: Json = serde_json::from_str(text).unwrap();
    let codes: Vec<&Json> = message["payload"]["errors"].as_array().unwrap().iter().map(|e| &e["extensions"]["code"]).collect();
    assert!(codes.contains(&&json!("max_records_exceeded")), "{}", text.chars().take(300).collect::<String>());
}

/// The next frame of a socket, whatever it is.
async fn frame<S>(ws: &mut tokio_tungstenite::WebSocketStream<S>) -> tokio_tungstenite::tungstenite::Message
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    use futures_util::StreamExt;
    tokio::time::timeout(std::time::Duration::from_secs(10), ws.next()).await.expect("a frame within 10 s").expect("socket open").unwrap()
}

fn close_code(message: &tokio_tungstenite::tungstenite::Message) -> Option<u16> {
    match message {
        tokio_tungstenite::tungstenite::Message::Close(Some(frame)) => Some(frame.code.into()),
        _ => None,
    }
}

/// The GraphQL socket's protocol rules: subscribe before init closes with
/// 4401, a reused id with 4409, a malformed frame with 1002, and one
/// subscription over the cap is refused by id while the others go on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graphql_socket_rules() {
    use futures_util::SinkExt;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    use tokio_tungstenite::tungstenite::Message;
    let server = crate::realtime::server(false).await;
    let open = || async {
        let mut request = format!("ws://{}/api/v1/graphql", server.base).into_client_request().unwrap();
        request.headers_mut().insert("sec-websocket-protocol", "graphql-transport-ws".parse().unwrap());
        tokio_tungstenite::connect_async(request).await.unwrap().0
    };
    let send = |message: Json| Message::Text(message.to_string().into());
    let subscribe = |id: String| send(json!({"id": id, "type": "subscribe", "payload": {"query": "subscription { orderChanged { type } }"}}));

    let mut ws = open().await;
    ws.send(subscribe("1".into())).await.unwrap();
    assert_eq!(close_code(&frame(&mut ws).await), Some(4401));

    let mut ws = open().await;
    ws.send(send(json!({"type": "connection_init"}))).await.unwrap();
    assert!(frame(&mut ws).await.to_text().unwrap().contains("connection_ack"));
    ws.send(subscribe("a".into())).await.unwrap();
    ws.send(subscribe("a".into())).await.unwrap();
    assert_eq!(close_code(&frame(&mut ws).await), Some(4409));

    let mut ws = open().await;
    ws.send(Message::Text("{not json".into())).await.unwrap();
    assert_eq!(close_code(&frame(&mut ws).await), Some(1002));

    let mut ws = open().await;
    ws.send(send(json!({"type": "connection_init"}))).await.unwrap();
    frame(&mut ws).await;
    let cap = 200;
    for i in 0..=cap {
        ws.send(subscribe(i.to_string())).await.unwrap();
    }
    let refused = crate::realtime::next(&mut ws).await;
    assert_eq!((refused["type"].as_str(), refused["id"].as_str()), (Some("error"), Some("200")), "{refused}");
    assert_eq!(refused["payload"][0]["extensions"]["code"], json!("rate_limit_exceeded"));
    // A completed subscription frees its place.
    ws.send(send(json!({"id": "0", "type": "complete"}))).await.unwrap();
    ws.send(subscribe("again".into())).await.unwrap();
    // Subscriptions start when the server first polls them: write until each has seen a change.
    // A change the server read before the client's complete may still reach
    // "0"; none may once "again" (subscribed after it) has had one.
    let mut seen = std::collections::HashSet::new();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    while seen.len() < cap {
        assert!(tokio::time::Instant::now() < deadline, "only {} subscriptions saw a change", seen.len());
        server.api.call("POST", "/api/v1/data/order", Some(json!({"title": "seen"})), &[]).await;
        use futures_util::StreamExt;
        while let Ok(Some(Ok(Message::Text(text)))) = tokio::time::timeout(std::time::Duration::from_millis(300), ws.next()).await {
            let message: Json = serde_json::from_str(&text).unwrap();
            if message["type"] == json!("complete") && message["id"] == json!("0") {
                continue;
            }
            assert_eq!(message["type"], json!("next"), "{message}");
            let id = message["id"].as_str().unwrap().to_string();
            if id == "0" {
                assert!(!seen.contains("again"), "the completed subscription was still served after the next one started");
                continue;
            }
            seen.insert(id);
        }
    }
    assert!(seen.contains("again") && !seen.contains("200"), "{seen:?}");
}

/// The live queries of one connection hold at most 50,000 rows (each counts
/// its limit): one more is refused with the reason, the others go on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_queries_have_a_row_budget() {
    let server = crate::realtime::server(false).await;
    let mut ws = crate::realtime::socket(&server, "").await;
    for i in 0..5 {
        crate::realtime::send(&mut ws, json!({"type": "live", "id": format!("q{i}"), "object": "order", "query": {"limit": 10000}})).await;
        let ack = crate::realtime::next(&mut ws).await;
        assert_eq!(ack["type"], json!("subscribed"), "{ack}");
        let snapshot = crate::realtime::next(&mut ws).await;
        assert_eq!(snapshot["type"], json!("snapshot"), "{snapshot}");
    }
    crate::realtime::send(&mut ws, json!({"type": "live", "id": "q5", "object": "order", "query": {"limit": 1}})).await;
    let refused = crate::realtime::next(&mut ws).await;
    assert_eq!((refused["type"].as_str(), refused["id"].as_str()), (Some("error"), Some("q5")), "{refused}");
    assert!(refused["error"]["message"].as_str().unwrap().contains("50000"), "{refused}");
    crate::realtime::send(&mut ws, json!({"type": "unsubscribe", "id": "q0"})).await;
    assert_eq!(crate::realtime::next(&mut ws).await["type"], json!("unsubscribed"));
    crate::realtime::send(&mut ws, json!({"type": "live", "id": "q6", "object": "order", "query": {"limit": 10000}})).await;
    assert_eq!(crate::realtime::next(&mut ws).await["type"], json!("subscribed"), "room again once one ended");
}

/// One rebuild at a time: asking again for the running one answers its
/// status, asking for another is refused until it is done.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_rebuild_at_a_time() {
    let api = api(false).await;
    // A rebuild of the audit model under way (its progress not done).
    let (_progress, running) = tokio::sync::watch::channel(projections::rebuild::Progress::default());
    api.system.rebuilds.lock().unwrap().insert("audit".into(), (0, Some(running)));
    let again = api.call("POST", "/api/v1/projections/audit/rebuild", None, &[]).await;
    assert_eq!(again.status, StatusCode::ACCEPTED, "{}", again.body);
    assert_eq!(again.body["data"]["state"], json!("rebuilding"), "{}", again.body);
    let other = api.call("POST", "/api/v1/projections/search/rebuild", None, &[]).await;
    assert_eq!(other.status, StatusCode::CONFLICT, "{}", other.body);
    assert!(other.body["error"]["message"].as_str().unwrap().contains("'audit'"), "{}", other.body);
    api.system.rebuilds.lock().unwrap().clear();
    let now = api.call("POST", "/api/v1/projections/search/rebuild", None, &[]).await;
    assert_eq!(now.status, StatusCode::ACCEPTED, "{}", now.body);
}

/// CORS: off by default; with origins configured, a preflight from one of
/// them is answered and responses name it, another origin gets nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_for_configured_origins() {
    use std::time::Duration;
    use tokio::io::AsyncWriteExt;
    async fn ask(address: std::net::SocketAddr, request: &str) -> String {
        let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
        stream.write_all(request.as_bytes()).await.unwrap();
        read_until_closed(&mut stream, Duration::from_secs(5)).await.expect("an answer").to_lowercase()
    }
    let preflight = |origin: &str| {
        format!("OPTIONS /api/v1/data/order HTTP/1.1\r\nHost: x\r\nOrigin: {origin}\r\nAccess-Control-Request-Method: POST\r\nAccess-Control-Request-Headers: content-type, authorization\r\nConnection: close\r\n\r\n")
    };
    let (_off, address) = listening(gateway::server::HttpOptions::default()).await;
    assert!(!ask(address, &preflight("http://app.example")).await.contains("access-control-allow-origin"), "off by default");

    let options = gateway::server::HttpOptions { cors_origins: vec!["http://app.example".into()], ..Default::default() };
    let (_api, address) = listening(options).await;
    let answer = ask(address, &preflight("http://app.example")).await;
    assert!(answer.starts_with("http/1.1 200"), "{answer}");
    assert!(answer.contains("access-control-allow-origin: http://app.example"), "{answer}");
    assert!(answer.contains("authorization"), "{answer}");
    let get = ask(address, "GET /api/v1/data/order HTTP/1.1\r\nHost: x\r\nOrigin: http://app.example\r\nConnection: close\r\n\r\n").await;
    assert!(get.contains("access-control-allow-origin: http://app.example") && get.contains("x-log-position"), "{get}");
    let other = ask(address, &preflight("http://evil.example")).await;
    assert!(!other.contains("access-control-allow-origin"), "{other}");
}

/// `/metrics` counts requests by method, route and status class, with a
/// latency histogram per route, errors by code and the appends made.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_metrics() {
    use std::time::Duration;
    use tokio::io::AsyncWriteExt;
    let (_api, address) = listening(gateway::server::HttpOptions::default()).await;
    let ask = |request: String| async move {
        let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
        stream.write_all(request.as_bytes()).await.unwrap();
        read_until_closed(&mut stream, Duration::from_secs(5)).await.expect("an answer")
    };
    let counter = |metrics: &str, name: &str| -> u64 {
        metrics.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok()).unwrap_or_else(|| panic!("no {name} in {metrics}"))
    };
    let before = ask("GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".into()).await;
    for _ in 0..3 {
        ask("GET /api/v1/data/order HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".into()).await;
    }
    ask("GET /api/v1/data/nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".into()).await;
    let body = "{\"title\":\"counted\"}";
    ask(format!(
        "POST /api/v1/data/order HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    ))
    .await;
    let metrics = ask("GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".into()).await;
    let route = "route=\"/api/v1/data/{object}\"";
    for line in [
        format!("objectstack_http_requests_total{{method=\"GET\",{route},status=\"2xx\"}} 3"),
        format!("objectstack_http_requests_total{{method=\"GET\",{route},status=\"4xx\"}} 1"),
        format!("objectstack_http_requests_total{{method=\"POST\",{route},status=\"2xx\"}} 1"),
        format!("objectstack_http_request_duration_seconds_count{{method=\"GET\",{route}}} 4"),
        format!("objectstack_http_request_duration_seconds_bucket{{method=\"GET\",{route},le=\"+Inf\"}} 4"),
        "objectstack_http_errors_total{code=\"object_not_found\"} 1".to_string(),
    ] {
        assert!(metrics.contains(&line), "{line} missing from\n{metrics}");
    }
    for name in ["objectstack_appends_total", "objectstack_events_appended_total"] {
        assert_eq!(counter(&metrics, name), counter(&before, name) + 1, "{name}: one create, one event");
    }
}

/// A definition with a property the protocol does not have (a typo) is
/// refused, naming the one meant; nothing is logged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn definition_typos_are_refused() {
    let api = api(false).await;
    let head = *api.system.commands.store().head().borrow();
    let definition = json!({"name": "memo", "fields": {"title": {"type": "text", "requird": true}}});
    let reply = api.call("PUT", "/api/v1/meta/object/memo", Some(definition), &[]).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.body);
    let message = reply.body["error"]["message"].as_str().unwrap();
    assert!(message.contains("/fields/title/requird") && message.contains("did you mean 'required'"), "{message}");
    let definition = json!({"name": "memo", "lable": "Memo", "fields": {"title": {"type": "text"}}});
    let reply = api.call("PUT", "/api/v1/meta/object/memo", Some(definition), &[]).await;
    assert!(reply.body["error"]["message"].as_str().unwrap().contains("did you mean 'label'"), "{}", reply.body);
    assert_eq!(*api.system.commands.store().head().borrow(), head);
    let good = json!({"name": "memo", "label": "Memo", "fields": {"title": {"type": "text", "required": true}}});
    assert!(api.call("PUT", "/api/v1/meta/object/memo", Some(good), &[]).await.status.is_success());
}

/// A definition change that would leave records impossible to edit (a new
/// required field, a removed option, a shorter maximum) is refused with what
/// breaks; the same change on an object without such records goes through.
async fn breaking_definition_changes(postgres: bool) {
    let api = api(postgres).await;
    let created = api.call("POST", "/api/v1/data/order", Some(json!({"title": "a long enough title", "status": "paid"})), &[]).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let base = |fields: Json| json!({"name": "order", "fields": fields});
    let mut fields = json!({
        "title": {"type": "text", "required": true, "maxLength": 40},
        "amount": {"type": "currency"},
        "status": {"type": "select", "options": [{"label": "Open", "value": "open", "default": true}, {"label": "Paid", "value": "paid"}]},
        "customer": {"type": "lookup", "reference": "customer"},
        "total": {"type": "formula", "expression": "amount * 2"}});
    let head = *api.system.commands.store().head().borrow();
    for (change, expected) in [
        (json!({"region": {"type": "text", "required": true}}), "'region' would be required"),
        (json!({"status": {"type": "select", "options": [{"label": "Open", "value": "open"}]}}), "'status'"),
        (json!({"title": {"type": "text", "required": true, "maxLength": 5}}), "'title'"),
    ] {
        let mut changed = fields.clone();
        for (k, v) in change.as_object().unwrap() {
            changed[k] = v.clone();
        }
        let reply = api.call("PUT", "/api/v1/meta/object/order", Some(base(changed)), &[]).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.body);
        let message = reply.body["error"]["message"].as_str().unwrap();
        assert!(message.contains("would break existing records") && message.contains(expected) && message.contains("1 record"), "{message}");
    }
    assert_eq!(*api.system.commands.store().head().borrow(), head, "nothing logged");
    // Optional fields and added options are safe.
    fields["region"] = json!({"type": "text"});
    fields["status"]["options"].as_array_mut().unwrap().push(json!({"label": "Void", "value": "void"}));
    let reply = api.call("PUT", "/api/v1/meta/object/order", Some(base(fields)), &[]).await;
    assert!(reply.status.is_success(), "{}", reply.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn breaking_definition_changes_embedded() {
    breaking_definition_changes(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn breaking_definition_changes_postgres() {
    breaking_definition_changes(true).await;
}

/// A breaking change that says how to migrate goes through: the definition
/// and one `record.updated` per migrated record in one append (so the trail
/// shows them, by the caller who changed the definition), and the records
/// stay editable. A migration that leaves some record broken is refused with
/// what still breaks, and nothing is logged.
async fn migrated_definition_changes(postgres: bool) {
    let api = api(postgres).await;
    let mut ids = Vec::new();
    for (title, status) in [("first order title", "paid"), ("second order title", "paid"), ("third order title", "open")] {
        let created = api.call("POST", "/api/v1/data/order", Some(json!({"title": title, "status": status})), &[]).await;
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
        ids.push(created.body["data"]["id"].as_str().unwrap().to_string());
    }
    let fields = |options: &[&str]| {
        json!({
            "title": {"type": "text", "required": true, "maxLength": 40},
            "amount": {"type": "currency"},
            "status": {"type": "select", "options": options.iter().map(|o| json!({"label": o, "value": o})).collect::<Vec<_>>()},
            "customer": {"type": "lookup", "reference": "customer"},
            "total": {"type": "formula", "expression": "amount * 2"},
            "region": {"type": "text", "required": true}})
    };
    let definition = json!({"name": "order", "fields": fields(&["open", "settled", "void"])});
    let head = *api.system.commands.store().head().borrow();

    // The migration fills the new field but leaves 'paid' (removed) where it is: refused, nothing logged.
    let body = json!({"definition": definition.clone(), "migration": {"region": {"backfill": "north"}}});
    let reply = api.call("PUT", "/api/v1/meta/object/order", Some(body), &[]).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.body);
    let message = reply.body["error"]["message"].as_str().unwrap();
    assert!(message.contains("would break existing records") && message.contains("'status'") && message.contains("Say how to migrate"), "{message}");
    // A backfill the new definition refuses is refused as such.
    let body = json!({"definition": definition.clone(), "migration": {"region": {"backfill": 7}}});
    let reply = api.call("PUT", "/api/v1/meta/object/order", Some(body), &[]).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.body);
    assert!(reply.body["error"]["message"].as_str().unwrap().contains("the backfill of order.region"), "{}", reply.body);
    assert_eq!(*api.system.commands.store().head().borrow(), head, "nothing logged");

    let body = json!({"definition": definition, "migration": {"region": {"backfill": "north"}, "status": {"remap": {"paid": "settled"}}}});
    let reply = api.call("PUT", "/api/v1/meta/object/order", Some(body), &[]).await;
    assert!(reply.status.is_success(), "{}", reply.body);
    let events = api.system.commands.store().read_all(head, 100).await.unwrap();
    let types: Vec<&str> = events.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(types, ["object.altered", "record.updated", "record.updated", "record.updated"], "one append: the definition, then every record");
    assert!(events.iter().all(|e| e.correlation_id == events[0].correlation_id && e.actor == events[0].actor), "one change, one actor");
    for (id, status) in ids.iter().zip(["settled", "settled", "open"]) {
        let record = api.call("GET", &format!("/api/v1/data/order/{id}"), None, &[]).await;
        assert_eq!(
            (record.body["data"]["record"]["status"].as_str(), record.body["data"]["record"]["region"].as_str()),
            (Some(status), Some("north")),
            "{}",
            record.body
        );
    }
    let patch = api.call("PATCH", &format!("/api/v1/data/order/{}", ids[0]), Some(json!({"title": "edited after the change"})), &[]).await;
    assert_eq!(patch.status, StatusCode::OK, "a migrated record is editable: {}", patch.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrated_definition_changes_embedded() {
    migrated_definition_changes(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrated_definition_changes_postgres() {
    migrated_definition_changes(true).await;
}

/// A write whose caller goes away once its append is under way (a client
/// gone, a request timed out) still reaches the write model: the record
/// exists for the next command, and its unique values are not held for ever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_write_still_reaches_the_write_model() {
    let api = api(false).await;
    let commands = &api.system.commands;
    let before = *commands.store().head().borrow();
    let mut data = serde_json::Map::new();
    data.insert("name".into(), json!("Dropped"));
    data.insert("email".into(), json!("dropped@example.com"));
    let command = commands::service::Command::Create { object: "customer".into(), id: Some("c-dropped".into()), data };
    let mut write = Box::pin(commands.execute(command, commands::service::CommandMeta::system()));
    assert!(futures_util::poll!(&mut write).is_pending(), "the append is under way");
    drop(write);
    let mut head = commands.store().head();
    tokio::time::timeout(std::time::Duration::from_secs(5), head.wait_for(|h| *h > before)).await.expect("the append committed").unwrap();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    while !commands.exists("customer", "c-dropped") {
        assert!(tokio::time::Instant::now() < deadline, "the committed create never reached the write model");
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let patch = api.call("PATCH", "/api/v1/data/customer/c-dropped", Some(json!({"name": "Kept"})), &[]).await;
    assert_eq!(patch.status, StatusCode::OK, "{}", patch.body);
    let again = api.call("POST", "/api/v1/data/customer", Some(json!({"name": "Other", "email": "dropped@example.com"})), &[]).await;
    assert_eq!(code(&again), "duplicate_value", "the unique value is held by the committed record, once");
}
