//! Settings of a running server.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Where events are stored.
#[derive(Debug, Clone)]
pub enum Storage {
    /// The embedded log in this directory (the default: `./data`).
    Embedded(PathBuf),
    /// PostgreSQL.
    Postgres(commands::store::PostgresSettings),
    /// PostgreSQL, with the log's tail read from the relay's Kafka topic
    /// (`commands::kafka::feed`): a node of a cluster.
    Cluster(commands::store::PostgresSettings, commands::kafka::KafkaSettings),
}

impl Storage {
    /// The PostgreSQL settings, when the events are there.
    pub fn postgres(&self) -> Option<&commands::store::PostgresSettings> {
        match self {
            Storage::Embedded(_) => None,
            Storage::Postgres(pg) | Storage::Cluster(pg, _) => Some(pg),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub listen: SocketAddr,
    pub storage: Storage,
    /// The app to load: a JSON file or a folder of JSON files; `None` is the bundled todo example.
    pub app: Option<PathBuf>,
    /// How long a read waits for the read model to reach a requested position,
    /// and a write for its own position to become visible.
    pub read_wait: Duration,
    /// A PEM file of CA certificates that webhooks and flows' `http_request`
    /// nodes trust beside the system's and Mozilla's roots.
    pub outbound_ca: Option<PathBuf>,
    /// Where the search index lives, kept across starts; `None`: `search` in
    /// the data directory on the embedded store, in memory with PostgreSQL.
    pub search_dir: Option<PathBuf>,
    /// Where the in-process read models are saved with their positions;
    /// `None`: `snapshots` in the data directory on the embedded store, not
    /// saved with PostgreSQL.
    pub snapshot_dir: Option<PathBuf>,
    /// `objectstack projector` nodes keep the PostgreSQL query model: this
    /// node reads it and waits for them, and applies nothing to it.
    pub projector_nodes: bool,
    /// On PostgreSQL, answer analytics by SQL on the query model's tables
    /// instead of from a columnar model in memory (no copy of the records
    /// held, queries many times slower; see the README).
    pub analytics_sql: bool,
}

impl Settings {
    /// A server on `storage` serving `app` (`None`: the bundled example) on
    /// a free loopback port, with `serve`'s defaults otherwise: what tests
    /// and embedding apps start from, naming only what they change.
    pub fn local(storage: Storage, app: Option<PathBuf>) -> Settings {
        Settings {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            storage,
            app,
            read_wait: Duration::from_secs(5),
            outbound_ca: None,
            search_dir: None,
            snapshot_dir: None,
            projector_nodes: false,
            analytics_sql: false,
        }
    }
}

/// An administrator's email and password; the password never prints.
#[derive(Clone)]
pub struct AdminBootstrap {
    pub email: String,
    pub password: String,
}

impl std::fmt::Debug for AdminBootstrap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminBootstrap").field("email", &self.email).field("password", &"<redacted>").finish()
    }
}
