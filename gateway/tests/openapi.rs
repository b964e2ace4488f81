//! The OpenAPI document against the real binary: valid by a real validator
//! (openapi-spec-validator), faithful to each caller's rights (a member's
//! document leaves out the fields and writes the member may not use), and a
//! Schemathesis run from it (PyPI, installed by `ops/services/openapi-tools`)
//! finds no 5xx, no answer outside the documented schemas (so every error is
//! in the envelope), no undocumented status or content type.

mod support;

use std::path::PathBuf;
use std::process::Command;

use serde_json::{json, Value as Json};
use support::{exchange, http};

fn tools() -> PathBuf {
    let dir = std::env::var("OBJECTSTACK_OPENAPI_TOOLS")
        .expect("OBJECTSTACK_OPENAPI_TOOLS names the folder of schemathesis and openapi-spec-validator: run ops/test, or ops/services/openapi-tools");
    PathBuf::from(dir)
}

async fn sign_in(port: u16, route: &str, body: Json) -> String {
    let (status, answer) = http(port, "POST", route, Some(&body)).await.unwrap();
    assert_eq!(status, 200, "{answer}");
    answer["data"]["token"].as_str().unwrap().to_string()
}

async fn document(port: u16, token: &str) -> Json {
    let (status, _, doc) = exchange(port, "GET", "/api/v1/openapi.json", &[("authorization", format!("Bearer {token}"))], None).await.unwrap();
    assert_eq!(status, 200, "{doc}");
    doc
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_is_valid_and_the_server_keeps_to_it() {
    let data = tempfile::tempdir().unwrap();
    let port = support::free_port();
    let _server = support::serve_with_admin(data.path(), port, ("admin@example.com", "openapi-admin-pass")).await;
    let admin = sign_in(port, "/api/v1/auth/sign-in/email", json!({"email": "admin@example.com", "password": "openapi-admin-pass"})).await;
    let member = sign_in(port, "/api/v1/auth/sign-up/email", json!({"email": "member@example.com", "password": "openapi-member-pass", "name": "Member"})).await;

    // Each caller's document describes what that caller may use.
    let full = document(port, &admin).await;
    let mine = document(port, &member).await;
    let user_fields = |doc: &Json| doc["components"]["schemas"]["user_record"]["properties"].as_object().map(|p| p.keys().cloned().collect::<Vec<_>>());
    assert!(user_fields(&full).unwrap().contains(&"email".to_string()), "{}", full["components"]["schemas"]["user_record"]);
    assert!(!user_fields(&mine).unwrap().contains(&"email".to_string()), "a member may not read user emails: {}", mine["components"]["schemas"]["user_record"]);
    assert!(full["paths"]["/api/v1/data/user"]["post"].is_object(), "an administrator creates users");
    assert!(mine["paths"]["/api/v1/data/user"]["post"].is_null(), "a member may only read users: {}", mine["paths"]["/api/v1/data/user"]);
    assert!(mine["paths"]["/api/v1/data/task"]["post"].is_object(), "a member creates tasks");
    for doc in [&full, &mine] {
        assert!(!user_fields(doc).unwrap().contains(&"password".to_string()), "no one reads a password");
    }
    assert_eq!(full["components"]["schemas"]["user_input"]["properties"]["password"]["writeOnly"], json!(true), "an administrator sets passwords");
    let anonymous = http(port, "GET", "/api/v1/openapi.json", None).await.unwrap();
    assert_eq!(anonymous.0, 401, "the todo app has no guest profile: {}", anonymous.1);

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("openapi.json");
    std::fs::write(&path, serde_json::to_vec_pretty(&full).unwrap()).unwrap();
    let validated = Command::new(tools().join("openapi-spec-validator")).arg(&path).output().expect("openapi-spec-validator runs");
    assert!(validated.status.success(), "{}{}", String::from_utf8_lossy(&validated.stdout), String::from_utf8_lossy(&validated.stderr));

    // Fuzzed as the administrator (every route open to it), sign-out left out
    // (it would end the session the run uses).
    let run = Command::new(tools().join("schemathesis"))
        .current_dir(dir.path())
        .args(["run", path.to_str().unwrap(), "--url", &format!("http://127.0.0.1:{port}")])
        .args(["-H", &format!("Authorization: Bearer {admin}")])
        .args(["--checks", "not_a_server_error,response_schema_conformance,status_code_conformance,content_type_conformance"])
        .args(["-n", "10", "--seed", "7", "--generation-database", "none", "--request-timeout", "10"])
        .env("SCHEMATHESIS_HOOKS", "")
        .output()
        .expect("schemathesis runs");
    let report = String::from_utf8_lossy(&run.stdout);
    assert!(run.status.success(), "schemathesis found failures:\n{report}\n{}", String::from_utf8_lossy(&run.stderr));
    assert!(report.contains("passed"), "{report}");
}
