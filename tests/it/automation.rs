//! Server-side logic end to end, on both stores: workflow rules writing
//! through the command service (as `system`, with the causing event as
//! causation, read-only fields included, each step once even when two
//! runtimes handle the same events), webhooks delivered to a receiver on
//! 127.0.0.1 (signed, retried, in order, never a password, the delivery log
//! over the API), jobs on a schedule claimed once per tick by two nodes
//! sharing PostgreSQL and run on demand, the admin routes refused to a
//! member, and bad definitions refused at start naming themselves.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode};
use domain::event::{registry, EventPayload, ProcessEvent};
use gateway::config::{Settings, Storage};
use serde_json::{json, Value as Json};

use crate::common;
use crate::rest::{Api, Reply};

pub(crate) const PASSWORD: &str = "correct-horse-battery";

pub(crate) fn app(extra: Json) -> String {
    let mut app = json!({
        "manifest": {"id": "com.example.automation", "name": "Automation"},
        "objects": [{"name": "ticket", "fields": {
            "title": {"type": "text", "required": true},
            "priority": {"type": "select", "options": [{"label": "Low", "value": "low"}, {"label": "High", "value": "high"}]},
            "score": {"type": "number"},
            "escalated": {"type": "boolean", "readonly": true},
            "level": {"type": "text"},
            "touched": {"type": "boolean"},
            "swept": {"type": "boolean"},
            "pin": {"type": "password"}}}],
        "permissions": [{"name": "member", "isProfile": true, "objects": {"ticket": {"allowRead": true, "allowCreate": true, "allowEdit": true}}}],
        "auth": {"defaultProfile": "member"}
    });
    for (key, value) in extra.as_object().unwrap() {
        app[key] = value.clone();
    }
    app.to_string()
}

/// A server for `app` on `storage`, with an administrator and a member signed in.
pub(crate) struct Node {
    pub api: Api,
    pub admin: String,
    pub member: String,
    _app_dir: tempfile::TempDir,
}

async fn node(storage: Storage, app: &str, first: bool) -> Node {
    node_trusting(storage, app, first, None).await
}

/// [`node`], its outbound client trusting the CA certificates of `outbound_ca` too.
pub(crate) async fn node_trusting(storage: Storage, app: &str, first: bool, outbound_ca: Option<std::path::PathBuf>) -> Node {
    let app_dir = tempfile::tempdir().unwrap();
    let path = app_dir.path().join("app.json");
    std::fs::write(&path, app).unwrap();
    let settings = Settings { outbound_ca, ..Settings::local(storage, Some(path)) };
    let system = gateway::app::start(&settings).await.unwrap();
    if first {
        gateway::service::auth::bootstrap_admin(&system, "root@example.com", PASSWORD).await.unwrap();
    }
    let api = Api { system, _dir: None };
    let token = |reply: Reply| reply.body["data"]["token"].as_str().unwrap_or_default().to_string();
    let admin = token(api.call("POST", "/api/v1/auth/sign-in/email", Some(json!({"email": "root@example.com", "password": PASSWORD})), &[]).await);
    let email = format!("member-{}@example.com", uuid::Uuid::new_v4().simple());
    let member = token(api.call("POST", "/api/v1/auth/sign-up/email", Some(json!({"email": email, "password": PASSWORD, "name": "M"})), &[]).await);
    assert!(!admin.is_empty() && !member.is_empty());
    Node { api, admin, member, _app_dir: app_dir }
}

impl Node {
    pub(crate) async fn call(&self, token: &str, method: &str, uri: &str, body: Option<Json>) -> Reply {
        let bearer = format!("Bearer {token}");
        self.api.call(method, uri, body, &[("authorization", bearer.as_str())]).await
    }

    /// A record as the administrator reads it.
    async fn record(&self, uri: &str) -> Json {
        self.ok(&self.admin, "GET", uri, None).await["record"].clone()
    }

    pub(crate) async fn ok(&self, token: &str, method: &str, uri: &str, body: Option<Json>) -> Json {
        let reply = self.call(token, method, uri, body).await;
        assert!(reply.status.is_success(), "{method} {uri}: {} {}", reply.status, reply.body);
        reply.body["data"].clone()
    }
}

/// Polls `check` until it holds (or fails the test after `limit`).
pub(crate) async fn eventually<F, Fut>(what: &str, limit: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    while !check().await {
        assert!(started.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn rules() -> Json {
    json!({"workflows": [
        {"name": "escalate", "objectName": "ticket", "triggerType": "on_create_or_update", "criteria": "priority = \"high\"", "executionOrder": 1,
         "actions": [{"name": "flag", "type": "field_update", "field": "escalated", "value": true},
                     {"name": "grade", "type": "field_update", "field": "level", "value": "=IF(score > 5, \"two\", \"one\")"}]},
        {"name": "follow_up", "objectName": "ticket", "triggerType": "on_update", "criteria": "escalated = true AND NOT(CONTAINS(level, \"+\"))", "executionOrder": 2,
         "reevaluateOnChange": true, "actions": [{"name": "mark", "type": "field_update", "field": "level", "value": "=CONCAT(level, \"+\")"}]},
        {"name": "only_callers", "objectName": "ticket", "triggerType": "on_update", "criteria": "escalated = true", "executionOrder": 3,
         "actions": [{"name": "touch", "type": "field_update", "field": "touched", "value": true}]},
        {"name": "spiral", "objectName": "ticket", "triggerType": "on_update", "criteria": "score > 100", "reevaluateOnChange": true,
         "actions": [{"name": "grow", "type": "field_update", "field": "score", "value": "=score + 1"}]},
        {"name": "sweep", "objectName": "ticket", "triggerType": "schedule", "criteria": "priority = \"low\"",
         "actions": [{"name": "sweep", "type": "field_update", "field": "swept", "value": true}]}
    ]})
}

async fn workflow_rules(postgres: bool) {
    let (storage, _dir) = common::storage(postgres);
    // Members may read `touched` but not write it; a rule acts for the system and may.
    let mut app: Json = serde_json::from_str(&app(rules())).unwrap();
    app["permissions"][0]["fields"] = json!({"ticket.touched": {"readable": true, "editable": false}});
    let node = node(storage, &app.to_string(), true).await;
    // The rules' fields are in the create's own answer: they join the write
    // (escalate; then follow_up, reevaluateOnChange, on escalate's change).
    let mut ids = Vec::new();
    for i in 0..10 {
        let created = node.ok(&node.member, "POST", "/api/v1/data/ticket", Some(json!({"title": format!("t{i}"), "priority": "high", "score": i}))).await;
        let want = if i > 5 { "two+" } else { "one+" };
        assert_eq!((&created["record"]["escalated"], &created["record"]["level"]), (&json!(true), &json!(want)), "{created}");
        assert_eq!(created["record"]["touched"], Json::Null, "only_callers acts on updates: {created}");
        ids.push(created["id"].as_str().unwrap().to_string());
    }
    let low = node.ok(&node.member, "POST", "/api/v1/data/ticket", Some(json!({"title": "calm", "priority": "low"}))).await;
    // One event per write, by the caller; the trail says which rule set which field.
    for id in &ids {
        let uri = format!("/api/v1/data/ticket/{id}");
        let record = node.record(&uri).await;
        assert_eq!(record["escalated"], json!(true), "{record}");
        let history = node.ok(&node.admin, "GET", &format!("{uri}/history"), None).await;
        let entries = history["entries"].as_array().unwrap();
        assert_eq!(entries.len(), 1, "the create alone: {history}");
        let create = &entries[0];
        assert_ne!(create["actor"]["id"], json!("system"), "the caller wrote it: {create}");
        assert_eq!(
            create["metadata"]["automated"],
            json!([{"rule": "escalate", "fields": ["escalated", "level"]}, {"rule": "follow_up", "fields": ["level"]}]),
            "{create}"
        );
        let set_by = |field: &str| create["changes"].as_array().unwrap().iter().find(|c| c["field"] == field).map(|c| c["automatedBy"].clone());
        assert_eq!(set_by("escalated"), Some(json!("escalate")));
        assert_eq!(set_by("level"), Some(json!("follow_up")), "the last rule to set it");
        assert_eq!(set_by("title"), Some(Json::Null), "the caller's own field");
    }
    assert_eq!(low["record"]["escalated"], Json::Null, "criteria false: nothing set");

    // A caller's update runs the on_update rules (only_callers too), in
    // the update's answer; the read-only field stays read-only to callers.
    let uri = format!("/api/v1/data/ticket/{}", ids[0]);
    let renamed = node.ok(&node.member, "PATCH", &uri, Some(json!({"title": "renamed"}))).await;
    assert_eq!((&renamed["record"]["touched"], &renamed["record"]["level"]), (&json!(true), &json!("one+")), "{renamed}");
    let refused = node.call(&node.member, "PATCH", &uri, Some(json!({"escalated": false}))).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.body);
    let hidden = node.call(&node.member, "PATCH", &uri, Some(json!({"touched": false}))).await;
    assert_eq!(hidden.status, StatusCode::FORBIDDEN, "the member may not write what the rule did: {}", hidden.body);
    // A rule that keeps re-triggering itself stops after the last round, and the answer says so.
    let calm_uri = format!("/api/v1/data/ticket/{}", low["id"].as_str().unwrap());
    let spiral = node.ok(&node.member, "PATCH", &calm_uri, Some(json!({"score": 1000}))).await;
    let rounds = domain::automation::before_save::MAX_ROUNDS as i64;
    assert_eq!(spiral["record"]["score"], json!(1000 + rounds), "{spiral}");
    assert!(spiral["warnings"][0]["message"].as_str().unwrap_or_default().contains("after 5 rounds"), "{spiral}");
    assert_eq!(node.record(&calm_uri).await["score"], json!(1000 + rounds), "no round past the limit");
    // The same write through GraphQL carries the rules' fields too (the rules sit below every surface).
    let gql = node
        .call(
            &node.member,
            "POST",
            "/api/v1/graphql",
            Some(json!({"query": "mutation { createTicket(input: {title: \"g\", priority: \"high\", score: 9}) { record { escalated level } } }"})),
        )
        .await;
    assert_eq!(gql.body["data"]["createTicket"]["record"], json!({"escalated": true, "level": "two+"}), "{}", gql.body);

    // The processes report over the API and in /metrics; members may not look.
    node.ok(&node.admin, "GET", "/api/v1/automation", None).await;
    let metrics = node.call(&node.admin, "GET", "/metrics", None).await;
    assert_eq!(metrics.status, StatusCode::OK);
    assert_eq!(node.call(&node.member, "GET", "/api/v1/automation", None).await.status, StatusCode::FORBIDDEN);
    assert_eq!(node.call(&node.member, "GET", "/api/v1/jobs", None).await.status, StatusCode::FORBIDDEN);
    node.api.system.processes().stop().await;
}

#[tokio::test]
async fn workflow_rules_embedded() {
    workflow_rules(false).await;
}

#[tokio::test]
async fn workflow_rules_postgres() {
    workflow_rules(true).await;
}

/// What the receiver saw: each request's headers and body, in order.
type Seen = Arc<Mutex<Vec<(HeaderMap, Vec<u8>)>>>;

/// A receiver on 127.0.0.1; with `refuse_first`, each delivery's first attempt gets 503.
async fn receiver(refuse_first: bool) -> (String, Seen, tokio::sync::oneshot::Sender<()>) {
    let seen: Seen = Default::default();
    let tries: Arc<Mutex<HashMap<String, u32>>> = Default::default();
    let handler = {
        let (seen, tries) = (seen.clone(), tries.clone());
        move |headers: HeaderMap, body: axum::body::Bytes| {
            let (seen, tries) = (seen.clone(), tries.clone());
            async move {
                let id = headers.get("x-objectstack-delivery").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
                seen.lock().unwrap().push((headers, body.to_vec()));
                let mut tries = tries.lock().unwrap();
                let n = tries.entry(id).or_default();
                *n += 1;
                if *n == 1 && refuse_first {
                    StatusCode::SERVICE_UNAVAILABLE
                } else {
                    StatusCode::NO_CONTENT
                }
            }
        }
    };
    let router = axum::Router::new().route("/hook", axum::routing::post(handler));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://127.0.0.1:{}/hook", listener.local_addr().unwrap().port());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await
            .unwrap();
    });
    (url, seen, stop)
}

/// What a receiver computes to check a delivery: `sha256=<hex HMAC of "{timestamp}.{body}">`.
pub(crate) fn hmac_sha256(secret: &str, prefix: &str, body: &[u8]) -> String {
    use hmac::{KeyInit, Mac};
    let mut mac = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(prefix.as_bytes());
    mac.update(body);
    format!("sha256={}", mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect::<String>())
}

async fn webhooks(postgres: bool) {
    let (url, seen, stop) = receiver(true).await;
    let hooks = json!({"webhooks": [{"name": "tickets", "object": "ticket", "url": url, "method": "POST", "secret": "s3cret",
        "includeSession": false, "timeoutMs": 2000, "isActive": true,
        "retryPolicy": {"maxRetries": 3, "backoffStrategy": "fixed", "initialDelayMs": 100, "maxDelayMs": 1000}}]});
    let (storage, _dir) = common::storage(postgres);
    let node = node(storage, &app(hooks), true).await;
    let created = node.ok(&node.member, "POST", "/api/v1/data/ticket", Some(json!({"title": "one", "pin": "pin-1234-first"}))).await;
    let id = created["id"].as_str().unwrap().to_string();
    node.ok(&node.member, "PATCH", &format!("/api/v1/data/ticket/{id}"), Some(json!({"title": "two", "pin": "pin-5678-second"}))).await;
    node.ok(&node.admin, "DELETE", &format!("/api/v1/data/ticket/{id}"), None).await;
    let delivered = || {
        let seen = seen.lock().unwrap();
        seen.len()
    };
    eventually("three deliveries, each after one refusal", Duration::from_secs(15), || async { delivered() >= 6 }).await;
    // The log records the deliveries after the attempts.
    eventually("the delivery log", Duration::from_secs(10), || async {
        node.ok(&node.admin, "GET", "/api/v1/webhooks/tickets/deliveries", None).await["deliveries"].as_array().unwrap().len() == 3
    })
    .await;
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 6, "every delivery twice (a 503, then accepted), no more");
    let mut triggers = Vec::new();
    for pair in seen.chunks(2) {
        let (first, second) = (&pair[0], &pair[1]);
        let header = |h: &HeaderMap, name: &str| h.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
        assert_eq!(header(&first.0, "x-objectstack-delivery"), header(&second.0, "x-objectstack-delivery"), "a retry keeps its delivery id");
        let timestamp: i64 = header(&second.0, "x-objectstack-timestamp").parse().unwrap();
        assert_eq!(header(&second.0, "x-objectstack-signature"), hmac_sha256("s3cret", &format!("{timestamp}."), &second.1));
        let body: Json = serde_json::from_slice(&second.1).unwrap();
        assert_eq!(body["recordId"], json!(id));
        assert_eq!(body["deliveryId"], json!(header(&second.0, "x-objectstack-delivery")));
        triggers.push(body["trigger"].as_str().unwrap().to_string());
        let text = String::from_utf8_lossy(&second.1);
        assert!(!text.contains("1234") && !text.contains("5678") && !text.contains("\"pin\""), "a password never leaves: {text}");
        if body["trigger"] == "update" {
            let title = body["changes"].as_array().unwrap().iter().find(|c| c["field"] == "title").cloned();
            assert_eq!(title, Some(json!({"field": "title", "oldValue": "one", "newValue": "two"})), "{body}");
            assert_eq!(body["record"]["title"], json!("two"));
        }
    }
    assert_eq!(triggers, ["create", "update", "delete"], "a record's changes arrive in their order");
    let log = node.ok(&node.admin, "GET", "/api/v1/webhooks/tickets/deliveries", None).await;
    for delivery in log["deliveries"].as_array().unwrap() {
        assert_eq!((delivery["delivered"].clone(), delivery["attempts"].clone(), delivery["status"].clone()), (json!(true), json!(2), json!(204)), "{log}");
    }
    assert_eq!(node.call(&node.member, "GET", "/api/v1/webhooks/tickets/deliveries", None).await.status, StatusCode::FORBIDDEN);
    assert_eq!(node.call(&node.admin, "GET", "/api/v1/webhooks/nope/deliveries", None).await.status, StatusCode::NOT_FOUND);
    node.api.system.processes().stop().await;
    let _ = stop.send(());
}

#[tokio::test]
async fn webhooks_embedded() {
    webhooks(false).await;
}

#[tokio::test]
async fn webhooks_postgres() {
    webhooks(true).await;
}

fn job_app() -> String {
    let mut extra = rules();
    extra["jobs"] =
        json!([{"id": "sweeper", "name": "sweeper", "schedule": {"type": "interval", "intervalMs": 400}, "handler": "workflow:sweep", "enabled": true}]);
    app(extra)
}

/// Ticks claimed in the log, by scheduled time: each once.
async fn claimed_ticks(node: &Node) -> Vec<i64> {
    let events = node.api.system.commands.store().read_stream("$jobs/sweeper", 0).await.unwrap();
    let mut ticks = Vec::new();
    for event in &events {
        if let Ok(EventPayload::Process(ProcessEvent::JobStarted(started))) = domain::event::codec::decode_envelope_payload(event, registry()) {
            if !started.manual {
                ticks.push(started.tick);
            }
        }
    }
    ticks
}

async fn jobs(postgres: bool) {
    let (storage, _dir) = common::storage(postgres);
    let node = node(storage, &job_app(), true).await;
    let calm = node.ok(&node.member, "POST", "/api/v1/data/ticket", Some(json!({"title": "calm", "priority": "low"}))).await;
    let uri = format!("/api/v1/data/ticket/{}", calm["id"].as_str().unwrap());
    eventually("a scheduled run sweeps the record", Duration::from_secs(10), || async { node.record(&uri).await["swept"] == json!(true) }).await;
    let triggered = node.call(&node.admin, "POST", "/api/v1/jobs/sweeper/trigger", None).await;
    assert_eq!(triggered.status, StatusCode::ACCEPTED, "{}", triggered.body);
    let run = triggered.body["runId"].as_str().unwrap().to_string();
    eventually("the manual run finishes", Duration::from_secs(10), || async {
        let runs = node.ok(&node.admin, "GET", "/api/v1/jobs/sweeper/executions", None).await;
        runs["executions"].as_array().unwrap().iter().any(|r| r["runId"] == json!(run) && r["status"] == json!("success") && r["manual"] == json!(true))
    })
    .await;
    let jobs = node.ok(&node.admin, "GET", "/api/v1/jobs", None).await;
    assert_eq!(jobs["jobs"][0]["name"], json!("sweeper"));
    assert_eq!(jobs["jobs"][0]["schedule"], json!({"type": "interval", "intervalMs": 400}));
    assert_eq!(node.call(&node.member, "POST", "/api/v1/jobs/sweeper/trigger", None).await.status, StatusCode::FORBIDDEN);
    assert_eq!(node.call(&node.admin, "POST", "/api/v1/jobs/nope/trigger", None).await.status, StatusCode::NOT_FOUND);
    // The sweep's write is keyed by its run: the history shows one sweep
    // write, caused by a run, even though later runs saw the record again.
    let history = node.ok(&node.admin, "GET", &format!("{uri}/history"), None).await;
    let writes: Vec<&Json> = history["entries"].as_array().unwrap().iter().filter(|e| e["actor"]["id"] == json!("system")).collect();
    assert_eq!(writes.len(), 1, "{history}");
    assert!(writes[0]["metadata"]["causedBy"].is_string());
    let ticks = claimed_ticks(&node).await;
    let mut unique = ticks.clone();
    unique.dedup();
    assert_eq!(ticks, unique, "every tick claimed once, in order");
    node.api.system.processes().stop().await;
}

#[tokio::test]
async fn jobs_embedded() {
    jobs(false).await;
}

#[tokio::test]
async fn jobs_postgres() {
    jobs(true).await;
}

/// Two nodes on one PostgreSQL store run the same schedule: each tick once.
#[tokio::test]
async fn a_tick_runs_once_across_two_nodes() {
    let settings = common::pg_settings();
    let first = node(Storage::Postgres(settings.clone()), &job_app(), true).await;
    let second = node(Storage::Postgres(settings), &job_app(), false).await;
    // Records written through either node are swept by whichever wins a
    // tick: each node's write model follows the log, the other's writes included.
    let mut uris = Vec::new();
    for (i, writer) in [&first, &second, &first, &second].into_iter().enumerate() {
        let calm = writer.ok(&writer.member, "POST", "/api/v1/data/ticket", Some(json!({"title": format!("calm{i}"), "priority": "low"}))).await;
        uris.push(format!("/api/v1/data/ticket/{}", calm["id"].as_str().unwrap()));
    }
    let reader = &second;
    for uri in &uris {
        eventually("swept through either node", Duration::from_secs(15), || async { reader.record(uri).await["swept"] == json!(true) }).await;
    }
    // A record written through one node is changed through the other.
    let moved = first.call(&first.member, "PATCH", &uris[1], Some(json!({"title": "moved"}))).await;
    assert!(moved.status.is_success(), "{}", moved.body);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    first.api.system.processes().stop().await;
    second.api.system.processes().stop().await;
    let ticks = claimed_ticks(&first).await;
    assert!(ticks.len() >= 4, "ticks every 400 ms for 3 s: {ticks:?}");
    let mut unique = ticks.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(ticks.len(), unique.len(), "no tick claimed twice: {ticks:?}");
    let events = first.api.system.commands.store().read_stream("$jobs/sweeper", 0).await.unwrap();
    let finished = events.iter().filter(|e| e.event_type == "job.finished").count();
    assert!(finished + 2 >= ticks.len(), "runs finish ({finished} of {})", ticks.len());
    for uri in &uris {
        let history = first.ok(&first.admin, "GET", &format!("{uri}/history"), None).await;
        let sweeps = history["entries"].as_array().unwrap().iter().filter(|e| e["actor"]["id"] == json!("system")).count();
        assert_eq!(sweeps, 1, "one sweep per record across both nodes: {history}");
    }
}

/// Why a server for `app` does not start (`None` when it does).
async fn start_error(app: &str) -> Option<String> {
    let (storage, _dir) = common::storage(false);
    let app_dir = tempfile::tempdir().unwrap();
    let path = app_dir.path().join("app.json");
    std::fs::write(&path, app).unwrap();
    let settings = Settings::local(storage, Some(path));
    gateway::app::start(&settings).await.err().map(|error| format!("{error:#}"))
}

#[tokio::test]
async fn bad_definitions_are_refused_at_start() {
    for (extra, expected) in [
        (
            json!({"workflows": [{"name": "bad", "objectName": "ticket", "triggerType": "on_create", "criteria": "nope = 1"}]}),
            "workflow 'bad': criteria: unknown field 'nope'",
        ),
        (
            json!({"workflows": [{"name": "bad", "objectName": "ticket", "triggerType": "on_create", "actions": [{"name": "a1", "type": "flow_launch"}]}]}),
            "/workflows/0/actions/0",
        ),
        (json!({"webhooks": [{"name": "hook", "url": "http://127.0.0.1:9/x", "object": "nothing"}]}), "webhook 'hook': unknown object 'nothing'"),
        (json!({"jobs": [{"id": "jj", "name": "jj", "schedule": {"type": "cron", "expression": "whenever"}, "handler": "x"}]}), "job 'jj' schedule"),
    ] {
        let error = start_error(&app(extra)).await.unwrap_or_else(|| panic!("{expected}: started"));
        assert!(error.contains(expected), "{error}");
    }
}

/// The processes stopped at random points (their tasks aborted wherever they
/// are, recording nothing, as a crash would) while callers write, then
/// started again, many times: every rule step and every swept record is
/// written exactly once, every run ends, and the receiver got every change's
/// delivery at least once (one id per change, nothing it cannot match).
async fn crashes(postgres: bool) {
    let (url, seen, stop) = receiver(false).await;
    let mut extra = rules();
    extra["jobs"] =
        json!([{"id": "sweeper", "name": "sweeper", "schedule": {"type": "interval", "intervalMs": 200}, "handler": "workflow:sweep", "enabled": true}]);
    extra["webhooks"] = json!([{"name": "tickets", "object": "ticket", "url": url, "method": "POST", "includeSession": false, "timeoutMs": 2000, "isActive": true,
        "retryPolicy": {"maxRetries": 3, "backoffStrategy": "fixed", "initialDelayMs": 100, "maxDelayMs": 1000}}]);
    let (storage, _dir) = common::storage(postgres);
    let node = node(storage, &app(extra), true).await;
    let system = node.api.system.clone();
    system.processes().abort().await;
    let mut rng = common::Rng(0x5eed_c0ff_ee00 + postgres as u64);
    let (mut high, mut low) = (Vec::new(), Vec::new());
    for round in 0..12 {
        let processes = commands::process::Processes::start(system.commands.clone(), &system.automation(), &system.outbound);
        for i in 0..3 {
            let created =
                node.ok(&node.member, "POST", "/api/v1/data/ticket", Some(json!({"title": format!("r{round}-{i}"), "priority": "high", "score": i * 4}))).await;
            high.push(created["id"].as_str().unwrap().to_string());
        }
        let calm = node.ok(&node.member, "POST", "/api/v1/data/ticket", Some(json!({"title": format!("calm{round}"), "priority": "low"}))).await;
        low.push(calm["id"].as_str().unwrap().to_string());
        tokio::time::sleep(Duration::from_millis(rng.below(250))).await;
        processes.abort().await;
    }
    let processes = commands::process::Processes::start(system.commands.clone(), &system.automation(), &system.outbound);
    for id in &high {
        let uri = format!("/api/v1/data/ticket/{id}");
        eventually("every high ticket escalated", Duration::from_secs(20), || async {
            let record = node.record(&uri).await;
            record["level"].as_str().is_some_and(|l| l.ends_with('+'))
        })
        .await;
    }
    for id in &low {
        let uri = format!("/api/v1/data/ticket/{id}");
        eventually("every low ticket swept", Duration::from_secs(20), || async { node.record(&uri).await["swept"] == json!(true) }).await;
    }
    let store = system.commands.store().clone();
    let expected: std::collections::BTreeSet<String> = {
        let mut ids = std::collections::BTreeSet::new();
        let mut after = 0;
        loop {
            let events = store.read_all(after, 1000).await.unwrap();
            let Some(last) = events.last() else { break };
            after = last.position;
            for event in events.iter().filter(|e| e.stream.starts_with("ticket/")) {
                ids.insert(format!("{}.tickets", event.event_id.iter().map(|b| format!("{b:02x}")).collect::<String>()));
            }
        }
        ids
    };
    eventually("every change delivered", Duration::from_secs(30), || async {
        let got: std::collections::BTreeSet<String> =
            seen.lock().unwrap().iter().map(|(h, _)| h.get("x-objectstack-delivery").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string()).collect();
        assert!(got.is_subset(&expected), "deliveries of changes that never happened: {:?}", got.difference(&expected).collect::<Vec<_>>());
        got == expected
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    for id in &high {
        let history = node.ok(&node.admin, "GET", &format!("/api/v1/data/ticket/{id}/history"), None).await;
        assert_eq!(history["entries"].as_array().unwrap().len(), 1, "the create, with escalate's and follow_up's fields: {history}");
    }
    for id in &low {
        let history = node.ok(&node.admin, "GET", &format!("/api/v1/data/ticket/{id}/history"), None).await;
        assert_eq!(history["entries"].as_array().unwrap().len(), 2, "create and one sweep: {history}");
    }
    processes.stop().await;
    let events = store.read_stream("$jobs/sweeper", 0).await.unwrap();
    let started: std::collections::BTreeSet<String> = events
        .iter()
        .filter_map(|e| match domain::event::codec::decode_envelope_payload(e, registry()) {
            Ok(EventPayload::Process(ProcessEvent::JobStarted(s))) => Some(s.run_id),
            _ => None,
        })
        .collect();
    let finished: std::collections::BTreeSet<String> = events
        .iter()
        .filter_map(|e| match domain::event::codec::decode_envelope_payload(e, registry()) {
            Ok(EventPayload::Process(ProcessEvent::JobFinished(f))) => Some(f.run_id),
            _ => None,
        })
        .collect();
    assert!(!started.is_empty(), "runs were started");
    assert_eq!(started, finished, "every run started (crashed ones resumed) ends");
    let _ = stop.send(());
}

#[tokio::test]
async fn crashes_embedded() {
    crashes(false).await;
}

#[tokio::test]
async fn crashes_postgres() {
    crashes(true).await;
}

fn flow_app(hook_url: &str) -> String {
    let mut app: Json = serde_json::from_str(&app(json!({}))).unwrap();
    app["objects"].as_array_mut().unwrap().push(json!({"name": "note", "fields": {
        "ticket": {"type": "lookup", "reference": "ticket"}, "body": {"type": "text"}}}));
    app["permissions"][0]["objects"]["note"] = json!({"allowRead": true, "allowCreate": true, "allowEdit": true});
    app["permissions"][0]["fields"] = json!({"ticket.score": {"readable": true, "editable": false}});
    let rescore = |name: &str, run_as: &str| {
        json!({"name": name, "label": name, "type": "api", "runAs": run_as, "status": "active",
            "variables": [{"name": "ticketId", "type": "text", "isInput": true, "isOutput": false}],
            "nodes": [{"id": "begin", "type": "start"},
                      {"id": "rescore", "type": "update_record", "config": {"objectName": "ticket", "recordId": "=ticketId", "fields": {"score": 99}}},
                      {"id": "done", "type": "end"}],
            "edges": [{"id": "e1", "source": "begin", "target": "rescore"}, {"id": "e2", "source": "rescore", "target": "done"}]})
    };
    app["flows"] = json!([
        {"name": "follow_up", "label": "Follow up", "type": "record_change", "runAs": "system", "status": "active",
         "nodes": [{"id": "begin", "type": "start", "config": {"objectName": "ticket", "triggerType": "on_create", "criteria": "record.priority = \"high\""}},
                   {"id": "note", "type": "create_record", "config": {"objectName": "note", "fields": {"ticket": "=record.id", "body": "=CONCAT(\"follow up: \", record.title)"}}},
                   {"id": "done", "type": "end"}],
         "edges": [{"id": "e1", "source": "begin", "target": "note"}, {"id": "e2", "source": "note", "target": "done"}]},
        {"name": "close_ticket", "label": "Close", "type": "api", "runAs": "user", "status": "active",
         "variables": [{"name": "ticketId", "type": "text", "isInput": true, "isOutput": false},
                       {"name": "reason", "type": "text", "isInput": true, "isOutput": false},
                       {"name": "result", "type": "text", "isInput": false, "isOutput": true}],
         "nodes": [{"id": "begin", "type": "start"},
                   {"id": "find", "type": "get_record", "config": {"objectName": "ticket", "filter": {"id": "=ticketId"}, "outputVariable": "found"}},
                   {"id": "exists", "type": "decision"},
                   {"id": "close", "type": "update_record", "config": {"objectName": "ticket", "recordId": "=found.id", "fields": {"level": "=CONCAT(\"closed: \", reason)"}}},
                   {"id": "closed", "type": "assignment", "config": {"assignments": [{"variable": "result", "value": "closed"}]}},
                   {"id": "missing", "type": "assignment", "config": {"assignments": [{"variable": "result", "value": "missing"}]}},
                   {"id": "done", "type": "end"}],
         "edges": [{"id": "e1", "source": "begin", "target": "find"}, {"id": "e2", "source": "find", "target": "exists"},
                   {"id": "e3", "source": "exists", "target": "close", "condition": "NOT(ISBLANK(found))", "type": "conditional"},
                   {"id": "e4", "source": "exists", "target": "missing", "isDefault": true},
                   {"id": "e5", "source": "close", "target": "closed"}, {"id": "e6", "source": "closed", "target": "done"},
                   {"id": "e7", "source": "missing", "target": "done"}]},
        rescore("rescore_as_user", "user"),
        rescore("rescore_as_system", "system"),
        {"name": "bulk_level", "label": "Bulk", "type": "api", "runAs": "system", "status": "active",
         "variables": [{"name": "count", "type": "number", "isInput": false, "isOutput": true}],
         "nodes": [{"id": "begin", "type": "start"},
                   {"id": "find", "type": "get_record", "config": {"objectName": "ticket", "filter": {"priority": "high"}, "all": true, "outputVariable": "highs"}},
                   {"id": "zero", "type": "assignment", "config": {"assignments": [{"variable": "count", "value": 0}]}},
                   {"id": "each", "type": "loop", "config": {"collection": "=highs", "itemVariable": "t"}},
                   {"id": "mark", "type": "update_record", "config": {"objectName": "ticket", "recordId": "=t.id", "fields": {"level": "bulk"}}},
                   {"id": "bump", "type": "assignment", "config": {"assignments": [{"variable": "count", "value": "=count + 1"}]}},
                   {"id": "notify", "type": "http_request", "config": {"method": "POST", "url": hook_url, "body": "=count", "outputVariable": "answer"}},
                   {"id": "done", "type": "end"}],
         "edges": [{"source": "begin", "target": "find"}, {"source": "find", "target": "zero"}, {"source": "zero", "target": "each"},
                   {"source": "each", "target": "mark"}, {"source": "mark", "target": "bump"}, {"source": "bump", "target": "each"},
                   {"source": "each", "target": "notify", "isDefault": true}, {"source": "notify", "target": "done"}]},
        {"name": "slow_note", "label": "Slow", "type": "api", "runAs": "system", "status": "active",
         "variables": [{"name": "noteId", "type": "text", "isInput": false, "isOutput": true}],
         "nodes": [{"id": "begin", "type": "start"},
                   {"id": "write", "type": "create_record", "config": {"objectName": "note", "fields": {"body": "waiting"}, "outputVariable": "noteId"}},
                   {"id": "pause", "type": "wait", "config": {"durationMs": 800}},
                   {"id": "finish", "type": "update_record", "config": {"objectName": "note", "recordId": "=noteId", "fields": {"body": "=CONCAT(\"resumed \", noteId)"}}},
                   {"id": "done", "type": "end"}],
         "edges": [{"source": "begin", "target": "write"}, {"source": "write", "target": "pause"}, {"source": "pause", "target": "finish"}, {"source": "finish", "target": "done"}]},
        {"name": "housekeeping", "label": "Housekeeping", "type": "autolaunched", "runAs": "system", "status": "active",
         "nodes": [{"id": "begin", "type": "start"}, {"id": "done", "type": "end"}],
         "edges": [{"id": "e1", "source": "begin", "target": "done"}]}
    ]);
    app.to_string()
}

async fn flows(postgres: bool) {
    let (url, seen, stop) = receiver(false).await;
    let (storage, _dir) = common::storage(postgres);
    let node = node(storage, &flow_app(&url), true).await;
    // A record_change flow: a high ticket gets a follow-up note, written as the system.
    let created = node.ok(&node.member, "POST", "/api/v1/data/ticket", Some(json!({"title": "leak", "priority": "high"}))).await;
    let id = created["id"].as_str().unwrap().to_string();
    node.ok(&node.member, "POST", "/api/v1/data/ticket", Some(json!({"title": "calm", "priority": "low"}))).await;
    let filter = common::urlencode(&json!([["ticket", "=", id]]).to_string());
    eventually("the follow-up note", Duration::from_secs(10), || async {
        node.ok(&node.admin, "GET", &format!("/api/v1/data/note?filter={filter}"), None).await["total"] == json!(1)
    })
    .await;
    let notes = node.ok(&node.admin, "GET", "/api/v1/data/note", None).await;
    assert_eq!(notes["total"], json!(1), "no note for the low ticket: {notes}");
    assert_eq!(notes["records"][0]["body"], json!("follow up: leak"));

    // An api flow as its caller: a decision, a read, an update, an output.
    let run = |body: Json| node.call(&node.member, "POST", "/api/v1/automation/trigger/close_ticket", Some(body));
    let closed = run(json!({"ticketId": id, "reason": "fixed"})).await;
    assert_eq!(closed.status, StatusCode::OK, "{}", closed.body);
    assert_eq!(closed.body["result"], json!({"result": "closed"}));
    assert_eq!(node.record(&format!("/api/v1/data/ticket/{id}")).await["level"], json!("closed: fixed"));
    let missing = run(json!({"ticketId": "nope", "reason": "x"})).await;
    assert_eq!(missing.body["result"], json!({"result": "missing"}), "{}", missing.body);
    let unknown = run(json!({"ticketId": id, "mood": "x"})).await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST, "{}", unknown.body);
    let guest = node.api.call("POST", "/api/v1/automation/trigger/close_ticket", Some(json!({"ticketId": id, "reason": "x"})), &[]).await;
    assert_eq!(guest.status, StatusCode::UNAUTHORIZED, "{}", guest.body);

    // As the user, a flow can do only what its caller may: the member may not edit `score`.
    let uri = |flow: &str| format!("/api/v1/automation/trigger/{flow}");
    let refused = node.call(&node.member, "POST", &uri("rescore_as_user"), Some(json!({"ticketId": id}))).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.body);
    assert!(refused.body["error"]["message"].as_str().unwrap().contains("node 'rescore'"), "{}", refused.body);
    assert_eq!(node.record(&format!("/api/v1/data/ticket/{id}")).await["score"], Json::Null);
    let as_system = node.call(&node.member, "POST", &uri("rescore_as_system"), Some(json!({"ticketId": id}))).await;
    assert_eq!(as_system.status, StatusCode::OK, "{}", as_system.body);
    assert_eq!(node.record(&format!("/api/v1/data/ticket/{id}")).await["score"], json!(99));
    // The same request twice with one idempotency key runs once.
    let keyed = || async {
        let bearer = format!("Bearer {}", node.member);
        let headers = [("authorization", bearer.as_str()), ("idempotency-key", "close-1")];
        node.api.call("POST", "/api/v1/automation/trigger/close_ticket", Some(json!({"ticketId": id, "reason": "again"})), &headers).await
    };
    let history = format!("/api/v1/data/ticket/{id}/history");
    assert_eq!(keyed().await.status, StatusCode::OK);
    let before = node.ok(&node.admin, "GET", &history, None).await["total"].clone();
    let repeated = keyed().await;
    assert_eq!(repeated.status, StatusCode::OK, "{}", repeated.body);
    assert_eq!(repeated.body["result"], json!({"result": "closed"}));
    let after = node.ok(&node.admin, "GET", &history, None).await["total"].clone();
    assert_eq!(before, after, "a repeated run writes nothing");

    // A loop over every high ticket, then an HTTP call with the count.
    node.ok(&node.member, "POST", "/api/v1/data/ticket", Some(json!({"title": "second", "priority": "high"}))).await;
    let bulk = node.call(&node.member, "POST", &uri("bulk_level"), None).await;
    assert_eq!(bulk.status, StatusCode::OK, "{}", bulk.body);
    assert_eq!(bulk.body["result"], json!({"count": 2}));
    let bulked = common::urlencode(&json!([["level", "=", "bulk"]]).to_string());
    assert_eq!(node.ok(&node.admin, "GET", &format!("/api/v1/data/ticket?filter={bulked}"), None).await["total"], json!(2));
    assert_eq!(seen.lock().unwrap().iter().map(|(_, body)| String::from_utf8_lossy(body).into_owned()).collect::<Vec<_>>(), ["2"]);
    let _ = stop.send(());

    // A run that waits answers at once, and resumes from a durable timer,
    // even when the processes die in between.
    let waiting = node.call(&node.member, "POST", &uri("slow_note"), None).await;
    assert_eq!(waiting.status, StatusCode::OK, "{}", waiting.body);
    assert_eq!(waiting.body["result"]["status"], json!("waiting"), "{}", waiting.body);
    node.api.system.processes().abort().await;
    let restarted = commands::process::Processes::start(node.api.system.commands.clone(), &node.api.system.automation(), &node.api.system.outbound);
    let resumed = common::urlencode(&json!([["body", "startswith", "resumed"]]).to_string());
    eventually("the run resumes after its wait", Duration::from_secs(10), || async {
        node.ok(&node.admin, "GET", &format!("/api/v1/data/note?filter={resumed}"), None).await["total"] == json!(1)
    })
    .await;
    restarted.stop().await;

    // Autolaunched flows are an administrator's; record_change flows are not triggered.
    assert_eq!(node.call(&node.member, "POST", &uri("housekeeping"), None).await.status, StatusCode::FORBIDDEN);
    assert_eq!(node.call(&node.admin, "POST", &uri("housekeeping"), None).await.status, StatusCode::OK);
    assert_eq!(node.call(&node.admin, "POST", &uri("follow_up"), None).await.status, StatusCode::BAD_REQUEST);
    assert_eq!(node.call(&node.admin, "POST", &uri("nope"), None).await.status, StatusCode::NOT_FOUND);
    node.api.system.processes().stop().await;
}

#[tokio::test]
async fn flows_embedded() {
    flows(false).await;
}

#[tokio::test]
async fn flows_postgres() {
    flows(true).await;
}

#[tokio::test]
async fn bad_flows_are_refused_at_start() {
    let flow = |nodes: Json, edges: Json| json!({"flows": [{"name": "f1", "label": "F", "type": "api", "runAs": "user", "status": "active", "nodes": nodes, "edges": edges}]});
    let start_end = json!([{"id": "a", "type": "start"}, {"id": "b", "type": "decision"}, {"id": "c", "type": "end"}]);
    for (extra, expected) in [
        (flow(json!([{"id": "a", "type": "start"}, {"id": "s", "type": "script"}]), json!([])), "flow 'f1' node 's': node type 'script' is not supported"),
        (
            flow(json!([{"id": "a", "type": "start"}, {"id": "w", "type": "wait", "config": {"durationMs": 5}}]), json!([])),
            "a flow that waits runs as the system",
        ),
        (
            flow(
                start_end.clone(),
                json!([{"source": "a", "target": "b"}, {"source": "b", "target": "c"}, {"source": "b", "target": "a", "condition": "1 = 1"}]),
            ),
            "the graph has a cycle",
        ),
        (flow(start_end.clone(), json!([{"source": "a", "target": "b", "condition": "nobody = 1"}])), "unknown variable 'nobody'"),
        (flow(start_end, json!([{"source": "a", "target": "zz"}])), "unknown node 'zz'"),
        (flow(json!([{"id": "a", "type": "end"}]), json!([])), "exactly one start node"),
        (
            flow(
                json!([{"id": "a", "type": "start"}, {"id": "l", "type": "loop", "config": {"collection": [], "itemVariable": "i"}}]),
                json!([{"source": "a", "target": "l"}]),
            ),
            "a loop needs one body edge",
        ),
        (
            flow(
                json!([{"id": "a", "type": "start"}, {"id": "h", "type": "http_request", "config": {"url": "ftp://example.com"}}]),
                json!([{"source": "a", "target": "h"}]),
            ),
            "node 'h': 'url' must be an http:// or https:// URL",
        ),
    ] {
        let error = start_error(&app(extra)).await.unwrap_or_else(|| panic!("{expected}: started"));
        assert!(error.contains(expected), "{expected}: {error}");
    }
}

/// The bundled CRM app's automation, as a new user meets it: a deal marked
/// won gets its probability and forecast set by rules and a kick-off task
/// created by a flow.
#[tokio::test]
async fn the_crm_app_automates_a_won_deal() {
    let crm = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../domain/apps/crm.json")).unwrap();
    let (storage, _dir) = common::storage(false);
    let node = node(storage, &crm, true).await;
    let open = common::urlencode(&json!([["stage", "in", ["proposal", "negotiation"]]]).to_string());
    let deals = node.ok(&node.admin, "GET", &format!("/api/v1/data/opportunity?filter={open}&top=1"), None).await;
    let deal = deals["records"][0].clone();
    let id = deal["id"].as_str().expect("the CRM seed data has an open deal").to_string();
    // The app's stage rule allows winning from negotiation only.
    if deal["stage"] != json!("negotiation") {
        node.ok(&node.admin, "PATCH", &format!("/api/v1/data/opportunity/{id}"), Some(json!({"stage": "negotiation"}))).await;
    }
    node.ok(&node.admin, "PATCH", &format!("/api/v1/data/opportunity/{id}"), Some(json!({"stage": "closed_won"}))).await;
    let tasks = common::urlencode(&json!([["related_to_opportunity", "=", id]]).to_string());
    eventually("the rules and the flow", Duration::from_secs(10), || async {
        let record = node.record(&format!("/api/v1/data/opportunity/{id}")).await;
        let kickoff = node.ok(&node.admin, "GET", &format!("/api/v1/data/task?filter={tasks}"), None).await;
        record["probability"] == json!(100)
            && record["forecast_category"] == json!("closed")
            && kickoff["records"].as_array().unwrap().iter().any(|t| t["subject"] == json!(format!("Kick-off: {}", deal["name"].as_str().unwrap())))
    })
    .await;
    node.api.system.processes().stop().await;
}

/// The client's workflow routes over an object's state machine rule: its
/// config, a record's state and open moves, a move made as the caller, a
/// move the machine refuses, the record's past moves, and no approval to give
/// where the object has no process.
async fn state_machines(postgres: bool) {
    let mut app: Json = serde_json::from_str(&app(json!({}))).unwrap();
    app["objects"][0]["fields"]["stage"] = json!({"type": "select", "options": [
        {"label": "New", "value": "new"}, {"label": "Won", "value": "won"}, {"label": "Lost", "value": "lost"}]});
    app["objects"][0]["validations"] = json!([{"name": "stage_moves", "type": "state_machine", "field": "stage", "message": "Invalid stage move",
        "events": ["update"], "transitions": {"new": ["won", "lost"], "won": [], "lost": []}}]);
    let (storage, _dir) = common::storage(postgres);
    let node = node(storage, &app.to_string(), true).await;
    let config = node.ok(&node.member, "GET", "/api/v1/workflow/ticket/config", None).await;
    assert_eq!(config["stateMachines"][0]["field"], json!("stage"), "{config}");
    assert_eq!(config["stateMachines"][0]["states"], json!(["lost", "new", "won"]));
    let created = node.ok(&node.member, "POST", "/api/v1/data/ticket", Some(json!({"title": "deal", "stage": "new"}))).await;
    let id = created["id"].as_str().unwrap().to_string();
    let state = node.ok(&node.member, "GET", &format!("/api/v1/workflow/ticket/{id}/state"), None).await;
    assert_eq!((state["currentState"].clone(), state["availableTransitions"].clone()), (json!("new"), json!(["won", "lost"])), "{state}");
    let moved = node.call(&node.member, "POST", &format!("/api/v1/workflow/ticket/{id}/transition"), Some(json!({"targetState": "won"}))).await;
    assert_eq!(moved.status, StatusCode::OK, "{}", moved.body);
    assert_eq!(moved.body["data"]["currentState"], json!("won"));
    let refused = node.call(&node.member, "POST", &format!("/api/v1/workflow/ticket/{id}/transition"), Some(json!({"targetState": "new"}))).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.body);
    assert!(refused.body["error"]["message"].as_str().unwrap().contains("Invalid stage move"), "{}", refused.body);
    let history = node.ok(&node.member, "GET", &format!("/api/v1/workflow/ticket/{id}/history"), None).await;
    let moves = history["transitions"].as_array().unwrap();
    assert_eq!((moves[0]["fromState"].clone(), moves[0]["toState"].clone()), (json!("new"), json!("won")), "{history}");
    // No approval process on this object: nothing to approve.
    assert_eq!(node.call(&node.member, "POST", &format!("/api/v1/workflow/ticket/{id}/approve"), None).await.status, StatusCode::CONFLICT);
    assert_eq!(node.call(&node.member, "GET", "/api/v1/workflow/ticket/nope/state", None).await.status, StatusCode::NOT_FOUND);
    let guest = node.api.call("GET", &format!("/api/v1/workflow/ticket/{id}/state"), None, &[]).await;
    assert_eq!(guest.status, StatusCode::UNAUTHORIZED, "{}", guest.body);
    node.api.system.processes().stop().await;
}

#[tokio::test]
async fn state_machines_embedded() {
    state_machines(false).await;
}

#[tokio::test]
async fn state_machines_postgres() {
    state_machines(true).await;
}

/// A rule's time trigger is durable: set when the rule fires, it survives
/// the processes being stopped dead, fires at its time, and applies only if
/// the criteria still hold then.
async fn time_triggers(postgres: bool) {
    let mut app: Json = serde_json::from_str(&app(json!({}))).unwrap();
    app["objects"][0]["fields"]["remind_at"] = json!({"type": "datetime"});
    app["objects"][0]["fields"]["reminded"] = json!({"type": "boolean"});
    app["workflows"] = json!([{"name": "remind", "objectName": "ticket", "triggerType": "on_create", "criteria": "priority = \"low\"",
        "timeTriggers": [{"id": "at_remind", "timeLength": 0, "timeUnit": "minutes", "offsetDirection": "after", "offsetFrom": "date_field", "dateField": "remind_at",
            "actions": [{"name": "mark", "type": "field_update", "field": "reminded", "value": true}]}]}]);
    let (storage, _dir) = common::storage(postgres);
    let node = node(storage, &app.to_string(), true).await;
    let system = node.api.system.clone();
    let soon = |ms: i64| domain::time::Timestamp::from_micros(commands::clock::now().micros() + ms * 1000).to_rfc3339();
    let kept = node.ok(&node.member, "POST", "/api/v1/data/ticket", Some(json!({"title": "kept", "priority": "low", "remind_at": soon(1500)}))).await;
    let changed = node.ok(&node.member, "POST", "/api/v1/data/ticket", Some(json!({"title": "changed", "priority": "low", "remind_at": soon(1500)}))).await;
    let (kept, changed) = (kept["id"].as_str().unwrap().to_string(), changed["id"].as_str().unwrap().to_string());
    // Both timers are set (in the log) before the processes die.
    eventually("two timers set", Duration::from_secs(10), || async {
        let mut sets = 0;
        for event in system.commands.store().read_all(0, 100_000).await.unwrap() {
            sets += usize::from(event.event_type == "timer.set");
        }
        sets == 2
    })
    .await;
    system.processes().abort().await;
    node.ok(&node.member, "PATCH", &format!("/api/v1/data/ticket/{changed}"), Some(json!({"priority": "high"}))).await;
    let processes = commands::process::Processes::start(system.commands.clone(), &system.automation(), &system.outbound);
    assert_eq!(node.record(&format!("/api/v1/data/ticket/{kept}")).await["reminded"], Json::Null, "not before its time");
    eventually("the timer fires after the restart", Duration::from_secs(10), || async {
        node.record(&format!("/api/v1/data/ticket/{kept}")).await["reminded"] == json!(true)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(node.record(&format!("/api/v1/data/ticket/{changed}")).await["reminded"], Json::Null, "criteria no longer hold: skipped");
    let history = node.ok(&node.admin, "GET", &format!("/api/v1/data/ticket/{kept}/history"), None).await;
    assert_eq!(history["entries"].as_array().unwrap().len(), 2, "create and one reminder: {history}");
    let fired: Vec<String> = system
        .commands
        .store()
        .read_all(0, 100_000)
        .await
        .unwrap()
        .iter()
        .filter_map(|e| match domain::event::codec::decode_envelope_payload(e, registry()) {
            Ok(EventPayload::Process(ProcessEvent::TimerFired(f))) => Some(f.outcome),
            _ => None,
        })
        .collect();
    let mut fired = fired;
    fired.sort();
    assert_eq!(fired, ["done", "skipped: the criteria no longer hold"]);
    processes.stop().await;
}

#[tokio::test]
async fn time_triggers_embedded() {
    time_triggers(false).await;
}

#[tokio::test]
async fn time_triggers_postgres() {
    time_triggers(true).await;
}

/// Approval processes: a submission locks the record, only the step's
/// approvers (or an administrator) answer, steps follow their entry
/// criteria, the process's field updates run as the system, rejection and
/// recall end it and unlock the record.
async fn approvals(postgres: bool) {
    let mut app: Json = serde_json::from_str(&app(json!({}))).unwrap();
    app["objects"][0]["fields"]["manager"] = json!({"type": "lookup", "reference": "user"});
    app["objects"][0]["fields"]["state"] = json!({"type": "text"});
    app["permissions"][0]["objects"]["user"] = json!({"allowRead": true});
    app["approvals"] = json!([{"name": "spend", "label": "Spend", "object": "ticket", "active": true, "entryCriteria": "score > 100", "lockRecord": true,
        "onSubmit": [{"type": "field_update", "name": "mark", "config": {"field": "state", "value": "submitted"}}],
        "steps": [
            {"name": "manager_ok", "label": "Manager", "approvers": [{"type": "field", "value": "manager"}], "behavior": "first_response", "rejectionBehavior": "reject_process",
             "onApprove": [{"type": "field_update", "name": "m", "config": {"field": "level", "value": "manager"}}]},
            {"name": "finance_ok", "label": "Finance", "entryCriteria": "score > 1000", "approvers": [{"type": "role", "value": "finance"}], "behavior": "first_response", "rejectionBehavior": "reject_process"}],
        "onFinalApprove": [{"type": "field_update", "name": "ok", "config": {"field": "state", "value": "approved"}}],
        "onFinalReject": [{"type": "field_update", "name": "no", "config": {"field": "state", "value": "rejected"}}],
        "onRecall": [{"type": "field_update", "name": "back", "config": {"field": "state", "value": "draft"}}]}]);
    let (storage, _dir) = common::storage(postgres);
    let node = node(storage, &app.to_string(), true).await;
    let email = format!("boss-{}@example.com", uuid::Uuid::new_v4().simple());
    let boss = node.api.call("POST", "/api/v1/auth/sign-up/email", Some(json!({"email": email, "password": PASSWORD, "name": "Boss"})), &[]).await;
    let (boss_id, boss) = (boss.body["data"]["user"]["id"].as_str().unwrap().to_string(), boss.body["data"]["token"].as_str().unwrap().to_string());
    let route = |id: &str, action: &str| format!("/api/v1/workflow/ticket/{id}/{action}");

    // Small: the entry criteria refuse it.
    let small = node.ok(&node.member, "POST", "/api/v1/data/ticket", Some(json!({"title": "small", "score": 5, "manager": boss_id}))).await;
    let small = small["id"].as_str().unwrap().to_string();
    assert_eq!(node.call(&node.member, "POST", &route(&small, "submit"), None).await.status, StatusCode::BAD_REQUEST);

    // Mid-size: one step (finance's does not apply), approved by the manager.
    let mid = node.ok(&node.member, "POST", "/api/v1/data/ticket", Some(json!({"title": "mid", "score": 500, "manager": boss_id}))).await;
    let mid = mid["id"].as_str().unwrap().to_string();
    let submitted = node.call(&node.member, "POST", &route(&mid, "submit"), None).await;
    assert_eq!(submitted.status, StatusCode::OK, "{}", submitted.body);
    assert_eq!(submitted.body["data"]["pending"]["step"], json!("manager_ok"));
    assert_eq!(node.record(&format!("/api/v1/data/ticket/{mid}")).await["state"], json!("submitted"));
    let locked = node.call(&node.member, "PATCH", &format!("/api/v1/data/ticket/{mid}"), Some(json!({"title": "changed"}))).await;
    assert_eq!((locked.status, locked.body["error"]["code"].clone()), (StatusCode::CONFLICT, json!("lock_conflict")), "{}", locked.body);
    assert_eq!(node.call(&node.member, "POST", &route(&mid, "submit"), None).await.status, StatusCode::CONFLICT, "already pending");
    assert_eq!(node.call(&node.member, "POST", &route(&mid, "approve"), None).await.status, StatusCode::FORBIDDEN, "the submitter is no approver");
    let approved = node.call(&boss, "POST", &route(&mid, "approve"), Some(json!({"comment": "fine"}))).await;
    assert_eq!(approved.status, StatusCode::OK, "{}", approved.body);
    assert_eq!(approved.body["data"]["status"], json!("approved"), "{}", approved.body);
    let record = node.record(&format!("/api/v1/data/ticket/{mid}")).await;
    assert_eq!((record["state"].clone(), record["level"].clone()), (json!("approved"), json!("manager")));
    let unlocked = node.call(&node.member, "PATCH", &format!("/api/v1/data/ticket/{mid}"), Some(json!({"title": "changed"}))).await;
    assert_eq!(unlocked.status, StatusCode::OK, "unlocked once approved: {}", unlocked.body);
    let state = node.ok(&node.member, "GET", &format!("/api/v1/workflow/ticket/{mid}/state"), None).await;
    let history: Vec<Json> = state["approval"]["history"].as_array().unwrap().iter().map(|h| h["action"].clone()).collect();
    assert_eq!(history, [json!("submitted"), json!("approved")], "{state}");

    // Large: two steps; the administrator rejects at finance's.
    let large = node.ok(&node.member, "POST", "/api/v1/data/ticket", Some(json!({"title": "large", "score": 5000, "manager": boss_id}))).await;
    let large = large["id"].as_str().unwrap().to_string();
    node.ok(&node.member, "POST", &route(&large, "submit"), None).await;
    let first = node.ok(&boss, "POST", &route(&large, "approve"), None).await;
    assert_eq!(first["pending"]["step"], json!("finance_ok"), "{first}");
    assert_eq!(node.call(&boss, "POST", &route(&large, "reject"), None).await.status, StatusCode::FORBIDDEN, "not in finance");
    let rejected = node.ok(&node.admin, "POST", &route(&large, "reject"), Some(json!({"comment": "too much"}))).await;
    assert_eq!(rejected["status"], json!("rejected"));
    assert_eq!(node.record(&format!("/api/v1/data/ticket/{large}")).await["state"], json!("rejected"));

    // Recall: only the submitter (or an administrator); it unlocks the record.
    let again = node.ok(&node.member, "POST", "/api/v1/data/ticket", Some(json!({"title": "again", "score": 200, "manager": boss_id}))).await;
    let again = again["id"].as_str().unwrap().to_string();
    node.ok(&node.member, "POST", &route(&again, "submit"), None).await;
    assert_eq!(node.call(&boss, "POST", &route(&again, "recall"), None).await.status, StatusCode::FORBIDDEN);
    assert_eq!(node.ok(&node.member, "POST", &route(&again, "recall"), None).await["status"], json!("recalled"));
    assert_eq!(node.record(&format!("/api/v1/data/ticket/{again}")).await["state"], json!("draft"));
    assert_eq!(node.call(&node.member, "PATCH", &format!("/api/v1/data/ticket/{again}"), Some(json!({"title": "edited"}))).await.status, StatusCode::OK);
    let config = node.ok(&node.member, "GET", "/api/v1/workflow/ticket/config", None).await;
    assert_eq!(config["approvalProcesses"][0]["steps"], json!(["manager_ok", "finance_ok"]));
    node.api.system.processes().stop().await;
}

#[tokio::test]
async fn approvals_embedded() {
    approvals(false).await;
}

#[tokio::test]
async fn approvals_postgres() {
    approvals(true).await;
}

/// Definitions stored through the metadata API are events like objects':
/// checked first (a bad one is a 400 naming it; a webhook's secret never
/// enters the log), running on this node before the answer and on another
/// node following the same PostgreSQL log, and removable.
async fn definitions_through_the_api(postgres: bool) {
    let (storage, _dir) = common::storage(postgres);
    let other_storage = storage.postgres().map(|settings| Storage::Postgres(settings.clone()));
    let node = node(storage, &app(rules()), true).await;
    let other = match other_storage {
        Some(storage) => Some(node_again(storage, &app(rules())).await),
        None => None,
    };
    let rule = json!({"name": "mark_calm", "objectName": "ticket", "triggerType": "on_create", "criteria": "priority = \"low\"",
        "actions": [{"name": "touch", "type": "field_update", "field": "touched", "value": true}]});
    assert_eq!(node.call(&node.member, "PUT", "/api/v1/meta/workflow/mark_calm", Some(rule.clone())).await.status, StatusCode::FORBIDDEN);
    let mut bad = rule.clone();
    bad["criteria"] = json!("nope = 1");
    let refused = node.call(&node.admin, "PUT", "/api/v1/meta/workflow/mark_calm", Some(bad)).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.body);
    assert!(refused.body["error"]["message"].as_str().unwrap().contains("workflow 'mark_calm': criteria: unknown field 'nope'"), "{}", refused.body);
    let hook = json!({"name": "leaky", "url": "http://127.0.0.1:9/x", "method": "POST", "includeSession": false, "timeoutMs": 1000, "isActive": true, "secret": "s3cret"});
    let secret = node.call(&node.admin, "PUT", "/api/v1/meta/webhook/leaky", Some(hook)).await;
    assert_eq!(secret.status, StatusCode::BAD_REQUEST, "{}", secret.body);
    let caller = json!({"name": "caller", "label": "C", "type": "api", "runAs": "system", "status": "active",
        "nodes": [{"id": "s", "type": "start"}, {"id": "h", "type": "http_request", "config": {"url": "http://127.0.0.1:9/x", "headers": {"authorization": "Bearer t0k3n"}}}],
        "edges": [{"source": "s", "target": "h"}]});
    let header = node.call(&node.admin, "PUT", "/api/v1/meta/flow/caller", Some(caller)).await;
    assert_eq!(header.status, StatusCode::BAD_REQUEST, "a flow's HTTP headers stay out of the log: {}", header.body);
    let events = node.api.system.commands.store().read_all(0, 100_000).await.unwrap();
    let log: String = events.iter().map(|e| String::from_utf8_lossy(&e.payload).into_owned()).collect();
    assert!(!log.contains("s3cret") && !log.contains("t0k3n"), "no secret reached the log");
    let saved = node.call(&node.admin, "PUT", "/api/v1/meta/workflow/mark_calm", Some(rule)).await;
    assert_eq!(saved.status, StatusCode::OK, "{}", saved.body);
    let listed = node.ok(&node.admin, "GET", "/api/v1/meta/workflow", None).await;
    let names: Vec<&str> = listed["items"].as_array().unwrap().iter().filter_map(|d| d["name"].as_str()).collect();
    assert!(names.contains(&"mark_calm") && names.contains(&"escalate"), "{names:?}");
    // The node that stored it has it at once; another once it has followed the log that far.
    if let Some(other) = &other {
        eventually("the other node loads the rule", Duration::from_secs(10), || async { other.api.system.automation().workflow("mark_calm").is_some() }).await;
    }
    for writer in std::iter::once(&node).chain(other.as_ref()) {
        let calm = writer.ok(&writer.member, "POST", "/api/v1/data/ticket", Some(json!({"title": "calm", "priority": "low"}))).await;
        assert_eq!(calm["record"]["touched"], json!(true), "the stored rule acts on every node's writes: {calm}");
    }
    let removed = node.call(&node.admin, "DELETE", "/api/v1/meta/workflow/mark_calm", None).await;
    assert_eq!(removed.status, StatusCode::OK, "{}", removed.body);
    // Another node stops running it as soon as it has followed the log that far.
    if let Some(other) = &other {
        eventually("the other node drops the rule", Duration::from_secs(10), || async { other.api.system.automation().workflow("mark_calm").is_none() }).await;
    }
    let calm = node.ok(&node.member, "POST", "/api/v1/data/ticket", Some(json!({"title": "after", "priority": "low"}))).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(node.record(&format!("/api/v1/data/ticket/{}", calm["id"].as_str().unwrap())).await["touched"], Json::Null, "removed: it runs no more");
    node.api.system.processes().stop().await;
    if let Some(other) = other {
        other.api.system.processes().stop().await;
    }
}

/// A second server on a store another already serves (its administrator exists).
async fn node_again(storage: Storage, app: &str) -> Node {
    node(storage, app, false).await
}

#[tokio::test]
async fn definitions_through_the_api_embedded() {
    definitions_through_the_api(false).await;
}

#[tokio::test]
async fn definitions_through_the_api_postgres() {
    definitions_through_the_api(true).await;
}
