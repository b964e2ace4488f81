//! `objectstack projections status|rebuild|retry|skip`: talks to a running server's
//! projection routes (a live rebuild needs the server that serves the model).
//! A minimal HTTP/1.0 client: one request per connection, JSON bodies only.

use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde_json::Value as Json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Sends one request; returns the status and the JSON body.
pub async fn request(server: &str, method: &str, path: &str) -> anyhow::Result<(u16, Json)> {
    request_with(server, method, path, None).await
}

/// [`request`] with a JSON body.
pub async fn request_with(server: &str, method: &str, path: &str, body: Option<&Json>) -> anyhow::Result<(u16, Json)> {
    let authority = server.trim_start_matches("http://").trim_end_matches('/');
    if server.starts_with("https://") {
        bail!("https is not supported by this command; use the plain http address of the server");
    }
    let mut stream =
        tokio::net::TcpStream::connect(authority).await.with_context(|| format!("no server answers at {server} (is `objectstack serve` running?)"))?;
    let host = authority.split('/').next().unwrap_or(authority);
    // A server whose app declares permissions needs an administrator's token (`OBJECTSTACK_TOKEN`).
    let authorization = std::env::var("OBJECTSTACK_TOKEN").map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let content_type = if body.is_empty() { "" } else { "Content-Type: application/json\r\n" };
    stream
        .write_all(
            format!(
                "{method} {path} HTTP/1.0\r\nHost: {host}\r\nContent-Length: {}\r\n{content_type}Accept: application/json\r\n{authorization}\r\n{body}",
                body.len()
            )
            .as_bytes(),
        )
        .await?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n").context("malformed HTTP response")?;
    let status: u16 = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).context("malformed HTTP status line")?;
    let json = serde_json::from_str(body).unwrap_or(Json::Null);
    Ok((status, json))
}

fn error_message(body: &Json) -> String {
    body["message"].as_str().or(body["error"]["message"].as_str()).unwrap_or("unexpected answer").to_string()
}

/// Prints each projection's version, position, lag and state.
pub async fn status(server: &str) -> anyhow::Result<()> {
    let (code, body) = request(server, "GET", "/api/v1/projections").await?;
    if code != 200 {
        bail!("{}", error_message(&body));
    }
    println!("{:<8} {:>7} {:<8} {:>10} {:>10} {:>6}  state", "name", "version", "store", "position", "head", "lag");
    for p in body["data"]["projections"].as_array().into_iter().flatten() {
        println!(
            "{:<8} {:>7} {:<8} {:>10} {:>10} {:>6}  {}",
            p["name"].as_str().unwrap_or(""),
            p["version"],
            p["store"].as_str().unwrap_or(""),
            p["position"],
            p["head"],
            p["lag"],
            p["state"].as_str().unwrap_or("")
        );
    }
    Ok(())
}

/// Prints the events each projection parked (its dead letters).
pub async fn dead_letters(server: &str) -> anyhow::Result<()> {
    let (code, body) = request(server, "GET", "/api/v1/projections").await?;
    if code != 200 {
        bail!("{}", error_message(&body));
    }
    let mut any = false;
    for p in body["data"]["projections"].as_array().into_iter().flatten() {
        for letter in p["deadLetters"].as_array().into_iter().flatten() {
            any = true;
            println!(
                "{:<10} position {:>10}  {} on {}: {}",
                p["name"].as_str().unwrap_or(""),
                letter["position"],
                letter["eventType"].as_str().unwrap_or(""),
                letter["stream"].as_str().unwrap_or(""),
                letter["error"].as_str().unwrap_or("")
            );
        }
    }
    if !any {
        println!("no parked events");
    }
    Ok(())
}

/// Applies a parked event again, or (with a reason) skips it.
pub async fn settle(server: &str, name: &str, position: u64, skip_reason: Option<&str>) -> anyhow::Result<()> {
    let (action, body) = match skip_reason {
        Some(reason) => ("skip", Some(serde_json::json!({ "reason": reason }))),
        None => ("retry", None),
    };
    let (code, answer) = request_with(server, "POST", &format!("/api/v1/projections/{name}/dead-letters/{position}/{action}"), body.as_ref()).await?;
    if code != 200 {
        bail!("{name}: {}", error_message(&answer));
    }
    let left = answer["data"]["deadLetters"].as_array().map_or(0, Vec::len);
    println!("{name}: position {position} {}; {left} parked event(s) left", if skip_reason.is_some() { "skipped" } else { "applied" });
    Ok(())
}

/// Starts live rebuilds and shows their progress (events/s, ETA) until each is swapped in.
pub async fn rebuild(server: &str, names: &[String]) -> anyhow::Result<()> {
    for name in names {
        let (code, body) = request(server, "POST", &format!("/api/v1/projections/{name}/rebuild")).await?;
        // Of all of them, one a server does not rebuild (analytics on
        // PostgreSQL, which reads the query model's tables) is passed over.
        if code == 501 && names.len() > 1 {
            eprintln!("{name}: {}; passed over", error_message(&body));
            continue;
        }
        if code != 202 {
            bail!("{name}: {}", error_message(&body));
        }
        let started = Instant::now();
        loop {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let (_, body) = request(server, "GET", &format!("/api/v1/projections/{name}")).await?;
            let rebuild = &body["data"]["rebuild"];
            let applied = rebuild["applied"].as_u64().unwrap_or(0);
            let head = rebuild["head"].as_u64().unwrap_or(0).max(applied);
            let rate = rebuild["eventsPerSecond"].as_f64().unwrap_or(0.0);
            let eta = if rate > 0.0 { (head - applied) as f64 / rate } else { 0.0 };
            let width = 30usize;
            let filled = if head == 0 { width } else { (applied as usize * width) / head as usize };
            eprint!(
                "\r{name:<6} [{}{}] {applied}/{head} events  {rate:.0} events/s  ETA {eta:.1}s   ",
                "#".repeat(filled),
                " ".repeat(width - filled.min(width))
            );
            if rebuild["done"] == Json::Bool(true) {
                let verdict = match rebuild["matchedLive"].as_bool() {
                    Some(true) => "the rebuilt copy matched the live one",
                    Some(false) => "the rebuilt copy DIFFERED from the live one (the rebuilt copy is now served)",
                    None => "the rebuilt copy was ahead of the live one at the swap",
                };
                eprintln!("\n{name}: swapped in after {:.1}s; {verdict}", started.elapsed().as_secs_f64());
                break;
            }
        }
    }
    Ok(())
}

/// Rebuilds the PostgreSQL models (query and audit) with the server
/// stopped: empties each, then folds the whole log into it, showing
/// progress. Returns the position they were rebuilt to.
pub async fn rebuild_postgres_offline(settings: &commands::store::PostgresSettings) -> anyhow::Result<u64> {
    let store = commands::store::open_postgres(settings).await?;
    let pool = store.pool().clone();
    let store: std::sync::Arc<dyn commands::store::EventStore> = std::sync::Arc::new(store);
    projections::pg_model::reset(&pool).await?;
    let (projection, _reader) = projections::pg_model::open(pool.clone()).await?;
    let after = fold_offline(&store, projection, "query").await?;
    projections::pg_audit::reset(&pool).await?;
    fold_offline(&store, projections::pg_audit::open(pool).0, "audit").await?;
    Ok(after)
}

/// Folds the whole log into a PostgreSQL model from its checkpoint, showing progress.
async fn fold_offline(
    store: &std::sync::Arc<dyn commands::store::EventStore>,
    mut projection: impl projections::Projection,
    label: &str,
) -> anyhow::Result<u64> {
    let head = *store.head().borrow();
    let started = Instant::now();
    let mut after = projection.checkpoint().await?;
    let mut parked = Vec::new();
    loop {
        let batch = store.read_all(after, 2_000).await?;
        let Some(last) = batch.last().map(|e| e.position) else { break };
        let decoded = projections::runner::decode(batch);
        parked.extend(projections::runner::apply_or_park(&mut projection, &decoded.events, &decoded.undecodable, last).await?);
        after = last;
        let rate = after as f64 / started.elapsed().as_secs_f64().max(1e-6);
        let eta = head.saturating_sub(after) as f64 / rate.max(1.0);
        eprint!("\r{label} (postgres) {after}/{head} events  {rate:.0} events/s  ETA {eta:.1}s   ");
    }
    eprintln!("\n{label} (postgres): rebuilt {after} events in {:.1}s", started.elapsed().as_secs_f64());
    for letter in &parked {
        eprintln!("parked: position {} ({} on {}): {}", letter.position, letter.event_type, letter.stream, letter.error);
    }
    Ok(after)
}
