//! Operating a running server, against the real binary: the access log (JSON
//! lines when asked, one per request with its id, route, status, error code
//! and the actor who called), the request id echoed on the answer, and the
//! Prometheus metrics by route and error code, appends and realtime.

mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value as Json};
use support::{exchange, free_port, http, Process};

/// `serve` on the embedded store with a first administrator, its log in `log`.
async fn serve_logging(data: &std::path::Path, log: &std::path::Path, port: u16, extra_env: &[(&str, String)]) -> Process {
    let mut command = Command::new(env!("CARGO_BIN_EXE_objectstack"));
    command
        .args(["serve", "--data-dir", &data.display().to_string(), "--listen", &format!("127.0.0.1:{port}")])
        .args(["--admin-email", "ops@example.com", "--admin-password", "observe-pass-1"])
        .env("RUST_LOG", "warn,access=info")
        .env("OBJECTSTACK_LOG_FORMAT", "json")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap());
    for (key, value) in extra_env {
        command.env(key, value);
    }
    let server = Process { child: command.spawn().unwrap() };
    let started = Instant::now();
    while http(port, "GET", "/api/v1/health", None).await.is_none() {
        assert!(started.elapsed() < Duration::from_secs(60), "the server did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    server
}

async fn admin_token(port: u16) -> (String, String) {
    let body = json!({"email": "ops@example.com", "password": "observe-pass-1"});
    let (status, answer) = http(port, "POST", "/api/v1/auth/sign-in/email", Some(&body)).await.unwrap();
    assert_eq!(status, 200, "{answer}");
    (answer["data"]["token"].as_str().unwrap().to_string(), answer["data"]["user"]["id"].as_str().unwrap().to_string())
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// The access lines of a JSON log: their `fields`.
fn access_lines(log: &std::path::Path) -> Vec<Json> {
    std::fs::read_to_string(log)
        .unwrap()
        .lines()
        .filter_map(|line| serde_json::from_str::<Json>(line).ok())
        .filter(|line| line["target"] == "access")
        .map(|line| line["fields"].clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_log_request_ids_and_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("server.log");
    let port = free_port();
    let server = serve_logging(&dir.path().join("data"), &log, port, &[]).await;
    let (token, admin_id) = admin_token(port).await;
    let auth = [("authorization", format!("Bearer {token}"))];

    let (status, headers, _) = exchange(port, "GET", "/api/v1/data/task?top=1", &[auth[0].clone(), ("x-request-id", "probe-1".into())], None).await.unwrap();
    assert_eq!(status, 200);
    assert_eq!(header(&headers, "x-request-id"), Some("probe-1"), "the client's id is echoed");
    let (status, headers, body) = exchange(port, "GET", "/api/v1/data/task/nope", &auth, None).await.unwrap();
    assert_eq!(status, 404, "{body}");
    let generated = header(&headers, "x-request-id").expect("an id is made when the client sent none").to_string();
    assert_eq!(generated.len(), 32, "{generated}");
    let (status, _, body) = exchange(port, "POST", "/api/v1/data/task", &auth, Some(&json!({"subject": "counted", "owner": admin_id}))).await.unwrap();
    assert_eq!(status, 201, "{body}");
    let (status, _, body) = exchange(port, "POST", "/api/v1/data/task", &auth, Some(&json!({"subject": 5}))).await.unwrap();
    assert_eq!(status, 400, "{body}");
    let code = body["error"]["code"].as_str().unwrap().to_string();

    let metrics = support::text_with(port, "/metrics", &auth).await.unwrap();
    for line in [
        "objectstack_http_requests_total{method=\"GET\",route=\"/api/v1/data/{object}\",status=\"2xx\"} 1".to_string(),
        "objectstack_http_requests_total{method=\"GET\",route=\"/api/v1/data/{object}/{id}\",status=\"4xx\"} 1".to_string(),
        "objectstack_http_requests_total{method=\"POST\",route=\"/api/v1/data/{object}\",status=\"2xx\"} 1".to_string(),
        "objectstack_http_request_duration_seconds_count{method=\"POST\",route=\"/api/v1/data/{object}\"} 2".to_string(),
        "objectstack_http_errors_total{code=\"record_not_found\"} 1".to_string(),
        format!("objectstack_http_errors_total{{code=\"{code}\"}} 1"),
        "objectstack_realtime_connections 0".to_string(),
        "objectstack_realtime_drops_total{reason=\"slow_consumer\"} 0".to_string(),
        "objectstack_as_of_snapshots 0".to_string(),
    ] {
        assert!(metrics.contains(&line), "{line} missing from\n{metrics}");
    }
    let appends = metrics.lines().find_map(|l| l.strip_prefix("objectstack_appends_total ")).expect("appends are counted");
    assert!(appends.parse::<u64>().unwrap() >= 1, "{appends}");
    assert!(metrics.contains("objectstack_append_conflicts_total 0"), "{metrics}");
    drop(server);

    let lines = access_lines(&log);
    let probe = lines.iter().find(|l| l["request_id"] == "probe-1").unwrap_or_else(|| panic!("no access line for probe-1 in {lines:?}"));
    assert_eq!(probe["method"], "GET");
    assert_eq!(probe["route"], "/api/v1/data/{object}");
    assert_eq!(probe["path"], "/api/v1/data/task", "the query string (filters) is left out");
    assert_eq!(probe["status"], 200);
    assert_eq!(probe["actor"], admin_id.as_str(), "{probe}");
    assert_eq!(probe["code"], "-");
    let missing = lines.iter().find(|l| l["request_id"] == generated.as_str()).unwrap_or_else(|| panic!("no line for {generated}"));
    assert_eq!((missing["status"].as_u64(), missing["code"].as_str()), (Some(404), Some("record_not_found")), "{missing}");
    let anonymous = lines.iter().find(|l| l["route"] == "/api/v1/health").expect("the health probes are logged");
    assert_eq!(anonymous["actor"], "-", "no caller was resolved for the health probe");
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(!text.contains(&token), "the bearer token never reaches the log");
    assert!(!text.contains("observe-pass-1"), "nor the password");
}

/// An OTLP/HTTP receiver on 127.0.0.1: every JSON body posted, in order.
async fn otlp_receiver() -> (u16, std::sync::Arc<std::sync::Mutex<Vec<Json>>>) {
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let bodies = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let kept = bodies.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let kept = kept.clone();
            tokio::spawn(async move {
                let mut stream = BufReader::new(stream);
                loop {
                    let mut length = 0usize;
                    let mut line = String::new();
                    loop {
                        line.clear();
                        if stream.read_line(&mut line).await.unwrap_or(0) == 0 {
                            return;
                        }
                        if line == "\r\n" {
                            break;
                        }
                        if let Some((name, value)) = line.split_once(':') {
                            if name.eq_ignore_ascii_case("content-length") {
                                length = value.trim().parse().unwrap_or(0);
                            }
                        }
                    }
                    let mut body = vec![0; length];
                    if stream.read_exact(&mut body).await.is_err() {
                        return;
                    }
                    kept.lock().unwrap().push(serde_json::from_slice(&body).unwrap_or(Json::Null));
                    let answer = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}";
                    if stream.get_mut().write_all(answer.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (port, bodies)
}

/// The spans received so far: (trace id, span id, parent span id, name).
fn spans(bodies: &std::sync::Mutex<Vec<Json>>) -> Vec<(String, String, String, String)> {
    let mut out = Vec::new();
    for body in bodies.lock().unwrap().iter() {
        for resource in body["resourceSpans"].as_array().into_iter().flatten() {
            for scope in resource["scopeSpans"].as_array().into_iter().flatten() {
                for span in scope["spans"].as_array().into_iter().flatten() {
                    let text = |key: &str| span[key].as_str().unwrap_or("").to_ascii_lowercase();
                    out.push((text("traceId"), text("spanId"), text("parentSpanId"), text("name")));
                }
            }
        }
    }
    out
}

/// With an OTLP endpoint configured, a write is one trace: the request
/// (continuing the caller's `traceparent`), its command, the append, and
/// every projection that applied it, each the child of the one before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_is_one_trace_from_request_to_projections() {
    let (collector, bodies) = otlp_receiver().await;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("server.log");
    let port = free_port();
    let env = [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", format!("http://127.0.0.1:{collector}")),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json".into()),
        ("OTEL_BSP_SCHEDULE_DELAY", "100".into()),
        ("OTEL_SERVICE_NAME", "objectstack-test".into()),
    ];
    let _server = serve_logging(&dir.path().join("data"), &log, port, &env).await;
    let (token, admin_id) = admin_token(port).await;
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let caller_span = "00f067aa0ba902b7";
    let headers = [("authorization", format!("Bearer {token}")), ("traceparent", format!("00-{trace}-{caller_span}-01"))];
    let (status, _, body) = exchange(port, "POST", "/api/v1/data/task", &headers, Some(&json!({"subject": "traced", "owner": admin_id}))).await.unwrap();
    assert_eq!(status, 201, "{body}");

    // A caller that says "not sampled" gets no trace (parent-based sampling, the default).
    let unsampled = "0af7651916cd43dd8448eb211c80319c";
    let headers = [("authorization", format!("Bearer {token}")), ("traceparent", format!("00-{unsampled}-b7ad6b7169203331-00"))];
    let (status, _, body) = exchange(port, "POST", "/api/v1/data/task", &headers, Some(&json!({"subject": "untraced", "owner": admin_id}))).await.unwrap();
    assert_eq!(status, 201, "{body}");

    let started = Instant::now();
    let ours = loop {
        let ours: Vec<_> = spans(&bodies).into_iter().filter(|s| s.0 == trace).collect();
        if ours.iter().filter(|s| s.3.starts_with("project ")).count() >= 3 || started.elapsed() > Duration::from_secs(20) {
            break ours;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let named = |name: &str| ours.iter().find(|s| s.3 == name).unwrap_or_else(|| panic!("no span '{name}' in {ours:?}")).clone();
    let request = named("post /api/v1/data/{object}");
    assert_eq!(request.2, caller_span, "the request continues the caller's trace");
    let command = named("command create");
    assert_eq!(command.2, request.1, "the command runs in the request");
    let append = named("append");
    assert_eq!(append.2, command.1, "the append runs in the command");
    let projections: Vec<_> = ours.iter().filter(|s| s.3.starts_with("project ")).collect();
    assert!(projections.len() >= 3, "the projections that applied the write are in its trace: {ours:?}");
    for projection in &projections {
        assert_eq!(projection.2, append.1, "{} is a child of the append", projection.3);
    }
    assert!(spans(&bodies).iter().all(|s| s.0 != unsampled), "a request its caller did not sample makes no span");
    let everything = serde_json::to_string(&*bodies.lock().unwrap()).unwrap();
    assert!(!everything.contains(&token), "the bearer token is not in the traces");
    assert!(everything.contains("objectstack-test"), "the service is named");
}
