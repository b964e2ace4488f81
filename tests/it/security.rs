//! Identity and access control end to end, on both stores, playing the
//! attacker on every surface: REST (list, get, query, batch, writes),
//! GraphQL (queries, lookups, mutations), realtime (changes and live
//! queries), search, analytics, audit and history, metadata, and the admin
//! routes. Each rule kind (object permission, FLS read, FLS edit, RLS using,
//! RLS check, private sharing, a criteria sharing rule, controlled_by_parent)
//! is tried where it can leak or where a forbidden write could land; every
//! response body is searched for the clear password and its hash.

use std::time::Duration;

use futures_util::SinkExt;
use gateway::config::{Settings, Storage};
use serde_json::{json, Value as Json};
use tokio_tungstenite::tungstenite::Message;

use crate::common;
use crate::realtime::next;
use crate::rest::{Api, Reply};

const APP: &str = r#"{
  "manifest": {"id": "com.example.secure", "name": "Secure"},
  "objects": [
    {"name": "project", "sharingModel": "private", "fields": {
       "name": {"type": "text", "required": true, "searchable": true},
       "owner": {"type": "lookup", "reference": "user"},
       "team": {"type": "text"},
       "budget": {"type": "number"},
       "secret": {"type": "password"}}},
    {"name": "task", "sharingModel": "controlled_by_parent", "fields": {
       "title": {"type": "text", "required": true},
       "project": {"type": "master_detail", "reference": "project"}}},
    {"name": "note", "fields": {"body": {"type": "text", "searchable": true}, "status": {"type": "text"}, "project": {"type": "lookup", "reference": "project"}}}
  ],
  "permissions": [
    {"name": "member", "isProfile": true,
     "objects": {"project": {"allowRead": true, "allowCreate": true, "allowEdit": true},
                 "task": {"allowRead": true, "allowCreate": true, "allowEdit": true},
                 "note": {"allowRead": true, "allowCreate": true, "allowEdit": true}},
     "fields": {"project.budget": {"readable": false}, "project.team": {"readable": true, "editable": false}},
     "rowLevelSecurity": [
       {"name": "live_notes", "object": "note", "operation": "select", "using": "status <> 'archived'"},
       {"name": "no_archiving", "object": "note", "operation": "update", "check": "status <> 'archived'"}]},
    {"name": "chief", "isProfile": true, "objects": {"*": {"allowRead": true, "allowCreate": true, "allowEdit": true, "allowDelete": true, "viewAllRecords": true, "modifyAllRecords": true}},
     "systemPermissions": ["modify_all_data"]}
  ],
  "roles": [{"name": "reds", "label": "Red team"}],
  "sharingRules": [{"name": "red_projects", "object": "project", "type": "criteria", "condition": "team = 'red'",
                    "accessLevel": "read", "sharedWith": {"type": "role", "value": "reds"}}],
  "auth": {"defaultProfile": "member"}
}"#;

const ADMIN_PASSWORD: &str = "admin-pass-1234";
const PASSWORD: &str = "correct-horse-battery";
const SECRET: &str = "project-secret-9876";

struct World {
    api: Api,
    base: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    admin: String,
    alice: (String, String),
    bob: (String, String),
    /// Every response body seen, to search for secrets at the end.
    seen: std::sync::Mutex<String>,
}

impl Drop for World {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

impl World {
    async fn call(&self, token: Option<&str>, method: &str, uri: &str, body: Option<Json>) -> Reply {
        let bearer = token.map(|t| format!("Bearer {t}"));
        let headers: Vec<(&str, &str)> = bearer.iter().map(|b| ("authorization", b.as_str())).collect();
        let reply = self.api.call(method, uri, body, &headers).await;
        self.seen.lock().unwrap().push_str(&reply.body.to_string());
        reply
    }

    async fn ok(&self, token: Option<&str>, method: &str, uri: &str, body: Option<Json>) -> Json {
        let reply = self.call(token, method, uri, body).await;
        assert!(reply.status.is_success(), "{method} {uri}: {} {}", reply.status, reply.body);
        reply.body["data"].clone()
    }

    /// The error code of a refused call, checking its status.
    async fn refused(&self, token: Option<&str>, method: &str, uri: &str, body: Option<Json>, status: u16) -> String {
        let reply = self.call(token, method, uri, body).await;
        assert_eq!(reply.status.as_u16(), status, "{method} {uri}: {}", reply.body);
        reply.body["error"]["code"].as_str().unwrap_or_default().to_string()
    }

    async fn graphql(&self, token: &str, query: &str) -> Json {
        let reply = self.call(Some(token), "POST", "/api/v1/graphql", Some(json!({"query": query}))).await;
        reply.body
    }

    fn alice(&self) -> &str {
        &self.alice.1
    }

    fn bob(&self) -> &str {
        &self.bob.1
    }
}

async fn sign_up(api: &World, email: &str) -> (String, String) {
    let data = api.ok(None, "POST", "/api/v1/auth/sign-up/email", Some(json!({"email": email, "password": PASSWORD, "name": email}))).await;
    (data["user"]["id"].as_str().unwrap().to_string(), data["token"].as_str().unwrap().to_string())
}

async fn world(postgres: bool) -> World {
    let (storage, dir) = common::storage(postgres);
    let app_dir = tempfile::tempdir().unwrap();
    let app_path = app_dir.path().join("app.json");
    std::fs::write(&app_path, APP).unwrap();
    let settings = Settings::local(storage, Some(app_path));
    let system = gateway::app::start(&settings).await.unwrap();
    gateway::service::auth::bootstrap_admin(&system, "root@example.com", ADMIN_PASSWORD).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("127.0.0.1:{}", listener.local_addr().unwrap().port());
    let (stop, stop_rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(gateway::server::serve(listener, system.clone(), async {
        let _ = stop_rx.await;
    }));
    let mut world = World {
        api: Api { system, _dir: dir },
        base,
        stop: Some(stop),
        admin: String::new(),
        alice: Default::default(),
        bob: Default::default(),
        seen: Default::default(),
    };
    let signed = world.ok(None, "POST", "/api/v1/auth/sign-in/email", Some(json!({"email": "root@example.com", "password": ADMIN_PASSWORD}))).await;
    world.admin = signed["token"].as_str().unwrap().to_string();
    world.alice = sign_up(&world, "alice@example.com").await;
    world.bob = sign_up(&world, "bob@example.com").await;
    world
}

/// Alice's project A, Bob's project B (red team), a task under each, notes.
async fn seed(w: &World) -> (String, String, String, String) {
    let a = w.ok(Some(w.alice()), "POST", "/api/v1/data/project", Some(json!({"name": "Apollo", "secret": SECRET}))).await;
    let b = w.ok(Some(w.bob()), "POST", "/api/v1/data/project", Some(json!({"name": "Borealis"}))).await;
    let (a, b) = (a["id"].as_str().unwrap().to_string(), b["id"].as_str().unwrap().to_string());
    w.ok(Some(&w.admin), "PATCH", &format!("/api/v1/data/project/{a}"), Some(json!({"budget": 1000, "team": "blue"}))).await;
    w.ok(Some(&w.admin), "PATCH", &format!("/api/v1/data/project/{b}"), Some(json!({"budget": 5000, "team": "red"}))).await;
    let ta = w.ok(Some(w.alice()), "POST", "/api/v1/data/task", Some(json!({"title": "Launch", "project": a}))).await;
    let tb = w.ok(Some(w.bob()), "POST", "/api/v1/data/task", Some(json!({"title": "Freeze", "project": b}))).await;
    (a, b, ta["id"].as_str().unwrap().to_string(), tb["id"].as_str().unwrap().to_string())
}

async fn rest_rules(postgres: bool) {
    let w = world(postgres).await;
    let (a, b, ta, tb) = seed(&w).await;

    // Nobody signed in: 401 on every data surface.
    for (method, uri) in [("GET", "/api/v1/data/project"), ("GET", "/api/v1/search?q=Apollo"), ("POST", "/api/v1/graphql"), ("GET", "/api/v1/meta/object")] {
        let body = (method == "POST").then(|| json!({"query": "{ __typename }"}));
        assert_eq!(w.refused(None, method, uri, body, 401).await, "unauthenticated");
    }

    // The HTTP edge: only JSON content types (a cross-site form cannot write), no sniffing, and
    // `?expectedVersion=` on PATCH is honoured (a stale version is a conflict, not a lost update).
    let bearer = format!("Bearer {}", w.alice());
    let request = axum::http::Request::builder()
        .method("POST")
        .uri("/api/v1/data/note")
        .header("content-type", "text/plain;x=json")
        .header("authorization", &bearer)
        .body(axum::body::Body::from(json!({"body": "x"}).to_string()))
        .unwrap();
    let response = tower::ServiceExt::oneshot(gateway::server::router(w.api.system.clone()), request).await.unwrap();
    assert_eq!(response.status().as_u16(), 415);
    assert_eq!(response.headers()["x-content-type-options"], "nosniff");
    let reply = w.call(Some(w.alice()), "PATCH", &format!("/api/v1/data/project/{a}?expectedVersion=1"), Some(json!({"name": "Apollo"}))).await;
    assert_eq!(reply.status.as_u16(), 409, "{}", reply.body);

    // Private sharing: Alice lists only her project, with a true total.
    let list = w.ok(Some(w.alice()), "GET", "/api/v1/data/project", None).await;
    assert_eq!(list["total"], json!(1), "{list}");
    assert_eq!(list["records"][0]["id"], json!(a));
    assert_eq!(list["records"][0]["owner"], json!(w.alice.0), "the owner is stamped from the caller");
    // FLS read: budget and the password never come back.
    assert!(list["records"][0].get("budget").is_none() && list["records"][0].get("secret").is_none(), "{list}");
    assert_eq!(w.refused(Some(w.alice()), "GET", &format!("/api/v1/data/project/{b}"), None, 404).await, "record_not_found");
    let query = w.ok(Some(w.alice()), "POST", "/api/v1/data/project/query", Some(json!({"where": {"name": {"$in": ["Apollo", "Borealis"]}}}))).await;
    assert_eq!(query["total"], json!(1));
    // No oracle: filtering or sorting by a hidden field is refused.
    let uri = format!("/api/v1/data/project?filter={}", crate::common::urlencode(&json!([["budget", ">", 10]]).to_string()));
    assert_eq!(w.refused(Some(w.alice()), "GET", &uri, None, 403).await, "field_not_accessible");
    assert_eq!(w.refused(Some(w.alice()), "GET", "/api/v1/data/project?sort=-budget", None, 403).await, "field_not_accessible");
    let grouped = json!({"groupBy": ["secret"], "aggregations": [{"function": "count", "alias": "n"}]});
    assert_eq!(w.refused(Some(w.alice()), "POST", "/api/v1/data/project/query", Some(grouped), 403).await, "field_not_accessible");
    // No oracle through references: pointing at a record the caller cannot see
    // is refused exactly as pointing at one that does not exist.
    let hidden = w.call(Some(w.alice()), "POST", "/api/v1/data/note", Some(json!({"body": "x", "status": "open", "project": b}))).await;
    let missing = w.call(Some(w.alice()), "POST", "/api/v1/data/note", Some(json!({"body": "x", "status": "open", "project": "no-such-id"}))).await;
    assert_eq!((hidden.status.as_u16(), missing.status.as_u16()), (400, 400), "{} {}", hidden.body, missing.body);
    assert_eq!(hidden.body.to_string().replace(b.as_str(), "ID"), missing.body.to_string().replace("no-such-id", "ID"));

    // controlled_by_parent: tasks follow their project.
    let tasks = w.ok(Some(w.alice()), "GET", "/api/v1/data/task", None).await;
    assert_eq!(tasks["total"], json!(1));
    assert_eq!(tasks["records"][0]["id"], json!(ta));
    assert_eq!(w.refused(Some(w.alice()), "PATCH", &format!("/api/v1/data/task/{tb}"), Some(json!({"title": "x"})), 404).await, "record_not_found");
    // An expanded lookup to a project the caller may not see is null.
    let expanded = w.ok(Some(&w.admin), "GET", &format!("/api/v1/data/task/{tb}?expand=project"), None).await;
    assert_eq!(expanded["record"]["project"]["name"], json!("Borealis"));
    let pointer = w.ok(Some(&w.admin), "POST", "/api/v1/data/note", Some(json!({"body": "about B", "status": "open", "project": b}))).await;
    let pointer = pointer["id"].as_str().unwrap().to_string();
    let expanded = w.ok(Some(w.alice()), "GET", &format!("/api/v1/data/note/{pointer}?expand=project"), None).await;
    assert_eq!(expanded["record"]["project"], Json::Null, "{expanded}");
    let expanded = w
        .ok(
            Some(w.alice()),
            "GET",
            &format!("/api/v1/data/note?expand=project&filter={}", crate::common::urlencode(&json!([["id", "=", pointer]]).to_string())),
            None,
        )
        .await;
    assert_eq!(expanded["records"][0]["project"], Json::Null, "{expanded}");

    // Writes: a hidden record is not found whatever version is named; nothing is appended.
    let head = *w.api.system.commands.store().head().borrow();
    assert_eq!(
        w.refused(Some(w.alice()), "PATCH", &format!("/api/v1/data/project/{b}?expectedVersion=1"), Some(json!({"name": "x", "expectedVersion": 1})), 404)
            .await,
        "record_not_found"
    );
    // Object permission: members may not delete.
    assert_eq!(w.refused(Some(w.alice()), "DELETE", &format!("/api/v1/data/project/{a}"), None, 403).await, "permission_denied");
    // FLS edit: team is read-only, budget hidden, the owner needs transfer.
    for patch in [json!({"team": "red"}), json!({"budget": 1}), json!({"owner": w.bob.0})] {
        assert_eq!(w.refused(Some(w.alice()), "PATCH", &format!("/api/v1/data/project/{a}"), Some(patch), 403).await, "field_not_accessible");
    }
    assert_eq!(
        w.refused(Some(w.alice()), "POST", "/api/v1/data/project", Some(json!({"name": "Forged", "owner": w.bob.0})), 403).await,
        "field_not_accessible"
    );
    // Batches go through the same rules: one forbidden record fails the atomic batch.
    let batch = json!({"operation": "update", "records": [{"id": a, "data": {"name": "A2"}}, {"id": b, "data": {"name": "B2"}}]});
    let result = w.ok(Some(w.alice()), "POST", "/api/v1/data/project/batch", Some(batch)).await;
    assert_eq!(result["failed"], json!(2), "{result}");
    let deleted = w.ok(Some(w.alice()), "POST", "/api/v1/data/project/deleteMany", Some(json!({"ids": [a]}))).await;
    assert_eq!((deleted["succeeded"].clone(), deleted["failed"].clone()), (json!(0), json!(1)), "{deleted}");
    // System fields cannot be forged either.
    assert_eq!(w.refused(Some(w.alice()), "POST", "/api/v1/data/note", Some(json!({"body": "x", "created_by": w.bob.0})), 400).await, "invalid_field");
    assert_eq!(*w.api.system.commands.store().head().borrow(), head, "refused writes append nothing");

    // An idempotency key belongs to its caller: Bob reusing Alice's key gets his own write, not her record.
    let key = [("idempotency-key", "same-key-1")];
    let bearer_a = format!("Bearer {}", w.alice());
    let bearer_b = format!("Bearer {}", w.bob());
    let first = w.api.call("POST", "/api/v1/data/note", Some(json!({"body": "alice's", "status": "open"})), &[key[0], ("authorization", &bearer_a)]).await;
    let again = w.api.call("POST", "/api/v1/data/note", Some(json!({"body": "alice's", "status": "open"})), &[key[0], ("authorization", &bearer_a)]).await;
    assert_eq!(first.body["data"]["id"], again.body["data"]["id"], "a repeat returns the first result");
    let other = w.api.call("POST", "/api/v1/data/note", Some(json!({"body": "bob's", "status": "open"})), &[key[0], ("authorization", &bearer_b)]).await;
    assert_ne!(other.body["data"]["id"], first.body["data"]["id"], "{}", other.body);
    assert_eq!(other.body["data"]["record"]["body"], json!("bob's"));

    // RLS using and check.
    let note = w.ok(Some(w.alice()), "POST", "/api/v1/data/note", Some(json!({"body": "keep", "status": "open"}))).await;
    let note = note["id"].as_str().unwrap().to_string();
    let code = w.refused(Some(w.alice()), "PATCH", &format!("/api/v1/data/note/{note}"), Some(json!({"status": "archived"})), 403).await;
    assert_eq!(code, "record_not_accessible");
    w.ok(Some(&w.admin), "POST", "/api/v1/data/note", Some(json!({"body": "gone", "status": "archived"}))).await;
    let notes = w.ok(Some(w.alice()), "GET", "/api/v1/data/note", None).await;
    assert_eq!(notes["total"], json!(4), "{notes}");

    // A criteria sharing rule: the red team reads red projects (not edit them).
    w.ok(Some(&w.admin), "PATCH", &format!("/api/v1/data/user/{}", w.alice.0), Some(json!({"roles": ["reds"]}))).await;
    let list = w.ok(Some(w.alice()), "GET", "/api/v1/data/project", None).await;
    assert_eq!(list["total"], json!(2), "{list}");
    assert_eq!(w.refused(Some(w.alice()), "PATCH", &format!("/api/v1/data/project/{b}"), Some(json!({"name": "x"})), 403).await, "record_not_accessible");
    // Users may not give themselves roles or profiles.
    let code = w.refused(Some(w.bob()), "PATCH", &format!("/api/v1/data/user/{}", w.bob.0), Some(json!({"profile": "chief"})), 403).await;
    assert!(code == "permission_denied" || code == "field_not_accessible", "{code}");

    // Metadata: hidden fields are not described; changing definitions needs manage_metadata.
    let described = w.call(Some(w.alice()), "GET", "/api/v1/meta/object/project", None).await;
    let text = described.body.to_string();
    assert!(!text.contains("budget") && text.contains("team"), "{text}");
    let objects = w.ok(Some(w.alice()), "GET", "/api/v1/meta/object", None).await;
    assert!(!objects.to_string().contains("\"session\""), "{objects}");
    let definition = json!({"fields": {"name": {"type": "text"}}});
    assert_eq!(w.refused(Some(w.alice()), "PUT", "/api/v1/meta/object/hack", Some(definition.clone()), 403).await, "permission_denied");
    w.ok(Some(&w.admin), "PUT", "/api/v1/meta/object/hack", Some(definition)).await;
    // Admin surfaces.
    assert_eq!(w.refused(Some(w.alice()), "POST", "/api/v1/projections/query/rebuild", None, 403).await, "permission_denied");
    assert_eq!(w.refused(Some(w.alice()), "GET", "/metrics", None, 403).await, "permission_denied");
    assert_eq!(w.refused(Some(w.alice()), "GET", "/api/v1/audit", None, 403).await, "permission_denied");

    // Audit and history: only records the caller sees, without hidden fields.
    assert_eq!(w.refused(Some(w.bob()), "GET", &format!("/api/v1/data/project/{a}/history"), None, 404).await, "record_not_found");
    let history = w.ok(Some(w.alice()), "GET", &format!("/api/v1/data/project/{a}/history"), None).await;
    let text = history.to_string();
    assert!(!text.contains("budget") && !text.contains("\"secret\"") && text.contains("Apollo"), "{text}");
    let all = w.ok(Some(&w.admin), "GET", "/api/v1/audit?object=project", None).await;
    assert!(all.to_string().contains("budget") && !all.to_string().contains("\"secret\""));

    // Search: hits, totals and facets only over visible records and fields.
    let found = w.ok(Some(w.bob()), "GET", "/api/v1/search?q=Apollo&object=project", None).await;
    assert_eq!(found["totalHits"], json!(0), "{found}");
    let found = w.ok(Some(w.alice()), "GET", "/api/v1/search?q=Apollo&object=project&highlight=true", None).await;
    assert_eq!(found["totalHits"], json!(1), "{found}");
    assert!(found["hits"][0]["document"].get("budget").is_none());
    assert_eq!(w.refused(Some(w.alice()), "GET", "/api/v1/search?q=Apollo&object=project&facets=budget", None, 403).await, "field_not_accessible");
    // A field that is not searchable: the error names no other field (some may be hidden from the caller).
    let unsearchable = w.call(Some(w.alice()), "GET", "/api/v1/search?q=Apollo&object=project&fields=team", None).await;
    assert_eq!(unsearchable.status.as_u16(), 400, "{}", unsearchable.body);
    assert!(!unsearchable.body.to_string().contains("name"), "{}", unsearchable.body);
    let listed = w.ok(Some(w.bob()), "GET", "/api/v1/data/project?search=Apollo", None).await;
    assert_eq!(listed["total"], json!(0));

    // Analytics: only over objects the caller sees whole, never hidden fields.
    let cube = json!({"cube": "project", "measures": ["count"]});
    assert_eq!(w.refused(Some(w.alice()), "POST", "/api/v1/analytics/query", Some(cube.clone()), 403).await, "permission_denied");
    let rows = w.ok(Some(&w.admin), "POST", "/api/v1/analytics/query", Some(json!({"cube": "project", "measures": ["count", "budget_sum"]}))).await;
    assert_eq!(rows["rows"][0]["budget_sum"], json!(6000.0), "{rows}");

    // As-of reads obey the same rules.
    let position = *w.api.system.commands.store().head().borrow();
    let as_of = w.ok(Some(w.bob()), "GET", &format!("/api/v1/data/project?asOf={position}"), None).await;
    assert_eq!(as_of["total"], json!(1), "{as_of}");
    assert!(as_of["records"][0].get("budget").is_none());
    assert_eq!(w.refused(Some(w.bob()), "GET", &format!("/api/v1/data/project/{a}?asOf={position}"), None, 404).await, "record_not_found");

    // The permission routes tell the same story.
    let check = w.ok(Some(w.alice()), "POST", "/api/v1/auth/check", Some(json!({"object": "project", "action": "delete"}))).await;
    assert_eq!(check["allowed"], json!(false));
    let check = w.ok(Some(w.alice()), "POST", "/api/v1/auth/check", Some(json!({"object": "project", "action": "edit", "recordId": b}))).await;
    assert_eq!(check["allowed"], json!(false), "{check}");
    let effective = w.ok(Some(w.alice()), "GET", "/api/v1/auth/permissions/effective", None).await;
    assert_eq!(effective["objects"]["project"]["allowRead"], json!(true));
    assert!(effective["objects"].get("user").is_none());
    let fields = w.ok(Some(w.alice()), "GET", "/api/v1/auth/permissions/project", None).await;
    assert_eq!(fields["fieldPermissions"]["team"], json!({"readable": true, "editable": false}));

    // The actor of every event is the caller who caused it.
    let admin_id = w.ok(Some(&w.admin), "GET", "/api/v1/auth/get-session", None).await["user"]["id"].as_str().unwrap().to_string();
    let actors: std::collections::BTreeSet<String> =
        w.api.system.commands.store().read_stream(&format!("project/{a}"), 1).await.unwrap().into_iter().map(|e| e.actor).collect();
    assert_eq!(actors, [w.alice.0.clone(), admin_id].into_iter().collect(), "Alice created the project, the administrator changed it");
    let first = &w.api.system.commands.store().read_stream(&format!("project/{a}"), 1).await.unwrap()[0];
    assert_eq!(first.actor, w.alice.0);

    // Nothing secret in any response: not the clear password, not its hash.
    let seen = w.seen.lock().unwrap().clone();
    for secret in [SECRET, PASSWORD, ADMIN_PASSWORD, "$argon2"] {
        assert!(!seen.contains(secret), "'{secret}' reached a response");
    }
    // Nor in what `objectstack replay` prints (hashes of passwords and tokens are redacted).
    for (object, record) in [(None, None), (Some("user".to_string()), Some(w.alice.0.clone())), (Some("project".to_string()), Some(a.clone()))] {
        let selection = gateway::replay::Selection { object, record, from: None, to: None };
        let mut out = Vec::new();
        gateway::replay::replay(w.api.system.commands.store().clone(), &selection, &mut out).await.unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("[redacted]"), "{text}");
        assert!(!text.contains("$argon2") && !text.contains(SECRET), "a secret in replay output");
    }
    // Nor in clear in the log.
    let events = w.api.system.commands.store().read_all(0, 100_000).await.unwrap();
    for event in &events {
        let bytes = String::from_utf8_lossy(&event.payload);
        assert!(!bytes.contains(SECRET) && !bytes.contains(PASSWORD) && !bytes.contains(ADMIN_PASSWORD), "a password in clear in {}", event.event_type);
    }
}

async fn graphql_rules(postgres: bool) {
    let w = world(postgres).await;
    let (a, b, _, tb) = seed(&w).await;
    let list = w.graphql(w.alice(), "{ projectList { total records { id name } } }").await;
    assert_eq!(list["data"]["projectList"]["total"], json!(1), "{list}");
    let one = w.graphql(w.alice(), &format!("{{ project(id: \"{b}\") {{ id name }} }}")).await;
    assert_eq!(one["data"]["project"], Json::Null, "{one}");
    // The schema a caller sees describes only what it may read: a hidden field cannot even be asked for.
    let sdl = w.call(Some(w.alice()), "GET", "/api/v1/graphql/schema", None).await.body["raw"].as_str().unwrap_or_default().to_string();
    assert!(sdl.contains("type Project") && !sdl.contains("budget") && !sdl.contains("type User "), "{sdl}");
    let admin_sdl = w.call(Some(&w.admin), "GET", "/api/v1/graphql/schema", None).await.body["raw"].as_str().unwrap_or_default().to_string();
    assert!(admin_sdl.contains("budget") && admin_sdl.contains("type User "));
    let oracle = w.graphql(w.alice(), "{ projectList(filter: {budget: {gt: 10}}) { total } }").await;
    assert!(oracle["data"].is_null() && oracle["errors"][0]["message"].as_str().unwrap().contains("budget"), "{oracle}");
    let hidden = w.graphql(w.alice(), &format!("{{ project(id: \"{a}\") {{ id budget }} }}")).await;
    assert!(hidden["data"].is_null() && hidden["errors"][0]["message"].as_str().unwrap().contains("budget"), "{hidden}");
    let users = w.graphql(w.alice(), "{ userList { total } }").await;
    assert!(users["data"].is_null(), "{users}");
    // A lookup to a project the caller may not see is null (the task itself is not visible either).
    let task = w.graphql(w.alice(), &format!("{{ task(id: \"{tb}\") {{ id project {{ name }} }} }}")).await;
    assert_eq!(task["data"]["task"], Json::Null, "{task}");
    let pointer = w.ok(Some(&w.admin), "POST", "/api/v1/data/note", Some(json!({"body": "about B", "status": "open", "project": b}))).await;
    let pointer = pointer["id"].as_str().unwrap();
    let note = w.graphql(w.alice(), &format!("{{ note(id: \"{pointer}\") {{ id body project {{ name }} }} }}")).await;
    assert_eq!(note["data"]["note"]["body"], json!("about B"), "{note}");
    assert_eq!(note["data"]["note"]["project"], Json::Null, "{note}");
    let update = w.graphql(w.alice(), &format!("mutation {{ updateProject(id: \"{b}\", input: {{name: \"x\"}}) {{ id }} }}")).await;
    assert_eq!(update["errors"][0]["extensions"]["code"], json!("record_not_found"), "{update}");
    let delete = w.graphql(w.alice(), &format!("mutation {{ deleteProject(id: \"{a}\") {{ id }} }}")).await;
    assert_eq!(delete["errors"][0]["extensions"]["code"], json!("permission_denied"), "{delete}");
    let aggregate = w.graphql(w.alice(), "{ projectAggregate { count } }").await;
    assert_eq!(aggregate["data"]["projectAggregate"][0]["count"], json!(1), "{aggregate}");
    let audit = w.graphql(w.alice(), "{ audit { total } }").await;
    assert_eq!(audit["errors"][0]["extensions"]["code"], json!("permission_denied"), "{audit}");
    let search = w.graphql(w.bob(), "{ search(q: \"Apollo\") }").await;
    assert_eq!(search["data"]["search"]["totalHits"], json!(0), "{search}");
}

async fn realtime_rules(postgres: bool) {
    let w = world(postgres).await;
    let (a, b, ta, tb) = seed(&w).await;
    let url = format!("ws://{}/api/v1/realtime?access_token={}", w.base, w.alice());
    // controlled_by_parent on a socket: Alice hears her task change, not Bob's (the parent's row rule, through the relation).
    let mut tasks = tokio_tungstenite::connect_async(&url).await.unwrap().0;
    tasks.send(Message::Text(json!({"type": "subscribe", "object": "task"}).to_string().into())).await.unwrap();
    assert_eq!(next(&mut tasks).await["type"], json!("subscribed"));
    w.ok(Some(w.bob()), "PATCH", &format!("/api/v1/data/task/{tb}"), Some(json!({"title": "Thaw"}))).await;
    w.ok(Some(w.alice()), "PATCH", &format!("/api/v1/data/task/{ta}"), Some(json!({"title": "Liftoff"}))).await;
    let heard = next(&mut tasks).await;
    assert_eq!((heard["type"].as_str(), heard["payload"]["id"].as_str()), (Some("record.updated"), Some(ta.as_str())), "{heard}");
    drop(tasks);
    let mut ws = tokio_tungstenite::connect_async(url).await.unwrap().0;
    let send = |message: Json| Message::Text(message.to_string().into());
    ws.send(send(json!({"type": "subscribe", "id": "projects", "object": "project"}))).await.unwrap();
    assert_eq!(next(&mut ws).await["type"], json!("subscribed"));
    // Subscribing with a hidden field in the filter is refused (no oracle).
    ws.send(send(json!({"type": "subscribe", "object": "project", "filter": {"budget": 1000}}))).await.unwrap();
    assert_eq!(next(&mut ws).await["error"]["code"], json!("field_not_accessible"));
    ws.send(send(json!({"type": "live", "id": "live", "object": "project", "query": {"orderBy": [{"field": "name"}]}}))).await.unwrap();
    let first = next(&mut ws).await;
    let snapshot = if first["type"] == json!("snapshot") { first } else { next(&mut ws).await };
    assert_eq!(snapshot["total"], json!(1), "{snapshot}");

    // Bob's change to his own project reaches nobody else; an admin's change to A arrives without hidden fields.
    w.ok(Some(w.bob()), "PATCH", &format!("/api/v1/data/project/{b}"), Some(json!({"name": "Borealis 2"}))).await;
    w.ok(Some(&w.admin), "PATCH", &format!("/api/v1/data/project/{a}"), Some(json!({"budget": 2000, "name": "Apollo 2"}))).await;
    let mut frames: Vec<Json> = Vec::new();
    while !(frames.iter().any(|f| f["type"] == json!("record.updated")) && frames.iter().any(|f| f["type"] == json!("ops"))) {
        frames.push(next(&mut ws).await);
    }
    let text = serde_json::to_string(&frames).unwrap();
    assert!(!text.contains("Borealis"), "{text}");
    assert!(!text.contains("budget") && !text.contains("2000"), "{text}");
    let change = frames.iter().find(|f| f["type"] == json!("record.updated")).expect("the update");
    assert_eq!(change["payload"]["record"]["name"], json!("Apollo 2"));
    // The project leaves Alice's sight (transferred to Bob): a removal without its content.
    w.ok(Some(&w.admin), "PATCH", &format!("/api/v1/data/project/{a}"), Some(json!({"owner": w.bob.0}))).await;
    let mut removal = None;
    let mut live_ops = None;
    while removal.is_none() || live_ops.is_none() {
        let frame = next(&mut ws).await;
        match frame["type"].as_str() {
            Some("record.deleted") => removal = Some(frame),
            Some("ops") => live_ops = Some(frame),
            _ => {}
        }
    }
    let removal = removal.unwrap();
    assert_eq!(removal["payload"]["id"], json!(a));
    assert_eq!(removal["payload"]["record"], Json::Null, "{removal}");
    assert_eq!(removal["payload"]["previous"], Json::Null, "{removal}");
    let ops = live_ops.unwrap();
    assert_eq!(ops["total"], json!(0), "{ops}");
    assert_eq!(ops["ops"][0]["op"], json!("remove"), "{ops}");
    let seen = w.seen.lock().unwrap().clone() + &text;
    assert!(!seen.contains(SECRET) && !seen.contains("$argon2"));

    // Signing out ends the session's subscriptions at once: the socket is closed with the reason.
    w.ok(Some(w.alice()), "POST", "/api/v1/auth/sign-out", None).await;
    let closed = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match futures_util::StreamExt::next(&mut ws).await {
                Some(Ok(Message::Close(frame))) => return frame.map(|f| f.reason.to_string()).unwrap_or_default(),
                Some(Ok(_)) => continue,
                _ => return String::new(),
            }
        }
    })
    .await
    .expect("the socket closes after sign-out");
    assert!(closed.contains("signed out"), "{closed}");
}

async fn authentication(postgres: bool) {
    let w = world(postgres).await;
    // get-session tells who the token belongs to.
    let session = w.ok(Some(w.alice()), "GET", "/api/v1/auth/get-session", None).await;
    assert_eq!(session["user"]["email"], json!("alice@example.com"));
    assert!(session["user"].get("password").is_none());
    // A duplicate sign-up and a short password are refused.
    let reply = w.call(None, "POST", "/api/v1/auth/sign-up/email", Some(json!({"email": "alice@example.com", "password": PASSWORD}))).await;
    assert_eq!(reply.status.as_u16(), 409, "{}", reply.body);
    let reply = w.call(None, "POST", "/api/v1/auth/sign-up/email", Some(json!({"email": "c@example.com", "password": "short"}))).await;
    assert_eq!(reply.status.as_u16(), 400);
    // Sign-out revokes the token at once.
    w.ok(Some(w.bob()), "POST", "/api/v1/auth/sign-out", None).await;
    assert_eq!(w.refused(Some(w.bob()), "GET", "/api/v1/data/project", None, 401).await, "invalid_token");
    assert_eq!(w.refused(Some("made-up-token"), "GET", "/api/v1/data/project", None, 401).await, "invalid_token");
    // Brute force: wrong passwords are refused, then the account is locked even for the right one.
    for _ in 0..gateway::service::limiter::MAX_FAILURES {
        let code = w.refused(None, "POST", "/api/v1/auth/sign-in/email", Some(json!({"email": "bob@example.com", "password": "wrong-password"})), 401).await;
        assert_eq!(code, "invalid_credentials");
    }
    let code = w.refused(None, "POST", "/api/v1/auth/sign-in/email", Some(json!({"email": "bob@example.com", "password": PASSWORD})), 429).await;
    assert_eq!(code, "rate_limit_exceeded");
    // The sessions and users are events: the session stream has a create and a delete.
    let events = w.api.system.commands.store().read_all(0, 100_000).await.unwrap();
    assert!(events.iter().any(|e| e.event_type == "record.deleted" && e.stream.starts_with("session/")), "sign-out is an event");
    assert!(events.iter().filter(|e| e.stream.starts_with("session/")).all(|e| e.actor != "anonymous"));
}

async fn keys_sessions_and_failures(postgres: bool) {
    let w = world(postgres).await;
    // An API key acts as its user; its secret is shown once and never listed.
    let created = w.ok(Some(w.alice()), "POST", "/api/v1/auth/api-keys", Some(json!({"name": "ci"}))).await;
    let key = created["key"].as_str().unwrap().to_string();
    assert!(key.starts_with("osk_") && key.len() > 40, "{created}");
    let listed = w.ok(Some(w.alice()), "GET", "/api/v1/auth/api-keys", None).await;
    assert_eq!(listed["keys"].as_array().unwrap().len(), 1, "{listed}");
    assert!(!listed.to_string().contains(&key[8..]));
    let made = w.ok(Some(&key), "POST", "/api/v1/data/note", Some(json!({"body": "by key", "status": "open"}))).await;
    assert_eq!(made["record"]["created_by"], json!(w.alice.0));
    let id = created["id"].as_str().unwrap();
    assert_eq!(w.refused(Some(w.bob()), "DELETE", &format!("/api/v1/auth/api-keys/{id}"), None, 404).await, "resource_not_found");
    w.ok(Some(w.alice()), "DELETE", &format!("/api/v1/auth/api-keys/{id}"), None).await;
    assert_eq!(w.refused(Some(&key), "GET", "/api/v1/data/note", None, 401).await, "invalid_token");

    // Sessions: an expired one is refused, one near its end is renewed (an event).
    let system = &w.api.system;
    let session = |token: &str, expires: i64| {
        let mut data = serde_json::Map::new();
        data.insert("user".into(), json!(w.alice.0));
        data.insert("token_hash".into(), json!(gateway::service::tokens::hash_token(token)));
        data.insert("expires_at".into(), json!(domain::Timestamp::from_micros(expires).to_rfc3339()));
        commands::service::Command::Create { object: "session".into(), id: None, data }
    };
    let now = commands::clock::now().micros();
    system.commands.execute(session("expired-token-0123456789", now - 1_000_000), commands::service::CommandMeta::system()).await.unwrap();
    assert_eq!(w.refused(Some("expired-token-0123456789"), "GET", "/api/v1/data/note", None, 401).await, "session_expired");
    let ending = system.commands.execute(session("ending-token-0123456789", now + 3_600_000_000), commands::service::CommandMeta::system()).await.unwrap();
    w.ok(Some("ending-token-0123456789"), "GET", "/api/v1/data/note", None).await;
    let renewed = system.commands.record_state("session", &ending.id).record.unwrap();
    let until = domain::Timestamp::parse(renewed.get("expires_at").unwrap().as_str().unwrap()).unwrap().micros();
    assert!(until > now + 6 * 24 * 3600 * 1_000_000, "the session was renewed to a full week");

    // Failed sign-ins and lockouts are events in the audit trail (with no secret in them).
    for _ in 0..gateway::service::limiter::MAX_FAILURES {
        w.refused(None, "POST", "/api/v1/auth/sign-in/email", Some(json!({"email": "alice@example.com", "password": "guess-guess"})), 401).await;
    }
    let trail = w.ok(Some(&w.admin), "GET", "/api/v1/audit?object=auth_event&limit=100", None).await;
    let text = trail.to_string();
    assert_eq!(trail["total"], json!(gateway::service::limiter::MAX_FAILURES as u64 + 1), "{text}");
    assert!(text.contains("sign_in_failed") && text.contains("locked_out") && !text.contains("guess-guess"), "{text}");
    // Sessions appear in the audit trail without their token hashes.
    let sessions = w.ok(Some(&w.admin), "GET", "/api/v1/audit?object=session&limit=100", None).await;
    assert!(sessions.to_string().contains("expires_at") && !sessions.to_string().contains("token_hash"), "{sessions}");
}

/// A sign-out on one node is refused on another node sharing the PostgreSQL store,
/// as soon as the request carries the sign-out's position.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocation_reaches_another_node() {
    let w = world(true).await;
    let app_dir = tempfile::tempdir().unwrap();
    let app_path = app_dir.path().join("app.json");
    std::fs::write(&app_path, APP).unwrap();
    let storage = Storage::Postgres(w.api.system.pg_settings.clone().unwrap());
    let settings = Settings::local(storage, Some(app_path));
    let other = Api { system: gateway::app::start(&settings).await.unwrap(), _dir: None };
    let bearer = format!("Bearer {}", w.alice());
    let before = other.call("GET", "/api/v1/data/project", None, &[("authorization", &bearer)]).await;
    assert_eq!(before.status.as_u16(), 200, "{}", before.body);
    let out = w.call(Some(w.alice()), "POST", "/api/v1/auth/sign-out", None).await;
    let position = out.headers["x-log-position"].to_str().unwrap().to_string();
    let after = other.call("GET", "/api/v1/data/project", None, &[("authorization", &bearer), ("x-min-position", &position)]).await;
    assert_eq!(after.status.as_u16(), 401, "{}", after.body);
    assert_eq!(after.body["error"]["code"], json!("invalid_token"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_sessions_and_failures_embedded() {
    keys_sessions_and_failures(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_sessions_and_failures_postgres() {
    keys_sessions_and_failures(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_rules_embedded() {
    rest_rules(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_rules_postgres() {
    rest_rules(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graphql_rules_embedded() {
    graphql_rules(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graphql_rules_postgres() {
    graphql_rules(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn realtime_rules_embedded() {
    realtime_rules(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn realtime_rules_postgres() {
    realtime_rules(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authentication_embedded() {
    authentication(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authentication_postgres() {
    authentication(true).await;
}
