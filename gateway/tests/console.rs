//! The console in a real headless Chromium against the real binary: sign in,
//! define an object, add a record and see it appear in a second tab through
//! the realtime socket, edit it and find the change in its history and the
//! old value in the as-of view; a user without permission on the object
//! does not see it. Screenshots of the main pages go to
//! `target/console-screenshots/` for a reviewer to look at.

mod support;

use std::path::PathBuf;

use serde_json::json;
use support::browser::Browser;
use support::http;

const ADMIN: (&str, &str) = ("admin@example.com", "console-admin-pass");
const MEMBER: (&str, &str) = ("member@example.com", "console-member-pass");

fn screenshots() -> PathBuf {
    let target = std::env::var("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    target.join("console-screenshots")
}

async fn sign_in(browser: &Browser, (email, password): (&str, &str)) {
    browser.fill("#email", email).await;
    browser.fill("#password", password).await;
    browser.click("#sign-in").await;
    browser.wait_text("#who", email).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_in_the_console() {
    let data = tempfile::tempdir().unwrap();
    let port = support::free_port();
    let _server = support::serve_with_admin(data.path(), port, ADMIN).await;
    let shots = screenshots();
    let base = format!("http://127.0.0.1:{port}/_/");

    let browser = Browser::start().await;
    browser.open(&base).await;
    browser.find("#sign-in").await;
    browser.screenshot(&shots, "01-sign-in").await;
    sign_in(&browser, ADMIN).await;
    browser.wait_text("#objects", "task").await;
    browser.screenshot(&shots, "02-objects").await;

    // Define an object through the metadata API.
    browser.click("#new-object").await;
    browser.fill("#object-name", "project").await;
    browser.fill("#object-label", "Project").await;
    browser.fill("#fields .field-row:nth-child(1) [name=name]", "title").await;
    browser.click("#fields .field-row:nth-child(1) [name=required]").await;
    browser.click("#add-field").await;
    browser.fill("#fields .field-row:nth-child(2) [name=name]", "budget").await;
    browser.choose("#fields .field-row:nth-child(2) [name=type]", "number").await;
    browser.click("#save-object").await;
    browser.wait_text("h1", "Project").await;
    browser.find("#records").await;

    // A second tab on the same list, signed in on its own (a tab's session is its own).
    let first = browser.tab().await;
    let second = browser.new_tab().await;
    let second = {
        let _ = second;
        browser.tab().await
    };
    browser.open(&format!("{base}#/o/project")).await;
    sign_in(&browser, ADMIN).await;
    browser.find("#records").await;
    browser.wait_until("the second tab's socket is connected", "return document.body.dataset.live === 'on'").await;

    // Add a record in the first tab; a required field left empty is shown by field first.
    browser.switch(&first).await;
    browser.click("#new-record").await;
    browser.fill("#field-budget", "100").await;
    browser.click("#save-record").await;
    browser.wait_text("[data-error-for=title]", "").await;
    browser.wait_until("the missing title is reported at its field", "return document.querySelector('[data-error-for=title]').innerText.length > 0").await;
    browser.screenshot(&shots, "03-field-error").await;
    browser.fill("#field-title", "Apollo").await;
    browser.click("#save-record").await;
    browser.wait_text("#version", "version 1").await;

    // It appears in the second tab without a reload.
    browser.switch(&second).await;
    browser.wait_text("#records", "Apollo").await;
    browser.wait_text("#changed", "created").await;
    browser.screenshot(&shots, "04-records-live").await;

    // Edit it; the history shows who changed what, the as-of view the old value.
    browser.switch(&first).await;
    browser.fill("#field-title", "Apollo 11").await;
    browser.click("#save-record").await;
    browser.wait_text("#version", "version 2").await;
    browser.wait_text("#history", "Apollo 11").await;
    browser
        .wait_until("the change's old value is in the history", "return [...document.querySelectorAll('#history del')].some(d => d.innerText === 'Apollo')")
        .await;
    browser.screenshot(&shots, "05-record-history").await;
    browser.click("#history > li:last-child .as-of-link").await;
    browser.wait_text("#as-of-record", "Apollo").await;
    let then = browser.text("#as-of-record [data-field=title] td").await;
    assert_eq!(then, "Apollo", "the as-of view shows the title before the edit");
    browser.wait_text("#as-of-list", "Apollo").await;
    browser.screenshot(&shots, "06-as-of").await;

    // The second tab, on the record, sees an edit made elsewhere live.
    browser.switch(&second).await;
    browser.click("#records tbody tr a").await;
    browser.wait_text("#version", "version 2").await;
    let record = browser.run("return location.hash.split('/')[3]", json!([])).await.as_str().unwrap().to_string();
    let token = {
        let (status, body) = http(port, "POST", "/api/v1/auth/sign-in/email", Some(&json!({"email": ADMIN.0, "password": ADMIN.1}))).await.unwrap();
        assert_eq!(status, 200, "{body}");
        body["data"]["token"].as_str().unwrap().to_string()
    };
    let patch = |body: serde_json::Value| {
        let (path, token) = (format!("/api/v1/data/project/{record}"), token.clone());
        async move {
            let answer = support::exchange(port, "PATCH", &path, &[("authorization", format!("Bearer {token}"))], Some(&body)).await.unwrap();
            assert_eq!(answer.0, 200, "{}", answer.2);
        }
    };
    patch(json!({"budget": 250})).await;
    browser.wait_text("#updated-live", "Updated live").await;
    browser.wait_text("#updated-live", "Administrator").await;
    assert_eq!(browser.run("return document.querySelector('#field-budget').value", json!([])).await, json!("250"));

    // An edit under way when someone else saves: told at once, and the save is refused with why.
    browser.fill("#field-title", "Apollo 13").await;
    patch(json!({"budget": 300})).await;
    browser.wait_text("#changed-elsewhere", "changed elsewhere").await;
    browser.click("#save-record").await;
    browser.wait_text("#conflict", "Someone else changed this record").await;
    browser.wait_text("#conflict", "version 3").await;
    browser.screenshot(&shots, "07-conflict").await;
    let now = support::exchange(port, "GET", &format!("/api/v1/data/project/{record}"), &[("authorization", format!("Bearer {token}"))], None).await.unwrap();
    assert_eq!(now.2["data"]["record"]["title"], json!("Apollo 11"), "the refused edit was not saved: {}", now.2);

    // Filters and sorts go to the server.
    for (title, budget) in [("Gemini", 40), ("Mercury", 900)] {
        let created = support::exchange(
            port,
            "POST",
            "/api/v1/data/project",
            &[("authorization", format!("Bearer {token}"))],
            Some(&json!({"title": title, "budget": budget})),
        )
        .await
        .unwrap();
        assert_eq!(created.0, 201, "{}", created.2);
    }
    browser.open(&format!("{base}#/o/project")).await;
    browser.wait_text("#records", "Mercury").await;
    browser.choose("#filter-field", "budget").await;
    browser.choose("#filter-op", ">").await;
    browser.fill("#filter-value", "100").await;
    browser.click("#add-filter").await;
    browser.wait_until("only budgets over 100 are listed", "return document.querySelectorAll('#records tbody tr').length === 2").await;
    let listed = browser.text("#records tbody").await;
    assert!(listed.contains("Mercury") && listed.contains("Apollo") && !listed.contains("Gemini"), "{listed}");
    browser.choose("#sort-field", "budget").await;
    browser.choose("#sort-dir", "").await;
    browser.click("#apply-sort").await;
    browser
        .wait_until("sorted by budget, ascending", "return document.querySelector('#records tbody tr td:nth-child(2)').innerText.startsWith('Apollo')")
        .await;
    browser.wait_text("#summary", "of 2").await;

    // A definition change that would break existing records is refused with what breaks.
    browser.open(&format!("{base}#/o/project/define")).await;
    browser.click("#add-new-field").await;
    browser.find("#new-fields .field-row").await;
    browser.fill("#new-fields .field-row [name=name]", "code").await;
    browser.click("#new-fields .field-row [name=required]").await;
    browser.click("#save-definition").await;
    browser.wait_text("#define-error", "3").await;
    browser.wait_text("#define-error", "code").await;
    browser.screenshot(&shots, "08-definition-refused").await;

    // The event log, filtered by object, follows new events.
    browser.open(&format!("{base}#/log")).await;
    browser.fill("#log-object", "project").await;
    browser.click("#log-apply").await;
    browser.wait_until("only project events", "return [...document.querySelectorAll('#log tbody tr td:nth-child(4)')].every(td => td.innerText.startsWith('project/')) && document.querySelectorAll('#log tbody tr').length >= 5").await;
    patch(json!({"budget": 301})).await;
    browser.wait_text("#log tbody tr:first-child", "budget=301").await;
    browser.screenshot(&shots, "09-event-log").await;

    // Projections, and a rebuild swapped in.
    browser.open(&format!("{base}#/projections")).await;
    browser.wait_text("#projections", "query").await;
    browser.click("[data-rebuild=search]").await;
    browser.wait_text("[data-projection=search] .version", "2").await;
    browser.wait_text("[data-projection=search] .rebuild", "done").await;
    browser.screenshot(&shots, "10-projections").await;
    drop(browser);

    // Someone new signs up (a member, the app's default profile): they do
    // not see the object, and cannot reach it by its address.
    let browser = Browser::start().await;
    browser.open(&base).await;
    browser.click("#toggle-sign-up").await;
    browser.fill("#name", "Member").await;
    browser.fill("#email", MEMBER.0).await;
    browser.fill("#password", MEMBER.1).await;
    browser.click("#sign-in").await;
    browser.wait_text("#who", MEMBER.0).await;
    browser.wait_text("#objects", "task").await;
    let objects = browser.text("#objects").await;
    assert!(!objects.contains("project"), "a member sees no project object: {objects}");
    browser.open(&format!("{base}#/o/project")).await;
    browser.wait_until("the project list is refused", "return !!document.querySelector('main .error')").await;
    assert!(browser.text("#records").await.is_empty(), "no records table for a member");
    browser.screenshot(&shots, "11-member").await;
}

/// Every file of `gateway/console/` is served (and nothing else is listed).
#[test]
fn every_console_file_is_embedded() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("console");
    let mut on_disk = Vec::new();
    let mut folders = vec![root.clone()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(folder).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                folders.push(path);
            } else {
                on_disk.push(path.strip_prefix(&root).unwrap().to_string_lossy().replace('\\', "/"));
            }
        }
    }
    on_disk.sort();
    let mut served: Vec<String> = gateway::console::files().map(str::to_string).collect();
    served.sort();
    assert_eq!(served, on_disk);
}
