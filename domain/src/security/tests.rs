//! Given an app's security declarations, when a caller reads or writes, then
//! these are the rules that hold. No runtime, no store.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{json, Map, Value as Json};

use super::*;
use crate::metadata::{load_app, Catalog};
use crate::query::{parse_filter, Filter, Query};
use crate::value::{Record, Value};

/// The catalog of an app: its objects plus the built-in ones.
fn catalog_of(app: &Json) -> Catalog {
    let def = load_app(app).unwrap();
    let mut catalog = Catalog::default();
    let mut objects = crate::metadata::builtin_objects();
    objects.extend(def.objects.clone());
    let specs: Vec<crate::metadata::ObjectSpec> = objects.into_iter().map(|definition| crate::metadata::ObjectSpec::new(definition, None)).collect();
    for payload in crate::metadata::decide_metadata(&catalog, &crate::metadata::MetadataCommand::PutObjects { objects: specs }).unwrap() {
        crate::metadata::evolve_catalog(&mut catalog, &payload).unwrap();
    }
    catalog
}

fn app() -> Json {
    json!({
        "objects": [
            {"name": "project", "sharingModel": "private", "fields": {
                "name": {"type": "text"}, "owner": {"type": "lookup", "reference": "user"}, "team": {"type": "text"},
                "budget": {"type": "number"}, "secret": {"type": "password"}}},
            {"name": "task", "sharingModel": "controlled_by_parent", "fields": {
                "title": {"type": "text"}, "project": {"type": "master_detail", "reference": "project"}}},
            {"name": "note", "fields": {"body": {"type": "text"}, "status": {"type": "text"}}}
        ],
        "permissions": [
            {"name": "member", "isProfile": true,
             "objects": {"project": {"allowRead": true, "allowCreate": true, "allowEdit": true}, "task": {"allowRead": true, "allowEdit": true},
                         "note": {"allowRead": true, "allowCreate": true, "allowEdit": true}},
             "fields": {"project.budget": {"readable": false}, "project.team": {"readable": true, "editable": false}},
             "rowLevelSecurity": [{"name": "live_notes", "object": "note", "operation": "select", "using": "status <> 'archived'"},
                                  {"name": "no_archiving", "object": "note", "operation": "update", "check": "status <> 'archived'"}]},
            {"name": "finance", "objects": {"project": {"allowRead": true}}, "fields": {"project.budget": {"readable": true}}},
            {"name": "auditor", "isProfile": true, "objects": {"project": {"allowRead": true, "viewAllRecords": true}}},
            {"name": "boss", "isProfile": true, "objects": {}, "systemPermissions": ["modify_all_data"]},
            {"name": "self_service", "objects": {"user": {"allowRead": true, "allowEdit": true}}},
            {"name": "people_admin", "objects": {"user": {"allowRead": true, "allowEdit": true}}, "systemPermissions": ["manage_users"]}
        ],
        "roles": [{"name": "ceo", "label": "CEO"}, {"name": "lead", "label": "Lead", "parent": "ceo"}],
        "sharingRules": [
            {"name": "team_red", "object": "project", "type": "criteria", "condition": "team = 'red'", "accessLevel": "read",
             "sharedWith": {"type": "role_and_subordinates", "value": "ceo"}}
        ],
        "auth": {"defaultProfile": "member"}
    })
}

struct World {
    catalog: Catalog,
    policy: Arc<SecurityPolicy>,
}

fn given() -> World {
    let app = app();
    let catalog = catalog_of(&app);
    let policy = SecurityPolicy::from_app(&app, &catalog).unwrap();
    World { catalog, policy: Arc::new(policy) }
}

impl World {
    fn access(&self, principal: Principal) -> Access {
        Access::new(principal, self.policy.clone(), Arc::new(BTreeMap::new()))
    }

    fn member(&self, id: &str) -> Access {
        self.access(Principal::user(id, Some("member")))
    }

    fn grant(&self, access: &Access, object: &str) -> Arc<ObjectGrant> {
        access.grant(&self.catalog, self.catalog.get(object).unwrap())
    }

    fn secure(&self, access: &Access, object: &str, filter: Option<Json>) -> Result<(Query, Mask), crate::DomainError> {
        let mut query = Query::new(object);
        query.filter = filter.map(|f| parse_filter(&f).unwrap());
        let mask = secure_query(access, &self.catalog, &mut query)?;
        Ok((query, mask))
    }
}

fn record(fields: Json) -> Record {
    let mut record = Record::new();
    for (k, v) in fields.as_object().unwrap() {
        record.insert(k.clone(), Value::from_json(v));
    }
    record
}

fn no_fetch(_: &str, _: &str) -> Option<Record> {
    None
}

#[test]
fn a_callers_grants_are_compiled_once_per_definition_and_follow_a_change() {
    // Given a member whose grant on notes has been compiled
    let world = given();
    let member = world.member("u1");
    let before = world.grant(&member, "note");
    assert!(!before.hidden.contains("pin"));
    assert!(Arc::ptr_eq(&before, &world.grant(&member, "note")), "the same snapshot reuses the grant");
    // When notes gain a password field (a new catalog snapshot)
    let mut catalog = world.catalog.clone();
    let changed = json!({"name": "note", "fields": {"body": {"type": "text"}, "status": {"type": "text"}, "pin": {"type": "password"}}});
    let command = crate::metadata::MetadataCommand::PutObjects { objects: vec![crate::metadata::ObjectSpec::new(changed.clone(), None)] };
    for payload in crate::metadata::decide_metadata(&catalog, &command).unwrap() {
        crate::metadata::evolve_catalog(&mut catalog, &payload).unwrap();
    }
    // Then the same caller's grant hides it
    let after = member.grant(&catalog, catalog.get("note").unwrap());
    assert!(after.hidden.contains("pin"), "{:?}", after.hidden);
    // And a definition the catalog does not hold (a proposed change) is compiled as given
    let proposed = crate::metadata::ObjectDef::from_json(&json!({"name": "note", "fields": {"body": {"type": "text"}, "code": {"type": "password"}}})).unwrap();
    let grant = member.grant(&catalog, &proposed);
    assert!(grant.hidden.contains("code") && !grant.hidden.contains("pin"), "{:?}", grant.hidden);
}

#[test]
fn predicates_compile_with_the_callers_context() {
    let predicate = parse_predicate("owner = current_user.id AND (status <> 'done' OR priority IN ('high', 'urgent'))").unwrap();
    let filter = predicate.compile(&Principal::user("u1", None));
    let json = format!("{filter:?}");
    assert!(json.contains("Text(\"u1\")"), "{json}");
    assert!(json.contains("Or"), "{json}");
    // Comparisons between known values fold: a role check is true or false for the caller.
    let mut lead = Principal::user("u2", None);
    lead.roles = vec!["lead".into()];
    let role = parse_predicate("current_user.role = 'lead'").unwrap();
    assert_eq!(role.compile(&lead), predicate::always());
    assert_eq!(role.compile(&Principal::user("u3", None)), predicate::never());
    for bad in ["owner = ", "owner == current_user.password", "(a = 1", "a = 'x", "a ! 1"] {
        assert!(parse_predicate(bad).is_err(), "{bad} should not parse");
    }
}

#[test]
fn unknown_names_in_declarations_are_refused_at_load() {
    let catalog = catalog_of(&app());
    for (key, value) in [
        ("permissions", json!([{"name": "x1", "objects": {"ghost": {"allowRead": true}}}])),
        ("permissions", json!([{"name": "x1", "fields": {"project.ghost": {"readable": false}}}])),
        ("permissions", json!([{"name": "x1", "objects": {"project": {"allowRaed": true}}}])),
        ("permissions", json!([{"name": "x1", "rowLevelSecurity": [{"name": "r", "object": "project", "operation": "select", "using": "ghost = 1"}]}])),
        (
            "sharingRules",
            json!([{"name": "r", "object": "project", "type": "criteria", "condition": "ghost = 1", "sharedWith": {"type": "role", "value": "x"}}]),
        ),
    ] {
        let mut app = app();
        app[key] = value.clone();
        assert!(SecurityPolicy::from_app(&app, &catalog).is_err(), "{key}: {value} should be refused");
    }
}

#[test]
fn object_permissions_are_the_union_of_profile_and_sets() {
    let world = given();
    let member = world.member("u1");
    let p = world.grant(&member, "project").permission;
    assert!(p.read && p.create && p.edit && !p.delete);
    // `user` is not granted to members at all.
    assert!(!world.grant(&member, "user").permission.can_read());
    assert_eq!(world.secure(&member, "user", None).unwrap_err().code(), crate::ErrorCode::PermissionDenied);
    // A guest without a guest profile has nothing.
    let guest = world.access(Principal::guest());
    assert!(!world.grant(&guest, "project").permission.can_read());
    // Sessions are never granted, even to an administrator.
    let boss = world.access(Principal::user("b", Some("boss")));
    assert!(!world.grant(&boss, "session").permission.can_read());
    assert!(world.grant(&boss, "project").permission.modify_all);
}

#[test]
fn field_level_security_hides_and_freezes_fields_and_passwords_from_everyone() {
    let world = given();
    let member = world.member("u1");
    let grant = world.grant(&member, "project");
    assert!(grant.hidden.contains("budget") && grant.hidden.contains("secret"));
    assert!(grant.readonly.contains("team") && !grant.readonly.contains("name"));
    assert!(!grant.readonly.contains("secret"), "a password is written (hashed) by who may edit it");
    // A second set that grants the field makes it readable (the union).
    let mut both = Principal::user("u1", Some("member"));
    both.permission_sets = vec!["finance".into()];
    let grant = world.grant(&world.access(both), "project");
    assert!(!grant.hidden.contains("budget"));
    assert!(grant.hidden.contains("secret"), "passwords stay hidden whatever the sets say");
    // The administrator sees everything but passwords.
    let boss = world.access(Principal::user("b", Some("boss")));
    assert_eq!(world.grant(&boss, "project").hidden.iter().cloned().collect::<Vec<_>>(), vec!["secret".to_string()]);
}

#[test]
fn no_oracle_filtering_sorting_or_grouping_on_a_hidden_field_is_refused() {
    let world = given();
    let member = world.member("u1");
    let refused = world.secure(&member, "project", Some(json!({"budget": {"$gt": 100}}))).unwrap_err();
    assert_eq!(refused.code(), crate::ErrorCode::FieldNotAccessible);
    let mut query = Query::new("project");
    query.order_by = vec![crate::query::SortNode { field: "budget".into(), order: crate::query::SortOrder::Desc }];
    assert!(secure_query(&member, &world.catalog, &mut query).is_err());
    let mut query = Query::new("project");
    query.group_by = vec!["secret".into()];
    assert!(secure_query(&member, &world.catalog, &mut query).is_err());
    // Through a relation too: a task filtered by its project's budget.
    assert!(world.secure(&member, "task", Some(json!({"project.budget": 5}))).is_err());
    // Readable fields are fine, and the mask names what to take out.
    let (_, mask) = world.secure(&member, "project", Some(json!({"name": "x"}))).unwrap();
    assert!(mask.hidden.contains("budget") && mask.hidden.contains("secret"));
}

#[test]
fn a_private_object_shows_own_records_and_those_sharing_rules_open() {
    let world = given();
    let member = world.member("u1");
    let (query, _) = world.secure(&member, "project", None).unwrap();
    let rows = query.filter.unwrap();
    let catalog = &world.catalog;
    let project = catalog.get("project").unwrap();
    let mine = record(json!({"id": "p1", "owner": "u1", "team": "blue"}));
    let theirs = record(json!({"id": "p2", "owner": "u2", "team": "red"}));
    assert!(matches(&rows, &mine, project, catalog, &no_fetch));
    assert!(!matches(&rows, &theirs, project, catalog, &no_fetch));
    // The criteria rule shares red projects with the CEO role and the roles below it.
    let mut lead = Principal::user("u9", Some("member"));
    lead.roles = vec!["lead".into()];
    let (query, _) = world.secure(&world.access(lead), "project", None).unwrap();
    assert!(matches(&query.filter.unwrap(), &theirs, project, catalog, &no_fetch));
    // viewAllRecords bypasses sharing.
    let (query, _) = world.secure(&world.access(Principal::user("a", Some("auditor"))), "project", None).unwrap();
    assert_eq!(query.filter, None);
}

#[test]
fn a_child_controlled_by_its_parent_follows_the_parents_rows() {
    let world = given();
    let (query, _) = world.secure(&world.member("u1"), "task", None).unwrap();
    let rows = query.filter.unwrap();
    assert!(rows.fields().contains(&"project.owner"), "{rows:?}");
    let catalog = &world.catalog;
    let task = catalog.get("task").unwrap();
    let fetch = |object: &str, id: &str| (object == "project" && id == "p1").then(|| record(json!({"id": "p1", "owner": "u1"})));
    assert!(matches(&rows, &record(json!({"id": "t1", "project": "p1"})), task, catalog, &fetch));
    assert!(!matches(&rows, &record(json!({"id": "t2", "project": "p2"})), task, catalog, &fetch));
}

#[test]
fn row_level_security_filters_reads_and_checks_writes() {
    let world = given();
    let member = world.member("u1");
    let (query, _) = world.secure(&member, "note", Some(json!({"body": "x"}))).unwrap();
    let filter = query.filter.unwrap();
    assert!(matches!(&filter, Filter::And(parts) if parts.len() == 2), "the caller's filter AND the policy: {filter:?}");
    let guard = WriteGuard::new(&Arc::new(member.clone()), &world.catalog, "note").unwrap().unwrap();
    let archived = record(json!({"id": "n1", "status": "archived"}));
    let live = record(json!({"id": "n1", "status": "open"}));
    // A record the caller cannot see answers as not found.
    assert_eq!(guard.check_before(WriteOp::Update, &world.catalog, &archived, &no_fetch).unwrap_err().code(), crate::ErrorCode::RecordNotFound);
    guard.check_before(WriteOp::Update, &world.catalog, &live, &no_fetch).unwrap();
    // The update check refuses what the change would leave behind.
    assert_eq!(guard.check_after(WriteOp::Update, &world.catalog, &archived, &no_fetch).unwrap_err().code(), crate::ErrorCode::RecordNotAccessible);
    // Delete is not granted at all.
    assert_eq!(guard.allow(WriteOp::Delete).unwrap_err().code(), crate::ErrorCode::PermissionDenied);
    // The administrator bypasses row-level security.
    let boss = world.access(Principal::user("b", Some("boss")));
    let (query, _) = world.secure(&boss, "note", None).unwrap();
    assert_eq!(query.filter, None);
}

#[test]
fn writes_refuse_frozen_fields_and_owner_changes_without_transfer() {
    let world = given();
    let member = world.member("u1");
    let guard = WriteGuard::new(&Arc::new(member.clone()), &world.catalog, "project").unwrap().unwrap();
    let data = |v: Json| -> Map<String, Json> { v.as_object().unwrap().clone() };
    assert_eq!(guard.check_fields(&data(json!({"team": "red"})), None).unwrap_err().code(), crate::ErrorCode::FieldNotAccessible);
    assert_eq!(guard.check_fields(&data(json!({"budget": 5})), None).unwrap_err().code(), crate::ErrorCode::FieldNotAccessible);
    guard.check_fields(&data(json!({"name": "ok", "secret": "hunter22"})), None).unwrap();
    assert!(guard.check_fields(&data(json!({"owner": "u2"})), None).is_err());
    // The same owner again is no change.
    let current = record(json!({"id": "p1", "owner": "u1"}));
    guard.check_fields(&data(json!({"owner": "u1"})), Some(&current)).unwrap();
    assert_eq!(guard.owner_to_stamp(&data(json!({"name": "x"}))), Some("owner"));
    // A member may not edit someone else's private project even though it could read it through a rule.
    let mut lead = Principal::user("u9", Some("member"));
    lead.roles = vec!["lead".into()];
    let guard = WriteGuard::new(&Arc::new(world.access(lead)), &world.catalog, "project").unwrap().unwrap();
    let theirs = record(json!({"id": "p2", "owner": "u2", "team": "red"}));
    assert_eq!(guard.check_before(WriteOp::Update, &world.catalog, &theirs, &no_fetch).unwrap_err().code(), crate::ErrorCode::RecordNotAccessible);
}

#[test]
fn an_app_without_permissions_is_open_but_passwords_stay_hidden() {
    let app = json!({"objects": [{"name": "thing", "fields": {"name": {"type": "text"}, "pin": {"type": "password"}}}]});
    let catalog = catalog_of(&app);
    let policy = Arc::new(SecurityPolicy::from_app(&app, &catalog).unwrap());
    assert!(!policy.declared);
    let anyone = Access::new(Principal::guest(), policy, Arc::new(BTreeMap::new()));
    assert!(anyone.is_open() && anyone.has(SystemPermission::ManageMetadata));
    let grant = anyone.grant(&catalog, catalog.get("thing").unwrap());
    assert!(grant.permission.modify_all && grant.hidden.contains("pin") && grant.read_rows.is_none());
    assert!(!anyone.grant(&catalog, catalog.get("session").unwrap()).permission.can_read());
}

#[test]
fn the_catalog_a_caller_sees_leaves_out_what_it_may_not_read() {
    let world = given();
    let member = world.member("u1");
    let view = member.catalog_view(&world.catalog);
    assert!(view.get("user").is_none() && view.get("session").is_none(), "objects it may not read are left out");
    let project = view.get("project").unwrap();
    assert!(project.field("budget").is_none(), "hidden fields are not described");
    assert!(project.field("secret").is_some() && project.field("name").is_some());
    let boss = world.access(Principal::user("b", Some("boss")));
    assert!(boss.catalog_view(&world.catalog).get("user").unwrap().field("email").is_some());
    assert_eq!(member.view_key(), world.member("u2").view_key(), "callers with the same sets share one view");
    assert_ne!(member.view_key(), boss.view_key());
}

#[test]
fn only_user_managers_set_who_a_user_is() {
    let world = given();
    let data = json!({"profile": "boss"}).as_object().unwrap().clone();
    let mut editor = Principal::user("u1", Some("member"));
    editor.permission_sets = vec!["self_service".into()];
    let guard = WriteGuard::new(&Arc::new(world.access(editor)), &world.catalog, "user").unwrap().unwrap();
    guard.allow(WriteOp::Update).unwrap();
    guard.check_fields(&json!({"name": "New name"}).as_object().unwrap().clone(), None).unwrap();
    for field in ["profile", "permission_sets", "roles", "password"] {
        let data = json!({field: "x"}).as_object().unwrap().clone();
        assert_eq!(guard.check_fields(&data, None).unwrap_err().code(), crate::ErrorCode::FieldNotAccessible, "{field}");
    }
    let mut manager = Principal::user("u2", Some("member"));
    manager.permission_sets = vec!["people_admin".into()];
    let guard = WriteGuard::new(&Arc::new(world.access(manager)), &world.catalog, "user").unwrap().unwrap();
    guard.check_fields(&data, None).unwrap();
}
