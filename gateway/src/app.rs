//! Building the running system: store, command service, app, projections.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use commands::kafka::feed::{FeedSettings, FeedStats, TopicFed};
use commands::seed;
use commands::service::CommandService;
use commands::store::{lock_embedded, open_embedded, open_locked, open_postgres, EventStore, Opening};
use futures_util::future::BoxFuture;
use projections::audit_model::audit_projection;
use projections::runner::{self, ProjectionHandle};
use projections::{memory_projection, pg_model, QueryReader};

use crate::config::{Settings, Storage};

/// Everything a request handler needs.
pub struct System {
    pub commands: Arc<CommandService>,
    /// The query projection (its checkpoint is what reads wait on).
    pub query: ProjectionHandle,
    /// The one read path over the query read model.
    pub reader: QueryReader,
    /// The audit trail projection, and the one read path over its model
    /// (in process on the embedded store, in PostgreSQL tables on PostgreSQL).
    pub audit: ProjectionHandle,
    pub audit_reader: projections::AuditReader,
    pub read_wait: Duration,
    /// Rebuilds by projection name: swaps done so far, and the progress of the last one.
    #[allow(clippy::type_complexity)]
    pub rebuilds: std::sync::Mutex<std::collections::HashMap<String, (u64, Option<tokio::sync::watch::Receiver<projections::rebuild::Progress>>)>>,
    /// Analytics: what reads wait on (the columnar model's projection in
    /// process; on PostgreSQL the query model's, whose tables SQL reads), the
    /// one read path over either, and the cubes the app declares.
    pub analytics: ProjectionHandle,
    pub analytics_reader: projections::AnalyticsReader,
    pub cubes: Vec<serde_json::Value>,
    /// How to reach PostgreSQL, when the events are there (for live rebuilds of its read model).
    pub pg_settings: Option<commands::store::PostgresSettings>,
    /// Snapshots of long record streams, for as-of reads.
    pub snapshots: projections::as_of::StreamSnapshots,
    /// Where the in-process read models are saved (see [`crate::snapshots`]); `None`: not saved.
    pub model_snapshots: Option<commands::snapshot::SnapshotDir>,
    /// Folds of the log for as-of lists: bounded, the last ones kept.
    pub as_of_folds: projections::as_of::AsOfFolds,
    /// Requests answered and their latencies (`/metrics`).
    /// The topic feed's counters, on a cluster node.
    pub feed: Option<Arc<FeedStats>>,
    pub http_metrics: Arc<crate::metrics::HttpMetrics>,
    /// Full-text search: the projection and its model.
    pub search: ProjectionHandle,
    pub search_model: Arc<std::sync::RwLock<projections::search::SearchModel>>,
    /// Realtime: the hub (its own projection) and the HTTP sessions.
    pub hub: Arc<projections::live::Hub>,
    pub realtime_handle: ProjectionHandle,
    pub realtime: crate::service::presence::Sessions,
    /// The GraphQL schema generated from the current metadata.
    pub graphql: crate::graphql::cache::Schemas,
    /// The loaded app's display name.
    pub app_name: String,
    /// The app's security declarations (open when it declares none).
    pub policy: Arc<domain::security::SecurityPolicy>,
    /// Failed sign-ins per account and client address.
    pub limiter: crate::service::limiter::Limiter,
    /// Callers recently resolved from their tokens.
    pub tokens: crate::service::token_cache::TokenCache,
    /// The app's workflow rules, flows, approvals, webhooks and jobs (the app
    /// file's with those stored through the metadata API), and the processes
    /// running them; both replaced when a stored definition changes.
    pub automation: std::sync::RwLock<Arc<domain::automation::Automation>>,
    pub processes: std::sync::RwLock<Arc<commands::process::Processes>>,
    /// What the processes and api flows call out with (HTTP and HTTPS).
    pub outbound: commands::process::Outbound,
    /// The stored definitions' generation the running automation was built from.
    pub automation_generation: std::sync::atomic::AtomicU64,
    /// The app file as loaded (automation is rebuilt from it and the stored definitions).
    pub app_json: serde_json::Value,
    /// Rust code an embedding app runs around callers' writes.
    pub hooks: crate::service::hooks::Hooks,
}

/// Opens the event store, and the pool of its database for stored read models.
pub async fn open_store(storage: &Storage) -> anyhow::Result<(Arc<dyn EventStore>, Option<deadpool_postgres::Pool>)> {
    let (store, pool, _) = open_store_fed(storage).await?;
    Ok((store, pool))
}

/// [`open_store`], and the counters of the topic feed on a cluster node.
async fn open_store_fed(storage: &Storage) -> anyhow::Result<(Arc<dyn EventStore>, Option<deadpool_postgres::Pool>, Option<Arc<FeedStats>>)> {
    Ok(match storage {
        Storage::Embedded(dir) => (Arc::new(open_embedded(dir).with_context(|| format!("opening the event log in {}", dir.display()))?), None, None),
        Storage::Postgres(settings) => {
            let store = open_postgres(settings).await.context("opening the PostgreSQL event store")?;
            let pool = store.pool().clone();
            (Arc::new(store), Some(pool), None)
        }
        Storage::Cluster(settings, kafka) => {
            let store = open_postgres(settings).await.context("opening the PostgreSQL event store")?;
            let pool = store.pool().clone();
            let fed = TopicFed::start(Arc::new(store), kafka, FeedSettings::default()).context("following the event topic")?;
            let stats = fed.stats();
            (fed, Some(pool), Some(stats))
        }
    })
}

/// The event store as a start gets it: the embedded log (whose open scans
/// the whole file) opening on a blocking thread while the start decodes its
/// models' snapshots, any other store open already; and a future that gives
/// the store once open, or why it did not open.
type StoreAhead = (Opening, BoxFuture<'static, anyhow::Result<Arc<dyn EventStore>>>, Option<deadpool_postgres::Pool>, Option<Arc<FeedStats>>);

async fn open_store_ahead(storage: &Storage) -> anyhow::Result<StoreAhead> {
    if let Storage::Embedded(dir) = storage {
        // The lock first: a directory another server holds is said so at once.
        let lock = lock_embedded(dir).with_context(|| format!("opening the event log in {}", dir.display()))?;
        let (opener, opening) = Opening::pending();
        let dir = dir.clone();
        let open = tokio::task::spawn_blocking(move || {
            let opened = open_locked(&dir, lock)
                .map(|store| Arc::new(store) as Arc<dyn EventStore>)
                .with_context(|| format!("opening the event log in {}", dir.display()));
            opener.opened(opened.as_ref().ok().cloned());
            opened
        });
        return Ok((opening, Box::pin(async move { open.await? }), None, None));
    }
    let (store, pool, feed) = open_store_fed(storage).await?;
    Ok((store.clone().into(), Box::pin(std::future::ready(Ok(store))), pool, feed))
}

/// Where the query read model lives: in process (the embedded log) or in
/// PostgreSQL tables (the PostgreSQL log).
enum QuerySide {
    Memory(QueryReader),
    Postgres(deadpool_postgres::Pool),
}

/// Where the audit trail lives: beside the query model.
enum AuditSide {
    Memory(projections::InProcess<projections::audit_model::AuditModel>, Arc<std::sync::RwLock<projections::audit_model::AuditModel>>),
    Postgres(deadpool_postgres::Pool),
}

/// What answers analytics: a columnar model in process, or (`--analytics-sql`) SQL on the PostgreSQL query model's tables.
enum AnalyticsSide {
    Memory(projections::InProcess<projections::analytics::AnalyticsModel>, Arc<std::sync::RwLock<projections::analytics::AnalyticsModel>>),
    Postgres(deadpool_postgres::Pool),
}

/// Opens the store, folds the log, loads the app (definitions and seed data
/// through commands), starts the query projection and waits until it has
/// caught up with the log.
pub async fn start(settings: &Settings) -> anyhow::Result<Arc<System>> {
    start_with_hooks(settings, Default::default()).await
}

/// [`start`], with hooks an embedding app runs around callers' writes.
pub async fn start_with_hooks(settings: &Settings, hooks: crate::service::hooks::Hooks) -> anyhow::Result<Arc<System>> {
    // The app is checked before any store is opened: a mistake in it stops
    // the start with every problem named, and touches no data.
    let files = crate::app_file::read_or_bundled(settings.app.as_deref())?;
    for (file, warning) in files.warnings() {
        tracing::warn!(file = %file.display(), "{warning}");
    }
    files.refuse()?;
    let app_json = files.app;
    let outbound = outbound_client(settings.outbound_ca.as_deref())?;
    let (opening, store_open, pool, feed) = open_store_ahead(&settings.storage).await?;
    // The in-process models start empty: fold them from the log in bulk, side
    // by side, while the command service folds its write model; each runner
    // then follows from where its load stopped (the app's definitions and seed
    // data, appended below, come through the runners).
    let query_side = match pool {
        None => QuerySide::Memory(memory_projection().1),
        Some(pool) => QuerySide::Postgres(pool),
    };
    // The model the realtime hub follows keeps past states for as-of reads.
    let history = Arc::new(projections::history::History::default());
    let hub_model = match &query_side {
        QuerySide::Memory(reader) => reader.memory_model().expect("an in-process reader"),
        QuerySide::Postgres(_) => Default::default(),
    };
    hub_model.write().expect("model lock").set_history(history.clone());
    let shared_rows = projections::query_model::RecordsOf(hub_model.clone());
    // The audit trail lives where the query model does.
    let audit_side = match &query_side {
        QuerySide::Memory(_) => {
            let (projection, model) = audit_projection();
            AuditSide::Memory(projection, model)
        }
        QuerySide::Postgres(pool) => AuditSide::Postgres(pool.clone()),
    };
    // Analytics: a columnar model in process; on PostgreSQL, when asked, SQL
    // on the query model's tables instead (no copy of the records in memory).
    let analytics_side = match &query_side {
        QuerySide::Postgres(pool) if settings.analytics_sql => AnalyticsSide::Postgres(pool.clone()),
        _ => {
            let (projection, model) = projections::InProcess::new("analytics");
            AnalyticsSide::Memory(projection, model)
        }
    };
    // The search index on disk (beside the embedded log, or where the
    // operator says) is opened where it was committed, so a start does not
    // index the log again; with PostgreSQL and no directory it is in memory.
    let search_root = match (&settings.search_dir, &settings.storage) {
        (Some(dir), _) => Some(dir.clone()),
        (None, Storage::Embedded(dir)) => Some(dir.join("search")),
        (None, Storage::Postgres(_) | Storage::Cluster(..)) => None,
    };
    let search = match search_root {
        Some(root) => {
            let shown = root.display().to_string();
            let opened = tokio::task::spawn_blocking(move || projections::search::SearchModel::open(&root)).await?;
            opened.with_context(|| format!("opening the search index in {shown} (is another server using it?)"))?
        }
        None => Default::default(),
    };
    let (search_projection, search_model) = projections::InProcess::over("search", search);
    // The other in-process models start from their snapshots (beside the
    // embedded log, or where the operator says), folding only what came after.
    let model_snapshots = match (&settings.snapshot_dir, &settings.storage) {
        (Some(dir), _) => Some(dir.clone()),
        (None, Storage::Embedded(dir)) => Some(dir.join("snapshots")),
        (None, Storage::Postgres(_) | Storage::Cluster(..)) => None,
    }
    .map(commands::snapshot::SnapshotDir::new);
    // The write model's snapshot may save records as digests of the query
    // model's (when it is in process): its start takes them from that model
    // once loaded.
    let (loaded_query, start_source) = match &query_side {
        QuerySide::Memory(_) => {
            let (sender, receiver) = tokio::sync::oneshot::channel();
            (Some(sender), Some(receiver))
        }
        QuerySide::Postgres(_) => (None, None),
    };
    let loads = {
        let query_model = match &query_side {
            QuerySide::Memory(reader) => reader.memory_model(),
            QuerySide::Postgres(_) => None,
        };
        let audit_model = match &audit_side {
            AuditSide::Memory(_, model) => Some(model.clone()),
            AuditSide::Postgres(_) => None,
        };
        let analytics_model = match &analytics_side {
            AnalyticsSide::Memory(_, model) => Some(model.clone()),
            AnalyticsSide::Postgres(_) => None,
        };
        let (store, search_model) = (opening.clone(), search_model.clone());
        let saved = model_snapshots.clone();
        tokio::spawn(async move {
            use commands::service::sharing::RecordSource;
            use projections::query_model::{QueryModel, RecordsOf, RowsAt};
            use projections::rebuild::{load, load_snapshotted, load_snapshotted_then};
            let query = async {
                match query_model {
                    Some(model) => {
                        // The rows decoded from the query model's snapshot go
                        // to the write model's start at once (it takes them
                        // while this model folds its tail and builds its
                        // indexes); with no snapshot, the model once loaded.
                        let mut sender = loaded_query;
                        let send = |source: Arc<dyn RecordSource>, sender: &mut Option<tokio::sync::oneshot::Sender<_>>| {
                            if let Some(sender) = sender.take() {
                                let _ = sender.send(source);
                            }
                        };
                        let loaded = load_snapshotted_then(store.clone(), model.clone(), saved.clone(), |opened: &mut QueryModel| {
                            send(Arc::new(RowsAt::with_digests(opened.shared_snapshot(), opened.take_loaded_digests())), &mut sender)
                        })
                        .await;
                        if loaded.is_ok() {
                            send(Arc::new(RecordsOf(model)), &mut sender);
                        }
                        loaded
                    }
                    None => Ok(Default::default()),
                }
            };
            tokio::try_join!(
                query,
                async {
                    match audit_model {
                        Some(model) => load_snapshotted(store.clone(), model, saved.clone()).await,
                        None => Ok(Default::default()),
                    }
                },
                async {
                    match analytics_model {
                        Some(model) => load_snapshotted(store.clone(), model, saved.clone()).await,
                        None => Ok(Default::default()),
                    }
                },
                async { load(store.store().await.map_err(|e| projections::ReadError::Store(e.to_string()))?, search_model).await },
            )
        })
    };
    // The write model decodes its snapshot while the log opens, too; a log
    // that does not open is the error to report, before what it stopped.
    let (store, commands) = tokio::join!(store_open, CommandService::start_from(opening, model_snapshots.as_ref(), start_source));
    let store = store?;
    let commands = Arc::new(commands.context("folding the event log")?);
    let app = domain::metadata::load_app(&app_json).context("loading the app")?;
    // Cubes the app declares (`analyticsCubes`, `cubes` or `analytics.cubes`); objects get generated ones.
    let cubes: Vec<serde_json::Value> =
        ["/analyticsCubes", "/cubes", "/analytics/cubes"].iter().filter_map(|at| app_json.pointer(at).and_then(|c| c.as_array())).flatten().cloned().collect();
    let report = seed::load_app(&commands, &app, commands::clock::now()).await.context("loading the app's definitions and seed data")?;
    for skipped in &report.skipped {
        tracing::warn!(%skipped, "seed record skipped");
    }
    let app_name = app.manifest.name.clone().unwrap_or_else(|| "ObjectStack".into());
    let policy = Arc::new(crate::app_file::security_policy(&app_json, &commands.catalog())?);
    let (generation, stored) = commands.automation_definitions();
    let automation =
        Arc::new(domain::automation::Automation::from_app_and_stored(&app_json, &stored, &commands.catalog()).context("loading the app's automation")?);
    if !policy.declared {
        tracing::warn!("the app declares no permissions: every caller may read and change everything (for local development only)");
    }
    tracing::info!(app = %app_name, objects = app.objects.len(), changed = report.objects_changed, seeded = report.records_written, "app loaded");
    // The read model lives where the events do: in process for the embedded
    // log, in PostgreSQL tables for PostgreSQL.
    // The realtime hub needs a query model at its own position: on the
    // embedded store it is the query projection (one model, not two); with
    // PostgreSQL it keeps one of its own in process.
    let (query_parked, audit_parked, analytics_parked, search_parked) = loads.await.context("loading the in-process read models")??;
    // The projections below read and decode each batch of the log once between them.
    let shared = runner::SharedDecode::default();
    let (query, reader, hub, realtime_handle) = match query_side {
        QuerySide::Memory(reader) => {
            let hub = projections::live::Hub::over(hub_model);
            let query = runner::spawn_shared(
                store.clone(),
                projections::live::LiveProjection { hub: hub.clone(), name: "query" },
                query_parked.of("query"),
                shared.clone(),
            )
            .await?;
            (query.clone(), reader, hub, query)
        }
        QuerySide::Postgres(pool) => {
            let (projection, reader) = pg_model::open(pool).await?;
            // Projector nodes keep the tables: this node only waits for them.
            let projection = if settings.projector_nodes { projection.observing() } else { projection };
            let hub = projections::live::Hub::over(hub_model);
            let live = projections::live::LiveProjection { hub: hub.clone(), name: "realtime" };
            let realtime = runner::spawn_shared(store.clone(), live, Vec::new(), shared.clone()).await?;
            (runner::spawn_shared(store.clone(), projection, Vec::new(), shared.clone()).await?, QueryReader::Postgres(reader), hub, realtime)
        }
    };
    let (audit, audit_reader) = match audit_side {
        AuditSide::Memory(projection, model) => {
            (runner::spawn_shared(store.clone(), projection, audit_parked.of("audit"), shared.clone()).await?, projections::AuditReader::Memory(model))
        }
        AuditSide::Postgres(pool) => {
            let (projection, reader) = projections::pg_audit::open(pool);
            (runner::spawn_shared(store.clone(), projection, Vec::new(), shared.clone()).await?, projections::AuditReader::Postgres(reader))
        }
    };
    let (analytics, analytics_reader) = match analytics_side {
        AnalyticsSide::Memory(projection, model) => (
            runner::spawn_shared(store.clone(), projection, analytics_parked.of("analytics"), shared.clone()).await?,
            projections::AnalyticsReader::Memory(model),
        ),
        // Its reads wait on the query model, whose tables it reads.
        AnalyticsSide::Postgres(pool) => (query.clone(), projections::AnalyticsReader::Postgres(pool)),
    };
    let search = runner::spawn_shared(store.clone(), search_projection, search_parked.of("search"), shared).await?;
    let head = *store.head().borrow();
    for handle in [&query, &audit, &search, &analytics, &realtime_handle] {
        catch_up(handle, head, settings.projector_nodes && handle.name() == "query").await?;
    }
    // Each live record in memory once: the write model takes the hub's
    // model's allocation of every equal record. The task ends with the
    // command service.
    drop(commands.share_records_with(Arc::new(shared_rows)));
    // The app's processes start once the app is loaded: they react to what
    // comes after (and to what they had not handled before a stop).
    commands.set_workflow_rules(&automation.workflows);
    let processes = Arc::new(commands::process::Processes::start(commands.clone(), &automation, &outbound));
    if !automation.is_empty() {
        tracing::info!(workflows = automation.workflows.len(), webhooks = automation.webhooks.len(), jobs = automation.jobs.len(), "automation running");
    }
    let system = Arc::new(System {
        commands,
        query,
        reader,
        audit,
        audit_reader,
        read_wait: settings.read_wait,
        rebuilds: Default::default(),
        analytics,
        analytics_reader,
        cubes,
        pg_settings: settings.storage.postgres().cloned(),
        feed,
        snapshots: Default::default(),
        model_snapshots,
        as_of_folds: projections::as_of::AsOfFolds::new(history),
        http_metrics: Default::default(),
        search,
        search_model,
        hub,
        realtime_handle,
        realtime: Default::default(),
        graphql: Default::default(),
        app_name,
        policy,
        limiter: Default::default(),
        tokens: Default::default(),
        automation: std::sync::RwLock::new(automation),
        processes: std::sync::RwLock::new(processes),
        outbound,
        automation_generation: std::sync::atomic::AtomicU64::new(generation),
        app_json,
        hooks,
    });
    follow_automation(&system);
    Ok(system)
}

/// The client webhooks and flows call out with, trusting `ca_file`'s
/// certificates too; a file that cannot be read or holds none stops the start.
fn outbound_client(ca_file: Option<&std::path::Path>) -> anyhow::Result<commands::process::Outbound> {
    let pem = match ca_file {
        Some(path) => Some(std::fs::read(path).with_context(|| format!("reading the outbound CA file {}", path.display()))?),
        None => None,
    };
    commands::process::Outbound::new(pem.as_deref()).with_context(|| match ca_file {
        Some(path) => format!("the outbound CA file {}", path.display()),
        None => "the outbound HTTPS client".to_string(),
    })
}

impl System {
    /// The automation running now.
    pub fn automation(&self) -> Arc<domain::automation::Automation> {
        self.automation.read().expect("automation lock").clone()
    }

    /// The processes running it.
    pub fn processes(&self) -> Arc<commands::process::Processes> {
        self.processes.read().expect("processes lock").clone()
    }
}

/// Follows changes of stored automation definitions (from this node's
/// writes or another's, through the write model that follows the log) and
/// rebuilds the running automation when they move. Ends when the system goes.
pub fn follow_automation(system: &Arc<System>) {
    let weak = Arc::downgrade(system);
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_millis(250)).await;
            let Some(system) = weak.upgrade() else { return };
            if let Err(error) = system.reload_automation().await {
                tracing::error!(%error, "the stored automation definitions do not load; the running ones stay");
            }
        }
    });
}

impl System {
    /// A stop's last step for search: the index catches up with the log (for
    /// at most two seconds) and commits, so that a start from an index on
    /// disk goes on from here instead of indexing the last writes again.
    pub async fn commit_search(&self) {
        let head = *self.commands.store().head().borrow();
        self.search.wait_for(head, Duration::from_secs(2)).await;
        self.search_model.write().expect("search model lock").make_visible();
    }

    /// Rebuilds the running automation when the stored definitions moved past
    /// the generation it was built from: the new processes start (each from
    /// its recorded progress) and the old ones stop. True when it rebuilt.
    pub async fn reload_automation(&self) -> Result<bool, domain::DomainError> {
        use std::sync::atomic::Ordering;
        let built = self.automation_generation.load(Ordering::SeqCst);
        if self.commands.automation_generation() == built {
            return Ok(false);
        }
        let (generation, stored) = self.commands.automation_definitions();
        let automation = Arc::new(domain::automation::Automation::from_app_and_stored(&self.app_json, &stored, &self.commands.catalog())?);
        // One rebuild per generation (the follower and a write may race here).
        if self.automation_generation.swap(generation, Ordering::SeqCst) == generation {
            return Ok(false);
        }
        self.commands.set_workflow_rules(&automation.workflows);
        let processes = Arc::new(commands::process::Processes::start(self.commands.clone(), &automation, &self.outbound));
        *self.automation.write().expect("automation lock") = automation;
        let old = std::mem::replace(&mut *self.processes.write().expect("processes lock"), processes);
        old.stop().await;
        tracing::info!(generation, "automation definitions changed: processes restarted");
        Ok(true)
    }
}

/// How long a start waits for a projection to reach the log's head.
const CATCH_UP: Duration = Duration::from_secs(600);
/// How often a start that waits says what it waits for.
const CATCH_UP_REPORT: Duration = Duration::from_secs(10);

/// Waits for a projection to reach `head`, saying every
/// [`CATCH_UP_REPORT`] where it is (a query model kept by projector nodes
/// moves only while one runs: the message says so).
async fn catch_up(handle: &ProjectionHandle, head: u64, by_projectors: bool) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let hint = if by_projectors { " (kept by projector nodes: is `objectstack projector` running on this database and topic?)" } else { "" };
    while !handle.wait_for(head, CATCH_UP_REPORT).await {
        let at = handle.checkpoint();
        if started.elapsed() >= CATCH_UP {
            anyhow::bail!("the {} projection did not catch up with the log in {} s: at {at} of {head}{hint}", handle.name(), CATCH_UP.as_secs());
        }
        tracing::warn!(projection = handle.name(), at, head, "waiting for a projection to catch up with the log before serving{hint}");
    }
    Ok(())
}
