//! Settings of a running server, and loading an app from a file or folder.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use serde_json::{Map, Value as Json};

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

/// Reads an app in the protocol's JSON form. A folder's `*.json` files are
/// merged: files with `manifest`/`objects`/`data` contribute those keys, and a
/// file holding one object definition (`name` + `fields`) is added to `objects`.
pub fn read_app(path: &Path) -> anyhow::Result<Json> {
    if !path.exists() {
        anyhow::bail!("the app {} does not exist (give a JSON file or a folder of JSON files)", path.display());
    }
    if path.is_file() {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        return serde_json::from_str(&text).with_context(|| format!("{} is not valid JSON", path.display()));
    }
    let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
        .with_context(|| format!("reading app folder {}", path.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    entries.sort();
    let mut app = Map::new();
    let mut objects = Vec::new();
    let mut data = Vec::new();
    for file in entries {
        let text = std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
        let json: Json = serde_json::from_str(&text).with_context(|| format!("{} is not valid JSON", file.display()))?;
        if json.get("name").is_some() && json.get("fields").is_some() {
            objects.push(json);
            continue;
        }
        if let Some(manifest) = json.get("manifest") {
            app.insert("manifest".into(), manifest.clone());
        }
        objects.extend(json.get("objects").and_then(Json::as_array).cloned().unwrap_or_default());
        data.extend(json.get("data").and_then(Json::as_array).cloned().unwrap_or_default());
    }
    app.insert("objects".into(), Json::Array(objects));
    app.insert("data".into(), Json::Array(data));
    Ok(Json::Object(app))
}
