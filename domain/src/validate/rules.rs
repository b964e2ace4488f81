//! Object-level validation rules, run on the record as it would be after a write.

use super::formats::{is_email, is_phone, is_url};
use super::json_schema::first_violation;
use crate::error::{ErrorCode, FieldError};
use crate::formula::{eval, truthy, RecordContext};
use crate::metadata::{ObjectDef, RuleEvent, RuleKind, Severity, TextFormat, ValidationRule};
use crate::record::Lookups;
use crate::time::Timestamp;
use crate::value::{Record, Value};

/// What the rules said: errors reject the write; warnings and infos are reported.
#[derive(Debug, Default, PartialEq)]
pub struct RuleOutcome {
    pub errors: Vec<FieldError>,
    pub warnings: Vec<FieldError>,
}

/// Runs every active rule for `event`, lowest priority first.
/// `record` is the full new record (insert/update) or the old one (delete).
pub fn check_rules(object: &ObjectDef, record: &Record, previous: Option<&Record>, event: RuleEvent, now: Timestamp, lookups: &dyn Lookups) -> RuleOutcome {
    let mut rules: Vec<&ValidationRule> = object.validations.iter().filter(|r| r.active && r.events.contains(&event)).collect();
    rules.sort_by_key(|r| r.priority);
    let mut outcome = RuleOutcome::default();
    for rule in rules {
        if let Some(failure) = violation(object, rule, record, previous, now, lookups) {
            match rule.severity {
                Severity::Error => outcome.errors.push(failure),
                Severity::Warning | Severity::Info => outcome.warnings.push(failure),
            }
        }
    }
    outcome
}

fn violation(
    object: &ObjectDef,
    rule: &ValidationRule,
    record: &Record,
    previous: Option<&Record>,
    now: Timestamp,
    lookups: &dyn Lookups,
) -> Option<FieldError> {
    let ctx = RecordContext { record, previous, now };
    let fail = |field: &str, code: ErrorCode| Some(FieldError::new(field, code, format!("{} (rule {})", rule.message, rule.name)));
    let first_field = || rule.referenced_fields().into_iter().next().unwrap_or_else(|| rule.name.clone());
    match &rule.kind {
        RuleKind::Script { condition } => truthy(&eval(condition, &ctx)).then(|| fail(&first_field(), ErrorCode::ValidationError)).flatten(),
        RuleKind::CrossField { condition, .. } => (!truthy(&eval(condition, &ctx))).then(|| fail(&first_field(), ErrorCode::ValidationError)).flatten(),
        RuleKind::Unique { fields, case_sensitive } => {
            let values: Vec<Value> = fields.iter().map(|f| record.get(f).cloned().unwrap_or(Value::Null)).collect();
            if values.iter().all(Value::is_blank) {
                return None;
            }
            let own_id = record.get("id").and_then(Value::as_str).unwrap_or_default();
            lookups.find_duplicate(&object.name, fields, &values, *case_sensitive, own_id).map(|other| {
                FieldError::new(
                    fields.join(","),
                    ErrorCode::DuplicateValue,
                    format!("{} (rule {}; record {other} has the same value)", rule.message, rule.name),
                )
            })
        }
        RuleKind::StateMachine { field, transitions } => {
            let before = previous?.get(field).and_then(Value::as_str)?;
            let after = record.get(field).and_then(Value::as_str)?;
            if before == after {
                return None;
            }
            let allowed = transitions.get(before).is_some_and(|targets| targets.iter().any(|t| t == after));
            (!allowed).then(|| {
                FieldError::new(field, ErrorCode::ValidationError, format!("{}: {before} -> {after} is not allowed (rule {})", rule.message, rule.name))
            })
        }
        RuleKind::Format { field, regex, format } => {
            let text = record.get(field).and_then(Value::as_str)?;
            let regex_ok = regex.as_ref().is_none_or(|re| re.is_match(text));
            let format_ok = match format {
                None => true,
                Some(TextFormat::Email) => is_email(text),
                Some(TextFormat::Url) => is_url(text),
                Some(TextFormat::Phone) => is_phone(text),
                Some(TextFormat::Json) => serde_json::from_str::<serde_json::Value>(text).is_ok(),
            };
            (!(regex_ok && format_ok)).then(|| fail(field, ErrorCode::InvalidFormat)).flatten()
        }
        RuleKind::JsonSchema { field, schema } => {
            let value = record.get(field).filter(|v| !v.is_null())?;
            let problem = first_violation(schema, &value.to_json(), "")?;
            Some(FieldError::new(field, ErrorCode::InvalidFormat, format!("{}: {problem} (rule {})", rule.message, rule.name)))
        }
        RuleKind::Conditional { when, then, otherwise } => {
            let branch = if truthy(&eval(when, &ctx)) { Some(then) } else { otherwise.as_ref() };
            branch.and_then(|inner| violation(object, inner, record, previous, now, lookups))
        }
        RuleKind::NotEnforced { .. } => None,
    }
}
