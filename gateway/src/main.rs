//! The `objectstack` binary: `serve`, `config`, `validate`, `relay`, `projector`, `replay`, `projections` and `migrate`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use gateway::config::{Settings, Storage};

/// mimalloc: the read models and the request path allocate many small, short-lived
/// objects across threads, where glibc's allocator spent a fifth of the CPU.
/// Built without transparent huge pages (the workspace's `no_thp` feature):
/// with them, each page fault of a start's passing allocations cleared and
/// often compacted 2 MiB, which made a start from snapshots at a million
/// records take a third longer and peak 100 MiB higher (`ops/bench-start`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "objectstack", version, about = "An event-sourced ObjectStack server")]
struct Cli {
    /// A TOML file of options (keys: the options' environment variables in lower case without
    /// OBJECTSTACK_); flags and the environment win over it. Default: ./objectstack.toml when present.
    #[arg(long, global = true, env = "OBJECTSTACK_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Commands,
}

#[derive(Subcommand)]
enum Commands {
    /// Serve the REST API for an app.
    Serve(ServeArgs),
    /// Print the configuration `serve` would run with, each value's source beside it
    /// (flag, environment, config file or default), secrets masked; the output is a valid config file.
    Config(ServeArgs),
    /// Publish the PostgreSQL log to a Kafka topic, in order, for the nodes of a cluster.
    /// Run two or more: one is active, the others stand by and take over when it dies.
    Relay {
        /// PostgreSQL URL of the event store.
        #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
        database_url: String,
        /// Kafka brokers (host:port,...).
        #[arg(long, env = "OBJECTSTACK_KAFKA_BROKERS")]
        kafka_brokers: String,
        /// The topic to publish to (created when missing).
        #[arg(long, env = "OBJECTSTACK_KAFKA_TOPIC", default_value = "objectstack-events")]
        kafka_topic: String,
        /// Partitions of the topic when the relay creates it.
        #[arg(long, env = "OBJECTSTACK_KAFKA_PARTITIONS", default_value_t = 6)]
        kafka_partitions: i32,
        /// Replication factor of the topic when the relay creates it.
        #[arg(long, env = "OBJECTSTACK_KAFKA_REPLICATION", default_value_t = 1)]
        kafka_replication: i32,
        /// A librdkafka property for the relay's clients, KEY=VALUE (repeatable; comma-separated in the variable).
        #[arg(long = "kafka-option", env = "OBJECTSTACK_KAFKA_OPTIONS", hide_env_values = true, value_delimiter = ',', value_parser = commands::kafka::parse_option)]
        kafka_options: Vec<(String, String)>,
        /// Relays of one name share a checkpoint and take turns being active.
        #[arg(long, env = "OBJECTSTACK_RELAY_NAME", default_value = "default")]
        name: String,
        /// Where to answer /health (200 active, 503 standing by) and /metrics (position, lag); off unless given.
        #[arg(long, env = "OBJECTSTACK_RELAY_LISTEN")]
        listen: Option<SocketAddr>,
    },
    /// Keep the PostgreSQL query model from the relay's Kafka topic. Run one or more: the nodes
    /// of one group share the topic's partitions, and take over a node's when it dies. Gateways
    /// then run with --projector-nodes.
    Projector {
        /// PostgreSQL URL of the event store (the query model is in the same database).
        #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
        database_url: String,
        /// Kafka brokers (host:port,...).
        #[arg(long, env = "OBJECTSTACK_KAFKA_BROKERS")]
        kafka_brokers: String,
        /// The topic the relay publishes to.
        #[arg(long, env = "OBJECTSTACK_KAFKA_TOPIC", default_value = "objectstack-events")]
        kafka_topic: String,
        /// A librdkafka property for the consumer, KEY=VALUE (repeatable; comma-separated in the variable).
        #[arg(long = "kafka-option", env = "OBJECTSTACK_KAFKA_OPTIONS", hide_env_values = true, value_delimiter = ',', value_parser = commands::kafka::parse_option)]
        kafka_options: Vec<(String, String)>,
        /// The consumer group: projector nodes of one group share the partitions.
        #[arg(long, env = "OBJECTSTACK_PROJECTOR_GROUP", default_value = "objectstack-projectors")]
        group: String,
        /// Where to answer /health, /live and /metrics; off unless given.
        #[arg(long, env = "OBJECTSTACK_PROJECTOR_LISTEN")]
        listen: Option<SocketAddr>,
    },
    /// Print the event history of a record, an object or the whole log, as JSON lines.
    /// With the embedded store, run it while the server is stopped (the log is locked while served).
    Replay {
        /// Directory of the embedded event log.
        #[arg(long, env = "OBJECTSTACK_DATA_DIR", default_value = "./data")]
        data_dir: PathBuf,
        /// PostgreSQL URL; when given, events are read there.
        #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
        database_url: Option<String>,
        /// Only this object's events (its records and its definition).
        #[arg(long)]
        object: Option<String>,
        /// Only this record's events (needs --object).
        #[arg(long)]
        record: Option<String>,
        /// From this log position or ISO-8601 time (inclusive).
        #[arg(long)]
        from: Option<String>,
        /// Up to this log position or ISO-8601 time (inclusive).
        #[arg(long)]
        to: Option<String>,
    },
    /// Projections of a running server: status, and live rebuilds.
    Projections {
        #[command(subcommand)]
        action: ProjectionAction,
    },
    /// Check an app as `serve` would, without starting anything: each file against the
    /// protocol's JSON Schemas, then definitions, references, seed data, permissions and
    /// automation. Prints every problem (file, JSON Pointer, message); exits 1 on errors.
    Validate {
        /// The app: a JSON file or a folder of JSON files. Default: the bundled todo example.
        #[arg(long, env = "OBJECTSTACK_APP")]
        app: Option<PathBuf>,
    },
    /// Apply the PostgreSQL migrations (also done by `serve` at start) and exit.
    Migrate {
        /// PostgreSQL URL: its tables are brought to this version (and the app's changes, with --app, made there).
        #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
        database_url: Option<String>,
        /// The embedded event log, when no database URL is given (with --app).
        #[arg(long, env = "OBJECTSTACK_DATA_DIR", default_value = "./data")]
        data_dir: PathBuf,
        /// An app whose definitions to load: prints what would change (objects defined, definitions
        /// changed, records each migration changes) or why the change is refused, then makes it.
        #[arg(long)]
        app: Option<PathBuf>,
        /// With --app: print the plan and write nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

/// The options of `serve` (and of `config`, which prints them).
#[derive(Args)]
struct ServeArgs {
    /// The app to load: a JSON file, or a folder of JSON files, in the protocol's form
    /// (manifest, objects, data). Default: the bundled todo example.
    #[arg(long, env = "OBJECTSTACK_APP")]
    app: Option<PathBuf>,
    /// Address to listen on.
    #[arg(long, env = "OBJECTSTACK_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Directory of the embedded event log (used when no database URL is given).
    #[arg(long, env = "OBJECTSTACK_DATA_DIR", default_value = "./data")]
    data_dir: PathBuf,
    /// PostgreSQL URL (postgres://user@host:port/db). When given, events are stored there.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
    /// How long a read waits for the read model to reach a requested log position (ms).
    #[arg(long, env = "OBJECTSTACK_READ_WAIT_MS", default_value_t = 5000)]
    read_wait_ms: u64,
    /// Email of the first administrator, made at start when none exists yet (with --admin-password).
    #[arg(long, env = "OBJECTSTACK_ADMIN_EMAIL")]
    admin_email: Option<String>,
    /// Password of the first administrator (at least 8 characters).
    #[arg(long, env = "OBJECTSTACK_ADMIN_PASSWORD", hide_env_values = true)]
    admin_password: Option<String>,
    /// Serve an app that declares no permissions on a non-loopback address (everyone may read and change everything).
    #[arg(long, env = "OBJECTSTACK_ALLOW_OPEN")]
    allow_open: bool,
    /// Open connections at most (WebSockets included); more wait to be accepted.
    #[arg(long, env = "OBJECTSTACK_MAX_CONNECTIONS", default_value_t = 10_000)]
    max_connections: usize,
    /// Seconds a client has to send a request's headers; also how long an idle keep-alive connection stays open.
    #[arg(long, env = "OBJECTSTACK_HEADER_TIMEOUT_SECS", default_value_t = 30)]
    header_timeout_secs: u64,
    /// Seconds a whole request may take, its body read and its answer made (408 after).
    #[arg(long, env = "OBJECTSTACK_REQUEST_TIMEOUT_SECS", default_value_t = 60)]
    request_timeout_secs: u64,
    /// Origins browser apps may call from (CORS), comma-separated; `*` for any. Off by default.
    #[arg(long, env = "OBJECTSTACK_CORS_ORIGINS", value_delimiter = ',')]
    cors_origins: Vec<String>,
    /// Kafka brokers (host:port,...): follow the log's tail on the relay's topic instead of querying
    /// the log (a cluster node; needs --database-url).
    #[arg(long, env = "OBJECTSTACK_KAFKA_BROKERS")]
    kafka_brokers: Option<String>,
    /// The topic the relay publishes the log to.
    #[arg(long, env = "OBJECTSTACK_KAFKA_TOPIC", default_value = "objectstack-events")]
    kafka_topic: String,
    /// A librdkafka property for the topic's clients, KEY=VALUE (repeatable; comma-separated in the variable):
    /// security.protocol, sasl.*, ssl.*, timeouts.
    #[arg(long = "kafka-option", env = "OBJECTSTACK_KAFKA_OPTIONS", hide_env_values = true, value_delimiter = ',', value_parser = commands::kafka::parse_option)]
    kafka_options: Vec<(String, String)>,
    /// A PEM file of CA certificates webhooks and flows' http_request nodes trust for https://
    /// URLs, beside the system's roots (SSL_CERT_FILE, SSL_CERT_DIR) and Mozilla's.
    #[arg(long, env = "OBJECTSTACK_OUTBOUND_CA")]
    outbound_ca: Option<PathBuf>,
    /// Directory of the search index, kept across starts so a start opens it where it was committed
    /// instead of indexing the log again (one node per directory). Default: `search` in the data
    /// directory on the embedded store; in memory with PostgreSQL.
    #[arg(long, env = "OBJECTSTACK_SEARCH_DIR")]
    search_dir: Option<PathBuf>,
    /// Directory where the write model and the in-process read models (query, audit, analytics) are saved with the
    /// position they are current as of, at a clean stop and as they grow, so a start loads them
    /// and folds only the rest of the log (one node per directory). Default: `snapshots` in the
    /// data directory on the embedded store; not saved with PostgreSQL.
    #[arg(long, env = "OBJECTSTACK_SNAPSHOT_DIR")]
    snapshot_dir: Option<PathBuf>,
    /// `objectstack projector` nodes keep the PostgreSQL query model: this node applies nothing to
    /// it, and its reads wait for them as they would for its own projection (needs --database-url).
    #[arg(long, env = "OBJECTSTACK_PROJECTOR_NODES")]
    projector_nodes: bool,
    /// Answer analytics by SQL on the PostgreSQL query model's tables instead of from a columnar
    /// model this node keeps in memory: no copy of the records held, queries many times slower
    /// (needs --database-url).
    #[arg(long, env = "OBJECTSTACK_ANALYTICS_SQL")]
    analytics_sql: bool,
}

#[derive(Subcommand)]
enum ProjectionAction {
    /// Each projection's version, position, lag and state.
    Status {
        /// The running server.
        #[arg(long, env = "OBJECTSTACK_SERVER", default_value = "http://127.0.0.1:8080")]
        server: String,
    },
    /// Events projections parked because they could not apply them (dead letters).
    DeadLetters {
        /// The running server.
        #[arg(long, env = "OBJECTSTACK_SERVER", default_value = "http://127.0.0.1:8080")]
        server: String,
    },
    /// Apply a parked event again, once its cause is mended.
    Retry {
        /// The projection (query, audit, search, analytics, realtime).
        name: String,
        /// The log position of the parked event.
        position: u64,
        #[arg(long, env = "OBJECTSTACK_SERVER", default_value = "http://127.0.0.1:8080")]
        server: String,
    },
    /// Give up on a parked event; recorded in the log as `projection.event_skipped`.
    Skip {
        /// The projection (query, audit, search, analytics, realtime).
        name: String,
        /// The log position of the parked event.
        position: u64,
        /// Why it is skipped (kept in the log and the audit trail).
        #[arg(long)]
        reason: String,
        #[arg(long, env = "OBJECTSTACK_SERVER", default_value = "http://127.0.0.1:8080")]
        server: String,
    },
    /// Rebuild projections from the log while the server keeps serving, then swap them in.
    /// With --database-url, rebuild the PostgreSQL models (query and audit) offline (server stopped) instead.
    Rebuild {
        /// A projection name (query, audit, search, analytics).
        name: Option<String>,
        /// Rebuild every projection.
        #[arg(long)]
        all: bool,
        /// Rebuild the PostgreSQL models (query and audit) in this database, with the server stopped.
        #[arg(long)]
        database_url: Option<String>,
        /// The running server.
        #[arg(long, env = "OBJECTSTACK_SERVER", default_value = "http://127.0.0.1:8080")]
        server: String,
    },
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutting down: finishing in-flight requests");
}

/// Errors are printed as one readable chain (no backtrace) and exit with status 1.
fn main() -> std::process::ExitCode {
    // Before the runtime: the trace exporter's HTTP client runs one of its own.
    let telemetry = match gateway::telemetry::init() {
        Ok(telemetry) => telemetry,
        Err(e) => {
            eprintln!("error: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(run());
    drop(runtime);
    telemetry.shutdown();
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run() -> anyhow::Result<()> {
    let (matches, file) = gateway::config_file::parse(Cli::command(), std::env::args_os().collect())?;
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    if let Some(file) = &file {
        tracing::debug!(path = %file.path.display(), "config file");
    }
    // `--config` was read by `config_file::parse`, before the other options.
    let Cli { config: _, command: subcommand } = cli;
    match subcommand {
        Commands::Config(_) => {
            let command = Cli::command();
            let serve = command.find_subcommand("serve").context("the serve command")?;
            let sub = matches.subcommand_matches("config").context("the config command's options")?;
            print!("{}", gateway::config_file::effective(serve, sub, file.as_ref()));
        }
        Commands::Serve(ServeArgs {
            app,
            listen,
            data_dir,
            database_url,
            read_wait_ms,
            admin_email,
            admin_password,
            allow_open,
            max_connections,
            header_timeout_secs,
            request_timeout_secs,
            cors_origins,
            kafka_brokers,
            kafka_topic,
            kafka_options,
            outbound_ca,
            search_dir,
            snapshot_dir,
            projector_nodes,
            analytics_sql,
        }) => {
            let storage = match (database_url, kafka_brokers) {
                (Some(url), None) => Storage::Postgres(commands::store::PostgresSettings::new(url)),
                (Some(url), Some(brokers)) => Storage::Cluster(
                    commands::store::PostgresSettings::new(url),
                    commands::kafka::KafkaSettings { topic: kafka_topic, options: kafka_options, ..commands::kafka::KafkaSettings::new(brokers) },
                ),
                (None, None) => Storage::Embedded(data_dir),
                (None, Some(_)) => anyhow::bail!("a cluster node keeps its events in PostgreSQL: give --database-url with --kafka-brokers"),
            };
            let admin = match (admin_email, admin_password) {
                (Some(email), Some(password)) => Some(gateway::config::AdminBootstrap { email, password }),
                (None, None) => None,
                _ => anyhow::bail!("give both OBJECTSTACK_ADMIN_EMAIL and OBJECTSTACK_ADMIN_PASSWORD (or neither)"),
            };
            if projector_nodes && storage.postgres().is_none() {
                anyhow::bail!("projector nodes keep the PostgreSQL query model: give --database-url with --projector-nodes");
            }
            if analytics_sql && storage.postgres().is_none() {
                anyhow::bail!("--analytics-sql reads the PostgreSQL query model's tables: give --database-url with it");
            }
            let read_wait = Duration::from_millis(read_wait_ms);
            let settings = Settings { listen, storage, app, read_wait, outbound_ca, search_dir, snapshot_dir, projector_nodes, analytics_sql };
            let system = gateway::app::start(&settings).await?;
            gateway::snapshots::keep(&system);
            if let Some(admin) = &admin {
                gateway::service::auth::bootstrap_admin(&system, &admin.email, &admin.password).await.context("making the first administrator")?;
            }
            if !system.policy.declared && !listen.ip().is_loopback() && !allow_open {
                anyhow::bail!(
                    "the app declares no permissions, so anyone who reaches {listen} could read and change everything: declare permissions, listen on 127.0.0.1, or pass --allow-open"
                );
            }
            let listener = tokio::net::TcpListener::bind(settings.listen).await.with_context(|| format!("listening on {}", settings.listen))?;
            tracing::info!(address = %listener.local_addr()?, "serving");
            let limits = gateway::server::HttpOptions {
                max_connections: max_connections.max(1),
                header_timeout: Duration::from_secs(header_timeout_secs.max(1)),
                request_timeout: Duration::from_secs(request_timeout_secs.max(1)),
                cors_origins,
            };
            gateway::server::serve_with(listener, system.clone(), limits, shutdown_signal()).await?;
            // Processes record where they got before the projections stop.
            system.processes().stop().await;
            // Writes whose callers went away half way end before the log closes.
            system.commands.settled().await;
            system.commit_search().await;
            gateway::snapshots::save_at_stop(&system).await;
            system.query.stop();
            drop(system);
            // Let the log writer finish what it has (every acknowledged append is already durable).
            tokio::time::sleep(Duration::from_millis(50)).await;
            tracing::info!("stopped");
        }
        Commands::Replay { data_dir, database_url, object, record, from, to } => {
            let storage = match database_url {
                Some(url) => Storage::Postgres(commands::store::PostgresSettings::new(url)),
                None => Storage::Embedded(data_dir),
            };
            let (store, _) = gateway::app::open_store(&storage).await?;
            let selection = gateway::replay::Selection {
                object,
                record,
                from: from.as_deref().map(gateway::replay::Bound::parse).transpose()?,
                to: to.as_deref().map(gateway::replay::Bound::parse).transpose()?,
            };
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::new(stdout.lock());
            let count = gateway::replay::replay(store, &selection, &mut out).await?;
            std::io::Write::flush(&mut out)?;
            tracing::info!(events = count, "replayed");
        }
        Commands::Projections { action: ProjectionAction::Status { server } } => gateway::admin::status(&server).await?,
        Commands::Projections { action: ProjectionAction::DeadLetters { server } } => gateway::admin::dead_letters(&server).await?,
        Commands::Projections { action: ProjectionAction::Retry { name, position, server } } => gateway::admin::settle(&server, &name, position, None).await?,
        Commands::Projections { action: ProjectionAction::Skip { name, position, reason, server } } => {
            gateway::admin::settle(&server, &name, position, Some(&reason)).await?
        }
        Commands::Projections { action: ProjectionAction::Rebuild { name, all, database_url, server } } => {
            let names: Vec<String> = match (name, all) {
                (Some(name), false) => vec![name],
                (None, true) => vec!["query".into(), "audit".into(), "search".into(), "analytics".into()],
                _ => anyhow::bail!("name one projection (query, audit, search, analytics) or pass --all"),
            };
            match database_url {
                // Offline: the query and audit models live in PostgreSQL; the others are folded at every start.
                Some(url) => {
                    gateway::admin::rebuild_postgres_offline(&commands::store::PostgresSettings::new(url)).await?;
                }
                None => gateway::admin::rebuild(&server, &names).await?,
            }
        }
        Commands::Relay { database_url, kafka_brokers, kafka_topic, kafka_partitions, kafka_replication, kafka_options, name, listen } => {
            let settings = commands::kafka::relay::RelaySettings {
                postgres: commands::store::PostgresSettings::new(database_url),
                kafka: commands::kafka::KafkaSettings {
                    brokers: kafka_brokers,
                    topic: kafka_topic,
                    partitions: kafka_partitions,
                    replication: kafka_replication,
                    options: kafka_options,
                },
                name,
                batch: 5_000,
            };
            gateway::relay::run(settings, listen, shutdown_signal()).await?;
        }
        Commands::Projector { database_url, kafka_brokers, kafka_topic, kafka_options, group, listen } => {
            let settings = gateway::projector::ProjectorSettings {
                postgres: commands::store::PostgresSettings::new(database_url),
                kafka: commands::kafka::KafkaSettings { topic: kafka_topic, options: kafka_options, ..commands::kafka::KafkaSettings::new(kafka_brokers) },
                group,
            };
            gateway::projector::run(settings, listen, shutdown_signal()).await?;
        }
        Commands::Validate { app } => {
            let report = gateway::app_file::validate(app.as_deref()).await?;
            for (file, problem) in &report.problems {
                println!("{}: {problem}", file.display());
            }
            let errors = report.errors();
            if errors > 0 {
                anyhow::bail!("the app has {errors} error(s)");
            }
            println!(
                "valid: {} objects, {} seed records, {} permission sets, {} automation definitions",
                report.objects, report.seed_records, report.permission_sets, report.automation
            );
        }
        Commands::Migrate { database_url, data_dir, app, dry_run } => {
            if dry_run && app.is_none() {
                anyhow::bail!("--dry-run plans an app's changes: give --app PATH");
            }
            let store: std::sync::Arc<dyn commands::store::EventStore> = match database_url {
                Some(url) => {
                    let store = commands::store::open_postgres(&commands::store::PostgresSettings::new(url)).await.context("applying migrations")?;
                    println!("store migrations applied: {}", commands::store::MIGRATIONS.len());
                    std::sync::Arc::new(store)
                }
                None if app.is_none() => anyhow::bail!("give --database-url (the store's tables), or --app PATH (an app's definition changes)"),
                None => std::sync::Arc::new(
                    commands::store::open_embedded(&data_dir)
                        .with_context(|| format!("opening the event log in {} (is a server using it?)", data_dir.display()))?,
                ),
            };
            if let Some(app) = app {
                for line in gateway::change_plan::plan(store, Some(&app), !dry_run).await? {
                    println!("{line}");
                }
            }
        }
    }
    Ok(())
}
