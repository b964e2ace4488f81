//! Loading an app through commands: its object definitions (one metadata
//! command, so objects may reference each other), the built-in system user,
//! then its seed records.
//!
//! Seed records are written once: each carries an idempotency key derived from
//! its content, so a restart does not duplicate them nor undo later edits.
//! Lookups may name their target by the target seed set's external id
//! (contacts name their account by name); a required `user` lookup left out
//! is the system user; `"<now+3d>"` placeholders become dates relative to now.
//! Object-level rules are skipped for seed data (the app's hooks, which would
//! fill the fields such rules ask for, cannot run here); value rules apply,
//! and a record that breaks them is skipped with a warning (see [`SeedReport`]).

use domain::metadata::{builtin_objects, AppDef, FieldType, MetadataCommand, ObjectSpec};
use domain::value::Value;
use domain::Timestamp;
use serde_json::{Map, Value as Json};

use crate::error::CommandError;
use crate::service::{Command, CommandMeta, CommandService};

/// The id of the built-in user that owns seed data and system actions.
pub const SYSTEM_USER: &str = "system";

#[derive(Debug, Default, Clone, PartialEq)]
pub struct SeedReport {
    /// Object definitions defined or altered.
    pub objects_changed: usize,
    /// Seed records written now (0 on a restart).
    pub records_written: usize,
    /// Seed records refused by validation, with the reason. They are skipped
    /// (and logged) so that one bad record does not keep the app from loading.
    pub skipped: Vec<String>,
}

/// A seed record that cannot be written, named by object and index.
#[derive(Debug, thiserror::Error)]
#[error("seed record {index} of '{object}': {source}")]
pub struct SeedError {
    pub object: String,
    pub index: usize,
    #[source]
    pub source: CommandError,
}

fn wrap(object: &str, index: usize) -> impl FnOnce(CommandError) -> SeedError {
    let object = object.to_string();
    move |source| SeedError { object, index, source }
}

fn content_key(object: &str, record: &Map<String, Json>) -> String {
    let hash = domain::hash::fnv64(Json::Object(record.clone()).to_string().as_bytes());
    format!("seed:{object}:{hash:016x}")
}

/// `<now>`, `<now+3d>`, `<now-2d>`: a moment relative to `now`.
fn placeholder(text: &str, now: Timestamp) -> Option<Timestamp> {
    let inner = text.strip_prefix("<now")?.strip_suffix('>')?;
    if inner.is_empty() {
        return Some(now);
    }
    let days: i64 = inner.strip_suffix('d')?.parse().ok()?;
    Some(now.plus_days(days))
}

/// The command that puts the built-in objects and the app's definitions,
/// each with the migration the app gives for it.
pub fn definitions(app: &AppDef) -> Command {
    let mut objects: Vec<ObjectSpec> = builtin_objects().into_iter().map(|definition| ObjectSpec::new(definition, Some("system".into()))).collect();
    objects.extend(app.objects.iter().map(|definition| {
        let mut spec = ObjectSpec::new(definition.clone(), app.manifest.namespace.clone());
        spec.migration = definition.get("name").and_then(Json::as_str).and_then(|name| app.migrations.get(name)).cloned();
        spec
    }));
    Command::Metadata(MetadataCommand::PutObjects { objects })
}

/// Loads `app` into the service. Idempotent: a second load writes nothing new.
pub async fn load_app(service: &CommandService, app: &AppDef, now: Timestamp) -> Result<SeedReport, SeedError> {
    let outcome = service.execute(definitions(app), CommandMeta::system()).await.map_err(wrap("app", 0))?;
    let mut report = SeedReport { objects_changed: outcome.events.len(), ..SeedReport::default() };

    let mut system_user = Map::new();
    system_user.insert("name".into(), Json::String("System".into()));
    let user = Command::Create { object: "user".into(), id: Some(SYSTEM_USER.into()), data: system_user };
    match service.execute(user, CommandMeta::system().with_key("seed:user:system")).await {
        Ok(outcome) => report.records_written += usize::from(!outcome.replayed),
        Err(CommandError::Rejected(domain::DomainError::RecordExists { .. })) => {}
        Err(e) => return Err(wrap("user", 0)(e)),
    }

    let catalog = service.catalog();
    for set in &app.seed {
        let object = catalog.get(&set.object).cloned().ok_or_else(|| wrap(&set.object, 0)(domain::DomainError::ObjectNotFound(set.object.clone()).into()))?;
        for (index, raw) in set.records.iter().enumerate() {
            let mut data = raw.clone();
            let given_id = match data.remove("id").or_else(|| data.remove("_id")) {
                Some(Json::String(id)) => Some(id),
                _ => None,
            };
            for field in &object.fields {
                let value = data.get(&field.name).cloned();
                match value {
                    Some(Json::String(text)) => {
                        if let Some(moment) = placeholder(&text, now) {
                            let resolved = if field.field_type == FieldType::Date { moment.to_date_string() } else { moment.to_rfc3339() };
                            data.insert(field.name.clone(), Json::String(resolved));
                        } else if field.field_type.is_reference() {
                            let target = field.reference.as_deref().unwrap_or_default();
                            if !service.exists(target, &text) {
                                let by = app.seed.iter().find(|s| s.object == target).and_then(|s| s.external_id.clone());
                                if let Some(id) = by.and_then(|f| service.find_by_field(target, &f, &Value::Text(text.clone()))) {
                                    data.insert(field.name.clone(), Json::String(id));
                                }
                            }
                        }
                    }
                    None if field.required && field.field_type.is_reference() && field.reference.as_deref() == Some("user") => {
                        data.insert(field.name.clone(), Json::String(SYSTEM_USER.into()));
                    }
                    _ => {}
                }
            }
            let existing = match (&set.external_id, set.mode.as_str()) {
                (Some(key), "upsert" | "replace" | "ignore") => data.get(key).and_then(|v| service.find_by_field(&object.name, key, &Value::from_json(v))),
                _ => None,
            };
            let command = match existing {
                Some(_) if set.mode == "ignore" => continue,
                Some(id) => Command::Update { object: object.name.clone(), id, patch: data, expected_version: None },
                None => Command::Create { object: object.name.clone(), id: given_id, data },
            };
            let mut meta = CommandMeta::system().with_key(content_key(&object.name, raw));
            meta.skip_rules = true;
            match service.execute(command, meta).await {
                Ok(outcome) => report.records_written += usize::from(!outcome.replayed && !outcome.events.is_empty()),
                Err(CommandError::Rejected(rejection)) => {
                    let reason = format!("seed record {index} of '{}': {rejection}", object.name);
                    tracing::warn!(object = %object.name, index, error = %rejection, "skipping invalid seed record");
                    report.skipped.push(reason);
                }
                Err(other) => return Err(wrap(&object.name, index)(other)),
            }
        }
    }
    Ok(report)
}
