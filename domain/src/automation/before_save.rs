//! Workflow rules' field updates, applied to a write before it is saved.
//!
//! A record a command creates or updates is given to its object's rules in
//! `executionOrder`: each rule whose trigger and criteria hold sets its
//! fields on the record as the write (and the rules before it) left it. The
//! write's one event carries the result and which rule set which fields
//! (`automated` of `record.created` / `record.updated`), so the caller's
//! answer already holds the rules' fields, no second event is written, and
//! the audit trail still says what a rule set.
//!
//! After a round that changed the record, the rules with
//! `reevaluateOnChange` are given it again, as an update whose previous state
//! is the record before that round; at most [`MAX_ROUNDS`] rounds. A rule's
//! update is decided like any automated update (read-only fields may be set,
//! values and the object's validation rules apply); one that is refused is
//! passed by with a warning in the command's outcome (the rule and the
//! refusal's codes, never its text, which may quote a value the rule computed
//! from fields the caller cannot read), and the write goes on.

use super::workflow::{Change, Trigger, WorkflowRule};
use crate::error::{DomainError, ErrorCode, FieldError};
use crate::event::{EventPayload, FieldChange, RecordUpdated, RuleApplied};
use crate::metadata::{ObjectDef, SYSTEM_FIELDS};
use crate::record::{decide, evolve, DecideContext, Decision, RecordCommand, RecordState};
use crate::value::Record;

/// Rounds of rules reacting to rules' updates (Salesforce's limit is five too).
pub const MAX_ROUNDS: u32 = 5;

/// The rules that may act on a write of `object`: active, fired by record changes.
pub fn rules_of<'a>(rules: &'a [WorkflowRule], object: &'a str) -> impl Iterator<Item = &'a WorkflowRule> + 'a {
    rules.iter().filter(move |r| r.object == object && r.active && r.trigger != Trigger::Schedule)
}

/// `decision` (a create or an update of record `id`; `previous` is the
/// record before it, `after` the state the decision leads to) with the
/// fields `rules` set merged into its event, and the state it now leads to.
/// `ctx` is the rules' own: the write's clock and actor, `automation` set,
/// and lookups that see every record (rules act for the system, not for
/// the caller).
pub fn apply(
    rules: &[WorkflowRule],
    object: &ObjectDef,
    previous: Option<&Record>,
    after: RecordState,
    id: &str,
    mut decision: Decision,
    ctx: &DecideContext,
) -> (Decision, RecordState) {
    let first = match decision.events.as_slice() {
        [EventPayload::RecordCreated(_)] => Change::Created,
        [EventPayload::RecordUpdated(_)] => Change::Updated,
        _ => return (decision, after),
    };
    if rules_of(rules, &object.name).next().is_none() {
        return (decision, after);
    }
    // The rules' updates are folded in one by one, but join the write's one event.
    let version = after.version;
    let mut state = after;
    let mut previous = previous.cloned();
    let mut change = first;
    let mut applied: Vec<RuleApplied> = Vec::new();
    let mut updates: Vec<RecordUpdated> = Vec::new();
    for round in 0..MAX_ROUNDS {
        let round_start = state.record.clone();
        let mut changed = false;
        for rule in rules_of(rules, &object.name).filter(|r| round == 0 || r.reevaluate) {
            let Some(record) = state.record.as_ref() else { break };
            if !rule.applies(change, record, previous.as_ref(), ctx.now) {
                continue;
            }
            let patch = rule.patch(record, previous.as_ref(), ctx.now);
            let mut fields = Vec::new();
            if !patch.is_empty() {
                match decide(object, &state, id, &RecordCommand::Update { patch }, ctx) {
                    Ok(update) => {
                        decision.warnings.extend(update.warnings);
                        for event in update.events {
                            state = evolve(state, &event);
                            if let EventPayload::RecordUpdated(update) = event {
                                fields.extend(update.changes.iter().map(|c| c.field.clone()).filter(|f| !SYSTEM_FIELDS.contains(&f.as_str())));
                                updates.push(update);
                            }
                        }
                    }
                    // Only the codes: a refusal's text may quote the value, which a
                    // rule may have computed from fields the caller cannot read.
                    Err(refused) => decision.warnings.push(FieldError::new(
                        "",
                        ErrorCode::ValidationError,
                        format!("workflow rule '{}' did not set its fields ({})", rule.name, refusal_codes(&refused)),
                    )),
                }
            }
            changed |= !fields.is_empty();
            note(&mut applied, rule, fields);
        }
        if !changed {
            break;
        }
        if round + 1 == MAX_ROUNDS {
            decision.warnings.push(FieldError::new(
                "",
                ErrorCode::ValidationError,
                format!("workflow rules kept changing {} {id} after {MAX_ROUNDS} rounds; stopped there", object.name),
            ));
        }
        previous = round_start;
        change = Change::Updated;
    }
    state.version = version;
    if applied.is_empty() {
        return (decision, state);
    }
    match decision.events.first_mut() {
        Some(EventPayload::RecordCreated(created)) => {
            if let Some(record) = &state.record {
                created.record = record.clone();
            }
            created.automated = applied;
        }
        Some(EventPayload::RecordUpdated(updated)) => {
            for change in updates.into_iter().flat_map(|u| u.changes) {
                match updated.changes.iter_mut().find(|c| c.field == change.field) {
                    Some(earlier) => earlier.new = change.new,
                    None => updated.changes.push(change),
                }
            }
            // A rule may put back what the caller changed: no change left.
            updated.changes.retain(|FieldChange { old, new, .. }| old != new);
            updated.automated = applied;
        }
        _ => {}
    }
    (decision, state)
}

/// The codes of a refused update, such as `value_out_of_range, invalid_format`.
fn refusal_codes(refused: &DomainError) -> String {
    let mut codes: Vec<&str> = Vec::new();
    for code in refused.field_errors().iter().map(|e| e.code.as_str()) {
        if !codes.contains(&code) {
            codes.push(code);
        }
    }
    if codes.is_empty() {
        codes.push(refused.code().as_str());
    }
    codes.join(", ")
}

/// Records that `rule` acted (once per rule, with every field it set): the
/// rules that set fields, and those whose time triggers start from here.
fn note(applied: &mut Vec<RuleApplied>, rule: &WorkflowRule, fields: Vec<String>) {
    if let Some(entry) = applied.iter_mut().find(|a| a.rule == rule.name) {
        for field in fields {
            if !entry.fields.contains(&field) {
                entry.fields.push(field);
            }
        }
        return;
    }
    if !fields.is_empty() || !rule.time_triggers.is_empty() {
        applied.push(RuleApplied { rule: rule.name.clone(), fields });
    }
}
