//! Projection administration (needs `manage_projections`): status (version,
//! position, lag, state, rebuild progress, parked events), Prometheus
//! metrics, live rebuilds (one per projection at a time, in the background;
//! readers keep being served and switch at one position), and the dead
//! letters: retry one, or skip it (an event in the log).

use std::sync::Arc;

use domain::security::SystemPermission;
use domain::ErrorCode;
use projections::rebuild::{rebuild, Progress};
use serde_json::{json, Value as Json};
use tokio::sync::watch;

use super::caller::Caller;
use crate::app::System;
use crate::error::ApiError;

const NAMES: [&str; 5] = ["query", "audit", "search", "analytics", "realtime"];

fn handle_of<'a>(system: &'a System, name: &str) -> &'a projections::ProjectionHandle {
    match name {
        "query" => &system.query,
        "search" => &system.search,
        "analytics" => &system.analytics,
        "realtime" => &system.realtime_handle,
        _ => &system.audit,
    }
}

fn status_of(system: &System, name: &str) -> Json {
    let head = *system.commands.store().head().borrow();
    let handle = handle_of(system, name);
    let letters = handle.dead_letters();
    let stalled = handle.stalled();
    let position = handle.checkpoint();
    let rebuilds = system.rebuilds.lock().expect("rebuilds lock");
    let (generation, progress) = rebuilds.get(name).cloned().unwrap_or((0, None));
    let progress: Option<Progress> = progress.map(|rx| rx.borrow().clone());
    let rebuilding = progress.as_ref().is_some_and(|p| !p.done);
    let in_postgres = match name {
        "query" => matches!(system.reader, projections::QueryReader::Postgres(_)),
        "audit" => matches!(system.audit_reader, projections::AuditReader::Postgres(_)),
        "analytics" => analytics_by_sql(system),
        _ => false,
    };
    let store = if in_postgres { "postgres" } else { "memory" };
    json!({
        "name": name,
        "version": generation + 1,
        "store": store,
        "position": position,
        "head": head,
        "lag": head.saturating_sub(position),
        // Rebuilding, stalled (a store error it keeps retrying), degraded
        // (events parked), else live or catching up.
        "state": if rebuilding { "rebuilding" } else if stalled.is_some() { "stalled" } else if !letters.is_empty() { "degraded" } else if position >= head { "live" } else { "catching_up" },
        "lastError": stalled,
        "deadLetters": letters.iter().map(projections::DeadLetter::to_json).collect::<Vec<_>>(),
        "rebuild": progress.map(|p| json!({
            "applied": p.applied, "head": p.head, "eventsPerSecond": p.events_per_second.round(), "done": p.done, "matchedLive": p.matched_live,
        })),
    })
}

fn known(name: &str) -> Result<(), ApiError> {
    if NAMES.contains(&name) {
        Ok(())
    } else {
        Err(ApiError::new(ErrorCode::EndpointNotFound, format!("no projection named '{name}' (known: {})", NAMES.join(", "))))
    }
}

/// One projection's status.
pub fn status(system: &System, caller: &Caller, name: &str) -> Result<Json, ApiError> {
    caller.require(SystemPermission::ManageProjections)?;
    known(name)?;
    Ok(status_of(system, name))
}

/// Every process's status (workflow rules, webhooks, jobs): they follow the log as projections do.
pub fn processes(system: &System, caller: &Caller) -> Result<Vec<Json>, ApiError> {
    caller.require(SystemPermission::ManageProjections)?;
    Ok(super::automation::processes(system))
}

/// Every projection's status.
pub fn all(system: &System, caller: &Caller) -> Result<Vec<Json>, ApiError> {
    caller.require(SystemPermission::ManageProjections)?;
    Ok(NAMES.iter().map(|n| status_of(system, n)).collect())
}

/// A projection gauge: its name, its help, and its value in a status.
type Gauge = (&'static str, &'static str, fn(&Json) -> u64);

/// Prometheus text: the log head, each projection's position, lag, version,
/// parked events and whether it is stalled, and the request metrics.
pub fn metrics(system: &System, caller: &Caller) -> Result<String, ApiError> {
    caller.require(SystemPermission::ManageProjections)?;
    let mut out = String::new();
    let head = *system.commands.store().head().borrow();
    scalar(&mut out, "objectstack_log_head", "gauge", "Last committed log position known to this node.", head);
    let statuses: Vec<Json> = NAMES.iter().map(|n| status_of(system, n)).collect();
    let gauges: [Gauge; 5] = [
        ("objectstack_projection_position", "Last log position a projection applied.", |s| s["position"].as_u64().unwrap_or(0)),
        ("objectstack_projection_lag", "Events a projection is behind the log head.", |s| s["lag"].as_u64().unwrap_or(0)),
        ("objectstack_projection_version", "Generation of a projection (1 + live rebuilds swapped in).", |s| s["version"].as_u64().unwrap_or(0)),
        ("objectstack_projection_dead_letters", "Events a projection parked because it could not apply them.", |s| {
            s["deadLetters"].as_array().map_or(0, |letters| letters.len() as u64)
        }),
        ("objectstack_projection_stalled", "1 while a projection keeps failing on its store.", |s| u64::from(!s["lastError"].is_null())),
    ];
    for (metric, help, value) in gauges {
        out.push_str(&format!("# HELP {metric} {help}\n# TYPE {metric} gauge\n"));
        for status in &statuses {
            out.push_str(&format!("{metric}{{projection=\"{}\"}} {}\n", status["name"].as_str().unwrap_or(""), value(status)));
        }
    }
    let processes = system.processes().reports();
    type ProcessGauge = (&'static str, &'static str, &'static str, fn(&commands::process::StatusReport) -> u64);
    let process_gauges: [ProcessGauge; 4] = [
        ("objectstack_process_position", "gauge", "Last log position a process (workflow rules, a webhook, a job) handled.", |r| r.position),
        ("objectstack_process_lag", "gauge", "Events a process is behind the log head.", |r| r.lag),
        ("objectstack_process_steps_total", "counter", "Steps a process completed (rule writes, deliveries, job runs).", |r| r.steps),
        ("objectstack_process_failures_total", "counter", "Steps a process could not complete (see the logs and /api/v1/automation).", |r| r.failures),
    ];
    for (metric, kind, help, value) in process_gauges {
        out.push_str(&format!("# HELP {metric} {help}\n# TYPE {metric} {kind}\n"));
        for report in &processes {
            out.push_str(&format!("{metric}{{process=\"{}\"}} {}\n", report.name, value(report)));
        }
    }
    if let Some(feed) = &system.feed {
        out.push_str(&feed_metrics(feed));
    }
    out.push_str(&append_metrics(system.commands.append_counts()));
    out.push_str(&realtime_metrics(system.hub.stats()));
    let (snapshots, rows) = system.as_of_folds.history().kept();
    scalar(&mut out, "objectstack_as_of_snapshots", "gauge", "Snapshots of the query model kept for as-of reads.", snapshots as u64);
    scalar(&mut out, "objectstack_as_of_snapshot_rows", "gauge", "Rows those snapshots hold together (shared with the model, not copies).", rows as u64);
    out.push_str(&system.http_metrics.render());
    Ok(out)
}

/// One unlabelled metric: its help, type and value.
fn scalar(out: &mut String, metric: &str, kind: &str, help: &str, value: u64) {
    out.push_str(&format!("# HELP {metric} {help}\n# TYPE {metric} {kind}\n{metric} {value}\n"));
}

/// What this node's commands appended.
fn append_metrics(counts: commands::service::AppendCounts) -> String {
    let mut out = String::new();
    scalar(&mut out, "objectstack_appends_total", "counter", "Appends this node committed (one per command or atomic batch).", counts.commits);
    scalar(&mut out, "objectstack_events_appended_total", "counter", "Events those appends committed.", counts.events);
    let conflicts = "Appends that lost a race on a record version or a unique value (decided again or refused).";
    scalar(&mut out, "objectstack_append_conflicts_total", "counter", conflicts, counts.conflicts);
    scalar(&mut out, "objectstack_append_failures_total", "counter", "Appends the event store could not commit.", counts.failures);
    out
}

/// The realtime hub: connections and subscriptions now, deliveries, and
/// connections it closed (too slow to keep up, or their rights changed).
fn realtime_metrics(stats: projections::live::HubStats) -> String {
    let mut out = String::new();
    let open = "Realtime connections open (WebSocket and GraphQL subscriptions).";
    scalar(&mut out, "objectstack_realtime_connections", "gauge", open, stats.connections as u64);
    scalar(&mut out, "objectstack_realtime_subscriptions", "gauge", "Subscriptions kept, attached or waiting for a resume.", stats.subscriptions as u64);
    scalar(&mut out, "objectstack_realtime_connections_opened_total", "counter", "Realtime connections opened.", stats.opened);
    scalar(&mut out, "objectstack_realtime_deliveries_total", "counter", "Messages queued for realtime connections.", stats.delivered);
    out.push_str(
        "# HELP objectstack_realtime_drops_total Realtime connections the server closed, by reason.\n# TYPE objectstack_realtime_drops_total counter\n",
    );
    out.push_str(&format!("objectstack_realtime_drops_total{{reason=\"slow_consumer\"}} {}\n", stats.dropped_slow));
    out.push_str(&format!("objectstack_realtime_drops_total{{reason=\"revoked\"}} {}\n", stats.dropped_revoked));
    out
}

/// A cluster node's topic feed: events by where they came from, repeats,
/// messages that carried no event, and whether the consumer is assigned.
fn feed_metrics(feed: &commands::kafka::feed::FeedStats) -> String {
    use std::sync::atomic::Ordering::Relaxed;
    let mut out = String::from("# HELP objectstack_feed_events_total Events this node received: from the topic, filled in from the log, or its own appends.\n# TYPE objectstack_feed_events_total counter\n");
    out.push_str(&format!("objectstack_feed_events_total{{source=\"topic\"}} {}\n", feed.from_topic.load(Relaxed)));
    out.push_str(&format!("objectstack_feed_events_total{{source=\"log\"}} {}\n", feed.from_log.load(Relaxed)));
    out.push_str(&format!("objectstack_feed_events_total{{source=\"own\"}} {}\n", feed.own.load(Relaxed)));
    out.push_str("# HELP objectstack_feed_duplicates_total Events received again (a relay's repeats).\n# TYPE objectstack_feed_duplicates_total counter\n");
    out.push_str(&format!("objectstack_feed_duplicates_total {}\n", feed.duplicates.load(Relaxed)));
    out.push_str("# HELP objectstack_feed_undecodable_total Topic messages that carried no event.\n# TYPE objectstack_feed_undecodable_total counter\n");
    out.push_str(&format!("objectstack_feed_undecodable_total {}\n", feed.undecodable.load(Relaxed)));
    out.push_str("# HELP objectstack_feed_connected 1 once the topic's partitions are assigned.\n# TYPE objectstack_feed_connected gauge\n");
    out.push_str(&format!("objectstack_feed_connected {}\n", u8::from(feed.connected.load(Relaxed))));
    out
}

/// The PostgreSQL query model, rebuilt in a schema of its own and swapped in.
async fn rebuild_postgres(
    store: std::sync::Arc<dyn commands::store::EventStore>,
    pool: deadpool_postgres::Pool,
    settings: &commands::store::PostgresSettings,
    progress: watch::Sender<Progress>,
) -> Result<Option<bool>, projections::ReadError> {
    use projections::pg_model::rebuild::{copy_schema, live_schema, rebuild_live};
    let to_read = projections::ReadError::store;
    let live = live_schema(&pool).await.map_err(to_read)?;
    let copy = commands::store::pool_for_schema(settings, &copy_schema(&live)).map_err(|e| projections::ReadError::Store(e.to_string()))?;
    rebuild_live(store, pool, copy, progress).await.map_err(to_read)
}

/// Starts a live rebuild of a projection; answers its status. One rebuild
/// runs at a time: a request for the projection being rebuilt answers the
/// running one's status, a request for another is refused until it is done
/// (32 rebuild requests in 15 s spent 20 CPU-seconds and pushed reads' p99 past a second).
pub fn start_rebuild(system: &Arc<System>, caller: &Caller, name: &str) -> Result<Json, ApiError> {
    caller.require(SystemPermission::ManageProjections)?;
    let name = name.to_string();
    known(&name)?;
    let (progress_tx, progress_rx) = watch::channel(Progress::default());
    {
        let mut rebuilds = system.rebuilds.lock().expect("rebuilds lock");
        let running = |entry: &(u64, Option<watch::Receiver<Progress>>)| entry.1.as_ref().is_some_and(|rx| !rx.borrow().done);
        if rebuilds.get(&name).is_some_and(running) {
            drop(rebuilds);
            return Ok(status_of(system, &name));
        }
        if let Some((other, _)) = rebuilds.iter().find(|(_, entry)| running(entry)) {
            return Err(ApiError::new(ErrorCode::ResourceConflict, format!("one rebuild at a time: '{other}' is being rebuilt; retry when it is done")));
        }
        let entry = rebuilds.entry(name.clone()).or_insert((0, None));
        if name == "realtime" {
            return Err(ApiError::new(ErrorCode::NotImplemented, "the realtime hub is not rebuilt: it keeps subscriptions, restart the server to refold it"));
        }
        if name == "analytics" && analytics_by_sql(system) {
            let message = "analytics reads the PostgreSQL query model's tables (--analytics-sql): rebuild 'query'";
            return Err(ApiError::new(ErrorCode::NotImplemented, message));
        }
        entry.1 = Some(progress_rx);
    }
    // A rebuild replaces what the model's snapshot holds: a start from it
    // would bring the replaced state back, so it goes (the next save writes
    // the rebuilt model's).
    if let Some(dir) = &system.model_snapshots {
        if let Err(error) = dir.forget(&name) {
            tracing::warn!(projection = %name, %error, "the snapshot of a projection being rebuilt could not be removed");
        }
    }
    let store = system.commands.store().clone();
    let task_system = system.clone();
    let task_name = name.clone();
    tokio::spawn(async move {
        let result = match task_name.as_str() {
            "query" => match (task_system.reader.memory_model(), &task_system.reader, &task_system.pg_settings) {
                (Some(model), _, _) => rebuild(store, model, progress_tx).await,
                (None, projections::QueryReader::Postgres(reader), Some(settings)) => {
                    rebuild_postgres(store, reader.pool().clone(), settings, progress_tx).await
                }
                _ => return,
            },
            "search" => rebuild(store, task_system.search_model.clone(), progress_tx).await,
            "analytics" => match task_system.analytics_reader.memory_model() {
                Some(model) => rebuild(store, model, progress_tx).await,
                None => return,
            },
            _ => match &task_system.audit_reader {
                projections::AuditReader::Memory(model) => rebuild(store, model.clone(), progress_tx).await,
                projections::AuditReader::Postgres(reader) => projections::pg_audit::rebuild::rebuild_live(store, reader.pool().clone(), progress_tx)
                    .await
                    .map_err(|e| projections::ReadError::Store(e.to_string())),
            },
        };
        match result {
            Ok(matched) => {
                let mut rebuilds = task_system.rebuilds.lock().expect("rebuilds lock");
                if let Some(entry) = rebuilds.get_mut(&task_name) {
                    entry.0 += 1;
                }
                tracing::info!(projection = %task_name, ?matched, "projection rebuilt and swapped in");
            }
            Err(error) => tracing::error!(projection = %task_name, %error, "projection rebuild failed; the live copy stays"),
        }
    });
    Ok(status_of(system, &name))
}

/// Whether analytics is answered by SQL on the PostgreSQL query model's
/// tables (`--analytics-sql`): then it has no projection of its own, and its
/// name stands for the query projection's.
fn analytics_by_sql(system: &System) -> bool {
    matches!(system.analytics_reader, projections::AnalyticsReader::Postgres(_))
}

/// The projection that parked the event at `position` (not found otherwise).
fn parked_at<'a>(system: &'a System, name: &str, position: u64) -> Result<&'a projections::ProjectionHandle, ApiError> {
    if name == "analytics" && analytics_by_sql(system) {
        // Its status shows the query projection's letters: they are settled there.
        let message = "analytics reads the PostgreSQL query model's tables (--analytics-sql): retry or skip the event on 'query'";
        return Err(ApiError::new(ErrorCode::ResourceConflict, message));
    }
    let handle = handle_of(system, name);
    if handle.dead_letters().iter().any(|l| l.position == position) {
        Ok(handle)
    } else {
        Err(ApiError::new(ErrorCode::ResourceNotFound, format!("projection '{name}' has no parked event at position {position}")))
    }
}

/// Applies a parked event again (after its cause was mended); answers the
/// projection's status. Still failing: a conflict with the model's reason.
pub async fn retry(system: &System, caller: &Caller, name: &str, position: u64) -> Result<Json, ApiError> {
    caller.require(SystemPermission::ManageProjections)?;
    known(name)?;
    let handle = parked_at(system, name, position)?;
    handle
        .retry(position)
        .await
        .map_err(|reason| ApiError::new(ErrorCode::ResourceConflict, format!("the event at position {position} still cannot be applied: {reason}")))?;
    Ok(status_of(system, name))
}

/// Gives up on a parked event: a `projection.event_skipped` event in the log
/// (with the caller as its actor), which the projection applies by
/// forgetting the letter. Answers the projection's status once it has.
pub async fn skip(system: &System, caller: &Caller, name: &str, position: u64, reason: String) -> Result<Json, ApiError> {
    caller.require(SystemPermission::ManageProjections)?;
    known(name)?;
    let handle = parked_at(system, name, position)?;
    let command = commands::service::Command::SkipParkedEvent { projection: name.to_string(), position, reason };
    let outcome = super::writes::execute(system, caller, None, command).await?;
    handle.wait_for(outcome.position, system.read_wait).await;
    Ok(status_of(system, name))
}
