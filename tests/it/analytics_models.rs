//! The two analytics models agree: the columnar model in process and SQL on
//! the PostgreSQL query model's tables, fed from one log (creates with
//! missing fields, updates, deletes, texts that differ in case and accents),
//! give the same rows in the same order, or refuse with the same message,
//! for randomised cube queries: every filter operator with fitting and
//! unfitting values, dimensions, time dimensions at every granularity with
//! date ranges, generated and declared measures (count distinct included),
//! orders, limits and offsets.

use std::sync::Arc;
use std::time::Duration;

use commands::service::{Command, CommandMeta, CommandService};
use commands::store::{open_postgres, EventStore};
use domain::metadata::{MetadataCommand, ObjectSpec};
use projections::analytics::{self, parse_query, AnalyticsModel};
use projections::runner::spawn;
use projections::{pg_model, InProcess};
use serde_json::{json, Value as Json};

use crate::common::{self, Rng};

const REGIONS: [&str; 4] = ["north", "south", "east", "west"];
const WORDS: [&str; 8] = ["Émile", "émile", "ÉCOLE", "école", "alpha", "Alpha", "beta", "Zeta"];
const OWNERS: [&str; 4] = ["u1", "u2", "u3", "u4"];
const DIMENSIONS: [&str; 11] = ["title", "region", "amount", "units", "paid", "closed_on", "closed_at", "owner", "created_at", "id", "nothing"];
const OPS: [&str; 17] = [
    "equals",
    "notEquals",
    "contains",
    "notContains",
    "startsWith",
    "endsWith",
    "gt",
    "gte",
    "lt",
    "lte",
    "set",
    "notSet",
    "inDateRange",
    "notInDateRange",
    "beforeDate",
    "afterDate",
    "near",
];

fn definition() -> ObjectSpec {
    ObjectSpec::new(
        json!({"name": "deal", "fields": {
            "title": {"type": "text"},
            "region": {"type": "select", "options": REGIONS.iter().map(|r| json!({"label": r, "value": r})).collect::<Vec<_>>()},
            "amount": {"type": "currency"},
            "units": {"type": "number"},
            "paid": {"type": "boolean"},
            "closed_on": {"type": "date"},
            "closed_at": {"type": "datetime"},
            "owner": {"type": "text"}}}),
        None,
    )
}

fn date(rng: &mut Rng) -> String {
    format!("2026-{:02}-{:02}", 1 + rng.below(12), 1 + rng.below(28))
}

fn datetime(rng: &mut Rng) -> String {
    format!("{}T{:02}:{:02}:{:02}.{:03}Z", date(rng), rng.below(24), rng.below(60), rng.below(60), rng.below(1000))
}

/// A record's fields, each left out one time in five.
fn random_data(rng: &mut Rng) -> serde_json::Map<String, Json> {
    let mut data = serde_json::Map::new();
    let mut put = |rng: &mut Rng, name: &str, value: Json| {
        if !rng.chance(20) {
            data.insert(name.to_string(), value);
        }
    };
    let title = json!(format!("{} {}", rng.pick(&WORDS), rng.pick(&WORDS)));
    put(rng, "title", title);
    let region = json!(rng.pick(&REGIONS));
    put(rng, "region", region);
    // Quarters: exact in binary, so sums agree in any order.
    let amount = json!(rng.below(4000) as f64 / 4.0);
    put(rng, "amount", amount);
    let units = json!(rng.below(20));
    put(rng, "units", units);
    let paid = json!(rng.chance(50));
    put(rng, "paid", paid);
    let closed_on = json!(date(rng));
    put(rng, "closed_on", closed_on);
    let closed_at = json!(datetime(rng));
    put(rng, "closed_at", closed_at);
    let owner = json!(rng.pick(&OWNERS));
    put(rng, "owner", owner);
    data
}

async fn seed(service: &CommandService, rng: &mut Rng) {
    service.execute(Command::Metadata(MetadataCommand::PutObjects { objects: vec![definition()] }), CommandMeta::actor("system")).await.unwrap();
    for i in 0..400u64 {
        let id = format!("d{:03}", rng.below(300));
        let command = match rng.below(6) {
            0..=3 => Command::Create { object: "deal".into(), id: Some(id), data: random_data(rng) },
            4 => Command::Update { object: "deal".into(), id, patch: random_data(rng), expected_version: None },
            _ => Command::Delete { object: "deal".into(), id, expected_version: None },
        };
        // A create of an id that exists, an update or delete of one that does not: refused, no event.
        let outcome = service.execute(command, CommandMeta::actor(OWNERS[(i % 4) as usize])).await;
        drop(outcome);
    }
}

/// A value a filter on `member` might be given (sometimes one that does not fit).
fn random_value(rng: &mut Rng, member: &str) -> Json {
    match (member, rng.below(8)) {
        (_, 0) => json!(rng.pick(&["", "x", "1.5", "true", "2026-03-01", "last 7 days"])),
        (_, 1) => json!(rng.below(1000) as f64 / 4.0),
        ("title", _) => json!(rng.pick(&["é", "É", "émile", "ÉCOLE", "alpha", "Alpha beta", "zeta", "ta", "b", "M"])),
        ("region", _) => json!(rng.pick(&REGIONS)),
        ("owner" | "id", _) => json!(rng.pick(&["u1", "u3", "u", "d1", "d05", "d100"])),
        ("amount" | "units", _) => json!(rng.below(20) as f64 * 25.0),
        ("paid", _) => json!(rng.chance(50)),
        ("closed_on" | "closed_at" | "created_at", _) => json!(if rng.chance(50) { date(rng) } else { datetime(rng) }),
        _ => json!("x"),
    }
}

fn random_range(rng: &mut Rng) -> Json {
    match rng.below(4) {
        0 => json!([date(rng), date(rng)]),
        1 => json!([datetime(rng), datetime(rng)]),
        2 => json!(rng.pick(&["today", "this year", "last year", "last 30 days", "this month", "last quarter"])),
        _ => json!(["2026-01-01", "2026-06-30"]),
    }
}

fn random_query(rng: &mut Rng, cube: &str, measures: &[String]) -> Json {
    let mut picked: Vec<String> = (0..1 + rng.below(3)).map(|_| rng.pick(measures).clone()).collect();
    picked.dedup();
    let dimensions: Vec<&str> = (0..rng.below(3)).map(|_| *rng.pick(&DIMENSIONS)).collect();
    let mut query = json!({"cube": cube, "measures": picked, "dimensions": dimensions});
    if rng.chance(40) {
        let mut td = json!({"dimension": rng.pick(&["closed_on", "closed_at", "created_at", "closed_on", "closed_at", "region"])});
        if rng.chance(70) {
            td["granularity"] = json!(rng.pick(&analytics::time::Granularity::ALL));
        }
        if rng.chance(50) {
            td["dateRange"] = random_range(rng);
        }
        query["timeDimensions"] = json!([td]);
    }
    let filters: Vec<Json> = (0..rng.below(4))
        .map(|_| {
            let member = *rng.pick(&DIMENSIONS);
            // Mostly an operator that fits the member's kind; else any.
            let fitting: &[&str] = match member {
                "title" | "region" | "owner" | "id" => &OPS[..12],
                "amount" | "units" => &["equals", "notEquals", "gt", "gte", "lt", "lte", "set", "notSet"],
                "paid" => &["equals", "notEquals", "set", "notSet"],
                _ => &["equals", "notEquals", "gt", "gte", "lt", "lte", "set", "notSet", "inDateRange", "notInDateRange", "beforeDate", "afterDate"],
            };
            let op = if rng.chance(80) { *rng.pick(fitting) } else { *rng.pick(&OPS) };
            let values: Vec<Json> = match op {
                "set" | "notSet" => Vec::new(),
                "inDateRange" | "notInDateRange" if rng.chance(70) => match random_range(rng) {
                    Json::Array(bounds) => bounds,
                    single => vec![single],
                },
                _ => (0..1 + rng.below(2)).map(|_| random_value(rng, member)).collect(),
            };
            json!({"member": member, "operator": op, "values": values})
        })
        .collect();
    query["filters"] = json!(filters);
    if rng.chance(40) {
        let selected: Vec<String> =
            query["measures"].as_array().unwrap().iter().chain(query["dimensions"].as_array().unwrap()).map(|m| m.as_str().unwrap().to_string()).collect();
        let member = if rng.chance(90) { rng.pick(&selected).clone() } else { "units".to_string() };
        query["order"] = json!([[member, if rng.chance(50) { "asc" } else { "desc" }]]);
    }
    if rng.chance(60) {
        query["limit"] = json!(1 + rng.below(20));
    }
    if rng.chance(30) {
        query["offset"] = json!(rng.below(6));
    }
    query
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn columnar_and_postgres_analytics_agree() {
    let settings = common::pg_settings();
    let pg_store = open_postgres(&settings).await.expect("postgres (ops/test starts it)");
    let pool = pg_store.pool().clone();
    let store: Arc<dyn EventStore> = Arc::new(pg_store);
    let service = CommandService::start(store.clone()).await.unwrap();
    let mut rng = Rng(0x0a1a_171c_2026_1208);
    seed(&service, &mut rng).await;
    let head = *store.head().borrow();

    let (columnar, model) = InProcess::<AnalyticsModel>::new("analytics");
    let columnar = spawn(store.clone(), columnar).await.unwrap();
    let (tables, reader) = pg_model::open(pool.clone()).await.unwrap();
    let tables = spawn(store.clone(), tables).await.unwrap();
    for handle in [&columnar, &tables] {
        assert!(handle.wait_for(head, Duration::from_secs(30)).await);
    }
    let catalog = reader.catalog();
    let declared = [json!({"name": "deals", "sql": "deal",
        "measures": {"owners": {"type": "count_distinct", "sql": "owner"}, "days": {"type": "count_distinct", "sql": "closed_on"},
                     "priced": {"type": "count", "sql": "amount"}, "titled": {"type": "count", "sql": "title"}, "total": {"type": "sum", "sql": "amount"}},
        "dimensions": {"area": {"sql": "region"}, "region": {"sql": "region"}, "title": {"sql": "title"}, "owner": {"sql": "owner"}, "paid": {"sql": "paid"},
                       "closed_on": {"sql": "closed_on"}, "closed_at": {"sql": "closed_at"}, "created_at": {"sql": "created_at"},
                       "amount": {"sql": "amount"}, "units": {"sql": "units"}, "id": {"sql": "id"}}})];
    let cubes = analytics::cube::cubes(&catalog, &declared);
    assert_eq!(cubes.len(), 2, "the generated cube and the declared one");
    let now = commands::clock::now();
    let (mut answered, mut refused, mut grouped_rows) = (0, 0, 0);
    for round in 0..800 {
        let cube = &cubes[round % 2];
        let measures: Vec<String> = cube.measures.iter().map(|m| m.name.clone()).collect();
        let body = random_query(&mut rng, &cube.name, &measures);
        let Ok(query) = parse_query(&body) else { continue };
        let in_memory = model.read().unwrap().run(cube, &query, now);
        let in_postgres = analytics::pg::run(&pool, &catalog, cube, &query, now).await;
        match (in_memory, in_postgres) {
            (Ok(expected), Ok(actual)) => {
                assert_eq!(expected.to_json(), actual.to_json(), "round {round}: {body}");
                answered += 1;
                grouped_rows += expected.rows.len();
            }
            (Err(expected), Err(projections::ReadError::Rejected(actual))) => {
                assert_eq!(expected.to_string(), actual.to_string(), "round {round}: {body}");
                refused += 1;
            }
            (expected, actual) => panic!("round {round}: {body}: the columnar model gave {expected:?}, PostgreSQL {actual:?}"),
        }
    }
    assert!(answered > 400 && refused > 50, "both answers and refusals compared: {answered} answered, {refused} refused");
    assert!(grouped_rows > 1000, "the answers had rows to compare: {grouped_rows}");
}
