//! What the tests that run the real binary share: one HTTP exchange, a free
//! port, a child process killed (SIGKILL) and reaped when dropped, a
//! PostgreSQL database of a test's own, and a wait for a server to answer.

#![allow(dead_code)]

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value as Json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub mod browser;
pub mod kafka;

/// One HTTP/1.1 exchange on a fresh connection: status, headers (lowercase
/// names) and JSON body (None when the server is gone).
pub async fn exchange(port: u16, method: &str, path: &str, headers: &[(&str, String)], body: Option<&Json>) -> Option<(u16, Vec<(String, String)>, Json)> {
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.ok()?;
        let body = body.map(Json::to_string).unwrap_or_default();
        let extra: String = headers.iter().map(|(k, v)| format!("{k}: {v}\r\n")).collect();
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n{extra}Connection: close\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(request.as_bytes()).await.ok()?;
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await.ok()?;
        let text = String::from_utf8_lossy(&answer);
        let status = text.split(' ').nth(1)?.parse().ok()?;
        let (head, body) = text.split_once("\r\n\r\n")?;
        let headers = head.lines().skip(1).filter_map(|l| l.split_once(':')).map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string())).collect();
        Some((status, headers, serde_json::from_str(body).unwrap_or(Json::Null)))
    };
    tokio::time::timeout(Duration::from_secs(10), exchange).await.ok().flatten()
}

/// [`exchange`] without request headers, answering status and body.
pub async fn http(port: u16, method: &str, path: &str, body: Option<&Json>) -> Option<(u16, Json)> {
    exchange(port, method, path, &[], body).await.map(|(status, _, body)| (status, body))
}

/// The text body of a GET (the Prometheus metrics), or None.
pub async fn text(port: u16, path: &str) -> Option<String> {
    text_with(port, path, &[]).await
}

/// [`text`] with request headers.
pub async fn text_with(port: u16, path: &str, headers: &[(&str, String)]) -> Option<String> {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.ok()?;
    let extra: String = headers.iter().map(|(k, v)| format!("{k}: {v}\r\n")).collect();
    stream.write_all(format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{extra}Connection: close\r\n\r\n").as_bytes()).await.ok()?;
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer)).await.ok()?.ok()?;
    let text = String::from_utf8_lossy(&answer).to_string();
    text.split_once("\r\n\r\n").map(|(_, b)| b.to_string())
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A child process, killed with SIGKILL and reaped when dropped.
pub struct Process {
    pub child: Child,
}

impl Process {
    pub fn spawn(program: &str, args: &[String]) -> Process {
        Process::spawn_in(program, args, Path::new("."))
    }

    /// [`Process::spawn`] in a working directory.
    pub fn spawn_in(program: &str, args: &[String], dir: &Path) -> Process {
        let child = Command::new(program)
            .current_dir(dir)
            .args(args)
            .env("RUST_LOG", std::env::var("TEST_CHILD_LOG").unwrap_or_else(|_| "error".into()))
            .stdout(Stdio::null())
            .stderr(if std::env::var("TEST_CHILD_LOG").is_ok() { Stdio::inherit() } else { Stdio::null() })
            .spawn()
            .unwrap_or_else(|e| panic!("starting {program}: {e}"));
        Process { child }
    }

    /// The objectstack binary with these arguments.
    pub fn objectstack(args: &[String]) -> Process {
        Process::spawn(env!("CARGO_BIN_EXE_objectstack"), args)
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            eprintln!("process {} had already ended: {status}", self.child.id());
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `objectstack serve` with these arguments on `port`, once it answers.
pub async fn serve(app: &Path, store: &[String], port: u16) -> Process {
    let mut args = vec!["serve".into(), "--app".into(), app.display().to_string()];
    args.extend(store.iter().cloned());
    args.extend(["--listen".into(), format!("127.0.0.1:{port}")]);
    let mut server = Process::objectstack(&args);
    let started = Instant::now();
    while http(port, "GET", "/api/v1/health", None).await.is_none() {
        if let Ok(Some(status)) = server.child.try_wait() {
            panic!("the server exited at start ({status}); TEST_CHILD_LOG=warn shows why");
        }
        assert!(started.elapsed() < Duration::from_secs(60), "the server did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    server
}

/// `objectstack serve` on the embedded store in `data`, the bundled todo app,
/// with a first administrator, once it answers.
pub async fn serve_with_admin(data: &Path, port: u16, (email, password): (&str, &str)) -> Process {
    let server = Process::objectstack(&[
        "serve".into(),
        "--data-dir".into(),
        data.display().to_string(),
        "--listen".into(),
        format!("127.0.0.1:{port}"),
        "--admin-email".into(),
        email.into(),
        "--admin-password".into(),
        password.into(),
    ]);
    let started = Instant::now();
    while http(port, "GET", "/api/v1/health", None).await.is_none() {
        assert!(started.elapsed() < Duration::from_secs(60), "the server did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    server
}

/// A PostgreSQL database of the test's own; dropped with [`Database::drop_now`].
pub struct Database {
    pub url: String,
    name: String,
    admin: deadpool_postgres::tokio_postgres::Client,
}

impl Database {
    pub async fn create(prefix: &str) -> Database {
        let base = std::env::var("DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
        let name = format!("{prefix}_{}", uuid::Uuid::new_v4().simple());
        let (admin, connection) =
            deadpool_postgres::tokio_postgres::connect(&base, deadpool_postgres::tokio_postgres::NoTls).await.expect("PostgreSQL (ops/test starts it)");
        tokio::spawn(connection);
        admin.batch_execute(&format!("CREATE DATABASE {name}")).await.unwrap();
        let url = match base.rsplit_once('/') {
            Some((server, _)) => format!("{server}/{name}"),
            None => unreachable!("a database URL names its database"),
        };
        Database { url, name, admin }
    }

    pub async fn drop_now(self) {
        let _ = self.admin.batch_execute(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name)).await;
    }
}
