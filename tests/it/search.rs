//! Full-text search on both stores: exact matches rank above typo matches,
//! field boosts apply, facets count the matching set, filters keep the query
//! semantics, highlights mark the matched words, the QueryAST `search` clause
//! narrows list and `/query`, and updates and deletes show at once.

use serde_json::{json, Value as Json};

use crate::rest::Api;

const APP: &str = r#"{
  "manifest": {"id": "com.example.search", "namespace": "notes", "name": "Notes"},
  "objects": [
    {"name": "note", "fields": {
       "title": {"type": "text", "required": true, "searchable": true},
       "body": {"type": "textarea", "searchable": true},
       "category": {"type": "select", "options": [{"label": "Work", "value": "work"}, {"label": "Home", "value": "home"}]},
       "priority": {"type": "number"},
       "secret": {"type": "text"}}}
  ]
}"#;

async fn notes(postgres: bool) -> Api {
    let dir = tempfile::tempdir().unwrap();
    let app = dir.path().join("app.json");
    std::fs::write(&app, APP).unwrap();
    let storage =
        if postgres { gateway::config::Storage::Postgres(crate::common::pg_settings()) } else { gateway::config::Storage::Embedded(dir.path().join("data")) };
    let mut api = crate::rest::api_with_app(storage, &app).await;
    api._dir = Some(dir);
    api
}

async fn search(api: &Api, params: &str) -> Json {
    let reply = api.call("GET", &format!("/api/v1/search?{params}"), None, &[]).await;
    assert_eq!(reply.status, 200, "{params}: {}", reply.body);
    reply.body["data"].clone()
}

fn titles(result: &Json) -> Vec<String> {
    result["hits"].as_array().unwrap().iter().map(|h| h["document"]["title"].as_str().unwrap().to_string()).collect()
}

async fn create(api: &Api, body: Json) -> String {
    let reply = api.call("POST", "/api/v1/data/note", Some(body), &[]).await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    reply.body["data"]["id"].as_str().unwrap().to_string()
}

async fn ranking_boosts_facets_and_freshness(postgres: bool) {
    let api = notes(postgres).await;
    let budget = create(&api, json!({"title": "Annual budget", "body": "numbers for the year", "category": "work", "priority": 3})).await;
    create(&api, json!({"title": "Budget review", "body": "with the team", "category": "work", "priority": 1})).await;
    create(&api, json!({"title": "Budgit plan", "body": "a typo in the title", "category": "home", "priority": 5})).await;
    create(&api, json!({"title": "Garden", "body": "plant the budget tomatoes", "category": "home", "priority": 2})).await;
    create(&api, json!({"title": "Unrelated", "body": "nothing to see", "category": "home", "secret": "budget"})).await;

    // Exact matches rank first; a typo match comes after, and only when fuzzy.
    let fuzzy = search(&api, "q=budget&object=note").await;
    let ranked = titles(&fuzzy);
    assert_eq!(fuzzy["totalHits"], json!(4), "{fuzzy}");
    assert_eq!(ranked.last().map(String::as_str), Some("Budgit plan"), "{ranked:?}");
    assert!(!ranked.contains(&"Unrelated".to_string()), "fields that are not searchable are not searched");
    let exact = search(&api, "q=budget&object=note&fuzzy=false").await;
    assert_eq!(exact["totalHits"], json!(3));

    // Boosts: the body match wins when the body is boosted enough, the title match otherwise.
    let boosted = search(&api, &format!("q=budget&object=note&fuzzy=false&boost={}", crate::common::urlencode(r#"{"body": 20}"#))).await;
    assert_eq!(titles(&boosted)[0], "Garden");
    let title_first = search(&api, &format!("q=budget&object=note&fuzzy=false&boost={}", crate::common::urlencode(r#"{"title": 20}"#))).await;
    assert_ne!(titles(&title_first)[0], "Garden");
    let only_body = search(&api, "q=budget&object=note&fields=body").await;
    assert_eq!(titles(&only_body), vec!["Garden"]);

    // Facets count the whole matching set; filters keep the query semantics.
    let faceted = search(&api, "q=budget&object=note&facets=category&limit=1").await;
    assert_eq!(faceted["facets"]["category"], json!({"home": 2, "work": 2}));
    assert_eq!(faceted["hits"].as_array().unwrap().len(), 1);
    assert_eq!(faceted["hasMore"], json!(true));
    let filtered = search(&api, &format!("q=budget&object=note&filter={}", crate::common::urlencode(r#"{"priority": {"$gte": 3}}"#))).await;
    let mut got = titles(&filtered);
    got.sort();
    assert_eq!(got, vec!["Annual budget", "Budgit plan"]);
    assert_eq!(filtered["totalHits"], json!(2));

    // Highlights mark the matched words.
    let marked = search(&api, "q=annual&object=note&highlight=true").await;
    assert_eq!(marked["hits"][0]["highlights"]["title"], json!(["<em>Annual</em> budget"]));

    // The QueryAST search clause: list and /query narrow to the matches, by relevance.
    let list = api.call("GET", "/api/v1/data/note?search=budget&fields=title", None, &[]).await;
    assert_eq!(list.body["data"]["total"], json!(3), "{}", list.body);
    let query =
        api.call("POST", "/api/v1/data/note/query", Some(json!({"search": {"query": "budgit", "fuzzy": true}, "orderBy": [{"field": "title"}]})), &[]).await;
    let sorted: Vec<&str> = query.body["data"]["records"].as_array().unwrap().iter().map(|r| r["title"].as_str().unwrap()).collect();
    assert_eq!(sorted, vec!["Annual budget", "Budget review", "Budgit plan", "Garden"], "{}", query.body);

    // Updates and deletes are searchable as soon as they are acknowledged.
    let patched = api.call("PATCH", &format!("/api/v1/data/note/{budget}"), Some(json!({"title": "Annual forecast"})), &[]).await;
    assert_eq!(patched.status, 200);
    assert_eq!(search(&api, "q=forecast&object=note").await["totalHits"], json!(1));
    assert_eq!(search(&api, "q=annual&object=note").await["hits"][0]["document"]["title"], json!("Annual forecast"));
    api.call("DELETE", &format!("/api/v1/data/note/{budget}"), None, &[]).await;
    assert_eq!(search(&api, "q=forecast&object=note").await["totalHits"], json!(0));

    // GraphQL has the same search.
    let graphql =
        api.call("POST", "/api/v1/graphql", Some(json!({"query": "{ search(q: \"forecast garden\", objects: [\"note\"], fuzzy: false) }"})), &[]).await;
    assert_eq!(graphql.body["data"]["search"]["totalHits"], json!(1), "{}", graphql.body);

    // Bad input is a 4xx in the envelope.
    for bad in ["object=note", "q=x&object=ghost", "q=x&object=note&fields=priority", "q=x&limit=lots", "q=x&filter=%7Bnope", "q=x&offset=18446744073709551615"]
    {
        let reply = api.call("GET", &format!("/api/v1/search?{bad}"), None, &[]).await;
        assert!(reply.status.is_client_error(), "{bad}: {} {}", reply.status, reply.body);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ranking_boosts_facets_and_freshness_embedded() {
    ranking_boosts_facets_and_freshness(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ranking_boosts_facets_and_freshness_postgres() {
    ranking_boosts_facets_and_freshness(true).await;
}
