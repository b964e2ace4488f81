//! Automation definitions: what loads, what is refused (naming the definition
//! and its action), and what rules and schedules compute.

use serde_json::json;

use super::*;
use crate::metadata::{load_app, Catalog, ObjectDef};
use crate::time::Timestamp;
use crate::value::{Record, Value};

fn catalog() -> Catalog {
    let mut catalog = Catalog::default();
    let task = json!({"name": "task", "fields": {
        "title": {"type": "text", "required": true},
        "status": {"type": "select", "options": [{"label": "Open", "value": "open"}, {"label": "Done", "value": "done"}]},
        "priority": {"type": "text"},
        "estimate": {"type": "number"},
        "flagged": {"type": "boolean"},
        "secret": {"type": "password"},
    }});
    catalog.insert(ObjectDef::from_json(&task).unwrap(), None);
    catalog
}

fn error(app: serde_json::Value) -> String {
    Automation::from_app(&app, &catalog()).unwrap_err().to_string()
}

fn record(pairs: &[(&str, Value)]) -> Record {
    let mut record = Record::new();
    for (k, v) in pairs {
        record.insert((*k).to_string(), v.clone());
    }
    record
}

const NOW: Timestamp = Timestamp(1_767_225_600_000_000); // 2026-01-01T00:00:00Z

#[test]
fn a_rule_with_criteria_sets_fields_the_record_lacks() {
    let app = json!({"workflows": [{"name": "flag_big", "objectName": "task", "triggerType": "on_create_or_update", "criteria": "estimate > 10",
        "actions": [{"name": "flag", "type": "field_update", "field": "flagged", "value": true},
                    {"name": "prio", "type": "field_update", "field": "priority", "value": "=IF(estimate > 100, \"urgent\", \"high\")"}]}]});
    let automation = Automation::from_app(&app, &catalog()).unwrap();
    let rule = &automation.workflows[0];
    let big = record(&[("estimate", Value::Int(200))]);
    assert!(rule.applies(Change::Created, &big, None, NOW));
    assert!(rule.applies(Change::Updated, &big, None, NOW));
    assert!(!rule.applies(Change::Created, &record(&[("estimate", Value::Int(5))]), None, NOW));
    let patch = rule.patch(&big, None, NOW);
    assert_eq!(serde_json::Value::Object(patch), json!({"flagged": true, "priority": "urgent"}));
    // Once in place, nothing is left to write (so a rule's own write ends there).
    let done = record(&[("estimate", Value::Int(200)), ("flagged", Value::Bool(true)), ("priority", Value::Text("urgent".into()))]);
    assert!(rule.patch(&done, None, NOW).is_empty());
}

#[test]
fn triggers_choose_the_changes_a_rule_sees() {
    let app = json!({"workflows": [
        {"name": "on_new", "objectName": "task", "triggerType": "on_create", "actions": []},
        {"name": "on_edit", "objectName": "task", "triggerType": "on_update", "actions": [], "executionOrder": 5},
        {"name": "off", "objectName": "task", "triggerType": "on_create", "actions": [], "active": false},
    ]});
    let automation = Automation::from_app(&app, &catalog()).unwrap();
    // Ordered by executionOrder (default 100), then name.
    let names: Vec<&str> = automation.workflows.iter().map(|w| w.name.as_str()).collect();
    assert_eq!(names, ["on_edit", "off", "on_new"]);
    let r = Record::new();
    assert!(automation.workflow("on_new").unwrap().applies(Change::Created, &r, None, NOW));
    assert!(!automation.workflow("on_new").unwrap().applies(Change::Updated, &r, None, NOW));
    assert!(automation.workflow("on_edit").unwrap().applies(Change::Updated, &r, None, NOW));
    assert!(!automation.workflow("off").unwrap().applies(Change::Created, &r, None, NOW));
}

#[test]
fn bad_definitions_are_refused_naming_the_definition_and_the_action() {
    let rule = |extra: serde_json::Value| {
        let mut rule = json!({"name": "r1", "objectName": "task", "triggerType": "on_create", "actions": []});
        for (k, v) in extra.as_object().unwrap() {
            rule[k] = v.clone();
        }
        error(json!({"workflows": [rule]}))
    };
    assert!(rule(json!({"critera": "x"})).contains("workflow: unknown property 'critera'"));
    assert!(rule(json!({"objectName": "nope"})).contains("workflow 'r1': unknown object 'nope'"));
    assert!(rule(json!({"criteria": "nope > 1"})).contains("workflow 'r1': criteria: unknown field 'nope' of 'task'"));
    assert!(rule(json!({"criteria": "estimate >"})).contains("workflow 'r1': criteria"));
    assert!(rule(json!({"triggerType": "sometimes"})).contains("unknown triggerType 'sometimes'"));
    let action = |action: serde_json::Value| rule(json!({"actions": [action]}));
    assert!(action(json!({"name": "a", "type": "email_alert", "template": "t", "recipients": []}))
        .contains("action 'a': action type 'email_alert' is not supported"));
    assert!(action(json!({"name": "a", "type": "field_update", "field": "nope", "value": 1})).contains("action 'a': unknown field 'nope'"));
    assert!(action(json!({"name": "a", "type": "field_update", "field": "secret", "value": "x"})).contains("cannot be set by a rule"));
    assert!(action(json!({"name": "a", "type": "field_update", "field": "priority", "value": "=nope"})).contains("action 'a': unknown field 'nope'"));
    assert!(action(json!({"name": "a", "type": "field_update", "field": "priority"})).contains("'value' is required"));
    assert!(error(json!({"workflows": [{"name": "r1", "objectName": "task"}, {"name": "r1", "objectName": "task"}]})).contains("defined twice"));
    assert!(error(json!({"workflows": [{"name": "R", "objectName": "task"}]})).contains("snake_case"));
}

#[test]
fn webhooks_load_with_the_protocol_defaults_and_refuse_what_cannot_be_sent() {
    let app = json!({"webhooks": [{"name": "hook", "object": "task", "url": "http://127.0.0.1:9/x", "secret": "s"}]});
    let automation = Automation::from_app(&app, &catalog()).unwrap();
    let hook = &automation.webhooks[0];
    assert_eq!(hook.method, "POST");
    assert_eq!(hook.timeout_ms, 30_000);
    assert!(hook.wants("task", WebhookTrigger::Create) && hook.wants("task", WebhookTrigger::Delete));
    assert!(!hook.wants("other", WebhookTrigger::Create));
    assert_eq!((hook.retry.delay_ms(1), hook.retry.delay_ms(2), hook.retry.delay_ms(3)), (1000, 2000, 4000));
    assert_eq!(RetryPolicy { max_delay_ms: 3000, ..RetryPolicy::default() }.delay_ms(5), 3000);
    let hook_error = |extra: serde_json::Value| {
        let mut hook = json!({"name": "hook", "object": "task", "url": "http://127.0.0.1:9/x"});
        for (k, v) in extra.as_object().unwrap() {
            hook[k] = v.clone();
        }
        error(json!({"webhooks": [hook]}))
    };
    assert!(hook_error(json!({"object": "nope"})).contains("webhook 'hook': unknown object 'nope'"));
    assert!(hook_error(json!({"url": "ftp://x"})).contains("'url' must be an http:// or https:// URL"));
    assert!(hook_error(json!({"url": "https://"})).contains("'url' must be an http:// or https:// URL"));
    assert!(hook_error(json!({"url": "http:///path"})).contains("'url' must be an http:// or https:// URL"));
    let secure = json!({"webhooks": [{"name": "hook", "object": "task", "url": "https://hooks.example.com/x"}]});
    assert!(Automation::from_app(&secure, &catalog()).is_ok(), "an https receiver is accepted");
    assert!(hook_error(json!({"triggers": ["undelete"]})).contains("trigger 'undelete' is not supported"));
    assert!(hook_error(json!({"payloadFields": ["secret"]})).contains("password field 'secret' is never sent"));
    assert!(hook_error(json!({"retryPolicy": {"maxRetries": 11}})).contains("maxRetries"));
    assert!(hook_error(json!({"authentication": {"type": "bearer"}})).contains("credentials need 'token'"));
}

#[test]
fn jobs_run_schedule_rules_and_compute_their_ticks() {
    let app = json!({
        "workflows": [{"name": "nightly", "objectName": "task", "triggerType": "schedule", "criteria": "status = \"open\"",
            "actions": [{"name": "flag", "type": "field_update", "field": "flagged", "value": true}]},
            {"name": "on_new", "objectName": "task", "triggerType": "on_create"}],
        "jobs": [{"name": "every_day", "schedule": {"type": "cron", "expression": "30 2 * * *", "timezone": "+02:00"}, "handler": "workflow:nightly"},
                 {"name": "often", "schedule": {"type": "interval", "intervalMs": 60000}, "handler": "workflow:nightly"}]
    });
    let automation = Automation::from_app(&app, &catalog()).unwrap();
    let daily = &automation.jobs[0];
    assert_eq!(daily.handler, JobHandler::Workflow("nightly".into()));
    // 02:30 at +02:00 is 00:30 UTC.
    assert_eq!(daily.schedule.next_after(NOW).unwrap().to_rfc3339(), "2026-01-01T00:30:00.000Z");
    let often = &automation.jobs[1].schedule;
    let next = often.next_after(NOW).unwrap();
    assert_eq!(next.micros() - NOW.micros(), 60_000_000);
    assert_eq!(often.last_due(Timestamp::from_micros(NOW.micros() + 150_000_000), NOW).unwrap().micros(), NOW.micros() + 120_000_000);
    assert_eq!(often.last_due(NOW, NOW), None);
    let two_days = Timestamp::from_micros(NOW.micros() + 2 * 86_400_000_000);
    assert_eq!(daily.schedule.last_due(two_days, NOW).unwrap().to_rfc3339(), "2026-01-02T00:30:00.000Z");

    let job_error = |job: serde_json::Value| error(json!({"workflows": app["workflows"], "jobs": [job]}));
    assert!(job_error(json!({"name": "j1", "schedule": {"type": "interval", "intervalMs": 1000}, "handler": "src/jobs.ts:run"})).contains("cannot run here"));
    assert!(
        job_error(json!({"name": "j1", "schedule": {"type": "interval", "intervalMs": 1000}, "handler": "workflow:on_new"})).contains("not a schedule rule")
    );
    assert!(
        job_error(json!({"name": "j1", "schedule": {"type": "interval", "intervalMs": 1000}, "handler": "workflow:gone"})).contains("unknown workflow 'gone'")
    );
    assert!(job_error(json!({"name": "j1", "schedule": {"type": "cron", "expression": "61 * * * *"}, "handler": "workflow:nightly"}))
        .contains("not a cron expression"));
    assert!(job_error(
        json!({"name": "j1", "schedule": {"type": "cron", "expression": "0 0 * * *", "timezone": "America/New_York"}, "handler": "workflow:nightly"})
    )
    .contains("timezone 'America/New_York' is not known here"));
}

#[test]
fn five_field_cron_reads_sunday_as_zero_or_seven() {
    assert_eq!(job::five_fields("0 9 * * 1-5"), "0 0 9 * * MON-FRI");
    assert_eq!(job::five_fields("*/15 * * * 0,7"), "0 */15 * * * SUN,SUN");
    assert_eq!(job::five_fields("0 0 * * */2"), "0 0 0 * * */2");
    assert_eq!(job::five_fields("0 0 0 * * *"), "0 0 0 * * *");
}

#[test]
fn the_bundled_apps_automation_loads() {
    for app in [crate::metadata::examples::TODO_APP, crate::metadata::examples::CRM_APP] {
        let json: serde_json::Value = serde_json::from_str(app).unwrap();
        let loaded = load_app(&json).unwrap();
        let mut catalog = Catalog::default();
        for object in &loaded.objects {
            catalog.insert(ObjectDef::from_json(object).unwrap(), None);
        }
        Automation::from_app(&json, &catalog).unwrap();
    }
}

#[test]
fn time_triggers_count_from_the_firing_or_a_date_field() {
    let mut cat = catalog();
    let deal = json!({"name": "deal", "fields": {"close": {"type": "date"}, "title": {"type": "text"}, "done": {"type": "boolean"}}});
    cat.insert(ObjectDef::from_json(&deal).unwrap(), None);
    let app = json!({"workflows": [{"name": "chase", "objectName": "deal", "triggerType": "on_create", "timeTriggers": [
        {"id": "later", "timeLength": 1, "timeUnit": "hours", "offsetDirection": "after", "offsetFrom": "trigger_date", "actions": []},
        {"timeLength": 2, "timeUnit": "days", "offsetDirection": "before", "offsetFrom": "date_field", "dateField": "close",
         "actions": [{"name": "flag", "type": "field_update", "field": "done", "value": true}]}]}]});
    let automation = Automation::from_app(&app, &cat).unwrap();
    let triggers = &automation.workflows[0].time_triggers;
    assert_eq!(triggers[0].due(&Record::new(), NOW).unwrap().micros() - NOW.micros(), 3_600_000_000);
    assert_eq!(triggers[1].id, "1", "an unnamed trigger is known by its index");
    let record = record(&[("close", Value::Text("2026-03-10".into()))]);
    assert_eq!(triggers[1].due(&record, NOW).unwrap().to_rfc3339(), "2026-03-08T00:00:00.000Z");
    assert_eq!(triggers[1].due(&Record::new(), NOW), None, "no date: no timer");
    let refused = |trigger: serde_json::Value| {
        Automation::from_app(&json!({"workflows": [{"name": "chase", "objectName": "deal", "triggerType": "on_create", "timeTriggers": [trigger]}]}), &cat)
            .unwrap_err()
            .to_string()
    };
    assert!(refused(json!({"timeLength": 1, "offsetFrom": "date_field", "dateField": "title"})).contains("'title' is not a date"));
    assert!(refused(json!({"timeLength": 1, "timeUnit": "weeks"})).contains("unknown timeUnit 'weeks'"));
    assert!(refused(json!({"timeUnit": "days"})).contains("'timeLength' is required"));
}

/// Before-save rules: `before_save::apply` on a decided write of `task`.
mod before_save_rules {
    use super::*;
    use crate::automation::before_save::{apply, MAX_ROUNDS};
    use crate::event::{EventPayload, RuleApplied};
    use crate::record::{decide, evolve, DecideContext, Decision, NoLookups, RecordCommand, RecordState};

    fn rules(list: serde_json::Value) -> Vec<WorkflowRule> {
        Automation::from_app(&json!({ "workflows": list }), &catalog()).unwrap().workflows
    }

    fn ctx(automation: bool) -> DecideContext<'static> {
        DecideContext { now: NOW, actor: "alice", lookups: &NoLookups, skip_rules: false, automation }
    }

    /// The caller's write decided, then the rules applied to it.
    fn write(rules: &[WorkflowRule], state: &RecordState, command: RecordCommand) -> Decision {
        let object = catalog().get("task").unwrap().clone();
        let decision = decide(&object, state, "t1", &command, &ctx(false)).unwrap();
        let after = decision.events.iter().fold(state.clone(), evolve);
        let (decision, end) = apply(rules, &object, state.record.as_ref(), after, "t1", decision, &ctx(true));
        assert_eq!(end, decision.events.iter().fold(state.clone(), evolve), "the state returned is the decision's");
        decision
    }

    fn data(value: serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
        value.as_object().unwrap().clone()
    }

    #[test]
    fn a_create_carries_the_rules_fields_and_who_set_them() {
        let rules = rules(json!([
            {"name": "flag_big", "objectName": "task", "triggerType": "on_create", "criteria": "estimate > 10", "executionOrder": 1,
             "actions": [{"name": "flag", "type": "field_update", "field": "flagged", "value": true}]},
            // Runs second and sees the first rule's field.
            {"name": "prioritise", "objectName": "task", "criteria": "flagged = true", "executionOrder": 2,
             "actions": [{"name": "p", "type": "field_update", "field": "priority", "value": "high"}]},
            {"name": "never", "objectName": "task", "criteria": "estimate > 1000",
             "actions": [{"name": "n", "type": "field_update", "field": "status", "value": "done"}]},
        ]));
        let decision = write(&rules, &RecordState::default(), RecordCommand::Create { data: data(json!({"title": "t", "estimate": 50})) });
        let [EventPayload::RecordCreated(created)] = decision.events.as_slice() else { panic!("one create: {decision:?}") };
        assert_eq!(created.record.get("flagged"), Some(&Value::Bool(true)));
        assert_eq!(created.record.get("priority"), Some(&Value::Text("high".into())));
        assert_eq!(created.record.get("status"), None, "untouched by a rule that did not hold");
        assert_eq!(
            created.automated,
            vec![
                RuleApplied { rule: "flag_big".into(), fields: vec!["flagged".into()] },
                RuleApplied { rule: "prioritise".into(), fields: vec!["priority".into()] }
            ]
        );
        // A small task: no rule acts, the decision is the caller's own.
        let plain = write(&rules, &RecordState::default(), RecordCommand::Create { data: data(json!({"title": "t", "estimate": 5})) });
        let [EventPayload::RecordCreated(created)] = plain.events.as_slice() else { panic!("one create") };
        assert!(created.automated.is_empty() && created.record.get("flagged").is_none());
    }

    #[test]
    fn an_update_merges_the_rules_changes_into_the_callers() {
        let rules = rules(json!([
            {"name": "estimate_means_work", "objectName": "task", "triggerType": "on_update", "criteria": "ISCHANGED(estimate)",
             "actions": [{"name": "reopen", "type": "field_update", "field": "status", "value": "open"},
                         {"name": "prio", "type": "field_update", "field": "priority", "value": "=IF(estimate > 10, \"high\", \"low\")"}]},
        ]));
        let created = write(
            &[],
            &RecordState::default(),
            RecordCommand::Create { data: data(json!({"title": "t", "estimate": 1, "priority": "low", "status": "open"})) },
        );
        let state = created.events.iter().fold(RecordState::default(), evolve);
        // The caller closes the task and raises the estimate: the rule reopens it (the caller's
        // status change is undone, so no change of status is left) and sets the priority.
        let decision = write(&rules, &state, RecordCommand::Update { patch: data(json!({"status": "done", "estimate": 20})) });
        let [EventPayload::RecordUpdated(updated)] = decision.events.as_slice() else { panic!("one update: {decision:?}") };
        let changed: Vec<(&str, &Value, &Value)> =
            updated.changes.iter().filter(|c| !c.field.ends_with("_at") && c.field != "modified_by").map(|c| (c.field.as_str(), &c.old, &c.new)).collect();
        assert_eq!(changed, vec![("estimate", &Value::Int(1), &Value::Int(20)), ("priority", &Value::Text("low".into()), &Value::Text("high".into()))]);
        assert_eq!(updated.automated, vec![RuleApplied { rule: "estimate_means_work".into(), fields: vec!["priority".into(), "status".into()] }]);
        let after = evolve(state, &decision.events[0]);
        assert_eq!(after.record.unwrap().get("status"), Some(&Value::Text("open".into())));
    }

    #[test]
    fn reevaluating_rules_stop_after_the_last_round_and_say_so() {
        let rules = rules(json!([
            {"name": "grow", "objectName": "task", "criteria": "estimate > 100", "reevaluateOnChange": true,
             "actions": [{"name": "g", "type": "field_update", "field": "estimate", "value": "=estimate + 1"}]},
            // Not reevaluated: acts in the first round only.
            {"name": "count", "objectName": "task", "criteria": "estimate > 100",
             "actions": [{"name": "c", "type": "field_update", "field": "priority", "value": "=CONCAT(priority, \"x\")"}]},
        ]));
        let decision = write(&rules, &RecordState::default(), RecordCommand::Create { data: data(json!({"title": "t", "estimate": 1000, "priority": ""})) });
        let [EventPayload::RecordCreated(created)] = decision.events.as_slice() else { panic!("one create") };
        assert_eq!(created.record.get("estimate"), Some(&Value::Int(1000 + MAX_ROUNDS as i64)));
        assert_eq!(created.record.get("priority"), Some(&Value::Text("x".into())));
        assert!(decision.warnings.iter().any(|w| w.message.contains("after 5 rounds")), "{:?}", decision.warnings);
    }

    #[test]
    fn a_refused_update_is_passed_by_with_a_warning() {
        let rules = rules(json!([
            {"name": "bad", "objectName": "task", "executionOrder": 1,
             "actions": [{"name": "b", "type": "field_update", "field": "status", "value": "nonsense"}]},
            {"name": "good", "objectName": "task", "executionOrder": 2,
             "actions": [{"name": "g", "type": "field_update", "field": "flagged", "value": true}]},
        ]));
        let decision = write(&rules, &RecordState::default(), RecordCommand::Create { data: data(json!({"title": "t"})) });
        let [EventPayload::RecordCreated(created)] = decision.events.as_slice() else { panic!("one create") };
        assert_eq!(created.record.get("status"), None, "the refused value is not set");
        assert_eq!(created.record.get("flagged"), Some(&Value::Bool(true)));
        assert_eq!(created.automated, vec![RuleApplied { rule: "good".into(), fields: vec!["flagged".into()] }]);
        let warned: Vec<&str> = decision.warnings.iter().map(|w| w.message.as_str()).collect();
        assert_eq!(warned, vec!["workflow rule 'bad' did not set its fields (invalid_format)"], "the codes, never the value");
    }
}
