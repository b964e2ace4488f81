//! App files through the real binary: `objectstack validate` names every
//! problem by file, JSON Pointer and the key meant, and fails on seed data the
//! rules refuse; `serve` refuses the same app before it opens any store; a
//! folder app's sections (permissions included) are all loaded, whichever
//! file holds them.

mod support;

use std::path::Path;
use std::process::{Command, Output};

use serde_json::json;
use support::{free_port, http, serve};

fn objectstack(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_objectstack")).env_clear().env("RUST_LOG", "error").args(args).output().unwrap()
}

fn write(dir: &Path, name: &str, json: serde_json::Value) {
    std::fs::write(dir.join(name), serde_json::to_string_pretty(&json).unwrap()).unwrap();
}

fn task_object() -> serde_json::Value {
    json!({"name": "task", "label": "Task", "fields": {
        "subject": {"type": "text", "label": "Subject", "required": true, "maxLength": 20},
        "done": {"type": "boolean", "label": "Done"}
    }})
}

#[test]
fn validate_names_the_file_the_path_and_the_key_meant() {
    let dir = tempfile::tempdir().unwrap();
    let mut object = task_object();
    object["fields"]["subject"]["requird"] = json!(true);
    object["fields"]["done"]["defaultValue"] = json!(false);
    object["fields"]["done"]["label"] = json!(7);
    write(dir.path(), "objects.json", json!({ "objects": [object] }));
    write(dir.path(), "security.json", json!({"permisions": [], "views": []}));
    let out = objectstack(&["validate", "--app", &dir.path().display().to_string()]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8(out.stdout).unwrap();
    let objects = dir.path().join("objects.json").display().to_string();
    let security = dir.path().join("security.json").display().to_string();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines,
        [
            format!("{objects}: /objects/0/fields/subject/requird: unknown property 'requird' (did you mean 'required'?)"),
            format!("{objects}: /objects/0/fields/done/label: 7 is not of type \"string\""),
            format!("{security}: /permisions: unknown property 'permisions' (did you mean 'permissions'?)"),
            format!("{security}: /views: warning: 'views' is part of the protocol but not served by this server; it is ignored"),
        ]
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("the app has 3 error(s)"));
}

#[test]
fn validate_fails_on_seed_data_the_rules_refuse_and_passes_a_sound_app() {
    let dir = tempfile::tempdir().unwrap();
    let app = dir.path().join("app.json");
    let records = json!([{"subject": "fine"}, {"subject": "a subject far longer than twenty characters"}]);
    write(dir.path(), "app.json", json!({"objects": [task_object()], "data": [{"object": "task", "mode": "insert", "records": records}]}));
    let out = objectstack(&["validate", "--app", &app.display().to_string()]);
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stdout));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.starts_with(&format!("{}: /: seed data: ", app.display())) && text.contains("subject"), "{text}");

    write(dir.path(), "app.json", json!({"objects": [task_object()], "data": [{"object": "task", "mode": "insert", "records": [{"subject": "fine"}]}]}));
    let out = objectstack(&["validate", "--app", &app.display().to_string()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    assert_eq!(String::from_utf8(out.stdout).unwrap().trim(), "valid: 1 objects, 1 seed records, 0 permission sets, 0 automation definitions");
    // The bundled apps pass, with every seed record.
    let out = objectstack(&["validate"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
}

#[test]
fn serve_refuses_an_app_that_does_not_follow_the_protocol_before_opening_a_store() {
    let dir = tempfile::tempdir().unwrap();
    let mut object = task_object();
    object["fields"]["subject"]["type"] = json!("texty");
    write(dir.path(), "app.json", json!({ "objects": [object] }));
    let data = dir.path().join("data");
    let port = free_port().to_string();
    let out = objectstack(&[
        "serve",
        "--app",
        &dir.path().join("app.json").display().to_string(),
        "--data-dir",
        &data.display().to_string(),
        "--listen",
        &format!("127.0.0.1:{port}"),
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("app.json: /objects/0/fields/subject/type: ") && err.contains("texty"), "{err}");
    assert!(!data.exists(), "the log was opened before the app was checked");
}

#[tokio::test]
async fn a_folder_apps_permissions_in_a_file_of_their_own_govern_the_app() {
    let dir = tempfile::tempdir().unwrap();
    let app = dir.path().join("app");
    std::fs::create_dir(&app).unwrap();
    write(&app, "task.json", task_object());
    write(
        &app,
        "security.json",
        json!({"permissions": [{"name": "member", "label": "Member", "isProfile": true, "objects": {"task": {"allowRead": true, "allowCreate": true}}}]}),
    );
    let port = free_port();
    let data = dir.path().join("data").display().to_string();
    let _server = serve(&app, &["--data-dir".into(), data], port).await;
    // Governed: an anonymous caller is refused (an open app would answer 200).
    let (status, body) = http(port, "GET", "/api/v1/data/task", None).await.unwrap();
    assert_eq!(status, 401, "{body}");
}

/// A definition change that breaks existing records: `migrate --dry-run`
/// says so without the app's migrations, and with them prints what each
/// would change while writing nothing; `migrate` then makes the change,
/// after which `serve` starts on the new definition with the records
/// migrated.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_plans_a_definition_change_then_makes_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let options = |values: &[&str]| json!(values.iter().map(|v| json!({"label": v, "value": v})).collect::<Vec<_>>());
    let note = |values: &[&str], region: bool| {
        let mut fields = json!({"title": {"type": "text", "required": true}, "status": {"type": "select", "options": options(values)}});
        if region {
            fields["region"] = json!({"type": "text", "required": true});
        }
        json!({"name": "note", "label": "Note", "fields": fields})
    };
    let v1 = dir.path().join("v1.json");
    write(
        dir.path(),
        "v1.json",
        json!({"objects": [note(&["open", "paid"], false)], "data": [{"object": "note", "records": [
        {"id": "n1", "title": "one", "status": "paid"}, {"id": "n2", "title": "two", "status": "paid"}, {"id": "n3", "title": "three", "status": "open"}]}]}),
    );
    let port = free_port();
    drop(serve(&v1, &["--data-dir".into(), data.display().to_string()], port).await);

    let data_dir = data.display().to_string();
    let migrate = |app: &Path, dry_run: bool| {
        let mut args = vec!["migrate", "--data-dir", &data_dir, "--app"];
        let app = app.display().to_string();
        args.push(&app);
        if dry_run {
            args.push("--dry-run");
        }
        let out = objectstack(&args);
        (out.status.code(), String::from_utf8_lossy(&out.stdout).to_string(), String::from_utf8_lossy(&out.stderr).to_string())
    };
    let bare = dir.path().join("bare.json");
    write(dir.path(), "bare.json", json!({"objects": [note(&["open", "settled"], true)]}));
    let (code, _, err) = migrate(&bare, true);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("would break existing records")
            && err.contains("'region' would be required but 3 record(s)")
            && err.contains("2 record(s) hold a value of 'status'"),
        "{err}"
    );

    let v2 = dir.path().join("v2.json");
    let migrations = json!({"note": {"region": {"backfill": "north"}, "status": {"remap": {"paid": "settled"}}}});
    write(dir.path(), "v2.json", json!({"objects": [note(&["open", "settled"], true)], "migrations": migrations}));
    let valid = objectstack(&["validate", "--app", &v2.display().to_string()]);
    assert!(valid.status.success(), "{}", String::from_utf8_lossy(&valid.stdout));
    let expected = [
        "object note: definition changed",
        "  note.region: 3 record(s) migrated (backfill \"north\")",
        "  note.status: 2 record(s) migrated (remap paid -> \"settled\")",
        "dry run: 4 event(s) would be appended; nothing was written",
    ];
    for _ in 0..2 {
        let (code, out, err) = migrate(&v2, true);
        assert_eq!(code, Some(0), "{err}");
        assert_eq!(out.lines().collect::<Vec<_>>(), expected, "the plan, again: the dry run wrote nothing");
    }
    let (code, out, err) = migrate(&v2, false);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.lines().last().unwrap().starts_with("applied: 4 event(s)"), "{out}");
    let (_, out, _) = migrate(&v2, true);
    assert_eq!(out.trim(), "the store already holds these definitions: nothing to change");

    let port = free_port();
    let _server = serve(&v2, &["--data-dir".into(), data.display().to_string()], port).await;
    let (status, body) = http(port, "GET", "/api/v1/data/note/n1", None).await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!((body["data"]["record"]["region"].as_str(), body["data"]["record"]["status"].as_str()), (Some("north"), Some("settled")), "{body}");

    let typo = dir.path().join("typo.json");
    write(dir.path(), "typo.json", json!({"objects": [note(&["open", "settled"], true)], "migrations": {"note": {"region": {"backfil": "north"}}}}));
    let out = objectstack(&["validate", "--app", &typo.display().to_string()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("/migrations: the migration of note.region has 'backfil'"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}
