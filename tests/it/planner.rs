//! Query plans a user can read, on both read models: `?explain=true` on a
//! list says which indexes answer the filter (in process: each condition and
//! how many rows it may hold; PostgreSQL: its own EXPLAIN ANALYZE of the page
//! and the count), only to callers with `manage_projections`. On PostgreSQL,
//! the SQL of a compound filter reaches the expression indexes the object's
//! definition declares (a compound one included) instead of scanning the table.

use serde_json::{json, Value as Json};

use crate::common;
use crate::rest::{api_with_app, Api, Reply};

const APP: &str = r#"{
  "manifest": {"id": "com.example.plans", "name": "Plans"},
  "objects": [
    {"name": "item", "fields": {
       "title": {"type": "text"},
       "status": {"type": "select", "options": [{"label": "Open", "value": "open"}, {"label": "Done", "value": "done"}, {"label": "Late", "value": "late"}]},
       "amount": {"type": "number"},
       "category": {"type": "text"}},
     "indexes": [{"fields": ["category", "status"]}, {"fields": ["amount"]}]}
  ],
  "permissions": [
    {"name": "member", "isProfile": true, "objects": {"item": {"allowRead": true, "allowCreate": true}}}
  ],
  "auth": {"defaultProfile": "member"}
}"#;

const ITEMS: usize = 6_000;

async fn call(api: &Api, token: &str, method: &str, uri: &str, body: Option<Json>) -> Reply {
    let bearer = format!("Bearer {token}");
    api.call(method, uri, body, &[("authorization", bearer.as_str())]).await
}

/// Every value of one key in a PostgreSQL JSON plan (`Node Type`, `Index Cond`).
fn plan_values(plan: &Json, key: &str, out: &mut Vec<String>) {
    match plan {
        Json::Object(map) => {
            if let Some(Json::String(value)) = map.get(key) {
                out.push(value.clone());
            }
            map.values().for_each(|v| plan_values(v, key, out));
        }
        Json::Array(items) => items.iter().for_each(|v| plan_values(v, key, out)),
        _ => {}
    }
}

async fn explained(postgres: bool) {
    let (storage, dir) = common::storage(postgres);
    let app_dir = tempfile::tempdir().unwrap();
    let app_path = app_dir.path().join("app.json");
    std::fs::write(&app_path, APP).unwrap();
    let mut api = api_with_app(storage, &app_path).await;
    api._dir = dir;
    gateway::service::auth::bootstrap_admin(&api.system, "root@example.com", "admin-pass-1234").await.unwrap();
    let signed = api.call("POST", "/api/v1/auth/sign-in/email", Some(json!({"email": "root@example.com", "password": "admin-pass-1234"})), &[]).await;
    let admin = signed.body["data"]["token"].as_str().unwrap().to_string();
    let member =
        api.call("POST", "/api/v1/auth/sign-up/email", Some(json!({"email": "m@example.com", "password": "member-pass-1234", "name": "M"})), &[]).await;
    let member = member.body["data"]["token"].as_str().unwrap().to_string();

    for chunk in (0..ITEMS).collect::<Vec<_>>().chunks(200) {
        let records: Vec<Json> = chunk
            .iter()
            .map(|i| json!({"title": format!("item {i}"), "status": (["open", "done", "late"][i % 3]), "amount": (i * 7919) % 10_000, "category": format!("c{}", i % 17)}))
            .collect();
        let reply = call(&api, &admin, "POST", "/api/v1/data/item/createMany", Some(json!(records))).await;
        assert!(reply.status.is_success(), "{}", reply.body);
    }
    let expected = (0..ITEMS).filter(|i| i % 17 == 3 && i % 3 == 0 && (i * 7919) % 10_000 > 2_000).count() as u64;
    let filter = common::urlencode(r#"[["category","=","c3"],["status","=","open"],["amount",">",2000]]"#);
    let list = format!("/api/v1/data/item?filter={filter}&sort=-amount&top=10");

    // A member lists, but may not see how (an explanation counts rows beyond their own).
    let plain = call(&api, &member, "GET", &list, None).await;
    assert_eq!(plain.status.as_u16(), 200, "{}", plain.body);
    assert_eq!(plain.body["data"]["total"], json!(expected));
    let refused = call(&api, &member, "GET", &format!("{list}&explain=true"), None).await;
    assert_eq!(refused.status.as_u16(), 403, "{}", refused.body);
    assert!(refused.body["data"].is_null() && refused.body["error"]["code"].is_string(), "{}", refused.body);
    for bad in ["explain=yes", "explain=true&asOf=1"] {
        let reply = call(&api, &admin, "GET", &format!("{list}&{bad}"), None).await;
        assert_eq!(reply.status.as_u16(), 400, "{bad}: {}", reply.body);
    }

    let reply = call(&api, &admin, "GET", &format!("{list}&explain=true"), None).await;
    assert_eq!(reply.status.as_u16(), 200, "{}", reply.body);
    let explain = &reply.body["data"]["explain"];
    if postgres {
        assert_eq!(explain["model"], "postgres", "{explain}");
        let sql = explain["count"]["sql"].as_str().unwrap();
        assert!(!sql.contains("c3") && sql.contains("$1"), "values travel as parameters: {sql}");
        let mut nodes = Vec::new();
        plan_values(&explain["count"]["plan"], "Node Type", &mut nodes);
        assert!(nodes.iter().any(|n| n.contains("Index")), "the declared indexes answer the filter, got {nodes:?}");
        assert!(!nodes.iter().any(|n| n == "Seq Scan"), "no scan of the whole table, got {nodes:?}");
        // The compound index on (category, status) answers both equalities (text under the collation comparisons use).
        let mut conditions = Vec::new();
        plan_values(&explain["count"]["plan"], "Index Cond", &mut conditions);
        assert!(conditions.iter().any(|c| c.contains("category") && c.contains("status")), "{conditions:?}");
        let mut actual = 0;
        if let Some(rows) = explain["count"]["plan"][0]["Plan"]["Plans"].as_array() {
            actual = rows.iter().filter_map(|p| p["Actual Rows"].as_u64()).sum::<u64>();
        }
        assert_eq!(actual, expected, "the count's plan ran over exactly the matches");
    } else {
        assert_eq!(explain["model"], "in-process", "{explain}");
        assert_eq!(explain["answeredByIndexes"], true, "{explain}");
        assert_eq!(explain["rowsChecked"], 0, "{explain}");
        assert_eq!(explain["total"], json!(expected), "{explain}");
        assert_eq!(explain["rows"], json!(ITEMS), "{explain}");
        let parts = explain["filter"]["and"].as_array().expect("an AND of three");
        assert_eq!(parts.len(), 3, "{explain}");
        assert!(parts.iter().all(|p| p["rowsAtMost"].as_u64().is_some()), "each condition answered by an index: {explain}");
        assert_eq!(parts[0]["rowsAtMost"], json!((0..ITEMS).filter(|i| i % 17 == 3).count()), "an index's own count: {explain}");
        // A condition no index answers is checked row by row, and says so.
        let unindexed = common::urlencode(r#"[["category","=","c3"],["title","contains","7"]]"#);
        let reply = call(&api, &admin, "GET", &format!("/api/v1/data/item?filter={unindexed}&explain=true"), None).await;
        let explain = &reply.body["data"]["explain"];
        assert_eq!(explain["answeredByIndexes"], false, "{explain}");
        assert_eq!(explain["rowsChecked"], json!((0..ITEMS).filter(|i| i % 17 == 3).count()), "only the indexed candidates are checked: {explain}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn explained_embedded() {
    explained(false).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn explained_postgres() {
    explained(true).await;
}
