//! A real headless Chromium driven over WebDriver (Debian's `chromium` and
//! `chromium-driver`; `ops/test` installs them when missing): chromedriver
//! on a free loopback port, killed with the test, and the few commands the
//! console tests use, each a plain HTTP exchange.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{json, Value as Json};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};

use super::{free_port, Process};

/// The WebDriver element reference key.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

pub struct Browser {
    port: u16,
    session: String,
    _driver: Process,
    _profile: tempfile::TempDir,
}

fn program(name: &str, env: &str) -> String {
    let path = std::env::var(env).unwrap_or_else(|_| format!("/usr/bin/{name}"));
    assert!(Path::new(&path).exists(), "{path} is missing: ops/test installs Debian's chromium and chromium-driver (or set {env})");
    path
}

/// One WebDriver exchange: chromedriver keeps connections open whatever the
/// request says, so the answer is read by its `Content-Length`.
async fn exchange(port: u16, method: &str, path: &str, body: Option<&Json>) -> Option<(u16, Json)> {
    let exchange = async {
        let stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.ok()?;
        let mut stream = tokio::io::BufReader::new(stream);
        let body = body.map(Json::to_string).unwrap_or_default();
        let request =
            format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}", body.len());
        stream.get_mut().write_all(request.as_bytes()).await.ok()?;
        let mut status_line = String::new();
        stream.read_line(&mut status_line).await.ok()?;
        let status = status_line.split(' ').nth(1)?.parse().ok()?;
        let mut length = 0;
        loop {
            let mut line = String::new();
            stream.read_line(&mut line).await.ok()?;
            if line.trim().is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                if name.trim().eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse().ok()?;
                }
            }
        }
        let mut answer = vec![0; length];
        stream.read_exact(&mut answer).await.ok()?;
        Some((status, serde_json::from_slice(&answer).unwrap_or(Json::Null)))
    };
    tokio::time::timeout(Duration::from_secs(30), exchange).await.ok().flatten()
}

impl Browser {
    /// A new browser (its own empty profile), window 1400x1000.
    pub async fn start() -> Browser {
        let port = free_port();
        let driver = Process::spawn(&program("chromedriver", "OBJECTSTACK_CHROMEDRIVER"), &[format!("--port={port}"), "--allowed-ips=127.0.0.1".into()]);
        let profile = tempfile::tempdir().unwrap();
        let args = [
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--window-size=1400,1000",
        ];
        let mut args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        args.push(format!("--user-data-dir={}", profile.path().display()));
        let capabilities = json!({"capabilities": {"alwaysMatch": {"browserName": "chrome",
            "goog:chromeOptions": {"binary": program("chromium", "OBJECTSTACK_CHROMIUM"), "args": args}}}});
        let started = Instant::now();
        let session = loop {
            if let Some((200, body)) = exchange(port, "POST", "/session", Some(&capabilities)).await {
                break body["value"]["sessionId"].as_str().expect("a WebDriver session").to_string();
            }
            assert!(started.elapsed() < Duration::from_secs(30), "chromedriver did not start a session");
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        Browser { port, session, _driver: driver, _profile: profile }
    }

    async fn command(&self, method: &str, path: &str, body: Option<Json>) -> Json {
        let path = format!("/session/{}{path}", self.session);
        let (status, answer) = exchange(self.port, method, &path, body.as_ref()).await.expect("chromedriver answers");
        assert_eq!(status, 200, "{method} {path}: {answer}");
        answer["value"].clone()
    }

    pub async fn open(&self, url: &str) {
        self.command("POST", "/url", Some(json!({"url": url}))).await;
    }

    /// Runs `script` in the page (its `arguments` are `args`) and answers its return value.
    pub async fn run(&self, script: &str, args: Json) -> Json {
        self.command("POST", "/execute/sync", Some(json!({"script": script, "args": args}))).await
    }

    /// The element `css` matches, waiting up to 10 s for it.
    pub async fn find(&self, css: &str) -> String {
        let started = Instant::now();
        loop {
            let path = format!("/session/{}/element", self.session);
            let body = json!({"using": "css selector", "value": css});
            if let Some((200, answer)) = exchange(self.port, "POST", &path, Some(&body)).await {
                return answer["value"][ELEMENT].as_str().unwrap().to_string();
            }
            assert!(started.elapsed() < Duration::from_secs(10), "no element '{css}' on the page: {}", self.text("body").await);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn click(&self, css: &str) {
        let element = self.find(css).await;
        self.command("POST", &format!("/element/{element}/click"), Some(json!({}))).await;
    }

    /// Types into a field after clearing it.
    pub async fn fill(&self, css: &str, text: &str) {
        let element = self.find(css).await;
        self.command("POST", &format!("/element/{element}/clear"), Some(json!({}))).await;
        self.command("POST", &format!("/element/{element}/value"), Some(json!({"text": text}))).await;
    }

    /// Chooses an option of a `<select>` by value.
    pub async fn choose(&self, css: &str, value: &str) {
        self.find(css).await;
        let script = "const el = document.querySelector(arguments[0]); el.value = arguments[1]; el.dispatchEvent(new Event('change', {bubbles: true})); el.dispatchEvent(new Event('input', {bubbles: true})); return el.value;";
        assert_eq!(self.run(script, json!([css, value])).await, json!(value), "{css} has no option {value}");
    }

    /// The text of the first element `css` matches ("" when none does).
    pub async fn text(&self, css: &str) -> String {
        let script = "const el = document.querySelector(arguments[0]); return el ? el.innerText : '';";
        self.run(script, json!([css])).await.as_str().unwrap_or_default().to_string()
    }

    /// Waits up to 10 s until the text of `css` holds `expected`.
    pub async fn wait_text(&self, css: &str, expected: &str) {
        let started = Instant::now();
        loop {
            let text = self.text(css).await;
            if text.contains(expected) {
                return;
            }
            assert!(started.elapsed() < Duration::from_secs(10), "'{css}' never showed '{expected}': it shows '{text}'");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits up to 10 s until `script` returns true.
    pub async fn wait_until(&self, what: &str, script: &str) {
        let started = Instant::now();
        while self.run(script, json!([])).await != json!(true) {
            assert!(started.elapsed() < Duration::from_secs(10), "{what}: never (page: {})", self.text("body").await);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Opens a new tab and switches to it; answers the previous tab's handle.
    pub async fn new_tab(&self) -> String {
        let before = self.command("GET", "/window", None).await.as_str().unwrap().to_string();
        let opened = self.command("POST", "/window/new", Some(json!({"type": "tab"}))).await;
        self.switch(opened["handle"].as_str().unwrap()).await;
        before
    }

    pub async fn tab(&self) -> String {
        self.command("GET", "/window", None).await.as_str().unwrap().to_string()
    }

    pub async fn switch(&self, handle: &str) {
        self.command("POST", "/window", Some(json!({"handle": handle}))).await;
    }

    /// Saves a screenshot of the page as `dir/name.png`.
    pub async fn screenshot(&self, dir: &Path, name: &str) -> PathBuf {
        use base64::Engine;
        let png = self.command("GET", "/screenshot", None).await;
        let bytes = base64::engine::general_purpose::STANDARD.decode(png.as_str().unwrap()).unwrap();
        std::fs::create_dir_all(dir).unwrap();
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, bytes).unwrap();
        path
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // chromedriver ends the browser with the session; the driver itself is killed with its Process.
        let path = format!("/session/{}", self.session);
        let port = self.port;
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(async { tokio::time::timeout(Duration::from_secs(5), exchange(port, "DELETE", &path, None)).await })
        })
        .join();
    }
}
