//! Search and analytics benchmark over N records (`BENCH_RECORDS`, default
//! 1,000,000), on the read models themselves: indexing rate, search
//! queries/s (one and two words, typo-tolerant), and analytics group-by
//! latency (p50/p99). Run with `ops/bench search`.

mod support;

use std::time::Instant;

use domain::event::{EventPayload, ObjectDefined, RecordCreated};
use domain::value::{Record, Value};
use domain::Timestamp;
use projections::analytics::{parse_query, AnalyticsModel};
use projections::search::{SearchModel, SearchRequest};

use support::{envelope, Rng};

/// A pronounceable word per number (a vocabulary without a dictionary file).
fn word(n: u64) -> String {
    const SYLLABLES: [&str; 16] = ["ka", "lo", "mi", "ter", "vin", "sol", "dra", "pe", "qui", "ron", "ba", "zu", "nel", "fa", "gor", "ish"];
    let mut n = n + 16;
    let mut out = String::new();
    while n > 0 {
        out.push_str(SYLLABLES[(n % 16) as usize]);
        n /= 16;
    }
    out
}

fn percentile(samples: &mut [f64], p: f64) -> f64 {
    samples.sort_by(|a, b| a.total_cmp(b));
    samples[((samples.len() as f64 - 1.0) * p).round() as usize]
}

fn main() {
    let records: u64 = std::env::var("BENCH_RECORDS").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000);
    const VOCABULARY: u64 = 20_000;
    let options: Vec<serde_json::Value> =
        ["north", "south", "east", "west", "centre", "coast", "hills", "islands"].iter().map(|v| serde_json::json!({"label": v, "value": v})).collect();
    let definition = serde_json::json!({"name": "deal", "fields": {
        "title": {"type": "text", "searchable": true}, "notes": {"type": "textarea", "searchable": true},
        "region": {"type": "select", "options": options},
        "rep": {"type": "text"}, "amount": {"type": "currency"}, "closed_on": {"type": "date"}}});
    let defined = EventPayload::ObjectDefined(ObjectDefined { name: "deal".into(), namespace: None, definition: definition.to_string() });
    let mut search = SearchModel::default();
    let mut analytics = AnalyticsModel::default();
    search.apply(&envelope(1, &defined), &defined);
    analytics.apply(&envelope(1, &defined), &defined);
    let regions = ["north", "south", "east", "west", "centre", "coast", "hills", "islands"];
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let (mut search_time, mut analytics_time) = (0.0, 0.0);
    for n in 0..records {
        let mut record = Record::new();
        let id = format!("d{n:08}");
        record.insert("id", Value::Text(id.clone()));
        let title: Vec<String> = (0..3).map(|_| word(rng.below(VOCABULARY))).collect();
        let notes: Vec<String> = (0..12).map(|_| word(rng.below(VOCABULARY))).collect();
        record.insert("title", Value::Text(title.join(" ")));
        record.insert("notes", Value::Text(notes.join(" ")));
        record.insert("region", Value::Text(regions[rng.below(8) as usize].into()));
        record.insert("rep", Value::Text(format!("rep {}", rng.below(1000))));
        record.insert("amount", Value::Float(rng.below(1_000_000) as f64 / 100.0));
        record.insert("closed_on", Value::Text(format!("2026-{:02}-{:02}", 1 + rng.below(12), 1 + rng.below(28))));
        let payload = EventPayload::RecordCreated(RecordCreated { object: "deal".into(), id, record, automated: Vec::new() });
        let env = envelope(n + 2, &payload);
        let t = Instant::now();
        search.apply(&env, &payload);
        if n % 50_000 == 49_999 {
            search.advance_to(n + 2);
        }
        search_time += t.elapsed().as_secs_f64();
        let t = Instant::now();
        analytics.apply(&env, &payload);
        analytics_time += t.elapsed().as_secs_f64();
    }
    let t = Instant::now();
    search.advance_to(records + 1);
    search.make_visible();
    search_time += t.elapsed().as_secs_f64();
    println!("records: {records}");
    println!("indexing: search {:.0} records/s, analytics {:.0} records/s", records as f64 / search_time, records as f64 / analytics_time);

    for (label, words, fuzzy) in [("one word, exact", 1, false), ("one word, typo-tolerant", 1, true), ("two words (or), typo-tolerant", 2, true)] {
        let queries = 300;
        let mut latencies = Vec::with_capacity(queries);
        let mut hits = 0usize;
        let started = Instant::now();
        for _ in 0..queries {
            let text: Vec<String> = (0..words).map(|_| word(rng.below(VOCABULARY))).collect();
            let request = SearchRequest { query: text.join(" "), objects: vec!["deal".into()], limit: 20, fuzzy, ..SearchRequest::default() };
            let t = Instant::now();
            hits += search.search(&request).expect("search").total;
            latencies.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        let rate = queries as f64 / started.elapsed().as_secs_f64();
        println!(
            "search {label}: {rate:.0} queries/s (one thread), p50 {:.2} ms, p99 {:.2} ms, {:.0} matches per query",
            percentile(&mut latencies.clone(), 0.5),
            percentile(&mut latencies, 0.99),
            hits as f64 / queries as f64
        );
    }

    let now = Timestamp::parse("2026-12-31T00:00:00Z").expect("a time");
    let cubes = analytics.cubes(&[]);
    let cube = cubes.iter().find(|c| c.name == "deal").expect("the deal cube");
    for (label, body) in [
        (
            "count + sum + avg by region (8 groups)",
            serde_json::json!({"cube": "deal", "measures": ["count", "amount_sum", "amount_avg"], "dimensions": ["region"]}),
        ),
        ("count + sum by rep (1000 groups)", serde_json::json!({"cube": "deal", "measures": ["count", "amount_sum"], "dimensions": ["rep"]})),
        (
            "sum by month, one region, a date range",
            serde_json::json!({"cube": "deal", "measures": ["amount_sum"], "filters": [{"member": "region", "operator": "equals", "values": ["north"]}],
                               "timeDimensions": [{"dimension": "closed_on", "granularity": "month", "dateRange": ["2026-03-01", "2026-09-30"]}]}),
        ),
    ] {
        let query = parse_query(&body).expect("query");
        let mut latencies = Vec::new();
        for _ in 0..15 {
            let t = Instant::now();
            let result = analytics.run(cube, &query, now).expect("run");
            latencies.push(t.elapsed().as_secs_f64() * 1000.0);
            assert!(!result.rows.is_empty());
        }
        println!("analytics {label}: p50 {:.1} ms, p99 {:.1} ms", percentile(&mut latencies.clone(), 0.5), percentile(&mut latencies, 0.99));
    }
}
