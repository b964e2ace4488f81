//! GraphQL end to end on both stores: the generated SDL of the todo and CRM
//! apps as snapshots, query / filter / paging / lookup / aggregate and
//! mutation round trips, error codes in `extensions`, depth limits, a
//! metadata change visible in the schema without a restart, and
//! subscriptions over graphql-transport-ws (changes and a live query).

use std::path::PathBuf;

use futures_util::SinkExt;
use serde_json::{json, Value as Json};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

use crate::realtime::{next, server};
use crate::rest::{api, Api};

async fn gql(api: &Api, query: &str, variables: Json) -> Json {
    let reply = api.call("POST", "/api/v1/graphql", Some(json!({"query": query, "variables": variables})), &[]).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.body
}

/// The data of a query that must succeed.
async fn data(api: &Api, query: &str, variables: Json) -> Json {
    let body = gql(api, query, variables).await;
    assert!(body.get("errors").is_none(), "{body}");
    body["data"].clone()
}

fn error_code(body: &Json) -> &str {
    body["errors"][0]["extensions"]["code"].as_str().unwrap_or_else(|| panic!("no error code in {body}"))
}

/// Compares with `tests/it/snapshots/NAME`; `UPDATE_SNAPSHOTS=1` rewrites it.
fn snapshot(name: &str, actual: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("it/snapshots").join(name);
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|_| panic!("no snapshot {} (run with UPDATE_SNAPSHOTS=1)", path.display()));
    assert!(expected == actual, "the SDL differs from {} (run with UPDATE_SNAPSHOTS=1 and review the diff)", path.display());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_sdl_of_the_example_apps() {
    for (app, name) in [(domain::metadata::examples::TODO_APP, "todo.graphql"), (domain::metadata::examples::CRM_APP, "crm.graphql")] {
        let dir = tempfile::tempdir().unwrap();
        let app_path = dir.path().join("app.json");
        std::fs::write(&app_path, app).unwrap();
        let settings = gateway::config::Settings::local(gateway::config::Storage::Embedded(dir.path().join("data")), Some(app_path));
        let system = gateway::app::start(&settings).await.unwrap();
        let (_, catalog) = system.hub.catalog();
        let sdl = gateway::graphql::sdl(&catalog).unwrap();
        snapshot(name, &sdl);
    }
}

async fn round_trips(postgres: bool) {
    let api = api(postgres).await;
    let ada = data(&api, "{ customerList(filter: {name: {eq: \"Ada\"}}) { records { id name } total } }", json!({})).await;
    let ada_id = ada["customerList"]["records"][0]["id"].as_str().unwrap().to_string();
    assert_eq!(ada["customerList"]["total"], json!(1));

    // Mutations go through the commands: the record and the log position come back.
    let create = "mutation($input: OrderInput!) { createOrder(input: $input) { id position version record { title status amount total customer { name } } } }";
    let mut ids = Vec::new();
    for (i, amount) in [5.0, 7.5, 10.0, 20.0].iter().enumerate() {
        let out = data(&api, create, json!({"input": {"title": format!("order {i}"), "amount": amount, "customer": ada_id}})).await;
        let created = &out["createOrder"];
        assert!(created["position"].as_u64().unwrap() > 0);
        assert_eq!(created["version"], json!(1));
        assert_eq!(created["record"]["status"], json!("open"), "enum default");
        assert_eq!(created["record"]["total"].as_f64(), Some(amount * 2.0), "formula");
        assert_eq!(created["record"]["customer"]["name"], json!("Ada"), "lookup resolved");
        ids.push(created["id"].as_str().unwrap().to_string());
    }
    let paid = data(
        &api,
        "mutation($id: ID!) { updateOrder(id: $id, input: {status: paid}, expectedVersion: 1) { version record { status } } }",
        json!({"id": ids[3]}),
    )
    .await;
    assert_eq!(paid["updateOrder"]["version"], json!(2));
    assert_eq!(paid["updateOrder"]["record"]["status"], json!("paid"));

    // Same error codes as REST, in extensions.
    let stale = gql(&api, "mutation($id: ID!) { updateOrder(id: $id, input: {title: \"x\"}, expectedVersion: 1) { version } }", json!({"id": ids[3]})).await;
    assert_eq!(error_code(&stale), "concurrent_modification");
    let invalid = gql(&api, "mutation { createOrder(input: {amount: 1}) { id } }", json!({})).await;
    assert_eq!(error_code(&invalid), "missing_required_field", "{invalid}");
    assert!(invalid["errors"][0]["extensions"]["fieldErrors"].as_array().is_some_and(|f| !f.is_empty()), "{invalid}");
    let missing = gql(&api, "query($id: ID!) { order(id: $id) { id } }", json!({"id": "nope"})).await;
    assert_eq!(missing["data"]["order"], Json::Null);
    let unknown = gql(&api, "{ orderList { records { ghost } } }", json!({})).await;
    assert_eq!(error_code(&unknown), "invalid_query");
    let deep = "{ orderList { records { customer { id } } edges { node { customer { name } } } pageInfo { hasNextPage } } }";
    assert!(gql(&api, deep, json!({})).await.get("errors").is_none());
    let nested = "{ a: orderList { edges { node { customer { id } } } } }";
    assert!(gql(&api, nested, json!({})).await.get("errors").is_none());
    let introspection = "{ __schema { types { fields { type { ofType { ofType { ofType { ofType { ofType { ofType { ofType { ofType { ofType { ofType { ofType { ofType { ofType { name } } } } } } } } } } } } } } } } } }";
    let too_deep = gql(&api, introspection, json!({})).await;
    assert!(too_deep["errors"][0]["message"].as_str().unwrap().contains("too deep"), "{too_deep}");
    assert_eq!(error_code(&too_deep), "invalid_query");

    // Filters with REST semantics, sort, limit/offset, cursors and the true total.
    let page = data(
        &api,
        "{ orderList(filter: {amount: {gte: 7}, OR: [{status: {eq: \"open\"}}, {title: {contains: \"3\"}}]}, sort: [{field: amount, order: DESC}], limit: 2) { total hasMore records { title amount } edges { cursor } pageInfo { endCursor hasNextPage } } }",
        json!({}),
    )
    .await;
    let list = &page["orderList"];
    assert_eq!(list["total"], json!(3));
    assert_eq!(list["hasMore"], json!(true));
    assert_eq!(list["records"].as_array().unwrap().iter().map(|r| r["amount"].as_f64().unwrap()).collect::<Vec<_>>(), vec![20.0, 10.0]);
    let after = list["pageInfo"]["endCursor"].as_str().unwrap().to_string();
    let next_page = data(&api, "query($after: String) { orderList(filter: {amount: {gte: 7}}, sort: [{field: amount, order: DESC}], first: 2, after: $after) { records { amount } hasMore } }", json!({"after": after})).await;
    assert_eq!(next_page["orderList"]["records"], json!([{"amount": 7.5}]));
    assert_eq!(next_page["orderList"]["hasMore"], json!(false));
    let raw = data(&api, "{ orderList(where: [[\"amount\", \">\", 6], \"and\", [\"status\", \"=\", \"open\"]]) { total } }", json!({})).await;
    assert_eq!(raw["orderList"]["total"], json!(2), "the REST filter forms work as `where`");

    // Aggregates, grouped.
    let groups = data(&api, "{ orderAggregate(groupBy: [status]) { key count sum { amount } avg { amount } min { amount } max { amount } } }", json!({})).await;
    let mut rows: Vec<(String, i64, f64, f64)> = groups["orderAggregate"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            (
                g["key"]["status"].as_str().unwrap().to_string(),
                g["count"].as_i64().unwrap(),
                g["sum"]["amount"].as_f64().unwrap(),
                g["max"]["amount"].as_f64().unwrap(),
            )
        })
        .collect();
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(rows, vec![("open".to_string(), 3, 22.5, 10.0), ("paid".to_string(), 1, 20.0, 20.0)]);

    // The audit trail is a query too.
    let audit = data(&api, "query($id: String) { audit(object: \"order\", recordId: $id) { total entries } }", json!({"id": ids[3]})).await;
    assert_eq!(audit["audit"]["total"], json!(2));
    assert_eq!(audit["audit"]["entries"][0]["eventType"], json!("data.update"));
    assert_eq!(audit["audit"]["entries"][0]["changes"][0]["newValue"], json!("paid"));

    // Delete, then the record is gone; a metadata change shows in the schema without a restart.
    let deleted = data(&api, "mutation($id: ID!) { deleteOrder(id: $id) { id success position } }", json!({"id": ids[0]})).await;
    assert_eq!(deleted["deleteOrder"]["success"], json!(true));
    assert_eq!(data(&api, "query($id: ID!) { order(id: $id) { id } }", json!({"id": ids[0]})).await["order"], Json::Null);
    let before = data(&api, "query($id: ID!) { order(id: $id, asOf: \"1000000\") { title } }", json!({"id": ids[1]})).await;
    assert_eq!(before["order"]["title"], json!("order 1"), "asOf reads");
    let mut definition = api.call("GET", "/api/v1/meta/object/order", None, &[]).await.body;
    definition["fields"]["note"] = json!({"type": "text"});
    assert_eq!(api.call("PUT", "/api/v1/meta/object/order", Some(definition), &[]).await.status, 200);
    let noted = data(&api, "mutation { createOrder(input: {title: \"noted\", note: \"new field\"}) { record { note } } }", json!({})).await;
    assert_eq!(noted["createOrder"]["record"]["note"], json!("new field"));
    let sdl = api.call("GET", "/api/v1/graphql/schema", None, &[]).await;
    assert_eq!(sdl.status, 200);
    assert!(sdl.body["raw"].as_str().unwrap().contains("note: String"), "the schema has the new field");
    let graphiql = api.call("GET", "/api/v1/graphql", None, &[]).await;
    let page = graphiql.body["raw"].as_str().unwrap().to_string();
    assert!(page.contains("graphiql"), "GraphiQL on GET");
    // Offline: every script and style comes from this server, under a CSP that allows nothing else.
    assert!(!page.contains("http://") && !page.contains("https://") && !page.contains("<script>"), "{page}");
    let csp = graphiql.headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("script-src 'self';") && !csp.contains("http"), "{csp}");
    let assets: Vec<&str> = page.split("/api/v1/graphql/assets/").skip(1).map(|rest| rest.split('"').next().unwrap()).collect();
    assert_eq!(assets.len(), 5, "{page}");
    for asset in assets {
        let served = api.call("GET", &format!("/api/v1/graphql/assets/{asset}"), None, &[]).await;
        assert_eq!(served.status, 200, "{asset}");
        let on_disk = std::fs::read(format!("{}/../gateway/assets/graphiql/{asset}", env!("CARGO_MANIFEST_DIR"))).unwrap();
        let kind = served.headers["content-type"].to_str().unwrap();
        assert!(kind.starts_with(if asset.ends_with(".css") { "text/css" } else { "text/javascript" }), "{asset}: {kind}");
        assert!(on_disk.len() > 100, "{asset}");
    }
    let missing = api.call("GET", "/api/v1/graphql/assets/nope.js", None, &[]).await;
    assert_eq!(missing.status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_trips_embedded() {
    round_trips(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_trips_postgres() {
    round_trips(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_over_graphql_transport_ws() {
    let server = server(false).await;
    let mut request = format!("ws://{}/api/v1/graphql", server.base).into_client_request().unwrap();
    request.headers_mut().insert("sec-websocket-protocol", "graphql-transport-ws".parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let send = |message: Json| Message::Text(message.to_string().into());
    ws.send(send(json!({"type": "connection_init"}))).await.unwrap();
    assert_eq!(next(&mut ws).await["type"], json!("connection_ack"));
    ws.send(send(json!({"id": "1", "type": "subscribe", "payload": {"query": "subscription { orderChanged(events: [CREATED, UPDATED]) { type position record { title status customer { name } } changes { field oldValue newValue } } }"}})))
        .await
        .unwrap();
    ws.send(send(json!({"id": "2", "type": "subscribe", "payload": {"query": "subscription { orderLive(filter: {status: {eq: \"open\"}}, sort: [{field: title}]) { type position total records { title } ops { op id index record { title } } } }"}})))
        .await
        .unwrap();
    let snapshot = next(&mut ws).await;
    assert_eq!(snapshot["id"], json!("2"), "{snapshot}");
    assert_eq!(snapshot["payload"]["data"]["orderLive"]["type"], json!("snapshot"));
    assert_eq!(snapshot["payload"]["data"]["orderLive"]["records"], json!([]));

    let api = &server.api;
    let ada = api.call("GET", "/api/v1/data/customer?name=Ada", None, &[]).await.body["data"]["records"][0]["id"].clone();
    let created = api.call("POST", "/api/v1/data/order", Some(json!({"title": "live", "customer": ada})), &[]).await;
    let position = created.headers["x-log-position"].to_str().unwrap().parse::<u64>().unwrap();
    let id = created.body["data"]["id"].clone();
    let mut got = std::collections::HashMap::new();
    for _ in 0..2 {
        let message = next(&mut ws).await;
        assert_eq!(message["type"], json!("next"), "{message}");
        got.insert(message["id"].as_str().unwrap().to_string(), message["payload"]["data"].clone());
    }
    let change = &got["1"]["orderChanged"];
    assert_eq!((change["type"].as_str(), change["position"].as_u64()), (Some("record.created"), Some(position)));
    assert_eq!(change["record"]["customer"]["name"], json!("Ada"));
    let ops = &got["2"]["orderLive"];
    assert_eq!(ops["type"], json!("ops"));
    assert_eq!(ops["ops"], json!([{"op": "insert", "id": id, "index": 0, "record": {"title": "live"}}]));
    assert_eq!(ops["total"], json!(1));

    api.call("PATCH", &format!("/api/v1/data/order/{}", id.as_str().unwrap()), Some(json!({"status": "paid"})), &[]).await;
    let mut got = std::collections::HashMap::new();
    for _ in 0..2 {
        let message = next(&mut ws).await;
        got.insert(message["id"].as_str().unwrap().to_string(), message["payload"]["data"].clone());
    }
    let changes = got["1"]["orderChanged"]["changes"].as_array().unwrap();
    assert!(changes.contains(&json!({"field": "status", "oldValue": "open", "newValue": "paid"})), "{changes:?}");
    assert_eq!(got["2"]["orderLive"]["ops"], json!([{"op": "remove", "id": id, "index": null, "record": null}]));
    ws.send(send(json!({"id": "1", "type": "complete"}))).await.unwrap();
    ws.send(send(json!({"id": "2", "type": "complete"}))).await.unwrap();
}

/// Objects whose generated type names clash are left out (a lookup to one
/// reads as its id) instead of breaking the whole schema.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clashing_names_leave_the_rest_of_the_schema_working() {
    let app = r#"{
      "manifest": {"id": "com.example.clash", "namespace": "clash", "name": "Clash"},
      "objects": [
        {"name": "page_info", "fields": {"title": {"type": "text"}}},
        {"name": "task", "fields": {"title": {"type": "text"}}},
        {"name": "task_field", "fields": {"title": {"type": "text"}}},
        {"name": "note", "fields": {"title": {"type": "text"}, "page": {"type": "lookup", "reference": "page_info"}}}
      ]
    }"#;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.json");
    std::fs::write(&path, app).unwrap();
    let mut api = crate::rest::api_with_app(gateway::config::Storage::Embedded(dir.path().join("data")), &path).await;
    let page = api.call("POST", "/api/v1/data/page_info", Some(json!({"title": "p"})), &[]).await.body["data"]["id"].clone();
    api.call("POST", "/api/v1/data/note", Some(json!({"title": "n", "page": page})), &[]).await;
    let out = data(&api, "{ noteList { records { title page } } taskList { total } }", json!({})).await;
    assert_eq!(out["noteList"]["records"][0]["page"], page, "a lookup to a left-out object reads as its id");
    assert_eq!(out["taskList"]["total"], json!(0));
    let sdl = api.call("GET", "/api/v1/graphql/schema", None, &[]).await.body["raw"].as_str().unwrap().to_string();
    assert!(!sdl.contains("page_infoList") && !sdl.contains("task_fieldList"), "the clashing objects are left out");
    api._dir = Some(dir);
}
