//! The search index in a directory of its own, so that a start opens it at
//! the position it was committed at instead of indexing the whole log again.
//!
//! Every commit of the index carries, in tantivy's commit payload, what the
//! model needs to go on from there ([`Committed`]): the position it is
//! current as of, the last event it applied (its position and id, checked
//! against the log at start, so an index from another log is never
//! trusted), and the catalog. The payload is written atomically with the
//! segments it describes, so the index and its checkpoint cannot disagree.
//!
//! A root holds generations (`root/<n>`): the live index, and while a rebuild
//! runs, its fresh copy. At open the newest generation whose last commit is
//! whole (format known, checksums right) is used and every other one is
//! deleted; an index that fails any check is deleted with a warning and the
//! model folds the log from the beginning, as with no index at all.

use std::path::{Path, PathBuf};

use domain::event::ObjectDefined;
use domain::metadata::Catalog;
use tantivy::schema::Schema;
use tantivy::Index;

/// The payload's format (and the schema's and analysis's version): an
/// index committed under another one is folded afresh.
const FORMAT: u64 = 1;

/// What a commit records beside the segments.
#[derive(Debug, Clone)]
pub(super) struct Committed {
    /// The position the index is current as of.
    pub position: u64,
    /// The last event applied: its position and id.
    pub event: Option<(u64, String)>,
    pub catalog: Catalog,
}

impl Committed {
    pub(super) fn to_payload(&self) -> String {
        let catalog: Vec<serde_json::Value> = crate::snapshot::catalog::definitions(&self.catalog)
            .into_iter()
            .map(|defined| serde_json::json!({"name": defined.name, "namespace": defined.namespace, "definition": defined.definition}))
            .collect();
        serde_json::json!({"format": FORMAT, "position": self.position, "event": self.event, "catalog": catalog}).to_string()
    }

    /// Reads a payload back; why not, when it is not one of this format.
    pub(super) fn from_payload(payload: &str) -> Result<Committed, String> {
        let json: serde_json::Value = serde_json::from_str(payload).map_err(|e| format!("the commit payload is not JSON: {e}"))?;
        let format = json.get("format").and_then(|f| f.as_u64());
        if format != Some(FORMAT) {
            return Err(format!("the index is of format {format:?}, this server writes {FORMAT}"));
        }
        let position = json.get("position").and_then(|p| p.as_u64()).ok_or("the commit payload has no position")?;
        let event = match json.get("event") {
            Some(serde_json::Value::Null) | None => None,
            Some(event) => Some(serde_json::from_value::<(u64, String)>(event.clone()).map_err(|e| format!("the commit payload's event: {e}"))?),
        };
        let mut definitions = Vec::new();
        for object in json.get("catalog").and_then(|c| c.as_array()).ok_or("the commit payload has no catalog")? {
            let text = |key: &str| object.get(key).and_then(|v| v.as_str()).map(str::to_string);
            definitions.push(ObjectDefined {
                name: text("name").ok_or("a catalog entry has no name")?,
                namespace: text("namespace"),
                definition: text("definition").ok_or("a catalog entry has no definition")?,
            });
        }
        let catalog = crate::snapshot::catalog::from_definitions(definitions)?;
        Ok(Committed { position, event, catalog })
    }
}

/// Where a model's index lives: one generation under a root.
#[derive(Debug, Clone)]
pub struct Place {
    root: PathBuf,
    generation: u64,
}

/// An index opened (or created) under a root.
pub(super) struct Opened {
    pub place: Place,
    pub index: Index,
    /// The last commit, when the index has a whole one.
    pub committed: Option<Committed>,
}

impl Place {
    pub fn dir(&self) -> PathBuf {
        self.root.join(self.generation.to_string())
    }

    /// A new generation for a fresh copy (a rebuild): every generation but
    /// this one and the new one goes (leftovers of an earlier rebuild).
    pub(super) fn next(&self, schema: Schema) -> tantivy::Result<Opened> {
        let found = generations(&self.root)?;
        let generation = found.iter().copied().max().unwrap_or(self.generation).max(self.generation) + 1;
        for old in found.into_iter().filter(|g| *g != self.generation) {
            remove(&self.root.join(old.to_string()));
        }
        create(&self.root, generation, schema)
    }
}

/// The generations under a root, in no order.
fn generations(root: &Path) -> std::io::Result<Vec<u64>> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(root)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            if let Some(generation) = entry.file_name().to_str().and_then(|n| n.parse::<u64>().ok()) {
                found.push(generation);
            }
        }
    }
    Ok(found)
}

fn remove(dir: &Path) {
    if let Err(error) = std::fs::remove_dir_all(dir) {
        tracing::warn!(dir = %dir.display(), %error, "search index: cannot remove an old generation");
    }
}

fn create(root: &Path, generation: u64, schema: Schema) -> tantivy::Result<Opened> {
    let place = Place { root: root.to_path_buf(), generation };
    let dir = place.dir();
    std::fs::create_dir_all(&dir)?;
    let index = Index::create_in_dir(&dir, schema)?;
    Ok(Opened { place, index, committed: None })
}

/// Checks one generation: its last commit's payload, and the checksum of every file it uses.
fn check(dir: &Path) -> Result<(Index, Committed), String> {
    let index = Index::open_in_dir(dir).map_err(|e| e.to_string())?;
    let metas = index.load_metas().map_err(|e| e.to_string())?;
    let payload = metas.payload.ok_or("the index was never committed whole")?;
    let committed = Committed::from_payload(&payload)?;
    let damaged = index.validate_checksum().map_err(|e| e.to_string())?;
    if !damaged.is_empty() {
        return Err(format!("damaged files: {damaged:?}"));
    }
    Ok((index, committed))
}

/// Opens the newest whole generation under `root` (deleting the others), or
/// creates an empty one when there is none.
pub(super) fn open(root: &Path, schema: Schema) -> tantivy::Result<Opened> {
    std::fs::create_dir_all(root)?;
    let mut found = generations(root)?;
    found.sort_unstable_by(|a, b| b.cmp(a));
    let mut chosen: Option<Opened> = None;
    for generation in &found {
        let dir = root.join(generation.to_string());
        if chosen.is_some() {
            remove(&dir);
            continue;
        }
        match check(&dir) {
            Ok((index, committed)) => {
                chosen = Some(Opened { place: Place { root: root.to_path_buf(), generation: *generation }, index, committed: Some(committed) })
            }
            Err(why) => {
                tracing::warn!(dir = %dir.display(), %why, "search index: not used; it is folded again from the log");
                remove(&dir);
            }
        }
    }
    match chosen {
        Some(opened) => Ok(opened),
        None => create(root, found.first().map_or(1, |g| g + 1), schema),
    }
}
