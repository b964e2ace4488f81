//! When the write model and the in-process read models (query and audit on
//! the embedded store, analytics) are saved ([`commands::snapshot`], [`projections::snapshot`]): at a clean stop, once they have caught up
//! with the log, and while the server runs, whenever a model has moved past
//! its last save by an eighth of its position and at least
//! [`MIN_EVENTS`] (checked every [`CHECK_EVERY`]). So a start after a clean
//! stop folds nothing, one after a crash folds a bounded tail, and the bytes
//! written stay a small multiple of the models' growth. The write model is
//! encoded under its lock, so writes wait while it is (see the note on
//! [`commands::service::CommandService::save_snapshot`]). At a clean stop it
//! is also saved again when the log has not moved but it now shares records
//! with the query model that its file holds whole (a start that folded the
//! log saved them before the sharing reached them), so the next start takes
//! them from the query model instead of holding a copy of each.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use commands::service::{CommandService, SaveWhile};
use commands::snapshot::SnapshotDir;
use projections::snapshot::{saved_at, Snapshot};

use crate::app::System;

/// Fewer new events than this never cause a save while running.
pub const MIN_EVENTS: u64 = 10_000;
pub const CHECK_EVERY: Duration = Duration::from_secs(30);

/// Saves every model at a stop, after waiting (at most 2 s) for each to reach the log's head.
pub async fn save_at_stop(system: &System) {
    let Some(dir) = &system.model_snapshots else { return };
    let head = *system.commands.store().head().borrow();
    for handle in [&system.query, &system.audit, &system.analytics] {
        handle.wait_for(head, Duration::from_secs(2)).await;
    }
    system.commands.wait_applied(head, Duration::from_secs(2)).await;
    // A model already saved at its position (nothing new since) is not written again.
    let mut last = Saved::from_files(dir);
    save_due(system, dir, &mut last, true).await;
}

/// Saves the models as they grow, until the system goes.
pub fn keep(system: &Arc<System>) {
    let Some(dir) = system.model_snapshots.clone() else { return };
    let weak = Arc::downgrade(system);
    let mut last = Saved::from_files(&dir);
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(CHECK_EVERY).await;
            let Some(system) = weak.upgrade() else { return };
            save_due(&system, &dir, &mut last, false).await;
        }
    });
}

/// The position each model was last saved at.
#[derive(Default)]
struct Saved {
    write: u64,
    query: u64,
    audit: u64,
    analytics: u64,
}

impl Saved {
    fn from_files(dir: &SnapshotDir) -> Saved {
        Saved {
            write: CommandService::snapshot_saved_at(dir).unwrap_or(0),
            query: saved_at::<projections::QueryModel>(dir).unwrap_or(0),
            audit: saved_at::<projections::audit_model::AuditModel>(dir).unwrap_or(0),
            analytics: saved_at::<projections::analytics::AnalyticsModel>(dir).unwrap_or(0),
        }
    }
}

/// Saves each model that is due (every model that moved, when `always`).
/// At a stop (`always`) nothing else runs, so the models are saved side by
/// side, each from a task of its own (each is encoded on a thread of its
/// own, the write model's, audit's and analytics' under their locks);
/// while serving, one after another, so saves never take both cores from
/// the requests.
async fn save_due(system: &System, dir: &SnapshotDir, last: &mut Saved, always: bool) {
    let store = system.commands.store().clone();
    let write = save_write(system.commands.clone(), dir.clone(), last.write, always);
    let query = save_in_process(dir.clone(), store.clone(), system.reader.memory_model(), last.query, always);
    let audit = save_in_process(dir.clone(), store.clone(), system.audit_reader.memory_model(), last.audit, always);
    let analytics = save_in_process(dir.clone(), store, system.analytics_reader.memory_model(), last.analytics, always);
    if always {
        let joined = |task: Result<u64, tokio::task::JoinError>, before: u64| task.unwrap_or(before);
        let (query, audit, analytics, write) = tokio::join!(tokio::spawn(query), tokio::spawn(audit), tokio::spawn(analytics), tokio::spawn(write));
        *last = Saved {
            write: joined(write, last.write),
            query: joined(query, last.query),
            audit: joined(audit, last.audit),
            analytics: joined(analytics, last.analytics),
        };
    } else {
        last.write = write.await;
        last.query = query.await;
        last.audit = audit.await;
        last.analytics = analytics.await;
    }
}

/// Saves the write model when it is due; the position it is saved at now.
async fn save_write(commands: Arc<CommandService>, dir: SnapshotDir, saved: u64, always: bool) -> u64 {
    let position = commands.applied();
    let moved = position != saved && (always || due(position, saved));
    if !(moved || always && commands.snapshot_shares_more()) {
        return saved;
    }
    let started = std::time::Instant::now();
    let mode = if always { SaveWhile::Stopped } else { SaveWhile::Serving };
    match commands.save_snapshot(&dir, mode).await {
        Ok(Some(at)) => {
            tracing::info!(model = "write", position = at, seconds = started.elapsed().as_secs_f64(), "model saved");
            at
        }
        Ok(None) => saved,
        Err(error) => {
            tracing::warn!(model = "write", %error, "the write model could not be saved; the next start folds more of the log");
            saved
        }
    }
}

/// Whether a model at `position`, last saved at `saved`, is due a save.
pub fn due(position: u64, saved: u64) -> bool {
    let moved = position.saturating_sub(saved);
    moved >= MIN_EVENTS && moved >= position / 8
}

/// Saves a model that may live in PostgreSQL instead ([`save_one`] when it
/// is in process; when it is not, there is nothing to save).
async fn save_in_process<M: Snapshot>(
    dir: SnapshotDir,
    store: Arc<dyn commands::store::EventStore>,
    model: Option<Arc<RwLock<M>>>,
    saved: u64,
    always: bool,
) -> u64 {
    match model {
        Some(model) => save_one(dir, store, model, saved, always).await,
        None => saved,
    }
}

/// Saves a read model when it is due; the position it is saved at now.
async fn save_one<M: Snapshot>(dir: SnapshotDir, store: Arc<dyn commands::store::EventStore>, model: Arc<RwLock<M>>, saved: u64, always: bool) -> u64 {
    let position = model.read().expect("model lock").checkpoint();
    if position == saved || !(always || due(position, saved)) {
        return saved;
    }
    let started = std::time::Instant::now();
    match projections::snapshot::save(&dir, &store, &model).await {
        Ok(Some(at)) => {
            tracing::info!(model = M::NAME, position = at, seconds = started.elapsed().as_secs_f64(), "model saved");
            at
        }
        Ok(None) => saved,
        Err(error) => {
            tracing::warn!(model = M::NAME, %error, "a read model could not be saved; the next start folds more of the log");
            saved
        }
    }
}
