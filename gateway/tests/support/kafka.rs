//! A real Kafka-protocol broker for the tests that run a cluster: tansu,
//! built once by `ops/services/kafka`, keeping its topics in a SQLite file.

use std::time::{Duration, Instant};

use super::Process;

/// The broker binary: `OBJECTSTACK_TANSU`, or what `ops/services/kafka`
/// builds (once) and prints.
pub fn broker_binary() -> String {
    if let Ok(path) = std::env::var("OBJECTSTACK_TANSU") {
        return path;
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../ops/services/kafka");
    let out = std::process::Command::new("bash").arg(script).output().expect("running ops/services/kafka");
    assert!(out.status.success(), "ops/services/kafka failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// A broker keeping its topics in a SQLite file in `dir` (so a restart keeps them).
pub async fn start_broker(binary: &str, port: u16, dir: &std::path::Path) -> Process {
    let url = format!("tcp://127.0.0.1:{port}");
    let broker = Process::spawn_in(
        binary,
        &[
            "broker".into(),
            "--listener-url".into(),
            url.clone(),
            "--advertised-listener-url".into(),
            url,
            "--storage-engine".into(),
            "sqlite://tansu.db".into(),
        ],
        dir,
    );
    let started = Instant::now();
    while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
        assert!(started.elapsed() < Duration::from_secs(20), "the broker did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    broker
}
