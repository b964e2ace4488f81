//! The console at 100k records (`ops/bench console`): the real binary on the
//! embedded store seeded with 100,000 tasks, a real headless Chromium opening
//! the task list cold (a fresh page load, the token already in the tab), five
//! times or `BENCH_RUNS`: first contentful paint, and the time until the list
//! is usable (the first page of records with its total on screen, the mark
//! `objectstack:records`), both from the navigation's start; and the server's
//! CPU for each load (from `/proc/PID/stat`). Goal: usable in under 1 s.

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::Instant;

use serde_json::{json, Value as Json};
use support::browser::Browser;
use support::{exchange, http};

const RECORDS: usize = 100_000;

fn cpu_ms(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat.rsplit_once(')').unwrap().1.split_whitespace().collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    ticks as f64 * 10.0
}

fn spread(mut values: Vec<f64>) -> String {
    values.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let median = values[values.len() / 2];
    format!("median {median:.0} (min {:.0}, max {:.0})", values[0], values[values.len() - 1])
}

#[tokio::main]
async fn main() {
    let runs: usize = std::env::var("BENCH_RUNS").ok().and_then(|r| r.parse().ok()).unwrap_or(5);
    let data = tempfile::tempdir().unwrap();
    let port = support::free_port();
    let server = support::serve_with_admin(data.path(), port, ("bench@example.com", "bench-password")).await;
    let (_, signed) =
        http(port, "POST", "/api/v1/auth/sign-in/email", Some(&json!({"email": "bench@example.com", "password": "bench-password"}))).await.unwrap();
    let token = signed["data"]["token"].as_str().unwrap().to_string();
    let auth = [("authorization", format!("Bearer {token}"))];
    let seeding = Instant::now();
    for batch in 0..RECORDS / 200 {
        let records: Vec<Json> = (0..200)
            .map(|i| {
                let n = batch * 200 + i;
                let priority = ["low", "normal", "high", "urgent"][n % 4];
                json!({"subject": format!("task {n}"), "priority": priority, "status": "not_started", "estimated_hours": n % 40})
            })
            .collect();
        let (status, _, body) = exchange(port, "POST", "/api/v1/data/task/createMany", &auth, Some(&Json::Array(records))).await.expect("seeding");
        assert_eq!(status, 201, "{body}");
    }
    println!("seeded {RECORDS} tasks in {:.1} s", seeding.elapsed().as_secs_f64());

    let browser = Browser::start().await;
    let base = format!("http://127.0.0.1:{port}/_/");
    browser.open(&base).await;
    browser.run("sessionStorage.setItem('objectstack.console.token', arguments[0]); return true;", json!([token])).await;
    // One load to warm the browser's module cache (revalidated, as every load is).
    browser.open(&format!("{base}#/o/task")).await;
    browser.wait_text("#summary", "of 1000").await;
    let (mut paints, mut usable, mut cpu) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..runs {
        browser.open("about:blank").await;
        let before = cpu_ms(server.child.id());
        browser.open(&format!("{base}#/o/task")).await;
        browser.wait_text("#summary", "of 1000").await;
        let timing = browser
            .run(
                "const mark = performance.getEntriesByName('objectstack:records')[0]; const paint = performance.getEntriesByName('first-contentful-paint')[0]; return [paint ? paint.startTime : -1, mark ? mark.startTime : -1];",
                json!([]),
            )
            .await;
        cpu.push(cpu_ms(server.child.id()) - before);
        paints.push(timing[0].as_f64().unwrap());
        usable.push(timing[1].as_f64().unwrap());
    }
    println!("console, task list at {RECORDS} records, {runs} cold loads:");
    println!("  first contentful paint ms: {}", spread(paints));
    println!("  usable list ms:            {}", spread(usable));
    println!("  server CPU per load ms:    {} (10 ms ticks)", spread(cpu));
}
