//! Workflow rules (`WorkflowRule`): when a record of an object is created or
//! updated and the rule's criteria (a formula) hold, its field updates are
//! applied to that record; its time triggers apply their updates later, if
//! the criteria still hold then. Rules with `triggerType: schedule` run when
//! a job names them, over every record of their object.

use serde_json::{Map, Value as Json};

use super::check::{boolean, invalid, name, number, properties, text};
use crate::error::DomainError;
use crate::formula::{self, Expr, RecordContext};
use crate::metadata::{Catalog, FieldType, ObjectDef, SYSTEM_FIELDS};
use crate::time::Timestamp;
use crate::value::{Record, Value};

/// When a rule is evaluated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    Create,
    Update,
    CreateOrUpdate,
    /// Only when a job runs it.
    Schedule,
}

/// What happened to a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Created,
    Updated,
}

impl Trigger {
    pub fn fires_on(self, change: Change) -> bool {
        matches!((self, change), (Trigger::Create | Trigger::CreateOrUpdate, Change::Created) | (Trigger::Update | Trigger::CreateOrUpdate, Change::Updated))
    }
}

/// What a field update sets: a value as written, or a formula (a string
/// beginning with `=`, as in a spreadsheet) computed from the record.
#[derive(Debug, Clone)]
pub enum UpdateValue {
    Literal(Json),
    Formula(Expr),
}

impl UpdateValue {
    /// The value for `record` (a formula sees it as its record, with `previous`).
    pub fn evaluate(&self, record: &Record, previous: Option<&Record>, now: Timestamp) -> Json {
        match self {
            UpdateValue::Literal(json) => json.clone(),
            UpdateValue::Formula(expr) => formula::eval(expr, &RecordContext { record, previous, now }).to_json(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct FieldUpdate {
    pub name: String,
    pub field: String,
    pub value: UpdateValue,
}

/// Where a time trigger counts from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OffsetFrom {
    /// When the rule fired.
    TriggerDate,
    /// A date or datetime field of the record.
    Field(String),
}

/// Field updates a rule makes later (`timeTriggers`): at the trigger's time,
/// if the rule's criteria still hold for the record as it then is.
#[derive(Debug, Clone)]
pub struct TimeTrigger {
    /// The trigger's `id`, or its index in the list.
    pub id: String,
    /// Signed: before (negative) or after the reference time, in microseconds.
    pub offset_micros: i64,
    pub from: OffsetFrom,
    pub actions: Vec<FieldUpdate>,
}

impl TimeTrigger {
    /// When it is due for a rule that fired at `fired` on `record` (`None`
    /// when the reference field is empty or not a date).
    pub fn due(&self, record: &Record, fired: Timestamp) -> Option<Timestamp> {
        let base = match &self.from {
            OffsetFrom::TriggerDate => fired,
            OffsetFrom::Field(field) => match record.get(field)? {
                Value::Text(text) => Timestamp::parse(text)?,
                _ => return None,
            },
        };
        Some(Timestamp::from_micros(base.micros().saturating_add(self.offset_micros)))
    }
}

#[derive(Debug, Clone)]
pub struct WorkflowRule {
    pub name: String,
    pub object: String,
    pub trigger: Trigger,
    pub criteria: Option<Expr>,
    pub actions: Vec<FieldUpdate>,
    pub time_triggers: Vec<TimeTrigger>,
    /// `executionOrder`: lower runs first.
    pub order: u64,
    /// `reevaluateOnChange`: a change made by a rule's field update is
    /// evaluated by this rule too (by default a rule's own writes are not).
    pub reevaluate: bool,
    pub active: bool,
}

const PROPERTIES: [&str; 9] = ["name", "objectName", "triggerType", "criteria", "actions", "timeTriggers", "active", "executionOrder", "reevaluateOnChange"];
const ACTION_PROPERTIES: [&str; 4] = ["name", "type", "field", "value"];

impl WorkflowRule {
    pub fn parse(json: &Json, catalog: &Catalog) -> Result<WorkflowRule, DomainError> {
        let map = properties("workflow", json, &PROPERTIES)?;
        let rule_name = name("workflow", map)?;
        let what = format!("workflow '{rule_name}'");
        let object_name = text(&what, map, "objectName")?.ok_or_else(|| invalid(format!("{what}: 'objectName' is required")))?;
        let object = catalog.get(object_name).ok_or_else(|| invalid(format!("{what}: unknown object '{object_name}'")))?;
        let trigger = match text(&what, map, "triggerType")?.unwrap_or("on_create_or_update") {
            "on_create" => Trigger::Create,
            "on_update" => Trigger::Update,
            "on_create_or_update" => Trigger::CreateOrUpdate,
            "schedule" => Trigger::Schedule,
            "on_delete" => {
                return Err(invalid(format!("{what}: 'on_delete' rules are not supported: their field updates have no record left to change")));
            }
            other => return Err(invalid(format!("{what}: unknown triggerType '{other}' (on_create, on_update, on_create_or_update, schedule)"))),
        };
        let criteria = match text(&what, map, "criteria")? {
            Some(source) if !source.trim().is_empty() => Some(compile(&format!("{what}: criteria"), source, object)?),
            _ => None,
        };
        let mut actions = Vec::new();
        for action in map.get("actions").and_then(Json::as_array).map(Vec::as_slice).unwrap_or_default() {
            actions.push(field_update(&what, action, object)?);
        }
        let mut time_triggers = Vec::new();
        for (index, trigger) in map.get("timeTriggers").and_then(Json::as_array).map(Vec::as_slice).unwrap_or_default().iter().enumerate() {
            time_triggers.push(time_trigger(&what, index, trigger, object)?);
        }
        if !time_triggers.is_empty() && trigger == Trigger::Schedule {
            return Err(invalid(format!("{what}: a schedule rule has no time triggers (its job says when it runs)")));
        }
        Ok(WorkflowRule {
            name: rule_name.to_string(),
            object: object.name.clone(),
            trigger,
            criteria,
            actions,
            time_triggers,
            order: number(&what, map, "executionOrder", 100, 0, 1 << 53)?,
            reevaluate: boolean(&what, map, "reevaluateOnChange", false)?,
            active: boolean(&what, map, "active", true)?,
        })
    }

    /// Whether the rule acts on this change: active, triggered by it, and its criteria hold.
    pub fn applies(&self, change: Change, record: &Record, previous: Option<&Record>, now: Timestamp) -> bool {
        self.active && self.trigger.fires_on(change) && self.holds(record, previous, now)
    }

    /// Whether the criteria hold for a record (a rule without criteria always holds).
    pub fn holds(&self, record: &Record, previous: Option<&Record>, now: Timestamp) -> bool {
        self.criteria.as_ref().is_none_or(|c| formula::truthy(&formula::eval(c, &RecordContext { record, previous, now })))
    }

    /// The fields the rule's updates set that the record does not hold yet
    /// (empty when every update is already in place: nothing to write).
    pub fn patch(&self, record: &Record, previous: Option<&Record>, now: Timestamp) -> Map<String, Json> {
        patch_of(&self.actions, record, previous, now)
    }
}

fn compile(what: &str, source: &str, object: &ObjectDef) -> Result<Expr, DomainError> {
    let expr = formula::parse(source).map_err(|e| invalid(format!("{what}: {e}")))?;
    for path in expr.fields() {
        let first = path.split('.').next().unwrap_or(&path);
        if !SYSTEM_FIELDS.contains(&first) && object.field(first).is_none() {
            return Err(invalid(format!("{what}: unknown field '{path}' of '{}'", object.name)));
        }
    }
    Ok(expr)
}

fn field_update(what: &str, json: &Json, object: &ObjectDef) -> Result<FieldUpdate, DomainError> {
    let kind = json.get("type").and_then(Json::as_str).unwrap_or_default();
    let action_name = json.get("name").and_then(Json::as_str).unwrap_or_default();
    let what = format!("{what} action '{action_name}'");
    if kind != "field_update" {
        return Err(invalid(format!("{what}: action type '{kind}' is not supported by this server (supported: field_update)")));
    }
    let map = properties(&what, json, &ACTION_PROPERTIES)?;
    if action_name.is_empty() {
        return Err(invalid(format!("{what}: an action needs a 'name'")));
    }
    let field_name = text(&what, map, "field")?.ok_or_else(|| invalid(format!("{what}: 'field' is required")))?;
    update(&what, action_name, field_name, map.get("value"), object)
}

/// One field update as any automation action declares it: a field the
/// server lets automation set, and a value or a formula over the record.
pub(super) fn update(what: &str, action_name: &str, field_name: &str, value: Option<&Json>, object: &ObjectDef) -> Result<FieldUpdate, DomainError> {
    let field = object.field(field_name).ok_or_else(|| invalid(format!("{what}: unknown field '{field_name}' of '{}'", object.name)))?;
    // Read-only fields may be set: they exist for automation to fill.
    if matches!(field.field_type, FieldType::Formula | FieldType::Autonumber | FieldType::Password) {
        return Err(invalid(format!("{what}: field '{field_name}' cannot be set by a rule (formula, autonumber or password)")));
    }
    let value = match value {
        None => return Err(invalid(format!("{what}: 'value' is required (null clears the field)"))),
        Some(Json::String(s)) if s.starts_with('=') => UpdateValue::Formula(compile(what, &s[1..], object)?),
        Some(other) => UpdateValue::Literal(other.clone()),
    };
    Ok(FieldUpdate { name: action_name.to_string(), field: field_name.to_string(), value })
}

const TRIGGER_PROPERTIES: [&str; 7] = ["id", "timeLength", "timeUnit", "offsetDirection", "offsetFrom", "dateField", "actions"];

fn time_trigger(what: &str, index: usize, json: &Json, object: &ObjectDef) -> Result<TimeTrigger, DomainError> {
    let id = json.get("id").and_then(Json::as_str).map(str::to_string).unwrap_or_else(|| index.to_string());
    let what = format!("{what} time trigger '{id}'");
    let map = properties(&what, json, &TRIGGER_PROPERTIES)?;
    let length = map.get("timeLength").and_then(Json::as_i64).ok_or_else(|| invalid(format!("{what}: 'timeLength' is required (a whole number)")))?;
    let unit: i64 = match text(&what, map, "timeUnit")?.unwrap_or("hours") {
        "minutes" => 60_000_000,
        "hours" => 3_600_000_000,
        "days" => 86_400_000_000,
        other => return Err(invalid(format!("{what}: unknown timeUnit '{other}' (minutes, hours, days)"))),
    };
    let sign = match text(&what, map, "offsetDirection")?.unwrap_or("after") {
        "after" => 1,
        "before" => -1,
        other => return Err(invalid(format!("{what}: unknown offsetDirection '{other}' (before, after)"))),
    };
    let from = match text(&what, map, "offsetFrom")?.unwrap_or("trigger_date") {
        "trigger_date" => OffsetFrom::TriggerDate,
        "date_field" => {
            let field = text(&what, map, "dateField")?.ok_or_else(|| invalid(format!("{what}: 'dateField' is required with offsetFrom date_field")))?;
            match object.field(field) {
                Some(f) if matches!(f.field_type, FieldType::Date | FieldType::Datetime) => OffsetFrom::Field(field.to_string()),
                Some(_) => return Err(invalid(format!("{what}: field '{field}' is not a date or datetime"))),
                None if ["created_at", "updated_at"].contains(&field) => OffsetFrom::Field(field.to_string()),
                None => return Err(invalid(format!("{what}: unknown field '{field}' of '{}'", object.name))),
            }
        }
        other => return Err(invalid(format!("{what}: unknown offsetFrom '{other}' (trigger_date, date_field)"))),
    };
    let offset_micros = length.checked_mul(unit).and_then(|o| o.checked_mul(sign)).ok_or_else(|| invalid(format!("{what}: the offset is too large")))?;
    let mut actions = Vec::new();
    for action in map.get("actions").and_then(Json::as_array).map(Vec::as_slice).unwrap_or_default() {
        actions.push(field_update(&what, action, object)?);
    }
    Ok(TimeTrigger { id, offset_micros, from, actions })
}

impl WorkflowRule {
    /// What a time trigger's updates set that the record does not hold yet.
    pub fn trigger_patch(&self, trigger: &TimeTrigger, record: &Record, now: Timestamp) -> Map<String, Json> {
        patch_of(&trigger.actions, record, None, now)
    }
}

fn patch_of(actions: &[FieldUpdate], record: &Record, previous: Option<&Record>, now: Timestamp) -> Map<String, Json> {
    let mut patch = Map::new();
    for action in actions {
        let value = action.value.evaluate(record, previous, now);
        let current = record.get(&action.field).map(Value::to_json).unwrap_or(Json::Null);
        if current != value {
            patch.insert(action.field.clone(), value);
        }
    }
    patch
}
