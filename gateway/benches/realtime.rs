//! Realtime benchmark (not a timed test): commit -> delivery latency for N
//! subscribers of one object, against a running server. Started by
//! `ops/bench realtime`, which runs objectstack-rs (WebSocket) at 100, 1k and
//! 10k subscribers and PocketBase (SSE) at 100, on 127.0.0.1.
//!
//! A writer creates records one at a time at a steady pace; each record's
//! title carries its sequence number. Latency is measured from just before
//! the write request is sent to the moment a subscriber reads the event, so
//! it includes the commit (fsync on ours) for both servers. The first
//! BENCH_WARMUP writes (default 5) are delivered but not counted, for both
//! servers: the first fan-out to fresh connections is slower on each side
//! (with 100 writes, p99 is the slowest write or two), and is not what a
//! running server's subscribers feel.
//!
//! Env: BENCH_TARGET (objectstack|pocketbase), BENCH_ADDR (host:port),
//! BENCH_SUBSCRIBERS, BENCH_WRITES (default 100), BENCH_INTERVAL_MS (default 20),
//! BENCH_WRITE_ADDR (where the writes go: another node of a cluster; default BENCH_ADDR);
//! for an app with permissions, BENCH_TOKENS (a file of bearer tokens, one per
//! line: subscriber i signs in with line i) and BENCH_WRITER_TOKEN.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Mutex;
use tokio_tungstenite::tungstenite::Message;

const MARK: &str = "\"title\":\"rt-";

fn env(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_string())
}

/// Sequence numbers of the marked titles in `text`.
fn marks(text: &str) -> Vec<usize> {
    text.match_indices(MARK)
        .filter_map(|(at, _)| {
            let digits: String = text[at + MARK.len()..].chars().take_while(char::is_ascii_digit).collect();
            digits.parse().ok()
        })
        .collect()
}

/// A minimal HTTP/1.1 keep-alive client: one request, the status and body back.
struct Http {
    stream: TcpStream,
    host: String,
    /// `Authorization: ...\r\n`, or nothing.
    authorization: String,
}

impl Http {
    async fn connect(addr: &str) -> Http {
        let authorization = std::env::var("BENCH_WRITER_TOKEN").map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
        Http { stream: TcpStream::connect(addr).await.expect("connect"), host: addr.to_string(), authorization }
    }

    async fn request(&mut self, method: &str, path: &str, body: &str) -> (u16, String) {
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\n{}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            self.host,
            self.authorization,
            body.len()
        );
        self.stream.write_all(request.as_bytes()).await.expect("write");
        let mut buffer = Vec::new();
        let mut chunk = [0u8; 8192];
        loop {
            let n = self.stream.read(&mut chunk).await.expect("read");
            assert!(n > 0, "connection closed");
            buffer.extend_from_slice(&chunk[..n]);
            let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") else { continue };
            let head = String::from_utf8_lossy(&buffer[..end]).to_string();
            let status: u16 = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
            let length: usize =
                head.lines().find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap_or(0))).unwrap_or(0);
            while buffer.len() < end + 4 + length {
                let n = self.stream.read(&mut chunk).await.expect("read");
                assert!(n > 0, "connection closed");
                buffer.extend_from_slice(&chunk[..n]);
            }
            return (status, String::from_utf8_lossy(&buffer[end + 4..end + 4 + length]).to_string());
        }
    }
}

/// Receive times per sequence number, one list per subscriber.
type Received = Arc<Mutex<Vec<Vec<(usize, Instant)>>>>;

async fn objectstack_subscriber(
    addr: String,
    token: Option<String>,
    writes: usize,
    deadline: Instant,
    ready: tokio::sync::mpsc::Sender<()>,
    received: Received,
) {
    // A small read buffer: tungstenite zero-fills it before every read.
    let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default().read_buffer_size(16 << 10);
    let query = token.map(|t| format!("?access_token={t}")).unwrap_or_default();
    let (mut ws, _) = tokio_tungstenite::connect_async_with_config(format!("ws://{addr}/api/v1/realtime{query}"), Some(config), true).await.expect("websocket");
    ws.send(Message::Text(r#"{"type":"subscribe","object":"item","events":["record.created"]}"#.into())).await.expect("subscribe");
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(text))) if text.contains("\"subscribed\"") => break,
            Some(Ok(_)) => {}
            other => panic!("no subscription: {other:?}"),
        }
    }
    let _ = ready.send(()).await;
    let mut mine = Vec::with_capacity(writes);
    while mine.len() < writes {
        let Ok(Some(Ok(frame))) = tokio::time::timeout_at(deadline.into(), ws.next()).await else { break };
        if let Message::Text(text) = frame {
            let now = Instant::now();
            mine.extend(marks(&text).into_iter().map(|seq| (seq, now)));
        }
    }
    received.lock().await.push(mine);
}

async fn pocketbase_subscriber(addr: String, writes: usize, deadline: Instant, ready: tokio::sync::mpsc::Sender<()>, received: Received) {
    let mut stream = TcpStream::connect(&addr).await.expect("connect");
    let request = format!("GET /api/realtime HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut text = String::new();
    let mut chunk = [0u8; 16384];
    let client_id = loop {
        let n = stream.read(&mut chunk).await.expect("read");
        assert!(n > 0, "SSE closed");
        text.push_str(&String::from_utf8_lossy(&chunk[..n]));
        if let Some(at) = text.find("\"clientId\":\"") {
            let rest = &text[at + 12..];
            if let Some(end) = rest.find('"') {
                break rest[..end].to_string();
            }
        }
    };
    let mut http = Http::connect(&addr).await;
    let (status, body) = http.request("POST", "/api/realtime", &format!(r#"{{"clientId":"{client_id}","subscriptions":["items/*"]}}"#)).await;
    assert!(status < 300, "pocketbase subscribe: {status} {body}");
    let _ = ready.send(()).await;
    let mut mine = Vec::with_capacity(writes);
    let mut pending = String::new();
    while mine.len() < writes {
        let Ok(Ok(n)) = tokio::time::timeout_at(deadline.into(), stream.read(&mut chunk)).await else { break };
        if n == 0 {
            break;
        }
        let now = Instant::now();
        pending.push_str(&String::from_utf8_lossy(&chunk[..n]));
        // Whole events only (a title could straddle two reads).
        if let Some(end) = pending.rfind("\n\n") {
            mine.extend(marks(&pending[..end]).into_iter().map(|seq| (seq, now)));
            pending.drain(..end + 2);
        }
    }
    received.lock().await.push(mine);
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

#[tokio::main]
async fn main() {
    let target = env("BENCH_TARGET", "objectstack");
    let addr = env("BENCH_ADDR", "127.0.0.1:18091");
    let subscribers: usize = env("BENCH_SUBSCRIBERS", "100").parse().expect("BENCH_SUBSCRIBERS");
    let counted: usize = env("BENCH_WRITES", "100").parse().expect("BENCH_WRITES");
    let warmup: usize = env("BENCH_WARMUP", "5").parse().expect("BENCH_WARMUP");
    let writes = warmup + counted;
    let interval = Duration::from_millis(env("BENCH_INTERVAL_MS", "20").parse().expect("BENCH_INTERVAL_MS"));
    let received: Received = Arc::new(Mutex::new(Vec::new()));
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel(subscribers.max(1));
    // Generous: connecting 10k sockets takes a while on 2 cores.
    let deadline = Instant::now() + Duration::from_secs(120) + interval * writes as u32;
    let connecting = Instant::now();
    let gate = Arc::new(tokio::sync::Semaphore::new(256));
    let tokens: Vec<String> = match std::env::var("BENCH_TOKENS") {
        Ok(path) => std::fs::read_to_string(path).expect("BENCH_TOKENS file").lines().map(str::to_string).collect(),
        Err(_) => Vec::new(),
    };
    let mut tasks = Vec::new();
    for index in 0..subscribers {
        let (addr, ready, received, gate) = (addr.clone(), ready_tx.clone(), received.clone(), gate.clone());
        let token = (!tokens.is_empty()).then(|| tokens[index % tokens.len()].clone());
        let pocketbase = target == "pocketbase";
        tasks.push(tokio::spawn(async move {
            let permit = gate.acquire_owned().await.expect("semaphore");
            let (tx, mut rx) = tokio::sync::mpsc::channel(1);
            let run = async move {
                if pocketbase {
                    pocketbase_subscriber(addr, writes, deadline, tx, received).await
                } else {
                    objectstack_subscriber(addr, token, writes, deadline, tx, received).await
                }
            };
            let handle = tokio::spawn(run);
            let _ = rx.recv().await;
            drop(permit);
            let _ = ready.send(()).await;
            handle.await.expect("subscriber");
        }));
    }
    drop(ready_tx);
    for _ in 0..subscribers {
        ready_rx.recv().await.expect("every subscriber is ready");
    }
    let connect_time = connecting.elapsed();
    tokio::time::sleep(Duration::from_millis(500)).await;

    // Writes may go to another node of a cluster than the subscribers' one.
    let write_addr = env("BENCH_WRITE_ADDR", &addr);
    let mut http = Http::connect(&write_addr).await;
    let path = if target == "pocketbase" { "/api/collections/items/records" } else { "/api/v1/data/item" };
    let mut sent = Vec::with_capacity(writes);
    let mut acks = Vec::with_capacity(writes);
    let mut next = Instant::now();
    for seq in 0..writes {
        tokio::time::sleep_until(next.into()).await;
        next += interval;
        let body = format!(r#"{{"title":"rt-{seq}","status":"open","amount":1,"category":"bench"}}"#);
        let t0 = Instant::now();
        let (status, reply) = http.request("POST", path, &body).await;
        assert!(status < 300, "write failed: {status} {reply}");
        acks.push(t0.elapsed().as_secs_f64() * 1000.0);
        sent.push(t0);
    }
    for task in tasks {
        task.await.expect("subscriber task");
    }
    let received = received.lock().await;
    let mut latencies: Vec<f64> = Vec::with_capacity(subscribers * writes);
    let mut out_of_order = 0usize;
    for mine in received.iter() {
        for pair in mine.windows(2) {
            if pair[1].0 <= pair[0].0 {
                out_of_order += 1;
            }
        }
        latencies.extend(mine.iter().filter(|(seq, _)| *seq >= warmup).map(|(seq, at)| at.saturating_duration_since(sent[*seq]).as_secs_f64() * 1000.0));
    }
    latencies.sort_by(|a, b| a.total_cmp(b));
    // Where the tail comes from: the writes whose last delivery came latest,
    // with their ack and first delivery (a slow ack: the write path; a wide
    // spread: the fan-out).
    let mut per_write: Vec<(usize, f64, f64, f64)> = (warmup..writes).map(|seq| (seq, acks[seq], f64::INFINITY, 0.0)).collect();
    for mine in received.iter() {
        for (seq, at) in mine {
            let ms = at.saturating_duration_since(sent[*seq]).as_secs_f64() * 1000.0;
            if let Some(write) = seq.checked_sub(warmup).and_then(|i| per_write.get_mut(i)) {
                write.2 = write.2.min(ms);
                write.3 = write.3.max(ms);
            }
        }
    }
    per_write.sort_by(|a, b| b.3.total_cmp(&a.3));
    let slowest: Vec<String> = per_write.iter().take(3).map(|(seq, ack, first, last)| format!("#{seq} ack {ack:.2} first {first:.2} last {last:.2}")).collect();
    acks.drain(..warmup);
    acks.sort_by(|a, b| a.total_cmp(b));
    let expected = subscribers * counted;
    println!(
        "{target} subscribers={subscribers} writes={counted} (after {warmup}) every {}ms: delivered {}/{expected} (out of order {out_of_order}); write->delivery p50 {:.2} ms p99 {:.2} ms max {:.2} ms; write ack p50 {:.2} ms p99 {:.2} ms; connect {:.1}s; slowest writes (ms): {}",
        interval.as_millis(),
        latencies.len(),
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        latencies.last().copied().unwrap_or(f64::NAN),
        percentile(&acks, 0.5),
        percentile(&acks, 0.99),
        connect_time.as_secs_f64(),
        slowest.join(", "),
    );
}
