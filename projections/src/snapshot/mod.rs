//! Snapshots of the in-process read models, so that a start loads each
//! model as it was saved and folds only the events after it, instead of the
//! whole log.
//!
//! A model that is a [`Snapshot`] is captured under its read lock (shared
//! rows, not copies, where it can), encoded outside it, and written to
//! `<dir>/<name>.snapshot` ([`file`]) with the position it is current as of
//! and the id of the event the log holds there. At start
//! ([`crate::rebuild::load_snapshotted`]) the file is used only when it is
//! whole, of the format this server writes, and the log still holds that
//! event at that position (a snapshot of another log, or of a log that was
//! replaced, is never trusted); otherwise it is ignored with a warning and the
//! model is folded from the log. Saving never blocks the model's writers
//! longer than the capture.

pub mod catalog;
pub(crate) mod codec;
mod file;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use commands::store::EventStore;

use crate::rebuild::MemoryModel;

pub use file::{FileError, Header};

/// An in-process model saved with the position it is current as of.
pub trait Snapshot: MemoryModel {
    /// The file's name in the snapshot directory.
    const NAME: &'static str;
    /// The body's format: moved whenever what the body holds or means
    /// changes, so a file of another format is folded afresh, never misread.
    const FORMAT: u32;
    /// What the body is made from, taken under the model's read lock: rows
    /// shared with the model where it can (the body is then encoded outside
    /// the lock), the body itself where the model's data is plain columns.
    type Captured: Send + 'static;
    fn capture(&self) -> Self::Captured;
    /// The body, encoded off the runtime.
    fn encode(captured: Self::Captured) -> Vec<u8>;
    /// The model a body holds, current as of `position`; `template` is an
    /// empty copy of the model being loaded (what it keeps beside its data,
    /// such as the query model's history, goes on in the result).
    fn decode(template: Self, position: u64, body: &[u8]) -> Result<Self, String>;
}

/// Where snapshots are kept. Its clones share one lock, so two saves
/// (a periodic one and the one at stop) never write the same file at once.
#[derive(Debug, Clone)]
pub struct SnapshotDir {
    root: PathBuf,
    saving: Arc<tokio::sync::Mutex<()>>,
}

/// Why a model was not saved.
#[derive(Debug, thiserror::Error)]
pub enum SaveError {
    #[error("the log does not hold the event at position {0}")]
    NoEvent(u64),
    #[error("the event store: {0}")]
    Store(String),
    #[error("writing {path}: {error}")]
    Write { path: String, error: std::io::Error },
}

/// A model read from its snapshot, with where the log must agree with it.
pub struct Opened<M> {
    pub model: M,
    pub position: u64,
    pub event_id: [u8; 16],
}

impl SnapshotDir {
    pub fn new(root: impl Into<PathBuf>) -> SnapshotDir {
        SnapshotDir { root: root.into(), saving: Default::default() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The file a model is saved in.
    pub fn path_of<M: Snapshot>(&self) -> PathBuf {
        self.root.join(format!("{}.snapshot", M::NAME))
    }

    /// Saves the model as it is now. Returns the position saved at, or `None`
    /// when the model has applied nothing yet.
    pub async fn save<M: Snapshot>(&self, store: &Arc<dyn EventStore>, model: &Arc<RwLock<M>>) -> Result<Option<u64>, SaveError> {
        let _saving = self.saving.lock().await;
        let (position, captured) = {
            let model = model.read().expect("model lock");
            (model.checkpoint(), model.capture())
        };
        if position == 0 {
            return Ok(None);
        }
        let found = store.read_all_into(position - 1, 1, Vec::new()).await.map_err(|e| SaveError::Store(e.to_string()))?;
        let event_id = match found.first() {
            Some(event) if event.position == position => event.event_id,
            _ => return Err(SaveError::NoEvent(position)),
        };
        let path = self.path_of::<M>();
        let header = Header { format: M::FORMAT, position, event_id };
        let written = tokio::task::spawn_blocking(move || {
            let body = M::encode(captured);
            file::write(&path, &header, &body).map_err(|error| SaveError::Write { path: path.display().to_string(), error })
        });
        written.await.expect("a snapshot's writer does not panic")?;
        Ok(Some(position))
    }

    /// The position the model's file here was saved at, read from its header
    /// alone (`None`: no file, or not one this server reads).
    pub fn saved_at<M: Snapshot>(&self) -> Option<u64> {
        file::read_header(&self.path_of::<M>(), M::FORMAT)
    }

    /// The model saved here, decoded, when there is a whole one of this
    /// server's format; `None` (with a warning for anything but no file) otherwise.
    pub async fn open<M: Snapshot>(&self, template: M) -> Option<Opened<M>> {
        let path = self.path_of::<M>();
        let read = tokio::task::spawn_blocking(move || {
            let (header, body) = match file::read(&path, M::FORMAT) {
                Ok(read) => read,
                Err(FileError::Io(error)) if error.kind() == std::io::ErrorKind::NotFound => return None,
                Err(error) => {
                    tracing::warn!(file = %path.display(), %error, "a model's snapshot is ignored: the model is folded from the log");
                    return None;
                }
            };
            match M::decode(template, header.position, &body) {
                Ok(model) => Some(Opened { model, position: header.position, event_id: header.event_id }),
                Err(error) => {
                    tracing::warn!(file = %path.display(), %error, "a model's snapshot does not decode: the model is folded from the log");
                    None
                }
            }
        });
        read.await.expect("a snapshot's reader does not panic")
    }
}
