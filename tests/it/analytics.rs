//! Analytics on both stores (on PostgreSQL from the columnar model and by
//! SQL on the query model's tables): cube queries over randomised data
//! (created, updated and deleted through the API) equal a brute-force
//! computation of the same, before and after a rebuild of the model they
//! read; declared cubes, metadata, SQL and errors.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use serde_json::{json, Value as Json};

use crate::rest::{api_with_settings, Api};

const APP: &str = r#"{
  "manifest": {"id": "com.example.sales", "namespace": "sales", "name": "Sales"},
  "objects": [
    {"name": "sale", "fields": {
       "rep": {"type": "text", "required": true},
       "region": {"type": "select", "options": [{"label": "North", "value": "north"}, {"label": "South", "value": "south"}, {"label": "East", "value": "east"}, {"label": "West", "value": "west"}]},
       "amount": {"type": "currency"},
       "units": {"type": "number"},
       "paid": {"type": "boolean"},
       "closed_on": {"type": "date"}}}
  ],
  "cubes": [
    {"name": "revenue", "title": "Revenue", "sql": "sale",
     "measures": {"total": {"name": "total", "label": "Total", "type": "sum", "sql": "amount"},
                  "deals": {"name": "deals", "label": "Deals", "type": "count", "sql": "*"}},
     "dimensions": {"area": {"name": "area", "label": "Area", "type": "string", "sql": "region"}}}
  ]
}"#;

const REGIONS: [&str; 4] = ["north", "south", "east", "west"];

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn random_sale(rng: &mut Rng, i: usize) -> Json {
    let mut sale = json!({
        "rep": format!("rep {}", rng.below(5)),
        "region": REGIONS[rng.below(4) as usize],
        "amount": (rng.below(100_000) as f64) / 100.0,
        "paid": rng.below(2) == 0,
        "closed_on": format!("2026-{:02}-{:02}", 1 + rng.below(9), 1 + rng.below(28)),
    });
    // Some records leave a number empty: measures skip nulls.
    if !i.is_multiple_of(7) {
        sale["units"] = json!(rng.below(50));
    }
    sale
}

async fn query(api: &Api, body: Json) -> Json {
    let reply = api.call("POST", "/api/v1/analytics/query", Some(body.clone()), &[]).await;
    assert_eq!(reply.status, 200, "{body}: {}", reply.body);
    reply.body["data"].clone()
}

/// Rows keyed by their dimension values, for comparison.
fn by_key(rows: &Json, keys: &[&str]) -> BTreeMap<String, Json> {
    rows.as_array().unwrap().iter().map(|r| (keys.iter().map(|k| r[*k].to_string()).collect::<Vec<_>>().join("|"), r.clone())).collect()
}

fn close(actual: &Json, expected: f64, what: &str) {
    let got = actual.as_f64().unwrap_or_else(|| panic!("{what}: {actual} is not a number"));
    assert!((got - expected).abs() < 1e-6 * expected.abs().max(1.0), "{what}: {got} != {expected}");
}

async fn check(api: &Api, state: &HashMap<String, Json>) {
    // By region: count, sum/avg/min/max of amount, sum of units (nulls skipped).
    let result = query(
        api,
        json!({"cube": "sale", "query": {"measures": ["count", "amount_sum", "amount_avg", "amount_min", "amount_max", "sale.units_sum"], "dimensions": ["region"]}}),
    )
    .await;
    let rows = by_key(&result["rows"], &["region"]);
    let mut expected: BTreeMap<String, Vec<&Json>> = BTreeMap::new();
    for sale in state.values() {
        expected.entry(sale["region"].to_string()).or_default().push(sale);
    }
    assert_eq!(rows.keys().collect::<Vec<_>>(), expected.keys().collect::<Vec<_>>());
    for (region, sales) in &expected {
        let row = &rows[region];
        let amounts: Vec<f64> = sales.iter().map(|s| s["amount"].as_f64().unwrap()).collect();
        assert_eq!(row["count"], json!(sales.len()), "{region}");
        close(&row["amount_sum"], amounts.iter().sum(), "sum");
        close(&row["amount_avg"], amounts.iter().sum::<f64>() / amounts.len() as f64, "avg");
        close(&row["amount_min"], amounts.iter().cloned().fold(f64::MAX, f64::min), "min");
        close(&row["amount_max"], amounts.iter().cloned().fold(f64::MIN, f64::max), "max");
        close(&row["sale.units_sum"], sales.iter().filter_map(|s| s["units"].as_f64()).sum(), "units");
    }
    assert_eq!(result["fields"][0], json!({"name": "region", "type": "string"}));

    // Filters and a monthly time dimension with a date range.
    let monthly = query(
        api,
        json!({"cube": "sale", "measures": ["count", "amount_sum"],
               "filters": [{"member": "paid", "operator": "equals", "values": ["true"]}, {"member": "region", "operator": "notEquals", "values": ["west"]}],
               "timeDimensions": [{"dimension": "closed_on", "granularity": "month", "dateRange": ["2026-02-01", "2026-06-30"]}]}),
    )
    .await;
    let mut expected: BTreeMap<String, (u64, f64)> = BTreeMap::new();
    for sale in state.values() {
        let month = &sale["closed_on"].as_str().unwrap()[..7];
        if sale["paid"] == json!(true) && sale["region"] != json!("west") && ("2026-02".."2026-07").contains(&month) {
            let entry = expected.entry(format!("{month}-01T00:00:00.000Z")).or_default();
            entry.0 += 1;
            entry.1 += sale["amount"].as_f64().unwrap();
        }
    }
    let got: Vec<(String, u64)> =
        monthly["rows"].as_array().unwrap().iter().map(|r| (r["closed_on.month"].as_str().unwrap().to_string(), r["count"].as_u64().unwrap())).collect();
    assert_eq!(got, expected.iter().map(|(m, (n, _))| (m.clone(), *n)).collect::<Vec<_>>(), "months ascending, counted");
    for row in monthly["rows"].as_array().unwrap() {
        close(&row["amount_sum"], expected[row["closed_on.month"].as_str().unwrap()].1, "monthly sum");
    }

    // The declared cube.
    let revenue = query(api, json!({"cube": "revenue", "measures": ["total", "deals"], "dimensions": ["area"], "order": {"area": "asc"}})).await;
    let areas: Vec<&str> = revenue["rows"].as_array().unwrap().iter().map(|r| r["area"].as_str().unwrap()).collect();
    let mut sorted = areas.clone();
    sorted.sort();
    assert_eq!(areas, sorted, "ordered by area");
    let total: f64 = revenue["rows"].as_array().unwrap().iter().map(|r| r["total"].as_f64().unwrap()).sum();
    close(&json!(total), state.values().map(|s| s["amount"].as_f64().unwrap()).sum(), "revenue total");
}

/// On the embedded store, or on PostgreSQL with the columnar model or (`sql`) by SQL on the query model's tables.
async fn matches_brute_force(postgres: bool, sql: bool) {
    let dir = tempfile::tempdir().unwrap();
    let app = dir.path().join("app.json");
    std::fs::write(&app, APP).unwrap();
    let storage =
        if postgres { gateway::config::Storage::Postgres(crate::common::pg_settings()) } else { gateway::config::Storage::Embedded(dir.path().join("data")) };
    let mut api = api_with_settings(gateway::config::Settings { analytics_sql: sql, ..gateway::config::Settings::local(storage, Some(app)) }).await;
    let source = api.call("GET", "/api/v1/projections/analytics", None, &[]).await;
    assert_eq!(source.body["data"]["store"], json!(if sql { "postgres" } else { "memory" }), "{}", source.body);
    let mut rng = Rng(0x5eed_1234);
    let sales: Vec<Json> = (0..240).map(|i| random_sale(&mut rng, i)).collect();
    let mut state: HashMap<String, Json> = HashMap::new();
    for chunk in sales.chunks(120) {
        let created = api.call("POST", "/api/v1/data/sale/createMany", Some(Json::Array(chunk.to_vec())), &[]).await;
        assert_eq!(created.status, 201, "{}", created.body);
        for (record, sale) in created.body["data"]["records"].as_array().unwrap().iter().zip(chunk) {
            state.insert(record["id"].as_str().unwrap().to_string(), sale.clone());
        }
    }
    // Updates and deletes: the columns follow them.
    let ids: Vec<String> = state.keys().cloned().collect();
    for id in ids.iter().take(60) {
        let patch = json!({"region": REGIONS[rng.below(4) as usize], "amount": (rng.below(100_000) as f64) / 100.0});
        assert_eq!(api.call("PATCH", &format!("/api/v1/data/sale/{id}"), Some(patch.clone()), &[]).await.status, 200);
        let sale = state.get_mut(id).unwrap();
        sale["region"] = patch["region"].clone();
        sale["amount"] = patch["amount"].clone();
    }
    for id in ids.iter().skip(60).take(30) {
        assert_eq!(api.call("DELETE", &format!("/api/v1/data/sale/{id}"), None, &[]).await.status, 200);
        state.remove(id);
    }
    check(&api, &state).await;

    // Rebuilt from the log, the model answers the same (by SQL, the model
    // analytics reads is the query model's tables: its own rebuild is refused).
    if sql {
        let refused = api.call("POST", "/api/v1/projections/analytics/rebuild", None, &[]).await;
        assert_eq!(refused.status, 501, "{}", refused.body);
        // Its parked events are the query projection's, settled there.
        let skip = api.call("POST", "/api/v1/projections/analytics/dead-letters/1/skip", Some(json!({"reason": "x"})), &[]).await;
        assert_eq!(skip.status, 409, "{}", skip.body);
        assert!(skip.body.to_string().contains("on 'query'"), "{}", skip.body);
    }
    let model = if sql { "query" } else { "analytics" };
    let started = api.call("POST", &format!("/api/v1/projections/{model}/rebuild"), None, &[]).await;
    assert_eq!(started.status, 202, "{}", started.body);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let status = api.call("GET", &format!("/api/v1/projections/{model}"), None, &[]).await;
        if status.body["data"]["rebuild"]["done"] == json!(true) {
            assert_eq!(status.body["data"]["version"], json!(2));
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{}", status.body);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    check(&api, &state).await;

    // Metadata, SQL, explain, errors.
    let meta = api.call("GET", "/api/v1/analytics/meta", None, &[]).await;
    let names: Vec<&str> = meta.body["data"]["cubes"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert!(names.contains(&"sale") && names.contains(&"revenue"), "{names:?}");
    let sale = api.call("GET", "/api/v1/analytics/meta/sale", None, &[]).await.body["data"].clone();
    assert!(sale["measures"].as_array().unwrap().iter().any(|m| m["name"] == json!("sale.amount_sum")));
    let closed_on = sale["dimensions"].as_array().unwrap().iter().find(|d| d["name"] == json!("sale.closed_on")).unwrap().clone();
    assert_eq!(closed_on["type"], json!("time"));
    let body =
        json!({"cube": "sale", "measures": ["amount_sum"], "timeDimensions": [{"dimension": "closed_on", "granularity": "month", "dateRange": "Last 7 days"}]});
    let sql = api.call("POST", "/api/v1/analytics/sql", Some(body.clone()), &[]).await;
    let text = sql.body["data"]["sql"].as_str().unwrap();
    assert!(text.contains("date_trunc('month'") && text.contains("sum(") && text.contains("\"obj_sale\""), "{text}");
    assert_eq!(sql.body["data"]["params"].as_array().unwrap().len(), 2);
    let explain = api.call("POST", "/api/v1/analytics/explain", Some(body), &[]).await;
    assert_eq!(explain.body["data"]["rows"], json!(state.len()));
    for (bad, status) in [
        (json!({"cube": "sale", "measures": ["nope"]}), 400),
        (json!({"cube": "ghost", "measures": ["count"]}), 404),
        (json!({"cube": "sale", "measures": ["count"], "filters": [{"member": "amount", "operator": "contains", "values": ["1"]}]}), 400),
        (json!({"cube": "sale", "measures": ["count"], "timeDimensions": [{"dimension": "closed_on", "granularity": "fortnight"}]}), 400),
    ] {
        let reply = api.call("POST", "/api/v1/analytics/query", Some(bad.clone()), &[]).await;
        assert_eq!(reply.status, status, "{bad}: {}", reply.body);
    }
    let csv =
        api.call("POST", "/api/v1/analytics/query", Some(json!({"cube": "sale", "measures": ["count"], "dimensions": ["paid"], "format": "csv"})), &[]).await;
    assert!(csv.body["raw"].as_str().unwrap().starts_with("paid,count\n"), "{}", csv.body);
    api._dir = Some(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn matches_brute_force_embedded() {
    matches_brute_force(false, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn matches_brute_force_postgres() {
    matches_brute_force(true, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn matches_brute_force_postgres_by_sql() {
    matches_brute_force(true, true).await;
}
