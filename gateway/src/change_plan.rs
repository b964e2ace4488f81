//! `objectstack migrate --app PATH [--dry-run]`: what loading an app's
//! definitions into a store would change, decided exactly as `serve` would
//! at start (the same command, the same checks), shown before anything is
//! written: objects defined, definitions changed, and the records each
//! field's migration would change; or the refusal, with what breaks. Without
//! `--dry-run` the change is then made (definitions and migrated records in
//! one append); seed data is left to `serve`.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use commands::service::{CommandMeta, CommandService};
use commands::store::EventStore;
use domain::event::EventPayload;

use crate::app_file::read_or_bundled;

/// Plans (and with `apply`, makes) the definition changes of the app at
/// `path`; the plan in lines.
pub async fn plan(store: Arc<dyn EventStore>, path: Option<&Path>, apply: bool) -> anyhow::Result<Vec<String>> {
    let files = read_or_bundled(path)?;
    let errors: Vec<String> = files.errors().map(|(f, p)| format!("{}: {p}", f.display())).collect();
    if !errors.is_empty() {
        anyhow::bail!("the app has errors (see `objectstack validate`):\n{}", errors.join("\n"));
    }
    let app = domain::metadata::load_app(&files.app).context("reading the app")?;
    let commands = CommandService::start(store).await.context("reading the event log")?;
    let command = commands::seed::definitions(&app);
    let planned = commands.dry_run(std::slice::from_ref(&command), &CommandMeta::system()).map_err(|(_, e)| anyhow::anyhow!("{e}"))?;
    let mut lines = Vec::new();
    // (object, field) -> records changed.
    let mut migrated: BTreeMap<(String, String), usize> = BTreeMap::new();
    for (_, payload) in &planned {
        match payload {
            EventPayload::ObjectDefined(e) => lines.push(format!("object {}: defined (new)", e.name)),
            EventPayload::ObjectAltered(e) => lines.push(format!("object {}: definition changed", e.name)),
            EventPayload::RecordUpdated(e) => {
                for change in e.changes.iter().filter(|c| !["updated_at", "modified_by"].contains(&c.field.as_str())) {
                    *migrated.entry((e.object.clone(), change.field.clone())).or_default() += 1;
                }
            }
            _ => {}
        }
    }
    for ((object, field), n) in &migrated {
        let how = app.migrations.get(object).and_then(|m| m.get(field)).map(describe).unwrap_or_default();
        lines.push(format!("  {object}.{field}: {n} record(s) migrated ({how})"));
    }
    if planned.is_empty() {
        lines.push("the store already holds these definitions: nothing to change".into());
    } else if apply {
        let outcome = commands.execute(command, CommandMeta::system()).await.map_err(|e| anyhow::anyhow!("{e}"))?;
        lines.push(format!("applied: {} event(s), the log is at position {}", outcome.events.len(), outcome.position));
    } else {
        lines.push(format!("dry run: {} event(s) would be appended; nothing was written", planned.len()));
    }
    commands.settled().await;
    Ok(lines)
}

fn describe(migration: &domain::metadata::migration::FieldMigration) -> String {
    let mut parts = Vec::new();
    if let Some(value) = &migration.backfill {
        parts.push(format!("backfill {value}"));
    }
    if !migration.remap.is_empty() {
        let pairs: Vec<String> = migration.remap.iter().map(|(old, new)| format!("{old} -> {new}")).collect();
        parts.push(format!("remap {}", pairs.join(", ")));
    }
    parts.join("; ")
}
