//! The floor under realtime fan-out on this machine (not a timed test): one
//! process, N loopback TCP connections, a server task per connection fed by a
//! bounded channel (as the realtime socket is), and a client task per
//! connection that reads. Each "write" puts one 256-byte message into every
//! channel; latency runs from just before the fan-out to the client's read.
//! No WebSocket framing, no JSON, no log, no HTTP: what is left is tokio and
//! the kernel's loopback path, so the realtime benchmark cannot beat these
//! figures on the same box. Run with `ops/bench realtime-floor`.
//!
//! Env: BENCH_SIZES (default "100 1000 10000"), BENCH_WRITES (default 60),
//! BENCH_INTERVAL_MS (default 100).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

const MESSAGE: usize = 256;

fn env(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_string())
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

async fn run(subscribers: usize, writes: usize, interval: Duration, direct: bool) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let base = Instant::now();
    let latencies = Arc::new(Mutex::new(Vec::with_capacity(subscribers * writes)));
    let mut clients = Vec::with_capacity(subscribers);
    let mut senders = Vec::with_capacity(subscribers);
    let mut sockets = Vec::new();
    for _ in 0..subscribers {
        let client = TcpStream::connect(addr).await.expect("connect");
        client.set_nodelay(true).expect("nodelay");
        let (server, _) = listener.accept().await.expect("accept");
        server.set_nodelay(true).expect("nodelay");
        if direct {
            sockets.push(server);
        } else {
            spawn_writer(server, &mut senders);
        }
        let latencies = latencies.clone();
        clients.push(tokio::spawn(async move {
            let mut client = client;
            let mut buf = [0u8; MESSAGE];
            let mut mine = Vec::with_capacity(writes);
            for _ in 0..writes {
                // A message the direct mode could not write (a full socket) never
                // comes: give up on it rather than wait forever.
                match tokio::time::timeout(Duration::from_secs(10), client.read_exact(&mut buf)).await {
                    Ok(Ok(_)) => {}
                    _ => break,
                }
                let sent = u64::from_le_bytes(buf[..8].try_into().expect("8 bytes"));
                mine.push((base.elapsed().as_nanos() as u64 - sent) as f64 / 1e6);
            }
            latencies.lock().expect("latencies").extend(mine);
        }));
    }
    let mut dropped = 0usize;
    for _ in 0..writes {
        let mut message = vec![b'x'; MESSAGE];
        message[..8].copy_from_slice(&(base.elapsed().as_nanos() as u64).to_le_bytes());
        let message: Arc<[u8]> = message.into();
        for tx in &senders {
            let _ = tx.try_send(message.clone());
        }
        // Direct: the fan-out loop writes into each socket itself (no task
        // hand-off); a write that would block is dropped and counted.
        for socket in &sockets {
            if !matches!(socket.try_write(&message), Ok(n) if n == MESSAGE) {
                dropped += 1;
            }
        }
        tokio::time::sleep(interval).await;
    }
    for client in clients {
        let _ = client.await;
    }
    let mut all = std::mem::take(&mut *latencies.lock().expect("latencies"));
    all.sort_by(f64::total_cmp);
    println!(
        "  {subscribers:>6} connections  {:>6} deliveries ({dropped} not written)  p50 {:>7.2} ms  p99 {:>7.2} ms  max {:>7.2} ms",
        all.len(),
        percentile(&all, 0.5),
        percentile(&all, 0.99),
        all.last().copied().unwrap_or(0.0)
    );
}

/// A writer task per connection, fed by a bounded channel (the realtime socket's shape).
fn spawn_writer(server: TcpStream, senders: &mut Vec<mpsc::Sender<Arc<[u8]>>>) {
    let (tx, mut rx) = mpsc::channel::<Arc<[u8]>>(4096);
    senders.push(tx);
    tokio::spawn(async move {
        let mut server = server;
        while let Some(message) = rx.recv().await {
            if server.write_all(&message).await.is_err() {
                return;
            }
        }
    });
}

fn main() {
    let sizes: Vec<usize> = env("BENCH_SIZES", "100 1000 10000").split_whitespace().filter_map(|s| s.parse().ok()).collect();
    let writes: usize = env("BENCH_WRITES", "60").parse().unwrap_or(60);
    let interval = Duration::from_millis(env("BENCH_INTERVAL_MS", "100").parse().unwrap_or(100));
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    println!(
        "raw loopback TCP fan-out, {writes} writes {interval:?} apart, one process, {} worker threads",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    for direct in [false, true] {
        println!("{}", if direct { "the fan-out loop writes into every socket itself:" } else { "a writer task per connection, fed by a bounded channel:" });
        for n in &sizes {
            runtime.block_on(run(*n, writes, interval, direct));
        }
    }
}
