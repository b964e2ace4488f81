//! Batches (`/batch` create, update, upsert, delete; `/createMany`,
//! `/updateMany`, `/deleteMany`): at most 200 records. `atomic` batches (the
//! default) are one append: all records change or none does. Every record
//! goes through the caller's write guard like a single write.

use commands::service::{Command, Outcome};
use commands::CommandError;
use domain::value::record_to_json;
use domain::ErrorCode;
use serde_json::{json, Map, Value as Json};

use super::caller::Caller;
use super::writes::{self, take_id};
use crate::app::System;
use crate::error::json_kind as kind;
use crate::error::ApiError;

/// Most records in one batch.
pub const MAX_BATCH: usize = 200;

#[derive(Clone, Copy, PartialEq)]
pub enum Operation {
    Create,
    Update,
    Upsert,
    Delete,
}

impl Operation {
    pub fn name(self) -> &'static str {
        match self {
            Operation::Create => "create",
            Operation::Update => "update",
            Operation::Upsert => "upsert",
            Operation::Delete => "delete",
        }
    }
}

pub struct Options {
    atomic: bool,
    return_records: bool,
    continue_on_error: bool,
    validate_only: bool,
}

fn bad(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::ValidationError, message)
}

pub fn options(json: Option<&Json>, default_return: bool) -> Result<Options, ApiError> {
    let map = match json {
        None | Some(Json::Null) => Map::new(),
        Some(Json::Object(map)) => map.clone(),
        Some(other) => return Err(bad(format!("options must be an object, got {}", kind(other)))),
    };
    let flag = |key: &str, default: bool| -> Result<bool, ApiError> {
        match map.get(key) {
            None => Ok(default),
            Some(Json::Bool(b)) => Ok(*b),
            Some(other) => Err(bad(format!("options.{key} must be true or false, got {other}"))),
        }
    };
    if let Some(unknown) = map.keys().find(|k| !["atomic", "returnRecords", "continueOnError", "validateOnly"].contains(&k.as_str())) {
        return Err(bad(format!("unknown batch option '{unknown}'")));
    }
    Ok(Options {
        atomic: flag("atomic", true)?,
        return_records: flag("returnRecords", default_return)?,
        continue_on_error: flag("continueOnError", false)?,
        validate_only: flag("validateOnly", false)?,
    })
}

/// One batch item turned into a command.
fn command_for(system: &System, object: &str, operation: Operation, item: &Json, index: usize) -> Result<Command, ApiError> {
    let map = item.as_object().ok_or_else(|| bad(format!("records[{index}] must be an object, got {}", kind(item))))?;
    if let Some(unknown) = map.keys().find(|k| !["id", "data", "externalId"].contains(&k.as_str())) {
        return Err(bad(format!("records[{index}]: unknown key '{unknown}' (expected id, data, externalId)")));
    }
    let id = match map.get("id") {
        None | Some(Json::Null) => None,
        Some(Json::String(s)) => Some(s.clone()),
        Some(other) => return Err(bad(format!("records[{index}].id must be a string, got {}", kind(other)))),
    };
    let data = match map.get("data") {
        None | Some(Json::Null) => Map::new(),
        Some(Json::Object(d)) => d.clone(),
        Some(other) => return Err(bad(format!("records[{index}].data must be an object, got {}", kind(other)))),
    };
    let need_id = |id: Option<String>| id.ok_or_else(|| bad(format!("records[{index}] needs an id for {}", operation.name())));
    Ok(match operation {
        Operation::Create => {
            let mut data = data;
            let inner = take_id(&mut data)?;
            Command::Create { object: object.into(), id: id.or(inner), data }
        }
        Operation::Update => Command::Update { object: object.into(), id: need_id(id)?, patch: data, expected_version: None },
        Operation::Delete => Command::Delete { object: object.into(), id: need_id(id)?, expected_version: None },
        Operation::Upsert => {
            let existing = match (&id, map.get("externalId").and_then(Json::as_str)) {
                (Some(id), _) => system.commands.exists(object, id).then(|| id.clone()),
                (None, Some(field)) => {
                    let value = data.get(field).ok_or_else(|| bad(format!("records[{index}]: externalId '{field}' is not in data")))?;
                    system.commands.find_by_field(object, field, &domain::value::Value::from_json(value))
                }
                (None, None) => None,
            };
            match existing {
                Some(id) => Command::Update { object: object.into(), id, patch: data, expected_version: None },
                None => Command::Create { object: object.into(), id, data },
            }
        }
    })
}

fn error_entry(index: usize, error: ApiError) -> Json {
    let body = error.body();
    json!({"index": index, "success": false, "error": body["message"], "errors": [body]})
}

pub async fn run(
    system: &System,
    caller: &Caller,
    object: String,
    idempotency_key: Option<String>,
    operation: Operation,
    items: Vec<Json>,
    options: Options,
) -> Result<(u64, Json), ApiError> {
    if items.is_empty() || items.len() > MAX_BATCH {
        return Err(ApiError::new(ErrorCode::MaxRecordsExceeded, format!("a batch holds 1 to {MAX_BATCH} records, got {}", items.len())));
    }
    let object = system.reader.catalog().require(&object)?.name.clone();
    let mut commands: Vec<Command> = items.iter().enumerate().map(|(i, item)| command_for(system, &object, operation, item, i)).collect::<Result<_, _>>()?;
    let total = commands.len();
    let meta = writes::meta(system, caller, Some(&object), idempotency_key, &commands)?;
    writes::wait_for_seen(system, caller).await?;
    for command in commands.iter_mut() {
        system.hooks.before(caller.principal(), command)?;
        writes::prepare(caller, &meta, command).await?;
    }
    let operations: Vec<_> = commands.iter().map(super::hooks::operation_of).collect();
    let after = |index: usize, outcome: &Outcome| {
        if let Some(Some(operation)) = operations.get(index) {
            system.hooks.after(caller.principal(), *operation, outcome);
        }
    };
    let mut results: Vec<Json> = Vec::with_capacity(total);
    let mut position = 0;
    if options.validate_only {
        match system.commands.validate_only(&commands, &meta) {
            Ok(()) => results.extend((0..total).map(|i| json!({"index": i, "success": true}))),
            Err((index, error)) => results.push(error_entry(index, error.into())),
        }
    } else if options.atomic {
        match system.commands.execute_all(commands, meta).await {
            Ok(outcomes) => {
                position = outcomes.iter().map(|o| o.position).max().unwrap_or(0);
                for (index, outcome) in outcomes.iter().enumerate() {
                    after(index, outcome);
                    results.push(success_entry(system, caller, index, outcome, options.return_records));
                }
            }
            Err((index, error)) => {
                // Nothing was written: every record reports the batch's failure.
                for other in 0..total {
                    if other == index {
                        results.push(error_entry(index, error.clone().into()));
                    } else {
                        let reason = format!("not applied: the atomic batch failed at record {index}");
                        results.push(json!({"index": other, "success": false, "error": reason}));
                    }
                }
            }
        }
    } else {
        for (index, command) in commands.into_iter().enumerate() {
            let mut one = meta.clone();
            one.idempotency_key = meta.idempotency_key.as_ref().map(|k| format!("{k}#{index}"));
            match system.commands.execute(command, one).await {
                Ok(outcome) => {
                    position = position.max(outcome.position);
                    after(index, &outcome);
                    results.push(success_entry(system, caller, index, &outcome, options.return_records));
                }
                Err(CommandError::Store(store)) => return Err(store.into()),
                Err(error) => {
                    results.push(error_entry(index, error.into()));
                    if !options.continue_on_error {
                        break;
                    }
                }
            }
        }
    }
    let succeeded = results.iter().filter(|r| r["success"] == json!(true)).count();
    let failed = if options.atomic && succeeded < total { total } else { total - succeeded };
    let succeeded = total - failed;
    Ok((position, json!({"success": failed == 0, "operation": operation.name(), "total": total, "succeeded": succeeded, "failed": failed, "results": results})))
}

fn success_entry(system: &System, caller: &Caller, index: usize, outcome: &Outcome, with_record: bool) -> Json {
    let mut entry = json!({"index": index, "id": outcome.id, "success": true});
    if with_record {
        let record = writes::written_record(system, caller, outcome).map(|r| record_to_json(&r)).unwrap_or(Json::Null);
        entry["record"] = record.clone();
        entry["data"] = record;
    }
    entry
}
