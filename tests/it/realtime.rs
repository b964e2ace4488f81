//! Realtime end to end over a real WebSocket, on both stores: subscribers get
//! exactly the committed changes in order, filters apply, a forced disconnect
//! resumes with no gap and no duplicate, live queries send their result then
//! only the changes, and a slow consumer is dropped while others keep up.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use projections::live::{Message as LiveMessage, Resume, Spec};
use serde_json::{json, Value as Json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{connect_async, MaybeTlsStream, WebSocketStream};

use crate::rest::{api, Api};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

pub(crate) struct Server {
    pub(crate) api: Api,
    pub(crate) base: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

pub(crate) async fn server(postgres: bool) -> Server {
    let api = api(postgres).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("127.0.0.1:{}", listener.local_addr().unwrap().port());
    let (stop, stop_rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(gateway::server::serve(listener, api.system.clone(), async {
        let _ = stop_rx.await;
    }));
    Server { api, base, stop: Some(stop) }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

pub(crate) async fn socket(server: &Server, query: &str) -> Socket {
    connect_async(format!("ws://{}/api/v1/realtime{query}", server.base)).await.unwrap().0
}

pub(crate) async fn send(ws: &mut Socket, message: Json) {
    ws.send(Message::Text(message.to_string().into())).await.unwrap();
}

/// The next JSON frame (at most 10 s away).
pub(crate) async fn next<S>(ws: &mut WebSocketStream<S>) -> Json
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(10), ws.next()).await.expect("a frame within 10 s").expect("socket open").unwrap();
        if let Message::Text(text) = frame {
            return serde_json::from_str(&text).unwrap();
        }
    }
}

/// No frame arrives within a short while.
async fn quiet(ws: &mut Socket) {
    if let Ok(Some(Ok(Message::Text(text)))) = tokio::time::timeout(Duration::from_millis(300), ws.next()).await {
        panic!("unexpected frame {text}");
    }
}

async fn write(api: &Api, method: &str, uri: &str, body: Option<Json>) -> (Json, u64) {
    let reply = api.call(method, uri, body, &[]).await;
    assert!(reply.status.is_success(), "{} {uri}: {}", reply.status, reply.body);
    let position = reply.headers["x-log-position"].to_str().unwrap().parse().unwrap();
    (reply.body["data"].clone(), position)
}

async fn create(api: &Api, title: &str, status: &str) -> (String, u64) {
    let (data, position) = write(api, "POST", "/api/v1/data/order", Some(json!({"title": title, "status": status, "amount": 1}))).await;
    (data["id"].as_str().unwrap().to_string(), position)
}

async fn changes_in_order_with_filters_and_resume(postgres: bool) {
    let server = server(postgres).await;
    let api = &server.api;
    let mut all = socket(&server, "").await;
    send(&mut all, json!({"type": "subscribe", "id": "all-orders", "object": "order"})).await;
    let ack = next(&mut all).await;
    assert_eq!(ack["type"], json!("subscribed"), "{ack}");
    let mut paid = socket(&server, "").await;
    send(
        &mut paid,
        json!({"type": "subscribe", "object": "order", "events": ["record.updated", "field.changed"], "filter": {"status": "paid"}, "fields": ["status"]}),
    )
    .await;
    assert_eq!(next(&mut paid).await["type"], json!("subscribed"));

    // Committed changes arrive exactly once each, in commit order, with their positions.
    let (a, pa) = create(api, "A", "open").await;
    let (b, pb) = create(api, "B", "open").await;
    let (_, pu) = write(api, "PATCH", &format!("/api/v1/data/order/{a}"), Some(json!({"status": "paid"}))).await;
    let (_, pt) = write(api, "PATCH", &format!("/api/v1/data/order/{a}"), Some(json!({"title": "A2"}))).await;
    let (_, pd) = write(api, "DELETE", &format!("/api/v1/data/order/{b}"), None).await;
    let expected = [("record.created", &a, pa), ("record.created", &b, pb), ("record.updated", &a, pu), ("record.updated", &a, pt), ("record.deleted", &b, pd)];
    for (kind, id, position) in expected {
        let event = next(&mut all).await;
        assert_eq!(
            (event["type"].as_str().unwrap(), event["payload"]["id"].as_str().unwrap(), event["position"].as_u64().unwrap()),
            (kind, id.as_str(), position),
            "{event}"
        );
        assert_eq!(event["subscriptionId"], json!("all-orders"));
        assert_eq!(event["object"], json!("order"));
    }
    quiet(&mut all).await;

    // The filtered subscriber: only the status change (the title change touched no watched field).
    let updated = next(&mut paid).await;
    assert_eq!((updated["type"].as_str(), updated["position"].as_u64()), (Some("record.updated"), Some(pu)), "{updated}");
    assert_eq!(updated["payload"]["record"]["status"], json!("paid"));
    assert_eq!(updated["payload"]["previous"]["status"], json!("open"));
    assert_eq!(updated["payload"]["changes"][0], json!({"field": "status", "oldValue": "open", "newValue": "paid"}));
    assert_eq!(updated["payload"]["record"]["total"], json!(2), "formula fields are computed");
    let field = next(&mut paid).await;
    assert_eq!((field["type"].as_str(), field["position"].as_u64()), (Some("field.changed"), Some(pu)));
    quiet(&mut paid).await;

    // A forced disconnect: changes made meanwhile are replayed after the last position seen, once.
    drop(all);
    let (c, pc) = create(api, "C", "open").await;
    let (_, pc2) = write(api, "PATCH", &format!("/api/v1/data/order/{c}"), Some(json!({"amount": 5}))).await;
    let mut again = socket(&server, "").await;
    send(&mut again, json!({"type": "subscribe", "id": "all-orders", "after": pd})).await;
    assert_eq!(next(&mut again).await["type"], json!("subscribed"));
    for (kind, position) in [("record.created", pc), ("record.updated", pc2)] {
        let event = next(&mut again).await;
        assert_eq!((event["type"].as_str().unwrap(), event["position"].as_u64().unwrap()), (kind, position), "{event}");
    }
    let (_, pe) = create(api, "E", "open").await;
    assert_eq!(next(&mut again).await["position"].as_u64(), Some(pe), "then live again");
    quiet(&mut again).await;

    // Bad input is an error frame in the envelope's error shape, never a dropped socket.
    send(&mut again, json!({"type": "subscribe", "object": "ghost"})).await;
    assert_eq!(next(&mut again).await["error"]["code"], json!("object_not_found"));
    send(&mut again, json!({"type": "subscribe", "object": "order", "filter": {"nope": 1}})).await;
    assert_eq!(next(&mut again).await["error"]["code"], json!("invalid_filter"));
    again.send(Message::Text("{not json".into())).await.unwrap();
    assert_eq!(next(&mut again).await["error"]["code"], json!("validation_error"));
    send(&mut again, json!({"type": "ping"})).await;
    assert_eq!(next(&mut again).await["type"], json!("pong"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_in_order_with_filters_and_resume_embedded() {
    changes_in_order_with_filters_and_resume(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_in_order_with_filters_and_resume_postgres() {
    changes_in_order_with_filters_and_resume(true).await;
}

/// Applies live-query ops to a client-side list, as a client would.
fn apply(list: &mut Vec<Json>, ops: &[Json]) {
    let at = |list: &Vec<Json>, id: &Json| list.iter().position(|r| r["id"] == *id);
    for op in ops {
        let index = op["index"].as_u64().map(|i| i as usize);
        match op["op"].as_str().unwrap() {
            "remove" => list.retain(|r| r["id"] != op["id"]),
            "insert" => list.insert(index.unwrap().min(list.len()), op["record"].clone()),
            "update" | "move" => {
                let old = at(list, &op["id"]).map(|i| list.remove(i));
                let record = if op["op"] == "update" { op["record"].clone() } else { old.unwrap() };
                list.insert(index.unwrap().min(list.len()), record);
            }
            other => panic!("unknown op {other}"),
        }
    }
}

async fn live_query(postgres: bool) {
    let server = server(postgres).await;
    let api = &server.api;
    let (first, _) = create(api, "m-1", "open").await;
    let query = json!({"where": {"status": "open"}, "orderBy": [{"field": "title", "order": "asc"}], "limit": 3});
    let mut ws = socket(&server, "").await;
    send(&mut ws, json!({"type": "live", "id": "board", "object": "order", "query": query})).await;
    assert_eq!(next(&mut ws).await["type"], json!("subscribed"));
    let snapshot = next(&mut ws).await;
    assert_eq!(snapshot["type"], json!("snapshot"), "{snapshot}");
    let mut list: Vec<Json> = snapshot["records"].as_array().unwrap().clone();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["id"], json!(first));

    let check = |list: &Vec<Json>, reply: &Json| {
        let ids: Vec<&Json> = list.iter().map(|r| &r["id"]).collect();
        let expected: Vec<&Json> = reply["records"].as_array().unwrap().iter().map(|r| &r["id"]).collect();
        assert_eq!(ids, expected);
    };
    let mut last = 0;
    let mut steps: Vec<(&str, Json)> = Vec::new();
    for title in ["m-0", "m-3", "m-2", "m-4"] {
        steps.push(("POST", json!({"title": title, "status": "open"})));
    }
    for (method, body) in steps {
        let (_, position) = write(api, method, "/api/v1/data/order", Some(body)).await;
        let ops = next(&mut ws).await;
        assert_eq!(ops["type"], json!("ops"), "{ops}");
        assert_eq!(ops["position"].as_u64(), Some(position));
        apply(&mut list, ops["ops"].as_array().unwrap());
        let reply = api.call("POST", "/api/v1/data/order/query", Some(query.clone()), &[]).await;
        check(&list, &reply.body["data"]);
        assert_eq!(ops["total"], reply.body["data"]["total"]);
        last = position;
    }
    // A change outside the window moves only the total; one inside it, the list.
    let (_, p) = write(api, "PATCH", &format!("/api/v1/data/order/{first}"), Some(json!({"status": "paid"}))).await;
    let ops = next(&mut ws).await;
    assert_eq!(ops["position"].as_u64(), Some(p));
    apply(&mut list, ops["ops"].as_array().unwrap());
    check(&list, &api.call("POST", "/api/v1/data/order/query", Some(query.clone()), &[]).await.body["data"]);

    // Disconnect, change things, resume from the last position seen: only what was missed.
    drop(ws);
    let _ = last;
    let (_, _) = create(api, "m-00", "open").await;
    let (_, _) = create(api, "z-ignored", "paid").await;
    let mut ws = socket(&server, "").await;
    send(&mut ws, json!({"type": "live", "id": "board", "object": "order", "query": query, "after": p})).await;
    assert_eq!(next(&mut ws).await["type"], json!("subscribed"));
    let ops = next(&mut ws).await;
    assert_eq!(ops["type"], json!("ops"), "{ops}");
    apply(&mut list, ops["ops"].as_array().unwrap());
    check(&list, &api.call("POST", "/api/v1/data/order/query", Some(query.clone()), &[]).await.body["data"]);
    quiet(&mut ws).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_query_embedded() {
    live_query(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_query_postgres() {
    live_query(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_subscriptions_flow_to_the_socket_of_their_session() {
    let server = server(false).await;
    let api = &server.api;
    let connected = api.call("POST", "/api/v1/realtime/connect", Some(json!({"transport": "websocket"})), &[]).await;
    let session = connected.body["data"]["connectionId"].as_str().unwrap().to_string();
    let subscribed =
        api.call("POST", "/api/v1/realtime/subscribe", Some(json!({"channel": "order", "events": ["record.created"], "connectionId": session})), &[]).await;
    assert_eq!(subscribed.status, 200, "{}", subscribed.body);
    let id = subscribed.body["data"]["subscriptionId"].as_str().unwrap().to_string();
    // A change before the socket opens is not lost.
    let (early, _) = create(api, "early", "open").await;
    let mut ws = socket(&server, &format!("?connectionId={session}")).await;
    let event = next(&mut ws).await;
    assert_eq!((event["subscriptionId"].as_str(), event["payload"]["id"].as_str()), (Some(id.as_str()), Some(early.as_str())), "{event}");
    let (late, _) = create(api, "late", "open").await;
    assert_eq!(next(&mut ws).await["payload"]["id"].as_str(), Some(late.as_str()));
    let bad = api.call("POST", "/api/v1/realtime/subscribe", Some(json!({"channel": "order", "events": ["record.exploded"]})), &[]).await;
    assert_eq!(bad.status, 400);
    let gone = api.call("POST", "/api/v1/realtime/unsubscribe", Some(json!({"subscriptionId": id})), &[]).await;
    assert_eq!(gone.body["data"]["success"], json!(true));
    create(api, "after unsubscribe", "open").await;
    quiet(&mut ws).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_consumer_is_dropped_while_a_fast_one_keeps_up() {
    let server = server(false).await;
    let api = &server.api;
    let hub = &api.system.hub;
    let viewer = projections::Viewer::system();
    let spec = || Spec::Changes { object: Some("order".into()), kinds: Vec::new(), filter: None, fields: Vec::new() };
    // The slow one never reads and has room for 8 messages.
    let (slow, _slow_rx) = hub.connect(8);
    hub.subscribe(Some(slow), viewer.clone(), spec(), Resume::default()).unwrap();
    // The fast one reads as it goes (its buffer is sized so a busy test machine cannot make it fall behind).
    let (fast, mut fast_rx) = hub.connect(256);
    hub.subscribe(Some(fast), viewer, spec(), Resume::default()).unwrap();
    let reader = tokio::spawn(async move {
        let mut positions = Vec::new();
        while let Some(delivery) = fast_rx.recv().await {
            if let LiveMessage::Event { change, .. } = delivery.message {
                positions.push(change.position);
                if positions.len() == 200 {
                    break;
                }
            }
        }
        positions
    });
    // Writers are never held up by the slow subscriber.
    let mut written = Vec::new();
    for i in 0..200 {
        written.push(create(api, &format!("w{i}"), "open").await.1);
    }
    let received = tokio::time::timeout(Duration::from_secs(20), reader).await.expect("the fast subscriber keeps up").unwrap();
    assert_eq!(received, written, "every change, in order");
    assert_eq!(hub.close_reason(fast), None, "the fast subscriber stays");
    let reason = hub.close_reason(slow).expect("the slow subscriber was dropped");
    assert!(reason.contains("slow consumer"), "{reason}");
    // The drop is counted for /metrics; the fast one is still connected.
    let stats = hub.stats();
    assert_eq!((stats.dropped_slow, stats.dropped_revoked, stats.connections, stats.opened), (1, 0, 1, 2), "{stats:?}");
    assert!(stats.delivered >= 200 + 8, "{stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_holds_a_bounded_number_of_subscriptions() {
    let server = server(false).await;
    let hub = &server.api.system.hub;
    let (connection, _rx) = hub.connect(8);
    let spec = || Spec::Changes { object: Some("order".into()), kinds: Vec::new(), filter: None, fields: Vec::new() };
    for i in 0..projections::live::MAX_SUBSCRIPTIONS {
        hub.subscribe(Some(connection), projections::Viewer::system(), spec(), Resume { id: Some(format!("s{i}")), after: None }).unwrap();
    }
    let over = hub.subscribe(Some(connection), projections::Viewer::system(), spec(), Resume::default());
    assert!(matches!(over, Err(projections::live::LiveError::TooMany)), "{over:?}");
    // Resuming one it already holds is not a new one.
    assert!(hub.subscribe(Some(connection), projections::Viewer::system(), spec(), Resume { id: Some("s7".into()), after: None }).is_ok());
    let mut ws = socket(&server, "").await;
    for i in 0..projections::live::MAX_SUBSCRIPTIONS {
        send(&mut ws, json!({"type": "subscribe", "object": "order", "id": format!("w{i}")})).await;
    }
    send(&mut ws, json!({"type": "subscribe", "object": "order"})).await;
    let mut last = json!(null);
    for _ in 0..=projections::live::MAX_SUBSCRIPTIONS {
        last = next(&mut ws).await;
    }
    assert_eq!(last["error"]["code"], json!("validation_error"), "{last}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_never_claims_a_subscription_that_is_gone() {
    let server = server(false).await;
    let api = &server.api;
    let session = api.call("POST", "/api/v1/realtime/connect", Some(json!({})), &[]).await.body["data"]["connectionId"].as_str().unwrap().to_string();
    let subscribed = api.call("POST", "/api/v1/realtime/subscribe", Some(json!({"channel": "order", "connectionId": session})), &[]).await;
    let id = subscribed.body["data"]["subscriptionId"].as_str().unwrap().to_string();
    api.call("POST", "/api/v1/realtime/unsubscribe", Some(json!({"subscriptionId": id})), &[]).await;
    let mut ws = socket(&server, &format!("?connectionId={session}")).await;
    let error = next(&mut ws).await;
    assert_eq!(
        (error["type"].as_str(), error["id"].as_str(), error["error"]["code"].as_str()),
        (Some("error"), Some(id.as_str()), Some("resource_not_found")),
        "{error}"
    );
    // And nothing else was subscribed in its place.
    create(api, "after", "open").await;
    quiet(&mut ws).await;
}

/// On the embedded store the hub is fed by the query projection: rebuilding
/// the query model under write load must not cost a subscriber a change.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rebuild_under_write_load_costs_subscribers_nothing() {
    let server = server(false).await;
    let api = &server.api;
    let hub = &api.system.hub;
    let (connection, mut rx) = hub.connect(4_096);
    let spec = Spec::Changes { object: Some("order".into()), kinds: Vec::new(), filter: None, fields: Vec::new() };
    hub.subscribe(Some(connection), projections::Viewer::system(), spec, Resume::default()).unwrap();
    let mut written = Vec::new();
    for i in 0..300 {
        written.push(create(api, &format!("r{i}"), "open").await.1);
        if i == 100 {
            let started = api.call("POST", "/api/v1/projections/query/rebuild", None, &[]).await;
            assert_eq!(started.status, 202, "{}", started.body);
        }
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let status = api.call("GET", "/api/v1/projections/query", None, &[]).await;
        if status.body["data"]["rebuild"]["done"] == json!(true) {
            assert_eq!(status.body["data"]["rebuild"]["matchedLive"], json!(true));
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{}", status.body);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut received = Vec::new();
    while received.len() < written.len() {
        let delivery = tokio::time::timeout(Duration::from_secs(10), rx.recv()).await.expect("every change arrives").expect("open");
        if let LiveMessage::Event { change, .. } = delivery.message {
            received.push(change.position);
        }
    }
    assert_eq!(received, written, "every change once, in order, across the swap");
}
