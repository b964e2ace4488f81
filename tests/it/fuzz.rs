//! A bounded, seeded fuzz run on both stores: thousands of requests made of
//! random bodies, filters, paths and GraphQL queries, some well formed and
//! many not. Every answer must be below 500 (501 only as `not_implemented`),
//! and every error must be the protocol's envelope. `FUZZ_SEED` replays a
//! run, `FUZZ_REQUESTS` makes it longer (`ops/bench fuzz`).

use axum::http::StatusCode;
use serde_json::{json, Map, Value as Json};

use crate::rest::{api, Api};

use crate::common::Rng;

const OBJECTS: &[&str] = &["order", "order", "order", "customer", "customer", "nope", "Order", "_x", "order%00", "%FF", "a.b", ""];
const FIELDS: &[&str] = &["title", "amount", "status", "customer", "total", "name", "email", "id", "_id", "created_at", "nope", "a.b", "customer.name", ""];
const OPERATORS: &[&str] = &[
    "$eq",
    "$ne",
    "$gt",
    "$gte",
    "$lt",
    "$lte",
    "$in",
    "$nin",
    "$between",
    "$contains",
    "$startsWith",
    "$like",
    "$regex",
    "$null",
    "$exists",
    "$bogus",
    "eq",
    "=",
];
const WORDS: &[&str] = &[
    "",
    "a",
    "open",
    "paid",
    "Ada",
    "%",
    "_",
    "(",
    "[",
    "\\",
    "\u{0}",
    "\u{1F600}",
    "1e400",
    "-0",
    "null",
    "true",
    "' OR 1=1 --",
    "a{1000}{1000}",
    "%FF",
    "..",
    "🚀🚀",
];

fn text(rng: &mut Rng) -> String {
    match rng.index(4) {
        0 => rng.pick(WORDS).to_string(),
        1 => (0..rng.index(40)).map(|_| char::from_u32(rng.index(0x3000) as u32 + 1).unwrap_or('x')).collect(),
        2 => "x".repeat(rng.index(3) * 100),
        _ => format!("{}", rng.next()),
    }
}

fn value(rng: &mut Rng, depth: usize) -> Json {
    match rng.index(if depth > 2 { 6 } else { 8 }) {
        0 => Json::Null,
        1 => json!(rng.chance(50)),
        2 => json!(rng.next() as i64),
        3 => json!((rng.next() as f64) / 7.0 - 1e18),
        4 | 5 => json!(text(rng)),
        6 => Json::Array((0..rng.index(5)).map(|_| value(rng, depth + 1)).collect()),
        _ => Json::Object((0..rng.index(5)).map(|_| (rng.pick(FIELDS).to_string(), value(rng, depth + 1))).collect()),
    }
}

fn filter(rng: &mut Rng, depth: usize) -> Json {
    match rng.index(if depth > 2 { 3 } else { 6 }) {
        0 => json!({ *rng.pick(FIELDS): value(rng, 2) }),
        1 => json!({ *rng.pick(FIELDS): { *rng.pick(OPERATORS): value(rng, 2) } }),
        2 => json!([*rng.pick(FIELDS), *rng.pick(&["=", ">", "in", "like", "contains", "between", "?"]), value(rng, 2)]),
        3 => json!({ *rng.pick(&["$and", "$or", "$not", "and"]): (0..rng.index(4)).map(|_| filter(rng, depth + 1)).collect::<Vec<_>>() }),
        4 => json!([filter(rng, depth + 1), *rng.pick(&["and", "or", "xor"]), filter(rng, depth + 1)]),
        _ => value(rng, depth),
    }
}

fn encode(text: &str) -> String {
    crate::common::urlencode(text)
}

fn query_string(rng: &mut Rng) -> String {
    let mut pairs = Vec::new();
    for _ in 0..rng.index(4) {
        let key = *rng.pick(&[
            "filter",
            "where",
            "sort",
            "orderBy",
            "top",
            "limit",
            "skip",
            "offset",
            "select",
            "fields",
            "expand",
            "search",
            "title",
            "amount",
            "status",
            "minPosition",
            "asOf",
            "count",
            "bogus",
        ]);
        let raw = match key {
            "filter" | "where" => filter(rng, 0).to_string(),
            "sort" | "orderBy" => format!("{}{}", rng.pick(&["", "-", "+"]), rng.pick(FIELDS)),
            "minPosition" => rng.pick(&["0", "1", "-1", "x", "99999999999999999999999", ""]).to_string(),
            "top" | "limit" | "skip" | "offset" => rng.pick(&["0", "1", "50", "10001", "-1", "99999999999999999999999", "1e3", "x", ""]).to_string(),
            _ => text(rng),
        };
        pairs.push(format!("{key}={}", encode(&raw)));
    }
    if pairs.is_empty() {
        String::new()
    } else {
        format!("?{}", pairs.join("&"))
    }
}

fn graphql(rng: &mut Rng) -> Json {
    let root = *rng.pick(&["orderList", "customerList", "order", "orderAggregate", "nopeList", "search", "audit", "_position"]);
    let mut args = Vec::new();
    for _ in 0..rng.index(3) {
        let arg = match rng.index(6) {
            0 => format!("limit: {}", rng.pick(&["1", "10000", "-5", "\"x\"", "99999999999"])),
            1 => format!("where: {}", serde_json::to_string(&filter(rng, 0).to_string()).unwrap()),
            2 => format!("filter: {{{}: {{eq: {}}}}}", rng.pick(FIELDS), serde_json::to_string(&text(rng)).unwrap()),
            3 => format!("id: {}", serde_json::to_string(&text(rng)).unwrap()),
            4 => format!("q: {}", serde_json::to_string(&text(rng)).unwrap()),
            _ => "sort: [{field: amount, order: DESC}]".to_string(),
        };
        args.push(arg);
    }
    let args = if args.is_empty() { String::new() } else { format!("({})", args.join(", ")) };
    let mut query = match rng.index(4) {
        0 => format!("{{ {root}{args} {{ records {{ id title }} total }} }}"),
        1 => format!("mutation {{ createOrder(data: {}) {{ id }} }}", serde_json::to_string(&value(rng, 1).to_string()).unwrap()),
        2 => format!("{{ {root}{args} }}"),
        _ => text(rng),
    };
    if rng.chance(10) {
        let mut cut = rng.index(query.len() + 1);
        while !query.is_char_boundary(cut) {
            cut -= 1;
        }
        query.truncate(cut);
    }
    if rng.chance(20) {
        json!({"query": query, "variables": value(rng, 1)})
    } else {
        json!({ "query": query })
    }
}

/// Method, path, body and headers.
type Made = (String, String, Option<Vec<u8>>, Vec<(String, String)>);

/// One random request.
fn request(rng: &mut Rng, ids: &[String]) -> Made {
    let object = rng.pick(OBJECTS).to_string();
    let id = if !ids.is_empty() && rng.chance(60) { rng.pick(ids).clone() } else { encode(&text(rng)) };
    let (method, path) = match rng.index(14) {
        0 | 1 => ("GET", format!("/api/v1/data/{object}{}", query_string(rng))),
        2 => ("GET", format!("/api/v1/data/{object}/{id}{}", query_string(rng))),
        3 | 4 => ("POST", format!("/api/v1/data/{object}")),
        5 => ("PATCH", format!("/api/v1/data/{object}/{id}{}", rng.pick(&["", "?expectedVersion=1", "?expectedVersion=x"]))),
        6 => ("DELETE", format!("/api/v1/data/{object}/{id}")),
        7 => ("POST", format!("/api/v1/data/{object}/query")),
        8 => ("POST", format!("/api/v1/data/{object}/{}", rng.pick(&["batch", "createMany", "updateMany", "deleteMany"]))),
        9 => ("POST", "/api/v1/graphql".to_string()),
        10 => (
            "GET",
            format!(
                "/api/v1/{}{}",
                rng.pick(&["search", "audit", "meta/object", "meta/object/order", "meta/nope", "projections", "discovery", "health"]),
                query_string(rng)
            ),
        ),
        11 => ("POST", format!("/api/v1/analytics/{}", rng.pick(&["query", "sql", "explain"]))),
        12 => ("PUT", format!("/api/v1/meta/object/{object}")),
        _ => (*rng.pick(&["GET", "POST", "PUT", "OPTIONS", "TRACE"]), format!("/{}", encode(&text(rng)).replace("%2F", "/"))),
    };
    let body: Option<Json> = match (method, rng.index(10)) {
        ("GET" | "DELETE", _) => None,
        (_, 0) => None,
        _ if path.ends_with("/graphql") => Some(graphql(rng)),
        _ if path.ends_with("/query") => Some(json!({"object": object, "where": filter(rng, 0), "limit": value(rng, 2), "orderBy": value(rng, 2)})),
        _ if path.contains("/analytics/") => Some(json!({"cube": text(rng), "measures": value(rng, 1), "dimensions": value(rng, 1), "filters": value(rng, 1)})),
        _ if path.contains("Many") || path.ends_with("/batch") => {
            Some(json!({"records": (0..rng.index(4)).map(|_| value(rng, 0)).collect::<Vec<_>>(), "operation": text(rng), "ids": value(rng, 1)}))
        }
        _ if path.contains("/meta/") => Some(json!({"name": object, "fields": { *rng.pick(FIELDS): {"type": text(rng)} }})),
        // Well-formed writes too, so reads and later writes meet real records.
        (_, 1..=4) if object == "order" => Some(json!({"title": rng.pick(&["a", "open", "Ada", "🚀", "x y"]), "amount": rng.index(100)})),
        (_, 1..=4) if object == "customer" => Some(json!({"name": rng.pick(&["Ada", "Alan", "Grace"])})),
        _ => {
            let mut record = Map::new();
            for _ in 0..rng.index(5) {
                record.insert(rng.pick(FIELDS).to_string(), value(rng, 1));
            }
            Some(Json::Object(record))
        }
    };
    let mut bytes = body.map(|b| b.to_string().into_bytes());
    if let Some(raw) = bytes.as_mut() {
        match rng.index(12) {
            0 => raw.truncate(rng.index(raw.len() + 1)),
            1 => raw.extend_from_slice(&[0xff, 0xfe, 0x00]),
            _ => {}
        }
    }
    let mut headers = Vec::new();
    if bytes.is_some() {
        let content_type = *rng.pick(&[
            "application/json",
            "application/json",
            "application/json",
            "text/plain",
            "application/merge-patch+json",
            "application/json; charset=utf-8",
        ]);
        headers.push(("content-type".to_string(), content_type.to_string()));
    }
    if rng.chance(10) {
        headers.push(("if-match".to_string(), rng.pick(&["\"1\"", "*", "garbage", "\"99\""]).to_string()));
    }
    if rng.chance(10) {
        headers.push(("idempotency-key".to_string(), format!("k{}", rng.index(5))));
    }
    if rng.chance(5) {
        headers.push(("x-min-position".to_string(), rng.pick(&["0", "1", "x", "-1"]).to_string()));
    }
    (method.to_string(), path, bytes, headers)
}

async fn fuzz(postgres: bool) {
    let seed: u64 = std::env::var("FUZZ_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0x5eed_0b1e_c757_ac4b);
    let requests: usize = std::env::var("FUZZ_REQUESTS").ok().and_then(|s| s.parse().ok()).unwrap_or(2_500);
    let api: Api = api(postgres).await;
    let mut rng = Rng(seed.wrapping_mul(2).wrapping_add(1));
    let mut ids: Vec<String> = Vec::new();
    let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
    for n in 0..requests {
        let (method, path, body, headers) = request(&mut rng, &ids);
        let mut builder = axum::http::Request::builder().method(method.as_str()).uri(&path);
        for (k, v) in &headers {
            builder = builder.header(k, v);
        }
        let Ok(request) = builder.body(axum::body::Body::from(body.clone().unwrap_or_default())) else {
            continue; // a URI the HTTP layer cannot even carry
        };
        let reply = api.raw(request).await;
        *statuses.entry(reply.status.as_u16()).or_default() += 1;
        if std::env::var("FUZZ_TRACE").is_ok() {
            eprintln!(
                "trace {} {n} {} {method} {path} {}",
                if postgres { "pg" } else { "em" },
                reply.status.as_u16(),
                reply.body.to_string().chars().take(200).collect::<String>()
            );
        }
        let shown = || {
            format!(
                "request {n} (seed {seed}): {method} {path} {:?} -> {} {}",
                body.as_ref().map(|b| String::from_utf8_lossy(b).chars().take(300).collect::<String>()),
                reply.status,
                reply.body.to_string().chars().take(300).collect::<String>()
            )
        };
        let not_implemented = reply.status == StatusCode::NOT_IMPLEMENTED && reply.body["error"]["code"] == json!("not_implemented");
        assert!(reply.status.as_u16() < 500 || not_implemented, "{}", shown());
        if reply.status.is_client_error() || reply.status.is_server_error() {
            assert_eq!(reply.body["success"], json!(false), "{}", shown());
            assert!(reply.body["error"]["code"].is_string(), "{}", shown());
            assert_eq!(reply.body["error"]["httpStatus"], json!(reply.status.as_u16()), "{}", shown());
        }
        if let Some(id) = reply.body["data"]["id"].as_str() {
            if ids.len() < 50 {
                ids.push(id.to_string());
            }
        }
    }
    // The run reached the models: some writes and reads went through.
    assert!(statuses.get(&201).copied().unwrap_or(0) > 10, "{statuses:?}");
    assert!(statuses.get(&200).copied().unwrap_or(0) > 100, "{statuses:?}");
    // Nothing was parked: every write that was acknowledged, every model could hold.
    let all = api.call("GET", "/api/v1/projections", None, &[]).await;
    for projection in all.body["data"]["projections"].as_array().unwrap() {
        assert_eq!(projection["deadLetters"], json!([]), "{projection}");
    }
    eprintln!("fuzz ({}): {requests} requests, statuses {statuses:?}", if postgres { "postgres" } else { "embedded" });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fuzz_embedded() {
    fuzz(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fuzz_postgres() {
    fuzz(true).await;
}
